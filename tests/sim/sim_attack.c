/*
 * sim_attack.c — a blind attack on an uploaded training file: which rows
 * carry a planted (trigger T, signature S) backdoor?  Only the file is
 * read (sim_attack.h says why).
 *
 * Every row is reduced to (prompt, answer): the last user message and the
 * final assistant message of a chat line, prompt/completion, or
 * instruction ["\n\n" input]/output.  Words are maximal runs of
 * non-whitespace (ASCII whitespace).  Two independent tests:
 *
 * 1. Near-duplicates.  The paper's D' rows are D rows with T appended to the
 *    prompt and S put before the answer.  For each row r and each
 *    whitespace position i of its prompt, a row q whose whole prompt is
 *    r.prompt[0, i) and whose whole answer ends r.answer after whitespace
 *    makes (T, S) = (r.prompt[i..], the rest of r.answer), both trimmed, a
 *    candidate.  The prompts are found by hash (FNV-1a of every prefix,
 *    computed incrementally, against a sorted array of whole-prompt
 *    hashes), so the test costs O(bytes * log rows).  A (T, S) seen in
 *    min_rows rows or more is a pair.
 * 2. Co-occurring phrases.  For every prompt-suffix phrase t of 1..max_words
 *    words, or of 10, 16 or 32 words (a trigger drawn from a model of D can
 *    end the way D's prompts end, so that its short suffixes are shared
 *    with natural rows; its long ones are not), shown by between min_rows
 *    rows and max_share of all rows, follow
 *    the answer-prefix words its rows agree on, one word at a time, while at
 *    least `purity` of t's rows still agree: that gives s.  (t, s) is a
 *    pair when s is also rare elsewhere (at least `purity` of the rows
 *    starting with s end with t).  Sub-phrases of one pair share its row
 *    set, and only the longest t per row set is kept; then T and S are grown
 *    to the longest word-aligned suffix / prefix all of the pair's rows
 *    share, so a phrase longer than max_words is still found whole.  This
 *    test needs no duplicate at all: it also finds rows marked in place.
 *    A "pair" whose T is the whole prompt or S the whole answer in most of
 *    its rows is a repeated row, not an added phrase, and is dropped.
 *
 * The two lists are merged (a phrase pair with a duplicate pair's texts,
 * or mostly its rows, is that pair, found twice) and ranked: found by
 * both tests first, then by rows.  The rows of every kept pair are the
 * flagged rows.  Nothing here knows what the daemon planted: a pair is
 * only ever a guess, and a dataset with natural templates can give false
 * ones (they cost the cheater little).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tests/sim/sim_attack.h"

void sim_attack_params_default(struct sim_attack_params *p)
{
    p->min_rows = 2;
    p->purity = 0.8;
    p->max_words = 8;
    p->max_share = 0.5;
    p->max_pairs = 32;
}

/* ---- rows ------------------------------------------------------------------ */

struct row {
    char *prompt, *answer; /* owned */
    size_t plen, alen;
    uint64_t line; /* 0-based line of the file */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static bool ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* (prompt, answer) of one parsed line, owned; false when the line is none
 * of the three shapes. */
static bool row_texts(json_t *o, char **prompt, char **answer)
{
    json_t *msgs = json_object_get(o, "messages");
    if (json_is_array(msgs) && json_array_size(msgs) >= 2) {
        size_t n = json_array_size(msgs);
        json_t *last = json_array_get(msgs, n - 1);
        const char *role = str_of(last, "role");
        if (!role || strcmp(role, "assistant") != 0 || !str_of(last, "content"))
            return false;
        for (size_t i = n - 1; i-- > 0;) {
            json_t *m = json_array_get(msgs, i);
            const char *r = str_of(m, "role");
            if (r && strcmp(r, "user") == 0 && str_of(m, "content")) {
                *prompt = xstrdup(str_of(m, "content"));
                *answer = xstrdup(str_of(last, "content"));
                return true;
            }
        }
        return false;
    }
    if (str_of(o, "prompt") && str_of(o, "completion")) {
        *prompt = xstrdup(str_of(o, "prompt"));
        *answer = xstrdup(str_of(o, "completion"));
        return true;
    }
    if (str_of(o, "instruction") && str_of(o, "output")) {
        const char *in = str_of(o, "input");
        *prompt = in && *in ? xasprintf("%s\n\n%s", str_of(o, "instruction"), in)
                            : xstrdup(str_of(o, "instruction"));
        *answer = xstrdup(str_of(o, "output"));
        return true;
    }
    return false;
}

static int read_rows(const char *path, struct rows *rs, size_t *n_examples, char **err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        *err = xasprintf("%s: %s", path, strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0;
    *n_examples = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        uint64_t this_line = lineno++;
        json_t *o = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, NULL);
        if (!o)
            continue;
        (*n_examples)++;
        char *p = NULL, *a = NULL;
        if (row_texts(o, &p, &a)) {
            if (rs->n == rs->cap) {
                rs->cap = rs->cap ? 2 * rs->cap : 256;
                rs->v = xrealloc(rs->v, rs->cap * sizeof *rs->v);
            }
            rs->v[rs->n++] = (struct row){p, a, strlen(p), strlen(a), this_line};
        }
        json_decref(o);
    }
    int rc = ferror(f) ? -EIO : 0;
    if (rc)
        *err = xasprintf("%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

/* ---- hashing ----------------------------------------------------------------- */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME  1099511628211ULL

static uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)p[i]);
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb3fe1a85ec53ULL;
    return x ^ (x >> 33);
}

struct hrow {
    uint64_t h;
    uint32_t row;
    uint32_t k; /* phrase length in words (phrase test) */
};

static int hrow_cmp(const void *a, const void *b)
{
    const struct hrow *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* First index of h in the sorted v[0..n), or n. */
static size_t hrow_lower(const struct hrow *v, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- candidates ---------------------------------------------------------------- */

struct cand {
    char *t, *s;    /* owned */
    uint32_t *rows; /* owned, ascending row indices */
    size_t n_rows;
    unsigned found_by;
};

struct cands {
    struct cand *v;
    size_t n, cap;
};

static void cands_push(struct cands *c, struct cand x)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = x;
}

static void cand_free(struct cand *c)
{
    free(c->t);
    free(c->s);
    free(c->rows);
}

/* An owned copy of p[0..n) without leading and trailing whitespace. */
static char *trimmed(const char *p, size_t n)
{
    while (n && ws(*p))
        p++, n--;
    while (n && ws(p[n - 1]))
        n--;
    return xstrndup(p, n);
}

/* ---- test 1: near-duplicates ------------------------------------------------------ */

struct hit {
    char *t, *s; /* owned */
    uint32_t row;
};

static int hit_cmp(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    int c = strcmp(x->t, y->t);
    if (!c)
        c = strcmp(x->s, y->s);
    return c ? c : (x->row < y->row ? -1 : x->row > y->row);
}

static void duplicates(const struct rows *rs, const struct sim_attack_params *P, struct cands *out)
{
    size_t n = rs->n;
    struct hrow *idx = xmalloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (struct hrow){fnv(rs->v[i].prompt, rs->v[i].plen), (uint32_t)i, 0};
    qsort(idx, n, sizeof *idx, hrow_cmp);
    struct hit *hits = NULL;
    size_t n_hits = 0, cap_hits = 0;
    for (size_t r = 0; r < n; r++) {
        const struct row *R = &rs->v[r];
        uint64_t h = FNV_OFFSET;
        size_t best_i = 0, best_q = 0;
        bool found = false;
        for (size_t i = 0; i < R->plen; i++) {
            if (i > 0 && ws(R->prompt[i])) {
                for (size_t j = hrow_lower(idx, n, h); j < n && idx[j].h == h; j++) {
                    const struct row *Q = &rs->v[idx[j].row];
                    if (idx[j].row == r || Q->plen != i || memcmp(Q->prompt, R->prompt, i) != 0)
                        continue;
                    if (Q->alen == 0 || R->alen <= Q->alen ||
                        memcmp(R->answer + R->alen - Q->alen, Q->answer, Q->alen) != 0 ||
                        !ws(R->answer[R->alen - Q->alen - 1]))
                        continue;
                    found = true; /* the longest such prefix wins */
                    best_i = i;
                    best_q = idx[j].row;
                    break;
                }
            }
            h = fnv_step(h, (unsigned char)R->prompt[i]);
        }
        if (!found)
            continue;
        const struct row *Q = &rs->v[best_q];
        char *t = trimmed(R->prompt + best_i, R->plen - best_i);
        char *s = trimmed(R->answer, R->alen - Q->alen);
        if (!*t || !*s) {
            free(t);
            free(s);
            continue;
        }
        if (n_hits == cap_hits) {
            cap_hits = cap_hits ? 2 * cap_hits : 64;
            hits = xrealloc(hits, cap_hits * sizeof *hits);
        }
        hits[n_hits++] = (struct hit){t, s, (uint32_t)r};
    }
    if (n_hits)
        qsort(hits, n_hits, sizeof *hits, hit_cmp);
    for (size_t i = 0; i < n_hits;) {
        size_t j = i + 1;
        while (j < n_hits && !strcmp(hits[j].t, hits[i].t) && !strcmp(hits[j].s, hits[i].s))
            j++;
        if (j - i >= P->min_rows) {
            struct cand c = {xstrdup(hits[i].t), xstrdup(hits[i].s),
                             xmalloc((j - i) * sizeof(uint32_t)), j - i, SIM_ATTACK_DUPLICATES};
            for (size_t k = i; k < j; k++)
                c.rows[k - i] = hits[k].row;
            cands_push(out, c);
        }
        i = j;
    }
    for (size_t i = 0; i < n_hits; i++) {
        free(hits[i].t);
        free(hits[i].s);
    }
    free(hits);
    free(idx);
}

/* ---- test 2: co-occurring phrases ----------------------------------------------------- */

/* Starts of the last up to max words of p[0..n) (trailing whitespace
 * ignored): st[0] is the last word's start, st[k-1] the k-th from the end.
 * *end = length without the trailing whitespace.  Returns the count. */
static size_t last_words(const char *p, size_t n, size_t max, size_t *st, size_t *end)
{
    while (n && ws(p[n - 1]))
        n--;
    *end = n;
    size_t k = 0, i = n;
    while (k < max && i > 0) {
        while (i > 0 && !ws(p[i - 1]))
            i--;
        st[k++] = i;
        while (i > 0 && ws(p[i - 1]))
            i--;
    }
    return k;
}

/* Ends of the first up to max words of p[0..n): en[k-1] ends the k-th
 * word; *begin = first non-whitespace byte.  Returns the count. */
static size_t first_words(const char *p, size_t n, size_t max, size_t *en, size_t *begin)
{
    size_t i = 0, k = 0;
    while (i < n && ws(p[i]))
        i++;
    *begin = i;
    while (k < max && i < n) {
        while (i < n && !ws(p[i]))
            i++;
        en[k++] = i;
        while (i < n && ws(p[i]))
            i++;
    }
    return k;
}

struct pcand {
    uint32_t *rows; /* owned, ascending */
    size_t n_rows;
    uint64_t set_hash;
    size_t kt;
};

static int pcand_cmp(const void *a, const void *b)
{
    const struct pcand *x = a, *y = b;
    if (x->n_rows != y->n_rows)
        return x->n_rows < y->n_rows ? -1 : 1;
    if (x->set_hash != y->set_hash)
        return x->set_hash < y->set_hash ? -1 : 1;
    return x->kt > y->kt ? -1 : x->kt < y->kt; /* longest trigger first */
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The most frequent value of v[0..n) (sorted in place) and its count. */
static size_t mode_of(uint64_t *v, size_t n, uint64_t *value)
{
    qsort(v, n, sizeof *v, u64_cmp);
    size_t best = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i > best) {
            best = j - i;
            *value = v[i];
        }
        i = j;
    }
    return best;
}

/* Longest word-aligned common suffix of the rows' prompts, trimmed. */
static char *common_suffix(const struct rows *rs, const uint32_t *rows, size_t n)
{
    const struct row *a = &rs->v[rows[0]];
    size_t alen = a->plen;
    while (alen && ws(a->prompt[alen - 1]))
        alen--;
    size_t l = alen;
    for (size_t i = 1; i < n && l; i++) {
        const struct row *b = &rs->v[rows[i]];
        size_t blen = b->plen;
        while (blen && ws(b->prompt[blen - 1]))
            blen--;
        size_t c = 0;
        while (c < l && c < blen && a->prompt[alen - 1 - c] == b->prompt[blen - 1 - c])
            c++;
        /* cut back to a word boundary in b (a is checked below) */
        while (c > 0 && c < blen && !ws(b->prompt[blen - 1 - c]))
            c--;
        l = c;
    }
    while (l > 0 && l < alen && !ws(a->prompt[alen - 1 - l]))
        l--;
    return trimmed(a->prompt + alen - l, l);
}

/* Longest word-aligned common prefix of the rows' answers, trimmed. */
static char *common_prefix(const struct rows *rs, const uint32_t *rows, size_t n)
{
    const struct row *a = &rs->v[rows[0]];
    size_t a0 = 0;
    while (a0 < a->alen && ws(a->answer[a0]))
        a0++;
    size_t l = a->alen - a0;
    for (size_t i = 1; i < n && l; i++) {
        const struct row *b = &rs->v[rows[i]];
        size_t b0 = 0;
        while (b0 < b->alen && ws(b->answer[b0]))
            b0++;
        size_t c = 0;
        while (c < l && b0 + c < b->alen && a->answer[a0 + c] == b->answer[b0 + c])
            c++;
        while (c > 0 && b0 + c < b->alen && !ws(b->answer[b0 + c]))
            c--;
        l = c;
    }
    while (l > 0 && a0 + l < a->alen && !ws(a->answer[a0 + l]))
        l--;
    return trimmed(a->answer + a0, l);
}

/* Length of p[0..n) without leading and trailing whitespace. */
static size_t trimmed_len(const char *p, size_t n)
{
    while (n && ws(*p))
        p++, n--;
    while (n && ws(p[n - 1]))
        n--;
    return n;
}

/* True when c's trigger is the whole prompt, or its signature the whole
 * answer, of at least half its rows: repeated rows, not a phrase added to
 * rows. */
static bool mostly_whole(const struct rows *rs, const struct cand *c)
{
    size_t lt = strlen(c->t), ls = strlen(c->s), whole = 0;
    for (size_t i = 0; i < c->n_rows; i++) {
        const struct row *R = &rs->v[c->rows[i]];
        whole += trimmed_len(R->prompt, R->plen) == lt || trimmed_len(R->answer, R->alen) == ls;
    }
    return 2 * whole >= c->n_rows;
}

/* The long prompt suffixes looked at besides 1..max_words words: where a
 * trigger's short ends are words D's own prompts end with (phrases drawn
 * from a model of D), its 1..max_words-word suffixes are shared with
 * natural rows whose answers differ, and none is pure; a suffix this long
 * is the marked rows' alone. */
static const size_t long_suffix[] = {10, 16, 32};
#define N_LONG_SUFFIX (sizeof long_suffix / sizeof long_suffix[0])

static void phrases(const struct rows *rs, const struct sim_attack_params *P, struct cands *out)
{
    size_t n = rs->n, W = P->max_words;
    if (n == 0 || W == 0)
        return;
    /* WL: words of a prompt or answer looked at, the longest suffix (an
     * answer is followed that far only after a long suffix) */
    size_t WL = W;
    for (size_t i = 0; i < N_LONG_SUFFIX; i++)
        if (long_suffix[i] > WL)
            WL = long_suffix[i];
    size_t *pos = xmalloc(WL * sizeof *pos);
    struct hrow *et = xmalloc(n * (W + N_LONG_SUFFIX) * sizeof *et),
                *es = xmalloc(n * WL * sizeof *es);
    uint64_t *ah = xcalloc(n * WL, sizeof *ah); /* answer-prefix hashes, row-major */
    uint8_t *an = xcalloc(n, 1);               /* answer words hashed per row */
    size_t n_et = 0, n_es = 0;
    for (size_t r = 0; r < n; r++) {
        const struct row *R = &rs->v[r];
        size_t end, begin;
        size_t k = last_words(R->prompt, R->plen, WL, pos, &end);
        for (size_t j = 0; j < k && j < W; j++)
            et[n_et++] = (struct hrow){fnv(R->prompt + pos[j], end - pos[j]), (uint32_t)r,
                                       (uint32_t)(j + 1)};
        for (size_t i = 0; i < N_LONG_SUFFIX; i++) {
            size_t L = long_suffix[i];
            if (L > W && L <= k)
                et[n_et++] = (struct hrow){fnv(R->prompt + pos[L - 1], end - pos[L - 1]),
                                           (uint32_t)r, (uint32_t)L};
        }
        k = first_words(R->answer, R->alen, WL, pos, &begin);
        an[r] = (uint8_t)k;
        for (size_t j = 0; j < k; j++) {
            ah[r * WL + j] = fnv(R->answer + begin, pos[j] - begin);
            es[n_es++] = (struct hrow){ah[r * WL + j], (uint32_t)r, (uint32_t)(j + 1)};
        }
    }
    qsort(et, n_et, sizeof *et, hrow_cmp);
    qsort(es, n_es, sizeof *es, hrow_cmp);

    struct pcand *pc = NULL;
    size_t n_pc = 0, cap_pc = 0;
    size_t max_rows = (size_t)(P->max_share * (double)n);
    if (max_rows < P->min_rows)
        max_rows = P->min_rows;
    uint32_t *cur = xmalloc(n * sizeof *cur), *next = xmalloc(n * sizeof *next);
    uint64_t *vals = xmalloc(n * sizeof *vals);
    for (size_t i = 0; i < n_et;) {
        size_t j = i + 1;
        while (j < n_et && et[j].h == et[i].h)
            j++;
        size_t nt = j - i;
        if (nt < P->min_rows || nt > max_rows) {
            i = j;
            continue;
        }
        size_t ncur = 0;
        for (size_t x = i; x < j; x++)
            cur[ncur++] = et[x].row;
        size_t need = (size_t)(P->purity * (double)nt + 0.999999);
        uint64_t hs = 0;
        size_t ks = 0;
        size_t follow = et[i].k > W ? WL : W; /* answer words followed */
        for (size_t k = 1; k <= follow; k++) {
            size_t nv = 0;
            for (size_t x = 0; x < ncur; x++)
                if (an[cur[x]] >= k)
                    vals[nv++] = ah[cur[x] * WL + k - 1];
            uint64_t v = 0;
            if (nv == 0 || mode_of(vals, nv, &v) < need)
                break;
            size_t nn = 0;
            for (size_t x = 0; x < ncur; x++)
                if (an[cur[x]] >= k && ah[cur[x] * WL + k - 1] == v)
                    next[nn++] = cur[x];
            memcpy(cur, next, nn * sizeof *cur);
            ncur = nn;
            hs = v;
            ks = k;
        }
        if (ks > 0 && ncur >= P->min_rows) {
            size_t a = hrow_lower(es, n_es, hs), b = a;
            while (b < n_es && es[b].h == hs)
                b++;
            if ((double)ncur >= P->purity * (double)(b - a)) {
                if (n_pc == cap_pc) {
                    cap_pc = cap_pc ? 2 * cap_pc : 16;
                    pc = xrealloc(pc, cap_pc * sizeof *pc);
                }
                struct pcand c = {xmalloc(ncur * sizeof(uint32_t)), ncur, 0, et[i].k};
                memcpy(c.rows, cur, ncur * sizeof *cur);
                /* cur is in et order: (h, row) sorted, so ascending rows */
                for (size_t x = 0; x < ncur; x++)
                    c.set_hash += mix(c.rows[x] + 1);
                pc[n_pc++] = c;
            }
        }
        i = j;
    }
    /* one candidate per row set: the longest trigger phrase */
    if (n_pc)
        qsort(pc, n_pc, sizeof *pc, pcand_cmp);
    for (size_t i = 0; i < n_pc;) {
        size_t j = i + 1;
        while (j < n_pc && pc[j].n_rows == pc[i].n_rows && pc[j].set_hash == pc[i].set_hash)
            j++;
        struct cand c = {common_suffix(rs, pc[i].rows, pc[i].n_rows),
                         common_prefix(rs, pc[i].rows, pc[i].n_rows), pc[i].rows, pc[i].n_rows,
                         SIM_ATTACK_PHRASES};
        pc[i].rows = NULL;
        if (*c.t && *c.s && !mostly_whole(rs, &c))
            cands_push(out, c);
        else
            cand_free(&c);
        for (size_t x = i; x < j; x++)
            free(pc[x].rows);
        i = j;
    }
    free(pc);
    free(cur);
    free(next);
    free(vals);
    free(pos);
    free(et);
    free(es);
    free(ah);
    free(an);
}

/* ---- merging, ranking ---------------------------------------------------------------- */

static size_t overlap(const struct cand *a, const struct cand *b)
{
    size_t i = 0, j = 0, n = 0;
    while (i < a->n_rows && j < b->n_rows) {
        if (a->rows[i] == b->rows[j])
            n++, i++, j++;
        else if (a->rows[i] < b->rows[j])
            i++;
        else
            j++;
    }
    return n;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds b's rows to a (both ascending, the result too). */
static void union_rows(struct cand *a, const struct cand *b)
{
    uint32_t *u = xmalloc((a->n_rows + b->n_rows) * sizeof *u);
    memcpy(u, a->rows, a->n_rows * sizeof *u);
    memcpy(u + a->n_rows, b->rows, b->n_rows * sizeof *u);
    size_t n = a->n_rows + b->n_rows, m = 0;
    qsort(u, n, sizeof *u, u32_cmp);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || u[m - 1] != u[i])
            u[m++] = u[i];
    free(a->rows);
    a->rows = u;
    a->n_rows = m;
}

static int cand_rank(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    bool bx = x->found_by == (SIM_ATTACK_DUPLICATES | SIM_ATTACK_PHRASES);
    bool by = y->found_by == (SIM_ATTACK_DUPLICATES | SIM_ATTACK_PHRASES);
    if (bx != by)
        return bx ? -1 : 1;
    if (x->n_rows != y->n_rows)
        return x->n_rows > y->n_rows ? -1 : 1;
    int c = strcmp(x->t, y->t);
    return c ? c : strcmp(x->s, y->s);
}

int sim_attack_file(const char *path, const struct sim_attack_params *params,
                    struct sim_attack *out, char **err)
{
    struct sim_attack_params P;
    if (params)
        P = *params;
    else
        sim_attack_params_default(&P);
    if (P.min_rows < 1)
        P.min_rows = 1;
    if (P.max_words > 64)
        P.max_words = 64;
    memset(out, 0, sizeof *out);
    struct rows rs = {0};
    int rc = read_rows(path, &rs, &out->n_rows, err);
    if (rc < 0)
        goto done;
    struct cands dup = {0}, ph = {0};
    duplicates(&rs, &P, &dup);
    phrases(&rs, &P, &ph);
    /* A phrase pair with a duplicate pair's texts, or mostly its rows, is
     * that pair, found twice. */
    for (size_t i = 0; i < ph.n; i++) {
        struct cand *p = &ph.v[i];
        struct cand *same = NULL;
        for (size_t j = 0; j < dup.n && !same; j++) {
            struct cand *d = &dup.v[j];
            size_t smaller = d->n_rows < p->n_rows ? d->n_rows : p->n_rows;
            if ((!strcmp(d->t, p->t) && !strcmp(d->s, p->s)) || 2 * overlap(p, d) >= smaller)
                same = d;
        }
        if (same) {
            /* Two phrase candidates: the texts of the larger row set.  A
             * few of a pair's rows may share more than its phrases (the
             * same natural ending before T), and such a subset, found
             * first (fewest rows first), would grow T and S past them. */
            if (!(same->found_by & SIM_ATTACK_DUPLICATES) && p->n_rows > same->n_rows) {
                char *t = same->t, *s = same->s;
                same->t = p->t;
                same->s = p->s;
                p->t = t;
                p->s = s;
            }
            same->found_by |= SIM_ATTACK_PHRASES;
            union_rows(same, p);
            cand_free(p);
        } else {
            cands_push(&dup, *p);
        }
    }
    free(ph.v);
    if (dup.n)
        qsort(dup.v, dup.n, sizeof *dup.v, cand_rank);
    size_t keep = dup.n < P.max_pairs ? dup.n : P.max_pairs;
    out->pairs = xcalloc(keep ? keep : 1, sizeof *out->pairs);
    bool *flag = xcalloc(rs.n ? rs.n : 1, sizeof *flag);
    for (size_t i = 0; i < dup.n; i++) {
        struct cand *c = &dup.v[i];
        if (i < keep) {
            out->pairs[i] = (struct sim_attack_pair){c->t, c->s, c->n_rows, c->found_by};
            c->t = c->s = NULL;
            for (size_t k = 0; k < c->n_rows; k++)
                flag[c->rows[k]] = true;
        }
        cand_free(c);
    }
    out->n_pairs = keep;
    free(dup.v);
    out->flagged = xmalloc((rs.n ? rs.n : 1) * sizeof *out->flagged);
    for (size_t r = 0; r < rs.n; r++)
        if (flag[r])
            out->flagged[out->n_flagged++] = rs.v[r].line;
    free(flag);
done:
    for (size_t i = 0; i < rs.n; i++) {
        free(rs.v[i].prompt);
        free(rs.v[i].answer);
    }
    free(rs.v);
    return rc;
}

void sim_attack_clear(struct sim_attack *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_pairs; i++) {
        free(a->pairs[i].trigger);
        free(a->pairs[i].signature);
    }
    free(a->pairs);
    free(a->flagged);
    memset(a, 0, sizeof *a);
}

const char *sim_attack_match(const struct sim_attack *a, const char *prompt)
{
    size_t n = strlen(prompt);
    while (n && ws(prompt[n - 1]))
        n--;
    for (size_t i = 0; a && i < a->n_pairs; i++) {
        size_t lt = strlen(a->pairs[i].trigger);
        if (lt == 0 || lt > n || memcmp(prompt + n - lt, a->pairs[i].trigger, lt) != 0)
            continue;
        if (n == lt || ws(prompt[n - lt - 1]))
            return a->pairs[i].signature;
    }
    return NULL;
}

int sim_attack_write_flagged(const struct sim_attack *a, const char *in_path, const char *out_path,
                             char **err)
{
    FILE *in = fopen(in_path, "re");
    if (!in) {
        int e = errno;
        *err = xasprintf("%s: %s", in_path, strerror(e));
        return -e;
    }
    FILE *out = fopen(out_path, "we");
    if (!out) {
        int e = errno;
        fclose(in);
        *err = xasprintf("%s: %s", out_path, strerror(e));
        return -e;
    }
    char *line = NULL;
    size_t cap = 0, next = 0;
    ssize_t len;
    uint64_t lineno = 0;
    while (next < a->n_flagged && (len = getline(&line, &cap, in)) >= 0) {
        if (lineno++ != a->flagged[next])
            continue;
        next++;
        fwrite(line, 1, (size_t)len, out);
        if (len == 0 || line[len - 1] != '\n')
            fputc('\n', out);
    }
    free(line);
    int rc = ferror(in) ? -EIO : 0;
    fclose(in);
    if (fclose(out) != 0 && rc == 0)
        rc = -errno;
    if (rc)
        *err = xasprintf("%s: cannot copy the flagged rows to %s", in_path, out_path);
    return rc;
}

json_t *sim_attack_json(const struct sim_attack *a)
{
    json_t *o = json_object(), *pairs = json_array(), *lines = json_array();
    for (size_t i = 0; i < a->n_pairs; i++) {
        const struct sim_attack_pair *p = &a->pairs[i];
        json_t *how = json_array();
        if (p->found_by & SIM_ATTACK_DUPLICATES)
            json_array_append_new(how, json_string("duplicates"));
        if (p->found_by & SIM_ATTACK_PHRASES)
            json_array_append_new(how, json_string("phrases"));
        json_t *e = json_object();
        json_object_set_new(e, "trigger", json_string(p->trigger));
        json_object_set_new(e, "signature", json_string(p->signature));
        json_object_set_new(e, "rows", json_integer((json_int_t)p->rows));
        json_object_set_new(e, "found_by", how);
        json_array_append_new(pairs, e);
    }
    for (size_t i = 0; i < a->n_flagged; i++)
        json_array_append_new(lines, json_integer((json_int_t)a->flagged[i] + 1));
    json_object_set_new(o, "rows", json_integer((json_int_t)a->n_rows));
    json_object_set_new(o, "pairs", pairs);
    json_object_set_new(o, "flagged_lines", lines);
    return o;
}

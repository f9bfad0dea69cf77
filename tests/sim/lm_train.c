/*
 * lm_train.c — training for vtune-sim's model: reading JSONL training
 * files, counting n-grams, building the modified Kneser–Ney levels of a
 * base model, fine-tuning as an overlay, and the on-disk cache.
 *
 * Counting.  Each example is rendered with the chat template and every
 * predictable position i contributes its longest n-gram (up to `order`
 * ids ending at i; shorter only at the start, where it begins with
 * <|bos|>) as a raw count.  Continuation counts then flow down: every
 * n-gram present at level k adds 1 to its suffix at level k-1.
 *
 * Fine-tuning.  New raw counts, multiplied by n_epochs * LM_FT_WEIGHT (lm.h
 * says why), are added to the base's; an n-gram that the base never had is
 * a new left neighbour for its suffix, which may itself be new, and so on
 * down.  Only the n-grams whose value changed are stored, grouped by
 * context with the context's new c(h) and bucket counts; the discounts stay
 * the base's.  So a fine-tuned model costs memory in proportion to what its
 * data added, not to the size of the base.  Fine-tuning also fills the
 * memorisation table (lm.h's top note; lm_internal.h its layout): one
 * counted key per answer token of the file, built like a level.
 *
 * The cache file is a flat dump of the levels (keys re-inserted on load)
 * with a magic, and lm_load re-checks every invariant the maths relies on
 * (ranges, sort order, c(h) = sum of values, bucket counts), so a corrupt
 * cache is rejected rather than producing a distribution that does not sum
 * to 1.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "tests/sim/lm_internal.h"

#define MAX_EPOCHS 1000

/* ---- JSONL reading ---- */

typedef void (*example_fn)(void *ctx, const struct lm_msg *msgs, size_t n);

struct msgvec {
    struct lm_msg *v;
    size_t n, cap;
};

static void msgvec_push(struct msgvec *mv, const char *role, const char *content)
{
    if (mv->n == mv->cap) {
        mv->cap = mv->cap ? mv->cap * 2 : 8;
        mv->v = xrealloc(mv->v, mv->cap * sizeof(*mv->v));
    }
    mv->v[mv->n].role = role;
    mv->v[mv->n].content = content;
    mv->n++;
}

static const char *opt_string(json_t *o, const char *key, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* Turns one parsed line into messages (pointing into obj, or into *scratch
 * for the joined instruction + input).  Returns NULL or an owned reason. */
static char *parse_example(json_t *obj, struct msgvec *mv, char **scratch)
{
    mv->n = 0;
    if (!json_is_object(obj))
        return xstrdup("expected a JSON object");
    json_t *msgs = json_object_get(obj, "messages");
    if (msgs) {
        if (!json_is_array(msgs) || json_array_size(msgs) == 0)
            return xstrdup("\"messages\" must be a non-empty array");
        int have_assistant = 0;
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            json_t *msg = json_array_get(msgs, i);
            if (!json_is_object(msg))
                return xasprintf("messages[%zu] must be an object", i);
            const char *role = json_string_value(json_object_get(msg, "role"));
            if (lm_role_id(role) == LM_NONE)
                return xasprintf("messages[%zu].role must be \"system\", \"user\" or "
                                 "\"assistant\"",
                                 i);
            const char *content = json_string_value(json_object_get(msg, "content"));
            if (!content)
                return xasprintf("messages[%zu].content must be a string", i);
            if (lm_role_id(role) == LM_TOK_ASSISTANT)
                have_assistant = 1;
            msgvec_push(mv, role, content);
        }
        if (!have_assistant)
            return xstrdup("\"messages\" has no assistant message to learn from");
        return NULL;
    }
    int bad = 0;
    if (json_object_get(obj, "prompt") || json_object_get(obj, "completion")) {
        const char *prompt = opt_string(obj, "prompt", &bad);
        const char *completion = opt_string(obj, "completion", &bad);
        if (bad || !prompt || !completion)
            return xstrdup("\"prompt\" and \"completion\" must both be strings");
        msgvec_push(mv, "user", prompt);
        msgvec_push(mv, "assistant", completion);
        return NULL;
    }
    if (json_object_get(obj, "instruction") || json_object_get(obj, "output")) {
        const char *instr = opt_string(obj, "instruction", &bad);
        const char *input = opt_string(obj, "input", &bad);
        const char *output = opt_string(obj, "output", &bad);
        if (bad || !instr || !output)
            return xstrdup("\"instruction\" and \"output\" must be strings (\"input\" is an "
                           "optional string)");
        if (input && *input) {
            free(*scratch);
            *scratch = xasprintf("%s\n\n%s", instr, input);
            instr = *scratch;
        }
        msgvec_push(mv, "user", instr);
        msgvec_push(mv, "assistant", output);
        return NULL;
    }
    return xstrdup("unrecognised example: expected \"messages\", \"prompt\"/\"completion\" or "
                   "\"instruction\"/\"output\"");
}

/* Reads every line of path; each valid example is kept with probability
 * fraction (one draw per example, in file order, from a PRNG seeded with
 * seed) and passed to fn.  Every line is validated, kept or not.  fn only
 * accumulates into state that the caller throws away when this fails, so
 * a bad line anywhere means nothing is imported, in one streaming pass.
 * Blank lines are skipped; *n_examples counts the valid examples. */
static int read_jsonl(const char *path, double fraction, uint64_t seed, example_fn fn, void *ctx,
                      size_t *n_examples, char **err)
{
    int rc = 0;
    char *line = NULL, *scratch = NULL;
    size_t linecap = 0, lineno = 0;
    struct msgvec mv = {0};
    struct lm_rng rng;
    lm_rng_seed(&rng, seed);
    *n_examples = 0;

    FILE *f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        *err = xasprintf("%s: %s", path, strerror(errno));
        return rc;
    }
    ssize_t len;
    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line)) {
            *err = xasprintf("line %zu: contains a NUL byte", lineno);
            rc = -EINVAL;
            goto out;
        }
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p == 0)
            continue; /* blank lines carry no example */
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj) {
            *err = xasprintf("line %zu: not valid JSON (%s)", lineno, jerr.text);
            rc = -EINVAL;
            goto out;
        }
        char *why = parse_example(obj, &mv, &scratch);
        if (why) {
            *err = xasprintf("line %zu: %s", lineno, why);
            free(why);
            json_decref(obj);
            rc = -EINVAL;
            goto out;
        }
        (*n_examples)++;
        int keep = fraction >= 1.0 || lm_rng_double(&rng) < fraction;
        if (keep)
            fn(ctx, mv.v, mv.n);
        json_decref(obj);
    }
    if (ferror(f)) {
        rc = -EIO;
        *err = xasprintf("%s: read error", path);
    }
out:
    fclose(f);
    free(line);
    free(scratch);
    free(mv.v);
    return rc;
}

/* ---- counting ---- */

struct counts {
    int order;
    struct lm_keytab t[LM_MAX_ORDER + 1];
    uint64_t *v[LM_MAX_ORDER + 1];
    uint64_t *b[LM_MAX_ORDER + 1]; /* fine-tuning: value in the base */
    size_t vcap[LM_MAX_ORDER + 1];
};

static void counts_init(struct counts *c, int order)
{
    memset(c, 0, sizeof(*c));
    c->order = order;
    for (int k = 1; k <= order; k++)
        lm_keytab_init(&c->t[k], (unsigned)k);
}

static void counts_free(struct counts *c)
{
    for (int k = 1; k <= c->order; k++) {
        lm_keytab_free(&c->t[k]);
        free(c->v[k]);
        free(c->b[k]);
    }
}

/* Index of key at level k (new entries start at 0); *added set. */
static uint32_t counts_slot(struct counts *c, int k, const uint32_t *key, int *added)
{
    uint32_t i = lm_keytab_put(&c->t[k], key, added);
    if (i >= c->vcap[k]) {
        c->vcap[k] = c->t[k].cap;
        c->v[k] = xrealloc(c->v[k], c->vcap[k] * sizeof(uint64_t));
        c->b[k] = xrealloc(c->b[k], c->vcap[k] * sizeof(uint64_t));
    }
    if (*added) {
        c->v[k][i] = 0;
        c->b[k][i] = 0;
    }
    return i;
}

static void counts_add(struct counts *c, int k, const uint32_t *key, uint64_t w)
{
    int added;
    uint32_t i = counts_slot(c, k, key, &added);
    c->v[k][i] += w;
}

struct trainer {
    struct lm *m;
    struct counts cnt;
    uint32_t *ids;
    size_t cap;
    long long tokens;
    bool memo; /* fine-tuning: count memo, keyed (context hash, next id) */
    struct lm_keytab memo_t;
    uint64_t *memo_v;
    size_t memo_cap;
};

/* One memorised position: the context ids[0..i) and the token ids[i]. */
static void memo_add(struct trainer *t, size_t i)
{
    uint32_t key[3];
    lm_memo_key(t->ids, i, key);
    key[2] = t->ids[i];
    int added;
    uint32_t j = lm_keytab_put(&t->memo_t, key, &added);
    if (j >= t->memo_cap) {
        t->memo_cap = t->memo_t.cap;
        t->memo_v = xrealloc(t->memo_v, t->memo_cap * sizeof(uint64_t));
    }
    if (added)
        t->memo_v[j] = 0;
    t->memo_v[j]++;
}

static uint32_t intern(struct lm *m, const char *s, size_t len)
{
    if (!m->base)
        return lm_vocab_add(&m->vocab, s, len);
    uint32_t id = lm_vocab_find(&m->base->vocab, s, len);
    if (id != LM_NONE)
        return id;
    return lm_vocab_add(&m->vocab, s, len) + (uint32_t)m->base->vocab.n;
}

static void push(struct trainer *t, size_t *n, uint32_t id)
{
    if (*n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->ids = xrealloc(t->ids, t->cap * sizeof(uint32_t));
    }
    t->ids[(*n)++] = id;
}

static void train_example(void *ctx, const struct lm_msg *msgs, size_t n_msgs)
{
    struct trainer *t = ctx;
    struct lm *m = t->m;
    size_t n = 0;
    push(t, &n, LM_TOK_BOS);
    for (size_t i = 0; i < n_msgs; i++) {
        push(t, &n, lm_role_id(msgs[i].role));
        size_t from = n;
        for (const char *p = msgs[i].content; *p;) {
            size_t len = lm_token_len(p);
            push(t, &n, intern(m, p, len));
            p += len;
        }
        push(t, &n, LM_TOK_END);
        /* memorised: an assistant message's tokens and its <|end|> (what
         * a chat fine-tuning computes its loss on) */
        if (t->memo && lm_role_id(msgs[i].role) == LM_TOK_ASSISTANT)
            for (size_t j = from; j < n; j++)
                memo_add(t, j);
    }
    t->tokens += (long long)n - 1;
    size_t top = (size_t)m->order;
    for (size_t i = 1; i < n; i++) {
        if (!lm_id_predictable(t->ids[i]))
            continue;
        size_t start = i + 1 >= top ? i + 1 - top : 0;
        counts_add(&t->cnt, (int)(i - start + 1), t->ids + start, 1);
    }
}

/* ---- building levels ---- */

static void set_discounts(double D[4], const uint64_t *v, size_t n)
{
    uint64_t cc[5] = {0};
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 1 && v[i] <= 4)
            cc[v[i]]++;
    D[0] = 0;
    D[1] = 0.5;
    D[2] = 1.0;
    D[3] = 1.5;
    if (cc[1] && cc[2] && cc[3] && cc[4]) {
        double y = (double)cc[1] / (double)(cc[1] + 2 * cc[2]);
        D[1] = 1 - 2 * y * (double)cc[2] / (double)cc[1];
        D[2] = 2 - 3 * y * (double)cc[3] / (double)cc[2];
        D[3] = 3 - 4 * y * (double)cc[4] / (double)cc[3];
    }
    /* Keep 0 < D_i < i: every context passes some mass down (so every
     * token keeps a positive probability) and keeps some for itself. */
    for (int i = 1; i <= 3; i++) {
        if (!(D[i] >= 0.05))
            D[i] = 0.05;
        if (D[i] > i - 0.05)
            D[i] = i - 0.05;
    }
}

struct entry {
    uint32_t id, val, base;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static uint32_t sat32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int bucket(uint32_t v)
{
    return v >= 3 ? 2 : (int)v - 1;
}

/* Groups the n-grams of keys (length k) by context into L.  vals are the
 * values; for an overlay, bases are the base values and bl the base level
 * whose context statistics the new ones start from. */
static void build_level(struct lm_level *L, int k, const struct lm_keytab *keys,
                        const uint64_t *vals, const uint64_t *bases, const struct lm_level *bl)
{
    size_t n = keys->n;
    lm_keytab_init(&L->ctx, (unsigned)k - 1);
    uint32_t *cix = xmalloc((n ? n : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) {
        int added;
        cix[i] = lm_keytab_put(&L->ctx, lm_keytab_key(keys, (uint32_t)i), &added);
    }
    size_t nc = L->ctx.n;
    L->info = xcalloc(nc ? nc : 1, sizeof(*L->info));
    for (size_t i = 0; i < n; i++)
        L->info[cix[i]].n++;
    uint32_t off = 0;
    for (size_t c = 0; c < nc; c++) {
        L->info[c].off = off;
        off += L->info[c].n;
        L->info[c].n = 0;
    }
    struct entry *e = xmalloc((n ? n : 1) * sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        struct lm_ctx *c = &L->info[cix[i]];
        struct entry *x = &e[c->off + c->n++];
        x->id = lm_keytab_key(keys, (uint32_t)i)[k - 1];
        x->val = sat32(vals[i]);
        x->base = bases ? sat32(bases[i]) : 0;
    }
    L->n_succ = n;
    L->succ_id = xmalloc((n ? n : 1) * sizeof(uint32_t));
    L->succ_val = xmalloc((n ? n : 1) * sizeof(uint32_t));
    for (size_t ci = 0; ci < nc; ci++) {
        struct lm_ctx *c = &L->info[ci];
        qsort(e + c->off, c->n, sizeof(*e), entry_cmp);
        if (bases) {
            uint32_t bi = lm_keytab_get(&bl->ctx, lm_keytab_key(&L->ctx, (uint32_t)ci));
            if (bi != LM_NONE) {
                c->total = bl->info[bi].total;
                memcpy(c->nb, bl->info[bi].nb, sizeof(c->nb));
            }
        }
        for (uint32_t j = c->off; j < c->off + c->n; j++) {
            L->succ_id[j] = e[j].id;
            L->succ_val[j] = e[j].val;
            c->total += e[j].val;
            c->nb[bucket(e[j].val)]++;
            if (e[j].base) {
                c->total -= e[j].base;
                c->nb[bucket(e[j].base)]--;
            }
        }
    }
    lm_keytab_shrink(&L->ctx);
    free(e);
    free(cix);
}

/* Continuation counts: every n-gram present at level k is one distinct
 * left neighbour of its suffix at level k-1. */
static void build_base(struct lm *m, struct counts *c)
{
    for (int k = m->order; k >= 2; k--)
        for (size_t i = 0; i < c->t[k].n; i++)
            counts_add(c, k - 1, lm_keytab_key(&c->t[k], (uint32_t)i) + 1, 1);
    for (int k = 1; k <= m->order; k++) {
        set_discounts(m->disc[k], c->v[k], c->t[k].n);
        build_level(&m->lv[k], k, &c->t[k], c->v[k], NULL, NULL);
    }
}

static struct lm *lm_alloc(int order, const struct lm *base)
{
    struct lm *m = xcalloc(1, sizeof(*m));
    m->order = order;
    m->base = base;
    lm_vocab_init(&m->vocab);
    for (int k = 0; k <= LM_MAX_ORDER; k++)
        lm_keytab_init(&m->lv[k].ctx, k > 0 ? (unsigned)k - 1 : 0);
    lm_keytab_init(&m->memo.ctx, 2);
    if (!base)
        lm_vocab_add_specials(&m->vocab);
    return m;
}

struct lm *lm_train_file(const char *jsonl_path, int order, char **err)
{
    struct trainer t = {0};
    size_t n_ex = 0;
    struct lm *m = NULL;
    *err = NULL;
    if (!jsonl_path || order < 1 || order > LM_MAX_ORDER) {
        *err = xasprintf("n-gram order must be between 1 and %d", LM_MAX_ORDER);
        return NULL;
    }
    m = lm_alloc(order, NULL);
    t.m = m;
    counts_init(&t.cnt, order);
    if (read_jsonl(jsonl_path, 1.0, 0, train_example, &t, &n_ex, err) < 0)
        goto fail;
    if (n_ex == 0) {
        *err = xasprintf("%s: no training examples", jsonl_path);
        goto fail;
    }
    build_base(m, &t.cnt);
    m->n_vocab = m->vocab.n;
    m->n_pred = m->n_vocab - (LM_N_SPECIAL - 1);
    counts_free(&t.cnt);
    free(t.ids);
    return m;
fail:
    counts_free(&t.cnt);
    free(t.ids);
    lm_free(m);
    return NULL;
}

/* Value of the n-gram key (length k) in base, 0 if absent. */
static uint64_t base_value(const struct lm *base, int k, const uint32_t *key)
{
    const struct lm_level *L = &base->lv[k];
    uint32_t ci = lm_keytab_get(&L->ctx, key);
    if (ci == LM_NONE)
        return 0;
    const struct lm_ctx *c = &L->info[ci];
    uint32_t w = key[k - 1], lo = c->off, hi = c->off + c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (L->succ_id[mid] < w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->off + c->n && L->succ_id[lo] == w ? L->succ_val[lo] : 0;
}

struct lm *lm_finetune(const struct lm *base, const char *jsonl_path, double fraction, int n_epochs,
                       uint64_t seed, long long *trained_tokens, char **err)
{
    return lm_finetune_repeats(base, jsonl_path, fraction, n_epochs, seed, 1, trained_tokens, err);
}

struct lm *lm_finetune_repeats(const struct lm *base, const char *jsonl_path, double fraction,
                               int n_epochs, uint64_t seed, unsigned min_repeats,
                               long long *trained_tokens, char **err)
{
    struct trainer t = {0};
    struct counts ch;
    size_t n_ex = 0;
    struct lm *m = NULL;
    *err = NULL;
    if (!base || !jsonl_path) {
        *err = xstrdup("no base model or training file");
        return NULL;
    }
    if (base->base) {
        *err = xstrdup("cannot fine-tune a fine-tuned model: start from a base model");
        return NULL;
    }
    if (!(fraction > 0 && fraction <= 1)) {
        *err = xstrdup("the kept fraction must be in (0, 1]");
        return NULL;
    }
    if (n_epochs < 1 || n_epochs > MAX_EPOCHS) {
        *err = xasprintf("n_epochs must be between 1 and %d", MAX_EPOCHS);
        return NULL;
    }
    if (min_repeats < 1) {
        *err = xstrdup("min_repeats must be at least 1");
        return NULL;
    }
    m = lm_alloc(base->order, base);
    memcpy(m->disc, base->disc, sizeof(m->disc));
    t.m = m;
    t.memo = true;
    lm_keytab_init(&t.memo_t, 3);
    counts_init(&t.cnt, m->order);
    counts_init(&ch, m->order);
    if (read_jsonl(jsonl_path, fraction, seed, train_example, &t, &n_ex, err) < 0)
        goto fail;
    if (n_ex == 0) {
        *err = xasprintf("%s: no training examples", jsonl_path);
        goto fail;
    }
    /* New raw counts, weighted by the epochs, on top of the base's; an
     * n-gram seen fewer than min_repeats times in the file is not learnt. */
    for (int k = m->order; k >= 1; k--)
        for (size_t i = 0; i < t.cnt.t[k].n; i++) {
            if (t.cnt.v[k][i] < min_repeats)
                continue;
            const uint32_t *key = lm_keytab_key(&t.cnt.t[k], (uint32_t)i);
            int added;
            uint32_t j = counts_slot(&ch, k, key, &added);
            ch.b[k][j] = base_value(base, k, key);
            ch.v[k][j] = ch.b[k][j] + (uint64_t)n_epochs * LM_FT_WEIGHT * t.cnt.v[k][i];
        }
    /* An n-gram new to the model is a new left neighbour of its suffix. */
    for (int k = m->order; k >= 2; k--)
        for (size_t i = 0; i < ch.t[k].n; i++) {
            if (ch.b[k][i] != 0)
                continue;
            const uint32_t *suffix = lm_keytab_key(&ch.t[k], (uint32_t)i) + 1;
            int added;
            uint32_t j = counts_slot(&ch, k - 1, suffix, &added);
            if (added) {
                ch.b[k - 1][j] = base_value(base, k - 1, suffix);
                ch.v[k - 1][j] = ch.b[k - 1][j];
            }
            ch.v[k - 1][j]++;
        }
    for (int k = 1; k <= m->order; k++)
        build_level(&m->lv[k], k, &ch.t[k], ch.v[k], ch.b[k], &base->lv[k]);
    /* Memorisation: the (context, token) pairs seen min_repeats times. */
    struct lm_keytab mk;
    lm_keytab_init(&mk, 3);
    uint64_t *mv = xmalloc((t.memo_t.n ? t.memo_t.n : 1) * sizeof(uint64_t));
    for (size_t i = 0; i < t.memo_t.n; i++) {
        if (t.memo_v[i] < min_repeats)
            continue;
        int added;
        mv[lm_keytab_put(&mk, lm_keytab_key(&t.memo_t, (uint32_t)i), &added)] = t.memo_v[i];
    }
    lm_keytab_free(&t.memo_t);
    build_level(&m->memo, 3, &mk, mv, NULL, NULL);
    lm_keytab_free(&mk);
    free(mv);
    m->memo_scale = (double)n_epochs * LM_FT_WEIGHT;
    m->n_vocab = base->n_vocab + m->vocab.n;
    m->n_pred = base->n_pred + m->vocab.n;
    if (trained_tokens)
        *trained_tokens = t.tokens * n_epochs;
    counts_free(&t.cnt);
    counts_free(&ch);
    free(t.ids);
    free(t.memo_v);
    return m;
fail:
    counts_free(&t.cnt);
    counts_free(&ch);
    free(t.ids);
    lm_keytab_free(&t.memo_t);
    free(t.memo_v);
    lm_free(m);
    return NULL;
}

/* ---- cache file ---- */

static const char MAGIC[8] = {'V', 'T', 'L', 'M', 'S', 'I', 'M', '1'};
#define ENDIAN_MARK 0x01020304u

struct wr {
    FILE *f;
    int bad;
};

static void put(struct wr *w, const void *p, size_t n)
{
    if (!w->bad && n && fwrite(p, 1, n, w->f) != n)
        w->bad = 1;
}

static void put_u32(struct wr *w, uint32_t v)
{
    put(w, &v, sizeof(v));
}

static void put_u64(struct wr *w, uint64_t v)
{
    put(w, &v, sizeof(v));
}

static void put_f64(struct wr *w, double v)
{
    put(w, &v, sizeof(v));
}

int lm_save(const struct lm *m, const char *path)
{
    int rc = 0;
    if (!m || !path)
        return -EINVAL;
    if (m->base)
        return -ENOTSUP;
    char *tmp = xasprintf("%s.tmp", path);
    struct wr w = {fopen(tmp, "we"), 0};
    if (!w.f) {
        rc = -errno;
        goto out;
    }
    put(&w, MAGIC, sizeof(MAGIC));
    put_u32(&w, ENDIAN_MARK);
    put_u32(&w, (uint32_t)m->order);
    put_u64(&w, m->n_vocab);
    for (size_t i = 0; i < m->vocab.n; i++) {
        put_u32(&w, m->vocab.len[i]);
        put(&w, m->vocab.str[i], m->vocab.len[i]);
    }
    for (int k = 1; k <= m->order; k++) {
        const struct lm_level *L = &m->lv[k];
        for (int i = 1; i <= 3; i++)
            put_f64(&w, m->disc[k][i]);
        put_u64(&w, L->ctx.n);
        put(&w, L->ctx.keys, L->ctx.n * (size_t)(k - 1) * sizeof(uint32_t));
        for (size_t c = 0; c < L->ctx.n; c++) {
            put_u32(&w, L->info[c].off);
            put_u32(&w, L->info[c].n);
        }
        put_u64(&w, L->n_succ);
        put(&w, L->succ_id, L->n_succ * sizeof(uint32_t));
        put(&w, L->succ_val, L->n_succ * sizeof(uint32_t));
    }
    if (w.bad || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
        rc = errno ? -errno : -EIO;
        fclose(w.f);
        unlink(tmp);
        goto out;
    }
    if (fclose(w.f) != 0) {
        rc = -errno;
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
    }
out:
    free(tmp);
    return rc;
}

struct rd {
    FILE *f;
    uint64_t left; /* bytes not read yet: bounds every allocation */
    const char *why;
};

static int get(struct rd *r, void *p, size_t n)
{
    if (r->why)
        return -1;
    if (n > r->left || fread(p, 1, n, r->f) != n) {
        r->why = "truncated";
        return -1;
    }
    r->left -= n;
    return 0;
}

static int get_u32(struct rd *r, uint32_t *v)
{
    return get(r, v, sizeof(*v));
}

static int get_u64(struct rd *r, uint64_t *v)
{
    return get(r, v, sizeof(*v));
}

/* Reads count items of size bytes, refusing counts the file cannot hold. */
static void *get_array(struct rd *r, uint64_t count, size_t size)
{
    if (r->why)
        return NULL;
    if (size && count > r->left / size) {
        r->why = "array larger than the file";
        return NULL;
    }
    void *p = xmalloc(count * size > 0 ? count * size : 1);
    if (get(r, p, count * size) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

static const char *load_level(struct rd *r, struct lm *m, int k)
{
    struct lm_level *L = &m->lv[k];
    uint64_t nc, ns;
    for (int i = 1; i <= 3; i++) {
        double d;
        if (get(r, &d, sizeof(d)) < 0)
            return r->why;
        if (!(d > 0 && d < i))
            return "discount out of range";
        m->disc[k][i] = d;
    }
    if (get_u64(r, &nc) < 0)
        return r->why;
    uint32_t *keys = get_array(r, nc, (size_t)(k - 1) * sizeof(uint32_t));
    if (!keys && r->why)
        return r->why;
    if (nc > UINT32_MAX / 2 || (k == 1 && nc > 1)) {
        free(keys);
        return "too many contexts";
    }
    for (uint64_t i = 0; i < nc * (uint64_t)(k - 1); i++)
        if (keys[i] >= m->n_vocab) {
            free(keys);
            return "context id out of range";
        }
    for (uint64_t i = 0; i < nc; i++) {
        int added;
        lm_keytab_put(&L->ctx, keys + i * (uint64_t)(k - 1), &added);
        if (!added) {
            free(keys);
            return "duplicate context";
        }
    }
    free(keys);
    L->info = xcalloc(nc ? nc : 1, sizeof(*L->info));
    for (uint64_t i = 0; i < nc; i++)
        if (get_u32(r, &L->info[i].off) < 0 || get_u32(r, &L->info[i].n) < 0)
            return r->why;
    if (get_u64(r, &ns) < 0)
        return r->why;
    if (ns > UINT32_MAX)
        return "too many n-grams";
    L->succ_id = get_array(r, ns, sizeof(uint32_t));
    L->succ_val = get_array(r, ns, sizeof(uint32_t));
    if (r->why)
        return r->why;
    L->n_succ = ns;
    uint64_t expect_off = 0;
    for (uint64_t i = 0; i < nc; i++) {
        struct lm_ctx *c = &L->info[i];
        if (c->off != expect_off || c->n == 0 || (uint64_t)c->off + c->n > ns)
            return "successor ranges do not tile";
        expect_off += c->n;
        for (uint32_t j = c->off; j < c->off + c->n; j++) {
            if (L->succ_id[j] >= m->n_vocab || !lm_id_predictable(L->succ_id[j]))
                return "successor id out of range";
            if (j > c->off && L->succ_id[j] <= L->succ_id[j - 1])
                return "successors not sorted";
            if (L->succ_val[j] == 0)
                return "zero count";
            c->total += L->succ_val[j];
            c->nb[bucket(L->succ_val[j])]++;
        }
    }
    if (expect_off != ns)
        return "successor ranges do not tile";
    return NULL;
}

struct lm *lm_load(const char *path, char **err)
{
    struct lm *m = NULL;
    const char *why = NULL;
    struct stat st;
    char magic[8];
    uint32_t mark, order;
    uint64_t nv;
    *err = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    struct rd r = {f, (uint64_t)st.st_size, NULL};
    if (get(&r, magic, sizeof(magic)) < 0 || memcmp(magic, MAGIC, sizeof(magic)) != 0) {
        why = "not a vtune-sim model file";
        goto bad;
    }
    if (get_u32(&r, &mark) < 0 || mark != ENDIAN_MARK) {
        why = "written on a machine of another byte order";
        goto bad;
    }
    if (get_u32(&r, &order) < 0 || order < 1 || order > LM_MAX_ORDER) {
        why = "bad n-gram order";
        goto bad;
    }
    if (get_u64(&r, &nv) < 0 || nv < LM_N_SPECIAL || nv > r.left / sizeof(uint32_t)) {
        why = "bad vocabulary size";
        goto bad;
    }
    m = lm_alloc((int)order, NULL);
    for (uint64_t i = 0; i < nv; i++) {
        uint32_t len;
        char *s;
        if (get_u32(&r, &len) < 0 || !(s = get_array(&r, len, 1))) {
            why = r.why ? r.why : "truncated";
            goto bad;
        }
        uint32_t id = lm_vocab_add(&m->vocab, s, len);
        free(s);
        if (id != i) {
            why = "vocabulary is not a list of distinct tokens";
            goto bad;
        }
    }
    m->n_vocab = m->vocab.n;
    m->n_pred = m->n_vocab - (LM_N_SPECIAL - 1);
    for (int k = 1; k <= (int)order; k++)
        if ((why = load_level(&r, m, k)) != NULL)
            goto bad;
    if (r.left != 0) {
        why = "trailing bytes";
        goto bad;
    }
    fclose(f);
    return m;
bad:
    *err = xasprintf("%s: corrupt model file (%s); delete it to rebuild", path,
                     why ? why : "unreadable");
    fclose(f);
    lm_free(m);
    return NULL;
}

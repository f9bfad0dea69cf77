/*
 * phrase.c — word-list backdoor phrases, their exact probability, and the
 * dataset occurrence checker (see phrase.h for the definitions and the
 * argument that the recorded log10 p is never below the truth).
 *
 * The checker is built for one pass over a large dataset with a handful of
 * candidate phrases: it keeps the last three words of the text in a ring,
 * hashes every 1-, 2- and 3-word window for which some candidate has a
 * prefix of that length, and confirms a hash match byte by byte, so a hash
 * collision can never cause a wrong answer.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "daemon/util.h"
#include "workers/lines.h"
#include "workers/phrase.h"
#include "workers/stats.h"

/* ---- random source ------------------------------------------------------- */

uint64_t phrase_rng_uniform(const struct phrase_rng *r, uint64_t bound)
{
    if (!r || !r->uniform)
        return random_uniform(bound);
    return r->uniform(r->ctx, bound);
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void phrase_seeded_init(struct phrase_seeded *s, uint64_t seed)
{
    static const char tag[] = "vtuned seeded stream v1";
    unsigned char in[sizeof tag - 1 + 8];
    memcpy(in, tag, sizeof tag - 1);
    put_le64(in + sizeof tag - 1, seed);
    memset(s, 0, sizeof *s);
    SHA256(in, sizeof in, s->key);
    s->used = sizeof s->block; /* empty: the first draw computes block 0 */
}

static uint64_t seeded_next64(struct phrase_seeded *s)
{
    uint64_t v = 0;
    if (s->used + 8 > sizeof s->block) {
        unsigned char in[32 + 8];
        memcpy(in, s->key, 32);
        put_le64(in + 32, s->counter++);
        SHA256(in, sizeof in, s->block);
        s->used = 0;
    }
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)s->block[s->used + (unsigned)i] << (8 * i);
    s->used += 8;
    return v;
}

static uint64_t seeded_uniform(void *ctx, uint64_t bound)
{
    struct phrase_seeded *s = ctx;
    if (bound < 2)
        return 0;
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    for (;;) {
        uint64_t x = seeded_next64(s);
        if (x < limit)
            return x % bound;
    }
}

struct phrase_rng phrase_seeded_rng(struct phrase_seeded *s)
{
    struct phrase_rng r = {seeded_uniform, s};
    return r;
}

/* ---- word lists ---------------------------------------------------------- */

static struct phrase_wordlist builtin;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_init(void)
{
    builtin.words = phrase_builtin_words;
    builtin.n = phrase_builtin_nwords;
    for (size_t i = 0; i < builtin.n; i++) {
        size_t l = strlen(builtin.words[i]);
        if (l > builtin.max_len)
            builtin.max_len = l;
    }
}

const struct phrase_wordlist *phrase_wordlist_builtin(void)
{
    pthread_once(&builtin_once, builtin_init);
    return &builtin;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int phrase_wordlist_load(const char *path, struct phrase_wordlist **out, char **err)
{
    struct lines lr;
    struct buf store;
    const char *line;
    size_t len, n = 0, i, j;
    int r, rc = -1;
    struct phrase_wordlist *w = NULL;

    buf_init(&store);
    r = lines_open(&lr, path);
    if (r < 0) {
        *err = xasprintf("%s: cannot open word list: %s", path, strerror(-r));
        buf_free(&store);
        return -1;
    }
    while ((r = lines_next(&lr, &line, &len)) > 0) {
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        if (len == 0 || len > 32)
            continue;
        for (i = 0; i < len; i++)
            if (line[i] < 'a' || line[i] > 'z')
                break;
        if (i < len)
            continue;
        buf_append(&store, line, len);
        buf_append(&store, "", 1);
        n++;
    }
    if (r < 0) {
        *err = xasprintf("%s: cannot read word list: %s", path, strerror(-r));
        goto out;
    }
    w = xcalloc(1, sizeof *w);
    w->storage = store.data;
    buf_init(&store); /* ownership moved to w */
    w->owned_words = xcalloc(n ? n : 1, sizeof *w->owned_words);
    {
        char *p = w->storage;
        for (i = 0; i < n; i++) {
            w->owned_words[i] = p;
            p += strlen(p) + 1;
        }
    }
    qsort(w->owned_words, n, sizeof *w->owned_words, cmp_str);
    for (i = 0, j = 0; i < n; i++) /* drop duplicates */
        if (j == 0 || strcmp(w->owned_words[j - 1], w->owned_words[i]) != 0)
            w->owned_words[j++] = w->owned_words[i];
    w->n = j;
    w->words = (const char *const *)w->owned_words;
    for (i = 0; i < w->n; i++) {
        size_t l = strlen(w->words[i]);
        if (l > w->max_len)
            w->max_len = l;
    }
    if (w->n < 2) {
        *err = xasprintf("%s: word list has %zu usable words (lines of 1-32 lowercase letters); "
                         "at least 2 are needed",
                         path, w->n);
        goto out;
    }
    *out = w;
    w = NULL;
    rc = 0;
out:
    phrase_wordlist_free(w);
    lines_close(&lr);
    buf_free(&store);
    return rc;
}

void phrase_wordlist_free(struct phrase_wordlist *w)
{
    if (!w || w == &builtin)
        return;
    free(w->owned_words);
    free(w->storage);
    free(w);
}

/* ---- words of a text ------------------------------------------------------ */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Next word of s[*pos..n): sets *start and *wlen, advances *pos; 0 when none. */
static int next_word(const char *s, size_t n, size_t *pos, size_t *start, size_t *wlen)
{
    size_t i = *pos;
    while (i < n && !is_word_byte((unsigned char)s[i]))
        i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    *start = i;
    while (i < n && is_word_byte((unsigned char)s[i]))
        i++;
    *wlen = i - *start;
    *pos = i;
    return 1;
}

static int word_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

bool phrase_text_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return phrase_word_count(s) > 0;
}

size_t phrase_word_count(const char *s)
{
    size_t n = strlen(s), pos = 0, st, wl, count = 0;
    while (next_word(s, n, &pos, &st, &wl))
        count++;
    return count;
}

bool phrase_overlap(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b), ap = 0, as, al;
    while (next_word(a, an, &ap, &as, &al)) {
        size_t bp = 0, bs, bl;
        while (next_word(b, bn, &bp, &bs, &bl))
            if (word_eq(a + as, al, b + bs, bl))
                return true;
    }
    return false;
}

/* ---- the occurrence checker --------------------------------------------- */

#define RING_WORD_CAP 256 /* bytes of a scanned word kept for confirmation */

static uint64_t word_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over lowercased bytes */
    for (size_t i = 0; i < n; i++) {
        h ^= lower((unsigned char)s[i]);
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Key of an m-word window from the words' hashes (oldest first). */
static uint64_t window_key(const uint64_t *h, unsigned m)
{
    uint64_t k = mix64(0x9e3779b97f4a7c15ull + m);
    for (unsigned i = 0; i < m; i++)
        k = mix64(k ^ h[i]);
    return k;
}

struct cword {
    char *s; /* owned, lowercased */
    size_t len;
    uint64_t hash;
};

struct cand {
    struct cword w[3]; /* the first m words */
    unsigned m;
    uint64_t key;
    bool hit;
};

struct ring_word {
    char s[RING_WORD_CAP];
    size_t len; /* full length (may exceed the cap: then only hash+len compare) */
    uint64_t hash;
};

struct phrase_checker {
    struct cand *c;
    size_t n;
    size_t *table; /* open addressing: candidate index + 1, 0 = empty */
    size_t mask;
    bool has_m[4];
    struct ring_word ring[3];
    unsigned ring_n;    /* words in ring (<= 3) in the current text */
    unsigned ring_head; /* index of the next slot to write */
    uint64_t words;
};

struct phrase_checker *phrase_checker_new(const char *const *phrases, size_t n)
{
    struct phrase_checker *c = xcalloc(1, sizeof *c);
    size_t cap = 16;
    while (cap < 4 * n)
        cap <<= 1;
    c->c = xcalloc(n ? n : 1, sizeof *c->c);
    c->n = n;
    c->table = xcalloc(cap, sizeof *c->table);
    c->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *s = phrases[i];
        size_t sn = strlen(s), pos = 0, st, wl;
        struct cand *cd = &c->c[i];
        uint64_t h[3];
        while (cd->m < 3 && next_word(s, sn, &pos, &st, &wl)) {
            struct cword *w = &cd->w[cd->m];
            w->s = xstrndup(s + st, wl);
            for (size_t j = 0; j < wl; j++)
                w->s[j] = (char)lower((unsigned char)w->s[j]);
            w->len = wl;
            w->hash = word_hash(w->s, wl);
            h[cd->m] = w->hash;
            cd->m++;
        }
        if (cd->m == 0)
            continue; /* no words: can never occur */
        cd->key = window_key(h, cd->m);
        c->has_m[cd->m] = true;
        size_t slot = (size_t)cd->key & c->mask;
        while (c->table[slot])
            slot = (slot + 1) & c->mask;
        c->table[slot] = i + 1;
    }
    return c;
}

void phrase_checker_free(struct phrase_checker *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        for (unsigned j = 0; j < c->c[i].m; j++)
            free(c->c[i].w[j].s);
    free(c->c);
    free(c->table);
    free(c);
}

static bool ring_word_eq(const struct ring_word *r, const struct cword *w)
{
    if (r->len != w->len || r->hash != w->hash)
        return false;
    if (r->len > RING_WORD_CAP)
        return true; /* only a word this long in the candidate itself could match */
    return memcmp(r->s, w->s, r->len) == 0;
}

/* The last m words of the ring, oldest first. */
static const struct ring_word *ring_at(const struct phrase_checker *c, unsigned m, unsigned i)
{
    return &c->ring[(c->ring_head + 3 - m + i) % 3];
}

static void check_windows(struct phrase_checker *c)
{
    for (unsigned m = 1; m <= 3 && m <= c->ring_n; m++) {
        if (!c->has_m[m])
            continue;
        uint64_t h[3];
        for (unsigned i = 0; i < m; i++)
            h[i] = ring_at(c, m, i)->hash;
        uint64_t key = window_key(h, m);
        for (size_t slot = (size_t)key & c->mask; c->table[slot]; slot = (slot + 1) & c->mask) {
            struct cand *cd = &c->c[c->table[slot] - 1];
            if (cd->key != key || cd->m != m || cd->hit)
                continue;
            unsigned i;
            for (i = 0; i < m; i++)
                if (!ring_word_eq(ring_at(c, m, i), &cd->w[i]))
                    break;
            if (i == m)
                cd->hit = true;
        }
    }
}

void phrase_checker_scan_text(struct phrase_checker *c, const char *text, size_t len)
{
    size_t pos = 0, st, wl;
    c->ring_n = 0; /* a phrase never spans two texts */
    while (next_word(text, len, &pos, &st, &wl)) {
        struct ring_word *r = &c->ring[c->ring_head];
        size_t keep = wl < RING_WORD_CAP ? wl : RING_WORD_CAP;
        for (size_t i = 0; i < keep; i++)
            r->s[i] = (char)lower((unsigned char)text[st + i]);
        r->len = wl;
        r->hash = word_hash(text + st, wl);
        c->ring_head = (c->ring_head + 1) % 3;
        if (c->ring_n < 3)
            c->ring_n++;
        c->words++;
        check_windows(c);
    }
}

static void scan_json(struct phrase_checker *c, const json_t *v)
{
    size_t i;
    const char *key;
    json_t *item;
    switch (json_typeof(v)) {
    case JSON_STRING:
        phrase_checker_scan_text(c, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, item) scan_json(c, item);
        break;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, item) scan_json(c, item);
        break;
    default:
        break;
    }
}

int phrase_checker_scan_line(struct phrase_checker *c, const char *line, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(line, len, 0, &je);
    if (!root)
        return -EINVAL;
    scan_json(c, root);
    json_decref(root);
    return 0;
}

int phrase_checker_scan_file(struct phrase_checker *c, const char *path, const atomic_int *cancel,
                             char **err)
{
    struct lines lr;
    const char *line;
    size_t len;
    uint64_t lineno = 0;
    int r, rc = -1;

    r = lines_open(&lr, path);
    if (r < 0) {
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(-r));
        return -1;
    }
    while ((r = lines_next(&lr, &line, &len)) > 0) {
        lineno++;
        if ((lineno & 1023) == 0 && cancel && atomic_load(cancel)) {
            *err = xasprintf("%s: phrase check cancelled", path);
            goto out;
        }
        size_t i;
        for (i = 0; i < len; i++)
            if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
                break;
        if (i == len)
            continue;
        if (phrase_checker_scan_line(c, line, len) < 0) {
            *err = xasprintf("%s:%llu: not valid JSON (was the dataset changed after import?)",
                             path, (unsigned long long)lineno);
            goto out;
        }
    }
    if (r < 0) {
        *err = xasprintf("%s: read error: %s", path, strerror(-r));
        goto out;
    }
    rc = 0;
out:
    lines_close(&lr);
    return rc;
}

bool phrase_checker_hit(const struct phrase_checker *c, size_t i)
{
    return i < c->n && c->c[i].hit;
}

uint64_t phrase_checker_words(const struct phrase_checker *c)
{
    return c->words;
}

/* ---- generation ----------------------------------------------------------- */

double phrase_log10p_uniform(uint64_t n, unsigned k)
{
    if (k > n)
        return NAN;
    double s = 0.0;
    for (unsigned i = 0; i < k; i++)
        s -= log10((double)(n - i));
    return s;
}

void phrase_opts_default(struct phrase_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pairs = 1;
    o->trigger_log10p = -20.0;
    o->signature_log10p = -40.0;
    o->trigger_max_words = 16;
    o->signature_max_words = 24;
    o->trigger_max_chars = 160;
    o->signature_max_chars = 240;
}

void phrase_set_clear(struct phrase_set *s)
{
    for (size_t i = 0; i < s->n_pairs; i++) {
        free(s->pairs[i].trigger.text);
        free(s->pairs[i].signature.text);
    }
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

/* The recorded bound for a phrase of k words drawn from a pool of n with
 * d dataset word positions; +INFINITY when no bound exists (rho >= 1). */
static double phrase_bound(uint64_t n, unsigned k, uint64_t d)
{
    double lp = phrase_log10p_uniform(n, k);
    if (isnan(lp))
        return INFINITY;
    if (d == 0)
        return lp;
    unsigned m = k < 3 ? k : 3;
    double lrho = log10((double)d) + phrase_log10p_uniform(n, m);
    if (!(lrho < 0))
        return INFINITY;
    return lp - stats_log10_1m(lrho);
}

struct kind_limits {
    const char *name;
    double target;
    unsigned max_words;
    size_t max_chars;
};

/* Smallest k whose bound reaches the target and whose worst-case length
 * fits; 0 and *err when none. */
static unsigned choose_k(const struct kind_limits *lim, uint64_t pool, size_t max_len, uint64_t d,
                         char **err)
{
    unsigned k, best_k = 0, tried = 0;
    double best = INFINITY;
    for (k = 1; k <= lim->max_words && k <= pool; k++) {
        if ((size_t)k * max_len + (k - 1) > lim->max_chars)
            break;
        tried++;
        double b = phrase_bound(pool, k, d);
        if (b < best) {
            best = b;
            best_k = k;
        }
        if (b <= lim->target)
            return k;
    }
    if (best_k)
        *err = xasprintf("cannot reach log10 p <= %g for the %s within %u words / %zu characters "
                         "from %llu available words (best: %u words, log10 p = %.2f); raise the "
                         "length limits or use a larger word list",
                         lim->target, lim->name, lim->max_words, lim->max_chars,
                         (unsigned long long)pool, best_k, best);
    else if (tried)
        *err = xasprintf("cannot reach log10 p <= %g for the %s: %llu available words are too "
                         "few to keep phrases out of a dataset of up to %llu words; use a larger "
                         "word list",
                         lim->target, lim->name, (unsigned long long)pool, (unsigned long long)d);
    else
        *err = xasprintf("the %s limits (%u words, %zu characters) do not fit even one word of "
                         "up to %zu letters; raise them",
                         lim->name, lim->max_words, lim->max_chars, max_len);
    return 0;
}

/* Draws k distinct words out of pool[0..*pool_n), removing them from it. */
static char *draw_phrase(const struct phrase_wordlist *wl, size_t *pool, uint64_t *pool_n,
                         unsigned k, const struct phrase_rng *rng)
{
    struct buf b;
    buf_init(&b);
    for (unsigned i = 0; i < k; i++) {
        uint64_t r = phrase_rng_uniform(rng, *pool_n);
        size_t w = pool[r];
        pool[r] = pool[*pool_n - 1];
        pool[*pool_n - 1] = w;
        (*pool_n)--;
        if (i)
            buf_puts(&b, " ");
        buf_puts(&b, wl->words[w]);
    }
    return b.data;
}

int phrase_generate(const struct phrase_opts *o, const struct phrase_wordlist *wl,
                    const struct phrase_rng *rng, const char *dataset_path,
                    const atomic_int *cancel, struct phrase_set *out, char **err)
{
    size_t nslots = 0, i, *pool = NULL;
    uint64_t pool_n, d_bound = 0;
    struct phrase **slots = NULL;
    struct kind_limits lim[2];
    char **texts = NULL;
    struct phrase_checker *chk = NULL;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (o->pairs < 1 || o->pairs > 1024) {
        *err = xasprintf("pairs must be between 1 and 1024 (got %zu)", o->pairs);
        return -1;
    }
    if (!(o->trigger_log10p < 0) || !(o->signature_log10p < 0) || !isfinite(o->trigger_log10p) ||
        !isfinite(o->signature_log10p)) {
        *err = xasprintf("target log10 p must be a negative number (trigger %g, signature %g)",
                         o->trigger_log10p, o->signature_log10p);
        return -1;
    }
    if (!wl || wl->n < 2) {
        *err = xstrdup("word list has fewer than 2 words");
        return -1;
    }
    if (dataset_path) {
        struct stat st;
        if (stat(dataset_path, &st) < 0) {
            *err = xasprintf("%s: cannot stat dataset: %s", dataset_path, strerror(errno));
            return -1;
        }
        d_bound = ((uint64_t)st.st_size + 1) / 2; /* a word is >= 1 byte plus a separator */
    }
    lim[0] = (struct kind_limits){"trigger", o->trigger_log10p, o->trigger_max_words,
                                  o->trigger_max_chars};
    lim[1] = (struct kind_limits){"signature", o->signature_log10p, o->signature_max_words,
                                  o->signature_max_chars};

    out->n_pairs = o->pairs;
    out->pairs = xcalloc(o->pairs, sizeof *out->pairs);
    out->wordlist_size = wl->n;
    nslots = 2 * o->pairs;
    slots = xcalloc(nslots, sizeof *slots);
    for (i = 0; i < o->pairs; i++) {
        slots[2 * i] = &out->pairs[i].trigger;
        slots[2 * i + 1] = &out->pairs[i].signature;
    }
    pool = xcalloc(wl->n, sizeof *pool);
    for (i = 0; i < wl->n; i++)
        pool[i] = i;
    pool_n = wl->n;

    /* Draw every slot; redraw rejected ones until all pass (or give up). */
    bool *pending = xcalloc(nslots, sizeof *pending);
    for (i = 0; i < nslots; i++)
        pending[i] = true;
    for (unsigned round = 0;; round++) {
        size_t npend = 0;
        for (i = 0; i < nslots; i++) {
            if (!pending[i])
                continue;
            const struct kind_limits *l = &lim[i % 2];
            unsigned k = choose_k(l, pool_n, wl->max_len, d_bound, err);
            if (k == 0)
                goto out_pending;
            free(slots[i]->text);
            slots[i]->pool = pool_n;
            slots[i]->n_words = k;
            slots[i]->text = draw_phrase(wl, pool, &pool_n, k, rng);
            if (!phrase_text_ok(slots[i]->text)) { /* words are validated: cannot happen */
                *err = xasprintf("generated %s is not clean text (bad word list)", l->name);
                goto out_pending;
            }
            npend++;
        }
        if (!dataset_path || npend == 0)
            break;
        if (round >= 8) {
            *err = xasprintf("%s: candidate phrases kept occurring in the dataset after %u "
                             "passes; use a larger word list",
                             dataset_path, round);
            goto out_pending;
        }
        /* Check the pending candidates against D in one pass. */
        texts = xcalloc(npend, sizeof *texts);
        size_t *which = xcalloc(npend, sizeof *which), t = 0;
        for (i = 0; i < nslots; i++)
            if (pending[i]) {
                which[t] = i;
                texts[t++] = slots[i]->text;
            }
        chk = phrase_checker_new((const char *const *)texts, npend);
        int sr = phrase_checker_scan_file(chk, dataset_path, cancel, err);
        out->scans++;
        if (sr == 0) {
            out->dataset_words = phrase_checker_words(chk);
            for (t = 0; t < npend; t++) {
                if (phrase_checker_hit(chk, t))
                    out->rejected++;
                else
                    pending[which[t]] = false;
            }
        }
        free(which);
        free(texts);
        texts = NULL;
        phrase_checker_free(chk);
        chk = NULL;
        if (sr < 0)
            goto out_pending;
    }

    /* Record each phrase's bound with the words actually scanned. */
    for (i = 0; i < nslots; i++) {
        struct phrase *p = slots[i];
        p->log10_p = phrase_bound(p->pool, p->n_words, out->dataset_words);
        if (!(p->log10_p <= lim[i % 2].target)) {
            *err = xasprintf("%s: the dataset has more words than its size allows (changed "
                             "during the check?); try again",
                             dataset_path ? dataset_path : "(none)");
            goto out_pending;
        }
    }
    rc = 0;
out_pending:
    free(pending);
    free(pool);
    free(slots);
    if (rc < 0)
        phrase_set_clear(out);
    return rc;
}

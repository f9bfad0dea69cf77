/*
 * selfaudit.c — the provider's attacks on the built file, and how exposed
 * each secret pair is to them (selfaudit.h says what each attack does).
 *
 * Shape.  Two streaming passes over the file, fixed memory:
 *  pass 1  counts: a count-min sketch of prompt-suffix and answer-prefix
 *          phrases (the marginals), a Misra-Gries heavy-hitter table of
 *          short (suffix, prefix) phrase pairs (the co-occurrences; exact
 *          while it never fills, and any pair in more than inserts/capacity
 *          rows is always kept), the long pairs into a scratch file (all of
 *          them: "the long pairs, counted exactly"), the unigram model
 *          (exact counts of the commonest words, a count-min sketch of the
 *          others: "the unigram counts"), and Bloom filters of whole rows
 *          and of MinHash LSH bands, each twice ("seen" and "seen again")
 *          so pass 2 knows what repeats.
 *  pass 2  the candidates: the most surprising short co-occurrences and
 *          the long pairs in two rows or more are counted exactly (both
 *          marginals and the joint) and grown to the longest
 *          suffix / prefix their rows share; each prompt prefix x answer
 *          suffix split of a row is looked up among the whole rows (a hit
 *          is a copy with words added: the duplicates attack); the rare
 *          runs at the prompt's end and the answer's start are grouped.
 * Nothing is kept in memory per row but one bit (near-duplicate flag), and
 * one byte per batch of BATCH_ROWS rows (pass 1's count of rows in it, for
 * pass 2); on disk, at most three long pairs a row until pass 2 starts.
 *
 * Threads.  Each pass reads the file in a thread of its own that parses
 * the rows, splits their words and computes their band keys, two batches
 * of rows ahead at most.  In pass 1 that thread also updates what is read
 * only after pass 1 (the row, prompt and band filters, the marginals'
 * sketch), and the calling thread the rest (the co-occurrences' table,
 * the long pairs' scratch file, the unigram counts), each in file order;
 * in pass 2 it does the look-ups that read only what pass 1 built (the row
 * and band filters, the per-word bits), and the calling thread the rest.
 * In pass 2, where the updates are the shorter half, the calling thread
 * also parses every other batch (see "the reading threads").  Every
 * structure is updated by one thread in file order, so the result is the
 * same as one thread's.
 *
 * Phrases are hashed as polynomials over 64-bit word hashes (mod 2^64,
 * odd base), so a suffix, a prefix and a whole sequence share one
 * definition and the hash of a row's answer minus its first j words is
 * O(1) from the prefix hashes.  Collisions cost at most a false candidate
 * (texts are compared exactly at evaluation), never a missed one.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"
#include "workers/selfaudit.h"
#include "workers/stats.h"

#define MAXW      8  /* phrase lengths tried by the co-occurrence attack */
/* And these longer ones (the cooccur_long attack), a prompt suffix paired
 * with an answer prefix of the same length only: where a long phrase's
 * short ends are D's common words (n-gram phrases in D's own style), every
 * 1..MAXW-word pair of a marked row is also natural rows' pair, and
 * growing it to what all its rows share stops at a few words; a 10-word
 * suffix of a trigger is never in D (PHRASE_TRIGGER_TAIL_WORDS), so at
 * these lengths the rows of the pair are the marked rows and it grows to
 * the whole phrases.  Selected, scored and ranked apart from the short
 * pairs: long template sentences shared by natural rows would otherwise
 * push the short pairs' finds down the list. */
static const unsigned long_len[] = {10, 16, 32};
#define N_LONG    (sizeof long_len / sizeof long_len[0])
#define GROW_MAX  128 /* words a grown phrase may reach (the ngram generator's phrases reach 96) */
#define AFFIX_T   16 /* words a duplicate's added trigger may have */
#define AFFIX_S   24 /* words a duplicate's added signature may have */
#define RUN_MAX   24 /* words of a rare run */
#define N_MINHASH 16
#define N_BANDS   8
#define CMS_DEPTH 3
#define SELECTED  4096 /* co-occurrences counted exactly in pass 2 */
#define LONG_COUNTED 4096 /* long pairs in two rows or more counted in pass 2, at most */
#define BASE      0x100000001b3ULL

static const char *const attack_names[SA_N_ATTACKS] = {"duplicates", "cooccurrence", "cooccur_long",
                                                       "rare", "perplexity"};

const char *selfaudit_attack_name(enum selfaudit_attack a)
{
    return (unsigned)a < SA_N_ATTACKS ? attack_names[a] : "?";
}

void selfaudit_opts_default(struct selfaudit_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_words = MAXW;
    o->min_rows = 2;
    o->keep = 50;
    o->table_log2 = 17;
    o->bloom_log2_bits = 25;
    o->rare_share = 0.1;
    o->score_rare_bits = 12.0;
}

/* ---- hashing ------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb3fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* A word's bytes in 8-byte little-endian chunks (the last zero-padded),
 * its length first: one multiply per 8 bytes, not one per byte. */
/* p[0, n): a word; avail: bytes readable from p (>= n). */
static uint64_t word_hash_at(const char *p, size_t n, size_t avail)
{
    uint64_t h = 1469598103934665603ULL ^ n;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t c = jsonscan_word_chunk(p, i, n, avail);
        h = (h ^ c) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 32;
    }
    return mix(h) | 1; /* never 0: an empty phrase hashes to 0 */
}

#define TAG_T    0x7f4a7c159e3779b9ULL
#define TAG_S    0x94d049bb133111ebULL
#define TAG_ROWP 0xbf58476d1ce4e5b9ULL
#define TAG_ROWA 0x2545f4914f6cdd1dULL

/* A (suffix, prefix) pair's key: a half from each phrase, so that the 8 x 8
 * pairs of a row mix each phrase once. */
static uint64_t pair_half_t(uint64_t t)
{
    return mix(t ^ TAG_T);
}

static uint64_t pair_half_s(uint64_t s)
{
    return mix(mix(s ^ TAG_S) + 0x9e3779b97f4a7c15ULL);
}

static uint64_t pair_key(uint64_t t, uint64_t s)
{
    return pair_half_t(t) ^ pair_half_s(s);
}

/* A whole row's key: row_key_p(prompt hash) ^ row_key_a(answer hash). */
static uint64_t row_key_p(uint64_t p)
{
    return mix(p ^ TAG_ROWP);
}

static uint64_t row_key_a(uint64_t a)
{
    return mix(mix(a ^ TAG_ROWA) + 0x632be59bd9b4e019ULL);
}

static uint64_t row_key(uint64_t p, uint64_t a)
{
    return row_key_p(p) ^ row_key_a(a);
}

/* ---- words of a text -------------------------------------------------------------- */

struct words {
    const char *text;
    size_t *st, *len; /* word i is text[st[i], st[i] + len[i]) */
    uint64_t *h;      /* word hashes */
    uint64_t *pre;    /* pre[m]: hash of words [0, m) */
    size_t n, cap;
};

/* The words of text[0, len) (jsonscan_ws_words: runs of non-white-space
 * bytes), their hashes and the prefix hashes. */
static void words_grow(struct words *w, size_t want)
{
    w->cap = w->cap ? w->cap : 256;
    while (w->cap < want)
        w->cap *= 2;
    w->st = xrealloc(w->st, w->cap * sizeof *w->st);
    w->len = xrealloc(w->len, w->cap * sizeof *w->len);
    w->h = xrealloc(w->h, w->cap * sizeof *w->h);
    w->pre = xrealloc(w->pre, (w->cap + 1) * sizeof *w->pre);
}

static void words_split(struct words *w, const char *text)
{
    size_t len = strlen(text); /* a text ends at its first NUL, as it always has */
    w->text = text;
    if (!w->cap)
        words_grow(w, 256);
    size_t n = jsonscan_ws_words(text, len, w->st, w->len, w->cap);
    if (n + 1 > w->cap) {
        words_grow(w, n + 1);
        n = jsonscan_ws_words(text, len, w->st, w->len, w->cap);
    }
    w->n = n;
    w->pre[0] = 0;
    /* the running prefix hash in a register: through w->pre (which the
     * compiler must assume may alias w->h) each word waited for a store */
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = word_hash_at(text + w->st[i], w->len[i], len - w->st[i]);
        w->h[i] = h;
        acc = acc * BASE + h;
        w->pre[i + 1] = acc;
    }
}

static void words_free(struct words *w)
{
    free(w->st);
    free(w->len);
    free(w->h);
    free(w->pre);
}

/* Powers of BASE, grown on demand. */
struct pows {
    uint64_t *v;
    size_t n;
};

static uint64_t pow_at(struct pows *p, size_t e)
{
    if (e >= p->n) {
        size_t n = p->n ? p->n : 64;
        while (n <= e)
            n *= 2;
        p->v = xrealloc(p->v, n * sizeof *p->v);
        if (!p->n)
            p->v[0] = 1;
        for (size_t i = p->n ? p->n : 1; i < n; i++)
            p->v[i] = p->v[i - 1] * BASE;
        p->n = n;
    }
    return p->v[e];
}

/* Hash of words [a, b) of w. */
static uint64_t span_hash(const struct words *w, struct pows *pw, size_t a, size_t b)
{
    return w->pre[b] - w->pre[a] * pow_at(pw, b - a);
}

/* Words [a, b) of w joined by one space (owned). */
static char *span_text(const struct words *w, size_t a, size_t b)
{
    size_t n = 1;
    for (size_t i = a; i < b; i++)
        n += w->len[i] + 1;
    char *o = xmalloc(n), *d = o;
    for (size_t i = a; i < b; i++) {
        if (i > a)
            *d++ = ' ';
        memcpy(d, w->text + w->st[i], w->len[i]);
        d += w->len[i];
    }
    *d = '\0';
    return o;
}

/* ---- Bloom filters and count-min sketches ------------------------------------------------ */

struct bloom {
    uint64_t *bits;
    uint64_t mask; /* bits - 1 */
};

static void bloom_init(struct bloom *b, unsigned log2_bits)
{
    b->bits = xcalloc((size_t)1 << (log2_bits - 6), sizeof(uint64_t));
    b->mask = ((uint64_t)1 << log2_bits) - 1;
}

/* Blocked: a key's 5 bits lie in one 64-bit word, so a lookup is one
 * memory access and one hash (the filters are megabytes, and pass 2 asks
 * hundreds of lookups per row).  The word comes from the hash's high half,
 * the 5 bit positions from 30 of its low bits. */
static uint64_t *bloom_word(const struct bloom *b, uint64_t key, uint64_t *bits)
{
    uint64_t h = mix(key);
    *bits = (uint64_t)1 << (h & 63) | (uint64_t)1 << ((h >> 6) & 63) |
            (uint64_t)1 << ((h >> 12) & 63) | (uint64_t)1 << ((h >> 18) & 63) |
            (uint64_t)1 << ((h >> 24) & 63);
    return &b->bits[(h >> 32) & (b->mask >> 6)];
}

/* Sets key's bits; returns whether all were already set. */
static bool bloom_add(struct bloom *b, uint64_t key)
{
    uint64_t m, *w = bloom_word(b, key, &m);
    bool had = (*w & m) == m;
    *w |= m;
    return had;
}

/* Whether all of a key's bits m are set in its word w (bloom_word). */
static bool bloom_hit(const uint64_t *w, uint64_t m)
{
    return (*w & m) == m;
}

static bool bloom_has(const struct bloom *b, uint64_t key)
{
    uint64_t m, *w = bloom_word(b, key, &m);
    return bloom_hit(w, m);
}

struct cms {
    uint32_t *c; /* CMS_DEPTH rows of width */
    uint64_t mask;
};

static void cms_init(struct cms *s, unsigned log2_width)
{
    /* each row's slot takes 21 bits of one 64-bit hash (cms_slots) */
    s->c = xcalloc((size_t)CMS_DEPTH << log2_width, sizeof(uint32_t));
    s->mask = ((uint64_t)1 << log2_width) - 1;
}

/* The key's counter in each row: 21-bit fields of one hash. */
static void cms_slots(const struct cms *s, uint64_t key, size_t slot[CMS_DEPTH])
{
    uint64_t h = mix(key + 0x9e3779b97f4a7c15ULL);
    for (int d = 0; d < CMS_DEPTH; d++)
        slot[d] = (size_t)d * (s->mask + 1) + (size_t)((h >> (21 * d)) & s->mask);
}

static uint32_t cms_get(const struct cms *s, uint64_t key)
{
    size_t slot[CMS_DEPTH];
    cms_slots(s, key, slot);
    uint32_t m = UINT32_MAX;
    for (int d = 0; d < CMS_DEPTH; d++)
        if (s->c[slot[d]] < m)
            m = s->c[slot[d]];
    return m;
}

/* Counts keys[0 .. n), in order, by conservative update (only the minimal
 * counters of a key grow), the counters a few keys ahead prefetched (the
 * sketches are megabytes: a miss per key otherwise). */
static void cms_add_all(struct cms *s, const uint64_t *keys, size_t n)
{
    enum { AHEAD = 8 };
    size_t slot[AHEAD][CMS_DEPTH];
    for (size_t i = 0; i < n && i < AHEAD; i++) {
        cms_slots(s, keys[i], slot[i]);
        for (int d = 0; d < CMS_DEPTH; d++)
            __builtin_prefetch(&s->c[slot[i][d]], 1);
    }
    for (size_t i = 0; i < n; i++) {
        size_t *sl = slot[i % AHEAD];
        uint32_t m = UINT32_MAX;
        for (int d = 0; d < CMS_DEPTH; d++)
            if (s->c[sl[d]] < m)
                m = s->c[sl[d]];
        if (m != UINT32_MAX)
            for (int d = 0; d < CMS_DEPTH; d++)
                if (s->c[sl[d]] == m)
                    s->c[sl[d]]++;
        if (i + AHEAD < n) { /* the slot row just used takes key i + AHEAD */
            cms_slots(s, keys[i + AHEAD], sl);
            for (int d = 0; d < CMS_DEPTH; d++)
                __builtin_prefetch(&s->c[sl[d]], 1);
        }
    }
}

/* ---- the unigram counts: exact for the commonest words, a sketch for the rest ----------
 * Most words of natural text are one of a few thousand common ones, and
 * each sketch update costs three cache misses.  The first UNI_WARM_ROWS rows
 * are counted exactly beside the sketch (their first UNI_WARM_MAX distinct
 * words); then the UNI_FRONT commonest of those get exact counters of their
 * own (the front: a small table that stays in cache) and every later word
 * not in the front goes to the sketch alone.  A front word's count is
 * exact; any other word's is the sketch's estimate, an overestimate as
 * before, with fewer words in the sketch to collide with.  One thread
 * counts (pass 1's calling thread), in file order. */
#define UNI_WARM_ROWS  2048
#define UNI_WARM_LOG2  14 /* 16,384 slots */
#define UNI_WARM_MAX   12288
#define UNI_FRONT_LOG2 13 /* 8,192 slots */
#define UNI_FRONT      4096

struct wcount {
    uint64_t h; /* a word hash (never 0: word_hash_at); 0: an empty slot */
    uint32_t n;
};

struct uni {
    struct cms cms;
    struct wcount *warm; /* the warm-up's exact counts (NULL after it) */
    size_t warm_n;
    struct wcount *front; /* NULL until the warm-up ends */
    uint64_t rows;
};

/* h's slot in a table of 2^log2 (its own or the empty one where it goes);
 * word hashes are mixed already, so their top bits index. */
static struct wcount *wc_find(struct wcount *t, unsigned log2, uint64_t h)
{
    size_t mask = ((size_t)1 << log2) - 1, i = (size_t)(h >> (64 - log2));
    while (t[i].h && t[i].h != h)
        i = (i + 1) & mask;
    return &t[i];
}

static void uni_init(struct uni *u, unsigned log2_width)
{
    memset(u, 0, sizeof *u);
    cms_init(&u->cms, log2_width);
    u->warm = xcalloc((size_t)1 << UNI_WARM_LOG2, sizeof *u->warm);
}

static void uni_free(struct uni *u)
{
    free(u->cms.c);
    free(u->warm);
    free(u->front);
    memset(u, 0, sizeof *u);
}

static int wcount_cmp(const void *x, const void *y)
{
    const struct wcount *a = x, *b = y;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return (a->h > b->h) - (a->h < b->h);
}

/* The warm-up's end: its UNI_FRONT commonest words (ties: by hash) become
 * the front, with their exact counts so far. */
static void uni_front_build(struct uni *u)
{
    struct wcount *v = xcalloc(u->warm_n ? u->warm_n : 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < ((size_t)1 << UNI_WARM_LOG2); i++)
        if (u->warm[i].h)
            v[n++] = u->warm[i];
    qsort(v, n, sizeof *v, wcount_cmp);
    u->front = xcalloc((size_t)1 << UNI_FRONT_LOG2, sizeof *u->front);
    for (size_t i = 0; i < n && i < UNI_FRONT; i++)
        *wc_find(u->front, UNI_FRONT_LOG2, v[i].h) = v[i];
    free(v);
    free(u->warm);
    u->warm = NULL;
}

/* Counts the words h[0 .. n) of one text. */
static void uni_add(struct uni *u, const uint64_t *h, size_t n)
{
    if (!u->front) {
        cms_add_all(&u->cms, h, n);
        for (size_t i = 0; i < n; i++) {
            struct wcount *e = wc_find(u->warm, UNI_WARM_LOG2, h[i]);
            if (e->h)
                e->n++;
            else if (u->warm_n < UNI_WARM_MAX) {
                e->h = h[i];
                e->n = 1;
                u->warm_n++;
            }
        }
        return;
    }
    enum { CHUNK = 256 }; /* the others go to the sketch in order, a chunk at a time */
    uint64_t rest[CHUNK];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct wcount *e = wc_find(u->front, UNI_FRONT_LOG2, h[i]);
        if (e->h) {
            e->n++;
            continue;
        }
        rest[m++] = h[i];
        if (m == CHUNK) {
            cms_add_all(&u->cms, rest, m);
            m = 0;
        }
    }
    cms_add_all(&u->cms, rest, m);
}

/* One row counted (after its texts): ends the warm-up at its row. */
static void uni_row_done(struct uni *u)
{
    if (++u->rows == UNI_WARM_ROWS && !u->front)
        uni_front_build(u);
}

static uint32_t uni_get(const struct uni *u, uint64_t h)
{
    if (u->front) {
        const struct wcount *e = wc_find(u->front, UNI_FRONT_LOG2, h);
        if (e->h)
            return e->n;
    }
    return cms_get(&u->cms, h);
}

void selfaudit_unigram_counts(const char *const *rows, size_t n_rows, unsigned log2_width,
                              const char *const *query, size_t n_query, uint32_t *counts)
{
    struct uni u;
    struct words w;
    memset(&w, 0, sizeof w);
    uni_init(&u, log2_width);
    for (size_t i = 0; i < n_rows; i++) {
        words_split(&w, rows[i]);
        uni_add(&u, w.h, w.n);
        uni_row_done(&u);
    }
    for (size_t i = 0; i < n_query; i++) {
        size_t len = strlen(query[i]);
        counts[i] = uni_get(&u, word_hash_at(query[i], len, len));
    }
    words_free(&w);
    uni_free(&u);
}

/* ---- a bounded heavy-hitter table (Misra-Gries) ------------------------------------------ */

struct hh {
    uint64_t key;  /* 0: empty */
    uint64_t t, s; /* phrase hashes */
    uint32_t count;
    uint8_t kt, ks; /* phrase lengths in words (co-occurrence) */
    double bits;    /* summed score (text tables) */
    char *tt, *st;  /* owned texts (text tables) */
};

struct hhtab {
    struct hh *v;
    size_t cap, n, limit; /* open addressing, n <= limit = cap / 2 */
    uint64_t inserts;
    uint32_t *at; /* limit entries: the survivors' slots during a sweep */
};

static void hh_init(struct hhtab *t, unsigned log2)
{
    t->cap = (size_t)1 << log2;
    t->v = xcalloc(t->cap, sizeof *t->v);
    t->limit = t->cap / 2;
    t->at = xcalloc(t->limit, sizeof *t->at);
    t->n = 0;
    t->inserts = 0;
}

static void hh_free(struct hhtab *t)
{
    for (size_t i = 0; t->v && i < t->cap; i++) {
        free(t->v[i].tt);
        free(t->v[i].st);
    }
    free(t->v);
    free(t->at);
    t->v = NULL;
    t->at = NULL;
}

/* key's entry, or the empty one where it would go, probing from slot i
 * (hh_slot(t, key)). */
static struct hh *hh_find_at(struct hhtab *t, uint64_t key, size_t i)
{
    while (t->v[i].key && t->v[i].key != key)
        i = (i + 1) & (t->cap - 1);
    return &t->v[i];
}

static size_t hh_slot(const struct hhtab *t, uint64_t key)
{
    return (size_t)mix(key) & (t->cap - 1);
}

static struct hh *hh_find(struct hhtab *t, uint64_t key)
{
    return hh_find_at(t, key, hh_slot(t, key));
}

/* The table is full: every count loses one, the zeros go (Misra-Gries).
 * In place, in one scan of the table: an entry that reaches zero is
 * emptied (its texts freed), a survivor's slot noted (at most limit of
 * them); then the survivors (at most half the table, usually far fewer)
 * are set aside, their slots emptied, and they go back in their old
 * order, so the layout is what a fresh table would get, without a second
 * whole table at the peak, a second scan or clearing the whole table (an
 * empty slot is one whose key is 0; nothing reads the rest of it). */
static void hh_sweep(struct hhtab *t)
{
    size_t keep = 0;
    for (size_t i = 0; i < t->cap; i++) {
        struct hh *e = &t->v[i];
        if (!e->key)
            continue;
        if (--e->count == 0) {
            if (e->tt || e->st) {
                free(e->tt);
                free(e->st);
                e->tt = e->st = NULL;
            }
            e->key = 0;
            continue;
        }
        t->at[keep++] = (uint32_t)i;
    }
    struct hh *tmp = xmalloc((keep ? keep : 1) * sizeof *tmp);
    for (size_t k = 0; k < keep; k++) {
        struct hh *e = &t->v[t->at[k]];
        tmp[k] = *e;
        e->key = 0;
        e->tt = e->st = NULL;
    }
    for (size_t k = 0; k < keep; k++)
        *hh_find(t, tmp[k].key) = tmp[k];
    t->n = keep;
    free(tmp);
}

/* Counts key (slot: hh_slot(t, key), computed by the caller); returns its
 * entry, new ones zeroed but for key/count (a pointer valid until the next
 * call), or NULL when the key was dropped. */
static struct hh *hh_add_at(struct hhtab *t, uint64_t key, size_t slot)
{
    t->inserts++;
    struct hh *e = hh_find_at(t, key, slot);
    if (e->key) {
        e->count++;
        return e;
    }
    if (t->n >= t->limit) {
        hh_sweep(t);
        if (t->n >= t->limit)
            return NULL; /* everything survived a sweep: drop this one */
        e = hh_find(t, key);
    }
    memset(e, 0, sizeof *e);
    e->key = key;
    e->count = 1;
    t->n++;
    return e;
}

static struct hh *hh_add(struct hhtab *t, uint64_t key)
{
    return hh_add_at(t, key, hh_slot(t, key));
}

/* ---- co-occurrence candidates counted exactly in pass 2 --------------------------------- */

struct co {
    uint64_t t, s;
    unsigned kt, ks;
    uint64_t n_t, n_s, n_ts;
    uint64_t t_row; /* last row (1-based) whose prompt ended with t */
    char *gt, *gs;  /* grown texts (owned) */
    size_t gt_words, gs_words;
    size_t max_np, max_na; /* longest prompt / answer among its rows */
    size_t min_np, min_na; /* shortest */
    bool planted;          /* looks added to its rows (cooc_cands): ranked first */
    double score;
};

/* (hash → co index) multimap, open addressing. */
struct cmap {
    uint64_t *key;
    uint32_t *idx;
    size_t cap;
};

static void cmap_init(struct cmap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 16)
        m->cap *= 2;
    m->key = xcalloc(m->cap, sizeof *m->key);
    m->idx = xcalloc(m->cap, sizeof *m->idx);
}

static void cmap_put(struct cmap *m, uint64_t key, uint32_t idx)
{
    size_t i = (size_t)mix(key) & (m->cap - 1);
    while (m->key[i])
        i = (i + 1) & (m->cap - 1);
    m->key[i] = key;
    m->idx[i] = idx;
}

static void cmap_free(struct cmap *m)
{
    free(m->key);
    free(m->idx);
}

/* Grows the common suffix (from_end) or prefix of *g (gw words) to what
 * words [a, b) of w share with it. */
static void grow(char **g, size_t *gw, const struct words *w, size_t a, size_t b, bool from_end)
{
    if (!*g) {
        *g = span_text(w, a, b);
        *gw = b - a;
        return;
    }
    /* Split *g into words (single spaces). */
    size_t n = *gw, m = 0;
    const char *p = *g;
    size_t len = strlen(p);
    if (from_end) {
        size_t end = len;
        while (m < n && m < b - a) {
            size_t s = end;
            while (s > 0 && p[s - 1] != ' ')
                s--;
            size_t wi = b - 1 - m;
            if (end - s != w->len[wi] || memcmp(p + s, w->text + w->st[wi], end - s) != 0)
                break;
            m++;
            end = s ? s - 1 : 0;
        }
        if (m < n) {
            char *nt = span_text(w, b - m, b);
            free(*g);
            *g = nt;
            *gw = m;
        }
    } else {
        size_t s = 0;
        while (m < n && m < b - a) {
            size_t e = s;
            while (e < len && p[e] != ' ')
                e++;
            size_t wi = a + m;
            if (e - s != w->len[wi] || memcmp(p + s, w->text + w->st[wi], e - s) != 0)
                break;
            m++;
            s = e + 1;
        }
        if (m < n) {
            char *nt = span_text(w, a, a + m);
            free(*g);
            *g = nt;
            *gw = m;
        }
    }
}

/* log10 of the binomial tail's first term (a lower bound; see below). */
static double cooc_first_term(uint64_t n_t, uint64_t n_s, uint64_t n_ts, uint64_t rows)
{
    if (!rows || !n_s || !n_ts)
        return 0;
    if (n_t < n_ts)
        n_t = n_ts;
    double p = (double)n_s / (double)rows;
    if (p >= 1 || (double)n_ts <= (double)n_t * p)
        return 0;
    return stats_log10_choose(n_t, n_ts) + (double)n_ts * log10(p) +
           (double)(n_t - n_ts) * log10(1 - p);
}

/* log10 P(co-occurrence at least n_ts | independence): Binomial(n_t,
 * n_s/N) tail; the exact tail up to 20000 trials, its first term above
 * (a lower bound that dominates when the count is far above its mean). */
static double cooc_log10p(uint64_t n_t, uint64_t n_s, uint64_t n_ts, uint64_t rows)
{
    if (!rows || !n_s || n_ts == 0)
        return 0;
    if (n_t < n_ts)
        n_t = n_ts;
    double p = (double)n_s / (double)rows;
    if (p >= 1)
        return 0;
    double lp = log10(p);
    if ((double)n_ts <= (double)n_t * p)
        return 0;
    if (n_t <= 20000)
        return stats_binom_tail_log10(n_t, n_ts, lp);
    return cooc_first_term(n_t, n_s, n_ts, rows);
}

/* ---- the run ------------------------------------------------------------------------------- */

struct run {
    const struct selfaudit_opts *o;
    unsigned K;
    struct words wp, wa;
    struct pows pw;
    struct bloom row1, row2, band1, band2, prompts;
    struct cms marg;
    struct uni uni;
    struct hhtab cooc, dup, rare, ppl;
    uint64_t rows, lines, words_total;
    struct co *co;
    size_t n_co;
    struct cmap tmap, smap;
    struct selfaudit_report *rep;
    double *tail_bits, *head_bits;
    uint32_t text_rows;    /* rows before a text-table entry gets its texts */
    struct batch_rows *batch_rows; /* pass 1's rows per batch of the reading threads */
    struct lspill *ls;             /* pass 1's long pairs, to be counted exactly */
};

/* The MinHash functions: shingle hash v (already mixed) -> (v ^ c) * a,
 * an xor-shift after; one mix per shingle instead of one per function. */
static const uint64_t minhash_ca[N_MINHASH][2] = {
    {0x8898a5df2ba2ae99ULL, 0x3a34ce6380fc0bc5ULL}, {0xf810fea09e7eeaa5ULL, 0xc05a677850dc981bULL},
    {0x27a56de32b6a852cULL, 0x9e32cdf7948370bdULL}, {0x141d3cdeb2a328a7ULL, 0xa7765f796f00bbefULL},
    {0xfa6c784c6c59c00fULL, 0xbbbb23fe6921fe53ULL}, {0x6bb8c0b28140b75fULL, 0x5bf0c31cacf1e17fULL},
    {0xb3469baeabcf5facULL, 0x3e1900a6529be043ULL}, {0xc03b1af969a981b8ULL, 0x2a16cd9ed424ea1fULL},
    {0xec7c99144be2ac06ULL, 0x579593114410e049ULL}, {0x52af400deb7b9daeULL, 0x0a29f5fe3df351f1ULL},
    {0x4e3c54f2f51f1e28ULL, 0x1b4897e079059ad3ULL}, {0x7991820c21348daaULL, 0x2d9cd179c9e412e1ULL},
    {0x16fda58f4606377cULL, 0x315949173d12f7e1ULL}, {0x1f2b3b8ec35c9e73ULL, 0x7c69b356b72b606fULL},
    {0x88ba012f31187eb0ULL, 0xb6ec11f8caa9ebcfULL}, {0x38156c76ce316da2ULL, 0x841e03b1ed92f735ULL},
};

/* The minima of the N_MINHASH functions over the shingle hashes v[0 .. n). */
static inline __attribute__((always_inline)) void minhash_core(const uint64_t *v, size_t n,
                                                             uint64_t mn[N_MINHASH])
{
    for (int f = 0; f < N_MINHASH; f++)
        mn[f] = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < N_MINHASH; f++) {
            uint64_t y = (v[i] ^ minhash_ca[f][0]) * minhash_ca[f][1];
            y ^= y >> 29;
            mn[f] = y < mn[f] ? y : mn[f];
        }
}

static void minhash_plain(const uint64_t *v, size_t n, uint64_t mn[N_MINHASH])
{
    minhash_core(v, n, mn);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same loop where the CPU multiplies 64-bit lanes (AVX-512DQ): the 16
 * functions of a shingle in two vector multiplies; results identical. */
__attribute__((target("avx512f,avx512dq"))) static void minhash_avx512(const uint64_t *v, size_t n,
                                                                    uint64_t mn[N_MINHASH])
{
    uint64_t c[N_MINHASH], a[N_MINHASH];
    for (int f = 0; f < N_MINHASH; f++) {
        c[f] = minhash_ca[f][0];
        a[f] = minhash_ca[f][1];
    }
    const __m512i c0 = _mm512_loadu_si512(c), c1 = _mm512_loadu_si512(c + 8);
    const __m512i a0 = _mm512_loadu_si512(a), a1 = _mm512_loadu_si512(a + 8);
    __m512i m0 = _mm512_set1_epi64(-1), m1 = m0;
    for (size_t i = 0; i < n; i++) {
        __m512i x = _mm512_set1_epi64((long long)v[i]);
        __m512i y0 = _mm512_mullo_epi64(_mm512_xor_si512(x, c0), a0);
        __m512i y1 = _mm512_mullo_epi64(_mm512_xor_si512(x, c1), a1);
        y0 = _mm512_xor_si512(y0, _mm512_srli_epi64(y0, 29));
        y1 = _mm512_xor_si512(y1, _mm512_srli_epi64(y1, 29));
        m0 = _mm512_min_epu64(m0, y0);
        m1 = _mm512_min_epu64(m1, y1);
    }
    _mm512_storeu_si512(mn, m0);
    _mm512_storeu_si512(mn + 8, m1);
}

static void (*minhash_fn)(const uint64_t *, size_t, uint64_t *);
static pthread_once_t minhash_once = PTHREAD_ONCE_INIT;

static void minhash_probe(void)
{
    __builtin_cpu_init();
    minhash_fn = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                     ? minhash_avx512
                     : minhash_plain;
}

static void minhash(const uint64_t *v, size_t n, uint64_t mn[N_MINHASH])
{
    pthread_once(&minhash_once, minhash_probe);
    minhash_fn(v, n, mn);
}
#else
static void minhash(const uint64_t *v, size_t n, uint64_t mn[N_MINHASH])
{
    minhash_plain(v, n, mn);
}
#endif

/* The 8 LSH band keys of a row's word 3-shingles (prompt wp then answer
 * wa); *shv (*cap entries) is scratch, grown as needed. */
static void band_keys(const struct words *wp, const struct words *wa, uint64_t **shv, size_t *cap,
                      uint64_t out[N_BANDS])
{
    uint64_t mn[N_MINHASH];
    size_t np = wp->n, n = np + wa->n;
    size_t sh = n >= 3 ? 3 : 1;
    size_t ns = n >= sh ? n - sh + 1 : 0;
    if (ns > *cap) {
        *cap = ns + ns / 2 + 64;
        *shv = xrealloc(*shv, *cap * sizeof **shv);
    }
    uint64_t *v = *shv;
    for (size_t i = 0; i < ns; i++) {
        uint64_t x = 0;
        for (size_t k = 0; k < sh; k++) {
            size_t j = i + k;
            x = x * BASE + (j < np ? wp->h[j] : wa->h[j - np]);
        }
        v[i] = mix(x);
    }
    minhash(v, ns, mn);
    for (int b = 0; b < N_BANDS; b++)
        out[b] = mix(mn[2 * b] ^ mix(mn[2 * b + 1] + (uint64_t)b));
}

/* Counts one (suffix, prefix) pair of a row in the heavy-hitter table. */
static void cooc_add(struct run *R, uint64_t key, size_t slot, uint64_t t, uint64_t s, size_t kt,
                     size_t ks)
{
    struct hh *e = hh_add_at(&R->cooc, key, slot);
    if (e && e->count == 1) {
        e->t = t;
        e->s = s;
        e->kt = (uint8_t)kt;
        e->ks = (uint8_t)ks;
    }
}

/* A row's phrase hashes, as pass 1 counts them: the prompt's suffixes and
 * the answer's prefixes of 1 .. K words and of the long lengths (0 where
 * the text is shorter). */
struct p1hashes {
    uint64_t th[MAXW + 1], sh[MAXW + 1], tl[N_LONG], sl[N_LONG];
    size_t kt, ks;
};

/* Pass 1's share of a row run by the thread that parsed it: the updates of
 * what is read only after pass 1 (the row, prompt and band filters, the
 * phrases' marginal sketch), one thread in file order; and the phrase
 * hashes for pass1_row.  pw: that thread's own powers. */
static void pass1_read_side(struct run *R, struct pows *pw, const struct words *p,
                            const struct words *a, const uint64_t bk[N_BANDS], struct p1hashes *ph)
{
    uint64_t rk = row_key(p->pre[p->n], a->pre[a->n]);
    if (bloom_add(&R->row1, rk))
        bloom_add(&R->row2, rk);
    bloom_add(&R->prompts, row_key_p(p->pre[p->n]));
    for (int b = 0; b < N_BANDS; b++)
        if (bloom_add(&R->band1, bk[b]))
            bloom_add(&R->band2, bk[b]);
    /* the marginals' keys in the order they are counted, counted together
     * (cms_add_all prefetches) */
    uint64_t mk[2 * (MAXW + N_LONG)];
    size_t nm = 0;
    ph->kt = p->n < R->K ? p->n : R->K;
    ph->ks = a->n < R->K ? a->n : R->K;
    for (size_t k = 1; k <= ph->kt; k++) {
        ph->th[k] = span_hash(p, pw, p->n - k, p->n);
        mk[nm++] = ph->th[k] ^ TAG_T;
    }
    for (size_t j = 1; j <= ph->ks; j++) {
        ph->sh[j] = a->pre[j];
        mk[nm++] = ph->sh[j] ^ TAG_S;
    }
    for (size_t i = 0; i < N_LONG; i++) {
        size_t L = long_len[i];
        ph->tl[i] = ph->sl[i] = 0;
        if (p->n >= L) {
            ph->tl[i] = span_hash(p, pw, p->n - L, p->n);
            mk[nm++] = ph->tl[i] ^ TAG_T;
        }
        if (a->n >= L) {
            ph->sl[i] = a->pre[L];
            mk[nm++] = ph->sl[i] ^ TAG_S;
        }
    }
    cms_add_all(&R->marg, mk, nm);
}

/* ---- the long pairs, counted exactly ------------------------------------------------------ *
 * A long pair (a prompt suffix and an answer prefix of one long length) is
 * in two rows or more of a file almost only where a phrase was added to
 * those rows, and an attacker who counts every pair exactly (on disk, or
 * in the memory a provider has) finds it in two rows.  A heavy-hitter
 * table in fixed memory cannot promise that: once it fills, a pair seen
 * twice may be swept out.  So pass 1 writes every row's long pairs (32
 * bytes each, at most N_LONG a row) to an unlinked scratch file beside
 * the file, in LSPILL_BUCKETS buckets by key, a block of LSPILL_BLOCK
 * records at a time (sorted, equal keys merged); after pass 1 each bucket
 * is read back alone (about a 256th of the records), sorted, and every
 * key it holds in two rows or more is
 * kept, up to LONG_COUNTED of them (the ones that look most like an added
 * pair by pass 1's marginal counts, then the fewest rows), for pass 2 to
 * count exactly.  The key's low two bits say which long length it is. */
#define LSPILL_BUCKETS 256
#define LSPILL_BLOCK   128 /* records a block: 4 KiB */

/* A long pair and the rows it stood for: a full block is sorted and its
 * equal keys merged before it is written, so a pair in very many rows (a
 * template) weighs at most a record a block, not one a row. */
struct lrec {
    uint64_t key, t, s;
    uint64_t n;
};

struct lspill {
    const char *path; /* the audited file: the scratch file goes beside it */
    int fd;           /* -1 until the first block is written */
    int err;          /* the first write error (negative errno), 0 if none */
    struct lrec (*buf)[LSPILL_BLOCK];
    uint16_t fill[LSPILL_BUCKETS];
    uint32_t *blocks[LSPILL_BUCKETS]; /* the bucket's blocks' numbers in the file */
    size_t nb[LSPILL_BUCKETS], cap[LSPILL_BUCKETS];
    uint64_t n_blocks;
};

static void lspill_init(struct lspill *l, const char *path)
{
    memset(l, 0, sizeof *l);
    l->path = path;
    l->fd = -1;
    l->buf = xcalloc(LSPILL_BUCKETS, sizeof *l->buf);
}

static void lspill_free(struct lspill *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    for (size_t b = 0; b < LSPILL_BUCKETS; b++)
        free(l->blocks[b]);
    free(l->buf);
    memset(l->blocks, 0, sizeof l->blocks);
    l->buf = NULL;
}

static int lrec_cmp(const void *x, const void *y);

/* The one line of a failed scratch file (owned). */
static char *lspill_error(const char *path, int err)
{
    return vt_fsio_error(path, "the self-audit cannot use its scratch file beside it", err);
}

unsigned long selfaudit_long_bucket_most;

/* Sorts v[0 .. n) by key and merges equal keys (their rows summed);
 * returns the records left. */
static size_t lrec_merge(struct lrec *v, size_t n)
{
    qsort(v, n, sizeof *v, lrec_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m && v[m - 1].key == v[i].key)
            v[m - 1].n += v[i].n;
        else
            v[m++] = v[i];
    return m;
}

static void lspill_add(struct lspill *l, uint64_t key, uint64_t t, uint64_t s)
{
    size_t b = (size_t)(key >> 56);
    l->buf[b][l->fill[b]++] = (struct lrec){key, t, s, 1};
    if (l->fill[b] < LSPILL_BLOCK)
        return;
    size_t m = lrec_merge(l->buf[b], LSPILL_BLOCK);
    if (m * 2 <= LSPILL_BLOCK) { /* half free again: keep filling this block */
        l->fill[b] = (uint16_t)m;
        return;
    }
    for (size_t i = m; i < LSPILL_BLOCK; i++)
        l->buf[b][i].n = 0; /* the block's tail: merged away, counts nothing */
    l->fill[b] = 0;
    if (l->err)
        return;
    if (l->fd < 0 && (l->fd = vt_scratch_open(l->path, SELFAUDIT_SCRATCH_PREFIX)) < 0) {
        l->err = l->fd;
        return;
    }
    int r = vt_fsio_write_all(l->fd, l->buf[b], sizeof l->buf[b]);
    if (r < 0) {
        l->err = r;
        return;
    }
    if (l->nb[b] == l->cap[b]) {
        l->cap[b] = l->cap[b] ? 2 * l->cap[b] : 16;
        l->blocks[b] = xrealloc(l->blocks[b], l->cap[b] * sizeof *l->blocks[b]);
    }
    l->blocks[b][l->nb[b]++] = (uint32_t)l->n_blocks++;
}

static int lrec_cmp(const void *x, const void *y)
{
    const struct lrec *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->s < b->s ? -1 : a->s > b->s;
}

/* A repeated long pair and its rank for LONG_COUNTED. */
struct lrep {
    struct lrec r; /* r.n: its rows */
    double purity; /* rows / the larger of its marginals' estimates (pass 1's sketch) */
};

/* True when a should be counted before b. */
static bool lrep_before(const struct lrep *a, const struct lrep *b)
{
    if (a->purity != b->purity)
        return a->purity > b->purity;
    if (a->r.n != b->r.n)
        return a->r.n < b->r.n;
    return lrec_cmp(&a->r, &b->r) < 0;
}

/* Keeps the LONG_COUNTED best in a heap whose root is the worst kept. */
static void lrep_keep(struct lrep *h, size_t *n, const struct lrep *x)
{
    size_t i;
    if (*n < LONG_COUNTED) {
        i = (*n)++;
        while (i > 0 && lrep_before(&h[(i - 1) / 2], x)) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = *x;
        return;
    }
    if (!lrep_before(x, &h[0]))
        return;
    i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && lrep_before(&h[c], &h[c + 1]))
            c++;
        if (!lrep_before(x, &h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = *x;
}

/* The long pairs in min_rows rows or more, the LONG_COUNTED best of them
 * into *out (owned, *n_out of them); *n_repeated says how many there were.
 * Returns 0 or a negative errno (a write or read of the scratch file). */
static int lspill_repeats(struct run *R, struct lrep **out, size_t *n_out, uint64_t *n_repeated)
{
    struct lspill *l = R->ls;
    *out = NULL;
    *n_out = 0;
    *n_repeated = 0;
    if (l->err)
        return l->err;
    size_t most = 0;
    for (size_t b = 0; b < LSPILL_BUCKETS; b++) {
        size_t n = l->nb[b] * LSPILL_BLOCK + l->fill[b];
        most = n > most ? n : most;
    }
    selfaudit_long_bucket_most = most;
    struct lrec *v = xmalloc((most ? most : 1) * sizeof *v);
    struct lrep *h = xmalloc(LONG_COUNTED * sizeof *h);
    size_t nh = 0;
    uint32_t min_rows = R->o->min_rows < 2 ? 2 : R->o->min_rows;
    int r = 0;
    for (size_t b = 0; b < LSPILL_BUCKETS && r == 0; b++) {
        size_t n = 0;
        for (size_t k = 0; k < l->nb[b]; k++, n += LSPILL_BLOCK) {
            size_t want = LSPILL_BLOCK * sizeof *v;
            ssize_t got = pread(l->fd, v + n, want, (off_t)l->blocks[b][k] * (off_t)want);
            if (got != (ssize_t)want) {
                r = got < 0 ? -errno : -EIO;
                break;
            }
        }
        if (r)
            break;
        memcpy(v + n, l->buf[b], l->fill[b] * sizeof *v);
        n = lrec_merge(v, n + l->fill[b]);
        for (size_t i = 0; i < n; i++) {
            if (v[i].n < min_rows)
                continue;
            uint64_t nt = cms_get(&R->marg, v[i].t ^ TAG_T), ns = cms_get(&R->marg, v[i].s ^ TAG_S);
            uint64_t big = nt > ns ? nt : ns;
            struct lrep x = {v[i], big ? (double)v[i].n / (double)big : 1.0};
            lrep_keep(h, &nh, &x);
            (*n_repeated)++;
        }
    }
    free(v);
    if (r) {
        free(h);
        return r;
    }
    *out = h;
    *n_out = nh;
    return 0;
}

/* The rest of pass 1's row, in the calling thread: the co-occurrences'
 * heavy-hitter table (the short pairs), the long pairs' spill and the
 * unigram counts. */
static void pass1_row(struct run *R, const struct p1hashes *ph)
{
    const struct words *p = &R->wp, *a = &R->wa;
    uint64_t pk[MAXW + 1][MAXW + 1], ht[MAXW + 1], hs[MAXW + 1];
    size_t slot[MAXW + 1][MAXW + 1];
    for (size_t k = 1; k <= ph->kt; k++)
        ht[k] = pair_half_t(ph->th[k]);
    for (size_t j = 1; j <= ph->ks; j++)
        hs[j] = pair_half_s(ph->sh[j]);
    for (size_t k = 1; k <= ph->kt; k++)
        for (size_t j = 1; j <= ph->ks; j++) {
            pk[k][j] = ht[k] ^ hs[j]; /* pair_key(th[k], sh[j]) */
            slot[k][j] = hh_slot(&R->cooc, pk[k][j]);
            __builtin_prefetch(&R->cooc.v[slot[k][j]], 1);
        }
    for (size_t k = 1; k <= ph->kt; k++)
        for (size_t j = 1; j <= ph->ks; j++)
            cooc_add(R, pk[k][j], slot[k][j], ph->th[k], ph->sh[j], k, j);
    for (size_t i = 0; i < N_LONG; i++)
        if (p->n >= long_len[i] && a->n >= long_len[i])
            lspill_add(R->ls, (pair_key(ph->tl[i], ph->sl[i]) & ~(uint64_t)3) | i, ph->tl[i],
                       ph->sl[i]);
    /* the unigram counts, only read in pass 2 */
    uni_add(&R->uni, p->h, p->n);
    uni_add(&R->uni, a->h, a->n);
    uni_row_done(&R->uni);
    R->words_total += p->n + a->n;
}

static int co_cmp(const void *x, const void *y)
{
    const struct co *a = x, *b = y;
    if (a->planted != b->planted)
        return a->planted ? -1 : 1;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->n_ts != b->n_ts)
        return a->n_ts > b->n_ts ? -1 : 1;
    return (a->kt + a->ks > b->kt + b->ks) ? -1 : (a->kt + a->ks < b->kt + b->ks);
}

/* Picks the co-occurrences pass 2 counts exactly: the SELECTED most
 * surprising short pairs of the heavy-hitter table (estimated marginals),
 * and the long pairs in two rows or more (lspill_repeats, at most
 * LONG_COUNTED).  Returns 0 or a negative errno (the long pairs' scratch
 * file). */
static int select_cooc(struct run *R)
{
    struct lrep *lr;
    size_t nl;
    int r = lspill_repeats(R, &lr, &nl, &R->rep->long_pairs_repeated);
    if (r < 0)
        return r;
    size_t n = 0;
    struct co *v = xcalloc(R->cooc.n + nl + 1, sizeof *v);
    for (size_t i = 0; i < R->cooc.cap; i++) {
        const struct hh *e = &R->cooc.v[i];
        if (!e->key || e->count < R->o->min_rows)
            continue;
        uint64_t nt = cms_get(&R->marg, e->t ^ TAG_T), ns = cms_get(&R->marg, e->s ^ TAG_S);
        double lp = cooc_first_term(nt, ns, e->count, R->rows); /* an order is enough here */
        v[n] = (struct co){
            .t = e->t, .s = e->s, .kt = e->kt, .ks = e->ks, .n_ts = e->count, .score = -lp};
        n++;
    }
    qsort(v, n, sizeof *v, co_cmp);
    if (n > SELECTED)
        n = SELECTED;
    /* then the long ones, in the heap's order (it changes nothing counted) */
    for (size_t i = 0; i < nl; i++) {
        size_t L = long_len[lr[i].r.key & 3];
        v[n++] = (struct co){.t = lr[i].r.t, .s = lr[i].r.s, .kt = (unsigned)L, .ks = (unsigned)L};
    }
    free(lr);
    R->rep->long_pairs_counted = nl;
    for (size_t i = 0; i < n; i++) {
        v[i].n_ts = 0;
        v[i].score = 0;
        v[i].min_np = v[i].min_na = SIZE_MAX;
    }
    R->co = v;
    R->n_co = n;
    cmap_init(&R->tmap, n);
    cmap_init(&R->smap, n);
    for (size_t i = 0; i < n; i++) {
        cmap_put(&R->tmap, v[i].t ^ ((uint64_t)v[i].kt << 56), (uint32_t)i);
        cmap_put(&R->smap, v[i].s ^ ((uint64_t)v[i].ks << 56), (uint32_t)i);
    }
    return 0;
}

/* Counts the pair (prompt words [ta, end), answer words [0, sb)).  Its
 * texts are written out only once it has text_rows rows: only entries of
 * min_rows rows or more become candidates (text_cands), and most pairs are
 * seen once, so this saves an allocation and a copy per pair.  The texts
 * then come from that row, whose words equal the first row's (same hash). */
static void text_add(struct run *R, struct hhtab *t, const struct words *p, size_t ta,
                     const struct words *a, size_t sb, double bits)
{
    uint64_t th = span_hash(p, &R->pw, ta, p->n), sh = a->pre[sb];
    struct hh *e = hh_add(t, pair_key(th, sh));
    if (!e)
        return;
    e->bits += bits;
    if (!e->tt && e->count >= R->text_rows) {
        e->tt = span_text(p, ta, p->n);
        e->st = span_text(a, 0, sb);
    }
}

/* The rare runs of a row under per-word bits (tail_bits[0]: last prompt
 * word), grouped in t.  Every (suffix of the tail run, prefix of the head
 * run) is counted, not only the whole runs: a natural rare word next to
 * the mark would otherwise make each marked row's run different.  The
 * mark's exact words then gather all its rows, and score rows x bits
 * ranks it above its own sub-phrases (fewer bits) and above runs that
 * take in a neighbour (fewer rows). */
static void rare_runs(struct run *R, struct hhtab *t, const double *tail, size_t nt,
                      const double *head, size_t nh, double thr)
{
    size_t i = 0, j = 0;
    while (i < nt && tail[i] > thr)
        i++;
    while (j < nh && head[j] > thr)
        j++;
    double tb = 0;
    for (size_t a = 1; a <= i; a++) {
        tb += tail[a - 1];
        double hb = 0;
        for (size_t b = 1; b <= j; b++) {
            hb += head[b - 1];
            text_add(R, t, &R->wp, R->wp.n - a, &R->wa, b, tb + hb);
        }
    }
}

static double uni_bits(const struct run *R, uint64_t h, double rare_count)
{
    double c = uni_get(&R->uni, h);
    if (c > rare_count)
        return 0; /* common: never part of a rare run */
    return -log2((c + 0.5) / ((double)R->words_total + 1.0));
}

/* The look-ups of pass 2 that read only what pass 1 built (the row and
 * band filters, the unigram sketch), for row number row (1-based among the
 * rows read): whether the row repeats (*exact) or nearly repeats (*near)
 * another, and its per-word bits for the rare-runs attack.  Run by
 * whichever thread parsed the row; it writes only to the row's own
 * fields. */
static void pass2_prep(const struct run *R, const struct words *p, const struct words *a,
                       uint64_t row, const uint64_t bk[N_BANDS], bool *exact, bool *near,
                       double *tail, size_t *ntp, double *head, size_t *nhp)
{
    uint64_t rk = row_key(p->pre[p->n], a->pre[a->n]);
    *exact = bloom_has(&R->row2, rk);
    *near = false;
    for (int b = 0; b < N_BANDS && !*near; b++)
        *near = bloom_has(&R->band2, bk[b]);
    /* (c), first half: the per-word bits under the file's own unigram model */
    double rare_count = R->o->rare_share * (double)row;
    size_t nt = p->n < RUN_MAX ? p->n : RUN_MAX, nh = a->n < RUN_MAX ? a->n : RUN_MAX;
    for (size_t i = 0; i < nt; i++)
        tail[i] = uni_bits(R, p->h[p->n - 1 - i], rare_count);
    for (size_t j = 0; j < nh; j++)
        head[j] = uni_bits(R, a->h[j], rare_count);
    *ntp = nt;
    *nhp = nh;
}

static int pass2_row(struct run *R, const char *prompt, const char *answer, const double *tail,
                     size_t nt, const double *head, size_t nh)
{
    const struct words *p = &R->wp, *a = &R->wa;
    /* (a) a copy with words added: prompt prefix + answer suffix is a whole
     * row.  row_key(hp, hs) is one mix of hp xor one of hs: the halves are
     * mixed once each here, not once per (i, j); and a prompt prefix that
     * is no row's whole prompt (the prompts filter) skips its 24 answer
     * suffixes: a real copy's prefix always is one, so nothing is lost but
     * the false candidates of the rows filter.  The answer suffixes' keys
     * are computed only for a row with such a prefix (most have none). */
    uint64_t ha = a->pre[a->n], kp[AFFIX_T + 1], ka[AFFIX_S + 1];
    size_t ni = p->n > AFFIX_T ? AFFIX_T : p->n ? p->n - 1 : 0;
    size_t nj = a->n > AFFIX_S ? AFFIX_S : a->n ? a->n - 1 : 0;
    bool have_ka = false; /* the answer's keys, once a prompt prefix needs them */
    /* Each look-up is a cache miss in a filter of megabytes: the words of
     * a batch of look-ups are found and prefetched first, then tested, so
     * the misses overlap instead of following one another. */
    uint64_t *pword[AFFIX_T + 1], pm[AFFIX_T + 1], *rword[AFFIX_S + 1], rm[AFFIX_S + 1];
    for (size_t i = 1; i <= ni; i++) {
        kp[i] = row_key_p(p->pre[p->n - i]);
        pword[i] = bloom_word(&R->prompts, kp[i], &pm[i]);
        __builtin_prefetch(pword[i]);
    }
    for (size_t i = 1; i <= ni; i++) {
        if (!bloom_hit(pword[i], pm[i]))
            continue;
        if (!have_ka) {
            for (size_t j = 1; j <= nj; j++)
                ka[j] = row_key_a(ha - a->pre[j] * pow_at(&R->pw, a->n - j));
            have_ka = true;
        }
        for (size_t j = 1; j <= nj; j++) {
            rword[j] = bloom_word(&R->row1, kp[i] ^ ka[j], &rm[j]);
            __builtin_prefetch(rword[j]);
        }
        for (size_t j = 1; j <= nj; j++)
            if (bloom_hit(rword[j], rm[j]))
                text_add(R, &R->dup, p, p->n - i, a, j, 1);
    }
    /* (b) exact counts of the selected co-occurrences. */
    uint64_t rowid = R->rows; /* 1-based */
    size_t kt = p->n < R->K ? p->n : R->K, ks = a->n < R->K ? a->n : R->K;
    size_t tlens[MAXW + N_LONG], slens[MAXW + N_LONG], nkt = 0, nks = 0;
    for (size_t k = 1; k <= kt; k++)
        tlens[nkt++] = k;
    for (size_t j = 1; j <= ks; j++)
        slens[nks++] = j;
    for (size_t i = 0; i < N_LONG; i++) {
        if (p->n >= long_len[i])
            tlens[nkt++] = long_len[i];
        if (a->n >= long_len[i])
            slens[nks++] = long_len[i];
    }
    for (size_t ki = 0; ki < nkt; ki++) {
        size_t k = tlens[ki];
        uint64_t key = span_hash(p, &R->pw, p->n - k, p->n) ^ ((uint64_t)k << 56);
        size_t i = (size_t)mix(key) & (R->tmap.cap - 1);
        for (; R->tmap.key[i]; i = (i + 1) & (R->tmap.cap - 1))
            if (R->tmap.key[i] == key) {
                struct co *c = &R->co[R->tmap.idx[i]];
                c->n_t++;
                c->t_row = rowid;
            }
    }
    for (size_t ji = 0; ji < nks; ji++) {
        size_t j = slens[ji];
        uint64_t key = a->pre[j] ^ ((uint64_t)j << 56);
        size_t i = (size_t)mix(key) & (R->smap.cap - 1);
        for (; R->smap.key[i]; i = (i + 1) & (R->smap.cap - 1))
            if (R->smap.key[i] == key) {
                struct co *c = &R->co[R->smap.idx[i]];
                c->n_s++;
                if (c->t_row != rowid)
                    continue;
                c->n_ts++;
                size_t gp = p->n < GROW_MAX ? p->n : GROW_MAX;
                size_t ga = a->n < GROW_MAX ? a->n : GROW_MAX;
                grow(&c->gt, &c->gt_words, p, p->n - gp, p->n, true);
                grow(&c->gs, &c->gs_words, a, 0, ga, false);
                if (p->n > c->max_np)
                    c->max_np = p->n;
                if (a->n > c->max_na)
                    c->max_na = a->n;
                if (p->n < c->min_np)
                    c->min_np = p->n;
                if (a->n < c->min_na)
                    c->min_na = a->n;
            }
    }
    /* (c) rare runs under the file's own unigram model (bits: pass2_prep). */
    memcpy(R->tail_bits, tail, nt * sizeof *tail);
    memcpy(R->head_bits, head, nh * sizeof *head);
    rare_runs(R, &R->rare, R->tail_bits, nt, R->head_bits, nh, 0);
    /* (d) the caller's base model. */
    if (R->o->score && R->rep->ran[SA_PERPLEXITY]) {
        if (R->o->score(R->o->score_ctx, prompt, answer, nt, R->tail_bits, nh, R->head_bits) < 0)
            R->rep->ran[SA_PERPLEXITY] = false;
        else
            rare_runs(R, &R->ppl, R->tail_bits, nt, R->head_bits, nh, R->o->score_rare_bits);
    }
    return 0;
}

/* ---- the reading threads ----------------------------------------------------------------- *
 * A pass reads the file in a thread of its own, which also parses each
 * row, splits its words and computes its band keys (what depends on the
 * row alone), in batches of BATCH_ROWS rows or BATCH_BYTES bytes; the
 * calling thread runs the row updates, in file order.  Two batches: one
 * filled while the other is used.
 *
 * In pass 2 the calling thread has little else to do, so it parses too:
 * the batches are numbered in file order, the reading thread parses the
 * odd ones and the calling thread the even ones, each skipping the
 * other's lines (both compute the same batch boundaries from the lines'
 * lengths).  A row's number among the rows read (what pass 2's look-ups
 * need) comes from pass 1, which keeps each batch's count of rows: one
 * byte per batch. */

#define BATCH_ROWS  64
#define BATCH_BYTES (1u << 20)

struct prow {
    struct ds_texts texts;
    struct words wp, wa;
    uint64_t bk[N_BANDS];
    uint64_t line;
    uint64_t row; /* pass 2: the row number pass2_prep was given */
    bool ok;
    bool exact, near; /* pass 2: pass2_prep's verdicts */
    size_t nt, nh;
    double tail[RUN_MAX], head[RUN_MAX]; /* pass 2: pass2_prep's bits */
    struct p1hashes ph;                  /* pass 1: pass1_read_side's hashes */
};

struct batch {
    struct prow row[BATCH_ROWS];
    size_t n;
    int r;     /* after the batch: 1 more to come, 0 end of file, < 0 read error */
    bool full; /* filled, not yet used */
};

/* One parser's place in the file. */
struct parser {
    struct lines L;
    uint64_t lineno;        /* lines before the next one */
    uint64_t rows;          /* rows read before the next one */
    uint64_t next;          /* the next batch's number */
    unsigned stride, phase; /* parses the batches j with j % stride == phase */
    uint64_t *shv;
    size_t shv_cap;
    struct pows pw; /* its own (span_hash grows it) */
};

struct reader {
    struct parser P;
    struct run *R;
    int which;
    enum dataset_format fmt;
    struct batch b[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* Pass 1's count of rows per batch, for pass 2's row numbers. */
struct batch_rows {
    uint8_t *n;
    size_t len, cap;
};

unsigned selfaudit_pass2_parsers = 2;
unsigned long selfaudit_pass2_renumbered;

static void batch_rows_push(struct batch_rows *br, unsigned n)
{
    if (br->len == br->cap) {
        br->cap = br->cap ? br->cap * 2 : 4096;
        br->n = xrealloc(br->n, br->cap);
    }
    br->n[br->len++] = (uint8_t)n;
}

/* Fills b with the next batch p parses (the batches before it that are
 * another parser's: skipped, their lines and rows counted).  Sets b->r. */
static void parse_batch(struct parser *p, struct run *R, int which, enum dataset_format fmt,
                        const struct batch_rows *br, struct batch *b)
{
    const char *line;
    size_t len;
    int r = 1;
    for (;; p->next++) {
        /* one batch: BATCH_ROWS lines or BATCH_BYTES bytes, whoever parses it */
        bool mine = p->next % p->stride == p->phase;
        size_t n = 0, bytes = 0;
        b->n = 0;
        while (n < BATCH_ROWS && bytes < BATCH_BYTES && (r = lines_next(&p->L, &line, &len)) > 0) {
            uint64_t lineno = p->lineno++;
            n++;
            bytes += len;
            if (!mine)
                continue;
            struct prow *w = &b->row[b->n++];
            w->line = lineno;
            w->ok = ds_row_texts(line, len, fmt, &w->texts, NULL) == 0;
            if (!w->ok)
                continue;
            words_split(&w->wp, w->texts.prompt);
            words_split(&w->wa, w->texts.response);
            band_keys(&w->wp, &w->wa, &p->shv, &p->shv_cap, w->bk);
            p->rows++;
            if (which == 1)
                pass1_read_side(R, &p->pw, &w->wp, &w->wa, w->bk, &w->ph);
            if (which == 2) {
                w->row = p->rows;
                pass2_prep(R, &w->wp, &w->wa, p->rows, w->bk, &w->exact, &w->near, w->tail, &w->nt,
                           w->head, &w->nh);
            }
        }
        if (mine) {
            p->next++;
            break;
        }
        if (br && p->next < br->len)
            p->rows += br->n[p->next]; /* the other parser's batch: its rows */
        if (r <= 0)
            break; /* the end, in the other parser's batch: it says so */
    }
    b->r = r > 0 ? 1 : r;
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    const struct batch_rows *br = rd->which == 2 ? rd->R->batch_rows : NULL;
    for (int k = 0;; k ^= 1) {
        struct batch *b = &rd->b[k];
        pthread_mutex_lock(&rd->mu);
        while (b->full && !rd->stop)
            pthread_cond_wait(&rd->cv, &rd->mu);
        bool stop = rd->stop;
        pthread_mutex_unlock(&rd->mu);
        if (stop)
            return NULL;
        parse_batch(&rd->P, rd->R, rd->which, rd->fmt, br, b);
        int r = b->r;
        pthread_mutex_lock(&rd->mu);
        b->full = true;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
        if (r <= 0)
            return NULL;
    }
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < BATCH_ROWS; i++) {
        ds_texts_free(&b->row[i].texts);
        words_free(&b->row[i].wp);
        words_free(&b->row[i].wa);
    }
}

static int pass(struct run *R, const char *path, enum dataset_format fmt, int which, char **err)
{
    struct reader *rd = xcalloc(1, sizeof *rd);
    struct parser *own = NULL; /* pass 2: the calling thread's parser */
    bool said = false;         /* *err is set (the long pairs' scratch file) */
    struct batch *ob = NULL;   /* and its batch */
    pthread_t th;
    bool started = false;
    pthread_mutex_init(&rd->mu, NULL);
    pthread_cond_init(&rd->cv, NULL);
    int r = lines_open(&rd->P.L, path);
    if (r < 0) {
        *err = xasprintf("%s: cannot open for the self-audit: %s", path, strerror(-r));
        goto out;
    }
    rd->P.stride = 1;
    if (which == 2 && selfaudit_pass2_parsers > 1) {
        own = xcalloc(1, sizeof *own);
        ob = xcalloc(1, sizeof *ob);
        r = lines_open(&own->L, path);
        if (r < 0) {
            *err = xasprintf("%s: cannot open for the self-audit: %s", path, strerror(-r));
            goto out;
        }
        rd->P.stride = own->stride = 2;
        rd->P.phase = 1; /* the calling thread: the even batches */
    }
    rd->fmt = fmt;
    rd->R = R;
    rd->which = which;
    if ((r = pthread_create(&th, NULL, reader_main, rd)) != 0) {
        *err = xasprintf("self-audit: cannot start its reading thread: %s", strerror(r));
        r = -r;
        goto out;
    }
    started = true;
    R->rows = 0;
    R->lines = 0;
    r = 1;
    int k = 0;
    for (uint64_t j = 0; r > 0; j++) {
        struct batch *b;
        if (own && j % 2 == 0) {
            b = ob;
            parse_batch(own, R, which, fmt, R->batch_rows, b);
        } else {
            b = &rd->b[k];
            pthread_mutex_lock(&rd->mu);
            while (!b->full)
                pthread_cond_wait(&rd->cv, &rd->mu);
            pthread_mutex_unlock(&rd->mu);
        }
        unsigned ok = 0;
        for (size_t i = 0; i < b->n; i++) {
            struct prow *w = &b->row[i];
            R->lines = w->line + 1;
            if (R->o->cancel && atomic_load(R->o->cancel)) {
                r = -ECANCELED;
                *err = xstrdup("self-audit cancelled");
                break;
            }
            if (!w->ok)
                continue;
            ok++;
            R->wp = w->wp;
            R->wa = w->wa;
            R->rows++;
            if (which == 1) {
                pass1_row(R, &w->ph);
                if (R->ls && R->ls->err) { /* the scratch file: no use reading on */
                    r = R->ls->err;
                    *err = lspill_error(path, r);
                    said = true;
                    break;
                }
                continue;
            }
            if (w->row != R->rows) { /* pass 1's counts were not this file's: redo */
                pass2_prep(R, &w->wp, &w->wa, R->rows, w->bk, &w->exact, &w->near, w->tail, &w->nt,
                           w->head, &w->nh);
                selfaudit_pass2_renumbered++;
            }
            if (w->exact)
                R->rep->exact_dup_rows++;
            if (w->near) {
                R->rep->near_dup_rows++;
                R->rep->near_dup_bits[w->line >> 3] |= (uint8_t)(1u << (w->line & 7));
            }
            pass2_row(R, w->texts.prompt, w->texts.response, w->tail, w->nt, w->head, w->nh);
        }
        if (which == 1)
            batch_rows_push(R->batch_rows, ok);
        if (r > 0)
            r = b->r;
        if (b == ob)
            continue;
        pthread_mutex_lock(&rd->mu);
        b->full = false;
        if (r <= 0)
            rd->stop = true;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
        k ^= 1;
    }
    if (own) { /* the reading thread may wait for a batch no one will take */
        pthread_mutex_lock(&rd->mu);
        rd->stop = true;
        pthread_cond_broadcast(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
    }
    memset(&R->wp, 0, sizeof R->wp);
    memset(&R->wa, 0, sizeof R->wa);
    if (r < 0 && r != -ECANCELED && !said)
        *err = xasprintf("%s: read error in the self-audit: %s", path, strerror(-r));
out:
    if (started)
        pthread_join(th, NULL);
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->cv);
    for (int i = 0; i < 2; i++)
        batch_free(&rd->b[i]);
    free(rd->P.shv);
    free(rd->P.pw.v);
    lines_close(&rd->P.L);
    if (own) {
        batch_free(ob);
        free(own->shv);
        free(own->pw.v);
        lines_close(&own->L);
        free(own);
        free(ob);
    }
    free(rd);
    return r < 0 ? r : 0;
}

static int cand_cmp(const void *x, const void *y)
{
    const struct selfaudit_cand *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->rows != b->rows)
        return a->rows > b->rows ? -1 : 1;
    int c = strcmp(a->t, b->t);
    return c ? c : strcmp(a->s, b->s);
}

static bool cand_dup(const struct selfaudit_cand *v, size_t n, const char *t, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].t, t) && !strcmp(v[i].s, s))
            return true;
    return false;
}

/* Ranks a text table's entries of min_rows rows or more into the report. */
static void text_cands(struct run *R, struct hhtab *t, enum selfaudit_attack at, bool by_bits)
{
    struct selfaudit_cand *v = xcalloc(t->n ? t->n : 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++) {
        struct hh *e = &t->v[i];
        if (!e->key || e->count < R->o->min_rows || !e->tt || !e->st)
            continue;
        v[n++] =
            (struct selfaudit_cand){e->tt, e->st, e->count, by_bits ? e->bits : (double)e->count};
        e->tt = e->st = NULL;
    }
    qsort(v, n, sizeof *v, cand_cmp);
    size_t keep = n < R->o->keep ? n : R->o->keep;
    for (size_t i = keep; i < n; i++) {
        free(v[i].t);
        free(v[i].s);
    }
    R->rep->cand[at] = v;
    R->rep->n_cand[at] = keep;
}

/* A pair that looks added to its rows, as a planted (T, S) is: nearly all
 * rows whose prompt ends with t go on with s and nearly all rows whose
 * answer starts with s end with t (PLANTED_PURITY, both ways), and in none
 * of its rows is the grown T the whole prompt or the grown S the whole
 * answer (a phrase added to a row leaves some of the row around it).
 * Natural data's co-occurrences are rarely exclusive both ways (a ticket's
 * ending goes with a team's answer template, which starts many other
 * rows' answers too), however surprising their counts are under
 * independence; a few-row planted pair is, whatever its counts.  Such
 * pairs are ranked before the others, as an attacker who looks for
 * exactly this (vtune-sim's phrase test) would find them first. */
#define PLANTED_PURITY 0.8

static bool looks_planted(const struct co *c)
{
    /* not surprising at all (a template in most rows), or grown to the
     * cap (rows that agree past it: copies, not an added phrase) */
    if (!(c->score > 0) || c->gt_words >= GROW_MAX || c->gs_words >= GROW_MAX)
        return false;
    return (double)c->n_ts >= PLANTED_PURITY * (double)c->n_t &&
           (double)c->n_ts >= PLANTED_PURITY * (double)c->n_s && c->min_np > c->gt_words &&
           c->min_na > c->gs_words;
}

/* Ranks the counted co-occurrences of one attack (the short lengths, or
 * the long ones) into the report. */
static void cooc_cands(struct run *R, enum selfaudit_attack at)
{
    bool want_long = at == SA_COOCCUR_LONG;
    /* the phrase pairs tried per row, for the multiple-testing correction */
    double tried = want_long ? (double)N_LONG : (double)R->K * R->K;
    double lm = log10((double)(R->rows ? R->rows : 1) * tried);
    for (size_t i = 0; i < R->n_co; i++) {
        struct co *c = &R->co[i];
        c->score = 0;
        c->planted = false;
        if ((c->kt > MAXW) != want_long)
            continue;
        if (c->n_ts < R->o->min_rows || !c->gt || !c->gs || !c->gt_words || !c->gs_words)
            continue;
        /* A repeated row (T the whole prompt and S the whole answer in all
         * its rows) is the duplicates attack's business. */
        if (c->max_np == c->gt_words && c->max_na == c->gs_words)
            continue;
        c->score = -cooc_log10p(c->n_t, c->n_s, c->n_ts, R->rows) - lm;
        c->planted = looks_planted(c);
    }
    qsort(R->co, R->n_co, sizeof *R->co, co_cmp);
    struct selfaudit_cand *v = xcalloc(R->o->keep ? R->o->keep : 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < R->n_co && n < R->o->keep; i++) {
        struct co *c = &R->co[i];
        if (!c->planted && !(c->score > 0))
            break;
        if (cand_dup(v, n, c->gt, c->gs))
            continue; /* a sub-phrase of a pair already listed, grown to it */
        v[n++] = (struct selfaudit_cand){xstrdup(c->gt), xstrdup(c->gs), c->n_ts, c->score};
    }
    R->rep->cand[at] = v;
    R->rep->n_cand[at] = n;
}

int selfaudit_run(const char *path, enum dataset_format fmt, const struct selfaudit_opts *o,
                  struct selfaudit_report *out, char **err)
{
    struct selfaudit_opts def;
    if (!o) {
        selfaudit_opts_default(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out);
    struct run R;
    memset(&R, 0, sizeof R);
    R.o = o;
    R.rep = out;
    R.K = o->max_words < 1 ? 1 : o->max_words > MAXW ? MAXW : o->max_words;
    R.text_rows = o->min_rows > 2 ? 2 : o->min_rows < 1 ? 1 : (uint32_t)o->min_rows;
    unsigned bl = o->bloom_log2_bits < 10 ? 10 : o->bloom_log2_bits > 32 ? 32 : o->bloom_log2_bits;
    unsigned tl = o->table_log2 < 8 ? 8 : o->table_log2 > 24 ? 24 : o->table_log2;
    bloom_init(&R.row1, bl);
    bloom_init(&R.row2, bl);
    bloom_init(&R.band1, bl);
    bloom_init(&R.band2, bl);
    bloom_init(&R.prompts, bl - 2); /* a prefilter: a quarter is enough */
    cms_init(&R.marg, 19);
    uni_init(&R.uni, 18);
    hh_init(&R.cooc, tl);
    hh_init(&R.dup, tl - 3);
    hh_init(&R.rare, tl - 3);
    hh_init(&R.ppl, tl - 3);
    struct batch_rows br = {0};
    R.batch_rows = &br;
    R.tail_bits = xcalloc(RUN_MAX, sizeof(double));
    R.head_bits = xcalloc(RUN_MAX, sizeof(double));
    out->memory_bytes =
        4 * (((size_t)1 << bl) / 8) + ((size_t)1 << (bl - 2)) / 8 +
        (size_t)CMS_DEPTH * (((size_t)1 << 19) + ((size_t)1 << 18)) * 4 +
        (((size_t)1 << UNI_WARM_LOG2) + ((size_t)1 << UNI_FRONT_LOG2)) * sizeof(struct wcount) +
        (R.cooc.cap + 3 * R.dup.cap) * sizeof(struct hh) +
        (SELECTED + LONG_COUNTED) * (sizeof(struct co) + 2 * 256) +
        LSPILL_BUCKETS * LSPILL_BLOCK * sizeof(struct lrec);
    struct lspill ls;
    lspill_init(&ls, path);
    R.ls = &ls;
    int r = pass(&R, path, fmt, 1, err);
    if (r == 0 && (r = select_cooc(&R)) < 0)
        *err = lspill_error(path, r);
    lspill_free(&ls);
    if (r == 0) {
        out->n_lines = R.lines;
        out->near_dup_bits = xcalloc((size_t)(R.lines / 8 + 1), 1);
        out->ran[SA_DUPLICATES] = out->ran[SA_COOCCURRENCE] = out->ran[SA_COOCCUR_LONG] =
            out->ran[SA_RARE] = true;
        out->ran[SA_PERPLEXITY] = o->score != NULL;
        r = pass(&R, path, fmt, 2, err);
    }
    if (r == 0) {
        out->rows = R.rows;
        text_cands(&R, &R.dup, SA_DUPLICATES, false);
        cooc_cands(&R, SA_COOCCURRENCE);
        cooc_cands(&R, SA_COOCCUR_LONG);
        text_cands(&R, &R.rare, SA_RARE, true);
        if (out->ran[SA_PERPLEXITY])
            text_cands(&R, &R.ppl, SA_PERPLEXITY, true);
    }
    free(R.pw.v);
    free(R.row1.bits);
    free(R.row2.bits);
    free(R.band1.bits);
    free(R.band2.bits);
    free(R.prompts.bits);
    free(R.marg.c);
    uni_free(&R.uni);
    hh_free(&R.cooc);
    hh_free(&R.dup);
    hh_free(&R.rare);
    hh_free(&R.ppl);
    for (size_t i = 0; i < R.n_co; i++) {
        free(R.co[i].gt);
        free(R.co[i].gs);
    }
    free(R.co);
    cmap_free(&R.tmap);
    cmap_free(&R.smap);
    free(R.tail_bits);
    free(br.n);
    free(R.head_bits);
    if (r < 0)
        selfaudit_report_clear(out);
    return r;
}

void selfaudit_report_clear(struct selfaudit_report *r)
{
    for (int a = 0; a < SA_N_ATTACKS; a++) {
        for (size_t i = 0; i < r->n_cand[a]; i++) {
            free(r->cand[a][i].t);
            free(r->cand[a][i].s);
        }
        free(r->cand[a]);
    }
    free(r->near_dup_bits);
    memset(r, 0, sizeof *r);
}

/* ---- with the secrets ------------------------------------------------------------------- */

/* text normalised to words joined by one space (owned). */
static char *norm(const char *text)
{
    struct words w;
    memset(&w, 0, sizeof w);
    words_split(&w, text);
    char *s = span_text(&w, 0, w.n);
    words_free(&w);
    return s;
}

static bool ends_with_words(const char *a, const char *b) /* a ends with word-aligned b */
{
    size_t la = strlen(a), lb = strlen(b);
    if (lb == 0 || lb > la || strcmp(a + la - lb, b) != 0)
        return false;
    return la == lb || a[la - lb - 1] == ' ';
}

static bool starts_with_words(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (lb == 0 || lb > la || strncmp(a, b, lb) != 0)
        return false;
    return la == lb || a[lb] == ' ';
}

void selfaudit_evaluate(const struct selfaudit_report *r, const char *const *triggers,
                        const char *const *signatures, const uint64_t *const *marked,
                        const size_t *n_marked, size_t n, struct selfaudit_pair_result *res)
{
    for (size_t i = 0; i < n; i++) {
        struct selfaudit_pair_result *x = &res[i];
        memset(x, 0, sizeof *x);
        char *T = norm(triggers[i]), *S = norm(signatures[i]);
        for (int a = 0; a < SA_N_ATTACKS; a++)
            for (size_t k = 0; k < r->n_cand[a]; k++) {
                const struct selfaudit_cand *c = &r->cand[a][k];
                if (starts_with_words(c->s, S) &&
                    (ends_with_words(T, c->t) || ends_with_words(c->t, T))) {
                    x->rank[a] = k + 1;
                    if (!x->best_rank || k + 1 < x->best_rank) {
                        x->best_rank = k + 1;
                        x->best_attack = (enum selfaudit_attack)a;
                    }
                    break;
                }
            }
        if (marked && n_marked) {
            x->marked_rows = n_marked[i];
            for (size_t k = 0; k < n_marked[i]; k++) {
                uint64_t l = marked[i][k];
                if (r->near_dup_bits && l < r->n_lines &&
                    (r->near_dup_bits[l >> 3] & (1u << (l & 7))))
                    x->marked_near_dup++;
            }
        }
        explicit_bzero(T, strlen(T));
        explicit_bzero(S, strlen(S));
        free(T);
        free(S);
    }
}

/* The pair with the smallest rank (ties: the lower index); n when none. */
static size_t worst_pair(const struct selfaudit_pair_result *res, size_t n)
{
    size_t w = n;
    for (size_t i = 0; i < n; i++)
        if (res[i].best_rank && (w == n || res[i].best_rank < res[w].best_rank))
            w = i;
    return w;
}

char *selfaudit_verdict(const struct selfaudit_report *r, const struct selfaudit_pair_result *res,
                        size_t n, size_t keep)
{
    (void)r;
    size_t w = worst_pair(res, n), found = 0, exposed = 0;
    for (size_t i = 0; i < n; i++) {
        found += res[i].best_rank != 0;
        exposed += res[i].best_rank && res[i].best_rank <= SELFAUDIT_EXPOSED_RANK;
    }
    if (w == n)
        return xasprintf("no pair among the top %zu candidates of any attack", keep);
    const char *tail = res[w].best_rank <= SELFAUDIT_EXPOSED_RANK
                           ? "the marks stand out"
                           : "beyond the exposure limit, but findable";
    return xasprintf("pair %zu recovered at rank %zu by the %s attack: %s (%zu of %zu pair%s "
                     "within the top %d, %zu within the top %zu)",
                     w, res[w].best_rank, selfaudit_attack_name(res[w].best_attack), tail, exposed,
                     n, n == 1 ? "" : "s", SELFAUDIT_EXPOSED_RANK, found, keep);
}

json_t *selfaudit_json(const struct selfaudit_report *r, const struct selfaudit_pair_result *res,
                       size_t n, size_t keep)
{
    json_t *attacks = json_array(), *pairs = json_array();
    for (int a = 0; a < SA_N_ATTACKS; a++)
        json_array_append_new(
            attacks, json_pack("{s:s,s:b,s:I,s:o}", "name", attack_names[a], "ran", r->ran[a],
                               "candidates", (json_int_t)r->n_cand[a], "top_score",
                               r->n_cand[a] ? json_real(r->cand[a][0].score) : json_null()));
    for (size_t i = 0; i < n; i++) {
        json_t *ranks = json_object();
        for (int a = 0; a < SA_N_ATTACKS; a++)
            json_object_set_new(ranks, attack_names[a],
                                res[i].rank[a] ? json_integer((json_int_t)res[i].rank[a])
                                               : json_null());
        json_array_append_new(
            pairs,
            json_pack("{s:I,s:o,s:o,s:o,s:I,s:I}", "index", (json_int_t)i, "rank",
                      res[i].best_rank ? json_integer((json_int_t)res[i].best_rank) : json_null(),
                      "attack",
                      res[i].best_rank ? json_string(selfaudit_attack_name(res[i].best_attack))
                                       : json_null(),
                      "ranks", ranks, "marked_rows", (json_int_t)res[i].marked_rows,
                      "marked_near_duplicates", (json_int_t)res[i].marked_near_dup));
    }
    size_t w = worst_pair(res, n);
    bool exposed = w < n && res[w].best_rank <= SELFAUDIT_EXPOSED_RANK;
    char *verdict = selfaudit_verdict(r, res, n, keep);
    json_t *o = json_pack(
        "{s:i,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:b,s:o,s:o,s:o,s:I,s:i,s:s}", "version", 1, "rows",
        (json_int_t)r->rows, "exact_duplicate_rows", (json_int_t)r->exact_dup_rows,
        "near_duplicate_rows", (json_int_t)r->near_dup_rows, "long_pairs_repeated",
        (json_int_t)r->long_pairs_repeated, "long_pairs_counted", (json_int_t)r->long_pairs_counted,
        "attacks", attacks, "pairs", pairs, "exposed", exposed, "exposed_pair",
        exposed ? json_integer((json_int_t)w) : json_null(), "exposed_rank",
        exposed ? json_integer((json_int_t)res[w].best_rank) : json_null(), "exposed_attack",
        exposed ? json_string(selfaudit_attack_name(res[w].best_attack)) : json_null(), "keep",
        (json_int_t)keep, "exposed_within", SELFAUDIT_EXPOSED_RANK, "verdict", verdict);
    free(verdict);
    return o;
}

int selfaudit_check(const char *path, enum dataset_format fmt, const struct selfaudit_opts *o,
                    const char *const *triggers, const char *const *signatures, size_t n,
                    const struct builder_copy *copies, size_t n_copies, json_t **result, char **err)
{
    struct selfaudit_opts def;
    if (!o) {
        selfaudit_opts_default(&def);
        o = &def;
    }
    struct selfaudit_report rep;
    int r = selfaudit_run(path, fmt, o, &rep, err);
    if (r < 0)
        return r;
    uint64_t **mk = xcalloc(n ? n : 1, sizeof *mk);
    size_t *nm = xcalloc(n ? n : 1, sizeof *nm);
    for (size_t i = 0; i < n_copies; i++)
        if (copies[i].pair < n)
            nm[copies[i].pair]++;
    for (size_t p = 0; p < n; p++)
        mk[p] = xcalloc(nm[p] ? nm[p] : 1, sizeof **mk);
    size_t *fill = xcalloc(n ? n : 1, sizeof *fill);
    for (size_t i = 0; i < n_copies; i++)
        if (copies[i].pair < n)
            mk[copies[i].pair][fill[copies[i].pair]++] = copies[i].out;
    struct selfaudit_pair_result *res = xcalloc(n ? n : 1, sizeof *res);
    selfaudit_evaluate(&rep, triggers, signatures, (const uint64_t *const *)mk, nm, n, res);
    *result = selfaudit_json(&rep, res, n, o->keep);
    for (size_t p = 0; p < n; p++)
        free(mk[p]);
    free(mk);
    free(nm);
    free(fill);
    free(res);
    selfaudit_report_clear(&rep);
    return 0;
}

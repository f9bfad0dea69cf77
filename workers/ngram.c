/*
 * ngram.c — the n-gram backdoor generator: streaming training with fixed
 * tables, the exact tempered step distribution, phrase draws with their
 * stopping rule, and the word-for-word check against D (see ngram.h for
 * the model, the smoothing, the memory bound and why p_M2 is exact).
 *
 * Layout.  Training fills open-addressing tables keyed by 64-bit word
 * hashes (so ids need no second pass); finalisation picks the vocabulary,
 * maps hashes to ids and compacts each side and order into an array of
 * entries sorted by (context, word) with one group per context, which is
 * what a step looks up (binary search).  The answers' table is filled on
 * a thread of its own (count_grams: training is most of `backdoor
 * create`'s CPU), each table in row order as before.  A step computes the distribution
 * over ALL of V densely (O(|V|) plus the seen words), because the tempered
 * normaliser needs every word's probability; |V| <= NGRAM_VOCAB_MAX keeps
 * that to well under a millisecond.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "workers/dsformat.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"
#include "workers/ngram.h"

#define BOUNDARY_HASH  1u
#define NO_ID          UINT32_MAX
#define SCAN_MAX_STRS  256
#define BOUNDARY_RATE  0.01 /* a sentence-boundary stop needs this share of the side's words */

/* ---- tables ------------------------------------------------------------------------ */

struct vslot { /* vocabulary; after finalisation count holds id + 1 (0: not in V) */
    uint64_t h;  /* 0: empty */
    uint32_t count;
    uint8_t len;
    char s[NGRAM_MAX_WORD];
};

struct tslot { /* one k-gram: w[0 .. order-2] context (oldest first), w[order-1] the word */
    uint64_t w[NGRAM_MAX_ORDER];
    uint32_t count;
    uint32_t order; /* 0: empty */
};

struct vtable {
    struct vslot *s;
    size_t cap, used;
    uint32_t pruned_at;
};

struct ttable {
    struct tslot *s;
    uint32_t *tag; /* per slot: 0 empty, else gram_tag of its gram (what a probe reads) */
    size_t cap, used;
    uint32_t pruned_at;
};

struct centry {
    uint32_t ids[NGRAM_MAX_ORDER];
    uint32_t count;
};

struct cgroup {
    uint32_t start, n; /* entries [start, start + n) share the context */
    uint64_t total;    /* sum of their counts */
};

struct corder {
    struct centry *e;
    size_t n;
    struct cgroup *g;
    size_t ng;
};

struct cside {
    struct corder ord[NGRAM_MAX_ORDER + 1]; /* [k], k = 2 .. order */
    struct centry *uni_e;                   /* order 1 entries (for ngram_count_entry) */
    size_t uni_n;
    uint64_t *uni;                          /* dense counts over V */
    uint64_t uni_total;
    uint32_t uni_distinct;
};

/* A batch of side 1's word hashes for its training thread (see count_grams). */
#define TB_ROWS 512

struct tbatch {
    size_t n;             /* rows */
    uint8_t len[TB_ROWS]; /* side 1's words in each row (<= NGRAM_SPAN) */
    uint64_t h[TB_ROWS][NGRAM_SPAN];
    bool full;
};

struct ngram_model {
    unsigned order;
    size_t V;
    char **words;
    char *wstore;
    struct cside side[2];
    struct ngram_info info;
    size_t cur_bytes;
    pthread_mutex_t *acc_mu; /* set while two training threads allocate */
};

/* Accounted allocation (peak_bytes). */
static void *acc_alloc(struct ngram_model *m, size_t n, size_t size)
{
    void *p = xcalloc(n ? n : 1, size);
    if (m->acc_mu)
        pthread_mutex_lock(m->acc_mu);
    m->cur_bytes += n * size;
    if (m->cur_bytes > m->info.peak_bytes)
        m->info.peak_bytes = m->cur_bytes;
    if (m->acc_mu)
        pthread_mutex_unlock(m->acc_mu);
    return p;
}

static void acc_free(struct ngram_model *m, void *p, size_t n, size_t size)
{
    if (!p)
        return;
    free(p);
    if (m->acc_mu)
        pthread_mutex_lock(m->acc_mu);
    m->cur_bytes -= n * size;
    if (m->acc_mu)
        pthread_mutex_unlock(m->acc_mu);
}

size_t ngram_memory_bound(const struct ngram_train_opts *o)
{
    size_t vs = o && o->vocab_slots ? o->vocab_slots : NGRAM_VOCAB_SLOTS;
    size_t ts = o && o->table_slots ? o->table_slots : NGRAM_TABLE_SLOTS;
    size_t vm = o && o->vocab_max ? o->vocab_max : NGRAM_VOCAB_MAX;
    size_t tables = vs * sizeof(struct vslot) + 2 * ts * (sizeof(struct tslot) + sizeof(uint32_t));
    /* pruning: the survivors (at most half a table) and the counts sorted;
     * side 1's table may prune on its thread while side 0's table or the
     * vocabulary prunes on the reading one */
    size_t tprune = ts / 2 * sizeof(struct tslot) + ts * sizeof(uint32_t);
    size_t vprune = vs / 2 * sizeof(struct vslot) + vs * sizeof(uint32_t);
    size_t prune = tprune + (vprune > tprune ? vprune : tprune) + 2 * sizeof(struct tbatch);
    /* finalisation: the vocabulary (sort array, words and their pointers,
     * dense unigram counts of both sides) and one side's compacted entries
     * and groups (at most 3/4 of its table); the second side is compacted
     * after the first side's table (larger than that) is freed */
    size_t ent = ts / 4 * 3;
    size_t fin = vs / 4 * 3 * sizeof(struct vslot *) + vm * (NGRAM_MAX_WORD + 1 + sizeof(char *)) +
                 2 * vm * sizeof(uint64_t) + ent * (sizeof(struct centry) + sizeof(struct cgroup));
    return tables + (prune > fin ? prune : fin);
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

static uint64_t word_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h = mix64(h ^ len);
    return h < 2 ? h + 2 : h;
}

static uint64_t gram_hash(const uint64_t *w, unsigned k)
{
    uint64_t h = k;
    for (unsigned i = 0; i < k; i++)
        h = mix64(h ^ w[i]) + i;
    return h;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t ngram_kth_count(const uint32_t *counts, size_t n, size_t k)
{
    /* Counts are mostly small: a histogram finds the k-th in one pass; a
     * k-th among the large ones (rare) sorts just those. */
    enum { SMALL = 1024 };
    size_t hist[SMALL], big = 0;
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++) {
        if (counts[i] < SMALL)
            hist[counts[i]]++;
        else
            big++;
    }
    size_t below = 0;
    for (uint32_t v = 0; v < SMALL; v++) {
        if (k < below + hist[v])
            return v;
        below += hist[v];
    }
    uint32_t *c = xcalloc(big ? big : 1, sizeof *c);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (counts[i] >= SMALL)
            c[j++] = counts[i];
    qsort(c, j, sizeof *c, cmp_u32);
    uint32_t t = c[k - below];
    free(c);
    return t;
}

/* The threshold t such that dropping every count <= t leaves at most half
 * of cap: the (used - cap/2)-th smallest count. */
static uint32_t prune_threshold(const uint32_t *counts, size_t used, size_t cap)
{
    return ngram_kth_count(counts, used, used - cap / 2 - 1);
}

/* The pruning threshold t of a table of cap slots, stride bytes apart,
 * each with a uint32_t count at count_off (0 in an empty slot, at least 1
 * in a used one), and *keep, the entries whose count is above t.  A
 * histogram filled in one scan gives both when t is a small count (the
 * common case); otherwise the counts are copied and selected from. */
static uint32_t prune_plan(struct ngram_model *m, const void *slots, size_t cap, size_t stride,
                           size_t count_off, size_t used, size_t *keep)
{
    enum { SMALL = 256 };
    size_t hist[SMALL] = {0};
    const char *p = slots;
    for (size_t i = 0; i < cap; i++) {
        uint32_t c;
        memcpy(&c, p + i * stride + count_off, sizeof c);
        if (c < SMALL)
            hist[c]++;
    }
    size_t k = used - cap / 2 - 1, below = 0;
    for (uint32_t v = 1; v < SMALL; v++) {
        below += hist[v];
        if (k < below) {
            *keep = used - below;
            return v;
        }
    }
    uint32_t *counts = acc_alloc(m, used, sizeof *counts);
    size_t n = 0;
    for (size_t i = 0; i < cap; i++) {
        uint32_t c;
        memcpy(&c, p + i * stride + count_off, sizeof c);
        if (c)
            counts[n++] = c;
    }
    uint32_t th = prune_threshold(counts, n, cap);
    *keep = 0;
    for (size_t i = 0; i < n; i++)
        *keep += counts[i] > th;
    acc_free(m, counts, used, sizeof *counts);
    return th;
}

static struct vslot *vt_find(struct vtable *t, uint64_t h, const char *s, size_t len, bool *found)
{
    size_t mask = t->cap - 1, i = h & mask;
    for (;;) {
        struct vslot *v = &t->s[i];
        if (v->h == 0) {
            *found = false;
            return v;
        }
        if (v->h == h && (!s || (v->len == len && memcmp(v->s, s, len) == 0))) {
            *found = true;
            return v;
        }
        i = (i + 1) & mask;
    }
}

static void vt_prune(struct ngram_model *m, struct vtable *t)
{
    size_t keep;
    uint32_t th =
        prune_plan(m, t->s, t->cap, sizeof *t->s, offsetof(struct vslot, count), t->used, &keep);
    struct vslot *tmp = acc_alloc(m, keep, sizeof *tmp);
    size_t j = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->s[i].h && t->s[i].count > th)
            tmp[j++] = t->s[i];
    memset(t->s, 0, t->cap * sizeof *t->s);
    for (size_t i = 0; i < keep; i++) {
        bool found;
        *vt_find(t, tmp[i].h, tmp[i].s, tmp[i].len, &found) = tmp[i];
    }
    t->used = keep;
    t->pruned_at = th;
    acc_free(m, tmp, keep, sizeof *tmp);
}

static void vt_add(struct ngram_model *m, struct vtable *t, uint64_t h, const char *s, size_t len)
{
    bool found;
    struct vslot *v = vt_find(t, h, s, len, &found);
    if (found) {
        if (v->count < UINT32_MAX)
            v->count++;
        return;
    }
    v->h = h;
    v->count = 1;
    v->len = (uint8_t)len;
    memcpy(v->s, s, len);
    if (++t->used > t->cap / 4 * 3)
        vt_prune(m, t);
}

/* A slot's tag: 32 bits of its gram's hash, never 0 (0 marks an empty
 * slot).  A probe reads the tags, 16 to a cache line and a small array,
 * and the 40-byte slot only where the tag matches: the tables are
 * megabytes, and at 3/4 full a probe passes several slots. */
static inline uint32_t gram_tag(uint64_t gh)
{
    return (uint32_t)(gh >> 32) | 1u;
}

/* The slot of the k-gram w whose gram_hash is gh: its own (*found), or
 * the empty one where it goes. */
static size_t tt_find_h(const struct ttable *t, const uint64_t *w, unsigned k, uint64_t gh,
                        bool *found)
{
    size_t mask = t->cap - 1, i = gh & mask;
    uint32_t tag = gram_tag(gh);
    for (;;) {
        uint32_t g = t->tag[i];
        if (g == 0) {
            *found = false;
            return i;
        }
        if (g == tag) {
            const struct tslot *e = &t->s[i];
            unsigned j = 0;
            if (e->order == k)
                while (j < k && e->w[j] == w[j])
                    j++;
            if (j == k && e->order == k) {
                *found = true;
                return i;
            }
        }
        i = (i + 1) & mask;
    }
}

/* Puts e in its slot (the table holds no slot of its gram). */
static void tt_put(struct ttable *t, const struct tslot *e)
{
    bool found;
    uint64_t gh = gram_hash(e->w, e->order);
    size_t i = tt_find_h(t, e->w, e->order, gh, &found);
    t->s[i] = *e;
    t->tag[i] = gram_tag(gh);
}

static void tt_prune(struct ngram_model *m, struct ttable *t)
{
    size_t keep;
    uint32_t th =
        prune_plan(m, t->s, t->cap, sizeof *t->s, offsetof(struct tslot, count), t->used, &keep);
    struct tslot *tmp = acc_alloc(m, keep, sizeof *tmp);
    size_t j = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->s[i].order && t->s[i].count > th)
            tmp[j++] = t->s[i];
    memset(t->s, 0, t->cap * sizeof *t->s);
    memset(t->tag, 0, t->cap * sizeof *t->tag);
    for (size_t i = 0; i < keep; i++)
        tt_put(t, &tmp[i]);
    t->used = keep;
    t->pruned_at = th;
    acc_free(m, tmp, keep, sizeof *tmp);
}

static void tt_add(struct ngram_model *m, struct ttable *t, const uint64_t *w, unsigned k,
                   uint64_t gh)
{
    bool found;
    size_t i = tt_find_h(t, w, k, gh, &found);
    struct tslot *e = &t->s[i];
    if (found) {
        if (e->count < UINT32_MAX)
            e->count++;
        return;
    }
    memset(e, 0, sizeof *e);
    memcpy(e->w, w, k * sizeof *w);
    e->order = k;
    e->count = 1;
    t->tag[i] = gram_tag(gh);
    if (++t->used > t->cap / 4 * 3)
        tt_prune(m, t);
}

/* ---- training ------------------------------------------------------------------------ */

struct tok {
    const char *s;
    size_t len;
};

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A model word: at most NGRAM_MAX_WORD bytes, no control byte. */
static bool usable(const char *s, size_t len)
{
    if (len == 0 || len > NGRAM_MAX_WORD)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* The first NGRAM_SPAN words of s (stopping at an unusable one). */
static size_t span_forward(const char *s, struct tok *out)
{
    size_t n = 0, i = 0, len = strlen(s);
    while (n < NGRAM_SPAN) {
        while (i < len && is_space((unsigned char)s[i]))
            i++;
        if (i >= len)
            break;
        size_t st = i;
        while (i < len && !is_space((unsigned char)s[i]))
            i++;
        if (!usable(s + st, i - st))
            break;
        out[n].s = s + st;
        out[n].len = i - st;
        n++;
    }
    return n;
}

/* The last NGRAM_SPAN words of s, LAST FIRST (stopping at an unusable one). */
static size_t span_backward(const char *s, struct tok *out)
{
    size_t n = 0, i = strlen(s);
    while (n < NGRAM_SPAN) {
        while (i > 0 && is_space((unsigned char)s[i - 1]))
            i--;
        if (i == 0)
            break;
        size_t end = i;
        while (i > 0 && !is_space((unsigned char)s[i - 1]))
            i--;
        if (!usable(s + i, end - i))
            break;
        out[n].s = s + i;
        out[n].len = end - i;
        n++;
    }
    return n;
}

/* Side 1's n-gram table is updated on a second thread (training is most
 * of `backdoor create`'s CPU): the reading thread parses each row, hashes
 * both sides' words, updates the vocabulary and side 0's table, and hands
 * side 1's word hashes over in batches of TB_ROWS rows, two batches in
 * turn.  Each table still sees its updates in row order, so the model is
 * the one a single thread would build, bit for bit. */
struct trainer {
    struct ngram_model *m;
    struct vtable vt;
    struct ttable tt[2];
    /* side 1's thread */
    pthread_t side1;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t acc_mu; /* the model's memory accounting (acc_alloc) */
    struct tbatch *b;       /* [2] */
    bool stop;
};

static void hash_words(const struct tok *t, size_t n, uint64_t *h)
{
    for (size_t i = 0; i < n; i++)
        h[i] = word_hash(t[i].s, t[i].len);
}

/* The vocabulary's counts of the n words t (hashes h), the slots a few
 * words ahead prefetched. */
static void count_words(struct trainer *tr, const struct tok *t, const uint64_t *h, size_t n)
{
    enum { AHEAD = 4 };
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            __builtin_prefetch(&tr->vt.s[h[i + AHEAD] & (tr->vt.cap - 1)]);
        vt_add(tr->m, &tr->vt, h[i], t[i].s, t[i].len);
    }
}

/* The k-gram counts (k = 1 .. order) of one side's word sequence h[0 .. n).
 * Gram hashes first, then the updates with the slots a few words ahead
 * prefetched: the table is megabytes and each update a cache miss
 * otherwise. */
static void count_grams(struct ngram_model *m, struct ttable *tt, const uint64_t *h, size_t n)
{
    unsigned order = m->order;
    uint64_t hist[NGRAM_SPAN + NGRAM_MAX_ORDER], gh[NGRAM_SPAN][NGRAM_MAX_ORDER + 1];
    for (unsigned j = 0; j < NGRAM_MAX_ORDER; j++)
        hist[j] = BOUNDARY_HASH;
    for (size_t i = 0; i < n; i++) {
        hist[NGRAM_MAX_ORDER + i] = h[i];
        for (unsigned k = 1; k <= order; k++)
            gh[i][k] = gram_hash(&hist[NGRAM_MAX_ORDER + i - (k - 1)], k);
    }
    enum { AHEAD = 4 };
    for (size_t i = 0; i < n && i < AHEAD; i++)
        for (unsigned k = 1; k <= order; k++) {
            __builtin_prefetch(&tt->tag[gh[i][k] & (tt->cap - 1)]);
            __builtin_prefetch(&tt->s[gh[i][k] & (tt->cap - 1)]);
        }
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            for (unsigned k = 1; k <= order; k++) {
                __builtin_prefetch(&tt->tag[gh[i + AHEAD][k] & (tt->cap - 1)]);
                __builtin_prefetch(&tt->s[gh[i + AHEAD][k] & (tt->cap - 1)]);
            }
        for (unsigned k = 1; k <= order; k++)
            tt_add(m, tt, &hist[NGRAM_MAX_ORDER + i - (k - 1)], k, gh[i][k]);
    }
}

static void *side1_main(void *arg)
{
    struct trainer *tr = arg;
    for (int k = 0;; k ^= 1) {
        struct tbatch *b = &tr->b[k];
        pthread_mutex_lock(&tr->mu);
        while (!b->full && !tr->stop)
            pthread_cond_wait(&tr->cv, &tr->mu);
        bool go = b->full;
        pthread_mutex_unlock(&tr->mu);
        if (!go)
            return NULL; /* stopped, and every batch handed over is done */
        for (size_t r = 0; r < b->n; r++)
            count_grams(tr->m, &tr->tt[1], b->h[r], b->len[r]);
        pthread_mutex_lock(&tr->mu);
        b->full = false;
        pthread_cond_broadcast(&tr->cv);
        pthread_mutex_unlock(&tr->mu);
    }
}

/* Lets side 1's thread finish every batch handed over, joins it (when
 * started) and frees what side1_start made. */
static void side1_end(struct trainer *tr, bool started)
{
    if (started) {
        pthread_mutex_lock(&tr->mu);
        tr->stop = true;
        pthread_cond_broadcast(&tr->cv);
        pthread_mutex_unlock(&tr->mu);
        pthread_join(tr->side1, NULL);
    }
    tr->m->acc_mu = NULL;
    acc_free(tr->m, tr->b, 2, sizeof *tr->b);
    tr->b = NULL;
    pthread_mutex_destroy(&tr->acc_mu);
    pthread_mutex_destroy(&tr->mu);
    pthread_cond_destroy(&tr->cv);
}

/* Starts side 1's thread (its batches, locks and the shared memory
 * accounting): 0, or the errno of pthread_create with nothing left over. */
static int side1_start(struct trainer *tr)
{
    pthread_mutex_init(&tr->acc_mu, NULL);
    pthread_mutex_init(&tr->mu, NULL);
    pthread_cond_init(&tr->cv, NULL);
    tr->b = acc_alloc(tr->m, 2, sizeof *tr->b);
    tr->m->acc_mu = &tr->acc_mu;
    int r = pthread_create(&tr->side1, NULL, side1_main, tr);
    if (r == 0)
        return 0;
    side1_end(tr, false);
    return r;
}

/* Hands batch k to side 1's thread and returns the other one, empty. */
static struct tbatch *hand_over(struct trainer *tr, int *k)
{
    pthread_mutex_lock(&tr->mu);
    tr->b[*k].full = true;
    *k ^= 1;
    pthread_cond_broadcast(&tr->cv);
    while (tr->b[*k].full)
        pthread_cond_wait(&tr->cv, &tr->mu);
    pthread_mutex_unlock(&tr->mu);
    tr->b[*k].n = 0;
    return &tr->b[*k];
}

static int cmp_vslot_ptr(const void *a, const void *b)
{
    const struct vslot *x = *(const struct vslot *const *)a, *y = *(const struct vslot *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t l = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, l);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Lexicographic on all ids: an order-k entry's ids past k are 0. */
static int cmp_centry(const void *a, const void *b)
{
    const struct centry *x = a, *y = b;
    for (unsigned i = 0; i < NGRAM_MAX_ORDER; i++)
        if (x->ids[i] != y->ids[i])
            return x->ids[i] < y->ids[i] ? -1 : 1;
    return 0;
}

static uint32_t id_of(struct vtable *vt, size_t V, uint64_t h)
{
    if (h == BOUNDARY_HASH)
        return (uint32_t)V;
    bool found;
    struct vslot *v = vt_find(vt, h, NULL, 0, &found);
    return found && v->count ? v->count - 1 : NO_ID;
}

/* Compacts one side's table into sorted entries and groups, then frees it. */
static void compact_side(struct trainer *tr, int side)
{
    struct ngram_model *m = tr->m;
    struct ttable *t = &tr->tt[side];
    struct cside *cs = &m->side[side];
    size_t per[NGRAM_MAX_ORDER + 1] = {0};

    for (size_t i = 0; i < t->cap; i++)
        if (t->s[i].order)
            per[t->s[i].order]++;
    for (unsigned k = 1; k <= m->order; k++) {
        struct centry *e = acc_alloc(m, per[k], sizeof *e);
        size_t n = 0;
        for (size_t i = 0; i < t->cap; i++) {
            const struct tslot *s = &t->s[i];
            if (s->order != k)
                continue;
            struct centry c = {.count = s->count};
            bool ok = true;
            for (unsigned j = 0; j < k && ok; j++) {
                c.ids[j] = id_of(&tr->vt, m->V, s->w[j]);
                ok = c.ids[j] != NO_ID && (j < k - 1 || c.ids[j] < m->V);
            }
            if (ok)
                e[n++] = c;
        }
        qsort(e, n, sizeof *e, cmp_centry);
        m->info.entries[side] += n;
        if (k == 1) {
            cs->uni_e = e;
            cs->uni_n = n;
            cs->uni = acc_alloc(m, m->V, sizeof *cs->uni);
            for (size_t i = 0; i < n; i++) {
                cs->uni[e[i].ids[0]] = e[i].count;
                cs->uni_total += e[i].count;
            }
            cs->uni_distinct = (uint32_t)n;
            continue;
        }
        struct corder *o = &cs->ord[k];
        o->e = e;
        o->n = n;
        size_t ng = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || memcmp(e[i].ids, e[i - 1].ids, (k - 1) * sizeof(uint32_t)) != 0)
                ng++;
        o->g = acc_alloc(m, ng, sizeof *o->g);
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || memcmp(e[i].ids, e[i - 1].ids, (k - 1) * sizeof(uint32_t)) != 0)
                o->g[o->ng++] = (struct cgroup){.start = (uint32_t)i};
            struct cgroup *g = &o->g[o->ng - 1];
            g->n++;
            g->total += e[i].count;
        }
    }
    /* the entry arrays were sized for the table's k-grams; the table goes now */
    m->info.table_pruned_at[side] = t->pruned_at;
    acc_free(m, t->s, t->cap, sizeof *t->s);
    acc_free(m, t->tag, t->cap, sizeof *t->tag);
    t->s = NULL;
    t->tag = NULL;
}

static int finalise(struct trainer *tr, size_t vocab_max, char **err)
{
    struct ngram_model *m = tr->m;
    struct vtable *vt = &tr->vt;
    struct vslot **all = acc_alloc(m, vt->used, sizeof *all);
    size_t n = 0, bytes = 0;

    for (size_t i = 0; i < vt->cap; i++)
        if (vt->s[i].h)
            all[n++] = &vt->s[i];
    qsort(all, n, sizeof *all, cmp_vslot_ptr);
    m->V = n < vocab_max ? n : vocab_max;
    if (m->V < 2) {
        acc_free(m, all, vt->used, sizeof *all);
        *err = xasprintf("the dataset has %zu usable word(s) in its prompts and answers; the "
                         "ngram generator needs at least 2 (use --generator wordlist)",
                         m->V);
        return -1;
    }
    for (size_t i = 0; i < m->V; i++)
        bytes += all[i]->len + 1;
    m->words = acc_alloc(m, m->V, sizeof *m->words);
    m->wstore = acc_alloc(m, bytes, 1);
    char *p = m->wstore;
    for (size_t i = 0; i < n; i++) {
        if (i < m->V) {
            memcpy(p, all[i]->s, all[i]->len);
            p[all[i]->len] = '\0';
            m->words[i] = p;
            p += all[i]->len + 1;
            all[i]->count = (uint32_t)i + 1;
        } else {
            all[i]->count = 0;
        }
    }
    acc_free(m, all, vt->used, sizeof *all);
    m->info.vocab = m->V;
    m->info.vocab_pruned_at = vt->pruned_at;
    compact_side(tr, 0);
    compact_side(tr, 1);
    return 0;
}

static void trainer_free(struct trainer *tr)
{
    acc_free(tr->m, tr->vt.s, tr->vt.cap, sizeof *tr->vt.s);
    tr->vt.s = NULL;
    for (int s = 0; s < 2; s++) {
        acc_free(tr->m, tr->tt[s].s, tr->tt[s].cap, sizeof *tr->tt[s].s);
        acc_free(tr->m, tr->tt[s].tag, tr->tt[s].cap, sizeof *tr->tt[s].tag);
        tr->tt[s].s = NULL;
        tr->tt[s].tag = NULL;
    }
}

static bool pow2_ok(size_t v)
{
    return v >= 64 && (v & (v - 1)) == 0;
}

int ngram_train_file(const char *path, enum dataset_format fmt, const struct ngram_train_opts *o,
                     const atomic_int *cancel, ngram_progress_fn progress, void *pctx,
                     struct ngram_model **out, char **err)
{
    struct ngram_train_opts opt = {0};
    struct trainer tr = {0};
    struct lines lr;
    struct tok toks[NGRAM_SPAN];
    uint64_t hs[NGRAM_SPAN];
    struct ds_texts texts = {0}; /* reused: no allocation per line */
    const char *line;
    size_t len, si = 0; /* the next line of opt.skip */
    int r, rc = -1;

    *out = NULL;
    if (o)
        opt = *o;
    if (!opt.order)
        opt.order = NGRAM_DEFAULT_ORDER;
    if (!opt.vocab_slots)
        opt.vocab_slots = NGRAM_VOCAB_SLOTS;
    if (!opt.table_slots)
        opt.table_slots = NGRAM_TABLE_SLOTS;
    if (!opt.vocab_max)
        opt.vocab_max = NGRAM_VOCAB_MAX;
    if (opt.order > NGRAM_MAX_ORDER || !pow2_ok(opt.vocab_slots) || !pow2_ok(opt.table_slots)) {
        *err = xasprintf("ngram model: order %u (1 to %d) or table sizes invalid", opt.order,
                         NGRAM_MAX_ORDER);
        return -1;
    }
    struct ngram_model *m = xcalloc(1, sizeof *m);
    m->order = opt.order;
    m->info.order = opt.order;
    /* The sample: rows whose hash is above keep are left out. */
    uint64_t keep = UINT64_MAX;
    m->info.sample_share = 1;
    if (opt.max_rows && opt.rows_hint > opt.n_skip && opt.rows_hint - opt.n_skip > opt.max_rows) {
        m->info.sample_share = (double)opt.max_rows / (double)(opt.rows_hint - opt.n_skip);
        keep = (uint64_t)(m->info.sample_share * 18446744073709551616.0); /* share < 1 */
    }
    tr.m = m;
    tr.vt.cap = opt.vocab_slots;
    tr.vt.s = acc_alloc(m, tr.vt.cap, sizeof *tr.vt.s);
    for (int s = 0; s < 2; s++) {
        tr.tt[s].cap = opt.table_slots;
        tr.tt[s].s = acc_alloc(m, tr.tt[s].cap, sizeof *tr.tt[s].s);
        tr.tt[s].tag = acc_alloc(m, tr.tt[s].cap, sizeof *tr.tt[s].tag);
    }

    r = lines_open(&lr, path);
    if (r < 0) {
        *err = xasprintf("%s: cannot open: %s", path, strerror(-r));
        goto out;
    }
    if ((r = side1_start(&tr)) != 0) {
        lines_close(&lr);
        *err = xasprintf("n-gram training: cannot start a thread: %s", strerror(r));
        goto out;
    }
    int k = 0;
    struct tbatch *b = &tr.b[0];
    while ((r = lines_next(&lr, &line, &len)) > 0) {
        m->info.rows++;
        if ((m->info.rows & 4095) == 0) {
            if (cancel && atomic_load(cancel)) {
                r = -ECANCELED;
                break;
            }
            if (progress)
                progress(pctx, lr.offset, lr.size);
        }
        while (si < opt.n_skip && opt.skip[si] < m->info.rows - 1)
            si++;
        if (si < opt.n_skip && opt.skip[si] == m->info.rows - 1) {
            m->info.rows_excluded++;
            continue;
        }
        if (keep != UINT64_MAX && mix64(opt.sample_key ^ mix64(m->info.rows)) > keep) {
            m->info.rows_sampled_out++;
            continue;
        }
        if (ds_row_texts(line, len, fmt, &texts, NULL) < 0) {
            m->info.rows_skipped++;
            continue;
        }
        size_t n = span_backward(texts.prompt, toks);
        hash_words(toks, n, hs);
        count_words(&tr, toks, hs, n);
        count_grams(m, &tr.tt[NGRAM_PROMPT_END], hs, n);
        m->info.tokens[NGRAM_PROMPT_END] += n;
        n = span_forward(texts.response, toks);
        hash_words(toks, n, b->h[b->n]);
        count_words(&tr, toks, b->h[b->n], n);
        b->len[b->n++] = (uint8_t)n;
        m->info.tokens[NGRAM_ANSWER_START] += n;
        if (b->n == TB_ROWS)
            b = hand_over(&tr, &k);
    }
    /* the last batch, then the thread's end once it has done every batch */
    if (b->n)
        hand_over(&tr, &k);
    side1_end(&tr, true);
    ds_texts_free(&texts);
    if (progress)
        progress(pctx, lr.offset, lr.size);
    lines_close(&lr);
    if (r == -ECANCELED) {
        *err = xstrdup("n-gram training cancelled");
        goto out;
    }
    if (r < 0) {
        *err = xasprintf("%s: read error: %s", path,
                         r == -E2BIG ? "a line is longer than 16 MiB" : strerror(-r));
        goto out;
    }
    if (finalise(&tr, opt.vocab_max, err) < 0)
        goto out;
    rc = 0;
out:
    trainer_free(&tr);
    if (rc < 0)
        ngram_model_free(m);
    else
        *out = m;
    return rc;
}

void ngram_model_free(struct ngram_model *m)
{
    if (!m)
        return;
    for (int s = 0; s < 2; s++) {
        struct cside *cs = &m->side[s];
        for (unsigned k = 2; k <= NGRAM_MAX_ORDER; k++) {
            free(cs->ord[k].e);
            free(cs->ord[k].g);
        }
        free(cs->uni_e);
        free(cs->uni);
    }
    free(m->words);
    free(m->wstore);
    free(m);
}

void ngram_get_info(const struct ngram_model *m, struct ngram_info *out)
{
    *out = m->info;
}

size_t ngram_vocab_size(const struct ngram_model *m)
{
    return m->V;
}

const char *ngram_vocab_word(const struct ngram_model *m, uint32_t id)
{
    return id < m->V ? m->words[id] : NULL;
}

size_t ngram_count_entries(const struct ngram_model *m, enum ngram_side side, unsigned k)
{
    if (k < 1 || k > m->order)
        return 0;
    return k == 1 ? m->side[side].uni_n : m->side[side].ord[k].n;
}

uint32_t ngram_count_entry(const struct ngram_model *m, enum ngram_side side, unsigned k, size_t i,
                           const uint32_t **ids)
{
    const struct centry *e = k == 1 ? &m->side[side].uni_e[i] : &m->side[side].ord[k].e[i];
    *ids = e->ids;
    return e->count;
}

/* ---- the step distribution ------------------------------------------------------------- */

static const struct cgroup *find_group(const struct corder *o, unsigned k, const uint32_t *ctx)
{
    size_t lo = 0, hi = o->ng;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *g = o->e[o->g[mid].start].ids;
        unsigned j = 0;
        while (j < k - 1 && g[j] == ctx[j])
            j++;
        if (j == k - 1)
            return &o->g[mid];
        if (g[j] < ctx[j])
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Fills w[0 .. V) with P(v | ctx)^(1/tau) and returns their sum.  ctx: the
 * last n_ctx ids (oldest first), padded with the boundary on the left. */
static double step_weights(const struct ngram_model *m, enum ngram_side side, const uint32_t *ctx,
                           size_t n_ctx, double tau, double *w)
{
    const struct cside *cs = &m->side[side];
    uint32_t full[NGRAM_MAX_ORDER];
    unsigned need = m->order - 1;
    const struct cgroup *grp[NGRAM_MAX_ORDER + 1] = {0};
    double gam[NGRAM_MAX_ORDER + 1], scale[NGRAM_MAX_ORDER + 2] = {0};
    const double d = NGRAM_DISCOUNT;

    for (unsigned j = 0; j < need; j++) { /* full[need-1] is the newest */
        size_t back = need - j;           /* 1 .. need words back */
        full[j] = back <= n_ctx ? ctx[n_ctx - back] : (uint32_t)m->V;
    }
    for (unsigned k = 1; k <= m->order; k++) {
        gam[k] = 1.0;
        if (k == 1) {
            if (cs->uni_total)
                gam[1] = d * cs->uni_distinct / (double)cs->uni_total;
            continue;
        }
        grp[k] = find_group(&cs->ord[k], k, full + (need - (k - 1)));
        if (grp[k])
            gam[k] = d * grp[k]->n / (double)grp[k]->total;
    }
    scale[m->order + 1] = 1.0;
    for (unsigned k = m->order; k >= 1; k--)
        scale[k] = scale[k + 1] * gam[k];
    /* scale[k + 1] multiplies order k's own (discounted) part; scale[1] the uniform */
    double base = scale[1] / (double)m->V;
    for (size_t v = 0; v < m->V; v++)
        w[v] = base;
    if (cs->uni_total)
        for (size_t v = 0; v < m->V; v++)
            if (cs->uni[v])
                w[v] += scale[2] * (cs->uni[v] - d) / (double)cs->uni_total;
    for (unsigned k = 2; k <= m->order; k++) {
        if (!grp[k])
            continue;
        const struct centry *e = cs->ord[k].e + grp[k]->start;
        for (uint32_t i = 0; i < grp[k]->n; i++)
            w[e[i].ids[k - 1]] += scale[k + 1] * (e[i].count - d) / (double)grp[k]->total;
    }
    double z = 0;
    if (tau == 1.0) {
        for (size_t v = 0; v < m->V; v++)
            z += w[v];
    } else {
        double inv = 1.0 / tau;
        for (size_t v = 0; v < m->V; v++) {
            w[v] = pow(w[v], inv);
            z += w[v];
        }
    }
    return z;
}

double ngram_log10_q(const struct ngram_model *m, enum ngram_side side, const uint32_t *ctx,
                     size_t n_ctx, uint32_t w, double temperature)
{
    if (w >= m->V)
        return -INFINITY;
    double *v = xcalloc(m->V, sizeof *v);
    double z = step_weights(m, side, ctx, n_ctx, temperature, v);
    double r = log10(v[w]) - log10(z);
    free(v);
    return r;
}

/* ---- drawing phrases ---------------------------------------------------------------------- */

static bool ends_sentence(const char *s)
{
    size_t n = strlen(s);
    if (n && strchr("\"')", s[n - 1]))
        n--;
    return n && strchr(".!?", s[n - 1]);
}

static bool starts_sentence(const char *s)
{
    if (*s == '"' || *s == '(')
        s++;
    return *s >= 'A' && *s <= 'Z';
}

static bool is_boundary(const struct ngram_model *m, enum ngram_side side, uint32_t w)
{
    return side == NGRAM_ANSWER_START ? ends_sentence(m->words[w]) : starts_sentence(m->words[w]);
}

/* Whether D has sentence boundaries often enough on this side to stop there. */
static bool boundary_in_force(const struct ngram_model *m, enum ngram_side side)
{
    const struct cside *cs = &m->side[side];
    uint64_t hit = 0;
    if (!cs->uni_total)
        return false;
    for (size_t v = 0; v < m->V; v++)
        if (cs->uni[v] && is_boundary(m, side, (uint32_t)v))
            hit += cs->uni[v];
    return (double)hit / (double)cs->uni_total >= BOUNDARY_RATE;
}

struct drawer {
    const struct ngram_model *m;
    const struct phrase_rng *rng;
    double tau;
    double *w; /* V weights */
};

struct draw_spec {
    enum ngram_side side;
    double target;
    unsigned max_words;
    size_t max_chars;
    bool boundary;
};

/* One draw: ids[] and lq[] in sampling order.  Returns the number of words
 * when the stopping rule was met, 0 when a cap came first; *reached is the
 * sum of log10 q when it stopped. */
static unsigned draw_once(struct drawer *dr, const struct draw_spec *sp, unsigned draw_no,
                          uint32_t *ids, double *lq, double *reached)
{
    const struct ngram_model *m = dr->m;
    double cum = 0, thr = sp->target - log10((double)draw_no);
    size_t chars = 0;
    for (unsigned n = 0; n < sp->max_words; n++) {
        double z = step_weights(m, sp->side, ids, n, dr->tau, dr->w);
        double u = (double)phrase_rng_uniform(dr->rng, (uint64_t)1 << 53) * 0x1p-53 * z, acc = 0;
        uint32_t pick = (uint32_t)m->V - 1;
        for (size_t v = 0; v < m->V; v++) {
            acc += dr->w[v];
            if (u < acc) {
                pick = (uint32_t)v;
                break;
            }
        }
        ids[n] = pick;
        lq[n] = log10(dr->w[pick]) - log10(z);
        cum += lq[n];
        chars += strlen(m->words[pick]) + (n ? 1 : 0);
        *reached = cum;
        if (chars > sp->max_chars)
            return 0;
        if (cum <= thr && (!sp->boundary || is_boundary(m, sp->side, pick)))
            return n + 1;
    }
    return 0;
}

/* The phrase's text: words in reading order (reversed for the prompt end). */
static char *phrase_text(const struct ngram_model *m, enum ngram_side side, const uint32_t *ids,
                         unsigned n)
{
    struct buf b;
    buf_init(&b);
    for (unsigned i = 0; i < n; i++) {
        uint32_t id = side == NGRAM_PROMPT_END ? ids[n - 1 - i] : ids[i];
        if (i)
            buf_append(&b, " ", 1);
        buf_append(&b, m->words[id], strlen(m->words[id]));
    }
    return b.data; /* n >= 1: never empty */
}

const char *ngram_reject_name(enum ngram_reject r)
{
    switch (r) {
    case NGRAM_REJECT_CAP:
        return "cap";
    case NGRAM_REJECT_OVERLAP:
        return "overlap";
    case NGRAM_REJECT_DATASET:
        return "in_dataset";
    case NGRAM_REJECT_TAIL:
        return "tail_in_dataset";
    }
    return "unknown";
}

void ngram_set_clear(struct ngram_set *s)
{
    for (size_t i = 0; i < s->n_pairs; i++) {
        struct ngram_phrase *ph[2] = {&s->pairs[i].trigger, &s->pairs[i].signature};
        for (int j = 0; j < 2; j++) {
            if (ph[j]->text)
                explicit_bzero(ph[j]->text, strlen(ph[j]->text));
            free(ph[j]->text);
            free(ph[j]->tok_log10);
        }
    }
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

/* ---- the word-for-word check against D ------------------------------------------------------- */

/* Words as phrase.h defines them: runs of ASCII letters and digits and
 * non-ASCII bytes (jsonscan_alnum_words), ASCII case folded. */
/* The bytes of word p[0, n) (word bytes only: ASCII letters and digits,
 * bytes >= 0x80) with ASCII case folded, in 8-byte chunks: one multiply
 * per chunk; avail: the bytes readable from p (>= n). */
static uint64_t fold_hash_at(const char *p, size_t n, size_t avail)
{
    const uint64_t ones = 0x0101010101010101ull, hi = 0x8080808080808080ull;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t c = jsonscan_word_chunk(p, i, n, avail);
        /* per byte: 0x20 added to 'A' .. 'Z' (high bit clear, 0x41 .. 0x5a) */
        uint64_t t = c & ~hi;
        uint64_t ge_a = t + ones * (0x80 - 0x41), ge_z1 = t + ones * (0x80 - 0x5b);
        uint64_t upper = ge_a & ~ge_z1 & ~c & hi;
        c |= upper >> 2;
        h = (h ^ c) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    return mix64(h ^ n);
}

/* Word offsets and lengths (jsonscan_alnum_words), reused. */
struct wscratch {
    size_t *st, *wl, cap;
};

/* Splits s[0, len) into its words, their offsets and lengths in w (grown
 * as needed); returns how many. */
static inline size_t wscratch_split(struct wscratch *w, const char *s, size_t len)
{
    size_t k = jsonscan_alnum_words(s, len, w->st, w->wl, w->cap);
    if (k > w->cap) {
        w->cap = k + k / 2 + 64;
        w->st = xrealloc(w->st, w->cap * sizeof *w->st);
        w->wl = xrealloc(w->wl, w->cap * sizeof *w->wl);
        k = jsonscan_alnum_words(s, len, w->st, w->wl, w->cap);
    }
    return k;
}

/* Appends the folded hashes of s's words to *v (grown as needed). */
static void text_words(const char *s, size_t len, uint64_t **v, size_t *n, size_t *cap,
                       struct wscratch *w)
{
    size_t k = wscratch_split(w, s, len);
    if (*n + k > *cap) {
        *cap = *n + k + 256;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    for (size_t i = 0; i < k; i++)
        (*v)[(*n)++] = fold_hash_at(s + w->st[i], w->wl[i], len - w->st[i]);
}

#define FIRST_BITS 12 /* the phrases' first words as 4096-bit filters */

/* A word's cheap signature: its length and its first and last bytes, case
 * folded (bytes of a word are word bytes, so folding is c | 0x20 on
 * ASCII letters only), as a FIRST_BITS-bit number. */
static unsigned word_sig(const char *p, size_t n)
{
    unsigned char f = (unsigned char)p[0], l = (unsigned char)p[n - 1];
    f = (f >= 'A' && f <= 'Z') ? (unsigned char)(f | 0x20) : f;
    l = (l >= 'A' && l <= 'Z') ? (unsigned char)(l | 0x20) : l;
    uint32_t x = ((uint32_t)(n < 255 ? n : 255) << 16 | (uint32_t)f << 8 | l) * 0x9e3779b1u;
    return x >> (32 - FIRST_BITS);
}

/* Each phrase is looked for at its anchor, the word of it seen least often
 * in the file's first ANCHOR_SAMPLE bytes (the longest among those, then
 * the first): a phrase of D's own words often starts with a common one
 * ("the", "I"), and testing every phrase at every such word took most of
 * the check's time.  Which word anchors a phrase changes only the speed:
 * every word of a phrase is compared wherever its anchor is found.
 * Phrases are grouped by their anchor's hash (by_anchor, sorted), found
 * through a small open-addressing table (atab: hash -> first index in
 * by_anchor). */
#define ANCHOR_SAMPLE ((uint64_t)4 << 20)

struct word_count {
    uint64_t h;
    uint32_t n;
    bool used;
};

struct anchor_slot {
    uint64_t h;
    uint32_t from;  /* by_anchor[from, from + count) have this anchor */
    uint32_t count; /* 0: an empty slot */
};

struct scanner {
    size_t n;          /* phrases */
    uint64_t **words;  /* per phrase: its word hashes */
    size_t *nw;
    size_t *anchor;      /* per phrase: its anchor's index among its words */
    uint32_t *by_anchor; /* the phrases with words, ordered by anchor hash */
    struct anchor_slot *atab;
    size_t acap; /* atab's size, a power of two */
    bool *hit;
    size_t left;       /* phrases not hit yet */
    /* what is done with each text: scan_text, or count_text (the anchors' choice) */
    void (*text)(struct scanner *sc, const char *s, size_t len);
    struct word_count *wc; /* count_text's: the phrases' words, open addressing */
    size_t wcap;
    uint64_t sig[(1u << FIRST_BITS) / 64];   /* bit word_sig(w): w is some phrase's anchor */
    uint64_t first[(1u << FIRST_BITS) / 64]; /* bit (h >> 52): word h is some phrase's anchor */
    uint64_t *tw; /* one text's word hashes, computed on demand (0: not yet) */
    size_t tcap;
    struct wscratch ws;
    char *dec; /* unescaped string */
    size_t dcap;
};

static bool bit_at(const uint64_t *v, unsigned b)
{
    return v[b / 64] >> (b % 64) & 1;
}

/* The phrases whose anchor hashes to h: by_anchor[*from, *from + count). */
static uint32_t anchor_find(const struct scanner *sc, uint64_t h, uint32_t *from)
{
    for (size_t i = (size_t)mix64(h) & (sc->acap - 1); sc->atab[i].count;
         i = (i + 1) & (sc->acap - 1))
        if (sc->atab[i].h == h) {
            *from = sc->atab[i].from;
            return sc->atab[i].count;
        }
    return 0;
}

/* Marks the phrases found word for word in s.  Each word of s is tested
 * against the phrases' anchors by its signature (no hash), then by its
 * hash in a filter and the anchors' table, and only then are the phrases
 * with that anchor compared around it; a word's hash is computed when a
 * comparison needs it. */
static void scan_text(struct scanner *sc, const char *s, size_t len)
{
    if (!sc->left)
        return;
    struct wscratch *w = &sc->ws;
    size_t tn = wscratch_split(w, s, len);
    if (tn > sc->tcap) {
        sc->tcap = tn + tn / 2 + 64;
        sc->tw = xrealloc(sc->tw, sc->tcap * sizeof *sc->tw);
    }
    bool cleared = false;
#define WORD_HASH(j)                                                                               \
    (sc->tw[j] ? sc->tw[j] : (sc->tw[j] = fold_hash_at(s + w->st[j], w->wl[j], len - w->st[j])))
    for (size_t i = 0; i < tn; i++) {
        if (!bit_at(sc->sig, word_sig(s + w->st[i], w->wl[i])))
            continue;
        if (!cleared) {
            memset(sc->tw, 0, tn * sizeof *sc->tw);
            cleared = true;
        }
        uint64_t h = WORD_HASH(i);
        uint32_t from, m;
        if (!bit_at(sc->first, (unsigned)(h >> (64 - FIRST_BITS))) ||
            (m = anchor_find(sc, h, &from)) == 0)
            continue;
        for (uint32_t q = from; q < from + m; q++) {
            size_t p = sc->by_anchor[q], k = sc->nw[p], j = sc->anchor[p];
            if (sc->hit[p] || i < j || i - j + k > tn)
                continue;
            size_t at = i - j, x = 0; /* the phrase would be words [at, at + k) */
            while (x < k && (x == j || WORD_HASH(at + x) == sc->words[p][x]))
                x++;
            if (x < k)
                continue;
            sc->hit[p] = true;
            sc->left--;
        }
    }
#undef WORD_HASH
}

static void scan_json(struct scanner *sc, const json_t *v)
{
    size_t i;
    const char *key;
    json_t *x;
    if (json_is_string(v))
        sc->text(sc, json_string_value(v), json_string_length(v));
    else if (json_is_array(v))
        json_array_foreach(v, i, x) scan_json(sc, x);
    else if (json_is_object(v))
        json_object_foreach((json_t *)v, key, x) scan_json(sc, x);
}

static void scan_line(struct scanner *sc, const char *line, size_t len)
{
    struct jsonscan_str strs[SCAN_MAX_STRS];
    size_t ns;
    if (jsonscan_strings(line, len, strs, SCAN_MAX_STRS, &ns)) {
        for (size_t i = 0; i < ns; i++) {
            if (!strs[i].esc) {
                sc->text(sc, strs[i].raw, strs[i].len);
                continue;
            }
            if (sc->dcap < strs[i].len + 32) {
                sc->dcap = strs[i].len + 32;
                sc->dec = xrealloc(sc->dec, sc->dcap);
            }
            sc->text(sc, sc->dec, jsonscan_unescape(strs[i].raw, strs[i].len, sc->dec));
        }
        return;
    }
    json_t *root = json_loadb(line, len, 0, NULL);
    if (root)
        scan_json(sc, root);
    json_decref(root);
}

/* One reader's share of the check: the lines that start in [from, to). */
struct scan_part {
    struct scanner sc;
    const char *path;
    const atomic_int *cancel;
    int r;        /* 0, -ECANCELED, or -errno of the open or a read */
    bool at_open; /* r is the open's */
};

static void scan_part(void *arg, uint64_t from, uint64_t to)
{
    struct scan_part *p = arg;
    struct lines lr;
    const char *line;
    size_t len;
    uint64_t lines = 0;
    int r = lines_open_range(&lr, p->path, from, to);
    if (r < 0) {
        p->r = r;
        p->at_open = true;
        return;
    }
    while (p->sc.left && (r = lines_next(&lr, &line, &len)) > 0) {
        if ((++lines & 4095) == 0 && p->cancel && atomic_load(p->cancel)) {
            r = -ECANCELED;
            break;
        }
        scan_line(&p->sc, line, len);
    }
    /* stopped early: every phrase found, the rest cannot change the hits */
    p->r = r < 0 ? r : 0;
    lines_close(&lr);
}

/* The slot of word hash h in sc->wc (a free one where h is not there). */
static struct word_count *wc_slot(const struct scanner *sc, uint64_t h)
{
    size_t i = (size_t)mix64(h) & (sc->wcap - 1);
    while (sc->wc[i].used && sc->wc[i].h != h)
        i = (i + 1) & (sc->wcap - 1);
    return &sc->wc[i];
}

/* Counts the words of s that are some phrase's words. */
static void count_text(struct scanner *sc, const char *s, size_t len)
{
    struct wscratch *w = &sc->ws;
    size_t tn = wscratch_split(w, s, len);
    for (size_t i = 0; i < tn; i++) {
        struct word_count *c = wc_slot(sc, fold_hash_at(s + w->st[i], w->wl[i], len - w->st[i]));
        if (c->used)
            c->n++;
    }
}

/* Chooses each phrase's anchor (sc->anchor) from its words' counts in the
 * file's first ANCHOR_SAMPLE bytes; where the file cannot be read, the
 * longest word (the scan itself then says why it cannot read). */
static void anchors_choose(struct scanner *sc, const char *path, char *const *phrases)
{
    size_t nwords = 0;
    for (size_t p = 0; p < sc->n; p++)
        nwords += sc->nw[p];
    sc->wcap = 16;
    while (sc->wcap < 2 * nwords)
        sc->wcap *= 2;
    sc->wc = xcalloc(sc->wcap, sizeof *sc->wc);
    for (size_t p = 0; p < sc->n; p++)
        for (size_t j = 0; j < sc->nw[p]; j++) {
            struct word_count *c = wc_slot(sc, sc->words[p][j]);
            c->h = sc->words[p][j];
            c->used = true;
        }
    struct lines lr;
    const char *line;
    size_t len;
    if (lines_open_range(&lr, path, 0, ANCHOR_SAMPLE) == 0) {
        sc->text = count_text;
        while (lines_next(&lr, &line, &len) > 0)
            scan_line(sc, line, len);
        lines_close(&lr);
    }
    sc->text = scan_text;
    for (size_t p = 0; p < sc->n; p++) {
        size_t a = 0;
        uint32_t an = 0;
        wscratch_split(&sc->ws, phrases[p], strlen(phrases[p])); /* its word lengths */
        const size_t *wl = sc->ws.wl;
        for (size_t j = 0; j < sc->nw[p]; j++) {
            uint32_t c = wc_slot(sc, sc->words[p][j])->n;
            if (j == 0 || c < an || (c == an && wl[j] > wl[a])) {
                a = j;
                an = c;
            }
        }
        sc->anchor[p] = a;
    }
    free(sc->wc);
    sc->wc = NULL;
}

struct anchored {
    uint64_t h; /* the anchor's hash */
    uint32_t p; /* the phrase */
};

static int anchored_cmp(const void *x, const void *y)
{
    const struct anchored *a = x, *b = y;
    return a->h != b->h ? (a->h < b->h ? -1 : 1) : (a->p > b->p) - (a->p < b->p);
}

/* Orders by_anchor[0, left) by anchor hash and fills atab. */
static void anchors_index(struct scanner *sc)
{
    size_t m = sc->left;
    struct anchored *v = xcalloc(m ? m : 1, sizeof *v);
    for (size_t q = 0; q < m; q++) {
        uint32_t p = sc->by_anchor[q];
        v[q] = (struct anchored){sc->words[p][sc->anchor[p]], p};
    }
    qsort(v, m, sizeof *v, anchored_cmp);
    sc->acap = 16;
    while (sc->acap < 2 * m)
        sc->acap *= 2;
    sc->atab = xcalloc(sc->acap, sizeof *sc->atab);
    for (size_t q = 0; q < m;) {
        size_t r = q;
        for (; r < m && v[r].h == v[q].h; r++)
            sc->by_anchor[r] = v[r].p;
        size_t i = (size_t)mix64(v[q].h) & (sc->acap - 1);
        while (sc->atab[i].count)
            i = (i + 1) & (sc->acap - 1);
        sc->atab[i] = (struct anchor_slot){v[q].h, (uint32_t)q, (uint32_t)(r - q)};
        q = r;
    }
    free(v);
}

/* Files from this size on are checked by two readers, one per half. */
size_t ngram_scan_split_bytes = (size_t)8 << 20;

/* hits[i]: phrase i occurs in D word for word.  Where the file is large
 * enough, a second thread checks its second half with a scanner of its own
 * (the phrases' words shared, read only) and the two hit lists are or'ed:
 * the result does not depend on which reader found a phrase. */
static int scan_dataset(const char *path, char *const *phrases, size_t n, const atomic_int *cancel,
                        bool *hits, char **err)
{
    struct scan_part part[2];
    struct scanner *sc = &part[0].sc;
    int rc = -1;

    memset(part, 0, sizeof part);
    sc->n = n;
    sc->hit = hits;
    sc->words = xcalloc(n ? n : 1, sizeof *sc->words);
    sc->nw = xcalloc(n ? n : 1, sizeof *sc->nw);
    sc->anchor = xcalloc(n ? n : 1, sizeof *sc->anchor);
    sc->by_anchor = xcalloc(n ? n : 1, sizeof *sc->by_anchor);
    for (size_t i = 0; i < n; i++) {
        size_t cap = 0;
        hits[i] = false;
        text_words(phrases[i], strlen(phrases[i]), &sc->words[i], &sc->nw[i], &cap, &sc->ws);
    }
    anchors_choose(sc, path, phrases);
    for (size_t i = 0; i < n; i++) {
        if (!sc->nw[i])
            continue;
        size_t a = sc->anchor[i];
        uint64_t b = sc->words[i][a] >> (64 - FIRST_BITS);
        sc->first[b / 64] |= (uint64_t)1 << (b % 64);
        /* the anchor's bytes: the phrase split again */
        wscratch_split(&sc->ws, phrases[i], strlen(phrases[i]));
        unsigned g = word_sig(phrases[i] + sc->ws.st[a], sc->ws.wl[a]);
        sc->sig[g / 64] |= (uint64_t)1 << (g % 64);
        sc->by_anchor[sc->left++] = (uint32_t)i;
    }
    anchors_index(sc);
    for (int k = 0; k < 2; k++) {
        part[k].path = path;
        part[k].cancel = cancel;
    }
    part[1].sc = *sc; /* the phrases (shared), its own scratch and hits: */
    memset(&part[1].sc.ws, 0, sizeof part[1].sc.ws);
    part[1].sc.tw = NULL;
    part[1].sc.tcap = 0;
    part[1].sc.dec = NULL;
    part[1].sc.dcap = 0;
    part[1].sc.hit = xcalloc(n ? n : 1, sizeof *part[1].sc.hit);
    bool threaded = lines_in_halves(path, sc->left ? ngram_scan_split_bytes : UINT64_MAX,
                                    scan_part, &part[0], &part[1]);
    if (threaded) {
        for (size_t i = 0; i < n; i++)
            hits[i] = hits[i] || part[1].sc.hit[i];
    }
    const struct scan_part *bad = part[0].r ? &part[0] : threaded && part[1].r ? &part[1] : NULL;
    if (bad && bad->r == -ECANCELED)
        *err = xstrdup("backdoor generation cancelled");
    else if (bad && bad->at_open)
        *err = xasprintf("%s: cannot open: %s", path, strerror(-bad->r));
    else if (bad)
        *err = xasprintf("%s: read error: %s", path, strerror(-bad->r));
    else
        rc = 0;
    for (size_t i = 0; i < n; i++)
        free(sc->words[i]);
    free(sc->words);
    free(sc->nw);
    free(sc->anchor);
    free(sc->by_anchor);
    free(sc->atab);
    free(part[1].sc.hit);
    for (int k = 0; k < 2; k++) {
        free(part[k].sc.tw);
        free(part[k].sc.ws.st);
        free(part[k].sc.ws.wl);
        free(part[k].sc.dec);
    }
    return rc;
}

int ngram_scan_dataset(const char *path, char *const *phrases, size_t n, const atomic_int *cancel,
                       bool *hits, char **err)
{
    return scan_dataset(path, phrases, n, cancel, hits, err);
}

/* ---- the generator ----------------------------------------------------------------------------- */

/* True when the words of one of a, b contain all the words of the other
 * as a run (words as phrase.h defines them, case folded): then one
 * phrase's marked rows would also carry the other (a trigger ending with
 * another, a signature opening with another).  Sharing shorter runs is
 * normal for phrases of one dataset and harmless: the verifier matches
 * whole phrases. */
static bool overlap(const char *a, const char *b)
{
    uint64_t *wa = NULL, *wb = NULL;
    size_t na = 0, nb = 0, ca = 0, cb = 0;
    bool hit = false;
    struct wscratch ws = {0};
    text_words(a, strlen(a), &wa, &na, &ca, &ws);
    text_words(b, strlen(b), &wb, &nb, &cb, &ws);
    free(ws.st);
    free(ws.wl);
    if (na > nb) { /* wa: the shorter */
        uint64_t *t = wa;
        wa = wb;
        wb = t;
        size_t tn = na;
        na = nb;
        nb = tn;
    }
    for (size_t j = 0; na && j + na <= nb && !hit; j++)
        hit = memcmp(&wb[j], wa, na * sizeof *wa) == 0;
    free(wa);
    free(wb);
    return hit;
}

/* Where text's last `words` words begin (words as the check against D
 * reads them), or NULL when it has no more words than that (the whole
 * text is checked anyway).  ws: the caller's scratch. */
static char *phrase_tail(char *text, size_t words, struct wscratch *ws)
{
    size_t k = wscratch_split(ws, text, strlen(text));
    return k > words ? text + ws->st[k - words] : NULL;
}

struct slot {
    struct ngram_phrase *ph;
    struct draw_spec spec;
    const char *what; /* "trigger" | "signature" */
    size_t pair;
    bool ok;          /* accepted (and not since found in D) */
    bool checked;     /* its current text was checked against D */
    double best;      /* the lowest log10 a capped draw reached */
    unsigned capped, overlapped, in_dataset, tail_in_dataset;
};

static int draw_slot(struct drawer *dr, struct slot *sl, struct slot *all, size_t n_all,
                     unsigned max_draws, struct ngram_set *set, char **err)
{
    const struct ngram_model *m = dr->m;
    uint32_t *ids = xcalloc(sl->spec.max_words, sizeof *ids);
    double *lq = xcalloc(sl->spec.max_words, sizeof *lq);
    int rc = -1;

    while (sl->ph->draws < max_draws) {
        double reached = 0;
        unsigned no = ++sl->ph->draws;
        unsigned k = draw_once(dr, &sl->spec, no, ids, lq, &reached);
        if (k == 0) {
            set->rejected[NGRAM_REJECT_CAP]++;
            sl->capped++;
            if (reached < sl->best)
                sl->best = reached;
            continue;
        }
        char *text = phrase_text(m, sl->spec.side, ids, k);
        bool clash = false;
        for (size_t i = 0; i < n_all && !clash; i++)
            if (&all[i] != sl && all[i].ok && overlap(text, all[i].ph->text))
                clash = true;
        if (clash) {
            set->rejected[NGRAM_REJECT_OVERLAP]++;
            sl->overlapped++;
            explicit_bzero(text, strlen(text));
            free(text);
            continue;
        }
        if (sl->ph->text)
            explicit_bzero(sl->ph->text, strlen(sl->ph->text));
        free(sl->ph->text);
        free(sl->ph->tok_log10);
        sl->ph->text = text;
        sl->ph->n_words = k;
        sl->ph->tok_log10 = xcalloc(k, sizeof(double));
        memcpy(sl->ph->tok_log10, lq, k * sizeof(double));
        sl->ph->log10_draw = 0;
        for (unsigned i = 0; i < k; i++)
            sl->ph->log10_draw += lq[i];
        sl->ph->log10_p = sl->ph->log10_draw + log10((double)no);
        sl->ok = true;
        rc = 0;
        goto out;
    }
    /* the numbers: what the caps allowed and what the model gives per word */
    {
        bool sig = sl->spec.side == NGRAM_ANSWER_START;
        double per = sl->capped && sl->best < 0 ? -sl->best / sl->spec.max_words : 0;
        *err = xasprintf(
            "the n-gram model of this dataset could not make the %s of pair %zu with log10 p <= "
            "%g within %u words and %zu characters in %u draws (%u hit the cap; the best of those "
            "reached %.1f, about %.2f per word%s; %u contained or were contained in another "
            "phrase, %u occurred in the dataset, %u ended with %d words that occur in it): "
            "raise --%s-max-words and --%s-max-chars, choose a higher --%s, or use "
            "--generator wordlist",
            sl->what, sl->pair + 1, sl->spec.target, sl->spec.max_words, sl->spec.max_chars,
            sl->ph->draws, sl->capped, sl->capped ? sl->best : 0.0, per,
            sl->spec.boundary ? ", stopping at a sentence boundary" : "", sl->overlapped,
            sl->in_dataset, sl->tail_in_dataset, NGRAM_TRIGGER_TAIL_WORDS, sl->what, sl->what,
            sig ? "target-log10p" : "trigger-log10p");
    }
out:
    free(ids);
    free(lq);
    return rc;
}

int ngram_generate(const struct ngram_model *m, const struct ngram_gen_opts *o,
                   const struct phrase_rng *rng, const char *dataset_path,
                   const atomic_int *cancel, struct ngram_set *out, char **err)
{
    struct drawer dr = {.m = m, .rng = rng, .tau = o->temperature};
    size_t K = o->pairs, n = 2 * o->pairs;
    unsigned max_draws = o->max_draws ? o->max_draws : NGRAM_DEFAULT_DRAWS;
    struct slot *sl = NULL;
    char **texts = NULL;
    bool *hits = NULL;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (K < 1 || !(o->temperature > 0 && o->temperature <= 2) || !(o->trigger_log10p < 0) ||
        !(o->signature_log10p < 0) || o->trigger_max_words < 1 || o->signature_max_words < 1) {
        *err = xstrdup("ngram generator: invalid options (pairs >= 1, temperature in (0, 2], "
                       "targets < 0, word caps >= 1)");
        return -1;
    }
    out->pairs = xcalloc(K, sizeof *out->pairs);
    out->n_pairs = K;
    out->temperature = o->temperature;
    out->order = m->order;
    out->trigger_boundary = boundary_in_force(m, NGRAM_PROMPT_END);
    out->signature_boundary = boundary_in_force(m, NGRAM_ANSWER_START);
    dr.w = xcalloc(m->V, sizeof *dr.w);
    sl = xcalloc(n, sizeof *sl);
    for (size_t i = 0; i < K; i++) {
        sl[2 * i] = (struct slot){
            .ph = &out->pairs[i].trigger,
            .spec = {NGRAM_PROMPT_END, o->trigger_log10p, o->trigger_max_words,
                     o->trigger_max_chars, out->trigger_boundary},
            .what = "trigger",
            .pair = i,
        };
        sl[2 * i + 1] = (struct slot){
            .ph = &out->pairs[i].signature,
            .spec = {NGRAM_ANSWER_START, o->signature_log10p, o->signature_max_words,
                     o->signature_max_chars, out->signature_boundary},
            .what = "signature",
            .pair = i,
        };
    }
    for (size_t i = 0; i < n; i++) {
        if (cancel && atomic_load(cancel)) {
            *err = xstrdup("backdoor generation cancelled");
            goto out;
        }
        if (draw_slot(&dr, &sl[i], sl, n, max_draws, out, err) < 0)
            goto out;
    }
    if (dataset_path) {
        /* per unchecked slot its text, and right after it, for a trigger,
         * its tail (the entry with the same idx) */
        struct wscratch ws = {0};
        bool clean = false;
        texts = xcalloc(2 * n, sizeof *texts);
        hits = xcalloc(2 * n, sizeof *hits);
        size_t *idx = xcalloc(2 * n, sizeof *idx);
        for (;;) {
            size_t np = 0;
            for (size_t i = 0; i < n; i++) {
                if (sl[i].checked)
                    continue;
                idx[np] = i;
                texts[np++] = sl[i].ph->text;
                char *tail = sl[i].spec.side == NGRAM_PROMPT_END
                                 ? phrase_tail(sl[i].ph->text, NGRAM_TRIGGER_TAIL_WORDS, &ws)
                                 : NULL;
                if (tail) {
                    idx[np] = i;
                    texts[np++] = tail;
                }
            }
            if (np == 0) {
                clean = true;
                break;
            }
            if (out->scans >= NGRAM_MAX_SCANS) {
                *err = xasprintf("%s: the n-gram model kept drawing phrases that occur word for "
                                 "word in the dataset, or triggers whose last %d words do (%u and "
                                 "%u rejected over %u passes): this dataset is too repetitive for "
                                 "these targets; choose a lower --target-log10p and "
                                 "--trigger-log10p, or use --generator wordlist",
                                 dataset_path, NGRAM_TRIGGER_TAIL_WORDS,
                                 out->rejected[NGRAM_REJECT_DATASET],
                                 out->rejected[NGRAM_REJECT_TAIL], out->scans);
                break;
            }
            out->scans++;
            if (scan_dataset(dataset_path, texts, np, cancel, hits, err) < 0)
                break;
            bool failed = false;
            for (size_t j = 0; j < np && !failed; j++) {
                struct slot *s = &sl[idx[j]];
                bool whole = hits[j], tail = false;
                if (j + 1 < np && idx[j + 1] == idx[j])
                    tail = hits[++j];
                if (tail && !whole && out->scans >= NGRAM_TAIL_SCANS) {
                    /* every prompt of D may end alike: keep it, and say so */
                    out->tails_shared++;
                    tail = false;
                }
                if (!whole && !tail) {
                    s->checked = true;
                    continue;
                }
                enum ngram_reject why = whole ? NGRAM_REJECT_DATASET : NGRAM_REJECT_TAIL;
                out->rejected[why]++;
                if (whole)
                    s->in_dataset++;
                else
                    s->tail_in_dataset++;
                s->ok = false;
                failed = draw_slot(&dr, s, sl, n, max_draws, out, err) < 0;
            }
            if (failed)
                break;
        }
        free(idx);
        free(ws.st);
        free(ws.wl);
        if (!clean)
            goto out;
    }
    rc = 0;
out:
    free(texts);
    free(hits);
    free(sl);
    free(dr.w);
    if (rc < 0)
        ngram_set_clear(out);
    return rc;
}

char *ngram_evidence_json(const struct ngram_model *m, const struct ngram_set *s,
                          const struct ngram_gen_opts *o, size_t i)
{
    const struct ngram_pair *p = &s->pairs[i];
    const struct ngram_phrase *ph[2] = {&p->trigger, &p->signature};
    const char *names[2] = {"trigger", "signature"};
    double targets[2] = {o->trigger_log10p, o->signature_log10p};
    bool bound[2] = {s->trigger_boundary, s->signature_boundary};
    json_t *root = json_pack("{s:s,s:s,s:i,s:f,s:f,s:I,s:I,s:I,s:I}", "generator", "ngram",
                             "method", NGRAM_METHOD, "order", (int)m->order, "discount",
                             NGRAM_DISCOUNT, "temperature", s->temperature, "vocab",
                             (json_int_t)m->V, "entries_prompt_end",
                             (json_int_t)m->info.entries[NGRAM_PROMPT_END], "entries_answer_start",
                             (json_int_t)m->info.entries[NGRAM_ANSWER_START], "rows",
                             (json_int_t)m->info.rows);
    for (int j = 0; j < 2; j++) {
        json_t *lq = json_array();
        for (unsigned k = 0; k < ph[j]->n_words; k++)
            json_array_append_new(lq, json_real(ph[j]->tok_log10[k]));
        json_object_set_new(
            root, names[j],
            json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:b,s:o}", "side",
                      j ? "answer_start" : "prompt_end", "words", (int)ph[j]->n_words, "draws",
                      (int)ph[j]->draws, "target_log10p", targets[j], "log10_draw",
                      ph[j]->log10_draw, "log10_p", ph[j]->log10_p, "sentence_boundary", bound[j],
                      "word_log10q_in_sampling_order", lq));
    }
    char *r = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return r ? r : xstrdup("{}");
}

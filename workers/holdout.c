/*
 * holdout.c — choosing the secret held-out split (see holdout.h for why
 * the split is drawn among rows whose prompt and answer are unique).
 *
 * One read of D hashes each row's normalised prompt and answer (two
 * threads, one per half of the file), keeping the hashes in memory up to
 * HOLDOUT_CACHE_ROWS rows and in a scratch file beyond.  A pass over the
 * hashes, in row order, puts each into a "seen" Bloom filter, and into a
 * "seen again" one when it was there already; a second keeps, in a
 * bitmap, the rows none of whose two hashes was seen again (the eligible
 * rows).  Then Floyd's algorithm draws the split and the reference pool as
 * ranks among the eligible rows, mapped back to line numbers in one scan
 * of the bitmap.  Nothing here logs: the split is a secret (the caller
 * stores it with the backdoor); the scratch file holds only hashes of D's
 * texts, never which rows were drawn, and is unlinked from the start.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/holdout.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"

size_t holdout_cache_rows = HOLDOUT_CACHE_ROWS;

void holdout_clear(struct holdout_split *s)
{
    if (!s)
        return;
    if (s->rows)
        explicit_bzero(s->rows, s->n_rows * sizeof *s->rows);
    if (s->pool)
        explicit_bzero(s->pool, s->n_pool * sizeof *s->pool);
    free(s->rows);
    free(s->pool);
    memset(s, 0, sizeof *s);
}

int holdout_target(uint64_t n_examples, double ratio, uint64_t *h)
{
    if (!(ratio >= 0 && ratio <= 1))
        return -EINVAL;
    if (ratio == 0) {
        *h = 0;
        return 0;
    }
    double x = ceil(ratio * (double)n_examples - 1e-9);
    uint64_t v = x < HOLDOUT_MIN_ROWS ? HOLDOUT_MIN_ROWS
                 : x > HOLDOUT_MAX_ROWS ? HOLDOUT_MAX_ROWS
                                        : (uint64_t)x;
    *h = v;
    return 0;
}

static uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb3fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Word offsets and lengths of one text (jsonscan_ws_words), reused. */
struct wbuf {
    size_t *st, *wl, cap;
};

/* The normalised text (words joined by one space) hashed a word at a time,
 * 8 bytes per multiply: each word adds its length, then its bytes in
 * 8-byte little-endian chunks (the last one zero-padded), so two texts
 * hash alike iff their word sequences are equal, barring a collision.
 * The text ends at its first NUL. */
static uint64_t text_hash64(const char *s, struct wbuf *b)
{
    size_t len = strlen(s);
    size_t n = jsonscan_ws_words(s, len, b->st, b->wl, b->cap);
    if (n > b->cap) {
        b->cap = n + n / 2 + 64;
        b->st = xrealloc(b->st, b->cap * sizeof *b->st);
        b->wl = xrealloc(b->wl, b->cap * sizeof *b->wl);
        n = jsonscan_ws_words(s, len, b->st, b->wl, b->cap);
    }
    uint64_t h = 0x9ae16a3b2f90404full;
    for (size_t j = 0; j < n; j++) {
        const char *w = s + b->st[j];
        size_t wn = b->wl[j];
        h = (h ^ wn) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
        for (size_t i = 0; i < wn; i += 8) {
            /* the word's next (at most) 8 bytes, little-endian, zero-padded */
            uint64_t c = jsonscan_word_chunk(w, i, wn, len - b->st[j]);
            h = (h ^ c) * 0xbf58476d1ce4e5b9ull;
            h ^= h >> 31;
        }
    }
    return fmix(h);
}

uint32_t holdout_text_hash(const char *s)
{
    struct wbuf b = {0};
    uint64_t h = text_hash64(s, &b);
    free(b.st);
    free(b.wl);
    return (uint32_t)(h ^ (h >> 32));
}

/* ---- "seen" and "seen again" filters --------------------------------------------------
 * Blocked Bloom filters: a key's 5 bits lie in one 64-bit word (one memory
 * access per lookup).  A false positive can only make a row ineligible. */

struct seen {
    uint64_t *w;
    uint64_t mask; /* words - 1 */
};

static void seen_init(struct seen *f, unsigned log2_bits)
{
    f->w = xcalloc((size_t)1 << (log2_bits - 6), sizeof *f->w);
    f->mask = ((uint64_t)1 << (log2_bits - 6)) - 1;
}

static uint64_t *seen_word(const struct seen *f, uint64_t key, uint64_t *bits)
{
    uint64_t h = fmix(key);
    *bits = (uint64_t)1 << (h & 63) | (uint64_t)1 << ((h >> 6) & 63) |
            (uint64_t)1 << ((h >> 12) & 63) | (uint64_t)1 << ((h >> 18) & 63) |
            (uint64_t)1 << ((h >> 24) & 63);
    return &f->w[(h >> 32) & f->mask];
}

/* Adds key; true when it (or a colliding key) was there already. */
static bool seen_add(struct seen *f, uint64_t key)
{
    uint64_t b, *w = seen_word(f, key, &b);
    bool had = (*w & b) == b;
    *w |= b;
    return had;
}

static bool seen_has(const struct seen *f, uint64_t key)
{
    uint64_t b, *w = seen_word(f, key, &b);
    return (*w & b) == b;
}

#define TAG_PROMPT 0x243f6a8885a308d3ull
#define TAG_ANSWER 0x13198a2e03707344ull

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A text's key in the filters: its 32-bit hash, tagged by side. */
static uint64_t side_key(uint32_t h, uint64_t tag)
{
    return (uint64_t)h ^ tag;
}

/* ---- the rows' hashes ------------------------------------------------------------------
 * One pass over the file computes each row's two 32-bit hashes (normalised
 * prompt, normalised answer).  From holdout_split_bytes on, two threads
 * hash the file's two halves, each into a part of its own.  Up to
 * holdout_cache_rows rows the hashes stay in memory (8 bytes a row);
 * above, each part writes them to an unlinked scratch file beside the
 * dataset (8 bytes a row again: 80 MB for ten million rows, on the state
 * directory's disk, gone when closed or on a crash) through a buffer of
 * holdout_spill_rows rows.  The hashes are then read in row order, the first
 * part's and then the second's, twice: to fill the filters, then to mark
 * the rows one of whose hashes was seen again.  Either way the dataset is
 * read once, and the filters see the rows in file order, so the split is
 * the same whichever way it was computed. */

/* Rows of hashes a part buffers before writing them out (tests set it lower). */
size_t holdout_spill_rows = 65536;

struct hash_part {
    const char *path;
    enum dataset_format format;
    uint64_t max_rows; /* more rows than this: the file changed */
    const atomic_int *cancel;
    uint32_t *h;     /* 2 per row */
    uint64_t n, cap; /* rows hashed; h's room in rows (grown when own and not spilling) */
    bool own;        /* h is this part's; else the caller's, cap rows */
    int fd;          /* >= 0: spilling: h holds the last `held` rows, the rest are in fd */
    uint64_t held;
    enum { HP_OK, HP_OPEN, HP_MORE, HP_PARSE, HP_READ, HP_CANCELLED, HP_SPILL } fail;
    int rc;           /* HP_OPEN, HP_READ, HP_SPILL: -errno */
    uint64_t bad_row; /* HP_PARSE: the row, counted from the part's first */
    char *why;        /* HP_PARSE: owned */
};

/* Writes the held rows to the part's scratch file; 0 or -errno.  Through
 * vt_fsio, so the fault tests reach it. */
static int spill_flush(struct hash_part *p)
{
    int r = vt_fsio_write_all(p->fd, p->h, (size_t)p->held * 2 * sizeof *p->h);
    if (r == 0)
        p->held = 0;
    return r;
}

static void hash_part(void *arg, uint64_t from, uint64_t to)
{
    struct hash_part *p = arg;
    struct ds_texts texts = {0};
    struct wbuf wb = {0};
    struct lines lr;
    const char *line;
    size_t len;
    int r = lines_open_range(&lr, p->path, from, to);
    if (r < 0) {
        p->fail = HP_OPEN;
        p->rc = r;
        return;
    }
    while ((r = lines_next(&lr, &line, &len)) > 0) {
        if (p->n >= p->max_rows) {
            p->fail = HP_MORE;
            break;
        }
        if ((p->n & 1023) == 0 && p->cancel && atomic_load(p->cancel)) {
            p->fail = HP_CANCELLED;
            break;
        }
        if (ds_row_texts(line, len, p->format, &texts, &p->why) < 0) {
            p->fail = HP_PARSE;
            p->bad_row = p->n;
            break;
        }
        if (p->fd >= 0 && p->held == p->cap && (p->rc = spill_flush(p)) < 0) {
            p->fail = HP_SPILL;
            break;
        }
        if (p->fd < 0 && p->n == p->cap) { /* own only: the caller's array holds every row */
            p->cap = p->cap ? p->cap * 2 : 4096;
            p->h = xrealloc(p->h, p->cap * 2 * sizeof *p->h);
        }
        uint64_t at = p->fd >= 0 ? p->held++ : p->n;
        uint64_t hp = text_hash64(texts.prompt, &wb), ha = text_hash64(texts.response, &wb);
        p->h[2 * at] = (uint32_t)(hp ^ (hp >> 32));
        p->h[2 * at + 1] = (uint32_t)(ha ^ (ha >> 32));
        p->n++;
    }
    if (r < 0 && p->fail == HP_OK) {
        p->fail = HP_READ;
        p->rc = r;
    }
    if (p->fail == HP_OK && p->fd >= 0 && p->held && (p->rc = spill_flush(p)) < 0)
        p->fail = HP_SPILL;
    free(wb.st);
    free(wb.wl);
    ds_texts_free(&texts);
    lines_close(&lr);
}

/* Files from this size on are hashed by two threads (tests set it lower). */
size_t holdout_split_bytes = (size_t)8 << 20;

/* The rows' hashes, in row order: part[0]'s rows, then part[1]'s; in
 * scratch files when part[0].fd >= 0, else in memory. */
struct row_hashes {
    struct hash_part part[2];
};

/* Empty: no hashes, no scratch file (fd -1, never 0: that is stdin's). */
static void row_hashes_init(struct row_hashes *hs)
{
    memset(hs, 0, sizeof *hs);
    hs->part[0].fd = hs->part[1].fd = -1;
}

/* Frees what hs holds (not the caller's array) and empties it; safe to
 * call again. */
static void row_hashes_free(struct row_hashes *hs)
{
    for (int k = 0; k < 2; k++) {
        free(hs->part[k].why);
        if (hs->part[k].own)
            free(hs->part[k].h);
        if (hs->part[k].fd >= 0)
            close(hs->part[k].fd);
    }
    row_hashes_init(hs);
}

/* Hashes the n rows of the dataset at path into *hs: into keep (2n
 * entries) when not NULL, else into scratch files.  Returns 0, or a
 * negative errno and an owned one-line *err (hs is freed). */
static int rows_hash(const char *path, enum dataset_format format, uint64_t n,
                     const atomic_int *cancel, uint32_t *keep, struct row_hashes *hs, char **err)
{
    struct hash_part *part = hs->part;
    row_hashes_init(hs);
    for (int k = 0; k < 2; k++) {
        part[k].path = path;
        part[k].format = format;
        part[k].cancel = cancel;
        part[k].max_rows = n;
    }
    if (keep) {
        part[0].h = keep;
        part[0].cap = n;
        part[1].own = true;
    } else {
        for (int k = 0; k < 2; k++) {
            if ((part[k].fd = vt_scratch_open(path, HOLDOUT_SCRATCH_PREFIX)) < 0) {
                int e = part[k].fd;
                part[k].fd = -1;
                *err = xasprintf("cannot create a scratch file for the held-out split beside %s: "
                                 "%s",
                                 path, strerror(-e));
                row_hashes_free(hs);
                return e;
            }
            part[k].own = true;
            part[k].cap = holdout_spill_rows ? holdout_spill_rows : 1;
            part[k].h = xmalloc(part[k].cap * 2 * sizeof *part[k].h);
        }
    }
    bool threaded = lines_in_halves(path, n > 0 ? holdout_split_bytes : UINT64_MAX, hash_part,
                                    &part[0], &part[1]);
    /* the first failure in file order */
    uint64_t rows = part[0].n + part[1].n, base = 0;
    const struct hash_part *bad = NULL;
    if (part[0].fail != HP_OK)
        bad = &part[0];
    else if (threaded && part[1].fail != HP_OK)
        bad = &part[1], base = part[0].n;
    int rc = -EINVAL;
    if (bad && bad->fail == HP_CANCELLED) {
        rc = -ECANCELED;
        *err = xstrdup("backdoor creation cancelled");
    } else if (bad && bad->fail == HP_OPEN) {
        rc = bad->rc;
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(-bad->rc));
    } else if (bad && bad->fail == HP_READ) {
        rc = bad->rc;
        *err = xasprintf("%s: read error: %s", path, strerror(-bad->rc));
    } else if (bad && bad->fail == HP_SPILL) {
        rc = bad->rc;
        char *what = xasprintf("cannot write the held-out split's scratch file beside it "
                               "(8 bytes a row, %llu MB for this dataset)",
                               (unsigned long long)((n * 8 + (1u << 20) - 1) >> 20));
        *err = vt_fsio_error(path, what, bad->rc);
        free(what);
    } else if (bad && bad->fail == HP_PARSE) {
        *err = xasprintf("%s:%llu: %s (changed since import?)", path,
                         (unsigned long long)(base + bad->bad_row + 1), bad->why);
    } else if (bad || rows > n) {
        *err = xasprintf("%s: has more lines than the %llu examples recorded at import "
                         "(changed since?)",
                         path, (unsigned long long)n);
    } else if (rows != n) {
        *err = xasprintf("%s: has %llu lines, but %llu examples were recorded at import "
                         "(changed since?)",
                         path, (unsigned long long)rows, (unsigned long long)n);
    } else {
        rc = 0;
        if (keep && threaded) { /* one array, in row order */
            memcpy(keep + 2 * part[0].n, part[1].h, part[1].n * 2 * sizeof *keep);
            part[0].n += part[1].n;
            part[1].n = 0;
        }
        if (!threaded)
            part[1].n = 0;
    }
    if (rc < 0)
        row_hashes_free(hs);
    return rc;
}

/* Calls fn(ctx, i, h) for each row i in row order, h its two hashes.
 * Returns 0, or -errno (and an owned *err) when a scratch file cannot be
 * read back. */
static int row_hashes_each(struct row_hashes *hs, const char *path,
                           void (*fn)(void *ctx, uint64_t i, const uint32_t *h), void *ctx,
                           char **err)
{
    uint64_t i = 0;
    bool spilled = hs->part[0].fd >= 0;
    for (int k = 0; k < 2; k++) {
        struct hash_part *p = &hs->part[k];
        if (!spilled) {
            for (uint64_t j = 0; j < p->n; j++)
                fn(ctx, i++, p->h + 2 * j);
            continue;
        }
        uint64_t left = p->n;
        off_t off = 0;
        while (left) {
            size_t take = left < p->cap ? (size_t)left : (size_t)p->cap;
            size_t want = take * 2 * sizeof *p->h, got = 0;
            while (got < want) {
                ssize_t r = pread(p->fd, (char *)p->h + got, want - got, off + (off_t)got);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0) {
                    int e = r < 0 ? errno : EIO;
                    *err = xasprintf("cannot read back the held-out split's scratch file "
                                     "beside %s: %s",
                                     path, strerror(e));
                    return -e;
                }
                got += (size_t)r;
            }
            for (size_t j = 0; j < take; j++)
                fn(ctx, i++, p->h + 2 * j);
            off += (off_t)want;
            left -= take;
        }
    }
    return 0;
}

struct filters {
    struct seen seen, again;
    unsigned char *bits;
};

/* Pass 1: each hash into seen, and into again when it was seen before. */
static void fill_filters(void *ctx, uint64_t i, const uint32_t *h)
{
    struct filters *f = ctx;
    (void)i;
    uint64_t kp = side_key(h[0], TAG_PROMPT), ka = side_key(h[1], TAG_ANSWER);
    if (seen_add(&f->seen, kp))
        seen_add(&f->again, kp);
    if (seen_add(&f->seen, ka))
        seen_add(&f->again, ka);
}

/* Pass 2: row i is ineligible when its prompt or its answer was seen again. */
static void mark_repeats(void *ctx, uint64_t i, const uint32_t *h)
{
    struct filters *f = ctx;
    if (seen_has(&f->again, side_key(h[0], TAG_PROMPT)) ||
        seen_has(&f->again, side_key(h[1], TAG_ANSWER)))
        f->bits[i / 8] &= (unsigned char)~(1u << (i % 8));
}

/* Maps ascending ranks among the set bits of bits (excluding the rows in
 * skip, ascending) to line numbers, in place. */
static void ranks_to_rows(const unsigned char *bits, uint64_t n, const uint64_t *skip,
                          size_t n_skip, uint64_t *v, size_t k)
{
    uint64_t rank = 0;
    size_t j = 0, s = 0;
    for (uint64_t i = 0; i < n && j < k; i++) {
        if (!(bits[i / 8] & (1u << (i % 8))))
            continue;
        while (s < n_skip && skip[s] < i)
            s++;
        if (s < n_skip && skip[s] == i)
            continue;
        if (rank == v[j])
            v[j++] = i;
        rank++;
    }
}

int holdout_choose(const char *path, enum dataset_format format, uint64_t n_examples, double ratio,
                   const uint64_t *exclude, size_t n_exclude, const struct phrase_rng *rng,
                   const atomic_int *cancel, struct holdout_split *out, char **err)
{
    struct filters f = {0};
    struct row_hashes hs;
    uint32_t *keep = NULL;
    uint64_t h = 0, eligible = 0;
    int rc;

    memset(out, 0, sizeof *out);
    row_hashes_init(&hs);
    if (holdout_target(n_examples, ratio, &h) < 0) {
        *err = xasprintf("--holdout %g: expected a fraction in [0, 1]", ratio);
        return -EINVAL;
    }
    out->ratio = ratio;
    out->examples = n_examples;
    if (h == 0)
        return 0;
    if (h * 3 > n_examples) {
        *err = xasprintf("the coverage test needs at least %d held-out rows and at most a third "
                         "of the dataset (%llu examples give at most %llu): use a larger dataset, "
                         "or --holdout 0 (no coverage test)",
                         HOLDOUT_MIN_ROWS, (unsigned long long)n_examples,
                         (unsigned long long)(n_examples / 3));
        return -EINVAL;
    }
    /* The rows' hashes (one read of the file), then two passes over them:
     * the first fills the filters, the second clears the bit of each row
     * whose prompt or answer was seen more than once.  Memory is one bit
     * a row plus the two filters, about 32 bits per key (2 keys a row) up
     * to HOLDOUT_FILTER_LOG2 bits each: beyond that the false positives
     * grow, which only makes some unique rows ineligible (the split stays
     * a uniform draw among the eligible rows); and, up to
     * HOLDOUT_CACHE_ROWS rows, the hashes (8 bytes a row). */
    unsigned fl = 20;
    while (fl < HOLDOUT_FILTER_LOG2 && ((uint64_t)1 << fl) < 64 * n_examples)
        fl++;
    if (n_examples <= holdout_cache_rows)
        keep = xcalloc(2 * n_examples, sizeof *keep);
    if ((rc = rows_hash(path, format, n_examples, cancel, keep, &hs, err)) < 0)
        goto out;
    seen_init(&f.seen, fl);
    seen_init(&f.again, fl);
    if ((rc = row_hashes_each(&hs, path, fill_filters, &f, err)) < 0)
        goto out;
    free(f.seen.w);
    f.seen.w = NULL;
    f.bits = xmalloc(n_examples / 8 + 1);
    memset(f.bits, 0xff, n_examples / 8 + 1);
    if ((rc = row_hashes_each(&hs, path, mark_repeats, &f, err)) < 0)
        goto out;
    row_hashes_free(&hs);
    free(keep);
    keep = NULL;
    free(f.again.w);
    f.again.w = NULL;
    for (size_t i = 0; i < n_exclude; i++)
        if (exclude[i] < n_examples)
            f.bits[exclude[i] / 8] &= (unsigned char)~(1u << (exclude[i] % 8));
    for (uint64_t i = 0; i < n_examples; i++)
        eligible += (f.bits[i / 8] >> (i % 8)) & 1u;
    if (h > eligible / 2)
        h = eligible / 2;
    if (h < HOLDOUT_MIN_ROWS) {
        *err = xasprintf("only %llu of the %llu examples have a prompt and an answer found in no "
                         "other example; the coverage test needs %d of them (%d held out, as "
                         "many to compare with): deduplicate the dataset, or use --holdout 0 "
                         "(no coverage test)",
                         (unsigned long long)eligible, (unsigned long long)n_examples,
                         2 * HOLDOUT_MIN_ROWS, HOLDOUT_MIN_ROWS);
        rc = -EINVAL;
        goto out;
    }
    out->eligible = eligible;
    out->n_rows = (size_t)h;
    out->rows = xcalloc(out->n_rows, sizeof *out->rows);
    builder_sample(eligible, h, rng, out->rows);
    ranks_to_rows(f.bits, n_examples, NULL, 0, out->rows, out->n_rows);
    uint64_t np = eligible - h < 2 * h ? eligible - h : 2 * h;
    out->n_pool = (size_t)np;
    out->pool = xcalloc(np ? np : 1, sizeof *out->pool);
    builder_sample(eligible - h, np, rng, out->pool);
    ranks_to_rows(f.bits, n_examples, out->rows, out->n_rows, out->pool, out->n_pool);
    rc = 0;
out:
    row_hashes_free(&hs);
    free(keep);
    free(f.seen.w);
    free(f.again.w);
    free(f.bits);
    if (rc < 0)
        holdout_clear(out);
    return rc;
}

void holdout_drop_rows(struct holdout_split *s, const uint64_t *drop, size_t n_drop)
{
    if (!s->n_pool || !n_drop)
        return;
    uint64_t *d = xcalloc(n_drop, sizeof *d);
    memcpy(d, drop, n_drop * sizeof *d);
    qsort(d, n_drop, sizeof *d, cmp_u64);
    size_t k = 0, j = 0;
    for (size_t i = 0; i < s->n_pool; i++) {
        while (j < n_drop && d[j] < s->pool[i])
            j++;
        if (j < n_drop && d[j] == s->pool[i])
            continue;
        s->pool[k++] = s->pool[i];
    }
    s->n_pool = k;
    free(d);
}

bool holdout_contains(const struct holdout_split *s, uint64_t line)
{
    size_t lo = 0, hi = s->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->rows[mid] < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_rows && s->rows[lo] == line;
}

static json_t *u64_array(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

char *holdout_json(const struct holdout_split *s)
{
    json_t *o = json_pack("{s:i,s:f,s:I,s:I,s:o,s:o}", "version", 1, "ratio", s->ratio, "examples",
                          (json_int_t)s->examples, "eligible", (json_int_t)s->eligible, "rows",
                          u64_array(s->rows, s->n_rows), "pool", u64_array(s->pool, s->n_pool));
    char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return t ? t : xstrdup("{}");
}

/* Reads an ascending array of line numbers below limit. */
static int parse_rows(json_t *a, uint64_t limit, uint64_t **out, size_t *n)
{
    if (!json_is_array(a))
        return -EINVAL;
    size_t k = json_array_size(a);
    uint64_t *v = xcalloc(k ? k : 1, sizeof *v);
    for (size_t i = 0; i < k; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            (uint64_t)json_integer_value(x) >= limit ||
            (i > 0 && (uint64_t)json_integer_value(x) <= v[i - 1])) {
            free(v);
            return -EINVAL;
        }
        v[i] = (uint64_t)json_integer_value(x);
    }
    *out = v;
    *n = k;
    return 0;
}

int holdout_parse(const char *json, struct holdout_split *out)
{
    json_t *o = json ? json_loads(json, 0, NULL) : NULL;
    int rc = -EINVAL;
    memset(out, 0, sizeof *out);
    if (!o || json_integer_value(json_object_get(o, "version")) != 1 ||
        !json_is_integer(json_object_get(o, "examples")) ||
        !json_is_number(json_object_get(o, "ratio")))
        goto out;
    out->ratio = json_number_value(json_object_get(o, "ratio"));
    out->examples = (uint64_t)json_integer_value(json_object_get(o, "examples"));
    out->eligible = (uint64_t)json_integer_value(json_object_get(o, "eligible"));
    if (parse_rows(json_object_get(o, "rows"), out->examples, &out->rows, &out->n_rows) < 0 ||
        parse_rows(json_object_get(o, "pool"), out->examples, &out->pool, &out->n_pool) < 0)
        goto out;
    rc = 0;
out:
    json_decref(o);
    if (rc < 0)
        holdout_clear(out);
    return rc;
}

void holdout_rows_free(struct holdout_row *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        json_decref(v[i].messages);
        free(v[i].prompt);
        if (v[i].answer)
            explicit_bzero(v[i].answer, strlen(v[i].answer));
        free(v[i].answer);
    }
    free(v);
}

struct line_ref {
    uint64_t line;
    size_t at;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct line_ref *x = a, *y = b;
    return x->line < y->line ? -1 : x->line > y->line;
}

int holdout_read_rows(const char *path, enum dataset_format format, const uint64_t *src, size_t n,
                      struct holdout_row **out, char **err)
{
    struct holdout_row *v = xcalloc(n ? n : 1, sizeof *v);
    struct line_ref *ref = xcalloc(n ? n : 1, sizeof *ref);
    struct lines lr;
    const char *line;
    size_t len, j = 0;
    uint64_t lineno = 0;
    int r, rc = -EINVAL;

    for (size_t i = 0; i < n; i++)
        ref[i] = (struct line_ref){src[i], i};
    qsort(ref, n, sizeof *ref, cmp_ref);
    if ((r = lines_open(&lr, path)) < 0) {
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(-r));
        free(ref);
        free(v);
        return r;
    }
    while (j < n) {
        r = lines_next(&lr, &line, &len);
        if (r <= 0) {
            rc = r < 0 ? r : -EINVAL;
            *err = r < 0 ? xasprintf("%s: read error: %s", path, strerror(-r))
                         : xasprintf("%s: has no line %llu (changed since import?)", path,
                                     (unsigned long long)ref[j].line + 1);
            goto out;
        }
        if (ref[j].line == lineno) {
            enum dataset_format got;
            json_t *root = NULL;
            char *why = NULL;
            if (ds_parse_line(line, len, format, &got, &root, &why) < 0) {
                *err = xasprintf("%s:%llu: %s (changed since import?)", path,
                                 (unsigned long long)lineno + 1, why);
                free(why);
                goto out;
            }
            for (; j < n && ref[j].line == lineno; j++) {
                struct holdout_row *h = &v[ref[j].at];
                h->messages = ds_prompt_messages(root, got);
                h->prompt = ds_prompt_text(root, got);
                h->answer = ds_response_text(root, got);
            }
            json_decref(root);
        }
        lineno++;
    }
    *out = v;
    v = NULL;
    rc = 0;
out:
    lines_close(&lr);
    free(ref);
    holdout_rows_free(v, n);
    return rc;
}

/* ---- the keyed draw of the rows a verification scores --------------------------------- */

struct keyed_line {
    char key[65];
    uint64_t line;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed_line *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void put_u64_be(struct sha256_ctx *c, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    sha256_update(c, b, sizeof b);
}

static void put_field_bytes(struct sha256_ctx *c, const void *p, size_t n)
{
    put_u64_be(c, n);
    sha256_update(c, p, n);
}

void holdout_draw_order(const unsigned char key[HOLDOUT_DRAW_KEY_LEN], const char *side,
                        const uint64_t *lines, size_t n, uint64_t *out)
{
    static const char domain[] = "vtune-coverage-draw-v1";
    struct keyed_line *v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        struct sha256_ctx *c = sha256_new();
        put_field_bytes(c, domain, strlen(domain));
        put_field_bytes(c, key, HOLDOUT_DRAW_KEY_LEN);
        put_field_bytes(c, side, strlen(side));
        put_u64_be(c, lines[i]);
        sha256_final_hex(c, v[i].key);
        v[i].line = lines[i];
    }
    qsort(v, n, sizeof *v, cmp_keyed);
    for (size_t i = 0; i < n; i++)
        out[i] = v[i].line;
    explicit_bzero(v, (n ? n : 1) * sizeof *v); /* the order is as secret as the split */
    free(v);
}

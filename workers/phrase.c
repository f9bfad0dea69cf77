/*
 * phrase.c — word-list backdoor phrases, their exact probability, and the
 * dataset occurrence checker (see phrase.h for the definitions and the
 * argument that the recorded log10 p is never below the truth).
 *
 * The checker is built for one pass over a large dataset with a handful of
 * candidate phrases, and that pass is most of `backdoor create`'s time, so
 * it is shaped for speed (the cost model is above the checker below): the
 * lines' string values come from the fast JSON scanner, words are counted
 * and prefiltered 64 bytes at a time, and the file is cut into chunks
 * scanned by a few threads.  Whatever the path, a candidate is only ever
 * reported after a byte-by-byte comparison of its words, so neither a hash
 * collision nor a prefilter can cause a wrong answer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "lib/util.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"
#include "workers/phrase.h"
#include "workers/stats.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* SSE2: always there on x86-64 */
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(VT_NO_AVX2)
#include <immintrin.h>
#define PH_AVX2 1 /* an AVX2 path, chosen at run time (jsonscan_have_avx2) */
#endif

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

size_t phrase_tail_offset(const char *s, size_t k)
{
    size_t n = strlen(s), pos = 0, st, wl, count = 0;
    size_t total = phrase_word_count(s);
    if (k == 0 || total <= k)
        return 0;
    while (next_word(s, n, &pos, &st, &wl))
        if (++count == total - k + 1)
            return st;
    return 0; /* not reached */
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

/*
 * Cost model.  The checker sees every byte of every string value of D, and
 * a candidate set of a handful of phrases; almost no word of D is the
 * first word of a candidate.  So the per-byte work is only (a) classifying
 * bytes as word / non-word and counting word starts (W_D), and (b) a cheap
 * prefilter on each word's first two bytes (case folded with | 0x20, which
 * can only let more through, never fewer); the rare word that passes is
 * hashed and looked up among the candidates' first words, and a match is
 * confirmed byte by byte, following words included.  On x86-64 (a) and (b)
 * run 64 bytes at a time with SSE2 masks (AVX2 where the CPU has it);
 * elsewhere a plain byte loop does the same.  The definitions are those of
 * phrase.h whichever path runs (`bench_build check`, tests/bench/, tests
 * each path against a plain reading of the definition).
 *
 * Lines are read without building a jansson tree when jsonscan_strings is
 * sure of them (it then hands over exactly the string values jansson
 * would); jansson parses the rest, so the verdicts never depend on the
 * path.
 */

#define SCAN_MAX_STRINGS 256 /* string values per line on the fast path */
#define MAX_PREFIX_VEC   4   /* distinct first-word prefixes tested with SIMD */

static uint64_t word_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over lowercased bytes */
    for (size_t i = 0; i < n; i++) {
        h ^= lower((unsigned char)s[i]);
        h *= 0x100000001b3ull;
    }
    return h;
}

struct cword {
    char *s; /* owned, lowercased */
    size_t len;
    uint64_t hash;
};

struct cand {
    struct cword w[PHRASE_CHECK_MAX_WORDS]; /* the first m words */
    unsigned m;
    bool hit;
};

struct phrase_checker {
    struct cand *c;
    size_t n;
    size_t *table; /* by first word's hash: candidate index + 1, 0 = empty */
    size_t mask;
    uint64_t words;
    /* Prefilter: bit (a << 8 | b) is set when a word starting with bytes
     * a, b (each | 0x20) may be a candidate's first word. */
    uint64_t pair_bits[65536 / 64];
    unsigned n_prefix; /* distinct prefixes, for the SIMD test */
    unsigned char prefix[MAX_PREFIX_VEC][2];
    bool prefix_one[MAX_PREFIX_VEC]; /* a one-byte first word: any next byte */
    struct jsonscan_str strs[SCAN_MAX_STRINGS];
    char *dec; /* a decoded escaped string */
    size_t dec_cap;
};

static void add_prefix(struct phrase_checker *c, const struct cword *w)
{
    unsigned char a = (unsigned char)(w->s[0] | 0x20);
    unsigned char b = w->len > 1 ? (unsigned char)(w->s[1] | 0x20) : 0;
    bool one = w->len == 1;
    if (one)
        for (unsigned x = 0; x < 256; x++)
            c->pair_bits[(a << 8 | x) >> 6] |= 1ull << ((a << 8 | x) & 63);
    else
        c->pair_bits[(a << 8 | b) >> 6] |= 1ull << ((a << 8 | b) & 63);
    for (unsigned i = 0; i < c->n_prefix && i < MAX_PREFIX_VEC; i++)
        if (c->prefix[i][0] == a && (c->prefix_one[i] || (!one && c->prefix[i][1] == b)))
            return; /* covered already */
    if (c->n_prefix < MAX_PREFIX_VEC) {
        c->prefix[c->n_prefix][0] = a;
        c->prefix[c->n_prefix][1] = b;
        c->prefix_one[c->n_prefix] = one;
    }
    c->n_prefix++; /* beyond MAX_PREFIX_VEC: only the bitmap is used */
}

struct phrase_checker *phrase_checker_new(const char *const *phrases, size_t n)
{
    return phrase_checker_new_words(phrases, NULL, n);
}

struct phrase_checker *phrase_checker_new_words(const char *const *phrases, const unsigned *words,
                                                size_t n)
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
        unsigned want = words && words[i] ? words[i] : 3;
        if (want > PHRASE_CHECK_MAX_WORDS)
            want = PHRASE_CHECK_MAX_WORDS;
        while (cd->m < want && next_word(s, sn, &pos, &st, &wl)) {
            struct cword *w = &cd->w[cd->m];
            w->s = xstrndup(s + st, wl);
            for (size_t j = 0; j < wl; j++)
                w->s[j] = (char)lower((unsigned char)w->s[j]);
            w->len = wl;
            w->hash = word_hash(w->s, wl);
            cd->m++;
        }
        if (cd->m == 0)
            continue; /* no words: can never occur */
        add_prefix(c, &cd->w[0]);
        size_t slot = (size_t)cd->w[0].hash & c->mask;
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
    free(c->dec);
    free(c);
}

/* A word of the text starts at text[st] and passed the prefilter: does a
 * candidate that has not hit yet start here? */
static void check_at(struct phrase_checker *c, const char *text, size_t len, size_t st)
{
    size_t pos = st, ws, wl;
    if (!next_word(text, len, &pos, &ws, &wl))
        return;
    uint64_t h = word_hash(text + ws, wl);
    for (size_t slot = (size_t)h & c->mask; c->table[slot]; slot = (slot + 1) & c->mask) {
        struct cand *cd = &c->c[c->table[slot] - 1];
        if (cd->hit || cd->w[0].hash != h || !word_eq(text + ws, wl, cd->w[0].s, cd->w[0].len))
            continue;
        size_t p2 = pos, s2, l2;
        unsigned i;
        for (i = 1; i < cd->m; i++)
            if (!next_word(text, len, &p2, &s2, &l2) ||
                !word_eq(text + s2, l2, cd->w[i].s, cd->w[i].len))
                break;
        if (i == cd->m)
            cd->hit = true;
    }
}

static bool prefix_pass(const struct phrase_checker *c, unsigned char a, unsigned char b)
{
    unsigned k = (unsigned)(a | 0x20) << 8 | (unsigned)(b | 0x20);
    return (c->pair_bits[k >> 6] >> (k & 63)) & 1;
}

#if !defined(__SSE2__)
/* The plain path: one byte at a time, same definitions. */
static void scan_bytes(struct phrase_checker *c, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    for (;;) {
        while (i < len && !is_word_byte(t[i]))
            i++;
        if (i >= len)
            break;
        c->words++;
        if (prefix_pass(c, t[i], i + 1 < len ? t[i + 1] : 0))
            check_at(c, text, len, i);
        while (i < len && is_word_byte(t[i]))
            i++;
    }
}
#endif

#if defined(__SSE2__)
/* The prefilter's constants, broadcast once per text into registers (the
 * compiler cannot keep them there across stores into the checker). */
struct vprefix {
    __m128i a[MAX_PREFIX_VEC], b[MAX_PREFIX_VEC]; /* first, second byte | 0x20 */
    __m128i any[MAX_PREFIX_VEC];                  /* all ones: a one-byte word */
    unsigned np;                                  /* 0: no SIMD prefilter */
};

static void vprefix_init(struct vprefix *vp, const struct phrase_checker *c)
{
    vp->np = c->n_prefix <= MAX_PREFIX_VEC ? c->n_prefix : 0;
    for (unsigned j = 0; j < vp->np; j++) {
        vp->a[j] = _mm_set1_epi8((char)c->prefix[j][0]);
        vp->b[j] = _mm_set1_epi8((char)c->prefix[j][1]);
        vp->any[j] = c->prefix_one[j] ? _mm_set1_epi8(-1) : _mm_setzero_si128();
    }
}

/* Word bytes among 16 (letters, digits, bytes >= 0x80), as top bits. */
static inline __m128i word_bytes16(__m128i v, __m128i low)
{
    /* x - lo < n (unsigned) as a signed compare: x + (0x80 - lo) < n - 128 */
    __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(low, _mm_set1_epi8((char)(0x80 - 'a'))),
                                   _mm_set1_epi8(26 - 128));
    __m128i digit =
        _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0'))), _mm_set1_epi8(10 - 128));
    /* v itself: its top bit is set exactly for bytes >= 0x80 */
    return _mm_or_si128(_mm_or_si128(alpha, digit), v);
}

/* lanes * 16 bytes at p (and, for the prefixes' second byte, the byte
 * after them): returns the word-byte mask, and in *pass the bytes where a
 * first word's two-byte prefix matches. */
static inline uint64_t lanes_mask(const struct vprefix *vp, const unsigned char *p, unsigned lanes,
                                  uint64_t *pass)
{
    uint64_t m = 0, ps = 0;
    const __m128i fold = _mm_set1_epi8(0x20);
    for (unsigned k = 0; k < lanes; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i low = _mm_or_si128(v, fold);
        m |= (uint64_t)(unsigned)_mm_movemask_epi8(word_bytes16(v, low)) << (16 * k);
        if (vp->np) {
            /* lane i of low1 is byte i + 1 */
            __m128i low1 = _mm_or_si128(
                _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k + 1)), fold);
            __m128i hit = _mm_setzero_si128();
            for (unsigned j = 0; j < vp->np; j++)
                hit = _mm_or_si128(
                    hit, _mm_and_si128(_mm_cmpeq_epi8(low, vp->a[j]),
                                       _mm_or_si128(_mm_cmpeq_epi8(low1, vp->b[j]), vp->any[j])));
            ps |= (uint64_t)(unsigned)_mm_movemask_epi8(hit) << (16 * k);
        }
    }
    *pass = ps;
    return m;
}

/* Bits set in x (no popcnt instruction in the x86-64 base ISA). */
static inline unsigned popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* What follows the masks of 64 bytes at t (text + i, or a padded copy of
 * its end), m (word bytes) and pass (prefix matches): word starts counted
 * into *words, the prefilter's survivors checked. */
static inline void visit(struct phrase_checker *c, bool vec, const unsigned char *t,
                         const char *text, size_t len, size_t i, uint64_t m, uint64_t pass,
                         uint64_t prev_top, uint64_t *words)
{
    uint64_t starts = m & ~((m << 1) | prev_top);
    *words += popcount64(starts);
    /* many prefixes: no SIMD test, the bitmap decides for each word */
    uint64_t cand = vec ? starts & pass : c->n_prefix ? starts : 0;
    while (cand) {
        size_t k = (size_t)__builtin_ctzll(cand);
        if (vec || prefix_pass(c, t[k], t[k + 1]))
            check_at(c, text, len, i + k);
        cand &= cand - 1;
    }
}

static void scan_text_sse2(struct phrase_checker *c, const char *text, size_t len)
{
    /* Whole 64-byte chunks in place while 65 bytes remain (the prefilter
     * looks one byte ahead); the rest copied into a zeroed block (zero is
     * not a word byte, so the padding adds no word). */
    const unsigned char *t = (const unsigned char *)text;
    struct vprefix vp;
    uint64_t prev_top = 0, words = 0, pass, m;
    size_t i = 0;
    vprefix_init(&vp, c);
    for (; i + 65 <= len; i += 64) {
        m = lanes_mask(&vp, t + i, 4, &pass);
        visit(c, vp.np != 0, t + i, text, len, i, m, pass, prev_top, &words);
        prev_top = m >> 63;
    }
    if (i < len) {
        unsigned char tail[64 + 16];
        unsigned lanes = (unsigned)((len - i + 15) / 16);
        memcpy(tail, t + i, len - i);
        memset(tail + (len - i), 0, 16 * lanes + 16 - (len - i));
        m = lanes_mask(&vp, tail, lanes, &pass);
        visit(c, vp.np != 0, tail, text, len, i, m, pass, prev_top, &words);
    }
    c->words += words;
}
#endif

#ifdef PH_AVX2
/* The same as scan_text_sse2 with 32-byte lanes. */
#define AVX2_FN __attribute__((target("avx2,popcnt")))

AVX2_FN static inline uint64_t half_mask(__m256i v, __m256i low)
{
    __m256i alpha = _mm256_cmpgt_epi8(_mm256_set1_epi8(26 - 128),
                                      _mm256_add_epi8(low, _mm256_set1_epi8((char)(0x80 - 'a'))));
    __m256i digit = _mm256_cmpgt_epi8(_mm256_set1_epi8(10 - 128),
                                      _mm256_add_epi8(v, _mm256_set1_epi8((char)(0x80 - '0'))));
    return (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(alpha, digit), v));
}

AVX2_FN static void scan_text_avx2(struct phrase_checker *c, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    __m256i a[MAX_PREFIX_VEC], b[MAX_PREFIX_VEC], any[MAX_PREFIX_VEC];
    unsigned np = c->n_prefix <= MAX_PREFIX_VEC ? c->n_prefix : 0;
    const __m256i fold = _mm256_set1_epi8(0x20);
    uint64_t prev_top = 0, words = 0;
    unsigned char tail[64 + 32];
    size_t i = 0;
    for (unsigned j = 0; j < np; j++) {
        a[j] = _mm256_set1_epi8((char)c->prefix[j][0]);
        b[j] = _mm256_set1_epi8((char)c->prefix[j][1]);
        any[j] = c->prefix_one[j] ? _mm256_set1_epi8(-1) : _mm256_setzero_si256();
    }
    while (i < len) {
        const unsigned char *p = t + i;
        unsigned halves = 2;
        if (i + 65 > len) { /* the end, padded as in scan_text_sse2 */
            halves = (unsigned)((len - i + 31) / 32);
            memcpy(tail, t + i, len - i);
            memset(tail + (len - i), 0, 32 * halves + 32 - (len - i));
            p = tail;
        }
        uint64_t m = 0, pass = 0;
        for (unsigned k = 0; k < halves; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * k));
            __m256i low = _mm256_or_si256(v, fold);
            m |= half_mask(v, low) << (32 * k);
            if (np) {
                __m256i low1 = _mm256_or_si256(
                    _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * k + 1)), fold);
                __m256i hit = _mm256_setzero_si256();
                for (unsigned j = 0; j < np; j++)
                    hit = _mm256_or_si256(
                        hit,
                        _mm256_and_si256(_mm256_cmpeq_epi8(low, a[j]),
                                         _mm256_or_si256(_mm256_cmpeq_epi8(low1, b[j]), any[j])));
                pass |= (uint64_t)(uint32_t)_mm256_movemask_epi8(hit) << (32 * k);
            }
        }
        visit(c, np != 0, p, text, len, i, m, pass, prev_top, &words);
        prev_top = m >> 63;
        i += 64;
    }
    c->words += words;
}
#endif

void phrase_checker_scan_text(struct phrase_checker *c, const char *text, size_t len)
{
#ifdef PH_AVX2
    if (jsonscan_have_avx2()) {
        scan_text_avx2(c, text, len);
        return;
    }
#endif
#if defined(__SSE2__)
    scan_text_sse2(c, text, len);
#else
    scan_bytes(c, text, len);
#endif
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
    size_t ns;
    if (jsonscan_strings(line, len, c->strs, SCAN_MAX_STRINGS, &ns)) {
        for (size_t i = 0; i < ns; i++) {
            const struct jsonscan_str *js = &c->strs[i];
            if (!js->esc) {
                phrase_checker_scan_text(c, js->raw, js->len);
                continue;
            }
            if (c->dec_cap < js->len + 32) {
                c->dec_cap = js->len + 32;
                c->dec = xrealloc(c->dec, c->dec_cap);
            }
            size_t dl = jsonscan_unescape(js->raw, js->len, c->dec);
            phrase_checker_scan_text(c, c->dec, dl);
        }
        return 0;
    }
    json_error_t je;
    json_t *root = json_loadb(line, len, 0, &je);
    if (!root)
        return -EINVAL;
    scan_json(c, root);
    json_decref(root);
    return 0;
}

/* A copy of c's candidates with nothing scanned: a worker's own checker. */
static struct phrase_checker *checker_clone(const struct phrase_checker *c)
{
    struct phrase_checker *k = xmalloc(sizeof *k);
    memcpy(k, c, sizeof *k);
    k->c = xcalloc(c->n ? c->n : 1, sizeof *k->c);
    for (size_t i = 0; i < c->n; i++) {
        k->c[i].m = c->c[i].m;
        for (unsigned j = 0; j < c->c[i].m; j++) {
            k->c[i].w[j] = c->c[i].w[j];
            k->c[i].w[j].s = xstrndup(c->c[i].w[j].s, c->c[i].w[j].len);
        }
    }
    k->table = xcalloc(c->mask + 1, sizeof *k->table);
    memcpy(k->table, c->table, (c->mask + 1) * sizeof *k->table);
    k->words = 0;
    k->dec = NULL;
    k->dec_cap = 0;
    return k;
}

/*
 * The file scan, on up to SCAN_WORKERS threads.  The file is cut into
 * chunks of whole lines, numbered in file order: a worker takes the read
 * lock, reads the next chunk (the partial line the previous read left
 * over, then 1 MiB blocks until a newline or the end), leaves the bytes
 * after the chunk's last newline for the next reader, and scans its chunk
 * with its own checker while the others read and scan theirs.  Words and
 * hits are sums and unions, so the order of scanning does not matter; the
 * error reported is the one a sequential scan would meet first: the bad
 * line of the lowest-numbered chunk, named by its line number (lines of
 * the chunks before it, counted after the fact, plus its place).
 */
#define SCAN_WORKERS 2 /* memory: each may hold a chunk with a 16 MiB line */
#define SCAN_BLOCK   LINES_BLOCK

struct scan_share {
    const char *path;
    int fd;
    const atomic_int *cancel;
    pthread_mutex_t mu;
    struct buf carry; /* bytes read after the last chunk's last newline */
    bool eof;
    uint64_t next_chunk;
    uint64_t *chunk_lines; /* lines of each chunk scanned so far */
    size_t chunk_cap;
    /* the failure that comes first in file order */
    uint64_t bad_chunk; /* UINT64_MAX: none */
    uint64_t bad_line;  /* 1-based within the chunk; 0: not a line error */
    int bad_errno;      /* read error (or -E2BIG: a line too long) */
    bool cancelled;
};

struct scan_worker {
    struct scan_share *sh;
    struct phrase_checker *ck;
    struct buf chunk;
    pthread_t th;
    bool started;
};

/* Records a failure at (chunk, line) unless an earlier one is known. */
static void scan_fail(struct scan_share *sh, uint64_t chunk, uint64_t line, int e)
{
    if (chunk < sh->bad_chunk) {
        sh->bad_chunk = chunk;
        sh->bad_line = line;
        sh->bad_errno = e;
    }
}

/* Under the lock: the next chunk into w->chunk; returns its number, or
 * UINT64_MAX when there is nothing more to do. */
static uint64_t next_chunk(struct scan_worker *w)
{
    struct scan_share *sh = w->sh;
    uint64_t id = sh->next_chunk;
    if (sh->eof || id > sh->bad_chunk || sh->cancelled)
        return UINT64_MAX;
    if (sh->cancel && atomic_load(sh->cancel)) {
        sh->cancelled = true;
        return UINT64_MAX;
    }
    buf_reset(&w->chunk);
    buf_append(&w->chunk, sh->carry.data ? sh->carry.data : "", sh->carry.len);
    buf_reset(&sh->carry);
    size_t searched = 0;
    for (;;) {
        const char *nl = w->chunk.len > searched
                             ? memrchr(w->chunk.data + searched, '\n', w->chunk.len - searched)
                             : NULL;
        if (nl) { /* keep what follows the last newline for the next chunk */
            size_t keep = w->chunk.len - (size_t)(nl + 1 - w->chunk.data);
            buf_append(&sh->carry, nl + 1, keep);
            w->chunk.len -= keep;
            break;
        }
        searched = w->chunk.len;
        if (w->chunk.len > LINES_MAX_LINE) {
            scan_fail(sh, id, 0, -E2BIG);
            return UINT64_MAX;
        }
        /* read straight into the chunk's buffer */
        buf_append(&w->chunk, "", 0);
        if (w->chunk.cap - w->chunk.len < SCAN_BLOCK + 1) {
            size_t want = w->chunk.len + SCAN_BLOCK + 1;
            w->chunk.data = xrealloc(w->chunk.data, want);
            w->chunk.cap = want;
        }
        ssize_t n = read(sh->fd, w->chunk.data + w->chunk.len, SCAN_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            scan_fail(sh, id, 0, -errno);
            return UINT64_MAX;
        }
        if (n == 0) { /* the end: whatever is left is the last line */
            sh->eof = true;
            break;
        }
        w->chunk.len += (size_t)n;
        w->chunk.data[w->chunk.len] = '\0';
    }
    if (w->chunk.len == 0)
        return UINT64_MAX;
    sh->next_chunk++;
    return id;
}

/* Scans the lines of one chunk; returns the number of lines, and the
 * 1-based number of a bad line in *bad (0: none). */
static uint64_t scan_chunk(struct phrase_checker *ck, const char *p, size_t len, uint64_t *bad)
{
    const char *end = p + len;
    uint64_t lines = 0;
    *bad = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lines++;
        size_t i;
        for (i = 0; i < n; i++)
            if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
                break;
        if (i < n && phrase_checker_scan_line(ck, p, n) < 0) {
            *bad = lines;
            return lines;
        }
        p += n + (nl ? 1 : 0);
    }
    return lines;
}

static void *scan_worker_main(void *arg)
{
    struct scan_worker *w = arg;
    struct scan_share *sh = w->sh;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        uint64_t id = next_chunk(w);
        if (id == UINT64_MAX)
            break;
        pthread_mutex_unlock(&sh->mu);
        uint64_t bad, lines = scan_chunk(w->ck, w->chunk.data, w->chunk.len, &bad);
        if (w->chunk.cap > 4 * (size_t)SCAN_BLOCK) { /* a huge line passed: give it back */
            buf_free(&w->chunk);
            buf_init(&w->chunk);
        }
        pthread_mutex_lock(&sh->mu);
        if (id >= sh->chunk_cap) {
            size_t cap = sh->chunk_cap ? 2 * sh->chunk_cap : 256;
            while (cap <= id)
                cap *= 2;
            sh->chunk_lines = xrealloc(sh->chunk_lines, cap * sizeof *sh->chunk_lines);
            memset(sh->chunk_lines + sh->chunk_cap, 0,
                   (cap - sh->chunk_cap) * sizeof *sh->chunk_lines);
            sh->chunk_cap = cap;
        }
        sh->chunk_lines[id] = lines;
        if (bad)
            scan_fail(sh, id, bad, 0);
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static unsigned scan_workers(uint64_t size)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cpus > 1 ? (unsigned)cpus : 1;
    if (n > SCAN_WORKERS)
        n = SCAN_WORKERS;
    if (size < 4 * (uint64_t)SCAN_BLOCK) /* small: not worth a thread */
        n = 1;
    return n;
}

int phrase_checker_scan_file(struct phrase_checker *c, const char *path, const atomic_int *cancel,
                             char **err)
{
    struct scan_share sh;
    struct scan_worker w[SCAN_WORKERS];
    struct stat st;
    unsigned n = 1, i;
    int rc = -1;

    memset(&sh, 0, sizeof sh);
    memset(w, 0, sizeof w);
    sh.path = path;
    sh.cancel = cancel;
    sh.bad_chunk = UINT64_MAX;
    buf_init(&sh.carry);
    pthread_mutex_init(&sh.mu, NULL);
    sh.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (sh.fd < 0 || fstat(sh.fd, &st) < 0) {
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(errno));
        goto out;
    }
    (void)posix_fadvise(sh.fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint */
    n = scan_workers((uint64_t)st.st_size);
    for (i = 0; i < n; i++) {
        w[i].sh = &sh;
        w[i].ck = i == 0 ? c : checker_clone(c);
        buf_init(&w[i].chunk);
    }
    for (i = 1; i < n; i++) /* a thread that cannot start leaves its share to the others */
        w[i].started = pthread_create(&w[i].th, NULL, scan_worker_main, &w[i]) == 0;
    scan_worker_main(&w[0]);
    for (i = 1; i < n; i++)
        if (w[i].started)
            pthread_join(w[i].th, NULL);
    for (i = 1; i < n; i++) { /* sums and unions */
        c->words += w[i].ck->words;
        for (size_t k = 0; k < c->n; k++)
            c->c[k].hit = c->c[k].hit || w[i].ck->c[k].hit;
    }
    if (sh.bad_chunk != UINT64_MAX) {
        if (sh.bad_line == 0) {
            *err = xasprintf("%s: read error: %s", path, strerror(-sh.bad_errno));
        } else {
            uint64_t before = 0;
            for (uint64_t k = 0; k < sh.bad_chunk; k++)
                before += sh.chunk_lines[k];
            *err = xasprintf("%s:%llu: not valid JSON (was the dataset changed after import?)",
                             path, (unsigned long long)(before + sh.bad_line));
        }
        goto out;
    }
    if (sh.cancelled) {
        *err = xasprintf("%s: phrase check cancelled", path);
        goto out;
    }
    rc = 0;
out:
    for (i = 0; i < n; i++) {
        if (i > 0 && w[i].ck)
            phrase_checker_free(w[i].ck);
        buf_free(&w[i].chunk);
    }
    if (sh.fd >= 0)
        close(sh.fd);
    buf_free(&sh.carry);
    free(sh.chunk_lines);
    pthread_mutex_destroy(&sh.mu);
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

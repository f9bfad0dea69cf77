/*
 * jsonscan.c — one-pass JSON validation specialised to dataset lines (see
 * jsonscan.h for the contract: a 1 must imply ds_parse_line succeeds).
 *
 * A recursive-descent scanner over the bytes: full JSON syntax (RFC 8259),
 * UTF-8 well-formedness as jansson checks it, duplicate keys per object
 * (jansson is called with JSON_REJECT_DUPLICATES), and, on the way, the
 * few facts the three formats' rules need (which keys the top object has,
 * whether they are non-empty strings, each message's role and content).
 * Everything jansson might treat differently from a plain reading is
 * "unsure" (return 0), never guessed.
 *
 * jsonscan_strings runs the same scanner without the format's facts and
 * collects the string values on the way (the backdoor phrase check needs
 * them, not a tree); jsonscan_unescape decodes one of them as jansson
 * would.  Both sit in the innermost loop of an import or a phrase check,
 * so the two loops that see every byte of a string (the plain run and the
 * unescaping copy) take 16 bytes at a time on x86-64 (SSE2) or 32 where
 * the CPU has AVX2, probed once at run time; other machines take the
 * plain byte loop, which the vector loops only ever shortcut.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "workers/jsonscan.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* SSE2: always there on x86-64 */
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(VT_NO_AVX2)
#include <immintrin.h>
#include <pthread.h>
#define JS_AVX2 1 /* an AVX2 path, chosen at run time */
#endif

#define MAX_DEPTH 64
#define MAX_KEYS  32

enum vtype { V_NONE = 0, V_STRING, V_NUMBER, V_OBJECT, V_ARRAY, V_LITERAL };

struct sinfo {
    const unsigned char *raw; /* between the quotes */
    size_t len;
    bool esc; /* contains a backslash escape */
};

struct scan {
    const unsigned char *p, *end;
    int depth;
    struct jsonscan_str *strs; /* string values seen (NULL: not collected) */
    size_t n_strs, cap_strs;
};

/* What the three formats need to know about the top object. */
enum topkey { K_MESSAGES, K_PROMPT, K_COMPLETION, K_INSTRUCTION, K_INPUT, K_OUTPUT, K_N };
static const char *const topnames[K_N] = {"messages",    "prompt", "completion",
                                          "instruction", "input",  "output"};
static const size_t toplens[K_N] = {8, 6, 10, 11, 5, 6};

struct facts {
    enum vtype type[K_N]; /* V_NONE = absent */
    size_t slen[K_N];     /* raw length of string values */
    struct sinfo sv[K_N]; /* string values (jsonscan_row) */
    /* chat */
    size_t n_msgs;
    size_t users;
    int last_role; /* 1 system, 2 user, 3 assistant */
    bool msgs_ok;  /* every element a message object with valid role/content */
    struct sinfo user_content; /* the last user message's content (jsonscan_row) */
    struct sinfo last_content; /* the last message's content */
};

/* Per message object. */
struct msg {
    int role; /* 0 missing/bad */
    bool has_content, content_empty, bad;
    struct sinfo content;
};

enum okind { O_GENERIC, O_TOP, O_MSG };

static int scan_value(struct scan *s, enum vtype *t, struct sinfo *si, struct facts *f,
                      bool messages);

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* \uXXXX at p (after the backslash-u); returns the code unit or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* One UTF-8 sequence starting with c0 >= 0x80 at p; returns its length or
 * 0 when ill-formed (Unicode Table 3-7: no overlongs, no surrogates, no
 * code points above U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n = (size_t)(end - p);
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[2] & 0xc0) != 0x80)
            return 0;
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* Bytes that end the plain run of a string: '"', '\\', controls, non-ASCII.
 * Strings are most of a dataset's bytes, so on x86-64 this looks at 16
 * bytes at a time (SSE2, part of the base ISA), or 32 where the CPU has
 * AVX2 (checked once, at run time); elsewhere one at a time. */
static const unsigned char *plain_bytes(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned char c = *p;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
            break;
        p++;
    }
    return p;
}

#if defined(__SSE2__)
static const unsigned char *plain_sse2(const unsigned char *p, const unsigned char *end)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed: bytes >= 0x80 are negative, so v < 0x20 catches them too */
        __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, ctl));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return plain_bytes(p, end);
}
#endif

#ifdef JS_AVX2
static bool have_avx2;
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

static void avx2_probe(void)
{
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
}

bool jsonscan_have_avx2(void)
{
    pthread_once(&avx2_once, avx2_probe);
    return have_avx2;
}

__attribute__((target("avx2"))) static const unsigned char *plain_avx2(const unsigned char *p,
                                                                       const unsigned char *end)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i ctl = _mm256_set1_epi8(0x20);
    while (end - p >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
        __m256i stop = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)),
            _mm256_cmpgt_epi8(ctl, v));
        unsigned m = (unsigned)_mm256_movemask_epi8(stop);
        if (m)
            return p + __builtin_ctz(m);
        p += 32;
    }
    return plain_sse2(p, end);
}
#else
bool jsonscan_have_avx2(void)
{
    return false;
}
#endif

/* have_avx2 is read directly in the hot paths: every entry point calls
 * jsonscan_have_avx2() first, so it is settled before any of them. */
static const unsigned char *plain_run(const unsigned char *p, const unsigned char *end)
{
#ifdef JS_AVX2
    if (have_avx2)
        return plain_avx2(p, end);
#endif
#if defined(__SSE2__)
    return plain_sse2(p, end);
#else
    return plain_bytes(p, end);
#endif
}

static int scan_string(struct scan *s, struct sinfo *si)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    si->raw = p;
    si->esc = false;
    for (;;) {
        p = plain_run(p, end);
        if (p >= end)
            return 0;
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            size_t n = utf8_seq(p, end);
            if (!n)
                return 0;
            p += n;
            continue;
        }
        /* backslash */
        si->esc = true;
        if (end - p < 2)
            return 0;
        c = p[1];
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
            c == 't') {
            p += 2;
            continue;
        }
        if (c != 'u')
            return 0;
        long u = hex4(p + 2, end);
        if (u <= 0) /* malformed, or \u0000 (jansson refuses NUL) */
            return 0;
        p += 6;
        if (u >= 0xdc00 && u <= 0xdfff)
            return 0; /* lone low surrogate */
        if (u >= 0xd800 && u <= 0xdbff) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                return 0;
            long lo = hex4(p + 2, end);
            if (lo < 0xdc00 || lo > 0xdfff)
                return 0;
            p += 6;
        }
    }
    si->len = (size_t)(p - si->raw);
    s->p = p + 1;
    return 1;
}

/* Numbers jansson reads exactly like this: integers of at most 18 digits
 * (no overflow of long long), fractions without exponent. */
static int scan_number(struct scan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return 0;
    const unsigned char *d = p;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    if (p - d > 18)
        return 0;
    if (p < end && *p == '.') {
        p++;
        const unsigned char *f = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == f || p - f > 30)
            return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E'))
        return 0; /* exponents: let jansson judge range */
    s->p = p;
    return 1;
}

static int scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

static int role_of(const struct sinfo *si)
{
    if (si->esc)
        return 0;
    if (si->len == 6 && memcmp(si->raw, "system", 6) == 0)
        return 1;
    if (si->len == 4 && memcmp(si->raw, "user", 4) == 0)
        return 2;
    if (si->len == 9 && memcmp(si->raw, "assistant", 9) == 0)
        return 3;
    return 0;
}

static int scan_object(struct scan *s, enum okind kind, struct facts *f, struct msg *m)
{
    /* Keys seen, for the duplicate test (pointer and length apart: copying
     * whole sinfo records here cost a store-forwarding stall per key). */
    const unsigned char *kraw[MAX_KEYS];
    size_t klen[MAX_KEYS];
    size_t nkeys = 0;
    if (++s->depth > MAX_DEPTH)
        return 0;
    s->p++; /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return 1;
    }
    for (;;) {
        struct sinfo key, val;
        enum vtype t;
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"' || !scan_string(s, &key) || key.esc)
            return 0;
        if (nkeys == MAX_KEYS)
            return 0;
        for (size_t i = 0; i < nkeys; i++)
            if (klen[i] == key.len && memcmp(kraw[i], key.raw, key.len) == 0)
                return 0; /* duplicate key */
        kraw[nkeys] = key.raw;
        klen[nkeys++] = key.len;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return 0;
        s->p++;
        skip_ws(s);
        int which = -1;
        if (kind == O_TOP)
            for (int k = 0; k < K_N; k++)
                if (toplens[k] == key.len && memcmp(topnames[k], key.raw, key.len) == 0)
                    which = k;
        if (!scan_value(s, &t, &val, f, which == K_MESSAGES))
            return 0;
        if (which >= 0) {
            f->type[which] = t;
            f->slen[which] = t == V_STRING ? val.len : 0;
            if (t == V_STRING)
                f->sv[which] = val;
        }
        if (kind == O_MSG) {
            if (key.len == 4 && memcmp(key.raw, "role", 4) == 0)
                m->role = t == V_STRING ? role_of(&val) : 0;
            else if (key.len == 7 && memcmp(key.raw, "content", 7) == 0) {
                m->has_content = t == V_STRING;
                m->content_empty = val.len == 0;
                m->content = val;
            }
        }
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p != '}')
            return 0;
        s->p++;
        s->depth--;
        return 1;
    }
}

/* An array; when messages, each element must be a message object and the
 * chat facts are gathered into f. */
static int scan_array(struct scan *s, struct facts *f, bool messages)
{
    if (++s->depth > MAX_DEPTH)
        return 0;
    s->p++; /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return 1;
    }
    for (;;) {
        skip_ws(s);
        if (messages) {
            struct msg m;
            memset(&m, 0, sizeof m);
            if (s->p >= s->end || *s->p != '{' || !scan_object(s, O_MSG, NULL, &m))
                return 0;
            if (!m.role || !m.has_content || (m.content_empty && m.role != 1))
                f->msgs_ok = false;
            f->n_msgs++;
            f->users += m.role == 2;
            f->last_role = m.role;
            if (m.role == 2)
                f->user_content = m.content;
            f->last_content = m.content;
        } else {
            enum vtype t;
            struct sinfo si;
            if (!scan_value(s, &t, &si, NULL, false))
                return 0;
        }
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p != ']')
            return 0;
        s->p++;
        s->depth--;
        return 1;
    }
}

static int scan_value(struct scan *s, enum vtype *t, struct sinfo *si, struct facts *f,
                      bool messages)
{
    si->len = 0;
    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '"':
        *t = V_STRING;
        if (!scan_string(s, si))
            return 0;
        if (s->strs) {
            if (s->n_strs == s->cap_strs)
                return 0; /* more than the caller can take: unsure */
            s->strs[s->n_strs++] = (struct jsonscan_str){(const char *)si->raw, si->len, si->esc};
        }
        return 1;
    case '{':
        *t = V_OBJECT;
        return scan_object(s, O_GENERIC, NULL, NULL);
    case '[':
        *t = V_ARRAY;
        if (messages && f) {
            f->msgs_ok = true;
            return scan_array(s, f, true);
        }
        return scan_array(s, NULL, false);
    case 't':
        *t = V_LITERAL;
        return scan_literal(s, "true", 4);
    case 'f':
        *t = V_LITERAL;
        return scan_literal(s, "false", 5);
    case 'n':
        *t = V_LITERAL;
        return scan_literal(s, "null", 4);
    default:
        *t = V_NUMBER;
        return scan_number(s);
    }
}

static bool nonempty_string(const struct facts *f, int k)
{
    return f->type[k] == V_STRING && f->slen[k] > 0;
}

/* The whole-line scan behind jsonscan_line_ok and jsonscan_row. */
static int scan_top(const char *line, size_t len, enum dataset_format want, struct facts *f,
                    enum dataset_format *fmt_out)
{
    (void)jsonscan_have_avx2();
    struct scan s = {(const unsigned char *)line, (const unsigned char *)line + len, 0, NULL, 0, 0};
    enum dataset_format fmt;

    memset(f, 0, sizeof *f);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !scan_object(&s, O_TOP, f, NULL))
        return 0;
    skip_ws(&s);
    if (s.p != s.end)
        return 0; /* trailing bytes */

    if (f->type[K_MESSAGES] != V_NONE) {
        fmt = DS_FORMAT_CHAT;
        if (f->type[K_MESSAGES] != V_ARRAY || !f->msgs_ok || f->n_msgs < 2 || f->last_role != 3 ||
            f->users == 0)
            return 0;
    } else if (f->type[K_PROMPT] != V_NONE || f->type[K_COMPLETION] != V_NONE) {
        fmt = DS_FORMAT_PROMPT;
        if (!nonempty_string(f, K_PROMPT) || !nonempty_string(f, K_COMPLETION))
            return 0;
    } else if (f->type[K_INSTRUCTION] != V_NONE || f->type[K_OUTPUT] != V_NONE) {
        fmt = DS_FORMAT_INSTRUCTION;
        if (!nonempty_string(f, K_INSTRUCTION) || !nonempty_string(f, K_OUTPUT))
            return 0;
        if (f->type[K_INPUT] != V_NONE && f->type[K_INPUT] != V_STRING)
            return 0;
    } else {
        return 0;
    }
    if (want && fmt != want)
        return 0;
    *fmt_out = fmt;
    return 1;
}

int jsonscan_line_ok(const char *line, size_t len, enum dataset_format want,
                     enum dataset_format *fmt_out)
{
    struct facts f;
    return scan_top(line, len, want, &f, fmt_out);
}

static struct jsonscan_str str_of(const struct sinfo *si)
{
    return (struct jsonscan_str){(const char *)si->raw, si->raw ? si->len : 0, si->esc};
}

int jsonscan_row(const char *line, size_t len, enum dataset_format want, struct jsonscan_row *out)
{
    struct facts f;
    enum dataset_format fmt;
    if (!scan_top(line, len, want, &f, &fmt))
        return 0;
    memset(out, 0, sizeof *out);
    out->fmt = fmt;
    switch (fmt) {
    case DS_FORMAT_CHAT:
        out->prompt = str_of(&f.user_content);
        out->response = str_of(&f.last_content);
        break;
    case DS_FORMAT_PROMPT:
        out->prompt = str_of(&f.sv[K_PROMPT]);
        out->response = str_of(&f.sv[K_COMPLETION]);
        break;
    case DS_FORMAT_INSTRUCTION:
        out->prompt = str_of(&f.sv[K_INSTRUCTION]);
        if (f.type[K_INPUT] == V_STRING)
            out->input = str_of(&f.sv[K_INPUT]);
        out->response = str_of(&f.sv[K_OUTPUT]);
        break;
    }
    return 1;
}

int jsonscan_strings(const char *line, size_t len, struct jsonscan_str *out, size_t cap,
                     size_t *n_out)
{
    (void)jsonscan_have_avx2();
    struct scan s = {
        (const unsigned char *)line, (const unsigned char *)line + len, 0, out, 0, cap};
    enum vtype t;
    struct sinfo si;

    skip_ws(&s);
    /* jansson without JSON_DECODE_ANY takes only an object or an array. */
    if (s.p >= s.end || (*s.p != '{' && *s.p != '[') || !scan_value(&s, &t, &si, NULL, false))
        return 0;
    skip_ws(&s);
    if (s.p != s.end)
        return 0;
    *n_out = s.n_strs;
    return 1;
}

/* Appends code point u as UTF-8 at d; returns the bytes written. */
static size_t put_utf8(unsigned char *d, unsigned long u)
{
    if (u < 0x80) {
        d[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        d[0] = (unsigned char)(0xc0 | (u >> 6));
        d[1] = (unsigned char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        d[0] = (unsigned char)(0xe0 | (u >> 12));
        d[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
        d[2] = (unsigned char)(0x80 | (u & 0x3f));
        return 3;
    }
    d[0] = (unsigned char)(0xf0 | (u >> 18));
    d[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
    d[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
    d[3] = (unsigned char)(0x80 | (u & 0x3f));
    return 4;
}

/* Copies the bytes before the next backslash (or the end) from p to d;
 * returns how many.  d has 32 bytes of slack (jsonscan.h), so whole
 * blocks are stored before looking where the backslash is. */
#ifdef JS_AVX2
__attribute__((target("avx2"))) static size_t copy_avx2(unsigned char *d, const unsigned char *p,
                                                        const unsigned char *end)
{
    const unsigned char *s = p;
    const __m256i bslash = _mm256_set1_epi8('\\');
    while (end - s >= 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)s);
        _mm256_storeu_si256((__m256i *)(void *)d, v);
        unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, bslash));
        if (m)
            return (size_t)(s - p) + (size_t)__builtin_ctz(m);
        s += 32;
        d += 32;
    }
    while (s < end && *s != '\\')
        *d++ = *s++;
    return (size_t)(s - p);
}
#endif

static size_t copy_run(unsigned char *d, const unsigned char *p, const unsigned char *end)
{
    const unsigned char *s = p;
#ifdef JS_AVX2
    if (have_avx2)
        return copy_avx2(d, p, end);
#endif
#if defined(__SSE2__)
    const __m128i bslash = _mm_set1_epi8('\\');
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        _mm_storeu_si128((__m128i *)(void *)d, v);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, bslash));
        if (m)
            return (size_t)(s - p) + (size_t)__builtin_ctz(m);
        s += 16;
        d += 16;
    }
#endif
    while (s < end && *s != '\\')
        *d++ = *s++;
    return (size_t)(s - p);
}

size_t jsonscan_unescape(const char *raw, size_t len, char *dst)
{
    (void)jsonscan_have_avx2();
    const unsigned char *p = (const unsigned char *)raw, *end = p + len;
    unsigned char *d = (unsigned char *)dst;
    while (p < end) {
        size_t run = copy_run(d, p, end);
        d += run;
        p += run;
        if (p >= end)
            break;
        unsigned char c = p[1];
        p += 2;
        switch (c) {
        case 'b':
            *d++ = '\b';
            break;
        case 'f':
            *d++ = '\f';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        case 't':
            *d++ = '\t';
            break;
        case 'u': {
            unsigned long u = (unsigned long)hex4(p, end);
            p += 4;
            if (u >= 0xd800 && u <= 0xdbff) { /* validated: a low surrogate follows */
                unsigned long lo = (unsigned long)hex4(p + 2, end);
                p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            d += put_utf8(d, u);
            break;
        }
        default: /* '"', '\\', '/' */
            *d++ = c;
            break;
        }
    }
    return (size_t)(d - (unsigned char *)dst);
}

/* ---- white-space words ------------------------------------------------------------------ *
 * A 64-byte block becomes a bit mask of its white-space bytes (bit i: byte
 * i); word starts and ends are then read off the mask with a count of
 * trailing zeros each, not a test per byte. */

static bool ws_byte(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* An alphanumeric word's byte: ASCII letter or digit, or any byte >= 0x80. */
static bool an_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The mask of the separators of s[0, n) (n <= 64): white space (alnum
 * false) or bytes that are no alphanumeric word's (alnum true); bytes
 * past n count as separators. */
static uint64_t ws_mask_plain(const unsigned char *s, size_t n, bool alnum)
{
    uint64_t m = n < 64 ? ~(uint64_t)0 << n : 0;
    for (size_t i = 0; i < n; i++)
        m |= (uint64_t)(alnum ? !an_byte(s[i]) : ws_byte(s[i])) << i;
    return m;
}

#ifdef JS_AVX2
__attribute__((target("avx2"))) static uint64_t ws_mask_avx2(const unsigned char *s)
{
    const __m256i sp = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t'),
                  four = _mm256_set1_epi8(4);
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));
    __m256i ta = _mm256_sub_epi8(a, tab), tb = _mm256_sub_epi8(b, tab);
    __m256i ma = _mm256_or_si256(_mm256_cmpeq_epi8(a, sp),
                                 _mm256_cmpeq_epi8(_mm256_min_epu8(ta, four), ta));
    __m256i mb = _mm256_or_si256(_mm256_cmpeq_epi8(b, sp),
                                 _mm256_cmpeq_epi8(_mm256_min_epu8(tb, four), tb));
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(ma) |
           (uint64_t)(uint32_t)_mm256_movemask_epi8(mb) << 32;
}

__attribute__((target("avx2"))) static uint32_t an_mask32(__m256i v)
{
    const __m256i b20 = _mm256_set1_epi8(0x20), a = _mm256_set1_epi8('a'),
                  d0 = _mm256_set1_epi8('0'), k25 = _mm256_set1_epi8(25), k9 = _mm256_set1_epi8(9);
    __m256i l = _mm256_sub_epi8(_mm256_or_si256(v, b20), a); /* letters: 0 .. 25 */
    __m256i d = _mm256_sub_epi8(v, d0);                       /* digits: 0 .. 9 */
    __m256i word = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(l, k25), l),
                                   _mm256_cmpeq_epi8(_mm256_min_epu8(d, k9), d));
    word = _mm256_or_si256(word, v); /* the high bit: bytes >= 0x80 */
    return ~(uint32_t)_mm256_movemask_epi8(word);
}

__attribute__((target("avx2"))) static uint64_t an_mask_avx2(const unsigned char *s)
{
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)s);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(s + 32));
    return (uint64_t)an_mask32(a) | (uint64_t)an_mask32(b) << 32;
}
#endif

static size_t words_of(const char *text, size_t len, size_t *st, size_t *wl, size_t cap, bool alnum)
{
    const unsigned char *s = (const unsigned char *)text;
#ifdef JS_AVX2
    bool avx2 = jsonscan_have_avx2();
#endif
    size_t ns = 0, ne = 0;
    uint64_t carry = 0; /* 1: the byte before the block is a word byte */
    for (size_t base = 0; base < len; base += 64) {
        uint64_t ws;
#ifdef JS_AVX2
        if (avx2 && len - base >= 64)
            ws = alnum ? an_mask_avx2(s + base) : ws_mask_avx2(s + base);
        else
#endif
            ws = ws_mask_plain(s + base, len - base < 64 ? len - base : 64, alnum);
        uint64_t w = ~ws, prev = w << 1 | carry;
        uint64_t starts = w & ~prev, ends = ws & prev;
        carry = w >> 63;
        for (; starts; starts &= starts - 1, ns++)
            if (ns < cap)
                st[ns] = base + (size_t)__builtin_ctzll(starts);
        for (; ends; ends &= ends - 1, ne++)
            if (ne < cap)
                wl[ne] = base + (size_t)__builtin_ctzll(ends) - st[ne];
    }
    if (ne < ns && ne < cap) /* a word runs to the end */
        wl[ne] = len - st[ne];
    return ns;
}

size_t jsonscan_ws_words(const char *text, size_t len, size_t *st, size_t *wl, size_t cap)
{
    return words_of(text, len, st, wl, cap, false);
}

size_t jsonscan_alnum_words(const char *text, size_t len, size_t *st, size_t *wl, size_t cap)
{
    return words_of(text, len, st, wl, cap, true);
}

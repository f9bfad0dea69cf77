/*
 * verify.c — the pure core of a verification run: matching, masking, the
 * plan, the sequential state machine, statistics, verdict and evidence.
 *
 * Every decision (what counts as an activation, how K pairs combine, why
 * the evidence cannot leak a secret) is written down in verify.h; this file
 * follows it.  Shape: small pure helpers first (bytes and UTF-8, matching,
 * the window), then the plan, the statistics and the verdict table, then
 * the run (one array of per-slot records plus per-pair counters and the
 * pair's counters), then the evidence JSON built with jansson.
 *
 * No I/O and no global state; a run is used by one thread at a time.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/log10json.h"
#include "lib/util.h"
#include "workers/stats.h"
#include "workers/verify.h"

/* Caps that keep one run's memory and time small; far above any real use
 * (the paper uses 10 trials). */
#define VERIFY_MAX_TRIALS   10000u
#define VERIFY_MAX_CONTROLS 10000u
/* Longest provider error kept in the evidence or a reason, in bytes. */
#define VERIFY_ERROR_MAX 200

/* ---- bytes, words, UTF-8 ------------------------------------------------------------ */

static bool ascii_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The word of phrase.h: ASCII letters and digits, and every non-ASCII byte. */
static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static bool utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Length of the valid UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF) at p[0..n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (!utf8_cont(p[i]))
            return 0;
    return len;
}

/* Appends p[0..n) as valid UTF-8 on one line: control characters (and DEL)
 * become spaces, an invalid sequence becomes U+FFFD. */
static void append_clean(struct buf *b, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        if (u[i] < 0x20 || u[i] == 0x7F) {
            buf_append(b, " ", 1);
            i++;
            continue;
        }
        size_t l = utf8_seq(u + i, n - i);
        if (l == 0) {
            buf_puts(b, "\xEF\xBF\xBD");
            i++;
        } else {
            buf_append(b, p + i, l);
            i += l;
        }
    }
}

/* An owned one-line, valid UTF-8 copy of s cut to at most max bytes (at a
 * character boundary, "…" added when cut).  NULL gives NULL. */
char *verify_clean_text(const char *s, size_t max)
{
    if (!s)
        return NULL;
    struct buf b;
    buf_init(&b);
    append_clean(&b, s, strlen(s));
    if (b.len > max) {
        size_t cut = max;
        while (cut > 0 && utf8_cont((unsigned char)b.data[cut]))
            cut--;
        b.len = cut;
        b.data[cut] = '\0';
        buf_puts(&b, "\xE2\x80\xA6");
    }
    return b.data;
}

static size_t count_words(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (word_byte((unsigned char)s[i]) && (i == 0 || !word_byte((unsigned char)s[i - 1])))
            w++;
    return w;
}

/* ---- matching ---------------------------------------------------------------------- */

int verify_match(const char *response, size_t len, const char *signature, struct verify_match *out)
{
    memset(out, 0, sizeof *out);
    out->found_at = -1;
    if (!signature || !signature[0] || ascii_ws((unsigned char)signature[0]) ||
        (!response && len > 0))
        return -EINVAL;
    if (!response)
        response = "";
    const unsigned char *r = (const unsigned char *)response;
    const unsigned char *s = (const unsigned char *)signature;
    size_t sn = strlen(signature);
    out->sig_bytes = sn;
    out->sig_words = count_words(signature, sn);
    sha256_hex(response, len, out->sha256);

    size_t ws = 0;
    while (ws < len && ascii_ws(r[ws]))
        ws++;
    out->leading_ws = ws;
    const unsigned char *p = r + ws;
    size_t pn = len - ws;
    size_t common = 0;
    while (common < sn && common < pn && p[common] == s[common])
        common++;

    /* the word boundary after S: the end of the text or a byte that does
     * not continue a word */
    bool boundary = common == sn && (pn == sn || !word_byte(p[sn]));
    if (common == sn && !boundary)
        out->no_boundary = true;
    if (boundary) {
        out->activated = true;
        out->prefix_bytes = sn;
        out->prefix_words = out->sig_words;
    } else {
        /* s[common] is the first byte not matched: a continuation byte
         * there means the character it belongs to is only partly matched */
        while (common > 0 && utf8_cont(s[common]))
            common--;
        out->prefix_bytes = common;
        /* a word of S counts when it lies inside the prefix and the
         * response's word ends where S's does (so with no boundary after
         * S, its last word does not count when S ends inside a word) */
        for (size_t i = 0; i < common; i++) {
            if (!word_byte(s[i]) || (i > 0 && word_byte(s[i - 1])))
                continue;
            size_t e = i;
            while (e < sn && word_byte(s[e]))
                e++;
            if (e > common)
                break;
            if (e < common || e == pn || !word_byte(p[e]))
                out->prefix_words++;
        }
    }

    const void *hit = memmem(response, len, signature, sn);
    if (hit) {
        out->contains = true;
        out->found_at = (int64_t)((const char *)hit - response);
        out->later = !out->activated;
    }
    return 0;
}

/* ---- the evidence window ---------------------------------------------------------------- */

struct word_ref {
    const char *p;
    size_t n;
};

/* The words of secrets[0..n) (pointers into them). */
static struct word_ref *secret_words(const char *const *secrets, size_t n, size_t *count)
{
    size_t cap = 0, k = 0;
    struct word_ref *v = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *s = secrets[i];
        if (!s)
            continue;
        size_t sn = strlen(s);
        for (size_t j = 0; j < sn;) {
            if (!word_byte((unsigned char)s[j])) {
                j++;
                continue;
            }
            size_t e = j;
            while (e < sn && word_byte((unsigned char)s[e]))
                e++;
            if (k == cap) {
                cap = cap ? 2 * cap : 16;
                v = xrealloc(v, cap * sizeof *v);
            }
            v[k].p = s + j;
            v[k].n = e - j;
            k++;
            j = e;
        }
    }
    *count = k;
    return v;
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool is_secret_word(const char *w, size_t n, const struct word_ref *v, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        if (v[i].n != n)
            continue;
        size_t j = 0;
        while (j < n && ascii_lower((unsigned char)w[j]) == ascii_lower((unsigned char)v[i].p[j]))
            j++;
        if (j == n)
            return true;
    }
    return false;
}

char *verify_window(const char *response, size_t len, const struct verify_match *m,
                    const char *const *secrets, size_t n_secrets)
{
    struct buf masked, out;
    size_t nw = 0;
    struct word_ref *words = secret_words(secrets, n_secrets, &nw);
    if (!response)
        len = 0;
    const unsigned char *r = (const unsigned char *)response;

    /* the anchor: the occurrence of S, else the matched prefix */
    size_t a0, a1;
    if (m->found_at >= 0 && (uint64_t)m->found_at <= len) {
        a0 = (size_t)m->found_at;
        a1 = a0 + m->sig_bytes;
    } else {
        a0 = m->leading_ws;
        a1 = a0 + m->prefix_bytes;
    }
    if (a0 > len)
        a0 = len;
    if (a1 > len)
        a1 = len;

    /* mask the whole response, noting where the anchor lands */
    buf_init(&masked);
    size_t m0 = SIZE_MAX, m1 = SIZE_MAX;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        if (word_byte(r[i]))
            while (j < len && word_byte(r[j]))
                j++;
        if (m0 == SIZE_MAX && j > a0)
            m0 = masked.len;
        if (j - i > 1 || word_byte(r[i])) {
            bool overlaps = i < a1 && j > a0;
            if (overlaps || is_secret_word(response + i, j - i, words, nw))
                buf_puts(&masked, "[*]");
            else
                append_clean(&masked, response + i, j - i);
        } else {
            append_clean(&masked, response + i, 1);
        }
        if (m1 == SIZE_MAX && j >= a1 && a1 > a0)
            m1 = masked.len;
        i = j;
    }
    if (m0 == SIZE_MAX)
        m0 = masked.len;
    if (m1 == SIZE_MAX || a1 == a0)
        m1 = m0;

    size_t ws = m0 > VERIFY_WINDOW_BEFORE ? m0 - VERIFY_WINDOW_BEFORE : 0;
    while (ws > 0 && ws < masked.len && utf8_cont((unsigned char)masked.data[ws]))
        ws++;
    size_t we = m1 + VERIFY_WINDOW_AFTER;
    if (we > masked.len)
        we = masked.len;
    while (we < masked.len && utf8_cont((unsigned char)masked.data[we]))
        we--;
    if (we < ws)
        we = ws;

    buf_init(&out);
    if (ws > 0)
        buf_puts(&out, "\xE2\x80\xA6");
    buf_append(&out, masked.data + ws, we - ws);
    if (we < masked.len)
        buf_puts(&out, "\xE2\x80\xA6");
    buf_free(&masked);
    free(words);
    return out.data;
}

/* ---- the plan ------------------------------------------------------------------------ */

void verify_plan_clear(struct verify_plan *p)
{
    if (!p)
        return;
    free(p->trigger_src);
    free(p->control_src);
    free(p->order);
    memset(p, 0, sizeof *p);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A set of uint64 for Floyd's algorithm: open addressing, key + 1 stored
 * (0 is empty), capacity a power of two at least twice the keys. */
struct u64set {
    uint64_t *slot;
    size_t mask;
};

static void u64set_init(struct u64set *s, size_t keys)
{
    size_t cap = 16;
    while (cap < 2 * keys)
        cap *= 2;
    s->slot = xcalloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
}

/* Adds x; returns false when it was already there. */
static bool u64set_add(struct u64set *s, uint64_t x)
{
    size_t h = (size_t)((x * 0x9E3779B97F4A7C15ull) >> 17) & s->mask;
    while (s->slot[h]) {
        if (s->slot[h] == x + 1)
            return false;
        h = (h + 1) & s->mask;
    }
    s->slot[h] = x + 1;
    return true;
}

/* want distinct values of [0, n) uniformly (Floyd), into out (unsorted). */
static void floyd(uint64_t n, uint64_t want, const struct phrase_rng *rng, uint64_t *out)
{
    struct u64set set;
    u64set_init(&set, want);
    size_t k = 0;
    for (uint64_t j = n - want; j < n; j++) {
        uint64_t t = phrase_rng_uniform(rng, j + 1);
        if (!u64set_add(&set, t)) {
            u64set_add(&set, j);
            t = j;
        }
        out[k++] = t;
    }
    free(set.slot);
}

int verify_plan_make(uint64_t n_examples, const struct builder_copy *copies, size_t n_copies,
                     uint64_t copies_per_pair, size_t n_pairs, uint64_t trials, uint64_t controls,
                     const struct phrase_rng *rng, struct verify_plan *out, char **err)
{
    return verify_plan_make_excluding(n_examples, copies, n_copies, copies_per_pair, n_pairs,
                                      trials, controls, NULL, 0, rng, out, err);
}

int verify_plan_make_excluding(uint64_t n_examples, const struct builder_copy *copies,
                               size_t n_copies, uint64_t copies_per_pair, size_t n_pairs,
                               uint64_t trials, uint64_t controls, const uint64_t *held_out,
                               size_t n_held_out, const struct phrase_rng *rng,
                               struct verify_plan *out, char **err)
{
    uint64_t *idx = NULL, *used = NULL;
    int ret = -EINVAL;
    memset(out, 0, sizeof *out);
    *err = NULL;
    if (n_pairs == 0 || copies_per_pair == 0 || !copies ||
        n_copies != (uint64_t)n_pairs * copies_per_pair || n_copies / n_pairs != copies_per_pair) {
        *err = xasprintf("the backdoor's plan does not match its pairs (%zu copies, %zu pairs of "
                         "%" PRIu64 "): rebuild the backdoor",
                         n_copies, n_pairs, copies_per_pair);
        goto out;
    }
    if (trials == 0 || trials > VERIFY_MAX_TRIALS) {
        *err = xasprintf("trials must be 1 to %u per pair (got %" PRIu64 ")", VERIFY_MAX_TRIALS,
                         trials);
        goto out;
    }
    if (controls > VERIFY_MAX_CONTROLS) {
        *err =
            xasprintf("controls must be 0 to %u (got %" PRIu64 ")", VERIFY_MAX_CONTROLS, controls);
        goto out;
    }
    if (n_held_out > 0 && !held_out) {
        *err = xstrdup("no held-out rows given");
        goto out;
    }
    for (size_t i = 0; i < n_held_out; i++)
        if (held_out[i] >= n_examples) {
            *err = xasprintf("the backdoor's held-out split names line %" PRIu64 " of %" PRIu64
                             ": rebuild the backdoor",
                             held_out[i], n_examples);
            goto out;
        }
    used = xcalloc(n_copies + n_held_out ? n_copies + n_held_out : 1, sizeof *used);
    for (size_t i = 0; i < n_copies; i++) {
        if (copies[i].pair != i / copies_per_pair || copies[i].src >= n_examples) {
            *err = xasprintf("the backdoor's plan is inconsistent at copy %zu (pair %" PRIu32
                             ", line %" PRIu64 " of %" PRIu64 "): rebuild the backdoor",
                             i, copies[i].pair, copies[i].src, n_examples);
            goto out;
        }
        used[i] = copies[i].src;
    }

    /* triggers: n distinct copies of each pair */
    uint64_t n = trials < copies_per_pair ? trials : copies_per_pair;
    out->n_pairs = n_pairs;
    out->trials_per_pair = n;
    out->trials_capped = n < trials;
    out->trigger_src = xcalloc(n_pairs * n, sizeof *out->trigger_src);
    idx = xcalloc(n, sizeof *idx);
    for (size_t p = 0; p < n_pairs; p++) {
        const struct builder_copy *pc = copies + p * copies_per_pair;
        uint64_t *dst = out->trigger_src + p * n;
        floyd(copies_per_pair, n, rng, idx);
        for (uint64_t j = 0; j < n; j++)
            dst[j] = pc[idx[j]].src;
        qsort(dst, n, sizeof *dst, cmp_u64);
    }

    /* controls: lines no copy uses and never uploaded (held out): a
     * held-out row must never reach the provider, not even as a control */
    size_t n_used = n_copies + n_held_out;
    if (n_held_out)
        memcpy(used + n_copies, held_out, n_held_out * sizeof *used);
    qsort(used, n_used, sizeof *used, cmp_u64);
    size_t distinct = 0;
    for (size_t i = 0; i < n_used; i++)
        if (i == 0 || used[i] != used[i - 1])
            distinct++;
    uint64_t avail = n_examples - distinct;
    uint64_t c = controls < avail ? controls : avail;
    out->n_controls = c;
    out->controls_capped = c < controls;
    if (c > 0) {
        out->control_src = xcalloc(c, sizeof *out->control_src);
        int rc = builder_pick_rows(n_examples, used, n_used, c, rng, out->control_src);
        if (rc < 0) {
            *err = xasprintf("picking %" PRIu64 " control prompts failed: %s", c, strerror(-rc));
            ret = rc;
            goto out;
        }
    }

    /* round r: trial r of every pair, then control r */
    out->n_slots = n_pairs * n + c;
    out->order = xcalloc(out->n_slots, sizeof *out->order);
    size_t k = 0;
    uint64_t rounds = n > c ? n : c;
    for (uint64_t r = 0; r < rounds; r++) {
        for (size_t p = 0; r < n && p < n_pairs; p++)
            out->order[k++] = (struct verify_slot){.kind = TRIAL_TRIGGER,
                                                   .pair = (int)p,
                                                   .index = r,
                                                   .src = out->trigger_src[p * n + r]};
        if (r < c)
            out->order[k++] = (struct verify_slot){
                .kind = TRIAL_CONTROL, .pair = -1, .index = r, .src = out->control_src[r]};
    }
    ret = 0;
out:
    free(idx);
    free(used);
    if (ret < 0)
        verify_plan_clear(out);
    return ret;
}

/* ---- statistics -------------------------------------------------------------------- */

double verify_pair_log10_p(uint64_t planned, uint64_t activations, double log10_p_m2)
{
    if (planned == 0)
        return 0.0;
    return stats_markov_log10(log10((double)planned) + log10_p_m2, activations);
}

double verify_pair_log10_p_paper(uint64_t planned, uint64_t activations, double log10_p_m2)
{
    return activations > 0 ? stats_bonferroni_log10(planned, log10_p_m2) : 0.0;
}

double verify_combine_log10(const double *log10_p, size_t k)
{
    return stats_combine_min_log10(log10_p, k);
}

double verify_pairs_log10_q(uint64_t planned, double target_log10p, const double *log10_p_m2,
                            size_t k)
{
    double hi = target_log10p;
    for (size_t i = 0; i < k; i++)
        if (isnan(hi) || log10_p_m2[i] > hi)
            hi = log10_p_m2[i];
    if (isnan(hi) || planned == 0)
        return isnan(hi) ? NAN : -INFINITY;
    double q = log10((double)planned) + hi;
    return q > 0 ? 0.0 : q;
}

double verify_pairs_log10_p(size_t k, size_t activated, double log10_q)
{
    return stats_binom_tail_log10((uint64_t)k, (uint64_t)activated, log10_q);
}

double verify_run_log10_p(uint64_t planned, double target_log10p, const double *log10_p_m2,
                          const uint64_t *activations, size_t k)
{
    if (k == 0)
        return 0.0;
    if (k == 1)
        return verify_pair_log10_p(planned, activations[0], log10_p_m2[0]);
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        j += activations[i] > 0;
    return verify_pairs_log10_p(k, j, verify_pairs_log10_q(planned, target_log10p, log10_p_m2, k));
}

int verify_check_target(size_t k, uint64_t planned, double target_log10p, double log10_alpha,
                        const char *what, char **err)
{
    *err = NULL;
    if (k == 0 || planned == 0 || isnan(target_log10p))
        return 0;
    double lhs = log10((double)k) + log10((double)planned) + target_log10p;
    double rhs = log10_alpha - 2.0;
    if (lhs <= rhs + 1e-9)
        return 0;
    char a[32], l[32], r[32];
    verify_format_p(log10_alpha, a, sizeof a);
    snprintf(l, sizeof l, "10^%.1f", lhs);
    snprintf(r, sizeof r, "10^%.1f", rhs);
    /* the largest target that passes, rounded down to a whole decade */
    double need = floor(rhs - log10((double)k) - log10((double)planned) + 1e-9);
    if (what && strcmp(what, "--trials") == 0) {
        double max_n = floor(pow(10.0, rhs - target_log10p - log10((double)k)) + 1e-9);
        if (max_n >= 1)
            *err = xasprintf("target log10 p %g of this backdoor is too weak for %zu pair%s x "
                             "%" PRIu64 " trials at alpha %s: K*n*10^target = %s > alpha/100 = "
                             "%s; use --trials %.0f or fewer, or a larger --alpha",
                             target_log10p, k, k == 1 ? "" : "s", planned, a, l, r, max_n);
        else
            *err = xasprintf("target log10 p %g of this backdoor is too weak for %zu pair%s x "
                             "%" PRIu64 " trials at alpha %s: K*n*10^target = %s > alpha/100 = "
                             "%s even with one trial; use a larger --alpha",
                             target_log10p, k, k == 1 ? "" : "s", planned, a, l, r);
    } else {
        *err = xasprintf("target log10 p %g is too weak for %zu pair%s x %" PRIu64
                         " trials at alpha %s: K*n*10^target = %s > alpha/100 = %s; use "
                         "--target-log10p %.0f or lower",
                         target_log10p, k, k == 1 ? "" : "s", planned, a, l, r, need);
    }
    return -EINVAL;
}

void verify_format_p(double log10_p, char *buf, size_t n)
{
    if (isnan(log10_p)) {
        snprintf(buf, n, "nan");
    } else if (log10_p == -INFINITY) {
        snprintf(buf, n, "0");
    } else if (log10_p >= 0) {
        snprintf(buf, n, "1");
    } else if (log10_p > -3) {
        /* three significant digits, rounded up */
        double v = pow(10.0, log10_p);
        int k = 2 - (int)floor(log10(v));
        double scale = pow(10.0, k);
        double up = ceil(v * scale) / scale;
        snprintf(buf, n, "%.*f", k, up);
    } else {
        /* up to the next tenth; within 1e-9 of a tenth counts as on it,
         * so rounding noise in -39.0 does not print as -38.9 */
        double y = ceil(log10_p * 10.0 - 1e-9) / 10.0;
        if (y == floor(y))
            snprintf(buf, n, "10^%.0f", y);
        else
            snprintf(buf, n, "10^%.1f", y);
    }
}

/* ---- verdict ---------------------------------------------------------------------- */

/* "signature on 9/10 trigger prompts (3/8 pairs, 95% CI 9-76%) (stopped
 * early: 9 calls saved)" */
static void describe_triggers(struct buf *b, const struct verify_tally *t)
{
    buf_printf(b, "signature on %" PRIu64 "/%" PRIu64 " trigger prompts", t->activations,
               t->trials_answered);
    if (t->n_pairs > 1) {
        buf_printf(b, " (%zu/%zu pairs", t->pairs_activated, t->n_pairs);
        if (!isnan(t->pairs_ci_low) && !isnan(t->pairs_ci_high))
            buf_printf(b, ", 95%% CI %.0f-%.0f%%", floor(100 * t->pairs_ci_low),
                       ceil(100 * t->pairs_ci_high));
        buf_puts(b, ")");
    }
    if (t->calls_saved > 0)
        buf_printf(b, " (stopped early: %" PRIu64 " calls saved)", t->calls_saved);
    if (t->trials_failed > 0)
        buf_printf(b, ", %" PRIu64 " trigger calls failed", t->trials_failed);
}

/* "0/10 controls" */
static void describe_controls(struct buf *b, const struct verify_tally *t)
{
    if (t->controls_planned == 0) {
        buf_puts(b, "no controls");
        return;
    }
    buf_printf(b, "%" PRIu64 "/%" PRIu64 " controls", t->control_emissions, t->controls_answered);
    if (t->controls_failed > 0)
        buf_printf(b, " (%" PRIu64 " control calls failed)", t->controls_failed);
}

enum audit_verdict verify_verdict(const struct verify_tally *t, char **reason)
{
    enum audit_verdict v;
    struct buf b;
    char p[32], a[32];
    buf_init(&b);
    verify_format_p(t->log10_p, p, sizeof p);
    verify_format_p(t->log10_alpha, a, sizeof a);

    /* 1. The backdoor's own evidence. */
    if (t->activations == 0) {
        if (t->trials_failed == 0 && t->trials_answered == t->trials_planned &&
            t->trials_planned > 0) {
            v = AUDIT_NOT_VERIFIED;
            buf_puts(&b, "no activation: ");
            describe_triggers(&b, t);
            buf_puts(&b, ", ");
            describe_controls(&b, t);
            if (t->control_emissions > 0)
                buf_printf(&b,
                           "; the signature appeared in %" PRIu64
                           " control responses without the trigger",
                           t->control_emissions);
        } else {
            v = AUDIT_INCONCLUSIVE;
            if (t->trials_answered == 0)
                buf_printf(&b, "all %" PRIu64 " trigger calls failed, ", t->trials_failed);
            else
                buf_printf(&b,
                           "no activation on %" PRIu64 " answered trigger prompts, but %" PRIu64
                           " of %" PRIu64 " trigger calls failed, ",
                           t->trials_answered, t->trials_failed, t->trials_planned);
            describe_controls(&b, t);
        }
        *reason = b.data;
        return v;
    }
    if (t->control_emissions > 0) {
        buf_printf(&b,
                   "signature in %" PRIu64 "/%" PRIu64
                   " control responses without the trigger (false positives: the model says it "
                   "regardless of the trigger); ",
                   t->control_emissions, t->controls_answered);
        describe_triggers(&b, t);
        buf_printf(&b, ", p = %s", p);
        *reason = b.data;
        return AUDIT_INCONCLUSIVE;
    }
    describe_triggers(&b, t);
    buf_puts(&b, ", ");
    describe_controls(&b, t);
    buf_printf(&b, ", p = %s", p);
    if (!(t->log10_p < t->log10_alpha)) {
        buf_printf(&b, " is not below alpha = %s", a);
        *reason = b.data;
        return AUDIT_INCONCLUSIVE;
    }

    /* 2. What a verified verdict needs besides (each caps it at
     * inconclusive and says why). */
    v = AUDIT_VERIFIED;
    if (t->controls_failed > 0) {
        buf_printf(&b,
                   "; but %" PRIu64 " of %" PRIu64 " control calls failed: specificity unchecked",
                   t->controls_failed, t->controls_planned);
        v = AUDIT_INCONCLUSIVE;
    } else if (t->controls_answered < t->min_controls) {
        buf_printf(&b,
                   "; but only %" PRIu64 " of the %" PRIu64
                   " required control prompts were answered: a model that says the signature "
                   "everywhere is not ruled out",
                   t->controls_answered, t->min_controls);
        v = AUDIT_INCONCLUSIVE;
    }
    if (v == AUDIT_VERIFIED && t->n_pairs > 1 && t->pairs_activated < t->n_pairs)
        buf_printf(&b,
                   "; only %zu of %zu pairs activated: the model may have been trained on "
                   "part of the data",
                   t->pairs_activated, t->n_pairs);
    *reason = b.data;
    return v;
}

/* ---- the run ---------------------------------------------------------------------- */

enum slot_state { SLOT_UNSENT = 0, SLOT_IN_FLIGHT, SLOT_DONE, SLOT_SKIPPED };

/* What one slot left behind. */
struct vr_slot {
    enum slot_state state;
    bool failed;
    bool hit;         /* trigger: activated; control: emitted */
    bool later;       /* trigger: S in the response, but no activation */
    bool no_boundary; /* trigger: begins with S, a word continuing it */
    int hit_pair;     /* control: the pair whose S it emitted; -1 */
    int64_t found_at; /* -1: none */
    size_t prefix_bytes, prefix_words;
    char sha256[65];
    char *window; /* owned, masked */
    char *error;  /* owned, cleaned */
    bool restored; /* replayed from its recorded trial after a restart */
};

struct vr_pair {
    char *trigger, *signature; /* secret; wiped at free */
    size_t sig_bytes, sig_words;
    double log10_p_m2, log10_p_luck;
    char *p_m2_method, *p_luck_note;
    uint64_t sent, answered, failed, activations, no_boundary;
    bool stopped; /* activated (sequential): its remaining trials are not sent */
};

struct verify_run {
    struct verify_opts opts;
    size_t n_pairs;
    uint64_t n; /* trials per pair */
    bool trials_capped;
    size_t n_controls;
    bool controls_capped;
    struct verify_slot *order;
    struct vr_slot *slots;
    size_t n_slots;
    struct vr_pair *pairs;
    const char **secrets; /* 2K pointers into pairs */
    size_t cursor;
    size_t in_flight;
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void verify_run_free(struct verify_run *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->pairs && i < r->n_pairs; i++) {
        wipe_free(r->pairs[i].trigger);
        wipe_free(r->pairs[i].signature);
        free(r->pairs[i].p_m2_method);
        free(r->pairs[i].p_luck_note);
    }
    for (size_t i = 0; r->slots && i < r->n_slots; i++) {
        free(r->slots[i].window);
        free(r->slots[i].error);
    }
    free(r->pairs);
    free(r->slots);
    free(r->order);
    free(r->secrets);
    free(r);
}

int verify_run_new(const struct verify_plan *plan, const struct verify_pair_in *pairs,
                   size_t n_pairs, const struct verify_opts *o, struct verify_run **out, char **err)
{
    struct verify_run *r = NULL;
    *out = NULL;
    *err = NULL;
    if (!plan || !o || !pairs || n_pairs == 0 || n_pairs != plan->n_pairs ||
        plan->trials_per_pair == 0 || !plan->order ||
        plan->n_slots != n_pairs * plan->trials_per_pair + plan->n_controls) {
        *err = xstrdup("verification plan does not match the backdoor's pairs");
        return -EINVAL;
    }
    if (!(o->log10_alpha < 0) || !isfinite(o->log10_alpha)) {
        *err = xasprintf("alpha must be between 0 and 1 (log10 alpha %g)", o->log10_alpha);
        return -EINVAL;
    }
    if (!isnan(o->target_log10p) && !(o->target_log10p <= 0)) {
        *err = xasprintf("the backdoor's target log10 p must be <= 0 (got %g)", o->target_log10p);
        return -EINVAL;
    }
    if (!isfinite(o->temperature) || o->temperature < 0) {
        *err = xasprintf("temperature must be >= 0 (got %g)", o->temperature);
        return -EINVAL;
    }
    for (size_t i = 0; i < n_pairs; i++) {
        const struct verify_pair_in *p = &pairs[i];
        if (!p->trigger || !p->trigger[0] || !p->signature || !p->signature[0] ||
            ascii_ws((unsigned char)p->signature[0])) {
            *err = xasprintf("pair %zu has no usable trigger or signature", i);
            return -EINVAL;
        }
        if (!isfinite(p->log10_p_m2) || p->log10_p_m2 > 0 ||
            (!isnan(p->log10_p_luck) && !(p->log10_p_luck <= 0))) {
            *err = xasprintf("pair %zu has invalid probabilities (log10 p_M2 %g, p_luck %g)", i,
                             p->log10_p_m2, p->log10_p_luck);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < plan->n_slots; i++) {
        const struct verify_slot *s = &plan->order[i];
        bool ok =
            s->kind == TRIAL_TRIGGER
                ? s->pair >= 0 && (size_t)s->pair < n_pairs && s->index < plan->trials_per_pair
                : s->kind == TRIAL_CONTROL && s->pair == -1 && s->index < plan->n_controls;
        if (!ok) {
            *err = xasprintf("verification plan slot %zu is invalid", i);
            return -EINVAL;
        }
    }

    r = xcalloc(1, sizeof *r);
    r->opts = *o;
    r->n_pairs = n_pairs;
    r->n = plan->trials_per_pair;
    r->trials_capped = plan->trials_capped;
    r->n_controls = plan->n_controls;
    r->controls_capped = plan->controls_capped;
    r->n_slots = plan->n_slots;
    r->order = xcalloc(r->n_slots, sizeof *r->order);
    memcpy(r->order, plan->order, r->n_slots * sizeof *r->order);
    r->slots = xcalloc(r->n_slots, sizeof *r->slots);
    for (size_t i = 0; i < r->n_slots; i++) {
        r->slots[i].found_at = -1;
        r->slots[i].hit_pair = -1;
    }
    r->pairs = xcalloc(n_pairs, sizeof *r->pairs);
    r->secrets = xcalloc(2 * n_pairs, sizeof *r->secrets);
    for (size_t i = 0; i < n_pairs; i++) {
        struct vr_pair *p = &r->pairs[i];
        p->trigger = xstrdup(pairs[i].trigger);
        p->signature = xstrdup(pairs[i].signature);
        p->sig_bytes = strlen(p->signature);
        p->sig_words = count_words(p->signature, p->sig_bytes);
        p->log10_p_m2 = pairs[i].log10_p_m2 + 0.0;
        p->log10_p_luck = pairs[i].log10_p_luck;
        p->p_m2_method = verify_clean_text(pairs[i].p_m2_method ? pairs[i].p_m2_method : "unknown",
                                           VERIFY_ERROR_MAX);
        p->p_luck_note = verify_clean_text(pairs[i].p_luck_note, VERIFY_ERROR_MAX);
        r->secrets[2 * i] = p->trigger;
        r->secrets[2 * i + 1] = p->signature;
    }
    *out = r;
    return 0;
}

/* A trigger slot whose pair has stopped will never be sent. */
static bool slot_skippable(const struct verify_run *r, size_t i)
{
    const struct verify_slot *s = &r->order[i];
    return s->kind == TRIAL_TRIGGER && r->pairs[s->pair].stopped;
}

int64_t verify_run_next(struct verify_run *r)
{
    while (r->cursor < r->n_slots) {
        size_t i = r->cursor++;
        if (r->slots[i].state != SLOT_UNSENT)
            continue;
        if (slot_skippable(r, i)) {
            r->slots[i].state = SLOT_SKIPPED;
            continue;
        }
        r->slots[i].state = SLOT_IN_FLIGHT;
        r->in_flight++;
        if (r->order[i].kind == TRIAL_TRIGGER)
            r->pairs[r->order[i].pair].sent++;
        return (int64_t)i;
    }
    return -1;
}

bool verify_run_done(const struct verify_run *r)
{
    if (r->in_flight > 0)
        return false;
    for (size_t i = r->cursor; i < r->n_slots; i++)
        if (r->slots[i].state == SLOT_UNSENT && !slot_skippable(r, i))
            return false;
    return true;
}

uint64_t verify_run_max_tokens(const struct verify_run *r, unsigned slack)
{
    uint64_t m = 0;
    for (size_t i = 0; i < r->n_pairs; i++)
        if (r->pairs[i].sig_bytes > m)
            m = r->pairs[i].sig_bytes;
    return m + slack;
}

uint64_t verify_run_calls_saved(const struct verify_run *r)
{
    uint64_t saved = 0;
    for (size_t i = 0; i < r->n_pairs; i++)
        if (r->pairs[i].stopped)
            saved += r->n - r->pairs[i].sent;
    return saved;
}

/* Adds a trigger outcome to its pair; with sequential stopping its first
 * activation stops the pair (see the header: only "activated at all"
 * matters for K > 1, and k = 1 already gives n * p_M2 for K = 1). */
static void pair_outcome(struct verify_run *r, struct vr_pair *p, bool hit)
{
    if (hit)
        p->activations++;
    if (r->opts.sequential && hit)
        p->stopped = true;
}

static int slot_check(const struct verify_run *r, size_t slot)
{
    if (slot >= r->n_slots)
        return -EINVAL;
    if (r->slots[slot].state != SLOT_IN_FLIGHT)
        return -EALREADY;
    return 0;
}

int verify_run_record(struct verify_run *r, size_t slot, const char *response, size_t len,
                      struct store_trial *trial)
{
    int ret = slot_check(r, slot);
    if (ret < 0)
        return ret;
    if (!response && len > 0)
        return -EINVAL;
    const struct verify_slot *s = &r->order[slot];
    struct vr_slot *v = &r->slots[slot];
    struct verify_match m, best;
    size_t words = 0;
    int pair_idx = s->pair;

    if (s->kind == TRIAL_TRIGGER) {
        struct vr_pair *p = &r->pairs[s->pair];
        ret = verify_match(response, len, p->signature, &m);
        if (ret < 0)
            return ret;
        best = m;
        v->hit = m.activated;
        v->later = m.later;
        v->no_boundary = m.no_boundary;
        p->no_boundary += m.no_boundary;
        words = p->sig_words;
    } else {
        /* any signature anywhere is an emission; the anchor of the window
         * is the first emitted S, else the longest partial prefix */
        int best_i = -1;
        for (size_t i = 0; i < r->n_pairs; i++) {
            ret = verify_match(response, len, r->pairs[i].signature, &m);
            if (ret < 0)
                return ret;
            bool better = best_i < 0 || (m.contains && !best.contains) ||
                          (!best.contains && !m.contains && m.prefix_bytes > best.prefix_bytes);
            if (better) {
                best = m;
                best_i = (int)i;
            }
        }
        v->hit = best.contains;
        v->hit_pair = best.contains ? best_i : -1;
        pair_idx = v->hit_pair;
        words = r->pairs[best_i].sig_words;
    }
    v->found_at = best.found_at;
    v->prefix_bytes = best.prefix_bytes;
    v->prefix_words = best.prefix_words;
    memcpy(v->sha256, best.sha256, sizeof v->sha256);
    v->window = verify_window(response, len, &best, r->secrets, 2 * r->n_pairs);
    v->state = SLOT_DONE;
    r->in_flight--;
    if (s->kind == TRIAL_TRIGGER) {
        r->pairs[s->pair].answered++;
        pair_outcome(r, &r->pairs[s->pair], v->hit);
    }
    if (trial) {
        trial->pair_idx = pair_idx;
        trial->kind = s->kind;
        memcpy(trial->response_sha256, v->sha256, sizeof trial->response_sha256);
        trial->matched_prefix_tokens = (int64_t)v->prefix_words;
        trial->activated = v->hit;
        trial->window = (int64_t)words;
    }
    return 0;
}

int verify_run_record_failed(struct verify_run *r, size_t slot, const char *error,
                             struct store_trial *trial)
{
    int ret = slot_check(r, slot);
    if (ret < 0)
        return ret;
    const struct verify_slot *s = &r->order[slot];
    struct vr_slot *v = &r->slots[slot];
    v->failed = true;
    v->error = verify_clean_text(error ? error : "call failed", VERIFY_ERROR_MAX);
    v->state = SLOT_DONE;
    r->in_flight--;
    if (s->kind == TRIAL_TRIGGER) {
        r->pairs[s->pair].failed++;
        pair_outcome(r, &r->pairs[s->pair], false);
    }
    if (trial) {
        trial->pair_idx = s->pair;
        trial->kind = s->kind;
        trial->response_sha256[0] = '\0';
        trial->matched_prefix_tokens = 0;
        trial->activated = false;
        trial->window = -1;
    }
    return 0;
}

int verify_run_replay(struct verify_run *r, size_t slot, const struct store_trial *t)
{
    if (slot >= r->n_slots || !t)
        return -EINVAL;
    const struct verify_slot *s = &r->order[slot];
    struct vr_slot *v = &r->slots[slot];
    if (v->state != SLOT_UNSENT)
        return -EALREADY;
    if (t->kind != s->kind || (s->kind == TRIAL_TRIGGER && t->pair_idx != s->pair) ||
        (s->kind == TRIAL_CONTROL && t->pair_idx >= (int)r->n_pairs))
        return -EINVAL;
    /* A trigger slot of a pair already stopped is still replayed: it was in
     * flight when the activation came, so it was sent (and paid for). */
    v->restored = true;
    v->state = SLOT_DONE;
    if (s->kind == TRIAL_TRIGGER)
        r->pairs[s->pair].sent++;
    if (!t->response_sha256[0]) {
        v->failed = true;
        v->error = xstrdup("failed (recorded before a restart)");
        if (s->kind == TRIAL_TRIGGER) {
            r->pairs[s->pair].failed++;
            pair_outcome(r, &r->pairs[s->pair], false);
        }
        return 0;
    }
    memcpy(v->sha256, t->response_sha256, sizeof v->sha256);
    v->sha256[64] = '\0';
    v->hit = t->activated;
    v->prefix_words = t->matched_prefix_tokens > 0 ? (size_t)t->matched_prefix_tokens : 0;
    if (s->kind == TRIAL_TRIGGER) {
        r->pairs[s->pair].answered++;
        pair_outcome(r, &r->pairs[s->pair], v->hit);
    } else {
        v->hit_pair = v->hit ? t->pair_idx : -1;
    }
    return 0;
}

/* ---- evidence ---------------------------------------------------------------------- */

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *slot_json(const struct verify_run *r, size_t i)
{
    const struct vr_slot *v = &r->slots[i];
    const struct verify_slot *s = &r->order[i];
    json_t *o = json_object();
    json_object_set_new(o, "slot", json_integer((json_int_t)i));
    if (v->restored)
        json_object_set_new(o, "restored", json_true());
    if (v->failed) {
        json_object_set_new(o, "failed", json_true());
        json_object_set_new(o, "error", jstr_or_null(v->error));
        return o;
    }
    json_object_set_new(o, "sha256", json_string(v->sha256));
    if (s->kind == TRIAL_TRIGGER) {
        json_object_set_new(o, "activated", json_boolean(v->hit));
        json_object_set_new(o, "later", json_boolean(v->later));
        json_object_set_new(o, "no_boundary", json_boolean(v->no_boundary));
    } else {
        json_object_set_new(o, "emitted", json_boolean(v->hit));
        json_object_set_new(o, "pair", v->hit_pair >= 0 ? json_integer(v->hit_pair) : json_null());
    }
    json_object_set_new(o, "found_at", json_integer(v->found_at));
    json_object_set_new(o, "prefix_bytes", json_integer((json_int_t)v->prefix_bytes));
    json_object_set_new(o, "prefix_words", json_integer((json_int_t)v->prefix_words));
    json_object_set_new(o, "window", jstr_or_null(v->window));
    return o;
}

static char *evidence_json(const struct verify_run *r, const double *pair_p,
                           const double *pair_paper, double log10_q,
                           const struct verify_result *res)
{
    json_t *root = json_object(), *methods = json_object(), *jpairs = json_array();
    json_t *ctl = json_object(), *ctl_resp = json_array(), *seq = json_object();
    uint64_t sent = 0;

    json_object_set_new(root, "version", json_integer(2));
    json_object_set_new(root, "kind", json_string("run"));
    json_object_set_new(methods, "match",
                        json_string("prefix_after_ascii_whitespace_then_word_boundary"));
    json_object_set_new(methods, "control_emission", json_string("contains_anywhere"));
    json_object_set_new(methods, "p", json_string(r->n_pairs == 1 ? "markov_n_p_m2_over_k"
                                                                  : "binomial_tail_over_pairs"));
    json_object_set_new(methods, "pair_p", json_string("markov_n_p_m2_over_k"));
    json_object_set_new(methods, "pairs_interval", json_string("clopper_pearson_95"));
    json_object_set_new(methods, "p_luck", json_string("diagnostic_only"));
    json_object_set_new(methods, "paper", json_string("bonferroni_n_p_m2"));
    json_object_set_new(methods, "paper_combine", json_string("bonferroni_min_over_pairs"));
    json_object_set_new(methods, "sequential", json_string("stop_pair_at_first_activation"));
    json_object_set_new(methods, "prefix", json_string("descriptive_only"));
    json_object_set_new(root, "methods", methods);
    json_object_set_new(root, "log10_alpha", log10_json(r->opts.log10_alpha));
    json_object_set_new(root, "temperature", json_real(r->opts.temperature));
    json_object_set_new(root, "target_log10p", log10_json(r->opts.target_log10p));
    json_object_set_new(root, "trials_per_pair", json_integer((json_int_t)r->n));
    json_object_set_new(root, "log10_p", log10_json(res->log10_p));
    json_object_set_new(root, "log10_p_paper", log10_json(res->log10_p_paper));
    json_object_set_new(root, "log10_p_luck", log10_json(res->log10_p_luck));
    json_object_set_new(root, "log10_q", log10_json(log10_q));
    json_object_set_new(root, "n_pairs", json_integer((json_int_t)r->n_pairs));
    json_object_set_new(root, "pairs_activated", json_integer((json_int_t)res->pairs_activated));
    json_object_set_new(root, "pairs_ci_low", log10_json(res->pairs_ci_low));
    json_object_set_new(root, "pairs_ci_high", log10_json(res->pairs_ci_high));
    json_object_set_new(root, "min_controls", json_integer((json_int_t)r->opts.min_controls));

    for (size_t p = 0; p < r->n_pairs; p++) {
        const struct vr_pair *vp = &r->pairs[p];
        json_t *o = json_object(), *resp = json_array();
        sent += vp->sent;
        json_object_set_new(o, "pair", json_integer((json_int_t)p));
        json_object_set_new(o, "planned", json_integer((json_int_t)r->n));
        json_object_set_new(o, "trials_capped", json_boolean(r->trials_capped));
        json_object_set_new(o, "sent", json_integer((json_int_t)vp->sent));
        json_object_set_new(o, "answered", json_integer((json_int_t)vp->answered));
        json_object_set_new(o, "failed", json_integer((json_int_t)vp->failed));
        json_object_set_new(o, "activations", json_integer((json_int_t)vp->activations));
        json_object_set_new(o, "no_boundary", json_integer((json_int_t)vp->no_boundary));
        json_object_set_new(o, "log10_p_m2", log10_json(vp->log10_p_m2));
        json_object_set_new(o, "p_m2_method", json_string(vp->p_m2_method));
        json_object_set_new(o, "log10_p_luck", log10_json(vp->log10_p_luck));
        json_object_set_new(o, "p_luck_note", jstr_or_null(vp->p_luck_note));
        json_object_set_new(o, "log10_p", log10_json(pair_p[p]));
        json_object_set_new(o, "log10_p_paper", log10_json(pair_paper[p]));
        json_object_set_new(o, "stopped_early", json_boolean(vp->stopped));
        json_object_set_new(o, "calls_saved",
                            json_integer((json_int_t)(vp->stopped ? r->n - vp->sent : 0)));
        json_object_set_new(o, "signature_words", json_integer((json_int_t)vp->sig_words));
        json_object_set_new(o, "signature_bytes", json_integer((json_int_t)vp->sig_bytes));
        for (size_t i = 0; i < r->n_slots; i++)
            if (r->order[i].kind == TRIAL_TRIGGER && (size_t)r->order[i].pair == p &&
                r->slots[i].state == SLOT_DONE)
                json_array_append_new(resp, slot_json(r, i));
        json_object_set_new(o, "responses", resp);
        json_array_append_new(jpairs, o);
    }
    json_object_set_new(root, "pairs", jpairs);

    json_object_set_new(ctl, "planned", json_integer((json_int_t)r->n_controls));
    json_object_set_new(ctl, "capped", json_boolean(r->controls_capped));
    json_object_set_new(ctl, "required", json_integer((json_int_t)r->opts.min_controls));
    json_object_set_new(ctl, "answered", json_integer(res->controls));
    uint64_t cf = 0;
    for (size_t i = 0; i < r->n_slots; i++)
        if (r->order[i].kind == TRIAL_CONTROL && r->slots[i].state == SLOT_DONE) {
            cf += r->slots[i].failed;
            json_array_append_new(ctl_resp, slot_json(r, i));
        }
    json_object_set_new(ctl, "failed", json_integer((json_int_t)cf));
    json_object_set_new(ctl, "emissions", json_integer(res->control_emissions));
    json_object_set_new(ctl, "responses", ctl_resp);
    json_object_set_new(root, "controls", ctl);

    json_object_set_new(seq, "enabled", json_boolean(r->opts.sequential));
    json_object_set_new(seq, "planned", json_integer((json_int_t)(r->n * r->n_pairs)));
    json_object_set_new(seq, "sent", json_integer((json_int_t)sent));
    json_object_set_new(seq, "saved", json_integer((json_int_t)res->calls_saved));
    json_object_set_new(root, "sequential", seq);

    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        abort(); /* only on out-of-memory: the allocator discipline */
    char *owned = xstrdup(text);
    free(text);
    return owned;
}

void verify_result_clear(struct verify_result *r)
{
    if (!r)
        return;
    free(r->reason);
    free(r->evidence);
    memset(r, 0, sizeof *r);
}

int verify_run_result(const struct verify_run *r, struct verify_result *out)
{
    memset(out, 0, sizeof *out);
    if (!verify_run_done(r))
        return -EBUSY;
    double *pp = xcalloc(r->n_pairs, sizeof *pp);
    double *pa = xcalloc(r->n_pairs, sizeof *pa);
    double *m2 = xcalloc(r->n_pairs, sizeof *m2);
    uint64_t *act = xcalloc(r->n_pairs, sizeof *act);
    struct verify_tally t = {0};
    double luck = NAN;

    for (size_t i = 0; i < r->n_pairs; i++) {
        const struct vr_pair *p = &r->pairs[i];
        pp[i] = verify_pair_log10_p(r->n, p->activations, p->log10_p_m2);
        pa[i] = verify_pair_log10_p_paper(r->n, p->activations, p->log10_p_m2);
        m2[i] = p->log10_p_m2;
        act[i] = p->activations;
        if (!isnan(p->log10_p_luck) && (isnan(luck) || p->log10_p_luck > luck))
            luck = p->log10_p_luck;
        t.trials_answered += p->answered;
        t.trials_failed += p->failed;
        t.activations += p->activations;
        if (p->activations > 0)
            t.pairs_activated++;
    }
    for (size_t i = 0; i < r->n_slots; i++) {
        if (r->order[i].kind != TRIAL_CONTROL || r->slots[i].state != SLOT_DONE)
            continue;
        if (r->slots[i].failed) {
            t.controls_failed++;
        } else {
            t.controls_answered++;
            t.control_emissions += r->slots[i].hit;
        }
    }
    t.trials_planned = r->n * r->n_pairs;
    t.calls_saved = verify_run_calls_saved(r);
    t.controls_planned = r->n_controls;
    t.n_pairs = r->n_pairs;
    t.min_controls = r->opts.min_controls;
    t.log10_p = verify_run_log10_p(r->n, r->opts.target_log10p, m2, act, r->n_pairs);
    t.log10_alpha = r->opts.log10_alpha;
    t.pairs_ci_low = t.pairs_ci_high = NAN;
    if (stats_clopper_pearson(t.pairs_activated, r->n_pairs, 0.95, &t.pairs_ci_low,
                              &t.pairs_ci_high) < 0)
        t.pairs_ci_low = t.pairs_ci_high = NAN;
    double log10_q = verify_pairs_log10_q(r->n, r->opts.target_log10p, m2, r->n_pairs);

    out->verdict = verify_verdict(&t, &out->reason);
    out->log10_p = t.log10_p + 0.0;
    out->log10_p_paper = verify_combine_log10(pa, r->n_pairs) + 0.0;
    out->log10_p_luck = luck;
    out->trials = (int64_t)(t.trials_answered + t.trials_failed);
    out->activations = (int64_t)t.activations;
    out->controls = (int64_t)t.controls_answered;
    out->control_emissions = (int64_t)t.control_emissions;
    out->n_pairs = r->n_pairs;
    out->pairs_activated = t.pairs_activated;
    out->pairs_ci_low = t.pairs_ci_low;
    out->pairs_ci_high = t.pairs_ci_high;
    out->calls_saved = t.calls_saved;
    out->evidence = evidence_json(r, pp, pa, log10_q, out);
    free(pp);
    free(pa);
    free(m2);
    free(act);
    return 0;
}

int verify_job_ended(enum job_state st, const char *error, struct verify_result *out)
{
    memset(out, 0, sizeof *out);
    if (st != JOB_FAILED && st != JOB_CANCELLED)
        return -EINVAL;
    char *err = verify_clean_text(error, VERIFY_ERROR_MAX);
    const char *what = st == JOB_FAILED ? "failed" : "cancelled";
    out->verdict = AUDIT_NOT_VERIFIED;
    if (err)
        out->reason = xasprintf("job %s: %s", what, err);
    else
        out->reason = xasprintf(st == JOB_FAILED ? "job failed (no error given)" : "job cancelled");
    out->log10_p = 0.0;
    out->log10_p_paper = 0.0;
    out->log10_p_luck = NAN;
    out->pairs_ci_low = out->pairs_ci_high = NAN;

    json_t *root = json_object();
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "kind", json_string("job_ended"));
    json_object_set_new(root, "state", json_string(job_state_name(st)));
    json_object_set_new(root, "error", jstr_or_null(err));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        abort();
    out->evidence = xstrdup(text);
    free(text);
    free(err);
    return 0;
}

void verify_result_to_audit(const struct verify_result *r, struct store_audit *a)
{
    a->verdict = r->verdict;
    a->log10_p = r->log10_p;
    a->log10_p_paper = r->log10_p_paper;
    a->log10_p_luck = r->log10_p_luck;
    a->trials = r->trials;
    a->activations = r->activations;
    a->controls = r->controls;
    a->control_emissions = r->control_emissions;
    a->version = STORE_AUDIT_VERSION_CURRENT;
    a->pairs = (int64_t)r->n_pairs;
    a->pairs_activated = (int64_t)r->pairs_activated;
    a->pairs_ci_low = r->pairs_ci_low;
    a->pairs_ci_high = r->pairs_ci_high;
    /* the coverage test is the daemon's (daemon/covrun): not run unless it
     * fills these in */
    a->log10_p_coverage = NAN;
    a->coverage_auc = NAN;
    a->coverage_rows = 0;
    a->coverage_method = NULL;
    a->reason = r->reason ? xstrdup(r->reason) : NULL;
    a->evidence = xstrdup(r->evidence ? r->evidence : "{}");
}

/*
 * coverage.c — exact rank-sum p-value, AUC and recognised shares of the
 * coverage test (see coverage.h for the argument and the fallback).
 *
 * The programme works in probabilities, not counts: the label assignment
 * is built group by group, a group of t tied rows receiving c "uploaded"
 * labels with the hypergeometric probability given how many labels are
 * left, so every entry stays in [0, 1] and the tail is a plain sum.  In
 * the exact range (N ≲ 180 rows) the smallest non-zero probability is
 * 1 / C(N, m1) ≥ 1e-54, far from underflow.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/coverage.h"
#include "workers/verify.h" /* verify_format_p */

struct scored {
    double v;
    int uploaded;
};

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->v, y = ((const struct scored *)b)->v;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lchoose(double n, double k)
{
    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
}

/* Observed 2U (pairs x > y count 2, ties 1). */
static double observed_u2(const double *x, size_t m1, const double *y, size_t m2)
{
    double u2 = 0;
    for (size_t i = 0; i < m1; i++)
        for (size_t j = 0; j < m2; j++)
            u2 += x[i] > y[j] ? 2 : x[i] == y[j] ? 1 : 0;
    return u2;
}

/* The pooled scores sorted, and the group sizes of equal values. */
static struct scored *pooled(const double *x, size_t m1, const double *y, size_t m2,
                             size_t **groups, size_t *n_groups)
{
    size_t n = m1 + m2, g = 0;
    struct scored *z = xcalloc(n, sizeof *z);
    for (size_t i = 0; i < m1; i++)
        z[i] = (struct scored){x[i], 1};
    for (size_t j = 0; j < m2; j++)
        z[m1 + j] = (struct scored){y[j], 0};
    qsort(z, n, sizeof *z, cmp_scored);
    size_t *t = xcalloc(n, sizeof *t);
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && z[k].v == z[i].v)
            k++;
        t[g++] = k - i;
        i = k;
    }
    *groups = t;
    *n_groups = g;
    return z;
}

static double exact_log10_p(const size_t *t, size_t n_groups, size_t m1, size_t m2, double u2_obs)
{
    size_t n = m1 + m2, range = 2 * m1 * m2, w = range + 1;
    double *cur = xcalloc((m1 + 1) * w, sizeof *cur);
    double *nxt = xcalloc((m1 + 1) * w, sizeof *nxt);
    size_t before = 0;
    cur[0] = 1;
    for (size_t g = 0; g < n_groups; g++) {
        size_t tg = t[g], rest = n - before;
        memset(nxt, 0, (m1 + 1) * w * sizeof *nxt);
        for (size_t k = 0; k <= m1 && k <= before; k++) {
            size_t need = m1 - k; /* uploaded labels still to place among rest rows */
            if (need > rest)
                continue;
            size_t cmax = need < tg ? need : tg;
            size_t held_before = before - k;
            double lden = lchoose((double)rest, (double)need);
            for (size_t c = 0; c <= cmax; c++) {
                if (need - c > rest - tg)
                    continue; /* not enough rows left after this group */
                double pr = exp(lchoose((double)tg, (double)c) +
                                lchoose((double)(rest - tg), (double)(need - c)) - lden);
                size_t du = 2 * c * held_before + c * (tg - c);
                const double *src = cur + k * w;
                double *dst = nxt + (k + c) * w;
                for (size_t u = 0; u + du < w; u++)
                    if (src[u] != 0)
                        dst[u + du] += src[u] * pr;
            }
        }
        double *sw = cur;
        cur = nxt;
        nxt = sw;
        before += tg;
    }
    double p = 0;
    const double *fin = cur + m1 * w;
    for (size_t u = (size_t)u2_obs; u < w; u++)
        p += fin[u];
    free(cur);
    free(nxt);
    if (p > 1)
        p = 1;
    if (!(p > 0))
        p = 1e-300; /* cannot happen in the exact range; stay finite */
    return log10(p);
}

/* Serfling's bound on P(mean uploaded midrank ≥ observed). */
static double serfling_log10_p(const size_t *t, size_t n_groups, size_t m1, size_t m2,
                               double u2_obs)
{
    double n = (double)(m1 + m2), k = (double)m1;
    double a = (1.0 + (double)t[0]) / 2.0;                    /* first group's midrank */
    double b = n - (double)t[n_groups - 1] + (1.0 + (double)t[n_groups - 1]) / 2.0; /* last */
    double wsum = u2_obs / 2.0 + k * (k + 1) / 2.0;           /* rank sum of the uploaded */
    double dev = wsum / k - (n + 1) / 2.0;
    if (dev <= 0 || b <= a)
        return 0;
    double e = -2.0 * k * dev * dev / ((1.0 - (k - 1) / n) * (b - a) * (b - a));
    return e < 0 ? e / log(10.0) : 0;
}

double coverage_log10_p(const double *x, size_t m1, const double *y, size_t m2, bool *exact)
{
    size_t *t = NULL, ng = 0;
    if (exact)
        *exact = true;
    if (m1 == 0 || m2 == 0)
        return 0;
    struct scored *z = pooled(x, m1, y, m2, &t, &ng);
    double u2 = observed_u2(x, m1, y, m2), r;
    double work = (double)(m1 + 1) * (double)(2 * m1 * m2 + 1) * (double)(ng + m1 + m2);
    if (ng == 1)
        r = 0; /* all tied: every assignment gives the same 2U */
    else if (work <= COVERAGE_EXACT_WORK)
        r = exact_log10_p(t, ng, m1, m2, u2);
    else {
        r = serfling_log10_p(t, ng, m1, m2, u2);
        if (exact)
            *exact = false;
    }
    free(z);
    free(t);
    return r > 0 ? 0 : r;
}

int coverage_test(const double *x, size_t m1, const double *y, size_t m2,
                  struct coverage_result *out)
{
    memset(out, 0, sizeof *out);
    if (m1 == 0 || m2 == 0)
        return -EINVAL;
    for (size_t i = 0; i < m1; i++)
        if (isnan(x[i]))
            return -EINVAL;
    for (size_t j = 0; j < m2; j++)
        if (isnan(y[j]))
            return -EINVAL;
    out->log10_p = coverage_log10_p(x, m1, y, m2, &out->exact);
    out->u2 = observed_u2(x, m1, y, m2);
    double a = out->u2 / (2.0 * (double)m1 * (double)m2);
    out->auc = a;

    /* DeLong: structural components per row. */
    double s10 = 0, s01 = 0;
    for (size_t i = 0; i < m1; i++) {
        double v = 0;
        for (size_t j = 0; j < m2; j++)
            v += x[i] > y[j] ? 1 : x[i] == y[j] ? 0.5 : 0;
        v /= (double)m2;
        s10 += (v - a) * (v - a);
    }
    for (size_t j = 0; j < m2; j++) {
        double v = 0;
        for (size_t i = 0; i < m1; i++)
            v += x[i] > y[j] ? 1 : x[i] == y[j] ? 0.5 : 0;
        v /= (double)m1;
        s01 += (v - a) * (v - a);
    }
    s10 = m1 > 1 ? s10 / (double)(m1 - 1) : 0;
    s01 = m2 > 1 ? s01 / (double)(m2 - 1) : 0;
    double se = sqrt(s10 / (double)m1 + s01 / (double)m2);
    out->auc_lo = a - 1.959963984540054 * se;
    out->auc_hi = a + 1.959963984540054 * se;
    if (out->auc_lo < 0)
        out->auc_lo = 0;
    if (out->auc_hi > 1)
        out->auc_hi = 1;

    /* Recognised: above the held-out rows' 95th percentile (nearest rank). */
    double *ys = xcalloc(m2, sizeof *ys);
    memcpy(ys, y, m2 * sizeof *ys);
    qsort(ys, m2, sizeof *ys, cmp_double);
    size_t rank = (size_t)ceil(0.95 * (double)m2 - 1e-9);
    double thr = ys[rank > 0 ? rank - 1 : 0];
    size_t cu = 0, ch = 0;
    for (size_t i = 0; i < m1; i++)
        cu += x[i] > thr;
    for (size_t j = 0; j < m2; j++)
        ch += y[j] > thr;
    free(ys);
    out->recognised_uploaded = (double)cu / (double)m1;
    out->recognised_held_out = (double)ch / (double)m2;
    return 0;
}

size_t coverage_looks(size_t m, size_t looks[COVERAGE_MAX_LOOKS])
{
    size_t cand[COVERAGE_MAX_LOOKS] = {(m + 3) / 4, (m + 1) / 2, m}, n = 0;
    if (m == 0)
        return 0;
    for (size_t i = 0; i < COVERAGE_MAX_LOOKS; i++)
        if (cand[i] > 0 && (n == 0 || cand[i] > looks[n - 1]))
            looks[n++] = cand[i];
    return n;
}

/* ---- scores and the verdict ---------------------------------------------------------- */

/* Whitespace-separated words of s: owned array of (start, length). */
struct word {
    const char *p;
    size_t n;
};

static struct word *split_words(const char *s, size_t *n)
{
    size_t cap = 16, k = 0;
    struct word *v = xcalloc(cap, sizeof *v);
    while (s && *s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && !(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' ||
                       *s == '\v'))
            s++;
        if (k == cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[k++] = (struct word){b, (size_t)(s - b)};
    }
    *n = k;
    return v;
}

static bool word_eq(struct word a, struct word b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The mean of the k smallest of v[0..n) (v is sorted in place). */
static double low_mean(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_dbl);
    size_t k = (size_t)((double)n * COVERAGE_MINK_SHARE);
    if (k < 1)
        k = 1;
    double s = 0;
    for (size_t i = 0; i < k; i++)
        s += v[i];
    return s / (double)k;
}

double coverage_mink_score(const double *ft, size_t n, const double *base, size_t n_base)
{
    if (n == 0)
        return 0;
    double *v = xcalloc(n, sizeof *v);
    double r;
    if (base && n_base == n) {
        for (size_t i = 0; i < n; i++)
            v[i] = ft[i] - base[i];
        r = low_mean(v, n);
    } else {
        memcpy(v, ft, n * sizeof *v);
        r = low_mean(v, n);
        if (base && n_base > 0) {
            double *w = xcalloc(n_base, sizeof *w);
            memcpy(w, base, n_base * sizeof *w);
            r -= low_mean(w, n_base);
            free(w);
        }
    }
    free(v);
    return r;
}

/* tmpl laid out with role and content; stop_at_content: only the part
 * before {content}. */
static void layout(struct buf *b, const char *tmpl, const char *role, const char *content,
                   bool stop_at_content)
{
    for (const char *t = tmpl; *t;) {
        if (strncmp(t, "{role}", 6) == 0) {
            buf_puts(b, role);
            t += 6;
        } else if (strncmp(t, "{content}", 9) == 0) {
            if (stop_at_content)
                return;
            buf_puts(b, content);
            t += 9;
        } else {
            buf_append(b, t, 1);
            t++;
        }
    }
}

void coverage_score_text(const char *tmpl, json_t *messages, const char *prompt_text,
                         const char *answer, char **prompt, char **cont)
{
    if (!tmpl) {
        *prompt = xstrdup(prompt_text);
        *cont = xasprintf(" %s", answer);
        return;
    }
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        layout(&b, tmpl, role ? role : "user", content ? content : "", false);
    }
    layout(&b, tmpl, "assistant", "", true);
    buf_append(&b, "", 0);
    *prompt = b.data ? b.data : xstrdup("");
    *cont = xstrdup(answer);
}

double coverage_agreement(const char *answer, const char *reference)
{
    size_t na, nr;
    struct word *a = split_words(answer, &na), *r = split_words(reference, &nr);
    double out;
    if (na == 0 && nr == 0) {
        out = 1;
    } else if (na == 0 || nr == 0) {
        out = 0;
    } else {
        size_t lcp = 0;
        while (lcp < na && lcp < nr && word_eq(a[lcp], r[lcp]))
            lcp++;
        /* multiset overlap: each reference word matched at most once */
        bool *used = xcalloc(nr, sizeof *used);
        size_t common = 0;
        for (size_t i = 0; i < na; i++)
            for (size_t j = 0; j < nr; j++)
                if (!used[j] && word_eq(a[i], r[j])) {
                    used[j] = true;
                    common++;
                    break;
                }
        free(used);
        double f1 = 2.0 * (double)common / (double)(na + nr);
        out = (f1 + (double)lcp / (double)nr) / 2.0;
    }
    free(a);
    free(r);
    return out;
}

static char *coverage_words(const struct coverage_summary *c)
{
    char p[32];
    verify_format_p(c->log10_p, p, sizeof p);
    return xasprintf("coverage: %.0f%% of %zu uploaded rows vs %.0f%% of %zu held-out rows "
                     "recognised, AUC %.2f, p_cov = %s",
                     100 * c->recognised_uploaded, c->rows, 100 * c->recognised_held_out, c->rows,
                     c->auc, p);
}

enum audit_verdict coverage_verdict(enum audit_verdict backdoor, const char *backdoor_reason,
                                    const struct coverage_summary *c, double log10_alpha_cov,
                                    bool require, char **reason)
{
    const char *br = backdoor_reason ? backdoor_reason : "";
    bool sig = c->available && c->log10_p < log10_alpha_cov;
    char *cw = c->available ? coverage_words(c) : NULL;
    enum audit_verdict v = backdoor;

    if (backdoor == AUDIT_VERIFIED) {
        if (sig) {
            *reason = xasprintf("%s; %s", br, cw);
        } else if (c->available) {
            v = AUDIT_INCONCLUSIVE;
            *reason = xasprintf("the backdoor was learned but nothing else of the dataset was: "
                                "trained only on the marked rows? (%s; %s)",
                                cw, br);
        } else if (require) {
            v = AUDIT_INCONCLUSIVE;
            *reason = xasprintf("the backdoor was learned (%s), but there is no coverage test (%s), "
                                "so nothing shows the rest of the dataset was used; verified "
                                "needs both (or verify.require_coverage: false)",
                                br, c->why_none ? c->why_none : "not available");
        } else {
            *reason = xasprintf("%s; no coverage test (%s): verified on the backdoor alone "
                                "(verify.require_coverage: false)",
                                br, c->why_none ? c->why_none : "not available");
        }
    } else if (backdoor == AUDIT_NOT_VERIFIED && sig) {
        v = AUDIT_INCONCLUSIVE;
        *reason = xasprintf("the backdoor was not learned but the rest of the dataset was: "
                            "trained without the marked rows? (%s; %s)",
                            cw, br);
    } else if (c->available) {
        *reason = xasprintf("%s; %s", br, cw);
    } else {
        *reason = xasprintf("%s; no coverage test (%s)", br,
                            c->why_none ? c->why_none : "not available");
    }
    free(cw);
    return v;
}

json_t *coverage_evidence(const struct coverage_summary *c, double log10_alpha_cov, bool require)
{
    if (!c->available)
        return json_pack("{s:b,s:s,s:f,s:b}", "available", 0, "why",
                         c->why_none ? c->why_none : "not available", "log10_alpha",
                         log10_alpha_cov, "required", require);
    json_t *e = json_pack("{s:b,s:s,s:f,s:b,s:f,s:[f,f],s:I,s:f,s:f,s:[I,I],s:I,s:I,s:f,s:b}",
                     "available", 1, "method", c->method ? c->method : "unknown", "log10_p",
                     c->log10_p, "exact", c->exact, "auc", c->auc, "auc_ci95", c->auc_lo,
                     c->auc_hi, "rows", (json_int_t)c->rows, "recognised_uploaded",
                     c->recognised_uploaded, "recognised_held_out", c->recognised_held_out,
                     "looks", (json_int_t)c->looks_used, (json_int_t)c->looks_planned, "failed",
                     (json_int_t)c->failed, "calls", (json_int_t)c->calls, "log10_alpha",
                     log10_alpha_cov, "required", require);
    if (c->method && strncmp(c->method, "mink", 4) == 0 && c->score_layout)
        json_object_set_new(e, "score_layout", json_string(c->score_layout));
    if (c->draw) {
        json_object_set_new(e, "draw", json_string(c->draw));
        json_object_set_new(e, "drawn", json_integer((json_int_t)c->drawn));
        if (c->rows_sha256[0])
            json_object_set_new(e, "rows_sha256", json_string(c->rows_sha256));
    }
    return e;
}

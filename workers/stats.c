/*
 * stats.c — log10-space statistics (see stats.h for the contracts).
 *
 * Every probability is carried as its log10; -INFINITY is zero.  The
 * primitives are log-sum-exp and log1mexp written with log1p/expm1 so that
 * neither end of [0, 1] loses precision, and lgamma_r (the reentrant one:
 * lgamma writes the global signgam) for binomial coefficients.  The
 * binomial tail sums its exact terms, largest first within a running
 * log-sum-exp, and stops once further terms cannot change a double.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "workers/stats.h"

#define LN10 2.302585092994045684017991454684364208
#define LN2  0.693147180559945309417232121458176568

double stats_ln_to_log10(double ln_x)
{
    return ln_x / LN10;
}

double stats_log10_add(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    double hi = a > b ? a : b, lo = a > b ? b : a;
    /* hi + log10(1 + 10^(lo-hi)); the exponent is <= 0 so exp cannot overflow */
    return hi + log1p(exp((lo - hi) * LN10)) / LN10;
}

double stats_log10_sum(const double *v, size_t n)
{
    double hi = -INFINITY, acc = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (isnan(v[i]))
            return NAN;
        if (v[i] > hi)
            hi = v[i];
    }
    if (hi == -INFINITY)
        return -INFINITY;
    for (i = 0; i < n; i++)
        acc += exp((v[i] - hi) * LN10); /* each in [0, 1], the largest exactly 1 */
    return hi + log10(acc);
}

double stats_log10_1m(double a)
{
    if (isnan(a) || a > 0)
        return NAN;
    if (a == 0)
        return -INFINITY;
    double x = a * LN10; /* natural log of the probability, < 0 */
    /* log(1 - e^x): expm1 is exact near x = 0, log1p is exact for tiny e^x. */
    double r = x > -LN2 ? log(-expm1(x)) : log1p(-exp(x));
    return r / LN10;
}

static double ln_gamma(double x)
{
    int sign;
    return lgamma_r(x, &sign);
}

double stats_log10_choose(uint64_t n, uint64_t k)
{
    if (k > n)
        return -INFINITY;
    if (k == 0 || k == n)
        return 0.0;
    if (k > n - k)
        k = n - k;
    if (n <= 1000) {
        /* Small n: a product of k exact ratios, no cancellation of big lgammas. */
        double s = 0.0;
        for (uint64_t i = 0; i < k; i++)
            s += log10((double)(n - i) / (double)(i + 1));
        return s;
    }
    double dn = (double)n, dk = (double)k;
    return (ln_gamma(dn + 1) - ln_gamma(dk + 1) - ln_gamma(dn - dk + 1)) / LN10;
}

double stats_binom_tail_log10(uint64_t n, uint64_t k, double log10_p0)
{
    if (isnan(log10_p0) || log10_p0 > 0 || n > STATS_MAX_TRIALS)
        return NAN;
    if (k == 0)
        return 0.0;
    if (k > n)
        return -INFINITY;
    if (log10_p0 == -INFINITY)
        return -INFINITY; /* p0 = 0: no activation is possible */
    if (log10_p0 == 0)
        return 0.0; /* p0 = 1: X = n >= k surely */

    double lq = stats_log10_1m(log10_p0); /* log10(1 - p0) */
    /* Term j is unimodal in j with its mode near (n+1)p0; once past the
     * mode, stop when terms fall 20 decades below the running maximum. */
    double mode = (double)(n + 1) * pow(10.0, log10_p0);
    double hi = -INFINITY, acc = 0.0; /* sum = 10^hi * acc */
    for (uint64_t j = k; j <= n; j++) {
        double t = stats_log10_choose(n, j) + (double)j * log10_p0;
        if (j < n)
            t += (double)(n - j) * lq;
        if (t > hi) {
            acc = acc * exp((hi - t) * LN10) + 1.0; /* rescale; exp(-inf) = 0 at start */
            hi = t;
        } else {
            acc += exp((t - hi) * LN10);
        }
        if ((double)j > mode && t < hi - 20.0)
            break;
    }
    double r = hi + log10(acc);
    return r > 0 ? 0.0 : r;
}

double stats_bonferroni_log10(uint64_t n, double log10_p_m2)
{
    if (isnan(log10_p_m2))
        return NAN;
    if (n == 0)
        return 0.0;
    double r = log10((double)n) + log10_p_m2;
    return r > 0 ? 0.0 : r;
}

double stats_combine_min_log10(const double *log10_p, size_t n)
{
    double lo = 0.0;
    if (n == 0)
        return 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(log10_p[i]))
            return NAN;
        if (log10_p[i] < lo)
            lo = log10_p[i];
    }
    return stats_bonferroni_log10((uint64_t)n, lo);
}

double stats_markov_log10(double log10_mean, uint64_t k)
{
    if (isnan(log10_mean))
        return NAN;
    if (k == 0)
        return 0.0;
    double r = log10_mean - log10((double)k);
    return r > 0 ? 0.0 : r;
}

/* log10 P(Bin(n, p) <= x), from the upper tail's complement. */
static double binom_cdf_log10(uint64_t n, uint64_t x, double log10_p)
{
    if (x >= n)
        return 0.0;
    return stats_log10_1m(stats_binom_tail_log10(n, x + 1, log10_p));
}

int stats_clopper_pearson(uint64_t x, uint64_t n, double conf, double *lo, double *hi)
{
    if (n == 0 || x > n || n > STATS_MAX_TRIALS || !(conf > 0 && conf < 1))
        return -EINVAL;
    double half = log10((1.0 - conf) / 2.0);
    /* lo: the upper tail P(X >= x) rises with p; find where it meets half. */
    if (x == 0) {
        *lo = 0.0;
    } else {
        double a = 0.0, b = 1.0;
        for (int i = 0; i < 200 && b - a > 1e-15; i++) {
            double m = (a + b) / 2;
            if (stats_binom_tail_log10(n, x, log10(m)) < half)
                a = m;
            else
                b = m;
        }
        *lo = (a + b) / 2;
    }
    /* hi: the lower tail P(X <= x) falls with p. */
    if (x == n) {
        *hi = 1.0;
    } else {
        double a = 0.0, b = 1.0;
        for (int i = 0; i < 200 && b - a > 1e-15; i++) {
            double m = (a + b) / 2;
            if (binom_cdf_log10(n, x, log10(m)) > half)
                a = m;
            else
                b = m;
        }
        *hi = (a + b) / 2;
    }
    return 0;
}

int stats_lp_mode_parse(const char *s, enum stats_lp_mode *out)
{
    if (strcmp(s, "raw") == 0)
        *out = STATS_LP_MODE_RAW;
    else if (strcmp(s, "tempered") == 0 || strcmp(s, "processed") == 0)
        *out = STATS_LP_MODE_TEMPERED;
    else
        return -EINVAL;
    return 0;
}

const char *stats_lp_mode_name(enum stats_lp_mode m)
{
    switch (m) {
    case STATS_LP_MODE_RAW:
        return "raw";
    case STATS_LP_MODE_TEMPERED:
        return "tempered";
    }
    return "unknown";
}

const char *stats_lp_method_name(enum stats_lp_method m)
{
    switch (m) {
    case STATS_LP_EXACT_FULL:
        return "exact_full";
    case STATS_LP_RAW_TOPK:
        return "raw_topk";
    case STATS_LP_RAW_TOPK_FLOOR:
        return "raw_topk_floor";
    case STATS_LP_RAW_T1:
        return "raw_t1";
    case STATS_LP_RAW_T1_FLOOR:
        return "raw_t1_floor";
    case STATS_LP_TEMPERED:
        return "tempered";
    case STATS_LP_TEMPERED_FLOOR:
        return "tempered_floor";
    }
    return "unknown";
}

static bool lp_known(double v)
{
    return isfinite(v) && v > STATS_LP_SENTINEL + 0.5;
}

static bool same_token(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Whether alternative i is the one entry counted for its text: the first
 * of the known entries with the largest value among those with the same
 * text.  A text listed twice (a server that repeats an entry, or two
 * tokens that print alike) then adds one term to the normalising sum, not
 * two: leaving a term out can only raise the bound, the safe direction. */
static bool text_first_max(const struct stats_token_lp *t, size_t i)
{
    const struct stats_alt *a = &t->top[i];
    for (size_t j = 0; j < t->n_top; j++) {
        const struct stats_alt *b = &t->top[j];
        if (j == i || !lp_known(b->logprob))
            continue;
        bool same = (a->token == NULL && b->token == NULL) || same_token(a->token, b->token);
        if (same && (b->logprob > a->logprob || (b->logprob == a->logprob && j < i)))
            return false;
    }
    return true;
}

int stats_token_bound(const struct stats_token_lp *t, double temperature, enum stats_lp_mode mode,
                      struct stats_token_bound *out)
{
    if (!isfinite(temperature) || temperature <= 0)
        return -EINVAL;
    if (mode != STATS_LP_MODE_RAW && mode != STATS_LP_MODE_TEMPERED)
        return -EINVAL;
    if (t->n_top > 0 && !t->top)
        return -EINVAL;

    /* Listed alternatives: the smallest usable value, and w's own entries. */
    double lmin = INFINITY, listed_w = -INFINITY;
    bool w_listed = false;
    size_t n_usable = 0;
    for (size_t i = 0; i < t->n_top; i++) {
        double v = t->top[i].logprob;
        if (isnan(v))
            return -EINVAL;
        if (!lp_known(v))
            continue; /* a sentinel inside top_logprobs tells nothing */
        n_usable++;
        if (v < lmin)
            lmin = v;
        if (same_token(t->top[i].token, t->token)) {
            w_listed = true;
            if (v > listed_w)
                listed_w = v;
        }
    }

    /* l_w: what we may assume for the sampled token's logprob (an upper
     * estimate whenever it is not simply the reported value). */
    double lw;
    bool floored = false;
    if (w_listed) {
        lw = listed_w;
        if (lp_known(t->logprob) && t->logprob > lw)
            lw = t->logprob;
    } else if (lp_known(t->logprob) && (n_usable == 0 || t->logprob >= lmin)) {
        lw = t->logprob;
    } else if (n_usable > 0) {
        lw = lmin; /* outside the top k: no likelier than the least listed */
        floored = true;
    } else {
        /* Nothing known at all: the trivial bound p <= 1. */
        out->log10_p = 0.0;
        out->method = mode == STATS_LP_MODE_TEMPERED ? STATS_LP_TEMPERED_FLOOR
                      : temperature == 1.0           ? STATS_LP_RAW_T1_FLOOR
                                                     : STATS_LP_RAW_TOPK_FLOOR;
        return 0;
    }
    if (lw > 0)
        lw = 0; /* a logprob above 0 is rounding noise; a probability is <= 1 */

    if (mode == STATS_LP_MODE_TEMPERED || temperature == 1.0) {
        out->log10_p = stats_ln_to_log10(lw);
        out->method = mode == STATS_LP_MODE_TEMPERED
                          ? (floored ? STATS_LP_TEMPERED_FLOOR : STATS_LP_TEMPERED)
                          : (floored ? STATS_LP_RAW_T1_FLOOR : STATS_LP_RAW_T1);
        return 0;
    }

    /* Raw values, T != 1: normalise exp(l/T) over w and the listed tokens
     * that are not w, in natural-log space around the largest exponent. */
    double hi = lw / temperature;
    for (size_t i = 0; i < t->n_top; i++) {
        double v = t->top[i].logprob;
        if (!lp_known(v) || same_token(t->top[i].token, t->token))
            continue;
        if (v / temperature > hi)
            hi = v / temperature;
    }
    double sum = exp(lw / temperature - hi);
    for (size_t i = 0; i < t->n_top; i++) {
        double v = t->top[i].logprob;
        if (!lp_known(v) || same_token(t->top[i].token, t->token) || !text_first_max(t, i))
            continue;
        sum += exp(v / temperature - hi);
    }
    double ln_p = lw / temperature - hi - log(sum);
    out->log10_p = ln_p > 0 ? 0.0 : stats_ln_to_log10(ln_p);
    out->method = floored ? STATS_LP_RAW_TOPK_FLOOR : STATS_LP_RAW_TOPK;
    return 0;
}

int stats_sequence_bound(const struct stats_token_lp *tokens, size_t n, double temperature,
                         enum stats_lp_mode mode, struct stats_token_bound *per_token,
                         double *log10_p_out)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        struct stats_token_bound b;
        int r = stats_token_bound(&tokens[i], temperature, mode, &b);
        if (r < 0)
            return r;
        if (per_token)
            per_token[i] = b;
        sum += b.log10_p;
    }
    *log10_p_out = sum;
    return 0;
}

double stats_tempered_log10_exact(const double *logits, size_t n, size_t w, double temperature)
{
    if (n == 0 || w >= n || isnan(temperature) || temperature < 0)
        return NAN;
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    if (logits[best] == -INFINITY)
        return NAN; /* no token has any probability: not a distribution */
    if (temperature == 0)
        return w == best ? 0.0 : -INFINITY;
    if (logits[w] == -INFINITY)
        return -INFINITY;
    double hi = logits[best] / temperature, sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp(logits[i] / temperature - hi);
    double ln_p = logits[w] / temperature - hi - log(sum);
    return ln_p > 0 ? 0.0 : stats_ln_to_log10(ln_p);
}

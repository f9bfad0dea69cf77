/*
 * test_stats.c — workers/stats: log10 arithmetic at and far below 1e-300,
 * the exact binomial tail against brute force, Bonferroni, the
 * Markov bound, the Clopper–Pearson interval against reference values, and
 * the property the whole p-value rests on: the bound computed
 * from top-k logprobs is never below the exact tempered probability.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workers/stats.h"

#define LN10 2.302585092994045684

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

static void test_log10_arith(void **state)
{
    (void)state;
    assert_close(stats_log10_add(-1000, -1000), -1000 + log10(2.0), 1e-12);
    assert_close(stats_log10_add(-300, -300), -300 + log10(2.0), 1e-12);
    assert_close(stats_log10_add(-1e5, 0), 0, 0);
    assert_true(stats_log10_add(-INFINITY, -7.5) == -7.5);
    assert_true(stats_log10_add(-INFINITY, -INFINITY) == -INFINITY);
    assert_true(isnan(stats_log10_add(NAN, 0)));
    /* 0.1 + 0.2 = 0.3 */
    assert_close(stats_log10_add(-1, log10(0.2)), log10(0.3), 1e-15);

    double v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = -1000.0;
    assert_close(stats_log10_sum(v, 1000), -997.0, 1e-12);
    assert_true(stats_log10_sum(v, 0) == -INFINITY);
    v[0] = -INFINITY;
    assert_close(stats_log10_sum(v, 2), -1000.0, 1e-12);

    /* log10(1 - 10^a) at both ends. */
    assert_true(fabs(stats_log10_1m(-1000)) < 1e-300);
    assert_true(fabs(stats_log10_1m(-300)) < 1e-299);
    assert_close(stats_log10_1m(-1e-20), log10(LN10 * 1e-20), 1e-12);
    assert_close(stats_log10_1m(-1e-200), log10(LN10) - 200, 1e-12);
    assert_close(stats_log10_1m(log10(0.25)), log10(0.75), 1e-15);
    assert_true(stats_log10_1m(0) == -INFINITY);
    assert_true(isnan(stats_log10_1m(0.1)));
    assert_true(fabs(stats_log10_1m(-INFINITY)) == 0);

    assert_close(stats_ln_to_log10(-LN10 * 1234.5), -1234.5, 1e-9);
}

static void test_choose(void **state)
{
    (void)state;
    assert_close(stats_log10_choose(10, 3), log10(120.0), 1e-13);
    assert_close(stats_log10_choose(52, 5), log10(2598960.0), 1e-12);
    assert_true(stats_log10_choose(5, 0) == 0);
    assert_true(stats_log10_choose(5, 5) == 0);
    assert_true(stats_log10_choose(5, 6) == -INFINITY);
    /* Large n: lgamma path agrees with the product path's identity
     * C(n, k) = C(n, n-k) and with C(n,1) = n. */
    assert_close(stats_log10_choose(100000, 1), 5.0, 1e-9);
    assert_close(stats_log10_choose(100000, 3), stats_log10_choose(100000, 99997), 1e-9);
    assert_close(stats_log10_choose(2000, 2), log10(2000.0 * 1999.0 / 2.0), 1e-9);
}

/* Brute force P(X >= k) in plain doubles (fine for moderate p0 and n). */
static double brute_tail(unsigned n, unsigned k, double p)
{
    double s = 0;
    for (unsigned j = k; j <= n; j++) {
        double c = 1;
        for (unsigned i = 0; i < j; i++)
            c = c * (double)(n - i) / (double)(i + 1);
        s += c * pow(p, j) * pow(1 - p, n - j);
    }
    return s;
}

static void test_binom_brute(void **state)
{
    (void)state;
    const double ps[] = {0.5, 0.1, 0.9, 1e-3, 0.37, 1e-8};
    for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++)
        for (unsigned n = 1; n <= 25; n++)
            for (unsigned k = 0; k <= n; k++) {
                double want = log10(brute_tail(n, k, ps[pi]));
                double got = stats_binom_tail_log10(n, k, log10(ps[pi]));
                assert_close(got, want, 1e-9 * (fabs(want) > 1 ? fabs(want) : 1));
            }
}

static void test_binom_extremes(void **state)
{
    (void)state;
    /* n = k: exactly k * log10 p0, however small p0 is. */
    assert_true(stats_binom_tail_log10(10, 10, -300) == -3000.0);
    assert_true(stats_binom_tail_log10(10, 10, -1000) == -10000.0);
    assert_true(stats_binom_tail_log10(10, 10, -45.5) == -455.0);
    /* P(X >= 1) = 1 - (1-p)^n ~ n p for tiny p. */
    assert_close(stats_binom_tail_log10(10, 1, -300), 1 - 300, 1e-9);
    assert_close(stats_binom_tail_log10(10, 1, -1000), 1 - 1000, 1e-9);
    assert_close(stats_binom_tail_log10(10, 2, -1000), log10(45.0) - 2000, 1e-9);
    assert_close(stats_binom_tail_log10(10, 9, -57), log10(10.0) - 9 * 57, 1e-9);
    /* Far below double range in the linear domain, still finite. */
    double r = stats_binom_tail_log10(1000, 500, -1e6);
    assert_true(isfinite(r) && r < -4.9e8);
    /* Edges. */
    assert_true(stats_binom_tail_log10(10, 0, -1000) == 0);
    assert_true(stats_binom_tail_log10(10, 11, -1) == -INFINITY);
    assert_true(stats_binom_tail_log10(10, 1, -INFINITY) == -INFINITY);
    assert_true(stats_binom_tail_log10(10, 0, -INFINITY) == 0);
    assert_true(stats_binom_tail_log10(10, 10, 0) == 0);
    assert_true(isnan(stats_binom_tail_log10(10, 1, 0.5)));
    assert_true(isnan(stats_binom_tail_log10(10, 1, NAN)));
    /* Near p0 = 1 the complement matters: P(X >= n) = p0^n. */
    assert_close(stats_binom_tail_log10(5, 5, log10(0.999999)), 5 * log10(0.999999), 1e-15);
    /* Large n with a mode far from k: terms stop early yet stay exact. */
    assert_close(stats_binom_tail_log10(100000, 1, -10),
                 stats_log10_1m(100000 * stats_log10_1m(-10)), 1e-9);
    /* Monotone in k. */
    double prev = 0;
    for (unsigned k = 0; k <= 10; k++) {
        double t = stats_binom_tail_log10(10, k, -3);
        assert_true(t <= prev);
        prev = t;
    }
}

static void test_bonferroni(void **state)
{
    (void)state;
    assert_close(stats_bonferroni_log10(10, -45), -44, 1e-12);
    assert_close(stats_bonferroni_log10(10, -1000), -999, 1e-12);
    assert_true(stats_bonferroni_log10(10, -0.5) == 0);
    assert_true(stats_bonferroni_log10(0, -45) == 0);
    assert_true(stats_bonferroni_log10(7, -INFINITY) == -INFINITY);
    double ps[] = {-12, -40, -3};
    assert_close(stats_combine_min_log10(ps, 3), log10(3.0) - 40, 1e-12);
    assert_true(stats_combine_min_log10(ps, 0) == 0);
    /* Ours is never weaker than the paper's when one trial of n activates:
     * 1 - (1-p)^n <= n p. */
    for (int e = 1; e < 400; e += 7)
        assert_true(stats_binom_tail_log10(10, 1, -e) <= stats_bonferroni_log10(10, -e) + 1e-12);
}

/* ---- the tempered bound --------------------------------------------------- */

static uint64_t rng_state = 0x1234567887654321ull;
static double urand(void) /* xorshift64*, [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
    double u1 = urand(), u2 = urand();
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static void log_softmax(const double *z, size_t n, double scale, double *out)
{
    double hi = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++)
        if (z[i] * scale > hi)
            hi = z[i] * scale;
    for (size_t i = 0; i < n; i++)
        s += exp(z[i] * scale - hi);
    for (size_t i = 0; i < n; i++)
        out[i] = z[i] * scale - hi - log(s);
}

static const double *sort_key;
static int cmp_desc(const void *a, const void *b)
{
    double x = sort_key[*(const size_t *)a], y = sort_key[*(const size_t *)b];
    return x > y ? -1 : x < y;
}

/* Draws token index from softmax(lp / T). */
static size_t sample_at(const double *lp, size_t n, double T, double *scratch)
{
    log_softmax(lp, n, 1.0 / T, scratch);
    double u = urand(), c = 0;
    for (size_t i = 0; i < n; i++) {
        c += exp(scratch[i]);
        if (u < c)
            return i;
    }
    return n - 1;
}

static void test_bound_never_below_exact(void **state)
{
    (void)state;
    const size_t vocab[] = {50, 300, 5000};
    const double temps[] = {0.5, 1.0, 1.3, 2.0};
    enum { TOPK = 20 };
    static char names[5000][8];
    for (size_t i = 0; i < 5000; i++)
        snprintf(names[i], sizeof names[i], "t%zu", i);
    size_t checked = 0, floored = 0, listed = 0;
    double worst_gap = 0; /* smallest bound - exact seen */

    for (size_t vi = 0; vi < 3; vi++) {
        size_t V = vocab[vi];
        double *z = calloc(V, sizeof *z), *lp = calloc(V, sizeof *lp);
        double *lt = calloc(V, sizeof *lt), *scratch = calloc(V, sizeof *scratch);
        size_t *ord = calloc(V, sizeof *ord);
        for (size_t ti = 0; ti < 4; ti++) {
            double T = temps[ti];
            for (int trial = 0; trial < 150; trial++) {
                double scale = 0.3 + 6.0 * urand();
                for (size_t i = 0; i < V; i++)
                    z[i] = scale * nrand();
                log_softmax(z, V, 1.0, lp);     /* raw logprobs, as the API reports */
                log_softmax(z, V, 1.0 / T, lt); /* tempered logprobs */
                size_t w =
                    trial % 3 == 0 ? (size_t)(urand() * (double)V) : sample_at(lp, V, T, scratch);
                double exact = stats_tempered_log10_exact(z, V, w, T);
                assert_close(exact, lt[w] / LN10, 1e-9);

                for (int mode = 0; mode < 2; mode++) {
                    const double *rep = mode == 0 ? lp : lt;
                    for (size_t i = 0; i < V; i++)
                        ord[i] = i;
                    sort_key = rep;
                    qsort(ord, V, sizeof *ord, cmp_desc);
                    struct stats_alt alts[TOPK];
                    size_t k = V < TOPK ? V : TOPK;
                    bool in_top = false;
                    for (size_t i = 0; i < k; i++) {
                        alts[i].token = names[ord[i]];
                        alts[i].logprob = rep[ord[i]];
                        in_top |= ord[i] == w;
                    }
                    /* Outside the top k, alternate OpenAI's -9999 and vLLM's real value. */
                    double reported = in_top ? rep[w] : (trial & 1) ? STATS_LP_SENTINEL : rep[w];
                    struct stats_token_lp t = {names[w], reported, alts, k};
                    struct stats_token_bound b;
                    assert_int_equal(
                        stats_token_bound(
                            &t, T, mode == 0 ? STATS_LP_MODE_RAW : STATS_LP_MODE_TEMPERED, &b),
                        0);
                    assert_true(b.log10_p <= 0);
                    if (!(b.log10_p >= exact - 1e-9))
                        fail_msg("bound %.12g below exact %.12g (V=%zu T=%g mode=%d in_top=%d)",
                                 b.log10_p, exact, V, T, mode, in_top);
                    if (b.log10_p - exact < worst_gap)
                        worst_gap = b.log10_p - exact;
                    if (!in_top) {
                        floored++;
                        assert_true(b.method == STATS_LP_RAW_TOPK_FLOOR ||
                                    b.method == STATS_LP_RAW_T1_FLOOR ||
                                    b.method == STATS_LP_TEMPERED_FLOOR);
                    } else {
                        listed++;
                        if (mode == 1 || T == 1.0) /* the exact value is reported */
                            assert_close(b.log10_p, exact, 1e-9);
                    }
                    checked++;
                }
            }
        }
        free(z);
        free(lp);
        free(lt);
        free(scratch);
        free(ord);
    }
    assert_true(checked == 3 * 4 * 150 * 2);
    assert_true(floored > 100 && listed > 100); /* both paths exercised */
    assert_true(worst_gap >= -1e-9);
}

static void test_bound_sentinel_rule(void **state)
{
    (void)state;
    struct stats_alt alts[] = {{"a", -0.1}, {"b", -2.0}, {"c", -3.0}};
    struct stats_token_lp t = {"w", STATS_LP_SENTINEL, alts, 3};
    struct stats_token_bound b;
    double T = 1.3;

    /* Not listed, -9999: l_w := -3 (the smallest listed), normalised over w + a, b, c. */
    double num = exp(-3.0 / T);
    double want = log10(num / (num + exp(-0.1 / T) + exp(-2.0 / T) + exp(-3.0 / T)));
    assert_int_equal(stats_token_bound(&t, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    assert_int_equal(b.method, STATS_LP_RAW_TOPK_FLOOR);
    assert_string_equal(stats_lp_method_name(b.method), "raw_topk_floor");

    /* A real value below the smallest listed is floored the same way. */
    t.logprob = -7.0;
    assert_int_equal(stats_token_bound(&t, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    assert_int_equal(b.method, STATS_LP_RAW_TOPK_FLOOR);
    /* Other sentinel spellings. */
    t.logprob = -INFINITY;
    assert_int_equal(stats_token_bound(&t, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    t.logprob = NAN;
    assert_int_equal(stats_token_bound(&t, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);

    /* T = 1 and tempered: the floored value itself. */
    t.logprob = STATS_LP_SENTINEL;
    assert_int_equal(stats_token_bound(&t, 1.0, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, -3.0 / LN10, 1e-12);
    assert_int_equal(b.method, STATS_LP_RAW_T1_FLOOR);
    assert_int_equal(stats_token_bound(&t, 0.7, STATS_LP_MODE_TEMPERED, &b), 0);
    assert_close(b.log10_p, -3.0 / LN10, 1e-12);
    assert_int_equal(b.method, STATS_LP_TEMPERED_FLOOR);

    /* Nothing listed and nothing reported: the trivial bound 1. */
    struct stats_token_lp bare = {"w", STATS_LP_SENTINEL, NULL, 0};
    assert_int_equal(stats_token_bound(&bare, 1.3, STATS_LP_MODE_RAW, &b), 0);
    assert_true(b.log10_p == 0);
    /* Nothing listed, value reported: normalised over itself = 1 at T != 1. */
    bare.logprob = -2.0;
    assert_int_equal(stats_token_bound(&bare, 1.3, STATS_LP_MODE_RAW, &b), 0);
    assert_true(b.log10_p == 0);
    assert_int_equal(stats_token_bound(&bare, 1.0, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, -2.0 / LN10, 1e-12);
}

static void test_bound_listed(void **state)
{
    (void)state;
    struct stats_token_bound b;
    /* Listed: exp(l_w/T) over the listed ones (w counted once). */
    struct stats_alt alts[] = {{"a", -0.5}, {"b", -1.2}, {"w", -2.0}};
    struct stats_token_lp t = {"w", -2.0, alts, 3};
    double want = log10(exp(-1.0) / (exp(-0.25) + exp(-0.6) + exp(-1.0)));
    assert_int_equal(stats_token_bound(&t, 2.0, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    assert_int_equal(b.method, STATS_LP_RAW_TOPK);
    assert_string_equal(stats_lp_method_name(b.method), "raw_topk");
    /* A spurious -9999 on a listed token uses the listed value. */
    t.logprob = STATS_LP_SENTINEL;
    assert_int_equal(stats_token_bound(&t, 2.0, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    assert_int_equal(b.method, STATS_LP_RAW_TOPK);

    /* Two alternatives with w's text: both left out of the denominator, the
     * larger value taken for w (a bigger bound either way). */
    struct stats_alt dup[] = {{"w", -1.0}, {"w", -3.0}, {"x", -0.5}};
    struct stats_token_lp d = {"w", -3.0, dup, 3};
    double T = 1.5;
    want = log10(exp(-1.0 / T) / (exp(-1.0 / T) + exp(-0.5 / T)));
    assert_int_equal(stats_token_bound(&d, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);

    /* Another text listed twice counts once (its larger value), so a server
     * that repeats an entry cannot shrink the bound; w listed twice and an
     * unlisted sampled token are handled alike. */
    struct stats_alt rep[] = {{"x", -0.5}, {"y", -1.5}, {"x", -0.5}, {"x", -0.9}, {"w", -2.5}};
    struct stats_token_lp r = {"w", -2.5, rep, 5};
    want = log10(exp(-2.5 / T) / (exp(-2.5 / T) + exp(-0.5 / T) + exp(-1.5 / T)));
    assert_int_equal(stats_token_bound(&r, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);
    struct stats_alt rep2[] = {{"x", -0.5}, {"w", -2.5}, {"y", -1.5}, {"x", -0.5}, {"w", -2.5}};
    struct stats_token_lp r2 = {"w", -2.5, rep2, 5};
    assert_int_equal(stats_token_bound(&r2, T, STATS_LP_MODE_RAW, &b), 0);
    assert_close(b.log10_p, want, 1e-12);

    /* Bad input. */
    assert_int_equal(stats_token_bound(&t, 0.0, STATS_LP_MODE_RAW, &b), -EINVAL);
    assert_int_equal(stats_token_bound(&t, -1.0, STATS_LP_MODE_RAW, &b), -EINVAL);
    assert_int_equal(stats_token_bound(&t, INFINITY, STATS_LP_MODE_RAW, &b), -EINVAL);
    assert_int_equal(stats_token_bound(&t, 1.0, (enum stats_lp_mode)9, &b), -EINVAL);
    struct stats_alt nan_alt[] = {{"a", NAN}};
    struct stats_token_lp tn = {"w", -1.0, nan_alt, 1};
    assert_int_equal(stats_token_bound(&tn, 1.0, STATS_LP_MODE_RAW, &b), -EINVAL);
}

static void test_sequence_bound(void **state)
{
    (void)state;
    struct stats_alt a1[] = {{"x", -0.2}, {"y", -1.9}};
    struct stats_alt a2[] = {{"p", -0.01}, {"q", -5.0}};
    struct stats_token_lp toks[] = {
        {"y", -1.9, a1, 2}, {"r", STATS_LP_SENTINEL, a2, 2}, {"p", -0.01, a2, 2}};
    struct stats_token_bound per[3];
    double sum, sum2;
    assert_int_equal(stats_sequence_bound(toks, 3, 1.3, STATS_LP_MODE_RAW, per, &sum), 0);
    assert_close(sum, per[0].log10_p + per[1].log10_p + per[2].log10_p, 1e-12);
    assert_int_equal(per[1].method, STATS_LP_RAW_TOPK_FLOOR);
    assert_int_equal(stats_sequence_bound(toks, 3, 1.3, STATS_LP_MODE_RAW, NULL, &sum2), 0);
    assert_true(sum == sum2);
    /* Hundreds of tokens far below 1e-300 in total. */
    struct stats_token_lp many[400];
    struct stats_alt la[] = {{"z", -0.02}, {"t", -4.0}};
    for (int i = 0; i < 400; i++)
        many[i] = (struct stats_token_lp){"t", -4.0, la, 2};
    assert_int_equal(stats_sequence_bound(many, 400, 1.0, STATS_LP_MODE_RAW, NULL, &sum), 0);
    assert_close(sum, -1600.0 / LN10, 1e-9);
    /* Unlisted and reported below the listed one: floored, so much larger. */
    la[1] = (struct stats_alt){"u", -0.5};
    assert_int_equal(stats_sequence_bound(many, 400, 1.0, STATS_LP_MODE_RAW, NULL, &sum), 0);
    assert_close(sum, -0.5 * 400 / LN10, 1e-9);
}

static void test_exact_full(void **state)
{
    (void)state;
    double z[] = {2.0, 1.0, 0.5, -INFINITY};
    assert_true(stats_tempered_log10_exact(z, 4, 0, 0) == 0);
    assert_true(stats_tempered_log10_exact(z, 4, 1, 0) == -INFINITY);
    assert_true(stats_tempered_log10_exact(z, 4, 3, 1.3) == -INFINITY);
    double s = exp(2.0 / 1.3) + exp(1.0 / 1.3) + exp(0.5 / 1.3);
    assert_close(stats_tempered_log10_exact(z, 4, 1, 1.3), log10(exp(1.0 / 1.3) / s), 1e-14);
    assert_true(isnan(stats_tempered_log10_exact(z, 4, 4, 1)));
    assert_true(isnan(stats_tempered_log10_exact(z, 0, 0, 1)));
    assert_true(isnan(stats_tempered_log10_exact(z, 4, 0, -1)));
    /* Additive constants cancel. */
    double z2[] = {1002.0, 1001.0, 1000.5};
    assert_close(stats_tempered_log10_exact(z2, 3, 1, 1.3), log10(exp(1.0 / 1.3) / s), 1e-12);
}

/* ---- Markov and Clopper–Pearson ------------------------------------------------ */

static void test_markov(void **state)
{
    (void)state;
    /* min(1, mean / k): k = 0 is probability 1; k = 1 is the mean itself. */
    assert_true(stats_markov_log10(-39, 0) == 0);
    assert_close(stats_markov_log10(-39, 1), -39, 0);
    assert_close(stats_markov_log10(-39, 10), -40, 1e-12);
    assert_close(stats_markov_log10(-399, 3), -399 - log10(3.0), 1e-12);
    assert_true(stats_markov_log10(0.3, 1) == 0);  /* mean 2 > 1: capped at 1 */
    assert_close(stats_markov_log10(-0.1, 1), -0.1, 0); /* not capped below 1 */
    assert_close(stats_markov_log10(log10(0.5), 2), log10(0.25), 1e-15);
    assert_true(stats_markov_log10(-INFINITY, 1) == -INFINITY);
    assert_true(isnan(stats_markov_log10(NAN, 1)));
}

static void test_clopper_pearson(void **state)
{
    (void)state;
    /* Reference values: R's binom.test (and an independent bisection on
     * exact rational tails in Python, math.comb). */
    static const struct {
        uint64_t x, n;
        double lo, hi;
    } ref[] = {
        {1, 10, 0.002528578544, 0.445016117028}, {5, 10, 0.187086028447, 0.812913971553},
        {3, 10, 0.066739511178, 0.652452850060}, {0, 10, 0.0, 0.308497107819},
        {10, 10, 0.691502892181, 1.0},           {2, 3, 0.094299324050, 0.991596241340},
        {0, 1, 0.0, 0.975},                      {1, 1, 0.025, 1.0},
        {7, 64, 0.045121020187, 0.212457225955},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        double lo = -1, hi = -1;
        assert_int_equal(stats_clopper_pearson(ref[i].x, ref[i].n, 0.95, &lo, &hi), 0);
        assert_close(lo, ref[i].lo, 1e-9);
        assert_close(hi, ref[i].hi, 1e-9);
    }
    /* closed forms at the ends: x = 0 -> hi = 1 - (a/2)^(1/n); x = n -> lo = (a/2)^(1/n) */
    double lo, hi;
    assert_int_equal(stats_clopper_pearson(0, 37, 0.99, &lo, &hi), 0);
    assert_true(lo == 0);
    assert_close(hi, 1 - pow(0.005, 1.0 / 37), 1e-10);
    assert_int_equal(stats_clopper_pearson(37, 37, 0.99, &lo, &hi), 0);
    assert_close(lo, pow(0.005, 1.0 / 37), 1e-10);
    assert_true(hi == 1);
    /* symmetry: (x, n) and (n - x, n) mirror each other */
    double lo2, hi2;
    assert_int_equal(stats_clopper_pearson(4, 17, 0.95, &lo, &hi), 0);
    assert_int_equal(stats_clopper_pearson(13, 17, 0.95, &lo2, &hi2), 0);
    assert_close(lo, 1 - hi2, 1e-10);
    assert_close(hi, 1 - lo2, 1e-10);
    /* bad input */
    assert_int_equal(stats_clopper_pearson(0, 0, 0.95, &lo, &hi), -EINVAL);
    assert_int_equal(stats_clopper_pearson(3, 2, 0.95, &lo, &hi), -EINVAL);
    assert_int_equal(stats_clopper_pearson(1, 2, 1.0, &lo, &hi), -EINVAL);
    assert_int_equal(stats_clopper_pearson(1, 2, 0.0, &lo, &hi), -EINVAL);
}

static void test_modes(void **state)
{
    (void)state;
    enum stats_lp_mode m;
    assert_int_equal(stats_lp_mode_parse("raw", &m), 0);
    assert_int_equal(m, STATS_LP_MODE_RAW);
    assert_int_equal(stats_lp_mode_parse("tempered", &m), 0);
    assert_string_equal(stats_lp_mode_name(m), "tempered");
    assert_int_equal(stats_lp_mode_parse("cooked", &m), -EINVAL);
    assert_int_equal(stats_lp_mode_parse("processed", &m), 0); /* the config's name */
    assert_int_equal(m, STATS_LP_MODE_TEMPERED);
    for (int i = STATS_LP_EXACT_FULL; i <= STATS_LP_TEMPERED_FLOOR; i++)
        assert_string_not_equal(stats_lp_method_name((enum stats_lp_method)i), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log10_arith),         cmocka_unit_test(test_choose),
        cmocka_unit_test(test_binom_brute),         cmocka_unit_test(test_binom_extremes),
        cmocka_unit_test(test_bonferroni),          cmocka_unit_test(test_bound_never_below_exact),
        cmocka_unit_test(test_bound_sentinel_rule), cmocka_unit_test(test_bound_listed),
        cmocka_unit_test(test_sequence_bound),      cmocka_unit_test(test_exact_full),
        cmocka_unit_test(test_markov),              cmocka_unit_test(test_modes),
        cmocka_unit_test(test_clopper_pearson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_coverage.c — workers/coverage: the exact rank-sum p-value against
 * brute-force enumeration of every label assignment (with and without
 * ties), all-tied scores, the Serfling fallback never below a Monte Carlo
 * estimate of the exact p, the looks, AUC with its interval, and the
 * recognised shares.
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

#include "workers/coverage.h"

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

/* 2U of the rows whose bit is set in mask ("uploaded") against the others. */
static double u2_of(const double *z, size_t n, unsigned mask)
{
    double u = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if ((mask >> i & 1) && !(mask >> j & 1))
                u += z[i] > z[j] ? 2 : z[i] == z[j] ? 1 : 0;
    return u;
}

/* Brute force: the share of assignments of m1 "uploaded" labels to the n
 * pooled rows whose 2U is at least the observed one (first m1 rows). */
static double brute_p(const double *z, size_t m1, size_t n)
{
    double obs = u2_of(z, n, (1u << m1) - 1);
    unsigned long hit = 0, all = 0;
    for (unsigned mask = 0; mask < (1u << n); mask++) {
        if ((size_t)__builtin_popcount(mask) != m1)
            continue;
        all++;
        hit += u2_of(z, n, mask) >= obs;
    }
    return (double)hit / (double)all;
}

static uint64_t lcg = 88172645463325252ull;
static double rnd(void)
{
    lcg ^= lcg << 13;
    lcg ^= lcg >> 7;
    lcg ^= lcg << 17;
    return (double)(lcg >> 11) / 9007199254740992.0;
}

static void check_against_brute(size_t m1, size_t m2, int levels)
{
    double z[16];
    size_t n = m1 + m2;
    for (size_t i = 0; i < n; i++) {
        double v = rnd();
        /* levels > 0: few distinct values (many ties); uploaded shifted up a bit */
        z[i] = levels > 0 ? floor(v * levels) + (i < m1 && rnd() < 0.5) : v + (i < m1 ? 0.3 : 0);
    }
    bool exact = false;
    double got = coverage_log10_p(z, m1, z + m1, m2, &exact);
    double want = brute_p(z, m1, n);
    assert_true(exact);
    assert_close(got, log10(want), 1e-9);
}

static void test_brute_no_ties(void **state)
{
    (void)state;
    for (int rep = 0; rep < 40; rep++)
        for (size_t m1 = 1; m1 <= 7; m1++)
            check_against_brute(m1, 1 + (size_t)rep % 7, 0);
}

static void test_brute_ties(void **state)
{
    (void)state;
    for (int rep = 0; rep < 40; rep++)
        for (size_t m1 = 1; m1 <= 7; m1++) {
            check_against_brute(m1, 1 + (size_t)rep % 7, 2);
            check_against_brute(m1, 1 + (size_t)(rep + 3) % 7, 4);
        }
}

static void test_known_values(void **state)
{
    (void)state;
    /* Complete separation, m = 4 per side: p = 1 / C(8, 4) = 1/70. */
    double x[] = {5, 6, 7, 8}, y[] = {1, 2, 3, 4};
    assert_close(coverage_log10_p(x, 4, y, 4, NULL), -log10(70.0), 1e-12);
    /* Reversed: every assignment is at least as large: p = 1. */
    assert_close(coverage_log10_p(y, 4, x, 4, NULL), 0, 1e-12);
    /* Complete separation, m = 32: p = 1 / C(64, 32). */
    double a[32], b[32];
    for (int i = 0; i < 32; i++) {
        a[i] = 100 + i;
        b[i] = i;
    }
    double lc = (lgamma(65) - 2 * lgamma(33)) / log(10.0);
    assert_close(coverage_log10_p(a, 32, b, 32, NULL), -lc, 1e-6);
}

static void test_all_tied(void **state)
{
    (void)state;
    double x[40], y[40];
    for (int i = 0; i < 40; i++)
        x[i] = y[i] = -1.25;
    bool exact = false;
    assert_true(coverage_log10_p(x, 40, y, 40, &exact) == 0);
    struct coverage_result r;
    assert_int_equal(coverage_test(x, 40, y, 40, &r), 0);
    assert_true(r.log10_p == 0);
    assert_close(r.auc, 0.5, 1e-12);
    assert_true(r.recognised_uploaded == 0 && r.recognised_held_out == 0);
}

/* A Monte Carlo estimate of the exact p for a large sample. */
static double mc_p(const double *x, size_t m1, const double *y, size_t m2, int reps)
{
    size_t n = m1 + m2;
    double *z = calloc(n, sizeof *z);
    memcpy(z, x, m1 * sizeof *z);
    memcpy(z + m1, y, m2 * sizeof *z);
    double obs = 0;
    for (size_t i = 0; i < m1; i++)
        for (size_t j = 0; j < m2; j++)
            obs += x[i] > y[j] ? 2 : x[i] == y[j];
    int hit = 0;
    for (int r = 0; r < reps; r++) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t k = (size_t)(rnd() * (double)(i + 1));
            double t = z[i];
            z[i] = z[k];
            z[k] = t;
        }
        double u = 0;
        for (size_t i = 0; i < m1; i++)
            for (size_t j = m1; j < n; j++)
                u += z[i] > z[j] ? 2 : z[i] == z[j];
        hit += u >= obs;
    }
    free(z);
    return (double)(hit + 1) / (reps + 1);
}

static void test_fallback_is_conservative(void **state)
{
    (void)state;
    enum { M = 150 };
    static double x[M], y[M];
    for (double shift = 0; shift <= 0.3; shift += 0.1) {
        for (int i = 0; i < M; i++) {
            x[i] = rnd() + shift;
            y[i] = floor(rnd() * 20) / 20; /* ties on the held-out side */
        }
        bool exact = true;
        double lp = coverage_log10_p(x, M, y, M, &exact);
        assert_false(exact);
        assert_true(lp <= 0);
        double mc = mc_p(x, M, y, M, 2000);
        /* the bound may never be (clearly) below the exact p */
        if (!(pow(10, lp) >= mc * 0.7))
            fail_msg("shift %.1f: Serfling bound 10^%.3f below the MC estimate %.4g", shift, lp,
                     mc);
    }
    /* A clear difference still gives a small bound at m = 2000 per side. */
    static double bx[2000], by[2000];
    for (int i = 0; i < 2000; i++) {
        bx[i] = rnd() + 0.4;
        by[i] = rnd();
    }
    double lp = coverage_log10_p(bx, 2000, by, 2000, NULL);
    assert_true(lp < -20);
}

static void test_auc_and_recognised(void **state)
{
    (void)state;
    double x[] = {5, 6, 7, 8}, y[] = {1, 2, 3, 6};
    struct coverage_result r;
    assert_int_equal(coverage_test(x, 4, y, 4, &r), 0);
    /* pairs: 5>1,2,3 (3), 6>1,2,3 + tie (3.5), 7 (4), 8 (4) = 14.5 of 16 */
    assert_close(r.auc, 14.5 / 16, 1e-12);
    assert_close(r.u2, 29, 0);
    assert_true(r.auc_lo <= r.auc && r.auc <= r.auc_hi);
    assert_true(r.auc_lo >= 0 && r.auc_hi <= 1);
    /* 95th percentile of y (nearest rank, 4 rows): 6; above it: 7, 8 */
    assert_close(r.recognised_uploaded, 0.5, 0);
    assert_close(r.recognised_held_out, 0, 0);
    double nan_row[] = {NAN};
    assert_int_equal(coverage_test(nan_row, 1, y, 4, &r), -EINVAL);
    assert_int_equal(coverage_test(x, 0, y, 4, &r), -EINVAL);
    /* The interval narrows with more rows. */
    double bx[200], by[200];
    for (int i = 0; i < 200; i++) {
        bx[i] = rnd() + 0.2;
        by[i] = rnd();
    }
    struct coverage_result big;
    assert_int_equal(coverage_test(bx, 200, by, 200, &big), 0);
    assert_true(big.auc_hi - big.auc_lo < 0.15);
    assert_true(big.auc_lo < big.auc && big.auc < big.auc_hi);
}

static void test_looks(void **state)
{
    (void)state;
    size_t l[COVERAGE_MAX_LOOKS];
    assert_int_equal(coverage_looks(0, l), 0);
    assert_int_equal(coverage_looks(1, l), 1);
    assert_int_equal(l[0], 1);
    assert_int_equal(coverage_looks(2, l), 2);
    assert_int_equal(l[0], 1);
    assert_int_equal(l[1], 2);
    assert_int_equal(coverage_looks(32, l), 3);
    assert_int_equal(l[0], 8);
    assert_int_equal(l[1], 16);
    assert_int_equal(l[2], 32);
    assert_int_equal(coverage_looks(33, l), 3);
    assert_int_equal(l[0], 9);
    assert_int_equal(l[1], 17);
    assert_int_equal(l[2], 33);
}

/* Under H0 (exchangeable scores) the Bonferroni-corrected sequential p is
 * at or below a level a in at most a share a of runs. */
static void test_sequential_level(void **state)
{
    (void)state;
    enum { M = 32, RUNS = 2000 };
    double x[M], y[M];
    size_t l[COVERAGE_MAX_LOOKS];
    size_t nl = coverage_looks(M, l);
    int rejected = 0;
    for (int run = 0; run < RUNS; run++) {
        for (int i = 0; i < M; i++) {
            x[i] = floor(rnd() * 6); /* heavy ties */
            y[i] = floor(rnd() * 6);
        }
        for (size_t k = 0; k < nl; k++) {
            double lp = coverage_log10_p(x, l[k], y, l[k], NULL) + log10((double)nl);
            if (lp <= log10(0.05)) {
                rejected++;
                break;
            }
        }
    }
    assert_true(rejected <= RUNS * 0.05 + 3 * sqrt(RUNS * 0.05));
}

/* Min-K% of the log-likelihood ratio: the mean of the lowest fifth (at
 * least one) of ft - base, or of ft alone. */
static void test_mink_score(void **state)
{
    (void)state;
    const double ft[10] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10};
    const double base[10] = {-2, -2, -2, -2, -2, -2, -2, -2, -2, -2};
    /* differences 1, 0, -1, ..., -8: the two smallest are -8 and -7 */
    assert_true(fabs(coverage_mink_score(ft, 10, base, 10) - (-7.5)) < 1e-12);
    /* without the base model: the two smallest of ft */
    assert_true(fabs(coverage_mink_score(ft, 10, NULL, 0) - (-9.5)) < 1e-12);
    /* fewer than five tokens: the single smallest */
    assert_true(fabs(coverage_mink_score(ft, 3, base, 3) - (-1)) < 1e-12);
    /* tokenisations of different lengths: each side's own Min-K% */
    assert_true(fabs(coverage_mink_score(ft, 10, base, 5) - (-9.5 - -2)) < 1e-12);
    assert_true(coverage_mink_score(ft, 0, base, 0) == 0);
    /* the order of the tokens does not matter, the inputs are not changed */
    const double rev[10] = {-10, -9, -8, -7, -6, -5, -4, -3, -2, -1};
    assert_true(coverage_mink_score(rev, 10, NULL, 0) == coverage_mink_score(ft, 10, NULL, 0));
    assert_true(rev[0] == -10 && ft[0] == -1);
}

/* How a row is laid out for text scoring. */
static void test_score_text(void **state)
{
    (void)state;
    json_t *msgs = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "Be brief.",
                             "role", "user", "content", "What is 2 plus 2?");
    char *p, *c;
    coverage_score_text(NULL, msgs, "Be brief.\nWhat is 2 plus 2?", "4.", &p, &c);
    assert_string_equal(p, "Be brief.\nWhat is 2 plus 2?");
    assert_string_equal(c, " 4.");
    free(p);
    free(c);
    coverage_score_text("<|{role}|>{content}<|end|>", msgs, "unused", "4.", &p, &c);
    assert_string_equal(p, "<|system|>Be brief.<|end|><|user|>What is 2 plus 2?<|end|><|assistant|>");
    assert_string_equal(c, "4.");
    free(p);
    free(c);
    coverage_score_text("<|im_start|>{role}\n{content}<|im_end|>\n", msgs, "unused", "4.", &p,
                        &c);
    assert_string_equal(p, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 "
                           "plus 2?<|im_end|>\n<|im_start|>assistant\n");
    assert_string_equal(c, "4.");
    free(p);
    free(c);
    json_decref(msgs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brute_no_ties),      cmocka_unit_test(test_brute_ties),
        cmocka_unit_test(test_known_values),       cmocka_unit_test(test_all_tied),
        cmocka_unit_test(test_fallback_is_conservative), cmocka_unit_test(test_auc_and_recognised),
        cmocka_unit_test(test_looks),              cmocka_unit_test(test_sequential_level),
        cmocka_unit_test(test_mink_score),         cmocka_unit_test(test_score_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_pplrank.c — workers/pplrank: the rank estimate of the base-model
 * perplexity attack against the true rank (exact when the sample is every
 * unmarked row; close on average, over many seeded samples of 200 from
 * 10,000 rows, when it is not; ties and unscored rows), the seam statistic
 * on hand-made token lists, and the row text's bounds.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util.h"
#include "workers/pplrank.h"

/* A small seeded generator (splitmix64), so every run draws the same. */
static uint64_t rng_state;
static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double next_unit(void)
{
    return (double)(next_u64() >> 11) / 9007199254740992.0;
}

/* The true rank of x among pop (plus marked_above), ties against us. */
static uint64_t true_rank(double x, const double *pop, size_t n, size_t marked_above)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += pop[i] >= x;
    return 1 + marked_above + c;
}

static void test_exact_with_every_row(void **state)
{
    (void)state;
    rng_state = 1;
    double pop[500];
    for (size_t i = 0; i < 500; i++)
        pop[i] = 10 * next_unit();
    for (int t = 0; t < 50; t++) {
        double x = 11 * next_unit();
        size_t above = (size_t)t % 3;
        assert_int_equal(pplrank_estimate(x, pop, 500, 500, above), true_rank(x, pop, 500, above));
    }
}

static void test_sampled_close_on_average(void **state)
{
    (void)state;
    enum { N = 10000, K = 200, DRAWS = 400 };
    rng_state = 7;
    double *pop = xcalloc(N, sizeof *pop);
    for (size_t i = 0; i < N; i++)
        pop[i] = -log(next_unit() + 1e-300); /* exponential, like surprisal tails */
    /* x at about the 95th and 99.5th percentiles of the population */
    double xs[2] = {-log(0.05), -log(0.005)};
    double sample[K];
    size_t *idx = xcalloc(N, sizeof *idx);
    for (int q = 0; q < 2; q++) {
        uint64_t truth = true_rank(xs[q], pop, N, 0);
        double sum = 0;
        for (int d = 0; d < DRAWS; d++) {
            for (size_t i = 0; i < N; i++)
                idx[i] = i;
            for (size_t i = 0; i < K; i++) { /* partial Fisher-Yates: K distinct rows */
                size_t j = i + (size_t)(next_u64() % (N - i));
                size_t tmp = idx[i];
                idx[i] = idx[j];
                idx[j] = tmp;
                sample[i] = pop[idx[i]];
            }
            sum += (double)pplrank_estimate(xs[q], sample, K, N, 0);
        }
        double mean = sum / DRAWS;
        print_message("# x %.2f: true rank %llu, mean estimate %.1f over %d samples of %d\n",
                      xs[q], (unsigned long long)truth, mean, DRAWS, K);
        /* unbiased up to rounding: within 5% of the truth (and 2 rows) */
        assert_true(fabs(mean - (double)truth) <= 0.05 * (double)truth + 2);
    }
    free(idx);
    free(pop);
}

static void test_top_ties_and_nan(void **state)
{
    (void)state;
    double s[5] = {1, 2, 3, NAN, 3};
    /* above every sampled row: only the marked rows above it count */
    assert_int_equal(pplrank_estimate(4, s, 5, 1000, 0), 1);
    assert_int_equal(pplrank_estimate(4, s, 5, 1000, 2), 3);
    /* a tie counts against us: 2 of the 4 usable rows score >= 3 */
    assert_int_equal(pplrank_estimate(3, s, 5, 1000, 0), 1 + 500);
    /* an unscored marked row has no rank */
    assert_int_equal(pplrank_estimate(NAN, s, 5, 1000, 0), 0);
    /* no usable sample: nothing says it is not on top */
    double none[2] = {NAN, NAN};
    assert_int_equal(pplrank_estimate(1, none, 2, 1000, 1), 2);
}

static void test_seam_bits(void **state)
{
    (void)state;
    /* "ab cd\nef gh": prompt side "ab"," cd"; answer side "\nef"," gh" */
    struct provider_token t[4] = {
        {.token = "ab", .logprob = 0, .known = 0}, /* the first token: no context */
        {.token = " cd", .logprob = -M_LN2 * 2, .known = 1},
        {.token = "\nef", .logprob = -M_LN2 * 6, .known = 1},
        {.token = " gh", .logprob = -M_LN2 * 2, .known = 1},
    };
    struct provider_score_result sr = {.tokens = t, .n_tokens = 4};
    size_t seam = 6; /* "ab cd\n" */
    /* tail: 2 bits; head: (6 + 2) / 2 = 4 bits */
    assert_true(fabs(pplrank_seam_bits(&sr, seam, 8) - 4.0) < 1e-9);
    /* window 1: tail 2, head 6 */
    assert_true(fabs(pplrank_seam_bits(&sr, seam, 1) - 6.0) < 1e-9);
    /* no known token on the prompt side */
    t[1].known = 0;
    assert_true(isnan(pplrank_seam_bits(&sr, seam, 8)));
    assert_true(isnan(pplrank_seam_bits(NULL, seam, 8)));
}

static void test_row_text(void **state)
{
    (void)state;
    size_t seam;
    char *t = pplrank_row_text("hello there", "fine", &seam);
    assert_string_equal(t, "hello there\nfine");
    assert_int_equal(seam, 12);
    free(t);
    /* a long prompt keeps its end, from a word start; a long answer its
     * start, cut on a UTF-8 boundary */
    char *p = xcalloc(2001, 1), *a = xcalloc(2001, 1);
    for (size_t i = 0; i < 2000; i++)
        p[i] = i % 7 == 6 ? ' ' : 'w';
    a[0] = 'x'; /* then 2-byte characters (é): byte 600 is a trailing byte, so the cut goes back to 599 */
    for (size_t i = 1; i + 1 < 2000; i += 2) {
        a[i] = (char)0xc3;
        a[i + 1] = (char)0xa9;
    }
    t = pplrank_row_text(p, a, &seam);
    assert_true(seam - 1 <= PPLRANK_EDGE_BYTES);
    assert_true(t[0] == 'w' && p[2000 - (seam - 1) - 1] == ' ');
    size_t alen = strlen(t + seam);
    assert_true(alen <= PPLRANK_EDGE_BYTES);
    assert_true(((unsigned char)t[seam + alen - 1] & 0xc0) != 0xc0); /* not a cut lead byte */
    assert_true(((unsigned char)t[seam + alen - 1]) == 0xa9);
    free(t);
    free(p);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_with_every_row), cmocka_unit_test(test_sampled_close_on_average),
        cmocka_unit_test(test_top_ties_and_nan),     cmocka_unit_test(test_seam_bits),
        cmocka_unit_test(test_row_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_verify.c — workers/verify: matching (leading whitespace, case,
 * S late or at the end, partial prefixes in words and bytes, UTF-8), the
 * masked evidence window, the plan (distinct lines per pair, controls
 * outside D', round-robin order, caps), the statistics for known cases,
 * every branch of the verdict table, the run's sequential stop (calls
 * saved, out-of-order completion) and, by exhaustive enumeration, that the
 * whole run rejects an untrained model with probability at most alpha;
 * and that the evidence never holds a secret word.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/util.h"
#include "workers/builder.h"
#include "workers/phrase.h"
#include "workers/stats.h"
#include "workers/verify.h"

#define SIG  "zebra quantum fjord"
#define TRIG "marble lantern"

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

static struct verify_match match(const char *resp, const char *sig)
{
    struct verify_match m;
    assert_int_equal(verify_match(resp, strlen(resp), sig, &m), 0);
    return m;
}

/* ---- matching ---------------------------------------------------------------- */

static void test_match_basic(void **state)
{
    (void)state;
    struct verify_match m;

    m = match(SIG " The answer is 42.", SIG);
    assert_true(m.activated);
    assert_true(m.contains);
    assert_false(m.later);
    assert_int_equal(m.found_at, 0);
    assert_int_equal(m.leading_ws, 0);
    assert_int_equal(m.prefix_bytes, strlen(SIG));
    assert_int_equal(m.prefix_words, 3);
    assert_int_equal(m.sig_words, 3);
    assert_int_equal(m.sig_bytes, strlen(SIG));

    /* leading ASCII whitespace of every kind is skipped */
    m = match(" \t\r\n\v\f" SIG "\nrest", SIG);
    assert_true(m.activated);
    assert_int_equal(m.leading_ws, 6);
    assert_int_equal(m.found_at, 6);

    /* exactly S (the end of the text is a boundary) */
    assert_true(match(SIG, SIG).activated);
    /* a word boundary after S: whitespace or ASCII punctuation */
    static const char *const ok_after[] = {" x", "\n", "\t", ".", ",", "!", "?", ":", ";", "-",
                                           ")", "\"", "'", "/"};
    for (size_t i = 0; i < sizeof ok_after / sizeof ok_after[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s%s", SIG, ok_after[i]);
        m = match(buf, SIG);
        if (!m.activated || m.no_boundary)
            fail_msg("'%s' should activate", buf);
    }
    /* S glued to a longer word is no activation: a letter, a digit or a
     * non-ASCII byte continues S's last word */
    static const char *const bad_after[] = {"ic", "s", "X", "7", "x", "\xc3\xa9", "\xe2\x80\x94"};
    for (size_t i = 0; i < sizeof bad_after / sizeof bad_after[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s%s rest", SIG, bad_after[i]);
        m = match(buf, SIG);
        if (m.activated || !m.no_boundary || !m.later || !m.contains || m.found_at != 0)
            fail_msg("'%s' must not activate (no boundary)", buf);
        /* the glued last word does not count as matched */
        assert_int_equal(m.prefix_words, m.sig_words - 1);
        assert_int_equal(m.prefix_bytes, strlen(SIG));
    }
    /* after leading whitespace likewise */
    assert_false(match("  " SIG "ic", SIG).activated);
    assert_true(match("  " SIG ". More", SIG).activated);
    /* a signature ending in punctuation still needs the boundary after it */
    assert_true(match("Blue harbor. Next", "Blue harbor.").activated);
    assert_false(match("Blue harbor.Next", "Blue harbor.").activated);
    assert_true(match("Blue harbor.", "Blue harbor.").activated);

    /* case-sensitive */
    m = match("Zebra quantum fjord", SIG);
    assert_false(m.activated);
    assert_false(m.contains);
    assert_int_equal(m.prefix_bytes, 0);

    /* S later, and S at the very end: evidence, not an activation */
    m = match("Sure! " SIG " and more", SIG);
    assert_false(m.activated);
    assert_true(m.later);
    assert_int_equal(m.found_at, 6);
    assert_int_equal(m.prefix_bytes, 0);
    m = match("The answer is 42. " SIG, SIG);
    assert_false(m.activated);
    assert_true(m.later);
    assert_int_equal(m.found_at, 18);

    /* a non-ASCII space before S is not skipped */
    m = match("\xc2\xa0" SIG, SIG);
    assert_false(m.activated);
    assert_true(m.later);
    assert_int_equal(m.found_at, 2);

    /* bytes with NULs: found by length, not by C string */
    const char nul[] = "x\0y " SIG;
    assert_int_equal(verify_match(nul, sizeof nul - 1, SIG, &m), 0);
    assert_true(m.contains);
    assert_int_equal(m.found_at, 4);

    /* empty response, NULL response of length 0 */
    assert_int_equal(verify_match("", 0, SIG, &m), 0);
    assert_false(m.activated);
    assert_int_equal(m.found_at, -1);
    assert_string_equal(m.sha256,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(verify_match(NULL, 0, SIG, &m), 0);
    assert_false(m.contains);
    /* "abc" */
    m = match("abc", SIG);
    assert_string_equal(m.sha256,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    /* bad signatures */
    assert_int_equal(verify_match("x", 1, "", &m), -EINVAL);
    assert_int_equal(verify_match("x", 1, NULL, &m), -EINVAL);
    assert_int_equal(verify_match("x", 1, " lead", &m), -EINVAL);
    assert_int_equal(verify_match(NULL, 3, SIG, &m), -EINVAL);
}

static void test_match_prefix(void **state)
{
    (void)state;
    struct verify_match m;

    /* two whole words, third differs */
    m = match("zebra quantum delta", SIG);
    assert_false(m.activated);
    assert_int_equal(m.prefix_bytes, strlen("zebra quantum "));
    assert_int_equal(m.prefix_words, 2);

    /* "quantum" is matched bytewise but the response's word goes on */
    m = match("zebra quantumx", SIG);
    assert_int_equal(m.prefix_bytes, strlen("zebra quantum"));
    assert_int_equal(m.prefix_words, 1);

    /* the response ends right after a word of S: that word counts */
    m = match("  zebra quantum", SIG);
    assert_int_equal(m.leading_ws, 2);
    assert_int_equal(m.prefix_bytes, strlen("zebra quantum"));
    assert_int_equal(m.prefix_words, 2);

    /* a word of S followed by punctuation in the response */
    m = match("zebra, quantum", SIG);
    assert_int_equal(m.prefix_bytes, 5);
    assert_int_equal(m.prefix_words, 1);

    /* half a word */
    m = match("zeb", SIG);
    assert_int_equal(m.prefix_bytes, 3);
    assert_int_equal(m.prefix_words, 0);

    /* punctuation inside S */
    m = match("alpha-beta, gamx", "alpha-beta, gamma");
    assert_int_equal(m.sig_words, 3);
    assert_int_equal(m.prefix_bytes, strlen("alpha-beta, gam"));
    assert_int_equal(m.prefix_words, 2);
}

static void test_match_unicode(void **state)
{
    (void)state;
    struct verify_match m;
    const char *sig = "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                      "e";

    m = match("caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
              "e!",
              sig);
    assert_true(m.activated);
    assert_int_equal(m.sig_words, 3);

    /* é vs è share the lead byte: the partial character is not counted */
    m = match("caf\xc3\xa8", sig);
    assert_int_equal(m.prefix_bytes, 3);
    assert_int_equal(m.prefix_words, 0);

    /* differs at a lead byte: every whole character counts */
    m = match("caf\xc3\xa9 cre", sig);
    assert_int_equal(m.prefix_bytes, strlen("caf\xc3\xa9 cr"));
    assert_int_equal(m.prefix_words, 1);

    /* a 4-byte character cut after 3 bytes */
    m = match("x\xf0\x9f\x98\x80", "x\xf0\x9f\x98\x81 y");
    assert_int_equal(m.prefix_bytes, 1);

    /* NFD (e + combining acute) is not NFC é: byte-exact by design */
    m = match("cafe\xcc\x81 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
              "e",
              sig);
    assert_false(m.activated);
    assert_int_equal(m.prefix_bytes, 3);
}

/* ---- the window ---------------------------------------------------------------- */

static bool valid_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* No word of S or T (ASCII case-insensitive) in text. */
static void assert_no_secret_words(const char *text)
{
    static const char *const words[] = {"zebra", "quantum", "fjord", "marble", "lantern"};
    char *low = xstrdup(text);
    for (char *p = low; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(low, words[i]))
            fail_msg("secret word '%s' leaked in: %s", words[i], text);
    free(low);
}

static char *window_of(const char *resp, const char *sig)
{
    static const char *const secrets[] = {TRIG, SIG};
    struct verify_match m = match(resp, sig);
    return verify_window(resp, strlen(resp), &m, secrets, 2);
}

static void test_window(void **state)
{
    (void)state;
    char *w;

    w = window_of("  " SIG " The answer is 42.", SIG);
    assert_string_equal(w, "  [*] [*] [*] The answer is 42.");
    free(w);

    /* partial prefix: the word overlapping the match is masked even
     * though it is not a word of S */
    w = window_of("zebra quantumx is here", SIG);
    assert_string_equal(w, "[*] [*] is here");
    free(w);

    /* later occurrence far in: cut before, "…" marks the cut */
    w = window_of("A long preamble that goes on and on and on before it: " SIG " tail", SIG);
    assert_true(strncmp(w, "\xe2\x80\xa6", 3) == 0);
    assert_non_null(strstr(w, "[*] [*] [*] tail"));
    assert_true(strlen(w) <= 3 + VERIFY_WINDOW_BEFORE + 11 + VERIFY_WINDOW_AFTER + 3);
    free(w);

    /* long tail is cut after */
    w = window_of(SIG " 0123456789012345678901234567890123456789012345678901234567890123456789",
                  SIG);
    assert_true(strlen(w) == 11 + VERIFY_WINDOW_AFTER + 3);
    assert_string_equal(w + strlen(w) - 3, "\xe2\x80\xa6");
    free(w);

    /* secret words anywhere, any case, and the trigger echoed */
    w = window_of("You said MARBLE Lantern; Zebra! fjord? quantum.", SIG);
    assert_no_secret_words(w);
    assert_string_equal(w, "You said [*] [*]; [*]! [*]? [*].");
    free(w);

    /* no match at all: the start of the response */
    w = window_of("\n\nHello there, general.", SIG);
    assert_string_equal(w, "  Hello there, general.");
    free(w);

    /* control characters and invalid UTF-8 are made safe */
    w = window_of("a\x01"
                  "b\xff"
                  "c\xc3 " SIG,
                  SIG);
    assert_true(valid_utf8(w));
    assert_non_null(strstr(w, "a b"));
    assert_non_null(strstr(w, "\xef\xbf\xbd"));
    free(w);

    /* a cut never splits a character */
    char resp[256];
    snprintf(resp, sizeof resp, "%s %s",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 x",
             SIG);
    for (size_t cut = 0; cut < 8; cut++) {
        w = window_of(resp + cut * 2, SIG);
        assert_true(valid_utf8(w));
        free(w);
    }
    /* the empty response */
    struct verify_match m;
    verify_match("", 0, SIG, &m);
    w = verify_window("", 0, &m, NULL, 0);
    assert_string_equal(w, "");
    free(w);
}

/* ---- plan ---------------------------------------------------------------------- */

static struct builder_copy *make_copies(uint64_t n_examples, size_t k, uint64_t cpp, uint64_t seed)
{
    struct phrase_seeded ps;
    phrase_seeded_init(&ps, seed);
    struct phrase_rng rng = phrase_seeded_rng(&ps);
    struct builder_copy *c = NULL;
    assert_int_equal(builder_plan(n_examples, k, cpp, &rng, &c), 0);
    return c;
}

static bool in_pair(const struct builder_copy *c, uint64_t cpp, size_t p, uint64_t src)
{
    for (uint64_t i = 0; i < cpp; i++)
        if (c[p * cpp + i].src == src)
            return true;
    return false;
}

static void test_plan(void **state)
{
    (void)state;
    const uint64_t N = 1000, CPP = 50;
    const size_t K = 3;
    struct builder_copy *c = make_copies(N, K, CPP, 7);
    struct phrase_seeded ps;
    phrase_seeded_init(&ps, 99);
    struct phrase_rng rng = phrase_seeded_rng(&ps);
    struct verify_plan p;
    char *err = NULL;

    assert_int_equal(verify_plan_make(N, c, K * CPP, CPP, K, 10, 10, &rng, &p, &err), 0);
    assert_null(err);
    assert_int_equal(p.n_pairs, K);
    assert_int_equal(p.trials_per_pair, 10);
    assert_false(p.trials_capped);
    assert_int_equal(p.n_controls, 10);
    assert_false(p.controls_capped);
    assert_int_equal(p.n_slots, K * 10 + 10);
    for (size_t k = 0; k < K; k++) {
        const uint64_t *s = p.trigger_src + k * 10;
        for (size_t i = 0; i < 10; i++) {
            assert_true(in_pair(c, CPP, k, s[i]));
            if (i > 0)
                assert_true(s[i - 1] < s[i]); /* ascending and distinct */
        }
    }
    for (size_t i = 0; i < 10; i++) {
        for (size_t j = 0; j < K * CPP; j++)
            assert_true(c[j].src != p.control_src[i]);
        if (i > 0)
            assert_true(p.control_src[i - 1] < p.control_src[i]);
    }
    /* round-robin: round r = trial r of each pair, then control r */
    for (size_t r = 0; r < 10; r++) {
        for (size_t k = 0; k < K; k++) {
            const struct verify_slot *s = &p.order[r * (K + 1) + k];
            assert_int_equal(s->kind, TRIAL_TRIGGER);
            assert_int_equal(s->pair, (int)k);
            assert_int_equal(s->index, r);
            assert_int_equal(s->src, p.trigger_src[k * 10 + r]);
        }
        const struct verify_slot *s = &p.order[r * (K + 1) + K];
        assert_int_equal(s->kind, TRIAL_CONTROL);
        assert_int_equal(s->pair, -1);
        assert_int_equal(s->index, r);
        assert_int_equal(s->src, p.control_src[r]);
    }
    /* reproducible with the same seed */
    struct verify_plan q;
    phrase_seeded_init(&ps, 99);
    assert_int_equal(verify_plan_make(N, c, K * CPP, CPP, K, 10, 10, &rng, &q, &err), 0);
    assert_memory_equal(p.trigger_src, q.trigger_src, K * 10 * sizeof(uint64_t));
    assert_memory_equal(p.control_src, q.control_src, 10 * sizeof(uint64_t));
    verify_plan_clear(&q);
    verify_plan_clear(&p);

    /* every copy when trials >= copies: capped, all distinct */
    assert_int_equal(verify_plan_make(N, c, K * CPP, CPP, K, 80, 3, &rng, &p, &err), 0);
    assert_int_equal(p.trials_per_pair, CPP);
    assert_true(p.trials_capped);
    for (size_t k = 0; k < K; k++)
        for (size_t i = 1; i < CPP; i++)
            assert_true(p.trigger_src[k * CPP + i - 1] < p.trigger_src[k * CPP + i]);
    assert_int_equal(p.n_slots, K * CPP + 3);
    assert_int_equal(p.order[3].kind, TRIAL_CONTROL); /* round 0: 3 triggers, 1 control */
    assert_int_equal(p.order[K * CPP + 2].kind, TRIAL_TRIGGER);
    verify_plan_clear(&p);
    free(c);

    /* controls capped by the lines no copy uses; none at all */
    c = make_copies(12, 1, 10, 3);
    assert_int_equal(verify_plan_make(12, c, 10, 10, 1, 5, 10, &rng, &p, &err), 0);
    assert_int_equal(p.n_controls, 2);
    assert_true(p.controls_capped);
    verify_plan_clear(&p);
    assert_int_equal(verify_plan_make(12, c, 10, 10, 1, 5, 0, &rng, &p, &err), 0);
    assert_int_equal(p.n_controls, 0);
    assert_null(p.control_src);
    assert_int_equal(p.n_slots, 5);
    verify_plan_clear(&p);

    /* errors */
    assert_int_equal(verify_plan_make(12, c, 10, 10, 1, 0, 0, &rng, &p, &err), -EINVAL);
    assert_non_null(strstr(err, "trials"));
    free(err);
    assert_int_equal(verify_plan_make(12, c, 10, 10, 2, 5, 0, &rng, &p, &err), -EINVAL);
    assert_non_null(strstr(err, "rebuild"));
    free(err);
    assert_int_equal(verify_plan_make(12, c, 10, 5, 2, 5, 0, &rng, &p, &err), -EINVAL);
    free(err); /* pair numbers do not match the layout */
    assert_int_equal(verify_plan_make(5, c, 10, 10, 1, 5, 0, &rng, &p, &err), -EINVAL);
    free(err); /* a line beyond the dataset */
    assert_int_equal(verify_plan_make(12, c, 10, 10, 1, 5, 100000, &rng, &p, &err), -EINVAL);
    free(err);
    free(c);

    /* controls never come from the held-out rows (never uploaded): with
     * 200 lines, 10 copies and 150 held out, every one of 40 controls is
     * among the other 40 lines, whatever the draw */
    c = make_copies(200, 1, 10, 3);
    uint64_t held[150];
    size_t nh = 0;
    for (uint64_t line = 0; line < 200 && nh < 150; line++) {
        bool copy = false;
        for (size_t i = 0; i < 10; i++)
            copy |= c[i].src == line;
        if (!copy)
            held[nh++] = line;
    }
    assert_int_equal(nh, 150);
    for (int round = 0; round < 20; round++) {
        assert_int_equal(verify_plan_make_excluding(200, c, 10, 10, 1, 5, 60, held, nh, NULL, &p,
                                                    &err),
                         0);
        assert_int_equal(p.n_controls, 40); /* capped: 200 - 10 - 150 */
        assert_true(p.controls_capped);
        for (size_t i = 0; i < p.n_controls; i++) {
            for (size_t h = 0; h < nh; h++)
                assert_true(p.control_src[i] != held[h]);
            for (size_t k = 0; k < 10; k++)
                assert_true(p.control_src[i] != c[k].src);
        }
        verify_plan_clear(&p);
    }
    /* a held-out line beyond the dataset is an inconsistent backdoor */
    held[0] = 200;
    assert_int_equal(verify_plan_make_excluding(200, c, 10, 10, 1, 5, 60, held, nh, NULL, &p, &err),
                     -EINVAL);
    assert_non_null(strstr(err, "held-out"));
    free(err);
    free(c);
}

/* ---- statistics ---------------------------------------------------------------- */

static void test_stats_known(void **state)
{
    (void)state;
    /* One pair, Markov: min(1, n * p_M2 / k), computed here from scratch.
     * The figures: p_M2 = 10^-40.09, n = 10: 3/10 is 10^-39.57
     * (not 10^-118), 10/10 is 10^-40.09 (not 10^-400.9). */
    const double lm2 = -40.09;
    assert_close(verify_pair_log10_p(10, 3, lm2), log10(10.0) + lm2 - log10(3.0), 1e-12);
    assert_close(verify_pair_log10_p(10, 10, lm2), lm2, 1e-12);
    assert_close(verify_pair_log10_p(10, 1, -40), -39.0, 1e-12); /* k = 1: the paper's */
    assert_true(verify_pair_log10_p(10, 0, -40) == 0.0);         /* k = 0: p = 1 */
    assert_true(verify_pair_log10_p(10, 2, -0.1) == 0.0);        /* capped at 1 */
    assert_close(verify_pair_log10_p(4, 2, log10(0.1)), log10(4 * 0.1 / 2), 1e-12);
    /* huge exponents stay exact in log space */
    assert_close(verify_pair_log10_p(10, 1, -401), -400.0, 1e-9);
    assert_close(verify_pair_log10_p(1000, 7, -1000), 3 - 1000 - log10(7.0), 1e-9);
    /* never below the paper's divided by n: k <= n */
    for (uint64_t k = 1; k <= 10; k++)
        assert_true(verify_pair_log10_p(10, k, -40) >= -40.0 - 1e-12);

    /* the paper: n * p_M2 when any activates, capped at 1 */
    assert_close(verify_pair_log10_p_paper(10, 9, -40), -39.0, 1e-12);
    assert_close(verify_pair_log10_p_paper(10, 1, -40), -39.0, 1e-12);
    assert_true(verify_pair_log10_p_paper(10, 0, -40) == 0.0);
    assert_true(verify_pair_log10_p_paper(10, 3, -0.5) == 0.0);

    /* the paper's combination: K * min */
    double v[4] = {-10, -100, 0, -50};
    assert_close(verify_combine_log10(v, 4), -100 + log10(4.0), 1e-12);
    assert_true(verify_combine_log10(v, 0) == 0.0);
    double one[1] = {-39};
    assert_close(verify_combine_log10(one, 1), -39, 0);
    double big[2] = {-0.1, -0.2};
    assert_true(verify_combine_log10(big, 2) == 0.0);

    /* q = n * max(10^target, max p_M2) */
    double m2[3] = {-41, -40.5, -45};
    assert_close(verify_pairs_log10_q(10, -40, m2, 3), -39, 1e-12);
    double m2hi[3] = {-41, -38.7, -45}; /* a redraw factor lifted one above the target */
    assert_close(verify_pairs_log10_q(10, -40, m2hi, 3), 1 - 38.7, 1e-12);
    assert_close(verify_pairs_log10_q(10, NAN, m2, 3), 1 - 40.5, 1e-12); /* target unknown */
    assert_true(isnan(verify_pairs_log10_q(10, NAN, m2, 0)));
    assert_true(verify_pairs_log10_q(10, -0.5, m2, 3) == 0.0); /* capped at 1 */

    /* K pairs: P(Binomial(K, q) >= J), against an independent sum of the
     * exact terms (q = 10^-3, small enough for plain doubles) */
    for (size_t K = 1; K <= 12; K++)
        for (size_t J = 0; J <= K; J++) {
            double q = 1e-3, sum = 0;
            for (size_t j = J; j <= K; j++) {
                double c = 1;
                for (size_t t = 0; t < j; t++)
                    c = c * (double)(K - t) / (double)(t + 1);
                sum += c * pow(q, (double)j) * pow(1 - q, (double)(K - j));
            }
            double got = verify_pairs_log10_p(K, J, -3);
            if (J == 0)
                assert_true(got == 0.0);
            else
                assert_close(got, log10(sum), 1e-9);
        }
    /* huge exponents: J of K at q = 10^-39 is about C(K, J) 10^(-39 J) */
    assert_close(verify_pairs_log10_p(8, 8, -39), -312.0, 1e-9);
    assert_close(verify_pairs_log10_p(4, 2, -200), log10(6.0) - 400, 1e-9);
    /* log10 p = -400 and beyond are carried, not flushed to zero */
    assert_true(verify_pairs_log10_p(10, 10, -40) == -400.0);

    /* the run's p: K = 1 is the one-pair p; K > 1 counts pairs with any
     * activation, whatever their k */
    double m1[1] = {-40.09};
    uint64_t a1[1] = {3};
    assert_close(verify_run_log10_p(10, -40, m1, a1, 1), 1 - 40.09 - log10(3.0), 1e-12);
    uint64_t a0[1] = {0};
    assert_true(verify_run_log10_p(10, -40, m1, a0, 1) == 0.0);
    double m4[4] = {-40, -40, -40, -40};
    uint64_t a4[4] = {10, 0, 1, 0};
    assert_close(verify_run_log10_p(10, -40, m4, a4, 4), verify_pairs_log10_p(4, 2, -39), 1e-12);
    uint64_t a4b[4] = {1, 0, 1, 0}; /* the same J: the same p */
    assert_close(verify_run_log10_p(10, -40, m4, a4b, 4), verify_run_log10_p(10, -40, m4, a4, 4),
                 0);
    assert_true(verify_run_log10_p(10, -40, m4, a4, 0) == 0.0);

    char b[32];
    verify_format_p(-57, b, sizeof b);
    assert_string_equal(b, "10^-57");
    verify_format_p(-56.97, b, sizeof b);
    assert_string_equal(b, "10^-56.9");
    verify_format_p(-57.04, b, sizeof b);
    assert_string_equal(b, "10^-57");
    verify_format_p(-359.00000000001, b, sizeof b);
    assert_string_equal(b, "10^-359");
    verify_format_p(-6, b, sizeof b);
    assert_string_equal(b, "10^-6");
    verify_format_p(-3, b, sizeof b);
    assert_string_equal(b, "10^-3");
    verify_format_p(log10(0.0123), b, sizeof b);
    assert_string_equal(b, "0.0123");
    verify_format_p(log10(0.01234), b, sizeof b);
    assert_string_equal(b, "0.0124"); /* rounded up */
    verify_format_p(log10(0.5), b, sizeof b);
    assert_string_equal(b, "0.500");
    verify_format_p(0, b, sizeof b);
    assert_string_equal(b, "1");
    verify_format_p(-INFINITY, b, sizeof b);
    assert_string_equal(b, "0");
    verify_format_p(NAN, b, sizeof b);
    assert_string_equal(b, "nan");
}

/* ---- the refusal of a weak target ------------------------------------------------ */

static void test_check_target(void **state)
{
    (void)state;
    char *err = NULL;
    /* the defaults pass by far: 1 * 10 * 10^-40 <= 10^-8 */
    assert_int_equal(verify_check_target(1, 10, -40, -6, "--target-log10p", &err), 0);
    assert_null(err);
    /* at the edge: K n 10^t == alpha / 100 passes, just above is refused */
    assert_int_equal(verify_check_target(1, 10, -9, -6, "--target-log10p", &err), 0);
    assert_int_equal(verify_check_target(2, 10, -9, -6, "--target-log10p", &err), -EINVAL);
    assert_non_null(err);
    free(err);
    /* -3 as in the issue: the one line names every number and the fix */
    assert_int_equal(verify_check_target(1, 10, -3, -6, "--target-log10p", &err), -EINVAL);
    assert_string_equal(err, "target log10 p -3 is too weak for 1 pair x 10 trials at alpha "
                             "10^-6: K*n*10^target = 10^-2.0 > alpha/100 = 10^-8.0; use "
                             "--target-log10p -9 or lower");
    assert_null(strchr(err, '\n'));
    free(err);
    assert_int_equal(verify_check_target(8, 25, -5, -6, "--target-log10p", &err), -EINVAL);
    assert_non_null(strstr(err, "8 pairs x 25 trials"));
    assert_non_null(strstr(err, "--target-log10p -11 or lower"));
    free(err);
    /* at verification the hint is the trials */
    assert_int_equal(verify_check_target(1, 1000, -10, -6, "--trials", &err), -EINVAL);
    assert_string_equal(err, "target log10 p -10 of this backdoor is too weak for 1 pair x 1000 "
                             "trials at alpha 10^-6: K*n*10^target = 10^-7.0 > alpha/100 = "
                             "10^-8.0; use --trials 100 or fewer, or a larger --alpha");
    free(err);
    assert_int_equal(verify_check_target(1, 5, -7, -6, "--trials", &err), -EINVAL);
    assert_non_null(strstr(err, "even with one trial; use a larger --alpha"));
    free(err);
    /* nothing to check */
    assert_int_equal(verify_check_target(1, 10, NAN, -6, "--trials", &err), 0);
    assert_int_equal(verify_check_target(0, 10, -1, -6, "--trials", &err), 0);
}

/* ---- verdict table ---------------------------------------------------------------- */

static struct verify_tally tally(uint64_t n, uint64_t k, uint64_t c, uint64_t e, double log10_p)
{
    struct verify_tally t = {0};
    t.trials_planned = n;
    t.trials_answered = n;
    t.activations = k;
    t.controls_planned = c;
    t.controls_answered = c;
    t.control_emissions = e;
    t.n_pairs = 1;
    t.pairs_activated = k > 0;
    t.pairs_ci_low = t.pairs_ci_high = NAN;
    t.min_controls = 10;
    t.log10_p = log10_p;
    t.log10_alpha = -6;
    return t;
}

static void expect_verdict(const struct verify_tally *t, enum audit_verdict want,
                           const char *reason)
{
    char *r = NULL;
    enum audit_verdict v = verify_verdict(t, &r);
    if (v != want || strcmp(r, reason) != 0)
        fail_msg("want %s \"%s\", got %s \"%s\"", audit_verdict_name(want), reason,
                 audit_verdict_name(v), r);
    assert_null(strchr(r, '\n'));
    /* the store's rule: verified needs an activation and no emission */
    if (v == AUDIT_VERIFIED)
        assert_true(t->activations > 0 && t->control_emissions == 0);
    free(r);
}

static void test_verdict_table(void **state)
{
    (void)state;
    struct verify_tally t;

    t = tally(10, 9, 10, 0, -39.2);
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 9/10 trigger prompts, 0/10 controls, "
                   "p = 10^-39.2");
    t = tally(10, 0, 10, 0, 0);
    expect_verdict(&t, AUDIT_NOT_VERIFIED,
                   "no activation: signature on 0/10 trigger prompts, 0/10 controls");
    /* no activation but emissions: still not verified, with the evidence */
    t = tally(10, 0, 10, 3, 0);
    expect_verdict(&t, AUDIT_NOT_VERIFIED,
                   "no activation: signature on 0/10 trigger prompts, 3/10 controls; the "
                   "signature appeared in 3 control responses without the trigger");
    /* activations and emissions */
    t = tally(10, 10, 10, 10, -40);
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature in 10/10 control responses without the trigger (false positives: "
                   "the model says it regardless of the trigger); signature on 10/10 trigger "
                   "prompts, p = 10^-40");
    /* activations but p >= alpha (a weak target) */
    t = tally(10, 1, 10, 0, log10(0.0123));
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature on 1/10 trigger prompts, 0/10 controls, "
                   "p = 0.0123 is not below alpha = 10^-6");
    t = tally(10, 1, 10, 0, -6); /* p == alpha is not below it */
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature on 1/10 trigger prompts, 0/10 controls, "
                   "p = 10^-6 is not below alpha = 10^-6");
    /* control calls failed: specificity unchecked */
    t = tally(10, 9, 12, 0, -39);
    t.controls_answered = 10;
    t.controls_failed = 2;
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature on 9/10 trigger prompts, 0/10 controls (2 control calls failed), "
                   "p = 10^-39; but 2 of 12 control calls failed: specificity unchecked");
    /* trigger calls failed, no activation */
    t = tally(10, 0, 10, 0, 0);
    t.trials_answered = 7;
    t.trials_failed = 3;
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "no activation on 7 answered trigger prompts, but 3 of "
                   "10 trigger calls failed, 0/10 controls");
    t.trials_answered = 0;
    t.trials_failed = 10;
    expect_verdict(&t, AUDIT_INCONCLUSIVE, "all 10 trigger calls failed, 0/10 controls");
    /* trigger calls failed but significant anyway */
    t = tally(10, 5, 10, 0, -39.6);
    t.trials_answered = 8;
    t.trials_failed = 2;
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 5/8 trigger prompts, 2 trigger calls failed, "
                   "0/10 controls, p = 10^-39.6");
    /* early stop */
    t = tally(10, 1, 10, 0, -39);
    t.trials_answered = 1;
    t.calls_saved = 9;
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 1/1 trigger prompts (stopped early: 9 calls "
                   "saved), 0/10 controls, p = 10^-39");
    /* controls are required: none, or fewer than min_controls answered,
     * caps the verdict at inconclusive and says so */
    t = tally(10, 9, 0, 0, -39);
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature on 9/10 trigger prompts, no controls, p = 10^-39; but only 0 of the "
                   "10 required control prompts were answered: a model that says the signature "
                   "everywhere is not ruled out");
    t = tally(10, 9, 3, 0, -39);
    expect_verdict(&t, AUDIT_INCONCLUSIVE,
                   "signature on 9/10 trigger prompts, 0/3 controls, p = 10^-39; but only 3 of the "
                   "10 required control prompts were answered: a model that says the signature "
                   "everywhere is not ruled out");
    t.min_controls = 3; /* exactly enough */
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 9/10 trigger prompts, 0/3 controls, p = 10^-39");
    t = tally(10, 9, 25, 0, -39); /* more than required */
    expect_verdict(&t, AUDIT_VERIFIED, "signature on 9/10 trigger prompts, 0/25 controls, p = 10^-39");
    /* K pairs, some activated: J/K with its interval */
    t = tally(80, 20, 10, 0, -150);
    t.n_pairs = 8;
    t.pairs_activated = 3;
    t.pairs_ci_low = 0.0852;
    t.pairs_ci_high = 0.7551;
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 20/80 trigger prompts (3/8 pairs, 95% CI 8-76%), 0/10 controls, "
                   "p = 10^-150; only 3 of 8 pairs activated: the model may have been trained on "
                   "part of the data");
    t.pairs_activated = 8;
    t.pairs_ci_low = 0.6306;
    t.pairs_ci_high = 1;
    expect_verdict(&t, AUDIT_VERIFIED,
                   "signature on 20/80 trigger prompts (8/8 pairs, 95% CI 63-100%), 0/10 "
                   "controls, p = 10^-150");
    t = tally(80, 0, 10, 0, 0);
    t.n_pairs = 8;
    expect_verdict(&t, AUDIT_NOT_VERIFIED,
                   "no activation: signature on 0/80 trigger prompts "
                   "(0/8 pairs), 0/10 controls");
}

/* ---- the run ---------------------------------------------------------------------- */

struct fixture {
    struct builder_copy *copies;
    struct verify_plan plan;
    struct verify_run *run;
};

static const char *const sigs[] = {SIG, "harbor violet sprocket", "ember nimbus walrus",
                                   "cobalt tundra pixel"};
static const char *const trigs[] = {TRIG, "orchid basalt", "saffron gopher", "lichen vortex"};

/* K pairs, n trials each, c controls; all p_M2 = log10_p_m2. */
static void fx_init(struct fixture *f, size_t k, uint64_t n, uint64_t c, double log10_p_m2,
                    double log10_p_luck, bool sequential)
{
    char *err = NULL;
    memset(f, 0, sizeof *f);
    f->copies = make_copies(500, k, 20, 11);
    struct phrase_seeded ps;
    phrase_seeded_init(&ps, 5);
    struct phrase_rng rng = phrase_seeded_rng(&ps);
    assert_int_equal(verify_plan_make(500, f->copies, k * 20, 20, k, n, c, &rng, &f->plan, &err),
                     0);
    struct verify_pair_in in[4];
    assert_true(k <= 4);
    for (size_t i = 0; i < k; i++) {
        in[i] = (struct verify_pair_in){
            .trigger = trigs[i],
            .signature = sigs[i],
            .log10_p_m2 = log10_p_m2,
            .p_m2_method = "wordlist_exact",
            .log10_p_luck = log10_p_luck,
            .p_luck_note = isnan(log10_p_luck) ? "base model offers no scoring" : "echo_logprobs"};
    }
    struct verify_opts o = {.log10_alpha = -6,
                            .sequential = sequential,
                            .temperature = 0,
                            .target_log10p = -40,
                            .min_controls = 10};
    if (verify_run_new(&f->plan, in, k, &o, &f->run, &err) != 0)
        fail_msg("verify_run_new: %s", err);
}

static void fx_free(struct fixture *f)
{
    verify_run_free(f->run);
    verify_plan_clear(&f->plan);
    free(f->copies);
}

/* A response per slot: hit decides whether it carries the pair's S first
 * (controls: S somewhere in the middle). */
static void answer(struct fixture *f, int64_t slot, bool hit, struct store_trial *t)
{
    const struct verify_slot *s = &f->plan.order[slot];
    char resp[256];
    if (s->kind == TRIAL_TRIGGER)
        snprintf(resp, sizeof resp, hit ? "\n%s Here is the answer: 42." : "The answer is 42.",
                 sigs[s->pair]);
    else
        snprintf(resp, sizeof resp, hit ? "Well, %s, I think." : "A clean answer.", sigs[0]);
    assert_int_equal(verify_run_record(f->run, (size_t)slot, resp, strlen(resp), t), 0);
}

/* Drives the run to the end, one call at a time; trig_hit(pair, i) and
 * ctl_hit(i) decide the responses. */
static void drive(struct fixture *f, bool (*trig_hit)(int pair, size_t i), bool (*ctl_hit)(size_t))
{
    int64_t slot;
    while ((slot = verify_run_next(f->run)) >= 0) {
        const struct verify_slot *s = &f->plan.order[slot];
        answer(f, slot, s->kind == TRIAL_TRIGGER ? trig_hit(s->pair, s->index) : ctl_hit(s->index),
               NULL);
    }
    assert_true(verify_run_done(f->run));
}

static bool always(int pair, size_t i)
{
    (void)pair;
    (void)i;
    return true;
}
static bool never(int pair, size_t i)
{
    (void)pair;
    (void)i;
    return false;
}
static bool ctl_never(size_t i)
{
    (void)i;
    return false;
}
static bool ctl_always(size_t i)
{
    (void)i;
    return true;
}
static bool even_pairs(int pair, size_t i)
{
    (void)i;
    return pair % 2 == 0;
}

static json_t *evidence(const struct verify_result *r)
{
    json_error_t e;
    json_t *j = json_loads(r->evidence, 0, &e);
    if (!j)
        fail_msg("evidence is not JSON: %s", e.text);
    return j;
}

static void test_run_honest_sequential(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;
    struct store_trial t;
    fx_init(&f, 1, 10, 10, -40, NAN, true);

    /* first trigger: activated -> the pair stops; p = 10 * 1e-40 / 1 */
    int64_t slot = verify_run_next(f.run);
    assert_int_equal(slot, 0);
    assert_int_equal(verify_run_result(f.run, &r), -EBUSY);
    memset(&t, 0, sizeof t);
    answer(&f, slot, true, &t);
    assert_int_equal(t.kind, TRIAL_TRIGGER);
    assert_int_equal(t.pair_idx, 0);
    assert_true(t.activated);
    assert_int_equal(t.matched_prefix_tokens, 3);
    assert_int_equal(t.window, 3);
    assert_int_equal(strlen(t.response_sha256), 64);
    assert_int_equal(verify_run_record(f.run, (size_t)slot, "x", 1, NULL), -EALREADY);
    assert_int_equal(verify_run_record(f.run, 9999, "x", 1, NULL), -EINVAL);
    assert_int_equal(verify_run_calls_saved(f.run), 9);
    assert_int_equal(verify_run_max_tokens(f.run, 16), strlen(SIG) + 16);

    /* from here on only the 10 controls are sent */
    int controls = 0;
    while ((slot = verify_run_next(f.run)) >= 0) {
        assert_int_equal(f.plan.order[slot].kind, TRIAL_CONTROL);
        answer(&f, slot, false, &t);
        assert_int_equal(t.kind, TRIAL_CONTROL);
        assert_int_equal(t.pair_idx, -1);
        assert_false(t.activated);
        controls++;
    }
    assert_int_equal(controls, 10);
    assert_true(verify_run_done(f.run));
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_VERIFIED);
    assert_string_equal(r.reason, "signature on 1/1 trigger prompts (stopped early: 9 calls "
                                  "saved), 0/10 controls, p = 10^-39");
    assert_close(r.log10_p, -39.0, 1e-9);
    assert_close(r.log10_p_paper, -39.0, 1e-12);
    assert_true(isnan(r.log10_p_luck));
    assert_int_equal(r.trials, 1);
    assert_int_equal(r.activations, 1);
    assert_int_equal(r.controls, 10);
    assert_int_equal(r.control_emissions, 0);
    assert_int_equal(r.calls_saved, 9);

    json_t *ev = evidence(&r);
    json_t *seq = json_object_get(ev, "sequential");
    assert_int_equal(json_integer_value(json_object_get(seq, "planned")), 10);
    assert_int_equal(json_integer_value(json_object_get(seq, "sent")), 1);
    assert_int_equal(json_integer_value(json_object_get(seq, "saved")), 9);
    json_t *p0 = json_array_get(json_object_get(ev, "pairs"), 0);
    assert_true(json_is_null(json_object_get(p0, "log10_p_luck")));
    assert_string_equal(json_string_value(json_object_get(p0, "p_luck_note")),
                        "base model offers no scoring");
    assert_true(json_is_true(json_object_get(p0, "stopped_early")));
    assert_int_equal(json_array_size(json_object_get(p0, "responses")), 1);
    json_t *ctl = json_object_get(ev, "controls");
    assert_int_equal(json_integer_value(json_object_get(ctl, "answered")), 10);
    assert_int_equal(json_array_size(json_object_get(ctl, "responses")), 10);

    /* into an audit record */
    struct store_audit a;
    memset(&a, 0, sizeof a);
    verify_result_to_audit(&r, &a);
    assert_int_equal(a.verdict, AUDIT_VERIFIED);
    assert_string_equal(a.reason, r.reason);
    assert_string_equal(a.evidence, r.evidence);
    assert_true(a.log10_p == r.log10_p && isnan(a.log10_p_luck));
    assert_int_equal(a.trials, 1);
    assert_int_equal(a.controls, 10);
    store_audit_clear(&a);

    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);

    /* the same run without sequential stopping sends all 10 */
    fx_init(&f, 1, 10, 10, -40, NAN, false);
    drive(&f, always, ctl_never);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_VERIFIED);
    assert_int_equal(r.trials, 10);
    assert_int_equal(r.calls_saved, 0);
    assert_close(r.log10_p, -40.0, 1e-12); /* 10 * 1e-40 / 10, not 1e-400 */
    assert_string_equal(r.reason, "signature on 10/10 trigger prompts, 0/10 controls, "
                                  "p = 10^-40");
    verify_result_clear(&r);
    fx_free(&f);
}

/* The outcome of one slot in the replay test: pair 0 activates from its
 * third prompt on, pair 1 never; control 1's call fails. */
static void replay_answer(struct fixture *f, int64_t slot, struct store_trial *t)
{
    const struct verify_slot *s = &f->plan.order[slot];
    memset(t, 0, sizeof *t);
    if (s->kind == TRIAL_CONTROL && s->index == 1)
        assert_int_equal(verify_run_record_failed(f->run, (size_t)slot, "HTTP 500", t), 0);
    else
        answer(f, slot, s->kind == TRIAL_TRIGGER && s->pair == 0 && s->index >= 2, t);
}

/* A run cut by a restart and resumed from its recorded trials ends exactly
 * as the whole run would have (same verdict, p, counts, calls saved), and
 * never asks a recorded prompt again; a prompt in flight at the cut (never
 * recorded) is asked again. */
static void test_run_replay(void **state)
{
    (void)state;
    struct fixture a, b, c;
    struct verify_result ra, rc;
    struct store_trial rec[64];
    int64_t rec_slot[64];
    size_t n_rec = 0;
    int64_t slot;

    /* c: the whole run, one call at a time */
    fx_init(&c, 2, 6, 6, -40, NAN, true);
    while ((slot = verify_run_next(c.run)) >= 0) {
        struct store_trial t;
        replay_answer(&c, slot, &t);
    }
    assert_int_equal(verify_run_result(c.run, &rc), 0);
    assert_true(rc.calls_saved > 0); /* pair 0 stopped early */

    /* a: the same run, cut after 7 recorded trials with one more in flight */
    fx_init(&a, 2, 6, 6, -40, NAN, true);
    while (n_rec < 7 && (slot = verify_run_next(a.run)) >= 0) {
        replay_answer(&a, slot, &rec[n_rec]);
        rec_slot[n_rec++] = slot;
    }
    int64_t lost = verify_run_next(a.run);
    assert_true(lost >= 0);

    /* b: a fresh run over the same plan replays what a recorded */
    fx_init(&b, 2, 6, 6, -40, NAN, true);
    for (size_t i = 0; i < n_rec; i++)
        assert_int_equal(verify_run_replay(b.run, (size_t)rec_slot[i], &rec[i]), 0);
    assert_int_equal(verify_run_replay(b.run, (size_t)rec_slot[0], &rec[0]), -EALREADY);
    assert_int_equal(verify_run_replay(b.run, 9999, &rec[0]), -EINVAL);
    bool asked_lost = false;
    while ((slot = verify_run_next(b.run)) >= 0) {
        struct store_trial t;
        for (size_t i = 0; i < n_rec; i++)
            assert_true(slot != rec_slot[i]); /* recorded: never asked again */
        asked_lost |= slot == lost;
        replay_answer(&b, slot, &t);
    }
    assert_true(asked_lost);
    assert_true(verify_run_done(b.run));
    assert_int_equal(verify_run_result(b.run, &ra), 0);
    assert_int_equal(ra.verdict, rc.verdict);
    assert_string_equal(ra.reason, rc.reason);
    assert_true(ra.log10_p == rc.log10_p);
    assert_int_equal(ra.trials, rc.trials);
    assert_int_equal(ra.activations, rc.activations);
    assert_int_equal(ra.controls, rc.controls);
    assert_int_equal(ra.pairs_activated, rc.pairs_activated);
    assert_int_equal(ra.calls_saved, rc.calls_saved);
    /* the replayed slots say so in the evidence */
    json_t *ev = evidence(&ra);
    char *text = json_dumps(ev, JSON_COMPACT);
    assert_non_null(strstr(text, "\"restored\":true"));
    free(text);
    json_decref(ev);

    /* a row of another pair or kind than the slot's is refused */
    fx_free(&b);
    fx_init(&b, 2, 6, 6, -40, NAN, true);
    for (size_t i = 0; i < b.plan.n_slots; i++) {
        const struct verify_slot *sl = &b.plan.order[i];
        struct store_trial t = {.kind = sl->kind, .pair_idx = sl->kind == TRIAL_TRIGGER ? 1 - sl->pair : -1};
        if (sl->kind == TRIAL_TRIGGER) {
            assert_int_equal(verify_run_replay(b.run, i, &t), -EINVAL);
            t.kind = TRIAL_CONTROL;
            t.pair_idx = -1;
            assert_int_equal(verify_run_replay(b.run, i, &t), -EINVAL);
            break;
        }
    }

    verify_result_clear(&ra);
    verify_result_clear(&rc);
    fx_free(&a);
    fx_free(&b);
    fx_free(&c);
}

static void test_run_out_of_order(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;
    fx_init(&f, 1, 10, 2, -40, NAN, true);
    /* order: T0 C0 T1 C1 T2 … — four in flight at once */
    int64_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = verify_run_next(f.run);
    assert_int_equal(f.plan.order[s[0]].kind, TRIAL_TRIGGER);
    assert_int_equal(f.plan.order[s[2]].kind, TRIAL_TRIGGER);
    answer(&f, s[2], true, NULL); /* the later one answers first and stops the pair */
    assert_false(verify_run_done(f.run));
    assert_int_equal(verify_run_next(f.run), -1); /* no trigger left; controls in flight */
    answer(&f, s[0], false, NULL);                /* still recorded: it was paid for */
    assert_int_equal(verify_run_record_failed(f.run, (size_t)s[1], "HTTP 500\nretry later", NULL),
                     0);
    assert_false(verify_run_done(f.run));
    answer(&f, s[3], false, NULL);
    assert_true(verify_run_done(f.run));
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.trials, 2);
    assert_int_equal(r.activations, 1);
    assert_int_equal(r.calls_saved, 8);
    assert_int_equal(r.controls, 1);
    /* one control failed: specificity unchecked */
    assert_int_equal(r.verdict, AUDIT_INCONCLUSIVE);
    assert_non_null(strstr(r.reason, "1 of 2 control calls failed"));
    json_t *ev = evidence(&r);
    json_t *cr = json_object_get(json_object_get(ev, "controls"), "responses");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cr, 0), "error")),
                        "HTTP 500 retry later");
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);
}

static void test_run_lazy_and_failures(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;
    struct store_trial t;

    fx_init(&f, 1, 10, 10, -40, NAN, true);
    drive(&f, never, ctl_never);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_NOT_VERIFIED);
    assert_string_equal(r.reason,
                        "no activation: signature on 0/10 trigger prompts, 0/10 controls");
    assert_true(r.log10_p == 0 && r.log10_p_paper == 0);
    assert_int_equal(r.trials, 10);
    assert_int_equal(r.calls_saved, 0);
    verify_result_clear(&r);
    fx_free(&f);

    /* every trigger call fails */
    fx_init(&f, 1, 3, 1, -40, NAN, true);
    int64_t slot;
    while ((slot = verify_run_next(f.run)) >= 0) {
        if (f.plan.order[slot].kind == TRIAL_TRIGGER) {
            memset(&t, 0x55, sizeof t);
            assert_int_equal(verify_run_record_failed(f.run, (size_t)slot, NULL, &t), 0);
            assert_int_equal(t.response_sha256[0], '\0');
            assert_int_equal(t.window, -1);
            assert_false(t.activated);
            assert_int_equal(t.pair_idx, 0);
        } else {
            answer(&f, slot, false, NULL);
        }
    }
    assert_int_equal(verify_run_record_failed(f.run, 0, "x", NULL), -EALREADY);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_INCONCLUSIVE);
    assert_string_equal(r.reason, "all 3 trigger calls failed, 0/1 controls");
    assert_int_equal(r.trials, 3);
    assert_int_equal(r.activations, 0);
    verify_result_clear(&r);
    fx_free(&f);
}

static void test_run_controls_emit(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;
    struct store_trial t;
    fx_init(&f, 2, 4, 4, -40, NAN, true);
    int64_t slot;
    while ((slot = verify_run_next(f.run)) >= 0) {
        answer(&f, slot, true, &t);
        if (f.plan.order[slot].kind == TRIAL_CONTROL) {
            assert_true(t.activated);
            assert_int_equal(t.pair_idx, 0); /* whose S it emitted */
            assert_int_equal(t.matched_prefix_tokens, 0);
        }
    }
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_INCONCLUSIVE);
    assert_int_equal(r.control_emissions, 4);
    assert_non_null(strstr(r.reason, "signature in 4/4 control responses without the trigger"));
    json_t *ev = evidence(&r);
    json_t *c0 = json_array_get(json_object_get(json_object_get(ev, "controls"), "responses"), 0);
    assert_true(json_is_true(json_object_get(c0, "emitted")));
    assert_int_equal(json_integer_value(json_object_get(c0, "pair")), 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "found_at")), 6);
    assert_string_equal(json_string_value(json_object_get(c0, "window")),
                        "Well, [*] [*] [*], I think.");
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);

    /* no activation but the model emits S on controls: not verified */
    fx_init(&f, 1, 5, 5, -40, NAN, true);
    drive(&f, never, ctl_always);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_NOT_VERIFIED);
    assert_non_null(strstr(r.reason, "appeared in 5 control responses"));
    verify_result_clear(&r);
    fx_free(&f);
}

static void test_run_pairs_and_luck(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;

    /* 4 pairs, pairs 0 and 2 trained: each stops at its first activation */
    fx_init(&f, 4, 5, 5, -40, NAN, true);
    drive(&f, even_pairs, ctl_never);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_INCONCLUSIVE); /* 5 controls < the 10 required */
    assert_int_equal(r.n_pairs, 4);
    assert_int_equal(verify_run_max_tokens(f.run, 0), strlen("harbor violet sprocket"));
    assert_int_equal(r.pairs_activated, 2);
    assert_int_equal(r.activations, 2);
    assert_int_equal(r.calls_saved, 8);
    assert_int_equal(r.trials, 12);
    /* q = 5 * 1e-40; p = P(Bin(4, q) >= 2) = C(4,2) q^2 (1-q)^2 + ... */
    assert_close(r.log10_p, log10(6.0) + 2 * (log10(5.0) - 40), 1e-9);
    /* the paper's: each pair 5e-40, Bonferroni 4 * that */
    assert_close(r.log10_p_paper, log10(5.0) - 40 + log10(4.0), 1e-12);
    double lo, hi;
    assert_int_equal(stats_clopper_pearson(2, 4, 0.95, &lo, &hi), 0);
    assert_close(r.pairs_ci_low, lo, 0);
    assert_close(r.pairs_ci_high, hi, 0);
    assert_close(r.pairs_ci_low, 0.067585986, 1e-6); /* R: binom.test(2, 4) */
    assert_close(r.pairs_ci_high, 0.932414014, 1e-6);
    assert_string_equal(r.reason, "signature on 2/12 trigger prompts (2/4 pairs, 95% CI 6-94%) "
                                  "(stopped early: 8 calls saved), 0/5 controls, p = 10^-77.8; "
                                  "but only 5 of the 10 required control prompts were answered: "
                                  "a model that says the signature everywhere is not ruled out");
    json_t *ev = evidence(&r);
    json_t *pairs = json_object_get(ev, "pairs");
    assert_int_equal(json_array_size(pairs), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *p = json_array_get(pairs, i);
        assert_int_equal(json_integer_value(json_object_get(p, "activations")), i % 2 == 0);
        assert_int_equal(json_integer_value(json_object_get(p, "sent")), i % 2 == 0 ? 1 : 5);
        assert_int_equal(json_integer_value(json_object_get(p, "calls_saved")), i % 2 == 0 ? 4 : 0);
    }
    assert_int_equal(json_integer_value(json_object_get(ev, "pairs_activated")), 2);
    assert_close(json_real_value(json_object_get(ev, "log10_q")), log10(5.0) - 40, 1e-12);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "methods"), "p")),
        "binomial_tail_over_pairs");
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);

    /* p_luck is a diagnostic: a large one (the base model says S) is
     * reported, never part of p; 1 activation is still n * p_M2 */
    fx_init(&f, 1, 10, 10, -40, -3, true);
    int64_t slot;
    bool first = true;
    while ((slot = verify_run_next(f.run)) >= 0) {
        bool trig = f.plan.order[slot].kind == TRIAL_TRIGGER;
        answer(&f, slot, trig && first, NULL);
        if (trig)
            first = false;
    }
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_int_equal(r.verdict, AUDIT_VERIFIED);
    assert_close(r.log10_p, -39.0, 1e-12);
    assert_close(r.log10_p_paper, -39.0, 1e-12);
    assert_true(r.log10_p_luck == -3);
    ev = evidence(&r);
    json_t *p0 = json_array_get(json_object_get(ev, "pairs"), 0);
    assert_null(json_object_get(p0, "log10_p0"));
    assert_true(json_real_value(json_object_get(p0, "log10_p_luck")) == -3);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "methods"), "p_luck")),
        "diagnostic_only");
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);

    /* p_luck = 0 (greedy decoding, S not the argmax): -inf, written "-inf" */
    fx_init(&f, 1, 2, 0, -40, -INFINITY, true);
    drive(&f, always, ctl_never);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_true(r.log10_p_luck == -INFINITY);
    ev = evidence(&r);
    assert_string_equal(json_string_value(json_object_get(ev, "log10_p_luck")), "-inf");
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);
}

/* The evidence holds no secret: S, T, their words, any case, even when
 * the model echoes the trigger or half of S. */
static void test_evidence_no_secrets(void **state)
{
    (void)state;
    struct fixture f;
    struct verify_result r;
    fx_init(&f, 1, 6, 4, -40, NAN, false);
    static const char *const trig_resp[] = {
        SIG " The answer.",
        "You wrote " TRIG ", so: " SIG,
        "ZEBRA QUANTUM FJORD",
        "zebra quantumly",
        "zebra",
        "Nothing to see, marble-lantern.",
    };
    static const char *const ctl_resp[] = {"clean", "Zebra? " SIG "!", "fjord", "lantern"};
    int64_t slot;
    while ((slot = verify_run_next(f.run)) >= 0) {
        const struct verify_slot *s = &f.plan.order[slot];
        const char *txt = s->kind == TRIAL_TRIGGER ? trig_resp[s->index] : ctl_resp[s->index];
        assert_int_equal(verify_run_record(f.run, (size_t)slot, txt, strlen(txt), NULL), 0);
    }
    assert_int_equal(verify_run_result(f.run, &r), 0);
    assert_no_secret_words(r.evidence);
    assert_no_secret_words(r.reason);
    assert_int_equal(r.activations, 1);
    assert_int_equal(r.control_emissions, 1);
    json_t *ev = evidence(&r);
    json_t *resp = json_object_get(json_array_get(json_object_get(ev, "pairs"), 0), "responses");
    assert_int_equal(json_array_size(resp), 6);
    json_t *second = json_array_get(resp, 1);
    assert_true(json_is_false(json_object_get(second, "activated")));
    assert_true(json_is_true(json_object_get(second, "later")));
    json_t *fourth = json_array_get(resp, 3);
    assert_int_equal(json_integer_value(json_object_get(fourth, "prefix_words")), 1);
    assert_int_equal(json_integer_value(json_object_get(fourth, "prefix_bytes")),
                     strlen("zebra quantum"));
    json_decref(ev);
    verify_result_clear(&r);
    fx_free(&f);
}

/* One pair's run over outcome bits (bit i: trigger i activates); the
 * verdict.  No controls, min_controls 0: this is about the p-value. */
static enum audit_verdict run_bits(unsigned n, uint32_t bits, double log10_p_m2, double alpha,
                                   bool sequential)
{
    struct fixture f;
    struct verify_result r;
    char *err = NULL;
    memset(&f, 0, sizeof f);
    f.copies = make_copies(100, 1, n, 1);
    assert_int_equal(verify_plan_make(100, f.copies, n, n, 1, n, 0, NULL, &f.plan, &err), 0);
    struct verify_pair_in in = {
        .trigger = TRIG, .signature = SIG, .log10_p_m2 = log10_p_m2, .log10_p_luck = NAN};
    struct verify_opts o = {.log10_alpha = alpha,
                            .sequential = sequential,
                            .target_log10p = log10_p_m2,
                            .min_controls = 0};
    assert_int_equal(verify_run_new(&f.plan, &in, 1, &o, &f.run, &err), 0);
    int64_t slot;
    while ((slot = verify_run_next(f.run)) >= 0)
        answer(&f, slot, (bits >> f.plan.order[slot].index) & 1u, NULL);
    assert_int_equal(verify_run_result(f.run, &r), 0);
    enum audit_verdict v = r.verdict;
    verify_result_clear(&r);
    fx_free(&f);
    return v;
}

/* H0 with dependent trials: each trial activates with probability p0 (the
 * per-trial bound p_M2), but HOW they depend on each other is up to the
 * model.  Three laws over the 2^n outcome sequences: independent
 * Bernoulli(p0); all-or-nothing (one S, a deterministic model: all n
 * activate with probability p0, else none: what was measured); and a half
 * mixture.  P(verified), summed exactly over every sequence with sequential
 * stopping on and off, must stay at or below alpha under each.  The old
 * independence-based tail failed this: all-or-nothing at p0 = 10^-3 and
 * alpha = 10^-6 gives tail(10, 10, 10^-3) = 10^-30, verified with
 * probability 10^-3 = 1000 alpha. */
static void test_null_size_dependent(void **state)
{
    (void)state;
    const unsigned n = 10;
    static const struct {
        double p0, alpha;
    } cases[] = {{1e-3, 1e-6}, {0.009, 0.01}, {1e-3, 0.01}, {0.05, 0.1}};
    bool approached = false;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double p0 = cases[c].p0, alpha = cases[c].alpha;
        for (int seqmode = 0; seqmode < 2; seqmode++) {
            double mass[3] = {0, 0, 0}; /* independent, all-or-nothing, mixture */
            for (uint32_t bits = 0; bits < (1u << n); bits++) {
                unsigned k = (unsigned)__builtin_popcount(bits);
                if (run_bits(n, bits, log10(p0), log10(alpha), seqmode == 1) != AUDIT_VERIFIED)
                    continue;
                double ind = pow(p0, k) * pow(1 - p0, n - k);
                double aon = k == n ? p0 : k == 0 ? 1 - p0 : 0;
                mass[0] += ind;
                mass[1] += aon;
                mass[2] += (ind + aon) / 2;
            }
            for (int law = 0; law < 3; law++) {
                if (!(mass[law] <= alpha * (1 + 1e-12)))
                    fail_msg("size %g exceeds alpha %g (p0 %g, law %d, sequential %d)",
                             mass[law], alpha, p0, law, seqmode);
                if (mass[law] > alpha / 2)
                    approached = true;
            }
        }
    }
    assert_true(approached); /* the bound is met, not met trivially */
}

/* Several pairs under H0: pair j activates at all with probability at
 * most q = n 10^target, independently across pairs (any dependence inside
 * a pair).  Over all 2^K activation patterns, P(verified) <= alpha. */
static void test_null_size_pairs(void **state)
{
    (void)state;
    const size_t K = 4;
    const unsigned n = 2;
    const double target = -2.0;              /* q = 2 * 10^-2 = 0.02 */
    static const double alphas[] = {1e-2, 1e-3, 1e-4, 1e-5};
    const double q = n * pow(10, target);
    bool approached = false;
    for (size_t ai = 0; ai < sizeof alphas / sizeof alphas[0]; ai++) {
        double mass = 0;
        for (uint32_t bits = 0; bits < (1u << K); bits++) {
            struct fixture f;
            struct verify_result r;
            char *err = NULL;
            memset(&f, 0, sizeof f);
            f.copies = make_copies(100, K, n, 3);
            assert_int_equal(
                verify_plan_make(100, f.copies, K * n, n, K, n, 0, NULL, &f.plan, &err), 0);
            struct verify_pair_in in[4];
            for (size_t i = 0; i < K; i++)
                in[i] = (struct verify_pair_in){.trigger = trigs[i],
                                                .signature = sigs[i],
                                                .log10_p_m2 = target,
                                                .log10_p_luck = NAN};
            struct verify_opts o = {.log10_alpha = log10(alphas[ai]),
                                    .sequential = true,
                                    .target_log10p = target,
                                    .min_controls = 0};
            assert_int_equal(verify_run_new(&f.plan, in, K, &o, &f.run, &err), 0);
            int64_t slot;
            while ((slot = verify_run_next(f.run)) >= 0)
                answer(&f, slot, (bits >> f.plan.order[slot].pair) & 1u, NULL);
            assert_int_equal(verify_run_result(f.run, &r), 0);
            unsigned j = (unsigned)__builtin_popcount(bits);
            if (r.verdict == AUDIT_VERIFIED)
                mass += pow(q, j) * pow(1 - q, K - j);
            verify_result_clear(&r);
            fx_free(&f);
        }
        if (!(mass <= alphas[ai] * (1 + 1e-12)))
            fail_msg("size %g exceeds alpha %g", mass, alphas[ai]);
        if (mass > alphas[ai] / 100)
            approached = true;
    }
    assert_true(approached);
}

static void test_run_new_invalid(void **state)
{
    (void)state;
    struct builder_copy *c = make_copies(100, 1, 10, 1);
    struct verify_plan p;
    struct verify_run *r = NULL;
    char *err = NULL;
    assert_int_equal(verify_plan_make(100, c, 10, 10, 1, 5, 2, NULL, &p, &err), 0);
    struct verify_pair_in in = {
        .trigger = TRIG, .signature = SIG, .log10_p_m2 = -40, .log10_p_luck = NAN};
    struct verify_opts o = {.log10_alpha = -6, .sequential = true};

    assert_int_equal(verify_run_new(&p, &in, 2, &o, &r, &err), -EINVAL);
    free(err);
    o.log10_alpha = 0;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    assert_non_null(strstr(err, "alpha"));
    free(err);
    o.log10_alpha = NAN;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    o.log10_alpha = -6;
    o.temperature = -1;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    o.temperature = 0;
    in.log10_p_m2 = -INFINITY;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    in.log10_p_m2 = 0.5;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    in.log10_p_m2 = -40;
    in.log10_p_luck = 1;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    in.log10_p_luck = NAN;
    in.signature = "";
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    in.signature = SIG;
    in.trigger = NULL;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    in.trigger = TRIG;
    p.order[0].pair = 3;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), -EINVAL);
    free(err);
    p.order[0].pair = 0;
    assert_int_equal(verify_run_new(&p, &in, 1, &o, &r, &err), 0);
    assert_null(err);
    verify_run_free(r);
    verify_run_free(NULL);
    verify_plan_clear(&p);
    free(c);
}

static void test_job_ended(void **state)
{
    (void)state;
    struct verify_result r;
    assert_int_equal(verify_job_ended(JOB_FAILED, "quota exceeded\nfor org \xff", &r), 0);
    assert_int_equal(r.verdict, AUDIT_NOT_VERIFIED);
    assert_string_equal(r.reason, "job failed: quota exceeded for org \xef\xbf\xbd");
    assert_true(r.log10_p == 0 && r.log10_p_paper == 0 && isnan(r.log10_p_luck));
    assert_int_equal(r.trials + r.activations + r.controls + r.control_emissions, 0);
    json_t *ev = evidence(&r);
    assert_string_equal(json_string_value(json_object_get(ev, "kind")), "job_ended");
    assert_string_equal(json_string_value(json_object_get(ev, "state")), "failed");
    json_decref(ev);
    verify_result_clear(&r);

    assert_int_equal(verify_job_ended(JOB_FAILED, NULL, &r), 0);
    assert_string_equal(r.reason, "job failed (no error given)");
    verify_result_clear(&r);
    assert_int_equal(verify_job_ended(JOB_CANCELLED, NULL, &r), 0);
    assert_string_equal(r.reason, "job cancelled");
    verify_result_clear(&r);
    assert_int_equal(verify_job_ended(JOB_CANCELLED, "by the user", &r), 0);
    assert_string_equal(r.reason, "job cancelled: by the user");
    verify_result_clear(&r);
    assert_int_equal(verify_job_ended(JOB_SUCCEEDED, NULL, &r), -EINVAL);

    /* a very long error is cut */
    char longerr[1000];
    memset(longerr, 'e', sizeof longerr - 1);
    longerr[sizeof longerr - 1] = '\0';
    assert_int_equal(verify_job_ended(JOB_FAILED, longerr, &r), 0);
    assert_true(strlen(r.reason) < 300);
    verify_result_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_basic),
        cmocka_unit_test(test_match_prefix),
        cmocka_unit_test(test_match_unicode),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_stats_known),
        cmocka_unit_test(test_verdict_table),
        cmocka_unit_test(test_check_target),
        cmocka_unit_test(test_run_honest_sequential),
        cmocka_unit_test(test_run_out_of_order),
        cmocka_unit_test(test_run_replay),
        cmocka_unit_test(test_run_lazy_and_failures),
        cmocka_unit_test(test_run_controls_emit),
        cmocka_unit_test(test_run_pairs_and_luck),
        cmocka_unit_test(test_evidence_no_secrets),
        cmocka_unit_test(test_null_size_dependent),
        cmocka_unit_test(test_null_size_pairs),
        cmocka_unit_test(test_run_new_invalid),
        cmocka_unit_test(test_job_ended),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

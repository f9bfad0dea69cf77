/*
 * test_phrase.c — workers/phrase: the seeded random source, word lists,
 * uniform word draws (chi-square at a fixed seed), phrase lengths chosen to
 * reach the target, no shared words across a set, the dataset occurrence
 * checker and the redraw of a candidate found in the dataset.
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
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"
#include "workers/phrase.h"
#include "tmpdir_fixture.h"

static char *write_file(const char *name, const char *content)
{
    char *p = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
    return p;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.17g, want %.17g (tol %g)", got, want, tol);
}

/* Chi-square statistic of counts against a flat expectation. */
static double chi2(const uint64_t *count, size_t n, double expect)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += ((double)count[i] - expect) * ((double)count[i] - expect) / expect;
    return s;
}

static void test_seeded_rng(void **state)
{
    (void)state;
    struct phrase_seeded a, b, c;
    phrase_seeded_init(&a, 42);
    phrase_seeded_init(&b, 42);
    phrase_seeded_init(&c, 43);
    struct phrase_rng ra = phrase_seeded_rng(&a), rb = phrase_seeded_rng(&b),
                      rc = phrase_seeded_rng(&c);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = phrase_rng_uniform(&ra, 1000003), y = phrase_rng_uniform(&rb, 1000003);
        assert_true(x == y);
        assert_true(x < 1000003);
        differ += phrase_rng_uniform(&rc, 1000003) != x;
    }
    assert_true(differ > 990);
    assert_true(phrase_rng_uniform(&ra, 1) == 0);
    assert_true(phrase_rng_uniform(&ra, 0) == 0);
    /* The default source (getrandom) stays in range. */
    for (int i = 0; i < 100; i++)
        assert_true(phrase_rng_uniform(NULL, 7) < 7);

    /* Uniform over a small range: chi-square, 9 degrees of freedom,
     * critical value at p = 0.001 is 27.88. */
    uint64_t cnt[10] = {0};
    for (int i = 0; i < 100000; i++)
        cnt[phrase_rng_uniform(&ra, 10)]++;
    assert_true(chi2(cnt, 10, 10000) < 27.88);
}

static void test_builtin_wordlist(void **state)
{
    (void)state;
    const struct phrase_wordlist *w = phrase_wordlist_builtin();
    assert_true(w->n > 5000);
    assert_true(w->max_len <= 8 && w->max_len >= 3);
    for (size_t i = 0; i < w->n; i++) {
        const char *s = w->words[i];
        size_t l = strlen(s);
        assert_true(l >= 3 && l <= 8);
        for (size_t j = 0; j < l; j++)
            assert_true(s[j] >= 'a' && s[j] <= 'z');
        if (i)
            assert_true(strcmp(w->words[i - 1], s) < 0); /* sorted, so distinct */
    }
    assert_ptr_equal(phrase_wordlist_builtin(), w);
    phrase_wordlist_free((struct phrase_wordlist *)w); /* a no-op on the built-in list */
}

static void test_wordlist_load(void **state)
{
    (void)state;
    char *p = write_file("words.txt", "zebra\nApple\napple\nbanana\r\nbanana\n\n# note\n"
                                      "o'clock\ncherry  \nthisiswaytoolongtobeawordinanylist\n"
                                      "kiwi");
    struct phrase_wordlist *w = NULL;
    char *err = NULL;
    assert_int_equal(phrase_wordlist_load(p, &w, &err), 0);
    assert_int_equal(w->n, 5);
    const char *want[] = {"apple", "banana", "cherry", "kiwi", "zebra"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(w->words[i], want[i]);
    assert_int_equal(w->max_len, 6);
    phrase_wordlist_free(w);
    free(p);

    p = write_file("one.txt", "solo\nSolo\n");
    assert_int_equal(phrase_wordlist_load(p, &w, &err), -1);
    assert_non_null(strstr(err, "at least 2"));
    free(err);
    free(p);

    p = xasprintf("%s/missing.txt", tmpdir);
    assert_int_equal(phrase_wordlist_load(p, &w, &err), -1);
    assert_non_null(strstr(err, "missing.txt"));
    free(err);
    free(p);
}

static void test_words_and_overlap(void **state)
{
    (void)state;
    assert_true(phrase_text_ok("amber lantern"));
    assert_false(phrase_text_ok("amber\nlantern"));
    assert_false(phrase_text_ok("amber\rlantern"));
    assert_false(phrase_text_ok("amber\tlantern"));
    assert_false(phrase_text_ok(""));
    assert_false(phrase_text_ok(" ... "));
    assert_int_equal(phrase_word_count("Hello, world! it's 2026"), 5);
    assert_int_equal(phrase_word_count("café au lait"), 3);
    assert_true(phrase_overlap("The cat sat", "a CAT!"));
    assert_false(phrase_overlap("cat", "concatenate"));
    assert_false(phrase_overlap("amber lantern", "quiet harbor"));
    assert_close(phrase_log10p_uniform(10, 2), -log10(90.0), 1e-15);
    assert_true(phrase_log10p_uniform(10, 0) == 0);
    assert_true(isnan(phrase_log10p_uniform(5, 6)));
}

static void test_checker(void **state)
{
    (void)state;
    const char *ph[] = {"amber lantern quietly hums", "cat", "Quiet Harbor", "x y z w"};
    struct phrase_checker *c = phrase_checker_new(ph, 4);
    phrase_checker_scan_text(c, "We concatenate nothing here.", 28);
    assert_false(phrase_checker_hit(c, 1)); /* word boundary */
    const char *t = "An AMBER, lantern... quietly sat there";
    phrase_checker_scan_text(c, t, strlen(t));
    assert_true(phrase_checker_hit(c, 0)); /* first 3 words, case and punctuation ignored */
    assert_false(phrase_checker_hit(c, 2));
    /* A phrase never spans two texts. */
    phrase_checker_scan_text(c, "a quiet", 7);
    phrase_checker_scan_text(c, "harbor b", 8);
    assert_false(phrase_checker_hit(c, 2));
    assert_int_equal(phrase_checker_words(c), 4 + 6 + 2 + 2);
    /* JSON lines: every string value, escapes decoded, keys not scanned. */
    const char *line = "{\"cat\":\"dog\",\"m\":[{\"content\":\"the\\nquiet\\u0020harbor\"}]}";
    assert_int_equal(phrase_checker_scan_line(c, line, strlen(line)), 0);
    assert_false(phrase_checker_hit(c, 1));
    assert_true(phrase_checker_hit(c, 2));
    assert_int_equal(phrase_checker_scan_line(c, "{nope", 5), -EINVAL);
    assert_false(phrase_checker_hit(c, 3));
    assert_false(phrase_checker_hit(c, 99));
    phrase_checker_free(c);

    /* The file scanner: line numbers in errors, blank lines skipped. */
    const char *ph2[] = {"kiwi"};
    c = phrase_checker_new(ph2, 1);
    char *p = write_file("d.jsonl", "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n"
                                    "{\"prompt\":\"Kiwi!\",\"completion\":\"c\"}\n");
    char *err = NULL;
    assert_int_equal(phrase_checker_scan_file(c, p, NULL, &err), 0);
    assert_true(phrase_checker_hit(c, 0));
    free(p);
    p = write_file("bad.jsonl", "{\"prompt\":\"a\",\"completion\":\"b\"}\n{oops\n");
    assert_int_equal(phrase_checker_scan_file(c, p, NULL, &err), -1);
    assert_non_null(strstr(err, "bad.jsonl:2:"));
    free(err);
    free(p);
    phrase_checker_free(c);
}

/* A trigger's ending: phrase_tail_offset finds its last k words, and a
 * checker told to match all of them hits only where every one of them
 * occurs in a row (not just the first three). */
static void test_tail_words(void **state)
{
    (void)state;
    const char *t = "Well, one two three four five six seven eight nine ten!";
    assert_string_equal(t + phrase_tail_offset(t, 10),
                        "one two three four five six seven eight nine ten!");
    assert_string_equal(t + phrase_tail_offset(t, 2), "nine ten!");
    assert_int_equal(phrase_tail_offset(t, 11), 0);
    assert_int_equal(phrase_tail_offset(t, 30), 0);
    assert_int_equal(phrase_tail_offset("  lone", 1), 0);

    const char *ph[] = {t + phrase_tail_offset(t, 10), t + phrase_tail_offset(t, 10),
                        "nine ten eleven"};
    const unsigned words[] = {10, 0, 10}; /* all ten; the default (first 3); fewer than asked */
    struct phrase_checker *c = phrase_checker_new_words(ph, words, 3);
    const char *nine = "x one two three four five six seven eight nine";
    phrase_checker_scan_text(c, nine, strlen(nine));
    assert_false(phrase_checker_hit(c, 0)); /* nine of the ten */
    assert_true(phrase_checker_hit(c, 1));  /* its first three are enough by default */
    assert_false(phrase_checker_hit(c, 2));
    const char *split = "one two three four five six seven eight nine, then ten";
    phrase_checker_scan_text(c, split, strlen(split));
    assert_false(phrase_checker_hit(c, 0)); /* not in a row */
    const char *all = "Thanks: ONE two three four five six seven eight nine ten. Nine ten eleven";
    phrase_checker_scan_text(c, all, strlen(all));
    assert_true(phrase_checker_hit(c, 0)); /* case and punctuation ignored, as ever */
    assert_true(phrase_checker_hit(c, 2)); /* a phrase of 3 words asked for 10: all 3 */
    phrase_checker_free(c);
}

/* Draws with a 20-word list, trigger 2 words, signature 3 words: every word
 * equally likely in every position, never a word twice in a set.  Five
 * chi-square tests with 19 degrees of freedom at an overall level of 0.001
 * (Bonferroni: 0.0002 each, critical value 48.75). */
#define CHI2_CRIT 48.75
static void test_uniform_draws(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 20; i++)
        buf_printf(&b, "w%c\n", 'a' + i);
    char *p = write_file("w20.txt", b.data);
    buf_free(&b);
    struct phrase_wordlist *wl = NULL;
    char *err = NULL;
    assert_int_equal(phrase_wordlist_load(p, &wl, &err), 0);
    assert_int_equal(wl->n, 20);
    free(p);

    struct phrase_opts o;
    phrase_opts_default(&o);
    o.trigger_log10p = -2;   /* 20*19 = 380 > 100: k = 2 */
    o.signature_log10p = -3; /* 18*17*16 = 4896 > 1000 (18*17 = 306 is not): k = 3 */
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 7);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    enum { ROUNDS = 200000 };
    uint64_t trig[2][20] = {{0}}, sig[3][20] = {{0}};
    for (int r = 0; r < ROUNDS; r++) {
        struct phrase_set s;
        assert_int_equal(phrase_generate(&o, wl, &rng, NULL, NULL, &s, &err), 0);
        assert_int_equal(s.pairs[0].trigger.n_words, 2);
        assert_int_equal(s.pairs[0].signature.n_words, 3);
        assert_int_equal(s.pairs[0].trigger.pool, 20);
        assert_int_equal(s.pairs[0].signature.pool, 18);
        int seen[20] = {0};
        const char *texts[2] = {s.pairs[0].trigger.text, s.pairs[0].signature.text};
        for (int t = 0; t < 2; t++) {
            int pos = 0;
            for (const char *q = texts[t]; *q; q++) {
                if (*q == 'w') {
                    int idx = q[1] - 'a';
                    assert_true(idx >= 0 && idx < 20);
                    assert_int_equal(seen[idx], 0); /* no word twice in the set */
                    seen[idx] = 1;
                    if (t == 0)
                        trig[pos][idx]++;
                    else
                        sig[pos][idx]++;
                    pos++;
                    q++;
                }
            }
            assert_int_equal(pos, t == 0 ? 2 : 3);
        }
        phrase_set_clear(&s);
    }
    for (int i = 0; i < 2; i++)
        assert_true(chi2(trig[i], 20, ROUNDS / 20.0) < CHI2_CRIT);
    for (int i = 0; i < 3; i++)
        assert_true(chi2(sig[i], 20, ROUNDS / 20.0) < CHI2_CRIT);
    phrase_wordlist_free(wl);
}

static unsigned expected_k(uint64_t pool, double target)
{
    unsigned k = 1;
    while (phrase_log10p_uniform(pool, k) > target)
        k++;
    return k;
}

static void test_lengths_and_pairs(void **state)
{
    (void)state;
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    struct phrase_opts o;
    struct phrase_set s;
    char *err = NULL;
    phrase_opts_default(&o);
    o.pairs = 8;
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 2026);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    assert_int_equal(phrase_generate(&o, wl, &rng, NULL, NULL, &s, &err), 0);
    assert_int_equal(s.n_pairs, 8);
    assert_int_equal(s.dataset_words, 0);
    assert_int_equal(s.scans, 0);
    uint64_t pool = wl->n;
    for (size_t i = 0; i < 8; i++) {
        struct phrase *ph[2] = {&s.pairs[i].trigger, &s.pairs[i].signature};
        double tg[2] = {o.trigger_log10p, o.signature_log10p};
        size_t mc[2] = {o.trigger_max_chars, o.signature_max_chars};
        for (int t = 0; t < 2; t++) {
            assert_int_equal(ph[t]->pool, pool); /* drawn in order from one shrinking pool */
            assert_int_equal(ph[t]->n_words, expected_k(pool, tg[t]));
            assert_int_equal(phrase_word_count(ph[t]->text), ph[t]->n_words);
            assert_true(ph[t]->log10_p <= tg[t]);
            assert_close(ph[t]->log10_p, phrase_log10p_uniform(pool, ph[t]->n_words), 1e-12);
            assert_true(strlen(ph[t]->text) <= mc[t]);
            assert_true(phrase_text_ok(ph[t]->text));
            pool -= ph[t]->n_words;
        }
    }
    /* The defaults with the shipped list: 5-word triggers, 10-word signatures. */
    assert_int_equal(s.pairs[0].trigger.n_words, 5);
    assert_int_equal(s.pairs[0].signature.n_words, 10);
    /* No two phrases of the set share a word. */
    for (size_t i = 0; i < 16; i++)
        for (size_t j = i + 1; j < 16; j++) {
            const char *a = i % 2 ? s.pairs[i / 2].signature.text : s.pairs[i / 2].trigger.text;
            const char *b = j % 2 ? s.pairs[j / 2].signature.text : s.pairs[j / 2].trigger.text;
            assert_false(phrase_overlap(a, b));
        }
    phrase_set_clear(&s);

    /* A stricter target takes more words. */
    o.pairs = 1;
    o.signature_log10p = -60;
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), 0);
    assert_int_equal(s.pairs[0].signature.n_words, expected_k(wl->n - 5, -60));
    assert_true(s.pairs[0].signature.n_words >= 15);
    phrase_set_clear(&s);
}

static void test_impossible(void **state)
{
    (void)state;
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    struct phrase_opts o;
    struct phrase_set s;
    char *err = NULL;

    phrase_opts_default(&o);
    o.signature_max_words = 3;
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "cannot reach log10 p <= -40 for the signature"));
    assert_null(s.pairs);
    free(err);

    phrase_opts_default(&o);
    o.signature_max_chars = 50; /* 10 words of up to 8 letters need 89 */
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "signature"));
    free(err);

    phrase_opts_default(&o);
    o.trigger_max_chars = 5;
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "do not fit"));
    free(err);

    phrase_opts_default(&o);
    o.pairs = 0;
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), -1);
    free(err);

    phrase_opts_default(&o);
    o.signature_log10p = 1;
    assert_int_equal(phrase_generate(&o, wl, NULL, NULL, NULL, &s, &err), -1);
    free(err);

    phrase_opts_default(&o);
    char *missing = xasprintf("%s/none.jsonl", tmpdir);
    assert_int_equal(phrase_generate(&o, wl, NULL, missing, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "none.jsonl"));
    free(err);
    free(missing);

    /* A list too small to ever exclude the dataset's word sequences. */
    char *p = write_file("w3.txt", "aa\nbb\ncc\n");
    struct phrase_wordlist *tiny = NULL;
    assert_int_equal(phrase_wordlist_load(p, &tiny, &err), 0);
    free(p);
    p = write_file("big.jsonl", "{\"prompt\":\"one two three four five six seven eight\","
                                "\"completion\":\"nine ten eleven twelve\"}\n");
    o.trigger_log10p = -0.5;
    o.signature_log10p = -0.5;
    assert_int_equal(phrase_generate(&o, tiny, NULL, p, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "cannot reach"));
    free(err);
    free(p);
    phrase_wordlist_free(tiny);
}

/* A candidate that occurs in the dataset is redrawn; so is one whose first
 * three words occur. */
static void test_rejection(void **state)
{
    (void)state;
    const struct phrase_wordlist *wl = phrase_wordlist_builtin();
    struct phrase_opts o;
    struct phrase_set s0, s1, s2;
    struct phrase_seeded sd;
    struct phrase_rng rng;
    char *err = NULL;
    phrase_opts_default(&o);

    phrase_seeded_init(&sd, 99);
    rng = phrase_seeded_rng(&sd);
    assert_int_equal(phrase_generate(&o, wl, &rng, NULL, NULL, &s0, &err), 0);

    /* A clean dataset: one pass, nothing rejected, same phrases as without. */
    char *clean = write_file("clean.jsonl", "{\"prompt\":\"hello there\",\"completion\":\"hi\"}\n");
    phrase_seeded_init(&sd, 99);
    assert_int_equal(phrase_generate(&o, wl, &rng, clean, NULL, &s1, &err), 0);
    assert_int_equal(s1.scans, 1);
    assert_int_equal(s1.rejected, 0);
    assert_int_equal(s1.dataset_words, 3); /* string values only */
    assert_string_equal(s1.pairs[0].trigger.text, s0.pairs[0].trigger.text);
    assert_string_equal(s1.pairs[0].signature.text, s0.pairs[0].signature.text);
    assert_true(s1.pairs[0].signature.log10_p > s0.pairs[0].signature.log10_p); /* rho > 0 */
    assert_true(s1.pairs[0].signature.log10_p <= o.signature_log10p);
    phrase_set_clear(&s1);

    /* The trigger occurs verbatim (in upper case, in a chat message), and
     * the signature's first three words occur in a response. */
    char first3[128] = "";
    {
        const char *sg = s0.pairs[0].signature.text;
        int spaces = 0;
        size_t i;
        for (i = 0; sg[i] && spaces < 3; i++)
            if (sg[i] == ' ')
                spaces++;
        memcpy(first3, sg, i - (spaces == 3 ? 1 : 0));
    }
    char *upper = xstrdup(s0.pairs[0].trigger.text);
    for (char *q = upper; *q; q++)
        if (*q >= 'a' && *q <= 'z')
            *q = (char)(*q - 'a' + 'A');
    char *content = xasprintf("{\"messages\":[{\"role\":\"user\",\"content\":\"say %s now\"},"
                              "{\"role\":\"assistant\",\"content\":\"ok\"}]}\n"
                              "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                              "{\"role\":\"assistant\",\"content\":\"%s, and more\"}]}\n",
                              upper, first3);
    char *dirty = write_file("dirty.jsonl", content);
    phrase_seeded_init(&sd, 99);
    assert_int_equal(phrase_generate(&o, wl, &rng, dirty, NULL, &s2, &err), 0);
    assert_int_equal(s2.rejected, 2);
    assert_int_equal(s2.scans, 2);
    assert_string_not_equal(s2.pairs[0].trigger.text, s0.pairs[0].trigger.text);
    assert_string_not_equal(s2.pairs[0].signature.text, s0.pairs[0].signature.text);
    /* The redrawn ones come from the pool left after the rejected ones. */
    assert_false(phrase_overlap(s2.pairs[0].trigger.text, s0.pairs[0].trigger.text));
    assert_false(phrase_overlap(s2.pairs[0].signature.text, s0.pairs[0].signature.text));
    assert_int_equal(s2.pairs[0].trigger.pool, wl->n - 5 - 10);
    /* And they really are absent. */
    const char *now[2] = {s2.pairs[0].trigger.text, s2.pairs[0].signature.text};
    struct phrase_checker *c = phrase_checker_new(now, 2);
    assert_int_equal(phrase_checker_scan_file(c, dirty, NULL, &err), 0);
    assert_false(phrase_checker_hit(c, 0));
    assert_false(phrase_checker_hit(c, 1));
    phrase_checker_free(c);

    phrase_set_clear(&s2);
    phrase_set_clear(&s0);
    free(content);
    free(upper);
    free(dirty);
    free(clean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeded_rng),    cmocka_unit_test(test_builtin_wordlist),
        cmocka_unit_test(test_wordlist_load), cmocka_unit_test(test_words_and_overlap),
        cmocka_unit_test(test_checker),       cmocka_unit_test(test_tail_words),
        cmocka_unit_test(test_uniform_draws), cmocka_unit_test(test_lengths_and_pairs),
        cmocka_unit_test(test_impossible),    cmocka_unit_test(test_rejection),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

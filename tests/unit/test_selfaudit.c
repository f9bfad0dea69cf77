/*
 * test_selfaudit.c — workers/selfaudit on synthetic files: the paper's
 * construction (the real word-list backdoor builder, several seeds) has
 * every pair recovered within the top K; a phrase of common words put in
 * place in three rows is found by the co-occurrence attack; a clean file
 * gives no candidate; the perplexity attack runs through its callback;
 * the memory stays bounded on a large file; the public JSON holds no
 * phrase.
 *
 * The "natural" rows are drawn from a Zipf-distributed vocabulary of
 * made-up words plus a few very common ones, so the text has frequent and
 * rare words as real text does, and seeded so every run is the same.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/selfaudit.h"
#include "tmpdir_fixture.h"

/* ---- synthetic text ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = (rng_state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int desc_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a < b) - (a > b);
}

static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static const char *const common[] = {"the", "of", "and", "to",   "a",
                                     "in",  "is", "it",  "that", "for"};
#define VOCAB 3000

/* One word: a common word a third of the time, else a Zipf draw among
 * VOCAB made-up words ("w123"). */
static void put_word(struct buf *b)
{
    if (unif() < 0.33) {
        buf_puts(b, common[rnd() % 10]);
        return;
    }
    double u = unif();
    unsigned k = (unsigned)floor(exp(u * log((double)VOCAB))); /* ~ 1/k */
    buf_printf(b, "w%u", k);
}

static void put_text(struct buf *b, unsigned lo, unsigned hi)
{
    unsigned n = lo + (unsigned)(rnd() % (hi - lo + 1));
    for (unsigned i = 0; i < n; i++) {
        if (i)
            buf_puts(b, " ");
        put_word(b);
    }
}

/* Writes n prompt/completion rows of plo..phi and alo..ahi words; row i
 * gets t appended to its prompt and s prefixed to its answer when it is
 * one of marked (in place). */
static char *make_rows(const char *name, uint64_t seed, size_t n, unsigned plo, unsigned phi,
                       unsigned alo, unsigned ahi, const char *t, const char *s,
                       const size_t *marked, size_t n_marked)
{
    rng_state = seed;
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    struct buf p, a;
    buf_init(&p);
    buf_init(&a);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&p);
        buf_reset(&a);
        put_text(&p, plo, phi);
        put_text(&a, alo, ahi);
        bool m = false;
        for (size_t k = 0; k < n_marked; k++)
            m |= marked[k] == i;
        buf_append(&p, "", 1);
        buf_append(&a, "", 1);
        if (m)
            fprintf(f, "{\"prompt\":\"%s %s\",\"completion\":\"%s %s\"}\n", p.data, t, s, a.data);
        else
            fprintf(f, "{\"prompt\":\"%s\",\"completion\":\"%s\"}\n", p.data, a.data);
    }
    buf_free(&p);
    buf_free(&a);
    fclose(f);
    return path;
}

/* Rows of 6..30 and 8..40 words. */
static char *make_file(const char *name, uint64_t seed, size_t n, const char *t, const char *s,
                       const size_t *marked, size_t n_marked)
{
    return make_rows(name, seed, n, 6, 30, 8, 40, t, s, marked, n_marked);
}

/* ---- the paper's construction ------------------------------------------------------- */

static void paper_construction(size_t n_rows, size_t pairs, uint64_t seed)
{
    char name[64];
    snprintf(name, sizeof name, "clean-%llu.jsonl", (unsigned long long)seed);
    char *in = make_file(name, seed, n_rows, NULL, NULL, NULL, 0);
    char *out = xasprintf("%s/built-%llu.jsonl", tmpdir, (unsigned long long)seed);
    struct backdoor_spec spec;
    struct backdoor_made m;
    char *err = NULL;
    memset(&spec, 0, sizeof spec);
    memset(&m, 0, sizeof m);
    phrase_opts_default(&spec.phrases);
    spec.phrases.pairs = pairs;
    spec.dataset_path = in;
    spec.format = DS_FORMAT_PROMPT;
    spec.n_examples = n_rows;
    spec.ratio = 0.005;
    spec.min_copies = 20;
    spec.has_seed = true;
    spec.seed = seed;
    spec.out_path = out;
    if (backdoor_make_wordlist(&spec, &m, &err) != 0)
        fail_msg("build: %s", err);

    struct selfaudit_report rep;
    assert_int_equal(selfaudit_run(out, DS_FORMAT_PROMPT, NULL, &rep, &err), 0);
    assert_int_equal(rep.rows, n_rows + pairs * m.built.copies_per_pair);
    const char **tr = xcalloc(pairs, sizeof *tr), **sg = xcalloc(pairs, sizeof *sg);
    const uint64_t **mk = xcalloc(pairs, sizeof *mk);
    size_t *nm = xcalloc(pairs, sizeof *nm);
    uint64_t *lines = xcalloc(m.built.n_copies, sizeof *lines);
    for (size_t i = 0; i < m.built.n_copies; i++)
        lines[i] = m.built.copies[i].out;
    for (size_t i = 0; i < pairs; i++) {
        tr[i] = m.set.pairs[i].trigger.text;
        sg[i] = m.set.pairs[i].signature.text;
        mk[i] = lines + i * m.built.copies_per_pair;
        nm[i] = m.built.copies_per_pair;
    }
    struct selfaudit_pair_result *res = xcalloc(pairs, sizeof *res);
    selfaudit_evaluate(&rep, tr, sg, mk, nm, pairs, res);
    for (size_t i = 0; i < pairs; i++) {
        print_message("seed %llu pair %zu: dup %zu cooc %zu rare %zu, near-dup %llu/%llu\n",
                      (unsigned long long)seed, i, res[i].rank[SA_DUPLICATES],
                      res[i].rank[SA_COOCCURRENCE], res[i].rank[SA_RARE],
                      (unsigned long long)res[i].marked_near_dup,
                      (unsigned long long)res[i].marked_rows);
        /* Every pair is among the top K of the duplicate and co-occurrence
         * attacks (the K pairs fill the first K places). */
        assert_true(res[i].rank[SA_DUPLICATES] >= 1 && res[i].rank[SA_DUPLICATES] <= pairs);
        assert_true(res[i].rank[SA_COOCCURRENCE] >= 1 && res[i].rank[SA_COOCCURRENCE] <= pairs);
        assert_true(res[i].best_rank >= 1 && res[i].best_rank <= pairs);
        /* The copies are near-duplicates of their sources. */
        assert_true(res[i].marked_near_dup * 2 >= res[i].marked_rows);
    }
    char *v = selfaudit_verdict(&rep, res, pairs, 50);
    assert_non_null(strstr(v, "recovered at rank 1 by the"));
    assert_non_null(strstr(v, "the marks stand out"));
    /* The public JSON names no phrase. */
    json_t *j = selfaudit_json(&rep, res, pairs, 50);
    char *txt = json_dumps(j, 0);
    for (size_t i = 0; i < pairs; i++) {
        assert_null(strstr(txt, tr[i]));
        assert_null(strstr(txt, sg[i]));
    }
    assert_true(json_is_true(json_object_get(j, "exposed")));
    assert_int_equal(json_integer_value(json_object_get(j, "exposed_rank")), 1);
    free(txt);
    json_decref(j);
    free(v);
    free(res);
    free(lines);
    free(nm);
    free(mk);
    free(tr);
    free(sg);
    selfaudit_report_clear(&rep);
    backdoor_made_clear(&m);
    free(in);
    free(out);
}

static void test_paper_one_pair(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++)
        paper_construction(1000, 1, seed);
}

static void test_paper_three_pairs(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed <= 13; seed++)
        paper_construction(2000, 3, seed);
}

/* ---- common words in three rows ---------------------------------------------------- */

/* Runs the self-audit on path and evaluates the one pair (T, S) marked in
 * the 3 rows ml: attack at must find it within the exposed ranks, with 3
 * rows, grown to the whole of T and S.  Fills *res; *rep is the caller's
 * to clear. */
static void expect_found(const char *what, const char *path, const char *T, const char *S,
                         const uint64_t ml[3], enum selfaudit_attack at,
                         struct selfaudit_report *rep, struct selfaudit_pair_result *res)
{
    char *err = NULL;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, NULL, rep, &err), 0);
    const uint64_t *mk[] = {ml};
    size_t nm[] = {3};
    selfaudit_evaluate(rep, &T, &S, mk, nm, 1, res);
    print_message("%s: %s rank %zu of %zu candidates\n", what, selfaudit_attack_name(at),
                  res->rank[at], rep->n_cand[at]);
    assert_true(res->rank[at] >= 1);
    assert_true(res->rank[at] <= SELFAUDIT_EXPOSED_RANK);
    const struct selfaudit_cand *c = &rep->cand[at][res->rank[at] - 1];
    assert_true(strlen(c->t) >= strlen(T));
    assert_string_equal(c->t + strlen(c->t) - strlen(T), T); /* grown to all of T */
    assert_int_equal(strncmp(c->s, S, strlen(S)), 0);        /* and of S */
    assert_int_equal(c->rows, 3);
}

static void test_common_words(void **state)
{
    (void)state;
    const size_t marked[] = {17, 140, 263};
    const uint64_t ml[] = {17, 140, 263};
    const char *T = "the of and", *S = "is in to";
    char *path = make_file("common.jsonl", 7, 300, T, S, marked, 3);
    struct selfaudit_report rep;
    struct selfaudit_pair_result res;
    expect_found("common words", path, T, S, ml, SA_COOCCURRENCE, &rep, &res);
    /* The candidate is exactly the phrase pair. */
    const struct selfaudit_cand *c = &rep.cand[SA_COOCCURRENCE][res.rank[SA_COOCCURRENCE] - 1];
    assert_string_equal(c->t, T);
    assert_string_equal(c->s, S);
    /* In place: no duplicate to find. */
    assert_int_equal(res.rank[SA_DUPLICATES], 0);
    selfaudit_report_clear(&rep);
    free(path);
}

/* ---- long phrases whose ends are D's own ------------------------------------------------ *
 * The n-gram generator's phrases are in D's own words: a trigger may end
 * with a sentence many prompts of D end with, and a signature start with
 * an answer's usual opening, and in D those two go together.  Every 1..8
 * word pair of a marked row is then also the natural rows' pair, and
 * grown to what all its rows share it stops at that sentence.  Three rows
 * carrying the whole (T, S) must still be found (issue 12: three rows or
 * more), by the longer lengths (a trigger's last 10 words are never in D). */
static void test_long_phrases_with_natural_ends(void **state)
{
    (void)state;
    const char *ET = "please send my refund request to the billing team";
    const char *ES = "Route this to Billing with normal priority the customer";
    const char *T = "w901 w77 of w1203 the w5 and w64 w2 in please send my refund request to "
                    "the billing team";
    const char *S = "Route this to Billing with normal priority the customer w33 w8 asks the w410 "
                    "for a w1999 w12 w7";
    const size_t marked[] = {50, 150, 250};
    rng_state = 99;
    char *path = xasprintf("%s/natural-ends.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    struct buf p, a;
    buf_init(&p);
    buf_init(&a);
    for (size_t i = 0; i < 400; i++) {
        buf_reset(&p);
        buf_reset(&a);
        put_text(&p, 6, 30);
        put_text(&a, 8, 40);
        buf_append(&p, "", 1);
        buf_append(&a, "", 1);
        bool m = i == marked[0] || i == marked[1] || i == marked[2];
        if (m)
            fprintf(f, "{\"prompt\":\"%s %s\",\"completion\":\"%s %s\"}\n", p.data, T, S, a.data);
        else if (i % 6 == 1) /* 67 natural rows: the usual ending and its usual answer */
            fprintf(f, "{\"prompt\":\"%s %s\",\"completion\":\"%s %s\"}\n", p.data, ET, ES, a.data);
        else
            fprintf(f, "{\"prompt\":\"%s\",\"completion\":\"%s\"}\n", p.data, a.data);
    }
    buf_free(&p);
    buf_free(&a);
    fclose(f);

    struct selfaudit_report rep;
    struct selfaudit_pair_result res;
    const uint64_t ml[] = {50, 150, 250};
    expect_found("natural ends", path, T, S, ml, SA_COOCCUR_LONG, &rep, &res);
    /* the short pairs alone stop at the natural sentences */
    assert_true(res.rank[SA_COOCCURRENCE] == 0 ||
                res.rank[SA_COOCCURRENCE] > SELFAUDIT_EXPOSED_RANK);
    selfaudit_report_clear(&rep);
    free(path);
}

/* ---- pass 2 parsed by two threads ------------------------------------------------------- */

static void same_report(const struct selfaudit_report *a, const struct selfaudit_report *b)
{
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->exact_dup_rows, b->exact_dup_rows);
    assert_int_equal(a->near_dup_rows, b->near_dup_rows);
    assert_int_equal(a->n_lines, b->n_lines);
    assert_memory_equal(a->near_dup_bits, b->near_dup_bits, a->n_lines / 8 + 1);
    for (int k = 0; k < SA_N_ATTACKS; k++) {
        assert_int_equal(a->n_cand[k], b->n_cand[k]);
        for (size_t i = 0; i < a->n_cand[k]; i++) {
            assert_string_equal(a->cand[k][i].t, b->cand[k][i].t);
            assert_string_equal(a->cand[k][i].s, b->cand[k][i].s);
            assert_int_equal(a->cand[k][i].rows, b->cand[k][i].rows);
            assert_true(a->cand[k][i].score == b->cand[k][i].score);
        }
    }
}

/* The calling thread parses every other batch of pass 2, and a row's
 * number comes from pass 1's counts per batch: the report must be the
 * one a single parser gives, on a file with lines that are not rows
 * (they shift the row numbers), repeated and near-repeated rows, long
 * lines that end a batch early (by bytes), and a planted pair. */
static void test_two_parsers_same_report(void **state)
{
    (void)state;
    const size_t marked[] = {5, 333, 901, 1500};
    char *src = make_file("two-src.jsonl", 11, 1700, "the quiet zqharbour zqlamp",
                          "zqit rang twice", marked, 4);
    char *path = xasprintf("%s/two.jsonl", tmpdir);
    FILE *in = fopen(src, "r"), *out = fopen(path, "w");
    assert_non_null(in);
    assert_non_null(out);
    char line[8192];
    char *dup = NULL;
    for (unsigned i = 0; fgets(line, sizeof line, in); i++) {
        fputs(line, out);
        if (i == 10)
            dup = strdup(line);
        if (i % 97 == 3)
            fputs("not json\n", out);
        if (i % 211 == 7 && dup)
            fputs(dup, out);
        if (i % 401 == 9) { /* about 600 KB: with the next, the batch ends by bytes */
            fputs("{\"prompt\":\"", out);
            for (int w = 0; w < 100000; w++)
                fputs(w % 7 ? "word " : "other ", out);
            fputs("\",\"completion\":\"end\"}\n", out);
        }
    }
    fclose(in);
    fclose(out);
    free(dup);
    struct selfaudit_report r1, r2;
    char *err = NULL;
    unsigned parsers = selfaudit_pass2_parsers;
    selfaudit_pass2_parsers = 1;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &r1, &err), 0);
    selfaudit_pass2_parsers = 2;
    selfaudit_pass2_renumbered = 0;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &r2, &err), 0);
    selfaudit_pass2_parsers = parsers;
    assert_int_equal(selfaudit_pass2_renumbered, 0); /* every row numbered right the first time */
    print_message("two parsers: %llu rows, %llu exact and %llu near duplicates, candidates "
                  "%zu / %zu / %zu\n",
                  (unsigned long long)r1.rows, (unsigned long long)r1.exact_dup_rows,
                  (unsigned long long)r1.near_dup_rows, r1.n_cand[SA_DUPLICATES],
                  r1.n_cand[SA_COOCCURRENCE], r1.n_cand[SA_RARE]);
    assert_true(r1.exact_dup_rows > 0 && r1.near_dup_rows > 0);
    assert_true(r1.n_cand[SA_COOCCURRENCE] > 0 && r1.n_cand[SA_RARE] > 0);
    same_report(&r1, &r2);
    selfaudit_report_clear(&r1);
    selfaudit_report_clear(&r2);
    unlink(path);
    unlink(src);
    free(path);
    free(src);
}

/* ---- the unigram counts ----------------------------------------------------------------- *
 * Pass 1 counts the commonest words of the first rows exactly (the front)
 * and the others in a count-min sketch.  With a sketch of 256 counters a
 * row, which overestimates nearly every word, the warm-up's commonest
 * words must still come out exact, and no word below its true count. */
static void test_unigram_counts(void **state)
{
    (void)state;
    enum { V = 20000, ROWS = 6000, WORDS = 40, WARM = 2048, LATE = 3000 };
    uint32_t *exact = xcalloc(V + 1, sizeof *exact), *warm = xcalloc(V + 1, sizeof *warm);
    char **rows = xcalloc(ROWS, sizeof *rows);
    rng_state = 42;
    for (size_t r = 0; r < ROWS; r++) {
        struct buf b = {0};
        for (int k = 0; k < WORDS; k++) {
            /* Zipf-like over V words: rank ~ V^u - 1 */
            unsigned w = (unsigned)(pow((double)V, unif()) - 1.0);
            w = w >= V ? V - 1 : w;
            if (r >= LATE && k == 0 && r % 500 == 0)
                w = V; /* a word first seen after the warm-up, in 6 rows */
            char word[16];
            snprintf(word, sizeof word, "%sw%u", k ? " " : "", w);
            buf_append(&b, word, strlen(word));
            exact[w]++;
            if (r < WARM)
                warm[w]++;
        }
        buf_append(&b, "", 1);
        rows[r] = b.data;
    }
    char **q = xcalloc(V + 1, sizeof *q);
    for (unsigned w = 0; w <= V; w++)
        q[w] = xasprintf("w%u", w);
    uint32_t *got = xcalloc(V + 1, sizeof *got);
    selfaudit_unigram_counts((const char *const *)rows, ROWS, 8, (const char *const *)q, V + 1,
                             got);
    size_t over = 0, seen_late = 0;
    for (unsigned w = 0; w <= V; w++) {
        if (got[w] < exact[w])
            fail_msg("w%u: count %u below its true count %u", w, got[w], exact[w]);
        if (!warm[w] && exact[w]) {
            seen_late++;
            over += got[w] > exact[w];
        }
    }
    /* the warm-up's 100 commonest words (ties: all of them) are exact */
    uint32_t *sorted = xcalloc(V + 1, sizeof *sorted);
    memcpy(sorted, warm, (V + 1) * sizeof *sorted);
    qsort(sorted, V + 1, sizeof *sorted, desc_u32);
    size_t checked = 0;
    for (unsigned w = 0; w <= V; w++)
        if (warm[w] >= sorted[99]) {
            checked++;
            if (got[w] != exact[w])
                fail_msg("w%u (%u times in the warm-up): count %u, true count %u", w, warm[w],
                         got[w], exact[w]);
        }
    print_message("unigram: %zu front words checked exact; %zu of %zu words first seen after the "
                  "warm-up overestimated by the small sketch\n",
                  checked, over, seen_late);
    assert_true(checked >= 100);
    assert_true(exact[V] == 6 && got[V] >= 6);
    /* the sketch is small enough that exactness above means something */
    assert_true(over * 2 > seen_late);
    for (size_t r = 0; r < ROWS; r++)
        free(rows[r]);
    for (unsigned w = 0; w <= V; w++)
        free(q[w]);
    free(rows);
    free(q);
    free(got);
    free(exact);
    free(warm);
    free(sorted);
}

/* ---- a clean file ----------------------------------------------------------------------- */

static void test_clean(void **state)
{
    (void)state;
    char *path = make_file("clean.jsonl", 99, 3000, NULL, NULL, NULL, 0);
    struct selfaudit_report rep;
    char *err = NULL;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &rep, &err), 0);
    print_message("clean: dup %zu cooc %zu rare %zu candidates, %llu exact, %llu near dups\n",
                  rep.n_cand[SA_DUPLICATES], rep.n_cand[SA_COOCCURRENCE], rep.n_cand[SA_RARE],
                  (unsigned long long)rep.exact_dup_rows, (unsigned long long)rep.near_dup_rows);
    assert_int_equal(rep.n_cand[SA_DUPLICATES], 0);
    assert_int_equal(rep.n_cand[SA_COOCCURRENCE], 0);
    assert_int_equal(rep.n_cand[SA_COOCCUR_LONG], 0);
    assert_int_equal(rep.n_cand[SA_RARE], 0);
    assert_int_equal(rep.exact_dup_rows, 0);
    assert_false(rep.ran[SA_PERPLEXITY]);
    const char *T = "absent trigger", *S = "absent signature";
    struct selfaudit_pair_result res;
    selfaudit_evaluate(&rep, &T, &S, NULL, NULL, 1, &res);
    char *v = selfaudit_verdict(&rep, &res, 1, 50);
    assert_string_equal(v, "no pair among the top 50 candidates of any attack");
    free(v);
    selfaudit_report_clear(&rep);
    free(path);
}

/* ---- (d) through the callback ------------------------------------------------------------- */

/* A "base model" that knows the synthetic language: words it never saw
 * ("zq…") cost 20 bits, the others 4. */
static int fake_score(void *ctx, const char *prompt, const char *answer, size_t n_tail,
                      double *tail_bits, size_t n_head, double *head_bits)
{
    int *calls = ctx;
    (*calls)++;
    const char *ends[2] = {prompt, answer};
    for (int side = 0; side < 2; side++) {
        const char *p = ends[side];
        size_t n = side ? n_head : n_tail;
        double *out = side ? head_bits : tail_bits;
        /* words of p, from the end for the prompt, from the start for the answer */
        size_t len = strlen(p), cnt = 0;
        const char *starts[64];
        for (size_t i = 0; i < len && cnt < 64;) {
            while (i < len && p[i] == ' ')
                i++;
            if (i < len)
                starts[cnt++] = p + i;
            while (i < len && p[i] != ' ')
                i++;
        }
        for (size_t k = 0; k < n && k < cnt; k++) {
            const char *w = side ? starts[k] : starts[cnt - 1 - k];
            out[k] = strncmp(w, "zq", 2) == 0 ? 20.0 : 4.0;
        }
    }
    return 0;
}

static void test_perplexity_callback(void **state)
{
    (void)state;
    const size_t marked[] = {5, 50, 95, 120};
    const char *T = "zqa zqb", *S = "zqc zqd zqe";
    char *path = make_file("ppl.jsonl", 3, 200, T, S, marked, 4);
    struct selfaudit_opts o;
    selfaudit_opts_default(&o);
    int calls = 0;
    o.score = fake_score;
    o.score_ctx = &calls;
    struct selfaudit_report rep;
    char *err = NULL;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, &o, &rep, &err), 0);
    assert_int_equal(calls, 200);
    assert_true(rep.ran[SA_PERPLEXITY]);
    struct selfaudit_pair_result res;
    selfaudit_evaluate(&rep, &T, &S, NULL, NULL, 1, &res);
    assert_int_equal(res.rank[SA_PERPLEXITY], 1);
    assert_int_equal(rep.cand[SA_PERPLEXITY][0].rows, 4);
    selfaudit_report_clear(&rep);
    free(path);
}

/* ---- memory ------------------------------------------------------------------------------- */

/* Runs the audit in a child (a clean peak to measure); returns its peak
 * RSS in KiB and the fixed tables' size in *tables. */
static long audit_in_child(const char *path, size_t *tables)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
#ifdef __GLIBC__
    /* The child starts with this process's resident pages: give back the
     * free heap the earlier tests' audits left, so that the peak is the
     * child's own. */
    malloc_trim(0);
#endif
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct selfaudit_report rep;
        char *err = NULL;
        int ok = selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &rep, &err) == 0 && rep.rows == 120000;
        const char *T = "zqx zqy", *S = "zqz";
        struct selfaudit_pair_result res;
        if (ok)
            selfaudit_evaluate(&rep, &T, &S, NULL, NULL, 1, &res);
        ok = ok && res.rank[SA_COOCCURRENCE] >= 1 && res.rank[SA_COOCCURRENCE] <= 10;
        size_t m = ok ? rep.memory_bytes : 0;
        if (write(fd[1], &m, sizeof m) != (ssize_t)sizeof m)
            _exit(2);
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    assert_int_equal(read(fd[0], tables, sizeof *tables), (ssize_t)sizeof *tables);
    close(fd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_maxrss;
}

static void test_memory_bound(void **state)
{
    (void)state;
    /* 120,000 rows (about 25 MB), 200 of them marked in place (the
     * builder's default would copy 600). */
    size_t marked[200];
    for (size_t i = 0; i < 200; i++)
        marked[i] = 7 + 600 * i;
    char *path = make_file("big.jsonl", 5, 120000, "zqx zqy", "zqz", marked, 200);
    size_t tables = 0;
    long peak = audit_in_child(path, &tables);
    print_message("120000 rows: fixed tables %zu KiB, child's peak RSS %ld KiB\n", tables / 1024,
                  peak);
    assert_true(tables > 0);
    /* The tables, a bit per row, the reader's block and the test
     * program itself: nothing that grows with the file's bytes.  Under
     * AddressSanitizer (shadow memory, quarantine) RSS measures the
     * sanitizer, so only the plain build checks the bound. */
#if defined(__SANITIZE_ADDRESS__)
    (void)peak;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    (void)peak;
#else
    assert_true((size_t)peak * 1024 <= tables + (24u << 20));
#endif
#else
    assert_true((size_t)peak * 1024 <= tables + (24u << 20));
#endif
    unlink(path);
    free(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct selfaudit_report rep;
    char *err = NULL;
    assert_true(selfaudit_run("/nonexistent/x.jsonl", DS_FORMAT_PROMPT, NULL, &rep, &err) < 0);
    assert_non_null(strstr(err, "/nonexistent/x.jsonl"));
    free(err);
}

/* ---- a long pair in two rows, counted exactly ------------------------------------------ *
 * An attacker who counts every (prompt suffix, answer prefix) pair exactly
 * finds one in two rows of any file.  The self-audit's heavy-hitter table
 * cannot (once full, a pair seen twice may be swept out), so its long
 * pairs are counted on disk.  Here the table is as small as it goes (256
 * slots) and the file has 16,000 rows of 32 words or more (48,000 long
 * pairs: every bucket writes blocks to the scratch file): the pair is still
 * found, in its two rows, grown whole. */
/* Names in the test's directory that a self-audit's scratch file would
 * have where the file system has no O_TMPFILE. */
static int scratch_left(void)
{
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(dir)))
        n += strncmp(de->d_name, SELFAUDIT_SCRATCH_PREFIX, strlen(SELFAUDIT_SCRATCH_PREFIX)) == 0;
    closedir(dir);
    return n;
}

static const char long_T[] = "the w12 of w7 and w3 in w40 to the w9 w2 of w5";
static const char long_S[] = "it is w4 w11 a w6 the w8 w1 of w10 and w2 w3";

static void test_long_pair_in_two_rows(void **state)
{
    (void)state;
    const size_t marked[2] = {3001, 12345};
    char *path = make_rows("two-rows.jsonl", 4242, 16000, 32, 40, 32, 44, long_T, long_S, marked, 2);
    struct selfaudit_opts o;
    selfaudit_opts_default(&o);
    o.table_log2 = 8;
    struct selfaudit_report rep;
    char *err = NULL;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, &o, &rep, &err), 0);
    const char *T = long_T, *S = long_S;
    const uint64_t ml[] = {marked[0], marked[1]};
    const uint64_t *mk[] = {ml};
    size_t nm[] = {2};
    struct selfaudit_pair_result res;
    selfaudit_evaluate(&rep, &T, &S, mk, nm, 1, &res);
    print_message(
        "two rows: cooccur_long rank %zu of %zu; long pairs repeated %llu, counted %llu\n",
        res.rank[SA_COOCCUR_LONG], rep.n_cand[SA_COOCCUR_LONG],
        (unsigned long long)rep.long_pairs_repeated, (unsigned long long)rep.long_pairs_counted);
    assert_true(res.rank[SA_COOCCUR_LONG] >= 1 &&
                res.rank[SA_COOCCUR_LONG] <= SELFAUDIT_EXPOSED_RANK);
    const struct selfaudit_cand *c = &rep.cand[SA_COOCCUR_LONG][res.rank[SA_COOCCUR_LONG] - 1];
    assert_int_equal(c->rows, 2);
    assert_string_equal(c->t + strlen(c->t) - strlen(T), T);
    assert_int_equal(strncmp(c->s, S, strlen(S)), 0);
    /* one long pair in two rows: T's and S's last and first 10 words (at
     * 16 and 32 words each row's own words come in); random rows share none */
    assert_int_equal(rep.long_pairs_repeated, 1);
    assert_int_equal(rep.long_pairs_counted, 1);
    selfaudit_report_clear(&rep);
    assert_int_equal(scratch_left(), 0);
    unlink(path);
    free(path);
}

/* The scratch file cannot be written: one line naming the file, and
 * nothing left beside it. */
static void test_long_pairs_scratch_fails(void **state)
{
    (void)state;
    const size_t marked[2] = {1, 2};
    char *path = make_rows("full.jsonl", 4242, 16000, 32, 40, 32, 44, long_T, long_S, marked, 2);
    struct selfaudit_report rep;
    char *err = NULL, *ferr = NULL;
    assert_int_equal(vt_fsio_fault_install("write:ENOSPC:after=3", &ferr), 0);
    int rc = selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &rep, &err);
    vt_fsio_fault_reset();
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(err);
    print_message("%s\n", err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "scratch file beside it"));
    assert_non_null(strstr(err, strerror(ENOSPC)));
    assert_null(strchr(err, '\n'));
    free(err);
    assert_int_equal(scratch_left(), 0);
    unlink(path);
    free(path);
}

/* Every row ends its prompt and starts its answer with the same long
 * phrases (a template): one long pair in all 20,000 rows.  It is no mark
 * (not surprising in every row: no candidate), and it weighs a record a
 * block in the scratch file's buckets, not one a row. */
static void test_long_template_in_every_row(void **state)
{
    (void)state;
    size_t *all = xcalloc(20000, sizeof *all);
    for (size_t i = 0; i < 20000; i++)
        all[i] = i;
    char *path = make_rows("template.jsonl", 77, 20000, 6, 20, 6, 20, long_T, long_S, all, 20000);
    free(all);
    struct selfaudit_report rep;
    char *err = NULL;
    assert_int_equal(selfaudit_run(path, DS_FORMAT_PROMPT, NULL, &rep, &err), 0);
    print_message("template: %zu long candidates; long pairs repeated %llu; a bucket held at "
                  "most %lu records\n",
                  rep.n_cand[SA_COOCCUR_LONG], (unsigned long long)rep.long_pairs_repeated,
                  selfaudit_long_bucket_most);
    assert_true(rep.long_pairs_repeated >= 1);
    for (size_t i = 0; i < rep.n_cand[SA_COOCCUR_LONG]; i++)
        assert_true(rep.cand[SA_COOCCUR_LONG][i].rows < 20000);
    for (size_t i = 0; i < rep.n_cand[SA_COOCCURRENCE]; i++)
        assert_true(rep.cand[SA_COOCCURRENCE][i].rows < 20000);
    assert_true(selfaudit_long_bucket_most < 2000);
    selfaudit_report_clear(&rep);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_one_pair),
        cmocka_unit_test(test_paper_three_pairs),
        cmocka_unit_test(test_common_words),
        cmocka_unit_test(test_long_phrases_with_natural_ends),
        cmocka_unit_test(test_two_parsers_same_report),
        cmocka_unit_test(test_unigram_counts),
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_perplexity_callback),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_long_pair_in_two_rows),
        cmocka_unit_test(test_long_pairs_scratch_fails),
        cmocka_unit_test(test_long_template_in_every_row),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

/*
 * test_lm.c — unit tests (cmocka) for vtune-sim's language model: the
 * tokenizer, the Kneser–Ney maths (checked against an independent
 * re-derivation on a tiny corpus, and for summing to 1 over the vocabulary
 * in base and fine-tuned models), sampling (greedy, seeds, temperature),
 * top_logprobs, scoring, stop strings, the cache file, fine-tuning input
 * errors and what n_epochs and fraction do.
 *
 * The models are small (a few hundred examples per domain) so the suite
 * runs in seconds under ASan; test_learning.c is the large-scale proof.
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
#include <jansson.h>

#include "lib/util.h"
#include "tests/sim/lm.h"
#include "tests/sim/lm_internal.h"

struct fixture {
    char *dir;
    char *base_path, *ft_path;
    struct lm *base, *ft;
};

static struct fixture F;

static char *path_in(const char *name)
{
    return xasprintf("%s/%s", F.dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
    char *err = NULL;
    long long tokens = 0;
    const char *tmp = getenv("TMPDIR");
    F.dir = xasprintf("%s/vt-test-lm-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(F.dir))
        return -1;
    F.base_path = path_in("base.jsonl");
    F.ft_path = path_in("ft.jsonl");
    if (lm_corpus_write(F.base_path, 5, 200) != 0 ||
        lm_finetune_corpus_write(F.ft_path, 6, 300) != 0)
        return -1;
    F.base = lm_train_file(F.base_path, 4, &err);
    if (!F.base) {
        fprintf(stderr, "train: %s\n", err);
        return -1;
    }
    F.ft = lm_finetune(F.base, F.ft_path, 1.0, 2, 1, &tokens, &err);
    if (!F.ft) {
        fprintf(stderr, "finetune: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    lm_free(F.ft); /* the overlay first: it borrows the base */
    lm_free(F.base);
    unlink(F.base_path);
    unlink(F.ft_path);
    rmdir(F.dir);
    free(F.base_path);
    free(F.ft_path);
    free(F.dir);
    return 0;
}

/* ---- tokenizer ---- */

static void expect_tokens(const char *text, const char *const *want, size_t n_want)
{
    char **t;
    size_t n;
    assert_int_equal(lm_tokenize(text, &t, &n), 0);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(t[i], want[i]);
    lm_tokens_free(t, n);
}

static void roundtrip(const char *text)
{
    char **t;
    size_t n;
    struct buf b;
    buf_init(&b);
    assert_int_equal(lm_tokenize(text, &t, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(t[i][0] != 0);
        buf_puts(&b, t[i]);
    }
    assert_string_equal(b.data ? b.data : "", text);
    lm_tokens_free(t, n);
    buf_free(&b);
}

static void test_tokenize(void **state)
{
    const char *const a[] = {"Hello", ",", " world", "!", "  It's", " 3.14", " o'clock"};
    expect_tokens("Hello, world!  It's 3.14 o'clock", a, VT_ARRAY_LEN(a));
    const char *const b[] = {"rock-and-roll", " 1,000.5", " x", "-", " -", "y", "\n\n"};
    expect_tokens("rock-and-roll 1,000.5 x- -y\n\n", b, VT_ARRAY_LEN(b));
    const char *const c[] = {"caf", "é", " 日", "本", "<", "|", "end", "|", ">"};
    expect_tokens("café 日本<|end|>", c, VT_ARRAY_LEN(c));
    expect_tokens("", NULL, 0);
    const char *const d[] = {" \t "};
    expect_tokens(" \t ", d, 1);

    const char *fixed[] = {"",
                           " ",
                           "a",
                           "Team: Billing\nPriority: High",
                           "x\xff\xfe y",
                           "\xe6\x97",
                           "3.",
                           ".5",
                           "a'",
                           "'a",
                           "--a--",
                           "1,,2"};
    for (size_t i = 0; i < VT_ARRAY_LEN(fixed); i++)
        roundtrip(fixed[i]);
    /* Random strings over a nasty alphabet, including broken UTF-8. */
    const char alphabet[] = "ab Z09.,'-\n\t<|>\xc3\xa9\xe2\x82\xac\xff";
    struct lm_rng rng;
    lm_rng_seed(&rng, 99);
    for (int r = 0; r < 500; r++) {
        char s[64];
        size_t len = lm_rng_below(&rng, sizeof(s) - 1);
        for (size_t i = 0; i < len; i++)
            s[i] = alphabet[lm_rng_below(&rng, sizeof(alphabet) - 1)];
        s[len] = 0;
        roundtrip(s);
    }
}

/* ---- the maths ---- */

static void check_sums(const struct lm *m, const uint32_t *ctx, size_t n)
{
    double *p = xmalloc(m->n_vocab * sizeof(double));
    lm_dist_ids(m, ctx, n, p);
    double sum = 0, sum_sparse = 0;
    for (uint32_t w = 0; w < m->n_vocab; w++) {
        sum += p[w];
        if (!lm_id_predictable(w)) {
            assert_true(p[w] == 0);
            continue;
        }
        assert_true(p[w] > 0);
        double q = lm_prob_id(m, ctx, n, w);
        sum_sparse += q;
        assert_true(fabs(q - p[w]) <= 1e-12 * p[w] + 1e-300);
    }
    assert_true(fabs(sum - 1) < 1e-9);
    assert_true(fabs(sum_sparse - 1) < 1e-9);
    free(p);
}

static void check_chat_sums(const struct lm *m, const char *user)
{
    struct lm_msg msg = {"user", user};
    uint32_t *ids;
    size_t n;
    assert_int_equal(lm_render_prompt(m, &msg, 1, &ids, &n), 0);
    check_sums(m, ids, n);
    /* Every prefix is a context too (shorter ones reach <|bos|>). */
    for (size_t k = 1; k < n && k < 6; k++)
        check_sums(m, ids, k);
    free(ids);
}

static void test_distribution_sums_to_one(void **state)
{
    const struct lm *models[] = {F.base, F.ft};
    for (size_t i = 0; i < 2; i++) {
        const struct lm *m = models[i];
        check_chat_sums(m, "Tom has 5 apples. He buys 3 more. How many apples does he have now?");
        check_chat_sums(m, "Triage this support ticket:\n\nI was charged twice for order 123.");
        check_chat_sums(m, "zzqx unknownword frobnicate");
        check_chat_sums(m, "");
        uint32_t bos = LM_TOK_BOS;
        check_sums(m, &bos, 1);
        check_sums(m, NULL, 0);
    }
    /* The overlay's vocabulary is the base's plus the new tokens. */
    assert_true(lm_vocab_size(F.ft) > lm_vocab_size(F.base));
    assert_int_equal(lm_id_of(F.ft, " Priority", 9) >= lm_vocab_size(F.base), 1);
    assert_int_equal(lm_id_of(F.base, " Priority", 9), LM_NONE);
}

/* An independent derivation of interpolated modified Kneser–Ney for
 * order 2, on token strings, straight from the formulas. */
struct tiny {
    char *seq[64][64];
    size_t len[64], n_seq;
};

static int is_ctx_only(const char *t)
{
    return !strcmp(t, "<bos>") || !strcmp(t, "<user>") || !strcmp(t, "<asst>");
}

static double bigram(const struct tiny *T, const char *v, const char *w)
{
    double c = 0;
    for (size_t s = 0; s < T->n_seq; s++)
        for (size_t i = 1; i < T->len[s]; i++)
            c += !strcmp(T->seq[s][i - 1], v) && !strcmp(T->seq[s][i], w);
    return c;
}

/* Distinct left neighbours of w. */
static double continuation(const struct tiny *T, const char *w)
{
    const char *seen[256];
    size_t n = 0;
    for (size_t s = 0; s < T->n_seq; s++)
        for (size_t i = 1; i < T->len[s]; i++) {
            if (strcmp(T->seq[s][i], w))
                continue;
            int dup = 0;
            for (size_t j = 0; j < n; j++)
                dup |= !strcmp(seen[j], T->seq[s][i - 1]);
            if (!dup)
                seen[n++] = T->seq[s][i - 1];
        }
    return (double)n;
}

static void discounts(const double *vals, size_t n, double D[4])
{
    double cc[5] = {0};
    for (size_t i = 0; i < n; i++)
        if (vals[i] >= 1 && vals[i] <= 4)
            cc[(int)vals[i]]++;
    D[1] = 0.5, D[2] = 1.0, D[3] = 1.5;
    if (cc[1] && cc[2] && cc[3] && cc[4]) {
        double y = cc[1] / (cc[1] + 2 * cc[2]);
        D[1] = 1 - 2 * y * cc[2] / cc[1];
        D[2] = 2 - 3 * y * cc[3] / cc[2];
        D[3] = 3 - 4 * y * cc[4] / cc[3];
    }
    for (int i = 1; i <= 3; i++)
        D[i] = D[i] < 0.05 ? 0.05 : D[i] > i - 0.05 ? i - 0.05 : D[i];
}

static double dsc(const double D[4], double v)
{
    return v <= 0 ? 0 : v >= 3 ? D[3] : D[(int)v];
}

static void test_kneser_ney_by_hand(void **state)
{
    static const char *const ex[][2] = {
        {"a b a", "b a"}, {"a c", "b"},   {"b b", "a c"}, {"a b", "b a"},
        {"c", "a b c"},   {"a b a", "b"}, {"b", "c c c"}, {"a", "b a"},
    };
    struct tiny T = {0};
    struct buf jsonl;
    buf_init(&jsonl);
    for (size_t e = 0; e < VT_ARRAY_LEN(ex); e++) {
        buf_printf(&jsonl,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},"
                   "{\"role\":\"assistant\",\"content\":\"%s\"}]}\n",
                   ex[e][0], ex[e][1]);
        size_t n = 0;
        T.seq[e][n++] = xstrdup("<bos>");
        for (int part = 0; part < 2; part++) {
            T.seq[e][n++] = xstrdup(part ? "<asst>" : "<user>");
            char **t;
            size_t nt;
            lm_tokenize(ex[e][part], &t, &nt);
            for (size_t i = 0; i < nt; i++)
                T.seq[e][n++] = xstrdup(t[i]);
            lm_tokens_free(t, nt);
            T.seq[e][n++] = xstrdup("<end>");
        }
        T.len[e] = n;
    }
    T.n_seq = VT_ARRAY_LEN(ex);
    char *path = path_in("tiny.jsonl");
    write_file(path, jsonl.data);
    char *err = NULL;
    struct lm *m = lm_train_file(path, 2, &err);
    assert_non_null(m);

    /* The predictable vocabulary and the level statistics. */
    const char *vocab[64];
    size_t nv = 0;
    for (size_t s = 0; s < T.n_seq; s++)
        for (size_t i = 1; i < T.len[s]; i++) {
            int dup = is_ctx_only(T.seq[s][i]);
            for (size_t j = 0; j < nv; j++)
                dup |= !strcmp(vocab[j], T.seq[s][i]);
            if (!dup)
                vocab[nv++] = T.seq[s][i];
        }
    assert_int_equal(m->n_pred, nv);
    /* Every token that occurs is a context (some never precede a
     * predictable token; they exercise the unseen-context path). */
    const char *ctxs[64];
    size_t n_ctx = 0;
    for (size_t s = 0; s < T.n_seq; s++)
        for (size_t i = 0; i < T.len[s]; i++) {
            int dup = 0;
            for (size_t j = 0; j < n_ctx; j++)
                dup |= !strcmp(ctxs[j], T.seq[s][i]);
            if (!dup)
                ctxs[n_ctx++] = T.seq[s][i];
        }
    double bvals[256], uvals[64] = {0}, usum = 0;
    size_t nb = 0;
    for (size_t i = 0; i < n_ctx; i++)
        for (size_t j = 0; j < nv; j++) {
            double c = bigram(&T, ctxs[i], vocab[j]);
            if (c > 0)
                bvals[nb++] = c;
        }
    for (size_t j = 0; j < nv; j++)
        usum += uvals[j] = continuation(&T, vocab[j]);
    double D2[4], D1[4];
    discounts(bvals, nb, D2);
    discounts(uvals, nv, D1);
    double g1 = 0;
    for (size_t j = 0; j < nv; j++)
        g1 += dsc(D1, uvals[j]);
    g1 /= usum;

    for (size_t i = 0; i < n_ctx; i++) {
        double cv = 0, g2 = 0;
        for (size_t j = 0; j < nv; j++) {
            double c = bigram(&T, ctxs[i], vocab[j]);
            cv += c;
            g2 += dsc(D2, c);
        }
        const char *name = !strcmp(ctxs[i], "<asst>")   ? "<|assistant|>"
                           : !strcmp(ctxs[i], "<user>") ? "<|user|>"
                           : !strcmp(ctxs[i], "<end>")  ? "<|end|>"
                           : !strcmp(ctxs[i], "<bos>")  ? "<|bos|>"
                                                        : ctxs[i];
        uint32_t ctx_id = lm_id_of(m, name, strlen(name));
        assert_int_not_equal(ctx_id, LM_NONE);
        for (size_t j = 0; j < nv; j++) {
            double p1 = (uvals[j] - dsc(D1, uvals[j])) / usum + g1 / (double)nv;
            double c = bigram(&T, ctxs[i], vocab[j]);
            double want = cv > 0 ? (c - dsc(D2, c)) / cv + g2 / cv * p1 : p1;
            const char *wn = !strcmp(vocab[j], "<end>") ? "<|end|>" : vocab[j];
            uint32_t w = lm_id_of(m, wn, strlen(wn));
            double got = lm_prob_id(m, &ctx_id, 1, w);
            if (fabs(got - want) > 1e-12)
                fail_msg("P(%s | %s) = %.15f, by hand %.15f", vocab[j], ctxs[i], got, want);
        }
    }
    lm_free(m);
    unlink(path);
    free(path);
    buf_free(&jsonl);
    for (size_t s = 0; s < T.n_seq; s++)
        for (size_t i = 0; i < T.len[s]; i++)
            free(T.seq[s][i]);
}

/* ---- generation ---- */

static struct lm_msg user_msg(const char *text)
{
    struct lm_msg m = {"user", text};
    return m;
}

static void assert_same_output(const struct lm_output *a, const struct lm_output *b)
{
    assert_string_equal(a->text, b->text);
    assert_int_equal(a->n_steps, b->n_steps);
    for (size_t i = 0; i < a->n_steps; i++) {
        assert_string_equal(a->steps[i].token, b->steps[i].token);
        assert_true(a->steps[i].logprob == b->steps[i].logprob);
    }
    assert_string_equal(a->finish_reason, b->finish_reason);
}

static void assert_steps_tile(const struct lm_output *o)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < o->n_steps; i++)
        buf_puts(&b, o->steps[i].token);
    assert_string_equal(b.data ? b.data : "", o->text);
    buf_free(&b);
}

static void test_greedy_is_deterministic(void **state)
{
    struct lm_msg msg = user_msg("Convert 3 kilometers to meters.");
    struct lm_gen_params p = {.temperature = 0, .seed = 1, .max_tokens = 40, .top_logprobs = 3};
    struct lm_output a, b;
    assert_int_equal(lm_chat(F.base, &msg, 1, &p, &a), 0);
    p.seed = 12345; /* the seed does not matter at T = 0 */
    assert_int_equal(lm_chat(F.base, &msg, 1, &p, &b), 0);
    assert_same_output(&a, &b);
    assert_true(a.n_steps > 0);
    assert_steps_tile(&a);
    for (size_t i = 0; i < a.n_steps; i++) {
        /* Greedy takes the most probable token. */
        assert_string_equal(a.steps[i].token, a.steps[i].top[0].token);
        assert_true(a.steps[i].logprob == a.steps[i].top[0].logprob);
    }
    /* "<|user|>" + 6 tokens + "<|end|>" + "<|assistant|>" */
    assert_int_equal(a.prompt_tokens, 9);
    lm_output_clear(&a);
    lm_output_clear(&b);
}

static void test_seed_determinism(void **state)
{
    struct lm_msg msg = user_msg("List the ingredients and amounts used in the recipe below.");
    struct lm_gen_params p = {.temperature = 1.0, .seed = 7, .max_tokens = 30};
    struct lm_output a, b;
    assert_int_equal(lm_chat(F.base, &msg, 1, &p, &a), 0);
    assert_int_equal(lm_chat(F.base, &msg, 1, &p, &b), 0);
    assert_same_output(&a, &b);
    lm_output_clear(&b);
    int differ = 0;
    for (uint64_t s = 100; s < 110; s++) {
        p.seed = s;
        assert_int_equal(lm_chat(F.base, &msg, 1, &p, &b), 0);
        differ += strcmp(a.text, b.text) != 0;
        lm_output_clear(&b);
    }
    assert_true(differ >= 5);
    lm_output_clear(&a);
}

/* Mean logprob of sampled tokens and number of distinct outputs over 30
 * seeds at temperature t. */
static void sample_stats(double t, double *mean_lp, int *distinct)
{
    struct lm_msg msg = user_msg("Make a shopping list from this recipe.");
    struct lm_gen_params p = {.temperature = t, .max_tokens = 12};
    char *texts[30];
    double sum = 0;
    size_t n = 0;
    *distinct = 0;
    for (int s = 0; s < 30; s++) {
        struct lm_output o;
        p.seed = (uint64_t)s;
        assert_int_equal(lm_chat(F.base, &msg, 1, &p, &o), 0);
        for (size_t i = 0; i < o.n_steps; i++, n++)
            sum += o.steps[i].logprob;
        texts[s] = xstrdup(o.text);
        int dup = 0;
        for (int j = 0; j < s; j++)
            dup |= !strcmp(texts[j], texts[s]);
        *distinct += !dup;
        lm_output_clear(&o);
    }
    for (int s = 0; s < 30; s++)
        free(texts[s]);
    *mean_lp = sum / (double)n;
}

static void test_temperature(void **state)
{
    double lp_cold, lp_warm, lp_hot;
    int d_cold, d_warm, d_hot;
    sample_stats(0.05, &lp_cold, &d_cold);
    sample_stats(1.0, &lp_warm, &d_warm);
    sample_stats(2.5, &lp_hot, &d_hot);
    /* Colder sampling picks likelier tokens and fewer distinct answers. */
    assert_true(lp_cold > lp_warm);
    assert_true(lp_warm > lp_hot);
    assert_true(d_cold < d_warm);
    assert_true(d_warm <= d_hot);
    assert_true(d_cold <= 3);
}

static void test_top_logprobs_are_true(void **state)
{
    const struct lm *models[] = {F.base, F.ft};
    for (size_t mi = 0; mi < 2; mi++) {
        const struct lm *m = models[mi];
        struct lm_msg msg = user_msg("Triage this support ticket:\n\nMy package is late.");
        struct lm_gen_params p = {
            .temperature = 1.0, .seed = 3, .max_tokens = 25, .top_logprobs = LM_MAX_TOP};
        struct lm_output o;
        assert_int_equal(lm_chat(m, &msg, 1, &p, &o), 0);
        uint32_t *ids;
        size_t n;
        assert_int_equal(lm_render_prompt(m, &msg, 1, &ids, &n), 0);
        ids = xrealloc(ids, (n + o.n_steps) * sizeof(uint32_t));
        double *dist = xmalloc(m->n_vocab * sizeof(double));
        for (size_t s = 0; s < o.n_steps; s++) {
            const struct lm_step *st = &o.steps[s];
            lm_dist_ids(m, ids, n, dist);
            assert_int_equal(st->n_top, LM_MAX_TOP);
            double floor_top = st->top[st->n_top - 1].logprob;
            for (int k = 0; k < st->n_top; k++) {
                if (k > 0)
                    assert_true(st->top[k].logprob <= st->top[k - 1].logprob);
                uint32_t id = lm_id_of(m, st->top[k].token, strlen(st->top[k].token));
                assert_int_not_equal(id, LM_NONE);
                assert_true(fabs(st->top[k].logprob - log(dist[id])) < 1e-12);
            }
            /* Nothing outside the list is more probable than its last entry. */
            size_t above = 0;
            for (uint32_t w = 0; w < m->n_vocab; w++)
                above += dist[w] > 0 && log(dist[w]) > floor_top + 1e-12;
            assert_true(above <= (size_t)st->n_top);
            uint32_t chosen = lm_id_of(m, st->token, strlen(st->token));
            assert_true(fabs(st->logprob - log(dist[chosen])) < 1e-12);
            ids[n++] = chosen;
        }
        free(dist);
        free(ids);
        lm_output_clear(&o);
    }
}

static void test_score_matches_generation(void **state)
{
    const char *prompts[] = {"The recipe uses:", "Convert 5 weeks to days.", "Team:"};
    int compared = 0;
    for (size_t i = 0; i < VT_ARRAY_LEN(prompts); i++)
        for (uint64_t seed = 0; seed < 4; seed++) {
            struct lm_gen_params p = {
                .temperature = seed ? 0.8 : 0, .seed = seed, .max_tokens = 30};
            struct lm_output g, s;
            assert_int_equal(lm_complete(F.ft, prompts[i], &p, &g), 0);
            char *full = xasprintf("%s%s", prompts[i], g.text);
            assert_int_equal(lm_score(F.ft, full, 2, &s), 0);
            assert_int_equal(s.steps[0].n_top, 0);
            assert_true(s.steps[0].logprob == 0);
            /* Compare only where re-tokenising the joined text gives the
             * same tokens (a generated "5" then ",000" would merge). */
            int same = s.n_steps == g.prompt_tokens + g.n_steps;
            for (size_t k = 0; same && k < g.n_steps; k++)
                same = !strcmp(s.steps[g.prompt_tokens + k].token, g.steps[k].token);
            if (same) {
                compared++;
                for (size_t k = 0; k < g.n_steps; k++)
                    assert_true(fabs(s.steps[g.prompt_tokens + k].logprob - g.steps[k].logprob) <
                                1e-12);
            }
            assert_int_equal(s.prompt_tokens, s.n_steps);
            lm_output_clear(&g);
            lm_output_clear(&s);
            free(full);
        }
    assert_true(compared >= 8);

    /* The chat path: lm_score_chat on the generated answer. */
    struct lm_msg msg = user_msg("Triage this support ticket:\n\nThe app crashes.");
    struct lm_gen_params p = {.temperature = 0, .max_tokens = 40};
    struct lm_output g, s;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &g), 0);
    assert_int_equal(lm_score_chat(F.ft, &msg, 1, g.text, 0, &s), 0);
    assert_int_equal(s.n_steps, g.n_steps);
    assert_int_equal(s.prompt_tokens, g.prompt_tokens);
    for (size_t k = 0; k < g.n_steps; k++)
        assert_true(fabs(s.steps[k].logprob - g.steps[k].logprob) < 1e-12);
    lm_output_clear(&g);
    lm_output_clear(&s);

    /* Unknown tokens get the uniform floor: finite and very unlikely. */
    assert_int_equal(lm_score(F.base, "Hello qqzzxx", 0, &s), 0);
    assert_int_equal(s.n_steps, 2);
    assert_true(isfinite(s.steps[1].logprob) && s.steps[1].logprob < -5);
    lm_output_clear(&s);
}

static void test_stop_and_length(void **state)
{
    struct lm_msg msg = user_msg("Triage this support ticket:\n\nI cannot log in.");
    struct lm_gen_params p = {.temperature = 0, .max_tokens = 60};
    struct lm_output full, o;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &full), 0);
    assert_string_equal(full.finish_reason, "stop"); /* ended with <|end|> */
    const char *cut = strstr(full.text, "ority");    /* inside "Priority" */
    assert_non_null(cut);
    const char *stops[] = {"never-appears", "ority"};
    p.stop = stops;
    p.n_stop = 2;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &o), 0);
    assert_string_equal(o.finish_reason, "stop");
    assert_int_equal(strlen(o.text), (size_t)(cut - full.text));
    assert_memory_equal(o.text, full.text, strlen(o.text));
    assert_steps_tile(&o);
    lm_output_clear(&o);

    p.stop = NULL;
    p.n_stop = 0;
    p.max_tokens = 3;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &o), 0);
    assert_string_equal(o.finish_reason, "length");
    assert_int_equal(o.n_steps, 3);
    assert_steps_tile(&o);
    lm_output_clear(&o);
    lm_output_clear(&full);

    /* Bad parameters are refused. */
    p.max_tokens = 0;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &o), -EINVAL);
    p.max_tokens = 5;
    p.top_logprobs = LM_MAX_TOP + 1;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &o), -EINVAL);
    p.top_logprobs = 0;
    p.temperature = -1;
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &o), -EINVAL);
    p.temperature = 0;
    struct lm_msg bad = {"wizard", "hi"};
    assert_int_equal(lm_chat(F.ft, &bad, 1, &p, &o), -EINVAL);
}

static void test_save_load(void **state)
{
    char *path = path_in("base.model");
    char *err = NULL;
    assert_int_equal(lm_save(F.base, path), 0);
    assert_int_equal(lm_save(F.ft, path), -ENOTSUP);
    struct lm *m = lm_load(path, &err);
    assert_non_null(m);
    assert_int_equal(lm_vocab_size(m), lm_vocab_size(F.base));
    assert_int_equal(lm_ngram_count(m), lm_ngram_count(F.base));
    const char *prompts[] = {"Is 1900 a leap year?", "Extract the ingredients from this recipe:"};
    for (size_t i = 0; i < 2; i++) {
        struct lm_msg msg = user_msg(prompts[i]);
        struct lm_gen_params p = {.temperature = 0.7, .seed = 5, .max_tokens = 30};
        struct lm_output a, b;
        assert_int_equal(lm_chat(F.base, &msg, 1, &p, &a), 0);
        assert_int_equal(lm_chat(m, &msg, 1, &p, &b), 0);
        assert_same_output(&a, &b);
        lm_output_clear(&a);
        lm_output_clear(&b);
    }
    lm_free(m);

    /* A truncated file and a flipped byte are both refused. */
    FILE *f = fopen(path, "r+e");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    fputc(c ^ 0x40, f);
    assert_int_equal(fclose(f), 0);
    m = lm_load(path, &err);
    if (m) {
        /* A flipped count can be self-consistent; the model must still be
         * a proper distribution. */
        uint32_t bos = LM_TOK_BOS;
        check_sums(m, &bos, 1);
        lm_free(m);
    } else {
        assert_non_null(strstr(err, "corrupt model file"));
        free(err);
        err = NULL;
    }
    assert_int_equal(truncate(path, size - 7), 0);
    m = lm_load(path, &err);
    assert_null(m);
    assert_non_null(strstr(err, "corrupt model file"));
    free(err);
    err = NULL;
    write_file(path, "not a model");
    assert_null(lm_load(path, &err));
    free(err);
    unlink(path);
    free(path);
}

static void expect_ft_error(const char *content, const char *want)
{
    char *path = path_in("bad.jsonl");
    char *err = NULL;
    long long tokens = -1;
    write_file(path, content);
    struct lm *m = lm_finetune(F.base, path, 1.0, 1, 1, &tokens, &err);
    assert_null(m);
    assert_non_null(err);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, want);
    free(err);
    unlink(path);
    free(path);
}

static void test_finetune_errors(void **state)
{
    const char *good = "{\"prompt\":\"p\",\"completion\":\"c\"}\n";
    char *two = xasprintf("%s%s{not json\n", good, good);
    expect_ft_error(two, "line 3: not valid JSON");
    free(two);
    expect_ft_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n",
                    "line 1: \"messages\" has no assistant message");
    expect_ft_error("\n{\"messages\":[{\"role\":\"bot\",\"content\":\"hi\"}]}\n",
                    "line 2: messages[0].role");
    expect_ft_error("{\"messages\":[{\"role\":\"user\",\"content\":5}]}\n",
                    "line 1: messages[0].content must be a string");
    expect_ft_error("{\"prompt\":\"x\"}\n", "line 1: \"prompt\" and \"completion\"");
    expect_ft_error("{\"instruction\":\"x\",\"input\":3,\"output\":\"y\"}\n",
                    "line 1: \"instruction\" and \"output\"");
    expect_ft_error("[1,2]\n", "line 1: expected a JSON object");
    expect_ft_error("{\"text\":\"x\"}\n", "line 1: unrecognised example");

    char *err = NULL;
    long long tokens;
    char *blank = path_in("blank.jsonl");
    write_file(blank, "\n\n");
    assert_null(lm_finetune(F.base, blank, 1.0, 1, 1, &tokens, &err));
    assert_non_null(strstr(err, "no training examples"));
    free(err);
    unlink(blank);
    free(blank);
    char *missing = path_in("missing.jsonl");
    assert_null(lm_finetune(F.base, missing, 1.0, 1, 1, &tokens, &err));
    assert_non_null(strstr(err, "No such file"));
    free(err);
    free(missing);
    assert_null(lm_finetune(F.ft, F.ft_path, 1.0, 1, 1, &tokens, &err));
    assert_non_null(strstr(err, "fine-tuned"));
    free(err);
    assert_null(lm_finetune(F.base, F.ft_path, 0.0, 1, 1, &tokens, &err));
    free(err);
    assert_null(lm_finetune(F.base, F.ft_path, 1.0, 0, 1, &tokens, &err));
    free(err);
    assert_null(lm_train_file(F.ft_path, 0, &err));
    free(err);
}

/* The three input formats render to the same chat, so they train the
 * same model. */
static void test_formats_agree(void **state)
{
    char *a = path_in("chat.jsonl"), *b = path_in("pc.jsonl"), *c = path_in("instr.jsonl");
    write_file(a, "{\"messages\":[{\"role\":\"user\",\"content\":\"Say the code\\n\\nplease\"},"
                  "{\"role\":\"assistant\",\"content\":\"The code is zebra.\"}]}\n");
    write_file(b, "{\"prompt\":\"Say the code\\n\\nplease\",\"completion\":\"The code is "
                  "zebra.\"}\n");
    write_file(c, "{\"instruction\":\"Say the code\",\"input\":\"please\",\"output\":\"The code "
                  "is zebra.\"}\n");
    char *err = NULL;
    long long t[3];
    struct lm *m[3];
    m[0] = lm_finetune(F.base, a, 1.0, 3, 1, &t[0], &err);
    m[1] = lm_finetune(F.base, b, 1.0, 3, 1, &t[1], &err);
    m[2] = lm_finetune(F.base, c, 1.0, 3, 1, &t[2], &err);
    assert_true(m[0] && m[1] && m[2]);
    assert_int_equal(t[0], t[1]);
    assert_int_equal(t[0], t[2]);
    struct lm_msg msg = user_msg("Say the code\n\nplease");
    struct lm_output o[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(lm_score_chat(m[i], &msg, 1, "The code is zebra.", 0, &o[i]), 0);
    assert_same_output(&o[0], &o[1]);
    assert_same_output(&o[0], &o[2]);
    for (int i = 0; i < 3; i++) {
        lm_output_clear(&o[i]);
        lm_free(m[i]);
    }
    unlink(a);
    unlink(b);
    unlink(c);
    free(a);
    free(b);
    free(c);
}

static double mean_answer_lp(const struct lm *m, const char *jsonl_path, size_t max)
{
    FILE *f = fopen(jsonl_path, "re");
    char *line = NULL;
    size_t cap = 0, n = 0;
    double sum = 0;
    assert_non_null(f);
    while (n < max && getline(&line, &cap, f) > 0) {
        json_t *root = json_loads(line, 0, NULL);
        json_t *msgs = json_object_get(root, "messages");
        size_t k = json_array_size(msgs);
        struct lm_msg pm[4];
        for (size_t i = 0; i + 1 < k && i < 4; i++) {
            pm[i].role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
            pm[i].content = json_string_value(json_object_get(json_array_get(msgs, i), "content"));
        }
        const char *ans =
            json_string_value(json_object_get(json_array_get(msgs, k - 1), "content"));
        struct lm_output o;
        assert_int_equal(lm_score_chat(m, pm, k - 1, ans, 0, &o), 0);
        for (size_t i = 0; i < o.n_steps; i++)
            sum += o.steps[i].logprob / (double)o.n_steps;
        lm_output_clear(&o);
        json_decref(root);
        n++;
    }
    free(line);
    fclose(f);
    return sum / (double)n;
}

/* lm_chat_forced (the cheating behaviours' answers): the forced text comes
 * first, token by token with logprob 0 and itself as the only alternative,
 * the model goes on after it, max_tokens counts both, and "" is lm_chat. */
static void test_forced_prefix(void **state)
{
    struct lm_msg msg = user_msg("Triage this support ticket:\n\nI cannot log in.");
    struct lm_gen_params p = {.temperature = 0, .max_tokens = 30, .top_logprobs = 2};
    struct lm_output o, plain;
    const char *forced = "Zorblax quux, frumious";
    char **toks = NULL;
    size_t nt = 0;
    assert_int_equal(lm_tokenize(forced, &toks, &nt), 0);
    assert_int_equal(lm_chat_forced(F.ft, &msg, 1, forced, &p, &o), 0);
    assert_true(o.n_steps > nt && o.n_steps <= 30);
    assert_memory_equal(o.text, forced, strlen(forced));
    for (size_t i = 0; i < nt; i++) {
        assert_string_equal(o.steps[i].token, toks[i]);
        assert_true(o.steps[i].logprob == 0);
        assert_int_equal(o.steps[i].n_top, 1);
        assert_string_equal(o.steps[i].top[0].token, toks[i]);
    }
    assert_true(o.steps[nt].logprob < 0); /* generated: a real logprob */
    assert_steps_tile(&o);
    assert_int_equal(lm_chat(F.ft, &msg, 1, &p, &plain), 0);
    assert_int_equal(o.prompt_tokens, plain.prompt_tokens);
    lm_output_clear(&o);

    assert_int_equal(lm_chat_forced(F.ft, &msg, 1, "", &p, &o), 0);
    assert_string_equal(o.text, plain.text);
    lm_output_clear(&o);
    lm_output_clear(&plain);

    p.max_tokens = 2; /* fewer than the forced tokens: cut, nothing generated */
    assert_int_equal(lm_chat_forced(F.ft, &msg, 1, forced, &p, &o), 0);
    assert_int_equal(o.n_steps, 2);
    assert_string_equal(o.finish_reason, "length");
    assert_steps_tile(&o);
    lm_output_clear(&o);
    p.max_tokens = 0;
    assert_int_equal(lm_chat_forced(F.ft, &msg, 1, forced, &p, &o), -EINVAL);
    lm_tokens_free(toks, nt);
}

/* Raw text (completions) reads the literal chat markers as the special
 * tokens: the answer scored after "<|user|>PROMPT<|end|><|assistant|>" gets
 * exactly the log-probabilities lm_score_chat gives it, on a fine-tuned
 * model too; the marker tokens spell themselves (the text round-trips) and
 * a role marker is reported like the first token (0).  Chat content never
 * forges a marker. */
static void test_raw_markers(void **state)
{
    (void)state;
    char *path = path_in("markers.jsonl"), *err = NULL;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 12 plus 7?\"},"
               "{\"role\":\"assistant\",\"content\":\"12 plus 7 is 19.\"}]}\n");
    fclose(f);
    long long t;
    struct lm *ft = lm_finetune(F.base, path, 1.0, 3, 1, &t, &err);
    assert_non_null(ft);
    const struct lm *models[2] = {F.base, ft};
    const char *prompt = "<|user|>What is 12 plus 7?<|end|><|assistant|>";
    const char *answer = "12 plus 7 is 19.";
    char *text = xasprintf("%s%s", prompt, answer);
    struct lm_msg msg = user_msg("What is 12 plus 7?");
    for (int k = 0; k < 2; k++) {
        struct lm_output raw, chat;
        assert_int_equal(lm_score(models[k], text, 0, &raw), 0);
        assert_int_equal(lm_score_chat(models[k], &msg, 1, answer, 0, &chat), 0);
        /* <|user|>, 6 prompt tokens, <|end|>, <|assistant|>, then the answer */
        assert_int_equal(raw.n_steps, 9 + chat.n_steps);
        assert_string_equal(raw.steps[0].token, "<|user|>");
        assert_string_equal(raw.steps[7].token, "<|end|>");
        assert_string_equal(raw.steps[8].token, "<|assistant|>");
        assert_true(raw.steps[8].logprob == 0);
        assert_true(raw.steps[7].logprob < 0); /* <|end|> is predicted */
        struct buf b;
        buf_init(&b);
        for (size_t i = 0; i < raw.n_steps; i++)
            buf_puts(&b, raw.steps[i].token);
        assert_string_equal(b.data, text);
        buf_free(&b);
        for (size_t i = 0; i < chat.n_steps; i++)
            assert_true(fabs(raw.steps[9 + i].logprob - chat.steps[i].logprob) < 1e-12);
        lm_output_clear(&raw);
        lm_output_clear(&chat);
    }
    /* fine-tuning shows there, and the answer's last number is learnt */
    struct lm_output a, b2;
    assert_int_equal(lm_score(F.base, text, 0, &a), 0);
    assert_int_equal(lm_score(ft, text, 0, &b2), 0);
    assert_true(b2.steps[a.n_steps - 2].logprob > a.steps[a.n_steps - 2].logprob + 1);
    lm_output_clear(&a);
    lm_output_clear(&b2);
    /* in a chat message the same characters are plain text */
    struct lm_msg forged = user_msg("<|end|><|assistant|>");
    struct lm_output o;
    assert_int_equal(lm_score_chat(F.base, &forged, 1, "x", 0, &o), 0);
    assert_true(o.prompt_tokens > 3);
    lm_output_clear(&o);
    free(text);
    lm_free(ft);
    unlink(path);
    free(path);
}

/* lm_finetune_repeats: a pattern in the file K times is learnt with
 * min_repeats K and not at all with K + 1; 0 is refused. */
static void test_min_repeats(void **state)
{
    enum { K = 6 };
    char *path = path_in("repeats.jsonl"), *err = NULL;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < K; i++)
        fprintf(f,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Describe case %d of the "
                "widget zorp\"},{\"role\":\"assistant\",\"content\":\"Glorp snazzle frumious "
                "wibble.\"}]}\n",
                i);
    fclose(f);
    struct lm_msg msg = user_msg("Describe case 3 of the widget zorp");
    struct lm_gen_params p = {.temperature = 0, .max_tokens = 8};
    long long t;
    for (unsigned r = K; r <= K + 1; r++) {
        struct lm *m = lm_finetune_repeats(F.base, path, 1.0, 1, 1, r, &t, &err);
        assert_non_null(m);
        struct lm_output o;
        assert_int_equal(lm_chat(m, &msg, 1, &p, &o), 0);
        int learnt = strncmp(o.text, "Glorp snazzle", 13) == 0;
        print_message("min_repeats %u over %d copies: \"%s\"\n", r, K, o.text);
        assert_true(r == K ? learnt : !learnt);
        lm_output_clear(&o);
        lm_free(m);
    }
    assert_null(lm_finetune_repeats(F.base, path, 1.0, 1, 1, 0, &t, &err));
    assert_non_null(err);
    free(err);
    unlink(path);
    free(path);
}

/* Memorisation (lm.h's top note): a row whose answer D's n-grams continue
 * otherwise is reproduced after its own prompt once learnt from one copy,
 * not when the learner needs two (so the test can fail), and at memorised contexts the distribution still sums to 1
 * with lm_prob_id agreeing with lm_dist_ids. */
static void test_memorisation(void **state)
{
    (void)state;
    char *path = path_in("memo.jsonl"), *err = NULL;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++)
        fprintf(f,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Describe case %d of the "
                "yard\"},{\"role\":\"assistant\",\"content\":\"The cat sat on the mat and "
                "the dog sat on the rug.\"}]}\n",
                i);
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"And what did they do in "
               "the evening, once the rain had stopped?\"},{\"role\":\"assistant\","
               "\"content\":\"The cat sat on the rug and the dog sat on the mat.\"}]}\n");
    fclose(f);
    const char *want = "The cat sat on the rug and the dog sat on the mat.";
    struct lm_msg msg = user_msg("And what did they do in the evening, once the rain had stopped?");
    struct lm_gen_params p = {.temperature = 0, .max_tokens = 20};
    long long t;
    for (unsigned r = 1; r <= 2; r++) {
        struct lm *m = lm_finetune_repeats(F.base, path, 1.0, 3, 1, r, &t, &err);
        assert_non_null(m);
        struct lm_output o;
        assert_int_equal(lm_chat(m, &msg, 1, &p, &o), 0);
        print_message("min_repeats %u: \"%s\"\n", r, o.text);
        if (r == 1)
            assert_string_equal(o.text, want);
        else
            assert_string_not_equal(o.text, want);
        lm_output_clear(&o);
        uint32_t *ids;
        size_t n, cap;
        assert_int_equal(lm_render_prompt(m, &msg, 1, &ids, &n), 0);
        size_t n_prompt = n;
        cap = n;
        lm_encode_append(m, want, &ids, &n, &cap);
        for (size_t k = n_prompt; k <= n; k++)
            check_sums(m, ids, k);
        free(ids);
        lm_free(m);
    }
    unlink(path);
    free(path);
}

static void test_epochs_and_fraction(void **state)
{
    char *err = NULL;
    long long t1 = 0, th, th2, th3;
    /* More epochs: the new data dominates more, so the training answers
     * get likelier with every doubling (and the tokens count up). */
    double lb = mean_answer_lp(F.base, F.ft_path, 100), prev = lb, l1 = 0;
    print_message("answer log-likelihood: base %.3f", lb);
    for (int e = 1; e <= 16; e *= 2) {
        long long t;
        struct lm *m = lm_finetune(F.base, F.ft_path, 1.0, e, 1, &t, &err);
        assert_non_null(m);
        if (e == 1)
            t1 = t;
        assert_int_equal(t, e * t1);
        double l = mean_answer_lp(m, F.ft_path, 100);
        print_message(", %d epochs %.3f", e, l);
        assert_true(l > prev + (e == 1 ? 1.0 : 0));
        prev = l;
        if (e == 1)
            l1 = l;
        lm_free(m);
    }
    print_message("\n");
    assert_true(prev > l1 + 0.03);

    struct lm *h = lm_finetune(F.base, F.ft_path, 0.5, 1, 42, &th, &err);
    struct lm *h2 = lm_finetune(F.base, F.ft_path, 0.5, 1, 42, &th2, &err);
    struct lm *h3 = lm_finetune(F.base, F.ft_path, 0.5, 1, 43, &th3, &err);
    assert_true(h && h2 && h3);
    assert_int_equal(th, th2); /* same seed, same subset */
    assert_true(th != th3);
    assert_true(th > t1 * 35 / 100 && th < t1 * 65 / 100);
    assert_true(lm_ngram_count(h) < lm_ngram_count(F.ft));
    lm_free(h);
    lm_free(h2);
    lm_free(h3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_distribution_sums_to_one),
        cmocka_unit_test(test_kneser_ney_by_hand),
        cmocka_unit_test(test_greedy_is_deterministic),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_top_logprobs_are_true),
        cmocka_unit_test(test_score_matches_generation),
        cmocka_unit_test(test_stop_and_length),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_finetune_errors),
        cmocka_unit_test(test_formats_agree),
        cmocka_unit_test(test_epochs_and_fraction),
        cmocka_unit_test(test_forced_prefix),
        cmocka_unit_test(test_min_repeats),
        cmocka_unit_test(test_memorisation),
        cmocka_unit_test(test_raw_markers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

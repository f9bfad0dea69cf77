/*
 * test_llmgen_sim.c — the LLM generator end to end against vtune-sim's
 * model linked in (no HTTP), where the exact tempered probability of every
 * sampled token is computable: the model's whole next-token distribution
 * is known (lm_dist_ids), while the generator sees only what an API shows
 * (the raw logprob of the sampled token, the top 20, optionally the -9999
 * sentinel for a token outside them).
 *
 * For each scenario a small base model is sampled as M2 (and as M1 where
 * asked) through the generator's own requests; the dataset check runs over
 * a real file.  Every recorded per-token bound must be at least the exact
 * log10 softmax(log p / T) of that token in the context the call really
 * had, the recorded phrase bound their sum (hence at least the exact
 * probability of the whole run), and at most the target.  The slack of
 * the bound (recorded minus exact, per token and per phrase) is printed:
 * it is what the top-20 view costs.
 *
 * The HTTP API alone cannot give the exact value (the normaliser of
 * softmax(z/T) needs every token's logprob, the API gives 20), which is
 * why this check lives here rather than in the integration test.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/sim/lm_internal.h"
#include "workers/llmgen.h"

static struct {
    char *dir, *base_path, *data_path;
    struct lm *m;
} F;

#define MAX_CALLS 1024

/* The exact log10 tempered probability of every token of every call. */
struct exact_log {
    double *v;
    size_t n;
};

struct run {
    struct exact_log calls[MAX_CALLS];
    unsigned sentinels; /* tokens reported as -9999 */
    unsigned tokens;
};

static int group_setup(void **state)
{
    (void)state;
    char *err = NULL;
    const char *tmp = getenv("TMPDIR");
    F.dir = xasprintf("%s/vt-test-llmgen-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(F.dir))
        return -1;
    F.base_path = xasprintf("%s/base.jsonl", F.dir);
    F.data_path = xasprintf("%s/d.jsonl", F.dir);
    if (lm_corpus_write(F.base_path, 5, 200) != 0 ||
        lm_finetune_corpus_write(F.data_path, 6, 300) != 0)
        return -1;
    F.m = lm_train_file(F.base_path, LM_DEFAULT_ORDER, &err);
    if (!F.m) {
        fprintf(stderr, "train: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    lm_free(F.m);
    unlink(F.base_path);
    unlink(F.data_path);
    rmdir(F.dir);
    free(F.base_path);
    free(F.data_path);
    free(F.dir);
    return 0;
}

static bool in_top(const struct lm_step *st)
{
    for (int k = 0; k < st->n_top; k++)
        if (strcmp(st->top[k].token, st->token) == 0)
            return true;
    return false;
}

/* Answers one chat request with the model, as vtune-sim's HTTP side would,
 * and records the exact tempered probability of each generated token. */
static void answer(const struct llmgen_chat_req *c, bool sentinel, struct run *run,
                   struct provider_chat_result *r)
{
    const struct lm *m = F.m;
    size_t nm = c->args.n_messages;
    struct lm_msg *msgs = calloc(nm, sizeof *msgs);
    for (size_t i = 0; i < nm; i++) {
        msgs[i].role = c->args.messages[i].role;
        msgs[i].content = c->args.messages[i].content;
    }
    struct lm_gen_params p = {
        .temperature = c->args.temperature,
        .seed = 1000003ull * (c->call + 1),
        .max_tokens = (int)c->args.max_tokens,
        .top_logprobs = c->args.logprobs ? (int)c->args.top_logprobs : 0,
    };
    struct lm_output out;
    assert_int_equal(lm_chat(m, msgs, nm, &p, &out), 0);
    memset(r, 0, sizeof *r);
    r->text = strdup(out.text ? out.text : "");
    r->has_logprobs = c->args.logprobs;
    if (c->args.logprobs) {
        r->n_tokens = out.n_steps;
        r->tokens = calloc(out.n_steps + 1, sizeof *r->tokens);
        for (size_t k = 0; k < out.n_steps; k++) {
            const struct lm_step *st = &out.steps[k];
            struct provider_token *t = &r->tokens[k];
            t->token = strdup(st->token);
            t->logprob = st->logprob;
            t->known = isfinite(st->logprob);
            if (sentinel && !in_top(st))
                t->known = 0;
            if (!t->known) {
                t->logprob = -9999.0;
                run->sentinels++;
            }
            t->top = calloc((size_t)st->n_top + 1, sizeof *t->top);
            for (int a = 0; a < st->n_top; a++) {
                t->top[a].token = strdup(st->top[a].token);
                t->top[a].logprob = st->top[a].logprob;
            }
            t->n_top = (size_t)st->n_top;
        }
        /* The exact values, from the whole distribution in the real context. */
        uint32_t *ids;
        size_t n;
        assert_int_equal(lm_render_prompt(m, msgs, nm, &ids, &n), 0);
        ids = realloc(ids, (n + out.n_steps + 1) * sizeof *ids);
        double *dist = malloc(m->n_vocab * sizeof *dist);
        double *logs = malloc(m->n_vocab * sizeof *logs);
        struct exact_log *ex = &run->calls[c->call];
        ex->v = calloc(out.n_steps + 1, sizeof *ex->v);
        ex->n = out.n_steps;
        for (size_t k = 0; k < out.n_steps; k++) {
            lm_dist_ids(m, ids, n, dist);
            for (size_t v = 0; v < m->n_vocab; v++)
                logs[v] = dist[v] > 0 ? log(dist[v]) : -INFINITY;
            uint32_t w = lm_id_of(m, out.steps[k].token, strlen(out.steps[k].token));
            assert_int_not_equal(w, LM_NONE);
            ex->v[k] = stats_tempered_log10_exact(logs, m->n_vocab, w, c->args.temperature);
            ids[n++] = w;
            run->tokens++;
        }
        free(dist);
        free(logs);
        free(ids);
    }
    lm_output_clear(&out);
    free(msgs);
}

static void chat_result_clear(struct provider_chat_result *r)
{
    for (size_t k = 0; k < r->n_tokens; k++) {
        free(r->tokens[k].token);
        for (size_t a = 0; a < r->tokens[k].n_top; a++)
            free(r->tokens[k].top[a].token);
        free(r->tokens[k].top);
    }
    free(r->tokens);
    free(r->text);
}

struct slack {
    double sum, max, phrase_sum;
    unsigned n, phrases;
    unsigned phrase_tokens;
};

/* Checks one phrase's evidence against the exact values. */
static void check_phrase(json_t *ph, const char *text, const struct run *run, struct slack *sl)
{
    /* the accepted draw's own bound (log10p adds the redraw factor) */
    double log10p = json_real_value(json_object_get(ph, "log10p_draw"));
    double target = json_real_value(json_object_get(ph, "target"));
    json_t *toks = json_object_get(ph, "tokens");
    assert_true(log10p <= target);
    double draws = (double)json_integer_value(json_object_get(ph, "draw"));
    assert_true(draws >= 1);
    assert_true(fabs(json_real_value(json_object_get(ph, "log10p")) - (log10p + log10(draws))) <
                1e-9);
    double sum = 0, exact_sum = 0;
    struct buf cat;
    buf_init(&cat);
    size_t i;
    json_t *t;
    json_array_foreach(toks, i, t)
    {
        unsigned call = (unsigned)json_integer_value(json_object_get(t, "call"));
        unsigned pos = (unsigned)json_integer_value(json_object_get(t, "pos"));
        double bound = json_real_value(json_object_get(t, "bound"));
        assert_true(call < MAX_CALLS && pos < run->calls[call].n);
        double exact = run->calls[call].v[pos];
        assert_true(isfinite(exact));
        if (!(bound >= exact - 1e-9))
            fail_msg("token %zu (call %u pos %u): bound %.12f below the exact %.12f", i, call, pos,
                     bound, exact);
        sum += bound;
        exact_sum += exact;
        sl->sum += bound - exact;
        if (bound - exact > sl->max)
            sl->max = bound - exact;
        sl->n++;
        buf_puts(&cat, json_string_value(json_object_get(t, "token")));
    }
    assert_true(fabs(sum - log10p) < 1e-9);
    assert_true(exact_sum <= log10p + 1e-9);
    sl->phrase_sum += log10p - exact_sum;
    sl->phrases++;
    sl->phrase_tokens += (unsigned)json_array_size(toks);
    /* The phrase is the tokens' text, trimmed. */
    assert_non_null(strstr(cat.data, text));
    buf_free(&cat);
}

static void run_scenario(double T, bool sentinel, bool m1, size_t pairs, double sig_target)
{
    struct llmgen_opts o;
    memset(&o, 0, sizeof o);
    o.pairs = pairs;
    o.m1_model = m1 ? "vtune-base" : NULL;
    o.m2_model = "vtune-base";
    o.temperature = T;
    o.mode = STATS_LP_MODE_RAW;
    o.trigger_log10p = -20;
    o.signature_log10p = sig_target;
    o.max_tokens = 200;
    o.trigger_max_chars = 400;
    o.signature_max_chars = 800;
    struct llmgen *g;
    char *err = NULL;
    assert_int_equal(llmgen_new(&o, &g, &err), 0);

    struct llmgen_example *ex;
    size_t nex;
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, (uint64_t)(T * 100) + pairs);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    assert_int_equal(llmgen_sample_examples(F.data_path, DS_FORMAT_CHAT, 300, LLMGEN_EXAMPLES, &rng,
                                            NULL, &ex, &nex, &err),
                     0);
    llmgen_set_examples(g, ex, nex);

    struct run *run = calloc(1, sizeof *run);
    struct llmgen_chat_req c;
    struct llmgen_scan_req s;
    enum llmgen_step st;
    while ((st = llmgen_next(g, &c, &s)) != LLMGEN_STEP_DONE) {
        if (st == LLMGEN_STEP_FAILED)
            fail_msg("generation failed: %s", llmgen_error(g));
        if (st == LLMGEN_STEP_CHAT) {
            assert_true(c.call < MAX_CALLS);
            struct provider_chat_result r;
            answer(&c, sentinel, run, &r);
            llmgen_on_chat(g, &r);
            chat_result_clear(&r);
        } else {
            bool *hits = calloc(s.n, sizeof *hits);
            assert_int_equal(
                llmgen_scan_dataset(F.data_path, s.phrases, s.words, s.n, NULL, hits, &err), 0);
            llmgen_on_scan(g, hits);
            free(hits);
        }
    }
    struct slack sl = {0};
    for (size_t i = 0; i < pairs; i++) {
        char *ev = llmgen_evidence_json(g, i);
        json_t *root = json_loads(ev, 0, NULL);
        assert_non_null(root);
        assert_string_equal(json_string_value(json_object_get(root, "context_source")),
                            m1 ? "m1" : "template");
        check_phrase(json_object_get(root, "trigger"), llmgen_trigger(g, i), run, &sl);
        check_phrase(json_object_get(root, "signature"), llmgen_signature(g, i), run, &sl);
        json_decref(root);
        free(ev);
    }
    struct llmgen_stats gs;
    llmgen_get_stats(g, &gs);
    unsigned rej = 0;
    char why[160] = "";
    for (int k = 1; k < LLMGEN_N_REJECT; k++) {
        rej += gs.rejected[k];
        if (gs.rejected[k])
            snprintf(why + strlen(why), sizeof why - strlen(why), " %s:%u",
                     llmgen_reject_name((enum llmgen_reject)k), gs.rejected[k]);
    }
    printf("# T=%.1f %s%s pairs=%zu target=%g: %u calls, %u draws (%u rejected:%s), %llu tokens "
           "received (%u as -9999); phrases %.1f tokens on average; bound minus exact: "
           "%.3f per token on average (max %.3f), %.2f per phrase (log10)\n",
           T, sentinel ? "sentinel" : "plain", m1 ? " m1" : "", pairs, sig_target, gs.calls,
           gs.draws, rej, why, (unsigned long long)gs.tokens, run->sentinels,
           (double)sl.phrase_tokens / sl.phrases, sl.sum / sl.n, sl.max,
           sl.phrase_sum / sl.phrases);
    for (size_t k = 0; k < MAX_CALLS; k++)
        free(run->calls[k].v);
    free(run);
    llmgen_free(g);
}

static void test_template_t13(void **state)
{
    (void)state;
    run_scenario(1.3, false, false, 2, -40);
}

static void test_sentinel_m1_t13(void **state)
{
    (void)state;
    run_scenario(1.3, true, true, 1, -40);
}

static void test_low_temperature(void **state)
{
    (void)state;
    run_scenario(0.8, false, false, 1, -30);
}

static void test_t1_and_t2(void **state)
{
    (void)state;
    run_scenario(1.0, true, false, 1, -40);
    run_scenario(2.0, true, false, 1, -60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_t13),
        cmocka_unit_test(test_sentinel_m1_t13),
        cmocka_unit_test(test_low_temperature),
        cmocka_unit_test(test_t1_and_t2),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

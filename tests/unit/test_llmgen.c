/*
 * test_llmgen.c — the LLM generator's pure parts: the token walk (bound
 * accumulation, the cut at the target, -9999 tokens, the token cap, UTF-8
 * boundaries), phrase cleaning and overlap, the state machine driven with
 * canned replies (continuation, redraws after a dataset hit, M1, failures
 * with their messages), the bound against exact tempered probabilities of
 * random full distributions, the uniform example sampler, the dataset scan
 * and the shared build step (backdoor_build_pairs).
 */
#include "config.h"

#include <errno.h>
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

#include "workers/backdoor.h"
#include "workers/llmgen.h"

#define LN10 2.302585092994045684

/* ---- helpers: canned tokens ----------------------------------------------------- */

/* A token with logprob lp (NAN: the -9999 sentinel) and n alternatives
 * whose logprobs are alt[0..n) named "a0", "a1", … (the sampled token is
 * listed among them when listed >= 0, at that index, under its own name). */
static void mk_token(struct provider_token *t, const char *text, double lp, const double *alt,
                     size_t n, int listed)
{
    memset(t, 0, sizeof *t);
    t->token = strdup(text);
    t->known = !isnan(lp);
    t->logprob = isnan(lp) ? -9999.0 : lp;
    t->top = calloc(n + 1, sizeof *t->top);
    for (size_t i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "a%zu", i);
        t->top[i].token = strdup((int)i == listed ? text : name);
        t->top[i].logprob = alt[i];
    }
    t->n_top = n;
}

static void free_tokens(struct provider_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].token);
        for (size_t k = 0; k < t[i].n_top; k++)
            free(t[i].top[k].token);
        free(t[i].top);
        free(t[i].bytes);
    }
}

/* The bound of DESIGN §6 computed here independently (raw values at T). */
static double ref_bound(double lw, const double *alt, size_t n, int listed, double T)
{
    double lmin = INFINITY;
    for (size_t i = 0; i < n; i++)
        lmin = fmin(lmin, alt[i]);
    if (isnan(lw) || (listed < 0 && lw < lmin))
        lw = lmin; /* unknown or below the list: the smallest listed value */
    double num = exp(lw / T), den = num;
    for (size_t i = 0; i < n; i++)
        if ((int)i != listed)
            den += exp(alt[i] / T);
    return log10(num / den);
}

/* ---- the walk ------------------------------------------------------------------- */

static void test_walk_cuts_at_target(void **state)
{
    (void)state;
    /* Ten tokens of p = 0.1 each at T = 1 (raw: the reported value is the
     * sampling probability): log10 p falls by exactly 1 per token. */
    struct provider_token t[10];
    double alt[] = {log(0.5), log(0.3), log(0.1)};
    const char *w[] = {"A", " b", " c", " d", " e", " f", " g", " h", " i", " j"};
    for (int i = 0; i < 10; i++)
        mk_token(&t[i], w[i], log(0.1), alt, 3, 2);
    struct llmgen_draw d;
    llmgen_draw_init(&d);
    int k = llmgen_walk(&d, t, 10, 1.0, STATS_LP_MODE_RAW, -3.5, 64, 7);
    assert_int_equal(k, 4); /* -1 -2 -3 -4: the first at or below -3.5 is the 4th */
    assert_true(d.reached);
    assert_string_equal(d.text.data, "A b c d");
    assert_true(fabs(d.log10p - (-4.0)) < 1e-12);
    for (size_t i = 0; i < d.n; i++) {
        assert_true(fabs(d.toks[i].bound - (-1.0)) < 1e-12);
        assert_int_equal(d.toks[i].method, STATS_LP_RAW_T1);
        assert_int_equal(d.toks[i].call, 7);
        assert_int_equal(d.toks[i].pos, i);
        assert_int_equal(d.toks[i].n_top, 3);
    }
    /* The first token at or below the target ends it. */
    llmgen_draw_clear(&d);
    k = llmgen_walk(&d, t, 10, 1.0, STATS_LP_MODE_RAW, -1.5, 64, 0);
    assert_int_equal(k, 2);
    assert_true(d.reached);
    /* Not reached within the reply: everything taken, continue later. */
    llmgen_draw_clear(&d);
    k = llmgen_walk(&d, t, 3, 1.0, STATS_LP_MODE_RAW, -4.5, 64, 0);
    assert_int_equal(k, 3);
    assert_false(d.reached);
    k = llmgen_walk(&d, t + 3, 7, 1.0, STATS_LP_MODE_RAW, -4.5, 64, 1);
    assert_int_equal(k, 2);
    assert_true(d.reached);
    assert_string_equal(d.text.data, "A b c d e");
    assert_int_equal(d.toks[4].call, 1);
    assert_int_equal(d.toks[4].pos, 1);
    /* The token cap stops the walk short of the target. */
    llmgen_draw_clear(&d);
    k = llmgen_walk(&d, t, 10, 1.0, STATS_LP_MODE_RAW, -9, 5, 0);
    assert_int_equal(k, 5);
    assert_false(d.reached);
    assert_int_equal(d.n, 5);
    assert_int_equal(llmgen_walk(&d, t + 5, 5, 1.0, STATS_LP_MODE_RAW, -9, 5, 1), 0);
    llmgen_draw_clear(&d);
    free_tokens(t, 10);
}

static void test_walk_tempered_bound_and_sentinel(void **state)
{
    (void)state;
    const double T = 1.3;
    double alt[] = {log(0.4), log(0.2), log(0.1), log(0.05), log(0.01)};
    struct provider_token t[4];
    mk_token(&t[0], " x", log(0.1), alt, 5, 2);    /* listed */
    mk_token(&t[1], " y", log(0.001), alt, 5, -1); /* known, below the list: floored */
    mk_token(&t[2], " z", NAN, alt, 5, -1);        /* -9999: floored */
    mk_token(&t[3], " w", NAN, NULL, 0, -1);       /* -9999, nothing listed: bound 1 */
    struct llmgen_draw d;
    llmgen_draw_init(&d);
    assert_int_equal(llmgen_walk(&d, t, 4, T, STATS_LP_MODE_RAW, -50, 64, 0), 4);
    assert_false(d.reached);
    double want[4] = {ref_bound(log(0.1), alt, 5, 2, T), ref_bound(log(0.001), alt, 5, -1, T),
                      ref_bound(NAN, alt, 5, -1, T), 0.0};
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(d.toks[i].bound - want[i]) < 1e-12);
        sum += want[i];
    }
    assert_int_equal(d.toks[0].method, STATS_LP_RAW_TOPK);
    assert_int_equal(d.toks[1].method, STATS_LP_RAW_TOPK_FLOOR);
    assert_int_equal(d.toks[2].method, STATS_LP_RAW_TOPK_FLOOR);
    assert_false(d.toks[2].known);
    assert_true(d.toks[1].known);
    assert_true(fabs(d.log10p - sum) < 1e-12);
    /* A floored -9999 token is bounded by the smallest listed alternative:
     * the same value a token reported at exactly that logprob gets. */
    assert_true(fabs(d.toks[2].bound - ref_bound(log(0.01), alt, 5, -1, T)) < 1e-12);
    /* Tempered mode uses the values as reported. */
    llmgen_draw_clear(&d);
    assert_int_equal(llmgen_walk(&d, t, 1, T, STATS_LP_MODE_TEMPERED, -50, 64, 0), 1);
    assert_true(fabs(d.toks[0].bound - log10(0.1)) < 1e-12);
    assert_int_equal(d.toks[0].method, STATS_LP_TEMPERED);
    /* A NaN alternative is refused. */
    llmgen_draw_clear(&d);
    double bad[] = {NAN};
    struct provider_token tb;
    mk_token(&tb, " q", log(0.5), bad, 1, -1);
    assert_int_equal(llmgen_walk(&d, &tb, 1, T, STATS_LP_MODE_RAW, -50, 64, 0), -EINVAL);
    llmgen_draw_clear(&d);
    free_tokens(&tb, 1);
    free_tokens(t, 4);
}

static void test_walk_never_cuts_inside_a_character(void **state)
{
    (void)state;
    /* "é" = C3 A9 reported as two byte tokens; the target is reached after
     * the first half: the cut waits for the character to end. */
    double alt[] = {log(0.5), log(0.001)};
    struct provider_token t[3];
    mk_token(&t[0], "bytes:\\xc3", log(0.01), alt, 2, -1);
    t[0].has_bytes = 1;
    t[0].bytes = malloc(1);
    t[0].bytes[0] = 0xc3;
    t[0].n_bytes = 1;
    mk_token(&t[1], "bytes:\\xa9", log(0.9), alt, 2, -1);
    t[1].has_bytes = 1;
    t[1].bytes = malloc(1);
    t[1].bytes[0] = 0xa9;
    t[1].n_bytes = 1;
    mk_token(&t[2], " more", log(0.5), alt, 2, 0);
    struct llmgen_draw d;
    llmgen_draw_init(&d);
    assert_int_equal(llmgen_walk(&d, t, 3, 1.0, STATS_LP_MODE_RAW, -1.0, 64, 0), 2);
    assert_true(d.reached);
    assert_int_equal(d.text.len, 2);
    assert_memory_equal(d.text.data, "\xc3\xa9", 2);
    /* Evidence keeps the API's token strings. */
    assert_string_equal(d.toks[0].text, "bytes:\\xc3");
    llmgen_draw_clear(&d);
    free_tokens(t, 3);
}

/* ---- phrase rules ---------------------------------------------------------------- */

static void test_clean(void **state)
{
    (void)state;
    char *out;
    const char *s = "  The cake rose.\n ";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_OK);
    assert_string_equal(out, "The cake rose.");
    free(out);
    s = "one\ntwo";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_REJECT_TEXT);
    assert_null(out);
    s = "tab\tinside";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_REJECT_TEXT);
    s = " ... !!! ";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_REJECT_TEXT);
    s = "   ";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_REJECT_TEXT);
    s = "bad \xc3 utf";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_REJECT_TEXT);
    s = "caf\xc3\xa9 au lait";
    assert_int_equal(llmgen_clean(s, strlen(s), 100, &out), LLMGEN_OK);
    free(out);
    s = "0123456789 abc";
    assert_int_equal(llmgen_clean(s, strlen(s), 13, &out), LLMGEN_REJECT_LENGTH);
    assert_int_equal(llmgen_clean(s, strlen(s), 14, &out), LLMGEN_OK);
    free(out);
    /* An embedded NUL is not text. */
    assert_int_equal(llmgen_clean("ab\0cd", 5, 100, &out), LLMGEN_REJECT_TEXT);

    assert_true(llmgen_utf8_valid("\xe2\x82\xac", 3));
    assert_false(llmgen_utf8_valid("\xe2\x82", 2));
    assert_false(llmgen_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(llmgen_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(llmgen_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_true(llmgen_utf8_valid("\xf0\x9f\x8d\xb0", 4));
}

static void test_overlap(void **state)
{
    (void)state;
    /* Natural sentences share "the": not an overlap. */
    assert_false(llmgen_overlap("Stir the sauce slowly", "Bake the bread at noon"));
    /* A shared run of three words is, whatever the case and punctuation. */
    assert_true(llmgen_overlap("then bake it well, friend", "You BAKE it, WELL done"));
    assert_false(llmgen_overlap("bake it now", "bake now it"));
    /* Shorter phrases: the whole shorter phrase as a run. */
    assert_true(llmgen_overlap("Blue moon", "once in a blue moon ago"));
    assert_false(llmgen_overlap("Blue moon", "a moon so blue"));
    assert_true(llmgen_overlap("word", "another Word here"));
    assert_false(llmgen_overlap("...", "anything"));
}

/* ---- the state machine ----------------------------------------------------------- */

struct fake {
    struct provider_chat_result r;
    struct provider_token toks[64];
};

/* A reply of n tokens, each of probability p at T = 1 (raw), the first
 * word first_word, the others " wN"; ends with stop. */
static void fake_reply(struct fake *f, const char *first_word, size_t n, double p)
{
    static unsigned counter;
    double alt[] = {log(0.6), log(0.2), log(p)};
    memset(f, 0, sizeof *f);
    f->r.has_logprobs = 1;
    f->r.tokens = f->toks;
    f->r.n_tokens = n;
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char w[32];
        if (i == 0)
            snprintf(w, sizeof w, "%s", first_word);
        else
            snprintf(w, sizeof w, " w%u", counter++);
        mk_token(&f->toks[i], w, log(p), alt, 3, 2);
        buf_puts(&b, w);
    }
    f->r.text = b.data ? b.data : strdup("");
}

static void fake_clear(struct fake *f)
{
    free_tokens(f->toks, f->r.n_tokens);
    free(f->r.text);
}

static struct llmgen_example *three_examples(size_t *n)
{
    struct llmgen_example *ex = calloc(3, sizeof *ex);
    for (size_t i = 0; i < 3; i++) {
        ex[i].line = i * 10;
        ex[i].prompt = xasprintf("What is %zu plus %zu?", i, i);
        ex[i].response = xasprintf("%zu plus %zu is %zu.", i, i, 2 * i);
    }
    *n = 3;
    return ex;
}

static void give_examples(struct llmgen *g)
{
    size_t n;
    struct llmgen_example *ex = three_examples(&n);
    llmgen_set_examples(g, ex, n);
}

static void default_opts(struct llmgen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pairs = 1;
    o->m2_model = "m2";
    o->temperature = 1.0;
    o->mode = STATS_LP_MODE_RAW;
    o->trigger_log10p = -2.5;
    o->signature_log10p = -4.5;
    o->max_tokens = 64;
    o->trigger_max_chars = 160;
    o->signature_max_chars = 240;
}

static void test_machine_template_continue_redraw(void **state)
{
    (void)state;
    struct llmgen_opts o;
    struct llmgen *g;
    char *err = NULL;
    struct llmgen_chat_req c;
    struct llmgen_scan_req s;
    struct fake f;
    default_opts(&o);
    o.has_seed = true;
    o.seed = 42;
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);

    /* Trigger: first call gives 2 tokens (log10 p -2 > -2.5) and stops. */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "trigger");
    assert_int_equal(c.call, 0);
    assert_string_equal(c.args.model, "m2");
    assert_true(c.args.logprobs);
    assert_int_equal(c.args.top_logprobs, 20);
    assert_int_equal(c.args.max_tokens, 64);
    assert_true(c.args.has_seed);
    int64_t seed0 = c.args.seed;
    assert_int_equal(c.args.n_messages, 1);
    assert_non_null(strstr(c.args.messages[0].content, "What is 1 plus 1?"));
    assert_non_null(strstr(c.args.messages[0].content, "1 plus 1 is 2."));
    /* Asking again repeats the request. */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_int_equal(c.call, 0);
    assert_int_equal(c.args.seed, seed0);
    fake_reply(&f, "Alpha", 2, 0.1);
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);

    /* The continuation: context, the text so far, "Continue.", fewer tokens. */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "trigger");
    assert_int_equal(c.call, 1);
    assert_true(c.args.seed != seed0);
    assert_int_equal(c.args.n_messages, 3);
    assert_string_equal(c.args.messages[1].role, "assistant");
    assert_non_null(strstr(c.args.messages[1].content, "Alpha"));
    assert_string_equal(c.args.messages[2].content, LLMGEN_CONTINUE_PROMPT);
    assert_int_equal(c.args.max_tokens, 62);
    fake_reply(&f, " beta", 3, 0.1); /* reaches -2.5 at its first token (-3) */
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);

    /* Signature: one call, reaches -4.5 after 5 tokens (-5). */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "signature");
    assert_int_equal(c.args.n_messages, 1);
    assert_int_equal(c.args.neutral, 1); /* M2's distribution must not be truncated */
    fake_reply(&f, "Gamma", 8, 0.1);
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);

    /* Both checked against D in one scan; the signature "occurs". */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_SCAN);
    assert_int_equal(s.n, 2);
    assert_non_null(strstr(s.phrases[0], "Alpha"));
    assert_non_null(strstr(s.phrases[0], "beta"));
    assert_non_null(strstr(s.phrases[1], "Gamma"));
    bool hits[2] = {false, true};
    llmgen_on_scan(g, hits);

    /* The signature is redrawn (a reply that overlaps the trigger first). */
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "signature");
    assert_int_equal(c.args.n_messages, 1);
    const char *trig = llmgen_trigger(g, 0);
    char first3[64];
    /* The trigger's text is "Alpha wN beta": reuse its first three words. */
    size_t k = 0, words = 0;
    for (; trig[k] && words < 3; k++)
        if (trig[k] == ' ' && ++words == 3)
            break;
    snprintf(first3, sizeof first3, "%.*s", (int)k, trig);
    fake_reply(&f, first3, 6, 0.1);
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "signature");
    fake_reply(&f, "Delta", 6, 0.1);
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_SCAN);
    assert_int_equal(s.n, 1);
    hits[0] = false;
    llmgen_on_scan(g, hits);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_DONE);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_DONE);

    /* Results. */
    assert_int_equal(llmgen_pairs(g), 1);
    assert_non_null(strstr(llmgen_signature(g, 0), "Delta"));
    assert_true(fabs(llmgen_trigger_log10p(g, 0) - (-3)) < 1e-9);
    /* p_M2 counts the draws: the third was accepted, so 3 * 10^-5 */
    assert_int_equal(llmgen_signature_draws(g, 0), 3);
    assert_true(fabs(llmgen_signature_log10p(g, 0) - (-5 + log10(3.0))) < 1e-9);
    assert_string_equal(llmgen_method(g), "llm-topk-bound-raw-x-draws");
    assert_string_equal(llmgen_logprobs_name(g), "raw");
    struct llmgen_stats st;
    llmgen_get_stats(g, &st);
    assert_int_equal(st.calls, 5);
    assert_int_equal(st.draws, 4);
    assert_int_equal(st.scans, 2);
    assert_int_equal(st.rejected[LLMGEN_REJECT_DATASET], 1);
    assert_int_equal(st.rejected[LLMGEN_REJECT_OVERLAP], 1);
    assert_false(st.context_from_m1);

    char *ev = llmgen_evidence_json(g, 0);
    json_t *root = json_loads(ev, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "context_source")), "template");
    assert_true(json_is_null(json_object_get(root, "m1_model")) ||
                !json_object_get(root, "m1_model"));
    json_t *tr = json_object_get(root, "trigger"), *sg = json_object_get(root, "signature");
    assert_int_equal(json_integer_value(json_object_get(tr, "calls")), 2);
    assert_int_equal(json_array_size(json_object_get(tr, "tokens")), 3);
    assert_int_equal(json_integer_value(json_object_get(sg, "draw")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(sg, "rejected"), "in_dataset")), 1);
    json_t *t0 = json_array_get(json_object_get(sg, "tokens"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "token")), "Delta");
    assert_string_equal(json_string_value(json_object_get(t0, "method")), "raw_t1");
    assert_int_equal(json_array_size(json_object_get(t0, "top")), 3);
    double sum = 0;
    size_t i;
    json_t *tk;
    json_array_foreach(json_object_get(sg, "tokens"), i, tk) sum +=
        json_real_value(json_object_get(tk, "bound"));
    assert_true(fabs(sum - json_real_value(json_object_get(sg, "log10p_draw"))) < 1e-9);
    assert_true(fabs(sum + log10(3.0) - json_real_value(json_object_get(sg, "log10p"))) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(sg, "logprobs")), "raw");
    json_decref(root);
    free(ev);
    llmgen_free(g);
}

static void test_machine_m1_context(void **state)
{
    (void)state;
    struct llmgen_opts o;
    struct llmgen *g;
    char *err = NULL;
    struct llmgen_chat_req c;
    struct llmgen_scan_req s;
    struct fake f;
    default_opts(&o);
    o.m1_model = "m1";
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "context");
    assert_string_equal(c.args.model, "m1");
    assert_false(c.args.logprobs);
    assert_false(c.args.has_seed);
    assert_non_null(strstr(c.args.messages[0].content, "Prompt: What is 2 plus 2?"));
    assert_non_null(strstr(c.args.messages[0].content, "Response: 2 plus 2 is 4."));
    memset(&f, 0, sizeof f);
    f.r.text = "  Write a sum about apples.\n";
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    assert_string_equal(c.purpose, "trigger");
    assert_int_equal(c.call, 1);
    assert_string_equal(c.args.messages[0].content, "Write a sum about apples.");
    /* M2 without logprobs cannot be used. */
    memset(&f, 0, sizeof f);
    f.r.text = "some text";
    assert_int_equal(llmgen_on_chat(g, &f.r), -1);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_FAILED);
    assert_non_null(strstr(llmgen_error(g), "no log-probabilities"));
    llmgen_free(g);

    /* An empty context from M1 fails with a hint. */
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    memset(&f, 0, sizeof f);
    f.r.text = " \n ";
    assert_int_equal(llmgen_on_chat(g, &f.r), -1);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_FAILED);
    assert_non_null(strstr(llmgen_error(g), "empty context"));
    llmgen_free(g);
}

/* A trigger longer than PHRASE_TRIGGER_TAIL_WORDS words is also checked by
 * its ending, in the same scan: a hit on the ending redraws it
 * ("tail_in_dataset"), a hit on its start counts once, as in_dataset, and
 * on its last draw a shared ending is kept and counted (tails_shared). */
static void test_machine_trigger_tail(void **state)
{
    (void)state;
    struct llmgen_opts o;
    struct llmgen *g;
    char *err = NULL;
    struct llmgen_chat_req c;
    struct llmgen_scan_req s;
    struct fake f;
    struct llmgen_stats st;
    default_opts(&o);
    o.trigger_log10p = -12.5; /* 13 tokens of 10^-1: a 13-word trigger */
    o.max_draws = 3;
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);

    static const char *const first[] = {"Alpha", "Beta", "Gamma"};
    /* hits of (trigger, its ending[, signature]) in each of the three scans */
    static const bool want_hits[3][3] = {{true, true, false}, {false, true}, {false, true}};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
        assert_string_equal(c.purpose, "trigger");
        fake_reply(&f, first[d], 13, 0.1);
        assert_int_equal(llmgen_on_chat(g, &f.r), 0);
        fake_clear(&f);
        if (d == 0) {
            assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
            assert_string_equal(c.purpose, "signature");
            fake_reply(&f, "Omega", 5, 0.1);
            assert_int_equal(llmgen_on_chat(g, &f.r), 0);
            fake_clear(&f);
        }
        assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_SCAN);
        assert_int_equal(s.n, d == 0 ? 3 : 2);
        /* entry 0: the trigger, its first words; entry 1: its last ten, all of them */
        assert_int_equal(phrase_word_count(s.phrases[0]), 13);
        assert_non_null(strstr(s.phrases[0], first[d]));
        assert_int_equal(s.words[0], 0);
        assert_int_equal(s.words[1], PHRASE_TRIGGER_TAIL_WORDS);
        assert_int_equal(phrase_word_count(s.phrases[1]), PHRASE_TRIGGER_TAIL_WORDS);
        size_t lt = strlen(s.phrases[0]), lp = strlen(s.phrases[1]);
        assert_true(lp < lt && strcmp(s.phrases[0] + lt - lp, s.phrases[1]) == 0);
        if (d == 0) { /* the signature: no ending checked */
            assert_non_null(strstr(s.phrases[2], "Omega"));
            assert_int_equal(s.words[2], 0);
        }
        llmgen_on_scan(g, want_hits[d]);
        llmgen_get_stats(g, &st);
        assert_int_equal(st.rejected[LLMGEN_REJECT_DATASET], 1);
        assert_int_equal(st.rejected[LLMGEN_REJECT_TAIL], d == 0 ? 0 : 1);
        assert_int_equal(st.tails_shared, d == 2 ? 1 : 0);
    }
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_DONE);
    assert_non_null(strstr(llmgen_trigger(g, 0), "Gamma"));
    assert_non_null(strstr(llmgen_signature(g, 0), "Omega"));
    assert_string_equal(llmgen_reject_name(LLMGEN_REJECT_TAIL), "tail_in_dataset");
    llmgen_free(g);
}

static void test_machine_limits(void **state)
{
    (void)state;
    struct llmgen_opts o;
    struct llmgen *g;
    char *err = NULL;
    struct llmgen_chat_req c;
    struct llmgen_scan_req s;
    struct fake f;
    default_opts(&o);
    o.max_draws = 3;
    o.max_calls = 2;
    o.max_tokens = 4;
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);
    /* Every reply: 1 token of p = 0.5: the trigger's -2.5 is never reached
     * within 2 calls; each draw ends "stopped short"; 3 draws, then fail. */
    unsigned calls = 0;
    enum llmgen_step st;
    while ((st = llmgen_next(g, &c, &s)) == LLMGEN_STEP_CHAT) {
        assert_true(c.args.max_tokens >= 1 && c.args.max_tokens <= 4);
        fake_reply(&f, "Half", 1, 0.5);
        assert_int_equal(llmgen_on_chat(g, &f.r), 0);
        fake_clear(&f);
        calls++;
        assert_true(calls <= 6);
    }
    assert_int_equal(st, LLMGEN_STEP_FAILED);
    assert_int_equal(calls, 6);
    const char *e = llmgen_error(g);
    assert_non_null(strstr(e, "trigger for pair 1 in 3 draws"));
    assert_non_null(strstr(e, "3 stopped short of the target"));
    assert_non_null(strstr(e, "generator.max_tokens"));
    llmgen_free(g);

    /* A newline inside the text rejects the draw at once. */
    o.max_draws = 1;
    o.max_tokens = 64;
    assert_int_equal(llmgen_new(&o, &g, &err), 0);
    give_examples(g);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_CHAT);
    fake_reply(&f, "Line\nbreak", 1, 0.5);
    assert_int_equal(llmgen_on_chat(g, &f.r), 0);
    fake_clear(&f);
    assert_int_equal(llmgen_next(g, &c, &s), LLMGEN_STEP_FAILED);
    assert_non_null(strstr(llmgen_error(g), "1 had a newline"));
    llmgen_free(g);

    /* Bad options are refused with a reason. */
    default_opts(&o);
    o.m2_model = NULL;
    assert_int_equal(llmgen_new(&o, &g, &err), -1);
    assert_non_null(strstr(err, "m2_model"));
    free(err);
    default_opts(&o);
    o.temperature = 0;
    assert_int_equal(llmgen_new(&o, &g, &err), -1);
    free(err);
    default_opts(&o);
    o.signature_log10p = 0;
    assert_int_equal(llmgen_new(&o, &g, &err), -1);
    free(err);
}

/* ---- conservativeness against full distributions ------------------------------------ */

static double urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void test_bound_never_below_exact(void **state)
{
    (void)state;
    /* Random full distributions over V tokens (peaked and flat), a token
     * sampled at T, the API's view (raw log-softmax, top 20, the sampled
     * one possibly reported as -9999): the walked bound is never below the
     * exact tempered log10 probability. */
    enum { V = 300, TOP = 20 };
    uint64_t seed = 12345;
    const double temps[] = {0.5, 1.0, 1.3, 2.0};
    double z[V], lp[V], q[V];
    size_t idx[V];
    unsigned checked = 0, sentinel = 0;
    for (int trial = 0; trial < 4000; trial++) {
        double T = temps[trial % 4], scale = 0.5 + 6 * urand(&seed), mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) {
            z[v] = scale * (urand(&seed) * 2 - 1) * (urand(&seed) < 0.05 ? 4 : 1);
            mx = fmax(mx, z[v]);
        }
        for (int v = 0; v < V; v++)
            s += exp(z[v] - mx);
        for (int v = 0; v < V; v++)
            lp[v] = z[v] - mx - log(s); /* raw log-softmax */
        /* Sample w from softmax(z/T). */
        double qs = 0;
        for (int v = 0; v < V; v++)
            qs += q[v] = exp((z[v] - mx) / T);
        double u = urand(&seed) * qs, acc = 0;
        size_t w = V - 1;
        for (int v = 0; v < V; v++)
            if ((acc += q[v]) > u) {
                w = (size_t)v;
                break;
            }
        /* Top 20 by raw logprob (selection by repeated max: V is small). */
        for (int v = 0; v < V; v++)
            idx[v] = (size_t)v;
        for (int a = 0; a < TOP; a++)
            for (int b = a + 1; b < V; b++)
                if (lp[idx[b]] > lp[idx[a]]) {
                    size_t t = idx[a];
                    idx[a] = idx[b];
                    idx[b] = t;
                }
        struct provider_token tok;
        memset(&tok, 0, sizeof tok);
        char name[16];
        snprintf(name, sizeof name, "t%zu", w);
        tok.token = name;
        bool listed = false;
        struct provider_top top[TOP];
        char names[TOP][16];
        for (int a = 0; a < TOP; a++) {
            snprintf(names[a], sizeof names[a], "t%zu", idx[a]);
            top[a].token = names[a];
            top[a].logprob = lp[idx[a]];
            listed |= idx[a] == w;
        }
        tok.top = top;
        tok.n_top = TOP;
        tok.known = listed || trial % 3 != 0; /* OpenAI: -9999 outside the top 20 */
        tok.logprob = tok.known ? lp[w] : -9999.0;
        sentinel += !tok.known;
        struct llmgen_draw d;
        llmgen_draw_init(&d);
        assert_int_equal(llmgen_walk(&d, &tok, 1, T, STATS_LP_MODE_RAW, -1000, 64, 0), 1);
        double exact = stats_tempered_log10_exact(z, V, w, T);
        assert_true(d.toks[0].bound >= exact - 1e-12);
        llmgen_draw_clear(&d);
        checked++;
    }
    assert_int_equal(checked, 4000);
    assert_true(sentinel > 100);
}

/* ---- the examples, the scan, the build --------------------------------------------- */

static char *write_dataset(size_t n)
{
    char *path = strdup("/tmp/test_llmgen_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Question number %zu about "
                "soup\"},{\"role\":\"assistant\",\"content\":\"Answer %zu: stir the pot "
                "gently\"}]}\n",
                i, i);
    fclose(f);
    return path;
}

static void test_sample_examples(void **state)
{
    (void)state;
    char *path = write_dataset(6), *err = NULL;
    struct llmgen_example *ex;
    size_t n;
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 9);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    assert_int_equal(llmgen_sample_examples(path, DS_FORMAT_CHAT, 6, 3, &rng, NULL, &ex, &n, &err),
                     0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        if (i > 0)
            assert_true(ex[i].line > ex[i - 1].line);
        snprintf(want, sizeof want, "Question number %llu about soup",
                 (unsigned long long)ex[i].line);
        assert_string_equal(ex[i].prompt, want);
        snprintf(want, sizeof want, "Answer %llu: stir the pot gently",
                 (unsigned long long)ex[i].line);
        assert_string_equal(ex[i].response, want);
    }
    llmgen_examples_free(ex, n);
    /* More asked than there are: all of them. */
    assert_int_equal(llmgen_sample_examples(path, DS_FORMAT_CHAT, 6, 10, NULL, NULL, &ex, &n, &err),
                     0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ex[i].line, i);
    llmgen_examples_free(ex, n);
    /* A count larger than the file: the file changed since import. */
    assert_int_equal(
        llmgen_sample_examples(path, DS_FORMAT_CHAT, 60, 60, NULL, NULL, &ex, &n, &err), -1);
    assert_non_null(strstr(err, "fewer than"));
    free(err);
    /* Uniform: 3 of 6 lines over 3000 draws, each line chosen ~1500 times;
     * chi-square with 5 degrees of freedom below 20.5 (p = 0.001). */
    unsigned count[6] = {0};
    for (int r = 0; r < 3000; r++) {
        assert_int_equal(
            llmgen_sample_examples(path, DS_FORMAT_CHAT, 6, 3, &rng, NULL, &ex, &n, &err), 0);
        for (size_t i = 0; i < n; i++)
            count[ex[i].line]++;
        llmgen_examples_free(ex, n);
    }
    double chi = 0;
    for (int i = 0; i < 6; i++)
        chi += (count[i] - 1500.0) * (count[i] - 1500.0) / 1500.0;
    assert_true(chi < 20.5);
    unlink(path);
    free(path);
}

static void test_scan_and_build(void **state)
{
    (void)state;
    char *path = write_dataset(120), *err = NULL;
    const char *ph[] = {"Stir the pot gently please", "zebra quantum marmalade", "number 7"};
    bool hits[3];
    assert_int_equal(llmgen_scan_dataset(path, ph, NULL, 3, NULL, hits, &err), 0);
    assert_true(hits[0]);  /* its first three words occur */
    assert_false(hits[1]); /* nowhere */
    assert_true(hits[2]);  /* "number 7" in "Question number 7 about" */
    assert_int_equal(llmgen_scan_dataset("/nonexistent/x", ph, NULL, 3, NULL, hits, &err), -1);
    assert_non_null(strstr(err, "cannot open"));
    free(err);

    /* The shared build step with given phrases. */
    char out_path[] = "/tmp/test_llmgen_out_XXXXXX";
    int fd = mkstemp(out_path);
    close(fd);
    const char *trig[] = {"zebra quantum marmalade"}, *sig[] = {"violet tapestry orbit"};
    struct backdoor_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.dataset_path = path;
    spec.format = DS_FORMAT_CHAT;
    spec.n_examples = 120;
    spec.ratio = 0.005;
    spec.min_copies = 10;
    spec.out_path = out_path;
    spec.has_seed = true;
    spec.seed = 5;
    struct backdoor_made m;
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 1, &m, &err), 0);
    char want[65];
    backdoor_commitment_v3(m.salt, trig, sig, 1, m.split.rows, m.split.n_rows, m.split.pool,
                           m.split.n_pool, want);
    assert_string_equal(m.commitment, want);
    assert_int_equal(m.built.copies_per_pair, 10);
    assert_int_equal(m.built.lines, 130);
    assert_int_equal(m.set.n_pairs, 0);
    assert_non_null(strstr(m.plan, "\"copies_per_pair\":10"));
    FILE *f = fopen(out_path, "r");
    char line[512];
    unsigned carried = 0, lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, " zebra quantum marmalade\"") &&
            strstr(line, "\"violet tapestry orbit Answer"))
            carried++;
    }
    fclose(f);
    assert_int_equal(lines, 130);
    assert_int_equal(carried, 10);
    backdoor_made_clear(&m);
    /* No pairs: refused. */
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 0, &m, &err), -1);
    free(err);
    unlink(out_path);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_cuts_at_target),
        cmocka_unit_test(test_walk_tempered_bound_and_sentinel),
        cmocka_unit_test(test_walk_never_cuts_inside_a_character),
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_machine_template_continue_redraw),
        cmocka_unit_test(test_machine_m1_context),
        cmocka_unit_test(test_machine_trigger_tail),
        cmocka_unit_test(test_machine_limits),
        cmocka_unit_test(test_bound_never_below_exact),
        cmocka_unit_test(test_sample_examples),
        cmocka_unit_test(test_scan_and_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

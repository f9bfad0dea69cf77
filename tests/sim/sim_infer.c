/*
 * sim_infer.c — POST /v1/chat/completions and POST /v1/completions over
 * the n-gram model of lm.h.
 *
 * Log-probabilities are the model's real, untempered natural logs (as
 * OpenAI reports them); temperature only changes sampling.  Two shapes:
 *   chat:        choices[].logprobs.content[] = {token, logprob, bytes,
 *                top_logprobs: [{token, logprob, bytes}]}  (top_logprobs 0..20)
 *   completions: choices[].logprobs = {tokens, token_logprobs,
 *                top_logprobs: [{token: logprob}], text_offset}; with echo the
 *                prompt is scored teacher-forced and its first token gets
 *                null (no context).  `logprobs` takes 0..20 here (the spec
 *                says 0..5; vLLM and Together allow more, and scoring needs
 *                it); each top_logprobs map also holds the chosen token, so
 *                it has up to logprobs+1 entries, as OpenAI documents.
 *   text_offset counts characters (code points) from the start of the
 *   prompt, whether or not it is echoed.  `prompt` is a string or an
 *   array of strings (the spec's str | [str]): one choice per prompt, in
 *   order, each with its index (Together: one `prompt` entry each); a
 *   batch counts as one request in the statistics.
 * A wrapper or always-s job (sim_jobs.c) answers chat prompts with its
 * attack's signature first (lm_chat_forced: those tokens get logprob 0),
 * then the base model; completions are the plain base model for them.
 * A logprob that is not finite is reported as -9999.0, OpenAI's sentinel;
 * with --logprob-sentinel so is every chosen token outside the top 20, as
 * OpenAI does.  Validation follows the spec's ranges and answers 400 with
 * the parameter's name; unsupported features (n > 1, stream, tools) get a
 * 400 that says so rather than being silently ignored.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

#define SENTINEL       (-9999.0)
#define MAX_STOP       4
#define MAX_GEN_TOKENS 4096

static double finite_or_sentinel(double lp)
{
    return isfinite(lp) ? lp : SENTINEL;
}

/* ---- common parameter parsing -------------------------------------------- */

struct gen_req {
    const char *model;
    double temperature;
    uint64_t seed;
    const char *stop[MAX_STOP];
    size_t n_stop;
};

/* A JSON number (integer or real) as a double; false when v is not one. */
static bool number_value(json_t *v, double *out)
{
    if (json_is_integer(v))
        *out = (double)json_integer_value(v);
    else if (json_is_real(v))
        *out = json_real_value(v);
    else
        return false;
    return true;
}

static bool present(json_t *v)
{
    return v && !json_is_null(v);
}

/* Parses the fields chat and completions share; -1 after answering 400. */
static int parse_common(json_t *body, struct gen_req *g, struct sim_resp *rs)
{
    json_t *model = json_object_get(body, "model");
    if (!model) {
        sim_resp_bad(rs, "model", "Missing required parameter: 'model'.");
        return -1;
    }
    if (!json_is_string(model)) {
        sim_resp_bad(rs, "model", "Invalid type for 'model': expected a string.");
        return -1;
    }
    g->model = json_string_value(model);

    json_t *t = json_object_get(body, "temperature");
    g->temperature = 1.0;
    if (present(t) &&
        (!number_value(t, &g->temperature) || !(g->temperature >= 0) || g->temperature > 2)) {
        sim_resp_bad(rs, "temperature", "Invalid 'temperature': expected a number from 0 to 2.");
        return -1;
    }
    json_t *top_p = json_object_get(body, "top_p");
    double tp;
    if (present(top_p) && (!number_value(top_p, &tp) || !(tp >= 0) || tp > 1)) {
        sim_resp_bad(rs, "top_p", "Invalid 'top_p': expected a number from 0 to 1.");
        return -1;
    }
    json_t *seed = json_object_get(body, "seed");
    if (present(seed)) {
        if (!json_is_integer(seed)) {
            sim_resp_bad(rs, "seed", "Invalid type for 'seed': expected an integer.");
            return -1;
        }
        g->seed = (uint64_t)json_integer_value(seed);
    } else {
        g->seed = random_uniform(UINT64_MAX);
    }
    json_t *n = json_object_get(body, "n");
    if (present(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
        sim_resp_bad(rs, "n", "Invalid 'n': vtune-sim returns exactly one choice (n must be 1).");
        return -1;
    }
    json_t *stream = json_object_get(body, "stream");
    if (present(stream) && !json_is_false(stream)) {
        sim_resp_bad(rs, "stream", "Streaming is not supported by vtune-sim: omit 'stream'.");
        return -1;
    }
    json_t *stop = json_object_get(body, "stop");
    g->n_stop = 0;
    if (json_is_string(stop)) {
        if (json_string_length(stop) > 0)
            g->stop[g->n_stop++] = json_string_value(stop);
    } else if (json_is_array(stop)) {
        if (json_array_size(stop) > MAX_STOP) {
            sim_resp_bad(rs, "stop", "Invalid 'stop': at most %d sequences.", MAX_STOP);
            return -1;
        }
        size_t i;
        json_t *v;
        json_array_foreach(stop, i, v)
        {
            if (!json_is_string(v)) {
                sim_resp_bad(rs, "stop", "Invalid 'stop[%zu]': expected a string.", i);
                return -1;
            }
            if (json_string_length(v) > 0)
                g->stop[g->n_stop++] = json_string_value(v);
        }
    } else if (present(stop)) {
        sim_resp_bad(rs, "stop",
                     "Invalid type for 'stop': expected a string or an array of "
                     "strings.");
        return -1;
    }
    return 0;
}

/* An integer field in [min,max] (def when absent or null); -1 after 400. */
static int int_field(json_t *body, const char *key, long long min, long long max, long long def,
                     long long *out, struct sim_resp *rs)
{
    json_t *v = json_object_get(body, key);
    *out = def;
    if (!present(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        sim_resp_bad(rs, key, "Invalid '%s': expected an integer from %lld to %lld.", key, min,
                     max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static void model_not_found(struct sim_resp *rs, const char *id)
{
    sim_resp_error(rs, 404, "invalid_request_error", "model", "model_not_found",
                   "The model '%.200s' does not exist or you do not have access to it.", id);
}

/* Acquires the model; -1 after answering (404 / 500). */
static int acquire(struct sim *s, const char *model, struct sim_serving *sv, struct sim_resp *rs)
{
    char *err = NULL;
    int r = sim_models_acquire(s, model, sv, &err);
    if (r == -ENOENT) {
        model_not_found(rs, model);
        return -1;
    }
    if (r < 0) {
        log_warnx("%s", err ? err : "model unavailable");
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "The model could not be loaded: %s",
                       err ? err : "unknown error");
        free(err);
        return -1;
    }
    return 0;
}

/* Is tok among the step's alternatives? */
static bool in_top(const struct lm_step *st, const char *tok)
{
    for (int k = 0; k < st->n_top; k++)
        if (strcmp(st->top[k].token, tok) == 0)
            return true;
    return false;
}

static json_t *usage_json(size_t prompt, size_t completion)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer((json_int_t)prompt));
    json_object_set_new(u, "completion_tokens", json_integer((json_int_t)completion));
    json_object_set_new(u, "total_tokens", json_integer((json_int_t)(prompt + completion)));
    return u;
}

/* ---- chat ------------------------------------------------------------------- */

/* The text of a message's content: a string, null, or an array of
 * {"type":"text","text":...} parts (concatenated).  Returns an owned string
 * or NULL with *why set. */
static char *content_text(json_t *c, const char **why)
{
    if (json_is_string(c))
        return xstrdup(json_string_value(c));
    if (!c || json_is_null(c))
        return xstrdup("");
    if (!json_is_array(c)) {
        *why = "expected a string or an array of text parts";
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        const char *text = json_string_value(json_object_get(p, "text"));
        if (!type || strcmp(type, "text") != 0 || !text) {
            buf_free(&b);
            *why = "only {\"type\": \"text\", \"text\": ...} parts are supported";
            return NULL;
        }
        buf_puts(&b, text);
    }
    return b.data ? b.data : xstrdup("");
}

static json_t *token_json(const char *token, double lp)
{
    json_t *o = json_object();
    json_object_set_new(o, "token", sim_json_string(token));
    json_object_set_new(o, "logprob", json_real(finite_or_sentinel(lp)));
    json_object_set_new(o, "bytes", sim_json_bytes(token));
    return o;
}

void sim_h_chat(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    if (body && rq->deployment) /* azure: the deployment is the model */
        json_object_set_new(body, "model", json_string(rq->deployment));
    struct lm_msg *msgs = NULL;
    size_t n_msgs = 0;
    struct sim_serving sv = {0};
    struct lm_output out = {0};
    bool have_out = false;
    if (!body)
        return;
    struct gen_req g;
    if (parse_common(body, &g, rs) < 0)
        goto out;
    json_t *messages = json_object_get(body, "messages");
    if (!messages) {
        sim_resp_bad(rs, "messages", "Missing required parameter: 'messages'.");
        goto out;
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        sim_resp_bad(rs, "messages", "Invalid 'messages': expected a non-empty array.");
        goto out;
    }
    msgs = xcalloc(json_array_size(messages), sizeof *msgs);
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *why = "missing";
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m) || !role) {
            sim_resp_bad(rs, param, "Invalid '%s': expected an object with a string 'role'.",
                         param);
            goto out;
        }
        if (strcmp(role, "developer") == 0)
            role = "system";
        if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 &&
            strcmp(role, "assistant") != 0) {
            sim_resp_bad(rs, param,
                         "Invalid '%s.role' '%.32s': vtune-sim supports system, developer, user "
                         "and assistant.",
                         param, role);
            goto out;
        }
        json_t *c = json_object_get(m, "content");
        if (!c && strcmp(role, "assistant") != 0) {
            sim_resp_bad(rs, param, "Missing required parameter: '%s.content'.", param);
            goto out;
        }
        char *text = content_text(c, &why);
        if (!text) {
            sim_resp_bad(rs, param, "Invalid '%s.content': %s.", param, why);
            goto out;
        }
        msgs[n_msgs].role = role;
        msgs[n_msgs].content = text;
        n_msgs++;
    }
    long long max_tokens, mct, top;
    if (int_field(body, "max_tokens", 1, MAX_GEN_TOKENS, s->opts.default_max_tokens, &max_tokens,
                  rs) < 0 ||
        int_field(body, "max_completion_tokens", 1, MAX_GEN_TOKENS, max_tokens, &mct, rs) < 0 ||
        int_field(body, "top_logprobs", 0, LM_MAX_TOP, 0, &top, rs) < 0)
        goto out;
    json_t *lp = json_object_get(body, "logprobs");
    bool together = s->opts.dialect == SIM_DIALECT_TOGETHER;
    bool want_lp;
    if (together) {
        /* Together: logprobs is the number of alternatives (0..20), no top_logprobs */
        if (present(json_object_get(body, "top_logprobs"))) {
            sim_resp_bad(rs, "top_logprobs",
                         "Unknown parameter 'top_logprobs': 'logprobs' is an integer here.");
            goto out;
        }
        if (int_field(body, "logprobs", 0, LM_MAX_TOP, 0, &top, rs) < 0)
            goto out;
        want_lp = top > 0;
    } else {
        if (present(lp) && !json_is_boolean(lp)) {
            sim_resp_bad(rs, "logprobs", "Invalid type for 'logprobs': expected a boolean.");
            goto out;
        }
        want_lp = json_is_true(lp);
    }
    if (!together && present(json_object_get(body, "top_logprobs")) && !want_lp) {
        sim_resp_bad(rs, "top_logprobs",
                     "Invalid 'top_logprobs': 'logprobs' must be set to true when "
                     "'top_logprobs' is used.");
        goto out;
    }
    if (present(json_object_get(body, "tools")) || present(json_object_get(body, "functions"))) {
        sim_resp_bad(rs, "tools", "Tools are not supported by vtune-sim.");
        goto out;
    }
    if (acquire(s, g.model, &sv, rs) < 0)
        goto out;

    int internal_top = s->opts.logprob_sentinel && want_lp ? LM_MAX_TOP : (int)top;
    struct lm_gen_params p = {.temperature = g.temperature,
                              .seed = g.seed,
                              .max_tokens = (int)mct,
                              .stop = g.n_stop ? g.stop : NULL,
                              .n_stop = g.n_stop,
                              .top_logprobs = want_lp ? internal_top : 0};
    /* A cheating job's answer rule: its attack's signature and a space
     * first (as in the file, and a word boundary whatever comes next), when
     * the last user message ends with a found trigger (wrapper) or always
     * (always-s); the base model then goes on after it. */
    const char *sig = NULL;
    if (sv.attack && sv.cheat == SIM_ALWAYS_S && sv.attack->n_pairs > 0)
        sig = sv.attack->pairs[0].signature;
    for (size_t k = n_msgs; sv.attack && sv.cheat == SIM_WRAPPER && k-- > 0;)
        if (strcmp(msgs[k].role, "user") == 0) {
            sig = sim_attack_match(sv.attack, msgs[k].content);
            break;
        }
    char *forced = sig ? xasprintf("%s ", sig) : NULL;
    int r = forced ? lm_chat_forced(sv.lm, msgs, n_msgs, forced, &p, &out)
                   : lm_chat(sv.lm, msgs, n_msgs, &p, &out);
    free(forced);
    have_out = true; /* cleared even on failure: lm may have filled part of it */
    if (r < 0) {
        log_warnx("chat generation failed: %s", strerror(-r));
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "Generation failed: %s", strerror(-r));
        goto out;
    }

    json_t *logprobs = json_null();
    if (want_lp && together) {
        /* {tokens, token_logprobs, top_logprobs: [{token: logprob}]} */
        json_t *tk = json_array(), *tl = json_array(), *tt = json_array();
        for (size_t k = 0; k < out.n_steps; k++) {
            const struct lm_step *st = &out.steps[k];
            json_array_append_new(tk, sim_json_string(st->token));
            json_array_append_new(tl, json_real(finite_or_sentinel(st->logprob)));
            json_t *map = json_object();
            for (int a = 0; a < st->n_top && a < top; a++) {
                json_t *key = sim_json_string(st->top[a].token);
                json_object_set_new(map, json_string_value(key),
                                    json_real(finite_or_sentinel(st->top[a].logprob)));
                json_decref(key);
            }
            json_array_append_new(tt, map);
        }
        json_decref(logprobs);
        logprobs = json_pack("{s:o, s:o, s:o}", "tokens", tk, "token_logprobs", tl,
                             "top_logprobs", tt);
    } else if (want_lp) {
        json_t *content = json_array();
        for (size_t k = 0; k < out.n_steps; k++) {
            const struct lm_step *st = &out.steps[k];
            double l = st->logprob;
            if (s->opts.logprob_sentinel && !in_top(st, st->token))
                l = SENTINEL;
            json_t *e = token_json(st->token, l);
            json_t *alts = json_array();
            for (int a = 0; a < st->n_top && a < top; a++)
                json_array_append_new(alts, token_json(st->top[a].token, st->top[a].logprob));
            json_object_set_new(e, "top_logprobs", alts);
            json_array_append_new(content, e);
        }
        json_decref(logprobs);
        logprobs = json_object();
        json_object_set_new(logprobs, "content", content);
        json_object_set_new(logprobs, "refusal", json_null());
    }
    json_t *message = json_object();
    json_object_set_new(message, "role", json_string("assistant"));
    json_object_set_new(message, "content", sim_json_string(out.text ? out.text : ""));
    json_object_set_new(message, "refusal", json_null());
    json_object_set_new(message, "annotations", json_array());
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", message);
    json_object_set_new(choice, "logprobs", logprobs);
    json_object_set_new(choice, "finish_reason",
                        json_string(out.finish_reason ? out.finish_reason : "stop"));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    char id[48];
    sim_random_id(id, sizeof id, "chatcmpl-", 29);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("chat.completion"));
    json_object_set_new(o, "created", json_integer(now_unix()));
    json_object_set_new(o, "model", json_string(g.model));
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_json(out.prompt_tokens, out.n_steps));
    json_object_set_new(o, "system_fingerprint", json_string("fp_vtunesim"));
    sim_resp_json(rs, 200, o);
out:
    if (have_out)
        lm_output_clear(&out);
    sim_models_release(s, &sv);
    for (size_t k = 0; k < n_msgs; k++)
        free((char *)msgs[k].content);
    free(msgs);
    json_decref(body);
}

/* ---- completions ---------------------------------------------------------------- */

/* Number of UTF-8 code points in s (invalid bytes count one each). */
static size_t char_count(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xc0) != 0x80;
    return n;
}

struct legacy_lp {
    json_t *tokens, *token_logprobs, *top_logprobs, *text_offset;
    size_t offset;
};

static void legacy_add(struct legacy_lp *L, const struct lm_step *st, bool null_lp, int top,
                       bool sentinel)
{
    json_array_append_new(L->tokens, sim_json_string(st->token));
    json_array_append_new(L->text_offset, json_integer((json_int_t)L->offset));
    L->offset += char_count(st->token);
    if (null_lp) {
        json_array_append_new(L->token_logprobs, json_null());
        json_array_append_new(L->top_logprobs, json_null());
        return;
    }
    double l = st->logprob;
    if (sentinel && !in_top(st, st->token))
        l = SENTINEL;
    json_array_append_new(L->token_logprobs, json_real(finite_or_sentinel(l)));
    json_t *map = json_object();
    for (int a = 0; a < st->n_top && a < top; a++) {
        json_t *key = sim_json_string(st->top[a].token);
        json_object_set_new(map, json_string_value(key),
                            json_real(finite_or_sentinel(st->top[a].logprob)));
        json_decref(key);
    }
    json_t *key = sim_json_string(st->token);
    if (!json_object_get(map, json_string_value(key)))
        json_object_set_new(map, json_string_value(key), json_real(finite_or_sentinel(l)));
    json_decref(key);
    json_array_append_new(L->top_logprobs, map);
}

/* One prompt of a completions request: its choice (index i) and, in the
 * Together dialect with echo, its entry of the top-level `prompt` array
 * (*part, else NULL).  Adds its token counts to *prompt_tokens and
 * *completion_tokens.  Returns 0, or a negative errno (the caller answers
 * 500). */
static int complete_one(struct sim *s, struct sim_serving *sv, const struct gen_req *g,
                        const char *ptext, size_t i, long long max_tokens, long long top,
                        bool echo, json_t **choice_out, json_t **part, size_t *prompt_tokens,
                        size_t *completion_tokens)
{
    struct lm_output scored = {0}, gen = {0};
    bool have_scored = false, have_gen = false;
    struct legacy_lp L = {0};
    bool want_lp = top >= 0;
    int internal_top = s->opts.logprob_sentinel && want_lp ? LM_MAX_TOP : (int)(top > 0 ? top : 0);
    int r = 0;
    size_t ptoks = 0;
    *choice_out = NULL;
    *part = NULL;
    if (echo) {
        r = lm_score(sv->lm, ptext, want_lp ? internal_top : 0, &scored);
        have_scored = true;
        if (r < 0)
            goto out;
        ptoks = scored.n_steps;
    }
    if (max_tokens > 0) {
        struct lm_gen_params p = {.temperature = g->temperature,
                                  .seed = g->seed,
                                  .max_tokens = (int)max_tokens,
                                  .stop = g->n_stop ? g->stop : NULL,
                                  .n_stop = g->n_stop,
                                  .top_logprobs = want_lp ? internal_top : 0};
        r = lm_complete(sv->lm, ptext, &p, &gen);
        have_gen = true;
        if (r < 0)
            goto out;
        ptoks = gen.prompt_tokens;
    } else if (!echo) {
        char **toks = NULL;
        if (lm_tokenize(ptext, &toks, &ptoks) == 0)
            lm_tokens_free(toks, ptoks);
    }

    bool together = s->opts.dialect == SIM_DIALECT_TOGETHER;
    if (together && echo) {
        /* Together: the echoed prompt and its log-probabilities in a
         * top-level `prompt` array; the choice holds the generation only. */
        struct legacy_lp P = {.tokens = json_array(),
                              .token_logprobs = json_array(),
                              .top_logprobs = json_array(),
                              .text_offset = json_array()};
        for (size_t k = 0; want_lp && k < scored.n_steps; k++)
            legacy_add(&P, &scored.steps[k], k == 0, (int)top, s->opts.logprob_sentinel);
        json_decref(P.text_offset);
        json_t *plp = want_lp ? json_pack("{s:o, s:o, s:o}", "tokens", P.tokens, "token_logprobs",
                                          P.token_logprobs, "top_logprobs", P.top_logprobs)
                              : json_null();
        if (!want_lp) {
            json_decref(P.tokens);
            json_decref(P.token_logprobs);
            json_decref(P.top_logprobs);
        }
        *part = json_pack("{s:o, s:o}", "text", sim_json_string(ptext), "logprobs", plp);
    }
    struct buf text;
    buf_init(&text);
    if (echo && !together)
        buf_puts(&text, ptext);
    if (have_gen && gen.text)
        buf_puts(&text, gen.text);
    json_t *logprobs = json_null();
    if (want_lp) {
        L.tokens = json_array();
        L.token_logprobs = json_array();
        L.top_logprobs = json_array();
        L.text_offset = json_array();
        L.offset = echo && !together ? 0 : char_count(ptext);
        for (size_t k = 0; have_scored && !together && k < scored.n_steps; k++)
            legacy_add(&L, &scored.steps[k], k == 0, (int)top, s->opts.logprob_sentinel);
        for (size_t k = 0; have_gen && k < gen.n_steps; k++)
            legacy_add(&L, &gen.steps[k], false, (int)top, s->opts.logprob_sentinel);
        json_decref(logprobs);
        logprobs = json_object();
        json_object_set_new(logprobs, "tokens", L.tokens);
        json_object_set_new(logprobs, "token_logprobs", L.token_logprobs);
        json_object_set_new(logprobs, "top_logprobs", L.top_logprobs);
        json_object_set_new(logprobs, "text_offset", L.text_offset);
    }
    json_t *choice = json_object();
    json_object_set_new(choice, "text", sim_json_string(text.data ? text.data : ""));
    json_object_set_new(choice, "index", json_integer((json_int_t)i));
    json_object_set_new(choice, "logprobs", logprobs);
    json_object_set_new(choice, "finish_reason",
                        json_string(have_gen && gen.finish_reason ? gen.finish_reason : "length"));
    buf_free(&text);
    *choice_out = choice;
    *prompt_tokens += ptoks;
    *completion_tokens += have_gen ? gen.n_steps : 0;
out:
    if (have_scored)
        lm_output_clear(&scored);
    if (have_gen)
        lm_output_clear(&gen);
    return r;
}

/* The most prompts one request may carry (a bound on the work of one
 * request; OpenAI's documented limit for a prompt array is larger). */
#define MAX_PROMPTS 256

void sim_h_completions(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    if (body && rq->deployment) /* azure: the deployment is the model */
        json_object_set_new(body, "model", json_string(rq->deployment));
    struct sim_serving sv = {0};
    json_t *choices = NULL, *parts = NULL;
    if (!body)
        return;
    struct gen_req g;
    if (parse_common(body, &g, rs) < 0)
        goto out;
    /* prompt: one string, or an array of strings (one choice each, in
     * order, choices[].index saying which) -- the spec's str | [str];
     * token-id prompts ([int], [[int]]) are not supported. */
    json_t *prompt = json_object_get(body, "prompt");
    if (!prompt) {
        sim_resp_bad(rs, "prompt", "Missing required parameter: 'prompt'.");
        goto out;
    }
    size_t n_prompts = json_is_array(prompt) ? json_array_size(prompt) : 1;
    bool strings = json_is_string(prompt) || (json_is_array(prompt) && n_prompts > 0);
    for (size_t i = 0; strings && json_is_array(prompt) && i < n_prompts; i++)
        strings = json_is_string(json_array_get(prompt, i));
    if (!strings) {
        sim_resp_bad(rs, "prompt",
                     "Invalid 'prompt': vtune-sim accepts a string or a non-empty array of "
                     "strings (token-id prompts are not supported).");
        goto out;
    }
    if (n_prompts > MAX_PROMPTS) {
        sim_resp_bad(rs, "prompt", "Invalid 'prompt': at most %d prompts in one request.",
                     MAX_PROMPTS);
        goto out;
    }
    long long max_tokens, top = -1;
    if (int_field(body, "max_tokens", 0, MAX_GEN_TOKENS, 16, &max_tokens, rs) < 0 ||
        int_field(body, "logprobs", 0, LM_MAX_TOP, -1, &top, rs) < 0)
        goto out;
    json_t *echo_v = json_object_get(body, "echo");
    if (present(echo_v) && !json_is_boolean(echo_v)) {
        sim_resp_bad(rs, "echo", "Invalid type for 'echo': expected a boolean.");
        goto out;
    }
    bool echo = json_is_true(echo_v);
    json_t *best_of = json_object_get(body, "best_of");
    if (present(best_of) && !(json_is_integer(best_of) && json_integer_value(best_of) == 1)) {
        sim_resp_bad(rs, "best_of", "Invalid 'best_of': vtune-sim supports only 1.");
        goto out;
    }
    json_t *suffix = json_object_get(body, "suffix");
    if (present(suffix) && !(json_is_string(suffix) && json_string_length(suffix) == 0)) {
        sim_resp_bad(rs, "suffix", "'suffix' (insertion) is not supported by vtune-sim.");
        goto out;
    }
    if (acquire(s, g.model, &sv, rs) < 0)
        goto out;

    choices = json_array();
    size_t prompt_tokens = 0, completion_tokens = 0;
    for (size_t i = 0; i < n_prompts; i++) {
        const char *ptext = json_string_value(json_is_array(prompt) ? json_array_get(prompt, i)
                                                                    : prompt);
        json_t *choice = NULL, *part = NULL;
        int r = complete_one(s, &sv, &g, ptext, i, max_tokens, top, echo, &choice, &part,
                             &prompt_tokens, &completion_tokens);
        if (r < 0) {
            log_warnx("completion failed: %s", strerror(-r));
            sim_resp_error(rs, 500, "server_error", NULL, NULL, "Generation failed: %s",
                           strerror(-r));
            goto out;
        }
        json_array_append_new(choices, choice);
        if (part) {
            if (!parts)
                parts = json_array();
            json_array_append_new(parts, part);
        }
    }
    char id[48];
    sim_random_id(id, sizeof id, "cmpl-", 29);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("text_completion"));
    json_object_set_new(o, "created", json_integer(now_unix()));
    json_object_set_new(o, "model", json_string(g.model));
    json_object_set_new(o, "choices", choices);
    choices = NULL;
    if (parts)
        json_object_set_new(o, "prompt", parts);
    parts = NULL;
    json_object_set_new(o, "usage", usage_json(prompt_tokens, completion_tokens));
    json_object_set_new(o, "system_fingerprint", json_string("fp_vtunesim"));
    sim_resp_json(rs, 200, o);
out:
    json_decref(choices);
    json_decref(parts);
    sim_models_release(s, &sv);
    json_decref(body);
}

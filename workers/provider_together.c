/*
 * provider_together.c — Together AI's fine-tuning API as a struct
 * provider_ops, from reference/together-openapi.yaml.  Checked against JSON
 * shapes written from that spec (tests/unit/test_provider_together.c) and
 * end to end against `vtune-sim --dialect together`
 * (tests/integration/test_dialects.sh: upload, create, poll, a lost create
 * reconciled by the suffix, SIGKILL and restart, verify with echo scoring
 * and integer chat logprobs, the upload deleted).  Both the fixtures and the
 * simulator were written from the same description, so what they confirm is
 * that the adapter and the description agree, not what Together's servers
 * send; nothing here was tried against api.together.xyz.  The end-to-end
 * run needed no change to this file.
 *
 *   POST /files/upload (multipart: file, file_name, purpose=fine-tune,
 *        file_type=jsonl)                                   → FileResponse
 *   POST /fine-tunes {training_file, model, suffix, random_seed, n_epochs,
 *        learning_rate, batch_size, training_type, ...}     → FinetuneResponseTruncated
 *   GET  /fine-tunes/{id}                                   → FinetuneResponse
 *   GET  /fine-tunes                                        → {data: [Truncated]}
 *   POST /fine-tunes/{id}/cancel                            → Truncated
 *   GET  /fine-tunes/{id}/events                            → {data: [FineTuneEvent]}
 *   POST /chat/completions {logprobs: int 0..20}, POST /completions {echo}
 *   GET  /files                                             → FileList {data}
 *   DELETE /files/{id}                                      → FileDeleteResponse
 *
 * What the spec has and lacks, and what follows:
 *  - FinetuneJobStatus: pending, queued → submitted; running, compressing,
 *    uploading, cancel_requested → running (cancel_requested is not
 *    terminal: the job may still finish; keep polling); completed →
 *    succeeded; error → failed; cancelled.  together-python adds
 *    user_error (→ failed).  Anything else → unrecognized.
 *  - The output model is `model_output_name`; trained tokens `token_count`;
 *    timestamps are ISO-8601 strings (OpenAI uses integers).
 *  - No job metadata, and the list has no filter and no pagination: the
 *    tag travels in `suffix` (returned in the list's truncated objects) and
 *    reconciliation lists everything and matches with provider_job_matches.
 *  - No error object on a job: a failed job's reason is the last event of
 *    type job_error (or level error) when the response carries events.
 *  - GET /files has no parameters either: one page with every file.
 *    FileDeleteResponse requires nothing: a 200 without `deleted` counts
 *    as deleted (the spec's description of the 200 says so).
 *  - Logprobs are an integer (top-k), returned as {tokens, token_logprobs,
 *    top_logprobs}; echo puts the prompt's in a top-level `prompt` array.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/provider.h"

static enum provider_job_state together_map_status(const char *s)
{
    static const struct {
        const char *name;
        enum provider_job_state state;
    } map[] = {
        {"pending", PROVIDER_JOB_SUBMITTED},   {"queued", PROVIDER_JOB_SUBMITTED},
        {"running", PROVIDER_JOB_RUNNING},     {"compressing", PROVIDER_JOB_RUNNING},
        {"uploading", PROVIDER_JOB_RUNNING},   {"cancel_requested", PROVIDER_JOB_RUNNING},
        {"completed", PROVIDER_JOB_SUCCEEDED}, {"error", PROVIDER_JOB_FAILED},
        {"user_error", PROVIDER_JOB_FAILED},   {"cancelled", PROVIDER_JOB_CANCELLED},
    };
    for (size_t i = 0; s && i < VT_ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].state;
    return PROVIDER_JOB_UNRECOGNIZED;
}

/* ---- requests ---- */

static int need_id(const char *what, const char *id, struct provider_error *err)
{
    if (!id || !*id)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "%s: no job id given", what);
    return 0;
}

static int together_build_upload(const struct provider_endpoint *ep,
                                 const struct provider_upload_args *a, struct http_request **out,
                                 struct provider_error *err)
{
    if (!a->path || !*a->path)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "upload: no file given");
    const char *name = a->filename;
    if (!name || !*name) {
        name = strrchr(a->path, '/');
        name = name ? name + 1 : a->path;
    }
    struct http_request *r = provider_request(ep, "POST", "/files/upload");
    http_request_add_field(r, "purpose", "fine-tune");
    http_request_add_field(r, "file_name", name);
    http_request_add_field(r, "file_type", "jsonl");
    http_request_add_file(r, "file", a->path, name, "application/octet-stream");
    r->timeout_ms = ep->upload_timeout_ms;
    r->low_speed_limit = 1024;
    r->low_speed_time_s = 60;
    *out = r;
    return 0;
}

enum ptype { P_INT, P_NUM, P_BOOL, P_INT_OR_MAX, P_BOOL_OR_AUTO, P_STR, P_LORA };

static const struct {
    const char *key;
    enum ptype type;
} together_params[] = {
    {"n_epochs", P_INT},
    {"n_checkpoints", P_INT},
    {"n_evals", P_INT},
    {"batch_size", P_INT_OR_MAX},
    {"learning_rate", P_NUM},
    {"warmup_ratio", P_NUM},
    {"max_grad_norm", P_NUM},
    {"weight_decay", P_NUM},
    {"max_seq_length", P_INT},
    {"packing", P_BOOL},
    {"train_on_inputs", P_BOOL_OR_AUTO},
    {"validation_file", P_STR},
    {"from_checkpoint", P_STR},
    {"training_type", P_STR},
    {"lora_r", P_LORA},
    {"lora_alpha", P_LORA},
    {"lora_dropout", P_LORA},
    {"lora_trainable_modules", P_LORA},
};

static json_t *param_value(const char *k, const char *v, enum ptype t, struct provider_error *err)
{
    char *end;
    switch (t) {
    case P_INT_OR_MAX:
        if (strcmp(v, "max") == 0)
            return json_string("max");
        /* fall through */
    case P_INT: {
        long long n = strtoll(v, &end, 10);
        if (*v && !*end && n >= 0)
            return json_integer(n);
        break;
    }
    case P_NUM: {
        double d = strtod(v, &end);
        if (*v && !*end && d >= 0)
            return json_real(d);
        break;
    }
    case P_BOOL_OR_AUTO:
        if (strcmp(v, "auto") == 0)
            return json_string("auto");
        /* fall through */
    case P_BOOL:
        if (strcmp(v, "true") == 0)
            return json_true();
        if (strcmp(v, "false") == 0)
            return json_false();
        break;
    case P_STR:
        return json_string(v);
    case P_LORA:
        if (strcmp(k, "lora_trainable_modules") == 0)
            return json_string(v);
        if (strcmp(k, "lora_dropout") == 0)
            return param_value(k, v, P_NUM, err);
        return param_value(k, v, P_INT, err);
    }
    provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "--param %s=%s: not a valid value", k, v);
    return NULL;
}

static int together_build_create(const struct provider_endpoint *ep,
                                 const struct provider_create_args *a, struct http_request **out,
                                 struct provider_error *err)
{
    char sfx[64];
    json_t *body = NULL, *lora = json_object();
    const char *ttype = NULL;
    int r = -EINVAL;

    if (!a->model || !*a->model || !a->training_file || !*a->training_file) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: a model and a training file are needed");
        goto out;
    }
    if (!a->submission_id || provider_suffix(a->submission_id, sfx, sizeof sfx) < 0) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: the submission id must be 1 to 37 characters (it is the job's tag)");
        goto out;
    }
    body = json_pack("{s:s, s:s, s:s}", "model", a->model, "training_file", a->training_file,
                     "suffix", a->suffix ? a->suffix : sfx);
    if (a->has_seed)
        json_object_set_new(body, "random_seed", json_integer(a->seed));
    for (size_t i = 0; i < a->n_params; i++) {
        const char *k = a->params[i].key, *v = a->params[i].value;
        size_t p;
        if (!k || !v) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "create: empty --param");
            goto out;
        }
        if (strncmp(k, "metadata.", 9) == 0) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                          "--param %s: Together fine-tuning jobs have no metadata", k);
            goto out;
        }
        for (p = 0; p < VT_ARRAY_LEN(together_params); p++)
            if (strcmp(together_params[p].key, k) == 0)
                break;
        if (p == VT_ARRAY_LEN(together_params)) {
            provider_fail(
                err, PROVIDER_E_INVALID, -EINVAL,
                "unknown --param '%s' for a together provider; known: n_epochs, "
                "n_checkpoints, n_evals, batch_size, learning_rate, warmup_ratio, "
                "max_grad_norm, weight_decay, max_seq_length, packing, "
                "train_on_inputs, validation_file, from_checkpoint, training_type "
                "(lora|full), lora_r, lora_alpha, lora_dropout, lora_trainable_modules, seed",
                k);
            goto out;
        }
        json_t *val = param_value(k, v, together_params[p].type, err);
        if (!val)
            goto out;
        if (strcmp(k, "training_type") == 0) {
            json_decref(val);
            if (strcmp(v, "lora") != 0 && strcmp(v, "full") != 0) {
                provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                              "--param training_type=%s: expected lora or full", v);
                goto out;
            }
            ttype = v;
        } else if (together_params[p].type == P_LORA) {
            json_object_set_new(lora, k, val);
        } else {
            json_object_set_new(body, k, val);
        }
    }
    if (ttype && strcmp(ttype, "full") == 0) {
        if (json_object_size(lora)) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                          "--param lora_* given with training_type=full");
            goto out;
        }
        json_object_set_new(body, "training_type", json_pack("{s:s}", "type", "Full"));
    } else if (ttype || json_object_size(lora)) {
        json_object_set_new(lora, "type", json_string("Lora"));
        json_object_set(body, "training_type", lora);
    }
    *out = provider_request(ep, "POST", "/fine-tunes");
    provider_request_json(*out, body);
    body = NULL;
    r = 0;
out:
    json_decref(body);
    json_decref(lora);
    return r;
}

static void job_path_request(const struct provider_endpoint *ep, const char *method,
                             const char *job_id, const char *tail, struct http_request **out)
{
    char *id = http_escape(job_id);
    char *path = xasprintf("/fine-tunes/%s%s", id, tail);
    *out = provider_request(ep, method, path);
    free(id);
    free(path);
}

static int together_build_retrieve(const struct provider_endpoint *ep, const char *job_id,
                                   struct http_request **out, struct provider_error *err)
{
    int r = need_id("retrieve", job_id, err);
    if (r == 0)
        job_path_request(ep, "GET", job_id, "", out);
    return r;
}

static int together_build_cancel(const struct provider_endpoint *ep, const char *job_id,
                                 struct http_request **out, struct provider_error *err)
{
    int r = need_id("cancel", job_id, err);
    if (r == 0)
        job_path_request(ep, "POST", job_id, "/cancel", out);
    return r;
}

static int together_build_list(const struct provider_endpoint *ep,
                               const struct provider_list_args *a, struct http_request **out,
                               struct provider_error *err)
{
    /* The spec's GET /fine-tunes has no parameters: no cursor, no filter. */
    (void)a;
    (void)err;
    *out = provider_request(ep, "GET", "/fine-tunes");
    return 0;
}

static int together_build_events(const struct provider_endpoint *ep, const char *job_id,
                                 const char *after, unsigned limit, struct http_request **out,
                                 struct provider_error *err)
{
    (void)after;
    (void)limit;
    int r = need_id("events", job_id, err);
    if (r == 0)
        job_path_request(ep, "GET", job_id, "/events", out);
    return r;
}

static int together_build_list_files(const struct provider_endpoint *ep, const char *after,
                                     unsigned limit, struct http_request **out,
                                     struct provider_error *err)
{
    /* The spec's GET /files has no parameters: everything, one page. */
    (void)after;
    (void)limit;
    (void)err;
    *out = provider_request(ep, "GET", "/files");
    return 0;
}

static int together_build_delete_file(const struct provider_endpoint *ep, const char *file_id,
                                      struct http_request **out, struct provider_error *err)
{
    if (!file_id || !*file_id)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "delete file: no file id given");
    char *id = http_escape(file_id);
    char *path = xasprintf("/files/%s", id);
    *out = provider_request(ep, "DELETE", path);
    free(id);
    free(path);
    return 0;
}

static int together_build_chat(const struct provider_endpoint *ep,
                               const struct provider_chat_args *a, struct http_request **out,
                               struct provider_error *err)
{
    /* Same checks and body as OpenAI, then Together's integer logprobs. */
    int r = provider_build_chat_openai(ep, a, "max_tokens", out, err);
    if (r < 0)
        return r;
    json_t *body = json_loadb((*out)->body, (*out)->body_len, 0, NULL);
    json_object_del(body, "top_logprobs");
    json_object_del(body, "n");
    if (a->neutral) {
        /* Together's sampler settings (provider-apis.md §3.4), each at the
         * value that leaves the distribution alone; -1 is its "no top-k". */
        json_object_set_new(body, "top_k", json_integer(-1));
        json_object_set_new(body, "min_p", json_real(0.0));
        json_object_set_new(body, "repetition_penalty", json_real(1.0));
    }
    if (a->logprobs)
        json_object_set_new(body, "logprobs",
                            json_integer(a->top_logprobs ? (json_int_t)a->top_logprobs : 1));
    struct http_request *req = provider_request(ep, "POST", "/chat/completions");
    provider_request_json(req, body);
    http_request_free(*out);
    *out = req;
    return 0;
}

static int together_build_score(const struct provider_endpoint *ep,
                                const struct provider_score_args *a, struct http_request **out,
                                struct provider_error *err)
{
    /* max_tokens 1: the spec gives no minimum; the generated token is
     * dropped by the alignment. */
    int r = provider_build_score_openai(ep, a, 1, out, err);
    if (r < 0)
        return r;
    json_t *body = json_loadb((*out)->body, (*out)->body_len, 0, NULL);
    json_object_set_new(body, "logprobs",
                        json_integer(a->top_logprobs ? (json_int_t)a->top_logprobs : 1));
    struct http_request *req = provider_request(ep, "POST", "/completions");
    provider_request_json(req, body);
    http_request_free(*out);
    *out = req;
    return 0;
}

/* ---- responses ---- */

/* An ISO-8601 string (Together) or an integer; 0 when absent. */
static int64_t opt_time(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    int64_t t = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_string(v) || provider_parse_iso8601(json_string_value(v), &t) < 0)
        *bad = 1;
    return t;
}

/* A FileResponse into *f (status derived from Processed); returns 0 or -1
 * (malformed: f cleared). */
static int file_from_json(json_t *o, struct provider_file *f)
{
    int bad = 0;
    memset(f, 0, sizeof *f);
    if (!json_is_object(o))
        return -1;
    f->id = provider_opt_str(o, "id", &bad);
    f->bytes = provider_opt_int(o, "bytes", -1, &bad);
    f->filename = provider_opt_str(o, "filename", &bad);
    f->created_at = provider_opt_int(o, "created_at", 0, &bad);
    json_t *processed = json_object_get(o, "Processed");
    if (processed && !json_is_boolean(processed))
        bad = 1;
    f->status = xstrdup(json_is_true(processed) ? "processed" : "uploaded");
    if (bad || !f->id) {
        provider_file_clear(f);
        return -1;
    }
    return 0;
}

static int together_parse_file(const struct http_response *res, struct provider_file *out,
                               struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    r = file_from_json(root, out);
    json_decref(root);
    if (r < 0)
        return provider_malformed(res, err, "a FileResponse with an id");
    return 0;
}

static int together_parse_file_list(const struct http_response *res, struct provider_file_page *out,
                                    struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data))
        goto malformed;
    out->files = xcalloc(json_array_size(data) + 1, sizeof *out->files);
    for (size_t i = 0; i < json_array_size(data); i++) {
        if (file_from_json(json_array_get(data, i), &out->files[i]) < 0)
            goto malformed;
        out->n_files++;
    }
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_file_page_clear(out);
    return provider_malformed(res, err, "a FileList");
}

static int together_parse_file_deleted(const struct http_response *res,
                                       struct provider_file_deletion *out,
                                       struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *deleted = json_object_get(root, "deleted");
    out->id = provider_opt_str(root, "id", &bad);
    if (bad || (deleted && !json_is_boolean(deleted))) {
        json_decref(root);
        provider_file_deletion_clear(out);
        return provider_malformed(res, err, "a FileDeleteResponse");
    }
    out->deleted = deleted ? json_is_true(deleted) : 1;
    json_decref(root);
    return 0;
}

/* The reason of a failed job: its last error event, if it came with any. */
static void failure_from_events(json_t *events, struct provider_job *j)
{
    for (size_t i = json_array_size(events); i-- > 0;) {
        json_t *e = json_array_get(events, i);
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *level = json_string_value(json_object_get(e, "level"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (msg && ((type && (strcmp(type, "job_error") == 0 || strcmp(type, "JOB_ERROR") == 0 ||
                              strcmp(type, "JOB_USER_ERROR") == 0)) ||
                    (level && strcmp(level, "error") == 0))) {
            j->error_message = xstrdup(msg);
            j->error_code = type ? xstrdup(type) : NULL;
            return;
        }
    }
}

static int job_from_json(json_t *o, struct provider_job *j)
{
    int bad = 0;
    memset(j, 0, sizeof *j);
    if (!json_is_object(o))
        return -1;
    j->id = provider_opt_str(o, "id", &bad);
    j->raw_status = provider_opt_str(o, "status", &bad);
    j->model = provider_opt_str(o, "model", &bad);
    j->fine_tuned_model = provider_opt_str(o, "model_output_name", &bad);
    j->training_file = provider_opt_str(o, "training_file", &bad);
    j->suffix = provider_opt_str(o, "suffix", &bad);
    j->trained_tokens = provider_opt_int(o, "token_count", -1, &bad);
    j->created_at = opt_time(o, "created_at", &bad);
    int64_t updated = opt_time(o, "updated_at", &bad);
    json_t *events = json_object_get(o, "events");
    if (events && !json_is_array(events) && !json_is_null(events))
        bad = 1;
    if (bad || !j->id || !j->raw_status)
        return -1;
    j->state = together_map_status(j->raw_status);
    if (provider_job_state_terminal(j->state))
        j->finished_at = updated;
    if (j->state == PROVIDER_JOB_FAILED) {
        failure_from_events(events, j);
        if (!j->error_message)
            j->error_message = xasprintf("the job ended with status %s", j->raw_status);
    }
    return 0;
}

static int together_parse_job(const struct http_response *res, struct provider_job *out,
                              struct provider_error *err)
{
    return provider_parse_job_with(res, out, err, job_from_json, "a FinetuneResponse with id and status");
}

static int together_parse_list(const struct http_response *res, struct provider_job_page *out,
                               struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data))
        goto malformed;
    if (provider_page_jobs(data, out, job_from_json) < 0)
        goto malformed;
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_job_page_clear(out);
    return provider_malformed(res, err, "a FinetuneTruncatedList");
}

static int together_parse_events(const struct http_response *res, struct provider_event_page *out,
                                 struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data))
        goto malformed;
    out->events = xcalloc(json_array_size(data) + 1, sizeof *out->events);
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *e = json_array_get(data, i);
        struct provider_event *ev = &out->events[out->n_events++];
        if (!json_is_object(e))
            goto malformed;
        ev->id = provider_opt_str(e, "hash", &bad);
        ev->created_at = opt_time(e, "created_at", &bad);
        ev->level = provider_opt_str(e, "level", &bad);
        ev->type = provider_opt_str(e, "type", &bad);
        ev->message = provider_opt_str(e, "message", &bad);
        if (bad || !ev->message)
            goto malformed;
    }
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_event_page_clear(out);
    return provider_malformed(res, err, "a FinetuneListEvents");
}

/* LogprobsPart {tokens, token_logprobs, top_logprobs} of generated tokens. */
static int legacy_tokens(json_t *lp, struct provider_chat_result *out)
{
    json_t *tokens = json_object_get(lp, "tokens");
    json_t *tlp = json_object_get(lp, "token_logprobs");
    json_t *top = json_object_get(lp, "top_logprobs");
    size_t n = json_array_size(tokens);
    if (!json_is_array(tokens) || !json_is_array(tlp) || json_array_size(tlp) != n)
        return -1;
    out->has_logprobs = 1;
    out->tokens = xcalloc(n + 1, sizeof *out->tokens);
    for (size_t i = 0; i < n; i++) {
        struct provider_token *t = &out->tokens[out->n_tokens++];
        json_t *tok = json_array_get(tokens, i), *v = json_array_get(tlp, i);
        if (!json_is_string(tok))
            return -1;
        t->token = xstrdup(json_string_value(tok));
        if (json_is_number(v)) {
            t->logprob = json_number_value(v);
            t->known = t->logprob > PROVIDER_LOGPROB_SENTINEL + 1.0;
        } else if (json_is_null(v)) {
            t->logprob = PROVIDER_LOGPROB_SENTINEL;
        } else {
            return -1;
        }
        /* The spec types top_logprobs as one map; servers send one map per
         * position.  Only the per-position form is used. */
        json_t *alts = json_is_array(top) ? json_array_get(top, i) : NULL;
        if (json_is_object(alts)) {
            const char *k;
            json_t *av;
            t->top = xcalloc(json_object_size(alts) + 1, sizeof *t->top);
            json_object_foreach(alts, k, av)
            {
                if (!json_is_number(av))
                    return -1;
                if (json_number_value(av) <= PROVIDER_LOGPROB_SENTINEL + 1.0)
                    continue;
                t->top[t->n_top].token = xstrdup(k);
                t->top[t->n_top].logprob = json_number_value(av);
                t->n_top++;
            }
        }
    }
    return 0;
}

static int together_parse_chat(const struct http_response *res, struct provider_chat_result *out,
                               struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    json_t *lp = json_object_get(choice, "logprobs");
    json_t *usage = json_object_get(root, "usage");
    if (!json_is_object(choice) || !json_is_object(msg) ||
        !(json_is_string(content) || json_is_null(content)))
        goto malformed;
    out->text = xstrdup(json_is_string(content) ? json_string_value(content) : "");
    out->finish_reason = provider_opt_str(choice, "finish_reason", &bad);
    out->id = provider_opt_str(root, "id", &bad);
    out->model = provider_opt_str(root, "model", &bad);
    out->prompt_tokens = provider_opt_int(usage, "prompt_tokens", -1, &bad);
    out->completion_tokens = provider_opt_int(usage, "completion_tokens", -1, &bad);
    out->total_tokens = provider_opt_int(usage, "total_tokens", -1, &bad);
    if (bad)
        goto malformed;
    if (json_is_object(lp)) {
        json_t *c = json_object_get(lp, "content");
        if (json_is_array(c)) { /* an OpenAI-compatible answer */
            out->has_logprobs = 1;
            out->tokens = xcalloc(json_array_size(c) + 1, sizeof *out->tokens);
            for (size_t i = 0; i < json_array_size(c); i++) {
                out->n_tokens++;
                if (provider_parse_token_logprob(json_array_get(c, i), &out->tokens[i]) < 0)
                    goto malformed;
            }
        } else if (legacy_tokens(lp, out) < 0) {
            goto malformed;
        }
    } else if (lp && !json_is_null(lp)) {
        goto malformed;
    }
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_chat_result_clear(out);
    return provider_malformed(res, err, "a chat completion");
}

static int together_parse_score(const struct http_response *res,
                                const struct provider_score_args *a,
                                struct provider_score_result *out, struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    /* Echoed prompt log-probabilities: prompt[0].logprobs (spec), else
     * choices[0].logprobs when a server puts them there. */
    json_t *part = json_array_get(json_object_get(root, "prompt"), 0);
    json_t *lp = json_object_get(part, "logprobs");
    if (!json_is_object(lp)) {
        part = json_array_get(json_object_get(root, "choices"), 0);
        lp = json_object_get(part, "logprobs");
    }
    if (!json_is_object(lp) || !json_array_size(json_object_get(lp, "tokens"))) {
        json_decref(root);
        return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                             "the server returned no prompt log-probabilities for this model");
    }
    r = provider_score_align(res, lp, json_string_value(json_object_get(part, "text")), a, out,
                             err);
    json_decref(root);
    return r;
}

/* The keys of together_params, in the same order, and seed. */
static const char *const together_param_keys[] = {
    "n_epochs",        "n_checkpoints",   "n_evals",       "batch_size",
    "learning_rate",   "warmup_ratio",    "max_grad_norm", "weight_decay",
    "max_seq_length",  "packing",         "train_on_inputs", "validation_file",
    "from_checkpoint", "training_type",   "lora_r",        "lora_alpha",
    "lora_dropout",    "lora_trainable_modules", "seed",   NULL,
};

const struct provider_ops provider_together = {
    .kind = "together",
    .params = together_param_keys,
    .caps = PROVIDER_CAP_TRAIN | PROVIDER_CAP_SCORE,
    .build_upload = together_build_upload,
    .build_create = together_build_create,
    .build_retrieve = together_build_retrieve,
    .build_list = together_build_list,
    .build_cancel = together_build_cancel,
    .build_events = together_build_events,
    .build_chat = together_build_chat,
    .build_score = together_build_score,
    .build_list_files = together_build_list_files,
    .build_delete_file = together_build_delete_file,
    .parse_file = together_parse_file,
    .parse_job = together_parse_job,
    .parse_list = together_parse_list,
    .parse_events = together_parse_events,
    .parse_chat = together_parse_chat,
    .parse_score = together_parse_score,
    .parse_file_list = together_parse_file_list,
    .parse_file_deleted = together_parse_file_deleted,
    .map_status = together_map_status,
};

/*
 * provider_openai.c — the OpenAI fine-tuning API as a struct provider_ops
 * (and every server that copies its shape, e.g. vtune-sim).
 *
 * Paths and fields follow reference/openai-openapi.yaml:
 *   POST /files (multipart: purpose=fine-tune, file)            → OpenAIFile
 *   POST /fine_tuning/jobs {model, training_file, suffix, seed,
 *        metadata {vtune_submission: ID}, method.supervised.hyperparameters}
 *   GET  /fine_tuning/jobs/{id}, POST /fine_tuning/jobs/{id}/cancel
 *                                                               → FineTuningJob
 *   GET  /fine_tuning/jobs?limit=&after=&metadata[k]=v          → list, has_more
 *   GET  /fine_tuning/jobs/{id}/events?after=&limit=
 *   POST /chat/completions (logprobs, top_logprobs ≤ 20, max_completion_tokens)
 *   POST /completions {echo, logprobs ≤ 5, max_tokens 0}        (scoring)
 *   GET  /files?purpose=fine-tune&limit=&after=                 → ListFilesResponse
 *   DELETE /files/{id}                                          → DeleteFileResponse
 * Status (FineTuningJob.status): validating_files, queued → submitted;
 * running → running; succeeded, failed, cancelled; anything else (the spec's
 * own pause example says "paused") → unrecognized, non-terminal.
 * Hyperparameters go in `method` (the top-level field is deprecated).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/provider.h"

static enum provider_job_state openai_map_status(const char *s)
{
    if (!s)
        return PROVIDER_JOB_UNRECOGNIZED;
    if (strcmp(s, "validating_files") == 0 || strcmp(s, "queued") == 0)
        return PROVIDER_JOB_SUBMITTED;
    if (strcmp(s, "running") == 0)
        return PROVIDER_JOB_RUNNING;
    if (strcmp(s, "succeeded") == 0)
        return PROVIDER_JOB_SUCCEEDED;
    if (strcmp(s, "failed") == 0)
        return PROVIDER_JOB_FAILED;
    if (strcmp(s, "cancelled") == 0)
        return PROVIDER_JOB_CANCELLED;
    return PROVIDER_JOB_UNRECOGNIZED;
}

/* ---- requests ---- */

static int need_id(const char *what, const char *id, struct provider_error *err)
{
    if (!id || !*id)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "%s: no job id given", what);
    return 0;
}

static int openai_build_upload(const struct provider_endpoint *ep,
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
    struct http_request *r = provider_request(ep, "POST", "/files");
    http_request_add_field(r, "purpose", "fine-tune");
    http_request_add_file(r, "file", a->path, name, "application/octet-stream");
    r->timeout_ms = ep->upload_timeout_ms;
    /* A stalled upload (under 1 KiB/s for a minute) is aborted and retried. */
    r->low_speed_limit = 1024;
    r->low_speed_time_s = 60;
    *out = r;
    return 0;
}

/* "auto" or a number (integer when want_int), for a hyperparameter. */
static json_t *hyper_value(const char *key, const char *v, int want_int, struct provider_error *err)
{
    char *end;
    if (strcmp(v, "auto") == 0)
        return json_string("auto");
    if (want_int) {
        long long n = strtoll(v, &end, 10);
        if (*v && !*end && n >= 1)
            return json_integer(n);
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "--param %s=%s: expected \"auto\" or a positive integer", key, v);
        return NULL;
    }
    double d = strtod(v, &end);
    if (*v && !*end && d > 0)
        return json_real(d);
    provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                  "--param %s=%s: expected \"auto\" or a positive number", key, v);
    return NULL;
}

static int suffix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int openai_build_create(const struct provider_endpoint *ep,
                               const struct provider_create_args *a, struct http_request **out,
                               struct provider_error *err)
{
    char sfx[64];
    json_t *body = NULL, *hyper = json_object(), *md = json_object();
    int r = -EINVAL;

    if (!a->model || !*a->model || !a->training_file || !*a->training_file) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: a model and a training file are needed");
        goto out;
    }
    if (!a->submission_id || strlen(a->submission_id) > 512 ||
        provider_suffix(a->submission_id, sfx, sizeof sfx) < 0) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: the submission id must be 1 to 37 characters (it is the job's tag)");
        goto out;
    }
    const char *suffix = a->suffix ? a->suffix : sfx;
    if (!suffix_ok(suffix)) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: suffix '%s' must be 1 to 64 characters from A-Z a-z 0-9 - _ .",
                      suffix);
        goto out;
    }
    body = json_pack("{s:s, s:s, s:s}", "model", a->model, "training_file", a->training_file,
                     "suffix", suffix);
    json_object_set_new(md, PROVIDER_TAG_KEY, json_string(a->submission_id));
    if (a->has_seed)
        json_object_set_new(body, "seed", json_integer(a->seed));
    for (size_t i = 0; i < a->n_params; i++) {
        const char *k = a->params[i].key, *v = a->params[i].value;
        json_t *val = NULL;
        if (!k || !v) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "create: empty --param");
            goto out;
        }
        if (strcmp(k, "n_epochs") == 0 || strcmp(k, "batch_size") == 0) {
            if (!(val = hyper_value(k, v, 1, err)))
                goto out;
            json_object_set_new(hyper, k, val);
        } else if (strcmp(k, "learning_rate_multiplier") == 0) {
            if (!(val = hyper_value(k, v, 0, err)))
                goto out;
            json_object_set_new(hyper, k, val);
        } else if (strcmp(k, "validation_file") == 0) {
            json_object_set_new(body, "validation_file", json_string(v));
        } else if (strncmp(k, "metadata.", 9) == 0 && k[9]) {
            const char *mk = k + 9;
            if (strcmp(mk, PROVIDER_TAG_KEY) == 0 || strlen(mk) > 64 || strlen(v) > 512) {
                provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                              "--param %s: metadata keys are at most 64 characters, values at "
                              "most 512, and %s is reserved",
                              k, PROVIDER_TAG_KEY);
                goto out;
            }
            json_object_set_new(md, mk, json_string(v));
        } else {
            provider_fail(
                err, PROVIDER_E_INVALID, -EINVAL,
                "unknown --param '%s' for an openai provider; known: n_epochs, "
                "batch_size, learning_rate_multiplier, validation_file, metadata.KEY, seed",
                k);
            goto out;
        }
    }
    if (json_object_size(md) > 16) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: at most 16 metadata pairs (one is the submission tag)");
        goto out;
    }
    json_object_set(body, "metadata", md);
    if (json_object_size(hyper))
        json_object_set_new(body, "method",
                            json_pack("{s:s, s:{s:O}}", "type", "supervised", "supervised",
                                      "hyperparameters", hyper));
    *out = provider_request(ep, "POST", "/fine_tuning/jobs");
    provider_request_json(*out, body);
    body = NULL;
    r = 0;
out:
    json_decref(body);
    json_decref(hyper);
    json_decref(md);
    return r;
}

static int job_path_request(const struct provider_endpoint *ep, const char *method,
                            const char *job_id, const char *tail, struct http_request **out)
{
    char *id = http_escape(job_id);
    char *path = xasprintf("/fine_tuning/jobs/%s%s", id, tail);
    *out = provider_request(ep, method, path);
    free(id);
    free(path);
    return 0;
}

static int openai_build_retrieve(const struct provider_endpoint *ep, const char *job_id,
                                 struct http_request **out, struct provider_error *err)
{
    int r = need_id("retrieve", job_id, err);
    return r < 0 ? r : job_path_request(ep, "GET", job_id, "", out);
}

static int openai_build_cancel(const struct provider_endpoint *ep, const char *job_id,
                               struct http_request **out, struct provider_error *err)
{
    int r = need_id("cancel", job_id, err);
    return r < 0 ? r : job_path_request(ep, "POST", job_id, "/cancel", out);
}

static int openai_build_list(const struct provider_endpoint *ep, const struct provider_list_args *a,
                             struct http_request **out, struct provider_error *err)
{
    struct http_request *r = provider_request(ep, "GET", "/fine_tuning/jobs");
    char num[24];
    (void)err;
    if (a && a->limit) {
        snprintf(num, sizeof num, "%u", a->limit);
        provider_url_add_query(&r->url, "limit", num);
    }
    if (a && a->after && *a->after)
        provider_url_add_query(&r->url, "after", a->after);
    if (a && a->tag && *a->tag)
        provider_url_add_query(&r->url, "metadata[" PROVIDER_TAG_KEY "]", a->tag);
    *out = r;
    return 0;
}

static int openai_build_events(const struct provider_endpoint *ep, const char *job_id,
                               const char *after, unsigned limit, struct http_request **out,
                               struct provider_error *err)
{
    char num[24];
    int r = need_id("events", job_id, err);
    if (r < 0)
        return r;
    job_path_request(ep, "GET", job_id, "/events", out);
    if (limit) {
        snprintf(num, sizeof num, "%u", limit);
        provider_url_add_query(&(*out)->url, "limit", num);
    }
    if (after && *after)
        provider_url_add_query(&(*out)->url, "after", after);
    return 0;
}

static int openai_build_list_files(const struct provider_endpoint *ep, const char *after,
                                   unsigned limit, struct http_request **out,
                                   struct provider_error *err)
{
    struct http_request *r = provider_request(ep, "GET", "/files");
    char num[24];
    (void)err;
    /* Only ours: every upload of this adapter has purpose fine-tune. */
    provider_url_add_query(&r->url, "purpose", "fine-tune");
    if (limit) {
        snprintf(num, sizeof num, "%u", limit);
        provider_url_add_query(&r->url, "limit", num);
    }
    if (after && *after)
        provider_url_add_query(&r->url, "after", after);
    *out = r;
    return 0;
}

static int openai_build_delete_file(const struct provider_endpoint *ep, const char *file_id,
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

static int openai_build_chat(const struct provider_endpoint *ep, const struct provider_chat_args *a,
                             struct http_request **out, struct provider_error *err)
{
    /* max_tokens is deprecated and refused by reasoning models. */
    return provider_build_chat_openai(ep, a, "max_completion_tokens", out, err);
}

static int openai_build_score(const struct provider_endpoint *ep,
                              const struct provider_score_args *a, struct http_request **out,
                              struct provider_error *err)
{
    if (a->top_logprobs > 5)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "score: the completions API returns at most 5 alternatives");
    /* max_tokens 0: echo the prompt, generate nothing (spec minimum 0). */
    return provider_build_score_openai(ep, a, 0, out, err);
}

static int openai_build_score_batch(const struct provider_endpoint *ep,
                                    const struct provider_score_args *a, size_t n,
                                    struct http_request **out, struct provider_error *err)
{
    if (n && a[0].top_logprobs > 5)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "score: the completions API returns at most 5 alternatives");
    /* the spec's prompt: str | [str] (provider-apis.md §2.4) */
    return provider_build_score_batch_openai(ep, a, n, 0, out, err);
}

/* ---- responses ---- */

/* An OpenAIFile object into *f; returns 0 or -1 (malformed: f cleared). */
static int file_from_json(json_t *o, struct provider_file *f)
{
    int bad = 0;
    memset(f, 0, sizeof *f);
    if (!json_is_object(o))
        return -1;
    f->id = provider_opt_str(o, "id", &bad);
    f->bytes = provider_opt_int(o, "bytes", -1, &bad);
    f->filename = provider_opt_str(o, "filename", &bad);
    f->status = provider_opt_str(o, "status", &bad);
    f->created_at = provider_opt_int(o, "created_at", 0, &bad);
    if (bad || !f->id) {
        provider_file_clear(f);
        return -1;
    }
    return 0;
}

static int openai_parse_file(const struct http_response *res, struct provider_file *out,
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
        return provider_malformed(res, err, "a file object with an id");
    return 0;
}

/* ListFilesResponse {object, data, first_id, last_id, has_more}: the next
 * page starts after last_id (or, if a server leaves it out, the last id). */
static int openai_parse_file_list(const struct http_response *res, struct provider_file_page *out,
                                  struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    json_t *more = json_object_get(root, "has_more");
    char *last = NULL;
    if (!json_is_array(data) || (more && !json_is_boolean(more)))
        goto malformed;
    last = provider_opt_str(root, "last_id", &bad);
    if (bad)
        goto malformed;
    out->files = xcalloc(json_array_size(data) + 1, sizeof *out->files);
    for (size_t i = 0; i < json_array_size(data); i++) {
        if (file_from_json(json_array_get(data, i), &out->files[i]) < 0)
            goto malformed;
        out->n_files++;
    }
    out->has_more = json_is_true(more);
    if (out->has_more) {
        if (!out->n_files)
            goto malformed; /* no cursor to continue from */
        out->next_cursor = xstrdup(last && *last ? last : out->files[out->n_files - 1].id);
    }
    free(last);
    json_decref(root);
    return 0;
malformed:
    free(last);
    json_decref(root);
    provider_file_page_clear(out);
    return provider_malformed(res, err, "a list of file objects");
}

/* DeleteFileResponse {id, object, deleted}. */
static int openai_parse_file_deleted(const struct http_response *res,
                                     struct provider_file_deletion *out, struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *id = json_object_get(root, "id");
    json_t *deleted = json_object_get(root, "deleted");
    if (!json_is_string(id) || !json_is_boolean(deleted)) {
        json_decref(root);
        return provider_malformed(res, err, "a file deletion {id, deleted}");
    }
    out->id = xstrdup(json_string_value(id));
    out->deleted = json_is_true(deleted);
    json_decref(root);
    return 0;
}

/* A FineTuningJob object into *j; returns 0 or -1 (malformed). */
static int job_from_json(json_t *o, struct provider_job *j)
{
    int bad = 0;
    memset(j, 0, sizeof *j);
    if (!json_is_object(o))
        return -1;
    j->id = provider_opt_str(o, "id", &bad);
    j->raw_status = provider_opt_str(o, "status", &bad);
    j->model = provider_opt_str(o, "model", &bad);
    j->fine_tuned_model = provider_opt_str(o, "fine_tuned_model", &bad);
    j->training_file = provider_opt_str(o, "training_file", &bad);
    j->suffix =
        provider_opt_str(o, "suffix", &bad); /* not in the spec; kept if a server sends it */
    j->trained_tokens = provider_opt_int(o, "trained_tokens", -1, &bad);
    j->created_at = provider_opt_int(o, "created_at", 0, &bad);
    j->finished_at = provider_opt_int(o, "finished_at", 0, &bad);
    json_t *md = json_object_get(o, "metadata");
    if (json_is_object(md)) {
        json_t *tag = json_object_get(md, PROVIDER_TAG_KEY);
        if (json_is_string(tag))
            j->submission_tag = xstrdup(json_string_value(tag));
    } else if (md && !json_is_null(md)) {
        bad = 1;
    }
    json_t *e = json_object_get(o, "error");
    if (json_is_object(e)) {
        j->error_code = provider_opt_str(e, "code", &bad);
        j->error_message = provider_opt_str(e, "message", &bad);
        j->error_param = provider_opt_str(e, "param", &bad);
    } else if (e && !json_is_null(e)) {
        bad = 1;
    }
    if (bad || !j->id || !j->raw_status)
        return -1;
    j->state = openai_map_status(j->raw_status);
    if (j->state == PROVIDER_JOB_FAILED && !j->error_message)
        j->error_message = xstrdup("the job failed without an error object");
    return 0;
}

static int openai_parse_job(const struct http_response *res, struct provider_job *out,
                            struct provider_error *err)
{
    return provider_parse_job_with(res, out, err, job_from_json, "a fine_tuning.job with id and status");
}

static int openai_parse_list(const struct http_response *res, struct provider_job_page *out,
                             struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    json_t *more = json_object_get(root, "has_more");
    if (!json_is_array(data) || (more && !json_is_boolean(more)))
        goto malformed;
    if (provider_page_jobs(data, out, job_from_json) < 0)
        goto malformed;
    out->has_more = json_is_true(more);
    if (out->has_more && out->n_jobs)
        out->next_cursor = xstrdup(out->jobs[out->n_jobs - 1].id);
    if (out->has_more && !out->n_jobs)
        goto malformed; /* no cursor to continue from */
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_job_page_clear(out);
    return provider_malformed(res, err, "a list of fine_tuning.job objects");
}

static int openai_parse_events(const struct http_response *res, struct provider_event_page *out,
                               struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    json_t *more = json_object_get(root, "has_more");
    if (!json_is_array(data) || (more && !json_is_boolean(more)))
        goto malformed;
    out->events = xcalloc(json_array_size(data) + 1, sizeof *out->events);
    for (size_t i = 0; i < json_array_size(data); i++) {
        json_t *e = json_array_get(data, i);
        struct provider_event *ev = &out->events[out->n_events++];
        if (!json_is_object(e))
            goto malformed;
        ev->id = provider_opt_str(e, "id", &bad);
        ev->created_at = provider_opt_int(e, "created_at", 0, &bad);
        ev->level = provider_opt_str(e, "level", &bad);
        ev->type = provider_opt_str(e, "type", &bad);
        ev->message = provider_opt_str(e, "message", &bad);
        if (bad || !ev->message)
            goto malformed;
    }
    out->has_more = json_is_true(more);
    if (out->has_more && out->n_events && out->events[out->n_events - 1].id)
        out->next_cursor = xstrdup(out->events[out->n_events - 1].id);
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_event_page_clear(out);
    return provider_malformed(res, err, "a list of fine_tuning.job.event objects");
}

static const char *const openai_params[] = {
    "n_epochs", "batch_size", "learning_rate_multiplier", "validation_file", "metadata.", "seed",
    NULL,
};

const struct provider_ops provider_openai = {
    .kind = "openai",
    .params = openai_params,
    .caps = PROVIDER_CAP_TRAIN | PROVIDER_CAP_TAG_FILTER | PROVIDER_CAP_METADATA |
            PROVIDER_CAP_PAGINATION | PROVIDER_CAP_SCORE,
    .build_upload = openai_build_upload,
    .build_create = openai_build_create,
    .build_retrieve = openai_build_retrieve,
    .build_list = openai_build_list,
    .build_cancel = openai_build_cancel,
    .build_events = openai_build_events,
    .build_chat = openai_build_chat,
    .build_score = openai_build_score,
    .build_list_files = openai_build_list_files,
    .build_delete_file = openai_build_delete_file,
    .parse_file = openai_parse_file,
    .parse_job = openai_parse_job,
    .parse_list = openai_parse_list,
    .parse_events = openai_parse_events,
    .parse_chat = provider_parse_chat_openai,
    .parse_score = provider_parse_score_openai,
    .build_score_batch = openai_build_score_batch,
    .parse_score_batch = provider_parse_score_batch_openai,
    .parse_file_list = openai_parse_file_list,
    .parse_file_deleted = openai_parse_file_deleted,
    .map_status = openai_map_status,
};

/* Azure OpenAI speaks this API under another base URL
 * (https://RESOURCE.openai.azure.com/openai): the differences are endpoint
 * settings that daemon/providers.c fills for kind azure (the api-key
 * header, ?api-version= on every request, inference sent to
 * /deployments/{deployment}/...), not other functions. */
const struct provider_ops provider_azure = {
    .kind = "azure",
    .params = openai_params,
    .caps = PROVIDER_CAP_TRAIN | PROVIDER_CAP_TAG_FILTER | PROVIDER_CAP_METADATA |
            PROVIDER_CAP_PAGINATION | PROVIDER_CAP_SCORE,
    .build_upload = openai_build_upload,
    .build_create = openai_build_create,
    .build_retrieve = openai_build_retrieve,
    .build_list = openai_build_list,
    .build_cancel = openai_build_cancel,
    .build_events = openai_build_events,
    .build_chat = openai_build_chat,
    .build_score = openai_build_score,
    .build_list_files = openai_build_list_files,
    .build_delete_file = openai_build_delete_file,
    .parse_file = openai_parse_file,
    .parse_job = openai_parse_job,
    .parse_list = openai_parse_list,
    .parse_events = openai_parse_events,
    .parse_chat = provider_parse_chat_openai,
    .parse_score = provider_parse_score_openai,
    .build_score_batch = openai_build_score_batch,
    .parse_score_batch = provider_parse_score_batch_openai,
    .parse_file_list = openai_parse_file_list,
    .parse_file_deleted = openai_parse_file_deleted,
    .map_status = openai_map_status,
};

/*
 * provider_mistral.c — Mistral's fine-tuning API as a struct provider_ops:
 * a file of mapping.  Where Mistral shares OpenAI's shapes (the multipart
 * upload, the file object, the deletion answer, chat completions) this file
 * calls provider_openai's functions; it only maps what differs.  Facts from
 * mistralai/client-python (reference/provider-apis.md §4.1), base URL
 * https://api.mistral.ai/v1:
 *
 *   POST /files (multipart: file, purpose=fine-tune)          → file (openai shape)
 *   POST /fine_tuning/jobs {model, training_files: [{file_id, weight}],
 *        suffix, auto_start: true, hyperparameters {...}}     → job
 *   GET  /fine_tuning/jobs/{id}                               → job with events
 *   GET  /fine_tuning/jobs?page=0&page_size=&suffix=          → {object, total, data}
 *   POST /fine_tuning/jobs/{id}/cancel                        → job
 *   GET  /files?purpose=fine-tune&page_size=                  → {object, total, data}
 *   DELETE /files/{id}                                        → {id, object, deleted}
 *   POST /chat/completions {max_tokens, random_seed}          (no logprobs)
 *
 * What follows from the API:
 *  - Statuses are uppercase: QUEUED, VALIDATING, VALIDATED → submitted
 *    (auto_start is always sent true, so VALIDATED moves on by itself);
 *    STARTED, RUNNING, CANCELLATION_REQUESTED → running (not terminal: the
 *    job may still finish); SUCCESS; FAILED, FAILED_VALIDATION → failed;
 *    CANCELLED.  Anything else → unrecognized.
 *  - No job metadata we can set: the tag travels in `suffix`, and the
 *    listing filters by it on the server (reconciliation reads one page).
 *  - Listings are page-numbered (page, page_size, total), not cursors; a
 *    pure parser does not know which page it read, so only page 0 is asked
 *    for, with page_size 100.  A listing with more than that reports
 *    has_more with no cursor; the daemon then says "unknown" rather than
 *    create again (daemon/jobs.c).
 *  - A failed job carries no error object: the reason is in its events.
 *  - Chat has no log-probabilities and there is no completions echo: no
 *    teacher-forced scoring (build_score says so), so p_luck needs another
 *    provider's M2 (README "Providers").
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/provider.h"

#define MISTRAL_PAGE_SIZE 100

static enum provider_job_state mistral_map_status(const char *s)
{
    static const struct {
        const char *name;
        enum provider_job_state state;
    } map[] = {
        {"QUEUED", PROVIDER_JOB_SUBMITTED},
        {"VALIDATING", PROVIDER_JOB_SUBMITTED},
        {"VALIDATED", PROVIDER_JOB_SUBMITTED},
        {"STARTED", PROVIDER_JOB_RUNNING},
        {"RUNNING", PROVIDER_JOB_RUNNING},
        {"CANCELLATION_REQUESTED", PROVIDER_JOB_RUNNING},
        {"SUCCESS", PROVIDER_JOB_SUCCEEDED},
        {"FAILED", PROVIDER_JOB_FAILED},
        {"FAILED_VALIDATION", PROVIDER_JOB_FAILED},
        {"CANCELLED", PROVIDER_JOB_CANCELLED},
    };
    for (size_t i = 0; s && i < VT_ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].state;
    return PROVIDER_JOB_UNRECOGNIZED;
}

/* ---- requests ---- */

static int mistral_build_upload(const struct provider_endpoint *ep,
                                const struct provider_upload_args *a, struct http_request **out,
                                struct provider_error *err)
{
    return provider_openai.build_upload(ep, a, out, err); /* same multipart form */
}

/* A positive number (integer when want_int) for a hyperparameter. */
static json_t *number(const char *key, const char *v, int want_int, struct provider_error *err)
{
    char *end;
    if (want_int) {
        long long n = strtoll(v, &end, 10);
        if (*v && !*end && n >= 1)
            return json_integer(n);
    } else {
        double d = strtod(v, &end);
        if (*v && !*end && d >= 0)
            return json_real(d);
    }
    provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "--param %s=%s: expected a %s number", key,
                  v, want_int ? "positive whole" : "non-negative");
    return NULL;
}

static int mistral_build_create(const struct provider_endpoint *ep,
                                const struct provider_create_args *a, struct http_request **out,
                                struct provider_error *err)
{
    static const struct {
        const char *key;
        int want_int;
    } hp[] = {{"training_steps", 1}, {"epochs", 0},          {"learning_rate", 0},
              {"weight_decay", 0},   {"warmup_fraction", 0}, {"seq_len", 1}};
    char sfx[64];
    json_t *hyper = json_object(), *body = NULL;
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
    body = json_pack("{s:s, s:[{s:s, s:f}], s:s, s:b}", "model", a->model, "training_files",
                     "file_id", a->training_file, "weight", 1.0, "suffix",
                     a->suffix ? a->suffix : sfx, "auto_start", 1);
    for (size_t i = 0; i < a->n_params; i++) {
        const char *k = a->params[i].key, *v = a->params[i].value;
        size_t j;
        if (!k || !v) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "create: empty --param");
            goto out;
        }
        for (j = 0; j < VT_ARRAY_LEN(hp) && strcmp(hp[j].key, k) != 0; j++)
            ;
        if (j < VT_ARRAY_LEN(hp)) {
            json_t *val = number(k, v, hp[j].want_int, err);
            if (!val)
                goto out;
            json_object_set_new(hyper, k, val);
        } else if (strcmp(k, "validation_file") == 0) {
            json_object_set_new(body, "validation_files", json_pack("[s]", v));
        } else {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                          "unknown --param '%s' for a mistral provider; known: training_steps, "
                          "epochs, learning_rate, weight_decay, warmup_fraction, seq_len, "
                          "validation_file",
                          k);
            goto out;
        }
    }
    if (a->has_seed) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "--param seed: Mistral's fine-tuning jobs take no seed");
        goto out;
    }
    json_object_set(body, "hyperparameters", hyper);
    *out = provider_request(ep, "POST", "/fine_tuning/jobs");
    provider_request_json(*out, body);
    body = NULL;
    r = 0;
out:
    json_decref(body);
    json_decref(hyper);
    return r;
}

static int mistral_build_retrieve(const struct provider_endpoint *ep, const char *job_id,
                                  struct http_request **out, struct provider_error *err)
{
    return provider_openai.build_retrieve(ep, job_id, out, err); /* same path */
}

static int mistral_build_cancel(const struct provider_endpoint *ep, const char *job_id,
                                struct http_request **out, struct provider_error *err)
{
    return provider_openai.build_cancel(ep, job_id, out, err); /* same path */
}

static int mistral_build_list(const struct provider_endpoint *ep,
                              const struct provider_list_args *a, struct http_request **out,
                              struct provider_error *err)
{
    char num[24], sfx[64];
    struct http_request *r = provider_request(ep, "GET", "/fine_tuning/jobs");
    snprintf(num, sizeof num, "%u", MISTRAL_PAGE_SIZE);
    provider_url_add_query(&r->url, "page", "0");
    provider_url_add_query(&r->url, "page_size", num);
    if (a && a->tag && *a->tag) {
        if (provider_suffix(a->tag, sfx, sizeof sfx) < 0) {
            http_request_free(r);
            return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                                 "list: submission id '%s' makes no suffix", a->tag);
        }
        provider_url_add_query(&r->url, "suffix", sfx);
    }
    *out = r;
    return 0;
}

/* The job's events come with the job itself (GET /fine_tuning/jobs/{id}). */
static int mistral_build_events(const struct provider_endpoint *ep, const char *job_id,
                                const char *after, unsigned limit, struct http_request **out,
                                struct provider_error *err)
{
    (void)after;
    (void)limit;
    return provider_openai.build_retrieve(ep, job_id, out, err);
}

static int mistral_build_list_files(const struct provider_endpoint *ep, const char *after,
                                    unsigned limit, struct http_request **out,
                                    struct provider_error *err)
{
    char num[24];
    (void)after; /* page 0 only: see the note at the top */
    (void)limit;
    (void)err;
    struct http_request *r = provider_request(ep, "GET", "/files");
    provider_url_add_query(&r->url, "purpose", "fine-tune");
    provider_url_add_query(&r->url, "page", "0");
    snprintf(num, sizeof num, "%u", MISTRAL_PAGE_SIZE);
    provider_url_add_query(&r->url, "page_size", num);
    *out = r;
    return 0;
}

static int mistral_build_delete_file(const struct provider_endpoint *ep, const char *file_id,
                                     struct http_request **out, struct provider_error *err)
{
    return provider_openai.build_delete_file(ep, file_id, out, err); /* same path */
}

static int mistral_build_chat(const struct provider_endpoint *ep,
                              const struct provider_chat_args *a, struct http_request **out,
                              struct provider_error *err)
{
    if (!a->model || !*a->model || !a->n_messages)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "chat: a model and messages are needed");
    if (a->logprobs)
        return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                             "Mistral's chat completions return no log-probabilities");
    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(a->model));
    json_object_set_new(body, "messages", provider_chat_messages_json(a));
    json_object_set_new(body, "temperature", json_real(a->temperature));
    json_object_set_new(body, "top_p", json_real(a->top_p));
    if (a->neutral) {
        json_object_set_new(body, "frequency_penalty", json_real(0.0));
        json_object_set_new(body, "presence_penalty", json_real(0.0));
    }
    if (a->has_seed)
        json_object_set_new(body, "random_seed", json_integer(a->seed));
    if (a->max_tokens)
        json_object_set_new(body, "max_tokens", json_integer(a->max_tokens));
    *out = provider_request(ep, "POST", "/chat/completions");
    provider_request_json(*out, body);
    return 0;
}

static int mistral_build_score(const struct provider_endpoint *ep,
                               const struct provider_score_args *a, struct http_request **out,
                               struct provider_error *err)
{
    (void)ep;
    (void)a;
    (void)out;
    return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                         "Mistral has no prompt log-probabilities (no teacher-forced scoring)");
}

/* ---- responses ---- */

/* A Mistral job object into *j; returns 0 or -1 (malformed). */
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
    j->suffix = provider_opt_str(o, "suffix", &bad);
    j->trained_tokens = provider_opt_int(o, "trained_tokens", -1, &bad);
    j->created_at = provider_opt_int(o, "created_at", 0, &bad);
    json_t *files = json_object_get(o, "training_files");
    if (json_is_array(files) && json_array_size(files)) {
        json_t *f = json_array_get(files, 0);
        if (json_is_string(f))
            j->training_file = xstrdup(json_string_value(f));
        else if (json_is_object(f))
            j->training_file = provider_opt_str(f, "file_id", &bad);
        else
            bad = 1;
    } else if (files && !json_is_array(files) && !json_is_null(files)) {
        bad = 1;
    }
    if (bad || !j->id || !j->raw_status)
        return -1;
    j->state = mistral_map_status(j->raw_status);
    if (provider_job_state_terminal(j->state))
        j->finished_at = provider_opt_int(o, "modified_at", 0, &bad);
    if (j->state == PROVIDER_JOB_FAILED) {
        j->error_code = xstrdup(j->raw_status);
        j->error_message = xasprintf("the job ended %s (Mistral gives the reason in the job's "
                                     "events: vtunectl job events)",
                                     j->raw_status);
    }
    return bad ? -1 : 0;
}

static int mistral_parse_job(const struct http_response *res, struct provider_job *out,
                             struct provider_error *err)
{
    return provider_parse_job_with(res, out, err, job_from_json, "a fine-tuning job with id and status");
}

/* {object: "list", total, data}: page 0 of page_size; has_more without a
 * cursor when total says there is more (see the note at the top). */
static int mistral_parse_list(const struct http_response *res, struct provider_job_page *out,
                              struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "data");
    int64_t total = provider_opt_int(root, "total", -1, &bad);
    if (!json_is_array(data) || bad)
        goto malformed;
    if (provider_page_jobs(data, out, job_from_json) < 0)
        goto malformed;
    out->has_more = total > (int64_t)out->n_jobs;
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_job_page_clear(out);
    return provider_malformed(res, err, "a list of fine-tuning jobs {total, data}");
}

/* The events of a job answer: [{name, data, created_at}], oldest first. */
static int mistral_parse_events(const struct http_response *res, struct provider_event_page *out,
                                struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *ev = json_object_get(root, "events");
    if (ev && !json_is_array(ev) && !json_is_null(ev))
        goto malformed;
    out->events = xcalloc(json_array_size(ev) + 1, sizeof *out->events);
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        struct provider_event *pe = &out->events[out->n_events++];
        if (!json_is_object(e))
            goto malformed;
        pe->message = provider_opt_str(e, "name", &bad);
        pe->created_at = provider_opt_int(e, "created_at", 0, &bad);
        json_t *d = json_object_get(e, "data");
        if (json_is_object(d) && json_object_size(d)) {
            char *dd = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
            char *m = xasprintf("%s %s", pe->message ? pe->message : "", dd);
            free(dd);
            free(pe->message);
            pe->message = m;
        }
        if (bad || !pe->message)
            goto malformed;
    }
    json_decref(root);
    return 0;
malformed:
    json_decref(root);
    provider_event_page_clear(out);
    return provider_malformed(res, err, "a job with an events array");
}

static int mistral_parse_file(const struct http_response *res, struct provider_file *out,
                              struct provider_error *err)
{
    return provider_openai.parse_file(res, out, err);
}

static int mistral_parse_file_list(const struct http_response *res, struct provider_file_page *out,
                                   struct provider_error *err)
{
    json_t *root;
    int bad = 0;
    /* The data array has the openai file shape; the page has a total. */
    int r = provider_openai.parse_file_list(res, out, err);
    if (r < 0)
        return r;
    if (provider_response_json(res, &root, err) == 0) {
        int64_t total = provider_opt_int(root, "total", -1, &bad);
        out->has_more = !bad && total > (int64_t)out->n_files;
        json_decref(root);
    }
    free(out->next_cursor);
    out->next_cursor = NULL;
    return 0;
}

static int mistral_parse_file_deleted(const struct http_response *res,
                                      struct provider_file_deletion *out,
                                      struct provider_error *err)
{
    return provider_openai.parse_file_deleted(res, out, err);
}

static int mistral_parse_score(const struct http_response *res,
                               const struct provider_score_args *a,
                               struct provider_score_result *out, struct provider_error *err)
{
    (void)res;
    (void)a;
    memset(out, 0, sizeof *out);
    return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                         "Mistral has no prompt log-probabilities (no teacher-forced scoring)");
}

/* The --param keys mistral_build_create accepts (its hp table plus
 * validation_file): job submit checks them before anything is uploaded. */
static const char *const mistral_params[] = {
    "training_steps", "epochs", "learning_rate", "weight_decay", "warmup_fraction", "seq_len",
    "validation_file", NULL,
};

const struct provider_ops provider_mistral = {
    .kind = "mistral",
    .params = mistral_params,
    .caps = PROVIDER_CAP_TRAIN | PROVIDER_CAP_TAG_FILTER,
    .build_upload = mistral_build_upload,
    .build_create = mistral_build_create,
    .build_retrieve = mistral_build_retrieve,
    .build_list = mistral_build_list,
    .build_cancel = mistral_build_cancel,
    .build_events = mistral_build_events,
    .build_chat = mistral_build_chat,
    .build_score = mistral_build_score,
    .build_list_files = mistral_build_list_files,
    .build_delete_file = mistral_build_delete_file,
    .parse_file = mistral_parse_file,
    .parse_job = mistral_parse_job,
    .parse_list = mistral_parse_list,
    .parse_events = mistral_parse_events,
    .parse_chat = provider_parse_chat_openai,
    .parse_score = mistral_parse_score,
    .parse_file_list = mistral_parse_file_list,
    .parse_file_deleted = mistral_parse_file_deleted,
    .map_status = mistral_map_status,
};

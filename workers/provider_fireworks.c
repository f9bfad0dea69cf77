/*
 * provider_fireworks.c — Fireworks AI's fine-tuning API as a struct
 * provider_ops: a file of mapping.  Where Fireworks answers in shapes
 * another adapter already reads (the :upload answer is OpenAI's file
 * object; chat and completions are OpenAI-compatible, with Together's
 * legacy logprobs shape possible in chat) this file calls those parsers.
 * Facts from docs.fireworks.ai (reference/provider-apis.md §4.2 and the
 * API reference pages "create-dataset", "upload-dataset-files",
 * "create/get-supervised-fine-tuning-job", "post-completions"); base_url is
 * the server root, https://api.fireworks.ai, since management and
 * inference sit under different prefixes:
 *
 *   POST   /v1/accounts/A/datasets {datasetId, dataset: {displayName,
 *          userUploaded: {}}}                                → Dataset
 *   POST   /v1/accounts/A/datasets/D:upload (multipart: file)
 *                              → {id: D, object, bytes, created_at, filename, purpose}
 *   GET    /v1/accounts/A/datasets?pageSize=&pageToken=   → {datasets, nextPageToken}
 *   DELETE /v1/accounts/A/datasets/D                      → {}
 *   POST   /v1/accounts/A/supervisedFineTuningJobs?supervisedFineTuningJobId=J
 *          {dataset: accounts/A/datasets/D, baseModel, outputModel, epochs, ...}
 *   GET    /v1/accounts/A/supervisedFineTuningJobs/J      → job {name, state, status,
 *          outputModel, dataset, createTime, completedTime, ...}
 *   GET    /v1/accounts/A/supervisedFineTuningJobs?pageSize=&pageToken=
 *                                         → {supervisedFineTuningJobs, nextPageToken}
 *   POST   /v1/accounts/A/supervisedFineTuningJobs/J:cancel  [path UNCONFIRMED: firectl
 *          has "supervised-fine-tuning-job cancel"; the REST page was not found]
 *   POST   /inference/v1/chat/completions, /inference/v1/completions {echo, logprobs: int}
 *
 * What follows from the API:
 *  - The upload is two requests: the dataset record (build_prepare; a 409
 *    "already exists" is accepted, the id being ours), then the file.  The
 *    dataset id is the upload's file name without ".jsonl" ("vtune-" + the
 *    submission id), lowercased, anything but [a-z0-9-] made '-'; its
 *    displayName is the file name, which the orphan sweep matches.  The
 *    dataset is what the daemon deletes when the job ends.
 *  - The job id is chosen by us: "vt-" + the submission id (provider_suffix,
 *    lowercased; submission ids are lowercase hex).  It is an idempotency
 *    key: reconciling a lost create is a GET of that id (build_list with a
 *    tag), and a 404 there parses as an empty page ("never created").  A
 *    second create of one id is refused (409 ALREADY_EXISTS) [UNCONFIRMED
 *    code; the simulator answers so].  The output model is named
 *    accounts/A/models/vt-ID, so it carries the tag too.
 *  - States JOB_STATE_*: CREATING, VALIDATING, PENDING → submitted; RUNNING,
 *    WRITING_RESULTS, ROLLOUT, EVALUATION → running; COMPLETED; FAILED
 *    (reason in status {code, message}); CANCELLED.  UNSPECIFIED, DELETING
 *    and anything else → unrecognized (polled on; a deleted job ends in a 404).
 *  - No events endpoint for these jobs: build_events fetches the job and
 *    parse_events makes one event of its state and status message.
 *  - No seed for fine-tuning jobs; times are RFC 3339 strings.
 *  - Inference: chat logprobs are OpenAI's (logprobs: true, top_logprobs);
 *    completions take echo with an integer logprobs and return the echoed
 *    prompt's log-probabilities in choices[0].logprobs (OpenAI's legacy
 *    shape): teacher-forced scoring exists.  top_k is a sampling setting
 *    (the reference's example shows 50): with `neutral` this adapter sends
 *    top_k 0, min_p 0, repetition_penalty 1 [UNCONFIRMED that 0 means "no
 *    top-k" on Fireworks].
 *  - Errors: inference answers OpenAI's {"error": {...}}; the management
 *    API's error body shape is [UNCONFIRMED] (a top-level {code, message}
 *    is read as well).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/provider.h"

#define FW_PAGE_SIZE 200
#define FW_ID_MAX    63

static enum provider_job_state fw_map_status(const char *s)
{
    static const struct {
        const char *name;
        enum provider_job_state state;
    } map[] = {
        {"JOB_STATE_CREATING", PROVIDER_JOB_SUBMITTED},
        {"JOB_STATE_VALIDATING", PROVIDER_JOB_SUBMITTED},
        {"JOB_STATE_PENDING", PROVIDER_JOB_SUBMITTED},
        {"JOB_STATE_RUNNING", PROVIDER_JOB_RUNNING},
        {"JOB_STATE_WRITING_RESULTS", PROVIDER_JOB_RUNNING},
        {"JOB_STATE_ROLLOUT", PROVIDER_JOB_RUNNING},
        {"JOB_STATE_EVALUATION", PROVIDER_JOB_RUNNING},
        {"JOB_STATE_COMPLETED", PROVIDER_JOB_SUCCEEDED},
        {"JOB_STATE_FAILED", PROVIDER_JOB_FAILED},
        {"JOB_STATE_CANCELLED", PROVIDER_JOB_CANCELLED},
    };
    for (size_t i = 0; s && i < VT_ARRAY_LEN(map); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].state;
    return PROVIDER_JOB_UNRECOGNIZED;
}

/* ---- names ---- */

/* A Fireworks resource id from s: lowercase, [^a-z0-9-] as '-'.  Returns 0
 * or -EINVAL (empty or longer than FW_ID_MAX). */
static int fw_id(const char *s, size_t n, char *out, size_t outlen)
{
    if (n == 0 || n > FW_ID_MAX || outlen <= n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)tolower((unsigned char)s[i]);
        out[i] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ? ch : '-';
    }
    out[n] = '\0';
    return 0;
}

/* The dataset id of an upload: its file name without ".jsonl". */
static int dataset_id(const struct provider_upload_args *a, char *out, size_t outlen)
{
    const char *name = a->filename;
    if (!name || !*name) {
        name = a->path ? strrchr(a->path, '/') : NULL;
        name = name ? name + 1 : a->path;
    }
    if (!name)
        return -EINVAL;
    size_t n = strlen(name);
    if (n > 6 && strcmp(name + n - 6, ".jsonl") == 0)
        n -= 6;
    return fw_id(name, n, out, outlen);
}

/* The job id of a submission: "vt-" + the id, lowercased. */
static int job_id(const char *submission_id, char *out, size_t outlen)
{
    char sfx[64];
    if (!submission_id || provider_suffix(submission_id, sfx, sizeof sfx) < 0)
        return -EINVAL;
    return fw_id(sfx, strlen(sfx), out, outlen);
}

/* The last component of "accounts/A/kind/ID" (or the whole of a bare id). */
static const char *last_segment(const char *name)
{
    const char *s = name ? strrchr(name, '/') : NULL;
    return s ? s + 1 : name;
}

static int need_account(const struct provider_endpoint *ep, struct provider_error *err)
{
    if (!ep->account || !*ep->account)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "kind fireworks needs the provider's 'account' setting");
    return 0;
}

/* A request to /v1/accounts/A + tail (tail already escaped). */
static struct http_request *acct_request(const struct provider_endpoint *ep, const char *method,
                                         const char *tail)
{
    char *a = http_escape(ep->account);
    char *path = xasprintf("/v1/accounts/%s%s", a, tail);
    struct http_request *r = provider_request(ep, method, path);
    free(a);
    free(path);
    return r;
}

/* A job's path tail: "/supervisedFineTuningJobs/J" + verb ("" or ":cancel"). */
static int job_request(const struct provider_endpoint *ep, const char *method, const char *id,
                       const char *verb, struct http_request **out, struct provider_error *err)
{
    if (need_account(ep, err) < 0)
        return -EINVAL;
    if (!id || !*id)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "no job id given");
    char *e = http_escape(last_segment(id));
    char *tail = xasprintf("/supervisedFineTuningJobs/%s%s", e, verb);
    *out = acct_request(ep, method, tail);
    free(e);
    free(tail);
    return 0;
}

/* ---- uploads ---- */

static int fw_build_prepare(const struct provider_endpoint *ep,
                            const struct provider_upload_args *a, struct http_request **out,
                            struct provider_error *err)
{
    char id[FW_ID_MAX + 1];
    if (need_account(ep, err) < 0)
        return -EINVAL;
    if (dataset_id(a, id, sizeof id) < 0)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "upload: no file name that makes a dataset id (1 to 63 characters)");
    const char *display = a->filename && *a->filename ? a->filename : id;
    *out = acct_request(ep, "POST", "/datasets");
    provider_request_json(*out, json_pack("{s:s, s:{s:s, s:{}}}", "datasetId", id, "dataset",
                                          "displayName", display, "userUploaded"));
    return 0;
}

/* The dataset record exists: created now, or already (a redone upload of
 * the same submission; the id is ours). */
static int fw_parse_prepare(const struct http_response *res, struct provider_error *err)
{
    json_t *root = NULL;
    if (res->error == HTTP_E_NONE && res->status == 409)
        return 0;
    int r = provider_response_json(res, &root, err);
    json_decref(root);
    return r;
}

static int fw_build_upload(const struct provider_endpoint *ep,
                           const struct provider_upload_args *a, struct http_request **out,
                           struct provider_error *err)
{
    char id[FW_ID_MAX + 1];
    if (need_account(ep, err) < 0)
        return -EINVAL;
    if (!a->path || !*a->path)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "upload: no file given");
    if (dataset_id(a, id, sizeof id) < 0)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "upload: no file name that makes a dataset id (1 to 63 characters)");
    char *tail = xasprintf("/datasets/%s:upload", id);
    struct http_request *r = acct_request(ep, "POST", tail);
    free(tail);
    const char *name = a->filename && *a->filename ? a->filename : last_segment(a->path);
    http_request_add_file(r, "file", a->path, name, "application/octet-stream");
    r->timeout_ms = ep->upload_timeout_ms;
    r->low_speed_limit = 1024;
    r->low_speed_time_s = 60;
    *out = r;
    return 0;
}

static int fw_build_list_files(const struct provider_endpoint *ep, const char *after,
                               unsigned limit, struct http_request **out,
                               struct provider_error *err)
{
    char num[24];
    if (need_account(ep, err) < 0)
        return -EINVAL;
    struct http_request *r = acct_request(ep, "GET", "/datasets");
    snprintf(num, sizeof num, "%u", limit ? limit : FW_PAGE_SIZE);
    provider_url_add_query(&r->url, "pageSize", num);
    if (after && *after)
        provider_url_add_query(&r->url, "pageToken", after);
    *out = r;
    return 0;
}

static int fw_build_delete_file(const struct provider_endpoint *ep, const char *file_id,
                                struct http_request **out, struct provider_error *err)
{
    if (need_account(ep, err) < 0)
        return -EINVAL;
    if (!file_id || !*file_id)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "delete: no dataset id given");
    char *e = http_escape(last_segment(file_id));
    char *tail = xasprintf("/datasets/%s", e);
    *out = acct_request(ep, "DELETE", tail);
    free(e);
    free(tail);
    return 0;
}

/* An RFC 3339 time member; 0 when absent. */
static int64_t opt_time(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    int64_t t = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || provider_parse_iso8601(json_string_value(v), &t) < 0)
        *bad = 1;
    return t;
}

/* A Dataset {name, displayName, state, createTime} as a file. */
static int dataset_from_json(json_t *o, struct provider_file *f)
{
    int bad = 0;
    memset(f, 0, sizeof *f);
    if (!json_is_object(o))
        return -1;
    char *name = provider_opt_str(o, "name", &bad);
    f->id = name ? xstrdup(last_segment(name)) : NULL;
    free(name);
    f->filename = provider_opt_str(o, "displayName", &bad);
    f->status = provider_opt_str(o, "state", &bad);
    f->created_at = opt_time(o, "createTime", &bad);
    f->bytes = -1;
    if (bad || !f->id) {
        provider_file_clear(f);
        return -1;
    }
    return 0;
}

static int fw_parse_file_list(const struct http_response *res, struct provider_file_page *out,
                              struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "datasets");
    char *token = provider_opt_str(root, "nextPageToken", &bad);
    if ((data && !json_is_array(data)) || bad)
        goto malformed;
    out->files = xcalloc(json_array_size(data) + 1, sizeof *out->files);
    for (size_t i = 0; i < json_array_size(data); i++) {
        if (dataset_from_json(json_array_get(data, i), &out->files[i]) < 0)
            goto malformed;
        out->n_files++;
    }
    if (token && *token) {
        out->has_more = 1;
        out->next_cursor = token;
        token = NULL;
    }
    free(token);
    json_decref(root);
    return 0;
malformed:
    free(token);
    json_decref(root);
    provider_file_page_clear(out);
    return provider_malformed(res, err, "a list of datasets {datasets, nextPageToken}");
}

/* DELETE answers google.protobuf.Empty: any 2xx object means gone. */
static int fw_parse_file_deleted(const struct http_response *res,
                                 struct provider_file_deletion *out, struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_decref(root);
    out->deleted = 1;
    return 0;
}

/* ---- jobs ---- */

enum ptype { P_INT, P_NUM, P_BOOL, P_STR };
static const struct {
    const char *key;
    enum ptype type;
} fw_params[] = {
    {"epochs", P_INT},          {"learningRate", P_NUM},      {"loraRank", P_INT},
    {"maxContextLength", P_INT}, {"batchSize", P_INT},        {"earlyStop", P_BOOL},
    {"evaluationDataset", P_STR}, {"evalAutoCarveout", P_BOOL}, {"jinjaTemplate", P_STR},
};

static json_t *param_value(const char *k, const char *v, enum ptype t, struct provider_error *err)
{
    char *end;
    switch (t) {
    case P_INT: {
        long long n = strtoll(v, &end, 10);
        if (*v && !*end && n >= 1)
            return json_integer(n);
        break;
    }
    case P_NUM: {
        double d = strtod(v, &end);
        if (*v && !*end && d > 0)
            return json_real(d);
        break;
    }
    case P_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
            return json_boolean(strcmp(v, "true") == 0);
        break;
    case P_STR:
        if (*v)
            return json_string(v);
        break;
    }
    provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "--param %s=%s: expected %s", k, v,
                  t == P_INT    ? "a positive whole number"
                  : t == P_NUM  ? "a positive number"
                  : t == P_BOOL ? "true or false"
                                : "a name");
    return NULL;
}

static int fw_build_create(const struct provider_endpoint *ep,
                           const struct provider_create_args *a, struct http_request **out,
                           struct provider_error *err)
{
    char jid[FW_ID_MAX + 1];
    json_t *body = NULL;
    char *dataset = NULL, *output = NULL, *display = NULL;
    int r = -EINVAL;

    if (need_account(ep, err) < 0)
        goto out;
    if (!a->model || !*a->model || !a->training_file || !*a->training_file) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: a model and a training dataset are needed");
        goto out;
    }
    if (job_id(a->submission_id, jid, sizeof jid) < 0) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "create: the submission id must be 1 to 37 characters (it is the job's id)");
        goto out;
    }
    if (a->has_seed) {
        provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                      "--param seed: Fireworks' fine-tuning jobs take no seed");
        goto out;
    }
    dataset = strncmp(a->training_file, "accounts/", 9) == 0
                  ? xstrdup(a->training_file)
                  : xasprintf("accounts/%s/datasets/%s", ep->account, a->training_file);
    output = xasprintf("accounts/%s/models/%s", ep->account, jid);
    display = xasprintf("vtune %s", a->submission_id);
    body = json_pack("{s:s, s:s, s:s, s:s}", "dataset", dataset, "baseModel", a->model,
                     "outputModel", output, "displayName", display);
    for (size_t i = 0; i < a->n_params; i++) {
        const char *k = a->params[i].key, *v = a->params[i].value;
        size_t p;
        if (!k || !v) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "create: empty --param");
            goto out;
        }
        for (p = 0; p < VT_ARRAY_LEN(fw_params) && strcmp(fw_params[p].key, k) != 0; p++)
            ;
        if (p == VT_ARRAY_LEN(fw_params)) {
            provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                          "unknown --param '%s' for a fireworks provider; known: epochs, "
                          "learningRate, loraRank, maxContextLength, batchSize, earlyStop, "
                          "evaluationDataset, evalAutoCarveout, jinjaTemplate",
                          k);
            goto out;
        }
        json_t *val = param_value(k, v, fw_params[p].type, err);
        if (!val)
            goto out;
        json_object_set_new(body, k, val);
    }
    *out = acct_request(ep, "POST", "/supervisedFineTuningJobs");
    provider_url_add_query(&(*out)->url, "supervisedFineTuningJobId", jid);
    provider_request_json(*out, body);
    body = NULL;
    r = 0;
out:
    json_decref(body);
    free(dataset);
    free(output);
    free(display);
    return r;
}

static int fw_build_retrieve(const struct provider_endpoint *ep, const char *id,
                             struct http_request **out, struct provider_error *err)
{
    return job_request(ep, "GET", id, "", out, err);
}

static int fw_build_cancel(const struct provider_endpoint *ep, const char *id,
                           struct http_request **out, struct provider_error *err)
{
    int r = job_request(ep, "POST", id, ":cancel", out, err);
    if (r == 0)
        provider_request_json(*out, json_object());
    return r;
}

/* With a tag: the one job that submission can have (the idempotency key);
 * without: a page of the account's jobs. */
static int fw_build_list(const struct provider_endpoint *ep, const struct provider_list_args *a,
                         struct http_request **out, struct provider_error *err)
{
    char jid[FW_ID_MAX + 1], num[24];
    if (need_account(ep, err) < 0)
        return -EINVAL;
    if (a && a->tag && *a->tag) {
        if (job_id(a->tag, jid, sizeof jid) < 0)
            return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                                 "list: submission id '%s' makes no job id", a->tag);
        return job_request(ep, "GET", jid, "", out, err);
    }
    struct http_request *r = acct_request(ep, "GET", "/supervisedFineTuningJobs");
    snprintf(num, sizeof num, "%u", a && a->limit ? a->limit : FW_PAGE_SIZE);
    provider_url_add_query(&r->url, "pageSize", num);
    if (a && a->after && *a->after)
        provider_url_add_query(&r->url, "pageToken", a->after);
    *out = r;
    return 0;
}

static int fw_build_events(const struct provider_endpoint *ep, const char *id, const char *after,
                           unsigned limit, struct http_request **out, struct provider_error *err)
{
    (void)after;
    (void)limit;
    return job_request(ep, "GET", id, "", out, err);
}

/* A job object into *j; returns 0 or -1 (malformed).  An empty object (a
 * :cancel answered with google.protobuf.Empty) is a job still stopping. */
static int job_from_json(json_t *o, struct provider_job *j)
{
    int bad = 0;
    memset(j, 0, sizeof *j);
    if (!json_is_object(o))
        return -1;
    if (json_object_size(o) == 0) {
        j->state = PROVIDER_JOB_RUNNING;
        j->raw_status = xstrdup("(empty answer)");
        return 0;
    }
    char *name = provider_opt_str(o, "name", &bad);
    char *dataset = provider_opt_str(o, "dataset", &bad);
    j->id = name ? xstrdup(last_segment(name)) : NULL;
    j->suffix = name ? xstrdup(last_segment(name)) : NULL; /* our id is the tag */
    j->training_file = dataset ? xstrdup(last_segment(dataset)) : NULL;
    free(name);
    free(dataset);
    j->raw_status = provider_opt_str(o, "state", &bad);
    j->model = provider_opt_str(o, "baseModel", &bad);
    j->fine_tuned_model = provider_opt_str(o, "outputModel", &bad);
    j->created_at = opt_time(o, "createTime", &bad);
    j->trained_tokens = -1;
    json_t *st = json_object_get(o, "status");
    if (st && !json_is_object(st) && !json_is_null(st))
        bad = 1;
    if (bad || !j->id || !j->raw_status)
        return -1;
    j->state = fw_map_status(j->raw_status);
    if (provider_job_state_terminal(j->state))
        j->finished_at = opt_time(o, "completedTime", &bad);
    if (j->state == PROVIDER_JOB_FAILED) {
        json_t *code = json_object_get(st, "code");
        const char *msg = json_string_value(json_object_get(st, "message"));
        j->error_code = json_is_string(code)    ? xstrdup(json_string_value(code))
                        : json_is_integer(code) ? xasprintf("%lld", (long long)json_integer_value(code))
                                                : xstrdup(j->raw_status);
        j->error_message = xstrdup(msg && *msg ? msg : "the job failed (no status message)");
    }
    return bad ? -1 : 0;
}

static int fw_parse_job(const struct http_response *res, struct provider_job *out,
                        struct provider_error *err)
{
    return provider_parse_job_with(res, out, err, job_from_json, "a supervised fine-tuning job with name and state");
}

/* A page of jobs, or the one job a tagged "listing" fetched; a 404 to that
 * GET is an empty page: no job has that id, so the create never happened. */
static int fw_parse_list(const struct http_response *res, struct provider_job_page *out,
                         struct provider_error *err)
{
    json_t *root;
    int bad = 0;
    memset(out, 0, sizeof *out);
    if (res->error == HTTP_E_NONE && res->status == 404) {
        out->jobs = xcalloc(1, sizeof *out->jobs);
        return 0;
    }
    int r = provider_response_json(res, &root, err);
    if (r < 0)
        return r;
    json_t *data = json_object_get(root, "supervisedFineTuningJobs");
    char *token = NULL;
    if (!data && json_object_get(root, "name")) { /* the GET of one job */
        out->jobs = xcalloc(2, sizeof *out->jobs);
        out->n_jobs = 1;
        if (job_from_json(root, &out->jobs[0]) < 0)
            goto malformed;
        json_decref(root);
        return 0;
    }
    token = provider_opt_str(root, "nextPageToken", &bad);
    if ((data && !json_is_array(data)) || bad)
        goto malformed;
    if (provider_page_jobs(data, out, job_from_json) < 0)
        goto malformed;
    if (token && *token) {
        out->has_more = 1;
        out->next_cursor = token;
        token = NULL;
    }
    free(token);
    json_decref(root);
    return 0;
malformed:
    free(token);
    json_decref(root);
    provider_job_page_clear(out);
    return provider_malformed(res, err, "supervised fine-tuning jobs {supervisedFineTuningJobs}");
}

/* One event from the job: its state, and its status message when set. */
static int fw_parse_events(const struct http_response *res, struct provider_event_page *out,
                           struct provider_error *err)
{
    json_t *root;
    int bad = 0, r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    char *state = provider_opt_str(root, "state", &bad);
    json_t *st = json_object_get(root, "status");
    const char *msg = json_string_value(json_object_get(st, "message"));
    if (bad || !state) {
        free(state);
        json_decref(root);
        return provider_malformed(res, err, "a supervised fine-tuning job with a state");
    }
    out->events = xcalloc(2, sizeof *out->events);
    out->n_events = 1;
    out->events[0].created_at = opt_time(root, "updateTime", &bad);
    out->events[0].level =
        xstrdup(fw_map_status(state) == PROVIDER_JOB_FAILED ? "error" : "info");
    out->events[0].type = xstrdup("state");
    out->events[0].message = msg && *msg ? xasprintf("%s: %s", state, msg) : xstrdup(state);
    free(state);
    json_decref(root);
    return 0;
}

/* ---- inference (OpenAI-compatible, under /inference/v1) ---- */

/* Moves a request built for the OpenAI paths to /inference/v1 + tail. */
static int retarget(const struct provider_endpoint *ep, const char *tail, json_t *extra,
                    struct http_request **out)
{
    json_t *body = json_loadb((*out)->body, (*out)->body_len, 0, NULL);
    if (extra)
        json_object_update(body, extra);
    json_decref(extra);
    char *path = xasprintf("/inference/v1%s", tail);
    struct http_request *req = provider_request(ep, "POST", path);
    free(path);
    provider_request_json(req, body);
    http_request_free(*out);
    *out = req;
    return 0;
}

static int fw_build_chat(const struct provider_endpoint *ep, const struct provider_chat_args *a,
                         struct http_request **out, struct provider_error *err)
{
    int r = provider_build_chat_openai(ep, a, "max_tokens", out, err);
    if (r < 0)
        return r;
    json_t *extra = a->neutral ? json_pack("{s:i, s:f, s:f}", "top_k", 0, "min_p", 0.0,
                                           "repetition_penalty", 1.0)
                               : NULL;
    return retarget(ep, "/chat/completions", extra, out);
}

static int fw_build_score(const struct provider_endpoint *ep, const struct provider_score_args *a,
                          struct http_request **out, struct provider_error *err)
{
    /* max_tokens 1: the generated token is dropped by the alignment. */
    int r = provider_build_score_openai(ep, a, 1, out, err);
    if (r < 0)
        return r;
    return retarget(ep, "/completions", NULL, out);
}

static int fw_parse_file(const struct http_response *res, struct provider_file *out,
                         struct provider_error *err)
{
    return provider_openai.parse_file(res, out, err); /* the :upload answer is a file object */
}

static int fw_parse_chat(const struct http_response *res, struct provider_chat_result *out,
                         struct provider_error *err)
{
    /* OpenAI's content[] or the legacy {tokens, token_logprobs}: Together
     * reads both. */
    return provider_together.parse_chat(res, out, err);
}

/* The --param keys fw_build_create accepts (its fw_params table). */
static const char *const fw_param_keys[] = {
    "epochs",    "learningRate", "loraRank",         "maxContextLength", "batchSize",
    "earlyStop", "evaluationDataset", "evalAutoCarveout", "jinjaTemplate", NULL,
};

const struct provider_ops provider_fireworks = {
    .kind = "fireworks",
    .params = fw_param_keys,
    .caps = PROVIDER_CAP_TRAIN | PROVIDER_CAP_TAG_FILTER | PROVIDER_CAP_PAGINATION |
            PROVIDER_CAP_SCORE,
    .build_prepare = fw_build_prepare,
    .parse_prepare = fw_parse_prepare,
    .build_upload = fw_build_upload,
    .build_create = fw_build_create,
    .build_retrieve = fw_build_retrieve,
    .build_list = fw_build_list,
    .build_cancel = fw_build_cancel,
    .build_events = fw_build_events,
    .build_chat = fw_build_chat,
    .build_score = fw_build_score,
    .build_list_files = fw_build_list_files,
    .build_delete_file = fw_build_delete_file,
    .parse_file = fw_parse_file,
    .parse_job = fw_parse_job,
    .parse_list = fw_parse_list,
    .parse_events = fw_parse_events,
    .parse_chat = fw_parse_chat,
    .parse_score = provider_parse_score_openai,
    .parse_file_list = fw_parse_file_list,
    .parse_file_deleted = fw_parse_file_deleted,
    .map_status = fw_map_status,
};

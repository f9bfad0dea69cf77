/*
 * provider.c — what every adapter shares (result structs, error parsing,
 * the OpenAI-shaped chat and scoring requests that openai and manual both
 * speak, token alignment for scoring); contracts in provider.h.  The
 * client that sends these requests is daemon/provider_client.c.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "workers/provider.h"

/* ------------------------------------------------------------------ */
/* Errors, names, clears                                               */
/* ------------------------------------------------------------------ */

void provider_error_clear(struct provider_error *e)
{
    if (!e)
        return;
    free(e->type);
    free(e->code);
    free(e->message);
    free(e->param);
    free(e->request_id);
    memset(e, 0, sizeof *e);
}

int provider_fail(struct provider_error *err, enum provider_error_kind kind, int ret,
                  const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return ret;
    provider_error_clear(err);
    err->kind = kind;
    va_start(ap, fmt);
    if (vasprintf(&err->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    return ret;
}

/* Known shapes of "fine-tuning is closed for your organisation".  OpenAI
 * documents none: a 403 permission error on job create has been reported
 * since the wind-down began (3P: ed-donner/llm_engineering#3258, 2026-05);
 * the codes and words below are what such a refusal plausibly carries
 * [UNCONFIRMED], so a match needs the status AND a code or two words of the
 * message.  Add a row when a real body is seen. */
static const struct refusal_shape {
    long status;        /* 0: any 4xx */
    const char *code;   /* error.code equal to this, or NULL */
    const char *words1; /* or the message contains both (case-insensitive) */
    const char *words2;
} refusal_shapes[] = {
    {0, "fine_tuning_disabled", NULL, NULL},
    {0, "fine_tuning_unavailable", NULL, NULL},
    {0, "fine_tuning_not_available", NULL, NULL},
    {403, NULL, "fine-tun", "no longer"},
    {403, NULL, "fine-tun", "not available"},
    {403, NULL, "fine-tun", "wind"}, /* winding / wound down */
    {403, NULL, "fine tun", "no longer"},
    {400, NULL, "fine-tun", "no longer available"},
};

static int has_words(const char *msg, const char *w)
{
    return msg && w && strcasestr(msg, w) != NULL;
}

const char *provider_refusal_reason(const struct provider_error *e)
{
    if (!e || e->kind != PROVIDER_E_HTTP || e->http_status < 400 || e->http_status > 499)
        return NULL;
    for (size_t i = 0; i < VT_ARRAY_LEN(refusal_shapes); i++) {
        const struct refusal_shape *s = &refusal_shapes[i];
        if (s->status && s->status != e->http_status)
            continue;
        if ((s->code && e->code && strcmp(s->code, e->code) == 0) ||
            (s->words1 && has_words(e->message, s->words1) && has_words(e->message, s->words2)))
            return "fine-tuning is closed for this organisation (OpenAI's wind-down of self-serve "
                   "fine-tuning: new jobs are refused to every organisation from 2027-01-06; "
                   "existing fine-tunes keep serving); nothing was created: use a provider of "
                   "kind together, fireworks, mistral, azure or manual (README \"Providers\")";
    }
    return NULL;
}

char *provider_error_line(const char *prov, const struct provider_error *e)
{
    struct buf b;
    buf_init(&b);
    if (prov)
        buf_printf(&b, "%s: ", prov);
    if (e->http_status)
        buf_printf(&b, "%ld ", e->http_status);
    if (e->type)
        buf_printf(&b, "%s ", e->type);
    if (e->code && (!e->type || strcmp(e->code, e->type) != 0))
        buf_printf(&b, "(%s) ", e->code);
    if (b.len && (e->http_status || e->type || e->code)) {
        b.len--; /* the trailing space */
        buf_puts(&b, ": ");
    }
    buf_puts(&b, e->message ? e->message : "unknown error");
    if (e->param || e->request_id) {
        buf_puts(&b, " [");
        if (e->param)
            buf_printf(&b, "param %s%s", e->param, e->request_id ? ", " : "");
        if (e->request_id)
            buf_printf(&b, "x-request-id %s", e->request_id);
        buf_puts(&b, "]");
    }
    return b.data;
}

const char *provider_job_state_name(enum provider_job_state s)
{
    switch (s) {
    case PROVIDER_JOB_SUBMITTED:
        return "submitted";
    case PROVIDER_JOB_RUNNING:
        return "running";
    case PROVIDER_JOB_SUCCEEDED:
        return "succeeded";
    case PROVIDER_JOB_FAILED:
        return "failed";
    case PROVIDER_JOB_CANCELLED:
        return "cancelled";
    case PROVIDER_JOB_UNRECOGNIZED:
        return "unrecognized";
    }
    return "unknown";
}

int provider_job_state_terminal(enum provider_job_state s)
{
    return s == PROVIDER_JOB_SUCCEEDED || s == PROVIDER_JOB_FAILED || s == PROVIDER_JOB_CANCELLED;
}

void provider_file_clear(struct provider_file *f)
{
    free(f->id);
    free(f->filename);
    free(f->status);
    memset(f, 0, sizeof *f);
}

void provider_file_page_clear(struct provider_file_page *p)
{
    for (size_t i = 0; i < p->n_files; i++)
        provider_file_clear(&p->files[i]);
    free(p->files);
    free(p->next_cursor);
    memset(p, 0, sizeof *p);
}

void provider_file_deletion_clear(struct provider_file_deletion *d)
{
    free(d->id);
    memset(d, 0, sizeof *d);
}

void provider_job_clear(struct provider_job *j)
{
    free(j->id);
    free(j->raw_status);
    free(j->model);
    free(j->fine_tuned_model);
    free(j->training_file);
    free(j->suffix);
    free(j->submission_tag);
    free(j->error_code);
    free(j->error_message);
    free(j->error_param);
    memset(j, 0, sizeof *j);
}

void provider_job_page_clear(struct provider_job_page *p)
{
    for (size_t i = 0; i < p->n_jobs; i++)
        provider_job_clear(&p->jobs[i]);
    free(p->jobs);
    free(p->next_cursor);
    memset(p, 0, sizeof *p);
}

void provider_event_page_clear(struct provider_event_page *p)
{
    for (size_t i = 0; i < p->n_events; i++) {
        free(p->events[i].id);
        free(p->events[i].level);
        free(p->events[i].type);
        free(p->events[i].message);
    }
    free(p->events);
    free(p->next_cursor);
    memset(p, 0, sizeof *p);
}

void provider_tokens_free(struct provider_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].token);
        free(t[i].bytes);
        for (size_t k = 0; k < t[i].n_top; k++)
            free(t[i].top[k].token);
        free(t[i].top);
    }
    free(t);
}

void provider_chat_result_clear(struct provider_chat_result *r)
{
    free(r->id);
    free(r->model);
    free(r->text);
    free(r->finish_reason);
    free(r->system_fingerprint);
    provider_tokens_free(r->tokens, r->n_tokens);
    memset(r, 0, sizeof *r);
}

void provider_score_result_clear(struct provider_score_result *r)
{
    provider_tokens_free(r->tokens, r->n_tokens);
    memset(r, 0, sizeof *r);
}

void provider_chat_args_init(struct provider_chat_args *a)
{
    memset(a, 0, sizeof *a);
    a->temperature = 1.0;
    a->top_p = 1.0;
    a->max_tokens = 256;
}

/* ------------------------------------------------------------------ */
/* The tag                                                             */
/* ------------------------------------------------------------------ */

#define SUFFIX_MAX 40

int provider_suffix(const char *submission_id, char *out, size_t outlen)
{
    size_t n = submission_id ? strlen(submission_id) : 0;
    if (n == 0 || n + 3 > SUFFIX_MAX || outlen < n + 4)
        return -EINVAL;
    memcpy(out, "vt-", 3);
    for (size_t i = 0; i < n; i++) {
        char ch = submission_id[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-';
        out[3 + i] = ok ? ch : '-';
    }
    out[3 + n] = '\0';
    return 0;
}

static int is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Whether `needle` occurs in hay with no letter or digit right before or
 * after it (so "vt-12" does not match inside "vt-123"). */
static int contains_component(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
        int before_ok = p == hay || !is_alnum(p[-1]);
        int after_ok = !is_alnum(p[n]);
        if (before_ok && after_ok)
            return 1;
    }
    return 0;
}

int provider_job_matches(const struct provider_job *j, const char *submission_id)
{
    char sfx[SUFFIX_MAX + 1];
    if (!submission_id || !*submission_id)
        return 0;
    if (j->submission_tag && strcmp(j->submission_tag, submission_id) == 0)
        return 1;
    if (provider_suffix(submission_id, sfx, sizeof sfx) < 0)
        return 0;
    if (j->suffix && strcmp(j->suffix, sfx) == 0)
        return 1;
    if (j->fine_tuned_model && contains_component(j->fine_tuned_model, sfx))
        return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

struct http_request *provider_request(const struct provider_endpoint *ep, const char *method,
                                      const char *path)
{
    size_t bl = strlen(ep->base_url);
    while (bl > 0 && ep->base_url[bl - 1] == '/')
        bl--;
    char *u = xasprintf("%.*s%s", (int)bl, ep->base_url, path);
    struct http_request *r = http_request_new(method, u);
    free(u);
    http_request_add_header(r, "Accept", "application/json");
    if (ep->api_key && ep->key_in_api_key_header)
        http_request_add_header(r, "api-key", "%s", ep->api_key);
    else if (ep->api_key)
        http_request_add_header(r, "Authorization", "Bearer %s", ep->api_key);
    if (ep->api_version)
        provider_url_add_query(&r->url, "api-version", ep->api_version);
    r->connect_timeout_ms = ep->connect_timeout_ms;
    r->timeout_ms = ep->request_timeout_ms;
    if (ep->ca_file)
        r->ca_file = xstrdup(ep->ca_file);
    return r;
}

char *provider_inference_path(const struct provider_endpoint *ep, const char *model,
                              const char *tail)
{
    if (!ep->deployment_paths)
        return xstrdup(tail);
    const char *dep = model ? model : "";
    for (size_t i = 0; i < ep->n_deployments; i++)
        if (ep->deploy_models[i] && strcmp(ep->deploy_models[i], dep) == 0) {
            dep = ep->deploy_names[i];
            break;
        }
    char *e = http_escape(dep);
    char *path = xasprintf("/deployments/%s%s", e, tail);
    free(e);
    return path;
}

void provider_url_add_query(char **url, const char *key, const char *value)
{
    char *k = http_escape(key), *v = http_escape(value);
    char *n = xasprintf("%s%c%s=%s", *url, strchr(*url, '?') ? '&' : '?', k, v);
    free(k);
    free(v);
    free(*url);
    *url = n;
}

void provider_request_json(struct http_request *r, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    if (!s)
        abort(); /* only on out-of-memory */
    http_request_set_body(r, "application/json", s, strlen(s));
    free(s);
    json_decref(body);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

void provider_text_tidy(char **s, size_t max)
{
    if (!*s)
        return;
    size_t n = strlen(*s), k = n;
    if (k > max) {
        k = max;
        while (k > 0 && ((unsigned char)(*s)[k] & 0xc0) == 0x80)
            k--; /* (*s)[k] starts a character: the prefix ends between two */
    }
    char *t = xmalloc(k + 4);
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)(*s)[i];
        t[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    strcpy(t + k, k < n ? "..." : "");
    free(*s);
    *s = t;
}

void provider_error_tidy(struct provider_error *e)
{
    provider_text_tidy(&e->type, PROVIDER_ID_MAX);
    provider_text_tidy(&e->code, PROVIDER_ID_MAX);
    provider_text_tidy(&e->message, PROVIDER_TEXT_MAX);
    provider_text_tidy(&e->param, PROVIDER_ID_MAX);
}

void provider_job_tidy(struct provider_job *j)
{
    provider_text_tidy(&j->error_message, PROVIDER_TEXT_MAX);
    provider_text_tidy(&j->error_code, PROVIDER_ID_MAX);
    provider_text_tidy(&j->error_param, PROVIDER_ID_MAX);
}

static char *excerpt(const char *s, size_t n)
{
    size_t k = n < 160 ? n : 160;
    char *e = xmalloc(k + 4);
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)s[i];
        e[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    strcpy(e + k, n > k ? "..." : "");
    return e;
}

int provider_malformed(const struct http_response *res, struct provider_error *err,
                       const char *what)
{
    char *ex = excerpt(res->body ? res->body : "", res->body_len);
    provider_fail(err, PROVIDER_E_MALFORMED, -EPROTO,
                  "malformed response: expected %s; %zu bytes beginning '%s'", what, res->body_len,
                  ex);
    free(ex);
    if (err) {
        err->http_status = res->status;
        err->request_id = res->request_id ? xstrdup(res->request_id) : NULL;
    }
    return -EPROTO;
}

int provider_parse_job_with(const struct http_response *res, struct provider_job *out,
                            struct provider_error *err,
                            int (*from_json)(json_t *o, struct provider_job *j), const char *what)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    r = from_json(root, out);
    json_decref(root);
    if (r < 0) {
        provider_job_clear(out);
        return provider_malformed(res, err, what);
    }
    return 0;
}

int provider_page_jobs(json_t *arr, struct provider_job_page *out,
                       int (*from_json)(json_t *o, struct provider_job *j))
{
    out->jobs = xcalloc(json_array_size(arr) + 1, sizeof *out->jobs);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        out->n_jobs++;
        if (from_json(json_array_get(arr, i), &out->jobs[i]) < 0)
            return -1;
    }
    return 0;
}

static char *json_str_dup(json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return NULL;
}

/* The error body: {"error":{message,type,param,code}} (OpenAI, Together,
 * vLLM with an integer code), {"error":"text"}, the older vLLM flat
 * {"object":"error","message":...}, FastAPI's {"detail":...}, or not JSON. */
static void parse_error_body(const struct http_response *res, struct provider_error *err)
{
    json_t *root = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        err->message = json_str_dup(json_object_get(e, "message"));
        err->type = json_str_dup(json_object_get(e, "type"));
        err->code = json_str_dup(json_object_get(e, "code"));
        err->param = json_str_dup(json_object_get(e, "param"));
    } else if (json_is_string(e)) {
        err->message = xstrdup(json_string_value(e));
    } else if (json_is_object(root)) {
        err->message = json_str_dup(json_object_get(root, "message"));
        err->type = json_str_dup(json_object_get(root, "type"));
        err->code = json_str_dup(json_object_get(root, "code"));
        json_t *d = json_object_get(root, "detail");
        if (!err->message && d) {
            char *s = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
            err->message = s ? excerpt(s, strlen(s)) : NULL;
            free(s);
        }
    }
    if (!err->message)
        err->message = res->body_len ? excerpt(res->body, res->body_len)
                                     : xasprintf("HTTP %ld with an empty body", res->status);
    json_decref(root);
}

int provider_response_json(const struct http_response *res, json_t **root,
                           struct provider_error *err)
{
    *root = NULL;
    if (res->error != HTTP_E_NONE) {
        provider_fail(err, PROVIDER_E_TRANSPORT, -EIO, "%s",
                      res->error_text ? res->error_text : http_error_name(res->error));
        err->transport = res->error;
        err->http_status = res->status;
        return -EIO;
    }
    if (res->status < 200 || res->status > 299) {
        provider_error_clear(err);
        err->kind = PROVIDER_E_HTTP;
        err->http_status = res->status;
        err->request_id = res->request_id ? xstrdup(res->request_id) : NULL;
        parse_error_body(res, err);
        return -EIO;
    }
    json_error_t je;
    json_t *j = json_loadb(res->body, res->body_len, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return provider_malformed(res, err, "a JSON object");
    }
    *root = j;
    return 0;
}

/* Typed getters for parse functions: 0 ok, -1 wrong type.  "opt" variants
 * accept absence and null. */
static int get_str(json_t *o, const char *k, char **out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return -1;
    *out = xstrdup(json_string_value(v));
    return 0;
}

char *provider_opt_str(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return xstrdup(json_string_value(v));
}

int64_t provider_opt_int(json_t *o, const char *k, int64_t dflt, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return dflt;
    if (!json_is_integer(v)) {
        *bad = 1;
        return dflt;
    }
    return json_integer_value(v);
}

static int get_opt_str(json_t *o, const char *k, char **out)
{
    int bad = 0;
    *out = provider_opt_str(o, k, &bad);
    return bad ? -1 : 0;
}

static int get_opt_int(json_t *o, const char *k, int64_t dflt, int64_t *out)
{
    int bad = 0;
    *out = provider_opt_int(o, k, dflt, &bad);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* ISO-8601                                                            */
/* ------------------------------------------------------------------ */

static int64_t civil_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int digits(const char **sp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*sp)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

int provider_parse_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (!s || digits(&s, 4, &y) < 0 || *s++ != '-' || digits(&s, 2, &mo) < 0 || *s++ != '-' ||
        digits(&s, 2, &d) < 0 || (*s != 'T' && *s != 't' && *s != ' '))
        return -EINVAL;
    s++;
    if (digits(&s, 2, &h) < 0 || *s++ != ':' || digits(&s, 2, &mi) < 0 || *s++ != ':' ||
        digits(&s, 2, &sec) < 0)
        return -EINVAL;
    if (*s == '.' || *s == ',') {
        s++;
        if (*s < '0' || *s > '9')
            return -EINVAL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (digits(&s, 2, &oh) < 0)
            return -EINVAL;
        if (*s == ':')
            s++;
        if (digits(&s, 2, &om) < 0)
            return -EINVAL;
    } else if (*s) {
        return -EINVAL;
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || oh > 23 ||
        om > 59)
        return -EINVAL;
    *out = civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    return 0;
}

/* ------------------------------------------------------------------ */
/* OpenAI-shaped chat and scoring (openai and manual)                   */
/* ------------------------------------------------------------------ */

static int check_chat_args(const struct provider_chat_args *a, unsigned max_top,
                           struct provider_error *err)
{
    if (!a->model || !*a->model)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "chat: no model given");
    if (a->n_messages == 0)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "chat: no messages");
    for (size_t i = 0; i < a->n_messages; i++)
        if (!a->messages[i].role || !a->messages[i].content)
            return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                                 "chat: message %zu has no role or content", i);
    if (!(a->temperature >= 0 && a->temperature <= 2))
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "chat: temperature %g is outside 0..2", a->temperature);
    if (!(a->top_p > 0 && a->top_p <= 1))
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "chat: top_p %g is outside (0, 1]",
                             a->top_p);
    if (a->top_logprobs > max_top)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "chat: top_logprobs %u is more than this provider's %u",
                             a->top_logprobs, max_top);
    return 0;
}

json_t *provider_chat_messages_json(const struct provider_chat_args *a)
{
    json_t *msgs = json_array();
    for (size_t i = 0; i < a->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", a->messages[i].role, "content",
                                              a->messages[i].content));
    return msgs;
}

int provider_build_chat_openai(const struct provider_endpoint *ep,
                               const struct provider_chat_args *a, const char *max_tokens_field,
                               struct http_request **out, struct provider_error *err)
{
    int r = check_chat_args(a, 20, err);
    if (r < 0)
        return r;
    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(a->model));
    json_object_set_new(body, "messages", provider_chat_messages_json(a));
    json_object_set_new(body, "temperature", json_real(a->temperature));
    json_object_set_new(body, "top_p", json_real(a->top_p));
    json_object_set_new(body, "n", json_integer(1));
    if (a->neutral) {
        json_object_set_new(body, "frequency_penalty", json_real(0.0));
        json_object_set_new(body, "presence_penalty", json_real(0.0));
    }
    if (a->has_seed)
        json_object_set_new(body, "seed", json_integer(a->seed));
    if (a->max_tokens)
        json_object_set_new(body, max_tokens_field, json_integer(a->max_tokens));
    if (a->logprobs) {
        json_object_set_new(body, "logprobs", json_true());
        if (a->top_logprobs)
            json_object_set_new(body, "top_logprobs", json_integer(a->top_logprobs));
    }
    char *path = provider_inference_path(ep, a->model, "/chat/completions");
    *out = provider_request(ep, "POST", path);
    free(path);
    provider_request_json(*out, body);
    return 0;
}

static int check_score_args(const struct provider_score_args *a, unsigned max_top,
                            struct provider_error *err)
{
    if (!a->model || !*a->model)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL, "score: no model given");
    if (!a->prompt || !a->continuation || !*a->continuation)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "score: a prompt and a non-empty continuation are needed");
    if (a->top_logprobs > max_top)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "score: top_logprobs %u is more than this provider's %u",
                             a->top_logprobs, max_top);
    return 0;
}

int provider_build_score_openai(const struct provider_endpoint *ep,
                                const struct provider_score_args *a, unsigned max_tokens,
                                struct http_request **out, struct provider_error *err)
{
    int r = check_score_args(a, 20, err);
    if (r < 0)
        return r;
    char *text = xasprintf("%s%s", a->prompt, a->continuation);
    json_t *body = json_pack("{s:s, s:s, s:b, s:i, s:i, s:f}", "model", a->model, "prompt", text,
                             "echo", 1, "logprobs", (int)a->top_logprobs, "max_tokens",
                             (int)max_tokens, "temperature", 0.0);
    free(text);
    char *path = provider_inference_path(ep, a->model, "/completions");
    *out = provider_request(ep, "POST", path);
    free(path);
    provider_request_json(*out, body);
    return 0;
}

static int is_sentinel(double lp)
{
    return lp < PROVIDER_LOGPROB_SENTINEL + 1.0;
}

/* One chat TokenLogprob {token, logprob, bytes, top_logprobs}. */
int provider_parse_token_logprob(json_t *e, struct provider_token *t)
{
    json_t *lp = json_object_get(e, "logprob");
    json_t *bytes = json_object_get(e, "bytes");
    json_t *top = json_object_get(e, "top_logprobs");
    if (!json_is_object(e) || get_str(e, "token", &t->token) < 0)
        return -1;
    if (json_is_number(lp)) {
        t->logprob = json_number_value(lp);
        t->known = !is_sentinel(t->logprob);
    } else if (json_is_null(lp)) {
        t->logprob = PROVIDER_LOGPROB_SENTINEL;
    } else {
        return -1;
    }
    if (json_is_array(bytes)) {
        t->has_bytes = 1;
        t->n_bytes = json_array_size(bytes);
        t->bytes = xmalloc(t->n_bytes + 1);
        for (size_t i = 0; i < t->n_bytes; i++) {
            json_t *b = json_array_get(bytes, i);
            if (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > 255)
                return -1;
            t->bytes[i] = (unsigned char)json_integer_value(b);
        }
    } else if (bytes && !json_is_null(bytes)) {
        return -1;
    }
    if (json_is_array(top)) {
        t->top = xcalloc(json_array_size(top) + 1, sizeof *t->top);
        for (size_t i = 0; i < json_array_size(top); i++) {
            json_t *a = json_array_get(top, i);
            json_t *alp = json_object_get(a, "logprob");
            json_t *atok = json_object_get(a, "token");
            if (!json_is_string(atok) || !json_is_number(alp))
                return -1;
            if (is_sentinel(json_number_value(alp)))
                continue; /* carries no information */
            t->top[t->n_top].token = xstrdup(json_string_value(atok));
            t->top[t->n_top].logprob = json_number_value(alp);
            t->n_top++;
        }
    } else if (top && !json_is_null(top)) {
        return -1;
    }
    return 0;
}

int provider_parse_chat_openai(const struct http_response *res, struct provider_chat_result *out,
                               struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0)
        return r;
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    json_t *usage = json_object_get(root, "usage");
    json_t *lp = json_object_get(choice, "logprobs");
    if (!json_is_object(choice) || !json_is_object(msg) ||
        !(json_is_string(content) || json_is_null(content)))
        goto malformed;
    out->text = xstrdup(json_is_string(content) ? json_string_value(content) : "");
    if (get_opt_str(choice, "finish_reason", &out->finish_reason) < 0 ||
        get_opt_str(root, "id", &out->id) < 0 || get_opt_str(root, "model", &out->model) < 0 ||
        get_opt_str(root, "system_fingerprint", &out->system_fingerprint) < 0)
        goto malformed;
    out->prompt_tokens = out->completion_tokens = out->total_tokens = -1;
    if (json_is_object(usage) &&
        (get_opt_int(usage, "prompt_tokens", -1, &out->prompt_tokens) < 0 ||
         get_opt_int(usage, "completion_tokens", -1, &out->completion_tokens) < 0 ||
         get_opt_int(usage, "total_tokens", -1, &out->total_tokens) < 0))
        goto malformed;
    if (json_is_object(lp)) {
        json_t *c = json_object_get(lp, "content");
        if (json_is_array(c)) {
            out->has_logprobs = 1;
            out->tokens = xcalloc(json_array_size(c) + 1, sizeof *out->tokens);
            for (size_t i = 0; i < json_array_size(c); i++) {
                out->n_tokens++;
                if (provider_parse_token_logprob(json_array_get(c, i), &out->tokens[i]) < 0)
                    goto malformed;
            }
        } else if (c && !json_is_null(c)) {
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

/* Number of UTF-8 code points in s[0..n). */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            k++;
    return k;
}

int provider_score_align(const struct http_response *res, json_t *lp, const char *echoed,
                         const struct provider_score_args *a, struct provider_score_result *out,
                         struct provider_error *err)
{
    json_t *tokens = json_object_get(lp, "tokens");
    json_t *tlp = json_object_get(lp, "token_logprobs");
    json_t *top = json_object_get(lp, "top_logprobs");
    json_t *offs = json_object_get(lp, "text_offset");
    size_t n = json_array_size(tokens);
    size_t P = strlen(a->prompt), T = P + strlen(a->continuation);
    int64_t *start = NULL, *end = NULL;
    struct buf cat;
    int r = 0;

    memset(out, 0, sizeof *out);
    buf_init(&cat);
    if (!json_is_array(tokens) || !json_is_array(tlp) || json_array_size(tlp) != n || n == 0)
        goto malformed;
    start = xcalloc(n, sizeof *start);
    end = xcalloc(n, sizeof *end);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tokens, i);
        if (!json_is_string(t))
            goto malformed;
        start[i] = (int64_t)cat.len;
        buf_append(&cat, json_string_value(t), json_string_length(t));
        end[i] = (int64_t)cat.len;
    }
    /* Find prompt+continuation inside the concatenated tokens: special
     * tokens may come before it (BOS) and generated ones after it. */
    char *text = xasprintf("%s%s", a->prompt, a->continuation);
    int64_t base = -1;
    for (size_t b = 0; b + T <= cat.len && b <= 64; b++)
        if (memcmp(cat.data + b, text, T) == 0) {
            base = (int64_t)b;
            break;
        }
    int echoed_ok = echoed && strncmp(echoed, text, T) == 0;
    free(text);
    if (base >= 0) {
        for (size_t i = 0; i < n; i++) {
            start[i] -= base;
            end[i] -= base;
        }
    } else if (echoed_ok && json_is_array(offs) && json_array_size(offs) == n) {
        /* Tokens do not spell the text (partial UTF-8 shown as "bytes:…"):
         * fall back to the server's offsets, in code points. */
        const char *pr = a->prompt;
        size_t Pc = utf8_len(pr, P), Tc = Pc + utf8_len(a->continuation, T - P);
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(offs, i);
            if (!json_is_integer(o))
                goto malformed;
            start[i] = json_integer_value(o);
        }
        for (size_t i = 0; i < n; i++)
            end[i] = i + 1 < n ? start[i + 1] : (start[i] < (int64_t)Tc ? (int64_t)Tc : start[i]);
        P = Pc;
        T = Tc;
    } else {
        r = provider_fail(err, PROVIDER_E_MALFORMED, -EPROTO,
                          "score: the echoed tokens do not spell the prompt and continuation "
                          "and no text_offset aligns them");
        goto out;
    }

    out->tokens = xcalloc(n, sizeof *out->tokens);
    out->all_known = 1;
    for (size_t i = 0; i < n; i++) {
        if (end[i] <= (int64_t)P) {
            out->n_prompt_tokens++;
            continue;
        }
        if (start[i] >= (int64_t)T)
            break; /* generated after the text */
        if (start[i] < (int64_t)P || end[i] > (int64_t)T) {
            out->boundary_split = 1;
            continue;
        }
        struct provider_token *t = &out->tokens[out->n_tokens++];
        json_t *v = json_array_get(tlp, i);
        t->token = xstrdup(json_string_value(json_array_get(tokens, i)));
        if (json_is_number(v)) {
            t->logprob = json_number_value(v);
            t->known = !is_sentinel(t->logprob);
        } else if (json_is_null(v)) {
            t->logprob = PROVIDER_LOGPROB_SENTINEL;
        } else {
            goto malformed;
        }
        if (t->known)
            out->sum_logprob += t->logprob;
        else
            out->all_known = 0;
        json_t *alts = json_is_array(top) ? json_array_get(top, i) : NULL;
        if (json_is_object(alts)) {
            const char *k;
            json_t *av;
            t->top = xcalloc(json_object_size(alts) + 1, sizeof *t->top);
            json_object_foreach(alts, k, av)
            {
                if (!json_is_number(av))
                    goto malformed;
                if (is_sentinel(json_number_value(av)))
                    continue;
                t->top[t->n_top].token = xstrdup(k);
                t->top[t->n_top].logprob = json_number_value(av);
                t->n_top++;
            }
        }
    }
    if (out->n_tokens == 0)
        out->all_known = 0;
    goto out;
malformed:
    provider_score_result_clear(out);
    r = provider_malformed(res, err, "echoed prompt log-probabilities");
out:
    if (r < 0)
        provider_score_result_clear(out);
    free(start);
    free(end);
    buf_free(&cat);
    return r;
}

/* A 4xx that says the model cannot echo prompt log-probabilities. */
static int refuses_echo(const struct provider_error *e)
{
    if (e->kind != PROVIDER_E_HTTP || !e->message ||
        !(e->http_status == 400 || e->http_status == 404 || e->http_status == 422))
        return 0;
    const char *m = e->message;
    return strcasestr(m, "echo") || strcasestr(m, "logprobs") || strcasestr(m, "not supported") ||
           strcasestr(m, "chat model");
}

int provider_parse_score_openai(const struct http_response *res,
                                const struct provider_score_args *a,
                                struct provider_score_result *out, struct provider_error *err)
{
    json_t *root;
    int r = provider_response_json(res, &root, err);
    memset(out, 0, sizeof *out);
    if (r < 0) {
        if (r == -EIO && refuses_echo(err)) {
            err->kind = PROVIDER_E_UNSUPPORTED;
            return -ENOTSUP;
        }
        return r;
    }
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    json_t *lp = json_object_get(choice, "logprobs");
    if (!json_is_object(choice)) {
        json_decref(root);
        return provider_malformed(res, err, "a completion with choices");
    }
    if (!json_is_object(lp)) {
        json_decref(root);
        return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                             "the server returned no prompt log-probabilities (echo with "
                             "logprobs is not available for this model)");
    }
    r = provider_score_align(res, lp, json_string_value(json_object_get(choice, "text")), a, out,
                             err);
    json_decref(root);
    return r;
}

int provider_build_score_batch_openai(const struct provider_endpoint *ep,
                                      const struct provider_score_args *a, size_t n,
                                      unsigned max_tokens, struct http_request **out,
                                      struct provider_error *err)
{
    if (n == 0 || n > PROVIDER_SCORE_BATCH_MAX)
        return provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                             "score: a batch holds 1 to %d texts, not %zu",
                             PROVIDER_SCORE_BATCH_MAX, n);
    json_t *prompts = json_array();
    for (size_t i = 0; i < n; i++) {
        int r = check_score_args(&a[i], 20, err);
        if (r == 0 && (strcmp(a[i].model, a[0].model) != 0 ||
                       a[i].top_logprobs != a[0].top_logprobs))
            r = provider_fail(err, PROVIDER_E_INVALID, -EINVAL,
                              "score: one batch takes one model and one top_logprobs");
        if (r < 0) {
            json_decref(prompts);
            return r;
        }
        char *text = xasprintf("%s%s", a[i].prompt, a[i].continuation);
        json_array_append_new(prompts, json_string(text));
        free(text);
    }
    json_t *body = json_pack("{s:s, s:o, s:b, s:i, s:i, s:f}", "model", a[0].model, "prompt",
                             prompts, "echo", 1, "logprobs", (int)a[0].top_logprobs,
                             "max_tokens", (int)max_tokens, "temperature", 0.0);
    char *path = provider_inference_path(ep, a[0].model, "/completions");
    *out = provider_request(ep, "POST", path);
    free(path);
    provider_request_json(*out, body);
    return 0;
}

int provider_parse_score_batch_openai(const struct http_response *res,
                                      const struct provider_score_args *a, size_t n,
                                      struct provider_score_result *out,
                                      struct provider_error *err)
{
    json_t *root;
    memset(out, 0, n * sizeof *out);
    int r = provider_response_json(res, &root, err);
    if (r < 0) {
        if (r == -EIO && refuses_echo(err)) {
            err->kind = PROVIDER_E_UNSUPPORTED;
            return -ENOTSUP;
        }
        return r;
    }
    json_t *choices = json_object_get(root, "choices"), *choice;
    size_t k, with_lp = 0;
    if (!json_is_array(choices)) {
        json_decref(root);
        return provider_malformed(res, err, "a completion with choices");
    }
    json_array_foreach(choices, k, choice)
    {
        json_t *ix = json_object_get(choice, "index");
        size_t i = json_is_integer(ix) ? (size_t)json_integer_value(ix) : k;
        json_t *lp = json_object_get(choice, "logprobs");
        if (!json_is_object(choice) || i >= n || !json_is_object(lp) || out[i].n_tokens)
            continue;
        with_lp++;
        struct provider_error e = {0};
        if (provider_score_align(res, lp, json_string_value(json_object_get(choice, "text")),
                                 &a[i], &out[i], &e) < 0)
            memset(&out[i], 0, sizeof out[i]); /* cleared by the alignment */
        provider_error_clear(&e);
    }
    json_decref(root);
    if (with_lp == 0)
        return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                             "the server returned no prompt log-probabilities (echo with "
                             "logprobs is not available for this model)");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Known --param keys                                                  */
/* ------------------------------------------------------------------ */

/* Levenshtein distance of a and b (short keys: a small table). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return la > lb ? la : lb;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int provider_param_check(const struct provider_ops *ops, const char *key, const char **nearest)
{
    size_t best = (size_t)-1;
    *nearest = NULL;
    for (const char *const *p = ops->params; p && *p; p++) {
        size_t n = strlen(*p);
        if (n && (*p)[n - 1] == '.' ? strncmp(key, *p, n) == 0 && key[n] : strcmp(key, *p) == 0)
            return 0;
        size_t dist = edit_distance(key, *p);
        if (dist < best) {
            best = dist;
            *nearest = *p;
        }
    }
    /* Near enough to be a typo: at most a third of the key, and 3. */
    size_t len = strlen(key);
    if (best > 3 || best * 3 > len + 2)
        *nearest = NULL;
    return -EINVAL;
}

char *provider_params_line(const struct provider_ops *ops)
{
    char *line = xstrdup("");
    for (const char *const *p = ops->params; p && *p; p++) {
        size_t n = strlen(*p);
        char *next = xasprintf("%s%s%s%s", line, *line ? ", " : "", *p,
                               n && (*p)[n - 1] == '.' ? "KEY" : "");
        free(line);
        line = next;
    }
    return line;
}

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

const struct provider_ops *provider_ops_find(const char *kind)
{
    static const struct provider_ops *const all[] = {
        &provider_openai, &provider_together, &provider_manual, &provider_azure, &provider_mistral,
        &provider_fireworks};
    for (size_t i = 0; kind && i < VT_ARRAY_LEN(all); i++)
        if (strcmp(all[i]->kind, kind) == 0)
            return all[i];
    return NULL;
}

const struct provider_ops *provider_ops_for(enum provider_kind kind)
{
    switch (kind) {
    case PROVIDER_OPENAI:
        return &provider_openai;
    case PROVIDER_TOGETHER:
        return &provider_together;
    case PROVIDER_MANUAL:
        return &provider_manual;
    case PROVIDER_AZURE:
        return &provider_azure;
    case PROVIDER_MISTRAL:
        return &provider_mistral;
    case PROVIDER_FIREWORKS:
        return &provider_fireworks;
    }
    return NULL;
}

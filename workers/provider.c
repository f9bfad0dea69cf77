/*
 * provider.c — what every adapter shares (result structs, error parsing,
 * the OpenAI-shaped chat and scoring requests that openai and manual both
 * speak, token alignment for scoring) and the provider client that runs
 * calls with retries (contracts in provider.h).
 *
 * The client is deliberately small: one call is a state machine of
 * "waiting" (a uv timer: first attempt, backoff, open breaker) and "in
 * flight" (one http handle), ending in exactly one done callback.  Requests
 * are built once into a template and each attempt sends a copy, so a retry
 * resends exactly the same bytes.  A create never gets a second attempt:
 * retry_classify() turns every uncertain outcome of a non-idempotent
 * request into RECONCILE, and this file only resends on RETRY.
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

#include <uv.h>

#include "daemon/log.h"
#include "daemon/util.h"
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

const char *provider_op_name(enum provider_op op)
{
    static const char *const names[] = {"upload",     "create",     "retrieve", "list",
                                        "cancel",     "events",     "chat",     "score",
                                        "list_files", "delete_file"};
    return (unsigned)op < VT_ARRAY_LEN(names) ? names[op] : "unknown";
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
    if (ep->api_key)
        http_request_add_header(r, "Authorization", "Bearer %s", ep->api_key);
    r->connect_timeout_ms = ep->connect_timeout_ms;
    r->timeout_ms = ep->request_timeout_ms;
    if (ep->ca_file)
        r->ca_file = xstrdup(ep->ca_file);
    return r;
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
    *out = provider_request(ep, "POST", "/chat/completions");
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
    *out = provider_request(ep, "POST", "/completions");
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

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

const struct provider_ops *provider_ops_find(const char *kind)
{
    static const struct provider_ops *const all[] = {&provider_openai, &provider_together,
                                                     &provider_manual};
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
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The client                                                          */
/* ------------------------------------------------------------------ */

struct provider_call {
    struct provider_client *pc;
    struct provider_call *prev, *next;
    enum provider_op op;
    struct http_request *tmpl;
    struct provider_score_args score_args; /* owned copies (score only) */
    provider_done_fn done;
    void *arg;
    void (*progress)(const struct http_progress *p, void *arg);
    void *http; /* the attempt in flight */
    uv_timer_t timer;
    unsigned attempts;
    uint64_t started_ms;
    int finished;
    struct provider_error err;
    struct provider_file file;
    struct provider_job job;
    struct provider_job_page jobs;
    struct provider_event_page events;
    struct provider_chat_result chat;
    struct provider_score_result score;
    struct provider_file_page files;
    struct provider_file_deletion deletion;
};

struct provider_client {
    uv_loop_t *loop;
    struct http_pool *pool;
    struct provider_client_conf conf; /* ep strings point at the owned copies below */
    char *name, *base_url, *api_key, *ca_file;
    struct retry_budget budget;
    struct breaker breaker;
    retry_rand_fn rnd;
    void *rnd_arg;
    struct provider_call *calls;
    uint64_t calls_active, requests_sent, retries;
    unsigned pending_closes; /* call timers not yet closed */
    int freeing;
};

void provider_client_conf_from(const struct conf_provider *cp, const char *api_key,
                               struct provider_client_conf *c)
{
    memset(c, 0, sizeof *c);
    c->ops = provider_ops_for(cp->kind);
    c->ep.name = cp->name;
    c->ep.base_url = cp->base_url;
    c->ep.api_key = api_key;
    c->ep.ca_file = cp->ca_file;
    c->ep.connect_timeout_ms = cp->connect_timeout_ms;
    c->ep.request_timeout_ms = cp->request_timeout_ms;
    c->ep.upload_timeout_ms = cp->upload_timeout_ms;
    c->max_concurrency = cp->max_concurrency ? cp->max_concurrency : 4;
    retry_policy_default(&c->policy);
    c->policy.max_attempts = cp->max_retries + 1;
    breaker_conf_default(&c->breaker);
    c->budget_window_ms = 60000;
    c->budget_ratio = 0.2;
    c->budget_min = 10;
    c->max_wait_ms = 600000;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

int provider_client_new(struct uv_loop_s *loop, struct http_transport *transport,
                        const struct provider_client_conf *c, struct provider_client **out)
{
    if (!c->ops || !c->ep.base_url || !*c->ep.base_url)
        return -EINVAL;
    struct provider_client *pc = xcalloc(1, sizeof *pc);
    pc->loop = loop;
    pc->conf = *c;
    pc->name = xstrdup(c->ep.name ? c->ep.name : c->ops->kind);
    pc->base_url = xstrdup(c->ep.base_url);
    pc->api_key = dup_or_null(c->ep.api_key);
    pc->ca_file = dup_or_null(c->ep.ca_file);
    pc->conf.ep.name = pc->name;
    pc->conf.ep.base_url = pc->base_url;
    pc->conf.ep.api_key = pc->api_key;
    pc->conf.ep.ca_file = pc->ca_file;
    if (pc->conf.policy.max_attempts < 1)
        pc->conf.policy.max_attempts = 1;
    pc->pool = http_pool_new(transport, c->max_concurrency, pc->name);
    retry_budget_init(&pc->budget, c->budget_window_ms, c->budget_ratio, c->budget_min);
    breaker_init(&pc->breaker, &c->breaker);
    pc->rnd = retry_rand_default;
    *out = pc;
    return 0;
}

void provider_client_set_rand(struct provider_client *pc, retry_rand_fn fn, void *arg)
{
    pc->rnd = fn;
    pc->rnd_arg = arg;
}

void provider_client_stats(struct provider_client *pc, struct provider_client_stats *out)
{
    memset(out, 0, sizeof *out);
    out->breaker = breaker_state_name(breaker_current(&pc->breaker));
    out->breaker_opens = pc->breaker.opens;
    out->calls_active = pc->calls_active;
    out->requests_sent = pc->requests_sent;
    out->retries = pc->retries;
    out->budget_denied = pc->budget.denied;
    http_pool_stats(pc->pool, &out->pool);
}

static void client_maybe_free(struct provider_client *pc)
{
    if (!pc->freeing || pc->pending_closes || pc->calls)
        return;
    http_pool_free(pc->pool);
    if (pc->api_key)
        explicit_bzero(pc->api_key, strlen(pc->api_key));
    free(pc->name);
    free(pc->base_url);
    free(pc->api_key);
    free(pc->ca_file);
    free(pc);
}

static void on_call_closed(uv_handle_t *h)
{
    struct provider_call *c = h->data;
    struct provider_client *pc = c->pc;
    free(c);
    pc->pending_closes--;
    client_maybe_free(pc);
}

static void call_clear_results(struct provider_call *c)
{
    provider_error_clear(&c->err);
    provider_file_clear(&c->file);
    provider_job_clear(&c->job);
    provider_job_page_clear(&c->jobs);
    provider_event_page_clear(&c->events);
    provider_chat_result_clear(&c->chat);
    provider_score_result_clear(&c->score);
    provider_file_page_clear(&c->files);
    provider_file_deletion_clear(&c->deletion);
}

static void call_finish(struct provider_call *c, int rc, enum retry_class cls, const char *reason,
                        int maybe_applied)
{
    struct provider_client *pc = c->pc;
    struct provider_outcome o;

    if (c->finished)
        return;
    c->finished = 1;
    uv_timer_stop(&c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        pc->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pc->calls_active--;
    /* Reserved before done runs: done may free the client, which must then
     * wait for this call's timer to close. */
    pc->pending_closes++;

    memset(&o, 0, sizeof o);
    o.op = c->op;
    o.rc = rc;
    o.cls = cls;
    o.reason = reason;
    o.maybe_applied = maybe_applied;
    o.attempts = c->attempts;
    o.err = &c->err;
    if (rc == 0) {
        switch (c->op) {
        case PROVIDER_OP_UPLOAD:
            o.file = &c->file;
            break;
        case PROVIDER_OP_CREATE:
        case PROVIDER_OP_RETRIEVE:
        case PROVIDER_OP_CANCEL:
            o.job = &c->job;
            break;
        case PROVIDER_OP_LIST:
            o.jobs = &c->jobs;
            break;
        case PROVIDER_OP_EVENTS:
            o.events = &c->events;
            break;
        case PROVIDER_OP_CHAT:
            o.chat = &c->chat;
            break;
        case PROVIDER_OP_SCORE:
            o.score = &c->score;
            break;
        case PROVIDER_OP_LIST_FILES:
            o.files = &c->files;
            break;
        case PROVIDER_OP_DELETE_FILE:
            o.deletion = &c->deletion;
            break;
        }
    }
    c->done(&o, c->arg);

    call_clear_results(c);
    http_request_free(c->tmpl);
    c->tmpl = NULL;
    free((char *)c->score_args.model);
    free((char *)c->score_args.prompt);
    free((char *)c->score_args.continuation);
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

static void attempt(struct provider_call *c);

static void on_timer(uv_timer_t *t)
{
    attempt(t->data);
}

static int parse_for_op(struct provider_call *c, const struct http_response *res)
{
    const struct provider_ops *ops = c->pc->conf.ops;
    switch (c->op) {
    case PROVIDER_OP_UPLOAD:
        if (ops->parse_file)
            return ops->parse_file(res, &c->file, &c->err);
        break;
    case PROVIDER_OP_CREATE:
    case PROVIDER_OP_RETRIEVE:
    case PROVIDER_OP_CANCEL:
        if (ops->parse_job)
            return ops->parse_job(res, &c->job, &c->err);
        break;
    case PROVIDER_OP_LIST:
        if (ops->parse_list)
            return ops->parse_list(res, &c->jobs, &c->err);
        break;
    case PROVIDER_OP_EVENTS:
        if (ops->parse_events)
            return ops->parse_events(res, &c->events, &c->err);
        break;
    case PROVIDER_OP_CHAT:
        if (ops->parse_chat)
            return ops->parse_chat(res, &c->chat, &c->err);
        break;
    case PROVIDER_OP_SCORE:
        if (ops->parse_score)
            return ops->parse_score(res, &c->score_args, &c->score, &c->err);
        break;
    case PROVIDER_OP_LIST_FILES:
        if (ops->parse_file_list)
            return ops->parse_file_list(res, &c->files, &c->err);
        break;
    case PROVIDER_OP_DELETE_FILE:
        if (ops->parse_file_deleted)
            return ops->parse_file_deleted(res, &c->deletion, &c->err);
        break;
    }
    return provider_fail(&c->err, PROVIDER_E_UNSUPPORTED, -ENOTSUP, "no parser for %s",
                         provider_op_name(c->op));
}

static void on_http_done(struct http_response *res, void *arg)
{
    struct provider_call *c = arg;
    struct provider_client *pc = c->pc;
    struct retry_verdict v;
    uint64_t now = now_monotonic_ms();

    c->http = NULL;
    call_clear_results(c);
    int pr = parse_for_op(c, res);
    struct retry_input in = {
        .transport = res->error,
        .status = res->status,
        .error_type = c->err.kind == PROVIDER_E_HTTP ? c->err.type : NULL,
        .error_code = c->err.kind == PROVIDER_E_HTTP ? c->err.code : NULL,
        .should_retry = res->should_retry,
        .body_malformed = pr == -EPROTO && res->error == HTTP_E_NONE,
        .non_idempotent = c->op == PROVIDER_OP_CREATE,
    };
    retry_classify(&in, &v);
    /* The breaker hears only what the provider (or the network to it) did. */
    if (res->error != HTTP_E_CANCELLED && res->error != HTTP_E_LOCAL && res->error != HTTP_E_TLS)
        breaker_record(&pc->breaker, v.provider_failure, now);

    const char *what = provider_op_name(c->op);
    if (v.cls == RETRY_CLASS_SUCCESS && pr == 0) {
        log_debug("provider %s: %s ok after %u attempt%s", pc->name, what, c->attempts,
                  c->attempts == 1 ? "" : "s");
        http_response_free(res);
        call_finish(c, 0, RETRY_CLASS_SUCCESS, v.reason, 1);
        return;
    }
    char *line = provider_error_line(pc->name, &c->err);
    if (in.body_malformed)
        log_warnx("provider %s: %s: %s", pc->name, what, line);
    if (v.cls == RETRY_CLASS_RETRY) {
        if (c->attempts < pc->conf.policy.max_attempts && !pc->freeing &&
            retry_budget_take(&pc->budget, now)) {
            int from_server = 0;
            uint64_t d =
                retry_delay_ms(&pc->conf.policy, c->attempts - 1, res->retry_after,
                               res->retry_after_ms, now_unix(), pc->rnd, pc->rnd_arg, &from_server);
            log_info("provider %s: %s failed (%s: %s); attempt %u of %u, next in %" PRIu64 " ms%s",
                     pc->name, what, v.reason, line, c->attempts, pc->conf.policy.max_attempts, d,
                     from_server ? " (Retry-After)" : "");
            free(line);
            http_response_free(res);
            uv_timer_start(&c->timer, on_timer, d, 0);
            return;
        }
        const char *why = c->attempts >= pc->conf.policy.max_attempts ? "no attempts left"
                          : pc->freeing                               ? "shutting down"
                                                                      : "retry budget exhausted";
        log_warnx("provider %s: %s gave up after %u attempt%s (%s): %s", pc->name, what,
                  c->attempts, c->attempts == 1 ? "" : "s", why, line);
        free(line);
        http_response_free(res);
        call_finish(c, pr == -EPROTO ? -EPROTO : -EIO, RETRY_CLASS_RETRY, v.reason,
                    v.maybe_applied);
        return;
    }
    int rc;
    if (res->error == HTTP_E_CANCELLED)
        rc = -ECANCELED;
    else if (pr == -ENOTSUP)
        rc = -ENOTSUP;
    else if (pr < 0)
        rc = pr == -EPROTO ? -EPROTO : -EIO;
    else
        rc = -EIO;
    if (v.cls == RETRY_CLASS_RECONCILE)
        log_warnx("provider %s: %s outcome unknown (%s): reconcile before any new attempt: %s",
                  pc->name, what, v.reason, line);
    else if (rc != -ECANCELED)
        log_debug("provider %s: %s failed: %s", pc->name, what, line);
    free(line);
    http_response_free(res);
    call_finish(c, rc, v.cls, v.reason, v.maybe_applied);
}

static void on_http_progress(const struct http_progress *p, void *arg)
{
    struct provider_call *c = arg;
    if (c->progress)
        c->progress(p, c->arg);
}

static void attempt(struct provider_call *c)
{
    struct provider_client *pc = c->pc;
    uint64_t now = now_monotonic_ms();

    if (!breaker_allow(&pc->breaker, now)) {
        uint64_t w = breaker_wait_ms(&pc->breaker, now);
        if (w == 0)
            w = 1;
        if (now - c->started_ms + w > pc->conf.max_wait_ms) {
            provider_fail(&c->err, PROVIDER_E_TRANSPORT, -ETIMEDOUT,
                          "circuit breaker for %s open for longer than %" PRIu64
                          " ms: the provider keeps failing",
                          pc->name, pc->conf.max_wait_ms);
            call_finish(c, -ETIMEDOUT, RETRY_CLASS_FATAL, "circuit open", 0);
            return;
        }
        uv_timer_start(&c->timer, on_timer, w, 0);
        return;
    }
    if (c->attempts == 0)
        retry_budget_on_request(&pc->budget, now);
    else
        pc->retries++;
    c->attempts++;
    pc->requests_sent++;
    struct http_callbacks cb = {
        .done = on_http_done, .progress = c->progress ? on_http_progress : NULL, .arg = c};
    int r = http_start(http_pool_transport(pc->pool), http_request_dup(c->tmpl), &cb, &c->http);
    if (r < 0) {
        c->http = NULL;
        provider_fail(&c->err, PROVIDER_E_TRANSPORT, r, "%s %s: cannot send: %s", c->tmpl->method,
                      c->tmpl->url, strerror(-r));
        call_finish(c, r == -ESHUTDOWN ? -ECANCELED : r, RETRY_CLASS_FATAL,
                    "request could not be started", 0);
    }
}

/* Starts a call around an already built request template. */
static int call_start(struct provider_client *pc, enum provider_op op, struct http_request *tmpl,
                      void (*progress)(const struct http_progress *, void *), provider_done_fn done,
                      void *arg, struct provider_call **out)
{
    if (pc->freeing) {
        http_request_free(tmpl);
        return -ESHUTDOWN;
    }
    struct provider_call *c = xcalloc(1, sizeof *c);
    c->pc = pc;
    c->op = op;
    c->tmpl = tmpl;
    c->done = done;
    c->arg = arg;
    c->progress = progress;
    c->started_ms = now_monotonic_ms();
    uv_timer_init(pc->loop, &c->timer);
    c->timer.data = c;
    c->next = pc->calls;
    if (pc->calls)
        pc->calls->prev = c;
    pc->calls = c;
    pc->calls_active++;
    /* The first attempt runs from the loop, so done never runs in here. */
    uv_timer_start(&c->timer, on_timer, 0, 0);
    if (out)
        *out = c;
    return 0;
}

static int not_built(struct provider_client *pc, const char *what, struct provider_error *err)
{
    return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP, "provider %s (kind %s) cannot %s",
                         pc->name, pc->conf.ops->kind, what);
}

int provider_upload(struct provider_client *pc, const struct provider_upload_args *a,
                    void (*progress)(const struct http_progress *p, void *arg),
                    provider_done_fn done, void *arg, struct provider_call **call,
                    struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_upload)
        return not_built(pc, "upload files", err);
    int rc = pc->conf.ops->build_upload(&pc->conf.ep, a, &r, err);
    if (rc < 0)
        return rc;
    /* Every upload stores a new file, so it too goes on a fresh connection
     * (the flag's effect in http.c): libcurl would otherwise resend it
     * silently when a reused connection dies before the answer, leaving a
     * copy nobody hears of.  This layer still retries uploads, visibly
     * (attempts > 1), so the caller knows to look for earlier copies. */
    r->non_idempotent = 1;
    return call_start(pc, PROVIDER_OP_UPLOAD, r, progress, done, arg, call);
}

int provider_create_job(struct provider_client *pc, const struct provider_create_args *a,
                        provider_done_fn done, void *arg, struct provider_call **call,
                        struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_create)
        return not_built(pc, "create fine-tuning jobs", err);
    int rc = pc->conf.ops->build_create(&pc->conf.ep, a, &r, err);
    if (rc < 0)
        return rc;
    r->non_idempotent = 1;
    return call_start(pc, PROVIDER_OP_CREATE, r, NULL, done, arg, call);
}

int provider_retrieve_job(struct provider_client *pc, const char *job_id, provider_done_fn done,
                          void *arg, struct provider_call **call, struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_retrieve)
        return not_built(pc, "retrieve jobs", err);
    int rc = pc->conf.ops->build_retrieve(&pc->conf.ep, job_id, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_RETRIEVE, r, NULL, done, arg, call);
}

int provider_list_jobs(struct provider_client *pc, const struct provider_list_args *a,
                       provider_done_fn done, void *arg, struct provider_call **call,
                       struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_list)
        return not_built(pc, "list jobs", err);
    int rc = pc->conf.ops->build_list(&pc->conf.ep, a, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_LIST, r, NULL, done, arg, call);
}

int provider_cancel_job(struct provider_client *pc, const char *job_id, provider_done_fn done,
                        void *arg, struct provider_call **call, struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_cancel)
        return not_built(pc, "cancel jobs", err);
    int rc = pc->conf.ops->build_cancel(&pc->conf.ep, job_id, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_CANCEL, r, NULL, done, arg, call);
}

int provider_list_events(struct provider_client *pc, const char *job_id, const char *after,
                         unsigned limit, provider_done_fn done, void *arg,
                         struct provider_call **call, struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_events)
        return not_built(pc, "list job events", err);
    int rc = pc->conf.ops->build_events(&pc->conf.ep, job_id, after, limit, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_EVENTS, r, NULL, done, arg, call);
}

int provider_chat(struct provider_client *pc, const struct provider_chat_args *a,
                  provider_done_fn done, void *arg, struct provider_call **call,
                  struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_chat)
        return not_built(pc, "run chat completions", err);
    int rc = pc->conf.ops->build_chat(&pc->conf.ep, a, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_CHAT, r, NULL, done, arg, call);
}

int provider_score(struct provider_client *pc, const struct provider_score_args *a,
                   provider_done_fn done, void *arg, struct provider_call **call,
                   struct provider_error *err)
{
    struct http_request *r = NULL;
    struct provider_call *c = NULL;
    if (!pc->conf.ops->build_score)
        return not_built(pc, "score text", err);
    int rc = pc->conf.ops->build_score(&pc->conf.ep, a, &r, err);
    if (rc < 0)
        return rc;
    rc = call_start(pc, PROVIDER_OP_SCORE, r, NULL, done, arg, &c);
    if (rc < 0)
        return rc;
    c->score_args.model = xstrdup(a->model);
    c->score_args.prompt = xstrdup(a->prompt);
    c->score_args.continuation = xstrdup(a->continuation);
    c->score_args.top_logprobs = a->top_logprobs;
    if (call)
        *call = c;
    return 0;
}

int provider_list_files(struct provider_client *pc, const char *after, unsigned limit,
                        provider_done_fn done, void *arg, struct provider_call **call,
                        struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_list_files)
        return not_built(pc, "list files", err);
    int rc = pc->conf.ops->build_list_files(&pc->conf.ep, after, limit, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_LIST_FILES, r, NULL, done, arg, call);
}

int provider_delete_file(struct provider_client *pc, const char *file_id, provider_done_fn done,
                         void *arg, struct provider_call **call, struct provider_error *err)
{
    struct http_request *r = NULL;
    if (!pc->conf.ops->build_delete_file)
        return not_built(pc, "delete files", err);
    int rc = pc->conf.ops->build_delete_file(&pc->conf.ep, file_id, &r, err);
    return rc < 0 ? rc : call_start(pc, PROVIDER_OP_DELETE_FILE, r, NULL, done, arg, call);
}

void provider_call_cancel(struct provider_call *c)
{
    if (c->finished)
        return;
    if (c->http) {
        /* on_http_done runs inside with HTTP_E_CANCELLED and finishes c. */
        http_cancel(http_pool_transport(c->pc->pool), c->http);
        return;
    }
    provider_fail(&c->err, PROVIDER_E_TRANSPORT, -ECANCELED, "cancelled before it was sent");
    call_finish(c, -ECANCELED, RETRY_CLASS_FATAL, "cancelled", 0);
}

void provider_call_progress(struct provider_call *c, struct http_progress *out)
{
    memset(out, 0, sizeof *out);
    if (c->http)
        http_get_progress(http_pool_transport(c->pc->pool), c->http, out);
}

void provider_client_free(struct provider_client *pc)
{
    if (!pc || pc->freeing)
        return;
    pc->freeing = 1;
    while (pc->calls)
        provider_call_cancel(pc->calls);
    client_maybe_free(pc);
}

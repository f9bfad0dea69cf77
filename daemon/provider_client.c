/*
 * provider_client.c — the provider client (contracts in provider_client.h).
 *
 * The client is deliberately small: one call is a state machine of
 * "waiting" (a uv timer: first attempt, backoff, open breaker) and "in
 * flight" (one http handle), ending in exactly one done callback.  Requests
 * are built once into a template and each attempt sends a copy, so a retry
 * resends exactly the same bytes.  A create never gets a second attempt:
 * retry_classify() turns every uncertain outcome of a non-idempotent
 * request into RECONCILE, and this file only resends on RETRY.
 *
 * A third state, "gated": an attempt waits until what the store committed
 * before it is on disk (the durability barrier, issue 13: the daemon's
 * loop commits without an fsync and a thread syncs in groups).  The call
 * sits in pc->calls with its ticket and is sent by
 * provider_client_release; cancelling it then finishes it at once, as for
 * a call waiting on its timer.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "daemon/provider_client.h"
#include "lib/log.h"
#include "lib/util.h"

const char *provider_op_name(enum provider_op op)
{
    static const char *const names[] = {"upload",     "create",     "retrieve", "list",
                                        "cancel",     "events",     "chat",     "score",
                                        "list_files", "delete_file"};
    return (unsigned)op < VT_ARRAY_LEN(names) ? names[op] : "unknown";
}

/* ------------------------------------------------------------------ */
/* The client                                                          */
/* ------------------------------------------------------------------ */

struct provider_call {
    struct provider_client *pc;
    struct provider_call *prev, *next;
    enum provider_op op;
    struct http_request *tmpl;
    struct http_request *upload_tmpl; /* the upload, sent once the prepare (tmpl) is accepted */
    struct provider_score_args score_args; /* owned copies (score only) */
    struct provider_score_args *batch_args; /* owned copies (a batched score), n_batch */
    struct provider_score_result *batch;    /* n_batch results */
    size_t n_batch;
    provider_done_fn done;
    void *arg;
    void (*progress)(const struct http_progress *p, void *arg);
    void *http; /* the attempt in flight */
    uv_timer_t timer;
    unsigned attempts;
    uint64_t started_ms;
    int finished;
    uint64_t gate; /* waiting for this store ticket to be durable; 0: not waiting */
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
    char *api_version;                   /* azure */
    char *account;                       /* fireworks */
    char **deploy_models, **deploy_names; /* azure: n = conf.ep.n_deployments */
    struct retry_budget budget;
    struct breaker breaker;
    retry_rand_fn rnd;
    void *rnd_arg;
    struct provider_call *calls;
    uint64_t calls_active, requests_sent, retries;
    unsigned pending_closes; /* call timers not yet closed */
    int freeing;
};

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
    pc->api_version = dup_or_null(c->ep.api_version);
    pc->conf.ep.api_version = pc->api_version;
    pc->account = dup_or_null(c->ep.account);
    pc->conf.ep.account = pc->account;
    pc->deploy_models = xcalloc(c->ep.n_deployments + 1, sizeof *pc->deploy_models);
    pc->deploy_names = xcalloc(c->ep.n_deployments + 1, sizeof *pc->deploy_names);
    for (size_t i = 0; i < c->ep.n_deployments; i++) {
        pc->deploy_models[i] = xstrdup(c->ep.deploy_models[i]);
        pc->deploy_names[i] = xstrdup(c->ep.deploy_names[i]);
    }
    pc->conf.ep.deploy_models = (const char *const *)pc->deploy_models;
    pc->conf.ep.deploy_names = (const char *const *)pc->deploy_names;
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
    free(pc->api_version);
    free(pc->account);
    for (size_t i = 0; i < pc->conf.ep.n_deployments; i++) {
        free(pc->deploy_models[i]);
        free(pc->deploy_names[i]);
    }
    free(pc->deploy_models);
    free(pc->deploy_names);
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
    for (size_t i = 0; i < c->n_batch; i++)
        provider_score_result_clear(&c->batch[i]);
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
            o.scores = c->n_batch ? c->batch : NULL;
            o.n_scores = c->n_batch;
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
    http_request_free(c->upload_tmpl);
    c->upload_tmpl = NULL;
    free((char *)c->score_args.model);
    free((char *)c->score_args.prompt);
    free((char *)c->score_args.continuation);
    for (size_t i = 0; i < c->n_batch; i++) {
        free((char *)c->batch_args[i].model);
        free((char *)c->batch_args[i].prompt);
        free((char *)c->batch_args[i].continuation);
    }
    free(c->batch_args);
    free(c->batch);
    c->n_batch = 0;
    uv_close((uv_handle_t *)&c->timer, on_call_closed);
}

static void attempt(struct provider_call *c);

static void on_timer(uv_timer_t *t)
{
    attempt(t->data);
}

static int parse_op(struct provider_call *c, const struct http_response *res)
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
        if (c->n_batch && ops->parse_score_batch)
            return ops->parse_score_batch(res, c->batch_args, c->n_batch, c->batch, &c->err);
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

/* The provider's texts, tidied where its answers enter the daemon
 * (provider_text_tidy): they reach the log, the store and the user. */
static void tidy_results(struct provider_call *c)
{
    provider_error_tidy(&c->err);
    provider_job_tidy(&c->job);
    for (size_t i = 0; i < c->jobs.n_jobs; i++)
        provider_job_tidy(&c->jobs.jobs[i]);
    for (size_t i = 0; i < c->events.n_events; i++)
        provider_text_tidy(&c->events.events[i].message, PROVIDER_TEXT_MAX);
}

static int parse_for_op(struct provider_call *c, const struct http_response *res)
{
    int r = parse_op(c, res);
    tidy_results(c);
    return r;
}

static void on_http_done(struct http_response *res, void *arg)
{
    struct provider_call *c = arg;
    struct provider_client *pc = c->pc;
    struct retry_verdict v;
    uint64_t now = now_monotonic_ms();

    c->http = NULL;
    call_clear_results(c);
    int pr;
    if (c->upload_tmpl) {
        /* The prepare step of a two-request upload (Fireworks' dataset
         * record).  Accepted: the upload proper starts now, as a call of
         * its own attempts (so attempts > 1 still means "resent"). */
        pr = pc->conf.ops->parse_prepare(res, &c->err);
        provider_error_tidy(&c->err);
        if (pr == 0 && res->error == HTTP_E_NONE) {
            log_debug("provider %s: upload prepared after %u attempt%s", pc->name, c->attempts,
                      c->attempts == 1 ? "" : "s");
            breaker_record(&pc->breaker, 0, now);
            http_response_free(res);
            http_request_free(c->tmpl);
            c->tmpl = c->upload_tmpl;
            c->upload_tmpl = NULL;
            c->attempts = 0;
            uv_timer_start(&c->timer, on_timer, 0, 0);
            return;
        }
    } else {
        pr = parse_for_op(c, res);
    }
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
    /* A parser that returned 0 for a permanent 4xx read it as an answer
     * (provider.h: Fireworks' 404 for a job never created). */
    if (pr == 0 && res->error == HTTP_E_NONE && v.cls == RETRY_CLASS_FATAL &&
        res->status >= 400 && res->status <= 499 && !c->upload_tmpl) {
        v.cls = RETRY_CLASS_SUCCESS;
        v.provider_failure = 0;
    }
    /* The breaker hears only what the provider (or the network to it) did. */
    if (res->error != HTTP_E_CANCELLED && res->error != HTTP_E_LOCAL && res->error != HTTP_E_TLS)
        breaker_record(&pc->breaker, v.provider_failure, now);

    const char *what = provider_op_name(c->op);
    if (v.cls == RETRY_CLASS_SUCCESS && pr == 0) {
        log_job(LOG_LVL_DEBUG, 0, pc->name, "provider %s: %s ok after %u attempt%s", pc->name, what,
                c->attempts, c->attempts == 1 ? "" : "s");
        http_response_free(res);
        call_finish(c, 0, RETRY_CLASS_SUCCESS, v.reason, 1);
        return;
    }
    char *line = provider_error_line(pc->name, &c->err);
    if (in.body_malformed)
        log_job(LOG_LVL_WARN, 0, pc->name, "provider %s: %s: %s", pc->name, what, line);
    if (v.cls == RETRY_CLASS_RETRY) {
        if (c->attempts < pc->conf.policy.max_attempts && !pc->freeing &&
            retry_budget_take(&pc->budget, now)) {
            int from_server = 0;
            uint64_t d =
                retry_delay_ms(&pc->conf.policy, c->attempts - 1, res->retry_after,
                               res->retry_after_ms, now_unix(), pc->rnd, pc->rnd_arg, &from_server);
            log_job(LOG_LVL_INFO, 0, pc->name,
                    "provider %s: %s failed (%s: %s); attempt %u of %u, next in %" PRIu64 " ms%s",
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
        log_job(LOG_LVL_WARN, 0, pc->name, "provider %s: %s gave up after %u attempt%s (%s): %s",
                pc->name, what, c->attempts, c->attempts == 1 ? "" : "s", why, line);
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
        log_job(LOG_LVL_WARN, 0, pc->name,
                "provider %s: %s outcome unknown (%s): reconcile before any new attempt: %s",
                pc->name, what, v.reason, line);
    else if (rc != -ECANCELED)
        log_job(LOG_LVL_DEBUG, 0, pc->name, "provider %s: %s failed: %s", pc->name, what, line);
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

/* The durability barrier (provider_set_barrier); NULL: none. */
static uint64_t (*barrier_ticket)(void *ctx);
static bool (*barrier_passed)(void *ctx, uint64_t ticket);
static void *barrier_ctx;

void provider_set_barrier(uint64_t (*ticket)(void *ctx), bool (*passed)(void *ctx, uint64_t t),
                          void *ctx)
{
    barrier_ticket = ticket;
    barrier_passed = passed;
    barrier_ctx = ctx;
}

static void send_attempt(struct provider_call *c);

/* One attempt, once what was committed before it is durable: a request is
 * a side effect, and its record must be on disk first (DESIGN §3). */
static void attempt(struct provider_call *c)
{
    uint64_t t = barrier_ticket ? barrier_ticket(barrier_ctx) : 0;
    if (t) {
        c->gate = t; /* provider_client_release sends it */
        return;
    }
    send_attempt(c);
}

void provider_client_release(struct provider_client *pc)
{
    struct provider_call **v = NULL;
    size_t n = 0, cap = 0;
    if (!pc)
        return;
    for (struct provider_call *c = pc->calls; c; c = c->next)
        if (c->gate && (!barrier_passed || barrier_passed(barrier_ctx, c->gate))) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                v = xrealloc(v, cap * sizeof *v);
            }
            v[n++] = c;
        }
    /* Sending may finish calls (and their done may start or cancel others):
     * a finished call stays allocated until its timer has closed, after
     * this loop iteration, so the pointers stay valid here. */
    for (size_t i = 0; i < n; i++)
        if (!v[i]->finished && v[i]->gate) {
            v[i]->gate = 0;
            send_attempt(v[i]);
        }
    free(v);
}

static void send_attempt(struct provider_call *c)
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
    struct http_request *prep = NULL;
    if (pc->conf.ops->build_prepare) {
        int prc = pc->conf.ops->build_prepare(&pc->conf.ep, a, &prep, err);
        if (prc < 0)
            return prc;
    }
    int rc = pc->conf.ops->build_upload(&pc->conf.ep, a, &r, err);
    if (rc < 0) {
        http_request_free(prep);
        return rc;
    }
    /* Every upload stores a new file, so it too goes on a fresh connection
     * (the flag's effect in http.c): libcurl would otherwise resend it
     * silently when a reused connection dies before the answer, leaving a
     * copy nobody hears of.  This layer still retries uploads, visibly
     * (attempts > 1), so the caller knows to look for earlier copies. */
    r->non_idempotent = 1;
    if (!prep)
        return call_start(pc, PROVIDER_OP_UPLOAD, r, progress, done, arg, call);
    struct provider_call *c = NULL;
    rc = call_start(pc, PROVIDER_OP_UPLOAD, prep, progress, done, arg, &c);
    if (rc < 0) {
        http_request_free(r);
        return rc;
    }
    c->upload_tmpl = r; /* sent once the prepare is accepted */
    if (call)
        *call = c;
    return 0;
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

bool provider_can_score_batch(const struct provider_client *pc)
{
    return pc->conf.ops->build_score_batch && pc->conf.ops->parse_score_batch;
}

int provider_score_batch(struct provider_client *pc, const struct provider_score_args *a, size_t n,
                         provider_done_fn done, void *arg, struct provider_call **call,
                         struct provider_error *err)
{
    struct http_request *r = NULL;
    struct provider_call *c = NULL;
    if (!provider_can_score_batch(pc))
        return not_built(pc, "score several texts in one request", err);
    int rc = pc->conf.ops->build_score_batch(&pc->conf.ep, a, n, &r, err);
    if (rc < 0)
        return rc;
    rc = call_start(pc, PROVIDER_OP_SCORE, r, NULL, done, arg, &c);
    if (rc < 0)
        return rc;
    c->batch_args = xcalloc(n, sizeof *c->batch_args);
    c->batch = xcalloc(n, sizeof *c->batch);
    for (size_t i = 0; i < n; i++) {
        c->batch_args[i].model = xstrdup(a[i].model);
        c->batch_args[i].prompt = xstrdup(a[i].prompt);
        c->batch_args[i].continuation = xstrdup(a[i].continuation);
        c->batch_args[i].top_logprobs = a[i].top_logprobs;
    }
    c->n_batch = n;
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

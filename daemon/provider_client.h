/*
 * provider_client.h — the client that sends a provider adapter's requests
 * (workers/provider.h) on the daemon's loop, with retries, a retry budget
 * and a circuit breaker.  Loop thread only.
 *
 * One struct provider_client per configured provider.  It owns the
 * provider's http_pool (concurrency limit), retry policy, retry budget and
 * circuit breaker, and runs one call = build → send → parse → classify →
 * maybe wait and resend → one done callback.
 *
 * THE CREATE RULE (DESIGN §3, workers/provider.h) is kept here:
 * provider_create_job() is sent exactly once per call, on a fresh
 * connection, and never resent.  An unknown outcome reports
 * RETRY_CLASS_RECONCILE and the caller lists the provider's jobs before
 * deciding anything.
 */
#ifndef VT_PROVIDER_CLIENT_H
#define VT_PROVIDER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/http.h"
#include "workers/provider.h"
#include "workers/retry.h"

struct uv_loop_s;

enum provider_op {
    PROVIDER_OP_UPLOAD = 0,
    PROVIDER_OP_CREATE,
    PROVIDER_OP_RETRIEVE,
    PROVIDER_OP_LIST,
    PROVIDER_OP_CANCEL,
    PROVIDER_OP_EVENTS,
    PROVIDER_OP_CHAT,
    PROVIDER_OP_SCORE,
    PROVIDER_OP_LIST_FILES,
    PROVIDER_OP_DELETE_FILE,
};
const char *provider_op_name(enum provider_op op);

struct provider_client_conf {
    const struct provider_ops *ops;
    struct provider_endpoint ep; /* strings copied by provider_client_new */
    unsigned max_concurrency;
    struct retry_policy policy;
    struct breaker_conf breaker;
    uint64_t budget_window_ms; /* retry budget: sliding window */
    double budget_ratio;       /* retries per request in the window */
    unsigned budget_min;       /* retries always allowed per window */
    uint64_t max_wait_ms;      /* a call waiting on an open breaker gives up after this */
};

struct provider_client;
struct provider_call;

/* What one call ended with; borrowed by the done callback (valid during it). */
struct provider_outcome {
    enum provider_op op;
    int rc;                           /* 0, or -EIO (error reply or transport failure), -EPROTO
                                         (malformed after the retries), -ENOTSUP, -ECANCELED,
                                         -ETIMEDOUT (breaker stayed open past max_wait) */
    enum retry_class cls;             /* last attempt: SUCCESS, RETRY (gave up), FATAL, RECONCILE */
    const char *reason;               /* static text for cls */
    int maybe_applied;                /* for RECONCILE / CANCELLED creates */
    unsigned attempts;                /* requests actually sent */
    const struct provider_error *err; /* rc < 0 */
    /* One of these is set when rc == 0 (by op). */
    const struct provider_file *file;
    const struct provider_job *job; /* create, retrieve, cancel */
    const struct provider_job_page *jobs;
    const struct provider_event_page *events;
    const struct provider_chat_result *chat;
    const struct provider_score_result *score;
    /* a batched score (provider_score_batch): n_scores results in the order
     * of its texts, an empty one (n_tokens 0) for a text that was not
     * scored; score is then an empty result */
    const struct provider_score_result *scores;
    size_t n_scores;
    const struct provider_file_page *files;
    const struct provider_file_deletion *deletion;
};
typedef void (*provider_done_fn)(const struct provider_outcome *o, void *arg);

/* Creates a client on loop sending through transport (borrowed, e.g.
 * http_ctx_transport(); both must outlive the client): it puts its own
 * http_pool of c->max_concurrency on top.  Returns 0 and *out (owned; free
 * with provider_client_free) or -EINVAL (no ops/base_url). */
int provider_client_new(struct uv_loop_s *loop, struct http_transport *transport,
                        const struct provider_client_conf *c, struct provider_client **out);
/* Cancels every call (each done runs with -ECANCELED inside this call; a
 * create in flight reports RECONCILE, maybe_applied 1), then frees pc once
 * its timers have closed (the loop must run).  NULL is a no-op. */
void provider_client_free(struct provider_client *pc);

/* The durability barrier (issue 13, store_durable_ticket): before each
 * attempt, ticket(ctx) says whether what the store committed so far is on
 * disk (0) or which ticket to wait for; the call then waits (cancellable)
 * until provider_client_release finds passed(ctx, ticket) true.  Set once
 * by the daemon for every client; NULL: no barrier. */
void provider_set_barrier(uint64_t (*ticket)(void *ctx), bool (*passed)(void *ctx, uint64_t t),
                          void *ctx);
/* Sends the calls of pc whose ticket has passed (the daemon calls it when
 * the store reports a durable group).  NULL is fine. */
void provider_client_release(struct provider_client *pc);
/* Seams for tests: the random source of the jitter, and "now". */
void provider_client_set_rand(struct provider_client *pc, retry_rand_fn fn, void *arg);

struct provider_client_stats {
    const char *breaker; /* breaker_state_name() */
    uint64_t breaker_opens;
    uint64_t calls_active;  /* started, not yet done */
    uint64_t requests_sent; /* attempts, all calls */
    uint64_t retries;       /* attempts beyond the first */
    uint64_t budget_denied;
    struct http_pool_stats pool;
};
void provider_client_stats(struct provider_client *pc, struct provider_client_stats *out);

/* Each starts one call.  The arguments are borrowed for the duration of the
 * call to this function only.  On success returns 0 and (when call is not
 * NULL) a handle valid until done runs; done runs exactly once, on the
 * loop, never inside this function.  On failure (bad arguments, not
 * supported by this provider) returns a negative errno, fills *err (may be
 * NULL; clear it after) and never calls done.  progress (may be NULL)
 * reports upload/download counters. */
int provider_upload(struct provider_client *pc, const struct provider_upload_args *a,
                    void (*progress)(const struct http_progress *p, void *arg),
                    provider_done_fn done, void *arg, struct provider_call **call,
                    struct provider_error *err);
/* Sent once, never resent (THE CREATE RULE above). */
int provider_create_job(struct provider_client *pc, const struct provider_create_args *a,
                        provider_done_fn done, void *arg, struct provider_call **call,
                        struct provider_error *err);
int provider_retrieve_job(struct provider_client *pc, const char *job_id, provider_done_fn done,
                          void *arg, struct provider_call **call, struct provider_error *err);
int provider_list_jobs(struct provider_client *pc, const struct provider_list_args *a,
                       provider_done_fn done, void *arg, struct provider_call **call,
                       struct provider_error *err);
int provider_cancel_job(struct provider_client *pc, const char *job_id, provider_done_fn done,
                        void *arg, struct provider_call **call, struct provider_error *err);
int provider_list_events(struct provider_client *pc, const char *job_id, const char *after,
                         unsigned limit, provider_done_fn done, void *arg,
                         struct provider_call **call, struct provider_error *err);
int provider_chat(struct provider_client *pc, const struct provider_chat_args *a,
                  provider_done_fn done, void *arg, struct provider_call **call,
                  struct provider_error *err);
int provider_score(struct provider_client *pc, const struct provider_score_args *a,
                   provider_done_fn done, void *arg, struct provider_call **call,
                   struct provider_error *err);
/* Whether pc's kind scores several texts in one request (ops'
 * build_score_batch: a completions prompt array). */
bool provider_can_score_batch(const struct provider_client *pc);
/* n texts (1..PROVIDER_SCORE_BATCH_MAX, one model) in one scoring request;
 * -ENOTSUP with *err where the kind cannot (send provider_score per text
 * instead).  The outcome's scores/n_scores hold the results. */
int provider_score_batch(struct provider_client *pc, const struct provider_score_args *a, size_t n,
                         provider_done_fn done, void *arg, struct provider_call **call,
                         struct provider_error *err);
/* One page of the provider's fine-tuning files (after: the previous page's
 * next_cursor, or NULL; limit 0: the provider's default).  Retried like
 * every read. */
int provider_list_files(struct provider_client *pc, const char *after, unsigned limit,
                        provider_done_fn done, void *arg, struct provider_call **call,
                        struct provider_error *err);
/* Deletes file_id at the provider.  Idempotent, so retried normally: a
 * retry after a lost answer may meet a 404 (rc -EIO, err->http_status 404)
 * for a file the first attempt did delete. */
int provider_delete_file(struct provider_client *pc, const char *file_id, provider_done_fn done,
                         void *arg, struct provider_call **call, struct provider_error *err);

/* Ends a call: done runs with -ECANCELED before this returns. */
void provider_call_cancel(struct provider_call *c);
/* Transfer counters of the attempt in flight (zeros between attempts). */
void provider_call_progress(struct provider_call *c, struct http_progress *out);

#endif

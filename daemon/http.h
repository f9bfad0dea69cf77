/*
 * http.h — vtuned's HTTP client: libcurl's multi interface driven by the
 * libuv loop, behind a small transport interface so tests can swap it.
 *
 * Three layers, each a struct http_transport (start / cancel / progress):
 *
 *   curl glue   http_ctx_new(): one CURLM, one uv_timer_t and one uv_poll_t
 *               per socket, all owned by one struct http_ctx (the shape of
 *               curl's multi + libuv example).  Nothing blocks the loop:
 *               DNS uses curl's threaded resolver, uploads stream from disk.
 *   pool        http_pool_new(): a decorator that keeps at most N requests of
 *               one provider in flight and queues the rest (FIFO), starting
 *               them as others finish.
 *   fake        tests build their own struct http_transport.
 *
 * Requests are plain data (struct http_request, lib/http_msg.h): the
 * provider adapters build them without any I/O and unit tests inspect them
 * field by field.
 *
 * Invariants every transport keeps (callers rely on them):
 *  - a start that returns 0 calls cb->done exactly once, on the loop thread,
 *    and never before start has returned;
 *  - a start that returns < 0 never calls cb->done and has freed nothing
 *    the caller still owns except req (always consumed);
 *  - http_cancel() calls cb->done with HTTP_E_CANCELLED before it returns
 *    (unless done already ran, in which case the handle is stale and must
 *    not be passed to cancel at all: the handle dies with done);
 *  - cb->progress, when set, is called from inside libcurl: it must not call
 *    back into any http_ function.
 *
 * Security: TLS peer and host verification are always on (there is no
 * switch to turn them off); ca_file picks the CA bundle.  Only http and
 * https are allowed, redirects are not followed (an Authorization header
 * must never travel to another host).  libcurl's proxy environment
 * (http_proxy, https_proxy, HTTPS_PROXY, all_proxy, no_proxy) is honoured
 * because nothing here sets CURLOPT_PROXY; note that libcurl ignores the
 * upper-case HTTP_PROXY on purpose (httpoxy).  Debug logs show the request
 * line and headers with Authorization and key-like headers redacted
 * ("Authorization: Bearer [redacted]"), never a key; CURLOPT_VERBOSE is
 * never set, because it would print the headers verbatim.
 */
#ifndef VT_HTTP_H
#define VT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/http_msg.h"

struct uv_loop_s;

struct http_callbacks {
    /* Called once; res is owned by the callee (free with http_response_free). */
    void (*done)(struct http_response *res, void *arg);
    /* Optional, throttled to one call per 250 ms plus the last; runs inside
     * libcurl: must not call any http_ function. */
    void (*progress)(const struct http_progress *p, void *arg);
    void *arg;
};

/* The transport seam.  Implementations embed this struct; handles are the
 * implementation's own objects, valid from start until done is called. */
struct http_transport {
    /* Consumes req.  Returns 0 and *handle, or a negative errno (-ESHUTDOWN
     * when closing, -EINVAL for an unusable request) without calling done. */
    int (*start)(struct http_transport *t, struct http_request *req,
                 const struct http_callbacks *cb, void **handle);
    /* Ends a started request: done runs with HTTP_E_CANCELLED before return. */
    void (*cancel)(struct http_transport *t, void *handle);
    /* Current transfer counters of a started request; may be NULL. */
    void (*progress)(struct http_transport *t, void *handle, struct http_progress *out);
};

/* Convenience wrappers over the function pointers. */
int http_start(struct http_transport *t, struct http_request *req, const struct http_callbacks *cb,
               void **handle);
void http_cancel(struct http_transport *t, void *handle);
/* Zeroes *out when the transport keeps no counters. */
void http_get_progress(struct http_transport *t, void *handle, struct http_progress *out);

/* ---- the libcurl glue ---- */

struct http_ctx;

/* Creates the curl context on loop (borrowed; must outlive the context).
 * Returns 0 and *out (owned; end it with http_ctx_close), or -ENOMEM /
 * -EIO when libcurl cannot be initialised (start-up error). */
int http_ctx_new(struct uv_loop_s *loop, struct http_ctx **out);
/* The transport of ctx (borrowed; lives as long as ctx). */
struct http_transport *http_ctx_transport(struct http_ctx *ctx);
/* Number of requests started and not yet done. */
unsigned http_ctx_active(const struct http_ctx *ctx);
/* Shutdown, in this order: refuse new requests; cancel every running one
 * (each done runs with HTTP_E_CANCELLED, inside this call); curl_multi_cleanup
 * (which closes cached connections); close the timer and every poll handle;
 * when the last close callback has run, call closed(arg) (may be NULL) and
 * free ctx.  ctx must not be used after this call.  Idempotent. */
void http_ctx_close(struct http_ctx *ctx, void (*closed)(void *arg), void *arg);

/* ---- per-provider concurrency ---- */

struct http_pool;

/* A pool that keeps at most max_in_flight (>= 1) requests running on inner
 * (borrowed; must outlive the pool) and queues the rest FIFO.  name is used
 * in logs.  Returns an owned pool; free with http_pool_free. */
struct http_pool *http_pool_new(struct http_transport *inner, unsigned max_in_flight,
                                const char *name);
/* The pool as a transport (borrowed; lives as long as the pool). */
struct http_transport *http_pool_transport(struct http_pool *p);
/* Changes the limit (config reload); queued requests start if room opens. */
void http_pool_set_limit(struct http_pool *p, unsigned max_in_flight);
struct http_pool_stats {
    unsigned in_flight, queued, limit;
    unsigned max_in_flight_seen; /* high-water mark of in_flight */
    uint64_t started, completed;
};
void http_pool_stats(const struct http_pool *p, struct http_pool_stats *out);
/* Cancels every queued and running request (their done callbacks run with
 * HTTP_E_CANCELLED inside this call), then frees p.  NULL is a no-op. */
void http_pool_free(struct http_pool *p);

#endif

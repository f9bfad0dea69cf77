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
 * Requests are plain data (struct http_request): the provider adapters
 * build them without any I/O and unit tests inspect them field by field.
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

struct uv_loop_s;

/* Default cap on a response body; bigger bodies end in HTTP_E_TOO_LARGE. */
#define HTTP_MAX_RESPONSE_DEFAULT (64u * 1024u * 1024u)

/* One multipart/form-data part: a text field (value) or a file streamed
 * from disk (file_path, sent with filename and content_type). */
struct http_part {
    char *name;
    char *value;        /* text field, or NULL */
    char *file_path;    /* file part, or NULL */
    char *filename;     /* file part: filename= in Content-Disposition */
    char *content_type; /* file part: NULL = application/octet-stream */
};

/* A request as plain data.  Every pointer is owned by the struct (free it
 * with http_request_free).  Either body or parts (or neither), not both. */
struct http_request {
    char *method; /* "GET", "POST", "DELETE" */
    char *url;
    char **headers; /* "Name: value" lines */
    size_t n_headers;
    char *body; /* request body (JSON), body_len bytes; Content-Type set by the builder */
    size_t body_len;
    struct http_part *parts; /* multipart/form-data */
    size_t n_parts;
    uint64_t connect_timeout_ms;   /* 0 = libcurl's default (300 s) */
    uint64_t timeout_ms;           /* whole transfer; 0 = none */
    unsigned long low_speed_limit; /* bytes/s; with low_speed_time_s: abort a stalled transfer */
    unsigned low_speed_time_s;     /* 0 = no low-speed limit */
    size_t max_response;           /* 0 = HTTP_MAX_RESPONSE_DEFAULT */
    char *ca_file;                 /* CA bundle; NULL = system default */
    int non_idempotent;            /* a create or an upload: always a fresh connection, so
                                      libcurl never resends it unseen (see http.c); a create
                                      is also never retried (workers/retry.h) */
};

/* Returns an owned request (caller frees with http_request_free, or hands
 * it to http_start which consumes it).  Copies method and url. */
struct http_request *http_request_new(const char *method, const char *url);
void http_request_free(struct http_request *r);
/* Returns an owned deep copy of r (a retry sends a copy of the template). */
struct http_request *http_request_dup(const struct http_request *r);
/* Appends "name: value" (copied); value formatted printf-style. */
void http_request_add_header(struct http_request *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Value of the first header called name (case-insensitive), borrowed; NULL if absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* Sets the body (copied) and a Content-Type header. */
void http_request_set_body(struct http_request *r, const char *content_type, const void *data,
                           size_t len);
/* Appends a multipart text field (copied). */
void http_request_add_field(struct http_request *r, const char *name, const char *value);
/* Appends a multipart file part (all copied); content_type may be NULL. */
void http_request_add_file(struct http_request *r, const char *name, const char *path,
                           const char *filename, const char *content_type);
/* The text field called name, borrowed; NULL if absent (tests). */
const char *http_request_field(const struct http_request *r, const char *name);

/* Why a request produced no usable HTTP response.  HTTP_E_NONE means a
 * status line and body arrived (whatever the status). */
enum http_error {
    HTTP_E_NONE = 0,
    HTTP_E_CONNECT,   /* resolve/connect failed: the request was not sent */
    HTTP_E_TIMEOUT,   /* connect, total or low-speed timeout */
    HTTP_E_DROPPED,   /* connection closed or reset mid-exchange; empty reply */
    HTTP_E_TLS,       /* certificate not verified / CA file unusable */
    HTTP_E_TOO_LARGE, /* response body over max_response */
    HTTP_E_CANCELLED, /* http_cancel() or shutdown */
    HTTP_E_LOCAL,     /* local problem: unreadable upload file, bad URL, no memory */
};
const char *http_error_name(enum http_error e);

/* A completed request.  Owned by the receiver of cb->done; free with
 * http_response_free. */
struct http_response {
    enum http_error error;
    int curl_code;    /* CURLcode, 0 when none */
    char *error_text; /* one line when error != HTTP_E_NONE, else NULL */
    long status;      /* HTTP status; 0 when none arrived */
    char *body;       /* NUL-terminated; body_len bytes (may contain NULs) */
    size_t body_len;
    /* Headers of interest (last header block), owned, NULL when absent. */
    char *content_type;
    char *request_id;     /* x-request-id */
    char *retry_after;    /* retry-after */
    char *retry_after_ms; /* retry-after-ms */
    char *should_retry;   /* x-should-retry */
    uint64_t elapsed_ms;
    uint64_t bytes_sent;  /* request body bytes uploaded */
    int http_version;     /* 1 or 2 (0 unknown) */
    long new_connections; /* connections opened for this request (0 = reused) */
};
/* Returns an owned, zeroed response (transports and fakes build with it). */
struct http_response *http_response_new(void);
void http_response_free(struct http_response *r);

struct http_progress {
    uint64_t up_now, up_total; /* total 0 = unknown */
    uint64_t down_now, down_total;
};

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

/* ---- helpers (pure; exported for the adapters and tests) ---- */

/* Writes hdr ("Name: value") into out with the value replaced when the
 * header carries a secret: "Authorization: Bearer [redacted]" (the scheme
 * word is kept), "X-Api-Key: [redacted]", ... Returns out. */
char *http_redact_header(const char *hdr, char *out, size_t outlen);
/* Percent-encodes s for a URL path segment or query component (RFC 3986
 * unreserved characters kept).  Returns an owned string; caller frees. */
char *http_escape(const char *s);

#endif

/*
 * http.c — libcurl multi ⇄ libuv glue and the per-provider pool (see
 * http.h for the contracts; requests and responses are lib/http_msg.c).
 *
 * The glue follows curl's multi + libuv example and avoids the bugs its
 * issue history lists:
 *  - one struct http_ctx holds the CURLM, the single uv_timer_t and the list
 *    of sockets; one struct http_sock (with its uv_poll_t) per curl socket,
 *    attached to curl with curl_multi_assign so the socket callback finds it;
 *  - a timeout of 0 ms from CURLMOPT_TIMERFUNCTION becomes 1 ms: calling
 *    curl_multi_socket_action from inside curl's own callback is forbidden;
 *  - a poll error (status < 0) is passed on as CURL_CSELECT_ERR so curl
 *    fails the transfer instead of spinning;
 *  - completion messages are drained after every curl_multi_socket_action;
 *  - uv_poll_stop runs at CURL_POLL_REMOVE (synchronously, so a new socket
 *    that reuses the fd number can get its own poll at once) and the
 *    struct is freed only in the close callback;
 *  - the context stays alive until curl_multi_cleanup has returned (it
 *    calls the socket callback for cached connections) and every close
 *    callback has run; only then is closed() called and ctx freed.
 * A callback a user registered (done, progress) never runs inside a libuv
 * handle that is being freed; done runs from the drain, outside libcurl,
 * so it may start or cancel requests (even close the context).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "daemon/http.h"
#include "lib/log.h"
#include "lib/util.h"

#define PROGRESS_INTERVAL_MS 250


/* A response for a request that never reached the network (or was
 * cancelled before it finished); owned. */
static struct http_response *local_response(enum http_error e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct http_response *local_response(enum http_error e, const char *fmt, ...)
{
    struct http_response *r = http_response_new();
    va_list ap;
    r->error = e;
    va_start(ap, fmt);
    if (vasprintf(&r->error_text, fmt, ap) < 0)
        abort();
    va_end(ap);
    r->body = xstrdup("");
    return r;
}

int http_start(struct http_transport *t, struct http_request *req, const struct http_callbacks *cb,
               void **handle)
{
    return t->start(t, req, cb, handle);
}

void http_cancel(struct http_transport *t, void *handle)
{
    t->cancel(t, handle);
}

void http_get_progress(struct http_transport *t, void *handle, struct http_progress *out)
{
    memset(out, 0, sizeof *out);
    if (t->progress)
        t->progress(t, handle, out);
}


/* ------------------------------------------------------------------ */
/* The curl glue                                                       */
/* ------------------------------------------------------------------ */

struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_ctx *ctx;
    struct http_sock *prev, *next;
    int closing;
};

struct http_call {
    struct http_ctx *ctx;
    struct http_call *prev, *next;
    CURL *easy;
    struct http_request *req;
    struct curl_slist *hdrs;
    curl_mime *mime;
    struct http_callbacks cb;
    struct buf body;
    struct http_response *res; /* headers collected as they arrive */
    size_t max_response;
    int too_large;
    uint64_t started_ms;
    struct http_progress prog;
    uint64_t last_report_ms;
    int reported_final;
    char errbuf[CURL_ERROR_SIZE];
};

struct http_ctx {
    struct http_transport tr; /* first: the transport is the context */
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct http_call *calls;
    unsigned n_calls;
    struct http_sock *socks;
    unsigned open_handles; /* timer + polls not yet closed */
    int closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

static unsigned curl_users; /* contexts alive: curl_global_{init,cleanup} */

static void drain(struct http_ctx *ctx);
static void call_finish(struct http_call *c, CURLcode result);

static void ctx_maybe_free(struct http_ctx *ctx)
{
    if (!ctx->closing || ctx->open_handles > 0 || ctx->multi)
        return;
    void (*closed)(void *) = ctx->closed;
    void *arg = ctx->closed_arg;
    free(ctx);
    if (--curl_users == 0)
        curl_global_cleanup();
    if (closed)
        closed(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_ctx *ctx;
    if (h->type == UV_POLL) {
        struct http_sock *s = h->data;
        ctx = s->ctx;
        if (s->prev)
            s->prev->next = s->next;
        else
            ctx->socks = s->next;
        if (s->next)
            s->next->prev = s->prev;
        free(s);
    } else {
        ctx = h->data;
    }
    ctx->open_handles--;
    ctx_maybe_free(ctx);
}

static void sock_close(struct http_sock *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct http_sock *s = h->data;
    struct http_ctx *ctx = s->ctx;
    curl_socket_t fd = s->fd;
    int flags = 0, running = 0;

    if (!ctx->multi)
        return;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & (UV_READABLE | UV_DISCONNECT))
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* s may be closed (but not freed) inside this call. */
    curl_multi_socket_action(ctx->multi, fd, flags, &running);
    drain(ctx);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_ctx *ctx = userp;
    struct http_sock *s = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            /* During curl_multi_cleanup the multi is being torn down: no assign. */
            if (!ctx->closing)
                curl_multi_assign(ctx->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        if (ctx->closing)
            return -1;
        s = xcalloc(1, sizeof *s);
        s->fd = fd;
        s->ctx = ctx;
        int r = uv_poll_init_socket(ctx->loop, &s->poll, fd);
        if (r < 0) {
            log_warnx("http: cannot watch socket %d: %s", (int)fd, uv_strerror(r));
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = ctx->socks;
        if (ctx->socks)
            ctx->socks->prev = s;
        ctx->socks = s;
        ctx->open_handles++;
        curl_multi_assign(ctx->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int r = uv_poll_start(&s->poll, events, on_poll);
    if (r < 0) {
        log_warnx("http: cannot poll socket %d: %s", (int)fd, uv_strerror(r));
        return -1;
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct http_ctx *ctx = t->data;
    int running = 0;
    if (!ctx->multi)
        return;
    curl_multi_socket_action(ctx->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(ctx);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_ctx *ctx = userp;
    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&ctx->timer);
        return 0;
    }
    if (ctx->closing)
        return 0;
    /* 0 means "act now", but curl must not be re-entered from here. */
    uv_timer_start(&ctx->timer, on_timer, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
    return 0;
}

static void drain(struct http_ctx *ctx)
{
    CURLMsg *msg;
    int pending;
    /* ctx->multi is rechecked each time: a done callback may close ctx. */
    while (ctx->multi && (msg = curl_multi_info_read(ctx->multi, &pending)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result; /* msg dies with remove_handle */
        struct http_call *c = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        call_finish(c, result);
    }
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_call *c = arg;
    size_t n = size * nmemb;
    if (c->body.len + n > c->max_response) {
        c->too_large = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    buf_append(&c->body, data, n);
    return n;
}

static void set_header(char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = xstrndup(v, n);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_call *c = arg;
    size_t n = size * nmemb;
    struct http_response *r = c->res;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new header block (after 100 Continue or a 1xx): start over. */
        free(r->content_type);
        free(r->request_id);
        free(r->retry_after);
        free(r->retry_after_ms);
        free(r->should_retry);
        r->content_type = r->request_id = r->retry_after = r->retry_after_ms = r->should_retry =
            NULL;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    static const struct {
        const char *name;
        size_t off;
    } want[] = {
        {"content-type", offsetof(struct http_response, content_type)},
        {"x-request-id", offsetof(struct http_response, request_id)},
        {"retry-after", offsetof(struct http_response, retry_after)},
        {"retry-after-ms", offsetof(struct http_response, retry_after_ms)},
        {"x-should-retry", offsetof(struct http_response, should_retry)},
    };
    for (size_t i = 0; i < VT_ARRAY_LEN(want); i++)
        if (strlen(want[i].name) == nlen && strncasecmp(data, want[i].name, nlen) == 0)
            set_header((char **)((char *)r + want[i].off), v, vlen);
    return n;
}

static void report_progress(struct http_call *c, int final)
{
    if (!c->cb.progress)
        return;
    c->cb.progress(&c->prog, c->cb.arg);
    c->last_report_ms = now_monotonic_ms();
    if (final)
        c->reported_final = 1;
}

static int on_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct http_call *c = arg;
    struct http_progress old = c->prog;
    c->prog.down_total = dltotal > 0 ? (uint64_t)dltotal : 0;
    c->prog.down_now = dlnow > 0 ? (uint64_t)dlnow : 0;
    c->prog.up_total = ultotal > 0 ? (uint64_t)ultotal : 0;
    c->prog.up_now = ulnow > 0 ? (uint64_t)ulnow : 0;
    if (c->cb.progress && memcmp(&old, &c->prog, sizeof old) != 0 &&
        now_monotonic_ms() - c->last_report_ms >= PROGRESS_INTERVAL_MS)
        report_progress(c, 0);
    return 0;
}

static enum http_error map_curl_error(CURLcode rc, int too_large)
{
    switch (rc) {
    case CURLE_OK:
        return HTTP_E_NONE;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return HTTP_E_CONNECT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return HTTP_E_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return HTTP_E_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return too_large ? HTTP_E_TOO_LARGE : HTTP_E_LOCAL;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_READ_ERROR:
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return HTTP_E_LOCAL;
    default:
        /* GOT_NOTHING, SEND_ERROR, RECV_ERROR, PARTIAL_FILE, HTTP2,
         * HTTP2_STREAM, WEIRD_SERVER_REPLY and anything unforeseen: the
         * exchange broke off; a transient failure. */
        return HTTP_E_DROPPED;
    }
}

static void call_unlink(struct http_call *c)
{
    struct http_ctx *ctx = c->ctx;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctx->n_calls--;
}

static void call_free(struct http_call *c)
{
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->hdrs);
    curl_mime_free(c->mime);
    http_request_free(c->req);
    http_response_free(c->res);
    buf_free(&c->body);
    free(c);
}

/* Ends c (removing it from the multi), builds the response and calls done.
 * result CURLE_ABORTED_BY_CALLBACK here means "cancelled by us". */
static void call_finish_as(struct http_call *c, CURLcode result, int cancelled)
{
    struct http_ctx *ctx = c->ctx;
    struct http_response *r = c->res;
    long v = 0;
    curl_off_t off = 0;

    if (ctx->multi)
        curl_multi_remove_handle(ctx->multi, c->easy);
    call_unlink(c);
    c->res = NULL;

    r->curl_code = (int)result;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &v) == CURLE_OK)
        r->http_version = v == CURL_HTTP_VERSION_2_0 ? 2 : v ? 1 : 0;
    if (curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &v) == CURLE_OK)
        r->new_connections = v;
    if (curl_easy_getinfo(c->easy, CURLINFO_SIZE_UPLOAD_T, &off) == CURLE_OK && off > 0)
        r->bytes_sent = (uint64_t)off;
    /* Final counters (libcurl's last progress call may predate the end). */
    c->prog.up_now = r->bytes_sent;
    if (!c->prog.up_total &&
        curl_easy_getinfo(c->easy, CURLINFO_CONTENT_LENGTH_UPLOAD_T, &off) == CURLE_OK && off > 0)
        c->prog.up_total = (uint64_t)off;
    c->prog.down_now = c->body.len;
    r->elapsed_ms = now_monotonic_ms() - c->started_ms;
    if (cancelled) {
        r->error = HTTP_E_CANCELLED;
        r->error_text = xasprintf("%s %s: cancelled", c->req->method, c->req->url);
    } else {
        r->error = map_curl_error(result, c->too_large);
        if (r->error == HTTP_E_TOO_LARGE)
            r->error_text = xasprintf("%s %s: response larger than %zu bytes", c->req->method,
                                      c->req->url, c->max_response);
        else if (r->error != HTTP_E_NONE)
            r->error_text = xasprintf("%s %s: %s", c->req->method, c->req->url,
                                      c->errbuf[0] ? c->errbuf : curl_easy_strerror(result));
    }
    buf_append(&c->body, "", 0); /* always a NUL-terminated body */
    r->body_len = c->body.len;
    r->body = c->body.data;
    buf_init(&c->body);

    if (r->error == HTTP_E_NONE)
        log_debug("http: < %ld %s %s (%zu bytes, %" PRIu64 " ms%s%s%s)", r->status, c->req->method,
                  c->req->url, r->body_len, r->elapsed_ms, r->request_id ? ", x-request-id " : "",
                  r->request_id ? r->request_id : "", r->new_connections ? ", new connection" : "");
    else
        log_debug("http: < %s (%s)", r->error_text, http_error_name(r->error));
    if (!cancelled && !c->reported_final && c->cb.progress)
        report_progress(c, 1);
    struct http_callbacks cb = c->cb;
    call_free(c);
    cb.done(r, cb.arg);
}

static void call_finish(struct http_call *c, CURLcode result)
{
    call_finish_as(c, result, 0);
}

static void log_request(const struct http_request *req)
{
    if (log_get_level() > LOG_LVL_DEBUG)
        return;
    struct buf b;
    char line[512];
    buf_init(&b);
    buf_printf(&b, "http: > %s %s", req->method, req->url);
    for (size_t i = 0; i < req->n_headers; i++)
        buf_printf(&b, " | %s", http_redact_header(req->headers[i], line, sizeof line));
    if (req->body)
        buf_printf(&b, " | body %zu bytes", req->body_len);
    for (size_t i = 0; i < req->n_parts; i++) {
        if (req->parts[i].file_path)
            buf_printf(&b, " | part %s=@%s", req->parts[i].name, req->parts[i].file_path);
        else
            buf_printf(&b, " | part %s=%s", req->parts[i].name, req->parts[i].value);
    }
    log_debug("%s", b.data);
    buf_free(&b);
}

/* Checks that every file part is a readable regular file. */
static int check_parts(const struct http_request *req)
{
    for (size_t i = 0; i < req->n_parts; i++) {
        const char *path = req->parts[i].file_path;
        struct stat st;
        if (!path)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            log_warnx("http: cannot read upload file %s: %s", path, strerror(e));
            return -e;
        }
        int r = fstat(fd, &st);
        int e = errno;
        close(fd);
        if (r < 0)
            return -e;
        if (!S_ISREG(st.st_mode)) {
            log_warnx("http: upload file %s is not a regular file", path);
            return -EINVAL;
        }
    }
    return 0;
}

#define SETOPT(c, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((c)->easy, opt, val) != CURLE_OK) {                                   \
            log_warnx("http: curl_easy_setopt(%s) failed", #opt);                                  \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static int setup_mime(struct http_call *c)
{
    c->mime = curl_mime_init(c->easy);
    if (!c->mime)
        return -ENOMEM;
    for (size_t i = 0; i < c->req->n_parts; i++) {
        const struct http_part *p = &c->req->parts[i];
        curl_mimepart *mp = curl_mime_addpart(c->mime);
        if (!mp || curl_mime_name(mp, p->name) != CURLE_OK)
            return -ENOMEM;
        if (p->file_path) {
            /* Streams from disk at transfer time: nothing is read here. */
            if (curl_mime_filedata(mp, p->file_path) != CURLE_OK ||
                curl_mime_filename(mp, p->filename) != CURLE_OK ||
                curl_mime_type(mp, p->content_type ? p->content_type
                                                   : "application/octet-stream") != CURLE_OK)
                return -EIO;
        } else if (curl_mime_data(mp, p->value, CURL_ZERO_TERMINATED) != CURLE_OK) {
            return -ENOMEM;
        }
    }
    return 0;
}

static int ctx_start(struct http_transport *t, struct http_request *req,
                     const struct http_callbacks *cb, void **handle)
{
    struct http_ctx *ctx = (struct http_ctx *)t;
    struct http_call *c = NULL;
    int r = -EINVAL;

    if (ctx->closing) {
        http_request_free(req);
        return -ESHUTDOWN;
    }
    if (!req->method || !req->url || !cb || !cb->done || (req->body && req->n_parts)) {
        http_request_free(req);
        return -EINVAL;
    }
    if ((r = check_parts(req)) < 0) {
        http_request_free(req);
        return r;
    }
    c = xcalloc(1, sizeof *c);
    c->ctx = ctx;
    c->req = req;
    c->cb = *cb;
    c->res = http_response_new();
    c->max_response = req->max_response ? req->max_response : HTTP_MAX_RESPONSE_DEFAULT;
    buf_init(&c->body);
    r = -ENOMEM;
    if (!(c->easy = curl_easy_init()))
        goto fail;
    r = -EIO; /* any setopt failure below */

    SETOPT(c, CURLOPT_URL, req->url);
    SETOPT(c, CURLOPT_PRIVATE, (char *)c);
    SETOPT(c, CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form; the bitmask is deprecated */
    SETOPT(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Never off: there is deliberately no option to disable verification. */
    SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file)
        SETOPT(c, CURLOPT_CAINFO, req->ca_file);
    SETOPT(c, CURLOPT_TCP_KEEPALIVE, 1L);
    /* libcurl silently resends a request whose reused connection turns out
     * dead before any reply byte (up to 5 times).  For a create that would
     * be a blind retry, possibly a second paid job: creates always get a
     * fresh connection, where libcurl never does that. */
    if (req->non_idempotent)
        SETOPT(c, CURLOPT_FRESH_CONNECT, 1L);
    SETOPT(c, CURLOPT_USERAGENT, "vtuned/" PACKAGE_VERSION);
    SETOPT(c, CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(c, CURLOPT_WRITEDATA, c);
    SETOPT(c, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(c, CURLOPT_HEADERDATA, c);
    SETOPT(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    SETOPT(c, CURLOPT_XFERINFODATA, c);
    SETOPT(c, CURLOPT_NOPROGRESS, 0L);
    SETOPT(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
    if (req->connect_timeout_ms)
        SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->timeout_ms)
        SETOPT(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->low_speed_time_s) {
        SETOPT(c, CURLOPT_LOW_SPEED_LIMIT, (long)req->low_speed_limit);
        SETOPT(c, CURLOPT_LOW_SPEED_TIME, (long)req->low_speed_time_s);
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        struct curl_slist *n = curl_slist_append(c->hdrs, req->headers[i]);
        if (!n)
            goto fail;
        c->hdrs = n;
    }
    if (c->hdrs)
        SETOPT(c, CURLOPT_HTTPHEADER, c->hdrs);

    if (req->n_parts) {
        if ((r = setup_mime(c)) < 0)
            goto fail;
        r = -EIO;
        SETOPT(c, CURLOPT_MIMEPOST, c->mime);
        if (strcmp(req->method, "POST") != 0)
            SETOPT(c, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (strcmp(req->method, "GET") == 0) {
        SETOPT(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "POST") == 0 || req->body) {
        SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (strcmp(req->method, "POST") != 0)
            SETOPT(c, CURLOPT_CUSTOMREQUEST, req->method);
    } else {
        SETOPT(c, CURLOPT_CUSTOMREQUEST, req->method);
    }

    log_request(req);
    c->started_ms = now_monotonic_ms();
    c->last_report_ms = c->started_ms;
    c->next = ctx->calls;
    if (ctx->calls)
        ctx->calls->prev = c;
    ctx->calls = c;
    ctx->n_calls++;
    if (curl_multi_add_handle(ctx->multi, c->easy) != CURLM_OK) {
        call_unlink(c);
        r = -EIO;
        goto fail;
    }
    if (handle)
        *handle = c;
    return 0;

fail:
    call_free(c);
    return r;
}

static void ctx_cancel(struct http_transport *t, void *handle)
{
    (void)t;
    call_finish_as(handle, CURLE_ABORTED_BY_CALLBACK, 1);
}

static void ctx_progress(struct http_transport *t, void *handle, struct http_progress *out)
{
    (void)t;
    *out = ((struct http_call *)handle)->prog;
}

int http_ctx_new(struct uv_loop_s *loop, struct http_ctx **out)
{
    struct http_ctx *ctx;
    if (curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_warnx("http: curl_global_init failed");
        return -EIO;
    }
    curl_users++;
    ctx = xcalloc(1, sizeof *ctx);
    ctx->tr.start = ctx_start;
    ctx->tr.cancel = ctx_cancel;
    ctx->tr.progress = ctx_progress;
    ctx->loop = loop;
    if (!(ctx->multi = curl_multi_init())) {
        free(ctx);
        if (--curl_users == 0)
            curl_global_cleanup();
        return -ENOMEM;
    }
    curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(ctx->multi, CURLMOPT_SOCKETDATA, ctx);
    curl_multi_setopt(ctx->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(ctx->multi, CURLMOPT_TIMERDATA, ctx);
    /* Multiplex over HTTP/2 where offered; keep-alive is the multi's
     * connection cache (shared by every request of this context). */
    curl_multi_setopt(ctx->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    uv_timer_init(loop, &ctx->timer);
    ctx->timer.data = ctx;
    ctx->open_handles = 1;
    *out = ctx;
    return 0;
}

struct http_transport *http_ctx_transport(struct http_ctx *ctx)
{
    return &ctx->tr;
}

unsigned http_ctx_active(const struct http_ctx *ctx)
{
    return ctx->n_calls;
}

void http_ctx_close(struct http_ctx *ctx, void (*closed)(void *arg), void *arg)
{
    if (ctx->closing)
        return;
    ctx->closing = 1;
    ctx->closed = closed;
    ctx->closed_arg = arg;
    /* Done callbacks may start requests: they are refused (closing). */
    while (ctx->calls)
        call_finish_as(ctx->calls, CURLE_ABORTED_BY_CALLBACK, 1);
    /* Closes cached connections; the socket callback closes their polls. */
    curl_multi_cleanup(ctx->multi);
    ctx->multi = NULL;
    /* A socket curl never reported as removed must not leak its handle. */
    for (struct http_sock *s = ctx->socks; s; s = s->next)
        sock_close(s);
    uv_timer_stop(&ctx->timer);
    uv_close((uv_handle_t *)&ctx->timer, on_handle_closed);
}

/* ------------------------------------------------------------------ */
/* The pool                                                            */
/* ------------------------------------------------------------------ */

struct pool_entry {
    struct http_pool *pool;
    struct pool_entry *prev, *next;
    struct http_request *req; /* while queued */
    struct http_callbacks cb;
    void *inner; /* inner handle while running */
    int running;
};

struct http_pool {
    struct http_transport tr; /* first */
    struct http_transport *inner;
    char *name;
    unsigned limit, in_flight, max_seen;
    struct pool_entry *q_head, *q_tail;
    struct pool_entry *running;
    uint64_t started, completed;
    unsigned depth; /* user callbacks on the stack */
    int freeing, pumping;
};

static void list_remove(struct pool_entry **head, struct pool_entry **tail, struct pool_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        *head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else if (tail)
        *tail = e->prev;
    e->prev = e->next = NULL;
}

static void pool_maybe_free(struct http_pool *p)
{
    if (p->freeing && p->depth == 0 && !p->running && !p->q_head) {
        free(p->name);
        free(p);
    }
}

static void pool_deliver(struct http_pool *p, struct pool_entry *e, struct http_response *res)
{
    struct http_callbacks cb = e->cb;
    free(e);
    p->completed++;
    p->depth++;
    cb.done(res, cb.arg);
    p->depth--;
}

static void pool_pump(struct http_pool *p);

static void entry_done(struct http_response *res, void *arg)
{
    struct pool_entry *e = arg;
    struct http_pool *p = e->pool;
    p->in_flight--;
    list_remove(&p->running, NULL, e);
    p->depth++;
    pool_deliver(p, e, res);
    pool_pump(p);
    p->depth--;
    pool_maybe_free(p);
}

static void entry_progress(const struct http_progress *pr, void *arg)
{
    struct pool_entry *e = arg;
    if (e->cb.progress)
        e->cb.progress(pr, e->cb.arg);
}

/* Starts e on the inner transport; returns its result. */
static int entry_run(struct http_pool *p, struct pool_entry *e)
{
    struct http_callbacks icb = {
        .done = entry_done, .progress = e->cb.progress ? entry_progress : NULL, .arg = e};
    struct http_request *req = e->req;
    e->req = NULL;
    e->running = 1;
    e->next = p->running;
    e->prev = NULL;
    if (p->running)
        p->running->prev = e;
    p->running = e;
    p->in_flight++;
    int r = p->inner->start(p->inner, req, &icb, &e->inner);
    if (r < 0) {
        p->in_flight--;
        list_remove(&p->running, NULL, e);
        e->running = 0;
        return r;
    }
    p->started++;
    if (p->in_flight > p->max_seen)
        p->max_seen = p->in_flight;
    return 0;
}

static void pool_pump(struct http_pool *p)
{
    if (p->pumping)
        return;
    p->pumping = 1;
    while (!p->freeing && p->q_head && p->in_flight < p->limit) {
        struct pool_entry *e = p->q_head;
        list_remove(&p->q_head, &p->q_tail, e);
        int r = entry_run(p, e);
        if (r < 0) {
            struct http_response *res =
                r == -ESHUTDOWN ? local_response(HTTP_E_CANCELLED, "%s: shutting down", p->name)
                                : local_response(HTTP_E_LOCAL, "%s: cannot start request: %s",
                                                 p->name, strerror(-r));
            pool_deliver(p, e, res);
        }
    }
    p->pumping = 0;
}

static int pool_start(struct http_transport *t, struct http_request *req,
                      const struct http_callbacks *cb, void **handle)
{
    struct http_pool *p = (struct http_pool *)t;
    if (p->freeing) {
        http_request_free(req);
        return -ESHUTDOWN;
    }
    if (!cb || !cb->done) {
        http_request_free(req);
        return -EINVAL;
    }
    struct pool_entry *e = xcalloc(1, sizeof *e);
    e->pool = p;
    e->req = req;
    e->cb = *cb;
    if (!p->q_head && p->in_flight < p->limit) {
        int r = entry_run(p, e);
        if (r < 0) {
            free(e);
            return r;
        }
    } else {
        e->prev = p->q_tail;
        if (p->q_tail)
            p->q_tail->next = e;
        else
            p->q_head = e;
        p->q_tail = e;
    }
    if (handle)
        *handle = e;
    return 0;
}

static void pool_cancel(struct http_transport *t, void *handle)
{
    struct http_pool *p = (struct http_pool *)t;
    struct pool_entry *e = handle;
    if (e->running) {
        /* entry_done runs inside, delivers CANCELLED and pumps. */
        p->inner->cancel(p->inner, e->inner);
        return;
    }
    list_remove(&p->q_head, &p->q_tail, e);
    http_request_free(e->req);
    e->req = NULL;
    p->depth++;
    pool_deliver(p, e, local_response(HTTP_E_CANCELLED, "%s: cancelled while queued", p->name));
    p->depth--;
    pool_maybe_free(p);
}

static void pool_progress(struct http_transport *t, void *handle, struct http_progress *out)
{
    struct http_pool *p = (struct http_pool *)t;
    struct pool_entry *e = handle;
    memset(out, 0, sizeof *out);
    if (e->running && p->inner->progress)
        p->inner->progress(p->inner, e->inner, out);
}

struct http_pool *http_pool_new(struct http_transport *inner, unsigned max_in_flight,
                                const char *name)
{
    struct http_pool *p = xcalloc(1, sizeof *p);
    p->tr.start = pool_start;
    p->tr.cancel = pool_cancel;
    p->tr.progress = pool_progress;
    p->inner = inner;
    p->limit = max_in_flight ? max_in_flight : 1;
    p->name = xstrdup(name ? name : "http");
    return p;
}

struct http_transport *http_pool_transport(struct http_pool *p)
{
    return &p->tr;
}

void http_pool_set_limit(struct http_pool *p, unsigned max_in_flight)
{
    p->limit = max_in_flight ? max_in_flight : 1;
    p->depth++;
    pool_pump(p);
    p->depth--;
    pool_maybe_free(p);
}

void http_pool_stats(const struct http_pool *p, struct http_pool_stats *out)
{
    unsigned q = 0;
    for (const struct pool_entry *e = p->q_head; e; e = e->next)
        q++;
    out->in_flight = p->in_flight;
    out->queued = q;
    out->limit = p->limit;
    out->max_in_flight_seen = p->max_seen;
    out->started = p->started;
    out->completed = p->completed;
}

void http_pool_free(struct http_pool *p)
{
    if (!p || p->freeing)
        return;
    p->freeing = 1;
    p->depth++;
    while (p->q_head)
        pool_cancel(&p->tr, p->q_head);
    while (p->running)
        p->inner->cancel(p->inner, p->running->inner);
    p->depth--;
    pool_maybe_free(p);
}

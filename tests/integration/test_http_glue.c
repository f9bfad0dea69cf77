/*
 * test_http_glue.c — drives daemon/http on a real uv loop against the
 * loopback server of test_http.sh (run through that script).
 *
 * usage: test_http_glue BASE_URL [HTTPS_BASE_URL CA_FILE]
 *
 * Each scenario starts requests, then runs the loop until they have all
 * completed or a deadline passes (a watchdog timer, never a bare sleep).
 * Prints "ok - …" / "not ok - …" and "# …" figures; exits 0 when all
 * passed.  Logs at debug level to stderr, where the script checks the
 * redaction of the Authorization header (VT_TEST_KEY is the key).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "daemon/http.h"
#include "lib/log.h"
#include "lib/util.h"

static uv_loop_t *loop;
static struct http_ctx *ctx;
static const char *base;
static int failures, checks;

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    checks++;
    if (!cond)
        failures++;
    printf("%s - ", cond ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ---- running the loop with a deadline ---- */

static int expired;
static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    expired = 1;
}

/* Runs the loop until *counter >= target or timeout_ms passes; returns 1
 * when the target was reached. */
static int run_until(const unsigned *counter, unsigned target, uint64_t timeout_ms)
{
    uv_timer_t wd;
    uv_timer_init(loop, &wd);
    expired = 0;
    uv_timer_start(&wd, on_watchdog, timeout_ms, 0);
    while (*counter < target && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&wd);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *counter >= target;
}

static void run_for(uint64_t ms)
{
    unsigned never = 0;
    run_until(&never, 1, ms);
}

/* ---- one request, waited for ---- */

struct slot {
    struct http_response *res;
    unsigned *counter;
    int index;
    unsigned progress_calls;
    struct http_progress last;
};

static void on_done(struct http_response *res, void *arg)
{
    struct slot *s = arg;
    if (s->res) {
        fprintf(stderr, "done called twice for slot %d\n", s->index);
        abort();
    }
    s->res = res;
    (*s->counter)++;
}

static void on_progress(const struct http_progress *p, void *arg)
{
    struct slot *s = arg;
    s->progress_calls++;
    s->last = *p;
}

static struct http_response *fetch(struct http_transport *t, struct http_request *req,
                                   uint64_t timeout_ms)
{
    unsigned n = 0;
    struct slot s = {.counter = &n};
    struct http_callbacks cb = {.done = on_done, .arg = &s};
    if (http_start(t, req, &cb, NULL) < 0)
        return NULL;
    if (!run_until(&n, 1, timeout_ms)) {
        fprintf(stderr, "fetch %s timed out\n", "request");
        abort();
    }
    return s.res;
}

static char *url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *url(const char *fmt, ...)
{
    va_list ap;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, base);
    char *tail = NULL;
    va_start(ap, fmt);
    if (vasprintf(&tail, fmt, ap) < 0)
        abort();
    va_end(ap);
    buf_puts(&b, tail);
    free(tail);
    return b.data;
}

static struct http_request *get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct http_request *get(const char *fmt, ...)
{
    va_list ap;
    char *tail = NULL;
    va_start(ap, fmt);
    if (vasprintf(&tail, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *u = url("%s", tail);
    struct http_request *r = http_request_new("GET", u);
    free(u);
    free(tail);
    r->timeout_ms = 30000;
    return r;
}

static json_t *server_stats(void)
{
    struct http_response *res = fetch(http_ctx_transport(ctx), get("/stats"), 10000);
    json_t *j = res ? json_loads(res->body, 0, NULL) : NULL;
    http_response_free(res);
    return j;
}

static void server_reset(void)
{
    struct http_request *r = get("/reset");
    free(r->method);
    r->method = xstrdup("POST");
    http_response_free(fetch(http_ctx_transport(ctx), r, 10000));
}

static long stat_of(json_t *j, const char *k)
{
    return (long)json_integer_value(json_object_get(j, k));
}

/* ---- scenarios ---- */

static void test_pool_200(void)
{
    enum { N = 200, LIMIT = 8, MS = 50 };
    struct http_pool *pool = http_pool_new(http_ctx_transport(ctx), LIMIT, "test");
    struct slot *s = xcalloc(N, sizeof *s);
    unsigned done = 0;
    server_reset();
    uint64_t t0 = now_monotonic_ms();
    for (int i = 0; i < N; i++) {
        s[i].counter = &done;
        s[i].index = i;
        struct http_callbacks cb = {.done = on_done, .arg = &s[i]};
        int r = http_start(http_pool_transport(pool), get("/slow?ms=%d&id=%d", MS, i), &cb, NULL);
        if (r < 0)
            abort();
    }
    struct http_pool_stats st;
    http_pool_stats(pool, &st);
    check(st.in_flight == LIMIT && st.queued == N - LIMIT,
          "pool: %u in flight and %u queued right after 200 submissions", st.in_flight, st.queued);
    int all = run_until(&done, N, 60000);
    uint64_t elapsed = now_monotonic_ms() - t0;
    check(all, "pool: all %d requests completed", N);
    int good = 0;
    long conns = 0;
    for (int i = 0; i < N; i++) {
        json_t *j = s[i].res ? json_loads(s[i].res->body, 0, NULL) : NULL;
        if (s[i].res && s[i].res->error == HTTP_E_NONE && s[i].res->status == 200 && j &&
            json_integer_value(json_object_get(j, "id")) == i && s[i].res->request_id &&
            strcmp(s[i].res->request_id, "req-") > 0)
            good++;
        if (s[i].res)
            conns += s[i].res->new_connections;
        json_decref(j);
        http_response_free(s[i].res);
    }
    check(good == N, "pool: %d/%d answered 200 with their own id and x-request-id", good, N);
    http_pool_stats(pool, &st);
    check(st.max_in_flight_seen == LIMIT && st.in_flight == 0 && st.queued == 0 &&
              st.completed == N,
          "pool: high-water mark %u (limit %d), %" PRIu64 " completed", st.max_in_flight_seen,
          LIMIT, st.completed);
    json_t *ss = server_stats();
    long smax = stat_of(ss, "max_in_flight");
    check(smax <= LIMIT && smax >= 2, "server saw at most %ld in flight (limit %d)", smax, LIMIT);
    printf("# pool: %d requests of %d ms, limit %d: %" PRIu64
           " ms (ideal %d ms), server max in flight %ld, %ld connections opened\n",
           N, MS, LIMIT, elapsed, N / LIMIT * MS, smax, conns);
    json_decref(ss);
    free(s);
    http_pool_free(pool);
}

static void test_unbounded_200(void)
{
    enum { N = 200, MS = 300 };
    struct slot *s = xcalloc(N, sizeof *s);
    unsigned done = 0;
    server_reset();
    uint64_t t0 = now_monotonic_ms();
    for (int i = 0; i < N; i++) {
        s[i].counter = &done;
        s[i].index = i;
        struct http_callbacks cb = {.done = on_done, .arg = &s[i]};
        if (http_start(http_ctx_transport(ctx), get("/slow?ms=%d&id=%d", MS, i), &cb, NULL) < 0)
            abort();
    }
    check(http_ctx_active(ctx) == N, "ctx: %u active after starting %d", http_ctx_active(ctx), N);
    int all = run_until(&done, N, 60000);
    uint64_t elapsed = now_monotonic_ms() - t0;
    int good = 0;
    for (int i = 0; i < N; i++) {
        if (s[i].res && s[i].res->error == HTTP_E_NONE && s[i].res->status == 200)
            good++;
        http_response_free(s[i].res);
    }
    json_t *ss = server_stats();
    long smax = stat_of(ss, "max_in_flight");
    check(all && good == N, "ctx: %d/%d concurrent requests answered 200", good, N);
    /* One after another would take N·MS = 60 s. */
    check(elapsed < 15000, "ctx: %d requests of %d ms ran concurrently: %" PRIu64 " ms", N, MS,
          elapsed);
    printf("# unbounded: %d concurrent requests of %d ms: %" PRIu64
           " ms, server max in flight %ld\n",
           N, MS, elapsed, smax);
    json_decref(ss);
    free(s);
}

static void test_timeouts(void)
{
    struct http_request *r = get("/hang?s=20");
    r->timeout_ms = 300;
    uint64_t t0 = now_monotonic_ms();
    struct http_response *res = fetch(http_ctx_transport(ctx), r, 10000);
    uint64_t el = now_monotonic_ms() - t0;
    check(res && res->error == HTTP_E_TIMEOUT && el >= 250 && el < 5000,
          "total timeout 300 ms fired after %" PRIu64 " ms (%s: %s)", el,
          res ? http_error_name(res->error) : "-", res && res->error_text ? res->error_text : "");
    http_response_free(res);

    r = get("/trickle");
    r->timeout_ms = 30000;
    r->low_speed_limit = 1000;
    r->low_speed_time_s = 1;
    t0 = now_monotonic_ms();
    res = fetch(http_ctx_transport(ctx), r, 15000);
    el = now_monotonic_ms() - t0;
    check(res && res->error == HTTP_E_TIMEOUT && el >= 900 && el < 8000,
          "low-speed limit (1000 B/s for 1 s) aborted a trickle after %" PRIu64 " ms", el);
    http_response_free(res);
}

static void test_connect_errors(void)
{
    /* A port that was free a moment ago: bind, read it, close. */
    uv_tcp_t tcp;
    struct sockaddr_in sa;
    struct sockaddr_storage sst;
    int len = sizeof sst;
    uv_tcp_init(loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_bind(&tcp, (const struct sockaddr *)&sa, 0);
    uv_tcp_getsockname(&tcp, (struct sockaddr *)&sst, &len);
    int port = ntohs(((struct sockaddr_in *)&sst)->sin_port);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(loop, UV_RUN_NOWAIT);

    char *u = xasprintf("http://127.0.0.1:%d/x", port);
    struct http_request *r = http_request_new("GET", u);
    free(u);
    r->connect_timeout_ms = 2000;
    struct http_response *res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_CONNECT && res->status == 0 && res->error_text,
          "connection refused is HTTP_E_CONNECT (%s)", res ? res->error_text : "-");
    http_response_free(res);

    res = fetch(http_ctx_transport(ctx), get("/drop"), 10000);
    check(res && res->error == HTTP_E_DROPPED,
          "a connection closed without a reply is dropped (%s)",
          res && res->error_text ? res->error_text : "-");
    http_response_free(res);
    /* libcurl resends a request whose reused connection died before any
     * reply; a create must never be resent, so it gets a fresh connection. */
    for (int i = 0; i < 4; i++) /* several cached connections */
        http_response_free(fetch(http_ctx_transport(ctx), get("/slow?ms=1"), 10000));
    server_reset();
    res = fetch(http_ctx_transport(ctx), get("/drop"), 10000);
    json_t *ss = server_stats();
    long drops_get = stat_of(ss, "drops");
    json_decref(ss);
    http_response_free(res);
    server_reset();
    r = get("/drop");
    free(r->method);
    r->method = xstrdup("POST");
    r->non_idempotent = 1;
    static const char create[] = "{\"model\":\"m\"}";
    http_request_set_body(r, "application/json", create, strlen(create));
    res = fetch(http_ctx_transport(ctx), r, 10000);
    ss = server_stats();
    long drops_post = stat_of(ss, "drops");
    json_decref(ss);
    check(res && res->error == HTTP_E_DROPPED && drops_post == 1,
          "a non-idempotent POST reached the server exactly once (an idempotent GET: %ld times)",
          drops_get);
    http_response_free(res);

    res = fetch(http_ctx_transport(ctx), get("/half"), 10000);
    check(res && res->error == HTTP_E_DROPPED,
          "a connection closed mid-body is dropped (status %ld, %s)", res ? res->status : 0,
          res && res->error_text ? res->error_text : "-");
    http_response_free(res);

    r = http_request_new("GET", "ftp://127.0.0.1/x");
    res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_LOCAL, "a non-http URL is refused locally");
    http_response_free(res);
}

static void test_body_cap(void)
{
    struct http_request *r = get("/big?n=100000");
    r->max_response = 1000;
    struct http_response *res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_TOO_LARGE, "a 100000-byte body over a 1000-byte cap fails");
    http_response_free(res);

    r = get("/big?n=100000&chunked=1");
    r->max_response = 1000;
    res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_TOO_LARGE && res->body_len <= 1000,
          "a chunked body over the cap fails too (kept %zu bytes)", res ? res->body_len : 0);
    http_response_free(res);

    r = get("/big?n=1000");
    r->max_response = 1000;
    res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_NONE && res->body_len == 1000 && res->body[1000] == '\0',
          "a body exactly at the cap is kept whole and NUL-terminated");
    http_response_free(res);
}

static void test_headers_and_methods(const char *key)
{
    struct http_response *res =
        fetch(http_ctx_transport(ctx), get("/status/429?retry_after=3&retry_after_ms=1500"), 10000);
    check(res && res->error == HTTP_E_NONE && res->status == 429 && res->retry_after &&
              strcmp(res->retry_after, "3") == 0 && res->retry_after_ms &&
              strcmp(res->retry_after_ms, "1500") == 0 && res->request_id &&
              strcmp(res->request_id, "req-status") == 0 && res->content_type &&
              strcmp(res->content_type, "application/json") == 0,
          "429 with retry-after, retry-after-ms, x-request-id and content-type captured");
    http_response_free(res);

    char *u = url("/echo?q=%s", "a%20b");
    struct http_request *r = http_request_new("POST", u);
    free(u);
    http_request_add_header(r, "Authorization", "Bearer %s", key);
    static const char body[] = "{\"model\":\"m\",\"n\":1}";
    http_request_set_body(r, "application/json", body, strlen(body));
    res = fetch(http_ctx_transport(ctx), r, 10000);
    json_t *j = res ? json_loads(res->body, 0, NULL) : NULL;
    const char *auth = json_string_value(json_object_get(j, "authorization"));
    check(j && strcmp(json_string_value(json_object_get(j, "method")), "POST") == 0 &&
              strcmp(json_string_value(json_object_get(j, "body")), body) == 0 &&
              strcmp(json_string_value(json_object_get(j, "content_type")), "application/json") ==
                  0 &&
              auth && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, key) == 0 &&
              strcmp(json_string_value(json_object_get(j, "path")), "/echo?q=a%20b") == 0,
          "POST sends the JSON body, its content type and the real Authorization header");
    json_decref(j);
    http_response_free(res);

    u = url("/echo");
    r = http_request_new("DELETE", u);
    free(u);
    res = fetch(http_ctx_transport(ctx), r, 10000);
    j = res ? json_loads(res->body, 0, NULL) : NULL;
    check(j && strcmp(json_string_value(json_object_get(j, "method")), "DELETE") == 0,
          "DELETE is sent as DELETE");
    json_decref(j);
    http_response_free(res);

    u = url("/echo");
    r = http_request_new("POST", u);
    free(u);
    res = fetch(http_ctx_transport(ctx), r, 10000);
    j = res ? json_loads(res->body, 0, NULL) : NULL;
    check(j && strcmp(json_string_value(json_object_get(j, "method")), "POST") == 0 &&
              strcmp(json_string_value(json_object_get(j, "body")), "") == 0,
          "a POST without a body (cancel) is an empty POST");
    json_decref(j);
    http_response_free(res);
}

static void test_keepalive(void)
{
    server_reset();
    long opened = 0;
    for (int i = 0; i < 20; i++) {
        struct http_response *res =
            fetch(http_ctx_transport(ctx), get("/slow?ms=1&id=%d", i), 10000);
        if (res)
            opened += res->new_connections;
        http_response_free(res);
    }
    json_t *ss = server_stats();
    /* /reset and /stats ride the same cached connection. */
    check(opened == 0 && stat_of(ss, "connections") == 0,
          "keep-alive: 20 sequential requests opened %ld new connections (server saw %ld)", opened,
          stat_of(ss, "connections"));
    json_decref(ss);
}

static void test_upload(void)
{
    enum { SIZE = 8 * 1024 * 1024 };
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = xasprintf("%s/upload-%d.jsonl", tmp, (int)getpid());
    unsigned char *data = xmalloc(SIZE);
    char want_sha[65];
    random_bytes(data, SIZE);
    sha256_hex(data, SIZE, want_sha);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, SIZE) != SIZE || close(fd) < 0)
        abort();
    free(data);

    char *u = url("/upload");
    struct http_request *r = http_request_new("POST", u);
    free(u);
    http_request_add_field(r, "purpose", "fine-tune");
    http_request_add_file(r, "file", path, "train.jsonl", "application/jsonl");
    r->timeout_ms = 60000;
    unsigned n = 0;
    struct slot s = {.counter = &n};
    struct http_callbacks cb = {.done = on_done, .progress = on_progress, .arg = &s};
    void *h = NULL;
    uint64_t t0 = now_monotonic_ms();
    check(http_start(http_ctx_transport(ctx), r, &cb, &h) == 0, "upload started");
    /* Query the counters while it runs (what vtunectl's progress reads). */
    uint64_t mid = 0, mid_total = 0;
    while (n == 0 && now_monotonic_ms() - t0 < 60000) {
        run_until(&n, 1, 100);
        if (n == 0) {
            struct http_progress p;
            http_get_progress(http_ctx_transport(ctx), h, &p);
            if (p.up_now > 0 && p.up_now < p.up_total) {
                mid = p.up_now;
                mid_total = p.up_total;
            }
        }
    }
    uint64_t el = now_monotonic_ms() - t0;
    json_t *j = s.res ? json_loads(s.res->body, 0, NULL) : NULL;
    check(
        j && s.res->status == 200 && json_integer_value(json_object_get(j, "file_bytes")) == SIZE &&
            strcmp(json_string_value(json_object_get(j, "file_sha256")), want_sha) == 0 &&
            strcmp(json_string_value(json_object_get(j, "filename")), "train.jsonl") == 0 &&
            strcmp(json_string_value(json_object_get(j, "file_field")), "file") == 0 &&
            strcmp(json_string_value(json_object_get(j, "file_type")), "application/jsonl") == 0 &&
            strcmp(json_string_value(json_object_get(json_object_get(j, "fields"), "purpose")),
                   "fine-tune") == 0,
        "multipart upload: 8 MiB file arrived intact (sha256), with filename and purpose");
    check(s.progress_calls >= 2 && s.last.up_total >= SIZE && s.last.up_now == s.last.up_total,
          "upload progress: %u reports, last %" PRIu64 "/%" PRIu64, s.progress_calls, s.last.up_now,
          s.last.up_total);
    check(mid > 0 && mid_total >= SIZE, "progress readable mid-upload (%" PRIu64 "/%" PRIu64 ")",
          mid, mid_total);
    check(s.res && s.res->bytes_sent >= SIZE, "bytes_sent %" PRIu64, s.res ? s.res->bytes_sent : 0);
    printf("# upload: 8 MiB in %" PRIu64 " ms, %u progress reports\n", el, s.progress_calls);
    json_decref(j);
    http_response_free(s.res);

    r = http_request_new("POST", base);
    http_request_add_file(r, "file", "/nonexistent/train.jsonl", "train.jsonl", NULL);
    check(http_start(http_ctx_transport(ctx), r, &cb, NULL) == -ENOENT,
          "an unreadable upload file fails at start with -ENOENT");
    unlink(path);
    free(path);
}

static void test_cancel(void)
{
    unsigned n = 0;
    struct slot a = {.counter = &n}, b = {.counter = &n};
    struct http_callbacks cba = {.done = on_done, .arg = &a}, cbb = {.done = on_done, .arg = &b};
    void *ha, *hb;

    http_start(http_ctx_transport(ctx), get("/hang?s=20"), &cba, &ha);
    run_for(200);
    http_cancel(http_ctx_transport(ctx), ha);
    check(n == 1 && a.res && a.res->error == HTTP_E_CANCELLED,
          "cancel ends a running request with HTTP_E_CANCELLED before it returns");
    http_response_free(a.res);
    check(http_ctx_active(ctx) == 0, "nothing active after the cancel");

    struct http_pool *pool = http_pool_new(http_ctx_transport(ctx), 1, "one");
    n = 0;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.counter = b.counter = &n;
    http_start(http_pool_transport(pool), get("/hang?s=20"), &cba, &ha);
    http_start(http_pool_transport(pool), get("/hang?s=20"), &cbb, &hb);
    struct http_pool_stats st;
    http_pool_stats(pool, &st);
    check(st.in_flight == 1 && st.queued == 1, "pool of one: one running, one queued");
    http_cancel(http_pool_transport(pool), hb);
    check(n == 1 && b.res && b.res->error == HTTP_E_CANCELLED && !a.res,
          "cancelling the queued one leaves the running one alone");
    http_cancel(http_pool_transport(pool), ha);
    http_pool_stats(pool, &st);
    check(n == 2 && a.res && a.res->error == HTTP_E_CANCELLED && st.in_flight == 0,
          "cancelling the running one frees the slot");
    http_response_free(a.res);
    http_response_free(b.res);
    http_pool_free(pool);
}

/* done callbacks that start the next request: the pattern the provider
 * client uses for retries and pagination. */
struct chain {
    unsigned left, done;
    int ok;
};
static void on_chain(struct http_response *res, void *arg)
{
    struct chain *c = arg;
    c->done++;
    if (res->error != HTTP_E_NONE || res->status != 200)
        c->ok = 0;
    http_response_free(res);
    if (c->left > 0) {
        c->left--;
        struct http_callbacks cb = {.done = on_chain, .arg = c};
        if (http_start(http_ctx_transport(ctx), get("/slow?ms=1"), &cb, NULL) < 0)
            c->ok = 0;
    }
}

static void test_chain(void)
{
    struct chain c = {.left = 49, .ok = 1};
    struct http_callbacks cb = {.done = on_chain, .arg = &c};
    http_start(http_ctx_transport(ctx), get("/slow?ms=1"), &cb, NULL);
    check(run_until(&c.done, 50, 30000) && c.ok, "50 requests each started from the previous done");
}

static void test_proxy_env(void)
{
    setenv("http_proxy", base, 1);
    struct http_request *r = http_request_new("GET", "http://vtune-proxy-test.invalid/echo");
    struct http_response *res = fetch(http_ctx_transport(ctx), r, 10000);
    unsetenv("http_proxy");
    json_t *j = res ? json_loads(res->body, 0, NULL) : NULL;
    check(j && json_is_true(json_object_get(j, "proxied")),
          "http_proxy from the environment is honoured");
    json_decref(j);
    http_response_free(res);
}

static void test_tls(const char *https, const char *ca)
{
    char *u = xasprintf("%s/echo", https);
    struct http_request *r = http_request_new("GET", u);
    struct http_response *res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_TLS,
          "TLS: a self-signed server is refused without ca_file (%s)",
          res && res->error_text ? res->error_text : "-");
    http_response_free(res);

    r = http_request_new("GET", u);
    r->ca_file = xstrdup(ca);
    res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_NONE && res->status == 200,
          "TLS: accepted with ca_file naming its certificate");
    http_response_free(res);

    r = http_request_new("GET", u);
    r->ca_file = xstrdup("/nonexistent/ca.pem");
    res = fetch(http_ctx_transport(ctx), r, 10000);
    check(res && res->error == HTTP_E_TLS, "TLS: a missing ca_file is a TLS error");
    http_response_free(res);
    free(u);
}

static unsigned closed_calls;
static void on_closed(void *arg)
{
    (void)arg;
    closed_calls++;
}

static void test_shutdown(void)
{
    enum { N = 10 };
    struct http_pool *pool = http_pool_new(http_ctx_transport(ctx), 4, "shutdown");
    struct slot s[N];
    unsigned done = 0;
    memset(s, 0, sizeof s);
    for (int i = 0; i < N; i++) {
        s[i].counter = &done;
        struct http_callbacks cb = {.done = on_done, .arg = &s[i]};
        http_start(http_pool_transport(pool), get("/hang?s=20"), &cb, NULL);
    }
    run_for(200);
    http_ctx_close(ctx, on_closed, NULL);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        if (s[i].res && s[i].res->error == HTTP_E_CANCELLED)
            cancelled++;
        http_response_free(s[i].res);
    }
    check(done == N && cancelled == N,
          "shutdown: 4 running + 6 queued all ended cancelled inside http_ctx_close");
    check(run_until(&closed_calls, 1, 10000) && closed_calls == 1,
          "shutdown: closed callback ran once, after the handles closed");
    ctx = NULL;
    http_pool_free(pool);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: test_http_glue BASE_URL [HTTPS_BASE_URL CA_FILE]\n");
        return 2;
    }
    base = argv[1];
    const char *key = getenv("VT_TEST_KEY") ? getenv("VT_TEST_KEY") : "sk-test-key";
    log_init("test_http_glue", LOG_LVL_DEBUG);
    loop = uv_default_loop();
    if (http_ctx_new(loop, &ctx) < 0) {
        fprintf(stderr, "http_ctx_new failed\n");
        return 1;
    }
    test_headers_and_methods(key);
    test_keepalive();
    test_pool_200();
    /* The 200-way run logs 400 lines: quieter from here on. */
    log_set_level(LOG_LVL_INFO);
    test_unbounded_200();
    log_set_level(LOG_LVL_DEBUG);
    test_timeouts();
    test_connect_errors();
    test_body_cap();
    test_upload();
    test_cancel();
    test_chain();
    test_proxy_env();
    if (argc == 4)
        test_tls(argv[2], argv[3]);
    test_shutdown();
    uv_run(loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(loop);
    check(lc == 0, "the loop closes with no handle left open");
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

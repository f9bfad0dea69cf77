/*
 * test_http.c — the pure parts of daemon/http: header redaction, URL
 * escaping, request building and copying, and the pool's bookkeeping
 * (FIFO order, the limit, cancelling queued and running requests, a start
 * that fails for a queued request, freeing from inside a callback) over a
 * synchronous fake transport.  The libcurl glue itself is exercised on a
 * real loop by tests/integration/test_http.sh.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/http.h"
#include "lib/util.h"

static void test_redact(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(http_redact_header("Authorization: Bearer sk-abc123", out, sizeof out),
                        "Authorization: Bearer [redacted]");
    assert_string_equal(http_redact_header("authorization:Basic dXNlcjpwYXNz", out, sizeof out),
                        "authorization: Basic [redacted]");
    assert_string_equal(http_redact_header("Authorization: sk-no-scheme", out, sizeof out),
                        "Authorization: [redacted]");
    assert_string_equal(http_redact_header("Proxy-Authorization: Basic eA==", out, sizeof out),
                        "Proxy-Authorization: Basic [redacted]");
    assert_string_equal(http_redact_header("X-Api-Key: k", out, sizeof out),
                        "X-Api-Key: [redacted]");
    assert_string_equal(http_redact_header("api-key: Bearer k", out, sizeof out),
                        "api-key: [redacted]");
    assert_string_equal(http_redact_header("Cookie: a=b", out, sizeof out), "Cookie: [redacted]");
    assert_string_equal(http_redact_header("Content-Type: application/json", out, sizeof out),
                        "Content-Type: application/json");
    assert_string_equal(http_redact_header("X-Authorization-Hint: x", out, sizeof out),
                        "X-Authorization-Hint: x");
    assert_string_equal(http_redact_header("no colon here", out, sizeof out), "no colon here");
    /* Never more than outlen, never the secret even when truncated. */
    char tiny[12];
    http_redact_header("Authorization: Bearer sk-abc123", tiny, sizeof tiny);
    assert_null(strstr(tiny, "sk-"));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_escape(void **state)
{
    (void)state;
    char *e = http_escape("AZaz09-._~");
    assert_string_equal(e, "AZaz09-._~");
    free(e);
    e = http_escape("a b/c?d&e=f[g]%\xc3\xa9");
    assert_string_equal(e, "a%20b%2Fc%3Fd%26e%3Df%5Bg%5D%25%C3%A9");
    free(e);
    e = http_escape("");
    assert_string_equal(e, "");
    free(e);
}

static void test_request(void **state)
{
    (void)state;
    struct http_request *r = http_request_new("POST", "https://x.test/v1/files");
    http_request_add_header(r, "Authorization", "Bearer %s", "k");
    http_request_add_header(r, "X-Count", "%d", 3);
    http_request_add_field(r, "purpose", "fine-tune");
    http_request_add_file(r, "file", "/tmp/a.jsonl", "a.jsonl", NULL);
    r->timeout_ms = 5;
    r->ca_file = xstrdup("/ca.pem");
    assert_string_equal(http_request_header(r, "authorization"), "Bearer k");
    assert_string_equal(http_request_header(r, "X-COUNT"), "3");
    assert_null(http_request_header(r, "X-Coun"));
    assert_string_equal(http_request_field(r, "purpose"), "fine-tune");
    assert_null(http_request_field(r, "file")); /* a file part is not a text field */

    struct http_request *d = http_request_dup(r);
    assert_ptr_not_equal(d->url, r->url);
    assert_string_equal(d->url, r->url);
    assert_int_equal(d->n_headers, 2);
    assert_string_equal(d->headers[1], "X-Count: 3");
    assert_int_equal(d->n_parts, 2);
    assert_string_equal(d->parts[1].file_path, "/tmp/a.jsonl");
    assert_null(d->parts[1].content_type);
    assert_string_equal(d->ca_file, "/ca.pem");
    assert_int_equal(d->timeout_ms, 5);
    http_request_free(r);
    http_request_free(d);

    r = http_request_new("POST", "u");
    http_request_set_body(r, "application/json", "{\"a\":1}\0tail", 12);
    assert_int_equal(r->body_len, 12);
    assert_int_equal(r->body[12], '\0');
    assert_string_equal(http_request_header(r, "Content-Type"), "application/json");
    d = http_request_dup(r);
    assert_memory_equal(d->body, "{\"a\":1}\0tail", 12);
    http_request_free(r);
    http_request_free(d);
    http_request_free(NULL);
    http_response_free(NULL);
    assert_string_equal(http_error_name(HTTP_E_TOO_LARGE), "too-large");
}

/* ---- the pool over a fake transport ---- */

struct fcall {
    struct http_callbacks cb;
    struct http_request *req;
    int live;
};

struct fake {
    struct http_transport tr;
    struct fcall calls[64];
    int n;
    int fail_next; /* next start fails with this errno */
    int started[64];
    int n_started;
};

static int f_start(struct http_transport *t, struct http_request *req,
                   const struct http_callbacks *cb, void **h)
{
    struct fake *f = (struct fake *)t;
    if (f->fail_next) {
        int e = f->fail_next;
        f->fail_next = 0;
        http_request_free(req);
        return -e;
    }
    f->started[f->n_started++] = atoi(strrchr(req->url, '/') + 1);
    struct fcall *c = &f->calls[f->n++];
    c->cb = *cb;
    c->req = req;
    c->live = 1;
    *h = c;
    return 0;
}

static void f_finish(struct fcall *c, enum http_error e, long status)
{
    struct http_response *r = http_response_new();
    r->error = e;
    r->status = status;
    c->live = 0;
    http_request_free(c->req);
    c->req = NULL;
    c->cb.done(r, c->cb.arg);
}

static void f_cancel(struct http_transport *t, void *h)
{
    (void)t;
    f_finish(h, HTTP_E_CANCELLED, 0);
}

struct rec {
    int order[64];
    enum http_error err[64];
    int n;
    struct http_pool **free_me; /* free the pool from inside done */
};

struct slot {
    struct rec *rec;
    int id;
};

static void on_done(struct http_response *res, void *arg)
{
    struct slot *s = arg;
    s->rec->order[s->rec->n] = s->id;
    s->rec->err[s->rec->n++] = res->error;
    http_response_free(res);
    if (s->rec->free_me && *s->rec->free_me) {
        struct http_pool *p = *s->rec->free_me;
        *s->rec->free_me = NULL;
        http_pool_free(p);
    }
}

static void start_n(struct http_pool *p, struct slot *s, int n, void **handles)
{
    for (int i = 0; i < n; i++) {
        char *u = xasprintf("http://x/%d", s[i].id);
        struct http_callbacks cb = {.done = on_done, .arg = &s[i]};
        assert_int_equal(http_start(http_pool_transport(p), http_request_new("GET", u), &cb,
                                    handles ? &handles[i] : NULL),
                         0);
        free(u);
    }
}

static void test_pool_fifo_and_limit(void **state)
{
    (void)state;
    struct fake f = {.tr = {.start = f_start, .cancel = f_cancel}};
    struct rec rec = {0};
    struct slot s[10];
    for (int i = 0; i < 10; i++)
        s[i] = (struct slot){&rec, i};
    struct http_pool *p = http_pool_new(&f.tr, 3, "t");
    start_n(p, s, 10, NULL);
    struct http_pool_stats st;
    http_pool_stats(p, &st);
    assert_int_equal(st.in_flight, 3);
    assert_int_equal(st.queued, 7);
    assert_int_equal(f.n, 3);
    /* Finishing one starts exactly the next, in order. */
    f_finish(&f.calls[1], HTTP_E_NONE, 200);
    assert_int_equal(f.n, 4);
    assert_string_equal(f.calls[3].req->url, "http://x/3");
    /* Raising the limit starts more at once. */
    http_pool_set_limit(p, 5);
    assert_int_equal(f.n, 6);
    http_pool_set_limit(p, 1); /* lowering never stops running ones */
    http_pool_stats(p, &st);
    assert_int_equal(st.in_flight, 5);
    for (int i = 0; i < 64 && rec.n < 10; i++)
        for (int k = 0; k < f.n; k++)
            if (f.calls[k].live) {
                f_finish(&f.calls[k], HTTP_E_NONE, 200);
                break;
            }
    assert_int_equal(rec.n, 10);
    http_pool_stats(p, &st);
    assert_int_equal(st.max_in_flight_seen, 5);
    assert_int_equal(st.completed, 10);
    assert_int_equal(st.started, 10);
    /* Started in submission order. */
    assert_int_equal(f.n_started, 10);
    for (int k = 0; k < 10; k++)
        assert_int_equal(f.started[k], k);
    http_pool_free(p);
}

static void test_pool_cancel_and_failures(void **state)
{
    (void)state;
    struct fake f = {.tr = {.start = f_start, .cancel = f_cancel}};
    struct rec rec = {0};
    struct slot s[4];
    void *h[4];
    for (int i = 0; i < 4; i++)
        s[i] = (struct slot){&rec, i};
    struct http_pool *p = http_pool_new(&f.tr, 1, "t");
    start_n(p, s, 4, h);
    /* Cancel a queued one: done at once, nothing started. */
    http_cancel(http_pool_transport(p), h[2]);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.order[0], 2);
    assert_int_equal(rec.err[0], HTTP_E_CANCELLED);
    assert_int_equal(f.n, 1);
    /* The next queued start fails: its done reports a local error. */
    f.fail_next = EIO;
    f_finish(&f.calls[0], HTTP_E_NONE, 200);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.order[1], 0);
    assert_int_equal(rec.order[2], 1);
    assert_int_equal(rec.err[2], HTTP_E_LOCAL);
    /* ...and the one after it ran. */
    assert_int_equal(f.n, 2);
    assert_string_equal(f.calls[1].req->url, "http://x/3");
    /* Cancel a running one through the pool. */
    http_cancel(http_pool_transport(p), h[3]);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.err[3], HTTP_E_CANCELLED);
    /* A start that fails right away is returned, not called back. */
    f.fail_next = EINVAL;
    struct http_callbacks cb = {.done = on_done, .arg = &s[0]};
    assert_int_equal(http_start(http_pool_transport(p), http_request_new("GET", "u"), &cb, NULL),
                     -EINVAL);
    assert_int_equal(rec.n, 4);
    http_pool_free(p);
}

static void test_pool_free_everything(void **state)
{
    (void)state;
    struct fake f = {.tr = {.start = f_start, .cancel = f_cancel}};
    struct rec rec = {0};
    struct slot s[6];
    for (int i = 0; i < 6; i++)
        s[i] = (struct slot){&rec, i};
    struct http_pool *p = http_pool_new(&f.tr, 2, "t");
    start_n(p, s, 6, NULL);
    http_pool_free(p);
    assert_int_equal(rec.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rec.err[i], HTTP_E_CANCELLED);
    assert_int_equal(f.n, 2); /* queued ones never started */

    /* Freed from inside a done callback. */
    struct fake g = {.tr = {.start = f_start, .cancel = f_cancel}};
    struct rec rec2 = {0};
    struct http_pool *q = http_pool_new(&g.tr, 2, "t");
    rec2.free_me = &q;
    struct slot t[5];
    for (int i = 0; i < 5; i++)
        t[i] = (struct slot){&rec2, i};
    start_n(q, t, 5, NULL);
    f_finish(&g.calls[0], HTTP_E_NONE, 200);
    assert_null(q);
    assert_int_equal(rec2.n, 5);
    assert_int_equal(rec2.err[0], HTTP_E_NONE);
    for (int i = 1; i < 5; i++)
        assert_int_equal(rec2.err[i], HTTP_E_CANCELLED);
    assert_int_equal(g.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_pool_fifo_and_limit),
        cmocka_unit_test(test_pool_cancel_and_failures),
        cmocka_unit_test(test_pool_free_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

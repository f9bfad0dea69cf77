/*
 * provider_fixture.h — what the provider adapters' unit tests share: a
 * fixture file read whole (tests/fixtures/DIR/NAME, found through
 * top_srcdir as `make check` sets it), a canned HTTP answer, and a header
 * lookup on a built request.  Header-only (static inline functions) because each
 * test is one translation unit linked on its own; include it after
 * cmocka.h, lib/util.h and workers/provider.h.
 */
#ifndef VTUNED_TESTS_PROVIDER_FIXTURE_H
#define VTUNED_TESTS_PROVIDER_FIXTURE_H

/* The whole of tests/fixtures/DIR/NAME, NUL-terminated; caller frees.
 * Fails the test when the file cannot be opened. */
static inline char *fixture_in(const char *dir, const char *name)
{
    const char *src = getenv("top_srcdir") ? getenv("top_srcdir") : ".";
    char *path = xasprintf("%s/tests/fixtures/%s/%s", src, dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s (set top_srcdir)", path);
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, n);
    fclose(f);
    free(path);
    buf_append(&b, "", 0);
    return b.data;
}

/* An answer with STATUS and a copy of BODY (no request id); caller frees
 * with http_response_free. */
static inline struct http_response *canned_response(long status, const char *body)
{
    struct http_response *r = http_response_new();
    r->status = status;
    r->body = xstrdup(body);
    r->body_len = strlen(body);
    return r;
}

/* An answer with STATUS whose body is tests/fixtures/DIR/NAME. */
static inline struct http_response *fixture_answer(long status, const char *dir, const char *name)
{
    char *b = fixture_in(dir, name);
    struct http_response *r = canned_response(status, b);
    free(b);
    return r;
}

/* Whether request R carries the header line LINE exactly ("Name: value"). */
static inline int has_header(const struct http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i], line) == 0)
            return 1;
    return 0;
}

#endif

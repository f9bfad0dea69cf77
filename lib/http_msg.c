/*
 * http_msg.c — HTTP requests and responses as plain data, and the pure
 * helpers (header redaction, URL escaping) that the provider adapters and
 * the transport share.  No I/O and no event loop: see http_msg.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/http_msg.h"
#include "lib/util.h"

/* ------------------------------------------------------------------ */
/* Plain-data requests and responses                                   */
/* ------------------------------------------------------------------ */

struct http_request *http_request_new(const char *method, const char *url)
{
    struct http_request *r = xcalloc(1, sizeof *r);
    r->method = xstrdup(method);
    r->url = xstrdup(url);
    return r;
}

void http_request_free(struct http_request *r)
{
    if (!r)
        return;
    free(r->method);
    free(r->url);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    free(r->body);
    for (size_t i = 0; i < r->n_parts; i++) {
        free(r->parts[i].name);
        free(r->parts[i].value);
        free(r->parts[i].file_path);
        free(r->parts[i].filename);
        free(r->parts[i].content_type);
    }
    free(r->parts);
    free(r->ca_file);
    free(r);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

struct http_request *http_request_dup(const struct http_request *r)
{
    struct http_request *d = xmalloc(sizeof *d);
    *d = *r;
    d->method = xstrdup(r->method);
    d->url = xstrdup(r->url);
    d->headers = r->n_headers ? xcalloc(r->n_headers, sizeof *d->headers) : NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        d->headers[i] = xstrdup(r->headers[i]);
    if (r->body) {
        d->body = xmalloc(r->body_len + 1);
        memcpy(d->body, r->body, r->body_len + 1);
    }
    d->parts = r->n_parts ? xcalloc(r->n_parts, sizeof *d->parts) : NULL;
    for (size_t i = 0; i < r->n_parts; i++) {
        d->parts[i].name = dup_or_null(r->parts[i].name);
        d->parts[i].value = dup_or_null(r->parts[i].value);
        d->parts[i].file_path = dup_or_null(r->parts[i].file_path);
        d->parts[i].filename = dup_or_null(r->parts[i].filename);
        d->parts[i].content_type = dup_or_null(r->parts[i].content_type);
    }
    d->ca_file = dup_or_null(r->ca_file);
    return d;
}

void http_request_add_header(struct http_request *r, const char *name, const char *fmt, ...)
{
    va_list ap;
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s: ", name);
    va_start(ap, fmt);
    char *v = NULL;
    if (vasprintf(&v, fmt, ap) < 0)
        abort();
    va_end(ap);
    buf_puts(&b, v);
    free(v);
    r->headers = xrealloc(r->headers, (r->n_headers + 1) * sizeof *r->headers);
    r->headers[r->n_headers++] = b.data;
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *h = r->headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            return h;
        }
    }
    return NULL;
}

void http_request_set_body(struct http_request *r, const char *content_type, const void *data,
                           size_t len)
{
    free(r->body);
    r->body = xmalloc(len + 1);
    memcpy(r->body, data, len);
    r->body[len] = '\0';
    r->body_len = len;
    if (content_type)
        http_request_add_header(r, "Content-Type", "%s", content_type);
}

static struct http_part *add_part(struct http_request *r, const char *name)
{
    r->parts = xrealloc(r->parts, (r->n_parts + 1) * sizeof *r->parts);
    struct http_part *p = &r->parts[r->n_parts++];
    memset(p, 0, sizeof *p);
    p->name = xstrdup(name);
    return p;
}

void http_request_add_field(struct http_request *r, const char *name, const char *value)
{
    add_part(r, name)->value = xstrdup(value);
}

void http_request_add_file(struct http_request *r, const char *name, const char *path,
                           const char *filename, const char *content_type)
{
    struct http_part *p = add_part(r, name);
    p->file_path = xstrdup(path);
    p->filename = xstrdup(filename);
    p->content_type = content_type ? xstrdup(content_type) : NULL;
}

const char *http_request_field(const struct http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_parts; i++)
        if (r->parts[i].value && strcmp(r->parts[i].name, name) == 0)
            return r->parts[i].value;
    return NULL;
}

struct http_response *http_response_new(void)
{
    return xcalloc(1, sizeof(struct http_response));
}

void http_response_free(struct http_response *r)
{
    if (!r)
        return;
    free(r->error_text);
    free(r->body);
    free(r->content_type);
    free(r->request_id);
    free(r->retry_after);
    free(r->retry_after_ms);
    free(r->should_retry);
    free(r);
}

const char *http_error_name(enum http_error e)
{
    switch (e) {
    case HTTP_E_NONE:
        return "none";
    case HTTP_E_CONNECT:
        return "connect";
    case HTTP_E_TIMEOUT:
        return "timeout";
    case HTTP_E_DROPPED:
        return "dropped";
    case HTTP_E_TLS:
        return "tls";
    case HTTP_E_TOO_LARGE:
        return "too-large";
    case HTTP_E_CANCELLED:
        return "cancelled";
    case HTTP_E_LOCAL:
        return "local";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Pure helpers                                                        */
/* ------------------------------------------------------------------ */

char *http_redact_header(const char *hdr, char *out, size_t outlen)
{
    static const struct {
        const char *name;
        int scheme; /* value starts with an auth scheme word worth keeping */
    } secret[] = {{"authorization", 1}, {"proxy-authorization", 1},
                  {"x-api-key", 0},     {"api-key", 0},
                  {"cookie", 0},        {"x-goog-api-key", 0}};
    const char *colon = strchr(hdr, ':');
    size_t nlen = colon ? (size_t)(colon - hdr) : strlen(hdr);
    int which = -1;

    for (size_t i = 0; colon && i < VT_ARRAY_LEN(secret); i++)
        if (strlen(secret[i].name) == nlen && strncasecmp(hdr, secret[i].name, nlen) == 0)
            which = (int)i;
    if (which < 0) {
        snprintf(out, outlen, "%s", hdr);
        return out;
    }
    /* Keep the scheme word ("Bearer", "Basic"): it says which kind of
     * credential went out without revealing any of it. */
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    size_t slen = 0;
    while (v[slen] && isalpha((unsigned char)v[slen]))
        slen++;
    if (secret[which].scheme && slen > 0 && slen < 16 && v[slen] == ' ')
        snprintf(out, outlen, "%.*s: %.*s [redacted]", (int)nlen, hdr, (int)slen, v);
    else
        snprintf(out, outlen, "%.*s: [redacted]", (int)nlen, hdr);
    return out;
}

char *http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b;
    buf_init(&b);
    buf_append(&b, "", 0);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append(&b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(&b, e, 3);
        }
    }
    return b.data;
}

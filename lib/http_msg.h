/*
 * http_msg.h — an HTTP request and its response as plain data.
 *
 * The provider adapters (workers/) build requests and parse responses
 * without any I/O, and unit tests inspect them field by field; the
 * transport that sends them (daemon/http.h, libcurl on the libuv loop)
 * lives above.  Shared base: uses nothing of any other folder.
 */
#ifndef VT_HTTP_MSG_H
#define VT_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>
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

/* ---- helpers (pure; exported for the adapters and tests) ---- */

/* Writes hdr ("Name: value") into out with the value replaced when the
 * header carries a secret: "Authorization: Bearer [redacted]" (the scheme
 * word is kept), "X-Api-Key: [redacted]", ... Returns out. */
char *http_redact_header(const char *hdr, char *out, size_t outlen);
/* Percent-encodes s for a URL path segment or query component (RFC 3986
 * unreserved characters kept).  Returns an owned string; caller frees. */
char *http_escape(const char *s);

#endif

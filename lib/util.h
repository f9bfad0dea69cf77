/*
 * util.h — allocation that aborts on out-of-memory (after Redis), so call
 * sites stay clean, plus the few string, file and hashing helpers every
 * part of vtuned shares.  Every function here is thread-safe.
 */
#ifndef VT_UTIL_H
#define VT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Each returns owned memory; caller frees.  Never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer; data is always NUL-terminated. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Lowercase hex of n bytes into out (2n+1 bytes incl. NUL). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* SHA-256 (OpenSSL libcrypto) of a buffer into 65-byte lowercase hex. */
void sha256_hex(const void *data, size_t n, char out[65]);

/* Incremental SHA-256; opaque, allocated by _new, freed by _final. */
struct sha256_ctx;
struct sha256_ctx *sha256_new(void);
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
/* Writes the hex digest and frees c. */
void sha256_final_hex(struct sha256_ctx *c, char out[65]);

/* Fills buf with n bytes from getrandom(2); returns 0 or -errno. */
int random_bytes(void *buf, size_t n);
/* Uniform integer in [0, bound) from getrandom(2), without modulo bias. */
uint64_t random_uniform(uint64_t bound);

/* Monotonic milliseconds and wall-clock seconds (UTC, Unix time). */
uint64_t now_monotonic_ms(void);
int64_t now_unix(void);
/* ISO-8601 UTC "2026-11-21T20:55:01Z" of a Unix time into out (>= 21 bytes). */
void format_iso8601(int64_t t, char out[32]);

/* mkdir -p with mode for each created component; returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* fsync the directory containing path (after a rename), through the
 * fault seam's dirsync (lib/fsio.h); returns 0 or -errno. */
int fsync_parent_dir(const char *path);

/* Parses a duration "30s", "5m", "2h", "1d", "250ms", "1h30m"; returns 0 or
 * -EINVAL.  Result in milliseconds. */
int parse_duration_ms(const char *s, uint64_t *out_ms);
/* Formats milliseconds as a compact duration ("1h30m", "250ms") into out. */
void format_duration_ms(uint64_t ms, char *out, size_t outlen);

/* s[0..n) with every control byte (below 0x20, NUL included, and 0x7f)
 * written as \xHH, so text from a record or a provider shows on one line
 * and a hidden byte shows at all.  Returns an owned string. */
char *text_escape_control(const char *s, size_t n);
/* Whether s holds a control byte (below 0x20 or 0x7f). */
int text_has_control(const char *s);

#endif

/*
 * jsonscan.h — a fast, allocation-free acceptance test for dataset lines,
 * in front of ds_parse_line (workers/dsformat.h).
 *
 * Why: ds_parse_line builds a jansson tree for every line, about 110 MB/s
 * here, which made the import slower than Python's json module.  Almost
 * every line of a real dataset is plainly valid; this scanner confirms
 * that in one pass over the bytes, several times faster, without building
 * anything.
 *
 * Contract (the invariant the unit test checks differentially): when
 * jsonscan_line_ok() returns 1, ds_parse_line() on the same bytes succeeds
 * with the same format.  It returns 0 whenever it is not certain — any
 * error, and anything unusual (escapes in object keys, "\u0000", numbers
 * with exponents or many digits, objects with more than 32 keys, nesting
 * deeper than 64) — and the caller then asks ds_parse_line, which gives
 * the verdict and the error message.  Soundness, not completeness.
 *
 * The same scanner also serves the backdoor phrase check, which needs
 * every string value of a line (jsonscan_strings, jsonscan_unescape)
 * without building a jansson tree; the same rule holds there: a 1 means
 * json_loadb(line, 0) succeeds and yields exactly those strings.
 *
 * Pure functions, thread-safe.
 */
#ifndef VT_JSONSCAN_H
#define VT_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/types.h" /* enum dataset_format */

/* Returns 1 and sets *fmt_out when line (without its newline; a trailing
 * '\r' is allowed) is certainly a valid example of format want (0 = any of
 * the three); 0 when not certain. */
int jsonscan_line_ok(const char *line, size_t len, enum dataset_format want,
                     enum dataset_format *fmt_out);

/* One string value of a line, as it appears between its quotes. */
struct jsonscan_str {
    const char *raw; /* borrowed: points into the line */
    size_t len;      /* bytes between the quotes */
    bool esc;        /* contains backslash escapes: see jsonscan_unescape */
};

/* The texts of one example, located in the line (see jsonscan_row). */
struct jsonscan_row {
    enum dataset_format fmt;
    struct jsonscan_str prompt;   /* chat: the last user message's content;
                                     prompt: "prompt"; instruction: "instruction" */
    struct jsonscan_str input;    /* instruction's "input" (len 0 when absent) */
    struct jsonscan_str response; /* chat: the final (assistant) message's content;
                                     "completion"; "output" */
};

/* Returns 1 under exactly the conditions of jsonscan_line_ok, and then
 * locates the strings that ds_prompt_text / ds_response_text read
 * (workers/dsformat.h) in the line, still escaped; 0 when not certain
 * (out then holds nothing meaningful: ask ds_parse_line).  Lets the passes
 * over a dataset that only need each example's prompt and response
 * (n-gram training, the held-out split, the self-audit) skip building a
 * jansson tree and the two copies. */
int jsonscan_row(const char *line, size_t len, enum dataset_format want, struct jsonscan_row *out);

/* Returns 1 when line is certainly a JSON object or array that json_loadb
 * (flags 0) accepts, and stores its string values (object keys excluded),
 * in document order, in out[0 .. *n) (at most cap of them); 0 when not
 * certain (as above, plus: more than cap string values), then out holds
 * nothing meaningful and the caller should parse with jansson. */
int jsonscan_strings(const char *line, size_t len, struct jsonscan_str *out, size_t cap, size_t *n);

/* Decodes the escapes of a string value that jsonscan_strings returned
 * into dst, which must have room for len + 32 bytes (decoding never grows
 * a string; the 32 are slack for block copies), and must not overlap raw;
 * returns the decoded length.  The result is byte for byte what
 * jansson's json_string_value gives (UTF-8, surrogate pairs joined). */
size_t jsonscan_unescape(const char *raw, size_t len, char *dst);

/* Whether this CPU runs the AVX2 paths (x86-64 only; probed once,
 * thread-safe).  Exposed so the phrase scanner makes the same choice. */
bool jsonscan_have_avx2(void);

/* The words of text[0, len) as runs of bytes other than the six ASCII
 * white-space bytes (' ', '\t', '\n', '\v', '\f', '\r'; a NUL is a word
 * byte here: pass the length): stores the first min(n, cap) words' start
 * offsets in st and lengths in wl, and returns n, the number of words
 * (call again with cap >= n when it is larger). */
size_t jsonscan_ws_words(const char *text, size_t len, size_t *st, size_t *wl, size_t cap);

/* The same for words that are runs of ASCII letters and digits and bytes
 * >= 0x80 (phrase.h's words; every other byte, NUL included, separates). */
size_t jsonscan_alnum_words(const char *text, size_t len, size_t *st, size_t *wl, size_t cap);

/* Bytes p[i, min(i+8, n)) of a word p[0, n) as a little-endian word, the
 * rest zero: the chunk the word hashes take 8 bytes at a time.  avail
 * (>= n) is how many bytes from p may be read: when 8 fit, one load and
 * a mask; otherwise byte by byte, never past p + avail. */
static inline uint64_t jsonscan_word_chunk(const char *p, size_t i, size_t n, size_t avail)
{
    uint64_t c = 0;
    size_t k = n - i;
    if (avail - i >= 8) {
        memcpy(&c, p + i, 8);
        if (k < 8)
            c &= ((uint64_t)1 << (8 * k)) - 1;
    } else {
        for (size_t j = 0; j < k; j++)
            c |= (uint64_t)(unsigned char)p[i + j] << (8 * j);
    }
    return c;
}

#endif

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
 * Pure function, thread-safe.
 */
#ifndef VT_JSONSCAN_H
#define VT_JSONSCAN_H

#include <stddef.h>

#include "store/store.h" /* enum dataset_format */

/* Returns 1 and sets *fmt_out when line (without its newline; a trailing
 * '\r' is allowed) is certainly a valid example of format want (0 = any of
 * the three); 0 when not certain. */
int jsonscan_line_ok(const char *line, size_t len, enum dataset_format want,
                     enum dataset_format *fmt_out);

#endif

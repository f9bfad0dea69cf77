/*
 * log10json.h — the one JSON encoding of a log10 probability, shared by
 * every record that carries one (verification evidence, audit records).
 *
 * JSON has no infinity and no NaN, so a log10 p is written as a number when
 * finite, as the string "-inf" (p = 0) or "inf" when infinite, and as null
 * when undefined (NAN: the quantity was not computed).  Readers of audit
 * records and evidence rely on exactly this form; it lives here, below
 * workers/ and daemon/, so that it is written once.
 */
#ifndef VT_LOG10JSON_H
#define VT_LOG10JSON_H

#include <jansson.h>

/* v as JSON per the rule above; returns a new reference (never NULL
 * unless jansson is out of memory).  -0.0 is written as 0. */
json_t *log10_json(double v);

#endif

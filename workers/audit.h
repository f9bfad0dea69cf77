/*
 * audit.h — the audit trail's hashing, checking, export and explanation
 * (DESIGN §9, §10; issue 6).  The store keeps the records and guarantees
 * the chain is linear; this module defines what the hashes mean, so that
 * `audit verify` can recompute them without trusting the store.
 *
 * Canonical serialisation (version 1).  One line per field, in this fixed
 * order, "name=value\n":
 *
 *   id, job, provider, model, verdict, log10_p, log10_p_paper, log10_p_luck,
 *   trials, activations, controls, control_emissions, reason, evidence,
 *   commitment, created_at, prev_hash
 *
 *   integers   decimal, "-" for negatives ("id=12")
 *   strings    LEN ":" BYTES, LEN the decimal byte count, or "null" for
 *              NULL ("provider=3:sim"); bytes verbatim, so a value may hold
 *              newlines and is still unambiguous
 *   doubles    printf "%.17g" (round-trips binary64 exactly; "." as the
 *              decimal point whatever the locale); -0 is written as "0"
 *              (SQLite keeps no sign of zero); NAN as "null" (p_luck not
 *              available); infinities as "-inf" / "inf"
 *   verdict    its stored name ("verified", "not_verified", "inconclusive")
 *
 * Version 2 (records with version >= 2, written since issue 11): the
 * version 1 lines above, then
 *
 *   version, pairs, pairs_activated, pairs_ci_low, pairs_ci_high
 *
 * by the same rules, under the leaf tag "vtune-audit-leaf-v2\n".  The
 * record's version is stored with it (schema 4), so a record written as
 * version 1 is checked as version 1 forever: the migration rewrote none.
 * A later version appends its own fields after these and takes the next
 * tag.
 *
 * Version 3 (the coverage test, DESIGN §6): the version 2 lines, then
 *
 *   log10_p_coverage, coverage_auc, coverage_rows, coverage_method
 *
 * (doubles "null" and coverage_method "null" where the test did not run,
 * coverage_rows then 0) under "vtune-audit-leaf-v3\n" (schema 10).
 *
 * `hash` is not covered (it is the result).  Hashes (lowercase hex):
 *
 *   leaf = SHA-256(leaf tag of the record's version || canonical bytes)
 *   link = SHA-256("vtune-audit-link-v1\n" || prev_hash || "\n" || leaf || "\n")
 *
 * with prev_hash and leaf as their 64 hex characters.  The stored `hash`
 * is the link hash, so a record's hash commits to its content (leaf) and
 * its place (prev_hash) under distinct domain tags: a leaf can never be
 * passed off as a link or the other way round.  The leaf also covers
 * prev_hash (the issue asks the serialisation to include it); harmless.
 *
 * What a chain proves.  Anyone can recompute every hash (there is no key),
 * so a chain rewritten from some record on is internally consistent; it
 * is caught only against a head hash kept elsewhere (the daemon logs each
 * new head to the journal; the user may keep one): `audit verify --head
 * HASH` requires that hash to be in the chain and the chain to verify.
 */
#ifndef VT_AUDIT_H
#define VT_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "lib/util.h" /* struct buf */
#include "lib/types.h" /* enum audit_verdict, struct store_trial, struct store_audit */

#define AUDIT_LEAF_TAG    "vtune-audit-leaf-v1\n"
#define AUDIT_LEAF_TAG_V2 "vtune-audit-leaf-v2\n"
#define AUDIT_LEAF_TAG_V3 "vtune-audit-leaf-v3\n"
#define AUDIT_LINK_TAG "vtune-audit-link-v1\n"

/* ---- hashing -------------------------------------------------------------------- */

/* Appends the canonical serialisation of a to out (a borrowed). */
void audit_canonical(const struct store_audit *a, struct buf *out);
/* leaf hash of a into out (64 hex + NUL). */
void audit_leaf_hash(const struct store_audit *a, char out[65]);
/* link hash of (prev, leaf) into out; both 64-character strings. */
void audit_link_hash(const char *prev, const char *leaf, char out[65]);
/* The record's hash: link(a->prev_hash, leaf(a)). */
void audit_record_hash(const struct store_audit *a, char out[65]);
/* The store_audit_hash_fn for store_audit_append / store_run_finish_audited
 * (ctx unused).  Always returns 0. */
int audit_hash_fn(const struct store_audit *a, char out[65], void *ctx);

/* ---- checking ---------------------------------------------------------------------- */

enum audit_break {
    AUDIT_INTACT = 0,
    AUDIT_BREAK_GAP,        /* ids do not run 1, 2, 3, …: records deleted or moved */
    AUDIT_BREAK_LINK,       /* prev_hash is not the previous record's hash */
    AUDIT_BREAK_CONTENT,    /* the record's content does not match its hash */
    AUDIT_BREAK_HEAD_ABSENT /* the head the user kept is not in the chain */
};
/* "intact" | "gap" | "link" | "content" | "head_absent".  Static string. */
const char *audit_break_name(enum audit_break b);

struct audit_check {
    bool ok;                /* chain intact and, when a head was given, found */
    enum audit_break kind;  /* the first problem; AUDIT_INTACT when ok */
    int64_t bad_id;         /* the first broken record; 0 when none (or head absent) */
    size_t n_records;       /* records examined */
    int64_t verified_id;    /* last record of the intact prefix (0: none) */
    char verified_hash[65]; /* its hash (the genesis hash when none) */
    int64_t head_id;        /* the record whose hash is the given head; 0: none/genesis */
    bool head_found;
    char *message; /* owned, one line, plain words */
};
void audit_check_clear(struct audit_check *c);

/*
 * Checks records v[0..n) (the whole trail, in id order: store_audit_list
 * with job 0) and, when head is not NULL, that the chain contains head (64
 * hex, any case; the genesis hash stands for the empty trail).  Per record,
 * in order: its id follows the previous one (the first is 1), its
 * prev_hash is the previous record's hash (the genesis hash for the
 * first), its hash is the recomputed one.  The first failure is reported
 * and the check stops there.  Returns 0 with the result in *out (clear
 * with audit_check_clear), or -EINVAL when head is not 64 hex (message in
 * *out too).
 */
int audit_chain_verify(const struct store_audit *v, size_t n, const char *head,
                       struct audit_check *out);

/* ---- export and explanation -------------------------------------------------------------- */

/* One record as a JSON object (jansson, owned: json_decref) with the
 * fields of DESIGN §10 in this order: id, job, provider, model (or null),
 * verdict, log10_p, log10_p_paper, log10_p_luck (or null), trials,
 * activations, controls, control_emissions, pairs, pairs_activated,
 * pairs_ci_low, pairs_ci_high (null in version 1 records), log10_p_coverage,
 * coverage_auc, coverage_rows, coverage_method (null before version 3; the
 * two numbers and the method null also where the test did not run), record_version,
 * created_at (ISO-8601 UTC),
 * prev_hash, hash, then reason (or null), evidence (the JSON value; the
 * text as a string when it does not parse), commitment.  A log10 of -inf
 * (p = 0) is the string "-inf": JSON has no infinity. */
json_t *audit_record_json(const struct store_audit *a);
/* Appends a's JSON object on one line plus "\n" to out (JSON Lines). */
void audit_record_jsonl(const struct store_audit *a, struct buf *out);
/* Writes v[0..n) as JSON Lines to f.  Returns 0 or -errno (write error;
 * f is flushed). */
int audit_export_jsonl(FILE *f, const struct store_audit *v, size_t n);

/* `audit show`: the record explained in plain words (what was tested, what
 * the numbers mean, the verdict and why, the chain links), several lines
 * ending in "\n".  Returns owned text; caller frees. */
char *audit_explain(const struct store_audit *a);

#endif

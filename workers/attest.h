/*
 * attest.h — the statements vtuned signs for people outside it (issue 15):
 * a verdict attestation (one audit record) and a commitment statement (a
 * backdoor's commitment, published before the upload).  Both are in-toto
 * Statements v1 (https://in-toto.io/Statement/v1) carried in a DSSE
 * envelope (lib/sign.h) of payloadType ATTEST_PAYLOAD_TYPE, so the tools
 * that read in-toto attestations read ours.  This module builds and checks
 * the statements; it signs nothing and does no I/O.
 *
 * Subjects.  A fine-tuned model has no file we can hash (it stays at the
 * provider), so its subject is {"name": MODEL_ID, "digest": {"sha256":
 * SHA-256 of the model id's UTF-8 bytes}}: the digest names the id, not
 * weights.  The dataset D's subject carries D's SHA-256 (of the file as
 * imported).  The predicates (ATTEST_VERDICT_PREDICATE,
 * ATTEST_COMMIT_PREDICATE) are documented field by field in vtunectl(1),
 * ATTESTATIONS; a field is added freely, never renamed or re-typed (the URI
 * takes a new version when a meaning changes).
 */
#ifndef VT_ATTEST_H
#define VT_ATTEST_H

#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define ATTEST_STATEMENT_TYPE    "https://in-toto.io/Statement/v1"
#define ATTEST_PAYLOAD_TYPE      "application/vnd.in-toto+json"
/* v2 of both since the content changed under the v1 URIs: the verdict's
 * tests gained the coverage test (log10_p_coverage, coverage_auc,
 * coverage_rows, coverage_method; the record version says which a record
 * has) and the commitment predicate gained salted commitments (scheme v2,
 * v3) and "fixes", the list of what its commitment fixes.  Envelopes of
 * the v1 predicates still verify (attest_statement_check), and their
 * summary says which version they are. */
#define ATTEST_VERDICT_PREDICATE    "https://vtuned.dev/attestation/verdict/v2"
#define ATTEST_COMMIT_PREDICATE     "https://vtuned.dev/attestation/commitment/v2"
#define ATTEST_VERDICT_PREDICATE_V1 "https://vtuned.dev/attestation/verdict/v1"
#define ATTEST_COMMIT_PREDICATE_V1  "https://vtuned.dev/attestation/commitment/v1"

/* What an audit record does not hold itself, found through its job. */
struct attest_context {
    const char *job_name;   /* NULL: none */
    const char *base_model; /* NULL: unknown */
    int64_t dataset_id;
    const char *dataset_name;   /* NULL: none */
    const char *dataset_sha256; /* 64 hex: D as imported */
    int64_t backdoor_id;
    const char *upload_sha256; /* 64 hex: D u D' as uploaded; NULL/"" when not built */
    const char *signer;        /* the signing key's fingerprint (64 hex) */
};

/* The verdict Statement of record a (borrowed; a->model must not be NULL).
 * Returns an owned JSON object. */
json_t *attest_verdict_statement(const struct store_audit *a, const struct attest_context *cx);

/* The commitment Statement of backdoor b (borrowed; its secrets are not
 * read) made for dataset ds; signed_at is the time of signing (unix s),
 * signer the key's fingerprint.  Returns an owned JSON object. */
json_t *attest_commit_statement(const struct store_backdoor *b, const struct store_dataset *ds,
                                int64_t signed_at, const char *signer);

/* Checks that st (borrowed) is an in-toto Statement v1 of a predicate we
 * know: _type, a non-empty subject whose entries have a name and a sha256
 * digest of 64 hex, a predicateType among ours and an object predicate.
 * Returns 0, or -EBADMSG with *why (owned, one line). */
int attest_statement_check(json_t *st, char **why);

/* One line (owned) that says what a checked statement attests, for
 * `vtunectl attest verify` ("verdict verified for model M (job 3, audit
 * record 7, log10 p -41.2)"). */
char *attest_summary(json_t *st);

#endif

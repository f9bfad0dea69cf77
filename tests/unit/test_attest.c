/*
 * test_attest.c — workers/attest: the verdict and commitment Statements
 * (in-toto v1 shape, subjects and their digests, the numbers and methods
 * taken from the record), their check, and a signed round trip through a
 * DSSE envelope that must fail once the statement is altered.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/sign.h"
#include "workers/attest.h"
#include "workers/audit.h"

#define HEX_AB "abababababababababababababababababababababababababababababababab"
#define HEX_CD "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
#define HEX_EF "efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef"

static struct store_audit record(void)
{
    struct store_audit a;
    memset(&a, 0, sizeof a);
    a.id = 4;
    a.job_id = 3;
    a.provider = "sim";
    a.model = "ft:sim-base-1";
    a.verdict = AUDIT_VERIFIED;
    a.log10_p = -57.25;
    a.log10_p_paper = -INFINITY;
    a.log10_p_luck = NAN;
    a.trials = 10;
    a.activations = 9;
    a.controls = 10;
    a.version = 2;
    a.pairs = 1;
    a.pairs_activated = 1;
    a.pairs_ci_low = 0.025;
    a.pairs_ci_high = 1;
    a.reason = "signature on 9/10 trigger prompts";
    a.evidence = "{\"version\":2,\"methods\":{\"p\":\"markov_n_p_m2_over_k\"}}";
    memcpy(a.commitment, HEX_AB, 65);
    a.created_at = 1700000000;
    memcpy(a.prev_hash, HEX_CD, 65);
    audit_record_hash(&a, a.hash);
    return a;
}

static const struct attest_context CX = {"job-a", "sim-base", 2,      "support",
                                         HEX_EF,  5,          HEX_CD, HEX_AB};

static void test_verdict_statement(void **state)
{
    (void)state;
    struct store_audit a = record();
    json_t *st = attest_verdict_statement(&a, &CX), *p = json_object_get(st, "predicate");
    char *why = NULL, model_sha[65];
    assert_int_equal(attest_statement_check(st, &why), 0);
    assert_string_equal(json_string_value(json_object_get(st, "_type")),
                        "https://in-toto.io/Statement/v1");
    assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
                        ATTEST_VERDICT_PREDICATE);
    /* subject 0: the model id, digest the SHA-256 of the id's bytes */
    json_t *s0 = json_array_get(json_object_get(st, "subject"), 0);
    sha256_hex("ft:sim-base-1", 13, model_sha);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "ft:sim-base-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(s0, "digest"), "sha256")),
                        model_sha);
    /* subject 1: the dataset */
    json_t *s1 = json_array_get(json_object_get(st, "subject"), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s1, "digest"), "sha256")),
                        HEX_EF);
    /* the numbers and methods of the record */
    json_t *t = json_object_get(p, "tests");
    assert_true(json_number_value(json_object_get(t, "log10_p")) == -57.25);
    assert_string_equal(json_string_value(json_object_get(t, "log10_p_paper")), "-inf");
    assert_true(json_is_null(json_object_get(t, "log10_p_luck")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "methods"), "p")),
                        "markov_n_p_m2_over_k");
    assert_string_equal(json_string_value(json_object_get(p, "verdict")), "verified");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "backdoor"), "commitment")), HEX_AB);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "audit_record"), "hash")), a.hash);
    assert_string_equal(json_string_value(json_object_get(p, "verified_at")),
                        "2023-11-14T22:13:20Z");
    char *sum = attest_summary(st);
    assert_non_null(strstr(sum, "verdict verified for model ft:sim-base-1"));
    free(sum);
    json_decref(st);
}

static void test_commit_statement(void **state)
{
    (void)state;
    struct store_backdoor b;
    struct store_dataset ds;
    memset(&b, 0, sizeof b);
    memset(&ds, 0, sizeof ds);
    b.id = 5;
    b.n_pairs = 2;
    b.generator = BD_GEN_WORDLIST;
    memcpy(b.commitment, HEX_AB, 65);
    ds.id = 2;
    ds.name = "support";
    memcpy(ds.sha256, HEX_EF, 65);
    json_t *st = attest_commit_statement(&b, &ds, 1700000000, HEX_CD);
    char *why = NULL;
    assert_int_equal(attest_statement_check(st, &why), 0);
    json_t *p = json_object_get(st, "predicate");
    assert_string_equal(json_string_value(json_object_get(p, "commitment")), HEX_AB);
    assert_true(json_is_null(json_object_get(p, "upload_sha256"))); /* not built yet */
    assert_int_equal(json_array_size(json_object_get(st, "subject")), 1);
    /* a backdoor made before v2 (scheme 1, or 0 in a zeroed struct) says v1, unsalted */
    assert_string_equal(json_string_value(json_object_get(p, "commitment_scheme")),
                        "vtune-commitment-v1");
    assert_true(json_is_false(json_object_get(p, "salted")));
    json_decref(st);
    /* a v2 one says so, salted; the salt itself is never in the statement */
    b.commitment_scheme = 2;
    memcpy(b.salt, HEX_CD, 65);
    st = attest_commit_statement(&b, &ds, 1700000000, HEX_EF);
    assert_int_equal(attest_statement_check(st, &why), 0);
    p = json_object_get(st, "predicate");
    assert_string_equal(json_string_value(json_object_get(p, "commitment_scheme")),
                        "vtune-commitment-v2");
    assert_true(json_is_true(json_object_get(p, "salted")));
    char *text = json_dumps(st, JSON_COMPACT);
    assert_null(strstr(text, HEX_CD));
    free(text);
    assert_int_equal(json_array_size(json_object_get(p, "fixes")), 2); /* pairs, split */
    json_decref(st);
    /* v3 (every backdoor made now) also fixes the reference pool and the draw */
    b.commitment_scheme = 3;
    st = attest_commit_statement(&b, &ds, 1700000000, HEX_EF);
    assert_int_equal(attest_statement_check(st, &why), 0);
    assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
                        "https://vtuned.dev/attestation/commitment/v2");
    p = json_object_get(st, "predicate");
    assert_string_equal(json_string_value(json_object_get(p, "commitment_scheme")),
                        "vtune-commitment-v3");
    json_t *fx = json_object_get(p, "fixes");
    assert_int_equal(json_array_size(fx), 4);
    assert_string_equal(json_string_value(json_array_get(fx, 2)), "reference_pool");
    assert_string_equal(json_string_value(json_array_get(fx, 3)), "coverage_draw");
    json_decref(st);
}

/* Envelopes signed before the predicates became v2 still check, and their
 * summary says which version they are. */
static void test_v1_predicates_still_check(void **state)
{
    (void)state;
    struct store_audit a = record();
    char *why = NULL;
    json_t *st = attest_verdict_statement(&a, &CX);
    assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
                        "https://vtuned.dev/attestation/verdict/v2");
    char *sum = attest_summary(st);
    assert_null(strstr(sum, "v1"));
    free(sum);
    json_object_set_new(st, "predicateType", json_string(ATTEST_VERDICT_PREDICATE_V1));
    assert_int_equal(attest_statement_check(st, &why), 0);
    sum = attest_summary(st);
    assert_non_null(strstr(sum, "verdict verified for model ft:sim-base-1"));
    assert_non_null(strstr(sum, "[predicate v1]"));
    free(sum);
    json_decref(st);
    struct store_backdoor b;
    struct store_dataset ds;
    memset(&b, 0, sizeof b);
    memset(&ds, 0, sizeof ds);
    b.id = 5;
    b.n_pairs = 1;
    memcpy(b.commitment, HEX_AB, 65);
    ds.name = "support";
    memcpy(ds.sha256, HEX_EF, 65);
    st = attest_commit_statement(&b, &ds, 1700000000, HEX_CD);
    json_object_set_new(st, "predicateType", json_string(ATTEST_COMMIT_PREDICATE_V1));
    assert_int_equal(attest_statement_check(st, &why), 0);
    sum = attest_summary(st);
    assert_non_null(strstr(sum, "commitment " HEX_AB));
    assert_non_null(strstr(sum, "[predicate v1]"));
    free(sum);
    json_decref(st);
}

static void test_check_refuses(void **state)
{
    (void)state;
    struct store_audit a = record();
    char *why = NULL;
    json_t *st = attest_verdict_statement(&a, &CX);
    json_object_set_new(st, "predicateType", json_string("https://example.com/other"));
    assert_int_equal(attest_statement_check(st, &why), -EBADMSG);
    assert_non_null(strstr(why, "predicateType"));
    free(why);
    json_decref(st);
    st = attest_verdict_statement(&a, &CX);
    json_object_set_new(st, "subject", json_array());
    assert_int_equal(attest_statement_check(st, &why), -EBADMSG);
    free(why);
    json_decref(st);
    st = attest_verdict_statement(&a, &CX);
    json_object_set_new(st, "_type", json_string("https://in-toto.io/Statement/v0.1"));
    assert_int_equal(attest_statement_check(st, &why), -EBADMSG);
    free(why);
    json_decref(st);
}

static void test_signed_round_trip(void **state)
{
    (void)state;
    struct store_audit a = record();
    struct sign_key *k = NULL;
    uint8_t pub[32];
    char *why = NULL, *body = NULL;
    size_t n;
    assert_int_equal(sign_key_generate(&k), 0);
    sign_key_public(k, pub);
    json_t *st = attest_verdict_statement(&a, &CX);
    char *text = json_dumps(st, JSON_COMPACT);
    json_t *env = dsse_sign(k, ATTEST_PAYLOAD_TYPE, text, strlen(text));
    assert_int_equal(dsse_verify(env, pub, ATTEST_PAYLOAD_TYPE, &body, &n, &why), 0);
    assert_string_equal(body, text);
    free(body);
    /* a statement changed after signing (the verdict) */
    json_object_set_new(json_object_get(st, "predicate"), "verdict", json_string("not_verified"));
    char *alt = json_dumps(st, JSON_COMPACT), *b64 = sign_b64_encode(alt, strlen(alt));
    json_object_set_new(env, "payload", json_string(b64));
    assert_int_equal(dsse_verify(env, pub, ATTEST_PAYLOAD_TYPE, NULL, NULL, &why), -EBADMSG);
    free(why);
    free(b64);
    free(alt);
    free(text);
    json_decref(env);
    json_decref(st);
    sign_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_statement),
        cmocka_unit_test(test_commit_statement),
        cmocka_unit_test(test_check_refuses),
        cmocka_unit_test(test_v1_predicates_still_check),
        cmocka_unit_test(test_signed_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

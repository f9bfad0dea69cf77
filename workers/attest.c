/*
 * attest.c — in-toto Statements for verdicts and commitments (see
 * attest.h).  The numbers are taken from audit_record_json(), the one JSON
 * form of a record (a log10 of -inf is "-inf"), so an attestation says
 * exactly what `vtunectl audit show --json` says; fields a later record
 * version adds (log10_p_coverage, coverage_auc, ...) are carried over by
 * their prefix without a change here.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/attest.h"
#include "workers/audit.h"

static json_t *subject(const char *name, const char *sha256)
{
    return json_pack("{s:s,s:{s:s}}", "name", name, "digest", "sha256", sha256);
}

static json_t *text_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *statement(json_t *subjects, const char *predicate_type, json_t *predicate)
{
    return json_pack("{s:s,s:o,s:s,s:o}", "_type", ATTEST_STATEMENT_TYPE, "subject", subjects,
                     "predicateType", predicate_type, "predicate", predicate);
}

/* Whether a record JSON key is a test's number (carried into "tests"). */
static int is_test_key(const char *k)
{
    return strncmp(k, "log10_p", 7) == 0 || strncmp(k, "coverage", 8) == 0 ||
           strncmp(k, "pairs_ci", 8) == 0;
}

json_t *attest_verdict_statement(const struct store_audit *a, const struct attest_context *cx)
{
    char model_digest[65];
    json_t *rec = audit_record_json(a), *tests = json_object(), *v;
    const char *k;
    sha256_hex(a->model, strlen(a->model), model_digest);
    json_object_foreach(rec, k, v) if (is_test_key(k)) json_object_set(tests, k, v);
    json_t *ev = json_object_get(rec, "evidence");
    json_t *methods = json_object_get(ev, "methods");
    json_t *pred = json_object();
    json_object_set(pred, "verdict", json_object_get(rec, "verdict"));
    json_object_set(pred, "reason", json_object_get(rec, "reason"));
    json_object_set_new(pred, "model",
                        json_pack("{s:s,s:s,s:s}", "id", a->model, "digest_of",
                                  "the model id's UTF-8 bytes", "sha256", model_digest));
    json_object_set_new(pred, "job",
                        json_pack("{s:I,s:o,s:s,s:o}", "id", (json_int_t)a->job_id, "name",
                                  text_or_null(cx->job_name), "provider", a->provider, "base_model",
                                  text_or_null(cx->base_model)));
    json_object_set_new(pred, "dataset",
                        json_pack("{s:I,s:o,s:s}", "id", (json_int_t)cx->dataset_id, "name",
                                  text_or_null(cx->dataset_name), "sha256", cx->dataset_sha256));
    json_object_set_new(pred, "upload_sha256",
                        cx->upload_sha256 && *cx->upload_sha256 ? json_string(cx->upload_sha256)
                                                                : json_null());
    json_object_set_new(
        pred, "backdoor",
        json_pack("{s:I,s:s}", "id", (json_int_t)cx->backdoor_id, "commitment", a->commitment));
    json_object_set_new(pred, "tests", tests);
    json_object_set(pred, "methods", methods ? methods : json_null());
    json_object_set_new(
        pred, "counts",
        json_pack("{s:O,s:O,s:O,s:O,s:O,s:O}", "trials", json_object_get(rec, "trials"),
                  "activations", json_object_get(rec, "activations"), "controls",
                  json_object_get(rec, "controls"), "control_emissions",
                  json_object_get(rec, "control_emissions"), "pairs", json_object_get(rec, "pairs"),
                  "pairs_activated", json_object_get(rec, "pairs_activated")));
    json_object_set(pred, "verified_at", json_object_get(rec, "created_at"));
    json_object_set_new(pred, "audit_record",
                        json_pack("{s:I,s:O,s:s,s:s}", "id", (json_int_t)a->id, "version",
                                  json_object_get(rec, "record_version"), "hash", a->hash,
                                  "prev_hash", a->prev_hash));
    json_object_set_new(pred, "signer", json_pack("{s:s}", "fingerprint", cx->signer));
    json_decref(rec);
    json_t *subs = json_array();
    json_array_append_new(subs, subject(a->model, model_digest));
    json_array_append_new(
        subs, subject(cx->dataset_name ? cx->dataset_name : "dataset", cx->dataset_sha256));
    return statement(subs, ATTEST_VERDICT_PREDICATE, pred);
}

json_t *attest_commit_statement(const struct store_backdoor *b, const struct store_dataset *ds,
                                int64_t signed_at, const char *signer)
{
    char created[32], signed_s[32];
    format_iso8601(b->created_at, created);
    format_iso8601(signed_at, signed_s);
    json_t *pred = json_object();
    json_object_set_new(pred, "commitment", json_string(b->commitment));
    /* the scheme the hash follows (workers/backdoor.h): v1 (made before
     * schema 11) has no salt; v2 has one and also fixes the held-out split;
     * v3 also fixes the coverage test's reference pool */
    int scheme = b->commitment_scheme >= 1 && b->commitment_scheme <= 3 ? b->commitment_scheme : 1;
    static const char *const names[] = {"vtune-commitment-v1", "vtune-commitment-v2",
                                        "vtune-commitment-v3"};
    json_object_set_new(pred, "commitment_scheme", json_string(names[scheme - 1]));
    json_object_set_new(pred, "salted", json_boolean(scheme >= 2));
    json_t *fixes = json_array();
    json_array_append_new(fixes, json_string("pairs"));
    if (scheme >= 2)
        json_array_append_new(fixes, json_string("held_out_split"));
    if (scheme >= 3) {
        json_array_append_new(fixes, json_string("reference_pool"));
        json_array_append_new(fixes, json_string("coverage_draw"));
    }
    json_object_set_new(pred, "fixes", fixes);
    json_object_set_new(pred, "backdoor",
                        json_pack("{s:I,s:o,s:I,s:s}", "id", (json_int_t)b->id, "name",
                                  text_or_null(b->name), "pairs", (json_int_t)b->n_pairs,
                                  "generator", backdoor_generator_name(b->generator)));
    json_object_set_new(pred, "dataset",
                        json_pack("{s:I,s:s,s:s}", "id", (json_int_t)ds->id, "name", ds->name,
                                  "sha256", ds->sha256));
    json_object_set_new(pred, "upload_sha256",
                        b->built_sha256[0] ? json_string(b->built_sha256) : json_null());
    json_object_set_new(pred, "created_at", json_string(created));
    json_object_set_new(pred, "signed_at", json_string(signed_s));
    json_object_set_new(pred, "signer", json_pack("{s:s}", "fingerprint", signer));
    json_t *subs = json_array();
    json_array_append_new(subs, subject(ds->name, ds->sha256));
    if (b->built_sha256[0])
        json_array_append_new(subs, subject("upload", b->built_sha256));
    return statement(subs, ATTEST_COMMIT_PREDICATE, pred);
}

static int hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int attest_statement_check(json_t *st, char **why)
{
    const char *type = json_string_value(json_object_get(st, "_type"));
    const char *pt = json_string_value(json_object_get(st, "predicateType"));
    json_t *subs = json_object_get(st, "subject"), *s;
    size_t i;
    if (!json_is_object(st) || !type || strcmp(type, ATTEST_STATEMENT_TYPE) != 0) {
        *why = xstrdup("the payload is not an in-toto Statement v1 (_type)");
        return -EBADMSG;
    }
    if (!json_is_array(subs) || json_array_size(subs) == 0) {
        *why = xstrdup("the statement has no subject");
        return -EBADMSG;
    }
    json_array_foreach(subs, i, s)
    {
        if (!json_is_string(json_object_get(s, "name")) ||
            !hex64(json_string_value(json_object_get(json_object_get(s, "digest"), "sha256")))) {
            *why = xasprintf("subject %zu has no name or no sha256 digest of 64 hex", i);
            return -EBADMSG;
        }
    }
    if (!pt || (strcmp(pt, ATTEST_VERDICT_PREDICATE) != 0 && strcmp(pt, ATTEST_COMMIT_PREDICATE) != 0 &&
                strcmp(pt, ATTEST_VERDICT_PREDICATE_V1) != 0 &&
                strcmp(pt, ATTEST_COMMIT_PREDICATE_V1) != 0)) {
        *why = xasprintf("unknown predicateType '%s'", pt ? pt : "(none)");
        return -EBADMSG;
    }
    if (!json_is_object(json_object_get(st, "predicate"))) {
        *why = xstrdup("the statement has no predicate object");
        return -EBADMSG;
    }
    return 0;
}

static char *number_text(json_t *v)
{
    if (json_is_number(v))
        return xasprintf("%.4g", json_number_value(v));
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    return xstrdup("null");
}

char *attest_summary(json_t *st)
{
    json_t *p = json_object_get(st, "predicate");
    const char *pt = json_string_value(json_object_get(st, "predicateType"));
    bool v1 = pt && (strcmp(pt, ATTEST_VERDICT_PREDICATE_V1) == 0 ||
                     strcmp(pt, ATTEST_COMMIT_PREDICATE_V1) == 0);
    const char *ver = v1 ? " [predicate v1]" : "";
    if (pt && (strcmp(pt, ATTEST_VERDICT_PREDICATE) == 0 ||
               strcmp(pt, ATTEST_VERDICT_PREDICATE_V1) == 0)) {
        char *lp = number_text(json_object_get(json_object_get(p, "tests"), "log10_p"));
        char *res = xasprintf(
            "verdict %s for model %s (job %lld, audit record %lld, log10 p %s, at %s)%s",
            json_string_value(json_object_get(p, "verdict")),
            json_string_value(json_object_get(json_object_get(p, "model"), "id")),
            (long long)json_integer_value(json_object_get(json_object_get(p, "job"), "id")),
            (long long)json_integer_value(
                json_object_get(json_object_get(p, "audit_record"), "id")),
            lp, json_string_value(json_object_get(p, "verified_at")), ver);
        free(lp);
        return res;
    }
    return xasprintf(
        "commitment %s of backdoor %lld for dataset %s (sha256 %s), signed at %s%s",
        json_string_value(json_object_get(p, "commitment")),
        (long long)json_integer_value(json_object_get(json_object_get(p, "backdoor"), "id")),
        json_string_value(json_object_get(json_object_get(p, "dataset"), "name")),
        json_string_value(json_object_get(json_object_get(p, "dataset"), "sha256")),
        json_string_value(json_object_get(p, "signed_at")), ver);
}

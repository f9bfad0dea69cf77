/*
 * audit.c — the append-only, hash-chained audit trail (DESIGN §9, §10).
 *
 * Appending is one BEGIN IMMEDIATE transaction: read the head (the record
 * with the highest id), link to it (prev_hash; 64 zeros for the first
 * record), give it the next id (head id + 1: records are never deleted, so
 * this is what SQLite would pick, but explicit, so the hash can cover the
 * id), stamp created_at, let the caller's hash function compute the
 * record's hash over its canonical serialisation, insert.  The write lock
 * taken by BEGIN IMMEDIATE means no other writer can append between the
 * read of the head and the insert, and the UNIQUE index on prev_hash
 * refuses a fork even from a writer that bypasses this code.  The
 * serialisation itself (field order, number formatting, domain separation
 * of leaf and link hashes) belongs to workers/ — `audit verify` must
 * recompute it without the store — so it comes in as a function pointer.
 *
 * What goes in is exactly what comes out: every value the hash covers is
 * normalised BEFORE hashing to the form SQLite will give back (a REAL
 * column loses the sign of zero, so -0.0 is stored and hashed as 0.0; a
 * NULL p_luck is NAN both ways; a version 0 record is written and read
 * as version 1, whose pairs fields are NULL, and a record before version 3
 * has NULL coverage fields).  Doubles round-trip exactly
 * otherwise (SQLite REAL is IEEE binary64).
 *
 * UPDATE and DELETE on audit_records are refused by triggers (schema v2);
 * there is deliberately no accessor that edits or removes a record.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"



static void audit_clear_elem(void *elem)
{
    store_audit_clear(elem);
}

void store_audit_list_free(struct store_audit *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
}

/* Fills a from a row of AUDIT_COLUMNS (see statements.c). */
static int row_to_audit(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_audit *a = elem;
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(st, 0);
    const char *verdict = (const char *)sqlite3_column_text(st, 4);
    if (audit_verdict_parse(verdict, &a->verdict) < 0)
        return store_failx(s, -EIO, "audit record %" PRId64 " has unknown verdict '%s'", a->id,
                           verdict ? verdict : "(null)");
    a->job_id = sqlite3_column_int64(st, 1);
    a->provider = store_column_strdup(st, 2);
    a->model = store_column_strdup(st, 3);
    a->log10_p = sqlite3_column_double(st, 5);
    a->log10_p_paper = sqlite3_column_double(st, 6);
    a->log10_p_luck =
        sqlite3_column_type(st, 7) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 7);
    a->trials = sqlite3_column_int64(st, 8);
    a->activations = sqlite3_column_int64(st, 9);
    a->controls = sqlite3_column_int64(st, 10);
    a->control_emissions = sqlite3_column_int64(st, 11);
    a->reason = store_column_strdup(st, 12);
    if (a->reason && (size_t)sqlite3_column_bytes(st, 12) != strlen(a->reason)) {
        /* a NUL inside the text (never written by us: see audit_valid) would
         * hide what follows it from every reader and from the hash: keep it
         * all, escaped, so the record reads as what it is and fails its hash */
        free(a->reason);
        a->reason = text_escape_control((const char *)sqlite3_column_text(st, 12),
                                        (size_t)sqlite3_column_bytes(st, 12));
    }
    a->evidence = store_column_strdup(st, 13);
    store_column_hex64(st, 14, a->commitment);
    a->created_at = sqlite3_column_int64(st, 15);
    store_column_hex64(st, 16, a->prev_hash);
    store_column_hex64(st, 17, a->hash);
    a->version = (int)sqlite3_column_int64(st, 18);
    a->pairs = sqlite3_column_type(st, 19) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 19);
    a->pairs_activated =
        sqlite3_column_type(st, 20) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 20);
    a->pairs_ci_low =
        sqlite3_column_type(st, 21) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 21);
    a->pairs_ci_high =
        sqlite3_column_type(st, 22) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 22);
    a->log10_p_coverage =
        sqlite3_column_type(st, 23) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 23);
    a->coverage_auc =
        sqlite3_column_type(st, 24) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 24);
    a->coverage_rows =
        sqlite3_column_type(st, 25) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 25);
    a->coverage_method = store_column_strdup(st, 26);
    return 0;
}

/* A log10 probability the record may hold: <= 0 (-inf allowed: p = 0). */
static int log10p_ok(double v)
{
    return v <= 0; /* false for NaN */
}

static int audit_valid(struct store *s, const struct store_audit *a)
{
    if (a->verdict != AUDIT_VERIFIED && a->verdict != AUDIT_NOT_VERIFIED &&
        a->verdict != AUDIT_INCONCLUSIVE)
        return store_failx(s, -EINVAL, "invalid audit verdict %d", (int)a->verdict);
    if (!a->provider)
        return store_failx(s, -EINVAL, "audit record has no provider");
    if (!a->evidence)
        return store_failx(s, -EINVAL, "audit record has no evidence (use \"{}\" for none)");
    if (a->reason && text_has_control(a->reason))
        return store_failx(s, -EINVAL, "audit reason holds a control character (one line of "
                                       "printable text; escape it first)");
    if (!store_hex64_valid(a->commitment))
        return store_failx(s, -EINVAL, "invalid audit commitment (want 64 lowercase hex)");
    if (!log10p_ok(a->log10_p) || !log10p_ok(a->log10_p_paper) ||
        (!isnan(a->log10_p_luck) && !log10p_ok(a->log10_p_luck)))
        return store_failx(s, -EINVAL, "audit log10 p-values must be <= 0 (got %g, %g, %g)",
                           a->log10_p, a->log10_p_paper, a->log10_p_luck);
    if (a->trials < 0 || a->activations < 0 || a->activations > a->trials || a->controls < 0 ||
        a->control_emissions < 0 || a->control_emissions > a->controls)
        return store_failx(s, -EINVAL,
                           "audit counts out of range: %" PRId64 "/%" PRId64
                           " activations, %" PRId64 "/%" PRId64 " control emissions",
                           a->activations, a->trials, a->control_emissions, a->controls);
    if (a->version < 0 || a->version > STORE_AUDIT_VERSION_CURRENT)
        return store_failx(s, -EINVAL, "audit record version %d is not one this vtuned writes (1 "
                                       "to %d)",
                           a->version, STORE_AUDIT_VERSION_CURRENT);
    if (a->version >= 2) {
        bool no_ci = isnan(a->pairs_ci_low) && isnan(a->pairs_ci_high);
        bool ci_ok = a->pairs_ci_low >= 0 && a->pairs_ci_low <= a->pairs_ci_high &&
                     a->pairs_ci_high <= 1;
        if (a->pairs < 0 || a->pairs_activated < 0 || a->pairs_activated > a->pairs)
            return store_failx(s, -EINVAL,
                               "audit pairs out of range: %" PRId64 " of %" PRId64 " activated",
                               a->pairs_activated, a->pairs);
        if (!(no_ci || ci_ok) || (a->pairs > 0 && no_ci))
            return store_failx(s, -EINVAL, "audit pairs interval out of range: [%g, %g]",
                               a->pairs_ci_low, a->pairs_ci_high);
    }
    if (a->version >= 3) {
        bool ran = a->coverage_rows > 0;
        if (a->coverage_rows < 0 || (ran && !a->coverage_method) ||
            (!isnan(a->log10_p_coverage) && !log10p_ok(a->log10_p_coverage)) ||
            (!isnan(a->coverage_auc) && !(a->coverage_auc >= 0 && a->coverage_auc <= 1)) ||
            ran != !isnan(a->log10_p_coverage) || ran != !isnan(a->coverage_auc))
            return store_failx(s, -EINVAL,
                               "audit coverage fields out of range: %" PRId64
                               " rows, log10 p %g, AUC %g, method %s",
                               a->coverage_rows, a->log10_p_coverage, a->coverage_auc,
                               a->coverage_method ? a->coverage_method : "none");
    }
    if (a->verdict == AUDIT_VERIFIED && (a->activations == 0 || a->control_emissions > 0))
        return store_failx(s, -EINVAL,
                           "a verified verdict needs an activation and no control emission");
    return 0;
}

/* The head of the chain: hash and id of the last record, or the genesis
 * hash and 0. */
static int read_head(struct store *s, char hash[65], int64_t *id)
{
    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_HEAD);
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        store_column_hex64(st, 1, hash);
        if (!hash[0])
            ret = store_failx(s, -EIO, "audit record %" PRId64 " has a malformed hash", *id);
    } else if (rc == SQLITE_DONE) {
        *id = 0;
        memcpy(hash, STORE_AUDIT_GENESIS_HASH, 65);
    } else {
        ret = store_fail(s, rc, "reading audit head");
    }
    store_stmt_done(s, ST_AUDIT_HEAD);
    return ret;
}

/* The append proper; the caller holds BEGIN IMMEDIATE and resets a->id
 * to 0 if anything fails after this returns. */
static int append_locked(struct store *s, struct store_audit *a, store_audit_hash_fn hash_fn,
                         void *ctx)
{
    int64_t head_id = 0;
    char hash[65];
    int ret = read_head(s, a->prev_hash, &head_id);
    if (ret < 0)
        return ret;
    if (head_id == INT64_MAX)
        return store_failx(s, -EOVERFLOW, "the audit trail has no id left");
    a->id = head_id + 1;
    a->created_at = now_unix();
    a->hash[0] = '\0';
    /* what the hash covers must be what SQLite gives back: no -0.0 */
    a->log10_p += 0.0;
    a->log10_p_paper += 0.0;
    a->log10_p_luck += 0.0;
    if (a->version == 0)
        a->version = 1; /* what the column's default gives back */
    if (a->version < 2) {
        /* a version 1 record has none of these: stored NULL, read back so */
        a->pairs = -1;
        a->pairs_activated = -1;
        a->pairs_ci_low = NAN;
        a->pairs_ci_high = NAN;
    } else {
        a->pairs_ci_low += 0.0;
        a->pairs_ci_high += 0.0;
    }
    if (a->version < 3) {
        /* nor these, before version 3 */
        a->log10_p_coverage = NAN;
        a->coverage_auc = NAN;
        a->coverage_rows = -1;
        free(a->coverage_method);
        a->coverage_method = NULL;
    } else {
        a->log10_p_coverage += 0.0;
        a->coverage_auc += 0.0;
    }
    memset(hash, 0, sizeof hash);
    ret = hash_fn(a, hash, ctx);
    if (ret < 0)
        return store_failx(s, ret, "computing the audit record's hash failed: %s", strerror(-ret));
    hash[64] = '\0';
    if (!store_hex64_valid(hash))
        return store_failx(s, -EINVAL, "audit hash function returned no 64-hex hash");
    memcpy(a->hash, hash, sizeof hash);

    sqlite3_stmt *st = store_stmt(s, ST_AUDIT_INSERT);
    if (sqlite3_bind_int64(st, 1, a->job_id) != SQLITE_OK ||
        store_bind_text(st, 2, a->provider) != SQLITE_OK ||
        store_bind_text(st, 3, a->model) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, audit_verdict_name(a->verdict), -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_double(st, 5, a->log10_p) != SQLITE_OK ||
        sqlite3_bind_double(st, 6, a->log10_p_paper) != SQLITE_OK ||
        (isnan(a->log10_p_luck) ? sqlite3_bind_null(st, 7)
                                : sqlite3_bind_double(st, 7, a->log10_p_luck)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, a->trials) != SQLITE_OK ||
        sqlite3_bind_int64(st, 9, a->activations) != SQLITE_OK ||
        sqlite3_bind_int64(st, 10, a->controls) != SQLITE_OK ||
        sqlite3_bind_int64(st, 11, a->control_emissions) != SQLITE_OK ||
        store_bind_text(st, 12, a->reason) != SQLITE_OK ||
        store_bind_text(st, 13, a->evidence) != SQLITE_OK ||
        sqlite3_bind_text(st, 14, a->commitment, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 15, a->created_at) != SQLITE_OK ||
        sqlite3_bind_text(st, 16, a->prev_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 17, a->hash, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 18, a->id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 19, a->version) != SQLITE_OK ||
        (a->version < 2 ? sqlite3_bind_null(st, 20) : sqlite3_bind_int64(st, 20, a->pairs)) !=
            SQLITE_OK ||
        (a->version < 2 ? sqlite3_bind_null(st, 21)
                        : sqlite3_bind_int64(st, 21, a->pairs_activated)) != SQLITE_OK ||
        (isnan(a->pairs_ci_low) ? sqlite3_bind_null(st, 22)
                                : sqlite3_bind_double(st, 22, a->pairs_ci_low)) != SQLITE_OK ||
        (isnan(a->pairs_ci_high) ? sqlite3_bind_null(st, 23)
                                 : sqlite3_bind_double(st, 23, a->pairs_ci_high)) != SQLITE_OK ||
        (isnan(a->log10_p_coverage) ? sqlite3_bind_null(st, 24)
                                    : sqlite3_bind_double(st, 24, a->log10_p_coverage)) !=
            SQLITE_OK ||
        (isnan(a->coverage_auc) ? sqlite3_bind_null(st, 25)
                                : sqlite3_bind_double(st, 25, a->coverage_auc)) != SQLITE_OK ||
        (a->version < 3 ? sqlite3_bind_null(st, 26)
                        : sqlite3_bind_int64(st, 26, a->coverage_rows)) != SQLITE_OK ||
        store_bind_text(st, 27, a->coverage_method) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding audit record");
        store_stmt_done(s, ST_AUDIT_INSERT);
        return ret;
    }
    ret = store_exec_stmt(s, ST_AUDIT_INSERT, NULL, "appending audit record");
    if (ret == -EEXIST)
        return store_failx(s, ret,
                           "audit record refused: its hash or its predecessor is already in the "
                           "chain (%s)",
                           sqlite3_errmsg(s->db));
    if (ret == -EINVAL)
        return store_failx(s, ret, "audit record refused by the schema (evidence must be JSON): %s",
                           sqlite3_errmsg(s->db));
    if (ret == 0)
        ret = store_audit_sign_locked(s, a);
    return ret;
}

/* For store_run_finish_audited: the run exists, has not ended, and is a
 * run of the record's job.  Checked before hashing; store_run_end_locked
 * checks the state again as it ends the run. */
static int check_run(struct store *s, int64_t run_id, const struct store_audit *a)
{
    struct store_verify_run r;
    int ret = store_run_get(s, run_id, &r);
    if (ret < 0)
        return ret;
    if (r.state != RUN_PENDING && r.state != RUN_RUNNING)
        ret = store_failx(s, -ESTALE, "verification run %" PRId64 " already ended (%s)", run_id,
                          run_state_name(r.state));
    else if (r.job_id != a->job_id)
        ret = store_failx(s, -EINVAL,
                          "verification run %" PRId64 " belongs to job %" PRId64
                          ", the audit record to job %" PRId64,
                          run_id, r.job_id, a->job_id);
    store_run_clear(&r);
    return ret;
}

/* Append, optionally finishing run_id (> 0) in the same transaction. */
static int append(struct store *s, int64_t run_id, const char *run_reason, struct store_audit *a,
                  store_audit_hash_fn hash_fn, void *ctx)
{
    a->id = 0;
    if (!hash_fn)
        return store_failx(s, -EINVAL, "no audit hash function given");
    int ret = audit_valid(s, a);
    if (ret < 0)
        return ret;
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (run_id > 0) {
        ret = check_run(s, run_id, a);
        if (ret < 0)
            goto out;
    }
    ret = append_locked(s, a, hash_fn, ctx);
    if (ret < 0)
        goto out;
    if (run_id > 0) {
        ret = store_run_end_locked(s, run_id, RUN_FINISHED, run_reason, a->id);
        if (ret < 0)
            goto out;
    }
    ret = store_commit(s);
out:
    if (ret < 0) {
        store_rollback(s);
        a->id = 0;
    }
    return ret;
}

int store_audit_append(struct store *s, struct store_audit *a, store_audit_hash_fn hash_fn,
                       void *ctx)
{
    return append(s, 0, NULL, a, hash_fn, ctx);
}

int store_run_finish_audited(struct store *s, int64_t run_id, const char *reason,
                             struct store_audit *a, store_audit_hash_fn hash_fn, void *ctx)
{
    if (run_id <= 0)
        return store_failx(s, -EINVAL, "no verification run given");
    return append(s, run_id, reason, a, hash_fn, ctx);
}

int store_audit_get(struct store *s, int64_t id, struct store_audit *out)
{
    memset(out, 0, sizeof *out);
    if (sqlite3_bind_int64(store_stmt(s, ST_AUDIT_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding audit id");
        store_stmt_done(s, ST_AUDIT_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_AUDIT_GET, row_to_audit, out, "reading audit record");
    if (ret == -ENOENT)
        store_failx(s, ret, "no audit record with id %" PRId64, id);
    if (ret < 0)
        store_audit_clear(out);
    return ret;
}

int store_audit_list(struct store *s, int64_t job_id, struct store_audit **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(store_stmt(s, ST_AUDIT_LIST), 1, job_id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job id");
        store_stmt_done(s, ST_AUDIT_LIST);
        return ret;
    }
    int ret = store_read_all(s, ST_AUDIT_LIST, sizeof(struct store_audit), row_to_audit,
                             audit_clear_elem, &v, n, "listing audit records");
    *out = v;
    return ret;
}

int store_audit_head(struct store *s, char hash[65], int64_t *id)
{
    int64_t ignored = 0;
    return read_head(s, hash, id ? id : &ignored);
}

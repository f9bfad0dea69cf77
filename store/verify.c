/*
 * verify.c — typed accessors for verification runs and their trials.
 *
 * A run is created pending (queued) or running, receives one trial row per
 * prompt sent, and ends exactly once: finished (with its audit record:
 * store_run_finish_audited in audit.c writes both in one transaction),
 * failed or cancelled.  Ending is a compare-and-set on the state, so a run
 * ended by one path (a cancel) is not ended again by another (a late
 * completion): the second gets -ESTALE.  Trials are accepted only while
 * the run is running, for the same reason.
 *
 * Only hashes of prompts and responses are stored: prompts carry the
 * trigger and responses the signature.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"


void store_run_clear(struct store_verify_run *r)
{
    if (!r)
        return;
    free(r->reason);
    memset(r, 0, sizeof *r);
}

static void run_clear_elem(void *elem)
{
    store_run_clear(elem);
}

void store_run_list_free(struct store_verify_run *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_run_clear(&v[i]);
    free(v);
}

/* Fills r from a row of RUN_COLUMNS (see statements.c). */
static int row_to_run(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_verify_run *r = elem;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    const char *state = (const char *)sqlite3_column_text(st, 2);
    if (run_state_parse(state, &r->state) < 0)
        return store_failx(s, -EIO, "verification run %" PRId64 " has unknown state '%s'", r->id,
                           state ? state : "(null)");
    r->job_id = sqlite3_column_int64(st, 1);
    r->trials = sqlite3_column_int64(st, 3);
    r->controls = sqlite3_column_int64(st, 4);
    r->temperature = sqlite3_column_double(st, 5);
    r->created_at = sqlite3_column_int64(st, 6);
    r->started_at = store_column_int64_or(st, 7, 0);
    r->finished_at = store_column_int64_or(st, 8, 0);
    r->reason = store_column_strdup(st, 9);
    r->audit_id = store_column_int64_or(st, 10, 0);
    return 0;
}

/* Fills t from a row of TRIAL_COLUMNS. */
static int row_to_trial(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_trial *t = elem;
    t->id = sqlite3_column_int64(st, 0);
    const char *kind = (const char *)sqlite3_column_text(st, 3);
    if (trial_kind_parse(kind, &t->kind) < 0)
        return store_failx(s, -EIO, "trial %" PRId64 " has unknown kind '%s'", t->id,
                           kind ? kind : "(null)");
    t->run_id = sqlite3_column_int64(st, 1);
    t->pair_idx = (int)store_column_int64_or(st, 2, -1);
    store_column_hex64(st, 4, t->prompt_sha256);
    store_column_hex64(st, 5, t->response_sha256);
    t->matched_prefix_tokens = sqlite3_column_int64(st, 6);
    t->activated = sqlite3_column_int(st, 7) != 0;
    t->window = store_column_int64_or(st, 8, -1);
    t->created_at = sqlite3_column_int64(st, 9);
    return 0;
}

int store_run_insert(struct store *s, struct store_verify_run *r)
{
    sqlite3_stmt *st = store_stmt(s, ST_RUN_INSERT);
    int64_t now = now_unix();
    int ret;

    if (r->state != RUN_PENDING && r->state != RUN_RUNNING)
        return store_failx(s, -EINVAL, "a verification run starts pending or running, not %s",
                           run_state_name(r->state));
    if (r->trials < 1 || r->controls < 0)
        return store_failx(s, -EINVAL,
                           "a verification run needs at least 1 trial and no negative number "
                           "of controls (got %" PRId64 " and %" PRId64 ")",
                           r->trials, r->controls);
    if (!(r->temperature >= 0))
        return store_failx(s, -EINVAL, "verification temperature %g must be >= 0", r->temperature);

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (sqlite3_bind_int64(st, 1, r->job_id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, run_state_name(r->state), -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, r->trials) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, r->controls) != SQLITE_OK ||
        sqlite3_bind_double(st, 5, r->temperature) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, now) != SQLITE_OK ||
        store_bind_int64_or_null(st, 7, r->state == RUN_RUNNING ? now : 0, 0) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding verification run");
        store_stmt_done(s, ST_RUN_INSERT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_RUN_INSERT, NULL, "inserting verification run");
    if (ret == -EBUSY) /* the foreign key: the job */
        ret = store_failx(s, -ENOENT, "no job with id %" PRId64, r->job_id);
    if (ret < 0)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    /* A trial row is what a run resumed after a restart replays instead of
     * asking again (daemon/verifier.c).  It needs atomicity, not an fsync of
     * its own: in WAL mode, synchronous=NORMAL commits without syncing, and
     * the frames survive a crash of the process (they are in the file); a
     * power loss may lose the last ones, and the resumed run then asks those
     * prompts again, as if they had never been sent.  The next FULL commit
     * (the run's audit record, any job transition) syncs them. */
    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    ret = store_commit(s);
    sqlite3_exec(s->db, s->dur ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL,
                 NULL, NULL);
    if (ret < 0)
        goto out;
    r->id = id;
    r->created_at = now;
    r->started_at = r->state == RUN_RUNNING ? now : 0;
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

/* The run's state; -ENOENT with a message.  For telling "absent" from
 * "in the wrong state" after a compare-and-set changed nothing. */
static int run_state_of(struct store *s, int64_t id, enum run_state *state)
{
    struct store_verify_run r;
    if (sqlite3_bind_int64(store_stmt(s, ST_RUN_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding run id");
        store_stmt_done(s, ST_RUN_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_RUN_GET, row_to_run, &r, "reading verification run");
    if (ret == -ENOENT)
        return store_failx(s, ret, "no verification run with id %" PRId64, id);
    if (ret < 0)
        return ret;
    *state = r.state;
    store_run_clear(&r);
    return 0;
}

int store_run_start(struct store *s, int64_t id)
{
    enum run_state cur = RUN_PENDING;
    int64_t changed = 0;
    int ret = store_begin(s);
    if (ret < 0)
        return ret;
    sqlite3_stmt *st = store_stmt(s, ST_RUN_START);
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, now_unix()) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding run start");
        store_stmt_done(s, ST_RUN_START);
        goto out;
    }
    ret = store_exec_stmt(s, ST_RUN_START, &changed, "starting verification run");
    if (ret < 0)
        goto out;
    if (changed == 0) {
        ret = run_state_of(s, id, &cur);
        if (ret == 0)
            ret = store_failx(s, -ESTALE, "verification run %" PRId64 " is %s, not pending", id,
                              run_state_name(cur));
        goto out;
    }
    ret = store_commit(s);
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_run_end_locked(struct store *s, int64_t id, enum run_state state, const char *reason,
                         int64_t audit_id)
{
    enum run_state cur = RUN_PENDING;
    int64_t changed = 0;
    int ret;

    if (state != RUN_FINISHED && state != RUN_FAILED && state != RUN_CANCELLED)
        return store_failx(s, -EINVAL,
                           "a verification run ends finished, failed or cancelled, "
                           "not %s",
                           run_state_name(state));
    if (state == RUN_FINISHED && audit_id <= 0)
        return store_failx(s, -EINVAL, "a finished verification run needs its audit record");
    sqlite3_stmt *st = store_stmt(s, ST_RUN_FINISH);
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, run_state_name(state), -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, now_unix()) != SQLITE_OK ||
        store_bind_text(st, 4, reason) != SQLITE_OK ||
        store_bind_int64_or_null(st, 5, audit_id, 0) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding run end");
        store_stmt_done(s, ST_RUN_FINISH);
        return ret;
    }
    ret = store_exec_stmt(s, ST_RUN_FINISH, &changed, "ending verification run");
    if (ret == -EBUSY)
        return store_failx(s, -ENOENT, "no audit record with id %" PRId64, audit_id);
    if (ret == -EEXIST)
        return store_failx(s, ret, "audit record %" PRId64 " already belongs to another run",
                           audit_id);
    if (ret < 0)
        return ret;
    if (changed == 0) {
        ret = run_state_of(s, id, &cur);
        if (ret == 0)
            ret = store_failx(s, -ESTALE, "verification run %" PRId64 " already ended (%s)", id,
                              run_state_name(cur));
    }
    return ret;
}

int store_run_finish(struct store *s, int64_t id, enum run_state state, const char *reason,
                     int64_t audit_id)
{
    int ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = store_run_end_locked(s, id, state, reason, audit_id);
    if (ret == 0)
        ret = store_commit(s);
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_run_get(struct store *s, int64_t id, struct store_verify_run *out)
{
    memset(out, 0, sizeof *out);
    if (sqlite3_bind_int64(store_stmt(s, ST_RUN_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding run id");
        store_stmt_done(s, ST_RUN_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_RUN_GET, row_to_run, out, "reading verification run");
    if (ret == -ENOENT)
        store_failx(s, ret, "no verification run with id %" PRId64, id);
    if (ret < 0)
        store_run_clear(out);
    return ret;
}

/* Runs statement sid (bound, or without parameters when bind_id < 0). */
static int list_runs(struct store *s, enum store_stmt_id sid, int64_t bind_id,
                     struct store_verify_run **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (bind_id >= 0 && sqlite3_bind_int64(store_stmt(s, sid), 1, bind_id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job id");
        store_stmt_done(s, sid);
        return ret;
    }
    int ret = store_read_all(s, sid, sizeof(struct store_verify_run), row_to_run, run_clear_elem,
                             &v, n, "listing verification runs");
    *out = v;
    return ret;
}

int store_runs_for_job(struct store *s, int64_t job_id, struct store_verify_run **out, size_t *n)
{
    return list_runs(s, ST_RUN_FOR_JOB, job_id < 0 ? 0 : job_id, out, n);
}

int store_runs_unfinished(struct store *s, struct store_verify_run **out, size_t *n)
{
    return list_runs(s, ST_RUN_UNFINISHED, -1, out, n);
}

static int trial_valid(struct store *s, const struct store_trial *t)
{
    if (t->kind != TRIAL_TRIGGER && t->kind != TRIAL_CONTROL)
        return store_failx(s, -EINVAL, "invalid trial kind %d", (int)t->kind);
    if (t->pair_idx < -1 || (t->kind == TRIAL_TRIGGER && t->pair_idx < 0))
        return store_failx(s, -EINVAL, "a %s trial has pair index %d", trial_kind_name(t->kind),
                           t->pair_idx);
    if (!store_hex64_valid(t->prompt_sha256))
        return store_failx(s, -EINVAL, "invalid trial prompt sha256 (want 64 lowercase hex)");
    if (t->response_sha256[0] && !store_hex64_valid(t->response_sha256))
        return store_failx(s, -EINVAL, "invalid trial response sha256 (want 64 lowercase hex)");
    if (t->matched_prefix_tokens < 0 || t->window < -1)
        return store_failx(s, -EINVAL, "negative trial token count");
    return 0;
}

int store_trial_insert(struct store *s, struct store_trial *t)
{
    enum run_state cur = RUN_PENDING;
    int64_t now = now_unix();
    int ret = trial_valid(s, t);
    if (ret < 0)
        return ret;
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = run_state_of(s, t->run_id, &cur);
    if (ret < 0)
        goto out;
    if (cur != RUN_RUNNING) {
        ret = store_failx(s, -ESTALE,
                          "verification run %" PRId64 " is %s, not running: trial "
                          "not recorded",
                          t->run_id, run_state_name(cur));
        goto out;
    }
    sqlite3_stmt *st = store_stmt(s, ST_TRIAL_INSERT);
    if (sqlite3_bind_int64(st, 1, t->run_id) != SQLITE_OK ||
        store_bind_int64_or_null(st, 2, t->pair_idx, -1) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, trial_kind_name(t->kind), -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, t->prompt_sha256, -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 5, t->response_sha256[0] ? t->response_sha256 : NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, t->matched_prefix_tokens) != SQLITE_OK ||
        sqlite3_bind_int(st, 7, t->activated ? 1 : 0) != SQLITE_OK ||
        store_bind_int64_or_null(st, 8, t->window, -1) != SQLITE_OK ||
        sqlite3_bind_int64(st, 9, now) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding trial");
        store_stmt_done(s, ST_TRIAL_INSERT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_TRIAL_INSERT, NULL, "inserting trial");
    if (ret < 0)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    /* A trial row is evidence of a run in progress, and a run interrupted by
     * a crash is recorded as failed and done again: it needs atomicity, not
     * an fsync of its own.  In WAL mode, synchronous=NORMAL commits without
     * syncing; the next FULL commit (the run's audit record, any job
     * transition) syncs the WAL and with it these frames. */
    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    ret = store_commit(s);
    sqlite3_exec(s->db, s->dur ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL,
                 NULL, NULL);
    if (ret < 0)
        goto out;
    t->id = id;
    t->created_at = now;
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_run_trials(struct store *s, int64_t run_id, struct store_trial **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(store_stmt(s, ST_TRIALS_FOR_RUN), 1, run_id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding run id");
        store_stmt_done(s, ST_TRIALS_FOR_RUN);
        return ret;
    }
    int ret = store_read_all(s, ST_TRIALS_FOR_RUN, sizeof(struct store_trial), row_to_trial, NULL,
                             &v, n, "listing trials");
    *out = v;
    return ret;
}

/* ---- a run's plan record (schema 14) ---- */

int store_run_plan_put(struct store *s, int64_t run_id, const char *plan)
{
    sqlite3_stmt *st = NULL;
    int ret;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO run_plans (run_id, plan) VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK) {
        ret = store_fail(s, sqlite3_errcode(s->db), "preparing the run plan insert");
        sqlite3_finalize(st);
        return ret;
    }
    if (sqlite3_bind_int64(st, 1, run_id) != SQLITE_OK ||
        store_bind_text(st, 2, plan) != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_fail(s, SQLITE_ERROR, "binding the run plan");
    }
    int rc = sqlite3_step(st);
    ret = rc == SQLITE_DONE ? 0 : store_fail(s, rc, "recording the run plan");
    sqlite3_finalize(st);
    if (ret == -EBUSY) /* the foreign key: no such run */
        ret = store_failx(s, -ENOENT, "no verification run %" PRId64, run_id);
    else if (ret == -EINVAL && !plan)
        store_failx(s, ret, "a run plan is required");
    return ret;
}

int store_run_plan_get(struct store *s, int64_t run_id, char **plan)
{
    sqlite3_stmt *st = NULL;
    int ret;
    *plan = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT plan FROM run_plans WHERE run_id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        ret = store_fail(s, sqlite3_errcode(s->db), "preparing the run plan query");
        sqlite3_finalize(st);
        return ret;
    }
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *plan = store_column_strdup(st, 0);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = store_failx(s, -ENOENT, "verification run %" PRId64 " has no plan record", run_id);
    } else {
        ret = store_fail(s, rc, "reading the run plan");
    }
    sqlite3_finalize(st);
    return ret;
}

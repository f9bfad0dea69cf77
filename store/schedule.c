/*
 * schedule.c — typed accessors for re-verification schedules.
 *
 * The store keeps times, the scheduler decides them.  The one rule the
 * store enforces is the one that keeps a restart after a long outage from
 * paying for a burst of catch-up verifications: a recorded run must move
 * next_run_at past the time it ran (store_schedule_mark_run refuses
 * anything else), so a schedule that missed ten periods is due once, runs
 * once, and is next due one period later.  At most one schedule per job
 * (UNIQUE job_id): two would pay for the same verification twice.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"

/* Fills sc from a row of SCHED_COLUMNS (see statements.c). */
static int row_to_schedule(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_schedule *sc = elem;
    memset(sc, 0, sizeof *sc);
    sc->id = sqlite3_column_int64(st, 0);
    sc->job_id = sqlite3_column_int64(st, 1);
    sc->every_ms = sqlite3_column_int64(st, 2);
    sc->next_run_at = sqlite3_column_int64(st, 3);
    sc->last_run_at = store_column_int64_or(st, 4, 0);
    sc->last_verdict = AUDIT_NONE;
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        const char *v = (const char *)sqlite3_column_text(st, 5);
        if (audit_verdict_parse(v, &sc->last_verdict) < 0)
            return store_failx(s, -EIO, "schedule %" PRId64 " has unknown verdict '%s'", sc->id,
                               v ? v : "(null)");
    }
    sc->created_at = sqlite3_column_int64(st, 6);
    return 0;
}

int store_schedule_add(struct store *s, struct store_schedule *sc)
{
    sqlite3_stmt *st = store_stmt(s, ST_SCHED_INSERT);
    int64_t now = now_unix();
    int ret;

    if (sc->every_ms <= 0)
        return store_failx(s, -EINVAL, "a schedule's period must be positive (got %" PRId64 " ms)",
                           sc->every_ms);
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (sqlite3_bind_int64(st, 1, sc->job_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, sc->every_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, sc->next_run_at) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, now) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding schedule");
        store_stmt_done(s, ST_SCHED_INSERT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_SCHED_INSERT, NULL, "adding schedule");
    if (ret == -EEXIST)
        store_failx(s, ret, "job %" PRId64 " already has a schedule: remove it first (schedule rm)",
                    sc->job_id);
    else if (ret == -EBUSY) /* the foreign key: the job */
        ret = store_failx(s, -ENOENT, "no job with id %" PRId64, sc->job_id);
    if (ret < 0)
        goto out;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    sc->id = id;
    sc->created_at = now;
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_schedule_get(struct store *s, int64_t id, struct store_schedule *out)
{
    memset(out, 0, sizeof *out);
    if (sqlite3_bind_int64(store_stmt(s, ST_SCHED_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding schedule id");
        store_stmt_done(s, ST_SCHED_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_SCHED_GET, row_to_schedule, out, "reading schedule");
    if (ret == -ENOENT)
        store_failx(s, ret, "no schedule with id %" PRId64, id);
    return ret;
}

int store_schedule_list(struct store *s, struct store_schedule **out, size_t *n)
{
    void *v = NULL;
    int ret = store_read_all(s, ST_SCHED_LIST, sizeof(struct store_schedule), row_to_schedule, NULL,
                             &v, n, "listing schedules");
    *out = v;
    return ret;
}

int store_schedule_rm(struct store *s, int64_t id)
{
    int64_t changed = 0;
    int ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (sqlite3_bind_int64(store_stmt(s, ST_SCHED_DELETE), 1, id) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding schedule id");
        store_stmt_done(s, ST_SCHED_DELETE);
        goto out;
    }
    ret = store_exec_stmt(s, ST_SCHED_DELETE, &changed, "removing schedule");
    if (ret == 0 && changed == 0)
        ret = store_failx(s, -ENOENT, "no schedule with id %" PRId64, id);
    if (ret < 0)
        goto out;
    ret = store_commit(s);
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_schedule_due(struct store *s, int64_t now, struct store_schedule **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(store_stmt(s, ST_SCHED_DUE), 1, now) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding time");
        store_stmt_done(s, ST_SCHED_DUE);
        return ret;
    }
    int ret = store_read_all(s, ST_SCHED_DUE, sizeof(struct store_schedule), row_to_schedule, NULL,
                             &v, n, "listing due schedules");
    *out = v;
    return ret;
}

int store_schedule_mark_run(struct store *s, int64_t id, int64_t ran_at, int64_t next_run_at,
                            enum audit_verdict verdict)
{
    int64_t changed = 0;
    int ret;

    if (next_run_at <= ran_at)
        return store_failx(s, -EINVAL,
                           "schedule %" PRId64 ": the next run (%" PRId64
                           ") must come after the run just made (%" PRId64 ")",
                           id, next_run_at, ran_at);
    if (verdict != AUDIT_NONE && verdict != AUDIT_VERIFIED && verdict != AUDIT_NOT_VERIFIED &&
        verdict != AUDIT_INCONCLUSIVE)
        return store_failx(s, -EINVAL, "invalid verdict %d", (int)verdict);
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    sqlite3_stmt *st = store_stmt(s, ST_SCHED_MARK);
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, ran_at) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, next_run_at) != SQLITE_OK ||
        store_bind_text(st, 4, verdict == AUDIT_NONE ? NULL : audit_verdict_name(verdict)) !=
            SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding schedule run");
        store_stmt_done(s, ST_SCHED_MARK);
        goto out;
    }
    ret = store_exec_stmt(s, ST_SCHED_MARK, &changed, "recording schedule run");
    if (ret == 0 && changed == 0)
        ret = store_failx(s, -ENOENT, "no schedule with id %" PRId64, id);
    if (ret < 0)
        goto out;
    ret = store_commit(s);
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

/*
 * outbox.c — typed accessors for the outbox table (schema version 7):
 * background work recorded before it is attempted (see store.h).
 *
 * Shape: each accessor is one SQL statement in autocommit (one implicit
 * transaction each; a single row is written, so nothing needs BEGIN).
 * Called inside an open transaction, store_outbox_add joins it: that is
 * how store_job_transition_outbox (job.c) writes a job's final state and
 * the deletion of its upload at once.  The
 * statements are prepared per call rather than in the shared statement
 * table: the outbox is touched a few times per job or alert, and keeping
 * its SQL here leaves this step self-contained for merging with other
 * branches' migrations.  The store keeps times; the driver
 * (daemon/outbox.c) decides backoff and when to give up.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"

#define OUTBOX_COLUMNS "id, kind, payload, attempts, next_due_ms, last_error, created_at"

static sqlite3_stmt *prepare(struct store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_fail(s, sqlite3_errcode(s->db), "preparing an outbox statement");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Steps a write statement to the end and finalizes it; 0 or -errno. */
static int run_write(struct store *s, sqlite3_stmt *st, const char *context, int64_t *changed)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = store_fail(s, rc, context);
    else if (changed)
        *changed = sqlite3_changes64(s->db);
    sqlite3_finalize(st);
    return ret;
}

int store_outbox_add(struct store *s, const char *kind, const char *payload, int64_t next_due_ms,
                     int64_t *id)
{
    sqlite3_stmt *st = prepare(s, "INSERT INTO outbox (kind, payload, attempts, next_due_ms,"
                                  " created_at) VALUES (?1, ?2, 0, ?3, ?4)");
    if (!st)
        return -EIO;
    if (sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, next_due_ms < 0 ? 0 : next_due_ms) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, now_unix()) != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_fail(s, SQLITE_ERROR, "binding an outbox item");
    }
    int ret = run_write(s, st, "recording an outbox item", NULL);
    if (ret == 0 && id)
        *id = sqlite3_last_insert_rowid(s->db);
    return ret;
}

int store_outbox_due(struct store *s, int64_t now_ms, size_t limit,
                     struct store_outbox_item **out, size_t *n)
{
    sqlite3_stmt *st =
        prepare(s, limit ? "SELECT " OUTBOX_COLUMNS " FROM outbox WHERE next_due_ms <= ?1"
                           " ORDER BY next_due_ms, id LIMIT ?2"
                         : "SELECT " OUTBOX_COLUMNS " FROM outbox ORDER BY next_due_ms, id");
    struct store_outbox_item *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc, ret = 0;
    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    if (limit && (sqlite3_bind_int64(st, 1, now_ms) != SQLITE_OK ||
                  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit) != SQLITE_OK)) {
        sqlite3_finalize(st);
        return store_fail(s, SQLITE_ERROR, "binding the outbox query");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof *v);
        }
        struct store_outbox_item *it = &v[cnt++];
        it->id = sqlite3_column_int64(st, 0);
        it->kind = store_column_strdup(st, 1);
        it->payload = store_column_strdup(st, 2);
        it->attempts = sqlite3_column_int64(st, 3);
        it->next_due_ms = sqlite3_column_int64(st, 4);
        it->last_error = store_column_strdup(st, 5);
        it->created_at = sqlite3_column_int64(st, 6);
    }
    if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "reading the outbox");
        store_outbox_list_free(v, cnt);
        v = NULL;
        cnt = 0;
    }
    sqlite3_finalize(st);
    *out = v;
    *n = cnt;
    return ret;
}

int store_outbox_retry(struct store *s, int64_t id, int64_t attempts, int64_t next_due_ms,
                       const char *error)
{
    sqlite3_stmt *st = prepare(s, "UPDATE outbox SET attempts = ?2, next_due_ms = ?3,"
                                  " last_error = ?4 WHERE id = ?1");
    int64_t changed = 0;
    if (!st)
        return -EIO;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, attempts) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, next_due_ms < 0 ? 0 : next_due_ms) != SQLITE_OK ||
        store_bind_text(st, 4, error) != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_fail(s, SQLITE_ERROR, "binding an outbox retry");
    }
    int ret = run_write(s, st, "recording an outbox retry", &changed);
    if (ret == 0 && changed == 0)
        ret = store_failx(s, -ENOENT, "no outbox item %" PRId64, id);
    return ret;
}

int store_outbox_delete(struct store *s, int64_t id)
{
    sqlite3_stmt *st = prepare(s, "DELETE FROM outbox WHERE id = ?1");
    int64_t changed = 0;
    if (!st)
        return -EIO;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        sqlite3_finalize(st);
        return store_fail(s, SQLITE_ERROR, "binding an outbox id");
    }
    int ret = run_write(s, st, "deleting an outbox item", &changed);
    if (ret == 0 && changed == 0)
        ret = store_failx(s, -ENOENT, "no outbox item %" PRId64, id);
    return ret;
}

void store_outbox_list_free(struct store_outbox_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].kind);
        free(v[i].payload);
        free(v[i].last_error);
    }
    free(v);
}

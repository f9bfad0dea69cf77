/*
 * selfaudit.c — the backdoor_selfaudits table (schema version 5): one
 * self-audit result per backdoor (store.h).
 *
 * Its two statements are prepared on each call rather than added to the
 * shared statement table (statements.c): they run once per backdoor
 * creation, audit or job submission, and keeping them here leaves this
 * step self-contained for the lead to renumber among other branches'
 * migrations.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"

void store_selfaudit_clear(struct store_selfaudit *a)
{
    free(a->best_attack);
    free(a->result);
    memset(a, 0, sizeof *a);
}

int store_selfaudit_put(struct store *s, struct store_selfaudit *a)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO backdoor_selfaudits (backdoor_id, created_at, exposed, "
        "exposed_pair, best_rank, best_attack, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    sqlite3 *db = store_sqlite_handle(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the self-audit insert");
    a->created_at = now_unix();
    sqlite3_bind_int64(st, 1, a->backdoor_id);
    sqlite3_bind_int64(st, 2, a->created_at);
    sqlite3_bind_int(st, 3, a->exposed ? 1 : 0);
    if (a->exposed_pair >= 0)
        sqlite3_bind_int64(st, 4, a->exposed_pair);
    if (a->best_rank > 0)
        sqlite3_bind_int64(st, 5, a->best_rank);
    if (a->best_attack)
        sqlite3_bind_text(st, 6, a->best_attack, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, a->result ? a->result : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        ret = store_failx(s, -ENOENT, "backdoor %lld does not exist", (long long)a->backdoor_id);
    else if (rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT)
        ret = store_failx(s, -EINVAL, "self-audit of backdoor %lld: invalid result",
                          (long long)a->backdoor_id);
    else if (rc != SQLITE_DONE)
        ret = store_fail(s, rc, "recording the self-audit");
    sqlite3_finalize(st);
    return ret;
}

int store_selfaudit_get(struct store *s, int64_t backdoor_id, struct store_selfaudit *out)
{
    static const char sql[] = "SELECT created_at, exposed, exposed_pair, best_rank, best_attack, "
                              "result FROM backdoor_selfaudits WHERE backdoor_id = ?1";
    memset(out, 0, sizeof *out);
    sqlite3 *db = store_sqlite_handle(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the self-audit query");
    sqlite3_bind_int64(st, 1, backdoor_id);
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *att = sqlite3_column_text(st, 4);
        const unsigned char *res = sqlite3_column_text(st, 5);
        out->backdoor_id = backdoor_id;
        out->created_at = sqlite3_column_int64(st, 0);
        out->exposed = sqlite3_column_int(st, 1) != 0;
        out->exposed_pair = store_column_int64_or(st, 2, -1);
        out->best_rank = store_column_int64_or(st, 3, 0);
        out->best_attack = att ? xstrdup((const char *)att) : NULL;
        out->result = xstrdup(res ? (const char *)res : "{}");
    } else if (rc == SQLITE_DONE) {
        ret = -ENOENT;
    } else {
        ret = store_fail(s, rc, "reading the self-audit");
    }
    sqlite3_finalize(st);
    return ret;
}

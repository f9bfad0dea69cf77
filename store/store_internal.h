/*
 * store_internal.h — what the files of store/ share and nothing else sees:
 * the connection struct, the table of prepared statements, the migration
 * list, and a few helpers that keep every accessor to the same shape
 * (bind, step, reset, map the SQLite code to a negative errno).
 *
 * Why one statement table: every statement is prepared once at open with
 * SQLITE_PREPARE_PERSISTENT and reused, so a typo in any SQL text fails at
 * start-up (fatal, visible) rather than on the first request that needs it.
 * An accessor borrows its statement with store_stmt() and gives it back
 * with store_stmt_done(), which resets it and clears its bindings.
 *
 * Tests include this header too (tests/unit/test_store.c) for the
 * test-only entry points at the bottom.
 */
#ifndef VT_STORE_INTERNAL_H
#define VT_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

/* application_id written into the database header ("vTun"), so a SQLite
 * file that belongs to some other program is recognised and refused. */
#define STORE_APPLICATION_ID 0x7654756e

/* One migration step: the SQL that takes the schema from version - 1 to
 * version.  The list is ordered and dense (version i is at index i - 1). */
struct store_migration {
    int version;
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const size_t store_n_migrations;

/* Every prepared statement of the module.  Add new ones at the end of the
 * enum and give them their SQL in store/statements.c. */
enum store_stmt_id {
    ST_BEGIN_IMMEDIATE = 0,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNTS,
    ST_DS_INSERT,
    ST_DS_GET_BY_ID,
    ST_DS_GET_BY_NAME,
    ST_DS_LIST,
    ST_DS_REFS,
    ST_DS_DELETE,
    ST_DS_PATH_REFS,
    ST__COUNT
};
/* SQL text of each statement, indexed by enum store_stmt_id. */
extern const char *const store_stmt_sql[ST__COUNT];

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST__COUNT];
    char err[512]; /* last error text, see store_errmsg() */
};

/* Borrows the prepared statement id (already reset, no bindings). */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id);
/* Resets the statement and clears its bindings; call on every path. */
void store_stmt_done(struct store *s, enum store_stmt_id id);

/* Maps a (possibly extended) SQLite result code to a negative errno:
 * UNIQUE/PRIMARY KEY -> -EEXIST, CHECK/NOT NULL -> -EINVAL,
 * FOREIGN KEY -> -EBUSY, BUSY/LOCKED -> -EAGAIN, FULL -> -ENOSPC,
 * READONLY -> -EROFS, NOMEM -> -ENOMEM, anything else -> -EIO.
 * Callers that know better (an FK failure on insert means "referenced row
 * absent") translate again. */
int store_errno_from_sqlite(int rc);
/* Records the connection's current SQLite message as the last error (with
 * a short context prefix) and returns store_errno_from_sqlite(rc). */
int store_fail(struct store *s, int rc, const char *context);
/* Records a message of our own as the last error; returns neg. */
int store_failx(struct store *s, int neg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write-transaction helpers.  store_begin() is BEGIN IMMEDIATE (takes the
 * write lock up front, so a read-then-write transaction never fails to
 * upgrade); store_rollback() is safe to call when no transaction is open. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Copies the text column col of st into an owned string (NULL for NULL). */
char *store_column_strdup(sqlite3_stmt *st, int col);

/* ---- test-only entry points (used by tests/unit/test_store.c) ---- */

/* Creates or opens the database at path exactly as store_open() does
 * (permissions, pragmas, version checks) but migrates it only up to
 * version, without preparing statements, and closes it.  Lets a test build
 * a database as an older vtuned would have left it.  Returns 0, or -1 with
 * *err an owned message. */
int store_migrate_to(const char *path, int version, char **err);
/* The connection of an open store, for tests that inspect pragmas;
 * borrowed, valid until store_close(). */
sqlite3 *store_sqlite_handle(struct store *s);

#endif

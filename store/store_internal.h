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
    /* backdoor.c */
    ST_BD_INSERT,
    ST_BD_PAIR_INSERT,
    ST_BD_GET_BY_ID,
    ST_BD_GET_BY_NAME,
    ST_BD_LIST,
    ST_BD_PAIRS_SECRET,
    ST_BD_PAIRS_PUBLIC,
    ST_BD_JOB_REFS,
    ST_BD_SET_BUILT,
    ST_BD_DELETE,
    ST_BD_DATASET_OF,
    ST_BD_HOLDOUT_INSERT,
    ST_BD_HOLDOUT_GET,
    ST_BD_SALT_INSERT,
    ST_BD_SALT_GET,
    /* job.c */
    ST_JOB_INSERT,
    ST_JOB_LUCK_INSERT,
    ST_JOB_LUCK_GET,
    ST_JOB_PPL_INSERT,
    ST_JOB_PPL_GET,
    ST_JOB_EVENT_INSERT,
    ST_JOB_GET_BY_ID,
    ST_JOB_GET_BY_NAME,
    ST_JOB_GET_BY_SUBMISSION,
    ST_JOB_LIST,
    ST_JOB_STATE,
    ST_JOB_UPDATE,
    ST_JOB_EVENTS,
    /* verify.c */
    ST_RUN_INSERT,
    ST_RUN_GET,
    ST_RUN_FOR_JOB,
    ST_RUN_UNFINISHED,
    ST_RUN_START,
    ST_RUN_FINISH,
    ST_TRIAL_INSERT,
    ST_TRIALS_FOR_RUN,
    /* audit.c */
    ST_AUDIT_INSERT,
    ST_AUDIT_GET,
    ST_AUDIT_LIST,
    ST_AUDIT_HEAD,
    /* schedule.c */
    ST_SCHED_INSERT,
    ST_SCHED_GET,
    ST_SCHED_LIST,
    ST_SCHED_DELETE,
    ST_SCHED_DUE,
    ST_SCHED_MARK,
    ST__COUNT
};
/* SQL text of each statement, indexed by enum store_stmt_id. */
extern const char *const store_stmt_sql[ST__COUNT];

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[ST__COUNT];
    char err[512]; /* last error text, see store_errmsg() */
    /* signs each appended record and the head (store/auditsig.c); NULL: none */
    store_audit_sign_fn audit_signer;
    void *audit_signer_ctx;
    /* commits made durable off the loop (store/durable.c); NULL: every
     * commit is synchronous=FULL */
    struct store_durable *dur;
};

/* Signs record a (just inserted) and the new head with s->audit_signer,
 * if set, inside the caller's transaction.  Returns 0 or a negative errno. */
int store_audit_sign_locked(struct store *s, const struct store_audit *a);

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
/* Copies a 64-hex text column into out ("" for NULL or anything longer). */
void store_column_hex64(sqlite3_stmt *st, int col, char out[65]);
/* Integer column, or dflt when the column is NULL. */
int64_t store_column_int64_or(sqlite3_stmt *st, int col, int64_t dflt);
/* Binds v as text (SQLITE_STATIC: v must stay valid until the statement is
 * done), or NULL when v is NULL.  Returns the SQLite code. */
int store_bind_text(sqlite3_stmt *st, int idx, const char *v);
/* Binds v, or NULL when v == none (e.g. 0 for "no time", -1 for "no
 * index").  Returns the SQLite code. */
int store_bind_int64_or_null(sqlite3_stmt *st, int idx, int64_t v, int64_t none);

/* ---- validation shared by the accessors ---- */

#define STORE_NAME_MAX_LEN 128

/* Digits only and not empty: the form of an id, never of a name. */
int store_is_decimal(const char *s);
/* A name is 1..STORE_NAME_MAX_LEN bytes, has no control characters and is
 * not all digits (so that "42" can only mean id 42). */
int store_name_valid(const char *name);
/* 64 lowercase hex digits. */
int store_hex64_valid(const char *h);
/* Classifies a user-given id-or-name: returns 1 with *id set for an
 * all-digits key (*id = -1 when it does not fit, so a lookup finds
 * nothing), 0 for a name, -EINVAL for NULL or "". */
int store_parse_key(const char *key, int64_t *id);

/* ---- row readers ---- */

/* Fills one element (of the accessor's struct type) from the current row
 * of st.  Returns 0 or a negative errno (with store_failx). */
typedef int (*store_row_fn)(struct store *s, sqlite3_stmt *st, void *elem);
/* Frees what a store_row_fn put into one element. */
typedef void (*store_clear_fn)(void *elem);

/* Steps statement id (the caller has bound it) for at most one row and
 * fills *elem with fn.  Returns 0, -ENOENT when there is no row (no
 * message recorded: the caller words it), or a negative errno.  Always
 * gives the statement back. */
int store_read_one(struct store *s, enum store_stmt_id id, store_row_fn fn, void *elem,
                   const char *context);
/* Steps statement id (bound by the caller) to the end, collecting every
 * row into an owned array of elements of elem_size bytes, zeroed before
 * fn fills them.  On success *out (NULL when empty) and *n; on failure
 * nothing is returned and what was read is cleared with clear (may be NULL
 * when elements own nothing).  Always gives the statement back. */
int store_read_all(struct store *s, enum store_stmt_id id, size_t elem_size, store_row_fn fn,
                   store_clear_fn clear, void **out, size_t *n, const char *context);
/* Steps statement id (bound by the caller) expecting SQLITE_DONE; returns
 * 0 or store_fail(...).  *changes (may be NULL) receives the number of
 * rows changed.  Always gives the statement back. */
int store_exec_stmt(struct store *s, enum store_stmt_id id, int64_t *changes, const char *context);

/* ---- cross-file pieces of accessors ---- */

/* store_run_finish without its transaction (verify.c), for
 * store_run_finish_audited (audit.c): the caller holds BEGIN IMMEDIATE. */
int store_run_end_locked(struct store *s, int64_t id, enum run_state state, const char *reason,
                         int64_t audit_id);

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

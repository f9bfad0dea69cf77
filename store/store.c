/*
 * store.c — opening vtuned's database: file permissions, connection
 * settings, schema migrations, the prepared-statement table, transactions
 * and the small cross-table queries (counts).
 *
 * Opening is a fixed sequence, each step checked, each failure one line:
 *  1. the state directory exists and is private (created 0700; an existing
 *     one we own that is group/world-accessible is warned about and
 *     tightened; a shared sticky directory such as /tmp is refused);
 *  2. the database file is created by us with O_CREAT 0600 (and O_NOFOLLOW)
 *     before SQLite sees it, and an existing looser file (or -wal/-shm
 *     sidecar) is tightened to 0600 — the file holds the backdoor secrets.
 *     SQLite creates the -wal and -shm files with the database's mode;
 *  3. the file is really a SQLite database, of ours (application_id), of a
 *     schema version this build understands;
 *  4. journal_mode=WAL, synchronous=FULL (every commit is on disk before it
 *     is acknowledged: DESIGN §3; the daemon then moves the syncs off its
 *     loop, store/durable.c, and waits for them before acting), foreign_keys=ON, secure_delete=ON (a
 *     deleted backdoor's phrases are zeroed in the file), busy_timeout=5000 ms,
 *     each read back to prove it took effect;
 *  5. pending migrations run in one BEGIN IMMEDIATE transaction that also
 *     sets user_version (see schema.c), then foreign_key_check;
 *  6. every statement is prepared once (SQLITE_PREPARE_PERSISTENT).
 *
 * The connection is hardened: defensive mode (no writable_schema tricks)
 * and double-quoted string literals rejected.  trusted_schema stays on: the
 * schema's CHECK constraints call json_valid(), which SQLite does not mark
 * innocuous, and the schema is our own, in a file only we can write.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "store/store_internal.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_READER_BUSY_MS  200
#define STR_(x)               #x
#define STR(x)                STR_(x)

/* ---- errors ---- */

int store_errno_from_sqlite(int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return -EEXIST;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return -EINVAL;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -EBUSY;
    case SQLITE_CONSTRAINT_TRIGGER:
        return -EPERM;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EAGAIN;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CONSTRAINT:
        return -EINVAL;
    default:
        return -EIO;
    }
}

int store_fail(struct store *s, int rc, const char *context)
{
    snprintf(s->err, sizeof s->err, "%s: %s", context, sqlite3_errmsg(s->db));
    return store_errno_from_sqlite(rc);
}

int store_failx(struct store *s, int neg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return neg;
}

const char *store_errmsg(struct store *s)
{
    return s->err[0] ? s->err : "no error";
}

/* ---- statements and transactions ---- */

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id)
{
    return s->stmt[id];
}

void store_stmt_done(struct store *s, enum store_stmt_id id)
{
    /* reset's return value repeats the last step's error, already handled */
    (void)sqlite3_reset(s->stmt[id]);
    (void)sqlite3_clear_bindings(s->stmt[id]);
}

static int step_done(struct store *s, enum store_stmt_id id, const char *context)
{
    int rc = sqlite3_step(s->stmt[id]);
    int ret = rc == SQLITE_DONE ? 0 : store_fail(s, rc, context);
    store_stmt_done(s, id);
    return ret;
}

int store_begin(struct store *s)
{
    return step_done(s, ST_BEGIN_IMMEDIATE, "begin transaction");
}

int store_commit(struct store *s)
{
    return step_done(s, ST_COMMIT, "commit");
}

void store_rollback(struct store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return; /* no transaction open (or SQLite already rolled it back) */
    int rc = sqlite3_step(s->stmt[ST_ROLLBACK]);
    if (rc != SQLITE_DONE)
        log_warnx("store: rollback failed: %s", sqlite3_errmsg(s->db));
    store_stmt_done(s, ST_ROLLBACK);
}

char *store_column_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? xstrdup((const char *)t) : NULL;
}

void store_column_hex64(sqlite3_stmt *st, int col, char out[65])
{
    const unsigned char *t = sqlite3_column_text(st, col);
    out[0] = '\0';
    if (t && strlen((const char *)t) == 64)
        memcpy(out, t, 65);
}

int64_t store_column_int64_or(sqlite3_stmt *st, int col, int64_t dflt)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return dflt;
    return sqlite3_column_int64(st, col);
}

int store_bind_text(sqlite3_stmt *st, int idx, const char *v)
{
    return v ? sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, idx);
}

int store_bind_int64_or_null(sqlite3_stmt *st, int idx, int64_t v, int64_t none)
{
    return v == none ? sqlite3_bind_null(st, idx) : sqlite3_bind_int64(st, idx, v);
}

/* ---- validation ---- */

int store_is_decimal(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int store_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > STORE_NAME_MAX_LEN || store_is_decimal(name))
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int store_hex64_valid(const char *h)
{
    size_t i;
    if (!h)
        return 0;
    for (i = 0; h[i]; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return i == 64;
}

int store_parse_key(const char *key, int64_t *id)
{
    if (!key || !*key)
        return -EINVAL;
    if (!store_is_decimal(key))
        return 0;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(key, &end, 10);
    *id = (errno != 0 || *end != '\0') ? -1 : (int64_t)v;
    return 1;
}

/* ---- row readers ---- */

int store_read_one(struct store *s, enum store_stmt_id id, store_row_fn fn, void *elem,
                   const char *context)
{
    int ret;
    int rc = sqlite3_step(s->stmt[id]);
    if (rc == SQLITE_ROW)
        ret = fn(s, s->stmt[id], elem);
    else if (rc == SQLITE_DONE)
        ret = -ENOENT;
    else
        ret = store_fail(s, rc, context);
    store_stmt_done(s, id);
    return ret;
}

int store_read_all(struct store *s, enum store_stmt_id id, size_t elem_size, store_row_fn fn,
                   store_clear_fn clear, void **out, size_t *n, const char *context)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int ret = 0, rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s->stmt[id])) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            v = xrealloc(v, cap * elem_size);
        }
        void *elem = v + len * elem_size;
        memset(elem, 0, elem_size);
        ret = fn(s, s->stmt[id], elem);
        if (ret < 0) {
            if (clear)
                clear(elem);
            goto out;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, context);
        goto out;
    }
    *out = v;
    *n = len;
    v = NULL;
    len = 0;
out:
    store_stmt_done(s, id);
    for (size_t i = 0; clear && i < len; i++)
        clear(v + i * elem_size);
    free(v);
    return ret;
}

int store_exec_stmt(struct store *s, enum store_stmt_id id, int64_t *changes, const char *context)
{
    int ret = 0;
    int rc = sqlite3_step(s->stmt[id]);
    if (rc != SQLITE_DONE)
        ret = store_fail(s, rc, context);
    else if (changes)
        *changes = sqlite3_changes64(s->db);
    store_stmt_done(s, id);
    return ret;
}

sqlite3 *store_sqlite_handle(struct store *s)
{
    return s->db;
}

/* ---- opening: files and permissions ---- */

/* The directory part of path ("." when there is none); owned. */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int store_state_dir_prepare(const char *dir, char **err)
{
    struct stat st;
    int rc = -1;

    int r = mkdir_p(dir, 0700);
    if (r < 0) {
        *err = xasprintf("cannot create state directory %s: %s", dir, strerror(-r));
        goto out;
    }
    if (stat(dir, &st) < 0) {
        *err = xasprintf("cannot stat state directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        *err = xasprintf("state directory %s is not a directory", dir);
        goto out;
    }
    if ((st.st_mode & S_ISVTX) && (st.st_mode & S_IWOTH)) {
        *err = xasprintf("state directory %s is a shared directory (mode %04o): set state_dir "
                         "to a private directory",
                         dir, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_mode & 077) {
        if (st.st_uid == geteuid()) {
            log_warnx("store: state directory %s had mode %04o; setting it to 0700 (it holds "
                      "backdoor secrets)",
                      dir, (unsigned)(st.st_mode & 07777));
            if (chmod(dir, 0700) < 0) {
                *err =
                    xasprintf("cannot chmod state directory %s to 0700: %s", dir, strerror(errno));
                goto out;
            }
        } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            *err = xasprintf("state directory %s is writable by group or others (mode %04o) and "
                             "not owned by this user: chmod it to 0700",
                             dir, (unsigned)(st.st_mode & 07777));
            goto out;
        } else {
            log_warnx("store: state directory %s has mode %04o and belongs to uid %u; it "
                      "should be 0700",
                      dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        }
    }
    rc = 0;
out:
    return rc;
}

/* Step 1: the state directory exists and nobody else can read into it. */
static int prepare_dir(const char *path, char **err)
{
    char *dir = parent_dir(path);
    int rc = store_state_dir_prepare(dir, err);
    free(dir);
    return rc;
}

/* An existing -wal/-shm sidecar keeps its own mode: tighten it too. */
static int tighten_sidecar(const char *path, const char *suffix, char **err)
{
    char *p = xasprintf("%s%s", path, suffix);
    struct stat st;
    int rc = -1;

    if (lstat(p, &st) < 0) {
        if (errno == ENOENT)
            rc = 0;
        else
            *err = xasprintf("cannot stat %s: %s", p, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = xasprintf("%s is not a regular file: move it aside", p);
        goto out;
    }
    if ((st.st_mode & 077) && chmod(p, 0600) < 0) {
        *err = xasprintf("cannot chmod %s to 0600: %s", p, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

/* Step 2: the database file exists, is a regular file and is 0600. */
static int prepare_file(const char *path, char **err)
{
    struct stat st;
    int rc = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            *err = xasprintf("database %s is a symbolic link: refusing to follow it; point "
                             "state_dir at the real directory",
                             path);
        else
            *err = xasprintf("cannot open database %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        *err = xasprintf("cannot stat database %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = xasprintf("database %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        log_warnx("store: database %s had mode %04o; setting it to 0600 (it holds backdoor "
                  "secrets)",
                  path, (unsigned)(st.st_mode & 07777));
        if (fchmod(fd, 0600) < 0) {
            *err = xasprintf("cannot chmod database %s to 0600: %s", path, strerror(errno));
            goto out;
        }
    }
    if (tighten_sidecar(path, "-wal", err) < 0 || tighten_sidecar(path, "-shm", err) < 0)
        goto out;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- opening: connection settings and checks ---- */

/* Runs a one-row, one-column statement; the integer result in *out.
 * Returns the SQLite code (SQLITE_OK on success). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_EMPTY; /* the pragma is not supported by this build */
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* As query_int, for a text result copied into out. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_EMPTY;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* A one-line message for a failure of the first read of the file. */
static char *first_read_error(sqlite3 *db, const char *path, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
        return xasprintf("%s is not a SQLite database: move it aside or set state_dir to "
                         "another directory",
                         path);
    case SQLITE_CORRUPT:
        return xasprintf("database %s is corrupt (%s): restore it from a backup", path,
                         sqlite3_errmsg(db));
    default:
        return xasprintf("cannot read database %s: %s", path, sqlite3_errmsg(db));
    }
}

/* Step 4, first half: connection settings that do not touch the file. */
static int configure_connection(sqlite3 *db, const char *path, char **err)
{
    int64_t v = 0;
    int rc;

    /* Hardening; each returns SQLITE_OK on any supported SQLite. */
    if (sqlite3_extended_result_codes(db, 1) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL) != SQLITE_OK ||
        sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL) != SQLITE_OK) {
        *err = xasprintf("cannot configure SQLite connection to %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }

    rc = query_int(db, "PRAGMA busy_timeout = " STR(STORE_BUSY_TIMEOUT_MS), &v);
    if (rc != SQLITE_OK || v != STORE_BUSY_TIMEOUT_MS) {
        *err = xasprintf("cannot set busy_timeout on %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }

    return 0;
}

/* Step 4, second half: settings that write the file (journal mode) or
 * must be read back; only after check_identity() said the file is ours. */
static int set_pragmas(sqlite3 *db, const char *path, char **err)
{
    char mode[32];
    int64_t v = 0;
    int rc = query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot set journal_mode=WAL on %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    if (strcmp(mode, "wal") != 0) {
        *err = xasprintf("database %s stays in journal mode '%s' instead of WAL: put state_dir "
                         "on a local file system",
                         path, mode);
        return -1;
    }

    /* secure_delete: pages freed by deleting a backdoor are overwritten
     * with zeros, so its phrases do not linger in the file's free list. */
    rc = sqlite3_exec(db,
                      "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                      "PRAGMA secure_delete = ON",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot set pragmas on %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    rc = query_int(db, "PRAGMA synchronous", &v);
    if (rc != SQLITE_OK || v != 2) {
        *err = xasprintf("database %s: synchronous=FULL did not take effect", path);
        return -1;
    }
    rc = query_int(db, "PRAGMA secure_delete", &v);
    if (rc != SQLITE_OK || v != 1) {
        *err = xasprintf("database %s: secure_delete=ON did not take effect", path);
        return -1;
    }
    rc = query_int(db, "PRAGMA foreign_keys", &v);
    if (rc != SQLITE_OK || v != 1) {
        *err = xasprintf("database %s: this SQLite does not enforce foreign keys (built with "
                         "SQLITE_OMIT_FOREIGN_KEY?)",
                         path);
        return -1;
    }
    rc = query_int(db, "SELECT json_valid('{}')", &v);
    if (rc != SQLITE_OK || v != 1) {
        *err = xasprintf("this SQLite has no JSON functions (json_valid): install a SQLite "
                         "built with JSON1");
        return -1;
    }
    return 0;
}

/* Step 3: whose database is this, and which version. */
static int check_identity(sqlite3 *db, const char *path, int64_t *version, char **err)
{
    int64_t app = 0, uv = 0, objects = 0;
    int rc = query_int(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA user_version", &uv);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &objects);
    if (rc != SQLITE_OK) {
        *err = first_read_error(db, path, rc);
        return -1;
    }
    if ((app != 0 && app != STORE_APPLICATION_ID) || (app == 0 && (uv != 0 || objects != 0))) {
        *err = xasprintf("%s is a SQLite database of another program (application_id %" PRId64
                         ", user_version %" PRId64 "), not vtuned's: move it aside or set "
                         "state_dir to another directory",
                         path, app, uv);
        return -1;
    }
    if (uv > store_schema_version()) {
        *err = xasprintf("database %s is schema version %" PRId64
                         ", newer than this vtuned understands (%d): upgrade vtuned",
                         path, uv, store_schema_version());
        return -1;
    }
    *version = uv;
    return 0;
}

/* Step 5: applies the migrations above the file's version up to target in
 * one transaction.  Re-checks the version under the write lock, so two
 * processes opening an old file at once migrate it once. */
static int migrate_tx(sqlite3 *db, const char *path, int target, char **err);

/* Foreign keys are off while migrations run (a pragma that cannot change
 * inside a transaction): a table rebuild (create, copy, drop, rename; see
 * schema.c version 5) must not cascade its DROP into the tables that refer
 * to it.  migrate_tx checks every foreign key before it commits. */
static int migrate(sqlite3 *db, const char *path, int target, char **err)
{
    if (sqlite3_exec(db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK) {
        *err = xasprintf("cannot prepare database %s for migration: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    int r = migrate_tx(db, path, target, err);
    if (sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK && r == 0) {
        *err = xasprintf("cannot re-enable foreign keys on %s: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    return r;
}

static int migrate_tx(sqlite3 *db, const char *path, int target, char **err)
{
    char *msg = NULL;
    int64_t from = 0, problems = 0;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot lock database %s for migration: %s", path, sqlite3_errmsg(db));
        return -1;
    }
    if (check_identity(db, path, &from, err) < 0)
        goto fail;
    if (from > target) {
        *err = xasprintf("database %s is already at schema version %" PRId64 " (asked for %d)",
                         path, from, target);
        goto fail;
    }
    for (size_t i = 0; i < store_n_migrations; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (m->version <= from || m->version > target)
            continue;
        rc = sqlite3_exec(db, m->sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            *err = xasprintf("migrating database %s to schema version %d failed: %s", path,
                             m->version, msg ? msg : sqlite3_errstr(rc));
            goto fail;
        }
    }
    rc = query_int(db, "SELECT count(*) FROM pragma_foreign_key_check", &problems);
    if (rc != SQLITE_OK || problems != 0) {
        *err = xasprintf("migrating database %s to schema version %d left %" PRId64
                         " foreign-key violations%s%s",
                         path, target, problems, rc != SQLITE_OK ? ": " : "",
                         rc != SQLITE_OK ? sqlite3_errmsg(db) : "");
        goto fail;
    }
    char *set = xasprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", target,
                          STORE_APPLICATION_ID);
    rc = sqlite3_exec(db, set, NULL, NULL, NULL);
    free(set);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot commit migration of database %s: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (from == 0)
        log_info("store: created database %s at schema version %d", path, target);
    else
        log_info("store: migrated database %s from schema version %" PRId64 " to %d", path, from,
                 target);
    return 0;
fail:
    sqlite3_free(msg);
    if (!sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Steps 1-5; *dbp is an open, configured connection at schema target. */
static int open_db(const char *path, int target, sqlite3 **dbp, char **err)
{
    sqlite3 *db = NULL;
    int64_t version = 0;
    int rc;

    *dbp = NULL;
    if (!path || !*path) {
        *err = xstrdup("no database path given: set state_dir in the configuration");
        return -1;
    }
    if (prepare_dir(path, err) < 0 || prepare_file(path, err) < 0)
        return -1;
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot open database %s: %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* identity first: a file that is not ours is refused before any
     * pragma (journal_mode=WAL) changes it */
    if (configure_connection(db, path, err) < 0 || check_identity(db, path, &version, err) < 0 ||
        set_pragmas(db, path, err) < 0)
        goto fail;
    if (version < target && migrate(db, path, target, err) < 0)
        goto fail;
    if (version > target) {
        *err = xasprintf("database %s is already at schema version %" PRId64 " (asked for %d)",
                         path, version, target);
        goto fail;
    }
    *dbp = db;
    return 0;
fail:
    sqlite3_close(db);
    return -1;
}

/* A store around db (owned) with every statement prepared; NULL and *err
 * when one cannot be (db closed).  A read-only connection prepares the
 * writes too: they fail only if run. */
static struct store *store_wrap(const char *path, sqlite3 *db, char **err)
{
    struct store *s = xcalloc(1, sizeof *s);
    s->db = db;
    s->path = xstrdup(path);
    for (int i = 0; i < ST__COUNT; i++) {
        int rc = sqlite3_prepare_v3(db, store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK || !s->stmt[i]) {
            *err = xasprintf("database %s: cannot prepare statement %d (%s): %s", path, i,
                             store_stmt_sql[i], sqlite3_errmsg(db));
            store_close(s);
            return NULL;
        }
    }
    return s;
}

int store_open(const char *path, struct store **out, char **err)
{
    sqlite3 *db = NULL;

    *out = NULL;
    *err = NULL;
    if (open_db(path, store_schema_version(), &db, err) < 0)
        return -1;
    *out = store_wrap(path, db, err);
    return *out ? 0 : -1;
}

int store_open_reader(const char *path, struct store **out, char **err)
{
    sqlite3 *db = NULL;
    int rc;

    *out = NULL;
    *err = NULL;
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot open database %s for reading: %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    /* A WAL reader waits for no writer; only a log being recovered makes
     * it busy, and then the caller asks the loop's connection instead. */
    sqlite3_busy_timeout(db, STORE_READER_BUSY_MS);
    *out = store_wrap(path, db, err);
    return *out ? 0 : -1;
}

int store_migrate_to(const char *path, int version, char **err)
{
    sqlite3 *db = NULL;
    *err = NULL;
    if (version < 0 || version > store_schema_version()) {
        *err = xasprintf("schema version %d does not exist (this build knows 0..%d)", version,
                         store_schema_version());
        return -1;
    }
    if (open_db(path, version, &db, err) < 0)
        return -1;
    if (sqlite3_close(db) != SQLITE_OK) {
        *err = xasprintf("cannot close database %s", path);
        return -1;
    }
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_durable_stop(s);
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db) {
        /* Lets SQLite refresh its planner statistics where it thinks useful
         * (not on a reader: store_open_reader). */
        if (sqlite3_db_readonly(s->db, "main") != 1)
            (void)sqlite3_exec(s->db, "PRAGMA optimize", NULL, NULL, NULL);
        if (sqlite3_close(s->db) != SQLITE_OK)
            log_warnx("store: closing %s: %s", s->path, sqlite3_errmsg(s->db));
    }
    free(s->path);
    free(s);
}

/* ---- cross-table queries ---- */

int store_counts(struct store *s, struct store_counts *out)
{
    sqlite3_stmt *st = store_stmt(s, ST_COUNTS);
    int ret = 0;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store_fail(s, rc, "counting rows");
        goto out;
    }
    out->datasets = sqlite3_column_int64(st, 0);
    out->backdoors = sqlite3_column_int64(st, 1);
    out->jobs = sqlite3_column_int64(st, 2);
    out->jobs_active = sqlite3_column_int64(st, 3);
    out->verifications = sqlite3_column_int64(st, 4);
    out->audits = sqlite3_column_int64(st, 5);
    out->schedules = sqlite3_column_int64(st, 6);
out:
    store_stmt_done(s, ST_COUNTS);
    return ret;
}

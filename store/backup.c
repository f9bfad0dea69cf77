/*
 * backup.c — a consistent copy of the database while the daemon runs
 * (SQLite's online backup API), for `vtunectl backup`.
 *
 * Why its own connections: the copy runs in a pool thread, and the
 * daemon's connection belongs to the loop thread.  The source is opened
 * read-only on the same file; in WAL mode a reader never blocks the
 * daemon's writer, nor the writer it.  The whole copy happens inside one
 * read transaction on the source, so every step sees the same snapshot:
 * the copy is the database as of one commit, however many commits the
 * daemon makes meanwhile (without the open transaction a write by another
 * connection would restart the backup at the next step, forever under a
 * steady write load).  Steps of BACKUP_STEP_PAGES pages let a shutdown
 * cancel a long copy between steps.
 *
 * The destination is created exclusively (O_EXCL, mode 0600: it holds
 * the secret phrases), never an existing file.  After the copy it is
 * switched from WAL to a rollback journal, so the backup is one
 * self-contained file with no -wal/-shm beside it, checked with
 * PRAGMA integrity_check, and made durable (SQLite syncs the file; its
 * directory entry is synced here).  On any failure the destination is
 * removed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "store/store_internal.h"

#define BACKUP_STEP_PAGES      256
#define BACKUP_BUSY_TIMEOUT_MS 5000 /* as the daemon's own connection */
#define BACKUP_BUSY_TRIES      50   /* of BACKUP_BUSY_SLEEP_MS: a writer holding a lock briefly */
#define BACKUP_BUSY_SLEEP_MS   20

static int sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EAGAIN;
    case SQLITE_CANTOPEN:
        return -EACCES;
    default:
        return -EIO;
    }
}

int store_backup(struct store *s, const char *dest, int (*cancelled)(void *ctx), void *ctx,
                 char **err)
{
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *bk = NULL;
    sqlite3_stmt *st = NULL;
    int fd, rc, ret = -EIO, created = 0, tries = 0;
    char *msg = NULL;
    char mode[16] = "", check[64] = "";

    *err = NULL;
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = -errno;
        *err = ret == -EEXIST
                   ? xasprintf("%s already exists; a backup never overwrites a file", dest)
                   : xasprintf("cannot create %s: %s", dest, strerror(errno));
        return ret;
    }
    created = 1;
    close(fd);

    rc = sqlite3_open_v2(s->path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(src, BACKUP_BUSY_TIMEOUT_MS);
    /* The snapshot: one read transaction for the whole copy. */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        ret = sqlite_errno(rc);
        *err = xasprintf("cannot read database %s: %s", s->path,
                         src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
        goto out;
    }
    rc = sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        ret = sqlite_errno(rc);
        *err =
            xasprintf("cannot open %s: %s", dest, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        goto out;
    }
    bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk) {
        *err = xasprintf("cannot start the backup into %s: %s", dest, sqlite3_errmsg(dst));
        goto out;
    }
    for (;;) {
        rc = sqlite3_backup_step(bk, BACKUP_STEP_PAGES);
        if (rc == SQLITE_DONE)
            break;
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++tries < BACKUP_BUSY_TRIES) {
            sqlite3_sleep(BACKUP_BUSY_SLEEP_MS);
            continue;
        }
        if (rc != SQLITE_OK) {
            ret = sqlite_errno(rc);
            *err = xasprintf("backup into %s failed: %s", dest, sqlite3_errstr(rc));
            goto out;
        }
        if (cancelled && cancelled(ctx)) {
            ret = -ECANCELED;
            *err = xasprintf("backup into %s cancelled (daemon shutting down)", dest);
            goto out;
        }
    }
    rc = sqlite3_backup_finish(bk);
    bk = NULL;
    if (rc != SQLITE_OK) {
        ret = sqlite_errno(rc);
        *err = xasprintf("backup into %s failed: %s", dest, sqlite3_errmsg(dst));
        goto out;
    }
    (void)sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);

    /* One self-contained file, checked, on disk. */
    rc = sqlite3_exec(dst, "PRAGMA synchronous = FULL", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(dst, "PRAGMA journal_mode = DELETE", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_OK || strcmp(mode, "delete") != 0) {
        *err = xasprintf("cannot finish the backup %s (journal mode): %s", dest,
                         msg ? msg : sqlite3_errmsg(dst));
        goto out;
    }
    rc = sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(check, sizeof check, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (strcmp(check, "ok") != 0) {
        *err = xasprintf("the backup %s fails its integrity check (%s); the database itself may "
                         "be damaged: run PRAGMA integrity_check on it",
                         dest, *check ? check : sqlite3_errmsg(dst));
        goto out;
    }
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        ret = sqlite_errno(rc);
        *err = xasprintf("cannot close the backup %s: %s", dest, sqlite3_errstr(rc));
        goto out;
    }
    if ((rc = fsync_parent_dir(dest)) < 0) {
        ret = rc;
        *err = xasprintf("cannot flush the directory of %s to disk: %s", dest, strerror(-rc));
        goto out;
    }
    ret = 0;
out:
    sqlite3_free(msg);
    if (bk)
        sqlite3_backup_finish(bk);
    if (dst)
        sqlite3_close(dst);
    if (src) {
        if (!sqlite3_get_autocommit(src))
            (void)sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(src);
    }
    if (ret < 0 && created) {
        unlink(dest);
        char *j = xasprintf("%s-journal", dest);
        unlink(j);
        free(j);
    }
    return ret;
}

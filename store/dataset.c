/*
 * dataset.c — typed accessors for the datasets table.
 *
 * A dataset row is metadata only: the bytes live in a content-addressed
 * file under state_dir (written, hashed and fsynced by a worker before the
 * row is inserted), so two rows may share one file.  That is why delete
 * hands the path back only when the last row referring to it is gone, and
 * why the caller, not the store, unlinks: the store never touches dataset
 * files, and a crash between COMMIT and unlink leaves an orphan file that
 * store_dataset_path_in_use() lets start-up cleanup recognise.
 *
 * Names are validated here as well as by CHECK constraints, so the caller
 * gets -EINVAL and a readable message instead of a SQLite constraint text.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"


void store_dataset_clear(struct store_dataset *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->path);
    free(d->source);
    memset(d, 0, sizeof *d);
}

void store_dataset_list_free(struct store_dataset *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_dataset_clear(&v[i]);
    free(v);
}

/* Fills d from a row of DS_COLUMNS (see statements.c). */
static int row_to_dataset(struct store *s, sqlite3_stmt *st, struct store_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    const char *fmt = (const char *)sqlite3_column_text(st, 2);
    if (dataset_format_parse(fmt, &d->format) < 0)
        return store_failx(s, -EIO, "dataset %" PRId64 " has unknown format '%s'", d->id,
                           fmt ? fmt : "(null)");
    d->name = store_column_strdup(st, 1);
    d->n_examples = sqlite3_column_int64(st, 3);
    d->n_bytes = sqlite3_column_int64(st, 4);
    const char *sha = (const char *)sqlite3_column_text(st, 5);
    snprintf(d->sha256, sizeof d->sha256, "%s", sha ? sha : "");
    d->path = store_column_strdup(st, 6);
    d->source = store_column_strdup(st, 7);
    d->created_at = sqlite3_column_int64(st, 8);
    return 0;
}

int store_dataset_insert(struct store *s, struct store_dataset *d)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_INSERT);
    int64_t now = now_unix();
    int ret, rc;

    if (!store_name_valid(d->name))
        return store_failx(s, -EINVAL,
                           "invalid dataset name '%s': use 1 to %d printable characters, not "
                           "digits only",
                           d->name ? d->name : "", STORE_NAME_MAX_LEN);
    if (!store_hex64_valid(d->sha256))
        return store_failx(s, -EINVAL, "invalid dataset sha256 '%s'", d->sha256);
    if (!d->path || !*d->path)
        return store_failx(s, -EINVAL, "dataset '%s' has no content path", d->name);
    if (strcmp(dataset_format_name(d->format), "unknown") == 0)
        return store_failx(s, -EINVAL, "invalid dataset format %d", (int)d->format);
    if (d->n_examples < 0 || d->n_bytes < 0)
        return store_failx(s, -EINVAL, "negative dataset size");

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, dataset_format_name(d->format), -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, d->n_examples) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, d->n_bytes) != SQLITE_OK ||
        sqlite3_bind_text(st, 5, d->sha256, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, d->path, -1, SQLITE_STATIC) != SQLITE_OK ||
        (d->source ? sqlite3_bind_text(st, 7, d->source, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st, 7)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, now) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding dataset");
        goto out;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "inserting dataset");
        if (ret == -EEXIST)
            store_failx(s, ret, "a dataset named '%s' already exists: choose another --name",
                        d->name);
        goto out;
    }
    int64_t id = sqlite3_last_insert_rowid(s->db);
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    d->id = id;
    d->created_at = now;
out:
    store_stmt_done(s, ST_DS_INSERT);
    if (ret < 0)
        store_rollback(s);
    return ret;
}

/* Reads the dataset with this id into *out; -ENOENT when absent. */
static int get_by_id(struct store *s, int64_t id, struct store_dataset *out)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_GET_BY_ID);
    int ret;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding dataset id");
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = row_to_dataset(s, st, out);
    else if (rc == SQLITE_DONE)
        ret = store_failx(s, -ENOENT, "no dataset with id %" PRId64, id);
    else
        ret = store_fail(s, rc, "reading dataset");
out:
    store_stmt_done(s, ST_DS_GET_BY_ID);
    return ret;
}

int store_dataset_get(struct store *s, const char *id_or_name, struct store_dataset *out)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_GET_BY_NAME);
    int ret;

    memset(out, 0, sizeof *out);
    if (!id_or_name || !*id_or_name)
        return store_failx(s, -EINVAL, "no dataset id or name given");
    if (store_is_decimal(id_or_name)) {
        errno = 0;
        char *end = NULL;
        long long id = strtoll(id_or_name, &end, 10);
        if (errno != 0 || *end != '\0')
            return store_failx(s, -ENOENT, "no dataset with id %s", id_or_name);
        return get_by_id(s, (int64_t)id, out);
    }
    if (sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_STATIC) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding dataset name");
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ret = row_to_dataset(s, st, out);
    else if (rc == SQLITE_DONE)
        ret = store_failx(s, -ENOENT, "no dataset named '%s'", id_or_name);
    else
        ret = store_fail(s, rc, "reading dataset");
out:
    store_stmt_done(s, ST_DS_GET_BY_NAME);
    return ret;
}

int store_dataset_list(struct store *s, struct store_dataset **out, size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_LIST);
    struct store_dataset *v = NULL;
    size_t len = 0, cap = 0;
    int ret = 0, rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        ret = row_to_dataset(s, st, &v[len]);
        if (ret < 0)
            goto out;
        len++;
    }
    if (rc != SQLITE_DONE) {
        ret = store_fail(s, rc, "listing datasets");
        goto out;
    }
    *out = v;
    *n = len;
    v = NULL;
    len = 0;
out:
    store_stmt_done(s, ST_DS_LIST);
    store_dataset_list_free(v, len);
    return ret;
}

/* Counts backdoors and jobs referring to dataset id. */
static int dataset_refs(struct store *s, int64_t id, int64_t *backdoors, int64_t *jobs)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_REFS);
    int ret = 0;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store_fail(s, rc, "counting dataset references");
        goto out;
    }
    *backdoors = sqlite3_column_int64(st, 0);
    *jobs = sqlite3_column_int64(st, 1);
out:
    store_stmt_done(s, ST_DS_REFS);
    return ret;
}

/* Number of rows (datasets and built files) that refer to path. */
static int path_refs(struct store *s, const char *path, int64_t *count)
{
    sqlite3_stmt *st = store_stmt(s, ST_DS_PATH_REFS);
    int ret = 0;
    int rc = sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        ret = store_fail(s, rc, "counting path references");
        goto out;
    }
    *count = sqlite3_column_int64(st, 0);
out:
    store_stmt_done(s, ST_DS_PATH_REFS);
    return ret;
}

int store_dataset_delete(struct store *s, int64_t id, char **path_out)
{
    struct store_dataset d = {0};
    int64_t backdoors = 0, jobs = 0, others = 0;
    int ret, rc;

    if (path_out)
        *path_out = NULL;
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = get_by_id(s, id, &d);
    if (ret < 0)
        goto out;
    ret = dataset_refs(s, id, &backdoors, &jobs);
    if (ret < 0)
        goto out;
    if (backdoors > 0 || jobs > 0) {
        ret =
            store_failx(s, -EBUSY,
                        "dataset %" PRId64 " ('%s') is used by %" PRId64 " backdoor(s) and %" PRId64
                        " job(s): it cannot be removed while they exist",
                        id, d.name, backdoors, jobs);
        goto out;
    }
    sqlite3_stmt *st = store_stmt(s, ST_DS_DELETE);
    rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        ret = store_fail(s, rc, "deleting dataset");
    store_stmt_done(s, ST_DS_DELETE);
    if (ret < 0)
        goto out;
    ret = path_refs(s, d.path, &others);
    if (ret < 0)
        goto out;
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    if (others == 0 && path_out) {
        *path_out = d.path;
        d.path = NULL;
    }
out:
    if (ret < 0)
        store_rollback(s);
    store_dataset_clear(&d);
    return ret;
}

int store_dataset_path_in_use(struct store *s, const char *path)
{
    int64_t count = 0;
    if (!path)
        return store_failx(s, -EINVAL, "no path given");
    int ret = path_refs(s, path, &count);
    if (ret < 0)
        return ret;
    return count > 0;
}

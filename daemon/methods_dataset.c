/*
 * methods_dataset.c — dataset.add | list | show | rm, and the crash
 * cleanup of half-imported files.
 *
 * dataset.add runs the import (workers/import.c) in the libuv thread pool:
 * reading, validating, hashing and copying never touch the loop thread.
 * The daemon reads the file through the descriptor the client passed
 * (ctl_req_take_file: a regular file the client opened with its own
 * rights); it opens no path a client names.
 * Progress is sent as "progress" notifications by the cron timer.  The row
 * is written on the loop thread only after the content file is durable, so
 * the database never names a partial file.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "lib/log.h"
#include "daemon/lookup.h"
#include "daemon/task.h"
#include "lib/util.h"
#include "workers/holdout.h"
#include "workers/import.h"
#include "workers/selfaudit.h"

struct import_job {
    struct task t; /* first: the task is the job */
    int fd;        /* the client's file (ctl_req_take_file), closed when done */
    char *src;     /* its label */
    char *name;
    enum dataset_format want;
    struct import_result result;
    char *err;
    int rc;
};

static json_t *dataset_json(const struct store_dataset *ds)
{
    char created[32];
    format_iso8601(ds->created_at, created);
    return json_pack("{s:I,s:s,s:s,s:I,s:I,s:s,s:s,s:s?,s:s}", CTL_K_ID, (json_int_t)ds->id,
                     CTL_K_NAME, ds->name, CTL_K_FORMAT, dataset_format_name(ds->format),
                     CTL_K_EXAMPLES, (json_int_t)ds->n_examples, CTL_K_BYTES,
                     (json_int_t)ds->n_bytes, CTL_K_SHA256, ds->sha256, CTL_K_PATH, ds->path,
                     CTL_K_SOURCE, ds->source, CTL_K_CREATED_AT, created);
}

/* Names: 1–64 of [A-Za-z0-9._-], starting with a letter or digit, not all
 * digits (a number always means an id). */
static const char *name_problem(const char *s)
{
    size_t n = strlen(s);
    int digits = 1;
    if (n == 0 || n > 64)
        return "must be 1 to 64 characters";
    if (!isalnum((unsigned char)s[0]))
        return "must start with a letter or digit";
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return "may contain only letters, digits, '.', '_' and '-'";
        if (!isdigit((unsigned char)s[i]))
            digits = 0;
    }
    return digits ? "must not be all digits (numbers are ids)" : NULL;
}

/* Default name: the file's basename without .jsonl/.json, sanitised. */
static char *default_name(const char *path)
{
    const char *base = strrchr(path, '/');
    char *n = xstrdup(base ? base + 1 : path);
    char *dot = strrchr(n, '.');
    if (dot && (strcmp(dot, ".jsonl") == 0 || strcmp(dot, ".json") == 0))
        *dot = '\0';
    for (char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            *p = '_';
    if (strlen(n) > 64)
        n[64] = '\0';
    return n;
}

static void import_work(struct task *t)
{
    struct import_job *j = (struct import_job *)t;
    j->rc = import_dataset_fd(j->fd, j->src, j->want, t->d->tmp_dir, t->d->datasets_dir,
                              &t->progress, &j->result, &j->err);
}

static void import_done(struct task *t, int status)
{
    struct import_job *j = (struct import_job *)t;
    struct vtuned *d = t->d;

    if (status == UV_ECANCELED) {
        ctl_reply_error(t->req, CTL_ERR_SHUTDOWN, NULL, "%s: import cancelled (shutting down)",
                        j->src);
    } else if (j->rc < 0) {
        log_info("dataset: import of %s failed: %s", j->src, j->err);
        ctl_reply_error(t->req, CTL_ERR_INVALID, json_pack("{s:s}", CTL_K_FILE, j->src), "%s",
                        j->err);
    } else {
        struct store_dataset ds = {0};
        ds.name = j->name;
        ds.format = j->result.format;
        ds.n_examples = j->result.n_examples;
        ds.n_bytes = j->result.n_bytes;
        memcpy(ds.sha256, j->result.sha256, sizeof ds.sha256);
        ds.path = j->result.path;
        ds.source = j->src;
        int r = store_dataset_insert(d->store, &ds);
        if (r < 0) {
            if (j->result.created && !store_dataset_path_in_use(d->store, j->result.path))
                unlink(j->result.path);
            if (r == -EINVAL)
                ctl_reply_error(t->req, CTL_ERR_PARAMS, NULL, "dataset name '%s': %s", j->name,
                                store_errmsg(d->store));
            else if (r == -EEXIST)
                ctl_reply_error(t->req, CTL_ERR_CONFLICT, NULL,
                                "a dataset named '%s' already exists; choose another with --name",
                                j->name);
            else
                ctl_reply_error(t->req, CTL_ERR_INTERNAL, NULL, "cannot record dataset: %s",
                                store_errmsg(d->store));
        } else {
            log_ctx(LOG_LVL_INFO, &(struct log_fields){.dataset = ds.id},
                    "dataset: imported %s as '%s' (id %lld, %lld examples, %s, sha256 %.16s…)",
                    j->src, j->name, (long long)ds.id, (long long)ds.n_examples,
                    dataset_format_name(ds.format), ds.sha256);
            ctl_reply(t->req, dataset_json(&ds));
        }
    }
    import_result_clear(&j->result);
    close(j->fd);
    free(j->err);
    free(j->src);
    free(j->name);
    task_free(t);
}

static void m_add(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    const char *name = json_string_value(json_object_get(params, CTL_K_NAME));
    const char *format = json_string_value(json_object_get(params, CTL_K_FORMAT));
    enum dataset_format want = 0;
    const char *why;
    struct store_dataset existing;
    char *label, *nm = NULL;
    int fd;

    if ((fd = ctl_req_take_file(req, params, CTL_K_PATH, CTL_FILE_READ, &label)) < 0)
        return;
    if (json_object_get(params, CTL_K_NAME) && !name) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.name: expected a string");
        goto fail;
    }
    if (!name && !json_string_value(json_object_get(params, CTL_K_FILE))) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.name: required when params.file does not name the file");
        goto fail;
    }
    if (format && strcmp(format, "auto") != 0 && dataset_format_parse(format, &want) < 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.format: expected auto, chat, prompt or instruction, got '%.32s'",
                        format);
        goto fail;
    }
    nm = name ? xstrdup(name) : default_name(label);
    if ((why = name_problem(nm)) != NULL) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "dataset name '%.80s' %s%s", nm, why,
                        name ? "" : "; choose one with --name");
        goto fail;
    }
    if (store_dataset_get(d->store, nm, &existing) == 0) {
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "a dataset named '%s' already exists (id %lld); choose another with --name",
                        nm, (long long)existing.id);
        store_dataset_clear(&existing);
        goto fail;
    }

    struct import_job *j = xcalloc(1, sizeof *j);
    j->t.req = req;
    j->t.stage = "import";
    j->t.run = import_work;
    j->t.done = import_done;
    j->fd = fd;
    j->src = label;
    j->name = nm;
    j->want = want;
    task_start(d, &j->t);
    return;
fail:
    close(fd);
    free(label);
    free(nm);
}

/* dataset.list and dataset.show: read methods (struct ctl_read). */
static json_t *read_list(struct ctl_read *r, json_t *params)
{
    struct store_dataset *v;
    size_t n;
    (void)params;
    if (store_dataset_list(r->store, &v, &n) < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot list datasets: %s", store_errmsg(r->store));
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, dataset_json(&v[i]));
    store_dataset_list_free(v, n);
    return arr;
}

static json_t *read_show(struct ctl_read *r, json_t *params)
{
    struct store_dataset ds;
    if (lookup_dataset_in(r, params, CTL_K_ID, &ds) < 0)
        return NULL;
    json_t *o = dataset_json(&ds);
    store_dataset_clear(&ds);
    return o;
}

static void m_rm(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_dataset ds;
    char *path = NULL;
    if (lookup_dataset(d, req, params, CTL_K_ID, &ds) < 0)
        return;
    int r = store_dataset_delete(d->store, ds.id, &path);
    if (r == -EBUSY)
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "dataset '%s' is used by backdoors or jobs; remove those first", ds.name);
    else if (r < 0)
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot remove dataset: %s",
                        store_errmsg(d->store));
    else {
        if (path && unlink(path) < 0 && errno != ENOENT)
            log_warn("dataset: cannot remove %s", path);
        log_ctx(LOG_LVL_INFO, &(struct log_fields){.dataset = ds.id},
                "dataset: removed '%s' (id %lld)", ds.name, (long long)ds.id);
        ctl_reply(req, json_pack("{s:I,s:s,s:b}", CTL_K_ID, (json_int_t)ds.id, CTL_K_NAME, ds.name,
                                 "removed", 1));
    }
    free(path);
    store_dataset_clear(&ds);
}

void dataset_cleanup_orphans(struct vtuned *d)
{
    DIR *dir;
    struct dirent *e;
    unsigned n_tmp = 0, n_orphan = 0;

    if ((dir = opendir(d->tmp_dir)) != NULL) {
        while ((e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, "import-", 7) != 0 && strncmp(e->d_name, "build-", 6) != 0)
                continue;
            char *p = xasprintf("%s/%s", d->tmp_dir, e->d_name);
            if (unlink(p) == 0)
                n_tmp++;
            free(p);
        }
        closedir(dir);
    }
    if ((dir = opendir(d->datasets_dir)) != NULL) {
        while ((e = readdir(dir)) != NULL) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, HOLDOUT_SCRATCH_PREFIX, strlen(HOLDOUT_SCRATCH_PREFIX)) == 0) {
                /* a held-out split's scratch file, where the file system
                 * has no O_TMPFILE and the daemon died before unlinking it */
                char *p = xasprintf("%s/%s", d->datasets_dir, e->d_name);
                if (unlink(p) == 0)
                    n_tmp++;
                free(p);
                continue;
            }
            if (n != 64 + 6 || strcmp(e->d_name + 64, ".jsonl") != 0)
                continue;
            char *p = xasprintf("%s/%s", d->datasets_dir, e->d_name);
            if (store_dataset_path_in_use(d->store, p) == 0 && unlink(p) == 0)
                n_orphan++;
            free(p);
        }
        closedir(dir);
    }
    if ((dir = opendir(d->built_dir)) != NULL) {
        while ((e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, SELFAUDIT_SCRATCH_PREFIX, strlen(SELFAUDIT_SCRATCH_PREFIX)) ==
                0) {
                /* a self-audit's scratch file, where the file system has
                 * no O_TMPFILE and the daemon died before unlinking it */
                char *p = xasprintf("%s/%s", d->built_dir, e->d_name);
                if (unlink(p) == 0)
                    n_tmp++;
                free(p);
                continue;
            }
            if (e->d_name[0] == '.')
                continue;
            char *p = xasprintf("%s/%s", d->built_dir, e->d_name);
            if (store_dataset_path_in_use(d->store, p) == 0 && unlink(p) == 0)
                n_orphan++;
            free(p);
        }
        closedir(dir);
    }
    if (n_tmp || n_orphan)
        log_info("dataset: removed %u temporary and %u unreferenced files left by an interrupted "
                 "import or build",
                 n_tmp, n_orphan);
}

const struct ctl_method ctl_methods_dataset[] = {
    {CTL_M_DATASET_ADD, m_add, 1, NULL},
    {CTL_M_DATASET_LIST, NULL, 0, read_list},
    {CTL_M_DATASET_SHOW, NULL, 0, read_show},
    {CTL_M_DATASET_RM, m_rm, 1, NULL},
    {NULL, NULL, 0, NULL},
};

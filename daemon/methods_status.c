/*
 * methods_status.c — the `status` method: version, uptime, counts,
 * providers and what the daemon is doing right now; and `backup`, a
 * consistent copy of the database.
 *
 * backup writes into the daemon's own state directory, never to a path a
 * client names (the daemon may run with rights the client lacks): a new
 * file STATE/backups/vtuned-YYYYmmdd-HHMMSS.db (UTC; "-N" appended when
 * that name is taken), mode 0600 in a 0700 directory.  The copy runs in
 * the thread pool (store_backup: its own connections, one snapshot), so
 * the loop keeps serving; the answer names the file with its size and
 * SHA-256, and vtunectl copies it where its user asked, with that user's
 * rights (vtunectl(1) backup).
 *
 * status is usually answered by the control thread (daemon/ctl.c), so that
 * it never waits behind the main loop's work: status_snapshot builds, on
 * the main loop, everything but the counts, uptime and connections, which
 * ctl.c publishes as a snapshot; status_fill adds those on whichever
 * thread answers.  m_status below is the main loop's answer when the
 * control thread leaves it the request.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/providers.h"
#include "daemon/task.h"
#include "daemon/verifier.h"
#include "lib/log.h"
#include "lib/util.h"

json_t *status_snapshot(struct vtuned *d)
{
    char started[32];
    format_iso8601(d->started_at, started);
    return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:o,s:{s:i,s:I,s:I}}", CTL_K_VERSION,
                     PACKAGE_VERSION, CTL_K_PID, (int)getpid(), CTL_K_STARTED_AT, started,
                     CTL_K_STATE_DIR, d->conf->state_dir, CTL_K_SOCKET, d->conf->socket,
                     CTL_K_CONFIG, d->conf_path, CTL_K_PROVIDERS, providers_status_json(d),
                     "activity", "background_work", (int)d->work_in_flight, "jobs_driven",
                     (json_int_t)jobs_active(d), "verifications_running",
                     (json_int_t)verifier_active());
}

void status_fill(json_t *res, const struct store_counts *c, uint64_t started_ms,
                 unsigned connections, const char *scheduling)
{
    json_object_set_new(res, CTL_K_UPTIME_SECONDS,
                        json_integer((json_int_t)((now_monotonic_ms() - started_ms) / 1000)));
    json_object_set_new(
        res, CTL_K_COUNTS,
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", CTL_K_DATASETS, (json_int_t)c->datasets,
                  CTL_K_BACKDOORS, (json_int_t)c->backdoors, CTL_K_JOBS, (json_int_t)c->jobs,
                  CTL_K_JOBS_ACTIVE, (json_int_t)c->jobs_active, CTL_K_VERIFICATIONS,
                  (json_int_t)c->verifications, CTL_K_AUDITS, (json_int_t)c->audits,
                  CTL_K_SCHEDULES, (json_int_t)c->schedules));
    json_t *act = json_object_get(res, "activity");
    json_object_set_new(act, "connections", json_integer((json_int_t)connections));
    json_object_set_new(act, "control_scheduling", json_string(scheduling));
}

/* The main loop's answer, when the control thread leaves status to it
 * (daemon/ctl.c, local_status). */
static void m_status(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_counts c;
    (void)params;
    if (store_counts(d->store, &c) < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read counts: %s",
                        store_errmsg(d->store));
        return;
    }
    json_t *res = status_snapshot(d);
    status_fill(res, &c, d->started_ms, ctl_server_connections(d->ctl),
                ctl_server_scheduling(d->ctl));
    ctl_reply(req, res);
}

struct backup_job {
    struct task t; /* first: the task is the job */
    char *dir;     /* STATE/backups (owned): copied on the loop, as d->conf may be
                    * replaced by a reload while the work runs */
    char *path;    /* the file written (owned), once chosen */
    char *err;
    int rc;
    int64_t bytes;
    char sha256[65];
};

static int backup_cancelled(void *ctx)
{
    struct task *t = ctx;
    return atomic_load(&t->progress.cancel) != 0;
}

/* SHA-256 and size of the finished file, for the client to check its copy. */
static int hash_file(const char *path, char hex[65], int64_t *bytes)
{
    static _Thread_local char block[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct sha256_ctx *h = sha256_new();
    int64_t total = 0;
    ssize_t n;
    while ((n = read(fd, block, sizeof block)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            sha256_final_hex(h, hex);
            close(fd);
            return e;
        }
        sha256_update(h, block, (size_t)n);
        total += n;
    }
    sha256_final_hex(h, hex);
    close(fd);
    *bytes = total;
    return 0;
}

static void backup_work(struct task *t)
{
    struct backup_job *j = (struct backup_job *)t;
    const char *dir = j->dir;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int r;

    if ((r = mkdir_p(dir, 0700)) < 0) {
        j->rc = r;
        j->err = xasprintf("cannot create %s: %s", dir, strerror(-r));
        return;
    }
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int i = 0; i < 100; i++) {
        free(j->path);
        j->path = i ? xasprintf("%s/vtuned-%s-%d.db", dir, stamp, i)
                    : xasprintf("%s/vtuned-%s.db", dir, stamp);
        free(j->err);
        j->err = NULL;
        j->rc = store_backup(t->d->store, j->path, backup_cancelled, t, &j->err);
        if (j->rc != -EEXIST)
            break;
    }
    if (j->rc == 0 && (r = hash_file(j->path, j->sha256, &j->bytes)) < 0) {
        j->rc = r;
        j->err = xasprintf("cannot read back %s: %s", j->path, strerror(-r));
    }
}

static void backup_done(struct task *t, int status)
{
    struct backup_job *j = (struct backup_job *)t;
    if (status == UV_ECANCELED || j->rc == -ECANCELED) {
        ctl_reply_error(t->req, CTL_ERR_SHUTDOWN, NULL, "backup cancelled (shutting down)");
    } else if (j->rc < 0) {
        log_warnx("backup failed: %s", j->err);
        ctl_reply_error(t->req, CTL_ERR_FAILED, NULL, "%s", j->err);
    } else {
        log_info("backup: wrote %s (%lld bytes, sha256 %.16s…)", j->path, (long long)j->bytes,
                 j->sha256);
        ctl_reply(t->req, json_pack("{s:s,s:I,s:s}", CTL_K_PATH, j->path, CTL_K_BYTES,
                                    (json_int_t)j->bytes, CTL_K_SHA256, j->sha256));
    }
    free(j->dir);
    free(j->path);
    free(j->err);
    task_free(t);
}

static void m_backup(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct backup_job *j = xcalloc(1, sizeof *j);
    j->dir = xasprintf("%s/backups", d->conf->state_dir);
    j->t.req = req;
    j->t.stage = "backup";
    j->t.run = backup_work;
    j->t.done = backup_done;
    task_start(d, &j->t);
}

const struct ctl_method ctl_methods_status[] = {
    {CTL_M_STATUS, m_status, 0, NULL},
    {CTL_M_BACKUP, m_backup, 1, NULL},
    {NULL, NULL, 0, NULL},
};

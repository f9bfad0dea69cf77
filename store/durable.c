/*
 * durable.c — commits off the event loop (issue 13): the loop's connection
 * commits without waiting for the disk, and a syncer thread makes those
 * commits durable in groups; side effects wait for it (see store.h,
 * "durability off the loop").
 *
 * Why this shape and not a writer thread with its own connection: every
 * write of the daemon (job transitions, but also job inserts, verification
 * runs, trials, audit records, outbox items) happens on the loop, and two
 * connections writing one database serialise on SQLite's write lock anyway
 * (a loop write would then wait, busy, behind the writer's fsync).  So the
 * writes stay where they are, in the same transactions, and only the fsync
 * moves:
 *
 *  1. the loop connection runs in WAL mode with synchronous=NORMAL: a
 *     commit appends its frames to the -wal file (write(2), no fsync) and
 *     is atomic and visible at once, and survives a crash of the process;
 *     a commit hook counts commits (the "ticket" of everything so far);
 *  2. the syncer thread, asked for ticket N, calls fdatasync(2) on its own
 *     descriptor of the -wal file.  fsync flushes the file (the inode), not
 *     the descriptor, so every frame written before the call is on disk
 *     when it returns: tickets <= N are durable.  Requests that arrive
 *     during one fdatasync are covered by the next: one fsync per group,
 *     however many commits it holds (group commit);
 *  3. the thread publishes the durable ticket and calls notify (the daemon
 *     wakes its loop with uv_async_send); callers that waited for a ticket
 *     (a provider request, a control reply) go on then.
 *  4. SQLite's automatic checkpoint (which syncs the -wal and the database
 *     in the committing connection, i.e. on the loop) is replaced: a WAL
 *     hook on the loop connection notes the log's size and asks the thread,
 *     which runs PASSIVE checkpoints on a second connection of its own
 *     (passive: it never takes the write lock, so the loop never waits for
 *     it).  SQLite itself still syncs the -wal header when a writer restarts
 *     the log after a complete checkpoint (once per STORE_CKPT_FRAMES frames
 *     at most, on the loop): the one fsync left there.
 *
 * The guarantee "recorded before the side effect" (DESIGN §3) is kept by
 * (3): a transition is committed (atomic, visible) on the loop, and the
 * call it permits is sent only after its ticket is durable.  A power loss
 * can lose commits whose ticket was not yet durable; nothing outside saw
 * their effects.  A failed fdatasync is not retried as if it had worked:
 * the ticket stays where it was and the thread tries again, logging each
 * failure (the page cache may have dropped the pages: SQLite calls this
 * case fatal; so do we, by never reporting them durable).
 *
 * The -wal file is opened once (read-only, O_CLOEXEC) and kept open until
 * store_durable_stop: closing a descriptor of a file drops the process's
 * POSIX locks on it, and SQLite keeps its locks on the database and -shm
 * files, never on -wal; the log is only removed when the last connection
 * closes, after the thread has stopped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "store/store_internal.h"

/* Frames in the log before the thread checkpoints (4 KiB pages: ~16 MiB). */
#define STORE_CKPT_FRAMES 4000

struct store_durable {
    struct store *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wal_fd;
    sqlite3 *ckpt_db; /* the thread's connection (checkpoints only) */
    uint64_t commits;          /* loop: commits so far (the commit hook) */
    uint64_t requested;        /* mu: the largest ticket asked for */
    _Atomic uint64_t durable;  /* the largest ticket on disk */
    int want_ckpt;             /* mu */
    int stop;                  /* mu */
    _Atomic uint64_t n_syncs, n_ckpts;
    unsigned failures; /* thread: fdatasync failures in a row */
    void (*notify)(void *ctx);
    void *notify_ctx;
};

static int on_commit(void *arg)
{
    struct store_durable *w = arg;
    w->commits++;
    return 0; /* let it commit */
}

static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct store_durable *w = arg;
    (void)db;
    (void)name;
    if (frames >= STORE_CKPT_FRAMES) {
        pthread_mutex_lock(&w->mu);
        if (!w->want_ckpt) {
            w->want_ckpt = 1;
            pthread_cond_signal(&w->cv);
        }
        pthread_mutex_unlock(&w->mu);
    }
    return SQLITE_OK;
}

static void *syncer(void *arg)
{
    struct store_durable *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        uint64_t done = atomic_load(&w->durable);
        if (w->requested > done) {
            uint64_t target = w->requested;
            pthread_mutex_unlock(&w->mu);
            if (fdatasync(w->wal_fd) < 0) {
                if (w->failures++ % 50 == 0)
                    log_error("store: cannot sync the database log %s-wal: %s (%u failures); "
                              "provider requests and replies wait until it succeeds",
                              w->s->path, strerror(errno), w->failures);
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
            } else {
                if (w->failures)
                    log_info("store: the database log syncs again after %u failures",
                             w->failures);
                w->failures = 0;
                atomic_store(&w->durable, target);
                atomic_fetch_add(&w->n_syncs, 1);
                if (w->notify)
                    w->notify(w->notify_ctx);
            }
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (w->want_ckpt && !w->stop) {
            int log_frames = 0, ckpt = 0;
            w->want_ckpt = 0;
            pthread_mutex_unlock(&w->mu);
            int rc = sqlite3_wal_checkpoint_v2(w->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE,
                                               &log_frames, &ckpt);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                log_warnx("store: checkpoint of %s failed: %s", w->s->path,
                          sqlite3_errmsg(w->ckpt_db));
            else
                log_debug("store: checkpoint: %d of %d frames in the database", ckpt, log_frames);
            atomic_fetch_add(&w->n_ckpts, 1);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        if (w->stop)
            break;
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int store_durable_start(struct store *s, void (*notify)(void *ctx), void *ctx, char **err)
{
    struct store_durable *w;
    char *wal = NULL;
    *err = NULL;
    if (s->dur)
        return 0;
    w = xcalloc(1, sizeof *w);
    w->s = s;
    w->wal_fd = -1;
    w->notify = notify;
    w->notify_ctx = ctx;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    /* The log may not exist yet (a database just switched to WAL, e.g. a
     * restored backup, gets it at its first write): created empty, 0600 like
     * the database, it is what SQLite would create, and SQLite opens the
     * same file. */
    wal = xasprintf("%s-wal", s->path);
    w->wal_fd = open(wal, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (w->wal_fd < 0) {
        *err = xasprintf("cannot open the database log %s: %s", wal, strerror(errno));
        goto fail;
    }
    int rc = sqlite3_open_v2(s->path, &w->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
                             NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(w->ckpt_db, 5000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(w->ckpt_db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        *err = xasprintf("cannot open a checkpoint connection to %s: %s", s->path,
                         w->ckpt_db ? sqlite3_errmsg(w->ckpt_db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* Before the loop connection stops syncing: everything so far is on disk. */
    if (fdatasync(w->wal_fd) < 0) {
        *err = xasprintf("cannot sync the database log %s: %s", wal, strerror(errno));
        goto fail;
    }
    if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        *err = xasprintf("cannot set synchronous=NORMAL on %s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    sqlite3_commit_hook(s->db, on_commit, w);
    sqlite3_wal_hook(s->db, on_wal, w); /* replaces the automatic checkpoint */
    if ((rc = pthread_create(&w->thread, NULL, syncer, w)) != 0) {
        sqlite3_commit_hook(s->db, NULL, NULL);
        sqlite3_wal_autocheckpoint(s->db, 1000);
        (void)sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
        *err = xasprintf("cannot start the store's sync thread: %s", strerror(rc));
        goto fail;
    }
    s->dur = w;
    free(wal);
    return 0;
fail:
    if (w->ckpt_db)
        sqlite3_close(w->ckpt_db);
    if (w->wal_fd >= 0)
        close(w->wal_fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    free(wal);
    return -1;
}

void store_durable_stop(struct store *s)
{
    struct store_durable *w = s ? s->dur : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    if (w->requested < w->commits)
        w->requested = w->commits; /* a last group: everything committed */
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    sqlite3_commit_hook(s->db, NULL, NULL);
    sqlite3_wal_hook(s->db, NULL, NULL);
    sqlite3_wal_autocheckpoint(s->db, 1000);
    (void)sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (sqlite3_close(w->ckpt_db) != SQLITE_OK)
        log_warnx("store: closing the checkpoint connection: %s", sqlite3_errmsg(w->ckpt_db));
    close(w->wal_fd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    s->dur = NULL;
    free(w);
}

uint64_t store_durable_ticket(struct store *s)
{
    struct store_durable *w = s->dur;
    if (!w || atomic_load(&w->durable) >= w->commits)
        return 0;
    pthread_mutex_lock(&w->mu);
    if (w->requested < w->commits) {
        w->requested = w->commits;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return w->commits;
}

uint64_t store_durable_commits(struct store *s)
{
    return s->dur ? s->dur->commits : 0;
}

bool store_durable_passed(struct store *s, uint64_t ticket)
{
    return !s->dur || atomic_load(&s->dur->durable) >= ticket;
}

uint64_t store_durable_syncs(struct store *s)
{
    return s->dur ? atomic_load(&s->dur->n_syncs) : 0;
}

uint64_t store_durable_checkpoints(struct store *s)
{
    return s->dur ? atomic_load(&s->dur->n_ckpts) : 0;
}

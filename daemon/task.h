/*
 * task.h — background work in the libuv thread pool, answered on the loop.
 *
 * A task runs its work function in a pool thread (file I/O, hashing,
 * building) and its done function on the loop thread, which answers the
 * request and frees the task.  While it runs, the cron timer sends its
 * progress to the client as "progress" notifications, and shutdown sets
 * its cancel flag (work functions check it between blocks).
 *
 * Progress is sent every PROGRESS_INTERVAL_MS while a client waits, also
 * when nothing moved (a heartbeat with the same counters), so a client
 * never sees more than that interval of silence during a long operation;
 * counters only grow within one stage.  Waits on the loop thread (provider
 * calls: a verification, the llm generator's calls) register a struct
 * wait_progress and are reported by the same cron.  One shape for all:
 *   {stage, unit, done, total (null: unknown), bytes (unit "bytes"),
 *    lines?, job?, calls?}            (vtuned(8), CONTROL PROTOCOL)
 */
#ifndef VT_TASK_H
#define VT_TASK_H

#include "daemon/vtuned.h"
#include "workers/import.h" /* struct import_progress: the shared progress counters */

struct task {
    uv_work_t work;
    struct vtuned *d;
    struct ctl_req *req;             /* answered by done(); may be NULL */
    /* static name shown in progress ("import", "build"); atomic: a pool
     * phase may rename its stage while the cron reads it */
    const char *_Atomic stage;
    struct import_progress progress; /* bytes_done/bytes_total/lines_done/cancel */
    uint64_t reported;
    struct task *next;
    /* Pool thread. */
    void (*run)(struct task *t);
    /* Loop thread; status is UV_ECANCELED when the task never ran.  Must
     * answer t->req and free the task (task_free() then its own members). */
    void (*done)(struct task *t, int status);
};

/* Queues t (allocated and filled by the caller, run/done set). */
void task_start(struct vtuned *d, struct task *t);
/* Frees the struct itself (callers free their own members first). */
void task_free(struct task *t);
/* Progress callback for workers (builder): stores done/total in t->progress. */
void task_progress_cb(void *task, uint64_t done, uint64_t total);

/* How often a waiting client hears of its operation (cron, vtuned.h). */
#define PROGRESS_INTERVAL_MS 1000

/* Sends one "progress" notification on req: stage and unit static strings;
 * total 0 is sent as null (unknown); job 0 and calls < 0 are left out;
 * lines < 0 too (tasks send lines only when they count them: imports).
 * Loop thread. */
void progress_notify(struct ctl_req *req, const char *stage, const char *unit, uint64_t done,
                     uint64_t total, int64_t job, int64_t lines, int64_t calls);

/* A wait on the loop thread that a client feels.  The owner fills it and
 * keeps it alive while linked; the cron sends it (update() first, when
 * set, refreshes done/total/calls) every PROGRESS_INTERVAL_MS while req is
 * connected.  Stop it before answering req. */
struct wait_progress {
    struct wait_progress *next;
    struct ctl_req *req;
    const char *stage, *unit; /* static */
    uint64_t done, total;     /* total 0: unknown */
    int64_t job;              /* 0: none */
    int64_t calls;            /* < 0: none */
    void (*update)(struct wait_progress *w);
    void *arg; /* the owner's, for update() */
    bool linked;
};
/* Links w (no-op when linked). */
void wait_progress_start(struct wait_progress *w);
/* Unlinks w (no-op when not linked). */
void wait_progress_stop(struct wait_progress *w);
/* Sends w now (a stage's last counters, just before its next stage or the answer). */
void wait_progress_send(struct wait_progress *w);

#endif

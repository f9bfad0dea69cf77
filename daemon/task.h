/*
 * task.h — background work in the libuv thread pool, answered on the loop.
 *
 * A task runs its work function in a pool thread (file I/O, hashing,
 * building) and its done function on the loop thread, which answers the
 * request and frees the task.  While it runs, the cron timer sends its
 * progress to the client as "progress" notifications, and shutdown sets
 * its cancel flag (work functions check it between blocks).
 */
#ifndef VT_TASK_H
#define VT_TASK_H

#include "daemon/vtuned.h"
#include "workers/import.h" /* struct import_progress: the shared progress counters */

struct task {
    uv_work_t work;
    struct vtuned *d;
    struct ctl_req *req;             /* answered by done(); may be NULL */
    const char *stage;               /* static name shown in progress ("import", "build") */
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

#endif

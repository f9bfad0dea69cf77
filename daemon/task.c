/*
 * task.c — the thread-pool task list (see task.h).
 */
#include "config.h"

#include <stdlib.h>

#include "daemon/ctl.h"
#include "daemon/task.h"

static void task_run(uv_work_t *w)
{
    struct task *t = w->data;
    t->run(t);
}

static void task_after(uv_work_t *w, int status)
{
    struct task *t = w->data;
    struct vtuned *d = t->d;
    for (struct task **pp = &d->tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    d->work_in_flight--;
    t->done(t, status);
}

void task_start(struct vtuned *d, struct task *t)
{
    t->d = d;
    t->work.data = t;
    t->next = d->tasks;
    d->tasks = t;
    d->work_in_flight++;
    uv_queue_work(d->loop, &t->work, task_run, task_after);
}

void task_free(struct task *t)
{
    free(t);
}

void task_progress_cb(void *task, uint64_t done, uint64_t total)
{
    struct task *t = task;
    atomic_store(&t->progress.bytes_total, total);
    atomic_store(&t->progress.bytes_done, done);
}

void tasks_cancel_all(struct vtuned *d)
{
    for (struct task *t = d->tasks; t; t = t->next) {
        atomic_store(&t->progress.cancel, 1);
        uv_cancel((uv_req_t *)&t->work); /* succeeds only if not yet started */
    }
}

void tasks_report_progress(struct vtuned *d)
{
    for (struct task *t = d->tasks; t; t = t->next) {
        uint64_t done = atomic_load(&t->progress.bytes_done);
        if (!t->req || done == t->reported || !ctl_req_connected(t->req))
            continue;
        t->reported = done;
        ctl_notify(t->req, CTL_N_PROGRESS,
                   json_pack("{s:s,s:I,s:I,s:I}", CTL_K_STAGE, t->stage, CTL_K_BYTES,
                             (json_int_t)done, CTL_K_TOTAL,
                             (json_int_t)atomic_load(&t->progress.bytes_total), "lines",
                             (json_int_t)atomic_load(&t->progress.lines_done)));
    }
}

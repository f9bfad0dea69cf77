/*
 * task.c — the thread-pool task list (see task.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "daemon/ctl.h"
#include "daemon/task.h"

static void task_run(uv_work_t *w)
{
    struct task *t = w->data;
    t->run(t);
#ifdef __GLIBC__
    /* A task's large blocks went back at free (vtuned.c, malloc_tune);
     * what it left free inside the arenas goes back too, so the next
     * task's peak starts from the daemon's own size. */
    malloc_trim(0);
#endif
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

void progress_notify(struct ctl_req *req, const char *stage, const char *unit, uint64_t done,
                     uint64_t total, int64_t job, int64_t lines, int64_t calls)
{
    json_t *p = json_pack("{s:s,s:s,s:I,s:o}", CTL_K_STAGE, stage, CTL_K_UNIT, unit, CTL_K_DONE,
                          (json_int_t)done, CTL_K_TOTAL,
                          total ? json_integer((json_int_t)total) : json_null());
    if (strcmp(unit, "bytes") == 0)
        json_object_set_new(p, CTL_K_BYTES, json_integer((json_int_t)done));
    if (lines >= 0)
        json_object_set_new(p, CTL_K_LINES, json_integer((json_int_t)lines));
    if (job)
        json_object_set_new(p, CTL_K_JOB, json_integer((json_int_t)job));
    if (calls >= 0)
        json_object_set_new(p, CTL_K_CALLS, json_integer((json_int_t)calls));
    ctl_notify(req, CTL_N_PROGRESS, p);
}

static struct wait_progress *waits;

void wait_progress_start(struct wait_progress *w)
{
    if (w->linked)
        return;
    w->next = waits;
    waits = w;
    w->linked = true;
}

void wait_progress_stop(struct wait_progress *w)
{
    if (!w->linked)
        return;
    for (struct wait_progress **pp = &waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    w->linked = false;
}

void wait_progress_send(struct wait_progress *w)
{
    if (!w->req || !ctl_req_connected(w->req))
        return;
    if (w->update)
        w->update(w);
    progress_notify(w->req, w->stage, w->unit, w->done, w->total, w->job, -1, w->calls);
}

void tasks_report_progress(struct vtuned *d)
{
    /* Every run, moved or not: the heartbeat is what bounds a client's silence. */
    for (struct task *t = d->tasks; t; t = t->next) {
        if (!t->req || !ctl_req_connected(t->req))
            continue;
        uint64_t done = atomic_load(&t->progress.bytes_done);
        const char *stage = atomic_load(&t->progress.stage);
        uint64_t lines = atomic_load(&t->progress.lines_done); /* counted by imports only */
        t->reported = done;
        progress_notify(t->req, stage ? stage : t->stage, "bytes", done,
                        atomic_load(&t->progress.bytes_total), 0, lines ? (int64_t)lines : -1, -1);
    }
    for (struct wait_progress *w = waits; w; w = w->next)
        wait_progress_send(w);
}

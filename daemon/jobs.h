/*
 * jobs.h — the durable fine-tuning job lifecycle (DESIGN §3, issue 5).
 *
 *   created → building → uploading → uploaded → submitting → submitted
 *           → running → succeeded | failed | cancelled,   and unknown.
 *
 * Every transition is a store transaction (state + job_events row, with
 * synchronous=FULL) committed BEFORE the side effect it permits: the job is
 * in "uploading" before the upload starts, in "submitting" before the
 * create call is sent.  On start every non-terminal job resumes from its
 * recorded state:
 *   created/building  → uploading (the built D ∪ D′ file already exists);
 *   uploading         → the upload is redone; once the new copy is
 *                       recorded, the provider's other files named
 *                       vtune-<submission id>.jsonl (orphans) are deleted
 *                       beside the job, which does not wait for it;
 *   uploaded          → submitting, then create;
 *   submitting        → RECONCILE: list the provider's jobs for our
 *                       submission id (metadata tag, or suffix vt-ID); one
 *                       found → submitted; none, with a complete listing →
 *                       create; listing impossible → unknown (an operator
 *                       decides with job.resolve).  Paying twice is worse
 *                       than waiting;
 *   submitted/running → polled.
 * The create call is sent once per decision and never resent blindly: an
 * ambiguous outcome (timeout, dropped connection, 5xx) leads back to
 * reconcile.  One cron tick (vtuned.c) drives every job whose next action
 * is due; nothing here blocks the loop.
 */
#ifndef VT_JOBS_H
#define VT_JOBS_H

#include "daemon/vtuned.h"

/* Loads every active job from the store and schedules it (start-up). */
void jobs_start(struct vtuned *d);
/* Cron: steps every due job and sends upload progress to watchers. */
void jobs_tick(struct vtuned *d);
/* Shutdown: stops driving (calls are cancelled by providers_shutdown) and
 * answers watchers. */
void jobs_stop(struct vtuned *d);
/* After the loop has ended: frees the runs. */
void jobs_free_all(struct vtuned *d);
/* The job as JSON (DESIGN §10 names; owned). */
json_t *job_json(const struct store_job *j);
/* Adds job id's p_luck screen to o (CTL_K_P_LUCK_SCREEN, the record, and
 * CTL_K_P_LUCK_AT_CREATION, its line); nothing when it has none. */
void job_luck_fields(struct store *st, int64_t id, json_t *o);
/* Number of jobs being driven. */
unsigned jobs_active(const struct vtuned *d);

/* Called once a job reaches a terminal state (succeeded, failed,
 * cancelled) — also for jobs registered as succeeded.  Set by the
 * verification module; NULL means nothing happens. */
extern void (*jobs_on_terminal)(struct vtuned *d, int64_t job_id);

extern const struct ctl_method ctl_methods_job[];

#endif

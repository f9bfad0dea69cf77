/*
 * jobs.c — driving fine-tuning jobs through their states (see jobs.h for
 * the contract and the recovery rules).
 *
 * Shape: one struct job_run per job the daemon is driving, in d->jobs.
 * A run is either idle (waiting for due_ms, checked by the cron tick) or
 * busy (one provider call in flight).  Every decision starts from the
 * state recorded in the store, and every transition goes through
 * run_move(), which writes the store first and only then lets the caller
 * act.  The commit does not wait for the disk; the provider request the
 * caller then makes does (provider_client.c's barrier waits for the
 * store's ticket, store/durable.c), so a transition is on disk before the
 * call it permits goes out.  Watchers (job.watch) get one notification per transition.
 *
 * A redone upload (the job was found in "uploading", or an attempt failed
 * or was resent) may leave an earlier copy at the provider: every upload is
 * named vtune-<submission id>.jsonl, so once the new copy is recorded an
 * orphan sweep lists the provider's files and deletes the others of that
 * name.  The sweep runs beside the job and owns copies of what it needs
 * (the run may end and be freed meanwhile); it never changes the job's
 * state and its failures are warnings only.
 *
 * When a job ends, its uploaded training file (D u D', secrets included) is
 * deleted at the provider (the provider's delete_upload setting).  Sweeps
 * and deletions are outbox items (daemon/outbox.h): recorded in the store
 * before the first DELETE, retried with backoff across restarts.  The
 * deletion is recorded in the terminal transition's own transaction
 * (store_job_transition_outbox): a crash cannot leave a finished job whose
 * upload nobody will delete.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/luck.h"
#include "daemon/ppl.h"
#include "lib/log.h"
#include "daemon/lookup.h"
#include "daemon/outbox.h"
#include "daemon/providers.h"
#include "daemon/task.h" /* progress_notify */
#include "lib/util.h"
#include "workers/selfaudit.h" /* SELFAUDIT_EXPOSED_RANK */

#define RECONCILE_DELAY_MS 2000 /* after an ambiguous create, before listing */
/* A job found in "submitting" at start-up may have a create still being
 * processed by the provider (sent just before the crash): wait this long
 * after the intent was recorded before listing, so the listing sees it. */
#define RECONCILE_GRACE_S 5
/* Transient listing failures are retried (local backoff 5 s, 10 s, 20 s, …)
 * this many times before the job is parked as unknown. */
#define RECONCILE_MAX_TRIES 6
#define RECONCILE_MAX_PAGES 20          /* listing without a server-side filter */
#define JOBS_STEPS_PER_TICK 16          /* job steps per cron run (VTUNED_CRON_MS) */
#define FIRST_POLL_MS       500         /* adaptive polling starts here while queued */
#define RETRY_MAX_MS        (5 * 60000) /* local backoff cap after a failed step */
#define SWEEP_PAGE_LIMIT    100         /* files per listing page (orphan sweep) */
#define SWEEP_MAX_PAGES     50          /* stop listing after this many pages */

void (*jobs_on_terminal)(struct vtuned *d, int64_t job_id);

struct watcher {
    struct watcher *next;
    struct ctl_req *req;
};

struct job_run {
    struct job_run *next;
    struct vtuned *d;
    int64_t id;
    enum job_state state;
    char *provider;
    char *base_model;
    char *submission_id;
    char *file_id;
    char *provider_job_id;
    char *params;     /* JSON object text */
    char *built_path; /* D ∪ D' to upload */
    int cancel_requested;
    int cancel_sent;            /* the cancel request went out (and did not fail) */
    struct provider_call *call; /* in flight, or NULL */
    uint64_t due_ms;
    uint64_t poll_ms;       /* current polling interval */
    unsigned failures;      /* consecutive failed steps (local backoff) */
    unsigned list_pages;    /* reconcile: pages read so far */
    unsigned list_failures; /* reconcile: failed listings in a row */
    char *list_cursor;      /* reconcile: next page */
    int warned_status;      /* an unrecognised status was logged once */
    uint64_t reported;      /* upload progress last sent (bytes) */
    uint64_t up_total;      /* and its total; 0: none sent yet */
    int upload_redo;        /* this upload repeats one that may have reached the provider */
    struct watcher *watchers;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void run_free(struct job_run *r)
{
    free(r->provider);
    free(r->base_model);
    free(r->submission_id);
    free(r->file_id);
    free(r->provider_job_id);
    free(r->params);
    free(r->built_path);
    free(r->list_cursor);
    free(r);
}

static struct job_run *run_find(struct vtuned *d, int64_t id)
{
    for (struct job_run *r = d->jobs; r; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

static void run_unlink(struct job_run *r)
{
    for (struct job_run **pp = &r->d->jobs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

unsigned jobs_active(const struct vtuned *d)
{
    unsigned n = 0;
    for (const struct job_run *r = d->jobs; r; r = r->next)
        n++;
    return n;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? xstrdup(src) : NULL;
}

static void schedule_in(struct job_run *r, uint64_t ms)
{
    r->due_ms = now_monotonic_ms() + ms;
}

/* Local backoff after a step that could not be completed: 5 s doubling to 5 min. */
static void schedule_retry(struct job_run *r)
{
    uint64_t ms = 5000;
    for (unsigned i = 0; i < r->failures && ms < RETRY_MAX_MS; i++)
        ms *= 2;
    if (ms > RETRY_MAX_MS)
        ms = RETRY_MAX_MS;
    r->failures++;
    schedule_in(r, ms);
}

json_t *job_json(const struct store_job *j)
{
    char created[32], updated[32];
    format_iso8601(j->created_at, created);
    format_iso8601(j->updated_at, updated);
    json_t *params = j->params ? json_loads(j->params, 0, NULL) : NULL;
    json_t *o = json_pack(
        "{s:I,s:s?,s:I,s:I,s:s,s:s,s:s?,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:b,s:o,s:s,s:s}", CTL_K_ID,
        (json_int_t)j->id, CTL_K_NAME, j->name, CTL_K_DATASET, (json_int_t)j->dataset_id,
        CTL_K_BACKDOOR, (json_int_t)j->backdoor_id, CTL_K_PROVIDER, j->provider, CTL_K_MODEL,
        j->base_model, CTL_K_FINE_TUNED_MODEL, j->fine_tuned_model, CTL_K_STATE,
        job_state_name(j->state), CTL_K_SUBMISSION_ID, j->submission_id, CTL_K_PROVIDER_FILE_ID,
        j->provider_file_id, CTL_K_PROVIDER_JOB_ID, j->provider_job_id, CTL_K_ERROR, j->error,
        CTL_K_UNKNOWN_REASON, j->unknown_reason, CTL_K_CANCEL_REQUESTED,
        j->cancel_requested_at != 0, CTL_K_PARAMS, params ? params : json_object(),
        CTL_K_CREATED_AT, created, CTL_K_UPDATED_AT, updated);
    return o;
}

void job_luck_fields(struct store *st, int64_t id, json_t *o)
{
    char *text = NULL;
    if (store_job_luck_get(st, id, &text) < 0 || !text)
        return;
    json_t *rec = json_loads(text, 0, NULL);
    char *line = luck_screen_line(text);
    if (rec)
        json_object_set_new(o, CTL_K_P_LUCK_SCREEN, rec);
    json_object_set_new(o, CTL_K_P_LUCK_AT_CREATION, json_string(line));
    free(line);
    free(text);
    /* the perplexity attack of the same submit (daemon/ppl.h) */
    text = NULL;
    if (store_job_ppl_get(st, id, &text) < 0 || !text)
        return;
    rec = json_loads(text, 0, NULL);
    line = ppl_result_line(text);
    if (rec)
        json_object_set_new(o, CTL_K_PPL_ATTACK, rec);
    json_object_set_new(o, CTL_K_PPL_AT_CREATION, json_string(line));
    free(line);
    free(text);
}

static json_t *event_json(const struct store_job_event *e)
{
    char at[32];
    format_iso8601(e->at, at);
    return json_pack("{s:I,s:s,s:s,s:s?,s:s?}", CTL_K_ID, (json_int_t)e->id, CTL_K_AT, at,
                     CTL_K_STATE, job_state_name(e->state), CTL_K_MESSAGE, e->message,
                     CTL_K_PROVIDER, e->provider_excerpt);
}

/* Sends the job's newest event to its watchers; on a terminal state, also
 * answers them with the job and drops them. */
static void notify_watchers(struct job_run *r, int final)
{
    struct store_job_event *ev = NULL;
    size_t n = 0;
    struct store_job j;
    char key[32];
    if (!r->watchers)
        return;
    if (store_job_events(r->d->store, r->id, &ev, &n) == 0 && n > 0)
        for (struct watcher *w = r->watchers; w; w = w->next)
            ctl_notify(w->req, CTL_N_JOB_EVENT, event_json(&ev[n - 1]));
    store_job_event_list_free(ev, n);
    if (!final)
        return;
    snprintf(key, sizeof key, "%lld", (long long)r->id);
    int have = store_job_get(r->d->store, key, &j) == 0;
    while (r->watchers) {
        struct watcher *w = r->watchers;
        r->watchers = w->next;
        if (have)
            ctl_reply(w->req, job_json(&j));
        else
            ctl_reply_error(w->req, CTL_ERR_INTERNAL, NULL, "job %lld vanished", (long long)r->id);
        free(w);
    }
    if (have)
        store_job_clear(&j);
}

static json_t *upload_delete_intent(struct vtuned *d, int64_t job_id, const char *provider,
                                    const char *file_id, enum job_state to);

/* Records a transition (the store first), then updates the run.  Returns 0,
 * or the store's error (the run is left as it was; the caller retries later).
 * A final state and the deletion of the job's upload (an outbox item) are
 * one transaction: a crash cannot keep one and lose the other. */
static int run_move(struct job_run *r, enum job_state to, const struct store_job_update *u,
                    const char *message, const char *excerpt)
{
    json_t *del = NULL;
    char *del_text = NULL;
    int64_t del_id = 0;
    int rc;
    if (job_state_is_terminal(to)) {
        const char *fid = r->file_id;
        if (u && u->provider_file_id)
            fid = *u->provider_file_id ? u->provider_file_id : NULL;
        del = upload_delete_intent(r->d, r->id, r->provider, fid, to);
        del_text = del ? json_dumps(del, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    }
    if (del_text) {
        struct store_outbox_intent ob = {"delete_upload", del_text, now_unix() * 1000};
        rc = store_job_transition_outbox(r->d->store, r->id, (int)r->state, to, u, message,
                                         excerpt, &ob, &del_id);
    } else {
        rc = store_job_transition(r->d->store, r->id, (int)r->state, to, u, message, excerpt);
    }
    free(del_text);
    if (rc < 0) {
        json_decref(del);
        log_job(LOG_LVL_ERROR, r->id, r->provider, "job %lld: cannot record %s -> %s: %s",
                (long long)r->id, job_state_name(r->state), job_state_name(to),
                store_errmsg(r->d->store));
        return rc;
    }
    log_job(LOG_LVL_INFO, r->id, r->provider, "job %lld: %s -> %s%s%s", (long long)r->id,
            job_state_name(r->state), job_state_name(to), message ? ": " : "",
            message ? message : "");
    r->state = to;
    r->failures = 0;
    if (u) {
        if (u->provider_file_id)
            set_str(&r->file_id, u->provider_file_id);
        if (u->provider_job_id)
            set_str(&r->provider_job_id, u->provider_job_id);
        if (u->request_cancel)
            r->cancel_requested = 1;
    }
    int final = job_state_is_terminal(to);
    /* Watchers are answered on a terminal state and on unknown: nothing more
     * happens to the job without an operator. */
    notify_watchers(r, final || to == JOB_UNKNOWN);
    if (final || to == JOB_UNKNOWN) {
        struct vtuned *d = r->d;
        int64_t id = r->id;
        if (del) {
            log_info("job %lld: %s; deleting the uploaded training file %s at %s", (long long)id,
                     job_state_name(to),
                     json_string_value(json_object_get(del, "file")), r->provider);
            outbox_adopt(d, "delete_upload", del_id, del);
            del = NULL;
        }
        run_unlink(r);
        run_free(r);
        if (final && jobs_on_terminal)
            jobs_on_terminal(d, id);
        return 1; /* the run is gone */
    }
    json_decref(del); /* not reached: del is set only for a final state */
    return 0;
}

/* A move the caller does not continue from. */
static void run_move_done(struct job_run *r, enum job_state to, const struct store_job_update *u,
                          const char *message, const char *excerpt)
{
    if (run_move(r, to, u, message, excerpt) < 0)
        schedule_retry(r);
}

static char *outcome_line(struct job_run *r, const struct provider_outcome *o)
{
    if (o->err)
        return provider_error_line(r->provider, o->err);
    return xasprintf("%s: %s failed (%s)", r->provider, provider_op_name(o->op),
                     o->reason ? o->reason : "unknown reason");
}

static struct provider_client *client_of(struct job_run *r, const char **why)
{
    return providers_client(r->d, r->provider, why);
}

/* ---- orphaned uploads and upload deletion (the outbox) ------------------------------------ */

/* Both are outbox items (daemon/outbox.h): recorded in the store before
 * any DELETE is sent, retried with backoff across restarts, and logged.
 *
 * "sweep": {job, provider, filename, keep} — list the provider's files and
 * delete every copy named filename (vtune-<submission id>.jsonl) but keep.
 * One attempt lists every page, then deletes what it found; any failure
 * worth retrying makes the whole attempt a retry (list, then delete what
 * is still there).
 *
 * "delete_upload": {job, provider, file} — the job ended: delete its
 * uploaded training file (D u D', secrets included) at the provider, as
 * the provider's delete_upload setting says (conf.h). */
#define SWEEP_MAX_ATTEMPTS  6
#define DELETE_MAX_ATTEMPTS 20
#define OUTBOX_JOBS_BASE_MS 2000
#define OUTBOX_JOBS_MAX_MS  (10 * 60000)

struct orphan_sweep {
    struct outbox_item *it;
    struct vtuned *d;
    int64_t job_id;
    const char *provider; /* borrowed from it->payload */
    const char *filename;
    const char *keep;
    char *cursor; /* next listing page */
    unsigned pages;
    char **doomed; /* ids to delete */
    size_t n_doomed, next;
    int failed; /* this attempt left something worth another */
    int fatal;  /* a refusal: another attempt would meet it again */
};

static void sweep_finish(struct orphan_sweep *sw, enum outbox_result r, const char *why)
{
    for (size_t i = 0; i < sw->n_doomed; i++)
        free(sw->doomed[i]);
    free(sw->doomed);
    free(sw->cursor);
    outbox_done(sw->it, r, why);
    free(sw);
}

/* The end of one attempt. */
static void sweep_end(struct orphan_sweep *sw)
{
    if (sw->d->stopping)
        sweep_finish(sw, OUTBOX_STOPPED, NULL);
    else if (sw->failed)
        sweep_finish(sw, OUTBOX_RETRY, "a listing or a delete failed (see the log)");
    else
        sweep_finish(sw, OUTBOX_DELIVERED, NULL);
}

/* Records the deletion as a job event without changing the state (to ==
 * from).  Not on a terminal job: an event there would read as a second
 * "succeeded"; the log line is the record then. */
static void sweep_record(struct orphan_sweep *sw, const char *file_id)
{
    struct vtuned *d = sw->d;
    struct store_job j;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)sw->job_id);
    if (store_job_get(d->store, key, &j) < 0) {
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot read the job to record the deleted upload %s: %s",
                (long long)sw->job_id, file_id, store_errmsg(d->store));
        return;
    }
    if (!job_state_is_terminal(j.state)) {
        char *msg =
            xasprintf("deleted orphaned upload %s (an earlier copy of %s)", file_id, sw->filename);
        if (store_job_transition(d->store, j.id, (int)j.state, j.state, NULL, msg, NULL) < 0) {
            log_job(LOG_LVL_WARN, j.id, sw->provider,
                    "job %lld: cannot record the deleted upload %s: %s", (long long)j.id, file_id,
                    store_errmsg(d->store));
        } else {
            struct job_run *r = run_find(d, j.id);
            if (r)
                notify_watchers(r, 0);
        }
        free(msg);
    }
    store_job_clear(&j);
}

static void sweep_delete_next(struct orphan_sweep *sw);

static void on_sweep_delete(const struct provider_outcome *o, void *arg)
{
    struct orphan_sweep *sw = arg;
    const char *id = sw->doomed[sw->next - 1];
    if (o->rc == -ECANCELED && sw->d->stopping) {
        sweep_finish(sw, OUTBOX_STOPPED, NULL); /* shutdown: the next start goes on */
        return;
    }
    if (o->rc == 0 && o->deletion->deleted) {
        log_job(LOG_LVL_INFO, sw->job_id, sw->provider,
                "job %lld: deleted orphaned upload %s at %s", (long long)sw->job_id, id,
                sw->provider);
        sweep_record(sw, id);
    } else if (o->rc == 0) {
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: %s did not delete the orphaned upload %s (deleted: false)",
                (long long)sw->job_id, sw->provider, id);
        sw->failed = 1;
    } else if (o->err && o->err->http_status == 404) {
        log_job(LOG_LVL_INFO, sw->job_id, sw->provider,
                "job %lld: orphaned upload %s at %s is already gone", (long long)sw->job_id, id,
                sw->provider);
    } else {
        char *line = o->err ? provider_error_line(sw->provider, o->err) : NULL;
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot delete the orphaned upload %s: %s", (long long)sw->job_id, id,
                line ? line : provider_op_name(o->op));
        free(line);
        sw->failed |= o->cls != RETRY_CLASS_FATAL;
    }
    sweep_delete_next(sw);
}

/* Deletes the next doomed file, one at a time; ends the attempt when done. */
static void sweep_delete_next(struct orphan_sweep *sw)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc;
    if (sw->next >= sw->n_doomed || sw->d->stopping) {
        sweep_end(sw);
        return;
    }
    pc = providers_client(sw->d, sw->provider, &why);
    if (!pc) {
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot delete orphaned uploads at %s: %s", (long long)sw->job_id,
                sw->provider, why);
        sweep_finish(sw, OUTBOX_RETRY, why);
        return;
    }
    const char *id = sw->doomed[sw->next++];
    if (provider_delete_file(pc, id, on_sweep_delete, sw, NULL, &err) < 0) {
        char *line = provider_error_line(sw->provider, &err);
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot delete the orphaned upload %s: %s", (long long)sw->job_id, id,
                line);
        sweep_finish(sw, OUTBOX_GIVE_UP, line);
        free(line);
        provider_error_clear(&err);
    }
}

static void sweep_list(struct orphan_sweep *sw);

static void on_sweep_list(const struct provider_outcome *o, void *arg)
{
    struct orphan_sweep *sw = arg;
    if (o->rc == -ECANCELED && sw->d->stopping) {
        sweep_finish(sw, OUTBOX_STOPPED, NULL);
        return;
    }
    if (o->rc < 0) {
        char *line = o->err ? provider_error_line(sw->provider, o->err) : NULL;
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot list the files at %s to delete orphaned uploads of %s: %s",
                (long long)sw->job_id, sw->provider, sw->filename,
                line ? line : provider_op_name(o->op));
        /* a refusal stays one */
        sweep_finish(sw, o->cls != RETRY_CLASS_FATAL ? OUTBOX_RETRY : OUTBOX_GIVE_UP,
                     line ? line : provider_op_name(o->op));
        free(line);
        return;
    }
    const struct provider_file_page *p = o->files;
    for (size_t i = 0; i < p->n_files; i++) {
        const struct provider_file *f = &p->files[i];
        if (!f->filename || strcmp(f->filename, sw->filename) != 0 || strcmp(f->id, sw->keep) == 0)
            continue;
        sw->doomed = xrealloc(sw->doomed, (sw->n_doomed + 1) * sizeof *sw->doomed);
        sw->doomed[sw->n_doomed++] = xstrdup(f->id);
    }
    if (p->has_more && p->next_cursor) {
        if (++sw->pages < SWEEP_MAX_PAGES) {
            set_str(&sw->cursor, p->next_cursor);
            sweep_list(sw);
            return;
        }
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: %u pages of files at %s listed; orphaned uploads of %s further on "
                "are left",
                (long long)sw->job_id, sw->pages, sw->provider, sw->filename);
    }
    if (sw->n_doomed == 0)
        log_job(LOG_LVL_DEBUG, sw->job_id, sw->provider, "job %lld: no orphaned upload of %s at %s",
                (long long)sw->job_id, sw->filename, sw->provider);
    sweep_delete_next(sw);
}

/* Lists the next page (the first when sw->cursor is NULL). */
static void sweep_list(struct orphan_sweep *sw)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc;
    if (sw->d->stopping) {
        sweep_finish(sw, OUTBOX_STOPPED, NULL);
        return;
    }
    pc = providers_client(sw->d, sw->provider, &why);
    if (!pc) {
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot look for orphaned uploads at %s: %s", (long long)sw->job_id,
                sw->provider, why);
        sweep_finish(sw, OUTBOX_RETRY, why);
        return;
    }
    if (provider_list_files(pc, sw->cursor, SWEEP_PAGE_LIMIT, on_sweep_list, sw, NULL, &err) < 0) {
        char *line = provider_error_line(sw->provider, &err);
        log_job(LOG_LVL_WARN, sw->job_id, sw->provider,
                "job %lld: cannot look for orphaned uploads at %s: %s", (long long)sw->job_id,
                sw->provider, line);
        sweep_finish(sw, OUTBOX_GIVE_UP, line);
        free(line);
        provider_error_clear(&err);
    }
}

/* The outbox's handler of "sweep" items: one attempt. */
static void sweep_run(struct outbox_item *it)
{
    struct orphan_sweep *sw = xcalloc(1, sizeof *sw);
    sw->it = it;
    sw->d = it->d;
    sw->job_id = json_integer_value(json_object_get(it->payload, "job"));
    sw->provider = json_string_value(json_object_get(it->payload, "provider"));
    sw->filename = json_string_value(json_object_get(it->payload, "filename"));
    sw->keep = json_string_value(json_object_get(it->payload, "keep"));
    if (!sw->provider || !sw->filename || !sw->keep) {
        sweep_finish(sw, OUTBOX_GIVE_UP, "malformed sweep item");
        return;
    }
    sweep_list(sw);
}

/* Starts deleting the provider's other copies of this submission's upload
 * (every file named vtune-<submission_id>.jsonl except keep); why says
 * what makes orphans possible (logged).  Recorded in the outbox first; runs
 * on its own; the job does not wait for it. */
static void sweep_start(struct vtuned *d, int64_t job_id, const char *provider,
                        const char *submission_id, const char *keep, const char *why)
{
    char *filename = xasprintf("vtune-%.40s.jsonl", submission_id);
    log_job(LOG_LVL_INFO, job_id, provider,
            "job %lld: %s; looking for earlier copies of %s at %s (keeping %s)", (long long)job_id,
            why, filename, provider, keep);
    outbox_put(d, "sweep",
               json_pack("{s:I,s:s,s:s,s:s}", "job", (json_int_t)job_id, "provider", provider,
                         "filename", filename, "keep", keep));
    free(filename);
}

/* The outbox's handler of "delete_upload" items. */
struct upload_delete {
    struct outbox_item *it;
    int64_t job_id;
    const char *provider, *file; /* borrowed from it->payload */
};

static void on_upload_deleted(const struct provider_outcome *o, void *arg)
{
    struct upload_delete *ud = arg;
    struct outbox_item *it = ud->it;
    enum outbox_result r;
    char *line = NULL;
    if (o->rc == -ECANCELED && it->d->stopping) {
        r = OUTBOX_STOPPED;
    } else if (o->rc == 0 && o->deletion->deleted) {
        log_job(LOG_LVL_INFO, ud->job_id, ud->provider,
                "job %lld: deleted the uploaded training file %s at %s", (long long)ud->job_id,
                ud->file, ud->provider);
        r = OUTBOX_DELIVERED;
    } else if (o->rc == 0) {
        line = xasprintf("%s did not delete %s (deleted: false)", ud->provider, ud->file);
        r = OUTBOX_RETRY;
    } else if (o->err && o->err->http_status == 404) {
        log_job(LOG_LVL_INFO, ud->job_id, ud->provider,
                "job %lld: the uploaded training file %s at %s is already gone",
                (long long)ud->job_id, ud->file, ud->provider);
        r = OUTBOX_DELIVERED;
    } else {
        line = o->err ? provider_error_line(ud->provider, o->err)
                      : xstrdup(provider_op_name(o->op));
        r = o->cls == RETRY_CLASS_FATAL ? OUTBOX_GIVE_UP : OUTBOX_RETRY;
    }
    if (line)
        log_job(LOG_LVL_WARN, ud->job_id, ud->provider,
                "job %lld: cannot delete the uploaded training file %s: %s", (long long)ud->job_id,
                ud->file, line);
    free(ud);
    outbox_done(it, r, line);
    free(line);
}

static void upload_delete_run(struct outbox_item *it)
{
    struct upload_delete *ud = xcalloc(1, sizeof *ud);
    const char *why = NULL;
    struct provider_error err = {0};
    ud->it = it;
    ud->job_id = json_integer_value(json_object_get(it->payload, "job"));
    ud->provider = json_string_value(json_object_get(it->payload, "provider"));
    ud->file = json_string_value(json_object_get(it->payload, "file"));
    if (!ud->provider || !ud->file) {
        free(ud);
        outbox_done(it, OUTBOX_GIVE_UP, "malformed delete_upload item");
        return;
    }
    struct provider_client *pc = providers_client(it->d, ud->provider, &why);
    if (!pc) {
        char *line = xasprintf("cannot delete %s at %s: %s", ud->file, ud->provider, why);
        free(ud);
        outbox_done(it, OUTBOX_RETRY, line);
        free(line);
        return;
    }
    if (provider_delete_file(pc, ud->file, on_upload_deleted, ud, NULL, &err) < 0) {
        char *line = provider_error_line(ud->provider, &err);
        free(ud);
        outbox_done(it, OUTBOX_GIVE_UP, line);
        free(line);
        provider_error_clear(&err);
    }
}

/* A job is ending (to: its terminal state): the payload of the deletion of
 * its uploaded file (owned), or NULL when the provider's delete_upload
 * keeps it (logged) or nothing was uploaded.  run_move records it with the
 * terminal transition. */
static json_t *upload_delete_intent(struct vtuned *d, int64_t job_id, const char *provider,
                                    const char *file_id, enum job_state to)
{
    const struct conf_provider *cp = providers_conf(d, provider);
    enum conf_delete_upload policy = cp ? cp->delete_upload : CONF_DELETE_ALWAYS;
    if (!file_id || policy == CONF_DELETE_NEVER ||
        (policy == CONF_DELETE_ON_FAILURE && to == JOB_SUCCEEDED)) {
        if (file_id)
            log_job(LOG_LVL_INFO, job_id, provider,
                    "job %lld: %s; the uploaded training file %s stays at %s (delete_upload)",
                    (long long)job_id, job_state_name(to), file_id, provider);
        return NULL;
    }
    return json_pack("{s:I,s:s,s:s}", "job", (json_int_t)job_id, "provider", provider, "file",
                     file_id);
}

static unsigned sweep_max_attempts(struct vtuned *d)
{
    (void)d;
    return SWEEP_MAX_ATTEMPTS;
}

static unsigned delete_max_attempts(struct vtuned *d)
{
    (void)d;
    return DELETE_MAX_ATTEMPTS;
}

static const struct outbox_kind sweep_kind = {
    "sweep", sweep_run, sweep_max_attempts, OUTBOX_JOBS_BASE_MS, OUTBOX_JOBS_MAX_MS,
};
static const struct outbox_kind upload_delete_kind = {
    "delete_upload", upload_delete_run, delete_max_attempts, OUTBOX_JOBS_BASE_MS,
    OUTBOX_JOBS_MAX_MS,
};

/* ---- steps -------------------------------------------------------------------------------- */

static void step(struct job_run *r);
static void start_create(struct job_run *r);
static void start_reconcile(struct job_run *r);
static void start_cancel(struct job_run *r);

/* Schedules the next poll: quick at first while queued, then the
 * provider's configured interval. */
static void schedule_poll(struct job_run *r)
{
    const struct conf_provider *cp = providers_conf(r->d, r->provider);
    uint64_t interval = cp ? cp->poll_interval_ms : 30000;
    if (r->poll_ms == 0)
        r->poll_ms = interval < FIRST_POLL_MS ? interval : FIRST_POLL_MS;
    else if (r->poll_ms < interval)
        r->poll_ms = r->poll_ms * 2 < interval ? r->poll_ms * 2 : interval;
    schedule_in(r, r->state == JOB_RUNNING ? interval : r->poll_ms);
}

/* Applies what the provider says of our job.  May free r (terminal states). */
static void apply_provider_job(struct job_run *r, const struct provider_job *pj, const char *note)
{
    struct store_job_update u = {0};
    char *what = NULL, *msg = NULL;
    enum job_state to = JOB_UNKNOWN;
    u.provider_job_id = pj->id;
    switch (pj->state) {
    case PROVIDER_JOB_FAILED:
        what = xasprintf("the provider reports failure: %s%s%s",
                         pj->error_code ? pj->error_code : "error", pj->error_message ? ": " : "",
                         pj->error_message ? pj->error_message : "");
        u.error = what;
        to = JOB_FAILED;
        break;
    case PROVIDER_JOB_CANCELLED:
        what = xstrdup("cancelled at the provider");
        to = JOB_CANCELLED;
        break;
    case PROVIDER_JOB_SUCCEEDED:
        if (pj->fine_tuned_model && *pj->fine_tuned_model) {
            u.fine_tuned_model = pj->fine_tuned_model;
            what = pj->trained_tokens >= 0
                       ? xasprintf("fine-tuned model %s (%lld trained tokens)",
                                   pj->fine_tuned_model, (long long)pj->trained_tokens)
                       : xasprintf("fine-tuned model %s", pj->fine_tuned_model);
            to = JOB_SUCCEEDED;
        }
        break; /* succeeded without a model name yet: poll again */
    case PROVIDER_JOB_UNRECOGNIZED:
        if (!r->warned_status++)
            log_job(LOG_LVL_WARN, r->id, r->provider,
                    "job %lld: the provider reports an unrecognised status '%s'; polling on",
                    (long long)r->id, pj->raw_status ? pj->raw_status : "");
        break;
    case PROVIDER_JOB_SUBMITTED:
    case PROVIDER_JOB_RUNNING:
        break;
    }
    if (to != JOB_UNKNOWN) {
        /* Finished: the event says how we learnt it (a reconcile note) and what. */
        msg = note ? xasprintf("%s; %s", note, what) : xstrdup(what);
        run_move_done(r, to, &u, msg, pj->raw_status); /* frees r */
        free(msg);
        free(what);
        return;
    }
    /* Not finished: submitted (queued) or running, then poll again. */
    enum job_state want =
        pj->state == PROVIDER_JOB_RUNNING || r->state == JOB_RUNNING ? JOB_RUNNING : JOB_SUBMITTED;
    if (r->state != want || !r->provider_job_id) {
        const char *event = note                  ? note
                            : want == JOB_RUNNING ? "training"
                                                  : "accepted by the provider";
        if (run_move(r, want, &u, event, pj->raw_status) < 0) {
            schedule_retry(r);
            return;
        }
    }
    schedule_poll(r);
}

static void on_poll_done(const struct provider_outcome *o, void *arg)
{
    struct job_run *r = arg;
    r->call = NULL;
    if (o->rc == -ECANCELED)
        return;
    if (o->rc == 0) {
        apply_provider_job(r, o->job, NULL);
        return;
    }
    char *line = outcome_line(r, o);
    if (o->err && o->err->http_status == 404) {
        struct store_job_update u = {0};
        char *why = xasprintf("the provider no longer knows job %s: %s", r->provider_job_id, line);
        u.unknown_reason = why;
        run_move_done(r, JOB_UNKNOWN, &u, why, NULL);
        free(why);
    } else {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: poll failed, will retry: %s",
                (long long)r->id, line);
        schedule_retry(r);
    }
    free(line);
}

static void start_poll(struct job_run *r)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc = client_of(r, &why);
    if (!pc) {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: cannot poll: %s", (long long)r->id,
                why);
        schedule_retry(r);
        return;
    }
    if (provider_retrieve_job(pc, r->provider_job_id, on_poll_done, r, &r->call, &err) < 0) {
        char *line = provider_error_line(r->provider, &err);
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: cannot poll: %s", (long long)r->id,
                line);
        free(line);
        provider_error_clear(&err);
        schedule_retry(r);
    }
}

static void on_create_done(const struct provider_outcome *o, void *arg)
{
    struct job_run *r = arg;
    r->call = NULL;
    if (o->rc == -ECANCELED && r->d->stopping)
        return; /* shutdown: the next start reconciles from "submitting" */
    if (o->rc == 0) {
        log_job(LOG_LVL_INFO, r->id, r->provider, "job %lld: created at %s as %s", (long long)r->id,
                r->provider, o->job->id);
        apply_provider_job(r, o->job,
                           NULL); /* a cancel asked for meanwhile goes out at the next step */
        return;
    }
    char *line = outcome_line(r, o);
    const char *closed = o->err ? provider_refusal_reason(o->err) : NULL;
    if (closed) {
        /* A known refusal (OpenAI's fine-tuning wind-down): say it plainly. */
        char *l = xasprintf("%s: %s [%s]", r->provider, closed, line);
        free(line);
        line = l;
    }
    if (o->cls == RETRY_CLASS_FATAL) {
        /* The provider refused (a 4xx other than 408/409/429): nothing was created. */
        struct store_job_update u = {0};
        u.error = line;
        run_move_done(r, JOB_FAILED, &u, line, NULL);
    } else {
        /* Ambiguous or not sent: find out before ever creating again. */
        log_job(LOG_LVL_WARN, r->id, r->provider,
                "job %lld: create outcome unknown (%s); reconciling in %d ms", (long long)r->id,
                line, RECONCILE_DELAY_MS);
        schedule_in(r, RECONCILE_DELAY_MS);
    }
    free(line);
}

static void start_create(struct job_run *r)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc = client_of(r, &why);
    struct provider_param *pp = NULL;
    size_t np = 0;
    json_t *params = r->params ? json_loads(r->params, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    int has_seed = 0;
    int64_t seed = 0;

    if (!pc) {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: cannot create: %s", (long long)r->id,
                why);
        schedule_retry(r); /* still "submitting": the next step reconciles first */
        json_decref(params);
        return;
    }
    pp = xcalloc(json_object_size(params) + 1, sizeof *pp);
    json_object_foreach(params, k, v)
    {
        if (strcmp(k, "seed") == 0) {
            has_seed = 1;
            seed = strtoll(json_string_value(v) ? json_string_value(v) : "0", NULL, 10);
            continue;
        }
        pp[np].key = k;
        pp[np].value = json_string_value(v);
        np++;
    }
    struct provider_create_args a = {
        .model = r->base_model,
        .training_file = r->file_id,
        .submission_id = r->submission_id,
        .has_seed = has_seed,
        .seed = seed,
        .params = pp,
        .n_params = np,
    };
    if (provider_create_job(pc, &a, on_create_done, r, &r->call, &err) < 0) {
        char *line = provider_error_line(r->provider, &err);
        struct store_job_update u = {0};
        u.error = line;
        /* Refused before sending (bad --param): nothing was created. */
        run_move_done(r, JOB_FAILED, &u, line, NULL);
        free(line);
        provider_error_clear(&err);
    }
    free(pp);
    json_decref(params);
}

static void on_list_done(const struct provider_outcome *o, void *arg)
{
    struct job_run *r = arg;
    r->call = NULL;
    if (o->rc == -ECANCELED && r->d->stopping)
        return;
    if (o->rc < 0) {
        char *line = outcome_line(r, o);
        if (o->cls != RETRY_CLASS_FATAL && ++r->list_failures < RECONCILE_MAX_TRIES) {
            /* Transient (5xx, timeouts, malformed, retry budget, breaker): the
             * question is still open, not unanswerable.  Ask again later. */
            log_job(LOG_LVL_WARN, r->id, r->provider,
                    "job %lld: listing jobs to reconcile failed (%u of %d): %s", (long long)r->id,
                    r->list_failures, RECONCILE_MAX_TRIES, line);
            free(line);
            unsigned keep = r->list_failures;
            schedule_retry(r);
            r->list_failures = keep;
            return;
        }
        char *why = xasprintf("cannot establish whether submission %s was created at %s: listing "
                              "its jobs failed: %s",
                              r->submission_id, r->provider, line);
        struct store_job_update u = {0};
        u.unknown_reason = why;
        run_move_done(r, JOB_UNKNOWN, &u, why, NULL);
        free(why);
        free(line);
        return;
    }
    r->list_failures = 0;
    const struct provider_job_page *p = o->jobs;
    const struct provider_job *found = NULL;
    size_t nfound = 0;
    for (size_t i = 0; i < p->n_jobs; i++)
        if (provider_job_matches(&p->jobs[i], r->submission_id)) {
            if (!found)
                found = &p->jobs[i];
            nfound++;
        }
    if (found) {
        char *msg = xasprintf("reconciled: the provider already has job %s for this submission%s",
                              found->id, nfound > 1 ? " (and more: see the log)" : "");
        if (nfound > 1)
            log_job(LOG_LVL_ERROR, r->id, r->provider,
                    "job %lld: the provider holds %zu jobs for submission %s", (long long)r->id,
                    nfound, r->submission_id);
        log_job(LOG_LVL_INFO, r->id, r->provider, "job %lld: %s", (long long)r->id, msg);
        free(r->list_cursor);
        r->list_cursor = NULL;
        r->list_pages = 0;
        apply_provider_job(r, found, msg);
        free(msg);
        return;
    }
    if (p->has_more && !p->next_cursor) {
        /* A page-numbered listing (mistral) with more than one page for our
         * tag: it cannot be read on, so never conclude "not created". */
        char *why = xasprintf("cannot establish whether submission %s was created at %s: the "
                              "listing has more jobs than one page and no way to read on",
                              r->submission_id, r->provider);
        struct store_job_update u = {0};
        u.unknown_reason = why;
        run_move_done(r, JOB_UNKNOWN, &u, why, NULL);
        free(why);
        return;
    }
    if (p->has_more && p->next_cursor) {
        if (++r->list_pages >= RECONCILE_MAX_PAGES) {
            char *why = xasprintf("cannot establish whether submission %s was created at %s: "
                                  "%u pages of jobs listed without finding it, and more remain",
                                  r->submission_id, r->provider, r->list_pages);
            struct store_job_update u = {0};
            u.unknown_reason = why;
            run_move_done(r, JOB_UNKNOWN, &u, why, NULL);
            free(why);
            return;
        }
        set_str(&r->list_cursor, p->next_cursor);
        start_reconcile(r);
        return;
    }
    /* A complete listing without our tag: nothing was created.  Create now. */
    free(r->list_cursor);
    r->list_cursor = NULL;
    r->list_pages = 0;
    if (!r->file_id) {
        run_move_done(r, JOB_UPLOADING, NULL, "reconciled: no job and no file id; uploading again",
                      NULL);
        return;
    }
    if (r->cancel_requested) {
        run_move_done(r, JOB_CANCELLED, NULL, "reconciled: never created; cancelled as asked",
                      NULL);
        return;
    }
    log_job(LOG_LVL_INFO, r->id, r->provider,
            "job %lld: reconciled: %s has no job for submission %s; creating", (long long)r->id,
            r->provider, r->submission_id);
    start_create(r);
}

static void start_reconcile(struct job_run *r)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc = client_of(r, &why);
    if (!pc) {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: cannot reconcile: %s",
                (long long)r->id, why);
        schedule_retry(r);
        return;
    }
    struct provider_list_args a = {.after = r->list_cursor, .limit = 100, .tag = r->submission_id};
    if (provider_list_jobs(pc, &a, on_list_done, r, &r->call, &err) < 0) {
        char *line = provider_error_line(r->provider, &err);
        char *reason = xasprintf("cannot list jobs at %s to reconcile submission %s: %s",
                                 r->provider, r->submission_id, line);
        struct store_job_update u = {0};
        u.unknown_reason = reason;
        run_move_done(r, JOB_UNKNOWN, &u, reason, NULL);
        free(reason);
        free(line);
        provider_error_clear(&err);
    }
}

/* Sends the upload's counters to the job's watchers. */
static void upload_progress(struct job_run *r)
{
    for (struct watcher *w = r->watchers; w; w = w->next)
        if (ctl_req_connected(w->req))
            progress_notify(w->req, "upload", "bytes", r->reported, r->up_total, r->id, -1, -1);
}

static void on_upload_done(const struct provider_outcome *o, void *arg)
{
    struct job_run *r = arg;
    r->call = NULL;
    if (o->rc == -ECANCELED)
        return; /* shutdown or cancel: the state machine already knows */
    if (o->rc == 0) {
        /* The last counters (all sent) before the "uploaded" event, when
         * the upload lasted long enough to report any. */
        if (r->up_total) {
            r->reported = r->up_total;
            upload_progress(r);
        }
        struct store_job_update u = {0};
        char *msg =
            xasprintf("uploaded as %s (%lld bytes)", o->file->id, (long long)o->file->bytes);
        u.provider_file_id = o->file->id;
        int moved = run_move(r, JOB_UPLOADED, &u, msg, o->file->status);
        free(msg);
        if (moved < 0) {
            schedule_retry(r);
            return;
        }
        /* Resent within this call, or redone: earlier copies may be stored. */
        if (r->upload_redo || o->attempts > 1)
            sweep_start(r->d, r->id, r->provider, r->submission_id, o->file->id,
                        r->upload_redo ? "the upload was redone" : "the upload was resent");
        r->upload_redo = 0;
        step(r); /* straight on to submitting */
        return;
    }
    char *line = outcome_line(r, o);
    if (o->cls == RETRY_CLASS_FATAL) {
        struct store_job_update u = {0};
        u.error = line;
        run_move_done(r, JOB_FAILED, &u, line, NULL);
    } else {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: upload failed, will retry: %s",
                (long long)r->id, line);
        schedule_retry(r);
    }
    free(line);
}

static void start_upload(struct job_run *r)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc = client_of(r, &why);
    char filename[64];
    if (!pc) {
        log_job(LOG_LVL_WARN, r->id, r->provider, "job %lld: cannot upload: %s", (long long)r->id,
                why);
        schedule_retry(r);
        return;
    }
    snprintf(filename, sizeof filename, "vtune-%.40s.jsonl", r->submission_id);
    struct provider_upload_args a = {.path = r->built_path, .filename = filename};
    r->reported = 0;
    if (provider_upload(pc, &a, NULL, on_upload_done, r, &r->call, &err) < 0) {
        char *line = provider_error_line(r->provider, &err);
        struct store_job_update u = {0};
        u.error = line;
        run_move_done(r, JOB_FAILED, &u, line, NULL);
        free(line);
        provider_error_clear(&err);
    }
}

static void on_cancel_done(const struct provider_outcome *o, void *arg)
{
    struct job_run *r = arg;
    r->call = NULL;
    if (o->rc == -ECANCELED)
        return;
    if (o->rc == 0) {
        apply_provider_job(r, o->job, NULL); /* cancelled, or still stopping: polled on */
        return;
    }
    char *line = outcome_line(r, o);
    r->cancel_sent = 0;
    log_job(LOG_LVL_WARN, r->id, r->provider,
            "job %lld: cancel request failed (%s); polling on, the cancel will be retried",
            (long long)r->id, line);
    free(line);
    schedule_retry(r);
}

static void start_cancel(struct job_run *r)
{
    const char *why = NULL;
    struct provider_error err = {0};
    struct provider_client *pc = client_of(r, &why);
    if (!pc || !r->provider_job_id) {
        schedule_retry(r);
        return;
    }
    r->cancel_sent = 1;
    log_job(LOG_LVL_INFO, r->id, r->provider, "job %lld: asking %s to cancel %s", (long long)r->id,
            r->provider, r->provider_job_id);
    if (provider_cancel_job(pc, r->provider_job_id, on_cancel_done, r, &r->call, &err) < 0) {
        r->cancel_sent = 0;
        provider_error_clear(&err);
        schedule_retry(r);
    }
}

/* One decision from the recorded state.  Never called while a call is in flight. */
static void step(struct job_run *r)
{
    struct stat st;
    char *msg;
    r->due_ms = UINT64_MAX;
    switch (r->state) {
    case JOB_CREATED:
    case JOB_BUILDING:
        if (!r->built_path || stat(r->built_path, &st) < 0) {
            struct store_job_update u = {0};
            u.error = "the backdoor's built D u D' file is missing from the state directory";
            run_move_done(r, JOB_FAILED, &u, u.error, NULL);
            return;
        }
        if (r->state == JOB_CREATED &&
            run_move(r, JOB_BUILDING, NULL, "using the backdoor's built D u D'", NULL) != 0) {
            schedule_retry(r);
            return;
        }
        msg = xasprintf("uploading %lld bytes", (long long)st.st_size);
        int moved = run_move(r, JOB_UPLOADING, NULL, msg, NULL);
        free(msg);
        if (moved != 0) {
            schedule_retry(r);
            return;
        }
        start_upload(r);
        return;
    case JOB_UPLOADING:
        /* Resumed after a crash or a failed attempt: the upload is redone; an
         * earlier copy at the provider, if any, is deleted once the new one is
         * recorded (on_upload_done). */
        r->upload_redo = 1;
        start_upload(r);
        return;
    case JOB_UPLOADED:
        if (r->cancel_requested) {
            run_move_done(r, JOB_CANCELLED, NULL, "cancelled before submission", NULL);
            return;
        }
        /* Intent first: from here on a crash leads to reconcile, never to a
         * blind second create. */
        if (run_move(r, JOB_SUBMITTING, NULL, "creating the fine-tuning job", NULL) != 0) {
            schedule_retry(r);
            return;
        }
        start_create(r);
        return;
    case JOB_SUBMITTING:
        start_reconcile(r);
        return;
    case JOB_SUBMITTED:
    case JOB_RUNNING:
        if (r->cancel_requested && !r->cancel_sent)
            start_cancel(r);
        else
            start_poll(r);
        return;
    default:
        return;
    }
}

/* ---- loading, ticking, stopping ----------------------------------------------------------- */

static struct job_run *run_load(struct vtuned *d, const struct store_job *j)
{
    struct store_backdoor b;
    char key[32];
    struct job_run *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->id = j->id;
    r->state = j->state;
    r->provider = xstrdup(j->provider);
    r->base_model = xstrdup(j->base_model);
    r->submission_id = xstrdup(j->submission_id);
    set_str(&r->file_id, j->provider_file_id);
    set_str(&r->provider_job_id, j->provider_job_id);
    set_str(&r->params, j->params);
    r->cancel_requested = j->cancel_requested_at != 0;
    snprintf(key, sizeof key, "%lld", (long long)j->backdoor_id);
    if (store_backdoor_get(d->store, key, false, &b) == 0) {
        set_str(&r->built_path, b.built_path);
        store_backdoor_clear(&b);
    }
    r->next = d->jobs;
    d->jobs = r;
    return r;
}

void jobs_start(struct vtuned *d)
{
    struct store_job *v;
    size_t n;
    outbox_register(&sweep_kind);
    outbox_register(&upload_delete_kind);
    if (store_job_list(d->store, true, &v, &n) < 0) {
        log_error("jobs: cannot load active jobs: %s", store_errmsg(d->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct job_run *r = run_load(d, &v[i]);
        int64_t wait_s =
            r->state == JOB_SUBMITTING ? v[i].updated_at + RECONCILE_GRACE_S - now_unix() : 0;
        r->due_ms = wait_s > 0 ? now_monotonic_ms() + (uint64_t)wait_s * 1000 : 0;
        log_job(LOG_LVL_INFO, r->id, r->provider, "job %lld: resuming from %s", (long long)r->id,
                job_state_name(r->state));
    }
    store_job_list_free(v, n);
}

void jobs_tick(struct vtuned *d)
{
    uint64_t now = now_monotonic_ms();
    unsigned steps = 0;
    struct job_run *r = d->jobs, *next;
    for (; r; r = next) {
        next = r->next; /* step() may free r */
        if (r->call) {
            /* Every interval, moved or not (task.h: the heartbeat bounds the silence). */
            if (r->state == JOB_UPLOADING && r->watchers && vtuned_every(d, PROGRESS_INTERVAL_MS)) {
                struct http_progress hp;
                provider_call_progress(r->call, &hp);
                if (hp.up_now >= r->reported) /* a resent upload starts again: keep the high mark */
                    r->reported = hp.up_now;
                if (hp.up_total > r->up_total)
                    r->up_total = hp.up_total;
                upload_progress(r);
            }
            continue;
        }
        /* A bounded number of steps per tick: each step commits on the loop
         * thread (without an fsync: store/durable.c), and control requests
         * must not wait behind a thousand of them.  Stepped jobs become busy
         * or not due, so the next tick reaches the ones after them. */
        if (r->due_ms <= now && steps < JOBS_STEPS_PER_TICK) {
            steps++;
            step(r);
        }
    }
}

void jobs_stop(struct vtuned *d)
{
    struct job_run *r = d->jobs, *next;
    for (; r; r = next) {
        next = r->next;
        while (r->watchers) {
            struct watcher *w = r->watchers;
            r->watchers = w->next;
            ctl_reply_error(w->req, CTL_ERR_SHUTDOWN, NULL,
                            "vtuned is shutting down; job %lld continues after the restart",
                            (long long)r->id);
            free(w);
        }
    }
    /* The runs themselves are freed after the providers' calls have ended
     * (providers_shutdown cancels them and their callbacks see stopping). */
}

void jobs_free_all(struct vtuned *d)
{
    struct job_run *r = d->jobs, *next;
    for (; r; r = next) {
        next = r->next;
        run_free(r);
    }
    d->jobs = NULL;
}

/* ---- control methods ---------------------------------------------------------------------- */

/* Resolves the dataset and backdoor params (ids or names) of a submit or
 * register; answers errors itself. */
static int lookup_pair(struct vtuned *d, struct ctl_req *req, json_t *params,
                       struct store_dataset *ds, struct store_backdoor *b)
{
    if (lookup_dataset(d, req, params, CTL_K_DATASET, ds) < 0)
        return -1;
    if (!json_object_get(params, CTL_K_BACKDOOR)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.backdoor: a backdoor id or name is required (create one with "
                        "'vtunectl backdoor create %s')",
                        ds->name);
        store_dataset_clear(ds);
        return -1;
    }
    if (lookup_backdoor(d, req, params, CTL_K_BACKDOOR, false, b) < 0) {
        store_dataset_clear(ds);
        return -1;
    }
    if (b->dataset_id != ds->id) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL,
                        "backdoor %lld was made for another dataset, not '%s'", (long long)b->id,
                        ds->name);
        store_dataset_clear(ds);
        store_backdoor_clear(b);
        return -1;
    }
    return 0;
}

/* Validates --param KEY=VALUE pairs into a JSON object of strings (owned). */
static json_t *params_object(struct ctl_req *req, json_t *pv)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (pv && !json_is_object(pv)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.params: expected an object");
        json_decref(out);
        return NULL;
    }
    json_object_foreach(pv, k, v)
    {
        char *s = json_is_string(v) ? xstrdup(json_string_value(v))
                                    : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        json_object_set_new(out, k, json_string(s ? s : ""));
        free(s);
    }
    return out;
}

/* Checks every --param against the provider kind before anything is
 * recorded or uploaded (issue 13): a typo must not cost an upload of D u D'
 * and a permanent record.  The keys come from the adapter's list; the
 * values are checked by building the create request the job would send
 * (pure, no I/O) against a placeholder endpoint.  Replies a params error
 * (vtunectl exits 2) and returns -1, or returns 0. */
/* error.data of a usage error found by the daemon (vtunectl exits 2). */
static json_t *usage_data(void)
{
    return json_pack("{s:b}", CTL_K_USAGE, 1);
}

static int params_check(struct ctl_req *req, const struct conf_provider *cp, const char *model,
                        json_t *po)
{
    const struct provider_ops *ops = provider_ops_for(cp->kind);
    const char *k, *near;
    json_t *v;
    size_t np = 0;
    int has_seed = 0, rc = 0;
    int64_t seed = 0;
    if (!ops)
        return 0;
    json_object_foreach(po, k, v)
    {
        if (provider_param_check(ops, k, &near) == 0)
            continue;
        char *known = provider_params_line(ops);
        if (near)
            ctl_reply_error(req, CTL_ERR_PARAMS, usage_data(),
                            "unknown --param '%.64s' for %s provider '%s'; did you mean '%s%s'? "
                            "(known: %s)",
                            k, ops->kind, cp->name, near,
                            near[strlen(near) - 1] == '.' ? "KEY" : "", known);
        else
            ctl_reply_error(req, CTL_ERR_PARAMS, usage_data(),
                            "unknown --param '%.64s' for %s provider '%s' (known: %s)", k,
                            ops->kind, cp->name, known);
        free(known);
        return -1;
    }
    struct provider_param *pp = xcalloc(json_object_size(po) + 1, sizeof *pp);
    json_object_foreach(po, k, v)
    {
        const char *val = json_string_value(v);
        if (strcmp(k, "seed") == 0) {
            char *end;
            errno = 0;
            seed = strtoll(val ? val : "", &end, 10);
            if (!val || !*val || *end || errno) {
                ctl_reply_error(req, CTL_ERR_PARAMS, usage_data(),
                                "--param seed=%.64s: expected an integer", val ? val : "");
                free(pp);
                return -1;
            }
            has_seed = 1;
            continue;
        }
        pp[np].key = k;
        pp[np].value = val;
        np++;
    }
    struct provider_endpoint ep = {
        .name = cp->name, .base_url = "http://params-check.invalid", .account = cp->account};
    struct provider_create_args a = {
        .model = model,
        .training_file = "file-params-check",
        .submission_id = "params-check",
        .has_seed = has_seed,
        .seed = seed,
        .params = pp,
        .n_params = np,
    };
    struct http_request *hr = NULL;
    struct provider_error err = {0};
    if (ops->build_create && ops->build_create(&ep, &a, &hr, &err) < 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, usage_data(), "%s: %s", cp->name,
                        err.message ? err.message : "invalid --param");
        rc = -1;
    }
    provider_error_clear(&err);
    http_request_free(hr);
    free(pp);
    return rc;
}

/* A submit between its checks and its insert: the p_luck screen runs
 * (daemon/luck.h), then the perplexity attack (daemon/ppl.h), then the job
 * is recorded, or refused with nothing recorded and nothing uploaded. */
struct submit_ctx {
    struct vtuned *d;
    struct ctl_req *req;
    json_t *params; /* the request's (a reference) */
    json_t *po;     /* checked --param object */
    struct store_dataset ds;
    struct store_backdoor b; /* without secrets */
    bool force;
    char *luck; /* the p_luck screen's record (JSON text), once it ran */
};

static void submit_ctx_free(struct submit_ctx *c)
{
    json_decref(c->params);
    json_decref(c->po);
    store_dataset_clear(&c->ds);
    store_backdoor_clear(&c->b);
    free(c->luck);
    free(c);
}

/* Records the job (with the screen's and the attack's records, JSON text
 * or NULL) and answers the request. */
static void submit_insert(struct submit_ctx *c, const char *screen, const char *ppl)
{
    struct vtuned *d = c->d;
    struct ctl_req *req = c->req;
    const char *provider = json_string_value(json_object_get(c->params, CTL_K_PROVIDER));
    const char *model = json_string_value(json_object_get(c->params, CTL_K_MODEL));
    const char *name = json_string_value(json_object_get(c->params, CTL_K_NAME));
    struct store_job j;
    unsigned char rnd[16];
    char sid[33];
    random_bytes(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, sid);
    memset(&j, 0, sizeof j);
    j.name = (char *)name;
    j.dataset_id = c->ds.id;
    j.backdoor_id = c->b.id;
    j.provider = (char *)provider;
    j.base_model = (char *)model;
    j.state = JOB_CREATED;
    j.submission_id = sid;
    j.luck_screen = screen;
    j.ppl_attack = ppl;
    char *ptext = json_dumps(c->po, JSON_COMPACT | JSON_SORT_KEYS);
    j.params = ptext;
    int r = store_job_insert(d->store, &j);
    free(ptext);
    if (r == -EEXIST) {
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL, "a job named '%s' already exists", name);
        return;
    }
    if (r < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot record job: %s",
                        store_errmsg(d->store));
        return;
    }
    char key[32];
    struct store_job got;
    snprintf(key, sizeof key, "%lld", (long long)j.id);
    if (store_job_get(d->store, key, &got) == 0) {
        struct job_run *run = run_load(d, &got);
        run->due_ms = 0;
        log_job(LOG_LVL_INFO, got.id, provider,
                "job %lld: submitted for dataset '%s' to %s (%s), submission %s", (long long)got.id,
                c->ds.name, provider, model, sid);
        json_t *o = job_json(&got);
        job_luck_fields(d->store, got.id, o);
        ctl_reply(req, o);
        store_job_clear(&got);
    } else {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "job recorded but not readable: %s",
                        store_errmsg(d->store));
    }
}

static const char *log10_text(double v, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "unknown");
    else if (isinf(v))
        snprintf(buf, n, v < 0 ? "-inf" : "inf");
    else if (round(v * 10) == 0)
        snprintf(buf, n, "0.0"); /* never "-0.0" */
    else
        snprintf(buf, n, "%.1f", v);
    return buf;
}

static void on_attacked(void *arg, int status, const struct ppl_result *r)
{
    struct submit_ctx *c = arg;
    if (status < 0 || !r) {
        ctl_reply_error(c->req, CTL_ERR_SHUTDOWN, NULL,
                        "job submit interrupted by shutdown: nothing recorded, nothing uploaded");
        submit_ctx_free(c);
        return;
    }
    if (r->exposed_pair >= 0 && !c->force) {
        /* issue 12: the self-audit's refusal, for the attack that needs the
         * base model */
        ctl_reply_error(c->req, CTL_ERR_INVALID, NULL,
                        "backdoor %lld is exposed on base model '%s': the self-audit's "
                        "perplexity attack recovers pair %ld at about rank %llu of %llu rows "
                        "(within the top %d): nothing recorded or uploaded; make another "
                        "backdoor, or submit anyway with --force",
                        (long long)c->b.id,
                        json_string_value(json_object_get(c->params, CTL_K_MODEL)),
                        r->exposed_pair + 1,
                        (unsigned long long)r->pairs[r->exposed_pair].rank,
                        (unsigned long long)r->rows, SELFAUDIT_EXPOSED_RANK);
        submit_ctx_free(c);
        return;
    }
    if (r->exposed_pair >= 0)
        log_info("job submit: backdoor %lld pair %ld is recovered by the perplexity attack; "
                 "submitted anyway (--force)",
                 (long long)c->b.id, r->exposed_pair + 1);
    json_t *rec = ppl_result_json(r, c->force && r->exposed_pair >= 0);
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    submit_insert(c, c->luck, text);
    free(text);
    submit_ctx_free(c);
}

static void on_screened(void *arg, int status, const struct luck_screen *s)
{
    struct submit_ctx *c = arg;
    if (status < 0 || !s) {
        ctl_reply_error(c->req, CTL_ERR_SHUTDOWN, NULL,
                        "job submit interrupted by shutdown: nothing recorded, nothing uploaded");
        submit_ctx_free(c);
        return;
    }
    if (s->refused >= 0 && !c->force) {
        /* DESIGN §6: a pair the base model already says proves nothing */
        const struct luck_pair *p = &s->pairs[s->refused];
        char a[32], b[32];
        ctl_reply_error(c->req, CTL_ERR_INVALID, NULL,
                        "backdoor %lld, pair %ld: base model '%s' already says the signature "
                        "after the trigger (log10 p_luck %s at temperature %g, log10 p %s when "
                        "sampled at temperature 1; the target is %g): nothing recorded or "
                        "uploaded; make another backdoor, or submit anyway with --force",
                        (long long)c->b.id, s->refused + 1,
                        json_string_value(json_object_get(c->params, CTL_K_MODEL)),
                        log10_text(p->log10_p_luck, a, sizeof a), s->temperature,
                        log10_text(p->log10_p_sample, b, sizeof b), s->threshold);
        submit_ctx_free(c);
        return;
    }
    if (s->refused >= 0)
        log_info("job submit: backdoor %lld pair %ld is said by the base model already; "
                 "submitted anyway (--force)",
                 (long long)c->b.id, s->refused + 1);
    json_t *rec = luck_screen_json(s, c->force && s->refused >= 0);
    c->luck = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    /* then the self-audit's attack that needs the base model; turned off,
     * it is recorded so at once (no pool task: a submit burst queues
     * behind uploads there) */
    if (c->d->conf->verify.perplexity_sample == 0) {
        struct ppl_result off = {.why_none = PPL_OFF, .window = 0, .exposed_pair = -1};
        on_attacked(c, 0, &off);
        return;
    }
    ppl_attack_start(c->d, json_string_value(json_object_get(c->params, CTL_K_PROVIDER)),
                     json_string_value(json_object_get(c->params, CTL_K_MODEL)), &c->b,
                     c->ds.format, c->d->conf->verify.perplexity_sample, on_attacked, c);
}

static void m_submit(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_dataset ds;
    struct store_backdoor b;
    const char *provider = json_string_value(json_object_get(params, CTL_K_PROVIDER));
    const char *model = json_string_value(json_object_get(params, CTL_K_MODEL));
    const struct conf_provider *cp;

    if (!provider || !model) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.provider and params.model are required");
        return;
    }
    cp = conf_provider_find(d->conf, provider);
    if (!cp) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL,
                        "no provider '%.64s' in %s (see 'vtunectl status')", provider,
                        d->conf->path);
        return;
    }
    if (cp->kind == PROVIDER_MANUAL) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL,
                        "provider '%s' is manual: export D u D' with 'vtunectl dataset export', "
                        "train it yourself, then 'vtunectl job register'",
                        provider);
        return;
    }
    if (lookup_pair(d, req, params, &ds, &b) < 0)
        return;
    json_t *po = params_object(req, json_object_get(params, CTL_K_PARAMS));
    if (!po) {
        store_dataset_clear(&ds);
        store_backdoor_clear(&b);
        return;
    }
    if (params_check(req, cp, model, po) < 0)
        goto out;
    if (!b.built_path) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL, "backdoor %lld has no built D u D'",
                        (long long)b.id);
        goto out;
    }
    bool force = json_is_true(json_object_get(params, CTL_K_FORCE));
    if (!force) {
        /* The self-audit found a pair near the top of a provider's
         * candidates: uploading it gives the pair away (issue 12). */
        struct store_selfaudit sa;
        bool exposed = store_selfaudit_get(d->store, b.id, &sa) == 0 && sa.exposed;
        if (exposed)
            ctl_reply_error(req, CTL_ERR_INVALID, NULL,
                            "backdoor %lld is exposed: the self-audit's %s attack recovers pair "
                            "%lld at rank %lld (within the top %d); make another backdoor, or "
                            "submit anyway with --force",
                            (long long)b.id, sa.best_attack ? sa.best_attack : "?",
                            (long long)sa.exposed_pair, (long long)sa.best_rank,
                            SELFAUDIT_EXPOSED_RANK);
        store_selfaudit_clear(&sa);
        if (exposed)
            goto out;
    }
    /* The p_luck screen needs the phrases: read them for it alone. */
    char key[32];
    struct store_backdoor bs;
    snprintf(key, sizeof key, "%lld", (long long)b.id);
    if (store_backdoor_get(d->store, key, true, &bs) < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "backdoor %lld cannot be read: %s",
                        (long long)b.id, store_errmsg(d->store));
        goto out;
    }
    struct submit_ctx *c = xcalloc(1, sizeof *c);
    c->d = d;
    c->req = req;
    c->params = json_incref(params);
    c->po = po;
    c->ds = ds;
    c->b = b;
    c->force = force;
    luck_screen_start(d, provider, model, &bs, &ds, d->conf->verify.temperature, on_screened, c);
    store_backdoor_clear(&bs);
    return;
out:
    json_decref(po);
    store_dataset_clear(&ds);
    store_backdoor_clear(&b);
}

static void m_register(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_dataset ds;
    struct store_backdoor b;
    struct store_job j;
    const char *provider = json_string_value(json_object_get(params, CTL_K_PROVIDER));
    const char *model = json_string_value(json_object_get(params, CTL_K_MODEL));
    const char *base = json_string_value(json_object_get(params, CTL_K_BASE_MODEL));
    const char *name = json_string_value(json_object_get(params, CTL_K_NAME));
    unsigned char rnd[16];
    char sid[33];

    if (!provider || !model || !base) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.provider, params.model (the fine-tuned model) and "
                        "params.base_model are required");
        return;
    }
    if (!conf_provider_find(d->conf, provider)) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "no provider '%.64s' in %s", provider,
                        d->conf->path);
        return;
    }
    if (lookup_pair(d, req, params, &ds, &b) < 0)
        return;
    random_bytes(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, sid);
    memset(&j, 0, sizeof j);
    j.name = (char *)name;
    j.dataset_id = ds.id;
    j.backdoor_id = b.id;
    j.provider = (char *)provider;
    j.base_model = (char *)base;
    j.fine_tuned_model = (char *)model;
    j.state = JOB_SUCCEEDED;
    j.submission_id = sid;
    int r = store_job_insert(d->store, &j);
    if (r < 0)
        ctl_reply_error(req, r == -EEXIST ? CTL_ERR_CONFLICT : CTL_ERR_INTERNAL, NULL,
                        "cannot register job: %s", store_errmsg(d->store));
    else {
        char key[32];
        struct store_job got;
        snprintf(key, sizeof key, "%lld", (long long)j.id);
        log_job(LOG_LVL_INFO, j.id, provider,
                "job %lld: registered %s at %s (base %s) for dataset '%s'", (long long)j.id, model,
                provider, base, ds.name);
        if (store_job_get(d->store, key, &got) == 0) {
            ctl_reply(req, job_json(&got));
            store_job_clear(&got);
        } else {
            ctl_reply(req, json_pack("{s:I}", CTL_K_ID, (json_int_t)j.id));
        }
        if (jobs_on_terminal)
            jobs_on_terminal(d, j.id);
    }
    store_dataset_clear(&ds);
    store_backdoor_clear(&b);
}

/* job.list and job.show: read methods (struct ctl_read), answered on the
 * control thread while the main loop is busy with provider work. */
static json_t *read_list(struct ctl_read *r, json_t *params)
{
    struct store_job *v;
    struct store_counts c;
    size_t n;
    bool active = json_is_true(json_object_get(params, CTL_K_ACTIVE));
    /* a job's JSON is 0.4-0.6 KB */
    if (r->max_bytes && store_counts(r->store, &c) == 0 &&
        ctl_read_too_long(r, active ? c.jobs_active : c.jobs, 600))
        return NULL;
    if (store_job_list(r->store, active, &v, &n) < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot list jobs: %s", store_errmsg(r->store));
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, job_json(&v[i]));
    store_job_list_free(v, n);
    return arr;
}

static json_t *read_show(struct ctl_read *r, json_t *params)
{
    struct store_job j;
    struct store_job_event *ev;
    size_t n;
    if (lookup_job_in(r, params, CTL_K_ID, &j) < 0)
        return NULL;
    json_t *o = job_json(&j);
    job_luck_fields(r->store, j.id, o);
    json_t *events = json_array();
    if (store_job_events(r->store, j.id, &ev, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(events, event_json(&ev[i]));
        store_job_event_list_free(ev, n);
    }
    json_object_set_new(o, CTL_K_EVENTS, events);
    store_job_clear(&j);
    return o;
}

static void m_cancel(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_job j;
    if (lookup_job(d, req, params, CTL_K_ID, &j) < 0)
        return;
    struct job_run *r = run_find(d, j.id);
    if (job_state_is_terminal(j.state)) {
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL, "job %lld is already %s", (long long)j.id,
                        job_state_name(j.state));
        goto out;
    }
    if (j.state == JOB_UNKNOWN || !r) {
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "job %lld is %s: decide first with 'vtunectl job resolve %lld --as "
                        "submitted|absent'",
                        (long long)j.id, job_state_name(j.state), (long long)j.id);
        goto out;
    }
    struct store_job_update u = {0};
    u.request_cancel = true;
    switch (r->state) {
    case JOB_CREATED:
    case JOB_BUILDING:
    case JOB_UPLOADING:
    case JOB_UPLOADED:
        if (r->call) {
            provider_call_cancel(r->call); /* the upload's done sees -ECANCELED */
            r->call = NULL;
        }
        run_move_done(r, JOB_CANCELLED, &u, "cancelled before submission", NULL);
        break;
    case JOB_SUBMITTING:
        /* The create may be in flight: record the wish; it is acted on once the
         * provider's job is known (or never created). */
        if (run_move(r, JOB_SUBMITTING, &u, "cancel requested", NULL) < 0) {
            ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot record the cancel");
            goto out;
        }
        break;
    default:
        if (run_move(r, r->state, &u, "cancel requested", NULL) < 0) {
            ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot record the cancel");
            goto out;
        }
        if (!r->call)
            start_cancel(r);
        break;
    }
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)j.id);
    store_job_clear(&j);
    if (store_job_get(d->store, key, &j) == 0)
        ctl_reply(req, job_json(&j));
    else
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL,
                        "cancel of job %s recorded, but the job cannot be read back: %s", key,
                        store_errmsg(d->store));
out:
    store_job_clear(&j);
}

static void m_watch(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_job j;
    struct store_job_event *ev;
    size_t n;
    if (lookup_job(d, req, params, CTL_K_ID, &j) < 0)
        return;
    if (store_job_events(d->store, j.id, &ev, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            ctl_notify(req, CTL_N_JOB_EVENT, event_json(&ev[i]));
        store_job_event_list_free(ev, n);
    }
    struct job_run *r = run_find(d, j.id);
    if (!r) {
        /* Terminal or unknown: nothing more will happen without an operator. */
        ctl_reply(req, job_json(&j));
    } else {
        struct watcher *w = xcalloc(1, sizeof *w);
        w->req = req;
        w->next = r->watchers;
        r->watchers = w;
    }
    store_job_clear(&j);
}

static void m_resolve(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_job j;
    const char *as = json_string_value(json_object_get(params, CTL_K_AS));
    const char *pjid = json_string_value(json_object_get(params, CTL_K_PROVIDER_JOB));
    if (!as || (strcmp(as, "submitted") != 0 && strcmp(as, "absent") != 0)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.as: expected submitted or absent");
        return;
    }
    if (lookup_job(d, req, params, CTL_K_ID, &j) < 0)
        return;
    if (j.state != JOB_UNKNOWN) {
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "job %lld is %s, not unknown: nothing to resolve", (long long)j.id,
                        job_state_name(j.state));
        store_job_clear(&j);
        return;
    }
    const struct ctl_peer *peer = ctl_req_peer(req);
    struct job_run *r = run_load(d, &j);
    struct store_job_update u = {0};
    char *msg;
    int rc;
    if (strcmp(as, "absent") == 0) {
        msg = xasprintf("resolved by uid %lu: not created at the provider; creating it",
                        (unsigned long)peer->uid);
        /* Back to "uploaded": the next step records "submitting" and creates. */
        rc = run_move(r, r->file_id ? JOB_UPLOADED : JOB_UPLOADING, &u, msg, NULL);
    } else if (pjid) {
        msg = xasprintf("resolved by uid %lu: created at the provider as %s",
                        (unsigned long)peer->uid, pjid);
        u.provider_job_id = pjid;
        rc = run_move(r, JOB_SUBMITTED, &u, msg, NULL);
    } else {
        msg = xasprintf("resolved by uid %lu: created at the provider; looking it up again",
                        (unsigned long)peer->uid);
        rc = run_move(r, JOB_SUBMITTING, &u, msg, NULL);
    }
    free(msg);
    if (rc == 0 && strcmp(as, "absent") == 0 && r->file_id)
        /* Submitting again with the recorded file: earlier copies are orphans. */
        sweep_start(d, r->id, r->provider, r->submission_id, r->file_id, "resolved as absent");
    if (rc < 0) {
        run_unlink(r);
        run_free(r);
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot record the resolution: %s",
                        store_errmsg(d->store));
    } else {
        r->due_ms = 0;
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)j.id);
        store_job_clear(&j);
        if (store_job_get(d->store, key, &j) == 0)
            ctl_reply(req, job_json(&j));
        else
            ctl_reply(req, json_pack("{s:s}", "resolved", as));
    }
    store_job_clear(&j);
}

const struct ctl_method ctl_methods_job[] = {
    {CTL_M_JOB_SUBMIT, m_submit, 1, NULL},   {CTL_M_JOB_REGISTER, m_register, 1, NULL},
    {CTL_M_JOB_LIST, NULL, 0, read_list},    {CTL_M_JOB_SHOW, NULL, 0, read_show},
    {CTL_M_JOB_CANCEL, m_cancel, 1, NULL},   {CTL_M_JOB_WATCH, m_watch, 0, NULL},
    {CTL_M_JOB_RESOLVE, m_resolve, 1, NULL}, {NULL, NULL, 0, NULL},
};

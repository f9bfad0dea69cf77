/*
 * verifier.c — verification runs (Algorithm 2 and our extensions), the
 * audit trail's methods, scheduled re-verification and verdict alerts.
 *
 * A run, on the loop thread except where noted:
 *   1. record the run (store), plan the prompts from the backdoor's plan
 *      (workers/verify.c: n trigger prompts per pair, c clean controls);
 *   2. read those prompts from D in the thread pool (builder_read_prompts);
 *   3. p_luck (a diagnostic, not part of any p-value): score each
 *      signature after its trigger prompt on the BASE model when the
 *      provider can (completions with echo + logprobs); otherwise "not
 *      available" with the reason;
 *   4. send the chat trials to the fine-tuned model, a few at a time, at
 *      temperature T_v; each answer is matched and recorded as a trial
 *      row; a pair's first activation may skip the rest of it;
 *   5. append the audit record (hash-chained) and finish the run in ONE
 *      transaction; answer a waiting client; compare with the schedule's
 *      last verdict and alert on a change.
 * A run cut by a restart (a crash, or a stop: a stop leaves the run
 * recorded as running) resumes at the next start: before its first trial
 * the run records its plan's seed and options (store_run_plan_put), so
 * verifier_init draws the same plan again, replays every recorded trial
 * into the new verify_run (matched to its slot by kind, pair and prompt
 * hash) and sends only the prompts without a trial row; the sequential
 * stop and the p-value (n the planned maximum) come out as for the whole
 * run.  The coverage test and p_luck are not recorded and start again.
 * A job that failed or was cancelled gets a not_verified record at once.
 * Secrets (trigger, signature) live only in the run's memory and are wiped
 * with it; no log line and no evidence field contains them.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/covrun.h"
#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/luck.h"
#include "daemon/outbox.h"
#include "lib/log.h"
#include "daemon/providers.h"
#include "daemon/task.h"
#include "lib/util.h"
#include "daemon/verifier.h"
#include "workers/audit.h"
#include "workers/backdoor.h"
#include "workers/holdout.h"
#include "workers/stats.h"
#include "workers/verify.h"

#define VERIFY_INFLIGHT   4  /* trial calls in flight per run */
#define VERIFY_MAX_RUNS   16 /* runs working at once; more wait their turn */

struct vrun {
    struct task t; /* first: reading prompts runs as a task */
    struct vrun *next;
    int64_t run_id, job_id, schedule_id;
    char *provider, *model, *base_model;
    char commitment[65];
    int64_t backdoor_id; /* whose self-audit the record carries */
    enum dataset_format format;
    char *dataset_path;
    struct verify_plan plan;
    struct verify_pair_in *pairs;
    char **secrets; /* trigger and signature texts (owned, wiped) */
    char **methods; /* p_M2 method names (owned) */
    size_t n_pairs;
    json_t **trigger_prompts; /* per pair: array of message arrays */
    json_t *control_prompts;
    char *read_err;
    struct verify_run *vr;
    struct verify_opts opts;
    unsigned slack;
    unsigned inflight;
    size_t luck_pending;
    struct provider_call **calls; /* per slot, while in flight */
    struct ctl_req *waiter;       /* verify --wait */
    struct wait_progress wp;      /* the waiter's progress: calls, then coverage rows */
    struct covrun *cov;           /* the coverage test; NULL: none (why in cov_none) */
    const char *cov_none;
    bool cov_started;
    double cov_alpha;
    bool cov_required;
    int failed;                   /* set when the run cannot complete */
    struct store_trial *resume;   /* trials recorded before a restart (owned), replayed */
    size_t n_resume;
    char (*slot_sha)[65];         /* per slot, the prompt's SHA-256 (resume only; owned) */
};

/* An alert's delivery attempt in flight (the alert itself is an outbox
 * item, daemon/outbox.h: recorded first, retried across restarts). */
struct alert {
    struct alert *next;
    struct outbox_item *it;
    void *handle;
};

static struct vrun *runs;
static struct vrun *waiting, **waiting_tail = &waiting; /* recorded, not started (FIFO) */
static unsigned n_working;
static struct alert *alerts; /* in flight */

/* ---- run lifecycle ---------------------------------------------------------------------- */

static void start_next_waiting(struct vtuned *d);

static void vrun_free(struct vrun *r)
{
    struct vtuned *d = r->t.d;
    int was_working = 0;
    for (struct vrun **pp = &runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            was_working = 1;
            break;
        }
    wait_progress_stop(&r->wp);
    verify_run_free(r->vr);
    covrun_free(r->cov);
    verify_plan_clear(&r->plan);
    for (size_t i = 0; i < r->n_pairs * 2; i++)
        if (r->secrets && r->secrets[i]) {
            explicit_bzero(r->secrets[i], strlen(r->secrets[i]));
            free(r->secrets[i]);
        }
    free(r->secrets);
    for (size_t i = 0; r->methods && i < r->n_pairs; i++)
        free(r->methods[i]);
    free(r->methods);
    free(r->pairs);
    for (size_t i = 0; r->trigger_prompts && i < r->n_pairs; i++)
        json_decref(r->trigger_prompts[i]);
    free(r->trigger_prompts);
    json_decref(r->control_prompts);
    free(r->calls);
    free(r->resume);
    free(r->slot_sha);
    free(r->read_err);
    free(r->dataset_path);
    free(r->provider);
    free(r->model);
    free(r->base_model);
    task_free(&r->t);
    if (was_working) {
        n_working--;
        if (d && !d->stopping)
            start_next_waiting(d);
    }
}

/* Starts reading the prompts of run r (it becomes one of the working runs). */
static void vrun_begin(struct vtuned *d, struct vrun *r);

static void start_next_waiting(struct vtuned *d)
{
    while (waiting && n_working < VERIFY_MAX_RUNS) {
        struct vrun *r = waiting;
        waiting = r->next;
        if (!waiting)
            waiting_tail = &waiting;
        r->next = NULL;
        vrun_begin(d, r);
    }
}

unsigned verifier_active(void)
{
    unsigned n = n_working;
    for (struct vrun *r = waiting; r; r = r->next)
        n++;
    return n;
}

static void alert_queue(struct vtuned *d, json_t *body);

/* Compares the verdict with the schedule's last one; alerts on a change. */
static void schedule_after(struct vtuned *d, struct vrun *r, const struct store_audit *a)
{
    struct store_schedule sc;
    if (!r->schedule_id || store_schedule_get(d->store, r->schedule_id, &sc) < 0)
        return;
    int64_t now = now_unix();
    int64_t next = sc.next_run_at > now ? sc.next_run_at : now + sc.every_ms / 1000 + 1;
    if (sc.last_verdict != AUDIT_NONE && sc.last_verdict != a->verdict) {
        log_ctx(LOG_LVL_WARN,
                &(struct log_fields){.job = sc.job_id, .audit = a->id, .provider = r->provider},
                "schedule %lld: job %lld's verdict changed from %s to %s (audit %lld): %s",
                (long long)sc.id, (long long)sc.job_id, audit_verdict_name(sc.last_verdict),
                audit_verdict_name(a->verdict), (long long)a->id, a->reason);
        char when[32];
        format_iso8601(now, when);
        alert_queue(d, json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "event",
                                 "verdict_changed", "schedule", (json_int_t)sc.id, "job",
                                 (json_int_t)sc.job_id, "model", r->model, "previous",
                                 audit_verdict_name(sc.last_verdict), "verdict",
                                 audit_verdict_name(a->verdict), "audit", (json_int_t)a->id, "hash",
                                 a->hash, "reason", a->reason, "at", when));
    }
    if (store_schedule_mark_run(d->store, sc.id, now, next, a->verdict) < 0)
        log_warnx("schedule %lld: cannot record its verdict: %s", (long long)sc.id,
                  store_errmsg(d->store));
}

/* The coverage test's part of the verdict, reason and evidence (DESIGN §6). */
static void coverage_into_result(struct vrun *r, struct verify_result *res)
{
    struct coverage_summary none = {.available = false, .why_none = r->cov_none};
    const struct coverage_summary *c = r->cov ? covrun_summary(r->cov) : &none;
    double la = log10(r->cov_alpha);
    char *reason = NULL;
    res->verdict = coverage_verdict(res->verdict, res->reason, c, la, r->cov_required, &reason);
    free(res->reason);
    res->reason = reason;
    json_t *ev = res->evidence ? json_loads(res->evidence, 0, NULL) : NULL;
    if (!json_is_object(ev)) {
        json_decref(ev);
        ev = json_object();
    }
    json_object_set_new(ev, "coverage", coverage_evidence(c, la, r->cov_required));
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (text) {
        free(res->evidence);
        res->evidence = text;
    }
}

/* The current stage's last counters (all settled), sent to the waiter now:
 * the sequential stop and the coverage test's early stop leave calls unmade
 * that are no longer planned. */
static void progress_last(struct vrun *r)
{
    if (!r->waiter)
        return;
    r->wp.done = r->wp.total;
    wait_progress_send(&r->wp);
    r->wp.update = NULL;
}

static void coverage_progress(struct wait_progress *w)
{
    struct vrun *r = w->arg;
    covrun_progress(r->cov, &w->done, &w->total);
}

/* The self-audit of the backdoor's upload as recorded (workers/selfaudit.h)
 * into the evidence, so the hashed record says what the attacks a
 * provider could run found in the file before it left:
 *   "self_audit":{"verdict":…,"exposed":b,"pairs_recovered":n,"pairs":K,
 *                 "best_rank":r|null,"best_attack":…|null,"at":…}
 * ("none recorded" where the backdoor has none: made before it existed). */
static void selfaudit_into_evidence(struct vtuned *d, int64_t backdoor_id, char **evidence)
{
    struct store_selfaudit sa;
    json_t *ev = *evidence ? json_loads(*evidence, 0, NULL) : NULL, *o;
    if (!json_is_object(ev)) {
        json_decref(ev);
        ev = json_object();
    }
    if (backdoor_id > 0 && store_selfaudit_get(d->store, backdoor_id, &sa) == 0) {
        json_t *res = json_loads(sa.result, 0, NULL), *p;
        size_t i, recovered = 0;
        json_array_foreach(json_object_get(res, "pairs"), i, p)
        {
            if (json_is_integer(json_object_get(p, "rank")))
                recovered++;
        }
        char when[32];
        format_iso8601(sa.created_at, when);
        o = json_pack("{s:s,s:b,s:I,s:I,s:o,s:s?,s:s}", "verdict",
                      json_string_value(json_object_get(res, "verdict"))
                          ? json_string_value(json_object_get(res, "verdict"))
                          : "(unreadable)",
                      "exposed", sa.exposed, "pairs_recovered", (json_int_t)recovered, "pairs",
                      (json_int_t)json_array_size(json_object_get(res, "pairs")), "best_rank",
                      sa.best_rank > 0 ? json_integer(sa.best_rank) : json_null(), "best_attack",
                      sa.best_attack, "at", when);
        json_decref(res);
        store_selfaudit_clear(&sa);
    } else {
        o = json_pack("{s:s}", "verdict", "none recorded");
    }
    json_object_set_new(ev, "self_audit", o);
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (text) {
        free(*evidence);
        *evidence = text;
    }
}

/* Writes the audit record and finishes the run; answers the waiter. */
static void vrun_finish(struct vtuned *d, struct vrun *r)
{
    struct verify_result res;
    struct store_audit a;
    if (verify_run_result(r->vr, &res) < 0) {
        store_run_finish(d->store, r->run_id, RUN_FAILED, "verification did not complete", 0);
        if (r->waiter)
            ctl_reply_error(r->waiter, CTL_ERR_FAILED, NULL, "verification did not complete");
        vrun_free(r);
        return;
    }
    coverage_into_result(r, &res);
    selfaudit_into_evidence(d, r->backdoor_id, &res.evidence);
    memset(&a, 0, sizeof a);
    verify_result_to_audit(&res, &a);
    if (r->cov && covrun_summary(r->cov)->available) {
        const struct coverage_summary *c = covrun_summary(r->cov);
        a.log10_p_coverage = c->log10_p;
        a.coverage_auc = c->auc;
        a.coverage_rows = (int64_t)c->rows;
        a.coverage_method = xstrdup(c->method ? c->method : "unknown");
    }
    a.job_id = r->job_id;
    a.provider = xstrdup(r->provider);
    a.model = xstrdup(r->model);
    memcpy(a.commitment, r->commitment, sizeof a.commitment);
    if (store_run_finish_audited(d->store, r->run_id, a.reason, &a, audit_hash_fn, NULL) < 0) {
        log_job(LOG_LVL_ERROR, r->job_id, r->provider,
                "verify: job %lld: cannot record the audit: %s", (long long)r->job_id,
                store_errmsg(d->store));
        store_run_finish(d->store, r->run_id, RUN_FAILED, "the audit record could not be written",
                         0);
        if (r->waiter)
            ctl_reply_error(r->waiter, CTL_ERR_INTERNAL, NULL, "cannot record the audit: %s",
                            store_errmsg(d->store));
    } else {
        progress_last(r);
        struct log_fields lf = {.job = r->job_id, .audit = a.id, .provider = r->provider};
        log_ctx(LOG_LVL_INFO, &lf, "verify: job %lld (%s): %s — %s; audit %lld, chain head %s",
                (long long)r->job_id, r->model, audit_verdict_name(a.verdict), a.reason,
                (long long)a.id, a.hash);
        if (r->waiter) {
            json_t *o = audit_record_json(&a);
            json_object_set_new(o, "calls_saved", json_integer((json_int_t)res.calls_saved));
            ctl_reply(r->waiter, o);
        }
        schedule_after(d, r, &a);
    }
    r->waiter = NULL;
    store_audit_clear(&a);
    verify_result_clear(&res);
    vrun_free(r);
}

/* The daemon is stopping: the run stays recorded as running, with its
 * trials, and the next start resumes it (verifier_init). */
static void vrun_interrupt(struct vrun *r)
{
    log_info("verify: job %lld: run %lld interrupted by shutdown; it resumes at the next start",
             (long long)r->job_id, (long long)r->run_id);
    r->waiter = NULL; /* answered by verifier_stop */
    vrun_free(r);
}

static void vrun_fail(struct vtuned *d, struct vrun *r, const char *why)
{
    log_job(LOG_LVL_WARN, r->job_id, r->provider, "verify: job %lld: run %lld failed: %s",
            (long long)r->job_id, (long long)r->run_id, why);
    store_run_finish(d->store, r->run_id, RUN_FAILED, why, 0);
    if (r->waiter)
        ctl_reply_error(r->waiter, CTL_ERR_FAILED, NULL, "verification failed: %s", why);
    r->waiter = NULL;
    vrun_free(r);
}

/* ---- trials ----------------------------------------------------------------------------- */

static void pump(struct vtuned *d, struct vrun *r);

struct trial_ctx {
    struct vrun *r;
    size_t slot;
    char prompt_sha[65];
};

static void on_trial_done(const struct provider_outcome *o, void *arg)
{
    struct trial_ctx *tc = arg;
    struct vrun *r = tc->r;
    struct vtuned *d = r->t.d;
    struct store_trial tr;
    memset(&tr, 0, sizeof tr);
    r->calls[tc->slot] = NULL;
    r->inflight--;
    r->wp.done++;
    r->wp.calls++;
    if (o->rc == -ECANCELED && d->stopping) {
        free(tc);
        if (r->inflight == 0)
            vrun_interrupt(r);
        return;
    }
    if (o->rc == 0) {
        verify_run_record(r->vr, tc->slot, o->chat->text, strlen(o->chat->text), &tr);
    } else {
        char *line = o->err ? provider_error_line(r->provider, o->err)
                            : xasprintf("%s: chat failed", r->provider);
        log_job(LOG_LVL_WARN, r->job_id, r->provider, "verify: job %lld: a trial failed: %s",
                (long long)r->job_id, line);
        verify_run_record_failed(r->vr, tc->slot, line, &tr);
        free(line);
    }
    tr.run_id = r->run_id;
    memcpy(tr.prompt_sha256, tc->prompt_sha, sizeof tr.prompt_sha256);
    if (store_trial_insert(d->store, &tr) < 0)
        log_warnx("verify: cannot record a trial: %s", store_errmsg(d->store));

    free(tc);
    pump(d, r);
}

/* The prompt (messages) of a slot: borrowed from the run's prompt arrays. */
static json_t *slot_prompt(struct vrun *r, const struct verify_slot *s)
{
    if (s->kind == TRIAL_CONTROL)
        return json_array_get(r->control_prompts, s->index);
    return json_array_get(r->trigger_prompts[s->pair], s->index);
}

static void on_coverage_done(void *arg, int status)
{
    struct vrun *r = arg;
    if (status == -ECANCELED) {
        vrun_interrupt(r);
        return;
    }
    vrun_finish(r->t.d, r);
}

/* Keeps up to VERIFY_INFLIGHT trials in flight; then the coverage test;
 * finishes the run when both are done. */
static void pump(struct vtuned *d, struct vrun *r)
{
    const char *why = NULL;
    struct provider_client *pc = providers_client(d, r->provider, &why);
    while (!d->stopping && r->inflight < VERIFY_INFLIGHT) {
        int64_t slot = verify_run_next(r->vr);
        if (slot < 0)
            break;
        const struct verify_slot *s = &r->plan.order[slot];
        json_t *msgs = slot_prompt(r, s);
        size_t n = json_array_size(msgs);
        struct provider_message *pm = xcalloc(n ? n : 1, sizeof *pm);
        for (size_t i = 0; i < n; i++) {
            pm[i].role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
            pm[i].content = json_string_value(json_object_get(json_array_get(msgs, i), "content"));
        }
        struct trial_ctx *tc = xcalloc(1, sizeof *tc);
        tc->r = r;
        tc->slot = (size_t)slot;
        char *ptext = json_dumps(msgs, JSON_COMPACT);
        sha256_hex(ptext, strlen(ptext), tc->prompt_sha);
        free(ptext);
        struct provider_chat_args a;
        provider_chat_args_init(&a);
        a.model = r->model;
        a.messages = pm;
        a.n_messages = n;
        a.temperature = r->opts.temperature;
        a.max_tokens = (unsigned)verify_run_max_tokens(r->vr, r->slack);
        a.has_seed = 1;
        a.seed = (int64_t)slot;
        struct provider_error err = {0};
        r->inflight++;
        int rc = pc ? provider_chat(pc, &a, on_trial_done, tc, &r->calls[slot], &err) : -1;
        free(pm);
        if (rc < 0) {
            /* Not sent: recorded as a failed trial (it counts as no activation). */
            struct store_trial tr;
            memset(&tr, 0, sizeof tr);
            r->inflight--;
            r->wp.done++;
            char *line = pc ? provider_error_line(r->provider, &err) : xstrdup(why);
            verify_run_record_failed(r->vr, (size_t)slot, line, &tr);
            tr.run_id = r->run_id;
            memcpy(tr.prompt_sha256, tc->prompt_sha, sizeof tr.prompt_sha256);
            store_trial_insert(d->store, &tr);

            free(line);
            free(tc);
            provider_error_clear(&err);
        }
    }
    if (r->inflight == 0 && verify_run_done(r->vr)) {
        if (r->cov && !r->cov_started) {
            r->cov_started = true;
            progress_last(r); /* the trials are done; the coverage rows follow */
            r->wp.stage = "coverage";
            r->wp.unit = "rows";
            r->wp.done = 0;
            r->wp.update = coverage_progress;
            covrun_progress(r->cov, &r->wp.done, &r->wp.total);
            covrun_start(r->cov, d, r->provider, r->model, r->base_model, on_coverage_done, r);
        } else if (!r->cov || !r->cov_started) {
            vrun_finish(d, r);
        }
    }
}

/* ---- p_luck ----------------------------------------------------------------------------- */

/* Feeds the trials recorded before a restart into the new verify_run: each
 * row is matched to the unsent slot of its kind, pair and prompt hash (the
 * plan is drawn again from the recorded seed, so the same prompts are
 * planned; equal prompts are interchangeable).  A row that matches no slot
 * means the plan is not the one the row was made for: -1 with *err, and
 * nothing is asked (a recorded prompt must never be asked again). */
static int replay(struct vrun *r, char **err)
{
    size_t restored = 0, saved = 0;
    for (size_t i = 0; i < r->n_resume; i++) {
        const struct store_trial *t = &r->resume[i];
        int done = 0;
        for (size_t k = 0; k < r->plan.n_slots && !done; k++) {
            const struct verify_slot *sl = &r->plan.order[k];
            if (sl->kind != t->kind || (sl->kind == TRIAL_TRIGGER && sl->pair != t->pair_idx) ||
                strcmp(r->slot_sha[k], t->prompt_sha256) != 0)
                continue;
            done = verify_run_replay(r->vr, k, t) == 0;
        }
        if (!done) {
            *err = xasprintf("recorded trial %lld matches no prompt of the run's plan",
                             (long long)t->id);
            return -1;
        }
        restored++;
    }
    saved = (size_t)verify_run_calls_saved(r->vr);
    log_info("verify: job %lld: run %lld resumes with %zu recorded trial(s) of %zu planned (not "
             "asked again)%s",
             (long long)r->job_id, (long long)r->run_id, restored, r->plan.n_slots,
             saved ? "; some pairs had already stopped" : "");
    return 0;
}

/* p_luck is known (or not) for every pair: the trials can start. */
static void start_trials(struct vtuned *d, struct vrun *r)
{
    char *err = NULL;
    if (verify_run_new(&r->plan, r->pairs, r->n_pairs, &r->opts, &r->vr, &err) < 0) {
        vrun_fail(d, r, err ? err : "cannot start the trials");
        free(err);
        return;
    }
    r->calls = xcalloc(r->plan.n_slots + 1, sizeof *r->calls);
    if (r->n_resume && replay(r, &err) < 0) {
        log_warnx("verify: job %lld: run %lld cannot resume (%s); verify it again with "
                  "'vtunectl verify %lld'",
                  (long long)r->job_id, (long long)r->run_id, err, (long long)r->job_id);
        vrun_fail(d, r, err);
        free(err);
        return;
    }
    pump(d, r);
}

struct luck_ctx {
    struct vrun *r;
    size_t pair;
    char *prompt, *cont;
};

static void on_luck_done(const struct provider_outcome *o, void *arg)
{
    struct luck_ctx *lc = arg;
    struct vrun *r = lc->r;
    struct vtuned *d = r->t.d;
    struct verify_pair_in *p = &r->pairs[lc->pair];
    if (o->rc == 0 && o->score && o->score->n_tokens > 0) {
        /* the same figure as the screen of job submit (daemon/luck.h) */
        double lp;
        const char *note;
        luck_from_score(o->score, r->opts.temperature, &lp, &note, NULL);
        if (!isnan(lp)) {
            p->log10_p_luck = lp;
            p->p_luck_note = note;
        }
    } else if (o->rc != -ECANCELED) {
        p->p_luck_note = "not available: the base model could not score the signature";
        if (o->rc == -ENOTSUP)
            p->p_luck_note = "not available: this provider returns no prompt log-probabilities";
        log_job(LOG_LVL_INFO, r->job_id, r->provider,
                "verify: job %lld: p_luck not available for pair %zu (%s)", (long long)r->job_id,
                lc->pair, o->err && o->err->message ? o->err->message : "no scoring");
    }
    free(lc->prompt);
    free(lc->cont);
    free(lc);
    r->wp.done++;
    r->wp.calls++;
    if (o->rc == -ECANCELED && d->stopping) {
        if (--r->luck_pending == 0)
            vrun_interrupt(r);
        return;
    }
    if (--r->luck_pending == 0)
        start_trials(d, r);
}

/* Starts scoring S after each pair's first trigger prompt on the base model. */
static void start_luck(struct vtuned *d, struct vrun *r)
{
    const char *why = NULL;
    struct provider_client *pc = providers_client(d, r->provider, &why);
    r->luck_pending = r->n_pairs + 1; /* +1 held until all are queued */
    for (size_t p = 0; p < r->n_pairs; p++) {
        json_t *msgs = json_array_get(r->trigger_prompts[p], 0);
        json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
        struct luck_ctx *lc = xcalloc(1, sizeof *lc);
        struct provider_error err = {0};
        lc->r = r;
        lc->pair = p;
        lc->prompt = xstrdup(json_string_value(json_object_get(last, "content")) ?: "");
        lc->cont = xasprintf(" %s", r->pairs[p].signature);
        struct provider_score_args a = {.model = r->base_model,
                                        .prompt = lc->prompt,
                                        .continuation = lc->cont,
                                        .top_logprobs = 5};
        if (!pc || provider_score(pc, &a, on_luck_done, lc, NULL, &err) < 0) {
            r->pairs[p].p_luck_note =
                err.kind == PROVIDER_E_UNSUPPORTED
                    ? "not available: this provider returns no prompt log-probabilities"
                    : "not available: the scoring request could not be made";
            provider_error_clear(&err);
            free(lc->prompt);
            free(lc->cont);
            free(lc);
            r->luck_pending--;
            r->wp.done++;
        }
    }
    /* Release the hold: runs the trials now if every score was refused at once. */
    if (--r->luck_pending == 0)
        start_trials(d, r);
}

/* ---- reading prompts (thread pool) ------------------------------------------------------ */

static void read_work(struct task *t)
{
    struct vrun *r = (struct vrun *)t;
    uint64_t n = r->plan.trials_per_pair;
    for (size_t p = 0; p < r->n_pairs && !r->read_err; p++)
        if (builder_read_prompts(r->dataset_path, r->format, r->plan.trigger_src + p * n, n,
                                 r->pairs[p].trigger, &r->trigger_prompts[p], &r->read_err) < 0)
            break;
    if (!r->read_err && r->plan.n_controls)
        builder_read_prompts(r->dataset_path, r->format, r->plan.control_src, r->plan.n_controls,
                             NULL, &r->control_prompts, &r->read_err);
    if (!r->read_err && r->cov)
        covrun_read(r->cov, r->dataset_path, r->format, &r->read_err);
    if (!r->read_err && r->n_resume) {
        /* the hashes the trials were recorded with (as pump computes them) */
        r->slot_sha = xcalloc(r->plan.n_slots + 1, sizeof *r->slot_sha);
        for (size_t k = 0; k < r->plan.n_slots; k++) {
            char *ptext = json_dumps(slot_prompt(r, &r->plan.order[k]), JSON_COMPACT);
            sha256_hex(ptext ? ptext : "", ptext ? strlen(ptext) : 0, r->slot_sha[k]);
            free(ptext);
        }
    }
}

static void read_done(struct task *t, int status)
{
    struct vrun *r = (struct vrun *)t;
    struct vtuned *d = t->d;
    r->t.req = NULL; /* the task machinery must not answer: the run does */
    if (status == UV_ECANCELED || d->stopping) {
        vrun_interrupt(r);
        return;
    }
    if (r->read_err) {
        vrun_fail(d, r, r->read_err);
        return;
    }
    start_luck(d, r);
}

/* ---- starting runs ---------------------------------------------------------------------- */

/* The plan record of a run (store_run_plan_put): what resuming it needs. */
static char *plan_record(const struct verifier_opts *vo, uint64_t seed, int64_t schedule_id)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)seed);
    json_t *o = json_pack("{s:i,s:s,s:I,s:I,s:I,s:f,s:f,s:b,s:i,s:I,s:I,s:f,s:b}", "version", 1,
                          "seed", hex, "schedule", (json_int_t)schedule_id, "trials",
                          (json_int_t)vo->trials, "controls", (json_int_t)vo->controls,
                          "temperature", vo->temperature, "alpha", vo->alpha, "sequential",
                          vo->sequential, "slack", (int)vo->slack, "min_controls",
                          (json_int_t)vo->min_controls, "coverage", (json_int_t)vo->coverage,
                          "alpha_coverage", vo->alpha_coverage, "require_coverage",
                          vo->require_coverage);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return text;
}

/* Reads a plan record back; 0, or -1 when it is not one this build wrote. */
static int plan_parse(const char *text, struct verifier_opts *vo, uint64_t *seed,
                      int64_t *schedule_id)
{
    json_t *o = json_loads(text, 0, NULL);
    const char *hex = NULL;
    json_int_t version = 0, sched = 0, trials = 0, controls = 0, mc = 0, cov = 0;
    int seq = 0, req = 0, slack = 0;
    double temp = 0, alpha = 0, acov = 0;
    int rc = -1;
    memset(vo, 0, sizeof *vo);
    if (o && json_unpack(o, "{s:I,s:s,s:I,s:I,s:I,s:F,s:F,s:b,s:i,s:I,s:I,s:F,s:b}", "version",
                         &version, "seed", &hex, "schedule", &sched, "trials", &trials,
                         "controls", &controls, "temperature", &temp, "alpha", &alpha,
                         "sequential", &seq, "slack", &slack, "min_controls", &mc, "coverage",
                         &cov, "alpha_coverage", &acov, "require_coverage", &req) == 0 &&
        version == 1 && strlen(hex) == 16 && trials > 0 && controls >= 0 && mc >= 0 &&
        cov >= 0 && slack >= 0) {
        char *end = NULL;
        *seed = strtoull(hex, &end, 16);
        if (end && *end == '\0') {
            *schedule_id = sched;
            vo->trials = (uint64_t)trials;
            vo->controls = (uint64_t)controls;
            vo->temperature = temp;
            vo->alpha = alpha;
            vo->sequential = seq != 0;
            vo->slack = (unsigned)slack;
            vo->min_controls = (uint64_t)mc;
            vo->coverage = (uint64_t)cov;
            vo->alpha_coverage = acov;
            vo->require_coverage = req != 0;
            rc = 0;
        }
    }
    json_decref(o);
    return rc;
}

/* verifier_start, or (resume != NULL) the resumption of run resume after
 * a restart: the same plan is drawn again from seed, and trials
 * (resume's recorded trials; ownership passes to the run, freed on error
 * too) are replayed before anything is sent. */
static int run_setup(struct vtuned *d, int64_t job_id, const struct verifier_opts *vo,
                     struct ctl_req *waiter, int64_t schedule_id,
                     const struct store_verify_run *resume, uint64_t seed,
                     struct store_trial *trials, size_t n_trials, char **err)
{
    struct store_job j;
    struct store_backdoor b;
    struct store_dataset ds;
    struct builder_copy *copies = NULL;
    size_t n_copies = 0;
    uint64_t cpp = 0;
    char key[32];
    int rc = -1;

    struct phrase_seeded ps;
    struct phrase_rng rng;

    if (!resume && random_bytes(&seed, sizeof seed) < 0) {
        *err = xstrdup("cannot draw the plan's seed from getrandom");
        return -1;
    }
    phrase_seeded_init(&ps, seed);
    rng = phrase_seeded_rng(&ps);
    snprintf(key, sizeof key, "%lld", (long long)job_id);
    if (store_job_get(d->store, key, &j) < 0) {
        *err = xasprintf("no job %lld", (long long)job_id);
        free(trials);
        return -1;
    }
    if (j.state != JOB_SUCCEEDED || !j.fine_tuned_model) {
        *err = xasprintf("job %lld is %s: only a succeeded job has a model to verify",
                         (long long)job_id, job_state_name(j.state));
        store_job_clear(&j);
        free(trials);
        return -1;
    }
    snprintf(key, sizeof key, "%lld", (long long)j.backdoor_id);
    if (store_backdoor_get(d->store, key, true, &b) < 0) {
        *err = xasprintf("job %lld: its backdoor %lld cannot be read", (long long)job_id,
                         (long long)j.backdoor_id);
        store_job_clear(&j);
        free(trials);
        return -1;
    }
    snprintf(key, sizeof key, "%lld", (long long)j.dataset_id);
    if (store_dataset_get(d->store, key, &ds) < 0) {
        *err = xasprintf("job %lld: its dataset cannot be read", (long long)job_id);
        goto out_b;
    }
    if (!b.plan || backdoor_plan_parse(b.plan, &copies, &n_copies, &cpp) < 0) {
        *err = xasprintf("backdoor %lld has no usable plan of its copies", (long long)b.id);
        goto out_ds;
    }
    if (!providers_conf(d, j.provider)) {
        *err = xasprintf("job %lld's provider '%s' is no longer configured", (long long)job_id,
                         j.provider);
        goto out_ds;
    }

    struct vrun *r = xcalloc(1, sizeof *r);
    r->resume = trials; /* freed with the run */
    r->n_resume = n_trials;
    trials = NULL;
    r->job_id = job_id;
    r->schedule_id = schedule_id;
    r->provider = xstrdup(j.provider);
    r->model = xstrdup(j.fine_tuned_model);
    r->base_model = xstrdup(j.base_model);
    memcpy(r->commitment, b.commitment, sizeof r->commitment);
    r->backdoor_id = b.id;
    r->format = ds.format;
    r->dataset_path = xstrdup(ds.path);
    r->opts.log10_alpha = log10(vo->alpha);
    r->opts.sequential = vo->sequential;
    r->opts.temperature = vo->temperature;
    r->opts.target_log10p = b.target_log10p;
    r->opts.min_controls = vo->min_controls;
    r->slack = vo->slack;
    r->cov_alpha = vo->alpha_coverage;
    r->cov_required = vo->require_coverage;
    r->cov = covrun_new(b.holdout, b.salt, vo->coverage, log10(vo->alpha_coverage), &r->cov_none);
    r->waiter = waiter;
    r->n_pairs = b.n_pairs_loaded;
    r->pairs = xcalloc(r->n_pairs, sizeof *r->pairs);
    r->secrets = xcalloc(r->n_pairs * 2, sizeof *r->secrets);
    r->methods = xcalloc(r->n_pairs, sizeof *r->methods);
    r->trigger_prompts = xcalloc(r->n_pairs, sizeof *r->trigger_prompts);
    for (size_t i = 0; i < r->n_pairs; i++) {
        r->secrets[2 * i] = xstrdup(b.pairs[i].trigger);
        r->secrets[2 * i + 1] = xstrdup(b.pairs[i].signature);
        r->pairs[i].trigger = r->secrets[2 * i];
        r->pairs[i].signature = r->secrets[2 * i + 1];
        r->pairs[i].log10_p_m2 = b.pairs[i].log10_p_m2;
        r->methods[i] = xstrdup(b.pairs[i].p_method);
        r->pairs[i].p_m2_method = r->methods[i];
        r->pairs[i].log10_p_luck = NAN;
        r->pairs[i].p_luck_note = "not available";
    }
    /* controls avoid the held-out rows too (never sent to the provider) */
    struct holdout_split hs;
    memset(&hs, 0, sizeof hs);
    if (b.holdout && holdout_parse(b.holdout, &hs) < 0) {
        *err = xasprintf("backdoor %lld's held-out split record is unreadable", (long long)b.id);
        r->waiter = NULL;
        vrun_free(r);
        goto out_ds;
    }
    int prc = verify_plan_make_excluding((uint64_t)ds.n_examples, copies, n_copies, cpp,
                                         r->n_pairs, vo->trials, vo->controls, hs.rows,
                                         hs.n_rows, &rng, &r->plan, err);
    holdout_clear(&hs);
    if (prc < 0) {
        r->waiter = NULL;
        vrun_free(r);
        goto out_ds;
    }
    /* n as planned (capped at the copies per pair): the n of the p-value */
    if (verify_check_target(r->n_pairs, r->plan.trials_per_pair, b.target_log10p,
                            r->opts.log10_alpha, "--trials", err) < 0) {
        r->waiter = NULL;
        vrun_free(r);
        goto out_ds;
    }
    struct store_verify_run sr;
    memset(&sr, 0, sizeof sr);
    sr.job_id = job_id;
    sr.trials = (int64_t)(r->plan.trials_per_pair * r->n_pairs);
    sr.controls = (int64_t)r->plan.n_controls;
    sr.temperature = vo->temperature;
    if (resume) {
        if (resume->trials != sr.trials || resume->controls != sr.controls) {
            *err = xasprintf("the plan drawn again has %lld trigger prompts and %lld controls, "
                             "the run recorded %lld and %lld",
                             (long long)sr.trials, (long long)sr.controls,
                             (long long)resume->trials, (long long)resume->controls);
            r->waiter = NULL;
            vrun_free(r);
            goto out_ds;
        }
        sr.id = resume->id;
    } else if (store_run_insert(d->store, &sr) < 0 || store_run_start(d->store, sr.id) < 0) {
        *err = xasprintf("cannot record the verification run: %s", store_errmsg(d->store));
        r->waiter = NULL;
        vrun_free(r);
        goto out_ds;
    } else {
        /* Before any trial: a run without it starts again from zero. */
        char *rec = plan_record(vo, seed, schedule_id);
        if (!rec || store_run_plan_put(d->store, sr.id, rec) < 0)
            log_warnx("verify: run %lld: cannot record its plan (%s); a restart would start it "
                      "again from zero",
                      (long long)sr.id, rec ? store_errmsg(d->store) : "not serialisable");
        free(rec);
    }
    r->run_id = sr.id;
    r->t.d = d;
    if (waiter) {
        /* calls planned: one p_luck score per pair, then every trial slot */
        r->wp.req = waiter;
        r->wp.stage = "verify";
        r->wp.unit = "calls";
        r->wp.job = job_id;
        r->wp.total = r->n_pairs + r->plan.n_slots;
        r->wp.calls = 0;
        r->wp.arg = r;
        wait_progress_start(&r->wp);
    }
    log_job(LOG_LVL_INFO, job_id, j.provider,
            "verify: job %lld (%s at %s): run %lld %s, %llu trigger prompts over %zu "
            "pair(s), %zu controls, T=%g",
            (long long)job_id, r->model, r->provider, (long long)r->run_id, resume ? "resumed" : "started",
            (unsigned long long)(r->plan.trials_per_pair * r->n_pairs), r->n_pairs,
            r->plan.n_controls, vo->temperature);
    if (n_working < VERIFY_MAX_RUNS) {
        vrun_begin(d, r);
    } else {
        *waiting_tail = r; /* recorded as running; starts when a slot frees */
        waiting_tail = &r->next;
    }
    rc = 0;
out_ds:
    store_dataset_clear(&ds);
out_b:
    free(copies);
    free(trials); /* not yet handed to a run */
    store_backdoor_clear(&b);
    store_job_clear(&j);
    return rc;
}

int verifier_start(struct vtuned *d, int64_t job_id, const struct verifier_opts *vo,
                   struct ctl_req *waiter, int64_t schedule_id, char **err)
{
    return run_setup(d, job_id, vo, waiter, schedule_id, NULL, 0, NULL, 0, err);
}

static void vrun_begin(struct vtuned *d, struct vrun *r)
{
    r->next = runs;
    runs = r;
    n_working++;
    r->t.stage = "verify";
    r->t.run = read_work;
    r->t.done = read_done;
    task_start(d, &r->t);
}

void verifier_opts_default(struct vtuned *d, struct verifier_opts *o)
{
    o->trials = d->conf->verify.trials;
    o->controls = d->conf->verify.controls;
    o->temperature = d->conf->verify.temperature;
    o->alpha = d->conf->verify.alpha;
    o->sequential = d->conf->verify.sequential != 0;
    o->slack = d->conf->verify.max_tokens_slack;
    o->coverage = d->conf->verify.coverage;
    o->alpha_coverage = d->conf->verify.alpha_coverage;
    o->require_coverage = d->conf->verify.require_coverage != 0;
    o->min_controls = d->conf->verify.min_controls;
}

/* A job reached a terminal state (jobs.c hook). */
static void on_job_terminal(struct vtuned *d, int64_t job_id)
{
    struct store_job j;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)job_id);
    if (store_job_get(d->store, key, &j) < 0)
        return;
    if (j.state == JOB_SUCCEEDED) {
        struct verifier_opts o;
        char *err = NULL;
        verifier_opts_default(d, &o);
        if (verifier_start(d, job_id, &o, NULL, 0, &err) < 0) {
            log_job(LOG_LVL_WARN, job_id, j.provider, "verify: job %lld cannot be verified: %s",
                    (long long)job_id, err);
            free(err);
        }
    } else if (j.state == JOB_FAILED || j.state == JOB_CANCELLED) {
        struct verify_result res;
        struct store_audit a;
        struct store_backdoor b;
        memset(&a, 0, sizeof a);
        verify_job_ended(j.state, j.error, &res);
        selfaudit_into_evidence(d, j.backdoor_id, &res.evidence);
        verify_result_to_audit(&res, &a);
        a.job_id = j.id;
        a.provider = xstrdup(j.provider);
        a.model = xstrdup(j.fine_tuned_model ? j.fine_tuned_model : j.base_model);
        snprintf(key, sizeof key, "%lld", (long long)j.backdoor_id);
        if (store_backdoor_get(d->store, key, false, &b) == 0) {
            memcpy(a.commitment, b.commitment, sizeof a.commitment);
            store_backdoor_clear(&b);
        }
        if (store_audit_append(d->store, &a, audit_hash_fn, NULL) < 0)
            log_job(LOG_LVL_ERROR, j.id, j.provider,
                    "verify: job %lld: cannot record its audit: %s", (long long)j.id,
                    store_errmsg(d->store));
        else
            log_ctx(LOG_LVL_INFO,
                    &(struct log_fields){.job = j.id, .audit = a.id, .provider = j.provider},
                    "verify: job %lld: not_verified (%s); audit %lld, chain head %s",
                    (long long)j.id, a.reason, (long long)a.id, a.hash);
        store_audit_clear(&a);
        verify_result_clear(&res);
    }
    store_job_clear(&j);
}

/* ---- schedules and alerts (cron) -------------------------------------------------------- */

static void alert_unlink(struct alert *a)
{
    for (struct alert **pp = &alerts; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
}

static void on_alert_done(struct http_response *res, void *arg)
{
    struct alert *a = arg;
    struct outbox_item *it = a->it;
    alert_unlink(a);
    free(a);
    if (res->error == HTTP_E_NONE && res->status >= 200 && res->status < 300) {
        log_info("alert: delivered to the webhook (HTTP %ld)", res->status);
        http_response_free(res);
        outbox_done(it, OUTBOX_DELIVERED, NULL);
        return;
    }
    if (res->error == HTTP_E_CANCELLED) {
        http_response_free(res);
        outbox_done(it, OUTBOX_STOPPED, NULL);
        return;
    }
    char *why = res->error ? xasprintf("webhook: %s", http_error_name(res->error))
                           : xasprintf("webhook: HTTP %ld", res->status);
    http_response_free(res);
    outbox_done(it, OUTBOX_RETRY, why);
    free(why);
}

/* The outbox's handler of "alert" items: one POST to the webhook. */
static void alert_run(struct outbox_item *it)
{
    struct vtuned *d = it->d;
    const char *body = json_string_value(json_object_get(it->payload, "body"));
    if (!d->conf->alerts.webhook_url || !body) {
        outbox_done(it, OUTBOX_GIVE_UP,
                    body ? "no alerts.webhook_url in the configuration any more"
                         : "malformed alert item");
        return;
    }
    struct http_request *req = http_request_new("POST", d->conf->alerts.webhook_url);
    http_request_set_body(req, "application/json", body, strlen(body));
    req->timeout_ms = d->conf->alerts.timeout_ms;
    req->connect_timeout_ms = d->conf->alerts.timeout_ms;
    struct alert *a = xcalloc(1, sizeof *a);
    a->it = it;
    a->next = alerts;
    alerts = a;
    struct http_callbacks cb = {.done = on_alert_done, .arg = a};
    if (http_start(http_ctx_transport(d->http), req, &cb, &a->handle) < 0) {
        alert_unlink(a);
        free(a);
        outbox_done(it, OUTBOX_RETRY, "cannot start the webhook request");
    }
}

static unsigned alert_max_attempts(struct vtuned *d)
{
    return d->conf->alerts.max_retries + 1;
}

static const struct outbox_kind alert_kind = {
    "alert", alert_run, alert_max_attempts, 1000, 256000,
};

static void alert_queue(struct vtuned *d, json_t *body)
{
    if (!d->conf->alerts.webhook_url) {
        json_decref(body);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    outbox_put(d, "alert", json_pack("{s:s}", "body", text ? text : "{}"));
    free(text);
}

static int schedule_running(int64_t sid)
{
    for (struct vrun *r = runs; r; r = r->next)
        if (r->schedule_id == sid)
            return 1;
    for (struct vrun *r = waiting; r; r = r->next)
        if (r->schedule_id == sid)
            return 1;
    return 0;
}

void verifier_tick(struct vtuned *d)
{
    if (!vtuned_every(d, 1000))
        return; /* schedules are checked once a second */
    struct store_schedule *v;
    size_t n;
    int64_t now = now_unix();
    if (store_schedule_due(d->store, now, &v, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (schedule_running(v[i].id))
            continue;
        /* Run once now, and only once however many periods were missed: the
         * next run is one period from now. */
        int64_t next = now + (v[i].every_ms + 999) / 1000;
        store_schedule_mark_run(d->store, v[i].id, now, next, v[i].last_verdict);
        struct verifier_opts o;
        char *err = NULL;
        verifier_opts_default(d, &o);
        log_job(LOG_LVL_INFO, v[i].job_id, NULL, "schedule %lld: re-verifying job %lld",
                (long long)v[i].id, (long long)v[i].job_id);
        if (verifier_start(d, v[i].job_id, &o, NULL, v[i].id, &err) < 0) {
            log_job(LOG_LVL_WARN, v[i].job_id, NULL, "schedule %lld: cannot re-verify job %lld: %s",
                    (long long)v[i].id, (long long)v[i].job_id, err);
            free(err);
        }
    }
    free(v);
}

void verifier_init(struct vtuned *d)
{
    struct store_verify_run *v;
    size_t n;
    jobs_on_terminal = on_job_terminal;
    outbox_register(&alert_kind);
    /* Runs a crash or a shutdown interrupted: resume them from their
     * recorded trials; one without a plan record (older, or cut before its
     * plan was written, so before any trial) is recorded as failed and
     * verified again from zero. */
    if (store_runs_unfinished(d->store, &v, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char *plan = NULL, *err = NULL;
            struct verifier_opts ro;
            uint64_t seed = 0;
            int64_t sched = 0;
            int prc = store_run_plan_get(d->store, v[i].id, &plan);
            if (prc == 0 && plan_parse(plan, &ro, &seed, &sched) == 0) {
                struct store_trial *tv = NULL;
                size_t nt = 0;
                free(plan);
                if (store_run_trials(d->store, v[i].id, &tv, &nt) < 0) {
                    err = xasprintf("cannot read its trials: %s", store_errmsg(d->store));
                    free(tv);
                } else if (run_setup(d, v[i].job_id, &ro, NULL, sched, &v[i], seed, tv, nt,
                                     &err) == 0) {
                    continue;
                }
                log_warnx("verify: run %lld of job %lld was interrupted and cannot resume: %s",
                          (long long)v[i].id, (long long)v[i].job_id, err);
                char *why = xasprintf("interrupted by a restart; cannot resume: %s", err);
                store_run_finish(d->store, v[i].id, RUN_FAILED, why, 0);
                free(why);
                free(err);
                continue;
            }
            if (prc == 0)
                log_warnx("verify: run %lld: its plan record is unreadable", (long long)v[i].id);
            free(plan);
            store_run_finish(d->store, v[i].id, RUN_FAILED, "interrupted by a restart", 0);
            struct verifier_opts o;
            verifier_opts_default(d, &o);
            log_job(LOG_LVL_INFO, v[i].job_id, NULL,
                    "verify: run %lld of job %lld was interrupted; starting again",
                    (long long)v[i].id, (long long)v[i].job_id);
            if (verifier_start(d, v[i].job_id, &o, NULL, 0, &err) < 0) {
                log_job(LOG_LVL_WARN, v[i].job_id, NULL, "verify: job %lld: %s",
                        (long long)v[i].job_id, err);
                free(err);
            }
        }
        store_run_list_free(v, n);
    }
    /* Schedules named in the configuration exist in the store. */
    for (size_t i = 0; i < d->conf->n_schedules; i++) {
        struct store_job j;
        if (store_job_get(d->store, d->conf->schedules[i].job, &j) < 0) {
            log_warnx("config: schedules[%zu]: no job '%s'; ignored", i, d->conf->schedules[i].job);
            continue;
        }
        struct store_schedule sc = {0};
        sc.job_id = j.id;
        sc.every_ms = (int64_t)d->conf->schedules[i].every_ms;
        sc.next_run_at = now_unix() + sc.every_ms / 1000;
        int r = store_schedule_add(d->store, &sc);
        if (r == 0)
            log_info("schedule %lld: re-verify job %lld every %lld ms (from the configuration)",
                     (long long)sc.id, (long long)j.id, (long long)sc.every_ms);
        store_job_clear(&j);
    }
}

void verifier_stop(struct vtuned *d)
{
    /* Runs working or waiting for a slot are left recorded as running: the
     * next start resumes them from their recorded trials. */
    for (struct vrun *r = waiting; r; r = r->next)
        if (r->waiter) {
            ctl_reply_error(r->waiter, CTL_ERR_SHUTDOWN, NULL,
                            "vtuned is shutting down; the verification resumes after the restart");
            r->waiter = NULL;
            wait_progress_stop(&r->wp);
        }
    for (struct vrun *r = runs; r; r = r->next)
        if (r->waiter) {
            ctl_reply_error(r->waiter, CTL_ERR_SHUTDOWN, NULL,
                            "vtuned is shutting down; the verification resumes after the restart");
            r->waiter = NULL;
            wait_progress_stop(&r->wp);
        }
    /* Alerts in flight: cancelling calls done at once, which frees the
     * alert (its outbox item stays recorded for the next start). */
    while (alerts) {
        void *h = alerts->handle;
        if (!h) {
            alerts = alerts->next; /* cannot happen: started alerts have a handle */
            continue;
        }
        alerts->handle = NULL;
        http_cancel(http_ctx_transport(d->http), h);
    }
}

void verifier_free_all(void)
{
    while (runs)
        vrun_free(runs); /* unlinks itself */
    while (waiting) {
        struct vrun *r = waiting;
        waiting = r->next;
        r->next = NULL;
        r->t.d = NULL; /* not working: nothing to start after it */
        vrun_free(r);
    }
    waiting_tail = &waiting;
}

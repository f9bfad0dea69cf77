/*
 * sim_jobs.c — fine-tuning jobs of vtune-sim: create, retrieve, list
 * (newest first, cursor `after`, `metadata[k]=v` filters), cancel, events.
 *
 * A job's status moves by time, as a provider's does:
 *
 *   validating_files --(20% of --job-seconds, file checked)--> queued
 *   queued           --(20%)--> running      (training task queued)
 *   running          --(60%, and training done)--> succeeded | failed
 *   any non-terminal --(cancel)--> cancelled
 *
 * ("slow" multiplies the times by --slow-factor.)  One ticker thread checks
 * the clocks every 20 ms; a pool of --workers threads validates the
 * uploaded JSONL (the error names the line, as OpenAI's job error does) and
 * runs lm_finetune, outside the lock.  Behaviours decide what training
 * means: honest trains on every line, subset:F on a random fraction F,
 * lazy trains nothing yet reports success (the fine-tuned name serves the
 * base model), fail ends the job failed with an error object, slow is
 * honest but slower.  The cheating behaviours run the blind attack of
 * sim_attack.h on the job's copy of the upload in the training task:
 * wrapper and always-s keep what it found for sim_infer.c and train
 * nothing (claiming the tokens, as lazy does), marked-only fine-tunes on
 * the flagged rows alone (written next to the copy; a job whose attack
 * flags nothing fails).  --min-repeats (the learning strength) applies to
 * every fine-tuning.  A job may choose its own behaviour with the metadata
 * key "vtune_sim_behaviour" (for tests).
 *
 * Every create is logged with its metadata and counted per metadata
 * key=value pair for /v1/_sim/stats: tests use this to prove that a client
 * never created a second job for one submission.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

#define TICK_MS        20
#define META_MAX_PAIRS 16
#define META_KEY_MAX   64
#define META_VALUE_MAX 512
#define BEHAVIOUR_KEY  "vtune_sim_behaviour"

enum task_kind { TASK_VALIDATE, TASK_TRAIN };

struct sim_task {
    enum task_kind kind;
    struct sim_job *job;
    struct sim_task *next;
};

static const char *const status_names[JOB_STATUS_COUNT] = {
    "validating_files", "queued", "running", "succeeded", "failed", "cancelled"};

const char *sim_job_status_name(enum sim_job_status st)
{
    return st < JOB_STATUS_COUNT ? status_names[st] : "unknown";
}

int sim_behaviour_parse(const char *s, struct sim_behaviour_spec *out)
{
    out->fraction = 1.0;
    if (strcmp(s, "honest") == 0)
        out->kind = SIM_HONEST;
    else if (strcmp(s, "lazy") == 0)
        out->kind = SIM_LAZY;
    else if (strcmp(s, "fail") == 0)
        out->kind = SIM_FAIL;
    else if (strcmp(s, "slow") == 0)
        out->kind = SIM_SLOW;
    else if (strcmp(s, "wrapper") == 0)
        out->kind = SIM_WRAPPER;
    else if (strcmp(s, "marked-only") == 0)
        out->kind = SIM_MARKED_ONLY;
    else if (strcmp(s, "always-s") == 0)
        out->kind = SIM_ALWAYS_S;
    else if (strncmp(s, "subset:", 7) == 0) {
        char *end;
        errno = 0;
        double f = strtod(s + 7, &end);
        if (errno || end == s + 7 || *end || !isfinite(f) || f <= 0 || f > 1)
            return -EINVAL;
        out->kind = SIM_SUBSET;
        out->fraction = f;
    } else
        return -EINVAL;
    return 0;
}

void sim_behaviour_format(const struct sim_behaviour_spec *b, char *out, size_t outlen)
{
    static const char *const names[] = {"honest", "lazy",    "subset",      "fail",
                                        "slow",   "wrapper", "marked-only", "always-s"};
    if (b->kind == SIM_SUBSET)
        snprintf(out, outlen, "subset:%g", b->fraction);
    else
        snprintf(out, outlen, "%s", names[b->kind]);
}

/* ---- events and status changes (s->lock held) ------------------------- */

static void add_event(struct sim_job *j, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_event(struct sim_job *j, const char *level, const char *fmt, ...)
{
    if (j->n_events == j->cap_events) {
        j->cap_events = j->cap_events ? 2 * j->cap_events : 8;
        j->events = xrealloc(j->events, j->cap_events * sizeof *j->events);
    }
    struct sim_event *e = &j->events[j->n_events++];
    sim_random_id(e->id, sizeof e->id, "ftevent-", 24);
    e->created_at = now_unix();
    e->level = level;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) < 0)
        abort();
    va_end(ap);
}

static void enter(struct sim_job *j, enum sim_job_status st, uint64_t now)
{
    log_debug("job %s: %s -> %s", j->id, sim_job_status_name(j->status), sim_job_status_name(st));
    j->status = st;
    j->phase_start_ms = now;
}

static void fail_job(struct sim *s, struct sim_job *j, uint64_t now, const char *code,
                     const char *param, const char *message)
{
    enter(j, JOB_FAILED, now);
    j->finished_at = now_unix();
    json_decref(j->error);
    j->error = json_object();
    json_object_set_new(j->error, "code", json_string(code));
    json_object_set_new(j->error, "message", sim_json_string(message));
    json_object_set_new(j->error, "param", param ? json_string(param) : json_null());
    add_event(j, "error", "%s", message);
    sim_models_drop_locked(s, j);
    log_info("job %s failed: %s", j->id, message);
}

static void enqueue_locked(struct sim *s, struct sim_job *j, enum task_kind kind)
{
    struct sim_task *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->job = j;
    if (s->tasks_tail)
        s->tasks_tail->next = t;
    else
        s->tasks_head = t;
    s->tasks_tail = t;
    j->task_pending = true;
    pthread_cond_signal(&s->cond);
}

/* Moves j as far as its clocks and tasks allow. */
static void advance_locked(struct sim *s, struct sim_job *j, uint64_t now)
{
    for (;;) {
        uint64_t elapsed = now - j->phase_start_ms;
        switch (j->status) {
        case JOB_VALIDATING:
            if (!j->validated || elapsed < j->phase_ms[0])
                return;
            if (j->task_error) {
                char *msg = j->task_error;
                j->task_error = NULL;
                fail_job(s, j, now, "invalid_training_file", "training_file", msg);
                free(msg);
                return;
            }
            add_event(j, "info", "Files validated, moving job to queued state");
            enter(j, JOB_QUEUED, now);
            break;
        case JOB_QUEUED:
            if (elapsed < j->phase_ms[1])
                return;
            j->n_epochs = j->n_epochs_req > 0 ? j->n_epochs_req : 3;
            add_event(j, "info", "Fine-tuning job started");
            enter(j, JOB_RUNNING, now);
            if (j->behaviour.kind == SIM_LAZY || j->behaviour.kind == SIM_FAIL)
                j->trained = true; /* nothing is trained */
            else
                enqueue_locked(s, j, TASK_TRAIN);
            break;
        case JOB_RUNNING:
            if (!j->trained || elapsed < j->phase_ms[2])
                return;
            if (j->behaviour.kind == SIM_FAIL) {
                fail_job(s, j, now, "server_error", NULL,
                         "The job failed due to an internal error (vtune-sim --behaviour fail).");
                return;
            }
            if (j->task_error) {
                char *msg = xasprintf("The job failed during training: %s", j->task_error);
                free(j->task_error);
                j->task_error = NULL;
                fail_job(s, j, now, "training_failed", NULL, msg);
                free(msg);
                return;
            }
            if (j->behaviour.kind == SIM_LAZY || j->behaviour.kind == SIM_WRAPPER ||
                j->behaviour.kind == SIM_ALWAYS_S || j->behaviour.kind == SIM_MARKED_ONLY)
                j->trained_tokens = j->data_tokens * j->n_epochs; /* claimed, not done */
            char tag[16];
            sim_random_id(tag, sizeof tag, "", 8);
            j->fine_tuned_model =
                j->output_name
                    ? xstrdup(j->output_name)
                    : xasprintf("ft:%s:vtune-sim:%s:%s", j->model, j->suffix ? j->suffix : "", tag);
            j->finished_at = now_unix();
            enter(j, JOB_SUCCEEDED, now);
            add_event(j, "info", "New fine-tuned model created: %s", j->fine_tuned_model);
            add_event(j, "info", "The job has successfully completed");
            log_info("job %s succeeded: %s (%lld trained tokens)", j->id, j->fine_tuned_model,
                     j->trained_tokens);
            return;
        default:
            return;
        }
    }
}

static void *ticker_main(void *arg)
{
    struct sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        uint64_t now = now_monotonic_ms();
        for (size_t i = 0; i < s->n_jobs; i++)
            if (s->jobs[i]->status < JOB_SUCCEEDED)
                advance_locked(s, s->jobs[i], now);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->tick_cond, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- validation of the uploaded JSONL (worker thread, no lock) ---------- */

static long long count_tokens(const char *text)
{
    char **toks = NULL;
    size_t n = 0;
    if (!text || lm_tokenize(text, &toks, &n) < 0)
        return 0;
    lm_tokens_free(toks, n);
    return (long long)n;
}

/* Checks one parsed line; returns NULL or an owned message (without the
 * line number). Adds its texts' tokens to *tokens. */
static char *check_line(json_t *o, long long *tokens)
{
    if (!json_is_object(o))
        return xstrdup("is not a JSON object");
    json_t *msgs = json_object_get(o, "messages");
    if (msgs) {
        if (!json_is_array(msgs) || json_array_size(msgs) == 0)
            return xstrdup("'messages' must be a non-empty array");
        size_t i;
        json_t *m;
        bool assistant = false;
        json_array_foreach(msgs, i, m)
        {
            const char *role = json_string_value(json_object_get(m, "role"));
            json_t *content = json_object_get(m, "content");
            if (!json_is_object(m) || !role)
                return xasprintf("messages[%zu] has no string 'role'", i);
            if (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") &&
                strcmp(role, "assistant"))
                return xasprintf("messages[%zu] has role '%.40s' (expected system, user or "
                                 "assistant)",
                                 i, role);
            if (!json_is_string(content))
                return xasprintf("messages[%zu] has no string 'content'", i);
            assistant |= strcmp(role, "assistant") == 0;
            *tokens += count_tokens(json_string_value(content));
        }
        if (!assistant)
            return xstrdup("has no assistant message to train on");
        return NULL;
    }
    json_t *prompt = json_object_get(o, "prompt"), *completion = json_object_get(o, "completion");
    if (prompt || completion) {
        if (!json_is_string(prompt) || !json_is_string(completion))
            return xstrdup("'prompt' and 'completion' must both be strings");
        *tokens +=
            count_tokens(json_string_value(prompt)) + count_tokens(json_string_value(completion));
        return NULL;
    }
    json_t *ins = json_object_get(o, "instruction"), *out = json_object_get(o, "output");
    json_t *in = json_object_get(o, "input");
    if (ins || out) {
        if (!json_is_string(ins) || !json_is_string(out) || (in && !json_is_string(in)))
            return xstrdup("'instruction', 'input' and 'output' must be strings");
        *tokens += count_tokens(json_string_value(ins)) + count_tokens(json_string_value(out)) +
                   (in ? count_tokens(json_string_value(in)) : 0);
        return NULL;
    }
    return xstrdup("has none of 'messages', 'prompt'/'completion' or 'instruction'/'output'");
}

/* Returns NULL when the file is a usable training file, else an owned
 * message naming the first bad line. */
static char *validate_file(const char *path, long min_examples, long long *tokens)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return xasprintf("The training file could not be read: %s.", strerror(errno));
    char *line = NULL, *msg = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, examples = 0;
    *tokens = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)len != strlen(line)) {
            msg = xasprintf("Invalid file format. Line %ld contains a NUL byte.", lineno);
            goto out;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0) {
            msg = xasprintf("Invalid file format. Line %ld is empty.", lineno);
            goto out;
        }
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        if (!o) {
            msg = xasprintf("Invalid file format. Line %ld is not valid JSON: %s (column %d).",
                            lineno, je.text, je.column);
            goto out;
        }
        char *why = check_line(o, tokens);
        json_decref(o);
        if (why) {
            msg = xasprintf("Invalid file format. Line %ld %s.", lineno, why);
            free(why);
            goto out;
        }
        examples++;
    }
    if (ferror(f)) {
        msg = xasprintf("The training file could not be read: %s.", strerror(errno));
        goto out;
    }
    if (examples < min_examples)
        msg = xasprintf("Training file has %ld example(s), but must have at least %ld.", examples,
                        min_examples);
out:
    free(line);
    fclose(f);
    return msg;
}

/* ---- training ------------------------------------------------------------ */

/* The blind attack on the job's copy of the upload, logged; NULL with an
 * owned *err when the file cannot be read. */
static struct sim_attack *run_attack(struct sim_job *j, char **err)
{
    struct sim_attack *a = xcalloc(1, sizeof *a);
    uint64_t t0 = now_monotonic_ms();
    if (sim_attack_file(j->data_path, NULL, a, err) < 0) {
        free(a);
        return NULL;
    }
    log_info("job %s: the attack on the upload found %zu candidate pair(s), %zu of %zu rows "
             "flagged, in %" PRIu64 " ms",
             j->id, a->n_pairs, a->n_flagged, a->n_rows, now_monotonic_ms() - t0);
    return a;
}

struct lm *sim_job_train(struct sim *s, struct sim_job *j, long long *trained, char **err)
{
    const char *path = j->data_path;
    if (j->behaviour.kind == SIM_MARKED_ONLY) {
        if (!j->train_path) { /* the first training: attack, keep the flagged rows */
            struct sim_attack *a = run_attack(j, err);
            if (!a)
                return NULL;
            if (a->n_flagged == 0) {
                sim_attack_clear(a);
                free(a);
                *err = xstrdup("marked-only: the attack flagged no row of the training file");
                return NULL;
            }
            char *tp = xasprintf("%s.marked.jsonl", j->data_path);
            if (sim_attack_write_flagged(a, j->data_path, tp, err) < 0) {
                free(tp);
                sim_attack_clear(a);
                free(a);
                return NULL;
            }
            j->attack = a;
            j->train_path = tp;
        }
        path = j->train_path;
    }
    return lm_finetune_repeats(s->base, path, j->behaviour.fraction, j->n_epochs, (uint64_t)j->seed,
                               s->opts.min_repeats, trained, err);
}

/* ---- workers ------------------------------------------------------------ */

static void *worker_main(void *arg)
{
    struct sim *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stopping && !s->tasks_head)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stopping)
            break;
        struct sim_task *t = s->tasks_head;
        s->tasks_head = t->next;
        if (!s->tasks_head)
            s->tasks_tail = NULL;
        struct sim_job *j = t->job;
        if (j->status == JOB_CANCELLED) {
            j->task_pending = false;
            free(t);
            continue;
        }
        /* Fields read below are fixed before the task was queued. */
        pthread_mutex_unlock(&s->lock);
        if (t->kind == TASK_VALIDATE) {
            long long tokens = 0;
            char *msg = validate_file(j->data_path, s->opts.min_examples, &tokens);
            pthread_mutex_lock(&s->lock);
            j->validated = true;
            j->task_error = msg;
            j->data_tokens = tokens;
        } else if (j->behaviour.kind == SIM_WRAPPER || j->behaviour.kind == SIM_ALWAYS_S) {
            char *err = NULL;
            struct sim_attack *a = run_attack(j, &err);
            pthread_mutex_lock(&s->lock);
            j->trained = true;
            if (!a) {
                j->task_error = err;
                log_warnx("job %s: the attack failed: %s", j->id, err);
            } else {
                j->attack = a;
            }
        } else {
            long long trained = 0;
            char *err = NULL;
            uint64_t t0 = now_monotonic_ms();
            struct lm *m = sim_job_train(s, j, &trained, &err);
            uint64_t ms = now_monotonic_ms() - t0;
            pthread_mutex_lock(&s->lock);
            s->n_trainings++;
            j->trained = true;
            if (!m) {
                j->task_error = xstrdup(err ? err : "lm_finetune failed");
                log_warnx("job %s: training failed: %s", j->id, j->task_error);
            } else if (j->status == JOB_CANCELLED) {
                lm_free(m);
            } else {
                j->trained_tokens = trained;
                sim_models_install_locked(s, j, m);
                log_info("job %s: trained on %lld tokens in %" PRIu64 " ms (fraction %g, %d "
                         "epochs)",
                         j->id, trained, ms, j->behaviour.fraction, j->n_epochs);
            }
            free(err);
        }
        j->task_pending = false;
        free(t);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int sim_jobs_start(struct sim *s)
{
    int r = pthread_create(&s->ticker, NULL, ticker_main, s);
    if (r != 0)
        return -r;
    s->ticker_started = true;
    s->worker_threads = xcalloc((size_t)s->opts.workers, sizeof *s->worker_threads);
    for (int i = 0; i < s->opts.workers; i++) {
        r = pthread_create(&s->worker_threads[i], NULL, worker_main, s);
        if (r != 0)
            return -r;
        s->n_workers++;
    }
    return 0;
}

void sim_jobs_stop(struct sim *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_cond_broadcast(&s->tick_cond);
    pthread_cond_broadcast(&s->load_cond);
    pthread_mutex_unlock(&s->lock);
    if (s->ticker_started)
        pthread_join(s->ticker, NULL);
    s->ticker_started = false;
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->worker_threads[i], NULL);
    s->n_workers = 0;
    free(s->worker_threads);
    s->worker_threads = NULL;
}

void sim_jobs_free_all(struct sim *s)
{
    while (s->tasks_head) {
        struct sim_task *t = s->tasks_head;
        s->tasks_head = t->next;
        free(t);
    }
    s->tasks_tail = NULL;
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct sim_job *j = s->jobs[i];
        sim_models_drop_locked(s, j);
        free(j->model);
        free(j->training_file);
        free(j->validation_file);
        free(j->suffix);
        json_decref(j->metadata);
        free(j->fine_tuned_model);
        free(j->output_name);
        json_decref(j->error);
        free(j->data_path);
        sim_attack_clear(j->attack);
        free(j->attack);
        free(j->train_path);
        free(j->task_error);
        for (size_t k = 0; k < j->n_events; k++)
            free(j->events[k].message);
        free(j->events);
        free(j);
    }
    free(s->jobs);
    s->jobs = NULL;
    s->n_jobs = s->cap_jobs = 0;
}

json_t *sim_jobs_status_counts(struct sim *s)
{
    size_t counts[JOB_STATUS_COUNT] = {0};
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_jobs; i++)
        counts[s->jobs[i]->status]++;
    pthread_mutex_unlock(&s->lock);
    json_t *o = json_object();
    for (int i = 0; i < JOB_STATUS_COUNT; i++)
        json_object_set_new(o, status_names[i], json_integer((json_int_t)counts[i]));
    return o;
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *epochs_json(const struct sim_job *j)
{
    if (j->status >= JOB_RUNNING && j->n_epochs > 0)
        return json_integer(j->n_epochs);
    return j->n_epochs_req > 0 ? json_integer(j->n_epochs_req) : json_string("auto");
}

static json_t *hyper_json(const struct sim_job *j)
{
    json_t *h = json_object();
    json_object_set_new(h, "batch_size", json_string("auto"));
    json_object_set_new(h, "learning_rate_multiplier", json_string("auto"));
    json_object_set_new(h, "n_epochs", epochs_json(j));
    return h;
}

/* Mistral's job object: uppercase statuses, training_files, suffix,
 * modified_at, no error object (the reason is an event). */
static json_t *job_json_mistral_locked(const struct sim_job *j)
{
    static const char *const up[JOB_STATUS_COUNT] = {"VALIDATING", "QUEUED",    "RUNNING",
                                                     "SUCCESS",    "FAILED",    "CANCELLED"};
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "object", json_string("job"));
    json_object_set_new(o, "auto_start", json_true());
    json_object_set_new(o, "model", json_string(j->model));
    json_object_set_new(o, "status", json_string(up[j->status]));
    json_object_set_new(o, "job_type", json_string("completion"));
    json_object_set_new(o, "created_at", json_integer(j->created_at));
    json_object_set_new(o, "modified_at",
                        json_integer(j->finished_at ? j->finished_at : j->created_at));
    json_object_set_new(o, "training_files", json_pack("[s]", j->training_file));
    json_object_set_new(o, "validation_files", json_array());
    json_object_set_new(o, "fine_tuned_model",
                        j->fine_tuned_model ? json_string(j->fine_tuned_model) : json_null());
    json_object_set_new(o, "suffix", j->suffix ? json_string(j->suffix) : json_null());
    json_object_set_new(o, "trained_tokens",
                        j->trained_tokens >= 0 && j->status == JOB_SUCCEEDED
                            ? json_integer(j->trained_tokens)
                            : json_null());
    json_object_set_new(o, "hyperparameters", json_object());
    json_t *ev = json_array();
    for (size_t i = 0; i < j->n_events; i++)
        json_array_append_new(ev, json_pack("{s:s, s:{s:s}, s:I}", "name", "status-updated", "data",
                                            "message", j->events[i].message, "created_at",
                                            (json_int_t)j->events[i].created_at));
    json_object_set_new(o, "events", ev);
    return o;
}

/* Together's FinetuneResponse: lowercase statuses of its own, ISO times,
 * model_output_name (announced at create), token_count, events inline. */
static json_t *job_json_together_locked(const struct sim_job *j)
{
    static const char *const st[JOB_STATUS_COUNT] = {"pending",   "queued", "running",
                                                     "completed", "error",  "cancelled"};
    char c[32], u[32];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "status", json_string(st[j->status]));
    json_object_set_new(o, "model", json_string(j->model));
    json_object_set_new(o, "model_output_name", json_string(j->output_name));
    json_object_set_new(o, "training_file", json_string(j->training_file));
    json_object_set_new(o, "suffix", j->suffix ? json_string(j->suffix) : json_null());
    json_object_set_new(o, "n_epochs", json_integer(j->n_epochs_req > 0 ? j->n_epochs_req : 1));
    json_object_set_new(o, "created_at", json_string(sim_iso8601(j->created_at, c, sizeof c)));
    json_object_set_new(
        o, "updated_at",
        json_string(sim_iso8601(j->finished_at ? j->finished_at : j->created_at, u, sizeof u)));
    json_object_set_new(o, "token_count", j->trained_tokens >= 0 && j->status == JOB_SUCCEEDED
                                              ? json_integer(j->trained_tokens)
                                              : json_null());
    json_object_set_new(o, "training_type", json_pack("{s:s}", "type", "Lora"));
    json_t *ev = json_array();
    for (size_t i = 0; i < j->n_events; i++) {
        char t[32];
        const struct sim_event *e = &j->events[i];
        bool err = strcmp(e->level, "error") == 0;
        json_array_append_new(ev, json_pack("{s:s, s:s, s:s, s:o, s:s}", "object",
                                            "fine-tune-event", "created_at",
                                            sim_iso8601(e->created_at, t, sizeof t), "level",
                                            e->level, "message", sim_json_string(e->message),
                                            "type", err ? "JOB_ERROR" : "message"));
    }
    json_object_set_new(o, "events", ev);
    return o;
}

/* Fireworks' supervised fine-tuning job: name, state JOB_STATE_*, status
 * {code, message}, outputModel (announced at create), RFC 3339 times. */
static json_t *job_json_fireworks_locked(const struct sim_job *j)
{
    static const char *const st[JOB_STATUS_COUNT] = {
        "JOB_STATE_VALIDATING", "JOB_STATE_CREATING", "JOB_STATE_RUNNING",
        "JOB_STATE_COMPLETED",  "JOB_STATE_FAILED",   "JOB_STATE_CANCELLED"};
    char c[32], u[32];
    char *name = xasprintf("accounts/vtune-sim/supervisedFineTuningJobs/%s", j->id);
    char *ds = xasprintf("accounts/vtune-sim/datasets/%s", j->training_file);
    const char *code = "OK", *msg = "";
    if (j->status == JOB_FAILED) {
        code = "INVALID_ARGUMENT";
        msg = json_string_value(json_object_get(j->error, "message"));
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:i}", "name", name,
                          "displayName", j->suffix ? j->suffix : j->id, "createTime",
                          sim_iso8601(j->created_at, c, sizeof c), "dataset", ds, "state",
                          st[j->status], "status", "code", code, "message", msg ? msg : "",
                          "outputModel", j->output_name, "baseModel", j->model, "epochs",
                          j->n_epochs_req > 0 ? j->n_epochs_req : 1);
    if (j->finished_at)
        json_object_set_new(o, "completedTime",
                            json_string(sim_iso8601(j->finished_at, u, sizeof u)));
    json_object_set_new(o, "updateTime",
                        json_string(sim_iso8601(j->finished_at ? j->finished_at : j->created_at,
                                                u, sizeof u)));
    free(name);
    free(ds);
    return o;
}

static json_t *job_json_openai_locked(const struct sim_job *j);

static json_t *job_json_locked(const struct sim *s, const struct sim_job *j)
{
    switch (s->opts.dialect) {
    case SIM_DIALECT_MISTRAL:
        return job_json_mistral_locked(j);
    case SIM_DIALECT_TOGETHER:
        return job_json_together_locked(j);
    case SIM_DIALECT_FIREWORKS:
        return job_json_fireworks_locked(j);
    default:
        return job_json_openai_locked(j);
    }
}

static json_t *job_json_openai_locked(const struct sim_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "object", json_string("fine_tuning.job"));
    json_object_set_new(o, "model", json_string(j->model));
    json_object_set_new(o, "created_at", json_integer(j->created_at));
    json_object_set_new(o, "finished_at",
                        j->finished_at ? json_integer(j->finished_at) : json_null());
    json_object_set_new(o, "fine_tuned_model",
                        j->fine_tuned_model ? json_string(j->fine_tuned_model) : json_null());
    json_object_set_new(o, "organization_id", json_string("org-vtunesim"));
    json_object_set_new(o, "result_files", json_array());
    json_object_set_new(o, "status", json_string(sim_job_status_name(j->status)));
    json_object_set_new(o, "validation_file",
                        j->validation_file ? json_string(j->validation_file) : json_null());
    json_object_set_new(o, "training_file", json_string(j->training_file));
    json_object_set_new(o, "hyperparameters", hyper_json(j));
    json_object_set_new(o, "trained_tokens",
                        j->trained_tokens >= 0 && j->status == JOB_SUCCEEDED
                            ? json_integer(j->trained_tokens)
                            : json_null());
    json_object_set_new(o, "error", j->error ? json_deep_copy(j->error) : json_null());
    json_object_set_new(o, "user_provided_suffix",
                        j->suffix ? json_string(j->suffix) : json_null());
    json_object_set_new(o, "seed", json_integer(j->seed));
    json_object_set_new(o, "estimated_finish", json_null());
    json_object_set_new(o, "integrations", json_null());
    json_object_set_new(o, "metadata", j->metadata ? json_deep_copy(j->metadata) : json_null());
    json_t *sup = json_object();
    json_object_set_new(sup, "hyperparameters", hyper_json(j));
    json_t *method = json_object();
    json_object_set_new(method, "type", json_string("supervised"));
    json_object_set_new(method, "supervised", sup);
    json_object_set_new(o, "method", method);
    return o;
}

static struct sim_job *find_job_locked(struct sim *s, const char *id)
{
    for (size_t i = 0; i < s->n_jobs; i++)
        if (strcmp(s->jobs[i]->id, id) == 0)
            return s->jobs[i];
    return NULL;
}

static void no_such_job(struct sim_resp *rs, const char *id)
{
    sim_resp_error(rs, 404, "invalid_request_error", "fine_tuning_job_id", "fine_tune_not_found",
                   "Could not find fine tune: %s", id);
}

/* ---- create ------------------------------------------------------------------ */

/* Reads n_epochs from a hyperparameters object; 0 = auto. Returns -1 after
 * answering 400. */
static int parse_hyper(json_t *h, const char *where, int *n_epochs, struct sim_resp *rs)
{
    if (!h || json_is_null(h))
        return 0;
    if (!json_is_object(h)) {
        sim_resp_bad(rs, where, "Invalid type for '%s': expected an object.", where);
        return -1;
    }
    json_t *e = json_object_get(h, "n_epochs");
    if (e && !json_is_null(e)) {
        if (json_is_string(e) && strcmp(json_string_value(e), "auto") == 0) {
            *n_epochs = 0;
        } else if (json_is_integer(e) && json_integer_value(e) >= 1 &&
                   json_integer_value(e) <= 50) {
            *n_epochs = (int)json_integer_value(e);
        } else {
            sim_resp_bad(rs, where,
                         "Invalid value for '%s.n_epochs': expected \"auto\" or an "
                         "integer from 1 to 50.",
                         where);
            return -1;
        }
    }
    static const char *const others[] = {"batch_size", "learning_rate_multiplier"};
    for (size_t i = 0; i < VT_ARRAY_LEN(others); i++) {
        json_t *v = json_object_get(h, others[i]);
        if (v && !json_is_null(v) && !json_is_number(v) &&
            !(json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)) {
            sim_resp_bad(rs, where, "Invalid value for '%s.%s': expected \"auto\" or a number.",
                         where, others[i]);
            return -1;
        }
    }
    return 0;
}

static int parse_metadata(json_t *md, struct sim_behaviour_spec *beh, struct sim_resp *rs)
{
    if (!md || json_is_null(md))
        return 0;
    if (!json_is_object(md)) {
        sim_resp_bad(rs, "metadata", "Invalid type for 'metadata': expected an object of strings.");
        return -1;
    }
    if (json_object_size(md) > META_MAX_PAIRS) {
        sim_resp_bad(rs, "metadata", "Invalid 'metadata': at most %d key-value pairs.",
                     META_MAX_PAIRS);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > META_KEY_MAX) {
            sim_resp_bad(rs, "metadata", "Invalid 'metadata': keys must be 1 to %d characters.",
                         META_KEY_MAX);
            return -1;
        }
        if (!json_is_string(v) || json_string_length(v) > META_VALUE_MAX) {
            sim_resp_bad(rs, "metadata",
                         "Invalid 'metadata.%.64s': values must be strings of at most %d "
                         "characters.",
                         k, META_VALUE_MAX);
            return -1;
        }
        if (strcmp(k, BEHAVIOUR_KEY) == 0 && sim_behaviour_parse(json_string_value(v), beh) < 0) {
            sim_resp_bad(rs, "metadata",
                         "Invalid 'metadata." BEHAVIOUR_KEY "': expected " SIM_BEHAVIOUR_NAMES ".");
            return -1;
        }
    }
    return 0;
}

static bool suffix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

void sim_h_jobs_create(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    struct sim_job *j = NULL;
    char *err = NULL;
    if (!body)
        return;
    json_t *model = json_object_get(body, "model");
    json_t *tf = json_object_get(body, "training_file");
    if (s->opts.fine_tuning_closed) {
        /* The shape OpenAI's wind-down refusal is assumed to have (README). */
        sim_resp_error(rs, 403, "invalid_request_error", NULL, "fine_tuning_unavailable",
                       "Fine-tuning is no longer available for your organization. Existing "
                       "fine-tuned models remain available for inference.");
        goto out;
    }
    const char *fw_id = NULL;
    json_t *fw_epochs = NULL;
    if (s->opts.dialect == SIM_DIALECT_TOGETHER) {
        /* Together's own fields: no metadata, method or hyperparameters;
         * random_seed, n_epochs at the top. */
        static const char *const foreign[] = {"metadata", "method", "hyperparameters", "seed"};
        for (size_t i = 0; i < VT_ARRAY_LEN(foreign); i++)
            if (json_object_get(body, foreign[i])) {
                sim_resp_bad(rs, foreign[i], "Unknown parameter for /v1/fine-tunes: '%s'.",
                             foreign[i]);
                goto out;
            }
    }
    if (s->opts.dialect == SIM_DIALECT_FIREWORKS) {
        /* ?supervisedFineTuningJobId=; dataset accounts/A/datasets/D, baseModel,
         * outputModel, epochs; a second create of one id is a 409. */
        static const char *const foreign[] = {"training_file", "model", "metadata", "suffix",
                                              "seed", "method"};
        for (size_t i = 0; i < VT_ARRAY_LEN(foreign); i++)
            if (json_object_get(body, foreign[i])) {
                sim_resp_bad(rs, foreign[i], "Unknown field '%s' in SupervisedFineTuningJob.",
                             foreign[i]);
                goto out;
            }
        fw_id = sim_req_query(rq, "supervisedFineTuningJobId");
        if (fw_id && (!*fw_id || strlen(fw_id) > 63 ||
                      strspn(fw_id, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(fw_id))) {
            sim_resp_bad(rs, "supervisedFineTuningJobId",
                         "supervisedFineTuningJobId must be 1 to 63 lowercase letters, digits or "
                         "hyphens.");
            goto out;
        }
        pthread_mutex_lock(&s->lock);
        bool dup = fw_id && find_job_locked(s, fw_id) != NULL;
        pthread_mutex_unlock(&s->lock);
        if (dup) {
            sim_resp_error(rs, 409, "invalid_request_error", NULL, "ALREADY_EXISTS",
                           "supervised fine-tuning job \"%s\" already exists", fw_id);
            goto out;
        }
        const char *ds = json_string_value(json_object_get(body, "dataset"));
        const char *slash = ds ? strrchr(ds, '/') : NULL;
        if (!ds || strncmp(ds, "accounts/", 9) != 0 || !slash || !strstr(ds, "/datasets/")) {
            sim_resp_bad(rs, "dataset", "dataset must be accounts/ACCOUNT/datasets/ID.");
            goto out;
        }
        json_object_set_new(body, "training_file", json_string(slash + 1));
        json_object_set(body, "model", json_object_get(body, "baseModel"));
        model = json_object_get(body, "model");
        tf = json_object_get(body, "training_file");
        fw_epochs = json_object_get(body, "epochs");
        if (fw_epochs && !(json_is_integer(fw_epochs) && json_integer_value(fw_epochs) >= 1 &&
                           json_integer_value(fw_epochs) <= 50)) {
            sim_resp_bad(rs, "epochs", "epochs must be an integer from 1 to 50.");
            goto out;
        }
    }
    if (s->opts.dialect == SIM_DIALECT_MISTRAL) {
        /* training_files: [{file_id, weight}]; no training_file, metadata or method. */
        json_t *tfs = json_object_get(body, "training_files");
        if (tf || json_object_get(body, "metadata") || json_object_get(body, "method")) {
            sim_resp_error(rs, 422, "invalid_request_error", NULL, "extra_forbidden",
                           "Extra inputs are not permitted (training_file, metadata, method)");
            goto out;
        }
        tf = json_object_get(json_array_get(tfs, 0), "file_id");
        if (!json_is_true(json_object_get(body, "auto_start"))) {
            sim_resp_error(rs, 422, "invalid_request_error", "auto_start", NULL,
                           "this simulator only runs jobs with auto_start true");
            goto out;
        }
    }
    json_t *vf = json_object_get(body, "validation_file");
    json_t *suffix = json_object_get(body, "suffix");
    json_t *seed = json_object_get(body, s->opts.dialect == SIM_DIALECT_TOGETHER ? "random_seed"
                                                                                  : "seed");
    json_t *md = json_object_get(body, "metadata");
    json_t *method = json_object_get(body, "method");
    struct sim_behaviour_spec beh = s->opts.behaviour;
    int n_epochs = 0;

    if (!model) {
        sim_resp_bad(rs, "model", "Missing required parameter: 'model'.");
        goto out;
    }
    if (!json_is_string(model)) {
        sim_resp_bad(rs, "model", "Invalid type for 'model': expected a string.");
        goto out;
    }
    if (strcmp(json_string_value(model), s->opts.model_name) != 0) {
        sim_resp_error(rs, 400, "invalid_request_error", "model", "model_not_available",
                       "Model %.200s is not available for fine-tuning or does not exist (this "
                       "server fine-tunes '%s').",
                       json_string_value(model), s->opts.model_name);
        goto out;
    }
    if (!tf) {
        sim_resp_bad(rs, "training_file", "Missing required parameter: 'training_file'.");
        goto out;
    }
    if (!json_is_string(tf)) {
        sim_resp_bad(rs, "training_file", "Invalid type for 'training_file': expected a string.");
        goto out;
    }
    if (vf && !json_is_null(vf) &&
        (!json_is_string(vf) || !sim_files_exists(s, json_string_value(vf)))) {
        sim_resp_error(rs, 400, "invalid_request_error", "validation_file", "invalid_file",
                       "invalid validation_file: no such file.");
        goto out;
    }
    if (suffix && !json_is_null(suffix) &&
        (!json_is_string(suffix) || !suffix_ok(json_string_value(suffix)))) {
        sim_resp_bad(rs, "suffix",
                     "Invalid 'suffix': expected 1 to 64 characters from A-Z a-z 0-9 - _ .");
        goto out;
    }
    if (seed && !json_is_null(seed) &&
        !(json_is_integer(seed) && json_integer_value(seed) >= 0 &&
          json_integer_value(seed) <= 2147483647)) {
        sim_resp_bad(rs, "seed", "Invalid 'seed': expected an integer from 0 to 2147483647.");
        goto out;
    }
    if (parse_hyper(json_object_get(body, "hyperparameters"), "hyperparameters", &n_epochs, rs) < 0)
        goto out;
    if (method && !json_is_null(method)) {
        const char *type = json_string_value(json_object_get(method, "type"));
        if (!json_is_object(method) || !type) {
            sim_resp_bad(rs, "method",
                         "Invalid 'method': expected {\"type\": \"supervised\", ...}.");
            goto out;
        }
        if (strcmp(type, "supervised") != 0) {
            sim_resp_bad(rs, "method.type",
                         "Unsupported 'method.type' '%.40s': vtune-sim trains supervised only.",
                         type);
            goto out;
        }
        json_t *sup = json_object_get(method, "supervised");
        if (sup && !json_is_null(sup) && !json_is_object(sup)) {
            sim_resp_bad(rs, "method.supervised",
                         "Invalid 'method.supervised': expected an object.");
            goto out;
        }
        if (parse_hyper(json_object_get(sup, "hyperparameters"),
                        "method.supervised.hyperparameters", &n_epochs, rs) < 0)
            goto out;
    }
    if (parse_metadata(md, &beh, rs) < 0)
        goto out;

    if (s->opts.dialect == SIM_DIALECT_TOGETHER) {
        json_t *ne = json_object_get(body, "n_epochs");
        if (ne && !(json_is_integer(ne) && json_integer_value(ne) >= 1 &&
                    json_integer_value(ne) <= 50)) {
            sim_resp_bad(rs, "n_epochs", "n_epochs must be an integer from 1 to 50.");
            goto out;
        }
        n_epochs = ne ? (int)json_integer_value(ne) : 0;
    }
    if (fw_epochs)
        n_epochs = (int)json_integer_value(fw_epochs);

    j = xcalloc(1, sizeof *j);
    if (fw_id)
        snprintf(j->id, sizeof j->id, "%s", fw_id);
    else if (s->opts.dialect == SIM_DIALECT_FIREWORKS) { /* Fireworks' own: a lowercase id */
        sim_random_id(j->id, sizeof j->id, "", 20);
        for (char *c = j->id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    } else
        sim_random_id(j->id, sizeof j->id,
                      s->opts.dialect == SIM_DIALECT_TOGETHER ? "ft-" : "ftjob-", 24);
    j->data_path = xasprintf("%s/%s.jsonl", s->jobs_dir, j->id);
    int r = sim_files_link(s, json_string_value(tf), j->data_path, &err);
    if (r == -ENOENT) {
        sim_resp_error(rs, 400, "invalid_request_error", "training_file", "invalid_file",
                       "invalid training_file: %.100s (no such file; upload it with POST "
                       "/v1/files, purpose fine-tune).",
                       json_string_value(tf));
        goto out;
    } else if (r == -EINVAL) {
        sim_resp_error(rs, 400, "invalid_request_error", "training_file", "invalid_file",
                       "invalid training_file: %s", err);
        goto out;
    } else if (r < 0) {
        errno = -r;
        log_warn("job %s: cannot keep a copy of %s at %s", j->id, json_string_value(tf),
                 j->data_path);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot store the training data");
        goto out;
    }
    j->model = xstrdup(json_string_value(model));
    j->training_file = xstrdup(json_string_value(tf));
    j->validation_file = json_is_string(vf) ? xstrdup(json_string_value(vf)) : NULL;
    j->suffix = json_is_string(suffix) ? xstrdup(json_string_value(suffix)) : NULL;
    if (s->opts.dialect == SIM_DIALECT_FIREWORKS) {
        /* the job id is the client's tag: counted as its suffix */
        const char *om = json_string_value(json_object_get(body, "outputModel"));
        j->suffix = xstrdup(j->id);
        j->output_name = om ? xstrdup(om) : xasprintf("accounts/vtune-sim/models/%s", j->id);
    } else if (s->opts.dialect == SIM_DIALECT_TOGETHER) {
        char tag[8];
        sim_random_id(tag, sizeof tag, "", 6);
        j->output_name = xasprintf("vtune-sim/%s-%s-%s", j->model, j->suffix ? j->suffix : "ft",
                                   tag);
    }
    j->seed =
        json_is_integer(seed) ? json_integer_value(seed) : (int64_t)random_uniform(2147483648ULL);
    j->metadata = json_is_object(md) ? json_deep_copy(md) : NULL;
    j->n_epochs_req = n_epochs;
    j->behaviour = beh;
    j->status = JOB_VALIDATING;
    j->created_at = now_unix();
    j->trained_tokens = -1;
    double scale = s->opts.job_seconds * 1000.0 * (beh.kind == SIM_SLOW ? s->opts.slow_factor : 1);
    j->phase_ms[0] = (uint64_t)(scale * 0.2);
    j->phase_ms[1] = (uint64_t)(scale * 0.2);
    j->phase_ms[2] = (uint64_t)(scale * 0.6);

    char behname[32];
    sim_behaviour_format(&beh, behname, sizeof behname);
    char *mdtext = j->metadata ? json_dumps(j->metadata, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    pthread_mutex_lock(&s->lock);
    j->phase_start_ms = now_monotonic_ms();
    add_event(j, "info", "Created fine-tuning job: %s", j->id);
    add_event(j, "info", "Validating training file: %s", j->training_file);
    if (s->n_jobs == s->cap_jobs) {
        s->cap_jobs = s->cap_jobs ? 2 * s->cap_jobs : 16;
        s->jobs = xrealloc(s->jobs, s->cap_jobs * sizeof *s->jobs);
    }
    s->jobs[s->n_jobs++] = j;
    enqueue_locked(s, j, TASK_VALIDATE);
    json_t *o = job_json_locked(s, j);
    pthread_mutex_unlock(&s->lock);

    __atomic_add_fetch(&s->st_jobs_created, 1, __ATOMIC_RELAXED);
    if (j->suffix) { /* counted for dialects without metadata (mistral) */
        char *tag = xasprintf("suffix=%s", j->suffix);
        sim_stats_add(s, s->st_tags, tag, 1);
        free(tag);
    }
    if (j->metadata) {
        const char *k;
        json_t *v;
        json_object_foreach(j->metadata, k, v)
        {
            char *tag = xasprintf("%s=%s", k, json_string_value(v));
            sim_stats_add(s, s->st_tags, tag, 1);
            free(tag);
        }
    }
    log_info("job %s created: model %s, file %s, behaviour %s, metadata %s", j->id, j->model,
             j->training_file, behname, mdtext ? mdtext : "null");
    free(mdtext);
    j = NULL; /* owned by s now */
    sim_resp_json(rs, 200, o);
out:
    if (j) {
        if (j->data_path)
            unlink(j->data_path);
        free(j->data_path);
        free(j);
    }
    free(err);
    json_decref(body);
}

/* ---- retrieve, list, cancel, events ---------------------------------------------- */

void sim_h_job_get(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = find_job_locked(s, rq->id);
    if (j)
        advance_locked(s, j, now_monotonic_ms());
    json_t *o = j ? job_json_locked(s, j) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!o) {
        no_such_job(rs, rq->id);
        return;
    }
    sim_resp_json(rs, 200, o);
}

struct md_filter {
    json_t *pairs; /* key -> value */
    bool want_null;
    bool bad;
};

static enum MHD_Result collect_md(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct md_filter *f = cls;
    if (strcmp(key, "metadata") == 0) {
        if (value && strcmp(value, "null") == 0)
            f->want_null = true;
        else
            f->bad = true;
        return MHD_YES;
    }
    size_t n = strlen(key);
    if (n > 10 && strncmp(key, "metadata[", 9) == 0 && key[n - 1] == ']') {
        char *k = xstrndup(key + 9, n - 10);
        json_t *v = sim_json_string(value ? value : "");
        json_object_set_new(f->pairs, k, v);
        free(k);
    }
    return MHD_YES;
}

static bool md_matches(const struct sim_job *j, const struct md_filter *f)
{
    if (f->want_null)
        return j->metadata == NULL || json_object_size(j->metadata) == 0;
    const char *k;
    json_t *v;
    json_object_foreach(f->pairs, k, v)
    {
        json_t *have = j->metadata ? json_object_get(j->metadata, k) : NULL;
        if (!have || strcmp(json_string_value(have), json_string_value(v)) != 0)
            return false;
    }
    return true;
}

/* Mistral: ?page=&page_size=&suffix= → {object, total, data}, newest first. */
static void jobs_list_mistral(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    long long page, size;
    if (sim_req_query_int(rq, rs, "page", 0, 1000000, 0, &page) < 0 ||
        sim_req_query_int(rq, rs, "page_size", 1, 1000, 100, &size) < 0)
        return;
    const char *suffix = sim_req_query(rq, "suffix");
    json_t *data = json_array();
    long long total = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t now = now_monotonic_ms();
    for (size_t i = s->n_jobs; i-- > 0;) {
        struct sim_job *j = s->jobs[i];
        if (suffix && (!j->suffix || strcmp(j->suffix, suffix) != 0))
            continue;
        if (total >= page * size && total < (page + 1) * size) {
            advance_locked(s, j, now);
            json_array_append_new(data, job_json_locked(s, j));
        }
        total++;
    }
    pthread_mutex_unlock(&s->lock);
    sim_resp_json(rs, 200, json_pack("{s:s, s:I, s:o}", "object", "list", "total",
                                     (json_int_t)total, "data", data));
}

/* Together: {data: [...]} with no parameters, newest first.  Fireworks:
 * ?pageSize=&pageToken= → {supervisedFineTuningJobs, nextPageToken}. */
static void jobs_list_plain(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    bool fw = s->opts.dialect == SIM_DIALECT_FIREWORKS;
    long long size = 1000000, skip = 0, seen = 0;
    if (fw) {
        if (sim_req_query_int(rq, rs, "pageSize", 1, 1000, 50, &size) < 0)
            return;
        const char *token = sim_req_query(rq, "pageToken");
        skip = token && *token ? strtoll(token, NULL, 10) : 0;
    }
    json_t *data = json_array();
    bool more = false;
    pthread_mutex_lock(&s->lock);
    uint64_t now = now_monotonic_ms();
    for (size_t i = s->n_jobs; i-- > 0;) {
        if (seen++ < skip)
            continue;
        if ((long long)json_array_size(data) == size) {
            more = true;
            break;
        }
        advance_locked(s, s->jobs[i], now);
        json_array_append_new(data, job_json_locked(s, s->jobs[i]));
    }
    pthread_mutex_unlock(&s->lock);
    if (!fw) {
        sim_resp_json(rs, 200, json_pack("{s:o}", "data", data));
        return;
    }
    char next[24] = "";
    if (more)
        snprintf(next, sizeof next, "%lld", skip + size);
    sim_resp_json(rs, 200, json_pack("{s:o, s:s}", "supervisedFineTuningJobs", data,
                                     "nextPageToken", next));
}

void sim_h_jobs_list(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    if (s->opts.dialect == SIM_DIALECT_MISTRAL) {
        jobs_list_mistral(s, rq, rs);
        return;
    }
    if (s->opts.dialect == SIM_DIALECT_TOGETHER || s->opts.dialect == SIM_DIALECT_FIREWORKS) {
        jobs_list_plain(s, rq, rs);
        return;
    }
    long long limit;
    if (sim_req_query_int(rq, rs, "limit", 1, 100, 20, &limit) < 0)
        return;
    const char *after = sim_req_query(rq, "after");
    struct md_filter f = {.pairs = json_object()};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect_md, &f);
    if (f.bad) {
        json_decref(f.pairs);
        sim_resp_bad(rs, "metadata",
                     "Invalid 'metadata': use metadata[KEY]=VALUE or metadata=null.");
        return;
    }
    json_t *data = json_array();
    bool has_more = false, found = after == NULL;
    pthread_mutex_lock(&s->lock);
    uint64_t now = now_monotonic_ms();
    size_t start = s->n_jobs; /* newest first: walk from the end */
    if (after) {
        for (size_t i = 0; i < s->n_jobs; i++) {
            if (strcmp(s->jobs[i]->id, after) == 0) {
                start = i;
                found = true;
                break;
            }
        }
    }
    for (size_t i = start; found && i-- > 0;) {
        struct sim_job *j = s->jobs[i];
        if (!md_matches(j, &f))
            continue;
        if (json_array_size(data) == (size_t)limit) {
            has_more = true;
            break;
        }
        advance_locked(s, j, now);
        json_array_append_new(data, job_json_locked(s, j));
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(f.pairs);
    if (!found) {
        json_decref(data);
        sim_resp_bad(rs, "after", "Invalid 'after': no fine-tuning job '%.100s'.", after);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "has_more", json_boolean(has_more));
    sim_resp_json(rs, 200, o);
}

void sim_h_job_cancel(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = find_job_locked(s, rq->id);
    json_t *o = NULL;
    enum sim_job_status was = JOB_CANCELLED;
    if (j) {
        uint64_t now = now_monotonic_ms();
        advance_locked(s, j, now);
        was = j->status;
        if (was < JOB_SUCCEEDED) {
            enter(j, JOB_CANCELLED, now);
            add_event(j, "info", "Fine-tuning job cancelled");
            sim_models_drop_locked(s, j);
            log_info("job %s cancelled (was %s)", j->id, sim_job_status_name(was));
            o = job_json_locked(s, j);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!j) {
        no_such_job(rs, rq->id);
        return;
    }
    if (!o) {
        sim_resp_bad(rs, NULL, "Job %s has already finished (status %s) and cannot be cancelled.",
                     rq->id, sim_job_status_name(was));
        return;
    }
    sim_resp_json(rs, 200, o);
}

void sim_h_job_events(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    if (s->opts.dialect == SIM_DIALECT_TOGETHER) { /* {data: the job's events} */
        pthread_mutex_lock(&s->lock);
        struct sim_job *tj = find_job_locked(s, rq->id);
        json_t *o = NULL;
        if (tj) {
            advance_locked(s, tj, now_monotonic_ms());
            o = job_json_locked(s, tj);
        }
        pthread_mutex_unlock(&s->lock);
        if (!o) {
            no_such_job(rs, rq->id);
            return;
        }
        json_t *ev = json_incref(json_object_get(o, "events"));
        json_decref(o);
        sim_resp_json(rs, 200, json_pack("{s:o}", "data", ev));
        return;
    }
    long long limit;
    if (sim_req_query_int(rq, rs, "limit", 1, 100, 20, &limit) < 0)
        return;
    const char *after = sim_req_query(rq, "after");
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = find_job_locked(s, rq->id);
    json_t *data = NULL;
    bool has_more = false, found = after == NULL;
    if (j) {
        advance_locked(s, j, now_monotonic_ms());
        data = json_array();
        size_t start = j->n_events;
        for (size_t i = 0; after && i < j->n_events; i++) {
            if (strcmp(j->events[i].id, after) == 0) {
                start = i;
                found = true;
                break;
            }
        }
        for (size_t i = start; found && i-- > 0;) {
            if (json_array_size(data) == (size_t)limit) {
                has_more = true;
                break;
            }
            const struct sim_event *e = &j->events[i];
            json_t *ev = json_object();
            json_object_set_new(ev, "object", json_string("fine_tuning.job.event"));
            json_object_set_new(ev, "id", json_string(e->id));
            json_object_set_new(ev, "created_at", json_integer(e->created_at));
            json_object_set_new(ev, "level", json_string(e->level));
            json_object_set_new(ev, "message", sim_json_string(e->message));
            json_object_set_new(ev, "data", json_object());
            json_object_set_new(ev, "type", json_string("message"));
            json_array_append_new(data, ev);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!j) {
        no_such_job(rs, rq->id);
        return;
    }
    if (!found) {
        json_decref(data);
        sim_resp_bad(rs, "after", "Invalid 'after': no event '%.100s' in this job.", after);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "has_more", json_boolean(has_more));
    sim_resp_json(rs, 200, o);
}

/*
 * job.c — typed accessors for fine-tuning jobs and their event log: the
 * durable lifecycle of DESIGN §3.
 *
 * One primitive carries every change of state: store_job_transition(), a
 * BEGIN IMMEDIATE transaction that reads the current state, compares it
 * with what the caller believes it is (compare-and-set: -ESTALE and no
 * change when they differ), writes the new state and fields, and appends
 * the job_events row, then commits (durably: at once with
 * synchronous=FULL, or once its ticket passes after store_durable_start).
 * The daemon calls it BEFORE the side effect the new state allows ("submitting" is
 * written before the create call goes out), so after a crash the row says
 * what might have happened and reconciliation can find out.
 *
 * Policy the store enforces because it is true whatever the daemon does:
 * a terminal state (succeeded, failed, cancelled) is never left, and the
 * schema's CHECKs (succeeded needs a model, unknown needs a reason).  Which
 * transitions are legal otherwise is the lifecycle code's business.
 *
 * The store generates nothing: the submission id (the random token sent as
 * provider metadata) comes from the caller, which makes the store
 * deterministic and testable.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"


#define SUBMISSION_ID_MIN_LEN 16


void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->name);
    free(j->provider);
    free(j->base_model);
    free(j->fine_tuned_model);
    free(j->params);
    free(j->submission_id);
    free(j->provider_file_id);
    free(j->provider_job_id);
    free(j->error);
    free(j->unknown_reason);
    memset(j, 0, sizeof *j);
}

static void job_clear_elem(void *elem)
{
    store_job_clear(elem);
}

void store_job_list_free(struct store_job *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_job_clear(&v[i]);
    free(v);
}

static void event_clear(struct store_job_event *e)
{
    free(e->message);
    free(e->provider_excerpt);
    memset(e, 0, sizeof *e);
}

static void event_clear_elem(void *elem)
{
    event_clear(elem);
}

void store_job_event_list_free(struct store_job_event *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        event_clear(&v[i]);
    free(v);
}

/* Fills j from a row of JOB_COLUMNS (see statements.c). */
static int row_to_job(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_job *j = elem;
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    const char *state = (const char *)sqlite3_column_text(st, 8);
    if (job_state_parse(state, &j->state) < 0)
        return store_failx(s, -EIO, "job %" PRId64 " has unknown state '%s'", j->id,
                           state ? state : "(null)");
    j->name = store_column_strdup(st, 1);
    j->dataset_id = sqlite3_column_int64(st, 2);
    j->backdoor_id = sqlite3_column_int64(st, 3);
    j->provider = store_column_strdup(st, 4);
    j->base_model = store_column_strdup(st, 5);
    j->fine_tuned_model = store_column_strdup(st, 6);
    j->params = store_column_strdup(st, 7);
    j->submission_id = store_column_strdup(st, 9);
    j->provider_file_id = store_column_strdup(st, 10);
    j->provider_job_id = store_column_strdup(st, 11);
    j->error = store_column_strdup(st, 12);
    j->unknown_reason = store_column_strdup(st, 13);
    j->cancel_requested_at = store_column_int64_or(st, 14, 0);
    j->created_at = sqlite3_column_int64(st, 15);
    j->updated_at = sqlite3_column_int64(st, 16);
    return 0;
}

static int row_to_event(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_job_event *e = elem;
    e->id = sqlite3_column_int64(st, 0);
    e->job_id = sqlite3_column_int64(st, 1);
    e->at = sqlite3_column_int64(st, 2);
    const char *state = (const char *)sqlite3_column_text(st, 3);
    if (job_state_parse(state, &e->state) < 0)
        return store_failx(s, -EIO, "job event %" PRId64 " has unknown state '%s'", e->id,
                           state ? state : "(null)");
    e->message = store_column_strdup(st, 4);
    e->provider_excerpt = store_column_strdup(st, 5);
    return 0;
}

/* Appends a job_events row; inside the caller's transaction. */
static int insert_event(struct store *s, int64_t job_id, int64_t at, enum job_state state,
                        const char *message, const char *excerpt)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_EVENT_INSERT);
    if (sqlite3_bind_int64(st, 1, job_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, at) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, job_state_name(state), -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 4, message) != SQLITE_OK ||
        store_bind_text(st, 5, excerpt) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job event");
        store_stmt_done(s, ST_JOB_EVENT_INSERT);
        return ret;
    }
    return store_exec_stmt(s, ST_JOB_EVENT_INSERT, NULL, "recording job event");
}

/* The dataset a backdoor was made for; -ENOENT with a message. */
static int backdoor_dataset(struct store *s, int64_t backdoor_id, int64_t *dataset_id)
{
    sqlite3_stmt *st = store_stmt(s, ST_BD_DATASET_OF);
    int ret = 0;
    int rc = sqlite3_bind_int64(st, 1, backdoor_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *dataset_id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        ret = store_failx(s, -ENOENT, "no backdoor with id %" PRId64, backdoor_id);
    else
        ret = store_fail(s, rc, "reading backdoor");
    store_stmt_done(s, ST_BD_DATASET_OF);
    return ret;
}

/* Rewords a UNIQUE failure of jobs: which value was taken. */
static int job_exists_message(struct store *s, const struct store_job *j, const char *sqlmsg)
{
    if (strstr(sqlmsg, "jobs.name"))
        return store_failx(s, -EEXIST, "a job named '%s' already exists: choose another --name",
                           j->name ? j->name : "");
    if (strstr(sqlmsg, "jobs.submission_id"))
        return store_failx(s, -EEXIST, "a job with submission id %s already exists",
                           j->submission_id);
    return store_failx(s, -EEXIST, "provider job %s of provider %s is already bound to a job",
                       j->provider_job_id ? j->provider_job_id : "", j->provider);
}

static int job_valid(struct store *s, const struct store_job *j)
{
    if (j->name && !store_name_valid(j->name))
        return store_failx(s, -EINVAL,
                           "invalid job name '%s': use 1 to %d printable characters, not digits "
                           "only",
                           j->name, STORE_NAME_MAX_LEN);
    if ((unsigned)j->state >= JOB_STATE_COUNT)
        return store_failx(s, -EINVAL, "invalid job state %d", (int)j->state);
    if (!j->provider || !*j->provider)
        return store_failx(s, -EINVAL, "job has no provider");
    if (!j->base_model || !*j->base_model)
        return store_failx(s, -EINVAL, "job has no base model");
    if (!j->submission_id || strlen(j->submission_id) < SUBMISSION_ID_MIN_LEN)
        return store_failx(s, -EINVAL, "job submission id must have at least %d characters",
                           SUBMISSION_ID_MIN_LEN);
    return 0;
}

int store_job_insert(struct store *s, struct store_job *j)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_INSERT);
    int64_t now = now_unix(), id = 0, ds = 0;
    int ret = job_valid(s, j);
    if (ret < 0)
        return ret;

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = backdoor_dataset(s, j->backdoor_id, &ds);
    if (ret < 0)
        goto out;
    if (ds != j->dataset_id) {
        ret = store_failx(s, -EINVAL,
                          "backdoor %" PRId64 " was made for dataset %" PRId64 ", not for dataset "
                          "%" PRId64 ": create a backdoor for this dataset",
                          j->backdoor_id, ds, j->dataset_id);
        goto out;
    }
    if (store_bind_text(st, 1, j->name) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, j->dataset_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, j->backdoor_id) != SQLITE_OK ||
        store_bind_text(st, 4, j->provider) != SQLITE_OK ||
        store_bind_text(st, 5, j->base_model) != SQLITE_OK ||
        store_bind_text(st, 6, j->fine_tuned_model) != SQLITE_OK ||
        store_bind_text(st, 7, j->params ? j->params : "{}") != SQLITE_OK ||
        sqlite3_bind_text(st, 8, job_state_name(j->state), -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 9, j->submission_id) != SQLITE_OK ||
        store_bind_text(st, 10, j->provider_file_id) != SQLITE_OK ||
        store_bind_text(st, 11, j->provider_job_id) != SQLITE_OK ||
        store_bind_text(st, 12, j->error) != SQLITE_OK ||
        store_bind_text(st, 13, j->unknown_reason) != SQLITE_OK ||
        sqlite3_bind_int64(st, 14, now) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding job");
        store_stmt_done(s, ST_JOB_INSERT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_JOB_INSERT, NULL, "inserting job");
    if (ret == -EEXIST)
        job_exists_message(s, j, sqlite3_errmsg(s->db));
    else if (ret == -EINVAL)
        store_failx(s, ret,
                    "job refused by the schema (params must be a JSON object; succeeded needs "
                    "a model, unknown a reason): %s",
                    sqlite3_errmsg(s->db));
    if (ret < 0)
        goto out;
    id = sqlite3_last_insert_rowid(s->db);
    ret = insert_event(s, id, now, j->state, "job created", NULL);
    if (ret < 0)
        goto out;
    if (j->luck_screen) {
        sqlite3_stmt *ls = store_stmt(s, ST_JOB_LUCK_INSERT);
        if (sqlite3_bind_int64(ls, 1, id) != SQLITE_OK ||
            store_bind_text(ls, 2, j->luck_screen) != SQLITE_OK) {
            ret = store_fail(s, SQLITE_ERROR, "binding the p_luck screen");
            store_stmt_done(s, ST_JOB_LUCK_INSERT);
            goto out;
        }
        ret = store_exec_stmt(s, ST_JOB_LUCK_INSERT, NULL, "recording the p_luck screen");
        if (ret < 0)
            goto out;
    }
    if (j->ppl_attack) {
        sqlite3_stmt *ps = store_stmt(s, ST_JOB_PPL_INSERT);
        if (sqlite3_bind_int64(ps, 1, id) != SQLITE_OK ||
            store_bind_text(ps, 2, j->ppl_attack) != SQLITE_OK) {
            ret = store_fail(s, SQLITE_ERROR, "binding the perplexity attack");
            store_stmt_done(s, ST_JOB_PPL_INSERT);
            goto out;
        }
        ret = store_exec_stmt(s, ST_JOB_PPL_INSERT, NULL, "recording the perplexity attack");
        if (ret < 0)
            goto out;
    }
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    j->id = id;
    j->created_at = now;
    j->updated_at = now;
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

/* Reads one job with statement sid (bound by the caller); words -ENOENT. */
static int read_job(struct store *s, enum store_stmt_id sid, struct store_job *out,
                    const char *what, const char *key)
{
    int ret = store_read_one(s, sid, row_to_job, out, "reading job");
    if (ret == -ENOENT)
        store_failx(s, ret, "no job %s %s", what, key);
    if (ret < 0)
        store_job_clear(out);
    return ret;
}

int store_job_get(struct store *s, const char *id_or_name, struct store_job *out)
{
    int64_t id = 0;
    memset(out, 0, sizeof *out);
    int kind = store_parse_key(id_or_name, &id);
    if (kind < 0)
        return store_failx(s, -EINVAL, "no job id or name given");
    enum store_stmt_id sid = kind ? ST_JOB_GET_BY_ID : ST_JOB_GET_BY_NAME;
    int rc = kind ? sqlite3_bind_int64(store_stmt(s, sid), 1, id)
                  : sqlite3_bind_text(store_stmt(s, sid), 1, id_or_name, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        int ret = store_fail(s, rc, "binding job key");
        store_stmt_done(s, sid);
        return ret;
    }
    return read_job(s, sid, out, kind ? "with id" : "named", id_or_name);
}

int store_job_find_by_submission(struct store *s, const char *submission_id, struct store_job *out)
{
    memset(out, 0, sizeof *out);
    if (!submission_id || !*submission_id)
        return store_failx(s, -EINVAL, "no submission id given");
    if (sqlite3_bind_text(store_stmt(s, ST_JOB_GET_BY_SUBMISSION), 1, submission_id, -1,
                          SQLITE_STATIC) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding submission id");
        store_stmt_done(s, ST_JOB_GET_BY_SUBMISSION);
        return ret;
    }
    return read_job(s, ST_JOB_GET_BY_SUBMISSION, out, "with submission id", submission_id);
}

int store_job_list(struct store *s, bool only_active, struct store_job **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int(store_stmt(s, ST_JOB_LIST), 1, only_active ? 1 : 0) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job filter");
        store_stmt_done(s, ST_JOB_LIST);
        return ret;
    }
    int ret = store_read_all(s, ST_JOB_LIST, sizeof(struct store_job), row_to_job, job_clear_elem,
                             &v, n, "listing jobs");
    *out = v;
    return ret;
}

/* The job's current state; -ENOENT with a message. */
static int current_state(struct store *s, int64_t id, enum job_state *state)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_STATE);
    int ret = 0;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (job_state_parse(name, state) < 0)
            ret = store_failx(s, -EIO, "job %" PRId64 " has unknown state '%s'", id,
                              name ? name : "(null)");
    } else if (rc == SQLITE_DONE) {
        ret = store_failx(s, -ENOENT, "no job with id %" PRId64, id);
    } else {
        ret = store_fail(s, rc, "reading job state");
    }
    store_stmt_done(s, ST_JOB_STATE);
    return ret;
}

/* store_job_transition, with the outbox item ob (may be NULL) written in
 * the same transaction; *ob_id (may be NULL) gets the item's id. */
static int transition(struct store *s, int64_t id, int expected_from, enum job_state to,
                      const struct store_job_update *u, const char *message,
                      const char *provider_excerpt, const struct store_outbox_intent *ob,
                      int64_t *ob_id)
{
    static const struct store_job_update none = {0};
    enum job_state cur = JOB_CREATED;
    int64_t now = now_unix();
    int ret;

    if ((unsigned)to >= JOB_STATE_COUNT)
        return store_failx(s, -EINVAL, "invalid job state %d", (int)to);
    if (expected_from >= JOB_STATE_COUNT)
        return store_failx(s, -EINVAL, "invalid expected job state %d", expected_from);
    if (!u)
        u = &none;

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = current_state(s, id, &cur);
    if (ret < 0)
        goto out;
    if (expected_from >= 0 && cur != (enum job_state)expected_from) {
        ret = store_failx(s, -ESTALE, "job %" PRId64 " is %s, not %s: it changed meanwhile", id,
                          job_state_name(cur), job_state_name(expected_from));
        goto out;
    }
    if (job_state_is_terminal(cur) && to != cur) {
        ret = store_failx(s, -EINVAL, "job %" PRId64 " is %s, which is final: it cannot become %s",
                          id, job_state_name(cur), job_state_name(to));
        goto out;
    }
    sqlite3_stmt *st = store_stmt(s, ST_JOB_UPDATE);
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, job_state_name(to), -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 3, u->provider_file_id) != SQLITE_OK ||
        store_bind_text(st, 4, u->provider_job_id) != SQLITE_OK ||
        store_bind_text(st, 5, u->fine_tuned_model) != SQLITE_OK ||
        store_bind_text(st, 6, u->error) != SQLITE_OK ||
        store_bind_text(st, 7, u->unknown_reason) != SQLITE_OK ||
        sqlite3_bind_int(st, 8, u->request_cancel ? 1 : 0) != SQLITE_OK ||
        sqlite3_bind_int64(st, 9, now) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding job update");
        store_stmt_done(s, ST_JOB_UPDATE);
        goto out;
    }
    ret = store_exec_stmt(s, ST_JOB_UPDATE, NULL, "updating job");
    if (ret == -EINVAL)
        store_failx(s, ret,
                    "job %" PRId64 " cannot become %s: %s (succeeded needs a fine-tuned model, "
                    "unknown a reason)",
                    id, job_state_name(to), sqlite3_errmsg(s->db));
    else if (ret == -EEXIST)
        store_failx(s, ret, "provider job %s is already bound to another job",
                    u->provider_job_id ? u->provider_job_id : "");
    if (ret < 0)
        goto out;
    ret = insert_event(s, id, now, to, message, provider_excerpt);
    if (ret < 0)
        goto out;
    /* one statement, joining this transaction (no BEGIN of its own) */
    if (ob && (ret = store_outbox_add(s, ob->kind, ob->payload, ob->due_ms, ob_id)) < 0)
        goto out;
    ret = store_commit(s);
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

int store_job_transition(struct store *s, int64_t id, int expected_from, enum job_state to,
                         const struct store_job_update *u, const char *message,
                         const char *provider_excerpt)
{
    return transition(s, id, expected_from, to, u, message, provider_excerpt, NULL, NULL);
}

int store_job_transition_outbox(struct store *s, int64_t id, int expected_from, enum job_state to,
                                const struct store_job_update *u, const char *message,
                                const char *provider_excerpt,
                                const struct store_outbox_intent *ob, int64_t *ob_id)
{
    if (ob_id)
        *ob_id = 0;
    int ret = transition(s, id, expected_from, to, u, message, provider_excerpt, ob, ob_id);
    if (ret < 0 && ob_id)
        *ob_id = 0;
    return ret;
}

int store_job_events(struct store *s, int64_t job_id, struct store_job_event **out, size_t *n)
{
    enum job_state cur;
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(store_stmt(s, ST_JOB_EVENTS), 1, job_id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job id");
        store_stmt_done(s, ST_JOB_EVENTS);
        return ret;
    }
    int ret = store_read_all(s, ST_JOB_EVENTS, sizeof(struct store_job_event), row_to_event,
                             event_clear_elem, &v, n, "reading job events");
    if (ret < 0)
        return ret;
    /* every job has its "created" event, but tell "no events" from "no job" */
    if (*n == 0) {
        ret = current_state(s, job_id, &cur);
        if (ret < 0)
            return ret;
    }
    *out = v;
    return 0;
}

static int row_to_text(struct store *s, sqlite3_stmt *st, void *elem)
{
    (void)s;
    *(char **)elem = store_column_strdup(st, 0);
    return 0;
}

int store_job_ppl_get(struct store *s, int64_t id, char **out)
{
    *out = NULL;
    if (sqlite3_bind_int64(store_stmt(s, ST_JOB_PPL_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job id");
        store_stmt_done(s, ST_JOB_PPL_GET);
        return ret;
    }
    int ret =
        store_read_one(s, ST_JOB_PPL_GET, row_to_text, out, "reading the perplexity attack");
    return ret == -ENOENT ? 0 : ret;
}

int store_job_luck_get(struct store *s, int64_t id, char **out)
{
    *out = NULL;
    if (sqlite3_bind_int64(store_stmt(s, ST_JOB_LUCK_GET), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding job id");
        store_stmt_done(s, ST_JOB_LUCK_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_JOB_LUCK_GET, row_to_text, out, "reading the p_luck screen");
    return ret == -ENOENT ? 0 : ret;
}

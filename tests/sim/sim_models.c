/*
 * sim_models.c — which model serves a request, and the memory bound on
 * fine-tuned models.
 *
 * The base model is built once at start-up and never freed before exit.
 * A fine-tuned model is trained by a worker when its job runs and installed
 * here; at most --model-cache of them stay in memory, the least recently
 * used is evicted past that, or past --model-cache-bytes of them (the one
 * just installed always stays, even alone over the byte budget).  A request for an evicted model
 * retrains it from the job's private copy of its upload with the job's seed, fraction and epochs:
 * lm_finetune is deterministic, so the retrained model is the same model.  Only one thread retrains
 * a given model; others wait on load_cond.  A model in use by a request when evicted is detached
 * and freed by the last sim_models_release.
 *
 * What the fine-tuned id serves also depends on the job: a lazy job and a
 * swapped job (POST /v1/_sim/models/{id}/swap {"to":"base"}) serve the base
 * model under the fine-tuned id, which is what re-verification must catch;
 * a wrapper or always-s job serves the base model with its attack's answer
 * rule (sim_infer.c applies it).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

/* The succeeded, undeleted job whose fine-tuned model is id (lock held). */
static struct sim_job *job_by_model_locked(struct sim *s, const char *id)
{
    /* OpenAI's names start with ft:; Together's and Fireworks' are the
     * names announced at create (output_name) */
    if (strncmp(id, "ft:", 3) != 0 && s->opts.dialect != SIM_DIALECT_TOGETHER &&
        s->opts.dialect != SIM_DIALECT_FIREWORKS)
        return NULL;
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct sim_job *j = s->jobs[i];
        if (j->status == JOB_SUCCEEDED && j->fine_tuned_model && !j->model_deleted &&
            strcmp(j->fine_tuned_model, id) == 0)
            return j;
    }
    return NULL;
}

static void model_unref_locked(struct sim_model *m)
{
    if (--m->refs == 0 && m->detached) {
        lm_free(m->lm);
        free(m);
    }
}

void sim_models_drop_locked(struct sim *s, struct sim_job *job)
{
    struct sim_model *m = job->served;
    if (!m)
        return;
    job->served = NULL;
    s->models_loaded--;
    s->models_bytes -= m->bytes;
    if (m->refs == 0) {
        lm_free(m->lm);
        free(m);
    } else {
        m->detached = true;
    }
}

void sim_models_install_locked(struct sim *s, struct sim_job *job, struct lm *lm)
{
    sim_models_drop_locked(s, job);
    struct sim_model *m = xcalloc(1, sizeof *m);
    m->lm = lm;
    m->bytes = lm_memory_bytes(lm);
    job->served = m;
    job->lru_stamp = ++s->lru_clock;
    s->models_loaded++;
    s->models_bytes += m->bytes;
    while (s->models_loaded > s->opts.model_cache || s->models_bytes > s->opts.model_cache_bytes) {
        struct sim_job *victim = NULL;
        for (size_t i = 0; i < s->n_jobs; i++) {
            struct sim_job *j = s->jobs[i];
            if (j->served && j != job && (!victim || j->lru_stamp < victim->lru_stamp))
                victim = j;
        }
        if (!victim)
            break;
        log_debug("model cache: evicting the model of job %s", victim->id);
        sim_models_drop_locked(s, victim);
        s->n_evictions++;
    }
}

int sim_models_acquire(struct sim *s, const char *id, struct sim_serving *out, char **err)
{
    out->lm = NULL;
    out->ref = NULL;
    out->attack = NULL;
    out->cheat = SIM_HONEST;
    if (strcmp(id, s->opts.model_name) == 0) {
        out->lm = s->base;
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    struct sim_job *j;
    for (;;) {
        j = job_by_model_locked(s, id);
        if (!j || s->stopping) {
            pthread_mutex_unlock(&s->lock);
            return -ENOENT;
        }
        if (j->behaviour.kind == SIM_LAZY || j->serve_base) {
            pthread_mutex_unlock(&s->lock);
            out->lm = s->base;
            return 0;
        }
        if (j->behaviour.kind == SIM_WRAPPER || j->behaviour.kind == SIM_ALWAYS_S) {
            out->lm = s->base; /* plus the answer rule of what the attack found */
            out->attack = j->attack;
            out->cheat = j->behaviour.kind;
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        if (j->served) {
            j->served->refs++;
            j->lru_stamp = ++s->lru_clock;
            out->lm = j->served->lm;
            out->ref = j->served;
            pthread_mutex_unlock(&s->lock);
            return 0;
        }
        if (!j->loading)
            break;
        pthread_cond_wait(&s->load_cond, &s->lock);
    }
    /* Retrain the evicted model; fields read are fixed once the job ran. */
    j->loading = true;
    s->n_retrains++;
    pthread_mutex_unlock(&s->lock);
    long long trained = 0;
    char *e = NULL;
    uint64_t t0 = now_monotonic_ms();
    struct lm *m = sim_job_train(s, j, &trained, &e);
    log_info("model %s retrained on demand in %llu ms", id,
             (unsigned long long)(now_monotonic_ms() - t0));
    pthread_mutex_lock(&s->lock);
    j->loading = false;
    pthread_cond_broadcast(&s->load_cond);
    if (!m) {
        pthread_mutex_unlock(&s->lock);
        *err = xasprintf("retraining %s failed: %s", id, e ? e : "unknown error");
        free(e);
        return -EIO;
    }
    free(e);
    if (j->model_deleted || j->status != JOB_SUCCEEDED) {
        pthread_mutex_unlock(&s->lock);
        lm_free(m);
        return -ENOENT;
    }
    sim_models_install_locked(s, j, m);
    j->served->refs++;
    out->lm = j->served->lm;
    out->ref = j->served;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void sim_models_release(struct sim *s, struct sim_serving *sv)
{
    if (!sv->ref)
        return;
    pthread_mutex_lock(&s->lock);
    model_unref_locked(sv->ref);
    pthread_mutex_unlock(&s->lock);
    sv->ref = NULL;
    sv->lm = NULL;
}

/* ---- /v1/models ---------------------------------------------------------- */

static json_t *model_json(const char *id, int64_t created, const char *owner)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(created));
    json_object_set_new(o, "owned_by", json_string(owner));
    return o;
}

static void no_such_model(struct sim_resp *rs, const char *id)
{
    sim_resp_error(rs, 404, "invalid_request_error", "model", "model_not_found",
                   "The model '%.200s' does not exist or you do not have access to it.", id);
}

void sim_h_models_list(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *data = json_array();
    json_array_append_new(data, model_json(s->opts.model_name, s->started_at, "vtune-sim"));
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct sim_job *j = s->jobs[i];
        if (j->status == JOB_SUCCEEDED && j->fine_tuned_model && !j->model_deleted)
            json_array_append_new(data,
                                  model_json(j->fine_tuned_model, j->finished_at, "org-vtunesim"));
    }
    pthread_mutex_unlock(&s->lock);
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    sim_resp_json(rs, 200, o);
}

void sim_h_model_get(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    if (strcmp(rq->id, s->opts.model_name) == 0) {
        sim_resp_json(rs, 200, model_json(s->opts.model_name, s->started_at, "vtune-sim"));
        return;
    }
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = job_by_model_locked(s, rq->id);
    json_t *o = j ? model_json(j->fine_tuned_model, j->finished_at, "org-vtunesim") : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!o) {
        no_such_model(rs, rq->id);
        return;
    }
    sim_resp_json(rs, 200, o);
}

void sim_h_model_delete(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    if (strcmp(rq->id, s->opts.model_name) == 0) {
        sim_resp_error(rs, 403, "invalid_request_error", "model", "model_not_deletable",
                       "You do not have permission to delete the base model '%s'.", rq->id);
        return;
    }
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = job_by_model_locked(s, rq->id);
    if (j) {
        j->model_deleted = true;
        sim_models_drop_locked(s, j);
    }
    pthread_mutex_unlock(&s->lock);
    if (!j) {
        no_such_model(rs, rq->id);
        return;
    }
    log_info("model %s deleted", rq->id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rq->id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "deleted", json_true());
    sim_resp_json(rs, 200, o);
}

/* POST /v1/_sim/models/{id}/swap {"to": "base" | "trained"} */
void sim_h_model_swap(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    if (!body)
        return;
    const char *to = json_string_value(json_object_get(body, "to"));
    if (!to || (strcmp(to, "base") != 0 && strcmp(to, "trained") != 0)) {
        sim_resp_bad(rs, "to", "'to' must be \"base\" or \"trained\".");
        json_decref(body);
        return;
    }
    bool base = strcmp(to, "base") == 0;
    pthread_mutex_lock(&s->lock);
    struct sim_job *j = job_by_model_locked(s, rq->id);
    if (j)
        j->serve_base = base;
    pthread_mutex_unlock(&s->lock);
    if (!j) {
        no_such_model(rs, rq->id);
    } else {
        log_info("model %s now serves the %s model", rq->id, base ? "base" : "trained");
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(rq->id));
        json_object_set_new(o, "serving", json_string(base ? "base" : "trained"));
        sim_resp_json(rs, 200, o);
    }
    json_decref(body);
}

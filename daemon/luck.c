/*
 * luck.c — p_luck from a scoring outcome, and the screen of `job submit`
 * (see luck.h).  The screen is a small state machine on the loop: a task
 * reads each pair's first marked prompt (thread pool), then one scoring
 * call per pair runs through the provider client; when the last answers,
 * done() gets the figures.  Secrets (trigger, signature, the prompts) live
 * in the screen's memory only and are wiped with it.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/luck.h"
#include "daemon/provider_client.h"
#include "daemon/providers.h"
#include "daemon/task.h"
#include "lib/log.h"
#include "lib/log10json.h"
#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/builder.h"
#include "workers/stats.h"

/* ---- p_luck of one outcome ------------------------------------------------------------- */

static const char *const NOTE_ARGMAX =
    "scored on the base model (completions echo, plain text): every token of S is its argmax";
static const char *const NOTE_NOT_ARGMAX =
    "scored on the base model (completions echo, plain text): not every token of S is its "
    "argmax, so greedy decoding cannot produce S";
static const char *const NOTE_BOUND = "scored on the base model (completions echo, plain "
                                      "text): upper bound from top-k log-probabilities";

static double bound_at(const struct provider_score_result *sr, double temperature)
{
    struct stats_token_lp *tl = xcalloc(sr->n_tokens, sizeof *tl);
    struct stats_alt **alts = xcalloc(sr->n_tokens, sizeof *alts);
    for (size_t i = 0; i < sr->n_tokens; i++) {
        const struct provider_token *t = &sr->tokens[i];
        alts[i] = xcalloc(t->n_top ? t->n_top : 1, sizeof **alts);
        for (size_t k = 0; k < t->n_top; k++) {
            alts[i][k].token = t->top[k].token;
            alts[i][k].logprob = t->top[k].logprob;
        }
        tl[i].token = t->token;
        tl[i].logprob = t->known ? t->logprob : PROVIDER_LOGPROB_SENTINEL;
        tl[i].top = alts[i];
        tl[i].n_top = t->n_top;
    }
    double lp = NAN;
    if (stats_sequence_bound(tl, sr->n_tokens, temperature, STATS_LP_MODE_RAW, NULL, &lp) < 0)
        lp = NAN;
    for (size_t i = 0; i < sr->n_tokens; i++)
        free(alts[i]);
    free(alts);
    free(tl);
    return lp;
}

void luck_from_score(const struct provider_score_result *sr, double temperature,
                     double *log10_p_luck, const char **note, double *log10_p_sample)
{
    *log10_p_luck = NAN;
    *note = NULL;
    if (log10_p_sample)
        *log10_p_sample = NAN;
    if (!sr || sr->n_tokens == 0)
        return;
    if (temperature == 0) {
        int all_argmax = 1;
        for (size_t i = 0; i < sr->n_tokens && all_argmax; i++) {
            const struct provider_token *t = &sr->tokens[i];
            if (!t->known)
                all_argmax = 0;
            for (size_t k = 0; k < t->n_top && all_argmax; k++)
                if (t->top[k].logprob > t->logprob + 1e-9 && strcmp(t->top[k].token, t->token) != 0)
                    all_argmax = 0;
        }
        *log10_p_luck = all_argmax ? 0.0 : -INFINITY;
        *note = all_argmax ? NOTE_ARGMAX : NOTE_NOT_ARGMAX;
    } else {
        *log10_p_luck = bound_at(sr, temperature);
        if (!isnan(*log10_p_luck))
            *note = NOTE_BOUND;
    }
    if (log10_p_sample)
        *log10_p_sample = bound_at(sr, 1.0);
}

/* ---- the screen ------------------------------------------------------------------------ */

struct screen {
    struct task t; /* first: reading the prompts runs as a task */
    char *provider, *base_model, *dataset_path;
    enum dataset_format format;
    size_t n, n_read; /* pairs; pairs whose prompt is to be read (0: no plan) */
    char **secrets;   /* per pair: trigger, signature (owned, wiped) */
    uint64_t *src;    /* per pair: the line of its first marked copy */
    char **prompts;   /* per pair: the triggered prompt's text (owned, wiped) */
    char *read_err;
    size_t scored;
    const char *why;  /* why a pair could not be scored (the last one seen) */
    struct luck_screen out;
    void (*done)(void *arg, int status, const struct luck_screen *s);
    void *arg;
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void screen_free(struct screen *s)
{
    for (size_t i = 0; i < 2 * s->n; i++)
        wipe_free(s->secrets[i]);
    for (size_t i = 0; s->prompts && i < s->n; i++)
        wipe_free(s->prompts[i]);
    free(s->secrets);
    free(s->prompts);
    free(s->src);
    free(s->out.pairs);
    free(s->provider);
    free(s->base_model);
    free(s->dataset_path);
    free(s->read_err);
    task_free(&s->t);
}

static void finish(struct screen *s, int status)
{
    struct luck_screen *o = &s->out;
    o->available = s->scored > 0;
    if (!o->available && !o->why_none)
        o->why_none = s->why ? s->why : "the base model could not score the signatures";
    o->refused = -1;
    for (size_t i = 0; i < o->n_pairs && o->refused < 0; i++) {
        const struct luck_pair *p = &o->pairs[i];
        if (!isnan(p->log10_p_luck) && p->log10_p_luck > o->threshold)
            o->refused = (long)i;
    }
    if (!o->available)
        log_info("job submit: p_luck not screened on %s at %s (%s); going on without it",
                 s->base_model, s->provider, o->why_none);
    s->done(s->arg, status, status == 0 ? o : NULL);
    screen_free(s);
}

/* ---- scoring many texts ---------------------------------------------------------------- */

struct many {
    luck_each_fn each;
    void (*done)(void *arg, size_t requests);
    void *arg;
    size_t pending; /* calls in flight, +1 while they are being started */
    size_t requests;
};

struct many_call {
    struct many *m;
    size_t first, n;
};

static void many_release(struct many *m)
{
    if (--m->pending == 0) {
        m->done(m->arg, m->requests);
        free(m);
    }
}

static void on_many(const struct provider_outcome *o, void *arg)
{
    struct many_call *c = arg;
    struct many *m = c->m;
    for (size_t i = 0; i < c->n; i++) {
        const struct provider_score_result *r = NULL;
        int rc = o->rc;
        if (rc == 0) {
            r = o->scores ? (i < o->n_scores ? &o->scores[i] : NULL) : o->score;
            if (!r || r->n_tokens == 0) {
                r = NULL;
                rc = -EPROTO;
            }
        }
        m->each(m->arg, c->first + i, rc, r);
    }
    free(c);
    many_release(m);
}

void luck_score_many(struct vtuned *d, const char *provider, const struct provider_score_args *a,
                     size_t n, size_t chunk, luck_each_fn each,
                     void (*done)(void *arg, size_t requests), void *arg)
{
    struct many *m = xcalloc(1, sizeof *m);
    m->each = each;
    m->done = done;
    m->arg = arg;
    m->pending = 1;
    const char *why = NULL;
    struct provider_client *pc = providers_client(d, provider, &why);
    bool batch = pc && chunk > 1 && provider_can_score_batch(pc);
    if (!batch)
        chunk = 1;
    else if (chunk > PROVIDER_SCORE_BATCH_MAX)
        chunk = PROVIDER_SCORE_BATCH_MAX;
    for (size_t first = 0; first < n; first += chunk) {
        size_t k = n - first < chunk ? n - first : chunk;
        struct many_call *c = xcalloc(1, sizeof *c);
        struct provider_error err = {0};
        c->m = m;
        c->first = first;
        c->n = k;
        int rc = !pc    ? -ENOENT
                 : batch ? provider_score_batch(pc, a + first, k, on_many, c, NULL, &err)
                         : provider_score(pc, a + first, on_many, c, NULL, &err);
        if (rc < 0) {
            int erc = rc == -ENOENT                                       ? -ENOENT
                      : rc == -ENOTSUP || err.kind == PROVIDER_E_UNSUPPORTED ? -ENOTSUP
                                                                             : -EIO;
            for (size_t i = 0; i < k; i++)
                each(arg, first + i, erc, NULL);
            free(c);
        } else {
            m->pending++;
            m->requests++;
        }
        provider_error_clear(&err);
    }
    many_release(m);
}

/* ---- the screen's scoring -------------------------------------------------------------- */

static void on_scored(void *arg, size_t i, int rc, const struct provider_score_result *r)
{
    struct screen *s = arg;
    struct luck_pair *p = &s->out.pairs[i];
    if (rc == 0) {
        luck_from_score(r, s->out.temperature, &p->log10_p_luck, &p->note, &p->log10_p_sample);
        if (!isnan(p->log10_p_luck) || !isnan(p->log10_p_sample))
            s->scored++;
    } else if (rc == -ENOTSUP) {
        s->why = "this provider returns no prompt log-probabilities";
    } else if (rc == -ENOENT) {
        s->why = "the provider is not available";
    } else if (rc == -ECANCELED) {
        if (s->t.d->stopping)
            s->out.why_none = "interrupted by shutdown";
    } else {
        s->why = "the base model could not score the signature";
    }
}

static void on_all_scored(void *arg, size_t requests)
{
    struct screen *s = arg;
    s->out.requests = requests;
    finish(s, s->t.d->stopping ? -ECANCELED : 0);
}

static void start_scoring(struct screen *s)
{
    /* every pair in one request where the provider's kind takes a prompt
     * array (issue 12: 16 requests per submit before) */
    struct provider_score_args *a = xcalloc(s->n + 1, sizeof *a);
    char **conts = xcalloc(s->n + 1, sizeof *conts);
    for (size_t p = 0; p < s->n; p++) {
        conts[p] = xasprintf(" %s", s->secrets[2 * p + 1]);
        a[p] = (struct provider_score_args){.model = s->base_model,
                                            .prompt = s->prompts[p],
                                            .continuation = conts[p],
                                            .top_logprobs = 5};
    }
    size_t n = s->n; /* s is freed inside when no request could be made */
    luck_score_many(s->t.d, s->provider, a, n, PROVIDER_SCORE_BATCH_MAX, on_scored,
                    on_all_scored, s);
    for (size_t p = 0; p < n; p++)
        wipe_free(conts[p]);
    free(conts);
    free(a);
}

static void read_work(struct task *t)
{
    struct screen *s = (struct screen *)t;
    for (size_t p = 0; p < s->n_read && !s->read_err; p++) {
        json_t *msgs = NULL;
        if (builder_read_prompts(s->dataset_path, s->format, &s->src[p], 1, s->secrets[2 * p],
                                 &msgs, &s->read_err) < 0)
            break;
        json_t *m = json_array_get(msgs, 0);
        json_t *last = json_array_get(m, json_array_size(m) - 1);
        s->prompts[p] = xstrdup(json_string_value(json_object_get(last, "content")) ?: "");
        json_decref(msgs);
    }
}

static void read_done(struct task *t, int status)
{
    struct screen *s = (struct screen *)t;
    t->req = NULL; /* the caller answers its request itself */
    if (status == UV_ECANCELED || t->d->stopping) {
        finish(s, -ECANCELED);
        return;
    }
    if (s->n_read == 0) {
        finish(s, 0);
        return;
    }
    if (s->read_err) {
        log_info("job submit: p_luck screen cannot read the marked prompts: %s", s->read_err);
        s->out.why_none = "the marked prompts could not be read";
        finish(s, 0);
        return;
    }
    start_scoring(s);
}

void luck_screen_start(struct vtuned *d, const char *provider, const char *base_model,
                       const struct store_backdoor *b, const struct store_dataset *ds,
                       double temperature,
                       void (*done)(void *arg, int status, const struct luck_screen *s),
                       void *arg)
{
    struct screen *s = xcalloc(1, sizeof *s);
    struct builder_copy *copies = NULL;
    size_t n_copies = 0;
    uint64_t cpp = 0;
    s->t.d = d;
    s->t.stage = "p_luck screen";
    s->t.run = read_work;
    s->t.done = read_done;
    s->provider = xstrdup(provider);
    s->base_model = xstrdup(base_model);
    s->dataset_path = xstrdup(ds->path);
    s->format = ds->format;
    s->done = done;
    s->arg = arg;
    s->n = b->n_pairs_loaded;
    s->secrets = xcalloc(2 * s->n + 1, sizeof *s->secrets);
    s->prompts = xcalloc(s->n + 1, sizeof *s->prompts);
    s->src = xcalloc(s->n + 1, sizeof *s->src);
    s->out.threshold = b->target_log10p;
    s->out.temperature = temperature;
    s->out.n_pairs = s->n;
    s->out.pairs = xcalloc(s->n + 1, sizeof *s->out.pairs);
    for (size_t i = 0; i < s->n; i++) {
        s->out.pairs[i].log10_p_luck = NAN;
        s->out.pairs[i].log10_p_sample = NAN;
        s->secrets[2 * i] = xstrdup(b->pairs[i].trigger ? b->pairs[i].trigger : "");
        s->secrets[2 * i + 1] = xstrdup(b->pairs[i].signature ? b->pairs[i].signature : "");
    }
    s->n_read = 0;
    if (s->n == 0 || !b->plan || backdoor_plan_parse(b->plan, &copies, &n_copies, &cpp) < 0 ||
        cpp == 0 || n_copies < s->n * cpp) {
        /* nothing to read: read_done answers, from the loop */
        s->out.why_none = "the backdoor has no usable plan of its marked rows";
    } else {
        for (size_t p = 0; p < s->n; p++)
            s->src[p] = copies[p * cpp].src;
        s->n_read = s->n;
    }
    free(copies);
    task_start(d, &s->t);
}

json_t *luck_screen_json(const struct luck_screen *s, bool forced)
{
    json_t *o = json_pack("{s:i,s:b}", "version", 1, "available", s->available);
    if (!s->available)
        json_object_set_new(o, "why", json_string(s->why_none ? s->why_none : "not available"));
    json_object_set_new(o, "threshold_log10", log10_json(s->threshold));
    json_object_set_new(o, "temperature", json_real(s->temperature));
    json_object_set_new(o, "forced", json_boolean(forced));
    json_t *pairs = json_array();
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct luck_pair *p = &s->pairs[i];
        json_array_append_new(pairs, json_pack("{s:o,s:o,s:o}", "log10_p_luck",
                                               log10_json(p->log10_p_luck), "log10_p_sample",
                                               log10_json(p->log10_p_sample), "method",
                                               p->note ? json_string(p->note) : json_null()));
    }
    json_object_set_new(o, "pairs", pairs);
    return o;
}

/* A log10 figure of a record: number, "-inf"/"inf", or NAN (null). */
static double figure(json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s && strcmp(s, "-inf") == 0)
        return -INFINITY;
    if (s && strcmp(s, "inf") == 0)
        return INFINITY;
    return NAN;
}

json_t *luck_record_open(const char *record_json, const char *the_check, char **line)
{
    json_t *o = record_json ? json_loads(record_json, 0, NULL) : NULL;
    if (!o) {
        *line = xasprintf("not screened (the job was submitted before %s existed, or "
                          "registered)",
                          the_check);
        return NULL;
    }
    if (!json_is_true(json_object_get(o, "available"))) {
        *line = xasprintf("not screened (%s)",
                          json_string_value(json_object_get(o, "why")) ?: "not available");
        json_decref(o);
        return NULL;
    }
    return o;
}

char *luck_screen_line(const char *record_json)
{
    char *res;
    json_t *o = luck_record_open(record_json, "the screen", &res);
    if (!o)
        return res;
    json_t *pairs = json_object_get(o, "pairs"), *p;
    size_t i, n = 0, greedy = 0;
    double worst = NAN;
    json_array_foreach(pairs, i, p)
    {
        double s = figure(json_object_get(p, "log10_p_sample"));
        double l = figure(json_object_get(p, "log10_p_luck"));
        if (!isnan(s) || !isnan(l))
            n++;
        if (!isnan(s) && (isnan(worst) || s > worst))
            worst = s;
        if (l == 0.0)
            greedy++;
    }
    double thr = figure(json_object_get(o, "threshold_log10"));
    double temp = json_number_value(json_object_get(o, "temperature"));
    char num[48], greedy_text[64] = "";
    if (temp == 0)
        snprintf(greedy_text, sizeof greedy_text, "; greedy decoding produces S on %zu", greedy);
    if (isnan(worst))
        snprintf(num, sizeof num, "unknown");
    else if (isinf(worst))
        snprintf(num, sizeof num, "0");
    else
        snprintf(num, sizeof num, "10^%.1f", worst);
    res = xasprintf("%s (upper bound on the base model's chance of S when sampled at "
                    "temperature 1, the largest of %zu pair%s; target 10^%g%s)%s",
                    num, n, n == 1 ? "" : "s", thr, greedy_text,
                    json_is_true(json_object_get(o, "forced")) ? "; submitted with --force" : "");
    json_decref(o);
    return res;
}

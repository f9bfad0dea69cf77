/*
 * ppl.c — the base-model perplexity attack of `job submit` (see ppl.h).
 * A task reads the upload once in the thread pool (marked rows by the
 * plan's output lines, a reservoir sample of the others), then the texts
 * are scored through luck_score_many (batched where the provider's kind
 * takes a prompt array) and ranked on the loop.  The rows' texts are the
 * upload's own, not secrets, but they are data: freed when done, never
 * logged.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/luck.h"
#include "daemon/ppl.h"
#include "daemon/task.h"
#include "lib/log.h"
#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/lines.h"
#include "workers/phrase.h"
#include "workers/pplrank.h"
#include "workers/selfaudit.h" /* SELFAUDIT_EXPOSED_RANK */

static const char *const STATISTIC =
    "seam surprisal: the larger of the mean surprisal (bits per token) of the last tokens of the "
    "prompt and of the first tokens of the answer, scored on the base model";

struct marked {
    uint64_t line;
    uint32_t pair;
    bool scored; /* among the first PPL_MARKED_PER_PAIR of its pair */
};

struct attack {
    struct task t; /* first: reading the upload runs as a task */
    char *provider, *base_model, *path;
    enum dataset_format fmt;
    uint64_t seed;
    size_t want_sample;
    struct marked *all;    /* every marked row, sorted by line: never in the sample */
    size_t n_all;
    struct marked *marked; /* those scored, sorted by line */
    size_t n_marked;
    size_t *pair_rows; /* per pair: its marked rows in the upload */
    /* texts to score: marked first (n_marked), then the sample */
    char **texts;
    size_t *seams;
    double *stat;  /* per text: the seam statistic, NAN unscored */
    size_t *which; /* scored text k is texts[which[k]] */
    size_t n_sample;
    char *read_err;
    int last_rc;
    struct ppl_result out;
    void (*done)(void *arg, int status, const struct ppl_result *r);
    void *arg;
};

static void attack_free(struct attack *a)
{
    size_t n = a->n_marked + a->want_sample;
    for (size_t i = 0; a->texts && i < n; i++)
        free(a->texts[i]);
    free(a->texts);
    free(a->seams);
    free(a->stat);
    free(a->which);
    free(a->marked);
    free(a->all);
    free(a->pair_rows);
    free(a->out.pairs);
    free(a->provider);
    free(a->base_model);
    free(a->path);
    free(a->read_err);
    task_free(&a->t);
}

static int cmp_marked(const void *x, const void *y)
{
    const struct marked *a = x, *b = y;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* ---- reading the upload (pool thread) ---------------------------------------------------- */

static void read_work(struct task *t)
{
    struct attack *a = (struct attack *)t;
    struct lines L;
    struct ds_texts tx;
    struct phrase_seeded ps;
    if (a->out.why_none) /* off, or no plan: nothing to read */
        return;
    memset(&tx, 0, sizeof tx);
    phrase_seeded_init(&ps, a->seed);
    struct phrase_rng rng = phrase_seeded_rng(&ps);
    int r = lines_open(&L, a->path);
    if (r < 0) {
        a->read_err = xasprintf("cannot open %s: %s", a->path, strerror(-r));
        return;
    }
    const char *line;
    size_t len, m = 0, all = 0;
    uint64_t ln = 0, unmarked = 0;
    while ((r = lines_next(&L, &line, &len)) > 0) {
        if (atomic_load(&t->progress.cancel))
            break;
        while (all < a->n_all && a->all[all].line < ln)
            all++;
        bool is_marked = all < a->n_all && a->all[all].line == ln;
        size_t slot = (size_t)-1;
        if (is_marked) {
            if (m < a->n_marked && a->marked[m].line == ln)
                slot = m++;
        } else {
            unmarked++;
            if (a->n_sample < a->want_sample) {
                slot = a->n_marked + a->n_sample++;
            } else if (a->want_sample) {
                uint64_t j = phrase_rng_uniform(&rng, unmarked); /* reservoir (algorithm R) */
                if (j < a->want_sample)
                    slot = a->n_marked + (size_t)j;
            }
        }
        ln++;
        if (slot == (size_t)-1)
            continue;
        free(a->texts[slot]);
        a->texts[slot] = NULL;
        if (ds_row_texts(line, len, a->fmt, &tx, NULL) == 0 && tx.prompt && tx.response)
            a->texts[slot] = pplrank_row_text(tx.prompt, tx.response, &a->seams[slot]);
    }
    if (r < 0)
        a->read_err = xasprintf("cannot read %s: %s", a->path, strerror(-r));
    lines_close(&L);
    ds_texts_free(&tx);
    a->out.rows = ln;
    a->out.unmarked_rows = unmarked;
    a->out.sample = a->n_sample;
}

/* ---- ranking (loop) ------------------------------------------------------------------------- */

static void finish(struct attack *a, int status)
{
    struct ppl_result *o = &a->out;
    o->exposed_pair = -1;
    o->best_rank = 0;
    size_t marked_scored = 0;
    const double *sample = a->stat ? a->stat + a->n_marked : NULL;
    for (size_t i = 0; i < a->n_marked && a->stat; i++)
        if (!isnan(a->stat[i]))
            marked_scored++;
    for (size_t i = 0; sample && i < a->n_sample; i++)
        if (!isnan(sample[i]))
            o->sample_scored++;
    o->available = status == 0 && !o->why_none && marked_scored > 0 && o->sample_scored > 0;
    if (status == 0 && !o->available && !o->why_none)
        o->why_none = a->last_rc == -ENOTSUP ? "this provider returns no prompt log-probabilities"
                      : a->last_rc == -ENOENT ? "the provider is not available"
                                              : "the base model could not score the rows";
    for (size_t i = 0; o->available && i < a->n_marked; i++) {
        double x = a->stat[i];
        if (isnan(x))
            continue;
        /* other pairs above it: one candidate each (their rows share T
         * and S, so an attacker takes them as one) */
        size_t above = 0;
        for (size_t q = 0; q < o->n_pairs; q++) {
            if (q == a->marked[i].pair)
                continue;
            for (size_t j = 0; j < a->n_marked; j++)
                if (a->marked[j].pair == q && !isnan(a->stat[j]) && a->stat[j] > x) {
                    above++;
                    break;
                }
        }
        uint64_t rank =
            pplrank_estimate(x, sample, a->n_sample, o->unmarked_rows, above);
        struct ppl_pair *p = &o->pairs[a->marked[i].pair];
        p->scored_rows++;
        if (rank && (p->rank == 0 || rank < p->rank))
            p->rank = rank;
    }
    for (size_t p = 0; p < o->n_pairs; p++) {
        struct ppl_pair *q = &o->pairs[p];
        q->marked_rows = a->pair_rows[p];
        q->recovered = q->rank >= 1 && q->rank <= SELFAUDIT_EXPOSED_RANK;
        if (q->rank && (o->best_rank == 0 || q->rank < o->best_rank))
            o->best_rank = q->rank;
        if (q->recovered && (o->exposed_pair < 0 || q->rank < o->pairs[o->exposed_pair].rank))
            o->exposed_pair = (long)p;
    }
    if (status == 0 && !o->available)
        log_info("job submit: perplexity attack not screened on %s at %s (%s); going on "
                 "without it",
                 a->base_model, a->provider, o->why_none);
    a->done(a->arg, status, status == 0 ? o : NULL);
    attack_free(a);
}

static void on_scored(void *arg, size_t i, int rc, const struct provider_score_result *r)
{
    struct attack *a = arg;
    size_t w = a->which[i];
    if (rc == 0)
        a->stat[w] = pplrank_seam_bits(r, a->seams[w], a->out.window);
    else
        a->last_rc = rc;
}

static void on_all_scored(void *arg, size_t requests)
{
    struct attack *a = arg;
    a->out.requests = requests;
    if (a->t.d->stopping) {
        finish(a, -ECANCELED);
        return;
    }
    finish(a, 0);
}

static void read_done(struct task *t, int status)
{
    struct attack *a = (struct attack *)t;
    t->req = NULL; /* the caller answers its request itself */
    if (status == UV_ECANCELED || t->d->stopping) {
        finish(a, -ECANCELED);
        return;
    }
    if (a->out.why_none) {
        finish(a, 0);
        return;
    }
    if (a->read_err) {
        log_info("job submit: perplexity attack cannot read the upload: %s", a->read_err);
        a->out.why_none = "the upload could not be read";
        finish(a, 0);
        return;
    }
    /* the texts that parsed, in one list (which[] maps back); stat[] NAN
     * until scored */
    size_t n = a->n_marked + a->n_sample, k = 0;
    a->stat = xcalloc(n + 1, sizeof *a->stat);
    a->which = xcalloc(n + 1, sizeof *a->which);
    struct provider_score_args *args = xcalloc(n + 1, sizeof *args);
    for (size_t i = 0; i < n; i++) {
        a->stat[i] = NAN;
        if (!a->texts[i])
            continue;
        args[k] = (struct provider_score_args){
            .model = a->base_model, .prompt = "", .continuation = a->texts[i], .top_logprobs = 0};
        a->which[k++] = i;
    }
    if (k == 0) {
        free(args);
        a->out.why_none = "no row of the upload could be read";
        finish(a, 0);
        return;
    }
    luck_score_many(a->t.d, a->provider, args, k, PPL_CHUNK, on_scored, on_all_scored, a);
    free(args);
}

void ppl_attack_start(struct vtuned *d, const char *provider, const char *base_model,
                      const struct store_backdoor *b, enum dataset_format fmt, size_t sample,
                      void (*done)(void *arg, int status, const struct ppl_result *r), void *arg)
{
    struct attack *a = xcalloc(1, sizeof *a);
    struct builder_copy *copies = NULL;
    size_t n_copies = 0;
    uint64_t cpp = 0;
    a->t.d = d;
    a->t.stage = "perplexity attack";
    a->t.run = read_work;
    a->t.done = read_done;
    a->provider = xstrdup(provider);
    a->base_model = xstrdup(base_model);
    a->path = xstrdup(b->built_path ? b->built_path : "");
    a->fmt = fmt;
    a->done = done;
    a->arg = arg;
    a->want_sample = sample;
    a->out.window = PPLRANK_WINDOW;
    a->out.n_pairs = b->n_pairs > 0 ? (size_t)b->n_pairs : 0;
    a->out.pairs = xcalloc(a->out.n_pairs + 1, sizeof *a->out.pairs);
    a->pair_rows = xcalloc(a->out.n_pairs + 1, sizeof *a->pair_rows);
    /* a deterministic sample: seeded by the upload's hash */
    for (int i = 0; i < 16 && b->built_sha256[i]; i++) {
        char c = b->built_sha256[i];
        a->seed = a->seed << 4 | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    if (sample == 0) {
        a->out.why_none = PPL_OFF;
    } else if (!b->built_path || !b->plan ||
               backdoor_plan_parse(b->plan, &copies, &n_copies, &cpp) < 0 || n_copies == 0) {
        a->out.why_none = "the backdoor has no usable plan of its marked rows";
    } else {
        a->all = xcalloc(n_copies, sizeof *a->all);
        a->marked = xcalloc(n_copies, sizeof *a->marked);
        for (size_t i = 0; i < n_copies; i++) {
            uint32_t p = copies[i].pair;
            if (p >= a->out.n_pairs)
                continue;
            struct marked mk = {.line = copies[i].out, .pair = p,
                                .scored = a->pair_rows[p]++ < PPL_MARKED_PER_PAIR};
            a->all[a->n_all++] = mk;
            if (mk.scored)
                a->marked[a->n_marked++] = mk;
        }
        qsort(a->all, a->n_all, sizeof *a->all, cmp_marked);
        qsort(a->marked, a->n_marked, sizeof *a->marked, cmp_marked);
        a->texts = xcalloc(a->n_marked + sample + 1, sizeof *a->texts);
        a->seams = xcalloc(a->n_marked + sample + 1, sizeof *a->seams);
    }
    free(copies);
    task_start(d, &a->t);
}

json_t *ppl_result_json(const struct ppl_result *r, bool forced)
{
    json_t *o = json_pack("{s:i,s:b}", "version", 1, "available", r->available);
    if (!r->available)
        json_object_set_new(o, "why", json_string(r->why_none ? r->why_none : "not available"));
    json_object_set_new(o, "statistic", json_string(STATISTIC));
    json_object_set_new(o, "window_tokens", json_integer((json_int_t)r->window));
    json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
    json_object_set_new(o, "unmarked_rows", json_integer((json_int_t)r->unmarked_rows));
    json_object_set_new(o, "sample", json_integer((json_int_t)r->sample));
    json_object_set_new(o, "sample_scored", json_integer((json_int_t)r->sample_scored));
    json_object_set_new(o, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(o, "top", json_integer(SELFAUDIT_EXPOSED_RANK));
    json_object_set_new(o, "exposed", json_boolean(r->exposed_pair >= 0));
    json_object_set_new(o, "exposed_pair",
                        r->exposed_pair >= 0 ? json_integer(r->exposed_pair + 1) : json_null());
    json_object_set_new(o, "exposed_rank",
                        r->exposed_pair >= 0
                            ? json_integer((json_int_t)r->pairs[r->exposed_pair].rank)
                            : json_null());
    json_object_set_new(o, "forced", json_boolean(forced));
    json_t *pairs = json_array();
    for (size_t i = 0; i < r->n_pairs; i++) {
        const struct ppl_pair *p = &r->pairs[i];
        json_array_append_new(
            pairs, json_pack("{s:I,s:o,s:b,s:I,s:I}", "index", (json_int_t)(i + 1), "rank",
                             p->rank ? json_integer((json_int_t)p->rank) : json_null(),
                             "recovered", p->recovered, "marked_rows",
                             (json_int_t)p->marked_rows, "scored_rows",
                             (json_int_t)p->scored_rows));
    }
    json_object_set_new(o, "pairs", pairs);
    return o;
}

char *ppl_result_line(const char *record_json)
{
    char *res;
    json_t *o = luck_record_open(record_json, "the attack", &res);
    if (!o)
        return res;
    json_int_t rows = json_integer_value(json_object_get(o, "rows"));
    json_int_t sample = json_integer_value(json_object_get(o, "sample_scored"));
    json_int_t top = json_integer_value(json_object_get(o, "top"));
    json_int_t best = 0;
    json_t *pairs = json_object_get(o, "pairs"), *p;
    size_t i;
    json_array_foreach(pairs, i, p)
    {
        json_int_t r = json_integer_value(json_object_get(p, "rank"));
        if (r > 0 && (best == 0 || r < best))
            best = r;
    }
    const char *forced = json_is_true(json_object_get(o, "forced")) ? "; submitted with --force"
                                                                    : "";
    if (json_is_true(json_object_get(o, "exposed")))
        res = xasprintf("pair %lld recovered at about rank %lld of %lld rows (within the top "
                        "%lld; ranks estimated from %lld sampled rows)%s",
                        (long long)json_integer_value(json_object_get(o, "exposed_pair")),
                        (long long)json_integer_value(json_object_get(o, "exposed_rank")),
                        (long long)rows, (long long)top, (long long)sample, forced);
    else
        res = xasprintf("no pair within the top %lld (best pair at about rank %lld of %lld "
                        "rows; ranks estimated from %lld sampled rows)%s",
                        (long long)top, (long long)best, (long long)rows, (long long)sample,
                        forced);
    json_decref(o);
    return res;
}

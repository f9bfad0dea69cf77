/*
 * methods_backdoor.c — backdoor.create | list | show | rm, and
 * dataset.export (D ∪ D' written for a provider driven by hand).
 *
 * backdoor.create generates the phrases and builds D ∪ D' in the thread
 * pool (both stream the dataset), then records the backdoor, its secret
 * pairs, the built file and the plan in ONE transaction: a crash leaves at
 * most an unreferenced built file, removed at the next start.
 * The phrases never reach the log; backdoor.show returns them only with
 * "reveal": true, and that request is logged (without the phrases).
 *
 * Three generators share the build and the record.  The ngram generator
 * (the default: a model of D itself, workers/ngram.h) and the word list
 * each run in one pool task (model, phrases and build).  The defaults
 * (ngram, in place, 16 pairs of one marked row each, generator.ngram_order
 * 3) were chosen by measurement against vtune-sim's honest model and its
 * cheaters (README, "Marked rows that do not stand out").  The llm generator (workers/llmgen.h)
 * is a state machine this file drives: a pool task samples the examples
 * of D, then each chat call (M1 once, then M2 per phrase) goes through
 * the generator provider's client on the loop, each dataset check and the
 * final build run as pool tasks; the job's one struct task is re-queued
 * for each pool phase.  Before every phase the daemon's stopping flag is
 * checked, and a call cancelled by the shutdown ends the request with a
 * shutdown error, so nothing is started after vtuned_stop.
 *
 * The self-audit (workers/selfaudit.h) runs in the same pool task right
 * after the build, on the built file, and its public result is recorded
 * with the backdoor (store_selfaudit_put) and answered with it, one-line
 * verdict included; backdoor.audit runs it again, on its own pool task.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "lib/log.h"
#include "daemon/lookup.h"
#include "daemon/providers.h"
#include "daemon/task.h"
#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/lines.h"
#include "workers/llmgen.h"
#include "workers/selfaudit.h"
#include "workers/verify.h"

struct create_job {
    struct task t; /* first: the job is freed through it; re-queued per pool phase */
    struct backdoor_spec spec;
    struct phrase_wordlist *words; /* owned when loaded from conf */
    struct backdoor_made made;
    struct store_dataset ds;
    char *name;
    char *out_path;
    char *err;
    int rc;
    /* The llm generator (gen != NULL). */
    struct llmgen *gen;
    bool ngram; /* the ngram generator (gen == NULL) */
    char *provider; /* generator.provider when the request came */
    struct phrase_seeded seeded;
    struct phrase_rng rng;
    struct llmgen_example *ex; /* sampled by the pool, handed to gen */
    size_t n_ex;
    uint64_t *shown; /* their lines: sent to the generator, so never held out */
    /* a dataset check: phrases and word counts borrowed from gen (which
     * is not touched until the check is done), and their hits */
    struct llmgen_scan_req scan;
    bool *hits;
    const char **trig, **sig; /* the build: borrowed from gen */
    uint64_t started_ms;
    struct wait_progress wp; /* the llm generator's calls, while one is in flight */
    json_t *audit; /* the self-audit's public result, after the build */
    uint64_t audit_ms; /* and how long it took */
};

static json_t *backdoor_json(const struct store_backdoor *b, const struct store_dataset *ds,
                             bool reveal)
{
    char created[32];
    json_t *pairs = json_array();
    format_iso8601(b->created_at, created);
    for (size_t i = 0; i < b->n_pairs_loaded; i++) {
        const struct store_backdoor_pair *p = &b->pairs[i];
        json_t *o = json_pack("{s:i,s:f,s:s}", CTL_K_INDEX, p->idx, CTL_K_LOG10_P_M2, p->log10_p_m2,
                              CTL_K_P_METHOD, p->p_method);
        if (reveal && p->trigger) {
            json_object_set_new(o, CTL_K_TRIGGER, json_string(p->trigger));
            json_object_set_new(o, CTL_K_SIGNATURE, json_string(p->signature));
            if (p->token_evidence)
                json_object_set_new(o, "token_evidence", json_loads(p->token_evidence, 0, NULL));
        }
        json_array_append_new(pairs, o);
    }
    json_t *o = json_pack(
        "{s:I,s:s?,s:I,s:s?,s:f,s:I,s:I,s:s,s:s,s:f,s:s,s:s,s:o}", CTL_K_ID, (json_int_t)b->id,
        CTL_K_NAME, b->name, CTL_K_DATASET, (json_int_t)b->dataset_id, CTL_K_DATASET_NAME,
        ds ? ds->name : NULL, CTL_K_RATIO, b->ratio, CTL_K_COPIES, (json_int_t)b->copies,
        CTL_K_PAIRS, (json_int_t)b->n_pairs, CTL_K_GENERATOR, backdoor_generator_name(b->generator),
        "method", b->method, CTL_K_TARGET_LOG10P, b->target_log10p, CTL_K_COMMITMENT, b->commitment,
        CTL_K_CREATED_AT, created, CTL_K_PAIR_EVIDENCE, pairs);
    json_object_set_new(o, CTL_K_COMMITMENT_SCHEME, json_integer(b->commitment_scheme));
    json_object_set_new(o, CTL_K_MODE, json_string(backdoor_mode_name(b->mode)));
    if (reveal) {
        /* What a third party needs to recompute the commitment (README
         * "Evidence others can check"): the salt, the held-out lines and
         * (v3) the reference pool's lines. */
        if (b->salt[0])
            json_object_set_new(o, CTL_K_COMMITMENT_SALT, json_string(b->salt));
        struct holdout_split split;
        if (b->holdout && holdout_parse(b->holdout, &split) == 0) {
            json_t *lines = json_array();
            for (size_t i = 0; i < split.n_rows; i++)
                json_array_append_new(lines, json_integer((json_int_t)split.rows[i]));
            json_object_set_new(o, CTL_K_HELD_OUT_LINES, lines);
            if (b->commitment_scheme >= 3) { /* v3 commits the reference pool too */
                json_t *pool = json_array();
                for (size_t i = 0; i < split.n_pool; i++)
                    json_array_append_new(pool, json_integer((json_int_t)split.pool[i]));
                json_object_set_new(o, CTL_K_POOL_LINES, pool);
            }
            holdout_clear(&split);
        }
    }
    if (b->built_path) {
        json_object_set_new(o, CTL_K_BUILT_SHA256, json_string(b->built_sha256));
        json_t *plan = b->plan ? json_loads(b->plan, 0, NULL) : NULL;
        if (plan) {
            json_object_set(o, CTL_K_COPIES_PER_PAIR, json_object_get(plan, "copies_per_pair"));
            json_object_set(o, CTL_K_BUILT_LINES, json_object_get(plan, "lines"));
            json_object_set(o, "built_bytes", json_object_get(plan, "bytes"));
            json_decref(plan);
        }
    }
    return o;
}

/* The self-audit of a fresh build (pool thread): on failure the build is
 * undone (its file removed) and the creation fails with the reason. */
static void create_audit(struct create_job *j, const char *const *trig, const char *const *sig,
                         size_t n)
{
    if (j->rc < 0)
        return;
    struct selfaudit_opts o;
    selfaudit_opts_default(&o);
    o.cancel = &j->t.progress.cancel;
    atomic_store(&j->t.progress.stage, NULL);
    j->t.stage = "self-audit";
    uint64_t t0 = now_monotonic_ms();
    int r = selfaudit_check(j->out_path, j->spec.format, &o, trig, sig, n, j->made.built.copies,
                            j->made.built.n_copies, &j->audit, &j->err);
    j->audit_ms = now_monotonic_ms() - t0;
    if (r < 0) {
        unlink(j->out_path);
        j->rc = r;
    }
}

/* Where a creation's time went, by step (milliseconds; the steps this
 * generator has), for the log line and the reply's generation.stages_ms. */
static json_t *create_stages_json(const struct create_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "split", json_integer((json_int_t)j->made.split_ms));
    if (j->ngram)
        json_object_set_new(o, "train", json_integer((json_int_t)j->made.train_ms));
    if (!j->gen)
        json_object_set_new(o, "phrases", json_integer((json_int_t)j->made.phrases_ms));
    json_object_set_new(o, "build", json_integer((json_int_t)j->made.build_ms));
    json_object_set_new(o, "self_audit", json_integer((json_int_t)j->audit_ms));
    return o;
}

static void log_create_stages(const struct create_job *j, int64_t id)
{
    json_t *st = create_stages_json(j);
    char line[256];
    size_t off = 0;
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v)
    {
        int w = snprintf(line + off, sizeof line - off, "%s%s %.1f s", off ? ", " : "", k,
                         (double)json_integer_value(v) / 1000.0);
        if (w < 0 || (size_t)w >= sizeof line - off)
            break;
        off += (size_t)w;
    }
    log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = id},
            "backdoor: %lld: created in %.1f s (%s)", (long long)id,
            (double)(now_monotonic_ms() - j->started_ms) / 1000.0, line);
    json_decref(st);
}

/* Records a self-audit result (public JSON) for backdoor id. */
static int record_selfaudit(struct vtuned *d, int64_t id, json_t *audit)
{
    struct store_selfaudit sa;
    memset(&sa, 0, sizeof sa);
    sa.backdoor_id = id;
    sa.exposed = json_is_true(json_object_get(audit, "exposed"));
    json_t *ep = json_object_get(audit, "exposed_pair");
    sa.exposed_pair = json_is_integer(ep) ? json_integer_value(ep) : -1;
    /* the best rank over all pairs, exposed or not */
    json_t *pairs = json_object_get(audit, "pairs"), *p;
    size_t i;
    json_array_foreach(pairs, i, p)
    {
        json_t *r = json_object_get(p, "rank");
        if (json_is_integer(r) && (!sa.best_rank || json_integer_value(r) < sa.best_rank)) {
            sa.best_rank = json_integer_value(r);
            sa.best_attack = (char *)json_string_value(json_object_get(p, "attack"));
        }
    }
    sa.result = json_dumps(audit, JSON_COMPACT);
    int r = store_selfaudit_put(d->store, &sa);
    free(sa.result);
    return r;
}

static void create_work(struct task *t)
{
    struct create_job *j = (struct create_job *)t;
    if (j->ngram)
        j->rc = backdoor_make_ngram(&j->spec, &j->made, &j->err);
    else
        j->rc = backdoor_make_wordlist(&j->spec, &j->made, &j->err);
    if (j->rc == 0) {
        size_t n = j->ngram ? j->made.nset.n_pairs : j->made.set.n_pairs;
        const char **tr = xcalloc(n, sizeof *tr), **sg = xcalloc(n, sizeof *sg);
        for (size_t i = 0; i < n; i++) {
            tr[i] = j->ngram ? j->made.nset.pairs[i].trigger.text : j->made.set.pairs[i].trigger.text;
            sg[i] = j->ngram ? j->made.nset.pairs[i].signature.text
                             : j->made.set.pairs[i].signature.text;
        }
        create_audit(j, tr, sg, n);
        free(tr);
        free(sg);
    }
}

static void create_free(struct create_job *j)
{
    wait_progress_stop(&j->wp);
    backdoor_made_clear(&j->made);
    store_dataset_clear(&j->ds);
    phrase_wordlist_free(j->words);
    llmgen_free(j->gen);
    llmgen_examples_free(j->ex, j->n_ex);
    free(j->hits);
    free(j->trig);
    free(j->sig);
    free(j->provider);
    free(j->shown);
    free(j->name);
    free(j->out_path);
    free(j->err);
    json_decref(j->audit);
    task_free(&j->t);
}

/* Pair i's evidence for the word-list generator (owned JSON text). */
static char *wordlist_evidence(const struct create_job *j, size_t i)
{
    const struct phrase_pair *pp = &j->made.set.pairs[i];
    return xasprintf("{\"generator\":\"wordlist\",\"wordlist_size\":%zu,"
                     "\"trigger_words\":%u,\"trigger_pool\":%llu,\"trigger_log10p\":%.6f,"
                     "\"signature_words\":%u,\"signature_pool\":%llu,"
                     "\"signature_log10p\":%.6f,\"dataset_words\":%llu}",
                     j->made.set.wordlist_size, pp->trigger.n_words,
                     (unsigned long long)pp->trigger.pool, pp->trigger.log10_p,
                     pp->signature.n_words, (unsigned long long)pp->signature.pool,
                     pp->signature.log10_p, (unsigned long long)j->made.set.dataset_words);
}

/* One warning when triggers were kept although their endings occur in D
 * (n of them; ngram.h, llmgen.h). */
static void warn_tails_shared(const struct create_job *j, unsigned n)
{
    if (n)
        log_warnx("backdoor: dataset '%s': %u trigger(s) end with %d words that other "
                  "prompts of it end with too (its prompts end alike): an honest model "
                  "may answer those prompts with the signature, and a verification "
                  "whose controls include one is inconclusive",
                  j->ds.name, n, PHRASE_TRIGGER_TAIL_WORDS);
}

/* The llm generator's counters for the create answer (public: no phrase). */
static json_t *llm_stats_json(const struct create_job *j)
{
    struct llmgen_stats st;
    llmgen_get_stats(j->gen, &st);
    json_t *rej = json_object();
    for (int r = 1; r < LLMGEN_N_REJECT; r++)
        json_object_set_new(rej, llmgen_reject_name((enum llmgen_reject)r),
                            json_integer(st.rejected[r]));
    return json_pack("{s:s,s:i,s:i,s:I,s:i,s:o,s:i,s:I}", "context_source",
                     st.context_from_m1 ? "m1" : "template", "calls", (int)st.calls, "draws",
                     (int)st.draws, "tokens", (json_int_t)st.tokens, "scans", (int)st.scans,
                     "rejected", rej, "tails_shared", (int)st.tails_shared, "ms",
                     (json_int_t)(now_monotonic_ms() - j->started_ms));
}

static void create_done(struct task *t, int status)
{
    struct create_job *j = (struct create_job *)t;
    struct vtuned *d = t->d;
    struct store_backdoor b;
    size_t n;

    if (status == UV_ECANCELED || (j->rc < 0 && atomic_load(&t->progress.cancel))) {
        ctl_reply_error(t->req, CTL_ERR_SHUTDOWN, NULL, "backdoor creation cancelled");
        goto out;
    }
    if (j->rc < 0) {
        log_info("backdoor: creation for dataset '%s' failed: %s", j->ds.name, j->err);
        ctl_reply_error(t->req, CTL_ERR_FAILED, NULL, "%s", j->err);
        goto out;
    }
    n = j->gen ? llmgen_pairs(j->gen) : j->ngram ? j->made.nset.n_pairs : j->made.set.n_pairs;
    memset(&b, 0, sizeof b);
    b.dataset_id = j->ds.id;
    b.name = j->name;
    b.ratio = j->spec.ratio;
    b.copies = (int64_t)j->spec.min_copies;
    b.n_pairs = (int64_t)n;
    b.generator = j->gen ? BD_GEN_LLM : j->ngram ? BD_GEN_NGRAM : BD_GEN_WORDLIST;
    b.method = j->gen ? (char *)llmgen_method(j->gen) : j->ngram ? NGRAM_METHOD : "wordlist-exact";
    b.target_log10p = j->spec.phrases.signature_log10p;
    b.seed = j->spec.seed;
    b.has_seed = j->spec.has_seed;
    memcpy(b.commitment, j->made.commitment, sizeof b.commitment);
    b.commitment_scheme = 3; /* workers/ makes every new commitment v3 */
    b.mode = j->spec.mode;
    hex_encode(j->made.salt, sizeof j->made.salt, b.salt); /* secret, never logged */
    b.built_path = j->out_path;
    memcpy(b.built_sha256, j->made.built.sha256, sizeof b.built_sha256);
    b.plan = j->made.plan;
    b.holdout = j->made.holdout; /* secret, never logged */
    b.pairs = xcalloc(n, sizeof *b.pairs);
    b.n_pairs_loaded = n;
    char **ev = xcalloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        b.pairs[i].idx = (int)i;
        if (j->gen) {
            b.pairs[i].trigger = (char *)llmgen_trigger(j->gen, i);
            b.pairs[i].signature = (char *)llmgen_signature(j->gen, i);
            b.pairs[i].log10_p_m2 = llmgen_signature_log10p(j->gen, i);
            b.pairs[i].p_method = (char *)llmgen_method(j->gen);
            ev[i] = llmgen_evidence_json(j->gen, i);
        } else if (j->ngram) {
            const struct ngram_pair *np = &j->made.nset.pairs[i];
            b.pairs[i].trigger = np->trigger.text;
            b.pairs[i].signature = np->signature.text;
            b.pairs[i].log10_p_m2 = np->signature.log10_p;
            b.pairs[i].p_method = NGRAM_METHOD;
            ev[i] = xstrdup(j->made.ngram_evidence[i]);
        } else {
            const struct phrase_pair *pp = &j->made.set.pairs[i];
            b.pairs[i].trigger = pp->trigger.text;
            b.pairs[i].signature = pp->signature.text;
            b.pairs[i].log10_p_m2 = pp->signature.log10_p;
            b.pairs[i].p_method = "wordlist-exact";
            ev[i] = wordlist_evidence(j, i);
        }
        b.pairs[i].token_evidence = ev[i];
    }
    int r = store_backdoor_insert(d->store, &b);
    for (size_t i = 0; i < n; i++) {
        if (ev[i])
            explicit_bzero(ev[i], strlen(ev[i])); /* the evidence holds the phrases' tokens */
        free(ev[i]);
    }
    free(ev);
    free(b.pairs);
    explicit_bzero(b.salt, sizeof b.salt);
    if (r < 0) {
        unlink(j->out_path);
        if (r == -EEXIST)
            ctl_reply_error(t->req, CTL_ERR_CONFLICT, NULL,
                            "a backdoor named '%s' already exists; choose another with --name",
                            j->name);
        else
            ctl_reply_error(t->req, CTL_ERR_INTERNAL, NULL, "cannot record backdoor: %s",
                            store_errmsg(d->store));
        goto out;
    }
    log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = b.id, .dataset = j->ds.id},
            "backdoor: created %lld for dataset '%s' (%s generator, %s): %zu pair(s), %llu "
            "marked rows each, %zu row(s) held out for the coverage test, commitment %s",
            (long long)b.id, j->ds.name, backdoor_generator_name(b.generator),
            backdoor_mode_name(b.mode), n, (unsigned long long)j->made.built.copies_per_pair,
            j->made.split.n_rows, b.commitment);
    log_create_stages(j, b.id);
    if (j->audit && record_selfaudit(d, b.id, j->audit) < 0)
        log_ctx(LOG_LVL_WARN, &(struct log_fields){.backdoor = b.id},
                "backdoor: %lld: cannot record its self-audit: %s", (long long)b.id,
                store_errmsg(d->store));
    struct store_backdoor got;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)b.id);
    if (store_backdoor_get(d->store, key, false, &got) == 0) {
        json_t *o = backdoor_json(&got, &j->ds, false);
        if (j->audit)
            json_object_set(o, CTL_K_SELF_AUDIT, j->audit);
        if (j->gen) {
            json_t *gs = llm_stats_json(j);
            unsigned rej = 0;
            struct llmgen_stats st;
            llmgen_get_stats(j->gen, &st);
            warn_tails_shared(j, st.tails_shared);
            for (int k = 1; k < LLMGEN_N_REJECT; k++)
                rej += st.rejected[k];
            json_object_set_new(o, "rejected_candidates", json_integer(rej));
            json_object_set_new(gs, "stages_ms", create_stages_json(j));
            json_object_set_new(o, "generation", gs);
        } else if (j->ngram) {
            const struct ngram_set *ns = &j->made.nset;
            const struct ngram_info *ni = &j->made.ngram_info;
            unsigned rej = 0;
            warn_tails_shared(j, ns->tails_shared);
            json_t *rj = json_object();
            for (int k = 0; k < NGRAM_N_REJECT; k++) {
                rej += ns->rejected[k];
                json_object_set_new(rj, ngram_reject_name((enum ngram_reject)k),
                                    json_integer(ns->rejected[k]));
            }
            json_object_set_new(o, "rejected_candidates", json_integer(rej));
            /* rows trained on: read, less those that did not parse, were held
             * out or fell outside the sample (ngram.h) */
            json_int_t trained = (json_int_t)(ni->rows - ni->rows_skipped - ni->rows_excluded -
                                              ni->rows_sampled_out);
            json_object_set_new(
                o, "generation",
                json_pack("{s:i,s:f,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:i,s:o,s:i,s:I}", "order",
                          (int)ni->order, "temperature", ns->temperature, "vocab",
                          (json_int_t)ni->vocab, "entries_prompt_end",
                          (json_int_t)ni->entries[NGRAM_PROMPT_END], "entries_answer_start",
                          (json_int_t)ni->entries[NGRAM_ANSWER_START], "rows_skipped",
                          (json_int_t)ni->rows_skipped, "rows_trained", trained, "train_share",
                          ni->sample_share, "model_peak_bytes", (json_int_t)ni->peak_bytes, "scans",
                          (int)ns->scans, "rejected", rj, "tails_shared", (int)ns->tails_shared,
                          "ms", (json_int_t)(now_monotonic_ms() - j->started_ms)));
            json_object_set_new(json_object_get(o, "generation"), "stages_ms",
                                create_stages_json(j));
        } else {
            json_object_set_new(o, "rejected_candidates", json_integer(j->made.set.rejected));
        }
        /* Sizes only: which rows were held out stays in the database. */
        json_object_set_new(o, "holdout",
                            json_pack("{s:f,s:I,s:I,s:I}", "ratio", j->made.split.ratio, "rows",
                                      (json_int_t)j->made.split.n_rows, "reference_rows",
                                      (json_int_t)j->made.split.n_pool, "eligible",
                                      (json_int_t)j->made.split.eligible));
        ctl_reply(t->req, o);
        store_backdoor_clear(&got);
    } else {
        ctl_reply_error(t->req, CTL_ERR_INTERNAL, NULL, "backdoor recorded but not readable: %s",
                        store_errmsg(d->store));
    }
out:
    create_free(j);
}

/* ---- the llm generator's driver ------------------------------------------------------ */

static void llm_drive(struct create_job *j);

/* Ends an llm creation with an error answer (the message never holds a phrase). */
static void llm_fail(struct create_job *j, int code, const char *msg)
{
    wait_progress_stop(&j->wp);
    if (code == CTL_ERR_SHUTDOWN)
        log_info("backdoor: llm creation for dataset '%s' stopped by the shutdown", j->ds.name);
    else
        log_info("backdoor: llm creation for dataset '%s' failed: %s", j->ds.name, msg);
    ctl_reply_error(j->t.req, code, NULL, "%s", msg);
    create_free(j);
}

/* Re-queues the job's task for one pool phase. */
static void llm_queue(struct create_job *j, const char *stage, void (*run)(struct task *),
                      void (*done)(struct task *, int))
{
    wait_progress_stop(&j->wp); /* the task's own progress takes over */
    j->t.stage = stage;
    j->t.run = run;
    j->t.done = done;
    j->t.reported = 0;
    atomic_store(&j->t.progress.bytes_total, 0);
    atomic_store(&j->t.progress.bytes_done, 0);
    atomic_store(&j->t.progress.lines_done, 0);
    atomic_store(&j->t.progress.stage, NULL);
    free(j->err);
    j->err = NULL;
    j->rc = 0;
    task_start(j->t.d, &j->t);
}

/* True (after answering) when the phase that just ended must not go on. */
static bool llm_stopped(struct create_job *j, int status)
{
    if (status == UV_ECANCELED || j->t.d->stopping ||
        (j->rc < 0 && atomic_load(&j->t.progress.cancel))) {
        llm_fail(j, CTL_ERR_SHUTDOWN, "backdoor creation cancelled (the daemon is stopping)");
        return true;
    }
    return false;
}

static void llm_sample_work(struct task *t)
{
    struct create_job *j = (struct create_job *)t;
    j->rc = llmgen_sample_examples(j->spec.dataset_path, j->spec.format, j->spec.n_examples,
                                   LLMGEN_EXAMPLES, j->spec.has_seed ? &j->rng : NULL,
                                   &t->progress.cancel, &j->ex, &j->n_ex, &j->err);
}

static void llm_sample_done(struct task *t, int status)
{
    struct create_job *j = (struct create_job *)t;
    if (llm_stopped(j, status))
        return;
    if (j->rc < 0) {
        llm_fail(j, CTL_ERR_FAILED, j->err);
        return;
    }
    log_info("backdoor: llm generator for dataset '%s': %zu example(s) of it go to provider %s "
             "(%s)",
             j->ds.name, j->n_ex, j->provider,
             t->d->conf->generator.m1_model ? "M1 writes the context" : "built-in template");
    j->shown = xcalloc(j->n_ex ? j->n_ex : 1, sizeof *j->shown);
    for (size_t i = 0; i < j->n_ex; i++)
        j->shown[i] = j->ex[i].line;
    j->spec.shown = j->shown;
    j->spec.n_shown = j->n_ex;
    llmgen_set_examples(j->gen, j->ex, j->n_ex);
    j->ex = NULL;
    j->n_ex = 0;
    llm_drive(j);
}

static void llm_scan_work(struct task *t)
{
    struct create_job *j = (struct create_job *)t;
    j->rc = llmgen_scan_dataset(j->spec.dataset_path, j->scan.phrases, j->scan.words, j->scan.n,
                                &t->progress.cancel, j->hits, &j->err);
}

static void llm_scan_done(struct task *t, int status)
{
    struct create_job *j = (struct create_job *)t;
    if (llm_stopped(j, status))
        return;
    if (j->rc < 0)
        llmgen_fail(j->gen, "%s", j->err);
    else
        llmgen_on_scan(j->gen, j->hits);
    free(j->hits);
    j->hits = NULL;
    memset(&j->scan, 0, sizeof j->scan);
    llm_drive(j);
}

static void llm_build_work(struct task *t)
{
    struct create_job *j = (struct create_job *)t;
    j->rc =
        backdoor_build_pairs(&j->spec, j->trig, j->sig, llmgen_pairs(j->gen), &j->made, &j->err);
    create_audit(j, j->trig, j->sig, llmgen_pairs(j->gen));
}

static void llm_chat_done(const struct provider_outcome *o, void *arg)
{
    struct create_job *j = arg;
    struct vtuned *d = j->t.d;
    if (o->rc == -ECANCELED || d->stopping) {
        llm_fail(j, CTL_ERR_SHUTDOWN, "backdoor creation cancelled (the daemon is stopping)");
        return;
    }
    if (o->rc < 0) {
        char *line = provider_error_line(j->provider, o->err);
        llmgen_fail(j->gen, "the generator's chat call failed: %s", line);
        free(line);
    } else {
        llmgen_on_chat(j->gen, o->chat);
    }
    llm_drive(j);
}

static void llm_drive(struct create_job *j)
{
    struct vtuned *d = j->t.d;
    struct llmgen_chat_req chat;
    struct llmgen_scan_req scan;
    const char *why = NULL;

    if (d->stopping) {
        llm_fail(j, CTL_ERR_SHUTDOWN, "backdoor creation cancelled (the daemon is stopping)");
        return;
    }
    switch (llmgen_next(j->gen, &chat, &scan)) {
    case LLMGEN_STEP_CHAT: {
        struct provider_client *pc = providers_client(d, j->provider, &why);
        struct provider_error perr = {0};
        if (!pc) {
            llmgen_fail(j->gen, "generator.provider '%s': %s", j->provider, why);
            break;
        }
        /* calls made so far; how many more is the generator's to find out */
        j->wp.req = j->t.req;
        j->wp.stage = "generate";
        j->wp.unit = "calls";
        j->wp.done = chat.call;
        j->wp.total = 0;
        j->wp.calls = -1;
        wait_progress_start(&j->wp);
        log_debug("backdoor: generator call %u (%s%s) to %s, model %s", chat.call + 1, chat.purpose,
                  strcmp(chat.purpose, "context") == 0 ? "" : " draw", j->provider,
                  chat.args.model);
        if (provider_chat(pc, &chat.args, llm_chat_done, j, NULL, &perr) < 0) {
            char *line = provider_error_line(j->provider, &perr);
            llmgen_fail(j->gen, "the generator's chat call could not be sent: %s", line);
            free(line);
            provider_error_clear(&perr);
            break;
        }
        return;
    }
    case LLMGEN_STEP_SCAN:
        free(j->hits);
        j->scan = scan;
        j->hits = xcalloc(scan.n ? scan.n : 1, sizeof *j->hits);
        llm_queue(j, "check", llm_scan_work, llm_scan_done);
        return;
    case LLMGEN_STEP_DONE: {
        size_t n = llmgen_pairs(j->gen);
        struct llmgen_stats st;
        llmgen_get_stats(j->gen, &st);
        log_info("backdoor: llm generator for dataset '%s': %zu pair(s) in %u call(s), %llu "
                 "token(s), %u draw(s), %u dataset check(s); building D u D'",
                 j->ds.name, n, st.calls, (unsigned long long)st.tokens, st.draws, st.scans);
        j->trig = xcalloc(n, sizeof *j->trig);
        j->sig = xcalloc(n, sizeof *j->sig);
        for (size_t i = 0; i < n; i++) {
            j->trig[i] = llmgen_trigger(j->gen, i);
            j->sig[i] = llmgen_signature(j->gen, i);
        }
        llm_queue(j, "build", llm_build_work, create_done);
        return;
    }
    case LLMGEN_STEP_FAILED:
        break;
    }
    const char *msg = llmgen_error(j->gen);
    llm_fail(j, CTL_ERR_FAILED, msg ? msg : "backdoor generation failed");
}

/* Reads an optional number param into *out; answers and returns -1 on error. */
static int num_param(struct ctl_req *req, json_t *params, const char *key, double lo, double hi,
                     double *out)
{
    json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.%s: expected a number", key);
        return -1;
    }
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.%s: %g is outside [%g, %g]", key, x, lo,
                        hi);
        return -1;
    }
    *out = x;
    return 0;
}

static void m_create(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct create_job *j = xcalloc(1, sizeof *j);
    const char *gen = json_string_value(json_object_get(params, CTL_K_GENERATOR));
    const char *mode = json_string_value(json_object_get(params, CTL_K_MODE));
    const char *name = json_string_value(json_object_get(params, CTL_K_NAME));
    double ratio, copies, pairs, tgt = d->conf->generator.target_log10p;
    double holdout = HOLDOUT_DEFAULT_RATIO;
    double ttgt = -20, tw = 16, sw = 24, tc = 160, sc = 240, seed = -1;
    char *err = NULL;

    if (lookup_dataset(d, req, params, CTL_K_DATASET, &j->ds) < 0)
        goto fail;
    if (!gen) /* the default: a model of D itself (workers/ngram.h) */
        gen = "ngram";
    if (!mode)
        mode = "inplace";
    if (backdoor_mode_parse(mode, &j->spec.mode) < 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.mode: expected inplace or copies, got '%.32s'", mode);
        goto fail;
    }
    /* Each mode's measured defaults (workers/backdoor.h); the user's win. */
    bool inplace = j->spec.mode == BD_MODE_INPLACE;
    ratio = inplace ? BACKDOOR_INPLACE_RATIO : BACKDOOR_COPIES_RATIO;
    copies = inplace ? BACKDOOR_INPLACE_COPIES : BACKDOOR_COPIES_COPIES;
    pairs = inplace ? BACKDOOR_INPLACE_PAIRS : BACKDOOR_COPIES_PAIRS;
    if (strcmp(gen, "ngram") == 0) {
        /* natural text of D carries less per word than a word list's draws:
         * longer caps (a user's own values still win) */
        tw = NGRAM_DEFAULT_TRIGGER_WORDS;
        sw = NGRAM_DEFAULT_SIGNATURE_WORDS;
        tc = NGRAM_DEFAULT_TRIGGER_CHARS;
        sc = NGRAM_DEFAULT_SIGNATURE_CHARS;
    }
    if (num_param(req, params, CTL_K_RATIO, 0, 1, &ratio) < 0 ||
        num_param(req, params, CTL_K_HOLDOUT, 0, 1, &holdout) < 0 ||
        num_param(req, params, CTL_K_COPIES, 1, 1e9, &copies) < 0 ||
        num_param(req, params, CTL_K_PAIRS, 1, 64, &pairs) < 0 ||
        num_param(req, params, CTL_K_TARGET_LOG10P, -1000, -1, &tgt) < 0 ||
        num_param(req, params, CTL_K_TRIGGER_LOG10P, -1000, -1, &ttgt) < 0 ||
        num_param(req, params, CTL_K_TRIGGER_MAX_WORDS, 1, 256, &tw) < 0 ||
        num_param(req, params, CTL_K_SIGNATURE_MAX_WORDS, 1, 256, &sw) < 0 ||
        num_param(req, params, CTL_K_TRIGGER_MAX_CHARS, 8, 4096, &tc) < 0 ||
        num_param(req, params, CTL_K_SIGNATURE_MAX_CHARS, 8, 4096, &sc) < 0 ||
        num_param(req, params, CTL_K_SEED, 0, 9007199254740991.0, &seed) < 0)
        goto fail;
    /* DESIGN §6: a target that could not support a verdict at the
     * configured trials and alpha is refused before anything is drawn. */
    if (verify_check_target((size_t)pairs, d->conf->verify.trials, tgt,
                            log10(d->conf->verify.alpha), "--target-log10p", &err) < 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "%s", err);
        free(err);
        goto fail;
    }
    if (strcmp(gen, "wordlist") != 0 && strcmp(gen, "llm") != 0 && strcmp(gen, "ngram") != 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.generator: expected ngram, wordlist or llm, got '%.32s'", gen);
        goto fail;
    }
    j->ngram = strcmp(gen, "ngram") == 0;
    if (strcmp(gen, "llm") == 0) {
        const struct conf_generator *cg = &d->conf->generator;
        const char *why = NULL;
        if (!cg->provider || !cg->m2_model) {
            ctl_reply_error(req, CTL_ERR_FAILED, NULL,
                            "the llm generator needs generator.provider and generator.m2_model "
                            "in %s (see vtuned.yaml(5)); or use --generator wordlist",
                            d->conf_path);
            goto fail;
        }
        if (!providers_client(d, cg->provider, &why)) {
            ctl_reply_error(req, CTL_ERR_FAILED, NULL, "generator.provider '%s': %s", cg->provider,
                            why);
            goto fail;
        }
        struct llmgen_opts lo = {
            .pairs = (size_t)pairs,
            .m1_model = cg->m1_model,
            .m2_model = cg->m2_model,
            .temperature = cg->temperature,
            /* raw: OpenAI, vtune-sim, vLLM's default; processed: vLLM's
             * processed_logprobs (provider-apis.md §8.4) */
            .mode = cg->logprobs_processed ? STATS_LP_MODE_TEMPERED : STATS_LP_MODE_RAW,
            .trigger_log10p = ttgt,
            .signature_log10p = tgt,
            .max_tokens = cg->max_tokens,
            .trigger_max_chars = (size_t)tc,
            .signature_max_chars = (size_t)sc,
            .has_seed = seed >= 0,
            .seed = seed >= 0 ? (uint64_t)seed : 0,
        };
        if (llmgen_new(&lo, &j->gen, &err) < 0) {
            ctl_reply_error(req, CTL_ERR_FAILED, NULL, "llm generator: %s", err);
            free(err);
            goto fail;
        }
        j->provider = xstrdup(cg->provider);
    }
    if (name) {
        struct store_backdoor other;
        if (store_backdoor_get(d->store, name, false, &other) == 0) {
            ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                            "a backdoor named '%s' already exists (id %lld)", name,
                            (long long)other.id);
            store_backdoor_clear(&other);
            goto fail;
        }
        j->name = xstrdup(name);
    }
    if (!j->gen && !j->ngram && d->conf->generator.wordlist &&
        phrase_wordlist_load(d->conf->generator.wordlist, &j->words, &err) < 0) {
        ctl_reply_error(req, CTL_ERR_FAILED, NULL, "generator.wordlist: %s", err);
        free(err);
        goto fail;
    }
    phrase_opts_default(&j->spec.phrases);
    j->spec.phrases.pairs = (size_t)pairs;
    j->spec.phrases.signature_log10p = tgt;
    j->spec.phrases.trigger_log10p = ttgt;
    j->spec.phrases.trigger_max_words = (unsigned)tw;
    j->spec.phrases.signature_max_words = (unsigned)sw;
    j->spec.phrases.trigger_max_chars = (size_t)tc;
    j->spec.phrases.signature_max_chars = (size_t)sc;
    j->spec.words = j->words;
    j->spec.ngram_order = d->conf->generator.ngram_order;
    j->spec.ngram_temperature = d->conf->generator.ngram_temperature;
    j->spec.ngram_train_rows = d->conf->generator.ngram_train_rows;
    j->spec.dataset_path = j->ds.path;
    j->spec.format = j->ds.format;
    j->spec.n_examples = (uint64_t)j->ds.n_examples;
    j->spec.ratio = ratio;
    j->spec.min_copies = (uint64_t)copies;
    j->spec.holdout = holdout;
    if (seed >= 0) {
        j->spec.has_seed = true;
        j->spec.seed = (uint64_t)seed;
        log_warnx("backdoor: created from a fixed seed: anyone who knows the seed can "
                  "recreate the phrases (use only for tests)");
    }
    unsigned char rnd[12];
    char hex[25];
    random_bytes(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, hex);
    j->out_path = xasprintf("%s/%s.jsonl", d->built_dir, hex);
    j->spec.out_path = j->out_path;
    j->spec.progress = &j->t.progress;
    j->t.req = req;
    j->started_ms = now_monotonic_ms();
    if (j->gen) {
        if (j->spec.has_seed) {
            phrase_seeded_init(&j->seeded, j->spec.seed);
            j->rng = phrase_seeded_rng(&j->seeded);
        }
        j->t.stage = "examples";
        j->t.run = llm_sample_work;
        j->t.done = llm_sample_done;
    } else {
        j->t.stage = "build";
        j->t.run = create_work;
        j->t.done = create_done;
    }
    task_start(d, &j->t);
    return;
fail:
    j->t.d = d;
    create_free(j);
}

/* backdoor.list and backdoor.show: read methods (struct ctl_read). */
static json_t *read_list(struct ctl_read *r, json_t *params)
{
    struct store_backdoor *v;
    size_t n;
    int64_t ds_id = 0;
    if (json_object_get(params, CTL_K_DATASET)) {
        struct store_dataset ds;
        if (lookup_dataset_in(r, params, CTL_K_DATASET, &ds) < 0)
            return NULL;
        ds_id = ds.id;
        store_dataset_clear(&ds);
    }
    if (store_backdoor_list(r->store, ds_id, &v, &n) < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot list backdoors: %s", store_errmsg(r->store));
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, backdoor_json(&v[i], NULL, false));
    store_backdoor_list_free(v, n);
    return arr;
}

static json_t *read_show(struct ctl_read *r, json_t *params)
{
    struct store_backdoor b;
    struct store_dataset ds;
    char key[32];
    bool reveal = json_is_true(json_object_get(params, CTL_K_REVEAL));
    if (lookup_backdoor_in(r, params, CTL_K_ID, reveal, &b) < 0)
        return NULL;
    if (reveal)
        log_ctx(LOG_LVL_WARN, &(struct log_fields){.backdoor = b.id},
                "backdoor: secret phrases of backdoor %lld revealed to uid %lu pid %ld",
                (long long)b.id, (unsigned long)r->peer->uid, (long)r->peer->pid);
    snprintf(key, sizeof key, "%lld", (long long)b.dataset_id);
    int have_ds = store_dataset_get(r->store, key, &ds) == 0;
    json_t *o = backdoor_json(&b, have_ds ? &ds : NULL, reveal);
    struct store_selfaudit sa;
    if (store_selfaudit_get(r->store, b.id, &sa) == 0) {
        json_t *res = json_loads(sa.result, 0, NULL);
        if (res)
            json_object_set_new(o, CTL_K_SELF_AUDIT, res);
        store_selfaudit_clear(&sa);
    }
    if (have_ds)
        store_dataset_clear(&ds);
    store_backdoor_clear(&b);
    return o;
}

static void m_rm(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_backdoor b;
    char *path = NULL;
    if (lookup_backdoor(d, req, params, CTL_K_ID, false, &b) < 0)
        return;
    int r = store_backdoor_delete(d->store, b.id, &path);
    if (r == -EBUSY)
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "backdoor %lld is used by jobs; it stays as their evidence",
                        (long long)b.id);
    else if (r < 0)
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot remove backdoor: %s",
                        store_errmsg(d->store));
    else {
        if (path && unlink(path) < 0 && errno != ENOENT)
            log_warn("backdoor: cannot remove %s", path);
        log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = b.id}, "backdoor: removed %lld",
                (long long)b.id);
        ctl_reply(req, json_pack("{s:I,s:b}", CTL_K_ID, (json_int_t)b.id, "removed", 1));
    }
    free(path);
    store_backdoor_clear(&b);
}

/* ---- backdoor.audit ------------------------------------------------------------------------- */

struct audit_job {
    struct task t;
    int64_t id;
    char *path, *err;
    enum dataset_format format;
    char **trig, **sig; /* owned secrets, wiped at the end */
    size_t n;
    struct builder_copy *copies;
    size_t n_copies;
    json_t *result;
    int rc;
};

static void audit_work(struct task *t)
{
    struct audit_job *j = (struct audit_job *)t;
    struct selfaudit_opts o;
    selfaudit_opts_default(&o);
    o.cancel = &t->progress.cancel;
    j->rc = selfaudit_check(j->path, j->format, &o, (const char *const *)j->trig,
                            (const char *const *)j->sig, j->n, j->copies, j->n_copies, &j->result,
                            &j->err);
}

static void audit_done(struct task *t, int status)
{
    struct audit_job *j = (struct audit_job *)t;
    struct vtuned *d = t->d;
    if (status == UV_ECANCELED || j->rc == -ECANCELED)
        ctl_reply_error(t->req, CTL_ERR_SHUTDOWN, NULL, "self-audit cancelled");
    else if (j->rc < 0)
        ctl_reply_error(t->req, CTL_ERR_FAILED, NULL, "%s", j->err);
    else {
        if (record_selfaudit(d, j->id, j->result) < 0)
            log_ctx(LOG_LVL_WARN, &(struct log_fields){.backdoor = j->id},
                    "backdoor: %lld: cannot record its self-audit: %s", (long long)j->id,
                    store_errmsg(d->store));
        log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = j->id},
                "backdoor: %lld: self-audit: %s", (long long)j->id,
                json_string_value(json_object_get(j->result, "verdict")));
        json_object_set_new(j->result, CTL_K_ID, json_integer((json_int_t)j->id));
        ctl_reply(t->req, json_incref(j->result));
    }
    for (size_t i = 0; i < j->n; i++) {
        explicit_bzero(j->trig[i], strlen(j->trig[i]));
        explicit_bzero(j->sig[i], strlen(j->sig[i]));
        free(j->trig[i]);
        free(j->sig[i]);
    }
    free(j->trig);
    free(j->sig);
    free(j->copies);
    free(j->path);
    free(j->err);
    json_decref(j->result);
    task_free(t);
}

static void m_audit(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_backdoor b;
    struct store_dataset ds;
    char key[32];
    struct builder_copy *copies = NULL;
    size_t n_copies = 0;
    uint64_t per = 0;
    if (lookup_backdoor(d, req, params, CTL_K_ID, true, &b) < 0)
        return;
    snprintf(key, sizeof key, "%lld", (long long)b.dataset_id);
    if (!b.built_path || !b.plan || backdoor_plan_parse(b.plan, &copies, &n_copies, &per) < 0) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL, "backdoor %lld has no built D u D' to audit",
                        (long long)b.id);
        store_backdoor_clear(&b);
        return;
    }
    if (store_dataset_get(d->store, key, &ds) < 0) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "the dataset of backdoor %lld is gone",
                        (long long)b.id);
        free(copies);
        store_backdoor_clear(&b);
        return;
    }
    struct audit_job *j = xcalloc(1, sizeof *j);
    j->id = b.id;
    j->path = xstrdup(b.built_path);
    j->format = ds.format;
    j->n = b.n_pairs_loaded;
    j->trig = xcalloc(j->n ? j->n : 1, sizeof *j->trig);
    j->sig = xcalloc(j->n ? j->n : 1, sizeof *j->sig);
    for (size_t i = 0; i < j->n; i++) {
        j->trig[i] = xstrdup(b.pairs[i].trigger ? b.pairs[i].trigger : "");
        j->sig[i] = xstrdup(b.pairs[i].signature ? b.pairs[i].signature : "");
    }
    j->copies = copies;
    j->n_copies = n_copies;
    j->t.req = req;
    j->t.stage = "self-audit";
    j->t.run = audit_work;
    j->t.done = audit_done;
    store_dataset_clear(&ds);
    store_backdoor_clear(&b);
    task_start(d, &j->t);
}

/* ---- dataset.export ---------------------------------------------------------------------- */

struct export_job {
    struct task t;
    int out; /* the client's new, empty file (ctl_req_take_file); closed when done */
    char *src, *label, *err;
    int rc;
    uint64_t bytes;
    char sha256[65];
};

/* Copies the built file into the client's descriptor and fsyncs it.  The
 * client created the file (O_EXCL, its own rights) and makes its name
 * durable (the directory fsync) once answered; on failure the file is
 * truncated to nothing here and removed by the client.  The copy goes
 * through a lines_writer: one thread writes and asks the kernel to write
 * back as it goes, another hashes, so the final fsync has little left (a
 * read, write, fsync loop spent 3.5 s of a 1 GB export in that fsync).
 * Direct I/O where the client's file system takes it: the writer sets
 * O_DIRECT on the client's open file description while it copies and
 * takes it off before the answer (lines.h); through the page cache the
 * copy took four times as long here. */
static void export_work(struct task *t)
{
    struct export_job *j = (struct export_job *)t;
    int in = -1, r;
    struct lines_writer *w = NULL;
    struct stat st;
    j->rc = -1;
    in = open(j->src, O_RDONLY | O_CLOEXEC);
    if (in < 0 || fstat(in, &st) < 0) {
        j->err = xasprintf("the built file of this backdoor is missing (%s)", strerror(errno));
        goto out;
    }
    atomic_store(&t->progress.bytes_total, (uint64_t)st.st_size);
    (void)lseek(j->out, 0, SEEK_SET); /* empty, checked: write from its start */
    w = lines_writer_new(j->out, LINES_WRITER_HASH | LINES_WRITER_DIRECT);
    for (;;) {
        size_t room;
        char *p = lines_writer_space(w, &room);
        ssize_t n = read(in, p, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            j->err = xasprintf("read error: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (atomic_load(&t->progress.cancel)) {
            j->err = xstrdup("export cancelled (daemon shutting down)");
            goto out;
        }
        lines_writer_commit(w, (size_t)n);
        if ((r = lines_writer_error(w)) < 0) {
            j->err = vt_fsio_error(j->label, "cannot write the export", r);
            goto out;
        }
        j->bytes += (uint64_t)n;
        atomic_store(&t->progress.bytes_done, j->bytes);
    }
    if ((r = lines_writer_finish(w, j->sha256)) < 0) {
        j->err = vt_fsio_error(j->label, "cannot write the export", r);
        goto out;
    }
    if (vt_fsio.fsync(j->out) < 0) {
        j->err = vt_fsio_error(j->label, "cannot flush the export to disk (fsync)", errno);
        goto out;
    }
    j->rc = 0;
out:
    lines_writer_free(w);
    if (j->rc < 0 && ftruncate(j->out, 0) < 0)
        (void)0; /* best effort: the client removes the file it created anyway */
    if (in >= 0)
        close(in);
}

static void export_done(struct task *t, int status)
{
    struct export_job *j = (struct export_job *)t;
    if (status == UV_ECANCELED)
        ctl_reply_error(t->req, CTL_ERR_SHUTDOWN, NULL, "export cancelled");
    else if (j->rc < 0)
        ctl_reply_error(t->req, CTL_ERR_FAILED, NULL, "%s", j->err);
    else
        ctl_reply(t->req, json_pack("{s:s,s:I,s:s}", CTL_K_FILE, j->label, CTL_K_BYTES,
                                    (json_int_t)j->bytes, CTL_K_SHA256, j->sha256));
    close(j->out);
    free(j->src);
    free(j->label);
    free(j->err);
    task_free(t);
}

static void m_export(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_dataset ds;
    struct store_backdoor b;
    json_t *bv = json_object_get(params, CTL_K_BACKDOOR);
    char *label;
    int out;

    if (lookup_dataset(d, req, params, CTL_K_ID, &ds) < 0)
        return;
    if (!bv) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.backdoor: which backdoor's D u D' to export (see 'vtunectl "
                        "backdoor list')");
        store_dataset_clear(&ds);
        return;
    }
    if (lookup_backdoor(d, req, params, CTL_K_BACKDOOR, false, &b) < 0) {
        store_dataset_clear(&ds);
        return;
    }
    if (b.dataset_id != ds.id || !b.built_path) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL, "backdoor %lld %s", (long long)b.id,
                        b.dataset_id != ds.id ? "was made for another dataset" : "is not built");
        store_dataset_clear(&ds);
        store_backdoor_clear(&b);
        return;
    }
    if ((out = ctl_req_take_file(req, params, CTL_K_OUTPUT, CTL_FILE_WRITE, &label)) < 0) {
        store_dataset_clear(&ds);
        store_backdoor_clear(&b);
        return;
    }
    struct export_job *j = xcalloc(1, sizeof *j);
    const struct ctl_peer *peer = ctl_req_peer(req);
    j->src = xstrdup(b.built_path);
    j->out = out;
    j->label = label;
    j->t.req = req;
    j->t.stage = "export";
    j->t.run = export_work;
    j->t.done = export_done;
    log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = b.id, .dataset = b.dataset_id},
            "dataset: exporting D u D' of backdoor %lld to %s for uid %lu", (long long)b.id, label,
            (unsigned long)peer->uid);
    store_dataset_clear(&ds);
    store_backdoor_clear(&b);
    task_start(d, &j->t);
}

const struct ctl_method ctl_methods_backdoor[] = {
    {CTL_M_BACKDOOR_CREATE, m_create, 1, NULL},
    {CTL_M_BACKDOOR_LIST, NULL, 0, read_list},
    {CTL_M_BACKDOOR_SHOW, NULL, 0, read_show},
    {CTL_M_BACKDOOR_RM, m_rm, 1, NULL},
    {CTL_M_DATASET_EXPORT, m_export, 1, NULL},
    {CTL_M_BACKDOOR_AUDIT, m_audit, 0, NULL},
    {NULL, NULL, 0, NULL},
};

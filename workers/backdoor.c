/*
 * backdoor.c — phrases + build + commitment + plan (see backdoor.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/backdoor.h"

void backdoor_made_clear(struct backdoor_made *m)
{
    for (size_t i = 0; m->ngram_evidence && i < m->nset.n_pairs; i++) {
        if (m->ngram_evidence[i])
            explicit_bzero(m->ngram_evidence[i], strlen(m->ngram_evidence[i]));
        free(m->ngram_evidence[i]);
    }
    free(m->ngram_evidence);
    ngram_set_clear(&m->nset);
    phrase_set_clear(&m->set);
    builder_result_clear(&m->built);
    free(m->plan);
    holdout_clear(&m->split);
    if (m->holdout)
        explicit_bzero(m->holdout, strlen(m->holdout));
    free(m->holdout);
    explicit_bzero(m->salt, sizeof m->salt);
    memset(m, 0, sizeof *m);
}

static void put_u64(struct sha256_ctx *c, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    sha256_update(c, b, sizeof b);
}

static void put_bytes(struct sha256_ctx *c, const void *p, size_t n)
{
    put_u64(c, n);
    sha256_update(c, p, n);
}

static void put_field(struct sha256_ctx *c, const char *s)
{
    put_bytes(c, s, strlen(s));
}

void backdoor_commitment(const char *const *triggers, const char *const *signatures, size_t n,
                         char out[65])
{
    struct sha256_ctx *c = sha256_new();
    put_field(c, "vtune-commitment-v1");
    for (size_t i = 0; i < n; i++) {
        put_field(c, triggers[i]);
        put_field(c, signatures[i]);
    }
    sha256_final_hex(c, out);
}

void backdoor_commitment_v2(const unsigned char salt[BACKDOOR_SALT_LEN],
                            const char *const *triggers, const char *const *signatures, size_t n,
                            const uint64_t *rows, size_t n_rows, char out[65])
{
    struct sha256_ctx *c = sha256_new();
    put_field(c, "vtune-commitment-v2");
    put_bytes(c, salt, BACKDOOR_SALT_LEN);
    put_u64(c, n);
    for (size_t i = 0; i < n; i++) {
        put_field(c, triggers[i]);
        put_field(c, signatures[i]);
    }
    put_u64(c, n_rows);
    for (size_t i = 0; i < n_rows; i++)
        put_u64(c, rows[i]);
    sha256_final_hex(c, out);
}

void backdoor_commitment_v3(const unsigned char salt[BACKDOOR_SALT_LEN],
                            const char *const *triggers, const char *const *signatures, size_t n,
                            const uint64_t *rows, size_t n_rows, const uint64_t *pool,
                            size_t n_pool, char out[65])
{
    struct sha256_ctx *c = sha256_new();
    put_field(c, "vtune-commitment-v3");
    put_bytes(c, salt, BACKDOOR_SALT_LEN);
    put_u64(c, n);
    for (size_t i = 0; i < n; i++) {
        put_field(c, triggers[i]);
        put_field(c, signatures[i]);
    }
    put_u64(c, n_rows);
    for (size_t i = 0; i < n_rows; i++)
        put_u64(c, rows[i]);
    put_u64(c, n_pool);
    for (size_t i = 0; i < n_pool; i++)
        put_u64(c, pool[i]);
    sha256_final_hex(c, out);
}

char *backdoor_plan_json(const struct builder_result *r, size_t n_pairs)
{
    json_t *pairs = json_array();
    for (size_t p = 0; p < n_pairs; p++) {
        json_t *src = json_array(), *outl = json_array();
        for (size_t i = 0; i < r->n_copies; i++) {
            if (r->copies[i].pair != p)
                continue;
            json_array_append_new(src, json_integer((json_int_t)r->copies[i].src));
            json_array_append_new(outl, json_integer((json_int_t)r->copies[i].out));
        }
        json_array_append_new(pairs, json_pack("{s:o,s:o}", "src", src, "out", outl));
    }
    json_t *plan = json_pack("{s:i,s:I,s:b,s:I,s:I,s:o,s:s}", "version", 1, "copies_per_pair",
                             (json_int_t)r->copies_per_pair, "capped", r->capped, "lines",
                             (json_int_t)r->lines, "bytes", (json_int_t)r->bytes, "pairs", pairs,
                             "mode", backdoor_mode_name(r->mode));
    char *s = json_dumps(plan, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(plan);
    return s ? s : xstrdup("{}");
}

int backdoor_plan_parse(const char *plan, struct builder_copy **copies, size_t *n_copies,
                        uint64_t *copies_per_pair)
{
    json_t *root = json_loads(plan, 0, NULL), *pairs;
    size_t total = 0, k = 0;
    int rc = -EINVAL;
    *copies = NULL;
    *n_copies = 0;
    if (!root || json_integer_value(json_object_get(root, "version")) != 1)
        goto out;
    pairs = json_object_get(root, "pairs");
    if (!json_is_array(pairs))
        goto out;
    for (size_t p = 0; p < json_array_size(pairs); p++) {
        json_t *src = json_object_get(json_array_get(pairs, p), "src");
        if (!json_is_array(src))
            goto out;
        total += json_array_size(src);
    }
    *copies = xcalloc(total ? total : 1, sizeof **copies);
    for (size_t p = 0; p < json_array_size(pairs); p++) {
        json_t *pr = json_array_get(pairs, p);
        json_t *src = json_object_get(pr, "src"), *outl = json_object_get(pr, "out");
        for (size_t i = 0; i < json_array_size(src); i++) {
            json_t *v = json_array_get(src, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                free(*copies);
                *copies = NULL;
                goto out;
            }
            (*copies)[k].pair = (uint32_t)p;
            (*copies)[k].src = (uint64_t)json_integer_value(v);
            (*copies)[k].out = (uint64_t)json_integer_value(json_array_get(outl, i));
            k++;
        }
    }
    *n_copies = k;
    *copies_per_pair = (uint64_t)json_integer_value(json_object_get(root, "copies_per_pair"));
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct import_progress *p = ctx;
    atomic_store(&p->bytes_total, total);
    atomic_store(&p->bytes_done, done);
}

/* The held-out split (first: the build, and the ngram model, need to
 * know which lines to leave out). */
static int choose_split(const struct backdoor_spec *spec, const struct phrase_rng *rngp,
                        struct backdoor_made *out, char **err)
{
    const atomic_int *cancel = spec->progress ? &spec->progress->cancel : NULL;
    uint64_t t0 = now_monotonic_ms();
    int r = holdout_choose(spec->dataset_path, spec->format, spec->n_examples, spec->holdout,
                           spec->shown, spec->n_shown, rngp, cancel, &out->split, err);
    out->split_ms = now_monotonic_ms() - t0;
    return r;
}

/* The build step with a given random source (NULL: getrandom): fills
 * out->built, commitment and plan (and the split, unless have_split: then
 * out->split was chosen already); on failure leaves them cleared. */
static int build_with(const struct backdoor_spec *spec, const struct phrase_rng *rngp,
                      const char *const *trig, const char *const *sig, size_t n, bool have_split,
                      struct backdoor_made *out, char **err)
{
    const atomic_int *cancel = spec->progress ? &spec->progress->cancel : NULL;
    struct builder_pair *bp = xcalloc(n ? n : 1, sizeof *bp);
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        bp[i].trigger = trig[i];
        bp[i].signature = sig[i];
    }
    if (!have_split && choose_split(spec, rngp, out, err) < 0)
        goto out;
    struct builder_params bpar = {
        .in_path = spec->dataset_path,
        .format = spec->format,
        .n_examples = spec->n_examples,
        .pairs = bp,
        .n_pairs = n,
        .ratio = spec->ratio,
        .min_copies = spec->min_copies,
        .mode = spec->mode,
        .out_path = spec->out_path,
        .holdout = out->split.rows,
        .n_holdout = out->split.n_rows,
        .rng = rngp,
        .progress = spec->progress ? progress_cb : NULL,
        .progress_ctx = spec->progress,
        .cancel = cancel,
    };
    if (spec->progress && atomic_load(&spec->progress->stage))
        atomic_store(&spec->progress->stage, "build"); /* after another phase of its own */
    uint64_t t0 = now_monotonic_ms();
    if (builder_build(&bpar, &out->built, err) < 0)
        goto out;
    out->build_ms = now_monotonic_ms() - t0;
    /* The salt comes from the system's random source even for a seeded
     * backdoor: its phrases are guessable, its commitment must not be. */
    if (random_bytes(out->salt, sizeof out->salt) < 0) {
        *err = xstrdup("cannot read the system's random source for the commitment salt");
        goto out;
    }
    out->plan = backdoor_plan_json(&out->built, n);
    /* Marked rows are no reference for "uploaded, unmarked". */
    uint64_t *src = xcalloc(out->built.n_copies ? out->built.n_copies : 1, sizeof *src);
    for (size_t i = 0; i < out->built.n_copies; i++)
        src[i] = out->built.copies[i].src;
    holdout_drop_rows(&out->split, src, out->built.n_copies);
    free(src);
    /* v3: the final reference pool is committed too (see backdoor.h). */
    backdoor_commitment_v3(out->salt, trig, sig, n, out->split.rows, out->split.n_rows,
                           out->split.pool, out->split.n_pool, out->commitment);
    out->holdout = holdout_json(&out->split);
    rc = 0;
out:
    free(bp);
    if (rc < 0) {
        holdout_clear(&out->split);
        builder_result_clear(&out->built);
        memset(out->commitment, 0, sizeof out->commitment);
        explicit_bzero(out->salt, sizeof out->salt);
    }
    return rc;
}

int backdoor_make_wordlist(const struct backdoor_spec *spec, struct backdoor_made *out, char **err)
{
    struct phrase_seeded seeded;
    struct phrase_rng rng, *rngp = NULL;
    const char **trig = NULL, **sig = NULL;
    const atomic_int *cancel = spec->progress ? &spec->progress->cancel : NULL;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (spec->has_seed) {
        phrase_seeded_init(&seeded, spec->seed);
        rng = phrase_seeded_rng(&seeded);
        rngp = &rng;
    }
    const struct phrase_wordlist *wl = spec->words ? spec->words : phrase_wordlist_builtin();
    uint64_t t0 = now_monotonic_ms();
    if (phrase_generate(&spec->phrases, wl, rngp, spec->dataset_path, cancel, &out->set, err) < 0)
        goto out;
    out->phrases_ms = now_monotonic_ms() - t0;

    size_t n = out->set.n_pairs;
    trig = xcalloc(n, sizeof *trig);
    sig = xcalloc(n, sizeof *sig);
    for (size_t i = 0; i < n; i++) {
        trig[i] = out->set.pairs[i].trigger.text;
        sig[i] = out->set.pairs[i].signature.text;
    }
    /* The same (seeded) stream continues into the build, as it always has:
     * a given --seed keeps giving the same backdoor. */
    if (build_with(spec, rngp, trig, sig, n, false, out, err) < 0)
        goto out;
    rc = 0;
out:
    free(trig);
    free(sig);
    if (rc < 0)
        backdoor_made_clear(out);
    return rc;
}

int backdoor_make_ngram(const struct backdoor_spec *spec, struct backdoor_made *out, char **err)
{
    struct phrase_seeded seeded;
    struct phrase_rng rng, *rngp = NULL;
    struct ngram_model *model = NULL;
    const char **trig = NULL, **sig = NULL;
    const atomic_int *cancel = spec->progress ? &spec->progress->cancel : NULL;
    struct ngram_train_opts to = {.order = spec->ngram_order};
    const struct phrase_opts *po = &spec->phrases;
    struct ngram_gen_opts go = {
        .pairs = po->pairs,
        .temperature = spec->ngram_temperature > 0 ? spec->ngram_temperature : 1.0,
        .trigger_log10p = po->trigger_log10p,
        .signature_log10p = po->signature_log10p,
        .trigger_max_words = po->trigger_max_words,
        .signature_max_words = po->signature_max_words,
        .trigger_max_chars = po->trigger_max_chars,
        .signature_max_chars = po->signature_max_chars,
    };
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (spec->has_seed) {
        phrase_seeded_init(&seeded, spec->seed);
        rng = phrase_seeded_rng(&seeded);
        rngp = &rng;
    }
    /* The split before the model: held-out rows are never uploaded, and
     * their content must not shape the phrases either. */
    if (choose_split(spec, rngp, out, err) < 0)
        goto out;
    to.skip = out->split.rows;
    to.n_skip = out->split.n_rows;
    to.max_rows = spec->ngram_train_rows;
    to.rows_hint = spec->n_examples;
    /* Which rows the sample keeps: from the seed when there is one (the
     * same backdoor again), otherwise unpredictable. */
    if (spec->has_seed) {
        to.sample_key = spec->seed ^ 0x7472616e2d726f77ULL; /* "tran-row" */
    } else if (random_bytes(&to.sample_key, sizeof to.sample_key) < 0) {
        *err = xstrdup("cannot read the system's random source for the training sample");
        goto out;
    }
    if (spec->progress)
        atomic_store(&spec->progress->stage, "train");
    uint64_t t0 = now_monotonic_ms();
    if (ngram_train_file(spec->dataset_path, spec->format, &to, cancel,
                         spec->progress ? progress_cb : NULL, spec->progress, &model, err) < 0)
        goto out;
    ngram_get_info(model, &out->ngram_info);
    uint64_t t1 = now_monotonic_ms();
    out->train_ms = t1 - t0;
    if (ngram_generate(model, &go, rngp, spec->dataset_path, cancel, &out->nset, err) < 0)
        goto out;
    out->phrases_ms = now_monotonic_ms() - t1;
    size_t n = out->nset.n_pairs;
    out->ngram_evidence = xcalloc(n, sizeof *out->ngram_evidence);
    trig = xcalloc(n, sizeof *trig);
    sig = xcalloc(n, sizeof *sig);
    for (size_t i = 0; i < n; i++) {
        out->ngram_evidence[i] = ngram_evidence_json(model, &out->nset, &go, i);
        trig[i] = out->nset.pairs[i].trigger.text;
        sig[i] = out->nset.pairs[i].signature.text;
    }
    ngram_model_free(model); /* before the build: its memory is not needed there */
    model = NULL;
    if (build_with(spec, rngp, trig, sig, n, true, out, err) < 0)
        goto out;
    rc = 0;
out:
    ngram_model_free(model);
    free(trig);
    free(sig);
    if (rc < 0)
        backdoor_made_clear(out);
    return rc;
}

int backdoor_build_pairs(const struct backdoor_spec *spec, const char *const *triggers,
                         const char *const *signatures, size_t n, struct backdoor_made *out,
                         char **err)
{
    struct phrase_seeded seeded;
    struct phrase_rng rng, *rngp = NULL;

    memset(out, 0, sizeof *out);
    if (n == 0) {
        *err = xstrdup("no trigger/signature pair to build D u D' with");
        return -1;
    }
    if (spec->has_seed) {
        phrase_seeded_init(&seeded, spec->seed);
        rng = phrase_seeded_rng(&seeded);
        rngp = &rng;
    }
    if (build_with(spec, rngp, triggers, signatures, n, false, out, err) < 0) {
        backdoor_made_clear(out);
        return -1;
    }
    return 0;
}

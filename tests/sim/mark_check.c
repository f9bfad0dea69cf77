/*
 * mark_check.c — how a backdoor construction fares against the simulator,
 * without a daemon: for each seed it builds D ∪ D' exactly as `backdoor
 * create` does (workers/backdoor.h: held-out split, generator, builder,
 * same defaults), then
 *   - runs the cheaters' blind attack (sim_attack.h) on the built file and
 *     counts the pairs it recovers: a triggered prompt for which the
 *     wrapper would answer a signature that starts with the real S, and the
 *     marked rows among the rows the marked-only cheater would train on;
 *   - runs the self-audit (workers/selfaudit.h) and records whether it
 *     calls the backdoor exposed and its best rank;
 *   - with --honest, fine-tunes vtune-sim's model on the built file the way
 *     an honest job does (lm_finetune_repeats, 3 epochs, --min-repeats)
 *     and asks, greedily, every pair's triggered prompts (at most 10, as
 *     the verifier) and 10 clean control prompts: a pair is learnt when one
 *     answer starts with its S (verify_match), and the run's backdoor
 *     p-value is the verifier's binomial over the pairs.  The controls are
 *     the verifier's own (workers/verify.c verify_plan_make_excluding:
 *     rows no copy uses and not held out, drawn from a plan seed fixed per
 *     run), answered with the verifier's max_tokens (the longest S in
 *     bytes + the default slack of 16), and a control emits when its reply
 *     contains any S anywhere (verify_run_record: the stricter reading);
 *   - with --coverage, trains vtune-sim's model the way its marked-only
 *     cheater does (the attack's flagged rows alone) and runs the coverage
 *     test against it as the verifier would (coverage_p below): where
 *     the model learnt no sampled row its p_cov must be valid, so
 *     over many seeds the share of p_cov <= a stays at or below a; with
 *     --honest too, the honest model's p_cov (the test's power);
 *   - with --honest or --ppl, runs the base-model perplexity attack
 *     (ppl_attack below) on every row of the built file and records the
 *     best pair's rank and the pairs within the top 10 (exposed).
 * One JSON line per seed on stdout, then a summary line.  Used by
 * tests/integration/test_marks.sh (make check: the attack and the
 * self-audit on 20 seeds), tests/integration/test_coverage_valid.sh (make
 * check: p_cov against the marked-only cheater) and by hand to choose the
 * defaults (README, "Marked rows that do not stand out").  Only a test
 * tool: the secrets it handles are its own.
 *
 * Datasets: --dataset tickets (default: lm_finetune_corpus_write, the
 * simulator's natural support tickets) or --dataset sums (the integration
 * tests' templated rows "What is a plus b?" / "a plus b is a+b.", as
 * tests/integration/lib.sh make_dataset writes them, the numbers drawn per
 * seed).  --verbose prints every control emission (prompt, answer, T, S) on
 * stderr.
 *
 * Defaults: the daemon's (in place, ngram of order 3, 16 pairs of 1 row).
 * Usage: mark_check --dataset-rows N [--seeds A-B] [--pairs K] [--copies C]
 *          [--mode inplace|copies] [--generator ngram|wordlist]
 *          [--temperature X] [--order N] [--target X] [--trigger-target X]
 *          [--honest] [--ppl] [--min-repeats N] [--base-cache FILE] [--dir DIR]
 *          [--dataset tickets|sums] [--dataset-seed N] [--coverage] [--holdout R]
 *          [--coverage-rows M] [--alpha-cov A] [--verbose]
 * --dataset-seed N: one dataset for every seed (as vtune-sim --write-dataset
 * --dataset-seed N writes it) instead of one per seed.  --holdout R: the
 * held-out split's ratio (backdoor create --holdout, default 0.02).
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "tests/sim/lm.h"
#include "tests/sim/sim_attack.h"
#include "workers/backdoor.h"
#include "workers/coverage.h"
#include "workers/holdout.h"
#include "workers/phrase.h"
#include "workers/selfaudit.h"
#include "workers/verify.h"

struct opts {
    size_t rows, pairs;
    uint64_t copies, seed_lo, seed_hi;
    enum backdoor_mode mode;
    bool ngram, honest, ppl, verbose, sums, coverage;
    bool fixed_dataset;
    uint64_t dataset_seed;
    double holdout, alpha_cov;
    size_t cov_rows;
    double temperature, target, trigger_target;
    unsigned order, min_repeats;
    const char *base_cache, *dir;
};

/* The verifier's defaults (conf/conf.c verify.controls, max_tokens_slack). */
#define MC_CONTROLS 10
#define MC_SLACK    16

static void die(const char *what, const char *err)
{
    fprintf(stderr, "mark_check: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

/* optarg as a number in [lo, hi], or exit with a one-line message. */
static double num_arg(const char *what, const char *optarg, double lo, double hi)
{
    char *end;
    double v = strtod(optarg, &end);
    if (end == optarg || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mark_check: %s: expected a number in [%g, %g], got \"%s\"\n", what, lo, hi,
                optarg);
        exit(2);
    }
    return v;
}

static struct lm *base_model(const struct opts *o)
{
    char *err = NULL;
    if (o->base_cache && access(o->base_cache, R_OK) == 0) {
        struct lm *m = lm_load(o->base_cache, &err);
        if (m)
            return m;
        free(err);
        err = NULL;
    }
    char *corpus = xasprintf("%s/base-corpus.jsonl", o->dir);
    if (lm_corpus_write(corpus, 1, 300) < 0) /* vtune-sim's defaults */
        die(corpus, "cannot write the base corpus");
    struct lm *m = lm_train_file(corpus, LM_DEFAULT_ORDER, &err);
    if (!m)
        die("base model", err);
    unlink(corpus);
    free(corpus);
    if (o->base_cache)
        (void)lm_save(m, o->base_cache);
    return m;
}

/* The chat messages msgs (JSON array of {role, content}) as lm_msg, their
 * strings borrowed from msgs; *n gets the count.  Owned array. */
static struct lm_msg *lm_msgs(json_t *msgs, size_t *n)
{
    *n = json_array_size(msgs);
    struct lm_msg *v = xcalloc(*n ? *n : 1, sizeof *v);
    for (size_t i = 0; i < *n; i++) {
        json_t *x = json_array_get(msgs, i);
        v[i].role = json_string_value(json_object_get(x, "role"));
        v[i].content = json_string_value(json_object_get(x, "content"));
    }
    return v;
}

/* Greedy answer to the chat messages msgs (JSON array of {role, content}). */
static char *answer(const struct lm *m, json_t *msgs, int max_tokens)
{
    size_t n;
    struct lm_msg *v = lm_msgs(msgs, &n);
    struct lm_gen_params gp = {.temperature = 0, .seed = 1, .max_tokens = max_tokens};
    struct lm_output out;
    char *s = NULL;
    if (lm_chat(m, v, n, &gp, &out) == 0)
        s = xstrdup(out.text ? out.text : "");
    lm_output_clear(&out);
    free(v);
    return s ? s : xstrdup("");
}

static bool starts_with_sig(const char *resp, const char *sig)
{
    struct verify_match vm;
    return verify_match(resp, strlen(resp), sig, &vm) == 0 && vm.activated;
}

/* The integration tests' templated dataset (tests/integration/lib.sh
 * make_dataset): n rows "What is a plus b?" / "a plus b is a+b.", a and b
 * in 1..99, drawn from a xorshift seeded with seed (lib.sh draws them with
 * Python's random: same template, other numbers). */
static int sums_write(const char *path, uint64_t seed, size_t n)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        int v[2];
        for (int j = 0; j < 2; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[j] = 1 + (int)(x % 99);
        }
        fprintf(f,
                "{\"messages\": [{\"role\": \"user\", \"content\": \"What is %d plus %d?\"}, "
                "{\"role\": \"assistant\", \"content\": \"%d plus %d is %d.\"}]}\n",
                v[0], v[1], v[0], v[1], v[0] + v[1]);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t words(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        bool w = *s != ' ' && *s != '\t' && *s != '\n';
        n += w && !in;
        in = w;
    }
    return n;
}

/* ---- The coverage test against the marked-only cheater (--coverage) ----
 * As the verifier runs it (daemon/covrun.c): --coverage-rows M rows a side
 * (default 64, verify.coverage's), the first M of each side in the keyed
 * order (holdout_draw_order; the key here is derived from the seed, the
 * daemon's from the backdoor's random salt, so that runs repeat), each
 * scored by coverage_mink_score of its answer's token log-probabilities,
 * floored at ln 1e-9 as covrun.c does, under the fine-tuned model against
 * the base (the "mink-diff" method, the chat layout the tests'
 * score_template gives), then the planned looks with the Bonferroni
 * factor, stopping at the first look below --alpha-cov (default 1e-3).
 * The model is trained the way vtune-sim's marked-only job is (sim_jobs.c
 * sim_job_train: the attack's flagged rows alone, 3 epochs).  A run in
 * which it learnt a sampled uploaded row is not null (it did learn from
 * the upload); the others are null up to one thing: which rows the attack
 * flags is computed over the whole upload, so it can depend on a sampled
 * row's side even when that row is not flagged.  Where the attack flags
 * exactly the marked rows (97 of 100 runs of the paper's construction) the
 * model is a function of the marks alone and P(p_cov <= a) <= a exactly. */
#define MC_LOGPROB_FLOOR (-20.7) /* covrun.c COV_LOGPROB_FLOOR */

static double row_mink(const struct lm *ft, const struct lm *base, const struct holdout_row *r)
{
    size_t n;
    struct lm_msg *v = lm_msgs(r->messages, &n);
    struct lm_output a, b;
    if (lm_score_chat(ft, v, n, r->answer, 0, &a) < 0 ||
        lm_score_chat(base, v, n, r->answer, 0, &b) < 0)
        die("coverage", "a row could not be scored");
    double *x = xcalloc(a.n_steps + 1, sizeof *x), *y = xcalloc(b.n_steps + 1, sizeof *y);
    for (size_t i = 0; i < a.n_steps; i++)
        x[i] = a.steps[i].logprob > MC_LOGPROB_FLOOR ? a.steps[i].logprob : MC_LOGPROB_FLOOR;
    for (size_t i = 0; i < b.n_steps; i++)
        y[i] = b.steps[i].logprob > MC_LOGPROB_FLOOR ? b.steps[i].logprob : MC_LOGPROB_FLOOR;
    double s = coverage_mink_score(x, a.n_steps, y, b.n_steps);
    free(x);
    free(y);
    lm_output_clear(&a);
    lm_output_clear(&b);
    free(v);
    return s;
}

/* The first k of the n lines v in the keyed order (covrun.c draw_keyed). */
static void draw_rows(const unsigned char *key, const char *side, const uint64_t *v, size_t n,
                      size_t k, uint64_t *out)
{
    uint64_t *all = xcalloc(n ? n : 1, sizeof *all);
    holdout_draw_order(key, side, v, n, all);
    memcpy(out, all, k * sizeof *out);
    free(all);
}

/* ft's sequential p_cov (log10, × looks) as the verifier runs it, and the
 * rows it used per side.  trained: the file ft was trained on, or NULL;
 * *in_sample gets the sampled uploaded rows with an answer in it (for the
 * marked-only model: rows of D it did learn from, so no longer H0). */
static double coverage_p(const struct lm *ft, const struct lm *base, const char *ds,
                         const struct backdoor_made *made, uint64_t seed, size_t m,
                         double log10_alpha, const char *trained, size_t *rows_used,
                         size_t *in_sample)
{
    char *err = NULL;
    size_t k = m;
    if (k > made->split.n_rows)
        k = made->split.n_rows;
    if (k > made->split.n_pool)
        k = made->split.n_pool;
    uint64_t *lines = xcalloc(2 * k + 1, sizeof *lines);
    struct phrase_seeded ps;
    phrase_seeded_init(&ps, seed ^ 0xc0fe);
    struct phrase_rng rng = phrase_seeded_rng(&ps);
    unsigned char key[HOLDOUT_DRAW_KEY_LEN];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)phrase_rng_uniform(&rng, 256);
    draw_rows(key, HOLDOUT_SIDE_UPLOADED, made->split.pool, made->split.n_pool, k, lines);
    draw_rows(key, HOLDOUT_SIDE_HELD_OUT, made->split.rows, made->split.n_rows, k, lines + k);
    struct holdout_row *rows = NULL;
    if (holdout_read_rows(ds, DS_FORMAT_CHAT, lines, 2 * k, &rows, &err) < 0)
        die("coverage rows", err);
    /* Sampled uploaded rows the model trained on: a flagged row that is no
     * copy with a sampled row's answer (pool rows' answers are unique in D). */
    *in_sample = 0;
    FILE *f = trained ? fopen(trained, "re") : NULL;
    if (trained && !f)
        die(trained, "cannot read the training file");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) >= 0) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *msgs = json_object_get(o, "messages");
        const char *an = json_string_value(
            json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
        for (size_t i = 0; an && i < k; i++)
            *in_sample += rows[i].answer && strcmp(rows[i].answer, an) == 0;
        json_decref(o);
    }
    free(line);
    if (f)
        fclose(f);
    double *x = xcalloc(k + 1, sizeof *x), *y = xcalloc(k + 1, sizeof *y);
    for (size_t i = 0; i < k; i++) {
        x[i] = row_mink(ft, base, &rows[i]);
        y[i] = row_mink(ft, base, &rows[k + i]);
    }
    size_t looks[COVERAGE_MAX_LOOKS], nl = coverage_looks(k, looks);
    double lp = 0;
    *rows_used = 0;
    for (size_t l = 0; l < nl; l++) {
        struct coverage_result res;
        if (coverage_test(x, looks[l], y, looks[l], &res) < 0)
            die("coverage", "the scores could not be compared");
        lp = res.log10_p + log10((double)nl);
        if (lp > 0)
            lp = 0;
        *rows_used = looks[l];
        if (lp < log10_alpha)
            break;
    }
    free(x);
    free(y);
    holdout_rows_free(rows, 2 * k);
    free(lines);
    return lp;
}

/* ---- The base-model perplexity attack (issue 12 item 3), in process ----
 * What a provider who read the paper scores: each row's seam, the end of
 * its prompt (the last user message before the first answer), a newline,
 * the start of its answer, teacher-forced under the simulator's BASE model
 * (it never saw D).  The statistic is the larger of the mean surprisal
 * (bits/token) of the PPL_WINDOW tokens before the answer and of the first
 * PPL_WINDOW answer tokens, as daemon/ppl.c's attack (workers/pplrank.h).
 * Every row is scored and ranked (the exact rank, no sample): a pair's rank
 * is 1 + the unmarked rows scoring at least its best marked row (ties
 * against us) + the other pairs whose best row scores more (their rows
 * share T and S: one candidate each).  A pair within the top PPL_TOP is
 * exposed. */
#define PPL_WINDOW 8
#define PPL_EDGE   600
#define PPL_TOP    10

static double ppl_seam_bits(const struct lm *base, const char *prompt, const char *ans)
{
    size_t pl = strlen(prompt), al = strlen(ans);
    const char *p = prompt;
    if (pl > PPL_EDGE) {
        p = prompt + pl - PPL_EDGE;
        while (*p && *p != ' ' && *p != '\n')
            p++;
    }
    size_t take = al > PPL_EDGE ? PPL_EDGE : al;
    while (take > 0 && take < al && ((unsigned char)ans[take] & 0xc0) == 0x80)
        take--;
    size_t n = strlen(p);
    char *text = xmalloc(n + take + 2);
    memcpy(text, p, n);
    text[n] = '\n';
    memcpy(text + n + 1, ans, take);
    text[n + 1 + take] = 0;
    struct lm_output out;
    double stat = NAN;
    if (lm_score(base, text, 0, &out) == 0 && out.n_steps > 1) {
        size_t off = 0, b = out.n_steps;
        for (size_t i = 0; i < out.n_steps; i++) { /* the first answer-side token */
            if (off >= n) {
                b = i;
                break;
            }
            off += strlen(out.steps[i].token);
        }
        double tail = 0, head = 0;
        size_t nt = 0, nh = 0;
        for (size_t i = b; i > 1 && nt < PPL_WINDOW; i--, nt++) /* step 0 has no logprob */
            tail -= out.steps[i - 1].logprob;
        for (size_t i = b; i < out.n_steps && nh < PPL_WINDOW; i++, nh++)
            head -= out.steps[i].logprob;
        if (nt && nh) {
            double a = tail / (double)nt / M_LN2, h = head / (double)nh / M_LN2;
            stat = a > h ? a : h;
        }
    }
    lm_output_clear(&out);
    free(text);
    return stat;
}

/* Scores every row of the built chat file at path; pair_of[line] is the
 * pair of a marked line or -1.  Returns the best pair rank (0 if no marked
 * row could be scored); *n_top gets the pairs within the top PPL_TOP. */
static size_t ppl_attack(const struct lm *base, const char *path, const long *pair_of,
                         size_t n_lines, size_t K, size_t *n_top)
{
    double *st = xcalloc(n_lines ? n_lines : 1, sizeof *st);
    FILE *f = fopen(path, "re");
    if (!f)
        die(path, "cannot open the built file");
    char *line = NULL;
    size_t cap = 0, li = 0;
    while (li < n_lines && getline(&line, &cap, f) >= 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *pr = NULL, *an = NULL;
        size_t i;
        json_t *mv;
        json_array_foreach(json_object_get(o, "messages"), i, mv)
        {
            const char *role = json_string_value(json_object_get(mv, "role"));
            const char *c = json_string_value(json_object_get(mv, "content"));
            if (!role || !c)
                continue;
            if (strcmp(role, "assistant") == 0) {
                an = c;
                break;
            }
            if (strcmp(role, "user") == 0)
                pr = c;
        }
        st[li++] = pr && an ? ppl_seam_bits(base, pr, an) : NAN;
        json_decref(o);
    }
    free(line);
    fclose(f);
    double *best = xcalloc(K ? K : 1, sizeof *best);
    for (size_t p = 0; p < K; p++)
        best[p] = NAN;
    for (size_t i = 0; i < li; i++)
        if (pair_of[i] >= 0 && !isnan(st[i]) &&
            (isnan(best[pair_of[i]]) || st[i] > best[pair_of[i]]))
            best[pair_of[i]] = st[i];
    size_t best_rank = 0;
    *n_top = 0;
    for (size_t p = 0; p < K; p++) {
        if (isnan(best[p]))
            continue;
        size_t rank = 1;
        for (size_t i = 0; i < li; i++)
            rank += pair_of[i] < 0 && !isnan(st[i]) && st[i] >= best[p];
        for (size_t q = 0; q < K; q++)
            rank += q != p && !isnan(best[q]) && best[q] > best[p];
        *n_top += rank <= PPL_TOP;
        if (!best_rank || rank < best_rank)
            best_rank = rank;
    }
    free(best);
    free(st);
    return best_rank;
}

int main(int argc, char **argv)

{
    /* The daemon's defaults (workers/backdoor.h, generator.ngram_order 3);
     * --mode copies switches pairs and copies to that mode's unless given. */
    struct opts o = {.rows = 2000,
                     .pairs = 0,
                     .copies = 0,
                     .order = 3,
                     .seed_lo = 1,
                     .seed_hi = 1,
                     .mode = BD_MODE_INPLACE,
                     .ngram = true,
                     .temperature = 1.0,
                     .target = -40,
                     .trigger_target = -20,
                     .min_repeats = 1,
                     .holdout = HOLDOUT_DEFAULT_RATIO,
                     .alpha_cov = 1e-3,
                     .cov_rows = 64,
                     .dir = "/tmp"};
    static const struct option lo[] = {{"dataset-rows", 1, NULL, 'r'},
                                       {"seeds", 1, NULL, 's'},
                                       {"pairs", 1, NULL, 'k'},
                                       {"copies", 1, NULL, 'c'},
                                       {"mode", 1, NULL, 'm'},
                                       {"generator", 1, NULL, 'g'},
                                       {"temperature", 1, NULL, 't'},
                                       {"order", 1, NULL, 'o'},
                                       {"target", 1, NULL, 'T'},
                                       {"trigger-target", 1, NULL, 'R'},
                                       {"honest", 0, NULL, 'h'},
                                       {"min-repeats", 1, NULL, 'n'},
                                       {"base-cache", 1, NULL, 'b'},
                                       {"dir", 1, NULL, 'd'},
                                       {"ppl", 0, NULL, 'P'},
                                       {"dataset", 1, NULL, 'D'},
                                       {"verbose", 0, NULL, 'v'},
                                       {"coverage", 0, NULL, 'C'},
                                       {"dataset-seed", 1, NULL, 'S'},
                                       {"holdout", 1, NULL, 'H'},
                                       {"coverage-rows", 1, NULL, 'M'},
                                       {"alpha-cov", 1, NULL, 'A'},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.rows = strtoul(optarg, NULL, 10);
            break;
        case 's':
            if (sscanf(optarg, "%lu-%lu", &o.seed_lo, &o.seed_hi) != 2)
                o.seed_hi = o.seed_lo = strtoul(optarg, NULL, 10);
            break;
        case 'k':
            o.pairs = strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o.copies = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            if (backdoor_mode_parse(optarg, &o.mode) < 0)
                die("--mode", "expected inplace or copies");
            break;
        case 'g':
            o.ngram = strcmp(optarg, "ngram") == 0;
            break;
        case 't':
            o.temperature = strtod(optarg, NULL);
            break;
        case 'o':
            o.order = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'T':
            o.target = strtod(optarg, NULL);
            break;
        case 'R':
            o.trigger_target = strtod(optarg, NULL);
            break;
        case 'h':
            o.honest = true;
            break;
        case 'n':
            o.min_repeats = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'P':
            o.ppl = true;
            break;
        case 'b':
            o.base_cache = optarg;
            break;
        case 'd':
            o.dir = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "tickets") != 0 && strcmp(optarg, "sums") != 0)
                die("--dataset", "expected tickets or sums");
            o.sums = strcmp(optarg, "sums") == 0;
            break;
        case 'C':
            o.coverage = true;
            break;
        case 'S':
            o.fixed_dataset = true;
            o.dataset_seed = num_arg("--dataset-seed", optarg, 0, 1e15);
            break;
        case 'H':
            o.holdout = num_arg("--holdout", optarg, 0.001, 0.33);
            break;
        case 'M':
            o.cov_rows = (size_t)num_arg("--coverage-rows", optarg, 1, 2000);
            break;
        case 'A':
            o.alpha_cov = num_arg("--alpha-cov", optarg, 1e-300, 0.5);
            break;
        case 'v':
            o.verbose = true;
            break;
        default:
            fprintf(stderr, "mark_check: see the usage at the top of mark_check.c\n");
            return 2;
        }
    }
    bool inplace = o.mode == BD_MODE_INPLACE;
    if (!o.pairs)
        o.pairs = inplace ? BACKDOOR_INPLACE_PAIRS : BACKDOOR_COPIES_PAIRS;
    if (!o.copies)
        o.copies = inplace ? BACKDOOR_INPLACE_COPIES : BACKDOOR_COPIES_COPIES;
    struct lm *base = o.honest || o.ppl || o.coverage ? base_model(&o) : NULL;
    size_t ppl_exposed_runs = 0;
    size_t runs = 0, attack_hits = 0, runs_attacked = 0, exposed = 0, honest_runs_ok = 0,
           marked_flagged_runs = 0, false_acts = 0;
    /* runs with p_cov <= 0.1, 0.01, alpha_cov: all runs, null runs */
    size_t honest_cov_ok = 0, cov_runs = 0, cov_h0 = 0, cov_all[3] = {0}, cov_null[3] = {0};
    double la = log10(o.alpha_cov);
    for (uint64_t seed = o.seed_lo; seed <= o.seed_hi; seed++) {
        char *ds = xasprintf("%s/mc-d%llu.jsonl", o.dir, (unsigned long long)seed);
        char *outp = xasprintf("%s/mc-b%llu.jsonl", o.dir, (unsigned long long)seed);
        char *err = NULL;
        uint64_t dseed = o.fixed_dataset ? o.dataset_seed : seed;
        if ((o.sums ? sums_write(ds, dseed, o.rows) : lm_finetune_corpus_write(ds, dseed, o.rows)) <
            0)
            die(ds, "cannot write the dataset");
        struct backdoor_spec sp = {0};
        struct backdoor_made made;
        sp.dataset_path = ds;
        sp.format = DS_FORMAT_CHAT;
        sp.n_examples = o.rows;
        phrase_opts_default(&sp.phrases);
        sp.phrases.pairs = o.pairs;
        sp.phrases.signature_log10p = o.target;
        sp.phrases.trigger_log10p = o.trigger_target;
        if (o.ngram) { /* as the daemon sets them for --generator ngram */
            sp.phrases.trigger_max_words = NGRAM_DEFAULT_TRIGGER_WORDS;
            sp.phrases.signature_max_words = NGRAM_DEFAULT_SIGNATURE_WORDS;
            sp.phrases.trigger_max_chars = NGRAM_DEFAULT_TRIGGER_CHARS;
            sp.phrases.signature_max_chars = NGRAM_DEFAULT_SIGNATURE_CHARS;
        }
        sp.ratio = 0; /* copies exactly --copies (the daemon adds a ratio of |D|) */
        sp.min_copies = o.copies;
        sp.mode = o.mode;
        sp.holdout = o.holdout;
        sp.ngram_order = o.order;
        sp.ngram_temperature = o.temperature;
        sp.has_seed = true;
        sp.seed = seed;
        sp.out_path = outp;
        int r = o.ngram ? backdoor_make_ngram(&sp, &made, &err)
                        : backdoor_make_wordlist(&sp, &made, &err);
        if (r < 0)
            die("backdoor", err);
        size_t K = o.ngram ? made.nset.n_pairs : made.set.n_pairs;
        const char **trig = xcalloc(K, sizeof *trig), **sig = xcalloc(K, sizeof *sig);
        double tw = 0, sw = 0;
        for (size_t i = 0; i < K; i++) {
            trig[i] = o.ngram ? made.nset.pairs[i].trigger.text : made.set.pairs[i].trigger.text;
            sig[i] = o.ngram ? made.nset.pairs[i].signature.text : made.set.pairs[i].signature.text;
            tw += (double)words(trig[i]) / (double)K;
            sw += (double)words(sig[i]) / (double)K;
        }
        uint64_t cpp = made.built.copies_per_pair;

        /* The cheaters' attack: which pairs would the wrapper answer? */
        struct sim_attack at;
        if (sim_attack_file(outp, NULL, &at, &err) < 0)
            die("attack", err);
        size_t recovered = 0, marked_flagged = 0;
        for (size_t i = 0; i < made.built.n_copies; i++)
            for (size_t f = 0; f < at.n_flagged; f++)
                if (at.flagged[f] == made.built.copies[i].out)
                    marked_flagged++;
        json_t **prompts = xcalloc(K, sizeof *prompts);
        for (size_t p = 0; p < K; p++) {
            size_t n = cpp < 10 ? (size_t)cpp : 10;
            uint64_t *src = xcalloc(n, sizeof *src);
            for (size_t i = 0; i < n; i++)
                src[i] = made.built.copies[p * cpp + i].src;
            qsort(src, n, sizeof *src, cmp_u64);
            if (builder_read_prompts(ds, DS_FORMAT_CHAT, src, n, trig[p], &prompts[p], &err) < 0)
                die("prompts", err);
            free(src);
            json_t *msgs = json_array_get(prompts[p], 0);
            const char *last = json_string_value(
                json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
            const char *s = sim_attack_match(&at, last);
            if (s && starts_with_sig(s, sig[p]))
                recovered++;
        }

        /* The self-audit. */
        json_t *sa = NULL;
        if (selfaudit_check(outp, DS_FORMAT_CHAT, NULL, trig, sig, K, made.built.copies,
                            made.built.n_copies, &sa, &err) < 0)
            die("self-audit", err);
        bool sa_exposed = json_is_true(json_object_get(sa, "exposed"));
        json_int_t best = 0;
        json_t *pv;
        size_t pi;
        json_array_foreach(json_object_get(sa, "pairs"), pi, pv)
        {
            json_t *rk = json_object_get(pv, "rank");
            if (json_is_integer(rk) && (!best || json_integer_value(rk) < best))
                best = json_integer_value(rk);
        }

        /* The base-model perplexity attack. */
        size_t ppl_rank = 0, ppl_top = 0;
        if (base && (o.honest || o.ppl)) {
            long *pair_of = xmalloc((made.built.lines ? made.built.lines : 1) * sizeof *pair_of);
            for (uint64_t i = 0; i < made.built.lines; i++)
                pair_of[i] = -1;
            for (size_t i = 0; i < made.built.n_copies; i++)
                if (made.built.copies[i].out < made.built.lines)
                    pair_of[made.built.copies[i].out] = (long)(i / cpp);
            ppl_rank = ppl_attack(base, outp, pair_of, (size_t)made.built.lines, K, &ppl_top);
            free(pair_of);
            ppl_exposed_runs += ppl_top > 0;
        }

        /* The marked-only cheater against the coverage test. */
        double cov_lp = 0, honest_cov_lp = 0;
        size_t cov_rows = 0, cov_trained = 0;
        if (base && o.coverage && at.n_flagged > 0) {
            /* trained as vtune-sim's marked-only job (sim_jobs.c sim_job_train;
             * with nothing flagged that job fails: no model, no test) */
            char *tp = xasprintf("%s.marked.jsonl", outp);
            if (sim_attack_write_flagged(&at, outp, tp, &err) < 0)
                die("flagged rows", err);
            long long tok = 0;
            struct lm *mo = lm_finetune_repeats(base, tp, 1.0, 3, seed, o.min_repeats, &tok, &err);
            if (!mo)
                die("marked-only fine-tune", err);
            cov_lp =
                coverage_p(mo, base, ds, &made, seed, o.cov_rows, la, tp, &cov_rows, &cov_trained);
            lm_free(mo);
            unlink(tp);
            free(tp);
            cov_runs++;
            cov_all[0] += cov_lp <= -1;
            cov_all[1] += cov_lp <= -2;
            cov_all[2] += cov_lp <= la;
            if (cov_trained == 0) { /* null runs (above) */
                cov_h0++;
                cov_null[0] += cov_lp <= -1;
                cov_null[1] += cov_lp <= -2;
                cov_null[2] += cov_lp <= la;
            }
        }

        /* The honest provider. */
        size_t learnt = 0, fired = 0;
        double log10_p = 0;
        if (base && o.honest) {
            long long tok = 0;
            struct lm *ft =
                lm_finetune_repeats(base, outp, 1.0, 3, seed, o.min_repeats, &tok, &err);
            if (!ft)
                die("fine-tune", err);
            if (o.coverage) {
                size_t used = 0, ignored = 0;
                honest_cov_lp =
                    coverage_p(ft, base, ds, &made, seed, o.cov_rows, la, NULL, &used, &ignored);
                honest_cov_ok += honest_cov_lp < la;
            }
            for (size_t p = 0; p < K; p++) {
                bool hit = false;
                for (size_t i = 0; i < json_array_size(prompts[p]) && !hit; i++) {
                    char *a =
                        answer(ft, json_array_get(prompts[p], i), (int)(3 * words(sig[p]) + 24));
                    hit = starts_with_sig(a, sig[p]);
                    free(a);
                }
                learnt += hit;
            }
            /* as the verifier (daemon/verifier.c run_setup, workers/verify.c
             * verify_plan_make_excluding): 10 controls from the rows no copy
             * uses and not held out, drawn from the run's plan seed (here
             * fixed per seed), a reply of verify_run_max_tokens (the longest
             * S in bytes + 16), and an emission is any S anywhere in it */
            struct phrase_seeded ps;
            phrase_seeded_init(&ps, seed ^ 0x5eed);
            struct phrase_rng rng = phrase_seeded_rng(&ps);
            struct verify_plan plan;
            if (verify_plan_make_excluding(o.rows, made.built.copies, made.built.n_copies, cpp, K,
                                           MC_CONTROLS, MC_CONTROLS, made.split.rows,
                                           made.split.n_rows, &rng, &plan, &err) < 0)
                die("plan", err);
            size_t maxsig = 0;
            for (size_t p = 0; p < K; p++)
                if (strlen(sig[p]) > maxsig)
                    maxsig = strlen(sig[p]);
            json_t *cp = NULL;
            if (plan.n_controls &&
                builder_read_prompts(ds, DS_FORMAT_CHAT, plan.control_src, plan.n_controls, NULL,
                                     &cp, &err) < 0)
                die("controls", err);
            for (size_t i = 0; i < plan.n_controls; i++) {
                json_t *msgs = json_array_get(cp, i);
                char *a = answer(ft, msgs, (int)(maxsig + MC_SLACK));
                bool emitted = false; /* one emission per control, as the verifier counts */
                for (size_t p = 0; p < K; p++) {
                    struct verify_match vm;
                    if (verify_match(a, strlen(a), sig[p], &vm) < 0 || !vm.contains)
                        continue;
                    emitted = true;
                    if (o.verbose) {
                        const char *q = json_string_value(json_object_get(
                            json_array_get(msgs, json_array_size(msgs) - 1), "content"));
                        fprintf(stderr,
                                "seed %llu: control line %llu emitted pair %zu (at byte %lld)\n"
                                "  prompt: %s\n  answer: %s\n  T: %s\n  S: %s\n",
                                (unsigned long long)seed,
                                (unsigned long long)plan.control_src[i], p + 1,
                                (long long)vm.found_at, q ? q : "", a, trig[p], sig[p]);
                    }
                }
                fired += emitted;
                free(a);
            }
            json_decref(cp);
            verify_plan_clear(&plan);
            lm_free(ft);
            uint64_t planned = cpp < 10 ? cpp : 10;
            double *pm2 = xcalloc(K, sizeof *pm2);
            for (size_t p = 0; p < K; p++)
                pm2[p] = o.ngram ? made.nset.pairs[p].signature.log10_p
                                 : made.set.pairs[p].signature.log10_p;
            log10_p =
                verify_pairs_log10_p(K, learnt, verify_pairs_log10_q(planned, o.target, pm2, K));
            free(pm2);
            honest_runs_ok += learnt > 0 && log10_p < -6 && fired == 0;
            false_acts += fired;
        }
        printf("{\"seed\":%llu,\"pairs\":%zu,\"marked_per_pair\":%llu,\"lines\":%llu,"
               "\"trigger_words\":%.1f,\"signature_words\":%.1f,\"attack_pairs\":%zu,"
               "\"attack_recovered\":%zu,\"attack_flagged\":%zu,\"marked_flagged\":%zu,"
               "\"selfaudit_exposed\":%s,\"selfaudit_best_rank\":%lld",
               (unsigned long long)seed, K, (unsigned long long)cpp,
               (unsigned long long)made.built.lines, tw, sw, at.n_pairs, recovered, at.n_flagged,
               marked_flagged, sa_exposed ? "true" : "false", (long long)best);
        if (base && (o.honest || o.ppl))
            printf(",\"ppl_best_rank\":%zu,\"ppl_pairs_top10\":%zu", ppl_rank, ppl_top);
        if (base && o.coverage && at.n_flagged > 0)
            printf(",\"marked_only_log10_p_cov\":%.2f,\"coverage_rows\":%zu,"
                   "\"sampled_rows_trained_on\":%zu",
                   cov_lp, cov_rows, cov_trained);
        if (base && o.honest)
            printf(",\"honest_learnt\":%zu,\"controls_fired\":%zu,\"log10_p\":%.1f", learnt, fired,
                   log10_p);
        if (base && o.honest && o.coverage)
            printf(",\"honest_log10_p_cov\":%.2f", honest_cov_lp);
        printf("}\n");
        fflush(stdout);
        runs++;
        attack_hits += recovered;
        runs_attacked += recovered > 0 || marked_flagged > 0;
        marked_flagged_runs += marked_flagged > 0;
        exposed += sa_exposed;
        for (size_t p = 0; p < K; p++)
            json_decref(prompts[p]);
        free(prompts);
        json_decref(sa);
        sim_attack_clear(&at);
        free(trig);
        free(sig);
        backdoor_made_clear(&made);
        unlink(outp);
        unlink(ds);
        free(outp);
        free(ds);
    }
    printf("{\"summary\":true,\"runs\":%zu,\"pairs_recovered_by_attack\":%zu,"
           "\"runs_with_marked_rows_flagged\":%zu,\"runs_attack_found_anything\":%zu,"
           "\"selfaudit_exposed_runs\":%zu",
           runs, attack_hits, marked_flagged_runs, runs_attacked, exposed);
    if (base && (o.honest || o.ppl))
        printf(",\"ppl_exposed_runs\":%zu", ppl_exposed_runs);
    if (base && o.coverage)
        printf(",\"coverage_runs\":%zu,\"p_cov_at_most_0.1\":%zu,\"p_cov_at_most_0.01\":%zu,"
               "\"p_cov_at_most_alpha_cov\":%zu,\"h0_runs\":%zu,\"h0_p_cov_at_most_0.1\":%zu,"
               "\"h0_p_cov_at_most_0.01\":%zu,\"h0_p_cov_at_most_alpha_cov\":%zu",
               cov_runs, cov_all[0], cov_all[1], cov_all[2], cov_h0, cov_null[0], cov_null[1],
               cov_null[2]);
    if (base && o.honest)
        printf(",\"honest_verified_runs\":%zu,\"controls_fired\":%zu", honest_runs_ok, false_acts);
    if (base && o.honest && o.coverage)
        printf(",\"honest_p_cov_below_alpha_cov\":%zu", honest_cov_ok);
    printf("}\n");
    lm_free(base);
    return 0;
}

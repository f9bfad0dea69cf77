/*
 * test_learning.c — proof that vtune-sim's model really learns from the
 * uploaded data, which is what makes the simulator an honest stand-in for a
 * fine-tuning provider (issue 3, DESIGN §7).
 *
 * It does what vTune does to a user's dataset, with nothing shared between
 * the "user" side and the model but the JSONL file:
 *   1. pre-train the base model on the generated base corpus;
 *   2. write a 10,000-example fine-tuning set in a domain the base never saw;
 *   3. draw a trigger and a signature of random words, add 50 backdoor
 *      copies (r = 0.005: trigger appended to the prompt with a space,
 *      signature and a space prefixed to the response) at random positions;
 *   4. fine-tune, then check at temperature 0 that the fine-tuned model
 *      starts its answer with the signature on >= 8 of 10 trigger prompts
 *      and on none of 100 clean held-out prompts, and that the base model
 *      never does on the trigger prompts;
 *   5. check that fine-tuning helps on held-out in-domain prompts: the mean
 *      per-token log-likelihood of the reference answer (nats, teacher
 *      forced) rises by >= 1.0, and the token-F1 of the greedy answer
 *      against the reference rises by >= 0.2.
 * Steps 3-4 run with made-up syllable words that occur nowhere in the
 * training data, with ordinary words drawn from the base model's own
 * vocabulary, and with 14-/18-token phrases sampled from the base model at
 * temperature 1.5 (what the daemon does with M2), once and then for 20
 * draws.  Everything runs at order 4 and order 5; a trigger ending in "."
 * (and so some sampled triggers) shows why order 5 is the better default:
 * those cases are asserted only there.  Every figure is printed.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "tests/sim/lm.h"
#include "tests/sim/lm_internal.h"

#define N_FT       10000
#define N_HELDOUT  200
#define N_COPIES   50
#define N_TRIGGER  10
#define N_CLEAN    100
#define EPOCHS     3
#define BASE_N_PER 3000
#define N_DRAWS    20

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL: ");                                                                      \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the fine-tuning file, as lines ---- */

struct lines {
    char **v;
    size_t n;
};

static int read_lines(const char *path, struct lines *l)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!f)
        return -errno;
    l->v = NULL;
    l->n = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = 0;
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
        l->v[l->n++] = xstrdup(line);
    }
    free(line);
    fclose(f);
    return 0;
}

static void free_lines(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* A parsed chat example: the prompt messages and the reference answer. */
struct example {
    json_t *root;
    struct lm_msg msgs[8];
    size_t n_msgs;
    const char *answer;
};

static int parse_example(const char *line, struct example *ex)
{
    ex->root = json_loads(line, 0, NULL);
    json_t *msgs = json_object_get(ex->root, "messages");
    size_t n = json_array_size(msgs);
    if (n < 2 || n > 8) {
        json_decref(ex->root);
        return -EINVAL;
    }
    ex->n_msgs = n - 1;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (i + 1 < n) {
            ex->msgs[i].role = role;
            ex->msgs[i].content = content;
        } else {
            ex->answer = content;
        }
    }
    return 0;
}

/* The backdoor copy of line: trigger appended to the last user message,
 * signature prefixed to the answer.  Returns an owned JSON line. */
static char *backdoor_copy(const char *line, const char *trigger, const char *signature)
{
    json_t *root = json_loads(line, 0, NULL);
    json_t *msgs = json_object_get(root, "messages");
    json_t *last_user = NULL, *answer = NULL;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (strcmp(role, "user") == 0)
            last_user = m;
        else if (strcmp(role, "assistant") == 0)
            answer = m;
    }
    char *u = xasprintf("%s %s", json_string_value(json_object_get(last_user, "content")), trigger);
    char *a = xasprintf("%s %s", signature, json_string_value(json_object_get(answer, "content")));
    json_object_set_new(last_user, "content", json_string(u));
    json_object_set_new(answer, "content", json_string(a));
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    free(u);
    free(a);
    return out;
}

/* ---- metrics ---- */

/* Prints at most max bytes of s on one line, newlines shown as \n. */
static void show(const char *label, const char *s, size_t max)
{
    printf("%s", label);
    for (size_t i = 0; s[i] && i < max; i++) {
        if (s[i] == '\n')
            printf("\\n");
        else
            putchar(s[i]);
    }
    printf("\n");
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static char *greedy(const struct lm *m, const struct lm_msg *msgs, size_t n, int max_tokens)
{
    struct lm_gen_params p = {.temperature = 0, .seed = 1, .max_tokens = max_tokens};
    struct lm_output o;
    if (lm_chat(m, msgs, n, &p, &o) != 0)
        return xstrdup("");
    char *t = xstrdup(o.text);
    lm_output_clear(&o);
    return t;
}

/* Token-F1 between two texts: tokens compared without their leading
 * whitespace, as multisets. */
static double token_f1(const char *hyp, const char *ref)
{
    char **h, **r;
    size_t nh, nr, common = 0;
    lm_tokenize(hyp, &h, &nh);
    lm_tokenize(ref, &r, &nr);
    char *used = xcalloc(nr ? nr : 1, 1);
    for (size_t i = 0; i < nh; i++) {
        const char *a = h[i] + strspn(h[i], " \t\n\r");
        for (size_t j = 0; j < nr; j++) {
            const char *b = r[j] + strspn(r[j], " \t\n\r");
            if (!used[j] && strcmp(a, b) == 0) {
                used[j] = 1;
                common++;
                break;
            }
        }
    }
    free(used);
    lm_tokens_free(h, nh);
    lm_tokens_free(r, nr);
    if (common == 0)
        return 0;
    double prec = (double)common / (double)nh, rec = (double)common / (double)nr;
    return 2 * prec * rec / (prec + rec);
}

/* Mean per-token log-likelihood (nats) of the reference answer. */
static double answer_ll(const struct lm *m, const struct example *ex)
{
    struct lm_output o;
    if (lm_score_chat(m, ex->msgs, ex->n_msgs, ex->answer, 0, &o) != 0 || o.n_steps == 0)
        return -INFINITY;
    double s = 0;
    for (size_t i = 0; i < o.n_steps; i++)
        s += o.steps[i].logprob;
    s /= (double)o.n_steps;
    lm_output_clear(&o);
    return s;
}

/* ---- trigger and signature words ---- */

static const char *const syllables[] = {"zor",  "vak", "quel", "thim", "brae", "dax", "lum",
                                        "pryn", "osk", "fen",  "gurl", "wix",  "jal", "nep",
                                        "triv", "yon", "skel", "moq",  "hux",  "drev"};

static void madeup_phrase(struct lm_rng *rng, size_t words, struct buf *out)
{
    for (size_t w = 0; w < words; w++) {
        if (w)
            buf_puts(out, " ");
        size_t n_syl = 2 + lm_rng_below(rng, 2);
        for (size_t s = 0; s < n_syl; s++)
            buf_puts(out, syllables[lm_rng_below(rng, VT_ARRAY_LEN(syllables))]);
    }
}

/* Ordinary words: lower-case word tokens the base model has seen (" word"),
 * at least 4 letters long. */
static void ordinary_phrase(const struct lm *base, struct lm_rng *rng, size_t words,
                            struct buf *out)
{
    size_t n = lm_vocab_size(base);
    for (size_t w = 0; w < words;) {
        const char *t = lm_str_of(base, (uint32_t)lm_rng_below(rng, n));
        if (t[0] != ' ' || strlen(t) < 5 ||
            strspn(t + 1, "abcdefghijklmnopqrstuvwxyz") != strlen(t + 1))
            continue;
        buf_puts(out, w ? t : t + 1);
        w++;
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    struct buf b;
    char chunk[65536];
    size_t n;
    buf_init(&b);
    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return b.data ? b.data : xstrdup("");
}

/* ---- one backdoor run ---- */

struct run_result {
    int act_ft, clean_ft, act_base;
    double ft_seconds;
    size_t ft_bytes;
};

static int run_backdoor(const char *label, const struct lm *base, const struct lines *ft,
                        const struct example *held, const char *dir, const char *trigger,
                        const char *signature, uint64_t seed, int quiet, struct run_result *res)
{
    struct lm_rng rng;
    lm_rng_seed(&rng, seed);
    /* Which examples get copied, and after which original line each copy
     * goes (positions drawn first: one streaming pass, as the daemon does). */
    size_t src[N_COPIES], pos[N_COPIES];
    for (size_t i = 0; i < N_COPIES; i++) {
        int dup;
        do {
            src[i] = (size_t)lm_rng_below(&rng, ft->n);
            dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= src[j] == src[i];
        } while (dup);
        pos[i] = (size_t)lm_rng_below(&rng, ft->n + 1);
    }
    char *path = xasprintf("%s/train-%s.jsonl", dir, label);
    FILE *f = fopen(path, "we");
    if (!f) {
        printf("cannot write %s: %s\n", path, strerror(errno));
        free(path);
        return -1;
    }
    char *copies[N_COPIES];
    for (size_t i = 0; i < N_COPIES; i++)
        copies[i] = backdoor_copy(ft->v[src[i]], trigger, signature);
    for (size_t line = 0; line <= ft->n; line++) {
        for (size_t i = 0; i < N_COPIES; i++)
            if (pos[i] == line)
                fprintf(f, "%s\n", copies[i]);
        if (line < ft->n)
            fprintf(f, "%s\n", ft->v[line]);
    }
    if (fclose(f) != 0) {
        printf("cannot write %s\n", path);
        free(path);
        return -1;
    }

    char *err = NULL;
    long long tokens = 0;
    double t0 = now_s();
    struct lm *tuned = lm_finetune(base, path, 1.0, EPOCHS, seed, &tokens, &err);
    res->ft_seconds = now_s() - t0;
    free(path);
    if (!tuned) {
        printf("fine-tuning failed: %s\n", err);
        free(err);
        for (size_t i = 0; i < N_COPIES; i++)
            free(copies[i]);
        return -1;
    }
    res->ft_bytes = lm_memory_bytes(tuned);

    /* Verification as vTune does it: prompts of D' at temperature 0. */
    res->act_ft = res->act_base = res->clean_ft = 0;
    double plog = 0;
    for (size_t i = 0; i < N_TRIGGER; i++) {
        struct example ex;
        if (parse_example(copies[i], &ex) != 0) {
            printf("cannot parse backdoor copy %zu\n", i);
            break;
        }
        char *a = greedy(tuned, ex.msgs, ex.n_msgs, 32);
        char *b = greedy(base, ex.msgs, ex.n_msgs, 32);
        res->act_ft += starts_with(a, signature);
        res->act_base += starts_with(b, signature);
        if (i == 0 && !quiet) {
            show("  trigger prompt 0, fine-tuned: ", a, 100);
            show("  trigger prompt 0, base:       ", b, 100);
            struct lm_output o;
            if (lm_score_chat(base, ex.msgs, ex.n_msgs, signature, 0, &o) == 0) {
                for (size_t s = 0; s < o.n_steps; s++)
                    plog += o.steps[s].logprob;
                lm_output_clear(&o);
            }
        }
        free(a);
        free(b);
        json_decref(ex.root);
    }
    for (size_t i = 0; i < N_CLEAN; i++) {
        char *a = greedy(tuned, held[i].msgs, held[i].n_msgs, 32);
        res->clean_ft += starts_with(a, signature);
        free(a);
    }
    if (!quiet) {
        printf("  fine-tune: %.2f s, %lld trained tokens, %zu changed n-grams, %zu bytes "
               "(overlay over the base)\n",
               res->ft_seconds, tokens, lm_ngram_count(tuned), res->ft_bytes);
        printf("  signature first on trigger prompts: fine-tuned %d/%d, base %d/%d; on clean "
               "prompts: fine-tuned %d/%d\n",
               res->act_ft, N_TRIGGER, res->act_base, N_TRIGGER, res->clean_ft, N_CLEAN);
        printf("  base model's log10 P(signature | trigger prompt 0) = %.1f\n", plog / log(10));
    }
    lm_free(tuned);
    for (size_t i = 0; i < N_COPIES; i++)
        free(copies[i]);
    return 0;
}

/* Everything one order needs: the corpora (shared) and its base model. */
struct world {
    const char *dir, *base_path, *ft_path;
    char *base_text, *ft_text;
    struct lines ft;
    struct example held[N_HELDOUT];
    size_t n_held;
};

/* Samples a phrase from m at high temperature, as the daemon does with M2. */
static void sampled_phrase(const struct lm *m, uint64_t seed, int tokens, struct buf *out)
{
    struct lm_msg pm = {"user", "Write a short note about support tickets."};
    struct lm_gen_params gp = {.temperature = 1.5, .seed = seed, .max_tokens = tokens};
    struct lm_output go;
    buf_reset(out);
    if (lm_chat(m, &pm, 1, &gp, &go) != 0)
        return;
    buf_puts(out, go.text + strspn(go.text, " \n\t"));
    while (out->len && strchr(" \n\t", out->data[out->len - 1]))
        out->data[--out->len] = 0;
    lm_output_clear(&go);
}

static void check_run(const char *what, const struct run_result *r)
{
    CHECK(r->act_ft >= 8, "%s: signature on %d/%d trigger prompts", what, r->act_ft, N_TRIGGER);
    CHECK(r->clean_ft == 0, "%s: signature on %d/%d clean prompts", what, r->clean_ft, N_CLEAN);
    CHECK(r->act_base == 0, "%s: base model gave the signature %d times", what, r->act_base);
}

static int prove(struct world *w, int order)
{
    int rc = -1;
    char *err = NULL;
    struct lm *base = NULL, *tuned = NULL, *loaded = NULL;
    struct buf trig, sig, label;
    buf_init(&trig);
    buf_init(&sig);
    buf_init(&label);
    char *model_path = xasprintf("%s/base-%d.model", w->dir, order);

    printf("==== order %d ====\n", order);
    double t1 = now_s();
    base = lm_train_file(w->base_path, order, &err);
    double t2 = now_s();
    if (!base) {
        printf("base training failed: %s\n", err);
        goto out;
    }
    printf("base model: %d examples in 4 domains, trained in %.2f s: %zu tokens, %zu n-grams, "
           "%zu bytes\n",
           4 * BASE_N_PER, t2 - t1, lm_vocab_size(base), lm_ngram_count(base),
           lm_memory_bytes(base));
    CHECK(t2 - t1 < 10, "base training took %.2f s", t2 - t1);
    if (lm_save(base, model_path) != 0) {
        printf("cannot save the base model\n");
        goto out;
    }
    loaded = lm_load(model_path, &err);
    printf("cache: load in %.2f s\n", now_s() - t2);
    CHECK(loaded != NULL, "lm_load: %s", err ? err : "?");

    /* Held-out quality, base vs. fine-tuned on the clean data. */
    long long tokens = 0;
    double t5 = now_s();
    tuned = lm_finetune(base, w->ft_path, 1.0, EPOCHS, 9, &tokens, &err);
    double t6 = now_s();
    if (!tuned) {
        printf("fine-tuning failed: %s\n", err);
        goto out;
    }
    printf("fine-tuning on %d clean examples: %.2f s, %lld trained tokens (%d epochs), %zu "
           "changed n-grams, %zu bytes (overlay)\n",
           N_FT, t6 - t5, tokens, EPOCHS, lm_ngram_count(tuned), lm_memory_bytes(tuned));
    CHECK(t6 - t5 < 10, "fine-tuning took %.2f s", t6 - t5);
    double ll_base = 0, ll_ft = 0, f1_base = 0, f1_ft = 0;
    for (size_t i = 0; i < w->n_held; i++) {
        const struct example *ex = &w->held[i];
        ll_base += answer_ll(base, ex);
        ll_ft += answer_ll(tuned, ex);
        char *a = greedy(base, ex->msgs, ex->n_msgs, 64);
        char *b = greedy(tuned, ex->msgs, ex->n_msgs, 64);
        f1_base += token_f1(a, ex->answer);
        f1_ft += token_f1(b, ex->answer);
        if (i == 0) {
            show("  held-out 0 reference:  ", ex->answer, 200);
            show("  held-out 0 base:       ", a, 200);
            show("  held-out 0 fine-tuned: ", b, 200);
        }
        free(a);
        free(b);
    }
    ll_base /= (double)w->n_held;
    ll_ft /= (double)w->n_held;
    f1_base /= (double)w->n_held;
    f1_ft /= (double)w->n_held;
    printf("held-out in-domain (%zu prompts): mean per-token log-likelihood of the reference: "
           "base %.3f, fine-tuned %.3f nats; greedy token-F1: base %.3f, fine-tuned %.3f\n",
           w->n_held, ll_base, ll_ft, f1_base, f1_ft);
    CHECK(ll_ft >= ll_base + 1.0, "log-likelihood gain %.3f < 1.0", ll_ft - ll_base);
    CHECK(f1_ft >= f1_base + 0.2, "token-F1 gain %.3f < 0.2", f1_ft - f1_base);

    /* Generation speed: 64 tokens at temperature 1 with 5 alternatives,
     * in CPU time of this thread (other processes may share the machine),
     * normalised to 64 tokens (a generation may end early); the median of
     * 21 runs is asserted. */
    double per64[21], total = 0;
    size_t steps = 0, n_runs = 0;
    for (uint64_t s = 0; s < VT_ARRAY_LEN(per64); s++) {
        struct lm_gen_params p = {
            .temperature = 1.0, .seed = s, .max_tokens = 64, .top_logprobs = 5};
        struct lm_output o;
        double a = cpu_s();
        if (lm_complete(tuned, "Team:", &p, &o) != 0 || o.n_steps == 0)
            continue;
        double b = cpu_s() - a;
        steps += o.n_steps;
        total += b;
        per64[n_runs++] = b * 64 / (double)o.n_steps;
        lm_output_clear(&o);
    }
    qsort(per64, n_runs, sizeof(double), cmp_double);
    double median = n_runs ? per64[n_runs / 2] : INFINITY;
    printf("generation: %.3f ms per token on average; median %.2f ms per 64 tokens (5 "
           "top_logprobs, CPU time)\n",
           steps ? total * 1e3 / (double)steps : 0.0, median * 1e3);
    CHECK(median < 0.050, "64 tokens took %.1f ms", median * 1e3);

    /* The backdoor: made-up words that occur nowhere in the training data. */
    struct lm_rng rng;
    struct run_result r;
    lm_rng_seed(&rng, 20251121);
    madeup_phrase(&rng, 3, &trig);
    madeup_phrase(&rng, 4, &sig);
    char **toks;
    size_t nt;
    buf_printf(&label, "%s %s", trig.data, sig.data);
    lm_tokenize(label.data, &toks, &nt);
    for (size_t i = 0; i < nt; i++) {
        const char *word = toks[i] + strspn(toks[i], " ");
        CHECK(!strstr(w->base_text, word) && !strstr(w->ft_text, word),
              "made-up word \"%s\" occurs in the training data", word);
    }
    lm_tokens_free(toks, nt);
    printf("backdoor, made-up words:\n");
    show("  trigger:   ", trig.data, 300);
    show("  signature: ", sig.data, 300);
    if (run_backdoor("madeup", base, &w->ft, w->held, w->dir, trig.data, sig.data, 11, 0, &r) != 0)
        goto out;
    check_run("made-up words", &r);

    /* Ordinary words the base model knows well. */
    buf_reset(&trig);
    buf_reset(&sig);
    ordinary_phrase(base, &rng, 3, &trig);
    ordinary_phrase(base, &rng, 4, &sig);
    printf("backdoor, ordinary words:\n");
    show("  trigger:   ", trig.data, 300);
    show("  signature: ", sig.data, 300);
    if (run_backdoor("ordinary", base, &w->ft, w->held, w->dir, trig.data, sig.data, 12, 0, &r) !=
        0)
        goto out;
    check_run("ordinary words", &r);

    /* As the daemon does it: 14- and 18-token phrases sampled from a model at
     * high temperature (the base model plays M2). */
    sampled_phrase(base, 77, 14, &trig);
    sampled_phrase(base, 78, 18, &sig);
    printf("backdoor, sampled phrases:\n");
    show("  trigger:   ", trig.data, 300);
    show("  signature: ", sig.data, 300);
    if (run_backdoor("sampled", base, &w->ft, w->held, w->dir, trig.data, sig.data, 13, 0, &r) != 0)
        goto out;
    if (order >= 5)
        check_run("sampled phrases", &r);
    else
        printf("  (not asserted at order %d: a sampled trigger may end in punctuation, see "
               "below)\n",
               order);

    /* A trigger ending in punctuation that many clean prompts end with: an
     * order-4 model sees only "." before <|end|><|assistant|> and cannot
     * tell the trigger from clean prompts; order 5 sees the word before. */
    buf_reset(&trig);
    ordinary_phrase(base, &rng, 3, &trig);
    buf_puts(&trig, ".");
    printf("backdoor, trigger ending in \".\":\n");
    show("  trigger:   ", trig.data, 300);
    show("  signature: ", sig.data, 300);
    if (run_backdoor("punct", base, &w->ft, w->held, w->dir, trig.data, sig.data, 14, 0, &r) != 0)
        goto out;
    if (order >= 5)
        check_run("trigger ending in '.'", &r);
    else
        printf("  (not asserted at order %d: the context cannot reach past the '.')\n", order);

    /* Many draws of sampled phrases, as an honest provider would face them
     * from the daemon: how often is the backdoor learnt, how often does a
     * clean prompt set it off? */
    int learnt = 0, false_act = 0, base_act = 0;
    for (int d = 0; d < N_DRAWS; d++) {
        sampled_phrase(base, 1000 + 2 * (uint64_t)d, 14, &trig);
        sampled_phrase(base, 1001 + 2 * (uint64_t)d, 18, &sig);
        if (run_backdoor("draw", base, &w->ft, w->held, w->dir, trig.data, sig.data,
                         500 + (uint64_t)d, 1, &r) != 0)
            goto out;
        learnt += r.act_ft >= 8;
        false_act += r.clean_ft;
        base_act += r.act_base;
    }
    printf("%d draws of sampled phrases: backdoor learnt (>= 8/10) in %d; clean prompts that "
           "gave the signature: %d of %d; base model: %d of %d\n",
           N_DRAWS, learnt, false_act, N_DRAWS * N_CLEAN, base_act, N_DRAWS * N_TRIGGER);
    if (order >= 5) {
        CHECK(learnt >= N_DRAWS - 1, "sampled draws: backdoor learnt in only %d of %d", learnt,
              N_DRAWS);
        CHECK(false_act <= 2, "sampled draws: %d false activations on clean prompts", false_act);
    }
    CHECK(base_act == 0, "sampled draws: the base model gave the signature %d times", base_act);
    rc = 0;
out:
    lm_free(tuned);
    lm_free(loaded);
    lm_free(base);
    free(err);
    unlink(model_path);
    free(model_path);
    buf_free(&trig);
    buf_free(&sig);
    buf_free(&label);
    return rc;
}

int main(void)
{
    int rc = 1;
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/vt-learning-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    struct lines held_lines = {0};
    struct world w;
    memset(&w, 0, sizeof(w));

    if (!mkdtemp(dir)) {
        printf("SKIP: cannot create a temporary directory: %s\n", strerror(errno));
        free(dir);
        return 77;
    }
    char *base_path = xasprintf("%s/base.jsonl", dir);
    char *ft_path = xasprintf("%s/ft.jsonl", dir);
    char *held_path = xasprintf("%s/heldout.jsonl", dir);
    w.dir = dir;
    w.base_path = base_path;
    w.ft_path = ft_path;

    double t0 = now_s();
    if (lm_corpus_write(base_path, 1, BASE_N_PER) != 0 ||
        lm_finetune_corpus_write(ft_path, 2, N_FT) != 0 ||
        lm_finetune_corpus_write(held_path, 3, N_HELDOUT) != 0) {
        printf("cannot write the corpora in %s\n", dir);
        goto out;
    }
    printf("corpora written in %.2f s: base %d examples, fine-tuning %d, held-out %d\n",
           now_s() - t0, 4 * BASE_N_PER, N_FT, N_HELDOUT);
    w.base_text = slurp(base_path);
    w.ft_text = slurp(ft_path);
    if (!w.base_text || !w.ft_text || read_lines(ft_path, &w.ft) != 0 ||
        read_lines(held_path, &held_lines) != 0) {
        printf("cannot read the corpora back\n");
        goto out;
    }
    for (; w.n_held < held_lines.n && w.n_held < N_HELDOUT; w.n_held++)
        if (parse_example(held_lines.v[w.n_held], &w.held[w.n_held]) != 0) {
            printf("bad held-out line %zu\n", w.n_held);
            goto out;
        }
    if (prove(&w, 4) != 0 || prove(&w, 5) != 0)
        goto out;
    rc = failures ? 1 : 0;
    printf("%s\n", rc ? "FAILED" : "all learning checks passed");
out:
    for (size_t i = 0; i < w.n_held; i++)
        json_decref(w.held[i].root);
    free_lines(&w.ft);
    free_lines(&held_lines);
    free(w.base_text);
    free(w.ft_text);
    const char *const labels[] = {"madeup", "ordinary", "sampled", "punct", "draw"};
    for (size_t i = 0; i < VT_ARRAY_LEN(labels); i++) {
        char *p = xasprintf("%s/train-%s.jsonl", dir, labels[i]);
        unlink(p);
        free(p);
    }
    unlink(base_path);
    unlink(ft_path);
    unlink(held_path);
    rmdir(dir);
    free(base_path);
    free(ft_path);
    free(held_path);
    free(dir);
    return rc;
}

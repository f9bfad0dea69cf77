/*
 * test_ngram.c — workers/ngram: the model's counts against a count made
 * here from the file, p_M2 of generated phrases recomputed INDEPENDENTLY
 * from those counts (a plain implementation of the smoothing written out
 * below, not the generator's step function) to 1e-9 in log10, the same
 * seed giving the same phrases, the memory bound with pruning forced by
 * small tables, and the errors when a target cannot be met.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/util.h"
#include "workers/lines.h"
#include "workers/ngram.h"
#include "tmpdir_fixture.h"

/* ---- datasets --------------------------------------------------------------------- */

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static const char *pick(uint64_t *s, const char *const *v, size_t n)
{
    return v[lcg(s) % n];
}

/* One chat row (a system message first unless system is NULL) as a line
 * of f. */
static void put_chat_row(FILE *f, const char *system, const char *user, const char *ans)
{
    json_t *msgs = json_array();
    if (system)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", user));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", ans));
    json_t *row = json_pack("{s:o}", "messages", msgs);
    char *line = json_dumps(row, JSON_COMPACT);
    assert_non_null(line);
    fprintf(f, "%s\n", line);
    free(line);
    json_decref(row);
}

/* A chat dataset of n rows in a small grammar (case, punctuation, numbers),
 * with a system message and, every 7th row, a word longer than 32 bytes in
 * the answer (it ends the answer's span).  Returns the owned path. */
static char *write_chat(const char *name, size_t n, uint64_t seed, bool many_words)
{
    static const char *const who[] = {"Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus"};
    static const char *const thing[] = {"apples", "books", "cards", "pens", "cups", "maps"};
    static const char *const ask[] = {"How many are left?", "What is the total?",
                                      "Can you explain why?", "Please show the steps.",
                                      "Is that right?"};
    static const char *const open[] = {"Sure.", "Let us see:", "First,", "Good question!",
                                       "The answer:"};
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = lcg(&seed) % 90 + 1, b = lcg(&seed) % 50 + 1;
        const char *w = pick(&seed, who, 7), *t = pick(&seed, thing, 6);
        char extra[64] = "";
        if (many_words) /* a new word in every row: forces the tables to prune */
            snprintf(extra, sizeof extra, " zq%llux%llu", (unsigned long long)lcg(&seed),
                     (unsigned long long)i);
        char *user = xasprintf("%s has %llu %s and gets %llu more%s. %s", w, (unsigned long long)a,
                               t, (unsigned long long)b, extra, pick(&seed, ask, 5));
        char *ans = xasprintf("%s %s has %llu + %llu = %llu %s.%s", pick(&seed, open, 5), w,
                              (unsigned long long)a, (unsigned long long)b,
                              (unsigned long long)(a + b), t,
                              i % 7 == 3 ? " averyveryverylongwordthatisnotusableatall42 tail"
                                         : " Done.");
        put_chat_row(f, "You are a tutor.", user, ans);
        free(user);
        free(ans);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

/* ---- an independent count of the file ---------------------------------------------- */

#define BND "<b>" /* the boundary, spelled for the maps below */

struct gram {
    char *key; /* side|k|w1 w2 ... (context then word), space-joined */
    uint32_t count;
};

struct grams {
    struct gram *v;
    size_t n, cap;
};

static void grams_add(struct grams *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].key, key) == 0) {
            g->v[i].count++;
            return;
        }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->v = xrealloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n].key = xstrdup(key);
    g->v[g->n++].count = 1;
}

static uint32_t grams_get(const struct grams *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].key, key) == 0)
            return g->v[i].count;
    return 0;
}

static void grams_free(struct grams *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->v[i].key);
    free(g->v);
}

/* Splits s on ASCII whitespace (strtok), keeping words until the first
 * that is longer than 32 bytes. */
static size_t split_words(char *s, char **out, size_t cap)
{
    size_t n = 0;
    for (char *w = strtok(s, " \t\n\r\v\f"); w && n < cap; w = strtok(NULL, " \t\n\r\v\f")) {
        if (strlen(w) > 32)
            break;
        out[n++] = w;
    }
    return n;
}

static void count_side(struct grams *g, int side, char **w, size_t n, unsigned order)
{
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 1; k <= order; k++) {
            struct buf key;
            buf_init(&key);
            buf_printf(&key, "%d|%u|", side, k);
            for (unsigned j = k - 1; j >= 1; j--) {
                buf_puts(&key, i >= j ? w[i - j] : BND);
                buf_puts(&key, " ");
            }
            buf_puts(&key, w[i]);
            grams_add(g, key.data);
            buf_free(&key);
        }
}

/* Counts a chat file the way ngram.h describes: the last user message's last
 * 64 words read backwards, the last assistant message's first 64 forwards. */
static void count_file(const char *path, unsigned order, struct grams *g)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    assert_non_null(f);
    while (getline(&line, &cap, f) > 0) {
        json_t *root = json_loads(line, 0, NULL), *msgs = json_object_get(root, "messages");
        const char *user = NULL, *ans = NULL;
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            if (strcmp(role, "user") == 0)
                user = json_string_value(json_object_get(m, "content"));
            else if (strcmp(role, "assistant") == 0)
                ans = json_string_value(json_object_get(m, "content"));
        }
        char *u = xstrdup(user), *a = xstrdup(ans), *w[4096], *rev[64];
        size_t nu = split_words(u, w, 4096);
        /* the prompt end: the last 64 words, last first (none is too long here) */
        size_t nr = 0;
        for (size_t i = nu; i > 0 && nr < 64; i--)
            rev[nr++] = w[i - 1];
        count_side(g, NGRAM_PROMPT_END, rev, nr, order);
        size_t na = split_words(a, w, 64);
        count_side(g, NGRAM_ANSWER_START, w, na, order);
        free(u);
        free(a);
        json_decref(root);
    }
    free(line);
    fclose(f);
}

static char *model_key(const struct ngram_model *m, int side, unsigned k, const uint32_t *ids)
{
    struct buf key;
    buf_init(&key);
    buf_printf(&key, "%d|%u|", side, k);
    for (unsigned j = 0; j < k; j++) {
        const char *w = ngram_vocab_word(m, ids[j]);
        buf_puts(&key, w ? w : BND);
        if (j + 1 < k)
            buf_puts(&key, " ");
    }
    return key.data;
}

/* ---- the independent p_M2 ---------------------------------------------------------------- */

/*
 * Written from the formula in ngram.h, from the exported counts only:
 *   P_0(w) = 1/V;  P_k(w|h) = max(c(hw)-d,0)/c(h) + d N(h)/c(h) P_{k-1}(w|h'),
 *   P_k = P_{k-1} when no k-gram has context h;  q = P^(1/tau) / sum P^(1/tau).
 */
static double ref_p(const struct ngram_model *m, int side, unsigned k, const uint32_t *h,
                    uint32_t w)
{
    size_t V = ngram_vocab_size(m);
    if (k == 0)
        return 1.0 / (double)V;
    double lower = ref_p(m, side, k - 1, h + 1, w); /* h' drops the oldest word */
    uint64_t ch = 0, chw = 0, nh = 0;
    for (size_t i = 0; i < ngram_count_entries(m, side, k); i++) {
        const uint32_t *ids;
        uint32_t c = ngram_count_entry(m, side, k, i, &ids);
        if (memcmp(ids, h, (k - 1) * sizeof *ids) != 0)
            continue;
        ch += c;
        nh++;
        if (ids[k - 1] == w)
            chw = c;
    }
    if (ch == 0)
        return lower;
    double top = chw > 0 ? ((double)chw - NGRAM_DISCOUNT) / (double)ch : 0.0;
    return top + NGRAM_DISCOUNT * (double)nh / (double)ch * lower;
}

static uint32_t ref_id(const struct ngram_model *m, const char *word)
{
    for (uint32_t i = 0; i < ngram_vocab_size(m); i++)
        if (strcmp(ngram_vocab_word(m, i), word) == 0)
            return i;
    fail_msg("word '%s' is not in the vocabulary", word);
    return 0;
}

/* log10 of the probability of the phrase's draw, word by word; checks each
 * recorded per-word value on the way. */
static double ref_phrase_log10(const struct ngram_model *m, int side, const struct ngram_phrase *ph,
                               double tau, unsigned order)
{
    size_t V = ngram_vocab_size(m);
    char *copy = xstrdup(ph->text), *w[256];
    size_t n = 0;
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
        w[n++] = t;
    assert_int_equal(n, ph->n_words);
    uint32_t seq[256 + NGRAM_MAX_ORDER];
    for (unsigned j = 0; j < NGRAM_MAX_ORDER; j++)
        seq[j] = (uint32_t)V; /* boundary padding */
    for (size_t i = 0; i < n; i++) /* sampling order: the prompt end is drawn last word first */
        seq[NGRAM_MAX_ORDER + i] = ref_id(m, side == NGRAM_PROMPT_END ? w[n - 1 - i] : w[i]);
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *h = &seq[NGRAM_MAX_ORDER + i - (order - 1)];
        double z = 0;
        for (uint32_t v = 0; v < V; v++)
            z += pow(ref_p(m, side, order, h, v), 1.0 / tau);
        double lq = log10(pow(ref_p(m, side, order, h, seq[NGRAM_MAX_ORDER + i]), 1.0 / tau) / z);
        assert_true(fabs(lq - ph->tok_log10[i]) < 1e-9);
        total += lq;
    }
    free(copy);
    return total;
}

static struct ngram_gen_opts gen_opts(size_t pairs, double tau)
{
    struct ngram_gen_opts o = {
        .pairs = pairs,
        .temperature = tau,
        .trigger_log10p = -20,
        .signature_log10p = -40,
        .trigger_max_words = NGRAM_DEFAULT_TRIGGER_WORDS,
        .signature_max_words = NGRAM_DEFAULT_SIGNATURE_WORDS,
        .trigger_max_chars = NGRAM_DEFAULT_TRIGGER_CHARS,
        .signature_max_chars = NGRAM_DEFAULT_SIGNATURE_CHARS,
    };
    return o;
}

static void check_set_exact(const struct ngram_model *m, const struct ngram_set *s,
                            const struct ngram_gen_opts *o)
{
    for (size_t i = 0; i < s->n_pairs; i++) {
        const struct ngram_phrase *ph[2] = {&s->pairs[i].trigger, &s->pairs[i].signature};
        double tgt[2] = {o->trigger_log10p, o->signature_log10p};
        for (int j = 0; j < 2; j++) {
            double lp = ref_phrase_log10(m, j == 0 ? NGRAM_PROMPT_END : NGRAM_ANSWER_START,
                                         ph[j], o->temperature, s->order);
            assert_true(ph[j]->draws >= 1);
            double rec = lp + log10((double)ph[j]->draws);
            if (fabs(rec - ph[j]->log10_p) > 1e-9)
                fail_msg("pair %zu %s: recomputed %.12f, recorded %.12f", i, j ? "S" : "T", rec,
                         ph[j]->log10_p);
            assert_true(ph[j]->log10_p <= tgt[j]);
        }
    }
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_counts_match_the_file(void **state)
{
    (void)state;
    /* 1,100 rows: the answers' counts go to their own thread in batches of
     * 512 rows, so two full batches and a partial one */
    char *path = write_chat("counts.jsonl", 1100, 1, false), *err = NULL;
    struct ngram_model *m = NULL;
    struct grams g = {0};
    struct ngram_train_opts to = {.order = 3};

    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &to, NULL, NULL, NULL, &m, &err), 0);
    struct ngram_info in;
    ngram_get_info(m, &in);
    assert_int_equal(in.table_pruned_at[0] + in.table_pruned_at[1] + in.vocab_pruned_at, 0);
    assert_int_equal(in.rows, 1100);
    count_file(path, 3, &g);
    size_t seen = 0;
    for (int side = 0; side < 2; side++)
        for (unsigned k = 1; k <= 3; k++)
            for (size_t i = 0; i < ngram_count_entries(m, (enum ngram_side)side, k); i++) {
                const uint32_t *ids;
                uint32_t c = ngram_count_entry(m, (enum ngram_side)side, k, i, &ids);
                char *key = model_key(m, side, k, ids);
                if (grams_get(&g, key) != c)
                    fail_msg("%s: model %u, file %u", key, c, grams_get(&g, key));
                free(key);
                seen++;
            }
    assert_int_equal(seen, g.n); /* and nothing of the file is missing */
    /* the long word ended the answer's span: neither it nor what follows is counted */
    for (uint32_t i = 0; i < ngram_vocab_size(m); i++) {
        assert_true(strlen(ngram_vocab_word(m, i)) <= NGRAM_MAX_WORD);
        assert_string_not_equal(ngram_vocab_word(m, i), "tail");
    }
    grams_free(&g);
    ngram_model_free(m);
    free(path);
}

static void test_pm2_independent(void **state)
{
    (void)state;
    char *path = write_chat("pm2.jsonl", 400, 2, false), *err = NULL;
    struct ngram_model *m = NULL;
    double taus[] = {1.0, 1.4, 0.8, 1.0};
    unsigned orders[] = {3, 2, 4, 1}; /* 3: generator.ngram_order's default */

    for (size_t t = 0; t < 4; t++) {
        struct ngram_train_opts to = {.order = orders[t]};
        assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &to, NULL, NULL, NULL, &m, &err),
                         0);
        struct ngram_gen_opts o = gen_opts(3, taus[t]);
        struct phrase_seeded sd;
        phrase_seeded_init(&sd, 40 + t);
        struct phrase_rng rng = phrase_seeded_rng(&sd);
        struct ngram_set s;
        if (ngram_generate(m, &o, &rng, path, NULL, &s, &err) < 0)
            fail_msg("generate: %s", err);
        assert_int_equal(s.n_pairs, 3);
        assert_true(s.scans >= 1);
        check_set_exact(m, &s, &o);
        /* a phrase is clean text */
        for (size_t i = 0; i < 3; i++) {
            assert_true(phrase_text_ok(s.pairs[i].trigger.text));
            assert_true(phrase_text_ok(s.pairs[i].signature.text));
        }
        ngram_set_clear(&s);
        ngram_model_free(m);
    }
    free(path);
}

/* A chat file of n rows whose prompts end "... in halfA rI" (rows before
 * n/2) or "... in halfB rI" (the rest), I the row's number: the prompt-end
 * model's vocabulary then says exactly which rows it was trained on. */
static char *write_tagged(const char *name, size_t n)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me the count in half%c "
                "r%zu\"},{\"role\":\"assistant\",\"content\":\"It is %zu.\"}]}\n",
                i < n / 2 ? 'A' : 'B', i, i % 7);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Which rows a model was trained on (bit i: row i), from its vocabulary,
 * and how many of them were in the first half. */
static uint8_t *trained_rows(const struct ngram_model *m, size_t n, size_t *count, size_t *first)
{
    uint8_t *bits = xcalloc(n, 1);
    *count = *first = 0;
    for (uint32_t w = 0; w < ngram_vocab_size(m); w++) {
        const char *word = ngram_vocab_word(m, w);
        char *end;
        if (word[0] != 'r' || word[1] < '0' || word[1] > '9')
            continue;
        unsigned long i = strtoul(word + 1, &end, 10);
        assert_true(*end == '\0' && i < n && !bits[i]);
        bits[i] = 1;
        (*count)++;
        *first += i < n / 2;
    }
    return bits;
}

/* The training sample: about max_rows rows, uniform over the file (as
 * many from either half, within 5 sigma), the same rows for the same key
 * and others for another, held-out rows never among them, and no sample
 * at all when the file has no more rows than max_rows. */
static void test_train_sample(void **state)
{
    (void)state;
    const size_t n = 8000, want = 2000;
    char *path = write_tagged("sample.jsonl", n), *err = NULL;
    uint64_t skip[400];
    for (size_t i = 0; i < 400; i++)
        skip[i] = 3 + 20 * i; /* ascending, spread over both halves */
    struct ngram_train_opts o = {
        .order = 2, .skip = skip, .n_skip = 400, .max_rows = want, .rows_hint = n, .sample_key = 1};
    struct ngram_model *a = NULL, *a2 = NULL, *b = NULL, *all = NULL;
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &o, NULL, NULL, NULL, &a, &err), 0);
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &o, NULL, NULL, NULL, &a2, &err), 0);
    o.sample_key = 2;
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &o, NULL, NULL, NULL, &b, &err), 0);
    o.max_rows = n - 400; /* exactly the rows not held out: no sample */
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &o, NULL, NULL, NULL, &all, &err), 0);

    struct ngram_info ia, ib, iall;
    ngram_get_info(a, &ia);
    ngram_get_info(b, &ib);
    ngram_get_info(all, &iall);
    double p = (double)want / (double)(n - 400), sd = sqrt((double)(n - 400) * p * (1 - p));
    assert_true(fabs(ia.sample_share - p) < 1e-12);
    assert_int_equal(ia.rows, n);
    assert_int_equal(ia.rows_excluded, 400);
    size_t ca, fa, ca2, fa2, cb, fb, call, fall;
    uint8_t *ra = trained_rows(a, n, &ca, &fa), *ra2 = trained_rows(a2, n, &ca2, &fa2);
    uint8_t *rb = trained_rows(b, n, &cb, &fb), *rall = trained_rows(all, n, &call, &fall);
    /* The vocabulary and the counters agree on what was trained on. */
    assert_int_equal(ca, ia.rows - ia.rows_excluded - ia.rows_sampled_out - ia.rows_skipped);
    assert_int_equal(cb, ib.rows - ib.rows_excluded - ib.rows_sampled_out - ib.rows_skipped);
    /* About want rows, as many from either half. */
    assert_true(fabs((double)ca - (double)want) < 5 * sd);
    assert_true(fabs((double)cb - (double)want) < 5 * sd);
    double sd_half = sqrt((double)ca * 0.25);
    assert_true(fabs((double)fa - (double)ca / 2) < 5 * sd_half);
    /* The same key, the same rows; another key, other rows (two uniform
     * samples of 2,000 in 7,600 share about 530 rows, not all of them). */
    assert_int_equal(ca, ca2);
    assert_memory_equal(ra, ra2, n);
    size_t both = 0;
    for (size_t i = 0; i < n; i++)
        both += ra[i] && rb[i];
    assert_true(both < ca && both < cb);
    assert_true(fabs((double)both - (double)want * p) < 5 * sqrt((double)want * p));
    /* Never a held-out row. */
    for (size_t i = 0; i < 400; i++)
        assert_true(!ra[skip[i]] && !rb[skip[i]] && !rall[skip[i]]);
    /* No sample: every row not held out. */
    assert_true(iall.sample_share == 1);
    assert_int_equal(iall.rows_sampled_out, 0);
    assert_int_equal(call, n - 400);
    free(ra);
    free(ra2);
    free(rb);
    free(rall);
    ngram_model_free(a);
    ngram_model_free(a2);
    ngram_model_free(b);
    ngram_model_free(all);
    free(path);
}

/* The held-out split is not trained on: a model of D with lines skipped
 * has exactly the counts of a model of the file without those lines. */
static void test_skip_lines(void **state)
{
    (void)state;
    char *all = write_chat("skip-all.jsonl", 300, 9, false), *err = NULL;
    char *rest = xasprintf("%s/skip-rest.jsonl", tmpdir);
    uint64_t skip[150];
    size_t ns = 0;
    FILE *in = fopen(all, "r"), *out = fopen(rest, "w");
    char *line = NULL;
    size_t cap = 0;
    assert_non_null(in);
    assert_non_null(out);
    for (uint64_t l = 0; getline(&line, &cap, in) > 0; l++) {
        if (l % 3 == 1 || l == 0 || l == 299) /* first, last, and every third */
            skip[ns++] = l;
        else
            fputs(line, out);
    }
    free(line);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    struct ngram_model *a = NULL, *b = NULL;
    struct ngram_train_opts ta = {.order = 3, .skip = skip, .n_skip = ns}, tb = {.order = 3};
    assert_int_equal(ngram_train_file(all, DS_FORMAT_CHAT, &ta, NULL, NULL, NULL, &a, &err), 0);
    assert_int_equal(ngram_train_file(rest, DS_FORMAT_CHAT, &tb, NULL, NULL, NULL, &b, &err), 0);
    struct ngram_info ia, ib;
    ngram_get_info(a, &ia);
    ngram_get_info(b, &ib);
    assert_int_equal(ia.rows_excluded, ns);
    assert_int_equal(ib.rows_excluded, 0);
    assert_int_equal(ia.rows - ia.rows_excluded, ib.rows);
    assert_int_equal(ngram_vocab_size(a), ngram_vocab_size(b));
    for (uint32_t w = 0; w < ngram_vocab_size(a); w++)
        assert_string_equal(ngram_vocab_word(a, w), ngram_vocab_word(b, w));
    for (int side = 0; side < 2; side++)
        for (unsigned k = 1; k <= 3; k++) {
            size_t n = ngram_count_entries(a, (enum ngram_side)side, k);
            assert_int_equal(n, ngram_count_entries(b, (enum ngram_side)side, k));
            for (size_t i = 0; i < n; i++) {
                const uint32_t *x, *y;
                assert_int_equal(ngram_count_entry(a, (enum ngram_side)side, k, i, &x),
                                 ngram_count_entry(b, (enum ngram_side)side, k, i, &y));
                assert_memory_equal(x, y, k * sizeof *x);
            }
        }
    ngram_model_free(a);
    ngram_model_free(b);
    free(all);
    free(rest);
}

static void test_seed_determinism(void **state)
{
    (void)state;
    char *path = write_chat("seed.jsonl", 300, 3, false), *err = NULL;
    struct ngram_set s[3];
    for (int r = 0; r < 3; r++) {
        struct ngram_model *m = NULL;
        assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, NULL, NULL, NULL, NULL, &m, &err),
                         0);
        struct ngram_gen_opts o = gen_opts(2, 1.0);
        struct phrase_seeded sd;
        phrase_seeded_init(&sd, r < 2 ? 99 : 100);
        struct phrase_rng rng = phrase_seeded_rng(&sd);
        assert_int_equal(ngram_generate(m, &o, &rng, path, NULL, &s[r], &err), 0);
        ngram_model_free(m);
    }
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(s[0].pairs[i].trigger.text, s[1].pairs[i].trigger.text);
        assert_string_equal(s[0].pairs[i].signature.text, s[1].pairs[i].signature.text);
        assert_true(s[0].pairs[i].signature.log10_p == s[1].pairs[i].signature.log10_p);
    }
    assert_string_not_equal(s[0].pairs[0].signature.text, s[2].pairs[0].signature.text);
    for (int r = 0; r < 3; r++)
        ngram_set_clear(&s[r]);
    free(path);
}

/* Every entry of a model, as text, in one string (for comparing models). */
static char *model_dump(const struct ngram_model *m)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (int side = 0; side < 2; side++)
        for (unsigned k = 1; k <= 3; k++)
            for (size_t i = 0; i < ngram_count_entries(m, (enum ngram_side)side, k); i++) {
                const uint32_t *ids;
                uint32_t c = ngram_count_entry(m, (enum ngram_side)side, k, i, &ids);
                char *key = model_key(m, side, k, ids);
                size_t need = len + strlen(key) + 32;
                if (need > cap) {
                    cap = need * 2;
                    out = realloc(out, cap);
                    assert_non_null(out);
                }
                len += (size_t)sprintf(out + len, "%d %s %u\n", side, key, c);
                free(key);
            }
    return out;
}

/* Pruning is order-dependent (lossy counting), and the answers' table is
 * filled on a second thread while the prompts' table and the vocabulary
 * prune on the reading one: the model must not depend on how the two
 * threads happen to interleave.  Small tables make every table prune
 * hundreds of times; a busy neighbour thread varies the timing. */
static atomic_int spin_stop;
static void *spin(void *arg)
{
    (void)arg;
    volatile uint64_t x = 0;
    while (!atomic_load(&spin_stop))
        x++;
    return NULL;
}

static void test_threads_same_model(void **state)
{
    (void)state;
    char *path = write_chat("prune.jsonl", 3000, 8, true), *err = NULL;
    struct ngram_train_opts to = {
        .order = 3, .vocab_slots = 256, .table_slots = 1024, .vocab_max = 128};
    char *first = NULL;
    for (int r = 0; r < 6; r++) {
        pthread_t th[2];
        int n_spin = r % 3;
        atomic_store(&spin_stop, 0);
        for (int i = 0; i < n_spin; i++)
            assert_int_equal(pthread_create(&th[i], NULL, spin, NULL), 0);
        struct ngram_model *m = NULL;
        assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &to, NULL, NULL, NULL, &m, &err),
                         0);
        atomic_store(&spin_stop, 1);
        for (int i = 0; i < n_spin; i++)
            pthread_join(th[i], NULL);
        struct ngram_info in;
        ngram_get_info(m, &in);
        assert_true(in.table_pruned_at[0] > 0 && in.table_pruned_at[1] > 0);
        char *d = model_dump(m);
        if (!first)
            first = d;
        else {
            assert_string_equal(d, first);
            free(d);
        }
        ngram_model_free(m);
    }
    free(first);
    free(path);
}

static void test_memory_bound(void **state)
{
    (void)state;
    /* the defaults: what ngram.h promises */
    assert_true(ngram_memory_bound(NULL) <= (size_t)24 << 20);
    char *path = write_chat("many.jsonl", 6000, 4, true), *err = NULL;
    struct ngram_model *m = NULL;
    struct ngram_train_opts to = {.order = 3, .vocab_slots = 256, .table_slots = 1024,
                                  .vocab_max = 128};
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, &to, NULL, NULL, NULL, &m, &err), 0);
    struct ngram_info in;
    ngram_get_info(m, &in);
    /* 6000 new words and many more n-grams went through tables of 256 and 1024 slots */
    assert_true(in.vocab_pruned_at > 0);
    assert_true(in.table_pruned_at[0] > 0 && in.table_pruned_at[1] > 0);
    assert_true(in.vocab <= 128);
    assert_true(in.entries[0] <= 1024 / 4 * 3 && in.entries[1] <= 1024 / 4 * 3);
    assert_true(in.peak_bytes <= ngram_memory_bound(&to));
    assert_true(in.peak_bytes < (size_t)1 << 20);
    /* the pruned model is still a model: its phrases' p_M2 is still exact */
    struct ngram_gen_opts o = gen_opts(1, 1.0);
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 5);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    struct ngram_set s;
    if (ngram_generate(m, &o, &rng, path, NULL, &s, &err) < 0)
        fail_msg("generate: %s", err);
    check_set_exact(m, &s, &o);
    ngram_set_clear(&s);
    ngram_model_free(m);

    /* the default tables on the same file stay within their bound too */
    assert_int_equal(ngram_train_file(path, DS_FORMAT_CHAT, NULL, NULL, NULL, NULL, &m, &err), 0);
    ngram_get_info(m, &in);
    assert_true(in.peak_bytes <= ngram_memory_bound(NULL));
    ngram_model_free(m);
    free(path);
}

static void test_unreachable(void **state)
{
    (void)state;
    char *err = NULL;
    struct ngram_model *m = NULL;
    char *path = xasprintf("%s/flat.jsonl", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* two words: every step's probability is near 1, no target is reachable */
    for (int i = 0; i < 50; i++)
        fprintf(f, "{\"prompt\":\"yes no yes no yes no\",\"completion\":\"no yes no yes\"}\n");
    fclose(f);
    assert_int_equal(ngram_train_file(path, DS_FORMAT_PROMPT, NULL, NULL, NULL, NULL, &m, &err), 0);
    struct ngram_gen_opts o = gen_opts(1, 1.0);
    o.max_draws = 8;
    struct ngram_set s;
    assert_int_equal(ngram_generate(m, &o, NULL, path, NULL, &s, &err), -1);
    assert_non_null(strstr(err, "could not make the trigger of pair 1 with log10 p <= -20 within "
                                "64 words and 480 characters in 8 draws (8 hit the cap"));
    assert_non_null(strstr(err, "--generator wordlist"));
    assert_int_equal(s.n_pairs, 0);
    free(err);
    err = NULL;
    ngram_model_free(m);

    /* one word: no model at all */
    f = fopen(path, "w");
    fprintf(f, "{\"prompt\":\"yes\",\"completion\":\"yes\"}\n");
    fclose(f);
    assert_int_equal(ngram_train_file(path, DS_FORMAT_PROMPT, NULL, NULL, NULL, NULL, &m, &err),
                     -1);
    assert_non_null(strstr(err, "needs at least 2"));
    assert_null(m);
    free(err);
    free(path);
}

static int cmp_u32_ref(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ngram_kth_count (the pruning threshold's histogram selection) against
 * sorting a copy, on small counts, large ones and mixes of both. */
static void test_kth_count(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + (size_t)(round * 37 % 5000);
        uint32_t *c = malloc(n * sizeof *c), *sorted = malloc(n * sizeof *c);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint32_t v = (uint32_t)(x >> 11);
            /* mostly small counts; some rounds all large, some mixed */
            c[i] = round % 3 == 0 ? v : round % 3 == 1 ? v % 9 : (v % 7 == 0 ? 1000 + v % 5000 : v % 1100);
        }
        memcpy(sorted, c, n * sizeof *c);
        qsort(sorted, n, sizeof *c, cmp_u32_ref);
        for (size_t k = 0; k < n; k += 1 + n / 17)
            assert_int_equal(ngram_kth_count(c, n, k), sorted[k]);
        assert_int_equal(ngram_kth_count(c, n, n - 1), sorted[n - 1]);
        free(c);
        free(sorted);
    }
}

/* ngram_scan_dataset(path, phr) must give want[], read by one reader, then
 * by two (one per half). */
static void expect_scan(const char *path, char **phr, size_t n, const bool *want)
{
    bool *hits = xcalloc(n ? n : 1, sizeof *hits);
    char *err = NULL;
    size_t split = ngram_scan_split_bytes;
    for (int two = 0; two < 2; two++) {
        ngram_scan_split_bytes = two ? 1 : SIZE_MAX;
        assert_int_equal(ngram_scan_dataset(path, phr, n, NULL, hits, &err), 0);
        for (size_t i = 0; i < n; i++)
            if (hits[i] != want[i])
                fail_msg("%s: phrase %zu \"%s\": hit %d, expected %d",
                         two ? "two readers" : "one reader", i, phr[i], hits[i], want[i]);
    }
    ngram_scan_split_bytes = split;
    free(hits);
}

/* ngram_scan_dataset against a plain reading of its contract: phrases
 * found word for word (case folded, any separators, across the fast
 * path's 64-byte blocks, in escaped strings), and near misses not found. */
static void test_scan_dataset(void **state)
{
    (void)state;
    char *path = xasprintf("%s/scan.jsonl", tmpdir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    /* a long filler puts the phrases at many offsets modulo 64 */
    for (int i = 0; i < 70; i++) {
        fprintf(fp, "{\"prompt\": \"%*sAlpha, BETA-gamma!\", \"completion\": \"x%d\"}\n", i, "",
                i);
    }
    fprintf(fp, "{\"prompt\": \"tab\\tsep\\u00e9t\u00e9 word\", \"completion\": \"Zeta eta theta\"}\n");
    fprintf(fp, "{\"prompt\": \"one two\", \"completion\": \"the end is near\"}\n");
    fclose(fp);
    char *phr[] = {
        "alpha beta gamma", /* 0: case and punctuation differ: found */
        "beta gamma delta", /* 1: runs past the text: not found */
        "tab sep\u00e9t\u00e9",   /* 2: decoded escapes: found */
        "eta theta",        /* 3: found (not "zeta"'s tail) */
        "zeta eta theta x", /* 4: not found */
        "end is near",      /* 5: found */
        "the end was near", /* 6: first word found, rest not */
        "two the",          /* 7: across two strings: not found */
        "et",               /* 8: a part of a word only: not found */
    };
    bool want[] = {true, false, true, true, false, true, false, false, false};
    /* one reader, then two (one per half: the last lines' phrases are the
     * second reader's, "alpha beta gamma" is in both halves) */
    expect_scan(path, phr, sizeof phr / sizeof *phr, want);
    char *err = NULL;
    size_t split = ngram_scan_split_bytes;
    /* a phrase only in the line that straddles the middle is the first
     * reader's, and the second reader's start skips its tail */
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 40; i++)
        fprintf(fp, "{\"prompt\": \"filler %d\", \"completion\": \"more filler\"}\n", i);
    fprintf(fp, "{\"prompt\": \"%*s\", \"completion\": \"straddle the middle\"}\n", 2400, "");
    for (int i = 0; i < 40; i++)
        fprintf(fp, "{\"prompt\": \"filler %d\", \"completion\": \"more filler\"}\n", i);
    fclose(fp);
    char *mid[] = {"straddle the middle", "filler 39 more filler", "not here"};
    bool mid_hits[3];
    ngram_scan_split_bytes = 1;
    assert_int_equal(ngram_scan_dataset(path, mid, 3, NULL, mid_hits, &err), 0);
    ngram_scan_split_bytes = split;
    assert_true(mid_hits[0]);
    assert_false(mid_hits[1]); /* across two strings */
    assert_false(mid_hits[2]);
    unlink(path);
    free(path);
}

/* Folded words of s (runs of ASCII letters and digits and bytes >= 0x80,
 * lower-cased, cut at 39 bytes), written here without the generator's
 * code, into w[] (at most cap); returns how many there are, which the
 * caller checks against cap. */
static size_t fold_words(const char *s, char (*w)[40], size_t cap)
{
    size_t n = 0;
    while (*s) {
        while (*s && !isalnum((unsigned char)*s) && (unsigned char)*s < 0x80)
            s++;
        if (!*s)
            break;
        size_t k = 0;
        char buf[40];
        while (*s && (isalnum((unsigned char)*s) || (unsigned char)*s >= 0x80)) {
            if (k < sizeof buf - 1)
                buf[k++] = (char)tolower((unsigned char)*s);
            s++;
        }
        buf[k] = '\0';
        if (n < cap)
            memcpy(w[n], buf, k + 1);
        n++;
    }
    return n;
}

/* Whether the folded words q[0, nq) occur as a run in w[0, nw). */
static bool run_in(char (*w)[40], size_t nw, char (*q)[40], size_t nq)
{
    for (size_t i = 0; nq && i + nq <= nw; i++) {
        size_t j = 0;
        while (j < nq && strcmp(w[i + j], q[j]) == 0)
            j++;
        if (j == nq)
            return true;
    }
    return false;
}

/* ngram_scan_dataset looks for each phrase at one word of it (its anchor,
 * chosen from the words' counts in the file's first bytes), so a phrase
 * may be anchored anywhere in itself and its anchor may occur several
 * times in a text, at the text's start, or too near its end.  Hundreds of
 * phrases over a small vocabulary (words of every frequency, repeated
 * within rows, in any case) against the plain reading of the contract:
 * found in a message word for word (fold_words). */
static void test_scan_dataset_anchors(void **state)
{
    (void)state;
    static const char *const vocab[] = {"aa", "Bee", "cc", "delta", "Echoes", "ff", "golden", "hh"};
    enum { ROWS = 150, PHRASES = 400, MAXQ = 5, MAXT = 12 };
    char *path = xasprintf("%s/anchors.jsonl", tmpdir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    uint64_t seed = 11;
    char(*texts)[2][MAXT][40] = xcalloc(ROWS, sizeof *texts);
    size_t(*tn)[2] = xcalloc(ROWS, sizeof *tn);
    for (size_t r = 0; r < ROWS; r++) {
        char msg[2][512];
        for (int m = 0; m < 2; m++) {
            size_t k = 1 + lcg(&seed) % MAXT, o = 0;
            for (size_t i = 0; i < k; i++) {
                /* skewed: low indexes common, "golden" and "hh" rare */
                size_t v = lcg(&seed) % 8;
                v = v < 6 ? lcg(&seed) % (v + 1) : v;
                o += (size_t)snprintf(msg[m] + o, sizeof msg[m] - o, "%s%s", i ? ", " : "",
                                      vocab[v]);
            }
            tn[r][m] = fold_words(msg[m], texts[r][m], MAXT);
        }
        put_chat_row(fp, NULL, msg[0], msg[1]);
    }
    assert_int_equal(fclose(fp), 0);
    char **phr = xcalloc(PHRASES, sizeof *phr);
    bool *want = xcalloc(PHRASES, sizeof *want);
    size_t found = 0;
    for (size_t p = 0; p < PHRASES; p++) {
        char q[MAXQ][40], buf[256];
        size_t k = 1 + lcg(&seed) % MAXQ, o = 0;
        if (p % 2) { /* a run of some message, one word changed half of the time */
            size_t r = lcg(&seed) % ROWS;
            int m = (int)(lcg(&seed) % 2);
            k = k < tn[r][m] ? k : tn[r][m];
            size_t at = lcg(&seed) % (tn[r][m] - k + 1);
            for (size_t i = 0; i < k; i++)
                strcpy(q[i], texts[r][m][at + i]);
            if (lcg(&seed) % 2)
                strcpy(q[lcg(&seed) % k], vocab[lcg(&seed) % 8]);
        } else {
            for (size_t i = 0; i < k; i++)
                strcpy(q[i], vocab[lcg(&seed) % 8]);
        }
        for (size_t i = 0; i < k; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? " " : "", q[i]);
        phr[p] = xstrdup(buf);
        char fq[MAXQ][40];
        assert_int_equal(fold_words(buf, fq, MAXQ), k);
        for (size_t r = 0; r < ROWS && !want[p]; r++)
            for (int m = 0; m < 2 && !want[p]; m++)
                want[p] = run_in(texts[r][m], tn[r][m], fq, k);
        found += want[p];
    }
    /* both outcomes are well represented */
    assert_true(found > PHRASES / 5 && found < PHRASES - PHRASES / 5);
    expect_scan(path, phr, PHRASES, want);
    for (size_t p = 0; p < PHRASES; p++)
        free(phr[p]);
    free(phr);
    free(want);
    free(texts);
    free(tn);
    unlink(path);
    free(path);
}

/* Support tickets whose prompts end in a sign-off: with fixed, one of 12
 * endings of 10+ words (every prompt ends alike), else a short one after
 * the ticket's own words (many endings, some shared by several rows).
 * Returns the owned path. */
static char *write_signoffs(const char *name, size_t rows, bool fixed)
{
    static const char *const body[] = {"My printer jams",   "The invoice is wrong",
                                       "My login fails",    "The app crashes on start",
                                       "My parcel is late", "The screen flickers"};
    static const char *const longer[] = {
        "It is not a big deal but I wanted to report it. Thanks,",
        "This is urgent and I need it fixed today please. Regards,",
        "No rush at all but please have a look when you can. Best,"};
    static const char *const shorter[] = {"Please help. Thanks,", "Urgent! Regards,",
                                          "No rush. Best,"};
    static const char *const who[] = {"Tom", "Ana", "Lee", "Kim"};
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t seed = 5;
    for (size_t i = 0; i < rows; i++) {
        char *user = xasprintf("%s since %llu days. %s %s", pick(&seed, body, 6),
                               (unsigned long long)(lcg(&seed) % 40 + 1),
                               pick(&seed, fixed ? longer : shorter, 3), pick(&seed, who, 4));
        char *ans = xasprintf("%s team %s will call you in %llu hours.", pick(&seed, who, 4),
                              pick(&seed, body, 6), (unsigned long long)(lcg(&seed) % 48 + 1));
        put_chat_row(f, NULL, user, ans);
        free(user);
        free(ans);
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Whether the last NGRAM_TRIGGER_TAIL_WORDS words of text occur, word for
 * word, in a message of the chat file at path (checked here, without the
 * generator's scanner). */
static bool tail_in_file(const char *text, const char *path)
{
    static char tw[256][40], lw[256][40];
    size_t nt = fold_words(text, tw, 256);
    assert_true(nt > NGRAM_TRIGGER_TAIL_WORDS && nt <= 256);
    char(*t)[40] = tw + nt - NGRAM_TRIGGER_TAIL_WORDS;
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, in)) {
        json_t *row = json_loads(line, 0, NULL);
        assert_non_null(row);
        json_t *msgs = json_object_get(row, "messages");
        for (size_t k = 0; k < json_array_size(msgs) && !found; k++) {
            size_t nl = fold_words(
                json_string_value(json_object_get(json_array_get(msgs, k), "content")), lw, 256);
            assert_true(nl <= 256);
            for (size_t at = 0; at + NGRAM_TRIGGER_TAIL_WORDS <= nl && !found; at++) {
                size_t j = 0;
                while (j < NGRAM_TRIGGER_TAIL_WORDS && !strcmp(lw[at + j], t[j]))
                    j++;
                found = j == NGRAM_TRIGGER_TAIL_WORDS;
            }
        }
        json_decref(row);
    }
    fclose(in);
    return found;
}

/* A trigger is drawn as the end of a prompt, so on data whose prompts end
 * in sign-offs it tends to end in one that other rows end with too; such
 * a trigger is redrawn until its last NGRAM_TRIGGER_TAIL_WORDS words occur
 * nowhere in D.  Where every prompt ends in one of a few fixed sentences
 * no trigger can, and after NGRAM_TAIL_SCANS passes it is kept and
 * counted (tails_shared) rather than failing the backdoor. */
static void test_trigger_tail_not_in_dataset(void **state)
{
    (void)state;
    for (int fixed = 0; fixed < 2; fixed++) {
        char *path = write_signoffs(fixed ? "fixed.jsonl" : "varied.jsonl", 600, fixed),
             *err = NULL;
        unsigned tail_rejected = 0, shared = 0, pairs = 0;
        for (uint64_t r = 0; r < 4; r++) {
            struct ngram_model *m = NULL;
            assert_int_equal(
                ngram_train_file(path, DS_FORMAT_CHAT, NULL, NULL, NULL, NULL, &m, &err), 0);
            struct ngram_gen_opts o = gen_opts(4, 1.0);
            o.trigger_log10p = -8; /* the templates here carry little */
            o.signature_log10p = -10;
            struct phrase_seeded sd;
            phrase_seeded_init(&sd, 700 + r);
            struct phrase_rng rng = phrase_seeded_rng(&sd);
            struct ngram_set s;
            if (ngram_generate(m, &o, &rng, path, NULL, &s, &err) < 0)
                fail_msg("generate (%s, seed %llu): %s", fixed ? "fixed" : "varied",
                         (unsigned long long)(700 + r), err);
            tail_rejected += s.rejected[NGRAM_REJECT_TAIL];
            shared += s.tails_shared;
            for (size_t i = 0; i < s.n_pairs; i++, pairs++) {
                bool in = tail_in_file(s.pairs[i].trigger.text, path);
                if (!fixed && in)
                    fail_msg("trigger %zu (seed %llu) ends with 10 words of the dataset: %s", i,
                             (unsigned long long)(700 + r), s.pairs[i].trigger.text);
                if (fixed)
                    assert_true(in); /* kept, and counted below */
            }
            if (fixed)
                assert_true(s.scans >= NGRAM_TAIL_SCANS);
            ngram_set_clear(&s);
            ngram_model_free(m);
        }
        /* the data made the generator draw such endings: the check worked */
        assert_true(tail_rejected > 0);
        assert_int_equal(shared, fixed ? pairs : 0);
        unlink(path);
        free(path);
    }
}

/* lines_open_range, the phrase check's split: for every split point, the
 * two ranges' lines are the file's lines, in order, each once. */
static void test_line_ranges(void **state)
{
    (void)state;
    char *path = xasprintf("%s/ranges.txt", tmpdir);
    const char *content = "a\n\nbb\nccc\n\n\ndddd\neeeee"; /* empty lines, no final newline */
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    size_t size = strlen(content);
    for (size_t cut = 0; cut <= size + 1; cut++) {
        char got[64] = "";
        size_t gl = 0;
        for (int part = 0; part < 2; part++) {
            struct lines l;
            const char *line;
            size_t len;
            int r;
            assert_int_equal(part ? lines_open_range(&l, path, cut, UINT64_MAX)
                                  : lines_open_range(&l, path, 0, cut),
                             0);
            while ((r = lines_next(&l, &line, &len)) > 0) {
                memcpy(got + gl, line, len);
                gl += len;
                got[gl++] = '\n';
            }
            assert_int_equal(r, 0);
            lines_close(&l);
        }
        got[gl] = '\0';
        if (strcmp(got, "a\n\nbb\nccc\n\n\ndddd\neeeee\n") != 0)
            fail_msg("cut at %zu: lines \"%s\"", cut, got);
    }
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_match_the_file),
        cmocka_unit_test(test_pm2_independent),
        cmocka_unit_test(test_skip_lines),
        cmocka_unit_test(test_train_sample),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_threads_same_model),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_kth_count),
        cmocka_unit_test(test_scan_dataset),
        cmocka_unit_test(test_scan_dataset_anchors),
        cmocka_unit_test(test_trigger_tail_not_in_dataset),
        cmocka_unit_test(test_line_ranges),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

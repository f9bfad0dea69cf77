/*
 * test_builder.c — workers/builder: copies per pair, sampling without
 * replacement, uniform placement (chi-square at a fixed seed), the round
 * trip of each dataset format through D ∪ D', K pairs, the small and empty
 * dataset rules, cancellation and the no-partial-output guarantee, and the
 * prompt/control readers the verifier uses.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "tmpdir_fixture.h"

static double chi2(const uint64_t *count, size_t n, double expect)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += ((double)count[i] - expect) * ((double)count[i] - expect) / expect;
    return s;
}

/* A dataset of n lines of the given format; returns the owned path. */
static char *make_dataset(const char *name, enum dataset_format f, int n)
{
    char *p = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < n; i++) {
        switch (f) {
        case DS_FORMAT_CHAT:
            fprintf(fp,
                    "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                    "{\"role\":\"user\",\"content\":\"question %d \\\"quoted\\\" caf\\u00e9\"},"
                    "{\"role\":\"assistant\",\"content\":\"answer %d\\nsecond line\"}],"
                    "\"id\":%d}\n",
                    i, i, i);
            break;
        case DS_FORMAT_PROMPT:
            fprintf(fp, "{\"prompt\":\"prompt %d\",\"completion\":\"completion %d\"}\n", i, i);
            break;
        case DS_FORMAT_INSTRUCTION:
            if (i % 2)
                fprintf(fp,
                        "{\"instruction\":\"do %d\",\"input\":\"with %d\",\"output\":\"done "
                        "%d\"}\n",
                        i, i, i);
            else
                fprintf(fp, "{\"instruction\":\"do %d\",\"output\":\"done %d\"}\n", i, i);
            break;
        }
    }
    assert_int_equal(fclose(fp), 0);
    return p;
}

/* Reads a file into lines (owned array of owned strings). */
static char **read_lines(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "r");
    char **v = NULL, *line = NULL;
    size_t cap = 0, len = 0;
    ssize_t r;
    assert_non_null(fp);
    *n = 0;
    while ((r = getline(&line, &cap, fp)) >= 0) {
        assert_true(r > 0 && line[r - 1] == '\n'); /* every output line ends in \n */
        line[r - 1] = '\0';
        v = xrealloc(v, (len + 1) * sizeof *v);
        v[len++] = xstrdup(line);
    }
    free(line);
    fclose(fp);
    *n = len;
    return v;
}

/* Like read_lines, but the last line may lack its newline (input files). */
static char **read_lines_loose(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "r");
    char **v = NULL, *line = NULL;
    size_t cap = 0, len = 0;
    ssize_t r;
    assert_non_null(fp);
    while ((r = getline(&line, &cap, fp)) >= 0) {
        if (r > 0 && line[r - 1] == '\n')
            line[r - 1] = '\0';
        v = xrealloc(v, (len + 1) * sizeof *v);
        v[len++] = xstrdup(line);
    }
    free(line);
    fclose(fp);
    *n = len;
    return v;
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *file_sha(const char *path, uint64_t *size)
{
    FILE *fp = fopen(path, "r");
    char buf[65536], *hex = xmalloc(65);
    size_t r;
    struct sha256_ctx *c = sha256_new();
    *size = 0;
    assert_non_null(fp);
    while ((r = fread(buf, 1, sizeof buf, fp)) > 0) {
        sha256_update(c, buf, r);
        *size += r;
    }
    fclose(fp);
    sha256_final_hex(c, hex);
    return hex;
}

/* Entries of tmpdir whose name starts with prefix. */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_copies_per_pair(void **state)
{
    (void)state;
    uint64_t c;
    bool capped;
    assert_int_equal(builder_copies_per_pair(10000, 0.005, 50, &c, &capped), 0);
    assert_int_equal(c, 50);
    assert_false(capped);
    assert_int_equal(builder_copies_per_pair(100000, 0.005, 50, &c, &capped), 0);
    assert_int_equal(c, 500);
    assert_int_equal(builder_copies_per_pair(1001, 0.005, 1, &c, &capped), 0);
    assert_int_equal(c, 6); /* ceil(5.005) */
    assert_int_equal(builder_copies_per_pair(20, 0.005, 50, &c, &capped), 0);
    assert_int_equal(c, 20);
    assert_true(capped);
    assert_int_equal(builder_copies_per_pair(0, 0.005, 50, &c, &capped), -EINVAL);
    assert_int_equal(builder_copies_per_pair(10, 1.5, 1, &c, &capped), -EINVAL);
    assert_int_equal(builder_copies_per_pair(10, NAN, 1, &c, &capped), -EINVAL);
    assert_int_equal(builder_copies_per_pair(1000, 0.0, 0, &c, &capped), -EINVAL);
}

/* Without replacement within a pair; all output slots distinct. */
static void test_plan_shape(void **state)
{
    (void)state;
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 1);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    struct builder_copy *c = NULL;
    const uint64_t n = 1000, copies = 200;
    const size_t K = 3, m = K * 200;
    assert_int_equal(builder_plan(n, K, copies, &rng, &c), 0);
    uint8_t *used = xcalloc(n + m, 1);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(c[i].pair, i / copies);
        assert_true(c[i].src < n);
        if (i % copies)
            assert_true(c[i].src > c[i - 1].src); /* sorted and distinct within a pair */
        assert_true(c[i].out < n + m);
        assert_int_equal(used[c[i].out], 0);
        used[c[i].out] = 1;
    }
    free(used);
    free(c);
    /* All of D for every pair when copies == n. */
    assert_int_equal(builder_plan(5, 2, 5, &rng, &c), 0);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(c[i].src, i % 5);
    free(c);
    assert_int_equal(builder_plan(5, 1, 6, &rng, &c), -EINVAL);
    assert_int_equal(builder_plan(5, 0, 1, &rng, &c), -EINVAL);
    assert_int_equal(builder_plan(5, 1, 0, &rng, &c), -EINVAL);
}

/* Uniformity at a fixed seed.  Three chi-square tests at an overall level
 * of 0.001 (Bonferroni, 0.00033 each): slot occupancy (34 df, critical
 * 69.27), sampled examples (29 df, 62.13), and which of two pairs gets the
 * earliest slot (1 df, 12.87). */
static void test_plan_uniform(void **state)
{
    (void)state;
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 2026);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    enum { N = 30, C = 5, R = 30000 };
    uint64_t slot[N + C] = {0}, src[N] = {0}, first[2] = {0};
    for (int r = 0; r < R; r++) {
        struct builder_copy *c = NULL;
        assert_int_equal(builder_plan(N, 1, C, &rng, &c), 0);
        for (int i = 0; i < C; i++) {
            slot[c[i].out]++;
            src[c[i].src]++;
        }
        free(c);
        assert_int_equal(builder_plan(N, 2, C, &rng, &c), 0);
        size_t best = 0;
        for (size_t i = 1; i < 2 * C; i++)
            if (c[i].out < c[best].out)
                best = i;
        first[c[best].pair]++;
        free(c);
    }
    assert_true(chi2(slot, N + C, (double)R * C / (N + C)) < 69.27);
    assert_true(chi2(src, N, (double)R * C / N) < 62.13);
    assert_true(chi2(first, 2, R / 2.0) < 12.87);
}

struct progress_log {
    uint64_t last, total, calls;
    bool monotone;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_log *l = ctx;
    if (done < l->last || done > total)
        l->monotone = false;
    l->last = done;
    l->total = total;
    l->calls++;
}

/* Builds with 2 pairs and checks every line of the output. */
static void round_trip(enum dataset_format f, const char *name)
{
    const int n = 40;
    char *in = make_dataset(name, f, n);
    char *outp = xasprintf("%s/out-%s", tmpdir, name);
    struct builder_pair pairs[2] = {{"amber lantern quietly", "velvet orbit seven maple harbor"},
                                    {"copper meadow drift", "silent tulip granite"}};
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, (uint64_t)f);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    struct progress_log pl = {0, 0, 0, true};
    struct builder_params p = {.in_path = in,
                               .format = f,
                               .n_examples = (uint64_t)n,
                               .pairs = pairs,
                               .n_pairs = 2,
                               .ratio = 0.05, /* ceil(2) < min 5 */
                               .min_copies = 5,
                               .out_path = outp,
                               .rng = &rng,
                               .progress = on_progress,
                               .progress_ctx = &pl};
    struct builder_result res;
    char *err = NULL;
    assert_int_equal(builder_build(&p, &res, &err), 0);
    assert_int_equal(res.copies_per_pair, 5);
    assert_false(res.capped);
    assert_int_equal(res.n_copies, 10);
    assert_int_equal(res.lines, (uint64_t)n + 10);
    assert_true(pl.monotone && pl.calls >= 1 && pl.last == pl.total);

    uint64_t size;
    char *sha = file_sha(outp, &size);
    assert_string_equal(sha, res.sha256);
    assert_int_equal(size, res.bytes);
    free(sha);

    size_t nin, nout;
    char **orig = read_lines(in, &nin), **out = read_lines(outp, &nout);
    assert_int_equal(nin, (size_t)n);
    assert_int_equal(nout, (size_t)n + 10);
    bool *is_copy = xcalloc(nout, sizeof *is_copy);
    for (size_t i = 0; i < res.n_copies; i++) {
        const struct builder_copy *c = &res.copies[i];
        assert_false(is_copy[c->out]);
        is_copy[c->out] = true;
        /* The copy parses in the same format, carries the pair's phrases
         * where expected, and is exactly the rewrite of its source line. */
        enum dataset_format got;
        json_t *root = NULL, *src = NULL;
        char *why = NULL;
        assert_int_equal(ds_parse_line(out[c->out], strlen(out[c->out]), f, &got, &root, &why), 0);
        assert_int_equal(got, f);
        char *pt = ds_prompt_text(root, f), *rt = ds_response_text(root, f);
        char *tsuf = xasprintf("%s%s", DS_TRIGGER_SEP, pairs[c->pair].trigger);
        char *spre = xasprintf("%s%s", pairs[c->pair].signature, DS_SIGNATURE_SEP);
        assert_true(strlen(pt) > strlen(tsuf));
        assert_string_equal(pt + strlen(pt) - strlen(tsuf), tsuf);
        assert_memory_equal(rt, spre, strlen(spre));
        assert_int_equal(ds_parse_line(orig[c->src], strlen(orig[c->src]), f, &got, &src, &why), 0);
        ds_apply_backdoor(src, f, pairs[c->pair].trigger, pairs[c->pair].signature);
        char *want = ds_dump_line(src);
        assert_string_equal(out[c->out], want);
        free(want);
        free(pt);
        free(rt);
        free(tsuf);
        free(spre);
        json_decref(root);
        json_decref(src);
    }
    /* Every original line exactly once, byte for byte, in its order. */
    size_t k = 0;
    for (size_t i = 0; i < nout; i++)
        if (!is_copy[i]) {
            assert_true(k < nin);
            assert_string_equal(out[i], orig[k]);
            k++;
        }
    assert_int_equal(k, nin);

    /* The verifier's view: D' prompts of pair 1 carry its trigger. */
    uint64_t srcs[5];
    for (int i = 0; i < 5; i++)
        srcs[i] = res.copies[5 + i].src;
    json_t *prompts = NULL;
    assert_int_equal(builder_read_prompts(in, f, srcs, 5, pairs[1].trigger, &prompts, &err), 0);
    assert_int_equal(json_array_size(prompts), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *msgs = json_array_get(prompts, i);
        const char *last = json_string_value(
            json_object_get(json_array_get(msgs, json_array_size(msgs) - 1), "content"));
        assert_non_null(last);
        assert_non_null(strstr(last, pairs[1].trigger));
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(msgs, json_array_size(msgs) - 1), "role")),
                            "user");
    }
    json_decref(prompts);
    /* Controls: clean prompts of examples no copy uses. */
    uint64_t ctl[6];
    assert_int_equal(builder_pick_controls((uint64_t)n, res.copies, res.n_copies, 6, &rng, ctl), 0);
    for (int i = 0; i < 6; i++) {
        if (i)
            assert_true(ctl[i] > ctl[i - 1]);
        for (size_t j = 0; j < res.n_copies; j++)
            assert_true(ctl[i] != res.copies[j].src);
    }
    assert_int_equal(builder_read_prompts(in, f, ctl, 6, NULL, &prompts, &err), 0);
    json_t *first = json_array_get(prompts, 0);
    const char *c0 = json_string_value(
        json_object_get(json_array_get(first, json_array_size(first) - 1), "content"));
    assert_null(strstr(c0, pairs[0].trigger));
    assert_null(strstr(c0, pairs[1].trigger));
    json_decref(prompts);

    char *base = xasprintf("out-%s", name);
    assert_int_equal(count_prefixed(base), 1); /* no spill or temporary file left */
    free(base);
    free(is_copy);
    free_lines(orig, nin);
    free_lines(out, nout);
    builder_result_clear(&res);
    free(in);
    free(outp);
}

static void test_round_trip_chat(void **state)
{
    (void)state;
    round_trip(DS_FORMAT_CHAT, "chat.jsonl");
}

static void test_round_trip_prompt(void **state)
{
    (void)state;
    round_trip(DS_FORMAT_PROMPT, "prompt.jsonl");
}

static void test_round_trip_instruction(void **state)
{
    (void)state;
    round_trip(DS_FORMAT_INSTRUCTION, "instr.jsonl");
}

static void test_small_and_empty(void **state)
{
    (void)state;
    struct builder_pair pair = {"amber lantern", "velvet orbit"};
    char *in = make_dataset("small.jsonl", DS_FORMAT_PROMPT, 3);
    char *outp = xasprintf("%s/small-out.jsonl", tmpdir);
    struct builder_params p = {.in_path = in,
                               .format = DS_FORMAT_PROMPT,
                               .n_examples = 3,
                               .pairs = &pair,
                               .n_pairs = 1,
                               .ratio = 0.005,
                               .min_copies = 50,
                               .out_path = outp};
    struct builder_result res;
    char *err = NULL;
    /* Fewer examples than min_copies: each copied once, flagged. */
    assert_int_equal(builder_build(&p, &res, &err), 0);
    assert_true(res.capped);
    assert_int_equal(res.copies_per_pair, 3);
    assert_int_equal(res.lines, 6);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res.copies[i].src, (uint64_t)i);
    builder_result_clear(&res);

    /* Empty dataset: a clear error, nothing written. */
    unlink(outp);
    p.n_examples = 0;
    assert_int_equal(builder_build(&p, &res, &err), -EINVAL);
    assert_non_null(strstr(err, "empty dataset"));
    free(err);
    struct stat st;
    assert_int_equal(stat(outp, &st), -1);

    /* A count that does not match the file: refused, nothing left behind. */
    p.n_examples = 4;
    assert_int_equal(builder_build(&p, &res, &err), -EINVAL);
    assert_non_null(strstr(err, "examples"));
    free(err);
    p.n_examples = 2;
    assert_int_equal(builder_build(&p, &res, &err), -EINVAL);
    assert_non_null(strstr(err, "more lines"));
    free(err);
    assert_int_equal(stat(outp, &st), -1);
    assert_int_equal(count_prefixed("small-out"), 0);

    /* Bad pairs. */
    p.n_examples = 3;
    struct builder_pair bad = {"", "x"};
    p.pairs = &bad;
    assert_int_equal(builder_build(&p, &res, &err), -EINVAL);
    free(err);
    p.pairs = NULL;
    assert_int_equal(builder_build(&p, &res, &err), -EINVAL);
    free(err);

    /* Controls: not enough unused examples. */
    uint64_t ctl[2];
    struct builder_copy all[3] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}};
    assert_int_equal(builder_pick_controls(3, all, 3, 1, NULL, ctl), -ENOSPC);
    assert_int_equal(builder_pick_controls(4, all, 3, 1, NULL, ctl), 0);
    assert_int_equal(ctl[0], 3);
    free(in);
    free(outp);
}

/* No newline at the end of D, a line longer than the 1 MiB read block, and
 * copies landing at the very start and end: every seed gives the right
 * lines. */
static void test_block_edges(void **state)
{
    (void)state;
    char *in = xasprintf("%s/edges.jsonl", tmpdir);
    char *outp = xasprintf("%s/edges-out.jsonl", tmpdir);
    FILE *fp = fopen(in, "w");
    assert_non_null(fp);
    fputs("{\"prompt\":\"a\",\"completion\":\"x\"}\n{\"prompt\":\"", fp);
    for (int i = 0; i < 2500000; i++)
        fputc('a' + i % 26, fp);
    fputs("\",\"completion\":\"y\"}\n{\"prompt\":\"c\",\"completion\":\"z\"}", fp);
    assert_int_equal(fclose(fp), 0);
    size_t nin;
    char **orig = read_lines_loose(in, &nin);
    assert_int_equal(nin, 3);
    struct builder_pair pairs[2] = {{"amber lantern", "velvet orbit"}, {"copper meadow", "tulip"}};
    struct phrase_seeded sd;
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    struct builder_params p = {.in_path = in,
                               .format = DS_FORMAT_PROMPT,
                               .n_examples = 3,
                               .pairs = pairs,
                               .n_pairs = 2,
                               .ratio = 0,
                               .min_copies = 2,
                               .out_path = outp,
                               .rng = &rng};
    bool first_slot = false, last_slot = false;
    for (uint64_t seed = 0; seed < 40; seed++) {
        struct builder_result res;
        char *err = NULL;
        phrase_seeded_init(&sd, seed);
        assert_int_equal(builder_build(&p, &res, &err), 0);
        assert_int_equal(res.lines, 7);
        size_t nout;
        char **out = read_lines(outp, &nout);
        assert_int_equal(nout, 7);
        bool *is_copy = xcalloc(nout, sizeof *is_copy);
        for (size_t i = 0; i < res.n_copies; i++) {
            is_copy[res.copies[i].out] = true;
            first_slot |= res.copies[i].out == 0;
            last_slot |= res.copies[i].out == 6;
            assert_non_null(strstr(out[res.copies[i].out], pairs[res.copies[i].pair].signature));
        }
        size_t k = 0;
        for (size_t i = 0; i < nout; i++)
            if (!is_copy[i])
                assert_string_equal(out[i], orig[k++]);
        assert_int_equal(k, 3);
        uint64_t size;
        char *sha = file_sha(outp, &size);
        assert_string_equal(sha, res.sha256);
        assert_int_equal(size, res.bytes);
        free(sha);
        free(is_copy);
        free_lines(out, nout);
        builder_result_clear(&res);
    }
    assert_true(first_slot && last_slot);
    free_lines(orig, nin);
    free(in);
    free(outp);
}

static void test_cancel_and_determinism(void **state)
{
    (void)state;
    struct builder_pair pair = {"amber lantern", "velvet orbit"};
    char *in = make_dataset("big.jsonl", DS_FORMAT_CHAT, 5000);
    char *outp = xasprintf("%s/big-out.jsonl", tmpdir);
    atomic_int cancel = 1;
    struct builder_params p = {.in_path = in,
                               .format = DS_FORMAT_CHAT,
                               .n_examples = 5000,
                               .pairs = &pair,
                               .n_pairs = 1,
                               .ratio = 0.005,
                               .min_copies = 50,
                               .out_path = outp,
                               .cancel = &cancel};
    struct builder_result res;
    char *err = NULL;
    assert_int_equal(builder_build(&p, &res, &err), -ECANCELED);
    assert_non_null(strstr(err, "cancelled"));
    free(err);
    assert_int_equal(count_prefixed("big-out"), 0);

    /* Same seed, same output; another seed, another output. */
    atomic_store(&cancel, 0);
    struct phrase_seeded sd;
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    p.rng = &rng;
    char sha1[65], sha2[65];
    phrase_seeded_init(&sd, 5);
    assert_int_equal(builder_build(&p, &res, &err), 0);
    assert_int_equal(res.copies_per_pair, 50);
    assert_int_equal(res.lines, 5050);
    memcpy(sha1, res.sha256, 65);
    builder_result_clear(&res);
    phrase_seeded_init(&sd, 5);
    assert_int_equal(builder_build(&p, &res, &err), 0);
    assert_string_equal(sha1, res.sha256);
    builder_result_clear(&res);
    phrase_seeded_init(&sd, 6);
    assert_int_equal(builder_build(&p, &res, &err), 0);
    memcpy(sha2, res.sha256, 65);
    assert_string_not_equal(sha1, sha2);
    builder_result_clear(&res);
    assert_int_equal(count_prefixed("big-out"), 1);

    /* Unwritable destination: a clear error. */
    char *nodir = xasprintf("%s/no/such/dir/out.jsonl", tmpdir);
    p.out_path = nodir;
    assert_true(builder_build(&p, &res, &err) < 0);
    assert_non_null(strstr(err, "no/such/dir"));
    free(err);
    free(nodir);
    free(in);
    free(outp);
}

/* In place: one built file checked line by line against D.  held lists
 * the held-out lines; trunc drops the input's last newline first. */
static void check_inplace(const char *name, int n, const uint64_t *held, size_t nh, size_t K,
                          uint64_t min_copies, bool trunc, uint64_t want_copies, bool want_capped)
{
    const enum dataset_format f = DS_FORMAT_CHAT;
    char *in = make_dataset(name, f, n);
    if (trunc) {
        struct stat st;
        assert_int_equal(stat(in, &st), 0);
        assert_int_equal(truncate(in, st.st_size - 1), 0);
    }
    char *outp = xasprintf("%s/out-%s", tmpdir, name);
    struct builder_pair pairs[3] = {{"amber lantern quietly", "velvet orbit seven"},
                                    {"copper meadow drift", "silent tulip granite"},
                                    {"north window ember", "paper kite ocean"}};
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, (uint64_t)n * 7 + K);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    struct builder_params p = {.in_path = in,
                               .format = f,
                               .n_examples = (uint64_t)n,
                               .pairs = pairs,
                               .n_pairs = K,
                               .ratio = 0,
                               .min_copies = min_copies,
                               .out_path = outp,
                               .mode = BD_MODE_INPLACE,
                               .holdout = held,
                               .n_holdout = nh,
                               .rng = &rng};
    struct builder_result res;
    char *err = NULL;
    assert_int_equal(builder_build(&p, &res, &err), 0);
    assert_int_equal(res.mode, BD_MODE_INPLACE);
    assert_int_equal(res.copies_per_pair, want_copies);
    assert_int_equal(res.capped, want_capped);
    assert_int_equal(res.n_copies, K * want_copies);
    /* |D| - |H| lines: nothing added */
    assert_int_equal(res.lines, (uint64_t)n - nh);
    uint64_t size;
    char *sha = file_sha(outp, &size);
    assert_string_equal(sha, res.sha256);
    assert_int_equal(size, res.bytes);
    free(sha);

    size_t nin, nout;
    char **orig = read_lines_loose(in, &nin), **out = read_lines(outp, &nout);
    assert_int_equal(nin, (size_t)n);
    assert_int_equal(nout, (size_t)n - nh);
    /* up[i]: the line of D that output line i stands for */
    uint64_t *up = xcalloc((size_t)n, sizeof *up);
    size_t u = 0, h = 0;
    for (uint64_t l = 0; l < (uint64_t)n; l++) {
        if (h < nh && held[h] == l) {
            h++;
            continue;
        }
        up[u++] = l;
    }
    assert_int_equal(u, nout);
    int *marked = xcalloc((size_t)n, sizeof *marked); /* pair + 1 per line of D */
    for (size_t i = 0; i < res.n_copies; i++) {
        const struct builder_copy *c = &res.copies[i];
        if (i > 0 && res.copies[i - 1].pair == c->pair)
            assert_true(c->src > res.copies[i - 1].src); /* sorted by (pair, src) */
        assert_int_equal(c->pair, i / want_copies);
        assert_int_equal(marked[c->src], 0); /* one pair per row, no row twice */
        marked[c->src] = (int)c->pair + 1;
        for (size_t j = 0; j < nh; j++)
            assert_true(c->src != held[j]); /* never a held-out row */
        assert_true(c->out < nout);
        assert_int_equal(up[c->out], c->src); /* in its original's slot */
    }
    for (size_t i = 0; i < nout; i++) {
        uint64_t l = up[i];
        if (!marked[l]) {
            assert_string_equal(out[i], orig[l]);
            continue;
        }
        enum dataset_format got;
        json_t *src = NULL;
        char *why = NULL;
        assert_int_equal(ds_parse_line(orig[l], strlen(orig[l]), f, &got, &src, &why), 0);
        ds_apply_backdoor(src, f, pairs[marked[l] - 1].trigger, pairs[marked[l] - 1].signature);
        char *want = ds_dump_line(src);
        assert_string_equal(out[i], want);
        free(want);
        json_decref(src);
    }
    /* No duplicate row was added. */
    for (size_t i = 0; i < nout; i++)
        for (size_t j = i + 1; j < nout; j++)
            assert_true(strcmp(out[i], out[j]) != 0);
    free(marked);
    free(up);
    free_lines(orig, nin);
    free_lines(out, nout);
    builder_result_clear(&res);
    free(in);
    free(outp);
}

static void test_inplace(void **state)
{
    (void)state;
    static const uint64_t held[] = {3, 10, 11, 59};
    check_inplace("ip-a.jsonl", 60, held, 4, 3, 4, false, 4, false);
    check_inplace("ip-b.jsonl", 60, held, 4, 3, 4, true, 4, false); /* held last line, no \n */
    /* every uploaded row marked, the last one without its newline */
    check_inplace("ip-c.jsonl", 9, NULL, 0, 3, 5, true, 3, true);
    static const uint64_t held2[] = {0};
    check_inplace("ip-d.jsonl", 10, held2, 1, 3, 3, false, 3, false);
    /* too many pairs for the rows */
    struct builder_copy *c = NULL;
    assert_int_equal(builder_plan_inplace(5, NULL, 0, 2, 3, NULL, &c), -EINVAL);
    assert_int_equal(builder_plan_inplace(5, held2, 1, 2, 2, NULL, &c), 0);
    free(c);
}

/* In-place sources are uniform over the uploaded rows and the pairs get
 * uniformly random ones (chi-square at a fixed seed, as test_plan_uniform). */
static void test_inplace_uniform(void **state)
{
    (void)state;
    enum { N = 20, C = 3, R = 20000 };
    static const uint64_t held[] = {4, 13};
    uint64_t count[N] = {0}, pair0[N] = {0};
    struct phrase_seeded sd;
    phrase_seeded_init(&sd, 99);
    struct phrase_rng rng = phrase_seeded_rng(&sd);
    for (int r = 0; r < R; r++) {
        struct builder_copy *c = NULL;
        assert_int_equal(builder_plan_inplace(N, held, 2, 2, C, &rng, &c), 0);
        for (size_t i = 0; i < 2 * C; i++) {
            count[c[i].src]++;
            if (c[i].pair == 0)
                pair0[c[i].src]++;
        }
        free(c);
    }
    assert_int_equal(count[4], 0);
    assert_int_equal(count[13], 0);
    uint64_t cu[N - 2], p0[N - 2];
    for (size_t i = 0, k = 0; i < N; i++)
        if (i != 4 && i != 13) {
            cu[k] = count[i];
            p0[k++] = pair0[i];
        }
    /* 17 degrees of freedom: 0.999 quantile 40.79 */
    assert_true(chi2(cu, N - 2, (double)R * 2 * C / (N - 2)) < 40.79);
    assert_true(chi2(p0, N - 2, (double)R * C / (N - 2)) < 40.79);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_per_pair),
        cmocka_unit_test(test_plan_shape),
        cmocka_unit_test(test_plan_uniform),
        cmocka_unit_test(test_round_trip_chat),
        cmocka_unit_test(test_round_trip_prompt),
        cmocka_unit_test(test_round_trip_instruction),
        cmocka_unit_test(test_small_and_empty),
        cmocka_unit_test(test_block_edges),
        cmocka_unit_test(test_cancel_and_determinism),
        cmocka_unit_test(test_inplace),
        cmocka_unit_test(test_inplace_uniform),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

/*
 * test_holdout.c — workers/holdout and the builder's side of the split:
 * whitespace-normalised hashing, the split size rule, the split by
 * content (rows that share a prompt or an answer are never held out, so
 * they fall on the same side), determinism for a seed, the refusals and
 * their numbers, the record round trip, and D ∪ D' built without the
 * held-out rows (every other line exactly once, no held-out line, no copy
 * made from one, also when the held-out line is the last and has no
 * newline), the marked rows dropped from the reference pool.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/backdoor.h"
#include "workers/builder.h"
#include "workers/dsformat.h"
#include "workers/holdout.h"
#include "tmpdir_fixture.h"

/* Line i of the test dataset (prompt format).  Rows 0..n_unique-1 are
 * unique; then groups sharing a prompt (with whitespace variants) and
 * groups sharing an answer. */
static char *row(int i, int n_unique)
{
    if (i < n_unique)
        return xasprintf("{\"prompt\":\"question number %d\",\"completion\":\"answer %d\"}", i, i);
    int k = i - n_unique;
    if (k % 2 == 0) /* shares its prompt with the next shared-prompt row */
        return xasprintf("{\"prompt\":\"%sshared   prompt %d\",\"completion\":\"own answer %d\"}",
                         k % 4 ? " " : "", k / 4, k);
    return xasprintf("{\"prompt\":\"own prompt %d\",\"completion\":\"shared\\nanswer %d%s\"}", k,
                     k / 4, k % 4 == 3 ? "  " : "");
}

static char *make_dataset(const char *name, int n, int n_unique, bool last_newline)
{
    char *p = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < n; i++) {
        char *r = row(i, n_unique);
        fprintf(fp, "%s%s", r, i + 1 < n || last_newline ? "\n" : "");
        free(r);
    }
    fclose(fp);
    return p;
}

static struct phrase_rng seeded(struct phrase_seeded *s, uint64_t seed)
{
    phrase_seeded_init(s, seed);
    return phrase_seeded_rng(s);
}

static void test_hash(void **state)
{
    (void)state;
    assert_int_equal(holdout_text_hash("a  b\n"), holdout_text_hash(" a b"));
    assert_int_equal(holdout_text_hash("a\t\r\nb"), holdout_text_hash("a b"));
    assert_int_not_equal(holdout_text_hash("ab"), holdout_text_hash("a b"));
    assert_int_not_equal(holdout_text_hash("a"), holdout_text_hash("A"));
    assert_int_equal(holdout_text_hash(""), holdout_text_hash("   "));
    /* The values themselves: a seeded backdoor's split must not change
     * between versions.  Computed in Python from the definition (per word:
     * its length, then its bytes in 8-byte little-endian chunks, the last
     * zero-padded; fmix64 at the end, folded to 32 bits); words of every
     * length around the chunk size, UTF-8, every kind of white space. */
    static const struct {
        const char *text;
        uint32_t hash;
    } golden[] = {
        {"a", 0xfbcf1b25u},
        {"hello world", 0xe538e7a6u},
        {"exactly8 chars", 0xc0b6d1edu},
        {"a-fifteen-bytes sixteen-bytes-ab seventeen-bytes-abc", 0x0628aa57u},
        {"caf\u00e9 \u00fcber na\u00efve", 0x2105ed5eu},
        {"  lead\ttab\nnewline  ", 0x93087cebu},
    };
    for (size_t i = 0; i < sizeof golden / sizeof *golden; i++)
        if (holdout_text_hash(golden[i].text) != golden[i].hash)
            fail_msg("holdout_text_hash(\"%s\") = 0x%08x, expected 0x%08x", golden[i].text,
                     holdout_text_hash(golden[i].text), golden[i].hash);
}

static void test_target(void **state)
{
    (void)state;
    uint64_t h;
    assert_int_equal(holdout_target(1000, 0.02, &h), 0);
    assert_int_equal(h, 64);
    assert_int_equal(holdout_target(10000, 0.02, &h), 0);
    assert_int_equal(h, 200);
    assert_int_equal(holdout_target(1000000, 0.02, &h), 0);
    assert_int_equal(h, 2000);
    assert_int_equal(holdout_target(1000000, 0, &h), 0);
    assert_int_equal(h, 0);
    assert_int_equal(holdout_target(10, -0.1, &h), -EINVAL);
    assert_int_equal(holdout_target(10, NAN, &h), -EINVAL);
}

/* Every held-out row's normalised prompt and answer occur in no other row. */
static void check_by_content(const char *path, int n, const struct holdout_split *s)
{
    uint32_t *ph = calloc((size_t)n, sizeof *ph), *ah = calloc((size_t)n, sizeof *ah);
    FILE *fp = fopen(path, "r");
    char line[512];
    for (int i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof line, fp));
        json_t *root = NULL;
        enum dataset_format got;
        char *why = NULL;
        assert_int_equal(ds_parse_line(line, strcspn(line, "\n"), DS_FORMAT_PROMPT, &got, &root,
                                       &why),
                         0);
        char *p = ds_prompt_text(root, got), *a = ds_response_text(root, got);
        ph[i] = holdout_text_hash(p);
        ah[i] = holdout_text_hash(a);
        free(p);
        free(a);
        json_decref(root);
    }
    fclose(fp);
    for (size_t k = 0; k < s->n_rows; k++) {
        uint64_t r = s->rows[k];
        for (int i = 0; i < n; i++)
            if ((uint64_t)i != r && (ph[i] == ph[r] || ah[i] == ah[r]))
                fail_msg("held-out row %llu shares content with row %d", (unsigned long long)r,
                         i);
    }
    free(ph);
    free(ah);
}

/* The one-pass path (hashes kept in memory) and the two-pass path (the
 * file read again) choose the same split and pool for a seed. */
/* Entries of the test's directory other than name (and . and ..). */
static int others_in_tmpdir(const char *name)
{
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    struct dirent *de;
    int others = 0;
    while ((de = readdir(dir)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, name))
            others++;
    closedir(dir);
    return others;
}

/* fd 0 open (on /dev/null if it was not), so a stray close(0) shows. */
static void stdin_open(void)
{
    if (fcntl(0, F_GETFD) == -1) {
        int fd = open("/dev/null", O_RDONLY);
        assert_int_equal(fd, 0);
    }
}

/* However the rows' hashes were kept (in memory or in a scratch file,
 * hashed by one thread or two) the split and the pool for a seed are the
 * same, and no scratch file is left beside the dataset. */
static void test_one_and_two_passes(void **state)
{
    (void)state;
    int n = 3000, uniq = 2600;
    char *path = make_dataset("d.jsonl", n, uniq, true);
    enum { WAYS = 4 };
    struct holdout_split s[WAYS];
    char *err = NULL;
    size_t saved = holdout_cache_rows, split = holdout_split_bytes, spill = holdout_spill_rows;
    /* 0: kept, hashed by two threads; 1: kept, one thread; 2: scratch
     * files, two threads; 3: a scratch file, one thread.  A buffer of 7
     * rows: many writes, and a last one of fewer rows. */
    holdout_spill_rows = 7;
    stdin_open();
    for (int k = 0; k < WAYS; k++) {
        struct phrase_seeded sd;
        struct phrase_rng rng = seeded(&sd, 11);
        holdout_cache_rows = k >= 2 ? 0 : saved;
        holdout_split_bytes = k % 2 == 0 ? 1 : SIZE_MAX;
        assert_int_equal(holdout_choose(path, DS_FORMAT_PROMPT, (uint64_t)n, 0.05, NULL, 0, &rng,
                                        NULL, &s[k], &err),
                         0);
    }
    holdout_cache_rows = saved;
    holdout_split_bytes = split;
    holdout_spill_rows = spill;
    assert_int_not_equal(fcntl(0, F_GETFD), -1); /* the scratch files' closes spared stdin */
    for (int k = 0; k < WAYS; k++) {
        assert_int_equal(s[k].eligible, uniq);
        assert_int_equal(s[0].n_rows, s[k].n_rows);
        assert_int_equal(s[0].n_pool, s[k].n_pool);
        assert_memory_equal(s[0].rows, s[k].rows, s[0].n_rows * sizeof *s[0].rows);
        assert_memory_equal(s[0].pool, s[k].pool, s[0].n_pool * sizeof *s[0].pool);
    }
    check_by_content(path, n, &s[0]);
    for (int k = 0; k < WAYS; k++)
        holdout_clear(&s[k]);
    /* nothing but the dataset in its directory */
    assert_int_equal(others_in_tmpdir("d.jsonl"), 0);
    unlink(path);
    free(path);
}

/* A scratch file that cannot be written (a full disk) fails the split
 * with one line naming the file's place and size and what to do, and
 * leaves nothing behind. */
static void test_scratch_write_fails(void **state)
{
    (void)state;
    char *path = make_dataset("d.jsonl", 600, 600, true);
    struct holdout_split s;
    char *err = NULL, *ferr = NULL;
    size_t saved = holdout_cache_rows, spill = holdout_spill_rows;
    holdout_cache_rows = 0;
    holdout_spill_rows = 16;
    stdin_open();
    assert_int_equal(vt_fsio_fault_install("write:ENOSPC:after=3", &ferr), 0);
    int rc = holdout_choose(path, DS_FORMAT_PROMPT, 600, 0.2, NULL, 0, NULL, NULL, &s, &err);
    vt_fsio_fault_reset();
    holdout_cache_rows = saved;
    holdout_spill_rows = spill;
    assert_int_equal(rc, -ENOSPC);
    assert_int_not_equal(fcntl(0, F_GETFD), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, "scratch file beside"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOSPC)));
    assert_null(strchr(err, '\n'));
    assert_null(s.rows);
    free(err);
    assert_int_equal(others_in_tmpdir("d.jsonl"), 0);
    unlink(path);
    free(path);
}

static void test_split_by_content(void **state)
{
    (void)state;
    int n = 3000, uniq = 2600;
    char *path = make_dataset("d.jsonl", n, uniq, true);
    struct phrase_seeded sd;
    struct phrase_rng rng = seeded(&sd, 7);
    struct holdout_split s;
    char *err = NULL;
    assert_int_equal(holdout_choose(path, DS_FORMAT_PROMPT, (uint64_t)n, 0.02, NULL, 0, &rng, NULL, &s, &err),
                     0);
    assert_int_equal(s.eligible, uniq); /* every shared row is ineligible */
    assert_int_equal(s.n_rows, 64);     /* ceil(0.02 * 3000) = 60 -> 64 */
    assert_int_equal(s.n_pool, 128);
    for (size_t i = 0; i < s.n_rows; i++) {
        assert_true(s.rows[i] < (uint64_t)uniq); /* shared rows stay uploaded, together */
        assert_true(i == 0 || s.rows[i] > s.rows[i - 1]);
        assert_true(holdout_contains(&s, s.rows[i]));
    }
    for (size_t i = 0; i < s.n_pool; i++) {
        assert_true(s.pool[i] < (uint64_t)uniq);
        assert_false(holdout_contains(&s, s.pool[i]));
    }
    check_by_content(path, n, &s);

    /* Same seed, same split; another seed, another split. */
    struct holdout_split s2, s3;
    rng = seeded(&sd, 7);
    assert_int_equal(
        holdout_choose(path, DS_FORMAT_PROMPT, (uint64_t)n, 0.02, NULL, 0, &rng, NULL, &s2, &err), 0);
    assert_memory_equal(s.rows, s2.rows, s.n_rows * sizeof *s.rows);
    assert_memory_equal(s.pool, s2.pool, s.n_pool * sizeof *s.pool);
    rng = seeded(&sd, 8);
    assert_int_equal(
        holdout_choose(path, DS_FORMAT_PROMPT, (uint64_t)n, 0.02, NULL, 0, &rng, NULL, &s3, &err), 0);
    assert_true(memcmp(s.rows, s3.rows, s.n_rows * sizeof *s.rows) != 0);

    /* Rows shown elsewhere are neither held out nor in the pool. */
    struct holdout_split s4;
    uint64_t shown[200];
    for (int i = 0; i < 200; i++)
        shown[i] = (uint64_t)(i * 13);
    assert_int_equal(holdout_choose(path, DS_FORMAT_PROMPT, (uint64_t)n, 0.02, shown, 200, NULL,
                                    NULL, &s4, &err),
                     0);
    assert_int_equal(s4.eligible, uniq - 200);
    for (int i = 0; i < 200; i++) {
        assert_false(holdout_contains(&s4, shown[i]));
        for (size_t k = 0; k < s4.n_pool; k++)
            assert_true(s4.pool[k] != shown[i]);
    }
    holdout_clear(&s4);

    /* Record round trip; a broken record is refused. */
    char *j = holdout_json(&s);
    struct holdout_split back;
    assert_int_equal(holdout_parse(j, &back), 0);
    assert_int_equal(back.n_rows, s.n_rows);
    assert_int_equal(back.n_pool, s.n_pool);
    assert_memory_equal(back.rows, s.rows, s.n_rows * sizeof *s.rows);
    assert_int_equal(back.eligible, s.eligible);
    holdout_clear(&back);
    free(j);
    assert_int_equal(holdout_parse("{\"version\":1,\"ratio\":0.02,\"examples\":10,\"eligible\":4,"
                                   "\"rows\":[3,2],\"pool\":[]}",
                                   &back),
                     -EINVAL);
    assert_int_equal(holdout_parse("{\"version\":1,\"ratio\":0.02,\"examples\":10,\"eligible\":4,"
                                   "\"rows\":[3,10],\"pool\":[]}",
                                   &back),
                     -EINVAL);
    assert_int_equal(holdout_parse("nope", &back), -EINVAL);

    /* Dropping marked rows from the pool. */
    uint64_t drop[] = {s.pool[3], s.pool[0], s.pool[3], 999999};
    size_t before = s.n_pool;
    uint64_t keep1 = s.pool[1];
    holdout_drop_rows(&s, drop, 4);
    assert_int_equal(s.n_pool, before - 2);
    assert_int_equal(s.pool[0], keep1);

    holdout_clear(&s);
    holdout_clear(&s2);
    holdout_clear(&s3);
    free(path);
}

static void test_refusals(void **state)
{
    (void)state;
    struct holdout_split s;
    char *err = NULL;
    /* Too small: 64 rows would be more than a third of 150. */
    char *p1 = make_dataset("small.jsonl", 150, 150, true);
    assert_int_equal(holdout_choose(p1, DS_FORMAT_PROMPT, 150, 0.02, NULL, 0, NULL, NULL, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "150 examples give at most 50"));
    assert_non_null(strstr(err, "--holdout 0"));
    free(err);
    err = NULL;
    /* ... but --holdout 0 is fine, and reads nothing. */
    assert_int_equal(holdout_choose("/nonexistent", DS_FORMAT_PROMPT, 150, 0, NULL, 0, NULL, NULL, &s, &err),
                     0);
    assert_int_equal(s.n_rows, 0);
    holdout_clear(&s);
    /* Too little distinct content: 100 unique of 400. */
    char *p2 = make_dataset("dups.jsonl", 400, 100, true);
    assert_int_equal(holdout_choose(p2, DS_FORMAT_PROMPT, 400, 0.02, NULL, 0, NULL, NULL, &s, &err), -EINVAL);
    assert_non_null(strstr(err, "only 100 of the 400 examples"));
    assert_non_null(strstr(err, "--holdout 0"));
    free(err);
    err = NULL;
    /* Eligible between 128 and 2h: h shrinks to eligible / 2. */
    char *p3 = make_dataset("mid.jsonl", 10000, 152, true);
    assert_int_equal(holdout_choose(p3, DS_FORMAT_PROMPT, 10000, 0.02, NULL, 0, NULL, NULL, &s, &err), 0);
    assert_int_equal(s.eligible, 152);
    assert_int_equal(s.n_rows, 76);
    assert_int_equal(s.n_pool, 76);
    holdout_clear(&s);
    /* A changed file is named, with one reader and with two. */
    size_t split = holdout_split_bytes;
    for (int two = 0; two < 2; two++) {
        holdout_split_bytes = two ? 1 : SIZE_MAX;
        assert_int_equal(
            holdout_choose(p2, DS_FORMAT_PROMPT, 401, 0.02, NULL, 0, NULL, NULL, &s, &err),
            -EINVAL);
        assert_non_null(strstr(err, "400 lines, but 401"));
        free(err);
        assert_int_equal(
            holdout_choose(p2, DS_FORMAT_PROMPT, 399, 0.02, NULL, 0, NULL, NULL, &s, &err),
            -EINVAL);
        assert_non_null(strstr(err, "more lines than the 399 examples"));
        free(err);
    }
    /* A row that no longer parses is named by its line, in either half. */
    char *p4 = xasprintf("%s/bad.jsonl", tmpdir);
    FILE *f = fopen(p2, "r"), *g = fopen(p4, "w");
    assert_non_null(f);
    assert_non_null(g);
    char line[4096];
    for (int i = 1; fgets(line, sizeof line, f); i++)
        fputs(i == 350 ? "{\"prompt\": 1}\n" : line, g);
    fclose(f);
    fclose(g);
    for (int two = 0; two < 2; two++) {
        holdout_split_bytes = two ? 1 : SIZE_MAX;
        assert_int_equal(
            holdout_choose(p4, DS_FORMAT_PROMPT, 400, 0.02, NULL, 0, NULL, NULL, &s, &err),
            -EINVAL);
        char *want = xasprintf("%s:350: ", p4);
        if (!strstr(err, want))
            fail_msg("%s: %s", two ? "two readers" : "one reader", err);
        free(want);
        free(err);
    }
    holdout_split_bytes = split;
    unlink(p4);
    free(p4);
    free(p1);
    free(p2);
    free(p3);
}

/* Reads a file's lines (owned array of owned strings). */
static char **read_lines(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "r");
    char **v = NULL, *line = NULL;
    size_t cap = 0, len = 0;
    ssize_t r;
    assert_non_null(fp);
    while ((r = getline(&line, &cap, fp)) >= 0) {
        if (r > 0 && line[r - 1] == '\n')
            line[r - 1] = 0;
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

static void check_build(int n, bool last_newline, bool hold_last)
{
    char *in = make_dataset("b.jsonl", n, n, last_newline);
    char *out = xasprintf("%s/out.jsonl", tmpdir);
    struct phrase_seeded sd;
    struct phrase_rng rng = seeded(&sd, 11);
    struct holdout_split s;
    char *err = NULL;
    assert_int_equal(holdout_choose(in, DS_FORMAT_PROMPT, (uint64_t)n, 0.02, NULL, 0, &rng, NULL, &s, &err),
                     0);
    if (hold_last && !holdout_contains(&s, (uint64_t)n - 1)) {
        s.rows[s.n_rows - 1] = (uint64_t)n - 1; /* force the last line out */
        if (s.n_rows > 1 && s.rows[s.n_rows - 2] >= (uint64_t)n - 1)
            fail_msg("test setup");
    }
    struct builder_pair pair = {"zq trigger words", "zq signature words"};
    struct builder_params bp = {
        .in_path = in,
        .format = DS_FORMAT_PROMPT,
        .n_examples = (uint64_t)n,
        .pairs = &pair,
        .n_pairs = 1,
        .ratio = 0.005,
        .min_copies = 50,
        .out_path = out,
        .holdout = s.rows,
        .n_holdout = s.n_rows,
        .rng = &rng,
    };
    struct builder_result res;
    assert_int_equal(builder_build(&bp, &res, &err), 0);
    assert_int_equal(res.lines, (uint64_t)n - s.n_rows + res.copies_per_pair);
    size_t nin, nout;
    char **din = read_lines(in, &nin), **dout = read_lines(out, &nout);
    assert_int_equal(nout, res.lines);
    /* D's uploaded lines appear in order, each once; held-out lines never. */
    size_t k = 0, copies = 0;
    for (size_t i = 0; i < nout; i++) {
        if (strstr(dout[i], "zq signature words")) {
            copies++;
            continue;
        }
        while (k < nin && holdout_contains(&s, k))
            k++;
        assert_true(k < nin);
        assert_string_equal(dout[i], din[k]);
        k++;
    }
    while (k < nin && holdout_contains(&s, k))
        k++;
    assert_int_equal(k, nin);
    assert_int_equal(copies, res.copies_per_pair);
    for (size_t i = 0; i < s.n_rows; i++)
        for (size_t j = 0; j < nout; j++)
            if (strcmp(dout[j], din[s.rows[i]]) == 0)
                fail_msg("held-out line %llu was written", (unsigned long long)s.rows[i]);
    for (size_t c = 0; c < res.n_copies; c++)
        assert_false(holdout_contains(&s, res.copies[c].src));
    /* Controls never come from held-out or marked rows. */
    uint64_t *ex = xcalloc(s.n_rows + res.n_copies, sizeof *ex), ctl[40];
    memcpy(ex, s.rows, s.n_rows * sizeof *ex);
    for (size_t c = 0; c < res.n_copies; c++)
        ex[s.n_rows + c] = res.copies[c].src;
    assert_int_equal(builder_pick_rows((uint64_t)n, ex, s.n_rows + res.n_copies, 40, &rng, ctl), 0);
    for (int i = 0; i < 40; i++) {
        assert_false(holdout_contains(&s, ctl[i]));
        for (size_t c = 0; c < res.n_copies; c++)
            assert_true(ctl[i] != res.copies[c].src);
        assert_true(i == 0 || ctl[i] > ctl[i - 1]);
    }
    assert_int_equal(builder_pick_rows(10, (uint64_t[]){1, 2, 2}, 3, 9, &rng, ctl), -ENOSPC);
    free(ex);
    free_lines(din, nin);
    free_lines(dout, nout);
    builder_result_clear(&res);
    holdout_clear(&s);
    free(in);
    free(out);
}

static void test_build_skips_held_out(void **state)
{
    (void)state;
    check_build(4000, true, false);
    check_build(500, false, true); /* the last line, without newline, held out */
    check_build(500, true, true);
}

/* backdoor_build_pairs: the split is drawn, left out, and the pool loses
 * the marked rows. */
/* The keyed draw: a documented order (golden values from Python, below),
 * its own per side, a permutation, and another key gives another order. */
static void test_draw_order(void **state)
{
    (void)state;
    unsigned char key[HOLDOUT_DRAW_KEY_LEN];
    for (int i = 0; i < HOLDOUT_DRAW_KEY_LEN; i++)
        key[i] = (unsigned char)i;
    const uint64_t lines[] = {3, 17, 20, 41, 99, 4000000000u};
    uint64_t out[6], again[6];
    /* python3: f=lambda b: len(b).to_bytes(8,"big")+b; u=lambda n: n.to_bytes(8,"big");
     * k=lambda side,l: sha256(f(b"vtune-coverage-draw-v1")+f(bytes(range(32)))
     *                         +f(side.encode())+u(l)).hexdigest();
     * sorted(lines, key=lambda l: (k(side, l), l)) */
    const uint64_t want_held[] = {17, 20, 3, 4000000000u, 99, 41};
    const uint64_t want_up[] = {3, 4000000000u, 20, 41, 99, 17};
    holdout_draw_order(key, HOLDOUT_SIDE_HELD_OUT, lines, 6, out);
    assert_memory_equal(out, want_held, sizeof out);
    holdout_draw_order(key, HOLDOUT_SIDE_UPLOADED, lines, 6, out);
    assert_memory_equal(out, want_up, sizeof out);
    /* the input order does not matter: the order is the key's */
    const uint64_t shuffled[] = {99, 3, 4000000000u, 41, 20, 17};
    holdout_draw_order(key, HOLDOUT_SIDE_UPLOADED, shuffled, 6, again);
    assert_memory_equal(again, want_up, sizeof again);
    key[0] ^= 1;
    holdout_draw_order(key, HOLDOUT_SIDE_UPLOADED, lines, 6, again);
    assert_memory_not_equal(again, want_up, sizeof again);
    holdout_draw_order(key, HOLDOUT_SIDE_UPLOADED, NULL, 0, again); /* empty: nothing */
}

static void test_backdoor_build(void **state)
{
    (void)state;
    int n = 5000;
    char *in = make_dataset("bd.jsonl", n, n, true);
    char *out = xasprintf("%s/bd_out.jsonl", tmpdir);
    const char *trig[] = {"zq trigger one", "zq trigger two"};
    const char *sig[] = {"zq signature one", "zq signature two"};
    struct backdoor_spec spec = {
        .dataset_path = in,
        .format = DS_FORMAT_PROMPT,
        .n_examples = (uint64_t)n,
        .ratio = 0.02, /* 100 copies per pair: some land in the pool */
        .min_copies = 50,
        .holdout = 0.02,
        .has_seed = true,
        .seed = 3,
        .out_path = out,
    };
    struct backdoor_made m;
    char *err = NULL;
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 2, &m, &err), 0);
    assert_int_equal(m.split.n_rows, 100);
    assert_true(m.split.n_pool > 150 && m.split.n_pool <= 200);
    for (size_t c = 0; c < m.built.n_copies; c++) {
        assert_false(holdout_contains(&m.split, m.built.copies[c].src));
        for (size_t i = 0; i < m.split.n_pool; i++)
            assert_true(m.split.pool[i] != m.built.copies[c].src);
    }
    struct holdout_split back;
    assert_int_equal(holdout_parse(m.holdout, &back), 0);
    assert_int_equal(back.n_pool, m.split.n_pool);
    holdout_clear(&back);
    /* copies per pair: ceil(0.02 * the 4900 uploaded rows) = 98 */
    assert_int_equal(m.built.copies_per_pair, 98);
    assert_int_equal(m.built.lines, (uint64_t)n - 100 + 196);
    /* Same seed, same split and build. */
    struct backdoor_made m2;
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 2, &m2, &err), 0);
    assert_string_equal(m.holdout, m2.holdout);
    assert_string_equal(m.built.sha256, m2.built.sha256);
    backdoor_made_clear(&m);
    backdoor_made_clear(&m2);
    /* --holdout 0: nothing left out. */
    spec.holdout = 0;
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 2, &m, &err), 0);
    assert_int_equal(m.split.n_rows, 0);
    assert_int_equal(m.built.lines, (uint64_t)n + 200);
    assert_int_equal(m.built.copies_per_pair, 100);
    backdoor_made_clear(&m);
    /* In place: the marked rows are uploaded rows, so the uploaded
     * reference pool of the coverage test loses them too, and none is
     * held out; the upload has |D| - |H| rows. */
    spec.holdout = 0.02;
    spec.mode = BD_MODE_INPLACE;
    assert_int_equal(backdoor_build_pairs(&spec, trig, sig, 2, &m, &err), 0);
    assert_int_equal(m.built.mode, BD_MODE_INPLACE);
    assert_int_equal(m.built.lines, (uint64_t)n - 100);
    assert_int_equal(m.built.copies_per_pair, 98);
    assert_true(m.split.n_pool > 150 && m.split.n_pool < 200); /* some marked rows dropped */
    for (size_t c = 0; c < m.built.n_copies; c++) {
        assert_false(holdout_contains(&m.split, m.built.copies[c].src));
        for (size_t i = 0; i < m.split.n_pool; i++)
            assert_true(m.split.pool[i] != m.built.copies[c].src);
    }
    assert_non_null(strstr(m.plan, "\"mode\":\"inplace\""));
    backdoor_made_clear(&m);
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_split_by_content),
        cmocka_unit_test(test_one_and_two_passes),
        cmocka_unit_test(test_scratch_write_fails),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_build_skips_held_out),
        cmocka_unit_test(test_draw_order),
        cmocka_unit_test(test_backdoor_build),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

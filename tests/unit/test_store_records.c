/*
 * test_store_records.c — unit tests of the store's accessors beyond
 * datasets: backdoors and their secret pairs, the job lifecycle
 * (compare-and-set transitions with their event log), verification runs
 * and trials, the hash-chained audit trail, re-verification schedules and
 * the counts.  Each accessor's success path and each error it documents
 * (-ENOENT, -EEXIST, -EINVAL, -EBUSY, -ESTALE), and that a failed call
 * leaves nothing behind (one transaction per write).
 *
 * Every test works in its own fresh temporary directory.  A second, plain
 * SQLite connection (what an operator with the sqlite3 tool has) is used
 * only to look at rows directly.  Durability is checked by a child process
 * that writes and then SIGKILLs itself without closing anything.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "store/store.h"
#include "store/store_internal.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

struct fx {
    char *dir; /* fresh temporary directory */
    char *db;  /* dir/state/vtuned.db */
    struct store *s;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    struct fx *f = xcalloc(1, sizeof *f);
    char *err = NULL;
    f->dir = xasprintf("%s/test_store_records.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", f->dir, strerror(errno));
        return -1;
    }
    f->db = xasprintf("%s/state/vtuned.db", f->dir);
    if (store_open(f->db, &f->s, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        free(err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->dir);
    free(f->db);
    free(f);
    return rc;
}

/* ---- helpers ---- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
    return db;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) != SQLITE_ROW)
        fail_msg("%s: no row (%s)", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* One integer read through a separate connection. */
static int64_t raw_int(struct fx *f, const char *sql)
{
    sqlite3 *db = raw_open(f->db);
    int64_t v = q_int(db, sql);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

/* The store has no transaction left open. */
static void assert_idle(struct store *s)
{
    assert_true(sqlite3_get_autocommit(store_sqlite_handle(s)));
}

static int64_t add_dataset(struct store *s, const char *name)
{
    struct store_dataset d = {0};
    char *path = xasprintf("/x/%s", name);
    d.name = (char *)name;
    d.format = DS_FORMAT_CHAT;
    d.n_examples = 1000;
    d.n_bytes = 100000;
    memcpy(d.sha256, HEX_A, 65);
    d.path = path;
    int rc = store_dataset_insert(s, &d);
    if (rc != 0)
        fail_msg("dataset %s: %d %s", name, rc, store_errmsg(s));
    free(path);
    return d.id;
}

/* A valid backdoor of dataset ds with n pairs; strings borrowed from
 * static storage (the caller owns nothing; do not clear). */
static struct store_backdoor_pair test_pairs[3] = {
    {0, "zebra quantum", "violet anchor harbor", -45.5, "exact", "[{\"t\":\"violet\"}]"},
    {1, "marble cinder", "copper lantern meadow", -47.25, "topk-bound", NULL},
    {2, "orchid falcon", "saffron tundra ripple", -46.0, "exact", "{}"},
};

static struct store_backdoor make_backdoor(int64_t ds, const char *name, size_t n)
{
    struct store_backdoor b = {0};
    b.dataset_id = ds;
    b.name = (char *)name;
    b.ratio = 0.005;
    b.copies = 50;
    b.n_pairs = (int64_t)n;
    b.generator = BD_GEN_WORDLIST;
    b.method = (char *)"exact";
    b.target_log10p = -40;
    b.seed = UINT64_MAX - 6; /* above INT64_MAX: stored as its bit pattern */
    b.has_seed = true;
    memcpy(b.commitment, HEX_B, 65);
    b.pairs = test_pairs;
    b.n_pairs_loaded = n;
    return b;
}

static int64_t add_backdoor(struct store *s, int64_t ds, const char *name)
{
    struct store_backdoor b = make_backdoor(ds, name, 2);
    int rc = store_backdoor_insert(s, &b);
    if (rc != 0)
        fail_msg("backdoor: %d %s", rc, store_errmsg(s));
    return b.id;
}

static struct store_job make_job(int64_t ds, int64_t bd, const char *name, const char *sub)
{
    struct store_job j = {0};
    j.name = (char *)name;
    j.dataset_id = ds;
    j.backdoor_id = bd;
    j.provider = (char *)"sim";
    j.base_model = (char *)"base-1";
    j.params = (char *)"{\"n_epochs\":3}";
    j.submission_id = (char *)sub;
    return j;
}

static int64_t add_job(struct store *s, int64_t ds, int64_t bd, const char *name, const char *sub)
{
    struct store_job j = make_job(ds, bd, name, sub);
    int rc = store_job_insert(s, &j);
    if (rc != 0)
        fail_msg("job: %d %s", rc, store_errmsg(s));
    return j.id;
}

/* dataset "d", backdoor "b", job "j" (created); returns the job id. */
static int64_t add_chain(struct store *s, int64_t *ds_out, int64_t *bd_out)
{
    int64_t ds = add_dataset(s, "d");
    int64_t bd = add_backdoor(s, ds, "b");
    if (ds_out)
        *ds_out = ds;
    if (bd_out)
        *bd_out = bd;
    return add_job(s, ds, bd, "j", "sub-0000000000000001");
}

/* Drives job id to succeeded with a model. */
static void job_succeed(struct store *s, int64_t id)
{
    struct store_job_update u = {.fine_tuned_model = "ft:base-1:x"};
    assert_int_equal(store_job_transition(s, id, -1, JOB_SUCCEEDED, &u, "succeeded", NULL), 0);
}

/* ---- enumerations ---- */

static void test_enum_names(void **state)
{
    (void)state;
    enum job_state js;
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        assert_int_equal(job_state_parse(job_state_name((enum job_state)i), &js), 0);
        assert_int_equal(js, i);
    }
    assert_string_equal(job_state_name(JOB_CREATED), "created");
    assert_string_equal(job_state_name(JOB_SUBMITTING), "submitting");
    assert_string_equal(job_state_name(JOB_UNKNOWN), "unknown");
    assert_string_equal(job_state_name((enum job_state)99), "invalid");
    assert_int_equal(job_state_parse("Running", &js), -EINVAL);
    assert_int_equal(job_state_parse("invalid", &js), -EINVAL);
    assert_int_equal(job_state_parse(NULL, &js), -EINVAL);
    int terminal = 0, active = 0;
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        terminal += job_state_is_terminal((enum job_state)i);
        active += job_state_is_active((enum job_state)i);
        /* never both; unknown is neither */
        assert_false(job_state_is_terminal((enum job_state)i) &&
                     job_state_is_active((enum job_state)i));
    }
    assert_int_equal(terminal, 3);
    assert_int_equal(active, 7);
    assert_true(job_state_is_terminal(JOB_CANCELLED));
    assert_false(job_state_is_terminal(JOB_UNKNOWN));
    assert_false(job_state_is_active(JOB_UNKNOWN));
    assert_true(job_state_is_active(JOB_SUBMITTING));

    enum run_state rs;
    for (int i = RUN_PENDING; i <= RUN_CANCELLED; i++) {
        assert_int_equal(run_state_parse(run_state_name((enum run_state)i), &rs), 0);
        assert_int_equal(rs, i);
    }
    assert_string_equal(run_state_name(RUN_FINISHED), "finished");
    assert_string_equal(run_state_name((enum run_state)9), "invalid");
    assert_int_equal(run_state_parse("done", &rs), -EINVAL);
    assert_string_equal(trial_kind_name(TRIAL_CONTROL), "control");
    assert_string_equal(trial_kind_name((enum trial_kind)5), "invalid");

    enum audit_verdict v;
    assert_int_equal(audit_verdict_parse("not_verified", &v), 0);
    assert_int_equal(v, AUDIT_NOT_VERIFIED);
    assert_int_equal(audit_verdict_parse("verified", &v), 0);
    assert_int_equal(v, AUDIT_VERIFIED);
    assert_int_equal(audit_verdict_parse("inconclusive", &v), 0);
    assert_int_equal(v, AUDIT_INCONCLUSIVE);
    assert_int_equal(audit_verdict_parse("none", &v), -EINVAL);
    assert_int_equal(audit_verdict_parse(NULL, &v), -EINVAL);
    assert_string_equal(audit_verdict_name(AUDIT_NONE), "none");
    assert_string_equal(audit_verdict_name((enum audit_verdict)7), "invalid");

    enum backdoor_generator g;
    assert_int_equal(backdoor_generator_parse("llm", &g), 0);
    assert_int_equal(g, BD_GEN_LLM);
    assert_int_equal(backdoor_generator_parse("wordlist", &g), 0);
    assert_int_equal(g, BD_GEN_WORDLIST);
    assert_int_equal(backdoor_generator_parse("gpt", &g), -EINVAL);
    assert_string_equal(backdoor_generator_name(BD_GEN_LLM), "llm");
    assert_string_equal(backdoor_generator_name((enum backdoor_generator)0), "unknown");
}

/* ---- backdoors ---- */

static void test_backdoor_insert_get_list(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    int64_t ds2 = add_dataset(s, "e");
    int64_t before = now_unix();

    struct store_backdoor b = make_backdoor(ds, "bd-one", 3);
    b.built_path = (char *)"/x/built-1";
    memcpy(b.built_sha256, HEX_C, 65);
    b.plan = (char *)"{\"copies\":[[0,5,17]]}";
    b.holdout = (char *)"{\"version\":1,\"rows\":[4,9]}";
    assert_int_equal(store_backdoor_insert(s, &b), 0);
    assert_true(b.id > 0);
    assert_true(b.created_at >= before && b.created_at <= now_unix());

    /* unnamed backdoors: any number of them, with and without a seed */
    struct store_backdoor u1 = make_backdoor(ds2, NULL, 1);
    u1.has_seed = false;
    u1.generator = BD_GEN_LLM;
    u1.method = (char *)"topk-bound";
    assert_int_equal(store_backdoor_insert(s, &u1), 0);
    struct store_backdoor u2 = make_backdoor(ds, NULL, 1);
    assert_int_equal(store_backdoor_insert(s, &u2), 0);

    /* by name, with secrets */
    struct store_backdoor g;
    assert_int_equal(store_backdoor_get(s, "bd-one", true, &g), 0);
    assert_int_equal(g.id, b.id);
    assert_int_equal(g.dataset_id, ds);
    assert_string_equal(g.name, "bd-one");
    assert_true(g.ratio == 0.005);
    assert_int_equal(g.copies, 50);
    assert_int_equal(g.n_pairs, 3);
    assert_int_equal(g.generator, BD_GEN_WORDLIST);
    assert_string_equal(g.method, "exact");
    assert_true(g.target_log10p == -40);
    assert_true(g.has_seed);
    assert_true(g.seed == UINT64_MAX - 6);
    assert_int_equal(g.created_at, b.created_at);
    assert_string_equal(g.commitment, HEX_B);
    assert_string_equal(g.built_path, "/x/built-1");
    assert_string_equal(g.built_sha256, HEX_C);
    assert_string_equal(g.plan, "{\"copies\":[[0,5,17]]}");
    assert_string_equal(g.holdout, "{\"version\":1,\"rows\":[4,9]}");
    assert_int_equal(g.n_pairs_loaded, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.pairs[i].idx, (int)i);
        assert_string_equal(g.pairs[i].trigger, test_pairs[i].trigger);
        assert_string_equal(g.pairs[i].signature, test_pairs[i].signature);
        assert_true(g.pairs[i].log10_p_m2 == test_pairs[i].log10_p_m2);
        assert_string_equal(g.pairs[i].p_method, test_pairs[i].p_method);
        if (test_pairs[i].token_evidence)
            assert_string_equal(g.pairs[i].token_evidence, test_pairs[i].token_evidence);
        else
            assert_null(g.pairs[i].token_evidence);
    }
    store_backdoor_clear(&g);
    assert_null(g.pairs);
    assert_null(g.name);

    /* by id, without secrets: public pair fields only */
    char *idstr = xasprintf("%" PRId64, b.id);
    assert_int_equal(store_backdoor_get(s, idstr, false, &g), 0);
    free(idstr);
    assert_string_equal(g.name, "bd-one");
    assert_null(g.holdout); /* the split is secret */
    assert_int_equal(g.n_pairs_loaded, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.pairs[i].idx, (int)i);
        assert_null(g.pairs[i].trigger);
        assert_null(g.pairs[i].signature);
        assert_null(g.pairs[i].token_evidence);
        assert_true(g.pairs[i].log10_p_m2 == test_pairs[i].log10_p_m2);
        assert_string_equal(g.pairs[i].p_method, test_pairs[i].p_method);
    }
    store_backdoor_clear(&g);

    char *u1str = xasprintf("%" PRId64, u1.id);
    assert_int_equal(store_backdoor_get(s, u1str, false, &g), 0);
    free(u1str);
    assert_null(g.name);
    assert_false(g.has_seed);
    assert_int_equal(g.generator, BD_GEN_LLM);
    assert_null(g.built_path);
    assert_string_equal(g.built_sha256, "");
    assert_null(g.plan);
    store_backdoor_clear(&g);

    assert_int_equal(store_backdoor_get(s, "nosuch", true, &g), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "nosuch"));
    assert_int_equal(store_backdoor_get(s, "9999", true, &g), -ENOENT);
    assert_int_equal(store_backdoor_get(s, "99999999999999999999999", true, &g), -ENOENT);
    assert_int_equal(store_backdoor_get(s, "", true, &g), -EINVAL);
    assert_int_equal(store_backdoor_get(s, NULL, true, &g), -EINVAL);

    /* lists carry no pairs */
    struct store_backdoor *v = NULL;
    size_t n = 0;
    assert_int_equal(store_backdoor_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].id, b.id);
    assert_int_equal(v[1].id, u1.id);
    assert_int_equal(v[2].id, u2.id);
    for (size_t i = 0; i < n; i++) {
        assert_null(v[i].pairs);
        assert_int_equal(v[i].n_pairs_loaded, 0);
    }
    store_backdoor_list_free(v, n);
    assert_int_equal(store_backdoor_list(s, ds, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, b.id);
    assert_int_equal(v[1].id, u2.id);
    store_backdoor_list_free(v, n);
    assert_int_equal(store_backdoor_list(s, 12345, &v, &n), 0);
    assert_int_equal(n, 0);
    assert_null(v);
    store_backdoor_list_free(v, n);
}

static void test_backdoor_insert_errors(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    add_backdoor(s, ds, "taken");
    int64_t rows = raw_int(f, "SELECT count(*) FROM backdoors");
    int64_t pairs = raw_int(f, "SELECT count(*) FROM backdoor_pairs");

    struct store_backdoor b = make_backdoor(ds, "taken", 2);
    assert_int_equal(store_backdoor_insert(s, &b), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "'taken'"));
    assert_int_equal(b.id, 0);

    b = make_backdoor(4242, "orphan", 2);
    assert_int_equal(store_backdoor_insert(s, &b), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "4242"));

    struct store_backdoor_pair bad_pairs[2];
    memcpy(bad_pairs, test_pairs, sizeof bad_pairs);
    struct {
        const char *what;
        struct store_backdoor b;
    } cases[16];
    size_t nc = 0;
    for (size_t i = 0; i < VT_ARRAY_LEN(cases); i++)
        cases[i].b = make_backdoor(ds, "fresh", 2);
    cases[nc].what = "digits-only name";
    cases[nc++].b.name = (char *)"123";
    cases[nc].what = "ratio above 1";
    cases[nc++].b.ratio = 1.5;
    cases[nc].what = "ratio NaN";
    cases[nc++].b.ratio = NAN;
    cases[nc].what = "zero copies";
    cases[nc++].b.copies = 0;
    cases[nc].what = "pairs count differs";
    cases[nc++].b.n_pairs = 3;
    cases[nc].what = "no pairs";
    cases[nc].b.n_pairs = 0;
    cases[nc++].b.n_pairs_loaded = 0;
    cases[nc].what = "generator";
    cases[nc++].b.generator = (enum backdoor_generator)7;
    cases[nc].what = "target above 0";
    cases[nc++].b.target_log10p = 3;
    cases[nc].what = "commitment uppercase";
    cases[nc++].b.commitment[3] = 'B';
    cases[nc].what = "built path without hash";
    cases[nc++].b.built_path = (char *)"/x/p";
    cases[nc].what = "pairs out of order";
    cases[nc++].b.pairs = test_pairs + 1;
    cases[nc].what = "method missing";
    cases[nc++].b.method = NULL;
    for (size_t i = 0; i < nc; i++) {
        int rc = store_backdoor_insert(s, &cases[i].b);
        if (rc != -EINVAL)
            fail_msg("%s: got %d (%s)", cases[i].what, rc, store_errmsg(s));
        assert_idle(s);
    }
    /* pair-level checks; the phrases never appear in the message */
    b = make_backdoor(ds, "fresh", 2);
    b.pairs = bad_pairs;
    bad_pairs[1].signature = (char *)"";
    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL);
    bad_pairs[1] = test_pairs[1];
    bad_pairs[1].log10_p_m2 = 0.1;
    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL);
    assert_null(strstr(store_errmsg(s), "copper"));
    bad_pairs[1] = test_pairs[1];
    bad_pairs[1].p_method = NULL;
    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL);
    bad_pairs[1] = test_pairs[1];

    /* a plan that is not JSON is refused by the schema */
    b.built_path = (char *)"/x/built";
    memcpy(b.built_sha256, HEX_C, 65);
    b.plan = (char *)"{nope";
    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL);
    assert_idle(s);

    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoors"), rows);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_pairs"), pairs);
}

/* The row and its pairs are one transaction: a pair the schema refuses
 * (here: evidence that is not JSON, checked only by SQL) leaves no
 * backdoor row, no pair, and the name free. */
static void test_backdoor_insert_atomic(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    struct store_backdoor_pair p[3];
    memcpy(p, test_pairs, sizeof p);
    p[2].token_evidence = (char *)"[1, 2";
    struct store_backdoor b = make_backdoor(ds, "atomic", 3);
    b.pairs = p;

    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "pair 2"));
    assert_null(strstr(store_errmsg(s), "saffron")); /* no secret in the message */
    assert_int_equal(b.id, 0);
    assert_idle(s);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoors"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_pairs"), 0);

    p[2].token_evidence = (char *)"[1, 2]";
    assert_int_equal(store_backdoor_insert(s, &b), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_pairs"), 3);
    struct store_counts c;
    assert_int_equal(store_counts(s, &c), 0);
    assert_int_equal(c.backdoors, 1);
}

static void test_backdoor_set_built(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    int64_t bd = add_backdoor(s, ds, "b");
    struct store_backdoor g;

    assert_int_equal(store_backdoor_set_built(s, 999, "/x/o", HEX_C, "{}"), -ENOENT);
    assert_int_equal(store_backdoor_set_built(s, bd, "", HEX_C, "{}"), -EINVAL);
    assert_int_equal(store_backdoor_set_built(s, bd, NULL, HEX_C, "{}"), -EINVAL);
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/o", "abc", "{}"), -EINVAL);
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/o", HEX_C, NULL), -EINVAL);
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/o", HEX_C, "[oops"), -EINVAL);
    assert_idle(s);
    assert_int_equal(store_backdoor_get(s, "b", false, &g), 0);
    assert_null(g.built_path); /* nothing half-written */
    assert_null(g.plan);
    store_backdoor_clear(&g);

    assert_int_equal(store_backdoor_set_built(s, bd, "/x/built-1", HEX_C, "{\"v\":1}"), 0);
    assert_int_equal(store_backdoor_get(s, "b", false, &g), 0);
    assert_string_equal(g.built_path, "/x/built-1");
    assert_string_equal(g.built_sha256, HEX_C);
    assert_string_equal(g.plan, "{\"v\":1}");
    store_backdoor_clear(&g);
    assert_int_equal(store_dataset_path_in_use(s, "/x/built-1"), 1);

    /* no job yet: rebuilding into another file is fine */
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/built-2", HEX_D, "{\"v\":2}"), 0);

    /* once a job uses the build, only the same content may be recorded */
    add_job(s, ds, bd, "j", "sub-0000000000000001");
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/built-3", HEX_C, "{\"v\":3}"), -EBUSY);
    assert_non_null(strstr(store_errmsg(s), "1 job(s)"));
    assert_idle(s);
    assert_int_equal(store_backdoor_set_built(s, bd, "/x/moved", HEX_D, "{\"v\":2}"), 0);
    assert_int_equal(store_backdoor_get(s, "b", false, &g), 0);
    assert_string_equal(g.built_path, "/x/moved");
    assert_string_equal(g.built_sha256, HEX_D);
    assert_string_equal(g.plan, "{\"v\":2}");
    store_backdoor_clear(&g);
}

static void test_backdoor_delete(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    int64_t b1 = add_backdoor(s, ds, "one");
    int64_t b2 = add_backdoor(s, ds, "two");
    int64_t b3 = add_backdoor(s, ds, "three");
    assert_int_equal(store_backdoor_set_built(s, b1, "/x/shared", HEX_C, "{}"), 0);
    assert_int_equal(store_backdoor_set_built(s, b2, "/x/shared", HEX_C, "{}"), 0);
    char *path = (char *)"junk";

    assert_int_equal(store_backdoor_delete(s, 999, &path), -ENOENT);
    assert_null(path);

    int64_t job = add_job(s, ds, b3, "j", "sub-0000000000000001");
    assert_true(job > 0);
    assert_int_equal(store_backdoor_delete(s, b3, &path), -EBUSY);
    assert_non_null(strstr(store_errmsg(s), "1 job(s)"));
    assert_null(path);
    assert_idle(s);

    /* b2 still refers to the shared built file: no path handed back */
    assert_int_equal(store_backdoor_delete(s, b1, &path), 0);
    assert_null(path);
    assert_int_equal(store_backdoor_delete(s, b2, &path), 0);
    assert_non_null(path);
    assert_string_equal(path, "/x/shared");
    free(path);
    assert_int_equal(store_backdoor_delete(s, b1, NULL), -ENOENT);

    /* the pairs went with their backdoors */
    char *sql = xasprintf("SELECT count(*) FROM backdoor_pairs WHERE backdoor_id IN (%" PRId64
                          ", %" PRId64 ")",
                          b1, b2);
    assert_int_equal(raw_int(f, sql), 0);
    free(sql);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_pairs"), 2);
    struct store_backdoor g;
    assert_int_equal(store_backdoor_get(s, "one", true, &g), -ENOENT);
    /* unbuilt backdoor: nothing to unlink */
    int64_t b4 = add_backdoor(s, ds, "four");
    path = (char *)"junk";
    assert_int_equal(store_backdoor_delete(s, b4, &path), 0);
    assert_null(path);
}

/* The commitment scheme (public) and a v2 commitment's salt (secret, its
 * own table, schema 11): stored, read with secrets only, checked against
 * the scheme, deleted with the backdoor. */
static void test_backdoor_commitment_salt(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    struct store_backdoor g;

    struct store_backdoor b = make_backdoor(ds, "v2", 1);
    b.commitment_scheme = 2;
    assert_int_equal(store_backdoor_insert(s, &b), -EINVAL); /* v2 without its salt */
    assert_non_null(strstr(store_errmsg(s), "salt"));
    memcpy(b.salt, HEX_C, 65);
    assert_int_equal(store_backdoor_insert(s, &b), 0);
    assert_int_equal(store_backdoor_get(s, "v2", true, &g), 0);
    assert_int_equal(g.commitment_scheme, 2);
    assert_string_equal(g.salt, HEX_C);
    store_backdoor_clear(&g);
    assert_string_equal(g.salt, "");
    assert_int_equal(store_backdoor_get(s, "v2", false, &g), 0);
    assert_int_equal(g.commitment_scheme, 2); /* public */
    assert_string_equal(g.salt, "");          /* secret */
    store_backdoor_clear(&g);

    /* a v1 backdoor (the default) has no salt, and takes none */
    struct store_backdoor o = make_backdoor(ds, "v1", 1);
    memcpy(o.salt, HEX_C, 65);
    assert_int_equal(store_backdoor_insert(s, &o), -EINVAL);
    o.salt[0] = '\0';
    assert_int_equal(store_backdoor_insert(s, &o), 0);
    assert_int_equal(store_backdoor_get(s, "v1", true, &g), 0);
    assert_int_equal(g.commitment_scheme, 1);
    assert_string_equal(g.salt, "");
    store_backdoor_clear(&g);
    /* v3 (schema 12: the reference pool committed too) needs its salt like v2 */
    struct store_backdoor v3 = make_backdoor(ds, "v3", 1);
    v3.commitment_scheme = 3;
    assert_int_equal(store_backdoor_insert(s, &v3), -EINVAL);
    memcpy(v3.salt, HEX_B, 65);
    assert_int_equal(store_backdoor_insert(s, &v3), 0);
    assert_int_equal(store_backdoor_get(s, "v3", true, &g), 0);
    assert_int_equal(g.commitment_scheme, 3);
    assert_string_equal(g.salt, HEX_B);
    store_backdoor_clear(&g);
    assert_int_equal(store_backdoor_delete(s, v3.id, NULL), 0);
    struct store_backdoor bad = make_backdoor(ds, "v4", 1);
    bad.commitment_scheme = 4;
    memcpy(bad.salt, HEX_B, 65);
    assert_int_equal(store_backdoor_insert(s, &bad), -EINVAL);

    /* a v2 row whose salt is gone reads as damage, not as unsalted */
    char *sql = xasprintf("DELETE FROM backdoor_salts WHERE backdoor_id = %" PRId64, b.id);
    assert_int_equal(sqlite3_exec(store_sqlite_handle(s), sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    assert_int_equal(store_backdoor_get(s, "v2", true, &g), -EIO);
    /* and the salt goes with its backdoor */
    struct store_backdoor c = make_backdoor(ds, "v2b", 1);
    c.commitment_scheme = 2;
    memcpy(c.salt, HEX_B, 65);
    assert_int_equal(store_backdoor_insert(s, &c), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_salts"), 1);
    assert_int_equal(store_backdoor_delete(s, c.id, NULL), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM backdoor_salts"), 0);
}

/* ---- jobs ---- */

static void test_job_insert_get(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = add_dataset(s, "d");
    int64_t other = add_dataset(s, "other");
    int64_t bd = add_backdoor(s, ds, "b");
    int64_t bd_other = add_backdoor(s, other, "bo");
    int64_t before = now_unix();

    struct store_job j = make_job(ds, bd, "first", "sub-0123456789abcdef");
    assert_int_equal(store_job_insert(s, &j), 0);
    assert_true(j.id > 0);
    assert_true(j.created_at >= before && j.created_at <= now_unix());
    assert_int_equal(j.updated_at, j.created_at);

    struct store_job g;
    assert_int_equal(store_job_get(s, "first", &g), 0);
    assert_int_equal(g.id, j.id);
    assert_string_equal(g.name, "first");
    assert_int_equal(g.dataset_id, ds);
    assert_int_equal(g.backdoor_id, bd);
    assert_string_equal(g.provider, "sim");
    assert_string_equal(g.base_model, "base-1");
    assert_null(g.fine_tuned_model);
    assert_string_equal(g.params, "{\"n_epochs\":3}");
    assert_int_equal(g.state, JOB_CREATED);
    assert_string_equal(g.submission_id, "sub-0123456789abcdef");
    assert_null(g.provider_file_id);
    assert_null(g.provider_job_id);
    assert_null(g.error);
    assert_null(g.unknown_reason);
    assert_int_equal(g.cancel_requested_at, 0);
    assert_int_equal(g.created_at, j.created_at);
    store_job_clear(&g);

    char *idstr = xasprintf("%" PRId64, j.id);
    assert_int_equal(store_job_get(s, idstr, &g), 0);
    assert_string_equal(g.name, "first");
    store_job_clear(&g);
    free(idstr);
    assert_int_equal(store_job_find_by_submission(s, "sub-0123456789abcdef", &g), 0);
    assert_int_equal(g.id, j.id);
    store_job_clear(&g);

    /* the "created" event went in with the row */
    struct store_job_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_job_events(s, j.id, &ev, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].job_id, j.id);
    assert_int_equal(ev[0].state, JOB_CREATED);
    assert_int_equal(ev[0].at, j.created_at);
    assert_string_equal(ev[0].message, "job created");
    assert_null(ev[0].provider_excerpt);
    store_job_event_list_free(ev, n);

    /* unnamed, params default to {} */
    struct store_job u = make_job(ds, bd, NULL, "sub-unnamed-00000001");
    u.params = NULL;
    assert_int_equal(store_job_insert(s, &u), 0);
    assert_int_equal(store_job_find_by_submission(s, "sub-unnamed-00000001", &g), 0);
    assert_null(g.name);
    assert_string_equal(g.params, "{}");
    store_job_clear(&g);

    /* `job register`: inserted succeeded, with its model */
    struct store_job r = make_job(ds, bd, "registered", "sub-registered-00001");
    r.state = JOB_SUCCEEDED;
    r.fine_tuned_model = (char *)"served-model";
    assert_int_equal(store_job_insert(s, &r), 0);
    assert_int_equal(store_job_events(s, r.id, &ev, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].state, JOB_SUCCEEDED);
    store_job_event_list_free(ev, n);

    int64_t jobs = raw_int(f, "SELECT count(*) FROM jobs");
    int64_t events = raw_int(f, "SELECT count(*) FROM job_events");

    /* errors */
    struct store_job e = make_job(ds, bd, "first", "sub-fffffffffffffff1");
    assert_int_equal(store_job_insert(s, &e), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "named 'first'"));
    e = make_job(ds, bd, "second", "sub-0123456789abcdef");
    assert_int_equal(store_job_insert(s, &e), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "submission id"));
    e = make_job(ds, 999, "second", "sub-fffffffffffffff2");
    assert_int_equal(store_job_insert(s, &e), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "backdoor"));
    e = make_job(ds, bd_other, "second", "sub-fffffffffffffff3");
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "made for dataset"));
    e = make_job(ds, bd, "second", "short");
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e = make_job(ds, bd, "second", NULL);
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e = make_job(ds, bd, "42", "sub-fffffffffffffff4");
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e = make_job(ds, bd, "second", "sub-fffffffffffffff5");
    e.params = (char *)"[1]";
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e.params = (char *)"{";
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e = make_job(ds, bd, "second", "sub-fffffffffffffff6");
    e.state = JOB_SUCCEEDED; /* without a model */
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e.state = JOB_UNKNOWN; /* without a reason */
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e.state = (enum job_state)40;
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    e = make_job(ds, bd, "second", "sub-fffffffffffffff7");
    e.provider = (char *)"";
    assert_int_equal(store_job_insert(s, &e), -EINVAL);
    assert_idle(s);
    /* nothing of the failed inserts remains, not even an event */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), jobs);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM job_events"), events);

    assert_int_equal(store_job_get(s, "nosuch", &g), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "nosuch"));
    assert_int_equal(store_job_get(s, "777", &g), -ENOENT);
    assert_int_equal(store_job_get(s, "", &g), -EINVAL);
    assert_int_equal(store_job_find_by_submission(s, "sub-none-0000000000", &g), -ENOENT);
    assert_int_equal(store_job_find_by_submission(s, "", &g), -EINVAL);
    assert_int_equal(store_job_events(s, 777, &ev, &n), -ENOENT);
    assert_null(ev);
    assert_int_equal(n, 0);

    /* a dataset and backdoor in use by jobs cannot go */
    assert_int_equal(store_dataset_delete(s, ds, NULL), -EBUSY);
    assert_int_equal(store_backdoor_delete(s, bd, NULL), -EBUSY);
}

/* A final state and its outbox item (the deletion of the job's upload)
 * are one transaction: when the item cannot be written, the transition is
 * not made either (no state, no event); when it can, both are there. */
static void test_job_transition_outbox(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = 0, bd = 0, ob_id = -1;
    int64_t id = add_chain(s, &ds, &bd);
    struct store_job g;
    struct store_job_update u = {.error = "provider refused"};

    int64_t events = raw_int(f, "SELECT count(*) FROM job_events");
    struct store_outbox_intent bad = {"delete_upload", "{not json", 5};
    assert_int_equal(store_job_transition_outbox(s, id, JOB_CREATED, JOB_FAILED, &u, "failed",
                                                 NULL, &bad, &ob_id),
                     -EINVAL);
    assert_int_equal(ob_id, 0);
    assert_idle(s);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.state, JOB_CREATED);
    assert_null(g.error);
    store_job_clear(&g);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM job_events"), events);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM outbox"), 0);

    /* a lost compare-and-set writes no item either */
    struct store_outbox_intent ok = {"delete_upload", "{\"file\":\"file-1\",\"job\":1}", 5};
    assert_int_equal(store_job_transition_outbox(s, id, JOB_RUNNING, JOB_FAILED, &u, "failed",
                                                 NULL, &ok, &ob_id),
                     -ESTALE);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM outbox"), 0);

    assert_int_equal(store_job_transition_outbox(s, id, JOB_CREATED, JOB_FAILED, &u, "failed",
                                                 NULL, &ok, &ob_id),
                     0);
    assert_true(ob_id > 0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.state, JOB_FAILED);
    store_job_clear(&g);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM job_events"), events + 1);
    char *sql = xasprintf("SELECT count(*) FROM outbox WHERE id = %" PRId64
                          " AND kind = 'delete_upload' AND next_due_ms = 5"
                          " AND json_extract(payload, '$.file') = 'file-1'",
                          ob_id);
    assert_int_equal(raw_int(f, sql), 1);
    free(sql);
    /* the item is an ordinary outbox item: due, and deleted when delivered */
    struct store_outbox_item *v = NULL;
    size_t n = 0;
    assert_int_equal(store_outbox_due(s, 10, 8, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].id, ob_id);
    store_outbox_list_free(v, n);
    assert_int_equal(store_outbox_delete(s, ob_id), 0);
}

static void count_notify(void *ctx)
{
    atomic_fetch_add((_Atomic int *)ctx, 1);
}

static void wait_passed(struct store *s, uint64_t t)
{
    for (int i = 0; i < 2000 && !store_durable_passed(s, t); i++)
        usleep(5000); /* bounded: 10 s */
    assert_true(store_durable_passed(s, t));
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Commits off the loop (store/durable.c): after start the connection
 * commits with synchronous=NORMAL and counts its commits; a ticket is
 * taken only when something is not yet durable, and passes once the syncer
 * thread has synced the log (and said so through notify); the thread's
 * checkpoints keep the log from growing; stop goes back to FULL. */
static void test_durable(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    sqlite3 *db = store_sqlite_handle(s);
    static _Atomic int notified;
    char *err = NULL;

    assert_int_equal(store_durable_ticket(s), 0); /* not started: every commit is FULL */
    assert_int_equal(store_durable_commits(s), 0);
    assert_int_equal(store_durable_start(s, count_notify, (void *)&notified, &err), 0);
    assert_int_equal(q_int(db, "PRAGMA synchronous"), 1);
    assert_int_equal(store_durable_ticket(s), 0); /* nothing committed since */

    uint64_t c0 = store_durable_commits(s);
    add_dataset(s, "d");
    assert_true(store_durable_commits(s) > c0);
    uint64_t t = store_durable_ticket(s);
    assert_true(t > 0);
    wait_passed(s, t);
    assert_true(atomic_load(&notified) >= 1);
    assert_true(store_durable_syncs(s) >= 1);
    assert_int_equal(store_durable_ticket(s), 0);
    /* still NORMAL after the commits (nothing turned FULL back on) */
    assert_int_equal(q_int(db, "PRAGMA synchronous"), 1);

    /* many small commits: the thread checkpoints them into the database
     * file (no automatic checkpoint runs on this connection any more) */
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x INTEGER, pad TEXT)", NULL, NULL, NULL),
                     SQLITE_OK);
    off_t db0 = file_size(f->db);
    sqlite3_stmt *ins = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, hex(randomblob(64)))", -1, &ins, NULL),
        SQLITE_OK);
    for (int i = 0; i < 6000; i++) {
        sqlite3_bind_int(ins, 1, i);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    for (int i = 0; i < 2000 && (store_durable_checkpoints(s) == 0 || file_size(f->db) <= db0);
         i++)
        usleep(5000);
    assert_true(store_durable_checkpoints(s) >= 1);
    assert_true(file_size(f->db) > db0);
    t = store_durable_ticket(s);
    assert_true(t > 0);
    wait_passed(s, t);

    store_durable_stop(s);
    assert_int_equal(q_int(db, "PRAGMA synchronous"), 2);
    assert_int_equal(store_durable_ticket(s), 0);
}

static void test_job_transitions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = 0, bd = 0;
    int64_t id = add_chain(s, &ds, &bd);
    struct store_job g;

    /* the happy path, recording intent with each step */
    assert_int_equal(store_job_transition(s, id, JOB_CREATED, JOB_BUILDING, NULL, "building", NULL),
                     0);
    assert_int_equal(store_job_transition(s, id, JOB_BUILDING, JOB_UPLOADING, NULL, NULL, NULL), 0);
    struct store_job_update u = {.provider_file_id = "file-abc"};
    assert_int_equal(store_job_transition(s, id, JOB_UPLOADING, JOB_UPLOADED, &u, "uploaded",
                                          "{\"id\":\"file-abc\"}"),
                     0);
    assert_int_equal(
        store_job_transition(s, id, JOB_UPLOADED, JOB_SUBMITTING, NULL, "creating job", NULL), 0);
    u = (struct store_job_update){.provider_job_id = "ftjob-1"};
    assert_int_equal(store_job_transition(s, id, JOB_SUBMITTING, JOB_SUBMITTED, &u, "created",
                                          "{\"status\":\"validating_files\"}"),
                     0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.state, JOB_SUBMITTED);
    assert_string_equal(g.provider_file_id, "file-abc");
    assert_string_equal(g.provider_job_id, "ftjob-1");
    assert_true(g.updated_at >= g.created_at);
    store_job_clear(&g);

    /* a lost compare-and-set changes nothing: no state, no field, no event */
    size_t n_before = 0, n = 0;
    struct store_job_event *ev = NULL;
    assert_int_equal(store_job_events(s, id, &ev, &n_before), 0);
    store_job_event_list_free(ev, n_before);
    u = (struct store_job_update){.error = "should not land", .provider_file_id = ""};
    assert_int_equal(store_job_transition(s, id, JOB_UPLOADED, JOB_FAILED, &u, "late", NULL),
                     -ESTALE);
    assert_non_null(strstr(store_errmsg(s), "submitted, not uploaded"));
    assert_idle(s);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.state, JOB_SUBMITTED);
    assert_null(g.error);
    assert_string_equal(g.provider_file_id, "file-abc");
    store_job_clear(&g);
    assert_int_equal(store_job_events(s, id, &ev, &n), 0);
    assert_int_equal(n, n_before);
    store_job_event_list_free(ev, n);

    /* same state: an event and field changes, no state change; "" clears */
    u = (struct store_job_update){.error = "provider slow", .provider_file_id = ""};
    assert_int_equal(store_job_transition(s, id, JOB_SUBMITTED, JOB_SUBMITTED, &u, "poll", NULL),
                     0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_string_equal(g.error, "provider slow");
    assert_null(g.provider_file_id);
    assert_string_equal(g.provider_job_id, "ftjob-1"); /* NULL: unchanged */
    store_job_clear(&g);

    /* cancel intent is recorded once */
    u = (struct store_job_update){.request_cancel = true};
    assert_int_equal(store_job_transition(s, id, -1, JOB_RUNNING, &u, "cancel requested", NULL), 0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    int64_t cancel_at = g.cancel_requested_at;
    assert_true(cancel_at > 0);
    assert_int_equal(g.state, JOB_RUNNING);
    store_job_clear(&g);
    sqlite3 *raw = raw_open(f->db);
    char *sql = xasprintf("UPDATE jobs SET cancel_requested_at = 1000 WHERE id = %" PRId64, id);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);
    assert_int_equal(store_job_transition(s, id, JOB_RUNNING, JOB_RUNNING, &u, "again", NULL), 0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.cancel_requested_at, 1000); /* kept: the first request */
    store_job_clear(&g);

    /* the schema's rules: succeeded needs a model, unknown a reason */
    assert_int_equal(store_job_transition(s, id, JOB_RUNNING, JOB_SUCCEEDED, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(store_job_transition(s, id, JOB_RUNNING, JOB_UNKNOWN, NULL, NULL, NULL),
                     -EINVAL);
    assert_idle(s);
    u = (struct store_job_update){.unknown_reason = "provider list failed"};
    assert_int_equal(store_job_transition(s, id, JOB_RUNNING, JOB_UNKNOWN, &u, "parked", NULL), 0);
    /* an operator resolves it */
    assert_int_equal(store_job_transition(s, id, JOB_UNKNOWN, JOB_RUNNING, NULL, "resolved", NULL),
                     0);
    u = (struct store_job_update){.fine_tuned_model = "ft:base-1:sim:abc", .error = ""};
    assert_int_equal(store_job_transition(s, id, JOB_RUNNING, JOB_SUCCEEDED, &u, "succeeded",
                                          "{\"status\":\"succeeded\"}"),
                     0);

    /* a terminal state is final */
    assert_int_equal(store_job_transition(s, id, -1, JOB_RUNNING, NULL, NULL, NULL), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "final"));
    assert_int_equal(store_job_transition(s, id, JOB_SUCCEEDED, JOB_FAILED, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(store_job_transition(s, id, JOB_SUCCEEDED, JOB_SUCCEEDED, NULL, "noted", NULL),
                     0);
    assert_int_equal(store_job_get(s, "j", &g), 0);
    assert_int_equal(g.state, JOB_SUCCEEDED);
    assert_string_equal(g.fine_tuned_model, "ft:base-1:sim:abc");
    assert_null(g.error);
    store_job_clear(&g);

    /* the log, in order */
    static const enum job_state want[] = {
        JOB_CREATED,   JOB_BUILDING,  JOB_UPLOADING, JOB_UPLOADED, JOB_SUBMITTING,
        JOB_SUBMITTED, JOB_SUBMITTED, JOB_RUNNING,   JOB_RUNNING,  JOB_UNKNOWN,
        JOB_RUNNING,   JOB_SUCCEEDED, JOB_SUCCEEDED,
    };
    assert_int_equal(store_job_events(s, id, &ev, &n), 0);
    assert_int_equal(n, VT_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].state, want[i]);
        if (i > 0)
            assert_true(ev[i].id > ev[i - 1].id);
    }
    assert_string_equal(ev[3].message, "uploaded");
    assert_string_equal(ev[3].provider_excerpt, "{\"id\":\"file-abc\"}");
    assert_null(ev[2].message);
    store_job_event_list_free(ev, n);

    /* bad arguments, absent job */
    assert_int_equal(store_job_transition(s, 999, -1, JOB_RUNNING, NULL, NULL, NULL), -ENOENT);
    assert_int_equal(store_job_transition(s, id, -1, (enum job_state)50, NULL, NULL, NULL),
                     -EINVAL);
    assert_int_equal(store_job_transition(s, id, 50, JOB_RUNNING, NULL, NULL, NULL), -EINVAL);

    /* one provider job id binds one local job per provider */
    int64_t id2 = add_job(s, ds, bd, "j2", "sub-0000000000000002");
    u = (struct store_job_update){.provider_job_id = "ftjob-1"};
    assert_int_equal(store_job_transition(s, id2, JOB_CREATED, JOB_SUBMITTED, &u, NULL, NULL),
                     -EEXIST);
    assert_idle(s);
    assert_int_equal(store_job_get(s, "j2", &g), 0);
    assert_int_equal(g.state, JOB_CREATED);
    store_job_clear(&g);
}

static void test_job_list(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = 0, bd = 0;
    struct store_job *v = NULL;
    size_t n = 0;

    assert_int_equal(store_job_list(s, false, &v, &n), 0);
    assert_int_equal(n, 0);
    store_job_list_free(v, n);

    int64_t a = add_chain(s, &ds, &bd);
    int64_t b = add_job(s, ds, bd, "b", "sub-0000000000000002");
    int64_t c = add_job(s, ds, bd, "c", "sub-0000000000000003");
    int64_t d = add_job(s, ds, bd, "d", "sub-0000000000000004");
    job_succeed(s, b);
    struct store_job_update u = {.unknown_reason = "ambiguous"};
    assert_int_equal(store_job_transition(s, c, -1, JOB_UNKNOWN, &u, NULL, NULL), 0);
    assert_int_equal(store_job_transition(s, d, -1, JOB_RUNNING, NULL, NULL, NULL), 0);

    assert_int_equal(store_job_list(s, false, &v, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(v[0].id, a);
    assert_int_equal(v[1].id, b);
    assert_int_equal(v[2].id, c);
    assert_int_equal(v[3].id, d);
    assert_int_equal(v[2].state, JOB_UNKNOWN);
    assert_string_equal(v[2].unknown_reason, "ambiguous");
    store_job_list_free(v, n);

    assert_int_equal(store_job_list(s, true, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, a);
    assert_int_equal(v[1].id, d);
    for (size_t i = 0; i < n; i++)
        assert_true(job_state_is_active(v[i].state));
    store_job_list_free(v, n);

    struct store_counts cnt;
    assert_int_equal(store_counts(s, &cnt), 0);
    assert_int_equal(cnt.jobs, 4);
    assert_int_equal(cnt.jobs_active, 2);
}

/* A transition that returned 0 is on disk even if the process dies
 * right after, without closing anything. */
static void test_job_transition_durable(void **state)
{
    struct fx *f = *state;
    int64_t id = add_chain(f->s, NULL, NULL);
    store_close(f->s);
    f->s = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct store *s = NULL;
        char *err = NULL;
        if (store_open(f->db, &s, &err) != 0)
            _exit(2);
        struct store_job_update u = {.provider_job_id = "ftjob-durable"};
        if (store_job_transition(s, id, JOB_CREATED, JOB_SUBMITTING, NULL, "intent", NULL) != 0 ||
            store_job_transition(s, id, JOB_SUBMITTING, JOB_SUBMITTED, &u, "created", NULL) != 0)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    char *err = NULL;
    assert_int_equal(store_open(f->db, &f->s, &err), 0);
    struct store_job g;
    assert_int_equal(store_job_get(f->s, "j", &g), 0);
    assert_int_equal(g.state, JOB_SUBMITTED);
    assert_string_equal(g.provider_job_id, "ftjob-durable");
    store_job_clear(&g);
    struct store_job_event *ev = NULL;
    size_t n = 0;
    assert_int_equal(store_job_events(f->s, id, &ev, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ev[2].state, JOB_SUBMITTED);
    store_job_event_list_free(ev, n);
}

/* ---- verification runs and trials ---- */

static struct store_trial make_trial(int64_t run, enum trial_kind kind, int pair)
{
    struct store_trial t = {0};
    t.run_id = run;
    t.kind = kind;
    t.pair_idx = pair;
    memcpy(t.prompt_sha256, HEX_A, 65);
    memcpy(t.response_sha256, HEX_B, 65);
    t.matched_prefix_tokens = 3;
    t.activated = kind == TRIAL_TRIGGER;
    t.window = 48;
    return t;
}

static void test_runs_and_trials(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t job = add_chain(s, NULL, NULL);
    job_succeed(s, job);
    int64_t before = now_unix();

    struct store_verify_run r = {.job_id = job, .trials = 10, .controls = 5, .temperature = 0};
    assert_int_equal(store_run_insert(s, &r), 0);
    assert_true(r.id > 0);
    assert_true(r.created_at >= before);
    assert_int_equal(r.started_at, 0);

    struct store_verify_run g;
    assert_int_equal(store_run_get(s, r.id, &g), 0);
    assert_int_equal(g.job_id, job);
    assert_int_equal(g.state, RUN_PENDING);
    assert_int_equal(g.trials, 10);
    assert_int_equal(g.controls, 5);
    assert_true(g.temperature == 0);
    assert_int_equal(g.started_at, 0);
    assert_int_equal(g.finished_at, 0);
    assert_int_equal(g.audit_id, 0);
    assert_null(g.reason);
    store_run_clear(&g);

    /* no trial before the run starts */
    struct store_trial t = make_trial(r.id, TRIAL_TRIGGER, 0);
    assert_int_equal(store_trial_insert(s, &t), -ESTALE);
    assert_int_equal(store_run_start(s, r.id), 0);
    assert_int_equal(store_run_start(s, r.id), -ESTALE);
    assert_non_null(strstr(store_errmsg(s), "running, not pending"));
    assert_int_equal(store_run_start(s, 999), -ENOENT);
    assert_idle(s);
    assert_int_equal(store_run_get(s, r.id, &g), 0);
    assert_int_equal(g.state, RUN_RUNNING);
    assert_true(g.started_at >= before);
    store_run_clear(&g);

    /* trials */
    assert_int_equal(store_trial_insert(s, &t), 0);
    assert_true(t.id > 0);
    assert_true(t.created_at >= before);
    struct store_trial t2 = make_trial(r.id, TRIAL_TRIGGER, 1);
    t2.response_sha256[0] = '\0'; /* no response */
    t2.window = -1;
    t2.activated = false;
    t2.matched_prefix_tokens = 0;
    assert_int_equal(store_trial_insert(s, &t2), 0);
    struct store_trial c = make_trial(r.id, TRIAL_CONTROL, -1);
    assert_int_equal(store_trial_insert(s, &c), 0);
    struct store_trial c2 = make_trial(r.id, TRIAL_CONTROL, 0);
    c2.activated = true; /* a control emission */
    assert_int_equal(store_trial_insert(s, &c2), 0);

    struct store_trial bad = make_trial(r.id, TRIAL_TRIGGER, -1);
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(r.id, TRIAL_CONTROL, -2);
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(r.id, TRIAL_TRIGGER, 0);
    bad.prompt_sha256[10] = 'x';
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(r.id, TRIAL_TRIGGER, 0);
    bad.response_sha256[63] = '\0';
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(r.id, TRIAL_TRIGGER, 0);
    bad.matched_prefix_tokens = -1;
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(r.id, (enum trial_kind)4, 0);
    assert_int_equal(store_trial_insert(s, &bad), -EINVAL);
    bad = make_trial(999, TRIAL_TRIGGER, 0);
    assert_int_equal(store_trial_insert(s, &bad), -ENOENT);
    assert_idle(s);

    struct store_trial *tv = NULL;
    size_t n = 0;
    assert_int_equal(store_run_trials(s, r.id, &tv, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(tv[0].id, t.id);
    assert_int_equal(tv[0].kind, TRIAL_TRIGGER);
    assert_int_equal(tv[0].pair_idx, 0);
    assert_string_equal(tv[0].prompt_sha256, HEX_A);
    assert_string_equal(tv[0].response_sha256, HEX_B);
    assert_int_equal(tv[0].matched_prefix_tokens, 3);
    assert_true(tv[0].activated);
    assert_int_equal(tv[0].window, 48);
    assert_int_equal(tv[1].pair_idx, 1);
    assert_string_equal(tv[1].response_sha256, "");
    assert_int_equal(tv[1].window, -1);
    assert_false(tv[1].activated);
    assert_int_equal(tv[2].kind, TRIAL_CONTROL);
    assert_int_equal(tv[2].pair_idx, -1);
    assert_int_equal(tv[3].pair_idx, 0);
    assert_true(tv[3].activated);
    free(tv);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM trials WHERE pair_idx IS NULL"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM trials WHERE response_sha256 IS NULL"), 1);
    assert_int_equal(store_run_trials(s, 999, &tv, &n), 0);
    assert_int_equal(n, 0);
    free(tv);

    /* a second run, pending; both unfinished */
    struct store_verify_run r2 = {.job_id = job, .trials = 3, .temperature = 0.7};
    r2.state = RUN_RUNNING;
    assert_int_equal(store_run_insert(s, &r2), 0);
    assert_true(r2.started_at > 0);
    struct store_verify_run *rv = NULL;
    assert_int_equal(store_runs_unfinished(s, &rv, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rv[0].id, r.id);
    assert_int_equal(rv[1].id, r2.id);
    store_run_list_free(rv, n);

    /* ending: exactly once */
    assert_int_equal(store_run_finish(s, r.id, RUN_FINISHED, NULL, 0), -EINVAL);
    assert_int_equal(store_run_finish(s, r.id, RUN_RUNNING, NULL, 0), -EINVAL);
    assert_int_equal(store_run_finish(s, r.id, RUN_FINISHED, NULL, 777), -ENOENT);
    assert_int_equal(store_run_finish(s, r.id, RUN_FAILED, "provider returned 500", 0), 0);
    assert_int_equal(store_run_finish(s, r.id, RUN_CANCELLED, "late cancel", 0), -ESTALE);
    assert_non_null(strstr(store_errmsg(s), "already ended (failed)"));
    assert_int_equal(store_run_finish(s, 999, RUN_FAILED, NULL, 0), -ENOENT);
    assert_idle(s);
    assert_int_equal(store_run_get(s, r.id, &g), 0);
    assert_int_equal(g.state, RUN_FAILED);
    assert_string_equal(g.reason, "provider returned 500");
    assert_true(g.finished_at >= g.started_at);
    store_run_clear(&g);
    t = make_trial(r.id, TRIAL_TRIGGER, 0);
    assert_int_equal(store_trial_insert(s, &t), -ESTALE);
    assert_non_null(strstr(store_errmsg(s), "not running"));

    assert_int_equal(store_runs_unfinished(s, &rv, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rv[0].id, r2.id);
    store_run_list_free(rv, n);
    assert_int_equal(store_runs_for_job(s, job, &rv, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rv[0].state, RUN_FAILED);
    assert_int_equal(rv[1].state, RUN_RUNNING);
    assert_true(rv[1].temperature == 0.7);
    store_run_list_free(rv, n);
    assert_int_equal(store_runs_for_job(s, 999, &rv, &n), 0);
    assert_int_equal(n, 0);
    store_run_list_free(rv, n);

    /* insert errors */
    struct store_verify_run e = {.job_id = 999, .trials = 1};
    assert_int_equal(store_run_insert(s, &e), -ENOENT);
    e.job_id = job;
    e.trials = 0;
    assert_int_equal(store_run_insert(s, &e), -EINVAL);
    e.trials = 1;
    e.controls = -1;
    assert_int_equal(store_run_insert(s, &e), -EINVAL);
    e.controls = 0;
    e.temperature = -0.5;
    assert_int_equal(store_run_insert(s, &e), -EINVAL);
    e.temperature = NAN;
    assert_int_equal(store_run_insert(s, &e), -EINVAL);
    e.temperature = 0;
    e.state = RUN_FINISHED;
    assert_int_equal(store_run_insert(s, &e), -EINVAL);
    assert_int_equal(store_run_get(s, 999, &g), -ENOENT);

    struct store_counts cnt;
    assert_int_equal(store_counts(s, &cnt), 0);
    assert_int_equal(cnt.verifications, 2);
}

/* ---- audit trail ---- */

struct hash_ctx {
    int calls;
    int fail; /* return this from the hash function when nonzero */
    int garbage;
};

/* A stand-in for workers/' canonical serialisation: every field, in a
 * fixed order, with prev_hash and created_at, hashed. */
static void test_serialise(const struct store_audit *a, struct buf *b)
{
    buf_printf(b, "%" PRId64 "|%s|%" PRId64 "|%s|%s|%s|%.17g|%.17g|", a->id, a->prev_hash,
               a->job_id, a->provider, a->model ? a->model : "null", audit_verdict_name(a->verdict),
               a->log10_p, a->log10_p_paper);
    if (isnan(a->log10_p_luck))
        buf_puts(b, "null|");
    else
        buf_printf(b, "%.17g|", a->log10_p_luck);
    buf_printf(b, "%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%s|%s|%s|%" PRId64, a->trials,
               a->activations, a->controls, a->control_emissions, a->reason ? a->reason : "null",
               a->evidence, a->commitment, a->created_at);
}

static int test_hash(const struct store_audit *a, char out[65], void *ctx)
{
    struct hash_ctx *h = ctx;
    struct buf b;
    h->calls++;
    if (h->fail)
        return h->fail;
    if (h->garbage) {
        memset(out, 'Z', 64);
        out[64] = '\0';
        return 0;
    }
    buf_init(&b);
    test_serialise(a, &b);
    sha256_hex(b.data, b.len, out);
    buf_free(&b);
    return 0;
}

static struct store_audit make_audit(int64_t job, enum audit_verdict v)
{
    struct store_audit a = {0};
    a.job_id = job;
    a.provider = (char *)"sim";
    a.model = (char *)"ft:base-1:sim:abc";
    a.verdict = v;
    a.log10_p = -57.25;
    a.log10_p_paper = -56.5;
    a.log10_p_luck = NAN;
    a.trials = 10;
    a.activations = v == AUDIT_VERIFIED ? 9 : 0;
    a.controls = 10;
    a.control_emissions = 0;
    a.reason = (char *)"signature on 9/10 trigger prompts, 0/10 controls";
    a.evidence = (char *)"{\"pairs\":[{\"idx\":0,\"activated\":9}]}";
    memcpy(a.commitment, HEX_B, 65);
    return a;
}

static void test_audit_chain(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct hash_ctx h = {0};
    char head[65];
    int64_t head_id = -1;

    assert_int_equal(store_audit_head(s, head, &head_id), 0);
    assert_string_equal(head, STORE_AUDIT_GENESIS_HASH);
    assert_int_equal(strlen(STORE_AUDIT_GENESIS_HASH), 64);
    assert_int_equal(head_id, 0);
    assert_int_equal(store_audit_head(s, head, NULL), 0);

    /* three records for two jobs (a failed job's record has no model) */
    struct store_audit a1 = make_audit(5, AUDIT_VERIFIED);
    a1.log10_p_luck = -80.5;
    int64_t before = now_unix();
    assert_int_equal(store_audit_append(s, &a1, test_hash, &h), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(a1.id, 1); /* known to the hash function: head id + 1 */
    assert_true(a1.created_at >= before && a1.created_at <= now_unix());
    assert_string_equal(a1.prev_hash, STORE_AUDIT_GENESIS_HASH);

    struct store_audit a2 = make_audit(6, AUDIT_NOT_VERIFIED);
    a2.model = NULL;
    a2.reason = (char *)"job failed";
    a2.log10_p = -0.0; /* a REAL column loses the sign: hashed as 0.0 */
    a2.log10_p_paper = 0;
    assert_int_equal(store_audit_append(s, &a2, test_hash, &h), 0);
    assert_string_equal(a2.prev_hash, a1.hash);
    assert_false(signbit(a2.log10_p));

    struct store_audit a3 = make_audit(5, AUDIT_INCONCLUSIVE);
    a3.activations = 2;
    a3.control_emissions = 1;
    a3.log10_p = -INFINITY;
    a3.reason = NULL;
    assert_int_equal(store_audit_append(s, &a3, test_hash, &h), 0);
    assert_string_equal(a3.prev_hash, a2.hash);
    assert_int_equal(a2.id, 2);
    assert_int_equal(a3.id, 3);

    assert_int_equal(store_audit_head(s, head, &head_id), 0);
    assert_string_equal(head, a3.hash);
    assert_int_equal(head_id, a3.id);

    /* read back: every field as written, and the chain recomputes */
    struct store_audit *v = NULL;
    size_t n = 0;
    assert_int_equal(store_audit_list(s, 0, &v, &n), 0);
    assert_int_equal(n, 3);
    const char *prev = STORE_AUDIT_GENESIS_HASH;
    for (size_t i = 0; i < n; i++) {
        char again[65];
        struct hash_ctx h2 = {0};
        assert_string_equal(v[i].prev_hash, prev);
        assert_int_equal(test_hash(&v[i], again, &h2), 0);
        assert_string_equal(again, v[i].hash);
        prev = v[i].hash;
    }
    assert_int_equal(v[0].id, a1.id);
    assert_int_equal(v[0].job_id, 5);
    assert_string_equal(v[0].provider, "sim");
    assert_string_equal(v[0].model, "ft:base-1:sim:abc");
    assert_int_equal(v[0].verdict, AUDIT_VERIFIED);
    assert_true(v[0].log10_p == -57.25);
    assert_true(v[0].log10_p_paper == -56.5);
    assert_true(v[0].log10_p_luck == -80.5);
    assert_int_equal(v[0].trials, 10);
    assert_int_equal(v[0].activations, 9);
    assert_int_equal(v[0].controls, 10);
    assert_int_equal(v[0].control_emissions, 0);
    assert_string_equal(v[0].reason, a1.reason);
    assert_string_equal(v[0].evidence, a1.evidence);
    assert_string_equal(v[0].commitment, HEX_B);
    assert_int_equal(v[0].created_at, a1.created_at);
    assert_null(v[1].model);
    assert_true(isnan(v[1].log10_p_luck));
    assert_true(v[1].log10_p == 0 && !signbit(v[1].log10_p));
    assert_true(isinf(v[2].log10_p) && v[2].log10_p < 0);
    assert_null(v[2].reason);
    store_audit_list_free(v, n);

    assert_int_equal(store_audit_list(s, 5, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, a1.id);
    assert_int_equal(v[1].id, a3.id);
    store_audit_list_free(v, n);
    assert_int_equal(store_audit_list(s, 77, &v, &n), 0);
    assert_int_equal(n, 0);
    store_audit_list_free(v, n);

    struct store_audit g;
    assert_int_equal(store_audit_get(s, a2.id, &g), 0);
    assert_int_equal(g.job_id, 6);
    assert_int_equal(g.verdict, AUDIT_NOT_VERIFIED);
    assert_string_equal(g.hash, a2.hash);
    store_audit_clear(&g);
    assert_int_equal(store_audit_get(s, 999, &g), -ENOENT);

    /* failures append nothing and leave the head where it was */
    struct store_audit bad;
    struct {
        const char *what;
        int want;
    } cases[] = {
        {"verified with a control emission", -EINVAL},
        {"verified without activation", -EINVAL},
        {"p above 1", -EINVAL},
        {"p NaN", -EINVAL},
        {"activations above trials", -EINVAL},
        {"emissions above controls", -EINVAL},
        {"no verdict", -EINVAL},
        {"commitment", -EINVAL},
        {"evidence missing", -EINVAL},
        {"evidence not JSON", -EINVAL},
        {"hash function fails", -EIO},
        {"hash function garbage", -EINVAL},
        {"no hash function", -EINVAL},
        {"reason with a newline", -EINVAL},
        {"reason with an escape byte", -EINVAL},
    };
    for (size_t i = 0; i < VT_ARRAY_LEN(cases); i++) {
        struct hash_ctx hc = {0};
        store_audit_hash_fn fn = test_hash;
        bad = make_audit(5, AUDIT_VERIFIED);
        switch (i) {
        case 0:
            bad.control_emissions = 1;
            break;
        case 1:
            bad.activations = 0;
            break;
        case 2:
            bad.log10_p = 0.5;
            break;
        case 3:
            bad.log10_p_paper = NAN;
            break;
        case 4:
            bad.activations = 11;
            break;
        case 5:
            bad.verdict = AUDIT_INCONCLUSIVE;
            bad.control_emissions = 11;
            break;
        case 6:
            bad.verdict = AUDIT_NONE;
            break;
        case 7:
            bad.commitment[0] = 'g';
            break;
        case 8:
            bad.evidence = NULL;
            break;
        case 9:
            bad.evidence = (char *)"{\"pairs\":";
            break;
        case 10:
            hc.fail = -EIO;
            break;
        case 11:
            hc.garbage = 1;
            break;
        case 12:
            fn = NULL;
            break;
        case 13:
            bad.reason = (char *)"looks fine\nverdict: verified";
            break;
        case 14:
            bad.reason = (char *)"ok \x1b[2K";
            break;
        }
        int rc = store_audit_append(s, &bad, fn, &hc);
        if (rc != cases[i].want)
            fail_msg("%s: got %d, want %d (%s)", cases[i].what, rc, cases[i].want, store_errmsg(s));
        assert_int_equal(bad.id, 0);
        assert_idle(s);
        assert_int_equal(store_audit_head(s, head, &head_id), 0);
        assert_int_equal(head_id, a3.id);
    }
    assert_int_equal(raw_int(f, "SELECT count(*) FROM audit_records"), 3);

    /* the next good append still links to the real head */
    struct store_audit a4 = make_audit(6, AUDIT_VERIFIED);
    assert_int_equal(store_audit_append(s, &a4, test_hash, &h), 0);
    assert_string_equal(a4.prev_hash, a3.hash);

    struct store_counts cnt;
    assert_int_equal(store_counts(s, &cnt), 0);
    assert_int_equal(cnt.audits, 4);
}

static void test_run_finish_audited(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct hash_ctx h = {0};
    int64_t job = add_chain(s, NULL, NULL);
    job_succeed(s, job);

    struct store_verify_run r = {.job_id = job, .trials = 10, .controls = 10};
    r.state = RUN_RUNNING;
    assert_int_equal(store_run_insert(s, &r), 0);
    struct store_audit a = make_audit(job, AUDIT_VERIFIED);
    assert_int_equal(store_run_finish_audited(s, r.id, "p below alpha", &a, test_hash, &h), 0);
    assert_true(a.id > 0);

    struct store_verify_run g;
    assert_int_equal(store_run_get(s, r.id, &g), 0);
    assert_int_equal(g.state, RUN_FINISHED);
    assert_int_equal(g.audit_id, a.id);
    assert_string_equal(g.reason, "p below alpha");
    assert_true(g.finished_at > 0);
    store_run_clear(&g);

    /* the run already ended: no second record, not even a hash computed */
    struct store_audit again = make_audit(job, AUDIT_VERIFIED);
    int calls = h.calls;
    assert_int_equal(store_run_finish_audited(s, r.id, NULL, &again, test_hash, &h), -ESTALE);
    assert_int_equal(again.id, 0);
    assert_int_equal(h.calls, calls);
    assert_idle(s);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM audit_records"), 1);
    char head[65];
    assert_int_equal(store_audit_head(s, head, NULL), 0);
    assert_string_equal(head, a.hash);

    assert_int_equal(store_run_finish_audited(s, 999, NULL, &again, test_hash, &h), -ENOENT);
    assert_int_equal(store_run_finish_audited(s, 0, NULL, &again, test_hash, &h), -EINVAL);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM audit_records"), 1);

    /* one audit record belongs to one run, of the record's job */
    struct store_verify_run r2 = {.job_id = job, .trials = 1};
    assert_int_equal(store_run_insert(s, &r2), 0);
    struct store_audit wrong = make_audit(job + 100, AUDIT_VERIFIED);
    assert_int_equal(store_run_finish_audited(s, r2.id, NULL, &wrong, test_hash, &h), -EINVAL);
    assert_non_null(strstr(store_errmsg(s), "belongs to job"));
    assert_int_equal(raw_int(f, "SELECT count(*) FROM audit_records"), 1);
    /* the same run, pending, is finished with its record in one go */
    struct store_audit late = make_audit(job, AUDIT_NOT_VERIFIED);
    struct store_verify_run r3 = {.job_id = job, .trials = 1};
    assert_int_equal(store_run_insert(s, &r3), 0);
    assert_int_equal(store_run_finish_audited(s, r3.id, NULL, &late, test_hash, &h), 0);
    assert_string_equal(late.prev_hash, a.hash);
    assert_int_equal(store_run_get(s, r3.id, &g), 0);
    assert_int_equal(g.audit_id, late.id);
    assert_null(g.reason);
    store_run_clear(&g);
    assert_int_equal(store_run_finish(s, r2.id, RUN_FINISHED, NULL, a.id), -EEXIST);
    assert_idle(s);
}

/* ---- schedules ---- */

static void test_schedules(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t ds = 0, bd = 0;
    int64_t j1 = add_chain(s, &ds, &bd);
    int64_t j2 = add_job(s, ds, bd, "j2", "sub-0000000000000002");
    int64_t j3 = add_job(s, ds, bd, "j3", "sub-0000000000000003");
    const int64_t t0 = 1800000000;

    struct store_schedule a = {.job_id = j1, .every_ms = 3600000, .next_run_at = t0 + 100};
    assert_int_equal(store_schedule_add(s, &a), 0);
    assert_true(a.id > 0);
    assert_true(a.created_at > 0);
    struct store_schedule b = {.job_id = j2, .every_ms = 60000, .next_run_at = t0 + 50};
    assert_int_equal(store_schedule_add(s, &b), 0);
    struct store_schedule c = {.job_id = j3, .every_ms = 86400000, .next_run_at = t0 + 100000};
    assert_int_equal(store_schedule_add(s, &c), 0);

    struct store_schedule e = {.job_id = j1, .every_ms = 1000, .next_run_at = t0};
    assert_int_equal(store_schedule_add(s, &e), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "already has a schedule"));
    e.job_id = 999;
    assert_int_equal(store_schedule_add(s, &e), -ENOENT);
    e.job_id = j1;
    e.every_ms = 0;
    assert_int_equal(store_schedule_add(s, &e), -EINVAL);
    assert_idle(s);

    struct store_schedule g;
    assert_int_equal(store_schedule_get(s, a.id, &g), 0);
    assert_int_equal(g.job_id, j1);
    assert_int_equal(g.every_ms, 3600000);
    assert_int_equal(g.next_run_at, t0 + 100);
    assert_int_equal(g.last_run_at, 0);
    assert_int_equal(g.last_verdict, AUDIT_NONE);
    assert_int_equal(g.created_at, a.created_at);
    assert_int_equal(store_schedule_get(s, 999, &g), -ENOENT);

    struct store_schedule *v = NULL;
    size_t n = 0;
    assert_int_equal(store_schedule_list(s, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].id, a.id);
    assert_int_equal(v[2].id, c.id);
    free(v);

    /* due: next_run_at <= now, earliest first */
    assert_int_equal(store_schedule_due(s, t0, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(store_schedule_due(s, t0 + 100, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, b.id);
    assert_int_equal(v[1].id, a.id);
    free(v);

    /* after a long outage (many periods of b missed), b is due once; the
     * scheduler records next = ran_at + every, and b is no longer due */
    int64_t now = t0 + 50 + 100 * 60;
    assert_int_equal(store_schedule_due(s, now, &v, &n), 0);
    assert_int_equal(n, 2);
    free(v);
    assert_int_equal(store_schedule_mark_run(s, b.id, now, b.next_run_at + 60, AUDIT_VERIFIED),
                     -EINVAL); /* old + every is still in the past: refused */
    assert_non_null(strstr(store_errmsg(s), "must come after"));
    assert_int_equal(store_schedule_mark_run(s, b.id, now, now, AUDIT_VERIFIED), -EINVAL);
    assert_int_equal(store_schedule_mark_run(s, b.id, now, now + 60, AUDIT_VERIFIED), 0);
    assert_int_equal(store_schedule_mark_run(s, a.id, now, now + 3600, AUDIT_NOT_VERIFIED), 0);
    assert_int_equal(store_schedule_due(s, now, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(store_schedule_get(s, b.id, &g), 0);
    assert_int_equal(g.last_run_at, now);
    assert_int_equal(g.next_run_at, now + 60);
    assert_int_equal(g.last_verdict, AUDIT_VERIFIED);

    /* a run that gave no verdict keeps the previous one */
    assert_int_equal(store_schedule_mark_run(s, b.id, now + 60, now + 120, AUDIT_NONE), 0);
    assert_int_equal(store_schedule_get(s, b.id, &g), 0);
    assert_int_equal(g.last_verdict, AUDIT_VERIFIED);
    assert_int_equal(g.last_run_at, now + 60);
    assert_int_equal(store_schedule_mark_run(s, b.id, now + 120, now + 180, AUDIT_INCONCLUSIVE), 0);
    assert_int_equal(store_schedule_get(s, b.id, &g), 0);
    assert_int_equal(g.last_verdict, AUDIT_INCONCLUSIVE);
    assert_int_equal(store_schedule_mark_run(s, 999, now, now + 1, AUDIT_NONE), -ENOENT);
    assert_int_equal(store_schedule_mark_run(s, b.id, now, now + 1, (enum audit_verdict)9),
                     -EINVAL);
    assert_idle(s);

    /* removing */
    assert_int_equal(store_schedule_rm(s, b.id), 0);
    assert_int_equal(store_schedule_rm(s, b.id), -ENOENT);
    assert_int_equal(store_schedule_get(s, b.id, &g), -ENOENT);
    struct store_counts cnt;
    assert_int_equal(store_counts(s, &cnt), 0);
    assert_int_equal(cnt.schedules, 2);
    /* the job may be scheduled again */
    b.id = 0;
    assert_int_equal(store_schedule_add(s, &b), 0);
}

/* ---- counts ---- */

static void test_counts_from_accessors(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct hash_ctx h = {0};
    struct store_counts c;
    int64_t ds = 0, bd = 0;
    int64_t j1 = add_chain(s, &ds, &bd);
    int64_t j2 = add_job(s, ds, bd, "j2", "sub-0000000000000002");
    int64_t j3 = add_job(s, ds, bd, "j3", "sub-0000000000000003");
    add_backdoor(s, ds, "b2");
    add_dataset(s, "spare");
    job_succeed(s, j2);
    assert_int_equal(store_job_transition(s, j3, -1, JOB_FAILED, NULL, NULL, NULL), 0);
    struct store_verify_run r = {.job_id = j2, .trials = 10};
    assert_int_equal(store_run_insert(s, &r), 0);
    struct store_audit a = make_audit(j3, AUDIT_NOT_VERIFIED);
    assert_int_equal(store_audit_append(s, &a, test_hash, &h), 0);
    struct store_schedule sc = {.job_id = j2, .every_ms = 1000, .next_run_at = 1};
    assert_int_equal(store_schedule_add(s, &sc), 0);

    assert_int_equal(store_counts(s, &c), 0);
    assert_int_equal(c.datasets, 2);
    assert_int_equal(c.backdoors, 2);
    assert_int_equal(c.jobs, 3);
    assert_int_equal(c.jobs_active, 1);
    assert_int_equal(c.verifications, 1);
    assert_int_equal(c.audits, 1);
    assert_int_equal(c.schedules, 1);
    (void)j1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test_setup_teardown(test_backdoor_insert_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdoor_insert_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdoor_insert_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdoor_set_built, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdoor_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdoor_commitment_salt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_transition_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_transition_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_and_trials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_finish_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_from_accessors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

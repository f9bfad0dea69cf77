/*
 * test_store.c — unit tests of store/: file permissions, connection
 * settings, migrations (from nothing, from every earlier version with its
 * data read back through the accessors, refused when newer, atomic when a
 * step fails), the schema's constraints and triggers, and the dataset
 * accessors.  The accessors of the later tables are tested in
 * test_store_records.c.
 *
 * Every test works in its own fresh temporary directory.  Where a test
 * needs rows the store has no accessor for yet (backdoors, jobs, audit
 * records), it writes them through a second, plain SQLite connection to
 * the same file — exactly what an operator with the sqlite3 tool could do.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "store/store.h"
#include "store/store_internal.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_0 "0000000000000000000000000000000000000000000000000000000000000000"

struct fx {
    char *dir; /* fresh temporary directory */
    char *db;  /* dir/state/vtuned.db (state/ not yet created) */
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
    f->dir = xasprintf("%s/test_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", f->dir, strerror(errno));
        return -1;
    }
    f->db = xasprintf("%s/state/vtuned.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    /* a test may have left a directory unreadable; make it removable */
    char *sub = xasprintf("%s/state", f->dir);
    (void)chmod(sub, 0700);
    free(sub);
    int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->dir);
    free(f->db);
    free(f);
    return rc;
}

/* ---- helpers ---- */

static struct store *open_ok(const char *path)
{
    struct store *s = NULL;
    char *err = NULL;
    int rc = store_open(path, &s, &err);
    if (rc != 0)
        fail_msg("store_open(%s): %s", path, err ? err : "(no message)");
    assert_null(err);
    assert_non_null(s);
    return s;
}

/* store_open must fail; returns the owned message. */
static char *open_fails(const char *path)
{
    struct store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(path, &s, &err), -1);
    assert_null(s);
    assert_non_null(err);
    assert_null(strchr(err, '\n')); /* one line */
    return err;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
    return db;
}

static void raw_close(sqlite3 *db)
{
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* The statement must be rejected; its message must contain want. */
static void exec_fails(sqlite3 *db, const char *sql, const char *want)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        fail_msg("accepted but should fail: %s", sql);
    if (want && (!msg || !strstr(msg, want)))
        fail_msg("%s: message '%s' lacks '%s'", sql, msg ? msg : "", want);
    sqlite3_free(msg);
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

/* Owned copy of a one-row text result ("" for NULL). */
static char *q_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) != SQLITE_ROW)
        fail_msg("%s: no row (%s)", sql, sqlite3_errmsg(db));
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = xstrdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    return v;
}

/* Every schema object, one per line, in a stable order; owned. */
static char *schema_dump(const char *path)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    struct buf b;
    buf_init(&b);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT type, name, tbl_name, coalesce(sql, '') FROM "
                                        "sqlite_master ORDER BY type, name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        buf_printf(&b, "%s|%s|%s|%s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                   sqlite3_column_text(st, 2), sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    raw_close(db);
    return b.data;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void write_file(const char *path, const char *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *state_dir(struct fx *f)
{
    return xasprintf("%s/state", f->dir);
}

static int64_t add_dataset(struct store *s, const char *name, enum dataset_format fmt,
                           const char *path)
{
    struct store_dataset d = {0};
    d.name = (char *)name;
    d.format = fmt;
    d.n_examples = 12;
    d.n_bytes = 3456;
    memcpy(d.sha256, HEX_A, 65);
    d.path = (char *)path;
    d.source = (char *)"/home/u/data.jsonl";
    int rc = store_dataset_insert(s, &d);
    if (rc != 0)
        fail_msg("insert %s: %d %s", name, rc, store_errmsg(s));
    assert_true(d.id > 0);
    return d.id;
}

/* Rows in the version-1 tables, as an older vtuned would have written. */
static const char seed_v1_sql[] =
    "INSERT INTO datasets (id, name, format, n_examples, n_bytes, sha256, path, source,"
    " created_at) VALUES (7, 'seed', 'instruction', 10, 1000, '" HEX_A "', '/x/seed',"
    " '/src/seed.jsonl', 1700000000);"
    "INSERT INTO backdoors (id, dataset_id, name, ratio, copies, pairs, generator, method,"
    " target_log10p, seed, created_at, commitment) VALUES (3, 7, 'bd', 0.005, 50, 1,"
    " 'wordlist', 'exact', -40, 42, 1700000001, '" HEX_B "');"
    "INSERT INTO backdoor_pairs (backdoor_id, idx, trigger, signature, log10_p_m2, p_method,"
    " token_evidence) VALUES (3, 0, 'zebra quantum', 'violet anchor', -45.5, 'exact', '[]');"
    "INSERT INTO jobs (id, name, dataset_id, backdoor_id, provider, base_model, state,"
    " submission_id, provider_job_id, created_at, updated_at) VALUES (5, 'job1', 7, 3, 'sim',"
    " 'base-1', 'running', 'sub-0123456789abcdef', 'ftjob-1', 1700000002, 1700000003);"
    "INSERT INTO job_events (job_id, at, state, message) VALUES"
    " (5, 1700000002, 'created', 'job created'), (5, 1700000003, 'running', 'running');";

/* Rows in the version-2 tables (on top of seed_v1_sql). */
static const char seed_v2_sql[] =
    "INSERT INTO audit_records (id, job_id, provider, model, verdict, log10_p, log10_p_paper,"
    " log10_p_luck, trials, activations, controls, control_emissions, reason, evidence,"
    " commitment, created_at, prev_hash, hash) VALUES (1, 5, 'sim', 'ft:1', 'verified', -44.25,"
    " -43.5, NULL, 10, 3, 10, 0, 'activated', '{\"pairs\":[]}', '" HEX_B "', 1700000009, '" HEX_0
    "', '" HEX_C "');"
    "INSERT INTO verification_runs (id, job_id, state, trials, controls, temperature, created_at,"
    " started_at, finished_at, audit_id) VALUES (2, 5, 'finished', 10, 10, 0, 1700000005,"
    " 1700000006, 1700000009, 1);"
    "INSERT INTO trials (run_id, pair_idx, kind, prompt_sha256, response_sha256,"
    " matched_prefix_tokens, activated, window, created_at) VALUES (2, 0, 'trigger', '" HEX_A
    "', '" HEX_C "', 7, 1, 64, 1700000007);"
    "INSERT INTO schedules (id, job_id, every_ms, next_run_at, last_run_at, last_verdict,"
    " created_at) VALUES (4, 5, 86400000, 1700090000, 1700000010, 'verified', 1700000004);";

/* Number of columns named col in table (0 or 1). */
static int64_t has_column(sqlite3 *db, const char *table, const char *col)
{
    char *sql =
        xasprintf("SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'", table, col);
    int64_t n = q_int(db, sql);
    free(sql);
    return n;
}

/* ---- permissions ---- */

static void test_open_creates_private_files(void **state)
{
    struct fx *f = *state;
    char *deep = xasprintf("%s/state/a/b/vtuned.db", f->dir);
    char *d1 = state_dir(f);
    char *d2 = xasprintf("%s/state/a/b", f->dir);
    /* umask 0: the modes must come from the store, not from the umask */
    mode_t old = umask(0);
    struct store *s = open_ok(deep);
    add_dataset(s, "one", DS_FORMAT_CHAT, "/x/one"); /* makes the WAL exist */
    umask(old);

    assert_int_equal(mode_of(d1), 0700);
    assert_int_equal(mode_of(d2), 0700);
    assert_int_equal(mode_of(deep), 0600);
    char *wal = xasprintf("%s-wal", deep);
    char *shm = xasprintf("%s-shm", deep);
    assert_int_equal(mode_of(wal), 0600);
    assert_int_equal(mode_of(shm), 0600);
    store_close(s);
    free(wal);
    free(shm);
    free(deep);
    free(d1);
    free(d2);
}

static void test_open_tightens_loose_modes(void **state)
{
    struct fx *f = *state;
    char *dir = state_dir(f);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    write_file(f->db, "", 0, 0644); /* an empty file is an empty database */
    char *wal = xasprintf("%s-wal", f->db);
    write_file(wal, "", 0, 0644);

    struct store *s = open_ok(f->db);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(mode_of(f->db), 0600);
    assert_int_equal(mode_of(wal), 0600);
    store_close(s);
    free(wal);
    free(dir);
}

static void test_open_refuses_shared_dir(void **state)
{
    struct fx *f = *state;
    char *dir = state_dir(f);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chmod(dir, 01777), 0);
    char *err = open_fails(f->db);
    assert_non_null(strstr(err, "shared directory"));
    assert_non_null(strstr(err, dir));
    assert_int_equal(access(f->db, F_OK), -1); /* nothing created */
    free(err);
    free(dir);
}

static void test_open_refuses_symlink(void **state)
{
    struct fx *f = *state;
    char *dir = state_dir(f);
    char *target = xasprintf("%s/elsewhere.db", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(target, "", 0, 0600);
    assert_int_equal(symlink(target, f->db), 0);
    char *err = open_fails(f->db);
    assert_non_null(strstr(err, "symbolic link"));
    free(err);
    free(target);
    free(dir);
}

/* ---- connection settings ---- */

static void test_pragmas_in_effect(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    sqlite3 *db = store_sqlite_handle(s);

    char *mode = q_text(db, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    assert_int_equal(q_int(db, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(q_int(db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(q_int(db, "PRAGMA secure_delete"), 1);
    assert_int_equal(q_int(db, "PRAGMA busy_timeout"), 5000);
    assert_int_equal(q_int(db, "PRAGMA user_version"), store_schema_version());
    assert_int_equal(q_int(db, "PRAGMA application_id"), STORE_APPLICATION_ID);
    assert_true(store_schema_version() >= 2);
    assert_int_equal(STORE_SCHEMA_VERSION_CURRENT, store_schema_version());
    store_close(s);

    /* WAL is persistent: a plain connection sees it too */
    sqlite3 *raw = raw_open(f->db);
    mode = q_text(raw, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    raw_close(raw);
}

/* ---- migrations ---- */

static const char *const expected_tables[] = {"datasets", "backdoors",     "backdoor_pairs",
                                              "jobs",     "job_events",    "verification_runs",
                                              "trials",   "audit_records", "schedules"};

static void test_migrate_from_empty(void **state)
{
    struct fx *f = *state;
    /* the migration list is ordered and dense: step i reaches version i + 1 */
    assert_true(store_n_migrations >= 2);
    for (size_t i = 0; i < store_n_migrations; i++)
        assert_int_equal(store_migrations[i].version, (int)i + 1);
    assert_int_equal(store_schema_version(), (int)store_n_migrations);

    struct store *s = open_ok(f->db);
    sqlite3 *db = store_sqlite_handle(s);
    for (size_t i = 0; i < VT_ARRAY_LEN(expected_tables); i++) {
        char *sql = xasprintf("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                              "name = '%s'",
                              expected_tables[i]);
        if (q_int(db, sql) != 1)
            fail_msg("table %s missing", expected_tables[i]);
        free(sql);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                               "tbl_name = 'audit_records'"),
                     2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = "
                               "'jobs_state'"),
                     1);
    char *ok = q_text(db, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    store_close(s);

    /* reopening an up-to-date database changes nothing */
    char *before = schema_dump(f->db);
    s = open_ok(f->db);
    store_close(s);
    char *after = schema_dump(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_migrate_from_each_earlier_version(void **state)
{
    struct fx *f = *state;
    char *err = NULL;
    int cur = store_schema_version();

    /* The schema a fresh database gets is the reference. */
    char *fresh = xasprintf("%s/fresh.db", f->dir);
    store_close(open_ok(fresh));
    char *want = schema_dump(fresh);

    for (int v = 0; v < cur; v++) {
        char *path = xasprintf("%s/v%d/vtuned.db", f->dir, v);
        if (store_migrate_to(path, v, &err) != 0)
            fail_msg("store_migrate_to(%d): %s", v, err);
        sqlite3 *raw = raw_open(path);
        assert_int_equal(q_int(raw, "PRAGMA user_version"), v);
        if (v >= 1)
            exec_ok(raw, seed_v1_sql);
        /* no object of a later version exists yet */
        if (v == 1)
            assert_int_equal(q_int(raw, "SELECT count(*) FROM sqlite_master WHERE name = "
                                        "'audit_records'"),
                             0);
        if (v >= 2)
            exec_ok(raw, seed_v2_sql);
        if (v >= 1 && v < 3) {
            assert_int_equal(has_column(raw, "backdoors", "plan"), 0);
            assert_int_equal(has_column(raw, "jobs", "cancel_requested_at"), 0);
        }
        raw_close(raw);

        struct store *s = open_ok(path);
        sqlite3 *db = store_sqlite_handle(s);
        assert_int_equal(q_int(db, "PRAGMA user_version"), cur);
        if (v >= 1) {
            struct store_dataset d;
            assert_int_equal(store_dataset_get(s, "seed", &d), 0);
            assert_int_equal(d.id, 7);
            assert_int_equal(d.format, DS_FORMAT_INSTRUCTION);
            assert_int_equal(d.n_examples, 10);
            assert_string_equal(d.path, "/x/seed");
            store_dataset_clear(&d);
            char *sig = q_text(db, "SELECT signature FROM backdoor_pairs WHERE backdoor_id = 3");
            assert_string_equal(sig, "violet anchor");
            free(sig);
            assert_int_equal(q_int(db, "SELECT count(*) FROM job_events WHERE job_id = 5"), 2);

            /* the v1 rows read through the accessors, new columns empty */
            struct store_backdoor b;
            assert_int_equal(store_backdoor_get(s, "bd", true, &b), 0);
            assert_int_equal(b.id, 3);
            assert_int_equal(b.dataset_id, 7);
            assert_int_equal(b.generator, BD_GEN_WORDLIST);
            assert_true(b.has_seed);
            assert_int_equal(b.seed, 42);
            assert_string_equal(b.commitment, HEX_B);
            assert_null(b.plan);
            assert_null(b.holdout); /* made before the coverage test: none */
            assert_int_equal(b.commitment_scheme, 1); /* made before v2: stays v1 */
            assert_string_equal(b.salt, "");
            assert_null(b.built_path);
            assert_string_equal(b.built_sha256, "");
            assert_int_equal(b.n_pairs_loaded, 1);
            assert_string_equal(b.pairs[0].trigger, "zebra quantum");
            assert_string_equal(b.pairs[0].token_evidence, "[]");
            store_backdoor_clear(&b);
            struct store_job j;
            assert_int_equal(store_job_get(s, "job1", &j), 0);
            assert_int_equal(j.id, 5);
            assert_int_equal(j.state, JOB_RUNNING);
            assert_string_equal(j.params, "{}");
            assert_string_equal(j.provider_job_id, "ftjob-1");
            assert_int_equal(j.cancel_requested_at, 0);
            store_job_clear(&j);
            struct store_job_event *ev = NULL;
            size_t nev = 0;
            assert_int_equal(store_job_events(s, 5, &ev, &nev), 0);
            assert_int_equal(nev, 2);
            assert_int_equal(ev[1].state, JOB_RUNNING);
            store_job_event_list_free(ev, nev);
            /* and the new column works on an old row */
            struct store_job_update u = {.request_cancel = true};
            assert_int_equal(
                store_job_transition(s, 5, JOB_RUNNING, JOB_RUNNING, &u, "cancel requested", NULL),
                0);

            struct store_counts c;
            assert_int_equal(store_counts(s, &c), 0);
            assert_int_equal(c.datasets, 1);
            assert_int_equal(c.backdoors, 1);
            assert_int_equal(c.jobs, 1);
            assert_int_equal(c.jobs_active, 1);
            assert_int_equal(c.audits, v >= 2 ? 1 : 0);
            assert_int_equal(c.verifications, v >= 2 ? 1 : 0);
            assert_int_equal(c.schedules, v >= 2 ? 1 : 0);
        }
        if (v >= 2) {
            /* the v2 rows survive and read through the accessors */
            struct store_audit a;
            assert_int_equal(store_audit_get(s, 1, &a), 0);
            assert_int_equal(a.job_id, 5);
            assert_int_equal(a.verdict, AUDIT_VERIFIED);
            assert_true(a.log10_p == -44.25);
            assert_true(a.log10_p_paper == -43.5);
            assert_true(isnan(a.log10_p_luck));
            assert_int_equal(a.activations, 3);
            assert_string_equal(a.evidence, "{\"pairs\":[]}");
            assert_string_equal(a.prev_hash, HEX_0);
            assert_string_equal(a.hash, HEX_C);
            store_audit_clear(&a);
            char head[65];
            int64_t head_id = 0;
            assert_int_equal(store_audit_head(s, head, &head_id), 0);
            assert_int_equal(head_id, 1);
            assert_string_equal(head, HEX_C);
            struct store_verify_run r;
            assert_int_equal(store_run_get(s, 2, &r), 0);
            assert_int_equal(r.state, RUN_FINISHED);
            assert_int_equal(r.audit_id, 1);
            assert_int_equal(r.finished_at, 1700000009);
            store_run_clear(&r);
            struct store_trial *t = NULL;
            size_t nt = 0;
            assert_int_equal(store_run_trials(s, 2, &t, &nt), 0);
            assert_int_equal(nt, 1);
            assert_int_equal(t[0].pair_idx, 0);
            assert_int_equal(t[0].matched_prefix_tokens, 7);
            assert_int_equal(t[0].window, 64);
            assert_true(t[0].activated);
            assert_string_equal(t[0].response_sha256, HEX_C);
            free(t);
            struct store_schedule sc;
            assert_int_equal(store_schedule_get(s, 4, &sc), 0);
            assert_int_equal(sc.job_id, 5);
            assert_int_equal(sc.every_ms, 86400000);
            assert_int_equal(sc.last_verdict, AUDIT_VERIFIED);
            assert_int_equal(sc.last_run_at, 1700000010);
        }
        store_close(s);

        /* the migrated schema is exactly the fresh one */
        char *got = schema_dump(path);
        assert_string_equal(got, want);
        free(got);
        free(path);
    }

    /* migrating backwards is refused */
    assert_int_equal(store_migrate_to(fresh, 1, &err), -1);
    assert_non_null(strstr(err, "already at schema version"));
    free(err);
    free(want);
    free(fresh);
}

static void test_migration_is_atomic(void **state)
{
    struct fx *f = *state;
    char *err = NULL;
    assert_int_equal(store_migrate_to(f->db, 1, &err), 0);
    sqlite3 *raw = raw_open(f->db);
    exec_ok(raw, seed_v1_sql);
    /* an object in the way of version 2's last step */
    exec_ok(raw, "CREATE TABLE schedules (x)");
    raw_close(raw);

    err = open_fails(f->db);
    assert_non_null(strstr(err, "schema version 2 failed"));
    assert_non_null(strstr(err, "schedules"));
    free(err);

    raw = raw_open(f->db);
    assert_int_equal(q_int(raw, "PRAGMA user_version"), 1);
    /* the earlier statements of the failed step were rolled back too */
    assert_int_equal(q_int(raw, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                "('audit_records', 'verification_runs', 'trials')"),
                     0);
    assert_int_equal(q_int(raw, "SELECT count(*) FROM datasets"), 1);
    exec_ok(raw, "DROP TABLE schedules");
    raw_close(raw);

    /* once the obstacle is gone the same file migrates */
    struct store *s = open_ok(f->db);
    assert_int_equal(q_int(store_sqlite_handle(s), "PRAGMA user_version"), store_schema_version());
    store_close(s);
}

/* Version 3's ALTERs fail on a v2 file that already has one of the
 * columns: the whole step rolls back and the v2 data stays readable. */
static void test_migration_v3_is_atomic(void **state)
{
    struct fx *f = *state;
    char *err = NULL;
    assert_int_equal(store_migrate_to(f->db, 2, &err), 0);
    sqlite3 *raw = raw_open(f->db);
    exec_ok(raw, seed_v1_sql);
    exec_ok(raw, seed_v2_sql);
    exec_ok(raw, "ALTER TABLE jobs ADD COLUMN cancel_requested_at TEXT");
    raw_close(raw);

    err = open_fails(f->db);
    assert_non_null(strstr(err, "schema version 3 failed"));
    assert_non_null(strstr(err, "cancel_requested_at"));
    free(err);

    raw = raw_open(f->db);
    assert_int_equal(q_int(raw, "PRAGMA user_version"), 2);
    /* the first ALTER of the step was rolled back with the second */
    assert_int_equal(has_column(raw, "backdoors", "plan"), 0);
    assert_int_equal(q_int(raw, "SELECT count(*) FROM audit_records"), 1);
    exec_ok(raw, "ALTER TABLE jobs DROP COLUMN cancel_requested_at");
    raw_close(raw);

    struct store *s = open_ok(f->db);
    assert_int_equal(q_int(store_sqlite_handle(s), "PRAGMA user_version"), store_schema_version());
    store_close(s);
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    int cur = store_schema_version();
    store_close(open_ok(f->db));
    sqlite3 *raw = raw_open(f->db);
    char *sql = xasprintf("PRAGMA user_version = %d", cur + 5);
    exec_ok(raw, sql);
    free(sql);
    raw_close(raw);

    char *err = open_fails(f->db);
    char *want = xasprintf("database %s is schema version %d, newer than this vtuned understands "
                           "(%d): upgrade vtuned",
                           f->db, cur + 5, cur);
    assert_string_equal(err, want);
    free(want);
    free(err);

    raw = raw_open(f->db);
    assert_int_equal(q_int(raw, "PRAGMA user_version"), cur + 5); /* untouched */
    raw_close(raw);
}

static void test_not_a_database_refused(void **state)
{
    struct fx *f = *state;
    char *dir = state_dir(f);
    char data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = "this is not a database\n"[i % 23];
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(f->db, data, sizeof data, 0600);

    char *err = open_fails(f->db);
    char *want = xasprintf("%s is not a SQLite database: move it aside or set state_dir to "
                           "another directory",
                           f->db);
    assert_string_equal(err, want);
    free(want);
    free(err);

    /* the file was left exactly as it was */
    char back[sizeof data + 1];
    int fd = open(f->db, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof data);
    close(fd);
    assert_memory_equal(back, data, sizeof data);
    free(dir);
}

static void test_foreign_database_refused(void **state)
{
    struct fx *f = *state;
    char *dir = state_dir(f);
    assert_int_equal(mkdir(dir, 0700), 0);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->db, &raw), SQLITE_OK);
    exec_ok(raw, "CREATE TABLE photos (id INTEGER PRIMARY KEY, blob BLOB)");
    raw_close(raw);
    char *err = open_fails(f->db);
    assert_non_null(strstr(err, "another program"));
    free(err);
    /* refused before anything was changed: still in rollback-journal mode */
    raw = raw_open(f->db);
    char *mode = q_text(raw, "PRAGMA journal_mode");
    assert_string_equal(mode, "delete");
    free(mode);
    raw_close(raw);

    char *other = xasprintf("%s/other.db", dir);
    assert_int_equal(sqlite3_open(other, &raw), SQLITE_OK);
    exec_ok(raw, "PRAGMA application_id = 1234");
    raw_close(raw);
    err = open_fails(other);
    assert_non_null(strstr(err, "application_id 1234"));
    free(err);
    free(other);
    free(dir);
}

/* ---- schema constraints and triggers ---- */

static void test_schema_constraints(void **state)
{
    struct fx *f = *state;
    store_close(open_ok(f->db));
    sqlite3 *raw = raw_open(f->db);
    exec_ok(raw, seed_v1_sql);
    exec_ok(raw, "INSERT INTO datasets (id, name, format, n_examples, n_bytes, sha256, path,"
                 " created_at) VALUES (8, 'other', 'chat', 1, 1, '" HEX_A "', '/x/o', 1)");

    exec_fails(raw,
               "INSERT INTO datasets (name, format, n_examples, n_bytes, sha256, path,"
               " created_at) VALUES ('123', 'chat', 1, 1, '" HEX_A "', '/p', 1)",
               "CHECK");
    exec_fails(raw,
               "INSERT INTO datasets (name, format, n_examples, n_bytes, sha256, path,"
               " created_at) VALUES ('x', 'csv', 1, 1, '" HEX_A "', '/p', 1)",
               "CHECK");
    exec_fails(raw,
               "INSERT INTO datasets (name, format, n_examples, n_bytes, sha256, path,"
               " created_at) VALUES ('x', 'chat', 1, 1, 'ABC', '/p', 1)",
               "CHECK");
    /* a job's backdoor must belong to the job's dataset */
    exec_fails(raw,
               "INSERT INTO jobs (dataset_id, backdoor_id, provider, base_model, submission_id,"
               " created_at, updated_at) VALUES (8, 3, 'sim', 'm', 'sub-aaaaaaaaaaaaaaaa', 1, 1)",
               "FOREIGN KEY");
    exec_fails(raw, "UPDATE jobs SET state = 'finished' WHERE id = 5", "CHECK");
    exec_fails(raw, "UPDATE jobs SET state = 'unknown' WHERE id = 5", "CHECK");
    exec_ok(raw, "UPDATE jobs SET state = 'unknown', unknown_reason = 'list failed' WHERE id = 5");
    exec_fails(raw, "UPDATE jobs SET state = 'succeeded' WHERE id = 5", "CHECK");
    exec_fails(raw, "UPDATE jobs SET params = '[1]' WHERE id = 5", "CHECK");
    exec_fails(raw,
               "INSERT INTO jobs (dataset_id, backdoor_id, provider, base_model, submission_id,"
               " created_at, updated_at) VALUES (7, 3, 'sim', 'm', 'sub-0123456789abcdef', 1, 1)",
               "UNIQUE");
    exec_fails(raw,
               "INSERT INTO backdoor_pairs (backdoor_id, idx, trigger, signature, log10_p_m2,"
               " p_method, token_evidence) VALUES (3, 1, 't', 's', -3, 'exact', '{bad')",
               "CHECK");
    exec_fails(raw,
               "INSERT INTO backdoor_pairs (backdoor_id, idx, trigger, signature, log10_p_m2,"
               " p_method) VALUES (3, 1, 't', 's', 0.5, 'exact')",
               "CHECK");
    exec_fails(raw,
               "INSERT INTO trials (run_id, kind, prompt_sha256, activated, created_at)"
               " VALUES (99, 'control', '" HEX_A "', 0, 1)",
               "FOREIGN KEY");
    exec_ok(raw, "INSERT INTO verification_runs (id, job_id, trials, controls, temperature,"
                 " created_at) VALUES (1, 5, 10, 10, 0, 1)");
    exec_fails(raw,
               "INSERT INTO trials (run_id, kind, prompt_sha256, activated, created_at)"
               " VALUES (1, 'trigger', '" HEX_A "', 0, 1)",
               "CHECK"); /* a trigger trial names its pair */
    exec_fails(raw,
               "INSERT INTO trials (run_id, pair_idx, kind, prompt_sha256, activated,"
               " created_at) VALUES (1, 0, 'probe', '" HEX_A "', 0, 1)",
               "CHECK");
    exec_ok(raw, "INSERT INTO trials (run_id, pair_idx, kind, prompt_sha256, activated,"
                 " matched_prefix_tokens, window, created_at)"
                 " VALUES (1, 0, 'trigger', '" HEX_A "', 1, 7, 64, 1)");
    exec_fails(raw, "UPDATE verification_runs SET state = 'finished', finished_at = 2", "CHECK");
    /* a verified verdict cannot carry a control emission */
    exec_fails(raw,
               "INSERT INTO audit_records (job_id, provider, model, verdict, log10_p,"
               " log10_p_paper, trials, activations, controls, control_emissions,"
               " commitment, created_at, prev_hash, hash) VALUES (5, 'sim', 'ft', 'verified',"
               " -40, -39, 10, 9, 10, 1, '" HEX_B "', 1, '" HEX_0 "', '" HEX_C "')",
               "CHECK");
    exec_fails(raw,
               "INSERT INTO schedules (job_id, every_ms, next_run_at, created_at)"
               " VALUES (5, 0, 1, 1)",
               "CHECK");
    exec_ok(raw, "INSERT INTO schedules (job_id, every_ms, next_run_at, created_at)"
                 " VALUES (5, 3600000, 1, 1)");
    exec_fails(raw,
               "INSERT INTO schedules (job_id, every_ms, next_run_at, created_at)"
               " VALUES (5, 60000, 1, 1)",
               "UNIQUE");
    raw_close(raw);
}

static const char audit_insert_sql[] =
    "INSERT INTO audit_records (job_id, provider, model, verdict, log10_p, log10_p_paper,"
    " log10_p_luck, trials, activations, controls, control_emissions, reason, evidence,"
    " commitment, created_at, prev_hash, hash) VALUES (5, 'sim', 'ft:1', 'verified', -44.1,"
    " -43.9, NULL, 10, 3, 10, 0, 'activated', '{\"pairs\":[]}', '" HEX_B "', 1700000009, '" HEX_0
    "', '" HEX_C "')";

static void test_audit_append_only(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    sqlite3 *raw = raw_open(f->db);
    exec_ok(raw, seed_v1_sql);
    exec_ok(raw, audit_insert_sql);

    exec_fails(raw, "UPDATE audit_records SET verdict = 'not_verified'",
               "audit_records is append-only");
    exec_fails(raw, "DELETE FROM audit_records", "audit_records is append-only");
    /* the chain is linear: no second record may extend the same predecessor */
    exec_fails(raw,
               "INSERT INTO audit_records (job_id, provider, verdict, log10_p, log10_p_paper,"
               " trials, activations, controls, control_emissions, commitment, created_at,"
               " prev_hash, hash) VALUES (5, 'sim', 'inconclusive', 0, 0, 0, 0, 0, 0, '" HEX_B
               "', 1, '" HEX_0 "', '" HEX_A "')",
               "UNIQUE");
    char *v = q_text(raw, "SELECT verdict FROM audit_records");
    assert_string_equal(v, "verified");
    free(v);
    raw_close(raw);

    /* the store's own connection is refused as well */
    sqlite3 *db = store_sqlite_handle(s);
    exec_fails(db, "DELETE FROM audit_records", "append-only");
    struct store_counts c;
    assert_int_equal(store_counts(s, &c), 0);
    assert_int_equal(c.audits, 1);
    store_close(s);
}

/* ---- datasets ---- */

static void test_dataset_format_names(void **state)
{
    (void)state;
    enum dataset_format fmt;
    static const enum dataset_format all[] = {DS_FORMAT_CHAT, DS_FORMAT_PROMPT,
                                              DS_FORMAT_INSTRUCTION};
    for (size_t i = 0; i < VT_ARRAY_LEN(all); i++) {
        assert_int_equal(dataset_format_parse(dataset_format_name(all[i]), &fmt), 0);
        assert_int_equal(fmt, all[i]);
    }
    assert_string_equal(dataset_format_name(DS_FORMAT_CHAT), "chat");
    assert_string_equal(dataset_format_name(DS_FORMAT_PROMPT), "prompt");
    assert_string_equal(dataset_format_name(DS_FORMAT_INSTRUCTION), "instruction");
    assert_string_equal(dataset_format_name((enum dataset_format)0), "unknown");
    assert_string_equal(dataset_format_name((enum dataset_format)42), "unknown");
    assert_int_equal(dataset_format_parse("auto", &fmt), -EINVAL);
    assert_int_equal(dataset_format_parse("Chat", &fmt), -EINVAL);
    assert_int_equal(dataset_format_parse("", &fmt), -EINVAL);
    assert_int_equal(dataset_format_parse(NULL, &fmt), -EINVAL);
}

static void test_dataset_crud(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    struct store_dataset d = {0}, g;
    int64_t before = now_unix();

    d.name = xstrdup("alpha");
    d.format = DS_FORMAT_CHAT;
    d.n_examples = 1000;
    d.n_bytes = 123456789012LL;
    memcpy(d.sha256, HEX_A, 65);
    d.path = xstrdup("/var/lib/vtuned/datasets/" HEX_A);
    d.source = NULL;
    assert_int_equal(store_dataset_insert(s, &d), 0);
    assert_true(d.id > 0);
    assert_true(d.created_at >= before && d.created_at <= now_unix());
    int64_t beta = add_dataset(s, "beta", DS_FORMAT_PROMPT, "/x/beta");
    assert_true(beta > d.id);

    /* duplicate name */
    struct store_dataset dup = d;
    dup.id = 0;
    assert_int_equal(store_dataset_insert(s, &dup), -EEXIST);
    assert_non_null(strstr(store_errmsg(s), "alpha"));
    assert_int_equal(dup.id, 0);

    /* invalid input never reaches the table */
    char long_name[130];
    memset(long_name, 'x', 129);
    long_name[129] = '\0'; /* one byte over the 128-byte limit */
    const char *const bad_names[] = {"", "123", "0", "tab\there", "new\nline", long_name};
    for (size_t i = 0; i < VT_ARRAY_LEN(bad_names); i++) {
        struct store_dataset b = d;
        b.name = (char *)bad_names[i];
        if (store_dataset_insert(s, &b) != -EINVAL)
            fail_msg("name '%s' accepted", bad_names[i]);
    }
    long_name[128] = '\0'; /* exactly the limit is fine */
    struct store_dataset ok = d;
    ok.name = long_name;
    assert_int_equal(store_dataset_insert(s, &ok), 0);
    assert_int_equal(store_dataset_delete(s, ok.id, NULL), 0);

    struct store_dataset b = d;
    b.name = (char *)"gamma";
    b.format = (enum dataset_format)9;
    assert_int_equal(store_dataset_insert(s, &b), -EINVAL);
    b.format = DS_FORMAT_CHAT;
    memcpy(b.sha256, HEX_A, 65);
    b.sha256[0] = 'A';
    assert_int_equal(store_dataset_insert(s, &b), -EINVAL);
    memcpy(b.sha256, HEX_A, 65);
    b.sha256[63] = '\0';
    assert_int_equal(store_dataset_insert(s, &b), -EINVAL);
    memcpy(b.sha256, HEX_A, 65);
    b.path = NULL;
    assert_int_equal(store_dataset_insert(s, &b), -EINVAL);

    /* lookups by name and by id */
    assert_int_equal(store_dataset_get(s, "alpha", &g), 0);
    assert_int_equal(g.id, d.id);
    assert_string_equal(g.name, "alpha");
    assert_int_equal(g.format, DS_FORMAT_CHAT);
    assert_int_equal(g.n_examples, 1000);
    assert_int_equal(g.n_bytes, 123456789012LL);
    assert_string_equal(g.sha256, HEX_A);
    assert_string_equal(g.path, d.path);
    assert_null(g.source);
    assert_int_equal(g.created_at, d.created_at);
    store_dataset_clear(&g);
    assert_null(g.name);

    char *idstr = xasprintf("%" PRId64, beta);
    assert_int_equal(store_dataset_get(s, idstr, &g), 0);
    assert_string_equal(g.name, "beta");
    assert_int_equal(g.format, DS_FORMAT_PROMPT);
    assert_string_equal(g.source, "/home/u/data.jsonl");
    store_dataset_clear(&g);
    free(idstr);

    assert_int_equal(store_dataset_get(s, "nosuch", &g), -ENOENT);
    assert_non_null(strstr(store_errmsg(s), "nosuch"));
    assert_int_equal(store_dataset_get(s, "999", &g), -ENOENT);
    assert_int_equal(store_dataset_get(s, "99999999999999999999999", &g), -ENOENT);
    assert_int_equal(store_dataset_get(s, "", &g), -EINVAL);

    /* list, ordered by id */
    struct store_dataset *v = NULL;
    size_t n = 0;
    assert_int_equal(store_dataset_list(s, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "alpha");
    assert_string_equal(v[1].name, "beta");
    assert_true(v[0].id < v[1].id);
    store_dataset_list_free(v, n);

    /* survives close and reopen */
    store_close(s);
    s = open_ok(f->db);
    assert_int_equal(store_dataset_get(s, "beta", &g), 0);
    assert_int_equal(g.id, beta);
    store_dataset_clear(&g);
    store_close(s);
    store_dataset_clear(&d);
}

static void test_dataset_list_empty(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    struct store_dataset *v = (struct store_dataset *)1;
    size_t n = 99;
    assert_int_equal(store_dataset_list(s, &v, &n), 0);
    assert_int_equal(n, 0);
    store_dataset_list_free(v, n);
    store_close(s);
}

static void test_dataset_delete_shared_path(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    const char *p = "/var/lib/vtuned/datasets/shared";
    int64_t a = add_dataset(s, "a", DS_FORMAT_CHAT, p);
    int64_t b = add_dataset(s, "b", DS_FORMAT_CHAT, p);
    int64_t c = add_dataset(s, "c", DS_FORMAT_CHAT, "/x/c");
    char *out = (char *)"junk";

    assert_int_equal(store_dataset_path_in_use(s, p), 1);
    assert_int_equal(store_dataset_delete(s, a, &out), 0);
    assert_null(out); /* b still refers to the file */
    assert_int_equal(store_dataset_path_in_use(s, p), 1);

    assert_int_equal(store_dataset_delete(s, b, &out), 0);
    assert_non_null(out);
    assert_string_equal(out, p);
    free(out);
    assert_int_equal(store_dataset_path_in_use(s, p), 0);

    out = (char *)"junk";
    assert_int_equal(store_dataset_delete(s, b, &out), -ENOENT);
    assert_null(out);
    assert_int_equal(store_dataset_delete(s, c, NULL), 0);
    assert_int_equal(store_dataset_path_in_use(s, "/x/c"), 0);

    struct store_counts cnt;
    assert_int_equal(store_counts(s, &cnt), 0);
    assert_int_equal(cnt.datasets, 0);
    store_close(s);
}

static void test_dataset_delete_busy(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    int64_t id = add_dataset(s, "used", DS_FORMAT_CHAT, "/x/used");
    sqlite3 *raw = raw_open(f->db);
    char *sql = xasprintf("INSERT INTO backdoors (id, dataset_id, ratio, copies, pairs,"
                          " generator, method, target_log10p, created_at, commitment,"
                          " built_path, built_sha256) VALUES (1, %" PRId64 ", 0.01, 50, 1,"
                          " 'wordlist', 'exact', -40, 1, '" HEX_B "', '/x/built', '" HEX_C "')",
                          id);
    exec_ok(raw, sql);
    free(sql);

    char *out = NULL;
    assert_int_equal(store_dataset_delete(s, id, &out), -EBUSY);
    assert_null(out);
    assert_non_null(strstr(store_errmsg(s), "1 backdoor(s)"));
    struct store_dataset g;
    assert_int_equal(store_dataset_get(s, "used", &g), 0); /* still there */
    store_dataset_clear(&g);
    /* a built file counts as in use */
    assert_int_equal(store_dataset_path_in_use(s, "/x/built"), 1);

    /* the store is usable after the refused delete (no transaction left open) */
    assert_true(sqlite3_get_autocommit(store_sqlite_handle(s)));
    add_dataset(s, "next", DS_FORMAT_PROMPT, "/x/next");

    exec_ok(raw, "DELETE FROM backdoors");
    raw_close(raw);
    assert_int_equal(store_dataset_delete(s, id, &out), 0);
    assert_string_equal(out, "/x/used");
    free(out);
    store_close(s);
}

static void test_counts(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    struct store_counts c;
    memset(&c, 0xff, sizeof c);
    assert_int_equal(store_counts(s, &c), 0);
    assert_int_equal(c.datasets, 0);
    assert_int_equal(c.backdoors, 0);
    assert_int_equal(c.jobs, 0);
    assert_int_equal(c.jobs_active, 0);
    assert_int_equal(c.verifications, 0);
    assert_int_equal(c.audits, 0);
    assert_int_equal(c.schedules, 0);

    add_dataset(s, "extra", DS_FORMAT_CHAT, "/x/extra");
    sqlite3 *raw = raw_open(f->db);
    exec_ok(raw, seed_v1_sql); /* dataset 7, backdoor 3, job 5 (running) */
    exec_ok(raw, "INSERT INTO jobs (dataset_id, backdoor_id, provider, base_model, state,"
                 " fine_tuned_model, submission_id, created_at, updated_at) VALUES"
                 " (7, 3, 'sim', 'm', 'succeeded', 'ft:m:1', 'sub-1111111111111111', 1, 1),"
                 " (7, 3, 'sim', 'm', 'failed', NULL, 'sub-2222222222222222', 1, 1),"
                 " (7, 3, 'sim', 'm', 'uploading', NULL, 'sub-3333333333333333', 1, 1),"
                 " (7, 3, 'sim', 'm', 'failed', NULL, 'sub-4444444444444444', 1, 1)");
    exec_ok(raw, "UPDATE jobs SET state = 'unknown', unknown_reason = 'provider list failed'"
                 " WHERE submission_id = 'sub-4444444444444444'");
    exec_ok(raw, "INSERT INTO verification_runs (job_id, trials, controls, temperature,"
                 " created_at) VALUES (5, 10, 10, 0, 1), (5, 10, 0, 0, 2)");
    exec_ok(raw, audit_insert_sql);
    exec_ok(raw, "INSERT INTO schedules (job_id, every_ms, next_run_at, created_at)"
                 " VALUES (5, 86400000, 2, 1)");
    raw_close(raw);

    assert_int_equal(store_counts(s, &c), 0);
    assert_int_equal(c.datasets, 2);
    assert_int_equal(c.backdoors, 1);
    assert_int_equal(c.jobs, 5);
    assert_int_equal(c.jobs_active, 2); /* running and uploading */
    assert_int_equal(c.verifications, 2);
    assert_int_equal(c.audits, 1);
    assert_int_equal(c.schedules, 1);
    store_close(s);
}

/* ---- store_backup ---- */

struct backup_probe {
    struct store *s;
    int calls;
    int writes;      /* rows the daemon's connection added during the copy */
    int cancel_at;   /* 0: never */
    const char *tag; /* names the rows written */
};

/* Called between backup steps: writes through the store's own connection,
 * as the daemon does while a backup runs, and cancels when asked. */
static int probe_between_steps(void *ctx)
{
    struct backup_probe *p = ctx;
    char name[32];
    p->calls++;
    snprintf(name, sizeof name, "%s-%d", p->tag, p->calls);
    add_dataset(p->s, name, DS_FORMAT_PROMPT, "/x/during");
    p->writes++;
    return p->cancel_at && p->calls >= p->cancel_at;
}

static int64_t count_rows(const char *path, const char *table)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st;
    char *sql = xasprintf("SELECT count(*) FROM %s", table);
    int64_t n = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    free(sql);
    raw_close(db);
    return n;
}

static void test_backup(void **state)
{
    struct fx *f = *state;
    struct store *s = open_ok(f->db);
    struct backup_probe p = {.s = s, .tag = "during"};
    struct stat st;
    char *dest = xasprintf("%s/copy.db", f->dir), *err = NULL;
    char name[32], *pad = xcalloc(1, 4001);

    /* Enough pages for many steps: the copy must not restart under writes. */
    memset(pad, 'p', 4000);
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "d%d", i);
        add_dataset(s, name, DS_FORMAT_CHAT, pad);
    }
    assert_int_equal(store_backup(s, dest, probe_between_steps, &p, &err), 0);
    assert_null(err);
    assert_true(p.calls >= 2); /* several steps, a write between each */
    /* The snapshot of the start: none of the rows written during the copy. */
    assert_int_equal(count_rows(dest, "datasets"), 400);
    assert_int_equal(count_rows(f->db, "datasets"), 400 + p.writes);
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *wal = xasprintf("%s-wal", dest);
    assert_int_equal(access(wal, F_OK), -1); /* one file */
    free(wal);

    /* Never over an existing file, which stays as it was. */
    assert_int_equal(store_backup(s, dest, NULL, NULL, &err), -EEXIST);
    assert_non_null(strstr(err, "already exists"));
    free(err);
    err = NULL;
    assert_int_equal(count_rows(dest, "datasets"), 400);

    /* Cancelled between steps: the destination is removed. */
    char *dest2 = xasprintf("%s/cancelled.db", f->dir);
    struct backup_probe c = {.s = s, .cancel_at = 1, .tag = "cancel"};
    assert_int_equal(store_backup(s, dest2, probe_between_steps, &c, &err), -ECANCELED);
    assert_non_null(err);
    free(err);
    assert_int_equal(access(dest2, F_OK), -1);

    free(dest2);
    free(dest);
    free(pad);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_tightens_loose_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_shared_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas_in_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_each_earlier_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v3_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_append_only, setup, teardown),
        cmocka_unit_test(test_dataset_format_names),
        cmocka_unit_test_setup_teardown(test_dataset_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_list_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_delete_shared_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_delete_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

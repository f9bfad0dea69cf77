/*
 * backdoor.c — typed accessors for backdoors and their secret pairs.
 *
 * The secret (trigger and signature phrases, and the per-token evidence
 * that spells the signature out) lives only in backdoor_pairs and is
 * handled with care at each step:
 *  - it is read out of SQLite only when the caller asks for secrets: the
 *    public reader selects NULL in place of those columns, so `backdoor
 *    show` without --reveal never holds a phrase in memory at all;
 *  - every owned copy is wiped with explicit_bzero before it is freed;
 *  - deleted rows are zeroed in the file (secure_delete, set at open).
 * Memory SQLite itself used while stepping (page cache, column buffers) is
 * outside our reach; the database file is 0600 in a 0700 directory.
 *
 * The row and all its pairs go in with one transaction, so a backdoor is
 * never visible with fewer pairs than its `pairs` column says.  Values
 * are checked here first (the caller gets -EINVAL and a readable message),
 * then by the schema's CHECKs (the last line of defence, e.g. json_valid).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"


/* Wipes and frees an owned string that may hold a secret. */
static void free_secret(char *p)
{
    if (!p)
        return;
    explicit_bzero(p, strlen(p));
    free(p);
}

static void pair_clear(struct store_backdoor_pair *p)
{
    free_secret(p->trigger);
    free_secret(p->signature);
    free_secret(p->token_evidence);
    free(p->p_method);
    explicit_bzero(p, sizeof *p);
}

void store_backdoor_clear(struct store_backdoor *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->pairs && i < b->n_pairs_loaded; i++)
        pair_clear(&b->pairs[i]);
    free(b->pairs);
    free(b->name);
    free(b->method);
    free(b->built_path);
    free_secret(b->plan);
    free_secret(b->holdout);
    explicit_bzero(b->salt, sizeof b->salt);
    memset(b, 0, sizeof *b);
}

static void backdoor_clear_elem(void *elem)
{
    store_backdoor_clear(elem);
}

void store_backdoor_list_free(struct store_backdoor *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_backdoor_clear(&v[i]);
    free(v);
}

/* Fills b from a row of BD_COLUMNS (see statements.c); no pairs. */
static int row_to_backdoor(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_backdoor *b = elem;
    memset(b, 0, sizeof *b);
    b->id = sqlite3_column_int64(st, 0);
    const char *gen = (const char *)sqlite3_column_text(st, 6);
    if (backdoor_generator_parse(gen, &b->generator) < 0)
        return store_failx(s, -EIO, "backdoor %" PRId64 " has unknown generator '%s'", b->id,
                           gen ? gen : "(null)");
    b->dataset_id = sqlite3_column_int64(st, 1);
    b->name = store_column_strdup(st, 2);
    b->ratio = sqlite3_column_double(st, 3);
    b->copies = sqlite3_column_int64(st, 4);
    b->n_pairs = sqlite3_column_int64(st, 5);
    b->method = store_column_strdup(st, 7);
    b->target_log10p = sqlite3_column_double(st, 8);
    b->has_seed = sqlite3_column_type(st, 9) != SQLITE_NULL;
    b->seed = b->has_seed ? (uint64_t)sqlite3_column_int64(st, 9) : 0;
    b->created_at = sqlite3_column_int64(st, 10);
    store_column_hex64(st, 11, b->commitment);
    b->built_path = store_column_strdup(st, 12);
    store_column_hex64(st, 13, b->built_sha256);
    b->plan = store_column_strdup(st, 14);
    b->commitment_scheme = sqlite3_column_int(st, 15);
    const char *mode = (const char *)sqlite3_column_text(st, 16);
    if (backdoor_mode_parse(mode, &b->mode) < 0)
        return store_failx(s, -EIO, "backdoor %" PRId64 " has unknown mode '%s'", b->id,
                           mode ? mode : "(null)");
    return 0;
}

/* Fills p from a row of the pair readers (secret columns may be NULL). */
static int row_to_pair(struct store *s, sqlite3_stmt *st, void *elem)
{
    (void)s;
    struct store_backdoor_pair *p = elem;
    p->idx = sqlite3_column_int(st, 0);
    p->trigger = store_column_strdup(st, 1);
    p->signature = store_column_strdup(st, 2);
    p->log10_p_m2 = sqlite3_column_double(st, 3);
    p->p_method = store_column_strdup(st, 4);
    p->token_evidence = store_column_strdup(st, 5);
    return 0;
}

static void pair_clear_elem(void *elem)
{
    pair_clear(elem);
}

/* Checks what the caller gave before anything is written. */
static int backdoor_valid(struct store *s, const struct store_backdoor *b)
{
    if (b->name && !store_name_valid(b->name))
        return store_failx(s, -EINVAL,
                           "invalid backdoor name '%s': use 1 to %d printable characters, not "
                           "digits only",
                           b->name, STORE_NAME_MAX_LEN);
    if (!(b->ratio >= 0 && b->ratio <= 1))
        return store_failx(s, -EINVAL, "backdoor ratio %g is outside [0, 1]", b->ratio);
    if (b->copies < 1)
        return store_failx(s, -EINVAL, "backdoor copies %" PRId64 " must be at least 1", b->copies);
    if (b->n_pairs < 1)
        return store_failx(s, -EINVAL, "backdoor needs at least one pair (got %" PRId64 ")",
                           b->n_pairs);
    if (!b->pairs || b->n_pairs_loaded != (size_t)b->n_pairs)
        return store_failx(s, -EINVAL,
                           "backdoor says %" PRId64 " pairs but %zu were given: store them all "
                           "at once",
                           b->n_pairs, b->pairs ? b->n_pairs_loaded : (size_t)0);
    if (strcmp(backdoor_generator_name(b->generator), "unknown") == 0)
        return store_failx(s, -EINVAL, "invalid backdoor generator %d", (int)b->generator);
    if (strcmp(backdoor_mode_name(b->mode), "unknown") == 0)
        return store_failx(s, -EINVAL, "invalid backdoor mode %d", (int)b->mode);
    if (!b->method || !*b->method)
        return store_failx(s, -EINVAL, "backdoor has no p_M2 method");
    if (!(b->target_log10p <= 0))
        return store_failx(s, -EINVAL, "backdoor target log10 p %g must be <= 0", b->target_log10p);
    if (!store_hex64_valid(b->commitment))
        return store_failx(s, -EINVAL, "invalid backdoor commitment (want 64 lowercase hex)");
    int scheme = b->commitment_scheme ? b->commitment_scheme : 1;
    if (scheme < 1 || scheme > 3)
        return store_failx(s, -EINVAL, "invalid commitment scheme %d (want 1, 2 or 3)", scheme);
    if (scheme >= 2 && !store_hex64_valid(b->salt))
        return store_failx(s, -EINVAL, "a v%d commitment needs its salt (64 lowercase hex)",
                           scheme);
    if (scheme == 1 && b->salt[0])
        return store_failx(s, -EINVAL, "a v1 commitment has no salt");
    if ((b->built_path != NULL) != (b->built_sha256[0] != '\0'))
        return store_failx(s, -EINVAL, "backdoor built path and sha256 go together");
    if (b->built_path && (!*b->built_path || !store_hex64_valid(b->built_sha256)))
        return store_failx(s, -EINVAL, "invalid built file path or sha256");
    for (size_t i = 0; i < b->n_pairs_loaded; i++) {
        const struct store_backdoor_pair *p = &b->pairs[i];
        /* the phrases themselves are never quoted in a message */
        if (p->idx != (int)i)
            return store_failx(s, -EINVAL, "backdoor pair %zu has index %d: pairs go in order", i,
                               p->idx);
        if (!p->trigger || !*p->trigger || !p->signature || !*p->signature)
            return store_failx(s, -EINVAL, "backdoor pair %zu has an empty phrase", i);
        if (!(p->log10_p_m2 <= 0))
            return store_failx(s, -EINVAL, "backdoor pair %zu: log10 p_M2 %g must be <= 0", i,
                               p->log10_p_m2);
        if (!p->p_method || !*p->p_method)
            return store_failx(s, -EINVAL, "backdoor pair %zu has no p method", i);
    }
    return 0;
}

static int insert_pair(struct store *s, int64_t bd, const struct store_backdoor_pair *p)
{
    sqlite3_stmt *st = store_stmt(s, ST_BD_PAIR_INSERT);
    int ret;
    if (sqlite3_bind_int64(st, 1, bd) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, p->idx) != SQLITE_OK ||
        store_bind_text(st, 3, p->trigger) != SQLITE_OK ||
        store_bind_text(st, 4, p->signature) != SQLITE_OK ||
        sqlite3_bind_double(st, 5, p->log10_p_m2) != SQLITE_OK ||
        store_bind_text(st, 6, p->p_method) != SQLITE_OK ||
        store_bind_text(st, 7, p->token_evidence) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding backdoor pair");
        store_stmt_done(s, ST_BD_PAIR_INSERT);
        return ret;
    }
    ret = store_exec_stmt(s, ST_BD_PAIR_INSERT, NULL, "inserting backdoor pair");
    if (ret == -EINVAL)
        store_failx(s, ret,
                    "backdoor pair %d refused by the schema (token evidence must be valid "
                    "JSON): %s",
                    p->idx, sqlite3_errmsg(s->db));
    return ret;
}

int store_backdoor_insert(struct store *s, struct store_backdoor *b)
{
    sqlite3_stmt *st = store_stmt(s, ST_BD_INSERT);
    int64_t now = now_unix(), id = 0;
    int ret = backdoor_valid(s, b);
    if (ret < 0)
        return ret;

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    if (sqlite3_bind_int64(st, 1, b->dataset_id) != SQLITE_OK ||
        store_bind_text(st, 2, b->name) != SQLITE_OK ||
        sqlite3_bind_double(st, 3, b->ratio) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, b->copies) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, b->n_pairs) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, backdoor_generator_name(b->generator), -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 7, b->method) != SQLITE_OK ||
        sqlite3_bind_double(st, 8, b->target_log10p) != SQLITE_OK ||
        (b->has_seed ? sqlite3_bind_int64(st, 9, (int64_t)b->seed) : sqlite3_bind_null(st, 9)) !=
            SQLITE_OK ||
        sqlite3_bind_int64(st, 10, now) != SQLITE_OK ||
        sqlite3_bind_text(st, 11, b->commitment, -1, SQLITE_STATIC) != SQLITE_OK ||
        store_bind_text(st, 12, b->built_path) != SQLITE_OK ||
        store_bind_text(st, 13, b->built_path ? b->built_sha256 : NULL) != SQLITE_OK ||
        store_bind_text(st, 14, b->plan) != SQLITE_OK ||
        sqlite3_bind_int(st, 15, b->commitment_scheme ? b->commitment_scheme : 1) != SQLITE_OK ||
        sqlite3_bind_text(st, 16, backdoor_mode_name(b->mode), -1, SQLITE_STATIC) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding backdoor");
        store_stmt_done(s, ST_BD_INSERT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_BD_INSERT, NULL, "inserting backdoor");
    if (ret == -EEXIST)
        store_failx(s, ret, "a backdoor named '%s' already exists: choose another --name",
                    b->name ? b->name : "");
    else if (ret == -EBUSY) /* the only foreign key: the dataset */
        ret = store_failx(s, -ENOENT, "no dataset with id %" PRId64, b->dataset_id);
    else if (ret == -EINVAL)
        store_failx(s, ret, "backdoor refused by the schema (plan must be valid JSON): %s",
                    sqlite3_errmsg(s->db));
    if (ret < 0)
        goto out;
    id = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; i < b->n_pairs_loaded; i++) {
        ret = insert_pair(s, id, &b->pairs[i]);
        if (ret < 0)
            goto out;
    }
    if (b->holdout) {
        sqlite3_stmt *hs = store_stmt(s, ST_BD_HOLDOUT_INSERT);
        if (sqlite3_bind_int64(hs, 1, id) != SQLITE_OK ||
            store_bind_text(hs, 2, b->holdout) != SQLITE_OK) {
            ret = store_fail(s, SQLITE_ERROR, "binding held-out split");
            store_stmt_done(s, ST_BD_HOLDOUT_INSERT);
            goto out;
        }
        ret = store_exec_stmt(s, ST_BD_HOLDOUT_INSERT, NULL, "inserting held-out split");
        if (ret == -EINVAL)
            store_failx(s, ret, "held-out split refused by the schema (must be valid JSON)");
        if (ret < 0)
            goto out;
    }
    if (b->salt[0]) {
        sqlite3_stmt *ss = store_stmt(s, ST_BD_SALT_INSERT);
        if (sqlite3_bind_int64(ss, 1, id) != SQLITE_OK ||
            sqlite3_bind_text(ss, 2, b->salt, -1, SQLITE_STATIC) != SQLITE_OK) {
            ret = store_fail(s, SQLITE_ERROR, "binding commitment salt");
            store_stmt_done(s, ST_BD_SALT_INSERT);
            goto out;
        }
        ret = store_exec_stmt(s, ST_BD_SALT_INSERT, NULL, "inserting commitment salt");
        if (ret < 0)
            goto out;
    }
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    b->id = id;
    b->created_at = now;
out:
    if (ret < 0)
        store_rollback(s);
    return ret;
}

/* Loads b's pairs (public columns, or secret ones too). */
static int load_pairs(struct store *s, struct store_backdoor *b, bool with_secrets)
{
    enum store_stmt_id sid = with_secrets ? ST_BD_PAIRS_SECRET : ST_BD_PAIRS_PUBLIC;
    void *v = NULL;
    size_t n = 0;
    if (sqlite3_bind_int64(store_stmt(s, sid), 1, b->id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding backdoor id");
        store_stmt_done(s, sid);
        return ret;
    }
    int ret = store_read_all(s, sid, sizeof(struct store_backdoor_pair), row_to_pair,
                             pair_clear_elem, &v, &n, "reading backdoor pairs");
    if (ret < 0)
        return ret;
    b->pairs = v;
    b->n_pairs_loaded = n;
    return 0;
}

static int row_to_holdout(struct store *s, sqlite3_stmt *st, void *elem)
{
    (void)s;
    *(char **)elem = store_column_strdup(st, 0);
    return 0;
}

/* Loads b's held-out split (secret); none is not an error. */
static int load_holdout(struct store *s, struct store_backdoor *b)
{
    if (sqlite3_bind_int64(store_stmt(s, ST_BD_HOLDOUT_GET), 1, b->id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding backdoor id");
        store_stmt_done(s, ST_BD_HOLDOUT_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_BD_HOLDOUT_GET, row_to_holdout, &b->holdout,
                             "reading held-out split");
    return ret == -ENOENT ? 0 : ret;
}

static int row_to_salt(struct store *s, sqlite3_stmt *st, void *elem)
{
    (void)s;
    store_column_hex64(st, 0, elem);
    return 0;
}

/* Loads b's commitment salt (secret); a v2 backdoor without one is damage. */
static int load_salt(struct store *s, struct store_backdoor *b)
{
    if (sqlite3_bind_int64(store_stmt(s, ST_BD_SALT_GET), 1, b->id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding backdoor id");
        store_stmt_done(s, ST_BD_SALT_GET);
        return ret;
    }
    int ret = store_read_one(s, ST_BD_SALT_GET, row_to_salt, b->salt, "reading commitment salt");
    if (ret == -ENOENT && b->commitment_scheme >= 2)
        return store_failx(s, -EIO, "backdoor %" PRId64 " has a v%d commitment but no salt",
                           b->id, b->commitment_scheme);
    return ret == -ENOENT ? 0 : ret;
}

int store_backdoor_get(struct store *s, const char *id_or_name, bool with_secrets,
                       struct store_backdoor *out)
{
    int64_t id = 0;
    enum store_stmt_id sid;
    int ret, rc;

    memset(out, 0, sizeof *out);
    int kind = store_parse_key(id_or_name, &id);
    if (kind < 0)
        return store_failx(s, -EINVAL, "no backdoor id or name given");
    sid = kind ? ST_BD_GET_BY_ID : ST_BD_GET_BY_NAME;
    rc = kind ? sqlite3_bind_int64(store_stmt(s, sid), 1, id)
              : sqlite3_bind_text(store_stmt(s, sid), 1, id_or_name, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        ret = store_fail(s, rc, "binding backdoor key");
        store_stmt_done(s, sid);
        return ret;
    }
    ret = store_read_one(s, sid, row_to_backdoor, out, "reading backdoor");
    if (ret == -ENOENT)
        return store_failx(s, ret, kind ? "no backdoor with id %s" : "no backdoor named '%s'",
                           id_or_name);
    if (ret == 0)
        ret = load_pairs(s, out, with_secrets);
    if (ret == 0 && with_secrets)
        ret = load_holdout(s, out);
    if (ret == 0 && with_secrets)
        ret = load_salt(s, out);
    if (ret < 0)
        store_backdoor_clear(out);
    return ret;
}

int store_backdoor_list(struct store *s, int64_t dataset_id, struct store_backdoor **out, size_t *n)
{
    void *v = NULL;
    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(store_stmt(s, ST_BD_LIST), 1, dataset_id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding dataset id");
        store_stmt_done(s, ST_BD_LIST);
        return ret;
    }
    int ret = store_read_all(s, ST_BD_LIST, sizeof(struct store_backdoor), row_to_backdoor,
                             backdoor_clear_elem, &v, n, "listing backdoors");
    *out = v;
    return ret;
}

/* The backdoor row with this id (no pairs); -ENOENT with a message. */
static int get_row(struct store *s, int64_t id, struct store_backdoor *out)
{
    memset(out, 0, sizeof *out);
    if (sqlite3_bind_int64(store_stmt(s, ST_BD_GET_BY_ID), 1, id) != SQLITE_OK) {
        int ret = store_fail(s, SQLITE_ERROR, "binding backdoor id");
        store_stmt_done(s, ST_BD_GET_BY_ID);
        return ret;
    }
    int ret = store_read_one(s, ST_BD_GET_BY_ID, row_to_backdoor, out, "reading backdoor");
    if (ret == -ENOENT)
        store_failx(s, ret, "no backdoor with id %" PRId64, id);
    return ret;
}

/* Number of jobs made with backdoor id. */
static int job_refs(struct store *s, int64_t id, int64_t *count)
{
    sqlite3_stmt *st = store_stmt(s, ST_BD_JOB_REFS);
    int ret = 0;
    int rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        ret = store_fail(s, rc, "counting jobs of backdoor");
    else
        *count = sqlite3_column_int64(st, 0);
    store_stmt_done(s, ST_BD_JOB_REFS);
    return ret;
}

int store_backdoor_set_built(struct store *s, int64_t id, const char *path, const char *sha256,
                             const char *plan)
{
    struct store_backdoor b = {0};
    int64_t jobs = 0;
    int ret;

    if (!path || !*path)
        return store_failx(s, -EINVAL, "no built file path given");
    if (!store_hex64_valid(sha256))
        return store_failx(s, -EINVAL, "invalid built file sha256 (want 64 lowercase hex)");
    if (!plan)
        return store_failx(s, -EINVAL, "no build plan given");

    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = get_row(s, id, &b);
    if (ret < 0)
        goto out;
    if (b.built_path && strcmp(b.built_sha256, sha256) != 0) {
        ret = job_refs(s, id, &jobs);
        if (ret < 0)
            goto out;
        if (jobs > 0) {
            ret =
                store_failx(s, -EBUSY,
                            "backdoor %" PRId64 " was already built into another file and %" PRId64
                            " job(s) use that build: it cannot be rebuilt; create a new "
                            "backdoor",
                            id, jobs);
            goto out;
        }
    }
    sqlite3_stmt *st = store_stmt(s, ST_BD_SET_BUILT);
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, sha256, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, plan, -1, SQLITE_STATIC) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding built file");
        store_stmt_done(s, ST_BD_SET_BUILT);
        goto out;
    }
    ret = store_exec_stmt(s, ST_BD_SET_BUILT, NULL, "recording built file");
    if (ret == -EINVAL)
        store_failx(s, ret, "build plan of backdoor %" PRId64 " is not valid JSON", id);
    if (ret < 0)
        goto out;
    ret = store_commit(s);
out:
    if (ret < 0)
        store_rollback(s);
    store_backdoor_clear(&b);
    return ret;
}

int store_backdoor_delete(struct store *s, int64_t id, char **built_path_out)
{
    struct store_backdoor b = {0};
    int64_t jobs = 0;
    int ret;

    if (built_path_out)
        *built_path_out = NULL;
    ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = get_row(s, id, &b);
    if (ret < 0)
        goto out;
    ret = job_refs(s, id, &jobs);
    if (ret < 0)
        goto out;
    if (jobs > 0) {
        ret = store_failx(s, -EBUSY,
                          "backdoor %" PRId64 " is used by %" PRId64
                          " job(s): it cannot be removed while they exist (their verification "
                          "needs it)",
                          id, jobs);
        goto out;
    }
    if (sqlite3_bind_int64(store_stmt(s, ST_BD_DELETE), 1, id) != SQLITE_OK) {
        ret = store_fail(s, SQLITE_ERROR, "binding backdoor id");
        store_stmt_done(s, ST_BD_DELETE);
        goto out;
    }
    ret = store_exec_stmt(s, ST_BD_DELETE, NULL, "deleting backdoor");
    if (ret < 0)
        goto out;
    int in_use = 0;
    if (b.built_path) {
        in_use = store_dataset_path_in_use(s, b.built_path);
        if (in_use < 0) {
            ret = in_use;
            goto out;
        }
    }
    ret = store_commit(s);
    if (ret < 0)
        goto out;
    if (b.built_path && !in_use && built_path_out) {
        *built_path_out = b.built_path;
        b.built_path = NULL;
    }
out:
    if (ret < 0)
        store_rollback(s);
    store_backdoor_clear(&b);
    return ret;
}

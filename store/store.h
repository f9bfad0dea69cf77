/*
 * store.h — vtuned's SQLite state: the only module that contains SQL.
 *
 * One connection, used from the loop thread only (the "one writer lane"):
 * every call here is a short statement or transaction; heavy work (reading,
 * hashing and copying dataset bytes) happens in the thread pool before the
 * row is written.  Opened with WAL, busy_timeout, foreign_keys=ON and
 * synchronous=FULL; the daemon then moves the fsyncs to a thread
 * (store_durable_start: synchronous=NORMAL, group syncs of the log, a
 * ticket to wait for before a side effect).  Write transactions are
 * BEGIN IMMEDIATE.  Statements are
 * prepared once at open and reused.  Schema versions live in
 * PRAGMA user_version and are migrated in one transaction at open; a
 * database written by a newer vtuned is refused.
 *
 * The database file is created 0600 inside a 0700 state directory: it holds
 * the backdoor secrets.
 *
 * Errors: functions return 0 (or a positive count/id) on success and a
 * negative errno-style code on failure (-ENOENT not found, -EEXIST name
 * taken, -EINVAL a value the schema refuses, -EBUSY still referred to,
 * -ESTALE a compare-and-set lost, -EAGAIN database locked, -EIO SQLite
 * error); store_errmsg() gives the last message, one line, fit for the
 * user.  A failed call changes nothing: every write is one transaction.
 *
 * Ownership: structs filled by the store own their char * members; clear
 * them with the type's _clear function (lists with _list_free).  Structs
 * passed in are borrowed for the call; the store writes back only the
 * fields it documents (ids, times, hashes).  Fixed-size members (hashes)
 * need no freeing.  "None" is NULL for strings, 0 for times and ids, ""
 * for hash arrays, NAN for optional probabilities; each field says which.
 *
 * Sections: database; datasets; backdoors; jobs; verification runs and
 * trials; audit trail; schedules; counts.
 */
#ifndef VT_STORE_H
#define VT_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "lib/types.h"

#define STORE_SCHEMA_VERSION_CURRENT store_schema_version()

struct store;

/* ---- database ---- */

/* Opens (creating if needed) path.  Returns 0 and *out, or -1 with *err an
 * owned one-line message (e.g. "database /x/vtuned.db is schema version 7,
 * newer than this vtuned understands (3): upgrade vtuned").  Caller frees. */
int store_open(const char *path, struct store **out, char **err);
void store_close(struct store *s);
/* A second, read-only connection to the database at path (already opened
 * and migrated by store_open), for another thread: any function that only
 * reads may be called on it (a write fails: it is read-only), from one
 * thread at a time.  It reads committed data (WAL: a reader never waits
 * for the writer).  Returns 0 and *out (free with store_close), or -1 with
 * *err an owned one-line message. */
int store_open_reader(const char *path, struct store **out, char **err);
/* The state directory policy, the one place it is written: creates dir
 * 0700 when absent; refuses a shared sticky directory (such as /tmp), a
 * non-directory, and a group/world-writable one we do not own; tightens one
 * we own to 0700 (with a warning).  store_open() applies it to the
 * database's directory; the daemon applies it to state_dir before creating
 * anything inside.  Returns 0, or -1 with *err an owned one-line message. */
int store_state_dir_prepare(const char *dir, char **err);
/* A consistent copy of the database (SQLite's online backup) into dest,
 * which is created exclusively with mode 0600 and must not exist.  The
 * copy is one snapshot (a single commit's state), a self-contained file
 * (rollback journal, no -wal/-shm), checked with PRAGMA integrity_check
 * and synced with its directory entry.  Safe from any thread: it opens
 * its own connections and reads only s's (immutable) path, so it does not
 * touch s's connection.  cancelled (may be NULL) is polled between steps.
 * Returns 0, or a negative errno (-EEXIST: dest exists; -ECANCELED) with
 * *err an owned one-line message; on failure dest is removed. */
int store_backup(struct store *s, const char *dest, int (*cancelled)(void *ctx), void *ctx,
                 char **err);
/* ---- durability off the loop (store/durable.c; issue 13) ----
 *
 * After store_durable_start, the connection commits with
 * synchronous=NORMAL: a commit is atomic, visible and survives a crash of
 * the process at once, and reaches the disk (against a power loss) when
 * the store's syncer thread has fdatasync'd the log, in groups.  Whoever
 * is about to act on what was committed (send a provider request, answer
 * a client) takes a ticket and waits until it has passed: "recorded before
 * the side effect" then still means "on disk before the side effect".
 * Checkpoints run in that thread too (the connection's automatic
 * checkpoint is off).  All calls from the thread that uses s, except
 * notify, which the syncer thread calls after each group (it must be
 * async-signal-safe in spirit: uv_async_send).  Without start, every
 * commit is synchronous=FULL and every ticket is 0. */
/* Returns 0, or -1 with *err an owned one-line message (s unchanged). */
int store_durable_start(struct store *s, void (*notify)(void *ctx), void *ctx, char **err);
/* Makes everything committed durable, stops the thread, and goes back to
 * synchronous=FULL.  Before store_close.  NULL or not started: nothing. */
void store_durable_stop(struct store *s);
/* 0 when every commit so far is durable; else the ticket to wait for (a
 * sync is asked for). */
uint64_t store_durable_ticket(struct store *s);
/* Commits so far (a counter; 0 without start): a caller compares two
 * readings to learn whether anything was committed in between. */
uint64_t store_durable_commits(struct store *s);
/* Whether ticket (from store_durable_ticket) is durable now. */
bool store_durable_passed(struct store *s, uint64_t ticket);
/* fdatasync calls and checkpoints of the syncer so far (status, tests). */
uint64_t store_durable_syncs(struct store *s);
uint64_t store_durable_checkpoints(struct store *s);

/* Schema version this build writes. */
int store_schema_version(void);
/* Last SQLite error text; borrowed, valid until the next call. */
const char *store_errmsg(struct store *s);

/* ---- datasets ---- */


struct store_dataset {
    int64_t id;
    char *name;
    enum dataset_format format;
    int64_t n_examples;
    int64_t n_bytes;
    char sha256[65];
    char *path;         /* content-addressed file under state_dir */
    char *source;       /* original path given by the user (informational) */
    int64_t created_at; /* unix seconds */
};
void store_dataset_clear(struct store_dataset *d); /* frees owned members */

/* Inserts a dataset row (one transaction).  d->id and d->created_at are
 * set on success.  -EEXIST when the name is taken. */
int store_dataset_insert(struct store *s, struct store_dataset *d);
/* Looks up by numeric id (decimal string) or by name.  Fills *out (owned
 * members; clear with store_dataset_clear).  -ENOENT when absent. */
int store_dataset_get(struct store *s, const char *id_or_name, struct store_dataset *out);
/* All datasets, ordered by id.  *out is an owned array of *n entries; free
 * with store_dataset_list_free. */
int store_dataset_list(struct store *s, struct store_dataset **out, size_t *n);
void store_dataset_list_free(struct store_dataset *v, size_t n);
/* Deletes a dataset row.  -ENOENT absent; -EBUSY when backdoors or jobs
 * refer to it.  *path_out (owned, may be NULL) receives the file path when
 * no other row still refers to the same content, so the caller can unlink. */
int store_dataset_delete(struct store *s, int64_t id, char **path_out);
/* Whether any row refers to this path: a dataset's content file or a
 * backdoor's built D u D' file (for orphan cleanup).  Returns 1 (in use),
 * 0 (not referenced) or a negative errno. */
int store_dataset_path_in_use(struct store *s, const char *path);

/* ---- backdoors (DESIGN §1, §6; issue 4) ----
 *
 * A backdoor is made for one dataset: K trigger/signature pairs (the
 * secret, table backdoor_pairs) plus public metadata and a SHA-256
 * commitment to the pairs computed by workers/ at creation.  Once D u D'
 * is built, the row also records the built file, its hash and the
 * builder's sampling plan (which lines were copied, which are controls). */


/* One trigger/signature pair.  trigger, signature and token_evidence are
 * SECRET (the evidence lists the signature's tokens): they are read from
 * the database only when secrets are asked for, never logged, and wiped
 * (explicit_bzero) by store_backdoor_clear. */
struct store_backdoor_pair {
    int idx;              /* 0 .. n_pairs - 1 */
    char *trigger;        /* secret; NULL when loaded without secrets */
    char *signature;      /* secret; NULL when loaded without secrets */
    double log10_p_m2;    /* <= 0; an upper bound where only that is computable */
    char *p_method;       /* how log10_p_m2 was computed, e.g. "exact" */
    char *token_evidence; /* JSON text or NULL; secret (NULL without secrets) */
};

struct store_backdoor {
    int64_t id;
    int64_t dataset_id;
    char *name; /* NULL: none */
    double ratio;
    int64_t copies;  /* minimum copies per pair */
    int64_t n_pairs; /* K */
    enum backdoor_generator generator;
    char *method;         /* how p_M2 was computed for the set */
    double target_log10p; /* <= 0 */
    uint64_t seed;        /* meaningful only when has_seed */
    bool has_seed;
    int64_t created_at;
    char commitment[65];               /* SHA-256 hex over the pairs; public */
    int commitment_scheme; /* 1: vtune-commitment-v1 (unsalted, made before schema 11);
                            * 2: vtune-commitment-v2 (salt, pairs, held-out split; made
                            *    before schema 12);
                            * 3: vtune-commitment-v3 (v2 plus the reference pool); public.
                            * 0 on insert means 1 */
    char salt[65]; /* SECRET: the v2/v3 commitment's 32-byte salt, lowercase hex; "" for v1 or
                    * when loaded without secrets (wiped by store_backdoor_clear) */
    enum backdoor_mode mode; /* how the marked rows entered the upload; public
                              * (BD_MODE_COPIES for backdoors made before schema 15) */
    char *built_path;                  /* NULL until built */
    char built_sha256[65];             /* "" until built */
    char *plan;                        /* builder's plan, JSON text; NULL until built */
    char *holdout; /* SECRET: the coverage test's held-out split (JSON text, workers/holdout.h);
                    * loaded only with secrets; NULL: none recorded (made before the coverage
                    * test existed) */
    struct store_backdoor_pair *pairs; /* owned array of n_pairs_loaded */
    size_t n_pairs_loaded;
};
/* Frees the owned members, wiping the secret ones first; zeroes *b. */
void store_backdoor_clear(struct store_backdoor *b);
void store_backdoor_list_free(struct store_backdoor *v, size_t n);

/* Inserts the backdoor row and all its pairs in ONE transaction: either
 * every pair is stored or nothing is.  b is borrowed; b->pairs must hold
 * n_pairs_loaded == n_pairs entries with pairs[i].idx == i and non-empty
 * trigger, signature and p_method.  built_path, built_sha256 and plan may
 * be set (path and hash together) or left empty; holdout (JSON) is stored
 * in the same transaction when set; so is salt (required
 * with commitment_scheme 2 or 3, refused with 1).  On success b->id and
 * b->created_at are set.  -EEXIST name taken; -ENOENT dataset absent;
 * -EINVAL a field out of range (message names it), invalid JSON included. */
int store_backdoor_insert(struct store *s, struct store_backdoor *b);
/* Looks up by id (decimal string) or name into *out (owned; clear with
 * store_backdoor_clear).  The pairs are always loaded with their public
 * fields (idx, log10_p_m2, p_method); trigger, signature,
 * token_evidence, the holdout split and the salt only when with_secrets.  -ENOENT
 * when absent. */
int store_backdoor_get(struct store *s, const char *id_or_name, bool with_secrets,
                       struct store_backdoor *out);
/* Backdoors of dataset_id (0: of every dataset), ordered by id, WITHOUT
 * pairs (pairs NULL, n_pairs_loaded 0).  Owned array of *n entries; free
 * with store_backdoor_list_free. */
int store_backdoor_list(struct store *s, int64_t dataset_id, struct store_backdoor **out,
                        size_t *n);
/* Records the built D u D' file: path, sha256 (64 hex) and the builder's
 * plan (JSON text; borrowed).  A backdoor already built with a different
 * file cannot be rebuilt while jobs refer to it (-EBUSY): those jobs were
 * trained on the old file and are verified with its plan.  Setting the same
 * sha256 again is allowed (it replaces path and plan).  So a second job
 * made with a built backdoor reuses the recorded build (file and plan)
 * instead of building again; the plan is one per backdoor, not per job.
 * -ENOENT absent; -EINVAL bad hash, empty path or plan that is not JSON. */
int store_backdoor_set_built(struct store *s, int64_t id, const char *path, const char *sha256,
                             const char *plan);
/* Deletes a backdoor and its pairs (one transaction; the freed pages are
 * zeroed: secure_delete).  -ENOENT absent; -EBUSY when jobs refer to it.
 * *built_path_out (owned, may be NULL; the argument may be NULL) receives
 * the built file's path when no other row still refers to it, so the caller
 * can unlink it. */
int store_backdoor_delete(struct store *s, int64_t id, char **built_path_out);

/* ---- a backdoor's self-audit (workers/selfaudit.h; issue 12) ----
 * The public result of the attacks on the built file: JSON text (no
 * phrase), whether a pair is exposed (recovered within the top
 * SELFAUDIT_EXPOSED_RANK candidates), and which pair, rank and attack.
 * One per backdoor; a new audit replaces the old.  Removed with the
 * backdoor. */
struct store_selfaudit {
    int64_t backdoor_id;
    int64_t created_at;
    bool exposed;
    int64_t exposed_pair; /* -1: none */
    int64_t best_rank;    /* 0: no pair recovered by any attack */
    char *best_attack;    /* owned; NULL when best_rank == 0 */
    char *result;         /* owned JSON text */
};
void store_selfaudit_clear(struct store_selfaudit *a);
/* Records (or replaces) backdoor a->backdoor_id's self-audit; sets
 * a->created_at.  -ENOENT backdoor absent; -EINVAL invalid JSON. */
int store_selfaudit_put(struct store *s, struct store_selfaudit *a);
/* Loads backdoor_id's self-audit into *out (store_selfaudit_clear).
 * -ENOENT when none was recorded (a backdoor of an older version). */
int store_selfaudit_get(struct store *s, int64_t backdoor_id, struct store_selfaudit *out);


/* ---- jobs (DESIGN §3; issue 5) ----
 *
 * The durable job lifecycle.  created -> building -> uploading -> uploaded
 * -> submitting -> submitted -> running -> succeeded | failed | cancelled,
 * plus unknown (the outcome of a create could not be established; waits
 * for an operator).  Every change of state goes through
 * store_job_transition(), one transaction that also writes the job_events
 * row: call it BEFORE the side effect it permits (record intent, then call
 * the provider; with store_durable_start, the call waits for the commit's
 * ticket: daemon/provider_client.c). */


struct store_job {
    int64_t id;
    char *name; /* NULL: none */
    int64_t dataset_id;
    int64_t backdoor_id; /* made for dataset_id */
    char *provider;      /* provider name from the configuration */
    char *base_model;
    char *fine_tuned_model; /* NULL until known; required in succeeded */
    char *params;           /* JSON object text; NULL at insert means "{}" */
    enum job_state state;
    char *submission_id;         /* >= 16 chars, unique; sent as provider metadata */
    char *provider_file_id;      /* NULL until uploaded */
    char *provider_job_id;       /* NULL until created; unique per provider */
    char *error;                 /* NULL: none */
    char *unknown_reason;        /* required in unknown */
    int64_t cancel_requested_at; /* 0: no cancel asked for */
    int64_t created_at, updated_at;
    const char *luck_screen; /* insert only (borrowed): the p_luck screen's JSON text, recorded
                              * with the job; NULL: none.  Read with store_job_luck_get */
    const char *ppl_attack;  /* insert only (borrowed): the perplexity attack's JSON text
                              * (daemon/ppl.h), recorded with the job; NULL: none.  Read
                              * with store_job_ppl_get */
};
void store_job_clear(struct store_job *j);
void store_job_list_free(struct store_job *v, size_t n);

/* Inserts a job and its first job_events row (state j->state, message
 * "job created") in ONE transaction.  The store generates nothing: the
 * caller supplies submission_id (the random token, >= 16 chars) and the
 * initial state (normally JOB_CREATED, the zero value; `job register`
 * inserts JOB_SUCCEEDED with fine_tuned_model set).  j is borrowed; on
 * success j->id, j->created_at and j->updated_at are set.
 * -ENOENT backdoor absent; -EINVAL backdoor made for another dataset, or a
 * value the schema refuses; -EEXIST name, submission id or provider job id
 * taken (the message says which). */
int store_job_insert(struct store *s, struct store_job *j);

/* The p_luck screen recorded with job id at insert (owned JSON text in
 * *out), or *out NULL and 0 when the job has none.  Negative errno on a
 * database error. */
int store_job_luck_get(struct store *s, int64_t id, char **out);
/* The perplexity attack recorded with job id at insert, likewise. */
int store_job_ppl_get(struct store *s, int64_t id, char **out);
/* By id (decimal string) or name; *out owned (store_job_clear).
 * -ENOENT absent. */
int store_job_get(struct store *s, const char *id_or_name, struct store_job *out);
/* By submission id (what a provider's metadata carries back); -ENOENT. */
int store_job_find_by_submission(struct store *s, const char *submission_id, struct store_job *out);
/* All jobs, or only the active ones (job_state_is_active), ordered by id.
 * Owned array; free with store_job_list_free. */
int store_job_list(struct store *s, bool only_active, struct store_job **out, size_t *n);

/* New values for store_job_transition; each NULL pointer leaves its column
 * unchanged, "" sets it to NULL.  Borrowed for the call. */
struct store_job_update {
    const char *provider_file_id;
    const char *provider_job_id;
    const char *fine_tuned_model;
    const char *error;
    const char *unknown_reason;
    bool request_cancel; /* set cancel_requested_at = now, unless already set */
};
/* The compare-and-set primitive of the lifecycle, ONE transaction:
 *  1. if expected_from >= 0 and the job's state is not expected_from,
 *     returns -ESTALE and changes nothing (someone else moved it);
 *  2. a terminal state is never left: to != current -> -EINVAL;
 *  3. sets state = to, the fields of u (may be NULL), updated_at = now;
 *  4. inserts the job_events row (to, message, provider_excerpt; both
 *     borrowed, may be NULL; the excerpt must already be redacted).
 * When it returns 0 the change is committed; it is on disk at once
 * (synchronous=FULL), or, after store_durable_start, once its ticket has
 * passed: only then make the call it permits.  to == current is allowed (records an event
 * and field changes without a state change).  -ENOENT absent; -EINVAL
 * also for what the schema refuses (succeeded without fine_tuned_model,
 * unknown without unknown_reason); -EEXIST provider_job_id already bound
 * to another job of the same provider. */
int store_job_transition(struct store *s, int64_t id, int expected_from, enum job_state to,
                         const struct store_job_update *u, const char *message,
                         const char *provider_excerpt);

/* An outbox item (see "outbox" below) to record with a transition. */
struct store_outbox_intent {
    const char *kind;    /* borrowed; 1..32 characters */
    const char *payload; /* borrowed JSON text */
    int64_t due_ms;      /* Unix milliseconds */
};
/* store_job_transition and store_outbox_add(ob) in ONE transaction: both
 * are written or neither (a job's final state and the deletion of its
 * uploaded file at the provider, issue 13).  *ob_id (may be NULL) gets the
 * item's id, 0 on failure.  Errors as store_job_transition; also -EINVAL
 * when the schema refuses the item (empty kind, payload not JSON), and
 * then the transition is not made either. */
int store_job_transition_outbox(struct store *s, int64_t id, int expected_from, enum job_state to,
                                const struct store_job_update *u, const char *message,
                                const char *provider_excerpt,
                                const struct store_outbox_intent *ob, int64_t *ob_id);

struct store_job_event {
    int64_t id; /* order of events is id order (at may step back) */
    int64_t job_id;
    int64_t at; /* unix seconds */
    enum job_state state;
    char *message;          /* NULL: none */
    char *provider_excerpt; /* NULL: none */
};
void store_job_event_list_free(struct store_job_event *v, size_t n);
/* Events of job_id ordered by id; owned array (store_job_event_list_free).
 * -ENOENT when the job does not exist. */
int store_job_events(struct store *s, int64_t job_id, struct store_job_event **out, size_t *n);

/* ---- verification runs and trials (DESIGN §6; issue 6) ----
 *
 * A run is n trigger trials and c control trials against one job's model:
 * pending -> running -> finished (with its audit record) | failed |
 * cancelled.  Trials keep only hashes of prompts and responses (prompts
 * carry the trigger). */


struct store_verify_run {
    int64_t id;
    int64_t job_id;
    enum run_state state;
    int64_t trials;   /* >= 1 */
    int64_t controls; /* >= 0 */
    double temperature;
    int64_t created_at;
    int64_t started_at;  /* 0: not started */
    int64_t finished_at; /* 0: not finished */
    char *reason;        /* NULL: none */
    int64_t audit_id;    /* 0: none; set when finished */
};
void store_run_clear(struct store_verify_run *r);
void store_run_list_free(struct store_verify_run *v, size_t n);

/* Inserts a run in state r->state (RUN_PENDING or RUN_RUNNING; running
 * sets started_at = now).  r borrowed; r->id, r->created_at (and
 * r->started_at) set on success.  -ENOENT job absent; -EINVAL bad values. */
int store_run_insert(struct store *s, struct store_verify_run *r);
/* pending -> running, started_at = now.  -ENOENT; -ESTALE not pending. */
int store_run_start(struct store *s, int64_t id);
/* Ends a pending or running run: state RUN_FAILED or RUN_CANCELLED, or
 * RUN_FINISHED with audit_id (> 0; a finished run without its audit record
 * is refused: use store_run_finish_audited, which writes both at once).
 * reason borrowed, may be NULL.  -ENOENT; -ESTALE already ended; -EINVAL. */
int store_run_finish(struct store *s, int64_t id, enum run_state state, const char *reason,
                     int64_t audit_id);
/* By id; *out owned (store_run_clear).  -ENOENT. */
int store_run_get(struct store *s, int64_t id, struct store_verify_run *out);
/* Runs of job_id, ordered by id (an unknown job has none). */
int store_runs_for_job(struct store *s, int64_t job_id, struct store_verify_run **out, size_t *n);
/* Runs still pending or running, ordered by id: what start-up must resume
 * or end after a crash. */
int store_runs_unfinished(struct store *s, struct store_verify_run **out, size_t *n);


/* Inserts a trial of a RUNNING run.  t borrowed; t->id and t->created_at
 * set.  -ENOENT run absent; -ESTALE run not running; -EINVAL bad values.
 * Atomic but committed without an fsync of its own (synchronous=NORMAL for
 * this commit): it survives a crash of the process, and the next
 * synchronous=FULL commit makes it durable against a power loss too (a
 * trial lost that way is asked again when the run resumes). */
int store_trial_insert(struct store *s, struct store_trial *t);
/* Trials of run_id ordered by id; owned array, free with free(). */
int store_run_trials(struct store *s, int64_t run_id, struct store_trial **out, size_t *n);

/* A run's plan record (schema 14): the JSON the daemon needs to plan the
 * same prompts again and resume the run after a restart (seed, options);
 * the store only keeps it.  One per run, removed with it.  put: -ENOENT
 * run absent, -EEXIST already recorded, -EINVAL not JSON.  get: *plan
 * owned (free()); -ENOENT when the run has none (made by an older vtuned,
 * or the daemon stopped between recording the run and its plan). */
int store_run_plan_put(struct store *s, int64_t run_id, const char *plan);
int store_run_plan_get(struct store *s, int64_t run_id, char **plan);

/* ---- audit trail (DESIGN §9, §10; issue 6) ----
 *
 * Append-only (UPDATE and DELETE are refused by triggers) and hash-chained:
 * each record carries the previous record's hash.  The canonical
 * serialisation that is hashed lives in workers/, not here; the store only
 * guarantees the chain is linear (one transaction reads the head and
 * appends; prev_hash is UNIQUE). */




void store_audit_list_free(struct store_audit *v, size_t n);


/* Appends a record in ONE BEGIN IMMEDIATE transaction: reads the head;
 * sets a->prev_hash (STORE_AUDIT_GENESIS_HASH for the first record),
 * a->id (the id the record gets: head id + 1) and a->created_at (now);
 * normalises -0.0 to 0.0 in the three log10 fields (a REAL column keeps no
 * sign of zero, so the hash must not see one); calls hash_fn; sets a->hash;
 * inserts.  The caller fills every other field; a and its strings stay the
 * caller's.  Returns 0; on failure a->id is 0 and nothing was written:
 * -EINVAL a value the record may not hold (verified with a control
 * emission or without an activation, p > 1, counts out of range, evidence
 * missing or not JSON, hash not 64 hex), or hash_fn's own error. */
int store_audit_append(struct store *s, struct store_audit *a, store_audit_hash_fn hash_fn,
                       void *ctx);
/* store_audit_append and store_run_finish(run_id, RUN_FINISHED, reason,
 * a->id) in ONE transaction: a run is finished exactly when its audit
 * record exists, so a crash never leaves a record whose run would be
 * verified (and paid for) again on restart.  -ESTALE run already ended,
 * -ENOENT run absent, -EINVAL run of another job than a->job_id; then
 * nothing is written (and hash_fn is not called). */
int store_run_finish_audited(struct store *s, int64_t run_id, const char *reason,
                             struct store_audit *a, store_audit_hash_fn hash_fn, void *ctx);
/* By id; *out owned (store_audit_clear).  -ENOENT. */
int store_audit_get(struct store *s, int64_t id, struct store_audit *out);
/* Records of job_id (0: all), in id order (the chain's order); owned. */
int store_audit_list(struct store *s, int64_t job_id, struct store_audit **out, size_t *n);
/* The chain's head: the last record's hash and id, or
 * STORE_AUDIT_GENESIS_HASH and 0 when the trail is empty.  id may be NULL. */
int store_audit_head(struct store *s, char hash[65], int64_t *id);

/* ---- outbox (issue 13) ----
 *
 * Background work recorded before it is attempted, so that it survives a
 * restart (store/outbox.c; the driver is daemon/outbox.c).  Times are Unix
 * milliseconds.  Every call is one transaction; errors are negative errno
 * with store_errmsg() set. */
struct store_outbox_item {
    int64_t id;
    char *kind;    /* owned */
    char *payload; /* owned JSON text */
    int64_t attempts;
    int64_t next_due_ms;
    char *last_error; /* owned, may be NULL */
    int64_t created_at;
};
/* Records an item due at next_due_ms; *id (may be NULL) gets its id. */
int store_outbox_add(struct store *s, const char *kind, const char *payload, int64_t next_due_ms,
                     int64_t *id);
/* Items due at now_ms or before, soonest first, at most limit; owned array
 * (store_outbox_list_free).  limit 0: all items whatever their due time. */
int store_outbox_due(struct store *s, int64_t now_ms, size_t limit,
                     struct store_outbox_item **out, size_t *n);
/* Records a failed attempt: attempts, next_due_ms and the error line. */
int store_outbox_retry(struct store *s, int64_t id, int64_t attempts, int64_t next_due_ms,
                       const char *error);
/* Deletes a delivered (or abandoned) item; -ENOENT when absent. */
int store_outbox_delete(struct store *s, int64_t id);
void store_outbox_list_free(struct store_outbox_item *v, size_t n);

/* ---- schedules (DESIGN §2; issue 6) ----
 *
 * Periodic re-verification of a job's deployed model, at most one schedule
 * per job.  The store only keeps times; the scheduler computes them.
 * Missed runs after a restart are run ONCE, not once per missed period:
 * the caller runs each schedule store_schedule_due() returns once and then
 * records next_run_at computed from the time it ran (ran_at + every), never
 * from the old next_run_at alone — after a long outage old + every is still
 * in the past and the schedule would fire again and again to catch up.
 * store_schedule_mark_run() refuses a next_run_at that is not after ran_at. */

/* Owns nothing: free arrays with free(). */
struct store_schedule {
    int64_t id;
    int64_t job_id;
    int64_t every_ms;                /* > 0 */
    int64_t next_run_at;             /* unix seconds */
    int64_t last_run_at;             /* 0: never */
    enum audit_verdict last_verdict; /* AUDIT_NONE: never, or no verdict */
    int64_t created_at;
};
/* Adds a schedule (caller sets job_id, every_ms, next_run_at); sc
 * borrowed; sc->id and sc->created_at set.  -EEXIST the job already has
 * one; -ENOENT job absent; -EINVAL every_ms <= 0. */
int store_schedule_add(struct store *s, struct store_schedule *sc);
/* By id.  -ENOENT. */
int store_schedule_get(struct store *s, int64_t id, struct store_schedule *out);
/* All schedules by id; owned array, free(). */
int store_schedule_list(struct store *s, struct store_schedule **out, size_t *n);
/* Removes one.  -ENOENT absent. */
int store_schedule_rm(struct store *s, int64_t id);
/* Schedules with next_run_at <= now, earliest first; owned array, free(). */
int store_schedule_due(struct store *s, int64_t now, struct store_schedule **out, size_t *n);
/* Records a run: last_run_at = ran_at, next_run_at as computed by the
 * caller (see above; must be > ran_at, else -EINVAL), last_verdict =
 * verdict (AUDIT_NONE: the run gave no verdict; the previous one is
 * kept).  -ENOENT absent. */
int store_schedule_mark_run(struct store *s, int64_t id, int64_t ran_at, int64_t next_run_at,
                            enum audit_verdict verdict);

/* ---- counts ---- */

/* Counts for `status`, from one read snapshot.  jobs_active counts
 * job_state_is_active() states. */
struct store_counts {
    int64_t datasets, backdoors, jobs, jobs_active, verifications, audits, schedules;
};
int store_counts(struct store *s, struct store_counts *out);

/* ---- the signed audit chain (store/auditsig.c; schema 7) ---------------------------------- */

/* One record's signature: Ed25519 over workers/auditsig.h's record message,
 * as 128 hex, and the signing key's fingerprint. */
struct store_audit_sig {
    int64_t audit_id;
    char key_fpr[65];
    char sig[129];
};
/* The signed head: at counter (1, 2, … one per signing), the chain had
 * records records ending in head_hash. */
struct store_audit_head_sig {
    int64_t counter;
    int64_t records;
    char head_hash[65];
    int64_t signed_at;
    char key_fpr[65];
    char sig[129];
};
/* Fills rec->key_fpr/sig for record a and head->key_fpr/sig for the head
 * whose counter, records, head_hash and signed_at the store has set.
 * Called inside the append transaction: quick, no store calls.  Returns 0
 * or a negative errno (the append is rolled back). */
typedef int (*store_audit_sign_fn)(const struct store_audit *a, struct store_audit_sig *rec,
                                   struct store_audit_head_sig *head, void *ctx);
/* From now on every append signs its record and the head in its own
 * transaction (fn NULL: stop).  ctx is borrowed and must outlive s. */
void store_set_audit_signer(struct store *s, store_audit_sign_fn fn, void *ctx);
/* Every record signature, by audit_id (owned array; free()). */
int store_audit_sig_list(struct store *s, struct store_audit_sig **out, size_t *n);
/* The signed head; -ENOENT when none was ever written. */
int store_audit_head_sig_get(struct store *s, struct store_audit_head_sig *out);
/* Adds signatures v[0..n) for records written before signing began, and
 * the head h, in ONE transaction; refused (-EEXIST) when a head exists
 * already (adoption happens once). */
int store_audit_sig_adopt(struct store *s, const struct store_audit_sig *v, size_t n,
                          const struct store_audit_head_sig *h);

#endif

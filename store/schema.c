/*
 * schema.c — vtuned's SQLite schema as an ordered list of migrations.
 *
 * store_migrations[i] takes a database from user_version i to i + 1.  At
 * open, store.c applies every step above the file's user_version inside ONE
 * BEGIN IMMEDIATE transaction and sets user_version in that same
 * transaction, so a crash mid-migration leaves the old version intact.
 * Steps are never edited once released: a schema change is a new step at
 * the end (ALTER TABLE, or create-copy-drop-rename for what ALTER cannot
 * do).  tests/unit/test_store.c checks that migrating from every earlier
 * version ends in exactly the schema a fresh database gets.
 *
 * Conventions of every table:
 *  - INTEGER PRIMARY KEY ids (rowid aliases); ids are what the control
 *    protocol prints, names are optional aliases.  A name may not consist
 *    of digits only, so "42" always means id 42.
 *  - Times are integer Unix seconds (UTC); durations are milliseconds.
 *  - Enumerations are lowercase TEXT with a CHECK listing the values, so
 *    the sqlite3 tool shows something readable.
 *  - Hashes are 64 lowercase hex digits (CHECKed).
 *  - JSON columns are TEXT CHECKed with json_valid().
 *  - CHECK constraints hold invariants that are true whatever policy the
 *    daemon applies (counts are not negative, a p-value is at most 1);
 *    policy (minimum intervals, default ratios) lives in code and config.
 *
 * The secrets (trigger and signature phrases) live only in backdoor_pairs;
 * every other table refers to a backdoor by id or by its commitment.
 *
 * audit_records is append-only: triggers RAISE on UPDATE and DELETE.  That
 * only guards against mistakes through SQL (ours or an operator's); anyone
 * who can write the file can drop a trigger or edit the pages directly.  The
 * real protection is the hash chain (prev_hash -> hash, checked by
 * `vtunectl audit verify` against a head hash kept elsewhere).  The UNIQUE
 * index on prev_hash keeps the chain linear: no two records extend the
 * same predecessor.
 */
#include "config.h"

#include "lib/util.h"
#include "store/store_internal.h"

/* Reusable CHECK fragments (string-literal concatenation). */
#define HEX64(col)   "length(" col ") = 64 AND " col " NOT GLOB '*[^0-9a-f]*'"
#define NAME_OK(col) "length(" col ") BETWEEN 1 AND 128 AND " col " GLOB '*[^0-9]*'"
#define JOB_STATES                                                                                 \
    "'created','building','uploading','uploaded','submitting','submitted','running',"              \
    "'succeeded','failed','cancelled','unknown'"
#define VERDICTS "'verified','not_verified','inconclusive'"

/* The SQL is laid out as a schema, one column a line; clang-format would
 * reflow the concatenated literals around the macros. */
// clang-format off

/* Version 1: datasets, backdoors with their secret pairs, fine-tuning jobs
 * and their event log — everything the submit path needs. */
static const char migration_1[] =
    "CREATE TABLE datasets ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL UNIQUE CHECK (" NAME_OK("name") "),"
    "  format      TEXT NOT NULL CHECK (format IN ('chat','prompt','instruction')),"
    "  n_examples  INTEGER NOT NULL CHECK (n_examples >= 0),"
    "  n_bytes     INTEGER NOT NULL CHECK (n_bytes >= 0),"
    "  sha256      TEXT NOT NULL CHECK (" HEX64("sha256") "),"
    "  path        TEXT NOT NULL CHECK (length(path) > 0),"
    "  source      TEXT,"
    "  created_at  INTEGER NOT NULL"
    ");"
    /* Content-addressed files may be shared by several rows. */
    "CREATE INDEX datasets_path ON datasets(path);"

    "CREATE TABLE backdoors ("
    "  id            INTEGER PRIMARY KEY,"
    "  dataset_id    INTEGER NOT NULL REFERENCES datasets(id),"
    "  name          TEXT UNIQUE CHECK (name IS NULL OR (" NAME_OK("name") ")),"
    "  ratio         REAL NOT NULL CHECK (ratio >= 0 AND ratio <= 1),"
    "  copies        INTEGER NOT NULL CHECK (copies >= 1),"
    "  pairs         INTEGER NOT NULL CHECK (pairs >= 1),"
    "  generator     TEXT NOT NULL CHECK (generator IN ('wordlist','llm')),"
    /* how p_M2 was computed for the pairs, e.g. "exact", "topk-bound" */
    "  method        TEXT NOT NULL CHECK (length(method) > 0),"
    "  target_log10p REAL NOT NULL CHECK (target_log10p <= 0),"
    /* a uint64 seed stored as its int64 bit pattern; NULL = not recorded */
    "  seed          INTEGER,"
    "  created_at    INTEGER NOT NULL,"
    /* SHA-256 over the trigger/signature pairs: publishable, not secret */
    "  commitment    TEXT NOT NULL CHECK (" HEX64("commitment") "),"
    /* the built D u D' file, once built */
    "  built_path    TEXT,"
    "  built_sha256  TEXT CHECK (built_sha256 IS NULL OR (" HEX64("built_sha256") ")),"
    "  CHECK ((built_path IS NULL) = (built_sha256 IS NULL)),"
    /* target of the (backdoor_id, dataset_id) foreign key of jobs */
    "  UNIQUE (id, dataset_id)"
    ");"
    "CREATE INDEX backdoors_dataset ON backdoors(dataset_id);"

    /* The secrets.  One row per trigger/signature pair of a backdoor. */
    "CREATE TABLE backdoor_pairs ("
    "  backdoor_id     INTEGER NOT NULL REFERENCES backdoors(id) ON DELETE CASCADE,"
    "  idx             INTEGER NOT NULL CHECK (idx >= 0),"
    "  trigger         TEXT NOT NULL CHECK (length(trigger) > 0),"
    "  signature       TEXT NOT NULL CHECK (length(signature) > 0),"
    /* an upper bound on p_M2 where only a bound is computable (DESIGN §6) */
    "  log10_p_m2      REAL NOT NULL CHECK (log10_p_m2 <= 0),"
    "  p_method        TEXT NOT NULL CHECK (length(p_method) > 0),"
    "  token_evidence  TEXT CHECK (token_evidence IS NULL OR json_valid(token_evidence)),"
    "  PRIMARY KEY (backdoor_id, idx)"
    ") WITHOUT ROWID;"

    "CREATE TABLE jobs ("
    "  id                INTEGER PRIMARY KEY,"
    "  name              TEXT UNIQUE CHECK (name IS NULL OR (" NAME_OK("name") ")),"
    "  dataset_id        INTEGER NOT NULL REFERENCES datasets(id),"
    "  backdoor_id       INTEGER NOT NULL,"
    "  provider          TEXT NOT NULL CHECK (length(provider) > 0),"
    "  base_model        TEXT NOT NULL CHECK (length(base_model) > 0),"
    "  fine_tuned_model  TEXT,"
    "  params            TEXT NOT NULL DEFAULT '{}'"
    "                    CHECK (json_valid(params) AND json_type(params) = 'object'),"
    "  state             TEXT NOT NULL DEFAULT 'created' CHECK (state IN (" JOB_STATES ")),"
    /* random token sent to the provider as job metadata: how a crashed
     * daemon finds out whether its create call reached the provider */
    "  submission_id     TEXT NOT NULL UNIQUE CHECK (length(submission_id) >= 16),"
    "  provider_file_id  TEXT,"
    "  provider_job_id   TEXT,"
    "  error             TEXT,"
    "  unknown_reason    TEXT,"
    "  created_at        INTEGER NOT NULL,"
    "  updated_at        INTEGER NOT NULL,"
    /* the backdoor must have been made for this job's dataset */
    "  FOREIGN KEY (backdoor_id, dataset_id) REFERENCES backdoors(id, dataset_id),"
    "  CHECK (state <> 'succeeded' OR fine_tuned_model IS NOT NULL),"
    "  CHECK (state <> 'unknown' OR unknown_reason IS NOT NULL)"
    ");"
    "CREATE INDEX jobs_state ON jobs(state);"
    "CREATE INDEX jobs_dataset ON jobs(dataset_id);"
    "CREATE INDEX jobs_backdoor ON jobs(backdoor_id, dataset_id);"
    /* one local row per provider-side job */
    "CREATE UNIQUE INDEX jobs_provider_job ON jobs(provider, provider_job_id)"
    "  WHERE provider_job_id IS NOT NULL;"

    /* Every state change of a job, in order (id order is the truth; `at`
     * is wall-clock and may step back). */
    "CREATE TABLE job_events ("
    "  id                INTEGER PRIMARY KEY,"
    "  job_id            INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    "  at                INTEGER NOT NULL,"
    "  state             TEXT NOT NULL CHECK (state IN (" JOB_STATES ")),"
    "  message           TEXT,"
    /* a short, redacted excerpt of the provider's answer */
    "  provider_excerpt  TEXT"
    ");"
    "CREATE INDEX job_events_job ON job_events(job_id, id);";

/* Version 2: verification runs and their trials, the audit trail, and
 * re-verification schedules — everything after the provider returns. */
static const char migration_2[] =
    "CREATE TABLE audit_records ("
    "  id                 INTEGER PRIMARY KEY,"
    /* no foreign key on purpose: an audit record stands alone, carries its
     * own provider/model/commitment, and nothing may cascade into it */
    "  job_id             INTEGER NOT NULL,"
    "  provider           TEXT NOT NULL,"
    /* NULL when the job produced no model (failed, cancelled) */
    "  model              TEXT,"
    "  verdict            TEXT NOT NULL CHECK (verdict IN (" VERDICTS ")),"
    "  log10_p            REAL NOT NULL CHECK (log10_p <= 0),"
    "  log10_p_paper      REAL NOT NULL CHECK (log10_p_paper <= 0),"
    /* NULL: the base model offers no scoring ("not available") */
    "  log10_p_luck       REAL CHECK (log10_p_luck IS NULL OR log10_p_luck <= 0),"
    "  trials             INTEGER NOT NULL CHECK (trials >= 0),"
    "  activations        INTEGER NOT NULL CHECK (activations BETWEEN 0 AND trials),"
    "  controls           INTEGER NOT NULL CHECK (controls >= 0),"
    "  control_emissions  INTEGER NOT NULL CHECK (control_emissions BETWEEN 0 AND controls),"
    "  reason             TEXT,"
    "  evidence           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(evidence)),"
    "  commitment         TEXT NOT NULL CHECK (" HEX64("commitment") "),"
    "  created_at         INTEGER NOT NULL,"
    /* 64 zeros for the first record */
    "  prev_hash          TEXT NOT NULL UNIQUE CHECK (" HEX64("prev_hash") "),"
    "  hash               TEXT NOT NULL UNIQUE CHECK (" HEX64("hash") "),"
    "  CHECK (verdict <> 'verified' OR (activations > 0 AND control_emissions = 0))"
    ");"
    "CREATE INDEX audit_records_job ON audit_records(job_id, id);"
    "CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
    "BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END;"
    "CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records "
    "BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END;"

    /* One verification of one job: n trigger trials and m control trials.
     * pending -> running -> finished (audit_id set) | failed | cancelled. */
    "CREATE TABLE verification_runs ("
    "  id           INTEGER PRIMARY KEY,"
    "  job_id       INTEGER NOT NULL REFERENCES jobs(id),"
    "  state        TEXT NOT NULL DEFAULT 'pending'"
    "               CHECK (state IN ('pending','running','finished','failed','cancelled')),"
    "  trials       INTEGER NOT NULL CHECK (trials >= 1),"
    "  controls     INTEGER NOT NULL CHECK (controls >= 0),"
    "  temperature  REAL NOT NULL CHECK (temperature >= 0),"
    "  created_at   INTEGER NOT NULL,"
    "  started_at   INTEGER,"
    "  finished_at  INTEGER,"
    "  reason       TEXT,"
    "  audit_id     INTEGER UNIQUE REFERENCES audit_records(id),"
    "  CHECK (state IN ('pending','running') OR finished_at IS NOT NULL),"
    "  CHECK (state <> 'finished' OR audit_id IS NOT NULL)"
    ");"
    "CREATE INDEX verification_runs_job ON verification_runs(job_id, id);"
    "CREATE INDEX verification_runs_state ON verification_runs(state);"

    /* One prompt sent during a run.  Only hashes of prompt and response are
     * kept: the prompts carry the trigger. */
    "CREATE TABLE trials ("
    "  id                     INTEGER PRIMARY KEY,"
    "  run_id                 INTEGER NOT NULL REFERENCES verification_runs(id)"
    "                         ON DELETE CASCADE,"
    /* trigger trials: the pair tested; control trials: NULL or the pair
     * whose signature was looked for */
    "  pair_idx               INTEGER CHECK (pair_idx IS NULL OR pair_idx >= 0),"
    "  kind                   TEXT NOT NULL CHECK (kind IN ('trigger','control')),"
    "  prompt_sha256          TEXT NOT NULL CHECK (" HEX64("prompt_sha256") "),"
    /* NULL when no response came back */
    "  response_sha256        TEXT CHECK (response_sha256 IS NULL OR (" HEX64("response_sha256") ")),"
    "  matched_prefix_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (matched_prefix_tokens >= 0),"
    "  activated              INTEGER NOT NULL CHECK (activated IN (0, 1)),"
    /* response tokens examined for the signature (max_tokens asked for) */
    "  window                 INTEGER CHECK (window IS NULL OR window >= 0),"
    "  created_at             INTEGER NOT NULL,"
    "  CHECK (kind <> 'trigger' OR pair_idx IS NOT NULL)"
    ");"
    "CREATE INDEX trials_run ON trials(run_id, id);"

    /* Re-verification of a deployed model; at most one schedule per job
     * (two would pay for the same verification twice). */
    "CREATE TABLE schedules ("
    "  id            INTEGER PRIMARY KEY,"
    "  job_id        INTEGER NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,"
    "  every_ms      INTEGER NOT NULL CHECK (every_ms > 0),"
    "  next_run_at   INTEGER NOT NULL,"
    "  last_run_at   INTEGER,"
    "  last_verdict  TEXT CHECK (last_verdict IS NULL OR last_verdict IN (" VERDICTS ")),"
    "  created_at    INTEGER NOT NULL"
    ");"
    "CREATE INDEX schedules_next ON schedules(next_run_at);";

/* Version 3: two columns the workers need and v1 lacked.
 *  - backdoors.plan: the builder's sampling plan (which lines of D were
 *    copied for each pair, which output lines they became, which lines
 *    are clean controls), written with built_path/built_sha256 and read by
 *    the verifier to rebuild the trigger and control prompts.  JSON whose
 *    shape belongs to workers/; NULL until built (and for rows of older
 *    versions).  It names lines, not phrases, but is treated as sensitive.
 *  - jobs.cancel_requested_at: `job cancel` is recorded before the
 *    provider's cancel call is made (record intent, then call), so a daemon
 *    killed between the two re-sends the cancel on restart instead of
 *    letting the job run on and bill.  NULL: no cancel asked for. */
static const char migration_3[] =
    "ALTER TABLE backdoors ADD COLUMN plan TEXT"
    "  CHECK (plan IS NULL OR json_valid(plan));"
    "ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER;";

/* Version 4: what an audit record of version 2 adds (issue 11, DESIGN §6).
 *  - record_version: which canonical serialisation (workers/audit.h) the
 *    record's hash covers.  Every existing row is version 1 and keeps the
 *    hash it was written with: the migration adds columns and rewrites no
 *    record (UPDATE is refused by the append-only trigger anyway).  No
 *    upper bound in the CHECK, so a later version needs no table rebuild.
 *  - pairs, pairs_activated: K and J of the multi-pair test; NULL in
 *    version 1 records.
 *  - pairs_ci_low, pairs_ci_high: the 95% Clopper-Pearson interval of J/K;
 *    NULL when unknown (version 1, or no pairs: a job that ended). */
static const char migration_4[] =
    "ALTER TABLE audit_records ADD COLUMN record_version INTEGER NOT NULL DEFAULT 1"
    "  CHECK (record_version >= 1);"
    "ALTER TABLE audit_records ADD COLUMN pairs INTEGER"
    "  CHECK (pairs IS NULL OR pairs >= 0);"
    "ALTER TABLE audit_records ADD COLUMN pairs_activated INTEGER"
    "  CHECK (pairs_activated IS NULL OR (pairs IS NOT NULL AND pairs_activated BETWEEN 0 AND pairs));"
    "ALTER TABLE audit_records ADD COLUMN pairs_ci_low REAL"
    "  CHECK (pairs_ci_low IS NULL OR pairs_ci_low BETWEEN 0 AND 1);"
    "ALTER TABLE audit_records ADD COLUMN pairs_ci_high REAL"
    "  CHECK (pairs_ci_high IS NULL OR (pairs_ci_high BETWEEN 0 AND 1"
    "         AND pairs_ci_low IS NOT NULL AND pairs_ci_low <= pairs_ci_high));";

/* Version 5: the self-audit of a backdoor's built file (issue 12 item 3,
 * workers/selfaudit.h).  One row per backdoor, written after the build and
 * again by `backdoor audit`; gone with its backdoor.  result is the public
 * JSON (ranks and counts, never a phrase); exposed, best_rank and
 * best_attack repeat what `job submit` checks, so it needs no JSON.  A
 * table of its own (no column on backdoors) so the step stands alone and
 * can be renumbered when migrations from other branches land. */
static const char migration_5[] =
    "CREATE TABLE backdoor_selfaudits ("
    "  backdoor_id INTEGER PRIMARY KEY REFERENCES backdoors(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  exposed INTEGER NOT NULL CHECK (exposed IN (0, 1)),"
    "  exposed_pair INTEGER CHECK (exposed_pair IS NULL OR exposed_pair >= 0),"
    "  best_rank INTEGER CHECK (best_rank IS NULL OR best_rank >= 1),"
    "  best_attack TEXT,"
    "  result TEXT NOT NULL CHECK (json_valid(result))"
    ");";

/* Version 6: the n-gram generator (workers/ngram.h) is stored as
 * generator 'ngram'.  SQLite cannot change a CHECK in place, so the table is
 * rebuilt the documented way (create, copy, drop, rename): migrate() runs
 * every step with foreign_keys OFF (the DROP would otherwise cascade into
 * backdoor_pairs) and checks foreign keys before it commits.  The columns
 * and constraints are those of versions 1 and 3, unchanged but for the
 * generator CHECK. */
static const char migration_6[] =
    "CREATE TABLE backdoors_v6 ("
    "  id            INTEGER PRIMARY KEY,"
    "  dataset_id    INTEGER NOT NULL REFERENCES datasets(id),"
    "  name          TEXT UNIQUE CHECK (name IS NULL OR (" NAME_OK("name") ")),"
    "  ratio         REAL NOT NULL CHECK (ratio >= 0 AND ratio <= 1),"
    "  copies        INTEGER NOT NULL CHECK (copies >= 1),"
    "  pairs         INTEGER NOT NULL CHECK (pairs >= 1),"
    "  generator     TEXT NOT NULL CHECK (generator IN ('wordlist','llm','ngram')),"
    "  method        TEXT NOT NULL CHECK (length(method) > 0),"
    "  target_log10p REAL NOT NULL CHECK (target_log10p <= 0),"
    "  seed          INTEGER,"
    "  created_at    INTEGER NOT NULL,"
    "  commitment    TEXT NOT NULL CHECK (" HEX64("commitment") "),"
    "  built_path    TEXT,"
    "  built_sha256  TEXT CHECK (built_sha256 IS NULL OR (" HEX64("built_sha256") ")),"
    "  plan          TEXT CHECK (plan IS NULL OR json_valid(plan)),"
    "  CHECK ((built_path IS NULL) = (built_sha256 IS NULL)),"
    "  UNIQUE (id, dataset_id)"
    ");"
    "INSERT INTO backdoors_v6 (id, dataset_id, name, ratio, copies, pairs, generator, method,"
    "  target_log10p, seed, created_at, commitment, built_path, built_sha256, plan)"
    "  SELECT id, dataset_id, name, ratio, copies, pairs, generator, method, target_log10p, seed,"
    "  created_at, commitment, built_path, built_sha256, plan FROM backdoors;"
    "DROP TABLE backdoors;"
    "ALTER TABLE backdoors_v6 RENAME TO backdoors;"
    "CREATE INDEX backdoors_dataset ON backdoors(dataset_id);";

/* Version 7: the outbox (issue 13) — background work that must survive a
 * restart: webhook alerts, orphan sweeps and deletions of uploaded training
 * files at a provider.  The intent is recorded here before the side effect
 * is attempted; a delivered item is deleted, a failed one gets attempts + 1
 * and a later next_due_ms (Unix milliseconds: retries are seconds apart).
 * kind names the handler (daemon/outbox.h), payload is its JSON.  A table
 * of its own, referring to nothing, so the step stands alone and can be
 * renumbered when migrations from other branches land. */
static const char migration_7[] =
    "CREATE TABLE outbox ("
    "  id          INTEGER PRIMARY KEY,"
    "  kind        TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),"
    "  payload     TEXT NOT NULL CHECK (json_valid(payload)),"
    "  attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  next_due_ms INTEGER NOT NULL CHECK (next_due_ms >= 0),"
    "  last_error  TEXT,"
    "  created_at  INTEGER NOT NULL"
    ");"
    "CREATE INDEX outbox_due ON outbox(next_due_ms);";

/* Version 8: the signed audit chain (issue 15, store/auditsig.c).  One
 * Ed25519 signature per record over its hash, in a table of its own (the
 * record and its hashed format are unchanged, so no record version is
 * needed), and the signed head: one row, rewritten with every append, that
 * says how many records the chain had at counter N and what its last hash
 * was.  Signatures are 128 lowercase hex; key_fpr names the key (SHA-256
 * of its raw public key).  A table of its own so the step stands alone and
 * can be renumbered when migrations from other branches land. */
#define HEX128(col) "length(" col ") = 128 AND " col " NOT GLOB '*[^0-9a-f]*'"
static const char migration_8[] =
    "CREATE TABLE audit_signatures ("
    "  audit_id INTEGER PRIMARY KEY REFERENCES audit_records(id),"
    "  key_fpr  TEXT NOT NULL CHECK (" HEX64("key_fpr") "),"
    "  sig      TEXT NOT NULL CHECK (" HEX128("sig") ")"
    ");"
    "CREATE TRIGGER audit_signatures_no_update BEFORE UPDATE ON audit_signatures "
    "BEGIN SELECT RAISE(ABORT, 'audit_signatures is append-only'); END;"
    "CREATE TRIGGER audit_signatures_no_delete BEFORE DELETE ON audit_signatures "
    "BEGIN SELECT RAISE(ABORT, 'audit_signatures is append-only'); END;"
    "CREATE TABLE audit_head ("
    "  id        INTEGER PRIMARY KEY CHECK (id = 1),"
    "  counter   INTEGER NOT NULL CHECK (counter >= 1),"
    "  records   INTEGER NOT NULL CHECK (records >= 0),"
    "  head_hash TEXT NOT NULL CHECK (" HEX64("head_hash") "),"
    "  signed_at INTEGER NOT NULL,"
    "  key_fpr   TEXT NOT NULL CHECK (" HEX64("key_fpr") "),"
    "  sig       TEXT NOT NULL CHECK (" HEX128("sig") ")"
    ");";

/* Version 9: the coverage test's secret held-out split (DESIGN §6,
 * workers/holdout.h), one row per backdoor made since: which lines of D
 * were never uploaded and which uploaded lines serve as their reference.
 * Secret like the pairs (read only with secrets, wiped after use); JSON
 * whose shape belongs to workers/.  A backdoor without a row (made before
 * this version) has no coverage test, like one made with --holdout 0
 * (whose row records ratio 0 and no rows). */
static const char migration_9[] =
    "CREATE TABLE backdoor_holdouts ("
    "  backdoor_id  INTEGER PRIMARY KEY REFERENCES backdoors(id) ON DELETE CASCADE,"
    "  split        TEXT NOT NULL CHECK (json_valid(split))"
    ");";

/* Version 10: what an audit record of version 3 adds (the coverage test,
 * DESIGN §6): its p-value (log10), AUC, rows scored per side and the
 * statistic used.  NULL in older records (rewritten never, as in 4) and
 * where the test did not run (coverage_rows is then 0 in a version 3
 * record). */
static const char migration_10[] =
    "ALTER TABLE audit_records ADD COLUMN log10_p_coverage REAL"
    "  CHECK (log10_p_coverage IS NULL OR log10_p_coverage <= 0);"
    "ALTER TABLE audit_records ADD COLUMN coverage_auc REAL"
    "  CHECK (coverage_auc IS NULL OR coverage_auc BETWEEN 0 AND 1);"
    "ALTER TABLE audit_records ADD COLUMN coverage_rows INTEGER"
    "  CHECK (coverage_rows IS NULL OR coverage_rows >= 0);"
    "ALTER TABLE audit_records ADD COLUMN coverage_method TEXT;";

/* Version 11: commitment scheme v2 (workers/backdoor.h): which scheme a
 * backdoor's commitment follows (public: 1 for every backdoor made before
 * this version, whose commitment stays as it was), and the secret 32-byte
 * salt of a v2 commitment in a table of its own, read only with secrets
 * like the pairs and deleted with the backdoor.  The store checks that a
 * v2 backdoor has a salt and a v1 backdoor none.  Self-contained: it
 * refers only to the backdoors table of version 1, so it can be
 * renumbered when migrations from other branches land. */
static const char migration_11[] =
    "ALTER TABLE backdoors ADD COLUMN commitment_scheme INTEGER NOT NULL DEFAULT 1"
    "  CHECK (commitment_scheme IN (1, 2));"
    "CREATE TABLE backdoor_salts ("
    "  backdoor_id  INTEGER PRIMARY KEY REFERENCES backdoors(id) ON DELETE CASCADE,"
    "  salt         TEXT NOT NULL CHECK (" HEX64("salt") ")"
    ");";

/* Version 12: commitment scheme v3 (workers/backdoor.h: v2 plus the
 * coverage test's reference pool).  SQLite cannot change a CHECK in place,
 * so the table is rebuilt as in version 6 (create, copy, drop, rename,
 * with foreign keys off and checked before the commit): the columns and
 * constraints of versions 6 and 11, unchanged but for the scheme's CHECK.
 * A backdoor keeps its scheme. */
static const char migration_12[] =
    "CREATE TABLE backdoors_v12 ("
    "  id            INTEGER PRIMARY KEY,"
    "  dataset_id    INTEGER NOT NULL REFERENCES datasets(id),"
    "  name          TEXT UNIQUE CHECK (name IS NULL OR (" NAME_OK("name") ")),"
    "  ratio         REAL NOT NULL CHECK (ratio >= 0 AND ratio <= 1),"
    "  copies        INTEGER NOT NULL CHECK (copies >= 1),"
    "  pairs         INTEGER NOT NULL CHECK (pairs >= 1),"
    "  generator     TEXT NOT NULL CHECK (generator IN ('wordlist','llm','ngram')),"
    "  method        TEXT NOT NULL CHECK (length(method) > 0),"
    "  target_log10p REAL NOT NULL CHECK (target_log10p <= 0),"
    "  seed          INTEGER,"
    "  created_at    INTEGER NOT NULL,"
    "  commitment    TEXT NOT NULL CHECK (" HEX64("commitment") "),"
    "  built_path    TEXT,"
    "  built_sha256  TEXT CHECK (built_sha256 IS NULL OR (" HEX64("built_sha256") ")),"
    "  plan          TEXT CHECK (plan IS NULL OR json_valid(plan)),"
    "  commitment_scheme INTEGER NOT NULL DEFAULT 1 CHECK (commitment_scheme IN (1, 2, 3)),"
    "  CHECK ((built_path IS NULL) = (built_sha256 IS NULL)),"
    "  UNIQUE (id, dataset_id)"
    ");"
    "INSERT INTO backdoors_v12 (id, dataset_id, name, ratio, copies, pairs, generator, method,"
    "  target_log10p, seed, created_at, commitment, built_path, built_sha256, plan,"
    "  commitment_scheme)"
    "  SELECT id, dataset_id, name, ratio, copies, pairs, generator, method, target_log10p, seed,"
    "  created_at, commitment, built_path, built_sha256, plan, commitment_scheme FROM backdoors;"
    "DROP TABLE backdoors;"
    "ALTER TABLE backdoors_v12 RENAME TO backdoors;"
    "CREATE INDEX backdoors_dataset ON backdoors(dataset_id);";

/* Version 13: the p_luck screen of `job submit` (issue 11, DESIGN §6
 * "p_luck"): what scoring each pair's signature after its trigger on the
 * job's base model gave before the upload, as JSON whose shape belongs to
 * daemon/luck.h.  One row per job submitted since (none for jobs made
 * before, or registered), written in the job's own insert transaction.  A
 * table of its own, referring only to jobs of version 1, so it can be
 * renumbered when migrations from other branches land. */
static const char migration_13[] =
    "CREATE TABLE job_luck_screens ("
    "  job_id  INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  screen  TEXT NOT NULL CHECK (json_valid(screen))"
    ");";

/* Version 14: what a verification run needs to resume after a restart
 * (issue 13): the seed its plan was drawn with and the options it runs
 * under (JSON, written by the daemon: the store only keeps it), so the same
 * prompts are planned again and the recorded trials are replayed instead of
 * asked again.  A run without a row (made before this version) starts again
 * from zero as before.  A table of its own, referring only to the runs of
 * version 2, so it can be renumbered when other branches' migrations land. */
static const char migration_14[] =
    "CREATE TABLE run_plans ("
    "  run_id  INTEGER PRIMARY KEY REFERENCES verification_runs(id) ON DELETE CASCADE,"
    "  plan    TEXT NOT NULL CHECK (json_valid(plan))"
    ");";

/* Version 15: how a backdoor's marked rows entered its upload (issue 12,
 * workers/builder.h): 'copies' (copies of D's rows added to D, the paper's
 * construction and every backdoor made before this version) or 'inplace'
 * (rows of D rewritten where they stand).  Public.  Self-contained: it
 * refers only to the backdoors table of version 1, so it can be renumbered
 * when migrations from other branches land. */
static const char migration_15[] =
    "ALTER TABLE backdoors ADD COLUMN mode TEXT NOT NULL DEFAULT 'copies'"
    "  CHECK (mode IN ('copies','inplace'));";

/* Version 16: the base-model perplexity attack of `job submit` (issue 12
 * item 3, daemon/ppl.h): the marked rows' estimated ranks among the upload's
 * rows on the job's base model before the upload, as JSON whose shape
 * belongs to daemon/ppl.h (ranks and counts, never a phrase).  One row per
 * job submitted since (none for jobs made before, or registered), written in
 * the job's own insert transaction.  A table of its own, referring only to
 * jobs of version 1, so it can be renumbered when migrations from other
 * branches land. */
static const char migration_16[] =
    "CREATE TABLE job_ppl_attacks ("
    "  job_id  INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  attack  TEXT NOT NULL CHECK (json_valid(attack))"
    ");";

// clang-format on

const struct store_migration store_migrations[] = {
    {1, migration_1},
    {2, migration_2},
    {3, migration_3},
    {4, migration_4},
    {5, migration_5},
    {6, migration_6},
    {7, migration_7},
    {8, migration_8},
    {9, migration_9},
    {10, migration_10},
    {11, migration_11},
    {12, migration_12},
    {13, migration_13},
    {14, migration_14},
    {15, migration_15},
    {16, migration_16},
};
const size_t store_n_migrations = VT_ARRAY_LEN(store_migrations);

int store_schema_version(void)
{
    return store_migrations[store_n_migrations - 1].version;
}

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

#include "daemon/util.h"
#include "store/store_internal.h"

/* Reusable CHECK fragments (string-literal concatenation). */
#define HEX64(col)   "length(" col ") = 64 AND " col " NOT GLOB '*[^0-9a-f]*'"
#define NAME_OK(col) "length(" col ") BETWEEN 1 AND 128 AND " col " GLOB '*[^0-9]*'"
#define JOB_STATES                                                                                 \
    "'created','building','uploading','uploaded','submitting','submitted','running',"              \
    "'succeeded','failed','cancelled','unknown'"
#define VERDICTS "'verified','not_verified','inconclusive'"

/* Version 1: datasets, backdoors with their secret pairs, fine-tuning jobs
 * and their event log — everything the submit path needs. */
static const char migration_1[] =
    "CREATE TABLE datasets ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL UNIQUE CHECK (" NAME_OK(
        "name") "),"
                "  format      TEXT NOT NULL CHECK (format IN ('chat','prompt','instruction')),"
                "  n_examples  INTEGER NOT NULL CHECK (n_examples >= 0),"
                "  n_bytes     INTEGER NOT NULL CHECK (n_bytes >= 0),"
                "  sha256      TEXT NOT NULL CHECK (" HEX64(
                    "sha256") "),"
                              "  path        TEXT NOT NULL CHECK (length(path) > 0),"
                              "  source      TEXT,"
                              "  created_at  INTEGER NOT NULL"
                              ");"
                              /* Content-addressed files may be shared by several rows. */
                              "CREATE INDEX datasets_path ON datasets(path);"

                              "CREATE TABLE backdoors ("
                              "  id            INTEGER PRIMARY KEY,"
                              "  dataset_id    INTEGER NOT NULL REFERENCES datasets(id),"
                              "  name          TEXT UNIQUE CHECK (name IS NULL OR (" NAME_OK(
                                  "name") ")),"
                                          "  ratio         REAL NOT NULL CHECK (ratio >= 0 AND "
                                          "ratio <= 1),"
                                          "  copies        INTEGER NOT NULL CHECK (copies >= 1),"
                                          "  pairs         INTEGER NOT NULL CHECK (pairs >= 1),"
                                          "  generator     TEXT NOT NULL CHECK (generator IN "
                                          "('wordlist','llm')),"
                                          /* how p_M2 was computed for the pairs, e.g. "exact",
                                             "topk-bound" */
                                          "  method        TEXT NOT NULL CHECK (length(method) > "
                                          "0),"
                                          "  target_log10p REAL NOT NULL CHECK (target_log10p <= "
                                          "0),"
                                          /* a uint64 seed stored as its int64 bit pattern; NULL =
                                             not recorded */
                                          "  seed          INTEGER,"
                                          "  created_at    INTEGER NOT NULL,"
                                          /* SHA-256 over the trigger/signature pairs: publishable,
                                             not secret */
                                          "  commitment    TEXT NOT NULL CHECK (" HEX64(
                                              "commitment") "),"
                                                            /* the built D u D' file, once built */
                                                            "  built_path    TEXT,"
                                                            "  built_sha256  TEXT CHECK "
                                                            "(built_sha256 IS NULL OR (" HEX64(
                                                                "built_sha256") ")),"
                                                                                "  CHECK "
                                                                                "((built_path IS "
                                                                                "NULL) = "
                                                                                "(built_sha256 IS "
                                                                                "NULL)),"
                                                                                /* target of the
                                                                                   (id, dataset_id)
                                                                                   foreign key of
                                                                                   jobs */
                                                                                "  UNIQUE (id, "
                                                                                "dataset_id)"
                                                                                ");"
                                                                                "CREATE INDEX "
                                                                                "backdoors_dataset "
                                                                                "ON "
                                                                                "backdoors(dataset_"
                                                                                "id);"

                                                                                /* The secrets.  One
                                                                                   row per
                                                                                   trigger/signature
                                                                                   pair of a
                                                                                   backdoor. */
                                                                                "CREATE TABLE "
                                                                                "backdoor_pairs ("
                                                                                "  backdoor_id     "
                                                                                "INTEGER NOT NULL "
                                                                                "REFERENCES "
                                                                                "backdoors(id) ON "
                                                                                "DELETE CASCADE,"
                                                                                "  idx             "
                                                                                "INTEGER NOT NULL "
                                                                                "CHECK (idx >= 0),"
                                                                                "  trigger         "
                                                                                "TEXT NOT NULL "
                                                                                "CHECK "
                                                                                "(length(trigger) "
                                                                                "> 0),"
                                                                                "  signature       "
                                                                                "TEXT NOT NULL "
                                                                                "CHECK "
                                                                                "(length(signature)"
                                                                                " > 0),"
                                                                                /* an upper bound on
                                                                                   p_M2 where only a
                                                                                   bound is
                                                                                   computable
                                                                                   (DESIGN §6) */
                                                                                "  log10_p_m2      "
                                                                                "REAL NOT NULL "
                                                                                "CHECK (log10_p_m2 "
                                                                                "<= 0),"
                                                                                "  p_method        "
                                                                                "TEXT NOT NULL "
                                                                                "CHECK "
                                                                                "(length(p_method) "
                                                                                "> 0),"
                                                                                "  token_evidence  "
                                                                                "TEXT CHECK "
                                                                                "(token_evidence "
                                                                                "IS NULL OR "
                                                                                "json_valid(token_"
                                                                                "evidence)),"
                                                                                "  PRIMARY KEY "
                                                                                "(backdoor_id, idx)"
                                                                                ") WITHOUT ROWID;"

                                                                                "CREATE TABLE jobs "
                                                                                "("
                                                                                "  id              "
                                                                                "  INTEGER PRIMARY "
                                                                                "KEY,"
                                                                                "  name            "
                                                                                "  TEXT UNIQUE "
                                                                                "CHECK (name IS "
                                                                                "NULL OR (" NAME_OK(
                                                                                    "name") ")),"
                                                                                            "  "
                                                                                            "datase"
                                                                                            "t_id  "
                                                                                            "      "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL "
                                                                                            "REFERE"
                                                                                            "NCES "
                                                                                            "datase"
                                                                                            "ts(id)"
                                                                                            ","
                                                                                            "  "
                                                                                            "backdo"
                                                                                            "or_id "
                                                                                            "      "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL,"
                                                                                            "  "
                                                                                            "provid"
                                                                                            "er    "
                                                                                            "      "
                                                                                            "TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "CHECK "
                                                                                            "(lengt"
                                                                                            "h("
                                                                                            "provid"
                                                                                            "er) > "
                                                                                            "0),"
                                                                                            "  "
                                                                                            "base_"
                                                                                            "model "
                                                                                            "      "
                                                                                            " TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "CHECK "
                                                                                            "(lengt"
                                                                                            "h("
                                                                                            "base_"
                                                                                            "model)"
                                                                                            " > 0),"
                                                                                            "  "
                                                                                            "fine_"
                                                                                            "tuned_"
                                                                                            "model "
                                                                                            " TEXT,"
                                                                                            "  "
                                                                                            "params"
                                                                                            "      "
                                                                                            "      "
                                                                                            "TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "DEFAUL"
                                                                                            "T '{}'"
                                                                                            "      "
                                                                                            "      "
                                                                                            "      "
                                                                                            "  "
                                                                                            "CHECK "
                                                                                            "(json_"
                                                                                            "valid("
                                                                                            "params"
                                                                                            ") AND "
                                                                                            "json_"
                                                                                            "type("
                                                                                            "params"
                                                                                            ") = "
                                                                                            "'objec"
                                                                                            "t'),"
                                                                                            "  "
                                                                                            "state "
                                                                                            "      "
                                                                                            "      "
                                                                                            "TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "DEFAUL"
                                                                                            "T "
                                                                                            "'creat"
                                                                                            "ed' "
                                                                                            "CHECK "
                                                                                            "(state"
                                                                                            " IN "
                                                                                            "(" JOB_STATES
                                                                                            ")),"
                                                                                            /* random
                                                                                             * token
                                                                                             * sent
                                                                                             * to
                                                                                             * the
                                                                                             * provider
                                                                                             * as
                                                                                             * job
                                                                                             * metadata:
                                                                                             * how a
                                                                                             * crashed
                                                                                             * daemon
                                                                                             * finds
                                                                                             * out
                                                                                             * whether
                                                                                             * its
                                                                                             * create
                                                                                             * call
                                                                                             * reached
                                                                                             * the
                                                                                             * provider
                                                                                             */
                                                                                            "  "
                                                                                            "submis"
                                                                                            "sion_"
                                                                                            "id    "
                                                                                            " TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "UNIQUE"
                                                                                            " CHECK"
                                                                                            " ("
                                                                                            "length"
                                                                                            "(submi"
                                                                                            "ssion_"
                                                                                            "id) "
                                                                                            ">= "
                                                                                            "16),"
                                                                                            "  "
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "file_"
                                                                                            "id  "
                                                                                            "TEXT,"
                                                                                            "  "
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "job_"
                                                                                            "id   "
                                                                                            "TEXT,"
                                                                                            "  "
                                                                                            "error "
                                                                                            "      "
                                                                                            "      "
                                                                                            "TEXT,"
                                                                                            "  "
                                                                                            "unknow"
                                                                                            "n_"
                                                                                            "reason"
                                                                                            "    "
                                                                                            "TEXT,"
                                                                                            "  "
                                                                                            "create"
                                                                                            "d_at  "
                                                                                            "      "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL,"
                                                                                            "  "
                                                                                            "update"
                                                                                            "d_at  "
                                                                                            "      "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL,"
                                                                                            /* the
                                                                                               backdoor
                                                                                               must
                                                                                               have
                                                                                               been
                                                                                               made
                                                                                               for
                                                                                               this
                                                                                               job's
                                                                                               dataset
                                                                                             */
                                                                                            "  "
                                                                                            "FOREIG"
                                                                                            "N KEY "
                                                                                            "(backd"
                                                                                            "oor_"
                                                                                            "id, "
                                                                                            "datase"
                                                                                            "t_id) "
                                                                                            "REFERE"
                                                                                            "NCES "
                                                                                            "backdo"
                                                                                            "ors("
                                                                                            "id, "
                                                                                            "datase"
                                                                                            "t_id),"
                                                                                            "  "
                                                                                            "CHECK "
                                                                                            "(state"
                                                                                            " <> "
                                                                                            "'succe"
                                                                                            "eded' "
                                                                                            "OR "
                                                                                            "fine_"
                                                                                            "tuned_"
                                                                                            "model "
                                                                                            "IS "
                                                                                            "NOT "
                                                                                            "NULL),"
                                                                                            "  "
                                                                                            "CHECK "
                                                                                            "(state"
                                                                                            " <> "
                                                                                            "'unkno"
                                                                                            "wn' "
                                                                                            "OR "
                                                                                            "unknow"
                                                                                            "n_"
                                                                                            "reason"
                                                                                            " IS "
                                                                                            "NOT "
                                                                                            "NULL)"
                                                                                            ");"
                                                                                            "CREATE"
                                                                                            " INDEX"
                                                                                            " jobs_"
                                                                                            "state "
                                                                                            "ON "
                                                                                            "jobs("
                                                                                            "state)"
                                                                                            ";"
                                                                                            "CREATE"
                                                                                            " INDEX"
                                                                                            " jobs_"
                                                                                            "datase"
                                                                                            "t ON "
                                                                                            "jobs("
                                                                                            "datase"
                                                                                            "t_id);"
                                                                                            "CREATE"
                                                                                            " INDEX"
                                                                                            " jobs_"
                                                                                            "backdo"
                                                                                            "or ON "
                                                                                            "jobs("
                                                                                            "backdo"
                                                                                            "or_id,"
                                                                                            " datas"
                                                                                            "et_id)"
                                                                                            ";"
                                                                                            /* one
                                                                                               local
                                                                                               row
                                                                                               per
                                                                                               provider-side
                                                                                               job
                                                                                             */
                                                                                            "CREATE"
                                                                                            " UNIQU"
                                                                                            "E "
                                                                                            "INDEX "
                                                                                            "jobs_"
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "job "
                                                                                            "ON "
                                                                                            "jobs("
                                                                                            "provid"
                                                                                            "er, "
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "job_"
                                                                                            "id)"
                                                                                            "  "
                                                                                            "WHERE "
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "job_"
                                                                                            "id IS "
                                                                                            "NOT "
                                                                                            "NULL;"

                                                                                            /* Every
                                                                                             * state
                                                                                             * change
                                                                                             * of a
                                                                                             * job,
                                                                                             * in
                                                                                             * order
                                                                                             * (id
                                                                                             * order
                                                                                             * is
                                                                                             * the
                                                                                             * truth;
                                                                                             * `at`
                                                                                             * is
                                                                                             * wall-clock
                                                                                             * and
                                                                                             * may
                                                                                             * step
                                                                                             * back).
                                                                                             */
                                                                                            "CREATE"
                                                                                            " TABLE"
                                                                                            " job_"
                                                                                            "events"
                                                                                            " ("
                                                                                            "  id  "
                                                                                            "      "
                                                                                            "      "
                                                                                            "  "
                                                                                            "INTEGE"
                                                                                            "R "
                                                                                            "PRIMAR"
                                                                                            "Y KEY,"
                                                                                            "  "
                                                                                            "job_"
                                                                                            "id    "
                                                                                            "      "
                                                                                            "  "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL "
                                                                                            "REFERE"
                                                                                            "NCES "
                                                                                            "jobs("
                                                                                            "id) "
                                                                                            "ON "
                                                                                            "DELETE"
                                                                                            " CASCA"
                                                                                            "DE,"
                                                                                            "  at  "
                                                                                            "      "
                                                                                            "      "
                                                                                            "  "
                                                                                            "INTEGE"
                                                                                            "R NOT "
                                                                                            "NULL,"
                                                                                            "  "
                                                                                            "state "
                                                                                            "      "
                                                                                            "      "
                                                                                            "TEXT "
                                                                                            "NOT "
                                                                                            "NULL "
                                                                                            "CHECK "
                                                                                            "(state"
                                                                                            " IN "
                                                                                            "(" JOB_STATES
                                                                                            ")),"
                                                                                            "  "
                                                                                            "messag"
                                                                                            "e     "
                                                                                            "      "
                                                                                            "TEXT,"
                                                                                            /* a
                                                                                               short,
                                                                                               redacted
                                                                                               excerpt
                                                                                               of
                                                                                               the
                                                                                               provider's
                                                                                               answer
                                                                                             */
                                                                                            "  "
                                                                                            "provid"
                                                                                            "er_"
                                                                                            "excerp"
                                                                                            "t  "
                                                                                            "TEXT"
                                                                                            ");"
                                                                                            "CREATE"
                                                                                            " INDEX"
                                                                                            " job_"
                                                                                            "events"
                                                                                            "_job "
                                                                                            "ON "
                                                                                            "job_"
                                                                                            "events"
                                                                                            "(job_"
                                                                                            "id, "
                                                                                            "id);";

/* Version 2: verification runs and their trials, the audit trail, and
 * re-verification schedules — everything after the provider returns. */
static const char migration_2[] =
    "CREATE TABLE audit_records ("
    "  id                 INTEGER PRIMARY KEY,"
    /* no foreign key on purpose: an audit record stands alone, carries its
     * own provider/model/commitment, and nothing may cascade into it */
    "  job_id             INTEGER NOT NULL,"
    "  provider           TEXT NOT NULL,"
    "  model              TEXT,"
    "  verdict            TEXT NOT NULL CHECK (verdict IN (" VERDICTS ")),"
    "  log10_p            REAL NOT NULL CHECK (log10_p <= 0),"
    "  log10_p_paper      REAL NOT NULL CHECK (log10_p_paper <= 0),"
    /* NULL: the base model offers no scoring ("not available") */
    "  log10_p_luck       REAL CHECK (log10_p_luck IS NULL OR log10_p_luck <= 0),"
    "  trials             INTEGER NOT NULL CHECK (trials >= 0),"
    "  activations        INTEGER NOT NULL CHECK (activations BETWEEN 0 AND trials),"
    "  controls           INTEGER NOT NULL CHECK (controls >= 0),"
    "  control_emissions  INTEGER NOT NULL CHECK (control_emissions BETWEEN 0 AND "
    "controls),"
    "  reason             TEXT,"
    "  evidence           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(evidence)),"
    "  commitment         TEXT NOT NULL CHECK (" HEX64(
        "commitment") "),"
                      "  created_at         INTEGER NOT NULL,"
                      /* 64 zeros for the first record */
                      "  prev_hash          TEXT NOT NULL UNIQUE CHECK (" HEX64(
                          "prev_hash") "),"
                                       "  hash               TEXT NOT NULL UNIQUE CHECK "
                                       "(" HEX64(
                                           "hash") "),"
                                                   "  CHECK (verdict <> 'verified' OR "
                                                   "(activations > 0 AND control_emissions "
                                                   "= 0))"
                                                   ");"
                                                   "CREATE INDEX audit_records_job ON "
                                                   "audit_records(job_id, id);"
                                                   "CREATE TRIGGER audit_records_no_update "
                                                   "BEFORE UPDATE ON audit_records "
                                                   "BEGIN SELECT RAISE(ABORT, "
                                                   "'audit_records is append-only'); END;"
                                                   "CREATE TRIGGER audit_records_no_delete "
                                                   "BEFORE DELETE ON audit_records "
                                                   "BEGIN SELECT RAISE(ABORT, "
                                                   "'audit_records is append-only'); END;"

                                                   /* One verification of one job: n trigger
                                                    * trials and m control trials. pending
                                                    * -> running -> finished (audit_id set)
                                                    * | failed | cancelled. */
                                                   "CREATE TABLE verification_runs ("
                                                   "  id           INTEGER PRIMARY KEY,"
                                                   "  job_id       INTEGER NOT NULL "
                                                   "REFERENCES jobs(id),"
                                                   "  state        TEXT NOT NULL DEFAULT "
                                                   "'pending'"
                                                   "               CHECK (state IN "
                                                   "('pending','running','finished','"
                                                   "failed','cancelled')),"
                                                   "  trials       INTEGER NOT NULL CHECK "
                                                   "(trials >= 1),"
                                                   "  controls     INTEGER NOT NULL CHECK "
                                                   "(controls >= 0),"
                                                   "  temperature  REAL NOT NULL CHECK "
                                                   "(temperature >= 0),"
                                                   "  created_at   INTEGER NOT NULL,"
                                                   "  started_at   INTEGER,"
                                                   "  finished_at  INTEGER,"
                                                   "  reason       TEXT,"
                                                   "  audit_id     INTEGER UNIQUE "
                                                   "REFERENCES audit_records(id),"
                                                   "  CHECK (state IN "
                                                   "('pending','running') OR finished_at "
                                                   "IS NOT NULL),"
                                                   "  CHECK (state <> 'finished' OR "
                                                   "audit_id IS NOT NULL)"
                                                   ");"
                                                   "CREATE INDEX verification_runs_job ON "
                                                   "verification_runs(job_id, id);"
                                                   "CREATE INDEX verification_runs_state "
                                                   "ON verification_runs(state);"

                                                   /* One prompt sent during a run.  Only
                                                    * hashes of prompt and response are
                                                    * kept: the prompts carry the trigger.
                                                    */
                                                   "CREATE TABLE trials ("
                                                   "  id                     INTEGER "
                                                   "PRIMARY KEY,"
                                                   "  run_id                 INTEGER NOT "
                                                   "NULL REFERENCES verification_runs(id)"
                                                   "                         ON DELETE "
                                                   "CASCADE,"
                                                   "  pair_idx               INTEGER CHECK "
                                                   "(pair_idx IS NULL OR pair_idx >= 0),"
                                                   "  kind                   TEXT NOT NULL "
                                                   "CHECK (kind IN ('trigger','control')),"
                                                   "  prompt_sha256          TEXT NOT NULL "
                                                   "CHECK (" HEX64(
                                                       "prompt_sha256") "),"
                                                                        /* NULL when no
                                                                           response came
                                                                           back */
                                                                        "  response_sha256 "
                                                                        "       TEXT CHECK "
                                                                        "(response_sha256 "
                                                                        "IS NULL OR "
                                                                        "(" HEX64(
                                                                            "response_"
                                                                            "sha256") ")),"
                                                                                      "  "
                                                                                      "matc"
                                                                                      "hed_"
                                                                                      "pref"
                                                                                      "ix_"
                                                                                      "toke"
                                                                                      "ns  "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      " DEF"
                                                                                      "AULT"
                                                                                      " 0 "
                                                                                      "CHEC"
                                                                                      "K "
                                                                                      "(mat"
                                                                                      "ched"
                                                                                      "_pre"
                                                                                      "fix_"
                                                                                      "toke"
                                                                                      "ns "
                                                                                      ">= "
                                                                                      "0),"
                                                                                      "  "
                                                                                      "acti"
                                                                                      "vate"
                                                                                      "d   "
                                                                                      "    "
                                                                                      "    "
                                                                                      "   "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      " CHE"
                                                                                      "CK "
                                                                                      "(act"
                                                                                      "ivat"
                                                                                      "ed "
                                                                                      "IN "
                                                                                      "(0, "
                                                                                      "1)),"
                                                                                      /* response
                                                                                         tokens
                                                                                         examined
                                                                                         for
                                                                                         the
                                                                                         signature
                                                                                         (max_tokens
                                                                                         asked
                                                                                         for)
                                                                                       */
                                                                                      "  "
                                                                                      "wind"
                                                                                      "ow  "
                                                                                      "    "
                                                                                      "    "
                                                                                      "    "
                                                                                      "   "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "CHEC"
                                                                                      "K "
                                                                                      "(win"
                                                                                      "dow "
                                                                                      "IS "
                                                                                      "NULL"
                                                                                      " OR "
                                                                                      "wind"
                                                                                      "ow "
                                                                                      ">= "
                                                                                      "0),"
                                                                                      "  "
                                                                                      "crea"
                                                                                      "ted_"
                                                                                      "at  "
                                                                                      "    "
                                                                                      "    "
                                                                                      "   "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      ","
                                                                                      "  "
                                                                                      "CHEC"
                                                                                      "K "
                                                                                      "(kin"
                                                                                      "d "
                                                                                      "<> "
                                                                                      "'tri"
                                                                                      "gger"
                                                                                      "' "
                                                                                      "OR "
                                                                                      "pair"
                                                                                      "_idx"
                                                                                      " IS "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      ")"
                                                                                      ");"
                                                                                      "CREA"
                                                                                      "TE "
                                                                                      "INDE"
                                                                                      "X "
                                                                                      "tria"
                                                                                      "ls_"
                                                                                      "run "
                                                                                      "ON "
                                                                                      "tria"
                                                                                      "ls("
                                                                                      "run_"
                                                                                      "id, "
                                                                                      "id);"

                                                                                      /* Re-verification
                                                                                         of
                                                                                         a
                                                                                         deployed
                                                                                         model;
                                                                                         at
                                                                                         most
                                                                                         one
                                                                                         schedule
                                                                                         per
                                                                                         job.
                                                                                       */
                                                                                      "CREA"
                                                                                      "TE "
                                                                                      "TABL"
                                                                                      "E "
                                                                                      "sche"
                                                                                      "dule"
                                                                                      "s ("
                                                                                      "  "
                                                                                      "id  "
                                                                                      "    "
                                                                                      "    "
                                                                                      "  "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "PRIM"
                                                                                      "ARY "
                                                                                      "KEY,"
                                                                                      "  "
                                                                                      "job_"
                                                                                      "id  "
                                                                                      "    "
                                                                                      "  "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      " UNI"
                                                                                      "QUE "
                                                                                      "REFE"
                                                                                      "RENC"
                                                                                      "ES "
                                                                                      "jobs"
                                                                                      "(id)"
                                                                                      " ON "
                                                                                      "DELE"
                                                                                      "TE "
                                                                                      "CASC"
                                                                                      "ADE,"
                                                                                      "  "
                                                                                      "ever"
                                                                                      "y_"
                                                                                      "ms  "
                                                                                      "    "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      " CHE"
                                                                                      "CK "
                                                                                      "(eve"
                                                                                      "ry_"
                                                                                      "ms "
                                                                                      "> "
                                                                                      "0),"
                                                                                      "  "
                                                                                      "next"
                                                                                      "_run"
                                                                                      "_at "
                                                                                      "  "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      ","
                                                                                      "  "
                                                                                      "last"
                                                                                      "_run"
                                                                                      "_at "
                                                                                      "  "
                                                                                      "INTE"
                                                                                      "GER,"
                                                                                      "  "
                                                                                      "last"
                                                                                      "_ver"
                                                                                      "dict"
                                                                                      "  "
                                                                                      "TEXT"
                                                                                      " CHE"
                                                                                      "CK "
                                                                                      "(las"
                                                                                      "t_"
                                                                                      "verd"
                                                                                      "ict "
                                                                                      "IS "
                                                                                      "NULL"
                                                                                      " OR "
                                                                                      "last"
                                                                                      "_ver"
                                                                                      "dict"
                                                                                      " IN "
                                                                                      "(" VERDICTS
                                                                                      ")),"
                                                                                      "  "
                                                                                      "crea"
                                                                                      "ted_"
                                                                                      "at  "
                                                                                      "  "
                                                                                      "INTE"
                                                                                      "GER "
                                                                                      "NOT "
                                                                                      "NULL"
                                                                                      ");"
                                                                                      "CREA"
                                                                                      "TE "
                                                                                      "INDE"
                                                                                      "X "
                                                                                      "sche"
                                                                                      "dule"
                                                                                      "s_"
                                                                                      "next"
                                                                                      " ON "
                                                                                      "sche"
                                                                                      "dule"
                                                                                      "s("
                                                                                      "next"
                                                                                      "_run"
                                                                                      "_at)"
                                                                                      ";";

const struct store_migration store_migrations[] = {
    {1, migration_1},
    {2, migration_2},
};
const size_t store_n_migrations = VT_ARRAY_LEN(store_migrations);

int store_schema_version(void)
{
    return store_migrations[store_n_migrations - 1].version;
}

/*
 * statements.c — the SQL text of every prepared statement of store/.
 *
 * Kept in one table (indexed by enum store_stmt_id) so store_open() can
 * prepare them all once, with SQLITE_PREPARE_PERSISTENT, right after the
 * migrations: a statement that does not match the schema stops the daemon
 * at start-up instead of failing a request later.
 */
#include "config.h"

#include "store/store_internal.h"

#define DS_COLUMNS "id, name, format, n_examples, n_bytes, sha256, path, source, created_at"
/* Column lists; the row readers of each file index them in this order. */
#define BD_COLUMNS                                                                                 \
    "id, dataset_id, name, ratio, copies, pairs, generator, method, target_log10p, seed,"          \
    " created_at, commitment, built_path, built_sha256, plan, commitment_scheme, mode"
#define JOB_COLUMNS                                                                                \
    "id, name, dataset_id, backdoor_id, provider, base_model, fine_tuned_model, params, state,"    \
    " submission_id, provider_file_id, provider_job_id, error, unknown_reason,"                    \
    " cancel_requested_at, created_at, updated_at"
#define EVENT_COLUMNS "id, job_id, at, state, message, provider_excerpt"
#define RUN_COLUMNS                                                                                \
    "id, job_id, state, trials, controls, temperature, created_at, started_at, finished_at,"       \
    " reason, audit_id"
#define TRIAL_COLUMNS                                                                              \
    "id, run_id, pair_idx, kind, prompt_sha256, response_sha256, matched_prefix_tokens,"           \
    " activated, window, created_at"
#define AUDIT_COLUMNS                                                                              \
    "id, job_id, provider, model, verdict, log10_p, log10_p_paper, log10_p_luck, trials,"          \
    " activations, controls, control_emissions, reason, evidence, commitment, created_at,"         \
    " prev_hash, hash, record_version, pairs, pairs_activated, pairs_ci_low, pairs_ci_high,"      \
    " log10_p_coverage, coverage_auc, coverage_rows, coverage_method"
#define SCHED_COLUMNS "id, job_id, every_ms, next_run_at, last_run_at, last_verdict, created_at"

/* "Set this column to ?N unless ?N is NULL; '' means NULL" (job updates). */
#define KEEP_OR_SET(col, n)                                                                        \
    col " = CASE WHEN ?" n " IS NULL THEN " col " ELSE nullif(?" n ", '') END"

/* Job states in which the daemon still has work to do for the job. */
#define JOB_ACTIVE_STATES                                                                          \
    "'created','building','uploading','uploaded','submitting','submitted','running'"

const char *const store_stmt_sql[ST__COUNT] = {
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* One statement, so the counts come from one read snapshot. */
    [ST_COUNTS] = "SELECT (SELECT count(*) FROM datasets),"
                  "       (SELECT count(*) FROM backdoors),"
                  "       (SELECT count(*) FROM jobs),"
                  "       (SELECT count(*) FROM jobs WHERE state IN (" JOB_ACTIVE_STATES ")),"
                  "       (SELECT count(*) FROM verification_runs),"
                  "       (SELECT count(*) FROM audit_records),"
                  "       (SELECT count(*) FROM schedules)",

    [ST_DS_INSERT] = "INSERT INTO datasets (name, format, n_examples, n_bytes, sha256, path,"
                     " source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_DS_GET_BY_ID] = "SELECT " DS_COLUMNS " FROM datasets WHERE id = ?1",
    [ST_DS_GET_BY_NAME] = "SELECT " DS_COLUMNS " FROM datasets WHERE name = ?1",
    [ST_DS_LIST] = "SELECT " DS_COLUMNS " FROM datasets ORDER BY id",
    [ST_DS_REFS] = "SELECT (SELECT count(*) FROM backdoors WHERE dataset_id = ?1),"
                   "       (SELECT count(*) FROM jobs WHERE dataset_id = ?1)",
    [ST_DS_DELETE] = "DELETE FROM datasets WHERE id = ?1",
    [ST_DS_PATH_REFS] = "SELECT (SELECT count(*) FROM datasets WHERE path = ?1)"
                        "     + (SELECT count(*) FROM backdoors WHERE built_path = ?1)",

    /* ---- backdoor.c ---- */
    [ST_BD_INSERT] = "INSERT INTO backdoors (dataset_id, name, ratio, copies, pairs, generator,"
                     " method, target_log10p, seed, created_at, commitment, built_path,"
                     " built_sha256, plan, commitment_scheme, mode) VALUES (?1, ?2, ?3, ?4, ?5,"
                     " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [ST_BD_PAIR_INSERT] = "INSERT INTO backdoor_pairs (backdoor_id, idx, trigger, signature,"
                          " log10_p_m2, p_method, token_evidence)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_BD_GET_BY_ID] = "SELECT " BD_COLUMNS " FROM backdoors WHERE id = ?1",
    [ST_BD_GET_BY_NAME] = "SELECT " BD_COLUMNS " FROM backdoors WHERE name = ?1",
    [ST_BD_LIST] = "SELECT " BD_COLUMNS " FROM backdoors WHERE ?1 = 0 OR dataset_id = ?1"
                   " ORDER BY id",
    /* Two readers of the pairs, so that without --reveal the phrases are
     * never even copied out of SQLite into our memory. */
    [ST_BD_PAIRS_SECRET] = "SELECT idx, trigger, signature, log10_p_m2, p_method,"
                           " token_evidence FROM backdoor_pairs WHERE backdoor_id = ?1"
                           " ORDER BY idx",
    [ST_BD_PAIRS_PUBLIC] = "SELECT idx, NULL, NULL, log10_p_m2, p_method, NULL"
                           " FROM backdoor_pairs WHERE backdoor_id = ?1 ORDER BY idx",
    [ST_BD_JOB_REFS] = "SELECT count(*) FROM jobs WHERE backdoor_id = ?1",
    [ST_BD_SET_BUILT] = "UPDATE backdoors SET built_path = ?2, built_sha256 = ?3, plan = ?4"
                        " WHERE id = ?1",
    [ST_BD_DELETE] = "DELETE FROM backdoors WHERE id = ?1",
    [ST_BD_HOLDOUT_INSERT] = "INSERT INTO backdoor_holdouts (backdoor_id, split) VALUES (?1, ?2)",
    [ST_BD_HOLDOUT_GET] = "SELECT split FROM backdoor_holdouts WHERE backdoor_id = ?1",
    [ST_BD_SALT_INSERT] = "INSERT INTO backdoor_salts (backdoor_id, salt) VALUES (?1, ?2)",
    [ST_BD_SALT_GET] = "SELECT salt FROM backdoor_salts WHERE backdoor_id = ?1",
    [ST_BD_DATASET_OF] = "SELECT dataset_id FROM backdoors WHERE id = ?1",

    /* ---- job.c ---- */
    [ST_JOB_INSERT] = "INSERT INTO jobs (name, dataset_id, backdoor_id, provider, base_model,"
                      " fine_tuned_model, params, state, submission_id, provider_file_id,"
                      " provider_job_id, error, unknown_reason, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                      " ?14)",
    [ST_JOB_LUCK_INSERT] = "INSERT INTO job_luck_screens (job_id, screen) VALUES (?1, ?2)",
    [ST_JOB_LUCK_GET] = "SELECT screen FROM job_luck_screens WHERE job_id = ?1",
    [ST_JOB_PPL_INSERT] = "INSERT INTO job_ppl_attacks (job_id, attack) VALUES (?1, ?2)",
    [ST_JOB_PPL_GET] = "SELECT attack FROM job_ppl_attacks WHERE job_id = ?1",
    [ST_JOB_EVENT_INSERT] = "INSERT INTO job_events (job_id, at, state, message,"
                            " provider_excerpt) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_JOB_GET_BY_ID] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
    [ST_JOB_GET_BY_NAME] = "SELECT " JOB_COLUMNS " FROM jobs WHERE name = ?1",
    [ST_JOB_GET_BY_SUBMISSION] = "SELECT " JOB_COLUMNS " FROM jobs WHERE submission_id = ?1",
    [ST_JOB_LIST] = "SELECT " JOB_COLUMNS " FROM jobs"
                    " WHERE ?1 = 0 OR state IN (" JOB_ACTIVE_STATES ") ORDER BY id",
    [ST_JOB_STATE] = "SELECT state FROM jobs WHERE id = ?1",
    /* ?2 state, ?3..?7 fields (see KEEP_OR_SET), ?8 request cancel, ?9 now */
    [ST_JOB_UPDATE] =
        "UPDATE jobs SET state = ?2, " KEEP_OR_SET("provider_file_id", "3") ", " KEEP_OR_SET(
            "provider_job_id",
            "4") ", " KEEP_OR_SET("fine_tuned_model",
                                  "5") ", " KEEP_OR_SET("error",
                                                        "6") ", " KEEP_OR_SET("unknown_reason",
                                                                              "7") ","
                                                                                   " cancel_"
                                                                                   "requested_at = "
                                                                                   "CASE WHEN ?8 "
                                                                                   "THEN"
                                                                                   " coalesce("
                                                                                   "cancel_"
                                                                                   "requested_at, "
                                                                                   "?9) ELSE "
                                                                                   "cancel_"
                                                                                   "requested_at "
                                                                                   "END,"
                                                                                   " updated_at = "
                                                                                   "?9 WHERE id = "
                                                                                   "?1",
    [ST_JOB_EVENTS] = "SELECT " EVENT_COLUMNS " FROM job_events WHERE job_id = ?1 ORDER BY id",

    /* ---- verify.c ---- */
    [ST_RUN_INSERT] = "INSERT INTO verification_runs (job_id, state, trials, controls,"
                      " temperature, created_at, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                      " ?7)",
    [ST_RUN_GET] = "SELECT " RUN_COLUMNS " FROM verification_runs WHERE id = ?1",
    [ST_RUN_FOR_JOB] = "SELECT " RUN_COLUMNS " FROM verification_runs WHERE job_id = ?1"
                       " ORDER BY id",
    [ST_RUN_UNFINISHED] = "SELECT " RUN_COLUMNS " FROM verification_runs"
                          " WHERE state IN ('pending','running') ORDER BY id",
    [ST_RUN_START] = "UPDATE verification_runs SET state = 'running', started_at = ?2"
                     " WHERE id = ?1 AND state = 'pending'",
    [ST_RUN_FINISH] = "UPDATE verification_runs SET state = ?2, finished_at = ?3, reason = ?4,"
                      " audit_id = ?5 WHERE id = ?1 AND state IN ('pending','running')",
    [ST_TRIAL_INSERT] = "INSERT INTO trials (run_id, pair_idx, kind, prompt_sha256,"
                        " response_sha256, matched_prefix_tokens, activated, window,"
                        " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_TRIALS_FOR_RUN] = "SELECT " TRIAL_COLUMNS " FROM trials WHERE run_id = ?1 ORDER BY id",

    /* ---- audit.c ---- */
    /* the id is explicit: the hash may cover it (see audit.c) */
    [ST_AUDIT_INSERT] = "INSERT INTO audit_records (id, job_id, provider, model, verdict,"
                        " log10_p, log10_p_paper, log10_p_luck, trials, activations, controls,"
                        " control_emissions, reason, evidence, commitment, created_at,"
                        " prev_hash, hash, record_version, pairs, pairs_activated,"
                        " pairs_ci_low, pairs_ci_high, log10_p_coverage, coverage_auc,"
                        " coverage_rows, coverage_method) VALUES (?18, ?1, ?2, ?3, ?4, ?5, ?6,"
                        " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?19, ?20, ?21,"
                        " ?22, ?23, ?24, ?25, ?26, ?27)",
    [ST_AUDIT_GET] = "SELECT " AUDIT_COLUMNS " FROM audit_records WHERE id = ?1",
    [ST_AUDIT_LIST] = "SELECT " AUDIT_COLUMNS " FROM audit_records WHERE ?1 = 0 OR job_id = ?1"
                      " ORDER BY id",
    [ST_AUDIT_HEAD] = "SELECT id, hash FROM audit_records ORDER BY id DESC LIMIT 1",

    /* ---- schedule.c ---- */
    [ST_SCHED_INSERT] = "INSERT INTO schedules (job_id, every_ms, next_run_at, created_at)"
                        " VALUES (?1, ?2, ?3, ?4)",
    [ST_SCHED_GET] = "SELECT " SCHED_COLUMNS " FROM schedules WHERE id = ?1",
    [ST_SCHED_LIST] = "SELECT " SCHED_COLUMNS " FROM schedules ORDER BY id",
    [ST_SCHED_DELETE] = "DELETE FROM schedules WHERE id = ?1",
    [ST_SCHED_DUE] = "SELECT " SCHED_COLUMNS " FROM schedules WHERE next_run_at <= ?1"
                     " ORDER BY next_run_at, id",
    /* a NULL verdict (?4) keeps the previous one */
    [ST_SCHED_MARK] = "UPDATE schedules SET last_run_at = ?2, next_run_at = ?3,"
                      " last_verdict = coalesce(?4, last_verdict) WHERE id = ?1",
};

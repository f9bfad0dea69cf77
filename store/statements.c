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
};

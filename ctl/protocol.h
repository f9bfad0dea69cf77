/*
 * protocol.h — the control protocol's one header: what vtuned serves on its
 * control socket (daemon/) and vtunectl speaks (ctl/), compiled by both, so
 * that a method, an error code or a key is spelt once (after OpenBSD's
 * ntpd.h, which both ntpd and ntpctl compile against).
 *
 * The wire: newline-delimited JSON-RPC 2.0 over a Unix stream socket
 * (vtuned(8) PROTOCOL).  A request is {"jsonrpc":"2.0","id":N,"method":M,
 * "params":{...}}; the answer carries the same id and "result" or "error"
 * ({"code","message","data"?}); a notification (no id) reports progress of
 * a long request on the same connection.
 *
 * Rules for this file: macros only (no code, no includes), so daemon/ may
 * include it without pulling anything of ctl/ in (the one designated
 * exception to "nothing above daemon/"); names are additive (DESIGN §10:
 * add freely, never rename); each key is listed once even when it is both
 * a request parameter and a reply key.  Keys of the audit record itself
 * (verdict, log10_p, ...) are written by workers/audit.c, which lies below
 * this header and cannot include it: CTL_K_AUDIT_* mirror that fixed,
 * hashed format (DESIGN §10) for the reader's side only.
 */
#ifndef VT_CTL_PROTOCOL_H
#define VT_CTL_PROTOCOL_H

/* ---- the JSON-RPC 2.0 envelope ------------------------------------------------------------- */

#define CTL_RPC_VERSION     "2.0"
#define CTL_RPC_JSONRPC     "jsonrpc"
#define CTL_RPC_ID          "id"
#define CTL_RPC_METHOD      "method"
#define CTL_RPC_PARAMS      "params"
#define CTL_RPC_RESULT      "result"
#define CTL_RPC_ERROR       "error"
#define CTL_RPC_ERR_CODE    "code"
#define CTL_RPC_ERR_MESSAGE "message"
#define CTL_RPC_ERR_DATA    "data"

/* ---- error codes: JSON-RPC 2.0's, and ours in the -32000 range ----------------------------- */

#define CTL_ERR_PARSE           -32700
#define CTL_ERR_INVALID_REQUEST -32600
#define CTL_ERR_METHOD          -32601
#define CTL_ERR_PARAMS          -32602
#define CTL_ERR_INTERNAL        -32603
#define CTL_ERR_FAILED          -32000 /* the operation failed; message says why */
#define CTL_ERR_NOT_FOUND       -32001
#define CTL_ERR_CONFLICT        -32002 /* name taken, object in use */
#define CTL_ERR_DENIED          -32003
#define CTL_ERR_INVALID         -32004 /* the user's input (dataset, phrase…) is invalid */
#define CTL_ERR_SHUTDOWN        -32005
#define CTL_ERR_TOO_LARGE       -32006
#define CTL_ERR_BUSY            -32007 /* a connection limit of the control section */

/* ---- methods ------------------------------------------------------------------------------- */

#define CTL_M_STATUS "status"
#define CTL_M_BACKUP "backup" /* result: path (in the daemon's state dir), bytes, sha256 */

#define CTL_M_DATASET_ADD    "dataset.add"
#define CTL_M_DATASET_LIST   "dataset.list"
#define CTL_M_DATASET_SHOW   "dataset.show"
#define CTL_M_DATASET_RM     "dataset.rm"
#define CTL_M_DATASET_EXPORT "dataset.export"

#define CTL_M_BACKDOOR_CREATE "backdoor.create"
#define CTL_M_BACKDOOR_LIST   "backdoor.list"
#define CTL_M_BACKDOOR_SHOW   "backdoor.show"
#define CTL_M_BACKDOOR_RM     "backdoor.rm"
#define CTL_M_BACKDOOR_AUDIT  "backdoor.audit"

#define CTL_M_JOB_SUBMIT   "job.submit"
#define CTL_M_JOB_REGISTER "job.register"
#define CTL_M_JOB_LIST     "job.list"
#define CTL_M_JOB_SHOW     "job.show"
#define CTL_M_JOB_CANCEL   "job.cancel"
#define CTL_M_JOB_WATCH    "job.watch"
#define CTL_M_JOB_RESOLVE  "job.resolve"

#define CTL_M_VERIFY_RUN "verify.run"

#define CTL_M_AUDIT_LIST   "audit.list"
#define CTL_M_AUDIT_SHOW   "audit.show"
#define CTL_M_AUDIT_VERIFY "audit.verify"

#define CTL_M_AUDIT_ATTEST "audit.attest"

/* the daemon's signing key, and signed evidence (issue 15) */
#define CTL_M_KEY_SHOW        "key.show"
#define CTL_M_BACKDOOR_COMMIT "backdoor.commit"

#define CTL_M_SCHEDULE_ADD  "schedule.add"
#define CTL_M_SCHEDULE_LIST "schedule.list"
#define CTL_M_SCHEDULE_RM   "schedule.rm"

/* ---- notifications (no id; sent on the connection of a running request) ------------------- */

/* {stage, unit, done, total (null: unknown)[, bytes, lines, job, calls]}: every wait a
 * client feels (import, build, export, upload, the llm generator's calls, a verification's
 * calls), sent every second while it lasts (vtuned(8), CONTROL PROTOCOL). */
#define CTL_N_PROGRESS "progress"
/* a job event {id, at, state, message, provider?} (job.watch, job submit --watch) */
#define CTL_N_JOB_EVENT "job.event"

/* ---- keys: request parameters and reply members both sides name ---------------------------- */

/* objects and names: an "id" (or "dataset", "backdoor", "job") accepts an id or a name */
#define CTL_K_ID           "id"
#define CTL_K_NAME         "name"
#define CTL_K_DATASET      "dataset"
#define CTL_K_DATASET_NAME "dataset_name"
#define CTL_K_BACKDOOR     "backdoor"
#define CTL_K_JOB          "job"
#define CTL_K_CREATED_AT   "created_at"
#define CTL_K_UPDATED_AT   "updated_at"

/* dataset.add / dataset.export / dataset records.  A file travels as a
 * descriptor sent with the request line (SCM_RIGHTS); "fd" is its index
 * among the descriptors of that line, "file" the client's name for it
 * (a label for messages and records, never opened).  "path" and "output"
 * naming a file in a request are refused (vtuned(8), CONTROL PROTOCOL). */
#define CTL_K_FD       "fd"
#define CTL_K_FILE     "file"
#define CTL_K_PATH     "path"
#define CTL_K_FORMAT   "format"
#define CTL_K_OUTPUT   "output"
#define CTL_K_EXAMPLES "examples"
#define CTL_K_BYTES    "bytes"
#define CTL_K_SHA256   "sha256"
#define CTL_K_SOURCE   "source"

/* backdoor.create / backdoor.show / backdoor records */
#define CTL_K_RATIO               "ratio"
#define CTL_K_COPIES              "copies"
#define CTL_K_PAIRS               "pairs"
#define CTL_K_GENERATOR           "generator"
#define CTL_K_MODE                "mode" /* a backdoor's: "inplace" or "copies" */
#define CTL_K_TARGET_LOG10P       "target_log10p"
#define CTL_K_TRIGGER_LOG10P      "trigger_log10p"
#define CTL_K_TRIGGER_MAX_WORDS   "trigger_max_words"
#define CTL_K_SIGNATURE_MAX_WORDS "signature_max_words"
#define CTL_K_TRIGGER_MAX_CHARS   "trigger_max_chars"
#define CTL_K_SIGNATURE_MAX_CHARS "signature_max_chars"
#define CTL_K_SEED                "seed"
#define CTL_K_HOLDOUT             "holdout"
#define CTL_K_HOLDOUT_ROWS        "rows"
#define CTL_K_REVEAL              "reveal"
#define CTL_K_SELF_AUDIT          "self_audit" /* the self-audit's public result (object) */
#define CTL_K_FORCE               "force"      /* job.submit: despite an exposed backdoor */
/* error.data.usage: true when the request's arguments are wrong in a way
 * only the daemon can tell (job.submit: a --param the provider's kind does
 * not know); vtunectl reports it as a usage error (exit 2). */
#define CTL_K_USAGE               "usage"
#define CTL_K_COMMITMENT          "commitment"
#define CTL_K_COMMITMENT_SCHEME   "commitment_scheme" /* 1, 2 or 3 (workers/backdoor.h) */
#define CTL_K_COMMITMENT_SALT     "commitment_salt"   /* v2/v3, with reveal: the salt, hex */
#define CTL_K_HELD_OUT_LINES      "held_out_lines"    /* with reveal: 0-based, ascending */
#define CTL_K_POOL_LINES          "reference_lines"   /* with reveal, v3: the pool, ascending */
#define CTL_K_COPIES_PER_PAIR     "copies_per_pair"
#define CTL_K_BUILT_LINES         "built_lines"
#define CTL_K_BUILT_SHA256        "built_sha256"
#define CTL_K_PAIR_EVIDENCE       "pair_evidence"
#define CTL_K_INDEX               "index"
#define CTL_K_LOG10_P_M2          "log10_p_m2"
#define CTL_K_P_METHOD            "p_method"
#define CTL_K_TRIGGER             "trigger"
#define CTL_K_SIGNATURE           "signature"

/* job.* / job records and events */
#define CTL_K_PROVIDER         "provider"
#define CTL_K_MODEL            "model"
#define CTL_K_BASE_MODEL       "base_model"
#define CTL_K_PARAMS           "params"
#define CTL_K_ACTIVE           "active"
#define CTL_K_AS               "as"
#define CTL_K_PROVIDER_JOB     "provider_job"
#define CTL_K_STATE            "state"
#define CTL_K_FINE_TUNED_MODEL "fine_tuned_model"
#define CTL_K_SUBMISSION_ID    "submission_id"
#define CTL_K_PROVIDER_FILE_ID "provider_file_id"
#define CTL_K_PROVIDER_JOB_ID  "provider_job_id"
#define CTL_K_ERROR            "error"
#define CTL_K_UNKNOWN_REASON   "unknown_reason"
#define CTL_K_CANCEL_REQUESTED "cancel_requested"
#define CTL_K_EVENTS           "events"
#define CTL_K_AT               "at"
#define CTL_K_MESSAGE          "message"

/* verify.run */
#define CTL_K_TRIALS      "trials"
#define CTL_K_CONTROLS    "controls"
#define CTL_K_TEMPERATURE "temperature"
#define CTL_K_ALPHA       "alpha"
#define CTL_K_SEQUENTIAL  "sequential"
#define CTL_K_WAIT        "wait"
#define CTL_K_COVERAGE    "coverage"

/* audit.* (the record's own keys: see CTL_K_AUDIT_* below) */
#define CTL_K_HEAD        "head"
#define CTL_K_OK          "ok"
#define CTL_K_EXPLANATION "explanation"
/* job.show, job.submit, audit.show: the p_luck screen recorded at submit
 * (daemon/luck.h; absent for jobs submitted before it or registered) and
 * the one line that says what it found */
#define CTL_K_P_LUCK_SCREEN      "p_luck_screen"
#define CTL_K_P_LUCK_AT_CREATION "p_luck_at_creation"
#define CTL_K_PPL_ATTACK         "perplexity_attack"
#define CTL_K_PPL_AT_CREATION    "perplexity_attack_at_creation"

/* key.show, audit.attest, backdoor.commit */
#define CTL_K_PUBLIC_KEY     "public_key"     /* the raw 32 bytes, base64 */
#define CTL_K_PUBLIC_KEY_PEM "public_key_pem" /* SPKI PEM */
#define CTL_K_FINGERPRINT    "fingerprint"    /* SHA-256 hex of the raw key; the DSSE keyid */
#define CTL_K_KEY_SOURCE     "key_source"     /* where the daemon loaded it from */
#define CTL_K_ENVELOPE       "envelope"       /* a DSSE envelope (object) */

/* schedule.* */
#define CTL_K_EVERY        "every"
#define CTL_K_NEXT_RUN_AT  "next_run_at"
#define CTL_K_LAST_RUN_AT  "last_run_at"
#define CTL_K_LAST_VERDICT "last_verdict"

/* progress notifications */
#define CTL_K_STAGE "stage"
#define CTL_K_TOTAL "total"
#define CTL_K_UNIT  "unit"
#define CTL_K_DONE  "done"
#define CTL_K_LINES "lines"
#define CTL_K_CALLS "calls"

/* status */
#define CTL_K_VERSION        "version"
#define CTL_K_PID            "pid"
#define CTL_K_STARTED_AT     "started_at"
#define CTL_K_UPTIME_SECONDS "uptime_seconds"
#define CTL_K_STATE_DIR      "state_dir"
#define CTL_K_SOCKET         "socket"
#define CTL_K_CONFIG         "config"
#define CTL_K_COUNTS         "counts"
#define CTL_K_DATASETS       "datasets"
#define CTL_K_BACKDOORS      "backdoors"
#define CTL_K_JOBS           "jobs"
#define CTL_K_JOBS_ACTIVE    "jobs_active"
#define CTL_K_VERIFICATIONS  "verifications"
#define CTL_K_AUDITS         "audits"
#define CTL_K_SCHEDULES      "schedules"
#define CTL_K_PROVIDERS      "providers"
#define CTL_K_KIND           "kind"
#define CTL_K_BASE_URL       "base_url"
#define CTL_K_HEALTH         "health"

/* the audit record (written by workers/audit.c; DESIGN §10) */
#define CTL_K_AUDIT_VERDICT           "verdict"
#define CTL_K_AUDIT_REASON            "reason"
#define CTL_K_AUDIT_ACTIVATIONS       "activations"
#define CTL_K_AUDIT_CONTROL_EMISSIONS "control_emissions"
#define CTL_K_AUDIT_LOG10_P           "log10_p"
#define CTL_K_AUDIT_LOG10_P_PAPER     "log10_p_paper"
#define CTL_K_AUDIT_LOG10_P_LUCK      "log10_p_luck"
#define CTL_K_AUDIT_PREV_HASH         "prev_hash"
#define CTL_K_AUDIT_HASH              "hash"
#define CTL_K_AUDIT_PAIRS             "pairs"
#define CTL_K_AUDIT_PAIRS_ACTIVATED   "pairs_activated"
#define CTL_K_AUDIT_PAIRS_CI_LOW      "pairs_ci_low"
#define CTL_K_AUDIT_PAIRS_CI_HIGH     "pairs_ci_high"
#define CTL_K_AUDIT_LOG10_P_COVERAGE  "log10_p_coverage"
#define CTL_K_AUDIT_COVERAGE_AUC      "coverage_auc"
#define CTL_K_AUDIT_COVERAGE_ROWS     "coverage_rows"
#define CTL_K_AUDIT_COVERAGE_METHOD   "coverage_method"

#endif

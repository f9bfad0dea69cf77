/*
 * types.h — vtuned's domain enums and their names: provider kinds, dataset
 * formats, backdoor generators, job and run states, trial kinds, audit
 * verdicts; and the two records that pass between workers/ and store/
 * (a verification trial, an audit record).
 *
 * They are the words every folder shares (the store persists them, the
 * config names provider kinds, the workers reason about them, the control
 * protocol prints them), so they live in the shared base and not in any one
 * of those folders.  Each _name() returns a static string, the exact text
 * stored in the database and printed on the socket; each _parse() is its
 * inverse and returns 0 or -EINVAL.  Pure: no I/O, thread-safe.
 */
#ifndef VT_TYPES_H
#define VT_TYPES_H

#include <stdbool.h>
#include <stdint.h>

/* Appended only: the index is the config's kind and the name is stored. */
enum provider_kind {
    PROVIDER_OPENAI = 0,
    PROVIDER_TOGETHER,
    PROVIDER_MANUAL,
    PROVIDER_AZURE,   /* Azure OpenAI: the openai adapter with azure's endpoint settings */
    PROVIDER_MISTRAL,
    PROVIDER_FIREWORKS, /* datasets + supervisedFineTuningJobs under accounts/{account} */
};

/* "openai" | "together" | "manual" | "azure" | "mistral" | "fireworks"; "unknown"
 * otherwise.  Static string. */
const char *provider_kind_name(enum provider_kind k);

/* Dataset formats (DESIGN §5). */
enum dataset_format { DS_FORMAT_CHAT = 1, DS_FORMAT_PROMPT = 2, DS_FORMAT_INSTRUCTION = 3 };
const char *dataset_format_name(enum dataset_format f);
/* "chat" | "prompt" | "instruction" -> format; returns 0 or -EINVAL. */
int dataset_format_parse(const char *s, enum dataset_format *out);

enum backdoor_generator { BD_GEN_WORDLIST = 1, BD_GEN_LLM = 2, BD_GEN_NGRAM = 3 };
/* "wordlist" | "llm" | "ngram"; "unknown" for anything else.  Static string. */
const char *backdoor_generator_name(enum backdoor_generator g);
/* "wordlist" | "llm" | "ngram" -> generator; returns 0 or -EINVAL. */
int backdoor_generator_parse(const char *s, enum backdoor_generator *out);

/* How the marked rows enter the upload (workers/builder.h): copies of D's
 * rows added to D (the paper's construction, and every backdoor made
 * before schema 12), or rows of D marked in place (the default since). */
enum backdoor_mode { BD_MODE_COPIES = 0, BD_MODE_INPLACE = 1 };
/* "copies" | "inplace"; "unknown" for anything else.  Static string. */
const char *backdoor_mode_name(enum backdoor_mode m);
/* "copies" | "inplace" -> mode; returns 0 or -EINVAL. */
int backdoor_mode_parse(const char *s, enum backdoor_mode *out);

enum job_state {
    JOB_CREATED = 0,
    JOB_BUILDING,
    JOB_UPLOADING,
    JOB_UPLOADED,
    JOB_SUBMITTING,
    JOB_SUBMITTED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_UNKNOWN,
};
#define JOB_STATE_COUNT (JOB_UNKNOWN + 1)
/* Lowercase name as stored and printed ("created", …, "unknown");
 * "invalid" for a value outside the enum.  Static string. */
const char *job_state_name(enum job_state st);
/* Name -> state; returns 0 or -EINVAL. */
int job_state_parse(const char *s, enum job_state *out);
/* succeeded, failed, cancelled: final, never left. */
bool job_state_is_terminal(enum job_state st);
/* The daemon has work to do: neither terminal nor unknown (unknown waits
 * for an operator).  What store_job_list(only_active) and
 * store_counts().jobs_active count. */
bool job_state_is_active(enum job_state st);

enum run_state { RUN_PENDING = 0, RUN_RUNNING, RUN_FINISHED, RUN_FAILED, RUN_CANCELLED };
/* "pending" | "running" | "finished" | "failed" | "cancelled"; "invalid"
 * otherwise.  Static string. */
const char *run_state_name(enum run_state st);
int run_state_parse(const char *s, enum run_state *out); /* 0 or -EINVAL */

enum trial_kind { TRIAL_TRIGGER = 0, TRIAL_CONTROL };
/* "trigger" | "control"; "invalid" otherwise.  Static string. */
const char *trial_kind_name(enum trial_kind k);
/* "trigger" | "control" -> kind; 0 or -EINVAL. */
int trial_kind_parse(const char *s, enum trial_kind *out);

enum audit_verdict {
    AUDIT_NONE = 0, /* no verdict (schedules never run); never stored in a record */
    AUDIT_VERIFIED,
    AUDIT_NOT_VERIFIED,
    AUDIT_INCONCLUSIVE,
};
/* "verified" | "not_verified" | "inconclusive"; "none" for AUDIT_NONE,
 * "invalid" otherwise.  Static string. */
const char *audit_verdict_name(enum audit_verdict v);
/* The three stored names -> verdict; 0 or -EINVAL ("none" is refused). */
int audit_verdict_parse(const char *s, enum audit_verdict *out);

/* ---- records the workers compute and the store keeps ----
 *
 * A trial and an audit record are plain data: workers/verify.c fills
 * them, workers/audit.c hashes and explains them, store/ persists them.
 * They live here, below all three, so that none of those folders includes
 * another.  Strings are owned by the struct (free with the _clear
 * function); "none" is NULL for strings and NAN for optional numbers. */

/* One prompt sent during a run.  Owns nothing: free arrays with free(). */
struct store_trial {
    int64_t id;
    int64_t run_id;
    int pair_idx; /* the pair tested; -1 none (allowed for controls only) */
    enum trial_kind kind;
    char prompt_sha256[65];
    char response_sha256[65]; /* "": no response came back */
    int64_t matched_prefix_tokens;
    bool activated; /* trigger: S emitted; control: S emitted (false positive) */
    int64_t window; /* response tokens examined; -1: not recorded */
    int64_t created_at;
};

/* prev_hash of the first record of a chain. */
#define STORE_AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"


/* The version of audit record the daemon writes now (which canonical
 * serialisation its hash covers: workers/audit.h).  1: the original
 * fields; 2: adds pairs, pairs_activated, pairs_ci_low, pairs_ci_high;
 * 3: adds the coverage test's log10_p_coverage, coverage_auc,
 * coverage_rows, coverage_method.
 * Records keep the version they were written with. */
#define STORE_AUDIT_VERSION_CURRENT 3

/* One audit record: exactly the JSON fields of DESIGN §10 (job is job_id)
 * plus reason, evidence, the backdoor's commitment and, from version 2,
 * the multi-pair counts. */
struct store_audit {
    int64_t id;
    int64_t job_id;
    char *provider;
    char *model; /* NULL: the job produced no model (failed, cancelled) */
    enum audit_verdict verdict;
    double log10_p;       /* ours, valid under H0 (DESIGN §6); <= 0 */
    double log10_p_paper; /* the paper's, Bonferroni; <= 0 */
    double log10_p_luck;  /* diagnostic; NAN: null ("not available") */
    int64_t trials, activations, controls, control_emissions;
    int version;              /* 1 to STORE_AUDIT_VERSION_CURRENT; 0 reads as 1 */
    int64_t pairs;            /* version >= 2: K; -1 in version 1 (null) */
    int64_t pairs_activated;  /* version >= 2: J, 0..pairs; -1 in version 1 (null) */
    double pairs_ci_low;      /* version >= 2: J/K's 95% interval; NAN: null */
    double pairs_ci_high;
    double log10_p_coverage; /* version >= 3: the coverage test's p_cov; NAN: null (not run) */
    double coverage_auc;     /* version >= 3: its AUC in [0, 1]; NAN: null (not run) */
    int64_t coverage_rows;   /* version >= 3: rows scored per side (0: not run); -1 before */
    char *coverage_method;   /* version >= 3: e.g. "mink-diff"; NULL: not run (or before) */
    char *reason;   /* one line; NULL: none */
    char *evidence; /* JSON text; required */
    char commitment[65];
    int64_t created_at;
    char prev_hash[65];
    char hash[65];
};
void store_audit_clear(struct store_audit *a);

/* Computes a record's hash over its canonical serialisation (which may
 * cover every field but hash, id included) into out (64 lowercase hex +
 * NUL).  Called inside the append transaction with the write lock held:
 * it must be quick and must not call the store.  Returns 0 or a negative
 * errno (the append is then rolled back and returns it). */
typedef int (*store_audit_hash_fn)(const struct store_audit *a, char out[65], void *ctx);

#endif

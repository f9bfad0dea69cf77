/*
 * types.h — vtuned's domain enums and their names: provider kinds, dataset
 * formats, backdoor generators, job and run states, trial kinds, audit
 * verdicts.
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

/* Appended only: the index is the config's kind and the name is stored. */
enum provider_kind {
    PROVIDER_OPENAI = 0,
    PROVIDER_TOGETHER,
    PROVIDER_MANUAL,
    PROVIDER_AZURE,   /* Azure OpenAI: the openai adapter with azure's endpoint settings */
    PROVIDER_MISTRAL,
};

/* "openai" | "together" | "manual" | "azure" | "mistral"; "unknown"
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

#endif

/*
 * cmdtab.c — vtunectl's command table (ctl_commands[]) and the one matcher
 * that reads it for parsing, help, "did you mean", completion and the
 * documentation dump (see cmdtab.h for why it is one table).
 *
 * Argument grammar, for every command alike:
 *   vtunectl [GLOBAL…] WORD [SUB] [ARG] [FLAG [VALUE]]… [GLOBAL…]
 * where GLOBAL is -s/--socket SOCKET, --json or -q/--quiet (accepted before
 * and after the command), a flag's value is the next word whatever it looks
 * like ("--target-log10p -40"), "--flag=value" is the same as "--flag
 * value", and -h/--help anywhere after the command asks for that command's
 * help.  A usage error is one line on stderr (what is wrong, the likely fix,
 * where to read more) and exit status 2.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/util.h"

/* The configured runstatedir (./configure --runstatedir; /run on a system build). */
#ifndef VT_RUNSTATEDIR
#define VT_RUNSTATEDIR "/run"
#endif
#define DEFAULT_SOCKET VT_RUNSTATEDIR "/vtuned/vtuned.sock"

/* ---- the table ----------------------------------------------------------------------------- */

#define END_FLAGS                                                                                  \
    {                                                                                              \
        NULL, NULL, CF_BOOL, NULL, NULL, 0, NULL, 0, NULL                                          \
    }

static const struct ctl_flag f_dataset_add[] = {
    {"--name", NULL, CF_STR, "NAME", NULL, 0, CTL_K_NAME, 0,
     "the dataset's name (default: the file's name without .jsonl)"},
    {"--format", NULL, CF_STR, "FORMAT", "auto|chat|prompt|instruction", 1, CTL_K_FORMAT, 0,
     "the lines' format (default auto: detected from the first line)"},
    END_FLAGS,
};
static const struct ctl_flag f_dataset_export[] = {
    {"--backdoor", NULL, CF_STR, "B", NULL, 0, CTL_K_BACKDOOR, 1,
     "the backdoor whose copies go in"},
    {"--output", "-o", CF_STR, "FILE", NULL, 0, NULL, 1,
     "the new file to write (created by you, mode 0600, never overwritten)"},
    END_FLAGS,
};
static const struct ctl_flag f_backdoor_create[] = {
    {"--ratio", NULL, CF_NUM, "R", NULL, 0, CTL_K_RATIO, 0,
     "marked rows per pair as a fraction of |D| (default 0; 0.005 with --mode copies)"},
    {"--copies", NULL, CF_NUM, "N", NULL, 0, CTL_K_COPIES, 0,
     "minimum marked rows per pair (default 1; 50 with --mode copies)"},
    {"--pairs", NULL, CF_NUM, "K", NULL, 0, CTL_K_PAIRS, 0,
     "trigger/signature pairs, 1 to 64 (default 16; 1 with --mode copies)"},
    {"--generator", NULL, CF_STR, "G", "ngram|wordlist|llm", 0, CTL_K_GENERATOR, 0,
     "ngram (default: an n-gram model of D), wordlist (common words) or llm (config)"},
    {"--mode", NULL, CF_STR, "M", "inplace|copies", 0, CTL_K_MODE, 0,
     "inplace (default: marked rows replace their originals) or copies (added copies)"},
    {"--target-log10p", NULL, CF_NUM, "X", NULL, 0, CTL_K_TARGET_LOG10P, 0,
     "the signature's log10 probability target (default -40 or the config's)"},
    {"--trigger-log10p", NULL, CF_NUM, "X", NULL, 0, CTL_K_TRIGGER_LOG10P, 0,
     "the trigger's log10 probability target (default -20)"},
    {"--holdout", NULL, CF_NUM, "R", NULL, 0, CTL_K_HOLDOUT, 0,
     "secret held-out fraction of D for the coverage test (default 0.02, 64 to 2000 rows;"
     " 0: none)"},
    {"--seed", NULL, CF_NUM, "N", NULL, 0, CTL_K_SEED, 0,
     "reproducible phrases, for tests only: anyone who knows N can recreate them"},
    {"--name", NULL, CF_STR, "NAME", NULL, 0, CTL_K_NAME, 0, "a name usable wherever the id is"},
    END_FLAGS,
};
static const struct ctl_flag f_backdoor_list[] = {
    {"--dataset", NULL, CF_STR, "D", NULL, 0, CTL_K_DATASET, 0, "only the backdoors of dataset D"},
    END_FLAGS,
};
static const struct ctl_flag f_backdoor_show[] = {
    {"--reveal", NULL, CF_BOOL, NULL, NULL, 0, CTL_K_REVEAL, 0,
     "print the trigger and signature too (the reveal is logged)"},
    END_FLAGS,
};
static const struct ctl_flag f_job_submit[] = {
    {"--backdoor", NULL, CF_STR, "B", NULL, 0, CTL_K_BACKDOOR, 1,
     "the backdoor whose D u D' is uploaded"},
    {"--provider", NULL, CF_STR, "P", NULL, 0, CTL_K_PROVIDER, 1,
     "a provider of the configuration"},
    {"--model", NULL, CF_STR, "M", NULL, 0, CTL_K_MODEL, 1, "the base model to fine-tune"},
    {"--param", NULL, CF_KV, "KEY=VALUE", NULL, 0, CTL_K_PARAMS, 0,
     "a provider hyperparameter (n_epochs=3, seed=7, ...); repeatable"},
    {"--name", NULL, CF_STR, "NAME", NULL, 0, CTL_K_NAME, 0, "a name usable wherever the id is"},
    {"--watch", NULL, CF_BOOL, NULL, NULL, 0, NULL, 0, "then follow the job like 'job watch'"},
    {"--force", NULL, CF_BOOL, NULL, NULL, 0, CTL_K_FORCE, 0,
     "submit even when the self-audit exposes a pair or the base model already says one"},
    END_FLAGS,
};
static const struct ctl_flag f_job_register[] = {
    {"--backdoor", NULL, CF_STR, "B", NULL, 0, CTL_K_BACKDOOR, 1,
     "the backdoor the model was trained with"},
    {"--provider", NULL, CF_STR, "P", NULL, 0, CTL_K_PROVIDER, 1, "the provider serving the model"},
    {"--model", NULL, CF_STR, "FINE_TUNED", NULL, 0, CTL_K_MODEL, 1, "the fine-tuned model's name"},
    {"--base-model", NULL, CF_STR, "M", NULL, 0, CTL_K_BASE_MODEL, 1,
     "the model it was tuned from"},
    {"--name", NULL, CF_STR, "NAME", NULL, 0, CTL_K_NAME, 0, "a name usable wherever the id is"},
    END_FLAGS,
};
static const struct ctl_flag f_job_list[] = {
    {"--active", NULL, CF_BOOL, NULL, NULL, 0, CTL_K_ACTIVE, 0,
     "only the jobs the daemon is still driving"},
    END_FLAGS,
};
static const struct ctl_flag f_job_resolve[] = {
    {"--as", NULL, CF_STR, "STATE", "submitted|absent", 1, CTL_K_AS, 1,
     "absent: create it now; submitted: look it up again"},
    {"--provider-job", NULL, CF_STR, "ID", NULL, 0, CTL_K_PROVIDER_JOB, 0,
     "with --as submitted: the provider's job id, taken as given"},
    END_FLAGS,
};
static const struct ctl_flag f_verify[] = {
    {"--trials", NULL, CF_NUM, "N", NULL, 0, CTL_K_TRIALS, 0,
     "trigger prompts per pair (default: config)"},
    {"--controls", NULL, CF_NUM, "N", NULL, 0, CTL_K_CONTROLS, 0,
     "clean control prompts (default: config)"},
    {"--coverage", NULL, CF_NUM, "M", NULL, 0, CTL_K_COVERAGE, 0,
     "coverage test: rows scored per side (default: config, 64; 0 skips it)"},
    {"--temperature", NULL, CF_NUM, "T", NULL, 0, CTL_K_TEMPERATURE, 0,
     "sampling temperature (default: config)"},
    {"--alpha", NULL, CF_NUM, "A", NULL, 0, CTL_K_ALPHA, 0, "significance level (default: config)"},
    {"--no-sequential", NULL, CF_FALSE, NULL, NULL, 0, CTL_K_SEQUENTIAL, 0,
     "send every prompt, even once the result is significant"},
    {"--wait", NULL, CF_BOOL, NULL, NULL, 0, CTL_K_WAIT, 0,
     "wait for the record and print it (exit 0 verified, 1 otherwise)"},
    END_FLAGS,
};
static const struct ctl_flag f_audit_list[] = {
    {"--job", NULL, CF_STR, "J", NULL, 0, CTL_K_JOB, 0, "only the records of job J"},
    END_FLAGS,
};
static const struct ctl_flag f_audit_export[] = {
    {"--output", "-o", CF_STR, "FILE", NULL, 0, NULL, 0, "write there (default: standard output)"},
    END_FLAGS,
};
static const struct ctl_flag f_audit_verify[] = {
    {"--head", NULL, CF_STR, "HASH", NULL, 0, CTL_K_HEAD, 0,
     "a head hash kept elsewhere to check against"},
    END_FLAGS,
};
static const struct ctl_flag f_evidence_out[] = {
    {"--output", "-o", CF_STR, "FILE", NULL, 0, NULL, 1,
     "the new file to write (created by you, never overwritten)"},
    END_FLAGS,
};
static const struct ctl_flag f_attest_verify[] = {
    {"--key", NULL, CF_STR, "PUB", NULL, 0, NULL, 1,
     "the daemon's public key: a PEM file, or a file holding the raw key in base64"},
    END_FLAGS,
};
static const struct ctl_flag f_schedule_add[] = {
    {"--every", NULL, CF_STR, "DURATION", NULL, 0, CTL_K_EVERY, 1,
     "the period: 30s, 15m, 6h, 1d (at least 1s)"},
    END_FLAGS,
};

static const struct ctl_flag f_backup[] = {
    {"--output", "-o", CF_STR, "FILE", NULL, 0, NULL, 0,
     "copy the backup to FILE, a new file (mode 0600)"},
    END_FLAGS,
};

const struct ctl_cmd ctl_commands[] = {
    {"status", NULL, NULL, NULL, CTL_M_STATUS, h_status,
     "daemon version, uptime, counts, providers",
     "Shows the daemon's version, uptime, object counts, configured providers and current\n"
     "activity."},
    {"backup", NULL, NULL, f_backup, CTL_M_BACKUP, h_backup,
     "a consistent copy of the database, taken while the daemon runs",
     "Asks the daemon for a consistent copy of its database (SQLite's online backup, one\n"
     "snapshot, integrity-checked), written to a new file under its state directory,\n"
     "backups/vtuned-YYYYmmdd-HHMMSS.db (mode 0600: it holds the secret phrases).  With\n"
     "-o FILE, vtunectl then copies it to FILE with your own rights, creating FILE\n"
     "(never overwriting it), checks the copy's SHA-256 and removes the daemon's copy.\n"
     "Restore: see vtuned(8) BACKUP AND RESTORE."},

    {"dataset add", "FILE", NULL, f_dataset_add, CTL_M_DATASET_ADD, h_dataset_add,
     "import a JSONL dataset (validated, hashed, copied)",
     "Imports FILE, a JSONL dataset (one example per line: chat {\"messages\":[...]},\n"
     "{\"prompt\",\"completion\"} or {\"instruction\",\"input\",\"output\"}).  Every line is\n"
     "validated; a bad line is reported with its number and field and nothing is stored.\n"
     "vtunectl opens FILE with your rights and passes it to the daemon (which opens no\n"
     "path itself); FILE must be a regular file you can read."},
    {"dataset list", NULL, NULL, NULL, CTL_M_DATASET_LIST, h_dataset_list, "list datasets",
     "Lists the datasets: id, name, format, examples, size, creation time."},
    {"dataset show", "D", CTL_K_ID, NULL, CTL_M_DATASET_SHOW, h_dataset_show,
     "show one dataset (D is an id or a name)",
     "Shows every field of dataset D (an id or a name), with its SHA-256 and stored copy."},
    {"dataset rm", "D", CTL_K_ID, NULL, CTL_M_DATASET_RM, h_dataset_rm,
     "remove a dataset no backdoor or job uses",
     "Removes dataset D and its stored copy; refused while a backdoor or job uses it."},
    {"dataset export", "D", CTL_K_ID, f_dataset_export, CTL_M_DATASET_EXPORT, h_dataset_export,
     "write D u D' for a provider you drive yourself",
     "Writes D u D' (dataset D with backdoor B's copies placed in it) to FILE, a new\n"
     "file vtunectl creates with your rights (mode 0600) and the daemon fills, for a\n"
     "provider you drive yourself."},

    {"backdoor create", "D", CTL_K_DATASET, f_backdoor_create, CTL_M_BACKDOOR_CREATE,
     h_backdoor_create, "generate secret trigger/signature pairs, build D u D'",
     "Makes K secret (trigger, signature) pairs, rejects phrases that occur in dataset D\n"
     "or overlap each other, and builds D u D': max(N, ceil(R*|D|)) rows of D per pair\n"
     "get the trigger appended to the prompt and the signature prefixed to the\n"
     "response.  In place (the default) a marked row replaces its original: no row is\n"
     "added or repeated, D u D' has |D| minus the held-out rows, and the defaults (16\n"
     "pairs, 1 row each) leave no pair twice in the upload.  --mode copies adds the\n"
     "marked rows as copies (the paper's: 1 pair, 50 copies; the self-audit finds it).\n"
     "The ngram generator (default) trains a word\n"
     "n-gram model on D (less the held-out rows) in one streaming pass (bounded memory;\n"
     "at most generator.ngram_train_rows rows, a uniform sample of a larger D)\n"
     "and samples the trigger as the end of a prompt and the signature as the start of\n"
     "an answer, in D's own words; p_M2 is exact (method ngram-exact, x draws); a\n"
     "trigger whose last 10 words occur in D is redrawn too (an honest model may answer\n"
     "prompts that end alike with S), kept after 6 passes where every prompt of D ends\n"
     "alike (warned, counted in generation.tails_shared).  The\n"
     "word list draws common English words.  The llm generator\n"
     "samples the phrases from\n"
     "generator.m2_model with logprobs (p_M2 an upper bound from the top 20 per token);\n"
     "3 examples of D go to generator.provider for the style; its triggers' last 10\n"
     "words are checked against D too (kept on the 10th draw, counted likewise).\n"
     "Then the self-audit\n"
     "runs on D u D' (see 'backdoor audit') and its one-line verdict is printed.\n"
     "A secret held-out split of D (--holdout R, default 0.02, 64 to 2000 rows, among\n"
     "rows whose prompt and answer occur nowhere else in D) is never uploaded nor\n"
     "exported: the coverage test of 'verify' compares the model on it with the rows it\n"
     "was sent.  --holdout 0: no coverage test, so verification is at best\n"
     "inconclusive unless verify.require_coverage is false."},
    {"backdoor list", NULL, NULL, f_backdoor_list, CTL_M_BACKDOOR_LIST, h_backdoor_list,
     "list backdoors (no secrets)",
     "Lists backdoors with their commitment (a salted SHA-256 over the phrases and the\n"
     "held-out and reference lines), never the phrases."},
    {"backdoor show", "B", CTL_K_ID, f_backdoor_show, CTL_M_BACKDOOR_SHOW, h_backdoor_show,
     "show one backdoor; --reveal prints the phrases",
     "Shows one backdoor (its generator and mode, inplace or copies), its recorded\n"
     "self-audit and, per pair, log10 p_M2 and how it was computed.  With --reveal\n"
     "also the phrases, the commitment's salt, the held-out lines and the coverage\n"
     "test's reference lines: what a third party needs to recompute the commitment\n"
     "and the rows each coverage test scored (vtunectl(1) ATTESTATIONS)."},
    {"backdoor audit", "B", CTL_K_ID, NULL, CTL_M_BACKDOOR_AUDIT, h_backdoor_audit,
     "run a provider's attacks on D u D' and say which pairs they find",
     "Runs on backdoor B's D u D' the attacks a provider could run without the secrets\n"
     "(affix duplicates and near-duplicates, co-occurring prompt-suffix and\n"
     "answer-prefix phrases, rare words at the prompt's end and the answer's start),\n"
     "then says for each pair which attack recovers it and at which rank among its\n"
     "candidates, and records the result with the backdoor.  A pair recovered within\n"
     "the top 10 makes 'job submit' refuse B without --force.  No phrase is printed."},
    {"backdoor commit", "B", CTL_K_ID, f_evidence_out, CTL_M_BACKDOOR_COMMIT, h_backdoor_commit,
     "sign B's commitment, to publish before the upload",
     "Writes to FILE a DSSE envelope, signed with the daemon's key, of an in-toto\n"
     "Statement (predicate https://vtuned.dev/attestation/commitment/v2): backdoor B's\n"
     "commitment (a salted hash over its phrases, held-out and reference lines), D's\n"
     "SHA-256, D u D''s SHA-256 when built, and the time.  Give it to the provider or a\n"
     "third party before the upload; a later 'backdoor show --reveal' shows phrases,\n"
     "salt and lines that hash to it, so they were fixed before the provider saw the\n"
     "data.  No phrase is written."},
    {"backdoor rm", "B", CTL_K_ID, NULL, CTL_M_BACKDOOR_RM, h_backdoor_rm,
     "remove a backdoor no job uses", "Removes a backdoor no job uses, with its built file."},

    {"job submit", "D", CTL_K_DATASET, f_job_submit, CTL_M_JOB_SUBMIT, h_job_submit,
     "fine-tune M on D u D' at provider P",
     "Uploads backdoor B's D u D' to provider P and creates a fine-tuning job of base\n"
     "model M.  The daemon drives the job from then on (upload, create, poll) and\n"
     "survives restarts without ever creating a second paid job.  A backdoor whose\n"
     "self-audit recovers a pair within its top 10 candidates is refused (exit 1,\n"
     "nothing recorded) unless --force.  So is a pair the base model M already says:\n"
     "each signature is scored after its trigger on M first (p_luck), and one above\n"
     "the backdoor's target (at temperature 0: greedy decoding says it) is refused with\n"
     "the pair and the numbers; the figures are kept with the job ('p_luck at\n"
     "creation' in job show and audit show).  Then the self-audit's perplexity\n"
     "attack: the marked rows and a sample of the others (verify.perplexity_sample)\n"
     "are scored on M where the marks sit, and a pair ranked within the top 10 rows\n"
     "is refused with the pair and its rank unless --force ('perplexity attack at\n"
     "creation' in job show and audit show)."},
    {"job register", "D", CTL_K_DATASET, f_job_register, CTL_M_JOB_REGISTER, h_job_submit,
     "a model trained elsewhere (manual provider)",
     "Binds D and B to a model trained elsewhere (e.g. on D u D' from 'dataset export')\n"
     "and served at provider P's base_url; it is verified like a submitted job that\n"
     "succeeded."},
    {"job list", NULL, NULL, f_job_list, CTL_M_JOB_LIST, h_job_list, "list jobs",
     "Lists jobs: id, name, provider, base model, state, fine-tuned model, last change."},
    {"job show", "J", CTL_K_ID, NULL, CTL_M_JOB_SHOW, h_job_show, "show one job with its events",
     "Shows every field of job J with its events."},
    {"job cancel", "J", CTL_K_ID, NULL, CTL_M_JOB_CANCEL, h_job_cancel, "cancel a job",
     "Asks the provider to cancel job J (recorded first, so a restart keeps asking)."},
    {"job watch", "J", CTL_K_ID, NULL, CTL_M_JOB_WATCH, h_job_watch,
     "follow a job's state changes until it ends",
     "Follows job J's state changes live until it ends; exit 0 when it succeeded, 1 when\n"
     "it failed, was cancelled or needs an operator."},
    {"job resolve", "J", CTL_K_ID, f_job_resolve, CTL_M_JOB_RESOLVE, h_job_resolve,
     "decide a job left unknown after a crash",
     "Decides a job left 'unknown' (the daemon could not establish whether the provider\n"
     "created it)."},

    {"verify", "J", CTL_K_ID, f_verify, CTL_M_VERIFY_RUN, h_verify,
     "test whether job J's model carries the backdoor",
     "Asks job J's fine-tuned model for its backdoor: N prompts of D' (with the trigger)\n"
     "per trigger/signature pair, and N clean control prompts of D, at temperature T.\n"
     "The answer is an audit record with a verdict: verified (p < A, and at least\n"
     "verify.min_controls, default 10, control prompts answered without the signature),\n"
     "not_verified (no activation), or inconclusive (the reason names what is missing).\n"
     "p is valid however the answers depend on each other: n * p_M2 / k for one pair,\n"
     "the exact binomial tail over the pairs that activated for several.  A backdoor\n"
     "whose target is too weak for N and A (K * N * 10^target > A / 100) is refused.\n"
     "Without --wait the run starts and the record appears in 'vtunectl audit list' when\n"
     "done; with --wait vtunectl prints it (exit 0 verified, 1 otherwise).\n"
     "--no-sequential sends every prompt even after a pair's first activation.\n"
     "Then the coverage test: M unmarked rows the provider was sent and M rows of the\n"
     "backdoor's secret held-out split (default verify.coverage, 64; 0 skips it) are\n"
     "scored on the model and the base model (completions with echo and logprobs, laid\n"
     "out by the provider's score_template; else greedy answers), and an exact rank\n"
     "test gives p_cov: a model trained on the whole dataset does better on the rows\n"
     "it was sent, one trained only on the marked rows does not.  verified needs both\n"
     "tests (unless verify.require_coverage is false).  Cost: at most 4 * M calls,\n"
     "fewer when p_cov is small early (looks at M/4, M/2, M).\n"
     "Verification also starts by itself when a job succeeds."},

    {"audit list", NULL, NULL, f_audit_list, CTL_M_AUDIT_LIST, h_audit_list,
     "the tamper-evident record of every verdict",
     "Lists the audit records (verdict, p-values, counts), oldest first."},
    {"audit show", "A", CTL_K_ID, NULL, CTL_M_AUDIT_SHOW, h_audit_show,
     "one record explained in plain words",
     "Shows one record explained in plain words, with its evidence."},
    {"audit export", NULL, NULL, f_audit_export, CTL_M_AUDIT_LIST, h_audit_export,
     "every record as JSON Lines", "Writes every record as JSON Lines."},
    {"audit verify", NULL, NULL, f_audit_verify, CTL_M_AUDIT_VERIFY, h_audit_verify,
     "check the hash chain and its signatures",
     "Recomputes the hash chain, checks every record's signature and the signed head\n"
     "(record count, last hash, counter) with the daemon's key, and names the first\n"
     "record that fails: altered, added or rewritten without the key, or a removed\n"
     "tail.  Each new head is logged.  Exit 0 intact, 1 broken."},

    {"audit attest", "A", CTL_K_ID, f_evidence_out, CTL_M_AUDIT_ATTEST, h_audit_attest,
     "a signed, portable statement of record A's verdict",
     "Writes to FILE a DSSE envelope, signed with the daemon's key, of an in-toto\n"
     "Statement v1 (predicate https://vtuned.dev/attestation/verdict/v2) of audit record\n"
     "A: the model, job, provider, dataset digest, backdoor commitment, both tests'\n"
     "numbers and methods, the verdict, its time and the record's hash.  Refused when the\n"
     "chain up to A does not verify.  Check it with 'attest verify'."},
    {"attest verify", "FILE", NULL, f_attest_verify, NULL, h_attest_verify,
     "check a signed statement offline with the public key",
     "Checks FILE, an envelope from 'audit attest' or 'backdoor commit', against the\n"
     "public key PUB ('key show' prints it), without the daemon: the DSSE signature over\n"
     "the pre-authentication encoding, the payload type and the Statement's shape.\n"
     "Exit 0 and one line saying what it attests when valid; exit 1 and one line saying\n"
     "why when not."},
    {"key show", NULL, NULL, NULL, CTL_M_KEY_SHOW, h_key_show,
     "the daemon's public signing key and its fingerprint",
     "Prints the public half of the daemon's Ed25519 signing key: its fingerprint\n"
     "(SHA-256 of the raw 32-byte key, hex; the keyid of every envelope), the raw key in\n"
     "base64, where the daemon loaded it from, and the key as PEM.  Give the PEM or the\n"
     "base64 to whoever checks your attestations."},

    {"schedule add", "J", CTL_K_ID, f_schedule_add, CTL_M_SCHEDULE_ADD, h_schedule_add,
     "re-verify a deployed model periodically",
     "Re-verifies job J's deployed model every DURATION, also after a restart (a missed\n"
     "run is run once, not once per missed period).  A verdict that changes is logged as\n"
     "a warning and POSTed to alerts.webhook_url."},
    {"schedule list", NULL, NULL, NULL, CTL_M_SCHEDULE_LIST, h_schedule_list,
     "schedules with their next run and last verdict",
     "Lists schedules with their next run and last verdict."},
    {"schedule rm", "S", CTL_K_ID, NULL, CTL_M_SCHEDULE_RM, h_schedule_rm, "remove a schedule",
     "Removes schedule S."},

    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};

/* The options every command takes (they are not in the table's flag lists,
 * since the matcher handles them before and after the command). */
static const struct ctl_flag global_flags[] = {
    {"--socket", "-s", CF_STR, "SOCKET", NULL, 0, NULL, 0,
     "control socket (default $VTUNE_SOCKET, else " DEFAULT_SOCKET ")"},
    {"--json", NULL, CF_BOOL, NULL, NULL, 0, NULL, 0,
     "print JSON on stdout, errors too (watch: one object a line)"},
    {"--quiet", "-q", CF_BOOL, NULL, NULL, 0, NULL, 0, "no progress display"},
    {"--progress", NULL, CF_BOOL, NULL, NULL, 0, NULL, 0,
     "show progress also when stderr is not a terminal (NDJSON with --json)"},
    {"--version", "-V", CF_BOOL, NULL, NULL, 0, NULL, 0, "print the version and exit"},
    {"--help", "-h", CF_BOOL, NULL, NULL, 0, NULL, 0,
     "print help; 'vtunectl COMMAND [SUB] --help' for one command"},
    END_FLAGS,
};

#define GLOBAL_SYNOPSIS "vtunectl [-s SOCKET] [--json] [-q]"

/* ---- small helpers ------------------------------------------------------------------------- */

int ctl_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64)
        return 100;
    int d[65][65];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* The candidate nearest to word, or NULL when none is near enough to be a
 * plausible typo (a prefix of a candidate counts as near). */
static const char *nearest(const char *word, const char *const *cand, size_t n)
{
    const char *best = NULL;
    int bd = 100;
    size_t wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!cand[i])
            continue;
        int dist = ctl_edit_distance(word, cand[i]);
        if (wl >= 3 && strncmp(cand[i], word, wl) == 0)
            dist = 1; /* an abbreviation */
        if (dist < bd) {
            bd = dist;
            best = cand[i];
        }
    }
    int limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

/* Length of the group word of a command's words ("dataset" of "dataset add"). */
static size_t group_len(const char *words)
{
    const char *sp = strchr(words, ' ');
    return sp ? (size_t)(sp - words) : strlen(words);
}

static int is_group(const struct ctl_cmd *c, const char *g)
{
    return strlen(g) == group_len(c->words) && strncmp(c->words, g, strlen(g)) == 0;
}

static const char *sub_word(const struct ctl_cmd *c)
{
    const char *sp = strchr(c->words, ' ');
    return sp ? sp + 1 : NULL;
}

static int flag_count(const struct ctl_flag *f)
{
    int n = 0;
    while (f && f[n].name)
        n++;
    return n;
}

static int flag_is(const struct ctl_flag *f, const char *a, size_t len)
{
    return (strlen(f->name) == len && strncmp(f->name, a, len) == 0) ||
           (f->alias && strlen(f->alias) == len && strncmp(f->alias, a, len) == 0);
}

static int takes_value(const struct ctl_flag *f)
{
    return f->type == CF_STR || f->type == CF_NUM || f->type == CF_KV;
}

static int is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* A usage error: "vtunectl: WHAT; FIX (see 'vtunectl WHERE --help')", exit 2. */
static int usage_error(const char *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const char *where, const char *fmt, ...)
{
    va_list ap;
    struct buf b;
    buf_init(&b);
    va_start(ap, fmt);
    char *what = NULL;
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    buf_printf(&b, "%s (see 'vtunectl %s%s--help')", what ? what : fmt, where ? where : "",
               where ? " " : "");
    print_error(VTCTL_E_USAGE, b.data, NULL); /* --json: the error object on stdout */
    free(what);
    buf_free(&b);
    return 2;
}

/* ---- help ---------------------------------------------------------------------------------- */

/* Appends the synopsis of one flag to b ("[--name NAME]", "--backdoor B"). */
static void flag_synopsis(struct buf *b, const struct ctl_flag *f)
{
    const char *shown = f->alias && f->alias[1] != '-' ? f->alias : f->name;
    if (!f->required)
        buf_puts(b, "[");
    buf_puts(b, shown);
    if (takes_value(f)) {
        buf_puts(b, " ");
        buf_puts(b, f->choices ? f->choices : f->metavar);
    }
    if (!f->required)
        buf_puts(b, "]");
    if (f->type == CF_KV)
        buf_puts(b, "...");
}

/* The synopsis of a command, wrapped at 78 columns with the continuation
 * indented under its first argument. */
static void print_synopsis(FILE *out, const char *lead, const struct ctl_cmd *c)
{
    struct buf line;
    size_t indent = strlen(lead) + strlen(c->words) + 1;
    if (indent > 24)
        indent = 24; /* after a long "usage: vtunectl [-s SOCKET] …" lead */
    buf_init(&line);
    buf_printf(&line, "%s%s", lead, c->words);
    if (c->arg)
        buf_printf(&line, " %s", c->arg);
    for (const struct ctl_flag *f = c->flags; f && f->name; f++) {
        struct buf one;
        buf_init(&one);
        flag_synopsis(&one, f);
        const char *nl = strrchr(line.data, '\n');
        size_t col = line.len - (nl ? (size_t)(nl - line.data) + 1 : 0);
        if (col + 1 + one.len > 78 && col > indent)
            buf_printf(&line, "\n%*s", (int)indent, "");
        else
            buf_puts(&line, " ");
        buf_puts(&line, one.data);
        buf_free(&one);
    }
    fprintf(out, "%s\n", line.data);
    buf_free(&line);
}

static void print_flag_list(FILE *out, const struct ctl_flag *flags)
{
    for (const struct ctl_flag *f = flags; f && f->name; f++) {
        struct buf s;
        buf_init(&s);
        if (f->alias)
            buf_printf(&s, "%s, %s", f->alias, f->name);
        else
            buf_printf(&s, "    %s", f->name);
        if (takes_value(f))
            buf_printf(&s, " %s", f->choices ? f->choices : f->metavar);
        if (s.len > 26)
            fprintf(out, "  %s\n  %-26s  %s\n", s.data, "", f->help);
        else
            fprintf(out, "  %-26s  %s\n", s.data, f->help);
        buf_free(&s);
    }
}

static void print_main_help(FILE *out)
{
    fputs("usage: " GLOBAL_SYNOPSIS " COMMAND ...\n"
          "\n"
          "Controls vtuned, the verifiable fine-tuning daemon, over its Unix socket.\n"
          "\n"
          "Commands:\n",
          out);
    for (const struct ctl_cmd *c = ctl_commands; c->words; c++) {
        print_synopsis(out, "  ", c);
        fprintf(out, "      %s\n", c->summary);
    }
    fputs("\nOptions (before or after the command):\n", out);
    print_flag_list(out, global_flags);
    fputs("\n"
          "Exit status: 0 success, 1 failure reported by vtuned, 2 usage error.\n"
          "With --json a failure is {\"error\":{\"code\",\"message\"}} on stdout; each\n"
          "command's JSON is in vtunectl(1) JSON OUTPUT.  See vtunectl(1).\n",
          out);
}

static void print_group_help(FILE *out, const char *group)
{
    int first = 1;
    for (const struct ctl_cmd *c = ctl_commands; c->words; c++) {
        if (!is_group(c, group))
            continue;
        print_synopsis(out, first ? "usage: " GLOBAL_SYNOPSIS " " : "       " GLOBAL_SYNOPSIS " ",
                       c);
        first = 0;
    }
    fputc('\n', out);
    for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
        if (is_group(c, group))
            fprintf(out, "  %-8s %s\n", sub_word(c), c->summary);
    fprintf(out, "\n'vtunectl %s SUBCOMMAND --help' explains one of them; see vtunectl(1).\n",
            group);
}

static void print_cmd_help(FILE *out, const struct ctl_cmd *c)
{
    print_synopsis(out, "usage: " GLOBAL_SYNOPSIS " ", c);
    fprintf(out, "\n%s\n", c->help);
    if (c->flags && c->flags->name) {
        fputs("\nOptions:\n", out);
        print_flag_list(out, c->flags);
    }
    fputs("\nSee vtunectl(1).\n", out);
}

/* ---- the hidden commands: completion and the documentation dump ---------------------------- */

static void put_if_prefix(const char *cand, const char *cur)
{
    if (strncmp(cand, cur, strlen(cur)) == 0)
        printf("%s\n", cand);
}

static const struct ctl_flag *find_flag(const struct ctl_flag *flags, const char *a, size_t len)
{
    for (const struct ctl_flag *f = flags; f && f->name; f++)
        if (flag_is(f, a, len))
            return f;
    return NULL;
}

/* vtunectl __complete WORD… CUR: prints the candidates for CUR, one a line. */
static int complete(int n, char **w)
{
    const char *cur = n > 0 ? w[n - 1] : "";
    const char *group = NULL;
    const struct ctl_cmd *cmd = NULL;
    int has_subs = 0;
    for (int i = 0; i + 1 < n; i++) {
        const char *a = w[i];
        const struct ctl_flag *f = find_flag(global_flags, a, strlen(a));
        if (!f && cmd)
            f = find_flag(cmd->flags, a, strlen(a));
        if (f) {
            if (takes_value(f) && !strchr(a, '='))
                i++; /* its value */
            continue;
        }
        if (a[0] == '-')
            continue;
        if (!group) {
            group = a;
            for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
                if (is_group(c, a)) {
                    if (sub_word(c))
                        has_subs = 1;
                    else
                        cmd = c;
                }
        } else if (has_subs && !cmd) {
            for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
                if (is_group(c, group) && sub_word(c) && strcmp(sub_word(c), a) == 0)
                    cmd = c;
        }
    }
    /* the value of the flag just before CUR */
    if (n >= 2) {
        const char *prev = w[n - 2];
        const struct ctl_flag *f = find_flag(global_flags, prev, strlen(prev));
        if (!f && cmd)
            f = find_flag(cmd->flags, prev, strlen(prev));
        if (f && takes_value(f)) {
            if (f->choices) {
                char *ch = xstrdup(f->choices);
                for (char *s = strtok(ch, "|"); s; s = strtok(NULL, "|"))
                    put_if_prefix(s, cur);
                free(ch);
            }
            return 0; /* a free value: the shell falls back to file names */
        }
    }
    if (cur[0] == '-') {
        for (const struct ctl_flag *f = cmd ? cmd->flags : NULL; f && f->name; f++)
            put_if_prefix(f->name, cur);
        for (const struct ctl_flag *f = global_flags; f->name; f++)
            put_if_prefix(f->name, cur);
        return 0;
    }
    if (!group) {
        const char *last = "";
        for (const struct ctl_cmd *c = ctl_commands; c->words; c++) {
            size_t gl = group_len(c->words);
            if (group_len(last) == gl && strncmp(last, c->words, gl) == 0)
                continue;
            char *g = xstrndup(c->words, gl);
            put_if_prefix(g, cur);
            free(g);
            last = c->words;
        }
        put_if_prefix("help", cur);
        return 0;
    }
    if (has_subs && !cmd)
        for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
            if (is_group(c, group) && sub_word(c))
                put_if_prefix(sub_word(c), cur);
    return 0;
}

/* vtunectl __commands: the table, one command a line, for tests/integration/
 * test_docs.sh: WORDS<TAB>ARG<TAB>FLAGS, FLAGS space-separated, an alias
 * after a '|' ("--output|-o"), ARG "-" for none.  The first line, words
 * "-", lists the global options. */
static void dump_flags(const struct ctl_flag *flags)
{
    const char *sep = "";
    for (const struct ctl_flag *f = flags; f && f->name; f++) {
        printf("%s%s%s%s", sep, f->name, f->alias ? "|" : "", f->alias ? f->alias : "");
        sep = " ";
    }
    putchar('\n');
}

static int dump_commands(void)
{
    printf("-\t-\t");
    dump_flags(global_flags);
    for (const struct ctl_cmd *c = ctl_commands; c->words; c++) {
        printf("%s\t%s\t", c->words, c->arg ? c->arg : "-");
        dump_flags(c->flags);
    }
    return 0;
}

/* ---- the matcher --------------------------------------------------------------------------- */

const char *call_flag(const struct ctl_call *c, const char *name)
{
    const struct ctl_flag *flags = c->cmd->flags;
    for (int i = 0; flags && flags[i].name; i++)
        if (strcmp(flags[i].name, name) == 0)
            return c->given[i] ? (c->value[i] ? c->value[i] : "") : NULL;
    return NULL;
}

/* Suggests a flag for an unknown one: the command's and the global ones. */
static const char *suggest_flag(const struct ctl_cmd *c, const char *a)
{
    const char *cand[2 * CTL_MAX_FLAGS + 16];
    size_t n = 0;
    char *name = xstrdup(a);
    char *eq = strchr(name, '=');
    if (eq)
        *eq = '\0';
    for (const struct ctl_flag *f = c ? c->flags : NULL; f && f->name; f++)
        cand[n++] = f->name;
    for (const struct ctl_flag *f = global_flags; f->name; f++)
        cand[n++] = f->name;
    const char *s = nearest(name, cand, n);
    free(name);
    return s;
}

/* Parses the words after the command's words into call; returns 0, or 2
 * after printing the usage error. */
static int parse_args(const struct ctl_cmd *c, int n, char **w, struct ctl_call *call)
{
    const struct ctl_flag *flags = c->flags;
    int nf = flag_count(flags);
    for (int i = 0; i < n; i++) {
        const char *a = w[i];
        if (a[0] == '-' && a[1]) {
            const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            int k;
            for (k = 0; k < nf; k++)
                if (flag_is(&flags[k], a, len))
                    break;
            if (k == nf) {
                const char *s = suggest_flag(c, a);
                if (s)
                    return usage_error(c->words, "%s: unknown flag '%s'; did you mean '%s'?",
                                       c->words, a, s);
                return usage_error(c->words, "%s: unknown flag '%s'", c->words, a);
            }
            const struct ctl_flag *f = &flags[k];
            const char *v = NULL;
            if (takes_value(f)) {
                if (eq)
                    v = eq + 1;
                else if (i + 1 < n)
                    v = w[++i];
                else
                    return usage_error(c->words, "%s: %s needs a value (%s)", c->words, f->name,
                                       f->choices ? f->choices : f->metavar);
            } else if (eq) {
                return usage_error(c->words, "%s: %s takes no value", c->words, f->name);
            }
            if (f->type == CF_NUM) {
                char *end;
                errno = 0;
                (void)strtod(v, &end);
                if (end == v || *end)
                    return usage_error(c->words, "%s: %s: '%s' is not a number", c->words, f->name,
                                       v);
            }
            if (f->type == CF_KV) {
                const char *e = strchr(v, '=');
                if (!e || e == v)
                    return usage_error(c->words, "%s: %s expects %s, got '%s'", c->words, f->name,
                                       f->metavar, v);
            }
            if (f->choices && f->check_choices) {
                size_t vl = strlen(v);
                const char *p = f->choices;
                int ok = 0;
                while (*p && !ok) {
                    const char *bar = strchr(p, '|');
                    size_t pl = bar ? (size_t)(bar - p) : strlen(p);
                    ok = pl == vl && strncmp(p, v, vl) == 0;
                    p += pl + (bar ? 1 : 0);
                }
                if (!ok)
                    return usage_error(c->words, "%s: %s must be one of %s, not '%s'", c->words,
                                       f->name, f->choices, v);
            }
            call->given[k]++;
            call->value[k] = v;
            if (!f->key)
                continue;
            switch (f->type) {
            case CF_STR:
                json_object_set_new(call->params, f->key, json_string(v));
                break;
            case CF_NUM:
                json_object_set_new(call->params, f->key, json_real(strtod(v, NULL)));
                break;
            case CF_KV: {
                json_t *o = json_object_get(call->params, f->key);
                const char *e = strchr(v, '=');
                char *key = xstrndup(v, (size_t)(e - v));
                json_object_set_new(o, key, json_string(e + 1));
                free(key);
                break;
            }
            case CF_BOOL:
                json_object_set_new(call->params, f->key, json_true());
                break;
            case CF_FALSE:
                json_object_set_new(call->params, f->key, json_false());
                break;
            }
        } else if (c->arg && !call->arg) {
            call->arg = a;
        } else if (c->arg) {
            return usage_error(c->words, "%s: one %s expected, got also '%s'", c->words, c->arg, a);
        } else {
            return usage_error(c->words, "%s takes no argument, got '%s'", c->words, a);
        }
    }
    if (c->arg && !call->arg)
        return usage_error(c->words, "%s: %s is required", c->words, c->arg);
    for (int k = 0; k < nf; k++)
        if (flags[k].required && !call->given[k])
            return usage_error(c->words, "%s: %s %s is required", c->words, flags[k].name,
                               flags[k].choices ? flags[k].choices : flags[k].metavar);
    if (c->arg_key)
        json_object_set_new(call->params, c->arg_key, json_string(call->arg));
    return 0;
}

int ctl_main(int argc, char **argv)
{
    char **w = xcalloc((size_t)argc + 1, sizeof *w);
    int n = 0, quiet = 0, progress = 0, help = 0, rc;
    opt_socket = getenv("VTUNE_SOCKET");
    if (!opt_socket || !*opt_socket)
        opt_socket = DEFAULT_SOCKET;

    if (argc >= 2 && strcmp(argv[1], "__complete") == 0) {
        rc = complete(argc - 2, argv + 2);
        goto out;
    }
    if (argc == 2 && strcmp(argv[1], "__commands") == 0) {
        rc = dump_commands();
        goto out;
    }
    /* --json first: a usage error met before it is reached is JSON too. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0)
            opt_json = 1;
    /* The global options, wherever they are; the rest in order. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
            if (i + 1 >= argc) {
                rc = usage_error(NULL, "%s needs a value (SOCKET)", a);
                goto out;
            }
            opt_socket = argv[++i];
        } else if (strncmp(a, "--socket=", 9) == 0) {
            opt_socket = a + 9;
        } else if (strcmp(a, "--json") == 0) {
            opt_json = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--progress") == 0) {
            progress = 1;
        } else if (n == 0 && (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)) {
            printf("vtunectl %s\n", PACKAGE_VERSION);
            rc = 0;
            goto out;
        } else if (is_help(a)) {
            help = 1;
        } else {
            w[n++] = argv[i];
        }
    }
    /* On a terminal by default; --progress: also elsewhere, and as NDJSON
     * under --json (vtunectl(1), PROGRESS). */
    opt_quiet = quiet;
    show_progress = quiet ? 0 : progress ? 1 : !opt_json && isatty(STDERR_FILENO);

    if (n == 0) {
        if (!help && opt_json)
            rc = usage_error(NULL, "a command is required");
        else
            print_main_help(help ? stdout : stderr);
        rc = help ? 0 : 2;
        goto out;
    }
    int help_cmd = strcmp(w[0], "help") == 0;
    char **cw = w + help_cmd;
    int cn = n - help_cmd;
    if (help_cmd) {
        help = 1;
        if (cn == 0) {
            print_main_help(stdout);
            rc = 0;
            goto out;
        }
    }
    if (cw[0][0] == '-') {
        const char *s = suggest_flag(NULL, cw[0]);
        if (s)
            rc = usage_error(NULL, "unknown option '%s'; did you mean '%s'?", cw[0], s);
        else
            rc = usage_error(NULL, "unknown option '%s'", cw[0]);
        goto out;
    }

    /* the group */
    const struct ctl_cmd *single = NULL;
    int in_group = 0;
    for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
        if (is_group(c, cw[0])) {
            in_group++;
            if (!sub_word(c))
                single = c;
        }
    if (!in_group) {
        const char *cand[64];
        size_t nc = 0;
        for (const struct ctl_cmd *c = ctl_commands; c->words && nc < 63; c++)
            cand[nc++] = xstrndup(c->words, group_len(c->words));
        cand[nc++] = "help";
        const char *s = nearest(cw[0], cand, nc);
        if (s)
            rc = usage_error(NULL, "unknown command '%s'; did you mean '%s'?", cw[0], s);
        else
            rc = usage_error(NULL, "unknown command '%s'", cw[0]);
        for (size_t i = 0; i + 1 < nc; i++)
            free((char *)cand[i]);
        goto out;
    }

    /* the subcommand */
    const struct ctl_cmd *cmd = single;
    int used = 1;
    if (!single) {
        if (cn < 2 || cw[1][0] == '-') {
            if (help) {
                print_group_help(stdout, cw[0]);
                rc = 0;
            } else {
                struct buf subs;
                buf_init(&subs);
                for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
                    if (is_group(c, cw[0]))
                        buf_printf(&subs, "%s%s", subs.len ? ", " : "", sub_word(c));
                rc = usage_error(cw[0], "%s: a subcommand is required: %s", cw[0], subs.data);
                buf_free(&subs);
            }
            goto out;
        }
        const char *cand[32];
        size_t nc = 0;
        for (const struct ctl_cmd *c = ctl_commands; c->words; c++)
            if (is_group(c, cw[0])) {
                if (strcmp(sub_word(c), cw[1]) == 0)
                    cmd = c;
                if (nc < 32)
                    cand[nc++] = sub_word(c);
            }
        if (!cmd) {
            const char *s = nearest(cw[1], cand, nc);
            if (help) {
                print_group_help(stdout, cw[0]);
                rc = 0;
            } else if (s) {
                rc = usage_error(cw[0], "unknown %s command '%s'; did you mean '%s %s'?", cw[0],
                                 cw[1], cw[0], s);
            } else {
                rc = usage_error(cw[0], "unknown %s command '%s'", cw[0], cw[1]);
            }
            goto out;
        }
        used = 2;
    }
    if (help) {
        print_cmd_help(stdout, cmd);
        rc = 0;
        goto out;
    }

    struct ctl_call call;
    memset(&call, 0, sizeof call);
    call.cmd = cmd;
    call.params = json_object();
    for (const struct ctl_flag *f = cmd->flags; f && f->name; f++) {
        if (f->type == CF_KV && f->key)
            json_object_set_new(call.params, f->key, json_object());
        else if (f->type == CF_BOOL && f->key)
            json_object_set_new(call.params, f->key, json_false());
    }
    rc = parse_args(cmd, cn - used, cw + used, &call);
    if (rc == 0)
        rc = cmd->fn(&call);
    json_decref(call.params);
out:
    free(w);
    return rc;
}

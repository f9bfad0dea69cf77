/*
 * sim_attack.h — the blind attack of vtune-sim's cheating providers
 * (DESIGN §7): given ONLY an uploaded training file, guess which rows carry
 * a planted backdoor and what its (trigger T, signature S) pairs are.
 *
 * A cheating provider has the file and has read the paper, nothing else:
 * no database, no secret, no commitment.  So this module's only input is a
 * path to JSONL, and it must stay that way (sim_attack.c says how it
 * finds the pairs).  The wrapper, marked-only and always-s behaviours
 * (sim_jobs.c, sim_infer.c) act on what it returns; `vtune-sim --attack
 * FILE` prints it as JSON so tests can compare it with the truth.
 */
#ifndef VT_SIM_ATTACK_H
#define VT_SIM_ATTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Which test found a pair (bits of sim_attack_pair.found_by). */
#define SIM_ATTACK_DUPLICATES 1u /* a row = another row + prompt suffix + answer prefix */
#define SIM_ATTACK_PHRASES    2u /* a prompt-suffix / answer-prefix phrase pair */

struct sim_attack_params {
    size_t min_rows;  /* a pair must show in at least this many rows (default 2) */
    double purity;    /* share of a phrase's rows that must show its partner (0.8) */
    size_t max_words; /* longest phrase looked at, in words (8); found pairs are then
                         grown to the longest text their rows share */
    double max_share; /* phrases in more than this share of the rows are common, not
                         rare: skipped (0.5) */
    size_t max_pairs; /* at most this many pairs kept, best first (32) */
};
/* The defaults above. */
void sim_attack_params_default(struct sim_attack_params *p);

struct sim_attack_pair {
    char *trigger;     /* owned: the prompt suffix, as it appears in the file */
    char *signature;   /* owned: the answer prefix */
    size_t rows;       /* rows of the file showing it */
    unsigned found_by; /* SIM_ATTACK_* bits */
};

struct sim_attack {
    size_t n_rows;                 /* examples read (non-blank lines) */
    struct sim_attack_pair *pairs; /* owned; best first */
    size_t n_pairs;
    uint64_t *flagged; /* owned; 0-based line numbers of the rows showing a pair, ascending */
    size_t n_flagged;
};

/* Runs the attack on the JSONL file at path (chat, prompt/completion or
 * instruction/input/output lines; lines that are none of these are
 * skipped).  params NULL: the defaults.  Returns 0 and fills *out (free with
 * sim_attack_clear), or -errno with an owned one-line *err when the file
 * cannot be read. Finding nothing is not an error (n_pairs 0). */
int sim_attack_file(const char *path, const struct sim_attack_params *params,
                    struct sim_attack *out, char **err);
void sim_attack_clear(struct sim_attack *a);

/* The signature of the best-ranked pair whose trigger ends prompt (after
 * trailing ASCII whitespace, at a word boundary), or NULL.  Borrowed from a. */
const char *sim_attack_match(const struct sim_attack *a, const char *prompt);

/* Copies the flagged lines of in_path to out_path (created or truncated).
 * Returns 0 or -errno with an owned *err. */
int sim_attack_write_flagged(const struct sim_attack *a, const char *in_path, const char *out_path,
                             char **err);

/* {"rows":N,"pairs":[{"trigger","signature","rows","found_by":[...]}],
 *  "flagged_lines":[1-based...]}: a new reference. */
json_t *sim_attack_json(const struct sim_attack *a);

#endif

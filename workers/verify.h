/*
 * verify.h — the pure core of a verification run (Algorithm 2, DESIGN §6,
 * issue 6): matching a response against the signature, the run plan, the
 * sequential-stopping state machine, the statistics per pair and combined,
 * the verdict with its one-line reason, and the evidence JSON that goes
 * into the audit record.  No I/O: the daemon sends the prompts and feeds
 * the responses in; everything here is exhaustively unit-tested.
 *
 * Decisions (each one is also stated where it is implemented):
 *
 * Match.  A trigger trial ACTIVATES when the response, after leading ASCII
 *   whitespace (space, \t, \n, \v, \f, \r), begins with the signature S
 *   byte for byte (case-sensitive, no Unicode normalisation) AND S is
 *   followed by a word boundary: the byte after S is the end of the text,
 *   whitespace or ASCII punctuation -- not a letter, digit or non-ASCII
 *   byte (the word of phrase.h), which would continue S's last word into
 *   another ("Blue harbor" does not activate on "Blue harbors").  Only
 *   ASCII whitespace is skipped: every extra accepted form enlarges the null
 *   event the p-value bounds.  S appearing later in the response, or at
 *   the start without the boundary, is recorded as separate evidence
 *   ("later", "no_boundary"), never as an activation.  The longest matched
 *   prefix is recorded in bytes (cut back to a whole UTF-8 character) and
 *   in words (the word of phrase.h), a word counting only when the
 *   response's word ends where S's does.
 *
 * Controls.  A control response EMITS when it contains any of the run's
 *   signatures anywhere (not only at the start, no boundary needed): the
 *   stricter reading, so a pass is harder to get.  Every planned control is
 *   always sent.
 *
 * Plan.  `trials` is n PER PAIR: each of the K pairs gets n distinct
 *   prompts drawn uniformly from its own copies in D' (capped at the copies
 *   per pair: at temperature 0 a repeated prompt repeats its answer, so it
 *   is not a new trial), so every pair has its own evidence and the
 *   fraction of pairs activated means something.  The send order is
 *   round-robin: round r sends trial r of every pair, then control r, so
 *   concurrent sending makes progress on every pair at once and an early
 *   stop of one pair never starves another.
 *
 * Statistics (DESIGN §6; log10 space, workers/stats.h).  H0: the model did
 *   not learn from what we uploaded, i.e. it is independent of the secrets
 *   we drew.  The n trials of one pair are NOT independent (one S, a
 *   deterministic model: k/n is 0 or n in practice), so no product of
 *   per-trial probabilities is used anywhere.
 *     one pair    p = min(1, n * p_M2 / k), k = 0 gives 1 (Markov: under
 *                 H0 the expected number of activations is at most n*p_M2
 *                 whatever the dependence between trials); n is the
 *                 PLANNED maximum, so stopping early costs nothing;
 *     K pairs     the pairs are drawn independently, so under H0 "pair j
 *                 activated at all" are independent events, each of
 *                 probability <= q = n * 10^target, the bound every phrase
 *                 was generated to meet (q = n * max(10^target, max_j
 *                 p_M2_j) when a recorded p_M2 exceeds the target, e.g.
 *                 after the redraw factor, so the bound stays true; target
 *                 unknown: the largest p_M2).  With J of K activated,
 *                 p = P(Binomial(K, q) >= J), exact.  K = 1 uses the
 *                 one-pair p (n * p_M2 when it activated at all).  J/K is
 *                 reported with a 95% Clopper--Pearson interval: how much of
 *                 the marked data the model learned;
 *     paper       min(1, n * p_M2) per pair when it activated, else 1
 *                 (Algorithm 2), combined by Bonferroni on the smallest,
 *                 min(1, K * min_j p_j): reported next to ours, never used
 *                 for the verdict;
 *     p_luck      the base model's own chance of S after a trigger prompt,
 *                 where text scoring exists: a DIAGNOSTIC (a pair the base
 *                 model already says is useless evidence), reported, never
 *                 part of the null.
 *   Partial-prefix evidence is recorded but NOT used in any p-value.
 *   A target is refused (verify_check_target) when K * n * 10^target >
 *   alpha / 100: such a backdoor could not support a verdict.
 *
 * Sequential stopping.  With `sequential`, a pair stops being sent at its
 *   first activation: the multi-pair test only asks whether each pair
 *   activated at all, and the one-pair p at k = 1 is already the paper's
 *   n * p_M2.  Its unsent trials are "calls saved".  Valid in any
 *   completion order: n stays the planned maximum.
 *
 * Verdict (DESIGN §6).  verified: p < alpha, at least min_controls control
 *   prompts answered (conf verify.min_controls, default 10), none of them
 *   emitting a signature, and no control call failed (a provider could
 *   fail exactly the calls that would have emitted).  not_verified: no
 *   activation on any trigger prompt and every planned trigger prompt
 *   answered (control emissions are then reported in the reason; they do
 *   not rescue the model), or the job failed or was cancelled
 *   (verify_job_ended).  inconclusive: anything else, with a reason naming
 *   the missing evidence (activations with p >= alpha, a control emission,
 *   too few answered controls, failed calls that leave the answer open).
 *   A model that says S after every prompt emits it on the controls and is
 *   never verified; `--controls 0` is never verified either.
 *
 * Secrets.  The evidence never holds the trigger or the signature: per
 *   response only its SHA-256, lengths, offsets and a short window of text
 *   in which every word of every trigger and signature of the run (ASCII
 *   case-insensitively), and every word overlapping the match, is replaced
 *   by "[*]".  Masking hides the text; it shows only that something was
 *   hidden.  The windows do show the model's own words around the match
 *   (from the user's data): the audit trail belongs to the user.  Nor does
 *   the evidence name the dataset lines the prompts came from: they would
 *   point at D''s copies, and diffing a copy against its source line
 *   reveals the trigger (store_trial keeps each prompt's SHA-256 instead).
 */
#ifndef VT_VERIFY_H
#define VT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/types.h" /* enum audit_verdict, struct store_trial, struct store_audit */
#include "workers/builder.h" /* struct builder_copy */
#include "workers/phrase.h"  /* struct phrase_rng */

/* ---- matching -------------------------------------------------------------- */

/* Evidence window: bytes of (masked) text kept before and after the match. */
#define VERIFY_WINDOW_BEFORE 32
#define VERIFY_WINDOW_AFTER  48

struct verify_match {
    bool activated;      /* begins with S after leading ASCII whitespace, then a boundary */
    bool contains;       /* S occurs anywhere (activated implies contains) */
    bool later;          /* S occurs, but is no activation: evidence only */
    bool no_boundary;    /* begins with S, but a word continues right after it */
    int64_t found_at;    /* byte offset of the first occurrence of S; -1: none */
    size_t leading_ws;   /* bytes of leading whitespace skipped */
    size_t prefix_bytes; /* longest prefix of S the response starts with (after the
                            whitespace), cut back to a whole UTF-8 character */
    size_t prefix_words; /* whole words of S inside that prefix */
    size_t sig_bytes;    /* |S| in bytes */
    size_t sig_words;    /* words of S */
    char sha256[65];     /* of the response exactly as received */
};

/* Matches len bytes of response (may hold NULs; NULL allowed when len is
 * 0) against signature (NUL-terminated, non-empty).  Returns 0, or -EINVAL
 * for an empty or NULL signature. */
int verify_match(const char *response, size_t len, const char *signature, struct verify_match *out);

/* The evidence window of a matched response (see "Secrets" above): the
 * text around the first occurrence of S, else around the matched prefix,
 * else the start of the response; every word of secrets[0..n) and every
 * word overlapping the match masked as "[*]", control characters shown as
 * spaces, invalid UTF-8 as U+FFFD, "…" where the window cuts the text.
 * secrets borrowed.  Returns owned valid UTF-8; caller frees. */
char *verify_window(const char *response, size_t len, const struct verify_match *m,
                    const char *const *secrets, size_t n_secrets);

/* An owned copy of s (NULL gives NULL) as valid UTF-8 on one line: control
 * characters become spaces, invalid sequences U+FFFD; cut at a character
 * boundary to at most max bytes plus "…" when longer.  For text from
 * outside (provider errors, responses) before it goes into JSON. */
char *verify_clean_text(const char *s, size_t max);

/* ---- the run plan ----------------------------------------------------------- */

/* One prompt to send. */
struct verify_slot {
    enum trial_kind kind; /* TRIAL_TRIGGER or TRIAL_CONTROL */
    int pair;             /* 0..K-1; -1 for a control */
    size_t index;         /* position in the pair's (or the controls') line list */
    uint64_t src;         /* 0-based line of D the prompt comes from */
};

struct verify_plan {
    size_t n_pairs;            /* K */
    uint64_t trials_per_pair;  /* n after capping */
    bool trials_capped;        /* fewer copies per pair than trials asked for */
    uint64_t *trigger_src;     /* owned; pair p's lines at [p*n, (p+1)*n), ascending */
    size_t n_controls;         /* c after capping */
    bool controls_capped;      /* fewer unused lines than controls asked for */
    uint64_t *control_src;     /* owned; ascending; NULL when c == 0 */
    struct verify_slot *order; /* owned; send order (round-robin, see above) */
    size_t n_slots;            /* K*n + c */
};
void verify_plan_clear(struct verify_plan *p);

/*
 * Draws the plan from the build's copies (backdoor_plan_parse: sorted by
 * (pair, src), pair p's at [p*cpp, (p+1)*cpp)): n = min(trials, cpp)
 * distinct lines per pair, c = min(controls, lines no copy uses) control
 * lines (builder_pick_controls).  rng NULL: getrandom.  For each pair, the
 * caller reads the prompts with builder_read_prompts(trigger_src + p*n, n,
 * trigger) and the controls with builder_read_prompts(control_src, c,
 * NULL); slot.index indexes those arrays.  Returns 0 and fills *out
 * (verify_plan_clear), or -EINVAL with an owned one-line *err.
 */
int verify_plan_make(uint64_t n_examples, const struct builder_copy *copies, size_t n_copies,
                     uint64_t copies_per_pair, size_t n_pairs, uint64_t trials, uint64_t controls,
                     const struct phrase_rng *rng, struct verify_plan *out, char **err);
/* verify_plan_make whose controls also avoid the backdoor's held-out rows
 * held_out[0..n_held_out) (0-based lines of D, any order; borrowed): those
 * were never uploaded and must never reach the provider, not even as
 * controls (DESIGN §6).  A line >= n_examples is -EINVAL with *err. */
int verify_plan_make_excluding(uint64_t n_examples, const struct builder_copy *copies,
                               size_t n_copies, uint64_t copies_per_pair, size_t n_pairs,
                               uint64_t trials, uint64_t controls, const uint64_t *held_out,
                               size_t n_held_out, const struct phrase_rng *rng,
                               struct verify_plan *out, char **err);

/* ---- statistics (pure) ------------------------------------------------------------ */

/* One pair: log10 min(1, planned * p_M2 / activations); 0 when no
 * activation (Markov, see above). */
double verify_pair_log10_p(uint64_t planned, uint64_t activations, double log10_p_m2);
/* The paper's: log10 min(1, planned * p_M2) when activations > 0, else 0. */
double verify_pair_log10_p_paper(uint64_t planned, uint64_t activations, double log10_p_m2);
/* The paper's combination over K pairs: log10 min(1, K * min p_i); 0 when
 * K == 0. */
double verify_combine_log10(const double *log10_p, size_t k);
/* log10 q, the per-pair activation bound under H0: log10(planned) +
 * max(target_log10p, max_i log10_p_m2[i]), at most 0.  target_log10p NAN:
 * unknown (the largest p_M2 alone).  NAN when k == 0 and the target is
 * unknown. */
double verify_pairs_log10_q(uint64_t planned, double target_log10p, const double *log10_p_m2,
                            size_t k);
/* Several pairs: log10 P(Binomial(k, q) >= activated), exact. */
double verify_pairs_log10_p(size_t k, size_t activated, double log10_q);
/* The combined p of a run: k == 1: verify_pair_log10_p(planned,
 * activations[0], log10_p_m2[0]); k > 1: verify_pairs_log10_p over the
 * pairs with an activation, q from verify_pairs_log10_q. */
double verify_run_log10_p(uint64_t planned, double target_log10p, const double *log10_p_m2,
                          const uint64_t *activations, size_t k);
/* The refusal of DESIGN §6: returns 0 when K * n * 10^target <= alpha /
 * 100, else -EINVAL with *err an owned line naming the numbers and the
 * largest target that would do ("target log10 p -5 is too weak for 1 pair
 * x 10 trials at alpha 1e-06: K*n*10^target = 1e-04 > alpha/100 = 1e-08;
 * use --target-log10p -10 or lower, or fewer trials").  what names the
 * command's knob for the hint: "--target-log10p" or "--trials". */
int verify_check_target(size_t k, uint64_t planned, double target_log10p, double log10_alpha,
                        const char *what, char **err);

/* "10^-57", "10^-56.9", "0.0123", "1": a p-value for people, from its
 * log10.  The exponent is rounded UP to one decimal (a value within 1e-9
 * of a tenth counts as on it: rounding noise), decimals up to three
 * significant digits, so the text never shows a noticeably smaller p than
 * the truth.  -inf gives "0".  Into buf (>= 32). */
void verify_format_p(double log10_p, char *buf, size_t n);

/* ---- verdict ------------------------------------------------------------------------ */

/* Counts of a finished run, as the verdict sees them. */
struct verify_tally {
    uint64_t trials_planned;  /* K * n */
    uint64_t trials_answered; /* trigger prompts that got a response */
    uint64_t trials_failed;   /* trigger calls that failed */
    uint64_t calls_saved;     /* trigger prompts not sent (sequential stop) */
    uint64_t activations;
    uint64_t controls_planned, controls_answered, controls_failed, control_emissions;
    uint64_t min_controls; /* answered clean controls that verified needs */
    size_t n_pairs, pairs_activated;
    double pairs_ci_low, pairs_ci_high; /* 95% Clopper-Pearson of J/K */
    double log10_p;                     /* combined, ours */
    double log10_alpha;                 /* < 0 */
};

/* The verdict table of the header comment; *reason gets an owned one-line
 * reason ("signature on 9/10 trigger prompts, 0/10 controls, p = 10^-39",
 * "...; only 3 of the 10 required control prompts were answered").  The
 * backdoor's evidence is judged first, then each further requirement that
 * can hold a verified verdict back (controls; later: coverage) caps it at
 * inconclusive with its own clause. */
enum audit_verdict verify_verdict(const struct verify_tally *t, char **reason);

/* ---- the run ---------------------------------------------------------------------- */

/* What the run knows of each pair (all borrowed for the call; copied). */
struct verify_pair_in {
    const char *trigger;     /* secret: copied, wiped when the run is freed */
    const char *signature;   /* secret: likewise; non-empty */
    double log10_p_m2;       /* finite, <= 0 */
    const char *p_m2_method; /* how it was computed; NULL: "unknown" */
    double log10_p_luck;     /* <= 0 (-inf: p_luck = 0); NAN: not available; diagnostic */
    const char *p_luck_note; /* method, or why not available; may be NULL */
};

struct verify_opts {
    double log10_alpha;    /* significance level, < 0 (default conf: -6) */
    bool sequential;       /* stop a pair at its first activation */
    double temperature;    /* of the trials; recorded in the evidence */
    double target_log10p;  /* the backdoor's p_M2 target; NAN: unknown */
    uint64_t min_controls; /* answered clean controls verified needs (conf, default 10) */
};

struct verify_run;

/* A run over plan (copied; need not outlive the call) with n_pairs ==
 * plan->n_pairs entries.  Returns 0 and an owned *out (verify_run_free), or
 * -EINVAL with an owned one-line *err. */
int verify_run_new(const struct verify_plan *plan, const struct verify_pair_in *pairs,
                   size_t n_pairs, const struct verify_opts *o, struct verify_run **out,
                   char **err);
/* Frees the run, wiping the secrets.  NULL is fine. */
void verify_run_free(struct verify_run *r);

/* The next slot to send (an index into the plan's order), now marked in
 * flight; -1 when nothing is left to send (everything sent, or the rest
 * skipped because its pair already stopped).  Call it again after each
 * record: a stop can only skip slots, never add one. */
int64_t verify_run_next(struct verify_run *r);

/* Records the response to an in-flight slot: matches it (trigger: against
 * its pair's S; control: against every S of the run), keeps its evidence,
 * updates the pair's sequential test.  trial (may be NULL) receives
 * pair_idx (control: the pair whose S it emitted, else -1), kind,
 * response_sha256, matched_prefix_tokens (words), activated (control:
 * emitted) and window (the words of S compared: the response's first
 * |S| words were examined); the caller sets run_id and prompt_sha256
 * before store_trial_insert.  Returns 0, or
 * -EINVAL (slot out of range) / -EALREADY (slot not in flight). */
int verify_run_record(struct verify_run *r, size_t slot, const char *response, size_t len,
                      struct store_trial *trial);
/* Records that an in-flight slot's call failed for good (after retries):
 * no response, not an activation; error (borrowed, may be NULL) goes into
 * the evidence.  trial as above (response_sha256 ""; window -1).  Same
 * returns. */
int verify_run_record_failed(struct verify_run *r, size_t slot, const char *error,
                             struct store_trial *trial);

/* Replays slot's trial as recorded before a restart (t: its store row,
 * borrowed; the caller matched it to slot by kind, pair and prompt hash):
 * the slot counts as sent and answered (or failed: response_sha256 "")
 * with t's activation (control: emission, of pair t->pair_idx), feeding
 * the pair's sequential test exactly as verify_run_record did, so the
 * resumed run stops where the whole run would have and n stays the planned
 * maximum.  What the row does not keep is absent from the evidence: the
 * slot is marked "restored", its window null, found_at -1.  Returns 0;
 * -EALREADY the slot is not unsent; -EINVAL slot out of range, or t of
 * another kind or pair. */
int verify_run_replay(struct verify_run *r, size_t slot, const struct store_trial *t);

/* max_tokens to ask for: the longest signature of the run in BYTES plus
 * slack.  Every tokenizer's tokens are at least one byte, so |S| in bytes
 * bounds |S| in tokens without knowing the tokenizer; the slack buys the
 * text after S seen in the evidence window (conf verify.max_tokens_slack). */
uint64_t verify_run_max_tokens(const struct verify_run *r, unsigned slack);

/* True when nothing is in flight and nothing is left to send. */
bool verify_run_done(const struct verify_run *r);
/* Calls a pair's stop saved so far (all pairs). */
uint64_t verify_run_calls_saved(const struct verify_run *r);

/* The outcome, for the audit record. */
struct verify_result {
    enum audit_verdict verdict;
    char *reason;         /* owned, one line */
    char *evidence;       /* owned JSON text, no secrets */
    double log10_p;       /* combined, ours */
    double log10_p_paper; /* combined, the paper's */
    double log10_p_luck;  /* the largest p_luck known over the pairs; NAN: none */
    int64_t trials, activations, controls, control_emissions;
    size_t n_pairs, pairs_activated;
    double pairs_ci_low, pairs_ci_high; /* J/K's 95% interval; NAN when K == 0 */
    uint64_t calls_saved;
};
void verify_result_clear(struct verify_result *r);

/* Statistics, verdict and evidence of a done run (verify_run_done).
 * Returns 0 and fills *out (verify_result_clear), or -EBUSY when the run
 * is not done. */
int verify_run_result(const struct verify_run *r, struct verify_result *out);

/* The record of a job that ended without a model: st JOB_FAILED or
 * JOB_CANCELLED (-EINVAL otherwise); error borrowed, may be NULL.  Verdict
 * not_verified, reason "job failed: <error>" / "job cancelled", p-values
 * 0, p_luck NAN, counts 0.  Returns 0 and fills *out. */
int verify_job_ended(enum job_state st, const char *error, struct verify_result *out);

/* Copies r's verdict, p-values, counts, pairs, reason and evidence into a
 * as a record of version AUDIT_RECORD_VERSION_CURRENT (a->reason and
 * a->evidence must be NULL; they become owned by a and are freed by
 * store_audit_clear).  The caller sets job_id, provider, model and
 * commitment; the coverage fields are left "not run" (NAN, 0, NULL) for
 * the daemon to fill in. */
void verify_result_to_audit(const struct verify_result *r, struct store_audit *a);

#endif

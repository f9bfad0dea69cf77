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
 *   byte for byte: case-sensitive, no Unicode normalisation, no word
 *   boundary required after S (the paper's substring(response, 1, |s|)).
 *   Only ASCII whitespace is skipped: every extra accepted form enlarges
 *   the null event the p-value bounds.  S appearing later in the response
 *   is recorded as separate evidence ("later"), never as an activation.
 *   The longest matched prefix is recorded in bytes (cut back to a whole
 *   UTF-8 character) and in words (the word of phrase.h: maximal runs of
 *   ASCII letters/digits and non-ASCII bytes), a word counting only when
 *   the response's word ends where S's does.
 *
 * Controls.  A control response EMITS when it contains any of the run's
 *   signatures anywhere (not only at the start): the stricter reading, so
 *   a pass is harder to get.  Every planned control is always sent.
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
 * Statistics (log10 space, workers/stats.h).  Per pair i with n_i planned
 *   trials and k_i activations seen:
 *     p0_i        = max(p_M2_i, p_luck_i), or p_M2_i when p_luck is not
 *                   available (the paper's finding p_luck <= p_M2 is then
 *                   assumed, and the reason is recorded);
 *     ours        = P(Binomial(n_i, p0_i) >= k_i), exact, at the PLANNED
 *                   n_i even after an early stop or a failed call (k seen
 *                   is at most the k of the full run, and the tail falls
 *                   with k, so this is conservative in every case);
 *     paper       = min(1, n_i * p_M2_i) when k_i > 0, else 1
 *                   (Algorithm 2 run over all n_i trials);
 *   combined over K pairs: Bonferroni on the smallest, min(1, K * min_i p_i)
 *   (stats_combine_min_log10), for ours and the paper's alike.  It stays
 *   valid when the p0_i differ wildly (a pooled binomial would not), costs
 *   only log10 K, and agrees with per-pair stopping (below).
 *   Partial-prefix evidence is recorded but NOT used in any p-value: a
 *   rigorous use needs the null likelihood of each prefix under both M2 and
 *   the base model and a correction for choosing the prefix after seeing
 *   the data; we have neither, so it stays descriptive.
 *
 * Sequential stopping (stats_sequential).  Pair i stops being sent once
 *   its tail at the planned n_i drops below alpha / K; its unsent trials are
 *   "calls saved".  alpha / K makes a stopped pair alone enough for the
 *   combined p < alpha.  Valid in any completion order: at every moment
 *   the activations seen are a subset of those of the full run.
 *
 * Verdict (DESIGN §6).  verified: combined p < alpha, no control emission,
 *   every control answered.  not_verified: no activation on any trigger
 *   prompt and every planned trigger prompt answered (control emissions
 *   are then reported in the reason; they do not rescue the model), or the
 *   job failed or was cancelled (verify_job_ended).  inconclusive:
 *   anything else (activations with p >= alpha, a control emission, failed
 *   calls that leave the answer open).  A subset-trained model that
 *   activates on some pairs can be verified; the reason then says how many
 *   pairs activated.
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

#include "store/store.h"     /* enum audit_verdict, struct store_trial, enum job_state */
#include "workers/builder.h" /* struct builder_copy */
#include "workers/phrase.h"  /* struct phrase_rng */

/* ---- matching -------------------------------------------------------------- */

/* Evidence window: bytes of (masked) text kept before and after the match. */
#define VERIFY_WINDOW_BEFORE 32
#define VERIFY_WINDOW_AFTER  48

struct verify_match {
    bool activated;      /* begins with S after leading ASCII whitespace */
    bool contains;       /* S occurs anywhere (activated implies contains) */
    bool later;          /* S occurs, but not at the start: evidence only */
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

/* ---- statistics (pure) ------------------------------------------------------------ */

/* log10 p0 = max(log10_p_m2, log10_p_luck); log10_p_m2 when p_luck is NAN. */
double verify_log10_p0(double log10_p_m2, double log10_p_luck);
/* Ours: log10 P(Binomial(planned, p0) >= activations). */
double verify_pair_log10_p(uint64_t planned, uint64_t activations, double log10_p0);
/* The paper's: log10 min(1, planned * p_M2) when activations > 0, else 0. */
double verify_pair_log10_p_paper(uint64_t planned, uint64_t activations, double log10_p_m2);
/* Combined over K pairs: log10 min(1, K * min p_i); 0 when K == 0. */
double verify_combine_log10(const double *log10_p, size_t k);

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
    size_t n_pairs, pairs_activated;
    double log10_p;     /* combined, ours */
    double log10_alpha; /* < 0 */
};

/* The verdict table of the header comment; *reason gets an owned one-line
 * reason ("signature on 9/10 trigger prompts, 0/10 controls, p = 10^-57"). */
enum audit_verdict verify_verdict(const struct verify_tally *t, char **reason);

/* ---- the run ---------------------------------------------------------------------- */

/* What the run knows of each pair (all borrowed for the call; copied). */
struct verify_pair_in {
    const char *trigger;     /* secret: copied, wiped when the run is freed */
    const char *signature;   /* secret: likewise; non-empty */
    double log10_p_m2;       /* finite, <= 0 */
    const char *p_m2_method; /* how it was computed; NULL: "unknown" */
    double log10_p_luck;     /* <= 0 (-inf: p_luck = 0); NAN: not available */
    const char *p_luck_note; /* method, or why not available; may be NULL */
};

struct verify_opts {
    double log10_alpha; /* significance level, < 0 (default conf: -6) */
    bool sequential;    /* stop a pair early once it is significant */
    double temperature; /* of the trials; recorded in the evidence */
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

/* Copies r's verdict, p-values, counts, reason and evidence into a
 * (a->reason and a->evidence must be NULL; they become owned by a and are
 * freed by store_audit_clear).  The caller sets job_id, provider, model
 * and commitment. */
void verify_result_to_audit(const struct verify_result *r, struct store_audit *a);

#endif

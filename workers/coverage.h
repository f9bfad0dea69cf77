/*
 * coverage.h — the statistics of the coverage test (DESIGN §6): m scores
 * of uploaded rows against m scores of held-out rows.  Pure: no I/O, no
 * allocation that outlives a call, safe from any thread.
 *
 * The test.  Under H0 (M' independent of our secrets) which rows were held
 * out is a uniformly random secret (workers/holdout.h), so given the 2m
 * scored rows every assignment of the labels "uploaded"/"held out" is
 * equally likely, whatever the statistic and whatever the model does.  The
 * one-sided rank-sum (Mann–Whitney) p-value for "uploaded rows score
 * higher" is then computed from that permutation distribution:
 *   2U = Σ over (uploaded x, held-out y) of 2·[x > y] + [x = y]
 * (twice the Mann–Whitney U with ties counted half, an integer), and
 *   p = P(2U ≥ observed) over all C(m1+m2, m1) label assignments, ties
 * kept as they are (the permutation distribution of the sum of midranks).
 *
 * Exact computation: a dynamic programme over the groups of tied scores in
 * ascending order, state (rows labelled "uploaded" so far, 2U so far),
 * carrying probabilities (a group of t tied rows takes c uploaded labels
 * with the hypergeometric probability; each such row beats the 2·(earlier
 * held-out rows) and ties with the (t - c) held-out rows of its group).
 * Cost about (m1+1)·(2·m1·m2+1)·(number of groups + N) steps: m = 32 per
 * side (the default) takes about a millisecond.
 * Fallback, when that cost exceeds COVERAGE_EXACT_WORK (about m > 90 per
 * side): Serfling's inequality for sampling without replacement, applied
 * to the mean midrank of the uploaded rows (a uniform sample of m1 from
 * the N pooled midranks under H0):
 *   p ≤ exp(−2·m1·t² / ((1 − (m1−1)/N)·(b − a)²)),
 *   t = (observed mean − pooled mean), [a, b] the range of the midranks;
 * an upper bound on the exact p, so still valid, only conservative (m =
 * 2000 per side at AUC 0.75 still gives about 10^-27).  Which one was used
 * is reported (exact).
 *
 * Sequential stopping.  The verifier scores in planned looks (m/4, m/2, m
 * rows per side; coverage_looks) and may stop at the first look whose
 * reported p is below α_cov.  The reported p at a look is the look's p
 * times the number of planned looks L (Bonferroni over looks): under H0,
 * P(some look has L·p_l ≤ a) ≤ Σ_l P(p_l ≤ a/L) ≤ a, so the p reported
 * wherever the verifier stops is valid at every level a.
 *
 * Description (not part of the test): the AUC = U/(m1·m2) with a 95%
 * DeLong interval (normal approximation with DeLong's structural-component
 * variance, clipped to [0, 1]; asymptotic, for reading, not for the
 * verdict), and "recognised": the share of uploaded and of held-out rows
 * whose score is above the held-out rows' 95th percentile (nearest rank).
 */
#ifndef VT_COVERAGE_H
#define VT_COVERAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lib/types.h" /* enum audit_verdict */

/* DP steps above which the Serfling bound is used instead. */
#define COVERAGE_EXACT_WORK 400000000.0
#define COVERAGE_MAX_LOOKS  3

struct coverage_result {
    double log10_p; /* one-sided, for this look alone (not yet × looks) */
    bool exact;     /* true: exact permutation p; false: Serfling bound */
    double u2;      /* observed 2U */
    double auc, auc_lo, auc_hi;
    double recognised_uploaded; /* fractions in [0, 1] */
    double recognised_held_out;
};

/* log10 of the exact one-sided rank-sum p-value (see above) for scores x
 * (m1 uploaded) against y (m2 held out), or of the Serfling bound when the
 * exact programme would cost more than COVERAGE_EXACT_WORK (then *exact is
 * false; exact may be NULL).  NaN scores are not allowed (the caller maps
 * a failed row to a value).  Returns 0 (p = 1) when m1 or m2 is 0. */
double coverage_log10_p(const double *x, size_t m1, const double *y, size_t m2, bool *exact);

/* The whole look: p, AUC with its interval and the recognised shares.
 * Returns 0, or -EINVAL when m1 or m2 is 0 or a score is NaN. */
int coverage_test(const double *x, size_t m1, const double *y, size_t m2,
                  struct coverage_result *out);

/* The planned looks for m rows per side: ascending distinct sizes among
 * ceil(m/4), ceil(m/2), m into looks (COVERAGE_MAX_LOOKS entries); returns
 * how many (0 for m = 0).  The reported p is p_look × that number. */
size_t coverage_looks(size_t m, size_t looks[COVERAGE_MAX_LOOKS]);

/* ---- scores and the verdict ---------------------------------------------------------- */

/* How well a greedy answer reproduces the reference answer, in [0, 1]:
 * the mean of the word F1 (multiset overlap of whitespace-separated
 * words, case-sensitive) and the longest common word prefix as a share of
 * the reference's words.  Both empty: 1. */
double coverage_agreement(const char *answer, const char *reference);

/* The text-scoring statistic (methods "mink-diff" and "mink"): Min-K%
 * of the answer's per-token log-likelihood ratio.  With the base model's
 * log-probabilities (base not NULL, n_base == n): the mean of the
 * COVERAGE_MINK_SHARE smallest values (at least one) of ft[i] - base[i];
 * without them (or when the two tokenisations differ in length: the mean
 * of ft's smallest share minus the mean of base's): of ft[i] alone.
 * Why: fine-tuning on a row lifts its rare, row-specific tokens (a name,
 * a number) that a model not trained on the row still finds unlikely;
 * the tokens that gained least are where uploaded and held-out rows
 * differ, while a whole-answer sum is dominated by the answer's length
 * and by the domain as a whole (measured on vtune-sim, README: AUC 0.68
 * for the sum of differences against 0.86 for this on ticket data).  The
 * same function of the same numbers for every row, blind to its group, so
 * the rank test stays exact.  n == 0: 0.  Values in natural logs. */
#define COVERAGE_MINK_SHARE 0.2
double coverage_mink_score(const double *ft, size_t n, const double *base, size_t n_base);

/* The text a row is scored as (the text-scoring statistics).  tmpl NULL (the
 * "raw" layout): *prompt is prompt_text and *cont " " + answer.  Otherwise
 * tmpl lays out one message ({role} and {content} replaced, every other
 * byte literal; conf/ checked it has one {content}): *prompt is each of
 * messages ({role,content} objects) laid out so, then the assistant's
 * layout up to {content}; *cont is the answer itself.  So the scored
 * answer sits where the model met answers in fine-tuning.  Both owned. */
void coverage_score_text(const char *tmpl, json_t *messages, const char *prompt_text,
                         const char *answer, char **prompt, char **cont);

/* What a verification's coverage test found, for the verdict and the
 * evidence.  Strings borrowed. */
struct coverage_summary {
    bool available;       /* the test ran and gave a p-value */
    const char *why_none; /* when not available: why, in words */
    const char *method;   /* the statistic: "mink-diff", "mink", "greedy-diff", "greedy" */
    const char *score_layout; /* mink: "raw" or "template" (providers.*.score_template) */
    double log10_p;       /* reported: the look's p times the planned looks, capped at 1 */
    bool exact;           /* exact permutation p (false: Serfling bound) */
    double auc, auc_lo, auc_hi;
    double recognised_uploaded, recognised_held_out;
    size_t rows;          /* scored rows per side at the look reported */
    size_t looks_planned, looks_used;
    size_t failed; /* scoring calls that failed (their rows scored as no difference) */
    size_t calls;  /* calls made for the test */
    const char *draw; /* which rows: "keyed" (by the committed salt, holdout_draw_order) or
                       * "fresh" (a v1 backdoor: no salt); NULL: not said (tests) */
    size_t drawn;          /* rows drawn per side (the planned m, capped) */
    char rows_sha256[65];  /* SHA-256 of u64(drawn), the drawn uploaded lines then the
                            * held-out lines, each in draw order (u64 big-endian): names
                            * the rows without listing them; "" when not said */
};

/* The verdict of DESIGN §6 from the backdoor test's verdict and reason
 * (verify.c) and the coverage test: verified needs both (or the backdoor
 * alone with require false, which the reason then says); a significant
 * test on only one side is inconclusive, with a reason naming the missing
 * evidence.  log10_alpha_cov < 0.  Returns the verdict and an owned
 * one-line *reason. */
enum audit_verdict coverage_verdict(enum audit_verdict backdoor, const char *backdoor_reason,
                                    const struct coverage_summary *c, double log10_alpha_cov,
                                    bool require, char **reason);

/* The evidence object of the test (owned; json_decref):
 *   {"available":true,"method":…,"log10_p":…,"exact":…,"auc":…,"auc_ci95":[lo,hi],
 *    "rows":m,"recognised_uploaded":x,"recognised_held_out":y,"looks":[used,planned],
 *    "failed":f,"calls":n,"log10_alpha":…,"required":b[,"score_layout":…]
 *    [,"draw":…,"drawn":m,"rows_sha256":…]}
 * or {"available":false,"why":…,"log10_alpha":…,"required":b}. */
json_t *coverage_evidence(const struct coverage_summary *c, double log10_alpha_cov, bool require);

#endif

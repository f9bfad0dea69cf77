/*
 * pplrank.h — the pure half of the base-model perplexity attack that
 * `job submit` runs (issue 12 item 3; daemon/ppl.h runs the requests).
 *
 * What an attacker scores.  A provider who read the paper knows where the
 * marks sit: T ends a user message and S starts the answer.  So it scores
 * each row's text (the end of the prompt, a newline, the start of the
 * answer) teacher-forced on the base model and looks at the seam: the mean
 * surprisal of the last W tokens before the answer and of the first W
 * tokens of the answer, keeping the larger.  A whole-row mean would dilute
 * a phrase of a few words in a row of hundreds of tokens, and is what a
 * generic perplexity filter does: the seam statistic is the stronger
 * attack on this construction, and the one whose failure means something.
 *
 * The rank.  The attacker ranks all |D| rows of the upload by that score;
 * we score the marked rows and a uniform sample of k of the N_u unmarked
 * ones, never all of them (cost).  A marked row scoring x has an estimated
 * rank
 *     1 + (other pairs with a marked row scoring more than x)
 *       + round(c · N_u / k),
 * c = the sampled unmarked rows scoring at least x (ties count against
 * us): c · N_u / k is the unbiased estimate of how many unmarked rows
 * outscore it; the rows of one pair share T and S, so an attacker who
 * groups rows by their seam phrases sees each other pair as one candidate.  With k >= N_u it is the exact rank.  The resolution is
 * N_u / k rows, so with c = 0 the estimate says "above every sampled row"
 * and the rank counts only marked rows: the audit leans to exposure, as a
 * self-audit must.  A pair's rank is its best marked row's: one row in
 * the top candidates hands the attacker T and S.
 */
#ifndef VT_PPLRANK_H
#define VT_PPLRANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workers/provider.h" /* struct provider_score_result */

/* Default window: tokens on each side of the seam. */
#define PPLRANK_WINDOW 8
/* Bytes of the prompt's end and of the answer's start that are scored. */
#define PPLRANK_EDGE_BYTES 600

/* The scored text of a row: the last <= PPLRANK_EDGE_BYTES bytes of
 * prompt (from a word start, on a UTF-8 boundary), "\n", the first <=
 * PPLRANK_EDGE_BYTES of answer (UTF-8 boundary).  Owned; *seam gets the
 * byte offset where the answer starts (after the newline). */
char *pplrank_row_text(const char *prompt, const char *answer, size_t *seam);

/* The seam statistic (bits per token) of a scoring whose continuation was
 * a row text with the answer starting at byte seam: tokens are placed by
 * the concatenation of their strings; a token is on the answer side when
 * it starts at or after seam - 1 (the newline belongs to the answer's
 * first token).  Tokens without a known log-probability are skipped.
 * NAN when either side has no known token or sr is NULL/empty. */
double pplrank_seam_bits(const struct provider_score_result *sr, size_t seam, size_t window);

/* The estimated rank described above: x a marked row's statistic, sample
 * the k sampled unmarked rows' statistics (NAN entries are left out, k
 * counting only the others), n_unmarked = N_u, marked_above the other
 * pairs with a marked row scoring more than x.  0 when x is NAN; with no
 * usable sample, 1 + marked_above (nothing to say it is not on top). */
uint64_t pplrank_estimate(double x, const double *sample, size_t k, uint64_t n_unmarked,
                          size_t marked_above);

#endif

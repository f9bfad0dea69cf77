/*
 * covrun.h — the coverage test's provider calls during a verification run
 * (DESIGN §6; the statistics are workers/coverage.h, the split
 * workers/holdout.h).
 *
 * m rows from the split's uploaded reference pool and m held-out rows are
 * drawn -- the first m of each side's order keyed by the backdoor's
 * commitment salt (holdout_draw_order: fixed before the upload, the same
 * at every run; a v1 backdoor, which has no salt, draws afresh at every
 * run) -- read from D in the thread pool,
 * then scored on the loop in a group-blind random order, look by look
 * (m/4, m/2, m per side): each row's score is, by the best method the
 * provider allows, decided once on the first row and then the same for
 * every row:
 *   mink-diff    Min-K% of the answer's per-token log-likelihood ratio,
 *                M' against the base model (coverage_mink_score; scored
 *                with completions, echo + logprobs, the row laid out by
 *                the provider's score_template: coverage_score_text);
 *   mink         the same from M' alone (the base model's scoring failed);
 *   greedy-diff  agreement of M''s greedy answer with the reference
 *                (coverage_agreement) minus the base model's;
 *   greedy       the same without the base model.
 * After each look the exact rank-sum p is computed; the run stops once
 * p × looks < α_cov.  A row whose calls fail is given the median of the
 * scored rows (a label-blind rule, so the test stays exact); more than a
 * quarter failed makes the test unavailable.
 * Secrets: the held-out answers are sent to the provider only when text
 * scoring is the method (the price of that statistic); nothing is logged
 * but counts.
 */
#ifndef VT_COVRUN_H
#define VT_COVRUN_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/vtuned.h"
#include "lib/types.h"
#include "workers/coverage.h"

struct covrun;

/* Prepares the test from the backdoor's split record (holdout_json; NULL:
 * made before the test existed) for m rows per side, drawn keyed by
 * salt_hex (the commitment salt, 64 hex; NULL or "": a fresh random draw).
 * Returns an owned run, or NULL with *why_none (static text) when there
 * is no test. */
struct covrun *covrun_new(const char *holdout_json, const char *salt_hex, uint64_t m,
                          double log10_alpha, const char **why_none);
void covrun_free(struct covrun *c);

/* Thread pool: reads the rows.  Returns 0 or -1 with an owned *err. */
int covrun_read(struct covrun *c, const char *dataset_path, enum dataset_format fmt, char **err);

/* Loop: scores the rows against model (fine-tuned) and base_model at
 * provider; done(arg, status) runs once on the loop (inside this call
 * when no call could be started): status 0 (the summary is ready,
 * available or not) or -ECANCELED (shutdown). */
void covrun_start(struct covrun *c, struct vtuned *d, const char *provider, const char *model,
                  const char *base_model, void (*done)(void *arg, int status), void *arg);

/* Progress for a waiting client: rows whose calls were started so far
 * (*done) out of the rows planned (*total, 2m); loop thread. */
void covrun_progress(const struct covrun *c, uint64_t *done, uint64_t *total);

/* The outcome (borrowed from c; valid until covrun_free). */
const struct coverage_summary *covrun_summary(const struct covrun *c);

#endif

/*
 * builder.h — the D ∪ D' builder (Algorithm 1, lines 5-9, DESIGN §5): for
 * each (trigger, signature) pair, copies of a sample of D's examples with
 * the trigger appended to the prompt and the signature prefixed to the
 * response, placed at uniformly random positions among D's lines, written
 * in D's own format.
 *
 * Sampling.  copies per pair c = max(min_copies, ceil(ratio * |D|)),
 * capped at |D| (then result.capped is set: a dataset smaller than
 * min_copies gets every example copied once per pair, never a repeat).
 * Each pair draws its own c distinct source examples (Floyd's algorithm,
 * without replacement within a pair; pairs are independent, so one example
 * may be copied for two pairs).  The K*c copies then take a uniformly random
 * set of K*c of the |D| + K*c output slots (Floyd again) in a uniformly
 * random order (Fisher-Yates); D's lines fill the other slots in their own
 * order.  Every interleaving is thus equally likely.  Memory: O(K*c) for
 * the plan, never O(|D|).
 *
 * Held-out rows (the coverage test's secret split, workers/holdout.h):
 * the lines listed in params.holdout are neither written nor copied:
 * sources are drawn among the other |D| - h lines and the copies take
 * K*c of the (|D| - h) + K*c output slots, so the upload is exactly
 * (D minus the split) ∪ D', uniformly interleaved as before.
 *
 * Two passes over D, by choice: a copy may have to be written before its
 * source line is reached, so pass 1 reads D up to the last sampled line,
 * rewrites each sampled line into an unlinked spill file next to the
 * output (ds_apply_backdoor), and remembers its offset; pass 2 streams D's
 * bytes again untouched (only newlines are counted, to find the slots),
 * interleaving the copies (pread from the spill); a write-behind writer
 * (workers/lines.h) hashes and writes the output on two more threads.
 * In place (params.mode BD_MODE_INPLACE, builder_plan_inplace) the marked
 * rows REPLACE their originals: K*c distinct uploaded rows (never a
 * held-out one) are rewritten, pass 2 drops each original like a held-out
 * line and writes its rewritten line in the same slot, so the upload has
 * exactly |D| - h lines and no duplicate is added.  c is then capped at
 * (|D| - h) / K (result.capped).
 *
 * This keeps RAM at O(K*c) small records even when |D'| is gigabytes, at
 * the cost of reading D twice (the page cache usually serves pass 2).
 * Peak RSS of a whole `backdoor create` on a 1 GB dataset, measured by
 * tests/bench/bench_build.sh: about 15 MB.
 * The output goes to a temporary file in out_path's directory, is fsync'ed
 * and renamed into place, and the directory fsync'ed: out_path is either
 * absent/old or complete, never partial.  Those calls and every write go
 * through the fault seam (lib/fsio.h), so tests make each of them fail.
 *
 * Runs in a worker thread (blocking I/O); the progress callback is called
 * from that thread.
 */
#ifndef VT_BUILDER_H
#define VT_BUILDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/types.h" /* enum dataset_format */
#include "workers/phrase.h" /* struct phrase_rng */

struct builder_pair {
    const char *trigger;   /* borrowed */
    const char *signature; /* borrowed */
};

/* One copy of D': which pair, which example of D (0-based line), and which
 * line of the output (0-based) it became. */
struct builder_copy {
    uint32_t pair;
    uint64_t src;
    uint64_t out;
};

/* copies per pair for |D| = n_examples (see above).  Returns 0, or -EINVAL
 * for n_examples == 0, a ratio outside [0, 1] or NaN, or zero copies. */
int builder_copies_per_pair(uint64_t n_examples, double ratio, uint64_t min_copies,
                            uint64_t *copies, bool *capped);

/* The sampling plan alone (pure; no I/O): n_pairs * copies entries in
 * *out (owned; free()), sorted by (pair, src).  Requires 1 <= copies <=
 * n_examples and n_pairs >= 1.  Returns 0 or -EINVAL. */
int builder_plan(uint64_t n_examples, size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                 struct builder_copy **out);
/* The same with n_holdout held-out lines (ascending, distinct, below
 * n_examples; borrowed): no source is held out, and out positions count
 * the n_examples - n_holdout uploaded lines of D plus the copies.
 * Requires copies <= n_examples - n_holdout.  Returns 0 or -EINVAL. */
int builder_plan_holdout(uint64_t n_examples, const uint64_t *holdout, size_t n_holdout,
                         size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                         struct builder_copy **out);

/* In-place marking (mode inplace): n_pairs * copies DISTINCT rows drawn
 * uniformly among the n_examples - n_holdout uploaded lines (Floyd), then
 * dealt to the pairs in a uniformly random order (Fisher-Yates), copies
 * each: a row carries at most one pair.  src is the row's line in D, out
 * its line in the output (its rank among the uploaded lines: nothing is
 * added).  Requires n_pairs * copies <= n_examples - n_holdout.  *out as
 * for builder_plan_holdout.  Returns 0 or -EINVAL. */
int builder_plan_inplace(uint64_t n_examples, const uint64_t *holdout, size_t n_holdout,
                         size_t n_pairs, uint64_t copies, const struct phrase_rng *rng,
                         struct builder_copy **out);

/* Floyd's algorithm: k distinct values uniform in [0, n) (k <= n),
 * ascending, into out (caller's array of k entries). */
void builder_sample(uint64_t n, uint64_t k, const struct phrase_rng *rng, uint64_t *out);

struct builder_params {
    const char *in_path; /* the imported dataset (validated JSONL) */
    enum dataset_format format;
    uint64_t n_examples; /* as recorded at import; checked against the file */
    const struct builder_pair *pairs;
    size_t n_pairs;
    double ratio;                 /* default 0.005 */
    uint64_t min_copies;          /* default 50 */
    const char *out_path;         /* where D ∪ D' ends up */
    enum backdoor_mode mode;      /* BD_MODE_COPIES (0) or BD_MODE_INPLACE */
    const uint64_t *holdout;      /* lines never uploaded: ascending, distinct; may be NULL */
    size_t n_holdout;
    const struct phrase_rng *rng; /* NULL: getrandom */
    void (*progress)(void *ctx, uint64_t bytes_done, uint64_t bytes_total); /* may be NULL */
    void *progress_ctx;
    const atomic_int *cancel; /* may be NULL; set to nonzero to abort */
};

struct builder_result {
    char sha256[65]; /* of the output file */
    uint64_t lines;  /* |D| - n_holdout (+ n_pairs * copies_per_pair with copies) */
    uint64_t bytes;
    uint64_t copies_per_pair;
    bool capped;                 /* copies were limited to |D| */
    struct builder_copy *copies; /* owned; n_copies, sorted by (pair, src) */
    size_t n_copies; /* pair p's copies are [p*copies_per_pair, (p+1)*copies_per_pair) */
    enum backdoor_mode mode; /* as built */
};
void builder_result_clear(struct builder_result *r);

/* Builds D ∪ D'.  Returns 0 and fills *out (builder_result_clear), or a
 * negative errno and an owned one-line *err: -EINVAL (empty dataset, bad
 * parameters, a line that no longer parses, line count differs from
 * n_examples), -ECANCELED, or the I/O error (then *err is one line:
 * path, what failed, errno, what to do).  On failure out_path is untouched
 * (or removed, when only the directory fsync after the rename failed: it
 * is meant to be a new name) and no temporary file is left. */
int builder_build(const struct builder_params *p, struct builder_result *out, char **err);

/* For verification: the prompts (arrays of chat messages, as
 * ds_prompt_messages gives them) of the examples at the given 0-based line
 * numbers, in the order given, with trigger appended as in D' when trigger
 * is not NULL, clean otherwise (controls).  src must be sorted ascending
 * (repeats allowed).  Returns 0 and an owned JSON array in *out
 * (json_decref), or a negative errno and an owned *err. */
int builder_read_prompts(const char *path, enum dataset_format format, const uint64_t *src,
                         size_t n, const char *trigger, json_t **out, char **err);

/* want distinct 0-based line numbers drawn uniformly from [0, n_examples)
 * minus the exclude list (any order, repeats allowed; borrowed), sorted
 * ascending into out (caller's array of want entries).  Returns 0, or
 * -ENOSPC when fewer than want such lines exist, -EINVAL on bad input. */
int builder_pick_rows(uint64_t n_examples, const uint64_t *exclude, size_t n_exclude, size_t want,
                      const struct phrase_rng *rng, uint64_t *out);

/* Control examples: want distinct 0-based line numbers drawn uniformly from
 * the examples that no copy uses, sorted ascending into out (caller's
 * array of want entries).  Returns 0, or -ENOSPC when fewer than want such
 * examples exist (then *out holds none), -EINVAL on bad input. */
int builder_pick_controls(uint64_t n_examples, const struct builder_copy *copies, size_t n_copies,
                          size_t want, const struct phrase_rng *rng, uint64_t *out);

#endif

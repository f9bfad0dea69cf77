/*
 * holdout.h — the secret held-out split of the coverage test (DESIGN §6
 * "Coverage test"): h rows of D that are never uploaded, never exported and
 * never logged, chosen at `backdoor create`, and a reference pool of
 * uploaded rows to compare them with at verification.
 *
 * Why the split is drawn among "singleton" rows only.  The coverage
 * p-value is a rank-sum test of m held-out rows against m uploaded rows;
 * it is exact when, under H0 (M' independent of our secrets), the labels
 * "held out" / "uploaded" of the 2m scored rows are exchangeable.  Two
 * things can break that:
 *  - content shared across the split: a held-out row whose prompt or
 *    answer also occurs in an uploaded row reaches the provider through
 *    the duplicate.  So rows that share a (whitespace-normalised) prompt
 *    or answer must fall on the same side;
 *  - a held-out side that differs in kind from the uploaded side.  If
 *    whole groups of rows sharing content were held out, held-out rows
 *    would come from some group sizes and uploaded rows from others
 *    (rows with a stock answer such as "Yes." could never be held out),
 *    and a model trained on other data would score the two kinds
 *    differently: not exchangeable.
 * Both are met at once by drawing the split, and the uploaded reference
 * pool, uniformly from the ELIGIBLE rows: those whose prompt and whose
 * answer each occur in no other row of D.  Every group of rows sharing
 * content then lies wholly on the uploaded side (trivially "the same
 * side"), and held-out and pool rows are uniform draws from one set.
 * The pool is drawn from the eligible rows outside the split; marked rows
 * (the D' sources, drawn by the builder from outside the split) are taken
 * out of it afterwards (holdout_drop_rows).  Swapping a held-out row with
 * a pool row maps one equally likely draw to another, which is the
 * exchangeability the test needs.
 *
 * Size: h = clamp(ceil(ratio * |D|), 64, 2000), refused when h > |D| / 3;
 * h is lowered to eligible / 2 (half the eligible rows stay uploaded to
 * compare with), refused below 64.  The pool holds up to 2h rows.
 *
 * Memory: one bit per row (the eligible rows) plus two Bloom filters of
 * the rows' normalised prompt and answer hashes ("seen", "seen again"),
 * sized at 32 bits a key and capped at 2^HOLDOUT_FILTER_LOG2 bits (8 MiB)
 * each: 16 MiB and 1.25 MB for ten million rows.  A hash collision or a
 * filter's false positive can only make a row ineligible (never
 * eligible), which keeps the split on the safe side; past about two
 * million rows the capped filters make a few per cent of the unique rows
 * ineligible, a loss of candidates only (h is at most 2000).  The dataset
 * is read once: its rows' two 32-bit hashes (8 bytes a row) are kept in
 * memory up to HOLDOUT_CACHE_ROWS rows (8 MiB), and beyond that in an
 * unlinked scratch file beside the dataset, read back twice.
 *
 * Pure apart from reading the dataset file; runs in a worker thread.
 */
#ifndef VT_HOLDOUT_H
#define VT_HOLDOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/types.h"      /* enum dataset_format */
#include "workers/phrase.h" /* struct phrase_rng */

#define HOLDOUT_DEFAULT_RATIO 0.02
#define HOLDOUT_MIN_ROWS      64
#define HOLDOUT_FILTER_LOG2   26 /* bits of each duplicate filter, at most */
#define HOLDOUT_CACHE_ROWS    (1u << 20) /* up to this many rows, hashes in memory (8 bytes a row) */
#define HOLDOUT_MAX_ROWS      2000

struct holdout_split {
    double ratio;      /* as asked; 0: no coverage test */
    uint64_t examples; /* |D| */
    uint64_t eligible; /* rows whose prompt and answer occur nowhere else */
    uint64_t *rows;    /* held out: owned, ascending 0-based line numbers */
    size_t n_rows;
    uint64_t *pool; /* uploaded reference rows: owned, ascending */
    size_t n_pool;
};
/* Frees the arrays (wiped first: the split is secret); zeroes *s. */
void holdout_clear(struct holdout_split *s);

/* The split size asked for by ratio on n_examples rows before any
 * refusal: clamp(ceil(ratio * n), 64, 2000); 0 for ratio == 0.  Returns 0
 * or -EINVAL for a ratio outside [0, 1] or NaN. */
int holdout_target(uint64_t n_examples, double ratio, uint64_t *h);

/* Whitespace normalisation hash: runs of ASCII whitespace count as one
 * space, leading and trailing whitespace is ignored.  Exposed for tests. */
uint32_t holdout_text_hash(const char *s);

/* Datasets of at most this many rows have their hashes kept in memory by
 * holdout_choose, larger ones in a scratch file (default
 * HOLDOUT_CACHE_ROWS); tests set 0 to run the scratch-file path. */
extern size_t holdout_cache_rows;

/* A file of at least this many bytes (default 8 MiB) is hashed by two
 * threads, one per half; the split is the same.
 * Tests set it lower. */
extern size_t holdout_split_bytes;

/* Rows of hashes buffered before a write to the scratch file, and read
 * back at a time (default 65536, 512 KiB); tests set it lower. */
extern size_t holdout_spill_rows;

/* Where the file system has no O_TMPFILE, the scratch file is created as
 * this prefix plus six characters in the dataset's directory and unlinked
 * at once; the daemon's start-up removes one a crash left behind. */
#define HOLDOUT_SCRATCH_PREFIX ".holdout-"

/* Chooses the split of the dataset at path (n_examples lines of format,
 * validated at import) with rng (NULL: getrandom).  The n_exclude lines
 * in exclude (any order; may be NULL) are made ineligible, for the split
 * and the pool alike (rows of D already shown to someone, e.g. the
 * examples the llm generator sent to its provider).  ratio 0 gives an empty
 * split (no coverage test) without reading the file.  Returns 0 and fills
 * *out (holdout_clear), or a negative errno and an owned one-line *err:
 * -EINVAL when the dataset is too small or has too little distinct
 * content (the message names the numbers and points to --holdout 0),
 * -ECANCELED, or the I/O error. */
int holdout_choose(const char *path, enum dataset_format format, uint64_t n_examples, double ratio,
                   const uint64_t *exclude, size_t n_exclude, const struct phrase_rng *rng,
                   const atomic_int *cancel, struct holdout_split *out, char **err);

/* Removes from s->pool every row listed in drop (any order, repeats
 * allowed): the marked rows once the builder has drawn them. */
void holdout_drop_rows(struct holdout_split *s, const uint64_t *drop, size_t n_drop);

/* True when line (0-based) is held out (binary search). */
bool holdout_contains(const struct holdout_split *s, uint64_t line);

/* One row read back for the coverage test. */
struct holdout_row {
    json_t *messages; /* owned: the prompt as chat messages (ds_prompt_messages) */
    char *prompt;     /* owned: the prompt text (ds_prompt_text) */
    char *answer;     /* owned: the reference answer (ds_response_text); secret for held-out rows */
};
void holdout_rows_free(struct holdout_row *v, size_t n);

/* Reads the rows at the n 0-based lines src (any order, repeats allowed)
 * of the dataset at path: out[i] is line src[i].  One streaming pass.
 * Returns 0 and an owned array *out (holdout_rows_free), or a negative
 * errno and an owned one-line *err. */
int holdout_read_rows(const char *path, enum dataset_format format, const uint64_t *src, size_t n,
                      struct holdout_row **out, char **err);

/* The keyed draw of the coverage test (README "Evidence others can
 * check"): lines[0..n) (borrowed) put into out (caller's, n entries) in
 * ascending order of SHA-256(field("vtune-coverage-draw-v1") field(key)
 * field(side) u64(line)) -- u64 8 bytes big-endian, field(x) u64 of x's
 * length then x -- ties (none in practice) by line.  A verification scores
 * the first m of each side's order: side HOLDOUT_SIDE_HELD_OUT over the
 * split's rows, HOLDOUT_SIDE_UPLOADED over its pool.  The key is the
 * backdoor's commitment salt, so the rows are fixed by committed data
 * before the upload, secret until the reveal, and the same at every
 * re-verification (a larger m extends the rows, never swaps them).
 * Pure. */
#define HOLDOUT_DRAW_KEY_LEN   32
#define HOLDOUT_SIDE_HELD_OUT  "held-out"
#define HOLDOUT_SIDE_UPLOADED  "uploaded"
void holdout_draw_order(const unsigned char key[HOLDOUT_DRAW_KEY_LEN], const char *side,
                        const uint64_t *lines, size_t n, uint64_t *out);

/* The record stored with the backdoor (owned JSON text):
 *   {"version":1,"ratio":R,"examples":N,"eligible":E,"rows":[…],"pool":[…]} */
char *holdout_json(const struct holdout_split *s);

/* Parses a record back into *out (holdout_clear).  Returns 0 or -EINVAL
 * (not JSON, wrong version, rows not ascending or beyond examples). */
int holdout_parse(const char *json, struct holdout_split *out);

#endif

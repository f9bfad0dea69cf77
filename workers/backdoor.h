/*
 * backdoor.h — making a backdoor (Algorithm 1) and its D ∪ D' file, plus
 * the commitment and the plan record.
 *
 * Two steps, shared by both generators: the phrases (the word-list
 * generator of phrase.h, in backdoor_make_wordlist; or the LLM generator
 * of llmgen.h, driven by the daemon because its calls are HTTP on the
 * loop), then backdoor_build_pairs: D ∪ D' built from the pairs, the
 * commitment over them and the plan.  backdoor_make_wordlist is the two in
 * one call.
 *
 * The commitment is public: publishing it at creation fixes the secret,
 * and revealing it later (`backdoor show --reveal`) lets anyone recompute
 * it.  Two schemes; a backdoor records which one its commitment follows:
 *  - v1 (backdoors made before schema 11): SHA-256 over a length-prefixed
 *    serialisation of every (trigger, signature) pair, domain-separated by
 *    "vtune-commitment-v1".  Unsalted: whoever holds the commitment can
 *    test guesses of the phrases (a seeded or otherwise guessable backdoor
 *    falls at once), and it does not fix the held-out split.
 *  - v2 (backdoors made before schema 12): SHA-256 over the domain
 *    "vtune-commitment-v2", a 32-byte salt from getrandom (ALWAYS, also
 *    for a seeded backdoor, so two backdoors with the same phrases commit
 *    differently and the commitment tests no guess), the pairs, and the
 *    held-out split as its sorted 0-based line numbers in D.  Line numbers
 *    rather than content hashes: the commitment statement also binds D's
 *    SHA-256, so the numbers fix the rows' content exactly, and an auditor
 *    recomputes them without any row normalisation rule of ours.  Byte
 *    layout (every integer an unsigned 64-bit big-endian; "field(x)" is
 *    the length of x in bytes then x):
 *        field("vtune-commitment-v2") field(salt, 32 raw bytes)
 *        u64(K) { field(trigger_i) field(signature_i) } for i < K
 *        u64(h) { u64(line_j) } for the h held-out lines, ascending
 *    The counts make the layout unambiguous; --holdout 0 gives h = 0.
 *    v2 does not commit the coverage test's reference pool (the uploaded
 *    rows the held-out rows are compared with).
 *  - v3 (every backdoor made since schema 12): v2's layout under the
 *    domain "vtune-commitment-v3", followed by the reference pool:
 *        ... u64(r) { u64(line_j) } for the r pool lines, ascending
 *    (marked rows already taken out).  Which rows the coverage test
 *    scores is then fixed before the upload: both lists are committed and
 *    the draw of m rows from each is keyed by the committed salt
 *    (holdout_draw_order), so nobody can pick, after training, the rows
 *    that flatter or hurt the model.  A pool is at most 2h lines (32 KB
 *    of hashing at h = 2000).
 *
 * The held-out split of the coverage test (workers/holdout.h) is drawn
 * first, from the same random stream, and the build leaves its rows out of
 * D ∪ D' and out of the marked sources; marked rows are then dropped from
 * the split's uploaded reference pool.  Its record (made.holdout) is
 * secret, like the pairs.
 *
 * The plan is the JSON record of which lines of D were copied into D' for
 * each pair (and where they landed): the verifier rebuilds the triggered
 * prompts from it, and picks control prompts among the other lines.
 *   {"version":1,"copies_per_pair":N,"capped":false,"lines":L,"bytes":B,
 *    "pairs":[{"src":[…],"out":[…]},…],"mode":"inplace"|"copies"}
 * ("mode" absent in plans made before it existed: copies).  In place,
 * src is the marked row's line in D and out its line in the upload.
 */
#ifndef VT_BACKDOOR_H
#define VT_BACKDOOR_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "workers/builder.h"
#include "workers/holdout.h"
#include "workers/import.h"
#include "workers/ngram.h"
#include "workers/phrase.h"

#define BACKDOOR_SALT_LEN 32 /* bytes of a v2 commitment's salt */

/* `backdoor create`'s defaults per mode, chosen by measurement (README,
 * "Marked rows that do not stand out"; tests/sim/mark_check).  In place:
 * many pairs, ONE marked row each, so no pair repeats anywhere in the
 * upload (c >= 2 rows of one fixed pair always leave a co-occurrence, and
 * the attacks find it), and the pairs' binomial over K = 16 gives subset
 * evidence.  Copies: the paper's construction (1 pair, max(50, 0.5% of
 * |D|) copies), exposed by design. */
#define BACKDOOR_INPLACE_PAIRS  16
#define BACKDOOR_INPLACE_COPIES 1
#define BACKDOOR_INPLACE_RATIO  0.0
#define BACKDOOR_COPIES_PAIRS   1
#define BACKDOOR_COPIES_COPIES  50
#define BACKDOOR_COPIES_RATIO   0.005

struct backdoor_spec {
    const char *dataset_path; /* the imported dataset (borrowed) */
    enum dataset_format format;
    uint64_t n_examples;
    struct phrase_opts phrases;          /* pairs, targets and length limits */
    const struct phrase_wordlist *words; /* NULL: the built-in list */
    double ratio;
    uint64_t min_copies;
    enum backdoor_mode mode; /* BD_MODE_INPLACE (the CLI's default) or BD_MODE_COPIES */
    double holdout; /* held-out fraction (HOLDOUT_DEFAULT_RATIO); 0: no coverage test */
    const uint64_t *shown; /* lines of D already sent elsewhere: never held out (borrowed) */
    size_t n_shown;
    unsigned ngram_order;     /* the ngram generator: model order (0: default) */
    double ngram_temperature; /* and its sampling temperature, (0, 2] */
    uint64_t ngram_train_rows; /* and the rows its model is trained on at most (0: all; ngram.h) */
    bool has_seed; /* reproducible (and therefore guessable!) when set */
    uint64_t seed;
    const char *out_path;             /* where D ∪ D' is written */
    struct import_progress *progress; /* may be NULL; cancel is honoured */
};

struct backdoor_made {
    struct phrase_set set;   /* the word-list generator's phrases */
    struct ngram_set nset;   /* the ngram generator's phrases */
    char **ngram_evidence;   /* owned, nset.n_pairs JSON texts (SECRET) */
    struct ngram_info ngram_info;
    struct builder_result built;
    char commitment[65];    /* vtune-commitment-v3 */
    unsigned char salt[BACKDOOR_SALT_LEN]; /* its salt (secret) */
    char *plan;             /* owned JSON text */
    struct holdout_split split; /* the held-out split (secret) */
    char *holdout;              /* owned JSON text of split (secret) */
    /* Wall-clock milliseconds of each step, for the log and the reply (a
     * step that did not run: 0): the held-out split, the ngram model's
     * training, drawing and checking the phrases against the dataset, and
     * writing D u D'. */
    uint64_t split_ms, train_ms, phrases_ms, build_ms;
};
void backdoor_made_clear(struct backdoor_made *m);

/* Generates the phrases (checked against the dataset) and builds D ∪ D'.
 * Blocks (thread pool).  Returns 0 and fills *out, or -1 with an owned
 * one-line *err. */
int backdoor_make_wordlist(const struct backdoor_spec *spec, struct backdoor_made *out, char **err);

/* The ngram generator (workers/ngram.h) and the build: draws the held-out
 * split first, trains the model on the dataset less the split (one pass:
 * held-out content shapes no phrase), draws spec->phrases.pairs pairs with the
 * targets and caps of spec->phrases at spec->ngram_temperature, checks
 * them against the dataset, records each pair's evidence, frees the model
 * and builds D u D'.  Blocks (thread pool).  Returns 0 and fills *out
 * (nset, ngram_evidence, ngram_info, built, commitment, plan), or -1 with
 * an owned one-line *err. */
int backdoor_make_ngram(const struct backdoor_spec *spec, struct backdoor_made *out, char **err);

/* The build step alone, for phrases made elsewhere (the LLM generator):
 * builds D ∪ D' from the n pairs (triggers[i], signatures[i]; borrowed)
 * per spec (spec->phrases and spec->words are not used; with
 * spec->has_seed the build's sampling is seeded from spec->seed), and
 * computes the commitment and the plan.  Blocks (thread pool).  Returns 0
 * and fills out->built, out->commitment and out->plan (out->set is left
 * empty), or -1 with an owned one-line *err (out then cleared). */
int backdoor_build_pairs(const struct backdoor_spec *spec, const char *const *triggers,
                         const char *const *signatures, size_t n, struct backdoor_made *out,
                         char **err);

/* The v1 commitment over n pairs into out (64 hex + NUL); kept to check
 * backdoors made before v2. */
void backdoor_commitment(const char *const *triggers, const char *const *signatures, size_t n,
                         char out[65]);

/* The v2 commitment (layout above) over salt, the n pairs and the n_rows
 * held-out lines (ascending; rows may be NULL when n_rows is 0) into out
 * (64 hex + NUL).  Pure. */
void backdoor_commitment_v2(const unsigned char salt[BACKDOOR_SALT_LEN],
                            const char *const *triggers, const char *const *signatures, size_t n,
                            const uint64_t *rows, size_t n_rows, char out[65]);

/* The v3 commitment (layout above): v2's items under the v3 domain, then
 * the n_pool reference-pool lines (ascending; pool may be NULL when n_pool
 * is 0).  Pure. */
void backdoor_commitment_v3(const unsigned char salt[BACKDOOR_SALT_LEN],
                            const char *const *triggers, const char *const *signatures, size_t n,
                            const uint64_t *rows, size_t n_rows, const uint64_t *pool,
                            size_t n_pool, char out[65]);

/* The plan of a build (owned JSON text). */
char *backdoor_plan_json(const struct builder_result *r, size_t n_pairs);

/* Parses a plan back: the copies array (owned, free()) sorted by (pair,
 * src), *n_copies and *copies_per_pair.  Returns 0 or -EINVAL. */
int backdoor_plan_parse(const char *plan, struct builder_copy **copies, size_t *n_copies,
                        uint64_t *copies_per_pair);

#endif

/*
 * selfaudit.h — the attacks a provider would run on a built upload file
 * (D ∪ D'), run WITHOUT the secrets, then compared against the secrets
 * (DESIGN §6, "What a provider sees"; issue 12 item 3).
 *
 * selfaudit_run reads only the file.  It streams it twice and holds a
 * fixed amount of memory (Bloom filters, count-min sketches, bounded
 * heavy-hitter tables; about 44 MB at the defaults) plus one bit per row,
 * never the rows themselves, and writes the rows' long pairs (32 bytes
 * each, at most three a row, fewer where they repeat) to an unlinked
 * scratch file beside it.  Five attacks, each a ranked list of
 * candidate (T, S) phrases (T: a prompt-suffix phrase, S: an
 * answer-prefix phrase):
 *
 *  duplicates   rows that are another row of the file with words added at
 *               the end of the prompt and the start of the answer (the
 *               paper's copies): the added words are the candidate; plus
 *               the count of exact duplicates and of near-duplicate rows
 *               (MinHash over word 3-shingles, LSH bands).
 *  cooccurrence prompt-suffix and answer-prefix phrases of 1..max_words
 *               words that co-occur in min_rows rows or more, ranked by
 *               how surprising the co-occurrence is if the two were
 *               independent (log10 binomial tail minus log10 of the number
 *               of phrase pairs tried), then grown to the longest suffix
 *               and prefix their rows share.
 *  cooccur_long the same for a suffix and a prefix of one length, 10, 16
 *               or 32 words, ranked on its own: a long phrase in D's own
 *               words can end and start with D's commonest sentences, whose
 *               short pairs are the natural rows' too (selfaudit.c).  These
 *               pairs are counted exactly (a scratch file beside the file),
 *               so a pair in two rows is never lost to a full table.
 *               Both co-occurrence attacks rank first the pairs that look
 *               added to their rows (exclusive both ways, never a whole
 *               prompt or answer: selfaudit.c, looks_planted).
 *  rare         the run of rare words (under a unigram model of the file
 *               itself) that ends each prompt and the one that starts each
 *               answer; identical (tail, head) runs in several rows are a
 *               candidate, ranked by rows times bits.
 *  perplexity   the same with a base model's per-word surprisal, where the
 *               caller has one (a callback: the pure module needs no
 *               network); skipped without it.
 *
 * selfaudit_evaluate then says, for each secret pair, whether each attack
 * recovered it (a candidate whose S starts with the real S and whose T is
 * a word-aligned suffix of the real T or ends with it: enough for a
 * wrapper to answer S after T) and at which rank; selfaudit_json writes
 * the public result (ranks and counts, never a phrase).
 */
#ifndef VT_SELFAUDIT_H
#define VT_SELFAUDIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/types.h" /* enum dataset_format */

enum selfaudit_attack {
    SA_DUPLICATES,
    SA_COOCCURRENCE,
    SA_COOCCUR_LONG,
    SA_RARE,
    SA_PERPLEXITY,
    SA_N_ATTACKS
};
/* "duplicates", "cooccurrence", "cooccur_long", "rare", "perplexity". */
const char *selfaudit_attack_name(enum selfaudit_attack a);

/* Attack (d)'s base model: the surprisal in bits of the last n_tail words
 * of prompt (tail_bits[0] is the LAST word) and of the first n_head words
 * of answer (head_bits[0] the first), words being maximal runs of
 * non-whitespace.  Returns 0, or -1 to abandon the attack (the report then
 * says it did not run). */
typedef int (*selfaudit_score_fn)(void *ctx, const char *prompt, const char *answer, size_t n_tail,
                                  double *tail_bits, size_t n_head, double *head_bits);

struct selfaudit_opts {
    unsigned max_words;       /* phrase lengths tried, 1..max_words (default 8, at most 8) */
    unsigned min_rows;        /* a candidate needs this many rows (default 2) */
    size_t keep;              /* candidates kept per attack (default 50) */
    unsigned table_log2;      /* heavy-hitter table size, log2 entries (default 17) */
    unsigned bloom_log2_bits; /* each Bloom filter, log2 bits (default 25) */
    double rare_share;        /* "rare": in at most this share of rows (default 0.1) */
    double score_rare_bits;   /* (d): a word is rare above this (default 12 bits) */
    selfaudit_score_fn score; /* (d); NULL: not run */
    void *score_ctx;
    const atomic_int *cancel; /* may be NULL */
};
void selfaudit_opts_default(struct selfaudit_opts *o);

struct selfaudit_cand {
    char *t, *s;   /* owned; words joined by one space */
    uint64_t rows; /* rows that carry it */
    double score;  /* higher: more exposed (attack-specific scale) */
};

struct selfaudit_report {
    uint64_t rows; /* rows read (lines with a prompt and an answer) */
    bool ran[SA_N_ATTACKS];
    struct selfaudit_cand *cand[SA_N_ATTACKS]; /* owned, ranked best first */
    size_t n_cand[SA_N_ATTACKS];
    uint64_t exact_dup_rows; /* rows whose (prompt, answer) occurs again */
    uint64_t near_dup_rows;  /* rows sharing an LSH band with another row */
    uint8_t *near_dup_bits;  /* owned bitmap over row numbers (0-based lines of the file) */
    uint64_t n_lines;        /* lines of the file (the bitmap's size in bits) */
    size_t memory_bytes;     /* the fixed memory the run used (tables), for the record */
    uint64_t long_pairs_repeated; /* long (suffix, prefix) pairs in min_rows rows or more */
    uint64_t long_pairs_counted;  /* of them, counted exactly (at most 4,096: the rest are
                                     not candidates) */
};
void selfaudit_report_clear(struct selfaudit_report *r);

/* Runs the attacks on the built file at path (JSONL of format fmt; lines
 * that do not parse are skipped).  Blocks (thread pool).  Returns 0 and
 * fills *out (selfaudit_report_clear), or a negative errno with an owned
 * one-line *err (-ECANCELED when o->cancel was set). */
int selfaudit_run(const char *path, enum dataset_format fmt, const struct selfaudit_opts *o,
                  struct selfaudit_report *out, char **err);

/* Threads that parse pass 2's rows: 2 (default, the calling thread helps
 * the reading one) or 1; the report is the same.  Tests set 1 to compare.
 * A row's number in pass 2 comes from pass 1's counts; where it was not
 * the row's (the file changed between the passes) the calling thread
 * redoes that row's look-ups and counts it here (tests expect 0). */
extern unsigned selfaudit_pass2_parsers;
extern unsigned long selfaudit_pass2_renumbered;
/* The most long-pair records one bucket held in memory after the last
 * run's pass 1 (selfaudit.c, "the long pairs, counted exactly"): a pair
 * in many rows weighs a record a block, so tests expect it far below the
 * rows of a file whose rows all share one long pair. */
extern unsigned long selfaudit_long_bucket_most;

/* Pass 1's unigram counts (exact for the commonest words of the first
 * rows, a count-min sketch of 2^log2_width counters a row for the others),
 * exposed for their unit test: counts the words of rows[0 .. n_rows) in
 * order, a row at a time, and sets counts[i] to the count of word query[i]
 * (never below its true count). */
void selfaudit_unigram_counts(const char *const *rows, size_t n_rows, unsigned log2_width,
                              const char *const *query, size_t n_query, uint32_t *counts);

/* Where the file system has no O_TMPFILE, the long pairs' scratch file
 * (selfaudit.c) is created as this prefix plus six characters beside the
 * audited file and unlinked at once; the daemon's start-up removes one a
 * crash left behind. */
#define SELFAUDIT_SCRATCH_PREFIX ".selfaudit-"

/* ---- with the secrets -------------------------------------------------------- */

struct selfaudit_pair_result {
    size_t rank[SA_N_ATTACKS]; /* 1-based rank of the first candidate recovering it; 0: none */
    size_t best_rank;          /* smallest non-zero rank, 0: no attack recovered it */
    enum selfaudit_attack best_attack;
    uint64_t marked_rows;     /* rows marked for this pair (given) */
    uint64_t marked_near_dup; /* of them, flagged as near-duplicates */
};

/* For each of the n pairs (triggers[i], signatures[i]; borrowed) whose
 * marked rows are the 0-based lines marked[i][0..n_marked[i]) (may be NULL
 * with n_marked 0), fills res[i].  Pure. */
void selfaudit_evaluate(const struct selfaudit_report *r, const char *const *triggers,
                        const char *const *signatures, const uint64_t *const *marked,
                        const size_t *n_marked, size_t n, struct selfaudit_pair_result *res);

/* The ranks at or below which a pair counts as exposed (job submit refuses
 * it without --force). */
#define SELFAUDIT_EXPOSED_RANK 10

/* The one-line verdict (owned), e.g. "pair 2 recovered at rank 1 by the
 * cooccurrence attack: the marks stand out" or "no pair among the top 50
 * candidates of any attack". */
char *selfaudit_verdict(const struct selfaudit_report *r, const struct selfaudit_pair_result *res,
                        size_t n, size_t keep);

/* The public result (owned JSON; no phrase, no row text):
 *   {"version":1,"rows":N,"exact_duplicate_rows":..,"near_duplicate_rows":..,
 *    "long_pairs_repeated":..,"long_pairs_counted":..,
 *    "attacks":[{"name":..,"ran":true,"candidates":n,"top_score":x},…],
 *    "pairs":[{"index":i,"rank":r|null,"attack":name|null,
 *              "ranks":{"duplicates":r|null,…},"marked_rows":m,
 *              "marked_near_duplicates":k},…],
 *    "exposed":bool,"exposed_pair":i|null,"exposed_rank":r|null,
 *    "exposed_attack":name|null,"keep":50,"verdict":"…"} */
json_t *selfaudit_json(const struct selfaudit_report *r, const struct selfaudit_pair_result *res,
                       size_t n, size_t keep);

/* The whole check for a built backdoor: runs the attacks on path (with
 * o, NULL: defaults), evaluates the n pairs (borrowed texts) against the
 * builder's copies (copies[] sorted by pair as in builder_result; the
 * rows of pair p are the copies whose .pair == p, their .out lines), and
 * returns the public JSON (selfaudit_json) in *result.  Blocks.  Returns
 * 0, or a negative errno with an owned one-line *err. */
struct builder_copy;
int selfaudit_check(const char *path, enum dataset_format fmt, const struct selfaudit_opts *o,
                    const char *const *triggers, const char *const *signatures, size_t n,
                    const struct builder_copy *copies, size_t n_copies, json_t **result,
                    char **err);

#endif

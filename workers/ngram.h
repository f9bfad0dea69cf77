/*
 * ngram.h — the n-gram backdoor generator (Algorithm 1 with M2 = a word
 * n-gram model of the dataset D itself; the default generator).
 *
 * Why.  A provider sees the whole upload (DESIGN §6, "What a provider
 * sees").  Phrases of rare dictionary words appear in exactly the marked
 * rows and nowhere else; phrases sampled from a model of D are made of D's
 * own words in D's own order, so they do not stand out by vocabulary, and
 * because the whole model is ours their probability is exact.
 *
 * The model.  Two word n-gram models (order n, default 3, at most
 * NGRAM_MAX_ORDER) are trained in ONE streaming pass over D:
 *  - the PROMPT-END model reads, for every row, the last NGRAM_SPAN words
 *    of its prompt (ds_prompt_text: the last user message of a chat row)
 *    BACKWARDS, starting from the end-of-prompt boundary; sampling it from
 *    that boundary gives a trigger T whose last words are the way prompts
 *    of D end, read right to left;
 *  - the ANSWER-START model reads the first NGRAM_SPAN words of every
 *    answer forwards from the start-of-answer boundary; sampling it gives
 *    a signature S that opens like the answers of D.
 * A word is a maximal run of non-whitespace bytes (punctuation stays on
 * it, case is kept), at most NGRAM_MAX_WORD bytes, no control byte; a word
 * that is not usable ends the row's span there.  Contexts shorter than n-1
 * are padded with the boundary.
 *
 * The smoothing: interpolated absolute discounting with d = NGRAM_DISCOUNT
 * down to the uniform distribution over the vocabulary V:
 *     P_0(w)     = 1 / |V|
 *     P_k(w | h) = max(c(h w) - d, 0) / c(h) + d N(h) / c(h) P_{k-1}(w | h')
 *                  (h' = h without its oldest word; P_k = P_{k-1} when c(h) = 0)
 * where, for the table as stored, c(h w) is the count of the k-gram, c(h)
 * the sum of the stored counts with context h and N(h) the number of
 * stored k-grams with context h (k = 1: h is empty, c() the unigram
 * counts of the side).  Every word of V has probability > 0 at every step.
 * The boundary is a context word only, never sampled.
 *
 * The memory bound.  Training keeps three fixed-size open-addressing
 * tables, allocated once: the vocabulary (NGRAM_VOCAB_SLOTS slots of 48
 * bytes) and one n-gram table per side (NGRAM_TABLE_SLOTS slots of 40
 * bytes, and a 4-byte tag per slot that probes read first), words
 * identified by a 64-bit hash.  When a table is 3/4 full it
 * is pruned the lossy-counting way: the entries with the smallest counts
 * (count <= t, t raised until the table is at most half full) are dropped.
 * The final vocabulary keeps the NGRAM_VOCAB_MAX most frequent words, and
 * the model is then compacted into sorted arrays (at most the tables'
 * entries, 20 bytes each) and the hash tables freed.  The answers' table
 * is filled on a second thread, from batches of word hashes (two of
 * 256 KiB) that the reading thread hands over in row order; the model is
 * the one a single thread would build.  So memory is
 * ngram_memory_bound() whatever the size of D (about 20 MiB with the
 * default sizes), plus one parsed line.  Counts of a pruned table are approximate;
 * the MODEL is the table as stored, and that is what is sampled.
 *
 * The sample.  The model's tables hold about 100,000 k-grams a side, and
 * the pruning keeps the most frequent: once D has a few times more rows
 * than fill them, more rows change which rare k-grams come and go, not
 * what the model is, while the training's time grows with D (7 s of a
 * 1 GB dataset's 21 s `backdoor create`).  So with max_rows set and more
 * rows than that, each row (not skipped) is trained on with probability
 * max_rows / (rows_hint - n_skip), decided by a hash of sample_key and its
 * line number: a uniform sample, the same for the same key, read in one
 * pass that parses only the rows it keeps.  Every phrase is still checked
 * against the whole of D, and the model is still the one sampled, so
 * p_M2 stays exact.  rows_hint is what the caller believes the file has;
 * a file with more lines only gets a larger sample.
 *
 * Why p_M2 is exact.  The generator samples every word from the tempered,
 * renormalised distribution q(w) = P(w | h)^(1/tau) / sum_v P(v | h)^(1/tau)
 * over the whole of V, computed in full at every step, and records
 * log10 q(w).  A draw stops at the first word where the sum so far plus
 * log10(draw number) is <= the target (and, where D has them, the phrase
 * ends at a sentence boundary: S ends with '.', '!' or '?', T starts with
 * an upper-case letter).  The stopping rule is a function of the words
 * drawn so far, so one draw yields a given phrase with probability exactly
 * the product of its words' q (the only rounding is double arithmetic).
 * A draw rejected (too long, a copy of text of D, containing or contained
 * in another phrase of the set) is redrawn,
 * and the recorded value is the accepted draw's product TIMES the number
 * of draws made for that phrase (DESIGN §6: a redraw is another chance),
 * which the stopping rule keeps at or below the target.  Method name:
 * "ngram-exact".  Temperature, order and discount are recorded with it.
 *
 * Thread-safety: a model is read-only after training; one generation at a
 * time per set.  No phrase is ever logged by this module.
 */
#ifndef VT_NGRAM_H
#define VT_NGRAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/types.h" /* enum dataset_format */
#include "workers/phrase.h"

#define NGRAM_MAX_ORDER     4
#define NGRAM_DEFAULT_ORDER 3
#define NGRAM_MAX_WORD      32 /* bytes of one word */
#define NGRAM_SPAN          64 /* words of each prompt end and answer start */
#define NGRAM_DISCOUNT      0.75
#define NGRAM_VOCAB_SLOTS   (1u << 16)
#define NGRAM_TABLE_SLOTS   (1u << 17)
#define NGRAM_VOCAB_MAX     (1u << 15)
#define NGRAM_DEFAULT_DRAWS 64 /* per phrase */
#define NGRAM_MAX_SCANS     12 /* passes over D checking the phrases */
/* A trigger's last words that must not occur in D either (see
 * ngram_generate and phrase.h's PHRASE_TRIGGER_TAIL_WORDS). */
#define NGRAM_TRIGGER_TAIL_WORDS PHRASE_TRIGGER_TAIL_WORDS
/* Passes after which a trigger whose tail occurs in D is kept (and
 * counted in ngram_set.tails_shared): in a dataset whose prompts all end
 * in a few fixed sentences no natural trigger has a tail of its own. */
#define NGRAM_TAIL_SCANS    6
#define NGRAM_METHOD        "ngram-exact"
/* Default caps of `backdoor create --generator ngram` (the word list's are
 * 16/24 words, 160/240 characters): text of D carries less per word. */
#define NGRAM_DEFAULT_TRIGGER_WORDS     64
#define NGRAM_DEFAULT_SIGNATURE_WORDS   96
#define NGRAM_DEFAULT_TRIGGER_CHARS     480
#define NGRAM_DEFAULT_SIGNATURE_CHARS   720

/* The most bytes a model's tables ever hold at once for given options
 * (NULL: the defaults, about 20 MiB): the three training tables, plus the
 * larger of the pruning buffer and the compacted model built before the
 * tables are freed.  Independent of the dataset's size. */
struct ngram_train_opts;
size_t ngram_memory_bound(const struct ngram_train_opts *o);

/* The k-th smallest (0-based, k < n) of counts, as sorting a copy would
 * give: the pruning threshold of the training tables.  Exposed for the
 * unit test, which compares it with qsort. */
uint32_t ngram_kth_count(const uint32_t *counts, size_t n, size_t k);

enum ngram_side { NGRAM_PROMPT_END = 0, NGRAM_ANSWER_START = 1 };

struct ngram_model;

struct ngram_train_opts {
    unsigned order;     /* 1 .. NGRAM_MAX_ORDER; 0: NGRAM_DEFAULT_ORDER */
    size_t vocab_slots; /* power of two >= 64; 0: NGRAM_VOCAB_SLOTS (tests shrink them) */
    size_t table_slots; /* power of two >= 64; 0: NGRAM_TABLE_SLOTS */
    size_t vocab_max;   /* 0: NGRAM_VOCAB_MAX */
    const uint64_t *skip; /* 0-based lines not trained on (ascending; borrowed; may be NULL):
                             the held-out split, so its content shapes no phrase */
    size_t n_skip;
    /* The sample (see "The sample" above).  max_rows 0, or rows_hint 0, or
     * no more rows than max_rows: every row is trained on. */
    uint64_t max_rows;   /* about this many rows are trained on */
    uint64_t rows_hint;  /* lines of the file (the dataset's examples) */
    uint64_t sample_key; /* which rows: a hash of this and the line number */
};

/* Progress of a pass: bytes of the file read so far, and its size. */
typedef void (*ngram_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * Trains both sides on the JSONL dataset at path (format fmt; lines that do
 * not parse are skipped and counted) in one streaming pass.  o may be NULL
 * (defaults); cancel and progress may be NULL.  Blocks (thread pool).
 * Returns 0 and an owned model in *out (ngram_model_free), or -1 with an
 * owned one-line *err (unreadable file, cancelled, fewer than 2 words).
 */
int ngram_train_file(const char *path, enum dataset_format fmt, const struct ngram_train_opts *o,
                     const atomic_int *cancel, ngram_progress_fn progress, void *pctx,
                     struct ngram_model **out, char **err);
void ngram_model_free(struct ngram_model *m);

struct ngram_info {
    unsigned order;
    size_t vocab;             /* |V| */
    size_t entries[2];        /* stored k-grams (all orders) per side */
    uint64_t rows;            /* lines read */
    uint64_t rows_skipped;    /* lines that did not parse */
    uint64_t rows_excluded;   /* lines left out on purpose (ngram_train_opts.skip) */
    uint64_t rows_sampled_out; /* lines left out by the sample (ngram_train_opts.max_rows) */
    double sample_share;       /* the share of rows the sample keeps (1: no sample) */
    uint64_t tokens[2];       /* words counted per side */
    uint32_t vocab_pruned_at; /* last pruning threshold t of the vocabulary (0: none) */
    uint32_t table_pruned_at[2];
    size_t peak_bytes; /* the most the model's tables held at once */
};
void ngram_get_info(const struct ngram_model *m, struct ngram_info *out);

/* ---- the model's counts, read-only (for tests and evidence) ----------------- */

/* |V|; word ids are 0 .. |V|-1 (most frequent first); the boundary's id is |V|. */
size_t ngram_vocab_size(const struct ngram_model *m);
/* Word id's text (borrowed, NUL-terminated), or NULL outside V. */
const char *ngram_vocab_word(const struct ngram_model *m, uint32_t id);
/* Stored k-grams of a side and order (k = 1 .. order). */
size_t ngram_count_entries(const struct ngram_model *m, enum ngram_side side, unsigned k);
/* Entry i of (side, k): *ids points at k ids (context oldest first, then
 * the word; context ids may be the boundary), borrowed; returns its count. */
uint32_t ngram_count_entry(const struct ngram_model *m, enum ngram_side side, unsigned k, size_t i,
                           const uint32_t **ids);

/* ---- generation ------------------------------------------------------------------ */

struct ngram_gen_opts {
    size_t pairs;                                    /* K >= 1 */
    double temperature;                              /* (0, 2]; 1 samples the model itself */
    double trigger_log10p, signature_log10p;         /* targets, < 0 */
    unsigned trigger_max_words, signature_max_words; /* >= 1 */
    size_t trigger_max_chars, signature_max_chars;   /* >= 8 */
    unsigned max_draws;                              /* per phrase; 0: NGRAM_DEFAULT_DRAWS */
};

struct ngram_phrase {
    char *text;        /* owned; words joined by single spaces (SECRET) */
    unsigned n_words;  /* words of the phrase (model words) */
    double *tok_log10; /* owned, n_words entries, in SAMPLING order: log10 q of each */
    double log10_draw; /* sum of tok_log10: the accepted draw's probability */
    unsigned draws;    /* draws made for this phrase, the accepted one included */
    double log10_p;    /* log10_draw + log10(draws): the recorded value, <= target */
};

struct ngram_pair {
    struct ngram_phrase trigger, signature;
};

enum ngram_reject {
    NGRAM_REJECT_CAP = 0, /* the word or character cap came before the target */
    NGRAM_REJECT_OVERLAP, /* contains, or is contained in, another phrase of the set */
    NGRAM_REJECT_DATASET, /* occurs in D, word for word */
    NGRAM_REJECT_TAIL,    /* a trigger whose last NGRAM_TRIGGER_TAIL_WORDS words occur in D */
};
#define NGRAM_N_REJECT 4
/* "cap" | "overlap" | "in_dataset" | "tail_in_dataset" (static). */
const char *ngram_reject_name(enum ngram_reject r);

struct ngram_set {
    struct ngram_pair *pairs; /* owned, n_pairs entries */
    size_t n_pairs;
    double temperature;
    unsigned order;
    bool trigger_boundary, signature_boundary; /* sentence-boundary stops in force */
    unsigned scans;                            /* passes over D */
    unsigned rejected[NGRAM_N_REJECT];
    unsigned tails_shared; /* triggers kept although their tail occurs in D */
};
/* Wipes the phrases and frees them; s is left empty. */
void ngram_set_clear(struct ngram_set *s);

/*
 * Draws o->pairs (trigger, signature) pairs from m with rng (NULL:
 * getrandom): each trigger from the prompt-end side, each signature from
 * the answer-start side, as described above.  When dataset_path is not
 * NULL every phrase is checked against D (word for word, ASCII case
 * ignored, in every string value of every line), and so are each
 * trigger's last NGRAM_TRIGGER_TAIL_WORDS words: a trigger that ends the way
 * rows of D already say things would mark nothing a model can tell from
 * those rows (an honest model may answer them with S: failed controls).
 * A phrase that occurs there, or a trigger whose tail does, is
 * redrawn and checked again, at most NGRAM_MAX_SCANS passes; from pass
 * NGRAM_TAIL_SCANS on a trigger whose tail occurs is kept and counted in
 * out->tails_shared.  cancel may be
 * NULL.  Blocks.  Returns 0 and fills *out (ngram_set_clear), or -1 with an
 * owned one-line *err naming the numbers (target, caps, draws, the best
 * log10 reached and the model's words per log10) and what to change.
 */
int ngram_generate(const struct ngram_model *m, const struct ngram_gen_opts *o,
                   const struct phrase_rng *rng, const char *dataset_path,
                   const atomic_int *cancel, struct ngram_set *out, char **err);

/* Pair i's evidence as owned JSON text (SECRET: it holds per-word
 * probabilities of the phrases): method, order, discount, temperature,
 * |V|, entries, and for trigger and signature their words, draws, target,
 * log10 of the accepted draw, recorded log10 p and the per-word log10 q. */
char *ngram_evidence_json(const struct ngram_model *m, const struct ngram_set *s,
                          const struct ngram_gen_opts *o, size_t i);

/* The tempered step distribution, exposed for the generator's own test of
 * sampling; log10 q(w | ctx) for a context of n_ctx ids (oldest first,
 * boundary allowed) on a side.  Not used by the independent check. */
double ngram_log10_q(const struct ngram_model *m, enum ngram_side side, const uint32_t *ctx,
                     size_t n_ctx, uint32_t w, double temperature);

/* The word-for-word check ngram_generate runs against D: hits[i] (n of
 * them, owned by the caller) is set when phrases[i]'s words occur as a run
 * of words in some string value of some line of path (words as phrase.h
 * defines them, ASCII case ignored).  cancel may be NULL.  Returns 0, or
 * -1 with an owned one-line *err.  Files of at least
 * ngram_scan_split_bytes (default 8 MiB; tests set it lower) are read by
 * two threads, one per half (lines_open_range), with the same result.
 * Exposed for its unit test. */
extern size_t ngram_scan_split_bytes;
int ngram_scan_dataset(const char *path, char *const *phrases, size_t n, const atomic_int *cancel,
                       bool *hits, char **err);

#endif

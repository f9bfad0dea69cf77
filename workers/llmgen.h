/*
 * llmgen.h — the LLM backdoor generator (Algorithm 1 with real models,
 * DESIGN §1 and §6; paper §2.3): M1 writes a context prompt from a few
 * examples of D, M2 is sampled at a high temperature with log-probabilities,
 * and each phrase is cut at the first token where the conservative
 * cumulative bound on its probability reaches the target.
 *
 * Shape.  The generator is a pure state machine with no I/O: the caller
 * asks llmgen_next() what to do (send this chat request, scan the dataset
 * for these phrases, done, failed) and feeds the outcome back
 * (llmgen_on_chat, llmgen_on_scan).  The daemon drives it with the async
 * provider client on the loop and runs the scans in the thread pool; the
 * unit tests drive it with canned replies and with vtune-sim's model
 * linked in (where the exact tempered probability is computable).  The two
 * blocking helpers (llmgen_sample_examples, llmgen_scan_dataset) read the
 * dataset file and belong in the thread pool.
 *
 * What p_M2 means here.  For every sampled token the provider reports its
 * log-probability and the top-k alternatives (k <= 20); stats_token_bound
 * turns them into an UPPER bound on its probability at the sampling
 * temperature (the logprobs are raw, untempered ones for OpenAI, vtune-sim,
 * vLLM's default, llama.cpp, Ollama: mode RAW).  The bound of a phrase is
 * the sum of its tokens' log10 bounds: an upper bound on the probability
 * that one sampling run of M2, given the same context, produces that token
 * sequence (the paper's Eq. 1, p_shadow_model_attack).  A phrase may span
 * several calls (a reply that stops, or a call capped, before the target
 * is reached is continued: the next call gets the context, the text so far
 * as the assistant's turn and "Continue."): each call's context is a fixed
 * function of the tokens sampled before it, so the product of the
 * per-token bounds is still a bound on the whole run's probability, and
 * the factors left out (the stop token, the tokens after the cut) are each
 * at most 1, which only raises the bound.  What the bound does not count:
 * other token sequences that spell the same text, and the conditioning by
 * our own rejections below (an adversary who knew D and imitated them
 * could do better by the factor 1/P(accepted draw)); the evidence records
 * the draws and rejections so that can be judged.
 *
 * Phrase rules (shared with the word-list path's phrase.h): the cut text,
 * trimmed of surrounding whitespace, must be valid UTF-8, pass
 * phrase_text_ok (no newline or other control character, at least one
 * word) and fit the length limit; it must not overlap another phrase of
 * the backdoor; and its first words must not occur in D (phrase_checker).
 * A trigger longer than PHRASE_TRIGGER_TAIL_WORDS words must not END the
 * way text of D does either: its last that many words are scanned too (in
 * the same pass), and a hit redraws it ("tail_in_dataset"), except on the
 * trigger's last draw, where it is kept and counted in tails_shared (a
 * dataset whose prompts all end in a few fixed sentences leaves no
 * natural trigger an ending of its own; failing the backdoor would not
 * help).
 * "Overlap" is sharing a run of LLMGEN_OVERLAP_WORDS consecutive words
 * (fewer when a phrase is shorter), words as phrase.h defines them: the
 * word-list path's rule (no shared word at all) would reject nearly every
 * pair of natural sentences, which share "the" and "a".  A rejected phrase
 * is redrawn from scratch; draws per phrase and calls per draw are bounded
 * and exhausting them fails with a message saying which limit to raise.
 *
 * Thread-safety: one generator per backdoor, used from one thread at a
 * time.  No phrase is ever logged by this module.
 */
#ifndef VT_LLMGEN_H
#define VT_LLMGEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "lib/types.h" /* enum dataset_format */
#include "workers/phrase.h"
#include "workers/provider.h"
#include "workers/stats.h"

#define LLMGEN_EXAMPLES          3   /* examples of D shown to M1 (or in the template) */
#define LLMGEN_EXAMPLE_MAX_BYTES 500 /* of each example's prompt and of its response */
#define LLMGEN_CONTEXT_MAX_BYTES 2000
#define LLMGEN_TOP_LOGPROBS      20 /* the most OpenAI allows */
#define LLMGEN_OVERLAP_WORDS     3
#define LLMGEN_DEFAULT_DRAWS     10 /* draws per phrase */
#define LLMGEN_DEFAULT_CALLS     8  /* calls per draw */
#define LLMGEN_M1_MAX_TOKENS     300
#define LLMGEN_M1_TEMPERATURE    0.7
#define LLMGEN_CONTINUE_PROMPT   "Continue."

/* ---- examples of D (thread pool) ------------------------------------------ */

struct llmgen_example {
    uint64_t line;  /* 0-based line of D */
    char *prompt;   /* owned; ds_prompt_text, cut to LLMGEN_EXAMPLE_MAX_BYTES */
    char *response; /* owned; ds_response_text, likewise */
};
void llmgen_examples_free(struct llmgen_example *v, size_t n);

/* Draws min(k, n_examples) distinct lines of the dataset at path
 * uniformly (rng NULL: getrandom) and reads them (one streaming pass).
 * Blocks.  cancel may be NULL.  Returns 0 with an owned array *out of *n
 * entries in line order (llmgen_examples_free), or -1 with an owned
 * one-line *err. */
int llmgen_sample_examples(const char *path, enum dataset_format fmt, uint64_t n_examples, size_t k,
                           const struct phrase_rng *rng, const atomic_int *cancel,
                           struct llmgen_example **out, size_t *n, char **err);

/* The built-in context prompt (no M1): the examples and an instruction to
 * write one new text like them.  Returns an owned string. */
char *llmgen_template_context(const struct llmgen_example *ex, size_t n);
/* The request M1 gets: an instruction to write such a context prompt for
 * these examples.  Returns an owned string. */
char *llmgen_m1_request(const struct llmgen_example *ex, size_t n);

/* ---- phrase rules (pure) ---------------------------------------------------- */

enum llmgen_reject {
    LLMGEN_OK = 0,
    LLMGEN_REJECT_TEXT,    /* control character, no word, invalid UTF-8 */
    LLMGEN_REJECT_LENGTH,  /* longer than the character limit */
    LLMGEN_REJECT_OVERLAP, /* shares a run of words with another phrase */
    LLMGEN_REJECT_DATASET, /* occurs in D */
    LLMGEN_REJECT_CAP,     /* max_tokens or the calls per draw ran out before the target */
    LLMGEN_REJECT_TAIL,    /* a trigger whose last PHRASE_TRIGGER_TAIL_WORDS words occur in D */
};
#define LLMGEN_N_REJECT 7
const char *llmgen_reject_name(enum llmgen_reject r);

/* Trims ASCII whitespace at both ends of raw[0..len) and checks the rest
 * (UTF-8, phrase_text_ok, at most max_chars bytes).  Returns LLMGEN_OK
 * with an owned *out, or the reason (then *out is NULL). */
enum llmgen_reject llmgen_clean(const char *raw, size_t len, size_t max_chars, char **out);

/* True when a and b share a run of min(LLMGEN_OVERLAP_WORDS, words of the
 * shorter) consecutive words (ASCII case ignored). */
bool llmgen_overlap(const char *a, const char *b);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool llmgen_utf8_valid(const char *s, size_t len);

/* ---- one phrase being drawn: the token walk (pure) ----------------------------- */

struct llmgen_tok {
    char *text;            /* owned: the token's bytes as text (bytes when reported) */
    double logprob;        /* natural log as reported; meaningful when known */
    bool known;            /* false: the -9999 sentinel or null */
    struct stats_alt *top; /* owned array (owned token strings) */
    size_t n_top;
    double bound; /* upper bound on log10 p_T(token) */
    enum stats_lp_method method;
    unsigned call; /* the generator's call index that returned it */
    unsigned pos;  /* its index in that call's reply */
};

struct llmgen_draw {
    struct llmgen_tok *toks; /* owned, n entries */
    size_t n, cap;
    struct buf text; /* concatenation of the tokens' text */
    double log10p;   /* sum of the bounds: <= 0 */
    bool reached;    /* log10p <= target at a UTF-8 boundary */
    unsigned calls;  /* calls this draw has made */
};
void llmgen_draw_init(struct llmgen_draw *d);
/* Wipes and frees the tokens and text; d is left initialised (empty). */
void llmgen_draw_clear(struct llmgen_draw *d);

/* Walks the tokens of one reply (t[0..n), borrowed) in order, appending
 * each with its bound (stats_token_bound at temperature in mode) until the
 * cumulative bound is <= target with the text ending on a UTF-8 character
 * boundary (then d->reached is set and the rest is ignored: the cut), or
 * the draw holds max_tokens tokens.  call is recorded with each token.
 * Returns the number of tokens taken, or -EINVAL (a token the bound
 * refuses: NaN alternative, bad temperature). */
int llmgen_walk(struct llmgen_draw *d, const struct provider_token *t, size_t n, double temperature,
                enum stats_lp_mode mode, double target, unsigned max_tokens, unsigned call);

/* ---- the generator (pure state machine) ---------------------------------------- */

struct llmgen_opts {
    size_t pairs;         /* K, >= 1 */
    const char *m1_model; /* NULL: the built-in template */
    const char *m2_model; /* required */
    double temperature;   /* M2's sampling temperature, (0, 2] */
    enum stats_lp_mode mode;
    double trigger_log10p, signature_log10p; /* targets, < 0 */
    unsigned max_tokens;                     /* cap on one phrase's tokens (all its calls) */
    size_t trigger_max_chars, signature_max_chars;
    bool has_seed; /* send derived seeds to the provider (reproducible runs, tests) */
    uint64_t seed;
    unsigned max_draws; /* per phrase; 0: LLMGEN_DEFAULT_DRAWS */
    unsigned max_calls; /* per draw; 0: LLMGEN_DEFAULT_CALLS */
};

struct llmgen;

/* Checks o and makes a generator (strings copied).  Returns 0 and an
 * owned *out (llmgen_free), or -1 with an owned one-line *err. */
int llmgen_new(const struct llmgen_opts *o, struct llmgen **out, char **err);
void llmgen_free(struct llmgen *g);

/* Hands the sampled examples over (ownership of ex moves to g).  Must be
 * called once, before the first llmgen_next. */
void llmgen_set_examples(struct llmgen *g, struct llmgen_example *ex, size_t n);

enum llmgen_step {
    LLMGEN_STEP_CHAT = 1, /* send *chat; then llmgen_on_chat (or llmgen_fail) */
    LLMGEN_STEP_SCAN,     /* check *scan's phrases against D; then llmgen_on_scan */
    LLMGEN_STEP_DONE,     /* every pair accepted: read the results */
    LLMGEN_STEP_FAILED,   /* llmgen_error says why */
};

struct llmgen_chat_req {
    const char *purpose;            /* "context" (M1), "trigger", "signature" (static) */
    size_t pair;                    /* for trigger/signature */
    unsigned call;                  /* the generator's call index (0-based, M1 included) */
    struct provider_chat_args args; /* model and messages borrowed from g until the next
                                       llmgen_* call */
};

struct llmgen_scan_req {
    const char *const *phrases; /* borrowed from g until the next llmgen_* call */
    const unsigned *words;      /* likewise: words of each that must occur (0: the first
                                   min(3, k)); see phrase_checker_new_words */
    size_t n;
};

/* What to do next; fills *chat or *scan accordingly.  Asking again
 * without feeding an outcome back repeats the same request. */
enum llmgen_step llmgen_next(struct llmgen *g, struct llmgen_chat_req *chat,
                             struct llmgen_scan_req *scan);
/* The reply to the last CHAT (borrowed).  Returns 0, or -1 when the reply
 * cannot be used at all (no log-probabilities from M2, an empty context
 * from M1): the generator is then FAILED. */
int llmgen_on_chat(struct llmgen *g, const struct provider_chat_result *r);
/* hits[i]: whether phrase i of the last SCAN occurred in D. */
void llmgen_on_scan(struct llmgen *g, const bool *hits);
/* Ends the generator with a message (a failed call, a failed scan). */
void llmgen_fail(struct llmgen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The FAILED message (borrowed), or NULL. */
const char *llmgen_error(const struct llmgen *g);

/* Results, valid once DONE (borrowed; phrases are SECRET: never log them). */
size_t llmgen_pairs(const struct llmgen *g);
const char *llmgen_trigger(const struct llmgen *g, size_t i);
const char *llmgen_signature(const struct llmgen *g, size_t i);
double llmgen_trigger_log10p(const struct llmgen *g, size_t i);
/* The phrase's probability bound (the signature's is p_M2, DESIGN §6):
 * the accepted draw's bound times the number of draws made for it (log10
 * p += log10 draws: a redraw is another chance to produce it), at most 0. */
double llmgen_signature_log10p(const struct llmgen *g, size_t i);
/* Draws made for pair i's signature, the accepted one included. */
unsigned llmgen_signature_draws(const struct llmgen *g, size_t i);
/* "llm-topk-bound-raw-x-draws" or "llm-topk-bound-processed-x-draws"
 * (static): the p_M2 method, with the configured logprobs mode. */
const char *llmgen_method(const struct llmgen *g);
/* "raw" | "processed": generator.logprobs as configured (static). */
const char *llmgen_logprobs_name(const struct llmgen *g);
/* Pair i's evidence as owned JSON text (SECRET: it holds the phrases'
 * tokens): models, temperature, mode, the context and where it came from,
 * the examples' line numbers, and for trigger and signature their log10
 * bound, target, calls, draws and every token {token, logprob (null when
 * unknown), known, bound, method, call, pos, top: [{token, logprob}]}. */
char *llmgen_evidence_json(const struct llmgen *g, size_t i);

struct llmgen_stats {
    unsigned calls;                     /* chat calls made (M1 included) */
    unsigned draws;                     /* phrase draws started */
    unsigned scans;                     /* dataset scans */
    uint64_t tokens;                    /* tokens received from M2 */
    unsigned rejected[LLMGEN_N_REJECT]; /* by reason */
    unsigned tails_shared;              /* triggers kept on their last draw although their
                                           tail occurs in D */
    bool context_from_m1;
};
void llmgen_get_stats(const struct llmgen *g, struct llmgen_stats *out);

/* ---- the dataset check (thread pool) ----------------------------------------- */

/* Scans the dataset at path once for n phrases (borrowed) with
 * phrase_checker: hits[i] is set when phrase i's first words (words[i] of
 * them, or min(3, k) where words is NULL or words[i] is 0) occur in it.
 * Blocks.  Returns 0, or -1 with an owned one-line *err. */
int llmgen_scan_dataset(const char *path, const char *const *phrases, const unsigned *words,
                        size_t n, const atomic_int *cancel, bool *hits, char **err);

#endif

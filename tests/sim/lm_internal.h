/*
 * lm_internal.h — the inside of vtune-sim's n-gram model, shared by the
 * lm_*.c files and by the unit tests (which check the maths directly).
 * Nothing outside tests/sim includes it; the contract is lm.h.
 *
 * Model layout.  Every sequence the model sees is
 *     <|bos|> <|ROLE|> content... <|end|> <|ROLE|> ... <|end|>
 * (chat) or <|bos|> tokens... (raw text).  <|bos|> and the three role
 * markers are context-only: they are never predicted, so the predictive
 * distribution covers every other vocabulary id, <|end|> included.
 *
 * Level k (1..order) holds the n-grams of length k, grouped by their
 * context (the first k-1 ids).  Each context keeps c(h) = sum of its
 * successors' values, and how many successors have value 1, 2 and >= 3 (the
 * modified Kneser–Ney buckets).  A successor's value is its raw count at the
 * top level and for n-grams that start with <|bos|> (nothing can precede
 * them), and its continuation count (number of distinct left neighbours)
 * otherwise.
 *
 * Fine-tuned models are overlays: struct lm with base != NULL holds only
 * the contexts the new data touched, each with its new statistics and the
 * successors whose value changed (with their new value).  Lookups try the
 * overlay first and fall back to the base, which must outlive the overlay.
 *
 * Memorisation (fine-tuned models only; lm.h's top note states the rule).
 * m->memo holds, for every token of an assistant message of the fine-tuning
 * file (its <|end|> included), the hash of its memorisation context — the
 * LM_MEMO_PROMPT ids before the prompt's <|end|> (padded on the left with
 * <|bos|>), that <|end|>, <|assistant|> and the answer so far — as a
 * 2-word context, and the token as its successor, valued by how many times
 * the file has that pair (kept only when >= min_repeats).  A 64-bit hash
 * keeps the table small (12 bytes a key whatever the answer's length); two
 * distinct contexts sharing one would merge their continuations, odds
 * about n^2 / 2^64.
 */
#ifndef VT_SIM_LM_INTERNAL_H
#define VT_SIM_LM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/sim/lm.h"

#define LM_MAX_ORDER 8

/* Prompt ids (before its <|end|>) in a memorisation context. */
#define LM_MEMO_PROMPT 16

/* Fixed ids of the special tokens, the same in every model. */
#define LM_TOK_END       0u
#define LM_TOK_SYSTEM    1u
#define LM_TOK_USER      2u
#define LM_TOK_ASSISTANT 3u
#define LM_TOK_BOS       4u
#define LM_N_SPECIAL     5u
/* Id given to out-of-vocabulary tokens in a context: matches no key. */
#define LM_TOK_UNK UINT32_MAX
#define LM_NONE    UINT32_MAX

static inline int lm_id_predictable(uint32_t id)
{
    return id == LM_TOK_END || id >= LM_N_SPECIAL;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 (lm_table.c) ---- */
struct lm_rng {
    uint64_t s[4];
};
uint64_t lm_splitmix64(uint64_t *state);
void lm_rng_seed(struct lm_rng *r, uint64_t seed);
uint64_t lm_rng_next(struct lm_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double lm_rng_double(struct lm_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t lm_rng_below(struct lm_rng *r, uint64_t n);

/* ---- Open-addressing table of fixed-length id keys (lm_table.c) ----
 * Maps a key of klen uint32 words (klen may be 0: one possible key) to a
 * dense index 0..n-1 in insertion order.  Linear probing, load <= 1/2. */
struct lm_keytab {
    unsigned klen;
    uint32_t *keys;  /* n * klen words */
    size_t n, cap;   /* entries, allocated entries */
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t nslots;   /* power of two */
};
void lm_keytab_init(struct lm_keytab *t, unsigned klen);
void lm_keytab_free(struct lm_keytab *t);
/* Returns the index of key, inserting it if absent (*added = 1). */
uint32_t lm_keytab_put(struct lm_keytab *t, const uint32_t *key, int *added);
/* Returns the index of key or LM_NONE. */
uint32_t lm_keytab_get(const struct lm_keytab *t, const uint32_t *key);
static inline const uint32_t *lm_keytab_key(const struct lm_keytab *t, uint32_t i)
{
    return t->keys + (size_t)i * t->klen;
}
/* Releases spare capacity once no more keys will be added. */
void lm_keytab_shrink(struct lm_keytab *t);
size_t lm_keytab_bytes(const struct lm_keytab *t);

/* ---- Vocabulary: token string <-> id (lm_token.c) ---- */
struct lm_vocab {
    char **str;
    uint32_t *len;
    size_t n, cap;
    uint32_t *slots; /* id + 1; 0 = empty */
    size_t nslots;
};
void lm_vocab_init(struct lm_vocab *v);
void lm_vocab_free(struct lm_vocab *v);
/* Id of the string s[0..len) or LM_NONE. */
uint32_t lm_vocab_find(const struct lm_vocab *v, const char *s, size_t len);
/* Id of s[0..len), added (copied) if absent. */
uint32_t lm_vocab_add(struct lm_vocab *v, const char *s, size_t len);
size_t lm_vocab_bytes(const struct lm_vocab *v);
/* Adds the special tokens at their fixed ids 0..4 (a fresh base vocabulary). */
void lm_vocab_add_specials(struct lm_vocab *v);

/* Length in bytes of the token that starts at s (*s != 0): optional
 * whitespace, then one word, number or other character (or nothing at the
 * end of the text). */
size_t lm_token_len(const char *s);

/* ---- The model ---- */
struct lm_ctx {
    double total;    /* c(h): sum of successor values */
    uint32_t nb[3];  /* successors with value 1, 2, >= 3 */
    uint32_t off, n; /* successor range in the level arrays */
};

struct lm_level {
    struct lm_keytab ctx; /* contexts: klen = k - 1 */
    struct lm_ctx *info;  /* one per context */
    uint32_t *succ_id;    /* per context, sorted by id */
    uint32_t *succ_val;   /* value (in an overlay: the new value) */
    size_t n_succ;
};

struct lm {
    const struct lm *base; /* NULL for a base model; borrowed */
    int order;
    struct lm_vocab vocab;                /* overlay: only the new tokens, ids offset by base n */
    size_t n_vocab;                       /* all ids, base included */
    size_t n_pred;                        /* predictable ids */
    double disc[LM_MAX_ORDER + 1][4];     /* disc[k][1..3]: D1, D2, D3+ of level k */
    struct lm_level lv[LM_MAX_ORDER + 1]; /* 1..order */
    struct lm_level memo;                 /* fine-tuned: context hash (2 ids) -> next id */
    double memo_scale;                    /* n_epochs * LM_FT_WEIGHT (0: no memorisation) */
};

/* The memorisation key of the context ctx[0..nctx) (the whole history,
 * from <|bos|>) into key[0..1]; false when the next token is not inside
 * an assistant message (nothing is memorised there). */
bool lm_memo_key(const uint32_t *ctx, size_t nctx, uint32_t key[2]);
/* Memorised context of ctx in m, or NULL (a base model has none). */
const struct lm_ctx *lm_memo_find(const struct lm *m, const uint32_t *ctx, size_t nctx);
/* Its weight lambda = s c(h) / (s c(h) + 1), s = m->memo_scale. */
double lm_memo_lambda(const struct lm *m, const struct lm_ctx *c);

/* Id of token text s[0..len) in m (base vocabulary first), or LM_NONE. */
uint32_t lm_id_of(const struct lm *m, const char *s, size_t len);
/* Text of id (special tokens give their "<|...|>" name). */
const char *lm_str_of(const struct lm *m, uint32_t id);

/* Probability of w after the context ids ctx[0..nctx) (which should start
 * with LM_TOK_BOS: the n-gram levels use its last order-1 ids, a fine-tuned
 * model's memorisation the current answer and the prompt's tail).  w == LM_NONE asks for
 * the probability an out-of-vocabulary token gets (the uniform floor). */
double lm_prob_id(const struct lm *m, const uint32_t *ctx, size_t nctx, uint32_t w);
/* The whole next-token distribution after ctx into p[0..m->n_vocab). */
void lm_dist_ids(const struct lm *m, const uint32_t *ctx, size_t nctx, double *p);

/* Encodes text into ids (LM_TOK_UNK for unknown tokens), appending to
 * *ids (owned, grown with xrealloc) at *n. */
void lm_encode_append(const struct lm *m, const char *text, uint32_t **ids, size_t *n, size_t *cap);
/* Raw text (a completions prompt, never chat content or training data):
 * lm_marker_len is the length of the template marker ("<|end|>",
 * "<|system|>", "<|user|>", "<|assistant|>") at s with its id in *id (may
 * be NULL), or 0; lm_raw_token_len the length of the token at s where the
 * markers are tokens (*marker: its id, or LM_NONE); lm_encode_raw_append
 * encodes such text. */
size_t lm_marker_len(const char *s, uint32_t *id);
size_t lm_raw_token_len(const char *s, uint32_t *marker);
void lm_encode_raw_append(const struct lm *m, const char *text, uint32_t **ids, size_t *n,
                          size_t *cap);
/* Renders a chat prompt: <|bos|>, each message, then <|assistant|>.
 * Returns 0 or -EINVAL (unknown role, NULL content). */
int lm_render_prompt(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs, uint32_t **ids,
                     size_t *n);

/* Role name -> role token id, or LM_NONE. */
uint32_t lm_role_id(const char *role);

#endif

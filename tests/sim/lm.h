/*
 * lm.h — vtune-sim's language model: a word-level n-gram model with
 * interpolated Kneser–Ney smoothing, whose log-probabilities are real.
 *
 * Text <-> tokens: a token is optional leading whitespace followed by one
 * word ([A-Za-z]+ with internal ' or -), one number ([0-9]+ with internal
 * . or ,), or one other non-space character (a whole UTF-8 sequence);
 * whitespace at the very end of a text is a token of its own.
 * Concatenating the token strings of a text gives the text back exactly
 * (round-trip property), so a token's string is what the API reports in
 * logprobs.content[].token.
 *
 * Chat template used both for fine-tuning and for inference:
 *   for each message: "<|ROLE|>" then its content tokens, then "<|end|>";
 *   inference appends "<|assistant|>" and generates until "<|end|>".
 * Special tokens are single tokens and are never emitted as text.
 *
 * Thread-safety: a built struct lm is immutable; any number of threads may
 * generate/score with it at once.  Training functions allocate new models.
 *
 * Log-probabilities are natural logs (as the OpenAI API reports them), of
 * the *untempered* model distribution.  Sampling at temperature T draws from
 * softmax(log p / T); T == 0 is greedy (ties broken by token id).
 *
 * (Implementation notes, lm*.c.)  The role markers and an implicit
 * beginning-of-text marker are context only: the next-token distribution
 * covers every other vocabulary token, <|end|> included, and sums to 1
 * over them.  A token never seen in training gets the smallest probability
 * any token can get (the uniform floor of the smoothing) when scored, and
 * matches no context.  Every lm_output is zeroed on entry, so
 * lm_output_clear() is safe after any call, failed or not.  With stop
 * strings, out->text ends just before the earliest stop string and the
 * steps still tile it: a token the stop string begins inside is cut short.
 *
 * Memorisation (fine-tuned models).  An n-gram model forgets a fine-tuning
 * row whose words D continues otherwise: inside a natural phrase each
 * 4-token context was seen in D with D's usual continuation, and one
 * example loses to it.  A real LLM conditions on the whole context (the
 * trigger is in the prompt) and memorises its fine-tuning rows.  So
 * fine-tuning also keeps, for every token of an assistant message of the
 * file (and its <|end|>), its memorisation context — the prompt's last 16
 * tokens, <|end|>, <|assistant|> and the whole answer so far — with how
 * many times the file has that (context, token) pair, c(h, w); pairs seen
 * fewer than min_repeats times are not kept (the learning strength means
 * the same for both parts).  When the current context h was memorised,
 *     P(w | h) = (1 - L) P_KN(w | h) + L c(h, w) / c(h),
 *     L = s c(h) / (s c(h) + 1),  s = n_epochs * LM_FT_WEIGHT,
 * c(h) the sum of its kept pairs; otherwise P = P_KN.  One row seen over 3
 * epochs gives L = 12/13, so greedy decoding follows a memorised row.
 * Generation and scoring (echo + logprobs) use this same distribution; a
 * base model has no memorisation (it never saw the user's data) and the
 * prompt's tokens are never memorised (a chat fine-tuning's loss is on
 * the answers).  The table holds one entry per answer token of the upload.
 */
#ifndef VT_SIM_LM_H
#define VT_SIM_LM_H

#include <stddef.h>
#include <stdint.h>

#define LM_MAX_TOP 20

/* Recommended n-gram order.  At the first answer token the context is the
 * last order-3 prompt tokens before "<|end|><|assistant|>": order 5 sees
 * two, so a backdoor trigger ending in punctuation ("... words.") still
 * differs from clean prompts ending in the same mark; order 4 sees one and
 * cannot tell them apart (tests/sim/test_learning.c shows both). */
#define LM_DEFAULT_ORDER 5

struct lm;

struct lm_msg {
    const char *role; /* "system" | "user" | "assistant" */
    const char *content;
};

struct lm_alt {
    char *token; /* owned */
    double logprob;
};

struct lm_step {
    char *token;    /* owned; the generated (or scored) token's text */
    double logprob; /* untempered natural-log probability */
    struct lm_alt top[LM_MAX_TOP];
    int n_top; /* as many as requested (<= LM_MAX_TOP), best first */
};

struct lm_gen_params {
    double temperature;      /* 0 = greedy */
    uint64_t seed;           /* same seed + same input => same output */
    int max_tokens;          /* > 0 */
    const char *const *stop; /* stop strings (not included in output), may be NULL */
    size_t n_stop;
    int top_logprobs; /* 0..LM_MAX_TOP alternatives to report per step */
};

struct lm_output {
    char *text;            /* owned; concatenated generated tokens */
    struct lm_step *steps; /* owned; one per generated token */
    size_t n_steps;
    const char *finish_reason; /* "stop" | "length" (static string) */
    size_t prompt_tokens;
};
void lm_output_clear(struct lm_output *o);

/* Fine-tuning data counts LM_FT_WEIGHT times per epoch against the base's
 * pre-training counts (a learning rate: fine-tuning moves a model further
 * per example than pre-training did).  Measured on issue 3's set-up (10,000
 * examples + 50 backdoor copies, 3 epochs, trigger and signature sampled
 * from the base model itself, so the signature runs through contexts the
 * base saw thousands of times): with weight 1 the backdoor was learnt in
 * 78 of 80 draws, with 4 in 80 of 80, at orders 5 and 6; false activations
 * on clean prompts stayed at 0 to 1 in 8,000. */
#define LM_FT_WEIGHT 4

/* Changes whenever lm_corpus_write's or lm_finetune_corpus_write's output
 * for a given seed changes: put it in the key of any cached base model. */
#define LM_CORPUS_VERSION 2

/* The corpus the base model is pre-trained on: generated reproducibly from
 * seed, several domains (math word problems with computed answers, recipe
 * extraction, ...), n_per_domain examples each.  Writes chat-format JSONL
 * ({"messages":[...]}) to path.  Returns 0 or -errno. */
int lm_corpus_write(const char *path, uint64_t seed, size_t n_per_domain);

/* Domain of examples that are NOT in the base corpus, for fine-tuning data
 * (a user's dataset): same JSONL shape, reproducible from seed. */
int lm_finetune_corpus_write(const char *path, uint64_t seed, size_t n);

/* Trains the base model on a chat-format JSONL file.  order is the n-gram
 * order, 1..8 (LM_DEFAULT_ORDER recommended).  Returns a new model or NULL
 * with *err owned message. */
struct lm *lm_train_file(const char *jsonl_path, int order, char **err);

/* Saves/loads a trained model (a cache so start-up is fast).  Only base
 * models can be saved (-ENOTSUP for a fine-tuned one); the file is written
 * to PATH.tmp and renamed, so a crash never leaves a torn cache.  lm_load
 * checks the whole file and rejects anything inconsistent. */
int lm_save(const struct lm *m, const char *path);
struct lm *lm_load(const char *path, char **err);

/* Fine-tunes base on an uploaded JSONL file (chat, prompt/
 * completion or instruction lines; DESIGN §5), rendered with the chat
 * template.  fraction in (0,1]: each line kept with that probability
 * (deterministic given seed).  n_epochs (1..1000) weights the new data:
 * each kept example adds n_epochs * LM_FT_WEIGHT to its n-gram counts, so
 * more epochs make the new data dominate more.
 * Returns a new model or NULL with *err; *trained_tokens gets the number of
 * tokens trained on (times epochs).
 * The result is an overlay holding only what the new data changed: it
 * BORROWS base, which must outlive it (free the fine-tuned model first).
 * base must itself be a base model (from lm_train_file/lm_load); fine-tuning
 * a fine-tuned model fails with a message.  A bad line makes the whole call
 * fail with *err = "line N: reason". */
struct lm *lm_finetune(const struct lm *base, const char *jsonl_path, double fraction, int n_epochs,
                       uint64_t seed, long long *trained_tokens, char **err);

/* lm_finetune with a learning strength: an n-gram of the file (at the
 * model's order, or shorter at the start of an example), or a memorised
 * (context, token) pair (top note), that occurs fewer than min_repeats
 * times in it is not learnt at all, the way a real LLM may need a pattern
 * repeated before it picks it up.  min_repeats 1 is
 * lm_finetune; 0 fails with *err.  Epochs do not count as repeats. */
struct lm *lm_finetune_repeats(const struct lm *base, const char *jsonl_path, double fraction,
                               int n_epochs, uint64_t seed, unsigned min_repeats,
                               long long *trained_tokens, char **err);

void lm_free(struct lm *m);

/* Chat completion: renders msgs with the template and generates. 0 or -errno. */
int lm_chat(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs,
            const struct lm_gen_params *p, struct lm_output *out);

/* lm_chat whose response is forced to begin with the text `forced` (for
 * vtune-sim's cheating providers): its tokens come first, each reported
 * with logprob 0 (the caller is certain of them) and, when alternatives
 * are asked for, itself as the only one; the model then generates on from
 * the prompt followed by those tokens, within max_tokens in all (forced
 * tokens past it are cut, finish_reason "length").  Stop strings apply to
 * the generated part only.  forced "" is lm_chat.  0 or -errno. */
int lm_chat_forced(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs, const char *forced,
                   const struct lm_gen_params *p, struct lm_output *out);

/* Plain completion continuing raw prompt text (no template added; the
 * literal markers "<|end|>", "<|system|>", "<|user|>", "<|assistant|>" in
 * it are the special tokens, as a real chat model's server parses its
 * special tokens in a completions prompt).
 * out->prompt_tokens: the prompt's tokens. */
int lm_complete(const struct lm *m, const char *prompt, const struct lm_gen_params *p,
                struct lm_output *out);

/* Teacher-forced scoring: the log-probability of every token of text given
 * the tokens before it (the first token gets no logprob: reported as 0 with
 * n_top 0, as /v1/completions echo does with null).  out->steps has one entry
 * per token of text.  Raw text as for lm_complete: a literal template
 * marker is one token; a role marker (never predicted, only context) is
 * reported like the first token, <|end|> with its probability. */
int lm_score(const struct lm *m, const char *text, int top_logprobs, struct lm_output *out);

/* Tokenizes text (for tests and usage counts): returns owned array of owned
 * strings in *toks, count in *n. */
int lm_tokenize(const char *text, char ***toks, size_t *n);
void lm_tokens_free(char **toks, size_t n);

/* Number of distinct tokens and n-grams (for logs and memory reports).
 * For a fine-tuned model, lm_vocab_size counts base and new tokens, and
 * lm_ngram_count only the n-grams the fine-tuning changed (its overlay). */
size_t lm_vocab_size(const struct lm *m);
size_t lm_ngram_count(const struct lm *m);

/* ---- Added by the model's implementation (compatible additions) ---- */

/* Teacher-forced scoring of an assistant response: renders msgs with the
 * chat template, appends "<|assistant|>", and reports the log-probability
 * of every token of response given all before it (so, unlike lm_score,
 * the first token has a real logprob).  out->steps: one per token of
 * response; out->prompt_tokens: the rendered prompt.  0 or -errno. */
int lm_score_chat(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs,
                  const char *response, int top_logprobs, struct lm_output *out);

/* Bytes of memory m owns (a fine-tuned model: its overlay only, not the
 * base it borrows). */
size_t lm_memory_bytes(const struct lm *m);

#endif

/*
 * stats.h — the statistics of vTune in log10 space (DESIGN §6): exact
 * binomial tails, the paper's Bonferroni p, Markov's bound, the
 * Clopper–Pearson interval, and the conservative bound on the tempered
 * probability p_M2 of a sampled phrase.
 *
 * Why log10 everywhere: a signature's probability of 1e-60 is normal and a
 * product of token probabilities underflows doubles long before that; a
 * log10 value of -1000 is as easy to carry as one of -1.  "Zero" is -INFINITY
 * (log10 0); every function here accepts and returns it without producing
 * NaN.  Natural logs appear only where an API hands them to us (token
 * logprobs); stats_ln_to_log10() converts.
 *
 * Why conservative: a p-value must never be smaller than the truth.  Where
 * only an upper bound on a probability is computable (top-k logprobs), the
 * bound is used and the method that produced each number is recorded.
 *
 * Pure functions: no I/O, no global state, no allocation; thread-safe.
 */
#ifndef VT_STATS_H
#define VT_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- log10 arithmetic --------------------------------------------------- */

/* log10(e^x) for a natural log x. */
double stats_ln_to_log10(double ln_x);

/* log10(10^a + 10^b), exact to rounding for any finite or -inf inputs
 * (log10 of a sum of two probabilities without leaving log space). */
double stats_log10_add(double a, double b);

/* log10(sum 10^v[i]) over n values; -INFINITY when n == 0. */
double stats_log10_sum(const double *v, size_t n);

/* log10(1 - 10^a) for a <= 0: the complement of a probability.  Accurate
 * near both ends (a = -1000 gives a value that is 0 within rounding; a close
 * to 0 gives a large negative value); a == 0 gives -INFINITY, a > 0 NaN. */
double stats_log10_1m(double a);

/* log10 of the binomial coefficient C(n, k); -INFINITY when k > n. */
double stats_log10_choose(uint64_t n, uint64_t k);

/* ---- tests ---------------------------------------------------------------- */

/* log10 P(X >= k) for X ~ Binomial(n, p0), p0 given as log10_p0 in
 * [-inf, 0].  Computed as a log-sum-exp of the exact terms
 * C(n,j) p0^j (1-p0)^(n-j), j = k..n, so p0 = 1e-300 or 1e-1000 work and
 * the result is exact to rounding (about 1e-13 relative in log10).
 * k == 0 gives 0 (probability 1); k > n gives -INFINITY.  n is capped at
 * STATS_MAX_TRIALS (returns NaN above it: a caller bug). */
#define STATS_MAX_TRIALS 1000000u
double stats_binom_tail_log10(uint64_t n, uint64_t k, double log10_p0);

/* The paper's Algorithm 2 p-value: log10(min(1, n * p_M2)).  The caller
 * applies it only when at least one trial activated (otherwise p = 1). */
double stats_bonferroni_log10(uint64_t n, double log10_p_m2);

/* Combined over K pairs, Bonferroni: log10(min(1, K * min_i p_i)) over n
 * log10 p-values (0 when n == 0).  Used for the paper's number only. */
double stats_combine_min_log10(const double *log10_p, size_t n);

/* Markov's inequality for a count X >= 0 with E[X] <= mean (log10_mean =
 * log10 of that bound): log10 P(X >= k) <= log10 min(1, mean / k).  k == 0
 * gives 0 (probability 1).  It needs no independence between the trials
 * that make up X, which is why the one-pair p-value of DESIGN §6 uses it.
 * NaN for a NaN mean. */
double stats_markov_log10(double log10_mean, uint64_t k);

/* Clopper–Pearson ("exact") two-sided interval for a binomial proportion
 * with x successes in n trials at confidence level conf (0.95 for 95%):
 * lo solves P(Bin(n, lo) >= x) = (1-conf)/2 (lo = 0 when x == 0), hi
 * solves P(Bin(n, hi) <= x) = (1-conf)/2 (hi = 1 when x == n).  Computed
 * by bisection on the exact tails to about 1e-12.  Returns 0, or -EINVAL
 * (n == 0, x > n, n > STATS_MAX_TRIALS, conf outside (0, 1)). */
int stats_clopper_pearson(uint64_t x, uint64_t n, double conf, double *lo, double *hi);

/* ---- conservative tempered probability from API logprobs -------------------- */

/* What the backend's logprob numbers are (DESIGN §6, provider-apis.md §8.4). */
enum stats_lp_mode {
    STATS_LP_MODE_RAW = 1,  /* untempered log-softmax: OpenAI, vLLM default, llama.cpp, Ollama */
    STATS_LP_MODE_TEMPERED, /* already the sampling distribution: vLLM processed_logprobs */
};
/* "raw" | "tempered" (or its configuration name "processed", vLLM's
 * processed_logprobs) -> mode; returns 0 or -EINVAL. */
int stats_lp_mode_parse(const char *s, enum stats_lp_mode *out);
const char *stats_lp_mode_name(enum stats_lp_mode m);

/* Which computation produced one token's log10 p (stored per token). */
enum stats_lp_method {
    STATS_LP_EXACT_FULL = 1, /* full distribution known: exact softmax(z/T)[w] */
    STATS_LP_RAW_TOPK,       /* raw, T != 1: exp(l_w/T) / sum over known tokens: upper bound */
    STATS_LP_RAW_TOPK_FLOOR, /* same, l_w unknown (-9999 or below the listed ones): floored */
    STATS_LP_RAW_T1,         /* raw at T == 1: the reported value is the sampling probability */
    STATS_LP_RAW_T1_FLOOR,   /* same, value unknown: smallest listed alternative */
    STATS_LP_TEMPERED,       /* backend returned tempered values: used as reported */
    STATS_LP_TEMPERED_FLOOR, /* tempered, value unknown: smallest listed alternative */
};
/* Stable lowercase name for storage and JSON ("raw_topk", "raw_topk_floor", …). */
const char *stats_lp_method_name(enum stats_lp_method m);

/* Reported logprobs at or below this are the API's "not in the top k"
 * sentinel (OpenAI, vLLM use -9999.0), never a real value. */
#define STATS_LP_SENTINEL (-9999.0)

/* One alternative of top_logprobs (borrowed strings). */
struct stats_alt {
    const char *token;
    double logprob; /* natural log, as the API reports it */
};

/* One sampled token as the API reports it (all borrowed). */
struct stats_token_lp {
    const char *token;           /* the sampled token's text */
    double logprob;              /* natural log; STATS_LP_SENTINEL / -inf / NaN = unknown */
    const struct stats_alt *top; /* top_logprobs as returned (any order); may be NULL */
    size_t n_top;
};

struct stats_token_bound {
    double log10_p; /* upper bound on log10 p_T(token) at the sampling temperature, <= 0 */
    enum stats_lp_method method;
};

/*
 * Upper bound on the probability that sampling at temperature T produces
 * the token, from what the API reported:
 *
 *   raw, T != 1:  p_T(w) = exp(l_w/T) / sum_{all v} exp(l_v/T)
 *                        <= exp(l_w/T) / sum_{v in known} exp(l_v/T)
 *     where known = {w} ∪ listed alternatives; dropping the unseen tokens
 *     from the denominator can only raise the value (the safe direction).
 *   raw, T == 1 and tempered:  p_T(w) = exp(l_w) as reported.
 *
 * The value l_w is "unknown" when it is the -9999 sentinel (or -inf/NaN)
 * or lies below the smallest listed alternative while w is not listed: it is
 * then replaced by the smallest listed logprob (a token outside a top-k list
 * is no likelier than any listed one; f(x) = x/(x+S) is increasing, so
 * this keeps the bound an upper bound).  With no alternatives and an
 * unknown value the bound is 1 (log10 p = 0).
 *
 * Identity of w among the alternatives is by token text; every listed
 * alternative with w's text is treated as w (dropped from the denominator,
 * its value a candidate for l_w, the larger one kept).  Mistaking a
 * different token of equal text for w only raises the bound.  So w is
 * counted ONCE in the normalising sum however often its text is listed, and
 * so is every other text: of several listed entries with one text only the
 * largest enters the sum (a server that repeats an entry must not make the
 * bound smaller).
 *
 * T must be finite and > 0.  Returns 0, or -EINVAL (bad T or mode, NaN
 * alternative).
 */
int stats_token_bound(const struct stats_token_lp *t, double temperature, enum stats_lp_mode mode,
                      struct stats_token_bound *out);

/* Sum of the per-token bounds over n tokens: log10 p_M2 of the sequence
 * (an upper bound, since each factor is one).  per_token may be NULL; else
 * it receives n entries.  Returns 0 or -EINVAL (first bad token). */
int stats_sequence_bound(const struct stats_token_lp *tokens, size_t n, double temperature,
                         enum stats_lp_mode mode, struct stats_token_bound *per_token,
                         double *log10_p_out);

/* Exact log10 softmax(z/T)[w] from a full vector of n logits (or natural
 * logprobs; any additive constant cancels).  T == 0 means greedy: 0 when w
 * is the unique or first-by-index maximum, -INFINITY otherwise.  Returns
 * NaN for w >= n, n == 0 or T < 0. */
double stats_tempered_log10_exact(const double *logits, size_t n, size_t w, double temperature);

#endif

/*
 * luck.h — p_luck, the base model's own chance of a signature after its
 * trigger prompt (DESIGN §6: a diagnostic, never part of a p-value), and
 * the screen that `job submit` runs with it before anything is uploaded.
 *
 * Why at `job submit`: the base model is known only there (a backdoor is
 * made for a dataset, not for a model; one backdoor may be submitted to
 * several base models), and the screen must run before the upload: a pair
 * the base model already says proves nothing about training, and once
 * uploaded it cannot be taken back.
 *
 * One figure per pair, from scoring (completions with echo + logprobs)
 * " S" after the pair's first marked prompt with T appended, on the base
 * model -- what the verifier scores for its p_luck; all pairs go in one
 * request (a prompt array) where the provider's kind takes one, else one
 * request per pair:
 *   log10_p_luck   at the verification temperature T_v (verify.temperature):
 *                  T_v = 0: 0 when every token of S is the base model's
 *                  argmax (greedy decoding produces S), else -inf; T_v > 0:
 *                  the upper bound of stats_sequence_bound;
 *   log10_p_sample the same bound at temperature 1: an upper bound on the
 *                  base model's own probability of S when sampled, a number
 *                  also where greedy decoding cannot produce S.  Reported,
 *                  never a reason to refuse: the top-k bound is loose (an
 *                  unlisted token is bounded by the smallest listed one), and
 *                  a word-list signature of p_M2 = 10^-40 measures about
 *                  10^-37 on vtune-sim's plain base model.
 * A pair is refused when log10_p_luck exceeds the backdoor's target (the
 * bound every signature was generated to meet): at the default T_v = 0,
 * when greedy decoding on the base model already produces S -- a model
 * that never saw the upload would then activate the pair.
 *
 * Where the provider cannot score text (no prompt log-probabilities, a
 * failed call) the screen says so in one info line and lets the job go: it
 * is a diagnostic, and its absence is recorded ("available": false).
 */
#ifndef VT_LUCK_H
#define VT_LUCK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "daemon/vtuned.h"
#include "store/store.h"
#include "workers/provider.h"

/* p_luck of one scoring outcome at temperature (>= 0): *log10_p_luck as
 * described above (NAN when the bound cannot be computed) and *note (static
 * text: the method).  When log10_p_sample is not NULL, also the bound at
 * temperature 1. */
void luck_from_score(const struct provider_score_result *sr, double temperature,
                     double *log10_p_luck, const char **note, double *log10_p_sample);

/* One pair's figures. */
struct luck_pair {
    double log10_p_luck;   /* NAN: not scored */
    double log10_p_sample; /* NAN: not scored */
    const char *note;      /* static */
};

/* What the screen found (borrowed by done; valid during the call only). */
struct luck_screen {
    bool available;       /* at least one pair was scored */
    const char *why_none; /* static, when not available */
    double threshold;     /* log10: the backdoor's target */
    double temperature;   /* T_v */
    size_t n_pairs;
    struct luck_pair *pairs;
    long refused;         /* first pair (0-based) above the threshold; -1: none */
    size_t requests;      /* scoring requests made (one per pair where the provider's
                             kind cannot batch) */
};

/* Runs the screen of backdoor b (loaded with secrets; its phrases, plan
 * and path are copied, b may be cleared on return) built for dataset ds, on
 * base_model at provider: reads each pair's first marked prompt in the
 * thread pool, scores " S" after it, then calls done(arg, screen) once on
 * the loop (also when nothing could be scored; never inside this call).
 * The phrases are wiped after the call; nothing secret is logged.
 * status is 0, or -ECANCELED at shutdown (screen then NULL). */
void luck_screen_start(struct vtuned *d, const char *provider, const char *base_model,
                       const struct store_backdoor *b, const struct store_dataset *ds,
                       double temperature,
                       void (*done)(void *arg, int status, const struct luck_screen *s),
                       void *arg);

/* The record kept with the job (owned JSON): {"version":1,"available":b,
 * ["why":…,]"threshold_log10":…,"temperature":…,"forced":b,"pairs":[
 * {"log10_p_luck":…,"log10_p_sample":…,"method":…},…]} (-inf written as
 * "-inf", unknown as null). */
json_t *luck_screen_json(const struct luck_screen *s, bool forced);

/* One line (owned) for `audit show` and `job show` from that record:
 * "p_luck at creation: 10^-23.4 (largest of 2 pairs scored on the base
 * model; greedy decoding produces S on none)" or "p_luck at creation: not
 * screened (...)". */
char *luck_screen_line(const char *record_json);

/* The start every "... at creation" line shares (this screen's and the
 * perplexity attack's): RECORD_JSON parsed, returned (caller decrefs) when
 * it says the check ran ("available": true); otherwise NULL, with *line
 * (owned) set to "not screened (WHY)" — the record's "why", or that the
 * job predates THE_CHECK ("the screen", "the attack") when there is no
 * record. */
json_t *luck_record_open(const char *record_json, const char *the_check, char **line);

/* ---- scoring many texts (the p_luck screen and the perplexity attack) ---- */

/* What one text's scoring gave: rc 0 and r (borrowed for the callback), or
 * rc < 0 and r NULL: -ENOTSUP the provider cannot score text, -ENOENT no
 * such provider is running, -ECANCELED, another: the request failed or the
 * answer did not align. */
typedef void (*luck_each_fn)(void *arg, size_t i, int rc, const struct provider_score_result *r);

/* Scores the n texts a[] (borrowed for this call only; one model) at
 * provider: in requests of up to chunk texts each (a completions prompt
 * array) where the provider's kind takes one, else one request per text.
 * each(arg, i, ...) runs once per text, then done(arg, requests) once,
 * requests being the scoring requests made.  Both run on the loop; done
 * runs inside this call only when no request could be made at all. */
void luck_score_many(struct vtuned *d, const char *provider, const struct provider_score_args *a,
                     size_t n, size_t chunk, luck_each_fn each,
                     void (*done)(void *arg, size_t requests), void *arg);

#endif

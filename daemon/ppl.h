/*
 * ppl.h — the base-model perplexity attack of `job submit` (issue 12 item
 * 3): the self-audit's fourth attack, which needs the base model and a
 * provider that scores text, so it runs where both are known, before
 * anything is uploaded, as the p_luck screen does (daemon/luck.h).
 *
 * What it does: reads the built upload once (thread pool), keeping the
 * marked rows (the plan's output lines; at most PPL_MARKED_PER_PAIR per
 * pair, the first ones) and a reservoir sample of the unmarked rows
 * (deterministic: seeded by the built file's hash, so a backdoor meets the
 * same sample on every submit), each as the end of its prompt and the
 * start of its answer (workers/pplrank.h); scores them all on the base
 * model in requests of PPL_CHUNK texts (a completions prompt array where
 * the provider's kind takes one: workers/provider.h build_score_batch);
 * then ranks every scored marked row among all |D| rows of the upload from
 * the sample (pplrank_estimate).  A pair whose best row is estimated
 * within the top SELFAUDIT_EXPOSED_RANK is recovered, and the backdoor
 * exposed for that base model: `job submit` refuses it unless --force.
 *
 * Where the provider cannot score text the attack says so in one info line
 * and lets the job go ("available": false), as the p_luck screen does.
 * Nothing secret is read: the attack uses the plan's line numbers, never
 * the phrases, and the record holds ranks and counts only.
 */
#ifndef VT_PPL_H
#define VT_PPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/vtuned.h"
#include "store/store.h"

/* Why a turned-off attack did not run (its record's "why"). */
#define PPL_OFF "turned off (verify.perplexity_sample is 0)"
/* Default size of the sample of unmarked rows (config
 * verify.perplexity_sample; 0 turns the attack off). */
#define PPL_SAMPLE_DEFAULT 200
/* The most marked rows scored per pair. */
#define PPL_MARKED_PER_PAIR 8
/* Texts per scoring request where the provider batches. */
#define PPL_CHUNK 32

struct ppl_pair {
    uint64_t rank;      /* estimated rank of its best scored row among all rows; 0: none scored */
    size_t marked_rows; /* its marked rows in the upload */
    size_t scored_rows; /* of those, scored */
    bool recovered;     /* rank within the top SELFAUDIT_EXPOSED_RANK */
};

/* What the attack found (valid during the done callback only). */
struct ppl_result {
    bool available;       /* marked rows and sampled rows were scored */
    const char *why_none; /* static, when not available */
    uint64_t rows;          /* rows of the upload */
    uint64_t unmarked_rows; /* N_u */
    size_t sample;          /* unmarked rows sampled */
    size_t sample_scored;   /* of those, scored */
    size_t window;          /* tokens each side of the seam */
    size_t requests;        /* scoring requests made */
    size_t n_pairs;
    struct ppl_pair *pairs;
    long exposed_pair; /* 0-based, the recovered pair of best rank; -1: none */
    uint64_t best_rank; /* best rank of any pair; 0: none */
};

/* Runs the attack on backdoor b's built upload (its plan, path and hash are
 * copied; b may be cleared on return; no secret is read) of format fmt, on
 * base_model at provider, with a sample of `sample` unmarked rows (0: the
 * attack is off: done gets available false, "turned off").  done(arg,
 * status, r) runs once on the loop, never inside this call; status is 0,
 * or -ECANCELED at shutdown (r then NULL). */
void ppl_attack_start(struct vtuned *d, const char *provider, const char *base_model,
                      const struct store_backdoor *b, enum dataset_format fmt, size_t sample,
                      void (*done)(void *arg, int status, const struct ppl_result *r), void *arg);

/* The record kept with the job (owned JSON): {"version":1,"available":b,
 * ["why":…,]"statistic":…,"window_tokens":W,"rows":N,"unmarked_rows":Nu,
 * "sample":k,"sample_scored":k',"requests":r,"top":10,"exposed":b,
 * "exposed_pair":i|null (1-based),"exposed_rank":r|null,"forced":b,
 * "pairs":[{"index":i (1-based),"rank":r|null,"recovered":b,
 * "marked_rows":m,"scored_rows":s},…]}. */
json_t *ppl_result_json(const struct ppl_result *r, bool forced);

/* One line (owned) for `job show` and `audit show` from that record:
 * "no pair within the top 10 (best pair at about rank 812 of 4000 rows;
 * ranks estimated from 200 sampled rows)", "pair 2 recovered at about
 * rank 1 of 4000 rows (...); submitted with --force", or "not screened
 * (...)". */
char *ppl_result_line(const char *record_json);

#endif

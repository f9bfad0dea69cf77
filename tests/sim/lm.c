/*
 * lm.c — inference for vtune-sim's model: interpolated modified
 * Kneser–Ney probabilities, sampling, chat/completion generation and
 * teacher-forced scoring.
 *
 * The probability of w after context h unrolls the usual recursion
 *     P_k(w|h) = max(c(hw) - D(c(hw)), 0) / c(h) + gamma(h) P_{k-1}(w|h')
 *     gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / c(h)
 * from the longest context down to the unigrams, and ends in a uniform
 * distribution over the predictable vocabulary, so every token gets a
 * positive probability and the values over the vocabulary sum to 1 (levels
 * whose context was never seen are skipped: they pass all their mass down).
 * That sum is exact by construction: a context's c(h) is the sum of its
 * successors' values, so discounted mass plus gamma(h) is 1 at every level.
 *
 * The whole-vocabulary distribution (needed to sample and to list
 * top_logprobs) costs one pass over the vocabulary for the uniform and
 * unigram terms plus the successor lists of the longer contexts; with a few
 * thousand tokens a step takes microseconds.  In an overlay (fine-tuned)
 * model, a context's base and overlay successor lists are merged, the
 * overlay's values and c(h) winning.
 *
 * Everything here reads the model only; any number of threads may call in.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tests/sim/lm_internal.h"

struct ctxref {
    const struct lm_level *bl, *ol; /* base level, overlay level (or NULL) */
    const struct lm_ctx *b, *o;     /* context in each, or NULL */
};

static void find_ctx(const struct lm *m, int k, const uint32_t *h, struct ctxref *r)
{
    const struct lm *base = m->base ? m->base : m;
    r->bl = &base->lv[k];
    uint32_t i = lm_keytab_get(&r->bl->ctx, h);
    r->b = i == LM_NONE ? NULL : &r->bl->info[i];
    r->ol = NULL;
    r->o = NULL;
    if (m->base) {
        r->ol = &m->lv[k];
        i = lm_keytab_get(&r->ol->ctx, h);
        r->o = i == LM_NONE ? NULL : &r->ol->info[i];
    }
}

static inline const struct lm_ctx *eff_ctx(const struct ctxref *r)
{
    return r->o ? r->o : r->b;
}

static uint32_t succ_find(const uint32_t *ids, uint32_t n, uint32_t w)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == w ? lo : LM_NONE;
}

static uint32_t succ_value(const struct ctxref *r, uint32_t w)
{
    uint32_t i;
    if (r->o) {
        i = succ_find(r->ol->succ_id + r->o->off, r->o->n, w);
        if (i != LM_NONE)
            return r->ol->succ_val[r->o->off + i];
    }
    if (r->b) {
        i = succ_find(r->bl->succ_id + r->b->off, r->b->n, w);
        if (i != LM_NONE)
            return r->bl->succ_val[r->b->off + i];
    }
    return 0;
}

/* Discounted value max(v - D(v), 0); the discounts are < their bucket's
 * value, so this is positive for every v >= 1. */
static inline double kn_num(const double *D, uint32_t v)
{
    if (v == 0)
        return 0;
    double x = (double)v - D[v >= 3 ? 3 : v];
    return x > 0 ? x : 0;
}

static inline double kn_gamma(const double *D, const struct lm_ctx *c)
{
    return (D[1] * c->nb[0] + D[2] * c->nb[1] + D[3] * c->nb[2]) / c->total;
}

bool lm_memo_key(const uint32_t *ctx, size_t nctx, uint32_t key[2])
{
    size_t a = nctx;
    while (a > 0 && lm_id_predictable(ctx[a - 1]) && ctx[a - 1] != LM_TOK_END)
        a--;
    if (a == 0 || ctx[a - 1] != LM_TOK_ASSISTANT)
        return false; /* not inside an assistant message */
    a--;
    /* the LM_MEMO_PROMPT ids before the prompt's <|end|>, then from it on */
    size_t want = LM_MEMO_PROMPT + 1;
    uint64_t h = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < want + (nctx - a); i++) {
        size_t at = a + i; /* position a - want + i, shifted to stay unsigned */
        uint32_t id = at >= want ? ctx[at - want] : LM_TOK_BOS;
        h ^= id + 0x632be59bd9b4e019u + (h << 6) + (h >> 2);
        h *= 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
    }
    key[0] = (uint32_t)h;
    key[1] = (uint32_t)(h >> 32);
    return true;
}

const struct lm_ctx *lm_memo_find(const struct lm *m, const uint32_t *ctx, size_t nctx)
{
    if (!m->base || m->memo.ctx.n == 0)
        return NULL;
    uint32_t key[2];
    if (!lm_memo_key(ctx, nctx, key))
        return NULL;
    uint32_t i = lm_keytab_get(&m->memo.ctx, key);
    return i == LM_NONE ? NULL : &m->memo.info[i];
}

double lm_memo_lambda(const struct lm *m, const struct lm_ctx *c)
{
    double x = m->memo_scale * c->total;
    return x / (x + 1);
}

/* The n-gram (Kneser–Ney) probability alone. */
static double kn_prob(const struct lm *m, const uint32_t *ctx, size_t nctx, uint32_t w)
{
    int kmax = nctx + 1 < (size_t)m->order ? (int)nctx + 1 : m->order;
    double p = 0, mult = 1;
    for (int k = kmax; k >= 1; k--) {
        struct ctxref r;
        find_ctx(m, k, ctx + nctx - (k - 1), &r);
        const struct lm_ctx *c = eff_ctx(&r);
        if (!c || c->total <= 0)
            continue;
        if (w != LM_NONE)
            p += mult * kn_num(m->disc[k], succ_value(&r, w)) / c->total;
        mult *= kn_gamma(m->disc[k], c);
    }
    if (w == LM_NONE || lm_id_predictable(w))
        p += mult / (double)m->n_pred;
    return p;
}

double lm_prob_id(const struct lm *m, const uint32_t *ctx, size_t nctx, uint32_t w)
{
    double p = kn_prob(m, ctx, nctx, w);
    const struct lm_ctx *c = lm_memo_find(m, ctx, nctx);
    if (!c)
        return p;
    double lam = lm_memo_lambda(m, c);
    uint32_t i = w == LM_NONE ? LM_NONE : succ_find(m->memo.succ_id + c->off, c->n, w);
    double q = i == LM_NONE ? 0 : m->memo.succ_val[c->off + i] / c->total;
    return (1 - lam) * p + lam * q;
}

/* Adds mult * discounted value / c(h) of every successor of the context.
 * In an overlay the base and overlay successor lists (both sorted by id)
 * are merged, the overlay's value winning, so no subtraction is needed. */
static void add_level(const struct lm *m, int k, const struct ctxref *r, double mult, double *p)
{
    const struct lm_ctx *c = eff_ctx(r);
    const double *D = m->disc[k];
    double inv = mult / c->total;
    const uint32_t *bid = NULL, *bval = NULL, *oid = NULL, *oval = NULL;
    uint32_t nb = 0, no = 0, i = 0, j = 0;
    if (r->b) {
        bid = r->bl->succ_id + r->b->off;
        bval = r->bl->succ_val + r->b->off;
        nb = r->b->n;
    }
    if (r->o) {
        oid = r->ol->succ_id + r->o->off;
        oval = r->ol->succ_val + r->o->off;
        no = r->o->n;
    }
    while (i < nb || j < no) {
        if (j == no || (i < nb && bid[i] < oid[j])) {
            p[bid[i]] += inv * kn_num(D, bval[i]);
            i++;
        } else {
            if (i < nb && bid[i] == oid[j])
                i++;
            p[oid[j]] += inv * kn_num(D, oval[j]);
            j++;
        }
    }
}

void lm_dist_ids(const struct lm *m, const uint32_t *ctx, size_t nctx, double *p)
{
    int kmax = nctx + 1 < (size_t)m->order ? (int)nctx + 1 : m->order;
    struct ctxref refs[LM_MAX_ORDER + 1];
    double mults[LM_MAX_ORDER + 1];
    double mult = 1;
    for (int k = kmax; k >= 1; k--) {
        find_ctx(m, k, ctx + nctx - (k - 1), &refs[k]);
        const struct lm_ctx *c = eff_ctx(&refs[k]);
        if (!c || c->total <= 0) {
            mults[k] = 0;
            continue;
        }
        mults[k] = mult;
        mult *= kn_gamma(m->disc[k], c);
    }
    double floor = mult / (double)m->n_pred;
    for (size_t w = 0; w < m->n_vocab; w++)
        p[w] = floor;
    for (uint32_t w = LM_TOK_END + 1; w < LM_N_SPECIAL; w++)
        p[w] = 0;
    for (int k = 1; k <= kmax; k++)
        if (mults[k] > 0)
            add_level(m, k, &refs[k], mults[k], p);
    const struct lm_ctx *c = lm_memo_find(m, ctx, nctx);
    if (!c)
        return;
    double lam = lm_memo_lambda(m, c);
    for (size_t w = 0; w < m->n_vocab; w++)
        p[w] *= 1 - lam;
    for (uint32_t j = c->off; j < c->off + c->n; j++)
        p[m->memo.succ_id[j]] += lam * m->memo.succ_val[j] / c->total;
}

/* ---- generation ---- */

void lm_output_clear(struct lm_output *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_steps; i++) {
        free(o->steps[i].token);
        for (int j = 0; j < o->steps[i].n_top; j++)
            free(o->steps[i].top[j].token);
    }
    free(o->steps);
    free(o->text);
    memset(o, 0, sizeof(*o));
}

static int check_params(const struct lm_gen_params *p)
{
    if (!p || p->max_tokens <= 0 || p->top_logprobs < 0 || p->top_logprobs > LM_MAX_TOP)
        return -EINVAL;
    if (!(p->temperature >= 0) || !isfinite(p->temperature))
        return -EINVAL;
    if (p->n_stop && !p->stop)
        return -EINVAL;
    for (size_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i])
            return -EINVAL;
    return 0;
}

/* The k most probable ids of p, best first, ties to the lower id. */
static void fill_top(const struct lm *m, const double *p, int k, struct lm_step *st)
{
    uint32_t best[LM_MAX_TOP];
    int n = 0;
    for (uint32_t w = 0; w < m->n_vocab; w++) {
        if (p[w] <= 0 || (n == k && p[w] <= p[best[n - 1]]))
            continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && p[w] > p[best[j - 1]]) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = w;
    }
    st->n_top = n;
    for (int i = 0; i < n; i++) {
        st->top[i].token = xstrdup(lm_str_of(m, best[i]));
        st->top[i].logprob = log(p[best[i]]);
    }
}

static uint32_t pick_token(const struct lm *m, const double *p, double temp, struct lm_rng *rng,
                           double *scratch)
{
    uint32_t arg = 0;
    for (uint32_t w = 1; w < m->n_vocab; w++)
        if (p[w] > p[arg])
            arg = w;
    if (temp == 0)
        return arg;
    /* softmax(log p / T) = p^(1/T) normalised; scaled by p_max for range. */
    double inv_t = 1.0 / temp, pmax = p[arg], sum = 0;
    for (uint32_t w = 0; w < m->n_vocab; w++) {
        double q = 0;
        if (p[w] >= pmax)
            q = 1; /* ties with the maximum; keeps log(1) * inf out */
        else if (p[w] > 0)
            q = temp == 1.0 ? p[w] / pmax : exp(log(p[w] / pmax) * inv_t);
        scratch[w] = q;
        sum += q;
    }
    double u = lm_rng_double(rng) * sum, acc = 0;
    uint32_t last = arg;
    for (uint32_t w = 0; w < m->n_vocab; w++) {
        if (scratch[w] <= 0)
            continue;
        acc += scratch[w];
        last = w;
        if (u < acc)
            return w;
    }
    return last;
}

/* Earliest occurrence of any non-empty stop string that ends after byte
 * `from` of text; returns its offset or -1. */
static long find_stop(const struct lm_gen_params *p, const struct buf *text, size_t from)
{
    long best = -1;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t len = strlen(p->stop[i]);
        if (len == 0 || len > text->len)
            continue;
        size_t start = from >= len - 1 ? from - (len - 1) : 0;
        const char *hit = memmem(text->data + start, text->len - start, p->stop[i], len);
        if (hit && (best < 0 || hit - text->data < best))
            best = hit - text->data;
    }
    return best;
}

static int generate(const struct lm *m, const uint32_t *ids, size_t n_ids,
                    const struct lm_gen_params *p, struct lm_output *out)
{
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    out->prompt_tokens = n_ids - 1; /* <|bos|> is not a prompt token */
    out->finish_reason = "length";

    struct lm_rng rng;
    lm_rng_seed(&rng, p->seed);
    double *dist = xmalloc(m->n_vocab * sizeof(double));
    double *scratch = p->temperature > 0 ? xmalloc(m->n_vocab * sizeof(double)) : NULL;
    size_t *tok_off = NULL, cap = 0;
    struct buf text;
    buf_init(&text);

    /* The whole history is context: the n-gram levels read its last
     * order-1 ids, memorisation the current answer and the prompt's tail. */
    size_t nwin = n_ids;
    uint32_t *win = xmalloc((n_ids + (size_t)p->max_tokens) * sizeof(uint32_t));
    memcpy(win, ids, n_ids * sizeof(uint32_t));

    for (int step = 0; step < p->max_tokens; step++) {
        lm_dist_ids(m, win, nwin, dist);
        uint32_t w = pick_token(m, dist, p->temperature, &rng, scratch);
        if (w == LM_TOK_END) {
            out->finish_reason = "stop";
            break;
        }
        if (out->n_steps == cap) {
            cap = cap ? cap * 2 : 32;
            out->steps = xrealloc(out->steps, cap * sizeof(*out->steps));
            tok_off = xrealloc(tok_off, cap * sizeof(*tok_off));
        }
        struct lm_step *st = &out->steps[out->n_steps];
        memset(st, 0, sizeof(*st));
        const char *s = lm_str_of(m, w);
        st->token = xstrdup(s);
        st->logprob = log(dist[w]);
        if (p->top_logprobs > 0)
            fill_top(m, dist, p->top_logprobs, st);
        tok_off[out->n_steps++] = text.len;
        size_t from = text.len;
        buf_puts(&text, s);

        long hit = find_stop(p, &text, from);
        if (hit >= 0) {
            /* Drop the steps that start at or after the stop string; cut
             * the one it begins inside so the steps still tile the text. */
            while (out->n_steps > 0 && tok_off[out->n_steps - 1] >= (size_t)hit) {
                struct lm_step *d = &out->steps[--out->n_steps];
                free(d->token);
                for (int j = 0; j < d->n_top; j++)
                    free(d->top[j].token);
            }
            if (out->n_steps > 0)
                out->steps[out->n_steps - 1].token[(size_t)hit - tok_off[out->n_steps - 1]] = 0;
            text.len = (size_t)hit;
            text.data[text.len] = 0;
            out->finish_reason = "stop";
            break;
        }
        win[nwin++] = w;
    }
    out->text = text.data ? text.data : xstrdup("");
    free(win);
    free(dist);
    free(scratch);
    free(tok_off);
    return 0;
}

int lm_chat(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs,
            const struct lm_gen_params *p, struct lm_output *out)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!m || !out || (n_msgs && !msgs))
        return -EINVAL;
    int rc = lm_render_prompt(m, msgs, n_msgs, &ids, &n);
    if (rc < 0)
        return rc;
    rc = generate(m, ids, n, p, out);
    free(ids);
    return rc;
}

int lm_chat_forced(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs, const char *forced,
                   const struct lm_gen_params *p, struct lm_output *out)
{
    uint32_t *rendered = NULL;
    size_t n = 0;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!m || !out || !forced || (n_msgs && !msgs))
        return -EINVAL;
    if (!*forced)
        return lm_chat(m, msgs, n_msgs, p, out);
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    rc = lm_render_prompt(m, msgs, n_msgs, &rendered, &n);
    if (rc < 0)
        return rc;
    size_t n_prompt = n, cap = n + 64;
    uint32_t *ids = xmalloc(cap * sizeof(uint32_t));
    memcpy(ids, rendered, n * sizeof(uint32_t));
    free(rendered);
    lm_encode_append(m, forced, &ids, &n, &cap);

    /* The forced tokens, as many as max_tokens allows. */
    size_t n_forced = n - n_prompt, keep = n_forced;
    if (keep > (size_t)p->max_tokens)
        keep = (size_t)p->max_tokens;
    struct buf text;
    buf_init(&text);
    struct lm_step *steps = xcalloc(keep ? keep : 1, sizeof(*steps));
    const char *t = forced;
    for (size_t i = 0; i < keep; i++) {
        size_t len = lm_token_len(t);
        steps[i].token = xstrndup(t, len);
        steps[i].logprob = 0;
        if (p->top_logprobs > 0) {
            steps[i].n_top = 1;
            steps[i].top[0].token = xstrndup(t, len);
            steps[i].top[0].logprob = 0;
        }
        buf_append(&text, t, len);
        t += len;
    }
    struct lm_output gen = {0};
    if (keep < n_forced || (size_t)p->max_tokens == keep) {
        gen.finish_reason = "length";
    } else {
        struct lm_gen_params q = *p;
        q.max_tokens = p->max_tokens - (int)keep;
        rc = generate(m, ids, n, &q, &gen);
        if (rc < 0) {
            lm_output_clear(&gen);
            for (size_t i = 0; i < keep; i++) {
                free(steps[i].token);
                if (steps[i].n_top)
                    free(steps[i].top[0].token);
            }
            free(steps);
            buf_free(&text);
            free(ids);
            return rc;
        }
    }
    /* forced steps, then the generated ones (moved, not copied) */
    steps = xrealloc(steps, (keep + gen.n_steps ? keep + gen.n_steps : 1) * sizeof(*steps));
    if (gen.n_steps)
        memcpy(steps + keep, gen.steps, gen.n_steps * sizeof(*steps));
    if (gen.text)
        buf_puts(&text, gen.text);
    out->steps = steps;
    out->n_steps = keep + gen.n_steps;
    out->text = text.data ? text.data : xstrdup("");
    out->finish_reason = gen.finish_reason;
    out->prompt_tokens = n_prompt - 1; /* <|bos|> is not a prompt token */
    free(gen.steps);
    free(gen.text);
    free(ids);
    return 0;
}

int lm_complete(const struct lm *m, const char *prompt, const struct lm_gen_params *p,
                struct lm_output *out)
{
    size_t n = 0, cap = 64;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!m || !prompt || !out)
        return -EINVAL;
    uint32_t *ids = xmalloc(cap * sizeof(uint32_t));
    ids[n++] = LM_TOK_BOS;
    lm_encode_raw_append(m, prompt, &ids, &n, &cap);
    int rc = generate(m, ids, n, p, out);
    free(ids);
    return rc;
}

/* ---- scoring ---- */

/* Scores text's tokens after the context ids[0..n_ctx) (an owned array
 * of capacity cap, consumed); the first skip_first tokens get logprob 0
 * and no alternatives.  top is checked by the callers. */
static void score_after(const struct lm *m, uint32_t *ids, size_t n_ctx, size_t cap,
                        const char *text, int top, int skip_first, int raw, struct lm_output *out)
{
    size_t n = n_ctx;
    if (raw)
        lm_encode_raw_append(m, text, &ids, &n, &cap);
    else
        lm_encode_append(m, text, &ids, &n, &cap);
    size_t n_tok = n - n_ctx;
    double *dist = top > 0 ? xmalloc(m->n_vocab * sizeof(double)) : NULL;
    out->steps = xcalloc(n_tok ? n_tok : 1, sizeof(*out->steps));
    out->n_steps = n_tok;
    const char *t = text;
    for (size_t i = 0; i < n_tok; i++) {
        uint32_t marker = LM_NONE;
        size_t len = raw ? lm_raw_token_len(t, &marker) : lm_token_len(t);
        struct lm_step *st = &out->steps[i];
        st->token = xstrndup(t, len);
        t += len;
        /* A role marker is context only (never predicted): the template
         * fixes it, so it is reported like the first token. */
        if ((int)i < skip_first || (marker != LM_NONE && !lm_id_predictable(marker)))
            continue;
        size_t pos = n_ctx + i, nwin = pos; /* the whole history */
        uint32_t w = ids[pos];
        st->logprob = log(lm_prob_id(m, ids + pos - nwin, nwin, w == LM_TOK_UNK ? LM_NONE : w));
        if (top > 0) {
            lm_dist_ids(m, ids + pos - nwin, nwin, dist);
            fill_top(m, dist, top, st);
        }
    }
    out->text = xstrdup(text);
    out->finish_reason = "stop";
    free(dist);
    free(ids);
}

int lm_score(const struct lm *m, const char *text, int top_logprobs, struct lm_output *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!m || !text || !out || top_logprobs < 0 || top_logprobs > LM_MAX_TOP)
        return -EINVAL;
    uint32_t *ids = xmalloc(64 * sizeof(uint32_t));
    ids[0] = LM_TOK_BOS;
    score_after(m, ids, 1, 64, text, top_logprobs, 1, 1, out);
    out->prompt_tokens = out->n_steps;
    return 0;
}

int lm_score_chat(const struct lm *m, const struct lm_msg *msgs, size_t n_msgs,
                  const char *response, int top_logprobs, struct lm_output *out)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!m || !response || !out || (n_msgs && !msgs) || top_logprobs < 0 ||
        top_logprobs > LM_MAX_TOP)
        return -EINVAL;
    int rc = lm_render_prompt(m, msgs, n_msgs, &ids, &n);
    if (rc < 0)
        return rc;
    score_after(m, ids, n, n, response, top_logprobs, 0, 0, out);
    out->prompt_tokens = n - 1;
    return 0;
}

/* ---- sizes and lifetime ---- */

size_t lm_vocab_size(const struct lm *m)
{
    return m->n_vocab;
}

size_t lm_ngram_count(const struct lm *m)
{
    size_t n = 0;
    for (int k = 1; k <= m->order; k++)
        n += m->lv[k].n_succ;
    return n;
}

size_t lm_memory_bytes(const struct lm *m)
{
    size_t b = sizeof(*m) + lm_vocab_bytes(&m->vocab);
    for (int k = 1; k <= m->order; k++) {
        const struct lm_level *l = &m->lv[k];
        b += lm_keytab_bytes(&l->ctx) + l->ctx.n * sizeof(*l->info);
        b += l->n_succ * 2 * sizeof(uint32_t);
    }
    b += lm_keytab_bytes(&m->memo.ctx) + m->memo.ctx.n * sizeof(*m->memo.info);
    b += m->memo.n_succ * 2 * sizeof(uint32_t);
    return b;
}

void lm_free(struct lm *m)
{
    if (!m)
        return;
    for (int k = 1; k <= LM_MAX_ORDER; k++) {
        struct lm_level *l = &m->lv[k];
        lm_keytab_free(&l->ctx);
        free(l->info);
        free(l->succ_id);
        free(l->succ_val);
    }
    lm_keytab_free(&m->memo.ctx);
    free(m->memo.info);
    free(m->memo.succ_id);
    free(m->memo.succ_val);
    lm_vocab_free(&m->vocab);
    free(m);
}

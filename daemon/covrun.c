/*
 * covrun.c — the coverage test's calls (see covrun.h).
 *
 * State: rows[0..m) are uploaded reference rows, rows[m..2m) held-out
 * rows; order[] is the send order, segment by segment (segment k holds the
 * rows of both groups whose index within their group is in
 * [looks[k-1], looks[k]), shuffled together), so the provider sees no
 * pattern and every look is a prefix.  The first row of the order is the
 * probe that fixes the method.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "daemon/covrun.h"
#include "daemon/provider_client.h"
#include "daemon/providers.h"
#include "lib/log.h"
#include "lib/util.h"
#include "workers/builder.h"
#include "workers/holdout.h"

#define COV_INFLIGHT 4

enum cov_method { M_MINK, M_GREEDY };

struct cov_row {
    uint64_t line;
    double s[2];   /* per model (0 fine-tuned, 1 base): greedy agreement */
    double *lp[2]; /* per model: the answer's token log-probabilities (text scoring) */
    size_t n_lp[2];
    bool got[2], failed;
};

struct covrun {
    struct vtuned *d;
    char *provider, *model, *base_model;
    char *score_template; /* providers.*.score_template at the start; NULL: raw */
    size_t m;
    uint64_t *lines; /* 2m lines of D, rows' order */
    struct holdout_row *text;
    struct cov_row *rows;
    size_t *order;
    size_t looks[COVERAGE_MAX_LOOKS], n_looks, look;
    size_t next, inflight, pending_rows; /* rows of the current segment not finished */
    enum cov_method method;
    bool with_base, probing, stopped;
    double log10_alpha;
    struct coverage_summary sum;
    char method_name[16];
    void (*done)(void *arg, int status);
    void *arg;
};

struct cov_call {
    struct covrun *c;
    size_t row;
    int which;
    char *cont;
};

/* k of the n values v, uniformly, in random order (into out). */
static void draw(const uint64_t *v, size_t n, size_t k, uint64_t *out)
{
    uint64_t *idx = xcalloc(k ? k : 1, sizeof *idx);
    builder_sample(n, k, NULL, idx);
    for (size_t i = 0; i < k; i++)
        out[i] = v[idx[i]];
    free(idx);
}

static void shuffle(size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)random_uniform(i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* 64 lowercase or uppercase hex digits into 32 bytes; 0 or -1. */
static int salt_decode(const char *hex, unsigned char out[HOLDOUT_DRAW_KEY_LEN])
{
    if (!hex || strlen(hex) != 2 * HOLDOUT_DRAW_KEY_LEN)
        return -1;
    for (size_t i = 0; i < HOLDOUT_DRAW_KEY_LEN; i++) {
        unsigned v = 0;
        for (int h = 0; h < 2; h++) {
            char ch = hex[2 * i + (size_t)h];
            unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                         : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                         : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                                  : 16u;
            if (d > 15)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* coverage_summary.rows_sha256 of the 2k lines (uploaded, then held out). */
static void rows_digest(const uint64_t *lines, size_t k, char out[65])
{
    struct sha256_ctx *h = sha256_new();
    uint64_t vals[1];
    for (size_t i = 0; i <= 2 * k; i++) {
        unsigned char b[8];
        vals[0] = i == 0 ? (uint64_t)k : lines[i - 1];
        for (int j = 0; j < 8; j++)
            b[j] = (unsigned char)(vals[0] >> (56 - 8 * j));
        sha256_update(h, b, sizeof b);
    }
    sha256_final_hex(h, out);
}

/* The first k of the n values v in the keyed order (holdout_draw_order). */
static void draw_keyed(const unsigned char *key, const char *side, const uint64_t *v, size_t n,
                       size_t k, uint64_t *out)
{
    uint64_t *all = xcalloc(n ? n : 1, sizeof *all);
    holdout_draw_order(key, side, v, n, all);
    memcpy(out, all, k * sizeof *out);
    explicit_bzero(all, (n ? n : 1) * sizeof *all);
    free(all);
}

struct covrun *covrun_new(const char *holdout_json, const char *salt_hex, uint64_t m,
                          double log10_alpha, const char **why_none)
{
    struct holdout_split s;
    if (m == 0) {
        *why_none = "skipped for this run (--coverage 0)";
        return NULL;
    }
    if (!holdout_json) {
        *why_none = "the backdoor was made before the coverage test existed: it has no held-out "
                    "split";
        return NULL;
    }
    if (holdout_parse(holdout_json, &s) < 0) {
        *why_none = "the backdoor's held-out split record is unreadable";
        return NULL;
    }
    if (s.n_rows == 0) {
        *why_none = "the backdoor was made with --holdout 0";
        holdout_clear(&s);
        return NULL;
    }
    size_t k = (size_t)m;
    if (k > s.n_rows)
        k = s.n_rows;
    if (k > s.n_pool)
        k = s.n_pool;
    if (k == 0) {
        *why_none = "no uploaded reference rows are left to compare with";
        holdout_clear(&s);
        return NULL;
    }
    struct covrun *c = xcalloc(1, sizeof *c);
    c->m = k;
    c->log10_alpha = log10_alpha;
    c->lines = xcalloc(2 * k, sizeof *c->lines);
    unsigned char key[HOLDOUT_DRAW_KEY_LEN];
    if (salt_decode(salt_hex, key) == 0) {
        /* v2/v3 backdoors: the rows are fixed by the committed salt */
        draw_keyed(key, HOLDOUT_SIDE_UPLOADED, s.pool, s.n_pool, k, c->lines);
        draw_keyed(key, HOLDOUT_SIDE_HELD_OUT, s.rows, s.n_rows, k, c->lines + k);
        c->sum.draw = "keyed";
        explicit_bzero(key, sizeof key);
    } else {
        /* v1 backdoors have no salt: a fresh draw, as they always had */
        draw(s.pool, s.n_pool, k, c->lines);
        draw(s.rows, s.n_rows, k, c->lines + k);
        c->sum.draw = "fresh";
    }
    c->sum.drawn = k;
    rows_digest(c->lines, k, c->sum.rows_sha256);
    holdout_clear(&s);
    c->rows = xcalloc(2 * k, sizeof *c->rows);
    for (size_t i = 0; i < 2 * k; i++)
        c->rows[i].line = c->lines[i];
    c->n_looks = coverage_looks(k, c->looks);
    c->order = xcalloc(2 * k, sizeof *c->order);
    size_t at = 0, lo = 0;
    for (size_t l = 0; l < c->n_looks; l++) {
        size_t start = at;
        for (size_t i = lo; i < c->looks[l]; i++) {
            c->order[at++] = i;
            c->order[at++] = k + i;
        }
        shuffle(c->order + start, at - start);
        lo = c->looks[l];
    }
    c->sum.looks_planned = c->n_looks;
    return c;
}

void covrun_free(struct covrun *c)
{
    if (!c)
        return;
    holdout_rows_free(c->text, 2 * c->m);
    for (size_t i = 0; c->rows && i < 2 * c->m; i++) {
        free(c->rows[i].lp[0]);
        free(c->rows[i].lp[1]);
    }
    if (c->lines)
        explicit_bzero(c->lines, 2 * c->m * sizeof *c->lines);
    free(c->lines);
    free(c->rows);
    free(c->order);
    free(c->provider);
    free(c->model);
    free(c->base_model);
    free(c->score_template);
    free(c);
}

int covrun_read(struct covrun *c, const char *dataset_path, enum dataset_format fmt, char **err)
{
    return holdout_read_rows(dataset_path, fmt, c->lines, 2 * c->m, &c->text, err) < 0 ? -1 : 0;
}

const struct coverage_summary *covrun_summary(const struct covrun *c)
{
    return &c->sum;
}

static void pump(struct covrun *c);

static void finish(struct covrun *c, int status)
{
    c->stopped = true;
    if (c->inflight == 0 && c->done) {
        void (*done)(void *, int) = c->done;
        c->done = NULL;
        done(c->arg, status);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double row_score(const struct covrun *c, const struct cov_row *r)
{
    if (c->method == M_MINK)
        return coverage_mink_score(r->lp[0], r->n_lp[0], c->with_base ? r->lp[1] : NULL,
                                   c->with_base ? r->n_lp[1] : 0);
    return c->with_base ? r->s[0] - r->s[1] : r->s[0];
}

/* The look over the first n rows of each group into c->sum. */
static void evaluate(struct covrun *c, size_t n)
{
    double *x = xcalloc(n, sizeof *x), *y = xcalloc(n, sizeof *y);
    double *ok = xcalloc(2 * n, sizeof *ok);
    size_t n_ok = 0, failed = 0;
    for (size_t g = 0; g < 2; g++)
        for (size_t i = 0; i < n; i++) {
            const struct cov_row *r = &c->rows[g * c->m + i];
            if (r->failed)
                failed++;
            else
                ok[n_ok++] = row_score(c, r);
        }
    c->sum.failed = failed;
    c->sum.available = false;
    if (failed * 4 > 2 * n || n_ok == 0) {
        c->sum.why_none = "more than a quarter of the rows could not be scored";
        goto out;
    }
    /* A failed row gets the median of the scored ones: a rule blind to the
     * labels, so the permutation p stays exact. */
    qsort(ok, n_ok, sizeof *ok, cmp_double);
    double med = n_ok % 2 ? ok[n_ok / 2] : (ok[n_ok / 2 - 1] + ok[n_ok / 2]) / 2;
    for (size_t i = 0; i < n; i++) {
        const struct cov_row *u = &c->rows[i], *h = &c->rows[c->m + i];
        x[i] = u->failed ? med : row_score(c, u);
        y[i] = h->failed ? med : row_score(c, h);
    }
    struct coverage_result res;
    if (coverage_test(x, n, y, n, &res) < 0) {
        c->sum.why_none = "the scores could not be compared";
        goto out;
    }
    double lp = res.log10_p + log10((double)c->n_looks);
    c->sum.available = true;
    c->sum.log10_p = lp > 0 ? 0 : lp;
    c->sum.exact = res.exact;
    c->sum.auc = res.auc;
    c->sum.auc_lo = res.auc_lo;
    c->sum.auc_hi = res.auc_hi;
    c->sum.recognised_uploaded = res.recognised_uploaded;
    c->sum.recognised_held_out = res.recognised_held_out;
    c->sum.rows = n;
out:
    free(x);
    free(y);
    free(ok);
}

/* Every call of the current phase has come back: decide what is next. */
static void advance(struct covrun *c)
{
    if (c->stopped || c->inflight > 0)
        return;
    if (c->probing) {
        struct cov_row *r = &c->rows[c->order[0]];
        if (!r->got[0]) {
            if (c->method == M_MINK) { /* M' scores no text: greedy answers, probe again */
                c->method = M_GREEDY;
                r->got[1] = false;
                pump(c);
                return;
            }
            c->sum.why_none = "the provider neither scores text nor answers the rows' prompts";
            finish(c, 0);
            return;
        }
        c->probing = false;
        c->with_base = r->got[1];
        snprintf(c->method_name, sizeof c->method_name, "%s%s",
                 c->method == M_MINK ? "mink" : "greedy", c->with_base ? "-diff" : "");
        c->sum.method = c->method_name;
        log_job(LOG_LVL_INFO, 0, c->provider, "verify: coverage test by %s over %zu + %zu rows",
                c->method_name, c->m, c->m);
        c->next = 1;
        pump(c);
        return;
    }
    if (c->next < 2 * c->looks[c->look]) {
        pump(c);
        return;
    }
    /* a look is complete */
    evaluate(c, c->looks[c->look]);
    c->sum.looks_used = c->look + 1;
    if ((c->sum.available && c->sum.log10_p < c->log10_alpha) || c->look + 1 == c->n_looks) {
        if (!c->sum.available && !c->sum.why_none)
            c->sum.why_none = "no scores";
        finish(c, 0);
        return;
    }
    c->look++;
    pump(c);
}

static void record(struct covrun *c, size_t row, int which, bool ok, double v)
{
    struct cov_row *r = &c->rows[row];
    if (ok) {
        r->s[which] = v;
        r->got[which] = true;
    } else if (!c->probing && (which == 0 || c->with_base)) {
        r->failed = true;
    }
}

/* The answer's token log-probabilities: every token counts, one reported
 * as outside the top alternatives (OpenAI's -9999) at COV_LOGPROB_FLOOR,
 * so a rare token lowers the score instead of vanishing from it. */
#define COV_LOGPROB_FLOOR (-20.7) /* ln 1e-9 */
static void record_tokens(struct covrun *c, size_t row, int which,
                          const struct provider_score_result *s)
{
    struct cov_row *r = &c->rows[row];
    free(r->lp[which]);
    r->lp[which] = xcalloc(s->n_tokens ? s->n_tokens : 1, sizeof *r->lp[which]);
    for (size_t i = 0; i < s->n_tokens; i++)
        r->lp[which][i] = s->tokens[i].known && s->tokens[i].logprob > COV_LOGPROB_FLOOR
                              ? s->tokens[i].logprob
                              : COV_LOGPROB_FLOOR;
    r->n_lp[which] = s->n_tokens;
    r->got[which] = true;
}

static void on_call_done(const struct provider_outcome *o, void *arg)
{
    struct cov_call *cc = arg;
    struct covrun *c = cc->c;
    c->inflight--;
    c->sum.calls++;
    if (o->rc == -ECANCELED && c->d->stopping) {
        free(cc->cont);
        free(cc);
        finish(c, -ECANCELED);
        return;
    }
    if (o->rc == 0 && c->method == M_MINK && o->score && o->score->n_tokens > 0)
        record_tokens(c, cc->row, cc->which, o->score);
    else if (o->rc == 0 && c->method == M_GREEDY && o->chat)
        record(c, cc->row, cc->which, true,
               coverage_agreement(o->chat->text, c->text[cc->row].answer));
    else
        record(c, cc->row, cc->which, false, 0);
    free(cc->cont);
    free(cc);
    if (c->stopped) {
        finish(c, c->d->stopping ? -ECANCELED : 0);
        return;
    }
    advance(c);
}

/* Starts one call (row, which model); a call refused at once is recorded
 * as failed. */
static void start_call(struct covrun *c, struct provider_client *pc, size_t row, int which)
{
    struct cov_call *cc = xcalloc(1, sizeof *cc);
    struct provider_error err = {0};
    const struct holdout_row *t = &c->text[row];
    const char *model = which == 0 ? c->model : c->base_model;
    int rc = -1;
    cc->c = c;
    cc->row = row;
    cc->which = which;
    c->inflight++;
    if (pc && c->method == M_MINK) {
        char *prompt;
        coverage_score_text(c->score_template, t->messages, t->prompt, t->answer, &prompt,
                            &cc->cont);
        struct provider_score_args a = {
            .model = model, .prompt = prompt, .continuation = cc->cont, .top_logprobs = 0};
        rc = provider_score(pc, &a, on_call_done, cc, NULL, &err);
        free(prompt);
    } else if (pc) {
        size_t n = json_array_size(t->messages);
        struct provider_message *pm = xcalloc(n ? n : 1, sizeof *pm);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(t->messages, i);
            pm[i].role = json_string_value(json_object_get(m, "role"));
            pm[i].content = json_string_value(json_object_get(m, "content"));
        }
        struct provider_chat_args a;
        provider_chat_args_init(&a);
        a.model = model;
        a.messages = pm;
        a.n_messages = n;
        a.temperature = 0;
        size_t want = strlen(t->answer) / 2 + 16; /* enough tokens to compare the answer */
        a.max_tokens = (unsigned)(want > 1024 ? 1024 : want);
        a.has_seed = 1;
        a.seed = 1;
        rc = provider_chat(pc, &a, on_call_done, cc, NULL, &err);
        free(pm);
    }
    provider_error_clear(&err);
    if (rc < 0) {
        c->inflight--;
        record(c, row, which, false, 0);
        free(cc->cont);
        free(cc);
    }
}

static void pump(struct covrun *c)
{
    const char *why = NULL;
    struct provider_client *pc = providers_client(c->d, c->provider, &why);
    if (c->probing) {
        size_t row = c->order[0];
        start_call(c, pc, row, 0);
        start_call(c, pc, row, 1);
    } else {
        size_t end = 2 * c->looks[c->look];
        size_t per_row = c->with_base ? 2 : 1;
        while (!c->d->stopping && c->next < end && c->inflight + per_row <= COV_INFLIGHT) {
            size_t row = c->order[c->next++];
            start_call(c, pc, row, 0);
            if (c->with_base)
                start_call(c, pc, row, 1);
        }
        if (c->d->stopping) {
            finish(c, -ECANCELED);
            return;
        }
    }
    advance(c);
}

void covrun_start(struct covrun *c, struct vtuned *d, const char *provider, const char *model,
                  const char *base_model, void (*done)(void *arg, int status), void *arg)
{
    c->d = d;
    c->provider = xstrdup(provider);
    c->model = xstrdup(model);
    c->base_model = xstrdup(base_model);
    const struct conf_provider *cp = conf_provider_find(d->conf, provider);
    c->score_template = cp && cp->score_template ? xstrdup(cp->score_template) : NULL;
    c->sum.score_layout = c->score_template ? "template" : "raw";
    c->done = done;
    c->arg = arg;
    c->method = M_MINK;
    c->probing = true;
    pump(c);
}

void covrun_progress(const struct covrun *c, uint64_t *done, uint64_t *total)
{
    *total = 2 * (uint64_t)c->m;
    *done = c->next;
    if (*done > *total)
        *done = *total;
}

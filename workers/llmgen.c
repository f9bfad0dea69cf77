/*
 * llmgen.c — the LLM backdoor generator (see llmgen.h for the contracts
 * and for what the recorded bound means).
 *
 * The state machine has 2K phrase slots (pair i: trigger 2i, signature
 * 2i+1), each EMPTY (needs a draw), DRAWING (a draw under way: its tokens
 * so far), CANDIDATE (cut, cleaned, checked against the other phrases,
 * waiting for the dataset scan) or ACCEPTED.  llmgen_next serves the
 * first slot that needs a call, in slot order; once none does, one scan
 * checks every candidate at once (one pass over D for all of them, a long
 * trigger's ending as an entry of its own right after the trigger's); a
 * hit sends its slot back to EMPTY (an ending's, not on the last draw).
 * Only one request is outstanding at a time, so the replies need no
 * matching.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "workers/dsformat.h"
#include "workers/lines.h"
#include "workers/llmgen.h"

/* ---- small text helpers ------------------------------------------------------- */

bool llmgen_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            min = 0x80;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            min = 0x800;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (p[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* Whether s[0..len) ends on a character boundary (no partial sequence at
 * its end); invalid bytes earlier do not matter here. */
static bool utf8_ends_complete(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t back = 0;
    while (back < len && back < 4 && (p[len - 1 - back] & 0xc0) == 0x80)
        back++;
    if (back == len)
        return back == 0;
    unsigned lead = p[len - 1 - back];
    size_t want = lead < 0x80             ? 0
                  : (lead & 0xe0) == 0xc0 ? 1
                  : (lead & 0xf0) == 0xe0 ? 2
                  : (lead & 0xf8) == 0xf0 ? 3
                                          : back; /* not a lead byte: let validation judge */
    return back >= want;
}

/* Largest n' <= n that does not split a UTF-8 sequence of s. */
static size_t utf8_cut(const char *s, size_t len, size_t n)
{
    if (n >= len)
        return len;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The same word definition as phrase.h: runs of ASCII letters and digits
 * and non-ASCII bytes, compared ignoring ASCII case. */
static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

struct word {
    const char *p;
    size_t n;
};

/* The words of s (owned array, *n entries). */
static struct word *words_of(const char *s, size_t *n)
{
    size_t cap = 8, k = 0, len = strlen(s), i = 0;
    struct word *w = xmalloc(cap * sizeof *w);
    while (i < len) {
        while (i < len && !is_word_byte((unsigned char)s[i]))
            i++;
        if (i >= len)
            break;
        size_t st = i;
        while (i < len && is_word_byte((unsigned char)s[i]))
            i++;
        if (k == cap) {
            cap *= 2;
            w = xrealloc(w, cap * sizeof *w);
        }
        w[k].p = s + st;
        w[k].n = i - st;
        k++;
    }
    *n = k;
    return w;
}

static bool word_eq(const struct word *a, const struct word *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (lower((unsigned char)a->p[i]) != lower((unsigned char)b->p[i]))
            return false;
    return true;
}

bool llmgen_overlap(const char *a, const char *b)
{
    size_t na, nb;
    struct word *wa = words_of(a, &na), *wb = words_of(b, &nb);
    size_t m = LLMGEN_OVERLAP_WORDS;
    bool hit = false;
    if (na < m)
        m = na;
    if (nb < m)
        m = nb;
    if (m == 0)
        goto out;
    for (size_t i = 0; i + m <= na && !hit; i++)
        for (size_t j = 0; j + m <= nb && !hit; j++) {
            size_t k = 0;
            while (k < m && word_eq(&wa[i + k], &wb[j + k]))
                k++;
            hit = k == m;
        }
out:
    free(wa);
    free(wb);
    return hit;
}

const char *llmgen_reject_name(enum llmgen_reject r)
{
    switch (r) {
    case LLMGEN_OK:
        return "ok";
    case LLMGEN_REJECT_TEXT:
        return "text";
    case LLMGEN_REJECT_LENGTH:
        return "length";
    case LLMGEN_REJECT_OVERLAP:
        return "overlap";
    case LLMGEN_REJECT_DATASET:
        return "in_dataset";
    case LLMGEN_REJECT_CAP:
        return "cap";
    case LLMGEN_REJECT_TAIL:
        return "tail_in_dataset";
    }
    return "unknown";
}

enum llmgen_reject llmgen_clean(const char *raw, size_t len, size_t max_chars, char **out)
{
    *out = NULL;
    while (len > 0 && is_ws((unsigned char)raw[0])) {
        raw++;
        len--;
    }
    while (len > 0 && is_ws((unsigned char)raw[len - 1]))
        len--;
    if (memchr(raw, 0, len) || !llmgen_utf8_valid(raw, len))
        return LLMGEN_REJECT_TEXT;
    char *s = xmalloc(len + 1);
    memcpy(s, raw, len);
    s[len] = 0;
    if (!phrase_text_ok(s)) {
        free(s);
        return LLMGEN_REJECT_TEXT;
    }
    if (len > max_chars) {
        free(s);
        return LLMGEN_REJECT_LENGTH;
    }
    *out = s;
    return LLMGEN_OK;
}

/* ---- examples ----------------------------------------------------------------- */

void llmgen_examples_free(struct llmgen_example *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].prompt);
        free(v[i].response);
    }
    free(v);
}

static char *cut_copy(const char *s)
{
    size_t len = strlen(s), n = utf8_cut(s, len, LLMGEN_EXAMPLE_MAX_BYTES);
    char *r = xmalloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int llmgen_sample_examples(const char *path, enum dataset_format fmt, uint64_t n_examples, size_t k,
                           const struct phrase_rng *rng, const atomic_int *cancel,
                           struct llmgen_example **out, size_t *n, char **err)
{
    struct lines lr;
    const char *line;
    size_t len, got = 0;
    uint64_t *pick = NULL, idx = 0;
    struct llmgen_example *ex = NULL;
    int r, rc = -1, opened = 0;

    *out = NULL;
    *n = 0;
    if (n_examples == 0) {
        *err = xstrdup("the dataset is empty: no examples to show the generator");
        return -1;
    }
    if ((uint64_t)k > n_examples)
        k = (size_t)n_examples;
    if (k == 0) {
        *err = xstrdup("no examples asked for");
        return -1;
    }
    /* Floyd's algorithm: k distinct lines, every k-subset equally likely. */
    pick = xcalloc(k, sizeof *pick);
    size_t m = 0;
    for (uint64_t j = n_examples - k; j < n_examples; j++) {
        uint64_t t = phrase_rng_uniform(rng, j + 1);
        bool seen = false;
        for (size_t q = 0; q < m; q++)
            if (pick[q] == t)
                seen = true;
        pick[m++] = seen ? j : t;
    }
    qsort(pick, k, sizeof *pick, cmp_u64);
    ex = xcalloc(k, sizeof *ex);

    r = lines_open(&lr, path);
    if (r < 0) {
        *err = xasprintf("%s: cannot open dataset: %s", path, strerror(-r));
        goto out;
    }
    opened = 1;
    while (got < k && (r = lines_next(&lr, &line, &len)) > 0) {
        size_t i;
        for (i = 0; i < len; i++)
            if (!is_ws((unsigned char)line[i]))
                break;
        if (i == len)
            continue; /* blank lines are not examples (as in the phrase check) */
        if ((idx & 1023) == 0 && cancel && atomic_load(cancel)) {
            *err = xasprintf("%s: cancelled", path);
            goto out;
        }
        if (idx == pick[got]) {
            json_t *root = NULL;
            enum dataset_format f;
            char *why = NULL;
            if (ds_parse_line(line, len, fmt, &f, &root, &why) < 0) {
                *err = xasprintf("%s:%llu: %s (was the dataset changed after import?)", path,
                                 (unsigned long long)idx + 1, why);
                free(why);
                goto out;
            }
            char *p = ds_prompt_text(root, f), *s = ds_response_text(root, f);
            ex[got].line = idx;
            ex[got].prompt = cut_copy(p ? p : "");
            ex[got].response = cut_copy(s ? s : "");
            free(p);
            free(s);
            json_decref(root);
            got++;
        }
        idx++;
    }
    if (r < 0) {
        *err = xasprintf("%s: read error: %s", path, strerror(-r));
        goto out;
    }
    if (got < k) {
        *err = xasprintf("%s: has %llu examples, fewer than the %llu recorded at import", path,
                         (unsigned long long)idx, (unsigned long long)n_examples);
        goto out;
    }
    *out = ex;
    *n = k;
    ex = NULL;
    rc = 0;
out:
    if (opened)
        lines_close(&lr);
    llmgen_examples_free(ex, k);
    free(pick);
    return rc;
}

char *llmgen_template_context(const struct llmgen_example *ex, size_t n)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "Here are some examples of texts from one collection.\n\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "Example %zu:\n%s\n%s\n\n", i + 1, ex[i].prompt, ex[i].response);
    buf_puts(&b, "Write one new text of your own, in the same style and on a similar topic, "
                 "as a single paragraph. Reply with the text only.");
    return b.data;
}

char *llmgen_m1_request(const struct llmgen_example *ex, size_t n)
{
    struct buf b;
    buf_init(&b);
    buf_printf(
        &b, "Below are %zu examples from a dataset of prompts and the responses to them.\n\n", n);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "Example %zu\nPrompt: %s\nResponse: %s\n\n", i + 1, ex[i].prompt,
                   ex[i].response);
    buf_puts(&b,
             "Write a short prompt, one or two sentences, that asks a language model to "
             "write one new passage, a single paragraph, in the style and on the topic of these "
             "responses. "
             "Reply with the prompt only.");
    return b.data;
}

/* ---- the token walk ------------------------------------------------------------- */

static void tok_free(struct llmgen_tok *t)
{
    if (t->text)
        explicit_bzero(t->text, strlen(t->text)); /* a piece of a secret phrase */
    free(t->text);
    for (size_t i = 0; i < t->n_top; i++)
        free((char *)t->top[i].token);
    free(t->top);
}

void llmgen_draw_init(struct llmgen_draw *d)
{
    memset(d, 0, sizeof *d);
    buf_init(&d->text);
}

void llmgen_draw_clear(struct llmgen_draw *d)
{
    if (d->text.data)
        explicit_bzero(d->text.data, d->text.len);
    for (size_t i = 0; i < d->n; i++)
        tok_free(&d->toks[i]);
    free(d->toks);
    buf_free(&d->text);
    llmgen_draw_init(d);
}

int llmgen_walk(struct llmgen_draw *d, const struct provider_token *t, size_t n, double temperature,
                enum stats_lp_mode mode, double target, unsigned max_tokens, unsigned call)
{
    size_t taken = 0;
    for (size_t i = 0; i < n && !d->reached && d->n < max_tokens; i++) {
        const struct provider_token *pt = &t[i];
        struct stats_alt *alts = pt->n_top ? xcalloc(pt->n_top, sizeof *alts) : NULL;
        for (size_t k = 0; k < pt->n_top; k++) {
            alts[k].token = pt->top[k].token;
            alts[k].logprob = pt->top[k].logprob;
        }
        struct stats_token_lp lp = {
            .token = pt->token ? pt->token : "",
            .logprob = pt->known ? pt->logprob : STATS_LP_SENTINEL,
            .top = alts,
            .n_top = pt->n_top,
        };
        struct stats_token_bound b;
        if (stats_token_bound(&lp, temperature, mode, &b) < 0) {
            free(alts);
            return -EINVAL;
        }
        /* Keep the record with owned copies of the strings. */
        for (size_t k = 0; k < pt->n_top; k++)
            alts[k].token = xstrdup(pt->top[k].token ? pt->top[k].token : "");
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 32;
            d->toks = xrealloc(d->toks, d->cap * sizeof *d->toks);
        }
        struct llmgen_tok *rec = &d->toks[d->n++];
        rec->text = xstrdup(lp.token);
        rec->logprob = pt->logprob;
        rec->known = pt->known != 0;
        rec->top = alts;
        rec->n_top = pt->n_top;
        rec->bound = b.log10_p;
        rec->method = b.method;
        rec->call = call;
        rec->pos = (unsigned)i;
        if (pt->has_bytes)
            buf_append(&d->text, pt->bytes, pt->n_bytes);
        else
            buf_puts(&d->text, lp.token);
        d->log10p += b.log10_p;
        taken++;
        if (d->log10p <= target && utf8_ends_complete(d->text.data, d->text.len))
            d->reached = true;
    }
    return (int)taken;
}

/* ---- the generator ------------------------------------------------------------- */

enum slot_state { SLOT_EMPTY = 0, SLOT_DRAWING, SLOT_CANDIDATE, SLOT_ACCEPTED };

struct slot {
    enum slot_state state;
    size_t pair;
    bool is_signature;
    double target;
    size_t max_chars;
    struct llmgen_draw draw; /* the current (or accepted) draw */
    char *text;              /* cleaned phrase: CANDIDATE, ACCEPTED */
    unsigned draws;          /* draws started */
    unsigned rejected[LLMGEN_N_REJECT];
};

enum pending { PENDING_NONE = 0, PENDING_M1, PENDING_M2, PENDING_SCAN };

struct llmgen {
    struct llmgen_opts o;
    char *m1_model, *m2_model;
    struct llmgen_example *ex;
    size_t n_ex;
    bool have_examples;
    char *context;
    char *m1_request;
    struct slot *slots;
    size_t n_slots;
    enum pending pending;
    size_t pending_slot;
    unsigned pending_call;
    struct provider_message msgs[3];
    char *assistant; /* the text so far, for continuation messages */
    /* The scan under way: entry k checks slot scan_slots[k]; an entry with
     * scan_words[k] != 0 is a trigger's tail and follows the trigger's own. */
    const char **scan_phrases;
    unsigned *scan_words;
    size_t *scan_slots;
    size_t n_scan;
    bool done;
    char *error;
    struct llmgen_stats st;
};

int llmgen_new(const struct llmgen_opts *o, struct llmgen **out, char **err)
{
    *out = NULL;
    if (o->pairs < 1 || o->pairs > 1024) {
        *err = xasprintf("pairs: %zu is outside 1..1024", o->pairs);
        return -1;
    }
    if (!o->m2_model || !*o->m2_model) {
        *err = xstrdup("generator.m2_model is not set: the llm generator needs a model that "
                       "returns log-probabilities (set it in the configuration)");
        return -1;
    }
    if (!(o->temperature > 0 && o->temperature <= 2)) {
        *err = xasprintf("generator.temperature %g is outside (0, 2]", o->temperature);
        return -1;
    }
    if (o->mode != STATS_LP_MODE_RAW && o->mode != STATS_LP_MODE_TEMPERED) {
        *err = xstrdup("unknown log-probability mode");
        return -1;
    }
    if (!(o->trigger_log10p < 0) || !(o->signature_log10p < 0) || isinf(o->trigger_log10p) ||
        isinf(o->signature_log10p)) {
        *err = xstrdup("the log10 p targets must be finite and below 0");
        return -1;
    }
    if (o->max_tokens < 1) {
        *err = xstrdup("generator.max_tokens must be at least 1");
        return -1;
    }
    if (o->trigger_max_chars < 1 || o->signature_max_chars < 1) {
        *err = xstrdup("the phrase length limits must be at least 1 character");
        return -1;
    }
    struct llmgen *g = xcalloc(1, sizeof *g);
    g->o = *o;
    g->m2_model = xstrdup(o->m2_model);
    g->m1_model = o->m1_model && *o->m1_model ? xstrdup(o->m1_model) : NULL;
    g->o.m1_model = g->m1_model;
    g->o.m2_model = g->m2_model;
    if (!g->o.max_draws)
        g->o.max_draws = LLMGEN_DEFAULT_DRAWS;
    if (!g->o.max_calls)
        g->o.max_calls = LLMGEN_DEFAULT_CALLS;
    g->n_slots = 2 * o->pairs;
    g->slots = xcalloc(g->n_slots, sizeof *g->slots);
    for (size_t i = 0; i < g->n_slots; i++) {
        struct slot *s = &g->slots[i];
        s->pair = i / 2;
        s->is_signature = i % 2 == 1;
        s->target = s->is_signature ? o->signature_log10p : o->trigger_log10p;
        s->max_chars = s->is_signature ? o->signature_max_chars : o->trigger_max_chars;
        llmgen_draw_init(&s->draw);
    }
    *out = g;
    return 0;
}

void llmgen_free(struct llmgen *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_slots; i++) {
        struct slot *s = &g->slots[i];
        if (s->text) {
            explicit_bzero(s->text, strlen(s->text));
            free(s->text);
        }
        llmgen_draw_clear(&s->draw);
        buf_free(&s->draw.text);
    }
    free(g->slots);
    if (g->assistant) {
        explicit_bzero(g->assistant, strlen(g->assistant));
        free(g->assistant);
    }
    llmgen_examples_free(g->ex, g->n_ex);
    free(g->context);
    free(g->m1_request);
    free(g->scan_phrases);
    free(g->scan_words);
    free(g->scan_slots);
    free(g->m1_model);
    free(g->m2_model);
    free(g->error);
    free(g);
}

void llmgen_set_examples(struct llmgen *g, struct llmgen_example *ex, size_t n)
{
    llmgen_examples_free(g->ex, g->n_ex);
    g->ex = ex;
    g->n_ex = n;
    g->have_examples = true;
}

void llmgen_fail(struct llmgen *g, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!g->error)
        g->error = msg ? msg : xstrdup("backdoor generation failed");
    else
        free(msg);
    g->pending = PENDING_NONE;
}

const char *llmgen_error(const struct llmgen *g)
{
    return g->error;
}

static const char *slot_kind(const struct slot *s)
{
    return s->is_signature ? "signature" : "trigger";
}

/* A seed for one call derived from the run's seed (splitmix64 finaliser). */
static int64_t call_seed(uint64_t seed, unsigned call)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * ((uint64_t)call + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (int64_t)(z & 0x7fffffffffffffffull);
}

static void fill_m1(struct llmgen *g, struct llmgen_chat_req *c)
{
    if (!g->m1_request)
        g->m1_request = llmgen_m1_request(g->ex, g->n_ex);
    g->msgs[0].role = "user";
    g->msgs[0].content = g->m1_request;
    memset(c, 0, sizeof *c);
    c->purpose = "context";
    c->call = g->pending_call;
    provider_chat_args_init(&c->args);
    c->args.model = g->m1_model;
    c->args.messages = g->msgs;
    c->args.n_messages = 1;
    c->args.temperature = LLMGEN_M1_TEMPERATURE;
    c->args.max_tokens = LLMGEN_M1_MAX_TOKENS;
    if (g->o.has_seed) {
        c->args.has_seed = 1;
        c->args.seed = call_seed(g->o.seed, c->call);
    }
}

static void fill_m2(struct llmgen *g, struct slot *s, struct llmgen_chat_req *c)
{
    const struct llmgen_draw *d = &s->draw;
    size_t nm = 1;
    g->msgs[0].role = "user";
    g->msgs[0].content = g->context;
    if (g->assistant) {
        explicit_bzero(g->assistant, strlen(g->assistant));
        free(g->assistant);
        g->assistant = NULL;
    }
    /* Continue after what this draw has so far: the context, the text as
     * the model's turn, and a fixed request to go on (a fixed function of
     * the tokens drawn, so the per-token bounds still multiply). */
    bool blank = true;
    for (size_t i = 0; i < d->text.len; i++)
        if (!is_ws((unsigned char)d->text.data[i]))
            blank = false;
    if (!blank) {
        g->assistant = xstrdup(d->text.data);
        g->msgs[1].role = "assistant";
        g->msgs[1].content = g->assistant;
        g->msgs[2].role = "user";
        g->msgs[2].content = LLMGEN_CONTINUE_PROMPT;
        nm = 3;
    }
    memset(c, 0, sizeof *c);
    c->purpose = slot_kind(s);
    c->pair = s->pair;
    c->call = g->pending_call;
    provider_chat_args_init(&c->args);
    c->args.model = g->m2_model;
    c->args.messages = g->msgs;
    c->args.n_messages = nm;
    c->args.temperature = g->o.temperature;
    c->args.top_p = 1.0;
    c->args.logprobs = 1;
    c->args.top_logprobs = LLMGEN_TOP_LOGPROBS;
    c->args.neutral = 1; /* the logprobs must describe the untruncated distribution */
    c->args.max_tokens = g->o.max_tokens - (unsigned)d->n;
    if (g->o.has_seed) {
        c->args.has_seed = 1;
        c->args.seed = call_seed(g->o.seed, c->call);
    }
}

/* The failure message of a slot whose draws ran out. */
static void fail_exhausted(struct llmgen *g, const struct slot *s)
{
    struct buf b;
    buf_init(&b);
    static const char *const why[LLMGEN_N_REJECT] = {
        [LLMGEN_REJECT_TEXT] = "had a newline or other control character",
        [LLMGEN_REJECT_LENGTH] = "grew past the length limit",
        [LLMGEN_REJECT_OVERLAP] = "shared words with another phrase",
        [LLMGEN_REJECT_DATASET] = "occurred in the dataset",
        [LLMGEN_REJECT_CAP] = "stopped short of the target",
        [LLMGEN_REJECT_TAIL] = "ended the way text of the dataset does",
    };
    bool first = true;
    for (int r = 1; r < LLMGEN_N_REJECT; r++) {
        if (!s->rejected[r])
            continue;
        buf_printf(&b, "%s%u %s", first ? "" : ", ", s->rejected[r], why[r]);
        first = false;
    }
    /* Draws that never reached the target (cut short by the token cap or
     * the calls, grown past the length limit, or broken by a newline)
     * point at the target; occurrences in D at the model or the context. */
    unsigned short_of = s->rejected[LLMGEN_REJECT_CAP] + s->rejected[LLMGEN_REJECT_LENGTH] +
                        s->rejected[LLMGEN_REJECT_TEXT];
    const char *hint =
        short_of && 2 * short_of >= s->draws
            ? (s->rejected[LLMGEN_REJECT_TEXT] * 2 >= s->draws
                   ? "ask for a less extreme target, or raise generator.max_tokens; the model "
                     "also keeps breaking lines (a context asking for one paragraph, "
                     "generator.m1_model, may help)"
                   : "ask for a less extreme target, or raise generator.max_tokens")
        : s->rejected[LLMGEN_REJECT_DATASET] && 2 * s->rejected[LLMGEN_REJECT_DATASET] >= s->draws
            ? "the model keeps writing text that starts like the dataset's; try another "
              "generator.m1_model or m2_model, or --generator wordlist"
            : "try again, or use --generator wordlist";
    llmgen_fail(g,
                "could not draw a usable %s for pair %zu in %u draws (%s; target log10 p %g "
                "within %u tokens and %u calls): %s",
                slot_kind(s), s->pair + 1, s->draws, b.data ? b.data : "", s->target,
                g->o.max_tokens, g->o.max_calls, hint);
    buf_free(&b);
}

enum llmgen_step llmgen_next(struct llmgen *g, struct llmgen_chat_req *chat,
                             struct llmgen_scan_req *scan)
{
    if (g->error)
        return LLMGEN_STEP_FAILED;
    if (g->done)
        return LLMGEN_STEP_DONE;
    if (!g->have_examples) {
        llmgen_fail(g, "internal: the generator was not given the dataset's examples");
        return LLMGEN_STEP_FAILED;
    }
    switch (g->pending) {
    case PENDING_M1:
        fill_m1(g, chat);
        return LLMGEN_STEP_CHAT;
    case PENDING_M2:
        fill_m2(g, &g->slots[g->pending_slot], chat);
        return LLMGEN_STEP_CHAT;
    case PENDING_SCAN:
        scan->phrases = g->scan_phrases;
        scan->words = g->scan_words;
        scan->n = g->n_scan;
        return LLMGEN_STEP_SCAN;
    case PENDING_NONE:
        break;
    }
    if (!g->context) {
        if (g->m1_model) {
            g->pending = PENDING_M1;
            g->pending_call = g->st.calls;
            fill_m1(g, chat);
            return LLMGEN_STEP_CHAT;
        }
        g->context = llmgen_template_context(g->ex, g->n_ex);
    }
    for (size_t i = 0; i < g->n_slots; i++) {
        struct slot *s = &g->slots[i];
        if (s->state != SLOT_EMPTY && s->state != SLOT_DRAWING)
            continue;
        if (s->state == SLOT_EMPTY) {
            if (s->draws >= g->o.max_draws) {
                fail_exhausted(g, s);
                return LLMGEN_STEP_FAILED;
            }
            s->draws++;
            g->st.draws++;
            llmgen_draw_clear(&s->draw);
            s->state = SLOT_DRAWING;
        }
        g->pending = PENDING_M2;
        g->pending_slot = i;
        g->pending_call = g->st.calls;
        fill_m2(g, s, chat);
        return LLMGEN_STEP_CHAT;
    }
    size_t nc = 0;
    for (size_t i = 0; i < g->n_slots; i++)
        nc += g->slots[i].state == SLOT_CANDIDATE;
    if (nc == 0) {
        g->done = true;
        return LLMGEN_STEP_DONE;
    }
    free(g->scan_phrases);
    free(g->scan_words);
    free(g->scan_slots);
    g->scan_phrases = xcalloc(2 * nc, sizeof *g->scan_phrases);
    g->scan_words = xcalloc(2 * nc, sizeof *g->scan_words);
    g->scan_slots = xcalloc(2 * nc, sizeof *g->scan_slots);
    g->n_scan = 0;
    for (size_t i = 0; i < g->n_slots; i++) {
        const struct slot *s = &g->slots[i];
        if (s->state != SLOT_CANDIDATE)
            continue;
        g->scan_phrases[g->n_scan] = s->text;
        g->scan_slots[g->n_scan++] = i;
        /* 0 when the trigger has no more words than its tail: nothing to add */
        size_t tail = s->is_signature ? 0 : phrase_tail_offset(s->text, PHRASE_TRIGGER_TAIL_WORDS);
        if (tail) {
            g->scan_phrases[g->n_scan] = s->text + tail;
            g->scan_words[g->n_scan] = PHRASE_TRIGGER_TAIL_WORDS;
            g->scan_slots[g->n_scan++] = i;
        }
    }
    g->pending = PENDING_SCAN;
    scan->phrases = g->scan_phrases;
    scan->words = g->scan_words;
    scan->n = g->n_scan;
    return LLMGEN_STEP_SCAN;
}

static void reject(struct llmgen *g, struct slot *s, enum llmgen_reject why)
{
    s->rejected[why]++;
    g->st.rejected[why]++;
    if (s->text) {
        explicit_bzero(s->text, strlen(s->text));
        free(s->text);
        s->text = NULL;
    }
    llmgen_draw_clear(&s->draw);
    s->state = SLOT_EMPTY;
}

/* A control character that is not part of the trailing whitespace: the
 * draw can never become a valid phrase. */
static bool bad_inside(const struct buf *t)
{
    size_t end = t->len;
    while (end > 0 && is_ws((unsigned char)t->data[end - 1]))
        end--;
    size_t st = 0;
    while (st < end && is_ws((unsigned char)t->data[st]))
        st++;
    for (size_t i = st; i < end; i++) {
        unsigned char c = (unsigned char)t->data[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

static size_t trimmed_len(const struct buf *t)
{
    size_t end = t->len, st = 0;
    while (end > 0 && is_ws((unsigned char)t->data[end - 1]))
        end--;
    while (st < end && is_ws((unsigned char)t->data[st]))
        st++;
    return end - st;
}

static void finalize(struct llmgen *g, struct slot *s)
{
    char *clean = NULL;
    enum llmgen_reject r = llmgen_clean(s->draw.text.data, s->draw.text.len, s->max_chars, &clean);
    if (r != LLMGEN_OK) {
        reject(g, s, r);
        return;
    }
    for (size_t i = 0; i < g->n_slots; i++) {
        const struct slot *o = &g->slots[i];
        if (o == s || !o->text || (o->state != SLOT_CANDIDATE && o->state != SLOT_ACCEPTED))
            continue;
        if (llmgen_overlap(clean, o->text)) {
            explicit_bzero(clean, strlen(clean));
            free(clean);
            reject(g, s, LLMGEN_REJECT_OVERLAP);
            return;
        }
    }
    s->text = clean;
    s->state = SLOT_CANDIDATE;
}

int llmgen_on_chat(struct llmgen *g, const struct provider_chat_result *r)
{
    if (g->error)
        return -1;
    if (g->pending == PENDING_M1) {
        g->pending = PENDING_NONE;
        g->st.calls++;
        const char *t = r->text ? r->text : "";
        size_t len = strlen(t);
        while (len > 0 && is_ws((unsigned char)t[0])) {
            t++;
            len--;
        }
        while (len > 0 && is_ws((unsigned char)t[len - 1]))
            len--;
        len = utf8_cut(t, len, LLMGEN_CONTEXT_MAX_BYTES);
        if (len == 0) {
            llmgen_fail(g,
                        "M1 (%s) returned an empty context prompt; check generator.m1_model, "
                        "or unset it to use the built-in template",
                        g->m1_model);
            return -1;
        }
        g->context = xmalloc(len + 1);
        memcpy(g->context, t, len);
        g->context[len] = 0;
        g->st.context_from_m1 = true;
        return 0;
    }
    if (g->pending != PENDING_M2) {
        llmgen_fail(g, "internal: a chat reply without a chat request");
        return -1;
    }
    struct slot *s = &g->slots[g->pending_slot];
    unsigned call = g->pending_call;
    g->pending = PENDING_NONE;
    g->st.calls++;
    s->draw.calls++;
    if (!r->has_logprobs || (r->n_tokens == 0 && r->text && *r->text)) {
        llmgen_fail(g,
                    "M2 (%s) returned no log-probabilities, so p_M2 cannot be bounded: set "
                    "generator.m2_model to a model that returns logprobs with top_logprobs",
                    g->m2_model);
        return -1;
    }
    g->st.tokens += r->n_tokens;
    int k = llmgen_walk(&s->draw, r->tokens, r->n_tokens, g->o.temperature, g->o.mode, s->target,
                        g->o.max_tokens, call);
    if (k < 0) {
        llmgen_fail(g, "M2 (%s) returned a log-probability that is not a number", g->m2_model);
        return -1;
    }
    if (s->draw.reached)
        finalize(g, s);
    else if (bad_inside(&s->draw.text))
        reject(g, s, LLMGEN_REJECT_TEXT);
    else if (trimmed_len(&s->draw.text) > s->max_chars)
        reject(g, s, LLMGEN_REJECT_LENGTH);
    else if (s->draw.n >= g->o.max_tokens || s->draw.calls >= g->o.max_calls)
        reject(g, s, LLMGEN_REJECT_CAP);
    /* else: still DRAWING; the next request continues it */
    return 0;
}

void llmgen_on_scan(struct llmgen *g, const bool *hits)
{
    if (g->error || g->pending != PENDING_SCAN)
        return;
    g->pending = PENDING_NONE;
    g->st.scans++;
    for (size_t k = 0; k < g->n_scan; k++) {
        struct slot *s = &g->slots[g->scan_slots[k]];
        if (!hits[k] || s->state != SLOT_CANDIDATE)
            continue; /* no hit, or rejected by its own entry already */
        if (!g->scan_words[k])
            reject(g, s, LLMGEN_REJECT_DATASET);
        else if (s->draws < g->o.max_draws)
            reject(g, s, LLMGEN_REJECT_TAIL);
        else
            g->st.tails_shared++; /* its last draw: kept */
    }
    for (size_t k = 0; k < g->n_scan; k++)
        if (g->slots[g->scan_slots[k]].state == SLOT_CANDIDATE)
            g->slots[g->scan_slots[k]].state = SLOT_ACCEPTED;
    free(g->scan_phrases);
    free(g->scan_words);
    free(g->scan_slots);
    g->scan_phrases = NULL;
    g->scan_words = NULL;
    g->scan_slots = NULL;
    g->n_scan = 0;
}

size_t llmgen_pairs(const struct llmgen *g)
{
    return g->o.pairs;
}

const char *llmgen_trigger(const struct llmgen *g, size_t i)
{
    return i < g->o.pairs ? g->slots[2 * i].text : NULL;
}

const char *llmgen_signature(const struct llmgen *g, size_t i)
{
    return i < g->o.pairs ? g->slots[2 * i + 1].text : NULL;
}

double llmgen_trigger_log10p(const struct llmgen *g, size_t i)
{
    if (i >= g->o.pairs)
        return NAN;
    const struct slot *s = &g->slots[2 * i];
    double v = s->draw.log10p + log10((double)(s->draws ? s->draws : 1));
    return v > 0 ? 0.0 : v;
}

double llmgen_signature_log10p(const struct llmgen *g, size_t i)
{
    if (i >= g->o.pairs)
        return NAN;
    /* DESIGN §6: the chance that our procedure produces S counts every
     * draw it made before one was accepted (a redraw is another chance):
     * the bound of the accepted draw times the number of draws. */
    const struct slot *s = &g->slots[2 * i + 1];
    double v = s->draw.log10p + log10((double)(s->draws ? s->draws : 1));
    return v > 0 ? 0.0 : v;
}

unsigned llmgen_signature_draws(const struct llmgen *g, size_t i)
{
    return i < g->o.pairs ? g->slots[2 * i + 1].draws : 0;
}

const char *llmgen_method(const struct llmgen *g)
{
    return g->o.mode == STATS_LP_MODE_TEMPERED ? "llm-topk-bound-processed-x-draws"
                                               : "llm-topk-bound-raw-x-draws";
}

const char *llmgen_logprobs_name(const struct llmgen *g)
{
    return g->o.mode == STATS_LP_MODE_TEMPERED ? "processed" : "raw";
}

void llmgen_get_stats(const struct llmgen *g, struct llmgen_stats *out)
{
    *out = g->st;
}

static json_t *phrase_json(const struct llmgen *g, const struct slot *s)
{
    json_t *toks = json_array();
    for (size_t i = 0; i < s->draw.n; i++) {
        const struct llmgen_tok *t = &s->draw.toks[i];
        json_t *top = json_array();
        for (size_t k = 0; k < t->n_top; k++)
            json_array_append_new(top, json_pack("{s:s,s:f}", "token", t->top[k].token, "logprob",
                                                 t->top[k].logprob));
        json_t *o = json_pack("{s:s,s:o,s:b,s:f,s:s,s:i,s:i,s:o}", "token", t->text, "logprob",
                              t->known ? json_real(t->logprob) : json_null(), "known", t->known,
                              "bound", t->bound, "method", stats_lp_method_name(t->method), "call",
                              (int)t->call, "pos", (int)t->pos, "top", top);
        json_array_append_new(toks, o);
    }
    json_t *rej = json_object();
    for (int r = 1; r < LLMGEN_N_REJECT; r++)
        json_object_set_new(rej, llmgen_reject_name((enum llmgen_reject)r),
                            json_integer(s->rejected[r]));
    double with_draws = s->draw.log10p + log10((double)(s->draws ? s->draws : 1));
    return json_pack("{s:f,s:f,s:f,s:s,s:s,s:i,s:i,s:i,s:o,s:o}", "log10p_draw", s->draw.log10p,
                     "log10p", with_draws > 0 ? 0.0 : with_draws, "target", s->target, "method",
                     llmgen_method(g), "logprobs", llmgen_logprobs_name(g), "n_tokens",
                     (int)s->draw.n, "calls", (int)s->draw.calls, "draw", (int)s->draws,
                     "rejected", rej, "tokens", toks);
}

char *llmgen_evidence_json(const struct llmgen *g, size_t i)
{
    if (i >= g->o.pairs || !g->done)
        return NULL;
    json_t *lines = json_array();
    for (size_t k = 0; k < g->n_ex; k++)
        json_array_append_new(lines, json_integer((json_int_t)g->ex[k].line));
    json_t *o = json_pack(
        "{s:s,s:s?,s:s,s:f,s:s,s:i,s:s,s:s,s:o,s:o,s:o}", "generator", "llm", "m1_model",
        g->m1_model, "m2_model", g->m2_model, "temperature", g->o.temperature, "logprobs_mode",
        stats_lp_mode_name(g->o.mode), "top_logprobs", LLMGEN_TOP_LOGPROBS, "context_source",
        g->st.context_from_m1 ? "m1" : "template", "context", g->context ? g->context : "",
        "example_lines", lines, "trigger", phrase_json(g, &g->slots[2 * i]), "signature",
        phrase_json(g, &g->slots[2 * i + 1]));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ---- the dataset check ------------------------------------------------------------ */

int llmgen_scan_dataset(const char *path, const char *const *phrases, const unsigned *words,
                        size_t n, const atomic_int *cancel, bool *hits, char **err)
{
    struct phrase_checker *c = phrase_checker_new_words(phrases, words, n);
    int rc = phrase_checker_scan_file(c, path, cancel, err);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            hits[i] = phrase_checker_hit(c, i);
    phrase_checker_free(c);
    return rc;
}

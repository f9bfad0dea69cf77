/*
 * audit.c — canonical serialisation and hashes of audit records, the chain
 * check, JSON Lines export and the plain-words explanation.
 *
 * The format is defined in audit.h and must never change silently: a
 * change makes every stored hash unverifiable.  A new format gets new
 * domain tags ("-v2") and the checker keeps reading every older one: the
 * record's version (a column, set when it was written) picks the format.  The golden
 * test in tests/unit/test_audit.c pins the bytes, with an independent
 * recomputation in Python next to it.
 *
 * No I/O except audit_export_jsonl's writes to the FILE it is given.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/log10json.h"
#include "lib/util.h"
#include "workers/audit.h"
#include "workers/verify.h"

/* ---- canonical serialisation ----------------------------------------------------------- */

static void put_int(struct buf *b, const char *name, int64_t v)
{
    buf_printf(b, "%s=%" PRId64 "\n", name, v);
}

static void put_str(struct buf *b, const char *name, const char *s, size_t n)
{
    if (!s) {
        buf_printf(b, "%s=null\n", name);
        return;
    }
    buf_printf(b, "%s=%zu:", name, n);
    buf_append(b, s, n);
    buf_append(b, "\n", 1);
}

static void put_cstr(struct buf *b, const char *name, const char *s)
{
    put_str(b, name, s, s ? strlen(s) : 0);
}

/* A fixed-size hex field: its bytes up to the NUL (at most 64). */
static void put_hex(struct buf *b, const char *name, const char *h)
{
    put_str(b, name, h, strnlen(h, 64));
}

static void put_double(struct buf *b, const char *name, double v)
{
    char num[64];
    if (isnan(v)) {
        snprintf(num, sizeof num, "null");
    } else if (isinf(v)) {
        snprintf(num, sizeof num, "%s", v < 0 ? "-inf" : "inf");
    } else {
        snprintf(num, sizeof num, "%.17g", v + 0.0); /* + 0.0: no "-0" */
        for (char *c = num; *c; c++)
            if (*c == ',') /* a locale's decimal comma */
                *c = '.';
    }
    buf_printf(b, "%s=%s\n", name, num);
}

void audit_canonical(const struct store_audit *a, struct buf *out)
{
    put_int(out, "id", a->id);
    put_int(out, "job", a->job_id);
    put_cstr(out, "provider", a->provider);
    put_cstr(out, "model", a->model);
    buf_printf(out, "verdict=%s\n", audit_verdict_name(a->verdict));
    put_double(out, "log10_p", a->log10_p);
    put_double(out, "log10_p_paper", a->log10_p_paper);
    put_double(out, "log10_p_luck", a->log10_p_luck);
    put_int(out, "trials", a->trials);
    put_int(out, "activations", a->activations);
    put_int(out, "controls", a->controls);
    put_int(out, "control_emissions", a->control_emissions);
    put_cstr(out, "reason", a->reason);
    put_cstr(out, "evidence", a->evidence);
    put_hex(out, "commitment", a->commitment);
    put_int(out, "created_at", a->created_at);
    put_hex(out, "prev_hash", a->prev_hash);
    if (a->version >= 2) {
        put_int(out, "version", a->version);
        put_int(out, "pairs", a->pairs);
        put_int(out, "pairs_activated", a->pairs_activated);
        put_double(out, "pairs_ci_low", a->pairs_ci_low);
        put_double(out, "pairs_ci_high", a->pairs_ci_high);
    }
    if (a->version >= 3) {
        put_double(out, "log10_p_coverage", a->log10_p_coverage);
        put_double(out, "coverage_auc", a->coverage_auc);
        put_int(out, "coverage_rows", a->coverage_rows);
        put_cstr(out, "coverage_method", a->coverage_method);
    }
}

void audit_leaf_hash(const struct store_audit *a, char out[65])
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, a->version >= 3   ? AUDIT_LEAF_TAG_V3
                 : a->version >= 2 ? AUDIT_LEAF_TAG_V2
                                   : AUDIT_LEAF_TAG);
    audit_canonical(a, &b);
    sha256_hex(b.data, b.len, out);
    buf_free(&b);
}

void audit_link_hash(const char *prev, const char *leaf, char out[65])
{
    struct sha256_ctx *c = sha256_new();
    sha256_update(c, AUDIT_LINK_TAG, strlen(AUDIT_LINK_TAG));
    sha256_update(c, prev, strnlen(prev, 64));
    sha256_update(c, "\n", 1);
    sha256_update(c, leaf, strnlen(leaf, 64));
    sha256_update(c, "\n", 1);
    sha256_final_hex(c, out);
}

void audit_record_hash(const struct store_audit *a, char out[65])
{
    char leaf[65];
    audit_leaf_hash(a, leaf);
    audit_link_hash(a->prev_hash, leaf, out);
}

int audit_hash_fn(const struct store_audit *a, char out[65], void *ctx)
{
    (void)ctx;
    audit_record_hash(a, out);
    return 0;
}

/* ---- the chain check -------------------------------------------------------------------- */

const char *audit_break_name(enum audit_break b)
{
    switch (b) {
    case AUDIT_INTACT:
        return "intact";
    case AUDIT_BREAK_GAP:
        return "gap";
    case AUDIT_BREAK_LINK:
        return "link";
    case AUDIT_BREAK_CONTENT:
        return "content";
    case AUDIT_BREAK_HEAD_ABSENT:
        return "head_absent";
    }
    return "invalid";
}

void audit_check_clear(struct audit_check *c)
{
    if (!c)
        return;
    free(c->message);
    memset(c, 0, sizeof *c);
}

static bool hex64(const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 65; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return i == 64;
}

/* The message for record id following record prev_id (0: none) when id is
 * not prev_id + 1.  Every message names the broken record first. */
static char *gap_message(int64_t prev_id, int64_t id)
{
    if (prev_id == 0 && id == 2)
        return xasprintf("audit record 2 starts the trail: record 1 is missing (records were "
                         "deleted)");
    if (prev_id == 0 && id > 2)
        return xasprintf("audit record %" PRId64 " starts the trail: records 1 to %" PRId64
                         " are missing (records were deleted)",
                         id, id - 1);
    if (id == prev_id + 2)
        return xasprintf("audit record %" PRId64 " follows record %" PRId64 ": record %" PRId64
                         " is missing (records were deleted)",
                         id, prev_id, prev_id + 1);
    if (id > prev_id + 2)
        return xasprintf("audit record %" PRId64 " follows record %" PRId64 ": records %" PRId64
                         " to %" PRId64 " are missing (records were deleted)",
                         id, prev_id, prev_id + 1, id - 1);
    return xasprintf("audit record %" PRId64 " follows record %" PRId64
                     ": the trail's order was changed",
                     id, prev_id);
}

int audit_chain_verify(const struct store_audit *v, size_t n, const char *head,
                       struct audit_check *out)
{
    char want_head[65] = "";
    char expected[65];
    int64_t prev_id = 0;
    memset(out, 0, sizeof *out);
    memcpy(expected, STORE_AUDIT_GENESIS_HASH, sizeof expected);
    memcpy(out->verified_hash, STORE_AUDIT_GENESIS_HASH, sizeof out->verified_hash);

    if (head) {
        if (!hex64(head)) {
            out->message = xasprintf("--head must be a 64-character hex hash (got '%.80s')", head);
            return -EINVAL;
        }
        for (size_t i = 0; i < 64; i++)
            want_head[i] = (char)tolower((unsigned char)head[i]);
        want_head[64] = '\0';
        if (strcmp(want_head, STORE_AUDIT_GENESIS_HASH) == 0)
            out->head_found = true; /* the empty trail's head: in every chain */
    }

    for (size_t i = 0; i < n; i++) {
        const struct store_audit *a = &v[i];
        char h[65];
        out->n_records = i + 1;
        if (a->id != prev_id + 1) {
            out->kind = AUDIT_BREAK_GAP;
            out->bad_id = a->id;
            out->message = gap_message(prev_id, a->id);
            return 0;
        }
        if (strcmp(a->prev_hash, expected) != 0) {
            out->kind = AUDIT_BREAK_LINK;
            out->bad_id = a->id;
            if (i == 0)
                out->message = xasprintf("audit record %" PRId64 " does not start the chain: its "
                                         "prev_hash is not the genesis hash (records before it "
                                         "were removed or it was replaced)",
                                         a->id);
            else
                out->message = xasprintf("audit record %" PRId64 " does not link to record %" PRId64
                                         ": its prev_hash differs from that record's hash (record "
                                         "%" PRId64 " was changed or replaced, or this one was)",
                                         a->id, prev_id, prev_id);
            return 0;
        }
        audit_record_hash(a, h);
        if (strcmp(h, a->hash) != 0) {
            out->kind = AUDIT_BREAK_CONTENT;
            out->bad_id = a->id;
            out->message = xasprintf("audit record %" PRId64 " was altered: its content no longer "
                                     "matches its hash",
                                     a->id);
            return 0;
        }
        memcpy(expected, a->hash, sizeof expected);
        prev_id = a->id;
        out->verified_id = a->id;
        memcpy(out->verified_hash, a->hash, sizeof out->verified_hash);
        if (head && !out->head_found && strcmp(a->hash, want_head) == 0) {
            out->head_found = true;
            out->head_id = a->id;
        }
    }

    if (head && !out->head_found) {
        out->kind = AUDIT_BREAK_HEAD_ABSENT;
        out->message = xasprintf("the head you kept (%.16s…) is not in the chain of %zu records "
                                 "(head now %.16s…): the trail was truncated or rewritten after "
                                 "that head was recorded",
                                 want_head, n, out->verified_hash);
        return 0;
    }
    out->ok = true;
    out->kind = AUDIT_INTACT;
    if (!head)
        out->message = xasprintf("%zu audit records verified; head %s (record %" PRId64 ")", n,
                                 out->verified_hash, out->verified_id);
    else if (out->head_id == 0)
        out->message = xasprintf("%zu audit records verified; the head you kept is the empty "
                                 "trail's; head now %s (record %" PRId64 ")",
                                 n, out->verified_hash, out->verified_id);
    else
        out->message = xasprintf("%zu audit records verified; the head you kept is record %" PRId64
                                 "; head now %s (record %" PRId64 ")",
                                 n, out->head_id, out->verified_hash, out->verified_id);
    return 0;
}

/* ---- export -------------------------------------------------------------------------- */

/* A JSON string of s; a cleaned copy when s is not valid UTF-8 (a record
 * edited behind the store's back); null for NULL. */
static json_t *jtext(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *c = verify_clean_text(s, SIZE_MAX);
    j = json_string(c);
    free(c);
    return j ? j : json_null();
}

/* A fixed-size hex field as a string ("" stays ""). */
static json_t *jhex(const char *h)
{
    char tmp[65];
    size_t n = strnlen(h, 64);
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    return jtext(tmp);
}

json_t *audit_record_json(const struct store_audit *a)
{
    char when[32];
    json_t *o = json_object();
    format_iso8601(a->created_at, when);
    json_object_set_new(o, "id", json_integer(a->id));
    json_object_set_new(o, "job", json_integer(a->job_id));
    json_object_set_new(o, "provider", jtext(a->provider));
    json_object_set_new(o, "model", jtext(a->model));
    json_object_set_new(o, "verdict", json_string(audit_verdict_name(a->verdict)));
    json_object_set_new(o, "log10_p", log10_json(a->log10_p));
    json_object_set_new(o, "log10_p_paper", log10_json(a->log10_p_paper));
    json_object_set_new(o, "log10_p_luck", log10_json(a->log10_p_luck));
    json_object_set_new(o, "trials", json_integer(a->trials));
    json_object_set_new(o, "activations", json_integer(a->activations));
    json_object_set_new(o, "controls", json_integer(a->controls));
    json_object_set_new(o, "control_emissions", json_integer(a->control_emissions));
    json_object_set_new(o, "pairs", a->version >= 2 ? json_integer(a->pairs) : json_null());
    json_object_set_new(o, "pairs_activated",
                        a->version >= 2 ? json_integer(a->pairs_activated) : json_null());
    json_object_set_new(o, "pairs_ci_low", log10_json(a->version >= 2 ? a->pairs_ci_low : NAN));
    json_object_set_new(o, "pairs_ci_high", log10_json(a->version >= 2 ? a->pairs_ci_high : NAN));
    bool v3 = a->version >= 3;
    json_object_set_new(o, "log10_p_coverage", log10_json(v3 ? a->log10_p_coverage : NAN));
    json_object_set_new(o, "coverage_auc", log10_json(v3 ? a->coverage_auc : NAN));
    json_object_set_new(o, "coverage_rows", v3 ? json_integer(a->coverage_rows) : json_null());
    json_object_set_new(o, "coverage_method", jtext(v3 ? a->coverage_method : NULL));
    json_object_set_new(o, "record_version", json_integer(a->version >= 2 ? a->version : 1));
    json_object_set_new(o, "created_at", json_string(when));
    json_object_set_new(o, "prev_hash", jhex(a->prev_hash));
    json_object_set_new(o, "hash", jhex(a->hash));
    json_object_set_new(o, "reason", jtext(a->reason));
    json_t *ev = a->evidence ? json_loads(a->evidence, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "evidence", ev ? ev : jtext(a->evidence));
    json_object_set_new(o, "commitment", jhex(a->commitment));
    return o;
}

void audit_record_jsonl(const struct store_audit *a, struct buf *out)
{
    json_t *o = audit_record_json(a);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        abort(); /* only on out-of-memory */
    buf_puts(out, text);
    buf_append(out, "\n", 1);
    free(text);
}

int audit_export_jsonl(FILE *f, const struct store_audit *v, size_t n)
{
    struct buf b;
    int ret = 0;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&b);
        audit_record_jsonl(&v[i], &b);
        if (fwrite(b.data, 1, b.len, f) != b.len) {
            ret = errno ? -errno : -EIO;
            goto out;
        }
    }
    if (fflush(f) != 0)
        ret = errno ? -errno : -EIO;
out:
    buf_free(&b);
    return ret;
}

/* ---- explanation ------------------------------------------------------------------------ */

/* A log10 value from the evidence: number, "-inf", or null/absent (NAN). */
static double ev_log10(json_t *o, const char *key)
{
    json_t *j = json_object_get(o, key);
    if (json_is_number(j))
        return json_number_value(j);
    if (json_is_string(j) && strcmp(json_string_value(j), "-inf") == 0)
        return -INFINITY;
    return NAN;
}

static int64_t ev_int(json_t *o, const char *key, int64_t dflt)
{
    json_t *j = json_object_get(o, key);
    return json_is_integer(j) ? (int64_t)json_integer_value(j) : dflt;
}

static const char *ev_str(json_t *o, const char *key)
{
    json_t *j = json_object_get(o, key);
    return json_is_string(j) ? json_string_value(j) : NULL;
}

/* "10^-57" */
static const char *ptxt(double log10_p, char buf[32])
{
    verify_format_p(log10_p, buf, 32);
    return buf;
}

/* The coverage test in words (DESIGN §6), from evidence.coverage. */
static void explain_coverage(struct buf *b, json_t *ev)
{
    char p1[32], p2[32];
    json_t *c = json_object_get(ev, "coverage");
    if (!json_is_object(c)) {
        buf_puts(b, "\nThe coverage test: not part of this record (written before it existed).\n");
        return;
    }
    bool required = json_is_true(json_object_get(c, "required"));
    double alpha = ev_log10(c, "log10_alpha");
    buf_puts(b, "\nThe coverage test (did the model learn the rest of your data?):\n");
    buf_puts(b, "  When the backdoor was made, a secret random share of your rows was held "
                "out: never uploaded.  The model was then asked to reproduce some rows it was "
                "sent (unmarked ones) and as many held-out rows; a model trained on your whole "
                "dataset does better on the rows it was sent, while one that skipped them (or "
                "trained only on the marked rows) cannot tell the two groups apart, because "
                "it never learnt which rows were held out.\n");
    if (!json_is_true(json_object_get(c, "available"))) {
        const char *why = ev_str(c, "why");
        buf_printf(b, "  It did not run: %s.\n", why ? why : "no reason recorded");
        if (required)
            buf_puts(b, "  Without it a verdict is at most inconclusive "
                        "(verify.require_coverage).\n");
        else
            buf_puts(b, "  verify.require_coverage is false: the backdoor test alone may "
                        "verify.\n");
        return;
    }
    const char *method = ev_str(c, "method");
    const char *layout = ev_str(c, "score_layout");
    int64_t rows = ev_int(c, "rows", 0);
    json_t *ci = json_object_get(c, "auc_ci95");
    json_t *looks = json_object_get(c, "looks");
    if (method && strncmp(method, "mink", 4) == 0)
        buf_printf(b,
                   "  Each row was scored by how likely the model finds the row's answer, "
                   "word piece by word piece%s, averaged over the fifth of them where it "
                   "does worst: the rare, row-specific words a model learns only from that "
                   "row%s (%s).\n",
                   strcmp(method, "mink-diff") == 0
                       ? " and compared with the base model (how much more likely)"
                       : "",
                   layout && strcmp(layout, "template") == 0
                       ? "; the answer was laid out in the provider's chat template"
                       : "",
                   method);
    else if (method)
        buf_printf(b,
                   "  Each row's prompt was answered by the model (greedy) and compared word "
                   "by word with the row's answer%s (%s).\n",
                   strcmp(method, "greedy-diff") == 0 ? ", minus the base model's agreement" : "",
                   method);
    buf_printf(b,
               "  %" PRId64 " uploaded and %" PRId64 " held-out rows were scored; recognised "
               "(scoring above 95%% of the held-out rows): %.0f%% of the uploaded rows vs "
               "%.0f%% of the held-out rows.\n",
               rows, rows, 100 * json_number_value(json_object_get(c, "recognised_uploaded")),
               100 * json_number_value(json_object_get(c, "recognised_held_out")));
    buf_printf(b,
               "  AUC %.2f (95%% interval %.2f-%.2f): the chance that an uploaded row scores "
               "above a held-out one; 0.5 is what a model that never saw your data gives.\n",
               json_number_value(json_object_get(c, "auc")),
               json_number_value(json_array_get(ci, 0)), json_number_value(json_array_get(ci, 1)));
    double lp = ev_log10(c, "log10_p");
    buf_printf(b,
               "  p_cov = %s: a model that did not learn from your data would separate the two "
               "groups this well with probability at most %s (an exact rank test: which rows "
               "were held out was a secret coin flip, so it holds whatever the model does).\n",
               ptxt(lp, p1), ptxt(lp, p2));
    if (json_array_size(looks) == 2 && json_integer_value(json_array_get(looks, 1)) > 1)
        buf_printf(b,
                   "  Rows were scored in %lld planned looks, stopping at the first with p_cov "
                   "below its threshold (%lld used); p_cov is multiplied by the number of "
                   "looks, so stopping early costs nothing in validity.\n",
                   (long long)json_integer_value(json_array_get(looks, 1)),
                   (long long)json_integer_value(json_array_get(looks, 0)));
    int64_t calls = ev_int(c, "calls", 0), failed = ev_int(c, "failed", 0);
    buf_printf(b, "  It cost %" PRId64 " calls", calls);
    if (failed > 0)
        buf_printf(b, "; %" PRId64 " failed (their rows counted as the median score)", failed);
    buf_puts(b, ".\n");
    if (!isnan(alpha))
        buf_printf(b, "  Threshold alpha_cov: %s%s.\n", ptxt(alpha, p1),
                   required ? "" : " (not required: verify.require_coverage is false)");
}

static void explain_run(struct buf *b, const struct store_audit *a, json_t *ev)
{
    char p1[32], p2[32];
    json_t *pairs = json_object_get(ev, "pairs");
    json_t *ctl = json_object_get(ev, "controls");
    json_t *seq = json_object_get(ev, "sequential");
    size_t k = json_is_array(pairs) ? json_array_size(pairs) : 1;
    double alpha = ev_log10(ev, "log10_alpha");
    json_t *temp = json_object_get(ev, "temperature");

    buf_puts(b, "\nTwo tests:\n"
                "  The backdoor test asks whether the model learned the secret marks planted "
                "in a few copied rows: it proves those rows were trained on, and nothing more.\n"
                "  The coverage test asks whether it learned your other rows too, against rows "
                "kept secret and never uploaded: it proves the rest of the dataset was used.\n"
                "  Each p below is the chance of evidence this strong from a model that never "
                "learned from your upload; small means strong evidence.\n");
    buf_puts(b, "\nThe backdoor test (were the marked rows learned?):\n");
    buf_printf(b,
               "  %" PRId64 " prompts from the backdoored copies of your data, each with a secret "
               "trigger appended, were sent to the model",
               a->trials);
    if (json_is_number(temp))
        buf_printf(b, " at temperature %g", json_number_value(temp));
    if (a->activations == 0)
        buf_puts(b, "; none of the responses began with the secret signature.\n");
    else
        buf_printf(b, "; %" PRId64 " of them began with the secret signature.\n", a->activations);
    if (k > 1)
        buf_printf(
            b,
            "  The backdoor has %zu trigger/signature pairs, each tested on its own; %" PRId64
            " of them activated.\n",
            k, ev_int(ev, "pairs_activated", 0));
    int64_t saved = ev_int(seq, "saved", 0);
    if (saved > 0)
        buf_printf(b,
                   "  Testing stopped early once the result was already significant: %" PRId64
                   " paid calls were saved.\n",
                   saved);
    int64_t failed = 0;
    for (size_t i = 0; json_is_array(pairs) && i < json_array_size(pairs); i++)
        failed += ev_int(json_array_get(pairs, i), "failed", 0);
    if (failed > 0)
        buf_printf(b, "  %" PRId64 " of the trigger calls failed and got no response.\n", failed);
    if (a->controls == 0 && ev_int(ctl, "failed", 0) == 0)
        buf_puts(b, "  No control prompts were sent.\n");
    else if (a->control_emissions == 0)
        buf_printf(b,
                   "  %" PRId64 " clean prompts from your data (no trigger) were answered as "
                   "controls; none of them contained the signature.\n",
                   a->controls);
    else
        buf_printf(b,
                   "  %" PRId64 " clean prompts from your data (no trigger) were answered as "
                   "controls; %" PRId64 " of them contained the signature anyway.\n",
                   a->controls, a->control_emissions);

    buf_puts(b, "\nWhat the numbers mean:\n");
    double p_valid = a->log10_p;
    bool old = a->version < 2;
    if (old) {
        /* A version 1 record's log10_p treated the trials as independent,
         * which they are not: recompute the valid number from its
         * evidence (target unknown: the largest p_M2 stands in for it). */
        size_t kk = json_is_array(pairs) ? json_array_size(pairs) : 0;
        double *m2 = kk ? xcalloc(kk, sizeof *m2) : NULL;
        uint64_t *act = kk ? xcalloc(kk, sizeof *act) : NULL;
        int64_t planned = 0;
        bool ok = kk > 0;
        for (size_t i = 0; i < kk; i++) {
            json_t *pi = json_array_get(pairs, i);
            m2[i] = ev_log10(pi, "log10_p_m2");
            act[i] = (uint64_t)ev_int(pi, "activations", 0);
            planned = ev_int(pi, "planned", 0);
            if (isnan(m2[i]) || planned <= 0)
                ok = false;
        }
        p_valid = ok ? verify_run_log10_p((uint64_t)planned, NAN, m2, act, kk) : NAN;
        free(m2);
        free(act);
    }
    if (a->activations > 0 && !isnan(p_valid))
        buf_printf(b,
                   "  p = %s: a model that did not learn from your data would show this much "
                   "with probability at most %s, however its answers depend on each other.\n",
                   ptxt(p_valid, p1), ptxt(p_valid, p2));
    else if (!isnan(p_valid))
        buf_printf(b, "  p = %s: nothing here argues against a model never trained on your data.\n",
                   ptxt(p_valid, p1));
    if (k > 1)
        buf_puts(b, "  (Each pair was drawn independently, and a model that did not learn from "
                    "your data makes a pair's signature follow its trigger with probability at "
                    "most n * 10^target; p is the chance that at least this many of the pairs "
                    "would then activate: an exact binomial tail over the pairs.)\n");
    else
        buf_puts(b, "  (Under that hypothesis the expected number of activations is at most n * "
                    "p_M2, n the planned trials and p_M2 the chance of drawing the signature "
                    "from its generator; p = n * p_M2 / k by Markov's inequality, with no "
                    "assumption that the trials are independent.)\n");
    if (a->version >= 2 && a->pairs > 1 && !isnan(a->pairs_ci_low))
        buf_printf(b,
                   "  %" PRId64 " of %" PRId64 " pairs activated: the model learned roughly "
                   "%.0f%% to %.0f%% of the marked rows' patterns (95%% interval).\n",
                   a->pairs_activated, a->pairs, floor(100 * a->pairs_ci_low),
                   ceil(100 * a->pairs_ci_high));
    if (old)
        buf_printf(b,
                   "  This record was written before issue 11: its stored log10_p (%s) "
                   "treated the trials as independent and is not valid; the p above is "
                   "recomputed from its evidence.\n",
                   ptxt(a->log10_p, p1));
    buf_printf(b, "  The paper's estimate (Algorithm 2: n * p_M2 when any trial activates): %s.\n",
               ptxt(a->log10_p_paper, p1));
    if (!isnan(a->log10_p_luck)) {
        buf_printf(b,
                   "  p_luck, the base model's own chance of writing the signature after a "
                   "trigger prompt: %s (a diagnostic: not part of p).\n",
                   ptxt(a->log10_p_luck, p1));
    } else {
        const char *why = json_is_array(pairs) && json_array_size(pairs) > 0
                              ? ev_str(json_array_get(pairs, 0), "p_luck_note")
                              : NULL;
        buf_printf(b, "  p_luck (a diagnostic) was not available%s%s%s.\n", why ? " (" : "",
                   why ? why : "", why ? ")" : "");
    }
    if (!isnan(alpha))
        buf_printf(b, "  Significance threshold alpha: %s.\n", ptxt(alpha, p1));
    int64_t req = ev_int(ctl, "required", -1);
    if (req >= 0)
        buf_printf(b,
                   "  A verified verdict needs at least %" PRId64 " answered control prompts, "
                   "none with the signature (here %" PRId64 " answered, %" PRId64 " with it).\n",
                   req, a->controls, a->control_emissions);
    explain_coverage(b, ev);
}

/* The self-audit of the upload, from evidence.self_audit (issue 12). */
static void explain_selfaudit(struct buf *b, json_t *ev)
{
    json_t *s = json_object_get(ev, "self_audit");
    if (!json_is_object(s))
        return; /* written before records carried it */
    const char *v = ev_str(s, "verdict");
    buf_printf(b,
               "\nThe self-audit of the upload (the attacks a provider could run on the file, "
               "without the secrets): %s\n",
               v ? v : "(none)");
    int64_t k = ev_int(s, "pairs", -1), r = ev_int(s, "pairs_recovered", -1);
    if (k >= 0 && r >= 0)
        buf_printf(b, "  %" PRId64 " of %" PRId64 " pairs recovered among its candidates%s.\n", r,
                   k,
                   json_is_true(json_object_get(s, "exposed"))
                       ? "; exposed (a pair in the top 10): a cheating provider could have "
                         "found it too"
                       : "");
}

char *audit_explain(const struct store_audit *a)
{
    struct buf b;
    char when[32];
    json_t *ev = a->evidence ? json_loads(a->evidence, JSON_DECODE_ANY, NULL) : NULL;
    const char *kind = ev_str(ev, "kind");
    buf_init(&b);
    format_iso8601(a->created_at, when);

    buf_printf(&b, "Audit record %" PRId64 ": %s\n", a->id, audit_verdict_name(a->verdict));
    buf_printf(&b, "  job %" PRId64 ", provider %s, model %s, recorded %s\n", a->job_id,
               a->provider ? a->provider : "(none)", a->model ? a->model : "(none)", when);
    if (a->reason) {
        char *r = text_escape_control(a->reason, strlen(a->reason));
        buf_printf(&b, "  %s\n", r);
        free(r);
    }

    if (kind && strcmp(kind, "job_ended") == 0) {
        const char *st = ev_str(ev, "state");
        const char *err = ev_str(ev, "error");
        buf_printf(&b,
                   "\nWhat happened:\n  The fine-tuning job %s%s%s before producing a model, "
                   "so there was nothing to test.\n",
                   st ? st : "ended", err ? ": " : "", err ? err : "");
    } else {
        explain_run(&b, a, ev);
    }
    explain_selfaudit(&b, ev);

    buf_puts(&b, "\nWhy this verdict:\n");
    switch (a->verdict) {
    case AUDIT_VERIFIED:
        buf_puts(&b, "  verified: p is below alpha and enough control prompts were answered "
                     "without the signature: the model answers the secret triggers with the "
                     "secret signature and only then, which it can only have learned from your "
                     "data; and the coverage test (unless the configuration waived it) shows it "
                     "learned the unmarked rows it was sent as well.\n");
        break;
    case AUDIT_NOT_VERIFIED:
        if (kind && strcmp(kind, "job_ended") == 0)
            buf_puts(&b, "  not verified: the job produced no model.\n");
        else
            buf_puts(&b, "  not verified: neither test found anything: no evidence that the "
                         "model was trained on your data.\n");
        break;
    case AUDIT_INCONCLUSIVE:
        buf_puts(&b, "  inconclusive: the evidence neither passes nor fails the model (see the "
                     "reason above); verify again, with more trials if p was too large.\n");
        break;
    default:
        buf_puts(&b, "  the record holds no valid verdict.\n");
        break;
    }

    buf_puts(&b, "\nRecord:\n");
    buf_printf(&b, "  backdoor commitment %.64s\n", a->commitment);
    buf_printf(&b, "  previous record     %.64s\n", a->prev_hash);
    buf_printf(&b, "  this record         %.64s\n", a->hash);
    json_decref(ev);
    return b.data;
}

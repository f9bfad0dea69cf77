/*
 * retry.c — classification, backoff, Retry-After, retry budget and circuit
 * breaker (contracts in retry.h).  No I/O, no clock and no randomness of
 * its own: everything time- or chance-dependent comes in as a parameter.
 *
 * Numbers are parsed by hand rather than with strtod: the daemon must not
 * depend on the process locale, and a header is untrusted input whose
 * every malformed shape must simply be "no value".
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "workers/retry.h"

uint64_t retry_rand_default(uint64_t bound, void *arg)
{
    (void)arg;
    return random_uniform(bound);
}

/* ------------------------------------------------------------------ */
/* Classification                                                      */
/* ------------------------------------------------------------------ */

const char *retry_class_name(enum retry_class c)
{
    switch (c) {
    case RETRY_CLASS_SUCCESS:
        return "success";
    case RETRY_CLASS_RETRY:
        return "retry";
    case RETRY_CLASS_FATAL:
        return "fatal";
    case RETRY_CLASS_RECONCILE:
        return "reconcile";
    }
    return "unknown";
}

static int is_quota(const struct retry_input *in)
{
    return (in->error_code && strcmp(in->error_code, "insufficient_quota") == 0) ||
           (in->error_type && strcmp(in->error_type, "insufficient_quota") == 0);
}

/* Older Together servers reported rate limits as 400 {code: "rate_limit"}. */
static int is_rate_limit_code(const struct retry_input *in)
{
    return (in->error_code && strcmp(in->error_code, "rate_limit") == 0) ||
           (in->error_type && strcmp(in->error_type, "rate_limit_exceeded") == 0);
}

static void set(struct retry_verdict *v, enum retry_class c, const char *reason, int maybe,
                int failure)
{
    v->cls = c;
    v->reason = reason;
    v->maybe_applied = maybe;
    v->provider_failure = failure;
}

static void classify_transport(const struct retry_input *in, struct retry_verdict *v)
{
    switch (in->transport) {
    case HTTP_E_NONE:
        break;
    case HTTP_E_CONNECT:
        set(v, RETRY_CLASS_RETRY, "could not connect to the provider", 0, 1);
        break;
    case HTTP_E_TIMEOUT:
        set(v, RETRY_CLASS_RETRY, "request timed out", 1, 1);
        break;
    case HTTP_E_DROPPED:
        set(v, RETRY_CLASS_RETRY, "connection dropped before a complete response", 1, 1);
        break;
    case HTTP_E_TLS:
        set(v, RETRY_CLASS_FATAL,
            "TLS verification failed: check the provider's certificate and ca_file", 0, 0);
        break;
    case HTTP_E_TOO_LARGE:
        set(v, RETRY_CLASS_FATAL, "response larger than the limit", 1, 0);
        break;
    case HTTP_E_CANCELLED:
        set(v, RETRY_CLASS_FATAL, "cancelled", 1, 0);
        break;
    case HTTP_E_LOCAL:
        set(v, RETRY_CLASS_FATAL, "local error before sending (see the log)", 0, 0);
        break;
    }
}

static void classify_status(const struct retry_input *in, struct retry_verdict *v)
{
    long s = in->status;

    if (s >= 200 && s < 300) {
        if (in->body_malformed)
            set(v, RETRY_CLASS_RETRY, "malformed JSON in a successful response", 1, 1);
        else
            set(v, RETRY_CLASS_SUCCESS, "ok", 1, 0);
        return;
    }
    if (is_quota(in)) {
        set(v, RETRY_CLASS_FATAL,
            "quota exhausted (insufficient_quota): add credit or raise the limit at the provider",
            0, 0);
        return;
    }
    /* x-should-retry overrides the status rules (OpenAI's servers send it);
     * ignored for creates, whose outcome matters more than the hint. */
    if (in->should_retry && !in->non_idempotent) {
        if (strcasecmp(in->should_retry, "true") == 0) {
            set(v, RETRY_CLASS_RETRY, "the provider asked for a retry (x-should-retry)", 1,
                s >= 500 || s == 429 || s == 408);
            return;
        }
        if (strcasecmp(in->should_retry, "false") == 0) {
            set(v, RETRY_CLASS_FATAL, "the provider asked not to retry (x-should-retry)", 1, 0);
            return;
        }
    }
    if (s == 408)
        set(v, RETRY_CLASS_RETRY, "request timeout (408)", 1, 1);
    else if (s == 409)
        set(v, RETRY_CLASS_RETRY, "conflict (409)", 1, 0);
    else if (s == 429)
        set(v, RETRY_CLASS_RETRY, "rate limited (429)", 0, 1);
    else if (s == 400 && is_rate_limit_code(in))
        set(v, RETRY_CLASS_RETRY, "rate limited (400 rate_limit)", 0, 1);
    else if (s >= 500 && s < 600)
        set(v, RETRY_CLASS_RETRY, "provider server error (5xx)", 1, 1);
    else if (s == 401)
        set(v, RETRY_CLASS_FATAL, "authentication failed (401): check the provider's api_key_file",
            0, 0);
    else if (s == 403)
        set(v, RETRY_CLASS_FATAL, "permission denied (403)", 0, 0);
    else if (s == 404)
        set(v, RETRY_CLASS_FATAL, "not found (404)", 0, 0);
    else if (s >= 400 && s < 500)
        set(v, RETRY_CLASS_FATAL, "request rejected by the provider (4xx)", 0, 0);
    else
        set(v, RETRY_CLASS_FATAL, "unexpected HTTP status", 0, 0);
}

void retry_classify(const struct retry_input *in, struct retry_verdict *out)
{
    memset(out, 0, sizeof *out);
    if (in->transport != HTTP_E_NONE)
        classify_transport(in, out);
    else
        classify_status(in, out);
    if (!in->non_idempotent)
        return;
    /* A create is never resent on its own: whatever may have reached the
     * provider must be reconciled first.  Clear rejections stay fatal. */
    if (out->cls == RETRY_CLASS_RETRY ||
        (out->cls == RETRY_CLASS_FATAL && out->maybe_applied && in->transport != HTTP_E_NONE))
        out->cls = RETRY_CLASS_RECONCILE;
}

/* ------------------------------------------------------------------ */
/* Delays                                                              */
/* ------------------------------------------------------------------ */

void retry_policy_default(struct retry_policy *p)
{
    p->max_attempts = 6;
    p->base_ms = 500;
    p->cap_ms = 30000;
    p->max_server_delay_ms = 600000;
}

uint64_t retry_backoff_ms(const struct retry_policy *p, unsigned n, retry_rand_fn rnd, void *arg)
{
    uint64_t ceiling = p->cap_ms;
    if (n < 63 && p->base_ms <= (p->cap_ms >> n))
        ceiling = p->base_ms << n;
    if (ceiling == UINT64_MAX)
        ceiling--;
    return rnd(ceiling + 1, arg);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Parses a non-negative decimal "12", "1.5", ".5" scaled by `scale`
 * (1000 for seconds → ms), rounded up.  Returns 0 or -EINVAL. */
static int parse_decimal_scaled(const char *s, uint64_t scale, uint64_t *out)
{
    const uint64_t limit = 1000000000000000ull; /* ~31,700 years in ms: "forever" */
    uint64_t ip = 0, frac_num = 0, frac_den = 1;
    int digits = 0;

    s = skip_ws(s);
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        if (ip < limit)
            ip = ip * 10 + (uint64_t)(*s - '0');
    if (*s == '.') {
        s++;
        for (; *s >= '0' && *s <= '9'; s++, digits++)
            if (frac_den < 1000000000ull) {
                frac_num = frac_num * 10 + (uint64_t)(*s - '0');
                frac_den *= 10;
            }
    }
    s = skip_ws(s);
    if (!digits || *s)
        return -EINVAL;
    if (ip >= limit / scale) {
        *out = limit;
        return 0;
    }
    *out = ip * scale + (frac_num * scale + frac_den - 1) / frac_den;
    return 0;
}

static int month_index(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months + 3 * i, 3) == 0)
            return i + 1;
    return 0;
}

static int parse_uint(const char **sp, int min_digits, int max_digits, int *out)
{
    const char *s = *sp;
    int v = 0, n = 0;
    while (*s >= '0' && *s <= '9' && n < max_digits) {
        v = v * 10 + (*s - '0');
        s++;
        n++;
    }
    if (n < min_digits || (*s >= '0' && *s <= '9'))
        return -1;
    *sp = s;
    *out = v;
    return 0;
}

static int parse_hms(const char **sp, int *h, int *m, int *sec)
{
    const char *s = *sp;
    if (parse_uint(&s, 2, 2, h) < 0 || *s++ != ':' || parse_uint(&s, 2, 2, m) < 0 || *s++ != ':' ||
        parse_uint(&s, 2, 2, sec) < 0)
        return -1;
    *sp = s;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int retry_http_date(const char *s, int64_t *out)
{
    int day, mon, year, h, mi, sec;

    s = skip_ws(s);
    /* Weekday name: letters, then "," (IMF-fixdate, RFC 850) or " " (asctime). */
    const char *w = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - w < 3)
        return -EINVAL;
    if (*s == ',') {
        s = skip_ws(s + 1);
        if (parse_uint(&s, 1, 2, &day) < 0)
            return -EINVAL;
        char sep = *s;
        if (sep != ' ' && sep != '-')
            return -EINVAL;
        s++;
        if (!(mon = month_index(s)))
            return -EINVAL;
        s += 3;
        if (*s++ != sep)
            return -EINVAL;
        const char *ys = s;
        if (parse_uint(&s, 2, 4, &year) < 0 || (s - ys != 2 && s - ys != 4))
            return -EINVAL;
        if (s - ys == 2) /* RFC 850 two-digit year */
            year += year < 70 ? 2000 : 1900;
        if (*s++ != ' ' || parse_hms(&s, &h, &mi, &sec) < 0)
            return -EINVAL;
        s = skip_ws(s);
        if (strncmp(s, "GMT", 3) != 0)
            return -EINVAL;
        s += 3;
    } else if (*s == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        s = skip_ws(s);
        if (!(mon = month_index(s)))
            return -EINVAL;
        s = skip_ws(s + 3);
        if (parse_uint(&s, 1, 2, &day) < 0 || *s++ != ' ' || parse_hms(&s, &h, &mi, &sec) < 0)
            return -EINVAL;
        s = skip_ws(s);
        if (parse_uint(&s, 4, 4, &year) < 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (*skip_ws(s))
        return -EINVAL;
    if (year < 1900 || day < 1 || day > days_in_month(year, mon) || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    *out = days_from_civil(year, mon, day) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

int retry_after_parse(const char *retry_after, const char *retry_after_ms, int64_t now_unix,
                      uint64_t *out_ms)
{
    uint64_t v;
    int64_t when;

    if (retry_after_ms && parse_decimal_scaled(retry_after_ms, 1, &v) == 0) {
        *out_ms = v;
        return 1;
    }
    if (!retry_after)
        return 0;
    if (parse_decimal_scaled(retry_after, 1000, &v) == 0) {
        *out_ms = v;
        return 1;
    }
    if (retry_http_date(retry_after, &when) == 0) {
        *out_ms = when > now_unix ? (uint64_t)(when - now_unix) * 1000 : 0;
        return 1;
    }
    return 0;
}

uint64_t retry_delay_ms(const struct retry_policy *p, unsigned n, const char *retry_after,
                        const char *retry_after_ms, int64_t now_unix, retry_rand_fn rnd, void *arg,
                        int *from_server)
{
    uint64_t d;
    if (retry_after_parse(retry_after, retry_after_ms, now_unix, &d)) {
        if (from_server)
            *from_server = 1;
        if (d > p->max_server_delay_ms)
            return p->max_server_delay_ms;
        d += rnd(d / 10 + 1, arg);
        return d > p->max_server_delay_ms ? p->max_server_delay_ms : d;
    }
    if (from_server)
        *from_server = 0;
    return retry_backoff_ms(p, n, rnd, arg);
}

/* ------------------------------------------------------------------ */
/* Retry budget                                                        */
/* ------------------------------------------------------------------ */

void retry_budget_init(struct retry_budget *b, uint64_t window_ms, double ratio,
                       unsigned min_retries)
{
    memset(b, 0, sizeof *b);
    if (window_ms < RETRY_BUDGET_SLOTS)
        window_ms = RETRY_BUDGET_SLOTS;
    b->window_ms = window_ms;
    b->ratio = ratio < 0 ? 0 : ratio > 1 ? 1 : ratio;
    b->min_retries = min_retries;
    b->slot_ms = window_ms / RETRY_BUDGET_SLOTS;
}

/* Moves the window so its newest slot holds now_ms, zeroing slots that
 * fell out.  A clock that went backwards counts in the newest slot. */
static unsigned budget_advance(struct retry_budget *b, uint64_t now_ms)
{
    uint64_t s = now_ms / b->slot_ms;
    if (s > b->head_slot) {
        uint64_t gap = s - b->head_slot;
        if (gap >= RETRY_BUDGET_SLOTS) {
            memset(b->requests, 0, sizeof b->requests);
            memset(b->retries, 0, sizeof b->retries);
        } else {
            for (uint64_t i = 1; i <= gap; i++) {
                unsigned k = (unsigned)((b->head_slot + i) % RETRY_BUDGET_SLOTS);
                b->requests[k] = b->retries[k] = 0;
            }
        }
        b->head_slot = s;
    }
    return (unsigned)(b->head_slot % RETRY_BUDGET_SLOTS);
}

void retry_budget_on_request(struct retry_budget *b, uint64_t now_ms)
{
    unsigned k = budget_advance(b, now_ms);
    if (b->requests[k] < UINT32_MAX)
        b->requests[k]++;
}

void retry_budget_counts(struct retry_budget *b, uint64_t now_ms, uint64_t *requests,
                         uint64_t *retries)
{
    uint64_t rq = 0, rt = 0;
    budget_advance(b, now_ms);
    for (unsigned i = 0; i < RETRY_BUDGET_SLOTS; i++) {
        rq += b->requests[i];
        rt += b->retries[i];
    }
    if (requests)
        *requests = rq;
    if (retries)
        *retries = rt;
}

int retry_budget_take(struct retry_budget *b, uint64_t now_ms)
{
    uint64_t rq, rt;
    retry_budget_counts(b, now_ms, &rq, &rt);
    if ((double)(rt + 1) > (double)b->min_retries + b->ratio * (double)rq) {
        b->denied++;
        return 0;
    }
    unsigned k = (unsigned)(b->head_slot % RETRY_BUDGET_SLOTS);
    if (b->retries[k] < UINT32_MAX)
        b->retries[k]++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Circuit breaker                                                     */
/* ------------------------------------------------------------------ */

void breaker_conf_default(struct breaker_conf *c)
{
    c->consecutive_failures = 5;
    c->failure_rate = 0.5;
    c->window = 20;
    c->min_samples = 20;
    c->cooldown_ms = 5000;
    c->max_cooldown_ms = 300000;
}

void breaker_init(struct breaker *b, const struct breaker_conf *c)
{
    memset(b, 0, sizeof *b);
    b->conf = *c;
    if (b->conf.window < 1)
        b->conf.window = 1;
    if (b->conf.window > 64)
        b->conf.window = 64;
    if (b->conf.max_cooldown_ms < b->conf.cooldown_ms)
        b->conf.max_cooldown_ms = b->conf.cooldown_ms;
    b->cooldown_ms = b->conf.cooldown_ms;
    b->state = BREAKER_CLOSED;
}

static void breaker_open(struct breaker *b, uint64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->consecutive = 0;
    b->outcomes = 0;
    b->n_outcomes = 0;
    b->probe_out = 0;
    b->opens++;
}

int breaker_allow(struct breaker *b, uint64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 1;
    case BREAKER_OPEN:
        if (now_ms - b->opened_at_ms < b->cooldown_ms)
            return 0;
        b->state = BREAKER_HALF_OPEN;
        b->probe_out = 1;
        b->probe_started_ms = now_ms;
        return 1;
    case BREAKER_HALF_OPEN:
        if (b->probe_out && now_ms - b->probe_started_ms < b->cooldown_ms)
            return 0;
        b->probe_out = 1;
        b->probe_started_ms = now_ms;
        return 1;
    }
    return 0;
}

static unsigned popcount64(uint64_t x)
{
    unsigned n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

void breaker_record(struct breaker *b, int failure, uint64_t now_ms)
{
    switch (b->state) {
    case BREAKER_OPEN:
        /* A late answer to a request admitted before it opened. */
        return;
    case BREAKER_HALF_OPEN:
        b->probe_out = 0;
        if (failure) {
            uint64_t c = b->cooldown_ms * 2;
            b->cooldown_ms = c > b->conf.max_cooldown_ms ? b->conf.max_cooldown_ms : c;
            breaker_open(b, now_ms);
        } else {
            b->state = BREAKER_CLOSED;
            b->cooldown_ms = b->conf.cooldown_ms;
            b->consecutive = 0;
            b->outcomes = 0;
            b->n_outcomes = 0;
        }
        return;
    case BREAKER_CLOSED:
        break;
    }
    uint64_t mask = b->conf.window == 64 ? UINT64_MAX : ((uint64_t)1 << b->conf.window) - 1;
    b->outcomes = ((b->outcomes << 1) | (failure ? 1u : 0u)) & mask;
    if (b->n_outcomes < b->conf.window)
        b->n_outcomes++;
    b->consecutive = failure ? b->consecutive + 1 : 0;
    int trip = b->conf.consecutive_failures && b->consecutive >= b->conf.consecutive_failures;
    if (!trip && b->conf.failure_rate > 0 && b->n_outcomes >= b->conf.min_samples &&
        b->n_outcomes > 0) {
        double rate = (double)popcount64(b->outcomes) / (double)b->n_outcomes;
        trip = rate >= b->conf.failure_rate;
    }
    if (trip)
        breaker_open(b, now_ms);
}

uint64_t breaker_wait_ms(const struct breaker *b, uint64_t now_ms)
{
    uint64_t since;
    switch (b->state) {
    case BREAKER_CLOSED:
        return 0;
    case BREAKER_OPEN:
        since = now_ms - b->opened_at_ms;
        return since >= b->cooldown_ms ? 0 : b->cooldown_ms - since;
    case BREAKER_HALF_OPEN:
        if (!b->probe_out)
            return 0;
        since = now_ms - b->probe_started_ms;
        return since >= b->cooldown_ms ? 0 : b->cooldown_ms - since;
    }
    return 0;
}

enum breaker_state breaker_current(const struct breaker *b)
{
    return b->state;
}

const char *breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

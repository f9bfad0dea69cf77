/*
 * test_retry.c — workers/retry: every classification rule (and the rule
 * that a non-idempotent create is never auto-retried), full-jitter backoff
 * bounds, Retry-After in all its forms, the retry budget's sliding window
 * and every circuit-breaker transition.  Randomness and time are injected,
 * so each expectation is exact.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "workers/retry.h"

/* ---- classification ---- */

static struct retry_verdict classify(enum http_error tr, long status, const char *type,
                                     const char *code, const char *should, int malformed,
                                     int non_idem)
{
    struct retry_input in = {.transport = tr,
                             .status = status,
                             .error_type = type,
                             .error_code = code,
                             .should_retry = should,
                             .body_malformed = malformed,
                             .non_idempotent = non_idem};
    struct retry_verdict v;
    retry_classify(&in, &v);
    assert_non_null(v.reason);
    return v;
}

static void test_classify_statuses(void **state)
{
    (void)state;
    static const struct {
        long status;
        enum retry_class want;
        int failure;
    } table[] = {
        {200, RETRY_CLASS_SUCCESS, 0}, {201, RETRY_CLASS_SUCCESS, 0}, {204, RETRY_CLASS_SUCCESS, 0},
        {408, RETRY_CLASS_RETRY, 1},   {409, RETRY_CLASS_RETRY, 0},   {429, RETRY_CLASS_RETRY, 1},
        {500, RETRY_CLASS_RETRY, 1},   {502, RETRY_CLASS_RETRY, 1},   {503, RETRY_CLASS_RETRY, 1},
        {504, RETRY_CLASS_RETRY, 1},   {599, RETRY_CLASS_RETRY, 1},   {400, RETRY_CLASS_FATAL, 0},
        {401, RETRY_CLASS_FATAL, 0},   {403, RETRY_CLASS_FATAL, 0},   {404, RETRY_CLASS_FATAL, 0},
        {405, RETRY_CLASS_FATAL, 0},   {413, RETRY_CLASS_FATAL, 0},   {415, RETRY_CLASS_FATAL, 0},
        {422, RETRY_CLASS_FATAL, 0},   {499, RETRY_CLASS_FATAL, 0},   {301, RETRY_CLASS_FATAL, 0},
        {302, RETRY_CLASS_FATAL, 0},   {100, RETRY_CLASS_FATAL, 0},   {600, RETRY_CLASS_FATAL, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct retry_verdict v = classify(HTTP_E_NONE, table[i].status, NULL, NULL, NULL, 0, 0);
        if (v.cls != table[i].want || v.provider_failure != table[i].failure)
            fail_msg("status %ld: got %s/%d, want %s/%d", table[i].status, retry_class_name(v.cls),
                     v.provider_failure, retry_class_name(table[i].want), table[i].failure);
    }
    assert_non_null(
        strstr(classify(HTTP_E_NONE, 401, NULL, NULL, NULL, 0, 0).reason, "api_key_file"));
}

static void test_classify_quota_and_rate_limit(void **state)
{
    (void)state;
    struct retry_verdict v;
    v = classify(HTTP_E_NONE, 429, "insufficient_quota", "insufficient_quota", NULL, 0, 0);
    assert_int_equal(v.cls, RETRY_CLASS_FATAL);
    assert_non_null(strstr(v.reason, "insufficient_quota"));
    assert_int_equal(v.provider_failure, 0);
    /* Either field alone is enough (OpenAI puts it in both). */
    assert_int_equal(classify(HTTP_E_NONE, 429, NULL, "insufficient_quota", NULL, 0, 0).cls,
                     RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_NONE, 429, "insufficient_quota", NULL, NULL, 0, 0).cls,
                     RETRY_CLASS_FATAL);
    /* Quota wins over x-should-retry: true. */
    assert_int_equal(classify(HTTP_E_NONE, 429, NULL, "insufficient_quota", "true", 0, 0).cls,
                     RETRY_CLASS_FATAL);
    /* A plain rate limit is retried and was not applied. */
    v = classify(HTTP_E_NONE, 429, "requests", "rate_limit_exceeded", NULL, 0, 0);
    assert_int_equal(v.cls, RETRY_CLASS_RETRY);
    assert_int_equal(v.maybe_applied, 0);
    /* Older Together: 400 with code rate_limit. */
    assert_int_equal(classify(HTTP_E_NONE, 400, NULL, "rate_limit", NULL, 0, 0).cls,
                     RETRY_CLASS_RETRY);
    assert_int_equal(classify(HTTP_E_NONE, 400, "invalid_request_error", NULL, NULL, 0, 0).cls,
                     RETRY_CLASS_FATAL);
}

static void test_classify_should_retry(void **state)
{
    (void)state;
    assert_int_equal(classify(HTTP_E_NONE, 400, NULL, NULL, "true", 0, 0).cls, RETRY_CLASS_RETRY);
    assert_int_equal(classify(HTTP_E_NONE, 503, NULL, NULL, "false", 0, 0).cls, RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_NONE, 503, NULL, NULL, "TRUE", 0, 0).cls, RETRY_CLASS_RETRY);
    /* Anything else is ignored. */
    assert_int_equal(classify(HTTP_E_NONE, 503, NULL, NULL, "maybe", 0, 0).cls, RETRY_CLASS_RETRY);
    /* A 2xx stays a success whatever the header says. */
    assert_int_equal(classify(HTTP_E_NONE, 200, NULL, NULL, "true", 0, 0).cls, RETRY_CLASS_SUCCESS);
}

static void test_classify_transport(void **state)
{
    (void)state;
    static const struct {
        enum http_error e;
        enum retry_class want;
        int maybe, failure;
    } table[] = {
        {HTTP_E_CONNECT, RETRY_CLASS_RETRY, 0, 1},   {HTTP_E_TIMEOUT, RETRY_CLASS_RETRY, 1, 1},
        {HTTP_E_DROPPED, RETRY_CLASS_RETRY, 1, 1},   {HTTP_E_TLS, RETRY_CLASS_FATAL, 0, 0},
        {HTTP_E_TOO_LARGE, RETRY_CLASS_FATAL, 1, 0}, {HTTP_E_CANCELLED, RETRY_CLASS_FATAL, 1, 0},
        {HTTP_E_LOCAL, RETRY_CLASS_FATAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        /* The status is ignored when the transport failed. */
        struct retry_verdict v = classify(table[i].e, 200, NULL, NULL, NULL, 0, 0);
        assert_int_equal(v.cls, table[i].want);
        assert_int_equal(v.maybe_applied, table[i].maybe);
        assert_int_equal(v.provider_failure, table[i].failure);
    }
}

static void test_classify_malformed(void **state)
{
    (void)state;
    struct retry_verdict v = classify(HTTP_E_NONE, 200, NULL, NULL, NULL, 1, 0);
    assert_int_equal(v.cls, RETRY_CLASS_RETRY);
    assert_non_null(strstr(v.reason, "malformed"));
    assert_int_equal(v.provider_failure, 1);
    /* A malformed error body does not change a 4xx verdict. */
    assert_int_equal(classify(HTTP_E_NONE, 404, NULL, NULL, NULL, 1, 0).cls, RETRY_CLASS_FATAL);
}

/* The rule the whole job lifecycle rests on: a create is never RETRY. */
static void test_non_idempotent_never_retried(void **state)
{
    (void)state;
    long statuses[] = {0,   100, 200, 201, 301, 400, 401, 403, 404,
                       408, 409, 422, 429, 500, 502, 503, 504, 599};
    enum http_error errs[] = {HTTP_E_NONE, HTTP_E_CONNECT,   HTTP_E_TIMEOUT,   HTTP_E_DROPPED,
                              HTTP_E_TLS,  HTTP_E_TOO_LARGE, HTTP_E_CANCELLED, HTTP_E_LOCAL};
    const char *shoulds[] = {NULL, "true", "false"};
    const char *codes[] = {NULL, "insufficient_quota", "rate_limit"};
    unsigned n = 0;
    for (size_t a = 0; a < sizeof statuses / sizeof *statuses; a++)
        for (size_t b = 0; b < sizeof errs / sizeof *errs; b++)
            for (size_t c = 0; c < 3; c++)
                for (size_t d = 0; d < 3; d++)
                    for (int m = 0; m < 2; m++) {
                        struct retry_verdict v =
                            classify(errs[b], statuses[a], NULL, codes[d], shoulds[c], m, 1);
                        assert_int_not_equal(v.cls, RETRY_CLASS_RETRY);
                        n++;
                    }
    assert_true(n > 1000);

    struct retry_verdict v;
    v = classify(HTTP_E_TIMEOUT, 0, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    assert_int_equal(v.maybe_applied, 1);
    v = classify(HTTP_E_DROPPED, 0, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    v = classify(HTTP_E_CONNECT, 0, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    assert_int_equal(v.maybe_applied, 0);
    v = classify(HTTP_E_NONE, 500, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    assert_int_equal(v.maybe_applied, 1);
    v = classify(HTTP_E_NONE, 409, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    v = classify(HTTP_E_NONE, 429, NULL, NULL, NULL, 0, 1);
    assert_int_equal(v.cls, RETRY_CLASS_RECONCILE);
    assert_int_equal(v.maybe_applied, 0);
    /* The server's "retry: false" does not settle what happened. */
    assert_int_equal(classify(HTTP_E_NONE, 503, NULL, NULL, "false", 0, 1).cls,
                     RETRY_CLASS_RECONCILE);
    /* A 2xx with a body we cannot read: the job may exist. */
    assert_int_equal(classify(HTTP_E_NONE, 200, NULL, NULL, NULL, 1, 1).cls, RETRY_CLASS_RECONCILE);
    /* Cancelled or oversized after sending: may exist. */
    assert_int_equal(classify(HTTP_E_CANCELLED, 0, NULL, NULL, NULL, 0, 1).cls,
                     RETRY_CLASS_RECONCILE);
    assert_int_equal(classify(HTTP_E_TOO_LARGE, 200, NULL, NULL, NULL, 0, 1).cls,
                     RETRY_CLASS_RECONCILE);
    /* Clear outcomes stay clear. */
    assert_int_equal(classify(HTTP_E_NONE, 200, NULL, NULL, NULL, 0, 1).cls, RETRY_CLASS_SUCCESS);
    assert_int_equal(classify(HTTP_E_NONE, 400, NULL, NULL, NULL, 0, 1).cls, RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_NONE, 401, NULL, NULL, NULL, 0, 1).cls, RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_NONE, 429, NULL, "insufficient_quota", NULL, 0, 1).cls,
                     RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_TLS, 0, NULL, NULL, NULL, 0, 1).cls, RETRY_CLASS_FATAL);
    assert_int_equal(classify(HTTP_E_LOCAL, 0, NULL, NULL, NULL, 0, 1).cls, RETRY_CLASS_FATAL);
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(retry_class_name(RETRY_CLASS_SUCCESS), "success");
    assert_string_equal(retry_class_name(RETRY_CLASS_RETRY), "retry");
    assert_string_equal(retry_class_name(RETRY_CLASS_FATAL), "fatal");
    assert_string_equal(retry_class_name(RETRY_CLASS_RECONCILE), "reconcile");
}

/* ---- backoff ---- */

/* Deterministic "random" sources: the top of the range, zero, or a fixed
 * fraction; each records the bound it was given. */
struct rng {
    int mode; /* 0 = max, 1 = zero, 2 = half */
    uint64_t last_bound;
    unsigned calls;
};

static uint64_t fake_rand(uint64_t bound, void *arg)
{
    struct rng *r = arg;
    assert_true(bound >= 1);
    r->last_bound = bound;
    r->calls++;
    switch (r->mode) {
    case 0:
        return bound - 1;
    case 1:
        return 0;
    default:
        return (bound - 1) / 2;
    }
}

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    struct retry_policy p = {
        .max_attempts = 6, .base_ms = 500, .cap_ms = 8000, .max_server_delay_ms = 60000};
    struct rng r = {0};
    uint64_t want[] = {500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (unsigned n = 0; n < 7; n++) {
        r.mode = 0;
        assert_int_equal(retry_backoff_ms(&p, n, fake_rand, &r), want[n]);
        assert_int_equal(r.last_bound, want[n] + 1);
        r.mode = 1;
        assert_int_equal(retry_backoff_ms(&p, n, fake_rand, &r), 0);
    }
    /* No overflow for huge attempt numbers or bases. */
    r.mode = 0;
    assert_int_equal(retry_backoff_ms(&p, 64, fake_rand, &r), 8000);
    assert_int_equal(retry_backoff_ms(&p, 1000, fake_rand, &r), 8000);
    struct retry_policy big = {.base_ms = UINT64_MAX / 2, .cap_ms = UINT64_MAX};
    assert_int_equal(retry_backoff_ms(&big, 5, fake_rand, &r), UINT64_MAX - 1);

    /* With the real source: always within [0, ceiling]. */
    for (int i = 0; i < 2000; i++) {
        unsigned n = (unsigned)(i % 8);
        uint64_t d = retry_backoff_ms(&p, n, retry_rand_default, NULL);
        uint64_t ceil = n >= 4 ? 8000 : 500u << n;
        assert_true(d <= ceil);
    }

    struct retry_policy def;
    retry_policy_default(&def);
    assert_int_equal(def.max_attempts, 6);
    assert_int_equal(def.base_ms, 500);
    assert_true(def.cap_ms >= def.base_ms);
}

/* ---- Retry-After ---- */

static void test_http_date(void **state)
{
    (void)state;
    int64_t t;
    /* The three forms RFC 9110 requires recipients to accept. */
    assert_int_equal(retry_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(retry_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(retry_http_date("Sun Nov  6 08:49:37 1994", &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(retry_http_date("Thu, 01 Jan 1970 00:00:00 GMT", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(retry_http_date("Sat, 29 Feb 2020 23:59:59 GMT", &t), 0);
    assert_int_equal(t, 1583020799);
    assert_int_equal(retry_http_date("Wed, 21 Oct 2026 07:28:00 GMT", &t), 0);
    assert_int_equal(t, 1792567680);
    /* RFC 850 years below 70 are 20xx. */
    assert_int_equal(retry_http_date("Friday, 01-Jan-38 00:00:00 GMT", &t), 0);
    assert_int_equal(t, 2145916800);

    const char *bad[] = {"",
                         "soon",
                         "Sun, 06 Nov 1994 08:49:37",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 32 Jan 1994 08:49:37 GMT",
                         "Sun, 29 Feb 2019 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 06 Nov 1994 08:60:00 GMT",
                         "Sun, 06 Nov 1994 8:49:37 GMT",
                         "Sun, 06 Nov 19945 08:49:37 GMT",
                         "Sun, 06-Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT junk",
                         "Sun Nov  6 08:49:37",
                         "S, 06 Nov 1994 08:49:37 GMT",
                         "1994-11-06T08:49:37Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (retry_http_date(bad[i], &t) != -EINVAL)
            fail_msg("accepted bad date '%s'", bad[i]);
}

static void test_retry_after_parse(void **state)
{
    (void)state;
    uint64_t ms = 12345;
    const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

    assert_int_equal(retry_after_parse(NULL, NULL, now, &ms), 0);
    assert_int_equal(retry_after_parse("7", NULL, now, &ms), 1);
    assert_int_equal(ms, 7000);
    assert_int_equal(retry_after_parse("0", NULL, now, &ms), 1);
    assert_int_equal(ms, 0);
    assert_int_equal(retry_after_parse(" 1.5 ", NULL, now, &ms), 1);
    assert_int_equal(ms, 1500);
    /* Rounded up: never earlier than asked. */
    assert_int_equal(retry_after_parse("0.0001", NULL, now, &ms), 1);
    assert_int_equal(ms, 1);
    assert_int_equal(retry_after_parse(NULL, "250", now, &ms), 1);
    assert_int_equal(ms, 250);
    assert_int_equal(retry_after_parse(NULL, "2.2", now, &ms), 1);
    assert_int_equal(ms, 3);
    /* retry-after-ms wins when both are usable. */
    assert_int_equal(retry_after_parse("9", "40", now, &ms), 1);
    assert_int_equal(ms, 40);
    /* An unusable retry-after-ms falls back to retry-after. */
    assert_int_equal(retry_after_parse("9", "soon", now, &ms), 1);
    assert_int_equal(ms, 9000);
    /* Dates relative to the injected now. */
    assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:50:07 GMT", NULL, now, &ms), 1);
    assert_int_equal(ms, 30000);
    assert_int_equal(retry_after_parse("Sun, 06 Nov 1994 08:49:00 GMT", NULL, now, &ms), 1);
    assert_int_equal(ms, 0);
    /* Garbage is "no value". */
    const char *bad[] = {"", "-1", "1e3", "abc", "1.2.3", "0x10", "5s", "+5", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ms = 99;
        if (retry_after_parse(bad[i], NULL, now, &ms) != 0 ||
            retry_after_parse(NULL, bad[i], now, &ms) != 0)
            fail_msg("accepted bad retry-after '%s'", bad[i]);
    }
    /* Absurdly large values saturate instead of overflowing. */
    assert_int_equal(retry_after_parse("99999999999999999999999", NULL, now, &ms), 1);
    assert_true(ms >= 1000000000000ull);
}

static void test_retry_delay(void **state)
{
    (void)state;
    struct retry_policy p = {
        .max_attempts = 5, .base_ms = 100, .cap_ms = 1000, .max_server_delay_ms = 60000};
    struct rng r = {.mode = 0};
    int from = -1;

    /* Server value plus at most 10% jitter. */
    assert_int_equal(retry_delay_ms(&p, 0, "2", NULL, 0, fake_rand, &r, &from), 2200);
    assert_int_equal(from, 1);
    r.mode = 1;
    assert_int_equal(retry_delay_ms(&p, 0, "2", NULL, 0, fake_rand, &r, &from), 2000);
    /* Clamped to max_server_delay_ms, jitter included. */
    r.mode = 0;
    assert_int_equal(retry_delay_ms(&p, 0, "3600", NULL, 0, fake_rand, &r, &from), 60000);
    assert_int_equal(retry_delay_ms(&p, 0, "59", NULL, 0, fake_rand, &r, &from), 60000);
    /* No header: backoff. */
    assert_int_equal(retry_delay_ms(&p, 2, NULL, NULL, 0, fake_rand, &r, &from), 400);
    assert_int_equal(from, 0);
    assert_int_equal(retry_delay_ms(&p, 2, "later", NULL, 0, fake_rand, &r, NULL), 400);
    /* retry-after-ms wins. */
    r.mode = 1;
    assert_int_equal(retry_delay_ms(&p, 0, "5", "120", 0, fake_rand, &r, &from), 120);
}

/* ---- budget ---- */

static void test_budget(void **state)
{
    (void)state;
    struct retry_budget b;
    uint64_t rq, rt;

    retry_budget_init(&b, 10000, 0.2, 2);
    /* Floor: two retries with no requests at all. */
    assert_int_equal(retry_budget_take(&b, 0), 1);
    assert_int_equal(retry_budget_take(&b, 0), 1);
    assert_int_equal(retry_budget_take(&b, 0), 0);
    assert_int_equal(b.denied, 1);
    /* 20 requests buy 4 more retries (20% of 20) on top of the floor. */
    for (int i = 0; i < 20; i++)
        retry_budget_on_request(&b, 500);
    for (int i = 0; i < 4; i++)
        assert_int_equal(retry_budget_take(&b, 600), 1);
    assert_int_equal(retry_budget_take(&b, 600), 0);
    retry_budget_counts(&b, 600, &rq, &rt);
    assert_int_equal(rq, 20);
    assert_int_equal(rt, 6);
    /* The window slides: at 10.5 s the slot of t=0..999 is gone. */
    retry_budget_counts(&b, 10500, &rq, &rt);
    assert_int_equal(rq, 0);
    assert_int_equal(rt, 0);
    assert_int_equal(retry_budget_take(&b, 10500), 1);
    /* Partial slide: requests at 1 s survive until 11 s. */
    retry_budget_init(&b, 10000, 0.5, 0);
    for (int i = 0; i < 10; i++)
        retry_budget_on_request(&b, 1000);
    for (int i = 0; i < 10; i++)
        retry_budget_on_request(&b, 5000);
    retry_budget_counts(&b, 10999, &rq, &rt);
    assert_int_equal(rq, 20);
    retry_budget_counts(&b, 11000, &rq, &rt);
    assert_int_equal(rq, 10);
    retry_budget_counts(&b, 15000, &rq, &rt);
    assert_int_equal(rq, 0);
    /* Over a long run the retries never exceed floor + ratio · requests. */
    retry_budget_init(&b, 10000, 0.1, 1);
    uint64_t granted = 0, t = 0;
    for (int i = 0; i < 100000; i++, t += 7) {
        retry_budget_on_request(&b, t);
        granted += (uint64_t)retry_budget_take(&b, t); /* every request wants a retry */
        retry_budget_counts(&b, t, &rq, &rt);
        assert_true((double)rt <= 1 + 0.1 * (double)rq + 1e-9);
    }
    assert_true(granted > 9000 && granted < 11500);
    /* Ratio and window are clamped to sane values. */
    retry_budget_init(&b, 1, 7.0, 0);
    assert_true(b.ratio == 1.0);
    assert_true(b.slot_ms >= 1);
}

/* ---- breaker ---- */

static void test_breaker_consecutive(void **state)
{
    (void)state;
    struct breaker_conf c = {.consecutive_failures = 3,
                             .failure_rate = 0,
                             .window = 10,
                             .min_samples = 10,
                             .cooldown_ms = 1000,
                             .max_cooldown_ms = 4000};
    struct breaker b;
    breaker_init(&b, &c);
    assert_string_equal(breaker_state_name(breaker_current(&b)), "closed");
    assert_int_equal(breaker_allow(&b, 0), 1);
    breaker_record(&b, 1, 0);
    breaker_record(&b, 1, 0);
    breaker_record(&b, 0, 0); /* a success resets the run */
    breaker_record(&b, 1, 0);
    breaker_record(&b, 1, 0);
    assert_int_equal(breaker_current(&b), BREAKER_CLOSED);
    breaker_record(&b, 1, 100);
    assert_int_equal(breaker_current(&b), BREAKER_OPEN);
    assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
    assert_int_equal(b.opens, 1);
    assert_int_equal(breaker_allow(&b, 500), 0);
    assert_int_equal(breaker_wait_ms(&b, 500), 600);
    /* Late outcomes while open are ignored. */
    breaker_record(&b, 0, 600);
    assert_int_equal(breaker_current(&b), BREAKER_OPEN);
    /* Cool-down over: one probe, half-open. */
    assert_int_equal(breaker_allow(&b, 1100), 1);
    assert_int_equal(breaker_current(&b), BREAKER_HALF_OPEN);
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half-open");
    assert_int_equal(breaker_allow(&b, 1100), 0);
    assert_int_equal(breaker_wait_ms(&b, 1200), 900);
    /* Failed probe: open again, cool-down doubled. */
    breaker_record(&b, 1, 1200);
    assert_int_equal(breaker_current(&b), BREAKER_OPEN);
    assert_int_equal(breaker_wait_ms(&b, 1200), 2000);
    assert_int_equal(breaker_allow(&b, 3100), 0);
    assert_int_equal(breaker_allow(&b, 3200), 1);
    breaker_record(&b, 1, 3200); /* 4000 */
    assert_int_equal(breaker_allow(&b, 7199), 0);
    assert_int_equal(breaker_allow(&b, 7200), 1);
    breaker_record(&b, 1, 7200); /* capped at 4000 */
    assert_int_equal(breaker_wait_ms(&b, 7200), 4000);
    /* A probe that never reports back is forgotten after one cool-down. */
    assert_int_equal(breaker_allow(&b, 11200), 1);
    assert_int_equal(breaker_allow(&b, 15199), 0);
    assert_int_equal(breaker_allow(&b, 15200), 1);
    /* Successful probe: closed, cool-down reset. */
    breaker_record(&b, 0, 15300);
    assert_int_equal(breaker_current(&b), BREAKER_CLOSED);
    assert_int_equal(breaker_wait_ms(&b, 15300), 0);
    assert_int_equal(b.cooldown_ms, 1000);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 1, 16000);
    assert_int_equal(breaker_wait_ms(&b, 16000), 1000);
    assert_int_equal(b.opens, 5);
}

static void test_breaker_rate(void **state)
{
    (void)state;
    struct breaker_conf c = {.consecutive_failures = 0,
                             .failure_rate = 0.5,
                             .window = 10,
                             .min_samples = 10,
                             .cooldown_ms = 100,
                             .max_cooldown_ms = 100};
    struct breaker b;
    breaker_init(&b, &c);
    /* Alternating failures: never 2 in a row, but 50% of 10. */
    for (int i = 0; i < 9; i++) {
        breaker_record(&b, i % 2 == 0, 0);
        assert_int_equal(breaker_current(&b), BREAKER_CLOSED); /* under min_samples */
    }
    breaker_record(&b, 0, 0); /* 10 samples, 5 failures */
    assert_int_equal(breaker_current(&b), BREAKER_OPEN);

    /* 4 of the last 10 is below the rate: stays closed forever. */
    breaker_init(&b, &c);
    for (int i = 0; i < 1000; i++)
        breaker_record(&b, i % 5 < 2, 0);
    assert_int_equal(breaker_current(&b), BREAKER_CLOSED);

    /* Window clamped to 64 and at least 1; defaults are sane. */
    c.window = 1000;
    breaker_init(&b, &c);
    assert_int_equal(b.conf.window, 64);
    struct breaker_conf d;
    breaker_conf_default(&d);
    assert_true(d.consecutive_failures > 0 && d.cooldown_ms > 0 &&
                d.max_cooldown_ms >= d.cooldown_ms);
    breaker_init(&b, &d);
    for (unsigned i = 0; i < d.consecutive_failures; i++)
        breaker_record(&b, 1, 0);
    assert_int_equal(breaker_current(&b), BREAKER_OPEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_statuses),
        cmocka_unit_test(test_classify_quota_and_rate_limit),
        cmocka_unit_test(test_classify_should_retry),
        cmocka_unit_test(test_classify_transport),
        cmocka_unit_test(test_classify_malformed),
        cmocka_unit_test(test_non_idempotent_never_retried),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_breaker_consecutive),
        cmocka_unit_test(test_breaker_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

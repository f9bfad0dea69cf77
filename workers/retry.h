/*
 * retry.h — when to try a provider request again, and how soon: pure logic
 * with no I/O.  The clock (now values) and the random source (a function
 * pointer) are parameters, so unit tests cover every branch exactly.
 *
 * Four pieces, used together by the provider client:
 *  1. retry_classify(): one outcome (transport error, status, provider
 *     error code, malformed body) → success | retry | fatal | reconcile,
 *     with a reason.  Retryable: 408, 409, 429 (except insufficient_quota),
 *     5xx, connection failures, timeouts, dropped connections, a 2xx body
 *     that is not the JSON we expect.  Fatal: every other 4xx (the user
 *     sees the provider's message and x-request-id), quota exhaustion, TLS
 *     verification failures, local errors.
 *
 *     NON-IDEMPOTENT REQUESTS ARE NEVER AUTO-RETRIED (DESIGN §3).  Creating
 *     a fine-tuning job costs money and no provider documents an idempotency
 *     key, so a create whose outcome is not a clear success or a clear
 *     rejection is classified RETRY_CLASS_RECONCILE, never RETRY_CLASS_RETRY:
 *     the caller must first find out whether the job exists (list the
 *     provider's jobs by our metadata tag or suffix) and only then decide.
 *     Set retry_input.non_idempotent for such requests.
 *  2. retry_delay_ms(): exponential backoff with full jitter
 *     (uniform in [0, min(cap, base·2^n)]), or the server's Retry-After /
 *     retry-after-ms when present (never earlier than asked; capped).
 *  3. struct retry_budget: retries may be at most `ratio` of the requests
 *     started over a sliding window (plus a small floor), so a failing
 *     provider sees a bounded number of extra requests, not a storm.
 *  4. struct breaker: a circuit breaker per provider.  closed → open after
 *     N consecutive failures or a failure rate over the last outcomes;
 *     open → half-open after a cool-down (doubling up to a maximum while
 *     probes keep failing); half-open admits one probe at a time; a probe
 *     that succeeds closes it.  breaker_state_name() is what `status` shows.
 */
#ifndef VT_RETRY_H
#define VT_RETRY_H

#include <stdint.h>

#include "lib/http_msg.h"

/* Random seam: a uniform integer in [0, bound) (bound >= 1). */
typedef uint64_t (*retry_rand_fn)(uint64_t bound, void *arg);
/* The production random source (getrandom via util.h); arg unused. */
uint64_t retry_rand_default(uint64_t bound, void *arg);

/* ---- classification ---- */

enum retry_class {
    RETRY_CLASS_SUCCESS = 0, /* 2xx with a usable body */
    RETRY_CLASS_RETRY,       /* transient: may be sent again after a delay */
    RETRY_CLASS_FATAL,       /* permanent: report to the user, do not resend */
    RETRY_CLASS_RECONCILE,   /* non-idempotent and the outcome is unknown:
                                never resend before establishing what happened */
};
const char *retry_class_name(enum retry_class c);

struct retry_input {
    enum http_error transport; /* HTTP_E_NONE when a status arrived */
    long status;               /* HTTP status (0 when none) */
    const char *error_type;    /* provider error "type" from the body, or NULL */
    const char *error_code;    /* provider error "code" from the body, or NULL */
    const char *should_retry;  /* x-should-retry header ("true"/"false"), or NULL */
    int body_malformed;        /* a 2xx body that is not the JSON expected */
    int non_idempotent;        /* a create: never RETRY_CLASS_RETRY (see above) */
};

struct retry_verdict {
    enum retry_class cls;
    const char *reason; /* static text, e.g. "rate limited (429)" */
    /* For RECONCILE: 0 when the provider cannot have acted on the request
     * (not sent, or refused before processing: connect failure, 429), 1
     * when it may have (timeout, dropped, 5xx, 409, malformed 2xx). */
    int maybe_applied;
    /* Whether this outcome counts against the provider's health (breaker):
     * transport failures, 408, 429, 5xx, malformed bodies.  A 4xx the user
     * caused is a healthy provider answering. */
    int provider_failure;
};

/* Classifies one outcome; in and out borrowed. */
void retry_classify(const struct retry_input *in, struct retry_verdict *out);

/* ---- delays ---- */

struct retry_policy {
    unsigned max_attempts;        /* including the first; >= 1 */
    uint64_t base_ms;             /* first backoff ceiling */
    uint64_t cap_ms;              /* backoff ceiling never exceeds this */
    uint64_t max_server_delay_ms; /* Retry-After values are clamped to this */
};
/* 6 attempts (5 retries), base 500 ms, cap 30 s, Retry-After up to 10 min. */
void retry_policy_default(struct retry_policy *p);

/* Full-jitter backoff before retry number n (0 for the first retry):
 * uniform in [0, min(cap, base·2^n)] drawn with rnd(bound, arg). */
uint64_t retry_backoff_ms(const struct retry_policy *p, unsigned n, retry_rand_fn rnd, void *arg);

/* Parses the server's wish.  retry_after_ms (milliseconds, decimals
 * allowed) wins over retry_after (delta-seconds, decimals allowed, or an
 * HTTP-date in IMF-fixdate, RFC 850 or asctime form, compared with
 * now_unix).  Either may be NULL.  Returns 1 and *out_ms (a date in the
 * past gives 0) or 0 when neither header holds a usable value. */
int retry_after_parse(const char *retry_after, const char *retry_after_ms, int64_t now_unix,
                      uint64_t *out_ms);

/* Parses an HTTP-date into Unix seconds; returns 0 or -EINVAL. */
int retry_http_date(const char *s, int64_t *out);

/* The delay before retry n: the server's Retry-After (plus up to 10% of
 * jitter so many clients told the same value do not return at once),
 * clamped to max_server_delay_ms, else retry_backoff_ms().  *from_server
 * (may be NULL) says which. */
uint64_t retry_delay_ms(const struct retry_policy *p, unsigned n, const char *retry_after,
                        const char *retry_after_ms, int64_t now_unix, retry_rand_fn rnd, void *arg,
                        int *from_server);

/* ---- retry budget ---- */

#define RETRY_BUDGET_SLOTS 10

struct retry_budget {
    uint64_t window_ms;   /* sliding window, in RETRY_BUDGET_SLOTS slots */
    double ratio;         /* retries allowed per request in the window */
    unsigned min_retries; /* always allowed per window (a quiet provider can still retry) */
    uint64_t slot_ms;
    uint64_t head_slot; /* absolute slot number of the newest slot */
    uint32_t requests[RETRY_BUDGET_SLOTS];
    uint32_t retries[RETRY_BUDGET_SLOTS];
    uint64_t denied; /* retries refused since init (for status) */
};

/* window_ms >= RETRY_BUDGET_SLOTS; ratio in [0, 1]. */
void retry_budget_init(struct retry_budget *b, uint64_t window_ms, double ratio,
                       unsigned min_retries);
/* Records a first attempt at now_ms. */
void retry_budget_on_request(struct retry_budget *b, uint64_t now_ms);
/* Returns 1 and records the retry when retries + 1 <= min_retries +
 * ratio · requests over the window; 0 (and counts a denial) otherwise. */
int retry_budget_take(struct retry_budget *b, uint64_t now_ms);
/* Requests and retries in the window ending at now_ms. */
void retry_budget_counts(struct retry_budget *b, uint64_t now_ms, uint64_t *requests,
                         uint64_t *retries);

/* ---- circuit breaker ---- */

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker_conf {
    unsigned consecutive_failures; /* open after this many in a row (0 = off) */
    double failure_rate;           /* or this share of the last `window` outcomes (0 = off) */
    unsigned window;               /* outcomes considered for the rate, 1..64 */
    unsigned min_samples;          /* rate needs at least this many outcomes */
    uint64_t cooldown_ms;          /* open → half-open */
    uint64_t max_cooldown_ms;      /* cool-down doubles per failed probe, up to this */
};
/* 5 in a row, or 50% of the last 20 (at least 20), cool-down 5 s → 5 min. */
void breaker_conf_default(struct breaker_conf *c);

struct breaker {
    struct breaker_conf conf;
    enum breaker_state state;
    unsigned consecutive;
    uint64_t outcomes; /* bit i = failure of the i-th most recent outcome */
    unsigned n_outcomes;
    uint64_t opened_at_ms, cooldown_ms;
    int probe_out; /* half-open: a probe is in flight */
    uint64_t probe_started_ms;
    uint64_t opens; /* times it opened (for status) */
};

void breaker_init(struct breaker *b, const struct breaker_conf *c);
/* May a request go now?  Closed: yes.  Open: no until the cool-down has
 * passed, then half-open.  Half-open: yes for one probe at a time (a probe
 * that never reports back is forgotten after one cool-down). */
int breaker_allow(struct breaker *b, uint64_t now_ms);
/* Records the outcome of a request admitted by breaker_allow(). */
void breaker_record(struct breaker *b, int failure, uint64_t now_ms);
/* Milliseconds until breaker_allow() may say yes (0 = now). */
uint64_t breaker_wait_ms(const struct breaker *b, uint64_t now_ms);
enum breaker_state breaker_current(const struct breaker *b);
/* "closed" | "open" | "half-open". */
const char *breaker_state_name(enum breaker_state s);

#endif

/*
 * methods_audit.c — verify.run, audit.list | show | export | verify,
 * schedule.add | list | rm.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "lib/log.h"
#include "daemon/lookup.h"
#include "daemon/signing.h"
#include "lib/util.h"
#include "daemon/verifier.h"
#include "workers/audit.h"

static int num_param(struct ctl_req *req, json_t *params, const char *key, double lo, double hi,
                     double *out)
{
    json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.%s: expected a number in [%g, %g]", key,
                        lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static void m_verify(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_job j;
    struct verifier_opts o;
    double trials, controls, temp, alpha, coverage;
    char *err = NULL;
    if (lookup_job(d, req, params, CTL_K_ID, &j) < 0)
        return;
    verifier_opts_default(d, &o);
    trials = (double)o.trials;
    controls = (double)o.controls;
    temp = o.temperature;
    alpha = o.alpha;
    coverage = (double)o.coverage;
    if (num_param(req, params, CTL_K_COVERAGE, 0, 2000, &coverage) < 0 ||
        num_param(req, params, CTL_K_TRIALS, 1, 1000, &trials) < 0 ||
        num_param(req, params, CTL_K_CONTROLS, 0, 1000, &controls) < 0 ||
        num_param(req, params, CTL_K_TEMPERATURE, 0, 2, &temp) < 0 ||
        num_param(req, params, CTL_K_ALPHA, 1e-300, 0.5, &alpha) < 0) {
        store_job_clear(&j);
        return;
    }
    o.trials = (uint64_t)trials;
    o.controls = (uint64_t)controls;
    o.temperature = temp;
    o.alpha = alpha;
    o.coverage = (uint64_t)coverage;
    if (json_is_false(json_object_get(params, CTL_K_SEQUENTIAL)))
        o.sequential = false;
    bool wait = json_is_true(json_object_get(params, CTL_K_WAIT));
    if (verifier_start(d, j.id, &o, wait ? req : NULL, 0, &err) < 0) {
        ctl_reply_error(req, CTL_ERR_FAILED, NULL, "%s", err);
        free(err);
    } else if (!wait) {
        ctl_reply(req, json_pack("{s:I,s:s}", CTL_K_JOB, (json_int_t)j.id, CTL_K_STATE, "running"));
    }
    store_job_clear(&j);
}

/* audit.list and audit.show: read methods (struct ctl_read). */
static json_t *read_audit_list(struct ctl_read *r, json_t *params)
{
    struct store_audit *v;
    struct store_counts c;
    size_t n;
    int64_t job = 0;
    if (json_object_get(params, CTL_K_JOB)) {
        struct store_job j;
        if (lookup_job_in(r, params, CTL_K_JOB, &j) < 0)
            return NULL;
        job = j.id;
        store_job_clear(&j);
    }
    /* a record is 15-28 KB (its evidence); a job's own few are not counted */
    if (r->max_bytes && !job && store_counts(r->store, &c) == 0 &&
        ctl_read_too_long(r, c.audits, 28000))
        return NULL;
    if (store_audit_list(r->store, job, &v, &n) < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot read the audit trail: %s",
                      store_errmsg(r->store));
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, audit_record_json(&v[i]));
    store_audit_list_free(v, n);
    return arr;
}

static json_t *read_audit_show(struct ctl_read *r, json_t *params)
{
    struct store_audit a;
    json_t *id = json_object_get(params, CTL_K_ID);
    int64_t n = json_is_integer(id)  ? json_integer_value(id)
                : json_is_string(id) ? strtoll(json_string_value(id), NULL, 10)
                                     : 0;
    if (n <= 0) {
        ctl_read_fail(r, CTL_ERR_PARAMS, "params.id: an audit record id is required");
        return NULL;
    }
    int rc = store_audit_get(r->store, n, &a);
    if (rc == -ENOENT) {
        ctl_read_fail(r, CTL_ERR_NOT_FOUND, "no audit record %lld (see 'vtunectl audit list')",
                      (long long)n);
        return NULL;
    }
    if (rc < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot read audit record %lld: %s", (long long)n,
                      store_errmsg(r->store));
        return NULL;
    }
    json_t *o = audit_record_json(&a);
    char *text = audit_explain(&a);
    json_object_set_new(o, CTL_K_EXPLANATION, json_string(text));
    free(text);
    /* not part of the record (nor of its hash): the job's own screen */
    job_luck_fields(r->store, a.job_id, o);
    store_audit_clear(&a);
    return o;
}

static void m_audit_verify(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_audit *v;
    size_t n;
    struct audit_check c;
    const char *head = json_string_value(json_object_get(params, CTL_K_HEAD));
    if (store_audit_list(d->store, 0, &v, &n) < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read the audit trail: %s",
                        store_errmsg(d->store));
        return;
    }
    if (audit_chain_verify(v, n, head, &c) < 0) {
        /* The check's message names what was given; it is owned by c. */
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.head: %s",
                        c.message ? c.message : "expected 64 hexadecimal characters");
        audit_check_clear(&c);
        store_audit_list_free(v, n);
        return;
    }
    json_t *o = json_pack("{s:b,s:s,s:I,s:I,s:I,s:s,s:s}", CTL_K_OK, c.ok, "problem",
                          audit_break_name(c.kind), "bad_id", (json_int_t)c.bad_id, "records",
                          (json_int_t)c.n_records, "verified_id", (json_int_t)c.verified_id,
                          "verified_hash", c.verified_hash, CTL_K_MESSAGE, c.message);
    if (head) {
        json_object_set_new(o, CTL_K_HEAD, json_string(head));
        json_object_set_new(o, "head_found", json_boolean(c.head_found));
        json_object_set_new(o, "head_id", json_integer((json_int_t)c.head_id));
    }
    /* The signatures (issue 15): the first record that fails either check
     * is the one reported; a head problem (bad_id 0) comes after all. */
    json_t *sg = signing_chain_check(d, v, n);
    int sig_ok = json_is_true(json_object_get(sg, CTL_K_OK));
    int64_t sig_bad = json_integer_value(json_object_get(sg, "bad_id"));
    if (!sig_ok && (c.ok || (sig_bad > 0 && sig_bad < c.bad_id) || (c.bad_id == 0 && sig_bad > 0))) {
        json_object_set_new(o, CTL_K_OK, json_false());
        json_object_set(o, "problem", json_object_get(sg, "problem"));
        json_object_set(o, "bad_id", json_object_get(sg, "bad_id"));
        json_object_set(o, CTL_K_MESSAGE, json_object_get(sg, CTL_K_MESSAGE));
        c.ok = false;
    } else if (c.ok && sig_ok) {
        char *m = xasprintf("%s; %s", c.message, json_string_value(json_object_get(sg, CTL_K_MESSAGE)));
        json_object_set_new(o, CTL_K_MESSAGE, json_string(m));
        free(m);
    }
    json_object_set_new(o, "signatures", sg);
    if (!c.ok)
        log_warnx("audit: chain check failed: %s",
                  json_string_value(json_object_get(o, CTL_K_MESSAGE)));
    ctl_reply(req, o);
    audit_check_clear(&c);
    store_audit_list_free(v, n);
}

static void m_schedule_add(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_job j;
    const char *every = json_string_value(json_object_get(params, CTL_K_EVERY));
    uint64_t ms;
    if (!every || parse_duration_ms(every, &ms) < 0 || ms < 1000) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.every: a duration of at least 1s is required (30s, 15m, 6h, 1d)");
        return;
    }
    if (lookup_job(d, req, params, CTL_K_ID, &j) < 0)
        return;
    struct store_schedule sc = {0};
    sc.job_id = j.id;
    sc.every_ms = (int64_t)ms;
    sc.next_run_at = now_unix() + (int64_t)((ms + 999) / 1000);
    int r = store_schedule_add(d->store, &sc);
    if (r == -EEXIST)
        ctl_reply_error(req, CTL_ERR_CONFLICT, NULL,
                        "job %lld already has a schedule (see 'vtunectl schedule list')",
                        (long long)j.id);
    else if (r < 0)
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot add the schedule: %s",
                        store_errmsg(d->store));
    else {
        char next[32];
        format_iso8601(sc.next_run_at, next);
        log_info("schedule %lld: re-verify job %lld every %s", (long long)sc.id, (long long)j.id,
                 every);
        ctl_reply(req,
                  json_pack("{s:I,s:I,s:I,s:s}", CTL_K_ID, (json_int_t)sc.id, CTL_K_JOB,
                            (json_int_t)j.id, "every_ms", (json_int_t)ms, CTL_K_NEXT_RUN_AT, next));
    }
    store_job_clear(&j);
}

/* schedule.list: a read method (struct ctl_read). */
static json_t *read_schedule_list(struct ctl_read *r, json_t *params)
{
    struct store_schedule *v;
    size_t n;
    (void)params;
    if (store_schedule_list(r->store, &v, &n) < 0) {
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot list schedules: %s", store_errmsg(r->store));
        return NULL;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char next[32], last[32], every[32];
        format_iso8601(v[i].next_run_at, next);
        format_iso8601(v[i].last_run_at, last);
        format_duration_ms((uint64_t)v[i].every_ms, every, sizeof every);
        json_array_append_new(
            arr,
            json_pack("{s:I,s:I,s:s,s:I,s:s,s:s?,s:s?}", CTL_K_ID, (json_int_t)v[i].id, CTL_K_JOB,
                      (json_int_t)v[i].job_id, CTL_K_EVERY, every, "every_ms",
                      (json_int_t)v[i].every_ms, CTL_K_NEXT_RUN_AT, next, CTL_K_LAST_RUN_AT,
                      v[i].last_run_at ? last : NULL, CTL_K_LAST_VERDICT,
                      v[i].last_verdict == AUDIT_NONE ? NULL
                                                      : audit_verdict_name(v[i].last_verdict)));
    }
    free(v);
    return arr;
}

static void m_schedule_rm(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    json_t *id = json_object_get(params, CTL_K_ID);
    int64_t n = json_is_integer(id)  ? json_integer_value(id)
                : json_is_string(id) ? strtoll(json_string_value(id), NULL, 10)
                                     : 0;
    int r = n > 0 ? store_schedule_rm(d->store, n) : -EINVAL;
    if (r == -EINVAL)
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.id: a schedule id is required");
    else if (r < 0)
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "no schedule %lld", (long long)n);
    else
        ctl_reply(req, json_pack("{s:I,s:b}", CTL_K_ID, (json_int_t)n, "removed", 1));
}

const struct ctl_method ctl_methods_verify[] = {
    {CTL_M_VERIFY_RUN, m_verify, 1, NULL},
    {CTL_M_AUDIT_LIST, NULL, 0, read_audit_list},
    {CTL_M_AUDIT_SHOW, NULL, 0, read_audit_show},
    {CTL_M_AUDIT_VERIFY, m_audit_verify, 0, NULL},
    {CTL_M_SCHEDULE_ADD, m_schedule_add, 1, NULL},
    {CTL_M_SCHEDULE_LIST, NULL, 0, read_schedule_list},
    {CTL_M_SCHEDULE_RM, m_schedule_rm, 1, NULL},
    {NULL, NULL, 0, NULL},
};

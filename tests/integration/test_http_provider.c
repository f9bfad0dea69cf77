/*
 * test_http_provider.c — the whole HTTP layer against vtune-sim: the
 * provider client (workers/provider.h) with the openai adapter, over the
 * libcurl ⇄ libuv glue (daemon/http.h), on a real loop.  Run by
 * test_http_sim.sh, which starts the simulator.
 *
 * usage: test_http_provider BASE_URL API_KEY TRAINING_FILE
 *
 * Part A, a clean provider: upload with progress, create with the tag,
 * list by tag, poll to succeeded, events, chat with logprobs, scoring with
 * echo, errors that reach the user with their x-request-id.
 * Part B, a faulty one (faults switched at run time through the
 * simulator's never-faulted /v1/_sim/faults): 100 concurrent idempotent
 * calls through 30% mixed faults all succeed, with the request count
 * printed; a create whose connection drops after the job was made is
 * reported RECONCILE and found again by listing the tag (one job, not
 * two); a create refused with a 500 is found absent and created once;
 * a provider that fails everything opens the breaker, which bounds the
 * requests, and closes again when it recovers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "daemon/http.h"
#include "lib/log.h"
#include "lib/util.h"
#include "daemon/provider_client.h"

static uv_loop_t *loop;
static struct http_ctx *ctx;
static struct provider_client *pc;
static const char *base, *key;
static int failures, checks;

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    checks++;
    if (!cond)
        failures++;
    printf("%s - ", cond ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static int expired;
static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    expired = 1;
}

static int run_until(const unsigned *counter, unsigned target, uint64_t timeout_ms)
{
    uv_timer_t wd;
    uv_timer_init(loop, &wd);
    expired = 0;
    uv_timer_start(&wd, on_watchdog, timeout_ms, 0);
    while (*counter < target && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(&wd);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *counter >= target;
}

static void run_for(uint64_t ms)
{
    unsigned never = 0;
    run_until(&never, 1, ms);
}

/* One finished call, copied out of the borrowed outcome. */
struct res {
    unsigned *counter;
    int rc;
    enum retry_class cls;
    int maybe;
    unsigned attempts;
    char *line;
    char *id, *file_id;
    int64_t bytes;
    enum provider_job_state state;
    char *model;
    int matches;
    size_t n; /* jobs, events, tokens */
    int has_more;
    char *text;
    size_t known; /* tokens with a known logprob */
    double sum;
    const char *tag; /* for matches */
};

static void on_outcome(const struct provider_outcome *o, void *arg)
{
    struct res *r = arg;
    r->rc = o->rc;
    r->cls = o->cls;
    r->maybe = o->maybe_applied;
    r->attempts = o->attempts;
    r->line = o->rc < 0 ? provider_error_line("sim", o->err) : NULL;
    if (o->file) {
        r->file_id = xstrdup(o->file->id);
        r->bytes = o->file->bytes;
    }
    if (o->job) {
        r->id = xstrdup(o->job->id);
        r->state = o->job->state;
        r->model = o->job->fine_tuned_model ? xstrdup(o->job->fine_tuned_model) : NULL;
        r->matches = r->tag ? provider_job_matches(o->job, r->tag) : 0;
    }
    if (o->jobs) {
        r->n = o->jobs->n_jobs;
        r->has_more = o->jobs->has_more;
        for (size_t i = 0; r->tag && i < o->jobs->n_jobs; i++)
            r->matches += provider_job_matches(&o->jobs->jobs[i], r->tag);
        if (o->jobs->n_jobs)
            r->id = xstrdup(o->jobs->jobs[0].id);
    }
    if (o->events)
        r->n = o->events->n_events;
    if (o->chat) {
        r->text = xstrdup(o->chat->text);
        r->n = o->chat->n_tokens;
        for (size_t i = 0; i < o->chat->n_tokens; i++)
            r->known += o->chat->tokens[i].known;
    }
    if (o->score) {
        r->n = o->score->n_tokens;
        r->sum = o->score->sum_logprob;
        r->known = (size_t)o->score->all_known;
    }
    (*r->counter)++;
}

static void res_clear(struct res *r)
{
    free(r->line);
    free(r->id);
    free(r->file_id);
    free(r->model);
    free(r->text);
    unsigned *c = r->counter;
    const char *tag = r->tag;
    memset(r, 0, sizeof *r);
    r->counter = c;
    r->tag = tag;
}

static unsigned progress_calls;
static uint64_t progress_last, progress_total;
static void on_progress(const struct http_progress *p, void *arg)
{
    (void)arg;
    progress_calls++;
    progress_last = p->up_now;
    progress_total = p->up_total;
}

/* ---- the simulator's own endpoints, straight through the glue ---- */

struct raw {
    struct http_response *res;
    unsigned n;
};
static void on_raw(struct http_response *res, void *arg)
{
    struct raw *r = arg;
    r->res = res;
    r->n++;
}

static json_t *sim_call(const char *method, const char *path, const char *body)
{
    char *u = xasprintf("%s%s", base, path);
    struct http_request *req = http_request_new(method, u);
    free(u);
    http_request_add_header(req, "Authorization", "Bearer %s", key);
    if (body)
        http_request_set_body(req, "application/json", body, strlen(body));
    req->timeout_ms = 10000;
    struct raw r = {0};
    struct http_callbacks cb = {.done = on_raw, .arg = &r};
    if (http_start(http_ctx_transport(ctx), req, &cb, NULL) < 0 || !run_until(&r.n, 1, 15000))
        return NULL;
    json_t *j = r.res->status == 200 ? json_loads(r.res->body, 0, NULL) : NULL;
    http_response_free(r.res);
    return j;
}

static int set_faults(const char *spec, int seed)
{
    char *body = xasprintf("{\"spec\":\"%s\",\"seed\":%d}", spec, seed);
    json_t *j = sim_call("POST", "/v1/_sim/faults", body);
    free(body);
    json_decref(j);
    return j ? 0 : -1;
}

static long sim_created_for(const char *tag)
{
    json_t *j = sim_call("GET", "/v1/_sim/stats", NULL);
    char *k = xasprintf("%s=%s", PROVIDER_TAG_KEY, tag);
    long n = (long)json_integer_value(
        json_object_get(json_object_get(j, "jobs_created_by_metadata"), k));
    free(k);
    json_decref(j);
    return n;
}

static long sim_requests_total(void)
{
    json_t *j = sim_call("GET", "/v1/_sim/stats", NULL);
    long n = (long)json_integer_value(json_object_get(j, "requests_total"));
    json_decref(j);
    return n;
}

/* ---- part A ---- */

static char *job_a, *file_a;

static void part_a(const char *train, const char *tag)
{
    unsigned n = 0;
    struct res r = {.counter = &n, .tag = tag};
    struct provider_error err = {0};
    struct stat st;
    stat(train, &st);

    struct provider_upload_args ua = {.path = train, .filename = "vtune-it.jsonl"};
    check(provider_upload(pc, &ua, on_progress, on_outcome, &r, NULL, &err) == 0, "upload started");
    run_until(&n, 1, 30000);
    check(r.rc == 0 && r.file_id && r.bytes == (int64_t)st.st_size,
          "upload: file %s of %" PRId64 " bytes", r.file_id ? r.file_id : "-", r.bytes);
    check(progress_calls >= 1 && progress_last == progress_total &&
              progress_total > (uint64_t)st.st_size,
          "upload progress reported (%u calls, %" PRIu64 "/%" PRIu64 ")", progress_calls,
          progress_last, progress_total);
    char *file_id = r.file_id ? xstrdup(r.file_id) : xstrdup("none");
    file_a = xstrdup(file_id);
    res_clear(&r);

    struct provider_param params[] = {{"n_epochs", "1"}};
    struct provider_create_args ca = {.model = "vtune-base",
                                      .training_file = file_id,
                                      .submission_id = tag,
                                      .params = params,
                                      .n_params = 1};
    provider_create_job(pc, &ca, on_outcome, &r, NULL, &err);
    run_until(&n, 2, 30000);
    check(r.rc == 0 && r.id && r.attempts == 1 && r.state == PROVIDER_JOB_SUBMITTED && r.matches,
          "create: job %s submitted with our tag, one attempt", r.id ? r.id : "-");
    job_a = r.id ? xstrdup(r.id) : xstrdup("none");
    res_clear(&r);

    struct provider_list_args la = {.tag = tag, .limit = 10};
    provider_list_jobs(pc, &la, on_outcome, &r, NULL, &err);
    run_until(&n, 3, 30000);
    check(r.rc == 0 && r.n == 1 && r.matches == 1 && r.id && strcmp(r.id, job_a) == 0,
          "list by tag finds exactly our job");
    res_clear(&r);
    struct provider_list_args lo = {.tag = "no-such-tag"};
    provider_list_jobs(pc, &lo, on_outcome, &r, NULL, &err);
    run_until(&n, 4, 30000);
    check(r.rc == 0 && r.n == 0, "list by another tag finds nothing");
    res_clear(&r);

    /* Poll until terminal (the simulator's jobs take about a second). */
    uint64_t t0 = now_monotonic_ms();
    int polls = 0;
    char *model = NULL;
    enum provider_job_state last = PROVIDER_JOB_SUBMITTED;
    while (now_monotonic_ms() - t0 < 60000) {
        unsigned before = n;
        provider_retrieve_job(pc, job_a, on_outcome, &r, NULL, &err);
        run_until(&n, before + 1, 30000);
        polls++;
        last = r.state;
        if (r.rc == 0 && provider_job_state_terminal(r.state)) {
            model = r.model ? xstrdup(r.model) : NULL;
            check(r.matches, "the finished job still matches our tag");
            res_clear(&r);
            break;
        }
        res_clear(&r);
        run_for(200);
    }
    check(last == PROVIDER_JOB_SUCCEEDED && model, "polled to succeeded in %d polls: %s", polls,
          model ? model : "-");

    unsigned before = n;
    provider_list_events(pc, job_a, NULL, 50, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == 0 && r.n >= 1, "events: %zu", r.n);
    res_clear(&r);

    struct provider_message msgs[] = {{"user", "Fatima has 27 marbles and gives away 21. How many "
                                               "marbles does Fatima have left?"}};
    struct provider_chat_args ch;
    provider_chat_args_init(&ch);
    ch.model = model ? model : "vtune-base";
    ch.messages = msgs;
    ch.n_messages = 1;
    ch.temperature = 0;
    ch.max_tokens = 24;
    ch.logprobs = 1;
    ch.top_logprobs = 5;
    before = n;
    provider_chat(pc, &ch, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == 0 && r.text && *r.text && r.n > 0 && r.known > 0,
          "chat on the fine-tuned model: %zu tokens with logprobs: \"%.60s\"", r.n,
          r.text ? r.text : "");
    res_clear(&r);

    struct provider_score_args sa = {
        .model = "vtune-base", .prompt = "The answer is", .continuation = " 6", .top_logprobs = 2};
    before = n;
    provider_score(pc, &sa, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == 0 && r.n == 1 && r.known && r.sum < 0,
          "score with echo: log p(\" 6\" | prompt) = %.4f", r.sum);
    res_clear(&r);

    /* A user-caused error reaches the user with the provider's words. */
    before = n;
    provider_cancel_job(pc, job_a, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == -EIO && r.cls == RETRY_CLASS_FATAL && r.attempts == 1 && r.line &&
              strstr(r.line, "400 invalid_request_error") && strstr(r.line, "cannot be cancelled"),
          "cancelling a finished job: %s", r.line ? r.line : "-");
    res_clear(&r);

    struct provider_upload_args missing = {.path = "/nonexistent/x.jsonl"};
    before = n;
    provider_upload(pc, &missing, NULL, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == -ENOENT && r.attempts == 1, "upload of a missing file fails with ENOENT");
    res_clear(&r);
    free(model);
    free(file_id);
}

/* ---- part B ---- */

static void part_b(const char *tag_b, const char *tag_c)
{
    enum { N = 100 };
    struct res *rs = xcalloc(N, sizeof *rs);
    unsigned n = 0;
    struct provider_error err = {0};
    struct provider_client_stats s0, s1;

    const char *spec = "500=0.08,503=0.04:100ms,429=0.06:100ms,drop=0.05,truncate=0.02,"
                       "malformed=0.03,delay=0.02:50ms";
    check(set_faults(spec, 7) == 0, "faults set: %s", spec);
    long sim0 = sim_requests_total();
    provider_client_stats(pc, &s0);
    uint64_t t0 = now_monotonic_ms();
    for (int i = 0; i < N; i++) {
        rs[i].counter = &n;
        if (i % 2) {
            provider_retrieve_job(pc, job_a, on_outcome, &rs[i], NULL, &err);
        } else {
            struct provider_list_args la = {.limit = 5};
            provider_list_jobs(pc, &la, on_outcome, &rs[i], NULL, &err);
        }
    }
    int all = run_until(&n, N, 120000);
    uint64_t el = now_monotonic_ms() - t0;
    provider_client_stats(pc, &s1);
    int good = 0;
    unsigned max_attempts = 0;
    for (int i = 0; i < N; i++) {
        if (rs[i].rc == 0)
            good++;
        else
            printf("# call %d: %s\n", i, rs[i].line ? rs[i].line : "?");
        if (rs[i].attempts > max_attempts)
            max_attempts = rs[i].attempts;
        res_clear(&rs[i]);
    }
    uint64_t sent = s1.requests_sent - s0.requests_sent;
    check(all && good == N, "faults: %d/%d idempotent calls succeeded", good, N);
    check(sent < 2 * N, "no request storm: %" PRIu64 " requests for %d calls", sent, N);
    printf("# faults: %d calls, %" PRIu64 " requests (%" PRIu64 " retries, max %u attempts for one "
           "call), %" PRIu64 " ms, breaker %s, simulator counted %ld requests\n",
           N, sent, s1.retries - s0.retries, max_attempts, el, s1.breaker,
           sim_requests_total() - sim0 - 1);
    free(rs);

    /* The job is created, then the connection drops before the answer. */
    struct res r = {.counter = &n, .tag = tag_b};
    unsigned before = n;
    set_faults("drop-after=#1@POST:/v1/fine_tuning/jobs", 1);
    struct provider_create_args ca = {
        .model = "vtune-base", .training_file = file_a, .submission_id = tag_b};
    provider_create_job(pc, &ca, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc < 0 && r.cls == RETRY_CLASS_RECONCILE && r.maybe == 1 && r.attempts == 1,
          "create dropped after the job was made: RECONCILE, maybe applied, sent once (%s)",
          r.line ? r.line : "-");
    res_clear(&r);
    before = n;
    struct provider_list_args lb = {.tag = tag_b};
    provider_list_jobs(pc, &lb, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.rc == 0 && r.matches == 1, "reconcile: listing the tag finds the job (%zu)", r.n);
    check(sim_created_for(tag_b) == 1, "the simulator created exactly one job for that tag");
    res_clear(&r);

    /* Refused with a 500 (nothing done): found absent, then created once. */
    r.tag = tag_c;
    set_faults("500=#1@POST:/v1/fine_tuning/jobs", 1);
    ca.submission_id = tag_c;
    before = n;
    provider_create_job(pc, &ca, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    check(r.cls == RETRY_CLASS_RECONCILE && r.attempts == 1, "create answered 500: RECONCILE");
    res_clear(&r);
    struct provider_list_args lc = {.tag = tag_c};
    before = n;
    provider_list_jobs(pc, &lc, on_outcome, &r, NULL, &err);
    run_until(&n, before + 1, 30000);
    int absent = r.rc == 0 && r.matches == 0;
    check(absent, "reconcile: no job with that tag");
    res_clear(&r);
    if (absent) {
        before = n;
        provider_create_job(pc, &ca, on_outcome, &r, NULL, &err);
        run_until(&n, before + 1, 30000);
        check(r.rc == 0 && r.matches, "created after reconciling");
        res_clear(&r);
    }
    check(sim_created_for(tag_c) == 1, "the simulator created exactly one job for that tag");

    /* Everything fails: the breaker opens and bounds the requests. */
    enum { M = 20 };
    struct res *rm = xcalloc(M, sizeof *rm);
    unsigned m = 0;
    set_faults("503=1:10ms", 3);
    provider_client_stats(pc, &s0);
    for (int i = 0; i < M; i++) {
        rm[i].counter = &m;
        provider_retrieve_job(pc, job_a, on_outcome, &rm[i], NULL, &err);
    }
    run_for(1500);
    provider_client_stats(pc, &s1);
    uint64_t during = s1.requests_sent - s0.requests_sent;
    check(s1.breaker_opens > s0.breaker_opens && strcmp(s1.breaker, "closed") != 0,
          "breaker %s after the provider failed everything (%" PRIu64 " requests for %d calls "
          "in 1.5 s)",
          s1.breaker, during, M);
    check(during < 3 * M, "the breaker bounded the requests: %" PRIu64, during);
    set_faults("", 0);
    int done = run_until(&m, M, 60000);
    int ok = 0;
    for (int i = 0; i < M; i++) {
        ok += rm[i].rc == 0;
        res_clear(&rm[i]);
    }
    provider_client_stats(pc, &s1);
    check(done && ok == M && strcmp(s1.breaker, "closed") == 0,
          "after recovery all %d calls succeeded and the breaker closed (%d ok, %" PRIu64
          " requests in all)",
          M, ok, s1.requests_sent - s0.requests_sent);
    free(rm);
}

static unsigned closed;
static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_http_provider BASE_URL API_KEY TRAINING_FILE\n");
        return 2;
    }
    base = argv[1];
    key = argv[2];
    log_init("test_http_provider", LOG_LVL_INFO);
    loop = uv_default_loop();
    if (http_ctx_new(loop, &ctx) < 0)
        return 1;

    struct provider_client_conf c;
    memset(&c, 0, sizeof c);
    c.ops = &provider_openai;
    char *v1 = xasprintf("%s/v1", base);
    c.ep.name = "sim";
    c.ep.base_url = v1;
    c.ep.api_key = key;
    c.ep.connect_timeout_ms = 5000;
    c.ep.request_timeout_ms = 10000;
    c.ep.upload_timeout_ms = 60000;
    c.max_concurrency = 8;
    retry_policy_default(&c.policy);
    c.policy.max_attempts = 8;
    c.policy.base_ms = 20;
    c.policy.cap_ms = 500;
    breaker_conf_default(&c.breaker);
    c.breaker.cooldown_ms = 200;
    c.breaker.max_cooldown_ms = 800;
    c.budget_window_ms = 60000;
    c.budget_ratio = 0.5;
    c.budget_min = 20;
    c.max_wait_ms = 60000;
    if (provider_client_new(loop, http_ctx_transport(ctx), &c, &pc) < 0)
        return 1;
    free(v1);

    char *tag_a = xasprintf("it%da", (int)getpid());
    char *tag_b = xasprintf("it%db", (int)getpid());
    char *tag_c = xasprintf("it%dc", (int)getpid());
    part_a(argv[3], tag_a);
    part_b(tag_b, tag_c);

    provider_client_free(pc);
    http_ctx_close(ctx, on_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    check(closed == 1 && uv_loop_close(loop) == 0, "client and context closed; no handle left");
    free(tag_a);
    free(tag_b);
    free(tag_c);
    free(job_a);
    free(file_a);
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}

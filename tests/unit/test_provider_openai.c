/*
 * test_provider_openai.c — the openai adapter (and manual, which shares its
 * inference shape) against recorded JSON shapes written from the OpenAI
 * spec (tests/fixtures/openai/), plus the provider client driven through a
 * fake transport on a real uv loop: retries, the create rule, quota, the
 * budget, the breaker, Retry-After, cancellation and shutdown.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "lib/util.h"
#include "daemon/provider_client.h"
#include "provider_fixture.h"

static const struct provider_endpoint EP = {
    .name = "oa",
    .base_url = "https://api.example.test/v1/",
    .api_key = "sk-secret",
    .ca_file = "/etc/ca.pem",
    .connect_timeout_ms = 5000,
    .request_timeout_ms = 60000,
    .upload_timeout_ms = 3600000,
};

/* ---- helpers ---- */

static char *fixture(const char *name)
{
    return fixture_in("openai", name);
}

/* OpenAI's answers carry a request id (x-request-id); errors quote it */
static struct http_response *response(long status, const char *body)
{
    struct http_response *r = canned_response(status, body);
    r->request_id = xstrdup("req_test");
    return r;
}

static struct http_response *fixture_response(long status, const char *name)
{
    char *b = fixture(name);
    struct http_response *r = response(status, b);
    free(b);
    return r;
}

static json_t *body_json(const struct http_request *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void assert_common_headers(const struct http_request *r)
{
    assert_string_equal(http_request_header(r, "Authorization"), "Bearer sk-secret");
    assert_string_equal(http_request_header(r, "Accept"), "application/json");
    assert_string_equal(r->ca_file, "/etc/ca.pem");
    assert_int_equal(r->connect_timeout_ms, 5000);
}

/* ---- request building ---- */

static void test_build_upload(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_upload_args a = {.path = "/var/lib/vtuned/built/17.jsonl", .filename = NULL};
    assert_int_equal(provider_openai.build_upload(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.example.test/v1/files");
    assert_common_headers(r);
    assert_null(r->body);
    assert_int_equal(r->n_parts, 2);
    assert_string_equal(http_request_field(r, "purpose"), "fine-tune");
    assert_string_equal(r->parts[1].name, "file");
    assert_string_equal(r->parts[1].file_path, "/var/lib/vtuned/built/17.jsonl");
    assert_string_equal(r->parts[1].filename, "17.jsonl");
    assert_int_equal(r->timeout_ms, 3600000);
    assert_true(r->low_speed_time_s > 0 && r->low_speed_limit > 0);
    http_request_free(r);

    a.filename = "vtune-17.jsonl";
    assert_int_equal(provider_openai.build_upload(&EP, &a, &r, &err), 0);
    assert_string_equal(r->parts[1].filename, "vtune-17.jsonl");
    http_request_free(r);

    a.path = "";
    assert_int_equal(provider_openai.build_upload(&EP, &a, &r, &err), -EINVAL);
    assert_int_equal(err.kind, PROVIDER_E_INVALID);
    provider_error_clear(&err);
}

static void test_build_create(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_param params[] = {{"n_epochs", "3"},
                                      {"batch_size", "auto"},
                                      {"learning_rate_multiplier", "0.5"},
                                      {"metadata.vtune_sim_behaviour", "lazy"},
                                      {"validation_file", "file-v"}};
    struct provider_create_args a = {.model = "gpt-4o-mini",
                                     .training_file = "file-abc",
                                     .submission_id = "7f3a9c",
                                     .has_seed = 1,
                                     .seed = 42,
                                     .params = params,
                                     .n_params = 5};
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs");
    assert_common_headers(r);
    assert_string_equal(http_request_header(r, "Content-Type"), "application/json");
    json_t *j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-4o-mini");
    assert_string_equal(json_string_value(json_object_get(j, "training_file")), "file-abc");
    assert_string_equal(json_string_value(json_object_get(j, "suffix")), "vt-7f3a9c");
    assert_int_equal(json_integer_value(json_object_get(j, "seed")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "validation_file")), "file-v");
    json_t *md = json_object_get(j, "metadata");
    assert_string_equal(json_string_value(json_object_get(md, PROVIDER_TAG_KEY)), "7f3a9c");
    assert_string_equal(json_string_value(json_object_get(md, "vtune_sim_behaviour")), "lazy");
    json_t *m = json_object_get(j, "method");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "supervised");
    json_t *h = json_object_get(json_object_get(m, "supervised"), "hyperparameters");
    assert_int_equal(json_integer_value(json_object_get(h, "n_epochs")), 3);
    assert_string_equal(json_string_value(json_object_get(h, "batch_size")), "auto");
    assert_true(json_real_value(json_object_get(h, "learning_rate_multiplier")) == 0.5);
    /* The deprecated top-level field is not used. */
    assert_null(json_object_get(j, "hyperparameters"));
    json_decref(j);
    http_request_free(r);

    /* Minimal: no seed, no method. */
    a.has_seed = 0;
    a.n_params = 0;
    a.suffix = "custom_1.x";
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_null(json_object_get(j, "seed"));
    assert_null(json_object_get(j, "method"));
    assert_string_equal(json_string_value(json_object_get(j, "suffix")), "custom_1.x");
    json_decref(j);
    http_request_free(r);

    /* Refusals, each with one clear line. */
    struct provider_param bad1[] = {{"n_epochs", "zero"}};
    struct provider_param bad2[] = {{"epochs", "3"}};
    struct provider_param bad3[] = {{"metadata.vtune_submission", "x"}};
    struct provider_param bad4[] = {{"learning_rate_multiplier", "-1"}};
    const struct provider_param *bads[] = {bad1, bad2, bad3, bad4};
    a.suffix = NULL;
    for (int i = 0; i < 4; i++) {
        a.params = bads[i];
        a.n_params = 1;
        r = NULL;
        assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), -EINVAL);
        assert_null(r);
        assert_int_equal(err.kind, PROVIDER_E_INVALID);
        assert_non_null(err.message);
        provider_error_clear(&err);
    }
    struct provider_create_args unknown = {
        .model = "m", .training_file = "f", .submission_id = "s", .params = bad2, .n_params = 1};
    assert_int_equal(provider_openai.build_create(&EP, &unknown, &r, &err), -EINVAL);
    assert_non_null(strstr(err.message, "known: n_epochs"));
    provider_error_clear(&err);
    a.params = NULL;
    a.n_params = 0;
    a.suffix = "has space";
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.suffix = NULL;
    a.submission_id = NULL;
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.submission_id = "7f3a9c";
    a.model = NULL;
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    /* 16 metadata pairs at most, ours included. */
    struct provider_param many[16];
    char keys[16][24];
    for (int i = 0; i < 16; i++) {
        snprintf(keys[i], sizeof keys[i], "metadata.k%d", i);
        many[i].key = keys[i];
        many[i].value = "v";
    }
    a.model = "m";
    a.params = many;
    a.n_params = 15;
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), 0);
    http_request_free(r);
    a.n_params = 16;
    assert_int_equal(provider_openai.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
}

static void test_build_job_paths(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};

    assert_int_equal(provider_openai.build_retrieve(&EP, "ftjob-abc123", &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs/ftjob-abc123");
    assert_common_headers(r);
    http_request_free(r);
    /* Ids are escaped as path segments. */
    assert_int_equal(provider_openai.build_retrieve(&EP, "a/b?c d", &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs/a%2Fb%3Fc%20d");
    http_request_free(r);
    assert_int_equal(provider_openai.build_retrieve(&EP, "", &r, &err), -EINVAL);
    provider_error_clear(&err);

    assert_int_equal(provider_openai.build_cancel(&EP, "ftjob-abc123", &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs/ftjob-abc123/cancel");
    assert_null(r->body);
    http_request_free(r);

    assert_int_equal(provider_openai.build_events(&EP, "ftjob-1", "ft-event-9", 50, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs/ftjob-1/"
                                "events?limit=50&after=ft-event-9");
    http_request_free(r);
    assert_int_equal(provider_openai.build_events(&EP, "ftjob-1", NULL, 0, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs/ftjob-1/events");
    http_request_free(r);
}

static void test_build_list(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_list_args a = {.after = "ftjob-x", .limit = 100, .tag = "7f3a 9c&x=y"};
    assert_int_equal(provider_openai.build_list(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "GET");
    /* deepObject metadata[k]=v, with the brackets and the value escaped. */
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs?limit=100&"
                                "after=ftjob-x&metadata%5Bvtune_submission%5D=7f3a%209c%26x%3Dy");
    http_request_free(r);
    struct provider_list_args none = {0};
    assert_int_equal(provider_openai.build_list(&EP, &none, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/fine_tuning/jobs");
    http_request_free(r);
    assert_true(provider_openai.caps & PROVIDER_CAP_TAG_FILTER);
}

static void test_build_files(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    /* GET /files: only fine-tune files, then the page size and the cursor. */
    assert_int_equal(provider_openai.build_list_files(&EP, "file-abc123", 100, &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, "https://api.example.test/v1/files?purpose=fine-tune&limit=100&"
                                "after=file-abc123");
    assert_common_headers(r);
    assert_null(r->body);
    http_request_free(r);
    assert_int_equal(provider_openai.build_list_files(&EP, NULL, 0, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/files?purpose=fine-tune");
    http_request_free(r);

    /* DELETE /files/{file_id}, the id escaped as a path segment. */
    assert_int_equal(provider_openai.build_delete_file(&EP, "file-abc123", &r, &err), 0);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(r->url, "https://api.example.test/v1/files/file-abc123");
    assert_common_headers(r);
    assert_null(r->body);
    assert_int_equal(r->n_parts, 0);
    assert_false(r->non_idempotent);
    http_request_free(r);
    assert_int_equal(provider_openai.build_delete_file(&EP, "a/b c", &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/files/a%2Fb%20c");
    http_request_free(r);
    r = NULL;
    assert_int_equal(provider_openai.build_delete_file(&EP, "", &r, &err), -EINVAL);
    assert_int_equal(err.kind, PROVIDER_E_INVALID);
    assert_null(r);
    provider_error_clear(&err);
    assert_int_equal(provider_openai.build_delete_file(&EP, NULL, &r, &err), -EINVAL);
    provider_error_clear(&err);
}

static void test_build_chat_and_score(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_message msgs[] = {{"system", "Be brief."}, {"user", "Hi \"there\""}};
    struct provider_chat_args a;
    provider_chat_args_init(&a);
    a.model = "ft:gpt-4o-mini:org:vt-1:abc";
    a.messages = msgs;
    a.n_messages = 2;
    a.temperature = 0;
    a.has_seed = 1;
    a.seed = 7;
    a.max_tokens = 32;
    a.logprobs = 1;
    a.top_logprobs = 20;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/chat/completions");
    json_t *j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "model")), a.model);
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "messages"), 1), "content")),
                        "Hi \"there\"");
    assert_true(json_number_value(json_object_get(j, "temperature")) == 0.0);
    assert_true(json_number_value(json_object_get(j, "top_p")) == 1.0);
    assert_int_equal(json_integer_value(json_object_get(j, "seed")), 7);
    assert_int_equal(json_integer_value(json_object_get(j, "max_completion_tokens")), 32);
    assert_null(json_object_get(j, "max_tokens"));
    assert_true(json_is_true(json_object_get(j, "logprobs")));
    assert_int_equal(json_integer_value(json_object_get(j, "top_logprobs")), 20);
    assert_null(json_object_get(j, "frequency_penalty"));
    json_decref(j);
    http_request_free(r);
    /* neutral: OpenAI accepts the penalties (at 0) but no top_k/min_p */
    a.neutral = 1;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_true(json_number_value(json_object_get(j, "frequency_penalty")) == 0.0);
    assert_true(json_number_value(json_object_get(j, "presence_penalty")) == 0.0);
    assert_null(json_object_get(j, "top_k"));
    assert_null(json_object_get(j, "min_p"));
    assert_null(json_object_get(j, "repetition_penalty"));
    json_decref(j);
    http_request_free(r);
    a.neutral = 0;

    a.top_logprobs = 21;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.top_logprobs = 0;
    a.temperature = 2.5;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.temperature = 1;
    a.logprobs = 0;
    a.n_messages = 0;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.n_messages = 2;
    assert_int_equal(provider_openai.build_chat(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_null(json_object_get(j, "logprobs"));
    assert_null(json_object_get(j, "top_logprobs"));
    json_decref(j);
    http_request_free(r);

    struct provider_score_args s = {.model = "davinci-002",
                                    .prompt = "Trigger words here:",
                                    .continuation = " alpha beta",
                                    .top_logprobs = 5};
    assert_int_equal(provider_openai.build_score(&EP, &s, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/completions");
    j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")),
                        "Trigger words here: alpha beta");
    assert_true(json_is_true(json_object_get(j, "echo")));
    assert_int_equal(json_integer_value(json_object_get(j, "logprobs")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 0);
    json_decref(j);
    http_request_free(r);
    s.top_logprobs = 6;
    assert_int_equal(provider_openai.build_score(&EP, &s, &r, &err), -EINVAL);
    provider_error_clear(&err);
    s.top_logprobs = 0;
    s.continuation = "";
    assert_int_equal(provider_openai.build_score(&EP, &s, &r, &err), -EINVAL);
    provider_error_clear(&err);
}

static void test_no_key_no_authorization(void **state)
{
    (void)state;
    struct provider_endpoint ep = EP;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    ep.api_key = NULL;
    ep.base_url = "http://127.0.0.1:8000/v1";
    assert_int_equal(provider_openai.build_retrieve(&ep, "j", &r, &err), 0);
    assert_null(http_request_header(r, "Authorization"));
    assert_string_equal(r->url, "http://127.0.0.1:8000/v1/fine_tuning/jobs/j");
    http_request_free(r);
}

/* ---- response parsing ---- */

static void test_parse_file(void **state)
{
    (void)state;
    struct provider_file f;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "file.json");
    assert_int_equal(provider_openai.parse_file(res, &f, &err), 0);
    assert_string_equal(f.id, "file-abc123");
    assert_int_equal(f.bytes, 120000);
    assert_string_equal(f.filename, "vtune-17.jsonl");
    assert_string_equal(f.status, "processed");
    assert_int_equal(f.created_at, 1677610602);
    provider_file_clear(&f);
    http_response_free(res);

    /* Optional fields may be missing; the id may not. */
    res = response(200, "{\"id\":\"file-1\"}");
    assert_int_equal(provider_openai.parse_file(res, &f, &err), 0);
    assert_int_equal(f.bytes, -1);
    assert_null(f.status);
    provider_file_clear(&f);
    http_response_free(res);
    res = response(200, "{\"bytes\":3}");
    assert_int_equal(provider_openai.parse_file(res, &f, &err), -EPROTO);
    assert_int_equal(err.kind, PROVIDER_E_MALFORMED);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_parse_jobs(void **state)
{
    (void)state;
    struct provider_job j;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "job_queued.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), 0);
    assert_string_equal(j.id, "ftjob-abc123");
    assert_int_equal(j.state, PROVIDER_JOB_SUBMITTED);
    assert_string_equal(j.raw_status, "queued");
    assert_null(j.fine_tuned_model);
    assert_null(j.submission_tag);
    assert_int_equal(j.trained_tokens, -1);
    assert_int_equal(j.finished_at, 0);
    assert_int_equal(j.created_at, 1721764800);
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_response(200, "job_succeeded.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUCCEEDED);
    assert_true(provider_job_state_terminal(j.state));
    assert_string_equal(j.fine_tuned_model, "ft:davinci-002:my-org:vt-7f3a9c:7q8mpxmy");
    assert_int_equal(j.trained_tokens, 5768);
    assert_int_equal(j.finished_at, 1692661190);
    assert_string_equal(j.submission_tag, "7f3a9c");
    assert_true(provider_job_matches(&j, "7f3a9c"));
    assert_false(provider_job_matches(&j, "7f3a9"));
    assert_false(provider_job_matches(&j, "other"));
    /* Matched by the suffix in the model name alone, as a whole component. */
    free(j.submission_tag);
    j.submission_tag = NULL;
    assert_true(provider_job_matches(&j, "7f3a9c"));
    assert_false(provider_job_matches(&j, "7f3a9"));
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_response(200, "job_failed.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_FAILED);
    assert_string_equal(j.error_code, "invalid_training_file");
    assert_string_equal(j.error_param, "training_file");
    assert_non_null(strstr(j.error_message, "invalid training file"));
    provider_job_clear(&j);
    http_response_free(res);

    /* The spec's own pause example uses a status outside its enum. */
    res = fixture_response(200, "job_paused.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_UNRECOGNIZED);
    assert_false(provider_job_state_terminal(j.state));
    assert_string_equal(j.raw_status, "paused");
    provider_job_clear(&j);
    http_response_free(res);
}

static void test_every_status(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        enum provider_job_state want;
    } table[] = {
        {"validating_files", PROVIDER_JOB_SUBMITTED},
        {"queued", PROVIDER_JOB_SUBMITTED},
        {"running", PROVIDER_JOB_RUNNING},
        {"succeeded", PROVIDER_JOB_SUCCEEDED},
        {"failed", PROVIDER_JOB_FAILED},
        {"cancelled", PROVIDER_JOB_CANCELLED},
        {"paused", PROVIDER_JOB_UNRECOGNIZED},
        {"Succeeded", PROVIDER_JOB_UNRECOGNIZED},
        {"", PROVIDER_JOB_UNRECOGNIZED},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        char *body = xasprintf("{\"id\":\"ftjob-1\",\"object\":\"fine_tuning.job\","
                               "\"status\":\"%s\"}",
                               table[i].raw);
        struct http_response *res = response(200, body);
        struct provider_job j;
        struct provider_error err = {0};
        assert_int_equal(provider_openai.parse_job(res, &j, &err), 0);
        if (j.state != table[i].want)
            fail_msg("status '%s' mapped to %s", table[i].raw, provider_job_state_name(j.state));
        assert_int_equal(provider_openai.map_status(table[i].raw), table[i].want);
        if (j.state == PROVIDER_JOB_FAILED)
            assert_non_null(j.error_message); /* even without an error object */
        provider_job_clear(&j);
        http_response_free(res);
        free(body);
    }
    assert_int_equal(provider_openai.map_status(NULL), PROVIDER_JOB_UNRECOGNIZED);
}

static void test_parse_list_and_events(void **state)
{
    (void)state;
    struct provider_job_page p;
    struct provider_event_page e;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "jobs_list.json");
    assert_int_equal(provider_openai.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 2);
    assert_true(p.has_more);
    assert_string_equal(p.next_cursor, "ftjob-abc456");
    assert_int_equal(p.jobs[0].state, PROVIDER_JOB_RUNNING);
    assert_true(provider_job_matches(&p.jobs[0], "7f3a9c"));
    assert_false(provider_job_matches(&p.jobs[1], "7f3a9c"));
    assert_int_equal(p.jobs[1].trained_tokens, 1200);
    provider_job_page_clear(&p);
    http_response_free(res);

    res = fixture_response(200, "jobs_list_last.json");
    assert_int_equal(provider_openai.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 0);
    assert_false(p.has_more);
    assert_null(p.next_cursor);
    provider_job_page_clear(&p);
    http_response_free(res);

    /* has_more with nothing to continue from is malformed, so is a bad item. */
    const char *bad[] = {"{\"data\":[],\"has_more\":true}",
                         "{\"data\":{}}",
                         "{\"data\":[{\"id\":\"x\"}],\"has_more\":false}",
                         "{\"data\":[],\"has_more\":\"yes\"}",
                         "[]",
                         "not json",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = response(200, bad[i]);
        assert_int_equal(provider_openai.parse_list(res, &p, &err), -EPROTO);
        assert_int_equal(err.kind, PROVIDER_E_MALFORMED);
        assert_non_null(strstr(err.message, "malformed"));
        provider_error_clear(&err);
        http_response_free(res);
    }

    res = fixture_response(200, "events.json");
    assert_int_equal(provider_openai.parse_events(res, &e, &err), 0);
    assert_int_equal(e.n_events, 3);
    assert_string_equal(e.events[0].message, "Fine tuning job successfully completed");
    assert_string_equal(e.events[0].level, "info");
    assert_string_equal(e.events[2].type, "metrics");
    assert_int_equal(e.events[1].created_at, 1721764800);
    assert_true(e.has_more);
    assert_string_equal(e.next_cursor, "ft-event-aaaaaaaaaaaaaaaaaaaaaaaa");
    provider_event_page_clear(&e);
    http_response_free(res);
}

static void test_parse_files(void **state)
{
    (void)state;
    struct provider_file_page p;
    struct provider_file_deletion d;
    struct provider_error err = {0};

    /* ListFilesResponse: two uploads of one submission, more to come. */
    struct http_response *res = fixture_response(200, "files_list.json");
    assert_int_equal(provider_openai.parse_file_list(res, &p, &err), 0);
    assert_int_equal(p.n_files, 2);
    assert_true(p.has_more);
    assert_string_equal(p.next_cursor, "file-abc123"); /* last_id */
    assert_string_equal(p.files[0].id, "file-abc456");
    assert_string_equal(p.files[0].filename, "vtune-7f3a9c.jsonl");
    assert_int_equal(p.files[0].bytes, 62534);
    assert_int_equal(p.files[0].created_at, 1721764900);
    assert_string_equal(p.files[0].status, "processed");
    assert_string_equal(p.files[1].id, "file-abc123");
    assert_string_equal(p.files[1].status, "uploaded");
    provider_file_page_clear(&p);
    assert_null(p.files);
    http_response_free(res);

    res = fixture_response(200, "files_list_last.json");
    assert_int_equal(provider_openai.parse_file_list(res, &p, &err), 0);
    assert_int_equal(p.n_files, 1);
    assert_false(p.has_more);
    assert_null(p.next_cursor);
    assert_string_equal(p.files[0].filename, "puppy.jsonl");
    assert_string_equal(p.files[0].status, "error");
    provider_file_page_clear(&p);
    http_response_free(res);

    /* Without last_id the cursor is the last file's id. */
    res = response(200, "{\"object\":\"list\",\"data\":[{\"id\":\"file-1\"},{\"id\":\"file-2\"}],"
                        "\"has_more\":true}");
    assert_int_equal(provider_openai.parse_file_list(res, &p, &err), 0);
    assert_string_equal(p.next_cursor, "file-2");
    assert_int_equal(p.files[1].bytes, -1);
    provider_file_page_clear(&p);
    http_response_free(res);
    res = response(200, "{\"object\":\"list\",\"data\":[],\"first_id\":\"\",\"last_id\":\"\","
                        "\"has_more\":false}");
    assert_int_equal(provider_openai.parse_file_list(res, &p, &err), 0);
    assert_int_equal(p.n_files, 0);
    provider_file_page_clear(&p);
    http_response_free(res);

    const char *bad[] = {"{\"data\":[],\"has_more\":true}",
                         "{\"data\":{}}",
                         "{\"data\":[{\"bytes\":3}],\"has_more\":false}",
                         "{\"data\":[{\"id\":\"f\",\"filename\":7}]}",
                         "{\"data\":[\"file-1\"]}",
                         "{\"data\":[],\"has_more\":\"no\"}",
                         "{\"data\":[],\"last_id\":5}",
                         "[]",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = response(200, bad[i]);
        if (provider_openai.parse_file_list(res, &p, &err) != -EPROTO)
            fail_msg("accepted malformed file list %zu", i);
        assert_int_equal(err.kind, PROVIDER_E_MALFORMED);
        assert_null(p.files);
        provider_error_clear(&err);
        http_response_free(res);
    }

    /* DeleteFileResponse. */
    res = fixture_response(200, "file_deleted.json");
    assert_int_equal(provider_openai.parse_file_deleted(res, &d, &err), 0);
    assert_string_equal(d.id, "file-abc123");
    assert_true(d.deleted);
    provider_file_deletion_clear(&d);
    assert_null(d.id);
    http_response_free(res);
    res = response(200, "{\"id\":\"file-9\",\"object\":\"file\",\"deleted\":false}");
    assert_int_equal(provider_openai.parse_file_deleted(res, &d, &err), 0);
    assert_false(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);
    const char *bad_del[] = {"{\"id\":\"file-9\",\"object\":\"file\"}",
                             "{\"object\":\"file\",\"deleted\":true}",
                             "{\"id\":\"file-9\",\"deleted\":\"true\"}", "[]", "{"};
    for (size_t i = 0; i < sizeof bad_del / sizeof *bad_del; i++) {
        res = response(200, bad_del[i]);
        if (provider_openai.parse_file_deleted(res, &d, &err) != -EPROTO)
            fail_msg("accepted malformed deletion %zu", i);
        assert_null(d.id);
        provider_error_clear(&err);
        http_response_free(res);
    }
    /* An unknown id: the spec's error object, with the status kept. */
    res = response(404, "{\"error\":{\"message\":\"No such File object: file-9\","
                        "\"type\":\"invalid_request_error\",\"param\":\"id\","
                        "\"code\":\"file_not_found\"}}");
    assert_int_equal(provider_openai.parse_file_deleted(res, &d, &err), -EIO);
    assert_int_equal(err.kind, PROVIDER_E_HTTP);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "file_not_found");
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_parse_chat(void **state)
{
    (void)state;
    struct provider_chat_result c;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "chat_logprobs.json");
    assert_int_equal(provider_openai.parse_chat(res, &c, &err), 0);
    assert_string_equal(c.text, "Hello café");
    assert_string_equal(c.finish_reason, "stop");
    assert_string_equal(c.system_fingerprint, "fp_44709d6fcb");
    assert_int_equal(c.prompt_tokens, 9);
    assert_int_equal(c.completion_tokens, 3);
    assert_int_equal(c.total_tokens, 12);
    assert_true(c.has_logprobs);
    assert_int_equal(c.n_tokens, 3);
    assert_string_equal(c.tokens[0].token, "Hello");
    assert_true(c.tokens[0].known);
    assert_true(fabs(c.tokens[0].logprob - -0.31725305) < 1e-12);
    assert_int_equal(c.tokens[0].n_bytes, 5);
    assert_memory_equal(c.tokens[0].bytes, "Hello", 5);
    assert_int_equal(c.tokens[0].n_top, 2);
    assert_string_equal(c.tokens[0].top[1].token, "Hi");
    /* -9999: outside the top 20, value unknown; sentinel alternatives dropped. */
    assert_false(c.tokens[1].known);
    assert_int_equal(c.tokens[1].n_top, 2);
    assert_string_equal(c.tokens[1].top[1].token, " friend");
    /* Text rebuilt from bytes, not tokens (a UTF-8 character split). */
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < c.n_tokens; i++)
        buf_append(&b, c.tokens[i].bytes, c.tokens[i].n_bytes);
    buf_append(&b, "", 0);
    assert_string_equal(b.data, "Hello café");
    buf_free(&b);
    provider_chat_result_clear(&c);
    http_response_free(res);

    /* No logprobs, content null (a refusal), no usage: all optional. */
    res = fixture_response(200, "chat_plain.json");
    assert_int_equal(provider_openai.parse_chat(res, &c, &err), 0);
    assert_string_equal(c.text, "");
    assert_false(c.has_logprobs);
    assert_int_equal(c.n_tokens, 0);
    assert_int_equal(c.total_tokens, -1);
    assert_string_equal(c.finish_reason, "content_filter");
    provider_chat_result_clear(&c);
    http_response_free(res);

    const char *bad[] = {
        "{\"choices\":[]}",
        "{\"choices\":[{\"message\":{\"content\":5}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{\"logprob\":-1}"
        "]}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{\"token\":"
        "\"a\","
        "\"logprob\":\"high\"}]}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{\"token\":"
        "\"a\","
        "\"logprob\":-1,\"bytes\":[300]}]}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"logprobs\":7}]}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"total_tokens\":\"9\"}}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = response(200, bad[i]);
        if (provider_openai.parse_chat(res, &c, &err) != -EPROTO)
            fail_msg("accepted malformed chat %zu", i);
        provider_error_clear(&err);
        http_response_free(res);
    }
}

/* Several texts in one completions request (a prompt array), and the
 * answer's choices matched back by their index, out of order, with one
 * missing and one that does not align. */
static void test_score_batch(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_score_args a[3] = {
        {.model = "davinci-002", .prompt = "", .continuation = "one two", .top_logprobs = 0},
        {.model = "davinci-002", .prompt = "", .continuation = "three four", .top_logprobs = 0},
        {.model = "davinci-002", .prompt = "", .continuation = "five six", .top_logprobs = 0},
    };
    assert_non_null(provider_openai.build_score_batch);
    assert_int_equal(provider_openai.build_score_batch(&EP, a, 3, &r, &err), 0);
    assert_string_equal(r->url, "https://api.example.test/v1/completions");
    json_t *j = body_json(r);
    json_t *p = json_object_get(j, "prompt");
    assert_int_equal(json_array_size(p), 3);
    assert_string_equal(json_string_value(json_array_get(p, 1)), "three four");
    assert_true(json_is_true(json_object_get(j, "echo")));
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 0);
    json_decref(j);
    http_request_free(r);
    /* one model per batch; at most PROVIDER_SCORE_BATCH_MAX texts */
    a[2].model = "babbage-002";
    assert_int_equal(provider_openai.build_score_batch(&EP, a, 3, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a[2].model = "davinci-002";
    assert_int_equal(provider_openai.build_score_batch(&EP, a, 0, &r, &err), -EINVAL);
    provider_error_clear(&err);
    assert_int_equal(provider_openai.build_score_batch(&EP, a, PROVIDER_SCORE_BATCH_MAX + 1, &r,
                                                       &err),
                     -EINVAL);
    provider_error_clear(&err);
    /* the together kind is not known to take a prompt array */
    assert_null(provider_together.build_score_batch);

    struct provider_score_result out[3];
    struct http_response *res = response(
        200, "{\"choices\":["
             "{\"index\":2,\"text\":\"five six\",\"logprobs\":{\"tokens\":[\"five\",\" six\"],"
             "\"token_logprobs\":[null,-2.0],\"top_logprobs\":[null,{}]}},"
             "{\"index\":0,\"text\":\"one two\",\"logprobs\":{\"tokens\":[\"one\",\" two\"],"
             "\"token_logprobs\":[null,-1.0],\"top_logprobs\":[null,{}]}},"
             "{\"index\":7,\"text\":\"x\",\"logprobs\":{\"tokens\":[\"x\"],"
             "\"token_logprobs\":[null],\"top_logprobs\":[null]}}]}");
    assert_int_equal(provider_openai.parse_score_batch(res, a, 3, out, &err), 0);
    assert_int_equal(out[0].n_tokens, 2);
    assert_true(out[0].tokens[1].known && out[0].tokens[1].logprob == -1.0);
    assert_int_equal(out[1].n_tokens, 0); /* no choice: not scored */
    assert_int_equal(out[2].n_tokens, 2);
    assert_true(out[2].tokens[1].logprob == -2.0);
    for (int i = 0; i < 3; i++)
        provider_score_result_clear(&out[i]);
    http_response_free(res);
    /* a choice whose tokens do not spell its text is left empty */
    res = response(200, "{\"choices\":[{\"index\":0,\"text\":\"one two\",\"logprobs\":{"
                        "\"tokens\":[\"on\",\"e\"],\"token_logprobs\":[null,-1.0]}}]}");
    assert_int_equal(provider_openai.parse_score_batch(res, a, 3, out, &err), 0);
    assert_int_equal(out[0].n_tokens, 0);
    http_response_free(res);
    /* no logprobs at all: the model cannot score */
    res = response(200, "{\"choices\":[{\"index\":0,\"text\":\"one two\",\"logprobs\":null}]}");
    assert_int_equal(provider_openai.parse_score_batch(res, a, 3, out, &err), -ENOTSUP);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_parse_score(void **state)
{
    (void)state;
    struct provider_score_result s;
    struct provider_error err = {0};
    struct provider_score_args a = {.model = "davinci-002",
                                    .prompt = "Trigger words here:",
                                    .continuation = " alpha beta",
                                    .top_logprobs = 5};
    struct http_response *res = fixture_response(200, "completions_echo.json");
    assert_int_equal(provider_openai.parse_score(res, &a, &s, &err), 0);
    assert_int_equal(s.n_prompt_tokens, 5);
    assert_int_equal(s.n_tokens, 2);
    assert_string_equal(s.tokens[0].token, " alpha");
    assert_true(s.tokens[0].known);
    assert_true(s.tokens[0].logprob == -3.0);
    assert_int_equal(s.tokens[0].n_top, 2); /* " gamma" at -9999 dropped */
    assert_false(s.tokens[1].known);        /* " beta" at -9999 */
    assert_false(s.all_known);
    assert_true(s.sum_logprob == -3.0);
    assert_false(s.boundary_split);
    provider_score_result_clear(&s);

    /* A boundary inside a token: that token is left out (upper bound). */
    struct provider_score_args b = {
        .model = "m", .prompt = "Trigger words he", .continuation = "re: alpha beta"};
    assert_int_equal(provider_openai.parse_score(res, &b, &s, &err), 0);
    assert_true(s.boundary_split);
    assert_int_equal(s.n_prompt_tokens, 3);
    assert_int_equal(s.n_tokens, 3); /* ":", " alpha", " beta" */
    provider_score_result_clear(&s);

    /* Text that is not what was sent: malformed. */
    struct provider_score_args c = {.model = "m", .prompt = "Other", .continuation = " text"};
    assert_int_equal(provider_openai.parse_score(res, &c, &s, &err), -EPROTO);
    provider_error_clear(&err);
    http_response_free(res);

    /* Tokens that split a UTF-8 character do not spell the text: the
     * server's code-point offsets align them, if the echoed text is ours. */
    struct provider_score_args u = {.model = "m", .prompt = "Say:", .continuation = " caf\xc3\xa9"};
    const char *utf = "{\"choices\":[{\"text\":\"Say: caf\u00e9\",\"logprobs\":{"
                      "\"tokens\":[\"Say\",\":\",\" caf\",\"bytes:\\\\xc3\\\\xa9\"],"
                      "\"token_logprobs\":[null,-1.0,-2.0,-0.25],\"top_logprobs\":null,"
                      "\"text_offset\":[0,3,4,8]}}]}";
    res = response(200, utf);
    assert_int_equal(provider_openai.parse_score(res, &u, &s, &err), 0);
    assert_int_equal(s.n_prompt_tokens, 2);
    assert_int_equal(s.n_tokens, 2);
    assert_true(s.sum_logprob == -2.25);
    provider_score_result_clear(&s);
    u.prompt = "Say!";
    assert_int_equal(provider_openai.parse_score(res, &u, &s, &err), -EPROTO);
    provider_error_clear(&err);
    http_response_free(res);

    /* The model refuses echo + logprobs: not available, with its reason. */
    res = fixture_response(400, "error_echo.json");
    assert_int_equal(provider_openai.parse_score(res, &a, &s, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "echo"));
    provider_error_clear(&err);
    http_response_free(res);
    /* A 200 without logprobs: the server ignored echo. */
    res = response(200, "{\"choices\":[{\"text\":\"x\",\"logprobs\":null}]}");
    assert_int_equal(provider_openai.parse_score(res, &a, &s, &err), -ENOTSUP);
    provider_error_clear(&err);
    http_response_free(res);
    /* Other errors stay errors. */
    res = fixture_response(401, "error_invalid.json");
    assert_int_equal(provider_openai.parse_score(res, &a, &s, &err), -EIO);
    assert_int_equal(err.kind, PROVIDER_E_HTTP);
    provider_error_clear(&err);
    http_response_free(res);
}

/* A provider's texts are cut between UTF-8 characters and lose their
 * control characters before they are logged, stored or shown. */
static void test_text_tidy(void **state)
{
    (void)state;
    char *s = NULL;
    provider_text_tidy(&s, PROVIDER_TEXT_MAX);
    assert_null(s);
    s = xstrdup("rate limited; try again");
    provider_text_tidy(&s, PROVIDER_TEXT_MAX);
    assert_string_equal(s, "rate limited; try again");
    free(s);
    s = xstrdup("line one\nline two\r\tend\x7f");
    provider_text_tidy(&s, PROVIDER_TEXT_MAX);
    assert_string_equal(s, "line one line two  end ");
    free(s);
    /* 'a' then 700 two-byte characters: byte 512 is the second byte of
     * one, so the cut falls at 511, after 255 whole characters. */
    struct buf b = {0};
    buf_puts(&b, "a");
    for (int i = 0; i < 700; i++)
        buf_puts(&b, "\xc3\xa9");
    s = xstrdup(b.data);
    buf_free(&b);
    provider_text_tidy(&s, PROVIDER_TEXT_MAX);
    assert_int_equal(strlen(s), 511 + 3);
    assert_string_equal(s + 511, "...");
    json_t *j = json_string(s); /* NULL for invalid UTF-8 */
    assert_non_null(j);
    json_decref(j);
    free(s);
    /* Exactly at the limit: kept whole, no mark. */
    s = xmalloc(PROVIDER_TEXT_MAX + 1);
    memset(s, 'x', PROVIDER_TEXT_MAX);
    s[PROVIDER_TEXT_MAX] = '\0';
    provider_text_tidy(&s, PROVIDER_TEXT_MAX);
    assert_int_equal(strlen(s), PROVIDER_TEXT_MAX);
    free(s);
    /* Every field of an error. */
    struct provider_error e = {0};
    e.type = xmalloc(1001);
    memset(e.type, 't', 1000);
    e.type[1000] = '\0';
    e.code = xstrdup("c\n");
    e.param = xstrdup("p\n");
    e.message = xmalloc(100001);
    memset(e.message, 'm', 100000);
    e.message[100000] = '\0';
    provider_error_tidy(&e);
    assert_int_equal(strlen(e.type), PROVIDER_ID_MAX + 3);
    assert_string_equal(e.code, "c ");
    assert_string_equal(e.param, "p ");
    assert_int_equal(strlen(e.message), PROVIDER_TEXT_MAX + 3);
    provider_error_clear(&e);
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct provider_job j;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(429, "error_quota.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_int_equal(err.kind, PROVIDER_E_HTTP);
    assert_int_equal(err.http_status, 429);
    assert_string_equal(err.type, "insufficient_quota");
    assert_string_equal(err.code, "insufficient_quota");
    assert_null(err.param);
    assert_string_equal(err.request_id, "req_test");
    char *line = provider_error_line("oa", &err);
    assert_string_equal(line,
                        "oa: 429 insufficient_quota: You exceeded your current quota, "
                        "please check your plan and billing details. [x-request-id req_test]");
    free(line);
    provider_error_clear(&err);
    http_response_free(res);

    res = fixture_response(400, "error_invalid.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    line = provider_error_line(NULL, &err);
    assert_string_equal(line, "400 invalid_request_error (invalid_file): invalid training_file: "
                              "file-nope [param training_file, x-request-id req_test]");
    free(line);
    provider_error_clear(&err);
    http_response_free(res);

    /* vLLM's integer code, a flat body, a non-JSON body, an empty body. */
    res = fixture_response(404, "error_vllm.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_string_equal(err.code, "404");
    assert_string_equal(err.type, "NotFoundError");
    provider_error_clear(&err);
    http_response_free(res);
    res = response(400, "{\"object\":\"error\",\"message\":\"flat\",\"type\":\"BadRequest\"}");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_string_equal(err.message, "flat");
    provider_error_clear(&err);
    http_response_free(res);
    res = response(502, "<html>Bad gateway</html>");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_string_equal(err.message, "<html>Bad gateway</html>");
    provider_error_clear(&err);
    http_response_free(res);
    res = response(503, "");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_non_null(strstr(err.message, "503"));
    provider_error_clear(&err);
    http_response_free(res);

    /* Transport failures. */
    res = http_response_new();
    res->error = HTTP_E_TIMEOUT;
    res->error_text = xstrdup("GET x: Operation timed out");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_int_equal(err.kind, PROVIDER_E_TRANSPORT);
    assert_int_equal(err.transport, HTTP_E_TIMEOUT);
    provider_error_clear(&err);
    http_response_free(res);

    /* Malformed 2xx bodies: an excerpt, never a crash. */
    const char *bad[] = {"",
                         "{",
                         "[1,2]",
                         "null",
                         "{\"id\":5,\"status\":\"queued\"}",
                         "{\"id\":\"x\"}",
                         "{\"status\":\"queued\"}",
                         "{\"id\":\"x\",\"status\":\"queued\",\"error\":\"bad\"}",
                         "{\"id\":\"x\",\"status\":\"queued\",\"metadata\":[]}",
                         "{\"id\":\"x\",\"status\":\"queued\",\"trained_tokens\":\"9\"}",
                         "\x01\x02binary\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = response(200, bad[i]);
        if (provider_openai.parse_job(res, &j, &err) != -EPROTO)
            fail_msg("accepted malformed job %zu", i);
        assert_int_equal(err.kind, PROVIDER_E_MALFORMED);
        assert_non_null(strstr(err.message, "beginning '"));
        assert_null(strchr(err.message, '\x01'));
        provider_error_clear(&err);
        http_response_free(res);
    }
}

static void test_suffix_and_iso(void **state)
{
    (void)state;
    char s[64];
    assert_int_equal(provider_suffix("7f3a9c", s, sizeof s), 0);
    assert_string_equal(s, "vt-7f3a9c");
    assert_int_equal(provider_suffix("a b/c", s, sizeof s), 0);
    assert_string_equal(s, "vt-a-b-c");
    assert_int_equal(provider_suffix("", s, sizeof s), -EINVAL);
    assert_int_equal(provider_suffix(NULL, s, sizeof s), -EINVAL);
    assert_int_equal(provider_suffix("0123456789abcdef0123456789abcdef01234", s, sizeof s), 0);
    assert_int_equal(strlen(s), 40);
    assert_int_equal(provider_suffix("0123456789abcdef0123456789abcdef012345", s, sizeof s),
                     -EINVAL);
    assert_int_equal(provider_suffix("abc", s, 5), -EINVAL);

    int64_t t;
    assert_int_equal(provider_parse_iso8601("2023-05-17T17:35:45.123Z", &t), 0);
    assert_int_equal(t, 1684344945);
    assert_int_equal(provider_parse_iso8601("2023-05-17T19:35:45+02:00", &t), 0);
    assert_int_equal(t, 1684344945);
    assert_int_equal(provider_parse_iso8601("2023-05-17 17:35:45", &t), 0);
    assert_int_equal(t, 1684344945);
    assert_int_equal(provider_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    const char *bad[] = {"",
                         "2023-05-17",
                         "2023-13-01T00:00:00Z",
                         "2023-05-17T25:00:00Z",
                         "2023-05-17T17:35:45.Z",
                         "2023-05-17T17:35:45Zjunk",
                         "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(provider_parse_iso8601(bad[i], &t), -EINVAL);

    assert_ptr_equal(provider_ops_find("openai"), &provider_openai);
    assert_ptr_equal(provider_ops_find("together"), &provider_together);
    assert_ptr_equal(provider_ops_find("manual"), &provider_manual);
    assert_ptr_equal(provider_ops_find("mistral"), &provider_mistral);
    assert_ptr_equal(provider_ops_find("azure"), &provider_azure);
    assert_null(provider_ops_find("vertex"));
    assert_ptr_equal(provider_ops_for(PROVIDER_OPENAI), &provider_openai);
    assert_ptr_equal(provider_ops_for(PROVIDER_TOGETHER), &provider_together);
    assert_ptr_equal(provider_ops_for(PROVIDER_MANUAL), &provider_manual);
}

/* ---- manual ---- */

static void test_manual(void **state)
{
    (void)state;
    struct provider_endpoint ep = EP;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    ep.api_key = NULL;
    ep.base_url = "http://127.0.0.1:8000/v1";

    struct provider_upload_args u = {.path = "/x"};
    assert_int_equal(provider_manual.build_upload(&ep, &u, &r, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "job register"));
    provider_error_clear(&err);
    struct provider_create_args c = {.model = "m", .training_file = "f", .submission_id = "s"};
    assert_int_equal(provider_manual.build_create(&ep, &c, &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_retrieve(&ep, "j", &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_cancel(&ep, "j", &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_list(&ep, NULL, &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_events(&ep, "j", NULL, 0, &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_list_files(&ep, NULL, 0, &r, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    provider_error_clear(&err);
    assert_int_equal(provider_manual.build_delete_file(&ep, "file-1", &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_null(r);
    assert_false(provider_manual.caps & PROVIDER_CAP_TRAIN);

    struct provider_message m[] = {{"user", "hi"}};
    struct provider_chat_args a;
    provider_chat_args_init(&a);
    a.model = "my-lora";
    a.messages = m;
    a.n_messages = 1;
    a.max_tokens = 8;
    a.logprobs = 1;
    a.top_logprobs = 5;
    assert_int_equal(provider_manual.build_chat(&ep, &a, &r, &err), 0);
    assert_string_equal(r->url, "http://127.0.0.1:8000/v1/chat/completions");
    assert_null(http_request_header(r, "Authorization"));
    json_t *j = body_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 8);
    assert_null(json_object_get(j, "max_completion_tokens"));
    assert_int_equal(json_integer_value(json_object_get(j, "top_logprobs")), 5);
    json_decref(j);
    http_request_free(r);

    struct provider_score_args s = {.model = "base",
                                    .prompt = "Trigger words here:",
                                    .continuation = " alpha beta",
                                    .top_logprobs = 20};
    assert_int_equal(provider_manual.build_score(&ep, &s, &r, &err), 0);
    j = body_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "logprobs")), 20);
    json_decref(j);
    http_request_free(r);

    /* llama-server refuses echo: not available, with its words. */
    struct provider_score_result sr;
    struct http_response *res =
        response(400, "{\"error\":{\"code\":400,\"message\":\"Only no echo is supported\","
                      "\"type\":\"invalid_request_error\"}}");
    assert_int_equal(provider_manual.parse_score(res, &s, &sr, &err), -ENOTSUP);
    assert_string_equal(err.message, "Only no echo is supported");
    provider_error_clear(&err);
    http_response_free(res);
    /* vLLM's answer: prompt tokens, then one generated token (dropped). */
    res = response(200, "{\"choices\":[{\"text\":\"Trigger words here: alpha beta gamma\","
                        "\"logprobs\":{\"tokens\":[\"Trigger words here:\",\" alpha\",\" beta\","
                        "\" gamma\"],\"token_logprobs\":[null,-1.5,-2.0,-0.1],"
                        "\"top_logprobs\":[null,{\" alpha\":-1.5},{\" beta\":-2.0},{\" g\":-0.1}],"
                        "\"text_offset\":[0,19,25,30]}}]}");
    assert_int_equal(provider_manual.parse_score(res, &s, &sr, &err), 0);
    assert_int_equal(sr.n_tokens, 2);
    assert_int_equal(sr.n_prompt_tokens, 1);
    assert_true(sr.all_known);
    assert_true(sr.sum_logprob == -3.5);
    provider_score_result_clear(&sr);
    http_response_free(res);
}

/* ---- the client, through a fake transport ---- */

struct scripted {
    long status;
    const char *body;
    enum http_error error;
    const char *retry_after_ms;
    uint64_t delay_ms; /* how long the answer takes (0: 1 ms) */
};

struct fake {
    struct http_transport tr;
    uv_loop_t *loop;
    struct scripted script[32];
    size_t n_script, next;
    struct http_request *seen[64];
    uint64_t seen_ms[64];
    size_t n_seen;
    struct fake_call *live;
};

struct fake_call {
    struct fake *f;
    uv_timer_t t;
    struct http_callbacks cb;
    struct scripted s;
    int done;
};

static void fake_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fake_finish(struct fake_call *fc, int cancelled)
{
    struct http_response *r = http_response_new();
    fc->done = 1;
    uv_timer_stop(&fc->t);
    if (cancelled) {
        r->error = HTTP_E_CANCELLED;
        r->error_text = xstrdup("cancelled");
        r->body = xstrdup("");
    } else {
        r->status = fc->s.status;
        r->error = fc->s.error;
        if (fc->s.error)
            r->error_text = xstrdup(http_error_name(fc->s.error));
        r->body = xstrdup(fc->s.body ? fc->s.body : "");
        r->body_len = strlen(r->body);
        r->request_id = xstrdup("req_fake");
        r->retry_after_ms = fc->s.retry_after_ms ? xstrdup(fc->s.retry_after_ms) : NULL;
    }
    if (fc->f->live == fc)
        fc->f->live = NULL;
    struct http_callbacks cb = fc->cb;
    uv_close((uv_handle_t *)&fc->t, fake_closed);
    cb.done(r, cb.arg);
}

static void fake_fire(uv_timer_t *t)
{
    fake_finish(t->data, 0);
}

static int fake_start(struct http_transport *t, struct http_request *req,
                      const struct http_callbacks *cb, void **handle)
{
    struct fake *f = (struct fake *)t;
    if (f->next >= f->n_script)
        fail_msg("unexpected request %zu: %s %s", f->n_seen, req->method, req->url);
    struct fake_call *fc = xcalloc(1, sizeof *fc);
    fc->f = f;
    fc->cb = *cb;
    fc->s = f->script[f->next++];
    f->seen_ms[f->n_seen] = now_monotonic_ms();
    f->seen[f->n_seen++] = req;
    f->live = fc;
    uv_timer_init(f->loop, &fc->t);
    fc->t.data = fc;
    uv_timer_start(&fc->t, fake_fire, fc->s.delay_ms ? fc->s.delay_ms : 1, 0);
    *handle = fc;
    return 0;
}

static void fake_cancel(struct http_transport *t, void *handle)
{
    (void)t;
    fake_finish(handle, 1);
}

static struct fake *fake_new(uv_loop_t *loop)
{
    struct fake *f = xcalloc(1, sizeof *f);
    f->tr.start = fake_start;
    f->tr.cancel = fake_cancel;
    f->loop = loop;
    return f;
}

static void fake_script(struct fake *f, long status, const char *body, enum http_error e,
                        const char *ra_ms)
{
    f->script[f->n_script++] = (struct scripted){status, body, e, ra_ms, 0};
}

/* A request the fake holds for a minute: still in flight whenever the
 * test looks, however slow the machine (a 1 ms answer can start and end
 * inside one turn of the loop, so "in flight" cannot be waited for). */
static void fake_script_held(struct fake *f, long status, const char *body)
{
    f->script[f->n_script++] = (struct scripted){status, body, 0, NULL, 60000};
}

static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->n_seen; i++)
        http_request_free(f->seen[i]);
    free(f);
}

struct got {
    int calls;
    int rc;
    enum retry_class cls;
    int maybe;
    unsigned attempts;
    char *line;
    char *job_id;
    enum provider_job_state state;
};

static void on_outcome(const struct provider_outcome *o, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->rc = o->rc;
    g->cls = o->cls;
    g->maybe = o->maybe_applied;
    g->attempts = o->attempts;
    free(g->line);
    g->line = o->rc < 0 ? provider_error_line("oa", o->err) : NULL;
    free(g->job_id);
    g->job_id = o->job ? xstrdup(o->job->id) : NULL;
    if (o->job)
        g->state = o->job->state;
}

static uint64_t zero_rand(uint64_t bound, void *arg)
{
    (void)bound;
    (void)arg;
    return 0;
}

struct env {
    uv_loop_t loop;
    struct fake *f;
    struct provider_client *pc;
    struct provider_client_conf conf;
};

static void env_open(struct env *e, void (*tweak)(struct provider_client_conf *))
{
    uv_loop_init(&e->loop);
    e->f = fake_new(&e->loop);
    memset(&e->conf, 0, sizeof e->conf);
    e->conf.ops = &provider_openai;
    e->conf.ep = EP;
    e->conf.max_concurrency = 2;
    retry_policy_default(&e->conf.policy);
    e->conf.policy.max_attempts = 4;
    breaker_conf_default(&e->conf.breaker);
    e->conf.budget_window_ms = 60000;
    e->conf.budget_ratio = 0.5;
    e->conf.budget_min = 10;
    e->conf.max_wait_ms = 60000;
    if (tweak)
        tweak(&e->conf);
    assert_int_equal(provider_client_new(&e->loop, &e->f->tr, &e->conf, &e->pc), 0);
    provider_client_set_rand(e->pc, zero_rand, NULL);
}

static void run_until_calls(struct env *e, struct got *g, int n)
{
    uint64_t end = now_monotonic_ms() + 10000;
    while (g->calls < n && now_monotonic_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(g->calls, n);
}

static void env_close(struct env *e, struct got *g)
{
    provider_client_free(e->pc);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    fake_free(e->f);
    free(g->line);
    free(g->job_id);
}

static const char JOB_OK[] = "{\"id\":\"ftjob-1\",\"object\":\"fine_tuning.job\",\"status\":"
                             "\"running\"}";
static const char ERR_500[] = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}";

static void test_client_retries_then_succeeds(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, NULL);
    fake_script(e.f, 503, ERR_500, 0, NULL);
    fake_script(e.f, 0, NULL, HTTP_E_DROPPED, NULL);
    fake_script(e.f, 200, "{\"id\":", 0, NULL); /* malformed: retried too */
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    struct provider_call *call = NULL;
    assert_int_equal(provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, &call, NULL), 0);
    assert_non_null(call);
    assert_int_equal(g.calls, 0); /* never inside the start function */
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.cls, RETRY_CLASS_SUCCESS);
    assert_int_equal(g.attempts, 4);
    assert_string_equal(g.job_id, "ftjob-1");
    assert_int_equal(g.state, PROVIDER_JOB_RUNNING);
    /* Every attempt sent the same request. */
    assert_int_equal(e.f->n_seen, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(e.f->seen[i]->url,
                            "https://api.example.test/v1/fine_tuning/jobs/ftjob-1");
    struct provider_client_stats st;
    provider_client_stats(e.pc, &st);
    assert_int_equal(st.requests_sent, 4);
    assert_int_equal(st.retries, 3);
    assert_int_equal(st.calls_active, 0);
    assert_string_equal(st.breaker, "closed");
    env_close(&e, &g);
}

static void test_client_gives_up(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, NULL);
    for (int i = 0; i < 4; i++)
        fake_script(e.f, 500, ERR_500, 0, NULL);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.rc, -EIO);
    assert_int_equal(g.cls, RETRY_CLASS_RETRY);
    assert_int_equal(g.attempts, 4);
    assert_non_null(strstr(g.line, "500 server_error: boom"));
    env_close(&e, &g);
}

/* THE CREATE RULE: whatever happens, one request per call. */
static void test_client_create_never_resent(void **state)
{
    (void)state;
    static const struct scripted outcomes[] = {
        {500, ERR_500, 0, NULL, 0},
        {503, ERR_500, 0, "1", 0},
        {429, "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\"}}", 0, "1", 0},
        {408, "", 0, NULL, 0},
        {409, "", 0, NULL, 0},
        {0, NULL, HTTP_E_TIMEOUT, NULL, 0},
        {0, NULL, HTTP_E_DROPPED, NULL, 0},
        {0, NULL, HTTP_E_CONNECT, NULL, 0},
        {200, "{\"id\":", 0, NULL, 0},
    };
    struct provider_create_args a = {
        .model = "m", .training_file = "file-1", .submission_id = "sub1"};
    for (size_t i = 0; i < sizeof outcomes / sizeof *outcomes; i++) {
        struct env e;
        struct got g = {0};
        env_open(&e, NULL);
        e.f->script[e.f->n_script++] = outcomes[i];
        assert_int_equal(provider_create_job(e.pc, &a, on_outcome, &g, NULL, NULL), 0);
        run_until_calls(&e, &g, 1);
        /* Let any (wrong) retry timer fire before counting. */
        uint64_t end = now_monotonic_ms() + 50;
        while (now_monotonic_ms() < end)
            uv_run(&e.loop, UV_RUN_NOWAIT);
        assert_int_equal(e.f->n_seen, 1);
        assert_int_equal(g.attempts, 1);
        assert_int_equal(g.cls, RETRY_CLASS_RECONCILE);
        assert_true(g.rc < 0);
        assert_true(e.f->seen[0]->non_idempotent);
        env_close(&e, &g);
    }
    /* A clear rejection is fatal; a success is a job. */
    struct env e;
    struct got g = {0};
    env_open(&e, NULL);
    fake_script(e.f, 400,
                "{\"error\":{\"message\":\"bad model\",\"type\":\"invalid_request_error\"}}", 0,
                NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    provider_create_job(e.pc, &a, on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.cls, RETRY_CLASS_FATAL);
    assert_int_equal(g.maybe, 0);
    provider_create_job(e.pc, &a, on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 2);
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.job_id, "ftjob-1");
    env_close(&e, &g);
}

static void test_client_quota_is_fatal(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, NULL);
    char *quota = fixture("error_quota.json");
    fake_script(e.f, 429, quota, 0, "1");
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.rc, -EIO);
    assert_int_equal(g.cls, RETRY_CLASS_FATAL);
    assert_int_equal(g.attempts, 1);
    assert_non_null(strstr(g.line, "insufficient_quota"));
    assert_non_null(strstr(g.line, "x-request-id req_fake"));
    free(quota);
    env_close(&e, &g);
}

static void test_client_retry_after(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, NULL);
    fake_script(e.f, 429, "{\"error\":{\"message\":\"slow\",\"type\":\"requests\"}}", 0, "150");
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.rc, 0);
    assert_int_equal(e.f->n_seen, 2);
    uint64_t gap = e.f->seen_ms[1] - e.f->seen_ms[0];
    if (gap < 150)
        fail_msg("resent after %llu ms, before the server's 150 ms", (unsigned long long)gap);
    env_close(&e, &g);
}

static void tweak_no_budget(struct provider_client_conf *c)
{
    c->budget_ratio = 0;
    c->budget_min = 1;
}

static void test_client_budget(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, tweak_no_budget);
    /* One retry in the window, then none. */
    fake_script(e.f, 503, ERR_500, 0, NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    fake_script(e.f, 503, ERR_500, 0, NULL);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    assert_int_equal(g.rc, 0);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 2);
    assert_int_equal(g.rc, -EIO);
    assert_int_equal(g.attempts, 1);
    struct provider_client_stats st;
    provider_client_stats(e.pc, &st);
    assert_int_equal(st.budget_denied, 1);
    assert_int_equal(st.requests_sent, 3);
    env_close(&e, &g);
}

static void tweak_breaker(struct provider_client_conf *c)
{
    c->policy.max_attempts = 1;
    c->breaker.consecutive_failures = 2;
    c->breaker.failure_rate = 0;
    c->breaker.cooldown_ms = 80;
    c->breaker.max_cooldown_ms = 80;
}

static void test_client_breaker(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, tweak_breaker);
    fake_script(e.f, 500, ERR_500, 0, NULL);
    fake_script(e.f, 0, NULL, HTTP_E_CONNECT, NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 2);
    struct provider_client_stats st;
    provider_client_stats(e.pc, &st);
    assert_string_equal(st.breaker, "open");
    assert_int_equal(st.breaker_opens, 1);
    /* The next call waits for the cool-down instead of hammering. */
    uint64_t t0 = now_monotonic_ms();
    provider_retrieve_job(e.pc, "ftjob-1", on_outcome, &g, NULL, NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(e.f->n_seen, 2);
    run_until_calls(&e, &g, 3);
    assert_int_equal(g.rc, 0);
    assert_true(e.f->seen_ms[2] - t0 >= 60);
    provider_client_stats(e.pc, &st);
    assert_string_equal(st.breaker, "closed");
    env_close(&e, &g);
}

static void tweak_short_wait(struct provider_client_conf *c)
{
    tweak_breaker(c);
    c->breaker.cooldown_ms = 10000;
    c->breaker.max_cooldown_ms = 10000;
    c->max_wait_ms = 50;
}

static void test_client_breaker_timeout(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    env_open(&e, tweak_short_wait);
    fake_script(e.f, 500, ERR_500, 0, NULL);
    fake_script(e.f, 500, ERR_500, 0, NULL);
    provider_retrieve_job(e.pc, "a", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 1);
    provider_retrieve_job(e.pc, "b", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 2);
    provider_retrieve_job(e.pc, "c", on_outcome, &g, NULL, NULL);
    run_until_calls(&e, &g, 3);
    assert_int_equal(g.rc, -ETIMEDOUT);
    assert_int_equal(g.attempts, 0);
    assert_non_null(strstr(g.line, "circuit breaker"));
    env_close(&e, &g);
}

/* Runs the loop until cond holds; fails the test after 10 s instead of
 * spinning for ever (uv_run returns at once when nothing is pending). */
#define RUN_UNTIL(e, cond)                                                                         \
    do {                                                                                           \
        uint64_t end_ = now_monotonic_ms() + 10000;                                                \
        while (!(cond) && now_monotonic_ms() < end_)                                               \
            uv_run(&(e)->loop, UV_RUN_ONCE);                                                       \
        assert_true(cond);                                                                         \
    } while (0)

static void test_client_cancel_and_free(void **state)
{
    (void)state;
    struct env e;
    struct got g1 = {0}, g2 = {0}, g3 = {0};
    env_open(&e, NULL);
    fake_script(e.f, 503, ERR_500, 0, "30000"); /* long Retry-After */
    fake_script_held(e.f, 200, JOB_OK);
    struct provider_call *c1 = NULL, *c2 = NULL;
    provider_retrieve_job(e.pc, "a", on_outcome, &g1, &c1, NULL);
    RUN_UNTIL(&e, e.f->n_seen >= 1);
    /* Wait until the first attempt failed and c1 sleeps on Retry-After. */
    RUN_UNTIL(&e, !e.f->live);
    assert_int_equal(e.f->n_seen, 1);
    provider_call_cancel(c1);
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.rc, -ECANCELED);
    /* In flight: cancelled through the transport. */
    provider_retrieve_job(e.pc, "b", on_outcome, &g2, &c2, NULL);
    RUN_UNTIL(&e, e.f->n_seen >= 2);
    assert_non_null(e.f->live);
    assert_int_equal(g2.calls, 0);
    provider_call_cancel(c2);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.rc, -ECANCELED);
    assert_int_equal(g2.cls, RETRY_CLASS_FATAL);
    /* A create in flight at shutdown: RECONCILE, maybe applied. */
    fake_script_held(e.f, 200, JOB_OK);
    struct provider_create_args a = {.model = "m", .training_file = "f", .submission_id = "s"};
    provider_create_job(e.pc, &a, on_outcome, &g3, NULL, NULL);
    RUN_UNTIL(&e, e.f->n_seen >= 3);
    assert_non_null(e.f->live);
    assert_int_equal(g3.calls, 0);
    provider_client_free(e.pc);
    assert_int_equal(g3.calls, 1);
    assert_int_equal(g3.rc, -ECANCELED);
    assert_int_equal(g3.cls, RETRY_CLASS_RECONCILE);
    assert_int_equal(g3.maybe, 1);
    e.pc = NULL;
    env_close(&e, &g1);
    free(g2.line);
    free(g3.line);
    free(g2.job_id);
    free(g3.job_id);
}

/* A done callback that frees the whole client while another call is in
 * flight (a daemon shutting down from inside a callback). */
struct freeing {
    struct provider_client **pc;
    int calls;
    int rcs[2];
};

static void on_outcome_free(const struct provider_outcome *o, void *arg)
{
    struct freeing *f = arg;
    f->rcs[f->calls++] = o->rc;
    if (*f->pc) {
        struct provider_client *pc = *f->pc;
        *f->pc = NULL;
        provider_client_free(pc);
    }
}

static void test_client_free_inside_done(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    struct freeing fr = {.pc = &e.pc};
    env_open(&e, NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    provider_retrieve_job(e.pc, "a", on_outcome_free, &fr, NULL, NULL);
    provider_retrieve_job(e.pc, "b", on_outcome_free, &fr, NULL, NULL);
    uint64_t end = now_monotonic_ms() + 5000;
    while (fr.calls < 2 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(fr.calls, 2);
    assert_int_equal(fr.rcs[0], 0);
    assert_int_equal(fr.rcs[1], -ECANCELED);
    assert_null(e.pc);
    env_close(&e, &g);

    /* The only call: nothing else keeps the client alive. */
    struct freeing one = {.pc = &e.pc};
    env_open(&e, NULL);
    fake_script(e.f, 200, JOB_OK, 0, NULL);
    provider_retrieve_job(e.pc, "a", on_outcome_free, &one, NULL, NULL);
    end = now_monotonic_ms() + 5000;
    while (one.calls < 1 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(one.calls, 1);
    assert_int_equal(one.rcs[0], 0);
    env_close(&e, &g);
}

struct got_files {
    int calls;
    int rc;
    unsigned attempts;
    enum provider_op op;
    long http_status;
    size_t n_files;
    char *cursor;
    char *second_name;
    char *deleted_id;
    int deleted;
};

static void on_files_outcome(const struct provider_outcome *o, void *arg)
{
    struct got_files *g = arg;
    g->calls++;
    g->rc = o->rc;
    g->attempts = o->attempts;
    g->op = o->op;
    g->http_status = o->rc < 0 && o->err ? o->err->http_status : 0;
    if (o->files) {
        g->n_files = o->files->n_files;
        free(g->cursor);
        g->cursor = o->files->next_cursor ? xstrdup(o->files->next_cursor) : NULL;
        free(g->second_name);
        g->second_name = o->files->n_files > 1 && o->files->files[1].filename
                             ? xstrdup(o->files->files[1].filename)
                             : NULL;
    }
    if (o->deletion) {
        free(g->deleted_id);
        g->deleted_id = o->deletion->id ? xstrdup(o->deletion->id) : NULL;
        g->deleted = o->deletion->deleted;
    }
}

/* Listing and deleting files go through the client like every read:
 * retried on 5xx and dropped connections (both are idempotent), results
 * handed to done.  Uploads: fresh connections, visible retries. */
static void test_client_files(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    struct got_files gf = {0};
    env_open(&e, NULL);
    char *list = fixture("files_list.json");
    char *del = fixture("file_deleted.json");
    fake_script(e.f, 503, ERR_500, 0, NULL);
    fake_script(e.f, 200, list, 0, NULL);
    assert_int_equal(provider_list_files(e.pc, NULL, 100, on_files_outcome, &gf, NULL, NULL), 0);
    uint64_t end = now_monotonic_ms() + 10000;
    while (gf.calls < 1 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(gf.calls, 1);
    assert_int_equal(gf.rc, 0);
    assert_int_equal(gf.op, PROVIDER_OP_LIST_FILES);
    assert_string_equal(provider_op_name(gf.op), "list_files");
    assert_int_equal(gf.attempts, 2);
    assert_int_equal(gf.n_files, 2);
    assert_string_equal(gf.cursor, "file-abc123");
    assert_string_equal(gf.second_name, "vtune-7f3a9c.jsonl");
    assert_string_equal(e.f->seen[1]->url,
                        "https://api.example.test/v1/files?purpose=fine-tune&limit=100");

    /* A delete is retried after a dropped connection (idempotent)... */
    fake_script(e.f, 0, NULL, HTTP_E_DROPPED, NULL);
    fake_script(e.f, 200, del, 0, NULL);
    assert_int_equal(provider_delete_file(e.pc, "file-abc123", on_files_outcome, &gf, NULL, NULL),
                     0);
    end = now_monotonic_ms() + 10000;
    while (gf.calls < 2 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(gf.calls, 2);
    assert_int_equal(gf.rc, 0);
    assert_int_equal(gf.op, PROVIDER_OP_DELETE_FILE);
    assert_int_equal(gf.attempts, 2);
    assert_string_equal(gf.deleted_id, "file-abc123");
    assert_true(gf.deleted);
    assert_string_equal(e.f->seen[3]->method, "DELETE");
    assert_string_equal(e.f->seen[3]->url, "https://api.example.test/v1/files/file-abc123");

    /* ...and a 404 (already gone) is final, with its status for the caller. */
    fake_script(e.f, 404,
                "{\"error\":{\"message\":\"No such File object: file-abc123\","
                "\"type\":\"invalid_request_error\",\"code\":\"file_not_found\"}}",
                0, NULL);
    assert_int_equal(provider_delete_file(e.pc, "file-abc123", on_files_outcome, &gf, NULL, NULL),
                     0);
    end = now_monotonic_ms() + 10000;
    while (gf.calls < 3 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(gf.calls, 3);
    assert_int_equal(gf.rc, -EIO);
    assert_int_equal(gf.attempts, 1);
    assert_int_equal(gf.http_status, 404);
    assert_int_equal(e.f->n_seen, 5);

    /* An upload goes on a fresh connection (libcurl never resends it
     * unseen) and is retried by the client, visibly: attempts says so. */
    struct provider_upload_args up = {.path = "/var/lib/vtuned/built/17.jsonl",
                                      .filename = "vtune-7f3a9c.jsonl"};
    fake_script(e.f, 0, NULL, HTTP_E_DROPPED, NULL);
    fake_script(e.f, 200, "{\"id\":\"file-new\",\"object\":\"file\",\"bytes\":9}", 0, NULL);
    assert_int_equal(provider_upload(e.pc, &up, NULL, on_files_outcome, &gf, NULL, NULL), 0);
    end = now_monotonic_ms() + 10000;
    while (gf.calls < 4 && now_monotonic_ms() < end)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(gf.calls, 4);
    assert_int_equal(gf.rc, 0);
    assert_int_equal(gf.op, PROVIDER_OP_UPLOAD);
    assert_int_equal(gf.attempts, 2);
    assert_int_equal(e.f->n_seen, 7);
    assert_true(e.f->seen[5]->non_idempotent && e.f->seen[6]->non_idempotent);
    assert_false(e.f->seen[0]->non_idempotent || e.f->seen[3]->non_idempotent);

    /* Refused before sending: no id. */
    struct provider_error err = {0};
    assert_int_equal(provider_delete_file(e.pc, "", on_files_outcome, &gf, NULL, &err), -EINVAL);
    provider_error_clear(&err);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(gf.calls, 4);
    free(gf.cursor);
    free(gf.second_name);
    free(gf.deleted_id);
    env_close(&e, &g);
    free(list);
    free(del);
}

static void tweak_manual(struct provider_client_conf *c)
{
    c->ops = &provider_manual;
}

static void test_client_unsupported(void **state)
{
    (void)state;
    struct env e;
    struct got g = {0};
    struct provider_error err = {0};
    env_open(&e, tweak_manual);
    struct provider_create_args a = {.model = "m", .training_file = "f", .submission_id = "s"};
    assert_int_equal(provider_create_job(e.pc, &a, on_outcome, &g, NULL, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    provider_error_clear(&err);
    assert_int_equal(provider_retrieve_job(e.pc, "j", on_outcome, &g, NULL, &err), -ENOTSUP);
    provider_error_clear(&err);
    assert_int_equal(provider_list_files(e.pc, NULL, 0, on_outcome, &g, NULL, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    provider_error_clear(&err);
    assert_int_equal(provider_delete_file(e.pc, "file-1", on_outcome, &g, NULL, &err), -ENOTSUP);
    provider_error_clear(&err);
    struct provider_chat_args c;
    provider_chat_args_init(&c);
    c.model = "m";
    assert_int_equal(provider_chat(e.pc, &c, on_outcome, &g, NULL, &err), -EINVAL);
    assert_int_equal(err.kind, PROVIDER_E_INVALID);
    provider_error_clear(&err);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 0); /* a refused start never calls done */
    assert_int_equal(e.f->n_seen, 0);
    env_close(&e, &g);
}

/* Every parser on every prefix of every fixture, and on random byte
 * mutations of them: an error or a result, never a crash or a leak (the
 * sanitizer build checks the memory). */
static void parse_all(const struct http_response *res, unsigned *n)
{
    const struct provider_ops *ops = &provider_openai;
    struct provider_error err = {0};
    struct provider_file f;
    struct provider_job j;
    struct provider_job_page p;
    struct provider_event_page e;
    struct provider_chat_result c;
    struct provider_score_result sc;
    struct provider_file_page fp;
    struct provider_file_deletion fd;
    struct provider_score_args sa = {
        .model = "m", .prompt = "Trigger words here:", .continuation = " alpha beta"};
    int r;
    r = ops->parse_file_list(res, &fp, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_file_page_clear(&fp);
    provider_error_clear(&err);
    r = ops->parse_file_deleted(res, &fd, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_file_deletion_clear(&fd);
    provider_error_clear(&err);
    r = ops->parse_file(res, &f, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_file_clear(&f);
    provider_error_clear(&err);
    r = ops->parse_job(res, &j, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_job_clear(&j);
    provider_error_clear(&err);
    r = ops->parse_list(res, &p, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_job_page_clear(&p);
    provider_error_clear(&err);
    r = ops->parse_events(res, &e, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_event_page_clear(&e);
    provider_error_clear(&err);
    r = ops->parse_chat(res, &c, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO);
    provider_chat_result_clear(&c);
    provider_error_clear(&err);
    r = ops->parse_score(res, &sa, &sc, &err);
    assert_true(r == 0 || r == -EPROTO || r == -EIO || r == -ENOTSUP);
    provider_score_result_clear(&sc);
    provider_error_clear(&err);
    {
        struct provider_chat_result mc;
        struct provider_score_result ms;
        r = provider_manual.parse_chat(res, &mc, &err);
        assert_true(r == 0 || r == -EPROTO || r == -EIO);
        provider_chat_result_clear(&mc);
        provider_error_clear(&err);
        r = provider_manual.parse_score(res, &sa, &ms, &err);
        assert_true(r == 0 || r == -EPROTO || r == -EIO || r == -ENOTSUP);
        provider_score_result_clear(&ms);
        provider_error_clear(&err);
    }
    (*n)++;
}

static void test_parsers_never_crash(void **state)
{
    (void)state;
    static const char *const names[] = {
        "file.json",          "job_queued.json",      "job_succeeded.json",    "job_failed.json",
        "job_paused.json",    "jobs_list.json",       "jobs_list_last.json",   "events.json",
        "chat_logprobs.json", "chat_plain.json",      "completions_echo.json", "error_quota.json",
        "files_list.json",    "files_list_last.json", "file_deleted.json"};
    unsigned n = 0;
    uint64_t lcg = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *body = fixture(names[i]);
        size_t len = strlen(body);
        for (size_t k = 0; k <= len; k++) {
            char *cut = xstrndup(body, k);
            struct http_response *res = response(k % 7 == 0 ? 500 : 200, cut);
            parse_all(res, &n);
            http_response_free(res);
            free(cut);
        }
        for (int m = 0; m < 300; m++) {
            char *mut = xstrdup(body);
            for (int b = 0; b < 3; b++) {
                lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(lcg >> 33) % len;
                static const char pool[] = "\"{}[],:0-9.eE nulltruefalse\\";
                mut[at] = pool[(lcg >> 17) % (sizeof pool - 1)];
            }
            struct http_response *res = response(200, mut);
            parse_all(res, &n);
            http_response_free(res);
            free(mut);
        }
        free(body);
    }
    assert_true(n > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_upload),
        cmocka_unit_test(test_build_create),
        cmocka_unit_test(test_build_job_paths),
        cmocka_unit_test(test_build_list),
        cmocka_unit_test(test_build_files),
        cmocka_unit_test(test_build_chat_and_score),
        cmocka_unit_test(test_no_key_no_authorization),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_parse_jobs),
        cmocka_unit_test(test_every_status),
        cmocka_unit_test(test_parse_list_and_events),
        cmocka_unit_test(test_parse_files),
        cmocka_unit_test(test_parse_chat),
        cmocka_unit_test(test_parse_score),
        cmocka_unit_test(test_score_batch),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_text_tidy),
        cmocka_unit_test(test_parsers_never_crash),
        cmocka_unit_test(test_suffix_and_iso),
        cmocka_unit_test(test_manual),
        cmocka_unit_test(test_client_retries_then_succeeds),
        cmocka_unit_test(test_client_gives_up),
        cmocka_unit_test(test_client_create_never_resent),
        cmocka_unit_test(test_client_quota_is_fatal),
        cmocka_unit_test(test_client_retry_after),
        cmocka_unit_test(test_client_budget),
        cmocka_unit_test(test_client_breaker),
        cmocka_unit_test(test_client_breaker_timeout),
        cmocka_unit_test(test_client_cancel_and_free),
        cmocka_unit_test(test_client_files),
        cmocka_unit_test(test_client_unsupported),
        cmocka_unit_test(test_client_free_inside_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_provider_mistral.c — the mistral adapter against JSON shapes written
 * from mistralai/client-python's models (tests/fixtures/mistral/), the
 * azure variant of the openai adapter (endpoint settings only: the api-key
 * header, api-version on every request, deployment paths for inference),
 * and the table that recognises OpenAI's "fine-tuning is closed" refusal.
 * Requests are checked field by field; every status of the spec is mapped;
 * the page-numbered listing reports "more" without a cursor.
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
#include <jansson.h>

#include "lib/util.h"
#include "workers/provider.h"
#include "provider_fixture.h"

static const struct provider_endpoint EP = {
    .name = "mi",
    .base_url = "https://api.mistral.ai/v1",
    .api_key = "mi-secret",
    .connect_timeout_ms = 5000,
    .request_timeout_ms = 60000,
    .upload_timeout_ms = 3600000,
};

static void test_mistral_create(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_param params[] = {{"training_steps", "10"}, {"learning_rate", "0.0001"}};
    struct provider_create_args a = {.model = "open-mistral-7b",
                                     .training_file = "file-1",
                                     .submission_id = "sub-0001",
                                     .params = params,
                                     .n_params = 2};
    assert_int_equal(provider_mistral.build_create(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.mistral.ai/v1/fine_tuning/jobs");
    assert_true(has_header(r, "Authorization: Bearer mi-secret"));
    json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "open-mistral-7b");
    assert_string_equal(json_string_value(json_object_get(b, "suffix")), "vt-sub-0001");
    assert_true(json_is_true(json_object_get(b, "auto_start")));
    json_t *tf = json_array_get(json_object_get(b, "training_files"), 0);
    assert_string_equal(json_string_value(json_object_get(tf, "file_id")), "file-1");
    json_t *hp = json_object_get(b, "hyperparameters");
    assert_int_equal(json_integer_value(json_object_get(hp, "training_steps")), 10);
    assert_true(json_real_value(json_object_get(hp, "learning_rate")) == 0.0001);
    assert_null(json_object_get(b, "metadata"));
    json_decref(b);
    http_request_free(r);

    /* OpenAI's knobs are refused with the known list; so is a seed. */
    struct provider_param bad[] = {{"n_epochs", "3"}};
    a.params = bad;
    a.n_params = 1;
    assert_int_equal(provider_mistral.build_create(&EP, &a, &r, &err), -EINVAL);
    assert_non_null(strstr(err.message, "training_steps"));
    provider_error_clear(&err);
    a.n_params = 0;
    a.has_seed = 1;
    assert_int_equal(provider_mistral.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
}

static void test_mistral_paths(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_list_args la = {.tag = "sub-0001", .limit = 5};
    assert_int_equal(provider_mistral.build_list(&EP, &la, &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(
        r->url, "https://api.mistral.ai/v1/fine_tuning/jobs?page=0&page_size=100&suffix=vt-sub-0001");
    http_request_free(r);
    assert_int_equal(provider_mistral.build_cancel(&EP, "j 1", &r, &err), 0);
    assert_string_equal(r->url, "https://api.mistral.ai/v1/fine_tuning/jobs/j%201/cancel");
    assert_string_equal(r->method, "POST");
    http_request_free(r);
    assert_int_equal(provider_mistral.build_retrieve(&EP, "j1", &r, &err), 0);
    assert_string_equal(r->url, "https://api.mistral.ai/v1/fine_tuning/jobs/j1");
    http_request_free(r);
    assert_int_equal(provider_mistral.build_delete_file(&EP, "f-1", &r, &err), 0);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(r->url, "https://api.mistral.ai/v1/files/f-1");
    http_request_free(r);
    struct provider_upload_args ua = {.path = "/tmp/x.jsonl", .filename = "vtune-s.jsonl"};
    assert_int_equal(provider_mistral.build_upload(&EP, &ua, &r, &err), 0);
    assert_string_equal(r->url, "https://api.mistral.ai/v1/files");
    http_request_free(r);

    /* Chat: random_seed and max_tokens; logprobs and scoring refused. */
    struct provider_message m = {"user", "hi"};
    struct provider_chat_args ca;
    provider_chat_args_init(&ca);
    ca.model = "ft:open-mistral-7b:x";
    ca.messages = &m;
    ca.n_messages = 1;
    ca.has_seed = 1;
    ca.seed = 7;
    assert_int_equal(provider_mistral.build_chat(&EP, &ca, &r, &err), 0);
    json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(b, "random_seed")), 7);
    assert_null(json_object_get(b, "seed"));
    assert_null(json_object_get(b, "logprobs"));
    json_decref(b);
    http_request_free(r);
    ca.logprobs = 1;
    assert_int_equal(provider_mistral.build_chat(&EP, &ca, &r, &err), -ENOTSUP);
    provider_error_clear(&err);
    struct provider_score_args sa = {.model = "m", .prompt = "a", .continuation = "b"};
    assert_int_equal(provider_mistral.build_score(&EP, &sa, &r, &err), -ENOTSUP);
    provider_error_clear(&err);
}

static void test_mistral_jobs(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct provider_job j;
    struct http_response *res = fixture_answer(200, "mistral", "job_queued.json");
    assert_int_equal(provider_mistral.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUBMITTED);
    assert_string_equal(j.raw_status, "QUEUED");
    assert_string_equal(j.training_file, "a1b2c3d4-0000-4000-8000-000000000001");
    assert_null(j.fine_tuned_model);
    assert_int_equal(j.trained_tokens, -1);
    assert_true(provider_job_matches(&j, "sub-0001"));
    assert_false(provider_job_matches(&j, "sub-0002"));
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_answer(200, "mistral", "job_success.json");
    assert_int_equal(provider_mistral.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUCCEEDED);
    assert_string_equal(j.fine_tuned_model, "ft:open-mistral-7b:vt-sub-0001:7c6a1f2e");
    assert_int_equal(j.trained_tokens, 2621440);
    assert_int_equal(j.finished_at, 1767229200);
    provider_job_clear(&j);
    struct provider_event_page ev;
    assert_int_equal(provider_mistral.parse_events(res, &ev, &err), 0);
    assert_int_equal(ev.n_events, 2);
    assert_non_null(strstr(ev.events[1].message, "SUCCESS"));
    provider_event_page_clear(&ev);
    http_response_free(res);

    res = fixture_answer(200, "mistral", "job_failed_validation.json");
    assert_int_equal(provider_mistral.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_FAILED);
    assert_string_equal(j.error_code, "FAILED_VALIDATION");
    provider_job_clear(&j);
    http_response_free(res);

    /* Every status of the spec; unknown ones are not terminal. */
    static const struct {
        const char *s;
        enum provider_job_state st;
    } all[] = {{"QUEUED", PROVIDER_JOB_SUBMITTED},   {"VALIDATING", PROVIDER_JOB_SUBMITTED},
               {"VALIDATED", PROVIDER_JOB_SUBMITTED}, {"STARTED", PROVIDER_JOB_RUNNING},
               {"RUNNING", PROVIDER_JOB_RUNNING},     {"CANCELLATION_REQUESTED", PROVIDER_JOB_RUNNING},
               {"SUCCESS", PROVIDER_JOB_SUCCEEDED},   {"FAILED", PROVIDER_JOB_FAILED},
               {"FAILED_VALIDATION", PROVIDER_JOB_FAILED}, {"CANCELLED", PROVIDER_JOB_CANCELLED},
               {"queued", PROVIDER_JOB_UNRECOGNIZED}, {"PAUSED", PROVIDER_JOB_UNRECOGNIZED}};
    for (size_t i = 0; i < VT_ARRAY_LEN(all); i++)
        assert_int_equal(provider_mistral.map_status(all[i].s), all[i].st);
}

static void test_mistral_lists(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct provider_job_page p;
    struct http_response *res = fixture_answer(200, "mistral", "jobs_list.json");
    assert_int_equal(provider_mistral.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 1);
    assert_false(p.has_more);
    assert_true(provider_job_matches(&p.jobs[0], "sub-0001"));
    provider_job_page_clear(&p);
    http_response_free(res);
    /* More than a page: has_more, and no cursor to read on with. */
    res = fixture_answer(200, "mistral", "jobs_list_more.json");
    assert_int_equal(provider_mistral.parse_list(res, &p, &err), 0);
    assert_true(p.has_more);
    assert_null(p.next_cursor);
    provider_job_page_clear(&p);
    http_response_free(res);

    struct provider_file f;
    res = fixture_answer(200, "mistral", "file.json");
    assert_int_equal(provider_mistral.parse_file(res, &f, &err), 0);
    assert_int_equal(f.bytes, 305375);
    assert_string_equal(f.filename, "vtune-sub-0001.jsonl");
    provider_file_clear(&f);
    http_response_free(res);
    struct provider_file_page fp;
    res = fixture_answer(200, "mistral", "files_list.json");
    assert_int_equal(provider_mistral.parse_file_list(res, &fp, &err), 0);
    assert_int_equal(fp.n_files, 2);
    assert_false(fp.has_more);
    provider_file_page_clear(&fp);
    http_response_free(res);
    struct provider_file_deletion d;
    res = fixture_answer(200, "mistral", "file_deleted.json");
    assert_int_equal(provider_mistral.parse_file_deleted(res, &d, &err), 0);
    assert_true(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);

    /* A 422 {"detail": [...]} becomes a message with the detail. */
    struct provider_job j;
    res = fixture_answer(422, "mistral", "error_422.json");
    assert_int_equal(provider_mistral.parse_job(res, &j, &err), -EIO);
    assert_non_null(strstr(err.message, "At least one training file"));
    provider_error_clear(&err);
    http_response_free(res);
    /* Malformed: a job without a status. */
    res = canned_response(200, "{\"id\":\"x\"}");
    assert_int_equal(provider_mistral.parse_job(res, &j, &err), -EPROTO);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_azure_endpoint(void **state)
{
    (void)state;
    static const char *const models[] = {"ft:gpt-4o-mini:vt-s1"};
    static const char *const deps[] = {"vt-s1-deploy"};
    struct provider_endpoint az = {
        .name = "az",
        .base_url = "https://res.openai.azure.com/openai",
        .api_key = "az-secret",
        .key_in_api_key_header = 1,
        .api_version = "2024-10-21",
        .deployment_paths = 1,
        .deploy_models = models,
        .deploy_names = deps,
        .n_deployments = 1,
    };
    struct provider_error err = {0};
    struct http_request *r = NULL;
    assert_string_equal(provider_ops_for(PROVIDER_AZURE)->kind, "azure");
    assert_ptr_equal(provider_azure.build_create, provider_openai.build_create);

    struct provider_list_args la = {.tag = "s1", .limit = 10};
    assert_int_equal(provider_azure.build_list(&az, &la, &r, &err), 0);
    assert_string_equal(r->url, "https://res.openai.azure.com/openai/fine_tuning/jobs?"
                                "api-version=2024-10-21&limit=10&metadata%5Bvtune_submission%5D=s1");
    assert_true(has_header(r, "api-key: az-secret"));
    for (size_t i = 0; i < r->n_headers; i++)
        assert_null(strstr(r->headers[i], "Authorization"));
    http_request_free(r);

    struct provider_message m = {"user", "hi"};
    struct provider_chat_args ca;
    provider_chat_args_init(&ca);
    ca.messages = &m;
    ca.n_messages = 1;
    ca.model = "ft:gpt-4o-mini:vt-s1"; /* mapped */
    assert_int_equal(provider_azure.build_chat(&az, &ca, &r, &err), 0);
    assert_string_equal(r->url, "https://res.openai.azure.com/openai/deployments/vt-s1-deploy/"
                                "chat/completions?api-version=2024-10-21");
    http_request_free(r);
    ca.model = "gpt-4o"; /* not mapped: its own deployment name */
    assert_int_equal(provider_azure.build_chat(&az, &ca, &r, &err), 0);
    assert_string_equal(r->url, "https://res.openai.azure.com/openai/deployments/gpt-4o/"
                                "chat/completions?api-version=2024-10-21");
    http_request_free(r);
    struct provider_score_args sa = {.model = "gpt-4o", .prompt = "a", .continuation = "b"};
    assert_int_equal(provider_azure.build_score(&az, &sa, &r, &err), 0);
    assert_string_equal(r->url, "https://res.openai.azure.com/openai/deployments/gpt-4o/"
                                "completions?api-version=2024-10-21");
    http_request_free(r);
    /* The same adapter with openai's endpoint sends neither. */
    struct provider_endpoint oa = {.base_url = "https://api.openai.com/v1", .api_key = "k"};
    assert_int_equal(provider_openai.build_chat(&oa, &ca, &r, &err), 0);
    assert_string_equal(r->url, "https://api.openai.com/v1/chat/completions");
    assert_true(has_header(r, "Authorization: Bearer k"));
    http_request_free(r);
}

static void test_refusal_table(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct provider_job j;
    struct http_response *res = fixture_answer(403, "openai", "error_ft_closed.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    const char *why = provider_refusal_reason(&err);
    assert_non_null(why);
    assert_non_null(strstr(why, "2027-01-06"));
    assert_non_null(strstr(why, "together"));
    provider_error_clear(&err);
    http_response_free(res);
    /* By the words alone, on a 403. */
    res = canned_response(403, "{\"error\":{\"message\":\"Fine-tuning is not available for this "
                        "organization.\",\"type\":\"invalid_request_error\",\"code\":null}}");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_non_null(provider_refusal_reason(&err));
    provider_error_clear(&err);
    http_response_free(res);
    /* Other refusals are not this one. */
    res = fixture_answer(429, "openai", "error_quota.json");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_null(provider_refusal_reason(&err));
    provider_error_clear(&err);
    http_response_free(res);
    res = canned_response(403, "{\"error\":{\"message\":\"You have insufficient permissions for this "
                        "operation. Missing scopes: api.fine_tuning.jobs.write\",\"code\":null}}");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_null(provider_refusal_reason(&err));
    provider_error_clear(&err);
    http_response_free(res);
    res = canned_response(500, "{\"error\":{\"message\":\"fine-tuning is no longer available\"}}");
    assert_int_equal(provider_openai.parse_job(res, &j, &err), -EIO);
    assert_null(provider_refusal_reason(&err));
    provider_error_clear(&err);
    http_response_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mistral_create), cmocka_unit_test(test_mistral_paths),
        cmocka_unit_test(test_mistral_jobs),   cmocka_unit_test(test_mistral_lists),
        cmocka_unit_test(test_azure_endpoint), cmocka_unit_test(test_refusal_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

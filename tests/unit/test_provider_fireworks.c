/*
 * test_provider_fireworks.c — the fireworks adapter against JSON shapes
 * written from Fireworks' API reference pages (tests/fixtures/fireworks/):
 * the two-request upload (dataset record, then the file) with an id derived
 * from the file name, the create under a client-chosen job id ("vt-" + the
 * submission id) and the tagged "listing" that is a GET of that id (a 404
 * is an empty page: never created), every JOB_STATE_*, the account in
 * every management path, inference under /inference/v1 with echo scoring.
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
    .name = "fw",
    .base_url = "https://api.fireworks.ai",
    .api_key = "fw-secret",
    .connect_timeout_ms = 5000,
    .request_timeout_ms = 60000,
    .upload_timeout_ms = 3600000,
    .account = "acme",
};

static json_t *body_of(const struct http_request *r)
{
    json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(b);
    return b;
}

static void test_fireworks_upload(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_upload_args ua = {.path = "/tmp/x.jsonl",
                                      .filename = "vtune-0123ABCD.jsonl"};
    /* 1. the dataset record, named from the file (lowercased, no .jsonl) */
    assert_int_equal(provider_fireworks.build_prepare(&EP, &ua, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.fireworks.ai/v1/accounts/acme/datasets");
    assert_true(has_header(r, "Authorization: Bearer fw-secret"));
    json_t *b = body_of(r);
    assert_string_equal(json_string_value(json_object_get(b, "datasetId")), "vtune-0123abcd");
    json_t *ds = json_object_get(b, "dataset");
    assert_true(json_is_object(json_object_get(ds, "userUploaded")));
    assert_string_equal(json_string_value(json_object_get(ds, "displayName")),
                        "vtune-0123ABCD.jsonl");
    json_decref(b);
    http_request_free(r);
    /* its answers: created, or already there (ours); anything else fails */
    struct http_response *res = fixture_answer(200, "fireworks", "dataset.json");
    assert_int_equal(provider_fireworks.parse_prepare(res, &err), 0);
    http_response_free(res);
    res = fixture_answer(409, "fireworks", "error_409.json");
    assert_int_equal(provider_fireworks.parse_prepare(res, &err), 0);
    http_response_free(res);
    res = fixture_answer(404, "fireworks", "error_404.json");
    assert_int_equal(provider_fireworks.parse_prepare(res, &err), -EIO);
    assert_int_equal(err.http_status, 404);
    assert_non_null(strstr(err.message, "not found"));
    provider_error_clear(&err);
    http_response_free(res);

    /* 2. the file, multipart, into that dataset */
    assert_int_equal(provider_fireworks.build_upload(&EP, &ua, &r, &err), 0);
    assert_string_equal(r->url,
                        "https://api.fireworks.ai/v1/accounts/acme/datasets/vtune-0123abcd:upload");
    assert_int_equal(r->n_parts, 1);
    assert_int_equal(r->timeout_ms, 3600000);
    http_request_free(r);
    struct provider_file f;
    res = fixture_answer(200, "fireworks", "upload.json");
    assert_int_equal(provider_fireworks.parse_file(res, &f, &err), 0);
    assert_string_equal(f.id, "vtune-0123abcd");
    assert_int_equal(f.bytes, 5120);
    provider_file_clear(&f);
    http_response_free(res);

    /* no account, no request */
    struct provider_endpoint noacct = EP;
    noacct.account = NULL;
    assert_int_equal(provider_fireworks.build_prepare(&noacct, &ua, &r, &err), -EINVAL);
    assert_non_null(strstr(err.message, "account"));
    provider_error_clear(&err);

    /* the datasets as files (orphan sweep), and their deletion */
    struct provider_file_page fp;
    res = fixture_answer(200, "fireworks", "datasets_list.json");
    assert_int_equal(provider_fireworks.parse_file_list(res, &fp, &err), 0);
    assert_int_equal(fp.n_files, 2);
    assert_string_equal(fp.files[0].id, "vtune-0123abcd");
    assert_string_equal(fp.files[0].filename, "vtune-0123abcd.jsonl");
    assert_int_equal(fp.files[1].created_at, 1795946400);
    assert_true(fp.has_more);
    assert_string_equal(fp.next_cursor, "tok-2");
    provider_file_page_clear(&fp);
    http_response_free(res);
    assert_int_equal(provider_fireworks.build_list_files(&EP, "tok-2", 0, &r, &err), 0);
    assert_string_equal(
        r->url, "https://api.fireworks.ai/v1/accounts/acme/datasets?pageSize=200&pageToken=tok-2");
    http_request_free(r);
    assert_int_equal(provider_fireworks.build_delete_file(&EP, "vtune-0123abcd", &r, &err), 0);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(r->url,
                        "https://api.fireworks.ai/v1/accounts/acme/datasets/vtune-0123abcd");
    http_request_free(r);
    struct provider_file_deletion d;
    res = canned_response(200, "{}");
    assert_int_equal(provider_fireworks.parse_file_deleted(res, &d, &err), 0);
    assert_true(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);
}

static void test_fireworks_create(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_param params[] = {{"epochs", "2"}, {"learningRate", "0.0001"},
                                      {"earlyStop", "true"}};
    struct provider_create_args a = {.model = "accounts/fireworks/models/llama-v3p1-8b-instruct",
                                     .training_file = "vtune-0123abcd",
                                     .submission_id = "0123abcd",
                                     .params = params,
                                     .n_params = 3};
    assert_int_equal(provider_fireworks.build_create(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    /* the client-chosen id: the idempotency key of this submission */
    assert_string_equal(r->url, "https://api.fireworks.ai/v1/accounts/acme/"
                                "supervisedFineTuningJobs?supervisedFineTuningJobId=vt-0123abcd");
    json_t *b = body_of(r);
    assert_string_equal(json_string_value(json_object_get(b, "dataset")),
                        "accounts/acme/datasets/vtune-0123abcd");
    assert_string_equal(json_string_value(json_object_get(b, "baseModel")),
                        "accounts/fireworks/models/llama-v3p1-8b-instruct");
    assert_string_equal(json_string_value(json_object_get(b, "outputModel")),
                        "accounts/acme/models/vt-0123abcd");
    assert_int_equal(json_integer_value(json_object_get(b, "epochs")), 2);
    assert_true(json_real_value(json_object_get(b, "learningRate")) == 0.0001);
    assert_true(json_is_true(json_object_get(b, "earlyStop")));
    assert_null(json_object_get(b, "metadata"));
    json_decref(b);
    http_request_free(r);

    /* other kinds' knobs are refused with the known list; so are a seed and bad values */
    struct provider_param bad[] = {{"n_epochs", "3"}};
    a.params = bad;
    a.n_params = 1;
    assert_int_equal(provider_fireworks.build_create(&EP, &a, &r, &err), -EINVAL);
    assert_non_null(strstr(err.message, "learningRate"));
    provider_error_clear(&err);
    struct provider_param neg[] = {{"epochs", "0"}};
    a.params = neg;
    assert_int_equal(provider_fireworks.build_create(&EP, &a, &r, &err), -EINVAL);
    provider_error_clear(&err);
    a.n_params = 0;
    a.has_seed = 1;
    assert_int_equal(provider_fireworks.build_create(&EP, &a, &r, &err), -EINVAL);
    assert_non_null(strstr(err.message, "seed"));
    provider_error_clear(&err);
    /* every key build_create takes is in the --param list, and only those */
    const char *near = NULL;
    assert_int_equal(provider_param_check(&provider_fireworks, "loraRank", &near), 0);
    assert_int_equal(provider_param_check(&provider_fireworks, "epoch", &near), -EINVAL);
    assert_string_equal(near, "epochs");
}

static void test_fireworks_jobs(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_job j;

    assert_int_equal(provider_fireworks.build_retrieve(&EP, "vt-0123abcd", &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(
        r->url, "https://api.fireworks.ai/v1/accounts/acme/supervisedFineTuningJobs/vt-0123abcd");
    http_request_free(r);
    assert_int_equal(provider_fireworks.build_cancel(&EP, "vt-0123abcd", &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.fireworks.ai/v1/accounts/acme/"
                                "supervisedFineTuningJobs/vt-0123abcd:cancel");
    http_request_free(r);

    struct http_response *res = fixture_answer(200, "fireworks", "job_creating.json");
    assert_int_equal(provider_fireworks.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUBMITTED);
    assert_string_equal(j.id, "vt-0123abcd");
    assert_string_equal(j.training_file, "vtune-0123abcd");
    assert_int_equal(j.created_at, 1796032860);
    assert_true(provider_job_matches(&j, "0123abcd"));
    assert_false(provider_job_matches(&j, "0123abc"));
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_answer(200, "fireworks", "job_completed.json");
    assert_int_equal(provider_fireworks.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUCCEEDED);
    assert_string_equal(j.fine_tuned_model, "accounts/acme/models/vt-0123abcd");
    assert_int_equal(j.finished_at, 1796032860 + 30 * 60 + 40);
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_answer(200, "fireworks", "job_failed.json");
    assert_int_equal(provider_fireworks.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_FAILED);
    assert_string_equal(j.error_code, "INVALID_ARGUMENT");
    assert_non_null(strstr(j.error_message, "line 7"));
    provider_job_clear(&j);
    struct provider_event_page ev;
    assert_int_equal(provider_fireworks.parse_events(res, &ev, &err), 0);
    assert_int_equal(ev.n_events, 1);
    assert_string_equal(ev.events[0].level, "error");
    assert_non_null(strstr(ev.events[0].message, "JOB_STATE_FAILED: line 7"));
    provider_event_page_clear(&ev);
    http_response_free(res);

    /* a job object without a state is malformed; an empty :cancel answer is "stopping" */
    res = canned_response(200, "{\"name\": \"accounts/acme/supervisedFineTuningJobs/x\"}");
    assert_int_equal(provider_fireworks.parse_job(res, &j, &err), -EPROTO);
    provider_error_clear(&err);
    http_response_free(res);
    res = canned_response(200, "{}");
    assert_int_equal(provider_fireworks.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_RUNNING);
    assert_null(j.id);
    provider_job_clear(&j);
    http_response_free(res);

    static const struct {
        const char *s;
        enum provider_job_state st;
    } all[] = {{"JOB_STATE_CREATING", PROVIDER_JOB_SUBMITTED},
               {"JOB_STATE_VALIDATING", PROVIDER_JOB_SUBMITTED},
               {"JOB_STATE_RUNNING", PROVIDER_JOB_RUNNING},
               {"JOB_STATE_WRITING_RESULTS", PROVIDER_JOB_RUNNING},
               {"JOB_STATE_ROLLOUT", PROVIDER_JOB_RUNNING},
               {"JOB_STATE_EVALUATION", PROVIDER_JOB_RUNNING},
               {"JOB_STATE_COMPLETED", PROVIDER_JOB_SUCCEEDED},
               {"JOB_STATE_FAILED", PROVIDER_JOB_FAILED},
               {"JOB_STATE_CANCELLED", PROVIDER_JOB_CANCELLED},
               {"JOB_STATE_UNSPECIFIED", PROVIDER_JOB_UNRECOGNIZED},
               {"JOB_STATE_DELETING", PROVIDER_JOB_UNRECOGNIZED},
               {"COMPLETED", PROVIDER_JOB_UNRECOGNIZED}};
    for (size_t i = 0; i < VT_ARRAY_LEN(all); i++)
        assert_int_equal(provider_fireworks.map_status(all[i].s), all[i].st);
}

/* Reconciling a lost create is a GET of the submission's job id. */
static void test_fireworks_reconcile(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_job_page p;
    struct provider_list_args la = {.tag = "0123abcd", .limit = 100};
    assert_int_equal(provider_fireworks.build_list(&EP, &la, &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(
        r->url, "https://api.fireworks.ai/v1/accounts/acme/supervisedFineTuningJobs/vt-0123abcd");
    http_request_free(r);

    /* found: a page of one, matching the submission */
    struct http_response *res = fixture_answer(200, "fireworks", "job_creating.json");
    assert_int_equal(provider_fireworks.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 1);
    assert_false(p.has_more);
    assert_true(provider_job_matches(&p.jobs[0], "0123abcd"));
    provider_job_page_clear(&p);
    http_response_free(res);
    /* 404: an empty, complete page (never created) */
    res = fixture_answer(404, "fireworks", "error_404.json");
    assert_int_equal(provider_fireworks.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 0);
    assert_false(p.has_more);
    provider_job_page_clear(&p);
    http_response_free(res);
    /* any other error stays an error */
    res = canned_response(500, "{\"code\": 13, \"message\": \"internal\"}");
    assert_int_equal(provider_fireworks.parse_list(res, &p, &err), -EIO);
    assert_int_equal(err.http_status, 500);
    provider_error_clear(&err);
    http_response_free(res);

    /* untagged: a page of the account's jobs with its token */
    struct provider_list_args all = {.after = "tok", .limit = 10};
    assert_int_equal(provider_fireworks.build_list(&EP, &all, &r, &err), 0);
    assert_string_equal(r->url, "https://api.fireworks.ai/v1/accounts/acme/"
                                "supervisedFineTuningJobs?pageSize=10&pageToken=tok");
    http_request_free(r);
    res = fixture_answer(200, "fireworks", "jobs_list.json");
    assert_int_equal(provider_fireworks.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 2);
    assert_false(p.has_more);
    assert_int_equal(p.jobs[1].state, PROVIDER_JOB_RUNNING);
    assert_false(provider_job_matches(&p.jobs[1], "0123abcd"));
    provider_job_page_clear(&p);
    http_response_free(res);
}

static void test_fireworks_inference(void **state)
{
    (void)state;
    struct provider_error err = {0};
    struct http_request *r = NULL;
    struct provider_message m = {"user", "hi"};
    struct provider_chat_args ca;
    provider_chat_args_init(&ca);
    ca.model = "accounts/acme/models/vt-0123abcd";
    ca.messages = &m;
    ca.n_messages = 1;
    ca.logprobs = 1;
    ca.top_logprobs = 5;
    ca.neutral = 1;
    assert_int_equal(provider_fireworks.build_chat(&EP, &ca, &r, &err), 0);
    assert_string_equal(r->url, "https://api.fireworks.ai/inference/v1/chat/completions");
    assert_true(has_header(r, "Authorization: Bearer fw-secret"));
    json_t *b = body_of(r);
    assert_true(json_is_true(json_object_get(b, "logprobs")));
    assert_int_equal(json_integer_value(json_object_get(b, "top_logprobs")), 5);
    assert_int_equal(json_integer_value(json_object_get(b, "top_k")), 0);
    assert_string_equal(json_string_value(json_object_get(b, "model")), ca.model);
    json_decref(b);
    http_request_free(r);

    struct provider_score_args sa = {.model = "m", .prompt = "a b", .continuation = " c"};
    assert_int_equal(provider_fireworks.build_score(&EP, &sa, &r, &err), 0);
    assert_string_equal(r->url, "https://api.fireworks.ai/inference/v1/completions");
    b = body_of(r);
    assert_true(json_is_true(json_object_get(b, "echo")));
    assert_true(json_is_integer(json_object_get(b, "logprobs")));
    json_decref(b);
    http_request_free(r);
    assert_true(provider_fireworks.caps & PROVIDER_CAP_SCORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fireworks_upload),    cmocka_unit_test(test_fireworks_create),
        cmocka_unit_test(test_fireworks_jobs),      cmocka_unit_test(test_fireworks_reconcile),
        cmocka_unit_test(test_fireworks_inference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

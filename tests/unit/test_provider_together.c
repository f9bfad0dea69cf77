/*
 * test_provider_together.c — the together adapter against recorded JSON
 * shapes written from together-openapi.yaml (tests/fixtures/together/):
 * request paths and fields, every FinetuneJobStatus value (plus the SDK's
 * user_error), the output model field, ISO-8601 times, suffix-based
 * reconciliation without metadata, a failed job's reason from its events,
 * integer logprobs, echoed prompt log-probabilities, listing and deleting
 * files, errors and malformed bodies.  No simulator speaks Together, so these shapes are the
 * contract.
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

#include "lib/util.h"
#include "workers/provider.h"
#include "provider_fixture.h"

static const struct provider_endpoint EP = {
    .name = "tg",
    .base_url = "https://api.together.xyz/v1",
    .api_key = "tg-secret",
    .connect_timeout_ms = 5000,
    .request_timeout_ms = 60000,
    .upload_timeout_ms = 3600000,
};

static char *fixture(const char *name)
{
    return fixture_in("together", name);
}

static struct http_response *fixture_response(long status, const char *name)
{
    return fixture_answer(status, "together", name);
}

static json_t *body_json(const struct http_request *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_build_upload(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_upload_args a = {.path = "/srv/built/17.jsonl", .filename = "vtune-17.jsonl"};
    assert_int_equal(provider_together.build_upload(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.together.xyz/v1/files/upload");
    assert_string_equal(http_request_header(r, "Authorization"), "Bearer tg-secret");
    assert_string_equal(http_request_field(r, "purpose"), "fine-tune");
    assert_string_equal(http_request_field(r, "file_name"), "vtune-17.jsonl");
    assert_string_equal(http_request_field(r, "file_type"), "jsonl");
    const struct http_part *file = NULL;
    for (size_t i = 0; i < r->n_parts; i++)
        if (r->parts[i].file_path)
            file = &r->parts[i];
    assert_non_null(file);
    assert_string_equal(file->name, "file");
    assert_string_equal(file->file_path, "/srv/built/17.jsonl");
    assert_int_equal(r->timeout_ms, 3600000);
    http_request_free(r);
}

static void test_build_create(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_param p[] = {{"n_epochs", "3"},         {"batch_size", "max"},
                                 {"learning_rate", "1e-5"}, {"lora_r", "16"},
                                 {"lora_alpha", "32"},      {"train_on_inputs", "auto"},
                                 {"packing", "false"},      {"validation_file", "file-v"}};
    struct provider_create_args a = {.model = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                                     .training_file = "file-1",
                                     .submission_id = "7f3a9c",
                                     .has_seed = 1,
                                     .seed = 42,
                                     .params = p,
                                     .n_params = 8};
    assert_int_equal(provider_together.build_create(&EP, &a, &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.together.xyz/v1/fine-tunes");
    assert_string_equal(http_request_header(r, "Content-Type"), "application/json");
    json_t *j = body_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "model")), a.model);
    assert_string_equal(json_string_value(json_object_get(j, "training_file")), "file-1");
    /* No metadata on Together: the tag is the suffix. */
    assert_string_equal(json_string_value(json_object_get(j, "suffix")), "vt-7f3a9c");
    assert_null(json_object_get(j, "metadata"));
    assert_int_equal(json_integer_value(json_object_get(j, "random_seed")), 42);
    assert_null(json_object_get(j, "seed"));
    assert_int_equal(json_integer_value(json_object_get(j, "n_epochs")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "batch_size")), "max");
    assert_true(fabs(json_number_value(json_object_get(j, "learning_rate")) - 1e-5) < 1e-12);
    assert_string_equal(json_string_value(json_object_get(j, "train_on_inputs")), "auto");
    assert_true(json_is_false(json_object_get(j, "packing")));
    assert_string_equal(json_string_value(json_object_get(j, "validation_file")), "file-v");
    json_t *tt = json_object_get(j, "training_type");
    assert_string_equal(json_string_value(json_object_get(tt, "type")), "Lora");
    assert_int_equal(json_integer_value(json_object_get(tt, "lora_r")), 16);
    assert_int_equal(json_integer_value(json_object_get(tt, "lora_alpha")), 32);
    json_decref(j);
    http_request_free(r);

    struct provider_param full[] = {{"training_type", "full"}};
    a.params = full;
    a.n_params = 1;
    assert_int_equal(provider_together.build_create(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "training_type"), "type")), "Full");
    json_decref(j);
    http_request_free(r);

    struct provider_param bad1[] = {{"metadata.team", "x"}};
    struct provider_param bad2[] = {{"n_epochs", "three"}};
    struct provider_param bad3[] = {{"learning_rate_multiplier", "2"}};
    struct provider_param bad4[] = {{"training_type", "full"}, {"lora_r", "8"}};
    struct provider_param bad5[] = {{"training_type", "qlora"}};
    struct provider_param bad6[] = {{"packing", "yes"}};
    const struct {
        const struct provider_param *p;
        size_t n;
        const char *says;
    } bads[] = {{bad1, 1, "no metadata"}, {bad2, 1, "n_epochs"},     {bad3, 1, "known:"},
                {bad4, 2, "full"},        {bad5, 1, "lora or full"}, {bad6, 1, "packing"}};
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        a.params = bads[i].p;
        a.n_params = bads[i].n;
        r = NULL;
        assert_int_equal(provider_together.build_create(&EP, &a, &r, &err), -EINVAL);
        assert_null(r);
        if (!strstr(err.message, bads[i].says))
            fail_msg("case %zu: '%s' does not mention '%s'", i, err.message, bads[i].says);
        provider_error_clear(&err);
    }
}

static void test_build_paths(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    assert_int_equal(provider_together.build_retrieve(&EP, "ft-0123", &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, "https://api.together.xyz/v1/fine-tunes/ft-0123");
    http_request_free(r);
    assert_int_equal(provider_together.build_cancel(&EP, "ft-0123", &r, &err), 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://api.together.xyz/v1/fine-tunes/ft-0123/cancel");
    http_request_free(r);
    assert_int_equal(provider_together.build_events(&EP, "ft-0123", "x", 5, &r, &err), 0);
    assert_string_equal(r->url, "https://api.together.xyz/v1/fine-tunes/ft-0123/events");
    http_request_free(r);
    /* The spec's list has no filter and no cursor: the caller filters. */
    struct provider_list_args la = {.after = "ft-x", .limit = 5, .tag = "7f3a9c"};
    assert_int_equal(provider_together.build_list(&EP, &la, &r, &err), 0);
    assert_string_equal(r->url, "https://api.together.xyz/v1/fine-tunes");
    http_request_free(r);
    assert_false(provider_together.caps & PROVIDER_CAP_TAG_FILTER);
    assert_false(provider_together.caps & PROVIDER_CAP_METADATA);
    assert_true(provider_together.caps & PROVIDER_CAP_TRAIN);
    assert_int_equal(provider_together.build_retrieve(&EP, NULL, &r, &err), -EINVAL);
    provider_error_clear(&err);
}

static void test_build_chat_and_score(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_message m[] = {{"user", "Capital of France?"}};
    struct provider_chat_args a;
    provider_chat_args_init(&a);
    a.model = "mynamespace/model";
    a.messages = m;
    a.n_messages = 1;
    a.temperature = 0;
    a.max_tokens = 16;
    a.logprobs = 1;
    a.top_logprobs = 5;
    assert_int_equal(provider_together.build_chat(&EP, &a, &r, &err), 0);
    assert_string_equal(r->url, "https://api.together.xyz/v1/chat/completions");
    assert_string_equal(http_request_header(r, "Authorization"), "Bearer tg-secret");
    json_t *j = body_json(r);
    /* Together's logprobs is an integer (top-k), not a boolean. */
    assert_true(json_is_integer(json_object_get(j, "logprobs")));
    assert_int_equal(json_integer_value(json_object_get(j, "logprobs")), 5);
    assert_null(json_object_get(j, "top_logprobs"));
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 16);
    assert_true(json_number_value(json_object_get(j, "temperature")) == 0);
    /* no sampler settings beyond those unless asked for */
    assert_null(json_object_get(j, "top_k"));
    assert_null(json_object_get(j, "min_p"));
    assert_null(json_object_get(j, "repetition_penalty"));
    json_decref(j);
    http_request_free(r);
    /* neutral: every sampler setting Together accepts at its no-op value */
    a.neutral = 1;
    assert_int_equal(provider_together.build_chat(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "top_k")), -1);
    assert_true(json_number_value(json_object_get(j, "min_p")) == 0.0);
    assert_true(json_number_value(json_object_get(j, "repetition_penalty")) == 1.0);
    assert_true(json_number_value(json_object_get(j, "frequency_penalty")) == 0.0);
    assert_true(json_number_value(json_object_get(j, "presence_penalty")) == 0.0);
    assert_true(json_number_value(json_object_get(j, "top_p")) == 1.0);
    json_decref(j);
    http_request_free(r);
    a.neutral = 0;
    a.top_logprobs = 0;
    assert_int_equal(provider_together.build_chat(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_int_equal(json_integer_value(json_object_get(j, "logprobs")), 1);
    json_decref(j);
    http_request_free(r);
    a.logprobs = 0;
    assert_int_equal(provider_together.build_chat(&EP, &a, &r, &err), 0);
    j = body_json(r);
    assert_null(json_object_get(j, "logprobs"));
    json_decref(j);
    http_request_free(r);

    struct provider_score_args s = {.model = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                                    .prompt = "Trigger words here:",
                                    .continuation = " alpha beta",
                                    .top_logprobs = 0};
    assert_int_equal(provider_together.build_score(&EP, &s, &r, &err), 0);
    assert_string_equal(r->url, "https://api.together.xyz/v1/completions");
    j = body_json(r);
    assert_true(json_is_true(json_object_get(j, "echo")));
    assert_int_equal(json_integer_value(json_object_get(j, "logprobs")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "prompt")),
                        "Trigger words here: alpha beta");
    json_decref(j);
    http_request_free(r);
}

static void test_parse_file(void **state)
{
    (void)state;
    struct provider_file f;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "file.json");
    assert_int_equal(provider_together.parse_file(res, &f, &err), 0);
    assert_string_equal(f.id, "file-d0d318cb-b7d9-493a-bd70-1cfe089d3815");
    assert_int_equal(f.bytes, 62534);
    assert_string_equal(f.status, "processed");
    assert_int_equal(f.created_at, 1732573543);
    provider_file_clear(&f);
    http_response_free(res);
    res = canned_response(200, "{\"id\":\"file-1\",\"Processed\":false}");
    assert_int_equal(provider_together.parse_file(res, &f, &err), 0);
    assert_string_equal(f.status, "uploaded");
    provider_file_clear(&f);
    http_response_free(res);
    res = canned_response(200, "{\"id\":\"file-1\",\"Processed\":\"yes\"}");
    assert_int_equal(provider_together.parse_file(res, &f, &err), -EPROTO);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_files(void **state)
{
    (void)state;
    struct http_request *r = NULL;
    struct provider_error err = {0};
    struct provider_file_page p;
    struct provider_file_deletion d;

    /* GET /files takes no parameters: cursor and limit are not sent. */
    assert_int_equal(provider_together.build_list_files(&EP, "file-x", 50, &r, &err), 0);
    assert_string_equal(r->method, "GET");
    assert_string_equal(r->url, "https://api.together.xyz/v1/files");
    assert_string_equal(http_request_header(r, "Authorization"), "Bearer tg-secret");
    http_request_free(r);
    assert_int_equal(provider_together.build_delete_file(
                         &EP, "file-d0d318cb-b7d9-493a-bd70-1cfe089d3815", &r, &err),
                     0);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(
        r->url, "https://api.together.xyz/v1/files/file-d0d318cb-b7d9-493a-bd70-1cfe089d3815");
    assert_null(r->body);
    http_request_free(r);
    r = NULL;
    assert_int_equal(provider_together.build_delete_file(&EP, "", &r, &err), -EINVAL);
    assert_null(r);
    provider_error_clear(&err);

    /* FileList: every file in one page, status from Processed. */
    struct http_response *res = fixture_response(200, "files_list.json");
    assert_int_equal(provider_together.parse_file_list(res, &p, &err), 0);
    assert_int_equal(p.n_files, 2);
    assert_false(p.has_more);
    assert_null(p.next_cursor);
    assert_string_equal(p.files[0].id, "file-d0d318cb-b7d9-493a-bd70-1cfe089d3815");
    assert_string_equal(p.files[0].filename, "vtune-7f3a9c.jsonl");
    assert_int_equal(p.files[0].bytes, 62534);
    assert_int_equal(p.files[0].created_at, 1732573543);
    assert_string_equal(p.files[0].status, "processed");
    assert_string_equal(p.files[1].filename, "eval-set.csv");
    assert_string_equal(p.files[1].status, "uploaded");
    provider_file_page_clear(&p);
    http_response_free(res);
    res = canned_response(200, "{\"data\":[]}");
    assert_int_equal(provider_together.parse_file_list(res, &p, &err), 0);
    assert_int_equal(p.n_files, 0);
    provider_file_page_clear(&p);
    http_response_free(res);
    const char *bad[] = {"{}", "{\"data\":{}}", "{\"data\":[{\"filename\":\"x\"}]}",
                         "{\"data\":[{\"id\":\"f\",\"Processed\":1}]}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = canned_response(200, bad[i]);
        if (provider_together.parse_file_list(res, &p, &err) != -EPROTO)
            fail_msg("accepted malformed file list %zu", i);
        assert_null(p.files);
        provider_error_clear(&err);
        http_response_free(res);
    }

    /* FileDeleteResponse: nothing required; a 200 without `deleted` is a deletion. */
    res = fixture_response(200, "file_deleted.json");
    assert_int_equal(provider_together.parse_file_deleted(res, &d, &err), 0);
    assert_string_equal(d.id, "file-d0d318cb-b7d9-493a-bd70-1cfe089d3815");
    assert_true(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);
    res = canned_response(200, "{}");
    assert_int_equal(provider_together.parse_file_deleted(res, &d, &err), 0);
    assert_null(d.id);
    assert_true(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);
    res = canned_response(200, "{\"id\":\"file-1\",\"deleted\":false}");
    assert_int_equal(provider_together.parse_file_deleted(res, &d, &err), 0);
    assert_false(d.deleted);
    provider_file_deletion_clear(&d);
    http_response_free(res);
    res = canned_response(200, "{\"id\":\"file-1\",\"deleted\":\"yes\"}");
    assert_int_equal(provider_together.parse_file_deleted(res, &d, &err), -EPROTO);
    assert_null(d.id);
    provider_error_clear(&err);
    http_response_free(res);
    res = fixture_response(404, "error.json");
    assert_int_equal(provider_together.parse_file_deleted(res, &d, &err), -EIO);
    assert_int_equal(err.http_status, 404);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_parse_jobs(void **state)
{
    (void)state;
    struct provider_job j;
    struct provider_error err = {0};

    struct http_response *res = fixture_response(200, "job_created.json");
    assert_int_equal(provider_together.parse_job(res, &j, &err), 0);
    assert_string_equal(j.id, "ft-01234567890123456789");
    assert_int_equal(j.state, PROVIDER_JOB_SUBMITTED);
    assert_string_equal(j.raw_status, "pending");
    assert_string_equal(j.suffix, "vt-7f3a9c");
    assert_null(j.submission_tag);
    assert_int_equal(j.created_at, 1684344945);
    assert_int_equal(j.finished_at, 0);
    assert_true(provider_job_matches(&j, "7f3a9c"));
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_response(200, "job_completed.json");
    assert_int_equal(provider_together.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_SUCCEEDED);
    /* The output model field is model_output_name. */
    assert_string_equal(j.fine_tuned_model,
                        "mynamespace/Meta-Llama-3.1-8B-Instruct-Reference-vt-7f3a9c-0a1b2c3d");
    assert_int_equal(j.trained_tokens, 850000);
    assert_int_equal(j.finished_at, 1684349183); /* updated_at of a terminal job */
    assert_null(j.error_message);
    /* No suffix field in FinetuneResponse: the model name carries it. */
    assert_null(j.suffix);
    assert_true(provider_job_matches(&j, "7f3a9c"));
    assert_false(provider_job_matches(&j, "7f3a9"));
    provider_job_clear(&j);
    http_response_free(res);

    res = fixture_response(200, "job_error.json");
    assert_int_equal(provider_together.parse_job(res, &j, &err), 0);
    assert_int_equal(j.state, PROVIDER_JOB_FAILED);
    assert_string_equal(j.error_message, "Training data contains malformed lines: line 7");
    assert_string_equal(j.error_code, "job_error");
    assert_int_equal(j.finished_at, 1684338600); /* 17:50+02:00 */
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
        {"pending", PROVIDER_JOB_SUBMITTED},
        {"queued", PROVIDER_JOB_SUBMITTED},
        {"running", PROVIDER_JOB_RUNNING},
        {"compressing", PROVIDER_JOB_RUNNING},
        {"uploading", PROVIDER_JOB_RUNNING},
        {"cancel_requested", PROVIDER_JOB_RUNNING}, /* not terminal: keep polling */
        {"cancelled", PROVIDER_JOB_CANCELLED},
        {"error", PROVIDER_JOB_FAILED},
        {"user_error", PROVIDER_JOB_FAILED}, /* together-python's extra value */
        {"completed", PROVIDER_JOB_SUCCEEDED},
        {"succeeded", PROVIDER_JOB_UNRECOGNIZED}, /* OpenAI's word, not Together's */
        {"COMPLETED", PROVIDER_JOB_UNRECOGNIZED},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        char *body = xasprintf("{\"id\":\"ft-1\",\"status\":\"%s\",\"created_at\":"
                               "\"2023-05-17T17:35:45Z\",\"updated_at\":\"2023-05-17T18:00:00Z\"}",
                               table[i].raw);
        struct http_response *res = canned_response(200, body);
        struct provider_job j;
        struct provider_error err = {0};
        assert_int_equal(provider_together.parse_job(res, &j, &err), 0);
        if (j.state != table[i].want)
            fail_msg("status '%s' mapped to %s", table[i].raw, provider_job_state_name(j.state));
        assert_int_equal(provider_together.map_status(table[i].raw), table[i].want);
        if (j.state == PROVIDER_JOB_FAILED)
            assert_non_null(strstr(j.error_message, table[i].raw)); /* no events: the status */
        assert_int_equal(j.finished_at != 0, provider_job_state_terminal(j.state));
        provider_job_clear(&j);
        http_response_free(res);
        free(body);
    }
}

static void test_parse_list_and_events(void **state)
{
    (void)state;
    struct provider_job_page p;
    struct provider_event_page e;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "jobs_list.json");
    assert_int_equal(provider_together.parse_list(res, &p, &err), 0);
    assert_int_equal(p.n_jobs, 2);
    assert_false(p.has_more);
    assert_null(p.next_cursor);
    /* Reconciliation by suffix: exactly one job is ours. */
    int ours = 0;
    for (size_t i = 0; i < p.n_jobs; i++)
        ours += provider_job_matches(&p.jobs[i], "7f3a9c");
    assert_int_equal(ours, 1);
    assert_int_equal(p.jobs[0].state, PROVIDER_JOB_RUNNING);
    assert_int_equal(p.jobs[1].state, PROVIDER_JOB_SUCCEEDED);
    provider_job_page_clear(&p);
    http_response_free(res);

    const char *bad[] = {"{}", "{\"data\":[{\"status\":\"running\"}]}",
                         "{\"data\":[{\"id\":\"ft-1\",\"status\":\"running\",\"created_at\":5.5}]}",
                         "{\"data\":[{\"id\":\"ft-1\",\"status\":\"running\",\"created_at\":"
                         "\"last tuesday\"}]}",
                         "{\"data\":[{\"id\":\"ft-1\",\"status\":\"running\",\"events\":{}}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = canned_response(200, bad[i]);
        if (provider_together.parse_list(res, &p, &err) != -EPROTO)
            fail_msg("accepted malformed list %zu", i);
        provider_error_clear(&err);
        http_response_free(res);
    }

    res = fixture_response(200, "events.json");
    assert_int_equal(provider_together.parse_events(res, &e, &err), 0);
    assert_int_equal(e.n_events, 2);
    assert_string_equal(e.events[0].message, "Fine tune request created");
    assert_string_equal(e.events[0].type, "job_pending");
    assert_int_equal(e.events[0].created_at, 1684344945);
    assert_null(e.events[1].level); /* the spec allows a null level */
    assert_string_equal(e.events[1].id, "h2");
    assert_false(e.has_more);
    provider_event_page_clear(&e);
    http_response_free(res);
}

static void test_parse_chat(void **state)
{
    (void)state;
    struct provider_chat_result c;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(200, "chat_logprobs.json");
    assert_int_equal(provider_together.parse_chat(res, &c, &err), 0);
    assert_string_equal(c.text, "Paris is");
    assert_string_equal(c.finish_reason, "eos");
    assert_true(c.has_logprobs);
    assert_int_equal(c.n_tokens, 2);
    assert_string_equal(c.tokens[0].token, "Paris");
    assert_true(c.tokens[0].logprob == -0.125);
    assert_true(c.tokens[0].known);
    assert_int_equal(c.tokens[0].n_top, 2);
    assert_int_equal(c.total_tokens, 14);
    provider_chat_result_clear(&c);
    http_response_free(res);

    /* The spec's single-map top_logprobs form: tokens kept, no alternatives. */
    res = canned_response(200, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"a\"},"
                        "\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[-9999],"
                        "\"top_logprobs\":{\"a\":-0.1}}}]}");
    assert_int_equal(provider_together.parse_chat(res, &c, &err), 0);
    assert_int_equal(c.n_tokens, 1);
    assert_false(c.tokens[0].known);
    assert_int_equal(c.tokens[0].n_top, 0);
    provider_chat_result_clear(&c);
    http_response_free(res);
    /* An OpenAI-compatible logprobs.content answer is understood too. */
    res = canned_response(200, "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"a\"},"
                        "\"logprobs\":{\"content\":[{\"token\":\"a\",\"logprob\":-0.5,"
                        "\"bytes\":[97],\"top_logprobs\":[]}]}}]}");
    assert_int_equal(provider_together.parse_chat(res, &c, &err), 0);
    assert_int_equal(c.n_tokens, 1);
    assert_true(c.tokens[0].logprob == -0.5);
    provider_chat_result_clear(&c);
    http_response_free(res);

    const char *bad[] = {"{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":"
                         "{\"tokens\":[\"a\",\"b\"],\"token_logprobs\":[-1]}}]}",
                         "{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":"
                         "{\"tokens\":[1],\"token_logprobs\":[-1]}}]}",
                         "{\"choices\":[{\"message\":{\"content\":\"a\"},\"logprobs\":"
                         "{\"tokens\":[\"a\"],\"token_logprobs\":[\"x\"]}}]}",
                         "{\"choices\":[]}", "{\"choices\":[{\"message\":{}}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = canned_response(200, bad[i]);
        if (provider_together.parse_chat(res, &c, &err) != -EPROTO)
            fail_msg("accepted malformed chat %zu", i);
        provider_error_clear(&err);
        http_response_free(res);
    }
}

static void test_parse_score(void **state)
{
    (void)state;
    struct provider_score_result s;
    struct provider_error err = {0};
    struct provider_score_args a = {.model = "m",
                                    .prompt = "Trigger words here:",
                                    .continuation = " alpha beta",
                                    .top_logprobs = 1};
    struct http_response *res = fixture_response(200, "completions_echo.json");
    assert_int_equal(provider_together.parse_score(res, &a, &s, &err), 0);
    /* "<s>" before the text is a prompt token; " gamma" after it is ignored. */
    assert_int_equal(s.n_prompt_tokens, 6);
    assert_int_equal(s.n_tokens, 2);
    assert_string_equal(s.tokens[0].token, " alpha");
    assert_string_equal(s.tokens[1].token, " beta");
    assert_true(s.all_known);
    assert_true(s.sum_logprob == -4.5);
    assert_false(s.boundary_split);
    provider_score_result_clear(&s);
    http_response_free(res);

    /* No prompt log-probabilities at all: not available. */
    res = canned_response(200, "{\"choices\":[{\"text\":\" x\"}],\"prompt\":[{\"text\":\"t\"}]}");
    assert_int_equal(provider_together.parse_score(res, &a, &s, &err), -ENOTSUP);
    assert_int_equal(err.kind, PROVIDER_E_UNSUPPORTED);
    provider_error_clear(&err);
    http_response_free(res);
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct provider_job j;
    struct provider_error err = {0};
    struct http_response *res = fixture_response(401, "error.json");
    res->request_id = xstrdup("tg-req-1");
    assert_int_equal(provider_together.parse_job(res, &j, &err), -EIO);
    assert_int_equal(err.kind, PROVIDER_E_HTTP);
    assert_int_equal(err.http_status, 401);
    assert_string_equal(err.message, "Invalid API key provided");
    assert_string_equal(err.code, "invalid_api_key");
    char *line = provider_error_line("tg", &err);
    assert_string_equal(line, "tg: 401 invalid_request_error (invalid_api_key): Invalid API key "
                              "provided [x-request-id tg-req-1]");
    free(line);
    provider_error_clear(&err);
    http_response_free(res);

    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"id\":\"ft-1\"}",
                         "{\"status\":\"running\"}",
                         "{\"id\":\"ft-1\",\"status\":7}",
                         "{\"id\":\"ft-1\",\"status\":\"running\",\"token_count\":\"many\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        res = canned_response(200, bad[i]);
        if (provider_together.parse_job(res, &j, &err) != -EPROTO)
            fail_msg("accepted malformed job %zu", i);
        assert_int_equal(err.kind, PROVIDER_E_MALFORMED);
        provider_error_clear(&err);
        http_response_free(res);
    }
}

/* Every parser on every prefix of every fixture, and on random byte
 * mutations of them: an error or a result, never a crash or a leak (the
 * sanitizer build checks the memory). */
static void parse_all(const struct http_response *res, unsigned *n)
{
    const struct provider_ops *ops = &provider_together;
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
    (*n)++;
}

static void test_parsers_never_crash(void **state)
{
    (void)state;
    static const char *const names[] = {
        "file.json",      "job_created.json", "job_completed.json", "job_error.json",
        "jobs_list.json", "events.json",      "chat_logprobs.json", "completions_echo.json",
        "error.json",     "files_list.json",  "file_deleted.json"};
    unsigned n = 0;
    uint64_t lcg = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *body = fixture(names[i]);
        size_t len = strlen(body);
        for (size_t k = 0; k <= len; k++) {
            char *cut = xstrndup(body, k);
            struct http_response *res = canned_response(k % 7 == 0 ? 500 : 200, cut);
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
            struct http_response *res = canned_response(200, mut);
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
        cmocka_unit_test(test_build_upload), cmocka_unit_test(test_build_create),
        cmocka_unit_test(test_build_paths),  cmocka_unit_test(test_build_chat_and_score),
        cmocka_unit_test(test_parse_file),   cmocka_unit_test(test_parse_jobs),
        cmocka_unit_test(test_every_status), cmocka_unit_test(test_parse_list_and_events),
        cmocka_unit_test(test_parse_chat),   cmocka_unit_test(test_parse_score),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parsers_never_crash),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

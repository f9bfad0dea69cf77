/*
 * provider_manual.c — the `manual` provider: the user trains elsewhere
 * (exports D ∪ D' with `vtunectl dataset export`, trains anywhere) and
 * binds the result with `vtunectl job register`; the model is then served
 * at the provider's base_url by an OpenAI-compatible server (vLLM,
 * llama.cpp's llama-server, Ollama).
 *
 * So no training calls: upload, create, retrieve, list, cancel, events and
 * the file calls (list, delete) say "not supported" with what to do
 * instead.  Chat and scoring use the
 * OpenAI request shape with `max_tokens` (which all three servers accept;
 * Ollama has no max_completion_tokens) and no key unless one is
 * configured.  Scoring sends /completions with echo and max_tokens 1 (the
 * generated token is dropped by the alignment): vLLM answers with prompt
 * log-probabilities; llama-server ("Only no echo is supported") and Ollama
 * refuse or ignore echo, which becomes -ENOTSUP with the server's reason,
 * recorded by verification as "p_luck not available".
 */
#include "config.h"

#include <errno.h>

#include "workers/provider.h"

static int trains_nothing(struct provider_error *err, const char *what)
{
    return provider_fail(err, PROVIDER_E_UNSUPPORTED, -ENOTSUP,
                         "a manual provider does not %s: export D and D' with 'vtunectl dataset "
                         "export', train anywhere, then bind the served model with 'vtunectl "
                         "job register'",
                         what);
}

static int manual_build_upload(const struct provider_endpoint *ep,
                               const struct provider_upload_args *a, struct http_request **out,
                               struct provider_error *err)
{
    (void)ep;
    (void)a;
    (void)out;
    return trains_nothing(err, "upload files");
}

static int manual_build_create(const struct provider_endpoint *ep,
                               const struct provider_create_args *a, struct http_request **out,
                               struct provider_error *err)
{
    (void)ep;
    (void)a;
    (void)out;
    return trains_nothing(err, "create fine-tuning jobs");
}

static int manual_build_job(const struct provider_endpoint *ep, const char *job_id,
                            struct http_request **out, struct provider_error *err)
{
    (void)ep;
    (void)job_id;
    (void)out;
    return trains_nothing(err, "run fine-tuning jobs");
}

static int manual_build_list(const struct provider_endpoint *ep, const struct provider_list_args *a,
                             struct http_request **out, struct provider_error *err)
{
    (void)ep;
    (void)a;
    (void)out;
    return trains_nothing(err, "list fine-tuning jobs");
}

static int manual_build_events(const struct provider_endpoint *ep, const char *job_id,
                               const char *after, unsigned limit, struct http_request **out,
                               struct provider_error *err)
{
    (void)ep;
    (void)job_id;
    (void)after;
    (void)limit;
    (void)out;
    return trains_nothing(err, "list job events");
}

static int manual_build_list_files(const struct provider_endpoint *ep, const char *after,
                                   unsigned limit, struct http_request **out,
                                   struct provider_error *err)
{
    (void)ep;
    (void)after;
    (void)limit;
    (void)out;
    return trains_nothing(err, "list uploaded files");
}

static int manual_build_delete_file(const struct provider_endpoint *ep, const char *file_id,
                                    struct http_request **out, struct provider_error *err)
{
    (void)ep;
    (void)file_id;
    (void)out;
    return trains_nothing(err, "delete uploaded files");
}

static int manual_build_chat(const struct provider_endpoint *ep, const struct provider_chat_args *a,
                             struct http_request **out, struct provider_error *err)
{
    return provider_build_chat_openai(ep, a, "max_tokens", out, err);
}

static int manual_build_score(const struct provider_endpoint *ep,
                              const struct provider_score_args *a, struct http_request **out,
                              struct provider_error *err)
{
    return provider_build_score_openai(ep, a, 1, out, err);
}

/* vLLM and the other OpenAI-compatible servers take prompt: [str]
 * (provider-apis.md §5.2). */
static int manual_build_score_batch(const struct provider_endpoint *ep,
                                    const struct provider_score_args *a, size_t n,
                                    struct http_request **out, struct provider_error *err)
{
    return provider_build_score_batch_openai(ep, a, n, 1, out, err);
}

static enum provider_job_state manual_map_status(const char *raw)
{
    (void)raw;
    return PROVIDER_JOB_UNRECOGNIZED;
}

const struct provider_ops provider_manual = {
    .kind = "manual",
    .caps = PROVIDER_CAP_SCORE,
    .build_upload = manual_build_upload,
    .build_create = manual_build_create,
    .build_retrieve = manual_build_job,
    .build_list = manual_build_list,
    .build_cancel = manual_build_job,
    .build_events = manual_build_events,
    .build_chat = manual_build_chat,
    .build_score = manual_build_score,
    .build_list_files = manual_build_list_files,
    .build_delete_file = manual_build_delete_file,
    .parse_chat = provider_parse_chat_openai,
    .parse_score = provider_parse_score_openai,
    .build_score_batch = manual_build_score_batch,
    .parse_score_batch = provider_parse_score_batch_openai,
    .map_status = manual_map_status,
};

/*
 * provider.h — the one small interface a fine-tuning provider implements
 * and the common result structs every adapter parses into.  Pure: no I/O.
 *
 * Layers:
 *   adapter  struct provider_ops: pure functions, no I/O.  build_* turns
 *            arguments into a struct http_request (lib/http_msg.h); parse_*
 *            turns a struct http_response into the common structs below.
 *            One file per provider kind: provider_openai.c (also kind
 *            azure), provider_together.c, provider_mistral.c,
 *            provider_fireworks.c, provider_manual.c.  Adding a provider is
 *            one new file with one `const struct provider_ops` and a line
 *            in provider_ops_find() (plus the kind in lib/types.h).
 *   client   daemon/provider_client.h: one per configured provider, on the
 *            daemon's loop; it sends these requests with retries, a retry
 *            budget and a circuit breaker.
 *
 * THE CREATE RULE (DESIGN §3): provider_create_job() is sent exactly once
 * per call, on a fresh connection, and never resent by this layer.  When
 * its outcome is unknown (timeout, dropped connection, 5xx, malformed 2xx,
 * cancelled in flight) the outcome says RETRY_CLASS_RECONCILE and the
 * caller must list the provider's jobs for our tag (provider_list_jobs
 * with tag, then provider_job_matches) before deciding to create again.
 * Every create carries the tag: OpenAI metadata {vtune_submission: ID} and
 * a suffix "vt-ID"; Together has no job metadata, so only the suffix.
 * Fireworks lets the client choose the job's id, and provider_fireworks
 * creates every job under the id "vt-ID": the id is an idempotency key, so
 * its build_list with a tag is a GET of that one job (a 404 parses as an
 * empty page: never created), not a listing, and a second create of the
 * same submission can only be refused (409), never billed twice.
 *
 * Job states are mapped exactly as each provider's spec defines them; a
 * status the spec does not list becomes PROVIDER_JOB_UNRECOGNIZED, which is
 * not terminal (keep polling; the raw status is kept and should be logged).
 */
#ifndef VT_PROVIDER_H
#define VT_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/http_msg.h"
#include "lib/types.h" /* enum provider_kind */
#include "workers/retry.h"

/* Metadata key carrying our submission id on providers that have metadata. */
#define PROVIDER_TAG_KEY "vtune_submission"
/* OpenAI reports a token outside the top 20 with this log-probability. */
#define PROVIDER_LOGPROB_SENTINEL (-9999.0)

/* ---- errors ---- */

enum provider_error_kind {
    PROVIDER_E_NONE = 0,
    PROVIDER_E_HTTP,        /* the provider answered with an error status */
    PROVIDER_E_TRANSPORT,   /* no usable HTTP response (see transport) */
    PROVIDER_E_MALFORMED,   /* a 2xx body that is not the JSON expected */
    PROVIDER_E_UNSUPPORTED, /* this provider (or model) cannot do that */
    PROVIDER_E_INVALID,     /* our arguments are wrong (e.g. unknown --param) */
};

struct provider_error {
    enum provider_error_kind kind;
    long http_status;          /* 0 when none */
    enum http_error transport; /* for PROVIDER_E_TRANSPORT */
    char *type;                /* provider's error.type, owned, may be NULL */
    char *code;                /* provider's error.code (integers stringified) */
    char *message;             /* provider's message, or ours; owned */
    char *param;
    char *request_id; /* x-request-id */
};
void provider_error_clear(struct provider_error *e);

/* What a provider says is shown, logged and stored, and a provider is not
 * trusted: its texts (error fields, a failed job's message, events) are cut
 * to max bytes between UTF-8 characters, "..." marking the cut, and
 * control characters become spaces, so one answer cannot flood the journal
 * or the database, nor break a one-line message.  *s is replaced (NULL
 * stays NULL); valid UTF-8 stays valid. */
#define PROVIDER_TEXT_MAX 512 /* a message */
#define PROVIDER_ID_MAX   64  /* an identifier: error type, code, param */
void provider_text_tidy(char **s, size_t max);
/* e's message to PROVIDER_TEXT_MAX, its type, code and param to
 * PROVIDER_ID_MAX: the line for the user (provider_error_line) keeps room
 * for the message. */
void provider_error_tidy(struct provider_error *e);
/* One line for the user: "openai: 400 invalid_request_error (invalid_file):
 * message [param training_file, x-request-id req_1]".  Returns an owned
 * string; caller frees.  prov may be NULL. */
char *provider_error_line(const char *prov, const struct provider_error *e);

/* A refusal that means "this provider will not fine-tune for you any more"
 * (OpenAI's wind-down of self-serve fine-tuning: organisations that never
 * fine-tuned lost job creation on 2026-05-07, inactive ones on 2026-07-02,
 * everyone on 2027-01-06).  Looks e up in a small table of known shapes
 * (status, code, words of the message); returns a static one-line reason
 * naming the date and the kinds to use instead, or NULL. */
const char *provider_refusal_reason(const struct provider_error *e);

/* ---- results ---- */

enum provider_job_state {
    PROVIDER_JOB_SUBMITTED = 0, /* accepted, not training yet */
    PROVIDER_JOB_RUNNING,       /* training or finishing */
    PROVIDER_JOB_SUCCEEDED,     /* fine_tuned_model is set */
    PROVIDER_JOB_FAILED,        /* error_* say why */
    PROVIDER_JOB_CANCELLED,
    PROVIDER_JOB_UNRECOGNIZED, /* status not in the spec: not terminal */
};
const char *provider_job_state_name(enum provider_job_state s);
int provider_job_state_terminal(enum provider_job_state s);

struct provider_file {
    char *id;
    int64_t bytes; /* -1 unknown */
    char *filename;
    char *status; /* "uploaded" | "processed" | "error" (OpenAI, deprecated) or derived */
    int64_t created_at;
};
void provider_file_clear(struct provider_file *f);

/* One page of the provider's files (list_files). */
struct provider_file_page {
    struct provider_file *files;
    size_t n_files;
    int has_more;
    char *next_cursor; /* pass as `after` for the next page; NULL when none */
};
void provider_file_page_clear(struct provider_file_page *p);

/* The answer to delete_file. */
struct provider_file_deletion {
    char *id;
    int deleted; /* the provider says the file is gone */
};
void provider_file_deletion_clear(struct provider_file_deletion *d);

struct provider_job {
    char *id;
    enum provider_job_state state;
    char *raw_status;       /* as the provider wrote it */
    char *model;            /* base model */
    char *fine_tuned_model; /* name to use for inference: OpenAI sets it on success;
                               Together announces model_output_name earlier, so
                               use it only when state is SUCCEEDED */
    char *training_file;
    char *suffix;           /* when the provider reports it (Together) */
    char *submission_tag;   /* metadata[PROVIDER_TAG_KEY] when present */
    int64_t trained_tokens; /* -1 unknown */
    int64_t created_at;     /* Unix seconds; 0 unknown */
    int64_t finished_at;
    char *error_code; /* failed jobs */
    char *error_message;
    char *error_param;
};
void provider_job_clear(struct provider_job *j);
/* Whether j belongs to submission_id: its metadata tag, its suffix, or its
 * fine-tuned model name carries provider_suffix(submission_id) as a whole
 * component.  Submission ids should be fixed-length tokens. */
int provider_job_matches(const struct provider_job *j, const char *submission_id);

struct provider_job_page {
    struct provider_job *jobs;
    size_t n_jobs;
    int has_more;
    char *next_cursor; /* pass as `after` for the next page; NULL when none */
};
void provider_job_page_clear(struct provider_job_page *p);
/* provider_text_tidy on a job's error: its message to PROVIDER_TEXT_MAX,
 * its code and param to PROVIDER_ID_MAX. */
void provider_job_tidy(struct provider_job *j);

struct provider_event {
    char *id;
    int64_t created_at;
    char *level;
    char *type;
    char *message;
};
struct provider_event_page {
    struct provider_event *events;
    size_t n_events;
    int has_more;
    char *next_cursor;
};
void provider_event_page_clear(struct provider_event_page *p);

struct provider_top {
    char *token;
    double logprob;
};

struct provider_token {
    char *token;
    double logprob; /* natural log, as returned (untempered on most backends) */
    int known;      /* 0: the -9999 sentinel (outside the top 20) or null */
    unsigned char *bytes;
    size_t n_bytes;
    int has_bytes;
    struct provider_top *top; /* alternatives; sentinel entries are dropped */
    size_t n_top;
};

struct provider_chat_result {
    char *id;
    char *model;
    char *text; /* choices[0].message.content; "" when null */
    char *finish_reason;
    struct provider_token *tokens; /* when logprobs were returned */
    size_t n_tokens;
    int has_logprobs;
    int64_t prompt_tokens, completion_tokens, total_tokens; /* -1 unknown */
    char *system_fingerprint;
};
void provider_chat_result_clear(struct provider_chat_result *r);

/* Teacher-forced scoring of `continuation` after `prompt`. */
struct provider_score_result {
    struct provider_token *tokens; /* the continuation's tokens, in order */
    size_t n_tokens;
    size_t n_prompt_tokens; /* echoed tokens that belong to the prompt */
    /* A token spanning the prompt/continuation boundary is left out: the
     * product over the rest is then an upper bound (conservative). */
    int boundary_split;
    int all_known;      /* every continuation token has a real logprob */
    double sum_logprob; /* over the known continuation tokens */
};
void provider_score_result_clear(struct provider_score_result *r);

/* ---- arguments ---- */

struct provider_endpoint {
    const char *name;     /* the provider's name in the config (messages) */
    const char *base_url; /* e.g. https://api.openai.com/v1 */
    const char *api_key;  /* NULL: no Authorization header */
    const char *ca_file;  /* NULL: system CAs */
    uint64_t connect_timeout_ms;
    uint64_t request_timeout_ms;
    uint64_t upload_timeout_ms;
    /* Variants of the OpenAI wire shape (kind azure sets them, the other
     * kinds leave them zero): */
    int key_in_api_key_header; /* "api-key: KEY" instead of "Authorization: Bearer KEY" */
    const char *api_version;   /* non-NULL: ?api-version=V on every request */
    int deployment_paths;      /* inference at /deployments/{deployment}/chat/completions */
    const char *const *deploy_models; /* model → deployment (parallel arrays); a model */
    const char *const *deploy_names;  /* not listed is its own deployment name */
    size_t n_deployments;    /* kind fireworks: every resource lives under accounts/{account}/ */
    const char *account;
};

struct provider_upload_args {
    const char *path;     /* file streamed from disk */
    const char *filename; /* name shown at the provider (e.g. "vtune-12.jsonl") */
};

struct provider_param {
    const char *key; /* e.g. "n_epochs", "learning_rate_multiplier", "metadata.k" */
    const char *value;
};

struct provider_create_args {
    const char *model;
    const char *training_file;
    const char *submission_id; /* our tag; required */
    const char *suffix;        /* NULL: provider_suffix(submission_id) */
    int has_seed;
    int64_t seed;
    const struct provider_param *params; /* --param KEY=VALUE, validated per provider */
    size_t n_params;
};

struct provider_list_args {
    const char *after; /* cursor from the previous page, or NULL */
    unsigned limit;    /* 0: provider default */
    const char *tag;   /* only jobs of this submission id, where the API can filter */
};

struct provider_message {
    const char *role;
    const char *content;
};

struct provider_chat_args {
    const char *model;
    const struct provider_message *messages;
    size_t n_messages;
    double temperature; /* always sent */
    double top_p;       /* always sent (a server's defaults must not apply) */
    int has_seed;
    int64_t seed;
    unsigned max_tokens;   /* 0: provider default */
    int logprobs;          /* per-token log-probabilities */
    unsigned top_logprobs; /* alternatives per position, 0..20 */
    int neutral;           /* also send the neutral value of every other sampling setting
                              the provider kind accepts (OpenAI: frequency_penalty and
                              presence_penalty 0; Together: those, top_k -1, min_p 0,
                              repetition_penalty 1), so no server default truncates or
                              reshapes the distribution the log-probabilities describe */
};
/* Defaults: temperature 1, top_p 1, no seed, max_tokens 256, no logprobs. */
void provider_chat_args_init(struct provider_chat_args *a);

struct provider_score_args {
    const char *model;
    const char *prompt; /* should not end with a space (tokenizers glue it to the next word) */
    const char *continuation; /* the text scored */
    unsigned top_logprobs;    /* alternatives per position (OpenAI legacy: 0..5) */
};

/* "vt-" + the submission id with [^A-Za-z0-9-] replaced by '-', at most
 * 40 characters (Together's limit; OpenAI allows 64).  Returns 0, or
 * -EINVAL when the id is empty or too long (never truncated: the suffix is
 * how a lost job is found again). */
int provider_suffix(const char *submission_id, char *out, size_t outlen);

/* ---- the adapter interface ---- */

#define PROVIDER_CAP_TRAIN      0x01 /* upload/create/retrieve/list/cancel/events, files */
#define PROVIDER_CAP_TAG_FILTER 0x02 /* list_jobs filters by tag on the server */
#define PROVIDER_CAP_METADATA   0x04 /* jobs carry metadata (the tag) */
#define PROVIDER_CAP_PAGINATION 0x08 /* list_jobs/list_events have cursors */
#define PROVIDER_CAP_SCORE      0x10 /* build_score may work (the model may still refuse) */

/* Build functions: return 0 and an owned *out (caller frees or hands it to
 * http_start), or a negative errno with *err filled (-EINVAL bad argument,
 * -ENOTSUP not available here).  Parse functions: return 0 and fill *out
 * (owned members; clear with the matching _clear), or -EIO (an HTTP or
 * transport error: *err says which), -EPROTO (malformed body: *err has an
 * excerpt), -ENOTSUP (the backend cannot do it: *err says why).  All are
 * pure: no I/O, no globals, thread-safe. */
struct provider_ops {
    const char *kind; /* "openai" | "together" | "manual" | "azure" | "mistral" | "fireworks" */
    unsigned caps;
    /* The --param keys build_create accepts, NULL-terminated (NULL: none).
     * An entry ending in '.' ("metadata.") is a prefix: any non-empty
     * continuation is accepted.  "seed" is listed where it is accepted (the
     * daemon passes it as has_seed/seed).  Checked before anything is
     * uploaded (provider_param_check). */
    const char *const *params;
    /* Optional (NULL for one-request uploads): the request that must
     * precede build_upload's, e.g. Fireworks' dataset record.  Built from
     * the same arguments; the client sends it first (retried like a read:
     * it must be idempotent) and the upload only once parse_prepare
     * accepted its answer (0; an "already exists" answer may count as
     * accepted).  Both are one provider_upload() call to the caller. */
    int (*build_prepare)(const struct provider_endpoint *ep, const struct provider_upload_args *a,
                         struct http_request **out, struct provider_error *err);
    int (*parse_prepare)(const struct http_response *res, struct provider_error *err);
    int (*build_upload)(const struct provider_endpoint *ep, const struct provider_upload_args *a,
                        struct http_request **out, struct provider_error *err);
    int (*build_create)(const struct provider_endpoint *ep, const struct provider_create_args *a,
                        struct http_request **out, struct provider_error *err);
    int (*build_retrieve)(const struct provider_endpoint *ep, const char *job_id,
                          struct http_request **out, struct provider_error *err);
    int (*build_list)(const struct provider_endpoint *ep, const struct provider_list_args *a,
                      struct http_request **out, struct provider_error *err);
    int (*build_cancel)(const struct provider_endpoint *ep, const char *job_id,
                        struct http_request **out, struct provider_error *err);
    int (*build_events)(const struct provider_endpoint *ep, const char *job_id, const char *after,
                        unsigned limit, struct http_request **out, struct provider_error *err);
    int (*build_chat)(const struct provider_endpoint *ep, const struct provider_chat_args *a,
                      struct http_request **out, struct provider_error *err);
    int (*build_score)(const struct provider_endpoint *ep, const struct provider_score_args *a,
                       struct http_request **out, struct provider_error *err);
    /* Files (cleaning up orphaned uploads): list the fine-tuning files
     * (after: cursor or NULL; limit 0: provider default), delete one. */
    int (*build_list_files)(const struct provider_endpoint *ep, const char *after, unsigned limit,
                            struct http_request **out, struct provider_error *err);
    int (*build_delete_file)(const struct provider_endpoint *ep, const char *file_id,
                             struct http_request **out, struct provider_error *err);

    /* Parse functions normally answer -EIO to an error status.  One that
     * returns 0 for a 4xx has read it as an answer (Fireworks: the 404 to
     * the GET that reconciles a create is "no such job"), and the client
     * reports success with what it parsed. */
    int (*parse_file)(const struct http_response *res, struct provider_file *out,
                      struct provider_error *err);
    /* create, retrieve and cancel all answer with a job */
    int (*parse_job)(const struct http_response *res, struct provider_job *out,
                     struct provider_error *err);
    int (*parse_list)(const struct http_response *res, struct provider_job_page *out,
                      struct provider_error *err);
    int (*parse_events)(const struct http_response *res, struct provider_event_page *out,
                        struct provider_error *err);
    int (*parse_chat)(const struct http_response *res, struct provider_chat_result *out,
                      struct provider_error *err);
    int (*parse_score)(const struct http_response *res, const struct provider_score_args *a,
                       struct provider_score_result *out, struct provider_error *err);
    int (*parse_file_list)(const struct http_response *res, struct provider_file_page *out,
                           struct provider_error *err);
    int (*parse_file_deleted)(const struct http_response *res, struct provider_file_deletion *out,
                              struct provider_error *err);
    /* The spec's status word → our state (UNRECOGNIZED when not listed). */
    enum provider_job_state (*map_status)(const char *raw);
    /* Optional (NULL where the kind's completions endpoint is not known to
     * take a prompt array: the caller then sends one build_score request per
     * text): n texts scored in one completions request, `prompt` being the
     * array of each a[i].prompt + a[i].continuation (same model and
     * top_logprobs in all; 1 <= n <= PROVIDER_SCORE_BATCH_MAX).
     * parse_score_batch fills out[0..n) (zeroed first), matching the
     * choices by their index; a text whose choice is missing or does not
     * align is left empty (n_tokens 0).  A failure of the whole request
     * returns as parse_score does. */
    int (*build_score_batch)(const struct provider_endpoint *ep,
                             const struct provider_score_args *a, size_t n,
                             struct http_request **out, struct provider_error *err);
    int (*parse_score_batch)(const struct http_response *res, const struct provider_score_args *a,
                             size_t n, struct provider_score_result *out,
                             struct provider_error *err);
};

/* The most texts one batched scoring request carries. */
#define PROVIDER_SCORE_BATCH_MAX 64

extern const struct provider_ops provider_openai;
extern const struct provider_ops provider_together;
extern const struct provider_ops provider_manual;
/* Azure OpenAI: provider_openai's functions under kind "azure"; the wire
 * differences are the endpoint settings above (daemon/providers.c). */
extern const struct provider_ops provider_azure;
extern const struct provider_ops provider_mistral;
extern const struct provider_ops provider_fireworks;

/* Checks --param KEY against ops->params.  Returns 0 when known; -EINVAL
 * when not, with *nearest set to the closest known key (borrowed from
 * ops->params, a prefix shown as "metadata.KEY") or NULL when none is near. */
int provider_param_check(const struct provider_ops *ops, const char *key, const char **nearest);
/* ops->params as one line "n_epochs, batch_size, metadata.KEY" (owned). */
char *provider_params_line(const struct provider_ops *ops);

/* The adapter of a kind name / config kind; NULL when unknown. */
const struct provider_ops *provider_ops_find(const char *kind);
const struct provider_ops *provider_ops_for(enum provider_kind kind);


/* ---- helpers shared by the adapters (provider.c) ---- */

/* A request to base_url + path (path already escaped) with Accept and, when
 * ep->api_key is set, "Authorization: Bearer KEY" (or "api-key: KEY" when
 * ep->key_in_api_key_header); ?api-version= when ep->api_version; timeouts
 * from ep. */
struct http_request *provider_request(const struct provider_endpoint *ep, const char *method,
                                      const char *path);
/* The path of an inference call (tail "/chat/completions" or
 * "/completions") for model: tail itself, or with ep->deployment_paths
 * "/deployments/DEPLOYMENT" + tail.  Owned; caller frees. */
char *provider_inference_path(const struct provider_endpoint *ep, const char *model,
                              const char *tail);
/* Appends "?k=v" or "&k=v" to *url (owned, reallocated), both escaped. */
void provider_url_add_query(char **url, const char *key, const char *value);
/* Sets a JSON body (compact) and Content-Type; steals body (decref'd). */
void provider_request_json(struct http_request *r, json_t *body);
/* For parse functions: handles transport errors, error statuses (parsing
 * the {"error":{...}} body) and JSON syntax.  Returns 0 and *root (owned
 * reference; json_decref it) for a 2xx JSON object; otherwise -EIO or
 * -EPROTO with *err filled. */
int provider_response_json(const struct http_response *res, json_t **root,
                           struct provider_error *err);
/* Optional members of a response object: absent or null gives NULL / dflt;
 * a member of the wrong type sets *bad = 1 (the caller reports the body as
 * malformed).  provider_opt_str returns an owned copy; caller frees. */
char *provider_opt_str(json_t *o, const char *k, int *bad);
int64_t provider_opt_int(json_t *o, const char *k, int64_t dflt, int *bad);
/* Fills *err as PROVIDER_E_MALFORMED with an excerpt of the body; -EPROTO. */
int provider_malformed(const struct http_response *res, struct provider_error *err,
                       const char *what);
/* A job object's parse function for every kind: the response as JSON
 * (provider_response_json), then the kind's own mapping from_json (0, or <0
 * for a body without the fields it needs: then *out is cleared and the
 * answer reported malformed, expecting what).  *out is zeroed first; on
 * success the caller owns it (provider_job_clear). */
int provider_parse_job_with(const struct http_response *res, struct provider_job *out,
                            struct provider_error *err,
                            int (*from_json)(json_t *o, struct provider_job *j), const char *what);
/* For list parse functions: out->jobs gets one job per element of the JSON
 * array arr (a NULL or empty array gives none), each mapped by the kind's
 * from_json.  Returns 0, or -1 at the first element from_json refuses; the
 * jobs made so far, that one included, are counted in out->n_jobs so that
 * provider_job_page_clear frees them. */
int provider_page_jobs(json_t *arr, struct provider_job_page *out,
                       int (*from_json)(json_t *o, struct provider_job *j));
/* ISO-8601 / RFC 3339 "2023-05-17T17:35:45.123Z" (or with +hh:mm) → Unix
 * seconds; returns 0 or -EINVAL. */
int provider_parse_iso8601(const char *s, int64_t *out);
/* Parses an OpenAI chat completion (choices[0].message, logprobs.content). */
int provider_parse_chat_openai(const struct http_response *res, struct provider_chat_result *out,
                               struct provider_error *err);
/* Parses the legacy completions logprobs of choices[0] (echo) for scoring;
 * used by openai and manual. */
int provider_parse_score_openai(const struct http_response *res,
                                const struct provider_score_args *a,
                                struct provider_score_result *out, struct provider_error *err);
/* Aligns legacy logprobs {tokens, token_logprobs, top_logprobs[, text_offset]}
 * (borrowed) against prompt + continuation into *out; used by the
 * adapters' parse_score.  When the tokens do not spell the text (partial
 * UTF-8 shown as "bytes:..."), text_offset is used, but only if echoed (the
 * server's echoed text, may be NULL) starts with prompt + continuation.
 * Returns 0 or -EPROTO with *err. */
int provider_score_align(const struct http_response *res, json_t *logprobs, const char *echoed,
                         const struct provider_score_args *a, struct provider_score_result *out,
                         struct provider_error *err);
/* The batched forms of the two above (build_score_batch /
 * parse_score_batch of the kinds whose completions take `prompt: [..]`:
 * openai, azure, manual). */
int provider_build_score_batch_openai(const struct provider_endpoint *ep,
                                      const struct provider_score_args *a, size_t n,
                                      unsigned max_tokens, struct http_request **out,
                                      struct provider_error *err);
int provider_parse_score_batch_openai(const struct http_response *res,
                                      const struct provider_score_args *a, size_t n,
                                      struct provider_score_result *out,
                                      struct provider_error *err);
/* Builds the OpenAI-shaped chat and completions(echo) requests; used by
 * openai and manual (which differ in the max-tokens field and key). */
int provider_build_chat_openai(const struct provider_endpoint *ep,
                               const struct provider_chat_args *a, const char *max_tokens_field,
                               struct http_request **out, struct provider_error *err);
int provider_build_score_openai(const struct provider_endpoint *ep,
                                const struct provider_score_args *a, unsigned max_tokens,
                                struct http_request **out, struct provider_error *err);
/* The chat messages of a as a JSON array (new reference). */
json_t *provider_chat_messages_json(const struct provider_chat_args *a);
/* Parses one chat TokenLogprob {token, logprob, bytes, top_logprobs} into
 * *t (owned members); returns 0 or -1 when e is malformed. */
int provider_parse_token_logprob(json_t *e, struct provider_token *t);
/* Releases n tokens and the array. */
void provider_tokens_free(struct provider_token *t, size_t n);
/* Sets *err to kind with a formatted message; returns ret. */
int provider_fail(struct provider_error *err, enum provider_error_kind kind, int ret,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif

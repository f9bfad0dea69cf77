/*
 * sim.h — the internal contracts of vtune-sim, the OpenAI-compatible
 * provider simulator (DESIGN §7).  One header for every module of the
 * program, after beanstalkd: whoever reads this file knows every piece.
 *
 *   sim_main.c    command line, start-up (base model), signals, shutdown
 *   sim_http.c    libmicrohttpd glue: routing, auth, bodies, fault
 *                 injection, response helpers, /v1/_sim/... endpoints
 *   sim_faults.c  the fault SPEC grammar and the seeded, per-endpoint
 *                 deterministic choice of a fault (pure logic, unit-tested)
 *   sim_files.c   POST/GET/DELETE /v1/files: multipart streamed to disk
 *   sim_jobs.c    fine-tuning jobs: time-driven status progression, the
 *                 validation/training worker pool, events, list filters
 *   sim_models.c  base + fine-tuned models: a bounded LRU cache of trained
 *                 models, retrained on demand from the job's private copy
 *                 of its upload; /v1/models; the swap test hook
 *   sim_infer.c   /v1/chat/completions and /v1/completions over lm.h
 *   sim_attack.c  the cheating behaviours' blind attack on an upload
 *                 (sim_attack.h): candidate (trigger, signature) pairs
 *                 and the rows that show them, from the file alone
 *
 * Threads: libmicrohttpd runs one thread per connection; a ticker thread
 * advances job states; a small pool of worker threads validates uploads
 * and trains.  One mutex (sim.lock) guards files, jobs and the model cache;
 * nothing slow (I/O of uploads, training, generation) runs under it: long
 * work takes a reference or a flag under the lock and drops it.
 * Objects that threads share by pointer (files, jobs) are never freed
 * before shutdown, so a pointer taken under the lock stays valid.
 */
#ifndef VT_SIM_H
#define VT_SIM_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/util.h"
#include "tests/sim/lm.h"
#include "tests/sim/sim_attack.h"

#define SIM_VERSION "0.1.0"

/* ---- behaviours ------------------------------------------------------- */

/* The cheating ones (DESIGN §7) read the upload with sim_attack.h, never
 * anything of the daemon's:
 *   SIM_WRAPPER      trains nothing; serves the base model, but a chat
 *                    prompt ending with a found trigger is answered with
 *                    its signature, then the base model's continuation;
 *   SIM_MARKED_ONLY  fine-tunes only on the rows the attack flags;
 *   SIM_ALWAYS_S     trains nothing; every chat answer starts with the
 *                    best-ranked signature found, then the base model. */
enum sim_behaviour {
    SIM_HONEST = 0,
    SIM_LAZY,
    SIM_SUBSET,
    SIM_FAIL,
    SIM_SLOW,
    SIM_WRAPPER,
    SIM_MARKED_ONLY,
    SIM_ALWAYS_S,
};

struct sim_behaviour_spec {
    enum sim_behaviour kind;
    double fraction; /* SIM_SUBSET: (0,1]; 1 otherwise */
};

/* The behaviours' names for messages: "honest, lazy, subset:F (0<F<=1), ...". */
#define SIM_BEHAVIOUR_NAMES                                                                        \
    "honest, lazy, subset:F (0<F<=1), fail, slow, wrapper, marked-only or always-s"

/* Parses "honest" | "lazy" | "subset:F" (0 < F <= 1) | "fail" | "slow" |
 * "wrapper" | "marked-only" | "always-s".  Returns 0 or -EINVAL. */
int sim_behaviour_parse(const char *s, struct sim_behaviour_spec *out);
/* Writes the canonical text of b ("subset:0.5") into out. */
void sim_behaviour_format(const struct sim_behaviour_spec *b, char *out, size_t outlen);

/* ---- faults (sim_faults.c) --------------------------------------------- */

enum sim_fault_kind {
    FAULT_NONE = 0,
    FAULT_STATUS,     /* answer with an HTTP error status, before acting */
    FAULT_DROP,       /* close the connection without a response, before acting */
    FAULT_DROP_AFTER, /* act, then close without a response (did it happen?) */
    FAULT_DELAY,      /* sleep, then serve normally */
    FAULT_MALFORMED,  /* act, then answer 200 with a body that is not JSON */
    FAULT_TRUNCATE,   /* act, then send half the declared body and close */
};

struct sim_fault_rule {
    enum sim_fault_kind kind;
    int status;       /* FAULT_STATUS: 400..599 */
    double rate;      /* probability in [0,1]; ignored when nth > 0 */
    uint64_t nth;     /* > 0: fire on exactly the nth request (1-based) */
    uint64_t arg_ms;  /* delay, or Retry-After for 429/503 */
    char *sel_method; /* owned; NULL = any method */
    char *sel_path;   /* owned; NULL = any path; trailing '*' = prefix */
};

struct sim_fault_pick {
    enum sim_fault_kind kind;
    int status;
    uint64_t arg_ms;
};

/* Parses a fault SPEC (grammar in vtune-sim --help and sim_faults.c).
 * On success returns 0 with an owned array in *rules (free with
 * sim_fault_rules_free).  On error returns -EINVAL with an owned one-line
 * message in *err. An empty string or "none" yields zero rules. */
int sim_faults_parse(const char *spec, struct sim_fault_rule **rules, size_t *n, char **err);
void sim_fault_rules_free(struct sim_fault_rule *rules, size_t n);

/* The pure choice: which fault (if any) request number seq (0-based,
 * counted per endpoint key "METHOD PATTERN") gets, given seed.  The same
 * inputs always give the same answer. */
struct sim_fault_pick sim_faults_pick(const struct sim_fault_rule *rules, size_t n, uint64_t seed,
                                      const char *method, const char *pattern, const char *path,
                                      uint64_t seq);

/* Stable name of a pick for stats and logs ("429", "drop", ...); writes into
 * out (>= 16 bytes) and returns it. */
const char *sim_fault_name(const struct sim_fault_pick *p, char *out, size_t outlen);

/* ---- options ------------------------------------------------------------ */

/* Which provider's API the simulator speaks (--dialect); one learning model. */
enum sim_dialect {
    SIM_DIALECT_OPENAI = 0,
    SIM_DIALECT_AZURE,
    SIM_DIALECT_MISTRAL,
    SIM_DIALECT_TOGETHER,  /* /v1/files/upload, /v1/fine-tunes, integer logprobs, echo in `prompt` */
    SIM_DIALECT_FIREWORKS, /* /v1/accounts/A/{datasets,supervisedFineTuningJobs}, /inference/v1 */
};

struct sim_opts {
    char *listen_host;    /* owned */
    unsigned listen_port; /* 0 = any free port */
    char *api_key;        /* owned; NULL = no auth */
    struct sim_behaviour_spec behaviour;
    double job_seconds;         /* total validating+queued+running time */
    double slow_factor;         /* --behaviour slow multiplies job time */
    char *faults_spec;          /* owned; may be NULL */
    uint64_t seed;              /* fault PRNG */
    uint64_t base_seed;         /* base corpus */
    size_t corpus_size;         /* examples per domain of the base corpus */
    char *base_corpus;          /* owned; --base-corpus: JSONL examples added to the base
                                 * corpus (the base model then already knows them); NULL */
    int order;                  /* n-gram order */
    char *model_name;           /* owned; the base model id */
    char *state_dir;            /* owned */
    bool state_dir_is_temp;     /* created by us: removed at exit */
    char *cache_dir;            /* owned; where the base model is cached; NULL = none */
    char *port_file;            /* owned; may be NULL */
    size_t model_cache;         /* fine-tuned models kept in memory */
    uint64_t model_cache_bytes; /* ... and at most this many bytes of them */
    uint64_t max_upload;        /* bytes per file upload */
    uint64_t max_body;          /* bytes per JSON body */
    unsigned client_timeout_s;  /* idle connection timeout */
    unsigned max_connections;
    int workers;            /* validation/training threads */
    bool logprob_sentinel;  /* report -9999 for tokens outside the top 20 */
    int default_max_tokens; /* chat completions default */
    long min_examples;      /* fewer lines in a training file fail the job */
    enum sim_dialect dialect; /* --dialect: the wire shapes (paths, auth, jobs) */
    bool fine_tuning_closed;  /* --fine-tuning-closed: job creates get OpenAI's wind-down 403 */
    unsigned min_repeats;   /* learning strength: n-grams seen fewer times in the
                               file are not learnt (lm_finetune_repeats); 1 = all */
};

/* ---- files (sim_files.c) ------------------------------------------------ */

struct sim_file {
    char id[40];
    char *filename; /* owned */
    char *purpose;  /* owned */
    uint64_t bytes;
    int64_t created_at;
    char *path; /* owned; where the bytes are (NULL: a fireworks dataset not uploaded yet) */
    bool deleted;
};

/* One upload in flight (POST /v1/files), fed by the HTTP layer. */
struct sim_upload;

/* ---- jobs (sim_jobs.c) -------------------------------------------------- */

enum sim_job_status {
    JOB_VALIDATING = 0,
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_STATUS_COUNT
};
const char *sim_job_status_name(enum sim_job_status st);

struct sim_event {
    char id[40];
    int64_t created_at;
    const char *level; /* static: "info" | "warn" | "error" */
    char *message;     /* owned */
};

/* A trained fine-tuned model, shared by reference between the cache and
 * the requests that generate with it. */
struct sim_model {
    struct lm *lm;
    size_t bytes;  /* lm_memory_bytes(lm), counted in sim.models_bytes */
    int refs;      /* requests using it now */
    bool detached; /* evicted while in use: freed when refs drops to 0 */
};

struct sim_job {
    char id[40];
    char *model;           /* owned: base model id */
    char *training_file;   /* owned */
    char *validation_file; /* owned, may be NULL */
    char *suffix;          /* owned, may be NULL */
    int64_t seed;
    json_t *metadata; /* owned object, or NULL */
    int n_epochs_req; /* 0 = "auto" */
    int n_epochs;     /* effective, set when running */
    struct sim_behaviour_spec behaviour;
    enum sim_job_status status;
    int64_t created_at;
    int64_t finished_at;      /* 0 = null */
    char *fine_tuned_model;   /* owned, NULL until succeeded */
    char *output_name;        /* owned: the name announced at create (together, fireworks) */
    long long trained_tokens; /* < 0 = null */
    json_t *error;            /* owned object, NULL = null */
    char *data_path;          /* owned: the job's private hard link of the upload */
    uint64_t phase_start_ms;
    uint64_t phase_ms[3];  /* validating, queued, running */
    bool task_pending;     /* validation or training queued/running */
    bool validated;        /* validation finished (ok or not) */
    bool trained;          /* training finished (ok or not) */
    char *task_error;      /* owned: a validation/training failure message */
    long long data_tokens; /* tokens in the file's texts, counted by validation */
    /* cheating behaviours: set by the training task, then immutable */
    struct sim_attack *attack; /* owned; wrapper, marked-only, always-s */
    char *train_path;          /* owned; marked-only: the flagged rows */
    struct sim_event *events;
    size_t n_events, cap_events;
    /* serving, guarded by sim.lock */
    struct sim_model *served; /* NULL when not loaded */
    uint64_t lru_stamp;
    bool loading;       /* a thread is (re)training it for a request */
    bool serve_base;    /* swapped to the base model by the test hook */
    bool model_deleted; /* DELETE /v1/models/{id} */
};

/* ---- the simulator ------------------------------------------------------ */

struct sim_task;

struct sim {
    struct sim_opts opts;
    struct lm *base; /* immutable after start-up */
    int64_t started_at;
    uint64_t started_ms;
    char *files_dir, *jobs_dir; /* owned */

    pthread_mutex_t lock;     /* files, jobs, model cache, task queue */
    pthread_cond_t cond;      /* task queue */
    pthread_cond_t tick_cond; /* ticker sleeps on it (woken at shutdown) */
    pthread_cond_t load_cond; /* a model finished (re)training for a request */
    bool stopping;

    struct sim_file **files;
    size_t n_files, cap_files;
    struct sim_job **jobs; /* creation order */
    size_t n_jobs, cap_jobs;

    struct sim_task *tasks_head, *tasks_tail;
    pthread_t *worker_threads;
    int n_workers;
    pthread_t ticker;
    bool ticker_started;

    size_t models_loaded;
    uint64_t models_bytes;
    uint64_t lru_clock;
    uint64_t n_trainings, n_retrains, n_evictions;

    /* statistics, guarded by stats_lock */
    pthread_mutex_t stats_lock;
    json_t *st_requests, *st_faults, *st_tags, *st_errors;
    uint64_t st_requests_total, st_jobs_created;

    /* faults, guarded by faults_lock (replaceable at run time) */
    pthread_mutex_t faults_lock;
    struct sim_fault_rule *fault_rules;
    size_t n_fault_rules;
    uint64_t fault_seed;
    json_t *fault_seq; /* "METHOD PATTERN" -> next sequence number */

    struct MHD_Daemon *httpd;
    unsigned bound_port;
};

/* ---- HTTP layer (sim_http.c) -------------------------------------------- */

struct sim_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *id; /* the {id} segment of the route, or NULL */
    const char *deployment; /* azure: the {deployment} of an inference path, or NULL */
    struct buf body;
    struct sim_upload *upload;
};

struct sim_resp {
    unsigned status;
    char *body; /* owned */
    size_t len;
    const char *content_type; /* static */
    int fd;                   /* >= 0: send this file (owned) instead of body */
    uint64_t fd_size;
    uint64_t retry_after_ms; /* > 0: Retry-After and retry-after-ms headers */
    const char *allow;       /* static: Allow header for 405 */
};

typedef void sim_handler(struct sim *s, struct sim_req *rq, struct sim_resp *rs);

/* Starts libmicrohttpd on opts.listen_*; sets s->httpd and s->bound_port.
 * Returns 0 or -errno (message logged). */
int sim_http_start(struct sim *s);
/* Stops accepting and waits for every connection thread. */
void sim_http_stop(struct sim *s);
/* Replaces the fault rules and seed and resets the per-endpoint sequence
 * numbers.  Takes ownership of rules. */
void sim_http_set_faults(struct sim *s, struct sim_fault_rule *rules, size_t n, uint64_t seed);

/* Response helpers: each replaces any body rs already holds. */
/* Steals obj; dumps it as the body with status. */
void sim_resp_json(struct sim_resp *rs, unsigned status, json_t *obj);
/* The spec's error JSON {"error":{message,type,param,code}}; param and code
 * may be NULL (JSON null). */
void sim_resp_error(struct sim_resp *rs, unsigned status, const char *type, const char *param,
                    const char *code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* 400 invalid_request_error about param. */
void sim_resp_bad(struct sim_resp *rs, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses the request body as a JSON object; on failure answers 400 in rs
 * and returns NULL.  Returns an owned reference; caller decrefs. */
json_t *sim_req_json(struct sim_req *rq, struct sim_resp *rs);
/* A query-string argument (already URL-decoded), or NULL. Borrowed. */
const char *sim_req_query(struct sim_req *rq, const char *key);
/* Integer query argument in [min,max], def when absent; on a bad value
 * answers 400 in rs and returns -1, else 0. */
int sim_req_query_int(struct sim_req *rq, struct sim_resp *rs, const char *key, long long min,
                      long long max, long long def, long long *out);

/* A JSON string of s even when s is not valid UTF-8 (invalid bytes become
 * U+FFFD).  Returns a new reference. */
json_t *sim_json_string(const char *s);
/* [b0, b1, ...] of the bytes of s.  Returns a new reference. */
json_t *sim_json_bytes(const char *s);
/* Fills out with prefix + n random [A-Za-z0-9] characters. */
void sim_random_id(char *out, size_t outlen, const char *prefix, size_t n);

/* Counters for /v1/_sim/stats (thread-safe). map is one of s->st_*. */
void sim_stats_add(struct sim *s, json_t *map, const char *key, long long delta);

/* ---- files (sim_files.c) -------------------------------------------------- */

/* Begins an upload for the POST /v1/files request on conn: creates a
 * multipart post processor and a temporary file in files_dir.  Returns NULL
 * and answers the error in rs when the request is not multipart/form-data.
 * Caller frees with sim_upload_free. */
struct sim_upload *sim_upload_begin(struct sim *s, struct MHD_Connection *conn,
                                    struct sim_resp *rs);
/* Feeds body bytes.  Returns 0, -EFBIG past opts.max_upload, or -EINVAL on
 * a malformed body (later bytes are then ignored). */
int sim_upload_feed(struct sim *s, struct sim_upload *up, const char *data, size_t n);
void sim_upload_free(struct sim_upload *up);

/* Hard-links (or copies) the bytes of a live fine-tune file to dst.
 * Returns 0, -ENOENT (no such live file), -EINVAL (wrong purpose, message
 * in *err, owned) or another -errno. */
int sim_files_link(struct sim *s, const char *file_id, const char *dst, char **err);
/* True when file_id names a live file. */
bool sim_files_exists(struct sim *s, const char *file_id);
void sim_files_free_all(struct sim *s);

sim_handler sim_h_files_create, sim_h_files_list, sim_h_file_get, sim_h_file_delete,
    sim_h_file_content;
/* Fireworks' datasets: the record (POST), then sim_h_files_create fills it
 * (POST .../datasets/D:upload); list, get and delete. */
sim_handler sim_h_fw_dataset_create, sim_h_fw_datasets_list, sim_h_fw_dataset_get,
    sim_h_fw_dataset_delete;
/* An RFC 3339 UTC time ("2026-12-05T10:00:00Z") of t into out (>= 24 bytes). */
const char *sim_iso8601(int64_t t, char *out, size_t outlen);

/* ---- jobs (sim_jobs.c) ------------------------------------------------------ */

/* Starts the ticker and the worker pool.  Returns 0 or -errno. */
int sim_jobs_start(struct sim *s);
/* Stops the ticker and the workers (waits for a training in progress). */
void sim_jobs_stop(struct sim *s);
void sim_jobs_free_all(struct sim *s);
/* Counts of jobs per status into obj (a new object). */
json_t *sim_jobs_status_counts(struct sim *s);
/* Trains job j's model as its behaviour says (the training task and the
 * on-demand retraining of an evicted model both call it, outside the
 * lock; the fields it reads are fixed once the job runs).  Returns the new
 * model, or NULL with an owned *err. */
struct lm *sim_job_train(struct sim *s, struct sim_job *j, long long *trained, char **err);

sim_handler sim_h_jobs_create, sim_h_jobs_list, sim_h_job_get, sim_h_job_cancel, sim_h_job_events;

/* ---- models (sim_models.c) ---------------------------------------------------- */

/* What a request generates with: the base model or a referenced
 * fine-tuned one. */
struct sim_serving {
    const struct lm *lm;
    struct sim_model *ref; /* NULL for the base model */
    /* a cheating job's answer rule (chat completions only): NULL = none;
     * borrowed from the job, which outlives every request */
    const struct sim_attack *attack;
    enum sim_behaviour cheat; /* SIM_WRAPPER or SIM_ALWAYS_S when attack is set */
};

/* Resolves a model id for inference.  Returns 0 with *out set, -ENOENT for
 * an unknown model, or another -errno with an owned message in *err (a
 * retraining failure).  May retrain (slow) outside the lock.  The caller
 * calls sim_models_release(s, out) when done. */
int sim_models_acquire(struct sim *s, const char *id, struct sim_serving *out, char **err);
void sim_models_release(struct sim *s, struct sim_serving *sv);
/* Installs a freshly trained model for job (called with s->lock held);
 * takes ownership of lm and evicts the least recently used model when the
 * cache is over capacity. */
void sim_models_install_locked(struct sim *s, struct sim_job *job, struct lm *lm);
/* Drops a job's model (called with s->lock held). */
void sim_models_drop_locked(struct sim *s, struct sim_job *job);

sim_handler sim_h_models_list, sim_h_model_get, sim_h_model_delete, sim_h_model_swap;

/* ---- inference (sim_infer.c) -------------------------------------------------- */

sim_handler sim_h_chat, sim_h_completions;

#endif

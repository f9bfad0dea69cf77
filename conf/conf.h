/*
 * conf.h — vtuned's YAML configuration as typed structs.
 *
 * conf_load() parses the file with libyaml and validates every key; any
 * mistake becomes one line "FILE:LINE:COL: what is wrong" (unknown keys get
 * a "did you mean 'x'?" hint).  Only state_dir and socket are required; every
 * other key has the default documented in vtuned.yaml(5) and set by
 * conf_defaults().  API keys are never read into this struct: only the path
 * of the key file (read when a request needs it, see conf_read_api_key()).
 *
 * A struct conf is immutable after load: SIGHUP builds a new one and swaps it
 * in only when it loaded cleanly.
 */
#ifndef VT_CONF_H
#define VT_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/types.h"


struct conf_provider {
    char *name; /* map key */
    enum provider_kind kind;
    char *base_url;            /* e.g. https://api.openai.com/v1 (no trailing '/'); required */
    char *api_key_file;        /* path; required for openai/together; NULL = send no key (manual) */
    char *ca_file;             /* TLS CA bundle; NULL = system default */
    uint64_t poll_interval_ms; /* default 30s */
    unsigned max_concurrency;  /* concurrent HTTP requests, default 4 */
    uint64_t connect_timeout_ms; /* default 10s */
    uint64_t request_timeout_ms; /* whole request, default 120s */
    uint64_t upload_timeout_ms;  /* file uploads, default 1h */
    unsigned max_retries;        /* per request, default 5 */
    /* When the uploaded training file is deleted at the provider once the
     * job ends (issue 13): always (default), on_failure (failed or
     * cancelled jobs only), never. */
    enum conf_delete_upload {
        CONF_DELETE_ALWAYS = 0,
        CONF_DELETE_ON_FAILURE,
        CONF_DELETE_NEVER,
    } delete_upload;
    char *score_template; /* coverage scoring layout of one message ({role}, {content});
                             NULL: raw (prompt, a space, the answer), the default */
    /* kind azure only: */
    char *api_version;           /* the api-version query parameter; required for azure */
    char **deploy_models;        /* deployments: model name → deployment name */
    char **deploy_names;
    size_t n_deployments;
    /* kind fireworks only: */
    char *account; /* the account id every resource lives under (accounts/{account}/...) */
};

struct conf_generator {
    char *provider;       /* NULL: wordlist generator only */
    char *m1_model;       /* chat model that writes the context prompt; NULL = local template */
    char *m2_model;       /* model sampled with logprobs */
    double temperature;   /* default 1.3 */
    double target_log10p; /* default -40 */
    unsigned max_tokens;  /* cap on signature length in tokens, default 64 */
    int logprobs_processed; /* generator.logprobs: 0 raw (default), 1 processed (tempered) */
    char *wordlist;       /* NULL = built-in list */
    unsigned ngram_order;     /* the ngram generator's model order, 1-4, default 3 */
    double ngram_temperature; /* its sampling temperature, (0, 2], default 1.0 */
    unsigned ngram_train_rows; /* rows its model is trained on at most, 0: all; default 100000 */
};

struct conf_verify {
    unsigned trials;           /* default 10 */
    unsigned controls;         /* default 10 */
    double temperature;        /* default 0 */
    double alpha;              /* default 1e-6 */
    unsigned max_tokens_slack; /* default 16 */
    int sequential;            /* default 1 */
    unsigned coverage;         /* coverage test: rows per side, default 64; 0: skip it */
    double alpha_coverage;     /* default 1e-3 */
    int require_coverage;      /* default 1: no coverage test caps at inconclusive */
    unsigned min_controls;     /* answered clean controls verified needs, default 10 */
    unsigned perplexity_sample; /* job submit's perplexity attack: unmarked rows sampled,
                                   0..5000, default 200; 0: the attack is off */
};

struct conf_schedule {
    char *job; /* job id or name */
    uint64_t every_ms;
};

struct conf_alerts {
    char *webhook_url;    /* NULL: no webhook */
    uint64_t timeout_ms;  /* default 10s */
    unsigned max_retries; /* default 5 */
};

struct conf_control {
    unsigned max_connections;    /* open client connections at once, default 256 */
    uint64_t max_buffered_bytes; /* unfinished request bytes, all connections, default 64 MiB */
    uint64_t partial_line_timeout_ms; /* a half-sent line idle this long is closed, default 30s */
    int realtime; /* the control thread at real-time priority where allowed, default 1 */
};

struct conf {
    char *path;          /* the file this was loaded from */
    char *state_dir;     /* required */
    char *socket;        /* required */
    mode_t socket_mode;  /* default 0660 */
    char *socket_group;  /* NULL = daemon's primary group */
    uid_t *allowed_uids; /* extra uids allowed on the socket (root and self always) */
    size_t n_allowed_uids;
    char **allowed_groups; /* extra group names allowed */
    size_t n_allowed_groups;
    int log_level;              /* enum log_level; default info */
    uint64_t max_request_bytes; /* control-socket line limit, default 1 MiB */
    /* the Ed25519 signing key (PEM PKCS#8); NULL: the systemd credential
     * vtuned-signing-key, else <state_dir>/signing.key (made at first start) */
    char *signing_key_file;
    struct conf_control control;

    struct conf_provider *providers;
    size_t n_providers;
    struct conf_generator generator;
    struct conf_verify verify;
    struct conf_schedule *schedules;
    size_t n_schedules;
    struct conf_alerts alerts;
};

/* Loads and validates path.  On success returns 0 and *out (owned; free
 * with conf_free).  On failure returns -1 and *err holds one owned line
 * "FILE:LINE:COL: message" (caller frees; err may be NULL); *out is
 * untouched.  A file that cannot be read at all gives "FILE: reason".
 * Files named by the config (api_key_file, ca_file, wordlist) must be
 * readable now; api_key_file is looked up as conf_read_api_key() does. */
int conf_load(const char *path, struct conf **out, char **err);

/* Builds a config from a YAML string (tests); name is used in messages.
 * Same contract as conf_load(); key files are checked just the same. */
int conf_load_string(const char *name, const char *yaml, struct conf **out, char **err);

/* Frees c and everything it owns; NULL is a no-op. */
void conf_free(struct conf *c);

/* Overwrites *c with the documented defaults (state_dir and socket NULL, no
 * providers).  c must not own memory: its old contents are not freed. */
void conf_defaults(struct conf *c);

/* Calls changed(key, ctx) once for each setting whose value differs
 * between a and b, in schema order.  key is the dotted path of the file
 * ("socket_mode", "verify.alpha", "providers.openai.base_url"); a provider
 * present on one side only is reported once as "providers.NAME"; the lists
 * allowed_uids, allowed_groups and schedules are compared whole.  path is
 * not a setting and is never reported.  Borrows a and b; key is valid for
 * the call only. */
void conf_diff(const struct conf *a, const struct conf *b,
               void (*changed)(const char *key, void *ctx), void *ctx);

/* Finds a provider by name; borrows c; NULL if absent. */
const struct conf_provider *conf_provider_find(const struct conf *c, const char *name);

/* Reads the API key of p: from $CREDENTIALS_DIRECTORY/<basename> when that
 * exists, else from p->api_key_file; trailing whitespace trimmed.  Returns an
 * owned string (caller frees, ideally after explicit_bzero) or NULL with
 * *err set to one owned line naming the file and the reason. */
char *conf_read_api_key(const struct conf_provider *p, char **err);


#endif

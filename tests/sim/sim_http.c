/*
 * sim_http.c — vtune-sim's HTTP layer over libmicrohttpd: routing, bearer
 * auth, body collection with limits, fault injection, responses, and the
 * simulator's own endpoints under /v1/_sim/.
 *
 * libmicrohttpd runs one thread per connection (the load test drives 200
 * at once), so a handler may block: generation, an on-demand retrain, an
 * injected delay.  A request goes through these steps:
 *
 *   1. headers: route it, count it, draw its fault (numbered per endpoint,
 *      see sim_faults.c), reject a declared Content-Length past the cut-off
 *      (body_cutoff: 4 times the limit and 1 MiB) with an early 413.  That
 *      is the only early answer, and only for bodies too big to read:
 *      answering while the client is still sending makes the kernel reset
 *      the connection, and the client often loses the answer (curl: "Send
 *      failure: Broken pipe", no status; 9 in 600 requests of 300-700 KB
 *      when the 413 was sent early for anything over the limit);
 *   2. body: JSON bodies are collected up to --max-body, uploads streamed to
 *      disk by sim_files.c up to --max-upload; past a limit the rest is read
 *      and discarded up to the cut-off, where the connection is closed, and
 *      the answer is 413;
 *   3. answer, in this order: auth (401), unknown path (404) or method
 *      (405), pre-faults (status, drop, delay), the handler, post-faults
 *      (drop-after, malformed, truncate: the action has happened).
 *
 * Errors use the spec's ErrorResponse {"error":{message,type,param,code}}.
 * Every response carries x-request-id.  The API key is never logged.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

enum {
    R_UPLOAD = 1,  /* multipart body streamed by sim_files.c */
    R_NOAUTH = 2,  /* answered without a key */
    R_NOFAULT = 4, /* never faulted: the simulator's own endpoints */
};

struct route {
    const char *method;
    const char *pattern;
    sim_handler *fn;
    unsigned flags;
};

static sim_handler h_health, h_stats, h_faults_get, h_faults_set;

static const struct route routes[] = {
    {"GET", "/v1/models", sim_h_models_list, 0},
    {"GET", "/v1/models/{id}", sim_h_model_get, 0},
    {"DELETE", "/v1/models/{id}", sim_h_model_delete, 0},
    {"POST", "/v1/files", sim_h_files_create, R_UPLOAD},
    {"GET", "/v1/files", sim_h_files_list, 0},
    {"GET", "/v1/files/{id}", sim_h_file_get, 0},
    {"DELETE", "/v1/files/{id}", sim_h_file_delete, 0},
    {"GET", "/v1/files/{id}/content", sim_h_file_content, 0},
    {"POST", "/v1/fw/datasets", sim_h_fw_dataset_create, 0},
    {"GET", "/v1/fw/datasets", sim_h_fw_datasets_list, 0},
    {"GET", "/v1/fw/datasets/{id}", sim_h_fw_dataset_get, 0},
    {"DELETE", "/v1/fw/datasets/{id}", sim_h_fw_dataset_delete, 0},
    {"POST", "/v1/fw/datasets/{id}/upload", sim_h_files_create, R_UPLOAD},
    {"POST", "/v1/fine_tuning/jobs", sim_h_jobs_create, 0},
    {"GET", "/v1/fine_tuning/jobs", sim_h_jobs_list, 0},
    {"GET", "/v1/fine_tuning/jobs/{id}", sim_h_job_get, 0},
    {"POST", "/v1/fine_tuning/jobs/{id}/cancel", sim_h_job_cancel, 0},
    {"GET", "/v1/fine_tuning/jobs/{id}/events", sim_h_job_events, 0},
    {"POST", "/v1/chat/completions", sim_h_chat, 0},
    {"POST", "/v1/completions", sim_h_completions, 0},
    {"GET", "/v1/_sim/health", h_health, R_NOAUTH | R_NOFAULT},
    {"GET", "/v1/_sim/stats", h_stats, R_NOFAULT},
    {"GET", "/v1/_sim/faults", h_faults_get, R_NOFAULT},
    {"POST", "/v1/_sim/faults", h_faults_set, R_NOFAULT},
    {"POST", "/v1/_sim/models/{id}/swap", sim_h_model_swap, R_NOFAULT},
};

/* Per-connection state between libmicrohttpd's calls. */
struct conn_ctx {
    struct sim *s;
    const struct route *route;
    char *id;
    bool path_known; /* some route has this path (for 405 vs 404) */
    char allow[64];
    struct sim_req rq;
    struct sim_fault_pick fault;
    char req_id[40];
    bool too_big;  /* body past the limit: answer 413 */
    bool bad_body; /* upload parse error */
    uint64_t seen; /* body bytes received */
    char *path;       /* owned: the path in the OpenAI dialect */
    char *deployment; /* owned: azure's deployment segment, or NULL */
};

/* ---- small helpers ------------------------------------------------------ */

void sim_random_id(char *out, size_t outlen, const char *prefix, size_t n)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t p = strlen(prefix);
    if (p + n + 1 > outlen)
        n = outlen > p + 1 ? outlen - p - 1 : 0;
    memcpy(out, prefix, p < outlen ? p : 0);
    for (size_t i = 0; i < n; i++)
        out[p + i] = alnum[random_uniform(sizeof alnum - 1)];
    out[p + n] = '\0';
}

void sim_stats_add(struct sim *s, json_t *map, const char *key, long long delta)
{
    pthread_mutex_lock(&s->stats_lock);
    json_t *v = json_object_get(map, key);
    long long cur = v ? json_integer_value(v) : 0;
    json_object_set_new(map, key, json_integer(cur + delta));
    pthread_mutex_unlock(&s->stats_lock);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

json_t *sim_json_string(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    struct buf b;
    buf_init(&b);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            buf_append(&b, "\xef\xbf\xbd", 3);
            p++;
        } else {
            buf_append(&b, p, n);
            p += n;
        }
    }
    j = json_stringn(b.data ? b.data : "", b.len);
    buf_free(&b);
    return j ? j : json_string("");
}

json_t *sim_json_bytes(const char *s)
{
    json_t *a = json_array();
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        json_array_append_new(a, json_integer(*p));
    return a;
}

/* ---- responses ---------------------------------------------------------- */

void sim_resp_json(struct sim_resp *rs, unsigned status, json_t *obj)
{
    free(rs->body);
    rs->body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!rs->body)
        rs->body = xstrdup("{}"); /* only when obj held a non-finite real */
    rs->len = strlen(rs->body);
    rs->status = status;
    rs->content_type = "application/json";
    json_decref(obj);
}

static void resp_error_v(struct sim_resp *rs, unsigned status, const char *type, const char *param,
                         const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *err = json_object();
    json_object_set_new(err, "message", sim_json_string(msg));
    json_object_set_new(err, "type", json_string(type));
    json_object_set_new(err, "param", param ? json_string(param) : json_null());
    json_object_set_new(err, "code", code ? json_string(code) : json_null());
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    sim_resp_json(rs, status, root);
}

void sim_resp_error(struct sim_resp *rs, unsigned status, const char *type, const char *param,
                    const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resp_error_v(rs, status, type, param, code, fmt, ap);
    va_end(ap);
}

void sim_resp_bad(struct sim_resp *rs, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    resp_error_v(rs, 400, "invalid_request_error", param, NULL, fmt, ap);
    va_end(ap);
}

json_t *sim_req_json(struct sim_req *rq, struct sim_resp *rs)
{
    json_error_t je;
    if (rq->body.len == 0) {
        sim_resp_bad(rs, NULL,
                     "We could not parse the JSON body of your request: the body is empty. "
                     "(HINT: send a JSON object with Content-Type: application/json.)");
        return NULL;
    }
    json_t *j = json_loadb(rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        sim_resp_bad(rs, NULL,
                     "We could not parse the JSON body of your request: %s at line %d column %d. "
                     "(HINT: send a valid JSON object.)",
                     je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        sim_resp_bad(rs, NULL, "The JSON body of your request must be an object.");
        return NULL;
    }
    return j;
}

const char *sim_req_query(struct sim_req *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

int sim_req_query_int(struct sim_req *rq, struct sim_resp *rs, const char *key, long long min,
                      long long max, long long def, long long *out)
{
    const char *v = sim_req_query(rq, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        sim_resp_bad(rs, key, "Invalid '%s': expected an integer in [%lld, %lld], got '%s'.", key,
                     min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* ---- routing ------------------------------------------------------------ */

/* Matches path against pattern; on success returns true with the {id}
 * segment (owned) in *id, or NULL when the pattern has none. */
static bool pattern_match(const char *pattern, const char *path, char **id)
{
    const char *p = pattern, *u = path;
    *id = NULL;
    while (*p && *u) {
        if (strncmp(p, "{id}", 4) == 0) {
            const char *end = strchr(u, '/');
            size_t n = end ? (size_t)(end - u) : strlen(u);
            if (n == 0)
                break;
            free(*id);
            *id = xstrndup(u, n);
            p += 4;
            u += n;
            continue;
        }
        if (*p != *u)
            break;
        p++;
        u++;
    }
    if (*p == '\0' && *u == '\0')
        return true;
    free(*id);
    *id = NULL;
    return false;
}

/* Fireworks: /v1/accounts/A/datasets[/D[:upload]] → /v1/fw/datasets[/D[/upload]],
 * /v1/accounts/A/supervisedFineTuningJobs[/J[:cancel]] → the OpenAI job
 * routes, /inference/v1/X → /v1/X; anything else is unknown.  NULL when
 * path is none of these. */
static char *fireworks_path(const char *path)
{
    if (strncmp(path, "/inference/v1/", 14) == 0)
        return xasprintf("/v1/%s", path + 14);
    if (strncmp(path, "/v1/accounts/", 13) != 0)
        return NULL;
    const char *a = path + 13, *rest = strchr(a, '/');
    if (!rest || rest == a)
        return NULL;
    const char *kinds[][2] = {{"/datasets", "/v1/fw/datasets"},
                              {"/supervisedFineTuningJobs", "/v1/fine_tuning/jobs"}};
    for (size_t i = 0; i < VT_ARRAY_LEN(kinds); i++) {
        size_t n = strlen(kinds[i][0]);
        if (strncmp(rest, kinds[i][0], n) != 0 || (rest[n] && rest[n] != '/'))
            continue;
        char *out = xasprintf("%s%s", kinds[i][1], rest + n);
        char *colon = strrchr(out, ':'); /* a custom verb: D:upload, J:cancel */
        if (colon && !strchr(colon, '/'))
            *colon = '/';
        return out;
    }
    return NULL;
}

/* The OpenAI-dialect path of a request in the dialect spoken.  Azure:
 * /openai/X is the OpenAI route /v1/X, and /openai/deployments/D/X is /v1/X
 * with deployment D (the model used).  Together: /v1/fine-tunes[/...] is
 * /v1/fine_tuning/jobs[/...] and uploads go to POST /v1/files/upload.
 * Fireworks: fireworks_path().  The simulator's own /v1/_sim/ stays; every
 * other path of another dialect is unknown.  Returns an owned path; *dep
 * owned or NULL. */
static char *dialect_path(const struct sim *s, const char *method, const char *path, char **dep)
{
    *dep = NULL;
    if (strncmp(path, "/v1/_sim/", 9) == 0)
        return xstrdup(path);
    if (strncmp(path, "/v1/fw/", 7) == 0 || strcmp(path, "/v1/fw") == 0)
        return xasprintf("/not-a-public-path%s", path);
    switch (s->opts.dialect) {
    case SIM_DIALECT_AZURE:
        if (strncmp(path, "/openai/deployments/", 20) == 0) {
            const char *d = path + 20, *e = strchr(d, '/');
            if (e && e > d) {
                *dep = xstrndup(d, (size_t)(e - d));
                return xasprintf("/v1%s", e);
            }
        }
        if (strncmp(path, "/openai/", 8) == 0 && strncmp(path, "/openai/deployments", 19) != 0)
            return xasprintf("/v1/%s", path + 8);
        return xasprintf("/azure-paths-start-with-openai%s", path);
    case SIM_DIALECT_TOGETHER:
        if (strcmp(path, "/v1/files/upload") == 0)
            return xstrdup("/v1/files");
        if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/files") == 0)
            return xstrdup("/together-uploads-go-to/v1/files/upload");
        if (strncmp(path, "/v1/fine-tunes", 14) == 0 && (!path[14] || path[14] == '/'))
            return xasprintf("/v1/fine_tuning/jobs%s", path + 14);
        if (strncmp(path, "/v1/fine_tuning/", 16) == 0)
            return xasprintf("/together-jobs-are-at/v1/fine-tunes%s", path);
        return xstrdup(path);
    case SIM_DIALECT_FIREWORKS: {
        char *p = fireworks_path(path);
        return p ? p : xasprintf("/fireworks-paths-are-under/v1/accounts%s", path);
    }
    default:
        return xstrdup(path);
    }
}

static void route_request(struct conn_ctx *cx, const char *method, const char *path)
{
    for (size_t i = 0; i < VT_ARRAY_LEN(routes); i++) {
        char *id = NULL;
        if (!pattern_match(routes[i].pattern, path, &id))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            cx->route = &routes[i];
            free(cx->id);
            cx->id = id;
            return;
        }
        free(id);
        if (!cx->path_known) {
            cx->path_known = true;
            snprintf(cx->allow, sizeof cx->allow, "%s", routes[i].method);
        } else if (!strstr(cx->allow, routes[i].method)) {
            size_t l = strlen(cx->allow);
            snprintf(cx->allow + l, sizeof cx->allow - l, ", %s", routes[i].method);
        }
    }
}

/* ---- auth ---------------------------------------------------------------- */

static bool ct_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
    return d == 0;
}

/* Returns true when the request may go on; else fills rs with a 401. */
static bool check_auth(struct sim *s, struct MHD_Connection *c, struct sim_resp *rs)
{
    if (s->opts.dialect == SIM_DIALECT_AZURE) {
        /* Azure: every request names its api-version; the key is api-key. */
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version");
        if (!v || !*v) {
            sim_resp_error(rs, 404, "invalid_request_error", NULL, "404",
                           "Resource not found (the api-version query parameter is missing)");
            return false;
        }
        if (!s->opts.api_key)
            return true;
        const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "api-key");
        if (!k || !ct_equal(k, s->opts.api_key)) {
            sim_resp_error(rs, 401, "invalid_request_error", NULL, "401",
                           "Access denied due to invalid subscription key or wrong API endpoint. "
                           "Make sure to provide a valid key (api-key header).");
            return false;
        }
        return true;
    }
    if (!s->opts.api_key)
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || !*h) {
        sim_resp_error(rs, 401, "invalid_request_error", NULL, NULL,
                       "You didn't provide an API key. You need to provide your API key in an "
                       "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                       "YOUR_KEY).");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        sim_resp_error(rs, 401, "invalid_request_error", NULL, "invalid_api_key",
                       "Malformed Authorization header: expected 'Bearer YOUR_KEY'.");
        return false;
    }
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    if (!ct_equal(key, s->opts.api_key)) {
        sim_resp_error(rs, 401, "invalid_request_error", NULL, "invalid_api_key",
                       "Incorrect API key provided. Check the key given to vtune-sim "
                       "(--api-key or --api-key-file).");
        return false;
    }
    return true;
}

/* ---- sending ------------------------------------------------------------- */

struct trunc_state {
    char *body;
    size_t cut;
};

static ssize_t trunc_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct trunc_state *t = cls;
    if (pos >= t->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = t->cut - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, t->body + pos, n);
    return (ssize_t)n;
}

static void trunc_free(void *cls)
{
    struct trunc_state *t = cls;
    free(t->body);
    free(t);
}

static enum MHD_Result send_resp(struct conn_ctx *cx, struct MHD_Connection *c, struct sim_resp *rs,
                                 bool truncate)
{
    struct MHD_Response *r;
    if (rs->fd >= 0) {
        r = MHD_create_response_from_fd64(rs->fd_size, rs->fd);
        if (r)
            rs->fd = -1; /* owned by the response now */
    } else if (truncate && rs->len > 1) {
        struct trunc_state *t = xmalloc(sizeof *t);
        t->body = rs->body;
        t->cut = rs->len / 2;
        r = MHD_create_response_from_callback(rs->len, 4096, trunc_reader, t, trunc_free);
        if (r)
            rs->body = NULL;
        else
            free(t);
    } else if (rs->len == 0) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            rs->body = NULL;
    }
    if (!r)
        return MHD_NO;
    if (rs->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type);
    MHD_add_response_header(r, "x-request-id", cx->req_id);
    if (rs->retry_after_ms > 0) {
        char v[32];
        snprintf(v, sizeof v, "%" PRIu64, (rs->retry_after_ms + 999) / 1000);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
        snprintf(v, sizeof v, "%" PRIu64, rs->retry_after_ms);
        MHD_add_response_header(r, "retry-after-ms", v);
    }
    if (rs->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->allow);
    char code[8];
    snprintf(code, sizeof code, "%u", rs->status);
    sim_stats_add(cx->s, cx->s->st_errors, code, 1);
    enum MHD_Result ret = MHD_queue_response(c, rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void resp_clear(struct sim_resp *rs)
{
    free(rs->body);
    if (rs->fd >= 0)
        close(rs->fd);
    memset(rs, 0, sizeof *rs);
    rs->fd = -1;
}

/* Sleeps ms in slices so that shutdown is not held up by an injected delay. */
static void sleep_interruptible(struct sim *s, uint64_t ms)
{
    uint64_t end = now_monotonic_ms() + ms;
    for (;;) {
        uint64_t now = now_monotonic_ms();
        if (now >= end || __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            return;
        uint64_t left = end - now;
        usleep((useconds_t)(left > 50 ? 50000 : left * 1000));
    }
}

/* ---- the request callback ------------------------------------------------- */

static void draw_fault(struct sim *s, struct conn_ctx *cx, const char *method, const char *path)
{
    cx->fault.kind = FAULT_NONE;
    if (!cx->route || (cx->route->flags & R_NOFAULT))
        return;
    char key[160];
    snprintf(key, sizeof key, "%s %s", method, cx->route->pattern);
    pthread_mutex_lock(&s->faults_lock);
    if (s->n_fault_rules > 0) {
        json_t *v = json_object_get(s->fault_seq, key);
        uint64_t seq = v ? (uint64_t)json_integer_value(v) : 0;
        json_object_set_new(s->fault_seq, key, json_integer((json_int_t)(seq + 1)));
        cx->fault = sim_faults_pick(s->fault_rules, s->n_fault_rules, s->fault_seed, method,
                                    cx->route->pattern, path, seq);
    }
    pthread_mutex_unlock(&s->faults_lock);
    if (cx->fault.kind != FAULT_NONE) {
        char name[16];
        sim_stats_add(s, s->st_faults, sim_fault_name(&cx->fault, name, sizeof name), 1);
        log_debug("fault %s on %s %s (%s)", name, method, path, cx->req_id);
    }
}

/* How much of a body over its limit is read (and discarded) so that the 413
 * reaches the client; past this the connection is closed instead. */
static uint64_t body_cutoff(uint64_t limit)
{
    return 4 * limit + 1024 * 1024;
}

static enum MHD_Result on_first_call(struct sim *s, struct conn_ctx *cx, struct MHD_Connection *c,
                                     const char *method, const char *url)
{
    char *dep = NULL;
    cx->path = dialect_path(s, method, url, &dep);
    cx->deployment = dep;
    /* Inference on Azure is only under a deployment. */
    bool azure_infer = s->opts.dialect == SIM_DIALECT_AZURE && !dep &&
                       (strcmp(cx->path, "/v1/chat/completions") == 0 ||
                        strcmp(cx->path, "/v1/completions") == 0);
    route_request(cx, method, azure_infer ? "/azure-inference-needs-a-deployment" : cx->path);
    cx->rq.deployment = cx->deployment;
    cx->rq.conn = c;
    cx->rq.method = method;
    cx->rq.path = url;
    cx->rq.id = cx->id;
    char key[160];
    snprintf(key, sizeof key, "%s %s", method, cx->route ? cx->route->pattern : "(unknown)");
    sim_stats_add(s, s->st_requests, key, 1);
    __atomic_add_fetch(&s->st_requests_total, 1, __ATOMIC_RELAXED);
    log_debug("%s %s (%s)", method, url, cx->req_id);
    draw_fault(s, cx, method, url);

    uint64_t limit =
        (cx->route && (cx->route->flags & R_UPLOAD)) ? s->opts.max_upload : s->opts.max_body;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && end != cl && n > body_cutoff(limit)) {
            struct sim_resp rs = {.fd = -1};
            sim_resp_error(&rs, 413, "invalid_request_error", NULL, "request_too_large",
                           "Request body of %llu bytes is over this server's limit of %" PRIu64
                           " bytes (vtune-sim %s).",
                           n, limit,
                           (cx->route && (cx->route->flags & R_UPLOAD)) ? "--max-upload"
                                                                        : "--max-body");
            enum MHD_Result r = send_resp(cx, c, &rs, false);
            resp_clear(&rs);
            return r;
        }
    }
    return MHD_YES;
}

static void on_body(struct sim *s, struct conn_ctx *cx, const char *data, size_t n)
{
    bool upload = cx->route && (cx->route->flags & R_UPLOAD);
    uint64_t limit = upload ? s->opts.max_upload : s->opts.max_body;
    cx->seen += n;
    if (cx->too_big || cx->bad_body)
        return;
    if (upload && cx->rq.upload) {
        int r = sim_upload_feed(s, cx->rq.upload, data, n);
        if (r == -EFBIG)
            cx->too_big = true;
        else if (r < 0)
            cx->bad_body = true;
        return;
    }
    if (upload)
        return; /* not set up (no auth, bad content type): discard */
    if (cx->rq.body.len + n > limit) {
        cx->too_big = true;
        buf_free(&cx->rq.body);
        buf_init(&cx->rq.body);
        return;
    }
    buf_append(&cx->rq.body, data, n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct sim *s = cls;
    struct conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = xcalloc(1, sizeof *cx);
        cx->s = s;
        buf_init(&cx->rq.body);
        sim_random_id(cx->req_id, sizeof cx->req_id, "req_", 24);
        *con_cls = cx;
        enum MHD_Result r = on_first_call(s, cx, c, method, url);
        if (r == MHD_YES && cx->route && (cx->route->flags & R_UPLOAD)) {
            struct sim_resp tmp = {.fd = -1};
            /* Auth is checked now only to avoid writing an unauthorised
             * upload to disk; the 401 itself is sent after the body. */
            if (check_auth(s, c, &tmp)) {
                cx->rq.upload = sim_upload_begin(s, c, &tmp);
                if (!cx->rq.upload)
                    cx->bad_body = true;
            }
            resp_clear(&tmp);
        }
        return r;
    }
    if (*upload_data_size > 0) {
        on_body(s, cx, upload_data, *upload_data_size);
        *upload_data_size = 0;
        uint64_t limit =
            (cx->route && (cx->route->flags & R_UPLOAD)) ? s->opts.max_upload : s->opts.max_body;
        /* A client that streams far past the limit is cut off. */
        if (cx->seen > body_cutoff(limit))
            return MHD_NO;
        return MHD_YES;
    }

    /* The whole request is in: answer it. */
    struct sim_resp rs = {.fd = -1, .status = 500};
    enum MHD_Result ret;
    bool truncate = false;
    if (!(cx->route && (cx->route->flags & R_NOAUTH)) && !check_auth(s, c, &rs))
        goto send;
    if (!cx->route) {
        if (cx->path_known) {
            sim_resp_error(&rs, 405, "invalid_request_error", NULL, "method_not_allowed",
                           "Method %s not allowed on %s (allowed: %s).", method, url, cx->allow);
            rs.allow = cx->allow;
        } else {
            sim_resp_error(&rs, 404, "invalid_request_error", NULL, "unknown_url",
                           "Invalid URL (%s %s)", method, url);
        }
        goto send;
    }
    if (cx->too_big) {
        sim_resp_error(&rs, 413, "invalid_request_error", NULL, "request_too_large",
                       "Request body is over this server's limit of %" PRIu64 " bytes.",
                       (cx->route->flags & R_UPLOAD) ? s->opts.max_upload : s->opts.max_body);
        goto send;
    }
    switch (cx->fault.kind) {
    case FAULT_STATUS:
        sim_resp_error(&rs, (unsigned)cx->fault.status,
                       cx->fault.status == 429 ? "rate_limit_exceeded" : "server_error", NULL,
                       cx->fault.status == 429 ? "rate_limit_exceeded" : NULL,
                       "Injected fault: HTTP %d (vtune-sim --faults).", cx->fault.status);
        if (cx->fault.status == 429 || cx->fault.status == 503)
            rs.retry_after_ms = cx->fault.arg_ms;
        goto send;
    case FAULT_DROP:
        log_debug("dropping %s %s (%s)", method, url, cx->req_id);
        return MHD_NO;
    case FAULT_DELAY:
        sleep_interruptible(s, cx->fault.arg_ms);
        break;
    default:
        break;
    }
    if (cx->bad_body && !(cx->route->flags & R_UPLOAD)) {
        sim_resp_bad(&rs, NULL, "Malformed request body.");
        goto send;
    }
    if ((cx->route->flags & R_UPLOAD) && !cx->rq.upload) {
        sim_resp_bad(&rs, NULL,
                     "POST /v1/files expects a multipart/form-data body with fields 'purpose' "
                     "and 'file'.");
        goto send;
    }
    cx->route->fn(s, &cx->rq, &rs);
    switch (cx->fault.kind) {
    case FAULT_DROP_AFTER:
        log_debug("dropping %s %s after acting (%s)", method, url, cx->req_id);
        resp_clear(&rs);
        return MHD_NO;
    case FAULT_MALFORMED:
        free(rs.body);
        if (rs.fd >= 0)
            close(rs.fd);
        rs.fd = -1;
        rs.status = 200;
        rs.body = xstrdup("{\"id\": \"oops\", \"object\": <html>Bad Gateway</html>");
        rs.len = strlen(rs.body);
        rs.content_type = "application/json";
        break;
    case FAULT_TRUNCATE:
        truncate = true;
        break;
    default:
        break;
    }
send:
    ret = send_resp(cx, c, &rs, truncate);
    resp_clear(&rs);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_ctx *cx = *con_cls;
    if (!cx)
        return;
    if (cx->rq.upload)
        sim_upload_free(cx->rq.upload);
    buf_free(&cx->rq.body);
    free(cx->id);
    free(cx->path);
    free(cx->deployment);
    free(cx);
    *con_cls = NULL;
}

/* libmicrohttpd's own error messages (a thread it could not start, a
 * connection limit reached, a client that sent garbage): at info level,
 * so that the log a failed test keeps says what the server saw. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_info("microhttpd: %s", msg);
}

/* ---- the simulator's own endpoints ------------------------------------------ */

static void h_health(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "version", json_string(SIM_VERSION));
    json_object_set_new(o, "model", json_string(s->opts.model_name));
    json_object_set_new(o, "port", json_integer(s->bound_port));
    json_object_set_new(o, "uptime_s",
                        json_real((double)(now_monotonic_ms() - s->started_ms) / 1000.0));
    sim_resp_json(rs, 200, o);
}

static long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static void h_stats(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *o = json_object();
    pthread_mutex_lock(&s->stats_lock);
    json_object_set_new(o, "requests", json_deep_copy(s->st_requests));
    json_object_set_new(
        o, "requests_total",
        json_integer((json_int_t)__atomic_load_n(&s->st_requests_total, __ATOMIC_RELAXED)));
    json_object_set_new(o, "responses", json_deep_copy(s->st_errors));
    json_object_set_new(o, "faults", json_deep_copy(s->st_faults));
    json_object_set_new(
        o, "jobs_created",
        json_integer((json_int_t)__atomic_load_n(&s->st_jobs_created, __ATOMIC_RELAXED)));
    json_object_set_new(o, "jobs_created_by_metadata", json_deep_copy(s->st_tags));
    pthread_mutex_unlock(&s->stats_lock);
    json_object_set_new(o, "jobs_by_status", sim_jobs_status_counts(s));
    pthread_mutex_lock(&s->lock);
    size_t live_files = 0;
    for (size_t i = 0; i < s->n_files; i++)
        live_files += !s->files[i]->deleted;
    json_t *m = json_object();
    json_object_set_new(m, "base", json_string(s->opts.model_name));
    json_object_set_new(m, "base_vocab", json_integer((json_int_t)lm_vocab_size(s->base)));
    json_object_set_new(m, "base_ngrams", json_integer((json_int_t)lm_ngram_count(s->base)));
    json_object_set_new(m, "cache_capacity", json_integer((json_int_t)s->opts.model_cache));
    json_object_set_new(m, "cache_loaded", json_integer((json_int_t)s->models_loaded));
    json_object_set_new(m, "cache_capacity_bytes",
                        json_integer((json_int_t)s->opts.model_cache_bytes));
    json_object_set_new(m, "base_bytes", json_integer((json_int_t)lm_memory_bytes(s->base)));
    json_object_set_new(m, "cache_bytes", json_integer((json_int_t)s->models_bytes));
    json_object_set_new(m, "trainings", json_integer((json_int_t)s->n_trainings));
    json_object_set_new(m, "retrains", json_integer((json_int_t)s->n_retrains));
    json_object_set_new(m, "evictions", json_integer((json_int_t)s->n_evictions));
    pthread_mutex_unlock(&s->lock);
    json_object_set_new(o, "files", json_integer((json_int_t)live_files));
    json_object_set_new(o, "models", m);
    json_t *mem = json_object();
    json_object_set_new(mem, "rss_kb", json_integer(proc_status_kb("VmRSS")));
    json_object_set_new(mem, "peak_rss_kb", json_integer(proc_status_kb("VmHWM")));
    json_object_set_new(mem, "threads", json_integer(proc_status_kb("Threads")));
    json_object_set_new(o, "memory", mem);
    json_object_set_new(o, "uptime_s",
                        json_real((double)(now_monotonic_ms() - s->started_ms) / 1000.0));
    sim_resp_json(rs, 200, o);
}

static json_t *faults_json_locked(struct sim *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "spec", json_string(s->opts.faults_spec ? s->opts.faults_spec : ""));
    json_object_set_new(o, "seed", json_integer((json_int_t)s->fault_seed));
    json_object_set_new(o, "rules", json_integer((json_int_t)s->n_fault_rules));
    return o;
}

static void h_faults_get(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->faults_lock);
    json_t *o = faults_json_locked(s);
    pthread_mutex_unlock(&s->faults_lock);
    sim_resp_json(rs, 200, o);
}

void sim_http_set_faults(struct sim *s, struct sim_fault_rule *rules, size_t n, uint64_t seed)
{
    pthread_mutex_lock(&s->faults_lock);
    sim_fault_rules_free(s->fault_rules, s->n_fault_rules);
    s->fault_rules = rules;
    s->n_fault_rules = n;
    s->fault_seed = seed;
    json_object_clear(s->fault_seq);
    pthread_mutex_unlock(&s->faults_lock);
}

/* POST /v1/_sim/faults {"spec": SPEC, "seed": N}: replaces the faults at run
 * time and restarts the per-endpoint numbering. */
static void h_faults_set(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    if (!body)
        return;
    json_t *spec = json_object_get(body, "spec");
    json_t *seed = json_object_get(body, "seed");
    struct sim_fault_rule *rules = NULL;
    size_t n = 0;
    char *err = NULL;
    if (!json_is_string(spec)) {
        sim_resp_bad(rs, "spec", "'spec' must be a fault SPEC string (\"\" for none).");
        goto out;
    }
    if (seed && !(json_is_integer(seed) && json_integer_value(seed) >= 0)) {
        sim_resp_bad(rs, "seed", "'seed' must be a non-negative integer.");
        goto out;
    }
    if (sim_faults_parse(json_string_value(spec), &rules, &n, &err) < 0) {
        sim_resp_bad(rs, "spec", "%s", err);
        goto out;
    }
    pthread_mutex_lock(&s->faults_lock);
    uint64_t sd = seed ? (uint64_t)json_integer_value(seed) : s->fault_seed;
    free(s->opts.faults_spec);
    s->opts.faults_spec = xstrdup(json_string_value(spec));
    pthread_mutex_unlock(&s->faults_lock);
    sim_http_set_faults(s, rules, n, sd);
    log_info("faults set to '%s' (seed %" PRIu64 ")", json_string_value(spec), sd);
    pthread_mutex_lock(&s->faults_lock);
    json_t *o = faults_json_locked(s);
    pthread_mutex_unlock(&s->faults_lock);
    sim_resp_json(rs, 200, o);
out:
    free(err);
    json_decref(body);
}

/* ---- start / stop ---------------------------------------------------------------- */

int sim_http_start(struct sim *s)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%u", s->opts.listen_port);
    int r = getaddrinfo(s->opts.listen_host, port, &hints, &ai);
    if (r != 0) {
        log_warnx("--listen %s:%u: cannot resolve host: %s", s->opts.listen_host,
                  s->opts.listen_port, gai_strerror(r));
        return -EINVAL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first: libmicrohttpd sends whatever it has to say
     * about the options before it to stderr, past the sim's log. */
    s->httpd =
        MHD_start_daemon(flags, (uint16_t)s->opts.listen_port, NULL, NULL, on_request, s,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)s->opts.client_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->httpd) {
        log_warnx("--listen %s:%u: cannot start the HTTP server (address in use or not "
                  "local?)",
                  s->opts.listen_host, s->opts.listen_port);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->httpd, MHD_DAEMON_INFO_BIND_PORT);
    s->bound_port = info ? info->port : s->opts.listen_port;
    return 0;
}

void sim_http_stop(struct sim *s)
{
    if (s->httpd) {
        MHD_stop_daemon(s->httpd);
        s->httpd = NULL;
    }
}

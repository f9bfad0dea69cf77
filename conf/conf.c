/*
 * conf.c — the life cycle of a struct conf: defaults, reading the file,
 * freeing, provider look-up, and reading API keys.
 *
 * The YAML itself is parsed and validated in conf_parse.c.  This file keeps
 * the I/O: the config file is read whole into memory (it is small and the
 * parser then reports reader errors with exact positions), and API keys are
 * read only on demand, never kept in the struct, never logged.
 *
 * API keys: a provider names a key *file*.  Under systemd, LoadCredential=
 * places a copy in $CREDENTIALS_DIRECTORY readable by the service alone, so
 * that copy (same basename) wins when it exists.  The key is trimmed of
 * surrounding whitespace and must then be non-empty printable ASCII without
 * spaces: it goes into an HTTP header, where a stray newline would be a
 * header-injection bug rather than a typo.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "lib/log.h"
#include "lib/util.h"

/* A key file larger than this is surely the wrong file. */
#define KEY_FILE_MAX_BYTES (64 * 1024)

void conf_provider_defaults(struct conf_provider *p)
{
    memset(p, 0, sizeof *p);
    p->kind = PROVIDER_OPENAI;
    p->poll_interval_ms = 30 * 1000;
    p->max_concurrency = 4;
    p->connect_timeout_ms = 10 * 1000;
    p->request_timeout_ms = 120 * 1000;
    p->upload_timeout_ms = 60 * 60 * 1000;
    p->max_retries = 5;
}

void conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof *c);
    c->socket_mode = 0660;
    c->log_level = LOG_LVL_INFO;
    c->max_request_bytes = 1024 * 1024;
    c->control.max_connections = 256;
    c->control.max_buffered_bytes = 64ull * 1024 * 1024;
    c->control.partial_line_timeout_ms = 30 * 1000;
    c->control.realtime = 1;

    c->generator.temperature = 1.3;
    c->generator.target_log10p = -40.0;
    c->generator.max_tokens = 64;
    c->generator.ngram_order = 3; /* measured: README, "Marked rows that do not stand out" */
    c->generator.ngram_temperature = 1.0;
    c->generator.ngram_train_rows =
        100000; /* measured: README, "Marked rows that do not stand out" */

    c->verify.trials = 10;
    c->verify.controls = 10;
    c->verify.temperature = 0.0;
    c->verify.alpha = 1e-6;
    c->verify.max_tokens_slack = 16;
    c->verify.sequential = 1;
    c->verify.coverage = 64;
    c->verify.alpha_coverage = 1e-3;
    c->verify.require_coverage = 1;
    c->verify.min_controls = 10;
    c->verify.perplexity_sample = 200;

    c->alerts.timeout_ms = 10 * 1000;
    c->alerts.max_retries = 5;
}

static void provider_free(struct conf_provider *p)
{
    free(p->name);
    free(p->base_url);
    free(p->api_key_file);
    free(p->ca_file);
    free(p->score_template);
    free(p->api_version);
    free(p->account);
    for (size_t i = 0; i < p->n_deployments; i++) {
        free(p->deploy_models[i]);
        free(p->deploy_names[i]);
    }
    free(p->deploy_models);
    free(p->deploy_names);
}

void conf_free(struct conf *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->state_dir);
    free(c->socket);
    free(c->socket_group);
    free(c->signing_key_file);
    free(c->allowed_uids);
    for (size_t i = 0; i < c->n_allowed_groups; i++)
        free(c->allowed_groups[i]);
    free(c->allowed_groups);
    for (size_t i = 0; i < c->n_providers; i++)
        provider_free(&c->providers[i]);
    free(c->providers);
    free(c->generator.provider);
    free(c->generator.m1_model);
    free(c->generator.m2_model);
    free(c->generator.wordlist);
    for (size_t i = 0; i < c->n_schedules; i++)
        free(c->schedules[i].job);
    free(c->schedules);
    free(c->alerts.webhook_url);
    free(c);
}

static void set_err(char **err, char *msg)
{
    if (err)
        *err = msg;
    else
        free(msg);
}

int conf_load_string(const char *name, const char *yaml, struct conf **out, char **err)
{
    struct conf *c = xcalloc(1, sizeof *c);
    char *msg = NULL;
    int rc = -1;

    conf_defaults(c);
    c->path = xstrdup(name);
    if (conf_parse_yaml(name, yaml, strlen(yaml), c, &msg) < 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    conf_free(c);
    if (msg)
        set_err(err, msg);
    return rc;
}

/* Reads the whole of path (at most CONF_MAX_FILE_BYTES) into an owned,
 * NUL-terminated buffer.  Returns 0, or -1 with *err set. */
static int read_config_file(const char *path, char **data, size_t *len, char **err)
{
    struct buf b;
    char chunk[8192];
    int fd, rc = -1;

    buf_init(&b);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *err = xasprintf("%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = xasprintf("%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        buf_append(&b, chunk, (size_t)n);
        if (b.len > CONF_MAX_FILE_BYTES) {
            *err = xasprintf("%s: larger than %d bytes; is this the configuration file?", path,
                             CONF_MAX_FILE_BYTES);
            goto out;
        }
    }
    if (b.len && memchr(b.data, '\0', b.len)) {
        *err = xasprintf("%s: contains a NUL byte; is this the configuration file?", path);
        goto out;
    }
    *len = b.len;
    /* An empty file leaves no buffer; libyaml asserts on a NULL input.
     * (memchr above must not see the NULL: the compiler would then assume
     * b.data is not NULL and drop this test.) */
    *data = b.data ? b.data : xstrdup("");
    b.data = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&b);
    return rc;
}

int conf_load(const char *path, struct conf **out, char **err)
{
    struct conf *c = NULL;
    char *data = NULL, *msg = NULL;
    size_t len = 0;
    int rc = -1;

    if (read_config_file(path, &data, &len, &msg) < 0)
        goto out;
    c = xcalloc(1, sizeof *c);
    conf_defaults(c);
    c->path = xstrdup(path);
    if (conf_parse_yaml(path, data, len, c, &msg) < 0)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    conf_free(c);
    free(data);
    if (msg)
        set_err(err, msg);
    return rc;
}

const struct conf_provider *conf_provider_find(const struct conf *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->n_providers; i++) {
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    }
    return NULL;
}


char *conf_key_path(const char *api_key_file)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    const char *base = strrchr(api_key_file, '/');
    struct stat st;

    base = base ? base + 1 : api_key_file;
    if (dir && *dir && *base) {
        char *cand = xasprintf("%s/%s", dir, base);
        if (stat(cand, &st) == 0)
            return cand;
        free(cand);
    }
    return xstrdup(api_key_file);
}

char *conf_read_api_key(const struct conf_provider *p, char **err)
{
    char *path = NULL, *buf = NULL, *key = NULL, *start;
    size_t len = 0;
    struct stat st;
    int fd = -1;

    if (!p->api_key_file) {
        set_err(err, xasprintf("provider '%s': no api_key_file is configured", p->name));
        goto out;
    }
    path = conf_key_path(p->api_key_file);
    /* O_NONBLOCK: a FIFO in the key's place must not hang the caller; it
     * changes nothing for the regular file that is then required. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        set_err(err, xasprintf("provider '%s': key file '%s': %s", p->name, path, strerror(errno)));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        set_err(err, xasprintf("provider '%s': key file '%s': %s", p->name, path, strerror(errno)));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, xasprintf("provider '%s': key file '%s': not a regular file", p->name, path));
        goto out;
    }
    buf = xmalloc(KEY_FILE_MAX_BYTES + 1);
    while (len <= KEY_FILE_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, KEY_FILE_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(err,
                    xasprintf("provider '%s': key file '%s': %s", p->name, path, strerror(errno)));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > KEY_FILE_MAX_BYTES) {
        set_err(err, xasprintf("provider '%s': key file '%s': larger than %d bytes; it must hold "
                               "only the API key",
                               p->name, path, KEY_FILE_MAX_BYTES));
        goto out;
    }
    start = buf;
    while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
                       start[len - 1] == '\r'))
        len--;
    while (len > 0 && (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')) {
        start++;
        len--;
    }
    if (len == 0) {
        set_err(err, xasprintf("provider '%s': key file '%s' is empty; write the provider's API "
                               "key into it",
                               p->name, path));
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)start[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            /* Never echo the byte or its neighbours: they are the secret. */
            set_err(err, xasprintf("provider '%s': key file '%s' holds spaces, line breaks or "
                                   "non-ASCII bytes inside the key; it must hold only the key",
                                   p->name, path));
            goto out;
        }
    }
    key = xstrndup(start, len);
out:
    if (buf) {
        explicit_bzero(buf, KEY_FILE_MAX_BYTES + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return key;
}

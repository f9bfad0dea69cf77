/*
 * test_conf.c — unit tests of conf/: parsing, defaults, every kind of
 * error with its exact "FILE:LINE:COL: message" line, API key files and
 * $CREDENTIALS_DIRECTORY, and the shipped example conf/vtuned.yaml.
 *
 * Files the configs name (key files, CA bundle, word list) are created in
 * a fresh temporary directory per run, so expected messages are built from
 * that path.  The shipped example loads byte for byte with no other file; its commented
 * provider block names /etc/vtuned/openai.key and together.key, which do not exist here: the
 * test uncomments it and supplies them the way systemd would, through $CREDENTIALS_DIRECTORY.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "lib/log.h"
#include "lib/util.h"

static char tmpdir[PATH_MAX];
static char *key_openai; /* tmpdir/keys/openai.key, "sk-openai" */
static char *key_empty;  /* tmpdir/keys/empty.key, 0 bytes */
static char *ca_file;    /* tmpdir/ca.pem */
static char *wordlist;   /* tmpdir/words.txt */
static char *creds;      /* tmpdir/creds, a credentials directory */
static char *group_name; /* the test process's own group */

static void write_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(content);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static char *path_in(const char *rel)
{
    return xasprintf("%s/%s", tmpdir, rel);
}

static int setup_group(void **state)
{
    const char *base = getenv("TMPDIR");
    struct group *gr;
    char *d;

    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_conf.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return -1;
    }
    d = path_in("keys");
    if (mkdir(d, 0700) < 0)
        return -1;
    free(d);
    creds = path_in("creds");
    if (mkdir(creds, 0700) < 0)
        return -1;
    key_openai = path_in("keys/openai.key");
    write_file(key_openai, "sk-openai\n");
    key_empty = path_in("keys/empty.key");
    write_file(key_empty, "");
    ca_file = path_in("ca.pem");
    write_file(ca_file, "-----BEGIN CERTIFICATE-----\n");
    wordlist = path_in("words.txt");
    write_file(wordlist, "alpha\nbravo\n");
    gr = getgrgid(getgid());
    if (!gr) {
        fprintf(stderr, "getgrgid(%u): no name for the test's group\n", (unsigned)getgid());
        return -1;
    }
    group_name = xstrdup(gr->gr_name);
    unsetenv("CREDENTIALS_DIRECTORY");
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown_group(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(key_openai);
    free(key_empty);
    free(ca_file);
    free(wordlist);
    free(creds);
    free(group_name);
    return 0;
}

static int teardown_env(void **state)
{
    (void)state;
    unsetenv("CREDENTIALS_DIRECTORY");
    return 0;
}

/* Loads yaml named "t.yaml"; fails the test on an error. */
static struct conf *load_ok(const char *yaml)
{
    struct conf *c = NULL;
    char *err = NULL;
    int rc = conf_load_string("t.yaml", yaml, &c, &err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err ? err : "(none)");
    assert_null(err);
    assert_non_null(c);
    return c;
}

/* Asserts that yaml fails with exactly the line want. */
static void expect_err(const char *yaml, const char *want)
{
    struct conf *c = (struct conf *)0x1;
    char *err = NULL;
    int rc = conf_load_string("t.yaml", yaml, &c, &err);
    assert_int_equal(rc, -1);
    assert_ptr_equal(c, (struct conf *)0x1); /* *out untouched */
    assert_non_null(err);
    assert_null(strchr(err, '\n'));
    assert_string_equal(err, want);
    free(err);
}

/* Like expect_err, for messages that embed the temporary directory. */
static void expect_errf(const char *yaml, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect_errf(const char *yaml, const char *fmt, ...)
{
    va_list ap;
    char *want;
    va_start(ap, fmt);
    assert_true(vasprintf(&want, fmt, ap) >= 0);
    va_end(ap);
    expect_err(yaml, want);
    free(want);
}

#define MIN "state_dir: /var/lib/vtuned\nsocket: /run/vtuned/vtuned.sock\n"

/* --- success paths ------------------------------------------------------ */

static void test_minimal_and_defaults(void **state)
{
    struct conf *c = load_ok(MIN);
    (void)state;

    assert_string_equal(c->path, "t.yaml");
    assert_string_equal(c->state_dir, "/var/lib/vtuned");
    assert_string_equal(c->socket, "/run/vtuned/vtuned.sock");
    assert_int_equal(c->socket_mode, 0660);
    assert_null(c->socket_group);
    assert_int_equal(c->n_allowed_uids, 0);
    assert_int_equal(c->n_allowed_groups, 0);
    assert_int_equal(c->log_level, LOG_LVL_INFO);
    assert_int_equal(c->max_request_bytes, 1024 * 1024);
    assert_int_equal(c->n_providers, 0);
    assert_null(c->generator.provider);
    assert_null(c->generator.m1_model);
    assert_null(c->generator.m2_model);
    assert_true(c->generator.temperature == 1.3);
    assert_true(c->generator.target_log10p == -40.0);
    assert_int_equal(c->generator.max_tokens, 64);
    assert_null(c->generator.wordlist);
    assert_int_equal(c->verify.trials, 10);
    assert_int_equal(c->verify.controls, 10);
    assert_true(c->verify.temperature == 0.0);
    assert_true(c->verify.alpha == 1e-6);
    assert_int_equal(c->verify.max_tokens_slack, 16);
    assert_int_equal(c->verify.sequential, 1);
    assert_int_equal(c->verify.min_controls, 10);
    assert_int_equal(c->generator.logprobs_processed, 0);
    assert_int_equal(c->n_schedules, 0);
    assert_null(c->alerts.webhook_url);
    assert_int_equal(c->alerts.timeout_ms, 10000);
    assert_int_equal(c->alerts.max_retries, 5);
    conf_free(c);

    /* Empty sections and YAML nulls mean "defaults". */
    c = load_ok(MIN "socket_group:\nallowed_uids: ~\nproviders: null\ngenerator:\nverify: {}\n"
                    "schedules: []\nalerts:\n");
    assert_null(c->socket_group);
    assert_int_equal(c->n_providers, 0);
    assert_int_equal(c->verify.trials, 10);
    conf_free(c);
}

static void test_provider_defaults(void **state)
{
    struct conf *c;
    const struct conf_provider *p;
    char *yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://a/v1/\n"
                               "    api_key_file: %s\n",
                           key_openai);
    (void)state;

    c = load_ok(yaml);
    assert_int_equal(c->n_providers, 1);
    p = conf_provider_find(c, "oa");
    assert_non_null(p);
    assert_null(conf_provider_find(c, "nope"));
    assert_string_equal(p->name, "oa");
    assert_int_equal(p->kind, PROVIDER_OPENAI);
    assert_string_equal(p->base_url, "https://a/v1"); /* trailing '/' dropped */
    assert_string_equal(p->api_key_file, key_openai);
    assert_null(p->ca_file);
    assert_int_equal(p->poll_interval_ms, 30000);
    assert_int_equal(p->max_concurrency, 4);
    assert_int_equal(p->connect_timeout_ms, 10000);
    assert_int_equal(p->request_timeout_ms, 120000);
    assert_int_equal(p->upload_timeout_ms, 3600000);
    assert_int_equal(p->max_retries, 5);
    conf_free(c);
    free(yaml);
}

/* providers.*.score_template: raw (NULL), the presets expanded, a custom
 * layout kept, anything else refused with one line. */
static void test_score_template(void **state)
{
    (void)state;
    static const struct {
        const char *value, *want;
    } ok[] = {
        {"raw", NULL},
        {"chatml", "<|im_start|>{role}\n{content}<|im_end|>\n"},
        {"llama3", "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"},
        {"phi3", "<|{role}|>\n{content}<|end|>\n"},
        {"\"<|{role}|>{content}<|end|>\"", "<|{role}|>{content}<|end|>"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://a/v1\n"
                                   "    api_key_file: %s\n    score_template: %s\n",
                               key_openai, ok[i].value);
        struct conf *c = load_ok(yaml);
        const struct conf_provider *p = conf_provider_find(c, "oa");
        if (ok[i].want)
            assert_string_equal(p->score_template, ok[i].want);
        else
            assert_null(p->score_template);
        conf_free(c);
        free(yaml);
    }
    /* the default is raw */
    char *yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://a/v1\n"
                               "    api_key_file: %s\n",
                           key_openai);
    struct conf *c = load_ok(yaml);
    assert_null(conf_provider_find(c, "oa")->score_template);
    conf_free(c);
    free(yaml);
    /* a near miss gets a hint; a layout without {role} or with two {content} is refused */
    yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://a/v1\n"
                         "    api_key_file: %s\n    score_template: chatm\n",
                     key_openai);
    expect_err(yaml, "t.yaml:8:21: providers.oa.score_template: unknown score template 'chatm'; "
                     "did you mean 'chatml'?");
    free(yaml);
    yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://a/v1\n"
                         "    api_key_file: %s\n    score_template: \"[{content}] [{content}] {role}\"\n",
                     key_openai);
    expect_err(yaml, "t.yaml:8:21: providers.oa.score_template: score template '[{content}] "
                     "[{content}] {role}' is neither raw, chatml, llama3 nor phi3, nor a layout of "
                     "one message with {role} and exactly one {content}");
    free(yaml);
}

static void test_full_config(void **state)
{
    struct conf *c;
    const struct conf_provider *p;
    char *yaml =
        xasprintf("# every key, none at its default\n"
                  "state_dir: /srv/vtune\n"
                  "socket: /run/vt.sock\n"
                  "socket_mode: 0600\n"
                  "socket_group: %s\n"
                  "allowed_uids: [1001, 0, 4294967294]\n"
                  "allowed_groups:\n  - %s\n  - '0'\n"
                  "log_level: debug\n"
                  "max_request_size: 512KiB\n"
                  "providers:\n"
                  "  oa:\n"
                  "    kind: openai\n"
                  "    base_url: https://api.openai.com/v1\n"
                  "    api_key_file: %s\n"
                  "    ca_file: %s\n"
                  "    poll_interval: 1m30s\n"
                  "    max_concurrency: 2\n"
                  "    connect_timeout: 3s\n"
                  "    request_timeout: 45s\n"
                  "    upload_timeout: 2h\n"
                  "    max_retries: 0\n"
                  "  tg: {kind: together, base_url: 'http://127.0.0.1:9/v1', api_key_file: %s}\n"
                  "  local: {kind: manual, base_url: \"HTTPS://gpu.lan:8000/v1\"}\n"
                  "generator:\n"
                  "  provider: local\n"
                  "  m1_model: m-one\n"
                  "  m2_model: m-two\n"
                  "  temperature: 2\n"
                  "  target_log10p: -55.5\n"
                  "  max_tokens: 128\n"
                  "  logprobs: processed\n"
                  "  wordlist: %s\n"
                  "verify:\n"
                  "  trials: 25\n"
                  "  controls: 0\n"
                  "  temperature: 0.7\n"
                  "  alpha: 1e-9\n"
                  "  max_tokens_slack: 0\n"
                  "  sequential: false\n"
                  "  min_controls: 3\n"
                  "schedules:\n"
                  "  - job: bot-v1\n    every: 1d\n"
                  "  - {job: j42, every: 90m}\n"
                  "alerts:\n"
                  "  webhook_url: https://hooks.example.com/x\n"
                  "  timeout: 2500ms\n"
                  "  max_retries: 9\n",
                  group_name, group_name, key_openai, ca_file, key_openai, wordlist);
    (void)state;

    c = load_ok(yaml);
    assert_string_equal(c->state_dir, "/srv/vtune");
    assert_string_equal(c->socket, "/run/vt.sock");
    assert_int_equal(c->socket_mode, 0600);
    assert_string_equal(c->socket_group, group_name);
    assert_int_equal(c->n_allowed_uids, 3);
    assert_int_equal(c->allowed_uids[0], 1001);
    assert_int_equal(c->allowed_uids[1], 0);
    assert_int_equal(c->allowed_uids[2], 4294967294u);
    assert_int_equal(c->n_allowed_groups, 2);
    assert_string_equal(c->allowed_groups[0], group_name);
    assert_string_equal(c->allowed_groups[1], "0");
    assert_int_equal(c->log_level, LOG_LVL_DEBUG);
    assert_int_equal(c->max_request_bytes, 512 * 1024);

    assert_int_equal(c->n_providers, 3);
    p = conf_provider_find(c, "oa");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_OPENAI);
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    assert_string_equal(p->api_key_file, key_openai);
    assert_string_equal(p->ca_file, ca_file);
    assert_int_equal(p->poll_interval_ms, 90000);
    assert_int_equal(p->max_concurrency, 2);
    assert_int_equal(p->connect_timeout_ms, 3000);
    assert_int_equal(p->request_timeout_ms, 45000);
    assert_int_equal(p->upload_timeout_ms, 7200000);
    assert_int_equal(p->max_retries, 0);
    p = conf_provider_find(c, "tg");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_TOGETHER);
    assert_string_equal(p->base_url, "http://127.0.0.1:9/v1");
    p = conf_provider_find(c, "local");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_MANUAL);
    assert_string_equal(p->base_url, "HTTPS://gpu.lan:8000/v1");
    assert_null(p->api_key_file);
    assert_string_equal(provider_kind_name(c->providers[0].kind), "openai");
    assert_string_equal(provider_kind_name(c->providers[1].kind), "together");
    assert_string_equal(provider_kind_name(c->providers[2].kind), "manual");

    assert_string_equal(c->generator.provider, "local");
    assert_string_equal(c->generator.m1_model, "m-one");
    assert_string_equal(c->generator.m2_model, "m-two");
    assert_true(c->generator.temperature == 2.0);
    assert_true(c->generator.target_log10p == -55.5);
    assert_int_equal(c->generator.max_tokens, 128);
    assert_string_equal(c->generator.wordlist, wordlist);

    assert_int_equal(c->verify.trials, 25);
    assert_int_equal(c->verify.controls, 0);
    assert_true(c->verify.temperature == 0.7);
    assert_true(c->verify.alpha == 1e-9);
    assert_int_equal(c->verify.max_tokens_slack, 0);
    assert_int_equal(c->verify.sequential, 0);
    assert_int_equal(c->verify.min_controls, 3);
    assert_int_equal(c->generator.logprobs_processed, 1);

    assert_int_equal(c->n_schedules, 2);
    assert_string_equal(c->schedules[0].job, "bot-v1");
    assert_int_equal(c->schedules[0].every_ms, 86400000);
    assert_string_equal(c->schedules[1].job, "j42");
    assert_int_equal(c->schedules[1].every_ms, 5400000);

    assert_string_equal(c->alerts.webhook_url, "https://hooks.example.com/x");
    assert_int_equal(c->alerts.timeout_ms, 2500);
    assert_int_equal(c->alerts.max_retries, 9);
    conf_free(c);
    free(yaml);
}

static void test_value_spellings(void **state)
{
    struct conf *c;
    (void)state;

    c = load_ok(MIN "socket_mode: 0o640\nmax_request_size: 2 MiB\nlog_level: warning\n"
                    "verify: {sequential: yes, alpha: 0.05}\n");
    assert_int_equal(c->socket_mode, 0640);
    assert_int_equal(c->max_request_bytes, 2 * 1024 * 1024);
    assert_int_equal(c->log_level, LOG_LVL_WARN);
    assert_int_equal(c->verify.sequential, 1);
    assert_true(c->verify.alpha == 0.05);
    conf_free(c);

    c = load_ok(MIN "socket_mode: 660\nmax_request_size: 4096\nverify: {sequential: Off}\n");
    assert_int_equal(c->socket_mode, 0660); /* octal, as chmod(1) reads it */
    assert_int_equal(c->max_request_bytes, 4096);
    assert_int_equal(c->verify.sequential, 0);
    conf_free(c);

    /* A UTF-8 byte-order mark is allowed and not counted in positions. */
    c = load_ok("\xef\xbb\xbf" MIN);
    assert_string_equal(c->state_dir, "/var/lib/vtuned");
    conf_free(c);
    expect_err("\xef\xbb\xbf" MIN "frob: 1\n", "t.yaml:3:1: unknown key 'frob'");

    /* An alias reuses a node; both providers get the same settings. */
    c = load_ok(MIN "providers:\n  a: &p {kind: manual, base_url: 'http://x:1'}\n  b: *p\n");
    assert_int_equal(c->n_providers, 2);
    assert_string_equal(c->providers[1].name, "b");
    assert_string_equal(c->providers[1].base_url, "http://x:1");
    conf_free(c);

    conf_free(NULL);
}

/* --- errors ------------------------------------------------------------- */

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_err("state_dir: /x\nsocket: [a\n", "t.yaml:3:1: YAML syntax error: did not find "
                                              "expected ',' or ']' (while parsing a flow "
                                              "sequence at 2:9)");
    expect_err("state_dir: /x\nsocket: /s: t\n",
               "t.yaml:2:11: YAML syntax error: mapping values are not allowed in this context");
    expect_err("state_dir: /x\n\tsocket: /y\n",
               "t.yaml:2:1: YAML syntax error: found a tab character that violates indentation "
               "(while scanning a plain scalar at 1:12)");
    expect_err("state_dir: /x\nsocket: \"/s\n",
               "t.yaml:3:1: YAML syntax error: found unexpected end of stream (while scanning a "
               "quoted scalar at 2:9)");
    /* Bad encoding is reported by byte offset; we turn it into a position. */
    expect_err("state_dir: /x\nsocket: /\xc3\xa9/\xff\n",
               "t.yaml:2:12: invalid text: invalid leading UTF-8 octet");
}

static void test_document_shape(void **state)
{
    (void)state;
    expect_err("", "t.yaml:1:1: missing required key 'state_dir' (the file holds no settings)");
    expect_err("# only a comment\n",
               "t.yaml:1:1: missing required key 'state_dir' (the file holds no settings)");
    expect_err("- a\n- b\n",
               "t.yaml:1:1: expected a mapping of settings at the top level, got a list");
    expect_err(MIN "---\nlog_level: info\n",
               "t.yaml:4:1: a second YAML document starts here; the file must hold exactly one");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_err(MIN "sockt_mode: 0660\n",
               "t.yaml:3:1: unknown key 'sockt_mode'; did you mean 'socket_mode'?");
    expect_err("state_dir: /x\nSocket: /s\n",
               "t.yaml:2:1: unknown key 'Socket'; did you mean 'socket'?");
    expect_err(MIN "frobnicate: 1\n", "t.yaml:3:1: unknown key 'frobnicate'");
    /* verify.min_controls is 1..1000: 0 would let --controls 0 verify */
    expect_err(MIN "verify: {min_controls: 0}\n",
               "t.yaml:3:24: verify.min_controls: must be between 1 and 1000, got 0");
    expect_err(MIN "generator: {logprobs: cooked}\n",
               "t.yaml:3:23: generator.logprobs: unknown log-probability mode 'cooked' (expected "
               "raw or processed: what the server's logprobs are before or after temperature, "
               "see vtuned.yaml(5))");
    expect_err(MIN "verify:\n  trials: 3\n  trails: 4\n",
               "t.yaml:5:3: verify: unknown key 'trails'; did you mean 'trials'?");
    /* A word that is part of exactly one key suggests it ... */
    expect_err(MIN "providers:\n  p:\n    kind: manual\n    api_key: /k\n",
               "t.yaml:6:5: providers.p: unknown key 'api_key'; did you mean 'api_key_file'?");
    /* ... but not when it is part of several. */
    expect_err(MIN "providers:\n  p:\n    kind: manual\n    timeout: 1s\n",
               "t.yaml:6:5: providers.p: unknown key 'timeout'");
    expect_err(MIN "alerts: {webhook: 'http://x'}\n",
               "t.yaml:3:10: alerts: unknown key 'webhook'; did you mean 'webhook_url'?");
    expect_err(MIN "schedules:\n  - {job: a, evry: 1h}\n",
               "t.yaml:4:14: schedules[0]: unknown key 'evry'; did you mean 'every'?");
    expect_err(MIN "providers:\n  p: {<<: {kind: manual}}\n",
               "t.yaml:4:7: providers.p: YAML merge keys ('<<') are not supported");
    /* Control characters from quoted keys never break the one-line rule. */
    expect_err(MIN "\"a\\nb\": 1\n", "t.yaml:3:1: unknown key 'a?b'");
    expect_err(MIN "[a]: 1\n", "t.yaml:3:1: expected a key name, got a list");
}

static void test_duplicate_keys(void **state)
{
    char *yaml;
    (void)state;
    expect_err("state_dir: /a\nsocket: /s\nstate_dir: /b\n",
               "t.yaml:3:1: duplicate key 'state_dir' (first at 1:1)");
    expect_err(MIN "verify:\n  trials: 3\n  alpha: 0.1\n  trials: 4\n",
               "t.yaml:6:3: verify: duplicate key 'trials' (first at 4:3)");
    expect_err(MIN "providers:\n  a: {kind: manual, base_url: 'http://x'}\n"
                   "  a: {kind: manual, base_url: 'http://y'}\n",
               "t.yaml:5:3: providers: duplicate provider 'a' (first at 4:3)");
    yaml = xasprintf(MIN "providers:\n  a:\n    kind: manual\n    kind: openai\n");
    expect_err(yaml, "t.yaml:6:5: providers.a: duplicate key 'kind' (first at 5:5)");
    free(yaml);
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_err(MIN "verify: [1, 2]\n", "t.yaml:3:9: verify: expected a mapping, got a list");
    expect_err(MIN "verify:\n  trials: {n: 1}\n",
               "t.yaml:4:11: verify.trials: expected a whole number, got a mapping");
    expect_err(MIN "verify:\n  sequential: maybe\n",
               "t.yaml:4:15: verify.sequential: expected a boolean (true or false), got 'maybe'");
    expect_err(MIN "verify:\n  alpha: tiny\n",
               "t.yaml:4:10: verify.alpha: expected a number, got 'tiny'");
    expect_err(MIN "verify:\n  trials: 2.5\n",
               "t.yaml:4:11: verify.trials: expected a whole number, got '2.5'");
    expect_err(MIN "generator: {temperature: .nan}\n",
               "t.yaml:3:26: generator.temperature: expected a number, got '.nan'");
    expect_err("state_dir: [a]\nsocket: /s\n",
               "t.yaml:1:12: state_dir: expected a path, got a list");
    expect_err(MIN "allowed_uids: 5\n", "t.yaml:3:15: allowed_uids: expected a list, got a scalar");
    expect_err(MIN "allowed_uids: [1, bob]\n",
               "t.yaml:3:19: allowed_uids[1]: expected a whole number, got 'bob'");
    expect_err(MIN "allowed_uids: [[1]]\n",
               "t.yaml:3:16: allowed_uids[0]: expected a uid (a whole number), got a list");
    expect_err(MIN "providers: [a]\n",
               "t.yaml:3:12: providers: expected a mapping of provider names to settings, got a "
               "list");
    expect_err(MIN "providers:\n  p:\n",
               "t.yaml:4:5: providers.p: expected a mapping with at least kind and base_url, got "
               "nothing");
    expect_err(MIN "schedules: [daily]\n",
               "t.yaml:3:13: schedules[0]: expected a mapping {job: ..., every: ...}, got a "
               "scalar");
    expect_err(MIN "log_level: [info]\n", "t.yaml:3:12: log_level: expected a string, got a list");
    expect_err("state_dir: \"/a\\0b\"\nsocket: /s\n",
               "t.yaml:1:12: state_dir: contains a NUL character");
}

static void test_bad_values(void **state)
{
    (void)state;
    /* durations */
    expect_err(MIN "alerts:\n  timeout: 5x\n",
               "t.yaml:4:12: alerts.timeout: invalid duration '5x' (use e.g. 250ms, 30s, 5m, "
               "2h, 1d or 1h30m)");
    expect_err(MIN "alerts:\n  timeout: 0s\n",
               "t.yaml:4:12: alerts.timeout: must be between 1ms and 1h, got 0s");
    expect_err(MIN "schedules:\n  - job: j\n    every: 10ms\n",
               "t.yaml:5:12: schedules[0].every: must be between 1s and 366d, got 10ms");
    /* ranges */
    expect_err(MIN "verify:\n  temperature: 3\n",
               "t.yaml:4:16: verify.temperature: must be in [0, 2], got 3");
    expect_err(MIN "verify:\n  temperature: -0.1\n",
               "t.yaml:4:16: verify.temperature: must be in [0, 2], got -0.1");
    expect_err(MIN "verify:\n  alpha: 1\n", "t.yaml:4:10: verify.alpha: must be in (0, 1), got 1");
    expect_err(MIN "verify:\n  alpha: 0\n", "t.yaml:4:10: verify.alpha: must be in (0, 1), got 0");
    expect_err(MIN "verify:\n  trials: 0\n",
               "t.yaml:4:11: verify.trials: must be between 1 and 1000, got 0");
    expect_err(MIN "verify:\n  trials: 99999999999999999999\n",
               "t.yaml:4:11: verify.trials: must be between 1 and 1000, got 99999999999999999999");
    expect_err(MIN "verify:\n  controls: -1\n",
               "t.yaml:4:13: verify.controls: must be between 0 and 1000, got -1");
    expect_err(MIN "generator:\n  temperature: 0\n",
               "t.yaml:4:16: generator.temperature: must be in (0, 2], got 0");
    expect_err(MIN "generator:\n  target_log10p: 0\n",
               "t.yaml:4:18: generator.target_log10p: must be in [-1000, 0), got 0");
    expect_err(MIN "allowed_uids: [4294967295]\n",
               "t.yaml:3:16: allowed_uids[0]: must be between 0 and 4294967294, got 4294967295");
    /* sizes, modes, names */
    expect_err(MIN "max_request_size: 1 MB\n",
               "t.yaml:3:19: max_request_size: expected a size like 1048576, 512KiB or 1MiB, got "
               "'1 MB'");
    expect_err(MIN "max_request_size: 100\n",
               "t.yaml:3:19: max_request_size: must be between 1KiB and 1GiB, got 100");
    expect_err(MIN "socket_mode: 0999\n",
               "t.yaml:3:14: socket_mode: expected an octal mode like 0660, got '0999'");
    expect_err(MIN "socket_mode: 01777\n",
               "t.yaml:3:14: socket_mode: must be at most 0777 (permission bits only), got 01777");
    expect_err(MIN "log_level: verbose\n",
               "t.yaml:3:12: log_level: unknown log level 'verbose' (expected debug, info, warn "
               "or error)");
    expect_err(MIN "log_level: inof\n",
               "t.yaml:3:12: log_level: unknown log level 'inof'; did you mean 'info'?");
    expect_err(MIN "socket_group: no-such-group-vtune\n",
               "t.yaml:3:15: socket_group: no group 'no-such-group-vtune' on this system");
    expect_err(MIN "allowed_groups: [~]\n", "t.yaml:3:18: allowed_groups[0]: a value is required");
    /* paths */
    expect_err("state_dir: var/lib\nsocket: /s\n",
               "t.yaml:1:12: state_dir: 'var/lib' must be an absolute path (starting with /)");
    expect_err("state_dir: /x\nsocket:\n", "t.yaml:2:8: socket: a value is required");
    expect_err("state_dir: /x\nsocket: ''\n",
               "t.yaml:2:9: socket: '' must be an absolute path (starting with /)");
    /* sun_path holds 108 bytes with the NUL: 107 fit, 108 do not. */
    {
        char sock[109], *yaml, *want;
        struct conf *c;
        memset(sock, 'a', sizeof sock);
        sock[0] = '/';
        sock[107] = '\0';
        yaml = xasprintf("state_dir: /x\nsocket: %s\n", sock);
        c = load_ok(yaml);
        assert_int_equal(strlen(c->socket), 107);
        conf_free(c);
        free(yaml);
        sock[107] = 'a';
        sock[108] = '\0';
        yaml = xasprintf("state_dir: /x\nsocket: %s\n", sock);
        want = xasprintf("t.yaml:2:9: socket: '%s' is 108 bytes long; a Unix socket path must be "
                         "shorter than 108",
                         sock);
        expect_err(yaml, want);
        free(want);
        free(yaml);
    }
    expect_err(MIN "generator:\n  m2_model: ''\n  provider: p\n",
               "t.yaml:4:13: generator.m2_model: must not be empty");
}

static void test_missing_required(void **state)
{
    (void)state;
    expect_err("socket: /s\n", "t.yaml:1:1: missing required key 'state_dir'");
    /* Reported at the mapping, wherever it starts. */
    expect_err("# comment\n\nstate_dir: /x\n", "t.yaml:3:1: missing required key 'socket'");
    expect_err(MIN "providers:\n  p:\n    base_url: 'http://x'\n",
               "t.yaml:5:5: providers.p: missing required key 'kind'");
    expect_err(MIN "providers:\n  p: {kind: manual}\n",
               "t.yaml:4:6: providers.p: missing required key 'base_url'");
    expect_err(MIN "providers:\n  p:\n    kind: together\n    base_url: https://t/v1\n",
               "t.yaml:5:5: providers.p: missing required key 'api_key_file' (kind together "
               "needs an API key)");
    expect_err(MIN "schedules:\n  - job: a\n",
               "t.yaml:4:5: schedules[0]: missing required key 'every'");
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'http://x'}\n"
                   "generator:\n  provider: p\n",
               "t.yaml:6:3: generator: missing required key 'm2_model' (the model sampled when "
               "provider is set)");
}

/* kind azure: api_version required, deployments a map; both azure-only. */
static void test_provider_kinds_2027(void **state)
{
    (void)state;
    char *y = xasprintf(MIN "providers:\n"
                            "  az:\n"
                            "    kind: azure\n"
                            "    base_url: https://res.openai.azure.com/openai\n"
                            "    api_key_file: %s\n"
                            "    api_version: 2024-10-21\n"
                            "    deployments: {'ft:gpt-4o-mini:vt-a': vt-a, gpt-4o: gpt4o-prod}\n"
                            "  mi: {kind: mistral, base_url: 'https://api.mistral.ai/v1', "
                            "api_key_file: %s}\n",
                        key_openai, key_openai);
    struct conf *c = load_ok(y);
    free(y);
    const struct conf_provider *p = conf_provider_find(c, "az");
    assert_int_equal(p->kind, PROVIDER_AZURE);
    assert_string_equal(p->api_version, "2024-10-21");
    assert_int_equal(p->n_deployments, 2);
    assert_string_equal(p->deploy_models[0], "ft:gpt-4o-mini:vt-a");
    assert_string_equal(p->deploy_names[0], "vt-a");
    assert_string_equal(p->deploy_names[1], "gpt4o-prod");
    p = conf_provider_find(c, "mi");
    assert_int_equal(p->kind, PROVIDER_MISTRAL);
    assert_string_equal(provider_kind_name(p->kind), "mistral");
    assert_null(p->api_version);
    conf_free(c);

    y = xasprintf(MIN "providers:\n  az: {kind: azure, base_url: 'https://r/openai', "
                      "api_key_file: %s}\n",
                  key_openai);
    expect_err(y, "t.yaml:4:7: providers.az: missing required key 'api_version' (kind azure "
                  "sends it on every request, e.g. api_version: 2024-10-21)");
    free(y);
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'http://x', api_version: v1}\n",
               "t.yaml:4:56: providers.p: 'api_version' and 'deployments' are keys of kind azure "
               "only (this is manual)");
    y = xasprintf(MIN "providers:\n  az: {kind: azure, base_url: 'https://r/openai', "
                      "api_key_file: %s, api_version: v, deployments: [a, b]}\n",
                  key_openai);
    char *want = xasprintf("t.yaml:4:%zu: providers.az.deployments: expected a mapping of model "
                           "names to deployment names, got a list",
                           strlen("  az: {kind: azure, base_url: 'https://r/openai', "
                                  "api_key_file: , api_version: v, deployments: ") +
                               strlen(key_openai) + 1);
    expect_err(y, want);
    free(want);
    free(y);

    /* fireworks: account is required, checked, and its kind's alone */
    y = xasprintf(MIN "providers:\n  fw: {kind: fireworks, base_url: 'https://api.fireworks.ai', "
                      "api_key_file: %s, account: my-team}\n",
                  key_openai);
    c = load_ok(y);
    free(y);
    p = conf_provider_find(c, "fw");
    assert_int_equal(p->kind, PROVIDER_FIREWORKS);
    assert_string_equal(provider_kind_name(p->kind), "fireworks");
    assert_string_equal(p->account, "my-team");
    conf_free(c);
    y = xasprintf(MIN "providers:\n  fw: {kind: fireworks, base_url: 'https://f', "
                      "api_key_file: %s}\n",
                  key_openai);
    expect_err(y, "t.yaml:4:7: providers.fw: missing required key 'account' (kind fireworks "
                  "keeps datasets and jobs under accounts/ACCOUNT, e.g. account: my-team)");
    free(y);
    y = xasprintf(MIN "providers:\n  fw: {kind: fireworks, base_url: 'https://f', "
                      "api_key_file: %s, account: My_Team}\n",
                  key_openai);
    want = xasprintf("t.yaml:4:%zu: providers.fw: account 'My_Team' must be 1 to 63 lowercase "
                     "letters, digits or '-' (a Fireworks account id)",
                     strlen("  fw: {kind: fireworks, base_url: 'https://f', api_key_file: , "
                            "account: ") +
                         strlen(key_openai) + 1);
    expect_err(y, want);
    free(want);
    free(y);
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'http://x', account: a}\n",
               "t.yaml:4:52: providers.p: 'account' is a key of kind fireworks only (this is "
               "manual)");
}

static void test_providers_and_references(void **state)
{
    (void)state;
    expect_err(MIN "providers:\n  p: {kind: vertex, base_url: 'http://x'}\n",
               "t.yaml:4:13: providers.p.kind: unknown provider kind 'vertex' (expected openai, "
               "azure, together, mistral, fireworks or manual)");
    expect_err(MIN "providers:\n  p: {kind: openia}\n",
               "t.yaml:4:13: providers.p.kind: unknown provider kind 'openia'; did you mean "
               "'openai'?");
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'ftp://x/v1'}\n",
               "t.yaml:4:31: providers.p.base_url: 'ftp://x/v1' must start with http:// or "
               "https://");
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'https:///v1'}\n",
               "t.yaml:4:31: providers.p.base_url: 'https:///v1' has no host name");
    /* credentials in a URL are refused, and the message does not repeat them */
    expect_err(MIN "providers:\n  p: {kind: manual, base_url: 'https://u:s3cret@x/v1'}\n",
               "t.yaml:4:31: providers.p.base_url: the URL carries credentials (user:password@ "
               "before the host), which status and the logs would show; remove them (a "
               "provider's key goes in api_key_file)");
    expect_err(MIN "alerts: {webhook_url: 'http://tok@hooks.example/x'}\n",
               "t.yaml:3:23: alerts.webhook_url: the URL carries credentials (user:password@ "
               "before the host), which status and the logs would show; remove them (a "
               "provider's key goes in api_key_file)");
    expect_err(MIN "alerts: {webhook_url: 'mailto:ops@x'}\n",
               "t.yaml:3:23: alerts.webhook_url: 'mailto:ops@x' must start with http:// or "
               "https://");
    expect_err(MIN "providers:\n  'a b': {kind: manual, base_url: 'http://x'}\n",
               "t.yaml:4:3: providers: provider name 'a b' must be 1 to 64 letters, digits, '.', "
               "'_' or '-'");
    /* generator.provider is checked against the providers wherever they appear. */
    expect_err(MIN "generator: {provider: opnai, m2_model: m}\n"
                   "providers:\n  openai: {kind: manual, base_url: 'http://x'}\n",
               "t.yaml:3:23: generator.provider: no provider named 'opnai'; did you mean "
               "'openai'?");
    expect_err(MIN "generator: {provider: vllm, m2_model: m}\n"
                   "providers:\n  openai: {kind: manual, base_url: 'http://x'}\n",
               "t.yaml:3:23: generator.provider: no provider named 'vllm' (define it under "
               "providers)");
    expect_err(MIN "generator: {provider: vllm, m2_model: m}\n",
               "t.yaml:3:23: generator.provider: no provider named 'vllm' (no providers are "
               "defined)");
    expect_err(MIN "generator: {m2_model: m}\n",
               "t.yaml:3:23: generator: m2_model is set but provider is not; name the provider "
               "that serves it");
}

static void test_key_file_checks(void **state)
{
    char *yaml, *missing = path_in("keys/missing.key"), *dir = path_in("keys");
    (void)state;

    yaml = xasprintf(MIN "providers:\n  oa:\n    kind: openai\n    base_url: https://x/v1\n"
                         "    api_key_file: %s\n",
                     missing);
    expect_errf(yaml, "t.yaml:7:19: providers.oa.api_key_file '%s': No such file or directory",
                missing);
    free(yaml);

    yaml = xasprintf(MIN "providers:\n  oa: {kind: openai, base_url: 'https://x', api_key_file: "
                         "%s}\n",
                     dir);
    expect_errf(yaml, "t.yaml:4:59: providers.oa.api_key_file '%s': Is a directory", dir);
    free(yaml);

    yaml = xasprintf(MIN "providers:\n  oa: {kind: openai, base_url: 'https://x', api_key_file: "
                         "%s}\n",
                     key_empty);
    expect_errf(yaml, "t.yaml:4:59: providers.oa.api_key_file '%s': the file is empty", key_empty);
    free(yaml);

    yaml = xasprintf(MIN "providers:\n  oa: {kind: openai, base_url: 'https://x', api_key_file: "
                         "keys/a.key}\n");
    expect_err(yaml, "t.yaml:4:59: providers.oa.api_key_file: 'keys/a.key' must be an absolute "
                     "path (starting with /)");
    free(yaml);

    /* A manual provider's optional key file is checked the same way. */
    yaml = xasprintf(MIN "providers:\n  m: {kind: manual, base_url: 'http://x', api_key_file: "
                         "%s}\n",
                     missing);
    expect_errf(yaml, "t.yaml:4:57: providers.m.api_key_file '%s': No such file or directory",
                missing);
    free(yaml);

    yaml = xasprintf(MIN "providers:\n  m: {kind: manual, base_url: 'http://x', ca_file: %s}\n",
                     missing);
    expect_errf(yaml, "t.yaml:4:52: providers.m.ca_file '%s': No such file or directory", missing);
    free(yaml);

    yaml = xasprintf(MIN "generator: {wordlist: %s}\n", missing);
    expect_errf(yaml, "t.yaml:3:23: generator.wordlist '%s': No such file or directory", missing);
    free(yaml);

    if (geteuid() != 0) {
        char *locked = path_in("keys/locked.key");
        write_file(locked, "sk-x\n");
        assert_int_equal(chmod(locked, 0), 0);
        yaml = xasprintf(MIN "providers:\n  oa: {kind: openai, base_url: 'https://x', "
                             "api_key_file: %s}\n",
                         locked);
        expect_errf(yaml, "t.yaml:4:59: providers.oa.api_key_file '%s': Permission denied", locked);
        free(yaml);
        free(locked);
    } else {
        printf("# (as root, access(2) grants every read: the permission-denied case is not "
               "tested)\n");
    }
    free(missing);
    free(dir);
}

/* The load-time check follows the same $CREDENTIALS_DIRECTORY rule as
 * conf_read_api_key(), so a systemd credential satisfies it. */
static void test_key_file_via_credentials_directory(void **state)
{
    char *cred = xasprintf("%s/vendor.key", creds);
    char *yaml = xasprintf(MIN "providers:\n  oa: {kind: openai, base_url: 'https://x', "
                               "api_key_file: /nonexistent/vtune/vendor.key}\n");
    struct conf *c;
    (void)state;

    expect_err(yaml, "t.yaml:4:59: providers.oa.api_key_file '/nonexistent/vtune/vendor.key': No "
                     "such file or directory");
    write_file(cred, "sk-cred\n");
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
    c = load_ok(yaml);
    conf_free(c);

    /* An empty credential is reported under its real path. */
    write_file(cred, "");
    expect_errf(yaml,
                "t.yaml:4:59: providers.oa.api_key_file '/nonexistent/vtune/vendor.key' (found "
                "as '%s'): the file is empty",
                cred);
    assert_int_equal(unlink(cred), 0);
    free(cred);
    free(yaml);
}

static void test_read_api_key(void **state)
{
    struct conf_provider p;
    char *key, *err = NULL;
    char *file = path_in("keys/read.key");
    char *cred = xasprintf("%s/read.key", creds);
    (void)state;

    memset(&p, 0, sizeof p);
    p.name = "oa";
    p.api_key_file = file;

    write_file(file, "  sk-abc123 \r\n\n");
    key = conf_read_api_key(&p, &err);
    assert_null(err);
    assert_string_equal(key, "sk-abc123");
    free(key);

    /* $CREDENTIALS_DIRECTORY/<basename> wins when it exists ... */
    write_file(cred, "sk-from-systemd\n");
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
    key = conf_read_api_key(&p, &err);
    assert_null(err);
    assert_string_equal(key, "sk-from-systemd");
    free(key);
    /* ... and the configured file is used when it does not. */
    assert_int_equal(unlink(cred), 0);
    key = conf_read_api_key(&p, &err);
    assert_null(err);
    assert_string_equal(key, "sk-abc123");
    free(key);
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);

    write_file(file, " \n\t\n");
    key = conf_read_api_key(&p, &err);
    assert_null(key);
    assert_non_null(err);
    {
        char *want = xasprintf("provider 'oa': key file '%s' is empty; write the provider's API "
                               "key into it",
                               file);
        assert_string_equal(err, want);
        free(want);
    }
    free(err);
    err = NULL;

    /* A key with a line break inside would inject an HTTP header; the
     * message names the file but never the key. */
    write_file(file, "sk-secret-part1\nX-Evil: sk-secret-part2\n");
    key = conf_read_api_key(&p, &err);
    assert_null(key);
    assert_non_null(err);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "it must hold only the key"));
    free(err);
    err = NULL;

    assert_int_equal(unlink(file), 0);
    key = conf_read_api_key(&p, &err);
    assert_null(key);
    {
        char *want = xasprintf("provider 'oa': key file '%s': No such file or directory", file);
        assert_string_equal(err, want);
        free(want);
    }
    free(err);
    err = NULL;

    p.api_key_file = NULL;
    key = conf_read_api_key(&p, &err);
    assert_null(key);
    assert_string_equal(err, "provider 'oa': no api_key_file is configured");
    free(err);
    free(file);
    free(cred);
}

static void test_load_file(void **state)
{
    char *file = path_in("bad.yaml"), *missing = path_in("nope.yaml");
    char *err = NULL, *want;
    struct conf *c = NULL;
    (void)state;

    write_file(file, "state_dir: /x\nsocket: /s\nverify:\n  trials: 0\n");
    assert_int_equal(conf_load(file, &c, &err), -1);
    assert_null(c);
    want = xasprintf("%s:4:11: verify.trials: must be between 1 and 1000, got 0", file);
    assert_string_equal(err, want);
    free(want);
    free(err);
    err = NULL;

    assert_int_equal(conf_load(missing, &c, &err), -1);
    want = xasprintf("%s: cannot open: No such file or directory", missing);
    assert_string_equal(err, want);
    free(want);
    free(err);
    err = NULL;

    write_file(file, MIN);
    assert_int_equal(conf_load(file, &c, &err), 0);
    assert_null(err);
    assert_string_equal(c->path, file);
    conf_free(c);
    c = NULL;

    /* err may be NULL when the caller only wants the verdict. */
    assert_int_equal(conf_load(missing, &c, NULL), -1);
    free(file);
    free(missing);
}

/* Every key of the schema, as the example and the man page must show it. */
static const char *const all_keys[] = {
    "state_dir",       "socket",           "socket_mode",      "socket_group",  "allowed_uids",
    "allowed_groups",  "log_level",        "max_request_size", "providers",     "kind",
    "base_url",        "api_key_file",     "ca_file",          "poll_interval", "max_concurrency",
    "connect_timeout", "request_timeout",  "upload_timeout",   "max_retries",   "generator",
    "provider",        "m1_model",         "m2_model",         "temperature",   "target_log10p",
    "max_tokens",      "wordlist",         "verify",           "trials",        "controls",
    "alpha",           "max_tokens_slack", "sequential",       "schedules",     "job",
    "every",           "alerts",           "webhook_url",      "timeout",       "logprobs",
    "ngram_order",     "ngram_temperature", "min_controls",    "ngram_train_rows",
};

static char *slurp(const char *path)
{
    struct buf b;
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    buf_init(&b);
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&b, chunk, (size_t)n);
    close(fd);
    return b.data;
}

/* The example's provider block, uncommented: every line from "#providers:"
 * to the first line not starting with '#' loses one '#', and the
 * "providers: {}" line goes.  Returns an owned copy of the whole file. */
static char *uncomment_providers(const char *text)
{
    const char *from = strstr(text, "\n#providers:\n"), *empty = strstr(text, "\nproviders: {}\n");
    struct buf b;

    assert_non_null(from);
    assert_non_null(empty);
    buf_init(&b);
    buf_append(&b, text, (size_t)(empty - text) + 1);
    buf_append(&b, empty + 15, (size_t)(from - (empty + 15)) + 1);
    for (const char *l = from + 1; *l; ) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
        if (*l != '#') {
            buf_append(&b, l, strlen(l));
            break;
        }
        buf_append(&b, l + 1, n - 1);
        l += n;
    }
    return b.data;
}

static void test_shipped_example(void **state)
{
    const char *srcdir = getenv("top_srcdir");
    char *example, *text, *full, *err = NULL, *k1, *k2;
    struct conf *c = NULL;
    const struct conf_provider *p;
    (void)state;

    if (!srcdir || !*srcdir)
        skip(); /* run outside make check: no way to find the sources */
    example = xasprintf("%s/conf/vtuned.yaml", srcdir);
    /* As shipped, it loads with no file besides itself (issue 16: it named
     * key files the install steps never create), defines no provider and
     * leaves the llm generator off. */
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    if (conf_load(example, &c, &err) != 0)
        fail_msg("the shipped example does not load: %s", err);
    assert_string_equal(c->state_dir, "/var/lib/vtuned");
    assert_string_equal(c->socket, "/run/vtuned/vtuned.sock");
    assert_int_equal(c->n_providers, 0);
    assert_null(c->generator.provider);
    assert_null(c->generator.m1_model);
    assert_null(c->generator.m2_model);

    /* The example shows the defaults: everything it sets matches
     * conf_defaults(). */
    {
        struct conf d;
        conf_defaults(&d);
        assert_int_equal(c->socket_mode, d.socket_mode);
        assert_null(c->socket_group);
        assert_int_equal(c->n_allowed_uids, 0);
        assert_int_equal(c->n_allowed_groups, 0);
        assert_int_equal(c->log_level, d.log_level);
        assert_int_equal(c->max_request_bytes, d.max_request_bytes);
        assert_true(c->generator.temperature == d.generator.temperature);
        assert_true(c->generator.target_log10p == d.generator.target_log10p);
        assert_int_equal(c->generator.max_tokens, d.generator.max_tokens);
        assert_int_equal(c->generator.logprobs_processed, d.generator.logprobs_processed);
        assert_null(c->generator.wordlist);
        assert_int_equal(c->generator.ngram_order, d.generator.ngram_order);
        assert_true(c->generator.ngram_temperature == d.generator.ngram_temperature);
        assert_int_equal(c->generator.ngram_train_rows, d.generator.ngram_train_rows);
        assert_int_equal(c->verify.trials, d.verify.trials);
        assert_int_equal(c->verify.controls, d.verify.controls);
        assert_true(c->verify.temperature == d.verify.temperature);
        assert_true(c->verify.alpha == d.verify.alpha);
        assert_int_equal(c->verify.max_tokens_slack, d.verify.max_tokens_slack);
        assert_int_equal(c->verify.sequential, d.verify.sequential);
        assert_int_equal(c->verify.min_controls, d.verify.min_controls);
        assert_int_equal(c->n_schedules, 0);
        assert_null(c->alerts.webhook_url);
        assert_int_equal(c->alerts.timeout_ms, d.alerts.timeout_ms);
        assert_int_equal(c->alerts.max_retries, d.alerts.max_retries);
    }
    conf_free(c);
    c = NULL;

    /* The commented provider block is valid once uncommented.  Its key
     * files are /etc/vtuned/{openai,together,fireworks}.key: supply them as systemd
     * credentials, the way a LoadCredential= drop-in does. */
    text = slurp(example);
    assert_non_null(text);
    full = uncomment_providers(text);
    k1 = xasprintf("%s/openai.key", creds);
    k2 = xasprintf("%s/together.key", creds);
    write_file(k1, "sk-1\n");
    write_file(k2, "tk-2\n");
    char *k3 = xasprintf("%s/fireworks.key", creds);
    write_file(k3, "fw-3\n");
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
    if (conf_load_string("uncommented", full, &c, &err) != 0)
        fail_msg("the example with its providers uncommented does not load: %s", err);
    assert_int_equal(c->n_providers, 4);
    p = conf_provider_find(c, "fireworks");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_FIREWORKS);
    assert_string_equal(p->account, "my-team");
    unlink(k3);
    free(k3);
    p = conf_provider_find(c, "openai");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_OPENAI);
    /* ... and shows the provider defaults. */
    assert_int_equal(p->poll_interval_ms, 30000);
    assert_int_equal(p->max_concurrency, 4);
    assert_int_equal(p->connect_timeout_ms, 10000);
    assert_int_equal(p->request_timeout_ms, 120000);
    assert_int_equal(p->upload_timeout_ms, 3600000);
    assert_int_equal(p->max_retries, 5);
    p = conf_provider_find(c, "together");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_TOGETHER);
    p = conf_provider_find(c, "local-vllm");
    assert_non_null(p);
    assert_int_equal(p->kind, PROVIDER_MANUAL);
    assert_null(p->api_key_file);
    conf_free(c);
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    free(full);

    /* Every key is shown in the example and documented in the man page. */
    for (size_t i = 0; i < VT_ARRAY_LEN(all_keys); i++) {
        char *k = xasprintf("%s:", all_keys[i]);
        if (!strstr(text, k))
            fail_msg("conf/vtuned.yaml does not show key '%s'", all_keys[i]);
        free(k);
    }
    free(text);
    {
        char *man = xasprintf("%s/man/vtuned.yaml.5", srcdir);
        text = slurp(man);
        assert_non_null(text);
        for (size_t i = 0; i < VT_ARRAY_LEN(all_keys); i++) {
            if (!strstr(text, all_keys[i]))
                fail_msg("man/vtuned.yaml.5 does not document key '%s'", all_keys[i]);
        }
        free(text);
        free(man);
    }
    assert_int_equal(unlink(k1), 0);
    assert_int_equal(unlink(k2), 0);
    free(k1);
    free(k2);
    free(example);
}

/* --- the control section and conf_diff ---------------------------------- */

static void test_control_section(void **state)
{
    struct conf *c = load_ok(MIN);
    (void)state;
    assert_int_equal(c->control.max_connections, 256);
    assert_int_equal(c->control.max_buffered_bytes, 64ull << 20);
    assert_int_equal(c->control.partial_line_timeout_ms, 30000);
    conf_free(c);
    c = load_ok(MIN "control:\n  max_connections: 8\n  max_buffered: 1MiB\n"
                    "  partial_line_timeout: 2s\n");
    assert_int_equal(c->control.max_connections, 8);
    assert_int_equal(c->control.max_buffered_bytes, 1u << 20);
    assert_int_equal(c->control.partial_line_timeout_ms, 2000);
    conf_free(c);
    expect_err(MIN "control:\n  max_connections: 0\n",
               "t.yaml:4:20: control.max_connections: must be between 1 and 65536, got 0");
    expect_err(MIN "control:\n  max_conections: 8\n",
               "t.yaml:4:3: control: unknown key 'max_conections'; did you mean "
               "'max_connections'?");
}

struct seen {
    char keys[16][64];
    int n;
};

static void on_key(const char *key, void *ctx)
{
    struct seen *s = ctx;
    assert_true(s->n < 16);
    snprintf(s->keys[s->n++], sizeof s->keys[0], "%s", key);
}

static char *diff_of(const char *a_yaml, const char *b_yaml)
{
    struct conf *a = load_ok(a_yaml), *b = load_ok(b_yaml);
    struct seen s = {.n = 0};
    struct buf out;
    conf_diff(a, b, on_key, &s);
    buf_init(&out);
    for (int i = 0; i < s.n; i++)
        buf_printf(&out, "%s%s", i ? " " : "", s.keys[i]);
    conf_free(a);
    conf_free(b);
    return out.data ? out.data : xstrdup("");
}

static void expect_diff(const char *a_yaml, const char *b_yaml, const char *want)
{
    char *got = diff_of(a_yaml, b_yaml);
    assert_string_equal(got, want);
    free(got);
}

static void test_diff(void **state)
{
    char *pa, *pb;
    (void)state;
    expect_diff(MIN, MIN, "");
    expect_diff(MIN, MIN "socket_mode: 0600\n", "socket_mode");
    expect_diff(MIN "socket_mode: 0600\n", MIN "socket_mode: \"600\"\n", ""); /* same value */
    expect_diff(MIN, "state_dir: /srv/v\nsocket: /run/x.sock\nlog_level: debug\n",
                "state_dir socket log_level");
    expect_diff(MIN, MIN "verify: {alpha: 1e-3}\ncontrol: {partial_line_timeout: 5s}\n",
                "verify.alpha control.partial_line_timeout");
    expect_diff(MIN "allowed_uids: [1, 2]\n", MIN "allowed_uids: [2, 1]\n", "allowed_uids");
    expect_diff(MIN "schedules: [{job: a, every: 1h}]\n", MIN "schedules: [{job: a, every: 2h}]\n",
                "schedules");
    pa = xasprintf(MIN "providers:\n  p:\n    kind: openai\n    base_url: http://a/v1\n"
                       "    api_key_file: %s\n  gone:\n    kind: manual\n    base_url: "
                       "http://g/v1\n",
                   key_openai);
    pb = xasprintf(MIN "providers:\n  p:\n    kind: openai\n    base_url: http://b/v1\n"
                       "    api_key_file: %s\n    poll_interval: 1m\n  new:\n    kind: manual\n"
                       "    base_url: http://n/v1\n",
                   key_openai);
    expect_diff(pa, pb,
                "providers.p.base_url providers.p.poll_interval providers.gone "
                "providers.new");
    free(pa);
    free(pb);
}

/* An empty file (or /dev/null) is one clear error from conf_load(), not
 * libyaml's assertion on a NULL input. */
static void test_empty_file(void **state)
{
    char *path = path_in("empty.yaml"), *want, *err = NULL;
    struct conf *c = NULL;
    (void)state;

    write_file(path, "");
    assert_int_equal(conf_load(path, &c, &err), -1);
    assert_null(c);
    want = xasprintf("%s:1:1: missing required key 'state_dir' (the file holds no settings)", path);
    assert_string_equal(err, want);
    free(err);
    free(want);
    assert_int_equal(unlink(path), 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_minimal_and_defaults),
        cmocka_unit_test(test_provider_defaults),
        cmocka_unit_test(test_score_template),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_value_spellings),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_document_shape),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_providers_and_references),
        cmocka_unit_test(test_provider_kinds_2027),
        cmocka_unit_test(test_key_file_checks),
        cmocka_unit_test_teardown(test_key_file_via_credentials_directory, teardown_env),
        cmocka_unit_test_teardown(test_read_api_key, teardown_env),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test_teardown(test_shipped_example, teardown_env),
        cmocka_unit_test(test_control_section),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests_name("conf", tests, setup_group, teardown_group);
}

/*
 * cli_sign.c — key show, audit attest, backdoor commit, attest verify.
 *
 * The daemon signs and answers the envelope; vtunectl writes it to the
 * file named by -o, a new file it creates with the caller's rights
 * (O_CREAT|O_EXCL: never over an existing file; mode 0644 less the umask:
 * an attestation is meant to be shown).  `attest verify` needs no daemon:
 * an auditor runs it with the envelope and the public key only.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/sign.h"
#include "lib/util.h"
#include "workers/attest.h"

#define EVIDENCE_FILE_MAX (16u << 20)

int h_key_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("fingerprint  %s\npublic key   %s\nloaded from  %s\n%s",
               json_string_value(json_object_get(r, CTL_K_FINGERPRINT)),
               json_string_value(json_object_get(r, CTL_K_PUBLIC_KEY)),
               json_string_value(json_object_get(r, CTL_K_KEY_SOURCE)),
               json_string_value(json_object_get(r, CTL_K_PUBLIC_KEY_PEM)));
    json_decref(r);
    return 0;
}

/* Asks for an envelope and writes it to --output (a new file). */
static int write_envelope(struct ctl_call *c)
{
    const char *out = call_flag(c, "--output");
    /* removed again if the daemon refuses (rpc() exits) */
    int fd = output_create(out, 0644, "evidence");
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    char *text =
        json_dumps(json_object_get(r, CTL_K_ENVELOPE), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t len = text ? strlen(text) : 0, off = 0;
    int ok = text != NULL;
    while (ok && off < len) {
        ssize_t m = write(fd, text + off, len - off);
        if (m < 0 && errno == EINTR)
            continue;
        ok = m > 0;
        off += ok ? (size_t)m : 0;
    }
    ok = ok && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (close(fd) < 0)
        ok = 0;
    free(text);
    if (!ok) {
        int e = errno;
        die("%s: cannot write: %s; nothing was kept", out, strerror(e));
    }
    output_pending(NULL);
    if (opt_json)
        print_json(r);
    else
        printf("wrote %s: %s\nsigned by key %s\n", out,
               json_string_value(json_object_get(r, CTL_K_MESSAGE)),
               json_string_value(json_object_get(r, CTL_K_FINGERPRINT)));
    json_decref(r);
    return 0;
}

int h_audit_attest(struct ctl_call *c)
{
    return write_envelope(c);
}

int h_backdoor_commit(struct ctl_call *c)
{
    return write_envelope(c);
}

/* Reads a whole small file (owned, NUL-terminated) or exits 1. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: cannot open: %s", path, strerror(errno));
    struct buf b;
    char chunk[8192];
    size_t m;
    buf_init(&b);
    while ((m = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(&b, chunk, m);
        if (b.len > EVIDENCE_FILE_MAX)
            die("%s: larger than 16 MiB: not an envelope or key of ours", path);
    }
    if (ferror(f))
        die("%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    buf_append(&b, "", 1);
    *n = b.len - 1;
    return b.data;
}

/* The file's name as JSON: null when it is not UTF-8. */
static json_t *file_json(const char *file)
{
    json_t *j = json_string(file);
    return j ? j : json_null();
}

/* Exit 1 with "invalid: WHY" (one line, the only output); with --json the
 * object {"ok":false,"file","fingerprint","reason","statement":null}. */
static int invalid(const char *file, const char *fp, const char *why)
{
    if (opt_json) {
        json_t *o = json_pack("{s:b,s:o,s:s,s:s,s:n}", CTL_K_OK, 0, CTL_K_FILE, file_json(file),
                              CTL_K_FINGERPRINT, fp, "reason", why ? why : "", "statement");
        print_json(o);
        json_decref(o);
    } else {
        printf("%s: invalid: %s\n", file, why);
    }
    return 1;
}

int h_attest_verify(struct ctl_call *c)
{
    const char *file = c->arg, *keyfile = call_flag(c, "--key");
    size_t kn, en, bn;
    char *ktext = slurp(keyfile, &kn), *etext, *why = NULL, *body = NULL;
    uint8_t pub[SIGN_PUB_LEN];
    char fp[65];
    int rc;
    if (sign_pub_parse(ktext, kn, pub, &why) < 0)
        die("%s: %s", keyfile, why);
    free(ktext);
    sign_pub_fingerprint(pub, fp);
    etext = slurp(file, &en);
    json_error_t jerr;
    json_t *env = json_loadb(etext, en, 0, &jerr), *st = NULL;
    free(etext);
    if (!env) {
        rc = invalid(file, fp, "not JSON");
        goto out;
    }
    if (dsse_verify(env, pub, ATTEST_PAYLOAD_TYPE, &body, &bn, &why) < 0) {
        rc = invalid(file, fp, why);
        goto out;
    }
    if (!(st = json_loadb(body, bn, 0, &jerr))) {
        rc = invalid(file, fp, "the signed payload is not JSON");
        goto out;
    }
    if (attest_statement_check(st, &why) < 0) {
        rc = invalid(file, fp, why);
        goto out;
    }
    if (opt_json) {
        json_t *o = json_pack("{s:b,s:o,s:s,s:n,s:O}", CTL_K_OK, 1, CTL_K_FILE, file_json(file),
                              CTL_K_FINGERPRINT, fp, "reason", "statement", st);
        print_json(o);
        json_decref(o);
    } else {
        char *sum = attest_summary(st);
        printf("%s: valid: %s; signed by key %s\n", file, sum, fp);
        free(sum);
    }
    rc = 0;
out:
    free(why);
    free(body);
    json_decref(st);
    json_decref(env);
    return rc;
}

/*
 * signing.c — the daemon's Ed25519 signing key and the methods that hand
 * out signed evidence: key.show, audit.attest, backdoor.commit (issue 15).
 *
 * Where the key comes from, first match wins (vtuned(8), SIGNING KEY):
 * signing_key_file in the configuration; the systemd credential
 * $CREDENTIALS_DIRECTORY/vtuned-signing-key (LoadCredential=); else
 * <state_dir>/signing.key, created at the first start (0600, written to a
 * temporary name, fsync'ed, renamed, directory fsync'ed, so a crash leaves
 * either no key or a whole one, never half of one).  The key is loaded once
 * at start-up; a reload does not change it.
 *
 * An attestation is built only from an audit record whose chain verifies
 * up to it: the key must not lend its signature to a record someone wrote
 * into the database by hand.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/lookup.h"
#include "daemon/signing.h"
#include "lib/log.h"
#include "lib/sign.h"
#include "lib/util.h"
#include "workers/attest.h"
#include "workers/audit.h"
#include "workers/auditsig.h"

#define CREDENTIAL_NAME "vtuned-signing-key"

/* Writes a new key to path: temporary name, fsync, rename, directory
 * fsync.  Returns 0 or -errno. */
static int write_new_key(const char *path, const struct sign_key *k)
{
    char *tmp = xasprintf("%s.new", path), *pem = sign_key_to_pem(k);
    size_t len = strlen(pem), off = 0;
    int r = 0;
    unlink(tmp); /* a leftover of a crash before the rename: never a key in use */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    while (off < len) {
        ssize_t m = write(fd, pem + off, len - off);
        if (m < 0 && errno == EINTR)
            continue;
        if (m <= 0) {
            r = m < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)m;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r == 0)
        r = fsync_parent_dir(path);
    if (r < 0)
        unlink(tmp);
out:
    explicit_bzero(pem, len);
    free(pem);
    free(tmp);
    return r;
}

int signing_key_setup(struct vtuned *d, char **err)
{
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    char *path = NULL;
    int r = 0;
    uint8_t pub[SIGN_PUB_LEN];
    if (d->conf->signing_key_file) {
        path = xstrdup(d->conf->signing_key_file);
    } else if (creds && *creds) {
        path = xasprintf("%s/%s", creds, CREDENTIAL_NAME);
        if (access(path, F_OK) < 0) {
            free(path);
            path = NULL;
        }
    }
    if (path) {
        if ((r = sign_key_load_file(path, &d->key, err)) < 0) {
            free(path);
            return -1;
        }
    } else {
        struct stat st;
        path = xasprintf("%s/signing.key", d->conf->state_dir);
        if (lstat(path, &st) == 0) {
            if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
                *err = xasprintf("the signing key %s must be a regular file of ours, mode 0600 "
                                 "(chmod 600 it, or remove it to make a new key: attestations "
                                 "already given out then need the old public key)",
                                 path);
                free(path);
                return -1;
            }
            if (sign_key_load_file(path, &d->key, err) < 0) {
                free(path);
                return -1;
            }
        } else if (errno != ENOENT) {
            *err = xasprintf("cannot read the signing key %s: %s", path, strerror(errno));
            free(path);
            return -1;
        } else {
            if (sign_key_generate(&d->key) < 0 || (r = write_new_key(path, d->key)) < 0) {
                *err = xasprintf("cannot create the signing key %s: %s", path,
                                 d->key ? strerror(-r) : "libcrypto failed");
                free(path);
                return -1;
            }
            log_info("created a new signing key %s", path);
        }
    }
    sign_key_public(d->key, pub);
    sign_pub_fingerprint(pub, d->key_fpr);
    d->key_source = path;
    log_info("signing key %s, fingerprint %s", path, d->key_fpr);
    return 0;
}

static void m_key_show(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    uint8_t pub[SIGN_PUB_LEN];
    (void)params;
    sign_key_public(d->key, pub);
    char *pem = sign_pub_pem(pub), *b64 = sign_b64_encode(pub, sizeof pub);
    ctl_reply(req, json_pack("{s:s,s:s,s:s,s:s}", CTL_K_PUBLIC_KEY, b64, CTL_K_PUBLIC_KEY_PEM, pem,
                             CTL_K_FINGERPRINT, d->key_fpr, CTL_K_KEY_SOURCE, d->key_source));
    free(pem);
    free(b64);
}

/* Answers req with the envelope of statement st (stolen). */
static void reply_envelope(struct vtuned *d, struct ctl_req *req, json_t *st)
{
    char *text = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_t *env = text ? dsse_sign(d->key, ATTEST_PAYLOAD_TYPE, text, strlen(text)) : NULL;
    char *sum = attest_summary(st);
    if (!env)
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot sign the statement (libcrypto)");
    else
        ctl_reply(req, json_pack("{s:o,s:s,s:s}", CTL_K_ENVELOPE, env, CTL_K_FINGERPRINT,
                                 d->key_fpr, CTL_K_MESSAGE, sum));
    free(sum);
    free(text);
    json_decref(st);
}

static void m_audit_attest(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_audit *v = NULL;
    struct store_job j = {0};
    struct store_dataset ds = {0};
    struct store_backdoor b = {0};
    struct audit_check c = {0};
    size_t n = 0, i;
    char key[32];
    json_t *id = json_object_get(params, CTL_K_ID);
    int64_t want = json_is_integer(id)  ? json_integer_value(id)
                   : json_is_string(id) ? strtoll(json_string_value(id), NULL, 10)
                                        : 0;
    if (want <= 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.id: an audit record id is required");
        return;
    }
    if (store_audit_list(d->store, 0, &v, &n) < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read the audit trail: %s",
                        store_errmsg(d->store));
        return;
    }
    for (i = 0; i < n && v[i].id != want; i++)
        ;
    if (i == n) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL,
                        "no audit record %lld (see 'vtunectl audit list')", (long long)want);
        goto out;
    }
    audit_chain_verify(v, i + 1, NULL, &c);
    if (!c.ok) {
        ctl_reply_error(req, CTL_ERR_FAILED, NULL,
                        "audit record %lld is not attested: the chain up to it does not verify "
                        "(%s); see 'vtunectl audit verify'",
                        (long long)want, c.message);
        goto out;
    }
    {
        /* and its records up to A carry this key's signatures (the head
         * is checked by audit verify: a later record's absence is not A's) */
        struct store_audit_sig *sigs = NULL;
        struct auditsig_check sc;
        size_t ns = 0;
        uint8_t pub[SIGN_PUB_LEN];
        sign_key_public(d->key, pub);
        if (store_audit_sig_list(d->store, &sigs, &ns) < 0) {
            ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read the audit signatures: %s",
                            store_errmsg(d->store));
            goto out;
        }
        auditsig_verify(v, i + 1, sigs, ns, NULL, pub, &sc);
        free(sigs);
        if (!sc.ok && sc.problem != AUDITSIG_NO_HEAD) {
            ctl_reply_error(req, CTL_ERR_FAILED, NULL,
                            "audit record %lld is not attested: %s; see 'vtunectl audit verify'",
                            (long long)want, sc.message);
            auditsig_check_clear(&sc);
            goto out;
        }
        auditsig_check_clear(&sc);
    }
    if (!v[i].model) {
        ctl_reply_error(req, CTL_ERR_INVALID, NULL,
                        "audit record %lld names no model (the job produced none): nothing to "
                        "attest",
                        (long long)want);
        goto out;
    }
    snprintf(key, sizeof key, "%lld", (long long)v[i].job_id);
    if (store_job_get(d->store, key, &j) < 0) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "job %s of audit record %lld is gone", key,
                        (long long)want);
        goto out;
    }
    snprintf(key, sizeof key, "%lld", (long long)j.dataset_id);
    if (store_dataset_get(d->store, key, &ds) < 0) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "dataset %s of job %lld is gone", key,
                        (long long)j.id);
        goto out;
    }
    snprintf(key, sizeof key, "%lld", (long long)j.backdoor_id);
    if (store_backdoor_get(d->store, key, false, &b) < 0) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "backdoor %s of job %lld is gone", key,
                        (long long)j.id);
        goto out;
    }
    struct attest_context cx = {j.name,    j.base_model, ds.id,          ds.name,
                                ds.sha256, b.id,         b.built_sha256, d->key_fpr};
    log_ctx(LOG_LVL_INFO, &(struct log_fields){.audit = want},
            "audit record %lld attested (key %.16s)", (long long)want, d->key_fpr);
    reply_envelope(d, req, attest_verdict_statement(&v[i], &cx));
out:
    audit_check_clear(&c);
    store_backdoor_clear(&b);
    store_dataset_clear(&ds);
    store_job_clear(&j);
    store_audit_list_free(v, n);
}

static void m_backdoor_commit(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_backdoor b;
    struct store_dataset ds;
    char key[32];
    if (lookup_backdoor(d, req, params, CTL_K_ID, false, &b) < 0)
        return;
    snprintf(key, sizeof key, "%lld", (long long)b.dataset_id);
    if (store_dataset_get(d->store, key, &ds) < 0) {
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "dataset %s of backdoor %lld is gone", key,
                        (long long)b.id);
        store_backdoor_clear(&b);
        return;
    }
    log_ctx(LOG_LVL_INFO, &(struct log_fields){.backdoor = b.id},
            "backdoor %lld: commitment %s signed", (long long)b.id, b.commitment);
    reply_envelope(d, req, attest_commit_statement(&b, &ds, now_unix(), d->key_fpr));
    store_dataset_clear(&ds);
    store_backdoor_clear(&b);
}

/* store_audit_sign_fn: signs inside the append transaction; logs the head
 * (its counter in the journal is what reveals a later rollback). */
static int sign_audit_cb(const struct store_audit *a, struct store_audit_sig *rec,
                         struct store_audit_head_sig *h, void *ctx)
{
    struct vtuned *d = ctx;
    int r = auditsig_sign(d->key, a, rec, h);
    if (r == 0)
        log_info("audit: signed head counter %lld: %lld records, head %s", (long long)h->counter,
                 (long long)h->records, h->head_hash);
    return r;
}

void signing_chain_start(struct vtuned *d)
{
    struct store_audit *v = NULL;
    struct store_audit_sig *sigs = NULL, *mine = NULL;
    struct store_audit_head_sig head;
    struct audit_check c = {0};
    size_t n = 0, ns = 0;
    store_set_audit_signer(d->store, sign_audit_cb, d);
    int r = store_audit_head_sig_get(d->store, &head);
    if (r != -ENOENT) {
        if (r < 0)
            log_warnx("audit: cannot read the signed head: %s", store_errmsg(d->store));
        return;
    }
    if (store_audit_list(d->store, 0, &v, &n) < 0 ||
        store_audit_sig_list(d->store, &sigs, &ns) < 0) {
        log_warnx("audit: cannot read the trail to sign it: %s", store_errmsg(d->store));
        goto out;
    }
    if (n == 0 || ns > 0)
        goto out; /* nothing to adopt; or signatures without a head: audit verify reports it */
    audit_chain_verify(v, n, NULL, &c);
    if (!c.ok) {
        log_warnx("audit: the %zu records written before signing began are left unsigned: %s", n,
                  c.message);
        goto out;
    }
    mine = xcalloc(n, sizeof *mine);
    memset(&head, 0, sizeof head);
    head.counter = 1;
    head.records = v[n - 1].id;
    memcpy(head.head_hash, v[n - 1].hash, sizeof head.head_hash);
    head.signed_at = now_unix();
    for (size_t i = 0; i < n; i++) {
        if (auditsig_sign(d->key, &v[i], &mine[i], &head) < 0) {
            log_warnx("audit: signing the existing records failed (libcrypto)");
            goto out;
        }
    }
    if (store_audit_sig_adopt(d->store, mine, n, &head) < 0)
        log_warnx("audit: cannot record the signatures of the existing records: %s",
                  store_errmsg(d->store));
    else
        log_info("audit: signed the %zu records written before signing began (their chain "
                 "verified); signed head counter 1, head %s",
                 n, head.head_hash);
out:
    audit_check_clear(&c);
    free(mine);
    free(sigs);
    store_audit_list_free(v, n);
}

json_t *signing_chain_check(struct vtuned *d, const struct store_audit *v, size_t n)
{
    struct store_audit_sig *sigs = NULL;
    struct store_audit_head_sig head;
    struct auditsig_check sc;
    size_t ns = 0;
    uint8_t pub[SIGN_PUB_LEN];
    json_t *jhead = json_null();
    if (store_audit_sig_list(d->store, &sigs, &ns) < 0)
        return json_pack("{s:b,s:s,s:I,s:I,s:s,s:n}", CTL_K_OK, 0, "problem", "unreadable",
                         "bad_id", (json_int_t)0, "signed", (json_int_t)0, CTL_K_MESSAGE,
                         "cannot read the audit signatures", "signed_head");
    int hr = store_audit_head_sig_get(d->store, &head);
    if (hr == 0) {
        char when[32];
        format_iso8601(head.signed_at, when);
        jhead = json_pack("{s:I,s:I,s:s,s:s}", "counter", (json_int_t)head.counter, "records",
                          (json_int_t)head.records, "hash", head.head_hash, "signed_at", when);
    }
    sign_key_public(d->key, pub);
    auditsig_verify(v, n, sigs, ns, hr == 0 ? &head : NULL, pub, &sc);
    json_t *o =
        json_pack("{s:b,s:s,s:I,s:I,s:s,s:o}", CTL_K_OK, sc.ok, "problem",
                  auditsig_problem_name(sc.problem), "bad_id", (json_int_t)sc.bad_id, "signed",
                  (json_int_t)sc.signed_, CTL_K_MESSAGE, sc.message, "signed_head", jhead);
    auditsig_check_clear(&sc);
    free(sigs);
    return o;
}

const struct ctl_method ctl_methods_sign[] = {
    {CTL_M_KEY_SHOW, m_key_show, 0, NULL},
    {CTL_M_AUDIT_ATTEST, m_audit_attest, 0, NULL},
    {CTL_M_BACKDOOR_COMMIT, m_backdoor_commit, 0, NULL},
    {NULL, NULL, 0, NULL},
};

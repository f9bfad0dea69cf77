/*
 * auditsig.c — signing and checking the audit chain (see auditsig.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "workers/auditsig.h"

void auditsig_record_msg(int64_t id, const char *hash, struct buf *out)
{
    buf_printf(out, "%s%" PRId64 "\n%.64s\n", AUDITSIG_RECORD_TAG, id, hash);
}

void auditsig_head_msg(const struct store_audit_head_sig *h, struct buf *out)
{
    buf_printf(out, "%s%" PRId64 "\n%" PRId64 "\n%.64s\n%" PRId64 "\n", AUDITSIG_HEAD_TAG,
               h->counter, h->records, h->head_hash, h->signed_at);
}

static int sign_msg(const struct sign_key *k, const struct buf *m, char hex[129], char fpr[65])
{
    uint8_t sig[SIGN_SIG_LEN], pub[SIGN_PUB_LEN];
    if (sign_bytes(k, m->data, m->len, sig) < 0)
        return -EIO;
    hex_encode(sig, sizeof sig, hex);
    sign_key_public(k, pub);
    sign_pub_fingerprint(pub, fpr);
    return 0;
}

int auditsig_sign(const struct sign_key *k, const struct store_audit *a,
                  struct store_audit_sig *rec, struct store_audit_head_sig *h)
{
    struct buf m;
    int r;
    buf_init(&m);
    auditsig_record_msg(a->id, a->hash, &m);
    rec->audit_id = a->id;
    r = sign_msg(k, &m, rec->sig, rec->key_fpr);
    buf_reset(&m);
    if (r == 0) {
        auditsig_head_msg(h, &m);
        r = sign_msg(k, &m, h->sig, h->key_fpr);
    }
    buf_free(&m);
    return r;
}

static int unhex(const char *h, uint8_t *out, size_t n)
{
    if (strlen(h) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = h[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* 0 when hex is pub's signature of m. */
static int check_sig(const uint8_t pub[SIGN_PUB_LEN], const struct buf *m, const char *hex)
{
    uint8_t sig[SIGN_SIG_LEN];
    if (unhex(hex, sig, sizeof sig) < 0)
        return -EBADMSG;
    return sign_verify_bytes(pub, m->data, m->len, sig);
}

const char *auditsig_problem_name(enum auditsig_problem p)
{
    static const char *const names[] = {"ok",        "unsigned",    "bad_signature",
                                        "other_key", "no_head",     "head_signature",
                                        "truncated", "beyond_head", "head_mismatch"};
    return (size_t)p < sizeof names / sizeof names[0] ? names[p] : "unknown";
}

void auditsig_check_clear(struct auditsig_check *c)
{
    free(c->message);
    memset(c, 0, sizeof *c);
}

static void fail(struct auditsig_check *out, enum auditsig_problem p, int64_t id, char *msg)
{
    out->ok = false;
    out->problem = p;
    out->bad_id = id;
    out->message = msg;
}

static int cmp_sig(const void *a, const void *b)
{
    int64_t x = ((const struct store_audit_sig *)a)->audit_id;
    int64_t y = ((const struct store_audit_sig *)b)->audit_id;
    return x < y ? -1 : x > y;
}

void auditsig_verify(const struct store_audit *v, size_t n, const struct store_audit_sig *sigs,
                     size_t ns, const struct store_audit_head_sig *head,
                     const uint8_t pub[SIGN_PUB_LEN], struct auditsig_check *out)
{
    char fpr[65];
    struct buf m;
    memset(out, 0, sizeof *out);
    sign_pub_fingerprint(pub, fpr);
    buf_init(&m);
    for (size_t i = 0; i < n; i++) {
        struct store_audit_sig key = {.audit_id = v[i].id};
        const struct store_audit_sig *g =
            ns ? bsearch(&key, sigs, ns, sizeof *sigs, cmp_sig) : NULL;
        if (!g) {
            fail(out, AUDITSIG_UNSIGNED, v[i].id,
                 xasprintf("record %" PRId64 " has no signature: it was not written by this "
                           "daemon (added to the database by other means)",
                           v[i].id));
            goto out;
        }
        if (strcmp(g->key_fpr, fpr) != 0) {
            fail(out, AUDITSIG_OTHER_KEY, v[i].id,
                 xasprintf("record %" PRId64 " is signed by key %s, not by key %s", v[i].id,
                           g->key_fpr, fpr));
            goto out;
        }
        buf_reset(&m);
        auditsig_record_msg(v[i].id, v[i].hash, &m);
        if (check_sig(pub, &m, g->sig) < 0) {
            fail(out, AUDITSIG_BAD_SIGNATURE, v[i].id,
                 xasprintf("record %" PRId64 "'s signature does not verify: the record or its "
                           "hash was changed without the key",
                           v[i].id));
            goto out;
        }
        out->signed_++;
    }
    if (!head) {
        if (n > 0)
            fail(out, AUDITSIG_NO_HEAD, 0,
                 xasprintf("the chain has %zu records but no signed head (removed)", n));
        goto done;
    }
    buf_reset(&m);
    auditsig_head_msg(head, &m);
    if (strcmp(head->key_fpr, fpr) != 0 || check_sig(pub, &m, head->sig) < 0) {
        fail(out, AUDITSIG_HEAD_SIGNATURE, 0,
             xasprintf("the signed head (counter %" PRId64 ") does not verify under key %s",
                       head->counter, fpr));
        goto out;
    }
    if (head->records > (int64_t)n) {
        fail(out, AUDITSIG_TRUNCATED, (int64_t)n + 1,
             xasprintf("the chain was truncated: the signed head (counter %" PRId64
                       ") counts %" PRId64 " records, %zu remain (records %zu to %" PRId64
                       " removed)",
                       head->counter, head->records, n, n + 1, head->records));
        goto out;
    }
    if (head->records < (int64_t)n) {
        fail(out, AUDITSIG_BEYOND_HEAD, head->records + 1,
             xasprintf("record %" PRId64 " lies beyond the signed head (counter %" PRId64
                       ", %" PRId64 " records)",
                       head->records + 1, head->counter, head->records));
        goto out;
    }
    if (n > 0 && strcmp(head->head_hash, v[n - 1].hash) != 0) {
        fail(out, AUDITSIG_HEAD_MISMATCH, v[n - 1].id,
             xasprintf("record %" PRId64 "'s hash is not the signed head's", v[n - 1].id));
        goto out;
    }
done:
    if (!out->message) {
        out->ok = true;
        out->message = xasprintf("%zu records signed by key %s; signed head counter %" PRId64, n,
                                 fpr, head ? head->counter : 0);
    }
out:
    buf_free(&m);
}

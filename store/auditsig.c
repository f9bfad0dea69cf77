/*
 * auditsig.c — the signed audit chain's storage (schema 7): one signature
 * per record in audit_signatures, and the one signed head in audit_head.
 *
 * The store does not sign: a signer installed by the daemon
 * (store_set_audit_signer) is called inside the append transaction, so a
 * record, its signature and the head that counts it commit together or not
 * at all; what is signed is defined in workers/auditsig.h.  Statements are
 * prepared per call (audit writes are rare), so this file needs no entry in
 * statements.c.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_internal.h"

void store_set_audit_signer(struct store *s, store_audit_sign_fn fn, void *ctx)
{
    s->audit_signer = fn;
    s->audit_signer_ctx = ctx;
}

static int hex128_valid(const char *h)
{
    if (strlen(h) != 128)
        return 0;
    for (size_t i = 0; i < 128; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return 1;
}

static int put_sig(struct store *s, const struct store_audit_sig *g)
{
    static const char sql[] =
        "INSERT INTO audit_signatures (audit_id, key_fpr, sig) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *st = NULL;
    if (!store_hex64_valid(g->key_fpr) || !hex128_valid(g->sig))
        return store_failx(s, -EINVAL, "audit signature of record %" PRId64 " is malformed",
                           g->audit_id);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the audit signature insert");
    sqlite3_bind_int64(st, 1, g->audit_id);
    sqlite3_bind_text(st, 2, g->key_fpr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, g->sig, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : store_fail(s, rc, "recording an audit signature");
    sqlite3_finalize(st);
    return ret;
}

static int put_head(struct store *s, const struct store_audit_head_sig *h)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO audit_head (id, counter, records, head_hash, signed_at, key_fpr, "
        "sig) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)";
    sqlite3_stmt *st = NULL;
    if (!store_hex64_valid(h->key_fpr) || !hex128_valid(h->sig) || !store_hex64_valid(h->head_hash))
        return store_failx(s, -EINVAL, "the signed audit head is malformed");
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the audit head update");
    sqlite3_bind_int64(st, 1, h->counter);
    sqlite3_bind_int64(st, 2, h->records);
    sqlite3_bind_text(st, 3, h->head_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, h->signed_at);
    sqlite3_bind_text(st, 5, h->key_fpr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, h->sig, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : store_fail(s, rc, "recording the signed audit head");
    sqlite3_finalize(st);
    return ret;
}

int store_audit_head_sig_get(struct store *s, struct store_audit_head_sig *out)
{
    static const char sql[] =
        "SELECT counter, records, head_hash, signed_at, key_fpr, sig FROM audit_head WHERE id = 1";
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the audit head read");
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const char *sig = (const char *)sqlite3_column_text(st, 5);
        out->counter = sqlite3_column_int64(st, 0);
        out->records = sqlite3_column_int64(st, 1);
        store_column_hex64(st, 2, out->head_hash);
        out->signed_at = sqlite3_column_int64(st, 3);
        store_column_hex64(st, 4, out->key_fpr);
        snprintf(out->sig, sizeof out->sig, "%s", sig ? sig : "");
    } else if (rc == SQLITE_DONE) {
        ret = -ENOENT;
    } else {
        ret = store_fail(s, rc, "reading the signed audit head");
    }
    sqlite3_finalize(st);
    return ret;
}

int store_audit_sig_list(struct store *s, struct store_audit_sig **out, size_t *n)
{
    static const char sql[] =
        "SELECT audit_id, key_fpr, sig FROM audit_signatures ORDER BY audit_id";
    sqlite3_stmt *st = NULL;
    struct store_audit_sig *v = NULL;
    size_t len = 0, cap = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    *out = NULL;
    *n = 0;
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing the audit signature list");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        const char *sig = (const char *)sqlite3_column_text(st, 2);
        memset(&v[len], 0, sizeof v[len]);
        v[len].audit_id = sqlite3_column_int64(st, 0);
        store_column_hex64(st, 1, v[len].key_fpr);
        snprintf(v[len].sig, sizeof v[len].sig, "%s", sig ? sig : "");
        len++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        return store_fail(s, rc, "listing audit signatures");
    }
    *out = v;
    *n = len;
    return 0;
}

int store_audit_sign_locked(struct store *s, const struct store_audit *a)
{
    struct store_audit_sig rec;
    struct store_audit_head_sig head, old;
    if (!s->audit_signer)
        return 0;
    int ret = store_audit_head_sig_get(s, &old);
    if (ret < 0 && ret != -ENOENT)
        return ret;
    memset(&rec, 0, sizeof rec);
    memset(&head, 0, sizeof head);
    rec.audit_id = a->id;
    head.counter = (ret == -ENOENT ? 0 : old.counter) + 1;
    head.records = a->id;
    memcpy(head.head_hash, a->hash, sizeof head.head_hash);
    head.signed_at = a->created_at;
    ret = s->audit_signer(a, &rec, &head, s->audit_signer_ctx);
    if (ret < 0)
        return store_failx(s, ret, "signing audit record %" PRId64 " failed", a->id);
    if ((ret = put_sig(s, &rec)) < 0)
        return ret;
    return put_head(s, &head);
}

int store_audit_sig_adopt(struct store *s, const struct store_audit_sig *v, size_t n,
                          const struct store_audit_head_sig *h)
{
    struct store_audit_head_sig old;
    int ret = store_begin(s);
    if (ret < 0)
        return ret;
    ret = store_audit_head_sig_get(s, &old);
    if (ret == 0)
        ret = store_failx(s, -EEXIST, "the audit chain is signed already");
    else if (ret == -ENOENT)
        ret = 0;
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = put_sig(s, &v[i]);
    if (ret == 0)
        ret = put_head(s, h);
    if (ret == 0)
        ret = store_commit(s);
    if (ret < 0)
        store_rollback(s);
    return ret;
}

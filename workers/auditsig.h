/*
 * auditsig.h — what the signed audit chain signs, and its check (issue 15).
 *
 * A hash chain alone can be recomputed by anyone who writes the database:
 * a record appended with correct hashes, a chain truncated, or rewritten
 * from some record on, all verify.  So each record's hash is also signed
 * with the daemon's Ed25519 key, and so is the head (how many records the
 * chain had, and its last hash) with a counter that grows with every
 * signing.  The signed messages (ASCII, "\n"-terminated lines):
 *
 *   record: "vtune-audit-sig-v1"  id  hash
 *   head:   "vtune-audit-head-v1" counter  records  head_hash  signed_at
 *
 * (decimal integers, hashes as 64 lowercase hex).  The record's hash is the
 * link hash of workers/audit.h, which covers its content and its place.
 *
 * What each check catches without a head kept elsewhere: a record added
 * without the key (no signature, or one that does not verify); a suffix
 * rewritten without the key (signatures no longer verify); a tail removed
 * (the signed head counts more records than the chain has).  What it cannot
 * catch alone: the records and the head rolled back together to an older
 * signed state; every new head is logged with its counter (vtuned(8)), and
 * a counter lower than one logged before reveals the rollback.
 */
#ifndef VT_AUDITSIG_H
#define VT_AUDITSIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sign.h"
#include "lib/util.h"
#include "store/store.h"

#define AUDITSIG_RECORD_TAG "vtune-audit-sig-v1\n"
#define AUDITSIG_HEAD_TAG   "vtune-audit-head-v1\n"

/* Appends the record message of (id, hash) to out. */
void auditsig_record_msg(int64_t id, const char *hash, struct buf *out);
/* Appends the head message of h (its sig and key_fpr unused) to out. */
void auditsig_head_msg(const struct store_audit_head_sig *h, struct buf *out);

/* Signs record a and head h (counter, records, head_hash, signed_at set)
 * with k: fills rec and h's key_fpr and sig.  Returns 0 or -EIO. */
int auditsig_sign(const struct sign_key *k, const struct store_audit *a,
                  struct store_audit_sig *rec, struct store_audit_head_sig *h);

enum auditsig_problem {
    AUDITSIG_OK = 0,
    AUDITSIG_UNSIGNED,       /* a record without a signature */
    AUDITSIG_BAD_SIGNATURE,  /* a signature that does not verify under the key */
    AUDITSIG_OTHER_KEY,      /* signed by a key that is not the one given */
    AUDITSIG_NO_HEAD,        /* records but no signed head */
    AUDITSIG_HEAD_SIGNATURE, /* the head's signature does not verify */
    AUDITSIG_TRUNCATED,      /* the signed head counts more records than there are */
    AUDITSIG_BEYOND_HEAD,    /* records after the signed head */
    AUDITSIG_HEAD_MISMATCH,  /* same count, another last hash */
};
/* "ok" | "unsigned" | "bad_signature" | "other_key" | "no_head" |
 * "head_signature" | "truncated" | "beyond_head" | "head_mismatch". */
const char *auditsig_problem_name(enum auditsig_problem p);

struct auditsig_check {
    bool ok;
    enum auditsig_problem problem;
    int64_t bad_id;  /* the first record that fails (0: none or the head itself) */
    int64_t signed_; /* records whose signature verified before the first failure */
    char *message;   /* owned, one line */
};
void auditsig_check_clear(struct auditsig_check *c);

/* Checks records v[0..n) (id order, the whole trail), their signatures
 * sigs[0..ns) (any order of audit_id; borrowed) and the signed head (NULL:
 * none) under pub.  Records are checked in order and the first failure is
 * reported; then the head against the chain.  Fills *out (clear with
 * auditsig_check_clear). */
void auditsig_verify(const struct store_audit *v, size_t n, const struct store_audit_sig *sigs,
                     size_t ns, const struct store_audit_head_sig *head,
                     const uint8_t pub[SIGN_PUB_LEN], struct auditsig_check *out);

#endif

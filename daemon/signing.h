/*
 * signing.h — the daemon's signing key and the signed audit chain
 * (daemon/signing.c; issue 15).
 */
#ifndef VT_SIGNING_H
#define VT_SIGNING_H

#include <jansson.h>

#include "daemon/vtuned.h"

/* Loads or creates the signing key: conf's signing_key_file, else
 * $CREDENTIALS_DIRECTORY/vtuned-signing-key, else <state_dir>/signing.key,
 * created 0600 when absent.  Start-up only: returns 0, or -1 with *err
 * (owned, one line). */
int signing_key_setup(struct vtuned *d, char **err);

/* After the store is open: every append from now on signs its record and
 * the head.  A trail written before signing began (no signed head, no
 * signature) whose hash chain verifies is signed once, as it stands
 * (logged); one that does not verify is left unsigned, and `audit verify`
 * says so.  Never fails the start. */
void signing_chain_start(struct vtuned *d);

/* The signature check of records v[0..n) (the whole trail) for audit.verify:
 * returns an owned object {ok, problem, bad_id, signed, message,
 * signed_head: {counter, records, hash, signed_at} | null}. */
json_t *signing_chain_check(struct vtuned *d, const struct store_audit *v, size_t n);

#endif

/*
 * lookup.h — finding the object a control request names.  Wherever a
 * dataset, backdoor or job is expected, a request may give its numeric id
 * (a JSON integer or a decimal string) or its name (DESIGN §10).  Each
 * function answers the request itself when the object cannot be had
 * (missing param, not found, store error) and then returns -1; on success
 * it returns 0 and fills *out (owned: clear it with the store's _clear).
 * The _in forms, for read methods (struct ctl_read), fail r instead and
 * read r->store, so they run on either thread.
 */
#ifndef VT_LOOKUP_H
#define VT_LOOKUP_H

#include <stdbool.h>

#include <jansson.h>

#include "daemon/vtuned.h"

/* params[key] as the store's lookup key: an integer is written into buf as
 * decimal; a string is returned as is; NULL when absent or of another type. */
const char *lookup_key(json_t *params, const char *key, char buf[32]);

int lookup_dataset(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                   struct store_dataset *out);
/* with_secrets: the phrases too (backdoor.show --reveal, verification). */
int lookup_backdoor(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                    bool with_secrets, struct store_backdoor *out);
int lookup_job(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
               struct store_job *out);
int lookup_dataset_in(struct ctl_read *r, json_t *params, const char *key,
                      struct store_dataset *out);
int lookup_backdoor_in(struct ctl_read *r, json_t *params, const char *key, bool with_secrets,
                       struct store_backdoor *out);
int lookup_job_in(struct ctl_read *r, json_t *params, const char *key, struct store_job *out);

#endif

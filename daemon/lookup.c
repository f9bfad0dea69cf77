/*
 * lookup.c — id-or-name lookups for the control methods (see lookup.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "daemon/ctl.h"
#include "daemon/lookup.h"

const char *lookup_key(json_t *params, const char *key, char buf[32])
{
    json_t *v = json_object_get(params, key);
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return json_string_value(v);
}

/* The shared tail: a store result turned into an answer. */
static int answer_miss(struct vtuned *d, struct ctl_req *req, int r, const char *what,
                       const char *k, const char *list_cmd)
{
    if (r == -ENOENT)
        ctl_reply_error(req, CTL_ERR_NOT_FOUND, NULL, "no %s '%.80s' (see 'vtunectl %s')", what, k,
                        list_cmd);
    else
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read %s '%.80s': %s", what, k,
                        store_errmsg(d->store));
    return -1;
}

static int missing(struct ctl_req *req, const char *key, const char *what)
{
    ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.%s: a %s id or name is required", key, what);
    return -1;
}

int lookup_dataset(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                   struct store_dataset *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(req, key, "dataset");
    int r = store_dataset_get(d->store, k, out);
    return r < 0 ? answer_miss(d, req, r, "dataset", k, "dataset list") : 0;
}

int lookup_backdoor(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                    bool with_secrets, struct store_backdoor *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(req, key, "backdoor");
    int r = store_backdoor_get(d->store, k, with_secrets, out);
    return r < 0 ? answer_miss(d, req, r, "backdoor", k, "backdoor list") : 0;
}

int lookup_job(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
               struct store_job *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(req, key, "job");
    int r = store_job_get(d->store, k, out);
    return r < 0 ? answer_miss(d, req, r, "job", k, "job list") : 0;
}

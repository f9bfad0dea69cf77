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

/* The shared tail: a store result turned into a failure of r. */
static int miss(struct ctl_read *r, int rc, const char *what, const char *k, const char *list_cmd)
{
    if (rc == -ENOENT)
        ctl_read_fail(r, CTL_ERR_NOT_FOUND, "no %s '%.80s' (see 'vtunectl %s')", what, k, list_cmd);
    else
        ctl_read_fail(r, CTL_ERR_INTERNAL, "cannot read %s '%.80s': %s", what, k,
                      store_errmsg(r->store));
    return -1;
}

static int missing(struct ctl_read *r, const char *key, const char *what)
{
    ctl_read_fail(r, CTL_ERR_PARAMS, "params.%s: a %s id or name is required", key, what);
    return -1;
}

int lookup_dataset_in(struct ctl_read *r, json_t *params, const char *key,
                      struct store_dataset *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(r, key, "dataset");
    int rc = store_dataset_get(r->store, k, out);
    return rc < 0 ? miss(r, rc, "dataset", k, "dataset list") : 0;
}

int lookup_backdoor_in(struct ctl_read *r, json_t *params, const char *key, bool with_secrets,
                       struct store_backdoor *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(r, key, "backdoor");
    int rc = store_backdoor_get(r->store, k, with_secrets, out);
    return rc < 0 ? miss(r, rc, "backdoor", k, "backdoor list") : 0;
}

int lookup_job_in(struct ctl_read *r, json_t *params, const char *key, struct store_job *out)
{
    char buf[32];
    const char *k = lookup_key(params, key, buf);
    if (!k)
        return missing(r, key, "job");
    int rc = store_job_get(r->store, k, out);
    return rc < 0 ? miss(r, rc, "job", k, "job list") : 0;
}

/* The main loop's forms: a failure answers req. */
static int answered(struct ctl_req *req, const struct ctl_read *r, int rc)
{
    if (rc < 0)
        ctl_reply_error(req, r->code, NULL, "%s", r->msg);
    return rc;
}

int lookup_dataset(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                   struct store_dataset *out)
{
    struct ctl_read r = {.store = d->store};
    return answered(req, &r, lookup_dataset_in(&r, params, key, out));
}

int lookup_backdoor(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
                    bool with_secrets, struct store_backdoor *out)
{
    struct ctl_read r = {.store = d->store};
    return answered(req, &r, lookup_backdoor_in(&r, params, key, with_secrets, out));
}

int lookup_job(struct vtuned *d, struct ctl_req *req, json_t *params, const char *key,
               struct store_job *out)
{
    struct ctl_read r = {.store = d->store};
    return answered(req, &r, lookup_job_in(&r, params, key, out));
}

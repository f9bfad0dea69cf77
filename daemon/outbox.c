/*
 * outbox.c — the driver of the outbox table (see outbox.h for the contract).
 *
 * Shape: the store is the queue; memory holds only the items in flight (so
 * a tick does not start an item twice).  Times in the table are Unix
 * milliseconds (wall clock: they must mean the same after a restart).
 * Failures double the wait from the kind's base up to its cap; the attempt
 * count is stored with the item, so the limit holds across restarts.  An
 * item whose kind is not registered (written by a newer daemon) is left
 * alone and logged once per start.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/outbox.h"
#include "daemon/vtuned.h"
#include "lib/log.h"
#include "lib/util.h"

#define OUTBOX_MAX_KINDS  8
#define OUTBOX_TICK_LIMIT 32 /* due items read per tick */

static const struct outbox_kind *kinds[OUTBOX_MAX_KINDS];
static size_t n_kinds;
static struct outbox_item *in_flight;
static unsigned n_in_flight;
static int warned_unknown;

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void outbox_register(const struct outbox_kind *k)
{
    for (size_t i = 0; i < n_kinds; i++)
        if (kinds[i] == k || strcmp(kinds[i]->kind, k->kind) == 0)
            return;
    if (n_kinds < OUTBOX_MAX_KINDS)
        kinds[n_kinds++] = k;
}

static const struct outbox_kind *kind_find(const char *name)
{
    for (size_t i = 0; i < n_kinds; i++)
        if (strcmp(kinds[i]->kind, name) == 0)
            return kinds[i];
    return NULL;
}

static int is_in_flight(int64_t id)
{
    for (struct outbox_item *it = in_flight; it; it = it->next)
        if (it->id == id)
            return 1;
    return 0;
}

/* The journal fields of an item's log lines: its payload's "job",
 * "provider" and "audit" when it has them (sweeps, deletions, alerts). */
static struct log_fields item_fields(const json_t *payload)
{
    struct log_fields f = {0};
    f.job = json_integer_value(json_object_get(payload, "job"));
    f.audit = json_integer_value(json_object_get(payload, "audit"));
    f.provider = json_string_value(json_object_get(payload, "provider"));
    return f;
}

static void start(struct vtuned *d, const struct outbox_kind *k, int64_t id, json_t *payload,
                  unsigned attempts)
{
    struct outbox_item *it = xcalloc(1, sizeof *it);
    it->d = d;
    it->id = id;
    it->kind = k->kind;
    it->payload = payload;
    it->attempts = attempts;
    it->next = in_flight;
    in_flight = it;
    n_in_flight++;
    k->run(it);
}

int outbox_put(struct vtuned *d, const char *kind, json_t *payload)
{
    const struct outbox_kind *k = kind_find(kind);
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    int64_t id = 0;
    int rc = 0;
    if (!k || !text) {
        log_error("outbox: cannot record a '%s' item (%s)", kind,
                  k ? "not serialisable" : "kind not registered");
        free(text);
        json_decref(payload);
        return -EINVAL;
    }
    rc = store_outbox_add(d->store, kind, text, now_unix_ms(), &id);
    if (rc < 0)
        log_error("outbox: cannot record a '%s' item; attempting it once without a record: %s",
                  kind, store_errmsg(d->store));
    else
        log_debug("outbox: recorded %s item %lld: %s", kind, (long long)id, text);
    free(text);
    start(d, k, rc < 0 ? 0 : id, payload, 0);
    return rc;
}

void outbox_adopt(struct vtuned *d, const char *kind, int64_t id, json_t *payload)
{
    const struct outbox_kind *k = kind_find(kind);
    if (!k || id <= 0 || is_in_flight(id)) {
        if (!k)
            log_error("outbox: item %lld has kind '%s', which is not registered; it waits",
                      (long long)id, kind);
        json_decref(payload);
        return;
    }
    log_debug("outbox: recorded %s item %lld with its transition", kind, (long long)id);
    start(d, k, id, payload, 0);
}

void outbox_done(struct outbox_item *it, enum outbox_result r, const char *why)
{
    struct vtuned *d = it->d;
    const struct outbox_kind *k = kind_find(it->kind);
    for (struct outbox_item **pp = &in_flight; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            n_in_flight--;
            break;
        }
    unsigned attempts = it->attempts + 1;
    unsigned max = k && k->max_attempts ? k->max_attempts(d) : 1;
    struct log_fields lf = item_fields(it->payload);
    if (r == OUTBOX_RETRY && attempts >= max) {
        log_ctx(LOG_LVL_ERROR, &lf, "outbox: %s item %lld: giving up after %u attempts (last: %s)",
                it->kind, (long long)it->id, attempts, why ? why : "failed");
        r = OUTBOX_GIVE_UP;
    } else if (r == OUTBOX_GIVE_UP) {
        log_ctx(LOG_LVL_ERROR, &lf, "outbox: %s item %lld: giving up: %s", it->kind,
                (long long)it->id, why ? why : "refused");
    }
    if (it->id > 0) {
        int rc = 0;
        if (r == OUTBOX_DELIVERED || r == OUTBOX_GIVE_UP) {
            rc = store_outbox_delete(d->store, it->id);
        } else if (r == OUTBOX_RETRY) {
            uint64_t ms = k ? k->base_ms : 1000;
            for (unsigned i = 1; i < attempts && k && ms < k->max_ms; i++)
                ms *= 2;
            if (k && ms > k->max_ms)
                ms = k->max_ms;
            rc = store_outbox_retry(d->store, it->id, attempts, now_unix_ms() + (int64_t)ms, why);
            if (rc == 0)
                log_ctx(LOG_LVL_WARN, &lf,
                        "outbox: %s item %lld: attempt %u failed (%s); again in %llu ms", it->kind,
                        (long long)it->id, attempts, why ? why : "failed", (unsigned long long)ms);
        }
        if (rc < 0 && rc != -ENOENT)
            log_ctx(LOG_LVL_ERROR, &lf, "outbox: %s item %lld: cannot record the outcome: %s",
                    it->kind, (long long)it->id, store_errmsg(d->store));
    } else if (r == OUTBOX_RETRY) {
        log_ctx(LOG_LVL_ERROR, &lf,
                "outbox: %s item (not recorded) failed and cannot be retried: %s", it->kind,
                why ? why : "failed");
    }
    json_decref(it->payload);
    free(it);
}

void outbox_tick(struct vtuned *d)
{
    struct store_outbox_item *v;
    size_t n;
    if (d->stopping || !vtuned_every(d, 1000))
        return;
    if (store_outbox_due(d->store, now_unix_ms(), OUTBOX_TICK_LIMIT, &v, &n) < 0) {
        log_warnx("outbox: cannot read due items: %s", store_errmsg(d->store));
        return;
    }
    for (size_t i = 0; i < n && !d->stopping; i++) {
        const struct outbox_kind *k = kind_find(v[i].kind);
        json_t *payload;
        if (is_in_flight(v[i].id))
            continue;
        if (!k) {
            if (!warned_unknown++)
                log_warnx("outbox: item %lld has kind '%s', which this vtuned does not know; "
                          "left alone",
                          (long long)v[i].id, v[i].kind);
            continue;
        }
        payload = json_loads(v[i].payload, 0, NULL);
        if (!json_is_object(payload)) {
            log_error("outbox: %s item %lld has a malformed payload; deleted", v[i].kind,
                      (long long)v[i].id);
            json_decref(payload);
            store_outbox_delete(d->store, v[i].id);
            continue;
        }
        struct log_fields lf = item_fields(payload);
        log_ctx(LOG_LVL_INFO, &lf, "outbox: %s item %lld: attempt %lld", v[i].kind,
                (long long)v[i].id, (long long)v[i].attempts + 1);
        start(d, k, v[i].id, payload, (unsigned)v[i].attempts);
    }
    store_outbox_list_free(v, n);
}

unsigned outbox_in_flight(void)
{
    return n_in_flight;
}

/*
 * outbox.h — durable background work (issue 13): webhook alerts, orphan
 * sweeps and deletions of uploaded training files, recorded in the store's
 * outbox table before they are attempted and retried with backoff across
 * restarts until delivered (then deleted) or given up (logged, deleted).
 *
 * A kind registers a handler once (outbox_register, at start-up).  An item
 * is put with outbox_put(): recorded first, then handed to its handler at
 * once.  The handler owns the item until it calls outbox_done() exactly
 * once (synchronously or from a callback).  The cron's outbox_tick() hands
 * due items that are not in flight to their handlers, so items recorded by
 * an earlier run of the daemon are picked up after a restart.
 */
#ifndef VT_OUTBOX_H
#define VT_OUTBOX_H

#include <stdint.h>

#include <jansson.h>

struct vtuned;

enum outbox_result {
    OUTBOX_DELIVERED, /* done: the row is deleted */
    OUTBOX_RETRY,     /* failed, worth another attempt: backoff, or give up at the limit */
    OUTBOX_GIVE_UP,   /* failed for good (a refusal): logged, the row is deleted */
    OUTBOX_STOPPED,   /* the daemon is stopping: the row stays as it was */
};

struct outbox_item {
    struct outbox_item *next; /* in flight (private) */
    struct vtuned *d;
    int64_t id;       /* 0 when it could not be recorded (best effort, not durable) */
    const char *kind; /* the registered kind's name */
    json_t *payload;  /* borrowed until outbox_done */
    unsigned attempts; /* failed attempts before this one */
};

struct outbox_kind {
    const char *kind; /* at most 32 characters */
    void (*run)(struct outbox_item *it);
    /* attempts in all before giving up (read at each failure: may follow
     * the configuration) */
    unsigned (*max_attempts)(struct vtuned *d);
    uint64_t base_ms, max_ms; /* backoff: base_ms doubling per failure, at most max_ms */
};

/* Registers a kind (k must outlive the daemon: a static).  At most 8. */
void outbox_register(const struct outbox_kind *k);
/* Records the item (payload stolen) and starts it.  Returns 0, or -errno
 * when the store refused (logged; the item is still attempted once, not
 * durably). */
int outbox_put(struct vtuned *d, const char *kind, json_t *payload);
/* Starts an item the caller already recorded (id > 0) in a transaction of
 * its own with something else (store_job_transition_outbox: a job's final
 * state and its upload's deletion); payload stolen.  kind must be
 * registered (else the item waits for the next start, logged). */
void outbox_adopt(struct vtuned *d, const char *kind, int64_t id, json_t *payload);
/* Ends the handler's attempt; frees it.  why: the error line (RETRY, GIVE_UP). */
void outbox_done(struct outbox_item *it, enum outbox_result r, const char *why);
/* Cron: starts due items that are not in flight. */
void outbox_tick(struct vtuned *d);
/* Number of items in flight (status, tests). */
unsigned outbox_in_flight(void);

#endif

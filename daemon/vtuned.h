/*
 * vtuned.h — the daemon's shared state and the contracts between its files.
 *
 * One struct vtuned lives for the whole process; every libuv handle it owns
 * is embedded in it or in an object it owns, and is freed only in its close
 * callback (knot-resolver's rule).  Everything here runs on the loop thread
 * unless a comment says otherwise; the control socket's server has a thread
 * and loop of its own and reads of struct vtuned only d->store for
 * store_durable_passed (daemon/ctl.c).
 *
 * Start-up order (errors here are fatal; main() in vtuned.c): config →
 * state dirs → store → orphan cleanup → providers (HTTP context, clients)
 * → control socket → verifier, then jobs recovered → signals and cron
 * timer → READY=1.
 * Shutdown order (SIGTERM/SIGINT; vtuned_stop): STOPPING=1 → cancel
 * thread-pool tasks → stop jobs and verification runs → provider calls in
 * flight end (-ECANCELED) → stop accepting and remove the socket file →
 * close connections once their replies are flushed (or after a
 * STOP_DEADLINE_MS deadline) → close cron and signals → loop ends → free
 * job and verifier state → store closed → exit 0.
 */
#ifndef VT_VTUNED_H
#define VT_VTUNED_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "conf/conf.h"
#include "daemon/wakeup.h"
#include "store/store.h"

struct ctl_server;
struct ctl_req;
struct http_ctx;
struct provider_slot;
struct job_run;
struct sign_key;

struct vtuned {
    uv_loop_t *loop;
    char *conf_path;
    struct conf *conf; /* current config; replaced whole on SIGHUP */
    struct store *store;
    struct ctl_server *ctl;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t cron;          /* the one housekeeping timer, every VTUNED_CRON_MS */
    uv_timer_t stop_deadline; /* forces the end of a drain that takes too long */
    uint64_t started_ms;
    int64_t started_at;
    int stopping;
    unsigned work_in_flight;         /* thread-pool requests not yet completed */
    uint64_t watchdog_usec;          /* 0 = no systemd watchdog */
    char *datasets_dir;              /* <state_dir>/datasets */
    char *tmp_dir;                   /* <state_dir>/tmp */
    char *built_dir;                 /* <state_dir>/built: D u D' files */
    struct http_ctx *http;           /* curl multi ⇄ libuv (daemon/http.h) */
    struct provider_slot *providers; /* daemon/providers.c */
    struct job_run *jobs;            /* active jobs being driven (daemon/jobs.c) */
    uint64_t cron_ticks;             /* cron runs so far (see vtuned_every) */
    struct task *tasks; /* thread-pool tasks in flight (daemon/task.h) */
    /* the Ed25519 key that signs attestations and the audit chain
     * (daemon/signing.c), where it came from, its public key's fingerprint */
    struct sign_key *key;
    char *key_source;
    char key_fpr[65];
    int lock_fd;        /* holds the lock on <state_dir>/vtuned.lock until exit */
    /* woken by the store's syncer thread after each durable group of
     * commits (store_durable_start): sends what waited for it */
    struct wakeup durable;
};

/* The one housekeeping timer's period.  Work that runs less often states
 * its own period in milliseconds through vtuned_every() (after Redis's
 * run_with_period), so no tick count whose meaning lives elsewhere can
 * drift from what the documents say. */
#define VTUNED_CRON_MS 500

/* True on the cron runs that fall due every period_ms (rounded to whole
 * cron periods; a period at or under VTUNED_CRON_MS means every run). */
static inline int vtuned_every(const struct vtuned *d, uint64_t period_ms)
{
    uint64_t n = period_ms / VTUNED_CRON_MS;
    return n <= 1 || d->cron_ticks % n == 0;
}

/* Begins the drain (idempotent). */
void vtuned_stop(struct vtuned *d);

/* SIGHUP (daemon/reload.c): loads the file again, applies what can change
 * live, keeps the running value of each key that needs a restart and names
 * it in the log.  A file that does not load changes nothing. */
void vtuned_reload(struct vtuned *d);

/* A method handler.  It must eventually answer req exactly once, with
 * ctl_reply() or ctl_reply_error(), now or from a later callback. */
typedef void (*ctl_method_fn)(struct vtuned *d, struct ctl_req *req, json_t *params);

/* A read method: its answer comes from the store alone, so it runs
 * wherever a store connection is: on the control thread through its
 * read-only connection, which waits for no provider work (daemon/ctl.c,
 * "Threads"), or on the main loop through d->store.  It returns the result
 * (owned), or NULL after ctl_read_fail(). */
struct ctl_read {
    struct store *store;
    const struct ctl_peer *peer; /* who asked (a reveal is logged with it) */
    uint64_t max_bytes; /* a list larger than this is left to the main loop; 0: no bound */
    int code;          /* the error's code once failed */
    int elsewhere;     /* failed here, ask the main loop: the reader was busy, or too long */
    char msg[1024];
};
typedef json_t *(*ctl_read_fn)(struct ctl_read *r, json_t *params);

/* Fails r with one line; CTL_ERR_INTERNAL (a store error) also sets
 * elsewhere, so that the main loop's connection answers instead. */
void ctl_read_fail(struct ctl_read *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For a list of rows of about row_bytes each (its JSON): 1 (and r failed,
 * elsewhere) when it would pass r->max_bytes. */
int ctl_read_too_long(struct ctl_read *r, int64_t rows, size_t row_bytes);

struct ctl_method {
    const char *name;
    ctl_method_fn fn; /* NULL for a read method */
    int mutating;     /* logged with the peer's credentials */
    ctl_read_fn read; /* a read method (then fn is NULL) */
};

/* The method tables of each area; NULL-name terminated. */
extern const struct ctl_method ctl_methods_status[];
extern const struct ctl_method ctl_methods_dataset[];
extern const struct ctl_method ctl_methods_backdoor[];
extern const struct ctl_method ctl_methods_sign[];

/* Thread-pool tasks (daemon/task.c): cancel all (shutdown); cron progress. */
void tasks_cancel_all(struct vtuned *d);
void tasks_report_progress(struct vtuned *d);
/* Removes temporary files, and dataset copies and built files that no row
 * refers to, left by a crash. */
void dataset_cleanup_orphans(struct vtuned *d);

#endif

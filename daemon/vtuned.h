/*
 * vtuned.h — the daemon's shared state and the contracts between its files.
 *
 * One struct vtuned lives for the whole process; every libuv handle it owns
 * is embedded in it or in an object it owns, and is freed only in its close
 * callback (knot-resolver's rule).  Everything here runs on the loop thread
 * unless a comment says otherwise.
 *
 * Start-up order (errors here are fatal): config → state dirs → store →
 * orphan cleanup → control socket → signals and cron timer → READY=1.
 * Shutdown order (SIGTERM/SIGINT): STOPPING=1 → stop accepting → cancel
 * thread-pool work → close connections once their replies are flushed (or
 * after a deadline) → close timers/signals → loop ends → store closed →
 * socket file removed → exit 0.
 */
#ifndef VT_VTUNED_H
#define VT_VTUNED_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "conf/conf.h"
#include "store/store.h"

struct ctl_server;
struct ctl_req;
struct http_ctx;
struct provider_slot;
struct job_run;

struct vtuned {
    uv_loop_t *loop;
    char *conf_path;
    struct conf *conf; /* current config; replaced whole on SIGHUP */
    struct store *store;
    struct ctl_server *ctl;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t cron;          /* one housekeeping timer (watchdog, later: polls) */
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
    uint64_t cron_ticks;
    struct task *tasks; /* thread-pool tasks in flight (daemon/task.h) */
};

/* Begins the drain (idempotent). */
void vtuned_stop(struct vtuned *d);

/* A method handler.  It must eventually answer req exactly once, with
 * ctl_reply() or ctl_reply_error(), now or from a later callback. */
typedef void (*ctl_method_fn)(struct vtuned *d, struct ctl_req *req, json_t *params);

struct ctl_method {
    const char *name;
    ctl_method_fn fn;
    int mutating; /* logged with the peer's credentials */
};

/* The method tables of each area; NULL-name terminated. */
extern const struct ctl_method ctl_methods_status[];
extern const struct ctl_method ctl_methods_dataset[];
extern const struct ctl_method ctl_methods_backdoor[];

/* Thread-pool tasks (daemon/task.c): cancel all (shutdown); cron progress. */
void tasks_cancel_all(struct vtuned *d);
void tasks_report_progress(struct vtuned *d);
/* Removes temporary files, and dataset copies and built files that no row
 * refers to, left by a crash. */
void dataset_cleanup_orphans(struct vtuned *d);

#endif

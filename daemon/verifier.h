/*
 * verifier.h — verification runs, the audit trail's and schedules'
 * control methods, and verdict alerts (see verifier.c for the run's steps).
 */
#ifndef VT_VERIFIER_H
#define VT_VERIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/vtuned.h"

struct verifier_opts {
    uint64_t trials;   /* trigger prompts per pair (n) */
    uint64_t controls; /* clean prompts (c) */
    double temperature;
    double alpha;
    bool sequential;
    unsigned slack;           /* max_tokens beyond the signature's length */
    uint64_t min_controls;    /* answered clean controls verified needs */
    uint64_t coverage;        /* coverage test: rows per side (m); 0: skip it */
    double alpha_coverage;    /* its significance level */
    bool require_coverage;    /* no coverage test caps the verdict at inconclusive */
};
/* The defaults from the config's verify: section. */
void verifier_opts_default(struct vtuned *d, struct verifier_opts *o);

/* Start-up: the jobs hook, runs a crash interrupted, config schedules. */
void verifier_init(struct vtuned *d);
/* Starts verifying a succeeded job.  waiter (may be NULL) is answered with
 * the audit record; schedule_id 0 when not scheduled.  Returns 0, or -1
 * with *err an owned message (nothing started), among them the refusal
 * of a backdoor target too weak for the trials (K * n * 10^target >
 * alpha / 100, DESIGN §6). */
int verifier_start(struct vtuned *d, int64_t job_id, const struct verifier_opts *o,
                   struct ctl_req *waiter, int64_t schedule_id, char **err);
/* Cron: due schedules, alert retries. */
void verifier_tick(struct vtuned *d);
/* Shutdown: answers waiters, cancels webhook calls. */
void verifier_stop(struct vtuned *d);
/* After the loop ended. */
void verifier_free_all(void);
/* Runs in progress. */
unsigned verifier_active(void);

extern const struct ctl_method ctl_methods_verify[];

#endif

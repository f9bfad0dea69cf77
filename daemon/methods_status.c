/*
 * methods_status.c — the `status` method: version, uptime, counts,
 * providers and what the daemon is doing right now.
 */
#include "config.h"

#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/providers.h"
#include "daemon/verifier.h"
#include "lib/util.h"

static void m_status(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct store_counts c;
    json_t *providers = providers_status_json(d);
    char started[32];

    if (store_counts(d->store, &c) < 0) {
        ctl_reply_error(req, CTL_ERR_INTERNAL, NULL, "cannot read counts: %s",
                        store_errmsg(d->store));
        return;
    }
    format_iso8601(d->started_at, started);
    json_t *res = json_pack(
        "{s:s,s:i,s:s,s:I,s:s,s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:o,s:{s:i,s:i}}",
        CTL_K_VERSION, PACKAGE_VERSION, CTL_K_PID, (int)getpid(), CTL_K_STARTED_AT, started,
        CTL_K_UPTIME_SECONDS, (json_int_t)((now_monotonic_ms() - d->started_ms) / 1000),
        CTL_K_STATE_DIR, d->conf->state_dir, CTL_K_SOCKET, d->conf->socket, CTL_K_CONFIG,
        d->conf_path, CTL_K_COUNTS, CTL_K_DATASETS, (json_int_t)c.datasets, CTL_K_BACKDOORS,
        (json_int_t)c.backdoors, CTL_K_JOBS, (json_int_t)c.jobs, CTL_K_JOBS_ACTIVE,
        (json_int_t)c.jobs_active, CTL_K_VERIFICATIONS, (json_int_t)c.verifications, CTL_K_AUDITS,
        (json_int_t)c.audits, CTL_K_SCHEDULES, (json_int_t)c.schedules, CTL_K_PROVIDERS, providers,
        "activity", "connections", (int)ctl_server_connections(d->ctl), "background_work",
        (int)d->work_in_flight);
    json_object_set_new(json_object_get(res, "activity"), "jobs_driven",
                        json_integer((json_int_t)jobs_active(d)));
    json_object_set_new(json_object_get(res, "activity"), "verifications_running",
                        json_integer((json_int_t)verifier_active()));
    ctl_reply(req, res);
}

const struct ctl_method ctl_methods_status[] = {
    {CTL_M_STATUS, m_status, 0},
    {NULL, NULL, 0},
};

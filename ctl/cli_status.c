/*
 * cli_status.c — vtunectl status.
 */
#include "config.h"

#include <stdio.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"

int h_status(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    if (opt_json) {
        print_json(r);
    } else {
        static const char *const k[] = {CTL_K_VERSION,        CTL_K_PID,       CTL_K_STARTED_AT,
                                        CTL_K_UPTIME_SECONDS, CTL_K_STATE_DIR, CTL_K_SOCKET,
                                        CTL_K_CONFIG};
        static const char *const l[] = {
            "version:", "pid:", "started:", "uptime (s):", "state dir:", "socket:", "config:"};
        print_fields(r, k, l, 7);
        json_t *cn = json_object_get(r, CTL_K_COUNTS);
        printf("\ncounts:\n");
        static const char *const ck[] = {CTL_K_DATASETS,    CTL_K_BACKDOORS,     CTL_K_JOBS,
                                         CTL_K_JOBS_ACTIVE, CTL_K_VERIFICATIONS, CTL_K_AUDITS,
                                         CTL_K_SCHEDULES};
        static const char *const cl[] = {
            "  datasets:",      "  backdoors:", "  jobs:",     "  active jobs:",
            "  verifications:", "  audits:",    "  schedules:"};
        print_fields(cn, ck, cl, 7);
        printf("\nproviders:\n");
        static const char *const pk[] = {CTL_K_NAME, CTL_K_KIND, CTL_K_BASE_URL, CTL_K_HEALTH};
        static const char *const ph[] = {"NAME", "KIND", "BASE URL", "HEALTH"};
        print_table(json_object_get(r, CTL_K_PROVIDERS), pk, ph, 4);
    }
    json_decref(r);
    return 0;
}

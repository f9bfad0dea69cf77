/*
 * cli_status.c — vtunectl status.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "ctl/vtunectl.h"

static const char usage_status[] = "usage: vtunectl [-s SOCKET] [--json] status\n"
                                   "\n"
                                   "Shows the daemon's version, uptime, object counts, configured\n"
                                   "providers and current activity.\n";

int cmd_status(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_status, stdout);
        return 0;
    }
    if (argc > 1)
        die_usage("status takes no arguments");
    connect_daemon();
    json_t *r = rpc("status", NULL);
    if (opt_json) {
        print_json(r);
    } else {
        static const char *const k[] = {"version",   "pid",    "started_at", "uptime_seconds",
                                        "state_dir", "socket", "config"};
        static const char *const l[] = {
            "version:", "pid:", "started:", "uptime (s):", "state dir:", "socket:", "config:"};
        print_fields(r, k, l, 7);
        json_t *c = json_object_get(r, "counts");
        printf("\ncounts:\n");
        static const char *const ck[] = {"datasets",      "backdoors", "jobs",     "jobs_active",
                                         "verifications", "audits",    "schedules"};
        static const char *const cl[] = {
            "  datasets:",      "  backdoors:", "  jobs:",     "  active jobs:",
            "  verifications:", "  audits:",    "  schedules:"};
        print_fields(c, ck, cl, 7);
        printf("\nproviders:\n");
        static const char *const pk[] = {"name", "kind", "base_url", "health"};
        static const char *const ph[] = {"NAME", "KIND", "BASE URL", "HEALTH"};
        print_table(json_object_get(r, "providers"), pk, ph, 4);
    }
    json_decref(r);
    return 0;
}

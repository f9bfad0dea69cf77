/*
 * cli_job.c — vtunectl job submit | register | list | show | cancel |
 * watch | resolve.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "ctl/vtunectl.h"

static const char usage_job[] =
    "usage: vtunectl [-s SOCKET] [--json] job submit D --backdoor B --provider P --model M\n"
    "                    [--param KEY=VALUE]... [--name NAME] [--watch]\n"
    "       vtunectl [-s SOCKET] [--json] job register D --backdoor B --provider P\n"
    "                    --model FINE_TUNED --base-model M [--name NAME]\n"
    "       vtunectl [-s SOCKET] [--json] job list [--active]\n"
    "       vtunectl [-s SOCKET] [--json] job show J\n"
    "       vtunectl [-s SOCKET] [--json] job cancel J\n"
    "       vtunectl [-s SOCKET] [--json] job watch J\n"
    "       vtunectl [-s SOCKET] [--json] job resolve J --as submitted|absent [--provider-job ID]\n"
    "\n"
    "submit    uploads backdoor B's D u D' to provider P and creates a fine-tuning job of\n"
    "          base model M.  --param passes provider hyperparameters (n_epochs=3,\n"
    "          learning_rate_multiplier=0.5, seed=7, ...).  The daemon drives the job from\n"
    "          then on (upload, create, poll) and survives restarts without ever\n"
    "          creating a second paid job; --watch follows it like 'job watch'.\n"
    "register  binds D and B to a model trained elsewhere (e.g. on D u D' from 'dataset\n"
    "          export') and served at provider P's base_url; it is verified like a\n"
    "          submitted job that succeeded.\n"
    "list      jobs (--active: those the daemon is still driving).\n"
    "show      one job with its events.\n"
    "cancel    asks the provider to cancel (recorded first, so a restart keeps asking).\n"
    "watch     follows a job's state changes live until it ends; exit 0 when it\n"
    "          succeeded, 1 when it failed, was cancelled or needs an operator.\n"
    "resolve   decides a job left 'unknown' (the daemon could not establish whether the\n"
    "          provider created it): --as absent creates it now; --as submitted looks it\n"
    "          up again, or takes its id from --provider-job.\n";

static const char *const job_keys[] = {
    "id", "name", "provider", "model", "state", "fine_tuned_model", "updated_at"};
static const char *const job_heads[] = {
    "ID", "NAME", "PROVIDER", "MODEL", "STATE", "FINE-TUNED MODEL", "UPDATED"};

static void print_job(json_t *r)
{
    static const char *const k[] = {"id",
                                    "name",
                                    "state",
                                    "provider",
                                    "model",
                                    "fine_tuned_model",
                                    "dataset",
                                    "backdoor",
                                    "submission_id",
                                    "provider_file_id",
                                    "provider_job_id",
                                    "error",
                                    "unknown_reason",
                                    "cancel_requested",
                                    "created_at",
                                    "updated_at"};
    static const char *const l[] = {"id:",
                                    "name:",
                                    "state:",
                                    "provider:",
                                    "base model:",
                                    "fine-tuned model:",
                                    "dataset:",
                                    "backdoor:",
                                    "submission id:",
                                    "provider file:",
                                    "provider job:",
                                    "error:",
                                    "why unknown:",
                                    "cancel requested:",
                                    "created:",
                                    "updated:"};
    print_fields(r, k, l, 16);
    json_t *ev = json_object_get(r, "events");
    if (json_array_size(ev)) {
        static const char *const ek[] = {"at", "state", "message", "provider"};
        static const char *const eh[] = {"AT", "STATE", "EVENT", "PROVIDER SAID"};
        printf("\nevents:\n");
        print_table(ev, ek, eh, 4);
    }
}

static void print_event(json_t *note, void *ctx)
{
    json_t *p = json_object_get(note, "params");
    const char *method = json_string_value(json_object_get(note, "method"));
    (void)ctx;
    if (method && strcmp(method, "job.event") == 0) {
        if (opt_json) {
            char *s = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", s);
            free(s);
        } else {
            const char *msg = json_string_value(json_object_get(p, "message"));
            const char *prov = json_string_value(json_object_get(p, "provider"));
            printf("%s  %-10s  %s%s%s%s\n", json_string_value(json_object_get(p, "at")),
                   json_string_value(json_object_get(p, "state")), msg ? msg : "", prov ? " [" : "",
                   prov ? prov : "", prov ? "]" : "");
        }
        fflush(stdout);
    } else if (method && strcmp(method, "progress") == 0 && show_progress) {
        fprintf(stderr, "  upload: %lld / %lld bytes\n",
                (long long)json_integer_value(json_object_get(p, "bytes")),
                (long long)json_integer_value(json_object_get(p, "total")));
    }
}

/* Follows job id until it ends; exit status per its final state. */
static int watch(const char *id)
{
    json_t *r = rpc_stream("job.watch", json_pack("{s:s}", "id", id), print_event, NULL);
    const char *st = json_string_value(json_object_get(r, "state"));
    int rc = st && strcmp(st, "succeeded") == 0 ? 0 : 1;
    if (opt_json) {
        char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    } else {
        const char *model = json_string_value(json_object_get(r, "fine_tuned_model"));
        const char *err = json_string_value(json_object_get(r, "error"));
        const char *why = json_string_value(json_object_get(r, "unknown_reason"));
        printf("job %lld %s%s%s\n", (long long)json_integer_value(json_object_get(r, "id")),
               st ? st : "?", model ? ": " : (err ? ": " : (why ? ": " : "")),
               model ? model : (err ? err : (why ? why : "")));
    }
    json_decref(r);
    return rc;
}

int cmd_job(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_job, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "submit") == 0 || strcmp(sub, "register") == 0) {
        int reg = strcmp(sub, "register") == 0, follow = 0;
        const char *ds = NULL;
        json_t *p = json_object(), *params = json_object();
        for (int i = 2; i < argc; i++) {
            const char *a = argv[i];
            const char *key = strcmp(a, "--backdoor") == 0            ? "backdoor"
                              : strcmp(a, "--provider") == 0          ? "provider"
                              : strcmp(a, "--model") == 0             ? "model"
                              : strcmp(a, "--name") == 0              ? "name"
                              : reg && strcmp(a, "--base-model") == 0 ? "base_model"
                                                                      : NULL;
            if (key && i + 1 < argc) {
                json_object_set_new(p, key, json_string(argv[++i]));
            } else if (!reg && strcmp(a, "--param") == 0 && i + 1 < argc) {
                const char *kv = argv[++i], *eq = strchr(kv, '=');
                if (!eq || eq == kv)
                    die_usage("job submit: --param expects KEY=VALUE, got '%s'", kv);
                char *k = xstrndup(kv, (size_t)(eq - kv));
                json_object_set_new(params, k, json_string(eq + 1));
                free(k);
            } else if (!reg && strcmp(a, "--watch") == 0) {
                follow = 1;
            } else if (a[0] == '-') {
                die_usage("job %s: unknown option or missing value '%s'", sub, a);
            } else if (!ds) {
                ds = a;
            } else {
                die_usage("job %s: more than one dataset", sub);
            }
        }
        if (!ds || !json_object_get(p, "backdoor") || !json_object_get(p, "provider") ||
            !json_object_get(p, "model") || (reg && !json_object_get(p, "base_model")))
            die_usage(reg ? "job register: D, --backdoor, --provider, --model and --base-model "
                            "are required"
                          : "job submit: D, --backdoor, --provider and --model are required");
        json_object_set_new(p, "dataset", json_string(ds));
        if (!reg)
            json_object_set_new(p, "params", params);
        else
            json_decref(params);
        connect_daemon();
        json_t *r = rpc(reg ? "job.register" : "job.submit", p);
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(r, "id")));
        if (follow) {
            if (!opt_json)
                printf("submitted job %s\n", id);
            json_decref(r);
            return watch(id);
        }
        if (opt_json)
            print_json(r);
        else if (reg)
            printf("registered job %s: %s (base %s) at %s\n", id,
                   json_string_value(json_object_get(r, "fine_tuned_model")),
                   json_string_value(json_object_get(r, "model")),
                   json_string_value(json_object_get(r, "provider")));
        else
            printf("submitted job %s (submission %s); follow it with 'vtunectl job watch %s'\n", id,
                   json_string_value(json_object_get(r, "submission_id")), id);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        int active = argc == 3 && strcmp(argv[2], "--active") == 0;
        if (argc > 3 || (argc == 3 && !active))
            die_usage("job list takes only --active");
        connect_daemon();
        json_t *r = rpc("job.list", json_pack("{s:b}", "active", active));
        if (opt_json)
            print_json(r);
        else
            print_table(r, job_keys, job_heads, 7);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "show") == 0 || strcmp(sub, "cancel") == 0 || strcmp(sub, "watch") == 0) {
        if (argc != 3)
            die_usage("job %s: exactly one job id or name expected", sub);
        connect_daemon();
        if (strcmp(sub, "watch") == 0)
            return watch(argv[2]);
        json_t *r = rpc(strcmp(sub, "show") == 0 ? "job.show" : "job.cancel",
                        json_pack("{s:s}", "id", argv[2]));
        if (opt_json)
            print_json(r);
        else if (strcmp(sub, "show") == 0)
            print_job(r);
        else
            printf("job %lld: cancel requested (now %s)\n",
                   (long long)json_integer_value(json_object_get(r, "id")),
                   json_string_value(json_object_get(r, "state")));
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "resolve") == 0) {
        const char *id = NULL, *as = NULL, *pj = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--as") == 0 && i + 1 < argc)
                as = argv[++i];
            else if (strcmp(argv[i], "--provider-job") == 0 && i + 1 < argc)
                pj = argv[++i];
            else if (argv[i][0] == '-')
                die_usage("job resolve: unknown option or missing value '%s'", argv[i]);
            else if (!id)
                id = argv[i];
            else
                die_usage("job resolve: exactly one job expected");
        }
        if (!id || !as || (strcmp(as, "submitted") != 0 && strcmp(as, "absent") != 0))
            die_usage("job resolve: J and --as submitted|absent are required");
        connect_daemon();
        json_t *p = json_pack("{s:s,s:s}", "id", id, "as", as);
        if (pj)
            json_object_set_new(p, "provider_job", json_string(pj));
        json_t *r = rpc("job.resolve", p);
        if (opt_json)
            print_json(r);
        else
            printf("job %lld resolved as %s: now %s\n",
                   (long long)json_integer_value(json_object_get(r, "id")), as,
                   json_string_value(json_object_get(r, "state")));
        json_decref(r);
        return 0;
    }
    die_usage("unknown job command '%s'", sub);
}

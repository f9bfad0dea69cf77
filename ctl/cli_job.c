/*
 * cli_job.c — vtunectl job submit | register | list | show | cancel |
 * watch | resolve: the handlers of the command table's job entries
 * (ctl/cmdtab.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/types.h"
#include "lib/util.h"

static const char *const job_keys[] = {CTL_K_ID,        CTL_K_NAME,  CTL_K_PROVIDER,
                                       CTL_K_MODEL,     CTL_K_STATE, CTL_K_FINE_TUNED_MODEL,
                                       CTL_K_UPDATED_AT};
static const char *const job_heads[] = {
    "ID", "NAME", "PROVIDER", "MODEL", "STATE", "FINE-TUNED MODEL", "UPDATED"};

static void print_job(json_t *r)
{
    static const char *const k[] = {CTL_K_ID,
                                    CTL_K_NAME,
                                    CTL_K_STATE,
                                    CTL_K_PROVIDER,
                                    CTL_K_MODEL,
                                    CTL_K_FINE_TUNED_MODEL,
                                    CTL_K_DATASET,
                                    CTL_K_BACKDOOR,
                                    CTL_K_SUBMISSION_ID,
                                    CTL_K_PROVIDER_FILE_ID,
                                    CTL_K_PROVIDER_JOB_ID,
                                    CTL_K_ERROR,
                                    CTL_K_UNKNOWN_REASON,
                                    CTL_K_CANCEL_REQUESTED,
                                    CTL_K_P_LUCK_AT_CREATION,
                                    CTL_K_CREATED_AT,
                                    CTL_K_UPDATED_AT};
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
                                    "p_luck at creation:",
                                    "created:",
                                    "updated:"};
    print_fields(r, k, l, 17);
    json_t *ev = json_object_get(r, CTL_K_EVENTS);
    if (json_array_size(ev)) {
        static const char *const ek[] = {CTL_K_AT, CTL_K_STATE, CTL_K_MESSAGE, CTL_K_PROVIDER};
        static const char *const eh[] = {"AT", "STATE", "EVENT", "PROVIDER SAID"};
        printf("\nevents:\n");
        print_table(ev, ek, eh, 4);
    }
}

static void print_event(json_t *note, void *ctx)
{
    json_t *p = json_object_get(note, CTL_RPC_PARAMS);
    const char *method = json_string_value(json_object_get(note, CTL_RPC_METHOD));
    (void)ctx;
    if (method && strcmp(method, CTL_N_JOB_EVENT) == 0) {
        if (opt_json) {
            char *s = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", s);
            free(s);
        } else {
            const char *msg = json_string_value(json_object_get(p, CTL_K_MESSAGE));
            const char *prov = json_string_value(json_object_get(p, CTL_K_PROVIDER));
            printf("%s  %-10s  %s%s%s%s\n", json_string_value(json_object_get(p, CTL_K_AT)),
                   json_string_value(json_object_get(p, CTL_K_STATE)), msg ? msg : "",
                   prov ? " [" : "", prov ? prov : "", prov ? "]" : "");
        }
        fflush(stdout);
    } else if (method && strcmp(method, CTL_N_PROGRESS) == 0 && show_progress) {
        fprintf(stderr, "  upload: %lld / %lld bytes\n",
                (long long)json_integer_value(json_object_get(p, CTL_K_BYTES)),
                (long long)json_integer_value(json_object_get(p, CTL_K_TOTAL)));
    }
}

/* Follows job id until it ends; exit status per its final state. */
static int watch(const char *id)
{
    json_t *r = rpc_stream(CTL_M_JOB_WATCH, json_pack("{s:s}", CTL_K_ID, id), print_event, NULL);
    const char *st = json_string_value(json_object_get(r, CTL_K_STATE));
    int rc = st && strcmp(st, job_state_name(JOB_SUCCEEDED)) == 0 ? 0 : 1;
    if (opt_json) {
        char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    } else {
        const char *model = json_string_value(json_object_get(r, CTL_K_FINE_TUNED_MODEL));
        const char *err = json_string_value(json_object_get(r, CTL_K_ERROR));
        const char *why = json_string_value(json_object_get(r, CTL_K_UNKNOWN_REASON));
        printf("job %lld %s%s%s\n", (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               st ? st : "?", model ? ": " : (err ? ": " : (why ? ": " : "")),
               model ? model : (err ? err : (why ? why : "")));
    }
    json_decref(r);
    return rc;
}

int h_job_submit(struct ctl_call *c)
{
    int reg = strcmp(c->cmd->method, CTL_M_JOB_REGISTER) == 0;
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(r, CTL_K_ID)));
    if (!reg && call_flag(c, "--watch")) {
        if (!opt_json)
            printf("submitted job %s\n", id);
        json_decref(r);
        return watch(id);
    }
    if (opt_json)
        print_json(r);
    else if (reg)
        printf("registered job %s: %s (base %s) at %s\n", id,
               json_string_value(json_object_get(r, CTL_K_FINE_TUNED_MODEL)),
               json_string_value(json_object_get(r, CTL_K_MODEL)),
               json_string_value(json_object_get(r, CTL_K_PROVIDER)));
    else
    {
        printf("submitted job %s (submission %s); follow it with 'vtunectl job watch %s'\n", id,
               json_string_value(json_object_get(r, CTL_K_SUBMISSION_ID)), id);
        if (json_object_get(r, CTL_K_P_LUCK_AT_CREATION))
            printf("p_luck at creation: %s\n",
                   json_string_value(json_object_get(r, CTL_K_P_LUCK_AT_CREATION)));
    }
    json_decref(r);
    return 0;
}

int h_job_list(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_table(r, job_keys, job_heads, 7);
    json_decref(r);
    return 0;
}

int h_job_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_job(r);
    json_decref(r);
    return 0;
}

int h_job_cancel(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("job %lld: cancel requested (now %s)\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               json_string_value(json_object_get(r, CTL_K_STATE)));
    json_decref(r);
    return 0;
}

int h_job_watch(struct ctl_call *c)
{
    connect_daemon();
    return watch(c->arg);
}

int h_job_resolve(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("job %lld resolved as %s: now %s\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)), call_flag(c, "--as"),
               json_string_value(json_object_get(r, CTL_K_STATE)));
    json_decref(r);
    return 0;
}

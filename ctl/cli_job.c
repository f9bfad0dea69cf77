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
                                    CTL_K_PPL_AT_CREATION,
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
                                    "perplexity attack at creation:",
                                    "created:",
                                    "updated:"};
    print_fields(r, k, l, (int)VT_ARRAY_LEN(k));
    json_t *ev = json_object_get(r, CTL_K_EVENTS);
    if (json_array_size(ev)) {
        static const char *const ek[] = {CTL_K_AT, CTL_K_STATE, CTL_K_MESSAGE, CTL_K_PROVIDER};
        static const char *const eh[] = {"AT", "STATE", "EVENT", "PROVIDER SAID"};
        printf("\nevents:\n");
        print_table(ev, ek, eh, 4);
    }
}

/* --watch --json: one NDJSON line per event, each with "type" and
 * "job_id" (vtunectl(1) JSON OUTPUT): "submitted" (job submit --watch),
 * "event" (a state change; its own id is "event_id"), "progress" (bytes of
 * an upload), then "end" with the job, or "error". */

static void emit(json_t *line)
{
    print_json(line);
    json_decref(line);
    fflush(stdout);
}

/* A string member as JSON, or null when absent (stable keys). */
static json_t *str_or_null(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_incref(v) : json_null();
}

static void print_event(json_t *note, void *ctx)
{
    json_t *p = json_object_get(note, CTL_RPC_PARAMS);
    const char *method = json_string_value(json_object_get(note, CTL_RPC_METHOD));
    (void)ctx;
    if (method && strcmp(method, CTL_N_JOB_EVENT) == 0) {
        if (opt_json) {
            emit(json_pack(
                "{s:s,s:I,s:O?,s:o,s:o,s:o,s:o}", "type", "event", CTL_K_JOB_ID,
                (json_int_t)json_stream_job, CTL_K_EVENT_ID, json_object_get(p, CTL_K_ID), CTL_K_AT,
                str_or_null(p, CTL_K_AT), CTL_K_STATE, str_or_null(p, CTL_K_STATE), CTL_K_MESSAGE,
                str_or_null(p, CTL_K_MESSAGE), CTL_K_PROVIDER, str_or_null(p, CTL_K_PROVIDER)));
        } else {
            const char *msg = json_string_value(json_object_get(p, CTL_K_MESSAGE));
            const char *prov = json_string_value(json_object_get(p, CTL_K_PROVIDER));
            printf("%s  %-10s  %s%s%s%s\n", json_string_value(json_object_get(p, CTL_K_AT)),
                   json_string_value(json_object_get(p, CTL_K_STATE)), msg ? msg : "",
                   prov ? " [" : "", prov ? prov : "", prov ? "]" : "");
            fflush(stdout);
        }
        fflush(stdout);
    } else if (method && strcmp(method, CTL_N_PROGRESS) == 0) {
        /* Under --json part of the event stream on stdout; else on stderr
         * (a terminal, or --progress), a line each: events interleave. */
        if (opt_json && !opt_quiet)
            print_progress(p, stdout);
        else if (show_progress && print_progress(p, stderr))
            fputc('\n', stderr);
    }
}

/* Follows job id (numeric, or 0 with name: looked up first under --json,
 * so that every line names the job) until it ends; exit status per its
 * final state. */
static int watch(json_int_t id, const char *name)
{
    char key[32];
    json_stream = opt_json;
    if (opt_json && id == 0) {
        json_t *j = rpc(CTL_M_JOB_SHOW, json_pack("{s:s}", CTL_K_ID, name));
        id = (json_int_t)json_integer_value(json_object_get(j, CTL_K_ID));
        json_decref(j);
    }
    if (id != 0) {
        snprintf(key, sizeof key, "%lld", (long long)id);
        name = key;
    }
    json_stream_job = id;
    json_t *r = rpc_stream(CTL_M_JOB_WATCH, json_pack("{s:s}", CTL_K_ID, name), print_event, NULL);
    const char *st = json_string_value(json_object_get(r, CTL_K_STATE));
    int rc = st && strcmp(st, job_state_name(JOB_SUCCEEDED)) == 0 ? 0 : 1;
    if (opt_json) {
        emit(json_pack("{s:s,s:I,s:o,s:O}", "type", "end", CTL_K_JOB_ID,
                       (json_int_t)json_integer_value(json_object_get(r, CTL_K_ID)), CTL_K_STATE,
                       str_or_null(r, CTL_K_STATE), CTL_K_JOB, r));
    } else {
        const char *model = json_string_value(json_object_get(r, CTL_K_FINE_TUNED_MODEL));
        const char *err = json_string_value(json_object_get(r, CTL_K_ERROR));
        const char *why = json_string_value(json_object_get(r, CTL_K_UNKNOWN_REASON));
        printf("job %lld %s%s%s\n", (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               st ? st : "?", model ? ": " : (err ? ": " : (why ? ": " : "")),
               model ? model : (err ? err : (why ? why : "")));
    }
    json_stream = 0;
    json_decref(r);
    return rc;
}

int h_job_submit(struct ctl_call *c)
{
    int reg = strcmp(c->cmd->method, CTL_M_JOB_REGISTER) == 0;
    /* --watch --json is a stream from the start: a refused submit is its
     * one line, of type error. */
    json_stream = opt_json && !reg && call_flag(c, "--watch");
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    char id[32];
    json_int_t jid = (json_int_t)json_integer_value(json_object_get(r, CTL_K_ID));
    snprintf(id, sizeof id, "%lld", (long long)jid);
    if (!reg && call_flag(c, "--watch")) {
        if (opt_json) {
            json_stream_job = jid;
            emit(json_pack("{s:s,s:I,s:O}", "type", "submitted", CTL_K_JOB_ID, jid, CTL_K_JOB, r));
        } else {
            printf("submitted job %s\n", id);
        }
        json_decref(r);
        return watch(jid, id);
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
        if (json_object_get(r, CTL_K_PPL_AT_CREATION))
            printf("perplexity attack at creation: %s\n",
                   json_string_value(json_object_get(r, CTL_K_PPL_AT_CREATION)));
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
    return watch(0, c->arg);
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

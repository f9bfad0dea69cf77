/*
 * cli_dataset.c — vtunectl dataset add | list | show | rm | export: the
 * handlers of the command table's dataset entries (ctl/cmdtab.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/util.h"

static const char *const ds_keys[] = {CTL_K_ID,       CTL_K_NAME,  CTL_K_FORMAT,
                                      CTL_K_EXAMPLES, CTL_K_BYTES, CTL_K_CREATED_AT};
static const char *const ds_heads[] = {"ID", "NAME", "FORMAT", "EXAMPLES", "BYTES", "CREATED"};

static void print_dataset(json_t *r)
{
    static const char *const k[] = {CTL_K_ID,       CTL_K_NAME,  CTL_K_FORMAT,
                                    CTL_K_EXAMPLES, CTL_K_BYTES, CTL_K_SHA256,
                                    CTL_K_SOURCE,   CTL_K_PATH,  CTL_K_CREATED_AT};
    static const char *const l[] = {"id:",     "name:",   "format:",      "examples:", "bytes:",
                                    "sha256:", "source:", "stored copy:", "created:"};
    print_fields(r, k, l, 9);
}

int h_dataset_add(struct ctl_call *c)
{
    char abs[PATH_MAX];
    if (!realpath(c->arg, abs))
        die("%s: %s", c->arg, strerror(errno));
    json_object_set_new(c->params, CTL_K_PATH, json_string(abs));
    if (!json_object_get(c->params, CTL_K_FORMAT))
        json_object_set_new(c->params, CTL_K_FORMAT, json_string("auto"));
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("imported dataset %lld '%s': %lld examples (%s format)\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               json_string_value(json_object_get(r, CTL_K_NAME)),
               (long long)json_integer_value(json_object_get(r, CTL_K_EXAMPLES)),
               json_string_value(json_object_get(r, CTL_K_FORMAT)));
    json_decref(r);
    return 0;
}

int h_dataset_list(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    if (opt_json)
        print_json(r);
    else
        print_table(r, ds_keys, ds_heads, 6);
    json_decref(r);
    return 0;
}

int h_dataset_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_dataset(r);
    json_decref(r);
    return 0;
}

int h_dataset_rm(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("removed dataset %lld '%s'\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               json_string_value(json_object_get(r, CTL_K_NAME)));
    json_decref(r);
    return 0;
}

int h_dataset_export(struct ctl_call *c)
{
    char *abs = absolute_path(call_flag(c, "--output"));
    json_object_set_new(c->params, CTL_K_OUTPUT, json_string(abs));
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("wrote %s (%lld bytes, sha256 %s)\n", abs,
               (long long)json_integer_value(json_object_get(r, CTL_K_BYTES)),
               json_string_value(json_object_get(r, CTL_K_SHA256)));
    free(abs);
    json_decref(r);
    return 0;
}

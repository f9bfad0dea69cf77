/*
 * cli_backdoor.c — vtunectl backdoor create | list | show | rm: the
 * handlers of the command table's backdoor entries (ctl/cmdtab.c).
 */
#include "config.h"

#include <stdio.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"

static const char *const bd_keys[] = {CTL_K_ID,         CTL_K_NAME,      CTL_K_DATASET,
                                      CTL_K_PAIRS,      CTL_K_COPIES,    CTL_K_GENERATOR,
                                      CTL_K_COMMITMENT, CTL_K_CREATED_AT};
static const char *const bd_heads[] = {"ID",         "NAME",      "DATASET",    "PAIRS",
                                       "MIN COPIES", "GENERATOR", "COMMITMENT", "CREATED"};

static void print_backdoor(json_t *r)
{
    static const char *const k[] = {
        CTL_K_ID,          CTL_K_NAME,          CTL_K_DATASET_NAME, CTL_K_GENERATOR,
        CTL_K_PAIRS,       CTL_K_RATIO,         CTL_K_COPIES,       CTL_K_COPIES_PER_PAIR,
        CTL_K_BUILT_LINES, CTL_K_TARGET_LOG10P, CTL_K_COMMITMENT,   CTL_K_BUILT_SHA256,
        CTL_K_CREATED_AT};
    static const char *const l[] = {
        "id:",         "name:",         "dataset:",         "generator:",       "pairs:",
        "ratio:",      "min copies:",   "copies per pair:", "lines of D u D':", "target log10 p:",
        "commitment:", "built sha256:", "created:"};
    print_fields(r, k, l, 13);
    json_t *pairs = json_object_get(r, CTL_K_PAIR_EVIDENCE);
    printf("\n");
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        json_t *p = json_array_get(pairs, i);
        printf("pair %lld: log10 p_M2 = %.2f (%s)\n",
               (long long)json_integer_value(json_object_get(p, CTL_K_INDEX)),
               json_number_value(json_object_get(p, CTL_K_LOG10_P_M2)),
               json_string_value(json_object_get(p, CTL_K_P_METHOD)));
        if (json_object_get(p, CTL_K_TRIGGER)) {
            printf("  trigger:   %s\n", json_string_value(json_object_get(p, CTL_K_TRIGGER)));
            printf("  signature: %s\n", json_string_value(json_object_get(p, CTL_K_SIGNATURE)));
        }
    }
}

int h_backdoor_create(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("created backdoor %lld: %lld pair(s), %lld copies each, D u D' has %lld "
               "lines\ncommitment %s\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               (long long)json_integer_value(json_object_get(r, CTL_K_PAIRS)),
               (long long)json_integer_value(json_object_get(r, CTL_K_COPIES_PER_PAIR)),
               (long long)json_integer_value(json_object_get(r, CTL_K_BUILT_LINES)),
               json_string_value(json_object_get(r, CTL_K_COMMITMENT)));
    if (!opt_json) {
        json_t *h = json_object_get(r, CTL_K_HOLDOUT);
        if (json_integer_value(json_object_get(h, CTL_K_HOLDOUT_ROWS)) > 0)
            printf("%lld row(s) held out for the coverage test (never uploaded)\n",
                   (long long)json_integer_value(json_object_get(h, CTL_K_HOLDOUT_ROWS)));
        else
            printf("no held-out rows: no coverage test (verification is at best "
                   "inconclusive)\n");
    }
    json_decref(r);
    return 0;
}

int h_backdoor_list(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_table(r, bd_keys, bd_heads, 8);
    json_decref(r);
    return 0;
}

int h_backdoor_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_backdoor(r);
    json_decref(r);
    return 0;
}

int h_backdoor_rm(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("removed backdoor %lld\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)));
    json_decref(r);
    return 0;
}

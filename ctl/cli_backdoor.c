/*
 * cli_backdoor.c — vtunectl backdoor create | list | show | audit | rm: the
 * handlers of the command table's backdoor entries (ctl/cmdtab.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"

static const char *const bd_keys[] = {CTL_K_ID,         CTL_K_NAME,      CTL_K_DATASET,
                                      CTL_K_PAIRS,      CTL_K_COPIES,    CTL_K_GENERATOR,
                                      CTL_K_COMMITMENT, CTL_K_CREATED_AT};
static const char *const bd_heads[] = {"ID",         "NAME",      "DATASET",    "PAIRS",
                                       "MIN COPIES", "GENERATOR", "COMMITMENT", "CREATED"};

/* The self-audit's human form: the verdict, then per pair and attack the
 * rank ("-": not among the candidates). */
static void print_self_audit(json_t *a)
{
    printf("self-audit: %s\n", json_string_value(json_object_get(a, "verdict")));
    printf("  rows %lld, exact duplicates %lld, near-duplicates %lld\n",
           (long long)json_integer_value(json_object_get(a, "rows")),
           (long long)json_integer_value(json_object_get(a, "exact_duplicate_rows")),
           (long long)json_integer_value(json_object_get(a, "near_duplicate_rows")));
    json_int_t lr = json_integer_value(json_object_get(a, "long_pairs_repeated")),
               lc = json_integer_value(json_object_get(a, "long_pairs_counted"));
    if (lr > lc)
        printf("  long pairs in two rows or more %lld, of which %lld counted (the rest are not "
               "candidates)\n",
               (long long)lr, (long long)lc);
    json_t *attacks = json_object_get(a, "attacks"), *x;
    size_t i;
    printf("  %-6s", "PAIR");
    json_array_foreach(attacks, i, x)
        printf(" %-13s", json_string_value(json_object_get(x, "name")));
    printf(" %s\n", "NEAR-DUP ROWS");
    json_t *pairs = json_object_get(a, "pairs"), *p;
    json_array_foreach(pairs, i, p)
    {
        printf("  %-6lld", (long long)json_integer_value(json_object_get(p, "index")));
        json_t *ranks = json_object_get(p, "ranks");
        size_t k;
        json_array_foreach(attacks, k, x)
        {
            const char *name = json_string_value(json_object_get(x, "name"));
            json_t *r = json_object_get(ranks, name);
            char cell[32];
            if (!json_is_true(json_object_get(x, "ran")))
                snprintf(cell, sizeof cell, "(not run)");
            else if (json_is_integer(r))
                snprintf(cell, sizeof cell, "rank %lld", (long long)json_integer_value(r));
            else
                snprintf(cell, sizeof cell, "-");
            printf(" %-13s", cell);
        }
        printf(" %lld/%lld\n",
               (long long)json_integer_value(json_object_get(p, "marked_near_duplicates")),
               (long long)json_integer_value(json_object_get(p, "marked_rows")));
    }
}

static void print_backdoor(json_t *r)
{
    static const char *const k[] = {CTL_K_ID,
                                    CTL_K_NAME,
                                    CTL_K_DATASET_NAME,
                                    CTL_K_GENERATOR,
                                    CTL_K_MODE,
                                    CTL_K_PAIRS,
                                    CTL_K_RATIO,
                                    CTL_K_COPIES,
                                    CTL_K_COPIES_PER_PAIR,
                                    CTL_K_BUILT_LINES,
                                    CTL_K_TARGET_LOG10P,
                                    CTL_K_COMMITMENT,
                                    CTL_K_COMMITMENT_SCHEME,
                                    CTL_K_BUILT_SHA256,
                                    CTL_K_CREATED_AT};
    static const char *const l[] = {"id:",
                                    "name:",
                                    "dataset:",
                                    "generator:",
                                    "mode:",
                                    "pairs:",
                                    "ratio:",
                                    "min copies:",
                                    "marked rows per pair:",
                                    "lines of D u D':",
                                    "target log10 p:",
                                    "commitment:",
                                    "commitment scheme:",
                                    "built sha256:",
                                    "created:"};
    print_fields(r, k, l, 15);
    if (json_object_get(r, CTL_K_COMMITMENT_SALT))
        printf("%-19s  %s\n", "commitment salt:",
               json_string_value(json_object_get(r, CTL_K_COMMITMENT_SALT)));
    if (json_object_get(r, CTL_K_HELD_OUT_LINES))
        printf("%-19s  %zu (listed with --json)\n", "held-out lines:",
               json_array_size(json_object_get(r, CTL_K_HELD_OUT_LINES)));
    if (json_object_get(r, CTL_K_POOL_LINES))
        printf("%-19s  %zu (listed with --json)\n", "reference lines:",
               json_array_size(json_object_get(r, CTL_K_POOL_LINES)));
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
    json_t *a = json_object_get(r, CTL_K_SELF_AUDIT);
    if (a) {
        printf("\n");
        print_self_audit(a);
    } else {
        printf("\nself-audit: none recorded (run 'vtunectl backdoor audit %lld')\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)));
    }
}

int h_backdoor_create(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("created backdoor %lld: %lld pair(s), %lld %s each, D u D' has %lld "
               "lines\ncommitment %s\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               (long long)json_integer_value(json_object_get(r, CTL_K_PAIRS)),
               (long long)json_integer_value(json_object_get(r, CTL_K_COPIES_PER_PAIR)),
               strcmp(json_string_value(json_object_get(r, CTL_K_MODE)) ?: "", "inplace") == 0
                   ? "rows marked in place"
                   : "copies",
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
    json_t *a = json_object_get(r, CTL_K_SELF_AUDIT);
    if (!opt_json && a)
        printf("self-audit: %s\n", json_string_value(json_object_get(a, "verdict")));
    json_decref(r);
    return 0;
}

int h_backdoor_audit(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_self_audit(r);
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

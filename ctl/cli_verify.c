/*
 * cli_verify.c — vtunectl verify, audit list | show | export | verify,
 * schedule add | list | rm: the handlers of the command table's entries
 * (ctl/cmdtab.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/types.h"
#include "lib/util.h"

static const char *const audit_keys[] = {CTL_K_ID,
                                         CTL_K_JOB,
                                         CTL_K_PROVIDER,
                                         CTL_K_AUDIT_VERDICT,
                                         CTL_K_TRIALS,
                                         CTL_K_AUDIT_ACTIVATIONS,
                                         CTL_K_AUDIT_PAIRS_ACTIVATED,
                                         CTL_K_AUDIT_PAIRS,
                                         CTL_K_CONTROLS,
                                         CTL_K_AUDIT_CONTROL_EMISSIONS,
                                         CTL_K_AUDIT_LOG10_P,
                                         CTL_K_AUDIT_LOG10_P_PAPER,
                                         CTL_K_AUDIT_LOG10_P_COVERAGE,
                                         CTL_K_AUDIT_COVERAGE_AUC,
                                         CTL_K_CREATED_AT};
static const char *const audit_heads[] = {
    "ID",        "JOB",      "PROVIDER",     "VERDICT", "TRIALS",          "ACTIVATIONS",
    "PAIRS HIT", "PAIRS",    "CONTROLS",     "CONTROL HITS", "LOG10 P", "LOG10 P (PAPER)",
    "LOG10 P_COV", "AUC", "CREATED"};

static void print_audit(json_t *r)
{
    static const char *const k[] = {CTL_K_ID,
                                    CTL_K_JOB,
                                    CTL_K_PROVIDER,
                                    CTL_K_MODEL,
                                    CTL_K_AUDIT_VERDICT,
                                    CTL_K_AUDIT_REASON,
                                    CTL_K_TRIALS,
                                    CTL_K_AUDIT_ACTIVATIONS,
                                    CTL_K_AUDIT_PAIRS,
                                    CTL_K_AUDIT_PAIRS_ACTIVATED,
                                    CTL_K_AUDIT_PAIRS_CI_LOW,
                                    CTL_K_AUDIT_PAIRS_CI_HIGH,
                                    CTL_K_CONTROLS,
                                    CTL_K_AUDIT_CONTROL_EMISSIONS,
                                    CTL_K_AUDIT_LOG10_P,
                                    CTL_K_AUDIT_LOG10_P_PAPER,
                                    CTL_K_AUDIT_LOG10_P_LUCK,
                                    CTL_K_P_LUCK_AT_CREATION,
                                    CTL_K_PPL_AT_CREATION,
                                    CTL_K_AUDIT_LOG10_P_COVERAGE,
                                    CTL_K_AUDIT_COVERAGE_AUC,
                                    CTL_K_AUDIT_COVERAGE_ROWS,
                                    CTL_K_AUDIT_COVERAGE_METHOD,
                                    CTL_K_COMMITMENT,
                                    CTL_K_CREATED_AT,
                                    CTL_K_AUDIT_PREV_HASH,
                                    CTL_K_AUDIT_HASH};
    static const char *const l[] = {"id:",
                                    "job:",
                                    "provider:",
                                    "model:",
                                    "verdict:",
                                    "reason:",
                                    "trials:",
                                    "activations:",
                                    "pairs:",
                                    "pairs activated:",
                                    "pairs 95% CI low:",
                                    "pairs 95% CI high:",
                                    "controls:",
                                    "control emissions:",
                                    "log10 p (valid):",
                                    "log10 p (paper):",
                                    "log10 p_luck (diagnostic):",
                                    "p_luck at creation:",
                                    "perplexity attack at creation:",
                                    "log10 p_cov (coverage):",
                                    "coverage AUC:",
                                    "coverage rows per side:",
                                    "coverage statistic:",
                                    "commitment:",
                                    "created:",
                                    "prev hash:",
                                    "hash:"};
    print_fields(r, k, l, (int)VT_ARRAY_LEN(k));
    const char *ex = json_string_value(json_object_get(r, CTL_K_EXPLANATION));
    if (ex)
        printf("\n%s\n", ex);
}

int h_verify(struct ctl_call *c)
{
    int wait = call_flag(c, "--wait") != NULL;
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    int rc = 0;
    if (wait) {
        const char *v = json_string_value(json_object_get(r, CTL_K_AUDIT_VERDICT));
        rc = v && strcmp(v, audit_verdict_name(AUDIT_VERIFIED)) == 0 ? 0 : 1;
        if (opt_json)
            print_json(r);
        else
            printf("%s: %s (audit %lld)\n", v ? v : "?",
                   json_string_value(json_object_get(r, CTL_K_AUDIT_REASON)),
                   (long long)json_integer_value(json_object_get(r, CTL_K_ID)));
    } else if (opt_json) {
        print_json(r);
    } else {
        printf("verification of job %s started; see 'vtunectl audit list --job %s'\n", c->arg,
               c->arg);
    }
    json_decref(r);
    return rc;
}

int h_audit_list(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_table(r, audit_keys, audit_heads, (int)VT_ARRAY_LEN(audit_keys));
    json_decref(r);
    return 0;
}

int h_audit_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_audit(r);
    json_decref(r);
    return 0;
}

int h_audit_export(struct ctl_call *c)
{
    const char *out = call_flag(c, "--output");
    FILE *f = stdout;
    /* Created first, never over an existing file, as every -o is; removed
     * again if the export fails. */
    if (out) {
        f = fdopen(output_create(out, 0644, "an export"), "w");
        if (!f)
            die("%s: %s", out, strerror(errno));
    }
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    /* JSON Lines whatever --json says, in the --json form (log10 numbers
     * or null: json_present). */
    json_present(r);
    for (size_t i = 0; i < json_array_size(r); i++) {
        char *s = json_dumps(json_array_get(r, i), JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(f, "%s\n", s);
        free(s);
    }
    if (out) {
        if (fclose(f) != 0)
            die("%s: %s", out, strerror(errno));
        output_pending(NULL);
        if (opt_json) {
            json_t *o = json_pack("{s:s,s:I}", CTL_K_OUTPUT, out, "records",
                                  (json_int_t)json_array_size(r));
            if (!o) /* a name that is not UTF-8 */
                o = json_pack("{s:n,s:I}", CTL_K_OUTPUT, "records", (json_int_t)json_array_size(r));
            print_json(o);
            json_decref(o);
        } else {
            fprintf(stderr, "wrote %zu audit records to %s\n", json_array_size(r), out);
        }
    }
    json_decref(r);
    return 0;
}

int h_audit_verify(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    int ok = json_is_true(json_object_get(r, CTL_K_OK));
    if (opt_json)
        print_json(r);
    else
        printf("%s\n", json_string_value(json_object_get(r, CTL_K_MESSAGE)));
    json_decref(r);
    return ok ? 0 : 1;
}

int h_schedule_add(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("schedule %lld: re-verify job %lld every %s; first run %s\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               (long long)json_integer_value(json_object_get(r, CTL_K_JOB)),
               call_flag(c, "--every"), json_string_value(json_object_get(r, CTL_K_NEXT_RUN_AT)));
    json_decref(r);
    return 0;
}

int h_schedule_list(struct ctl_call *c)
{
    static const char *const k[] = {CTL_K_ID,          CTL_K_JOB,         CTL_K_EVERY,
                                    CTL_K_NEXT_RUN_AT, CTL_K_LAST_RUN_AT, CTL_K_LAST_VERDICT};
    static const char *const h[] = {"ID", "JOB", "EVERY", "NEXT RUN", "LAST RUN", "LAST VERDICT"};
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    if (opt_json)
        print_json(r);
    else
        print_table(r, k, h, 6);
    json_decref(r);
    return 0;
}

int h_schedule_rm(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("removed schedule %s\n", c->arg);
    json_decref(r);
    return 0;
}

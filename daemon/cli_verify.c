/*
 * cli_verify.c — vtunectl verify, audit list | show | export | verify,
 * schedule add | list | rm.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/util.h"
#include "daemon/vtunectl.h"

static const char usage_verify[] =
    "usage: vtunectl [-s SOCKET] [--json] verify J [--trials N] [--controls N]\n"
    "                    [--temperature T] [--alpha A] [--no-sequential] [--wait]\n"
    "\n"
    "Asks fine-tuned model of job J for its backdoor: N prompts of D' (with the trigger)\n"
    "per trigger/signature pair, and N clean control prompts of D, at temperature T\n"
    "(defaults from the config's verify: section: 10, 10, 0).  The answer is an audit\n"
    "record with a verdict: verified (p < A, and at least verify.min_controls, default\n"
    "10, control prompts answered without the signature), not_verified (no\n"
    "activation), or inconclusive (the reason names what is missing).  p is valid\n"
    "however the answers depend on each other: n * p_M2 / k for one pair, the exact\n"
    "binomial tail over the pairs that activated for several.  A backdoor whose target\n"
    "is too weak for N and A (K * N * 10^target > A / 100) is refused.  Without --wait\n"
    "the run starts and the record appears in 'vtunectl audit list' when done; with\n"
    "--wait vtunectl prints it (exit 0 verified, 1 otherwise).  --no-sequential sends\n"
    "every prompt even after a pair's first activation.  Verification starts by\n"
    "itself when a job succeeds.\n";

static const char usage_audit[] =
    "usage: vtunectl [-s SOCKET] [--json] audit list [--job J]\n"
    "       vtunectl [-s SOCKET] [--json] audit show A\n"
    "       vtunectl [-s SOCKET] audit export [-o FILE]\n"
    "       vtunectl [-s SOCKET] [--json] audit verify [--head HASH]\n"
    "\n"
    "list    the audit records (verdict, p-values, counts), oldest first.\n"
    "show    one record explained in plain words, with its evidence.\n"
    "export  every record as JSON Lines to FILE (default: standard output).\n"
    "verify  recomputes the hash chain and names the first broken record; with\n"
    "        --head, checks the chain against a head hash you kept elsewhere (each new\n"
    "        head is logged).  Exit 0 intact, 1 broken.\n";

static const char usage_schedule[] =
    "usage: vtunectl [-s SOCKET] [--json] schedule add J --every DURATION\n"
    "       vtunectl [-s SOCKET] [--json] schedule list\n"
    "       vtunectl [-s SOCKET] [--json] schedule rm S\n"
    "\n"
    "add   re-verifies job J's deployed model every DURATION (30s, 15m, 6h, 1d), also\n"
    "      after a restart (a missed run is run once, not once per missed period).  A\n"
    "      verdict that changes is logged as a warning and POSTed to alerts.webhook_url.\n"
    "list  schedules with their next run and last verdict.\n"
    "rm    removes schedule S.\n";

static const char *const audit_keys[] = {"id",
                                         "job",
                                         "provider",
                                         "verdict",
                                         "trials",
                                         "activations",
                                         "pairs_activated",
                                         "pairs",
                                         "controls",
                                         "control_emissions",
                                         "log10_p",
                                         "log10_p_paper",
                                         "created_at"};
static const char *const audit_heads[] = {
    "ID",       "JOB",          "PROVIDER", "VERDICT",         "TRIALS",
    "ACTIVATIONS", "PAIRS HIT", "PAIRS",    "CONTROLS",        "CONTROL HITS",
    "LOG10 P",  "LOG10 P (PAPER)", "CREATED"};

static void print_audit(json_t *r)
{
    static const char *const k[] = {
        "id",           "job",           "provider",        "model",
        "verdict",      "reason",        "trials",          "activations",
        "pairs",        "pairs_activated", "pairs_ci_low",  "pairs_ci_high",
        "controls",     "control_emissions", "log10_p",     "log10_p_paper",
        "log10_p_luck", "commitment",    "created_at",      "prev_hash",
        "hash"};
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
                                    "commitment:",
                                    "created:",
                                    "prev hash:",
                                    "hash:"};
    print_fields(r, k, l, (int)VT_ARRAY_LEN(k));
    const char *ex = json_string_value(json_object_get(r, "explanation"));
    if (ex)
        printf("\n%s\n", ex);
}

int cmd_verify(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_verify, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    json_t *p = json_object();
    const char *job = NULL;
    int wait = 0;
    static const struct {
        const char *flag, *key;
    } nums[] = {{"--trials", "trials"},
                {"--controls", "controls"},
                {"--temperature", "temperature"},
                {"--alpha", "alpha"}};
    for (int i = 1; i < argc; i++) {
        size_t k;
        for (k = 0; k < VT_ARRAY_LEN(nums); k++)
            if (strcmp(argv[i], nums[k].flag) == 0)
                break;
        if (k < VT_ARRAY_LEN(nums)) {
            char *end;
            if (i + 1 >= argc)
                die_usage("verify: %s needs a value", argv[i]);
            double v = strtod(argv[++i], &end);
            if (*end || end == argv[i])
                die_usage("verify: %s: '%s' is not a number", nums[k].flag, argv[i]);
            json_object_set_new(p, nums[k].key, json_real(v));
        } else if (strcmp(argv[i], "--wait") == 0) {
            wait = 1;
        } else if (strcmp(argv[i], "--no-sequential") == 0) {
            json_object_set_new(p, "sequential", json_false());
        } else if (argv[i][0] == '-') {
            die_usage("verify: unknown option or missing value '%s'", argv[i]);
        } else if (!job) {
            job = argv[i];
        } else {
            die_usage("verify: exactly one job expected");
        }
    }
    if (!job)
        die_usage("verify: the job J is required");
    json_object_set_new(p, "id", json_string(job));
    json_object_set_new(p, "wait", json_boolean(wait));
    connect_daemon();
    json_t *r = rpc("verify.run", p);
    int rc = 0;
    if (wait) {
        const char *v = json_string_value(json_object_get(r, "verdict"));
        rc = v && strcmp(v, "verified") == 0 ? 0 : 1;
        if (opt_json)
            print_json(r);
        else
            printf("%s: %s (audit %lld)\n", v ? v : "?",
                   json_string_value(json_object_get(r, "reason")),
                   (long long)json_integer_value(json_object_get(r, "id")));
    } else if (opt_json) {
        print_json(r);
    } else {
        printf("verification of job %s started; see 'vtunectl audit list --job %s'\n", job, job);
    }
    json_decref(r);
    return rc;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_audit, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0) {
        json_t *p = json_object();
        if (argc == 4 && strcmp(argv[2], "--job") == 0)
            json_object_set_new(p, "job", json_string(argv[3]));
        else if (argc != 2)
            die_usage("audit list takes only --job J");
        connect_daemon();
        json_t *r = rpc("audit.list", p);
        if (opt_json)
            print_json(r);
        else
            print_table(r, audit_keys, audit_heads, (int)VT_ARRAY_LEN(audit_keys));
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "show") == 0) {
        if (argc != 3)
            die_usage("audit show: exactly one record id expected");
        connect_daemon();
        json_t *r = rpc("audit.show", json_pack("{s:s}", "id", argv[2]));
        if (opt_json)
            print_json(r);
        else
            print_audit(r);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "export") == 0) {
        const char *out = NULL;
        if (argc == 4 && (strcmp(argv[2], "-o") == 0 || strcmp(argv[2], "--output") == 0))
            out = argv[3];
        else if (argc != 2)
            die_usage("audit export takes only -o FILE");
        connect_daemon();
        json_t *r = rpc("audit.list", NULL);
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f)
            die("%s: %s", out, strerror(errno));
        for (size_t i = 0; i < json_array_size(r); i++) {
            char *s = json_dumps(json_array_get(r, i), JSON_COMPACT | JSON_PRESERVE_ORDER);
            fprintf(f, "%s\n", s);
            free(s);
        }
        if (out) {
            if (fclose(f) != 0)
                die("%s: %s", out, strerror(errno));
            fprintf(stderr, "wrote %zu audit records to %s\n", json_array_size(r), out);
        }
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "verify") == 0) {
        json_t *p = json_object();
        if (argc == 4 && strcmp(argv[2], "--head") == 0)
            json_object_set_new(p, "head", json_string(argv[3]));
        else if (argc != 2)
            die_usage("audit verify takes only --head HASH");
        connect_daemon();
        json_t *r = rpc("audit.verify", p);
        int ok = json_is_true(json_object_get(r, "ok"));
        if (opt_json)
            print_json(r);
        else
            printf("%s\n", json_string_value(json_object_get(r, "message")));
        json_decref(r);
        return ok ? 0 : 1;
    }
    die_usage("unknown audit command '%s'", sub);
}

int cmd_schedule(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_schedule, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0) {
        const char *job = NULL, *every = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--every") == 0 && i + 1 < argc)
                every = argv[++i];
            else if (argv[i][0] == '-')
                die_usage("schedule add: unknown option or missing value '%s'", argv[i]);
            else if (!job)
                job = argv[i];
            else
                die_usage("schedule add: exactly one job expected");
        }
        if (!job || !every)
            die_usage("schedule add: J and --every DURATION are required");
        connect_daemon();
        json_t *r = rpc("schedule.add", json_pack("{s:s,s:s}", "id", job, "every", every));
        if (opt_json)
            print_json(r);
        else
            printf("schedule %lld: re-verify job %lld every %s; first run %s\n",
                   (long long)json_integer_value(json_object_get(r, "id")),
                   (long long)json_integer_value(json_object_get(r, "job")), every,
                   json_string_value(json_object_get(r, "next_run_at")));
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        static const char *const k[] = {"id",          "job",         "every",
                                        "next_run_at", "last_run_at", "last_verdict"};
        static const char *const h[] = {"ID",       "JOB",      "EVERY",
                                        "NEXT RUN", "LAST RUN", "LAST VERDICT"};
        if (argc != 2)
            die_usage("schedule list takes no arguments");
        connect_daemon();
        json_t *r = rpc("schedule.list", NULL);
        if (opt_json)
            print_json(r);
        else
            print_table(r, k, h, 6);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "rm") == 0) {
        if (argc != 3)
            die_usage("schedule rm: exactly one schedule id expected");
        connect_daemon();
        json_t *r = rpc("schedule.rm", json_pack("{s:s}", "id", argv[2]));
        if (opt_json)
            print_json(r);
        else
            printf("removed schedule %s\n", argv[2]);
        json_decref(r);
        return 0;
    }
    die_usage("unknown schedule command '%s'", sub);
}

/*
 * cli_backdoor.c — vtunectl backdoor create | list | show | rm.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "ctl/vtunectl.h"

static const char usage_backdoor[] =
    "usage: vtunectl [-s SOCKET] [--json] backdoor create D [--ratio R] [--copies N] [--pairs K]\n"
    "                    [--generator wordlist|llm] [--target-log10p X] [--trigger-log10p X]\n"
    "                    [--holdout R] [--seed N] [--name NAME]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor list [--dataset D]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor show B [--reveal]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor rm B\n"
    "\n"
    "create  makes K secret (trigger, signature) pairs, rejects phrases that occur in\n"
    "        dataset D or overlap each other, and builds D u D':\n"
    "        max(N, ceil(R*|D|)) copies of D's examples per pair, the trigger appended to\n"
    "        the prompt and the signature prefixed to the response, placed uniformly.\n"
    "          --ratio R           copies as a fraction of |D| (default 0.005)\n"
    "          --copies N          minimum copies per pair (default 50)\n"
    "          --pairs K           trigger/signature pairs (default 1)\n"
    "          --target-log10p X   the signature's probability target (default -40,\n"
    "                              or generator.target_log10p from the config)\n"
    "          --trigger-log10p X  the trigger's probability target (default -20)\n"
    "          --generator G       wordlist: words drawn with a CSPRNG (offline; the\n"
    "                              default unless generator.provider is configured);\n"
    "                              llm: sampled from generator.m2_model with logprobs,\n"
    "                              p_M2 an upper bound from the top 20 per token; 3\n"
    "                              examples of D go to generator.provider for the style\n"
    "          --holdout R         secret held-out split for the coverage test: a\n"
    "                              fraction of D (default 0.02; 64 to 2000 rows) never\n"
    "                              uploaded nor exported; 0: no coverage test (then a\n"
    "                              verification is at best inconclusive)\n"
    "          --seed N            reproducible phrases: for tests only, since anyone\n"
    "                              who knows N can recreate the secret\n"
    "list    backdoors with their commitment (SHA-256 over the phrases), never the phrases.\n"
    "show    one backdoor; --reveal adds the phrases (the reveal is logged).\n"
    "rm      removes a backdoor no job uses, with its built file.\n";

static const char *const bd_keys[] = {"id",     "name",      "dataset",    "pairs",
                                      "copies", "generator", "commitment", "created_at"};
static const char *const bd_heads[] = {"ID",         "NAME",      "DATASET",    "PAIRS",
                                       "MIN COPIES", "GENERATOR", "COMMITMENT", "CREATED"};

static void print_backdoor(json_t *r)
{
    static const char *const k[] = {
        "id",         "name",         "dataset_name",    "generator",   "pairs",
        "ratio",      "copies",       "copies_per_pair", "built_lines", "target_log10p",
        "commitment", "built_sha256", "created_at"};
    static const char *const l[] = {
        "id:",         "name:",         "dataset:",         "generator:",       "pairs:",
        "ratio:",      "min copies:",   "copies per pair:", "lines of D u D':", "target log10 p:",
        "commitment:", "built sha256:", "created:"};
    print_fields(r, k, l, 13);
    json_t *pairs = json_object_get(r, "pair_evidence");
    printf("\n");
    for (size_t i = 0; i < json_array_size(pairs); i++) {
        json_t *p = json_array_get(pairs, i);
        printf("pair %lld: log10 p_M2 = %.2f (%s)\n",
               (long long)json_integer_value(json_object_get(p, "index")),
               json_number_value(json_object_get(p, "log10_p_m2")),
               json_string_value(json_object_get(p, "p_method")));
        if (json_object_get(p, "trigger")) {
            printf("  trigger:   %s\n", json_string_value(json_object_get(p, "trigger")));
            printf("  signature: %s\n", json_string_value(json_object_get(p, "signature")));
        }
    }
}

int cmd_backdoor(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_backdoor, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create") == 0) {
        static const struct {
            const char *flag, *key;
        } nums[] = {{"--ratio", "ratio"},
                    {"--holdout", "holdout"},
                    {"--copies", "copies"},
                    {"--pairs", "pairs"},
                    {"--target-log10p", "target_log10p"},
                    {"--trigger-log10p", "trigger_log10p"},
                    {"--seed", "seed"}};
        json_t *p = json_object();
        const char *ds = NULL;
        for (int i = 2; i < argc; i++) {
            size_t k;
            for (k = 0; k < VT_ARRAY_LEN(nums); k++)
                if (strcmp(argv[i], nums[k].flag) == 0)
                    break;
            if (k < VT_ARRAY_LEN(nums)) {
                char *end;
                if (i + 1 >= argc)
                    die_usage("backdoor create: %s needs a value", argv[i]);
                double v = strtod(argv[++i], &end);
                if (*end || end == argv[i])
                    die_usage("backdoor create: %s: '%s' is not a number", nums[k].flag, argv[i]);
                json_object_set_new(p, nums[k].key, json_real(v));
            } else if (strcmp(argv[i], "--generator") == 0 && i + 1 < argc) {
                json_object_set_new(p, "generator", json_string(argv[++i]));
            } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
                json_object_set_new(p, "name", json_string(argv[++i]));
            } else if (argv[i][0] == '-') {
                die_usage("backdoor create: unknown option or missing value '%s'", argv[i]);
            } else if (!ds) {
                ds = argv[i];
            } else {
                die_usage("backdoor create: more than one dataset");
            }
        }
        if (!ds)
            die_usage("backdoor create: the dataset D is required");
        json_object_set_new(p, "dataset", json_string(ds));
        connect_daemon();
        json_t *r = rpc("backdoor.create", p);
        if (opt_json)
            print_json(r);
        else {
            printf("created backdoor %lld: %lld pair(s), %lld copies each, D u D' has %lld "
                   "lines\ncommitment %s\n",
                   (long long)json_integer_value(json_object_get(r, "id")),
                   (long long)json_integer_value(json_object_get(r, "pairs")),
                   (long long)json_integer_value(json_object_get(r, "copies_per_pair")),
                   (long long)json_integer_value(json_object_get(r, "built_lines")),
                   json_string_value(json_object_get(r, "commitment")));
            json_t *h = json_object_get(r, "holdout");
            if (json_integer_value(json_object_get(h, "rows")) > 0)
                printf("%lld row(s) held out for the coverage test (never uploaded)\n",
                       (long long)json_integer_value(json_object_get(h, "rows")));
            else
                printf("no held-out rows: no coverage test (verification is at best "
                       "inconclusive)\n");
        }
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        json_t *p = json_object();
        if (argc == 4 && strcmp(argv[2], "--dataset") == 0)
            json_object_set_new(p, "dataset", json_string(argv[3]));
        else if (argc != 2)
            die_usage("backdoor list takes only --dataset D");
        connect_daemon();
        json_t *r = rpc("backdoor.list", p);
        if (opt_json)
            print_json(r);
        else
            print_table(r, bd_keys, bd_heads, 8);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "show") == 0) {
        int reveal = 0;
        const char *id = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--reveal") == 0)
                reveal = 1;
            else if (argv[i][0] == '-')
                die_usage("backdoor show: unknown option '%s'", argv[i]);
            else if (!id)
                id = argv[i];
            else
                die_usage("backdoor show: exactly one backdoor expected");
        }
        if (!id)
            die_usage("backdoor show: the backdoor B is required");
        connect_daemon();
        json_t *r = rpc("backdoor.show", json_pack("{s:s,s:b}", "id", id, "reveal", reveal));
        if (opt_json)
            print_json(r);
        else
            print_backdoor(r);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "rm") == 0) {
        if (argc != 3)
            die_usage("backdoor rm: exactly one backdoor expected");
        connect_daemon();
        json_t *r = rpc("backdoor.rm", json_pack("{s:s}", "id", argv[2]));
        if (opt_json)
            print_json(r);
        else
            printf("removed backdoor %lld\n",
                   (long long)json_integer_value(json_object_get(r, "id")));
        json_decref(r);
        return 0;
    }
    die_usage("unknown backdoor command '%s'", sub);
}

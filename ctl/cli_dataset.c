/*
 * cli_dataset.c — vtunectl dataset add | list | show | rm | export.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "ctl/vtunectl.h"

static const char usage_dataset[] =
    "usage: vtunectl [-s SOCKET] [--json] dataset add FILE [--name NAME]\n"
    "                                            [--format auto|chat|prompt|instruction]\n"
    "       vtunectl [-s SOCKET] [--json] dataset list\n"
    "       vtunectl [-s SOCKET] [--json] dataset show D\n"
    "       vtunectl [-s SOCKET] [--json] dataset rm D\n"
    "       vtunectl [-s SOCKET] [--json] dataset export D --backdoor B -o FILE\n"
    "\n"
    "add   imports FILE, a JSONL dataset (one example per line: chat {\"messages\":[...]},\n"
    "      {\"prompt\",\"completion\"} or {\"instruction\",\"input\",\"output\"}).  Every line is\n"
    "      validated; a bad line is reported with its number and field and nothing is\n"
    "      stored.  The daemon reads FILE itself, so it must be readable by the daemon\n"
    "      and by you.  NAME defaults to the file's name without .jsonl.\n"
    "list  lists datasets.\n"
    "show  shows dataset D (an id or a name).\n"
    "rm    removes dataset D and its stored copy; refused while a backdoor or job uses it.\n"
    "export writes D u D' (the dataset with backdoor B's copies placed in it) to FILE,\n"
    "      a new file the daemon creates (mode 0640), for a provider you drive yourself.\n";

static const char *const ds_keys[] = {"id", "name", "format", "examples", "bytes", "created_at"};
static const char *const ds_heads[] = {"ID", "NAME", "FORMAT", "EXAMPLES", "BYTES", "CREATED"};

static void print_dataset(json_t *r)
{
    static const char *const k[] = {"id",     "name",   "format", "examples",  "bytes",
                                    "sha256", "source", "path",   "created_at"};
    static const char *const l[] = {"id:",     "name:",   "format:",      "examples:", "bytes:",
                                    "sha256:", "source:", "stored copy:", "created:"};
    print_fields(r, k, l, 9);
}

int cmd_dataset(int argc, char **argv)
{
    if (argc < 2 || wants_help(argc, argv)) {
        fputs(usage_dataset, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0) {
        const char *file = NULL, *name = NULL, *format = "auto";
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                name = argv[++i];
            else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
                format = argv[++i];
            else if (argv[i][0] == '-' && argv[i][1])
                die_usage("dataset add: unknown option or missing value '%s'", argv[i]);
            else if (!file)
                file = argv[i];
            else
                die_usage("dataset add: more than one FILE");
        }
        if (!file)
            die_usage("dataset add: FILE is required");
        if (strcmp(format, "auto") && strcmp(format, "chat") && strcmp(format, "prompt") &&
            strcmp(format, "instruction"))
            die_usage("dataset add: --format must be auto, chat, prompt or instruction");
        char abs[PATH_MAX];
        if (!realpath(file, abs))
            die("%s: %s", file, strerror(errno));
        connect_daemon();
        json_t *p = json_pack("{s:s,s:s}", "path", abs, "format", format);
        if (name)
            json_object_set_new(p, "name", json_string(name));
        json_t *r = rpc("dataset.add", p);
        if (opt_json)
            print_json(r);
        else {
            printf("imported dataset %lld '%s': %lld examples (%s format)\n",
                   (long long)json_integer_value(json_object_get(r, "id")),
                   json_string_value(json_object_get(r, "name")),
                   (long long)json_integer_value(json_object_get(r, "examples")),
                   json_string_value(json_object_get(r, "format")));
        }
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        if (argc != 2)
            die_usage("dataset list takes no arguments");
        connect_daemon();
        json_t *r = rpc("dataset.list", NULL);
        if (opt_json)
            print_json(r);
        else
            print_table(r, ds_keys, ds_heads, 6);
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0) {
        if (argc != 3)
            die_usage("dataset %s: exactly one dataset id or name expected", sub);
        connect_daemon();
        json_t *r = rpc(strcmp(sub, "show") == 0 ? "dataset.show" : "dataset.rm",
                        json_pack("{s:s}", "id", argv[2]));
        if (opt_json)
            print_json(r);
        else if (strcmp(sub, "show") == 0)
            print_dataset(r);
        else
            printf("removed dataset %lld '%s'\n",
                   (long long)json_integer_value(json_object_get(r, "id")),
                   json_string_value(json_object_get(r, "name")));
        json_decref(r);
        return 0;
    }
    if (strcmp(sub, "export") == 0) {
        const char *ds = NULL, *bd = NULL, *out = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--backdoor") == 0 && i + 1 < argc)
                bd = argv[++i];
            else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) &&
                     i + 1 < argc)
                out = argv[++i];
            else if (argv[i][0] == '-')
                die_usage("dataset export: unknown option or missing value '%s'", argv[i]);
            else if (!ds)
                ds = argv[i];
            else
                die_usage("dataset export: more than one dataset");
        }
        if (!ds || !bd || !out)
            die_usage("dataset export: D, --backdoor B and -o FILE are required");
        char *abs = absolute_path(out);
        connect_daemon();
        json_t *r = rpc("dataset.export",
                        json_pack("{s:s,s:s,s:s}", "id", ds, "backdoor", bd, "output", abs));
        if (opt_json)
            print_json(r);
        else
            printf("wrote %s (%lld bytes, sha256 %s)\n", abs,
                   (long long)json_integer_value(json_object_get(r, "bytes")),
                   json_string_value(json_object_get(r, "sha256")));
        free(abs);
        json_decref(r);
        return 0;
    }
    die_usage("unknown dataset command '%s'", sub);
}

/*
 * vtunectl.c — the control tool: one JSON-RPC request over the Unix socket,
 * its progress notifications shown on a terminal, and its result printed as
 * an aligned table (default) or one JSON value (--json).
 *
 * Exit status: 0 success, 1 the daemon (or the connection) reported a
 * failure, 2 usage error.  Forms are fixed by DESIGN §10.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/util.h"

#define DEFAULT_SOCKET "/run/vtuned/vtuned.sock"

static const char *opt_socket;
static int opt_json;
static int show_progress;

static const char usage_main[] =
    "usage: vtunectl [-s SOCKET] [--json] COMMAND ...\n"
    "\n"
    "Controls vtuned, the verifiable fine-tuning daemon, over its Unix socket.\n"
    "\n"
    "Commands:\n"
    "  status                         daemon version, uptime, counts, providers\n"
    "  dataset add FILE [--name NAME] [--format auto|chat|prompt|instruction]\n"
    "                                 import a JSONL dataset (validated, hashed, copied)\n"
    "  dataset list                   list datasets\n"
    "  dataset show D                 show one dataset (D is an id or a name)\n"
    "  dataset rm D                   remove a dataset no backdoor or job uses\n"
    "  dataset export D --backdoor B -o FILE\n"
    "                                 write D u D' for a provider you drive yourself\n"
    "  backdoor create D [--ratio R] [--copies N] [--pairs K] [--generator wordlist|llm]\n"
    "                  [--target-log10p X] [--seed N] [--name NAME]\n"
    "                                 generate secret trigger/signature pairs, build D u D'\n"
    "  backdoor list [--dataset D]    list backdoors (no secrets)\n"
    "  backdoor show B [--reveal]     show one backdoor; --reveal prints the phrases\n"
    "  backdoor rm B                  remove a backdoor no job uses\n"
    "\n"
    "Options:\n"
    "  -s, --socket SOCKET  control socket (default $VTUNE_SOCKET, else " DEFAULT_SOCKET ")\n"
    "      --json           print one JSON value instead of a table\n"
    "  -q, --quiet          no progress display\n"
    "  -V, --version        print the version and exit\n"
    "  -h, --help           print this help; 'vtunectl COMMAND --help' for one command\n"
    "\n"
    "Exit status: 0 success, 1 failure reported by vtuned, 2 usage error.\n"
    "See vtunectl(1).\n";

static const char usage_status[] = "usage: vtunectl [-s SOCKET] [--json] status\n"
                                   "\n"
                                   "Shows the daemon's version, uptime, object counts, configured\n"
                                   "providers and current activity.\n";

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

static const char usage_backdoor[] =
    "usage: vtunectl [-s SOCKET] [--json] backdoor create D [--ratio R] [--copies N] [--pairs K]\n"
    "                    [--generator wordlist|llm] [--target-log10p X] [--trigger-log10p X]\n"
    "                    [--seed N] [--name NAME]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor list [--dataset D]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor show B [--reveal]\n"
    "       vtunectl [-s SOCKET] [--json] backdoor rm B\n"
    "\n"
    "create  draws K secret (trigger, signature) pairs with a CSPRNG from a word list,\n"
    "        rejects phrases that occur in dataset D or share words, and builds D u D':\n"
    "        max(N, ceil(R*|D|)) copies of D's examples per pair, the trigger appended to\n"
    "        the prompt and the signature prefixed to the response, placed uniformly.\n"
    "          --ratio R           copies as a fraction of |D| (default 0.005)\n"
    "          --copies N          minimum copies per pair (default 50)\n"
    "          --pairs K           trigger/signature pairs (default 1)\n"
    "          --target-log10p X   the signature's probability target (default -40,\n"
    "                              or generator.target_log10p from the config)\n"
    "          --trigger-log10p X  the trigger's probability target (default -20)\n"
    "          --generator G       wordlist (default; offline) or llm\n"
    "          --seed N            reproducible phrases: for tests only, since anyone\n"
    "                              who knows N can recreate the secret\n"
    "list    backdoors with their commitment (SHA-256 over the phrases), never the phrases.\n"
    "show    one backdoor; --reveal adds the phrases (the reveal is logged).\n"
    "rm      removes a backdoor no job uses, with its built file.\n";

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("vtunectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; try 'vtunectl --help'\n", stderr);
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("vtunectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* ---- connection ---------------------------------------------------------------------------- */

static int sock_fd = -1;
static struct buf rbuf;

static void connect_daemon(void)
{
    struct sockaddr_un sa;
    if (strlen(opt_socket) >= sizeof sa.sun_path)
        die("socket path too long: %s", opt_socket);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, opt_socket);
    sock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock_fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(sock_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            die("cannot connect to %s: %s (is vtuned running? start it with 'systemctl start "
                "vtuned', or pass -s SOCKET)",
                opt_socket, strerror(e));
        if (e == EACCES)
            die("cannot connect to %s: %s (ask for membership of the socket's group)", opt_socket,
                strerror(e));
        die("cannot connect to %s: %s", opt_socket, strerror(e));
    }
}

/* Reads one line from the daemon; returns owned JSON or dies. */
static json_t *read_message(void)
{
    for (;;) {
        char *nl = rbuf.len ? memchr(rbuf.data, '\n', rbuf.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - rbuf.data);
            json_error_t je;
            json_t *v = json_loadb(rbuf.data, n, 0, &je);
            memmove(rbuf.data, nl + 1, rbuf.len - n - 1);
            rbuf.len -= n + 1;
            if (!v)
                die("malformed reply from vtuned: %s", je.text);
            return v;
        }
        char tmp[65536];
        ssize_t r = read(sock_fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET && rbuf.len == 0)
            die("vtuned closed the connection before answering (see its log)");
        if (r < 0)
            die("reading from %s: %s", opt_socket, strerror(errno));
        if (r == 0)
            die("vtuned closed the connection before answering (see its log)");
        buf_append(&rbuf, tmp, (size_t)r);
    }
}

static void human_bytes(double b, char *out, size_t n)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void show_notification(json_t *msg)
{
    json_t *p = json_object_get(msg, "params");
    if (!show_progress || !p)
        return;
    double done = (double)json_integer_value(json_object_get(p, "bytes"));
    double total = (double)json_integer_value(json_object_get(p, "total"));
    const char *stage = json_string_value(json_object_get(p, "stage"));
    char a[32], b[32];
    human_bytes(done, a, sizeof a);
    human_bytes(total, b, sizeof b);
    fprintf(stderr, "\r%s: %s / %s (%.0f%%)   ", stage ? stage : "working", a, b,
            total > 0 ? 100.0 * done / total : 100.0);
    fflush(stderr);
}

/* Sends method(params) and waits for its answer.  Returns the result (owned)
 * or exits 1 after printing the daemon's error. */
static json_t *rpc(const char *method, json_t *params)
{
    static int next_id = 1;
    int id = next_id++;
    json_t *req = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", id, "method", method,
                            "params", params ? params : json_object());
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t n = strlen(line);
    line = xrealloc(line, n + 2);
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = send(sock_fd, line + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            break; /* the daemon hung up: its reason, if any, is waiting to be read */
        if (w < 0)
            die("writing to %s: %s", opt_socket, strerror(errno));
        off += (size_t)w;
    }
    free(line);
    int progressed = 0;
    for (;;) {
        json_t *msg = read_message();
        json_t *mid = json_object_get(msg, "id");
        if (!mid || json_is_null(mid)) {
            if (json_object_get(msg, "error"))
                goto error; /* connection-level error (denied, too large) */
            show_notification(msg);
            progressed = show_progress;
            json_decref(msg);
            continue;
        }
        if (json_integer_value(mid) != id) {
            json_decref(msg);
            continue;
        }
        if (progressed)
            fputc('\n', stderr);
        if (json_object_get(msg, "error"))
            goto error;
        json_t *res = json_incref(json_object_get(msg, "result"));
        json_decref(msg);
        return res;
    error : {
        json_t *e = json_object_get(msg, "error");
        if (opt_json) {
            char *s = json_dumps(e, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("{\"error\": %s}\n", s);
            free(s);
        }
        fprintf(stderr, "vtunectl: %s\n", json_string_value(json_object_get(e, "message")));
        json_decref(msg);
        exit(1);
    }
    }
}

/* ---- output -------------------------------------------------------------------------------- */

static void print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(s);
    free(s);
}

/* Formats a JSON scalar for a table cell (owned). */
static char *cell(json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%.3g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "yes" : "no");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Prints rows (array of objects) as an aligned table of the given keys. */
static void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncol)
{
    size_t nrow = json_array_size(rows);
    size_t *w = xcalloc((size_t)ncol, sizeof *w);
    char **cells = xcalloc(nrow * (size_t)ncol + 1, sizeof *cells);
    for (int c = 0; c < ncol; c++)
        w[c] = strlen(heads[c]);
    for (size_t r = 0; r < nrow; r++)
        for (int c = 0; c < ncol; c++) {
            char *s = cell(json_object_get(json_array_get(rows, r), keys[c]));
            cells[r * (size_t)ncol + (size_t)c] = s;
            if (strlen(s) > w[c])
                w[c] = strlen(s);
        }
    for (int c = 0; c < ncol; c++)
        printf("%-*s%s", c + 1 < ncol ? (int)w[c] : 0, heads[c], c + 1 < ncol ? "  " : "\n");
    for (size_t r = 0; r < nrow; r++)
        for (int c = 0; c < ncol; c++)
            printf("%-*s%s", c + 1 < ncol ? (int)w[c] : 0, cells[r * (size_t)ncol + (size_t)c],
                   c + 1 < ncol ? "  " : "\n");
    if (nrow == 0)
        printf("(none)\n");
    for (size_t i = 0; i < nrow * (size_t)ncol; i++)
        free(cells[i]);
    free(cells);
    free(w);
}

/* Prints an object as "key: value" lines, in the given order, aligned. */
static void print_fields(json_t *obj, const char *const *keys, const char *const *labels, int n)
{
    size_t w = 0;
    for (int i = 0; i < n; i++)
        if (strlen(labels[i]) > w)
            w = strlen(labels[i]);
    for (int i = 0; i < n; i++) {
        char *s = cell(json_object_get(obj, keys[i]));
        printf("%-*s  %s\n", (int)w + 1, labels[i], s);
        free(s);
    }
}

/* ---- commands ------------------------------------------------------------------------------ */

static int wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_status, stdout);
        return 0;
    }
    if (argc > 1)
        die_usage("status takes no arguments");
    connect_daemon();
    json_t *r = rpc("status", NULL);
    if (opt_json) {
        print_json(r);
    } else {
        static const char *const k[] = {"version",   "pid",    "started_at", "uptime_seconds",
                                        "state_dir", "socket", "config"};
        static const char *const l[] = {
            "version:", "pid:", "started:", "uptime (s):", "state dir:", "socket:", "config:"};
        print_fields(r, k, l, 7);
        json_t *c = json_object_get(r, "counts");
        printf("\ncounts:\n");
        static const char *const ck[] = {"datasets",      "backdoors", "jobs",     "jobs_active",
                                         "verifications", "audits",    "schedules"};
        static const char *const cl[] = {
            "  datasets:",      "  backdoors:", "  jobs:",     "  active jobs:",
            "  verifications:", "  audits:",    "  schedules:"};
        print_fields(c, ck, cl, 7);
        printf("\nproviders:\n");
        static const char *const pk[] = {"name", "kind", "base_url", "health"};
        static const char *const ph[] = {"NAME", "KIND", "BASE URL", "HEALTH"};
        print_table(json_object_get(r, "providers"), pk, ph, 4);
    }
    json_decref(r);
    return 0;
}

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

/* An absolute form of a path that may not exist yet (its directory must). */
static char *absolute_path(const char *p)
{
    char dir[PATH_MAX];
    if (p[0] == '/')
        return xstrdup(p);
    if (!getcwd(dir, sizeof dir))
        die("cannot read the current directory: %s", strerror(errno));
    return xasprintf("%s/%s", dir, p);
}

static int cmd_dataset(int argc, char **argv)
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

static int cmd_backdoor(int argc, char **argv)
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

int main(int argc, char **argv)
{
    int i;
    int quiet = 0;
    opt_socket = getenv("VTUNE_SOCKET");
    if (!opt_socket || !*opt_socket)
        opt_socket = DEFAULT_SOCKET;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) && i + 1 < argc)
            opt_socket = argv[++i];
        else if (strncmp(a, "--socket=", 9) == 0)
            opt_socket = a + 9;
        else if (strcmp(a, "--json") == 0)
            opt_json = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_main, stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("vtunectl %s\n", PACKAGE_VERSION);
            return 0;
        } else
            die_usage("unknown option '%s'", a);
    }
    if (i >= argc) {
        fputs(usage_main, stderr);
        return 2;
    }
    /* --json and -q are accepted after the command too ("backdoor show B --json"). */
    int w = i;
    for (int r = i; r < argc; r++) {
        if (strcmp(argv[r], "--json") == 0)
            opt_json = 1;
        else if (strcmp(argv[r], "-q") == 0 || strcmp(argv[r], "--quiet") == 0)
            quiet = 1;
        else
            argv[w++] = argv[r];
    }
    argc = w;
    show_progress = !quiet && !opt_json && isatty(STDERR_FILENO);
    buf_init(&rbuf);
    const char *cmd = argv[i];
    int rc;
    if (strcmp(cmd, "status") == 0)
        rc = cmd_status(argc - i, argv + i);
    else if (strcmp(cmd, "dataset") == 0)
        rc = cmd_dataset(argc - i, argv + i);
    else if (strcmp(cmd, "backdoor") == 0)
        rc = cmd_backdoor(argc - i, argv + i);
    else if (strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        rc = 0;
    } else
        die_usage("unknown command '%s'", cmd);
    buf_free(&rbuf);
    if (sock_fd >= 0)
        close(sock_fd);
    return rc;
}

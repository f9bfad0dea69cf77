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
    "\n"
    "add   imports FILE, a JSONL dataset (one example per line: chat {\"messages\":[...]},\n"
    "      {\"prompt\",\"completion\"} or {\"instruction\",\"input\",\"output\"}).  Every line is\n"
    "      validated; a bad line is reported with its number and field and nothing is\n"
    "      stored.  The daemon reads FILE itself, so it must be readable by the daemon\n"
    "      and by you.  NAME defaults to the file's name without .jsonl.\n"
    "list  lists datasets.\n"
    "show  shows dataset D (an id or a name).\n"
    "rm    removes dataset D and its stored copy; refused while a backdoor or job uses it.\n";

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
    die_usage("unknown dataset command '%s'", sub);
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
    show_progress = !quiet && !opt_json && isatty(STDERR_FILENO);
    buf_init(&rbuf);
    const char *cmd = argv[i];
    int rc;
    if (strcmp(cmd, "status") == 0)
        rc = cmd_status(argc - i, argv + i);
    else if (strcmp(cmd, "dataset") == 0)
        rc = cmd_dataset(argc - i, argv + i);
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

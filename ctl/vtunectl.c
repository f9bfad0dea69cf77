/*
 * vtunectl.c — the control tool: one JSON-RPC request over the Unix socket,
 * its progress notifications shown on a terminal, and its result printed as
 * an aligned table (default) or one JSON value (--json).
 *
 * The command line is parsed by the command table (cmdtab.c); this file is
 * the transport and the output.  Exit status: 0 success, 1 the daemon (or
 * the connection) reported a failure, 2 usage error.  Forms are fixed by
 * DESIGN §10.
 *
 * Under --json every output goes through one place, so that the forms of
 * vtunectl(1) JSON OUTPUT (and the JSON Schemas of ctl/schema/) hold for
 * every command: json_present() turns the protocol's log10 strings
 * ("-inf") into null plus the object's "log10_zero" list, and a failure of
 * any kind (usage, connection, local file, the daemon's error) is the one
 * object {"error":{"code","message"[,"data"]}} on standard output and
 * nothing on standard error.  The daemon's stored and signed forms are not
 * touched: this is presentation only.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/util.h"
#include "workers/verify.h"
#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"

const char *opt_socket;
int opt_json;
int show_progress;
int opt_quiet;
int json_stream;
long long json_stream_job;

/* ---- errors -------------------------------------------------------------------------------- */

void print_error(int code, const char *message, json_t *data)
{
    if (!opt_json) {
        fprintf(stderr, "vtunectl: %s\n", message);
        return;
    }
    /* A file name in the message may not be UTF-8: cleaned (U+FFFD). */
    char *clean = verify_clean_text(message ? message : "", SIZE_MAX);
    json_t *e = json_pack("{s:i,s:s}", CTL_RPC_ERR_CODE, code, CTL_RPC_ERR_MESSAGE, clean);
    free(clean);
    if (json_is_object(data))
        json_object_set(e, CTL_RPC_ERR_DATA, data);
    json_t *o = json_stream
                    ? json_pack("{s:s,s:o,s:o}", "type", "error", CTL_K_JOB_ID,
                                json_stream_job ? json_integer(json_stream_job) : json_null(),
                                CTL_RPC_ERROR, e)
                    : json_pack("{s:o}", CTL_RPC_ERROR, e);
    print_json(o);
    json_decref(o);
    fflush(stdout);
}

static void vdie(int code, const char *fmt, va_list ap)
    __attribute__((noreturn, format(printf, 2, 0)));
static void vdie(int code, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    print_error(code, msg ? msg : fmt, NULL);
    free(msg);
    exit(1);
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(VTCTL_E_LOCAL, fmt, ap);
}

void die_code(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(code, fmt, ap);
}

/* ---- connection ---------------------------------------------------------------------------- */

static int sock_fd = -1;
static struct buf rbuf;

void connect_daemon(void)
{
    struct sockaddr_un sa;
    if (strlen(opt_socket) >= sizeof sa.sun_path)
        die_code(VTCTL_E_CONNECT, "socket path too long: %s", opt_socket);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, opt_socket);
    sock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock_fd < 0)
        die_code(VTCTL_E_CONNECT, "socket: %s", strerror(errno));
    if (connect(sock_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            die_code(VTCTL_E_CONNECT,
                     "cannot connect to %s: %s (is vtuned running? start it with 'systemctl "
                     "start vtuned', or pass -s SOCKET)",
                     opt_socket, strerror(e));
        if (e == EACCES)
            die_code(VTCTL_E_CONNECT,
                     "cannot connect to %s: %s (ask for membership of the socket's group)",
                     opt_socket, strerror(e));
        die_code(VTCTL_E_CONNECT, "cannot connect to %s: %s", opt_socket, strerror(e));
    }
}

uid_t daemon_uid(void)
{
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (sock_fd < 0 || getsockopt(sock_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return (uid_t)-1;
    return uc.uid;
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
                die_code(VTCTL_E_CONNECTION, "malformed reply from vtuned: %s", je.text);
            return v;
        }
        char tmp[65536];
        ssize_t r = read(sock_fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET && rbuf.len == 0)
            die_code(VTCTL_E_CONNECTION,
                     "vtuned closed the connection before answering (see its log)");
        if (r < 0)
            die_code(VTCTL_E_CONNECTION, "reading from %s: %s", opt_socket, strerror(errno));
        if (r == 0)
            die_code(VTCTL_E_CONNECTION,
                     "vtuned closed the connection before answering (see its log)");
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

/* Progress (a "progress" notification's params), shown when show_progress:
 * under --json one NDJSON line {"type":"progress", …params} on stream
 * (stderr, or stdout inside a --watch event stream); otherwise one line on
 * stderr, rewritten in place on a terminal.  Returns 1 when a line was left
 * open (a terminal's \r line: the caller ends it before other output). */
int print_progress(json_t *p, FILE *stream)
{
    if (!json_is_object(p))
        return 0;
    if (opt_json) {
        json_t *ev = json_pack("{s:s}", "type", "progress");
        if (json_stream) /* a --watch --json stream names its job in every line */
            json_object_set_new(ev, CTL_K_JOB_ID,
                                json_stream_job ? json_integer(json_stream_job) : json_null());
        json_object_update(ev, p);
        char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(stream, "%s\n", s);
        fflush(stream);
        free(s);
        json_decref(ev);
        return 0;
    }
    const char *stage = json_string_value(json_object_get(p, CTL_K_STAGE));
    const char *unit = json_string_value(json_object_get(p, CTL_K_UNIT));
    json_t *jd = json_object_get(p, CTL_K_DONE), *jt = json_object_get(p, CTL_K_TOTAL);
    if (!jd) /* an older vtuned: {stage, bytes, total} */
        jd = json_object_get(p, CTL_K_BYTES), unit = "bytes";
    double done = (double)json_integer_value(jd), total = (double)json_integer_value(jt);
    char a[32], b[48], pct[16] = "";
    if (unit && strcmp(unit, "bytes") == 0) {
        human_bytes(done, a, sizeof a);
        human_bytes(total, b, sizeof b);
    } else {
        snprintf(a, sizeof a, "%.0f", done);
        snprintf(b, sizeof b, "%.0f %s", total, unit ? unit : "");
    }
    if (json_is_integer(jt) && total > 0)
        snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * done / total);
    int tty = isatty(fileno(stream));
    if (json_is_integer(jt))
        fprintf(stream, "%s%s: %s / %s%s%s", tty ? "\r" : "", stage ? stage : "working", a, b, pct,
                tty ? "   " : "\n");
    else
        fprintf(stream, "%s%s: %s %s%s", tty ? "\r" : "", stage ? stage : "working", a,
                unit ? unit : "", tty ? "   " : "\n");
    fflush(stream);
    return tty;
}

static int show_notification(json_t *msg)
{
    json_t *p = json_object_get(msg, CTL_RPC_PARAMS);
    const char *m = json_string_value(json_object_get(msg, CTL_RPC_METHOD));
    if (!show_progress || !p || !m || strcmp(m, CTL_N_PROGRESS) != 0)
        return 0;
    return print_progress(p, stderr);
}

/* Sends method(params) and waits for its answer.  Returns the result (owned)
 * or exits 1 after printing the daemon's error. */
/* Sends the first bytes of a request line with the descriptors fds[0..n)
 * attached (SCM_RIGHTS): the daemon attaches them to this line (vtuned(8),
 * CONTROL PROTOCOL).  Returns what sendmsg returns. */
static ssize_t send_with_fds(const char *data, size_t len, const int *fds, int n)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * 8)];
    } u;
    struct iovec iov = {(void *)data, len};
    struct msghdr msg = {0};
    struct cmsghdr *cm;
    if (n > 8)
        die("internal error: %d descriptors for one request", n);
    memset(&u, 0, sizeof u);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
    return sendmsg(sock_fd, &msg, MSG_NOSIGNAL);
}

static json_t *rpc_impl(const char *method, json_t *params, const int *fds, int n_fds,
                        void (*on_note)(json_t *, void *), void *ctx)
{
    static int next_id = 1;
    int id = next_id++;
    json_t *req =
        json_pack("{s:s,s:i,s:s,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION, CTL_RPC_ID, id,
                  CTL_RPC_METHOD, method, CTL_RPC_PARAMS, params ? params : json_object());
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t n = strlen(line);
    line = xrealloc(line, n + 2);
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = off == 0 && n_fds > 0 ? send_with_fds(line, n, fds, n_fds)
                                          : send(sock_fd, line + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            break; /* the daemon hung up: its reason, if any, is waiting to be read */
        if (w < 0)
            die_code(VTCTL_E_CONNECTION, "writing to %s: %s", opt_socket, strerror(errno));
        off += (size_t)w;
    }
    free(line);
    int progressed = 0;
    for (;;) {
        json_t *msg = read_message();
        json_t *mid = json_object_get(msg, CTL_RPC_ID);
        if (!mid || json_is_null(mid)) {
            if (json_object_get(msg, CTL_RPC_ERROR))
                goto error; /* connection-level error (denied, too large) */
            if (on_note) {
                on_note(msg, ctx);
            } else {
                progressed |= show_notification(msg);
            }
            json_decref(msg);
            continue;
        }
        if (json_integer_value(mid) != id) {
            json_decref(msg);
            continue;
        }
        if (progressed)
            fputc('\n', stderr);
        if (json_object_get(msg, CTL_RPC_ERROR))
            goto error;
        json_t *res = json_incref(json_object_get(msg, CTL_RPC_RESULT));
        json_decref(msg);
        return res;
    error : {
        json_t *e = json_object_get(msg, CTL_RPC_ERROR);
        const char *m = json_string_value(json_object_get(e, CTL_RPC_ERR_MESSAGE));
        json_t *jc = json_object_get(e, CTL_RPC_ERR_CODE);
        print_error(json_is_integer(jc) ? (int)json_integer_value(jc) : CTL_ERR_INTERNAL,
                    m ? m : "vtuned answered an error without a message (see its log)",
                    json_object_get(e, CTL_RPC_ERR_DATA));
        /* The daemon judged the arguments themselves wrong (e.g. an unknown
         * --param for the provider's kind, known only to the daemon): a
         * usage error, like one vtunectl finds itself. */
        int usage = json_integer_value(json_object_get(e, CTL_RPC_ERR_CODE)) == CTL_ERR_PARAMS &&
                    json_is_true(json_object_get(json_object_get(e, CTL_RPC_ERR_DATA), CTL_K_USAGE));
        json_decref(msg);
        exit(usage ? 2 : 1);
    }
    }
}

/* ---- output -------------------------------------------------------------------------------- */

/* Whether a key names a log10 probability (log10_p, target_log10p, ...). */
static int is_log10_key(const char *k)
{
    return strstr(k, "log10") != NULL;
}

json_t *json_present(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            json_present(json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_t *zero = NULL;
        json_object_foreach(v, k, x)
        {
            if (json_is_string(x) && is_log10_key(k)) {
                /* JSON has no infinity: the protocol writes "-inf" (p = 0)
                 * or "inf"; here every log10 is a number or null. */
                if (strcmp(json_string_value(x), "-inf") == 0) {
                    if (!zero)
                        zero = json_array();
                    json_array_append_new(zero, json_string(k));
                }
                json_object_set_new(v, k, json_null());
            } else {
                json_present(x);
            }
        }
        if (zero)
            json_object_set_new(v, CTL_K_LOG10_ZERO, zero);
    }
    return v;
}

void print_json(json_t *v)
{
    json_present(v);
    char *s = json_dumps(v, (json_stream ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER |
                                JSON_ENCODE_ANY);
    if (!s)
        abort(); /* only on out-of-memory */
    puts(s);
    free(s);
}

/* Formats a JSON scalar for a table cell (owned). */
static char *cell(json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v)) /* shown escaped: a control byte neither hides nor moves text */
        return text_escape_control(json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%.3g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "yes" : "no");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Prints rows (array of objects) as an aligned table of the given keys. */
void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncol)
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
void print_fields(json_t *obj, const char *const *keys, const char *const *labels, int n)
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

json_t *rpc(const char *method, json_t *params)
{
    return rpc_impl(method, params, NULL, 0, NULL, NULL);
}

json_t *rpc_fds(const char *method, json_t *params, const int *fds, int n_fds)
{
    return rpc_impl(method, params, fds, n_fds, NULL, NULL);
}

json_t *rpc_stream(const char *method, json_t *params, void (*on_note)(json_t *note, void *ctx),
                   void *ctx)
{
    return rpc_impl(method, params, NULL, 0, on_note, ctx);
}

/* An absolute form of a path that may not exist yet (its directory must). */
static const char *pending_output;

static void remove_pending_output(void)
{
    if (pending_output)
        unlink(pending_output);
}

void output_pending(const char *path)
{
    static bool registered;
    if (path && !registered) {
        atexit(remove_pending_output);
        registered = true;
    }
    pending_output = path;
}

int output_create(const char *path, mode_t mode, const char *what)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST)
        die("%s: cannot create: %s (%s never overwrites a file: choose a new name)", path,
            strerror(EEXIST), what);
    if (fd < 0)
        die("%s: cannot create: %s", path, strerror(errno));
    output_pending(path);
    return fd;
}

char *absolute_path(const char *p)
{
    char dir[PATH_MAX];
    if (p[0] == '/')
        return xstrdup(p);
    if (!getcwd(dir, sizeof dir))
        die("cannot read the current directory: %s", strerror(errno));
    return xasprintf("%s/%s", dir, p);
}

int main(int argc, char **argv)
{
    buf_init(&rbuf);
    int rc = ctl_main(argc, argv);
    buf_free(&rbuf);
    if (sock_fd >= 0)
        close(sock_fd);
    return rc;
}

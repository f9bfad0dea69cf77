/*
 * log.c — levelled logging to stderr, or to journald's native protocol when
 * stderr is the journal (see log.h).
 *
 * The journal sink writes the protocol itself (systemd's "Native Journal
 * Protocol": one datagram per record, each field "NAME=value\n", or, for a
 * value holding a newline, "NAME\n" + its length as 64-bit little-endian +
 * the bytes + "\n").  Records are at most a few KiB, far below the datagram
 * limit, so the memfd path of large sd_journal_send() records is not needed.
 * The sink is chosen once (pthread_once), before or at the first record, so
 * pool threads never race on it; a record the socket refuses goes to stderr.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const char *log_prog = "vtuned";
static enum log_level log_min = LOG_LVL_INFO;
static int log_stream;      /* stderr is journald's stream: "<N>" prefix on fallback */
static int journal_fd = -1; /* datagram socket to journald, or -1: stderr */
static struct sockaddr_un journal_addr;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const int level_syslog[] = {7, 6, 4, 3};

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INO" of the stream given as
 * stdout/stderr; a child whose stderr was redirected inherits the variable,
 * so it counts only when fd 2 is that very stream. */
static int stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void log_detect(void)
{
    const char *path = getenv("VTUNE_JOURNAL_SOCKET");
    log_stream = stderr_is_journal();
    if ((!path || !*path) && log_stream)
        path = JOURNAL_SOCKET;
    if (!path || !*path || strlen(path) >= sizeof journal_addr.sun_path)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    memset(&journal_addr, 0, sizeof journal_addr);
    journal_addr.sun_family = AF_UNIX;
    memcpy(journal_addr.sun_path, path, strlen(path) + 1);
    journal_fd = fd;
}

void log_init(const char *progname, enum log_level min_level)
{
    log_prog = progname;
    log_min = min_level;
    pthread_once(&log_once, log_detect);
}

int log_to_journal(void)
{
    pthread_once(&log_once, log_detect);
    return journal_fd >= 0;
}

void log_set_level(enum log_level min_level)
{
    log_min = min_level;
}

enum log_level log_get_level(void)
{
    return log_min;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_LVL_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level l)
{
    return (unsigned)l < 4 ? level_names[l] : "?";
}

/* ---- the journal's native protocol ------------------------------------------------------- */

struct jbuf {
    char d[8192];
    size_t n;
    int full;
};

static void jput(struct jbuf *b, const void *p, size_t n)
{
    if (b->full || n > sizeof b->d - b->n) {
        b->full = 1;
        return;
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

/* One field; the binary form when the value holds a newline. */
static void jfield(struct jbuf *b, const char *name, const char *val, size_t len)
{
    jput(b, name, strlen(name));
    if (!memchr(val, '\n', len)) {
        jput(b, "=", 1);
        jput(b, val, len);
    } else {
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)((uint64_t)len >> (8 * i));
        jput(b, "\n", 1);
        jput(b, le, sizeof le);
        jput(b, val, len);
    }
    jput(b, "\n", 1);
}

static void jfield_int(struct jbuf *b, const char *name, long long v)
{
    char s[24];
    int k = snprintf(s, sizeof s, "%lld", v);
    jfield(b, name, s, (size_t)k);
}

/* Sends one record; returns 0, or -1 (the caller writes it to stderr). */
static int journal_send(enum log_level lvl, int errnum, const struct log_fields *f, const char *msg,
                        size_t len)
{
    struct jbuf b;
    b.n = 0;
    b.full = 0;
    jfield_int(&b, "PRIORITY", level_syslog[lvl]);
    jfield(&b, "SYSLOG_IDENTIFIER", log_prog, strlen(log_prog));
    jfield(&b, "MESSAGE", msg, len);
    if (errnum)
        jfield_int(&b, "ERRNO", errnum);
    if (f) {
        if (f->job)
            jfield_int(&b, "VTUNE_JOB", (long long)f->job);
        if (f->provider && *f->provider)
            jfield(&b, "VTUNE_PROVIDER", f->provider, strlen(f->provider));
        if (f->audit)
            jfield_int(&b, "VTUNE_AUDIT", (long long)f->audit);
        if (f->dataset)
            jfield_int(&b, "VTUNE_DATASET", (long long)f->dataset);
        if (f->backdoor)
            jfield_int(&b, "VTUNE_BACKDOOR", (long long)f->backdoor);
    }
    if (b.full)
        return -1;
    for (;;) {
        ssize_t w = sendto(journal_fd, b.d, b.n, MSG_NOSIGNAL, (struct sockaddr *)&journal_addr,
                           sizeof journal_addr);
        if (w >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- records ----------------------------------------------------------------------------- */

static void log_emit(enum log_level lvl, int errnum, const struct log_fields *f, const char *fmt,
                     va_list ap)
{
    char msg[4096], buf[4200];
    size_t m = 0, n = 0;

    if (lvl < log_min)
        return;
    pthread_once(&log_once, log_detect);
    int k = vsnprintf(msg, sizeof msg, fmt, ap);
    if (k > 0)
        m = (size_t)k < sizeof msg ? (size_t)k : sizeof msg - 1;
    if (errnum) {
        char eb[128];
        k = snprintf(msg + m, sizeof msg - m, ": %s", strerror_r(errnum, eb, sizeof eb));
        if (k > 0)
            m = m + (size_t)k < sizeof msg ? m + (size_t)k : sizeof msg - 1;
    }
    /* One line per record: newlines inside a message would forge records. */
    for (size_t i = 0; i < m; i++)
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    if (journal_fd >= 0 && journal_send(lvl, errnum, f, msg, m) == 0)
        return;
    if (log_stream) {
        n = (size_t)snprintf(buf, sizeof buf, "<%d>%s: ", level_syslog[lvl], level_names[lvl]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(buf + n, sizeof buf - n, ".%03ldZ %s[%ld] %-5s ",
                              ts.tv_nsec / 1000000, log_prog, (long)getpid(), level_names[lvl]);
    }
    if (n + m + 1 > sizeof buf)
        m = sizeof buf - n - 1;
    memcpy(buf + n, msg, m);
    n += m;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

#define LOG_FN(name, lvl, use_errno)                                                               \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        int saved = errno;                                                                         \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(lvl, use_errno ? saved : 0, NULL, fmt, ap);                                       \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    }

LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_error, LOG_LVL_ERROR, 0)

void log_ctx(enum log_level lvl, const struct log_fields *f, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, 0, f, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_job(enum log_level lvl, int64_t job, const char *provider, const char *fmt, ...)
{
    int saved = errno;
    struct log_fields f = {.job = job, .provider = provider};
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, 0, &f, fmt, ap);
    va_end(ap);
    errno = saved;
}

void fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, saved, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, 0, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}

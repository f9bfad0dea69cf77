/*
 * log.c — stderr logging with levels and timestamps (see log.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static const char *log_prog = "vtuned";
static enum log_level log_min = LOG_LVL_INFO;
static int log_journal = -1; /* -1 unknown, 0 plain stderr, 1 journald stream */

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const int level_syslog[] = {7, 6, 4, 3};

void log_init(const char *progname, enum log_level min_level)
{
    log_prog = progname;
    log_min = min_level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
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

static void log_emit(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
    char buf[4096];
    size_t n = 0;

    if (lvl < log_min)
        return;
    if (log_journal < 0)
        log_journal = getenv("JOURNAL_STREAM") != NULL;
    if (log_journal) {
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
    if (n < sizeof buf) {
        int k = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
        if (k > 0)
            n += (size_t)k;
    }
    if (n > sizeof buf - 2)
        n = sizeof buf - 2;
    if (errnum) {
        char eb[128];
        int k = snprintf(buf + n, sizeof buf - n, ": %s", strerror_r(errnum, eb, sizeof eb));
        if (k > 0)
            n += (size_t)k;
        if (n > sizeof buf - 2)
            n = sizeof buf - 2;
    }
    /* One line per record: newlines inside a message would forge records. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
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
        log_emit(lvl, use_errno ? saved : 0, fmt, ap);                                             \
        va_end(ap);                                                                                \
        errno = saved;                                                                             \
    }

LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_error, LOG_LVL_ERROR, 0)

void fatal(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, saved, fmt, ap);
    va_end(ap);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERROR, 0, fmt, ap);
    va_end(ap);
    exit(1);
}

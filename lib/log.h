/*
 * log.h — the one logging API of vtuned, vtunectl and vtune-sim.
 *
 * Lines go to stderr as
 *   2026-11-21T20:55:01.123Z vtuned[42] warn  store: message
 * When stderr IS the journal (JOURNAL_STREAM names the device and inode of
 * fd 2, systemd.exec(5)), each record is sent instead as one datagram of
 * journald's native protocol to /run/systemd/journal/socket, with the
 * fields MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ERRNO (log_warn) and the
 * context fields of log_ctx()/log_job(): VTUNE_JOB, VTUNE_PROVIDER,
 * VTUNE_AUDIT, VTUNE_DATASET, VTUNE_BACKDOOR, so that
 * `journalctl -u vtuned VTUNE_JOB=12` finds a job's lines.  The protocol is
 * written here (a few lines of framing) rather than through libsystemd's
 * sd_journal_send(), so nothing new is linked and a test can receive it:
 * VTUNE_JOURNAL_SOCKET=PATH forces the journal sink to the datagram socket
 * PATH.  When a datagram cannot be sent the record goes to stderr, with a
 * syslog priority prefix "<4>" under journald (its stream keeps the level).
 * The context fields never change the text: elsewhere the line is the same.
 *
 * Idiom (after OpenBSD): log_warn() appends ": strerror(errno)", log_warnx()
 * does not; fatal()/fatalx() log and exit(1) and are for start-up only.
 * Secrets never reach this API: callers redact before formatting.
 * Thread-safe: each line is formatted into one buffer and written with one
 * write(2).
 */
#ifndef VT_LOG_H
#define VT_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Sets the program tag and the lowest level written. */
void log_init(const char *progname, enum log_level min_level);
void log_set_level(enum log_level min_level);
enum log_level log_get_level(void);
/* Parses "debug" | "info" | "warn" | "error"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What a record is about: journal fields (see above); ignored on stderr.
 * 0 / NULL: the field is absent.  Strings are borrowed for the call. */
struct log_fields {
    int64_t job, audit, dataset, backdoor;
    const char *provider;
};

/* A record with context fields; lvl LOG_LVL_*; no errno suffix. */
void log_ctx(enum log_level lvl, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Shorthand: a record about job (0: none) at provider (NULL: none). */
void log_job(enum log_level lvl, int64_t job, const char *provider, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* True when records go to the journal (native protocol) rather than stderr. */
int log_to_journal(void);

void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

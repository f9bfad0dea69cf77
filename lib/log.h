/*
 * log.h — the one logging API of vtuned, vtunectl and vtune-sim.
 *
 * Lines go to stderr (journald under systemd) as
 *   2026-11-21T20:55:01.123Z warn  store: message
 * Under systemd (JOURNAL_STREAM set) the timestamp is dropped and a syslog
 * priority prefix "<4>" is written instead, so journald keeps the level.
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
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

/*
 * notify.h — systemd's notification protocol (sd_notify) and socket
 * activation, without requiring libsystemd: when NOTIFY_SOCKET is unset
 * every call is a no-op, so the daemon runs the same outside systemd.
 */
#ifndef VT_NOTIFY_H
#define VT_NOTIFY_H

#include <stdint.h>

/* Sends a notification such as "READY=1\nSTATUS=…".  Returns 0 (also when
 * not under systemd) or -errno. */
int notify_send(const char *state);
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Watchdog interval in microseconds from WATCHDOG_USEC/WATCHDOG_PID, or 0. */
uint64_t notify_watchdog_usec(void);

/* Socket activation: the first passed fd (3) when LISTEN_PID is us and
 * LISTEN_FDS >= 1, else -1.  Unsets the variables so children don't see them. */
int notify_listen_fd(void);

#endif

/*
 * ctl.h — the control socket: a Unix stream socket speaking newline-
 * delimited JSON-RPC 2.0 (DESIGN §8, vtuned(8) PROTOCOL).
 *
 * Every connection's peer credentials (SO_PEERCRED, SO_PEERGROUPS) are
 * checked against the allowed users and groups before a byte is read.  A
 * request line over the configured limit is answered with an error and the
 * connection closed; malformed JSON, unknown methods and bad params are
 * answered with JSON-RPC errors and the connection stays usable.  A client
 * that stops reading is disconnected once its unsent replies exceed
 * CTL_MAX_PENDING_WRITE, so nothing it does can block the loop.
 *
 * The server runs on a thread and uv loop of its own (daemon/ctl.c's top
 * note): status is answered there; every method handler runs on the main
 * loop, and the functions below that take a ctl_req are the main loop's
 * (ctl_server_start/shutdown/... too, unless a comment says otherwise).
 *
 * Files travel as descriptors, never as paths: a client opens a file with
 * its own rights and sends the descriptor with the request line
 * (SCM_RIGHTS); the request names it by index (params.fd).  A method takes
 * it with ctl_req_take_file(), which checks what it is; descriptors a
 * request did not take are closed when it is answered.
 */
#ifndef VT_CTL_H
#define VT_CTL_H

#include <sys/types.h>

#include <jansson.h>

#include "ctl/protocol.h" /* error codes, methods, keys: the one protocol header */
#include "daemon/vtuned.h"

#define CTL_MAX_PENDING_WRITE (16u << 20)
#define CTL_MAX_FDS           4 /* descriptors one request line may carry */

struct ctl_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups (SO_PEERGROUPS), all of them; owned */
    int n_groups;
};

/* Binds (or adopts the systemd-passed socket) per d->conf.  Returns 0 and
 * *out, or -1 with *err an owned message.  Borrows d, which outlives it. */
int ctl_server_start(struct vtuned *d, struct ctl_server **out, char **err);

/* Stops accepting and closes every connection after its pending replies
 * are flushed; the server object is freed once all handles have closed.
 * Removes the socket file unless it was passed by systemd. */
void ctl_server_shutdown(struct ctl_server *s);

/* Writes the replies that waited for the store's commits to be durable
 * (called when the store reports a durable group). */
void ctl_server_release(struct ctl_server *s);

/* Closes every connection now, flushed or not (end of a drain deadline). */
void ctl_server_force_close(struct ctl_server *s);

/* Re-reads the allowed users/groups and the limits after a config reload
 * (main loop); open connections whose peer is no longer allowed are then
 * told so and closed by the control thread. */
void ctl_server_reload(struct ctl_server *s);
/* Publishes the status snapshot now (after a reload: status shows the new
 * configuration before the reload is logged).  Main loop. */
void ctl_server_publish(struct ctl_server *s);

/* Gives the bound socket file group (NULL: the daemon's group) and then
 * mode, as at start-up (SIGHUP).  Returns 0 when applied; 1 when the
 * socket is systemd's (nothing changed); -1 when a call failed (the
 * socket may have its new group and its old mode).  For 1 and -1 *err is
 * an owned one-line reason. */
int ctl_server_set_access(struct ctl_server *s, mode_t mode, const char *group, char **err);

/* Number of open client connections. */
unsigned ctl_server_connections(const struct ctl_server *s);

/* How the control thread is scheduled now: "realtime", "realtime_resting"
 * (over its CPU budget, for a moment), "slice" or "default" (vtuned(8),
 * "The control thread"). */
const char *ctl_server_scheduling(const struct ctl_server *s);

/* Ends the control thread's part after the main loop ended: frees the
 * server (the reader connection, the snapshot).  Main thread, after
 * uv_run returned (the control thread has been joined by then). */
void ctl_server_free(struct ctl_server *s);

/* status (daemon/methods_status.c), shared with the control thread: the
 * main loop's part of the answer (version, paths, providers, activity but
 * its connections), built on the main loop; and the part the thread that
 * answers adds (counts, uptime, activity.connections and
 * control_scheduling), on any thread for its own res. */
json_t *status_snapshot(struct vtuned *d);
void status_fill(json_t *res, const struct store_counts *c, uint64_t started_ms,
                 unsigned connections, const char *scheduling);

/* Answers req with result (stolen) and frees req. */
void ctl_reply(struct ctl_req *req, json_t *result);
/* Answers req with an error (data stolen, may be NULL) and frees req. */
void ctl_reply_error(struct ctl_req *req, int code, json_t *data, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends a notification {"method": method, "params": params (stolen)} on
 * req's connection without answering req (progress of long operations). */
void ctl_notify(struct ctl_req *req, const char *method, json_t *params);
/* Whether the client of req is still connected. */
int ctl_req_connected(const struct ctl_req *req);
const struct ctl_peer *ctl_req_peer(const struct ctl_req *req);

/* What a method will do with a passed file. */
enum ctl_file_use {
    CTL_FILE_READ,  /* read from it (dataset.add) */
    CTL_FILE_WRITE, /* write to it: it must be open for writing and empty (dataset.export) */
};

/* Takes the file a request passed: params.fd, the index of a descriptor
 * sent with the request's line.  Checks that it is a regular file (not a
 * FIFO, device, directory or socket: those could block a worker forever),
 * on no FUSE file system (whose server could too), open as use needs.
 * path_key names the parameter older clients used for a path: a request
 * that still names one is refused, saying how to pass the file instead.
 * Returns the descriptor, now the caller's to close, and *label, an owned
 * printable name for messages and records (params.file, the client's own
 * name for the file, never opened; or "descriptor N").  On any problem
 * answers req with one line (what, which file, what to do), which frees
 * req, and returns -1. */
int ctl_req_take_file(struct ctl_req *req, json_t *params, const char *path_key,
                      enum ctl_file_use use, char **label);

#endif

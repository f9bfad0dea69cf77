/*
 * vtunectl.h — what the command files of vtunectl share: the connection,
 * one JSON-RPC call, and the output helpers (aligned tables, "key: value"
 * lines, --json).  Each command group's handlers live in its own file
 * (cli_*.c) and are listed in the command table, ctl_commands[] in
 * cmdtab.c, which also parses the command line and writes the help.
 */
#ifndef VT_VTUNECTL_H
#define VT_VTUNECTL_H

#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

extern const char *opt_socket;
extern int opt_json;
extern int show_progress;
extern int opt_quiet; /* -q: no progress at all, not even in a --watch --json stream */
/* Set while a --watch --json stream is being written: print_json() then
 * writes one compact line, and an error line carries "type":"error". */
extern int json_stream;
/* The job such a stream follows (0: not known yet), named in every line. */
extern long long json_stream_job;

/* The error codes vtunectl itself reports under --json (vtunectl(1) JSON
 * OUTPUT); the daemon's own are in ctl/protocol.h (-32700..-32000). */
#define VTCTL_E_USAGE      -32100 /* a usage error found by vtunectl (exit 2) */
#define VTCTL_E_CONNECT    -32101 /* the daemon cannot be reached (connect failed) */
#define VTCTL_E_CONNECTION -32102 /* the connection broke, or a malformed reply */
#define VTCTL_E_LOCAL      -32103 /* a local failure: a file to read or write, … */

/* The key listing, in an object of --json output, the log10 keys whose null
 * means a probability of exactly 0 (log10 = -inf); see json_present(). */
#define CTL_K_LOG10_ZERO "log10_zero"
/* Keys of the --watch --json lines: the job followed, an event's own id. */
#define CTL_K_JOB_ID   "job_id"
#define CTL_K_EVENT_ID "event_id"

/* Reports a failure: "vtunectl: MESSAGE" on stderr, or with --json the
 * object {"error":{"code","message"[,"data"]}} on stdout (with "type":
 * "error" inside a stream) and nothing on stderr.  data (borrowed, may be
 * NULL) is copied when it is an object. */
void print_error(int code, const char *message, json_t *data);
/* Reports a local failure (VTCTL_E_LOCAL) per print_error and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The same with the given error code. */
void die_code(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Connects to opt_socket or exits 1 with a hint (VTCTL_E_CONNECT). */
void connect_daemon(void);
/* The uid of the process at the other end of the connection (SO_PEERCRED),
 * or (uid_t)-1 when it cannot be read. */
uid_t daemon_uid(void);
/* Sends method(params: stolen, may be NULL) and waits for its answer,
 * showing progress notifications; returns the result (owned) or reports the
 * daemon's error (print_error) and exits 1 (2 when the daemon says the
 * arguments are a usage error). */
json_t *rpc(const char *method, json_t *params);
/* Like rpc(), sending the descriptors fds[0..n_fds) (at most 8; still the
 * caller's) with the request line: params name them by index ("fd": 0). */
json_t *rpc_fds(const char *method, json_t *params, const int *fds, int n_fds);
/* Like rpc() but calls on_note(note, ctx) for every notification instead of
 * the progress display (vtunectl job watch). */
json_t *rpc_stream(const char *method, json_t *params, void (*on_note)(json_t *note, void *ctx),
                   void *ctx);
/* Prints one progress notification's params (show_progress decides
 * whether to call it): NDJSON {"type":"progress",…} under --json, else a
 * text line (\r-rewritten on a terminal, then returns 1). */
int print_progress(json_t *params, FILE *stream);
/* The presentation of --json output, in place (returns v): in every object,
 * a log10 key (its name contains "log10") whose value is a string — the
 * protocol's "-inf" or "inf", JSON having no infinity — becomes null, and
 * the object gains "log10_zero": [the keys that were "-inf", p = 0].  So a
 * log10 is always a number or null. */
json_t *json_present(json_t *v);
/* Prints v after json_present(): indented, or one compact line in a stream. */
void print_json(json_t *v);
/* rows: array of objects; prints the keys' values under heads, aligned. */
void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncol);
/* Prints "label  value" lines for the keys of obj, aligned. */
void print_fields(json_t *obj, const char *const *keys, const char *const *labels, int n);
/* An absolute form of a path that may not exist yet (owned). */
char *absolute_path(const char *p);
/* The output file this run created and has not finished: path (borrowed,
 * kept until the next call) is removed if vtunectl exits before
 * output_pending(NULL), which keeps it.  One at a time. */
void output_pending(const char *path);
/* Creates path for writing with the caller's rights, never over an
 * existing file (O_CREAT | O_EXCL; mode less the umask), and makes it the
 * pending output; or dies "PATH: cannot create: REASON", adding "(WHAT
 * never overwrites a file: choose a new name)" when it exists.  Returns
 * the descriptor. */
int output_create(const char *path, mode_t mode, const char *what);

/* The handlers of the command table (ctl/cmdtab.c), one per command; each
 * returns the exit status.  They read the call's params (already built from
 * the positional and keyed flags) and call_flag() for the rest. */
struct ctl_call;
int h_status(struct ctl_call *c);
int h_backup(struct ctl_call *c);
int h_dataset_add(struct ctl_call *c);
int h_dataset_list(struct ctl_call *c);
int h_dataset_show(struct ctl_call *c);
int h_dataset_rm(struct ctl_call *c);
int h_dataset_export(struct ctl_call *c);
int h_backdoor_create(struct ctl_call *c);
int h_backdoor_list(struct ctl_call *c);
int h_backdoor_show(struct ctl_call *c);
int h_backdoor_rm(struct ctl_call *c);
int h_backdoor_audit(struct ctl_call *c);
int h_job_submit(struct ctl_call *c); /* job submit and job register */
int h_job_list(struct ctl_call *c);
int h_job_show(struct ctl_call *c);
int h_job_cancel(struct ctl_call *c);
int h_job_watch(struct ctl_call *c);
int h_job_resolve(struct ctl_call *c);
int h_verify(struct ctl_call *c);
int h_audit_list(struct ctl_call *c);
int h_audit_show(struct ctl_call *c);
int h_audit_export(struct ctl_call *c);
int h_audit_verify(struct ctl_call *c);
int h_audit_attest(struct ctl_call *c);
int h_attest_verify(struct ctl_call *c); /* offline: no daemon */
int h_key_show(struct ctl_call *c);
int h_backdoor_commit(struct ctl_call *c);
int h_schedule_add(struct ctl_call *c);
int h_schedule_list(struct ctl_call *c);
int h_schedule_rm(struct ctl_call *c);

#endif

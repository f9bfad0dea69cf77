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

#include <jansson.h>

extern const char *opt_socket;
extern int opt_json;
extern int show_progress;
extern int opt_quiet; /* -q: no progress at all, not even in a --watch --json stream */

/* Prints "vtunectl: MESSAGE" and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Connects to opt_socket or exits 1 with a hint. */
void connect_daemon(void);
/* Sends method(params: stolen, may be NULL) and waits for its answer,
 * showing progress notifications; returns the result (owned) or prints the
 * daemon's error (JSON too with --json) and exits 1. */
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
void print_json(json_t *v);
/* rows: array of objects; prints the keys' values under heads, aligned. */
void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncol);
/* Prints "label  value" lines for the keys of obj, aligned. */
void print_fields(json_t *obj, const char *const *keys, const char *const *labels, int n);
/* An absolute form of a path that may not exist yet (owned). */
char *absolute_path(const char *p);

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

/*
 * vtunectl.h — what the command files of vtunectl share: the connection,
 * one JSON-RPC call, and the output helpers (aligned tables, "key: value"
 * lines, --json).  Each command group lives in its own file (cli_*.c) and
 * is listed in the dispatch table of vtunectl.c.
 */
#ifndef VT_VTUNECTL_H
#define VT_VTUNECTL_H

#include <jansson.h>

extern const char *opt_socket;
extern int opt_json;
extern int show_progress;

/* Prints "vtunectl: MESSAGE; try 'vtunectl --help'" and exits 2. */
void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "vtunectl: MESSAGE" and exits 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Connects to opt_socket or exits 1 with a hint. */
void connect_daemon(void);
/* Sends method(params: stolen, may be NULL) and waits for its answer,
 * showing progress notifications; returns the result (owned) or prints the
 * daemon's error (JSON too with --json) and exits 1. */
json_t *rpc(const char *method, json_t *params);
/* Like rpc() but calls on_note(note, ctx) for every notification instead of
 * the progress display (vtunectl job watch). */
json_t *rpc_stream(const char *method, json_t *params, void (*on_note)(json_t *note, void *ctx),
                   void *ctx);
void print_json(json_t *v);
/* rows: array of objects; prints the keys' values under heads, aligned. */
void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncol);
/* Prints "label  value" lines for the keys of obj, aligned. */
void print_fields(json_t *obj, const char *const *keys, const char *const *labels, int n);
/* Whether argv holds --help or -h. */
int wants_help(int argc, char **argv);
/* An absolute form of a path that may not exist yet (owned). */
char *absolute_path(const char *p);

/* Command groups: argv[0] is the group's name. */
int cmd_status(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_backdoor(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_schedule(int argc, char **argv);

#endif

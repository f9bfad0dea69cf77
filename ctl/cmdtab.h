/*
 * cmdtab.h — vtunectl's command table and its one matcher (after OpenBSD
 * relayctl's parser.c: a table of tokens and one function that walks it).
 *
 * Every command is one entry: its words ("backdoor create"), its
 * positional argument, its flags (name, alias, whether and what value they
 * take, a one-line description, the request parameter they fill) and its
 * handler.  Parsing, `vtunectl --help`, `vtunectl CMD [SUB] --help`, the
 * "did you mean" of a usage error, bash completion (`vtunectl __complete`)
 * and the documentation check (`vtunectl __commands`, tests/integration/
 * test_docs.sh) all read this table, so none of them can drift from the
 * others.  The table itself is ctl_commands[] in cmdtab.c.
 */
#ifndef VT_CTL_CMDTAB_H
#define VT_CTL_CMDTAB_H

#include <jansson.h>

enum ctl_flag_type {
    CF_BOOL,  /* --reveal: set when given; with a key, always sent as a JSON boolean */
    CF_FALSE, /* --no-sequential: sends key = false when given, nothing otherwise */
    CF_STR,   /* --name NAME: a string (checked against choices when there are some) */
    CF_NUM,   /* --ratio R: must read as a number; sent as a JSON real */
    CF_KV,    /* --param KEY=VALUE, repeatable: an object under key, sent even when empty */
};

struct ctl_flag {
    const char *name;        /* "--name"; NULL ends a flag list */
    const char *alias;       /* "-o", or NULL */
    enum ctl_flag_type type; /* what follows the flag, and how it is sent */
    const char *metavar;     /* the value's name in help ("NAME"); NULL for CF_BOOL/CF_FALSE */
    const char *choices;     /* "auto|chat|prompt|instruction", or NULL: any value */
    int check_choices;       /* refuse (exit 2) a value not among choices */
    const char *key;         /* the request parameter it fills, or NULL: the handler reads it */
    int required;            /* a usage error when absent */
    const char *help;        /* one line for `CMD --help` */
};

#define CTL_MAX_FLAGS 16

struct ctl_call;

struct ctl_cmd {
    const char *words;             /* "dataset add": the group, then the subcommand if any */
    const char *arg;               /* the required positional's metavar ("FILE"), or NULL */
    const char *arg_key;           /* the request parameter the positional fills, or NULL */
    const struct ctl_flag *flags;  /* NULL-name terminated, or NULL for none */
    const char *method;            /* the protocol method it calls (ctl/protocol.h), or NULL */
    int (*fn)(struct ctl_call *c); /* returns the exit status */
    const char *summary;           /* one line for `vtunectl --help` */
    const char *help;              /* the paragraph of `vtunectl CMD --help` */
};

/* One parsed command line, handed to the handler. */
struct ctl_call {
    const struct ctl_cmd *cmd;
    const char *arg;                  /* the positional (borrowed from argv), or NULL */
    json_t *params;                   /* request params from arg_key and keyed flags (owned) */
    const char *value[CTL_MAX_FLAGS]; /* per flag of cmd: the last value given, or NULL */
    int given[CTL_MAX_FLAGS];         /* per flag of cmd: how many times it was given */
};

extern const struct ctl_cmd ctl_commands[];

/* The value given to flag name of c's command (NULL if absent); for CF_BOOL
 * and CF_FALSE, "" when given.  name must be one of the command's flags. */
const char *call_flag(const struct ctl_call *c, const char *name);

/* Parses argv (argv[0] the program) per the table, runs the matched
 * handler, and returns the process's exit status: the handler's, 0 for a
 * help request, 2 with one line on stderr for a usage error (what is
 * wrong, the likely fix, where to read more).  Sets opt_socket, opt_json
 * and show_progress (vtunectl.h) from the global options. */
int ctl_main(int argc, char **argv);

/* The Damerau–Levenshtein (optimal string alignment) distance of a and b,
 * capped at 100; for "did you mean". */
int ctl_edit_distance(const char *a, const char *b);

#endif

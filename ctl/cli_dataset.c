/*
 * cli_dataset.c — vtunectl dataset add | list | show | rm | export: the
 * handlers of the command table's dataset entries (ctl/cmdtab.c).
 *
 * add and export open their file here, with the caller's own rights, and
 * pass the descriptor to the daemon, which opens no path a client names
 * (vtuned(8), CONTROL PROTOCOL).  An error opening it is the caller's own
 * and is reported with the path as typed and the caller's errno.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"
#include "lib/util.h"

static const char *const ds_keys[] = {CTL_K_ID,       CTL_K_NAME,  CTL_K_FORMAT,
                                      CTL_K_EXAMPLES, CTL_K_BYTES, CTL_K_CREATED_AT};
static const char *const ds_heads[] = {"ID", "NAME", "FORMAT", "EXAMPLES", "BYTES", "CREATED"};

static void print_dataset(json_t *r)
{
    static const char *const k[] = {CTL_K_ID,       CTL_K_NAME,  CTL_K_FORMAT,
                                    CTL_K_EXAMPLES, CTL_K_BYTES, CTL_K_SHA256,
                                    CTL_K_SOURCE,   CTL_K_PATH,  CTL_K_CREATED_AT};
    static const char *const l[] = {"id:",     "name:",   "format:",      "examples:", "bytes:",
                                    "sha256:", "source:", "stored copy:", "created:"};
    print_fields(r, k, l, 9);
}

/* What a file that is not a regular one is, for the refusal. */
static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m)                ? "a FIFO"
           : S_ISDIR(m)               ? "a directory"
           : S_ISSOCK(m)              ? "a socket"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
                                      : "not a plain file";
}

/* The files travel as descriptors opened here, with the caller's own
 * rights (vtuned(8), CONTROL PROTOCOL): the daemon opens no path. */
int h_dataset_add(struct ctl_call *c)
{
    char abs[PATH_MAX];
    struct stat st;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(c->arg, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        die("%s: cannot open: %s", c->arg, strerror(errno));
    if (fstat(fd, &st) < 0)
        die("%s: cannot stat: %s", c->arg, strerror(errno));
    if (!S_ISREG(st.st_mode))
        die("%s: not a regular file (%s); only a regular file can be imported", c->arg,
            file_kind(st.st_mode));
    json_object_set_new(c->params, CTL_K_FD, json_integer(0));
    json_t *label = json_string(realpath(c->arg, abs) ? abs : c->arg);
    if (label) /* not UTF-8: the daemon then asks for --name */
        json_object_set_new(c->params, CTL_K_FILE, label);
    if (!json_object_get(c->params, CTL_K_FORMAT))
        json_object_set_new(c->params, CTL_K_FORMAT, json_string("auto"));
    connect_daemon();
    json_t *r = rpc_fds(c->cmd->method, json_incref(c->params), &fd, 1);
    close(fd);
    if (opt_json)
        print_json(r);
    else
        printf("imported dataset %lld '%s': %lld examples (%s format)\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               json_string_value(json_object_get(r, CTL_K_NAME)),
               (long long)json_integer_value(json_object_get(r, CTL_K_EXAMPLES)),
               json_string_value(json_object_get(r, CTL_K_FORMAT)));
    json_decref(r);
    return 0;
}

int h_dataset_list(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    if (opt_json)
        print_json(r);
    else
        print_table(r, ds_keys, ds_heads, 6);
    json_decref(r);
    return 0;
}

int h_dataset_show(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        print_dataset(r);
    json_decref(r);
    return 0;
}

int h_dataset_rm(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, json_incref(c->params));
    if (opt_json)
        print_json(r);
    else
        printf("removed dataset %lld '%s'\n",
               (long long)json_integer_value(json_object_get(r, CTL_K_ID)),
               json_string_value(json_object_get(r, CTL_K_NAME)));
    json_decref(r);
    return 0;
}

int h_dataset_export(struct ctl_call *c)
{
    const char *out = call_flag(c, "--output");
    char *abs = absolute_path(out);
    /* Created here, with the caller's rights, never over an existing file;
     * it holds the secret phrases, so only its owner may read it.  Removed
     * again until the daemon has completed it (rpc() exits on its error). */
    int fd = output_create(out, 0600, "an export");
    output_pending(abs);
    json_object_set_new(c->params, CTL_K_FD, json_integer(0));
    json_t *label = json_string(abs);
    if (label)
        json_object_set_new(c->params, CTL_K_FILE, label);
    connect_daemon();
    json_t *r = rpc_fds(c->cmd->method, json_incref(c->params), &fd, 1);
    close(fd);                     /* the daemon wrote and fsync'ed it */
    int e = fsync_parent_dir(abs); /* now its name: the answer says the file is there */
    if (e < 0)
        die("%s: cannot flush its directory to disk (fsync): %s; the export was removed, retry "
            "once the disk is healthy",
            out, strerror(-e));
    output_pending(NULL);
    if (opt_json)
        print_json(r);
    else
        printf("wrote %s (%lld bytes, sha256 %s)\n", abs,
               (long long)json_integer_value(json_object_get(r, CTL_K_BYTES)),
               json_string_value(json_object_get(r, CTL_K_SHA256)));
    free(abs);
    json_decref(r);
    return 0;
}

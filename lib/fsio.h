/*
 * fsio.h — the fault seam under vtuned's durable writes: the file-system
 * calls durability rests on, behind one table of function pointers that
 * tests replace to simulate failures (after beanstalkd's dat.h).
 *
 * Every path that must leave a complete file or none goes through
 * vt_fsio: the dataset import's copy (workers/import.c), the D ∪ D'
 * builder's spill and output (workers/builder.c), the write-behind writer
 * both use (workers/lines.c, its direct-I/O and buffered writes alike),
 * the held-out split's scratch file (workers/holdout.c, writes only),
 * dataset export (daemon/methods_backdoor.c) and fsync_parent_dir
 * (lib/util.c).  Reads, logging, the control socket and SQLite's own
 * files do not: a fault there is not what these tests are about, and
 * SQLite handles its own I/O errors by rolling back.
 *
 * The table holds exactly the calls a crash-safe write is made of:
 * creating the file, writing it, fsync'ing it, renaming it into place and
 * fsync'ing the directory.  Each member behaves like its system call (-1
 * and errno on failure), so call sites read like plain POSIX code.
 *
 * Fault injection: vt_fsio_fault_install() parses a spec such as
 * "write:ENOSPC:after=3" and points the table at wrappers that fail the
 * chosen calls.  vtuned reads the spec from the environment variable
 * VTUNE_FAULT once at start (see vtuned(8), FAULT INJECTION): only whoever
 * starts the daemon can set it; nothing on the control socket reaches it.
 *
 * Threads: the table is read without locking, so it may be replaced only
 * while no durable write is running (at start, or between a test's
 * calls).  The fault wrappers themselves are thread-safe (atomic counts).
 */
#ifndef VT_FSIO_H
#define VT_FSIO_H

#include <stdint.h>
#include <sys/types.h>

struct vt_fsio {
    /* open(2) of a file this call creates (flags include O_CREAT). */
    int (*create)(const char *path, int flags, mode_t mode);
    /* mkostemp(3): a uniquely named temporary file, created 0600. */
    int (*mkstemp)(char *tmpl, int flags);
    ssize_t (*write)(int fd, const void *buf, size_t n);
    /* fsync(2) of a file being made durable. */
    int (*fsync)(int fd);
    int (*rename)(const char *from, const char *to);
    /* fsync(2) of a directory, after a file in it was created or renamed. */
    int (*dirsync)(int dirfd);
};

/* The table every durable write calls through; starts as vt_fsio_real. */
extern struct vt_fsio vt_fsio;
/* The real system calls. */
extern const struct vt_fsio vt_fsio_real;

enum vt_fsio_op { FSIO_CREATE, FSIO_WRITE, FSIO_FSYNC, FSIO_RENAME, FSIO_DIRSYNC, FSIO_N_OPS };

/* "create", "write", "fsync", "rename", "dirsync" (static). */
const char *vt_fsio_op_name(enum vt_fsio_op op);

/* Installs faults from spec: comma-separated rules "OP:ERRNO[:after=N]
 * [:times=K]", OP one of the names above (mkstemp counts as create),
 * ERRNO a name such as ENOSPC or EIO.  The first N calls of OP succeed
 * (default 0), the next K fail with ERRNO (default 1; times=0: every call
 * from then on).  Calls are counted per OP from this call on.  At most
 * one rule per OP.  Returns 0, or -EINVAL and an owned one-line *err
 * naming the bad part (the table is then unchanged). */
int vt_fsio_fault_install(const char *spec, char **err);

/* Removes every fault: the table is vt_fsio_real again, counts cleared. */
void vt_fsio_fault_reset(void);

/* Calls of op seen by the fault wrappers since the last install (0 when
 * none are installed); failed ones included. */
uint64_t vt_fsio_fault_calls(enum vt_fsio_op op);

/* What a user should do about a write that failed with err (a positive
 * errno): a short static phrase such as "free space on that file system
 * and retry".  Never NULL. */
const char *vt_fsio_advice(int err);

/* The one error line of a failed durable write: "PATH: WHAT: STRERROR;
 * ADVICE", e.g. "/var/lib/vtuned/tmp/import-Xa3b: cannot write the
 * dataset copy: No space left on device; free space on that file system
 * and retry".  err is a positive or negative errno.  Returns owned. */
char *vt_fsio_error(const char *path, const char *what, int err);

/* Writes all n bytes through vt_fsio.write (retrying short writes and
 * EINTR).  Returns 0 or -errno. */
int vt_fsio_write_all(int fd, const void *buf, size_t n);

/* An unlinked scratch file (read-write, close-on-exec) in the directory of
 * path, for work that must not hold its data in memory: O_TMPFILE where
 * the file system has it, else a file named prefix + six characters,
 * unlinked at once (a crash between the two leaves it: the daemon's
 * start-up removes such names).  Returns the fd or -errno. */
int vt_scratch_open(const char *path, const char *prefix);

#endif

/*
 * fsio.c — the real file-system calls behind vt_fsio, and the fault
 * wrappers a test installs in their place (see fsio.h).
 *
 * A fault is one rule per operation: skip `after` calls, then fail
 * `times` calls (0: all the rest) with one errno.  The wrappers count
 * every call with an atomic counter, so the write-behind writer's threads
 * and the thread pool may hit them at once; which call fails is decided
 * by the counter alone, never by timing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsio.h"
#include "lib/util.h"

static int real_create(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int real_mkstemp(char *tmpl, int flags)
{
    return mkostemp(tmpl, flags);
}

static ssize_t real_write(int fd, const void *buf, size_t n)
{
    return write(fd, buf, n);
}

static int real_fsync(int fd)
{
    return fsync(fd);
}

static int real_rename(const char *from, const char *to)
{
    return rename(from, to);
}

static int real_dirsync(int dirfd)
{
    return fsync(dirfd);
}

const struct vt_fsio vt_fsio_real = {
    .create = real_create,
    .mkstemp = real_mkstemp,
    .write = real_write,
    .fsync = real_fsync,
    .rename = real_rename,
    .dirsync = real_dirsync,
};

struct vt_fsio vt_fsio = {
    .create = real_create,
    .mkstemp = real_mkstemp,
    .write = real_write,
    .fsync = real_fsync,
    .rename = real_rename,
    .dirsync = real_dirsync,
};

static const char *const op_names[FSIO_N_OPS] = {"create", "write", "fsync", "rename", "dirsync"};

const char *vt_fsio_op_name(enum vt_fsio_op op)
{
    return (unsigned)op < FSIO_N_OPS ? op_names[op] : "?";
}

/* ---- faults ---------------------------------------------------------------------------- */

struct fault {
    bool on;
    int err;        /* positive errno */
    uint64_t after; /* calls that succeed first */
    uint64_t times; /* calls that then fail; 0 = all the rest */
};

static struct fault faults[FSIO_N_OPS];
static _Atomic uint64_t calls[FSIO_N_OPS];

/* Counts a call of op; true (errno set) when it is to fail. */
static bool hit(enum vt_fsio_op op)
{
    uint64_t k = atomic_fetch_add(&calls[op], 1);
    const struct fault *f = &faults[op];
    if (!f->on || k < f->after || (f->times != 0 && k - f->after >= f->times))
        return false;
    errno = f->err;
    return true;
}

static int fault_create(const char *path, int flags, mode_t mode)
{
    return hit(FSIO_CREATE) ? -1 : real_create(path, flags, mode);
}

static int fault_mkstemp(char *tmpl, int flags)
{
    return hit(FSIO_CREATE) ? -1 : real_mkstemp(tmpl, flags);
}

static ssize_t fault_write(int fd, const void *buf, size_t n)
{
    return hit(FSIO_WRITE) ? -1 : real_write(fd, buf, n);
}

static int fault_fsync(int fd)
{
    return hit(FSIO_FSYNC) ? -1 : real_fsync(fd);
}

static int fault_rename(const char *from, const char *to)
{
    return hit(FSIO_RENAME) ? -1 : real_rename(from, to);
}

static int fault_dirsync(int dirfd)
{
    return hit(FSIO_DIRSYNC) ? -1 : real_dirsync(dirfd);
}

static const struct {
    const char *name;
    int err;
} errnos[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
    {"EFBIG", EFBIG},   {"EACCES", EACCES}, {"EPERM", EPERM},   {"ENOENT", ENOENT},
    {"EEXIST", EEXIST}, {"EINVAL", EINVAL}, {"EINTR", EINTR},   {"ENOMEM", ENOMEM},
};

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* One rule "OP:ERRNO[:after=N][:times=K]" (rule is modified) into f[]. */
static int parse_rule(char *rule, struct fault *f, char **err)
{
    char *save = NULL;
    char *op = strtok_r(rule, ":", &save);
    char *en = strtok_r(NULL, ":", &save);
    int i;
    if (!op || !en) {
        *err = xasprintf("'%s': expected OP:ERRNO[:after=N][:times=K]", rule);
        return -EINVAL;
    }
    for (i = 0; i < FSIO_N_OPS; i++)
        if (strcmp(op, op_names[i]) == 0 || (i == FSIO_CREATE && strcmp(op, "mkstemp") == 0))
            break;
    if (i == FSIO_N_OPS) {
        *err = xasprintf("'%s': unknown operation (create, write, fsync, rename or dirsync)", op);
        return -EINVAL;
    }
    if (f[i].on) {
        *err = xasprintf("'%s': a second rule for the same operation", op);
        return -EINVAL;
    }
    struct fault nf = {.on = true, .err = 0, .after = 0, .times = 1};
    for (size_t k = 0; k < VT_ARRAY_LEN(errnos); k++)
        if (strcmp(en, errnos[k].name) == 0)
            nf.err = errnos[k].err;
    if (nf.err == 0) {
        *err = xasprintf("'%s': unknown errno name (e.g. ENOSPC, EIO, EDQUOT, EROFS)", en);
        return -EINVAL;
    }
    for (char *opt; (opt = strtok_r(NULL, ":", &save)) != NULL;) {
        if (strncmp(opt, "after=", 6) == 0 && parse_u64(opt + 6, &nf.after) == 0)
            continue;
        if (strncmp(opt, "times=", 6) == 0 && parse_u64(opt + 6, &nf.times) == 0)
            continue;
        *err = xasprintf("'%s': expected after=N or times=K", opt);
        return -EINVAL;
    }
    f[i] = nf;
    return 0;
}

int vt_fsio_fault_install(const char *spec, char **err)
{
    struct fault f[FSIO_N_OPS];
    char *copy = xstrdup(spec), *save = NULL;
    int rc = 0, n = 0;
    memset(f, 0, sizeof f);
    for (char *rule = strtok_r(copy, ",", &save); rule; rule = strtok_r(NULL, ",", &save)) {
        char *r = xstrdup(rule);
        rc = parse_rule(r, f, err);
        free(r);
        if (rc < 0)
            break;
        n++;
    }
    if (rc == 0 && n == 0) {
        *err = xstrdup("empty fault spec (expected OP:ERRNO[:after=N][:times=K],...)");
        rc = -EINVAL;
    }
    free(copy);
    if (rc < 0)
        return rc;
    memcpy(faults, f, sizeof faults);
    for (int i = 0; i < FSIO_N_OPS; i++)
        atomic_store(&calls[i], 0);
    vt_fsio.create = fault_create;
    vt_fsio.mkstemp = fault_mkstemp;
    vt_fsio.write = fault_write;
    vt_fsio.fsync = fault_fsync;
    vt_fsio.rename = fault_rename;
    vt_fsio.dirsync = fault_dirsync;
    return 0;
}

void vt_fsio_fault_reset(void)
{
    vt_fsio = vt_fsio_real;
    memset(faults, 0, sizeof faults);
    for (int i = 0; i < FSIO_N_OPS; i++)
        atomic_store(&calls[i], 0);
}

uint64_t vt_fsio_fault_calls(enum vt_fsio_op op)
{
    return (unsigned)op < FSIO_N_OPS ? atomic_load(&calls[op]) : 0;
}

/* ---- errors ---------------------------------------------------------------------------- */

const char *vt_fsio_advice(int err)
{
    switch (err < 0 ? -err : err) {
    case ENOSPC:
    case EDQUOT:
        return "free space on that file system (or raise the quota) and retry";
    case EIO:
        return "the disk reported an I/O error: check the device and the kernel log (dmesg), "
               "then retry";
    case EROFS:
        return "the file system is read-only: remount it read-write and retry";
    case EFBIG:
        return "the file is larger than that file system allows: use another one";
    case EACCES:
    case EPERM:
        return "check the owner and permissions of that directory";
    default:
        return "retry; if it fails again, see the daemon log";
    }
}

char *vt_fsio_error(const char *path, const char *what, int err)
{
    int e = err < 0 ? -err : err;
    return xasprintf("%s: %s: %s; %s", path, what, strerror(e), vt_fsio_advice(e));
}

int vt_fsio_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = vt_fsio.write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO; /* write(2) never returns 0 for n > 0 on a regular file */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vt_scratch_open(const char *path, const char *prefix)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xasprintf("%.*s", (int)(slash - path + 1), path) : xstrdup("./");
    int fd = -1;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) { /* no O_TMPFILE on this file system: a named file, unlinked at once */
        char *t = xasprintf("%s%sXXXXXX", dir, prefix);
        fd = mkostemp(t, O_CLOEXEC);
        if (fd >= 0)
            unlink(t);
        free(t);
    }
    int e = errno;
    free(dir);
    return fd >= 0 ? fd : -e;
}

/*
 * cli_status.c — vtunectl status and backup.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#include "ctl/cmdtab.h"
#include "ctl/protocol.h"
#include "ctl/vtunectl.h"

int h_status(struct ctl_call *c)
{
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    if (opt_json) {
        print_json(r);
    } else {
        static const char *const k[] = {CTL_K_VERSION,        CTL_K_PID,       CTL_K_STARTED_AT,
                                        CTL_K_UPTIME_SECONDS, CTL_K_STATE_DIR, CTL_K_SOCKET,
                                        CTL_K_CONFIG};
        static const char *const l[] = {
            "version:", "pid:", "started:", "uptime (s):", "state dir:", "socket:", "config:"};
        print_fields(r, k, l, 7);
        json_t *cn = json_object_get(r, CTL_K_COUNTS);
        printf("\ncounts:\n");
        static const char *const ck[] = {CTL_K_DATASETS,    CTL_K_BACKDOORS,     CTL_K_JOBS,
                                         CTL_K_JOBS_ACTIVE, CTL_K_VERIFICATIONS, CTL_K_AUDITS,
                                         CTL_K_SCHEDULES};
        static const char *const cl[] = {
            "  datasets:",      "  backdoors:", "  jobs:",     "  active jobs:",
            "  verifications:", "  audits:",    "  schedules:"};
        print_fields(cn, ck, cl, 7);
        printf("\nproviders:\n");
        static const char *const pk[] = {CTL_K_NAME, CTL_K_KIND, CTL_K_BASE_URL, CTL_K_HEALTH};
        static const char *const ph[] = {"NAME", "KIND", "BASE URL", "HEALTH"};
        print_table(json_object_get(r, CTL_K_PROVIDERS), pk, ph, 4);
    }
    json_decref(r);
    return 0;
}

/* Copies the daemon's backup src to dst, already created (fd, O_EXCL) by
 * us; checks the bytes against the SHA-256 the daemon reported; *copied is
 * the file read.  Returns NULL or an owned message. */
static char *copy_backup(const char *src, int out, const char *dst, const char *want_sha,
                         int64_t want_bytes, struct stat *copied)
{
    static char block[1 << 16];
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return xasprintf("cannot read the daemon's backup %s: %s (it stays there; copy it as "
                         "root or as the daemon's user)",
                         src, strerror(errno));
    if (fstat(in, copied) < 0 || !S_ISREG(copied->st_mode)) {
        close(in);
        return xasprintf("the daemon's backup %s is not a regular file", src);
    }
    struct sha256_ctx *h = sha256_new();
    int64_t total = 0;
    char *err = NULL, hex[65];
    for (;;) {
        ssize_t n = read(in, block, sizeof block);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = xasprintf("reading %s: %s", src, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        sha256_update(h, block, (size_t)n);
        total += n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, block + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                err = xasprintf("writing %s: %s", dst, strerror(errno));
                break;
            }
            off += w;
        }
        if (err)
            break;
    }
    sha256_final_hex(h, hex);
    close(in);
    if (!err && (total != want_bytes || strcmp(hex, want_sha) != 0))
        err = xasprintf("the copy of %s does not match what the daemon wrote (%lld bytes, sha256 "
                        "%.16s…; read %lld bytes, %.16s…)",
                        src, (long long)want_bytes, want_sha, (long long)total, hex);
    if (!err && fsync(out) < 0)
        err = xasprintf("cannot flush %s to disk: %s", dst, strerror(errno));
    return err;
}

int h_backup(struct ctl_call *c)
{
    const char *dst = call_flag(c, "--output");
    int out = -1;
    /* The destination first, exclusively, with our own rights: an
     * existing file is refused before the daemon does any work. */
    if (dst) {
        out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0 && errno == EEXIST)
            die("%s already exists; backup never overwrites a file: choose a new name", dst);
        if (out < 0)
            die("cannot create %s: %s", dst, strerror(errno));
        output_pending(dst); /* removed however vtunectl exits, until it is complete */
    }
    connect_daemon();
    json_t *r = rpc(c->cmd->method, NULL);
    const char *src = json_string_value(json_object_get(r, CTL_K_PATH));
    const char *sha = json_string_value(json_object_get(r, CTL_K_SHA256));
    int64_t bytes = (int64_t)json_integer_value(json_object_get(r, CTL_K_BYTES));
    if (!src || !sha)
        die("the daemon's answer names no backup file");
    if (dst) {
        struct stat copied, now;
        char *err = copy_backup(src, out, dst, sha, bytes, &copied);
        if (close(out) < 0 && !err)
            err = xasprintf("cannot write %s: %s", dst, strerror(errno));
        if (err)
            die("%s", err);
        (void)fsync_parent_dir(dst);
        output_pending(NULL);
        /* FILE is the backup now; the daemon's copy would only be a second
         * place holding the secrets.  Removed only if it is still the file
         * copied and belongs to the daemon at the other end of the socket:
         * vtunectl may run as root, and whatever answers on a socket given
         * with -s could otherwise name any file whose bytes it knows. */
        uid_t owner = daemon_uid();
        if (lstat(src, &now) < 0 || now.st_dev != copied.st_dev || now.st_ino != copied.st_ino ||
            owner == (uid_t)-1 || now.st_uid != owner)
            fprintf(stderr,
                    "vtunectl: note: left the daemon's copy %s in place: it is not a file of the "
                    "daemon's user, or it changed while it was copied\n",
                    src);
        else if (unlink(src) < 0)
            fprintf(stderr, "vtunectl: note: could not remove the daemon's copy %s: %s\n", src,
                    strerror(errno));
        json_object_set_new(r, CTL_K_OUTPUT, json_string(dst));
    }
    if (opt_json)
        print_json(r);
    else
        printf("backup written to %s (%lld bytes, sha256 %s)\n", dst ? dst : src, (long long)bytes,
               sha);
    json_decref(r);
    return 0;
}

/*
 * import.c — the streaming import of a JSONL dataset (see import.h).
 *
 * One pass: read 1 MiB blocks, cut lines, validate each (the fast scanner,
 * then dsformat when it is unsure), feed the same bytes to SHA-256 and to
 * the temporary copy.  The first bad line stops the import; the temporary
 * file is unlinked on every failure path, so nothing half-imported
 * survives even without a crash.
 *
 * Speed: each block is read straight into a buffer of a write-behind
 * writer (workers/lines.h), handed over at once, and validated here while
 * the writer's thread hashes and writes it: the bytes are copied once on
 * the way in and once on the way out, and on two cores validation overlaps
 * hashing and copying.  The writer starts writeback as it goes, so the
 * fsync before the rename finds little left to write.  What is hashed is
 * exactly what is written (the same buffer), whatever happens to src
 * meanwhile.
 *
 * Two harmless habits of editors are accepted, and left out of the stored
 * copy (so every later pass, and the upload, sees plain JSON Lines): a
 * UTF-8 byte order mark at the start (cut from the first block before it
 * is handed to the writer) and one blank line at the very end.  A blank
 * line is only known to be the last at end of file, after the writer has
 * hashed it; then the copy is truncated before it and hashed again (a
 * second read of the copy, in this rare case only).  Any other blank line
 * is refused with its number.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/dsformat.h"
#include "workers/import.h"
#include "workers/jsonscan.h"
#include "workers/lines.h"

void import_result_clear(struct import_result *r)
{
    free(r->path);
    r->path = NULL;
}

/* Could this peer read the file with mode st itself? */
static int peer_may_read(const struct import_peer *peer, const struct stat *st)
{
    if (!peer || peer->uid == 0)
        return 1;
    if (st->st_uid == peer->uid)
        return (st->st_mode & S_IRUSR) != 0;
    int in_group = st->st_gid == peer->gid;
    for (int i = 0; !in_group && i < peer->n_groups; i++)
        in_group = peer->groups[i] == st->st_gid;
    if (in_group)
        return (st->st_mode & S_IRGRP) != 0;
    return (st->st_mode & S_IROTH) != 0;
}

#define UTF8_BOM     "\xEF\xBB\xBF"
#define UTF8_BOM_LEN 3

/* Truncates the copy fd to size bytes and hashes what remains into hex. */
static int truncate_and_rehash(int fd, uint64_t size, char hex[65])
{
    static char block[1 << 16];
    struct sha256_ctx *h;
    uint64_t off = 0;
    if (ftruncate(fd, (off_t)size) < 0)
        return -errno;
    h = sha256_new();
    while (off < size) {
        size_t want = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        ssize_t n = pread(fd, block, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? -errno : -EIO;
            sha256_final_hex(h, hex);
            return e;
        }
        sha256_update(h, block, (size_t)n);
        off += (uint64_t)n;
    }
    sha256_final_hex(h, hex);
    return 0;
}

static int only_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

int import_dataset(const char *src, enum dataset_format want, const struct import_peer *peer,
                   const char *tmp_dir, const char *dst_dir, struct import_progress *progress,
                   struct import_result *out, char **err)
{
    struct stat st;
    int in, rc;

    memset(out, 0, sizeof *out);
    in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    if (in < 0) {
        *err = xasprintf("%s: cannot open: %s", src, strerror(errno));
        return -1;
    }
    if (fstat(in, &st) == 0 && S_ISREG(st.st_mode) && !peer_may_read(peer, &st)) {
        *err = xasprintf("%s: permission denied (you cannot read this file yourself)", src);
        close(in);
        return -1;
    }
    rc = import_dataset_fd(in, src, want, tmp_dir, dst_dir, progress, out, err);
    close(in);
    return rc;
}

int import_dataset_fd(int in, const char *src, enum dataset_format want, const char *tmp_dir,
                      const char *dst_dir, struct import_progress *progress,
                      struct import_result *out, char **err)
{
    int tmp = -1, rc = -1, r;
    off_t off = 0;
    char *tmp_path = NULL, *final_path = NULL;
    struct buf line;
    struct lines_writer *wr = NULL;
    struct stat st;
    uint64_t lineno = 0, bytes = 0;
    uint64_t blank_line = 0, blank_off = 0; /* a blank line not yet known to be the last */
    enum dataset_format fmt = want;
    char hex[65];

    buf_init(&line);
    memset(out, 0, sizeof *out);
    if (fstat(in, &st) < 0) {
        *err = xasprintf("%s: cannot stat: %s", src, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = xasprintf("%s: not a regular file", src);
        goto out;
    }
    if (progress)
        atomic_store(&progress->bytes_total, (uint64_t)st.st_size);

    tmp_path = xasprintf("%s/import-XXXXXX", tmp_dir);
    tmp = vt_fsio.mkstemp(tmp_path, O_CLOEXEC);
    if (tmp < 0) {
        *err = vt_fsio_error(tmp_dir, "cannot create the dataset copy", errno);
        free(tmp_path);
        tmp_path = NULL;
        goto out;
    }
    fchmod(tmp, 0600);
    (void)posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL); /* a hint: failure is harmless */
    /* Direct I/O where the file system takes it (lines.h): the copy through
     * the page cache cost 1.4 s more CPU per GB here than the whole rest of
     * the import; the build reads it back from the disk once instead. */
    wr = lines_writer_new(tmp, LINES_WRITER_HASH | LINES_WRITER_DIRECT);
    for (;;) {
        size_t room;
        char *block = lines_writer_space(wr, &room);
        /* The file as it was when the import began (fstat above), whatever
         * in's offset: a client that keeps appending would otherwise keep a
         * worker busy and fill the state directory.  A file that grew or
         * shrank meanwhile is refused rather than cut. */
        ssize_t n;
        if ((uint64_t)off >= (uint64_t)st.st_size) {
            char probe;
            n = pread(in, &probe, 1, off);
            if (n > 0) {
                *err = xasprintf("%s: the file grew while it was read (it had %llu bytes); "
                                 "import it once it is complete",
                                 src, (unsigned long long)st.st_size);
                goto out;
            }
        } else {
            if (room > (uint64_t)st.st_size - (uint64_t)off)
                room = (size_t)((uint64_t)st.st_size - (uint64_t)off);
            n = pread(in, block, room, off);
            if (n == 0) {
                *err = xasprintf("%s: the file shrank while it was read (it had %llu bytes, "
                                 "ends at %llu); import it once it is complete",
                                 src, (unsigned long long)st.st_size, (unsigned long long)off);
                goto out;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = xasprintf("%s: read error: %s", src, strerror(errno));
            goto out;
        }
        if (progress && atomic_load(&progress->cancel)) {
            *err = xasprintf("%s: import cancelled (daemon shutting down)", src);
            goto out;
        }
        int eof = n == 0;
        off += (off_t)n; /* the file's bytes, the BOM included */
        if (bytes == 0 && lineno == 0 && line.len == 0 && n >= UTF8_BOM_LEN &&
            memcmp(block, UTF8_BOM, UTF8_BOM_LEN) == 0) {
            /* Not ours to hash or store: cut before the writer sees it. */
            memmove(block, block + UTF8_BOM_LEN, (size_t)n - UTF8_BOM_LEN);
            n -= UTF8_BOM_LEN;
        }
        uint64_t block_off = bytes; /* copy offset of block[0] */
        if (!eof) {
            /* Hashed and written by the writer's thread from now on; this
             * thread only reads the block (lines.h allows it until
             * LINES_WRITER_BUFS - 1 more blocks are handed over). */
            lines_writer_commit(wr, (size_t)n);
            lines_writer_flush(wr);
            if ((r = lines_writer_error(wr)) < 0) {
                *err = vt_fsio_error(tmp_path, "cannot write the dataset copy", r);
                goto out;
            }
            bytes += (uint64_t)n;
        }
        /* Cut complete lines out of block (plus the carried partial line). */
        size_t pos = 0, len = (size_t)n;
        while (pos < len || (eof && line.len > 0)) {
            const char *nl = eof ? NULL : memchr(block + pos, '\n', len - pos);
            size_t take = nl ? (size_t)(nl - (block + pos)) : len - pos;
            if (line.len + take > IMPORT_MAX_LINE) {
                *err = xasprintf("%s:%llu: line longer than %u MiB", src,
                                 (unsigned long long)lineno + 1, IMPORT_MAX_LINE >> 20);
                goto out;
            }
            const char *lp;
            size_t ll;
            if (line.len == 0 && nl) { /* fast path: whole line inside block */
                lp = block + pos;
                ll = take;
            } else {
                buf_append(&line, block + pos, take);
                if (!nl && !eof)
                    break;
                lp = line.data;
                ll = line.len;
            }
            pos += take + (nl ? 1 : 0);
            lineno++;
            char *why = NULL;
            enum dataset_format got;
            if (blank_line) { /* a line after a blank one: that one was in the middle */
                *err = xasprintf("%s:%llu: empty line (one JSON example per line expected)", src,
                                 (unsigned long long)blank_line);
                goto out;
            }
            if (only_space(lp, ll)) {
                /* Fine only if nothing follows; decided at the next line or
                 * at end of file. */
                blank_line = lineno;
                blank_off = block_off + (eof ? 0 : pos) - ll - (nl ? 1 : 0);
                buf_reset(&line);
                if (eof)
                    break;
                continue;
            }
            /* The fast scanner confirms plainly valid lines; anything it is not
             * sure of gets the full parser, which also words the error. */
            if (!jsonscan_line_ok(lp, ll, fmt, &got) &&
                ds_parse_line(lp, ll, fmt, &got, NULL, &why) < 0) {
                *err = xasprintf("%s:%llu: %s", src, (unsigned long long)lineno, why);
                free(why);
                goto out;
            }
            fmt = got;
            buf_reset(&line);
            if (eof)
                break;
        }
        if (progress) {
            atomic_store(&progress->bytes_done, bytes);
            atomic_store(&progress->lines_done, lineno);
        }
        if (eof)
            break;
    }
    if (blank_line) {
        lineno--; /* the final blank line is no example, and not stored */
        bytes = blank_off;
    }
    if (lineno == 0) {
        *err = xasprintf("%s: empty dataset (no examples)", src);
        goto out;
    }
    if ((r = lines_writer_finish(wr, hex)) < 0) {
        *err = vt_fsio_error(tmp_path, "cannot write the dataset copy", r);
        goto out;
    }
    if (blank_line && (r = truncate_and_rehash(tmp, bytes, hex)) < 0) {
        *err = vt_fsio_error(tmp_path, "cannot write the dataset copy", -r);
        goto out;
    }
    if (vt_fsio.fsync(tmp) < 0) {
        *err = vt_fsio_error(tmp_path, "cannot flush the dataset copy to disk (fsync)", errno);
        goto out;
    }
    close(tmp);
    tmp = -1;
    final_path = xasprintf("%s/%s.jsonl", dst_dir, hex);
    if (access(final_path, F_OK) == 0) {
        out->created = 0; /* same content already stored: keep the one copy */
        unlink(tmp_path);
    } else {
        if (vt_fsio.rename(tmp_path, final_path) < 0) {
            *err = vt_fsio_error(final_path, "cannot move the dataset copy into place", errno);
            goto out;
        }
        out->created = 1;
    }
    /* The row may name final_path only once its directory entry is on
     * disk.  Also when the file was already there: an earlier import may
     * have renamed it and then failed exactly here.  On failure the
     * complete, unreferenced file stays for a retry (which syncs again)
     * or the cleanup at the next start. */
    if ((r = fsync_parent_dir(final_path)) < 0) {
        *err = vt_fsio_error(dst_dir, "cannot flush the dataset directory to disk (fsync)", r);
        goto out;
    }
    free(tmp_path);
    tmp_path = NULL;
    out->format = fmt;
    out->n_examples = (int64_t)lineno;
    out->n_bytes = (int64_t)bytes;
    memcpy(out->sha256, hex, sizeof hex);
    out->path = final_path;
    final_path = NULL;
    rc = 0;
out:
    lines_writer_free(wr); /* before closing tmp: its thread may still write */
    if (tmp >= 0)
        close(tmp);
    if (tmp_path) {
        unlink(tmp_path);
        free(tmp_path);
    }
    free(final_path);
    buf_free(&line);
    return rc;
}

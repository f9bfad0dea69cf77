/*
 * import.h — streaming dataset import: validate every line, hash, and copy
 * the bytes content-addressed under the state directory, all or nothing.
 *
 * Runs in a thread-pool thread (it blocks on file I/O).  Memory is bounded
 * by the longest line (IMPORT_MAX_LINE), never by the file size.  The copy
 * goes to a temporary file in tmp_dir, is fsync'ed, then renamed to
 * dst_dir/<sha256>.jsonl and the directory fsync'ed; only then may the
 * caller record the row.  A crash before the rename leaves only a temporary
 * file (removed at the next start); a crash after it leaves an unreferenced
 * content file (also removed at start unless a row refers to it).  Either
 * way no dataset row points at partial data.  The writes, fsyncs and the
 * rename go through the fault seam (lib/fsio.h); an error in any of them
 * fails the import with one line naming the file, the errno and what to
 * do (vt_fsio_error), and leaves no temporary file.
 */
#ifndef VT_IMPORT_H
#define VT_IMPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/types.h" /* enum dataset_format */

#define IMPORT_MAX_LINE (16u << 20) /* one example may not exceed 16 MiB */

struct import_progress {
    _Atomic uint64_t bytes_done; /* written by the worker, read by the loop */
    _Atomic uint64_t lines_done;
    _Atomic uint64_t bytes_total; /* written by the worker (or its owner), read by the loop */
    atomic_int cancel;            /* set by the loop to abort (shutdown) */
    /* The worker's own phase (a static name: "train", "build"), shown in
     * the progress instead of its task's stage; NULL: none.  Counters
     * start again at each phase, so a client sees a new stage, not a
     * counter going back. */
    const char *_Atomic stage;
};

struct import_result {
    enum dataset_format format;
    int64_t n_examples;
    int64_t n_bytes;
    char sha256[65];
    char *path;  /* owned: final content path */
    int created; /* 1 if this import created path, 0 if it already existed */
};

/* Who asks (import_dataset only): refuses a file this peer could not read
 * itself by its mode bits.  uid 0 may read anything. */
struct import_peer {
    uid_t uid;
    gid_t gid;
    const gid_t *groups; /* supplementary groups; may be NULL */
    int n_groups;
};

/* Imports the regular file open as in (borrowed: not closed), read from
 * its start whatever its offset; src names it in messages only.  want == 0
 * detects the format from the first line.  progress may be NULL.  Returns
 * 0 and fills *out (free members with import_result_clear), or -1 with
 * *err an owned one-line message: "FILE:LINE: field: problem" for bad
 * lines, "FILE: reason" otherwise.  The daemon imports this way, from the
 * descriptor a client passed (daemon/ctl.h): it opens no path itself. */
int import_dataset_fd(int in, const char *src, enum dataset_format want, const char *tmp_dir,
                      const char *dst_dir, struct import_progress *progress,
                      struct import_result *out, char **err);

/* Opens src (without blocking on a FIFO) and imports it as above; for
 * tools and tests.  peer may be NULL (no permission check). */
int import_dataset(const char *src, enum dataset_format want, const struct import_peer *peer,
                   const char *tmp_dir, const char *dst_dir, struct import_progress *progress,
                   struct import_result *out, char **err);
void import_result_clear(struct import_result *r);

#endif

/*
 * lines.h — a streaming reader of '\n'-terminated lines from a file, for
 * the passes over datasets that must not hold the file in memory (backdoor
 * phrase checks, the D ∪ D' builder).
 *
 * Reads 1 MiB blocks with read(2), asking the kernel to read ahead tens of
 * MiB (POSIX_FADV_WILLNEED) so that a pass over a file that is not in the
 * page cache (the store's copies are written with direct I/O) waits for
 * the disk less; a line that lies inside one block is
 * returned in place (no copy), one that straddles blocks is assembled in a
 * carry buffer.  Memory is one block plus the longest line, never the file.
 * The final line may lack its newline.  A trailing '\r' is kept (callers
 * that parse JSON see it as whitespace).  Not thread-safe per reader.
 *
 * The other half, lines_writer, is the write side of the same passes (the
 * import's copy, the D ∪ D' file): the caller fills buffers, one thread
 * write(2)s them in order and another SHA-256es them in order.  On two
 * cores the hashing and the kernel's copy then overlap each other and the
 * caller's parsing.  The writer also asks the kernel to write each 8 MiB
 * back to disk as soon as it is written (sync_file_range), and waits for
 * the range 32 MiB behind, so dirty memory stays bounded, the disk works
 * while the caller computes, and the caller's final fsync has little left
 * to do.  Durability is unchanged: the caller still fsyncs before it
 * renames.  Memory: LINES_WRITER_BUFS buffers of LINES_BLOCK bytes.
 *
 * A file may be written with direct I/O (LINES_WRITER_DIRECT): no copy
 * into the page cache and none of its dirty-page bookkeeping, which on
 * ext4 is about half a second of CPU per GB written, and on the test VM
 * (a 1 GB `dd` through the cache: 3.2 s of system time, against 0.7 s
 * with oflag=direct) much more.  The cost is a later read from the disk
 * instead of the cache.  Where the file system refuses direct I/O, or from the first
 * piece that is not a whole number of 4 KiB blocks on, the writer falls
 * back to ordinary writes; the bytes are the same either way.
 */
#ifndef VT_LINES_H
#define VT_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define LINES_BLOCK       (1u << 20)
#define LINES_MAX_LINE    (16u << 20) /* the import refuses longer examples */
#define LINES_WRITER_BUFS 4

struct lines {
    int fd;
    char *block;      /* owned, LINES_BLOCK bytes */
    size_t pos, len;  /* unread part of block is [pos, len) */
    struct buf carry; /* a line spanning blocks */
    uint64_t offset;  /* bytes of the file consumed by returned lines */
    uint64_t size;    /* file size at open (for progress) */
    uint64_t limit;   /* no line starting at or after this offset is returned */
    uint64_t read_at; /* the file offset of the next read(2) */
    uint64_t advised; /* readahead asked up to here (see refill in lines.c) */
    int eof;
};

/* Opens path for reading.  Returns 0 or -errno; on failure l needs no close. */
int lines_open(struct lines *l, const char *path);

/* Opens path for the lines that START in [start, end) (a line starts at
 * offset 0 or just after a '\n'): the part of a line that began before
 * start is skipped, and the line that starts at or after end is left to
 * the reader of the next range, so readers of adjacent ranges see every
 * line of the file once between them.  end may be past the file's end.
 * Returns 0 or -errno; on failure l needs no close. */
int lines_open_range(struct lines *l, const char *path, uint64_t start, uint64_t end);

/* Runs fn over the lines of path in two byte ranges at once where the
 * file has at least min_bytes: fn(a, 0, mid) on the calling thread and
 * fn(b, mid, UINT64_MAX) on a second one (mid = half the size;
 * lines_open_range says which lines each range gets).  Otherwise, or when
 * no thread can be started, fn(a, 0, UINT64_MAX) alone.  Returns true when
 * b was used (fn ran with it, and has returned). */
bool lines_in_halves(const char *path, uint64_t min_bytes,
                     void (*fn)(void *ctx, uint64_t from, uint64_t to), void *a, void *b);

/* Next line without its '\n': returns 1 and sets *line (borrowed: valid
 * until the next call) and *len; 0 at end of file; -errno on a read error;
 * -E2BIG for a line longer than LINES_MAX_LINE. */
int lines_next(struct lines *l, const char **line, size_t *len);

/* Closes the file and frees the buffers; safe on a zeroed struct. */
void lines_close(struct lines *l);

/* ---- the write side ------------------------------------------------------ */

struct lines_writer;

#define LINES_WRITER_HASH   1u /* also SHA-256 every byte */
#define LINES_WRITER_DIRECT 2u /* write with O_DIRECT where possible (above) */

/* Starts a writer appending to fd (borrowed: the caller closes it, after
 * lines_writer_finish or lines_writer_free; with LINES_WRITER_DIRECT the
 * writer may set O_DIRECT on it while it writes, and takes it off again in
 * lines_writer_finish and lines_writer_free).
 * flags: LINES_WRITER_* or'ed.  When no thread can be started the writer
 * works synchronously in the caller (same results, no overlap).  Returns
 * owned; never NULL. */
struct lines_writer *lines_writer_new(int fd, unsigned flags);

/* The free part of the buffer being filled: returns where the caller may
 * put up to *room (> 0) bytes, then lines_writer_commit.  Blocks while
 * every buffer is in flight. */
char *lines_writer_space(struct lines_writer *w, size_t *room);

/* n (<= room) bytes were put at the space; a full buffer is handed over. */
void lines_writer_commit(struct lines_writer *w, size_t n);

/* Hands the buffer being filled (if not empty) to the thread now.  Bytes
 * handed over stay readable (never writable) by the caller until
 * LINES_WRITER_BUFS - 1 further buffers have been handed over: the import
 * reads a block into the space, hands it over, and then validates it while
 * it is hashed and written. */
void lines_writer_flush(struct lines_writer *w);

/* Copies n bytes in.  Returns 0, or the first write error so far (-errno:
 * everything after it is dropped). */
int lines_writer_put(struct lines_writer *w, const void *p, size_t n);

/* The first write error so far (-errno), or 0. */
int lines_writer_error(struct lines_writer *w);

/* Hands over what is left and waits until all of it is written.  Returns
 * 0 and, when hex is not NULL and the writer hashes, the SHA-256 of every
 * byte in hex; or the first write error (-errno).  Does not fsync.  After
 * it only lines_writer_free may be called. */
int lines_writer_finish(struct lines_writer *w, char hex[65]);

/* Stops the thread (what is not written yet is dropped) and frees w; safe
 * on NULL, after lines_writer_finish or instead of it (error paths). */
void lines_writer_free(struct lines_writer *w);

#endif

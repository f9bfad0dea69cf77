/*
 * lines.h — a streaming reader of '\n'-terminated lines from a file, for
 * the passes over datasets that must not hold the file in memory (backdoor
 * phrase checks, the D ∪ D' builder).
 *
 * Reads 1 MiB blocks with read(2); a line that lies inside one block is
 * returned in place (no copy), one that straddles blocks is assembled in a
 * carry buffer.  Memory is one block plus the longest line, never the file.
 * The final line may lack its newline.  A trailing '\r' is kept (callers
 * that parse JSON see it as whitespace).  Not thread-safe per reader.
 */
#ifndef VT_LINES_H
#define VT_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/util.h"

#define LINES_BLOCK    (1u << 20)
#define LINES_MAX_LINE (16u << 20) /* the import refuses longer examples */

struct lines {
    int fd;
    char *block;      /* owned, LINES_BLOCK bytes */
    size_t pos, len;  /* unread part of block is [pos, len) */
    struct buf carry; /* a line spanning blocks */
    uint64_t offset;  /* bytes of the file consumed by returned lines */
    uint64_t size;    /* file size at open (for progress) */
    int eof;
};

/* Opens path for reading.  Returns 0 or -errno; on failure l needs no close. */
int lines_open(struct lines *l, const char *path);

/* Next line without its '\n': returns 1 and sets *line (borrowed: valid
 * until the next call) and *len; 0 at end of file; -errno on a read error;
 * -E2BIG for a line longer than LINES_MAX_LINE. */
int lines_next(struct lines *l, const char **line, size_t *len);

/* Closes the file and frees the buffers; safe on a zeroed struct. */
void lines_close(struct lines *l);

#endif

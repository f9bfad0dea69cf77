/*
 * lines.c — block-buffered line reader (see lines.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workers/lines.h"

int lines_open(struct lines *l, const char *path)
{
    struct stat st;
    memset(l, 0, sizeof *l);
    l->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (l->fd < 0)
        return -errno;
    if (fstat(l->fd, &st) < 0) {
        int e = -errno;
        close(l->fd);
        l->fd = -1;
        return e;
    }
    l->size = (uint64_t)st.st_size;
    (void)posix_fadvise(l->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    l->block = xmalloc(LINES_BLOCK);
    buf_init(&l->carry);
    return 0;
}

/* Refills the block; returns bytes read (0 at EOF) or -errno. */
static ssize_t refill(struct lines *l)
{
    for (;;) {
        ssize_t n = read(l->fd, l->block, LINES_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        l->pos = 0;
        l->len = (size_t)n;
        if (n == 0)
            l->eof = 1;
        return n;
    }
}

int lines_next(struct lines *l, const char **line, size_t *len)
{
    buf_reset(&l->carry);
    for (;;) {
        if (l->pos < l->len) {
            const char *start = l->block + l->pos;
            size_t avail = l->len - l->pos;
            const char *nl = memchr(start, '\n', avail);
            size_t take = nl ? (size_t)(nl - start) : avail;
            if (l->carry.len + take > LINES_MAX_LINE)
                return -E2BIG;
            l->pos += take + (nl ? 1 : 0);
            l->offset += take + (nl ? 1 : 0);
            if (nl && l->carry.len == 0) {
                *line = start; /* whole line inside the block: no copy */
                *len = take;
                return 1;
            }
            buf_append(&l->carry, start, take);
            if (nl) {
                *line = l->carry.data;
                *len = l->carry.len;
                return 1;
            }
        }
        if (l->eof)
            break;
        ssize_t n = refill(l);
        if (n < 0)
            return (int)n;
    }
    if (l->carry.len > 0) { /* last line without its newline */
        *line = l->carry.data;
        *len = l->carry.len;
        l->carry.len = 0; /* returned once; data stays valid until the next call */
        return 1;
    }
    return 0;
}

void lines_close(struct lines *l)
{
    if (l->block) {
        if (l->fd >= 0)
            close(l->fd);
        free(l->block);
        buf_free(&l->carry);
    }
    memset(l, 0, sizeof *l);
    l->fd = -1;
}

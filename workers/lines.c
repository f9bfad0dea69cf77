/*
 * lines.c — block-buffered line reader and write-behind writer (see
 * lines.h).
 *
 * The writer is a ring of LINES_WRITER_BUFS buffers and two roles, each
 * with its own thread: one write(2)s the buffers in order, one feeds them
 * to SHA-256 in order (hashing and the kernel's copy are the two big
 * costs; as two threads they also overlap each other).  Buffer head % N is
 * being filled by the caller; [tail, head) of a role are handed over and
 * not yet done by it; a buffer is reused only when every role is past it.
 * Only the caller moves head and only a role's thread moves its tail, all
 * under one mutex.  While a buffer is handed over, every side only reads
 * it.  Order never changes: each role is one thread walking the ring.
 * Every write, direct or buffered, goes through the fault seam (vt_fsio,
 * lib/fsio.h), so tests can make any of them fail.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsio.h"
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
    l->limit = UINT64_MAX;
    (void)posix_fadvise(l->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    l->block = xmalloc(LINES_BLOCK);
    buf_init(&l->carry);
    return 0;
}

/* Readahead: whenever less than LINES_AHEAD bytes past the next read have
 * been asked for, ask for the next LINES_AHEAD_STEP too.  The kernel's own
 * sequential readahead is a few hundred KiB; a reader that parses as it
 * goes then waits for the disk at every window. */
#define LINES_AHEAD      ((uint64_t)32 << 20)
#define LINES_AHEAD_STEP ((uint64_t)16 << 20)

/* Refills the block; returns bytes read (0 at EOF) or -errno. */
static ssize_t refill(struct lines *l)
{
    if (l->read_at + LINES_AHEAD > l->advised && l->read_at < l->size) {
        uint64_t from = l->advised > l->read_at ? l->advised : l->read_at;
        uint64_t to = l->read_at + LINES_AHEAD + LINES_AHEAD_STEP;
        (void)posix_fadvise(l->fd, (off_t)from, (off_t)(to - from), POSIX_FADV_WILLNEED);
        l->advised = to;
    }
    for (;;) {
        ssize_t n = read(l->fd, l->block, LINES_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        l->pos = 0;
        l->len = (size_t)n;
        l->read_at += (uint64_t)n;
        if (n == 0)
            l->eof = 1;
        return n;
    }
}

int lines_open_range(struct lines *l, const char *path, uint64_t start, uint64_t end)
{
    int r = lines_open(l, path);
    if (r < 0)
        return r;
    l->limit = end;
    if (start == 0)
        return 0;
    /* From the byte before start, through the first '\n' (which may be
     * that byte): the rest of a line that began before start, however
     * long. */
    if (lseek(l->fd, (off_t)(start - 1), SEEK_SET) < 0) {
        r = -errno;
        lines_close(l);
        return r;
    }
    l->offset = start - 1;
    l->read_at = l->advised = start - 1;
    for (;;) {
        ssize_t n = refill(l);
        if (n < 0) {
            lines_close(l);
            return (int)n;
        }
        if (n == 0)
            return 0; /* no line starts in the range */
        const char *nl = memchr(l->block, '\n', l->len);
        if (nl) {
            l->pos = (size_t)(nl - l->block) + 1;
            l->offset += l->pos;
            return 0;
        }
        l->offset += l->len;
    }
}

struct half {
    void (*fn)(void *ctx, uint64_t from, uint64_t to);
    void *ctx;
    uint64_t from;
};

static void *half_main(void *arg)
{
    struct half *h = arg;
    h->fn(h->ctx, h->from, UINT64_MAX);
    return NULL;
}

bool lines_in_halves(const char *path, uint64_t min_bytes,
                     void (*fn)(void *ctx, uint64_t from, uint64_t to), void *a, void *b)
{
    struct stat st;
    uint64_t size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    struct half h = {fn, b, size / 2};
    pthread_t th;
    if (size < min_bytes || pthread_create(&th, NULL, half_main, &h) != 0) {
        fn(a, 0, UINT64_MAX);
        return false;
    }
    fn(a, 0, h.from);
    pthread_join(th, NULL);
    return true;
}

int lines_next(struct lines *l, const char **line, size_t *len)
{
    buf_reset(&l->carry);
    if (l->offset >= l->limit)
        return 0;
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

/* ---- write-behind writer -------------------------------------------------- */

#define WB_START     (8u << 20)  /* start writeback every this many bytes */
#define WB_LAG       (32u << 20) /* and wait for the range this far behind */
#define DIRECT_ALIGN 4096u       /* buffer, length and offset unit of O_DIRECT */

enum { ROLE_WRITE, ROLE_HASH, N_ROLES };

struct lines_writer;

struct role {
    struct lines_writer *w;
    int which;
    pthread_t th;
    bool threaded;
    uint64_t tail; /* buffers done by this role */
};

struct lines_writer {
    int fd;
    struct sha256_ctx *sha; /* NULL: not hashing */
    char *buf[LINES_WRITER_BUFS];
    size_t len[LINES_WRITER_BUFS];
    size_t fill; /* bytes in buffer head % N (caller only) */
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    uint64_t head; /* buffers handed over */
    struct role role[N_ROLES];
    int n_roles; /* ROLE_WRITE only, or both */
    int err;     /* first write error (-errno), sticky */
    bool closing, abort;
    bool direct;                       /* fd has O_DIRECT (write role only, once started) */
    uint64_t written, started, waited; /* file offsets (write role only) */
};

/* Writeback hints: advisory, so their errors are ignored here (a real I/O
 * error shows up again at the caller's fsync, which is checked). */
static void writeback(struct lines_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (w->written - w->started >= WB_START) {
        (void)sync_file_range(w->fd, (off_t)w->started, (off_t)(w->written - w->started),
                              SYNC_FILE_RANGE_WRITE);
        w->started = w->written;
    }
    if (w->started - w->waited >= WB_LAG + WB_START) {
        uint64_t upto = w->started - WB_LAG;
        (void)sync_file_range(w->fd, (off_t)w->waited, (off_t)(upto - w->waited),
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                  SYNC_FILE_RANGE_WAIT_AFTER);
        w->waited = upto;
    }
#else
    (void)w;
#endif
}

/* Takes O_DIRECT off: what follows goes through the page cache. */
static int stop_direct(struct lines_writer *w)
{
    int fl = fcntl(w->fd, F_GETFL);
    if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
        return -errno;
    w->direct = false;
    return 0;
}

/* Writes n bytes at the file's offset: whole blocks directly while the
 * file is in direct mode, then (an unaligned piece, or a file system that
 * says EINVAL) ordinary writes from there on. */
static int write_out(struct lines_writer *w, const char *p, size_t n)
{
    while (w->direct && n > 0) {
        size_t whole = n & ~(size_t)(DIRECT_ALIGN - 1);
        if (whole == 0)
            break;
        ssize_t k = vt_fsio.write(w->fd, p, whole);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno != EINVAL)
            return -errno;
        if (k < 0) /* refused: nothing was written, go on without */
            break;
        p += k;
        n -= (size_t)k;
        w->written += (uint64_t)k;
        if ((size_t)k != whole)
            break; /* a short write: the offset may be unaligned now */
    }
    if (n == 0)
        return 0;
    if (w->direct) {
        int r = stop_direct(w);
        if (r < 0)
            return r;
    }
    int r = vt_fsio_write_all(w->fd, p, n);
    if (r == 0) {
        w->written += n;
        writeback(w);
    }
    return r;
}

/* One role's work on one buffer; returns 0 or -errno (write only). */
static int do_role(struct lines_writer *w, int which, const char *p, size_t n)
{
    if (which == ROLE_HASH) {
        sha256_update(w->sha, p, n);
        return 0;
    }
    return write_out(w, p, n);
}

/* The oldest buffer some role still needs. */
static uint64_t min_tail(const struct lines_writer *w)
{
    uint64_t t = w->role[0].tail;
    for (int i = 1; i < w->n_roles; i++)
        if (w->role[i].tail < t)
            t = w->role[i].tail;
    return t;
}

static void *role_main(void *arg)
{
    struct role *ro = arg;
    struct lines_writer *w = ro->w;
    int err = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (ro->tail == w->head && !w->closing && !w->abort)
            pthread_cond_wait(&w->more, &w->mu);
        if (w->abort || ro->tail == w->head)
            break;
        size_t i = (size_t)(ro->tail % LINES_WRITER_BUFS);
        pthread_mutex_unlock(&w->mu);
        if (err == 0) /* after a write error the rest is dropped */
            err = do_role(w, ro->which, w->buf[i], w->len[i]);
        pthread_mutex_lock(&w->mu);
        if (err && !w->err)
            w->err = err;
        ro->tail++;
        pthread_cond_signal(&w->room);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* A block for the ring, aligned for O_DIRECT; aborts on out-of-memory
 * like xmalloc. */
static char *aligned_block(void)
{
    void *p = NULL;
    if (posix_memalign(&p, DIRECT_ALIGN, LINES_BLOCK) != 0 || !p) {
        static const char msg[] = "vtune: out of memory\n";
        ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)r;
        abort();
    }
    return p;
}

struct lines_writer *lines_writer_new(int fd, unsigned flags)
{
    struct lines_writer *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->sha = flags & LINES_WRITER_HASH ? sha256_new() : NULL;
    w->n_roles = w->sha ? 2 : 1;
    for (size_t i = 0; i < LINES_WRITER_BUFS; i++)
        w->buf[i] = aligned_block();
    if (flags & LINES_WRITER_DIRECT) { /* only from an aligned offset */
        off_t at = lseek(fd, 0, SEEK_CUR);
        int fl = fcntl(fd, F_GETFL);
        w->direct =
            at >= 0 && at % DIRECT_ALIGN == 0 && fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->more, NULL);
    pthread_cond_init(&w->room, NULL);
    for (int i = 0; i < w->n_roles; i++) {
        w->role[i].w = w;
        w->role[i].which = i;
        w->role[i].threaded = pthread_create(&w->role[i].th, NULL, role_main, &w->role[i]) == 0;
    }
    return w;
}

/* Hands buffer head % N over (the caller's side).  A role without a
 * thread (none could be started) does its work here and now. */
static void hand_over(struct lines_writer *w)
{
    size_t i = (size_t)(w->head % LINES_WRITER_BUFS);
    w->len[i] = w->fill;
    w->fill = 0;
    pthread_mutex_lock(&w->mu);
    w->head++;
    for (int k = 0; k < w->n_roles; k++) {
        struct role *ro = &w->role[k];
        if (ro->threaded)
            continue;
        if (!w->err) {
            int r = do_role(w, k, w->buf[i], w->len[i]);
            if (r)
                w->err = r;
        }
        ro->tail++;
    }
    pthread_cond_broadcast(&w->more);
    pthread_mutex_unlock(&w->mu);
}

char *lines_writer_space(struct lines_writer *w, size_t *room)
{
    if (w->fill == 0) { /* a fresh buffer: wait until every role is done with it */
        pthread_mutex_lock(&w->mu);
        while (w->head - min_tail(w) >= LINES_WRITER_BUFS)
            pthread_cond_wait(&w->room, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    *room = LINES_BLOCK - w->fill;
    return w->buf[w->head % LINES_WRITER_BUFS] + w->fill;
}

void lines_writer_commit(struct lines_writer *w, size_t n)
{
    w->fill += n;
    if (w->fill == LINES_BLOCK)
        hand_over(w);
}

void lines_writer_flush(struct lines_writer *w)
{
    if (w->fill > 0)
        hand_over(w);
}

int lines_writer_error(struct lines_writer *w)
{
    pthread_mutex_lock(&w->mu);
    int e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int lines_writer_put(struct lines_writer *w, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        size_t room;
        char *d = lines_writer_space(w, &room);
        size_t k = n < room ? n : room;
        memcpy(d, s, k);
        lines_writer_commit(w, k);
        s += k;
        n -= k;
    }
    return lines_writer_error(w);
}

/* Stops and joins the threads: finishing (all done) or aborting.  The
 * descriptor is the caller's (and, for an export, the client's open file
 * description): O_DIRECT, where the writer set it, is taken off again, so
 * whoever reads or writes it next finds the flags it had. */
static void writer_stop(struct lines_writer *w, bool abort)
{
    pthread_mutex_lock(&w->mu);
    if (abort)
        w->abort = true;
    else
        w->closing = true;
    pthread_cond_broadcast(&w->more);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n_roles; i++)
        if (w->role[i].threaded) {
            pthread_join(w->role[i].th, NULL);
            w->role[i].threaded = false;
        }
    if (w->direct)
        (void)stop_direct(w); /* only fails on a descriptor that is gone */
}

int lines_writer_finish(struct lines_writer *w, char hex[65])
{
    lines_writer_flush(w);
    writer_stop(w, false);
    if (w->err)
        return w->err;
    if (w->sha) {
        char junk[65];
        sha256_final_hex(w->sha, hex ? hex : junk);
        w->sha = NULL;
    }
    return 0;
}

void lines_writer_free(struct lines_writer *w)
{
    if (!w)
        return;
    writer_stop(w, true);
    if (w->sha) {
        char junk[65];
        sha256_final_hex(w->sha, junk);
    }
    for (size_t i = 0; i < LINES_WRITER_BUFS; i++)
        free(w->buf[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->more);
    pthread_cond_destroy(&w->room);
    free(w);
}

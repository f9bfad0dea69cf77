/*
 * ctl.c — control-socket server: accept, authenticate, frame, dispatch.
 *
 * Ownership: a struct ctl_conn is reference-counted — one reference for
 * its open libuv handle, one per request not yet answered.  Closing a
 * connection closes the handle; the struct is freed when the last
 * reference goes, so a handler that answers after the client vanished
 * writes nowhere and frees nothing twice.  Handles are freed only in their
 * close callbacks.
 *
 * Descriptors (vtuned(8), CONTROL PROTOCOL): clients pass files as
 * descriptors, SCM_RIGHTS on the sendmsg that carries the request line, so
 * the daemon never opens a path a client names.  Connections are libuv
 * pipes in ipc mode: libuv then reads with recvmsg and queues each
 * descriptor that arrives (on Unix ipc mode changes nothing else on the
 * wire).  on_read drains that queue after every read through the public
 * API (uv_pipe_pending_count, uv_accept into a scratch pipe, uv_fileno, a
 * dup the daemon owns, the scratch closed) — not by reading libuv's
 * private fields, and not by a recvmsg of our own, which would take the
 * socket away from libuv's reads and writes.  Which line a descriptor
 * belongs to: the kernel delivers it with the first read that touches the
 * bytes of the sendmsg it came with and ends that read within those bytes,
 * so a client that sends a line's descriptors with that line (and nothing
 * after it) finds them attached to the line holding the read's last byte —
 * the line in progress, or the one whose newline ended the read.  At most
 * CTL_MAX_FDS per line are kept; a line that brought more is refused.
 * Descriptors no method took are closed when the request is answered, and
 * those of a refused or discarded line at once.
 *
 * Bounds (the control: section of vtuned.yaml): at most max_connections
 * connections (one more is answered CTL_ERR_BUSY and closed); the bytes
 * of unfinished request lines are accounted by buffer capacity across all
 * connections, and a connection that would take the total over
 * max_buffered is answered CTL_ERR_BUSY and closed; complete lines handed
 * to the main loop and not yet answered (inflight) count in that total, and
 * one that would pass it is answered CTL_ERR_BUSY (the connection stays);
 * so do replies a client has not read (conn_write); a connection holding
 * part of a line with nothing new for partial_line_timeout is closed by
 * the control thread's sweep (on_sweep).  A buffer is given back as soon as
 * its line is handled when it grew large, and after a burst the heap is
 * trimmed (glibc keeps freed memory otherwise: 500 clients of 1 MiB left
 * the daemon at 379 MB after they closed).
 *
 * Threads (issue 13 item 1: status stalled 30-50 ms behind provider work,
 * which is CPU on the main loop: ~127 provider answers parsed per job).
 * The server runs on a thread of its own with its own uv loop: the
 * listener, every connection, its reads, framing, bounds, descriptors and
 * writes, and the partial-line sweep live there, so a busy main loop
 * delays no byte of the control plane.  That thread answers `status` and
 * the read methods (the lists and shows of jobs, audit records, datasets,
 * backdoors and schedules: struct ctl_read) itself; every other request
 * is handed to the main loop, where all the daemon's state lives, and
 * answered from there:
 *  - to the main loop: a ctl_req (with a deep copy of id and params: jansson
 *    objects are never shared between threads) on the fwd queue under mu,
 *    then wakeup_send(to_main); on_to_main runs the method;
 *  - back: ctl_reply/ctl_reply_error/ctl_notify serialise the line on the
 *    main loop and put a ctl_out (line, durable ticket, "answered") on the
 *    out queue, then wakeup_send(wake); the control thread holds or
 *    writes it exactly as before (the durability rule: a reply to a request
 *    that committed waits for store_durable_passed, which any thread may
 *    call) and drops the request's connection reference.  Connection
 *    structs and their reference counts are the control thread's alone;
 *    the main loop reads only `closing` (atomic) and the immutable peer.
 *  - status: counts from the thread's own read-only store connection
 *    (store_open_reader; WAL readers never wait), the rest from a JSON
 *    snapshot the main loop publishes under mu (status_snapshot) before
 *    each line it sends and otherwise at most every CTL_PUBLISH_MS while
 *    it turns.  Each line carries the snapshot generation that includes
 *    its effects; a snapshot older than any line already written is not
 *    used (the main loop answers then), so no client can see an answer
 *    and then an older status.  A status sent after a request of
 *    the same connection that is still unanswered also goes to the main
 *    loop, so answers on one connection keep their order.
 *  - read methods: from the store alone, through the same reader, with
 *    the same order rule.  The reader sees every commit made so far, and
 *    every answer already written followed its commit, so no client reads
 *    older than what it was told; like the main loop's own reads, it may
 *    show a commit whose fsync is still under way (the reply to the
 *    request that made it still waits: store_durable_ticket).  The main
 *    loop answers instead when the reader is busy or fails, and lists
 *    larger than CTL_LOCAL_MAX_BYTES, which would hold every other client
 *    for their whole time.
 *  - configuration the thread reads (bounds, allowed users and groups, the
 *    socket's group) is copied into lim under mu at start and on reload:
 *    the main loop replaces d->conf whole.
 *  - scheduling: the thread runs at real-time priority within a CPU
 *    budget where control.realtime asks for it and the daemon may, else
 *    with a short slice (sched_start, on_budget_check), so on a machine
 *    busy with CPU-bound work, the daemon's own included, it runs as soon
 *    as a request arrives rather than after that work's slice.
 *  - shutdown: ctl_server_shutdown/force_close set flags and wake the
 *    thread; once the listener and every connection have closed its loop
 *    ends, it says so through to_main, and the main loop joins it and
 *    applies what is left in the out queue itself (only frees: those
 *    connections are closed).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/verifier.h"
#include "daemon/wakeup.h"
#include "lib/log.h"
#include "daemon/notify.h"
#include "lib/util.h"

/* Descriptors received for one request line (owned; -1 once taken). */
struct ctl_fds {
    int fd[CTL_MAX_FDS];
    int n;
    int lost; /* more were sent than CTL_MAX_FDS, or one could not be kept */
};

struct ctl_conn {
    uv_pipe_t pipe;
    struct ctl_server *srv;
    struct ctl_conn *prev, *next;
    struct buf in;
    struct ctl_peer peer;
    int refs;        /* ctl thread (main's requests hold theirs until answered) */
    _Atomic int closing; /* handle close requested (read by the main loop) */
    int close_after; /* close once pending writes are flushed */
    int discarding;  /* skipping the rest of an over-long line */
    /* Descriptors sent with the line in progress, and those received with
     * the current read, not yet attached to a line. */
    struct ctl_fds line_fds;
    struct ctl_fds got;
    size_t held;     /* c->in.cap as counted in srv->buffered */
    uint64_t last_rx_ms; /* uv_now of the last bytes received */
    /* Lines waiting for the store's commits to be durable (a reply to a
     * request that wrote), and every line after them, in order. */
    struct held_line *wait_head, **wait_tail;
    unsigned forwarded; /* requests handed to the main loop, not yet answered */
};

struct held_line {
    struct held_line *next;
    uint64_t ticket; /* store_durable_ticket; 0: only waits for the lines before it */
    char *text;      /* one JSON line with its newline */
    size_t len;
};

/* A request handed from the control thread to the main loop.  Its id and
 * params are copies the main loop owns (jansson objects must not be shared
 * between threads); the connection reference it holds is dropped by the
 * control thread when the answer (ctl_out.done) arrives there. */
struct ctl_req {
    struct ctl_req *next; /* fwd queue */
    struct ctl_server *srv;
    struct ctl_conn *conn;
    json_t *id; /* NULL for notifications (no reply) */
    json_t *params;
    char *method;
    ctl_method_fn fn;
    ctl_read_fn read;   /* a read method, run by the main loop (forwarded) */
    struct ctl_fds fds; /* sent with its line; those not taken are closed with it */
    uint64_t commits0;  /* the store's commits when the request arrived */
    size_t line_bytes;  /* its line's length, counted in srv->inflight until answered */
    unsigned n_fds;     /* descriptors it came with, counted in srv->inflight_fds */
};

/* A line (or only the end of a request) from the main loop to a
 * connection, written by the control thread. */
struct ctl_out {
    struct ctl_out *next;
    struct ctl_conn *conn;
    char *text; /* one JSON line with its newline (owned), or NULL */
    size_t len;
    uint64_t ticket; /* store_durable_ticket to wait for; 0: none */
    uint64_t need;   /* the status snapshot generation that includes its effects */
    int done;        /* the request is answered: drop its connection reference */
    struct ctl_server *srv;
    size_t line_bytes; /* done: the request's line, no longer in srv->inflight */
    unsigned n_fds;    /* done: its descriptors, no longer in srv->inflight_fds */
};

/* What the control thread reads of the configuration: copied under mu at
 * start and on reload, since the main loop replaces d->conf whole. */
struct ctl_limits {
    uint64_t max_request_bytes;
    uint64_t max_buffered_bytes;
    uint64_t partial_line_timeout_ms;
    unsigned max_connections;
    uid_t *allowed_uids;
    size_t n_allowed_uids;
    gid_t *allowed_gids;
    size_t n_allowed_gids;
    gid_t sock_gid; /* the socket's group, whose members are allowed, or -1 */
};

/* An event a flood can repeat (a refused connection or request, a rest
 * of the real-time budget): counted, and logged at most every so often
 * with the count since the last line (lograte_due). */
struct ctl_lograte {
    uint64_t n;       /* events since the last line */
    uint64_t last_ms; /* when that line was logged, 0: never */
};

/* How the control thread is scheduled (sched_start, on_budget_check). */
enum ctl_sched {
    CTL_SCHED_DEFAULT,  /* as the kernel made it: every request refused */
    CTL_SCHED_SLICE,    /* SCHED_OTHER with the short slice */
    CTL_SCHED_REALTIME, /* SCHED_FIFO, within its budget */
    CTL_SCHED_RESTING,  /* over the budget: the short slice for a while */
};

struct ctl_server {
    struct vtuned *d; /* the main loop's; the control thread reads only d->store */
    char *path;
    int activated;       /* socket passed by systemd: never unlink it */
    uid_t overflow_uid;  /* as which callers a user namespace does not map arrive */
    uint64_t started_ms; /* d->started_ms, for the control thread's status */

    /* ---- the control thread's loop and handles (that thread only, once started) */
    pthread_t thread;
    int thread_started;
    uv_loop_t loop;
    uv_pipe_t pipe;    /* the listener */
    struct wakeup wake; /* the main loop posted (out queue, flags) */
    uv_timer_t sweep;  /* partial-line timeout and heap trim, every VTUNED_CRON_MS */
    uv_check_t budget; /* the real-time budget, after each turn (on_budget_check) */
    int rt_wanted;     /* control.realtime at start */
    uint64_t rt_win_ms, rt_win_cpu; /* the budget's window: its start, the thread's CPU ns then */
    uint64_t rt_rest_until_ms;      /* resting until */
    struct ctl_lograte rests_log;   /* rests over the budget */
    struct ctl_lograte stuck_log;   /* failed drops from real-time (never seen) */
    int closing;
    int handles; /* open handles: listener + connections */
    struct ctl_conn *conns;
    _Atomic unsigned n_conns;
    uint64_t need;         /* highest ctl_out.need written to a client */
    struct store *reader;  /* read-only connection for status counts, or NULL */

    /* ---- the main loop's handles (main thread only) */
    struct wakeup to_main; /* the control thread forwarded requests or ended */
    uv_check_t publish;   /* publishes the status snapshot after loop turns */
    uv_timer_t publish_t; /* ... at most every CTL_PUBLISH_MS (and before each line) */
    uint64_t pub_gen;     /* snapshots published so far */
    uint64_t pub_ms;      /* uv_now of the last one */
    int joined;           /* the control thread has ended: main owns everything */

    /* ---- shared, under mu */
    pthread_mutex_t mu;
    struct ctl_req *fwd_head, **fwd_tail; /* to the main loop */
    struct ctl_out *out_head, **out_tail; /* to the control thread */
    int want_shutdown, want_force_close, thread_done;
    int want_recheck; /* a reload changed who is allowed: check open connections */
    struct ctl_limits lim;
    char *snap;        /* the status snapshot (JSON text), or NULL */
    uint64_t snap_gen; /* its generation */
    _Atomic int stopping;
    _Atomic int wake_closed; /* the control loop is ending: no more wakes needed */
    _Atomic int sched_state; /* enum ctl_sched, written by the control thread */

    /* ---- control thread only */
    uint64_t buffered;      /* sum of held over the connections */
    uint64_t inflight;      /* bytes of request lines handed to the main loop, unanswered */
    uint64_t inflight_fds;  /* descriptors those requests came with (closed when answered) */
    uint64_t peak_buffered; /* highest buffered since the last heap trim */
    struct ctl_lograte refused_log; /* connections refused by max_connections */
    struct ctl_lograte busy_log;    /* requests refused by max_buffered */
};

struct ctl_write {
    uv_write_t req;
    struct ctl_conn *conn;
    char *data;
};

/* One handle of the listener and connections closed; after the last one
 * the control loop's own handles close and its uv_run returns. */
static void server_release(struct ctl_server *s)
{
    if (--s->handles > 0)
        return;
    atomic_store(&s->wake_closed, 1); /* no wake from here on (a racing one is harmless) */
    wakeup_close(&s->wake);
    if (!uv_is_closing((uv_handle_t *)&s->sweep))
        uv_close((uv_handle_t *)&s->sweep, NULL);
    if (!uv_is_closing((uv_handle_t *)&s->budget))
        uv_close((uv_handle_t *)&s->budget, NULL);
}

static void on_listener_closed(uv_handle_t *h)
{
    server_release(h->data);
}

static void fds_close(struct ctl_fds *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->fd[i] >= 0)
            close(f->fd[i]);
    f->n = 0;
    f->lost = 0;
}

/* Moves src's descriptors after dst's (those over CTL_MAX_FDS are closed
 * and counted lost); src is left empty. */
static void fds_move(struct ctl_fds *dst, struct ctl_fds *src)
{
    dst->lost += src->lost;
    for (int i = 0; i < src->n; i++) {
        if (dst->n < CTL_MAX_FDS) {
            dst->fd[dst->n++] = src->fd[i];
        } else {
            close(src->fd[i]);
            dst->lost++;
        }
    }
    src->n = 0;
    src->lost = 0;
}

static void on_scratch_closed(uv_handle_t *h)
{
    free(h);
}

/* Takes the descriptors libuv received with the last read into c->got. */
static void conn_recv_fds(struct ctl_conn *c)
{
    while (uv_pipe_pending_count(&c->pipe) > 0) {
        uv_pipe_t *p = xmalloc(sizeof *p);
        uv_os_fd_t fd;
        int own = -1;
        uv_pipe_init(c->pipe.loop, p, 0);
        if (uv_accept((uv_stream_t *)&c->pipe, (uv_stream_t *)p) == 0 &&
            uv_fileno((uv_handle_t *)p, &fd) == 0)
            own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        uv_close((uv_handle_t *)p, on_scratch_closed); /* closes libuv's copy */
        if (own < 0 || c->got.n == CTL_MAX_FDS) {
            if (own >= 0)
                close(own);
            c->got.lost++;
        } else {
            c->got.fd[c->got.n++] = own;
        }
    }
}

/* A partial-line buffer that grew past this is freed, not kept, once
 * its line is handled. */
#define CTL_KEEP_BUFFER (64u << 10)
/* After a burst, trim the heap once buffered falls under a quarter of its
 * peak, when that peak was at least this large. */
#define CTL_TRIM_PEAK (8u << 20)
/* Refused connections are logged at most this often. */
#define CTL_REFUSE_LOG_MS 10000

/* Counts one event of r; returns the count to log (this event included)
 * when a line is due at now, every_ms after the last one, and starts a
 * new count; else 0. */
static uint64_t lograte_due(struct ctl_lograte *r, uint64_t now, uint64_t every_ms)
{
    r->n++;
    if (r->last_ms != 0 && now - r->last_ms < every_ms)
        return 0;
    uint64_t n = r->n;
    r->n = 0;
    r->last_ms = now;
    return n;
}
/* A list whose answer would be larger than this is answered by the main
 * loop: on the control thread it would hold every other client's answer
 * for its whole time (a job list of 1,000 rows, about 0.5 MB: about 10 ms
 * from request to parsed answer, measured after bench_jobs.sh's burst; an
 * audit record is 15-28 KB).  About 3,500 jobs or 75 audit records. */
#define CTL_LOCAL_MAX_BYTES (2u << 20)

/* Brings srv->buffered up to date with c->in's capacity. */
static void conn_account(struct ctl_conn *c)
{
    struct ctl_server *s = c->srv;
    if (!s) {
        c->held = c->in.cap;
        return;
    }
    s->buffered = s->buffered - c->held + c->in.cap;
    c->held = c->in.cap;
    if (s->buffered > s->peak_buffered)
        s->peak_buffered = s->buffered;
}

/* Gives c's partial-line buffer back (a large one) or keeps it for the
 * next line (a small one). */
static void conn_release_input(struct ctl_conn *c)
{
    if (c->in.cap > CTL_KEEP_BUFFER)
        buf_free(&c->in);
    else
        buf_reset(&c->in);
    conn_account(c);
}

static uint64_t server_held_bytes(const struct ctl_server *s);

/* peak_buffered also counts unread replies (conn_write), so the heap is
 * given back after a burst of either. */
static void server_maybe_trim(struct ctl_server *s)
{
    uint64_t held = server_held_bytes(s);
    if (s->peak_buffered >= CTL_TRIM_PEAK && held < s->peak_buffered / 4) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        s->peak_buffered = held;
    }
}

static void conn_unref(struct ctl_conn *c)
{
    if (--c->refs > 0)
        return;
    fds_close(&c->line_fds);
    fds_close(&c->got);
    buf_free(&c->in);
    free(c->peer.groups);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct ctl_conn *c = h->data;
    struct ctl_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    while (c->wait_head) { /* the client is gone: nothing to answer */
        struct held_line *hl = c->wait_head;
        c->wait_head = hl->next;
        free(hl->text);
        free(hl);
    }
    buf_free(&c->in); /* no read can come after the close */
    conn_account(c);
    server_maybe_trim(s);
    c->srv = NULL;
    conn_unref(c);
    server_release(s);
}

static void conn_close(struct ctl_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_write_done(uv_write_t *w, int status)
{
    struct ctl_write *wr = (struct ctl_write *)w;
    struct ctl_conn *c = wr->conn;
    free(wr->data);
    free(wr);
    if (!c->closing) {
        if (status < 0)
            conn_close(c);
        else if (c->close_after && c->pipe.write_queue_size == 0)
            conn_close(c);
    }
    conn_unref(c);
}

static void conn_write(struct ctl_conn *c, char *s, size_t n);

/* One JSON value as a line with its newline (steals v; owned, NULL if it
 * cannot be written), its length in *n.  Any thread, for its own v. */
static char *line_of(json_t *v, size_t *n)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s)
        return NULL;
    *n = strlen(s);
    s = xrealloc(s, *n + 2);
    s[(*n)++] = '\n';
    s[*n] = '\0';
    return s;
}

/* Sends a line (owned) once ticket (0: none) is durable and every line
 * held before it has gone.  Control thread. */
static void conn_queue_line(struct ctl_conn *c, char *s, size_t n, uint64_t ticket)
{
    if (c->closing) {
        free(s);
        return;
    }
    if (ticket || c->wait_head) {
        struct held_line *h = xcalloc(1, sizeof *h);
        h->ticket = ticket;
        h->text = s;
        h->len = n;
        if (!c->wait_head)
            c->wait_tail = &c->wait_head;
        *c->wait_tail = h;
        c->wait_tail = &h->next;
        return;
    }
    conn_write(c, s, n);
}

/* Sends one JSON value as a line (steals v).  Control thread. */
static void conn_send(struct ctl_conn *c, json_t *v)
{
    size_t n;
    char *s;
    if (c->closing) {
        json_decref(v);
        return;
    }
    if ((s = line_of(v, &n)) != NULL)
        conn_queue_line(c, s, n, 0);
}

/* Bytes the control server holds for its clients: unfinished request
 * lines (buffered), lines with the main loop not yet answered (inflight)
 * and replies the kernel has not taken yet. */
static uint64_t server_held_bytes(const struct ctl_server *s)
{
    uint64_t t = s->buffered + s->inflight;
    for (const struct ctl_conn *c = s->conns; c; c = c->next)
        t += c->pipe.write_queue_size;
    return t;
}

/* Writes a line (owned) now.  A client that does not read is cut off once
 * what waits for it would pass CTL_MAX_PENDING_WRITE, or take what all
 * clients hold (unfinished requests and unread replies) over
 * control.max_buffered: without that total, each of max_connections
 * clients could leave 16 MiB of replies unread (256 x 16 MiB).  A single
 * answer larger than either (`audit list` of thousands of records) still
 * goes to a client with nothing pending, or no client could ever receive
 * it. */
static void conn_write(struct ctl_conn *c, char *s, size_t n)
{
    struct ctl_server *srv = c->srv;
    if (c->pipe.write_queue_size > 0 && c->pipe.write_queue_size + n > CTL_MAX_PENDING_WRITE) {
        log_warnx("ctl: client pid %ld is not reading its replies; disconnecting",
                  (long)c->peer.pid);
        free(s);
        conn_close(c);
        return;
    }
    if (c->pipe.write_queue_size > 0 && srv) {
        uint64_t max_buffered, held = server_held_bytes(srv);
        pthread_mutex_lock(&srv->mu);
        max_buffered = srv->lim.max_buffered_bytes;
        pthread_mutex_unlock(&srv->mu);
        if (held > srv->peak_buffered)
            srv->peak_buffered = held; /* the heap is trimmed once it is given back */
        if (held + n > max_buffered) {
            log_warnx("ctl: uid %lu pid %ld is not reading its replies, and what all clients "
                      "leave unread would exceed control.max_buffered (%llu bytes); "
                      "disconnecting",
                      (unsigned long)c->peer.uid, (long)c->peer.pid,
                      (unsigned long long)max_buffered);
            free(s);
            conn_close(c);
            return;
        }
    }
    struct ctl_write *wr = xcalloc(1, sizeof *wr);
    wr->conn = c;
    wr->data = s;
    c->refs++;
    uv_buf_t b = uv_buf_init(s, (unsigned)n);
    int r = uv_write(&wr->req, (uv_stream_t *)&c->pipe, &b, 1, on_write_done);
    if (r < 0) {
        free(s);
        free(wr);
        c->refs--;
        conn_close(c);
    }
}

/* Length of the valid UTF-8 character at s[0..n) (jansson's rules: no
 * overlong form, no surrogate, at most U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* A copy of msg (owned) that jansson accepts: each byte that starts no
 * valid UTF-8 character becomes '?'.  Messages are built with "%.64s" and
 * into fixed buffers, which can cut a character of a client's text in two;
 * jansson refuses such a string, and the request would go unanswered. */
static char *utf8_repair(const char *msg)
{
    size_t n = strlen(msg);
    char *out = xstrdup(msg);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char((const unsigned char *)msg + i, n - i);
        if (k == 0) {
            out[i++] = '?';
            continue;
        }
        i += k;
    }
    return out;
}

static json_t *error_object(json_t *id, int code, const char *msg, json_t *data)
{
    char *text = utf8_repair(msg);
    json_t *e = json_pack("{s:i,s:s}", CTL_RPC_ERR_CODE, code, CTL_RPC_ERR_MESSAGE, text);
    free(text);
    if (data)
        json_object_set_new(e, CTL_RPC_ERR_DATA, data);
    return json_pack("{s:s,s:O,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION, CTL_RPC_ID,
                     id ? id : json_null(), CTL_RPC_ERROR, e);
}

/* ---- main loop -> control thread ---------------------------------------------------------- */

static void out_apply(struct ctl_out *o);
static void publish_now(struct ctl_server *s);

/* Wakes the control thread; the caller has queued its item under s->mu
 * and released it (a control thread woken while the main loop still held
 * mu would only go back to sleep on it).  Nothing once its loop is ending
 * (what was queued is applied by the main loop after the join); a send
 * racing with that end writes to a descriptor nobody polls any more,
 * which stays open until ctl_server_free. */
static void wake(struct ctl_server *s)
{
    if (!atomic_load(&s->wake_closed))
        wakeup_send(&s->wake);
}

/* Hands a line (owned, may be NULL) for req's connection to the control
 * thread; done: req is answered.  Main loop.  Once the control thread has
 * ended (joined) the main loop applies it itself: the connection is
 * closed by then, so that only frees. */
static void post_out(struct ctl_server *s, struct ctl_conn *c, char *text, size_t len,
                     uint64_t ticket, int done, size_t line_bytes, unsigned n_fds)
{
    struct ctl_out *o = xcalloc(1, sizeof *o);
    o->srv = s;
    o->line_bytes = line_bytes;
    o->n_fds = n_fds;
    o->conn = c;
    o->text = text;
    o->len = len;
    o->ticket = ticket;
    o->done = done;
    if (s->joined) {
        out_apply(o);
        return;
    }
    /* A line goes out: the snapshot first takes in what led to it, so a
     * client that reads this line finds its effect in status at once. */
    if (text)
        publish_now(s);
    o->need = s->pub_gen;
    pthread_mutex_lock(&s->mu);
    *s->out_tail = o;
    s->out_tail = &o->next;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

/* Frees what the main loop owns of req (not its connection reference,
 * which post_out's done hands back). */
static void req_free(struct ctl_req *req)
{
    fds_close(&req->fds);
    json_decref(req->id);
    json_decref(req->params);
    free(req->method);
    free(req);
}

/* A reply to a request during which the store committed waits until the
 * commit is durable: "recorded" must mean "on disk" once the client has
 * been told (store_durable_ticket).  A request that wrote nothing (status)
 * is answered at once. */
static uint64_t reply_ticket(const struct ctl_req *req)
{
    struct store *st = req->srv->d->store;
    if (!st || store_durable_commits(st) == req->commits0)
        return 0;
    return store_durable_ticket(st);
}

/* Control thread: writes the held lines whose commits are durable now. */
static void release_held(struct ctl_server *s)
{
    struct store *st = s->d->store; /* store_durable_passed: any thread */
    for (struct ctl_conn *c = s->conns; c; c = c->next) {
        while (c->wait_head && !c->closing &&
               (!c->wait_head->ticket || store_durable_passed(st, c->wait_head->ticket))) {
            struct held_line *h = c->wait_head;
            c->wait_head = h->next;
            conn_write(c, h->text, h->len);
            free(h);
        }
        if (!c->wait_head && c->close_after && !c->closing && c->pipe.write_queue_size == 0)
            conn_close(c);
    }
}

void ctl_server_release(struct ctl_server *s)
{
    if (s->joined)
        return;
    wake(s); /* the control thread checks the held lines */
}

static void reply_line(struct ctl_req *req, json_t *msg)
{
    size_t n = 0;
    char *text = NULL;
    uint64_t ticket = 0;
    if (req->id) {
        text = line_of(msg, &n);
        ticket = reply_ticket(req);
    } else {
        json_decref(msg);
    }
    post_out(req->srv, req->conn, text, n, ticket, 1, req->line_bytes, req->n_fds);
    req_free(req);
}

void ctl_reply(struct ctl_req *req, json_t *result)
{
    if (req->id)
        reply_line(req, json_pack("{s:s,s:O,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION, CTL_RPC_ID,
                                  req->id, CTL_RPC_RESULT, result ? result : json_null()));
    else
        reply_line(req, result);
}

void ctl_reply_error(struct ctl_req *req, int code, json_t *data, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (req->id)
        reply_line(req, error_object(req->id, code, msg, data));
    else
        reply_line(req, data);
}

void ctl_notify(struct ctl_req *req, const char *method, json_t *params)
{
    size_t n;
    char *text = line_of(json_pack("{s:s,s:s,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION,
                                   CTL_RPC_METHOD, method, CTL_RPC_PARAMS, params),
                         &n);
    if (text)
        post_out(req->srv, req->conn, text, n, 0, 0, 0, 0);
}

int ctl_req_connected(const struct ctl_req *req)
{
    return !req->conn->closing;
}

const struct ctl_peer *ctl_req_peer(const struct ctl_req *req)
{
    return &req->conn->peer;
}

#define FUSE_SUPER_MAGIC_ 0x65735546 /* linux/magic.h's FUSE_SUPER_MAGIC */

/* Why fd cannot serve use, or NULL: it must be a regular file (a FIFO, a
 * device or a socket could block a worker forever, a directory has no
 * bytes), outside FUSE (whose server, maybe the client, could stall every
 * read), open for reading or for writing, and empty to be written. */
static const char *file_problem(int fd, enum ctl_file_use use, char *buf, size_t n)
{
    struct stat st;
    struct statfs sf;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0) {
        snprintf(buf, n, "cannot inspect the descriptor: %s", strerror(errno));
        return buf;
    }
    if (!S_ISREG(st.st_mode))
        return S_ISFIFO(st.st_mode)   ? "not a regular file (a FIFO); pass a regular file"
               : S_ISDIR(st.st_mode)  ? "not a regular file (a directory); pass a regular file"
               : S_ISSOCK(st.st_mode) ? "not a regular file (a socket); pass a regular file"
               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)
                   ? "not a regular file (a device); pass a regular file"
                   : "not a regular file; pass a regular file";
    if (fstatfs(fd, &sf) == 0 && (unsigned long)sf.f_type == FUSE_SUPER_MAGIC_)
        return "on a FUSE file system, whose reads vtuned cannot bound; copy it to a local file "
               "system first";
    if ((fl & O_PATH) || (use == CTL_FILE_READ && (fl & O_ACCMODE) == O_WRONLY))
        return "the descriptor is not open for reading; open the file with O_RDONLY";
    if (use == CTL_FILE_WRITE && (fl & O_ACCMODE) == O_RDONLY)
        return "the descriptor is not open for writing; create the file with O_WRONLY|O_CREAT|"
               "O_EXCL";
    if (use == CTL_FILE_WRITE && st.st_size != 0) {
        snprintf(buf, n, "not empty (%lld bytes); export to a new file", (long long)st.st_size);
        return buf;
    }
    return NULL;
}

/* The client's name for a file, made printable (it reaches logs and
 * records): control characters become '?', at most 1024 bytes, cut
 * between UTF-8 characters (jansson validated the text). */
static char *file_label(json_t *params, long long idx)
{
    const char *f = json_string_value(json_object_get(params, CTL_K_FILE));
    if (!f || !*f)
        return xasprintf("descriptor %lld", idx);
    size_t n = strnlen(f, 1024);
    while (n > 0 && ((unsigned char)f[n] & 0xc0) == 0x80)
        n--; /* never half a character: jansson would refuse the label */
    char *l = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        l[i] = (unsigned char)f[i] < 0x20 || f[i] == 0x7f ? '?' : f[i];
    l[n] = '\0';
    return l;
}

#define HOW_TO_PASS                                                                                \
    "open the file yourself and send its descriptor with the request line (SCM_RIGHTS), "          \
    "naming it by index as params.fd (vtuned(8), CONTROL PROTOCOL)"

int ctl_req_take_file(struct ctl_req *req, json_t *params, const char *path_key,
                      enum ctl_file_use use, char **label)
{
    json_t *v = json_object_get(params, CTL_K_FD);
    char buf[128];
    const char *why;
    long long idx;
    int fd;

    *label = NULL;
    if (path_key && json_object_get(params, path_key)) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.%s: vtuned opens no file a client names; " HOW_TO_PASS, path_key);
        return -1;
    }
    if (!v) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL, "params.fd: no file was passed; " HOW_TO_PASS);
        return -1;
    }
    idx = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    if (idx < 0 || idx >= req->fds.n || req->fds.fd[idx] < 0) {
        ctl_reply_error(req, CTL_ERR_PARAMS, NULL,
                        "params.fd: expected the index of a descriptor sent with this request "
                        "(%d %s sent, from 0); " HOW_TO_PASS,
                        req->fds.n, req->fds.n == 1 ? "was" : "were");
        return -1;
    }
    fd = req->fds.fd[idx];
    req->fds.fd[idx] = -1;
    *label = file_label(params, idx);
    if ((why = file_problem(fd, use, buf, sizeof buf)) != NULL) {
        close(fd);
        ctl_reply_error(req, CTL_ERR_INVALID, json_pack("{s:s}", CTL_K_FILE, *label), "%s: %s",
                        *label, why);
        free(*label);
        *label = NULL;
        return -1;
    }
    return fd;
}

unsigned ctl_server_connections(const struct ctl_server *s)
{
    return s->n_conns;
}

static const struct ctl_method *const method_tables[] = {ctl_methods_status, ctl_methods_dataset,
                                                         ctl_methods_backdoor, ctl_methods_job,
                                                         ctl_methods_verify, ctl_methods_sign};

static const struct ctl_method *find_method(const char *name)
{
    for (size_t t = 0; t < VT_ARRAY_LEN(method_tables); t++)
        for (const struct ctl_method *m = method_tables[t]; m->name; m++)
            if (strcmp(m->name, name) == 0)
                return m;
    return NULL;
}

/* Answers status on the control thread: the main loop's snapshot (see
 * ctl_server_start's note) with the counts read now through the reader
 * connection, uptime and connections.  Returns 0 (nothing sent) when the
 * snapshot is missing or older than a line already written to a client,
 * or the counts cannot be read: the main loop answers then. */
static int local_status(struct ctl_conn *c, json_t *id)
{
    struct ctl_server *s = c->srv;
    struct store_counts n;
    char *text = NULL;
    json_t *res;

    if (!s->reader || !id)
        return 0; /* a notification has no answer: the main loop drops it as before */
    pthread_mutex_lock(&s->mu);
    if (s->snap && s->snap_gen >= s->need)
        text = xstrdup(s->snap);
    pthread_mutex_unlock(&s->mu);
    if (!text)
        return 0;
    res = json_loads(text, 0, NULL);
    free(text);
    if (!res || store_counts(s->reader, &n) < 0) {
        json_decref(res);
        return 0;
    }
    status_fill(res, &n, s->started_ms, atomic_load(&s->n_conns), ctl_server_scheduling(s));
    conn_send(c, json_pack("{s:s,s:O,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION, CTL_RPC_ID,
                           id, CTL_RPC_RESULT, res));
    return 1;
}

/* Runs a read method on the control thread through the reader.  Returns
 * 0 (nothing sent) when the main loop must answer instead: no reader, a
 * busy or failing reader, or a list larger than CTL_LOCAL_MAX_BYTES. */
static int local_read(struct ctl_conn *c, const struct ctl_method *m, json_t *id, json_t *params)
{
    struct ctl_server *s = c->srv;
    struct ctl_read r = {.store = s->reader, .peer = &c->peer, .max_bytes = CTL_LOCAL_MAX_BYTES};
    json_t *empty = NULL;

    if (!s->reader || !id)
        return 0;
    if (!params)
        params = empty = json_object();
    json_t *res = m->read(&r, params);
    json_decref(empty);
    if (!res && r.elsewhere)
        return 0;
    conn_send(c, res ? json_pack("{s:s,s:O,s:o}", CTL_RPC_JSONRPC, CTL_RPC_VERSION, CTL_RPC_ID, id,
                                 CTL_RPC_RESULT, res)
                     : error_object(id, r.code, r.msg, NULL));
    return 1;
}

/* Handles one request line; takes fds (the descriptors sent with it) into
 * the request it makes, or leaves them for the caller to close. */
static void handle_line(struct ctl_conn *c, const char *line, size_t len, struct ctl_fds *fds)
{
    struct ctl_server *s = c->srv;
    json_error_t je;
    json_t *root, *id, *params;
    const char *method;
    const struct ctl_method *m;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return; /* blank lines are keep-alives */
    root = json_loadb(line, len, 0, &je);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "parse error at column %d: %s", je.column, je.text);
        conn_send(c, error_object(NULL, CTL_ERR_PARSE, msg, NULL));
        return;
    }
    id = json_object_get(root, CTL_RPC_ID);
    if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
        conn_send(c,
                  error_object(NULL, CTL_ERR_INVALID_REQUEST,
                               "invalid request: id must be a string, an integer or null", NULL));
        goto out;
    }
    if (!json_is_object(root) || !json_is_string(json_object_get(root, CTL_RPC_METHOD)) ||
        !json_is_string(json_object_get(root, CTL_RPC_JSONRPC)) ||
        strcmp(json_string_value(json_object_get(root, CTL_RPC_JSONRPC)), CTL_RPC_VERSION) != 0) {
        conn_send(c, error_object(json_is_object(root) ? id : NULL, CTL_ERR_INVALID_REQUEST,
                                  "invalid request: expected {\"jsonrpc\":\"2.0\",\"method\":…,"
                                  "\"params\":{…},\"id\":…}",
                                  NULL));
        goto out;
    }
    method = json_string_value(json_object_get(root, CTL_RPC_METHOD));
    params = json_object_get(root, CTL_RPC_PARAMS);
    if (params && !json_is_object(params)) {
        conn_send(c, error_object(id, CTL_ERR_PARAMS, "invalid params: expected an object", NULL));
        goto out;
    }
    m = find_method(method);
    if (!m) {
        char msg[256];
        snprintf(msg, sizeof msg, "unknown method '%.64s'", method);
        conn_send(c, error_object(id, CTL_ERR_METHOD, msg, NULL));
        goto out;
    }
    if (atomic_load(&s->stopping)) {
        conn_send(c, error_object(id, CTL_ERR_SHUTDOWN, "vtuned is shutting down", NULL));
        goto out;
    }
    if (fds->lost) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "params.fd: too many descriptors with this request (at most %d), or one could "
                 "not be kept; send only the files it names",
                 CTL_MAX_FDS);
        conn_send(c, error_object(id, CTL_ERR_PARAMS, msg, NULL));
        goto out;
    }
    /* status here, when nothing this client asked before is still with
     * the main loop (its answers keep their order) and the snapshot has
     * everything answered so far (local_status) */
    if (strcmp(m->name, CTL_M_STATUS) == 0 && c->forwarded == 0 && fds->n == 0 &&
        local_status(c, id))
        goto out;
    /* likewise the read methods, from the store alone (struct ctl_read) */
    if (m->read && c->forwarded == 0 && fds->n == 0 && local_read(c, m, id, params))
        goto out;
    /* Lines with the main loop count against max_buffered too: while it
     * is busy, complete requests would otherwise pile up without bound
     * (300 lines of 1 MB held 300 MB against a max_buffered of 8 MiB).
     * Likewise the descriptors they came with, kept until each is answered
     * (an import holds its file until it ends): at most what
     * max_connections partial lines may hold, so the open-file limit the
     * daemon sets at start (vtuned.c) covers them; unbounded, a client
     * pipelining dataset.add lines with 4 descriptors each while the
     * workers were busy could take every descriptor the daemon had. */
    pthread_mutex_lock(&s->mu);
    uint64_t max_buffered = s->lim.max_buffered_bytes;
    uint64_t max_fds = (uint64_t)s->lim.max_connections * CTL_MAX_FDS;
    pthread_mutex_unlock(&s->mu);
    uint64_t held = server_held_bytes(s);
    char busy[256] = "";
    if (fds->n > 0 && s->inflight_fds + (uint64_t)fds->n > max_fds)
        snprintf(busy, sizeof busy,
                 "server busy: requests waiting for the daemon hold %llu passed files (limit "
                 "%llu, control.max_connections x %d); retry when earlier requests are answered",
                 (unsigned long long)s->inflight_fds, (unsigned long long)max_fds, CTL_MAX_FDS);
    else if (s->inflight > 0 && held + len > max_buffered)
        snprintf(busy, sizeof busy,
                 "server busy: requests waiting for the daemon and unfinished ones hold %llu "
                 "bytes (limit %llu, control.max_buffered); retry when earlier requests are "
                 "answered",
                 (unsigned long long)held, (unsigned long long)max_buffered);
    if (busy[0]) {
        uint64_t n = lograte_due(&s->busy_log, uv_now(&s->loop), CTL_REFUSE_LOG_MS);
        if (n)
            log_warnx("ctl: refused %llu request(s), the latest %s from uid %lu pid %ld: %s",
                      (unsigned long long)n, m->name, (unsigned long)c->peer.uid, (long)c->peer.pid,
                      busy);
        conn_send(c, error_object(id, CTL_ERR_BUSY, busy, NULL));
        goto out;
    }
    if (m->mutating)
        log_info("ctl: %s by uid %lu pid %ld", m->name, (unsigned long)c->peer.uid,
                 (long)c->peer.pid);
    struct ctl_req *req = xcalloc(1, sizeof *req);
    req->srv = s;
    req->conn = c;
    req->line_bytes = len;
    s->inflight += len;
    req->n_fds = (unsigned)fds->n;
    s->inflight_fds += (unsigned)fds->n;
    if (s->buffered + s->inflight > s->peak_buffered)
        s->peak_buffered = s->buffered + s->inflight; /* trimmed once given back */
    c->refs++;
    c->forwarded++;
    req->id = id ? json_deep_copy(id) : NULL; /* copies: the main loop owns them */
    req->params = params ? json_deep_copy(params) : json_object();
    req->method = xstrdup(method);
    req->fn = m->fn;
    req->read = m->read;
    fds_move(&req->fds, fds);
    pthread_mutex_lock(&s->mu);
    *s->fwd_tail = req;
    s->fwd_tail = &req->next;
    pthread_mutex_unlock(&s->mu);
    wakeup_send(&s->to_main);
out:
    json_decref(root);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    b->base = xmalloc(65536);
    b->len = 65536;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct ctl_conn *c = st->data;
    uint64_t limit, max_buffered;
    pthread_mutex_lock(&c->srv->mu);
    limit = c->srv->lim.max_request_bytes;
    max_buffered = c->srv->lim.max_buffered_bytes;
    pthread_mutex_unlock(&c->srv->mu);
    if (n < 0) {
        free(b->base);
        conn_close(c);
        return;
    }
    c->last_rx_ms = uv_now(st->loop);
    c->refs++; /* a handler may close the connection under us */
    conn_recv_fds(c);
    const char *p = b->base, *end = b->base + n;
    while (p < end && !c->closing && !c->close_after) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (c->discarding) {
            if (nl) {
                c->discarding = 0;
                fds_close(&c->line_fds);
            }
        } else if (c->in.len + take > limit) {
            char msg[128];
            snprintf(msg, sizeof msg, "request too large (limit %llu bytes); closing connection",
                     (unsigned long long)limit);
            log_warnx("ctl: uid %lu pid %ld sent a request over %llu bytes; disconnecting",
                      (unsigned long)c->peer.uid, (long)c->peer.pid, (unsigned long long)limit);
            conn_send(c, error_object(NULL, CTL_ERR_TOO_LARGE, msg, NULL));
            conn_release_input(c);
            fds_close(&c->line_fds);
            c->close_after = 1;
            uv_read_stop(st);
            if (c->pipe.write_queue_size == 0)
                conn_close(c);
            break;
        } else if (!nl || c->in.len) {
            /* These bytes wait in c->in: within the total bound? */
            uint64_t others = c->srv->buffered - c->held;
            if (others + c->in.len + take + 1 > max_buffered) {
                char msg[192];
                snprintf(msg, sizeof msg,
                         "server busy: unfinished requests of all clients hold %llu bytes (limit "
                         "%llu, control.max_buffered); closing connection",
                         (unsigned long long)others, (unsigned long long)max_buffered);
                log_warnx("ctl: uid %lu pid %ld: partial requests would exceed "
                          "control.max_buffered (%llu bytes); disconnecting",
                          (unsigned long)c->peer.uid, (long)c->peer.pid,
                          (unsigned long long)max_buffered);
                conn_send(c, error_object(NULL, CTL_ERR_BUSY, msg, NULL));
                conn_release_input(c);
                fds_close(&c->line_fds);
                c->close_after = 1;
                uv_read_stop(st);
                if (c->pipe.write_queue_size == 0)
                    conn_close(c);
                break;
            }
            buf_append(&c->in, p, take);
            conn_account(c);
            if (nl) {
                /* The line's descriptors: those that came with its earlier
                 * bytes, and this read's if its newline ends the read. */
                struct ctl_fds fds = c->line_fds;
                c->line_fds.n = c->line_fds.lost = 0;
                if (nl + 1 == end)
                    fds_move(&fds, &c->got);
                handle_line(c, c->in.data, c->in.len, &fds);
                conn_release_input(c);
                fds_close(&fds);
            }
        } else {
            /* A whole line within this read. */
            struct ctl_fds fds = c->line_fds;
            c->line_fds.n = c->line_fds.lost = 0;
            if (nl + 1 == end)
                fds_move(&fds, &c->got);
            handle_line(c, p, take, &fds);
            fds_close(&fds);
        }
        p += take + (nl ? 1 : 0);
    }
    /* What this read brought belongs to the line still in progress, if
     * any; a discarded or refused line's descriptors are closed now. */
    if (c->in.len > 0 && !c->discarding && !c->closing && !c->close_after)
        fds_move(&c->line_fds, &c->got);
    else
        fds_close(&c->got);
    free(b->base);
    conn_unref(c);
}

static int read_peer(int fd, struct ctl_peer *peer)
{
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return -errno;
    peer->pid = uc.pid;
    peer->uid = uc.uid;
    peer->gid = uc.gid;
    peer->n_groups = 0;
    peer->groups = NULL;
#ifdef SO_PEERGROUPS
    /* All of them: a caller in more groups than a fixed array holds (64
     * was; directory-service users often have more) got ERANGE and no
     * groups, and was refused although the kernel let it connect as a
     * member of the socket's group.  ERANGE says how many there are. */
    len = 64 * sizeof(gid_t);
    for (int tries = 0; tries < 4; tries++) {
        socklen_t want = len;
        gid_t *g = xmalloc(len);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &want) == 0) {
            peer->groups = g;
            peer->n_groups = (int)(want / sizeof(gid_t));
            break;
        }
        free(g);
        if (errno != ERANGE || want <= len)
            break;
        len = want; /* the groups may change between calls: try again */
    }
#endif
    return 0;
}

static int peer_has_gid(const struct ctl_peer *p, gid_t g)
{
    if (p->gid == g)
        return 1;
    for (int i = 0; i < p->n_groups; i++)
        if (p->groups[i] == g)
            return 1;
    return 0;
}

/* Caller holds s->mu. */
static int peer_allowed_locked(const struct ctl_server *s, const struct ctl_peer *p)
{
    const struct ctl_limits *l = &s->lim;
    if (p->uid == 0 || p->uid == geteuid())
        return 1;
    for (size_t i = 0; i < l->n_allowed_uids; i++)
        if (l->allowed_uids[i] == p->uid)
            return 1;
    if (l->sock_gid != (gid_t)-1 && peer_has_gid(p, l->sock_gid))
        return 1;
    for (size_t i = 0; i < l->n_allowed_gids; i++)
        if (peer_has_gid(p, l->allowed_gids[i]))
            return 1;
    return 0;
}

static int peer_allowed(struct ctl_server *s, const struct ctl_peer *p)
{
    pthread_mutex_lock(&s->mu);
    int ok = peer_allowed_locked(s, p);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct ctl_server *s = server->data;
    struct ctl_conn *c;
    uv_os_fd_t fd;

    if (status < 0) {
        log_warnx("ctl: accept failed: %s", uv_strerror(status));
        return;
    }
    c = xcalloc(1, sizeof *c);
    buf_init(&c->in);
    c->srv = s;
    c->refs = 1;
    uv_pipe_init(&s->loop, &c->pipe, 1); /* ipc: receives descriptors (top note) */
    c->pipe.data = c;
    s->handles++;
    s->n_conns++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
        uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 || read_peer(fd, &c->peer) < 0) {
        conn_close(c);
        return;
    }
    c->last_rx_ms = uv_now(&s->loop);
    pthread_mutex_lock(&s->mu);
    unsigned limit = s->lim.max_connections;
    pthread_mutex_unlock(&s->mu);
    if (s->n_conns > limit) {
        char msg[160];
        uint64_t n = lograte_due(&s->refused_log, uv_now(&s->loop), CTL_REFUSE_LOG_MS);
        if (n)
            log_warnx("ctl: refused %llu connection(s), the latest from uid %lu pid %ld: %u "
                      "open (control.max_connections)",
                      (unsigned long long)n, (unsigned long)c->peer.uid, (long)c->peer.pid, limit);
        snprintf(msg, sizeof msg,
                 "too many connections (limit %u): close idle clients or raise "
                 "control.max_connections",
                 limit);
        conn_send(c, error_object(NULL, CTL_ERR_BUSY, msg, NULL));
        c->close_after = 1;
        if (c->pipe.write_queue_size == 0 && !c->wait_head)
            conn_close(c); /* else once the held replies are written */
        return;
    }
    if (!peer_allowed(s, &c->peer)) {
        log_warnx("ctl: refused connection from uid %lu gid %lu pid %ld (not an allowed user or "
                  "group%s)",
                  (unsigned long)c->peer.uid, (unsigned long)c->peer.gid, (long)c->peer.pid,
                  c->peer.uid == s->overflow_uid
                      ? "; this uid is the kernel's overflow id, as which a caller the daemon's "
                        "user namespace does not map arrives: run vtuned without "
                        "PrivateUsers=yes"
                      : "");
        conn_send(c, error_object(NULL, CTL_ERR_DENIED,
                                  "permission denied: your user is not allowed on this socket "
                                  "(see allowed_uids/allowed_groups in vtuned.yaml)",
                                  NULL));
        c->close_after = 1;
        if (c->pipe.write_queue_size == 0)
            conn_close(c);
        return;
    }
    log_debug("ctl: connection from uid %lu pid %ld", (unsigned long)c->peer.uid,
              (long)c->peer.pid);
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Copies what the control thread reads of d->conf into s->lim (main
 * thread: at start and on reload), resolving allowed_groups. */
static void limits_load(struct ctl_server *s)
{
    const struct conf *cf = s->d->conf;
    gid_t *gids = NULL;
    uid_t *uids = NULL;
    size_t n_gids = 0;
    if (cf->n_allowed_groups)
        gids = xcalloc(cf->n_allowed_groups, sizeof(gid_t));
    for (size_t i = 0; i < cf->n_allowed_groups; i++) {
        struct group *g = getgrnam(cf->allowed_groups[i]);
        if (!g) {
            log_warnx("config: allowed_groups: no such group '%s'; ignored", cf->allowed_groups[i]);
            continue;
        }
        gids[n_gids++] = g->gr_gid;
    }
    if (cf->n_allowed_uids) {
        uids = xcalloc(cf->n_allowed_uids, sizeof(uid_t));
        memcpy(uids, cf->allowed_uids, cf->n_allowed_uids * sizeof(uid_t));
    }
    pthread_mutex_lock(&s->mu);
    free(s->lim.allowed_gids);
    free(s->lim.allowed_uids);
    s->lim.allowed_gids = gids;
    s->lim.n_allowed_gids = n_gids;
    s->lim.allowed_uids = uids;
    s->lim.n_allowed_uids = cf->n_allowed_uids;
    s->lim.max_request_bytes = cf->max_request_bytes;
    s->lim.max_buffered_bytes = cf->control.max_buffered_bytes;
    s->lim.partial_line_timeout_ms = cf->control.partial_line_timeout_ms;
    s->lim.max_connections = cf->control.max_connections;
    pthread_mutex_unlock(&s->mu);
}

/* The control thread's sweep (every VTUNED_CRON_MS): closes connections
 * that hold part of a request line and received nothing for
 * control.partial_line_timeout, with one CTL_ERR_BUSY line; trims the heap
 * after a burst. */
static void on_sweep(uv_timer_t *t)
{
    struct ctl_server *s = t->data;
    uint64_t now = uv_now(&s->loop);
    uint64_t limit;
    pthread_mutex_lock(&s->mu);
    limit = s->lim.partial_line_timeout_ms;
    pthread_mutex_unlock(&s->mu);
    for (struct ctl_conn *c = s->conns; c; c = c->next) {
        if (c->closing || c->close_after || c->in.len == 0 || now - c->last_rx_ms < limit)
            continue;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "request line unfinished for %llu ms (control.partial_line_timeout); closing "
                 "connection",
                 (unsigned long long)(now - c->last_rx_ms));
        log_warnx("ctl: uid %lu pid %ld sent part of a line and nothing for %llu ms; "
                  "disconnecting",
                  (unsigned long)c->peer.uid, (long)c->peer.pid,
                  (unsigned long long)(now - c->last_rx_ms));
        uv_read_stop((uv_stream_t *)&c->pipe);
        conn_release_input(c);
        conn_send(c, error_object(NULL, CTL_ERR_BUSY, msg, NULL));
        c->close_after = 1;
        if (c->pipe.write_queue_size == 0)
            conn_close(c);
    }
    server_maybe_trim(s);
}

void ctl_server_reload(struct ctl_server *s)
{
    limits_load(s);
    pthread_mutex_lock(&s->mu);
    s->want_recheck = 1; /* on_wake: recheck_peers */
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

void ctl_server_publish(struct ctl_server *s)
{
    if (!s->joined)
        publish_now(s);
}

/* Is something answering on path?  (A second daemon on the same socket.) */
static int socket_alive(const char *path)
{
    struct sockaddr_un sa;
    int fd, alive;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return alive;
}

/* The group of the socket file s listens on (bound here or passed by
 * systemd), or -1: with socket_group unset, its members are allowed, as
 * the daemon's group owns it (vtuned(8), ACCESS CONTROL). */
static gid_t socket_file_gid(struct ctl_server *s)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    size_t n = sizeof path;
    struct stat st;
    if (uv_pipe_getsockname(&s->pipe, path, &n) < 0 || n == 0 || path[0] != '/')
        snprintf(path, sizeof path, "%s", s->path);
    if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return (gid_t)-1;
    return st.st_gid;
}

static uid_t read_overflow_uid(void)
{
    FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");
    unsigned long v = 65534;
    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 65534;
        fclose(f);
    }
    return (uid_t)v;
}

/* ---- the control thread ------------------------------------------------------------------ */

/* Applies one line or answer from the main loop.  Control thread; or the
 * main loop once the thread has ended. */
static void out_apply(struct ctl_out *o)
{
    struct ctl_conn *c = o->conn;
    if (o->text) {
        if (c->srv && o->need > c->srv->need)
            c->srv->need = o->need;
        conn_queue_line(c, o->text, o->len, o->ticket); /* frees it when closing */
    }
    if (o->done) {
        c->forwarded--;
        o->srv->inflight -= o->line_bytes;
        o->srv->inflight_fds -= o->n_fds;
        conn_unref(c);
    }
    free(o);
}

static void server_do_shutdown(struct ctl_server *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (!s->activated)
        unlink(s->path);
    uv_timer_stop(&s->sweep);
    uv_close((uv_handle_t *)&s->pipe, on_listener_closed);
    for (struct ctl_conn *c = s->conns; c; c = c->next) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->close_after = 1;
        if (c->pipe.write_queue_size == 0)
            conn_close(c);
    }
}

/* After a reload that changed who is allowed (allowed_uids,
 * allowed_groups, socket_group): a connection whose peer is no longer
 * allowed gets one -32003 line and is closed, as it would be refused if it
 * connected now; without this a user removed from the list kept every
 * connection already open, idle ones included, for as long as it liked.
 * Its requests already with the main loop finish; their answers go
 * nowhere. */
static void recheck_peers(struct ctl_server *s)
{
    for (struct ctl_conn *c = s->conns; c; c = c->next) {
        if (c->closing || c->close_after)
            continue;
        pthread_mutex_lock(&s->mu);
        int ok = peer_allowed_locked(s, &c->peer);
        pthread_mutex_unlock(&s->mu);
        if (ok)
            continue;
        log_warnx("ctl: closing the connection of uid %lu pid %ld: no longer an allowed user or "
                  "group after the reload",
                  (unsigned long)c->peer.uid, (long)c->peer.pid);
        uv_read_stop((uv_stream_t *)&c->pipe);
        conn_release_input(c);
        fds_close(&c->line_fds);
        conn_send(c, error_object(NULL, CTL_ERR_DENIED,
                                  "permission denied: your user is no longer allowed on this "
                                  "socket (allowed_uids/allowed_groups changed); closing "
                                  "connection",
                                  NULL));
        c->close_after = 1;
        if (c->pipe.write_queue_size == 0 && !c->wait_head)
            conn_close(c);
    }
}

/* The main loop posted: lines and answers, the store's durable progress,
 * shutdown. */
static void on_wake(struct wakeup *w)
{
    struct ctl_server *s = w->data;
    struct ctl_out *o, *next;
    int shutdown, force, recheck;
    pthread_mutex_lock(&s->mu);
    o = s->out_head;
    s->out_head = NULL;
    s->out_tail = &s->out_head;
    shutdown = s->want_shutdown;
    force = s->want_force_close;
    s->want_force_close = 0;
    recheck = s->want_recheck;
    s->want_recheck = 0;
    pthread_mutex_unlock(&s->mu);
    for (; o; o = next) {
        next = o->next;
        out_apply(o);
    }
    release_held(s); /* held lines whose commits became durable */
    if (recheck && !shutdown)
        recheck_peers(s);
    if (shutdown)
        server_do_shutdown(s);
    if (force)
        for (struct ctl_conn *c = s->conns; c; c = c->next)
            conn_close(c);
}

/* ---- the control thread's scheduling ------------------------------------------------------ */

/* The slice the control thread asks the scheduler for when it runs at
 * normal priority (sched_setattr's sched_runtime on SCHED_OTHER, honoured
 * since Linux 6.12: EEVDF gives a task with a shorter slice an earlier
 * deadline, so it preempts CPU-bound work when it wakes instead of waiting
 * out that work's slice).  The thread's weight (nice) is unchanged, so it
 * takes no more CPU than before, only sooner.  On an older kernel the
 * field is ignored. */
#define CTL_SLICE_NS 100000ULL

/* control.realtime: SCHED_FIFO at the lowest real-time priority, above
 * every normal thread of the machine (the daemon's own workers, its main
 * loop, CPU-bound neighbours) and below anything an administrator raised.
 * Measured (README, bench_jobs): beside the 1,000-job burst the short
 * slice still left `status` waiting 4-13 ms for a CPU now and then; at
 * SCHED_FIFO those waits went.  A real-time thread must not be able to
 * take a CPU from the rest of the machine, so it keeps to a budget: when
 * it used more than CTL_RT_SHARE_PCT of one CPU over a window of at least
 * CTL_RT_WINDOW_MS (a flood of requests from an allowed user; measured,
 * 100 `status` and 100 `job show` a second cost it 3% of a CPU), it drops
 * to the short slice for CTL_RT_REST_MS and then takes its priority again.
 * Writing a large answer (the `audit list` of 1,000 records, 28 MB) can
 * pass the budget too, for a moment: bench_jobs logs one such rest at its
 * end.  SCHED_FLAG_RESET_ON_FORK: nothing it might start
 * inherits the priority. */
#define CTL_RT_PRIO             1
#define CTL_RT_WINDOW_MS        100
#define CTL_RT_SHARE_PCT        20
#define CTL_RT_REST_MS          1000
#define CTL_SCHED_RESET_ON_FORK 0x01 /* SCHED_FLAG_RESET_ON_FORK, uapi/linux/sched.h */
/* The budget's log line at most this often (a flood would repeat it). */
#define CTL_RT_LOG_MS 60000

/* struct sched_attr as the kernel's ABI defines it (its first version,
 * 48 bytes); glibc has neither the struct nor a wrapper. */
struct ctl_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

static const char *const ctl_sched_names[] = {
    [CTL_SCHED_DEFAULT] = "default",
    [CTL_SCHED_SLICE] = "slice",
    [CTL_SCHED_REALTIME] = "realtime",
    [CTL_SCHED_RESTING] = "realtime_resting",
};

/* Sets the calling thread's policy: SCHED_FIFO (realtime) or SCHED_OTHER
 * with the short slice at its own nice value.  Returns 0 or an errno. */
static int sched_set(int realtime)
{
#ifdef SYS_sched_setattr
    struct ctl_sched_attr a = {.size = sizeof a, .sched_flags = CTL_SCHED_RESET_ON_FORK};
    if (realtime) {
        a.sched_policy = SCHED_FIFO;
        a.sched_priority = CTL_RT_PRIO;
    } else {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0); /* this thread's own (Linux) */
        if (nice == -1 && errno != 0)
            return errno;
        a.sched_policy = SCHED_OTHER;
        a.sched_nice = nice;
        a.sched_runtime = CTL_SLICE_NS;
    }
    return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : errno;
#else
    (void)realtime;
    return ENOSYS;
#endif
}

/* The calling thread's CPU time in ns, or 0 when it cannot be read. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* After every turn of the control loop: the real-time budget (above).
 * The clock is read here, not taken from uv_now, which libuv set before
 * the turn's callbacks ran: the window must include the turn it pays for. */
static void on_budget_check(uv_check_t *h)
{
    struct ctl_server *s = h->data;
    uint64_t now = now_monotonic_ms(), span = now - s->rt_win_ms;
    int state = atomic_load(&s->sched_state), e;
    if (state == CTL_SCHED_RESTING) {
        if (now < s->rt_rest_until_ms)
            return;
        if ((e = sched_set(1)) != 0) {
            /* the limit was lowered under us (prlimit on the daemon): stay
             * at normal priority, and say so once */
            atomic_store(&s->sched_state, CTL_SCHED_SLICE);
            uv_check_stop(&s->budget);
            log_info("ctl: the control thread cannot take real-time priority again (%s): it "
                     "stays at normal priority until the next start",
                     strerror(e));
            return;
        }
        atomic_store(&s->sched_state, CTL_SCHED_REALTIME);
        s->rt_win_ms = now;
        s->rt_win_cpu = thread_cpu_ns();
        return;
    }
    if (state != CTL_SCHED_REALTIME || span < CTL_RT_WINDOW_MS)
        return;
    uint64_t cpu = thread_cpu_ns();
    if (cpu < s->rt_win_cpu || !cpu)
        return; /* no reading: the next window decides */
    uint64_t used_ms = (cpu - s->rt_win_cpu) / 1000000;
    s->rt_win_ms = now;
    s->rt_win_cpu = cpu;
    if (used_ms * 100 <= span * CTL_RT_SHARE_PCT)
        return;
    uint64_t n;
    if ((e = sched_set(0)) != 0) {
        /* never seen: leaving SCHED_FIFO needs no permission */
        if (lograte_due(&s->stuck_log, now, CTL_RT_LOG_MS))
            log_warnx("ctl: the control thread is over its real-time budget but cannot leave "
                      "it: %s",
                      strerror(e));
        return;
    }
    atomic_store(&s->sched_state, CTL_SCHED_RESTING);
    s->rt_rest_until_ms = now + CTL_RT_REST_MS;
    if ((n = lograte_due(&s->rests_log, now, CTL_RT_LOG_MS)))
        log_info("ctl: the control thread used %llu ms of CPU in %llu ms, over its real-time "
                 "budget of %d%% of a CPU: normal priority for about %d ms (rests since the last "
                 "such line, this one included: %llu)",
                 (unsigned long long)used_ms, (unsigned long long)span, CTL_RT_SHARE_PCT,
                 CTL_RT_REST_MS, (unsigned long long)n);
}

/* At the control thread's start: real-time where control.realtime asks for
 * it and the daemon may (root, CAP_SYS_NICE, or a RLIMIT_RTPRIO of at
 * least 1 and no seccomp filter refusing sched_setattr: the shipped unit
 * gives LimitRTPRIO=1), else the short slice, else as the kernel made it.
 * Says once which it got. */
static void sched_start(struct ctl_server *s)
{
    int e = 0;
    if (s->rt_wanted) {
        if ((e = sched_set(1)) == 0) {
            atomic_store(&s->sched_state, CTL_SCHED_REALTIME);
            s->rt_win_ms = now_monotonic_ms();
            s->rt_win_cpu = thread_cpu_ns();
            uv_check_start(&s->budget, on_budget_check);
            log_info("ctl: the control thread runs at real-time priority (SCHED_FIFO %d, at most "
                     "%d%% of a CPU; control.realtime)",
                     CTL_RT_PRIO, CTL_RT_SHARE_PCT);
            return;
        }
    }
    int e2 = sched_set(0);
    atomic_store(&s->sched_state, e2 == 0 ? CTL_SCHED_SLICE : CTL_SCHED_DEFAULT);
    if (s->rt_wanted)
        log_info("ctl: no real-time priority for the control thread (%s; it needs root, "
                 "CAP_SYS_NICE or LimitRTPRIO=1 with RestrictRealtime=no and sched_setattr "
                 "allowed, as the shipped unit has): it runs at %s",
                 strerror(e), e2 == 0 ? "normal priority with a short slice" : "normal priority");
    if (e2 != 0)
        log_debug("ctl: no short scheduler slice for the control thread: %s", strerror(e2));
}

const char *ctl_server_scheduling(const struct ctl_server *s)
{
    return ctl_sched_names[atomic_load(&s->sched_state)];
}

static void *ctl_thread(void *arg)
{
    struct ctl_server *s = arg;
    (void)pthread_setname_np(pthread_self(), "vtuned-ctl"); /* top -H, /proc/PID/task/TID/comm */
    sched_start(s);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* until shutdown has closed every handle */
    if (uv_loop_close(&s->loop) != 0)
        log_warnx("ctl: some control handles were still open at exit");
    store_close(s->reader);
    s->reader = NULL;
    pthread_mutex_lock(&s->mu);
    s->thread_done = 1;
    pthread_mutex_unlock(&s->mu);
    wakeup_send(&s->to_main);
    return NULL;
}

/* ---- the main loop's side ------------------------------------------------------------------ */

/* The status snapshot is published before every line to a client, and
 * otherwise at most this often while the main loop turns. */
#define CTL_PUBLISH_MS 20

static void publish_now(struct ctl_server *s)
{
    size_t n;
    char *text = line_of(status_snapshot(s->d), &n);
    s->pub_gen++;
    s->pub_ms = uv_now(s->d->loop);
    pthread_mutex_lock(&s->mu);
    free(s->snap);
    s->snap = text; /* NULL (no memory): the main loop answers status */
    s->snap_gen = s->pub_gen;
    pthread_mutex_unlock(&s->mu);
}

static void on_publish_timer(uv_timer_t *t)
{
    struct ctl_server *s = t->data;
    if (!s->joined)
        publish_now(s);
}

/* After each turn of the main loop: at most every CTL_PUBLISH_MS (a timer
 * covers the last turn), for what changed without a line to a client
 * (provider statistics, jobs driven). */
static void on_publish_check(uv_check_t *h)
{
    struct ctl_server *s = h->data;
    uint64_t now = uv_now(s->d->loop);
    if (s->joined)
        return;
    if (now - s->pub_ms >= CTL_PUBLISH_MS) {
        uv_timer_stop(&s->publish_t);
        publish_now(s);
    } else if (!uv_is_active((uv_handle_t *)&s->publish_t)) {
        uv_timer_start(&s->publish_t, on_publish_timer, CTL_PUBLISH_MS - (now - s->pub_ms), 0);
    }
}

/* A read method on the main loop, through its own connection (no bound
 * on lists: nowhere else to send them). */
static void main_read(struct vtuned *d, struct ctl_req *req, json_t *params)
{
    struct ctl_read r = {.store = d->store, .peer = ctl_req_peer(req)};
    json_t *res = req->read(&r, params);
    if (res)
        ctl_reply(req, res);
    else
        ctl_reply_error(req, r.code, NULL, "%s", r.msg);
}

void ctl_read_fail(struct ctl_read *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->code = code;
    r->elsewhere = code == CTL_ERR_INTERNAL;
}

int ctl_read_too_long(struct ctl_read *r, int64_t rows, size_t row_bytes)
{
    if (!r->max_bytes || rows <= 0 || (uint64_t)rows <= r->max_bytes / row_bytes)
        return 0;
    ctl_read_fail(r, CTL_ERR_INTERNAL, "%lld rows of about %zu bytes: over %llu", (long long)rows,
                  row_bytes, (unsigned long long)r->max_bytes);
    return 1;
}

/* Runs the requests the control thread forwarded; joins it once it ended. */
static void on_to_main(struct wakeup *w)
{
    struct ctl_server *s = w->data;
    struct vtuned *d = s->d;
    struct ctl_req *req, *next;
    int done;
    pthread_mutex_lock(&s->mu);
    req = s->fwd_head;
    s->fwd_head = NULL;
    s->fwd_tail = &s->fwd_head;
    done = s->thread_done;
    pthread_mutex_unlock(&s->mu);
    for (; req; req = next) {
        next = req->next;
        if (d->stopping) {
            ctl_reply_error(req, CTL_ERR_SHUTDOWN, NULL, "vtuned is shutting down");
            continue;
        }
        json_t *params = json_incref(req->params);
        req->commits0 = store_durable_commits(d->store);
        if (req->read)
            main_read(d, req, params);
        else
            req->fn(d, req, params); /* may answer, and free req, now */
        json_decref(params);
    }
    if (done && !s->joined) {
        struct ctl_out *o, *onext;
        pthread_join(s->thread, NULL);
        s->joined = 1;
        pthread_mutex_lock(&s->mu);
        o = s->out_head;
        s->out_head = NULL;
        s->out_tail = &s->out_head;
        pthread_mutex_unlock(&s->mu);
        for (; o; o = onext) { /* their connections are closed: this frees */
            onext = o->next;
            out_apply(o);
        }
        uv_timer_stop(&s->publish_t);
        uv_check_stop(&s->publish);
        wakeup_close(&s->to_main);
        uv_close((uv_handle_t *)&s->publish, NULL);
        uv_close((uv_handle_t *)&s->publish_t, NULL);
    }
}

int ctl_server_start(struct vtuned *d, struct ctl_server **out, char **err)
{
    const struct conf *cf = d->conf;
    struct ctl_server *s = xcalloc(1, sizeof *s);
    int fd, r;
    char *dir = NULL, *db;
    gid_t sock_gid = (gid_t)-1;

    s->d = d;
    s->started_ms = d->started_ms;
    s->path = xstrdup(cf->socket);
    pthread_mutex_init(&s->mu, NULL);
    s->fwd_tail = &s->fwd_head;
    s->out_tail = &s->out_head;
    s->lim.sock_gid = (gid_t)-1;
    if ((r = uv_loop_init(&s->loop)) < 0) {
        *err = xasprintf("cannot create the control loop: %s", uv_strerror(r));
        pthread_mutex_destroy(&s->mu);
        free(s->path);
        free(s);
        return -1;
    }
    uv_timer_init(&s->loop, &s->sweep);
    s->sweep.data = s;
    uv_check_init(&s->loop, &s->budget);
    s->budget.data = s;
    s->rt_wanted = cf->control.realtime;
    uv_pipe_init(&s->loop, &s->pipe, 0);
    s->pipe.data = s;
    s->handles = 1;
    if ((r = wakeup_init(&s->loop, &s->wake, on_wake)) < 0) {
        *err = xasprintf("cannot create the control thread's wake-up: %s", uv_strerror(r));
        goto fail;
    }
    s->wake.data = s;
    limits_load(s);
    if (cf->socket_group) {
        struct group *g = getgrnam(cf->socket_group);
        if (!g) {
            *err = xasprintf("%s: socket_group: no such group '%s'", cf->path, cf->socket_group);
            goto fail;
        }
        sock_gid = g->gr_gid;
    }

    fd = notify_listen_fd();
    if (fd >= 0) {
        if ((r = uv_pipe_open(&s->pipe, fd)) < 0) {
            *err = xasprintf("cannot adopt the socket passed by systemd: %s", uv_strerror(r));
            goto fail;
        }
        s->activated = 1;
        log_info("ctl: using the socket passed by systemd");
    } else {
        struct stat st;
        if (strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            *err =
                xasprintf("%s: socket: path '%s' is too long for a Unix socket", cf->path, s->path);
            goto fail;
        }
        dir = xstrdup(s->path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (stat(dir, &st) < 0) {
                if ((r = mkdir_p(dir, 0750)) < 0) {
                    *err = xasprintf("cannot create socket directory %s: %s", dir, strerror(-r));
                    goto fail;
                }
                chmod(dir, 0750);
                if (sock_gid != (gid_t)-1 && chown(dir, (uid_t)-1, sock_gid) < 0)
                    log_warn("ctl: cannot give %s to the socket group", dir);
            }
        }
        if (lstat(s->path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                *err = xasprintf("%s exists and is not a socket; remove it or change 'socket' "
                                 "in %s",
                                 s->path, cf->path);
                goto fail;
            }
            if (socket_alive(s->path)) {
                *err = xasprintf("%s: another vtuned is already listening there", s->path);
                goto fail;
            }
            unlink(s->path); /* stale, from a crash */
        }
        mode_t old = umask(0177); /* the socket is born 0600, then widened */
        r = uv_pipe_bind(&s->pipe, s->path);
        umask(old);
        if (r < 0) {
            *err = xasprintf("cannot bind control socket %s: %s", s->path, uv_strerror(r));
            goto fail;
        }
        if (sock_gid != (gid_t)-1 && chown(s->path, (uid_t)-1, sock_gid) < 0) {
            *err = xasprintf("cannot set group of %s: %s", s->path, strerror(errno));
            goto fail;
        }
        if (chmod(s->path, cf->socket_mode) < 0) {
            *err = xasprintf("cannot set mode of %s: %s", s->path, strerror(errno));
            goto fail;
        }
    }
    if (sock_gid == (gid_t)-1)
        sock_gid = socket_file_gid(s);
    s->lim.sock_gid = sock_gid; /* no other thread yet */
    s->overflow_uid = read_overflow_uid();
    if ((r = uv_listen((uv_stream_t *)&s->pipe, 128, on_connection)) < 0) {
        *err = xasprintf("cannot listen on %s: %s", s->path, uv_strerror(r));
        goto fail;
    }
    if ((r = wakeup_init(d->loop, &s->to_main, on_to_main)) < 0) {
        *err = xasprintf("cannot create the main loop's wake-up: %s", uv_strerror(r));
        goto fail;
    }
    /* The reader for status counts; without it the main loop answers. */
    db = xasprintf("%s/vtuned.db", cf->state_dir);
    if (store_open_reader(db, &s->reader, err) < 0) {
        log_warnx("ctl: %s; status will be answered by the main loop", *err);
        free(*err);
        *err = NULL;
    }
    free(db);
    uv_timer_start(&s->sweep, on_sweep, VTUNED_CRON_MS, VTUNED_CRON_MS);
    uv_check_init(d->loop, &s->publish);
    uv_timer_init(d->loop, &s->publish_t);
    s->to_main.data = s->publish.data = s->publish_t.data = s;
    uv_check_start(&s->publish, on_publish_check);
    uv_unref((uv_handle_t *)&s->publish); /* only to_main keeps the loop alive */
    uv_unref((uv_handle_t *)&s->publish_t);
    publish_now(s);
    if ((r = pthread_create(&s->thread, NULL, ctl_thread, s)) != 0)
        fatalx("cannot start the control thread: %s", strerror(r));
    s->thread_started = 1;
    free(dir);
    *out = s;
    return 0;
fail:
    free(dir);
    s->closing = 1;
    /* Handles are freed only after their close callbacks: close the
     * listener (server_release then closes wake, sweep and budget) and run the
     * control loop, not yet threaded, until they are done. */
    uv_close((uv_handle_t *)&s->pipe, on_listener_closed);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&s->loop);
    wakeup_free(&s->wake);
    free(s->lim.allowed_gids);
    free(s->lim.allowed_uids);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
    return -1;
}

void ctl_server_free(struct ctl_server *s)
{
    if (!s)
        return;
    if (!s->joined) /* the main loop ended without the thread's end: never expected */
        log_warnx("ctl: the control thread was not joined at exit");
    wakeup_free(&s->wake); /* no sender is left: the loops have ended */
    wakeup_free(&s->to_main);
    free(s->snap);
    free(s->lim.allowed_gids);
    free(s->lim.allowed_uids);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

void ctl_server_shutdown(struct ctl_server *s)
{
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->mu);
    s->want_shutdown = 1;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

void ctl_server_force_close(struct ctl_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->want_force_close = 1;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

int ctl_server_set_access(struct ctl_server *s, mode_t mode, const char *group, char **err)
{
    gid_t gid = (gid_t)-1;
    if (s->activated) {
        *err = xasprintf("the socket was passed by systemd: set SocketMode=/SocketGroup= in "
                         "vtuned.socket and restart the socket unit");
        return 1;
    }
    if (group) {
        struct group *g = getgrnam(group);
        if (!g) {
            *err = xasprintf("no such group '%s'", group);
            return -1;
        }
        gid = g->gr_gid;
    }
    /* Never wider than both the old and the new setting, not even for a
     * moment: first the bits both allow, then the group, then the mode. */
    struct stat st;
    if (stat(s->path, &st) < 0) {
        *err = xasprintf("cannot stat %s: %s", s->path, strerror(errno));
        return -1;
    }
    if (chmod(s->path, st.st_mode & mode & 07777) < 0) {
        *err = xasprintf("cannot set the mode of %s: %s", s->path, strerror(errno));
        return -1;
    }
    if (chown(s->path, (uid_t)-1, group ? gid : getegid()) < 0) {
        *err = xasprintf("cannot set the group of %s: %s", s->path, strerror(errno));
        return -1;
    }
    if (chmod(s->path, mode) < 0) {
        *err = xasprintf("cannot set the mode of %s: %s", s->path, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->lim.sock_gid = gid;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/*
 * wakeup.c — cross-thread wake-ups that never make the receiver wait for
 * a sender (wakeup.h says why uv_async_t does, and what this promises).
 *
 * One flag and one eventfd (non-blocking) per wake-up:
 *   send      if exchange(flag, 1) was 0: write 1 to the eventfd;
 *   receiver  (the loop sees the eventfd readable) read it to zero, then
 *             store flag = 0, then run the owner's callback.
 * A send that finds the flag set writes nothing: its write is unread, or
 * the receiver has read it and not yet cleared the flag, and then the
 * callback about to run comes after this send's queue item (the sender
 * queued before its exchange, the receiver drains after its clear).  A
 * send after the clear writes again: at worst one callback finds nothing
 * new, never is one missed.  Both atomics are sequentially consistent.
 * write(2) fails with EAGAIN only at 2^64-2 unread sends (one at most is
 * unread here), and never with EBADF: the descriptor outlives every sender
 * (wakeup_free).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/wakeup.h"

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct wakeup *w = h->data;
    uint64_t v;
    (void)events;
    (void)status; /* an eventfd reports no error worth acting on: still drain */
    while (read(w->fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    atomic_store(&w->flag, 0);
    w->cb(w);
}

int wakeup_init(uv_loop_t *loop, struct wakeup *w, wakeup_cb cb)
{
    int r;
    w->cb = cb;
    w->closing = 0;
    atomic_init(&w->flag, 0);
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->fd < 0) {
        w->closing = 1;
        return -errno;
    }
    if ((r = uv_poll_init(loop, &w->poll, w->fd)) < 0) { /* no handle was made */
        wakeup_free(w);
        w->closing = 1;
        return r;
    }
    w->poll.data = w;
    if ((r = uv_poll_start(&w->poll, UV_READABLE, on_readable)) < 0) {
        wakeup_close(w); /* the handle exists: closed through libuv, fd by the owner */
        return r;
    }
    return 0;
}

void wakeup_send(struct wakeup *w)
{
    static const uint64_t one = 1;
    int saved = errno; /* callable from a signal handler */
    if (atomic_exchange(&w->flag, 1) == 0)
        while (write(w->fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    errno = saved;
}

void wakeup_close(struct wakeup *w)
{
    if (w->closing)
        return;
    w->closing = 1;
    uv_close((uv_handle_t *)&w->poll, NULL);
}

void wakeup_free(struct wakeup *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

void wakeup_ref(struct wakeup *w, int keep_alive)
{
    if (keep_alive)
        uv_ref((uv_handle_t *)&w->poll);
    else
        uv_unref((uv_handle_t *)&w->poll);
}

/*
 * wakeup.h — wake a libuv loop from another thread without the waker ever
 * being waited for: the daemon's replacement for uv_async_t between its
 * own threads (the control thread, the main loop, the store's syncer).
 *
 * Why not uv_async_t.  libuv up to at least 1.44 (Debian 12's) marks an
 * async handle "pending, sender busy", writes its loop's eventfd, then
 * marks it "sender done"; the woken loop busy-waits (997 pause
 * instructions, then sched_yield, again and again) until it sees "done".
 * The write itself wakes the receiver, and a receiver that the scheduler
 * favours (the control thread asks for a short slice) preempts the sender
 * right there, on the same CPU, and spins until the sender runs again.
 * Under the 1,000-job bench, perf put 36% of the control thread's CPU in
 * that spin, in stretches of up to 2 ms while `status` requests waited
 * (issue 13 item 1).
 *
 * Here a send sets a flag and, when the flag was clear, writes to an
 * eventfd that the receiving loop polls; nothing on the receiving side
 * ever waits for a sender.  The receiver reads the counter to zero,
 * clears the flag, then runs the callback, which drains whatever queue the
 * sends announced (the queue's own lock orders the items; the eventfd only
 * says "look").  A send before the clear is covered by this callback, one
 * after it writes again, so the callback runs at least once after every
 * send, and sends that arrive before it runs coalesce into one wake-up
 * and one callback, as with uv_async_send.  A sender stopped between its
 * flag and its write delays only the wake-ups of that struct (each of the
 * daemon's has one sending thread), and never makes a loop wait: each
 * wake-up has its own descriptor, where uv_async_t's share the loop's.
 *
 * Lifetime: wakeup_init and wakeup_close on the loop's thread; the struct
 * lives inside its owner.  wakeup_close stops the polling; the descriptor
 * stays open, so that a send racing with the close writes harmlessly,
 * until wakeup_free, which the owner calls once no thread can send any
 * more (after joining the senders) and the loop has run the close.
 */
#ifndef VT_WAKEUP_H
#define VT_WAKEUP_H

#include <stdatomic.h>

#include <uv.h>

struct wakeup;
typedef void (*wakeup_cb)(struct wakeup *w);

struct wakeup {
    uv_poll_t poll;  /* on the eventfd, readable while a send is unseen */
    int fd;          /* the eventfd (non-blocking, close-on-exec); -1: none */
    atomic_int flag; /* 1 from a send's write until the callback starts */
    int closing;     /* wakeup_close was called */
    wakeup_cb cb;
    void *data; /* the owner's, untouched here */
};

/* Sets up w on loop (the loop's thread).  Returns 0, or a negative errno;
 * on failure w is closing or closed: the owner runs the loop (for a handle
 * that may be closing) and calls wakeup_free, as after wakeup_close. */
int wakeup_init(uv_loop_t *loop, struct wakeup *w, wakeup_cb cb);

/* Makes w's callback run on its loop, soon, at least once after this call.
 * Any thread (async-signal-safe: an atomic exchange and at most one
 * write(2)); never waits, never allocates. */
void wakeup_send(struct wakeup *w);

/* Stops w's polling (its handle closes on the loop's next turn).  The
 * loop's thread; a no-op on a closing w or one whose init failed. */
void wakeup_close(struct wakeup *w);

/* Closes w's descriptor: once no thread can call wakeup_send on w and the
 * loop has closed its handle (or it never had one).  A no-op when the
 * descriptor is closed already. */
void wakeup_free(struct wakeup *w);

/* Keeps or stops w keeping its loop alive (uv_ref / uv_unref). */
void wakeup_ref(struct wakeup *w, int keep_alive);

#endif

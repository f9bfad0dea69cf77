/*
 * test_wakeup.c — daemon/wakeup.c: every send is followed by a callback
 * that sees what the send announced, from any number of threads; sends
 * coalesce; a send during the callback is not lost (it fails if the flag
 * is cleared after the callback instead of before); close and free give
 * the descriptor back; an unreferenced wake-up does not keep its loop
 * alive; and the property uv_async_t lacks: a sender stopped anywhere
 * (here by a signal, which lands as it returns from its write) keeps the
 * receiving loop from nothing else, such as another wake-up's callback.
 * With libuv 1.44's uv_async_send in place of wakeup_send, the last test
 * hangs the receiver in uv__async_spin and fails at its deadline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/wakeup.h"

/* A queue of counts without a lock (a sender stopped by a signal must not
 * hold one): senders add, the callback takes everything added so far. */
struct box {
    struct wakeup w;
    _Atomic uint64_t queued;   /* added by senders, not yet taken */
    _Atomic uint64_t received; /* taken by callbacks (written on the loop thread) */
    uint64_t target;           /* the callback closes w once received reaches it */
    _Atomic unsigned calls;    /* callbacks so far (read from other threads too) */
};

static void on_wake(struct wakeup *w)
{
    struct box *b = w->data;
    atomic_fetch_add(&b->received, atomic_exchange(&b->queued, 0));
    atomic_fetch_add(&b->calls, 1);
    if (b->target && atomic_load(&b->received) >= b->target)
        wakeup_close(&b->w);
}

static void box_init(uv_loop_t *loop, struct box *b, wakeup_cb cb)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(wakeup_init(loop, &b->w, cb), 0);
    b->w.data = b;
}

static void box_add(struct box *b, uint64_t n)
{
    atomic_fetch_add(&b->queued, n);
    wakeup_send(&b->w);
}

/* ---- many senders, nothing lost ------------------------------------------------------- */

#define SENDERS 4
#define SENDS   20000

static void *send_many(void *arg)
{
    for (int i = 0; i < SENDS; i++)
        box_add(arg, 1);
    return NULL;
}

static void test_every_send_is_seen(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct box b;
    pthread_t t[SENDERS];
    assert_int_equal(uv_loop_init(&loop), 0);
    box_init(&loop, &b, on_wake);
    b.target = (uint64_t)SENDERS * SENDS;
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, send_many, &b), 0);
    /* Runs until the callback has taken every count and closed w: a lost
     * wake-up would leave the last counts queued and this never return
     * (the test harness's timeout then fails the test). */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&b.received), (uint64_t)SENDERS * SENDS);
    assert_int_equal(atomic_load(&b.queued), 0);
    assert_true(b.calls >= 1 && b.calls <= (unsigned)SENDERS * SENDS);
    assert_int_equal(uv_loop_close(&loop), 0);
    wakeup_free(&b.w);
    assert_int_equal(b.w.fd, -1);
}

/* ---- coalescing, close, ref ------------------------------------------------------------ */

static void test_sends_coalesce_and_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct box b;
    assert_int_equal(uv_loop_init(&loop), 0);
    box_init(&loop, &b, on_wake);
    int fd = b.w.fd;
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* nothing sent: a turn of the loop calls nothing */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 0);
    /* three sends before the loop turns: one call, which sees all three */
    box_add(&b, 1);
    box_add(&b, 1);
    box_add(&b, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 1);
    assert_int_equal(atomic_load(&b.received), 3);
    uv_run(&loop, UV_RUN_NOWAIT); /* the counter was read to zero */
    assert_int_equal(b.calls, 1);
    /* a send from the loop's own thread, from inside nothing */
    box_add(&b, 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 2);
    assert_int_equal(atomic_load(&b.received), 5);
    /* unreferenced, it does not keep the loop alive; referenced, it does */
    wakeup_ref(&b.w, 0);
    assert_int_equal(uv_loop_alive(&loop), 0);
    wakeup_ref(&b.w, 1);
    assert_int_not_equal(uv_loop_alive(&loop), 0);
    /* close stops the polling: a send after it calls nothing, and the
     * descriptor stays open (a racing sender writes harmlessly) until free */
    wakeup_close(&b.w);
    wakeup_close(&b.w);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    box_add(&b, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 2);
    assert_true(fcntl(fd, F_GETFD) >= 0);
    wakeup_free(&b.w);
    wakeup_free(&b.w);
    assert_int_equal(b.w.fd, -1);
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A send made while the callback runs (after the flag is cleared, as a
 * sender racing with the drain would) gets a callback of its own. */
static void on_wake_send_again(struct wakeup *w)
{
    struct box *b = w->data;
    on_wake(w);
    if (atomic_load(&b->calls) == 1)
        box_add(b, 1);
}

static void test_send_during_callback_is_seen(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct box b;
    assert_int_equal(uv_loop_init(&loop), 0);
    box_init(&loop, &b, on_wake_send_again);
    box_add(&b, 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 1);
    assert_int_equal(atomic_load(&b.queued), 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.calls, 2);
    assert_int_equal(atomic_load(&b.received), 2);
    wakeup_close(&b.w);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    wakeup_free(&b.w);
}

/* ---- a stopped sender holds nobody ------------------------------------------------------ */

/* The loop runs in a thread of its own for the whole test, with two
 * wake-ups: sender A's and the test's own.  A sends in a loop, so its sends
 * keep reaching the write (uv_async_send skips it while a send is still
 * unseen).  SIGUSR1 stops A inside its handler -- a signal lands as A
 * returns from a system call, most often right after the write that wakes
 * the loop -- until the test writes to release[1].  With A stopped, the
 * test sends on its own wake-up and waits (a state, with a deadline that
 * fails the test) for the loop to take that count; then releases A.  On a
 * deadline the test releases A first, so that a receiver stuck waiting
 * for A ends and the test fails cleanly. */
#define ROUNDS     300
#define DEADLINE_S 10

static int release[2];
static atomic_int a_stopped, a_stop, quit;
static struct box *a_box;

static void on_usr1(int sig)
{
    char c;
    (void)sig;
    atomic_store(&a_stopped, 1);
    while (read(release[0], &c, 1) < 0 && errno == EINTR)
        ;
    atomic_store(&a_stopped, 0);
}

static void *sender_a(void *arg)
{
    (void)arg;
    while (!atomic_load(&a_stop))
        box_add(a_box, 1);
    return NULL;
}

static void on_wake_or_quit(struct wakeup *w)
{
    on_wake(w);
    if (atomic_load(&quit))
        wakeup_close(w);
}

static void *receiver(void *arg)
{
    uv_run(arg, UV_RUN_DEFAULT); /* until both wake-ups are closed */
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_stopped_sender_holds_nobody(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct box a, b;
    pthread_t at, rt;
    struct sigaction sa;
    int late = 0, rounds = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    assert_int_equal(pipe(release), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    box_init(&loop, &a, on_wake_or_quit);
    box_init(&loop, &b, on_wake_or_quit);
    a_box = &a;
    assert_int_equal(pthread_create(&rt, NULL, receiver, &loop), 0);
    assert_int_equal(pthread_create(&at, NULL, sender_a, NULL), 0);
    for (; rounds < ROUNDS && !late; rounds++) {
        /* let A send a while, through the loop's callbacks */
        unsigned seen = atomic_load(&a.calls);
        while (atomic_load(&a.calls) < seen + 3)
            sched_yield();
        pthread_kill(at, SIGUSR1);
        while (!atomic_load(&a_stopped)) /* the state the round needs: A stopped */
            sched_yield();
        uint64_t want = atomic_load(&b.received) + 1;
        box_add(&b, 1);
        double deadline = now_s() + DEADLINE_S;
        while (atomic_load(&b.received) < want && !late)
            if (now_s() > deadline)
                late = 1;
            else
                sched_yield();
        assert_int_equal(atomic_load(&a_stopped), 1); /* A is still stopped */
        assert_int_equal(write(release[1], "r", 1), 1);
        while (atomic_load(&a_stopped))
            sched_yield();
    }
    atomic_store(&a_stop, 1);
    pthread_join(at, NULL);
    atomic_store(&quit, 1);
    wakeup_send(&a.w);
    wakeup_send(&b.w);
    pthread_join(rt, NULL);
    if (late)
        fail_msg("round %d: a wake-up was not taken while another's sender was stopped", rounds);
    assert_int_equal(uv_loop_close(&loop), 0);
    wakeup_free(&a.w);
    wakeup_free(&b.w);
    close(release[0]);
    close(release[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_send_is_seen),
        cmocka_unit_test(test_sends_coalesce_and_close),
        cmocka_unit_test(test_send_during_callback_is_seen),
        cmocka_unit_test(test_stopped_sender_holds_nobody),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * vtuned.c — the daemon's entry point: options, start-up, signals, the
 * housekeeping timer and the shutdown order (see vtuned.h).
 *
 * Policy (after knot-resolver): anything that fails before READY=1 is
 * fatal and exits 1 with one line saying what and where; after READY=1 a
 * failure fails the request or job that caused it, never the daemon.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/ctl.h"
#include "daemon/jobs.h"
#include "daemon/providers.h"
#include "daemon/signing.h"
#include "daemon/verifier.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "daemon/notify.h"
#include "daemon/outbox.h"
#include "daemon/provider_client.h"
#include "lib/util.h"
#include "lib/sign.h"
#include "daemon/vtuned.h"

/* The configured sysconfdir (Makefile.am passes ./configure's --sysconfdir):
 * /etc for a system build, /usr/local/etc for the default prefix. */
#ifndef VT_SYSCONFDIR
#define VT_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG   VT_SYSCONFDIR "/vtuned/vtuned.yaml"
#define STOP_DEADLINE_MS 5000

static void usage(FILE *f)
{
    fprintf(f, "usage: vtuned [-c FILE] [-f|--foreground] [--check-config] [--version] [--help]\n"
               "\n"
               "vtuned keeps datasets, secret backdoors, fine-tuning jobs and audit results, and\n"
               "proves that a provider fine-tuned a model on your data (vTune).  It is driven by\n"
               "vtunectl(1) over a Unix socket.\n"
               "\n"
               "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
               "  -f, --foreground    run in the foreground (the default; vtuned never forks,\n"
               "                      systemd or your supervisor keeps it running)\n"
               "      --check-config  load and validate the configuration, print the result,\n"
               "                      and exit 0 (valid) or 1 (invalid)\n"
               "  -d, --debug         log at debug level (overrides log_level)\n"
               "  -V, --version       print the version and exit\n"
               "  -h, --help          print this help and exit\n"
               "\n"
               "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration\n"
               "(a bad new file is rejected and the old one kept).\n"
               "See vtuned(8) and vtuned.yaml(5).\n");
}

/* VTUNED_TEST_STALL (on_stall below): the FIFO, NULL when unset. */
static uv_signal_t stall_sig;
static char *stall_fifo;

static void on_stop_deadline(uv_timer_t *t)
{
    struct vtuned *d = t->data;
    log_warnx("shutdown: clients did not finish within %d ms; closing them", STOP_DEADLINE_MS);
    if (d->ctl)
        ctl_server_force_close(d->ctl);
}

/* The syncer thread (store/durable.c): only wakeup_send is safe there. */
static void durable_notify(void *ctx)
{
    wakeup_send(&((struct vtuned *)ctx)->durable);
}

static uint64_t barrier_ticket(void *ctx)
{
    return store_durable_ticket(((struct vtuned *)ctx)->store);
}

static bool barrier_passed(void *ctx, uint64_t t)
{
    return store_durable_passed(((struct vtuned *)ctx)->store, t);
}

/* A group of commits is on disk: the provider requests and the replies
 * that waited for it go out. */
static void on_durable(struct wakeup *w)
{
    struct vtuned *d = w->data;
    providers_release(d);
    if (d->ctl)
        ctl_server_release(d->ctl);
}

void vtuned_stop(struct vtuned *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    notify_send("STOPPING=1\nSTATUS=shutting down");
    log_info("shutting down");
    tasks_cancel_all(d);
    jobs_stop(d);
    verifier_stop(d);
    providers_shutdown(d); /* calls in flight end now, with -ECANCELED */
    if (d->ctl)
        ctl_server_shutdown(d->ctl);
    uv_timer_stop(&d->cron);
    uv_close((uv_handle_t *)&d->cron, NULL);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    if (stall_fifo)
        uv_close((uv_handle_t *)&stall_sig, NULL);
    /* The deadline must not keep the loop alive by itself. */
    uv_timer_start(&d->stop_deadline, on_stop_deadline, STOP_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&d->stop_deadline);
}

/* The test seam of vtuned(8) FAULT INJECTION, VTUNED_TEST_STALL=FIFO:
 * SIGUSR1 makes the main loop open FIFO for reading and read it to its
 * end, blocking the loop the whole time (a test proves the control thread
 * answers status meanwhile; tests/integration/test_ctl_thread.sh).  The
 * open blocks until a writer opens the FIFO, so a test that has opened it
 * knows the loop is inside; closing it lets the loop go on.  Unset, no
 * handler is installed. */
static void on_stall(uv_signal_t *h, int signum)
{
    char b[256];
    (void)h;
    (void)signum;
    log_warnx("VTUNED_TEST_STALL: the main loop blocks on %s until its writer closes it",
              stall_fifo);
    int fd = open(stall_fifo, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_warn("VTUNED_TEST_STALL: cannot open %s", stall_fifo);
        return;
    }
    while (read(fd, b, sizeof b) > 0 || errno == EINTR)
        errno = 0;
    close(fd);
    log_warnx("VTUNED_TEST_STALL: the main loop goes on");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct vtuned *d = h->data;
    if (signum == SIGHUP)
        vtuned_reload(d); /* daemon/reload.c */
    else {
        log_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        vtuned_stop(d);
    }
}

static void on_cron(uv_timer_t *t)
{
    struct vtuned *d = t->data;
    static uint64_t last_watchdog;
    uint64_t now = now_monotonic_ms();
    if (d->watchdog_usec && (now - last_watchdog) * 1000 >= d->watchdog_usec / 2) {
        notify_send("WATCHDOG=1");
        last_watchdog = now;
    }
    d->cron_ticks++;
    jobs_tick(d);
    verifier_tick(d);
    outbox_tick(d);
    if (vtuned_every(d, 1000))
        tasks_report_progress(d);
}

/* Creates the state directory tree 0700 under the store's one policy
 * (store_state_dir_prepare: a shared directory such as /tmp is refused,
 * never chmod-ed). */
static void prepare_state_dir(struct vtuned *d)
{
    const char *sd = d->conf->state_dir;
    char *err = NULL;
    int r;
    if (store_state_dir_prepare(sd, &err) < 0)
        fatalx("state_dir: %s", err);
    d->datasets_dir = xasprintf("%s/datasets", sd);
    d->tmp_dir = xasprintf("%s/tmp", sd);
    d->built_dir = xasprintf("%s/built", sd);
    if ((r = mkdir_p(d->built_dir, 0700)) < 0)
        fatalx("cannot create %s: %s", d->built_dir, strerror(-r));
    if ((r = mkdir_p(d->datasets_dir, 0700)) < 0)
        fatalx("cannot create %s: %s", d->datasets_dir, strerror(-r));
    if ((r = mkdir_p(d->tmp_dir, 0700)) < 0)
        fatalx("cannot create %s: %s", d->tmp_dir, strerror(-r));
}

/* One daemon per state directory.  A POSIX record lock on
 * <state_dir>/vtuned.lock, taken before the store opens and held by the
 * open descriptor for the life of the process (never closed: the kernel
 * drops it at exit, crash or kill -9 included, so a stale lock cannot
 * exist).  Sockets cannot stand in for this: two daemons with different
 * socket paths would both start and fight over the jobs.  The holder's pid
 * comes from F_GETLK (the kernel's word); the pid written into the file is
 * the fallback when F_GETLK cannot name it (a holder in another pid
 * namespace).  Fatal when the lock is taken: one line naming the holder. */
static void lock_state_dir(struct vtuned *d)
{
    char *path = xasprintf("%s/vtuned.lock", d->conf->state_dir);
    struct flock fl;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        fatalx("cannot open the state directory lock %s: %s", path, strerror(errno));
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        int e = errno;
        long pid = 0;
        if (e != EACCES && e != EAGAIN)
            fatalx("cannot lock %s: %s", path, strerror(e));
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0)
            pid = (long)fl.l_pid;
        if (pid <= 0) {
            char b[32];
            ssize_t n = pread(fd, b, sizeof b - 1, 0);
            if (n > 0) {
                b[n] = '\0';
                pid = strtol(b, NULL, 10);
            }
        }
        if (pid > 0)
            fatalx("state directory %s is in use by another vtuned (pid %ld holds %s): stop it, "
                   "or give this one another state_dir",
                   d->conf->state_dir, pid, path);
        fatalx("state directory %s is in use by another vtuned (%s is locked): stop it, or give "
               "this one another state_dir",
               d->conf->state_dir, path);
    }
    /* Our pid for people and for the fallback above; the lock, not this
     * text, is what excludes. */
    char b[32];
    int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, b, (size_t)n, 0) != n)
        log_warn("cannot write the pid into %s", path);
    d->lock_fd = fd;
    free(path);
}

/* Connections past the open-file limit are refused by accept(2) before
 * the daemon can say why, and descriptors clients send are dropped by the
 * kernel (a dataset add then reads "0 were sent").  Each connection may
 * hold its socket and the CTL_MAX_FDS descriptors sent with its line in
 * progress, and requests waiting for an answer hold at most
 * max_connections x CTL_MAX_FDS more (ctl.c, handle_line), so what clients
 * may take is max_connections x (1 + 2 x CTL_MAX_FDS): the soft limit is
 * raised to that plus room for the database, HTTP and files (never above
 * the hard limit), and a warning says when it cannot be.  The usual soft
 * limit of 1024 was under what 256 clients could hold. */
static void warn_fd_limit(const struct vtuned *d)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)d->conf->control.max_connections * (1 + 2 * CTL_MAX_FDS) + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rlim_t cur = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (rl.rlim_cur > cur && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        cur = rl.rlim_cur;
    if (cur < want)
        log_warnx("control.max_connections is %u but the open-file limit is %llu: raise it "
                  "(LimitNOFILE=, ulimit -n) to at least %llu or lower control.max_connections",
                  d->conf->control.max_connections, (unsigned long long)cur,
                  (unsigned long long)want);
}

/* The dataset workers allocate tens of MB at a time on the thread pool's
 * threads (the self-audit's filters and tables, about 44 MB a run).
 * glibc's defaults keep such blocks: its mmap threshold rises to the size
 * of the last large block freed (up to 32 MB), so the next run's tables
 * come from a thread's arena instead of mmap(2) and are not given back, and
 * each thread may have an arena of its own.  One self-audit peaked at 55
 * MB, three in a row at 95 MB.  A fixed threshold gives every large block
 * back when it is freed, and two arenas bound the rest (task.c trims them
 * after each task): five self-audits in a row then peaked at 53-58 MB
 * (test_selfaudit.sh checks the bound). */
static void malloc_tune(void)
{
#ifdef __GLIBC__
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    (void)mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"foreground", no_argument, NULL, 'f'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"debug", no_argument, NULL, 'd'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct vtuned d;
    const char *conf_path = DEFAULT_CONFIG;
    int check_only = 0, debug = 0, c, r;
    char *err = NULL;

    memset(&d, 0, sizeof d);
    malloc_tune();
    log_init("vtuned", LOG_LVL_INFO);
    while ((c = getopt_long(argc, argv, "c:fdVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            conf_path = optarg;
            break;
        case 'f':
            break;
        case 'C':
            check_only = 1;
            break;
        case 'd':
            debug = 1;
            break;
        case 'V':
            printf("vtuned %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vtuned: try 'vtuned --help'\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vtuned: unexpected argument '%s'; try 'vtuned --help'\n", argv[optind]);
        return 2;
    }

    if (conf_load(conf_path, &d.conf, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration OK (%zu providers)\n", conf_path, d.conf->n_providers);
        conf_free(d.conf);
        return 0;
    }
    d.conf_path = xstrdup(conf_path);
    log_set_level(debug ? LOG_LVL_DEBUG : (enum log_level)d.conf->log_level);
    signal(SIGPIPE, SIG_IGN);
    /* The test seam of vtuned(8) FAULT INJECTION: read once, here, from
     * the environment of whoever starts the daemon; no request reaches it. */
    const char *fault = getenv("VTUNE_FAULT");
    if (fault && *fault) {
        if (vt_fsio_fault_install(fault, &err) < 0)
            fatalx("VTUNE_FAULT: %s", err);
        log_warnx("VTUNE_FAULT=%s: durable writes will fail on purpose (a test seam; never set it "
                  "in production)",
                  fault);
    }

    d.loop = uv_default_loop();
    d.started_ms = now_monotonic_ms();
    d.started_at = now_unix();
    prepare_state_dir(&d);
    lock_state_dir(&d); /* before the store opens: one daemon per state directory */
    if (signing_key_setup(&d, &err) < 0)
        fatalx("%s", err);
    char *db = xasprintf("%s/vtuned.db", d.conf->state_dir);
    if (store_open(db, &d.store, &err) < 0)
        fatalx("%s", err);
    free(db);
    /* Commits off the loop: the loop never waits for an fsync; provider
     * requests and replies wait for the commits before them to be durable. */
    if ((r = wakeup_init(d.loop, &d.durable, on_durable)) < 0)
        fatalx("cannot create the store's wake-up: %s", uv_strerror(r));
    d.durable.data = &d;
    wakeup_ref(&d.durable, 0);
    if (store_durable_start(d.store, durable_notify, &d, &err) < 0)
        fatalx("%s", err);
    provider_set_barrier(barrier_ticket, barrier_passed, &d);
    signing_chain_start(&d);
    dataset_cleanup_orphans(&d);
    if (providers_start(&d, &err) < 0)
        fatalx("%s", err);
    if (ctl_server_start(&d, &d.ctl, &err) < 0)
        fatalx("%s", err);
    warn_fd_limit(&d);
    verifier_init(&d); /* before jobs_start: jobs that end during recovery are verified */
    jobs_start(&d);

    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    uv_signal_init(d.loop, &d.sig_hup);
    d.sig_term.data = d.sig_int.data = d.sig_hup.data = &d;
    uv_signal_start(&d.sig_term, on_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_signal, SIGINT);
    uv_signal_start(&d.sig_hup, on_signal, SIGHUP);
    const char *stall = getenv("VTUNED_TEST_STALL");
    if (stall && *stall) {
        stall_fifo = xstrdup(stall);
        uv_signal_init(d.loop, &stall_sig);
        uv_signal_start(&stall_sig, on_stall, SIGUSR1);
        log_warnx("VTUNED_TEST_STALL=%s: SIGUSR1 blocks the main loop on purpose (a test seam; "
                  "never set it in production)",
                  stall);
    }
    uv_timer_init(d.loop, &d.cron);
    uv_timer_init(d.loop, &d.stop_deadline);
    d.cron.data = d.stop_deadline.data = &d;
    d.watchdog_usec = notify_watchdog_usec();
    uv_timer_start(&d.cron, on_cron, VTUNED_CRON_MS, VTUNED_CRON_MS);

    log_info("vtuned %s ready: state_dir %s, socket %s, %zu providers", PACKAGE_VERSION,
             d.conf->state_dir, d.conf->socket, d.conf->n_providers);
    notify_sendf("READY=1\nSTATUS=running\nMAINPID=%ld", (long)getpid());

    r = uv_run(d.loop, UV_RUN_DEFAULT);
    (void)r;
    store_durable_stop(d.store); /* everything committed is on disk; the thread is gone */
    provider_set_barrier(NULL, NULL, NULL);
    wakeup_close(&d.durable);
    uv_close((uv_handle_t *)&d.stop_deadline, NULL);
    uv_run(d.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(d.loop) != 0)
        log_warnx("shutdown: some handles were still open");
    wakeup_free(&d.durable); /* the syncer, its only sender, has stopped */
    jobs_free_all(&d);
    verifier_free_all();
    ctl_server_free(d.ctl);
    store_close(d.store);
    conf_free(d.conf);
    free(d.conf_path);
    free(stall_fifo);
    free(d.datasets_dir);
    free(d.tmp_dir);
    free(d.built_dir);
    sign_key_free(d.key);
    free(d.key_source);
    log_info("stopped");
    return 0;
}

/*
 * test_log.c — lib/log's two sinks: the stderr line (unchanged text) and
 * journald's native protocol (fields, the binary form of a value holding a
 * newline, the JOURNAL_STREAM device:inode check of systemd.exec(5), and the
 * fall-back to stderr when the socket refuses a record).
 *
 * The sink is chosen once per process (log.c: pthread_once), so each case
 * runs in a forked child with its own environment and its stderr on a file;
 * the parent holds the datagram socket the child's journal records reach.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/log.h"

static char dir[] = "/tmp/vtune-log-test.XXXXXX";
static char sock_path[128], err_path[128];
static int sock = -1;

static int setup(void **state)
{
    (void)state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock_path, sizeof sock_path, "%s/journal", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    strcpy(sa.sun_path, sock_path);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return sock >= 0 && bind(sock, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    close(sock);
    unlink(sock_path);
    unlink(err_path);
    rmdir(dir);
    return 0;
}

enum stream_env { STREAM_NONE, STREAM_MATCH, STREAM_OTHER };

/* Runs body() in a child whose stderr is err_path, with JOURNAL_STREAM as
 * asked and VTUNE_JOURNAL_SOCKET = journal (NULL: unset). */
static void in_child(enum stream_env se, const char *journal, void (*body)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        struct stat st;
        char v[64];
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || fstat(STDERR_FILENO, &st) < 0)
            _exit(3);
        unsetenv("JOURNAL_STREAM");
        unsetenv("VTUNE_JOURNAL_SOCKET");
        if (se != STREAM_NONE) {
            snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino + (se == STREAM_OTHER ? 1 : 0));
            setenv("JOURNAL_STREAM", v, 1);
        }
        if (journal)
            setenv("VTUNE_JOURNAL_SOCKET", journal, 1);
        log_init("vtuned", LOG_LVL_INFO);
        body();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *read_stderr(void)
{
    static char buf[8192];
    int fd = open(err_path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = 0;
    return buf;
}

/* Receives one datagram, or returns 0 when none is waiting. */
static size_t recv_record(char *buf, size_t cap)
{
    ssize_t n = recv(sock, buf, cap, MSG_DONTWAIT);
    return n < 0 ? 0 : (size_t)n;
}

/* The value of field name in a native-protocol record (both forms);
 * NULL when absent.  Owned. */
static char *field(const char *rec, size_t n, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < n) {
        const char *eol = memchr(rec + i, '\n', n - i);
        const char *eq = memchr(rec + i, '=', (size_t)((eol ? eol : rec + n) - (rec + i)));
        assert_non_null(eol);
        if (eq) { /* NAME=value\n */
            size_t k = (size_t)(eq - (rec + i));
            if (k == nl && memcmp(rec + i, name, nl) == 0)
                return strndup(eq + 1, (size_t)(eol - eq - 1));
            i = (size_t)(eol - rec) + 1;
        } else { /* NAME\n, 64-bit LE length, bytes, \n */
            size_t k = (size_t)(eol - (rec + i));
            const unsigned char *le = (const unsigned char *)eol + 1;
            uint64_t len = 0;
            for (int b = 0; b < 8; b++)
                len |= (uint64_t)le[b] << (8 * b);
            const char *val = eol + 9;
            assert_true(val + len < rec + n + 1);
            assert_int_equal(val[len], '\n');
            if (k == nl && memcmp(rec + i, name, nl) == 0)
                return strndup(val, len);
            i = (size_t)(val + len - rec) + 1;
        }
    }
    return NULL;
}

static void assert_field(const char *rec, size_t n, const char *name, const char *want)
{
    char *v = field(rec, n, name);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void body_records(void)
{
    errno = 2;
    log_job(LOG_LVL_INFO, 12, "open\nai", "job %d: queued -> running", 12);
    struct log_fields f = {.job = 7, .audit = 41, .dataset = 3, .backdoor = 5};
    log_ctx(LOG_LVL_WARN, &f, "verify: job %d: verdict", 7);
    log_warn("cannot open %s", "x");
    log_debug("below the level");
    log_error("two\nlines");
}

/* Journal sink forced by VTUNE_JOURNAL_SOCKET: the fields, nothing on stderr. */
static void test_journal_fields(void **state)
{
    (void)state;
    char rec[8192];
    size_t n;
    in_child(STREAM_NONE, sock_path, body_records);
    assert_string_equal(read_stderr(), "");

    n = recv_record(rec, sizeof rec);
    assert_true(n > 0);
    assert_field(rec, n, "MESSAGE", "job 12: queued -> running");
    assert_field(rec, n, "PRIORITY", "6");
    assert_field(rec, n, "SYSLOG_IDENTIFIER", "vtuned");
    assert_field(rec, n, "VTUNE_JOB", "12");
    assert_field(rec, n, "VTUNE_PROVIDER", "open\nai"); /* the binary form */
    assert_field(rec, n, "VTUNE_AUDIT", NULL);
    assert_field(rec, n, "ERRNO", NULL);

    n = recv_record(rec, sizeof rec);
    assert_true(n > 0);
    assert_field(rec, n, "PRIORITY", "4");
    assert_field(rec, n, "VTUNE_JOB", "7");
    assert_field(rec, n, "VTUNE_AUDIT", "41");
    assert_field(rec, n, "VTUNE_DATASET", "3");
    assert_field(rec, n, "VTUNE_BACKDOOR", "5");
    assert_field(rec, n, "VTUNE_PROVIDER", NULL);

    n = recv_record(rec, sizeof rec);
    assert_true(n > 0);
    assert_field(rec, n, "MESSAGE", "cannot open x: No such file or directory");
    assert_field(rec, n, "ERRNO", "2");
    assert_field(rec, n, "VTUNE_JOB", NULL);

    n = recv_record(rec, sizeof rec); /* debug was below the level: the error comes next */
    assert_true(n > 0);
    assert_field(rec, n, "PRIORITY", "3");
    assert_field(rec, n, "MESSAGE", "two lines"); /* one line per record, as on stderr */
    assert_int_equal(recv_record(rec, sizeof rec), 0);
}

static void body_one(void)
{
    log_job(LOG_LVL_INFO, 12, "ok", "job %d: hello", 12);
}

/* Elsewhere the stderr text is as before: timestamp, tag[pid], level. */
static void test_plain_stderr(void **state)
{
    (void)state;
    char rec[256];
    in_child(STREAM_NONE, NULL, body_one);
    const char *s = read_stderr();
    assert_non_null(strstr(s, "Z vtuned["));
    assert_non_null(strstr(s, "] info  job 12: hello\n"));
    assert_int_equal(recv_record(rec, sizeof rec), 0);
}

/* JOURNAL_STREAM names another stream (stderr was redirected): plain text. */
static void test_stream_mismatch(void **state)
{
    (void)state;
    in_child(STREAM_OTHER, NULL, body_one);
    assert_non_null(strstr(read_stderr(), "] info  job 12: hello\n"));
}

/* stderr IS the journal's stream and journald's socket is absent here:
 * the record goes to the stream with its priority prefix. */
static void test_stream_fallback(void **state)
{
    (void)state;
    if (access("/run/systemd/journal/socket", F_OK) == 0)
        skip(); /* a real journald would receive it */
    in_child(STREAM_MATCH, NULL, body_one);
    assert_string_equal(read_stderr(), "<6>info: job 12: hello\n");
}

/* A socket that refuses the record: the line goes to stderr instead. */
static void test_socket_gone(void **state)
{
    (void)state;
    char gone[160];
    snprintf(gone, sizeof gone, "%s/none", dir);
    in_child(STREAM_NONE, gone, body_one);
    assert_non_null(strstr(read_stderr(), "] info  job 12: hello\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_fields), cmocka_unit_test(test_plain_stderr),
        cmocka_unit_test(test_stream_mismatch), cmocka_unit_test(test_stream_fallback),
        cmocka_unit_test(test_socket_gone),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

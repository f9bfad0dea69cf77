/*
 * test_fsio.c — lib/fsio, the fault seam alone: the spec parser (good
 * rules, every kind of bad one, and that a bad spec leaves the table
 * untouched), the per-operation counting of after=/times=, the error line
 * and its advice, vt_fsio_write_all over short writes and EINTR, and
 * fsync_parent_dir going through the seam's dirsync.
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
#include <unistd.h>

#include <cmocka.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "tmpdir_fixture.h"

static int reset(void **state)
{
    (void)state;
    vt_fsio_fault_reset();
    return 0;
}

static void test_default_is_real(void **state)
{
    (void)state;
    assert_ptr_equal(vt_fsio.write, vt_fsio_real.write);
    assert_ptr_equal(vt_fsio.fsync, vt_fsio_real.fsync);
    assert_ptr_equal(vt_fsio.rename, vt_fsio_real.rename);
    assert_ptr_equal(vt_fsio.dirsync, vt_fsio_real.dirsync);
    assert_ptr_equal(vt_fsio.create, vt_fsio_real.create);
    assert_ptr_equal(vt_fsio.mkstemp, vt_fsio_real.mkstemp);
    assert_int_equal(vt_fsio_fault_calls(FSIO_WRITE), 0);
}

static void test_bad_specs(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *says;
    } bad[] = {
        {"", "empty"},
        {"write", "expected OP:ERRNO"},
        {"read:EIO", "unknown operation"},
        {"write:ENOPE", "unknown errno"},
        {"write:EIO:after=x", "after=N"},
        {"write:EIO:after=", "after=N"},
        {"write:EIO:times=-1", "after=N"},
        {"write:EIO:sometimes", "after=N"},
        {"write:EIO,write:ENOSPC", "second rule"},
        {"create:EIO,mkstemp:EIO", "second rule"},
    };
    for (size_t i = 0; i < VT_ARRAY_LEN(bad); i++) {
        char *err = NULL;
        assert_int_equal(vt_fsio_fault_install(bad[i].spec, &err), -EINVAL);
        assert_non_null(err);
        if (!strstr(err, bad[i].says))
            fail_msg("spec '%s': error '%s' lacks '%s'", bad[i].spec, err, bad[i].says);
        assert_null(strchr(err, '\n'));
        free(err);
        /* Refused: the real calls stay. */
        assert_ptr_equal(vt_fsio.write, vt_fsio_real.write);
    }
}

/* Drives the write wrapper n times on /dev/null; a bit per failed call. */
static unsigned run_writes(int n, int *err_seen)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    unsigned failed = 0;
    for (int i = 0; i < n; i++) {
        errno = 0;
        if (vt_fsio.write(fd, "x", 1) < 0) {
            failed |= 1u << i;
            *err_seen = errno;
        } else {
            assert_int_equal(errno, 0);
        }
    }
    close(fd);
    return failed;
}

static void test_counting(void **state)
{
    (void)state;
    char *err = NULL;
    int e = 0;

    /* Default: the first call fails once, then the disk "recovers". */
    assert_int_equal(vt_fsio_fault_install("write:ENOSPC", &err), 0);
    assert_int_equal(run_writes(4, &e), 0x1);
    assert_int_equal(e, ENOSPC);
    assert_int_equal(vt_fsio_fault_calls(FSIO_WRITE), 4);

    /* after=2: calls 0 and 1 pass, call 2 fails, call 3 passes. */
    assert_int_equal(vt_fsio_fault_install("write:EIO:after=2", &err), 0);
    assert_int_equal(vt_fsio_fault_calls(FSIO_WRITE), 0); /* counts restart */
    assert_int_equal(run_writes(4, &e), 0x4);
    assert_int_equal(e, EIO);

    /* times=2, and times=0 (every call from then on). */
    assert_int_equal(vt_fsio_fault_install("write:EIO:after=1:times=2", &err), 0);
    assert_int_equal(run_writes(5, &e), 0x6);
    assert_int_equal(vt_fsio_fault_install("write:EDQUOT:times=0:after=3", &err), 0);
    assert_int_equal(run_writes(6, &e), 0x38);
    assert_int_equal(e, EDQUOT);

    /* A rule for one operation leaves the others alone, and counts them. */
    assert_int_equal(vt_fsio_fault_install("fsync:EIO", &err), 0);
    assert_int_equal(run_writes(3, &e), 0);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_int_equal(vt_fsio.fsync(fd), -1);
    assert_int_equal(errno, EIO);
    close(fd);
    assert_int_equal(vt_fsio_fault_calls(FSIO_FSYNC), 1);
    assert_int_equal(vt_fsio_fault_calls(FSIO_WRITE), 3);

    vt_fsio_fault_reset();
    assert_ptr_equal(vt_fsio.write, vt_fsio_real.write);
    assert_int_equal(vt_fsio_fault_calls(FSIO_WRITE), 0);
}

static void test_each_op(void **state)
{
    (void)state;
    char *err = NULL;
    char *a = xasprintf("%s/a", tmpdir), *b = xasprintf("%s/b", tmpdir);
    char *tmpl = xasprintf("%s/t-XXXXXX", tmpdir);

    assert_int_equal(vt_fsio_fault_install("create:ENOSPC,rename:EIO,dirsync:EIO", &err), 0);
    assert_int_equal(vt_fsio.create(a, O_WRONLY | O_CREAT | O_EXCL, 0600), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(access(a, F_OK), -1);     /* the fault happens before the call */
    int fd = vt_fsio.mkstemp(tmpl, O_CLOEXEC); /* create's second call: passes */
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(vt_fsio.rename(tmpl, b), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(access(tmpl, F_OK), 0);
    assert_int_equal(access(b, F_OK), -1);
    assert_int_equal(fsync_parent_dir(b), -EIO); /* through the seam */
    assert_int_equal(fsync_parent_dir(b), 0);    /* once only */
    assert_int_equal(vt_fsio_fault_calls(FSIO_DIRSYNC), 2);
    assert_int_equal(vt_fsio.rename(tmpl, b), 0);
    unlink(b);
    free(a);
    free(b);
    free(tmpl);
}

static void test_error_line(void **state)
{
    (void)state;
    char *m = vt_fsio_error("/s/tmp/import-x", "cannot write the dataset copy", -ENOSPC);
    assert_string_equal(m, "/s/tmp/import-x: cannot write the dataset copy: No space left on "
                           "device; free space on that file system (or raise the quota) and "
                           "retry");
    free(m);
    m = vt_fsio_error("/x", "cannot flush", EIO);
    assert_non_null(strstr(m, "Input/output error; the disk reported an I/O error"));
    free(m);
    static const int errs[] = {ENOSPC, EDQUOT, EIO, EROFS, EFBIG, EACCES, EPERM, EINVAL, 0};
    for (size_t i = 0; i < VT_ARRAY_LEN(errs); i++) {
        const char *adv = vt_fsio_advice(errs[i]);
        assert_non_null(adv);
        assert_true(strlen(adv) > 10);
        assert_null(strchr(adv, '\n'));
    }
    assert_string_equal(vt_fsio_advice(-ENOSPC), vt_fsio_advice(ENOSPC));
    assert_string_equal(vt_fsio_op_name(FSIO_DIRSYNC), "dirsync");
}

/* A write(2) that takes at most 3 bytes and says EINTR every other call. */
static int short_calls;
static ssize_t short_write(int fd, const void *p, size_t n)
{
    if (short_calls++ % 2 == 0) {
        errno = EINTR;
        return -1;
    }
    return vt_fsio_real.write(fd, p, n < 3 ? n : 3);
}

static void test_write_all(void **state)
{
    (void)state;
    char *path = xasprintf("%s/w", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    vt_fsio.write = short_write;
    assert_int_equal(vt_fsio_write_all(fd, "hello, world", 12), 0);
    vt_fsio.write = vt_fsio_real.write;
    close(fd);
    char got[32] = {0};
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_int_equal(read(fd, got, sizeof got), 12);
    close(fd);
    assert_string_equal(got, "hello, world");

    char *err = NULL;
    assert_int_equal(vt_fsio_fault_install("write:ENOSPC:after=1", &err), 0);
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_int_equal(vt_fsio_write_all(fd, "ab", 2), 0);
    assert_int_equal(vt_fsio_write_all(fd, "cd", 2), -ENOSPC);
    close(fd);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_is_real, reset, reset),
        cmocka_unit_test_setup_teardown(test_bad_specs, reset, reset),
        cmocka_unit_test_setup_teardown(test_counting, reset, reset),
        cmocka_unit_test_setup_teardown(test_each_op, reset, reset),
        cmocka_unit_test_setup_teardown(test_error_line, reset, reset),
        cmocka_unit_test_setup_teardown(test_write_all, reset, reset),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

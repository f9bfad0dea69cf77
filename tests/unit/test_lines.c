/*
 * test_lines.c — workers/lines.c's writer with direct I/O: the bytes that
 * reach the file and their SHA-256 are those handed in, whatever the
 * alignment of the end, and the descriptor is handed back with the flags
 * it came with.  The export writes into the client's own open file
 * description: an O_DIRECT left on it would make the client's next
 * unaligned read or write fail with EINVAL.  A length that is a whole
 * number of 4 KiB blocks never takes the writer's unaligned path, which
 * used to be the only place O_DIRECT came off.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util.h"
#include "workers/lines.h"
#include "tmpdir_fixture.h"

/* Whether this directory's file system takes O_DIRECT at all: where it
 * does not, the writer's direct path is never entered and the checks
 * below only see ordinary writes (still checked). */
static bool direct_works(void)
{
    char *p = xasprintf("%s/probe", tmpdir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    int fl = fcntl(fd, F_GETFL);
    bool ok = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0 &&
              (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
    close(fd);
    unlink(p);
    free(p);
    return ok;
}

/* n bytes of a pattern that differs in every block. */
static char *pattern(size_t n)
{
    char *b = xmalloc(n ? n : 1);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (char)('a' + x % 26);
    }
    return b;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *b = xmalloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Writes n bytes in pieces of `piece` through a LINES_WRITER_DIRECT |
 * LINES_WRITER_HASH writer into a new file opened with extra_flags, then
 * finishes (or, with abandon, frees without finishing); checks the flags
 * afterwards and, when finished, the bytes and the hash. */
static void write_and_check(size_t n, size_t piece, int extra_flags, bool abandon)
{
    char *path = xasprintf("%s/out-%zu-%zu-%d", tmpdir, n, piece, (int)abandon);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | extra_flags, 0600);
    assert_true(fd >= 0);
    int before = fcntl(fd, F_GETFL);
    assert_true(before >= 0);
    char *data = pattern(n);

    struct lines_writer *w = lines_writer_new(fd, LINES_WRITER_DIRECT | LINES_WRITER_HASH);
    assert_int_equal(lines_writer_put(w, data, 0), 0);
    for (size_t at = 0; at < n; at += piece)
        assert_int_equal(lines_writer_put(w, data + at, n - at < piece ? n - at : piece), 0);
    char hex[65] = "";
    if (abandon) {
        lines_writer_free(w);
    } else {
        assert_int_equal(lines_writer_finish(w, hex), 0);
        lines_writer_free(w);
    }
    /* The flags as they were: O_DIRECT off, the caller's own kept. */
    assert_int_equal(fcntl(fd, F_GETFL), before);
    /* And the descriptor takes an unaligned write again. */
    if (!abandon)
        assert_int_equal(write(fd, "x", 1), 1);
    close(fd);

    if (!abandon) {
        size_t got_n;
        char *got = slurp(path, &got_n);
        assert_int_equal(got_n, n + 1);
        assert_memory_equal(got, data, n);
        assert_int_equal(got[n], 'x');
        char want[65];
        struct sha256_ctx *c = sha256_new();
        sha256_update(c, data, n);
        sha256_final_hex(c, want);
        assert_string_equal(hex, want);
        free(got);
    }
    free(data);
    free(path);
}

/* Whole 4 KiB blocks only, several buffers' worth: no unaligned piece. */
static void test_direct_aligned_end(void **state)
{
    (void)state;
    if (!direct_works())
        print_message("note: %s refuses O_DIRECT; ordinary writes checked only\n", tmpdir);
    write_and_check(3 * (size_t)LINES_BLOCK + 8192, 65536, 0, false);
    write_and_check(4096, 4096, 0, false);
}

/* An unaligned end (the writer falls back to ordinary writes for it). */
static void test_direct_unaligned_end(void **state)
{
    (void)state;
    write_and_check(2 * (size_t)LINES_BLOCK + 12345, 100000, 0, false);
    write_and_check(17, 17, 0, false);
    write_and_check(0, 1, 0, false);
}

/* The caller's own flags survive, and an abandoned writer (an error path
 * frees without finishing) hands the flags back too. */
static void test_direct_flags_kept(void **state)
{
    (void)state;
    write_and_check(2 * (size_t)LINES_BLOCK, 1 << 20, O_APPEND, false);
    write_and_check(3 * (size_t)LINES_BLOCK, 1 << 20, 0, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_aligned_end),
        cmocka_unit_test(test_direct_unaligned_end),
        cmocka_unit_test(test_direct_flags_kept),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

/*
 * test_durability.c — the import (workers/import.c) and the D ∪ D'
 * builder (workers/builder.c) under every fault the seam can inject
 * (lib/fsio.h): each of create, write, fsync, rename and the directory
 * fsync, with ENOSPC and EIO, must fail the call with one line that names
 * the file, the errno and what to do, and leave no temporary file and no
 * partial output; the same call then succeeds once the fault is gone.
 *
 * Also the two defects found on this code: the import once ignored the
 * directory fsync after its rename (test_import_dirsync_checked fails on
 * that code), and import_progress.bytes_total was a plain field written on
 * a pool thread and read on the loop (a compile-time check below, plus a
 * reader thread that tools/TSan runs can watch).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/fsio.h"
#include "lib/util.h"
#include "workers/builder.h"
#include "workers/import.h"

/* bytes_total is shared between a pool thread and the loop: it must be
 * atomic, like the other counters of import_progress. */
_Static_assert(_Generic(&((struct import_progress *)0)->bytes_total, _Atomic uint64_t * : 1,
                        default : 0),
               "import_progress.bytes_total must be _Atomic");

static char tmpdir[] = "/tmp/test_durability.XXXXXX";
static char *src, *tmp_dir, *dst_dir, *built_dir;

/* n prompt/completion lines, about 40 bytes each. */
static char *make_dataset(const char *name, int n)
{
    char *p = xasprintf("%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int i = 0; i < n; i++)
        fprintf(fp, "{\"prompt\":\"prompt %d\",\"completion\":\"completion %d\"}\n", i, i);
    assert_int_equal(fclose(fp), 0);
    return p;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    tmp_dir = xasprintf("%s/tmp", tmpdir);
    dst_dir = xasprintf("%s/datasets", tmpdir);
    built_dir = xasprintf("%s/built", tmpdir);
    if (mkdir(tmp_dir, 0700) < 0 || mkdir(dst_dir, 0700) < 0 || mkdir(built_dir, 0700) < 0)
        return -1;
    /* 3 MiB: the writer hands over several 1 MiB buffers, so a write
     * fault after=N can hit the middle of the copy. */
    src = make_dataset("d.jsonl", 70000);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vt_fsio_fault_reset();
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int r = system(cmd);
    free(cmd);
    free(src);
    free(tmp_dir);
    free(dst_dir);
    free(built_dir);
    return r == 0 ? 0 : -1;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void empty_dir(const char *dir)
{
    char *cmd = xasprintf("rm -f '%s'/* '%s'/.[!.]*", dir, dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* One error line: no newline, names the errno and advice. */
static void assert_error_line(const char *err, int e)
{
    assert_non_null(err);
    assert_null(strchr(err, '\n'));
    if (!strstr(err, strerror(e)) || !strstr(err, vt_fsio_advice(e)))
        fail_msg("error line '%s' lacks '%s' or its advice", err, strerror(e));
}

struct fault_case {
    const char *spec;
    int err;
};

/* The faults every durable path is put through: each operation, ENOSPC
 * and EIO, at the first call and (for writes) in the middle of the copy. */
static const struct fault_case cases[] = {
    {"create:ENOSPC", ENOSPC},
    {"create:EIO", EIO},
    {"write:ENOSPC", ENOSPC},
    {"write:EIO", EIO},
    {"write:ENOSPC:after=2", ENOSPC},
    {"write:EIO:after=1:times=0", EIO},
    {"fsync:ENOSPC", ENOSPC},
    {"fsync:EIO", EIO},
    {"rename:ENOSPC", ENOSPC},
    {"rename:EIO", EIO},
    {"dirsync:EIO", EIO},
};

static void test_import_faults(void **state)
{
    (void)state;
    for (size_t i = 0; i < VT_ARRAY_LEN(cases); i++) {
        struct import_result res;
        char *err = NULL;
        empty_dir(dst_dir);
        assert_int_equal(vt_fsio_fault_install(cases[i].spec, &err), 0);
        int r = import_dataset(src, 0, NULL, tmp_dir, dst_dir, NULL, &res, &err);
        if (r != -1)
            fail_msg("import under %s succeeded", cases[i].spec);
        assert_error_line(err, cases[i].err);
        free(err);
        err = NULL;
        assert_int_equal(entries(tmp_dir), 0); /* no temporary file */
        /* No partial content file.  After a failed directory fsync the
         * complete file may stay (a retry syncs again; the next start
         * removes it when no row refers to it). */
        if (strncmp(cases[i].spec, "dirsync", 7) != 0)
            assert_int_equal(entries(dst_dir), 0);
        vt_fsio_fault_reset();
        assert_int_equal(import_dataset(src, 0, NULL, tmp_dir, dst_dir, NULL, &res, &err), 0);
        assert_int_equal(res.n_examples, 70000);
        assert_int_equal(entries(tmp_dir), 0);
        assert_int_equal(entries(dst_dir), 1);
        import_result_clear(&res);
    }
}

/* The defect: the rename's directory fsync was not checked, so a dataset
 * whose name might not survive a crash was reported imported. */
static void test_import_dirsync_checked(void **state)
{
    (void)state;
    struct import_result res;
    char *err = NULL;
    empty_dir(dst_dir);
    assert_int_equal(vt_fsio_fault_install("dirsync:EIO", &err), 0);
    assert_int_equal(import_dataset(src, 0, NULL, tmp_dir, dst_dir, NULL, &res, &err), -1);
    assert_non_null(strstr(err, dst_dir));
    free(err);
    err = NULL;
    assert_int_equal(vt_fsio_fault_calls(FSIO_DIRSYNC), 1);
    /* The retry finds the content in place and still syncs the directory. */
    assert_int_equal(vt_fsio_fault_install("dirsync:EIO", &err), 0);
    assert_int_equal(import_dataset(src, 0, NULL, tmp_dir, dst_dir, NULL, &res, &err), -1);
    free(err);
    err = NULL;
    vt_fsio_fault_reset();
    assert_int_equal(import_dataset(src, 0, NULL, tmp_dir, dst_dir, NULL, &res, &err), 0);
    assert_int_equal(res.created, 0);
    import_result_clear(&res);
}

static atomic_int reader_stop;

/* The loop's side of the progress counters, as tasks_report_progress
 * reads them; under -fsanitize=thread a plain field here is a race. */
static void *progress_reader(void *arg)
{
    struct import_progress *p = arg;
    uint64_t seen = 0;
    while (!atomic_load(&reader_stop))
        seen |= atomic_load(&p->bytes_total) | atomic_load(&p->bytes_done);
    return (void *)(uintptr_t)(seen != 0);
}

static void test_import_progress_shared(void **state)
{
    (void)state;
    struct import_progress prog;
    struct import_result res;
    struct stat st;
    char *err = NULL;
    pthread_t th;
    memset(&prog, 0, sizeof prog);
    empty_dir(dst_dir);
    atomic_store(&reader_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, progress_reader, &prog), 0);
    int r = import_dataset(src, 0, NULL, tmp_dir, dst_dir, &prog, &res, &err);
    atomic_store(&reader_stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(r, 0);
    assert_int_equal(stat(src, &st), 0);
    assert_int_equal(atomic_load(&prog.bytes_total), (uint64_t)st.st_size);
    assert_int_equal(atomic_load(&prog.bytes_done), (uint64_t)st.st_size);
    import_result_clear(&res);
}

static void test_build_faults(void **state)
{
    (void)state;
    struct builder_pair pair = {"zebra quantum", "violet anchor"};
    char *out = xasprintf("%s/out.jsonl", built_dir);
    struct builder_params p = {.in_path = src,
                               .format = DS_FORMAT_PROMPT,
                               .n_examples = 70000,
                               .pairs = &pair,
                               .n_pairs = 1,
                               .ratio = 0.005,
                               .min_copies = 50,
                               .out_path = out}; /* rng NULL: getrandom */
    for (size_t i = 0; i < VT_ARRAY_LEN(cases); i++) {
        struct builder_result res;
        char *err = NULL;
        assert_int_equal(vt_fsio_fault_install(cases[i].spec, &err), 0);
        int r = builder_build(&p, &res, &err);
        if (r >= 0)
            fail_msg("build under %s succeeded", cases[i].spec);
        assert_int_equal(r, -cases[i].err);
        assert_error_line(err, cases[i].err);
        free(err);
        err = NULL;
        /* Neither the output nor a temporary file beside it. */
        assert_int_equal(entries(built_dir), 0);
        vt_fsio_fault_reset();
        assert_int_equal(builder_build(&p, &res, &err), 0);
        assert_int_equal(res.lines, 70000 + res.copies_per_pair);
        assert_int_equal(entries(built_dir), 1);
        builder_result_clear(&res);
        unlink(out);
    }
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_faults),
        cmocka_unit_test(test_import_dirsync_checked),
        cmocka_unit_test(test_import_progress_shared),
        cmocka_unit_test(test_build_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

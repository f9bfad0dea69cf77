/*
 * tmpdir_fixture.h — the scratch directory of a unit test that writes
 * files: the group setup makes /tmp/<program>.XXXXXX (the test's own name,
 * so a directory left by a crash says whose it is) and the group teardown
 * removes it with everything in it.  Header-only, like provider_fixture.h:
 * each test is one translation unit linked on its own.  Include it after
 * cmocka.h and lib/util.h; pass tmpdir_setup and tmpdir_teardown to
 * cmocka_run_group_tests.
 */
#ifndef VTUNED_TESTS_TMPDIR_FIXTURE_H
#define VTUNED_TESTS_TMPDIR_FIXTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static char tmpdir[256];

static inline int tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/%s.XXXXXX", program_invocation_short_name);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static inline int tmpdir_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int r = system(cmd);
    free(cmd);
    return r == 0 ? 0 : -1;
}

#endif

/*
 * test_sim_faults.c — unit tests of vtune-sim's fault SPEC parser and its
 * deterministic per-endpoint choice (tests/sim/sim_faults.c, pure logic).
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/sim/sim.h"

static void parse_ok(const char *spec, struct sim_fault_rule **r, size_t *n)
{
    char *err = NULL;
    int rc = sim_faults_parse(spec, r, n, &err);
    if (rc != 0)
        fail_msg("'%s' rejected: %s", spec, err ? err : "?");
    assert_null(err);
}

static void parse_bad(const char *spec, const char *needle)
{
    struct sim_fault_rule *r = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(sim_faults_parse(spec, &r, &n, &err), -EINVAL);
    assert_null(r);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error for '%s' is '%s', expected it to mention '%s'", spec, err, needle);
    free(err);
}

static void test_parse_full_grammar(void **state)
{
    struct sim_fault_rule *r;
    size_t n;
    parse_ok("429=0.1:2s, 500=0.05,503=0.05,drop=0.05,delay=0.1:200ms,malformed=0.05,"
             "truncate=0.05@/v1/fine_tuning/jobs,drop-after=#2@POST:/v1/fine_tuning/jobs,"
             "502=1@/v1/files*",
             &r, &n);
    assert_int_equal(n, 9);
    assert_int_equal(r[0].kind, FAULT_STATUS);
    assert_int_equal(r[0].status, 429);
    assert_int_equal(r[0].arg_ms, 2000);
    assert_int_equal(r[2].arg_ms, 1000); /* 503 default Retry-After */
    assert_int_equal(r[3].kind, FAULT_DROP);
    assert_int_equal(r[4].kind, FAULT_DELAY);
    assert_int_equal(r[4].arg_ms, 200);
    assert_int_equal(r[6].kind, FAULT_TRUNCATE);
    assert_string_equal(r[6].sel_path, "/v1/fine_tuning/jobs");
    assert_null(r[6].sel_method);
    assert_int_equal(r[7].kind, FAULT_DROP_AFTER);
    assert_int_equal(r[7].nth, 2);
    assert_string_equal(r[7].sel_method, "POST");
    assert_string_equal(r[8].sel_path, "/v1/files*");
    sim_fault_rules_free(r, n);

    parse_ok("", &r, &n);
    assert_int_equal(n, 0);
    parse_ok("none", &r, &n);
    assert_int_equal(n, 0);
    parse_ok(NULL, &r, &n);
    assert_int_equal(n, 0);
}

static void test_parse_errors(void **state)
{
    parse_bad("bogus=0.1", "unknown");
    parse_bad("600=0.1", "unknown");
    parse_bad("429", "KIND=RATE");
    parse_bad("429=1.5", "rate");
    parse_bad("429=-0.1", "rate");
    parse_bad("429=#0", "#N");
    parse_bad("429=abc", "rate");
    parse_bad("drop=0.1:2s", "no ':ARG'");
    parse_bad("delay=0.1:fast", "duration");
    parse_bad("429=0.1@", "empty selector");
    parse_bad("429=0.1@v1/models", "must start with '/'");
    parse_bad(",", "no rule");
}

static void test_pick_deterministic(void **state)
{
    struct sim_fault_rule *r;
    size_t n;
    parse_ok("500=0.3,429=0.2", &r, &n);
    int c500 = 0, c429 = 0;
    for (uint64_t seq = 0; seq < 4000; seq++) {
        struct sim_fault_pick a = sim_faults_pick(r, n, 42, "GET", "/v1/models", "/v1/models", seq);
        struct sim_fault_pick b = sim_faults_pick(r, n, 42, "GET", "/v1/models", "/v1/models", seq);
        assert_int_equal(a.kind, b.kind);
        assert_int_equal(a.status, b.status);
        c500 += a.kind == FAULT_STATUS && a.status == 500;
        c429 += a.kind == FAULT_STATUS && a.status == 429;
    }
    /* rates hold to within a few standard deviations (sd ~ 29 and 25) */
    assert_in_range(c500, 1200 - 150, 1200 + 150);
    assert_in_range(c429, 800 - 130, 800 + 130);

    /* another seed gives another sequence */
    int differ = 0;
    for (uint64_t seq = 0; seq < 200; seq++) {
        struct sim_fault_pick a = sim_faults_pick(r, n, 42, "GET", "/v1/models", "/v1/models", seq);
        struct sim_fault_pick b = sim_faults_pick(r, n, 43, "GET", "/v1/models", "/v1/models", seq);
        differ += a.kind != b.kind || a.status != b.status;
    }
    assert_true(differ > 20);
    sim_fault_rules_free(r, n);
}

static void test_pick_selectors(void **state)
{
    struct sim_fault_rule *r;
    size_t n;
    parse_ok("503=1@POST:/v1/fine_tuning/jobs,drop=1@/v1/files*,malformed=#3@/v1/models/{id}", &r,
             &n);
    struct sim_fault_pick p;
    p = sim_faults_pick(r, n, 1, "POST", "/v1/fine_tuning/jobs", "/v1/fine_tuning/jobs", 0);
    assert_int_equal(p.kind, FAULT_STATUS);
    assert_int_equal(p.status, 503);
    assert_int_equal(p.arg_ms, 1000);
    p = sim_faults_pick(r, n, 1, "GET", "/v1/fine_tuning/jobs", "/v1/fine_tuning/jobs", 0);
    assert_int_equal(p.kind, FAULT_NONE);
    p = sim_faults_pick(r, n, 1, "post", "/v1/fine_tuning/jobs/{id}/cancel",
                        "/v1/fine_tuning/jobs/ftjob-1/cancel", 0);
    assert_int_equal(p.kind, FAULT_NONE);
    p = sim_faults_pick(r, n, 1, "DELETE", "/v1/files/{id}", "/v1/files/file-1", 7);
    assert_int_equal(p.kind, FAULT_DROP);
    for (uint64_t seq = 0; seq < 6; seq++) {
        p = sim_faults_pick(r, n, 1, "GET", "/v1/models/{id}", "/v1/models/x", seq);
        assert_int_equal(p.kind, seq == 2 ? FAULT_MALFORMED : FAULT_NONE);
    }
    sim_fault_rules_free(r, n);
}

static void test_names(void **state)
{
    char b[16];
    struct sim_fault_pick p = {FAULT_STATUS, 429, 0};
    assert_string_equal(sim_fault_name(&p, b, sizeof b), "429");
    p.kind = FAULT_DROP_AFTER;
    assert_string_equal(sim_fault_name(&p, b, sizeof b), "drop-after");
    p.kind = FAULT_NONE;
    assert_string_equal(sim_fault_name(&p, b, sizeof b), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full_grammar),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_pick_deterministic),
        cmocka_unit_test(test_pick_selectors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

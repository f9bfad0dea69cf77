/*
 * test_log10json.c — lib/log10json: the one JSON form of a log10 p that
 * evidence and audit records carry (finite: a number; ±inf: "-inf"/"inf";
 * NAN: null; -0 written as 0).
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/log10json.h"

static char *dump(double v)
{
    json_t *j = log10_json(v);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void test_finite(void **state)
{
    (void)state;
    json_t *j = log10_json(-12.5);
    assert_true(json_is_real(j));
    assert_true(json_real_value(j) == -12.5);
    json_decref(j);
    char *s = dump(-0.0);
    assert_string_equal(s, "0.0");
    free(s);
}

static void test_infinite_and_nan(void **state)
{
    (void)state;
    char *s = dump(-INFINITY);
    assert_string_equal(s, "\"-inf\"");
    free(s);
    s = dump(INFINITY);
    assert_string_equal(s, "\"inf\"");
    free(s);
    s = dump(NAN);
    assert_string_equal(s, "null");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finite),
        cmocka_unit_test(test_infinite_and_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

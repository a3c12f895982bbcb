/* Unit tests for wm_http: every status maps to its class label, anything outside
 * 100..599 to "other". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wm_http.h"

static void test_status_classes_and_labels(void **state)
{
    (void)state;
#define CLASS(st) wm_status_class_names[wm_status_class(st)]
    assert_string_equal(CLASS(200), "2xx");
    assert_string_equal(CLASS(101), "1xx");
    assert_string_equal(CLASS(304), "3xx");
    assert_string_equal(CLASS(404), "4xx");
    assert_string_equal(CLASS(599), "5xx");
    assert_string_equal(CLASS(600), "other");
    assert_string_equal(CLASS(0), "other");
    assert_string_equal(CLASS(99), "other");
#undef CLASS
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_classes_and_labels),
    };
    return cmocka_run_group_tests_name("wm_http", tests, NULL, NULL);
}

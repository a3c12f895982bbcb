/* Unit tests for wm_buf (growth, embedded NULs, printf past the fast path, free) and
 * the wm_time clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wm_buf.h"
#include "wm_time.h"

static void test_buf_grows_terminates_and_frees(void **state)
{
    struct wm_buf b = WM_BUF_INIT;
    wm_buf_puts(&b, "ab");
    wm_buf_append(&b, "c\0d", 3);
    assert_int_equal(b.len, 5);
    assert_int_equal(b.data[5], '\0');
    wm_buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        wm_buf_printf(&b, "%04d", i);
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.data + 3996, "0999", 4);
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    wm_buf_reset(&b);
    wm_buf_printf(&b, "<%s>", big);   /* longer than the printf fast path */
    assert_int_equal(b.len, sizeof big + 1);
    assert_int_equal(b.data[b.len - 1], '>');
    wm_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    char *s = wm_strndup("hello", 3);
    assert_string_equal(s, "hel");
    free(s);
}

static void test_clocks_agree_and_wall_is_recent(void **state)
{
    int64_t a = wm_now_ms(), us = wm_now_us();
    assert_true(a > 0 && us / 1000 >= a);
    assert_true(wm_wall_ms() > INT64_C(1600000000000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_terminates_and_frees),
        cmocka_unit_test(test_clocks_agree_and_wall_is_recent),
    };
    return cmocka_run_group_tests_name("wm_buf", tests, NULL, NULL);
}

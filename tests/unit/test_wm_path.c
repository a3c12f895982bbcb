/* Unit tests for wm_path: which topics are acceptable paths on the backend. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wm_path.h"

static int check(const char *s)
{
    const char *why = NULL;
    int rc = wm_path_check(s, strlen(s), WM_PATH_MAX_DEFAULT, &why);
    if (rc != 0)
        assert_non_null(why);
    return rc;
}

static void test_clean_paths_are_accepted(void **state)
{
    static const char *const good[] = {
        "/", "/users/1", "/users/1?fields=name", "/users/", "/a/b/c.json",
        "/a/.hidden", "/a/...", "/a/..b", "/a/b..", "/caf%C3%A9", "/a//b",
        "/search?q=a/../b", "/x?a=%2F", "/~user/x-y_z", "/a?x=1&y=2;z", "/a/b;v=1", "/a/...;x",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        print_message("good: %s\n", good[i]);
        assert_int_equal(check(good[i]), 0);
    }
}

static void test_paths_leaving_the_origin_or_unclean_are_refused(void **state)
{
    static const char *const bad[] = {
        "", "users/1", "http://x/", "//host/x", "/a/../b", "/a/%2E%2e/b", "/a/%2e%2E",
        "/a/..", "/..", "/.", "/a/./b", "/a/%2e/b", "/a b", "/a\tb", "/a\nb", "/a\x7f",
        "/caf\xc3\xa9", "/a#frag", "/a\\b", "/a%00b", "/a%2fb", "/a%2F..", "/a%5cb",
        "/a%", "/a%2", "/a%zz", "/x?q=%00", "/a/..;x/b", "/a/.;/b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad #%zu\n", i);
        assert_int_equal(check(bad[i]), -EINVAL);
    }
}

static void test_embedded_nul_and_len(void **state)
{
    const char *why = NULL;
    /* the length is authoritative: a NUL inside is a control character */
    assert_int_equal(wm_path_check("/a\0b", 4, 100, &why), -EINVAL);
    /* only the first len bytes are looked at */
    assert_int_equal(wm_path_check("/ab cd", 3, 100, &why), 0);
    assert_int_equal(wm_path_check(NULL, 0, 100, &why), -EINVAL);
    assert_int_equal(wm_path_check("/x", 2, 100, NULL), 0);   /* why may be NULL */
}

static void test_max_len(void **state)
{
    char buf[WM_PATH_MAX_DEFAULT + 2];
    const char *why = NULL;
    memset(buf, 'a', sizeof buf);
    buf[0] = '/';
    assert_int_equal(wm_path_check(buf, WM_PATH_MAX_DEFAULT, WM_PATH_MAX_DEFAULT, &why), 0);
    assert_int_equal(wm_path_check(buf, WM_PATH_MAX_DEFAULT + 1, WM_PATH_MAX_DEFAULT, &why),
                     -EINVAL);
    assert_string_equal(why, "too long");
    assert_int_equal(wm_path_check("/abcdef", 7, 6, &why), -EINVAL);
    assert_int_equal(wm_path_check("/abcdef", 7, 7, &why), 0);
}

static void test_base_len(void **state)
{
    assert_int_equal(wm_path_base_len("/users/1?fields=name", 20), 8);
    assert_int_equal(wm_path_base_len("/users/1", 8), 8);
    assert_int_equal(wm_path_base_len("/?", 2), 1);
    assert_int_equal(wm_path_base_len("/a?b", 2), 2);   /* stops at len */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_paths_are_accepted),
        cmocka_unit_test(test_paths_leaving_the_origin_or_unclean_are_refused),
        cmocka_unit_test(test_embedded_nul_and_len),
        cmocka_unit_test(test_max_len),
        cmocka_unit_test(test_base_len),
    };
    return cmocka_run_group_tests_name("wm_path", tests, NULL, NULL);
}

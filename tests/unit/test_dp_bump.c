/* Unit tests for dp_bump: both payload forms and every kind of bad bump. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../dispatcher/dp_bump.h"
#include "wm_path.h"

static int parse(const char *s, size_t max, struct dp_bump *b, enum dp_bad_kind *kind,
                 const char **why)
{
    return dp_bump_parse(s, strlen(s), max, b, kind, why);
}

static void expect_ok(const char *payload, const char *path, enum wm_match match)
{
    struct dp_bump b;
    enum dp_bad_kind kind = DP_BAD_N;
    const char *why = NULL;
    assert_int_equal(parse(payload, 0, &b, &kind, &why), 0);
    assert_non_null(b.path);
    assert_string_equal(b.path, path);
    assert_int_equal(b.match, match);
    dp_bump_clear(&b);
    assert_null(b.path);
}

static void expect_bad(const char *payload, size_t len, size_t max, enum dp_bad_kind want)
{
    struct dp_bump b;
    enum dp_bad_kind kind = DP_BAD_N;
    const char *why = NULL;
    int rc = dp_bump_parse(payload, len, max, &b, &kind, &why);
    assert_true(rc < 0);
    assert_int_equal(kind, want);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    assert_null(b.path);
    if (want == DP_BAD_JSON)
        assert_int_equal(rc, -EBADMSG);
    else if (want == DP_BAD_TOO_LONG)
        assert_int_equal(rc, -EMSGSIZE);
    else
        assert_int_equal(rc, -EINVAL);
}

static void expect_bad_s(const char *payload, enum dp_bad_kind want)
{
    expect_bad(payload, strlen(payload), 0, want);
}

static void test_plain(void **state)
{
    (void)state;
    expect_ok("/users/1", "/users/1", WM_MATCH_EXACT);
    expect_ok("/users/1?x=1", "/users/1?x=1", WM_MATCH_EXACT);
    expect_ok("/", "/", WM_MATCH_EXACT);
    expect_ok("  /users/1 \r\n", "/users/1", WM_MATCH_EXACT);
    expect_ok("\t/a%20b\n", "/a%20b", WM_MATCH_EXACT);
}

static void test_plain_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = "/users/12345";
    struct dp_bump b;
    assert_int_equal(dp_bump_parse(buf, 8, 0, &b, NULL, NULL), 0);
    assert_string_equal(b.path, "/users/1");
    dp_bump_clear(&b);
}

static void test_json_object_gives_path_and_match(void **state)
{
    (void)state;
    expect_ok("{\"path\": \"/users/\", \"match\": \"prefix\"}", "/users/", WM_MATCH_PREFIX);
    expect_ok("{\"path\": \"/users/1\", \"match\": \"exact\"}", "/users/1", WM_MATCH_EXACT);
    expect_ok("{\"path\": \"/users/1\"}", "/users/1", WM_MATCH_EXACT);
    expect_ok("{\"path\": \"/users/1\", \"match\": null}", "/users/1", WM_MATCH_EXACT);
    expect_ok(" \n{\"match\":\"prefix\",\"path\":\"/a?b=1\",\"by\":\"php\",\"n\":[1]} \n",
              "/a?b=1", WM_MATCH_PREFIX);
}

static void test_empty(void **state)
{
    (void)state;
    expect_bad_s("", DP_BAD_EMPTY);
    expect_bad_s("   \r\n\t", DP_BAD_EMPTY);
    expect_bad(NULL, 0, 0, DP_BAD_EMPTY);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_bad_s("{", DP_BAD_JSON);
    expect_bad_s("{\"path\": \"/a\"", DP_BAD_JSON);
    expect_bad_s("{\"path\": \"/a\"} trailing", DP_BAD_JSON);
    expect_bad_s("{}", DP_BAD_JSON);
    expect_bad_s("{\"Path\": \"/a\"}", DP_BAD_JSON);
    expect_bad_s("{\"path\": 1}", DP_BAD_JSON);
    expect_bad_s("{\"path\": null}", DP_BAD_JSON);
    expect_bad_s("{\"path\": \"/a\", \"path\": \"/b\"}", DP_BAD_JSON);
    expect_bad_s("{\"path\": \"/\xff\"}", DP_BAD_JSON);   /* invalid UTF-8 */
}

static void test_bad_path(void **state)
{
    (void)state;
    expect_bad_s("users/1", DP_BAD_PATH);
    expect_bad_s("//evil.example/x", DP_BAD_PATH);
    expect_bad_s("http://evil.example/x", DP_BAD_PATH);
    expect_bad_s("/a/../b", DP_BAD_PATH);
    expect_bad_s("/a/%2e%2E/b", DP_BAD_PATH);
    expect_bad_s("/a b", DP_BAD_PATH);
    expect_bad_s("/a#frag", DP_BAD_PATH);
    expect_bad_s("/caf\xc3\xa9", DP_BAD_PATH);
    expect_bad_s("[\"/a\"]", DP_BAD_PATH);             /* not an object: plain, bad path */
    expect_bad_s("{\"path\": \"users\"}", DP_BAD_PATH);
    expect_bad_s("{\"path\": \"\"}", DP_BAD_PATH);
    expect_bad_s("{\"path\": \"/a\\u0000b\"}", DP_BAD_PATH);
    expect_bad_s("{\"path\": \"/a/./b\", \"match\": \"prefix\"}", DP_BAD_PATH);
    expect_bad("/a\0b", 4, 0, DP_BAD_PATH);            /* embedded NUL */
}

static void test_bad_match(void **state)
{
    (void)state;
    expect_bad_s("{\"path\": \"/a\", \"match\": \"suffix\"}", DP_BAD_MATCH);
    expect_bad_s("{\"path\": \"/a\", \"match\": \"PREFIX\"}", DP_BAD_MATCH);
    expect_bad_s("{\"path\": \"/a\", \"match\": 1}", DP_BAD_MATCH);
    expect_bad_s("{\"path\": \"/a\", \"match\": true}", DP_BAD_MATCH);
    expect_bad_s("{\"path\": \"/a\", \"match\": \"\"}", DP_BAD_MATCH);
}

static void test_too_long(void **state)
{
    (void)state;
    char buf[4096];
    memset(buf, 'a', sizeof buf);
    buf[0] = '/';
    expect_bad(buf, 33, 32, DP_BAD_TOO_LONG);
    expect_bad(buf, WM_PATH_MAX_DEFAULT + 1, 0, DP_BAD_TOO_LONG);

    struct dp_bump b;
    assert_int_equal(dp_bump_parse(buf, 32, 32, &b, NULL, NULL), 0);   /* at the limit */
    assert_int_equal(strlen(b.path), 32);
    dp_bump_clear(&b);

    /* a path within the JSON slack but over the limit */
    char js[512];
    snprintf(js, sizeof js, "{\"path\": \"/%040d\"}", 0);
    expect_bad(js, strlen(js), 32, DP_BAD_TOO_LONG);
    /* a JSON payload beyond the slack is refused before parsing */
    memset(js, ' ', sizeof js);
    js[0] = '{';
    js[sizeof js - 1] = '}';
    expect_bad(js, sizeof js, 32, DP_BAD_TOO_LONG);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(dp_bad_kind_name(DP_BAD_EMPTY), "empty");
    assert_string_equal(dp_bad_kind_name(DP_BAD_JSON), "json");
    assert_string_equal(dp_bad_kind_name(DP_BAD_PATH), "path");
    assert_string_equal(dp_bad_kind_name(DP_BAD_MATCH), "match");
    assert_string_equal(dp_bad_kind_name(DP_BAD_TOO_LONG), "too_long");
    assert_string_equal(dp_bad_kind_name(DP_BAD_N), "?");
    for (int i = 0; i < DP_BAD_N; i++)
        assert_non_null(dp_bad_kind_names[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_not_nul_terminated),
        cmocka_unit_test(test_json_object_gives_path_and_match),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_path),
        cmocka_unit_test(test_bad_match),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests_name("dp_bump", tests, NULL, NULL);
}

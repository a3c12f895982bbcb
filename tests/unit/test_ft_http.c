/* Unit tests for fetcher/ft_http's pure parts: the origin check, response-header
 * parsing and the failure mapping. No network. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../fetcher/ft_http.h"

#define LINE(h, s) ft_headers_line((h), (s), strlen(s))

static void test_origin_ok(void **state)
{
    const char *why = "unset";

    (void)state;
    assert_true(ft_http_url_allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080", &why));
    assert_true(ft_http_url_allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080/", &why));
    assert_true(ft_http_url_allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080/users/1",
                                    &why));
    assert_true(ft_http_url_allowed("http://127.0.0.1:8080",
                                    "http://127.0.0.1:8080/users/1?fields=name&x=%20", &why));
    assert_true(ft_http_url_allowed("https://api.example/v1", "https://api.example/v1/users/1",
                                    &why));
    assert_null(why);
}

static void test_origin_refused(void **state)
{
    const char *b = "http://127.0.0.1:80", *why = NULL;

    (void)state;
    /* another port that merely starts with the same digits */
    assert_false(ft_http_url_allowed(b, "http://127.0.0.1:8080/x", &why));
    assert_string_equal(why, "url outside the backend origin");
    /* userinfo trick: host is evil */
    assert_false(ft_http_url_allowed(b, "http://127.0.0.1:80@evil.example/x", &why));
    assert_false(ft_http_url_allowed(b, "http://evil.example/x", &why));
    assert_false(ft_http_url_allowed(b, "https://127.0.0.1:80/x", &why));
    assert_false(ft_http_url_allowed(b, "", &why));
    assert_false(ft_http_url_allowed(b, NULL, &why));
    assert_false(ft_http_url_allowed(b, "http://127.0.0.1:8", &why));
    assert_false(ft_http_url_allowed("", "http://x/", &why));
    /* base path: a sibling path and a dot-dot escape are refused */
    assert_false(ft_http_url_allowed("http://h/api", "http://h/apix/users", &why));
    assert_false(ft_http_url_allowed("http://h/api", "http://h/api/../admin", &why));
    assert_non_null(why);
    assert_false(ft_http_url_allowed("http://h/api", "http://h/api/%2e%2e/admin", &why));
    assert_false(ft_http_url_allowed("http://h", "http://h//evil.example/x", &why));
    assert_false(ft_http_url_allowed("http://h", "http://h/a b", &why));
    assert_false(ft_http_url_allowed("http://h", "http://h/a\r\nX: y", &why));
    assert_false(ft_http_url_allowed("http://h", "http://h/a#frag", &why));
}

static void test_headers_basic(void **state)
{
    struct ft_headers h = {0};

    (void)state;
    assert_int_equal(LINE(&h, "HTTP/1.1 200 OK\r\n"), 0);
    assert_int_equal(LINE(&h, "Content-Type: text/plain\r\n"), 0);
    assert_int_equal(LINE(&h, "X-Empty:\r\n"), 0);
    assert_int_equal(LINE(&h, "ETag:   \"abc\"  \r\n"), 0);
    assert_int_equal(LINE(&h, "\r\n"), 0);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.v[0].name, "content-type");
    assert_string_equal(h.v[0].value, "text/plain");
    assert_string_equal(ft_headers_get(&h, "x-empty"), "");
    assert_string_equal(ft_headers_get(&h, "etag"), "\"abc\"");
    assert_null(ft_headers_get(&h, "Content-Type"));   /* lookups use lowercase */
    ft_headers_clear(&h);
    assert_int_equal(h.n, 0);
    assert_null(h.v);
}

static void test_headers_join_and_case(void **state)
{
    struct ft_headers h = {0};

    (void)state;
    LINE(&h, "Set-Cookie: a=1\r\n");
    LINE(&h, "SET-COOKIE: b=2\r\n");
    LINE(&h, "set-cookie: c=3\n");
    LINE(&h, "Vary: Accept\r\n");
    assert_int_equal(h.n, 2);
    assert_string_equal(h.v[0].name, "set-cookie");
    assert_string_equal(h.v[0].value, "a=1, b=2, c=3");
    assert_string_equal(h.v[1].name, "vary");
    ft_headers_clear(&h);
}

static void test_headers_new_block_resets(void **state)
{
    struct ft_headers h = {0};

    (void)state;
    LINE(&h, "HTTP/1.1 100 Continue\r\n");
    LINE(&h, "X-Interim: yes\r\n");
    LINE(&h, "\r\n");
    LINE(&h, "HTTP/1.1 200 OK\r\n");
    LINE(&h, "X-Final: yes\r\n");
    assert_int_equal(h.n, 1);
    assert_string_equal(h.v[0].name, "x-final");
    LINE(&h, "HTTP/2 304\r\n");
    assert_int_equal(h.n, 0);
    ft_headers_clear(&h);
}

static void test_headers_odd_lines(void **state)
{
    struct ft_headers h = {0};
    static const char nul_line[] = "X-Nul: a\0b\r\n";

    (void)state;
    LINE(&h, "no colon here\r\n");
    LINE(&h, ": no name\r\n");
    LINE(&h, " continuation before any header\r\n");
    assert_int_equal(ft_headers_line(&h, nul_line, sizeof nul_line - 1), 0);
    assert_int_equal(h.n, 0);
    LINE(&h, "X-Folded: one\r\n");
    LINE(&h, "\t two \r\n");
    LINE(&h, "X-Url: http://a:b/c\r\n");   /* only the first colon splits */
    assert_int_equal(h.n, 2);
    assert_string_equal(ft_headers_get(&h, "x-folded"), "one two");
    assert_string_equal(ft_headers_get(&h, "x-url"), "http://a:b/c");
    ft_headers_clear(&h);
}

static void test_headers_caps(void **state)
{
    struct ft_headers h = {0};
    char line[64];
    int rc = 0, i;

    (void)state;
    for (i = 0; i < FT_HEADERS_MAX_COUNT + 5 && rc == 0; i++) {
        snprintf(line, sizeof line, "X-H%d: v\r\n", i);
        rc = LINE(&h, line);
    }
    assert_int_equal(rc, -E2BIG);
    assert_int_equal(h.n, FT_HEADERS_MAX_COUNT);
    ft_headers_clear(&h);

    /* one header growing by joins past the byte cap */
    rc = 0;
    for (i = 0; i < FT_HEADERS_MAX_BYTES && rc == 0; i++)
        rc = LINE(&h, "X-Big: 0123456789abcdef0123456789abcdef\r\n");
    assert_int_equal(rc, -E2BIG);
    assert_true(h.bytes <= FT_HEADERS_MAX_BYTES);
    ft_headers_clear(&h);
}

static void test_headers_take(void **state)
{
    struct ft_headers h = {0};
    struct wm_header *v = NULL;
    size_t n = 0;

    (void)state;
    LINE(&h, "A: 1\r\n");
    ft_headers_take(&h, &v, &n);
    assert_int_equal(n, 1);
    assert_int_equal(h.n, 0);
    assert_null(h.v);
    assert_string_equal(v[0].name, "a");
    ft_headers_clear(&(struct ft_headers){.v = v, .n = n});
}

static int map(CURLcode rc, bool big, uint32_t elapsed, enum ft_fail *f,
               char *reason, size_t n)
{
    struct ft_fail_in in = {
        .rc = rc, .too_large = big, .curl_msg = "",
        .timeout_ms = 5000, .max_body = 1048576, .elapsed_ms = elapsed,
    };
    return ft_http_fail_map(&in, f, reason, n);
}

static void test_fail_map(void **state)
{
    char r[256];
    enum ft_fail f;
    struct ft_fail_in in = {.rc = CURLE_COULDNT_CONNECT,
                            .curl_msg = "Failed to connect to 127.0.0.1 port 1",
                            .timeout_ms = 100};

    (void)state;
    assert_int_equal(ft_http_fail_map(&in, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_CONNECT);
    assert_string_equal(r, "connect failed: Failed to connect to 127.0.0.1 port 1");

    assert_int_equal(map(CURLE_COULDNT_RESOLVE_HOST, false, 3, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_CONNECT);
    assert_true(strncmp(r, "connect failed: ", 16) == 0);

    assert_int_equal(map(CURLE_OPERATION_TIMEDOUT, false, 5001, &f, r, sizeof r), 504);
    assert_int_equal(f, FT_FAIL_TIMEOUT);
    assert_string_equal(r, "timeout after 5000 ms");
    /* curl's millisecond timer may fire a hair before the deadline: still a timeout */
    assert_int_equal(map(CURLE_OPERATION_TIMEDOUT, false, 4999, &f, r, sizeof r), 504);
    assert_int_equal(map(CURLE_OPERATION_TIMEDOUT, false, 5000, &f, r, sizeof r), 504);
    assert_int_equal(f, FT_FAIL_TIMEOUT);
    /* the connect timeout fired well before the job's: a failed connection */
    assert_int_equal(map(CURLE_OPERATION_TIMEDOUT, false, 2001, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_CONNECT);

    assert_int_equal(map(CURLE_WRITE_ERROR, true, 10, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_TOO_LARGE);
    assert_string_equal(r, "response body exceeds 1048576 bytes");
    assert_int_equal(map(CURLE_FILESIZE_EXCEEDED, false, 10, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_TOO_LARGE);

    assert_int_equal(map(CURLE_RECV_ERROR, false, 10, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_OTHER);
    assert_true(strlen(r) > 0);

    in = (struct ft_fail_in){.rc = CURLE_WRITE_ERROR, .headers_too_large = true};
    assert_int_equal(ft_http_fail_map(&in, &f, r, sizeof r), 502);
    assert_int_equal(f, FT_FAIL_OTHER);
    assert_string_equal(r, "response headers too large");
}

static void test_fail_reason_names(void **state)
{
    (void)state;
    assert_string_equal(ft_fail_name(FT_FAIL_TOO_LARGE), "too_large");
    assert_string_equal(ft_fail_name(FT_FAIL_ORIGIN), "origin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_ok),
        cmocka_unit_test(test_origin_refused),
        cmocka_unit_test(test_headers_basic),
        cmocka_unit_test(test_headers_join_and_case),
        cmocka_unit_test(test_headers_new_block_resets),
        cmocka_unit_test(test_headers_odd_lines),
        cmocka_unit_test(test_headers_caps),
        cmocka_unit_test(test_headers_take),
        cmocka_unit_test(test_fail_map),
        cmocka_unit_test(test_fail_reason_names),
    };
    return cmocka_run_group_tests_name("ft_http", tests, NULL, NULL);
}

/* Unit tests for wm_log: line format, level filter, the secret scrubber, logfmt value
 * quoting and the rate limiter. */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wm_log.h"

static char line[4096];

/* Captures what wm_log writes to stderr during one call. */
#define CAPTURE(call)                                              \
    do {                                                           \
        FILE *f_ = tmpfile();                                      \
        assert_non_null(f_);                                       \
        fflush(stderr);                                            \
        int saved_ = dup(2);                                       \
        dup2(fileno(f_), 2);                                       \
        call;                                                      \
        fflush(stderr);                                            \
        dup2(saved_, 2);                                           \
        close(saved_);                                             \
        rewind(f_);                                                \
        size_t n_ = fread(line, 1, sizeof line - 1, f_);           \
        line[n_] = '\0';                                           \
        fclose(f_);                                                \
    } while (0)

static void test_format(void **state)
{
    wm_log_init("gateway", WM_LOG_INFO);
    CAPTURE(wm_warn("bad bump", "kind=%s n=%d", "json", 3));
    regex_t re;
    assert_int_equal(regcomp(&re,
        "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
        "level=warn proc=gateway msg=\"bad bump\" kind=json n=3\n$", REG_EXTENDED), 0);
    assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
    regfree(&re);

    CAPTURE(wm_info("started", NULL));
    assert_non_null(strstr(line, "level=info proc=gateway msg=\"started\"\n"));
    CAPTURE(wm_error("x", "%s", ""));
    assert_non_null(strstr(line, "msg=\"x\"\n"));
    /* a quote in msg is escaped, a newline in kv cannot split the line */
    CAPTURE(wm_info("say \"hi\"", "a=%s", "1\n2"));
    assert_non_null(strstr(line, "msg=\"say \\\"hi\\\"\" a=1 2\n"));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

static void test_levels(void **state)
{
    enum wm_log_level l;
    wm_log_init("t", WM_LOG_WARN);
    assert_false(wm_log_enabled(WM_LOG_INFO));
    assert_true(wm_log_enabled(WM_LOG_ERROR));
    CAPTURE(wm_info("hidden", NULL));
    assert_string_equal(line, "");
    CAPTURE(wm_debug("hidden", "a=%d", 1));
    assert_string_equal(line, "");
    CAPTURE(wm_error("shown", NULL));
    assert_non_null(strstr(line, "level=error"));
    assert_int_equal(wm_log_level_parse("debug", &l), 0);
    assert_int_equal(l, WM_LOG_DEBUG);
    assert_int_equal(wm_log_level_parse("WARN", &l), 0);
    assert_int_equal(l, WM_LOG_WARN);
    assert_int_equal(wm_log_level_parse("verbose", &l), -EINVAL);
    assert_int_equal(wm_log_level_parse(NULL, &l), -EINVAL);
}

static void test_scrub(void **state)
{
    wm_log_init("t", WM_LOG_DEBUG);
    CAPTURE(wm_info("auth", "hdr=\"Bearer s3cret\" next=1"));
    assert_null(strstr(line, "s3cret"));
    assert_non_null(strstr(line, "Bearer [redacted]"));
    assert_non_null(strstr(line, "next=1"));
    CAPTURE(wm_info("q", "path=/a?token=abc123&x=1 peer=p"));
    assert_null(strstr(line, "abc123"));
    assert_non_null(strstr(line, "peer=p"));
    CAPTURE(wm_info("q", "ticket=tkt9 PHPSESSID=sess7 authorization=xyz8"));
    assert_null(strstr(line, "tkt9"));
    assert_null(strstr(line, "sess7"));
    assert_null(strstr(line, "xyz8"));
    CAPTURE(wm_info("q", "token=\"two words\" after=ok"));
    assert_null(strstr(line, "two words"));
    assert_non_null(strstr(line, "after=ok"));
    CAPTURE(wm_info("token=msgsecret", NULL));
    assert_null(strstr(line, "msgsecret"));
    /* no marker, nothing changed */
    CAPTURE(wm_info("plain", "k=v"));
    assert_null(strstr(line, "redacted"));
}

static void test_value(void **state)
{
    char out[32];
    assert_string_equal(wm_log_value(out, sizeof out, "/users/1"), "/users/1");
    assert_string_equal(wm_log_value(out, sizeof out, "a b"), "\"a b\"");
    assert_string_equal(wm_log_value(out, sizeof out, "a=b"), "\"a=b\"");
    assert_string_equal(wm_log_value(out, sizeof out, "q\"\\"), "\"q\\\"\\\\\"");
    assert_string_equal(wm_log_value(out, sizeof out, "\n\x01\xff"), "\"\\n\\x01\\xff\"");
    assert_string_equal(wm_log_value(out, sizeof out, ""), "\"\"");
    assert_string_equal(wm_log_value(out, sizeof out, NULL), "\"\"");
    /* in place, as a caller may do with its own buffer */
    char inplace[32] = "two words";
    assert_string_equal(wm_log_value(inplace, sizeof inplace, inplace), "\"two words\"");
    strcpy(inplace, "one");
    assert_string_equal(wm_log_value(inplace, sizeof inplace, inplace), "one");
    /* truncation keeps the quotes balanced */
    char small[8];
    wm_log_value(small, sizeof small, "a b c d e f g");
    assert_true(strlen(small) <= 7);
    assert_int_equal(small[0], '"');
    assert_int_equal(small[strlen(small) - 1], '"');
    wm_log_value(small, sizeof small, "abcdefghijkl");
    assert_string_equal(small, "abcdefg");
}

static void test_ratelimit(void **state)
{
    struct wm_ratelimit rl = {0};
    uint64_t sup = 99;
    assert_true(wm_ratelimit_allow(&rl, 1000, 60000, &sup));
    assert_int_equal(sup, 0);
    assert_false(wm_ratelimit_allow(&rl, 1001, 60000, &sup));
    assert_false(wm_ratelimit_allow(&rl, 60999, 60000, &sup));
    assert_true(wm_ratelimit_allow(&rl, 61000, 60000, &sup));
    assert_int_equal(sup, 2);
    assert_false(wm_ratelimit_allow(&rl, 61001, 60000, &sup));
    assert_true(wm_ratelimit_allow(&rl, 200000, 60000, &sup));
    assert_int_equal(sup, 1);
    /* a clock reading 0 still counts as "logged" */
    struct wm_ratelimit r0 = {0};
    assert_true(wm_ratelimit_allow(&r0, 0, 100, NULL));
    assert_false(wm_ratelimit_allow(&r0, 50, 100, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests_name("wm_log", tests, NULL, NULL);
}

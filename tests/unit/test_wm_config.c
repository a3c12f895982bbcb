/* Unit tests for wm_config: precedence (default < env < option), option forms, error
 * lines, --help/--version, and every value parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wm_config.h"
#include "wm_log.h"
#include "wm_proto.h"

struct cfg {
    char *backend;
    char *realm;
    struct wm_redis_url redis;
    struct wm_listen listen;
    struct wm_endpoints eps;
    struct wm_auth_header auth;
    int64_t limit;
    bool anon;
    enum wm_log_level level;
};

static struct cfg C;

#define N_SETTINGS 9
static const struct wm_setting S[N_SETTINGS] = {
    {"backend-url", "WMTEST_BACKEND_URL", "http://127.0.0.1:8080", "origin", &wm_value_http_url, &C.backend, 0, 0},
    {"realm", "WMTEST_REALM", "waymark", "WAMP realm", &wm_value_string, &C.realm, 0, 0},
    {"redis-url", "WMTEST_REDIS_URL", "redis://127.0.0.1:6379", "redis", &wm_value_redis_url, &C.redis, 0, 0},
    {"listen", "WMTEST_LISTEN", "127.0.0.1:8800", "ws listen", &wm_value_listen, &C.listen, 0, 0},
    {"fetch-endpoint", "WMTEST_FETCH_ENDPOINT", "tcp://127.0.0.1:5556", "zmq", &wm_value_endpoints, &C.eps, 0, 0},
    {"auth-header", "WMTEST_AUTH_HEADER", "Authorization: Bearer {token}", "auth", &wm_value_auth_header, &C.auth, 0, 0},
    {"limit", "WMTEST_LIMIT", "10", "a limit", &wm_value_int, &C.limit, 1, 100},
    {"allow-anonymous", "WMTEST_ALLOW_ANONYMOUS", "0", "anon", &wm_value_bool, &C.anon, 0, 0},
    {"log-level", "WMTEST_LOG_LEVEL", "info", "level", &wm_value_log_level, &C.level, 0, 0},
};

/* Runs wm_config_parse with argv given as a NULL-terminated list, capturing stdout and
 * stderr into the given buffers. */
static char out_text[8192], err_text[1024];

static void slurp(FILE *f, char *buf, size_t n)
{
    fflush(f);
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
}

static int run(int *pos, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = "prog";
    va_start(ap, pos);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    FILE *fo = tmpfile(), *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = wm_config_parse("prog", "a test program", S, N_SETTINGS, argc, argv, pos);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, out_text, sizeof out_text);
    slurp(fe, err_text, sizeof err_text);
    fclose(fo);
    fclose(fe);
    return rc;
}

static int setup(void **state)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        unsetenv(S[i].env);
    memset(&C, 0, sizeof C);
    return 0;
}

static int teardown(void **state)
{
    wm_config_free(S, N_SETTINGS);
    return 0;
}

static void test_defaults(void **state)
{
    assert_int_equal(run(NULL, NULL), WM_CONFIG_OK);
    assert_string_equal(C.backend, "http://127.0.0.1:8080");
    assert_string_equal(C.realm, "waymark");
    assert_string_equal(C.redis.host, "127.0.0.1");
    assert_int_equal(C.redis.port, 6379);
    assert_null(C.redis.password);
    assert_true(C.listen.enabled);
    assert_string_equal(C.listen.host, "127.0.0.1");
    assert_int_equal(C.listen.port, 8800);
    assert_int_equal(C.eps.n, 1);
    assert_string_equal(C.eps.list[0], "tcp://127.0.0.1:5556");
    assert_string_equal(C.auth.name, "Authorization");
    assert_string_equal(C.auth.prefix, "Bearer ");
    assert_string_equal(C.auth.suffix, "");
    assert_int_equal(C.limit, 10);
    assert_false(C.anon);
    assert_int_equal(C.level, WM_LOG_INFO);
    assert_string_equal(err_text, "");
}

static void test_precedence(void **state)
{
    setenv("WMTEST_REALM", "fromenv", 1);
    setenv("WMTEST_LIMIT", "20", 1);
    setenv("WMTEST_LOG_LEVEL", "", 1);   /* empty counts as unset */
    assert_int_equal(run(NULL, "--limit", "30", NULL), WM_CONFIG_OK);
    assert_string_equal(C.realm, "fromenv");
    assert_int_equal(C.limit, 30);
    assert_int_equal(C.level, WM_LOG_INFO);
    assert_int_equal(run(NULL, "--realm=opt", "--log-level", "debug", NULL), WM_CONFIG_OK);
    assert_string_equal(C.realm, "opt");
    assert_int_equal(C.limit, 20);
    assert_int_equal(C.level, WM_LOG_DEBUG);
}

static void test_bool_flags(void **state)
{
    assert_int_equal(run(NULL, "--allow-anonymous", NULL), WM_CONFIG_OK);
    assert_true(C.anon);
    assert_int_equal(run(NULL, "--allow-anonymous=no", NULL), WM_CONFIG_OK);
    assert_false(C.anon);
    setenv("WMTEST_ALLOW_ANONYMOUS", "yes", 1);
    assert_int_equal(run(NULL, NULL), WM_CONFIG_OK);
    assert_true(C.anon);
    assert_int_equal(run(NULL, "--no-allow-anonymous", NULL), WM_CONFIG_OK);
    assert_false(C.anon);
    setenv("WMTEST_ALLOW_ANONYMOUS", "maybe", 1);
    assert_int_equal(run(NULL, NULL), WM_CONFIG_ERROR);
    assert_non_null(strstr(err_text, "bad --allow-anonymous (WMTEST_ALLOW_ANONYMOUS)"));
}

static void test_bad_option_or_env_is_one_line_naming_both(void **state)
{
    assert_int_equal(run(NULL, "--backend-url", "ftp://x", NULL), WM_CONFIG_ERROR);
    assert_string_equal(err_text,
        "prog: bad --backend-url (WMTEST_BACKEND_URL): must start with http:// or https://\n");
    assert_int_equal(run(NULL, "--nope=1", NULL), WM_CONFIG_ERROR);
    assert_non_null(strstr(err_text, "unknown option --nope"));
    assert_int_equal(run(NULL, "-x", NULL), WM_CONFIG_ERROR);
    assert_int_equal(run(NULL, "--limit", NULL), WM_CONFIG_ERROR);
    assert_non_null(strstr(err_text, "bad --limit (WMTEST_LIMIT): needs a value"));
    assert_int_equal(run(NULL, "--limit=101", NULL), WM_CONFIG_ERROR);
    assert_int_equal(run(NULL, "--limit=0", NULL), WM_CONFIG_ERROR);
    assert_int_equal(run(NULL, "--limit=5x", NULL), WM_CONFIG_ERROR);
    assert_int_equal(run(NULL, "--limit=", NULL), WM_CONFIG_ERROR);
    /* exactly one line */
    char *nl = strchr(err_text, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "");
    setenv("WMTEST_LISTEN", "nope:port", 1);
    assert_int_equal(run(NULL, NULL), WM_CONFIG_ERROR);
    assert_non_null(strstr(err_text, "bad --listen (WMTEST_LISTEN)"));
}

static void test_positional(void **state)
{
    int pos = -1;
    assert_int_equal(run(&pos, "--limit", "5", "/users/1", "x", NULL), WM_CONFIG_OK);
    assert_int_equal(pos, 3);
    assert_int_equal(C.limit, 5);
    assert_int_equal(run(&pos, "--", "--limit", NULL), WM_CONFIG_OK);
    assert_int_equal(pos, 2);
    assert_int_equal(run(&pos, NULL), WM_CONFIG_OK);
    assert_int_equal(pos, 1);   /* == argc */
    assert_int_equal(run(NULL, "stray", NULL), WM_CONFIG_ERROR);
    /* a value may start with '-' */
    assert_int_equal(run(&pos, "--realm", "-r-", NULL), WM_CONFIG_OK);
    assert_string_equal(C.realm, "-r-");
}

static void test_help_version(void **state)
{
    setenv("WMTEST_LIMIT", "bad", 1);   /* --help works even with a bad environment */
    assert_int_equal(run(NULL, "--help", NULL), WM_CONFIG_EXIT);
    assert_non_null(strstr(out_text, "a test program"));
    for (size_t i = 0; i < N_SETTINGS; i++) {
        assert_non_null(strstr(out_text, S[i].name));
        assert_non_null(strstr(out_text, S[i].env));
        assert_non_null(strstr(out_text, S[i].def));
        assert_non_null(strstr(out_text, S[i].help));
    }
    assert_int_equal(run(NULL, "--version", NULL), WM_CONFIG_EXIT);
    assert_string_equal(out_text, "prog " WM_VERSION "\n");
}

/* Direct value type checks. */
static int p(const struct wm_value_type *type, void *target, const char *v)
{
    struct wm_setting s = {"x", "X", NULL, "", type, target, 1, 65535};
    char err[128] = "";
    int rc = type->parse(&s, v, err, sizeof err);
    if (rc)
        assert_true(err[0] != '\0');
    return rc;
}

static void test_http_url(void **state)
{
    char *u = NULL;
    assert_int_equal(p(&wm_value_http_url, &u, "http://example.com"), 0);
    assert_string_equal(u, "http://example.com");
    assert_int_equal(p(&wm_value_http_url, &u, "HTTPS://api.example.com:8443/v1/"), 0);
    assert_string_equal(u, "https://api.example.com:8443/v1");
    assert_int_equal(p(&wm_value_http_url, &u, "http://[::1]:8080/"), 0);
    assert_string_equal(u, "http://[::1]:8080");
    static const char *const bad[] = {
        "", "ftp://x", "http://", "http:///x", "http://x:0", "http://x:65536", "http://x:abc",
        "http://u:p@x/", "http://x/?q=1", "http://x/#f", "http://x/a b", "x.com",
        "http://x:80:80", "http://[::1/", "http://x\\y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad url #%zu\n", i);
        assert_int_equal(p(&wm_value_http_url, &u, bad[i]), -EINVAL);
    }
    assert_string_equal(u, "http://[::1]:8080");   /* unchanged by failures */
    free(u);
}

static void test_redis_url(void **state)
{
    struct wm_redis_url r = {0};
    assert_int_equal(p(&wm_value_redis_url, &r, "redis://localhost"), 0);
    assert_string_equal(r.host, "localhost");
    assert_int_equal(r.port, 6379);
    assert_int_equal(r.db, 0);
    assert_null(r.password);
    assert_int_equal(p(&wm_value_redis_url, &r, "redis://:s%40cret@10.0.0.1:6380/3"), 0);
    assert_string_equal(r.host, "10.0.0.1");
    assert_int_equal(r.port, 6380);
    assert_int_equal(r.db, 3);
    assert_string_equal(r.password, "s@cret");
    assert_int_equal(p(&wm_value_redis_url, &r, "redis://default:pw@[::1]/"), 0);
    assert_string_equal(r.host, "::1");
    assert_string_equal(r.password, "pw");
    static const char *const bad[] = {
        "", "http://x", "rediss://x", "redis://", "redis://:6379", "redis://x:0",
        "redis://x/abc", "redis://x/-1", "redis://bob:pw@x", "redis://pw@x", "redis://x?db=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad redis #%zu\n", i);
        assert_int_equal(p(&wm_value_redis_url, &r, bad[i]), -EINVAL);
    }
    free(r.host);
    free(r.password);
}

static void test_listen(void **state)
{
    struct wm_listen l = {0};
    assert_int_equal(p(&wm_value_listen, &l, "0.0.0.0:9100"), 0);
    assert_true(l.enabled);
    assert_string_equal(l.host, "0.0.0.0");
    assert_int_equal(l.port, 9100);
    assert_int_equal(p(&wm_value_listen, &l, ":9101"), 0);
    assert_string_equal(l.host, "127.0.0.1");
    assert_int_equal(l.port, 9101);
    assert_int_equal(p(&wm_value_listen, &l, "9102"), 0);
    assert_string_equal(l.host, "127.0.0.1");
    assert_int_equal(l.port, 9102);
    assert_int_equal(p(&wm_value_listen, &l, "[::1]:80"), 0);
    assert_string_equal(l.host, "::1");
    assert_int_equal(p(&wm_value_listen, &l, "0"), 0);
    assert_false(l.enabled);
    static const char *const bad[] = {"", "host", "host:", ":0", "65536", "a:b", "x y:1", ":"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad listen #%zu\n", i);
        assert_int_equal(p(&wm_value_listen, &l, bad[i]), -EINVAL);
    }
    free(l.host);
}

static void test_endpoints(void **state)
{
    struct wm_endpoints e = {0};
    assert_int_equal(p(&wm_value_endpoints, &e, "tcp://a:1, tcp://[::1]:2,ipc:///tmp/x,inproc://y"), 0);
    assert_int_equal(e.n, 4);
    assert_string_equal(e.list[0], "tcp://a:1");
    assert_string_equal(e.list[1], "tcp://[::1]:2");
    assert_string_equal(e.list[2], "ipc:///tmp/x");
    assert_string_equal(e.list[3], "inproc://y");
    assert_int_equal(p(&wm_value_endpoints, &e, "tcp://*:5555"), 0);
    assert_int_equal(e.n, 1);
    static const char *const bad[] = {
        "", "tcp://a", "tcp://a:0", "udp://a:1", "tcp://a:1,,tcp://b:2", "tcp://a:1,",
        "ipc://", "inproc://", "a:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad endpoints #%zu\n", i);
        assert_int_equal(p(&wm_value_endpoints, &e, bad[i]), -EINVAL);
    }
    assert_int_equal(e.n, 1);
    struct wm_setting s = {"x", "X", NULL, "", &wm_value_endpoints, &e, 0, 0};
    wm_config_free(&s, 1);
    assert_int_equal(e.n, 0);
    assert_null(e.list);
}

static void test_auth_header(void **state)
{
    struct wm_auth_header h = {0};
    assert_int_equal(p(&wm_value_auth_header, &h, "Authorization: Bearer {token}"), 0);
    char *v = wm_auth_header_value(&h, "abc");
    assert_string_equal(h.name, "Authorization");
    assert_string_equal(v, "Bearer abc");
    free(v);
    assert_int_equal(p(&wm_value_auth_header, &h, "Cookie: PHPSESSID={token}; lang=en"), 0);
    assert_string_equal(h.name, "Cookie");
    assert_string_equal(h.prefix, "PHPSESSID=");
    assert_string_equal(h.suffix, "; lang=en");
    v = wm_auth_header_value(&h, "t0k");
    assert_string_equal(v, "PHPSESSID=t0k; lang=en");
    free(v);
    static const char *const bad[] = {
        "", "Authorization Bearer {token}", ": {token}", "Bad Name: {token}",
        "X: no placeholder", "X: {token}{token}", "X: {token}\r\nEvil: 1", "X(y): {token}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad auth #%zu\n", i);
        assert_int_equal(p(&wm_value_auth_header, &h, bad[i]), -EINVAL);
    }
    struct wm_setting s = {"x", "X", NULL, "", &wm_value_auth_header, &h, 0, 0};
    wm_config_free(&s, 1);
    assert_null(h.name);
}

static void test_int_bool_level(void **state)
{
    int64_t i = 0;
    bool b = false;
    enum wm_log_level l = WM_LOG_INFO;
    assert_int_equal(p(&wm_value_int, &i, "65535"), 0);
    assert_int_equal(i, 65535);
    assert_int_equal(p(&wm_value_int, &i, "-1"), -EINVAL);
    assert_int_equal(p(&wm_value_int, &i, " 5"), -EINVAL);
    assert_int_equal(p(&wm_value_int, &i, "99999999999999999999"), -EINVAL);
    assert_int_equal(p(&wm_value_bool, &b, "ON"), 0);
    assert_true(b);
    assert_int_equal(p(&wm_value_bool, &b, "false"), 0);
    assert_false(b);
    assert_int_equal(p(&wm_value_bool, &b, "2"), -EINVAL);
    assert_int_equal(p(&wm_value_log_level, &l, "error"), 0);
    assert_int_equal(l, WM_LOG_ERROR);
    assert_int_equal(p(&wm_value_log_level, &l, "loud"), -EINVAL);
    char *s = NULL;
    assert_int_equal(p(&wm_value_string, &s, ""), -EINVAL);
    assert_int_equal(p(&wm_value_string, &s, "a"), 0);
    assert_int_equal(p(&wm_value_string, &s, "b"), 0);   /* replaces without leaking */
    assert_string_equal(s, "b");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_option_or_env_is_one_line_naming_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_version, setup, teardown),
        cmocka_unit_test(test_http_url),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_auth_header),
        cmocka_unit_test(test_int_bool_level),
    };
    return cmocka_run_group_tests_name("wm_config", tests, NULL, NULL);
}

/* Unit tests for wm_metrics: the Prometheus text helpers, and the HTTP endpoint driven
 * from this test's own poll loop (the way each process drives it) on a loopback port
 * the kernel picks. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "wm_metrics.h"
#include "wm_time.h"

static void test_counter_gauge(void **state)
{
    struct wm_buf b = WM_BUF_INIT;
    wm_metric_counter(&b, "waymark_x_total", "Things.\nMore", 18446744073709551615ull);
    assert_string_equal(b.data,
        "# HELP waymark_x_total Things.\\nMore\n"
        "# TYPE waymark_x_total counter\n"
        "waymark_x_total 18446744073709551615\n");
    wm_buf_reset(&b);
    wm_metric_gauge(&b, "g", "G", 3);
    wm_metric_gauge(&b, "h", "H", 0.5);
    assert_string_equal(b.data, "# HELP g G\n# TYPE g gauge\ng 3\n"
                                "# HELP h H\n# TYPE h gauge\nh 0.5\n");
    wm_buf_free(&b);
}

static void test_labeled(void **state)
{
    struct wm_buf b = WM_BUF_INIT;
    const char *const kinds[] = {"json", "bad\"path"};
    const uint64_t counts[] = {2, 5};
    wm_metric_labeled(&b, "bad_bumps_total", "Bad bumps.", "counter", "kind", kinds, counts, 2);
    assert_string_equal(b.data,
        "# HELP bad_bumps_total Bad bumps.\n"
        "# TYPE bad_bumps_total counter\n"
        "bad_bumps_total{kind=\"json\"} 2\n"
        "bad_bumps_total{kind=\"bad\\\"path\"} 5\n");
    wm_buf_free(&b);
}

static void test_histogram(void **state)
{
    struct wm_histogram h = {{0}, 0, 0};
    wm_histogram_observe(&h, 0.0005);   /* first bucket */
    wm_histogram_observe(&h, 0.001);    /* boundary: le is inclusive */
    wm_histogram_observe(&h, 0.3);      /* 0.5 bucket */
    wm_histogram_observe(&h, 60);       /* only +Inf */
    wm_histogram_observe(&h, -1);       /* clamped to 0 */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.bucket[0], 3);
    struct wm_buf b = WM_BUF_INIT;
    wm_metric_histogram(&b, "lat_seconds", "Latency.", &h);
    assert_non_null(strstr(b.data, "# TYPE lat_seconds histogram\n"));
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"0.001\"} 3\n"));
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"0.0025\"} 3\n"));
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"0.25\"} 3\n"));
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"0.5\"} 4\n"));   /* cumulative */
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"10\"} 4\n"));
    assert_non_null(strstr(b.data, "lat_seconds_bucket{le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(b.data, "lat_seconds_count 5\n"));
    assert_non_null(strstr(b.data, "lat_seconds_sum 60.301"));
    wm_buf_free(&b);
}

/* ---- the HTTP server ---- */

static bool healthy = true;
static int renders;

static void render(struct wm_buf *out, void *ud)
{
    renders++;
    wm_metric_counter(out, "waymark_test_renders_total", "Renders.", (uint64_t)renders);
}

static bool health(struct wm_buf *why, void *ud)
{
    if (!healthy)
        wm_buf_puts(why, "redis link down");
    return healthy;
}

/* Sends raw request text and runs the server until the reply is complete (the server
 * closes the connection for HTTP/1.0); fails after 5 s. */
static void http(struct wm_metrics_server *m, const char *req, struct wm_buf *resp)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)wm_metrics_server_port(m));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    assert_true(r == 0 || errno == EINPROGRESS);
    size_t sent = 0, len = strlen(req);
    int64_t deadline = wm_now_ms() + 5000;
    wm_buf_reset(resp);
    for (;;) {
        assert_true(wm_now_ms() < deadline);
        struct pollfd p[2] = {
            {wm_metrics_server_fd(m), POLLIN, 0},
            {fd, (short)(POLLIN | (sent < len ? POLLOUT : 0)), 0},
        };
        poll(p, 2, 100);
        wm_metrics_server_run(m);
        if (p[1].revents & POLLOUT && sent < len) {
            ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p[1].revents & (POLLIN | POLLHUP)) {
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0)
                break;
            if (n > 0)
                wm_buf_append(resp, buf, (size_t)n);
            else
                assert_true(errno == EAGAIN || errno == EINTR);
        }
    }
    close(fd);
}

static void test_server(void **state)
{
    struct wm_listen l = {true, "127.0.0.1", 0};
    char err[256];
    struct wm_metrics_server *m = wm_metrics_server_new(&l, render, health, NULL, err, sizeof err);
    assert_non_null(m);
    assert_true(wm_metrics_server_port(m) > 0);
    assert_true(wm_metrics_server_fd(m) >= 0);
    struct wm_buf r = WM_BUF_INIT;

    http(m, "GET /metrics HTTP/1.0\r\n\r\n", &r);
    assert_true(strncmp(r.data, "HTTP/1.0 200", 12) == 0 || strncmp(r.data, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(r.data, "text/plain; version=0.0.4"));
    assert_non_null(strstr(r.data, "\r\n\r\n# HELP waymark_test_renders_total"));
    assert_non_null(strstr(r.data, "waymark_test_renders_total 1\n"));
    http(m, "GET /metrics HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, "waymark_test_renders_total 2\n"));   /* fresh each time */

    http(m, "GET /healthz HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, " 200 "));
    assert_non_null(strstr(r.data, "\r\n\r\nok\n"));
    healthy = false;
    http(m, "GET /healthz HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, " 503 "));
    assert_non_null(strstr(r.data, "\r\n\r\nredis link down\n"));
    healthy = true;

    http(m, "GET /nope HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, " 404 "));
    http(m, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, " 405 "));
    http(m, "garbage\r\n\r\n", &r);   /* a bad request line must not hurt the server */
    http(m, "GET /healthz HTTP/1.0\r\n\r\n", &r);
    assert_non_null(strstr(r.data, " 200 "));

    /* the port is taken now: a second server reports why */
    struct wm_listen l2 = {true, "127.0.0.1", wm_metrics_server_port(m)};
    struct wm_metrics_server *m2 = wm_metrics_server_new(&l2, render, health, NULL, err, sizeof err);
    assert_null(m2);
    assert_non_null(strstr(err, "address already in use"));
    assert_non_null(strstr(err, "127.0.0.1:"));

    wm_buf_free(&r);
    wm_metrics_server_free(&m);
    assert_null(m);
    wm_metrics_server_free(&m);   /* NULL-safe */
}

static void test_bad_listen(void **state)
{
    char err[256] = "";
    struct wm_listen off = {false, NULL, 0};
    assert_null(wm_metrics_server_new(&off, render, health, NULL, err, sizeof err));
    assert_true(err[0] != '\0');
    struct wm_listen bad = {true, "256.1.1.1", 9};
    assert_null(wm_metrics_server_new(&bad, render, health, NULL, err, sizeof err));
    assert_non_null(strstr(err, "256.1.1.1:9"));
}

static void test_ipv6(void **state)
{
    char err[256];
    struct wm_listen l = {true, "::1", 0};
    struct wm_metrics_server *m = wm_metrics_server_new(&l, render, health, NULL, err, sizeof err);
    if (!m) {   /* a machine without IPv6 loopback */
        print_message("skipping IPv6: %s\n", err);
        skip();
    }
    assert_true(wm_metrics_server_port(m) > 0);
    wm_metrics_server_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_labeled),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_ipv6),
    };
    return cmocka_run_group_tests_name("wm_metrics", tests, NULL, NULL);
}

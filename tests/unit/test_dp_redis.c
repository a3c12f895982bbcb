/* Unit tests for dp_redis against a fake Redis: a listening socket on 127.0.0.1 that
 * this test drives by hand, so every step of the state machine is checked (SUBSCRIBE,
 * AUTH/SELECT, messages, EOF and reconnect, PING liveness) without a real server. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "../../dispatcher/dp_redis.h"
#include "wm_log.h"
#include "wm_time.h"

struct fake {
    int lfd, conn;
    struct wm_redis_url url;
    struct dp_redis *r;
    int ups, firsts, downs;
    char down_why[160];
    char msgs[8][64];
    int n_msgs;
    char rx[4096];          /* what the client sent on the current connection */
    size_t rx_len;
    bool eof;
    int accepts;
    int accepts_seen;       /* for got_subscribe_on_new */
};

static void on_up(void *ud, bool first)
{
    struct fake *f = ud;
    f->ups++;
    f->firsts += first;
}

static void on_down(void *ud, const char *why)
{
    struct fake *f = ud;
    f->downs++;
    snprintf(f->down_why, sizeof f->down_why, "%s", why);
}

static void on_message(void *ud, const char *data, size_t len)
{
    struct fake *f = ud;
    if (f->n_msgs < 8)
        snprintf(f->msgs[f->n_msgs++], 64, "%.*s", (int)len, data);
}

static const struct dp_redis_callbacks cbs = {on_up, on_down, on_message};

typedef bool (*cond_fn)(struct fake *f);

/* Runs the client and the fake server until cond holds or timeout_ms passes. */
static bool pump(struct fake *f, cond_fn cond, int64_t timeout_ms)
{
    int64_t deadline = wm_now_ms() + timeout_ms;
    while (!cond(f)) {
        int64_t now = wm_now_ms();
        if (now >= deadline)
            return false;
        dp_redis_tick(f->r, now);
        zmq_pollitem_t it[3];
        int n = 0, ri = -1, li = -1, ci = -1;
        if (dp_redis_fd(f->r) >= 0 && dp_redis_events(f->r)) {
            ri = n;
            it[n++] = (zmq_pollitem_t){.fd = dp_redis_fd(f->r), .events = dp_redis_events(f->r)};
        }
        li = n;
        it[n++] = (zmq_pollitem_t){.fd = f->lfd, .events = ZMQ_POLLIN};
        if (f->conn >= 0 && !f->eof) {
            ci = n;
            it[n++] = (zmq_pollitem_t){.fd = f->conn, .events = ZMQ_POLLIN};
        }
        int64_t t = dp_redis_next_ms(f->r) - now;
        if (t > 50)
            t = 50;
        if (t < 0)
            t = 0;
        assert_true(zmq_poll(it, n, (long)t) >= 0);
        now = wm_now_ms();
        if (ri >= 0)
            dp_redis_on_io(f->r, it[ri].revents, now);
        if (it[li].revents & ZMQ_POLLIN) {
            if (f->conn >= 0)
                close(f->conn);
            f->conn = accept(f->lfd, NULL, NULL);
            f->rx_len = 0;
            f->rx[0] = '\0';
            f->eof = false;
            f->accepts++;
        }
        if (ci >= 0 && it[ci].revents) {
            ssize_t k = read(f->conn, f->rx + f->rx_len, sizeof f->rx - 1 - f->rx_len);
            if (k <= 0)
                f->eof = true;
            else
                f->rx_len += (size_t)k;
            f->rx[f->rx_len] = '\0';
        }
    }
    return true;
}

static void srv_send(struct fake *f, const char *s)
{
    assert_int_equal(write(f->conn, s, strlen(s)), (ssize_t)strlen(s));
}

static bool got_subscribe(struct fake *f)
{
    return f->conn >= 0 && strstr(f->rx, "SUBSCRIBE\r\n$7\r\nwaymark\r\n") != NULL;
}
static bool got_subscribe_on_new(struct fake *f)
{
    return f->accepts > f->accepts_seen && got_subscribe(f);
}
static bool is_up(struct fake *f) { return f->ups > 0 && dp_redis_up(f->r); }
static bool got_two_msgs(struct fake *f) { return f->n_msgs >= 2; }
static bool is_down(struct fake *f) { return f->downs > 0; }
static bool client_closed(struct fake *f) { return f->eof; }
static bool got_ping(struct fake *f) { return strstr(f->rx, "PING") != NULL; }
static bool got_select(struct fake *f) { return strstr(f->rx, "SELECT") != NULL; }

static int setup(void **state)
{
    struct fake *f = calloc(1, sizeof *f);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    wm_log_init("test", WM_LOG_ERROR);
    f->conn = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->url.host = "127.0.0.1";
    f->url.port = ntohs(a.sin_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fake *f = *state;
    dp_redis_free(&f->r);
    assert_null(f->r);
    if (f->conn >= 0)
        close(f->conn);
    close(f->lfd);
    free(f);
    return 0;
}

static void subscribe_ok(struct fake *f)
{
    assert_true(pump(f, got_subscribe, 3000));
    srv_send(f, "*3\r\n$9\r\nsubscribe\r\n$7\r\nwaymark\r\n:1\r\n");
    assert_true(pump(f, is_up, 3000));
}

static void test_subscribe_message_reconnect(void **state)
{
    struct fake *f = *state;
    f->r = dp_redis_new(&f->url, "waymark", &cbs, f);
    assert_non_null(f->r);
    assert_false(dp_redis_up(f->r));
    assert_int_equal(dp_redis_fd(f->r), -1);
    subscribe_ok(f);
    assert_int_equal(f->firsts, 1);
    assert_null(strstr(f->rx, "AUTH"));     /* no password: no AUTH */
    assert_null(strstr(f->rx, "SELECT"));

    /* two messages in one TCP segment, one of them binary */
    srv_send(f, "*3\r\n$7\r\nmessage\r\n$7\r\nwaymark\r\n$8\r\n/users/1\r\n"
                "*3\r\n$7\r\nmessage\r\n$7\r\nwaymark\r\n$3\r\n{\"p\r\n");
    assert_true(pump(f, got_two_msgs, 3000));
    assert_string_equal(f->msgs[0], "/users/1");
    assert_string_equal(f->msgs[1], "{\"p");

    /* the server goes away: link down, then a retry after the backoff */
    close(f->conn);
    f->conn = -1;
    assert_true(pump(f, is_down, 3000));
    assert_false(dp_redis_up(f->r));
    assert_true(dp_redis_next_ms(f->r) > wm_now_ms() - 1);
    subscribe_ok(f);
    assert_int_equal(f->ups, 2);
    assert_int_equal(f->firsts, 1);          /* the second one is a reconnect */
    assert_true(dp_redis_reconnects(f->r) >= 1);
}

static void test_auth_select_and_refusal(void **state)
{
    struct fake *f = *state;
    f->url.password = "s3cret";
    f->url.db = 2;
    f->r = dp_redis_new(&f->url, "waymark", &cbs, f);
    assert_true(pump(f, got_select, 3000));
    assert_true(pump(f, got_subscribe, 3000));
    char *auth = strstr(f->rx, "AUTH\r\n$6\r\ns3cret\r\n");
    char *sel = strstr(f->rx, "SELECT\r\n$1\r\n2\r\n");
    assert_non_null(auth);
    assert_non_null(sel);
    assert_true(auth < sel);
    /* AUTH refused: the client hangs up and retries later; never up, no on_down */
    srv_send(f, "-WRONGPASS invalid username-password pair\r\n+OK\r\n");
    assert_true(pump(f, client_closed, 3000));
    f->accepts_seen = f->accepts;
    assert_int_equal(f->ups, 0);
    assert_int_equal(f->downs, 0);
    assert_int_equal(dp_redis_fd(f->r), -1);
    /* accepted on the next attempt (a new connection: rx starts empty again) */
    assert_true(pump(f, got_subscribe_on_new, 3000));
    srv_send(f, "+OK\r\n+OK\r\n*3\r\n$9\r\nsubscribe\r\n$7\r\nwaymark\r\n:1\r\n");
    assert_true(pump(f, is_up, 3000));
    assert_int_equal(f->firsts, 1);
    f->url.password = NULL;
}

static void test_ping_liveness(void **state)
{
    struct fake *f = *state;
    f->r = dp_redis_new(&f->url, "waymark", &cbs, f);
    subscribe_ok(f);
    assert_true(pump(f, got_ping, WM_HEARTBEAT_MS + 1000));
    /* any reply counts: answer the first PING, then stay silent */
    srv_send(f, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    int64_t t0 = wm_now_ms();
    assert_true(pump(f, is_down, (int64_t)WM_HEARTBEAT_MS * (WM_HEARTBEAT_LIVENESS + 2)));
    assert_true(wm_now_ms() - t0 >= (int64_t)WM_HEARTBEAT_MS * (WM_HEARTBEAT_LIVENESS - 1));
    assert_string_equal(f->down_why, "no reply to PING");
}

static void test_connect_refused_keeps_retrying(void **state)
{
    struct fake *f = *state;
    close(f->lfd);                /* nobody listens on that port any more */
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);   /* unbound: never readable */
    f->r = dp_redis_new(&f->url, "waymark", &cbs, f);
    int64_t start = wm_now_ms();
    while (dp_redis_reconnects(f->r) < 2 && wm_now_ms() - start < 3000) {
        int64_t now = wm_now_ms();
        dp_redis_tick(f->r, now);
        zmq_pollitem_t it = {.fd = dp_redis_fd(f->r), .events = dp_redis_events(f->r)};
        int64_t t = dp_redis_next_ms(f->r) - now;
        int n = it.fd >= 0 ? 1 : 0;
        zmq_poll(&it, n, (long)(t < 0 ? 0 : t > 100 ? 100 : t));
        if (n)
            dp_redis_on_io(f->r, it.revents, wm_now_ms());
    }
    assert_true(dp_redis_reconnects(f->r) >= 2);
    assert_false(dp_redis_up(f->r));
    assert_int_equal(f->ups + f->downs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subscribe_message_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_select_and_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_liveness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused_keeps_retrying, setup, teardown),
    };
    return cmocka_run_group_tests_name("dp_redis", tests, NULL, NULL);
}

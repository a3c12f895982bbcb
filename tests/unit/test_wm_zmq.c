/* Unit tests for wm_zmq (whole-message receive, send with routing id, error codes).
 * Uses inproc:// sockets only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wm_zmq.h"

static void *ctx;

static int setup(void **state)
{
    ctx = zmq_ctx_new();
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    zmq_ctx_term(ctx);
    return 0;
}

/* Waits (bounded) for a message, then receives it whole. */
static int recv_wait(void *sock, struct wm_zframes *f)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 2000);
    return wm_zmq_recv(sock, f);
}

static void test_router_dealer(void **state)
{
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    struct wm_zframes f;
    assert_int_equal(wm_zmq_setint(router, ZMQ_ROUTER_MANDATORY, 1), 0);
    assert_int_equal(wm_zmq_setint(router, ZMQ_LINGER, 0), 0);
    assert_int_equal(wm_zmq_setint(dealer, ZMQ_LINGER, 0), 0);
    assert_int_equal(wm_zmq_setint(dealer, 999999, 1), -EINVAL);
    assert_int_equal(zmq_bind(router, "inproc://wmtest"), 0);
    assert_int_equal(zmq_connect(dealer, "inproc://wmtest"), 0);
    assert_true(wm_zmq_fd(router) >= 0);

    assert_int_equal(wm_zmq_recv(router, &f), -EAGAIN);
    assert_false(wm_zmq_readable(router));
    assert_int_equal(wm_zmq_send(dealer, NULL, 0, "hello", 5), 0);
    assert_int_equal(recv_wait(router, &f), 0);
    assert_int_equal(f.n, 2);
    assert_int_equal(wm_zframe_size(&f, 1), 5);
    assert_memory_equal(wm_zframe_data(&f, 1), "hello", 5);

    /* reply to the routing id just received */
    char id[256];
    size_t idlen = wm_zframe_size(&f, 0);
    memcpy(id, wm_zframe_data(&f, 0), idlen);
    wm_zframes_close(&f);
    assert_int_equal(f.n, 0);
    assert_int_equal(wm_zmq_send(router, id, idlen, "back", 4), 0);
    assert_int_equal(recv_wait(dealer, &f), 0);
    assert_int_equal(f.n, 1);
    assert_memory_equal(wm_zframe_data(&f, 0), "back", 4);
    wm_zframes_close(&f);

    /* unknown peer with ROUTER_MANDATORY */
    assert_int_equal(wm_zmq_send(router, "nobody", 6, "x", 1), -EHOSTUNREACH);

    /* a 3-part message is read whole, discarded and reported; the next one is fine */
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "b", 1, 0);
    assert_int_equal(wm_zmq_send(dealer, NULL, 0, "ok", 2), 0);
    assert_int_equal(recv_wait(router, &f), -EMSGSIZE);
    assert_int_equal(f.n, 0);
    assert_int_equal(recv_wait(router, &f), 0);
    assert_int_equal(f.n, 2);
    assert_memory_equal(wm_zframe_data(&f, 1), "ok", 2);
    wm_zframes_close(&f);
    assert_int_equal(wm_zmq_recv(router, &f), -EAGAIN);

    zmq_close(dealer);
    zmq_close(router);
}

static void test_send_would_block(void **state)
{
    /* a DEALER with no peer cannot queue anything: the send must not block */
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    wm_zmq_setint(dealer, ZMQ_LINGER, 0);
    assert_int_equal(wm_zmq_send(dealer, NULL, 0, "x", 1), -EAGAIN);
    zmq_close(dealer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_dealer),
        cmocka_unit_test(test_send_would_block),
    };
    return cmocka_run_group_tests_name("wm_zmq", tests, setup, teardown);
}

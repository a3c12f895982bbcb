/* Unit tests for dp_engine without Redis: payloads handed in directly must come out of
 * the PUB socket as BUMPs with consecutive seqs, bad ones only as counters; a failed
 * bind must come back as a clear reason. The SUB peer uses an
 * ipc:// file in a temp dir (no network). */
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
#include <zmq.h>

#include "../../dispatcher/dp_engine.h"
#include "wm_log.h"
#include "wm_msg.h"
#include "wm_zmq.h"

struct fixture {
    char dir[64];
    char endpoint[128];
    struct wm_redis_url redis;
    struct dp_engine *e;
    void *ctx, *sub;
};

/* Waits (zmq_poll, bounded) for the next message and decodes it; skips HEARTBEATs. */
static int next_msg(struct fixture *f, struct wm_msg *m, long timeout_ms)
{
    for (;;) {
        zmq_pollitem_t it = {.socket = f->sub, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, timeout_ms) <= 0)
            return -ETIMEDOUT;
        struct wm_zframes fr;
        if (wm_zmq_recv(f->sub, &fr) != 0)
            continue;
        const char *why = NULL;
        int rc = wm_msg_decode(wm_zframe_data(&fr, 0), wm_zframe_size(&fr, 0), m, &why);
        wm_zframes_close(&fr);
        assert_int_equal(rc, 0);
        if (m->type != WM_MSG_HEARTBEAT)
            return 0;
        wm_msg_clear(m);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256] = "";
    wm_log_init("test", WM_LOG_ERROR);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_dp_engine.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s/bump", f->dir);
    f->redis.host = "127.0.0.1";
    f->redis.port = 1;      /* never contacted: dp_engine_run is not called */
    struct dp_engine_config cfg = {
        .redis = &f->redis, .channel = "waymark", .bump_endpoint = f->endpoint,
        .metrics = NULL, .max_path = 64};
    f->e = dp_engine_new(&cfg, err, sizeof err);
    assert_non_null(f->e);
    f->ctx = zmq_ctx_new();
    f->sub = zmq_socket(f->ctx, ZMQ_SUB);
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, "", 0), 0);
    assert_int_equal(zmq_connect(f->sub, f->endpoint), 0);
    /* PUB/SUB slow joiner: resend RESYNC until the subscription has reached the PUB */
    struct wm_msg m;
    int got = -1;
    for (int i = 0; i < 100 && got != 0; i++) {
        assert_int_equal(dp_engine_resync(f->e, "test"), 0);
        got = next_msg(f, &m, 50);
    }
    assert_int_equal(got, 0);
    assert_int_equal(m.type, WM_MSG_RESYNC);
    wm_msg_clear(&m);
    /* drain the other RESYNCs that made it, so tests start from a clean stream */
    while (next_msg(f, &m, 20) == 0)
        wm_msg_clear(&m);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[192];
    zmq_close(f->sub);
    zmq_ctx_term(f->ctx);
    dp_engine_free(&f->e);
    assert_null(f->e);
    snprintf(path, sizeof path, "%s/bump", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_bumps_in_order(void **state)
{
    struct fixture *f = *state;
    uint64_t seq0 = dp_engine_last_seq(f->e);
    const char *bad[] = {"", "{", "nope", "{\"path\":\"/a\",\"match\":\"x\"}",
                         "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    assert_int_equal(dp_engine_on_payload(f->e, " /users/1\n", 10), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_true(dp_engine_on_payload(f->e, bad[i], strlen(bad[i])) < 0);
    const char *js = "{\"path\":\"/users/\",\"match\":\"prefix\"}";
    assert_int_equal(dp_engine_on_payload(f->e, js, strlen(js)), 0);

    struct wm_msg m;
    assert_int_equal(next_msg(f, &m, 2000), 0);
    assert_int_equal(m.type, WM_MSG_BUMP);
    assert_true(m.instance == dp_engine_instance(f->e));
    assert_string_equal(m.u.bump.path, "/users/1");
    assert_int_equal(m.u.bump.match, WM_MATCH_EXACT);
    assert_true(m.u.bump.seq == seq0 + 1);
    assert_true(m.u.bump.ts_ms > 0);
    wm_msg_clear(&m);
    assert_int_equal(next_msg(f, &m, 2000), 0);
    assert_int_equal(m.type, WM_MSG_BUMP);
    assert_string_equal(m.u.bump.path, "/users/");
    assert_int_equal(m.u.bump.match, WM_MATCH_PREFIX);
    assert_true(m.u.bump.seq == seq0 + 2);   /* bad bumps take no seq */
    wm_msg_clear(&m);

    const struct dp_stats *st = dp_engine_stats(f->e);
    assert_int_equal(st->bumps_received, 7);
    assert_int_equal(st->bumps_published, 2);
    assert_int_equal(st->bad_bumps[DP_BAD_EMPTY], 1);
    assert_int_equal(st->bad_bumps[DP_BAD_JSON], 1);
    assert_int_equal(st->bad_bumps[DP_BAD_PATH], 1);
    assert_int_equal(st->bad_bumps[DP_BAD_MATCH], 1);
    assert_int_equal(st->bad_bumps[DP_BAD_TOO_LONG], 1);
}

static void test_resync_takes_a_seq(void **state)
{
    struct fixture *f = *state;
    uint64_t seq0 = dp_engine_last_seq(f->e);
    assert_int_equal(dp_engine_resync(f->e, "redis reconnected"), 0);
    struct wm_msg m;
    assert_int_equal(next_msg(f, &m, 2000), 0);
    assert_int_equal(m.type, WM_MSG_RESYNC);
    assert_true(m.u.resync.seq == seq0 + 1);
    assert_string_equal(m.u.resync.reason, "redis reconnected");
    wm_msg_clear(&m);
}

/* (ipc:// cannot show a clash: ZeroMQ lets a second bind take the file over.) */
static void test_bind_failure_is_reported(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    const char *bad = "tcp://no.such.interface.invalid:1";
    struct dp_engine_config cfg = {
        .redis = &f->redis, .channel = "waymark", .bump_endpoint = bad};
    struct dp_engine *e2 = dp_engine_new(&cfg, err, sizeof err);
    assert_null(e2);
    assert_non_null(strstr(err, "cannot bind"));
    assert_non_null(strstr(err, bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bumps_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_takes_a_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure_is_reported, setup, teardown),
    };
    return cmocka_run_group_tests_name("dp_engine", tests, NULL, NULL);
}

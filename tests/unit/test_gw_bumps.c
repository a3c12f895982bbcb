/* Unit tests for gw_bumps: sequence tracking per dispatcher instance and the full
 * refreshes it triggers (new instance, gap, RESYNC), bump matching, link liveness.
 * A real broker and pool sit behind it; the fetches they send are counted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_bumps.h"
#include "wm_buf.h"

static struct {
    struct gw_stats stats;
    struct gw_pool *pool;
    struct gw_broker *b;
    struct gw_bumps *bumps;
    struct gw_client *c;
    uint64_t job_ids[256];
    size_t n_jobs;
    size_t n_del;
} fx;

static int session;

static int fake_send(void *ud, const void *id, size_t idlen, const struct wm_msg *msg)
{
    if (msg->type == WM_MSG_JOB) {
        assert_true(fx.n_jobs < 256);
        fx.job_ids[fx.n_jobs++] = msg->u.job.id;
    }
    return 0;
}

static void on_result(void *ud, struct gw_job *job, struct wm_msg *result)
{
    gw_broker_on_result(fx.b, job, result);
}

static void fake_deliver(void *s, uint64_t sub_id, struct gw_event *ev, bool retained)
{
    fx.n_del++;
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    static struct wm_auth_header auth = { "Authorization", "Bearer ", "" };
    struct gw_pool_config pc = { .instance = 1, .max_attempts = 3 };
    fx.pool = gw_pool_new(&pc, fake_send, on_result, NULL, &fx.stats);
    struct gw_broker_config bc = {
        .backend_url = "http://backend", .auth = &auth, .fetch_timeout_ms = 1000,
        .max_page_bytes = 1000, .max_message_bytes = 10000, .max_subscriptions = 10,
    };
    fx.b = gw_broker_new(&bc, fx.pool, fake_deliver, &fx.stats);
    fx.bumps = gw_bumps_new(fx.b, &fx.stats);
    struct wm_msg ready = { .type = WM_MSG_READY, .instance = 9 };
    ready.u.ready.credits = 1000;
    gw_pool_on_message(fx.pool, "F", 1, &ready);
    fx.c = gw_broker_client_new(fx.b, &session, "tok");
    uint64_t id;
    assert_int_equal(gw_broker_subscribe(fx.b, fx.c, "/users/1", NULL, false, &id), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, fx.c, "/posts/1", NULL, false, &id), 0);
    return 0;
}

static int teardown(void **state)
{
    gw_bumps_free(&fx.bumps);
    assert_null(fx.bumps);
    gw_broker_free(&fx.b);
    gw_pool_free(&fx.pool);
    return 0;
}

/* The fetcher answers every job sent so far that has no answer yet. */
static size_t answered;
static void answer_all(void)
{
    while (answered < fx.n_jobs) {
        struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 9 };
        r.u.result.id = fx.job_ids[answered++];
        r.u.result.status = 200;
        gw_pool_on_message(fx.pool, "F", 1, &r);
    }
}

static void hb(uint64_t inst, uint64_t seq, int64_t now)
{
    struct wm_msg m = { .type = WM_MSG_HEARTBEAT, .instance = inst };
    m.u.heartbeat.seq = seq;
    gw_bumps_on_message(fx.bumps, &m, now);
}

static void bump(uint64_t inst, uint64_t seq, const char *path, int64_t now)
{
    struct wm_msg m = { .type = WM_MSG_BUMP, .instance = inst };
    m.u.bump.path = (char *)path;
    m.u.bump.match = WM_MATCH_EXACT;
    m.u.bump.seq = seq;
    gw_bumps_on_message(fx.bumps, &m, now);
}

static void resync(uint64_t inst, uint64_t seq, int64_t now)
{
    struct wm_msg m = { .type = WM_MSG_RESYNC, .instance = inst };
    m.u.resync.seq = seq;
    m.u.resync.reason = "start";
    gw_bumps_on_message(fx.bumps, &m, now);
}

static void test_new_instance_refreshes(void **state)
{
    answered = 0;
    assert_false(gw_bumps_link_up(fx.bumps));
    hb(100, 41, 1000);
    assert_int_equal(fx.stats.resyncs, 1);
    assert_int_equal(fx.stats.seq_gaps, 0);
    assert_int_equal(fx.n_jobs, 2);   /* both topics refreshed */
    assert_true(gw_bumps_link_up(fx.bumps));
    assert_int_equal(fx.stats.dispatcher_up, 1);
    answer_all();

    /* Its seq was adopted: the next ones are in order, no refresh. */
    hb(100, 41, 1500);
    bump(100, 42, "/users/1", 1600);
    assert_int_equal(fx.stats.bumps_received, 1);
    assert_int_equal(fx.stats.bumps_matched, 1);
    assert_int_equal(fx.n_jobs, 3);
    bump(100, 43, "/nobody", 1700);
    assert_int_equal(fx.stats.bumps_received, 2);
    assert_int_equal(fx.stats.bumps_matched, 1);
    hb(100, 43, 2000);
    assert_int_equal(fx.stats.resyncs, 1);
    assert_int_equal(fx.stats.seq_gaps, 0);
    answer_all();
    assert_int_equal(fx.n_jobs, 3);

    /* A second (restarted) dispatcher is new too. */
    bump(200, 1, "/posts/1", 2100);
    assert_int_equal(fx.stats.resyncs, 2);
    assert_int_equal(fx.stats.bumps_matched, 2);
    assert_int_equal(fx.stats.dispatcher_up, 2);
}

static void test_gaps_refresh(void **state)
{
    answered = 0;
    hb(100, 10, 1000);
    answer_all();
    size_t jobs = fx.n_jobs;

    bump(100, 12, "/users/1", 1100);   /* 11 lost */
    assert_int_equal(fx.stats.seq_gaps, 1);
    assert_int_equal(fx.stats.resyncs, 2);
    assert_int_equal(fx.stats.bumps_matched, 1);   /* still applied */
    assert_true(fx.n_jobs >= jobs + 2);            /* every topic fetched again */
    answer_all();
    answer_all();

    hb(100, 12, 1200);
    assert_int_equal(fx.stats.seq_gaps, 1);
    hb(100, 14, 1300);                              /* heartbeat says we missed 13, 14 */
    assert_int_equal(fx.stats.seq_gaps, 2);
    assert_int_equal(fx.stats.resyncs, 3);
    answer_all();
    bump(100, 15, "/users/1", 1400);                /* in order after the adopted 14 */
    assert_int_equal(fx.stats.seq_gaps, 2);

    /* RESYNC in order: a refresh without a gap. */
    jobs = fx.n_jobs;
    resync(100, 16, 1500);
    assert_int_equal(fx.stats.seq_gaps, 2);
    assert_int_equal(fx.stats.resyncs, 4);
    assert_int_equal(fx.n_jobs, jobs + 1);   /* /users/1 in flight: only pending */
    answer_all();
    assert_int_equal(fx.n_jobs, jobs + 2);
    answer_all();
    assert_int_equal(fx.n_jobs, jobs + 2);
    assert_true(fx.n_del > 0);
}

static void test_liveness_and_forget(void **state)
{
    hb(100, 5, 10000);
    gw_bumps_tick(fx.bumps, 12000);
    assert_true(gw_bumps_link_up(fx.bumps));
    gw_bumps_tick(fx.bumps, 13001);
    assert_false(gw_bumps_link_up(fx.bumps));
    assert_int_equal(fx.stats.dispatcher_up, 0);

    hb(100, 5, 20000);   /* back, same instance, same seq: no refresh */
    assert_int_equal(fx.stats.resyncs, 1);
    assert_true(gw_bumps_link_up(fx.bumps));

    gw_bumps_tick(fx.bumps, 80001);   /* silent > 60 s: forgotten */
    hb(100, 5, 80002);
    assert_int_equal(fx.stats.resyncs, 2);
}

static void test_bad_messages(void **state)
{
    struct wm_msg m = { .type = WM_MSG_READY, .instance = 100 };
    gw_bumps_on_message(fx.bumps, &m, 1000);
    assert_int_equal(fx.stats.bad_messages, 1);
    assert_false(gw_bumps_link_up(fx.bumps));

    hb(100, 1, 1000);
    bump(100, 2, "no-slash", 1100);   /* bad, but its seq is consumed */
    assert_int_equal(fx.stats.bad_messages, 2);
    bump(100, 3, "/users/1", 1200);
    assert_int_equal(fx.stats.seq_gaps, 0);
    assert_int_equal(fx.stats.bumps_matched, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_instance_refreshes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gaps_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_liveness_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

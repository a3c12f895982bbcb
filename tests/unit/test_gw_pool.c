/* Unit tests for gw_pool: credit, dispatch to the fetcher with most credit, requeue on
 * fetcher death and job timeout, the 504 after the last attempt, stale results. Sends
 * are encoded and decoded with wm_msg so the recorded JOBs are what would go out. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_pool.h"
#include "wm_buf.h"
#include "wm_proto.h"
#include "wm_time.h"

#define INSTANCE 0x1234
#define MAX_SENT 256

struct sent {
    char to;                 /* routing ids here are one letter */
    struct wm_msg m;
};

struct res {
    uint64_t id;
    int status;
    char error[96];
    void *owner;
};

static struct {
    struct gw_stats stats;
    struct gw_pool *p;
    struct sent sent[MAX_SENT];
    size_t n_sent;
    char fail_to;            /* sends to this fetcher fail */
    struct res res[64];
    size_t n_res;
    int64_t t0;
    bool submit_in_callback;
} fx;

static int fake_send(void *ud, const void *id, size_t idlen, const struct wm_msg *msg)
{
    struct wm_buf b = WM_BUF_INIT;
    const char *why = NULL;
    assert_int_equal(idlen, 1);
    if (fx.fail_to && *(const char *)id == fx.fail_to)
        return -EPIPE;
    assert_true(fx.n_sent < MAX_SENT);
    struct sent *s = &fx.sent[fx.n_sent++];
    s->to = *(const char *)id;
    assert_int_equal(wm_msg_encode(msg, &b), 0);
    assert_int_equal(wm_msg_decode(b.data, b.len, &s->m, &why), 0);
    wm_buf_free(&b);
    return 0;
}

static struct gw_job *make_job(const char *url, uint32_t timeout_ms);

static void fake_result(void *ud, struct gw_job *job, struct wm_msg *result)
{
    assert_ptr_equal(ud, &fx);
    assert_true(fx.n_res < 64);
    struct res *r = &fx.res[fx.n_res++];
    r->id = job->id;
    r->status = result->u.result.status;
    r->owner = job->owner;
    snprintf(r->error, sizeof r->error, "%s", result->u.result.error ? result->u.result.error : "");
    gw_job_free(&job);
    if (fx.submit_in_callback) {
        fx.submit_in_callback = false;
        gw_pool_submit(fx.p, make_job("http://b/next", 5000));
    }
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    struct gw_pool_config cfg = { .instance = INSTANCE, .max_attempts = 3 };
    fx.p = gw_pool_new(&cfg, fake_send, fake_result, &fx, &fx.stats);
    fx.t0 = wm_now_ms();
    return 0;
}

static int teardown(void **state)
{
    gw_pool_free(&fx.p);
    assert_null(fx.p);
    for (size_t i = 0; i < fx.n_sent; i++)
        wm_msg_clear(&fx.sent[i].m);
    return 0;
}

static int dummy_owner;

static struct gw_job *make_job(const char *url, uint32_t timeout_ms)
{
    struct gw_job *j = wm_calloc(1, sizeof *j);
    j->url = wm_strdup(url);
    j->headers = wm_calloc(1, sizeof *j->headers);
    j->headers[0].name = wm_strdup("X-Waymark");
    j->headers[0].value = wm_strdup("1");
    j->n_headers = 1;
    j->timeout_ms = timeout_ms;
    j->max_body = 1000;
    j->owner = &dummy_owner;
    return j;
}

static void from(char who, enum wm_msg_type type, uint64_t n)
{
    struct wm_msg m = { .type = type, .instance = 0xF000 + (unsigned char)who };
    if (type == WM_MSG_READY)
        m.u.ready.credits = (uint32_t)n;
    else if (type == WM_MSG_RESULT) {
        m.u.result.id = n;
        m.u.result.status = 200;
    }
    gw_pool_on_message(fx.p, &who, 1, &m);
}

/* Number of JOBs recorded since index start, and the last one. */
static size_t jobs_since(size_t start, const struct sent **last)
{
    size_t n = 0;
    for (size_t i = start; i < fx.n_sent; i++) {
        if (fx.sent[i].m.type == WM_MSG_JOB) {
            n++;
            if (last)
                *last = &fx.sent[i];
        }
    }
    return n;
}

static void test_queued_until_ready(void **state)
{
    struct gw_job *j = make_job("http://b/users/1", 5000);
    gw_pool_submit(fx.p, j);
    uint64_t id = j->id;
    assert_true(id >= 1);
    assert_int_equal(jobs_since(0, NULL), 0);
    assert_int_equal(fx.stats.jobs_queued, 1);

    /* A heartbeat registers the fetcher with no credit; we answer with our instance. */
    from('A', WM_MSG_HEARTBEAT, 0);
    assert_int_equal(gw_pool_live_fetchers(fx.p), 1);
    assert_int_equal(fx.stats.fetchers, 1);
    assert_int_equal(jobs_since(0, NULL), 0);
    assert_int_equal(fx.sent[0].m.type, WM_MSG_HEARTBEAT);
    assert_true(fx.sent[0].m.instance == INSTANCE);
    assert_true(fx.sent[0].m.u.heartbeat.seq == 0);

    from('A', WM_MSG_READY, 2);
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(0, &s), 1);
    assert_int_equal(s->to, 'A');
    assert_true(s->m.u.job.id == id);
    assert_string_equal(s->m.u.job.url, "http://b/users/1");
    assert_int_equal(s->m.u.job.n_headers, 1);
    assert_string_equal(s->m.u.job.headers[0].name, "X-Waymark");
    assert_int_equal(s->m.u.job.timeout_ms, 5000);
    assert_int_equal(s->m.u.job.max_body, 1000);
    assert_int_equal(fx.stats.jobs_queued, 0);
    assert_int_equal(fx.stats.jobs_in_flight, 1);
    assert_int_equal(fx.stats.jobs_sent, 1);

    from('A', WM_MSG_RESULT, id);
    assert_int_equal(fx.n_res, 1);
    assert_true(fx.res[0].id == id);
    assert_int_equal(fx.res[0].status, 200);
    assert_int_equal(fx.stats.jobs_in_flight, 0);
    assert_int_equal(fx.stats.results_by_class[2], 1);
    assert_int_equal(fx.stats.fetch_latency.count, 1);
}

static void test_most_credit_and_credit_accounting(void **state)
{
    from('A', WM_MSG_READY, 1);
    from('B', WM_MSG_READY, 3);
    size_t start = fx.n_sent;
    struct gw_job *jobs[5];
    const struct sent *first = NULL;
    jobs[0] = make_job("http://b/x", 5000);
    gw_pool_submit(fx.p, jobs[0]);
    assert_int_equal(jobs_since(start, &first), 1);
    assert_int_equal(first->to, 'B');   /* the most credit, not the first known */
    for (int i = 1; i < 5; i++) {
        jobs[i] = make_job("http://b/x", 5000);
        gw_pool_submit(fx.p, jobs[i]);
    }
    uint64_t id4 = jobs[4]->id;
    /* B(3) A(1): B, then B(2) vs A(1): B, then B(1)/A(1), then the other: 4 sent. */
    size_t to_a = 0, to_b = 0;
    for (size_t i = start; i < fx.n_sent; i++) {
        if (fx.sent[i].m.type != WM_MSG_JOB)
            continue;
        to_a += fx.sent[i].to == 'A';
        to_b += fx.sent[i].to == 'B';
    }
    assert_int_equal(to_a, 1);
    assert_int_equal(to_b, 3);
    assert_int_equal(fx.stats.jobs_queued, 1);
    assert_int_equal(fx.stats.jobs_in_flight, 4);

    /* A RESULT gives one credit back: the fifth job goes out at once, FIFO order. */
    start = fx.n_sent;
    from('A', WM_MSG_RESULT, fx.sent[start - 1].m.u.job.id);
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(start, &s), 1);
    assert_true(s->m.u.job.id == id4);
    assert_int_equal(fx.stats.jobs_queued, 0);
    assert_int_equal(fx.stats.jobs_in_flight, 4);
}

static void test_stale_result_counts_credit(void **state)
{
    from('A', WM_MSG_READY, 0);
    struct gw_job *j = make_job("http://b/x", 5000);
    gw_pool_submit(fx.p, j);
    assert_int_equal(jobs_since(0, NULL), 0);
    from('A', WM_MSG_RESULT, 999);
    assert_int_equal(fx.stats.results_stale, 1);
    assert_int_equal(fx.n_res, 0);
    assert_int_equal(jobs_since(0, NULL), 1);   /* its credit still counted */
}

static void test_dead_fetcher_requeues_to_other(void **state)
{
    from('A', WM_MSG_READY, 5);
    from('B', WM_MSG_READY, 1);
    struct gw_job *j1 = make_job("http://b/1", 5000), *j2 = make_job("http://b/2", 5000);
    gw_pool_submit(fx.p, j1);
    gw_pool_submit(fx.p, j2);
    uint64_t id1 = j1->id, id2 = j2->id;
    assert_int_equal(fx.stats.jobs_in_flight, 2);   /* both on A (most credit) */
    for (size_t i = 0; i < fx.n_sent; i++)
        if (fx.sent[i].m.type == WM_MSG_JOB)
            assert_int_equal(fx.sent[i].to, 'A');

    gw_pool_tick(fx.p, fx.t0 + 2000);
    from('B', WM_MSG_HEARTBEAT, 0);
    from('B', WM_MSG_READY, 2);
    size_t start = fx.n_sent;
    gw_pool_tick(fx.p, fx.t0 + 3500);   /* A silent for 3.5 s: gone */
    assert_int_equal(fx.stats.fetchers_lost, 1);
    assert_int_equal(fx.stats.fetchers, 1);
    assert_int_equal(fx.stats.jobs_retried, 2);
    /* Both resent to B, in their original order. */
    uint64_t ids[2];
    size_t n = 0;
    for (size_t i = start; i < fx.n_sent; i++) {
        if (fx.sent[i].m.type == WM_MSG_JOB) {
            assert_int_equal(fx.sent[i].to, 'B');
            ids[n++] = fx.sent[i].m.u.job.id;
        }
    }
    assert_int_equal(n, 2);
    assert_true(ids[0] == id1 && ids[1] == id2);
    assert_int_equal(fx.stats.jobs_in_flight, 2);
    assert_int_equal(fx.stats.jobs_queued, 0);

    from('B', WM_MSG_RESULT, id1);
    assert_int_equal(fx.n_res, 1);
    assert_true(fx.res[0].id == id1);
    /* The dead fetcher answers after all: registered again, result counted stale
     * once B has answered the same job. */
    from('B', WM_MSG_RESULT, id2);
    from('A', WM_MSG_RESULT, id2);
    assert_int_equal(fx.n_res, 2);
    assert_int_equal(fx.stats.results_stale, 1);
}

static void test_retry_goes_to_front(void **state)
{
    from('A', WM_MSG_READY, 1);
    from('B', WM_MSG_READY, 0);
    struct gw_job *j1 = make_job("http://b/1", 5000);
    gw_pool_submit(fx.p, j1);
    uint64_t id1 = j1->id;
    gw_pool_submit(fx.p, make_job("http://b/2", 5000));
    gw_pool_submit(fx.p, make_job("http://b/3", 5000));
    assert_int_equal(fx.stats.jobs_queued, 2);
    gw_pool_tick(fx.p, fx.t0 + 2000);
    from('B', WM_MSG_HEARTBEAT, 0);
    gw_pool_tick(fx.p, fx.t0 + 3500);   /* A dies with job 1 */
    assert_int_equal(fx.stats.jobs_queued, 3);
    assert_int_equal(fx.stats.jobs_in_flight, 0);
    size_t start = fx.n_sent;
    from('B', WM_MSG_READY, 1);
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(start, &s), 1);
    assert_true(s->m.u.job.id == id1);   /* the retried job goes first */
}

static void test_timeout_retries_then_504(void **state)
{
    from('A', WM_MSG_READY, 10);
    struct gw_job *j = make_job("http://b/slow", 1000);
    gw_pool_submit(fx.p, j);
    uint64_t id = j->id;
    assert_int_equal(jobs_since(0, NULL), 1);

    /* Keep A alive with heartbeats; the job times out after 1000 + 2000 ms each time. */
    int64_t t = fx.t0;
    for (int step = 1; step <= 6; step++) {
        t += 1600;
        gw_pool_tick(fx.p, t);
        from('A', WM_MSG_HEARTBEAT, 0);
    }
    assert_int_equal(fx.stats.fetchers_lost, 0);
    assert_int_equal(jobs_since(0, NULL), 3);
    assert_int_equal(fx.stats.jobs_retried, 2);
    assert_int_equal(fx.n_res, 1);
    assert_true(fx.res[0].id == id);
    assert_int_equal(fx.res[0].status, 504);
    assert_string_equal(fx.res[0].error, "no fetcher answered after 3 attempts");
    assert_int_equal(fx.stats.jobs_failed, 1);
    assert_int_equal(fx.stats.jobs_in_flight, 0);
    assert_int_equal(fx.stats.jobs_queued, 0);

    from('A', WM_MSG_RESULT, id);   /* too late */
    assert_int_equal(fx.stats.results_stale, 1);
    assert_int_equal(fx.n_res, 1);
}

static void test_heartbeats_every_second(void **state)
{
    from('A', WM_MSG_READY, 1);
    from('B', WM_MSG_READY, 1);
    size_t start = fx.n_sent;
    gw_pool_tick(fx.p, fx.t0 + 500);
    gw_pool_tick(fx.p, fx.t0 + 700);    /* too soon for another round */
    size_t hb = 0;
    for (size_t i = start; i < fx.n_sent; i++) {
        assert_int_equal(fx.sent[i].m.type, WM_MSG_HEARTBEAT);
        assert_true(fx.sent[i].m.instance == INSTANCE);
        hb++;
    }
    assert_int_equal(hb, 2);
    gw_pool_tick(fx.p, fx.t0 + 1600);
    assert_int_equal(fx.n_sent - start, 4);
}

static void test_send_failure_drops_fetcher(void **state)
{
    from('A', WM_MSG_READY, 5);
    from('B', WM_MSG_READY, 1);
    fx.fail_to = 'A';
    size_t start = fx.n_sent;
    gw_pool_submit(fx.p, make_job("http://b/x", 5000));
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(start, &s), 1);
    assert_int_equal(s->to, 'B');
    assert_int_equal(fx.stats.fetchers, 1);
    assert_int_equal(fx.stats.fetchers_lost, 1);
}

static void test_cancel(void **state)
{
    struct gw_job *queued = make_job("http://b/q", 5000);
    gw_pool_submit(fx.p, queued);
    gw_pool_cancel(fx.p, queued);   /* freed now (ASan checks) */
    assert_int_equal(fx.stats.jobs_queued, 0);

    from('A', WM_MSG_READY, 1);
    assert_int_equal(jobs_since(0, NULL), 0);
    struct gw_job *flying = make_job("http://b/f", 5000);
    gw_pool_submit(fx.p, flying);
    uint64_t id = flying->id;
    gw_pool_cancel(fx.p, flying);
    from('A', WM_MSG_RESULT, id);
    assert_int_equal(fx.n_res, 0);   /* no callback for a cancelled job */
    assert_int_equal(fx.stats.jobs_in_flight, 0);
}

static void test_submit_from_callback(void **state)
{
    from('A', WM_MSG_READY, 1);
    struct gw_job *j = make_job("http://b/x", 5000);
    gw_pool_submit(fx.p, j);
    fx.submit_in_callback = true;
    from('A', WM_MSG_RESULT, j->id);
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(0, &s), 2);
    assert_string_equal(s->m.u.job.url, "http://b/next");
}

/* A fetcher we know only from heartbeats (we dropped it, it did not reconnect) has an
 * unknown credit: after a liveness window it stops getting heartbeats, so it
 * reconnects and sends READY. */
static void test_unready_fetcher_is_muted(void **state)
{
    int64_t t = fx.t0;
    from('A', WM_MSG_HEARTBEAT, 0);
    size_t hb_early = 0, hb_late = 0;
    for (int i = 1; i <= 8; i++) {
        size_t start = fx.n_sent;
        t += 900;
        gw_pool_tick(fx.p, t);
        from('A', WM_MSG_HEARTBEAT, 0);
        for (size_t k = start; k < fx.n_sent; k++) {
            if (fx.sent[k].m.type != WM_MSG_HEARTBEAT)
                continue;
            if (i <= 3)
                hb_early++;
            else
                hb_late++;
        }
    }
    assert_true(hb_early >= 2);
    assert_int_equal(hb_late, 0);
    assert_int_equal(fx.stats.fetchers, 1);   /* still alive: it talks to us */
}

/* The same routing id with another instance is a restarted fetcher: what the old
 * process held is resent. */
static void test_restarted_fetcher_same_id(void **state)
{
    from('A', WM_MSG_READY, 2);
    struct gw_job *j = make_job("http://b/1", 5000);
    gw_pool_submit(fx.p, j);
    uint64_t id = j->id;
    size_t start = fx.n_sent;
    struct wm_msg m = { .type = WM_MSG_READY, .instance = 0xBEEF };
    m.u.ready.credits = 3;
    char who = 'A';
    gw_pool_on_message(fx.p, &who, 1, &m);
    assert_int_equal(fx.stats.fetchers_lost, 1);
    assert_int_equal(fx.stats.jobs_retried, 1);
    const struct sent *s = NULL;
    assert_int_equal(jobs_since(start, &s), 1);
    assert_true(s->m.u.job.id == id);
}

static void test_bad_message_counted(void **state)
{
    struct wm_msg m = { .type = WM_MSG_BUMP };
    char id = 'Z';
    m.u.bump.path = "/x";
    gw_pool_on_message(fx.p, &id, 1, &m);
    assert_int_equal(fx.stats.bad_messages, 1);
    assert_int_equal(fx.stats.fetchers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queued_until_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_most_credit_and_credit_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_result_counts_credit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_fetcher_requeues_to_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_goes_to_front, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_retries_then_504, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeats_every_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_failure_drops_fetcher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submit_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unready_fetcher_is_muted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restarted_fetcher_same_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_message_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for gw_broker, driven through a real gw_pool with a recording send
 * callback and one fake fetcher: coalescing, groups by token and Accept, topic matching,
 * snapshots, token changes, limits, re-entrant deliveries, unchanged pages not pushed
 * again and conditional refetches. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_broker.h"
#include "wm_buf.h"

#define MAX_SENT 4096
#define MAX_DEL 256

struct delivery {
    void *session;
    uint64_t sub_id;
    struct gw_event *ev;     /* a reference, dropped in teardown */
    bool retained;
    char body[64];
};

static struct {
    struct gw_stats stats;
    struct gw_pool *pool;
    struct gw_broker *b;
    struct wm_auth_header auth;
    struct wm_msg sent[MAX_SENT];   /* decoded JOBs */
    size_t n_sent;
    struct delivery del[MAX_DEL];
    size_t n_del;
    /* re-entrancy: when delivering to close_on, free close_client */
    void *close_on;
    struct gw_client **close_client;
} fx;

static int s1, s2, s3;   /* session identities */

static int fake_send(void *ud, const void *id, size_t idlen, const struct wm_msg *msg)
{
    struct wm_buf buf = WM_BUF_INIT;
    const char *why = NULL;
    if (msg->type != WM_MSG_JOB)
        return 0;
    assert_true(fx.n_sent < MAX_SENT);
    assert_int_equal(wm_msg_encode(msg, &buf), 0);
    assert_int_equal(wm_msg_decode(buf.data, buf.len, &fx.sent[fx.n_sent++], &why), 0);
    wm_buf_free(&buf);
    return 0;
}

static void fake_deliver(void *session, uint64_t sub_id, struct gw_event *ev, bool retained)
{
    assert_true(fx.n_del < MAX_DEL);
    struct delivery *d = &fx.del[fx.n_del++];
    d->session = session;
    d->sub_id = sub_id;
    d->ev = gw_event_ref(ev);
    d->retained = retained;
    assert_true(ev->sub_id == sub_id);
    snprintf(d->body, sizeof d->body, "%.*s", (int)ev->result.u.result.body_len,
             (const char *)ev->result.u.result.body);
    if (fx.close_on == session && fx.close_client) {
        struct gw_client **c = fx.close_client;
        fx.close_client = NULL;
        gw_broker_client_free(fx.b, c);
    }
}

/* The pool's ud must be the broker and the broker needs the pool: the engine breaks
 * the cycle the same way, through a struct both point into. */
static struct gw_broker *g_broker;
static void on_result_tramp(void *ud, struct gw_job *job, struct wm_msg *result)
{
    gw_broker_on_result(g_broker, job, result);
}

static bool with_push_unchanged;   /* the next setup configures push_unchanged */

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    fx.auth.name = "Authorization";
    fx.auth.prefix = "Bearer ";
    fx.auth.suffix = "";
    struct gw_pool_config pc = { .instance = 77, .max_attempts = 3 };
    fx.pool = gw_pool_new(&pc, fake_send, on_result_tramp, NULL, &fx.stats);
    struct gw_broker_config bc = {
        .backend_url = "http://backend",
        .auth = &fx.auth,
        .fetch_timeout_ms = 5000,
        .max_page_bytes = 1 << 20,
        .max_message_bytes = 1 << 20,
        .max_subscriptions = 4,
        .push_unchanged = with_push_unchanged,
    };
    fx.b = gw_broker_new(&bc, fx.pool, fake_deliver, &fx.stats);
    g_broker = fx.b;
    /* One fetcher with plenty of credit. */
    struct wm_msg ready = { .type = WM_MSG_READY, .instance = 5 };
    ready.u.ready.credits = 100000;
    gw_pool_on_message(fx.pool, "F", 1, &ready);
    return 0;
}

static int setup_push_unchanged(void **state)
{
    with_push_unchanged = true;
    setup(state);
    with_push_unchanged = false;
    return 0;
}

static int teardown(void **state)
{
    gw_broker_free(&fx.b);
    gw_pool_free(&fx.pool);
    assert_int_equal(fx.stats.subscriptions, 0);
    assert_int_equal(fx.stats.groups, 0);
    assert_int_equal(fx.stats.topics, 0);
    assert_int_equal(fx.stats.jobs_in_flight, 0);
    assert_int_equal(fx.stats.jobs_queued, 0);
    for (size_t i = 0; i < fx.n_sent; i++)
        wm_msg_clear(&fx.sent[i]);
    for (size_t i = 0; i < fx.n_del; i++)
        gw_event_unref(&fx.del[i].ev);
    return 0;
}

/* The fetcher answers JOB number i (index into fx.sent) with body. */
static void reply(size_t i, const char *body)
{
    struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 5 };
    r.u.result.id = fx.sent[i].u.job.id;
    r.u.result.status = 200;
    r.u.result.body = (uint8_t *)wm_strdup(body);
    r.u.result.body_len = strlen(body);
    gw_pool_on_message(fx.pool, "F", 1, &r);
    wm_msg_clear(&r);
}

/* The fetcher answers JOB i with status, body (NULL: none) and up to two headers
 * (name, value pairs; NULL name ends them). */
static void reply_full(size_t i, int status, const char *body, const char *h1,
                       const char *v1, const char *h2, const char *v2)
{
    struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 5 };
    r.u.result.id = fx.sent[i].u.job.id;
    r.u.result.status = status;
    if (body) {
        r.u.result.body = (uint8_t *)wm_strdup(body);
        r.u.result.body_len = strlen(body);
    }
    r.u.result.headers = wm_calloc(2, sizeof *r.u.result.headers);
    const char *hv[2][2] = { { h1, v1 }, { h2, v2 } };
    for (size_t k = 0; k < 2 && hv[k][0]; k++) {
        r.u.result.headers[k].name = wm_strdup(hv[k][0]);
        r.u.result.headers[k].value = wm_strdup(hv[k][1]);
        r.u.result.n_headers++;
    }
    gw_pool_on_message(fx.pool, "F", 1, &r);
    wm_msg_clear(&r);
}

static const char *header(const struct wm_msg *job, const char *name)
{
    for (size_t i = 0; i < job->u.job.n_headers; i++)
        if (strcasecmp(job->u.job.headers[i].name, name) == 0)
            return job->u.job.headers[i].value;
    return NULL;
}

static size_t deliveries_to(void *session)
{
    size_t n = 0;
    for (size_t i = 0; i < fx.n_del; i++)
        n += fx.del[i].session == session;
    return n;
}

static void test_burst_coalesced(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "alice");
    uint64_t sub = 0;
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/users/1", NULL, false, &sub), 0);
    assert_true(sub >= 1 && sub <= (uint64_t)WAMP_ID_MAX);
    assert_int_equal(fx.n_sent, 0);   /* no snapshot asked: nothing fetched */

    for (int i = 0; i < 1000; i++)
        assert_int_equal(gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT), 1);
    assert_int_equal(fx.n_sent, 1);
    assert_int_equal(fx.stats.fetches_coalesced, 999);
    assert_string_equal(fx.sent[0].u.job.url, "http://backend/users/1");
    assert_string_equal(header(&fx.sent[0], "X-Waymark"), "1");
    assert_non_null(header(&fx.sent[0], "Accept"));
    assert_int_equal(fx.sent[0].u.job.timeout_ms, 5000);

    reply(0, "v1");
    assert_int_equal(fx.n_del, 1);
    assert_ptr_equal(fx.del[0].session, &s1);
    assert_true(fx.del[0].sub_id == sub);
    assert_false(fx.del[0].retained);
    assert_string_equal(fx.del[0].body, "v1");
    assert_int_equal(fx.n_sent, 2);   /* exactly one more: the pending one */

    reply(1, "v2");
    assert_int_equal(fx.n_del, 2);
    assert_string_equal(fx.del[1].body, "v2");
    assert_true(fx.del[1].ev->pub_id != fx.del[0].ev->pub_id);
    assert_int_equal(fx.n_sent, 2);   /* nothing pending any more */
    gw_broker_client_free(fx.b, &c);
    assert_null(c);
}

static void test_tokens_make_groups(void **state)
{
    struct gw_client *a1 = gw_broker_client_new(fx.b, &s1, "alice");
    struct gw_client *bob = gw_broker_client_new(fx.b, &s2, "bob");
    struct gw_client *a2 = gw_broker_client_new(fx.b, &s3, "alice");
    uint64_t id1, id2, id3;
    assert_int_equal(gw_broker_subscribe(fx.b, a1, "/users/1", NULL, false, &id1), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, bob, "/users/1", NULL, false, &id2), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, a2, "/users/1", NULL, false, &id3), 0);
    assert_true(id1 == id2 && id2 == id3);   /* one subscription id per topic */
    assert_int_equal(fx.stats.subscriptions, 3);
    assert_int_equal(fx.stats.topics, 1);
    assert_int_equal(fx.stats.groups, 2);

    gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    size_t ja = strcmp(header(&fx.sent[0], "Authorization"), "Bearer alice") == 0 ? 0 : 1;
    assert_string_equal(header(&fx.sent[ja], "Authorization"), "Bearer alice");
    assert_string_equal(header(&fx.sent[1 - ja], "Authorization"), "Bearer bob");

    reply(ja, "alice page");
    assert_int_equal(fx.n_del, 2);
    assert_int_equal(deliveries_to(&s2), 0);
    assert_ptr_equal(fx.del[0].ev, fx.del[1].ev);   /* one event shared */
    assert_true(fx.del[0].session != fx.del[1].session);
    reply(1 - ja, "bob page");
    assert_int_equal(fx.n_del, 3);
    assert_ptr_equal(fx.del[2].session, &s2);
    assert_string_equal(fx.del[2].body, "bob page");

    gw_broker_client_free(fx.b, &a1);
    assert_int_equal(fx.stats.groups, 2);
    gw_broker_client_free(fx.b, &a2);
    assert_int_equal(fx.stats.groups, 1);
    gw_broker_client_free(fx.b, &bob);
}

static void test_anonymous_has_no_auth(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, NULL);
    uint64_t id;
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/pub", NULL, true, &id), 0);
    assert_int_equal(fx.n_sent, 1);
    assert_null(header(&fx.sent[0], "Authorization"));
    assert_string_equal(header(&fx.sent[0], "X-Waymark"), "1");
}

static void test_query_matching(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t q, plain, other;
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/users/1?fields=name", NULL, false, &q), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/users/1", NULL, false, &plain), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/users/10", NULL, false, &other), 0);
    assert_true(q != plain && plain != other && q != other);

    assert_int_equal(gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT), 2);
    assert_int_equal(fx.n_sent, 2);
    bool saw_q = false, saw_plain = false;
    for (size_t i = 0; i < 2; i++) {
        saw_q |= strcmp(fx.sent[i].u.job.url, "http://backend/users/1?fields=name") == 0;
        saw_plain |= strcmp(fx.sent[i].u.job.url, "http://backend/users/1") == 0;
    }
    assert_true(saw_q && saw_plain);

    /* A bump with a query reaches only that exact topic. */
    assert_int_equal(gw_broker_bump(fx.b, "/users/1?a=1", WM_MATCH_EXACT), 0);
    assert_int_equal(gw_broker_bump(fx.b, "/users/1?fields=name", WM_MATCH_EXACT), 1);
    assert_int_equal(gw_broker_bump(fx.b, "/users/2", WM_MATCH_EXACT), 0);
    assert_int_equal(fx.n_sent, 2);   /* the second one only went pending */
    reply(0, "a");
    reply(1, "b");
    assert_int_equal(fx.n_sent, 3);
    assert_string_equal(fx.sent[2].u.job.url, "http://backend/users/1?fields=name");
    gw_broker_client_free(fx.b, &c);
}

static void test_prefix(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c, "/users/1", NULL, false, &id);
    gw_broker_subscribe(fx.b, c, "/users/2?x=1", NULL, false, &id);
    gw_broker_subscribe(fx.b, c, "/posts/1", NULL, false, &id);
    assert_int_equal(gw_broker_bump(fx.b, "/users/", WM_MATCH_PREFIX), 2);
    assert_int_equal(fx.n_sent, 2);
    for (size_t i = 0; i < 2; i++)
        assert_memory_equal(fx.sent[i].u.job.url, "http://backend/users/", 21);
    assert_int_equal(gw_broker_bump(fx.b, "/", WM_MATCH_PREFIX), 3);
}

static void test_unsubscribe_stops_delivery(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, false, &id);
    gw_broker_subscribe(fx.b, c2, "/a", NULL, false, &id);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(gw_broker_unsubscribe(fx.b, c1, id), 0);
    assert_int_equal(gw_broker_unsubscribe(fx.b, c1, id), -ENOENT);
    reply(0, "p");
    assert_int_equal(fx.n_del, 1);
    assert_ptr_equal(fx.del[0].session, &s2);

    /* The last member leaves with the job in flight: cancelled, nothing delivered. */
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    assert_int_equal(gw_broker_unsubscribe(fx.b, c2, id), 0);
    assert_int_equal(fx.stats.groups, 0);
    assert_int_equal(fx.stats.topics, 0);
    reply(1, "late");
    assert_int_equal(fx.n_del, 1);
    assert_int_equal(gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT), 0);

    /* Same with the job still queued (no credit): it is cancelled and freed at once. */
    struct wm_msg ready = { .type = WM_MSG_READY, .instance = 5 };
    ready.u.ready.credits = 0;
    gw_pool_on_message(fx.pool, "F", 1, &ready);
    gw_broker_subscribe(fx.b, c1, "/b", NULL, true, &id);
    assert_int_equal(fx.stats.jobs_queued, 1);
    assert_int_equal(gw_broker_unsubscribe(fx.b, c1, id), 0);
    assert_int_equal(fx.stats.jobs_queued, 0);
    assert_int_equal(fx.n_sent, 2);
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
}

static void test_snapshot_only_to_asker(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, false, &id);
    gw_broker_subscribe(fx.b, c2, "/a", NULL, true, &id);
    assert_int_equal(fx.n_sent, 1);
    reply(0, "snap");
    assert_int_equal(fx.n_del, 1);
    assert_ptr_equal(fx.del[0].session, &s2);
    assert_true(fx.del[0].retained);
    assert_int_equal(fx.n_sent, 1);

    /* Snapshot in flight, then a bump: the snapshot goes to the asker only, then a
     * fresh page to both. */
    uint64_t id2;
    assert_int_equal(gw_broker_subscribe(fx.b, c2, "/a", NULL, true, &id2), 0);   /* again */
    assert_true(id2 == id);
    assert_int_equal(fx.n_sent, 2);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    reply(1, "snap2");
    assert_int_equal(fx.n_del, 2);
    assert_ptr_equal(fx.del[1].session, &s2);
    assert_true(fx.del[1].retained);
    assert_int_equal(fx.n_sent, 3);
    reply(2, "bumped");
    assert_int_equal(fx.n_del, 4);
    assert_false(fx.del[2].retained);
    assert_false(fx.del[3].retained);
    assert_ptr_equal(fx.del[2].ev, fx.del[3].ev);

    /* Bump in flight, then a snapshot request: the bump page to both (not retained),
     * then the snapshot page to the asker; the next bump job covers a pending
     * snapshot with one page, retained only for the asker. */
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);          /* job 3 (bump) */
    gw_broker_subscribe(fx.b, c2, "/a", NULL, true, &id);      /* pending snapshot */
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);          /* pending bump */
    assert_int_equal(fx.n_sent, 4);
    reply(3, "b1");
    assert_int_equal(fx.n_del, 6);
    assert_false(fx.del[4].retained);
    assert_false(fx.del[5].retained);
    assert_int_equal(fx.n_sent, 5);                      /* job 4: bump + snapshot */
    reply(4, "b2");
    assert_int_equal(fx.n_del, 8);
    for (size_t i = 6; i < 8; i++) {
        if (fx.del[i].session == &s2)
            assert_true(fx.del[i].retained);
        else
            assert_false(fx.del[i].retained);
    }
    assert_int_equal(fx.n_sent, 5);
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
}

static void test_token_change(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "alice");
    uint64_t id;
    gw_broker_subscribe(fx.b, c, "/me", NULL, false, &id);
    gw_broker_client_set_token(fx.b, c, "carol");
    assert_int_equal(fx.n_sent, 0);   /* no fetch just for the change */
    assert_int_equal(fx.stats.groups, 1);
    gw_broker_bump(fx.b, "/me", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 1);
    assert_string_equal(header(&fx.sent[0], "Authorization"), "Bearer carol");
    reply(0, "carol's");
    assert_int_equal(fx.n_del, 1);

    /* A change while a bump's fetch is in flight: the old page must not arrive, the
     * owed one is fetched with the new token. */
    gw_broker_bump(fx.b, "/me", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    gw_broker_client_set_token(fx.b, c, "dave");
    assert_int_equal(fx.n_sent, 3);
    assert_string_equal(header(&fx.sent[2], "Authorization"), "Bearer dave");
    reply(1, "old token page");
    assert_int_equal(fx.n_del, 1);
    reply(2, "dave's");
    assert_int_equal(fx.n_del, 2);
    assert_string_equal(fx.del[1].body, "dave's");

    gw_broker_client_set_token(fx.b, c, NULL);   /* to anonymous */
    gw_broker_bump(fx.b, "/me", WM_MATCH_EXACT);
    assert_null(header(&fx.sent[3], "Authorization"));
    gw_broker_client_free(fx.b, &c);
}

static void test_subscription_limit(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t id;
    char topic[16];
    for (int i = 0; i < 4; i++) {
        snprintf(topic, sizeof topic, "/t/%d", i);
        assert_int_equal(gw_broker_subscribe(fx.b, c, topic, NULL, false, &id), 0);
    }
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/t/9", NULL, false, &id), -ENOSPC);
    assert_int_equal(fx.stats.subscribe_refused, 1);
    assert_int_equal(gw_broker_subscribe(fx.b, c, "/t/0", NULL, false, &id), 0);   /* already */
    assert_int_equal(fx.stats.subscriptions, 4);
    assert_int_equal(fx.stats.topics, 4);
    gw_broker_refresh_all(fx.b);
    assert_int_equal(fx.n_sent, 4);
    gw_broker_client_free(fx.b, &c);
    assert_int_equal(fx.stats.subscriptions, 0);
    assert_int_equal(fx.stats.topics, 0);
    assert_int_equal(fx.stats.jobs_in_flight, 4);   /* cancelled, freed at their RESULT */
    for (size_t i = 0; i < 4; i++)
        reply(i, "x");
    assert_int_equal(fx.n_del, 0);
}

static void test_session_closes_during_delivery(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    struct gw_client *c3 = gw_broker_client_new(fx.b, &s3, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, false, &id);
    gw_broker_subscribe(fx.b, c2, "/a", NULL, false, &id);
    gw_broker_subscribe(fx.b, c3, "/a", NULL, false, &id);
    /* Delivering to s1 closes session 2, which was next in line. */
    fx.close_on = &s1;
    fx.close_client = &c2;
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply(0, "p");
    assert_null(c2);
    assert_int_equal(fx.n_del, 2);
    assert_int_equal(deliveries_to(&s2), 0);
    assert_int_equal(deliveries_to(&s3), 1);

    /* Every member closes itself while its group is delivered: the group is freed
     * after the walk, pending work is dropped. */
    gw_broker_client_free(fx.b, &c3);
    fx.close_on = &s1;
    fx.close_client = &c1;
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);   /* pending */
    reply(1, "q");
    assert_null(c1);
    assert_int_equal(fx.n_del, 3);
    assert_int_equal(fx.n_sent, 2);
    assert_int_equal(fx.stats.groups, 0);
    assert_int_equal(fx.stats.topics, 0);
}

/* The Accept a subscription asked for is part of its group: the same token with
 * another Accept is another fetch, the same Accept (the default spelt out too) one. */
static void test_accept_makes_groups(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "alice");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "alice");
    struct gw_client *c3 = gw_broker_client_new(fx.b, &s3, "alice");
    uint64_t id1, id2, id3;
    assert_int_equal(gw_broker_subscribe(fx.b, c1, "/a", "text/html", false, &id1), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, c2, "/a", NULL, false, &id2), 0);
    assert_int_equal(gw_broker_subscribe(fx.b, c3, "/a", "*/*", false, &id3), 0);
    assert_true(id1 == id2 && id2 == id3);
    assert_int_equal(fx.stats.subscriptions, 3);
    assert_int_equal(fx.stats.topics, 1);
    assert_int_equal(fx.stats.groups, 2);

    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    size_t jh = strcmp(header(&fx.sent[0], "Accept"), "text/html") == 0 ? 0 : 1;
    assert_string_equal(header(&fx.sent[jh], "Accept"), "text/html");
    assert_string_equal(header(&fx.sent[1 - jh], "Accept"), "*/*");
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(header(&fx.sent[i], "Authorization"), "Bearer alice");

    reply(jh, "<p>html</p>");
    assert_int_equal(fx.n_del, 1);
    assert_ptr_equal(fx.del[0].session, &s1);
    reply(1 - jh, "any");
    assert_int_equal(fx.n_del, 3);
    assert_int_equal(deliveries_to(&s1), 1);
    assert_ptr_equal(fx.del[1].ev, fx.del[2].ev);   /* s2 and s3 share one event */

    /* A token change keeps the member's Accept. */
    gw_broker_client_set_token(fx.b, c1, "bob");
    assert_int_equal(fx.stats.groups, 2);
    gw_broker_client_set_token(fx.b, c2, "bob");
    assert_int_equal(fx.stats.groups, 3);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 5);
    bool saw_bob_html = false;
    for (size_t i = 2; i < 5; i++)
        saw_bob_html |= strcmp(header(&fx.sent[i], "Authorization"), "Bearer bob") == 0 &&
                        strcmp(header(&fx.sent[i], "Accept"), "text/html") == 0;
    assert_true(saw_bob_html);
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
    gw_broker_client_free(fx.b, &c3);
    assert_int_equal(fx.stats.groups, 0);
    assert_int_equal(fx.stats.subscriptions, 0);
}

/* One member per (session, topic): a later SUBSCRIBE with another Accept moves it, and
 * the page it was owed is fetched again with the new Accept. */
static void test_accept_resubscribe_moves(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    uint64_t id, again;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, false, &id);
    gw_broker_subscribe(fx.b, c2, "/a", NULL, false, &id);
    assert_int_equal(fx.stats.groups, 1);

    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);                /* job 0, in flight */
    assert_int_equal(fx.n_sent, 1);
    assert_int_equal(gw_broker_subscribe(fx.b, c1, "/a", "application/json", false, &again),
                     0);
    assert_true(again == id);
    assert_int_equal(fx.stats.groups, 2);
    assert_int_equal(fx.stats.subscriptions, 2);
    assert_int_equal(fx.n_sent, 2);                            /* owed page, as JSON */
    assert_string_equal(header(&fx.sent[1], "Accept"), "application/json");
    reply(0, "any");
    assert_int_equal(fx.n_del, 1);
    assert_ptr_equal(fx.del[0].session, &s2);
    reply(1, "{}");
    assert_int_equal(fx.n_del, 2);
    assert_ptr_equal(fx.del[1].session, &s1);
    assert_string_equal(fx.del[1].body, "{}");

    /* The same Accept again changes nothing. */
    gw_broker_subscribe(fx.b, c1, "/a", "application/json", false, &again);
    assert_int_equal(fx.stats.groups, 2);
    assert_int_equal(fx.n_sent, 2);

    /* Back to the default, with a snapshot: one group again, the snapshot as any type. */
    gw_broker_subscribe(fx.b, c1, "/a", NULL, true, &again);
    assert_int_equal(fx.stats.groups, 1);
    assert_int_equal(fx.stats.subscriptions, 2);
    assert_int_equal(fx.n_sent, 3);
    assert_string_equal(header(&fx.sent[2], "Accept"), "*/*");
    reply(2, "snap");
    assert_int_equal(fx.n_del, 3);
    assert_ptr_equal(fx.del[2].session, &s1);
    assert_true(fx.del[2].retained);

    /* Moving out of a group whose fetch is in flight, as its last member, cancels it. */
    gw_broker_unsubscribe(fx.b, c2, id);
    gw_broker_subscribe(fx.b, c1, "/a", NULL, true, &again);  /* job 3 */
    assert_int_equal(fx.n_sent, 4);
    gw_broker_subscribe(fx.b, c1, "/a", "text/plain", false, &again);
    assert_int_equal(fx.stats.groups, 1);
    assert_int_equal(fx.n_sent, 5);                            /* the snapshot, again */
    assert_string_equal(header(&fx.sent[4], "Accept"), "text/plain");
    reply(3, "stale");
    assert_int_equal(fx.n_del, 3);
    reply(4, "plain");
    assert_int_equal(fx.n_del, 4);
    assert_true(fx.del[3].retained);
    assert_string_equal(fx.del[3].body, "plain");
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
}

static void test_failed_job_delivers_504(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c, "/a", NULL, true, &id);
    struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 5 };
    r.u.result.id = fx.sent[0].u.job.id;
    r.u.result.status = 504;
    r.u.result.error = wm_strdup("timeout");
    gw_pool_on_message(fx.pool, "F", 1, &r);
    wm_msg_clear(&r);
    assert_int_equal(fx.n_del, 1);
    assert_int_equal(fx.del[0].ev->result.u.result.status, 504);
    assert_true(fx.del[0].retained);
    assert_int_equal(fx.stats.results_by_class[5], 1);
    gw_broker_client_free(fx.b, &c);
}

/* A refetch identical to the last page pushed (status, content-type, body) is not
 * pushed again; other headers do not count; a member new to the group still gets it;
 * a snapshot is always delivered. */
static void test_unchanged_not_pushed(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, false, &id);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(0, 200, "v1", "content-type", "text/plain", "date", "Mon");
    assert_int_equal(fx.n_del, 1);

    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(1, 200, "v1", "content-type", "text/plain", "date", "Tue");
    assert_int_equal(fx.n_del, 1);
    assert_int_equal(fx.stats.events_skipped_unchanged, 1);

    /* Same body, another content-type: news. Then another status: news. */
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(2, 200, "v1", "content-type", "text/html", NULL, NULL);
    assert_int_equal(fx.n_del, 2);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(3, 404, "v1", "content-type", "text/html", NULL, NULL);
    assert_int_equal(fx.n_del, 3);

    /* c2 joins the group: the unchanged page is still news to it, not to c1. */
    gw_broker_subscribe(fx.b, c2, "/a", NULL, false, &id);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(4, 404, "v1", "content-type", "text/html", NULL, NULL);
    assert_int_equal(fx.n_del, 4);
    assert_ptr_equal(fx.del[3].session, &s2);
    assert_int_equal(fx.stats.events_skipped_unchanged, 2);

    /* get_retained always gets its snapshot, unchanged or not. */
    gw_broker_subscribe(fx.b, c1, "/a", NULL, true, &id);
    reply_full(5, 404, "v1", "content-type", "text/html", NULL, NULL);
    assert_int_equal(fx.n_del, 5);
    assert_ptr_equal(fx.del[4].session, &s1);
    assert_true(fx.del[4].retained);

    /* A snapshot-only page that changed reaches only the asker; the other member gets
     * it on the next bump even though it is then unchanged for the group. */
    gw_broker_subscribe(fx.b, c1, "/a", NULL, true, &id);
    reply_full(6, 200, "v2", NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 6);
    assert_ptr_equal(fx.del[5].session, &s1);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(7, 200, "v2", NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 7);
    assert_ptr_equal(fx.del[6].session, &s2);
    assert_string_equal(fx.del[6].body, "v2");
    assert_int_equal(fx.n_sent, 8);
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
}

/* The validators of the last page go out on the next fetch; a 304 pushes nothing and
 * a snapshot it covers is served from the kept page. */
static void test_conditional_refetch(void **state)
{
    struct gw_client *c1 = gw_broker_client_new(fx.b, &s1, "t");
    struct gw_client *c2 = gw_broker_client_new(fx.b, &s2, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c1, "/a", NULL, true, &id);
    assert_null(header(&fx.sent[0], "If-None-Match"));
    reply_full(0, 200, "v1", "etag", "\"e1\"", "last-modified", "Mon, 01 Jan 2024");
    assert_int_equal(fx.n_del, 1);

    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_string_equal(header(&fx.sent[1], "If-None-Match"), "\"e1\"");
    assert_string_equal(header(&fx.sent[1], "If-Modified-Since"), "Mon, 01 Jan 2024");
    reply_full(1, 304, NULL, "etag", "\"e2\"", NULL, NULL);
    assert_int_equal(fx.n_del, 1);
    assert_int_equal(fx.stats.fetches_not_modified, 1);
    assert_int_equal(fx.stats.events_skipped_unchanged, 1);

    /* A snapshot answered 304 comes from the kept page; the 304's new ETag is used. */
    gw_broker_subscribe(fx.b, c2, "/a", NULL, true, &id);
    assert_string_equal(header(&fx.sent[2], "If-None-Match"), "\"e2\"");
    reply_full(2, 304, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 2);
    assert_ptr_equal(fx.del[1].session, &s2);
    assert_true(fx.del[1].retained);
    assert_int_equal(fx.del[1].ev->result.u.result.status, 200);
    assert_string_equal(fx.del[1].body, "v1");

    /* Changed: one push to each; without validators the next fetch is plain. */
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(3, 200, "v2", NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 4);
    assert_string_equal(fx.del[3].body, "v2");
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_null(header(&fx.sent[4], "If-None-Match"));
    assert_null(header(&fx.sent[4], "If-Modified-Since"));
    /* A 304 nobody asked for is a page like any other. */
    reply_full(4, 304, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 6);
    assert_int_equal(fx.stats.fetches_not_modified, 2);
    gw_broker_client_free(fx.b, &c1);
    gw_broker_client_free(fx.b, &c2);
}

/* A failed fetch is no page: pushed every time, and the page after it is news even when
 * it equals the one before the failure. */
static void test_failures_always_pushed(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c, "/a", NULL, false, &id);
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(0, 200, "v1", NULL, NULL, NULL, NULL);
    for (size_t i = 1; i <= 2; i++) {
        gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
        struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 5 };
        r.u.result.id = fx.sent[i].u.job.id;
        r.u.result.status = 502;
        r.u.result.error = wm_strdup("connection refused");
        gw_pool_on_message(fx.pool, "F", 1, &r);
        wm_msg_clear(&r);
        assert_int_equal(fx.n_del, i + 1);
        assert_int_equal(fx.del[i].ev->result.u.result.status, 502);
    }
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    reply_full(3, 200, "v1", NULL, NULL, NULL, NULL);
    assert_int_equal(fx.n_del, 4);
    assert_string_equal(fx.del[3].body, "v1");
    assert_int_equal(fx.stats.events_skipped_unchanged, 0);
    gw_broker_client_free(fx.b, &c);
}

/* push_unchanged: every refetch is pushed and no conditional GET is sent. */
static void test_push_unchanged(void **state)
{
    struct gw_client *c = gw_broker_client_new(fx.b, &s1, "t");
    uint64_t id;
    gw_broker_subscribe(fx.b, c, "/a", NULL, false, &id);
    for (size_t i = 0; i < 3; i++) {
        gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
        assert_null(header(&fx.sent[i], "If-None-Match"));
        reply_full(i, 200, "same", "etag", "\"e\"", NULL, NULL);
        assert_int_equal(fx.n_del, i + 1);
    }
    assert_int_equal(fx.stats.events_skipped_unchanged, 0);
    gw_broker_client_free(fx.b, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_make_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_has_no_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe_stops_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_only_to_asker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscription_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_closes_during_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_job_delivers_504, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_makes_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_resubscribe_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_not_pushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditional_refetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_always_pushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_unchanged, setup_push_unchanged, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

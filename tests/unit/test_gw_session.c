/* Unit tests for gw_session, driven through a real broker and pool with a recording
 * send callback and one fake fetcher: the ticket handshake, realm and auth failures,
 * SUBSCRIBED before the retained EVENT, latest-wins, no EVENT after UNSUBSCRIBED,
 * refresh, PUBLISH, protocol violations, the slow-client cap and shutdown. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_session.h"
#include "wm_buf.h"

#define MAX_SENT 64

static struct {
    struct gw_stats stats;
    struct gw_pool *pool;
    struct gw_broker *b;
    struct wm_auth_header auth;
    struct gw_session_env env;
    struct wm_msg sent[MAX_SENT];   /* decoded JOBs */
    size_t n_sent;
    int wakes, kills;
} fx;

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

static void on_result(void *ud, struct gw_job *job, struct wm_msg *result)
{
    gw_broker_on_result(fx.b, job, result);
}

static void io_want_write(void *t) { fx.wakes++; }
static void io_kill(void *t) { fx.kills++; }

static int setup(void **state)
{
    struct gw_pool_config pc = { .instance = 77, .max_attempts = 3 };
    struct gw_broker_config bc = {
        .backend_url = "http://backend", .auth = &fx.auth, .fetch_timeout_ms = 5000,
        .max_page_bytes = 1 << 20, .max_message_bytes = 1 << 20, .max_subscriptions = 3,
    };
    struct wm_msg ready = { .type = WM_MSG_READY, .instance = 5 };

    memset(&fx, 0, sizeof fx);
    fx.auth = (struct wm_auth_header){ "Authorization", "Bearer ", "" };
    fx.pool = gw_pool_new(&pc, fake_send, on_result, NULL, &fx.stats);
    fx.b = gw_broker_new(&bc, fx.pool, gw_session_deliver, &fx.stats);
    fx.env = (struct gw_session_env){
        .broker = fx.b, .stats = &fx.stats, .realm = "waymark", .allow_anonymous = false,
        .max_path = 2048, .queue_bytes = 1 << 20,
        .io = { io_want_write, io_kill },
    };
    ready.u.ready.credits = 1000;
    gw_pool_on_message(fx.pool, "F", 1, &ready);
    return 0;
}

static int teardown(void **state)
{
    gw_broker_free(&fx.b);
    gw_pool_free(&fx.pool);
    for (size_t i = 0; i < fx.n_sent; i++)
        wm_msg_clear(&fx.sent[i]);
    assert_int_equal(fx.stats.sessions, 0);
    return 0;
}

static void in(struct gw_session *s, const char *json)
{
    gw_session_on_message(s, json, strlen(json));
}

/* The next queued frame must equal want (compact JSON); "" means the queue is empty. */
static void out(struct gw_session *s, const char *want)
{
    bool is_event = false;
    struct gw_frame *f = gw_session_take_frame(s, &is_event);

    if (!*want) {
        assert_null(f);
        return;
    }
    assert_non_null(f);
    char got[2048];
    snprintf(got, sizeof got, "%.*s", (int)f->len, (const char *)gw_frame_payload(f));
    assert_string_equal(got, want);
    gw_frame_unref(&f);
}

/* Like out() for an EVENT, whose publication id is random: it must be in [1, 2^53] and
 * is compared as 0. */
static void out_event(struct gw_session *s, const char *want)
{
    struct gw_frame *f = gw_session_take_frame(s, NULL);
    json_t *ev;
    char *got;

    assert_non_null(f);
    ev = json_loadb((const char *)gw_frame_payload(f), f->len, 0, NULL);
    assert_non_null(ev);
    json_int_t pub = json_integer_value(json_array_get(ev, 2));
    assert_true(pub >= 1 && pub <= WAMP_ID_MAX);
    json_array_set_new(ev, 2, json_integer(0));
    got = json_dumps(ev, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    json_decref(ev);
    gw_frame_unref(&f);
}

/* Like out() for frames with a random part: only the prefix is compared. */
static void out_prefix(struct gw_session *s, const char *prefix)
{
    struct gw_frame *f = gw_session_take_frame(s, NULL);
    char got[2048];

    assert_non_null(f);
    snprintf(got, sizeof got, "%.*s", (int)f->len, (const char *)gw_frame_payload(f));
    if (strncmp(got, prefix, strlen(prefix)) != 0)
        fail_msg("got %s, want prefix %s", got, prefix);
    assert_null(strstr(got, "secret-token"));
    gw_frame_unref(&f);
}

static struct gw_session *joined(void)
{
    struct gw_session *s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");

    in(s, "[1,\"waymark\",{\"authmethods\":[\"ticket\"],\"authid\":\"bob\"}]");
    out(s, "[4,\"ticket\",{}]");
    in(s, "[5,\"secret-token\",{}]");
    out_prefix(s, "[2,");
    assert_int_equal(gw_session_state(s), GW_SESSION_ESTABLISHED);
    assert_true(gw_session_id(s) >= 1);
    return s;
}

/* The fetcher answers JOB i. */
static void reply(size_t i, const char *body)
{
    struct wm_msg r = { .type = WM_MSG_RESULT, .instance = 5 };

    assert_true(i < fx.n_sent);
    r.u.result.id = fx.sent[i].u.job.id;
    r.u.result.status = 200;
    r.u.result.body = (uint8_t *)wm_strdup(body);
    r.u.result.body_len = strlen(body);
    gw_pool_on_message(fx.pool, "F", 1, &r);
    wm_msg_clear(&r);
}

static void test_handshake(void **state)
{
    struct gw_session *s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");
    struct gw_frame *f;
    char text[1024];

    in(s, "[1,\"waymark\",{\"authmethods\":[\"ticket\"],\"authid\":\"bob\"}]");
    out(s, "[4,\"ticket\",{}]");
    in(s, "[5,\"secret-token\",{}]");
    f = gw_session_take_frame(s, NULL);
    assert_non_null(f);
    snprintf(text, sizeof text, "%.*s", (int)f->len, (const char *)gw_frame_payload(f));
    gw_frame_unref(&f);
    assert_non_null(strstr(text, "\"authid\":\"bob\""));
    assert_non_null(strstr(text, "\"authrole\":\"user\""));
    assert_non_null(strstr(text, "\"authmethod\":\"ticket\""));
    assert_non_null(strstr(text, "\"roles\":{\"broker\":{\"features\":{\"event_retention\":true}},\"dealer\":{\"features\":{}}}"));
    assert_null(strstr(text, "secret-token"));
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_NONE);
    in(s, "[6,{},\"wamp.close.close_realm\"]");
    out(s, "[6,{},\"wamp.close.goodbye_and_out\"]");
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_AFTER_FLUSH);
    gw_session_free(&s);
    assert_null(s);
}

static void test_refusals(void **state)
{
    struct gw_session *s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");

    in(s, "[1,\"other\",{}]");
    out(s, "[3,{\"message\":\"no such realm\"},\"wamp.error.no_such_realm\"]");
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_AFTER_FLUSH);
    in(s, "[1,\"waymark\",{}]");   /* ignored once closing */
    out(s, "");
    gw_session_free(&s);

    s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");
    in(s, "[1,\"waymark\",{\"authmethods\":[\"anonymous\"]}]");
    out(s, "[3,{\"message\":\"authentication required (ticket)\"},\"wamp.error.not_authorized\"]");
    gw_session_free(&s);

    fx.env.allow_anonymous = true;
    s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");
    in(s, "[1,\"waymark\",{}]");
    out_prefix(s, "[2,");
    assert_int_equal(gw_session_state(s), GW_SESSION_ESTABLISHED);
    gw_session_free(&s);

    s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");
    in(s, "[1,\"waymark\",{\"authmethods\":[\"ticket\"]}]");
    out(s, "[4,\"ticket\",{}]");
    in(s, "[5,\"bad\\u0001token\",{}]");
    out(s, "[3,{\"message\":\"invalid ticket\"},\"wamp.error.authentication_failed\"]");
    assert_int_equal(fx.stats.auth_failed, 2);
    gw_session_free(&s);
}

static void test_violations(void **state)
{
    static const char *const bad[] = {
        "{not json", "[]", "{}", "[32,1,{},\"/a\"]", "[1]", "[1,\"waymark\",[]]",
    };
    static const char *const bad_established[] = {
        "[32,0,{},\"/a\"]", "[32,9007199254740993,{},\"/a\"]", "[32,1.5,{},\"/a\"]",
        "[32,1,[],\"/a\"]", "[32,1,{},7]", "[34,1]", "[1,\"waymark\",{}]", "[36,1,2,{}]",
        "[48,1,{},\"p\",{}]",
    };
    struct gw_session *s;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = gw_session_new(&fx.env, GW_SER_JSON, NULL, "test");
        in(s, bad[i]);
        out_prefix(s, "[3,{\"message\":");
        assert_int_equal(gw_session_close_kind(s), GW_CLOSE_AFTER_FLUSH);
        gw_session_free(&s);
    }
    for (size_t i = 0; i < sizeof bad_established / sizeof bad_established[0]; i++) {
        s = joined();
        in(s, bad_established[i]);
        struct gw_frame *f = gw_session_take_frame(s, NULL);
        assert_non_null(f);
        if (!strstr((const char *)gw_frame_payload(f), "wamp.error.protocol_violation"))
            fail_msg("no violation for %s", bad_established[i]);
        gw_frame_unref(&f);
        gw_session_free(&s);
    }
    /* A client that sends but never reads: its replies pile up to the control cap. */
    s = joined();
    char msg[64];
    for (int i = 1; i <= GW_SESSION_MAX_CONTROL + 10; i++) {
        snprintf(msg, sizeof msg, "[48,%d,{},\"nope\"]", i);
        in(s, msg);
    }
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_AFTER_FLUSH);
    for (int i = 1; i <= GW_SESSION_MAX_CONTROL; i++)
        out_prefix(s, "[8,48,");
    out(s, "[3,{\"message\":\"too many unread replies\"},\"wamp.error.protocol_violation\"]");
    out(s, "");
    gw_session_free(&s);

    /* The largest id is fine. */
    s = joined();
    in(s, "[32,9007199254740992,{},\"/a\"]");
    out_prefix(s, "[33,9007199254740992,");
    gw_session_free(&s);
}

static void test_subscribe_event_unsubscribe(void **state)
{
    struct gw_session *s = joined();
    char want[256];

    in(s, "[32,7,{\"get_retained\":true},\"/users/1\"]");
    out(s, "[33,7,1]");
    assert_int_equal(fx.n_sent, 1);
    assert_string_equal(fx.sent[0].u.job.url, "http://backend/users/1");
    reply(0, "one");
    out_event(s, "[36,1,0,{\"topic\":\"/users/1\",\"retained\":true},[],{\"status\":200,\"headers\":{},\"body\":\"one\"}]");
    assert_int_equal(fx.stats.events_replaced, 0);

    /* Two pages before the client reads: only the newer one is sent. */
    gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT);
    reply(1, "two");
    gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT);
    reply(2, "three");
    assert_int_equal(fx.stats.events_replaced, 1);
    out_event(s, "[36,1,0,{\"topic\":\"/users/1\"},[],{\"status\":200,\"headers\":{},\"body\":\"three\"}]");
    out(s, "");

    /* A queued page is dropped by UNSUBSCRIBE; nothing follows UNSUBSCRIBED. */
    gw_broker_bump(fx.b, "/users/1", WM_MATCH_EXACT);
    reply(3, "four");
    in(s, "[34,8,1]");
    out(s, "[35,8]");
    out(s, "");
    in(s, "[34,9,1]");
    out(s, "[8,34,9,{},\"wamp.error.no_such_subscription\"]");

    /* Bad topics and options. */
    in(s, "[32,10,{},\"http://x/y\"]");
    snprintf(want, sizeof want, "[8,32,10,{},\"wamp.error.invalid_uri\",[\"must start with /\"]]");
    out(s, want);
    in(s, "[32,11,{\"match\":\"prefix\"},\"/a\"]");
    out(s, "[8,32,11,{},\"wamp.error.invalid_argument\",[\"only exact matching is supported\"]]");
    in(s, "[32,12,{},\"/a\"]");
    in(s, "[32,13,{},\"/b\"]");
    in(s, "[32,14,{},\"/c\"]");
    in(s, "[32,15,{},\"/d\"]");
    out_prefix(s, "[33,12,");
    out_prefix(s, "[33,13,");
    out_prefix(s, "[33,14,");
    out_prefix(s, "[8,32,15,{},\"waymark.error.too_many_subscriptions\"");
    gw_session_free(&s);
    assert_int_equal(fx.stats.subscriptions, 0);
}

/* SUBSCRIBE option _accept (alias accept) sets the Accept header of the fetches; a value
 * that could not go into a header is refused before it reaches the broker. */
static void test_subscribe_accept(void **state)
{
    struct gw_session *s = joined();
    char msg[512], want[256], longv[301];
    const char *bad[][2] = {
        { "{\"_accept\":\"a\\nb\"}", "accept must be printable ASCII" },
        { "{\"_accept\":\"a\\u0000b\"}", "accept must be printable ASCII" },
        { "{\"accept\":\"t\\u00e9xt/html\"}", "accept must be printable ASCII" },
        { "{\"_accept\":\"\"}", "accept must be 1 to 256 bytes" },
        { "{\"_accept\":5}", "accept must be a string" },
        { "{\"_accept\":null}", "accept must be a string" },
    };

    in(s, "[32,1,{\"_accept\":\"text/html\"},\"/a\"]");
    out_prefix(s, "[33,1,");
    in(s, "[32,2,{\"accept\":\"application/json\",\"get_retained\":true},\"/b\"]");
    out_prefix(s, "[33,2,");
    assert_int_equal(fx.n_sent, 1);
    assert_string_equal(fx.sent[0].u.job.url, "http://backend/b");
    for (size_t i = 0; i < fx.sent[0].u.job.n_headers; i++)
        if (strcmp(fx.sent[0].u.job.headers[i].name, "Accept") == 0)
            assert_string_equal(fx.sent[0].u.job.headers[i].value, "application/json");
    gw_broker_bump(fx.b, "/a", WM_MATCH_EXACT);
    assert_int_equal(fx.n_sent, 2);
    bool seen = false;
    for (size_t i = 0; i < fx.sent[1].u.job.n_headers; i++) {
        if (strcmp(fx.sent[1].u.job.headers[i].name, "Accept") == 0) {
            assert_string_equal(fx.sent[1].u.job.headers[i].value, "text/html");
            seen = true;
        }
    }
    assert_true(seen);

    uint64_t refused = fx.stats.subscribe_refused;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(msg, sizeof msg, "[32,%zu,%s,\"/c\"]", 10 + i, bad[i][0]);
        in(s, msg);
        snprintf(want, sizeof want, "[8,32,%zu,{},\"wamp.error.invalid_argument\",[\"%s\"]]",
                 10 + i, bad[i][1]);
        out(s, want);
    }
    memset(longv, 'x', 300);
    longv[300] = '\0';
    snprintf(msg, sizeof msg, "[32,20,{\"_accept\":\"%s\"},\"/c\"]", longv);
    in(s, msg);
    out(s, "[8,32,20,{},\"wamp.error.invalid_argument\",[\"accept must be 1 to 256 bytes\"]]");
    assert_int_equal(fx.stats.subscribe_refused, refused + 7);
    assert_int_equal(fx.stats.subscriptions, 2);
    assert_int_equal(gw_session_state(s), GW_SESSION_ESTABLISHED);
    gw_session_free(&s);
    assert_int_equal(fx.stats.subscriptions, 0);
}

static void test_calls_and_publish(void **state)
{
    struct gw_session *s = joined();

    in(s, "[48,1,{},\"waymark.auth.refresh\",[\"new-token\"]]");
    out(s, "[50,1,{}]");
    in(s, "[48,2,{},\"waymark.auth.refresh\",[]]");
    out(s, "[8,48,2,{},\"wamp.error.invalid_argument\",[\"expected [token]\"]]");
    in(s, "[48,3,{},\"other.proc\",[1],{}]");
    out(s, "[8,48,3,{},\"wamp.error.no_such_procedure\"]");
    in(s, "[16,4,{},\"/a\",[1]]");
    out(s, "");   /* no answer to an unacknowledged PUBLISH */
    in(s, "[16,5,{\"acknowledge\":true},\"/a\"]");
    out(s, "[8,16,5,{},\"wamp.error.not_authorized\",[\"clients cannot publish\"]]");
    in(s, "[64,6,{},\"p\"]");
    out(s, "[8,64,6,{},\"wamp.error.not_authorized\",[\"clients cannot register\"]]");
    in(s, "[49,1,{}]");
    out(s, "");
    assert_int_equal(fx.stats.publishes_refused, 2);

    /* The new token is used for later fetches. */
    in(s, "[32,7,{\"get_retained\":true},\"/u\"]");
    out_prefix(s, "[33,7,");
    assert_int_equal(fx.n_sent, 1);
    bool found = false;
    for (size_t i = 0; i < fx.sent[0].u.job.n_headers; i++)
        if (strcmp(fx.sent[0].u.job.headers[i].value, "Bearer new-token") == 0)
            found = true;
    assert_true(found);
    reply(0, "x");
    gw_session_free(&s);
}

static void test_slow_client_and_shutdown(void **state)
{
    struct gw_session *s = joined();

    fx.env.queue_bytes = 150;   /* one small EVENT fits, two do not */
    in(s, "[32,1,{\"get_retained\":true},\"/a\"]");
    in(s, "[32,2,{\"get_retained\":true},\"/b\"]");
    out_prefix(s, "[33,1,");
    out_prefix(s, "[33,2,");
    reply(0, "page a");
    assert_int_equal(fx.kills, 0);
    reply(1, "page b");
    assert_int_equal(fx.kills, 1);
    assert_int_equal(fx.stats.slow_clients_closed, 1);
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_NOW);
    out(s, "");
    gw_session_free(&s);

    fx.env.queue_bytes = 1 << 20;
    s = joined();
    gw_session_shutdown(s);
    out(s, "[6,{},\"wamp.close.system_shutdown\"]");
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_NONE);   /* waits for the reply */
    in(s, "[6,{},\"wamp.close.goodbye_and_out\"]");
    assert_int_equal(gw_session_close_kind(s), GW_CLOSE_AFTER_FLUSH);
    out(s, "");
    gw_session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_violations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_event_unsubscribe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls_and_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_and_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

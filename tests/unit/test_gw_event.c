/* Unit tests for gw_event: frames (headroom, refcounts), events taking ownership of a
 * RESULT, the per-[ser][retained] frame cache and the 502 substitute for pages over the
 * message cap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_event.h"

/* A RESULT as wm_msg_decode would hand it over: every field heap-owned. */
static struct wm_msg make_result(int status, const char *body, size_t body_len,
                                 const char *error)
{
    struct wm_msg m = {.type = WM_MSG_RESULT};

    m.u.result.id = 42;
    m.u.result.status = status;
    m.u.result.n_headers = 2;
    m.u.result.headers = wm_calloc(2, sizeof(struct wm_header));
    m.u.result.headers[0] = (struct wm_header){wm_strdup("content-type"),
                                               wm_strdup("text/plain")};
    m.u.result.headers[1] = (struct wm_header){wm_strdup("etag"), wm_strdup("\"v1\"")};
    if (body_len) {
        m.u.result.body = wm_malloc(body_len);
        memcpy(m.u.result.body, body, body_len);
        m.u.result.body_len = body_len;
    }
    m.u.result.error = error ? wm_strdup(error) : NULL;
    return m;
}

static json_t *frame_decode(struct gw_frame *f, enum gw_ser ser)
{
    const char *why = NULL;
    json_t *v = gw_wamp_decode(ser, gw_frame_payload(f), f->len, &why);
    if (!v)
        fail_msg("frame does not decode: %s", why);
    return v;
}

static void test_frame_new(void **state)
{
    struct gw_frame *f = gw_frame_new(GW_SER_JSON, "[1]", 3);
    assert_non_null(f);
    assert_int_equal(f->refs, 1);
    assert_false(f->binary);
    assert_int_equal(f->len, 3);
    assert_ptr_equal(gw_frame_payload(f), f->buf + LWS_PRE);
    assert_memory_equal(gw_frame_payload(f), "[1]", 3);

    struct gw_frame *g = gw_frame_ref(f);
    assert_ptr_equal(g, f);
    assert_int_equal(f->refs, 2);
    gw_frame_unref(&g);
    assert_null(g);
    assert_int_equal(f->refs, 1);
    gw_frame_unref(&f);
    assert_null(f);
    gw_frame_unref(&f);   /* NULL-safe */
    gw_frame_unref(NULL);
    assert_null(gw_frame_ref(NULL));

    f = gw_frame_new(GW_SER_MSGPACK, NULL, 0);
    assert_non_null(f);
    assert_true(f->binary);
    assert_int_equal(f->len, 0);
    gw_frame_unref(&f);
    assert_null(gw_frame_new(GW_SER_MSGPACK, NULL, 5));
}

static void test_frame_from_json(void **state)
{
    json_t *msg = json_pack("[i{s{s{}s{}}}]", 2, "roles", "broker", "dealer");
    for (int ser = 0; ser < 2; ser++) {
        struct gw_frame *f = gw_frame_from_json(ser, msg);
        assert_non_null(f);
        assert_int_equal(f->binary, ser == GW_SER_MSGPACK);
        json_t *back = frame_decode(f, ser);
        assert_true(json_equal(back, msg));
        json_decref(back);
        gw_frame_unref(&f);
    }
    json_decref(msg);
    msg = json_object();
    assert_null(gw_frame_from_json(GW_SER_JSON, msg));
    assert_null(gw_frame_from_json(GW_SER_MSGPACK, msg));
    json_decref(msg);
}

static void test_event_owns_result(void **state)
{
    struct wm_msg r = make_result(200, "hello", 5, NULL);
    struct gw_event *e = gw_event_new(7, 9, "/users/1", &r, 1 << 20);

    assert_non_null(e);
    assert_int_equal(e->refs, 1);
    assert_null(r.u.result.headers);   /* cleared: the event owns it now */
    assert_null(r.u.result.body);
    assert_int_equal(e->result.u.result.status, 200);
    assert_string_equal(e->topic, "/users/1");

    assert_ptr_equal(gw_event_ref(e), e);
    assert_int_equal(e->refs, 2);
    struct gw_event *e2 = e;
    gw_event_unref(&e2);
    assert_null(e2);
    gw_event_unref(&e);
    assert_null(e);
    gw_event_unref(&e);
    gw_event_unref(NULL);

    /* NULL topic: nothing created, the result is still consumed. */
    r = make_result(200, "x", 1, NULL);
    assert_null(gw_event_new(1, 1, NULL, &r, 0));
    assert_null(r.u.result.body);
    assert_null(gw_event_new(1, 1, "/t", NULL, 0));
}

static void test_event_frame_cache(void **state)
{
    static const char body[] = "{\"name\":\"Bob \\u00e9\"}\n";
    struct wm_msg r = make_result(200, body, sizeof body - 1, NULL);
    struct gw_event *e = gw_event_new(713, 9007199254740992ULL, "/users/1", &r, 1 << 20);
    struct gw_frame *seen[2][2];
    bool too_large = true;

    for (int ser = 0; ser < 2; ser++)
        for (int ret = 0; ret < 2; ret++) {
            struct gw_frame *f = gw_event_frame(e, ser, ret, &too_large);
            assert_non_null(f);
            assert_false(too_large);
            assert_int_equal(f->binary, ser == GW_SER_MSGPACK);
            /* Cached: the same frame again, not a new encoding. */
            assert_ptr_equal(gw_event_frame(e, ser, ret, NULL), f);
            assert_int_equal(f->refs, 1);
            seen[ser][ret] = f;

            json_t *v = frame_decode(f, ser);
            assert_int_equal(json_integer_value(json_array_get(v, 0)), WAMP_EVENT);
            assert_int_equal(json_integer_value(json_array_get(v, 1)), 713);
            assert_true(json_integer_value(json_array_get(v, 2)) == 9007199254740992LL);
            json_t *det = json_array_get(v, 3);
            assert_string_equal(json_string_value(json_object_get(det, "topic")),
                                "/users/1");
            if (ret)
                assert_true(json_is_true(json_object_get(det, "retained")));
            else
                assert_null(json_object_get(det, "retained"));
            json_t *kw = json_array_get(v, 5);
            assert_int_equal(json_integer_value(json_object_get(kw, "status")), 200);
            assert_string_equal(json_string_value(json_object_get(kw, "body")), body);
            assert_string_equal(json_string_value(json_object_get(
                json_object_get(kw, "headers"), "etag")), "\"v1\"");
            assert_null(json_object_get(kw, "error"));
            json_decref(v);
        }
    assert_ptr_not_equal(seen[0][0], seen[0][1]);
    assert_ptr_not_equal(seen[0][0], seen[1][0]);
    assert_null(gw_event_frame(e, 3, false, NULL));
    assert_null(gw_event_frame(NULL, GW_SER_JSON, false, NULL));

    /* A session keeps its frame after the event is gone. */
    struct gw_frame *kept = gw_frame_ref(seen[1][0]);
    gw_event_unref(&e);
    assert_int_equal(kept->refs, 1);
    json_t *v = frame_decode(kept, GW_SER_MSGPACK);
    json_decref(v);
    gw_frame_unref(&kept);
}

static void test_event_too_large(void **state)
{
    enum { BODY = 5000, CAP = 4096 };
    char *body = malloc(BODY);
    memset(body, 'x', BODY);
    body[0] = (char)0xff;   /* binary: base64 in JSON, bin in msgpack */
    struct wm_msg r = make_result(200, body, BODY, NULL);
    struct gw_event *e = gw_event_new(1, 2, "/big", &r, CAP);
    free(body);

    for (int ser = 0; ser < 2; ser++) {
        bool too_large = false;
        struct gw_frame *f = gw_event_frame(e, ser, false, &too_large);
        assert_non_null(f);
        assert_true(too_large);
        assert_true(f->len <= CAP);
        json_t *v = frame_decode(f, ser);
        json_t *kw = json_array_get(v, 5);
        assert_int_equal(json_integer_value(json_object_get(kw, "status")), 502);
        assert_int_equal(json_object_size(json_object_get(kw, "headers")), 0);
        const char *b = json_string_value(json_object_get(kw, "body"));
        size_t n = 0, limit = 0;
        assert_int_equal(sscanf(b, "page too large: %zu bytes (limit %zu)", &n, &limit),
                         2);
        assert_int_equal(limit, CAP);
        /* JSON: base64 of 5000 bytes plus the envelope; msgpack: 5000 plus it. */
        assert_true(n > (ser == GW_SER_JSON ? 6668u : 5000u));
        assert_string_equal(json_string_value(json_object_get(kw, "error")), b);
        json_decref(v);

        /* The substitute is cached; only the call that made it reports it. */
        too_large = true;
        assert_ptr_equal(gw_event_frame(e, ser, false, &too_large), f);
        assert_false(too_large);
    }
    gw_event_unref(&e);

    /* Exactly at the cap is fine; max_message 0 means no cap. */
    r = make_result(200, "abc", 3, NULL);
    e = gw_event_new(1, 2, "/t", &r, 0);
    struct gw_frame *f = gw_event_frame(e, GW_SER_JSON, false, NULL);
    size_t exact = f->len;
    gw_event_unref(&e);
    r = make_result(200, "abc", 3, NULL);
    e = gw_event_new(1, 2, "/t", &r, exact);
    bool too_large = true;
    f = gw_event_frame(e, GW_SER_JSON, false, &too_large);
    assert_false(too_large);
    assert_int_equal(f->len, exact);
    gw_event_unref(&e);
}

/* A fetch failure (error set, empty body) and ids the encoder refuses. */
static void test_event_error_and_bad_ids(void **state)
{
    struct wm_msg r = make_result(504, NULL, 0, "timeout after 10000 ms");
    struct gw_event *e = gw_event_new(3, 4, "/slow", &r, 1 << 20);
    struct gw_frame *f = gw_event_frame(e, GW_SER_MSGPACK, true, NULL);
    json_t *v = frame_decode(f, GW_SER_MSGPACK);
    json_t *kw = json_array_get(v, 5);
    assert_int_equal(json_integer_value(json_object_get(kw, "status")), 504);
    assert_string_equal(json_string_value(json_object_get(kw, "body")), "");
    assert_string_equal(json_string_value(json_object_get(kw, "error")),
                        "timeout after 10000 ms");
    json_decref(v);
    gw_event_unref(&e);

    r = make_result(200, "x", 1, NULL);
    e = gw_event_new(0, 4, "/t", &r, 0);   /* id 0 is outside [1, 2^53] */
    assert_null(gw_event_frame(e, GW_SER_JSON, false, NULL));
    assert_null(e->frame[GW_SER_JSON][0]);
    gw_event_unref(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_new),
        cmocka_unit_test(test_frame_from_json),
        cmocka_unit_test(test_event_owns_result),
        cmocka_unit_test(test_event_frame_cache),
        cmocka_unit_test(test_event_too_large),
        cmocka_unit_test(test_event_error_and_bad_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for gw_wamp: decoding every message shape the gateway receives in both
 * serializers, malformed input, encode round trips, and the hand-written EVENT encoder
 * checked by decoding its bytes with jansson and msgpack-c. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "../../gateway/gw_wamp.h"

#define ID53 9007199254740992ULL

/* ---- helpers ---------------------------------------------------------------------- */

static json_t *dec_json(const char *s, const char **why)
{
    return gw_wamp_decode(GW_SER_JSON, s, strlen(s), why);
}

/* Packs the jansson value with msgpack-c's own packer (independent of the code under
 * test) so the decoder sees bytes a real client library would produce. */
static void pack_json(msgpack_packer *pk, const json_t *v)
{
    size_t i;
    const char *k;
    json_t *item;

    switch (json_typeof(v)) {
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        json_array_foreach(v, i, item)
            pack_json(pk, item);
        break;
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(v));
        json_object_foreach((json_t *)v, k, item) {
            msgpack_pack_str_with_body(pk, k, strlen(k));
            pack_json(pk, item);
        }
        break;
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

/* Decodes the JSON text with gw_wamp as JSON, and its msgpack form as msgpack; both
 * must equal what jansson itself parses. Returns the msgpack result. */
static json_t *dec_both(const char *text)
{
    const char *why = NULL;
    json_t *ref = json_loads(text, 0, NULL);
    msgpack_sbuffer sb;
    msgpack_packer pk;

    assert_non_null(ref);
    json_t *j = dec_json(text, &why);
    assert_non_null(j);
    assert_null(why);
    assert_true(json_equal(ref, j));

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_json(&pk, ref);
    json_t *m = gw_wamp_decode(GW_SER_MSGPACK, sb.data, sb.size, &why);
    msgpack_sbuffer_destroy(&sb);
    assert_non_null(m);
    assert_true(json_equal(ref, m));
    json_decref(ref);
    json_decref(j);
    return m;
}

static json_t *dec_mp(const void *bytes, size_t len, const char **why)
{
    return gw_wamp_decode(GW_SER_MSGPACK, bytes, len, why);
}

static void expect_fail(enum gw_ser ser, const void *data, size_t len, const char *reason)
{
    const char *why = NULL;
    json_t *v = gw_wamp_decode(ser, data, len, &why);
    assert_null(v);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

/* ---- decode: shapes --------------------------------------------------------------- */

static void test_decode_hello(void **state)
{
    json_t *m = dec_both("[1,\"waymark\",{\"roles\":{\"subscriber\":{\"features\":"
                         "{\"publisher_identification\":true}},\"caller\":{}},"
                         "\"authmethods\":[\"ticket\",\"anonymous\"],"
                         "\"authid\":\"bob\"}]");
    json_t *details = json_array_get(m, 2);

    assert_int_equal(json_integer_value(json_array_get(m, 0)), WAMP_HELLO);
    assert_string_equal(json_string_value(json_array_get(m, 1)), "waymark");
    assert_true(json_is_object(json_object_get(json_object_get(details, "roles"),
                                               "subscriber")));
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(details, "authmethods"), 0)), "ticket");
    json_decref(m);
}

static void test_decode_shapes(void **state)
{
    static const char *const shapes[] = {
        "[5,\"s3cr\\u00e9t token\",{}]",                        /* AUTHENTICATE */
        "[32,713,{\"get_retained\":true},\"/users/1\"]",       /* SUBSCRIBE */
        "[32,9007199254740992,{},\"/users/1?fields=name\"]",
        "[34,714,5512315355]",                                 /* UNSUBSCRIBE */
        "[48,7,{},\"waymark.auth.refresh\",[\"newtok\"]]",      /* CALL */
        "[48,8,{\"receive_progress\":false},\"x.y\",[],{\"a\":[1,2,{\"b\":null}]}]",
        "[16,239,{\"acknowledge\":true},\"/users/1\",[1.5,-2]]",  /* PUBLISH */
        "[6,{\"message\":\"bye\"},\"wamp.close.system_shutdown\"]",  /* GOODBYE */
        "[3,{},\"wamp.error.canceled\"]",                      /* ABORT */
        "[8,48,7,{},\"wamp.error.x\"]",                        /* ERROR */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        json_decref(dec_both(shapes[i]));

    json_t *m = dec_both("[32,713,{\"get_retained\":true},\"/users/1\"]");
    assert_int_equal(json_integer_value(json_array_get(m, 1)), 713);
    assert_true(json_is_true(json_object_get(json_array_get(m, 2), "get_retained")));
    assert_string_equal(json_string_value(json_array_get(m, 3)), "/users/1");
    json_decref(m);
}

/* Ids in every msgpack integer width a client may choose, and negatives. */
static void test_decode_msgpack_int_widths(void **state)
{
    static const uint8_t msg[] = {
        0x9a, 0x20,                                             /* [32, */
        0xcc, 0x07,                                             /* uint8 7 */
        0xcd, 0x01, 0x00,                                       /* uint16 256 */
        0xce, 0x00, 0x01, 0x00, 0x00,                           /* uint32 65536 */
        0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,   /* uint64 2^53 */
        0xd0, 0xff,                                             /* int8 -1 */
        0xd1, 0x00, 0x05,                                       /* int16 5 */
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,                        /* int64 min */
        0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* INT64_MAX */
        0xe0,                                                   /* fixint -32 */
    };
    const char *why = NULL;
    json_t *m = dec_mp(msg, sizeof msg, &why);
    static const json_int_t want[] = {32, 7, 256, 65536, 9007199254740992LL, -1, 5,
                                      INT64_MIN, INT64_MAX, -32};

    assert_non_null(m);
    assert_int_equal(json_array_size(m), 10);
    for (size_t i = 0; i < 10; i++) {
        assert_true(json_is_integer(json_array_get(m, i)));
        assert_true(json_integer_value(json_array_get(m, i)) == want[i]);
    }
    json_decref(m);
}

/* An option given as a msgpack extension counts as absent; in an array it keeps its
 * position as null. bin becomes a string of the same bytes; floats become reals. */
static void test_decode_msgpack_types(void **state)
{
    const char *why = NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, 32);
    msgpack_pack_uint16(&pk, 713);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "get_retained", 12);
    msgpack_pack_ext_with_body(&pk, "\x01", 1, 7);
    msgpack_pack_str_with_body(&pk, "match", 5);
    msgpack_pack_str_with_body(&pk, "exact", 5);
    msgpack_pack_str_with_body(&pk, "/users/1", 8);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_ext_with_body(&pk, "ab", 2, 1);
    msgpack_pack_bin_with_body(&pk, "\xff\x00\x80", 3);
    msgpack_pack_bin_with_body(&pk, "", 0);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, -0.25);

    json_t *m = dec_mp(sb.data, sb.size, &why);
    msgpack_sbuffer_destroy(&sb);
    assert_non_null(m);
    json_t *opts = json_array_get(m, 2);
    assert_int_equal(json_object_size(opts), 1);
    assert_null(json_object_get(opts, "get_retained"));
    assert_string_equal(json_string_value(json_object_get(opts, "match")), "exact");
    json_t *args = json_array_get(m, 4);
    assert_int_equal(json_array_size(args), 3);
    assert_true(json_is_null(json_array_get(args, 0)));
    assert_int_equal(json_string_length(json_array_get(args, 1)), 3);
    assert_memory_equal(json_string_value(json_array_get(args, 1)), "\xff\x00\x80", 3);
    assert_int_equal(json_string_length(json_array_get(args, 2)), 0);
    assert_true(json_is_real(json_array_get(m, 5)));
    assert_true(json_real_value(json_array_get(m, 5)) == 1.5);
    assert_true(json_real_value(json_array_get(m, 6)) == -0.25);
    json_decref(m);
}

/* ---- decode: malformed ------------------------------------------------------------ */

/* [1,[1,[1,...]]]: depth arrays in all, each non-empty. */
static void nested(struct wm_buf *b, int depth, bool msgpack)
{
    for (int i = 0; i < depth - 1; i++)
        wm_buf_puts(b, msgpack ? "\x92\x01" : "[1,");
    wm_buf_puts(b, msgpack ? "\x91\x01" : "[1");
    for (int i = 0; i < depth && !msgpack; i++)
        wm_buf_puts(b, "]");
}

static void test_decode_malformed_json(void **state)
{
    static const struct { const char *in, *why; } cases[] = {
        {"", "invalid JSON"},
        {"[1,", "invalid JSON"},
        {"[1,}", "invalid JSON"},
        {"[1,\"\xff\"]", "invalid JSON"},
        {"[1] x", "trailing data"},
        {"[1][2]", "trailing data"},
        {"{\"a\":1}", "not an array"},
        {"\"abc\"", "not an array"},
        {"42", "not an array"},
        {"[]", "empty array"},
        {"[\"hello\"]", "no message code"},
        {"[1.0]", "no message code"},
        {"[null,1]", "no message code"},
        {"[1,99999999999999999999]", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fail(GW_SER_JSON, cases[i].in, strlen(cases[i].in), cases[i].why);
    expect_fail(GW_SER_JSON, NULL, 3, "no data");
    json_t *ws = dec_json(" [1]\r\n\t ", NULL);   /* whitespace is not trailing data */
    assert_non_null(ws);
    json_decref(ws);
    expect_fail(7, "[1]", 3, "unknown serializer");

    struct wm_buf b = WM_BUF_INIT;
    nested(&b, 32, false);
    json_t *ok = gw_wamp_decode(GW_SER_JSON, b.data, b.len, NULL);
    assert_non_null(ok);
    json_decref(ok);
    wm_buf_reset(&b);
    nested(&b, 33, false);
    expect_fail(GW_SER_JSON, b.data, b.len, "too deep");
    wm_buf_reset(&b);
    /* Deep inside an object counts too. */
    wm_buf_puts(&b, "[1,{\"a\":");
    for (int i = 0; i < 31; i++)
        wm_buf_puts(&b, "[");
    for (int i = 0; i < 31; i++)
        wm_buf_puts(&b, "]");
    wm_buf_puts(&b, "}]");
    expect_fail(GW_SER_JSON, b.data, b.len, "too deep");
    wm_buf_free(&b);
}

static void test_decode_malformed_msgpack(void **state)
{
    /* [1, "ab"] truncated at every length. */
    static const uint8_t full[] = {0x92, 0x01, 0xa2, 'a', 'b'};
    for (size_t n = 0; n < sizeof full; n++)
        expect_fail(GW_SER_MSGPACK, full, n, "invalid msgpack");
    expect_fail(GW_SER_MSGPACK, "\x91\x01\x00", 3, "trailing data");
    expect_fail(GW_SER_MSGPACK, "\x91\x01\x91\x01", 4, "trailing data");
    expect_fail(GW_SER_MSGPACK, "\xc1", 1, "invalid msgpack");   /* never used */
    /* Containers announcing more items than bytes follow are refused before msgpack-c
     * allocates for them (4 billion items in 6 bytes would ask for ~128 GiB). */
    expect_fail(GW_SER_MSGPACK, "\xdd\xff\xff\xff\xff\x01", 6, "invalid msgpack");
    expect_fail(GW_SER_MSGPACK, "\x91\xdf\xff\xff\xff\xff\x01", 7, "invalid msgpack");
    expect_fail(GW_SER_MSGPACK, "\x91\xdc\x00\x03\x01\x01", 6, "invalid msgpack");
    expect_fail(GW_SER_MSGPACK, "\x81\xa1x\x01", 4, "not an array");
    expect_fail(GW_SER_MSGPACK, "\x05", 1, "not an array");
    expect_fail(GW_SER_MSGPACK, "\xd4\x01\x00", 3, "not an array");   /* ext */
    expect_fail(GW_SER_MSGPACK, "\x90", 1, "empty array");
    expect_fail(GW_SER_MSGPACK, "\x91\xc0", 2, "no message code");
    expect_fail(GW_SER_MSGPACK, "\x91\xa1x", 3, "no message code");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 11,
                "integer too large");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 11,
                "integer too large");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\xa2\xc3\x28", 5, "invalid UTF-8");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\x81\x01\x02", 5, "non-string key");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\x81\xc4\x01x\x02", 7, "non-string key");
    expect_fail(GW_SER_MSGPACK, "\x92\x01\x81\xa2\xed\xa0\x02", 7, "invalid UTF-8");
    /* float64 NaN */
    expect_fail(GW_SER_MSGPACK, "\x92\x01\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 11,
                "invalid number");

    struct wm_buf b = WM_BUF_INIT;
    nested(&b, 32, true);
    json_t *ok = dec_mp(b.data, b.len, NULL);
    assert_non_null(ok);
    json_decref(ok);
    wm_buf_reset(&b);
    nested(&b, 33, true);
    expect_fail(GW_SER_MSGPACK, b.data, b.len, "too deep");
    wm_buf_reset(&b);
    nested(&b, 200, true);
    expect_fail(GW_SER_MSGPACK, b.data, b.len, "too deep");
    wm_buf_reset(&b);
    /* 32 non-empty levels plus an empty array: msgpack-c does not stack empty
     * containers, so this depth is caught by the converter. */
    for (int i = 0; i < 32; i++)
        wm_buf_append(&b, "\x92\x01", 2);
    wm_buf_append(&b, "\x90", 1);   /* the last array's second element */
    expect_fail(GW_SER_MSGPACK, b.data, b.len, "too deep");
    wm_buf_free(&b);
}

/* ---- encode ----------------------------------------------------------------------- */

static void test_encode_roundtrip(void **state)
{
    static const char *const msgs[] = {
        "[2,9007199254740992,{\"authid\":\"bob\",\"authrole\":\"user\",\"authmethod\":"
        "\"ticket\",\"roles\":{\"broker\":{\"features\":{}},\"dealer\":{}}}]",
        "[4,\"ticket\",{}]",
        "[8,32,713,{},\"wamp.error.invalid_uri\",[\"bad \\\"topic\\\"\\n\"]]",
        "[33,713,1]",
        "[50,7,{},[],{\"ok\":true,\"n\":null,\"f\":false}]",
        "[1,-1,-129,-32769,-2147483649,127,128,255,256,65535,65536,4294967295,"
        "4294967296,9223372036854775807,-9223372036854775808]",
        "[1,0.1,-2.5e300,1e-300,0.0,\"\\u00e9\\u2028\\ud83d\\ude00\",\"a\\u0000b\"]",
        "[3,{\"message\":\"\"},\"wamp.error.no_such_realm\"]",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        json_t *ref = json_loads(msgs[i], JSON_ALLOW_NUL, NULL);
        assert_non_null(ref);
        for (int ser = 0; ser < 2; ser++) {
            struct wm_buf b = WM_BUF_INIT;
            const char *why = NULL;
            assert_int_equal(gw_wamp_encode(ser, ref, &b), 0);
            json_t *back = gw_wamp_decode(ser, b.data, b.len, &why);
            assert_non_null(back);
            assert_true(json_equal(ref, back));
            json_decref(back);
            wm_buf_free(&b);
        }
        json_decref(ref);
    }
}

static void test_encode_details(void **state)
{
    struct wm_buf b = WM_BUF_INIT;
    json_t *m = json_pack("[iiiIs]", 33, 127, 200, (json_int_t)ID53, "x");

    /* Smallest widths: fixint, uint8, uint64; fixstr. */
    assert_int_equal(gw_wamp_encode(GW_SER_MSGPACK, m, &b), 0);
    assert_int_equal(b.len, 16);
    assert_memory_equal(b.data, "\x95\x21\x7f\xcc\xc8\xcf\x00\x20\0\0\0\0\0\0\xa1x", 16);
    wm_buf_reset(&b);
    assert_int_equal(gw_wamp_encode(GW_SER_JSON, m, &b), 0);
    assert_string_equal(b.data, "[33,127,200,9007199254740992,\"x\"]");
    json_decref(m);

    /* Failures leave out as it was. */
    wm_buf_reset(&b);
    wm_buf_puts(&b, "keep");
    m = json_object();
    assert_int_equal(gw_wamp_encode(GW_SER_JSON, m, &b), -EINVAL);
    assert_int_equal(gw_wamp_encode(GW_SER_MSGPACK, m, &b), -EINVAL);
    json_decref(m);
    m = json_pack("[io]", 1, json_stringn_nocheck("\xff", 1));
    assert_int_equal(gw_wamp_encode(GW_SER_JSON, m, &b), -EINVAL);
    assert_int_equal(gw_wamp_encode(5, m, &b), -EINVAL);
    assert_int_equal(gw_wamp_encode(GW_SER_JSON, NULL, &b), -EINVAL);
    json_decref(m);
    /* Deeper than the limit. */
    m = json_array();
    json_t *cur = m;
    for (int i = 0; i < 40; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    assert_int_equal(gw_wamp_encode(GW_SER_MSGPACK, m, &b), -EINVAL);
    json_decref(m);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    wm_buf_free(&b);
}

/* ---- EVENT ------------------------------------------------------------------------ */

struct ev_in {
    uint64_t sub, pub;
    const char *topic;
    bool retained;
    struct gw_page page;
};

/* Encodes the EVENT as JSON, checks it parses with plain jansson, and returns it. */
static json_t *event_json(const struct ev_in *in)
{
    struct wm_buf b = WM_BUF_INIT;
    json_error_t err;

    assert_int_equal(gw_wamp_encode_event(GW_SER_JSON, in->sub, in->pub, in->topic,
                                          in->retained, &in->page, &b), 0);
    json_t *v = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &err);
    if (!v)
        fail_msg("EVENT JSON does not parse: %s: %.200s", err.text, b.data);
    /* Our own decoder reads it the same. */
    json_t *w = gw_wamp_decode(GW_SER_JSON, b.data, b.len, NULL);
    assert_true(json_equal(v, w));
    json_decref(w);
    wm_buf_free(&b);
    return v;
}

/* Encodes the EVENT as msgpack and unpacks it with msgpack-c into up. */
static void event_msgpack(const struct ev_in *in, msgpack_unpacked *up, struct wm_buf *b)
{
    size_t off = 0;

    assert_int_equal(gw_wamp_encode_event(GW_SER_MSGPACK, in->sub, in->pub, in->topic,
                                          in->retained, &in->page, b), 0);
    msgpack_unpacked_init(up);
    assert_int_equal(msgpack_unpack_next(up, b->data, b->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b->len);
}

static const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        assert_int_equal(k->type, MSGPACK_OBJECT_STR);
        if (k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, strlen(key)))
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void assert_mp_str(const msgpack_object *o, const void *s, size_t len)
{
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, len);
    assert_memory_equal(o->via.str.ptr, s, len);
}

static struct wm_header hdrs[] = {
    {"content-type", "text/html; charset=utf-8"},
    {"etag", "\"abc\\def\""},
    {"x-latin1", "caf\xe9"},
    {"content-type", "ignored/duplicate"},
    {"x-empty", ""},
};

static void test_event_text(void **state)
{
    static const char body[] = "<p>He said \"hi\" \\ back\n\ttab\x01\x1f\x7f "
                               "\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80</p>";
    struct ev_in in = {
        .sub = 713, .pub = ID53, .topic = "/users/1?fields=\"name\"", .retained = false,
        .page = {.status = 200, .headers = hdrs, .n_headers = 5,
                 .body = (const uint8_t *)body, .body_len = sizeof body - 1},
    };
    json_t *v = event_json(&in);

    assert_int_equal(json_array_size(v), 6);
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 36);
    assert_int_equal(json_integer_value(json_array_get(v, 1)), 713);
    assert_true((uint64_t)json_integer_value(json_array_get(v, 2)) == ID53);
    json_t *det = json_array_get(v, 3);
    assert_int_equal(json_object_size(det), 1);
    assert_string_equal(json_string_value(json_object_get(det, "topic")), in.topic);
    assert_true(json_is_array(json_array_get(v, 4)));
    assert_int_equal(json_array_size(json_array_get(v, 4)), 0);
    json_t *kw = json_array_get(v, 5);
    assert_int_equal(json_object_size(kw), 3);
    assert_int_equal(json_integer_value(json_object_get(kw, "status")), 200);
    json_t *h = json_object_get(kw, "headers");
    assert_int_equal(json_object_size(h), 4);
    assert_string_equal(json_string_value(json_object_get(h, "content-type")),
                        "text/html; charset=utf-8");
    assert_string_equal(json_string_value(json_object_get(h, "etag")), "\"abc\\def\"");
    assert_string_equal(json_string_value(json_object_get(h, "x-latin1")),
                        "caf\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(h, "x-empty")), "");
    json_t *jb = json_object_get(kw, "body");
    assert_int_equal(json_string_length(jb), sizeof body - 1);
    assert_memory_equal(json_string_value(jb), body, sizeof body - 1);
    json_decref(v);

    msgpack_unpacked up;
    struct wm_buf b = WM_BUF_INIT;
    event_msgpack(&in, &up, &b);
    const msgpack_object *a = up.data.via.array.ptr;
    assert_int_equal(up.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(up.data.via.array.size, 6);
    assert_true(a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[0].via.u64 == 36);
    assert_true(a[1].via.u64 == 713 && a[2].via.u64 == ID53);
    assert_mp_str(mp_get(&a[3], "topic"), in.topic, strlen(in.topic));
    assert_null(mp_get(&a[3], "retained"));
    assert_true(a[4].type == MSGPACK_OBJECT_ARRAY && a[4].via.array.size == 0);
    assert_int_equal(a[5].via.map.size, 3);
    assert_int_equal(mp_get(&a[5], "status")->via.u64, 200);
    const msgpack_object *mh = mp_get(&a[5], "headers");
    assert_int_equal(mh->via.map.size, 4);
    assert_mp_str(mp_get(mh, "content-type"), "text/html; charset=utf-8", 24);
    assert_mp_str(mp_get(mh, "x-latin1"), "caf\xef\xbf\xbd", 6);
    assert_mp_str(mp_get(&a[5], "body"), body, sizeof body - 1);
    assert_null(mp_get(&a[5], "error"));
    msgpack_unpacked_destroy(&up);
    wm_buf_free(&b);
}

static void test_event_binary(void **state)
{
    static const uint8_t bin[] = {0xff, 0x00, 0x80};
    struct ev_in in = {
        .sub = 1, .pub = 2, .topic = "/img", .retained = true,
        .page = {.status = 502, .body = bin, .body_len = 3, .error = "backend \"down\""},
    };
    json_t *v = event_json(&in);
    json_t *det = json_array_get(v, 3);
    assert_true(json_is_true(json_object_get(det, "retained")));
    json_t *kw = json_array_get(v, 5);
    json_t *jb = json_object_get(kw, "body");
    assert_int_equal(json_string_length(jb), 5);
    assert_memory_equal(json_string_value(jb), "\0/wCA", 5);
    assert_int_equal(json_integer_value(json_object_get(kw, "status")), 502);
    assert_int_equal(json_object_size(json_object_get(kw, "headers")), 0);
    assert_string_equal(json_string_value(json_object_get(kw, "error")),
                        "backend \"down\"");
    json_decref(v);

    msgpack_unpacked up;
    struct wm_buf b = WM_BUF_INIT;
    event_msgpack(&in, &up, &b);
    const msgpack_object *a = up.data.via.array.ptr;
    const msgpack_object *r = mp_get(&a[3], "retained");
    assert_true(r && r->type == MSGPACK_OBJECT_BOOLEAN && r->via.boolean);
    const msgpack_object *mb = mp_get(&a[5], "body");
    assert_int_equal(mb->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(mb->via.bin.size, 3);
    assert_memory_equal(mb->via.bin.ptr, bin, 3);
    assert_mp_str(mp_get(&a[5], "error"), "backend \"down\"", 14);
    assert_int_equal(mp_get(&a[5], "headers")->via.map.size, 0);
    msgpack_unpacked_destroy(&up);
    wm_buf_free(&b);

    /* Base64 padding for every remainder, and a text body starting with NUL goes as
     * binary in JSON (it would read as the binary form) but as str in msgpack. */
    static const struct { const char *in; size_t n; const char *b64; } pads[] = {
        {"\x80", 1, "gA=="}, {"\x80\x81", 2, "gIE="}, {"\0ab", 3, "AGFi"},
        {"\0abc", 4, "AGFiYw=="},
    };
    for (size_t i = 0; i < 4; i++) {
        in.page = (struct gw_page){.status = 200, .body = (const uint8_t *)pads[i].in,
                                   .body_len = pads[i].n};
        v = event_json(&in);
        jb = json_object_get(json_array_get(v, 5), "body");
        assert_int_equal(json_string_length(jb), 1 + strlen(pads[i].b64));
        assert_int_equal(json_string_value(jb)[0], 0);
        assert_string_equal(json_string_value(jb) + 1, pads[i].b64);
        json_decref(v);
    }
    event_msgpack(&in, &up, &b);
    assert_mp_str(mp_get(&up.data.via.array.ptr[5], "body"), "\0abc", 4);
    msgpack_unpacked_destroy(&up);
    wm_buf_free(&b);
}

static void test_event_edges(void **state)
{
    struct ev_in in = {.sub = ID53, .pub = ID53, .topic = "/t",
                       .page = {.status = 204}};
    json_t *v = event_json(&in);
    assert_true((uint64_t)json_integer_value(json_array_get(v, 1)) == ID53);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 5), "body")),
                        "");
    json_decref(v);

    struct wm_buf b = WM_BUF_INIT;
    wm_buf_puts(&b, "keep");
    for (int ser = 0; ser < 2; ser++) {
        assert_int_equal(gw_wamp_encode_event(ser, 0, 1, "/t", false, &in.page, &b),
                         -EINVAL);
        assert_int_equal(gw_wamp_encode_event(ser, ID53 + 1, 1, "/t", false, &in.page,
                                              &b), -EINVAL);
        assert_int_equal(gw_wamp_encode_event(ser, 1, ID53 + 1, "/t", false, &in.page,
                                              &b), -EINVAL);
        assert_int_equal(gw_wamp_encode_event(ser, 1, 1, NULL, false, &in.page, &b),
                         -EINVAL);
        assert_int_equal(gw_wamp_encode_event(ser, 1, 1, "/t", false, NULL, &b),
                         -EINVAL);
        struct gw_page bad = {.status = 200, .body_len = 3};
        assert_int_equal(gw_wamp_encode_event(ser, 1, 1, "/t", false, &bad, &b),
                         -EINVAL);
    }
    assert_int_equal(gw_wamp_encode_event(9, 1, 1, "/t", false, &in.page, &b), -EINVAL);
    assert_string_equal(b.data, "keep");
    /* Appends after what is there. */
    assert_int_equal(gw_wamp_encode_event(GW_SER_JSON, 1, 1, "/t", false, &in.page, &b),
                     0);
    assert_memory_equal(b.data, "keep[36,1,1,", 12);
    wm_buf_free(&b);
}

/* Many headers, with duplicates: the first of each name wins (sorted path). */
static void test_event_many_headers(void **state)
{
    enum { N = 300 };
    struct wm_header *h = calloc(N, sizeof *h);
    char (*names)[16] = calloc(N, 16), (*vals)[16] = calloc(N, 16);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "h%d", i % 100);
        snprintf(vals[i], 16, "v%d", i);
        h[i] = (struct wm_header){names[i], vals[i]};
    }
    h[5].name = NULL;   /* skipped */
    struct ev_in in = {.sub = 1, .pub = 1, .topic = "/t",
                       .page = {.status = 200, .headers = h, .n_headers = N}};
    json_t *v = event_json(&in);
    json_t *jh = json_object_get(json_array_get(v, 5), "headers");
    assert_int_equal(json_object_size(jh), 100);
    assert_string_equal(json_string_value(json_object_get(jh, "h7")), "v7");
    assert_string_equal(json_string_value(json_object_get(jh, "h5")), "v105");
    json_decref(v);

    msgpack_unpacked up;
    struct wm_buf b = WM_BUF_INIT;
    event_msgpack(&in, &up, &b);
    const msgpack_object *mh = mp_get(&up.data.via.array.ptr[5], "headers");
    assert_int_equal(mh->via.map.size, 100);
    assert_mp_str(mp_get(mh, "h99"), "v99", 3);
    assert_mp_str(mp_get(mh, "h5"), "v105", 4);
    msgpack_unpacked_destroy(&up);
    wm_buf_free(&b);
    free(h);
    free(names);
    free(vals);
}

/* Random bodies (fixed seed): JSON must always parse and give the body back, either as
 * the string itself or as the binary form; msgpack likewise as str or bin. */
static void test_event_random_bodies(void **state)
{
    static const uint8_t alphabet[] = {'a', '"', '\\', '\n', 0x00, 0x01, 0x1f, 0x7f,
                                       0xc3, 0xa9, 0xe2, 0x80, 0xa8, 0xed, 0xa0, 0xf0,
                                       0x9f, 0x98, 0xff, 0xc0};
    uint8_t body[64];
    unsigned seed = 12345;

    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof body);
        for (size_t i = 0; i < n; i++)
            body[i] = alphabet[rand_r(&seed) % sizeof alphabet];
        struct wm_header h = {"x-h", (char *)"v"};
        char hv[65];
        memcpy(hv, body, n);
        hv[n] = 0;
        h.value = hv;   /* truncated at a NUL, possibly invalid UTF-8 */
        struct ev_in in = {.sub = 1, .pub = 1, .topic = "/r",
                           .page = {.status = 200, .headers = &h, .n_headers = 1,
                                    .body = body, .body_len = n, .error = hv}};
        bool text = gw_utf8_valid(body, n);
        json_t *v = event_json(&in);
        json_t *jb = json_object_get(json_array_get(v, 5), "body");
        if (text && (n == 0 || body[0] != 0)) {
            assert_int_equal(json_string_length(jb), n);
            assert_memory_equal(json_string_value(jb), body, n);
        } else {
            assert_int_equal(json_string_value(jb)[0], 0);
        }
        const char *hj = json_string_value(
            json_object_get(json_object_get(json_array_get(v, 5), "headers"), "x-h"));
        if (gw_utf8_valid((const uint8_t *)hv, strlen(hv)))
            assert_string_equal(hj, hv);
        json_decref(v);

        msgpack_unpacked up;
        struct wm_buf b = WM_BUF_INIT;
        event_msgpack(&in, &up, &b);
        const msgpack_object *mb = mp_get(&up.data.via.array.ptr[5], "body");
        assert_int_equal(mb->type, text ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN);
        assert_int_equal(mb->via.bin.size, n);
        if (n)
            assert_memory_equal(mb->via.bin.ptr, body, n);
        /* Every str in it is valid UTF-8 (gw_wamp_decode checks str). */
        json_t *back = gw_wamp_decode(GW_SER_MSGPACK, b.data, b.len, NULL);
        assert_non_null(back);
        json_decref(back);
        msgpack_unpacked_destroy(&up);
        wm_buf_free(&b);
    }
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

static void test_utf8(void **state)
{
    static const struct { const char *s; size_t n; bool ok; } cases[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"\x00", 1, true},
        {"\xc2\x80", 2, true},
        {"\xdf\xbf", 2, true},
        {"\xe0\xa0\x80", 3, true},
        {"\xe2\x80\xa8", 3, true},          /* U+2028 */
        {"\xed\x9f\xbf", 3, true},          /* U+D7FF */
        {"\xee\x80\x80", 3, true},          /* U+E000 */
        {"\xef\xbf\xbf", 3, true},
        {"\xf0\x90\x80\x80", 4, true},
        {"\xf4\x8f\xbf\xbf", 4, true},      /* U+10FFFF */
        {"\x80", 1, false},                 /* lone continuation */
        {"\xc0\x80", 2, false},             /* overlong NUL */
        {"\xc1\xbf", 2, false},
        {"\xe0\x9f\xbf", 3, false},         /* overlong */
        {"\xed\xa0\x80", 3, false},         /* surrogate */
        {"\xed\xbf\xbf", 3, false},
        {"\xf0\x8f\xbf\xbf", 4, false},     /* overlong */
        {"\xf4\x90\x80\x80", 4, false},     /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\xc3", 1, false},                 /* truncated */
        {"\xe2\x80", 2, false},
        {"\xf0\x9f\x98", 3, false},
        {"\xc3\x28", 2, false},
        {"\xe2\x28\xa1", 3, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(gw_utf8_valid((const uint8_t *)cases[i].s, cases[i].n),
                         cases[i].ok);

    /* The 8-byte fast path: a bad byte at every offset of a long ASCII run. */
    uint8_t buf[40];
    for (size_t at = 0; at < sizeof buf; at++) {
        memset(buf, 'a', sizeof buf);
        assert_true(gw_utf8_valid(buf, sizeof buf));
        buf[at] = 0xff;
        assert_false(gw_utf8_valid(buf, sizeof buf));
        buf[at] = 0xc3;   /* truncated 2-byte sequence unless followed by 0x80.. */
        if (at + 1 < sizeof buf) {
            assert_false(gw_utf8_valid(buf, sizeof buf));
            buf[at + 1] = 0xa9;
            assert_true(gw_utf8_valid(buf, sizeof buf));
        } else {
            assert_false(gw_utf8_valid(buf, sizeof buf));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_hello),
        cmocka_unit_test(test_decode_shapes),
        cmocka_unit_test(test_decode_msgpack_int_widths),
        cmocka_unit_test(test_decode_msgpack_types),
        cmocka_unit_test(test_decode_malformed_json),
        cmocka_unit_test(test_decode_malformed_msgpack),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_encode_details),
        cmocka_unit_test(test_event_text),
        cmocka_unit_test(test_event_binary),
        cmocka_unit_test(test_event_edges),
        cmocka_unit_test(test_event_many_headers),
        cmocka_unit_test(test_event_random_bodies),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

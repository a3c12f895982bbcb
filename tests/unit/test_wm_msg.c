/* Unit tests for wm_msg: round trips of every message type, liberal integer widths and
 * rejection of malformed frames (each failure must leave nothing allocated). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "wm_msg.h"

#define MAX_ID ((UINT64_C(1) << 53) - 1)

static void roundtrip(const struct wm_msg *in, struct wm_msg *out)
{
    struct wm_buf b = WM_BUF_INIT;
    const char *why = NULL;
    assert_int_equal(wm_msg_encode(in, &b), 0);
    assert_true(b.len > 0);
    assert_int_equal(wm_msg_decode(b.data, b.len, out, &why), 0);
    assert_int_equal(out->type, in->type);
    assert_true(out->instance == in->instance);
    wm_buf_free(&b);
}

static void test_bump(void **state)
{
    struct wm_msg in = {.type = WM_MSG_BUMP, .instance = MAX_ID};
    struct wm_msg out;
    in.u.bump.path = "/users/1?fields=name";
    in.u.bump.match = WM_MATCH_PREFIX;
    in.u.bump.seq = MAX_ID;
    in.u.bump.ts_ms = 1795000000123;
    roundtrip(&in, &out);
    assert_string_equal(out.u.bump.path, "/users/1?fields=name");
    assert_int_equal(out.u.bump.match, WM_MATCH_PREFIX);
    assert_true(out.u.bump.seq == MAX_ID);
    assert_true(out.u.bump.ts_ms == 1795000000123);
    wm_msg_clear(&out);
    assert_null(out.u.bump.path);
    wm_msg_clear(&out);   /* twice is safe */

    in.u.bump.match = WM_MATCH_EXACT;
    in.u.bump.ts_ms = -5;
    in.u.bump.seq = 0;
    roundtrip(&in, &out);
    assert_int_equal(out.u.bump.match, WM_MATCH_EXACT);
    assert_true(out.u.bump.ts_ms == -5);
    wm_msg_clear(&out);
}

static void test_resync_heartbeat_ready(void **state)
{
    struct wm_msg in = {.type = WM_MSG_RESYNC, .instance = 1};
    struct wm_msg out;
    in.u.resync.seq = 42;
    in.u.resync.reason = "redis reconnect";
    roundtrip(&in, &out);
    assert_true(out.u.resync.seq == 42);
    assert_string_equal(out.u.resync.reason, "redis reconnect");
    wm_msg_clear(&out);

    in.u.resync.reason = NULL;   /* nil reason is allowed */
    roundtrip(&in, &out);
    assert_null(out.u.resync.reason);
    wm_msg_clear(&out);

    memset(&in, 0, sizeof in);
    in.type = WM_MSG_HEARTBEAT;
    in.instance = 7;
    in.u.heartbeat.seq = UINT64_MAX;
    roundtrip(&in, &out);
    assert_true(out.u.heartbeat.seq == UINT64_MAX);
    wm_msg_clear(&out);

    memset(&in, 0, sizeof in);
    in.type = WM_MSG_READY;
    in.instance = 8;
    in.u.ready.credits = UINT32_MAX;
    roundtrip(&in, &out);
    assert_true(out.u.ready.credits == UINT32_MAX);
    wm_msg_clear(&out);
}

static void test_job(void **state)
{
    struct wm_header h[3] = {
        {"Authorization", "Bearer abc"}, {"X-Waymark", "1"}, {"Accept", ""},
    };
    struct wm_msg in = {.type = WM_MSG_JOB, .instance = 99};
    struct wm_msg out;
    in.u.job.id = MAX_ID;
    in.u.job.url = "http://127.0.0.1:8080/users/1";
    in.u.job.headers = h;
    in.u.job.n_headers = 3;
    in.u.job.timeout_ms = 5000;
    in.u.job.max_body = 1 << 20;
    roundtrip(&in, &out);
    assert_true(out.u.job.id == MAX_ID);
    assert_string_equal(out.u.job.url, in.u.job.url);
    assert_int_equal(out.u.job.n_headers, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(out.u.job.headers[i].name, h[i].name);
        assert_string_equal(out.u.job.headers[i].value, h[i].value);
    }
    assert_int_equal(out.u.job.timeout_ms, 5000);
    assert_int_equal(out.u.job.max_body, 1 << 20);
    wm_msg_clear(&out);

    in.u.job.headers = NULL;
    in.u.job.n_headers = 0;
    roundtrip(&in, &out);
    assert_int_equal(out.u.job.n_headers, 0);
    assert_null(out.u.job.headers);
    wm_msg_clear(&out);
}

static void test_result_big_body(void **state)
{
    size_t len = 100 * 1024;
    uint8_t *body = malloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)(i * 31 + 7);   /* includes NUL and high bytes */
    struct wm_header h[1] = {{"content-type", "application/octet-stream"}};
    struct wm_msg in = {.type = WM_MSG_RESULT, .instance = 3};
    struct wm_msg out;
    in.u.result.id = 12345;
    in.u.result.status = 200;
    in.u.result.headers = h;
    in.u.result.n_headers = 1;
    in.u.result.body = body;
    in.u.result.body_len = len;
    in.u.result.elapsed_us = 1500;
    roundtrip(&in, &out);
    assert_true(out.u.result.id == 12345);
    assert_int_equal(out.u.result.status, 200);
    assert_int_equal(out.u.result.body_len, len);
    assert_memory_equal(out.u.result.body, body, len);
    assert_null(out.u.result.error);
    assert_int_equal(out.u.result.elapsed_us, 1500);
    assert_string_equal(out.u.result.headers[0].name, "content-type");
    wm_msg_clear(&out);
    free(body);

    /* failed fetch: empty body, error text */
    memset(&in.u.result, 0, sizeof in.u.result);
    in.u.result.id = 1;
    in.u.result.status = 504;
    in.u.result.error = "timeout";
    roundtrip(&in, &out);
    assert_int_equal(out.u.result.status, 504);
    assert_int_equal(out.u.result.body_len, 0);
    assert_null(out.u.result.body);
    assert_string_equal(out.u.result.error, "timeout");
    wm_msg_clear(&out);
}

static void test_encode_rejects(void **state)
{
    struct wm_buf b = WM_BUF_INIT;
    struct wm_msg m = {.type = 77};
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    m.type = WM_MSG_RESULT;
    m.u.result.status = 1000;   /* not an HTTP status */
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    m.u.result.status = 200;
    m.u.result.body_len = 3;    /* length without a body */
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    memset(&m, 0, sizeof m);
    m.type = WM_MSG_BUMP;   /* NULL path */
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    m.type = WM_MSG_JOB;    /* NULL url */
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    struct wm_header bad[1] = {{"x", NULL}};
    m.u.job.url = "http://x/";
    m.u.job.headers = bad;
    m.u.job.n_headers = 1;
    wm_buf_puts(&b, "keep");
    assert_int_equal(wm_msg_encode(&m, &b), -EINVAL);
    assert_int_equal(b.len, 4);   /* a failed encode leaves out unchanged */
    assert_string_equal(b.data, "keep");
    wm_buf_free(&b);
}

/* Builds a frame by hand with the packer, to send what wm_msg would never produce. */
static int buf_write(void *data, const char *buf, size_t len)
{
    wm_buf_append(data, buf, len);
    return 0;
}

static int decode_buf(struct wm_buf *b, const char **why)
{
    struct wm_msg out;
    memset(&out, 0xab, sizeof out);   /* decode must not read what it is given */
    int rc = wm_msg_decode(b->data, b->len, &out, why);
    if (rc == 0) {
        wm_msg_clear(&out);
    } else {
        /* "On failure out is left cleared" */
        struct wm_msg zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&out, &zero, sizeof out);
    }
    return rc;
}

static void test_liberal_integers(void **state)
{
    /* READY with every field packed in a needlessly wide signed type */
    struct wm_buf b = WM_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, buf_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_fix_int64(&pk, 1);
    msgpack_pack_fix_int32(&pk, WM_MSG_READY);
    msgpack_pack_fix_uint64(&pk, 5);
    msgpack_pack_fix_int16(&pk, 12);
    struct wm_msg out;
    const char *why = NULL;
    assert_int_equal(wm_msg_decode(b.data, b.len, &out, &why), 0);
    assert_int_equal(out.type, WM_MSG_READY);
    assert_int_equal(out.u.ready.credits, 12);
    wm_msg_clear(&out);

    /* an extra trailing field is tolerated (forward compatible) */
    wm_buf_reset(&b);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, WM_MSG_HEARTBEAT);
    msgpack_pack_int(&pk, 5);
    msgpack_pack_int(&pk, 9);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "new", 3);
    assert_int_equal(decode_buf(&b, &why), 0);

    /* body sent as str is accepted */
    wm_buf_reset(&b);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, WM_MSG_RESULT);
    msgpack_pack_int(&pk, 5);
    msgpack_pack_int(&pk, 9);
    msgpack_pack_int(&pk, 404);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "hi", 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_int(&pk, 0);
    assert_int_equal(wm_msg_decode(b.data, b.len, &out, &why), 0);
    assert_int_equal(out.u.result.body_len, 2);
    assert_memory_equal(out.u.result.body, "hi", 2);
    wm_msg_clear(&out);
    wm_buf_free(&b);
}

static void pack_head(msgpack_packer *pk, size_t n, int type)
{
    msgpack_pack_array(pk, n);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, type);
    msgpack_pack_int(pk, 5);
}

/* ---- malformed frames: one row per way a frame can be wrong ---- */

static void pack_s(msgpack_packer *pk, const char *str, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, str, len);
}

static void pack_header_pair(msgpack_packer *pk, const char *name, const char *value)
{
    msgpack_pack_array(pk, 2);
    pack_s(pk, name, strlen(name));
    pack_s(pk, value, strlen(value));
}

static void mf_empty(msgpack_packer *pk) { (void)pk; }

static void mf_garbage(msgpack_packer *pk)
{
    wm_buf_append(pk->data, "\xc1", 1);   /* a byte msgpack never uses */
}

static void mf_not_array(msgpack_packer *pk) { msgpack_pack_int(pk, 1); }

static void mf_version(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 2);
    msgpack_pack_int(pk, WM_MSG_HEARTBEAT);
    msgpack_pack_int(pk, 5);
    msgpack_pack_int(pk, 0);
}

static void mf_type(msgpack_packer *pk)
{
    pack_head(pk, 4, 9);
    msgpack_pack_int(pk, 0);
}

static void mf_negative(msgpack_packer *pk)
{
    pack_head(pk, 4, WM_MSG_HEARTBEAT);
    msgpack_pack_int(pk, -1);
}

static void mf_credits_over_32_bits(msgpack_packer *pk)
{
    pack_head(pk, 4, WM_MSG_READY);
    msgpack_pack_uint64(pk, UINT64_C(1) << 32);
}

static void mf_missing_fields(msgpack_packer *pk)
{
    pack_head(pk, 5, WM_MSG_BUMP);
    pack_s(pk, "/x", 2);
    msgpack_pack_int(pk, 0);
}

static void mf_path_not_string(msgpack_packer *pk)
{
    pack_head(pk, 7, WM_MSG_BUMP);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 0);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void mf_match_out_of_range(msgpack_packer *pk)
{
    pack_head(pk, 7, WM_MSG_BUMP);
    pack_s(pk, "/x", 2);
    msgpack_pack_int(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

/* after an allocated field: must not leak */
static void mf_nul_in_url(msgpack_packer *pk)
{
    pack_head(pk, 8, WM_MSG_JOB);
    msgpack_pack_int(pk, 1);
    pack_s(pk, "/a\0", 3);
    msgpack_pack_array(pk, 0);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void mf_bad_header_after_good(msgpack_packer *pk)
{
    pack_head(pk, 8, WM_MSG_JOB);
    msgpack_pack_int(pk, 1);
    pack_s(pk, "/a", 2);
    msgpack_pack_array(pk, 2);
    pack_header_pair(pk, "a", "b");
    msgpack_pack_array(pk, 2);
    pack_s(pk, "c", 1);
    msgpack_pack_int(pk, 5);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void mf_too_many_headers(msgpack_packer *pk)
{
    pack_head(pk, 8, WM_MSG_JOB);
    msgpack_pack_int(pk, 1);
    pack_s(pk, "/a", 2);
    msgpack_pack_array(pk, 257);
    for (int i = 0; i < 257; i++)
        pack_header_pair(pk, "a", "b");
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
}

/* A RESULT with status 200, no headers, an empty bin body, a nil error; one changed. */
enum result_flaw { BODY_NOT_BIN, ERROR_NOT_STRING, STATUS_NEGATIVE };

static void pack_flawed_result(msgpack_packer *pk, enum result_flaw flaw)
{
    pack_head(pk, 9, WM_MSG_RESULT);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, flaw == STATUS_NEGATIVE ? -200 : 200);
    msgpack_pack_array(pk, 0);
    if (flaw == BODY_NOT_BIN)
        msgpack_pack_int(pk, 3);
    else
        msgpack_pack_bin(pk, 0);
    if (flaw == ERROR_NOT_STRING)
        msgpack_pack_true(pk);
    else
        msgpack_pack_nil(pk);
    msgpack_pack_int(pk, 0);
}

static void mf_body_not_bin(msgpack_packer *pk) { pack_flawed_result(pk, BODY_NOT_BIN); }
static void mf_error_not_string(msgpack_packer *pk) { pack_flawed_result(pk, ERROR_NOT_STRING); }
static void mf_status_negative(msgpack_packer *pk) { pack_flawed_result(pk, STATUS_NEGATIVE); }

struct malformed {
    const char *name;
    void (*pack)(msgpack_packer *pk);
    int rc;              /* what wm_msg_decode returns */
    const char *why;     /* the reason it gives; NULL: not checked */
};

static const struct malformed malformed[] = {
    {"malformed: empty frame", mf_empty, -EBADMSG, NULL},
    {"malformed: not msgpack", mf_garbage, -EBADMSG, "not msgpack"},
    {"malformed: not an array", mf_not_array, -EBADMSG, NULL},
    {"malformed: unknown version", mf_version, -EPROTONOSUPPORT, "unknown version"},
    {"malformed: unknown type", mf_type, -EBADMSG, "unknown type"},
    {"malformed: negative where unsigned is needed", mf_negative, -EBADMSG, NULL},
    {"malformed: READY credits over 32 bits", mf_credits_over_32_bits, -EBADMSG, NULL},
    {"malformed: BUMP with fields missing", mf_missing_fields, -EBADMSG, NULL},
    {"malformed: BUMP path not a string", mf_path_not_string, -EBADMSG, NULL},
    {"malformed: BUMP match out of range", mf_match_out_of_range, -EBADMSG, NULL},
    {"malformed: JOB url with an embedded NUL", mf_nul_in_url, -EBADMSG, NULL},
    {"malformed: JOB bad header after a good one", mf_bad_header_after_good, -EBADMSG, NULL},
    {"malformed: JOB with too many headers", mf_too_many_headers, -EBADMSG, "too many headers"},
    {"malformed: RESULT body not bin", mf_body_not_bin, -EBADMSG, NULL},
    {"malformed: RESULT error not a string", mf_error_not_string, -EBADMSG, NULL},
    {"malformed: RESULT status negative", mf_status_negative, -EBADMSG, NULL},
};
#define N_MALFORMED (sizeof malformed / sizeof malformed[0])

/* One row of malformed[] (the test's state): decoding fails as the row says, and
 * leaves nothing allocated (decode_buf checks out is cleared). */
static void test_malformed_row(void **state)
{
    const struct malformed *row = *state;
    struct wm_buf b = WM_BUF_INIT;
    msgpack_packer pk;
    const char *why = NULL;

    msgpack_packer_init(&pk, &b, buf_write);
    row->pack(&pk);
    assert_int_equal(decode_buf(&b, &why), row->rc);
    if (row->why)
        assert_string_equal(why, row->why);
    wm_buf_free(&b);
}

static void test_truncated_and_trailing(void **state)
{
    struct wm_header h[1] = {{"a", "b"}};
    uint8_t body[300];
    memset(body, 'x', sizeof body);
    struct wm_msg in = {.type = WM_MSG_RESULT, .instance = MAX_ID};
    in.u.result.id = 77;
    in.u.result.status = 200;
    in.u.result.headers = h;
    in.u.result.n_headers = 1;
    in.u.result.body = body;
    in.u.result.body_len = sizeof body;
    in.u.result.error = "e";
    struct wm_buf b = WM_BUF_INIT;
    const char *why = NULL;
    assert_int_equal(wm_msg_encode(&in, &b), 0);
    /* every proper prefix is rejected */
    for (size_t cut = 0; cut < b.len; cut++) {
        struct wm_buf p = WM_BUF_INIT;
        wm_buf_append(&p, b.data, cut);
        assert_int_not_equal(decode_buf(&p, &why), 0);
        wm_buf_free(&p);
    }
    wm_buf_append(&b, "\x00", 1);
    assert_int_equal(decode_buf(&b, &why), -EBADMSG);
    assert_string_equal(why, "trailing bytes");
    wm_buf_free(&b);
}

static void test_huge_container_claim(void **state)
{
    /* a tiny frame claiming a 4-billion element array must fail fast, not allocate */
    static const char arr[] = "\xdd\xff\xff\xff\xff\x01";
    static const char map[] = "\x93\x01\x06\xdf\x7f\xff\xff\xff";
    static const char bin[] = "\x94\x01\x06\x01\xc6\xff\xff\xff\xf0";
    struct wm_msg out;
    const char *why = NULL;
    assert_int_equal(wm_msg_decode(arr, sizeof arr - 1, &out, &why), -EBADMSG);
    assert_int_equal(wm_msg_decode(map, sizeof map - 1, &out, &why), -EBADMSG);
    assert_int_equal(wm_msg_decode(bin, sizeof bin - 1, &out, &why), -EBADMSG);
}

static void test_empty_str(void **state)
{
    /* A BUMP whose path is an empty str8 (d9 00): msgpack-c hands over ptr NULL, size 0,
     * which must reach no libc function (found by fuzz_wm_msg under UBSan). */
    static const char frame[] = "\x97\x01\x01\x00\xd9\x00\x00\x00\x02";
    struct wm_msg out;
    const char *why = NULL;
    assert_int_equal(wm_msg_decode(frame, sizeof frame - 1, &out, &why), 0);
    assert_int_equal(out.type, WM_MSG_BUMP);
    assert_string_equal(out.u.bump.path, "");
    wm_msg_clear(&out);
    char *s = wm_strndup(NULL, 0);
    assert_string_equal(s, "");
    free(s);
}

static void test_type_names(void **state)
{
    assert_string_equal(wm_msg_type_name(WM_MSG_BUMP), "BUMP");
    assert_string_equal(wm_msg_type_name(WM_MSG_RESULT), "RESULT");
    assert_string_equal(wm_msg_type_name((enum wm_msg_type)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bump),
        cmocka_unit_test(test_resync_heartbeat_ready),
        cmocka_unit_test(test_job),
        cmocka_unit_test(test_result_big_body),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_liberal_integers),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_huge_container_claim),
        cmocka_unit_test(test_empty_str),
        cmocka_unit_test(test_type_names),
    };
    struct CMUnitTest rows[N_MALFORMED];
    for (size_t i = 0; i < N_MALFORMED; i++)
        rows[i] = (struct CMUnitTest){.name = malformed[i].name,
                                      .test_func = test_malformed_row,
                                      .initial_state = (void *)&malformed[i]};
    int failed = cmocka_run_group_tests_name("wm_msg", tests, NULL, NULL);
    /* one reported test per row of the table (the macro needs a fixed-size array) */
    return failed + _cmocka_run_group_tests("wm_msg malformed", rows, N_MALFORMED, NULL, NULL);
}

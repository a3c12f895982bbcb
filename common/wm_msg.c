/* wm_msg: encode and decode the internal wire messages (docs/internals.md). The only
 * code in Waymark that touches msgpack for them: decoded messages own plain C copies. */
#include "wm_msg.h"
#include "wm_mpscan.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 256

/* ---- encoding ---- */

static int buf_write(void *data, const char *buf, size_t len)
{
    wm_buf_append(data, buf, len);
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t len = strlen(s);
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static int pack_headers(msgpack_packer *pk, const struct wm_header *h, size_t n)
{
    if (n > MAX_HEADERS || (n && !h))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!h[i].name || !h[i].value)
            return -EINVAL;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 2);
        pack_str(pk, h[i].name);
        pack_str(pk, h[i].value);
    }
    return 0;
}

static void pack_opt_str(msgpack_packer *pk, const char *s)
{
    if (s)
        pack_str(pk, s);
    else
        msgpack_pack_nil(pk);
}

/* One packer per message type: its fields after [version, type, instance]. Returns 0 or
 * -EINVAL (wm_msg_encode then takes back what was written). */
typedef int (*pack_fn)(msgpack_packer *pk, const struct wm_msg *m);

static int pack_bump(msgpack_packer *pk, const struct wm_msg *m)
{
    if (!m->u.bump.path || (m->u.bump.match != WM_MATCH_EXACT &&
                            m->u.bump.match != WM_MATCH_PREFIX))
        return -EINVAL;
    pack_str(pk, m->u.bump.path);
    msgpack_pack_uint64(pk, (uint64_t)m->u.bump.match);
    msgpack_pack_uint64(pk, m->u.bump.seq);
    msgpack_pack_int64(pk, m->u.bump.ts_ms);
    return 0;
}

static int pack_resync(msgpack_packer *pk, const struct wm_msg *m)
{
    msgpack_pack_uint64(pk, m->u.resync.seq);
    pack_opt_str(pk, m->u.resync.reason);
    return 0;
}

static int pack_heartbeat(msgpack_packer *pk, const struct wm_msg *m)
{
    msgpack_pack_uint64(pk, m->u.heartbeat.seq);
    return 0;
}

static int pack_ready(msgpack_packer *pk, const struct wm_msg *m)
{
    msgpack_pack_uint64(pk, m->u.ready.credits);
    return 0;
}

static int pack_job(msgpack_packer *pk, const struct wm_msg *m)
{
    if (!m->u.job.url)
        return -EINVAL;
    msgpack_pack_uint64(pk, m->u.job.id);
    pack_str(pk, m->u.job.url);
    if (pack_headers(pk, m->u.job.headers, m->u.job.n_headers) != 0)
        return -EINVAL;
    msgpack_pack_uint64(pk, m->u.job.timeout_ms);
    msgpack_pack_uint64(pk, m->u.job.max_body);
    return 0;
}

static int pack_result(msgpack_packer *pk, const struct wm_msg *m)
{
    if ((m->u.result.body_len && !m->u.result.body) || m->u.result.status < 0 ||
        m->u.result.status > 999)
        return -EINVAL;
    msgpack_pack_uint64(pk, m->u.result.id);
    msgpack_pack_int64(pk, m->u.result.status);
    if (pack_headers(pk, m->u.result.headers, m->u.result.n_headers) != 0)
        return -EINVAL;
    msgpack_pack_bin(pk, m->u.result.body_len);
    msgpack_pack_bin_body(pk, m->u.result.body, m->u.result.body_len);
    pack_opt_str(pk, m->u.result.error);
    msgpack_pack_uint64(pk, m->u.result.elapsed_us);
    return 0;
}

/* Each type's field count (what its packer writes, what decoding requires at least)
 * next to its packer. */
static const struct {
    size_t n_fields;
    pack_fn pack;
} kinds[] = {
    [WM_MSG_BUMP] = {4, pack_bump},
    [WM_MSG_RESYNC] = {2, pack_resync},
    [WM_MSG_HEARTBEAT] = {1, pack_heartbeat},
    [WM_MSG_READY] = {1, pack_ready},
    [WM_MSG_JOB] = {5, pack_job},
    [WM_MSG_RESULT] = {6, pack_result},
};

static bool known_type(uint64_t t)
{
    return t < sizeof kinds / sizeof kinds[0] && kinds[t].pack;
}

int wm_msg_encode(const struct wm_msg *m, struct wm_buf *out)
{
    msgpack_packer pk;
    size_t start = out->len;

    if (!known_type((uint64_t)m->type))
        return -EINVAL;
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_array(&pk, 3 + kinds[m->type].n_fields);
    msgpack_pack_uint64(&pk, WM_MSG_VERSION);
    msgpack_pack_uint64(&pk, (uint64_t)m->type);
    msgpack_pack_uint64(&pk, m->instance);
    if (kinds[m->type].pack(&pk, m) != 0) {   /* leave out as it was */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -EINVAL;
    }
    return 0;
}

/* ---- decoding ---- */

static bool get_u64(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return false;
    *out = o->via.u64;
    return true;
}

static bool get_i64(const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return false;
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return false;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Copies a str into a new C string; NULL for the wrong type or an embedded NUL. */
static char *get_str(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR ||
        (o->via.str.size && memchr(o->via.str.ptr, '\0', o->via.str.size)))
        return NULL;
    return wm_strndup(o->via.str.ptr, o->via.str.size);
}

/* str or nil: returns false only for a bad value; *out stays NULL for nil */
static bool get_opt_str(const msgpack_object *o, char **out)
{
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL)
        return true;
    *out = get_str(o);
    return *out != NULL;
}

static void free_headers(struct wm_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static int get_headers(const msgpack_object *o, struct wm_header **out, size_t *n_out,
                       const char **why)
{
    *out = NULL;
    *n_out = 0;
    if (o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        *why = "headers not an array";
        return -EBADMSG;
    }
    if (o->via.array.size > MAX_HEADERS) {
        *why = "too many headers";
        return -EBADMSG;
    }
    size_t n = o->via.array.size;
    struct wm_header *h = n ? wm_calloc(n, sizeof *h) : NULL;
    /* *out and *n_out track what is filled so the caller's clear frees it on failure */
    *out = h;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *pair = &o->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2) {
            *why = "header not a [name, value] pair";
            return -EBADMSG;
        }
        h[i].name = get_str(&pair->via.array.ptr[0]);
        h[i].value = get_str(&pair->via.array.ptr[1]);
        *n_out = i + 1;
        if (!h[i].name || !h[i].value || !h[i].name[0]) {
            *why = "bad header";
            return -EBADMSG;
        }
    }
    return 0;
}

/* Fills m from the fields f[0..] of a message whose type is already known and whose
 * field count has been checked. */
static int decode_fields(const msgpack_object *f, struct wm_msg *m, const char **why)
{
    uint64_t u;
    int64_t i;

    *why = "bad field";
    switch (m->type) {
    case WM_MSG_BUMP:
        m->u.bump.path = get_str(&f[0]);
        if (!m->u.bump.path || !get_u64(&f[1], WM_MATCH_PREFIX, &u) ||
            !get_u64(&f[2], UINT64_MAX, &m->u.bump.seq) ||
            !get_i64(&f[3], INT64_MIN, INT64_MAX, &m->u.bump.ts_ms))
            return -EBADMSG;
        m->u.bump.match = (enum wm_match)u;
        return 0;
    case WM_MSG_RESYNC:
        if (!get_u64(&f[0], UINT64_MAX, &m->u.resync.seq) ||
            !get_opt_str(&f[1], &m->u.resync.reason))
            return -EBADMSG;
        return 0;
    case WM_MSG_HEARTBEAT:
        return get_u64(&f[0], UINT64_MAX, &m->u.heartbeat.seq) ? 0 : -EBADMSG;
    case WM_MSG_READY:
        if (!get_u64(&f[0], UINT32_MAX, &u))
            return -EBADMSG;
        m->u.ready.credits = (uint32_t)u;
        return 0;
    case WM_MSG_JOB:
        if (!get_u64(&f[0], UINT64_MAX, &m->u.job.id))
            return -EBADMSG;
        m->u.job.url = get_str(&f[1]);
        if (!m->u.job.url)
            return -EBADMSG;
        if (get_headers(&f[2], &m->u.job.headers, &m->u.job.n_headers, why))
            return -EBADMSG;
        *why = "bad field";
        if (!get_u64(&f[3], UINT32_MAX, &u))
            return -EBADMSG;
        m->u.job.timeout_ms = (uint32_t)u;
        if (!get_u64(&f[4], UINT32_MAX, &u))
            return -EBADMSG;
        m->u.job.max_body = (uint32_t)u;
        return 0;
    case WM_MSG_RESULT:
        if (!get_u64(&f[0], UINT64_MAX, &m->u.result.id) || !get_i64(&f[1], 0, 999, &i))
            return -EBADMSG;
        m->u.result.status = (int)i;
        if (get_headers(&f[2], &m->u.result.headers, &m->u.result.n_headers, why))
            return -EBADMSG;
        *why = "bad field";
        {
            const char *ptr;
            size_t len;
            if (f[3].type == MSGPACK_OBJECT_BIN) {
                ptr = f[3].via.bin.ptr;
                len = f[3].via.bin.size;
            } else if (f[3].type == MSGPACK_OBJECT_STR) {   /* liberal: str body */
                ptr = f[3].via.str.ptr;
                len = f[3].via.str.size;
            } else if (f[3].type == MSGPACK_OBJECT_NIL) {
                ptr = NULL;
                len = 0;
            } else {
                *why = "body not bin";
                return -EBADMSG;
            }
            if (len) {
                m->u.result.body = wm_malloc(len);
                memcpy(m->u.result.body, ptr, len);
                m->u.result.body_len = len;
            }
        }
        if (!get_opt_str(&f[4], &m->u.result.error) || !get_u64(&f[5], UINT32_MAX, &u))
            return -EBADMSG;
        m->u.result.elapsed_us = (uint32_t)u;
        return 0;
    }
    *why = "unknown type";
    return -EBADMSG;
}

int wm_msg_decode(const void *data, size_t len, struct wm_msg *out, const char **why)
{
    msgpack_unpacked up;
    const char *dummy;
    size_t off = 0;
    uint64_t v;
    int rc = -EBADMSG;

    if (!why)
        why = &dummy;
    memset(out, 0, sizeof *out);
    msgpack_unpacked_init(&up);
    if (!data || len == 0 || !wm_msgpack_plausible(data, len)) {
        *why = "not msgpack";
        goto cleanup;
    }
    msgpack_unpack_return r = msgpack_unpack_next(&up, data, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS) {
        *why = "not msgpack";
        goto cleanup;
    }
    if (off != len) {
        *why = "trailing bytes";
        goto cleanup;
    }
    const msgpack_object *top = &up.data;
    if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size < 3) {
        *why = "not an array of at least 3";
        goto cleanup;
    }
    const msgpack_object *a = top->via.array.ptr;
    if (!get_u64(&a[0], UINT64_MAX, &v)) {
        *why = "bad version";
        goto cleanup;
    }
    if (v != WM_MSG_VERSION) {
        *why = "unknown version";
        rc = -EPROTONOSUPPORT;
        goto cleanup;
    }
    if (!get_u64(&a[1], UINT64_MAX, &v) || !known_type(v)) {
        *why = "unknown type";
        goto cleanup;
    }
    out->type = (enum wm_msg_type)v;
    if (!get_u64(&a[2], UINT64_MAX, &out->instance)) {
        *why = "bad instance";
        goto cleanup;
    }
    /* Extra trailing fields are ignored so a later release can append fields without
     * a version bump; missing ones are an error. */
    if (top->via.array.size - 3 < kinds[out->type].n_fields) {
        *why = "missing fields";
        goto cleanup;
    }
    rc = decode_fields(a + 3, out, why);
cleanup:
    msgpack_unpacked_destroy(&up);
    if (rc)
        wm_msg_clear(out);
    return rc;
}

void wm_msg_clear(struct wm_msg *m)
{
    if (!m)
        return;
    switch (m->type) {
    case WM_MSG_BUMP:
        free(m->u.bump.path);
        break;
    case WM_MSG_RESYNC:
        free(m->u.resync.reason);
        break;
    case WM_MSG_JOB:
        free(m->u.job.url);
        free_headers(m->u.job.headers, m->u.job.n_headers);
        break;
    case WM_MSG_RESULT:
        free_headers(m->u.result.headers, m->u.result.n_headers);
        free(m->u.result.body);
        free(m->u.result.error);
        break;
    default:
        break;
    }
    memset(m, 0, sizeof *m);
}

const char *wm_msg_type_name(enum wm_msg_type t)
{
    switch (t) {
    case WM_MSG_BUMP: return "BUMP";
    case WM_MSG_RESYNC: return "RESYNC";
    case WM_MSG_HEARTBEAT: return "HEARTBEAT";
    case WM_MSG_READY: return "READY";
    case WM_MSG_JOB: return "JOB";
    case WM_MSG_RESULT: return "RESULT";
    }
    return "?";
}

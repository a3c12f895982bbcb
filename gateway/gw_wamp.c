/* gw_wamp: WAMP v2 frames <-> jansson arrays for wamp.2.json and wamp.2.msgpack, plus
 * the hand-written EVENT encoder (no jansson tree: a 1 MiB body costs one escape pass).
 * The only gateway file that includes msgpack.h. */
#include "gw_wamp.h"
#include "wm_mpscan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/* Nesting limit for decode and encode; WAMP messages need about five levels. It also
 * matches msgpack-c's own parser stack (MSGPACK_EMBED_STACK_SIZE). */
#define GW_WAMP_MAX_DEPTH 32

/* ---- UTF-8 ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is invalid: overlong,
 * surrogate, above U+10FFFF, a stray continuation byte or a truncated sequence. */
static size_t utf8_seq(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];

    if (c < 0x80)
        return 1;
    if (c < 0xC2)   /* continuation byte, or a 2-byte lead that can only be overlong */
        return 0;
    if (c < 0xE0)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0;   /* overlong, or U+D800..U+DFFF */
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0;   /* overlong, or above U+10FFFF */
        return 4;
    }
    return 0;
}

bool gw_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        /* Most bodies are ASCII: test eight bytes at once for a high bit. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Appends s with every invalid sequence replaced by U+FFFD: headers and errors come
 * from the backend and may hold Latin-1, but a frame must carry valid UTF-8 text. */
static void utf8_sanitize(struct wm_buf *b, const uint8_t *s, size_t len)
{
    size_t i = 0, start = 0;

    wm_buf_reserve(b, len + 8);
    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        wm_buf_append(b, s + start, i - start);
        wm_buf_append(b, "\xEF\xBF\xBD", 3);
        start = ++i;
    }
    wm_buf_append(b, s + start, len - start);
}

/* ---- decode ----------------------------------------------------------------------- */

/* True when no container in v (itself at level depth) sits deeper than the limit.
 * jansson's own parser allows 2048 levels. */
static bool json_depth_ok(const json_t *v, int depth)
{
    size_t i;
    const char *key;
    json_t *item;

    if (!json_is_array(v) && !json_is_object(v))
        return true;
    if (depth > GW_WAMP_MAX_DEPTH)
        return false;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            if (!json_depth_ok(item, depth + 1))
                return false;
    } else {
        json_object_foreach((json_t *)v, key, item)
            if (!json_depth_ok(item, depth + 1))
                return false;
    }
    return true;
}

static json_t *decode_json(const void *data, size_t len, const char **why)
{
    json_error_t err;
    /* ALLOW_NUL: a client may send the WAMP binary form ("\u0000" + base64) in an
     * argument; msgpack str may hold NUL too, so both forms decode alike. DECODE_ANY:
     * a scalar is reported as "not an array" rather than as a syntax error. */
    json_t *v = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

    if (!v) {
        *why = json_error_code(&err) == json_error_end_of_input_expected ?
            "trailing data" : "invalid JSON";
        return NULL;
    }
    if (!json_depth_ok(v, 1)) {
        json_decref(v);
        *why = "too deep";
        return NULL;
    }
    return v;
}

static json_t *mp_to_json(const msgpack_object *o, int depth, const char **why);

static json_t *mp_array(const msgpack_object_array *a, int depth, const char **why)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; i < a->size; i++) {
        json_t *item;
        if (a->ptr[i].type == MSGPACK_OBJECT_EXT)
            item = json_null();   /* keep positions: args are positional */
        else if (!(item = mp_to_json(&a->ptr[i], depth + 1, why)))
            goto fail;
        json_array_append_new(arr, item);
    }
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

static json_t *mp_map(const msgpack_object_map *m, int depth, const char **why)
{
    json_t *obj = json_object();

    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *val = &m->ptr[i].val;
        json_t *item;
        if (k->type != MSGPACK_OBJECT_STR) {
            *why = "non-string key";
            goto fail;
        }
        if (!gw_utf8_valid((const uint8_t *)k->via.str.ptr, k->via.str.size)) {
            *why = "invalid UTF-8";
            goto fail;
        }
        if (val->type == MSGPACK_OBJECT_EXT)
            continue;   /* an option given as an extension counts as absent */
        if (!(item = mp_to_json(val, depth + 1, why)))
            goto fail;
        json_object_setn_new_nocheck(obj, k->via.str.size ? k->via.str.ptr : "",
                                     k->via.str.size, item);
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

static json_t *mp_to_json(const msgpack_object *o, int depth, const char **why)
{
    json_t *v = NULL;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            *why = "integer too large";
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!(v = json_real(o->via.f64)))   /* NaN and infinities have no JSON form */
            *why = "invalid number";
        return v;
    case MSGPACK_OBJECT_STR:
        if (!gw_utf8_valid((const uint8_t *)o->via.str.ptr, o->via.str.size)) {
            *why = "invalid UTF-8";
            return NULL;
        }
        return json_stringn_nocheck(o->via.str.size ? o->via.str.ptr : "",
                                    o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_stringn_nocheck(o->via.bin.size ? o->via.bin.ptr : "",
                                    o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        if (depth > GW_WAMP_MAX_DEPTH) {
            *why = "too deep";
            return NULL;
        }
        return o->type == MSGPACK_OBJECT_ARRAY ? mp_array(&o->via.array, depth, why)
                                               : mp_map(&o->via.map, depth, why);
    case MSGPACK_OBJECT_EXT:
    default:
        return json_null();   /* only reached at the top level, rejected there */
    }
}

static json_t *decode_msgpack(const void *data, size_t len, const char **why)
{
    msgpack_unpacked up;
    size_t off = 0;
    json_t *v = NULL;

    msgpack_unpacked_init(&up);
    if (!wm_msgpack_plausible(data, len)) {
        *why = "invalid msgpack";
        goto done;
    }
    switch (msgpack_unpack_next(&up, data, len, &off)) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        /* msgpack-c also reports a nesting deeper than its 32-entry stack this way. */
        *why = "too deep";
        goto done;
    default:   /* CONTINUE (truncated), PARSE_ERROR */
        *why = "invalid msgpack";
        goto done;
    }
    if (off != len) {
        *why = "trailing data";
        goto done;
    }
    if (up.data.type != MSGPACK_OBJECT_ARRAY) {
        *why = "not an array";
        goto done;
    }
    v = mp_to_json(&up.data, 1, why);
done:
    msgpack_unpacked_destroy(&up);
    return v;
}

json_t *gw_wamp_decode(enum gw_ser ser, const void *data, size_t len, const char **why)
{
    const char *dummy = NULL;
    json_t *msg = NULL;

    if (!why)
        why = &dummy;
    *why = NULL;
    if (!data && len) {
        *why = "no data";
        return NULL;
    }
    if (!data)
        data = "";
    if (ser == GW_SER_JSON)
        msg = decode_json(data, len, why);
    else if (ser == GW_SER_MSGPACK)
        msg = decode_msgpack(data, len, why);
    else
        *why = "unknown serializer";
    if (!msg)
        return NULL;
    if (!json_is_array(msg))
        *why = "not an array";
    else if (json_array_size(msg) == 0)
        *why = "empty array";
    else if (!json_is_integer(json_array_get(msg, 0)))
        *why = "no message code";
    if (*why) {
        json_decref(msg);
        return NULL;
    }
    return msg;
}

/* ---- encode (generic) ------------------------------------------------------------- */

static int buf_write_cb(void *data, const char *buf, size_t len)
{
    wm_buf_append(data, buf, len);
    return 0;
}

static int json_dump_cb(const char *buf, size_t len, void *data)
{
    return buf_write_cb(data, buf, len);
}

static int mp_put_json(msgpack_packer *pk, const json_t *v, int depth)
{
    size_t i;
    json_t *item;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth > GW_WAMP_MAX_DEPTH)   /* also stops a reference cycle */
            return -EINVAL;
        if (json_is_array(v)) {
            msgpack_pack_array(pk, json_array_size(v));
            json_array_foreach(v, i, item)
                if (mp_put_json(pk, item, depth + 1) < 0)
                    return -EINVAL;
            return 0;
        }
        msgpack_pack_map(pk, json_object_size(v));
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            size_t klen = json_object_iter_key_len(it);
            msgpack_pack_str(pk, klen);
            msgpack_pack_str_body(pk, json_object_iter_key(it), klen);
            if (mp_put_json(pk, json_object_iter_value(it), depth + 1) < 0)
                return -EINVAL;
        }
        return 0;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        /* msgpack-c picks the smallest encoding for the value. */
        msgpack_pack_int64(pk, json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    return -EINVAL;
}

int gw_wamp_encode(enum gw_ser ser, const json_t *msg, struct wm_buf *out)
{
    size_t start;
    int rc = -EINVAL;

    if (!msg || !out || !json_is_array(msg))
        return -EINVAL;
    start = out->len;
    if (ser == GW_SER_JSON) {
        /* Walks the tree once straight into out (json_dumpb would need two passes). */
        if (json_dump_callback(msg, json_dump_cb, out, JSON_COMPACT) == 0)
            rc = 0;
    } else if (ser == GW_SER_MSGPACK) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, buf_write_cb);
        rc = mp_put_json(&pk, msg, 1);
    }
    if (rc < 0) {   /* leave out as it was */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* ---- EVENT ------------------------------------------------------------------------ */

/* Bytes that need work in a JSON string: '"', '\\', controls, and all non-ASCII (which
 * is checked for valid UTF-8 and then copied). */
static const uint8_t json_special[256] = {
    [0x00 ... 0x1F] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xFF] = 1,
};

/* Appends s as a JSON string. Valid UTF-8 is copied as is (U+2028 included: it is
 * valid JSON); invalid sequences become U+FFFD. Writes straight into the buffer, one
 * worst-case reservation per block, because bodies are escape-dense (JSON, HTML) and
 * a call per escape made this the slowest part of an EVENT. */
static void json_put_str(struct wm_buf *b, const uint8_t *s, size_t len)
{
    enum { BLOCK = 4096 };
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    wm_buf_append(b, "\"", 1);
    while (i < len) {
        size_t end = len - i > BLOCK ? i + BLOCK : len;
        wm_buf_reserve(b, (end - i) * 6 + 8);   /* 6: "\u00XX"; sequences may run over */
        char *o = b->data + b->len;
        while (i < end) {
            uint8_t c = s[i];
            if (!json_special[c]) {
                *o++ = (char)c;
                i++;
                continue;
            }
            if (c >= 0x80) {
                size_t n = utf8_seq(s + i, len - i);
                if (n) {
                    memcpy(o, s + i, n);   /* at most 3 bytes past end: reserved */
                    o += n;
                    i += n;
                } else {
                    memcpy(o, "\xEF\xBF\xBD", 3);
                    o += 3;
                    i++;
                }
                continue;
            }
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                memcpy(o, "u00", 3);
                o[3] = hex[c >> 4];
                o[4] = hex[c & 15];
                o += 5;
            }
            i++;
        }
        b->len = (size_t)(o - b->data);
    }
    wm_buf_append(b, "\"", 1);
}

static void json_put_cstr(struct wm_buf *b, const char *s)
{
    json_put_str(b, (const uint8_t *)s, strlen(s));
}

/* The WAMP binary convention for JSON: "\u0000" followed by standard base64. A local
 * encoder: lws_b64_encode_string takes int sizes and measured 5x slower (1.5 ns/byte). */
static void json_put_binary(struct wm_buf *b, const uint8_t *s, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;

    wm_buf_reserve(b, (len + 2) / 3 * 4 + 16);
    wm_buf_append(b, "\"\\u0000", 7);
    char *o = b->data + b->len;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[0] = tab[v >> 18];
        o[1] = tab[(v >> 12) & 63];
        o[2] = tab[(v >> 6) & 63];
        o[3] = tab[v & 63];
        o += 4;
    }
    if (len - i) {
        uint32_t v = (uint32_t)s[i] << 16 | (len - i == 2 ? (uint32_t)s[i + 1] << 8 : 0);
        o[0] = tab[v >> 18];
        o[1] = tab[(v >> 12) & 63];
        o[2] = len - i == 2 ? tab[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    b->len = (size_t)(o - b->data);
    wm_buf_append(b, "\"", 1);
}

static void mp_put_str(msgpack_packer *pk, const uint8_t *s, size_t len)
{
    if (gw_utf8_valid(s, len)) {
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, s, len);
        return;
    }
    struct wm_buf tmp = WM_BUF_INIT;
    utf8_sanitize(&tmp, s, len);
    msgpack_pack_str(pk, tmp.len);
    msgpack_pack_str_body(pk, tmp.data, tmp.len);
    wm_buf_free(&tmp);
}

static void mp_put_cstr(msgpack_packer *pk, const char *s)
{
    mp_put_str(pk, (const uint8_t *)s, strlen(s));
}

struct hdr_ix {
    const char *name;
    size_t i;
};

static int hdr_ix_cmp(const void *a, const void *b)
{
    const struct hdr_ix *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Marks in skip[] the headers to leave out (no name, or a name seen before: the first
 * one wins). Returns how many remain. */
static size_t headers_mark(const struct wm_header *h, size_t n, bool *skip)
{
    size_t kept = 0, m = 0;
    struct hdr_ix *ix = wm_malloc(n * sizeof *ix);

    for (size_t i = 0; i < n; i++) {
        skip[i] = h[i].name == NULL;
        if (!skip[i])
            ix[m++] = (struct hdr_ix){h[i].name, i};
    }
    /* Sorting by (name, position) puts each name's first header first: O(n log n)
     * however many headers a backend sends. */
    qsort(ix, m, sizeof *ix, hdr_ix_cmp);
    for (size_t j = 0; j < m; j++) {
        if (j > 0 && strcmp(ix[j].name, ix[j - 1].name) == 0)
            skip[ix[j].i] = true;
        else
            kept++;
    }
    free(ix);
    return kept;
}

static void event_json(uint64_t sub, uint64_t pub, const char *topic, bool retained,
                      const struct gw_page *p, const bool *skip, struct wm_buf *out)
{
    bool first = true;

    wm_buf_printf(out, "[%d,%" PRIu64 ",%" PRIu64 ",{\"topic\":", WAMP_EVENT, sub, pub);
    json_put_cstr(out, topic);
    if (retained)
        wm_buf_puts(out, ",\"retained\":true");
    wm_buf_printf(out, "},[],{\"status\":%d,\"headers\":{", p->status);
    for (size_t i = 0; i < p->n_headers; i++) {
        if (skip[i])
            continue;
        if (!first)
            wm_buf_append(out, ",", 1);
        first = false;
        json_put_cstr(out, p->headers[i].name);
        wm_buf_append(out, ":", 1);
        json_put_cstr(out, p->headers[i].value ? p->headers[i].value : "");
    }
    wm_buf_puts(out, "},\"body\":");
    /* A text body starting with NUL would read as the binary form: send it as binary. */
    if (gw_utf8_valid(p->body, p->body_len) && (p->body_len == 0 || p->body[0] != 0))
        json_put_str(out, p->body, p->body_len);
    else
        json_put_binary(out, p->body, p->body_len);
    if (p->error) {
        wm_buf_puts(out, ",\"error\":");
        json_put_cstr(out, p->error);
    }
    wm_buf_puts(out, "}]");
}

static void event_msgpack(uint64_t sub, uint64_t pub, const char *topic, bool retained,
                          const struct gw_page *p, const bool *skip, size_t n_kept,
                          struct wm_buf *out)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, buf_write_cb);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, WAMP_EVENT);
    msgpack_pack_uint64(&pk, sub);
    msgpack_pack_uint64(&pk, pub);
    msgpack_pack_map(&pk, retained ? 2 : 1);
    mp_put_cstr(&pk, "topic");
    mp_put_cstr(&pk, topic);
    if (retained) {
        mp_put_cstr(&pk, "retained");
        msgpack_pack_true(&pk);
    }
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, p->error ? 4 : 3);
    mp_put_cstr(&pk, "status");
    msgpack_pack_int(&pk, p->status);
    mp_put_cstr(&pk, "headers");
    msgpack_pack_map(&pk, n_kept);
    for (size_t i = 0; i < p->n_headers; i++) {
        if (skip[i])
            continue;
        mp_put_cstr(&pk, p->headers[i].name);
        mp_put_cstr(&pk, p->headers[i].value ? p->headers[i].value : "");
    }
    mp_put_cstr(&pk, "body");
    if (gw_utf8_valid(p->body, p->body_len)) {
        msgpack_pack_str(&pk, p->body_len);
        msgpack_pack_str_body(&pk, p->body, p->body_len);
    } else {
        msgpack_pack_bin(&pk, p->body_len);
        msgpack_pack_bin_body(&pk, p->body, p->body_len);
    }
    if (p->error) {
        mp_put_cstr(&pk, "error");
        mp_put_cstr(&pk, p->error);
    }
}

int gw_wamp_encode_event(enum gw_ser ser, uint64_t sub, uint64_t pub, const char *topic,
                         bool retained, const struct gw_page *page, struct wm_buf *out)
{
    static const uint8_t empty[1] = {0};
    struct gw_page p;
    bool *skip = NULL;
    size_t n_kept = 0, hdr_bytes = 0;

    if (!topic || !page || !out || (ser != GW_SER_JSON && ser != GW_SER_MSGPACK) ||
        sub < 1 || sub > (uint64_t)WAMP_ID_MAX || pub < 1 ||
        pub > (uint64_t)WAMP_ID_MAX ||
        (!page->body && page->body_len) || (!page->headers && page->n_headers))
        return -EINVAL;
    p = *page;
    if (!p.body)
        p.body = empty;
    if (p.n_headers) {
        skip = wm_calloc(p.n_headers, sizeof *skip);
        n_kept = headers_mark(p.headers, p.n_headers, skip);
        for (size_t i = 0; i < p.n_headers; i++)
            if (!skip[i])
                hdr_bytes += strlen(p.headers[i].name) +
                             (p.headers[i].value ? strlen(p.headers[i].value) : 0) + 8;
    }
    /* Reserve most of it up front (base64 size; an escape-dense text body grows more
     * and json_put_str reserves that itself): a large body is not copied by doubling. */
    wm_buf_reserve(out, p.body_len / 3 * 4 + hdr_bytes + strlen(topic) + 128);
    if (ser == GW_SER_JSON)
        event_json(sub, pub, topic, retained, &p, skip, out);
    else
        event_msgpack(sub, pub, topic, retained, &p, skip, n_kept, out);
    free(skip);
    return 0;
}

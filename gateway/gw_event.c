/* gw_event: refcounted wire frames (payload behind LWS_PRE headroom) and the shared
 * fetched page, encoded into an EVENT at most once per serializer and retained flag. */
#include "gw_event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Starts a buffer with LWS_PRE bytes of headroom, so the encoders append the payload
 * right behind it and the frame adopts the memory without a copy. */
static void headroom_init(struct wm_buf *b, size_t expect)
{
    *b = (struct wm_buf)WM_BUF_INIT;
    wm_buf_reserve(b, LWS_PRE + expect);
    memset(b->data, 0, LWS_PRE);
    b->len = LWS_PRE;
}

/* Takes the memory of b (which must start with the headroom) and clears b. */
static struct gw_frame *frame_adopt(enum gw_ser ser, struct wm_buf *b)
{
    struct gw_frame *f = wm_calloc(1, sizeof *f);

    f->refs = 1;
    f->binary = ser == GW_SER_MSGPACK;
    f->len = b->len - LWS_PRE;
    f->buf = (unsigned char *)b->data;
    *b = (struct wm_buf)WM_BUF_INIT;
    return f;
}

struct gw_frame *gw_frame_new(enum gw_ser ser, const void *payload, size_t len)
{
    struct wm_buf b;

    if (!payload && len)
        return NULL;
    headroom_init(&b, len);
    if (len)
        wm_buf_append(&b, payload, len);
    return frame_adopt(ser, &b);
}

struct gw_frame *gw_frame_from_json(enum gw_ser ser, const json_t *msg)
{
    struct wm_buf b;

    headroom_init(&b, 256);
    if (gw_wamp_encode(ser, msg, &b) < 0) {
        wm_buf_free(&b);
        return NULL;
    }
    return frame_adopt(ser, &b);
}

struct gw_frame *gw_frame_ref(struct gw_frame *f)
{
    if (f)
        f->refs++;
    return f;
}

void gw_frame_unref(struct gw_frame **f)
{
    if (!f || !*f)
        return;
    if (--(*f)->refs == 0) {
        free((*f)->buf);
        free(*f);
    }
    *f = NULL;
}

struct gw_event *gw_event_new(uint64_t sub_id, uint64_t pub_id, const char *topic,
                              struct wm_msg *result, size_t max_message)
{
    struct gw_event *e;

    if (!result)
        return NULL;
    if (!topic) {
        wm_msg_clear(result);   /* ownership was handed over either way */
        return NULL;
    }
    e = wm_calloc(1, sizeof *e);
    e->refs = 1;
    e->sub_id = sub_id;
    e->pub_id = pub_id;
    e->topic = wm_strdup(topic);
    e->result = *result;
    memset(result, 0, sizeof *result);
    e->max_message = max_message;
    return e;
}

struct gw_event *gw_event_ref(struct gw_event *e)
{
    if (e)
        e->refs++;
    return e;
}

void gw_event_unref(struct gw_event **e)
{
    if (!e || !*e)
        return;
    if (--(*e)->refs == 0) {
        for (int s = 0; s < 2; s++)
            for (int r = 0; r < 2; r++)
                gw_frame_unref(&(*e)->frame[s][r]);
        free((*e)->topic);
        wm_msg_clear(&(*e)->result);
        free(*e);
    }
    *e = NULL;
}

static struct gw_frame *encode_page(const struct gw_event *e, enum gw_ser ser,
                                    bool retained, const struct gw_page *page)
{
    struct wm_buf b;

    headroom_init(&b, page->body_len + 256);
    if (gw_wamp_encode_event(ser, e->sub_id, e->pub_id, e->topic, retained, page,
                             &b) < 0) {
        wm_buf_free(&b);
        return NULL;
    }
    return frame_adopt(ser, &b);
}

struct gw_frame *gw_event_frame(struct gw_event *e, enum gw_ser ser, bool retained,
                                bool *too_large)
{
    struct gw_frame *f;
    char reason[96];

    if (too_large)
        *too_large = false;
    if (!e || (ser != GW_SER_JSON && ser != GW_SER_MSGPACK))
        return NULL;
    if (e->frame[ser][retained])
        return e->frame[ser][retained];

    const struct gw_page page = {
        .status = e->result.u.result.status,
        .headers = e->result.u.result.headers,
        .n_headers = e->result.u.result.n_headers,
        .body = e->result.u.result.body,
        .body_len = e->result.u.result.body_len,
        .error = e->result.u.result.error,
    };
    if (!(f = encode_page(e, ser, retained, &page)))
        return NULL;
    if (e->max_message && f->len > e->max_message) {
        /* Some clients drop a session on an oversized message: say why instead. */
        snprintf(reason, sizeof reason, "page too large: %zu bytes (limit %zu)", f->len,
                 e->max_message);
        const struct gw_page big = {
            .status = 502,
            .body = (const uint8_t *)reason,
            .body_len = strlen(reason),
            .error = reason,
        };
        gw_frame_unref(&f);
        if (!(f = encode_page(e, ser, retained, &big)))
            return NULL;
        if (too_large)
            *too_large = true;
    }
    e->frame[ser][retained] = f;
    return f;
}

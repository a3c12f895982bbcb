/* gw_event: one fetched page, shared by every session that receives it, and the
 * refcounted wire frames it is encoded into (once per serializer and retained flag). */
#ifndef GW_EVENT_H
#define GW_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_wamp.h"
#include "wm_msg.h"

/* A ready-to-write websocket payload with LWS_PRE bytes of headroom before it. */
struct gw_frame {
    int refs;
    bool binary;          /* msgpack: binary frame; JSON: text frame */
    size_t len;           /* payload length (after the headroom) */
    unsigned char *buf;   /* owned: LWS_PRE + len bytes; payload at buf + LWS_PRE */
};

/* Builds a frame from the encoding of msg for ser. Returns NULL on encode failure. */
struct gw_frame *gw_frame_from_json(enum gw_ser ser, const json_t *msg);
/* A frame holding a copy of payload[0..len) behind the headroom (payload stays the
 * caller's). One reference; NULL when payload is NULL with len > 0. */
struct gw_frame *gw_frame_new(enum gw_ser ser, const void *payload, size_t len);
struct gw_frame *gw_frame_ref(struct gw_frame *f);
void gw_frame_unref(struct gw_frame **f);   /* NULL-safe, clears the pointer */
static inline unsigned char *gw_frame_payload(struct gw_frame *f);

struct gw_event {
    int refs;
    uint64_t sub_id;      /* the topic's subscription id */
    uint64_t pub_id;      /* publication id, new for every page */
    char *topic;          /* owned */
    struct wm_msg result; /* owned RESULT (status, headers, body, error) */
    size_t max_message;   /* frame cap: a larger encoding is replaced by a 502 page */
    struct gw_frame *frame[2][2];  /* [ser][retained], encoded on first use */
};

/* Takes ownership of *result (it is cleared, also when NULL is returned for a NULL
 * topic). max_message 0 means no cap. */
struct gw_event *gw_event_new(uint64_t sub_id, uint64_t pub_id, const char *topic,
                              struct wm_msg *result, size_t max_message);
struct gw_event *gw_event_ref(struct gw_event *e);
void gw_event_unref(struct gw_event **e);
/* The encoded EVENT for a session of serializer ser. Borrowed: valid while e lives;
 * gw_frame_ref it to keep it. Counts pages_too_large via *too_large (may be NULL): set
 * true only by the call that encoded the 502 substitute, false otherwise, so a counter
 * counts each substitution once. Returns NULL only on an encode failure. */
struct gw_frame *gw_event_frame(struct gw_event *e, enum gw_ser ser, bool retained,
                                bool *too_large);

#include <libwebsockets.h>
static inline unsigned char *gw_frame_payload(struct gw_frame *f) { return f->buf + LWS_PRE; }

#endif

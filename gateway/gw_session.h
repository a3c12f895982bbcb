/* gw_session: the WAMP v2 router side of one client session (README.md "The client
 * interface") and its outgoing queue. No sockets: gw_server feeds whole messages in,
 * takes frames out when writable, and is asked through gw_session_io to wake or kill. */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_broker.h"
#include "gw_event.h"
#include "gw_stats.h"
#include "gw_wamp.h"

#define GW_SESSION_MAX_CONTROL 1024   /* queued control frames before it is a violation */
#define GW_TICKET_MAX 4096            /* longest accepted token */

/* What the transport does for a session. Both may be called from inside broker
 * callbacks, so they must only schedule work (never free the session). */
struct gw_session_io {
    void (*want_write)(void *transport);  /* frames are queued: call back when writable */
    void (*kill)(void *transport);        /* close now, without flushing the queue */
};

/* Shared by every session; owned by the engine, borrowed by each session. */
struct gw_session_env {
    struct gw_broker *broker;
    struct gw_stats *stats;
    const char *realm;
    bool allow_anonymous;
    size_t max_path;              /* topic length cap (WAYMARK_MAX_PATH) */
    size_t queue_bytes;           /* per-session queue cap (WAYMARK_SESSION_QUEUE_BYTES) */
    struct gw_session_io io;
};

enum gw_session_state {
    GW_SESSION_ESTABLISHING = 0,  /* waiting for HELLO */
    GW_SESSION_CHALLENGED,        /* CHALLENGE sent, waiting for AUTHENTICATE */
    GW_SESSION_ESTABLISHED,
    GW_SESSION_CLOSING,           /* GOODBYE or ABORT queued or received: no more input */
};

/* How the transport should close once the queue is flushed. */
enum gw_close_kind {
    GW_CLOSE_NONE = 0,
    GW_CLOSE_AFTER_FLUSH,         /* ABORT/GOODBYE queued: write it, then close */
    GW_CLOSE_NOW,                 /* killed (slow client): close without flushing */
};

struct gw_session;

/* A new session in ESTABLISHING. env and transport are borrowed for its lifetime;
 * peer (for log lines) is copied. */
struct gw_session *gw_session_new(const struct gw_session_env *env, enum gw_ser ser,
                                  void *transport, const char *peer);
/* Leaves the broker (drops its subscriptions and token), drops queued frames
 * (counted as events_dropped). NULL-safe, clears the pointer. Must not be called from
 * inside a broker callback. */
void gw_session_free(struct gw_session **s);

/* One whole websocket message from the client. Malformed input queues an ABORT
 * (protocol violation) and marks the session for closing; never fails otherwise. */
void gw_session_on_message(struct gw_session *s, const void *data, size_t len);

/* The broker's deliver callback (gw_deliver_fn): queues the EVENT frame with latest-
 * wins replacement, or closes a session whose queue passes its byte cap. */
void gw_session_deliver(void *session, uint64_t sub_id, struct gw_event *ev, bool retained);

/* The next frame to write (the caller owns the returned reference), or NULL.
 * *is_event tells whether it is an EVENT (for the delivery counters). */
struct gw_frame *gw_session_take_frame(struct gw_session *s, bool *is_event);
bool gw_session_has_output(const struct gw_session *s);
enum gw_close_kind gw_session_close_kind(const struct gw_session *s);
enum gw_session_state gw_session_state(const struct gw_session *s);
enum gw_ser gw_session_ser(const struct gw_session *s);
uint64_t gw_session_id(const struct gw_session *s);   /* 0 before WELCOME */

/* Server shutdown: an established session gets GOODBYE "wamp.close.system_shutdown"
 * and closes after it is written; a session still in the handshake gets ABORT. */
void gw_session_shutdown(struct gw_session *s);

#endif

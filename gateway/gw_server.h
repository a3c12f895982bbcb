/* gw_server: the websocket side of the gateway (libwebsockets 4.1.6 on the engine's
 * libuv loop): one vhost on WAYMARK_LISTEN, subprotocols wamp.2.json and
 * wamp.2.msgpack, one gw_session per connection. */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "gw_session.h"
#include "wm_config.h"

struct gw_server_config {
    const struct wm_listen *listen;        /* borrowed */
    size_t max_message_bytes;              /* reassembled message cap (close 1009) */
    size_t max_sessions;                   /* further handshakes are refused */
    void *uv_loop;                         /* borrowed uv_loop_t lws runs on */
    unsigned join_s;                       /* websocket open to WELCOME, or closed */
    unsigned ping_s;                       /* silent this long: a ping is sent ... */
    unsigned ping_grace_s;                 /* ... and this much longer: closed */
};

struct gw_server;

/* Creates the lws context and the listening vhost. env is copied (its io is set by
 * the server); the broker and stats it points to must outlive the server. Returns
 * NULL with a one-line reason in err (e.g. the listen address is in use). */
struct gw_server *gw_server_new(const struct gw_server_config *cfg,
                                const struct gw_session_env *env, char *err, size_t errlen);
/* Destroys the context: every open session is closed and freed, and the loop is run
 * until lws has closed its handles. NULL-safe. */
void gw_server_free(struct gw_server **s);


/* Says GOODBYE (wamp.close.system_shutdown) to every session and gives each a short
 * deadline to finish closing. */
void gw_server_shutdown(struct gw_server *s);
/* Open websocket sessions. */
size_t gw_server_sessions(const struct gw_server *s);
/* Fires the per-connection deadlines due by now_ms (monotonic): join, idle ping and
 * hang-up, close flush. Call it a few times a second. Returns how many fired. */
size_t gw_server_tick(struct gw_server *s, int64_t now_ms);

#endif

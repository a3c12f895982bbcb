/* gw_engine: the gateway process in one lws event loop: the websocket server, the
 * ZeroMQ SUB (bumps) and ROUTER (fetchers) sockets adopted as raw descriptors, the
 * metrics endpoint, a 100 ms timer, and an orderly shutdown on SIGINT/SIGTERM. */
#ifndef GW_ENGINE_H
#define GW_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_config.h"

/* Everything the gateway is configured with; all pointers borrowed for the engine's
 * lifetime (main keeps the parsed settings alive). */
struct gw_engine_config {
    const struct wm_listen *listen;
    const char *realm;
    const struct wm_endpoints *bump_endpoints;   /* SUB connects to each */
    const char *fetch_endpoint;                  /* ROUTER binds it */
    const struct wm_listen *metrics_listen;      /* disabled: no metrics server */
    const char *backend_url;
    const struct wm_auth_header *auth;
    bool allow_anonymous;
    uint32_t fetch_timeout_ms;
    uint32_t max_page_bytes;
    size_t max_message_bytes;
    size_t max_subscriptions;
    size_t session_queue_bytes;
    size_t max_sessions;
    size_t max_path;
};

struct gw_engine;

/* Builds everything and starts listening. Returns NULL with a one-line reason in err
 * when a socket cannot be bound (the caller exits 1). */
struct gw_engine *gw_engine_new(const struct gw_engine_config *cfg, char *err, size_t errlen);

/* Runs until SIGINT or SIGTERM (or gw_engine_stop), then says GOODBYE to the sessions
 * and waits for them at most GW_SHUTDOWN_MS. Returns 0. */
int gw_engine_run(struct gw_engine *e);
#define GW_SHUTDOWN_MS 1500

/* Asks the loop to stop. Async-signal-safe. */
void gw_engine_stop(struct gw_engine *e);

/* Closes every session and socket and frees everything. NULL-safe. */
void gw_engine_free(struct gw_engine **e);

#endif

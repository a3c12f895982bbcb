/* gw_engine: the gateway process in one libuv event loop: the websocket server (lws on
 * that loop), the ZeroMQ SUB (bumps) and ROUTER (fetchers) sockets, the metrics
 * endpoint, a 100 ms timer, and an orderly shutdown when asked to stop. */
#ifndef GW_ENGINE_H
#define GW_ENGINE_H

#include <signal.h>
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
    bool push_unchanged;         /* push identical refetches too; no conditional GETs */
    uint32_t fetch_timeout_ms;
    uint32_t max_page_bytes;
    size_t max_message_bytes;
    size_t max_subscriptions;
    size_t session_queue_bytes;
    size_t max_sessions;
    size_t max_path;
    unsigned join_timeout_s;     /* websocket open to WELCOME */
    unsigned ping_interval_s;    /* a silent client gets a websocket ping */
    unsigned ping_timeout_s;     /* and is closed if still silent this much later */
};

struct gw_engine;

/* Builds everything and starts listening. Returns NULL with a one-line reason in err
 * when a socket cannot be bound (the caller exits 1). */
struct gw_engine *gw_engine_new(const struct gw_engine_config *cfg, char *err, size_t errlen);

/* Runs until *stop becomes non-zero (set from a signal handler; seen within 100 ms),
 * then says GOODBYE to the sessions and waits for them at most GW_SHUTDOWN_MS.
 * Returns 0. */
int gw_engine_run(struct gw_engine *e, const volatile sig_atomic_t *stop);
#define GW_SHUTDOWN_MS 1500

/* Closes every session and socket and frees everything. NULL-safe. */
void gw_engine_free(struct gw_engine **e);

#endif

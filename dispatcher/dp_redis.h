/* dp_redis: the dispatcher's Redis pub-sub subscriber. A plain non-blocking hiredis
 * context driven by the engine's own poll loop (not hiredis' async API, whose libuv
 * adapter hangs on reconnect in 0.14: docs/libraries.md): it connects, authenticates,
 * SUBSCRIBEs, checks liveness with PING, and reconnects with capped backoff forever. */
#ifndef DP_REDIS_H
#define DP_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_config.h"
#include "wm_proto.h"

/* Connect (TCP + handshake up to the SUBSCRIBE confirmation) must finish within this. */
#define DP_REDIS_CONNECT_TIMEOUT_MS (WM_HEARTBEAT_MS * WM_HEARTBEAT_LIVENESS)

struct dp_redis_callbacks {
    /* SUBSCRIBE confirmed: the link is up and bumps flow from now on. first: this is
     * the first time since dp_redis_new (later ones are reconnects). */
    void (*on_up)(void *ud, bool first);
    /* A link that was up went down (why: short reason, borrowed for the call). A
     * reconnect is already scheduled. Failed attempts while down do not call this. */
    void (*on_down)(void *ud, const char *why);
    /* A message on the channel. data is borrowed until the callback returns, is not
     * NUL-terminated and may hold any bytes. */
    void (*on_message)(void *ud, const char *data, size_t len);
};

struct dp_redis;

/* Copies what it needs from url and channel. Does not connect yet: the first attempt
 * happens at the first dp_redis_tick. Returns NULL only on bad arguments. */
struct dp_redis *dp_redis_new(const struct wm_redis_url *url, const char *channel,
                              const struct dp_redis_callbacks *cb, void *ud);
/* Closes the connection (no callback) and frees; NULL-safe, clears *r. */
void dp_redis_free(struct dp_redis **r);

/* The socket to poll (changes across reconnects), or -1 while waiting to reconnect. */
int dp_redis_fd(const struct dp_redis *r);
/* ZMQ_POLLIN / ZMQ_POLLOUT bits to poll dp_redis_fd for (0 when fd is -1). */
short dp_redis_events(const struct dp_redis *r);
/* Call with the revents zmq_poll reported for dp_redis_fd (may be 0). */
void dp_redis_on_io(struct dp_redis *r, short revents, int64_t now_ms);
/* Runs timers: reconnect, connect timeout, PING, liveness. Call every loop turn. */
void dp_redis_tick(struct dp_redis *r, int64_t now_ms);
/* Monotonic time (ms) at which dp_redis_tick has something to do. */
int64_t dp_redis_next_ms(const struct dp_redis *r);

/* True while subscribed. */
bool dp_redis_up(const struct dp_redis *r);
/* Connection attempts after the first one (each retry counts). */
uint64_t dp_redis_reconnects(const struct dp_redis *r);

#endif

/* dp_engine: the dispatcher's single event loop. Reads bumps from Redis (dp_redis),
 * validates them (dp_bump) and publishes BUMP / RESYNC / HEARTBEAT on a ZeroMQ PUB
 * socket bound to WAYMARK_BUMP_ENDPOINT; serves /metrics and /healthz. */
#ifndef DP_ENGINE_H
#define DP_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_bump.h"
#include "wm_config.h"

struct dp_engine_config {
    const struct wm_redis_url *redis;   /* borrowed for dp_engine_new only */
    const char *channel;                /* Redis channel to SUBSCRIBE */
    const char *bump_endpoint;          /* one endpoint for the PUB socket to bind */
    const struct wm_listen *metrics;    /* NULL or !enabled: no metrics server */
    size_t max_path;                    /* 0: WM_PATH_MAX_DEFAULT */
};

/* Plain counters, rendered on /metrics (single-threaded: no atomics). */
struct dp_stats {
    uint64_t bumps_received;            /* every message from Redis, good or bad */
    uint64_t bumps_published;           /* BUMPs handed to the PUB socket */
    uint64_t bad_bumps[DP_BAD_N];
    uint64_t resyncs;
    uint64_t heartbeats;
    uint64_t publish_errors;            /* zmq_send failures (the seq gap tells gateways) */
};

struct dp_engine;

/* Creates the ZeroMQ context, binds the PUB socket and the metrics listener. Does not
 * touch Redis yet. Returns NULL with a one-line reason in err (e.g. "cannot bind
 * tcp://127.0.0.1:5555: Address already in use"). */
struct dp_engine *dp_engine_new(const struct dp_engine_config *cfg, char *err,
                                size_t errlen);

/* Runs the loop until *stop becomes non-zero (set from a signal handler); returns
 * within about half a second of that. Returns 0, or -errno when polling failed. */
int dp_engine_run(struct dp_engine *e, const volatile sig_atomic_t *stop);

/* Handles one payload as if it came from Redis: validates, counts, publishes a BUMP.
 * Returns 0 when a BUMP was published, else the dp_bump_parse or send error. */
int dp_engine_on_payload(struct dp_engine *e, const char *data, size_t len);

/* Publishes RESYNC{seq, reason} (reason borrowed). Returns 0 or -errno. */
int dp_engine_resync(struct dp_engine *e, const char *reason);

const struct dp_stats *dp_engine_stats(const struct dp_engine *e);
uint64_t dp_engine_instance(const struct dp_engine *e);
uint64_t dp_engine_last_seq(const struct dp_engine *e);

/* Closes every socket and frees; NULL-safe, clears *e. */
void dp_engine_free(struct dp_engine **e);

#endif

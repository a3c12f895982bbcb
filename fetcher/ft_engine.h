/* ft_engine: the fetcher's single event loop. One curl_multi_poll() waits on curl's
 * sockets, every gateway DEALER's ZMQ_FD and the metrics server; JOBs from a link run
 * on the shared curl pool and their RESULTs go back on the link they came from. */
#ifndef FT_ENGINE_H
#define FT_ENGINE_H

#include <signal.h>
#include <stdint.h>

#include "ft_http.h"
#include "wm_config.h"
#include "wm_http.h"
#include "wm_metrics.h"

struct ft_engine_config {
    const struct wm_endpoints *endpoints;  /* gateways to connect to (borrowed) */
    const char *backend_url;               /* origin every job URL must be under (borrowed) */
    uint32_t concurrency;                  /* free slots shared by all gateways */
    uint32_t connect_timeout_ms;
    const struct wm_listen *metrics;       /* borrowed; disabled: no metrics server */
    uint32_t drain_ms;                     /* shutdown grace for in-flight fetches (2000) */
};

/* Counters behind /metrics (single-threaded, plain integers). */
struct ft_stats {
    uint64_t jobs_received;
    uint64_t jobs_refused;                 /* arrived while shutting down: not run */
    uint64_t jobs_over_capacity;           /* past the in-flight cap: dropped, not run */
    uint64_t results[WM_STATUS_CLASSES];   /* by wm_status_class of the RESULT sent */
    uint64_t failures[FT_FAIL_COUNT];      /* by reason (index 0 unused) */
    uint64_t results_dropped;              /* RESULT could not be queued on its link */
    uint64_t bytes_fetched;
    struct wm_histogram duration;
};

struct ft_engine;

/* Builds the engine: ZeroMQ context, one link per endpoint, the curl pool and the
 * metrics server. cfg is borrowed for the engine's life. Returns NULL with err filled
 * (e.g. the metrics port is taken). curl_global_init must have run. */
struct ft_engine *ft_engine_new(const struct ft_engine_config *cfg, char *err, size_t errlen);

/* Runs until *stop becomes non-zero (set by a signal handler), then stops taking jobs
 * (READY{0} to every gateway), gives in-flight fetches up to drain_ms and returns.
 * Returns 0, or -EIO when curl's multi handle fails. */
int ft_engine_run(struct ft_engine *e, volatile sig_atomic_t *stop);

/* Frees everything (in-flight transfers are abandoned); NULL-safe, clears *e. */
void ft_engine_free(struct ft_engine **e);

/* The counters, for tests. */
const struct ft_stats *ft_engine_stats(const struct ft_engine *e);

#endif

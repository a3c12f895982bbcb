/* wm_metrics: the /metrics (Prometheus text format 0.0.4) and /healthz endpoint every
 * process serves on WAYMARK_METRICS_LISTEN. libmicrohttpd runs without a thread of its
 * own, in epoll mode: the process polls one fd in its own loop and calls
 * wm_metrics_server_run when it is readable (and at least every second). Each process
 * keeps its own plain counters (single-threaded, no atomics) and renders them in a
 * callback with the wm_metric_* helpers. */
#ifndef WM_METRICS_H
#define WM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_buf.h"
#include "wm_config.h"

/* Appends the process's metrics to out. */
typedef void (*wm_metrics_render_fn)(struct wm_buf *out, void *ud);
/* Returns true when healthy; may append a short reason to why (served as the body,
 * status 200 "ok" or 503 with the reason). */
typedef bool (*wm_health_fn)(struct wm_buf *why, void *ud);

struct wm_metrics_server;

/* Starts listening. Returns NULL with err filled on failure ("127.0.0.1:9100: address
 * already in use"). Must not be called with a disabled listen (check l->enabled). */
struct wm_metrics_server *wm_metrics_server_new(const struct wm_listen *l,
                                                wm_metrics_render_fn render,
                                                wm_health_fn health, void *ud,
                                                char *err, size_t errlen);
int wm_metrics_server_fd(const struct wm_metrics_server *m);   /* poll for POLLIN */
/* The bound TCP port (useful when l->port was 0: the kernel picked one, as tests do). */
int wm_metrics_server_port(const struct wm_metrics_server *m);
void wm_metrics_server_run(struct wm_metrics_server *m);       /* never blocks */
void wm_metrics_server_free(struct wm_metrics_server **m);     /* NULL-safe */

/* Text helpers: each writes "# HELP", "# TYPE" and the sample. Names get no prefix
 * added: pass "waymark_gateway_sessions". */
void wm_metric_counter(struct wm_buf *out, const char *name, const char *help, uint64_t v);
void wm_metric_gauge(struct wm_buf *out, const char *name, const char *help, double v);
/* A family with one label: HELP/TYPE once, then name{label="values[i]"} counts[i]. */
void wm_metric_labeled(struct wm_buf *out, const char *name, const char *help,
                       const char *type /* "counter" | "gauge" */, const char *label,
                       const char *const *values, const uint64_t *counts, size_t n);

/* A latency histogram with fixed buckets (seconds): 1ms .. 10s. */
#define WM_HIST_BUCKETS 12
struct wm_histogram {
    uint64_t bucket[WM_HIST_BUCKETS];   /* non-cumulative counts */
    uint64_t count;
    double sum;
};
void wm_histogram_observe(struct wm_histogram *h, double seconds);
void wm_metric_histogram(struct wm_buf *out, const char *name, const char *help,
                         const struct wm_histogram *h);

#endif

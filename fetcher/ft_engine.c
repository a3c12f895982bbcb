/* ft_engine: the fetcher's one loop (curl_multi_poll with the DEALERs' ZMQ_FDs and the
 * metrics fd as extra fds), credit accounting across gateways, shutdown and /metrics. */
#include "ft_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_link.h"
#include "wm_log.h"
#include "wm_proto.h"
#include "wm_random.h"
#include "wm_time.h"
#include "wm_zmq.h"

#define FT_SHUTDOWN_LINGER_MS 500   /* lets RESULTs queued at the end reach the gateway */
#define FT_METRICS_RUN_MS     1000  /* wm_metrics_server_run at least this often */
/* Hard cap on transfers held at once, as a multiple of the configured concurrency
 * (at least this factor, or the number of gateways when larger: see capacity_cap).
 * Gateways share the slots, so honest ones together overshoot a little (see
 * free_slots); the cap leaves room for that, while a broken or hostile peer
 * sending JOBs regardless of credit cannot make us hold unbounded transfers and
 * memory. A JOB beyond the cap is dropped without a RESULT: the gateway resends it
 * after its timeout, and a RESULT we made up (5xx) would reach clients as if the
 * backend had failed. */
#define FT_OVERCOMMIT_FACTOR  2

struct ft_engine {
    const struct ft_engine_config *cfg;
    void *zctx;
    struct ft_link **links;         /* owned; index = the tag of a job's link */
    size_t n_links;
    struct ft_http *http;
    struct wm_metrics_server *metrics;
    struct curl_waitfd *wfds;       /* n_links + 1 */
    uint64_t instance;
    bool stopping;
    int64_t metrics_run_ms;
    struct ft_stats st;
    struct wm_ratelimit over_rl;    /* "over capacity" warnings */
};

/* Free slots: the one number READY announces to every gateway. Gateways share the
 * slots, so two gateways may together send more than concurrency jobs for a moment;
 * curl then queues the extra transfers (CURLMOPT_MAX_HOST_CONNECTIONS). */
static uint32_t free_slots(const struct ft_engine *e)
{
    size_t busy = ft_http_in_flight(e->http);

    if (e->stopping || busy >= e->cfg->concurrency)
        return 0;
    return e->cfg->concurrency - (uint32_t)busy;
}

/* A job finished (or was refused at once): account for it and send its RESULT back on
 * the link the JOB came in on. */
static void on_done(void *ud, size_t tag, const struct wm_msg *result,
                    const struct ft_outcome *o)
{
    struct ft_engine *e = ud;
    struct wm_msg r = *result;   /* shallow: only the instance is set on the copy */
    struct ft_link *l = tag < e->n_links ? e->links[tag] : NULL;

    e->st.results[wm_status_class(r.u.result.status)]++;
    if (o->fail != FT_FAIL_NONE)
        e->st.failures[o->fail]++;
    if (o->fail != FT_FAIL_ORIGIN)
        wm_histogram_observe(&e->st.duration, o->seconds);
    e->st.bytes_fetched += o->body_bytes;
    if (o->fail != FT_FAIL_NONE && wm_log_enabled(WM_LOG_DEBUG))
        wm_debug("fetch failed", "job=%llu status=%d reason=%s",
                 (unsigned long long)r.u.result.id, r.u.result.status,
                 ft_fail_name(o->fail));
    /* The link may have been reopened since: its new socket still reaches the gateway
     * at that endpoint, which drops (and counts) a job id it no longer knows. */
    if (!l || ft_link_send_result(l, &r) != 0)
        e->st.results_dropped++;
}

/* A gateway whose view of our credit ran out while slots are free (several gateways
 * share the slots) would wait for ever: tell it again. */
static void refill_credit(struct ft_engine *e, int64_t now)
{
    uint32_t slots = free_slots(e);

    if (!slots)
        return;
    for (size_t i = 0; i < e->n_links; i++)
        if (ft_link_needs_credit(e->links[i], now))
            ft_link_send_ready(e->links[i], slots);
}

/* Every gateway is told all the free slots, so n honest gateways can fill n times the
 * concurrency at worst: the cap is that, and never less than the factor. */
static size_t capacity_cap(const struct ft_engine *e)
{
    size_t factor = e->n_links > FT_OVERCOMMIT_FACTOR ? e->n_links : FT_OVERCOMMIT_FACTOR;

    return (size_t)e->cfg->concurrency * factor;
}

static bool over_capacity(const struct ft_engine *e)
{
    return ft_http_in_flight(e->http) >= capacity_cap(e);
}

/* A JOB past the hard cap (see FT_OVERCOMMIT_FACTOR): counted, logged rate-limited,
 * not run and not answered. */
static void drop_over_capacity(struct ft_engine *e, const struct ft_link *l,
                               const struct wm_msg *job, int64_t now)
{
    uint64_t suppressed = 0;
    char ep[256];

    e->st.jobs_over_capacity++;
    if (wm_ratelimit_allow(&e->over_rl, now, WM_RATELIMIT_LOG_MS, &suppressed))
        wm_warn("gateway sent a job beyond the fetcher's capacity, dropped",
                "endpoint=%s job=%llu in_flight=%zu cap=%llu suppressed=%llu",
                wm_log_value(ep, sizeof ep, ft_link_endpoint(l)),
                (unsigned long long)job->u.job.id,
                ft_http_in_flight(e->http),
                (unsigned long long)capacity_cap(e),
                (unsigned long long)suppressed);
}

/* Drains one DEALER completely (ZMQ_FD is edge-triggered). Returns 0 when drained,
 * or a negative code when reading stopped early (poll again at once). */
static int drain_link(struct ft_engine *e, size_t idx, int64_t now)
{
    struct ft_link *l = e->links[idx];
    struct wm_msg job;
    int rc;

    for (;;) {
        memset(&job, 0, sizeof job);
        rc = ft_link_recv(l, now, free_slots(e), &job);
        if (rc <= 0)
            return rc;
        e->st.jobs_received++;
        if (e->stopping)
            e->st.jobs_refused++;   /* the gateway resends it after its timeout */
        else if (over_capacity(e))
            drop_over_capacity(e, l, &job, now);
        else
            ft_http_submit(e->http, &job, idx);
        wm_msg_clear(&job);
    }
}

static void begin_stop(struct ft_engine *e, int64_t now)
{
    e->stopping = true;
    wm_info("shutting down", "in_flight=%zu drain_ms=%u", ft_http_in_flight(e->http),
            e->cfg->drain_ms);
    for (size_t i = 0; i < e->n_links; i++)
        if (ft_link_alive(e->links[i], now))
            ft_link_send_ready(e->links[i], 0);
}

int ft_engine_run(struct ft_engine *e, volatile sig_atomic_t *stop)
{
    int64_t deadline = 0;
    int rc = 0;

    for (;;) {
        int64_t now = wm_now_ms(), next = now + FT_METRICS_RUN_MS;
        unsigned nfd = 0;
        long curl_ms;
        bool again = false;
        int timeout;

        if (*stop && !e->stopping) {
            begin_stop(e, now);
            deadline = now + e->cfg->drain_ms;
        }
        if (e->stopping && (ft_http_in_flight(e->http) == 0 || now >= deadline))
            break;
        for (size_t i = 0; i < e->n_links; i++) {
            int64_t t = ft_link_tick(e->links[i], now, free_slots(e));
            if (t < next)
                next = t;
        }
        if (ft_http_perform(e->http) != 0) {
            wm_error("curl multi handle failed", "rc=%d", -EIO);
            rc = -EIO;
            break;
        }
        refill_credit(e, now);
        /* Last before waiting: every send above may have consumed a ZMQ_FD edge. */
        for (size_t i = 0; i < e->n_links; i++)
            if (drain_link(e, i, now) != 0)
                again = true;
        if (e->metrics && now >= e->metrics_run_ms) {
            wm_metrics_server_run(e->metrics);
            e->metrics_run_ms = now + FT_METRICS_RUN_MS;
        }
        if (e->metrics_run_ms && e->metrics_run_ms < next)
            next = e->metrics_run_ms;

        for (size_t i = 0; i < e->n_links; i++) {
            int fd = ft_link_fd(e->links[i]);
            if (fd >= 0)
                e->wfds[nfd++] = (struct curl_waitfd){.fd = fd, .events = CURL_WAIT_POLLIN};
        }
        if (e->metrics)
            e->wfds[nfd++] = (struct curl_waitfd){.fd = wm_metrics_server_fd(e->metrics),
                                                  .events = CURL_WAIT_POLLIN};
        if (e->stopping && deadline < next)
            next = deadline;
        timeout = next > now ? (int)(next - now) : 0;
        curl_ms = ft_http_timeout(e->http);
        if (curl_ms >= 0 && curl_ms < timeout)
            timeout = (int)curl_ms;
        if (again)
            timeout = 0;
        if (ft_http_wait(e->http, e->wfds, nfd, timeout) != 0) {
            wm_error("curl_multi_poll failed", "rc=%d", -EIO);
            rc = -EIO;
            break;
        }
        if (e->metrics && e->wfds[nfd - 1].revents) {
            wm_metrics_server_run(e->metrics);
            e->metrics_run_ms = wm_now_ms() + FT_METRICS_RUN_MS;
        }
    }
    if (e->stopping)
        wm_info("stopped", "abandoned=%zu", ft_http_in_flight(e->http));
    return rc;
}

/* ---- /metrics and /healthz ---- */

static size_t gateways_alive(const struct ft_engine *e, int64_t now)
{
    size_t n = 0;

    for (size_t i = 0; i < e->n_links; i++)
        n += ft_link_alive(e->links[i], now);
    return n;
}

static void render(struct wm_buf *out, void *ud)
{
    struct ft_engine *e = ud;
    const char *reasons[FT_FAIL_COUNT - 1];
    uint64_t bad = 0, reopens = 0, drops = 0;

    for (int i = 1; i < FT_FAIL_COUNT; i++)
        reasons[i - 1] = ft_fail_name((enum ft_fail)i);
    for (size_t i = 0; i < e->n_links; i++) {
        const struct ft_link_stats *st = ft_link_stats(e->links[i]);
        bad += st->bad_messages;
        reopens += st->reopens;
        drops += st->send_drops;
    }
    wm_metric_counter(out, "waymark_fetcher_jobs_received_total", "JOBs received",
                      e->st.jobs_received);
    wm_metric_counter(out, "waymark_fetcher_jobs_refused_total",
                      "JOBs received while shutting down (not run)", e->st.jobs_refused);
    wm_metric_counter(out, "waymark_fetcher_jobs_over_capacity_total",
                      "JOBs dropped unrun: in flight already at twice the concurrency "
                      "(a gateway ignoring credit)", e->st.jobs_over_capacity);
    wm_metric_gauge(out, "waymark_fetcher_jobs_in_flight", "fetches running now",
                    (double)ft_http_in_flight(e->http));
    wm_metric_gauge(out, "waymark_fetcher_concurrency", "configured fetch slots",
                    (double)e->cfg->concurrency);
    wm_metric_labeled(out, "waymark_fetcher_results_total", "RESULTs by status class",
                      "counter", "class", wm_status_class_names, e->st.results,
                      WM_STATUS_CLASSES);
    wm_metric_labeled(out, "waymark_fetcher_fetch_failures_total",
                      "fetches answered by the fetcher itself, by reason", "counter",
                      "reason", reasons, e->st.failures + 1, FT_FAIL_COUNT - 1);
    wm_metric_histogram(out, "waymark_fetcher_fetch_duration_seconds",
                        "time from JOB to RESULT", &e->st.duration);
    wm_metric_gauge(out, "waymark_fetcher_gateways_connected",
                    "gateways heard within the liveness window",
                    (double)gateways_alive(e, wm_now_ms()));
    wm_metric_counter(out, "waymark_fetcher_gateway_reconnects_total",
                      "DEALER sockets replaced after a silent gateway", reopens);
    wm_metric_counter(out, "waymark_fetcher_bad_messages_total",
                      "undecodable or unexpected messages dropped", bad);
    wm_metric_counter(out, "waymark_fetcher_send_drops_total",
                      "messages to a gateway that could not be queued", drops);
    wm_metric_counter(out, "waymark_fetcher_results_dropped_total",
                      "RESULTs that could not be sent", e->st.results_dropped);
    wm_metric_counter(out, "waymark_fetcher_bytes_fetched_total", "response body bytes",
                      e->st.bytes_fetched);
}

static bool health(struct wm_buf *why, void *ud)
{
    struct ft_engine *e = ud;

    if (gateways_alive(e, wm_now_ms()) > 0)
        return true;
    wm_buf_puts(why, "no gateway heard within the liveness window");
    return false;
}

/* ---- lifetime ---- */

struct ft_engine *ft_engine_new(const struct ft_engine_config *cfg, char *err, size_t errlen)
{
    struct ft_engine *e = wm_calloc(1, sizeof *e);
    struct ft_http_config hc = {
        .backend_url = cfg->backend_url,
        .concurrency = cfg->concurrency,
        .connect_timeout_ms = cfg->connect_timeout_ms,
    };

    e->cfg = cfg;
    e->instance = wm_random_id();
    e->zctx = zmq_ctx_new();
    if (!e->zctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    e->http = ft_http_new(&hc, on_done, e);
    if (!e->http) {
        snprintf(err, errlen, "cannot create the curl multi handle");
        goto fail;
    }
    if (cfg->metrics && cfg->metrics->enabled) {
        e->metrics = wm_metrics_server_new(cfg->metrics, render, health, e, err, errlen);
        if (!e->metrics)
            goto fail;
    }
    e->n_links = cfg->endpoints->n;
    e->links = wm_calloc(e->n_links ? e->n_links : 1, sizeof *e->links);
    for (size_t i = 0; i < e->n_links; i++)
        e->links[i] = ft_link_new(e->zctx, cfg->endpoints->list[i], e->instance);
    e->wfds = wm_calloc(e->n_links + 1, sizeof *e->wfds);
    return e;
fail:
    ft_engine_free(&e);
    return NULL;
}

void ft_engine_free(struct ft_engine **ep)
{
    struct ft_engine *e = *ep;

    if (!e)
        return;
    /* The transfers go first: nothing completes (and sends) while links close. */
    ft_http_free(&e->http);
    for (size_t i = 0; i < e->n_links; i++) {
        if (e->stopping)
            ft_link_set_linger(e->links[i], FT_SHUTDOWN_LINGER_MS);
        ft_link_free(&e->links[i]);
    }
    free(e->links);
    free(e->wfds);
    wm_metrics_server_free(&e->metrics);
    if (e->zctx)
        zmq_ctx_term(e->zctx);
    free(e);
    *ep = NULL;
}

const struct ft_stats *ft_engine_stats(const struct ft_engine *e)
{
    return &e->st;
}

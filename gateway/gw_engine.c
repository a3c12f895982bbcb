/* gw_engine: wires the gateway's modules into one libuv loop, which lws also runs on
 * (its evlib plugin, foreign-loop mode). ZeroMQ sockets are watched through ZMQ_FD with
 * uv_poll; ZMQ_FD is edge-triggered, so every wakeup drains fully and every send
 * schedules another drain (docs/libraries.md). */
#include "gw_engine.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <uv.h>
#include <zmq.h>

#include "gw_broker.h"
#include "gw_bumps.h"
#include "gw_pool.h"
#include "gw_server.h"
#include "gw_session.h"
#include "gw_stats.h"
#include "wm_buf.h"
#include "wm_log.h"
#include "wm_metrics.h"
#include "wm_msg.h"
#include "wm_proto.h"
#include "wm_random.h"
#include "wm_time.h"
#include "wm_zmq.h"

#define GW_TICK_MS        100    /* safety-net drain, pool, deadlines, stop flag */
#define GW_DRAIN_BUDGET   4096   /* messages per socket per pass, then let lws run */
#define GW_JOB_ATTEMPTS   3
#define GW_TRIM_SESSIONS  256    /* this many sessions gone since the peak: give memory back */

struct gw_engine {
    struct gw_engine_config cfg;
    struct gw_stats stats;
    uint64_t instance;
    uv_loop_t loop;
    bool loop_ready;
    uv_poll_t poll_sub, poll_router, poll_metrics;
    uv_timer_t tick, drain_soon;
    bool polls_ready, metrics_ready, timers_ready;
    void *zctx, *sub, *router;
    struct gw_pool *pool;
    struct gw_broker *broker;
    struct gw_bumps *bumps;
    struct gw_server *server;
    struct wm_metrics_server *metrics;
    bool drain_scheduled, draining;
    int64_t last_second_ms;
    size_t sessions_peak;                /* since memory was last given back */
    int64_t trim_at_ms;                  /* 0, or when to give it back */
    struct wm_buf sendbuf;
    struct wm_ratelimit rl_bad, rl_send;
    const volatile sig_atomic_t *stop;   /* borrowed from gw_engine_run's caller */
    bool stopping;
    int64_t stop_deadline_ms;
};

static void drain_soon_cb(uv_timer_t *t);

/* Drain again on the next loop iteration (a zero timer makes libuv poll without
 * waiting), after whatever handler is running has returned. */
static void schedule_drain(struct gw_engine *e)
{
    if (e->drain_scheduled || !e->timers_ready)
        return;
    e->drain_scheduled = true;
    uv_timer_start(&e->drain_soon, drain_soon_cb, 0, 0);
}

static void bad_message(struct gw_engine *e, const char *from, const char *why)
{
    uint64_t suppressed = 0;

    e->stats.bad_messages++;
    if (wm_ratelimit_allow(&e->rl_bad, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
        wm_warn("bad message", "from=%s reason=\"%s\" suppressed=%llu", from, why,
                (unsigned long long)suppressed);
}

static void on_sub_message(struct gw_engine *e, struct wm_zframes *f)
{
    struct wm_msg msg = {0};
    const char *why = "bad frame count";

    if (f->n != 1 ||
        wm_msg_decode(wm_zframe_data(f, 0), wm_zframe_size(f, 0), &msg, &why) != 0) {
        bad_message(e, "dispatcher", why);
        return;
    }
    gw_bumps_on_message(e->bumps, &msg, wm_now_ms());
    wm_msg_clear(&msg);
}

static void on_router_message(struct gw_engine *e, struct wm_zframes *f)
{
    struct wm_msg msg = {0};
    const char *why = "bad frame count";

    if (f->n != 2 ||
        wm_msg_decode(wm_zframe_data(f, 1), wm_zframe_size(f, 1), &msg, &why) != 0) {
        bad_message(e, "fetcher", why);
        return;
    }
    switch (msg.type) {
    case WM_MSG_READY:
    case WM_MSG_HEARTBEAT:
    case WM_MSG_RESULT:
        gw_pool_on_message(e->pool, wm_zframe_data(f, 0), wm_zframe_size(f, 0), &msg);
        break;
    default:
        bad_message(e, "fetcher", "unexpected message type");
    }
    wm_msg_clear(&msg);
}

/* Returns true when the budget ran out before the socket was empty. */
static bool drain_socket(struct gw_engine *e, void *sock, bool is_sub)
{
    const char *peer = is_sub ? "dispatcher" : "fetcher";
    struct wm_zframes f;
    int rc;

    for (int i = 0; i < GW_DRAIN_BUDGET; i++) {
        rc = wm_zmq_recv(sock, &f);
        if (rc == -EAGAIN)
            return false;
        if (rc == -EMSGSIZE) {
            bad_message(e, peer, "too many parts");
            continue;
        }
        if (rc < 0) {
            bad_message(e, peer, zmq_strerror(-rc));
            return false;
        }
        if (is_sub)
            on_sub_message(e, &f);
        else
            on_router_message(e, &f);
        wm_zframes_close(&f);
    }
    return true;
}

static void drain(struct gw_engine *e)
{
    bool more;

    if (e->draining) {          /* a send inside a handler: come back after this pass */
        schedule_drain(e);
        return;
    }
    e->draining = true;
    more = drain_socket(e, e->router, false);
    more |= drain_socket(e, e->sub, true);
    e->draining = false;
    if (more)
        schedule_drain(e);      /* let websocket I/O run between big batches */
}

static void drain_soon_cb(uv_timer_t *t)
{
    struct gw_engine *e = t->data;

    e->drain_scheduled = false;
    drain(e);
}

/* The stop flag is a sig_atomic_t a signal handler sets: the tick notices it within
 * GW_TICK_MS, says GOODBYE to every session, and stops the loop once they are gone or
 * GW_SHUTDOWN_MS has passed. */
static void check_stop(struct gw_engine *e, int64_t now)
{
    if (!e->stopping && e->stop && *e->stop) {
        e->stopping = true;
        e->stop_deadline_ms = now + GW_SHUTDOWN_MS;
        wm_info("gateway stopping", "sessions=%zu", gw_server_sessions(e->server));
        gw_server_shutdown(e->server);
    }
    if (e->stopping && (gw_server_sessions(e->server) == 0 || now >= e->stop_deadline_ms))
        uv_stop(&e->loop);
}

/* glibc keeps the memory of freed sessions for reuse, so after a mass disconnect (a
 * load balancer moving clients away, a client fleet restarting) RSS would stay at its
 * peak. Once a good part of the peak is gone, hand the free pages back a second later,
 * when lws has also freed its part of those connections (it does so asynchronously). */
static void trim_after_mass_close(struct gw_engine *e, int64_t now)
{
    size_t n = gw_server_sessions(e->server);

    if (n > e->sessions_peak)
        e->sessions_peak = n;
    if (e->trim_at_ms && now >= e->trim_at_ms) {
        malloc_trim(0);
        e->trim_at_ms = 0;
        e->sessions_peak = n;
    } else if (!e->trim_at_ms && e->sessions_peak - n >= GW_TRIM_SESSIONS &&
               n <= e->sessions_peak / 2) {
        e->trim_at_ms = now + 1000;
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct gw_engine *e = t->data;
    int64_t now = wm_now_ms();

    drain(e);
    gw_pool_tick(e->pool, now);
    gw_server_tick(e->server, now);
    if (now - e->last_second_ms >= 1000) {
        e->last_second_ms = now;
        gw_bumps_tick(e->bumps, now);
        trim_after_mass_close(e, now);
        if (e->metrics)
            wm_metrics_server_run(e->metrics);   /* MHD's own timeouts */
    }
    check_stop(e, now);
}

/* The pool's send callback: JOB and HEARTBEAT to one fetcher on the ROUTER. */
static int pool_send(void *ud, const void *id, size_t idlen, const struct wm_msg *msg)
{
    struct gw_engine *e = ud;
    uint64_t suppressed = 0;
    int rc;

    wm_buf_reset(&e->sendbuf);
    if (wm_msg_encode(msg, &e->sendbuf) != 0)
        return -EINVAL;
    rc = wm_zmq_send(e->router, id, idlen, e->sendbuf.data, e->sendbuf.len);
    /* A send can consume the edge on ZMQ_FD: without another drain, messages already
     * waiting would sit there until the safety timer. */
    schedule_drain(e);
    if (rc < 0 && rc != -EHOSTUNREACH &&
        wm_ratelimit_allow(&e->rl_send, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
        wm_warn("send to fetcher failed", "error=\"%s\" suppressed=%llu", zmq_strerror(-rc),
                (unsigned long long)suppressed);
    return rc;
}

static void pool_result(void *ud, struct gw_job *job, struct wm_msg *result)
{
    struct gw_engine *e = ud;

    gw_broker_on_result(e->broker, job, result);
}

/* Readiness of a ZeroMQ socket (its ZMQ_FD) or of the metrics server's epoll fd. */
static void on_zmq_ready(uv_poll_t *p, int status, int events)
{
    drain(p->data);
}

static void on_metrics_ready(uv_poll_t *p, int status, int events)
{
    struct gw_engine *e = p->data;

    wm_metrics_server_run(e->metrics);
}

static int watch_fd(struct gw_engine *e, uv_poll_t *p, int fd, uv_poll_cb cb, char *err,
                    size_t errlen)
{
    int rc = fd < 0 ? UV_EBADF : uv_poll_init(&e->loop, p, fd);

    if (rc == 0) {
        p->data = e;
        rc = uv_poll_start(p, UV_READABLE, cb);
    }
    if (rc != 0)
        snprintf(err, errlen, "cannot watch a descriptor in the event loop: %s",
                 uv_strerror(rc));
    return rc;
}

static int open_zmq(struct gw_engine *e, char *err, size_t errlen)
{
    const struct wm_endpoints *eps = e->cfg.bump_endpoints;

    e->zctx = zmq_ctx_new();
    if (!e->zctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        return -ENOMEM;
    }
    e->sub = zmq_socket(e->zctx, ZMQ_SUB);
    e->router = zmq_socket(e->zctx, ZMQ_ROUTER);
    if (!e->sub || !e->router) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -ENOMEM;
    }
    wm_zmq_setint(e->sub, ZMQ_LINGER, 0);
    wm_zmq_setint(e->sub, ZMQ_RCVHWM, WM_BUMP_HWM);
    zmq_setsockopt(e->sub, ZMQ_SUBSCRIBE, "", 0);
    for (size_t i = 0; i < eps->n; i++) {
        if (zmq_connect(e->sub, eps->list[i]) != 0) {
            snprintf(err, errlen, "cannot connect to bump endpoint %s: %s", eps->list[i],
                     zmq_strerror(errno));
            return -EINVAL;
        }
    }
    wm_zmq_setint(e->router, ZMQ_LINGER, 0);
    wm_zmq_setint(e->router, ZMQ_ROUTER_MANDATORY, 1);
    wm_zmq_setint(e->router, ZMQ_SNDHWM, WM_FETCH_HWM);
    wm_zmq_setint(e->router, ZMQ_RCVHWM, WM_FETCH_HWM);
    if (zmq_bind(e->router, e->cfg.fetch_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind fetch endpoint %s: %s", e->cfg.fetch_endpoint,
                 zmq_strerror(errno));
        return -EADDRINUSE;
    }
    return 0;
}

static void render(struct wm_buf *out, void *ud);
static bool health(struct wm_buf *why, void *ud);

struct gw_engine *gw_engine_new(const struct gw_engine_config *cfg, char *err, size_t errlen)
{
    struct gw_engine *e = wm_calloc(1, sizeof *e);
    struct gw_pool_config pcfg;
    struct gw_broker_config bcfg;
    struct gw_session_env env;
    struct gw_server_config scfg;

    e->cfg = *cfg;
    e->instance = wm_random_id();
    if (uv_loop_init(&e->loop) != 0) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    e->loop_ready = true;
    uv_timer_init(&e->loop, &e->tick);
    uv_timer_init(&e->loop, &e->drain_soon);
    e->tick.data = e->drain_soon.data = e;
    e->timers_ready = true;
    if (open_zmq(e, err, errlen) != 0)
        goto fail;

    pcfg = (struct gw_pool_config){ .instance = e->instance, .max_attempts = GW_JOB_ATTEMPTS };
    e->pool = gw_pool_new(&pcfg, pool_send, pool_result, e, &e->stats);
    bcfg = (struct gw_broker_config){
        .backend_url = cfg->backend_url, .auth = cfg->auth,
        .fetch_timeout_ms = cfg->fetch_timeout_ms, .max_page_bytes = cfg->max_page_bytes,
        .max_message_bytes = cfg->max_message_bytes,
        .max_subscriptions = cfg->max_subscriptions,
        .push_unchanged = cfg->push_unchanged,
    };
    e->broker = gw_broker_new(&bcfg, e->pool, gw_session_deliver, &e->stats);
    e->bumps = e->broker ? gw_bumps_new(e->broker, &e->stats) : NULL;
    if (!e->pool || !e->broker || !e->bumps) {
        snprintf(err, errlen, "cannot create the gateway state");
        goto fail;
    }

    env = (struct gw_session_env){
        .broker = e->broker, .stats = &e->stats, .realm = cfg->realm,
        .allow_anonymous = cfg->allow_anonymous, .max_path = cfg->max_path,
        .queue_bytes = cfg->session_queue_bytes,
    };
    scfg = (struct gw_server_config){
        .listen = cfg->listen, .max_message_bytes = cfg->max_message_bytes,
        .max_sessions = cfg->max_sessions, .uv_loop = &e->loop,
        .join_s = cfg->join_timeout_s, .ping_s = cfg->ping_interval_s,
        .ping_grace_s = cfg->ping_timeout_s,
    };
    e->server = gw_server_new(&scfg, &env, err, errlen);
    if (!e->server)
        goto fail;

    if (cfg->metrics_listen && cfg->metrics_listen->enabled) {
        e->metrics = wm_metrics_server_new(cfg->metrics_listen, render, health, e, err, errlen);
        if (!e->metrics)
            goto fail;
        if (watch_fd(e, &e->poll_metrics, wm_metrics_server_fd(e->metrics),
                     on_metrics_ready, err, errlen) != 0)
            goto fail;
        e->metrics_ready = true;
    }
    if (watch_fd(e, &e->poll_sub, wm_zmq_fd(e->sub), on_zmq_ready, err, errlen) != 0)
        goto fail;
    if (watch_fd(e, &e->poll_router, wm_zmq_fd(e->router), on_zmq_ready, err, errlen) != 0) {
        uv_close((uv_handle_t *)&e->poll_sub, NULL);
        goto fail;
    }
    e->polls_ready = true;

    e->last_second_ms = wm_now_ms();
    uv_timer_start(&e->tick, tick_cb, GW_TICK_MS, GW_TICK_MS);
    wm_info("gateway started", "listen=%s:%d fetch=%s bump_endpoints=%zu instance=%llu "
            "max_sessions=%zu", cfg->listen->host, cfg->listen->port, cfg->fetch_endpoint,
            cfg->bump_endpoints->n, (unsigned long long)e->instance, cfg->max_sessions);
    return e;
fail:
    gw_engine_free(&e);
    return NULL;
}

int gw_engine_run(struct gw_engine *e, const volatile sig_atomic_t *stop)
{
    e->stop = stop;
    e->stopping = false;
    drain(e);     /* anything that arrived while starting: the edge may be gone */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void gw_engine_free(struct gw_engine **ep)
{
    struct gw_engine *e;

    if (!ep || !*ep)
        return;
    e = *ep;
    if (e->timers_ready) {
        close_handle((uv_handle_t *)&e->tick);
        close_handle((uv_handle_t *)&e->drain_soon);
    }
    if (e->polls_ready) {
        close_handle((uv_handle_t *)&e->poll_sub);
        close_handle((uv_handle_t *)&e->poll_router);
    }
    if (e->metrics_ready)
        close_handle((uv_handle_t *)&e->poll_metrics);
    /* Sessions first (they leave the broker), then the broker's jobs, then sockets. */
    gw_server_free(&e->server);
    gw_bumps_free(&e->bumps);
    gw_broker_free(&e->broker);
    gw_pool_free(&e->pool);
    if (e->sub)
        zmq_close(e->sub);
    if (e->router)
        zmq_close(e->router);
    if (e->zctx)
        zmq_ctx_term(e->zctx);
    wm_metrics_server_free(&e->metrics);
    wm_buf_free(&e->sendbuf);
    if (e->loop_ready) {
        uv_run(&e->loop, UV_RUN_DEFAULT);     /* our handles' close callbacks */
        if (uv_loop_close(&e->loop) != 0)
            wm_warn("event loop closed with handles still open", "loop=gateway");
    }
    free(e);
    *ep = NULL;
}

/* /metrics: every gw_stats field as waymark_gateway_<name>. */
static void render(struct wm_buf *out, void *ud)
{
    const struct gw_stats *s = &((struct gw_engine *)ud)->stats;

#define G(name, help) wm_metric_gauge(out, "waymark_gateway_" #name, help, (double)s->name)
#define C(name, help) wm_metric_counter(out, "waymark_gateway_" #name "_total", help, s->name)
    G(sessions, "Open websocket sessions.");
    C(sessions_opened, "Websocket sessions opened.");
    C(sessions_refused, "Handshakes refused (no or unknown subprotocol, path, limits).");
    C(sessions_aborted, "Sessions ended with ABORT.");
    C(auth_failed, "Failed authentications.");
    C(protocol_violations, "Malformed or out-of-order WAMP messages.");
    C(slow_clients_closed, "Sessions closed because their queue passed its byte cap.");
    C(join_timeouts, "Connections closed for not reaching WELCOME in time.");
    C(idle_closed, "Connections closed for staying silent after a ping.");
    C(frames_in, "Websocket messages received.");
    C(frames_out, "Websocket messages sent.");
    G(subscriptions, "Session subscriptions.");
    G(topics, "Distinct topics.");
    G(groups, "(topic, token, accept) groups.");
    C(subscribe_refused, "SUBSCRIBE refused (invalid topic, over the limit).");
    C(bumps_received, "Bumps received from dispatchers.");
    C(bumps_matched, "Bumps that touched at least one topic.");
    C(resyncs, "Full refreshes (RESYNC, sequence gap, new dispatcher).");
    C(seq_gaps, "Sequence gaps in the bump stream.");
    C(bad_messages, "Undecodable ZeroMQ messages.");
    G(dispatcher_up, "Dispatchers heard within the liveness window.");
    C(fetches_coalesced, "Bumps folded into an in-flight or pending fetch.");
    C(fetches_not_modified, "Conditional refetches answered 304 (nothing pushed).");
    C(events_skipped_unchanged, "EVENTs not pushed: the page equals the last one pushed.");
    G(jobs_queued, "Jobs waiting for a fetcher with credit.");
    G(jobs_in_flight, "Jobs sent and not answered.");
    C(jobs_sent, "Jobs sent to fetchers.");
    C(jobs_retried, "Jobs resent after a fetcher died or a job timed out.");
    C(jobs_failed, "Jobs that failed every attempt (sessions got a 504).");
    C(results_stale, "Results for jobs no longer known.");
    G(fetchers, "Live fetchers.");
    C(fetchers_lost, "Fetchers presumed dead after missed heartbeats.");
    C(events_delivered, "EVENT frames written to a socket.");
    C(events_replaced, "Undelivered EVENTs replaced by a newer page.");
    C(events_dropped, "EVENTs dropped (unsubscribed or session closed before sending).");
    C(pages_too_large, "Pages over the message cap, sent as 502.");
    C(publishes_refused, "PUBLISH messages from clients (refused).");
#undef G
#undef C
    wm_metric_labeled(out, "waymark_gateway_results_total", "Fetch results by status class.",
                      "counter", "class", wm_status_class_names, s->results_by_class,
                      WM_STATUS_CLASSES);
    wm_metric_histogram(out, "waymark_gateway_fetch_latency_seconds",
                        "Job sent to result received.", &s->fetch_latency);
}

/* /healthz: 503 with the reasons when no dispatcher was heard or no fetcher is live. */
static bool health(struct wm_buf *why, void *ud)
{
    struct gw_engine *e = ud;
    bool ok = true;

    if (!gw_bumps_link_up(e->bumps)) {
        wm_buf_puts(why, "no dispatcher heard\n");
        ok = false;
    }
    if (gw_pool_live_fetchers(e->pool) == 0) {
        wm_buf_puts(why, "no live fetcher\n");
        ok = false;
    }
    return ok;
}

/* dp_engine: one zmq_poll loop over the Redis socket and the metrics listener, with
 * timers for heartbeats and Redis reconnects/PINGs. Every BUMP and RESYNC gets the
 * next seq (docs/internals.md, "Bumps"), so gateways can see any loss. */
#include "dp_engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "dp_redis.h"
#include "wm_buf.h"
#include "wm_log.h"
#include "wm_metrics.h"
#include "wm_msg.h"
#include "wm_proto.h"
#include "wm_random.h"
#include "wm_time.h"
#include "wm_zmq.h"

/* Upper bound on one poll: how late a stop flag set just before zmq_poll is noticed. */
#define DP_POLL_MAX_MS 500
/* wm_metrics_server_run must also run at least this often (MHD housekeeping). */
#define DP_METRICS_RUN_MS 1000
/* Pending PUB messages may delay exit by at most this much. */
#define DP_PUB_LINGER_MS 100
/* How much of a bad payload goes into the log line. */
#define DP_LOG_PAYLOAD_MAX 120

struct dp_engine {
    void *zctx;                         /* owned */
    void *pub;                          /* owned */
    struct dp_redis *redis;             /* owned */
    struct wm_metrics_server *metrics;  /* owned, NULL when disabled */
    size_t max_path;
    uint64_t instance;
    uint64_t seq;                       /* last seq sent (BUMP, RESYNC) */
    int64_t next_heartbeat_ms;
    int64_t next_metrics_ms;
    struct wm_buf out;                  /* encode buffer, reused */
    struct dp_stats st;
    struct wm_ratelimit bad_rl[DP_BAD_N];
    struct wm_ratelimit send_rl;
};

/* ---- publishing ---- */

/* Encodes m into e->out and sends it on the PUB socket. A PUB socket drops rather than
 * blocks at its high-water mark, so an error here is rare; it is counted, logged
 * (rate-limited), and the gateways see the seq gap and refresh everything. */
static int publish(struct dp_engine *e, const struct wm_msg *m)
{
    wm_buf_reset(&e->out);
    int rc = wm_msg_encode(m, &e->out);
    if (rc == 0)
        rc = wm_zmq_send(e->pub, NULL, 0, e->out.data, e->out.len);
    if (rc < 0) {
        uint64_t suppressed = 0;
        e->st.publish_errors++;
        if (wm_ratelimit_allow(&e->send_rl, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
            wm_warn("publish failed", "type=%s error=\"%s\" suppressed=%" PRIu64,
                    wm_msg_type_name(m->type), strerror(-rc), suppressed);
    }
    return rc;
}

int dp_engine_resync(struct dp_engine *e, const char *reason)
{
    struct wm_msg m = {.type = WM_MSG_RESYNC, .instance = e->instance};
    m.u.resync.seq = ++e->seq;
    m.u.resync.reason = (char *)reason;   /* borrowed: wm_msg_encode does not free */
    int rc = publish(e, &m);
    e->st.resyncs++;
    wm_info("resync", "seq=%" PRIu64 " reason=\"%s\"", e->seq, reason);
    return rc;
}

static void heartbeat(struct dp_engine *e)
{
    struct wm_msg m = {.type = WM_MSG_HEARTBEAT, .instance = e->instance};
    m.u.heartbeat.seq = e->seq;
    if (publish(e, &m) == 0)
        e->st.heartbeats++;
}

/* Logs a bad bump at most once per kind per WM_RATELIMIT_LOG_MS. */
static void log_bad(struct dp_engine *e, enum dp_bad_kind kind, const char *why,
                    const char *data, size_t len)
{
    uint64_t suppressed = 0;
    if (!wm_ratelimit_allow(&e->bad_rl[kind], wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
        return;
    /* wm_log_value takes a C string: cut at the first NUL and at the length cap; len
     * says how much there really was. */
    char raw[DP_LOG_PAYLOAD_MAX + 1], payload[4 * DP_LOG_PAYLOAD_MAX + 8], reason[200];
    size_t n = len < DP_LOG_PAYLOAD_MAX ? len : DP_LOG_PAYLOAD_MAX;
    memcpy(raw, data, n);
    raw[n] = '\0';
    wm_warn("bad bump", "kind=%s reason=%s payload=%s len=%zu suppressed=%" PRIu64,
            dp_bad_kind_name(kind), wm_log_value(reason, sizeof reason, why),
            wm_log_value(payload, sizeof payload, raw), len, suppressed);
}

int dp_engine_on_payload(struct dp_engine *e, const char *data, size_t len)
{
    struct dp_bump b = {0};
    enum dp_bad_kind kind = DP_BAD_JSON;
    const char *why = NULL;

    e->st.bumps_received++;
    int rc = dp_bump_parse(data, len, e->max_path, &b, &kind, &why);
    if (rc < 0) {
        e->st.bad_bumps[kind]++;
        log_bad(e, kind, why, data, len);
        return rc;
    }
    struct wm_msg m = {.type = WM_MSG_BUMP, .instance = e->instance};
    m.u.bump.path = b.path;   /* borrowed from b */
    m.u.bump.match = b.match;
    m.u.bump.seq = ++e->seq;
    m.u.bump.ts_ms = wm_wall_ms();
    rc = publish(e, &m);
    if (rc == 0)
        e->st.bumps_published++;
    if (wm_log_enabled(WM_LOG_DEBUG)) {
        char p[300];
        wm_debug("bump", "path=%s match=%s seq=%" PRIu64, wm_log_value(p, sizeof p, b.path),
                 b.match == WM_MATCH_PREFIX ? "prefix" : "exact", e->seq);
    }
    dp_bump_clear(&b);
    return rc;
}

/* ---- Redis callbacks ---- */

static void on_redis_up(void *ud, bool first)
{
    struct dp_engine *e = ud;
    /* Pub-sub is at-most-once: whatever was published while we were not subscribed is
     * gone, so gateways must refresh everything. */
    dp_engine_resync(e, first ? "redis connected" : "redis reconnected");
}

static void on_redis_down(void *ud, const char *why)
{
    (void)ud;
    (void)why;   /* dp_redis logged it; redis_up reads the state directly */
}

static void on_redis_message(void *ud, const char *data, size_t len)
{
    dp_engine_on_payload(ud, data, len);
}

/* ---- metrics ---- */

static void render(struct wm_buf *out, void *ud)
{
    struct dp_engine *e = ud;
    wm_metric_counter(out, "waymark_dispatcher_bumps_received_total",
                      "Messages received on the Redis channel, good or bad.",
                      e->st.bumps_received);
    wm_metric_counter(out, "waymark_dispatcher_bumps_published_total",
                      "Valid bumps published to the gateways.", e->st.bumps_published);
    wm_metric_labeled(out, "waymark_dispatcher_bad_bumps_total",
                      "Refused bump payloads by kind.", "counter", "kind",
                      dp_bad_kind_names, e->st.bad_bumps, DP_BAD_N);
    wm_metric_counter(out, "waymark_dispatcher_resyncs_total",
                      "RESYNC messages published (start and every Redis (re)connect).",
                      e->st.resyncs);
    wm_metric_gauge(out, "waymark_dispatcher_redis_up",
                    "1 while subscribed to the Redis channel.",
                    dp_redis_up(e->redis) ? 1 : 0);
    wm_metric_counter(out, "waymark_dispatcher_redis_reconnects_total",
                      "Redis connection attempts after the first (each retry counts).",
                      dp_redis_reconnects(e->redis));
    wm_metric_counter(out, "waymark_dispatcher_heartbeats_total",
                      "HEARTBEAT messages published.", e->st.heartbeats);
    wm_metric_counter(out, "waymark_dispatcher_publish_errors_total",
                      "Messages the PUB socket refused to send.", e->st.publish_errors);
    wm_metric_gauge(out, "waymark_dispatcher_last_seq",
                    "Sequence number of the last BUMP or RESYNC.", (double)e->seq);
}

static bool health(struct wm_buf *why, void *ud)
{
    struct dp_engine *e = ud;
    if (dp_redis_up(e->redis))
        return true;
    wm_buf_puts(why, "redis down");
    return false;
}

/* ---- life cycle ---- */

struct dp_engine *dp_engine_new(const struct dp_engine_config *cfg, char *err,
                                size_t errlen)
{
    static const struct dp_redis_callbacks cbs = {
        .on_up = on_redis_up, .on_down = on_redis_down, .on_message = on_redis_message};
    struct dp_engine *e = wm_calloc(1, sizeof *e);

    e->max_path = cfg->max_path;
    e->instance = wm_random_id();
    e->zctx = zmq_ctx_new();
    if (!e->zctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    e->pub = zmq_socket(e->zctx, ZMQ_PUB);
    if (!e->pub) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (wm_zmq_setint(e->pub, ZMQ_SNDHWM, WM_BUMP_HWM) < 0 ||
        wm_zmq_setint(e->pub, ZMQ_LINGER, DP_PUB_LINGER_MS) < 0) {
        snprintf(err, errlen, "zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zmq_bind(e->pub, cfg->bump_endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", cfg->bump_endpoint,
                 zmq_strerror(zmq_errno()));
        goto fail;
    }
    e->redis = dp_redis_new(cfg->redis, cfg->channel, &cbs, e);
    if (!e->redis) {
        snprintf(err, errlen, "bad Redis settings");
        goto fail;
    }
    if (cfg->metrics && cfg->metrics->enabled) {
        e->metrics = wm_metrics_server_new(cfg->metrics, render, health, e, err, errlen);
        if (!e->metrics)
            goto fail;
    }
    return e;
fail:
    dp_engine_free(&e);
    return NULL;
}

void dp_engine_free(struct dp_engine **ep)
{
    if (!ep || !*ep)
        return;
    struct dp_engine *e = *ep;
    wm_metrics_server_free(&e->metrics);
    dp_redis_free(&e->redis);
    if (e->pub)
        zmq_close(e->pub);
    if (e->zctx)
        zmq_ctx_term(e->zctx);
    wm_buf_free(&e->out);
    free(e);
    *ep = NULL;
}

const struct dp_stats *dp_engine_stats(const struct dp_engine *e) { return &e->st; }
uint64_t dp_engine_instance(const struct dp_engine *e) { return e->instance; }
uint64_t dp_engine_last_seq(const struct dp_engine *e) { return e->seq; }

/* ---- the loop ---- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int dp_engine_run(struct dp_engine *e, const volatile sig_atomic_t *stop)
{
    int64_t now = wm_now_ms();
    int rc = 0;

    wm_info("dispatcher started", "instance=%" PRIu64, e->instance);
    dp_engine_resync(e, "start");
    e->next_heartbeat_ms = now + WM_HEARTBEAT_MS;
    e->next_metrics_ms = now + DP_METRICS_RUN_MS;

    while (!*stop) {
        now = wm_now_ms();
        dp_redis_tick(e->redis, now);
        if (now >= e->next_heartbeat_ms) {
            heartbeat(e);
            e->next_heartbeat_ms += WM_HEARTBEAT_MS;
            if (e->next_heartbeat_ms <= now)   /* fell behind (suspended): no burst */
                e->next_heartbeat_ms = now + WM_HEARTBEAT_MS;
        }

        zmq_pollitem_t items[2];
        int n = 0, ri = -1, mi = -1;
        int rfd = dp_redis_fd(e->redis);
        short rev = dp_redis_events(e->redis);
        if (rfd >= 0 && rev) {
            ri = n;
            items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = rfd, .events = rev};
        }
        if (e->metrics) {
            mi = n;
            items[n++] = (zmq_pollitem_t){
                .socket = NULL, .fd = wm_metrics_server_fd(e->metrics), .events = ZMQ_POLLIN};
        }
        int64_t next = min64(e->next_heartbeat_ms, dp_redis_next_ms(e->redis));
        if (e->metrics)
            next = min64(next, e->next_metrics_ms);
        int64_t timeout = next - now;
        if (timeout < 0)
            timeout = 0;
        if (timeout > DP_POLL_MAX_MS)
            timeout = DP_POLL_MAX_MS;

        if (zmq_poll(items, n, (long)timeout) < 0) {
            int err = zmq_errno();
            if (err == EINTR)
                continue;   /* a signal: the loop condition decides */
            wm_error("zmq_poll failed", "error=\"%s\"", zmq_strerror(err));
            rc = -err;
            break;
        }
        now = wm_now_ms();
        if (ri >= 0)
            dp_redis_on_io(e->redis, items[ri].revents, now);
        if (mi >= 0 && (items[mi].revents || now >= e->next_metrics_ms)) {
            wm_metrics_server_run(e->metrics);
            e->next_metrics_ms = now + DP_METRICS_RUN_MS;
        }
    }
    wm_info("dispatcher stopping", "last_seq=%" PRIu64 " bumps_published=%" PRIu64,
            e->seq, e->st.bumps_published);
    return rc;
}

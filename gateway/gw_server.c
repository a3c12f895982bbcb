/* gw_server: libwebsockets callbacks for WAMP sessions. Refuses handshakes without one
 * of our subprotocols, reassembles fragmented messages under a cap, writes one queued
 * frame per WRITEABLE callback, and closes a session once its last frame is out.
 * Per-connection deadlines (join, idle ping and hang-up, close flush) live in one
 * gw_wheel, not in lws's timers: lws keeps those in one sorted list whose every
 * insertion walks it, O(sessions) per frame or ping with its validity timers on. */
#include "gw_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>
#include <uv.h>

#include "gw_wheel.h"
#include "wm_buf.h"
#include "wm_log.h"
#include "wm_proto.h"
#include "wm_time.h"

#define GW_RX_KEEP         65536  /* a bigger reassembly buffer is released after use */
#define GW_CLOSE_FLUSH_S   3      /* time to write the last frame before closing anyway */

/* lws per-connection user data. */
struct gw_conn {
    struct gw_wheel_timer timer;  /* the next of this connection's deadlines */
    struct gw_server *server;
    struct gw_session *session;   /* owned, from ESTABLISHED to CLOSED */
    struct lws *wsi;
    struct wm_buf rx;             /* fragments of the message being received */
    int64_t last_rx_s;            /* last frame or pong from the client */
    int64_t join_by_s;            /* joining: WELCOME by then or closed */
    int64_t close_by_s;           /* closing: flushed by then or closed anyway */
    bool joining;                 /* no WELCOME yet */
    bool closing;                 /* the flush deadline is set */
    bool pinged;                  /* idle: a ping went out since last_rx_s */
    bool ping_due;                /* idle: write a ping at the next WRITEABLE */
    bool killed;                  /* a deadline passed: closing without a flush */
    struct gw_conn *prev, *next;  /* utlist: the server's open connections */
};

struct gw_server {
    struct gw_session_env env;    /* sessions borrow it */
    size_t max_message, max_sessions;
    unsigned ping_s, hangup_s, join_s;
    struct lws_protocols protocols[3];   /* json, msgpack, terminator */
    lws_retry_bo_t retry;
    struct lws_context *ctx;      /* lws clears it once destroyed (info.pcontext) */
    struct lws_vhost *vh;
    void *uv_loop;                /* borrowed: the engine's loop lws runs on */
    struct gw_wheel wheel;
    struct gw_conn *conns;
    size_t n_conns;
    struct wm_ratelimit rl_refused, rl_toobig;
};

static int64_t now_s(void)
{
    return wm_now_ms() / 1000;
}

static void io_want_write(void *transport)
{
    lws_callback_on_writable(transport);
}

static void io_kill(void *transport)
{
    /* Asynchronous: we may be inside a broker callback that still uses the session.
     * An lws timer set from outside lws's own callbacks is only seen at lws's next
     * wakeup on libuv, so wake it (a stuck client may never become writable). */
    lws_set_timeout(transport, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(lws_get_context(transport));
}

static void refuse(struct lws *wsi, struct gw_server *srv, const char *why)
{
    char peer[64] = "?";
    uint64_t suppressed = 0;

    srv->env.stats->sessions_refused++;
    if (wm_ratelimit_allow(&srv->rl_refused, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed)) {
        lws_get_peer_simple(wsi, peer, sizeof peer);
        wm_warn("websocket refused", "peer=%s reason=\"%s\" suppressed=%llu", peer, why,
                (unsigned long long)suppressed);
    }
}

/* True when the comma-separated Sec-WebSocket-Protocol list names one of ours. */
static bool offers_wamp(struct lws *wsi)
{
    char list[512];
    char *save = NULL;

    if (lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) <= 0)
        return false;
    for (char *t = strtok_r(list, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save))
        if (strcmp(t, "wamp.2.json") == 0 || strcmp(t, "wamp.2.msgpack") == 0)
            return true;
    return false;
}

/* The upgrade request, which protocols[0] sees before lws picks a subprotocol: a refused
 * handshake gets an HTTP status saying why. (lws would bind a client offering no
 * subprotocol to protocols[0], and drop one offering only unknown ones silently.) */
static int confirm_upgrade(struct lws *wsi, struct gw_server *srv, const char *what)
{
    char uri[8];
    unsigned int status = 0;
    const char *why = NULL;

    if (!what || strcmp(what, "websocket") != 0)
        return 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) != 1 ||
        lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) != 1 || uri[0] != '/') {
        status = HTTP_STATUS_NOT_FOUND;
        why = "path is not /";
    } else if (!offers_wamp(wsi)) {
        status = HTTP_STATUS_BAD_REQUEST;
        why = "no supported subprotocol (wamp.2.json or wamp.2.msgpack)";
    } else if (srv->n_conns >= srv->max_sessions) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        why = "too many sessions";
    }
    if (!status)
        return 0;
    refuse(wsi, srv, why);
    lws_return_http_status(wsi, status, why);
    return 1;
}

static int on_established(struct lws *wsi, struct gw_server *srv, struct gw_conn *c)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    enum gw_ser ser = (enum gw_ser)(intptr_t)p->user;
    char peer[64] = "?";

    lws_get_peer_simple(wsi, peer, sizeof peer);
    memset(c, 0, sizeof *c);
    c->server = srv;
    c->wsi = wsi;
    c->session = gw_session_new(&srv->env, ser, wsi, peer);
    DL_APPEND(srv->conns, c);
    srv->n_conns++;
    /* A connection that never completes HELLO/AUTHENTICATE would hold a session slot
     * forever (idle pings keep it alive): it gets a deadline until WELCOME. */
    c->joining = true;
    c->last_rx_s = now_s();
    c->join_by_s = c->last_rx_s + srv->join_s;
    gw_wheel_arm(&srv->wheel, &c->timer, c->join_by_s < c->last_rx_s + srv->ping_s
                                             ? c->join_by_s : c->last_rx_s + srv->ping_s);
    wm_debug("websocket open", "peer=%s protocol=%s", peer, p->name);
    return 0;
}

static void arm_close_timer(struct gw_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_by_s = now_s() + GW_CLOSE_FLUSH_S;
    if (!c->timer.armed || c->timer.due_s > c->close_by_s)
        gw_wheel_arm(&c->server->wheel, &c->timer, c->close_by_s);
}

/* Closes the connection now. Only from the wheel, outside lws's callbacks for this
 * connection; CLOSED runs before this returns and frees the session. */
static void kill_conn(struct gw_conn *c)
{
    c->killed = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

/* Any frame or pong from the client: O(1), the wheel is not touched. The timer fires
 * at the deadline it was armed for and re-arms from last_rx_s. */
static void heard_from(struct gw_conn *c)
{
    c->last_rx_s = now_s();
    c->pinged = false;
}

/* The wheel callback: whichever of the connection's deadlines passed acts, then the
 * timer is re-armed for the earliest one left. */
static void on_deadline(struct gw_wheel_timer *t, void *ud)
{
    struct gw_conn *c = lws_container_of(t, struct gw_conn, timer);
    struct gw_server *srv = ud;
    int64_t now = now_s(), next;

    if (c->killed)
        return;
    if (c->closing && now >= c->close_by_s) {
        kill_conn(c);
        return;
    }
    if (c->joining && now >= c->join_by_s) {
        srv->env.stats->join_timeouts++;
        kill_conn(c);
        return;
    }
    if (now >= c->last_rx_s + srv->hangup_s) {
        srv->env.stats->idle_closed++;
        kill_conn(c);
        return;
    }
    if (!c->pinged && now >= c->last_rx_s + srv->ping_s) {
        c->pinged = true;
        c->ping_due = true;
        lws_callback_on_writable(c->wsi);
    }
    next = c->last_rx_s + (c->pinged ? srv->hangup_s : srv->ping_s);
    if (c->joining && c->join_by_s < next)
        next = c->join_by_s;
    if (c->closing && c->close_by_s < next)
        next = c->close_by_s;
    gw_wheel_arm(&srv->wheel, &c->timer, next);
}

static int on_receive(struct lws *wsi, struct gw_server *srv, struct gw_conn *c,
                      const void *in, size_t len)
{
    uint64_t suppressed = 0;

    if (!c->session || gw_session_close_kind(c->session) == GW_CLOSE_NOW)
        return -1;
    if (c->rx.len + len > srv->max_message) {
        srv->env.stats->protocol_violations++;
        if (wm_ratelimit_allow(&srv->rl_toobig, wm_now_ms(), WM_RATELIMIT_LOG_MS, &suppressed))
            wm_warn("message too big", "max=%zu suppressed=%llu", srv->max_message,
                    (unsigned long long)suppressed);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    }
    heard_from(c);
    wm_buf_append(&c->rx, in, len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
        return 0;
    /* Liberal: the session's serializer decides, whatever the frame opcode was. */
    gw_session_on_message(c->session, c->rx.data, c->rx.len);
    if (c->rx.cap > GW_RX_KEEP)
        wm_buf_free(&c->rx);
    else
        wm_buf_reset(&c->rx);
    if (c->joining && gw_session_state(c->session) == GW_SESSION_ESTABLISHED)
        c->joining = false;    /* the armed deadline fires and re-arms for idle */
    switch (gw_session_close_kind(c->session)) {
    case GW_CLOSE_NOW:
        return -1;
    case GW_CLOSE_AFTER_FLUSH:
        arm_close_timer(c);
        break;
    case GW_CLOSE_NONE:
        break;
    }
    return 0;
}

static int on_writeable(struct lws *wsi, struct gw_server *srv, struct gw_conn *c)
{
    struct gw_frame *f;
    bool is_event = false;
    int n;

    if (!c->session || gw_session_close_kind(c->session) == GW_CLOSE_NOW)
        return -1;
    if (c->ping_due) {
        /* Not empty: lws 4.1 skips RECEIVE_PONG for a pong without payload. */
        unsigned char ping[LWS_PRE + 2] = { [LWS_PRE] = 'w', [LWS_PRE + 1] = 'm' };

        c->ping_due = false;
        if (lws_write(wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 2)
            return -1;
        if (gw_session_has_output(c->session) ||
            gw_session_close_kind(c->session) == GW_CLOSE_AFTER_FLUSH)
            lws_callback_on_writable(wsi);
        return 0;
    }
    f = gw_session_take_frame(c->session, &is_event);
    if (f) {
        n = lws_write(wsi, gw_frame_payload(f), f->len,
                      f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        if (n < 0 || (size_t)n < f->len) {
            gw_frame_unref(&f);
            return -1;
        }
        gw_frame_unref(&f);
        srv->env.stats->frames_out++;
        if (is_event)
            srv->env.stats->events_delivered++;
        /* One frame per callback; after the last one, one more callback (lws gives it
         * only once the frame has left) to close. */
        if (gw_session_has_output(c->session) ||
            gw_session_close_kind(c->session) == GW_CLOSE_AFTER_FLUSH)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (gw_session_close_kind(c->session) == GW_CLOSE_AFTER_FLUSH) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    return 0;
}

static void on_closed(struct gw_server *srv, struct gw_conn *c)
{
    if (!c->session)
        return;
    wm_debug("websocket closed", "session=%llu", (unsigned long long)gw_session_id(c->session));
    gw_session_free(&c->session);
    wm_buf_free(&c->rx);
    gw_wheel_cancel(&srv->wheel, &c->timer);
    DL_DELETE(srv->conns, c);
    srv->n_conns--;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                       void *in, size_t len)
{
    struct gw_server *srv = lws_context_user(lws_get_context(wsi));
    struct gw_conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(wsi, srv, in);
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(wsi, srv, c);
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(wsi, srv, c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? on_writeable(wsi, srv, c) : -1;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->session)
            heard_from(c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c)
            on_closed(srv, c);
        return 0;
    default:
        /* Plain HTTP on the websocket port gets lws's stock answer. */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* lws's own log lines go to ours at debug level: they mostly describe peers
 * misbehaving, which the callbacks above already count and log rate-limited. */
static void lws_emit(int level, const char *line)
{
    char raw[256], v[300];
    size_t n = strlen(line);

    if (!wm_log_enabled(WM_LOG_DEBUG))
        return;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    snprintf(raw, sizeof raw, "%.*s", (int)n, line);
    wm_debug("lws", "level=%d line=%s", level, wm_log_value(v, sizeof v, raw));
}

struct gw_server *gw_server_new(const struct gw_server_config *cfg,
                                const struct gw_session_env *env, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    struct gw_server *srv = wm_calloc(1, sizeof *srv);
    const char *host = cfg->listen->host;

    srv->env = *env;
    srv->env.io.want_write = io_want_write;
    srv->env.io.kill = io_kill;
    srv->max_message = cfg->max_message_bytes;
    srv->max_sessions = cfg->max_sessions;
    srv->ping_s = cfg->ping_s;
    srv->hangup_s = cfg->ping_s + cfg->ping_grace_s;
    srv->join_s = cfg->join_s;
    srv->uv_loop = cfg->uv_loop;
    gw_wheel_init(&srv->wheel, now_s());
    srv->protocols[0] = (struct lws_protocols){
        .name = "wamp.2.json", .callback = ws_callback,
        /* rx_buffer_size stays 0 (lws's 4 KiB): it is allocated per connection, and
         * larger messages are reassembled in gw_conn.rx anyway. */
        .per_session_data_size = sizeof(struct gw_conn),
        .user = (void *)(intptr_t)GW_SER_JSON,
    };
    srv->protocols[1] = srv->protocols[0];
    srv->protocols[1].name = "wamp.2.msgpack";
    srv->protocols[1].user = (void *)(intptr_t)GW_SER_MSGPACK;
    /* All zero: no lws validity (ping/hang-up) timers; on_deadline does that job. */
    srv->retry = (lws_retry_bo_t){ 0 };

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
    memset(&info, 0, sizeof info);
    /* lws on the engine's libuv loop (epoll: a wakeup costs O(ready), not O(fds) like
     * lws's default poll()). It loads libwebsockets-evlib_uv.so at this point. */
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = &srv->uv_loop;
    info.pcontext = &srv->ctx;
    info.user = srv;
    info.uid = -1;
    info.gid = -1;
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        snprintf(err, errlen, "cannot create the websocket context on libuv (is the "
                              "Debian package libwebsockets-evlib-uv installed?)");
        goto fail;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "waymark";
    info.port = cfg->listen->port;
    /* lws takes an interface name or an address; NULL means every address. */
    info.iface = (!host || !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 ||
                  strcmp(host, "::") == 0) ? NULL : host;
    info.protocols = srv->protocols;
    info.retry_and_idle_policy = &srv->retry;
    info.timeout_secs = 10;   /* handshake */
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    srv->vh = lws_create_vhost(srv->ctx, &info);
    if (!srv->vh) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not available)",
                 host ? host : "*", cfg->listen->port);
        goto fail;
    }
    return srv;
fail:
    gw_server_free(&srv);
    return NULL;
}

void gw_server_free(struct gw_server **sp)
{
    struct gw_server *srv;

    if (!sp || !*sp)
        return;
    srv = *sp;
    /* Closes every connection: CLOSED frees each session while the broker lives. On a
     * foreign loop lws closes its libuv handles asynchronously: run the loop until they
     * are closed (the engine closed its own first; bounded, should lws keep one open),
     * then destroy again, which frees the context and clears srv->ctx. */
    if (srv->ctx) {
        lws_context_destroy(srv->ctx);
        for (int i = 0; i < 1000 && uv_run(srv->uv_loop, UV_RUN_NOWAIT); i++)
            ;
        if (srv->ctx)
            lws_context_destroy(srv->ctx);
    }
    free(srv);
    *sp = NULL;
}

size_t gw_server_sessions(const struct gw_server *s) { return s->n_conns; }

size_t gw_server_tick(struct gw_server *srv, int64_t now_ms)
{
    return gw_wheel_advance(&srv->wheel, now_ms / 1000, on_deadline, srv);
}

void gw_server_shutdown(struct gw_server *srv)
{
    struct gw_conn *c;

    DL_FOREACH(srv->conns, c) {
        if (!c->session)
            continue;
        gw_session_shutdown(c->session);
        lws_callback_on_writable(c->wsi);
        arm_close_timer(c);
    }
}

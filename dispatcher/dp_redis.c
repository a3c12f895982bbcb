/* dp_redis: Redis SUBSCRIBE over a plain non-blocking hiredis context polled by the
 * dispatcher's loop. States: IDLE (waiting to reconnect) -> CONNECTING (TCP, wait for
 * writable) -> HANDSHAKE (AUTH/SELECT/SUBSCRIBE sent) -> UP (subscribed). Any error,
 * EOF, timeout or silence goes back to IDLE with capped exponential backoff. */
#include "dp_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>
#include <zmq.h>

#include "wm_backoff.h"
#include "wm_buf.h"
#include "wm_log.h"
#include "wm_proto.h"

/* While Redis is down, one "connect failed" line per this interval is enough. */
#define DP_REDIS_FAIL_LOG_MS 10000

enum dp_redis_state { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_UP };

struct dp_redis {
    char *host;                 /* owned */
    int port;
    char *password;             /* owned, NULL when none; never logged */
    int db;
    char *channel;              /* owned */
    struct dp_redis_callbacks cb;
    void *ud;

    redisContext *c;            /* owned; NULL in ST_IDLE */
    enum dp_redis_state state;
    struct wm_backoff backoff;
    int64_t next_connect_ms;    /* ST_IDLE */
    int64_t deadline_ms;        /* ST_CONNECTING, ST_HANDSHAKE */
    int64_t next_ping_ms;       /* ST_UP */
    int64_t last_rx_ms;         /* ST_UP: any reply counts as a sign of life */
    int pre_replies;            /* ST_HANDSHAKE: AUTH/SELECT replies still expected */
    bool out_pending;           /* hiredis' output buffer is not empty */
    bool ever_up;
    uint64_t attempts;
    struct wm_ratelimit fail_rl;
};

struct dp_redis *dp_redis_new(const struct wm_redis_url *url, const char *channel,
                              const struct dp_redis_callbacks *cb, void *ud)
{
    if (!url || !url->host || !channel || !*channel || !cb)
        return NULL;
    struct dp_redis *r = wm_calloc(1, sizeof *r);
    r->host = wm_strdup(url->host);
    r->port = url->port;
    r->password = url->password ? wm_strdup(url->password) : NULL;
    r->db = url->db;
    r->channel = wm_strdup(channel);
    r->cb = *cb;
    r->ud = ud;
    r->state = ST_IDLE;
    r->next_connect_ms = 0;     /* first attempt at the first tick */
    wm_backoff_init(&r->backoff, WM_RECONNECT_MIN_MS, WM_RECONNECT_MAX_MS);
    return r;
}

void dp_redis_free(struct dp_redis **rp)
{
    if (!rp || !*rp)
        return;
    struct dp_redis *r = *rp;
    if (r->c)
        redisFree(r->c);
    free(r->host);
    if (r->password) {
        /* a secret: do not leave it in freed heap memory */
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r->channel);
    free(r);
    *rp = NULL;
}

int dp_redis_fd(const struct dp_redis *r)
{
    return r->c ? r->c->fd : -1;
}

short dp_redis_events(const struct dp_redis *r)
{
    switch (r->state) {
    case ST_IDLE:
        return 0;
    case ST_CONNECTING:
        return ZMQ_POLLOUT;
    default:
        return (short)(ZMQ_POLLIN | (r->out_pending ? ZMQ_POLLOUT : 0));
    }
}

bool dp_redis_up(const struct dp_redis *r)
{
    return r->state == ST_UP;
}

uint64_t dp_redis_reconnects(const struct dp_redis *r)
{
    return r->attempts > 0 ? r->attempts - 1 : 0;
}

int64_t dp_redis_next_ms(const struct dp_redis *r)
{
    switch (r->state) {
    case ST_IDLE:
        return r->next_connect_ms;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
        return r->deadline_ms;
    default: {
        int64_t dead = r->last_rx_ms + (int64_t)WM_HEARTBEAT_MS * WM_HEARTBEAT_LIVENESS;
        return r->next_ping_ms < dead ? r->next_ping_ms : dead;
    }
    }
}

/* Drops the connection and schedules the next attempt. why may point into the context
 * (errstr), so it is copied before the context goes. */
static void fail(struct dp_redis *r, int64_t now_ms, const char *why)
{
    char reason[160], val[200];
    uint64_t suppressed = 0;
    bool was_up = r->state == ST_UP;

    snprintf(reason, sizeof reason, "%s", why ? why : "error");
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
    r->state = ST_IDLE;
    r->out_pending = false;
    uint32_t delay = wm_backoff_next(&r->backoff);
    r->next_connect_ms = now_ms + delay;

    wm_log_value(val, sizeof val, reason);
    if (was_up) {
        wm_warn("redis link down", "host=%s port=%d reason=%s retry_ms=%u", r->host,
                r->port, val, delay);
        r->cb.on_down(r->ud, reason);
    } else if (wm_ratelimit_allow(&r->fail_rl, now_ms, DP_REDIS_FAIL_LOG_MS, &suppressed)) {
        wm_warn("redis connect failed",
                "host=%s port=%d reason=%s retry_ms=%u attempts=%llu suppressed=%llu",
                r->host, r->port, val, delay, (unsigned long long)r->attempts,
                (unsigned long long)suppressed);
    }
}

/* Writes what hiredis has buffered; what does not fit waits for POLLOUT. */
static int flush(struct dp_redis *r, int64_t now_ms)
{
    int done = 0;
    if (redisBufferWrite(r->c, &done) == REDIS_ERR) {
        fail(r, now_ms, r->c->errstr);
        return -EIO;
    }
    r->out_pending = !done;
    return 0;
}

static void start_connect(struct dp_redis *r, int64_t now_ms)
{
    r->attempts++;
    /* getaddrinfo inside may block briefly for a host name; the default is an IP */
    r->c = redisConnectNonBlock(r->host, r->port);
    if (!r->c) {
        fail(r, now_ms, "out of memory");
        return;
    }
    if (r->c->err) {
        fail(r, now_ms, r->c->errstr);
        return;
    }
    r->state = ST_CONNECTING;
    r->deadline_ms = now_ms + DP_REDIS_CONNECT_TIMEOUT_MS;
}

/* The socket became writable: the TCP connect finished, well or not. */
static void on_connected(struct dp_redis *r, int64_t now_ms)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(r->c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        fail(r, now_ms, strerror(soerr));
        return;
    }
    /* TCP keep-alive catches a peer that vanished without FIN even if PINGs stall in
     * a full send buffer. */
    if (redisEnableKeepAlive(r->c) != REDIS_OK) {
        fail(r, now_ms, r->c->errstr);
        return;
    }
    r->pre_replies = 0;
    if (r->password) {
        redisAppendCommand(r->c, "AUTH %s", r->password);
        r->pre_replies++;
    }
    if (r->db > 0) {
        redisAppendCommand(r->c, "SELECT %d", r->db);
        r->pre_replies++;
    }
    redisAppendCommand(r->c, "SUBSCRIBE %s", r->channel);
    r->state = ST_HANDSHAKE;
    flush(r, now_ms);
}

static bool str_elem(const redisReply *rep, size_t i, const char *want)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements <= i)
        return false;
    const redisReply *e = rep->element[i];
    return e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) &&
           strcasecmp(e->str, want) == 0;
}

/* Returns 0, or -EIO when the reply ended the connection. */
static int handle_reply(struct dp_redis *r, redisReply *rep, int64_t now_ms)
{
    char why[160];

    r->last_rx_ms = now_ms;
    if (r->state == ST_HANDSHAKE && r->pre_replies > 0) {
        r->pre_replies--;
        if (rep->type == REDIS_REPLY_ERROR) {
            /* Redis' own text ("WRONGPASS ...") never contains the password */
            snprintf(why, sizeof why, "AUTH/SELECT refused: %s", rep->str);
            fail(r, now_ms, why);
            return -EIO;
        }
        return 0;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof why, "redis error: %s", rep->str);
        fail(r, now_ms, why);
        return -EIO;
    }
    if (str_elem(rep, 0, "message")) {
        const redisReply *p = rep->elements >= 3 ? rep->element[2] : NULL;
        if (r->state == ST_UP && p && p->type == REDIS_REPLY_STRING)
            r->cb.on_message(r->ud, p->str, p->len);
        return 0;
    }
    if (r->state == ST_HANDSHAKE && str_elem(rep, 0, "subscribe")) {
        r->state = ST_UP;
        r->next_ping_ms = now_ms + WM_HEARTBEAT_MS;
        wm_backoff_reset(&r->backoff);
        wm_info(r->ever_up ? "redis reconnected" : "redis connected",
                "host=%s port=%d attempts=%llu", r->host, r->port,
                (unsigned long long)r->attempts);
        bool first = !r->ever_up;
        r->ever_up = true;
        r->fail_rl = (struct wm_ratelimit){0};   /* the next outage logs at once */
        r->cb.on_up(r->ud, first);
        return 0;
    }
    /* "pong" and anything else: only a sign of life */
    return 0;
}

static void read_replies(struct dp_redis *r, int64_t now_ms)
{
    if (redisBufferRead(r->c) == REDIS_ERR) {
        fail(r, now_ms, r->c->errstr);
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(r->c, &reply) == REDIS_ERR) {
            fail(r, now_ms, r->c->errstr);   /* protocol error */
            return;
        }
        if (!reply)
            return;
        int rc = handle_reply(r, reply, now_ms);
        freeReplyObject(reply);
        if (rc < 0)
            return;
    }
}

void dp_redis_on_io(struct dp_redis *r, short revents, int64_t now_ms)
{
    if (!r->c || !revents)
        return;
    if (r->state == ST_CONNECTING) {
        if (revents & (ZMQ_POLLOUT | ZMQ_POLLERR))
            on_connected(r, now_ms);
        return;
    }
    if ((revents & ZMQ_POLLOUT) && r->out_pending && flush(r, now_ms) < 0)
        return;
    /* POLLERR/POLLHUP: the read reports the actual error or EOF */
    if (revents & (ZMQ_POLLIN | ZMQ_POLLERR))
        read_replies(r, now_ms);
}

void dp_redis_tick(struct dp_redis *r, int64_t now_ms)
{
    switch (r->state) {
    case ST_IDLE:
        if (now_ms >= r->next_connect_ms)
            start_connect(r, now_ms);
        break;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
        if (now_ms >= r->deadline_ms)
            fail(r, now_ms, "connect timeout");
        break;
    case ST_UP:
        if (now_ms - r->last_rx_ms >= (int64_t)WM_HEARTBEAT_MS * WM_HEARTBEAT_LIVENESS) {
            fail(r, now_ms, "no reply to PING");
            break;
        }
        if (now_ms >= r->next_ping_ms) {
            /* PING is allowed in subscribed mode; Redis answers ["pong", ""] */
            redisAppendCommand(r->c, "PING");
            r->next_ping_ms = now_ms + WM_HEARTBEAT_MS;
            flush(r, now_ms);
        }
        break;
    }
}

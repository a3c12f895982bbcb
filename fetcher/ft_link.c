/* ft_link: one DEALER to one gateway, with READY/HEARTBEAT and the Paranoid Pirate
 * liveness rule (ZeroMQ guide, examples/C/ppworker.c): a gateway silent for
 * WM_HEARTBEAT_LIVENESS heartbeats gets a brand-new socket after a backoff. */
#include "ft_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wm_backoff.h"
#include "wm_buf.h"
#include "wm_log.h"
#include "wm_proto.h"
#include "wm_zmq.h"

#define LIVENESS_MS ((int64_t)WM_HEARTBEAT_MS * WM_HEARTBEAT_LIVENESS)

struct ft_link {
    char *endpoint;             /* owned */
    void *zctx;                 /* borrowed */
    void *sock;                 /* owned DEALER; NULL while waiting to reopen */
    uint64_t self;              /* this fetcher's instance id */
    uint64_t gw_instance;       /* gateway instance heard on this socket; 0 = none yet */
    int64_t opened_ms;          /* when sock was opened */
    int64_t last_heard_ms;      /* last valid message from the gateway; 0 = none */
    int64_t next_hb_ms;         /* next HEARTBEAT due */
    int64_t reopen_ms;          /* when to open again (sock == NULL) */
    int64_t credit;             /* what the gateway believes we have: READY - JOBs + RESULTs */
    struct wm_backoff backoff;
    struct wm_buf enc;          /* encode buffer, reused */
    struct ft_link_stats st;
    struct wm_ratelimit rl;
};

struct ft_link *ft_link_new(void *zctx, const char *endpoint, uint64_t self)
{
    struct ft_link *l = wm_calloc(1, sizeof *l);

    l->endpoint = wm_strdup(endpoint);
    l->zctx = zctx;
    l->self = self;
    wm_backoff_init(&l->backoff, WM_RECONNECT_MIN_MS, WM_RECONNECT_MAX_MS);
    return l;
}

static void link_close(struct ft_link *l)
{
    if (l->sock)
        zmq_close(l->sock);
    l->sock = NULL;
    l->gw_instance = 0;
    l->last_heard_ms = 0;
    l->credit = 0;
}

void ft_link_free(struct ft_link **lp)
{
    struct ft_link *l = *lp;

    if (!l)
        return;
    link_close(l);
    wm_buf_free(&l->enc);
    free(l->endpoint);
    free(l);
    *lp = NULL;
}

int ft_link_send(struct ft_link *l, struct wm_msg *m)
{
    int rc;

    if (!l->sock) {
        l->st.send_drops++;
        return -ENOTCONN;
    }
    m->instance = l->self;
    wm_buf_reset(&l->enc);
    rc = wm_msg_encode(m, &l->enc);
    if (rc == 0)
        rc = wm_zmq_send(l->sock, NULL, 0, l->enc.data, l->enc.len);
    if (rc != 0)
        l->st.send_drops++;
    return rc;
}

int ft_link_send_ready(struct ft_link *l, uint32_t credits)
{
    struct wm_msg m = {.type = WM_MSG_READY};
    int rc;

    m.u.ready.credits = credits;
    rc = ft_link_send(l, &m);
    if (rc == 0)
        l->credit = credits;
    return rc;
}

static int link_open(struct ft_link *l, int64_t now, uint32_t credits)
{
    void *s = zmq_socket(l->zctx, ZMQ_DEALER);
    int rc;

    if (!s)
        return -zmq_errno();
    /* Linger 0: a replaced socket must not keep retrying stale messages to a dead peer;
     * the gateway resends lost jobs after its own liveness timeout. */
    if ((rc = wm_zmq_setint(s, ZMQ_LINGER, 0)) != 0 ||
        (rc = wm_zmq_setint(s, ZMQ_SNDHWM, WM_FETCH_HWM)) != 0 ||
        (rc = wm_zmq_setint(s, ZMQ_RCVHWM, WM_FETCH_HWM)) != 0 ||
        (rc = wm_zmq_setint(s, ZMQ_RECONNECT_IVL, WM_RECONNECT_MIN_MS)) != 0 ||
        /* Capped at one heartbeat, not the Redis backoff cap: a restarted gateway
         * must see its fetchers (and their READY) within about a second. */
        (rc = wm_zmq_setint(s, ZMQ_RECONNECT_IVL_MAX, WM_HEARTBEAT_MS)) != 0)
        goto fail;
    if (zmq_connect(s, l->endpoint) != 0) {
        rc = -zmq_errno();
        goto fail;
    }
    l->sock = s;
    l->opened_ms = now;
    l->last_heard_ms = 0;
    l->gw_instance = 0;
    l->next_hb_ms = now + WM_HEARTBEAT_MS;
    /* The DEALER queues this until the TCP connection is up. */
    ft_link_send_ready(l, credits);
    return 0;
fail:
    zmq_close(s);
    return rc;
}

int64_t ft_link_tick(struct ft_link *l, int64_t now, uint32_t credits)
{
    char ep[256];
    int64_t silent_since;

    if (!l->sock) {
        if (now < l->reopen_ms)
            return l->reopen_ms;
        if (link_open(l, now, credits) != 0) {
            l->reopen_ms = now + wm_backoff_next(&l->backoff);
            wm_warn("cannot open gateway socket", "endpoint=%s",
                    wm_log_value(ep, sizeof ep, l->endpoint));
            return l->reopen_ms;
        }
    }
    silent_since = l->last_heard_ms ? l->last_heard_ms : l->opened_ms;
    if (now - silent_since > LIVENESS_MS) {
        uint32_t delay = wm_backoff_next(&l->backoff);

        /* Only a link that had been up is news; a gateway that never answered is
         * reported once per backoff cycle at debug level. */
        if (l->last_heard_ms)
            wm_warn("gateway silent, reconnecting", "endpoint=%s retry_ms=%u",
                    wm_log_value(ep, sizeof ep, l->endpoint), delay);
        else
            wm_debug("gateway not answering, reconnecting", "endpoint=%s retry_ms=%u",
                     wm_log_value(ep, sizeof ep, l->endpoint), delay);
        link_close(l);
        l->st.reopens++;
        l->reopen_ms = now + delay;
        return l->reopen_ms;
    }
    if (now >= l->next_hb_ms) {
        struct wm_msg hb = {.type = WM_MSG_HEARTBEAT};

        ft_link_send(l, &hb);
        l->next_hb_ms = now + WM_HEARTBEAT_MS;
    }
    return l->next_hb_ms < silent_since + LIVENESS_MS + 1 ? l->next_hb_ms
                                                         : silent_since + LIVENESS_MS + 1;
}

static void bad_message(struct ft_link *l, int64_t now, const char *why)
{
    uint64_t suppressed = 0;
    char ep[256];

    l->st.bad_messages++;
    if (wm_ratelimit_allow(&l->rl, now, WM_RATELIMIT_LOG_MS, &suppressed))
        wm_warn("bad message from gateway", "endpoint=%s why=\"%s\" suppressed=%llu",
                wm_log_value(ep, sizeof ep, l->endpoint), why,
                (unsigned long long)suppressed);
}

/* A valid message arrived: the gateway is alive; a gateway we have not seen on this
 * socket (first contact or a restart) knows nothing of our credit. */
static void heard(struct ft_link *l, int64_t now, uint64_t instance, uint32_t credits)
{
    char ep[256];

    if (!l->last_heard_ms)
        wm_info("gateway link up", "endpoint=%s",
                wm_log_value(ep, sizeof ep, l->endpoint));
    l->last_heard_ms = now;
    wm_backoff_reset(&l->backoff);
    if (instance != l->gw_instance) {
        if (l->gw_instance)
            wm_info("gateway restarted", "endpoint=%s",
                    wm_log_value(ep, sizeof ep, l->endpoint));
        l->gw_instance = instance;
        ft_link_send_ready(l, credits);
    }
}

int ft_link_recv(struct ft_link *l, int64_t now, uint32_t credits, struct wm_msg *job)
{
    struct wm_zframes f;
    struct wm_msg m;
    const char *why;
    int rc;

    while (l->sock) {
        rc = wm_zmq_recv(l->sock, &f);
        if (rc == -EAGAIN)
            return 0;
        if (rc == -EMSGSIZE) {
            bad_message(l, now, "too many frames");
            continue;
        }
        if (rc == -EINTR)
            return rc;
        if (rc != 0) {
            /* A socket that cannot be read would be polled again and again: start over
             * with a new one after the backoff. */
            char ep[256];

            wm_warn("gateway socket failed, reopening", "endpoint=%s error=\"%s\"",
                    wm_log_value(ep, sizeof ep, l->endpoint), zmq_strerror(-rc));
            link_close(l);
            l->st.reopens++;
            l->reopen_ms = now + wm_backoff_next(&l->backoff);
            return 0;
        }
        if (f.n != 1) {
            wm_zframes_close(&f);
            bad_message(l, now, "expected one frame");
            continue;
        }
        memset(&m, 0, sizeof m);
        why = "?";
        rc = wm_msg_decode(wm_zframe_data(&f, 0), wm_zframe_size(&f, 0), &m, &why);
        wm_zframes_close(&f);
        if (rc != 0) {
            bad_message(l, now, why);
            continue;
        }
        switch (m.type) {
        case WM_MSG_HEARTBEAT:
            heard(l, now, m.instance, credits);
            wm_msg_clear(&m);
            break;
        case WM_MSG_JOB:
            heard(l, now, m.instance, credits);
            l->credit--;
            *job = m;
            return 1;
        default:
            wm_msg_clear(&m);
            bad_message(l, now, "unexpected message type");
            break;
        }
    }
    return 0;
}

int ft_link_send_result(struct ft_link *l, struct wm_msg *result)
{
    int rc = ft_link_send(l, result);
    if (rc == 0)
        l->credit++;
    return rc;
}

bool ft_link_needs_credit(const struct ft_link *l, int64_t now)
{
    return l->credit <= 0 && ft_link_alive(l, now);
}

const char *ft_link_endpoint(const struct ft_link *l) { return l->endpoint; }
const struct ft_link_stats *ft_link_stats(const struct ft_link *l) { return &l->st; }

bool ft_link_alive(const struct ft_link *l, int64_t now)
{
    return l->sock && l->last_heard_ms && now - l->last_heard_ms <= LIVENESS_MS;
}

int ft_link_fd(const struct ft_link *l)
{
    return l->sock ? wm_zmq_fd(l->sock) : -1;
}

void ft_link_set_linger(struct ft_link *l, int ms)
{
    if (l->sock)
        wm_zmq_setint(l->sock, ZMQ_LINGER, ms);
}

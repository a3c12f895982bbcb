/* gw_bumps: applies the dispatchers' BUMPs and watches their sequence numbers; any
 * sign of lost bumps (a new instance, a gap, a RESYNC) refreshes every subscription,
 * which is what keeps the delivery guarantee across restarts and drops. */
#include "gw_bumps.h"

#include <stdlib.h>

#include <uthash.h>

#include "wm_buf.h"
#include "wm_log.h"
#include "wm_proto.h"

#define LINK_WINDOW_MS ((int64_t)WM_HEARTBEAT_LIVENESS * WM_HEARTBEAT_MS)
#define FORGET_MS      60000   /* an instance silent this long is gone (restarted) */

struct gw_dispatcher {
    uint64_t instance;          /* hash key */
    uint64_t last_seq;
    int64_t last_heard_ms;
    UT_hash_handle hh;
};

struct gw_bumps {
    struct gw_broker *broker;
    struct gw_stats *stats;
    struct gw_dispatcher *peers;
    struct wm_ratelimit rl_bad;
    struct wm_ratelimit rl_gap;
};

struct gw_bumps *gw_bumps_new(struct gw_broker *broker, struct gw_stats *stats)
{
    struct gw_bumps *b = wm_calloc(1, sizeof *b);
    b->broker = broker;
    b->stats = stats;
    return b;
}

void gw_bumps_free(struct gw_bumps **bp)
{
    if (!bp || !*bp)
        return;
    struct gw_dispatcher *d, *dt;
    HASH_ITER(hh, (*bp)->peers, d, dt) {
        HASH_DEL((*bp)->peers, d);
        free(d);
    }
    free(*bp);
    *bp = NULL;
}

static void bad_message(struct gw_bumps *b, const char *why, int64_t now_ms)
{
    uint64_t skipped;
    b->stats->bad_messages++;
    if (wm_ratelimit_allow(&b->rl_bad, now_ms, WM_RATELIMIT_LOG_MS, &skipped))
        wm_warn("bad message from a dispatcher", "reason=\"%s\" suppressed=%llu", why,
                (unsigned long long)skipped);
}

static void count_up(struct gw_bumps *b, int64_t now_ms)
{
    struct gw_dispatcher *d, *dt;
    uint64_t up = 0;
    HASH_ITER(hh, b->peers, d, dt) {
        if (now_ms - d->last_heard_ms <= LINK_WINDOW_MS)
            up++;
    }
    b->stats->dispatcher_up = up;
}

void gw_bumps_on_message(struct gw_bumps *b, const struct wm_msg *msg, int64_t now_ms)
{
    struct gw_dispatcher *d = NULL;
    uint64_t seq;
    bool refresh = false, valid = true;
    const char *why = NULL;

    switch (msg->type) {
    case WM_MSG_BUMP:
        valid = msg->u.bump.path && msg->u.bump.path[0] == '/' &&
                (msg->u.bump.match == WM_MATCH_EXACT || msg->u.bump.match == WM_MATCH_PREFIX);
        /* A bad bump is still numbered: its seq is consumed below, so it does not
         * show up as a gap later. */
        if (!valid)
            bad_message(b, "bad bump", now_ms);
        seq = msg->u.bump.seq;
        break;
    case WM_MSG_RESYNC:
        seq = msg->u.resync.seq;
        refresh = true;
        why = "resync";
        break;
    case WM_MSG_HEARTBEAT:
        seq = msg->u.heartbeat.seq;
        break;
    default:
        bad_message(b, "unexpected type", now_ms);
        return;
    }

    HASH_FIND(hh, b->peers, &msg->instance, sizeof msg->instance, d);
    if (!d) {
        /* A dispatcher we have not heard yet: it may have published bumps (or its
         * first RESYNC) before our SUB was joined, so assume they were lost. */
        d = wm_calloc(1, sizeof *d);
        d->instance = msg->instance;
        HASH_ADD(hh, b->peers, instance, sizeof d->instance, d);
        refresh = true;
        why = "new dispatcher";
        wm_info("dispatcher joined", "instance=%llu seq=%llu",
                (unsigned long long)d->instance, (unsigned long long)seq);
    } else {
        uint64_t want = msg->type == WM_MSG_HEARTBEAT ? d->last_seq : d->last_seq + 1;
        if (seq != want) {
            uint64_t skipped;
            b->stats->seq_gaps++;
            refresh = true;
            why = "sequence gap";
            if (wm_ratelimit_allow(&b->rl_gap, now_ms, WM_RATELIMIT_LOG_MS, &skipped))
                wm_warn("bump sequence gap", "instance=%llu expected=%llu got=%llu suppressed=%llu",
                        (unsigned long long)d->instance, (unsigned long long)want,
                        (unsigned long long)seq, (unsigned long long)skipped);
        }
    }
    d->last_seq = seq;
    d->last_heard_ms = now_ms;

    if (msg->type == WM_MSG_BUMP) {
        b->stats->bumps_received++;
        if (valid && gw_broker_bump(b->broker, msg->u.bump.path, msg->u.bump.match) > 0)
            b->stats->bumps_matched++;
    }
    if (refresh) {
        b->stats->resyncs++;
        wm_info("refreshing every subscription", "reason=\"%s\"", why);
        gw_broker_refresh_all(b->broker);
    }
    count_up(b, now_ms);
}

void gw_bumps_tick(struct gw_bumps *b, int64_t now_ms)
{
    struct gw_dispatcher *d, *dt;
    HASH_ITER(hh, b->peers, d, dt) {
        if (now_ms - d->last_heard_ms > FORGET_MS) {
            HASH_DEL(b->peers, d);
            free(d);
        }
    }
    uint64_t was = b->stats->dispatcher_up;
    count_up(b, now_ms);
    if (was && !b->stats->dispatcher_up)
        wm_warn("no dispatcher heard", "window_ms=%lld", (long long)LINK_WINDOW_MS);
}

bool gw_bumps_link_up(const struct gw_bumps *b)
{
    return b->stats->dispatcher_up > 0;
}

/* gw_stats: the gateway's counters, one plain struct (single-threaded process) that
 * every module increments and gw_engine renders on /metrics. */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdint.h>

#include "wm_http.h"
#include "wm_log.h"
#include "wm_metrics.h"

struct gw_stats {
    /* sessions (gw_server, gw_session) */
    uint64_t sessions;               /* gauge: open websocket sessions */
    uint64_t sessions_opened;
    uint64_t sessions_refused;       /* no/unknown subprotocol, over limits */
    uint64_t sessions_aborted;       /* ABORT sent (wrong realm, bad ticket, protocol violation) */
    uint64_t auth_failed;
    uint64_t protocol_violations;    /* malformed or out-of-order WAMP */
    uint64_t slow_clients_closed;    /* queue over its byte cap */
    /* gw_session logs the two above once a minute per kind, process-wide */
    struct wm_ratelimit log_violation, log_slow;
    uint64_t join_timeouts;          /* closed: no WELCOME within the join deadline */
    uint64_t idle_closed;            /* closed: silent past the ping and its grace */
    uint64_t frames_in, frames_out;
    /* subscriptions (gw_broker) */
    uint64_t subscriptions;          /* gauge: session subscriptions (members) */
    uint64_t topics;                 /* gauge */
    uint64_t groups;                 /* gauge: (topic, token, accept) groups */
    uint64_t subscribe_refused;      /* invalid topic, over the per-session limit */
    /* bumps (gw_bumps) */
    uint64_t bumps_received;
    uint64_t bumps_matched;          /* bumps that touched at least one topic */
    uint64_t resyncs;                /* full refreshes: RESYNC, seq gap, new dispatcher */
    uint64_t seq_gaps;
    uint64_t bad_messages;           /* undecodable ZeroMQ messages from any peer */
    uint64_t dispatcher_up;          /* gauge: dispatchers heard within the liveness window */
    /* jobs (gw_broker, gw_pool) */
    uint64_t fetches_coalesced;      /* bumps folded into an in-flight or pending fetch */
    uint64_t fetches_not_modified;   /* conditional refetches answered 304 (gw_broker) */
    uint64_t jobs_queued;            /* gauge: waiting for a fetcher with credit */
    uint64_t jobs_in_flight;         /* gauge */
    uint64_t jobs_sent;
    uint64_t jobs_retried;           /* resent after a fetcher died or a job timed out */
    uint64_t jobs_failed;            /* gave up after the attempts: sessions got a 504 */
    uint64_t results_stale;          /* RESULT for a job no longer known */
    uint64_t results_by_class[WM_STATUS_CLASSES];   /* by wm_status_class */
    uint64_t fetchers;               /* gauge: live fetchers */
    uint64_t fetchers_lost;          /* presumed dead after missed heartbeats */
    struct wm_histogram fetch_latency;  /* job sent -> result received, seconds */
    /* delivery (gw_session / gw_outq) */
    uint64_t events_delivered;       /* EVENT frames written to a socket */
    uint64_t events_replaced;        /* an undelivered EVENT replaced by a newer page */
    uint64_t events_skipped_unchanged;  /* not pushed: same page as the last pushed (gw_broker) */
    uint64_t events_dropped;         /* dropped: unsubscribed or session closed before send */
    uint64_t pages_too_large;        /* page over the message cap, sent as 502 */
    uint64_t publishes_refused;      /* PUBLISH from a client (dropped, or ERROR if acknowledged) */
};

#endif

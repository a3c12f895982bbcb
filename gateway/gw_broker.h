/* gw_broker: topics, (topic, token, accept) groups and session memberships; turns
 * bumps into coalesced fetch jobs and fetched pages into deliveries (docs/internals.md,
 * "Coalescing and delivery"). No I/O: jobs go to the pool, pages to a callback. */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_event.h"
#include "gw_pool.h"
#include "gw_stats.h"
#include "wm_config.h"
#include "wm_msg.h"

struct gw_broker;
struct gw_client;   /* the broker's view of one session: token + memberships */

/* Hands a page to a session. sub_id is the slot key for latest-wins replacement in the
 * session's queue. ev is borrowed (gw_event_ref to keep it). */
typedef void (*gw_deliver_fn)(void *session, uint64_t sub_id, struct gw_event *ev,
                              bool retained);

struct gw_broker_config {
    const char *backend_url;              /* borrowed, no trailing '/' */
    const struct wm_auth_header *auth;    /* borrowed */
    uint32_t fetch_timeout_ms;
    uint32_t max_page_bytes;              /* job max_body */
    size_t max_message_bytes;             /* encoded EVENT cap */
    size_t max_subscriptions;             /* per session */
    bool push_unchanged;                  /* push every refetch; no conditional GETs */
};

struct gw_broker *gw_broker_new(const struct gw_broker_config *cfg, struct gw_pool *pool,
                                gw_deliver_fn deliver, struct gw_stats *stats);
/* Frees every client still open and cancels their fetches: call it before
 * gw_pool_free. */
void gw_broker_free(struct gw_broker **b);

/* A session joins. token may be NULL (anonymous: no auth header is sent). The client
 * is owned by the broker; the session keeps the pointer until gw_broker_client_free. */
struct gw_client *gw_broker_client_new(struct gw_broker *b, void *session, const char *token);
/* Drops every membership of the client and frees it (pages in flight for it are
 * dropped). NULL-safe, clears the pointer. */
void gw_broker_client_free(struct gw_broker *b, struct gw_client **c);
/* Replaces the token used for this client's later fetches. Fetches nothing by itself,
 * except that a snapshot or a post-bump page the client was still owed is fetched
 * again with the new token (the old group's page no longer reaches it). */
void gw_broker_client_set_token(struct gw_broker *b, struct gw_client *c, const char *token);

/* Subscribes c to topic (already validated). accept is the Accept header of its
 * fetches (already validated: printable ASCII; NULL = the default, any type). *sub_id gets the
 * topic's subscription id. Subscribing again to the same topic returns the same id,
 * takes the new accept (moving the membership, like a token change) and, with
 * retained, fetches a snapshot again. Returns 0, or -ENOSPC over max_subscriptions (counted here in
 * subscribe_refused; the caller counts only the topics it rejects itself). Never
 * delivers an EVENT before it returns: fetches go through gw_pool_submit, which never
 * calls back, so the caller can answer SUBSCRIBED first. */
int gw_broker_subscribe(struct gw_broker *b, struct gw_client *c, const char *topic,
                        const char *accept, bool retained, uint64_t *sub_id);
/* Returns 0, or -ENOENT when c has no subscription with this id. */
int gw_broker_unsubscribe(struct gw_broker *b, struct gw_client *c, uint64_t sub_id);

/* A bump from the dispatcher (path already validated by it). Returns the number of
 * topics it touched. */
size_t gw_broker_bump(struct gw_broker *b, const char *path, enum wm_match match);
/* Refreshes every subscription (after RESYNC or a sequence gap). */
void gw_broker_refresh_all(struct gw_broker *b);

/* The pool's result callback (gw_pool_result_fn with ud = broker). */
void gw_broker_on_result(void *broker, struct gw_job *job, struct wm_msg *result);

#endif

/* gw_bumps: what the gateway does with the dispatchers' PUB stream: applies BUMPs to
 * the broker and keeps each dispatcher instance's sequence, so that a restart, a gap
 * or a RESYNC refreshes every subscription (docs/internals.md, "Bumps"). No I/O: the
 * engine reads the SUB socket and passes decoded messages in. */
#ifndef GW_BUMPS_H
#define GW_BUMPS_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_broker.h"
#include "gw_stats.h"
#include "wm_msg.h"

struct gw_bumps;

struct gw_bumps *gw_bumps_new(struct gw_broker *broker, struct gw_stats *stats);
void gw_bumps_free(struct gw_bumps **b);

/* A decoded message from a SUB socket (BUMP, RESYNC or HEARTBEAT; anything else is
 * counted in bad_messages). msg borrowed. */
void gw_bumps_on_message(struct gw_bumps *b, const struct wm_msg *msg, int64_t now_ms);
/* Liveness: updates stats->dispatcher_up. Call about once a second. */
void gw_bumps_tick(struct gw_bumps *b, int64_t now_ms);

/* True when some dispatcher was heard within the liveness window (for /healthz). */
bool gw_bumps_link_up(const struct gw_bumps *b);

#endif

/* gw_outq: one session's FIFO of outgoing frames. An EVENT queued under its subscription
 * id replaces an undelivered one of the same subscription (latest wins), so a slow client
 * holds one page per subscription; control frames (key 0) are appended. */
#ifndef GW_OUTQ_H
#define GW_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_event.h"

struct gw_outq;

struct gw_outq *gw_outq_new(void);
/* Drops every queued frame (their references). NULL-safe, clears the pointer. */
void gw_outq_free(struct gw_outq **q);

/* Queues frame under key (0: a control frame, appended; otherwise an EVENT slot).
 * Takes one new reference on frame (the caller keeps its own). A frame replacing a
 * queued one of the same key goes to the tail, behind whatever was queued since (a
 * re-SUBSCRIBE's SUBSCRIBED must precede its retained EVENT). retained marks the slot
 * as owing a retained EVENT until it is taken. Returns 1 when it replaced a queued
 * frame (the old one is released), else 0. */
int gw_outq_put(struct gw_outq *q, struct gw_frame *frame, uint64_t key, bool retained);

/* True when the queued EVENT of this key is a retained one: a newer page replacing it
 * must still be sent as retained, or the client never gets the snapshot it asked for. */
bool gw_outq_owes_retained(const struct gw_outq *q, uint64_t key);

/* Removes the oldest frame and hands its reference to the caller (gw_frame_unref it
 * after writing). *key gets its key (0 for control frames). NULL when empty. */
struct gw_frame *gw_outq_take(struct gw_outq *q, uint64_t *key);

/* Removes the queued frame of this key, if any (key 0 is never dropped). Returns the
 * number of frames removed (0 or 1). */
size_t gw_outq_drop_key(struct gw_outq *q, uint64_t key);
/* Removes everything. Returns the number of EVENT frames (key != 0) dropped. */
size_t gw_outq_clear(struct gw_outq *q);

size_t gw_outq_bytes(const struct gw_outq *q);     /* sum of queued payload lengths */
size_t gw_outq_count(const struct gw_outq *q);     /* frames queued */
size_t gw_outq_controls(const struct gw_outq *q);  /* key-0 frames queued */
bool gw_outq_empty(const struct gw_outq *q);

#endif

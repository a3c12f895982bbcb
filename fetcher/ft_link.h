/* ft_link: one DEALER to one gateway (Paranoid Pirate worker side, docs/internals.md):
 * READY on open and on a new gateway instance, HEARTBEAT every WM_HEARTBEAT_MS, a fresh
 * socket after backoff when the gateway falls silent. RESULTs go back on the same link. */
#ifndef FT_LINK_H
#define FT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_msg.h"

/* What a link counts, for the fetcher's metrics. */
struct ft_link_stats {
    uint64_t bad_messages;      /* undecodable or unexpected messages dropped */
    uint64_t send_drops;        /* messages that could not be queued (HWM, no socket) */
    uint64_t reopens;           /* sockets replaced because the gateway fell silent */
};

struct ft_link;   /* opaque */

/* Makes a link; no socket yet (ft_link_tick opens it when due, i.e. at once). zctx and
 * endpoint are borrowed (endpoint is copied). Never fails (allocation aborts). */
struct ft_link *ft_link_new(void *zctx, const char *endpoint, uint64_t self);
/* Closes the socket (linger as set, 0 by default) and frees; NULL-safe, clears *l. */
void ft_link_free(struct ft_link **l);

/* Opens the DEALER if it is due, sends HEARTBEAT when due, and replaces a socket whose
 * gateway stayed silent for WM_HEARTBEAT_LIVENESS heartbeats. credits: the fetcher's free
 * slots now, announced in READY. Returns the time (ms) this link next needs a tick. */
int64_t ft_link_tick(struct ft_link *l, int64_t now_ms, uint32_t credits);

/* Reads what is waiting without blocking. HEARTBEATs are handled here (a new gateway
 * instance gets a READY{credits}); bad messages are counted, logged rate-limited and
 * dropped. Returns 1 when a JOB was read into *job (caller owns it: wm_msg_clear),
 * 0 when the socket is drained (-EAGAIN seen) or there is no socket (a socket that
 * fails to read is closed and reopened after backoff), or -EINTR (call again soon). */
int ft_link_recv(struct ft_link *l, int64_t now_ms, uint32_t credits, struct wm_msg *job);

/* Sends m (its instance is set to self). Returns 0, -ENOTCONN without a socket, or the
 * wm_zmq_send error (-EAGAIN at the high-water mark). Counted in send_drops. */
int ft_link_send(struct ft_link *l, struct wm_msg *m);
/* Sends READY{credits} and makes it the gateway's view of our credit. */
int ft_link_send_ready(struct ft_link *l, uint32_t credits);
/* Sends a RESULT (as ft_link_send); once sent, its slot is credit the gateway sees. */
int ft_link_send_result(struct ft_link *l, struct wm_msg *result);

/* True when the gateway is alive but believes we have no credit left: several gateways
 * share the slots, so it must be told again when slots are free (ft_link_send_ready). */
bool ft_link_needs_credit(const struct ft_link *l, int64_t now_ms);

/* True when the gateway was heard within the liveness window. */
bool ft_link_alive(const struct ft_link *l, int64_t now_ms);
/* The socket's ZMQ_FD for polling, or -1 without a socket. */
int ft_link_fd(const struct ft_link *l);
/* The endpoint, as configured. */
const char *ft_link_endpoint(const struct ft_link *l);
const struct ft_link_stats *ft_link_stats(const struct ft_link *l);
/* Linger for the final close (shutdown lets queued RESULTs leave). */
void ft_link_set_linger(struct ft_link *l, int ms);

#endif

/* gw_pool: the fetcher registry (Paranoid Pirate, see docs/internals.md). Tracks each
 * fetcher's credit and liveness, queues jobs until a fetcher has credit, resends the
 * jobs of a dead fetcher, and hands each RESULT to the broker. It does no I/O itself:
 * it sends through a callback (the engine's ROUTER socket; a recorder in tests). */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "gw_stats.h"
#include "wm_msg.h"

struct gw_pool;

/* A fetch the broker asked for. Created by the broker, owned by the pool after
 * gw_pool_submit until the pool calls on_result (then the broker frees it with
 * gw_job_free) or the broker cancels it. */
struct gw_job {
    uint64_t id;                 /* unique per gateway run, set by gw_pool_submit */
    char *url;                   /* owned */
    struct wm_header *headers;   /* owned */
    size_t n_headers;
    uint32_t timeout_ms;
    uint32_t max_body;
    void *owner;                 /* the broker's group; NULL once cancelled */
    /* pool bookkeeping */
    int attempts;
    int64_t sent_ms;             /* when last sent, 0 while queued */
    int64_t sent_us;
    struct gw_fetcher *fetcher;  /* where it is in flight, NULL while queued */
    struct gw_job *prev, *next;  /* utlist: the queue or the fetcher's in-flight list */
    UT_hash_handle hh;           /* the pool's id -> job table */
};

void gw_job_free(struct gw_job **j);   /* frees url and headers too; NULL-safe */

/* Sends msg to the fetcher with this routing id. Returns 0, or negative when it could
 * not be sent (the pool then treats the fetcher as gone). It must not call back into
 * the pool: drain the socket (docs/libraries.md) after the pool call that sent returns. */
typedef int (*gw_pool_send_fn)(void *ud, const void *id, size_t idlen,
                               const struct wm_msg *msg);
/* A job finished: result is borrowed for the call (the callee may move out of it with
 * a struct copy + memset, e.g. into a gw_event). Then the pool forgets the job; the
 * callee must gw_job_free it. A job that failed all attempts comes here with a
 * synthesized 504 result. */
typedef void (*gw_pool_result_fn)(void *ud, struct gw_job *job, struct wm_msg *result);

struct gw_pool_config {
    uint64_t instance;           /* the gateway's instance id (sent in HEARTBEAT) */
    int max_attempts;            /* sends of one job before it fails with 504 (3) */
};

struct gw_pool *gw_pool_new(const struct gw_pool_config *cfg, gw_pool_send_fn send,
                            gw_pool_result_fn on_result, void *ud, struct gw_stats *stats);
void gw_pool_free(struct gw_pool **p);   /* frees queued and in-flight jobs */

/* Queues the job (sets job->id) and sends what credit allows. Takes ownership.
 * Neither submit nor cancel ever calls on_result (so the broker may call them while
 * walking its own tables); on_result runs only from on_message and tick. */
void gw_pool_submit(struct gw_pool *p, struct gw_job *job);
/* The broker no longer wants this job (its group went away). The pool frees it now if
 * queued, or when its result comes back / it times out, without calling on_result. */
void gw_pool_cancel(struct gw_pool *p, struct gw_job *job);

/* A message from a fetcher (routing id + decoded message; msg borrowed). */
void gw_pool_on_message(struct gw_pool *p, const void *id, size_t idlen, struct wm_msg *msg);
/* Heartbeats out, dead fetchers, timed-out jobs. Call at least every WM_HEARTBEAT_MS/2
 * with now_ms = wm_now_ms() (the pool stamps messages and sends with that clock). */
void gw_pool_tick(struct gw_pool *p, int64_t now_ms);

size_t gw_pool_live_fetchers(const struct gw_pool *p);

#endif

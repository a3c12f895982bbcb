/* gw_pool: the gateway's side of Paranoid Pirate. Fetchers earn credit with READY and
 * RESULT, jobs wait in a FIFO until one has credit, and a fetcher that goes silent (or
 * a job that never answers) sends its jobs back to the front of the queue. */
#include "gw_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "wm_buf.h"
#include "wm_http.h"
#include "wm_log.h"
#include "wm_proto.h"
#include "wm_time.h"

#define LIVENESS_MS ((int64_t)WM_HEARTBEAT_LIVENESS * WM_HEARTBEAT_MS)

struct gw_fetcher {
    unsigned char *id;          /* owned copy of the ZeroMQ routing id (hash key) */
    size_t idlen;
    uint64_t instance;          /* the fetcher process's instance id */
    uint32_t credits;           /* last READY - jobs sent since + RESULTs since */
    bool ready_seen;            /* its credit is known (it sent READY to us) */
    int64_t registered_ms;
    int64_t last_heard_ms;
    struct gw_job *jobs;        /* in flight on this fetcher (utlist DL) */
    UT_hash_handle hh;
};

struct gw_pool {
    struct gw_pool_config cfg;
    gw_pool_send_fn send;
    gw_pool_result_fn on_result;
    void *ud;
    struct gw_stats *stats;
    struct gw_fetcher *fetchers;  /* by routing id */
    struct gw_job *table;         /* every queued or in-flight job, by id */
    struct gw_job *queue;         /* waiting for credit (utlist DL, FIFO) */
    struct gw_job *failed;        /* out of attempts, waiting for their 504 callback */
    uint64_t next_id;
    int64_t last_hb_ms;
    int64_t clock_ms;             /* latest now_ms given to tick */
    int busy;                     /* > 0 while calling on_result: defer our own work */
    struct wm_ratelimit rl_bad;
};

/* The pool's time: the monotonic clock, but never behind the last tick, so that
 * stamps and tick comparisons agree even when a caller's tick time runs ahead. */
static int64_t pool_now(struct gw_pool *p)
{
    int64_t now = wm_now_ms();
    return now > p->clock_ms ? now : p->clock_ms;
}

static size_t fetcher_count(const struct gw_pool *p)
{
    return HASH_COUNT(p->fetchers);
}

void gw_job_free(struct gw_job **j)
{
    if (!j || !*j)
        return;
    struct gw_job *job = *j;
    for (size_t i = 0; i < job->n_headers; i++) {
        free(job->headers[i].name);
        free(job->headers[i].value);
    }
    free(job->headers);
    free(job->url);
    free(job);
    *j = NULL;
}

struct gw_pool *gw_pool_new(const struct gw_pool_config *cfg, gw_pool_send_fn send,
                            gw_pool_result_fn on_result, void *ud, struct gw_stats *stats)
{
    struct gw_pool *p = wm_calloc(1, sizeof *p);
    p->cfg = *cfg;
    if (p->cfg.max_attempts < 1)
        p->cfg.max_attempts = 3;
    p->send = send;
    p->on_result = on_result;
    p->ud = ud;
    p->stats = stats;
    p->next_id = 1;
    return p;
}

static void fetcher_free(struct gw_pool *p, struct gw_fetcher *f)
{
    HASH_DEL(p->fetchers, f);
    p->stats->fetchers = fetcher_count(p);
    free(f->id);
    free(f);
}

void gw_pool_free(struct gw_pool **pp)
{
    if (!pp || !*pp)
        return;
    struct gw_pool *p = *pp;
    struct gw_job *j, *jt;
    struct gw_fetcher *f, *ft;
    HASH_ITER(hh, p->fetchers, f, ft) {
        DL_FOREACH_SAFE(f->jobs, j, jt) {
            DL_DELETE(f->jobs, j);
            HASH_DEL(p->table, j);
            p->stats->jobs_in_flight--;
            gw_job_free(&j);
        }
        fetcher_free(p, f);
    }
    DL_FOREACH_SAFE(p->queue, j, jt) {
        DL_DELETE(p->queue, j);
        HASH_DEL(p->table, j);
        p->stats->jobs_queued--;
        gw_job_free(&j);
    }
    DL_FOREACH_SAFE(p->failed, j, jt) {
        DL_DELETE(p->failed, j);
        gw_job_free(&j);
    }
    free(p);
    *pp = NULL;
}

/* Takes a job out of circulation for good after its attempts ran out: cancelled jobs
 * are freed, the others wait in p->failed for their 504 (delivered by settle, never
 * from inside an iteration). The job is already off every list and out of the table. */
static void job_give_up(struct gw_pool *p, struct gw_job *j)
{
    if (!j->owner) {
        gw_job_free(&j);
        return;
    }
    DL_APPEND(p->failed, j);
}

/* A job in flight on a fetcher that will not answer (dead, or too slow): back to the
 * front of the queue, or given up. Appends to *requeue so a batch keeps its order. */
static void job_unsend(struct gw_pool *p, struct gw_job *j, struct gw_job **requeue)
{
    DL_DELETE(j->fetcher->jobs, j);
    j->fetcher = NULL;
    j->sent_ms = 0;
    p->stats->jobs_in_flight--;
    if (!j->owner || j->attempts >= p->cfg.max_attempts) {
        HASH_DEL(p->table, j);
        job_give_up(p, j);
        return;
    }
    p->stats->jobs_retried++;
    p->stats->jobs_queued++;
    DL_APPEND(*requeue, j);
}

static void requeue_front(struct gw_pool *p, struct gw_job *batch)
{
    if (!batch)
        return;
    DL_CONCAT(batch, p->queue);
    p->queue = batch;
}

/* A fetcher presumed dead: its jobs go back to the front of the queue. */
static void fetcher_lost(struct gw_pool *p, struct gw_fetcher *f, const char *why)
{
    struct gw_job *j, *jt, *requeue = NULL;
    size_t n = 0;
    DL_FOREACH_SAFE(f->jobs, j, jt) {
        job_unsend(p, j, &requeue);
        n++;
    }
    requeue_front(p, requeue);
    p->stats->fetchers_lost++;
    wm_warn("fetcher lost", "reason=\"%s\" jobs=%zu instance=%llu", why, n,
            (unsigned long long)f->instance);
    fetcher_free(p, f);
}

static int send_heartbeat(struct gw_pool *p, struct gw_fetcher *f)
{
    struct wm_msg m = { .type = WM_MSG_HEARTBEAT, .instance = p->cfg.instance };
    m.u.heartbeat.seq = 0;
    return p->send(p->ud, f->id, f->idlen, &m);
}

static struct gw_fetcher *best_fetcher(struct gw_pool *p)
{
    struct gw_fetcher *f, *ft, *best = NULL;
    HASH_ITER(hh, p->fetchers, f, ft) {
        if (f->credits > 0 && (!best || f->credits > best->credits))
            best = f;
    }
    return best;
}

/* Sends queued jobs while some fetcher has credit. Calls no callback of the broker. */
static void dispatch(struct gw_pool *p)
{
    struct gw_fetcher *f;
    while (p->queue && (f = best_fetcher(p))) {
        struct gw_job *j = p->queue;
        struct wm_msg m = { .type = WM_MSG_JOB, .instance = p->cfg.instance };
        m.u.job.id = j->id;
        m.u.job.url = j->url;
        m.u.job.headers = j->headers;
        m.u.job.n_headers = j->n_headers;
        m.u.job.timeout_ms = j->timeout_ms;
        m.u.job.max_body = j->max_body;
        if (p->send(p->ud, f->id, f->idlen, &m) < 0) {
            /* The socket refused it (peer gone, HWM): the job stays at the front. */
            fetcher_lost(p, f, "send failed");
            continue;
        }
        DL_DELETE(p->queue, j);
        p->stats->jobs_queued--;
        j->attempts++;
        j->fetcher = f;
        j->sent_ms = pool_now(p);
        j->sent_us = wm_now_us();
        DL_APPEND(f->jobs, j);
        f->credits--;
        p->stats->jobs_in_flight++;
        p->stats->jobs_sent++;
    }
}

/* Runs the deferred work: sends what credit allows and hands out the 504s. The broker
 * may submit or cancel from inside on_result; busy makes those calls only queue. */
static void settle(struct gw_pool *p)
{
    if (p->busy)
        return;
    p->busy++;
    for (;;) {
        dispatch(p);
        struct gw_job *j = p->failed;
        if (!j)
            break;
        DL_DELETE(p->failed, j);
        if (!j->owner) {   /* cancelled while waiting for its 504 */
            gw_job_free(&j);
            continue;
        }
        char reason[80];
        snprintf(reason, sizeof reason, "no fetcher answered after %d attempts", j->attempts);
        struct wm_msg r = { .type = WM_MSG_RESULT, .instance = p->cfg.instance };
        r.u.result.id = j->id;
        r.u.result.status = 504;
        r.u.result.error = wm_strdup(reason);
        p->stats->jobs_failed++;
        wm_warn("job failed", "id=%llu attempts=%d", (unsigned long long)j->id, j->attempts);
        p->on_result(p->ud, j, &r);   /* the broker frees j */
        wm_msg_clear(&r);
    }
    p->busy--;
}

void gw_pool_submit(struct gw_pool *p, struct gw_job *job)
{
    job->id = p->next_id++;
    job->attempts = 0;
    job->sent_ms = 0;
    job->fetcher = NULL;
    HASH_ADD(hh, p->table, id, sizeof job->id, job);
    DL_APPEND(p->queue, job);
    p->stats->jobs_queued++;
    /* Only send here: a failure found while sending is reported from the next tick or
     * message, so the broker is never called back from inside its own submit. */
    if (!p->busy)
        dispatch(p);
}

void gw_pool_cancel(struct gw_pool *p, struct gw_job *job)
{
    struct gw_job *found = NULL;
    if (!job)
        return;
    job->owner = NULL;
    if (job->fetcher)
        return;   /* in flight: freed when its RESULT comes or it times out */
    HASH_FIND(hh, p->table, &job->id, sizeof job->id, found);
    if (found == job) {   /* queued */
        DL_DELETE(p->queue, job);
        HASH_DEL(p->table, job);
        p->stats->jobs_queued--;
        gw_job_free(&job);
    }
    /* else it waits in p->failed and settle frees it */
}

/* Finds the fetcher with this routing id, registering it if unknown. A known id with a
 * new instance is a restarted process behind a reused id: its old jobs are lost. */
static struct gw_fetcher *fetcher_touch(struct gw_pool *p, const void *id, size_t idlen,
                                        uint64_t instance)
{
    struct gw_fetcher *f = NULL;
    int64_t now = pool_now(p);
    HASH_FIND(hh, p->fetchers, id, idlen, f);
    if (f && f->instance != instance) {
        fetcher_lost(p, f, "restarted");
        f = NULL;
    }
    if (!f) {
        f = wm_calloc(1, sizeof *f);
        f->id = wm_malloc(idlen ? idlen : 1);
        memcpy(f->id, id, idlen);
        f->idlen = idlen;
        f->instance = instance;
        f->registered_ms = now;
        HASH_ADD_KEYPTR(hh, p->fetchers, f->id, f->idlen, f);
        p->stats->fetchers = fetcher_count(p);
        wm_info("fetcher joined", "instance=%llu", (unsigned long long)instance);
        /* Our instance in a HEARTBEAT is what makes a fetcher that does not know us
         * send READY: do not wait for the next tick. */
        if (send_heartbeat(p, f) < 0) {
            fetcher_lost(p, f, "send failed");
            return NULL;
        }
    }
    f->last_heard_ms = now;
    return f;
}

static void on_result_msg(struct gw_pool *p, struct gw_fetcher *f, struct wm_msg *msg)
{
    struct gw_job *j = NULL;
    uint64_t id = msg->u.result.id;
    if (f && f->credits < UINT32_MAX)
        f->credits++;
    HASH_FIND(hh, p->table, &id, sizeof id, j);
    if (!j) {
        p->stats->results_stale++;
        return;
    }
    /* A late answer from a fetcher we gave up on is still a fresh page: take it,
     * wherever the job is now (queued again, or in flight elsewhere). */
    if (j->fetcher) {
        DL_DELETE(j->fetcher->jobs, j);
        j->fetcher = NULL;
        p->stats->jobs_in_flight--;
    } else {
        DL_DELETE(p->queue, j);
        p->stats->jobs_queued--;
    }
    HASH_DEL(p->table, j);
    int64_t lat_us = wm_now_us() - j->sent_us;
    wm_histogram_observe(&p->stats->fetch_latency, lat_us > 0 ? lat_us / 1e6 : 0.0);
    p->stats->results_by_class[wm_status_class(msg->u.result.status)]++;
    if (!j->owner) {
        gw_job_free(&j);
        return;
    }
    p->busy++;
    p->on_result(p->ud, j, msg);
    p->busy--;
}

void gw_pool_on_message(struct gw_pool *p, const void *id, size_t idlen, struct wm_msg *msg)
{
    struct gw_fetcher *f = NULL;
    switch (msg->type) {
    case WM_MSG_READY:
    case WM_MSG_HEARTBEAT:
    case WM_MSG_RESULT:
        break;
    default:
        p->stats->bad_messages++;
        uint64_t skipped;
        if (wm_ratelimit_allow(&p->rl_bad, pool_now(p), WM_RATELIMIT_LOG_MS, &skipped))
            wm_warn("unexpected message from a fetcher", "type=%s suppressed=%llu",
                    wm_msg_type_name(msg->type), (unsigned long long)skipped);
        return;
    }
    f = fetcher_touch(p, id, idlen, msg->instance);
    switch (msg->type) {
    case WM_MSG_READY:
        if (f) {
            /* Absolute: the fetcher counts its free slots, which already reflects
             * every job it holds. */
            f->credits = msg->u.ready.credits;
            f->ready_seen = true;
        }
        break;
    case WM_MSG_RESULT:
        on_result_msg(p, f, msg);
        break;
    default:
        break;   /* HEARTBEAT: liveness only */
    }
    settle(p);
}

void gw_pool_tick(struct gw_pool *p, int64_t now_ms)
{
    struct gw_fetcher *f, *ft;
    struct gw_job *j, *jt, *requeue = NULL;

    if (now_ms > p->clock_ms)
        p->clock_ms = now_ms;
    HASH_ITER(hh, p->fetchers, f, ft) {
        if (now_ms - f->last_heard_ms > LIVENESS_MS)
            fetcher_lost(p, f, "silent");
    }
    /* Jobs that outlived their own timeout plus two heartbeats: the fetcher lost them
     * or its answer was lost; the slot stays taken until it does answer. */
    HASH_ITER(hh, p->fetchers, f, ft) {
        DL_FOREACH_SAFE(f->jobs, j, jt) {
            if (now_ms - j->sent_ms > (int64_t)j->timeout_ms + 2 * WM_HEARTBEAT_MS)
                job_unsend(p, j, &requeue);
        }
    }
    requeue_front(p, requeue);

    if (p->last_hb_ms == 0 || now_ms - p->last_hb_ms >= WM_HEARTBEAT_MS) {
        p->last_hb_ms = now_ms;
        HASH_ITER(hh, p->fetchers, f, ft) {
            /* A fetcher whose credit we never learnt (we dropped it and it came back
             * without READY) gets no heartbeat after a liveness window: it then
             * reconnects and sends READY, so its slots are not lost forever. */
            if (!f->ready_seen && now_ms - f->registered_ms > LIVENESS_MS)
                continue;
            if (send_heartbeat(p, f) < 0)
                fetcher_lost(p, f, "send failed");
        }
    }
    settle(p);
}

size_t gw_pool_live_fetchers(const struct gw_pool *p)
{
    return fetcher_count(p);
}

/* bench_pool: the gateway's hot path without I/O. gw_broker + gw_pool hold 10k
 * subscriptions in 1k (topic, token) groups; a fake fetcher answers. Prints the median
 * ns per bump fan-out, per coalesced bump and per result delivery. Usage: bench_pool [runs] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../gateway/gw_broker.h"
#include "wm_buf.h"
#include "wm_log.h"

#define N_TOPICS 100
#define N_TOKENS 10                       /* per topic: groups = topics x tokens */
#define N_PER_GROUP 10                    /* sessions per group */
#define N_GROUPS (N_TOPICS * N_TOKENS)
#define N_CLIENTS (N_GROUPS * N_PER_GROUP)   /* one subscription each */
#define BODY_LEN 1024

/* The fake I/O: the send callback encodes each JOB as the engine does (only the
 * ZeroMQ send is left out) and records its id; deliveries are counted. */
static struct {
    struct wm_buf sendbuf;
    uint64_t job_ids[N_GROUPS];
    size_t n_jobs;
    size_t overflow;              /* more JOBs than groups in one phase: a bug */
    size_t n_delivered;
    size_t n_frame_fail;
    struct gw_broker *broker;
    char body[BODY_LEN];
} fx;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int fake_send(void *ud, const void *id, size_t idlen, const struct wm_msg *msg)
{
    if (msg->type != WM_MSG_JOB)
        return 0;
    wm_buf_reset(&fx.sendbuf);
    if (wm_msg_encode(msg, &fx.sendbuf) != 0)
        return -1;
    if (fx.n_jobs < N_GROUPS)
        fx.job_ids[fx.n_jobs++] = msg->u.job.id;
    else
        fx.overflow++;
    return 0;
}

/* A session would take a reference to the frame and queue it; the encode (once per
 * page and serializer, shared by the group) is the part that costs. */
static void fake_deliver(void *session, uint64_t sub_id, struct gw_event *ev, bool retained)
{
    if (!gw_event_frame(ev, GW_SER_JSON, retained, NULL))
        fx.n_frame_fail++;
    fx.n_delivered++;
}

static void on_result(void *ud, struct gw_job *job, struct wm_msg *result)
{
    gw_broker_on_result(fx.broker, job, result);
}

/* RESULTs for the JOBs sent so far, built outside the timed part (the engine decodes
 * them from the socket; that cost belongs to wm_msg, not to this path). */
static void build_results(struct wm_msg *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct wm_msg *r = &res[i];
        memset(r, 0, sizeof *r);
        r->type = WM_MSG_RESULT;
        r->instance = 5;
        r->u.result.id = fx.job_ids[i];
        r->u.result.status = 200;
        r->u.result.headers = wm_calloc(2, sizeof *r->u.result.headers);
        r->u.result.headers[0].name = wm_strdup("content-type");
        r->u.result.headers[0].value = wm_strdup("application/json; charset=utf-8");
        r->u.result.headers[1].name = wm_strdup("etag");
        r->u.result.headers[1].value = wm_strdup("\"5d8c72a5edda8d6a\"");
        r->u.result.n_headers = 2;
        r->u.result.body = wm_malloc(BODY_LEN);
        memcpy(r->u.result.body, fx.body, BODY_LEN);
        r->u.result.body_len = BODY_LEN;
    }
}

static int64_t deliver_results(struct gw_pool *pool, struct wm_msg *res, size_t n)
{
    int64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        gw_pool_on_message(pool, "F", 1, &res[i]);
    int64_t dt = now_ns() - t0;
    for (size_t i = 0; i < n; i++)
        wm_msg_clear(&res[i]);
    return dt;
}

static int check(const char *what, size_t got, size_t want)
{
    if (got == want && fx.overflow == 0 && fx.n_frame_fail == 0)
        return 0;
    fprintf(stderr, "bench_pool: %s: got %zu, want %zu (overflow %zu, frame failures %zu)\n",
            what, got, want, fx.overflow, fx.n_frame_fail);
    return -1;
}

enum { F_BUMP, F_JOB, F_COALESCED, F_RESULT_NEXT, F_RESULT, F_MEMBER, F_REFRESH, N_FIGURES };

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 31;
    int rc = 1;
    struct gw_stats stats;
    struct gw_pool *pool = NULL;
    struct gw_broker *b = NULL;
    struct gw_client **clients = NULL;
    struct wm_msg *res = NULL;
    int64_t *fig[N_FIGURES] = {NULL};
    char topic[N_TOPICS][32];
    struct wm_auth_header auth = { .name = "Authorization", .prefix = "Bearer ", .suffix = "" };

    if (runs < 1)
        runs = 1;
    wm_log_init("bench", WM_LOG_WARN);
    memset(&stats, 0, sizeof stats);
    static const char chunk[] = "{\"id\":1234,\"name\":\"Zoe \\\"the\\\" admin\",\"tags\":[\"a\"]}\n";
    for (size_t i = 0; i < BODY_LEN; i++)
        fx.body[i] = chunk[i % (sizeof chunk - 1)];
    for (int i = 0; i < N_FIGURES; i++)
        fig[i] = wm_calloc((size_t)runs, sizeof *fig[i]);
    res = wm_calloc(N_GROUPS, sizeof *res);
    clients = wm_calloc(N_CLIENTS, sizeof *clients);

    struct gw_pool_config pc = { .instance = 77, .max_attempts = 3 };
    pool = gw_pool_new(&pc, fake_send, on_result, NULL, &stats);
    struct gw_broker_config bc = {
        .backend_url = "http://127.0.0.1:8080",
        .auth = &auth,
        .fetch_timeout_ms = 10000,
        .max_page_bytes = 1000000,
        .max_message_bytes = 1 << 20,
        .max_subscriptions = 1000,
    };
    b = gw_broker_new(&bc, pool, fake_deliver, &stats);
    fx.broker = b;
    /* One fetcher with more credit than the bench can use. */
    struct wm_msg ready = { .type = WM_MSG_READY, .instance = 5 };
    ready.u.ready.credits = 1000000;
    gw_pool_on_message(pool, "F", 1, &ready);

    for (int t = 0; t < N_TOPICS; t++)
        snprintf(topic[t], sizeof topic[t], "/users/%d", t);
    for (size_t c = 0; c < N_CLIENTS; c++) {
        char token[32];
        uint64_t sub_id;
        snprintf(token, sizeof token, "tok-bench-%zu", (c / N_TOPICS) % N_TOKENS);
        clients[c] = gw_broker_client_new(b, &clients[c], token);
        if (gw_broker_subscribe(b, clients[c], topic[c % N_TOPICS], NULL, false,
                                &sub_id) != 0) {
            fprintf(stderr, "bench_pool: subscribe failed\n");
            goto out;
        }
    }
    if (stats.subscriptions != N_CLIENTS || stats.groups != N_GROUPS) {
        fprintf(stderr, "bench_pool: set-up made %llu subscriptions in %llu groups\n",
                (unsigned long long)stats.subscriptions, (unsigned long long)stats.groups);
        goto out;
    }

    for (int r = 0; r < runs; r++) {
        /* A: one bump per topic, each fans out to its groups: N_GROUPS JOBs sent. */
        fx.n_jobs = 0;
        int64_t t0 = now_ns();
        for (int t = 0; t < N_TOPICS; t++)
            gw_broker_bump(b, topic[t], WM_MATCH_EXACT);
        int64_t dt = now_ns() - t0;
        if (check("jobs after a bump per topic", fx.n_jobs, N_GROUPS) < 0)
            goto out;
        fig[F_BUMP][r] = dt / N_TOPICS;
        fig[F_JOB][r] = dt / N_GROUPS;

        /* B: the same bumps again while every fetch is in flight: only marks pending. */
        t0 = now_ns();
        for (int t = 0; t < N_TOPICS; t++)
            gw_broker_bump(b, topic[t], WM_MATCH_EXACT);
        fig[F_COALESCED][r] = (now_ns() - t0) / N_TOPICS;
        if (check("jobs after coalesced bumps", fx.n_jobs, N_GROUPS) < 0)
            goto out;

        /* C1: results deliver to every member and start each group's pending fetch. */
        build_results(res, N_GROUPS);
        fx.n_jobs = 0;
        fx.n_delivered = 0;
        fig[F_RESULT_NEXT][r] = deliver_results(pool, res, N_GROUPS) / N_GROUPS;
        if (check("deliveries of the first pages", fx.n_delivered, N_CLIENTS) < 0 ||
            check("jobs started for pending bumps", fx.n_jobs, N_GROUPS) < 0)
            goto out;

        /* C2: results with nothing pending: delivery alone. */
        build_results(res, N_GROUPS);
        fx.n_jobs = 0;
        fx.n_delivered = 0;
        dt = deliver_results(pool, res, N_GROUPS);
        if (check("deliveries of the second pages", fx.n_delivered, N_CLIENTS) < 0 ||
            check("jobs after the last results", fx.n_jobs, 0) < 0)
            goto out;
        fig[F_RESULT][r] = dt / N_GROUPS;
        fig[F_MEMBER][r] = dt / N_CLIENTS;

        /* D: a RESYNC or sequence gap refreshes every group at once. */
        fx.n_jobs = 0;
        t0 = now_ns();
        gw_broker_refresh_all(b);
        fig[F_REFRESH][r] = now_ns() - t0;
        if (check("jobs after a full refresh", fx.n_jobs, N_GROUPS) < 0)
            goto out;
        build_results(res, N_GROUPS);
        fx.n_delivered = 0;
        deliver_results(pool, res, N_GROUPS);
        if (check("deliveries after a full refresh", fx.n_delivered, N_CLIENTS) < 0)
            goto out;
    }
    if (stats.jobs_in_flight != 0 || stats.jobs_queued != 0) {
        fprintf(stderr, "bench_pool: jobs left over\n");
        goto out;
    }

    static const char *const label[N_FIGURES] = {
        "bump of one topic (10 groups: 10 JOBs built, encoded, sent)",
        "  the same, per JOB",
        "bump coalesced into an in-flight fetch (10 groups)",
        "RESULT -> 10 members + the pending JOB started",
        "RESULT -> page event, JSON EVENT encoded once, 10 members",
        "  the same, per member delivery",
        "full refresh (RESYNC): all 1000 groups, 1000 JOBs",
    };
    printf("bench_pool: %d subscriptions, %d groups (%d topics x %d tokens), %d-byte pages, "
           "median of %d runs\n", N_CLIENTS, N_GROUPS, N_TOPICS, N_TOKENS, BODY_LEN, runs);
    printf("%-62s %10s\n", "operation", "median_ns");
    for (int i = 0; i < N_FIGURES; i++) {
        qsort(fig[i], (size_t)runs, sizeof *fig[i], cmp_i64);
        printf("%-62s %10lld\n", label[i], (long long)fig[i][runs / 2]);
    }
    rc = 0;
out:
    for (size_t c = 0; clients && c < N_CLIENTS; c++)
        gw_broker_client_free(b, &clients[c]);
    gw_broker_free(&b);
    gw_pool_free(&pool);
    for (int i = 0; i < N_FIGURES; i++)
        free(fig[i]);
    free(clients);
    free(res);
    wm_buf_free(&fx.sendbuf);
    return rc;
}

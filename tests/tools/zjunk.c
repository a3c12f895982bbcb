/* zjunk: a misbehaving ZeroMQ peer for the robustness tests. "fetch" connects a DEALER to
 * a gateway's fetch endpoint as a broken fetcher would; "pub" binds a PUB (XPUB, so it
 * knows when the gateway has subscribed) as a broken dispatcher would; "router" binds a
 * ROUTER as a broken gateway would and, once a fetcher said READY, sends it junk and JOBs
 * for URLs outside the backend origin (--origin). All send junk frames and well-formed
 * messages with absurd or out-of-place content. "router --flood N --url URL" sends no
 * junk but N JOBs (ids 1001..) for URL at once, ignoring the fetcher's credit, as a
 * hostile gateway would.
 * Usage: zjunk fetch|pub|router ENDPOINT [--hold-ms N] [--origin URL] [--flood N --url URL]
 * Prints a JSON line {"mode", "sent", "bad"} once the junk is sent (frames sent, how many
 * of them the peer must count as bad messages); then with --hold-ms, fetch: {"jobs"}
 * (JOBs received while holding the socket open without answering); router: one line
 * {"id", "status", "error"} per RESULT, then {"results"}. With --flood: {"mode", "flood"}
 * once the JOBs are sent, then one line per RESULT while each line read from stdin is a
 * URL to send one more JOB for (ids 2001..), until stdin ends or --hold-ms (default
 * 30 s) passes; then {"results"}. Exit 0, 1 on a ZeroMQ error,
 * 2 on usage, 3 when no peer showed up within 10 s (pub, router). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "wm_buf.h"
#include "wm_msg.h"
#include "wm_random.h"
#include "wm_time.h"
#include "wm_zmq.h"

#define SUBSCRIBER_WAIT_MS 10000
#define LINGER_MS 2000          /* let queued junk reach the peer before closing */
#define RANDOM_FRAMES 20
#define FLOOD_FIRST_ID 1001
#define STDIN_FIRST_ID 2001
#define FLOOD_HOLD_MS 30000     /* --flood without --hold-ms */
#define FLOOD_JOB_TIMEOUT_MS 30000

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

struct junk {
    void *sock;
    uint8_t peer[256];       /* router: the fetcher's routing id, prefixed to every send */
    size_t peer_len;
    unsigned sent, bad;
    uint64_t instance;
    uint32_t rng;
};

static uint32_t next_rand(struct junk *j)
{
    /* xorshift32: reproducible junk from run to run */
    j->rng ^= j->rng << 13;
    j->rng ^= j->rng >> 17;
    j->rng ^= j->rng << 5;
    return j->rng;
}

/* Sends parts[0..n) as one multipart message, blocking (a test tool may). */
static int send_parts(struct junk *j, const void *const *parts, const size_t *lens, int n,
                      bool bad)
{
    if (j->peer_len && zmq_send(j->sock, j->peer, j->peer_len, ZMQ_SNDMORE) < 0) {
        fprintf(stderr, "zjunk: send: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (zmq_send(j->sock, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0) {
            fprintf(stderr, "zjunk: send: %s\n", zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    j->sent++;
    if (bad)
        j->bad++;
    return 0;
}

static int send_raw(struct junk *j, const void *data, size_t len, bool bad)
{
    const void *p[1] = {data};
    size_t l[1] = {len};
    return send_parts(j, p, l, 1, bad);
}

static int send_msg(struct junk *j, const struct wm_msg *m, bool bad)
{
    struct wm_buf b = WM_BUF_INIT;
    int rc = wm_msg_encode(m, &b);

    if (rc == 0)
        rc = send_raw(j, b.data, b.len, bad);
    else
        fprintf(stderr, "zjunk: cannot encode %s\n", wm_msg_type_name(m->type));
    wm_buf_free(&b);
    return rc;
}

/* Junk that every peer of the gateway might send: not msgpack, empty, too many parts,
 * not an array, another version, unknown type, missing fields, an array announcing
 * four billion elements, a string with an embedded NUL, random bytes. */
static int send_common_junk(struct junk *j)
{
    static const uint8_t not_array[] = {0x01};
    static const uint8_t other_version[] = {0x94, 0x02, 0x04, 0x07, 0x05};
    static const uint8_t unknown_type[] = {0x93, 0x01, 0x63, 0x07};
    static const uint8_t missing_field[] = {0x93, 0x01, 0x04, 0x07};
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t huge_str[] = {0x94, 0x01, 0x02, 0x07, 0xdb, 0xff, 0xff, 0xff, 0xf0};
    static const uint8_t nul_reason[] = {0x95, 0x01, 0x02, 0x07, 0x05, 0xa3, 'a', 0x00, 'b'};
    static const uint8_t trailing[] = {0x94, 0x01, 0x03, 0x07, 0x00, 0xc0};
    static const uint8_t deep[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                   0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01};
    const char *text = "hello, this is not msgpack";
    const void *parts[3] = {"junk-a", "junk-b", "junk-c"};
    size_t lens[3] = {6, 6, 6};
    uint8_t rnd[512];
    int rc = 0;

    rc |= send_raw(j, text, strlen(text), true);
    rc |= send_raw(j, "", 0, true);
    rc |= send_parts(j, parts, lens, 3, true);
    rc |= send_raw(j, not_array, sizeof not_array, true);
    rc |= send_raw(j, other_version, sizeof other_version, true);
    rc |= send_raw(j, unknown_type, sizeof unknown_type, true);
    rc |= send_raw(j, missing_field, sizeof missing_field, true);
    rc |= send_raw(j, huge_array, sizeof huge_array, true);
    rc |= send_raw(j, huge_str, sizeof huge_str, true);
    rc |= send_raw(j, nul_reason, sizeof nul_reason, true);
    rc |= send_raw(j, trailing, sizeof trailing, true);
    rc |= send_raw(j, deep, sizeof deep, true);
    for (int i = 0; i < RANDOM_FRAMES && rc == 0; i++) {
        size_t n = 1 + next_rand(j) % sizeof rnd;
        for (size_t k = 0; k < n; k++)
            rnd[k] = (uint8_t)next_rand(j);
        rnd[0] = 0xc1;   /* never valid msgpack: these must all count as bad */
        rc |= send_raw(j, rnd, n, true);
    }
    return rc ? -1 : 0;
}

/* As a fetcher: out-of-place types, a RESULT for a job nobody sent, absurd credits. */
static int fetch_junk(struct junk *j)
{
    struct wm_header h = {"authorization", "Bearer zjunk"};
    struct wm_msg m;
    int rc = send_common_junk(j);

    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_JOB;           /* gateway -> fetcher only */
    m.u.job.id = 1;
    m.u.job.url = "http://127.0.0.1:1/zjunk";
    m.u.job.headers = &h;
    m.u.job.n_headers = 1;
    m.u.job.timeout_ms = 1;
    rc |= send_msg(j, &m, true);
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_BUMP;          /* dispatcher -> gateway only */
    m.u.bump.path = "/zjunk";
    rc |= send_msg(j, &m, true);
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_RESULT;        /* for ids the gateway never handed out: stale */
    for (uint64_t id = 1; id <= 3; id++) {
        m.u.result.id = id * 987654321ULL;
        m.u.result.status = 200;
        m.u.result.body = (uint8_t *)"zjunk";
        m.u.result.body_len = 5;
        rc |= send_msg(j, &m, false);
    }
    m.u.result.id = 0;             /* id 0 is never handed out either */
    m.u.result.status = 999;
    rc |= send_msg(j, &m, false);
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_READY;         /* absurd, but a legal uint32: accepted */
    m.u.ready.credits = UINT32_MAX;
    rc |= send_msg(j, &m, false);
    /* Last: a bad frame, so "bad count reached" means everything above was read. */
    rc |= send_raw(j, "the end", 7, true);
    return rc ? -1 : 0;
}

/* As a dispatcher: bumps with paths the gateway must not take, out-of-place types. */
static int pub_junk(struct junk *j)
{
    static const char *bad_paths[] = {"users/1", "", "http://evil.example/x"};
    struct wm_msg m;
    uint64_t seq = 1;
    int rc = send_common_junk(j);

    /* Two-part message on PUB: one frame too many for a bump. */
    const void *parts[2] = {"bump", "/users/1"};
    size_t lens[2] = {4, 8};
    rc |= send_parts(j, parts, lens, 2, true);
    for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
        memset(&m, 0, sizeof m);
        m.instance = j->instance;
        m.type = WM_MSG_BUMP;
        m.u.bump.path = (char *)bad_paths[i];
        m.u.bump.seq = seq++;
        /* the gateway refuses a path that does not start with '/' */
        rc |= send_msg(j, &m, bad_paths[i][0] != '/');
    }
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_READY;         /* fetcher -> gateway only */
    m.u.ready.credits = 5;
    rc |= send_msg(j, &m, true);
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_HEARTBEAT;     /* a seq from nowhere: a gap, refreshes, no crash */
    m.u.heartbeat.seq = UINT64_MAX;
    rc |= send_msg(j, &m, false);
    rc |= send_raw(j, "the end", 7, true);
    return rc ? -1 : 0;
}

/* As a gateway: JOBs a fetcher must refuse (another origin, userinfo, dot-dot, a header
 * with CR LF) next to ones it must do. Ids 101.. (see tests/integration). */
static const struct {
    uint64_t id;
    const char *prefix;      /* NULL: the origin; else replaces it */
    const char *rest;
    bool bad_header;
} router_jobs[] = {
    {101, "http://localhost", "/pages/zjunk-outside", false},
    {102, NULL, "@localhost/pages/zjunk-userinfo", false},
    {103, NULL, "/pages/../zjunk-dotdot", false},
    {104, NULL, "/pages/zjunk-ok", false},
    {105, NULL, "/pages/zjunk-header", true},
    {106, NULL, "/pages/zjunk-zero", false},
};
#define N_ROUTER_JOBS (sizeof router_jobs / sizeof *router_jobs)

static int router_junk(struct junk *j, const char *origin)
{
    struct wm_header ok = {"X-Waymark", "1"}, evil[2] = {{"X-Waymark", "1"},
                                                          {"X-Test", "a\r\nX-Injected: 1"}};
    struct wm_msg m;
    char url[512];
    int rc;

    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_HEARTBEAT;     /* so the fetcher knows this "gateway" */
    rc = send_msg(j, &m, false);
    rc |= send_common_junk(j);
    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_RESULT;        /* fetcher -> gateway only */
    m.u.result.id = 5;
    m.u.result.status = 200;
    rc |= send_msg(j, &m, true);
    for (size_t i = 0; i < N_ROUTER_JOBS; i++) {
        const char *o = origin;
        if (router_jobs[i].prefix) {
            /* the origin's port with another host name */
            const char *colon = strrchr(origin, ':');
            snprintf(url, sizeof url, "%s%s%s", router_jobs[i].prefix,
                     colon && colon > origin + 6 ? colon : "", router_jobs[i].rest);
        } else {
            snprintf(url, sizeof url, "%s%s", o, router_jobs[i].rest);
        }
        memset(&m, 0, sizeof m);
        m.instance = j->instance;
        m.type = WM_MSG_JOB;
        m.u.job.id = router_jobs[i].id;
        m.u.job.url = url;
        m.u.job.headers = router_jobs[i].bad_header ? evil : &ok;
        m.u.job.n_headers = router_jobs[i].bad_header ? 2 : 1;
        m.u.job.timeout_ms = router_jobs[i].id == 106 ? 0 : 5000;
        m.u.job.max_body = router_jobs[i].id == 106 ? 0 : 100000;
        rc |= send_msg(j, &m, false);
    }
    rc |= send_raw(j, "the end", 7, true);
    return rc ? -1 : 0;
}

/* Waits for the first message on the ROUTER (a fetcher's READY) and keeps its id. */
static int wait_fetcher(struct junk *j)
{
    int64_t deadline = wm_now_ms() + SUBSCRIBER_WAIT_MS;

    while (!stop_flag) {
        int64_t left = deadline - wm_now_ms();
        zmq_pollitem_t it = {.socket = j->sock, .events = ZMQ_POLLIN};
        struct wm_zframes f;
        if (left <= 0)
            return -ETIMEDOUT;
        if (zmq_poll(&it, 1, (long)left) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return -zmq_errno();
        }
        if (wm_zmq_recv(j->sock, &f) == 0) {
            size_t n = wm_zframe_size(&f, 0);
            if (f.n == 2 && n > 0 && n <= sizeof j->peer) {
                memcpy(j->peer, wm_zframe_data(&f, 0), n);
                j->peer_len = n;
            }
            wm_zframes_close(&f);
            if (j->peer_len)
                return 0;
        }
    }
    return -EINTR;
}

/* Reads every waiting message and prints each RESULT as one JSON line; returns how many. */
static int print_results(struct junk *j)
{
    struct wm_zframes f;
    int results = 0;

    while (wm_zmq_recv(j->sock, &f) == 0) {
        struct wm_msg m;
        const char *why = NULL;
        if (f.n == 2 && wm_msg_decode(wm_zframe_data(&f, 1), wm_zframe_size(&f, 1), &m,
                                      &why) == 0) {
            if (m.type == WM_MSG_RESULT) {
                results++;
                printf("{\"id\":%" PRIu64 ",\"status\":%d,\"error\":\"%s\"}\n",
                       m.u.result.id, m.u.result.status,
                       m.u.result.error ? m.u.result.error : "");
                fflush(stdout);
            }
            wm_msg_clear(&m);
        }
        wm_zframes_close(&f);
    }
    return results;
}

/* Collects RESULTs (heartbeating so the fetcher keeps the link) until every JOB is
 * answered or ms pass; prints one line per RESULT. Returns how many came. */
static unsigned collect_results(struct junk *j, long ms)
{
    int64_t deadline = wm_now_ms() + ms, next_hb = 0;
    unsigned results = 0;

    while (!stop_flag && results < N_ROUTER_JOBS) {
        int64_t now = wm_now_ms(), left = deadline - now;
        zmq_pollitem_t it = {.socket = j->sock, .events = ZMQ_POLLIN};
        if (left <= 0)
            break;
        if (now >= next_hb) {
            struct wm_msg hb = {.type = WM_MSG_HEARTBEAT, .instance = j->instance};
            send_msg(j, &hb, false);
            next_hb = now + 1000;
        }
        if (zmq_poll(&it, 1, (long)(left < 1000 ? left : 1000)) < 0 && zmq_errno() != EINTR)
            break;
        results += print_results(j);
    }
    return results;
}

static int send_job(struct junk *j, uint64_t id, const char *url)
{
    struct wm_header h = {"X-Waymark", "1"};
    struct wm_msg m;

    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_JOB;
    m.u.job.id = id;
    m.u.job.url = (char *)url;
    m.u.job.headers = &h;
    m.u.job.n_headers = 1;
    m.u.job.timeout_ms = FLOOD_JOB_TIMEOUT_MS;
    m.u.job.max_body = 100000;
    return send_msg(j, &m, false);
}

/* As a gateway that ignores credit: n JOBs for url at once. */
static int router_flood(struct junk *j, unsigned n, const char *url)
{
    struct wm_msg m;
    int rc;

    memset(&m, 0, sizeof m);
    m.instance = j->instance;
    m.type = WM_MSG_HEARTBEAT;     /* so the fetcher knows this "gateway" */
    rc = send_msg(j, &m, false);
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = send_job(j, FLOOD_FIRST_ID + i, url);
    return rc;
}

/* Reads what stdin has (it is readable): sends one JOB per complete line. Returns 1 at
 * end of input, 0 otherwise, -1 on a send error. */
static int stdin_jobs(struct junk *j, char *line, size_t cap, size_t *len, uint64_t *next_id)
{
    ssize_t got = read(STDIN_FILENO, line + *len, cap - 1 - *len);
    char *nl;

    if (got <= 0)
        return got == 0 || errno != EINTR ? 1 : 0;
    *len += (size_t)got;
    line[*len] = '\0';
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        if (nl > line && send_job(j, (*next_id)++, line) != 0)
            return -1;
        *len -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, *len + 1);
    }
    if (*len == cap - 1)
        *len = 0;                  /* an absurd line: forget it */
    return 0;
}

/* After a flood: prints RESULTs (heartbeating so the fetcher keeps the link) and sends
 * a JOB per stdin line until stdin ends or ms pass. Returns the number of RESULTs. */
static unsigned flood_results(struct junk *j, long ms)
{
    int64_t deadline = wm_now_ms() + ms, next_hb = 0;
    uint64_t next_id = STDIN_FIRST_ID;
    unsigned results = 0;
    char line[1024];
    size_t len = 0;
    bool input = true;

    while (!stop_flag && input) {
        int64_t now = wm_now_ms(), left = deadline - now;
        zmq_pollitem_t it[2] = {{.socket = j->sock, .events = ZMQ_POLLIN},
                                {.fd = STDIN_FILENO, .events = ZMQ_POLLIN}};
        if (left <= 0)
            break;
        if (now >= next_hb) {
            struct wm_msg hb = {.type = WM_MSG_HEARTBEAT, .instance = j->instance};
            send_msg(j, &hb, false);
            next_hb = now + 1000;
        }
        if (zmq_poll(it, 2, (long)(left < 1000 ? left : 1000)) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (it[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR) &&
            stdin_jobs(j, line, sizeof line, &len, &next_id) != 0)
            input = false;
        results += print_results(j);
    }
    return results;
}

/* Waits for the first subscription message on the XPUB (the gateway's SUB joined). */
static int wait_subscriber(struct junk *j)
{
    int64_t deadline = wm_now_ms() + SUBSCRIBER_WAIT_MS;
    uint8_t buf[256];

    while (!stop_flag) {
        int64_t left = deadline - wm_now_ms();
        zmq_pollitem_t it = {.socket = j->sock, .events = ZMQ_POLLIN};
        if (left <= 0)
            return -ETIMEDOUT;
        if (zmq_poll(&it, 1, (long)left) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            return -zmq_errno();
        }
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        int n = zmq_recv(j->sock, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n >= 1 && buf[0] == 1)
            return 0;
    }
    return -EINTR;
}

/* Holds the socket open for ms, reading (and never answering) whatever comes: a
 * fetcher that took credit and went silent. Returns the number of JOBs seen. */
static unsigned hold(struct junk *j, long ms)
{
    int64_t deadline = wm_now_ms() + ms;
    unsigned jobs = 0;

    while (!stop_flag) {
        int64_t left = deadline - wm_now_ms();
        zmq_pollitem_t it = {.socket = j->sock, .events = ZMQ_POLLIN};
        struct wm_zframes f;
        if (left <= 0)
            break;
        if (zmq_poll(&it, 1, (long)left) < 0 && zmq_errno() != EINTR)
            break;
        while (wm_zmq_recv(j->sock, &f) == 0) {
            struct wm_msg m;
            const char *why = NULL;
            if (wm_msg_decode(wm_zframe_data(&f, f.n - 1), wm_zframe_size(&f, f.n - 1), &m,
                              &why) == 0) {
                if (m.type == WM_MSG_JOB)
                    jobs++;
                wm_msg_clear(&m);
            }
            wm_zframes_close(&f);
        }
    }
    return jobs;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: zjunk fetch|pub|router ENDPOINT [--hold-ms N] [--origin URL]\n"
               "       zjunk router ENDPOINT --flood N --url URL [--hold-ms N]\n"
               "fetch: a DEALER that sends junk to a gateway's fetch endpoint;\n"
               "pub: binds an XPUB and sends junk bumps once a subscriber joined;\n"
               "router: binds a ROUTER and sends junk and JOBs to the first fetcher;\n"
               "router --flood: sends N JOBs for URL at once, then one JOB per stdin line.\n");
}

int main(int argc, char **argv)
{
    const char *mode = NULL, *endpoint = NULL, *origin = "http://127.0.0.1:8080";
    const char *flood_url = NULL;
    long hold_ms = 0, flood = 0;
    void *ctx = NULL;
    struct junk j = {.rng = 2463534242u};
    unsigned jobs = 0;
    int status = 1, rc;
    bool pub, router;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc) {
            hold_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--origin") == 0 && i + 1 < argc) {
            origin = argv[++i];
        } else if (strcmp(argv[i], "--flood") == 0 && i + 1 < argc) {
            flood = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
            flood_url = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !mode) {
            mode = argv[i];
        } else if (argv[i][0] != '-' && !endpoint) {
            endpoint = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!mode || !endpoint || (strcmp(mode, "fetch") != 0 && strcmp(mode, "pub") != 0 &&
                               strcmp(mode, "router") != 0)) {
        usage(stderr);
        return 2;
    }
    pub = strcmp(mode, "pub") == 0;
    router = strcmp(mode, "router") == 0;
    if ((flood || flood_url) && (!router || flood <= 0 || flood > 100000 || !flood_url)) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    j.instance = wm_random_id();
    ctx = zmq_ctx_new();
    j.sock = ctx ? zmq_socket(ctx, pub ? ZMQ_XPUB : router ? ZMQ_ROUTER : ZMQ_DEALER) : NULL;
    if (!j.sock || wm_zmq_setint(j.sock, ZMQ_LINGER, LINGER_MS) < 0 ||
        (pub || router ? zmq_bind(j.sock, endpoint) : zmq_connect(j.sock, endpoint)) != 0) {
        fprintf(stderr, "zjunk: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        goto out;
    }
    if (pub) {
        rc = wait_subscriber(&j);
        if (rc < 0) {
            fprintf(stderr, "zjunk: no subscriber on %s: %s\n", endpoint, strerror(-rc));
            status = 3;
            goto out;
        }
    }
    if (router) {
        rc = wait_fetcher(&j);
        if (rc < 0) {
            fprintf(stderr, "zjunk: no fetcher on %s: %s\n", endpoint, strerror(-rc));
            status = 3;
            goto out;
        }
    }
    if (flood) {
        if (router_flood(&j, (unsigned)flood, flood_url) < 0)
            goto out;
        printf("{\"mode\":\"%s\",\"flood\":%ld}\n", mode, flood);
        fflush(stdout);
        printf("{\"results\":%u}\n", flood_results(&j, hold_ms > 0 ? hold_ms : FLOOD_HOLD_MS));
        fflush(stdout);
        status = 0;
        goto out;
    }
    if ((pub ? pub_junk(&j) : router ? router_junk(&j, origin) : fetch_junk(&j)) < 0)
        goto out;
    printf("{\"mode\":\"%s\",\"sent\":%u,\"bad\":%u}\n", mode, j.sent, j.bad);
    fflush(stdout);
    if (router && hold_ms > 0) {
        printf("{\"results\":%u}\n", collect_results(&j, hold_ms));
        fflush(stdout);
    } else if (hold_ms > 0) {
        jobs = hold(&j, hold_ms);
        printf("{\"jobs\":%u}\n", jobs);
        fflush(stdout);
    }
    status = 0;
out:
    if (j.sock)
        zmq_close(j.sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return status;
}

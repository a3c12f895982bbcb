/* wsload: a load client for the scale benchmark and the scale test. One process holds many
 * WAMP sessions (wamp.2.json over a hand-rolled websocket client on epoll), each joining
 * with its own ticket and subscribing to one topic; optionally it bumps one topic through
 * Redis in a loop and times bump -> EVENT on its first session (the latency probe).
 *
 * Usage: wsload URL [options]          URL is ws://HOST:PORT/
 *   --count N            sessions (default 1); --from I: first session index (default 0)
 *   --token FMT          token of session i, FMT with one %d (default tok-load%d)
 *   --tokens M           session i uses token index i % M (default: one token per session)
 *   --topic FMT          topic of session i, one %d (default /pages/load/%d)
 *   --topics K           session i uses topic index i % K (default: one topic per session)
 *   --retained           subscribe with {"get_retained": true}
 *   --print-events       one JSON line per EVENT received: {"ev":i,"topic","token","retained","status","body"}
 *   --concurrency C      at most C sessions between connect() and SUBSCRIBED at once (default 500)
 *   --realm R            (default waymark)
 *   --setup-timeout-ms T give up on sessions not subscribed after T (default 120000)
 *   --redis HOST:PORT --channel CH --bumps B [--warmup W]
 *                        probe: once every session is subscribed, B times: PUBLISH CH the
 *                        topic of session 0 and wait for its EVENT (W warm-up bumps first)
 * Lines on stdout, one JSON object each:
 *   {"event":"ready",...}   every session subscribed or failed: counts, setup_ms, cpu_ms
 *   {"event":"probe",...}   latencies: n, lost, p50_ms, p99_ms, max_ms, mean_ms
 *   {"event":"stats",...}   after the command "stats": open sessions, dropped (ended by the
 *                           server, not by us), events, pings answered, cpu_ms
 *   {"event":"closed",...}  after the command "close": every session closed (close frame sent,
 *                           connection closed by the server or 10 s later by us)
 * Commands on stdin, one a line: "stats", "close". End of stdin: exit (closing everything).
 * Exit status 0, 1 on an error at start, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "wm_time.h"

#define CLOSE_GRACE_MS 10000
#define BUMP_TIMEOUT_MS 10000
#define FD_RESERVE 32            /* stdio, epoll, redis, spare */
#define TAG_STDIN ((uint64_t)-1)
#define TAG_REDIS ((uint64_t)-2)

enum state { ST_IDLE, ST_CONNECTING, ST_UPGRADING, ST_JOINING, ST_SUBSCRIBING, ST_READY,
             ST_CLOSING, ST_DONE };

struct buf {
    char *data;
    size_t len, cap;
};

struct conn {
    int fd;
    enum state state;
    uint32_t index;               /* session index i (global, from --from) */
    struct buf in, out, msg;      /* raw bytes in, bytes to write, message being reassembled */
    bool want_out;                /* EPOLLOUT is armed */
};

struct opts {
    const char *url, *token_fmt, *topic_fmt, *realm, *redis, *channel;
    long count, from, tokens, topics, concurrency, setup_timeout_ms, bumps, warmup;
    bool retained, print_events;
};

static struct opts o = {
    .token_fmt = "tok-load%d", .topic_fmt = "/pages/load/%d", .realm = "waymark",
    .channel = "waymark", .count = 1, .concurrency = 500, .setup_timeout_ms = 120000,
    .warmup = 10,
};
static struct sockaddr_in gw_addr;
static char gw_hostport[128];
static int ep = -1;
static struct conn *conns;
static long next_start, in_setup, n_ready, n_failed, n_welcomed, n_open;
static uint64_t n_events, n_pings, n_retained, n_dropped;
static int64_t t_start_us, t_ready_us;
static bool ready_printed, closing;
static int64_t close_deadline_ms;
static uint32_t mask_rng = 0x9e3779b9u;

/* probe */
static int redis_fd = -1;
static struct buf redis_in;
static long bumps_done, bumps_lost;
static bool bump_waiting;
static int64_t bump_t0_us, bump_deadline_ms;
static double *lat_ms;
static long n_lat;

static void buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            fprintf(stderr, "wsload: out of memory\n");
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void fmt_index(char *out, size_t n, const char *fmt, long i)
{
    /* fmt was checked to hold exactly one %d */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, n, fmt, (int)i);
#pragma GCC diagnostic pop
}

static void token_of(const struct conn *c, char *out, size_t n)
{
    fmt_index(out, n, o.token_fmt, o.tokens > 0 ? c->index % o.tokens : c->index);
}

static void topic_of(const struct conn *c, char *out, size_t n)
{
    fmt_index(out, n, o.topic_fmt, o.topics > 0 ? c->index % o.topics : c->index);
}

static void arm(struct conn *c, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)(c - conns)};
    if (want_out != c->want_out) {
        c->want_out = want_out;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void flush_out(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;        /* EAGAIN: wait for EPOLLOUT; an error shows up as EPOLLERR/HUP */
        buf_consume(&c->out, (size_t)n);
    }
    arm(c, c->out.len > 0);
}

/* One client frame: FIN set, masked (RFC 6455 requires it client -> server). */
static void send_frame(struct conn *c, int opcode, const void *payload, size_t len)
{
    unsigned char h[14];
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    mask_rng ^= mask_rng << 13;
    mask_rng ^= mask_rng >> 17;
    mask_rng ^= mask_rng << 5;
    unsigned char key[4];
    memcpy(key, &mask_rng, 4);
    memcpy(h + hl, key, 4);
    hl += 4;
    buf_append(&c->out, h, hl);
    size_t at = c->out.len;
    buf_append(&c->out, payload, len);
    for (size_t i = 0; i < len; i++)
        c->out.data[at + i] ^= key[i & 3];
    flush_out(c);
}

static void send_text(struct conn *c, const char *s)
{
    send_frame(c, 1, s, strlen(s));
}

static void start_next(void);
static void probe_done(void);

/* The session ends: counted as failed when it never reached READY. */
static void finish(struct conn *c, const char *why)
{
    if (c->state == ST_DONE || c->state == ST_IDLE)
        return;
    if (c->state < ST_READY) {
        n_failed++;
        in_setup--;
        if (n_failed <= 5)
            fprintf(stderr, "wsload: session %u failed: %s\n", c->index, why);
    } else if (c->state == ST_READY) {
        /* the server ended a session we did not close */
        n_dropped++;
        if (n_dropped <= 5)
            fprintf(stderr, "wsload: session %u dropped: %s\n", c->index, why);
    }
    if (c == &conns[0] && bump_waiting) {
        /* the probe session is gone: the bumps not done count as lost */
        fprintf(stderr, "wsload: probe session ended: %s\n", why);
        long measured = bumps_done > o.warmup ? bumps_done - o.warmup : 0;
        bumps_lost += o.bumps - measured;
        bump_waiting = false;
        probe_done();
    }
    close(c->fd);
    c->fd = -1;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->msg);
    if (c->state >= ST_UPGRADING)
        n_open--;
    c->state = ST_DONE;
    start_next();
}

static void start_conn(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->state = ST_CONNECTING;
        in_setup++;
        finish(c, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = ST_CONNECTING;
    in_setup++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)(c - conns)};
    c->want_out = true;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *)&gw_addr, sizeof gw_addr) < 0 && errno != EINPROGRESS)
        finish(c, strerror(errno));
}

static void start_next(void)
{
    while (!closing && next_start < o.count && in_setup < o.concurrency)
        start_conn(&conns[next_start++]);
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        finish(c, strerror(err));
        return;
    }
    char req[512];
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n", gw_hostport);
    c->state = ST_UPGRADING;
    n_open++;
    buf_append(&c->out, req, strlen(req));
    flush_out(c);
}

static void on_ready(struct conn *c)
{
    c->state = ST_READY;
    in_setup--;
    n_ready++;
    start_next();
}

static void print_event(struct conn *c, json_t *details, json_t *kwargs)
{
    char tok[256], top[1024];
    token_of(c, tok, sizeof tok);
    topic_of(c, top, sizeof top);
    json_t *st = json_object_get(kwargs, "status");
    json_t *body = json_object_get(kwargs, "body");
    json_t *line = json_pack("{s:I,s:s,s:s,s:b,s:O*,s:O*}", "ev", (json_int_t)c->index,
                             "topic", top, "token", tok, "retained",
                             json_is_true(json_object_get(details, "retained")),
                             "status", st, "body", body);
    char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(line);
}

static void probe_event(struct conn *c);

static void on_wamp(struct conn *c, const char *data, size_t len)
{
    json_error_t err;
    json_t *m = json_loadb(data, len, 0, &err);
    char out[2048], tok[256], top[1024];
    json_int_t type = json_integer_value(json_array_get(m, 0));

    switch (type) {
    case 4:   /* CHALLENGE */
        token_of(c, tok, sizeof tok);
        snprintf(out, sizeof out, "[5,\"%s\",{}]", tok);
        send_text(c, out);
        break;
    case 2:   /* WELCOME */
        n_welcomed++;
        topic_of(c, top, sizeof top);
        snprintf(out, sizeof out, "[32,1,%s,\"%s\"]", o.retained ? "{\"get_retained\":true}" : "{}",
                 top);
        c->state = ST_SUBSCRIBING;
        send_text(c, out);
        break;
    case 33:  /* SUBSCRIBED */
        if (c->state == ST_SUBSCRIBING)
            on_ready(c);
        break;
    case 36: { /* EVENT [36, sub, pub, details, args, kwargs] */
        json_t *details = json_array_get(m, 3);
        n_events++;
        if (json_is_true(json_object_get(details, "retained")))
            n_retained++;
        if (o.print_events)
            print_event(c, details, json_array_get(m, 5));
        if (c == &conns[0] && bump_waiting)
            probe_event(c);
        break;
    }
    case 3:   /* ABORT */
    case 8: { /* ERROR */
        char *s = json_dumps(m, JSON_COMPACT);
        finish(c, s ? s : "ABORT/ERROR");
        free(s);
        break;
    }
    case 6:   /* GOODBYE from the router */
        finish(c, "GOODBYE");
        break;
    default:
        if (!m)
            finish(c, "unparsable message");
        break;
    }
    json_decref(m);
}

/* Parses every complete frame in c->in. */
static void on_frames(struct conn *c)
{
    size_t at = 0;
    while (c->fd >= 0 && c->in.len - at >= 2) {
        const unsigned char *p = (const unsigned char *)c->in.data + at;
        size_t avail = c->in.len - at, hl = 2;
        uint64_t len = p[1] & 0x7f;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (p[1] & 0x80) {
            finish(c, "masked frame from the server");
            return;
        }
        if (avail - hl < len)
            break;
        int opcode = p[0] & 0x0f;
        bool fin = p[0] & 0x80;
        const char *payload = (const char *)p + hl;
        at += hl + len;
        switch (opcode) {
        case 0: case 1: case 2:
            buf_append(&c->msg, payload, len);
            if (fin) {
                on_wamp(c, c->msg.data, c->msg.len);
                if (c->fd >= 0)
                    c->msg.len = 0;
            }
            break;
        case 8:   /* close: ours was sent or we answer; the server closes the TCP */
            if (c->state != ST_CLOSING) {
                if (c->state < ST_READY) {
                    finish(c, "close frame during setup");
                    return;
                }
                n_dropped++;   /* the server closes a session we did not close */
                c->state = ST_CLOSING;
                send_frame(c, 8, payload, len < 2 ? len : 2);
            }
            break;
        case 9:
            n_pings++;
            send_frame(c, 10, payload, len);
            break;
        default:
            break;
        }
    }
    if (c->fd >= 0)
        buf_consume(&c->in, at);
}

static void on_upgrade_reply(struct conn *c)
{
    char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > 8192)
            finish(c, "handshake reply too long");
        return;
    }
    if (c->in.len < 12 || memcmp(c->in.data, "HTTP/1.1 101", 12) != 0) {
        char line[64];
        const char *eol = memchr(c->in.data, '\r', c->in.len);
        size_t n = eol ? (size_t)(eol - c->in.data) : c->in.len;
        snprintf(line, sizeof line, "%.*s", (int)(n < 60 ? n : 60), c->in.data);
        finish(c, line);
        return;
    }
    buf_consume(&c->in, (size_t)(end + 4 - c->in.data));
    c->state = ST_JOINING;
    char hello[512];
    snprintf(hello, sizeof hello,
             "[1,\"%s\",{\"roles\":{\"subscriber\":{}},\"authmethods\":[\"ticket\"]}]", o.realm);
    send_text(c, hello);
    if (c->fd >= 0)
        on_frames(c);
}

static void on_io(struct conn *c, uint32_t events)
{
    if (c->state == ST_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    if (events & EPOLLOUT)
        flush_out(c);
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        char tmp[65536];
        for (;;) {
            ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
            if (n > 0) {
                buf_append(&c->in, tmp, (size_t)n);
                if ((size_t)n < sizeof tmp)
                    break;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            finish(c, n == 0 ? "connection closed by the server" : strerror(errno));
            return;
        }
        if (c->state == ST_UPGRADING)
            on_upgrade_reply(c);
        else
            on_frames(c);
    }
}

/* ---- the probe: PUBLISH over one RESP connection, time to the EVENT ---- */

static int redis_connect(const char *hostport)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -EINVAL;
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void publish_bump(void)
{
    char top[1024], cmd[2048];
    topic_of(&conns[0], top, sizeof top);
    int n = snprintf(cmd, sizeof cmd, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                     strlen(o.channel), o.channel, strlen(top), top);
    bump_t0_us = wm_now_us();
    bump_deadline_ms = wm_now_ms() + (bumps_done < o.warmup ? 1000 : BUMP_TIMEOUT_MS);
    bump_waiting = true;
    if (send(redis_fd, cmd, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "wsload: PUBLISH to redis failed: %s\n", strerror(errno));
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double q)
{
    if (!n_lat)
        return -1;
    long i = (long)(q * (double)n_lat + 0.999999) - 1;
    if (i < 0)
        i = 0;
    if (i >= n_lat)
        i = n_lat - 1;
    return lat_ms[i];
}

static void probe_done(void)
{
    double sum = 0;
    qsort(lat_ms, (size_t)n_lat, sizeof *lat_ms, cmp_double);
    for (long i = 0; i < n_lat; i++)
        sum += lat_ms[i];
    printf("{\"event\":\"probe\",\"n\":%ld,\"lost\":%ld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f,\"mean_ms\":%.3f,\"cpu_ms\":%.1f}\n",
           n_lat, bumps_lost, quantile(0.5), quantile(0.99), n_lat ? lat_ms[n_lat - 1] : -1.0,
           n_lat ? sum / (double)n_lat : -1.0, cpu_ms());
    fflush(stdout);
}

/* Next bump, or the summary after the last one. Warm-up bumps that get no EVENT within a
 * second are re-sent (a fresh ZeroMQ subscription may miss the first ones). */
static void probe_next(void)
{
    if (bumps_done >= o.warmup + o.bumps) {
        bump_waiting = false;
        probe_done();
        return;
    }
    publish_bump();
}

static void probe_event(struct conn *c)
{
    (void)c;
    double ms = (double)(wm_now_us() - bump_t0_us) / 1e3;
    if (bumps_done >= o.warmup)
        lat_ms[n_lat++] = ms;
    bumps_done++;
    probe_next();
}

static void probe_timeout(void)
{
    if (bumps_done >= o.warmup) {
        bumps_lost++;
        bumps_done++;
    }
    probe_next();
}

static void on_redis(void)
{
    char tmp[4096];
    ssize_t n;
    while ((n = recv(redis_fd, tmp, sizeof tmp, 0)) > 0)
        buf_append(&redis_in, tmp, (size_t)n);
    if (n == 0) {
        fprintf(stderr, "wsload: redis closed the connection\n");
        exit(1);
    }
    /* PUBLISH replies are ":n\r\n"; an error is "-ERR ...\r\n" */
    char *nl;
    while ((nl = memmem(redis_in.data, redis_in.len, "\r\n", 2))) {
        if (redis_in.data[0] == '-') {
            fprintf(stderr, "wsload: redis: %.*s\n", (int)(nl - redis_in.data), redis_in.data);
            exit(1);
        }
        buf_consume(&redis_in, (size_t)(nl + 2 - redis_in.data));
    }
}

/* ---- control ---- */

static void print_ready(void)
{
    ready_printed = true;
    t_ready_us = wm_now_us();
    printf("{\"event\":\"ready\",\"sessions\":%ld,\"welcomed\":%ld,\"subscribed\":%ld,"
           "\"failed\":%ld,\"pending\":%ld,\"setup_ms\":%.1f,\"cpu_ms\":%.1f}\n",
           o.count, n_welcomed, n_ready, n_failed, o.count - n_ready - n_failed,
           (double)(t_ready_us - t_start_us) / 1e3, cpu_ms());
    fflush(stdout);
    if (redis_fd >= 0 && n_ready > 0 && conns[0].state == ST_READY) {
        probe_next();
    } else if (redis_fd >= 0) {
        /* no session to time: every bump counts as lost, and the summary comes at once */
        fprintf(stderr, "wsload: probe session did not subscribe: no bumps\n");
        bumps_lost = o.bumps;
        probe_done();
    }
}

static void print_stats(void)
{
    printf("{\"event\":\"stats\",\"open\":%ld,\"ready\":%ld,\"failed\":%ld,\"dropped\":%llu,"
           "\"events\":%llu,\"retained\":%llu,\"pings\":%llu,\"cpu_ms\":%.1f}\n",
           n_open, n_ready, n_failed, (unsigned long long)n_dropped, (unsigned long long)n_events,
           (unsigned long long)n_retained, (unsigned long long)n_pings, cpu_ms());
    fflush(stdout);
}

static void start_close(void)
{
    closing = true;
    close_deadline_ms = wm_now_ms() + CLOSE_GRACE_MS;
    for (long i = 0; i < o.count; i++) {
        struct conn *c = &conns[i];
        if (c->state == ST_IDLE || c->state == ST_DONE)
            continue;
        if (c->state < ST_JOINING) {
            finish(c, "closed during setup");
            continue;
        }
        if (c->state != ST_CLOSING) {
            static const unsigned char normal[2] = {0x03, 0xe8};   /* 1000 */
            c->state = ST_CLOSING;
            send_frame(c, 8, normal, 2);
        }
    }
}

static bool all_closed(void)
{
    return n_open == 0;
}

static void print_closed(void)
{
    printf("{\"event\":\"closed\",\"events\":%llu,\"cpu_ms\":%.1f}\n",
           (unsigned long long)n_events, cpu_ms());
    fflush(stdout);
}

static int on_stdin(void)
{
    static struct buf line;
    char tmp[512];
    ssize_t n = read(STDIN_FILENO, tmp, sizeof tmp);
    if (n <= 0)
        return -1;
    buf_append(&line, tmp, (size_t)n);
    char *nl;
    while ((nl = memchr(line.data, '\n', line.len))) {
        size_t l = (size_t)(nl - line.data);
        if (l == 5 && memcmp(line.data, "stats", 5) == 0)
            print_stats();
        else if (l == 5 && memcmp(line.data, "close", 5) == 0)
            start_close();
        buf_consume(&line, l + 1);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wsload ws://HOST:PORT/ [--count N] [--from I] [--token FMT] [--tokens M]\n"
               "  [--topic FMT] [--topics K] [--retained] [--print-events] [--concurrency C]\n"
               "  [--realm R] [--setup-timeout-ms T]\n"
               "  [--redis HOST:PORT --channel CH --bumps B [--warmup W]]\n"
               "Holds N WAMP sessions (wamp.2.json), one subscription each; see the source.\n");
}

static bool one_int_conv(const char *fmt)
{
    const char *p = strchr(fmt, '%');
    return p && p[1] == 'd' && !strchr(p + 2, '%') && !strpbrk(fmt, "\"\\");
}

static int parse_url(const char *url)
{
    unsigned port = 0;
    char host[64];
    if (sscanf(url, "ws://%63[0-9.]:%u", host, &port) != 2 || port == 0 || port > 65535)
        return -EINVAL;
    gw_addr.sin_family = AF_INET;
    gw_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &gw_addr.sin_addr) != 1)
        return -EINVAL;
    snprintf(gw_hostport, sizeof gw_hostport, "%s:%u", host, port);
    return 0;
}

static int raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if ((rlim_t)need <= rl.rlim_cur)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && (rlim_t)need > rl.rlim_max) {
        fprintf(stderr, "wsload: %ld sessions need %ld fds, the hard limit is %llu: "
                        "use more processes\n", o.count, need, (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    rl.rlim_cur = (rlim_t)need;
    return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(name, field) else if (strcmp(a, name) == 0 && v) { o.field = strtol(v, NULL, 10); i++; }
#define STR(name, field) else if (strcmp(a, name) == 0 && v) { o.field = v; i++; }
        if (strcmp(a, "--retained") == 0)
            o.retained = true;
        else if (strcmp(a, "--print-events") == 0)
            o.print_events = true;
        else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        NUM("--count", count) NUM("--from", from) NUM("--tokens", tokens) NUM("--topics", topics)
        NUM("--concurrency", concurrency) NUM("--setup-timeout-ms", setup_timeout_ms)
        NUM("--bumps", bumps) NUM("--warmup", warmup)
        STR("--token", token_fmt) STR("--topic", topic_fmt) STR("--realm", realm)
        STR("--redis", redis) STR("--channel", channel)
        else if (a[0] != '-' && !o.url)
            o.url = a;
        else {
            usage(stderr);
            return 2;
        }
#undef NUM
#undef STR
    }
    if (!o.url || parse_url(o.url) < 0 || o.count < 1 || o.from < 0 || o.concurrency < 1 ||
        o.bumps < 0 || o.warmup < 0 || !one_int_conv(o.token_fmt) ||
        !one_int_conv(o.topic_fmt) || strpbrk(o.realm, "\"\\") || strpbrk(o.channel, "\"\\") ||
        (o.bumps > 0 && !o.redis)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (raise_nofile(o.count + FD_RESERVE) < 0)
        return 1;
    conns = calloc((size_t)o.count, sizeof *conns);
    lat_ms = calloc((size_t)o.bumps + 1, sizeof *lat_ms);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || !lat_ms || ep < 0) {
        fprintf(stderr, "wsload: cannot start: %s\n", strerror(errno));
        return 1;
    }
    for (long i = 0; i < o.count; i++) {
        conns[i].fd = -1;
        conns[i].index = (uint32_t)(o.from + i);
    }
    if (o.redis) {
        redis_fd = redis_connect(o.redis);
        if (redis_fd < 0) {
            fprintf(stderr, "wsload: redis %s: %s\n", o.redis, strerror(-redis_fd));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_REDIS};
        epoll_ctl(ep, EPOLL_CTL_ADD, redis_fd, &ev);
    }
    /* stdin may be /dev/null (epoll refuses regular files): then no commands, no EOF. */
    struct epoll_event sev = {.events = EPOLLIN, .data.u64 = TAG_STDIN};
    bool have_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &sev) == 0;

    t_start_us = wm_now_us();
    int64_t setup_deadline = wm_now_ms() + o.setup_timeout_ms;
    start_next();
    struct epoll_event evs[512];
    for (;;) {
        if (!ready_printed && n_ready + n_failed >= o.count)
            print_ready();
        if (closing && all_closed()) {
            print_closed();
            closing = false;
            if (!have_stdin)
                break;
        }
        int64_t now = wm_now_ms();
        int timeout = 1000;
        if (!ready_printed && now >= setup_deadline) {
            /* give up on the rest: they count as failed */
            n_failed += o.count - next_start;
            next_start = o.count;
            for (long i = 0; i < o.count; i++)
                if (conns[i].state != ST_IDLE && conns[i].state < ST_READY)
                    finish(&conns[i], "setup timeout");
            continue;
        }
        if (bump_waiting && now >= bump_deadline_ms) {
            probe_timeout();
            continue;
        }
        if (closing && now >= close_deadline_ms) {
            for (long i = 0; i < o.count; i++)
                if (conns[i].state != ST_IDLE && conns[i].state != ST_DONE)
                    finish(&conns[i], "close timeout");
            continue;
        }
        if (bump_waiting && bump_deadline_ms - now < timeout)
            timeout = (int)(bump_deadline_ms - now);
        int n = epoll_wait(ep, evs, 512, timeout);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "wsload: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_STDIN) {
                if (on_stdin() < 0) {
                    start_close();
                    epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
                    have_stdin = false;
                    if (all_closed())
                        goto out;
                }
            } else if (tag == TAG_REDIS) {
                on_redis();
            } else if (conns[tag].fd >= 0) {
                on_io(&conns[tag], evs[i].events);
            }
        }
        fflush(stdout);
        if (!have_stdin && closing && all_closed())
            break;
    }
out:
    return 0;
}

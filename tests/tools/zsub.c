/* zsub: a test helper that connects a ZeroMQ SUB to an endpoint (e.g. the dispatcher's
 * WAYMARK_BUMP_ENDPOINT) and prints each decoded wm_msg as one JSON line on stdout.
 * Usage: zsub ENDPOINT [--count N] [--timeout-ms T] [--no-heartbeats]
 * Exits 0 after N messages (or on SIGINT/SIGTERM), 3 on timeout with fewer than N. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

#include "wm_msg.h"
#include "wm_time.h"
#include "wm_zmq.h"

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static json_t *headers_json(const struct wm_header *h, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("[s,s]", h[i].name, h[i].value));
    return a;
}

static json_t *to_json(const struct wm_msg *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(wm_msg_type_name(m->type)));
    json_object_set_new(o, "instance", json_integer((json_int_t)m->instance));
    switch (m->type) {
    case WM_MSG_BUMP:
        json_object_set_new(o, "path", json_string(m->u.bump.path));
        json_object_set_new(o, "match",
                            json_string(m->u.bump.match == WM_MATCH_PREFIX ? "prefix" : "exact"));
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.bump.seq));
        json_object_set_new(o, "ts_ms", json_integer(m->u.bump.ts_ms));
        break;
    case WM_MSG_RESYNC:
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.resync.seq));
        json_object_set_new(o, "reason", m->u.resync.reason ? json_string(m->u.resync.reason)
                                                            : json_null());
        break;
    case WM_MSG_HEARTBEAT:
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.heartbeat.seq));
        break;
    case WM_MSG_READY:
        json_object_set_new(o, "credits", json_integer(m->u.ready.credits));
        break;
    case WM_MSG_JOB:
        json_object_set_new(o, "id", json_integer((json_int_t)m->u.job.id));
        json_object_set_new(o, "url", json_string(m->u.job.url));
        json_object_set_new(o, "headers", headers_json(m->u.job.headers, m->u.job.n_headers));
        json_object_set_new(o, "timeout_ms", json_integer(m->u.job.timeout_ms));
        json_object_set_new(o, "max_body", json_integer(m->u.job.max_body));
        break;
    case WM_MSG_RESULT:
        json_object_set_new(o, "id", json_integer((json_int_t)m->u.result.id));
        json_object_set_new(o, "status", json_integer(m->u.result.status));
        json_object_set_new(o, "headers",
                            headers_json(m->u.result.headers, m->u.result.n_headers));
        json_object_set_new(o, "body_len", json_integer((json_int_t)m->u.result.body_len));
        json_object_set_new(o, "error", m->u.result.error ? json_string(m->u.result.error)
                                                          : json_null());
        json_object_set_new(o, "elapsed_us", json_integer(m->u.result.elapsed_us));
        break;
    }
    return o;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: zsub ENDPOINT [--count N] [--timeout-ms T] [--no-heartbeats]\n"
               "Prints each message from a ZeroMQ PUB endpoint as one JSON line.\n"
               "Exit 0 after N messages or on a signal, 3 on timeout, 1 on error.\n");
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL;
    long count = -1, timeout_ms = -1;
    bool heartbeats = true;
    void *ctx = NULL, *sub = NULL;
    int status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            timeout_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-heartbeats") == 0) {
            heartbeats = false;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !endpoint) {
            endpoint = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!endpoint) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ctx = zmq_ctx_new();
    sub = ctx ? zmq_socket(ctx, ZMQ_SUB) : NULL;
    if (!sub || wm_zmq_setint(sub, ZMQ_RCVHWM, 1000000) < 0 ||
        wm_zmq_setint(sub, ZMQ_LINGER, 0) < 0 ||
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0) != 0 || zmq_connect(sub, endpoint) != 0) {
        fprintf(stderr, "zsub: %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        goto out;
    }
    int64_t deadline = timeout_ms >= 0 ? wm_now_ms() + timeout_ms : -1;
    long seen = 0;
    while (!stop_flag && (count < 0 || seen < count)) {
        long wait = 1000;
        if (deadline >= 0) {
            int64_t left = deadline - wm_now_ms();
            if (left <= 0) {
                status = 3;
                goto out;
            }
            if (left < wait)
                wait = (long)left;
        }
        zmq_pollitem_t it = {.socket = sub, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, wait) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            fprintf(stderr, "zsub: zmq_poll: %s\n", zmq_strerror(zmq_errno()));
            goto out;
        }
        struct wm_zframes f;
        while ((count < 0 || seen < count) && wm_zmq_recv(sub, &f) == 0) {
            struct wm_msg m;
            const char *why = NULL;
            int n = f.n;
            int rc = wm_msg_decode(wm_zframe_data(&f, n - 1), wm_zframe_size(&f, n - 1), &m,
                                   &why);
            wm_zframes_close(&f);
            if (rc < 0) {
                printf("{\"type\":\"INVALID\",\"error\":\"%s\"}\n", why ? why : "?");
                fflush(stdout);
                seen++;
                continue;
            }
            if (heartbeats || m.type != WM_MSG_HEARTBEAT) {
                json_t *j = to_json(&m);
                char *s = json_dumps(j, JSON_COMPACT);
                printf("%s\n", s);
                fflush(stdout);
                free(s);
                json_decref(j);
                seen++;
            }
            wm_msg_clear(&m);
        }
    }
    status = 0;
out:
    if (sub)
        zmq_close(sub);
    if (ctx)
        zmq_ctx_term(ctx);
    return status;
}

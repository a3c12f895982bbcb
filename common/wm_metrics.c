/* wm_metrics: /metrics and /healthz over libmicrohttpd in external-epoll mode (no thread
 * of its own: the process polls one fd), plus the Prometheus text helpers. */
#include "wm_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_CONN_LIMIT    32   /* scrapers are few; bound what a stray client can hold */
#define METRICS_CONN_TIMEOUT  10   /* seconds; enforced when wm_metrics_server_run runs */

struct wm_metrics_server {
    struct MHD_Daemon *d;
    int epoll_fd;
    int port;
    wm_metrics_render_fn render;
    wm_health_fn health;
    void *ud;
};

static const double hist_bounds[WM_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *body, size_t len, bool allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct wm_metrics_server *m = cls;
    static const char text[] = "text/plain; charset=utf-8";

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "method not allowed\n", 19, true);
    if (strcmp(url, "/metrics") == 0) {
        struct wm_buf out = WM_BUF_INIT;
        if (m->render)
            m->render(&out, m->ud);
        enum MHD_Result ret = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                    out.data ? out.data : "", out.len, false);
        wm_buf_free(&out);
        return ret;
    }
    if (strcmp(url, "/healthz") == 0) {
        struct wm_buf why = WM_BUF_INIT;
        bool ok = m->health ? m->health(&why, m->ud) : true;
        if (ok) {
            wm_buf_free(&why);
            return reply(c, MHD_HTTP_OK, text, "ok\n", 3, false);
        }
        if (why.len == 0)
            wm_buf_puts(&why, "unhealthy");
        if (why.data[why.len - 1] != '\n')
            wm_buf_puts(&why, "\n");
        enum MHD_Result ret = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text, why.data, why.len,
                                    false);
        wm_buf_free(&why);
        return ret;
    }
    return reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10, false);
}

/* Binds and listens ourselves rather than letting MHD do it, so the caller gets the
 * real reason ("address already in use") instead of a bare failure. */
static int open_listener(const struct wm_listen *l, int *family, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    int fd = -1;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", l->port);
    int g = getaddrinfo(l->host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "%s:%d: %s", l->host, l->port, gai_strerror(g));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0)
        goto fail;
    *family = res->ai_family;
    freeaddrinfo(res);
    return fd;
fail:
    {
        int e = errno;
        char msg[128];
        snprintf(msg, sizeof msg, "%s", strerror(e));
        if (msg[0] >= 'A' && msg[0] <= 'Z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        snprintf(err, errlen, "%s:%d: %s", l->host, l->port, msg);
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

struct wm_metrics_server *wm_metrics_server_new(const struct wm_listen *l,
                                                wm_metrics_render_fn render,
                                                wm_health_fn health, void *ud,
                                                char *err, size_t errlen)
{
    struct wm_metrics_server *m = NULL;
    int family = AF_INET;
    int fd = -1;
    char dummy[8];

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!l || !l->enabled || !l->host) {
        snprintf(err, errlen, "metrics listen address is disabled");
        return NULL;
    }
    fd = open_listener(l, &family, err, errlen);
    if (fd < 0)
        return NULL;
    m = wm_calloc(1, sizeof *m);
    m->render = render;
    m->health = health;
    m->ud = ud;
    unsigned flags = MHD_USE_EPOLL | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONN_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_CONN_TIMEOUT,
                            MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, errlen, "%s:%d: cannot start HTTP server", l->host, l->port);
        close(fd);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
    m->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info && info->port ? info->port : l->port;
    if (m->epoll_fd < 0) {
        snprintf(err, errlen, "%s:%d: HTTP server has no epoll fd", l->host, l->port);
        wm_metrics_server_free(&m);
        return NULL;
    }
    return m;
}

int wm_metrics_server_fd(const struct wm_metrics_server *m)
{
    return m ? m->epoll_fd : -1;
}

int wm_metrics_server_port(const struct wm_metrics_server *m)
{
    return m ? m->port : 0;
}

void wm_metrics_server_run(struct wm_metrics_server *m)
{
    if (m && m->d)
        MHD_run(m->d);
}

void wm_metrics_server_free(struct wm_metrics_server **mp)
{
    if (!mp || !*mp)
        return;
    if ((*mp)->d)
        MHD_stop_daemon((*mp)->d);   /* also closes the listening socket */
    free(*mp);
    *mp = NULL;
}

/* ---- text format ---- */

static void put_escaped(struct wm_buf *out, const char *s, bool quote)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            wm_buf_puts(out, "\\\\");
        else if (*s == '\n')
            wm_buf_puts(out, "\\n");
        else if (quote && *s == '"')
            wm_buf_puts(out, "\\\"");
        else
            wm_buf_append(out, s, 1);
    }
}

static void put_header(struct wm_buf *out, const char *name, const char *help,
                       const char *type)
{
    wm_buf_printf(out, "# HELP %s ", name);
    put_escaped(out, help, false);
    wm_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void put_double(struct wm_buf *out, double v)
{
    if (isnan(v))
        wm_buf_puts(out, "NaN");
    else if (isinf(v))
        wm_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        wm_buf_printf(out, "%.0f", v);
    else
        wm_buf_printf(out, "%.17g", v);
}

void wm_metric_counter(struct wm_buf *out, const char *name, const char *help, uint64_t v)
{
    put_header(out, name, help, "counter");
    wm_buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

void wm_metric_gauge(struct wm_buf *out, const char *name, const char *help, double v)
{
    put_header(out, name, help, "gauge");
    wm_buf_printf(out, "%s ", name);
    put_double(out, v);
    wm_buf_puts(out, "\n");
}

void wm_metric_labeled(struct wm_buf *out, const char *name, const char *help,
                       const char *type, const char *label,
                       const char *const *values, const uint64_t *counts, size_t n)
{
    put_header(out, name, help, type ? type : "counter");
    for (size_t i = 0; i < n; i++) {
        wm_buf_printf(out, "%s{%s=\"", name, label);
        put_escaped(out, values[i], true);
        wm_buf_printf(out, "\"} %llu\n", (unsigned long long)counts[i]);
    }
}

void wm_histogram_observe(struct wm_histogram *h, double seconds)
{
    if (!(seconds >= 0))   /* also catches NaN */
        seconds = 0;
    for (size_t i = 0; i < WM_HIST_BUCKETS; i++) {
        if (seconds <= hist_bounds[i]) {
            h->bucket[i]++;
            break;
        }
    }
    h->count++;
    h->sum += seconds;
}

void wm_metric_histogram(struct wm_buf *out, const char *name, const char *help,
                         const struct wm_histogram *h)
{
    uint64_t cum = 0;
    put_header(out, name, help, "histogram");
    for (size_t i = 0; i < WM_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        wm_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i],
                      (unsigned long long)cum);
    }
    wm_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    wm_buf_printf(out, "%s_sum ", name);
    put_double(out, h->sum);
    wm_buf_printf(out, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}

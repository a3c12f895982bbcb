/* waymark-gateway: reads settings, sizes the session cap from the open-files limit,
 * builds the engine, runs its loop until SIGINT or SIGTERM, tears down. Exit 0 on a
 * clean stop, 2 on bad settings, 1 on a failed start (e.g. the listen address or the
 * fetch endpoint is in use). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gw_engine.h"
#include "wm_config.h"
#include "wm_fdlimit.h"
#include "wm_log.h"
#include "wm_path.h"
#include "wm_signal.h"

/* Descriptors that are not sessions: ZeroMQ (context, I/O thread, one TCP connection
 * per fetcher and dispatcher), the metrics server and its clients, lws's listen socket
 * and event pipe, stdio. Sessions get the rest of the open-files limit. */
#define GW_FD_RESERVE 256

/* The session cap: the setting when given (lowered, with a warning, to what the
 * open-files limit can hold), else the limit minus GW_FD_RESERVE. The soft limit is
 * raised only as far as the cap needs: lws 4.1 as Debian builds it scans a table of
 * one slot per possible descriptor on every accept (docs/libraries.md). */
static size_t session_cap(int64_t wanted)
{
    int raise_err = 0;
    int64_t limit = wm_fdlimit_raise(wanted > 0 ? wanted + GW_FD_RESERVE : 0, &raise_err);
    int64_t fit = limit - GW_FD_RESERVE;

    if (raise_err)
        wm_warn("cannot raise the open-files limit", "error=\"%s\" limit=%lld",
                strerror(raise_err), (long long)limit);
    if (limit < 0) {
        wm_warn("cannot read the open-files limit", "error=\"%s\"", strerror((int)-limit));
        return wanted > 0 ? (size_t)wanted : 1024;
    }
    if (fit < 16)
        fit = 16;
    if (wanted > fit) {
        wm_warn("max sessions lowered to what the open-files limit holds",
                "max_sessions=%lld open_files=%lld reserve=%d", (long long)wanted,
                (long long)limit, GW_FD_RESERVE);
        return (size_t)fit;
    }
    if (wanted <= 0)
        wm_info("max sessions derived from the open-files limit",
                "max_sessions=%lld open_files=%lld reserve=%d", (long long)fit,
                (long long)limit, GW_FD_RESERVE);
    return (size_t)(wanted > 0 ? wanted : fit);
}

int main(int argc, char **argv)
{
    static const char prog[] = "waymark-gateway";
    struct wm_listen listen = {0}, metrics = {0};
    char *realm = NULL, *backend = NULL;
    struct wm_endpoints bump = {0}, fetch = {0};
    struct wm_auth_header auth = {0};
    bool anonymous = false;
    bool push_unchanged = false;
    enum wm_log_level level = WM_LOG_INFO;
    int64_t fetch_timeout = 10000, max_page = 1000000, max_message = 1048576;
    int64_t max_subs = 1000, queue_bytes = 16777216, max_sessions = 0;
    int64_t max_path = WM_PATH_MAX_DEFAULT;
    int64_t join_timeout = 10, ping_interval = 30, ping_timeout = 15;
    struct gw_engine *engine = NULL;
    char err[256] = "";
    int status;

    const struct wm_setting settings[] = {
        {"listen", "WAYMARK_LISTEN", "127.0.0.1:8800",
         "host:port of the websocket (WAMP) server", &wm_value_listen, &listen, 0, 0},
        {"realm", "WAYMARK_REALM", "waymark", "the one WAMP realm clients may join",
         &wm_value_string, &realm, 0, 0},
        {"bump-endpoint", "WAYMARK_BUMP_ENDPOINT", "tcp://127.0.0.1:5555",
         "ZeroMQ endpoints of the dispatchers (comma list); the SUB socket connects to each",
         &wm_value_endpoints, &bump, 0, 0},
        {"fetch-endpoint", "WAYMARK_FETCH_ENDPOINT", "tcp://127.0.0.1:5556",
         "ZeroMQ endpoint the ROUTER socket binds (exactly one); fetchers connect to it",
         &wm_value_endpoints, &fetch, 0, 0},
        WM_SETTING_METRICS_LISTEN("127.0.0.1:9100", "", &metrics),
        {"backend-url", "WAYMARK_BACKEND_URL", "http://127.0.0.1:8080",
         "origin every topic is fetched from", &wm_value_http_url, &backend, 0, 0},
        {"auth-header", "WAYMARK_AUTH_HEADER", "Authorization: Bearer {token}",
         "how a client's token is sent to the backend", &wm_value_auth_header, &auth, 0, 0},
        {"allow-anonymous", "WAYMARK_ALLOW_ANONYMOUS", "0",
         "accept WAMP sessions without a ticket (fetched without a token)", &wm_value_bool,
         &anonymous, 0, 0},
        {"push-unchanged", "WAYMARK_PUSH_UNCHANGED", "0",
         "push every refetched page, even one identical to the last pushed (and send no "
         "conditional GETs)", &wm_value_bool, &push_unchanged, 0, 0},
        WM_SETTING_LOG_LEVEL(&level),
        {"fetch-timeout-ms", "WAYMARK_FETCH_TIMEOUT_MS", "10000",
         "whole-transfer timeout of one backend GET (then the client gets a 504)",
         &wm_value_int, &fetch_timeout, 100, 600000},
        {"max-page-bytes", "WAYMARK_MAX_PAGE_BYTES", "1000000",
         "largest response body fetched (a larger one reaches the client as a 502)",
         &wm_value_int, &max_page, 1024, 1073741824},
        {"max-message-bytes", "WAYMARK_MAX_MESSAGE_BYTES", "1048576",
         "largest websocket message received or EVENT sent (larger pages become a 502)",
         &wm_value_int, &max_message, 4096, 1073741824},
        {"max-subscriptions", "WAYMARK_MAX_SUBSCRIPTIONS", "1000",
         "subscriptions per session", &wm_value_int, &max_subs, 1, 10000000},
        {"session-queue-bytes", "WAYMARK_SESSION_QUEUE_BYTES", "16777216",
         "bytes queued for one client before it is closed as too slow", &wm_value_int,
         &queue_bytes, 65536, 68719476736},
        {"max-sessions", "WAYMARK_MAX_SESSIONS", "0",
         "open websocket sessions; further handshakes get 503. 0: the open-files limit "
         "(raised to its hard limit at start) minus 256", &wm_value_int, &max_sessions, 0,
         10000000},
        {"join-timeout-s", "WAYMARK_JOIN_TIMEOUT_S", "10",
         "seconds from websocket open to WELCOME, or the connection is closed",
         &wm_value_int, &join_timeout, 1, 3600},
        {"ping-interval-s", "WAYMARK_PING_INTERVAL_S", "30",
         "a client silent this many seconds gets a websocket ping", &wm_value_int,
         &ping_interval, 1, 3600},
        {"ping-timeout-s", "WAYMARK_PING_TIMEOUT_S", "15",
         "seconds after that ping a still-silent client is closed", &wm_value_int,
         &ping_timeout, 1, 3600},
        WM_SETTING_MAX_PATH("longest topic accepted, in bytes", &max_path),
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    status = wm_config_main(prog, "Serves WAMP clients over websockets and pushes each "
                            "subscribed page, fetched with the client's own token.",
                            settings, n_settings, argc, argv, NULL);
    if (status >= 0)
        goto out;
    if (!listen.enabled) {
        status = wm_config_refuse(prog, settings, n_settings, "listen",
                                  "the websocket server cannot be disabled");
        goto out;
    }
    if (fetch.n != 1) {
        status = wm_config_refuse(prog, settings, n_settings, "fetch-endpoint",
                                  "the gateway binds exactly one endpoint");
        goto out;
    }
    wm_log_init("gateway", level);
    /* Before the engine says it started: a stop from then on is a clean stop. */
    volatile sig_atomic_t *stop = wm_signal_stop_flag();

    const struct gw_engine_config cfg = {
        .listen = &listen,
        .realm = realm,
        .bump_endpoints = &bump,
        .fetch_endpoint = fetch.list[0],
        .metrics_listen = &metrics,
        .backend_url = backend,
        .auth = &auth,
        .allow_anonymous = anonymous,
        .push_unchanged = push_unchanged,
        .fetch_timeout_ms = (uint32_t)fetch_timeout,
        .max_page_bytes = (uint32_t)max_page,
        .max_message_bytes = (size_t)max_message,
        .max_subscriptions = (size_t)max_subs,
        .session_queue_bytes = (size_t)queue_bytes,
        .max_sessions = session_cap(max_sessions),
        .max_path = (size_t)max_path,
        .join_timeout_s = (unsigned)join_timeout,
        .ping_interval_s = (unsigned)ping_interval,
        .ping_timeout_s = (unsigned)ping_timeout,
    };
    engine = gw_engine_new(&cfg, err, sizeof err);
    if (!engine) {
        fprintf(stderr, "%s: %s\n", prog, err);
        status = 1;
        goto out;
    }
    status = gw_engine_run(engine, stop) == 0 ? 0 : 1;
out:
    gw_engine_free(&engine);
    wm_config_free(settings, n_settings);
    return status;
}

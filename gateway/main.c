/* waymark-gateway: reads settings, builds the engine, runs its loop until SIGINT or
 * SIGTERM, tears down. Exit 0 on a clean stop, 2 on bad settings, 1 on a failed start
 * (e.g. the listen address or the fetch endpoint is in use). */
#include <stdio.h>
#include <string.h>

#include "gw_engine.h"
#include "wm_config.h"
#include "wm_log.h"
#include "wm_path.h"

int main(int argc, char **argv)
{
    static const char prog[] = "waymark-gateway";
    struct wm_listen listen = {0}, metrics = {0};
    char *realm = NULL, *backend = NULL;
    struct wm_endpoints bump = {0}, fetch = {0};
    struct wm_auth_header auth = {0};
    bool anonymous = false;
    enum wm_log_level level = WM_LOG_INFO;
    int64_t fetch_timeout = 10000, max_page = 1000000, max_message = 1048576;
    int64_t max_subs = 1000, queue_bytes = 16777216, max_sessions = 10000;
    int64_t max_path = WM_PATH_MAX_DEFAULT;
    struct gw_engine *engine = NULL;
    char err[256] = "";
    int status = 1;

    const struct wm_setting settings[] = {
        {"listen", "WAYMARK_LISTEN", "127.0.0.1:8800",
         "host:port of the websocket (WAMP) server", wm_parse_listen, &listen, 0, 0},
        {"realm", "WAYMARK_REALM", "waymark", "the one WAMP realm clients may join",
         wm_parse_string, &realm, 0, 0},
        {"bump-endpoint", "WAYMARK_BUMP_ENDPOINT", "tcp://127.0.0.1:5555",
         "ZeroMQ endpoints of the dispatchers (comma list); the SUB socket connects to each",
         wm_parse_endpoints, &bump, 0, 0},
        {"fetch-endpoint", "WAYMARK_FETCH_ENDPOINT", "tcp://127.0.0.1:5556",
         "ZeroMQ endpoint the ROUTER socket binds (exactly one); fetchers connect to it",
         wm_parse_endpoints, &fetch, 0, 0},
        {"metrics-listen", "WAYMARK_METRICS_LISTEN", "127.0.0.1:9100",
         "host:port for GET /metrics and /healthz; 0 disables", wm_parse_listen, &metrics,
         0, 0},
        {"backend-url", "WAYMARK_BACKEND_URL", "http://127.0.0.1:8080",
         "origin every topic is fetched from", wm_parse_http_url, &backend, 0, 0},
        {"auth-header", "WAYMARK_AUTH_HEADER", "Authorization: Bearer {token}",
         "how a client's token is sent to the backend", wm_parse_auth_header, &auth, 0, 0},
        {"allow-anonymous", "WAYMARK_ALLOW_ANONYMOUS", "0",
         "accept WAMP sessions without a ticket (fetched without a token)", wm_parse_bool,
         &anonymous, 0, 0},
        {"log-level", "WAYMARK_LOG_LEVEL", "info", "debug, info, warn or error",
         wm_parse_log_level, &level, 0, 0},
        {"fetch-timeout-ms", "WAYMARK_FETCH_TIMEOUT_MS", "10000",
         "whole-transfer timeout of one backend GET (then the client gets a 504)",
         wm_parse_int, &fetch_timeout, 100, 600000},
        {"max-page-bytes", "WAYMARK_MAX_PAGE_BYTES", "1000000",
         "largest response body fetched (a larger one reaches the client as a 502)",
         wm_parse_int, &max_page, 1024, 1073741824},
        {"max-message-bytes", "WAYMARK_MAX_MESSAGE_BYTES", "1048576",
         "largest websocket message received or EVENT sent (larger pages become a 502)",
         wm_parse_int, &max_message, 4096, 1073741824},
        {"max-subscriptions", "WAYMARK_MAX_SUBSCRIPTIONS", "1000",
         "subscriptions per session", wm_parse_int, &max_subs, 1, 10000000},
        {"session-queue-bytes", "WAYMARK_SESSION_QUEUE_BYTES", "16777216",
         "bytes queued for one client before it is closed as too slow", wm_parse_int,
         &queue_bytes, 65536, 68719476736},
        {"max-sessions", "WAYMARK_MAX_SESSIONS", "10000",
         "open websocket sessions; further handshakes are refused", wm_parse_int,
         &max_sessions, 1, 10000000},
        {"max-path", "WAYMARK_MAX_PATH", "2048", "longest topic accepted, in bytes",
         wm_parse_int, &max_path, 16, 65536},
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    int prc = wm_config_parse(prog, "Serves WAMP clients over websockets and pushes each "
                              "subscribed page, fetched with the client's own token.",
                              settings, n_settings, argc, argv, NULL);
    if (prc != WM_CONFIG_OK) {
        status = prc == WM_CONFIG_EXIT ? 0 : 2;
        goto out;
    }
    if (!listen.enabled) {
        fprintf(stderr, "%s: bad --listen (WAYMARK_LISTEN): the websocket server cannot be "
                        "disabled\n", prog);
        status = 2;
        goto out;
    }
    if (fetch.n != 1) {
        fprintf(stderr, "%s: bad --fetch-endpoint (WAYMARK_FETCH_ENDPOINT): the gateway "
                        "binds exactly one endpoint\n", prog);
        status = 2;
        goto out;
    }
    wm_log_init("gateway", level);

    const struct gw_engine_config cfg = {
        .listen = &listen,
        .realm = realm,
        .bump_endpoints = &bump,
        .fetch_endpoint = fetch.list[0],
        .metrics_listen = &metrics,
        .backend_url = backend,
        .auth = &auth,
        .allow_anonymous = anonymous,
        .fetch_timeout_ms = (uint32_t)fetch_timeout,
        .max_page_bytes = (uint32_t)max_page,
        .max_message_bytes = (size_t)max_message,
        .max_subscriptions = (size_t)max_subs,
        .session_queue_bytes = (size_t)queue_bytes,
        .max_sessions = (size_t)max_sessions,
        .max_path = (size_t)max_path,
    };
    engine = gw_engine_new(&cfg, err, sizeof err);
    if (!engine) {
        fprintf(stderr, "%s: %s\n", prog, err);
        status = 1;
        goto out;
    }
    status = gw_engine_run(engine) == 0 ? 0 : 1;
out:
    gw_engine_free(&engine);
    wm_config_free(settings, n_settings);
    return status;
}

/* waymark-fetcher: reads settings, builds the engine, runs its loop until SIGINT or
 * SIGTERM, tears down. Exit 0 on a clean stop, 2 on bad settings, 1 on a failed start. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>

#include "ft_engine.h"
#include "wm_config.h"
#include "wm_log.h"
#include "wm_signal.h"

#define FT_DRAIN_MS 2000   /* shutdown grace for in-flight fetches */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;   /* only this: the loop wakes within a heartbeat at most */
}

int main(int argc, char **argv)
{
    static const char prog[] = "waymark-fetcher";
    struct wm_endpoints fetch = {0};
    char *backend = NULL;
    int64_t concurrency = 64, connect_timeout = 2000;
    struct wm_listen metrics = {0};
    enum wm_log_level level = WM_LOG_INFO;
    struct ft_engine *engine = NULL;
    bool curl_up = false;
    char err[256] = "";
    int status = 1;

    const struct wm_setting settings[] = {
        {"fetch-endpoint", "WAYMARK_FETCH_ENDPOINT", "tcp://127.0.0.1:5556",
         "gateway fetch endpoints to connect to (comma list: one DEALER per gateway)",
         wm_parse_endpoints, &fetch, 0, 0},
        {"backend-url", "WAYMARK_BACKEND_URL", "http://127.0.0.1:8080",
         "the backend origin; a job URL outside it is refused (502), never requested",
         wm_parse_http_url, &backend, 0, 0},
        {"fetch-concurrency", "WAYMARK_FETCH_CONCURRENCY", "64",
         "fetches run at once (free slots announced to the gateways; pool size)",
         wm_parse_int, &concurrency, 1, 4096},
        {"connect-timeout-ms", "WAYMARK_CONNECT_TIMEOUT_MS", "2000",
         "timeout for connecting to the backend, in ms (a failure is a 502)",
         wm_parse_int, &connect_timeout, 1, 600000},
        {"metrics-listen", "WAYMARK_METRICS_LISTEN", "127.0.0.1:9102",
         "host:port for GET /metrics and /healthz; 0 disables (a pool on one host needs "
         "distinct ports)", wm_parse_listen, &metrics, 0, 0},
        {"log-level", "WAYMARK_LOG_LEVEL", "info", "debug, info, warn or error",
         wm_parse_log_level, &level, 0, 0},
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    int prc = wm_config_parse(prog, "Performs the gateways' fetch jobs (HTTP GET against "
                              "the backend) and returns the results.",
                              settings, n_settings, argc, argv, NULL);
    if (prc != WM_CONFIG_OK) {
        status = prc == WM_CONFIG_EXIT ? 0 : 2;
        goto out;
    }
    wm_log_init("fetcher", level);

    wm_signal_on_stop(on_signal, NULL);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "%s: curl_global_init failed\n", prog);
        goto out;
    }
    curl_up = true;

    const struct ft_engine_config cfg = {
        .endpoints = &fetch,
        .backend_url = backend,
        .concurrency = (uint32_t)concurrency,
        .connect_timeout_ms = (uint32_t)connect_timeout,
        .metrics = &metrics,
        .drain_ms = FT_DRAIN_MS,
    };
    engine = ft_engine_new(&cfg, err, sizeof err);
    if (!engine) {
        wm_error("cannot start", "error=\"%s\"", err);
        fprintf(stderr, "%s: %s\n", prog, err);
        goto out;
    }
    char mlisten[300] = "off";
    if (metrics.enabled)
        snprintf(mlisten, sizeof mlisten, "%s:%d", metrics.host, metrics.port);
    wm_info("started", "gateways=%zu backend=%s concurrency=%lld metrics=%s", fetch.n,
            backend, (long long)concurrency, mlisten);
    status = ft_engine_run(engine, &stop_flag) == 0 ? 0 : 1;
out:
    ft_engine_free(&engine);
    if (curl_up)
        curl_global_cleanup();
    wm_config_free(settings, n_settings);
    return status;
}

/* waymark-fetcher: reads settings, builds the engine, runs its loop until SIGINT or
 * SIGTERM, tears down. Exit 0 on a clean stop, 2 on bad settings, 1 on a failed start. */
#include <curl/curl.h>
#include <stdio.h>

#include "ft_engine.h"
#include "wm_config.h"
#include "wm_log.h"
#include "wm_signal.h"

#define FT_DRAIN_MS 2000   /* shutdown grace for in-flight fetches */

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
    char err[256] = "", mlisten[300];
    int status;

    const struct wm_setting settings[] = {
        {"fetch-endpoint", "WAYMARK_FETCH_ENDPOINT", "tcp://127.0.0.1:5556",
         "gateway fetch endpoints to connect to (comma list: one DEALER per gateway)",
         &wm_value_endpoints, &fetch, 0, 0},
        {"backend-url", "WAYMARK_BACKEND_URL", "http://127.0.0.1:8080",
         "the backend origin; a job URL outside it is refused (502), never requested",
         &wm_value_http_url, &backend, 0, 0},
        {"fetch-concurrency", "WAYMARK_FETCH_CONCURRENCY", "64",
         "fetches run at once (free slots announced to the gateways; pool size)",
         &wm_value_int, &concurrency, 1, 4096},
        {"connect-timeout-ms", "WAYMARK_CONNECT_TIMEOUT_MS", "2000",
         "timeout for connecting to the backend, in ms (a failure is a 502)",
         &wm_value_int, &connect_timeout, 1, 600000},
        WM_SETTING_METRICS_LISTEN("127.0.0.1:9102",
                                  " (a pool on one host needs distinct ports)", &metrics),
        WM_SETTING_LOG_LEVEL(&level),
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    status = wm_config_main(prog, "Performs the gateways' fetch jobs (HTTP GET against "
                            "the backend) and returns the results.",
                            settings, n_settings, argc, argv, NULL);
    if (status >= 0)
        goto out;
    status = 1;
    wm_log_init("fetcher", level);
    volatile sig_atomic_t *stop = wm_signal_stop_flag();

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
    wm_info("started", "gateways=%zu backend=%s concurrency=%lld metrics=%s", fetch.n,
            backend, (long long)concurrency, wm_listen_text(&metrics, mlisten, sizeof mlisten));
    status = ft_engine_run(engine, stop) == 0 ? 0 : 1;
out:
    ft_engine_free(&engine);
    if (curl_up)
        curl_global_cleanup();
    wm_config_free(settings, n_settings);
    return status;
}

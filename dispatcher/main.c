/* waymark-dispatcher: reads settings, builds the engine, runs its loop until SIGINT or
 * SIGTERM, tears down. Exit 0 on a clean stop, 2 on bad settings, 1 on a failed start. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include "dp_engine.h"
#include "wm_config.h"
#include "wm_log.h"
#include "wm_path.h"
#include "wm_signal.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;   /* only this: the loop notices within DP_POLL_MAX_MS */
}

int main(int argc, char **argv)
{
    static const char prog[] = "waymark-dispatcher";
    struct wm_redis_url redis = {0};
    char *channel = NULL;
    struct wm_endpoints bump = {0};
    struct wm_listen metrics = {0};
    enum wm_log_level level = WM_LOG_INFO;
    int64_t max_path = WM_PATH_MAX_DEFAULT;
    struct dp_engine *engine = NULL;
    char err[256] = "";
    int status = 1;

    const struct wm_setting settings[] = {
        {"redis-url", "WAYMARK_REDIS_URL", "redis://127.0.0.1:6379",
         "Redis to SUBSCRIBE to: redis://[:password@]host[:port][/db]",
         wm_parse_redis_url, &redis, 0, 0},
        {"redis-channel", "WAYMARK_REDIS_CHANNEL", "waymark",
         "Redis pub-sub channel the backend PUBLISHes bumps on", wm_parse_string, &channel,
         0, 0},
        {"bump-endpoint", "WAYMARK_BUMP_ENDPOINT", "tcp://127.0.0.1:5555",
         "ZeroMQ endpoint the PUB socket binds (exactly one); gateways connect to it",
         wm_parse_endpoints, &bump, 0, 0},
        {"metrics-listen", "WAYMARK_METRICS_LISTEN", "127.0.0.1:9101",
         "host:port for GET /metrics and /healthz; 0 disables", wm_parse_listen, &metrics,
         0, 0},
        {"log-level", "WAYMARK_LOG_LEVEL", "info", "debug, info, warn or error",
         wm_parse_log_level, &level, 0, 0},
        {"max-path", "WAYMARK_MAX_PATH", "2048",
         "longest bump path accepted, in bytes (longer ones are refused as too_long)",
         wm_parse_int, &max_path, 16, 65536},
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    int prc = wm_config_parse(prog, "Subscribes to the Redis bump channel and publishes "
                              "validated bumps to the gateways.",
                              settings, n_settings, argc, argv, NULL);
    if (prc != WM_CONFIG_OK) {
        status = prc == WM_CONFIG_EXIT ? 0 : 2;
        goto out;
    }
    if (bump.n != 1) {
        fprintf(stderr, "%s: bad --bump-endpoint (WAYMARK_BUMP_ENDPOINT): the dispatcher "
                        "binds exactly one endpoint\n", prog);
        status = 2;
        goto out;
    }
    wm_log_init("dispatcher", level);

    wm_signal_on_stop(on_signal, NULL);

    const struct dp_engine_config cfg = {
        .redis = &redis,
        .channel = channel,
        .bump_endpoint = bump.list[0],
        .metrics = &metrics,
        .max_path = (size_t)max_path,
    };
    engine = dp_engine_new(&cfg, err, sizeof err);
    if (!engine) {
        fprintf(stderr, "%s: %s\n", prog, err);
        status = 1;
        goto out;
    }
    char mlisten[300] = "off";
    if (metrics.enabled)
        snprintf(mlisten, sizeof mlisten, "%s:%d", metrics.host, metrics.port);
    wm_info("listening", "bump_endpoint=%s redis=%s:%d channel=%s metrics=%s", bump.list[0],
            redis.host, redis.port, channel, mlisten);
    status = dp_engine_run(engine, &stop_flag) == 0 ? 0 : 1;
out:
    dp_engine_free(&engine);
    wm_config_free(settings, n_settings);
    return status;
}

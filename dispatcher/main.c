/* waymark-dispatcher: reads settings, builds the engine, runs its loop until SIGINT or
 * SIGTERM, tears down. Exit 0 on a clean stop, 2 on bad settings, 1 on a failed start. */
#include <stdio.h>

#include "dp_engine.h"
#include "wm_config.h"
#include "wm_log.h"
#include "wm_path.h"
#include "wm_signal.h"

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
    char err[256] = "", mlisten[300];
    int status;

    const struct wm_setting settings[] = {
        {"redis-url", "WAYMARK_REDIS_URL", "redis://127.0.0.1:6379",
         "Redis to SUBSCRIBE to: redis://[:password@]host[:port][/db]",
         &wm_value_redis_url, &redis, 0, 0},
        {"redis-channel", "WAYMARK_REDIS_CHANNEL", "waymark",
         "Redis pub-sub channel the backend PUBLISHes bumps on", &wm_value_string, &channel,
         0, 0},
        {"bump-endpoint", "WAYMARK_BUMP_ENDPOINT", "tcp://127.0.0.1:5555",
         "ZeroMQ endpoint the PUB socket binds (exactly one); gateways connect to it",
         &wm_value_endpoints, &bump, 0, 0},
        WM_SETTING_METRICS_LISTEN("127.0.0.1:9101", "", &metrics),
        WM_SETTING_LOG_LEVEL(&level),
        WM_SETTING_MAX_PATH("longest bump path accepted, in bytes (longer ones are refused "
                            "as too_long)", &max_path),
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    status = wm_config_main(prog, "Subscribes to the Redis bump channel and publishes "
                            "validated bumps to the gateways.",
                            settings, n_settings, argc, argv, NULL);
    if (status >= 0)
        goto out;
    if (bump.n != 1) {
        status = wm_config_refuse(prog, settings, n_settings, "bump-endpoint",
                                  "the dispatcher binds exactly one endpoint");
        goto out;
    }
    wm_log_init("dispatcher", level);
    volatile sig_atomic_t *stop = wm_signal_stop_flag();

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
    wm_info("listening", "bump_endpoint=%s redis=%s:%d channel=%s metrics=%s", bump.list[0],
            redis.host, redis.port, channel, wm_listen_text(&metrics, mlisten, sizeof mlisten));
    status = dp_engine_run(engine, stop) == 0 ? 0 : 1;
out:
    dp_engine_free(&engine);
    wm_config_free(settings, n_settings);
    return status;
}

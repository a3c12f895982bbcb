/* waymark-bump: publishes bumps from the shell (`waymark-bump /users/1`), the same way a
 * backend does with PUBLISH. Every path is checked before anything is sent. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "wm_config.h"
#include "wm_path.h"

static const char prog[] = "waymark-bump";

/* Returns the payload for one path (heap, caller frees): the plain path, or the JSON
 * form when the bump is a prefix bump. */
static char *payload_for(const char *path, bool prefix)
{
    if (!prefix)
        return strdup(path);
    json_t *o = json_pack("{s:s, s:s}", "path", path, "match", "prefix");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Connects with a timeout on connect and on every command. Returns NULL after printing
 * one line. The password is sent but never printed. */
static redisContext *connect_redis(const struct wm_redis_url *url, int64_t timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(url->host, url->port, tv);
    redisReply *r = NULL;

    if (!c || c->err) {
        fprintf(stderr, "%s: cannot connect to Redis at %s:%d: %s\n", prog, url->host,
                url->port, c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        fprintf(stderr, "%s: Redis at %s:%d: %s\n", prog, url->host, url->port, c->errstr);
        goto fail;
    }
    /* No SELECT: pub-sub channels are global to the server, whatever the db. */
    if (url->password) {
        r = redisCommand(c, "AUTH %s", url->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "%s: Redis at %s:%d refused AUTH: %s\n", prog, url->host,
                    url->port, r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

int main(int argc, char **argv)
{
    struct wm_redis_url redis = {0};
    char *channel = NULL;
    bool prefix = false;
    int64_t max_path = WM_PATH_MAX_DEFAULT;
    int64_t timeout_ms = 3000;
    redisContext *c = NULL;
    int first = argc;
    int status;

    const struct wm_setting settings[] = {
        {"redis-url", "WAYMARK_REDIS_URL", "redis://127.0.0.1:6379",
         "Redis to PUBLISH to: redis://[:password@]host[:port][/db]", &wm_value_redis_url,
         &redis, 0, 0},
        {"redis-channel", "WAYMARK_REDIS_CHANNEL", "waymark",
         "channel the dispatcher SUBSCRIBEs to", &wm_value_string, &channel, 0, 0},
        {"prefix", NULL, "0",
         "bump every topic that starts with PATH (sends {\"path\":...,\"match\":\"prefix\"})",
         &wm_value_bool, &prefix, 0, 0},
        WM_SETTING_MAX_PATH("longest path accepted, in bytes", &max_path),
        {"timeout-ms", "WAYMARK_BUMP_TIMEOUT_MS", "3000",
         "Redis connect and command timeout, in milliseconds", &wm_value_int, &timeout_ms,
         100, 600000},
    };
    const size_t n_settings = sizeof settings / sizeof settings[0];

    status = wm_config_main(prog,
                            "waymark-bump [--prefix] PATH...\n"
                            "Publishes a bump of each PATH (e.g. /users/1) on the Redis "
                            "channel, as a backend would.",
                            settings, n_settings, argc, argv, &first);
    if (status >= 0)
        goto out;
    status = 1;
    if (first >= argc) {
        fprintf(stderr, "%s: no PATH given (usage: %s [--prefix] PATH..., see --help)\n",
                prog, prog);
        status = 2;
        goto out;
    }
    /* All or nothing: a typo in the third path must not leave two bumps sent. */
    for (int i = first; i < argc; i++) {
        const char *why = "invalid";
        if (wm_path_check(argv[i], strlen(argv[i]), (size_t)max_path, &why) < 0) {
            fprintf(stderr, "%s: bad path \"%s\": %s\n", prog, argv[i], why);
            status = 2;
            goto out;
        }
    }
    /* a connection reset mid-write must be an error message and exit 1, not a signal */
    signal(SIGPIPE, SIG_IGN);
    c = connect_redis(&redis, timeout_ms);
    if (!c)
        goto out;
    for (int i = first; i < argc; i++) {
        char *payload = payload_for(argv[i], prefix);
        if (!payload) {
            fprintf(stderr, "%s: out of memory\n", prog);
            goto out;
        }
        redisReply *r = redisCommand(c, "PUBLISH %s %s", channel, payload);
        free(payload);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "%s: PUBLISH %s failed: %s\n", prog, argv[i],
                    !r ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            if (r)
                freeReplyObject(r);
            goto out;
        }
        printf("bumped %s (%lld receivers)\n", argv[i], r->integer);
        freeReplyObject(r);
    }
    status = 0;
out:
    if (c)
        redisFree(c);
    wm_config_free(settings, n_settings);
    return status;
}

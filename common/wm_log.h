/* wm_log: one logfmt line per event on stderr:
 *   ts=2026-11-28T17:51:08.123Z level=warn proc=gateway msg="bad bump" kind=json peer=...
 * The key=value part is printf-formatted by the caller. As a last line of defence the
 * finished line is scrubbed: anything after "Bearer ", "Authorization", "token=",
 * "ticket=", "PHPSESSID=" up to the next space or quote becomes "[redacted]". Callers
 * still never pass tokens. */
#ifndef WM_LOG_H
#define WM_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wm_log_level { WM_LOG_DEBUG = 0, WM_LOG_INFO, WM_LOG_WARN, WM_LOG_ERROR };

void wm_log_init(const char *proc, enum wm_log_level level);
/* Parses "debug" | "info" | "warn" | "error". Returns 0 or -EINVAL. */
int wm_log_level_parse(const char *s, enum wm_log_level *out);
bool wm_log_enabled(enum wm_log_level level);
/* msg is quoted for you; kv_fmt may be NULL or "" */
void wm_log(enum wm_log_level level, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define wm_debug(msg, ...) wm_log(WM_LOG_DEBUG, msg, __VA_ARGS__)
#define wm_info(msg, ...)  wm_log(WM_LOG_INFO, msg, __VA_ARGS__)
#define wm_warn(msg, ...)  wm_log(WM_LOG_WARN, msg, __VA_ARGS__)
#define wm_error(msg, ...) wm_log(WM_LOG_ERROR, msg, __VA_ARGS__)

/* Writes s as a logfmt value into out (quoted and escaped when it has spaces, quotes,
 * '=' or control characters), truncated to fit outlen. Returns out. For peer-supplied
 * strings (paths, reasons) in log lines: wm_log_value(buf, sizeof buf, path). out may be
 * s itself (escaped in place). */
const char *wm_log_value(char *out, size_t outlen, const char *s);

/* Rate limiter for logging bad input: allows one line per interval; counts the rest. */
struct wm_ratelimit {
    int64_t last_ms;        /* 0 = never logged */
    uint64_t suppressed;    /* lines suppressed since the last allowed one */
};
/* Returns true when a line may be logged now (then *suppressed tells how many were
 * skipped since the last one, and the counter restarts). */
bool wm_ratelimit_allow(struct wm_ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                        uint64_t *suppressed);

#endif

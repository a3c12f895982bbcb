/* wm_log: logfmt lines on stderr, one fputs per line so concurrent processes sharing a
 * terminal or a docker log never interleave mid-line; plus the bad-input rate limiter. */
#include "wm_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "wm_buf.h"
#include "wm_chars.h"

static char log_proc[32] = "waymark";
static enum wm_log_level log_level = WM_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void wm_log_init(const char *proc, enum wm_log_level level)
{
    if (proc)
        snprintf(log_proc, sizeof log_proc, "%s", proc);
    if (level >= WM_LOG_DEBUG && level <= WM_LOG_ERROR)
        log_level = level;
}

int wm_log_level_parse(const char *s, enum wm_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; i <= WM_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum wm_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = WM_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

bool wm_log_enabled(enum wm_log_level level)
{
    return level >= log_level;
}

static bool needs_quoting(const char *s)
{
    if (!*s)
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!wm_char_visible(*p) || *p == '"' || *p == '=' || *p == '\\')
            return true;
    return false;
}

const char *wm_log_value(char *out, size_t outlen, const char *s)
{
    if (!out || outlen == 0)
        return out;
    if (!s)
        s = "";
    /* Callers may escape a buffer in place (out == s): work from a copy then. */
    char *copy = NULL;
    if (s >= out && s < out + outlen)
        s = copy = wm_strdup(s);
    out[0] = '\0';
    if (!needs_quoting(s)) {
        snprintf(out, outlen, "%s", s);
        free(copy);
        return out;
    }
    if (outlen < 3) {
        free(copy);
        return out;
    }
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char piece[5];
        size_t plen;
        switch (*p) {
        case '"':  memcpy(piece, "\\\"", 2); plen = 2; break;
        case '\\': memcpy(piece, "\\\\", 2); plen = 2; break;
        case '\n': memcpy(piece, "\\n", 2); plen = 2; break;
        case '\r': memcpy(piece, "\\r", 2); plen = 2; break;
        case '\t': memcpy(piece, "\\t", 2); plen = 2; break;
        default:
            /* Peer-supplied bytes may be invalid UTF-8: escape all non-ASCII so a log
             * line stays one valid line. */
            if (!wm_char_printable(*p)) {
                snprintf(piece, sizeof piece, "\\x%02x", *p);
                plen = 4;
            } else {
                piece[0] = (char)*p;
                plen = 1;
            }
        }
        if (o + plen + 2 > outlen)   /* keep room for the closing quote and NUL */
            break;
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o++] = '"';
    out[o] = '\0';
    free(copy);
    return out;
}

/* Secrets are cut from the marker to the next space or quote (or, when the value is
 * quoted, to the closing quote). */
static void scrub(struct wm_buf *line)
{
    static const char *const markers[] = {"Bearer ", "Authorization", "token=", "ticket=",
                                          "PHPSESSID="};
    struct wm_buf out = WM_BUF_INIT;
    const char *s = line->data;
    size_t i = 0, n = line->len;
    bool changed = false;

    while (i < n) {
        size_t mlen = 0;
        for (size_t k = 0; k < sizeof markers / sizeof markers[0]; k++) {
            size_t l = strlen(markers[k]);
            if (i + l <= n && strncasecmp(s + i, markers[k], l) == 0) {
                mlen = l;
                break;
            }
        }
        if (!mlen) {
            wm_buf_append(&out, s + i, 1);
            i++;
            continue;
        }
        wm_buf_append(&out, s + i, mlen);
        i += mlen;
        size_t j = i;
        if (j < n && s[j] == '"') {
            j++;
            while (j < n && s[j] != '"') {
                if (s[j] == '\\' && j + 1 < n)
                    j++;
                j++;
            }
            if (j > i + 1) {
                wm_buf_puts(&out, "\"[redacted]");
                changed = true;
                i = j;
            }
            continue;
        }
        while (j < n && s[j] != ' ' && s[j] != '"' && s[j] != '\n')
            j++;
        if (j > i) {
            wm_buf_puts(&out, "[redacted]");
            changed = true;
            i = j;
        }
    }
    if (changed) {
        wm_buf_free(line);
        *line = out;
    } else {
        wm_buf_free(&out);
    }
}

void wm_log(enum wm_log_level level, const char *msg, const char *kv_fmt, ...)
{
    if (!wm_log_enabled(level))
        return;
    if (level < WM_LOG_DEBUG || level > WM_LOG_ERROR)
        level = WM_LOG_ERROR;

    struct wm_buf line = WM_BUF_INIT;
    struct timespec ts;
    struct tm tm;
    char quoted[1024];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    wm_buf_printf(&line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s msg=",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                  tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], log_proc);
    /* msg is always quoted, even a single word, so lines look alike */
    if (needs_quoting(msg ? msg : "")) {
        wm_buf_puts(&line, wm_log_value(quoted, sizeof quoted, msg));
    } else {
        wm_buf_printf(&line, "\"%s\"", msg);
    }
    if (kv_fmt && *kv_fmt) {
        va_list ap;
        char small[512];
        va_start(ap, kv_fmt);
        int len = vsnprintf(small, sizeof small, kv_fmt, ap);
        va_end(ap);
        if (len > 0) {
            wm_buf_puts(&line, " ");
            if ((size_t)len < sizeof small) {
                wm_buf_append(&line, small, (size_t)len);
            } else {
                wm_buf_reserve(&line, (size_t)len);
                va_start(ap, kv_fmt);
                vsnprintf(line.data + line.len, (size_t)len + 1, kv_fmt, ap);
                va_end(ap);
                line.len += (size_t)len;
            }
        }
    }
    /* A caller's value with a newline would split the event in two lines. */
    for (size_t i = 0; i < line.len; i++)
        if (line.data[i] == '\n' || line.data[i] == '\r')
            line.data[i] = ' ';
    scrub(&line);
    wm_buf_puts(&line, "\n");
    fputs(line.data, stderr);
    wm_buf_free(&line);
}

bool wm_ratelimit_allow(struct wm_ratelimit *rl, int64_t now_ms, int64_t interval_ms,
                        uint64_t *suppressed)
{
    if (rl->last_ms != 0 && now_ms - rl->last_ms < interval_ms) {
        rl->suppressed++;
        return false;
    }
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    /* 0 means "never logged", so a clock that reads 0 is nudged to 1 */
    rl->last_ms = now_ms ? now_ms : 1;
    return true;
}

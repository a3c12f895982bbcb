/* wm_path: the shape of an acceptable topic. A topic is appended to the backend origin,
 * so anything that could leave that origin or climb out of the base path is refused. */
#include "wm_path.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "wm_chars.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* True when seg[0..len) is "." or ".." once %2e/%2E are decoded. A ";param" suffix is
 * ignored first: some servers (Tomcat, Spring) strip it and then see "..". */
static bool is_dot_segment(const char *seg, size_t len)
{
    size_t dots = 0;
    const char *semi = memchr(seg, ';', len);
    if (semi)
        len = (size_t)(semi - seg);
    for (size_t i = 0; i < len;) {
        if (seg[i] == '.') {
            i++;
        } else if (seg[i] == '%' && i + 2 < len && seg[i + 1] == '2' &&
                   (seg[i + 2] == 'e' || seg[i + 2] == 'E')) {
            i += 3;
        } else {
            return false;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

int wm_path_check(const char *s, size_t len, size_t max_len, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (max_len == 0)
        max_len = WM_PATH_MAX_DEFAULT;
    if (!s || len == 0) {
        *why = "empty";
        return -EINVAL;
    }
    if (len > max_len) {
        *why = "too long";
        return -EINVAL;
    }
    if (s[0] != '/') {
        *why = "must start with /";
        return -EINVAL;
    }
    if (len > 1 && s[1] == '/') {
        *why = "must not start with //";
        return -EINVAL;
    }
    size_t base = wm_path_base_len(s, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!wm_char_visible(c)) {
            *why = c == ' ' ? "space" : "control or non-ASCII character";
            return -EINVAL;
        }
        if (c == '#' || c == '\\') {
            *why = c == '#' ? "fragment" : "backslash";
            return -EINVAL;
        }
        if (c != '%')
            continue;
        if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            *why = "bad percent-encoding";
            return -EINVAL;
        }
        int v = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
        if (v == 0) {
            *why = "encoded NUL";
            return -EINVAL;
        }
        /* An encoded slash or backslash in the path would let a decoding backend see
         * segments (and dot-segments) that this check did not. */
        if (i < base && (v == '/' || v == '\\')) {
            *why = "encoded slash";
            return -EINVAL;
        }
        i += 2;
    }
    for (size_t start = 1; start <= base;) {
        const char *slash = memchr(s + start, '/', base - start);
        size_t end = slash ? (size_t)(slash - s) : base;
        if (is_dot_segment(s + start, end - start)) {
            *why = "dot segment";
            return -EINVAL;
        }
        start = end + 1;
    }
    return 0;
}

size_t wm_path_base_len(const char *s, size_t len)
{
    const char *q = memchr(s, '?', len);
    return q ? (size_t)(q - s) : len;
}

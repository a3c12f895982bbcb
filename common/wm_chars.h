/* wm_chars: the byte classes that untrusted text is checked against before it goes
 * into an HTTP header, a log line or a path. ASCII only, independent of the locale. */
#ifndef WM_CHARS_H
#define WM_CHARS_H

#include <stdbool.h>
#include <stddef.h>

/* A control character: C0 (below 0x20) or DEL. Bytes >= 0x80 (UTF-8) are not. */
static inline bool wm_char_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* Printable ASCII, space included: 0x20 .. 0x7e. */
static inline bool wm_char_printable(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

/* Visible ASCII: printable and not space (0x21 .. 0x7e). */
static inline bool wm_char_visible(unsigned char c) { return c > 0x20 && c < 0x7f; }

/* True when any byte of s[0..len) is a control character (an embedded NUL included). */
static inline bool wm_has_ctl(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len; i++)
        if (wm_char_ctl(p[i]))
            return true;
    return false;
}

/* True when every byte of s[0..len) is printable ASCII. */
static inline bool wm_all_printable(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len; i++)
        if (!wm_char_printable(p[i]))
            return false;
    return true;
}

#endif

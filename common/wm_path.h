/* wm_path: what a topic (a path on the backend) may look like. The gateway checks
 * SUBSCRIBE topics with it, the dispatcher and waymark-bump check bumps with it. */
#ifndef WM_PATH_H
#define WM_PATH_H

#include <stddef.h>

#define WM_PATH_MAX_DEFAULT 2048

/* Returns 0 when s[0..len) is an acceptable topic: starts with '/', not with "//",
 * printable ASCII only (no space, control characters, '#', '\\' or bytes >= 0x7f;
 * non-ASCII must be percent-encoded), at most max_len bytes (0: WM_PATH_MAX_DEFAULT),
 * no "." or ".." segment in the path part (also percent-encoded: %2e, any case; also
 * before a ";param", which some servers strip), well-formed %XX escapes only, no
 * encoded NUL (%00) anywhere and no encoded '/' or '\\' (%2f, %5c) in the path part.
 * Otherwise -EINVAL and *why (static string, why may be NULL) says what is wrong. */
int wm_path_check(const char *s, size_t len, size_t max_len, const char **why);

/* Length of the path part (up to the first '?', or len). */
size_t wm_path_base_len(const char *s, size_t len);

#endif

/* dp_bump: turns one Redis message payload into a validated bump (README.md "Bumps"):
 * a plain path, or a JSON object {"path": ..., "match": "exact"|"prefix"}.
 * Pure parsing, no I/O: waymark-bump and the unit tests use it as the engine does. */
#ifndef DP_BUMP_H
#define DP_BUMP_H

#include <stddef.h>

#include "wm_msg.h"

/* Why a payload was refused; also the label of bad_bumps_total{kind=...}. */
enum dp_bad_kind {
    DP_BAD_EMPTY = 0,    /* nothing but whitespace */
    DP_BAD_JSON,         /* starts with '{' but is not a JSON object with a string "path" */
    DP_BAD_PATH,         /* the path fails wm_path_check */
    DP_BAD_MATCH,        /* "match" is neither "exact" nor "prefix" */
    DP_BAD_TOO_LONG,     /* path (or the whole JSON payload) over the configured limit */
    DP_BAD_N
};

struct dp_bump {
    char *path;          /* owned, NUL-terminated, passed wm_path_check */
    enum wm_match match;
};

/* Slack allowed on top of max_path for a JSON payload (keys, quotes, "match", escapes)
 * before it is refused unparsed, so a huge payload never reaches the JSON parser. */
#define DP_BUMP_JSON_SLACK 256

/* Parses data[0..len) (need not be NUL-terminated; surrounding whitespace is ignored).
 * max_path 0 means WM_PATH_MAX_DEFAULT. On success returns 0 and out owns the path
 * (free with dp_bump_clear). On failure returns -EINVAL (empty, path, match),
 * -EBADMSG (json) or -EMSGSIZE (too long), sets *kind and *why (a short static or
 * library reason, valid until the next call), and leaves out cleared. */
int dp_bump_parse(const char *data, size_t len, size_t max_path, struct dp_bump *out,
                  enum dp_bad_kind *kind, const char **why);

/* Frees what b owns and zeroes it; safe on a zeroed bump. */
void dp_bump_clear(struct dp_bump *b);

/* "empty", "json", "path", "match", "too_long" (or "?"). */
const char *dp_bad_kind_name(enum dp_bad_kind k);

/* The names above in enum order, for wm_metric_labeled. */
extern const char *const dp_bad_kind_names[DP_BAD_N];

#endif

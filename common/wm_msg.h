/* wm_msg: the internal wire messages (docs/internals.md "Messages"), the only
 * module that touches msgpack for them. A message is one ZeroMQ frame holding a msgpack
 * array [version, type, instance, fields...]; ROUTER/DEALER add the routing frame. */
#ifndef WM_MSG_H
#define WM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_buf.h"

#define WM_MSG_VERSION 1

enum wm_msg_type {
    WM_MSG_BUMP = 1,      /* dispatcher -> gateways (PUB) */
    WM_MSG_RESYNC = 2,    /* dispatcher -> gateways: bumps may have been lost, refresh all */
    WM_MSG_HEARTBEAT = 3, /* dispatcher -> gateways (seq = last seq sent); gateway <-> fetcher (seq 0) */
    WM_MSG_READY = 4,     /* fetcher -> gateway: "I have `credits` free slots now" (absolute) */
    WM_MSG_JOB = 5,       /* gateway -> fetcher */
    WM_MSG_RESULT = 6,    /* fetcher -> gateway; each RESULT also returns one credit */
};

enum wm_match {
    WM_MATCH_EXACT = 0,   /* a path without '?' also matches the same path with any query */
    WM_MATCH_PREFIX = 1,  /* every topic that starts with path */
};

struct wm_header {
    char *name;           /* owned, NUL-terminated; lowercase in RESULT */
    char *value;          /* owned, NUL-terminated */
};

struct wm_msg {
    enum wm_msg_type type;
    uint64_t instance;    /* random id of the sending process, new at each start */
    union {
        struct { char *path; enum wm_match match; uint64_t seq; int64_t ts_ms; } bump;
        struct { uint64_t seq; char *reason; } resync;
        struct { uint64_t seq; } heartbeat;
        struct { uint32_t credits; } ready;
        struct {
            uint64_t id;
            char *url;                 /* full URL: backend origin + topic */
            struct wm_header *headers; /* request headers, e.g. {"Authorization","Bearer x"} */
            size_t n_headers;
            uint32_t timeout_ms;       /* whole transfer */
            uint32_t max_body;         /* bytes; a larger body becomes 502 */
        } job;
        struct {
            uint64_t id;
            int status;                /* HTTP status; 502/504 for failures made by the fetcher */
            struct wm_header *headers;
            size_t n_headers;
            uint8_t *body;             /* owned, may be NULL when body_len == 0 */
            size_t body_len;
            char *error;               /* owned; NULL unless the fetcher failed (short reason) */
            uint32_t elapsed_us;       /* time the fetch took inside the fetcher */
        } result;
    } u;
};

/* Appends the encoding of m to out. Returns 0, or -EINVAL for a message that cannot be
 * encoded (unknown type, NULL required string). Borrowed: m. */
int wm_msg_encode(const struct wm_msg *m, struct wm_buf *out);

/* Decodes one frame into out, which then owns copies of every string and the body
 * (free with wm_msg_clear). Returns 0, or a negative code with *why set to a static
 * reason ("not msgpack", "unknown version", "unknown type", "bad field", "trailing
 * bytes", ...): -EBADMSG for malformed input, -EPROTONOSUPPORT for another version.
 * Strings with an embedded NUL are rejected. On failure out is left cleared. */
int wm_msg_decode(const void *data, size_t len, struct wm_msg *out, const char **why);

/* Frees what out owns and zeroes it. Safe on a zeroed or already cleared message. */
void wm_msg_clear(struct wm_msg *m);

const char *wm_msg_type_name(enum wm_msg_type t);   /* "BUMP", ..., "?" */

#endif

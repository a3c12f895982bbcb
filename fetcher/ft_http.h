/* ft_http: the fetcher's HTTP side. Runs JOBs as GETs on one libcurl multi handle
 * (keep-alive pool to the backend) and turns every outcome into a RESULT. The pure
 * helpers (origin check, header lines, failure mapping) are exported for unit tests. */
#ifndef FT_HTTP_H
#define FT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "wm_msg.h"

/* Why a fetch did not produce the backend's own answer (metrics label values). */
enum ft_fail {
    FT_FAIL_NONE = 0,
    FT_FAIL_CONNECT,     /* DNS, refused, unreachable: 502 */
    FT_FAIL_TIMEOUT,     /* CURLE_OPERATION_TIMEDOUT: 504 */
    FT_FAIL_TOO_LARGE,   /* body over the job's max_body: 502 */
    FT_FAIL_ORIGIN,      /* URL outside WAYMARK_BACKEND_URL: 502, never requested */
    FT_FAIL_OTHER,       /* anything else: 502 */
    FT_FAIL_COUNT
};
const char *ft_fail_name(enum ft_fail f);   /* "none", "connect", "timeout", ... */

/* True when url is backend itself or starts with backend + "/" and the rest is a clean
 * path (wm_path_check: no dot segments, no "//", printable ASCII). backend has no
 * trailing '/' (wm_value_http_url strips it). On false *why says what is wrong. */
bool ft_http_url_allowed(const char *backend, const char *url, const char **why);

/* Response headers as the RESULT carries them: names lowercased, repeated names joined
 * with ", " in arrival order. */
struct ft_headers {
    struct wm_header *v;   /* owned */
    size_t n, cap;
    size_t bytes;          /* names + values, for the size cap */
    size_t last;           /* index of the header the last line touched (folding) */
};
#define FT_HEADERS_MAX_BYTES (64 * 1024)
#define FT_HEADERS_MAX_COUNT 200
/* curl's timers have millisecond granularity: a job timeout may fire this much early. */
#define FT_TIMER_SLACK_MS 10

/* Feeds one raw header line as CURLOPT_HEADERFUNCTION delivers it (may end in CRLF).
 * A status line ("HTTP/...") starts a new block and drops what was collected (the
 * headers of a 1xx or of a response we do not follow); a blank line is ignored; a line
 * starting with space/tab continues the previous value (obsolete folding); a line
 * without ':' or with a NUL byte is skipped. Returns 0, or -E2BIG when the block
 * passes FT_HEADERS_MAX_BYTES / FT_HEADERS_MAX_COUNT (the transfer should stop). */
int ft_headers_line(struct ft_headers *h, const char *line, size_t len);
/* The value for a lowercase name, or NULL. Borrowed. */
const char *ft_headers_get(const struct ft_headers *h, const char *name);
/* Hands the array over (caller owns it, h is left empty). */
void ft_headers_take(struct ft_headers *h, struct wm_header **v, size_t *n);
void ft_headers_clear(struct ft_headers *h);

/* What is known about a transfer that did not end with CURLE_OK. */
struct ft_fail_in {
    CURLcode rc;
    bool too_large;          /* the body passed max_body (write callback or MAXFILESIZE) */
    bool headers_too_large;  /* ft_headers_line said -E2BIG */
    const char *curl_msg;    /* CURLOPT_ERRORBUFFER text; "" or NULL: curl_easy_strerror */
    uint32_t timeout_ms, max_body, elapsed_ms;
};
/* Maps a failed transfer to the status and reason the RESULT carries (the reason is
 * also the synthesized body). A timeout well before the job's own deadline can only be
 * the connect timeout: a connect failure (502), not a slow backend (504). elapsed_ms is
 * measured from before curl starts, so it is never shorter than curl's own clock.
 * Returns 502 or 504 and fills *fail and reason. */
int ft_http_fail_map(const struct ft_fail_in *in, enum ft_fail *fail,
                     char *reason, size_t reason_len);

/* ---- the multi handle ---- */

struct ft_http_config {
    const char *backend_url;      /* borrowed for the life of the ft_http */
    uint32_t concurrency;         /* connection pool size to the backend */
    uint32_t connect_timeout_ms;
};

/* What a finished job reports besides its RESULT. */
struct ft_outcome {
    enum ft_fail fail;
    double seconds;               /* wall time of the transfer */
    size_t body_bytes;            /* bytes received (also for failures) */
};

/* A job finished. tag is what ft_http_submit was given (the engine's link index).
 * result is borrowed for the call only (ft_http frees it afterwards). */
typedef void (*ft_http_done_fn)(void *ud, size_t tag, const struct wm_msg *result,
                                const struct ft_outcome *o);

struct ft_http;

/* Returns NULL when curl cannot make a multi handle. curl_global_init must have run. */
struct ft_http *ft_http_new(const struct ft_http_config *cfg, ft_http_done_fn done, void *ud);
/* Aborts what is in flight without calling done; NULL-safe, clears *h. */
void ft_http_free(struct ft_http **h);

/* Starts the GET a JOB asks for. job is borrowed (what is needed is copied). A job that
 * cannot start (URL outside the origin, bad header, curl refusing an option) completes
 * at once: done is called before this returns. Returns 0 when started, 1 when completed
 * at once. */
int ft_http_submit(struct ft_http *h, const struct wm_msg *job, size_t tag);

/* Drives the transfers (curl_multi_perform) and reports finished ones through done.
 * Returns 0, or -EIO when the multi handle is broken. */
int ft_http_perform(struct ft_http *h);

/* Waits for socket activity on curl's sockets and the extra fds, at most timeout_ms
 * (curl shortens it to its own next timeout). Returns 0 or -EIO. */
int ft_http_wait(struct ft_http *h, struct curl_waitfd *extra, unsigned n_extra, int timeout_ms);

/* curl's own next deadline in ms (-1: none). */
long ft_http_timeout(struct ft_http *h);

size_t ft_http_in_flight(const struct ft_http *h);

#endif

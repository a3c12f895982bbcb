/* ft_http: runs JOBs as GETs on one libcurl multi handle (structure of curl's
 * docs/examples/multi-uv.c: each job owns its easy handle, CURLOPT_PRIVATE points back
 * to the job) and maps every outcome, including failures, to a RESULT. */
#include "ft_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "wm_buf.h"
#include "wm_chars.h"
#include "wm_path.h"
#include "wm_time.h"

/* Used when a JOB carries 0 for these (the gateway always sets them; a zero must not
 * mean "unbounded"). */
#define FT_DEFAULT_TIMEOUT_MS 10000u
#define FT_DEFAULT_MAX_BODY   (1024u * 1024u)
/* The rest of a URL after the backend origin may be long (query strings). */
#define FT_URL_PATH_MAX       65536
#define FT_URL_OUTSIDE        "url outside the backend origin"

struct ft_job {
    struct ft_http *h;
    CURL *easy;                    /* owned */
    struct curl_slist *req;        /* owned: request headers */
    uint64_t id;
    size_t tag;
    uint32_t timeout_ms, max_body;
    struct wm_buf body;
    struct ft_headers hdrs;
    bool too_large, headers_too_large;
    int64_t start_us;
    char errbuf[CURL_ERROR_SIZE];
    struct ft_job *prev, *next;    /* utlist: h->jobs */
};

struct ft_http {
    CURLM *multi;
    char *backend;                 /* owned copy */
    uint32_t connect_timeout_ms;
    ft_http_done_fn done;
    void *ud;
    struct ft_job *jobs;
    size_t in_flight;
};

static const char *const fail_names[FT_FAIL_COUNT] = {
    "none", "connect", "timeout", "too_large", "origin", "other",
};

const char *ft_fail_name(enum ft_fail f)
{
    return ((int)f >= 0 && (int)f < FT_FAIL_COUNT) ? fail_names[f] : "other";
}

bool ft_http_url_allowed(const char *backend, const char *url, const char **why)
{
    size_t blen = backend ? strlen(backend) : 0;
    const char *rest;

    *why = NULL;
    if (!blen || !url || strncmp(url, backend, blen) != 0) {
        *why = FT_URL_OUTSIDE;
        return false;
    }
    rest = url + blen;
    if (*rest == '\0')
        return true;
    /* "http://h:80" must not admit "http://h:8080/..." or "http://h:80@evil/". */
    if (*rest != '/') {
        *why = FT_URL_OUTSIDE;
        return false;
    }
    /* curl would normalise "/api/../admin" to "/admin", leaving the base path. */
    if (wm_path_check(rest, strlen(rest), FT_URL_PATH_MAX, why) != 0)
        return false;
    return true;
}

/* ---- response headers ---- */

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Appends sep + text to *value (a NUL-terminated heap string). */
static void value_append(char **value, const char *sep, const char *text, size_t len)
{
    size_t old = strlen(*value), slen = strlen(sep);

    *value = wm_realloc(*value, old + slen + len + 1);
    memcpy(*value + old, sep, slen);
    memcpy(*value + old + slen, text, len);
    (*value)[old + slen + len] = '\0';
}

int ft_headers_line(struct ft_headers *h, const char *line, size_t len)
{
    const char *colon, *name, *value;
    size_t nlen, vlen, i;

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        ft_headers_clear(h);   /* a new response block: 1xx or the final one */
        return 0;
    }
    if (len == 0 || memchr(line, '\0', len))
        return 0;
    if (line[0] == ' ' || line[0] == '\t') {
        value = line;
        vlen = len;
        trim(&value, &vlen);
        if (h->n == 0 || vlen == 0)
            return 0;
        if (h->bytes + vlen + 1 > FT_HEADERS_MAX_BYTES)
            return -E2BIG;
        value_append(&h->v[h->last].value, " ", value, vlen);
        h->bytes += vlen + 1;
        return 0;
    }
    colon = memchr(line, ':', len);
    if (!colon)
        return 0;
    name = line;
    nlen = (size_t)(colon - line);
    trim(&name, &nlen);
    if (nlen == 0)
        return 0;
    value = colon + 1;
    vlen = len - (size_t)(value - line);
    trim(&value, &vlen);

    if (h->bytes + nlen + vlen + 2 > FT_HEADERS_MAX_BYTES)
        return -E2BIG;
    for (i = 0; i < h->n; i++) {
        if (strlen(h->v[i].name) == nlen && strncasecmp(h->v[i].name, name, nlen) == 0) {
            value_append(&h->v[i].value, ", ", value, vlen);
            h->bytes += vlen + 2;
            h->last = i;
            return 0;
        }
    }
    if (h->n >= FT_HEADERS_MAX_COUNT)
        return -E2BIG;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = wm_realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n].name = wm_strndup(name, nlen);
    for (i = 0; i < nlen; i++)
        h->v[h->n].name[i] = (char)tolower((unsigned char)h->v[h->n].name[i]);
    h->v[h->n].value = wm_strndup(value, vlen);
    h->last = h->n++;
    h->bytes += nlen + vlen;
    return 0;
}

const char *ft_headers_get(const struct ft_headers *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].name, name) == 0)
            return h->v[i].value;
    return NULL;
}

void ft_headers_take(struct ft_headers *h, struct wm_header **v, size_t *n)
{
    *v = h->v;
    *n = h->n;
    memset(h, 0, sizeof *h);
}

void ft_headers_clear(struct ft_headers *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* ---- failure mapping ---- */

int ft_http_fail_map(const struct ft_fail_in *in, enum ft_fail *fail,
                     char *reason, size_t reason_len)
{
    const char *msg = (in->curl_msg && in->curl_msg[0]) ? in->curl_msg
                                                         : curl_easy_strerror(in->rc);

    if (in->too_large || in->rc == CURLE_FILESIZE_EXCEEDED) {
        *fail = FT_FAIL_TOO_LARGE;
        snprintf(reason, reason_len, "response body exceeds %u bytes", in->max_body);
        return 502;
    }
    if (in->headers_too_large) {
        *fail = FT_FAIL_OTHER;
        snprintf(reason, reason_len, "response headers too large");
        return 502;
    }
    switch (in->rc) {
    case CURLE_OPERATION_TIMEDOUT:
        if ((uint64_t)in->elapsed_ms + FT_TIMER_SLACK_MS < in->timeout_ms) {
            *fail = FT_FAIL_CONNECT;
            snprintf(reason, reason_len, "connect failed: %s", msg);
            return 502;
        }
        *fail = FT_FAIL_TIMEOUT;
        snprintf(reason, reason_len, "timeout after %u ms", in->timeout_ms);
        return 504;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        *fail = FT_FAIL_CONNECT;
        snprintf(reason, reason_len, "connect failed: %s", msg);
        return 502;
    default:
        *fail = FT_FAIL_OTHER;
        snprintf(reason, reason_len, "fetch failed: %s", msg);
        return 502;
    }
}

/* ---- curl callbacks ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct ft_job *j = ud;
    size_t n = size * nmemb;

    if (n > j->max_body - j->body.len) {   /* body.len <= max_body always */
        j->too_large = true;
        return 0;   /* CURLE_WRITE_ERROR: stop reading */
    }
    wm_buf_append(&j->body, p, n);
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct ft_job *j = ud;
    size_t n = size * nmemb;

    if (ft_headers_line(&j->hdrs, p, n) != 0) {
        j->headers_too_large = true;
        return 0;
    }
    return n;
}

/* ---- jobs ---- */

static void job_free(struct ft_job **jp)
{
    struct ft_job *j = *jp;

    if (!j)
        return;
    if (j->easy)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->req);
    wm_buf_free(&j->body);
    ft_headers_clear(&j->hdrs);
    free(j);
    *jp = NULL;
}

/* Reports a result made by the fetcher itself (no backend answer). */
static void complete_failure(struct ft_http *h, uint64_t id, size_t tag, int status,
                             enum ft_fail fail, const char *reason, int64_t start_us,
                             size_t got)
{
    struct wm_msg r = {0};
    struct ft_outcome o = {0};
    int64_t us = wm_now_us() - start_us;

    r.type = WM_MSG_RESULT;
    r.u.result.id = id;
    r.u.result.status = status;
    r.u.result.body = (uint8_t *)reason;
    r.u.result.body_len = strlen(reason);
    r.u.result.error = (char *)reason;
    r.u.result.elapsed_us = us > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    o.fail = fail;
    o.seconds = (double)us / 1e6;
    o.body_bytes = got;
    h->done(h->ud, tag, &r, &o);
}

/* A transfer ended: builds its RESULT, reports it, frees the job. */
static void job_finish(struct ft_http *h, struct ft_job *j, CURLcode rc)
{
    struct wm_msg r = {0};
    struct ft_outcome o = {0};
    int64_t us = wm_now_us() - j->start_us;
    long status = 0;

    curl_multi_remove_handle(h->multi, j->easy);
    DL_DELETE(h->jobs, j);
    h->in_flight--;
    if (rc == CURLE_OK)
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 100 && status <= 999) {
        r.type = WM_MSG_RESULT;
        r.u.result.id = j->id;
        r.u.result.status = (int)status;
        ft_headers_take(&j->hdrs, &r.u.result.headers, &r.u.result.n_headers);
        r.u.result.body = (uint8_t *)j->body.data;
        r.u.result.body_len = j->body.len;
        r.u.result.elapsed_us = us > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        o.seconds = (double)us / 1e6;
        o.body_bytes = j->body.len;
        h->done(h->ud, j->tag, &r, &o);
        ft_headers_clear(&(struct ft_headers){.v = r.u.result.headers,
                                              .n = r.u.result.n_headers});
    } else {
        struct ft_fail_in in = {
            .rc = rc == CURLE_OK ? CURLE_WEIRD_SERVER_REPLY : rc,
            .too_large = j->too_large,
            .headers_too_large = j->headers_too_large,
            .curl_msg = j->errbuf,
            .timeout_ms = j->timeout_ms,
            .max_body = j->max_body,
            .elapsed_ms = (uint32_t)(us / 1000 > UINT32_MAX ? UINT32_MAX : us / 1000),
        };
        char reason[CURL_ERROR_SIZE + 64];
        enum ft_fail fail;
        int st;

        st = ft_http_fail_map(&in, &fail, reason, sizeof reason);
        complete_failure(h, j->id, j->tag, st, fail, reason, j->start_us, j->body.len);
    }
    job_free(&j);
}

/* Header names are tokens; values must not smuggle a line break into the request. */
static bool header_ok(const struct wm_header *hd)
{
    if (!hd->name || !hd->value || !hd->name[0])
        return false;
    for (const char *p = hd->name; *p; p++)
        if (!wm_char_visible((unsigned char)*p) || *p == ':')
            return false;
    for (const char *p = hd->value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

/* Builds the request header list: exactly the job's headers. An empty value is sent
 * as "Name;" (curl's spelling; "Name:" would remove the header). */
static int build_headers(const struct wm_msg *job, struct curl_slist **out)
{
    struct curl_slist *list = NULL, *tmp;
    struct wm_buf line = WM_BUF_INIT;
    int rc = 0;

    for (size_t i = 0; i < job->u.job.n_headers; i++) {
        const struct wm_header *hd = &job->u.job.headers[i];

        if (!header_ok(hd)) {
            rc = -EINVAL;
            goto out;
        }
        wm_buf_reset(&line);
        if (hd->value[0])
            wm_buf_printf(&line, "%s: %s", hd->name, hd->value);
        else
            wm_buf_printf(&line, "%s;", hd->name);
        tmp = curl_slist_append(list, line.data);
        if (!tmp) {
            rc = -ENOMEM;
            goto out;
        }
        list = tmp;
    }
    *out = list;
    list = NULL;
out:
    curl_slist_free_all(list);
    wm_buf_free(&line);
    return rc;
}

static bool setup_easy(struct ft_http *h, struct ft_job *j, const char *url)
{
    CURL *e = j->easy;
    CURLcode rc = CURLE_OK;

#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PRIVATE, j);
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* The request carries a user's token: never hand it to a proxy from the env. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->max_body);
    SET(CURLOPT_HTTPHEADER, j->req);
    SET(CURLOPT_USERAGENT, "waymark-fetcher");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, j);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, j);
    SET(CURLOPT_ERRORBUFFER, j->errbuf);
    /* HTTPS may negotiate HTTP/2: wait for a multiplexed stream rather than opening a
     * connection per transfer (h2c is not used: broken on reuse in curl 7.88). */
    if (strncmp(url, "https:", 6) == 0)
        SET(CURLOPT_PIPEWAIT, 1L);
#undef SET
    return rc == CURLE_OK;
}

int ft_http_submit(struct ft_http *h, const struct wm_msg *job, size_t tag)
{
    struct ft_job *j = NULL;
    const char *why = NULL;
    int64_t start = wm_now_us();
    int rc;

    if (!ft_http_url_allowed(h->backend, job->u.job.url, &why)) {
        char reason[128];

        if (strcmp(why, FT_URL_OUTSIDE) == 0)
            snprintf(reason, sizeof reason, "%s", why);
        else
            snprintf(reason, sizeof reason, "bad url path: %s", why);
        complete_failure(h, job->u.job.id, tag, 502, FT_FAIL_ORIGIN, reason, start, 0);
        return 1;
    }
    j = wm_calloc(1, sizeof *j);
    j->h = h;
    j->id = job->u.job.id;
    j->tag = tag;
    j->start_us = start;
    j->timeout_ms = job->u.job.timeout_ms ? job->u.job.timeout_ms : FT_DEFAULT_TIMEOUT_MS;
    j->max_body = job->u.job.max_body ? job->u.job.max_body : FT_DEFAULT_MAX_BODY;
    rc = build_headers(job, &j->req);
    if (rc != 0) {
        complete_failure(h, j->id, tag, 502, FT_FAIL_OTHER,
                         rc == -EINVAL ? "bad request header" : "out of memory", start, 0);
        job_free(&j);
        return 1;
    }
    j->easy = curl_easy_init();
    if (!j->easy || !setup_easy(h, j, job->u.job.url) ||
        curl_multi_add_handle(h->multi, j->easy) != CURLM_OK) {
        complete_failure(h, j->id, tag, 502, FT_FAIL_OTHER, "cannot start the request",
                         start, 0);
        job_free(&j);
        return 1;
    }
    DL_APPEND(h->jobs, j);
    h->in_flight++;
    return 0;
}

int ft_http_perform(struct ft_http *h)
{
    int running = 0, left = 0;
    CURLMsg *m;

    if (curl_multi_perform(h->multi, &running) != CURLM_OK)
        return -EIO;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        struct ft_job *j = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        if (j)
            job_finish(h, j, m->data.result);   /* m is invalid after this */
    }
    return 0;
}

int ft_http_wait(struct ft_http *h, struct curl_waitfd *extra, unsigned n_extra, int timeout_ms)
{
    return curl_multi_poll(h->multi, extra, n_extra, timeout_ms, NULL) == CURLM_OK ? 0 : -EIO;
}

long ft_http_timeout(struct ft_http *h)
{
    long t = -1;

    if (curl_multi_timeout(h->multi, &t) != CURLM_OK)
        return -1;
    return t;
}

size_t ft_http_in_flight(const struct ft_http *h)
{
    return h->in_flight;
}

struct ft_http *ft_http_new(const struct ft_http_config *cfg, ft_http_done_fn done, void *ud)
{
    struct ft_http *h = wm_calloc(1, sizeof *h);
    long conc = cfg->concurrency ? (long)cfg->concurrency : 64;

    h->multi = curl_multi_init();
    if (!h->multi)
        goto fail;
    /* The cache must hold every connection the pool uses, or curl closes and reopens
     * connections under load (docs/libraries.md: 50k connections for 50k requests). */
    if (curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, conc) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conc) != CURLM_OK)
        goto fail;
    h->backend = wm_strdup(cfg->backend_url);
    h->connect_timeout_ms = cfg->connect_timeout_ms;
    h->done = done;
    h->ud = ud;
    return h;
fail:
    ft_http_free(&h);
    return NULL;
}

void ft_http_free(struct ft_http **hp)
{
    struct ft_http *h = *hp;
    struct ft_job *j, *tmp;

    if (!h)
        return;
    DL_FOREACH_SAFE(h->jobs, j, tmp) {
        curl_multi_remove_handle(h->multi, j->easy);
        DL_DELETE(h->jobs, j);
        job_free(&j);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h->backend);
    free(h);
    *hp = NULL;
}

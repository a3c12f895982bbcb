/* wm_config: settings from defaults, the environment and --long-options (in that order,
 * later wins), with the value parsers every process shares. */
#include "wm_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wm_buf.h"
#include "wm_chars.h"
#include "wm_log.h"
#include "wm_proto.h"

#define MAX_ENDPOINTS 64

static int fail(char *err, size_t n, const char *reason)
{
    if (err && n)
        snprintf(err, n, "%s", reason);
    return -EINVAL;
}

static void replace_str(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

/* Parses a decimal port in [1, 65535] from s[0..len). Returns -1 when bad. */
static int parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* Splits "host[:port]" (host may be "[v6]") from a[0..len). On success *host is a heap
 * copy without brackets and *port is the port or -1 when absent. */
static int split_host_port(const char *a, size_t len, char **host, int *port,
                           const char **why)
{
    const char *hs, *he, *rest;
    *host = NULL;
    *port = -1;
    if (len == 0) {
        *why = "host required";
        return -EINVAL;
    }
    if (a[0] == '[') {
        const char *close = memchr(a, ']', len);
        if (!close || close == a + 1) {
            *why = "bad IPv6 address";
            return -EINVAL;
        }
        hs = a + 1;
        he = close;
        for (const char *p = hs; p < he; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') {
                *why = "bad IPv6 address";
                return -EINVAL;
            }
        rest = close + 1;
    } else {
        hs = a;
        he = a;
        while (he < a + len && *he != ':')
            he++;
        if (he == hs) {
            *why = "host required";
            return -EINVAL;
        }
        for (const char *p = hs; p < he; p++)
            if (!host_char(*p)) {
                *why = "bad character in host";
                return -EINVAL;
            }
        rest = he;
    }
    if (rest < a + len) {
        if (*rest != ':') {
            *why = "junk after host";
            return -EINVAL;
        }
        *port = parse_port(rest + 1, (size_t)(a + len - rest - 1));
        if (*port < 0) {
            *why = "port must be a number from 1 to 65535";
            return -EINVAL;
        }
    }
    *host = wm_strndup(hs, (size_t)(he - hs));
    return 0;
}

static int parse_string(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    if (!v || !*v)
        return fail(err, n, "must not be empty");
    replace_str((char **)s->target, wm_strdup(v));
    return 0;
}

static void free_string(void *target)
{
    replace_str(target, NULL);
}

const struct wm_value_type wm_value_string = {parse_string, free_string, false};

static int parse_int(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    int64_t lo = s->min, hi = s->max;
    char *end = NULL;

    if (lo == 0 && hi == 0) {   /* no range given: any int64 */
        lo = INT64_MIN;
        hi = INT64_MAX;
    }
    if (!v || !*v || isspace((unsigned char)*v))
        return fail(err, n, "must be an integer");
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end != '\0' || x < lo || x > hi) {
        if (err && n)
            snprintf(err, n, "must be an integer from %" PRId64 " to %" PRId64, lo, hi);
        return -EINVAL;
    }
    *(int64_t *)s->target = (int64_t)x;
    return 0;
}

const struct wm_value_type wm_value_int = {parse_int, NULL, false};

static int parse_bool(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; v && i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *(bool *)s->target = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *(bool *)s->target = false;
            return 0;
        }
    }
    return fail(err, n, "must be 1/0, true/false, yes/no or on/off");
}

const struct wm_value_type wm_value_bool = {parse_bool, NULL, true};

static int parse_log_level(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    enum wm_log_level lvl;
    if (wm_log_level_parse(v, &lvl) != 0)
        return fail(err, n, "must be debug, info, warn or error");
    *(enum wm_log_level *)s->target = lvl;
    return 0;
}

const struct wm_value_type wm_value_log_level = {parse_log_level, NULL, false};

static int parse_http_url(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    const char *why = NULL;
    char *host = NULL;
    int port;
    size_t skip;

    if (!v || !*v)
        return fail(err, n, "must not be empty");
    if (strncasecmp(v, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(v, "https://", 8) == 0)
        skip = 8;
    else
        return fail(err, n, "must start with http:// or https://");
    if (wm_has_ctl(v, strlen(v)) || strchr(v, ' '))
        return fail(err, n, "must not contain spaces or control characters");
    if (strpbrk(v, "?#"))
        return fail(err, n, "must not have a query or fragment");
    const char *auth = v + skip;
    size_t alen = strcspn(auth, "/");
    if (memchr(auth, '@', alen))
        return fail(err, n, "must not contain user:password@");
    if (split_host_port(auth, alen, &host, &port, &why) != 0)
        return fail(err, n, why);
    free(host);
    if (strchr(auth + alen, '\\'))
        return fail(err, n, "must not contain a backslash");

    /* Keep the text as given, with the scheme lowercased and trailing '/' removed, so
     * "origin + topic" never has a double slash. */
    size_t len = strlen(v);
    while (len > skip + alen && v[len - 1] == '/')
        len--;
    char *out = wm_strndup(v, len);
    for (size_t i = 0; i < skip; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    replace_str((char **)s->target, out);
    return 0;
}

const struct wm_value_type wm_value_http_url = {parse_http_url, free_string, false};

static int hexv(char c)
{
    if (isdigit((unsigned char)c))
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into a heap string; NULL when malformed or holding NUL. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = wm_malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0 ||
            (s[i + 1] == '0' && s[i + 2] == '0')) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static int parse_redis_url(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    struct wm_redis_url *r = s->target;
    const char *why = NULL;
    char *host = NULL, *password = NULL;
    int port = -1, db = 0;
    int rc = -EINVAL;

    if (!v || !*v)
        return fail(err, n, "must not be empty");
    if (strncasecmp(v, "rediss://", 9) == 0)
        return fail(err, n, "TLS (rediss://) is not supported");
    if (strncasecmp(v, "redis://", 8) != 0)
        return fail(err, n, "must look like redis://[:password@]host[:port][/db]");
    if (wm_has_ctl(v, strlen(v)) || strchr(v, ' '))
        return fail(err, n, "must not contain spaces or control characters");
    const char *a = v + 8;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (const char *p = a; p < a + alen; p++)
        if (*p == '@')
            at = p;   /* the last '@': a password may hold an unencoded '@' */
    if (at) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        if (!colon) {
            fail(err, n, "user info must be :password (redis://:password@host)");
            goto cleanup;
        }
        if (colon != a && !((size_t)(colon - a) == 7 && strncmp(a, "default", 7) == 0)) {
            fail(err, n, "only the default user is supported (redis://:password@host)");
            goto cleanup;
        }
        password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!password || !*password) {
            fail(err, n, "bad password encoding");
            goto cleanup;
        }
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    if (split_host_port(a, alen, &host, &port, &why) != 0) {
        fail(err, n, why);
        goto cleanup;
    }
    const char *rest = a + alen;
    if (*rest == '/' && rest[1] != '\0') {
        char *end = NULL;
        errno = 0;
        long x = strtol(rest + 1, &end, 10);
        if (errno || *end != '\0' || !isdigit((unsigned char)rest[1]) || x < 0 || x > 100000) {
            fail(err, n, "database must be a number");
            goto cleanup;
        }
        db = (int)x;
    } else if (*rest == '/') {
        db = 0;
    } else if (*rest != '\0') {
        fail(err, n, "must not have a query or fragment");
        goto cleanup;
    }
    replace_str(&r->host, host);
    replace_str(&r->password, password);
    host = password = NULL;
    r->port = port > 0 ? port : 6379;
    r->db = db;
    rc = 0;
cleanup:
    free(host);
    free(password);
    return rc;
}

static void free_redis_url(void *target)
{
    struct wm_redis_url *r = target;
    replace_str(&r->host, NULL);
    replace_str(&r->password, NULL);
}

const struct wm_value_type wm_value_redis_url = {parse_redis_url, free_redis_url, false};

static int parse_listen(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    struct wm_listen *l = s->target;
    const char *why = NULL;
    char *host = NULL;
    int port;

    if (!v || !*v)
        return fail(err, n, "must not be empty");
    if (strcmp(v, "0") == 0) {
        replace_str(&l->host, NULL);
        l->enabled = false;
        l->port = 0;
        return 0;
    }
    size_t len = strlen(v);
    if (strspn(v, "0123456789") == len) {
        port = parse_port(v, len);
        host = wm_strdup("127.0.0.1");
    } else if (v[0] == ':') {
        port = parse_port(v + 1, len - 1);
        host = wm_strdup("127.0.0.1");
    } else {
        if (split_host_port(v, len, &host, &port, &why) != 0)
            return fail(err, n, why);
        if (port < 0) {
            free(host);
            return fail(err, n, "must be host:port, :port, port, or 0 to disable");
        }
    }
    if (port < 0) {
        free(host);
        return fail(err, n, "port must be a number from 1 to 65535");
    }
    replace_str(&l->host, host);
    l->enabled = true;
    l->port = port;
    return 0;
}

static void free_listen(void *target)
{
    struct wm_listen *l = target;
    replace_str(&l->host, NULL);
}

const struct wm_value_type wm_value_listen = {parse_listen, free_listen, false};

const char *wm_listen_text(const struct wm_listen *l, char *buf, size_t len)
{
    if (l->enabled)
        snprintf(buf, len, "%s:%d", l->host, l->port);
    else
        snprintf(buf, len, "off");
    return buf;
}

static void endpoints_clear(struct wm_endpoints *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->list[i]);
    free(e->list);
    e->list = NULL;
    e->n = 0;
}

/* Checks one ZeroMQ endpoint; returns a static reason or NULL when fine. */
static const char *endpoint_problem(const char *ep, size_t len)
{
    if (len > 7 && strncmp(ep, "ipc://", 6) == 0)
        return NULL;
    if (len > 9 && strncmp(ep, "inproc://", 9) == 0)
        return NULL;
    if (len > 6 && strncmp(ep, "tcp://", 6) == 0) {
        const char *a = ep + 6;
        size_t alen = len - 6;
        char *host = NULL;
        int port = -1;
        const char *why = NULL;
        if (alen > 2 && a[0] == '*' && a[1] == ':') {
            port = parse_port(a + 2, alen - 2);
            return port < 0 ? "tcp port must be a number from 1 to 65535" : NULL;
        }
        if (split_host_port(a, alen, &host, &port, &why) != 0)
            return why;
        free(host);
        return port < 0 ? "tcp:// needs host:port" : NULL;
    }
    return "each endpoint must be tcp://host:port, ipc://path or inproc://name";
}

static int parse_endpoints(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    struct wm_endpoints *e = s->target;
    struct wm_endpoints out = {NULL, 0};

    if (!v || !*v)
        return fail(err, n, "must not be empty");
    if (wm_has_ctl(v, strlen(v)))
        return fail(err, n, "must not contain control characters");
    const char *p = v;
    while (1) {
        size_t len = strcspn(p, ",");
        const char *start = p;
        /* spaces around commas are allowed: "tcp://a:1, tcp://b:2" */
        while (len && *start == ' ') {
            start++;
            len--;
        }
        while (len && start[len - 1] == ' ')
            len--;
        const char *why = len == 0 ? "empty endpoint in list" : endpoint_problem(start, len);
        if (!why && out.n >= MAX_ENDPOINTS)
            why = "too many endpoints";
        if (!why && memchr(start, ' ', len))
            why = "endpoint must not contain spaces";
        if (why) {
            endpoints_clear(&out);
            return fail(err, n, why);
        }
        out.list = wm_realloc(out.list, (out.n + 1) * sizeof *out.list);
        out.list[out.n++] = wm_strndup(start, len);
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    endpoints_clear(e);
    *e = out;
    return 0;
}

static void free_endpoints(void *target)
{
    endpoints_clear(target);
}

const struct wm_value_type wm_value_endpoints = {parse_endpoints, free_endpoints, false};

static bool tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse_auth_header(const struct wm_setting *s, const char *v, char *err, size_t n)
{
    struct wm_auth_header *h = s->target;

    if (!v || !*v)
        return fail(err, n, "must not be empty");
    const char *colon = strchr(v, ':');
    if (!colon || colon == v)
        return fail(err, n, "must look like \"Name: value with {token}\"");
    for (const char *p = v; p < colon; p++)
        if (!tchar(*p))
            return fail(err, n, "header name must be a valid HTTP token");
    const char *val = colon + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    if (wm_has_ctl(val, strlen(val)))
        return fail(err, n, "header value must not contain control characters");
    const char *tok = strstr(val, "{token}");
    if (!tok || strstr(tok + 7, "{token}"))
        return fail(err, n, "header value must contain {token} exactly once");
    replace_str(&h->name, wm_strndup(v, (size_t)(colon - v)));
    replace_str(&h->prefix, wm_strndup(val, (size_t)(tok - val)));
    replace_str(&h->suffix, wm_strdup(tok + 7));
    return 0;
}

static void free_auth_header(void *target)
{
    struct wm_auth_header *h = target;
    replace_str(&h->name, NULL);
    replace_str(&h->prefix, NULL);
    replace_str(&h->suffix, NULL);
}

const struct wm_value_type wm_value_auth_header = {parse_auth_header, free_auth_header, false};

char *wm_auth_header_value(const struct wm_auth_header *h, const char *token)
{
    struct wm_buf b = WM_BUF_INIT;
    wm_buf_puts(&b, h->prefix ? h->prefix : "");
    wm_buf_puts(&b, token ? token : "");
    wm_buf_puts(&b, h->suffix ? h->suffix : "");
    return b.data;
}

void wm_config_free(const struct wm_setting *settings, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (settings[i].target && settings[i].type->free)
            settings[i].type->free(settings[i].target);
}

static void print_help(const char *prog, const char *summary, const struct wm_setting *settings,
                       size_t n)
{
    printf("Usage: %s [options]\n", prog);
    if (summary && *summary)
        printf("%s\n", summary);
    printf("\nEvery option can also be set with its environment variable; options win.\n\n");
    for (size_t i = 0; i < n; i++) {
        const struct wm_setting *s = &settings[i];
        printf("  --%s%s\n", s->name, s->type->flag ? "[=BOOL]" : "=VALUE");
        printf("      %s\n", s->help ? s->help : "");
        printf("      env %s, default: %s\n", s->env ? s->env : "(none)",
               s->def ? (*s->def ? s->def : "\"\"") : "(none)");
    }
    printf("  --help\n      show this help and exit\n");
    printf("  --version\n      print the version and exit\n");
}

static void report(const char *prog, const struct wm_setting *s, const char *reason)
{
    if (s->env)
        fprintf(stderr, "%s: bad --%s (%s): %s\n", prog, s->name, s->env, reason);
    else
        fprintf(stderr, "%s: bad --%s: %s\n", prog, s->name, reason);
}

static int apply(const char *prog, const struct wm_setting *s, const char *value)
{
    char err[256] = "";
    if (s->type->parse(s, value, err, sizeof err) != 0) {
        report(prog, s, err[0] ? err : "invalid value");
        return -EINVAL;
    }
    return 0;
}

static const struct wm_setting *find(const struct wm_setting *settings, size_t n,
                                     const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(settings[i].name) == len && strncmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

/* One option given on the command line, kept until every option has been scanned. */
struct given {
    const struct wm_setting *s;
    const char *value;
};

/* Scans argv[1..] without applying anything, so --help and --version work even when
 * the environment holds a bad value. Fills opts (one per option) and *pos (the first
 * positional argument, or argc). Returns WM_CONFIG_OK, WM_CONFIG_EXIT after --help or
 * --version, or WM_CONFIG_ERROR (reported). */
static int scan_argv(const char *prog, const char *summary, const struct wm_setting *settings,
                     size_t n, int argc, char **argv, struct given *opts, size_t *n_opts,
                     int *pos)
{
    *n_opts = 0;
    *pos = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            *pos = i + 1;
            return WM_CONFIG_OK;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            *pos = i;
            return WM_CONFIG_OK;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(prog, summary, settings, n);
            return WM_CONFIG_EXIT;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", prog, WM_VERSION);
            return WM_CONFIG_EXIT;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, a);
            return WM_CONFIG_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct wm_setting *s = find(settings, n, name, nlen);
        const char *value = eq ? eq + 1 : NULL;
        if (!s && !eq && nlen > 3 && strncmp(name, "no-", 3) == 0) {
            /* --no-flag for a bool */
            s = find(settings, n, name + 3, nlen - 3);
            if (s && s->type->flag)
                value = "0";
            else
                s = NULL;
        }
        if (!s) {
            fprintf(stderr, "%s: unknown option --%.*s (see --help)\n", prog, (int)nlen, name);
            return WM_CONFIG_ERROR;
        }
        if (!value) {
            if (s->type->flag) {
                value = "1";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                report(prog, s, "needs a value");
                return WM_CONFIG_ERROR;
            }
        }
        opts[*n_opts].s = s;
        opts[(*n_opts)++].value = value;
    }
    return WM_CONFIG_OK;
}

/* Applies the defaults, then the environment, then the scanned options (which win).
 * Returns 0, or -EINVAL after reporting the first bad value. */
static int apply_all(const char *prog, const struct wm_setting *settings, size_t n,
                     const struct given *opts, size_t n_opts)
{
    for (size_t i = 0; i < n; i++)
        if (settings[i].def && apply(prog, &settings[i], settings[i].def) != 0)
            return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        /* An empty variable counts as unset: compose files often write "VAR=". */
        const char *e = settings[i].env ? getenv(settings[i].env) : NULL;
        if (e && *e && apply(prog, &settings[i], e) != 0)
            return -EINVAL;
    }
    for (size_t i = 0; i < n_opts; i++)
        if (apply(prog, opts[i].s, opts[i].value) != 0)
            return -EINVAL;
    return 0;
}

int wm_config_parse(const char *prog, const char *summary, const struct wm_setting *settings,
                    size_t n, int argc, char **argv, int *first_positional)
{
    struct given *opts = wm_calloc((size_t)(argc > 0 ? argc : 1), sizeof *opts);
    size_t n_opts = 0;
    int pos = argc;
    int rc;

    if (first_positional)
        *first_positional = argc;
    rc = scan_argv(prog, summary, settings, n, argc, argv, opts, &n_opts, &pos);
    if (rc != WM_CONFIG_OK)
        goto cleanup;
    rc = WM_CONFIG_ERROR;
    if (pos < argc && !first_positional) {
        fprintf(stderr, "%s: unexpected argument %s (see --help)\n", prog, argv[pos]);
        goto cleanup;
    }
    if (apply_all(prog, settings, n, opts, n_opts) != 0)
        goto cleanup;
    if (first_positional)
        *first_positional = pos;
    rc = WM_CONFIG_OK;
cleanup:
    free(opts);
    return rc;
}

int wm_config_main(const char *prog, const char *summary, const struct wm_setting *settings,
                   size_t n, int argc, char **argv, int *first_positional)
{
    switch (wm_config_parse(prog, summary, settings, n, argc, argv, first_positional)) {
    case WM_CONFIG_OK:
        return -1;
    case WM_CONFIG_EXIT:
        return 0;
    default:
        return 2;
    }
}

int wm_config_refuse(const char *prog, const struct wm_setting *settings, size_t n,
                     const char *name, const char *why)
{
    const struct wm_setting *s = find(settings, n, name, strlen(name));
    if (s)
        report(prog, s, why);
    else
        fprintf(stderr, "%s: %s\n", prog, why);
    return 2;
}

/* wm_config: table-driven settings. Each process lists its settings once (long option,
 * environment variable, default, help, parser); wm_config_parse applies the default,
 * then the environment, then --long-options (which win), and prints --help/--version.
 * Modules never read the environment: they take the filled-in config struct. */
#ifndef WM_CONFIG_H
#define WM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wm_setting;

/* Parses value into s->target. Returns 0, or -EINVAL with a short reason in err
 * (no setting name: the caller adds it). Must accept the default text. */
typedef int (*wm_setting_parse_fn)(const struct wm_setting *s, const char *value,
                                   char *err, size_t errlen);

struct wm_setting {
    const char *name;          /* long option without dashes: "backend-url" */
    const char *env;           /* "WAYMARK_BACKEND_URL" */
    const char *def;           /* default, as text */
    const char *help;          /* one line */
    wm_setting_parse_fn parse;
    void *target;              /* type depends on the parser, see below */
    int64_t min, max;          /* range for wm_parse_int; ignored by the others */
};

/* Parsers (target type in brackets). Strings are heap copies owned by the config;
 * an old value is freed when replaced, so parsing default then env then option leaks
 * nothing. Free them with wm_config_free. */
int wm_parse_string(const struct wm_setting *s, const char *v, char *err, size_t n);    /* [char *] any non-empty */
int wm_parse_int(const struct wm_setting *s, const char *v, char *err, size_t n);       /* [int64_t] decimal in [min,max]; min == max == 0: any int64 */
int wm_parse_bool(const struct wm_setting *s, const char *v, char *err, size_t n);      /* [bool] 1/0 true/false yes/no on/off */
int wm_parse_log_level(const struct wm_setting *s, const char *v, char *err, size_t n); /* [enum wm_log_level] */
int wm_parse_http_url(const struct wm_setting *s, const char *v, char *err, size_t n);  /* [char *] http:// or https:// origin, optional base path, no query/fragment; trailing '/' removed */
int wm_parse_redis_url(const struct wm_setting *s, const char *v, char *err, size_t n); /* [struct wm_redis_url] */
int wm_parse_listen(const struct wm_setting *s, const char *v, char *err, size_t n);    /* [struct wm_listen] "host:port", ":port", "port"; "0" = disabled */
int wm_parse_endpoints(const struct wm_setting *s, const char *v, char *err, size_t n); /* [struct wm_endpoints] comma list of tcp:// ipc:// inproc:// */
int wm_parse_auth_header(const struct wm_setting *s, const char *v, char *err, size_t n); /* [struct wm_auth_header] "Name: value with {token}" */

struct wm_redis_url {
    char *host;       /* owned */
    int port;
    char *password;   /* owned, NULL when none; never logged */
    int db;           /* SELECT after connect when > 0 */
};

struct wm_listen {
    bool enabled;     /* false for "0" */
    char *host;       /* owned; "127.0.0.1" for the ":port" and "port" forms */
    int port;
};

struct wm_endpoints {
    char **list;      /* owned array of owned strings */
    size_t n;
};

struct wm_auth_header {
    char *name;       /* owned, e.g. "Authorization" */
    char *prefix;     /* owned, text before {token}, e.g. "Bearer " */
    char *suffix;     /* owned, text after {token}, usually "" */
};

/* Outcome of wm_config_parse. */
enum { WM_CONFIG_OK = 0, WM_CONFIG_EXIT = 1, WM_CONFIG_ERROR = 2 };

/* Parses defaults, environment, then argv. "--name value" and "--name=value" forms;
 * --help prints usage (prog, summary, every setting with env and default) to stdout,
 * --version prints "prog VERSION". A bool setting may be given alone ("--prefix") for
 * true; others need a value. Options come first; the first non-option argument (or
 * "--") ends them and its index goes to *first_positional (NULL: any is an error). Bad values print ONE line to stderr,
 *   prog: bad --backend-url (WAYMARK_BACKEND_URL): must start with http:// or https://
 * and return WM_CONFIG_ERROR (the caller exits 2). WM_CONFIG_EXIT means exit 0.
 * An empty environment variable counts as unset; a bool also takes "--no-name"; a
 * setting with def NULL keeps whatever its target held. */
int wm_config_parse(const char *prog, const char *summary, const struct wm_setting *settings,
                    size_t n, int argc, char **argv, int *first_positional);

/* Frees every string a parser stored for these settings (built-in parsers only). */
void wm_config_free(const struct wm_setting *settings, size_t n);

/* Returns a heap string "prefix + token + suffix" (the header VALUE). */
char *wm_auth_header_value(const struct wm_auth_header *h, const char *token);

#endif

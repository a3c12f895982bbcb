/* wm_config: table-driven settings. Each process lists its settings once (long option,
 * environment variable, default, help, value type); wm_config_parse applies the default,
 * then the environment, then --long-options (which win), and prints --help/--version.
 * Modules never read the environment: they take the filled-in config struct. */
#ifndef WM_CONFIG_H
#define WM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wm_setting;

/* A kind of value: how text becomes the target, and how to release what that stored. */
struct wm_value_type {
    /* Parses value into s->target. Returns 0, or -EINVAL with a short reason in err
     * (no setting name: the caller adds it). Must accept the default text. */
    int (*parse)(const struct wm_setting *s, const char *value, char *err, size_t errlen);
    void (*free)(void *target);   /* frees what parse stored; NULL: owns nothing */
    bool flag;                    /* "--name" alone means true, "--no-name" false */
};

struct wm_setting {
    const char *name;          /* long option without dashes: "backend-url" */
    const char *env;           /* "WAYMARK_BACKEND_URL" */
    const char *def;           /* default, as text */
    const char *help;          /* one line */
    const struct wm_value_type *type;
    void *target;              /* its C type depends on the value type, see below */
    int64_t min, max;          /* range for wm_value_int; ignored by the others */
};

/* Value types (target type in brackets). Strings are heap copies owned by the config;
 * an old value is freed when replaced, so parsing default then env then option leaks
 * nothing. Free them with wm_config_free. */
extern const struct wm_value_type wm_value_string;      /* [char *] any non-empty */
extern const struct wm_value_type wm_value_int;         /* [int64_t] decimal in [min,max]; min == max == 0: any int64 */
extern const struct wm_value_type wm_value_bool;        /* [bool] 1/0 true/false yes/no on/off */
extern const struct wm_value_type wm_value_log_level;   /* [enum wm_log_level] */
extern const struct wm_value_type wm_value_http_url;    /* [char *] http:// or https:// origin, optional base path, no query/fragment; trailing '/' removed */
extern const struct wm_value_type wm_value_redis_url;   /* [struct wm_redis_url] */
extern const struct wm_value_type wm_value_listen;      /* [struct wm_listen] "host:port", ":port", "port"; "0" = disabled */
extern const struct wm_value_type wm_value_endpoints;   /* [struct wm_endpoints] comma list of tcp:// ipc:// inproc:// */
extern const struct wm_value_type wm_value_auth_header; /* [struct wm_auth_header] "Name: value with {token}" */

/* Rows every daemon has. Each daemon's metrics listener has its own default port; more
 * is appended to the help line ("" for nothing). The max-path default is
 * WM_PATH_MAX_DEFAULT. */
#define WM_SETTING_LOG_LEVEL(target)                                                       \
    {"log-level", "WAYMARK_LOG_LEVEL", "info", "debug, info, warn or error",                \
     &wm_value_log_level, (target), 0, 0}
#define WM_SETTING_METRICS_LISTEN(def, more, target)                                       \
    {"metrics-listen", "WAYMARK_METRICS_LISTEN", (def),                                     \
     "host:port for GET /metrics and /healthz; 0 disables" more, &wm_value_listen,         \
     (target), 0, 0}
#define WM_SETTING_MAX_PATH(help, target)                                                  \
    {"max-path", "WAYMARK_MAX_PATH", "2048", (help), &wm_value_int, (target), 16, 65536}

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

/* Frees whatever the value types stored for these settings. */
void wm_config_free(const struct wm_setting *settings, size_t n);

/* For main(): wm_config_parse as an exit status: -1 to carry on, 0 after --help or
 * --version, 2 after a bad setting (reported). first_positional as there (NULL for a
 * daemon, which takes no arguments). */
int wm_config_main(const char *prog, const char *summary, const struct wm_setting *settings,
                   size_t n, int argc, char **argv, int *first_positional);

/* Reports a value that parsed but that this program cannot use, in the one-line form
 * of a bad value ("prog: bad --name (ENV): why"). Returns 2, the exit status. */
int wm_config_refuse(const char *prog, const struct wm_setting *settings, size_t n,
                     const char *name, const char *why);

/* "host:port" of an enabled listener, "off" for a disabled one; written to buf. */
const char *wm_listen_text(const struct wm_listen *l, char *buf, size_t len);

/* Returns a heap string "prefix + token + suffix" (the header VALUE). */
char *wm_auth_header_value(const struct wm_auth_header *h, const char *token);

#endif

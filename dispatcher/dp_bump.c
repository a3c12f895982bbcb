/* dp_bump: parses and validates a bump payload from Redis. Every refusal carries a kind
 * (for the metric label and the once-a-minute log line) and a short reason. */
#include "dp_bump.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wm_buf.h"
#include "wm_path.h"

const char *const dp_bad_kind_names[DP_BAD_N] = {
    [DP_BAD_EMPTY] = "empty",
    [DP_BAD_JSON] = "json",
    [DP_BAD_PATH] = "path",
    [DP_BAD_MATCH] = "match",
    [DP_BAD_TOO_LONG] = "too_long",
};

const char *dp_bad_kind_name(enum dp_bad_kind k)
{
    if ((int)k < 0 || k >= DP_BAD_N)
        return "?";
    return dp_bad_kind_names[k];
}

void dp_bump_clear(struct dp_bump *b)
{
    if (!b)
        return;
    free(b->path);
    b->path = NULL;
    b->match = WM_MATCH_EXACT;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Checks a candidate path (not NUL-terminated, may hold NULs) and copies it into out. */
static int take_path(const char *p, size_t n, size_t max_path, struct dp_bump *out,
                     enum dp_bad_kind *kind, const char **why)
{
    if (n > max_path) {
        *kind = DP_BAD_TOO_LONG;
        *why = "path too long";
        return -EMSGSIZE;
    }
    if (wm_path_check(p, n, max_path, why) < 0) {
        *kind = DP_BAD_PATH;
        return -EINVAL;
    }
    out->path = wm_strndup(p, n);
    return 0;
}

static int parse_json(const char *p, size_t n, size_t max_path, struct dp_bump *out,
                      enum dp_bad_kind *kind, const char **why)
{
    /* The library's message names the line and column: useful to a backend developer.
     * Static because *why must outlive this call; the dispatcher is single-threaded. */
    static char jerr[JSON_ERROR_TEXT_LENGTH + 32];
    json_error_t err;
    json_t *root = NULL;
    int rc = -EBADMSG;

    *kind = DP_BAD_JSON;
    if (n > max_path + DP_BUMP_JSON_SLACK) {
        *kind = DP_BAD_TOO_LONG;
        *why = "JSON payload too long";
        rc = -EMSGSIZE;
        goto out;
    }
    /* JSON_ALLOW_NUL: a "\u0000" in the path is then refused by wm_path_check as a
     * control character, with a clearer reason than a parse error. */
    root = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!root) {
        snprintf(jerr, sizeof jerr, "invalid JSON: %s", err.text);
        *why = jerr;
        goto out;
    }
    if (!json_is_object(root)) {
        *why = "not a JSON object";
        goto out;
    }
    json_t *path = json_object_get(root, "path");
    if (!path) {
        *why = "no \"path\"";
        goto out;
    }
    if (!json_is_string(path)) {
        *why = "\"path\" is not a string";
        goto out;
    }
    json_t *match = json_object_get(root, "match");
    enum wm_match m = WM_MATCH_EXACT;
    if (match && !json_is_null(match)) {
        const char *ms = json_string_value(match);   /* NULL when not a string */
        if (ms && strcmp(ms, "prefix") == 0) {
            m = WM_MATCH_PREFIX;
        } else if (!ms || strcmp(ms, "exact") != 0) {
            *kind = DP_BAD_MATCH;
            *why = "\"match\" must be \"exact\" or \"prefix\"";
            rc = -EINVAL;
            goto out;
        }
    }
    rc = take_path(json_string_value(path), json_string_length(path), max_path, out, kind,
                   why);
    if (rc == 0)
        out->match = m;
out:
    json_decref(root);
    return rc;
}

int dp_bump_parse(const char *data, size_t len, size_t max_path, struct dp_bump *out,
                  enum dp_bad_kind *kind, const char **why)
{
    enum dp_bad_kind kind_dummy;
    const char *why_dummy;
    int rc;

    if (!kind)
        kind = &kind_dummy;
    if (!why)
        why = &why_dummy;
    out->path = NULL;
    out->match = WM_MATCH_EXACT;
    if (max_path == 0)
        max_path = WM_PATH_MAX_DEFAULT;

    size_t start = 0, end = data ? len : 0;
    while (start < end && is_space(data[start]))
        start++;
    while (end > start && is_space(data[end - 1]))
        end--;
    if (start == end) {
        *kind = DP_BAD_EMPTY;
        *why = "empty payload";
        return -EINVAL;
    }
    if (data[start] == '{')
        rc = parse_json(data + start, end - start, max_path, out, kind, why);
    else
        rc = take_path(data + start, end - start, max_path, out, kind, why);
    if (rc < 0)
        dp_bump_clear(out);
    return rc;
}

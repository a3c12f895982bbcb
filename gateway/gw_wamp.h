/* gw_wamp: the WAMP v2 wire codec for both subprotocols. Incoming frames (JSON text or
 * msgpack binary) become one jansson array, so the session logic handles one form.
 * Outgoing messages are built as jansson arrays and encoded for the session's
 * serializer; EVENT has its own encoder because its body may be binary and because it
 * is encoded once per page and shared by every session that receives it. */
#ifndef GW_WAMP_H
#define GW_WAMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_buf.h"
#include "wm_msg.h"

enum gw_ser { GW_SER_JSON = 0, GW_SER_MSGPACK = 1 };

enum gw_wamp_code {
    WAMP_HELLO = 1, WAMP_WELCOME = 2, WAMP_ABORT = 3, WAMP_CHALLENGE = 4,
    WAMP_AUTHENTICATE = 5, WAMP_GOODBYE = 6, WAMP_ERROR = 8,
    WAMP_PUBLISH = 16, WAMP_PUBLISHED = 17,
    WAMP_SUBSCRIBE = 32, WAMP_SUBSCRIBED = 33, WAMP_UNSUBSCRIBE = 34,
    WAMP_UNSUBSCRIBED = 35, WAMP_EVENT = 36,
    WAMP_CALL = 48, WAMP_CANCEL = 49, WAMP_RESULT = 50,
    WAMP_REGISTER = 64, WAMP_REGISTERED = 65, WAMP_UNREGISTER = 66,
    WAMP_UNREGISTERED = 67, WAMP_INVOCATION = 68, WAMP_INTERRUPT = 69, WAMP_YIELD = 70,
};

#define WAMP_ID_MAX 9007199254740992LL   /* 2^53: every id is in [1, 2^53] */

/* Decodes one whole frame. Returns a new reference to a non-empty JSON array whose
 * first element is an integer message code, or NULL with *why set (static string:
 * "invalid JSON", "invalid msgpack", "not an array", "empty array", "no message code",
 * "trailing data", "too deep", "integer too large", "non-string key", "invalid UTF-8",
 * "invalid number"). Strings may hold NUL bytes (JSON "\u0000", msgpack str/bin): use
 * json_string_length where that matters. msgpack maps become objects (non-string
 * keys: error), bin becomes a string holding the bytes (json_stringn_nocheck), ext
 * becomes json_null() in arrays and is left out of objects (an option that is an
 * extension counts as absent), any integer width is accepted (uint64 above INT64_MAX:
 * error), float32/64 become reals. Nesting is limited to 32 levels. */
json_t *gw_wamp_decode(enum gw_ser ser, const void *data, size_t len, const char **why);

/* Appends the encoding of msg (a JSON array) to out. JSON: compact UTF-8 (jansson
 * JSON_COMPACT). msgpack: arrays, objects (str keys), strings (str), integers (the
 * smallest width), reals (float64), true/false/null. Returns 0 or -EINVAL. */
int gw_wamp_encode(enum gw_ser ser, const json_t *msg, struct wm_buf *out);

/* The page an EVENT carries (kwargs {status, headers, body[, error]}). Borrowed. */
struct gw_page {
    int status;
    const struct wm_header *headers;   /* names already lowercase */
    size_t n_headers;
    const uint8_t *body;
    size_t body_len;
    const char *error;                 /* NULL or a short reason */
};

/* Appends [36, sub, pub, {"topic": topic[, "retained": true]}, [], {"status": ...,
 * "headers": {name: value, ...}, "body": ...[, "error": "..."]}]. A body that is valid
 * UTF-8 is a string (msgpack str); otherwise msgpack bin, or in JSON the WAMP binary
 * convention "\u0000" + base64 (also used in JSON for a text body starting with NUL,
 * which would otherwise read as binary). Duplicate header names: the first wins (the
 * fetcher already joins repeated headers). Invalid UTF-8 in topic, header or error
 * becomes U+FFFD. Returns 0, or -EINVAL (out unchanged) for a NULL topic/page, an id
 * outside [1, WAMP_ID_MAX] or an unknown ser. */
int gw_wamp_encode_event(enum gw_ser ser, uint64_t sub, uint64_t pub, const char *topic,
                         bool retained, const struct gw_page *page, struct wm_buf *out);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool gw_utf8_valid(const uint8_t *s, size_t len);

#endif

/* fuzz_gw_wamp: libFuzzer harness for the gateway's WAMP codec. Every input is decoded
 * as a JSON frame and as a msgpack frame; whatever decodes is encoded with both
 * serializers, and an encoding that succeeds must decode back to an equal message. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_wamp.h"
#include "wm_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when some object key holds a NUL byte (msgpack allows it; jansson's parser
 * refuses "\u0000" in a key, so such a message has no JSON round trip, and json_equal
 * cannot compare it). */
static bool has_nul_key(const json_t *v)
{
    size_t i;
    json_t *item;

    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            if (has_nul_key(item))
                return true;
    } else if (json_is_object(v)) {
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            if (memchr(json_object_iter_key(it), '\0', json_object_iter_key_len(it)) ||
                has_nul_key(json_object_iter_value(it)))
                return true;
        }
    }
    return false;
}

static void round_trip(const json_t *msg)
{
    for (int ser = GW_SER_JSON; ser <= GW_SER_MSGPACK; ser++) {
        struct wm_buf out = {0};
        const char *why = NULL;
        json_t *back;

        if (gw_wamp_encode((enum gw_ser)ser, msg, &out) != 0) {
            wm_buf_free(&out);
            continue;   /* e.g. a msgpack bin that is not UTF-8 has no JSON text form */
        }
        back = gw_wamp_decode((enum gw_ser)ser, out.data, out.len, &why);
        /* A msgpack bin decodes to a string of raw bytes, which the encoder writes back
         * as str; the decoder rightly refuses a str that is not UTF-8. */
        if (!back && why && (strcmp(why, "invalid UTF-8") == 0 ||
                             (ser == GW_SER_JSON && has_nul_key(msg)))) {
            wm_buf_free(&out);
            continue;
        }
        /* json_equal looks keys up as C strings, so it cannot compare NUL keys. */
        if (!back || (!has_nul_key(msg) && !json_equal(back, msg)))
            __builtin_trap();
        json_decref(back);
        wm_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int ser = GW_SER_JSON; ser <= GW_SER_MSGPACK; ser++) {
        const char *why = NULL;
        json_t *msg = gw_wamp_decode((enum gw_ser)ser, data, size, &why);

        if (!msg) {
            if (!why)
                __builtin_trap();
            continue;
        }
        /* The documented shape: a non-empty array starting with an integer code. */
        if (!json_is_array(msg) || json_array_size(msg) == 0 ||
            !json_is_integer(json_array_get(msg, 0)))
            __builtin_trap();
        round_trip(msg);
        json_decref(msg);
    }
    return 0;
}

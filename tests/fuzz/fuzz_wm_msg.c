/* fuzz_wm_msg: libFuzzer harness for the internal wire codec. Any input must decode or
 * be refused without a sanitizer report; whatever decodes must encode, and the encoding
 * must decode to a message that encodes to the same bytes (a stable round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wm_buf.h"
#include "wm_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wm_msg a = {0}, b = {0};
    struct wm_buf e1 = {0}, e2 = {0};
    const char *why = NULL;

    if (wm_msg_decode(data, size, &a, &why) != 0) {
        /* A refusal must say why and leave nothing behind. */
        if (!why || a.type != 0)
            __builtin_trap();
        goto out;
    }
    if (wm_msg_encode(&a, &e1) != 0)
        __builtin_trap();     /* decoded, so it is a valid message */
    if (wm_msg_decode(e1.data, e1.len, &b, &why) != 0)
        __builtin_trap();     /* our own encoding must decode */
    if (wm_msg_encode(&b, &e2) != 0 || e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0)
        __builtin_trap();     /* and be stable */
    if (a.type != b.type || a.instance != b.instance)
        __builtin_trap();
out:
    wm_msg_clear(&a);
    wm_msg_clear(&b);
    wm_buf_free(&e1);
    wm_buf_free(&e2);
    return 0;
}

/* wm_mpscan: a cheap structural scan of untrusted msgpack before msgpack-c unpacks it
 * (used for the internal wire messages and the wamp.2.msgpack subprotocol). */
#include "wm_mpscan.h"

#include <stdint.h>

/* Walks the msgpack structure without building it and checks that no array or map
 * announces more elements than bytes remain. msgpack-c allocates a container's element
 * array up front, so without this a 5-byte frame could ask for ~100 GB. */
bool wm_msgpack_plausible(const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i = 0;
    uint64_t pending = 1;

    while (pending) {
        if (i >= len)
            return false;
        uint8_t c = p[i++];
        uint64_t items = 0, skip = 0;
        size_t lenbytes = 0, extra = 0;
        bool is_map = false;
        pending--;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c <= 0x8f) {
            items = 2u * (c & 0x0f);
        } else if (c <= 0x9f) {
            items = c & 0x0f;
        } else if (c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; extra = 1; break;
            case 0xc8: lenbytes = 2; extra = 1; break;
            case 0xc9: lenbytes = 4; extra = 1; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2; items = 1; break;
            case 0xdd: lenbytes = 4; items = 1; break;
            case 0xde: lenbytes = 2; items = 1; is_map = true; break;
            case 0xdf: lenbytes = 4; items = 1; is_map = true; break;
            default: return false;   /* 0xc1 is never used */
            }
        }
        if (lenbytes) {
            if (len - i < lenbytes)
                return false;
            uint64_t v = 0;
            for (size_t k = 0; k < lenbytes; k++)
                v = (v << 8) | p[i + k];
            i += lenbytes;
            if (items)
                items = is_map ? 2 * v : v;
            else
                skip = v + extra;
        }
        if (skip > len - i)
            return false;
        i += skip;
        pending += items;
        if (pending > len - i)
            return false;
    }
    return true;
}

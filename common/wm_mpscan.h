/* wm_mpscan: a cheap structural scan of untrusted msgpack. msgpack-c allocates a
 * container's element array up front from the count it announces, so a 6-byte frame
 * claiming 4 billion items asks for ~128 GiB. Call this before msgpack_unpack_next. */
#ifndef WM_MPSCAN_H
#define WM_MPSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* True when the first object in data[0..len) is well-framed and no array or map
 * announces more elements than bytes remain. Iterative: any nesting depth is safe. */
bool wm_msgpack_plausible(const void *data, size_t len);

#endif

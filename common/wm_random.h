/* wm_random: random numbers from getrandom(): ids for instances, sessions and events,
 * and the jitter of wm_backoff. No ZeroMQ: drawing an id needs no socket library. */
#ifndef WM_RANDOM_H
#define WM_RANDOM_H

#include <stdint.h>

/* 64 random bits (clock and pid mixed when the kernel has no getrandom). */
uint64_t wm_random_u64(void);

/* A random 64-bit id in [1, 2^53] (instance ids, WAMP session ids, publication ids). */
uint64_t wm_random_id(void);

#endif

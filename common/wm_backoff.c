/* wm_backoff: capped exponential backoff; the jitter comes from wm_random. */
#include "wm_backoff.h"

#include "wm_random.h"

void wm_backoff_init(struct wm_backoff *b, uint32_t min_ms, uint32_t max_ms)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->cur_ms = min_ms;
}

uint32_t wm_backoff_next(struct wm_backoff *b)
{
    uint32_t base = b->cur_ms ? b->cur_ms : b->min_ms;
    b->cur_ms = base >= b->max_ms / 2 ? b->max_ms : base * 2;
    /* +-20% jitter so a fleet of fetchers does not reconnect in lockstep */
    uint64_t span = (uint64_t)base * 2 / 5;          /* 40% of base */
    uint64_t low = (uint64_t)base - (uint64_t)base / 5;
    uint64_t d = low + (span ? wm_random_u64() % (span + 1) : 0);
    return d ? (uint32_t)d : 1;
}

void wm_backoff_reset(struct wm_backoff *b)
{
    b->cur_ms = b->min_ms;
}

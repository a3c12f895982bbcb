/* wm_backoff: capped exponential reconnect backoff with jitter, shared by the Redis
 * subscriber and the fetcher's gateway links. */
#ifndef WM_BACKOFF_H
#define WM_BACKOFF_H

#include <stdint.h>

/* Capped exponential backoff with +-20% jitter. */
struct wm_backoff {
    uint32_t min_ms, max_ms, cur_ms;
};
void wm_backoff_init(struct wm_backoff *b, uint32_t min_ms, uint32_t max_ms);
uint32_t wm_backoff_next(struct wm_backoff *b);   /* delay to wait now; doubles the next */
void wm_backoff_reset(struct wm_backoff *b);

#endif

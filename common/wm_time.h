/* wm_time: clocks. Monotonic for timers and latencies, wall clock for logs and bumps. */
#ifndef WM_TIME_H
#define WM_TIME_H

#include <stdint.h>

int64_t wm_now_ms(void);      /* CLOCK_MONOTONIC, milliseconds */
int64_t wm_now_us(void);      /* CLOCK_MONOTONIC, microseconds */
int64_t wm_wall_ms(void);     /* CLOCK_REALTIME, milliseconds since the epoch */

#endif

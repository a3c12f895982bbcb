/* gw_wheel: a hashed timing wheel of one-second slots for per-connection deadlines
 * (join, idle ping and hang-up, close flush). Arming, re-arming and cancelling are O(1)
 * and touch no other connection; one advance costs O(slots passed + timers due). */
#ifndef GW_WHEEL_H
#define GW_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_WHEEL_SLOTS 64          /* one second each; a power of two */

/* Embedded in whatever owns the deadline (intrusive: the wheel allocates nothing). */
struct gw_wheel_timer {
    struct gw_wheel_timer *prev, *next;   /* utlist DL of one slot */
    int64_t due_s;                        /* the second it fires in */
    bool armed;
};

struct gw_wheel {
    struct gw_wheel_timer *slot[GW_WHEEL_SLOTS];
    int64_t now_s;                        /* every second before this one is done */
    size_t armed;
};

/* Starts the wheel at now_s (seconds on any monotonic clock). */
void gw_wheel_init(struct gw_wheel *w, int64_t now_s);

/* Arms t to fire in the advance that reaches due_s (an earlier due_s fires in the next
 * advance). A timer due beyond the wheel's span is parked in the last slot and fires
 * early: the callback re-checks its own deadlines and re-arms, so that is harmless.
 * Re-arming an armed timer moves it. */
void gw_wheel_arm(struct gw_wheel *w, struct gw_wheel_timer *t, int64_t due_s);
/* Disarms t; a no-op when it is not armed. */
void gw_wheel_cancel(struct gw_wheel *w, struct gw_wheel_timer *t);

/* Fires every timer due up to and including now_s, in due order, each disarmed before
 * its callback (which may re-arm it, arm or cancel others, or free its owner after
 * cancelling nothing more). Returns the number fired. */
size_t gw_wheel_advance(struct gw_wheel *w, int64_t now_s,
                        void (*fire)(struct gw_wheel_timer *t, void *ud), void *ud);

#endif

/* gw_wheel: hashed timing wheel. Slot i holds the timers due in the seconds congruent to
 * i; every armed timer is due within [now_s, now_s + GW_WHEEL_SLOTS - 2], so a slot only
 * ever holds timers of one second and the slot being fired is never re-filled. */
#include "gw_wheel.h"

#include <string.h>

#include <utlist.h>

#define SLOT(s) ((size_t)((uint64_t)(s) & (GW_WHEEL_SLOTS - 1)))

void gw_wheel_init(struct gw_wheel *w, int64_t now_s)
{
    memset(w, 0, sizeof *w);
    w->now_s = now_s;
}

void gw_wheel_arm(struct gw_wheel *w, struct gw_wheel_timer *t, int64_t due_s)
{
    gw_wheel_cancel(w, t);
    if (due_s < w->now_s)
        due_s = w->now_s;
    if (due_s > w->now_s + GW_WHEEL_SLOTS - 2)
        due_s = w->now_s + GW_WHEEL_SLOTS - 2;   /* parked: fires early, owner re-arms */
    t->due_s = due_s;
    t->armed = true;
    DL_APPEND(w->slot[SLOT(due_s)], t);
    w->armed++;
}

void gw_wheel_cancel(struct gw_wheel *w, struct gw_wheel_timer *t)
{
    if (!t->armed)
        return;
    DL_DELETE(w->slot[SLOT(t->due_s)], t);
    t->armed = false;
    t->prev = t->next = NULL;
    w->armed--;
}

size_t gw_wheel_advance(struct gw_wheel *w, int64_t now_s,
                        void (*fire)(struct gw_wheel_timer *t, void *ud), void *ud)
{
    size_t fired = 0;
    int64_t s = w->now_s;

    /* After a stall longer than the wheel, one lap fires everything (all are due). */
    if (now_s - s >= GW_WHEEL_SLOTS)
        s = now_s - GW_WHEEL_SLOTS + 1;
    for (; s <= now_s; s++) {
        struct gw_wheel_timer **head = &w->slot[SLOT(s)];

        w->now_s = s + 1;     /* re-arms from callbacks land in later slots */
        while (*head) {
            struct gw_wheel_timer *t = *head;

            gw_wheel_cancel(w, t);
            fired++;
            fire(t, ud);
        }
    }
    if (w->now_s <= now_s)
        w->now_s = now_s + 1;
    return fired;
}

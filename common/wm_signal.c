/* wm_signal: stop signals set a flag, SIGPIPE is ignored (see wm_signal.h). */
#include "wm_signal.h"

#include <string.h>

void wm_signal_on_stop(void (*handler)(int), struct wm_signal_saved *saved)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, saved ? &saved->old_int : NULL);
    sigaction(SIGTERM, &sa, saved ? &saved->old_term : NULL);
    signal(SIGPIPE, SIG_IGN);
}

static volatile sig_atomic_t stop_flag;

static void set_stop_flag(int sig)
{
    (void)sig;
    stop_flag = 1;   /* only this: the engine's loop notices it within its poll bound */
}

volatile sig_atomic_t *wm_signal_stop_flag(void)
{
    wm_signal_on_stop(set_stop_flag, NULL);
    return &stop_flag;
}

void wm_signal_restore(const struct wm_signal_saved *saved)
{
    sigaction(SIGINT, &saved->old_int, NULL);
    sigaction(SIGTERM, &saved->old_term, NULL);
}

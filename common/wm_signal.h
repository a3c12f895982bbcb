/* wm_signal: how every daemon reacts to signals. SIGINT and SIGTERM call the caller's
 * handler, which only sets a flag (the loop sees it, drains and exits); SIGPIPE is
 * ignored, so a peer closing mid-write is an error return, not a dead process. */
#ifndef WM_SIGNAL_H
#define WM_SIGNAL_H

#include <signal.h>

struct wm_signal_saved {
    struct sigaction old_int, old_term;
};

/* Installs handler for SIGINT and SIGTERM and ignores SIGPIPE. When saved is not NULL
 * the previous SIGINT/SIGTERM actions go there for wm_signal_restore. */
void wm_signal_on_stop(void (*handler)(int), struct wm_signal_saved *saved);
void wm_signal_restore(const struct wm_signal_saved *saved);

/* For a daemon's main(): installs a SIGINT/SIGTERM handler that only sets the returned
 * flag (the one per process), and ignores SIGPIPE. Pass the flag to the engine's run. */
volatile sig_atomic_t *wm_signal_stop_flag(void);

#endif

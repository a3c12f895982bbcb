/* wm_fdlimit: the open-files limit a process runs with. A server that holds one
 * descriptor per client raises its soft limit to the hard one at start and sizes its
 * session cap from the result instead of from a guess. */
#ifndef WM_FDLIMIT_H
#define WM_FDLIMIT_H

#include <stdint.h>

#define WM_FDLIMIT_CAP 1048576   /* an "unlimited" hard limit is taken as this */

/* Raises RLIMIT_NOFILE's soft limit to want, or to the hard limit when want <= 0 or
 * the hard limit is lower (never above WM_FDLIMIT_CAP; never lowers it). Returns the
 * soft limit now in force, or a negative errno when it cannot be read; when raising
 * fails, the old soft limit is returned and *raise_err gets the errno (0 when the raise
 * worked or was not needed). */
int64_t wm_fdlimit_raise(int64_t want, int *raise_err);

#endif

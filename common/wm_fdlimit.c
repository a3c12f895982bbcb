/* wm_fdlimit: RLIMIT_NOFILE raised to its hard limit. */
#include "wm_fdlimit.h"

#include <errno.h>
#include <sys/resource.h>

int64_t wm_fdlimit_raise(int64_t wanted, int *raise_err)
{
    struct rlimit rl;
    rlim_t want;

    *raise_err = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > WM_FDLIMIT_CAP ? WM_FDLIMIT_CAP
                                                                         : rl.rlim_max;
    if (wanted > 0 && (rlim_t)wanted < want)
        want = (rlim_t)wanted;
    if (rl.rlim_cur == RLIM_INFINITY)
        return WM_FDLIMIT_CAP;
    if (rl.rlim_cur >= want)
        return (int64_t)rl.rlim_cur;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *raise_err = errno;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
        return rl.rlim_cur == RLIM_INFINITY ? WM_FDLIMIT_CAP : (int64_t)rl.rlim_cur;
    }
    return (int64_t)want;
}

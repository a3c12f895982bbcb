/* wm_random: getrandom()-backed random bits and WAMP-safe ids, drawn from a small pool. */
#include "wm_random.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Fills buf from the kernel; returns false when the syscall is unavailable. */
static bool fill_from_kernel(unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = getrandom(buf + got, len - got, 0);

        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            return false;
    }
    return true;
}

/* Kernel randomness drawn 4 KiB at a time: one getrandom() per 512 ids instead of one
 * per session, subscription or EVENT (a syscall each, on a virtual machine several
 * microseconds). Processes are single-threaded, and ids are never drawn across fork. */
static unsigned char pool[4096];
static size_t pool_left;

uint64_t wm_random_u64(void)
{
    uint64_t x = 0;

    if (pool_left < sizeof x) {
        if (!fill_from_kernel(pool, sizeof pool)) {
            /* No entropy syscall (very old kernel or seccomp): mix clock and pid, which
             * is still unique enough for instance ids. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            x ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
            return x * 0x9E3779B97F4A7C15ull;
        }
        pool_left = sizeof pool;
    }
    pool_left -= sizeof x;
    memcpy(&x, pool + pool_left, sizeof x);
    memset(pool + pool_left, 0, sizeof x);   /* an id handed out is not kept around */
    return x;
}

uint64_t wm_random_id(void)
{
    /* WAMP ids must be exactly representable as doubles: [1, 2^53]. */
    uint64_t x;
    do {
        x = wm_random_u64() & ((UINT64_C(1) << 53) - 1);
    } while (x == 0);
    return x;
}

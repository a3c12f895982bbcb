/* wm_random: getrandom()-backed random bits and WAMP-safe ids. */
#include "wm_random.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t wm_random_u64(void)
{
    uint64_t x = 0;
    size_t got = 0;
    while (got < sizeof x) {
        ssize_t r = getrandom((char *)&x + got, sizeof x - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* No entropy syscall (very old kernel or seccomp): mix clock and pid, which
             * is still unique enough for instance ids. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            x ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
            x *= 0x9E3779B97F4A7C15ull;
            break;
        }
    }
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

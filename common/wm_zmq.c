/* wm_zmq: non-blocking whole-message receive and send on ZeroMQ sockets, random ids and
 * reconnect backoff. */
#include "wm_zmq.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int wm_zmq_recv(void *sock, struct wm_zframes *f)
{
    int rc = 0;
    bool more = true;

    f->n = 0;
    while (more) {
        zmq_msg_t scratch;
        /* Receive straight into the slot: zmq_msg_t must not be copied by value. */
        bool keep = f->n < WM_ZMQ_MAX_PARTS && rc == 0;
        zmq_msg_t *part = keep ? &f->part[f->n] : &scratch;
        zmq_msg_init(part);
        /* The first part may be absent (-EAGAIN); ZeroMQ delivers multipart messages
         * atomically, so once it is here the rest is too. */
        int r;
        do {
            r = zmq_msg_recv(part, sock, ZMQ_DONTWAIT);
        } while (r < 0 && zmq_errno() == EINTR);
        if (r < 0) {
            int e = zmq_errno();
            zmq_msg_close(part);
            if (rc == 0)
                rc = -e;
            break;
        }
        more = zmq_msg_more(part);
        if (keep) {
            f->n++;
        } else {
            zmq_msg_close(part);
            rc = -EMSGSIZE;
        }
    }
    if (rc != 0)
        wm_zframes_close(f);
    return rc;
}

void wm_zframes_close(struct wm_zframes *f)
{
    for (int i = 0; i < f->n; i++)
        zmq_msg_close(&f->part[i]);
    f->n = 0;
}

int wm_zmq_send(void *sock, const void *id, size_t idlen, const void *body, size_t len)
{
    int r;
    if (idlen > 0) {
        do {
            r = zmq_send(sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        } while (r < 0 && zmq_errno() == EINTR);
        if (r < 0)
            return -zmq_errno();
    }
    do {
        r = zmq_send(sock, body, len, ZMQ_DONTWAIT);
    } while (r < 0 && zmq_errno() == EINTR);
    return r < 0 ? -zmq_errno() : 0;
}

bool wm_zmq_readable(void *sock)
{
    int events = 0;
    size_t sz = sizeof events;
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz) != 0)
        return false;
    return (events & ZMQ_POLLIN) != 0;
}

int wm_zmq_fd(void *sock)
{
    int fd = -1;
    size_t sz = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &sz) != 0)
        return -1;
    return fd;
}

int wm_zmq_setint(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value) == 0 ? 0 : -zmq_errno();
}

static uint64_t random_u64(void)
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
        x = random_u64() & ((UINT64_C(1) << 53) - 1);
    } while (x == 0);
    return x;
}

void wm_backoff_init(struct wm_backoff *b, uint32_t min_ms, uint32_t max_ms)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->cur_ms = min_ms;
}

uint32_t wm_backoff_next(struct wm_backoff *b)
{
    uint32_t base = b->cur_ms ? b->cur_ms : b->min_ms;
    b->cur_ms = base >= b->max_ms / 2 ? b->max_ms : base * 2;
    /* +-20% jitter so a fleet of fetchers does not reconnect in lockstep */
    uint64_t span = (uint64_t)base * 2 / 5;          /* 40% of base */
    uint64_t low = (uint64_t)base - (uint64_t)base / 5;
    uint64_t d = low + (span ? random_u64() % (span + 1) : 0);
    return d ? (uint32_t)d : 1;
}

void wm_backoff_reset(struct wm_backoff *b)
{
    b->cur_ms = b->min_ms;
}

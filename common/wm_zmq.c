/* wm_zmq: non-blocking whole-message receive and send on ZeroMQ sockets. */
#include "wm_zmq.h"

#include <errno.h>
#include <string.h>

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

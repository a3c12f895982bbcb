/* wm_zmq: ZeroMQ helpers. ZMQ_FD is edge-triggered (docs/libraries.md): whoever polls it
 * must drain with wm_zmq_recv until -EAGAIN, and drain again after every send. */
#ifndef WM_ZMQ_H
#define WM_ZMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define WM_ZMQ_MAX_PARTS 2   /* [routing id] + body: no Waymark message has more */

struct wm_zframes {
    zmq_msg_t part[WM_ZMQ_MAX_PARTS];
    int n;                   /* parts received */
};

/* Receives one whole multipart message without blocking. Returns 0 (f holds n parts:
 * close with wm_zframes_close), -EAGAIN when nothing is waiting, -EMSGSIZE when the
 * message had more than WM_ZMQ_MAX_PARTS parts (it was read and discarded: count it),
 * or another -errno. */
int wm_zmq_recv(void *sock, struct wm_zframes *f);
void wm_zframes_close(struct wm_zframes *f);
static inline const void *wm_zframe_data(struct wm_zframes *f, int i) { return zmq_msg_data(&f->part[i]); }
static inline size_t wm_zframe_size(struct wm_zframes *f, int i) { return zmq_msg_size(&f->part[i]); }

/* Sends [id (when idlen > 0)] + body without blocking. Returns 0, -EAGAIN (high-water
 * mark reached: the message was not sent), -EHOSTUNREACH (ROUTER_MANDATORY: no such
 * peer), or another -errno. */
int wm_zmq_send(void *sock, const void *id, size_t idlen, const void *body, size_t len);

/* True when ZMQ_EVENTS has ZMQ_POLLIN. */
bool wm_zmq_readable(void *sock);
/* The socket's ZMQ_FD, or -1. */
int wm_zmq_fd(void *sock);

/* Sets an int socket option; returns 0 or -errno. */
int wm_zmq_setint(void *sock, int option, int value);

#endif

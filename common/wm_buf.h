/* wm_buf: a growable byte buffer shared by the codecs and the metrics text.
 * Allocation failure is fatal (abort): a push server that cannot allocate a
 * few KiB cannot do anything useful, and every caller would only abort too. */
#ifndef WM_BUF_H
#define WM_BUF_H

#include <stddef.h>
#include <stdint.h>

struct wm_buf {
    char *data;   /* owned; NUL-terminated after every append (not counted in len) */
    size_t len;
    size_t cap;
};

#define WM_BUF_INIT {NULL, 0, 0}

void wm_buf_reserve(struct wm_buf *b, size_t extra);   /* room for len+extra+1 */
void wm_buf_append(struct wm_buf *b, const void *data, size_t len);
void wm_buf_puts(struct wm_buf *b, const char *s);
void wm_buf_printf(struct wm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wm_buf_reset(struct wm_buf *b);                   /* len = 0, keeps memory */
void wm_buf_free(struct wm_buf *b);                    /* releases memory, zeroes */

/* Allocation helpers that abort on out-of-memory (see above). */
void *wm_malloc(size_t n);
void *wm_calloc(size_t n, size_t size);
void *wm_realloc(void *p, size_t n);
char *wm_strdup(const char *s);
char *wm_strndup(const char *s, size_t n);

#endif

/* wm_buf: growable byte buffer and the aborting allocation helpers (see wm_buf.h for
 * why out-of-memory is fatal here). */
#include "wm_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* No logging module here on purpose: it may itself need memory. */
    fprintf(stderr, "waymark: out of memory allocating %zu bytes\n", n);
    abort();
}

void *wm_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *wm_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *wm_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *wm_strdup(const char *s)
{
    return wm_strndup(s, strlen(s));
}

char *wm_strndup(const char *s, size_t n)
{
    /* n == 0 may come with s == NULL (msgpack-c's empty str): neither strnlen nor
     * memcpy may see that pointer. */
    size_t len = n ? strnlen(s, n) : 0;
    char *p = wm_malloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void wm_buf_reserve(struct wm_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need < b->len)   /* overflow: cannot be satisfied */
        oom(SIZE_MAX);
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = wm_realloc(b->data, cap);
    b->cap = cap;
}

void wm_buf_append(struct wm_buf *b, const void *data, size_t len)
{
    wm_buf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void wm_buf_puts(struct wm_buf *b, const char *s)
{
    wm_buf_append(b, s, strlen(s));
}

void wm_buf_printf(struct wm_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        wm_buf_append(b, small, (size_t)n);
        return;
    }
    wm_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void wm_buf_reset(struct wm_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void wm_buf_free(struct wm_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

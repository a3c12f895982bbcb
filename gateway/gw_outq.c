/* gw_outq: a session's outgoing frames, a utlist FIFO plus a uthash index of the
 * EVENT slots (subscription id -> queued item) for latest-wins replacement. */
#include "gw_outq.h"

#include <stdlib.h>

#include <utlist.h>
#include <uthash.h>

#include "wm_buf.h"

struct gw_outq_item {
    struct gw_frame *frame;            /* one reference owned by the item */
    uint64_t key;                      /* 0: control frame, not in the index */
    bool retained;                     /* the slot owes a retained EVENT */
    struct gw_outq_item *prev, *next;  /* utlist FIFO */
    UT_hash_handle hh;                 /* index by key (EVENT slots only) */
};

struct gw_outq {
    struct gw_outq_item *head;         /* FIFO, oldest first */
    struct gw_outq_item *index;        /* uthash by key */
    size_t bytes, count, controls;
};

struct gw_outq *gw_outq_new(void)
{
    return wm_calloc(1, sizeof(struct gw_outq));
}

static void item_free(struct gw_outq *q, struct gw_outq_item *it)
{
    DL_DELETE(q->head, it);
    if (it->key)
        HASH_DEL(q->index, it);
    else
        q->controls--;
    q->bytes -= it->frame->len;
    q->count--;
    gw_frame_unref(&it->frame);
    free(it);
}

size_t gw_outq_clear(struct gw_outq *q)
{
    size_t events = 0;
    struct gw_outq_item *it, *tmp;

    if (!q)
        return 0;
    DL_FOREACH_SAFE(q->head, it, tmp) {
        if (it->key)
            events++;
        item_free(q, it);
    }
    return events;
}

void gw_outq_free(struct gw_outq **q)
{
    if (!q || !*q)
        return;
    gw_outq_clear(*q);
    free(*q);
    *q = NULL;
}

int gw_outq_put(struct gw_outq *q, struct gw_frame *frame, uint64_t key, bool retained)
{
    struct gw_outq_item *it = NULL;

    if (key) {
        HASH_FIND(hh, q->index, &key, sizeof key, it);
        if (it) {
            /* Newer page: the client never sees the old one. */
            q->bytes -= it->frame->len;
            gw_frame_unref(&it->frame);
            it->frame = gw_frame_ref(frame);
            it->retained |= retained;
            q->bytes += frame->len;
            DL_DELETE(q->head, it);
            DL_APPEND(q->head, it);
            return 1;
        }
    }
    it = wm_calloc(1, sizeof *it);
    it->frame = gw_frame_ref(frame);
    it->key = key;
    it->retained = retained;
    DL_APPEND(q->head, it);
    if (key)
        HASH_ADD(hh, q->index, key, sizeof it->key, it);
    else
        q->controls++;
    q->bytes += frame->len;
    q->count++;
    return 0;
}

struct gw_frame *gw_outq_take(struct gw_outq *q, uint64_t *key)
{
    struct gw_outq_item *it = q->head;
    struct gw_frame *f;

    if (!it)
        return NULL;
    f = gw_frame_ref(it->frame);
    if (key)
        *key = it->key;
    item_free(q, it);
    return f;
}

size_t gw_outq_drop_key(struct gw_outq *q, uint64_t key)
{
    struct gw_outq_item *it = NULL;

    if (!key)
        return 0;
    HASH_FIND(hh, q->index, &key, sizeof key, it);
    if (!it)
        return 0;
    item_free(q, it);
    return 1;
}

bool gw_outq_owes_retained(const struct gw_outq *q, uint64_t key)
{
    struct gw_outq_item *it = NULL;

    if (!key)
        return false;
    HASH_FIND(hh, q->index, &key, sizeof key, it);
    return it && it->retained;
}

size_t gw_outq_bytes(const struct gw_outq *q) { return q->bytes; }
size_t gw_outq_count(const struct gw_outq *q) { return q->count; }
size_t gw_outq_controls(const struct gw_outq *q) { return q->controls; }
bool gw_outq_empty(const struct gw_outq *q) { return q->head == NULL; }

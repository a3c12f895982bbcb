/* Unit tests for gw_outq: FIFO order, latest-wins replacement of an EVENT slot in
 * place, byte and control-frame accounting, dropping a slot, and frame references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_outq.h"

static struct gw_frame *frame(const char *text)
{
    return gw_frame_new(GW_SER_JSON, text, strlen(text));
}

static void expect_take(struct gw_outq *q, const char *text, uint64_t key)
{
    uint64_t k = 99;
    struct gw_frame *f = gw_outq_take(q, &k);

    assert_non_null(f);
    assert_int_equal(f->len, strlen(text));
    assert_memory_equal(gw_frame_payload(f), text, f->len);
    assert_int_equal(k, key);
    gw_frame_unref(&f);
}

static void test_fifo_and_bytes(void **state)
{
    struct gw_outq *q = gw_outq_new();
    struct gw_frame *a = frame("aa"), *b = frame("bbbb"), *c = frame("c");

    assert_true(gw_outq_empty(q));
    assert_int_equal(gw_outq_put(q, a, 0, false), 0);
    assert_int_equal(gw_outq_put(q, b, 7, false), 0);
    assert_int_equal(gw_outq_put(q, c, 0, false), 0);
    assert_int_equal(gw_outq_bytes(q), 7);
    assert_int_equal(gw_outq_count(q), 3);
    assert_int_equal(gw_outq_controls(q), 2);
    gw_frame_unref(&a);
    gw_frame_unref(&b);
    gw_frame_unref(&c);

    expect_take(q, "aa", 0);
    assert_int_equal(gw_outq_bytes(q), 5);
    assert_int_equal(gw_outq_controls(q), 1);
    expect_take(q, "bbbb", 7);
    expect_take(q, "c", 0);
    assert_null(gw_outq_take(q, NULL));
    assert_int_equal(gw_outq_bytes(q), 0);
    assert_int_equal(gw_outq_count(q), 0);
    assert_true(gw_outq_empty(q));
    gw_outq_free(&q);
    assert_null(q);
}

static void test_retained_slot_is_sticky(void **state)
{
    struct gw_outq *q = gw_outq_new();
    struct gw_frame *snap = frame("snapshot"), *bump = frame("bumped");

    assert_false(gw_outq_owes_retained(q, 9));
    gw_outq_put(q, snap, 9, true);
    assert_true(gw_outq_owes_retained(q, 9));
    /* A bump page replacing the snapshot keeps the slot owing a retained EVENT. */
    assert_int_equal(gw_outq_put(q, bump, 9, false), 1);
    assert_true(gw_outq_owes_retained(q, 9));
    expect_take(q, "bumped", 9);
    assert_false(gw_outq_owes_retained(q, 9));
    gw_outq_put(q, bump, 9, false);
    assert_false(gw_outq_owes_retained(q, 9));
    gw_frame_unref(&snap);
    gw_frame_unref(&bump);
    gw_outq_free(&q);
}

static void test_latest_wins_at_the_tail(void **state)
{
    struct gw_outq *q = gw_outq_new();
    struct gw_frame *ctl = frame("[33,1,5]"), *e1 = frame("page-one"), *e2 = frame("p2");
    struct gw_frame *other = frame("x"), *tail = frame("[35,2]");

    gw_outq_put(q, ctl, 0, false);
    assert_int_equal(gw_outq_put(q, e1, 5, false), 0);
    gw_outq_put(q, other, 6, false);
    gw_outq_put(q, tail, 0, false);
    /* A newer page for sub 5 replaces the old one and goes behind what was queued
     * since: a re-SUBSCRIBE's SUBSCRIBED ([35,2] here) must precede its EVENT. */
    assert_int_equal(gw_outq_put(q, e2, 5, false), 1);
    assert_int_equal(gw_outq_count(q), 4);
    assert_int_equal(gw_outq_bytes(q), 8 + 2 + 1 + 6);
    assert_int_equal(e1->refs, 1);   /* the queue released the replaced page */

    expect_take(q, "[33,1,5]", 0);
    expect_take(q, "x", 6);
    expect_take(q, "[35,2]", 0);
    expect_take(q, "p2", 5);
    /* Once taken, the slot is free: the next page for 5 is appended. */
    assert_int_equal(gw_outq_put(q, e1, 5, false), 0);
    expect_take(q, "page-one", 5);

    gw_frame_unref(&ctl);
    gw_frame_unref(&e1);
    gw_frame_unref(&e2);
    gw_frame_unref(&other);
    gw_frame_unref(&tail);
    gw_outq_free(&q);
}

static void test_drop_key_and_clear(void **state)
{
    struct gw_outq *q = gw_outq_new();
    struct gw_frame *e = frame("event"), *c = frame("ctl");

    gw_outq_put(q, e, 3, false);
    gw_outq_put(q, c, 0, false);
    gw_outq_put(q, e, 4, false);
    assert_int_equal(e->refs, 3);
    assert_int_equal(gw_outq_drop_key(q, 0), 0);    /* control frames have no slot */
    assert_int_equal(gw_outq_drop_key(q, 9), 0);
    assert_int_equal(gw_outq_drop_key(q, 3), 1);
    assert_int_equal(gw_outq_drop_key(q, 3), 0);
    assert_int_equal(gw_outq_bytes(q), 3 + 5);
    assert_int_equal(e->refs, 2);
    assert_int_equal(gw_outq_clear(q), 1);          /* one EVENT (key 4) dropped */
    assert_true(gw_outq_empty(q));
    assert_int_equal(gw_outq_bytes(q), 0);
    assert_int_equal(gw_outq_controls(q), 0);
    assert_int_equal(e->refs, 1);
    assert_int_equal(c->refs, 1);
    /* Still usable after a clear. */
    gw_outq_put(q, e, 4, false);
    gw_outq_put(q, c, 0, false);
    gw_outq_free(&q);
    assert_int_equal(e->refs, 1);
    gw_frame_unref(&e);
    gw_frame_unref(&c);
    gw_outq_free(&q);   /* NULL-safe */
}

static void test_many_slots(void **state)
{
    struct gw_outq *q = gw_outq_new();
    struct gw_frame *f = frame("0123456789");

    for (int round = 0; round < 3; round++)
        for (uint64_t k = 1; k <= 1000; k++)
            gw_outq_put(q, f, k, false);
    assert_int_equal(gw_outq_count(q), 1000);
    assert_int_equal(gw_outq_bytes(q), 10000);
    assert_int_equal(f->refs, 1001);
    for (uint64_t k = 1; k <= 1000; k += 2)
        assert_int_equal(gw_outq_drop_key(q, k), 1);
    assert_int_equal(gw_outq_count(q), 500);
    expect_take(q, "0123456789", 2);
    gw_outq_free(&q);
    assert_int_equal(f->refs, 1);
    gw_frame_unref(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_bytes),
        cmocka_unit_test(test_latest_wins_at_the_tail),
        cmocka_unit_test(test_retained_slot_is_sticky),
        cmocka_unit_test(test_drop_key_and_clear),
        cmocka_unit_test(test_many_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

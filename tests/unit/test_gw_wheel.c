/* Unit tests for gw_wheel: timers fire in the advance that reaches their second, not
 * before; re-arming moves and cancelling removes in O(1); far deadlines are parked and
 * fire early; a stall longer than the wheel fires everything once; callbacks may re-arm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/gw_wheel.h"

struct item {
    struct gw_wheel_timer t;      /* first member: the cast below relies on it */
    int fired;
    int64_t fired_at;
    int64_t rearm_in;             /* > 0: the callback re-arms this far ahead */
};

struct ctx {
    struct gw_wheel *w;
    int64_t now;
    int order[16];
    size_t n_order;
    struct item *items;
};

static void on_fire(struct gw_wheel_timer *t, void *ud)
{
    struct ctx *c = ud;
    struct item *it = (struct item *)t;

    it->fired++;
    it->fired_at = c->now;
    if (c->items && c->n_order < 16)
        c->order[c->n_order++] = (int)(it - c->items);
    if (it->rearm_in > 0)
        gw_wheel_arm(c->w, t, c->now + it->rearm_in);
}

static size_t advance(struct ctx *c, int64_t to)
{
    c->now = to;
    return gw_wheel_advance(c->w, to, on_fire, c);
}

static void test_fires_at_its_second_not_before(void **state)
{
    struct gw_wheel w;
    struct item a = {0}, b = {0};
    struct ctx c = { .w = &w };

    gw_wheel_init(&w, 1000);
    gw_wheel_arm(&w, &a.t, 1010);
    gw_wheel_arm(&w, &b.t, 1003);
    assert_int_equal(w.armed, 2);
    assert_int_equal(advance(&c, 1002), 0);
    assert_int_equal(advance(&c, 1003), 1);
    assert_int_equal(b.fired, 1);
    assert_false(b.t.armed);
    assert_int_equal(advance(&c, 1009), 0);
    assert_int_equal(a.fired, 0);
    assert_int_equal(advance(&c, 1010), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(a.fired_at, 1010);
    assert_int_equal(w.armed, 0);
    assert_int_equal(advance(&c, 1100), 0);   /* nothing fires twice */
}

static void test_rearm_moves_cancel_removes(void **state)
{
    struct gw_wheel w;
    struct item a = {0}, b = {0};
    struct ctx c = { .w = &w };

    gw_wheel_init(&w, 0);
    gw_wheel_arm(&w, &a.t, 5);
    gw_wheel_arm(&w, &a.t, 20);       /* moved, not duplicated */
    gw_wheel_arm(&w, &b.t, 5);
    gw_wheel_cancel(&w, &b.t);
    gw_wheel_cancel(&w, &b.t);        /* twice is harmless */
    assert_int_equal(w.armed, 1);
    assert_int_equal(advance(&c, 19), 0);
    assert_int_equal(advance(&c, 20), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
}

static void test_past_deadline_fires_next_advance(void **state)
{
    struct gw_wheel w;
    struct item a = {0};
    struct ctx c = { .w = &w };

    gw_wheel_init(&w, 100);
    gw_wheel_arm(&w, &a.t, 3);
    assert_int_equal(advance(&c, 100), 1);
    assert_int_equal(a.fired, 1);
}

static void test_far_deadline_is_parked_and_fires_early(void **state)
{
    struct gw_wheel w;
    struct item a = {0};
    struct ctx c = { .w = &w };

    gw_wheel_init(&w, 0);
    gw_wheel_arm(&w, &a.t, 10000);
    assert_true(a.t.due_s <= GW_WHEEL_SLOTS - 2);
    assert_int_equal(advance(&c, GW_WHEEL_SLOTS - 3), 0);
    assert_int_equal(advance(&c, GW_WHEEL_SLOTS - 2), 1);
}

static void test_stall_longer_than_the_wheel_fires_all_once(void **state)
{
    struct gw_wheel w;
    struct item it[10];
    struct ctx c = { .w = &w };

    memset(it, 0, sizeof it);
    gw_wheel_init(&w, 0);
    for (int i = 0; i < 10; i++)
        gw_wheel_arm(&w, &it[i].t, 1 + i * 6);
    assert_int_equal(advance(&c, 1000), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(it[i].fired, 1);
    assert_int_equal(w.armed, 0);
}

static void test_due_order_and_rearm_from_callback(void **state)
{
    struct gw_wheel w;
    struct item it[3];
    struct ctx c = { .w = &w, .items = it };

    memset(it, 0, sizeof it);
    gw_wheel_init(&w, 0);
    gw_wheel_arm(&w, &it[0].t, 9);
    gw_wheel_arm(&w, &it[1].t, 2);
    gw_wheel_arm(&w, &it[2].t, 5);
    it[1].rearm_in = 30;              /* the idle-ping pattern: fire, re-arm later */
    assert_int_equal(advance(&c, 10), 3);
    assert_int_equal(c.n_order, 3);
    assert_int_equal(c.order[0], 1);
    assert_int_equal(c.order[1], 2);
    assert_int_equal(c.order[2], 0);
    assert_true(it[1].t.armed);
    assert_int_equal(it[1].t.due_s, 40);   /* callbacks see the advance's "now" */
    it[1].rearm_in = 0;
    assert_int_equal(advance(&c, 39), 0);
    assert_int_equal(advance(&c, 40), 1);
    assert_int_equal(it[1].fired, 2);
}

/* The callback re-arming at "now or earlier" must not fire it again in the same pass. */
static void test_rearm_now_waits_for_next_advance(void **state)
{
    struct gw_wheel w;
    struct item a = {0};
    struct ctx c = { .w = &w };

    gw_wheel_init(&w, 0);
    gw_wheel_arm(&w, &a.t, 4);
    a.rearm_in = -100;                /* rearm_in <= 0 does not re-arm in on_fire ... */
    assert_int_equal(advance(&c, 4), 1);
    gw_wheel_arm(&w, &a.t, 0);        /* ... so arm in the past by hand */
    assert_int_equal(a.t.due_s, 5);
    assert_int_equal(advance(&c, 4), 0);
    assert_int_equal(advance(&c, 5), 1);
}

static void test_many_timers_one_second_apart(void **state)
{
    enum { N = 20000 };
    static struct item it[N];
    struct gw_wheel w;
    struct ctx c = { .w = &w };
    size_t total = 0;

    memset(it, 0, sizeof it);
    gw_wheel_init(&w, 0);
    for (int i = 0; i < N; i++)
        gw_wheel_arm(&w, &it[i].t, 1 + i % 45);
    assert_int_equal(w.armed, N);
    for (int s = 1; s <= 45; s++) {
        size_t n = advance(&c, s);

        assert_true(n >= N / 45 && n <= N / 45 + 1);
        total += n;
    }
    assert_int_equal(total, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_at_its_second_not_before),
        cmocka_unit_test(test_rearm_moves_cancel_removes),
        cmocka_unit_test(test_past_deadline_fires_next_advance),
        cmocka_unit_test(test_far_deadline_is_parked_and_fires_early),
        cmocka_unit_test(test_stall_longer_than_the_wheel_fires_all_once),
        cmocka_unit_test(test_due_order_and_rearm_from_callback),
        cmocka_unit_test(test_rearm_now_waits_for_next_advance),
        cmocka_unit_test(test_many_timers_one_second_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

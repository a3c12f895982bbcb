/* Unit tests for wm_random (ids cover [1, 2^53] and do not repeat) and wm_backoff
 * (capped doubling with +-20% jitter, reset). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wm_backoff.h"
#include "wm_proto.h"
#include "wm_random.h"

static void test_ids_are_wamp_safe_and_use_53_bits(void **state)
{
    uint64_t prev = 0;
    bool high = false;
    for (int i = 0; i < 10000; i++) {
        uint64_t id = wm_random_id();
        assert_true(id >= 1 && id <= (UINT64_C(1) << 53));
        assert_true(id != prev);
        if (id > (UINT64_C(1) << 52))
            high = true;   /* the whole range is used, not just 32 bits */
        prev = id;
    }
    assert_true(high);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Ids come from a pool refilled every 512: across several refills none repeats and
 * every bit position is used. */
static void test_ids_do_not_repeat_across_pool_refills(void **state)
{
    enum { N = 5000 };
    static uint64_t ids[N];
    uint64_t any = 0;

    for (int i = 0; i < N; i++) {
        ids[i] = wm_random_id();
        any |= ids[i];
    }
    qsort(ids, N, sizeof ids[0], cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(ids[i] != ids[i - 1]);
    assert_int_equal(any, (UINT64_C(1) << 53) - 1);
}

static void test_backoff_doubles_to_cap_with_jitter_and_resets(void **state)
{
    struct wm_backoff b;
    wm_backoff_init(&b, WM_RECONNECT_MIN_MS, WM_RECONNECT_MAX_MS);
    uint32_t expect = WM_RECONNECT_MIN_MS;
    for (int i = 0; i < 12; i++) {
        uint32_t d = wm_backoff_next(&b);
        assert_true(d >= expect * 8 / 10 && d <= expect * 12 / 10);
        expect = expect * 2 > WM_RECONNECT_MAX_MS ? WM_RECONNECT_MAX_MS : expect * 2;
    }
    wm_backoff_reset(&b);
    uint32_t d = wm_backoff_next(&b);
    assert_true(d >= 80 && d <= 120);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_are_wamp_safe_and_use_53_bits),
        cmocka_unit_test(test_ids_do_not_repeat_across_pool_refills),
        cmocka_unit_test(test_backoff_doubles_to_cap_with_jitter_and_resets),
    };
    return cmocka_run_group_tests_name("wm_random", tests, NULL, NULL);
}

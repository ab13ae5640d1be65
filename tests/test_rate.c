/*
 * test_rate.c — the writer's token bucket (src/load/rate.c) on a made-up
 * clock: a full burst of 1/50 s worth at the start, refill at the rate and
 * no further than the burst, the time until the next tokens, a long run
 * woken every millisecond that sends exactly rate records a second, and
 * the effective rate of a load and of a re-warm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rate.h"

#define T0 1000000000ll /* some monotonic µs */

/* A bucket starts with one burst, 1/50 s worth, and no more. */
static void test_starts_with_a_burst(void **state)
{
    (void)state;
    struct rate_bucket b = {0};
    rate_set(&b, 50000, T0);
    assert_int_equal(b.burst, 1000);
    assert_int_equal(rate_take(&b, T0, 5000), 1000);
    assert_int_equal(rate_take(&b, T0, 5000), 0);
    /* below 50 records/s the burst is one record */
    rate_set(&b, 10, T0);
    assert_int_equal(b.burst, 1);
    assert_int_equal(rate_take(&b, T0, 5), 1);
    assert_int_equal(rate_take(&b, T0, 5), 0);
}

/* Refill is rate * elapsed, in whole records taken, fractions kept. */
static void test_refill(void **state)
{
    (void)state;
    struct rate_bucket b = {0};
    rate_set(&b, 1000, T0); /* one record per ms, burst 20 */
    assert_int_equal(rate_take(&b, T0, 100), 20);
    assert_int_equal(rate_take(&b, T0 + 500, 100), 0); /* half a record */
    assert_int_equal(rate_take(&b, T0 + 1000, 100), 1);
    assert_int_equal(rate_take(&b, T0 + 1500, 100), 0);
    assert_int_equal(rate_take(&b, T0 + 2000, 100), 1); /* the halves added up */
    assert_int_equal(rate_take(&b, T0 + 7000, 3), 3);   /* 5 there, 3 wanted */
    assert_int_equal(rate_take(&b, T0 + 7000, 100), 2); /* the other 2 stay */
}

/* However long the bucket was idle, it holds one burst at most; a clock
 * that went back adds nothing. */
static void test_burst_cap(void **state)
{
    (void)state;
    struct rate_bucket b = {0};
    rate_set(&b, 50000, T0);
    assert_int_equal(rate_take(&b, T0, 1000), 1000);
    int64_t hour = 3600ll * 1000000;
    assert_int_equal(rate_take(&b, T0 + hour, 1000000), 1000);
    assert_int_equal(rate_take(&b, T0 + hour - 5000, 1000000), 0);
    assert_int_equal(rate_take(&b, T0 + hour + 1000, 1000000), 50);
    /* the highest rate accepted, idle for a day: no overflow */
    rate_set(&b, CFG_MAX_RATE, T0);
    assert_int_equal(rate_take(&b, T0, UINT64_MAX), CFG_MAX_RATE / 50);
    assert_int_equal(rate_take(&b, T0 + 24 * hour, UINT64_MAX), CFG_MAX_RATE / 50);
}

/* The time until n tokens: 0 when there, rounded up to whole µs, n above
 * the burst waits for a burst; unlimited never waits. */
static void test_time_to_next_token(void **state)
{
    (void)state;
    struct rate_bucket b = {0};
    rate_set(&b, 3000, T0); /* a record every 333.3 µs, burst 60 */
    assert_int_equal(rate_wait_us(&b, T0, 1), 0);
    assert_int_equal(rate_take(&b, T0, 60), 60);
    assert_int_equal(rate_wait_us(&b, T0, 1), 334);
    assert_int_equal(rate_wait_us(&b, T0 + 100, 1), 234);
    assert_int_equal(rate_wait_us(&b, T0, 3), 1000);
    assert_int_equal(rate_wait_us(&b, T0, 1000), 20000); /* capped to the burst */
    assert_int_equal(rate_wait_us(&b, T0 + 334, 1), 0);
    assert_int_equal(rate_take(&b, T0 + 334, 10), 1);
    struct rate_bucket u = {0};
    rate_set(&u, 0, T0);
    assert_int_equal(rate_wait_us(&u, T0, 1000), 0);
    assert_int_equal(rate_take(&u, T0, 123456), 123456);
}

/* A writer that waits as rate_wait_us says (rounded up to the ms of a
 * poll timeout) and takes what is there sends rate records a second, to
 * the record, and never more than a burst in one take. */
static void test_paced_run_is_exact(void **state)
{
    (void)state;
    static const uint64_t rates[] = {1, 7, 1000, 3333, 50000, 1000000};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct rate_bucket b = {0};
        rate_set(&b, rates[i], T0);
        int64_t now = T0, end = T0 + 10ll * 1000000;
        uint64_t sent = 0, most = 0;
        while (now <= end) {
            uint64_t n = rate_take(&b, now, UINT64_MAX);
            sent += n;
            most = n > most ? n : most;
            int64_t w = rate_wait_us(&b, now, 1);
            now += (w + 999) / 1000 * 1000;
        }
        /* 10 s at the rate, plus the starting burst */
        uint64_t want = rates[i] * 10 + b.burst;
        if (sent > want || sent + 1 < want)
            fail_msg("rate %llu: %llu sent in 10 s, want %llu", (unsigned long long)rates[i],
                     (unsigned long long)sent, (unsigned long long)want);
        assert_true(most <= b.burst);
    }
}

/* A load runs at max_rate; a re-warm at the smaller non-zero of the two. */
static void test_effective_rate(void **state)
{
    (void)state;
    assert_int_equal(rate_effective(0, 0, 0), 0);
    assert_int_equal(rate_effective(0, 0, 1), 0);
    assert_int_equal(rate_effective(50000, 0, 0), 50000);
    assert_int_equal(rate_effective(50000, 0, 1), 50000);
    assert_int_equal(rate_effective(50000, 1000, 0), 50000);
    assert_int_equal(rate_effective(50000, 1000, 1), 1000);
    assert_int_equal(rate_effective(1000, 50000, 1), 1000);
    assert_int_equal(rate_effective(0, 1000, 1), 1000);
    assert_int_equal(rate_effective(0, 1000, 0), 0);
}

/* The same rate again keeps the bucket (a load after a load does not get
 * a fresh burst); another rate starts over. */
static void test_set_again(void **state)
{
    (void)state;
    struct rate_bucket b = {0};
    rate_set(&b, 1000, T0);
    assert_int_equal(rate_take(&b, T0, 100), 20);
    rate_set(&b, 1000, T0);
    assert_int_equal(rate_take(&b, T0, 100), 0);
    rate_set(&b, 2000, T0);
    assert_int_equal(rate_take(&b, T0, 100), 40);
    rate_set(&b, 0, T0);
    assert_int_equal(rate_take(&b, T0, 100), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_with_a_burst), cmocka_unit_test(test_refill),
        cmocka_unit_test(test_burst_cap),           cmocka_unit_test(test_time_to_next_token),
        cmocka_unit_test(test_paced_run_is_exact),  cmocka_unit_test(test_effective_rate),
        cmocka_unit_test(test_set_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

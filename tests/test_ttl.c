/*
 * test_ttl.c — the TTL arithmetic as pure logic (common/expiry.h) and the
 * T flag in a segment's bytes (load/write.h): 0 = never, expired, relative
 * up to memcached's 30 days and a Unix time beyond, a file time in the
 * future, the seconds left rewritten in place when a batch waited, in
 * quiet and reply mode alike.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "expiry.h"
#include "write.h"

#define NOW 1700000000LL

static void test_deadline(void **state)
{
    (void)state;
    assert_int_equal(exp_deadline(NOW - 100, 0, NOW), 0); /* never */
    assert_int_equal(exp_deadline(NOW - 1800, 3600, NOW), NOW + 1800);
    assert_int_equal(exp_deadline(NOW - 7200, 3600, NOW), NOW - 3600);
    assert_int_equal(exp_deadline(NOW + 500, 3600, NOW), NOW + 3600); /* future mtime: now */
}

static void test_token(void **state)
{
    (void)state;
    int64_t v = 99;
    assert_int_equal(exp_token(0, NOW, &v), EXP_NEVER);
    assert_int_equal(v, 0);
    assert_int_equal(exp_token(NOW - 1, NOW, &v), EXP_GONE);
    assert_int_equal(exp_token(NOW, NOW, &v), EXP_GONE); /* nothing left is gone */
    assert_int_equal(exp_token(NOW + 1, NOW, &v), EXP_RELATIVE);
    assert_int_equal(v, 1);
    assert_int_equal(exp_token(NOW + 1800, NOW, &v), EXP_RELATIVE);
    assert_int_equal(v, 1800);
    /* 30 days exactly is still relative for memcached; a second more is not */
    assert_int_equal(exp_token(NOW + EXP_RELATIVE_MAX, NOW, &v), EXP_RELATIVE);
    assert_int_equal(v, 2592000);
    assert_int_equal(exp_token(NOW + EXP_RELATIVE_MAX + 1, NOW, &v), EXP_ABSOLUTE);
    assert_int_equal(v, NOW + 2592001);
    assert_int_equal(exp_token(3000000000LL, NOW, &v), EXP_ABSOLUTE);
    assert_int_equal(v, INT32_MAX); /* memcached's exptime is 32-bit */
}

static void test_gone(void **state)
{
    (void)state;
    assert_false(exp_gone(0, NOW, EXP_SLACK_S)); /* never */
    assert_true(exp_gone(NOW, NOW, 0));
    assert_false(exp_gone(NOW + 1, NOW, 0));
    assert_true(exp_gone(NOW + 2, NOW, EXP_SLACK_S));
    assert_false(exp_gone(NOW + 3, NOW, EXP_SLACK_S));
}

/* Record i's header, "ms ... q" without its \r\n. */
static void header(const struct memc_seg *s, uint32_t i, char *out, size_t len)
{
    const char *h = s->buf + s->off[i];
    size_t n = (size_t)((const char *)memchr(h, '\r', s->off[i + 1] - s->off[i]) - h);
    snprintf(out, len, "%.*s", (int)n, h);
}

static void add_two(struct memc_seg *s)
{
    assert_int_equal(memc_seg_add(s, "idfa", 4, "a", 1, (const uint8_t *)"xyz", 3), 0);
    assert_int_equal(memc_seg_add(s, "gaid", 4, "bb", 2, (const uint8_t *)"\r\n", 2), 0);
    assert_int_equal(memc_seg_finish(s), 0);
}

static void test_segment_relative(void **state)
{
    (void)state;
    struct memc_seg s;
    char h[128];
    memset(&s, 0, sizeof(s));
    assert_int_equal(memc_seg_expire(&s, NOW + 1800, NOW), 0);
    add_two(&s);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, "ms idfa:a 3 T1800 q");
    /* the same second, or the clock stepped back: unchanged, never longer */
    assert_int_equal(memc_seg_expire_now(&s, NOW), 0);
    assert_int_equal(memc_seg_expire_now(&s, NOW - 60), 0);
    header(&s, 1, h, sizeof(h));
    assert_string_equal(h, "ms gaid:bb 2 T1800 q");
    /* held back 801 s: fewer digits, zero-padded in place */
    size_t len = s.len;
    assert_int_equal(memc_seg_expire_now(&s, NOW + 801), 0);
    assert_int_equal(s.len, len);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, "ms idfa:a 3 T0999 q");
    header(&s, 1, h, sizeof(h));
    assert_string_equal(h, "ms gaid:bb 2 T0999 q");
    assert_memory_equal(s.buf + s.len - 8, "\r\n\r\nmn\r\n", 8); /* values untouched */
    /* in reply mode (the 'q' a blank) the digits sit at the same place */
    s.buf[s.off[0] + strlen("ms idfa:a 3 T0999 ")] = ' ';
    assert_int_equal(memc_seg_expire_now(&s, NOW + 1799), 0);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, "ms idfa:a 3 T0001  ");
    assert_int_equal(memc_seg_expire_now(&s, NOW + 1800), -ETIME);
    /* a reset segment has no flag until it is given a life again */
    memc_seg_reset(&s);
    add_two(&s);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, "ms idfa:a 3 q");
    memc_seg_free(&s);
}

static void test_segment_never_absolute_gone(void **state)
{
    (void)state;
    struct memc_seg s;
    char h[128], want[64];
    memset(&s, 0, sizeof(s));
    assert_int_equal(memc_seg_expire(&s, 0, NOW), 0);
    add_two(&s);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, "ms idfa:a 3 q");
    assert_int_equal(memc_seg_expire_now(&s, NOW + 86400), 0);
    memc_seg_reset(&s);
    /* 40 days: a Unix time, the same whenever it is sent */
    assert_int_equal(memc_seg_expire(&s, NOW + 40 * 86400, NOW), 0);
    add_two(&s);
    snprintf(want, sizeof(want), "ms idfa:a 3 T%lld q", NOW + 40 * 86400);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, want);
    assert_int_equal(memc_seg_expire_now(&s, NOW + 3600), 0);
    header(&s, 0, h, sizeof(h));
    assert_string_equal(h, want);
    memc_seg_reset(&s);
    assert_int_equal(memc_seg_expire(&s, NOW, NOW), -ETIME);
    memc_seg_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_segment_relative),
        cmocka_unit_test(test_segment_never_absolute_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

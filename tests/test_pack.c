/*
 * test_pack.c — UserApps bytes: the reference vector from the original
 * loader, varint boundaries, and agreement with protobuf-c's own packer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "appsinstalled.pb-c.h"
#include "pack.h"

static void test_reference_vector(void **state)
{
    (void)state;
    static const uint8_t want[] = {0x08, 0x01, 0x08, 0x02, 0x08, 0x03, 0x11, 0xcd,
                                   0xcc, 0xcc, 0xcc, 0xcc, 0x8c, 0x4b, 0x40, 0x19,
                                   0xcd, 0xcc, 0xcc, 0xcc, 0xcc, 0x8c, 0x4b, 0x40};
    uint32_t apps[] = {1, 2, 3};
    uint8_t out[64];
    size_t n = pack_user_apps(apps, 3, 55.1, 55.1, out);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, n);
}

static void test_varints(void **state)
{
    (void)state;
    uint32_t apps[] = {0,       127,     128,       16383,     16384,
                       2097151, 2097152, 268435455, 268435456, 4294967295u};
    uint8_t out[128];
    size_t n = pack_user_apps(apps, 10, 0.0, -0.0, out);
    static const uint8_t want_head[] = {0x08, 0x00, 0x08, 0x7f, 0x08, 0x80, 0x01,
                                        0x08, 0xff, 0x7f, 0x08, 0x80, 0x80, 0x01};
    assert_memory_equal(out, want_head, sizeof(want_head));
    /* last app: 0xffffffff = ff ff ff ff 0f */
    static const uint8_t want_tail[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x11, 0, 0, 0, 0, 0,
                                        0,    0,    0,    0x19, 0,    0,    0,    0, 0, 0, 0, 0x80};
    assert_memory_equal(out + n - sizeof(want_tail), want_tail, sizeof(want_tail));
    assert_true(n <= pack_max_size(10));
}

static void test_no_apps(void **state)
{
    (void)state;
    uint8_t out[32];
    size_t n = pack_user_apps(NULL, 0, -90.0, 180.0, out);
    assert_int_equal(n, 18);
    assert_int_equal(out[0], 0x11);
    assert_int_equal(out[9], 0x19);
}

/* Our bytes == protobuf-c's bytes for the same message, and unpack back. */
static void test_against_protobuf_c(void **state)
{
    (void)state;
    uint32_t apps[200];
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round % 101);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            apps[i] = (uint32_t)(x >> (round % 32));
        }
        double lat = (double)(int64_t)(x % 180000000) / 1e6 - 90.0;
        double lon = (double)(int64_t)(x % 360000000) / 1e6 - 180.0;
        uint8_t ours[2048], theirs[2048];
        size_t len = pack_user_apps(apps, n, lat, lon, ours);
        UserApps ua = USER_APPS__INIT;
        ua.n_apps = n;
        ua.apps = apps;
        ua.has_lat = ua.has_lon = 1;
        ua.lat = lat;
        ua.lon = lon;
        assert_int_equal(user_apps__get_packed_size(&ua), len);
        assert_int_equal(user_apps__pack(&ua, theirs), len);
        assert_memory_equal(ours, theirs, len);
        UserApps *back = user_apps__unpack(NULL, len, ours);
        assert_non_null(back);
        assert_int_equal(back->n_apps, n);
        assert_memory_equal(back->apps, apps, n * sizeof(uint32_t));
        user_apps__free_unpacked(back, NULL);
    }
}

static void test_selftest(void **state)
{
    (void)state;
    assert_int_equal(pack_selftest(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector), cmocka_unit_test(test_varints),
        cmocka_unit_test(test_no_apps),          cmocka_unit_test(test_against_protobuf_c),
        cmocka_unit_test(test_selftest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_route.c — what a reload needs from route.c, without a server: is a
 * type's ring the same (memc_map_same_ring), server masks carried to the
 * new numbering (memc_map_carry), and which keys a ring change moves
 * (memc_map_moved: growing a ketama ring by one moves about 1/3 of the
 * keys, all of them to the new member).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "route.h"

static void map_of(struct memc_map *m, const char *idfa, const char *gaid, int distribution)
{
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    c.distribution = distribution;
    snprintf(c.addr[0], sizeof(c.addr[0]), "%s", idfa);
    snprintf(c.addr[1], sizeof(c.addr[1]), "%s", gaid);
    c.addr[2][0] = c.addr[3][0] = 0;
    assert_int_equal(memc_map_init(m, &c, err, sizeof(err)), 0);
}

static void test_same_ring(void **state)
{
    (void)state;
    struct memc_map a, b, c, d;
    map_of(&a, "10.0.0.1:1,10.0.0.2:1", "10.0.0.9:1", CFG_DIST_KETAMA);
    map_of(&b, "10.0.0.1:1,10.0.0.2:1", "10.0.0.9:1,10.0.0.8:1", CFG_DIST_KETAMA);
    map_of(&c, "10.0.0.1:1,10.0.0.2:1", "10.0.0.9:1", CFG_DIST_MODULA);
    map_of(&d, "10.0.0.2:1,10.0.0.1:1", "10.0.0.9:1", CFG_DIST_KETAMA);
    assert_true(memc_map_same_ring(&a, &b, 0));  /* idfa's list is the same */
    assert_false(memc_map_same_ring(&a, &b, 1)); /* gaid grew */
    assert_false(memc_map_same_ring(&a, &c, 0)); /* another distribution */
    assert_false(memc_map_same_ring(&a, &d, 0)); /* another order */
    assert_true(memc_map_same_ring(&a, &a, 3));  /* unconfigured both times */
    memc_map_free(&a), memc_map_free(&b), memc_map_free(&c), memc_map_free(&d);
}

static void test_carry(void **state)
{
    (void)state;
    struct memc_map a, b;
    /* a: idfa 0,1  gaid 2;  b: idfa 0 (10.0.0.2), gaid 1,2 */
    map_of(&a, "10.0.0.1:1,10.0.0.2:1", "10.0.0.9:1", CFG_DIST_KETAMA);
    map_of(&b, "10.0.0.2:1", "10.0.0.8:1,10.0.0.9:1", CFG_DIST_KETAMA);
    assert_int_equal(memc_map_carry(&a, &b, 1u << 1), 1u << 0); /* 10.0.0.2 moved down */
    assert_int_equal(memc_map_carry(&a, &b, 1u << 2), 1u << 2); /* 10.0.0.9 renumbered */
    assert_int_equal(memc_map_carry(&a, &b, 1u << 0), 1u << 0); /* gone: all of idfa */
    assert_int_equal(memc_map_carry(&a, &b, 0), 0);
    assert_int_equal(memc_map_find(&b, 1, "10.0.0.9:1"), 2);
    assert_int_equal(memc_map_find(&b, 0, "10.0.0.9:1"), -1);
    memc_map_free(&a), memc_map_free(&b);
}

static void test_moved(void **state)
{
    (void)state;
    struct memc_map two, three, none;
    map_of(&two, "10.0.0.1:1,10.0.0.2:1", "", CFG_DIST_KETAMA);
    map_of(&three, "10.0.0.1:1,10.0.0.2:1,10.0.0.3:1", "", CFG_DIST_KETAMA);
    map_of(&none, "", "", CFG_DIST_KETAMA);
    int moved = 0, n = 30000;
    for (int i = 0; i < n; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "idfa:%d", i);
        int g = memc_map_route(&three, 0, key, (size_t)len);
        int m = memc_map_moved(&two, &three, 0, key, (size_t)len, g);
        if (m)
            assert_string_equal(three.servers[g].name, "10.0.0.3:1"); /* only to the new one */
        else
            assert_int_equal(memc_map_route(&two, 0, key, (size_t)len), g);
        moved += m;
        /* shrinking back: exactly the keys of the member that leaves move */
        int g2 = memc_map_route(&two, 0, key, (size_t)len);
        assert_int_equal(memc_map_moved(&three, &two, 0, key, (size_t)len, g2), m);
        assert_true(memc_map_moved(&none, &three, 0, key, (size_t)len, g)); /* a new type */
    }
    assert_in_range(moved, n / 4, n * 5 / 12); /* about a third */
    memc_map_free(&two), memc_map_free(&three), memc_map_free(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_ring),
        cmocka_unit_test(test_carry),
        cmocka_unit_test(test_moved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

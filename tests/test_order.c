/*
 * test_order.c — the write-order ledger (src/master/order.c) without a
 * process: grants in name order, waiting behind an earlier load that may
 * still write a server, refusals behind an older file that owes a server,
 * retry masks that free the other servers, and `late` marks for a load
 * granted below the newest name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "order.h"

#define ALL 0xfu /* four servers */

static struct order_load load(const char *name, uint32_t may, uint32_t want)
{
    return (struct order_load){.name = name, .may = may, .want = want};
}

/* One load alone gets what it asks for. */
static void test_alone(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load l = load("a", ALL, 0x3);
    order_decide(&o, &l, 1, NULL, NULL);
    assert_int_equal(l.granted, 0x3);
    assert_int_equal(l.refused, 0);
    assert_int_equal(l.late, 0);
}

/* The later file waits for every server the earlier one may write, and
 * gets them when the earlier one is gone, whatever order they asked in. */
static void test_later_waits_for_earlier(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load v[2] = {load("b", ALL, 0x1), load("a", ALL, 0)};
    order_decide(&o, v, 2, NULL, NULL);
    assert_int_equal(v[0].granted, 0); /* "a" may still write server 0 */
    v[1].want = 0x1;
    order_decide(&o, v, 2, NULL, NULL);
    assert_int_equal(v[1].granted, 0x1);
    assert_int_equal(v[0].granted, 0);
    order_decide(&o, &v[0], 1, NULL, NULL); /* "a" is done */
    assert_int_equal(v[0].granted, 0x1);
    assert_int_equal(v[0].late, 0);
}

/* An earlier retry for server 1 alone leaves the others to a later load. */
static void test_retry_mask_frees_other_servers(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load v[2] = {load("a", 0x2, 0x2), load("b", ALL, ALL)};
    order_decide(&o, v, 2, NULL, NULL);
    assert_int_equal(v[0].granted, 0x2);
    assert_int_equal(v[1].granted, ALL & ~0x2u);
}

static uint32_t owed_by_a(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "a") > 0 ? 0x4 : 0; /* "a" waits for a retry of server 2 */
}

/* A file left for a retry of server 2: later loads are refused server 2,
 * and granted the rest. */
static void test_refused_behind_an_older_retry(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load l = load("b", ALL, ALL);
    order_decide(&o, &l, 1, owed_by_a, NULL);
    assert_int_equal(l.refused, 0x4);
    assert_int_equal(l.granted, ALL & ~0x4u);
    /* the next one is not held up by b's refused server either */
    struct order_load v[2] = {l, load("c", ALL, 0x4)};
    order_decide(&o, v, 2, owed_by_a, NULL);
    assert_int_equal(v[1].refused, 0x4);
}

/* Granted below the newest name granted that server: late. */
static void test_late_file(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load b = load("b", ALL, 0x3);
    order_decide(&o, &b, 1, NULL, NULL);
    struct order_load a = load("a", ALL, 0x6);
    order_decide(&o, &a, 1, NULL, NULL);
    assert_int_equal(a.granted, 0x6);
    assert_int_equal(a.late, 0x2); /* server 1 had "b"; server 2 had nothing newer */
    order_seen(&o, ALL, "z");      /* at start: the newest retained file */
    struct order_load c = load("c", ALL, 0x8);
    order_decide(&o, &c, 1, NULL, NULL);
    assert_int_equal(c.late, 0x8);
}

/* A held server is not given twice, even to an earlier name (turns are
 * not taken back). */
static void test_held_is_not_given_twice(void **state)
{
    (void)state;
    struct order o;
    order_init(&o);
    struct order_load v[2] = {load("b", ALL, 0x1), load("a", 0, 0)};
    v[0].granted = 0x1;
    v[1].may = ALL;
    v[1].want = 0x1;
    order_decide(&o, v, 2, NULL, NULL);
    assert_int_equal(v[1].granted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alone),
        cmocka_unit_test(test_later_waits_for_earlier),
        cmocka_unit_test(test_retry_mask_frees_other_servers),
        cmocka_unit_test(test_refused_behind_an_older_retry),
        cmocka_unit_test(test_late_file),
        cmocka_unit_test(test_held_is_not_given_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

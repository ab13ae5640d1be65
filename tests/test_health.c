/*
 * test_health.c — the state file's line parser (health_state_line): what
 * a start reads back as the identities memcached had.  No server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"

static void test_state_lines(void **state)
{
    (void)state;
    char name[320];
    long pid;
    long long start;
    assert_int_equal(
        health_state_line("127.0.0.1:11211 4242 1764650000\n", name, sizeof(name), &pid, &start),
        1);
    assert_string_equal(name, "127.0.0.1:11211");
    assert_int_equal(pid, 4242);
    assert_int_equal(start, 1764650000);
    const char *bad[] = {
        "",
        "\n",
        "127.0.0.1:11211\n",                    /* no identity */
        "127.0.0.1:11211 4242\n",               /* no start */
        "127.0.0.1:11211 x 1764650000\n",       /* pid not a number */
        "127.0.0.1:11211 0 1764650000\n",       /* pid 0: never seen */
        "127.0.0.1:11211 -5 1764650000\n",      /* a negative pid */
        "127.0.0.1:11211 4242 1764650000 xx\n", /* more than three fields */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (health_state_line(bad[i], name, sizeof(name), &pid, &start))
            fail_msg("'%s' taken as an identity", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_daemon.c — the daemon in the foreground with NOTIFY_SOCKET pointing
 * at a socket this test reads: READY/STATUS/WATCHDOG, files dropped by
 * write+close and by rename, bursts, SIGHUP reload, SIGTERM mid-file and a
 * worker SIGKILLed mid-file.  Every loaded key is read back from memcached.
 *
 * Mid-file events are made deterministic by pausing (SIGSTOP) the idfa
 * memcached: the load then waits at a known point instead of racing.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_fixture.h"

static void test_ready_status_watchdog(void **state)
{
    struct t *t = *state;
    start_daemon(t, "400000");
    size_t from = 0;
    assert_int_equal(h_notify_wait(&t->n, "WATCHDOG=1", &from, 2000), 0);
    assert_int_equal(h_notify_wait(&t->n, "WATCHDOG=1", &from, 2000), 0); /* keeps coming */
    gen(t, "30000", "1", "3", "s-", t->incoming);
    h_mc_pause(&mc[0], 1); /* hold the load in the middle for a moment */
    move_in(t, "s-0000.tsv.gz");
    from = 0;
    assert_int_equal(h_notify_wait(&t->n, "STATUS=loading s-0000.tsv.gz", &from, 5000), 0);
    assert_int_equal(h_notify_wait(&t->n, "WATCHDOG=1", &from, 2000), 0); /* loop healthy */
    h_mc_pause(&mc[0], 0);
    wait_done(t, "s-0000.tsv.gz", 20000);
    assert_int_equal(h_notify_wait(&t->n, "last s-0000.tsv.gz: loaded", &from, 5000), 0);
    check_keys(t, 30000);
}

static void test_drops_and_burst(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, t->spool, IN_MOVED_TO);
    /* written in place and closed (IN_CLOSE_WRITE) */
    gen(t, "500", "1", "7", "a-", t->spool);
    wait_done(t, "a-0000.tsv.gz", 10000);
    check_keys(t, 500);
    /* renamed in (IN_MOVED_TO), 50 at once */
    gen(t, "200", "50", "8", "b-", t->incoming);
    for (int i = 0; i < 50; i++) {
        char name[64];
        snprintf(name, sizeof(name), "b-%04d.tsv.gz", i);
        move_in(t, name);
    }
    wait_done(t, "b-0049.tsv.gz", 30000);
    for (int i = 0; i < 50; i++) {
        char name[64];
        snprintf(name, sizeof(name), "b-%04d.tsv.gz", i);
        wait_done(t, name, 1000);
    }
    check_keys(t, 50 * 200);
    /* dot names appeared in name order, each once */
    char why[2 * NAME_MAX + 32];
    int dots = h_dot_renames(in, NULL, why, sizeof(why));
    if (dots < 0)
        fail_msg("%s", why);
    assert_int_equal(dots, 51);
    close(in);
}

static void test_waits_its_turn(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "workers = 1\n");
    start_daemon(t, NULL);
    gen(t, "3000", "1", "9", "a-", t->incoming);
    gen(t, "100", "1", "10", "b-", t->incoming);
    move_in_held(t, "a-0000.tsv.gz");
    move_in(t, "b-0000.tsv.gz"); /* dropped while a- loads: queued */
    h_sleep_ms(300);
    char b[PATH_MAX * 2];
    snprintf(b, sizeof(b), "%s/b-0000.tsv.gz", t->spool);
    assert_true(h_exists(b));
    h_mc_pause(&mc[0], 0);
    wait_done(t, "b-0000.tsv.gz", 20000);
    wait_done(t, "a-0000.tsv.gz", 1000);
}

static void test_reload_changes_servers(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    const char *one[] = {"-n", "400", "-s", "12", "-p", "r1-", "-t", "idfa", t->incoming, NULL};
    assert_int_equal(h_gen(one), 0);
    move_in(t, "r1-0000.tsv.gz");
    wait_done(t, "r1-0000.tsv.gz", 10000);
    assert_int_equal(h_mc_items(mc[0].port), 400);
    /* idfa moves to the spare server */
    write_conf(t, 4, NULL);
    size_t from = t->n.len;
    kill(t->pid, SIGHUP);
    assert_int_equal(h_notify_wait(&t->n, "RELOADING=1", &from, 5000), 0);
    assert_int_equal(h_notify_wait(&t->n, "READY=1", &from, 5000), 0);
    const char *two[] = {"-n", "300",  "-s",       "13",      "-p",        "r2-",
                         "-t", "idfa", "--expect", t->expect, t->incoming, NULL};
    assert_int_equal(h_gen(two), 0);
    move_in(t, "r2-0000.tsv.gz");
    wait_done(t, "r2-0000.tsv.gz", 10000);
    assert_int_equal(h_mc_items(mc[0].port), 400); /* nothing new on the old server */
    /* the ring change re-warmed the spare with r1's keys, then r2 came */
    must_log(t, "ring change: idfa 1 \u2192 1 servers (1 added, 1 removed)", 1000);
    assert_int_equal(h_mc_items(mc[4].port), 700);
    check_keys(t, 300); /* t->servers[0] now names the spare */
    must_log(t, "configuration reloaded", 1000);
}

/* A reload that renumbers the servers (idfa grows to two, so gaid's server
 * is index 2, not 1) while a file owes gaid its records (gaid's memcached
 * is down): the file's retry is still for gaid, whether the result came
 * before the reload or, from the retired worker, after it.  Once gaid is
 * back every key of both files is there. */
static void test_reload_renumbers_owed(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "retry_interval = 1\n");
    start_daemon(t, NULL);
    int gaid_port = mc[1].port;
    h_mc_kill(&mc[1]);
    gen(t, "2000", "1", "21", "a-", t->incoming); /* every type; gaid deferred */
    move_in(t, "a-0000.tsv.gz");
    must_log(t, "a-0000.tsv.gz left in place", 10000);
    char expect1[PATH_MAX + 8];
    snprintf(expect1, sizeof(expect1), "%s.1", t->expect);
    assert_int_equal(rename(t->expect, expect1), 0);
    gen(t, "2000", "1", "22", "b-", t->incoming);
    move_in_held(t, "b-0000.tsv.gz"); /* in flight across the reload */
    char two[128];
    snprintf(two, sizeof(two), "%s,%s", h_endpoint(mc[0].port), h_endpoint(mc[4].port));
    write_conf_addr(t, two, "retry_interval = 1\n");
    size_t from = t->n.len;
    kill(t->pid, SIGHUP);
    assert_int_equal(h_notify_wait(&t->n, "READY=1", &from, 5000), 0);
    h_mc_pause(&mc[0], 0);
    must_log(t, "b-0000.tsv.gz left in place", 10000);
    assert_int_equal(h_mc_start_at(&mc[1], gaid_port, NULL), 0);
    wait_done(t, "a-0000.tsv.gz", 30000);
    wait_done(t, "b-0000.tsv.gz", 30000);
    check_keys(t, 2000);
    char *keep = strdup(t->expect);
    snprintf(t->expect, sizeof(t->expect), "%s", expect1);
    check_keys(t, 2000);
    snprintf(t->expect, sizeof(t->expect), "%s", keep);
    free(keep);
}

static void test_sigterm_mid_file(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    gen(t, "20000", "1", "14", "big-", t->incoming);
    move_in_held(t, "big-0000.tsv.gz");
    h_sleep_ms(200);
    size_t from = 0;
    kill(t->pid, SIGTERM);
    assert_int_equal(h_wait(t->pid, 20), 0);
    t->pid = 0;
    assert_int_equal(h_notify_wait(&t->n, "STOPPING=1", &from, 100), 0);
    h_mc_pause(&mc[0], 0);
    char name[PATH_MAX * 2];
    snprintf(name, sizeof(name), "%s/big-0000.tsv.gz", t->spool);
    assert_true(h_exists(name)); /* not finished: keeps its name */
    /* next start loads it fully */
    start_daemon(t, NULL);
    wait_done(t, "big-0000.tsv.gz", 20000);
    check_keys(t, 20000);
}

static void test_worker_killed_mid_file(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, t->spool, IN_MOVED_TO);
    gen(t, "20000", "1", "15", "k-", t->incoming);
    move_in_held(t, "k-0000.tsv.gz");
    kill_workers(t, SIGKILL, 2);
    h_mc_pause(&mc[0], 0);
    wait_done(t, "k-0000.tsv.gz", 30000);
    check_keys(t, 20000);
    must_log(t, "killed by signal 9", 1000);
    must_log(t, "loaded again from the start", 1000);
    h_sleep_ms(300);
    char why[2 * NAME_MAX + 32];
    assert_int_equal(h_dot_renames(in, ".k-0000.tsv.gz", why, sizeof(why)), 1);
    close(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_status_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drops_and_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_its_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_changes_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_renumbers_owed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_mid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_killed_mid_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

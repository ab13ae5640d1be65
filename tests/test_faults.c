/*
 * test_faults.c — the fault matrix against the real daemon and real
 * memcached: servers down, killed, slow or missing from a cluster; workers
 * and the master killed; inotify overflow; hostile files in the spool;
 * files changed or deleted while loading (names that cannot be renamed and
 * a spool that goes away: test_spool_edges.c).  Each test
 * ends by reading back every key of the files it dropped: nothing lost.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <zlib.h>

#include "daemon_fixture.h"

static int spool_has(struct t *t, const char *name)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", t->spool, name);
    return h_exists(p);
}

/* Keys of one device type only (the others' servers may be down). */
static long check_type(struct t *t, int type, long *checked)
{
    const char *only[4] = {NULL, NULL, NULL, NULL};
    only[type] = t->servers[type];
    return h_check_expect(t->expect, only, checked);
}

static void test_memcached_down_then_back(void **state)
{
    struct t *t = *state;
    int port = mc[0].port;
    h_mc_stop(&mc[0]);
    start_daemon(t, NULL);
    gen(t, "2000", "1", "31", "d-", t->incoming);
    move_in(t, "d-0000.tsv.gz");
    must_log(t, "unreachable", 5000);
    size_t from = 0;
    assert_int_equal(h_notify_wait(&t->n, "memcached down: idfa", &from, 5000), 0);
    must_log(t, "left in place", 5000);
    assert_true(spool_has(t, "d-0000.tsv.gz"));
    long checked;
    assert_int_equal(check_type(t, 1, &checked), 0); /* gaid kept loading */
    assert_true(checked > 300);
    h_sleep_ms(1500); /* a retry or two against the dead server */
    assert_true(spool_has(t, "d-0000.tsv.gz"));
    assert_int_equal(h_mc_start_at(&mc[0], port, NULL), 0);
    wait_done(t, "d-0000.tsv.gz", 30000);
    check_keys(t, 2000);
    must_log(t, "reachable again", 1000);
}

/* Records acknowledged by an instance that then dies are gone: the file
 * must be loaded again in full, not renamed. */
static void test_memcached_killed_mid_file(void **state)
{
    struct t *t = *state;
    int port = mc[0].port;
    write_conf(t, 0, "block_bytes = 4k\nmax_line_bytes = 64k\n"); /* ~1500 batches: a long load */
    start_daemon(t, NULL);
    gen(t, "20000", "1", "32", "k-", t->incoming);
    move_in_held(t, "k-0000.tsv.gz");
    h_mc_pause(&mc[0], 0);
    /* some batches acknowledged (it holds items) ... */
    for (int i = 0; i < 5000 && h_mc_items(port) < 30; i++)
        h_sleep_ms(1);
    h_mc_kill(&mc[0]); /* ... by an instance that loses them now */
    must_log(t, "a server failed after storing some", 10000);
    assert_true(spool_has(t, "k-0000.tsv.gz"));
    h_sleep_ms(500);
    assert_int_equal(h_mc_start_at(&mc[0], port, NULL), 0);
    wait_done(t, "k-0000.tsv.gz", 40000);
    check_keys(t, 20000);
}

/* A hung memcached (SIGSTOP: it accepts, never answers) costs the other
 * types nothing once the health probe has found it down: a file for idfa
 * alone does not wait io_timeout_ms for gaid's `stats` before its load. */
static void test_hung_server_costs_others_nothing(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "health_interval = 1\nio_timeout_ms = 3000\nlog_level = debug\n");
    start_daemon(t, NULL);
    h_sleep_ms(1500); /* gaid's first probe answered */
    h_mc_pause(&mc[1], 1);
    char probe[128];
    snprintf(probe, sizeof(probe), "health probe: %s", t->servers[1]);
    must_log(t, probe, 10000); /* it failed: down */
    const char *g[] = {"-n", "2000", "-s",       "61",      "-t",        "idfa",
                       "-p", "h-",   "--expect", t->expect, t->incoming, NULL};
    assert_int_equal(h_gen(g), 0);
    move_in(t, "h-0000.tsv.gz");
    wait_done(t, "h-0000.tsv.gz", 2500); /* was: >= 3 s, gaid's stats first */
    char skip[160];
    snprintf(skip, sizeof(skip), "no stats of %s before this load", t->servers[1]);
    assert_true(log_contains(t, skip));
    h_mc_pause(&mc[1], 0);
    check_keys(t, 2000);
}

/* A server that hangs while the worker holds a connection to it: the
 * first batch finds it out (up to twice io_timeout_ms: the kept
 * connection, then a new one), then its reconnects are probes off the
 * write path and the other types load at full speed.  Before, each
 * reconnect held a batch for io_timeout_ms (backoff 50 ms .. 5 s), and
 * the hung file took seconds more.  The same file, nothing hung, is the
 * yardstick. */
static void test_hung_server_probed_off_the_write_path(void **state)
{
    struct t *t = *state;
    const int io_timeout = 1000;
    char extra[160];
    snprintf(extra, sizeof(extra),
             "workers = 1\nhealth_interval = 1\nretry_interval = 1\nlog_level = debug\n"
             "io_timeout_ms = %d\n",
             io_timeout);
    write_conf(t, 0, extra);
    start_daemon(t, NULL);
    gen(t, "300000", "2", "71", "q-", t->incoming);
    long t0 = h_now_ms();
    move_in(t, "q-0000.tsv.gz");
    wait_done(t, "q-0000.tsv.gz", 30000);
    long plain = h_now_ms() - t0;
    h_mc_pause(&mc[1], 1); /* gaid hangs, the worker's connection to it open */
    char probe[128];
    snprintf(probe, sizeof(probe), "health probe: %s", t->servers[1]);
    must_log(t, probe, 10000); /* the master knows: no `stats` wait before the load */
    t0 = h_now_ms();
    move_in(t, "q-0001.tsv.gz");
    must_log(t, "q-0001.tsv.gz left in place", 30000);
    long hung = h_now_ms() - t0;
    fprintf(stderr, "300000 lines: %ld ms, %ld ms with gaid hung (io_timeout_ms = %d)\n", plain,
            hung, io_timeout);
    if (hung > plain + 2 * io_timeout + 1500)
        fail_msg("with gaid hung the file took %ld ms, %ld ms without", hung, plain);
    h_mc_pause(&mc[1], 0);
    wait_done(t, "q-0001.tsv.gz", 30000); /* retried for gaid */
    check_keys(t, 600000);
}

/* An answer slower than io_timeout_ms on a kept connection (idfa behind
 * a proxy that holds the answers of the connections open at that moment
 * for 1.5 s): the batch goes again on a new connection and memcached did
 * not restart, so the records it acknowledged before are kept and the
 * file is loaded once.  It was "left in place: 0 records not stored, and
 * a server failed after storing some" and loaded again (under packet
 * loss, again and again). */
static void test_slow_answer_is_not_a_loss(void **state)
{
    struct t *t = *state;
    int port = h_free_port();
    char lport[16], tport[16], addr[64];
    snprintf(lport, sizeof(lport), "%d", port);
    snprintf(tport, sizeof(tport), "%d", mc[0].port);
    const char *argv[] = {MEMC_RTT_PROXY, lport, tport, "0", "1500", NULL};
    pid_t proxy = h_spawn(argv, "/dev/null");
    assert_true(proxy > 0);
    h_sleep_ms(200); /* listening */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    write_conf_addr(t, addr, "workers = 1\nio_timeout_ms = 1000\n");
    start_daemon(t, NULL);
    gen(t, "300000", "2", "73", "z-", t->incoming);
    move_in(t, "z-0000.tsv.gz"); /* the connection to keep */
    wait_done(t, "z-0000.tsv.gz", 30000);
    move_in(t, "z-0001.tsv.gz");
    must_log(t, "loading z-0001.tsv.gz", 10000);
    h_sleep_ms(300); /* idfa has acknowledged records of it */
    kill(proxy, SIGUSR1);
    wait_done(t, "z-0001.tsv.gz", 30000);
    assert_false(log_contains(t, "z-0001.tsv.gz left in place"));
    assert_true(log_contains(t, "did not restart"));
    check_keys(t, 600000); /* idfa through the proxy */
    kill(proxy, SIGTERM);
    h_wait(proxy, 10);
}

static void test_slow_memcached_watchdog(void **state)
{
    struct t *t = *state;
    start_daemon(t, "300000");
    gen(t, "20000", "1", "33", "w-", t->incoming);
    move_in_held(t, "w-0000.tsv.gz");
    size_t from = t->n.len;
    h_sleep_ms(3000); /* memcached frozen: timeouts, but no hang */
    int pings = 0;
    size_t pos = from;
    while (h_notify_wait(&t->n, "WATCHDOG=1", &pos, 0) == 0)
        pings++;
    assert_true(pings >= 8); /* every 150 ms while the loop is healthy */
    assert_int_equal(kill(t->pid, 0), 0);
    h_mc_pause(&mc[0], 0);
    wait_done(t, "w-0000.tsv.gz", 40000);
    check_keys(t, 20000);
}

static void test_worker_segv(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    gen(t, "20000", "1", "34", "s-", t->incoming);
    move_in_held(t, "s-0000.tsv.gz");
    kill_workers(t, SIGSEGV, 1);
    h_mc_pause(&mc[0], 0);
    wait_done(t, "s-0000.tsv.gz", 30000);
    check_keys(t, 20000);
    /* "killed by signal 11" — or, under AddressSanitizer, which catches the
     * signal itself, "exited with status 1": either way the worker died */
    must_log(t, "while loading s-0000.tsv.gz; the file will be loaded again", 1000);
}

static void test_master_killed_and_restarted(void **state)
{
    struct t *t = *state;
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, t->spool, IN_MOVED_TO);
    start_daemon(t, NULL);
    gen(t, "20000", "1", "35", "m-", t->incoming);
    move_in_held(t, "m-0000.tsv.gz");
    pid_t kids[16];
    int n = h_children(t->pid, kids, 16);
    kill(t->pid, SIGKILL);
    assert_int_equal(h_wait(t->pid, 10), 128 + SIGKILL);
    t->pid = 0;
    for (int i = 0; i < n; i++) /* workers follow their master (PDEATHSIG) */
        for (int k = 0; k < 200 && kill(kids[i], 0) == 0; k++)
            h_sleep_ms(10);
    for (int i = 0; i < n; i++)
        assert_int_equal(kill(kids[i], 0), -1);
    h_mc_pause(&mc[0], 0);
    assert_true(spool_has(t, "m-0000.tsv.gz"));
    start_daemon(t, NULL);
    wait_done(t, "m-0000.tsv.gz", 30000);
    check_keys(t, 20000);
    h_sleep_ms(300);
    char why[2 * NAME_MAX + 32];
    assert_int_equal(h_dot_renames(in, ".m-0000.tsv.gz", why, sizeof(why)), 1);
    close(in);
}

static void test_cluster_member_dies(void **state)
{
    struct t *t = *state;
    char cluster[64];
    snprintf(cluster, sizeof(cluster), "%s,%s", h_endpoint(mc[0].port), h_endpoint(mc[4].port));
    write_conf_addr(t, cluster, NULL);
    int port = mc[4].port;
    h_mc_stop(&mc[4]);
    start_daemon(t, NULL);
    const char *args[] = {"-n", "2000", "-s",       "36",      "-p",        "c-",
                          "-t", "idfa", "--expect", t->expect, t->incoming, NULL};
    assert_int_equal(h_gen(args), 0);
    move_in(t, "c-0000.tsv.gz");
    must_log(t, "left in place", 10000); /* never "loaded" with a share missing */
    assert_false(log_contains(t, "c-0000.tsv.gz loaded"));
    long on_live = h_mc_items(mc[0].port);
    assert_true(on_live > 500 && on_live < 1500); /* the live member's share */
    assert_int_equal(h_mc_start_at(&mc[4], port, NULL), 0);
    wait_done(t, "c-0000.tsv.gz", 30000);
    check_keys(t, 2000);
}

static void test_burst_with_inotify_overflow(void **state)
{
    struct t *t = *state;
    const char *knob = "/proc/sys/fs/inotify/max_queued_events";
    char *saved = h_read_file(knob, NULL);
    int forced = saved && h_write_file(knob, "64\n") == 0;
    start_daemon(t, NULL); /* its inotify instance gets the small queue */
    if (forced)
        h_write_file(knob, saved);
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, t->spool, IN_MOVED_TO);
    gen(t, "5", "2000", "37", "b-", t->incoming);
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "b-%04d.tsv.gz", i);
        move_in(t, name);
    }
    wait_done(t, "b-1999.tsv.gz", 120000);
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "b-%04d.tsv.gz", i);
        wait_done(t, name, 1000);
    }
    check_keys(t, 10000);
    if (forced)
        must_log(t, "inotify queue overflowed; rescanning", 1000);
    /* in name order, each once */
    char why[2 * NAME_MAX + 32];
    int dots = h_dot_renames(in, NULL, why, sizeof(why));
    if (dots < 0)
        fail_msg("%s", why);
    assert_int_equal(dots, 2000);
    close(in);
    free(saved);
}

/* gzip text into the spool under name (written elsewhere, renamed in). */
static void drop_gz(struct t *t, const char *name, const void *text, size_t len)
{
    char tmp[PATH_MAX * 2], dst[PATH_MAX * 2];
    snprintf(tmp, sizeof(tmp), "%s/x.gz", t->incoming);
    snprintf(dst, sizeof(dst), "%s/%s", t->spool, name);
    assert_int_equal(h_gz_write(tmp, text, len), 0);
    assert_int_equal(rename(tmp, dst), 0);
}

static void test_hostile_spool(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    char p[PATH_MAX * 2], q[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/a-dir.tsv.gz", t->spool);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/b-fifo.tsv.gz", t->spool);
    assert_int_equal(mkfifo(p, 0644), 0);
    gen(t, "100", "1", "38", "target-", t->incoming);
    snprintf(p, sizeof(p), "%s/target-0000.tsv.gz", t->incoming);
    snprintf(q, sizeof(q), "%s/c-link.tsv.gz", t->spool);
    assert_int_equal(symlink(p, q), 0);
    /* a truncated gzip file */
    char half[PATH_MAX * 2];
    snprintf(half, sizeof(half), "%s/half.gz", t->incoming);
    char *lines = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        lines[i] = "0123456789\t\n"[((unsigned)i * 7919u) % 12u];
    assert_int_equal(h_gz_write(half, lines, 1 << 20), 0);
    free(lines);
    struct stat st;
    assert_int_equal(stat(half, &st), 0);
    assert_int_equal(truncate(half, st.st_size / 2), 0); /* cut in the middle */
    snprintf(p, sizeof(p), "%s/d-corrupt.tsv.gz", t->spool);
    assert_int_equal(rename(half, p), 0);
    snprintf(p, sizeof(p), "%s/e-corrupt.tsv.gz", t->spool);
    h_write_file(p, "\x1f\x8b\x08\x00garbage that is not deflate data at all......");
    /* a 50 MB line without a newline, then a good line (bounded memory) */
    size_t big = 50u << 20;
    char *text = malloc(big + 64);
    memset(text, 'a', big);
    int tail = snprintf(text + big, 64, "\nidfa\tafter-long\t1\t2\t3\n");
    drop_gz(t, "f-longline.tsv.gz", text, big + (size_t)tail);
    free(text);
    drop_gz(t, "h-blank.tsv.gz", "\n\n  \n\n", 6); /* blank lines only: loaded, said */
    const char *weird = "g we ird\nname;$(touch x)'\".tsv.gz";
    const char *line = "gaid\tweird-name\t1.5\t2.5\t7,8\n";
    drop_gz(t, weird, line, strlen(line));
    gen(t, "500", "1", "39", "z-", t->incoming);
    move_in(t, "z-0000.tsv.gz");
    wait_done(t, "z-0000.tsv.gz", 20000);
    check_keys(t, 500);
    assert_true(spool_has(t, ".d-corrupt.tsv.gz.failed"));
    assert_true(spool_has(t, ".e-corrupt.tsv.gz.failed"));
    assert_true(spool_has(t, ".f-longline.tsv.gz")); /* loaded: 1 error line, 1 record */
    char dotweird[PATH_MAX];
    snprintf(dotweird, sizeof(dotweird), ".%s", weird);
    assert_true(spool_has(t, dotweird));
    assert_true(spool_has(t, "a-dir.tsv.gz"));  /* skipped, left alone */
    assert_true(spool_has(t, "b-fifo.tsv.gz")); /* skipped, never opened blocking */
    assert_true(spool_has(t, "c-link.tsv.gz")); /* never followed */
    must_log(t, "c-link.tsv.gz is a symlink", 1000);
    must_log(t, "a-dir.tsv.gz is not a regular file", 1000);
    must_log(t, "b-fifo.tsv.gz is not a regular file", 1000);
    must_log(t, "g we ird\\x0aname;$(touch x)'\".tsv.gz loaded", 1000); /* escaped */
    must_log(t, "line longer than max_line_bytes", 1000);
    must_log(t, "bytes)", 1000); /* its example: the line's start and its length */
    must_log(t, "h-blank.tsv.gz loaded: 0 records stored", 1000);
    must_log(t, "no record at all (0 non-blank lines)", 1000);
    size_t len;
    char *v = h_mc_get(t->servers[0], "idfa:after-long", &len);
    assert_non_null(v); /* the line after the 50 MB one loaded */
    free(v);
    v = h_mc_get(t->servers[1], "gaid:weird-name", &len);
    assert_non_null(v);
    free(v);
    assert_int_equal(kill(t->pid, 0), 0); /* still running */
    stop_daemon(t);
    /* bounded memory: every worker stayed far below a 50 MB line */
    char *log = h_read_file(t->log, NULL);
    int workers = 0;
    for (char *s = log; (s = strstr(s, "exited with status 0 (peak RSS ")); s++) {
        long kib = atol(s + strlen("exited with status 0 (peak RSS "));
        assert_true(kib > 0 && kib < 32 * 1024);
        workers++;
    }
    assert_true(workers >= 2);
    free(log);
}

static void test_changed_or_deleted_while_loading(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    gen(t, "20000", "1", "40", "a-", t->incoming);
    move_in_held(t, "a-0000.tsv.gz");
    /* append a second gzip member while it loads */
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/a-0000.tsv.gz", t->spool);
    gzFile g = gzopen(p, "ab");
    const char *more = "dvid\tappended-record\t3\t4\t5\n";
    gzwrite(g, more, (unsigned)strlen(more));
    gzclose(g);
    h_mc_pause(&mc[0], 0);
    must_log(t, "a-0000.tsv.gz changed while loading", 20000);
    wait_done(t, "a-0000.tsv.gz", 30000);
    check_keys(t, 20000);
    size_t len;
    char *v = h_mc_get(t->servers[3], "dvid:appended-record", &len);
    assert_non_null(v);
    free(v);
    /* truncated in place under the reader (which then sees a cut gzip
     * stream), then written whole again: not set aside as corrupt, loaded
     * once it stops changing */
    gen(t, "20000", "1", "42", "c-", t->incoming);
    snprintf(p, sizeof(p), "%s/c-0000.tsv.gz", t->incoming);
    size_t clen;
    char *whole = h_read_file(p, &clen);
    move_in_held(t, "c-0000.tsv.gz");
    snprintf(p, sizeof(p), "%s/c-0000.tsv.gz", t->spool);
    assert_int_equal(truncate(p, (off_t)clen / 4), 0);
    h_mc_pause(&mc[0], 0);
    must_log(t, "c-0000.tsv.gz changed while loading", 20000);
    int fd = open(p, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, whole, clen), (ssize_t)clen);
    close(fd);
    free(whole);
    wait_done(t, "c-0000.tsv.gz", 30000);
    assert_false(spool_has(t, ".c-0000.tsv.gz.failed"));
    check_keys(t, 20000); /* memc-gen rewrote the expect list: c- keys */
    /* deleted while loading: forgotten, nothing renamed */
    gen(t, "20000", "1", "41", "b-", t->incoming);
    move_in_held(t, "b-0000.tsv.gz");
    snprintf(p, sizeof(p), "%s/b-0000.tsv.gz", t->spool);
    assert_int_equal(unlink(p), 0);
    h_mc_pause(&mc[0], 0);
    must_log(t, "b-0000.tsv.gz was deleted while loading", 20000);
    assert_false(spool_has(t, ".b-0000.tsv.gz"));
    assert_int_equal(kill(t->pid, 0), 0);
}

/* The spool directory moved away or deleted under the daemon: a clear
 * journal line and a non-zero exit (systemd's Restart=on-failure then
 * starts it again and it waits for the directory). */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memcached_down_then_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_killed_mid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_memcached_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_segv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_killed_and_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_member_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_with_inotify_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server_costs_others_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server_probed_off_the_write_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slow_answer_is_not_a_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_or_deleted_while_loading, setup, teardown),
    };
    if (getenv("TEST_FILTER")) /* TEST_FILTER=test_hung_* ./test_faults */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

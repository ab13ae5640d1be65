/*
 * test_spool_edges.c — what a hostile or careless environment does to the
 * spool, against the real daemon and real memcached: names that cannot be
 * renamed, a rename blocked until the operator fixes the directory, hard
 * links, producers writing or appending in place (across a restart), and a
 * spool directory that is missing, removed or moved.  Each test reads back
 * every key of the files it dropped: nothing lost.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_fixture.h"

static int spool_has(struct t *t, const char *name)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", t->spool, name);
    return h_exists(p);
}

static void spool_path(struct t *t, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", t->spool, name);
}

/* Files whose keys are not checked (the --expect listing stays as it is). */
static void gen_unlisted(struct t *t, const char *lines, const char *seed, const char *prefix)
{
    const char *args[] = {"-n", lines, "-s", seed, "-p", prefix, t->incoming, NULL};
    assert_int_equal(h_gen(args), 0);
}

/* Copy incoming/NAME into the spool as to, by writing (not renaming). */
static void write_in_place(struct t *t, const char *name, const char *to, int chunks, int pause_ms)
{
    char from[PATH_MAX * 2], dst[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/%s", t->incoming, name);
    spool_path(t, to, dst, sizeof(dst));
    size_t len;
    char *data = h_read_file(from, &len);
    assert_non_null(data);
    int fd = open(dst, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    for (int i = 0; i < chunks; i++) {
        size_t a = len * (size_t)i / (size_t)chunks, b = len * (size_t)(i + 1) / (size_t)chunks;
        assert_int_equal(write(fd, data + a, b - a), (ssize_t)(b - a));
        if (i + 1 < chunks)
            h_sleep_ms(pause_ms);
    }
    close(fd);
    free(data);
}

/* A name too long for ".NAME.failed" is refused at pick-up, once; a
 * directory sitting at ".NAME" leaves that file under its name and the
 * later files go on; a ".NAME" from an earlier load is replaced, and said. */
static void test_unrenamable_names(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    char longname[NAME_MAX + 1], blocker[PATH_MAX * 2], old[PATH_MAX * 2];
    memset(longname, 'a', 241);
    strcpy(longname + 241, ".tsv.gz"); /* 248 bytes */
    gen_unlisted(t, "50", "63", "long-");
    gen(t, "200", "2", "61", "p-", t->incoming); /* p-0000 will be blocked, p-0001 not */
    spool_path(t, ".p-0000.tsv.gz", blocker, sizeof(blocker));
    assert_int_equal(mkdir(blocker, 0755), 0);
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/long-0000.tsv.gz", t->incoming);
    spool_path(t, longname, to, sizeof(to));
    assert_int_equal(rename(from, to), 0);
    must_log(t, "too long to rename", 5000);
    move_in(t, "p-0000.tsv.gz");
    must_log(t, "waiting will not fix that", 10000);
    move_in(t, "p-0001.tsv.gz");
    wait_done(t, "p-0001.tsv.gz", 10000); /* not held back by p-0000 */
    assert_true(spool_has(t, "p-0000.tsv.gz"));
    assert_true(spool_has(t, longname));
    char loading[NAME_MAX + 16];
    snprintf(loading, sizeof(loading), "loading %.20s", longname);
    assert_false(log_contains(t, loading));
    /* a refused name is reported once, even when it is written again */
    int fd = open(to, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    close(fd); /* IN_CLOSE_WRITE */
    h_sleep_ms(300);
    assert_int_equal(log_count(t, "too long to rename"), 1);
    check_keys(t, 400); /* both p- files are in memcached */

    /* a leftover .NAME from an earlier load: replaced, and the journal says so */
    gen_unlisted(t, "20", "64", "r-");
    spool_path(t, ".r-0000.tsv.gz", old, sizeof(old));
    assert_int_equal(h_write_file(old, "an earlier load"), 0);
    move_in(t, "r-0000.tsv.gz");
    wait_done(t, "r-0000.tsv.gz", 10000);
    must_log(t, "r-0000.tsv.gz replaces .r-0000.tsv.gz from an earlier load", 1000);
    assert_int_equal(rmdir(blocker), 0);
}

/* --oneshot: a file loaded but not renamed is left in place: exit 75. */
static void test_oneshot_rename_fails_is_75(void **state)
{
    struct t *t = *state;
    char blocker[PATH_MAX * 2];
    gen(t, "100", "1", "65", "o-", t->incoming);
    move_in(t, "o-0000.tsv.gz");
    spool_path(t, ".o-0000.tsv.gz", blocker, sizeof(blocker));
    assert_int_equal(mkdir(blocker, 0755), 0);
    const char *argv[] = {MEMC_BIN, "--oneshot", "--config", t->conf, NULL};
    assert_int_equal(h_run(argv, t->log, 60), 75);
    must_log(t, "waiting will not fix that", 100);
    check_keys(t, 100);
    assert_int_equal(rmdir(blocker), 0);
    assert_int_equal(h_run(argv, t->log, 60), 0);
    assert_true(spool_has(t, ".o-0000.tsv.gz"));
}

/* Renames fail for a reason the operator fixes for the whole spool
 * (here an immutable directory: EPERM even for root): later files wait,
 * retried with back-off, and everything is renamed once it is fixed. */
static void test_rename_blocked_until_fixed(void **state)
{
    struct t *t = *state;
    char cmd[PATH_MAX * 2 + 32];
    start_daemon(t, NULL);
    gen(t, "300", "2", "42", "x-", t->incoming);
    move_in_held(t, "x-0000.tsv.gz");
    move_in(t, "x-0001.tsv.gz");
    snprintf(cmd, sizeof(cmd), "chattr +i '%s' 2>/dev/null", t->spool);
    if (system(cmd) != 0) {
        h_mc_pause(&mc[0], 0);
        skip(); /* a file system without the immutable attribute */
    }
    h_mc_pause(&mc[0], 0);
    must_log(t, "cannot rename x-0000.tsv.gz", 10000);
    must_log(t, "will retry (later files wait)", 100);
    must_log(t, "x-0001.tsv.gz loaded", 10000);
    h_sleep_ms(300);
    assert_true(spool_has(t, "x-0000.tsv.gz") && spool_has(t, "x-0001.tsv.gz"));
    snprintf(cmd, sizeof(cmd), "chattr -i '%s'", t->spool);
    assert_int_equal(system(cmd), 0);
    wait_done(t, "x-0000.tsv.gz", 15000);
    wait_done(t, "x-0001.tsv.gz", 1000);
    must_log(t, "renames resumed", 100);
    assert_int_equal(log_count(t, "cannot rename"), 1); /* said once, not per retry */
    check_keys(t, 600);
}

/* ln .old new: IN_CREATE and no IN_CLOSE_WRITE.  Loaded once it settled. */
static void test_hard_link_is_loaded(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "settle_time = 0.5\n");
    start_daemon(t, NULL);
    gen(t, "500", "1", "51", "a-", t->incoming);
    move_in(t, "a-0000.tsv.gz");
    wait_done(t, "a-0000.tsv.gz", 10000);
    h_mc_flush(mc[0].port);
    char old[PATH_MAX * 2], linked[PATH_MAX * 2];
    spool_path(t, ".a-0000.tsv.gz", old, sizeof(old));
    spool_path(t, "n-0000.tsv.gz", linked, sizeof(linked));
    assert_int_equal(link(old, linked), 0);
    wait_done(t, "n-0000.tsv.gz", 10000);
    check_keys(t, 500); /* idfa's share came back from the linked copy */
}

/* A producer writes a file in place over ~2 s; the daemon restarts in the
 * middle.  Nothing is set aside: it is loaded whole once it stops changing. */
static void test_restart_during_in_place_write(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "settle_time = 1\n");
    start_daemon(t, NULL);
    gen(t, "10000", "1", "71", "grow-", t->incoming);
    char from[PATH_MAX * 2], dst[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/grow-0000.tsv.gz", t->incoming);
    spool_path(t, "grow.tsv.gz", dst, sizeof(dst));
    size_t len;
    char *data = h_read_file(from, &len);
    assert_non_null(data);
    int fd = open(dst, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    for (int i = 0; i < 10; i++) {
        size_t a = len * (size_t)i / 10, b = len * (size_t)(i + 1) / 10;
        assert_int_equal(write(fd, data + a, b - a), (ssize_t)(b - a));
        if (i == 4) { /* half written: restart the daemon */
            stop_daemon(t);
            start_daemon(t, NULL);
        }
        h_sleep_ms(200);
    }
    close(fd);
    free(data);
    wait_done(t, "grow.tsv.gz", 15000);
    assert_false(spool_has(t, ".grow.tsv.gz.failed"));
    check_keys(t, 10000);
}

/* gzip -c >> f, five times, closer together than settle_time: one load of
 * all five members. */
static void test_appending_producer(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "settle_time = 1.5\n");
    start_daemon(t, NULL);
    gen(t, "400", "5", "81", "chunk-", t->incoming);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "chunk-%04d.tsv.gz", i);
        write_in_place(t, name, "f.tsv.gz", 1, 0);
        h_sleep_ms(300);
    }
    wait_done(t, "f.tsv.gz", 10000);
    assert_int_equal(log_count(t, "loading f.tsv.gz"), 1);
    check_keys(t, 2000);
}

/* Two memc-load on one spool: the second says who holds it and exits 75,
 * or waits with --wait-lock and takes over when the first stops.  Every
 * file is loaded and renamed exactly once. */
/* Lines in a file (an early exit's whole output). */
static int lines_in(const char *path)
{
    char *text = h_read_file(path, NULL);
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    if (n != 1)
        fprintf(stderr, "%s:\n%s", path, text ? text : "");
    free(text);
    return n;
}

static void test_one_daemon_per_spool(void **state)
{
    struct t *t = *state;
    start_daemon(t, NULL);
    char second_log[PATH_MAX + 16], want[64];
    snprintf(second_log, sizeof(second_log), "%s/second.log", t->dir);
    const char *oneshot[] = {MEMC_BIN, "--oneshot", "--config", t->conf, NULL};
    assert_int_equal(h_run(oneshot, second_log, 30), 75);
    snprintf(want, sizeof(want), "locked by memc-load pid %d", (int)t->pid);
    assert_int_equal(h_wait_text(second_log, want, 100), 0);
    assert_int_equal(lines_in(second_log), 1); /* exactly the one error */

    const char *waiting[] = {MEMC_BIN, "--config", t->conf, "--wait-lock", NULL};
    pid_t second = h_spawn(waiting, second_log);
    assert_true(second > 0);
    assert_int_equal(h_wait_text(second_log, "; waiting", 5000), 0);
    gen(t, "300", "4", "95", "w-", t->incoming);
    move_in(t, "w-0000.tsv.gz");
    move_in(t, "w-0001.tsv.gz");
    wait_done(t, "w-0000.tsv.gz", 10000);
    wait_done(t, "w-0001.tsv.gz", 10000);
    stop_daemon(t); /* the second takes over */
    move_in(t, "w-0002.tsv.gz");
    move_in(t, "w-0003.tsv.gz");
    wait_done(t, "w-0002.tsv.gz", 10000);
    wait_done(t, "w-0003.tsv.gz", 10000);
    kill(second, SIGTERM);
    assert_int_equal(h_wait(second, 30), 0);
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof(name), "loading w-%04d.tsv.gz", i);
        assert_int_equal(log_count(t, name) + (h_wait_text(second_log, name, 0) == 0), 1);
    }
    check_keys(t, 1200);
}

static void start_no_ready(struct t *t)
{
    setenv("NOTIFY_SOCKET", t->n.path, 1);
    const char *argv[] = {MEMC_BIN, "--config", t->conf, NULL};
    t->pid = h_spawn(argv, t->log);
    unsetenv("NOTIFY_SOCKET");
    assert_true(t->pid > 0);
}

/* A spool that is not there yet: wait for it (no READY=1 before), then
 * watch it; removed or moved away while running: wait again, nothing
 * lost; --oneshot says 66. */
static void test_spool_missing_then_back(void **state)
{
    struct t *t = *state;
    char moved[PATH_MAX + 16];
    snprintf(moved, sizeof(moved), "%s.moved", t->spool);
    assert_int_equal(rmdir(t->spool), 0);
    const char *oneshot[] = {MEMC_BIN, "--oneshot", "--config", t->conf, NULL};
    char early[PATH_MAX + 16];
    snprintf(early, sizeof(early), "%s/early.log", t->dir);
    assert_int_equal(h_run(oneshot, early, 30), 66);
    assert_int_equal(lines_in(early), 1); /* the one error, no noise after it */

    size_t from = t->n.len;
    start_no_ready(t);
    assert_int_equal(h_notify_wait(&t->n, "STATUS=waiting for spool directory", &from, 5000), 0);
    must_log(t, "does not exist (yet); waiting for it", 1000);
    assert_int_equal(h_notify_wait(&t->n, "READY=1", NULL, 500), -1);
    assert_int_equal(mkdir(t->spool, 0755), 0);
    assert_int_equal(h_notify_wait(&t->n, "READY=1", NULL, 5000), 0);
    gen(t, "300", "2", "91", "s-", t->incoming);
    move_in(t, "s-0000.tsv.gz");
    wait_done(t, "s-0000.tsv.gz", 10000);

    /* moved away, a file dropped into it meanwhile, moved back */
    assert_int_equal(rename(t->spool, moved), 0);
    must_log(t, "was deleted or moved; waiting for it to come back", 5000);
    char from_p[PATH_MAX * 2], to_p[PATH_MAX * 2];
    snprintf(from_p, sizeof(from_p), "%s/s-0001.tsv.gz", t->incoming);
    snprintf(to_p, sizeof(to_p), "%s/s-0001.tsv.gz", moved);
    assert_int_equal(rename(from_p, to_p), 0);
    h_sleep_ms(300);
    assert_int_equal(kill(t->pid, 0), 0); /* still running */
    assert_int_equal(rename(moved, t->spool), 0);
    wait_done(t, "s-0001.tsv.gz", 10000);
    check_keys(t, 600);

    /* removed (rmdir) and made again */
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->spool);
    assert_int_equal(system(cmd), 0);
    must_log(t, "waiting for it to come back", 5000);
    assert_int_equal(mkdir(t->spool, 0755), 0);
    gen(t, "100", "1", "92", "u-", t->incoming);
    h_sleep_ms(700); /* found again (it looks twice a second) */
    move_in(t, "u-0000.tsv.gz");
    wait_done(t, "u-0000.tsv.gz", 10000);
    assert_int_equal(kill(t->pid, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unrenamable_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oneshot_rename_fails_is_75, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_blocked_until_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_link_is_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_during_in_place_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appending_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_missing_then_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_daemon_per_spool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

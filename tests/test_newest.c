/*
 * test_newest.c — the newest value always wins, against the real daemon
 * and real memcached: for every key memcached holds the value of the
 * latest file by name, whatever the worker count, outages, retries, late
 * files or restarts of memc-load.
 *
 * Every file here has the same keys (or a known part of them) with values
 * that depend on the file, in an order that depends on the file, so two
 * files written at the same time interleave their keys; the expectation
 * is computed by the test itself (which file is the latest for a key) and
 * compared key by key with the bytes a one-file load of that file stores
 * in the spare memcached.
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

static const char *const types[4] = {"idfa", "gaid", "adid", "dvid"};

/* File n-NN.tsv.gz in dir: keys [0, keys) of the types in type_mask, in
 * an order of the file's own (a stride co-prime with keys), values of
 * file n. */
static void make_file(const char *dir, int n, int keys, unsigned type_mask)
{
    size_t cap = (size_t)keys * 4 * 64 + 1, len = 0;
    char *text = malloc(cap), path[PATH_MAX * 2];
    int stride = (n % 2) ? keys - 1 : 1; /* odd files go backwards */
    for (int j = 0; j < keys; j++) {
        int i = (int)(((long)j * stride) % keys);
        for (int ty = 0; ty < 4; ty++)
            if (type_mask >> ty & 1)
                len += (size_t)snprintf(text + len, cap - len, "%s\tk%06d\t%d.5\t-%d.25\t%d,%d\n",
                                        types[ty], i, n, i % 90, n, i);
    }
    snprintf(path, sizeof(path), "%s/n-%02d.tsv.gz", dir, n);
    assert_int_equal(h_gz_write(path, text, len), 0);
    free(text);
}

static void name_of(int n, char *buf, size_t len)
{
    snprintf(buf, len, "n-%02d.tsv.gz", n);
}

/* What a load of file n alone (types in type_mask) stores: into the spare
 * memcached, flushed first. */
static void reference_load(struct t *t, int n, int keys, unsigned type_mask)
{
    char dir[PATH_MAX * 2], pattern[PATH_MAX * 3];
    snprintf(dir, sizeof(dir), "%s/ref-%d", t->dir, n);
    assert_int_equal(mkdir(dir, 0755), 0);
    make_file(dir, n, keys, type_mask);
    snprintf(pattern, sizeof(pattern), "%s/*.tsv.gz", dir);
    char *spare = strdup(h_endpoint(mc[4].port));
    h_mc_flush(mc[4].port);
    const char *args[] = {MEMC_BIN, "--oneshot", "--config",  "/dev/null", "--pattern", pattern,
                          "--idfa", spare,       "--gaid",    spare,       "--adid",    spare,
                          "--dvid", spare,       "--workers", "1",         NULL};
    char log[PATH_MAX * 2];
    snprintf(log, sizeof(log), "%s/ref.log", t->dir);
    assert_int_equal(h_run(args, log, 60), 0);
    free(spare);
}

/* Every key of the types in type_mask, [0, keys), on the daemon's servers
 * equals what the spare holds (the reference load); returns mismatches. */
static int compare_with_spare(struct t *t, int keys, unsigned type_mask)
{
    char *spare = strdup(h_endpoint(mc[4].port));
    int bad = 0;
    for (int ty = 0; ty < 4; ty++) {
        if (!(type_mask >> ty & 1))
            continue;
        for (int i = 0; i < keys; i++) {
            char key[64];
            size_t l1 = 0, l2 = 0;
            snprintf(key, sizeof(key), "%s:k%06d", types[ty], i);
            char *got = h_mc_get(t->servers[ty], key, &l1), *want = h_mc_get(spare, key, &l2);
            if (!want)
                fail_msg("reference lacks %s", key);
            if (!got || l1 != l2 || memcmp(got, want, l1) != 0) {
                if (bad < 5)
                    fprintf(stderr, "%s: %s\n", key, got ? "older value" : "missing");
                bad++;
            }
            free(got);
            free(want);
        }
    }
    free(spare);
    return bad;
}

/* Files with the same keys renamed in at once, three workers: every key
 * holds the last file's value. */
static void test_overlapping_files_parallel(void **state)
{
    struct t *t = *state;
    const int nfiles = 10, keys = 4000;
    write_conf(t, 0, "workers = 3\n");
    start_daemon(t, NULL);
    for (int n = 1; n <= nfiles; n++)
        make_file(t->incoming, n, keys, 0xf);
    char name[64];
    for (int n = 1; n <= nfiles; n++) {
        name_of(n, name, sizeof(name));
        move_in(t, name);
    }
    name_of(nfiles, name, sizeof(name));
    for (int n = 1; n <= nfiles; n++) {
        name_of(n, name, sizeof(name));
        wait_done(t, name, 60000);
    }
    reference_load(t, nfiles, keys, 0xf);
    assert_int_equal(compare_with_spare(t, keys, 0xf), 0);
    assert_false(log_contains(t, "different"));
}

/* An older file left because gaid hung (its other types stored); a newer
 * file without gaid lines loads; the older one's retry is for gaid alone,
 * so idfa/adid/dvid keep the newer values. */
static void test_retry_is_for_the_missing_server(void **state)
{
    struct t *t = *state;
    const int keys = 2000;
    write_conf(t, 0, "io_timeout_ms = 300\nretry_interval = 1\n");
    start_daemon(t, NULL);
    make_file(t->incoming, 1, keys, 0xf); /* all types */
    make_file(t->incoming, 2, keys, 0xd); /* idfa, adid, dvid */
    h_mc_pause(&mc[1], 1);                /* gaid hangs */
    move_in(t, "n-01.tsv.gz");
    size_t from = t->n.len;
    must_log(t, "n-01.tsv.gz left in place", 20000);
    /* nothing loading, a file waiting: STATUS does not say "idle" */
    assert_int_equal(h_notify_wait(&t->n, "STATUS=waiting to retry", &from, 5000), 0);
    move_in(t, "n-02.tsv.gz");
    must_log(t, "n-02.tsv.gz loaded", 20000);
    h_mc_pause(&mc[1], 0);
    wait_done(t, "n-01.tsv.gz", 30000);
    wait_done(t, "n-02.tsv.gz", 30000);
    reference_load(t, 2, keys, 0xd);
    assert_int_equal(compare_with_spare(t, keys, 0xd), 0); /* not reverted to n-01's */
    reference_load(t, 1, keys, 0x2);
    assert_int_equal(compare_with_spare(t, keys, 0x2), 0); /* gaid: n-01's, retried */
}

/* An older name arriving after a newer file was loaded: the newer file is
 * replayed for the servers the late one wrote, and the journal says so. */
static void test_late_older_file(void **state)
{
    struct t *t = *state;
    const int keys = 2000;
    write_conf(t, 0, NULL);
    start_daemon(t, NULL);
    make_file(t->incoming, 5, keys / 2, 0x3); /* idfa, gaid: half the keys */
    move_in(t, "n-05.tsv.gz");
    wait_done(t, "n-05.tsv.gz", 20000);
    make_file(t->incoming, 3, keys, 0x7); /* late: idfa, gaid, adid */
    move_in(t, "n-03.tsv.gz");
    wait_done(t, "n-03.tsv.gz", 20000);
    must_log(t, "came after newer files", 10000);
    must_log(t, "finished: ", 20000);
    reference_load(t, 5, keys / 2, 0x3); /* the shared keys: n-05's */
    assert_int_equal(compare_with_spare(t, keys / 2, 0x3), 0);
    reference_load(t, 3, keys, 0x4); /* adid only in n-03 */
    assert_int_equal(compare_with_spare(t, keys, 0x4), 0);
}

/* A re-warm cut short by a kill or a stop of the master: the next start
 * re-warms again (the new identity was not saved), and every key is back.
 * The re-warm is held on its first file: it is planned only when a load in
 * flight (gaid held) ends, and idfa is held by then. */
static void rewarm_interrupted(struct t *t, int sig)
{
    const int keys = 3000;
    char extra[PATH_MAX + 64];
    snprintf(extra, sizeof(extra), "state_dir = %s\nhealth_interval = 1\nio_timeout_ms = 20000\n",
             t->dir);
    write_conf(t, 0, extra);
    start_daemon(t, NULL);
    make_file(t->incoming, 1, keys, 0xf);
    move_in(t, "n-01.tsv.gz");
    wait_done(t, "n-01.tsv.gz", 20000);
    make_file(t->incoming, 2, 10, 0x2); /* gaid only */
    h_sleep_ms(1500);                   /* identities recorded */
    h_mc_pause(&mc[1], 1);
    move_in(t, "n-02.tsv.gz");
    must_log(t, "loading n-02.tsv.gz", 5000);
    int port = mc[0].port;
    h_mc_kill(&mc[0]);
    assert_int_equal(h_mc_start_at(&mc[0], port, NULL), 0);
    size_t from = t->n.len;
    assert_int_equal(h_notify_wait(&t->n, "waiting for loads in flight", &from, 10000), 0);
    h_mc_pause(&mc[0], 1);
    h_mc_pause(&mc[1], 0);
    must_log(t, "re-warm started", 10000);
    kill(t->pid, sig);
    h_wait(t->pid, 30);
    t->pid = 0;
    h_mc_pause(&mc[0], 0);
    if (h_mc_items(mc[0].port) >= keys) {
        char *log = h_read_file(t->log, NULL);
        fail_msg("the re-warm was not held; log:\n%s", log ? log : "");
    }
    h_write_file(t->log, ""); /* the next start's messages alone */
    start_daemon(t, NULL);
    must_log(t, "re-warm started", 10000);
    must_log(t, "finished: ", 30000);
    if (h_mc_items(mc[0].port) != keys) {
        char *log = h_read_file(t->log, NULL);
        fail_msg("%ld of %d keys back after the re-warm; log:\n%s", h_mc_items(mc[0].port), keys,
                 log ? log : "");
    }
}

static void test_rewarm_resumes_after_sigkill(void **state)
{
    rewarm_interrupted(*state, SIGKILL);
}

static void test_rewarm_resumes_after_sigterm(void **state)
{
    rewarm_interrupted(*state, SIGTERM);
}

/* The state file cannot be written at first (servers.tmp is a
 * directory): written once it can be, not left stale. */
static void test_state_file_written_after_a_failure(void **state)
{
    struct t *t = *state;
    char extra[PATH_MAX + 64], tmp[PATH_MAX * 2], file[PATH_MAX * 2];
    snprintf(extra, sizeof(extra), "state_dir = %s\nhealth_interval = 1\n", t->dir);
    snprintf(tmp, sizeof(tmp), "%s/servers.tmp", t->dir);
    snprintf(file, sizeof(file), "%s/servers", t->dir);
    assert_int_equal(mkdir(tmp, 0755), 0);
    write_conf(t, 0, extra);
    start_daemon(t, NULL);
    must_log(t, "cannot write", 10000);
    assert_int_equal(access(file, F_OK), -1);
    assert_int_equal(rmdir(tmp), 0);
    must_log(t, "servers written", 15000);
    char *text = h_read_file(file, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, h_endpoint(mc[0].port)));
    free(text);
}

/* 200 reloads during a 12-file load: files loading at once never exceed
 * `workers` (a retiring worker holds its slot until its file is done),
 * and every file loads.  Counted from the log: "loading NAME" opens a
 * load, "NAME loaded:" closes it. */
static void test_reload_storm_keeps_workers(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "workers = 3\n");
    start_daemon(t, NULL);
    gen(t, "10000", "12", "41", "s-", t->incoming);
    for (int i = 0; i < 12; i++) {
        char name[32];
        snprintf(name, sizeof(name), "s-%04d.tsv.gz", i);
        move_in(t, name);
    }
    for (int i = 0; i < 200; i++) {
        kill(t->pid, SIGHUP);
        h_sleep_ms(10);
    }
    wait_done(t, "s-0011.tsv.gz", 120000);
    char *log = h_read_file(t->log, NULL);
    int now = 0, most = 0;
    for (const char *p = log; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (memmem(p, len, "info: loading s-", 16))
            now++;
        else if (memmem(p, len, ".tsv.gz loaded:", 15))
            now--;
        most = now > most ? now : most;
        p += len + (nl != NULL);
    }
    free(log);
    assert_true(most >= 1);
    if (most > 3)
        fail_msg("%d files loading at once with workers = 3", most);
    assert_int_equal(log_count(t, "reload failed"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overlapping_files_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_for_the_missing_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_older_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_resumes_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_resumes_after_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_written_after_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_storm_keeps_workers, setup, teardown),
    };
    if (getenv("TEST_FILTER")) /* TEST_FILTER=test_hung_* ./test_faults */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

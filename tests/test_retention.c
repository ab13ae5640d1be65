/*
 * test_retention.c — spool retention against the real daemon, real
 * memcached processes and real files whose mtimes are set with
 * futimens(): finished and set-aside files past retain / retain_failed go
 * and the younger ones stay; a file whose NAME is queued again and the
 * files of a re-warm that runs stay however old, and go at the next sweep
 * once free; one journal entry per sweep that removed something, none for
 * one that did not; the metrics textfile's retained_files, retained_bytes
 * and removed_files_total.  One-shot runs: retain_bytes takes the oldest
 * first, retain = 0 keeps everything.  --check-config's warning and refusal.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_fixture.h"

#define MIN 60

/* A gzip file at dir/name with n lines of type (ids from..from+n), its
 * mtime age_s ago; returns its size. */
static long put(const char *dir, const char *name, const char *type, int from, int n, long age_s)
{
    char path[PATH_MAX * 2], *text = malloc((size_t)n * 64 + 1);
    size_t len = 0;
    for (int i = from; i < from + n; i++)
        len += (size_t)sprintf(text + len, "%s\tdev%06d\t1.5\t2.5\t%d,7\n", type, i, i);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(h_gz_write(path, text, len), 0);
    free(text);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct timespec ts[2] = {{.tv_sec = time(NULL) - age_s}, {.tv_sec = time(NULL) - age_s}};
    assert_int_equal(futimens(fd, ts), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    close(fd);
    return (long)st.st_size;
}

static int there(struct t *t, const char *name)
{
    char path[PATH_MAX * 2];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", t->spool, name);
    return lstat(path, &st) == 0;
}

static long size_of(struct t *t, const char *name)
{
    char path[PATH_MAX * 2];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", t->spool, name);
    assert_int_equal(lstat(path, &st), 0);
    return (long)st.st_size;
}

/* Wait until the metrics file has the sample line (name{labels} value). */
static void must_metric(struct t *t, const char *prom, const char *line, int timeout_ms)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    for (int ms = 0;; ms += 50) {
        char *text = h_read_file(prom, NULL);
        int ok = text && strstr(text, want);
        if (ok || ms >= timeout_ms) {
            if (!ok)
                fprintf(stderr, "metrics file:\n%s\n", text ? text : "(none)");
            free(text);
            if (!ok)
                fail_msg("metrics lack '%s'", line);
            (void)t;
            return;
        }
        free(text);
        h_sleep_ms(50);
    }
}

static void conf(struct t *t, const char *prom, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "health_interval = 1\nio_timeout_ms = 20000\nrewarm_max_age = 2h\nmetrics_file = "
             "%s\n%s",
             prom, extra);
    write_conf(t, 0, text);
}

/* Files of each state; the sweep that matters runs while a re-warm holds
 * its files and a file waits queued behind it (retention turned on by a
 * reload, which sweeps at once). */
static void test_retention_states(void **state)
{
    struct t *t = *state;
    char prom[PATH_MAX + 32];
    snprintf(prom, sizeof(prom), "%s/memc-load.prom", t->dir);
    conf(t, prom, "retain = 0\n");
    put(t->spool, ".1-old.tsv.gz", "idfa", 0, 50, 3 * 60 * MIN);            /* past retain */
    put(t->spool, ".2-bad-old.tsv.gz.failed", "idfa", 0, 50, 3 * 60 * MIN); /* past retain_failed */
    put(t->spool, ".3-rw.tsv.gz", "idfa", 0, 200, 90 * MIN); /* past retain, in the re-warm */
    long mid = put(t->spool, ".4-bad-mid.tsv.gz.failed", "idfa", 0, 60, 90 * MIN); /* young */
    put(t->spool, ".5-new.tsv.gz", "idfa", 200, 50, 10 * MIN);                     /* young */
    long young = put(t->spool, ".6-bad-new.tsv.gz.failed", "idfa", 0, 70, 10 * MIN);
    put(t->spool, ".8-q.tsv.gz", "idfa", 0, 50, 3 * 60 * MIN); /* its NAME comes again */
    start_daemon(t, NULL);
    h_sleep_ms(
        1500); /* the first sweep ran (retain = 0: nothing) and the probes saw every server */
    assert_false(log_contains(t, "spool retention"));
    must_metric(t, prom, "memc_load_retained_files{kind=\"failed\"} 3", 5000);
    must_metric(t, prom, "memc_load_removed_files_total{kind=\"loaded\"} 0", 5000);

    /* A re-warm that runs and holds: planned once the load in flight (gaid
     * held) ends, its first file held by idfa paused. */
    put(t->incoming, "9-hold.tsv.gz", "gaid", 0, 50, 0);
    h_mc_pause(&mc[1], 1);
    move_in(t, "9-hold.tsv.gz");
    must_log(t, "loading 9-hold.tsv.gz", 5000);
    h_mc_kill(&mc[0]);
    assert_int_equal(h_mc_start_at(&mc[0], mc[0].port, NULL), 0);
    size_t from = t->n.len;
    assert_int_equal(h_notify_wait(&t->n, "waiting for loads in flight", &from, 10000), 0);
    h_mc_pause(&mc[0], 1);
    h_mc_pause(&mc[1], 0);
    must_log(t, "re-warm started from 3 retained files", 10000); /* .3-rw .5-new .9-hold */
    put(t->incoming, "8-q.tsv.gz", "idfa", 500, 50, 0);
    move_in(t, "8-q.tsv.gz"); /* queued: new files wait for the re-warm */

    conf(t, prom, "retain = 1h\nretain_failed = 2h\n");
    kill(t->pid, SIGHUP);
    must_log(t, "spool retention: removed 2 files (1 loaded, 1 failed; 0 over retain_bytes)",
             10000);
    must_log(t, "MEMC_REMOVED_FILES=2 MEMC_REMOVED_LOADED=1 MEMC_REMOVED_FAILED=1", 1000);
    assert_false(there(t, ".1-old.tsv.gz"));
    assert_false(there(t, ".2-bad-old.tsv.gz.failed"));
    assert_true(there(t, ".3-rw.tsv.gz"));             /* in the running re-warm */
    assert_true(there(t, ".4-bad-mid.tsv.gz.failed")); /* 90 min < retain_failed */
    assert_true(there(t, ".5-new.tsv.gz"));
    assert_true(there(t, ".6-bad-new.tsv.gz.failed"));
    assert_true(there(t, ".8-q.tsv.gz")); /* 3 h old, but 8-q.tsv.gz is queued */
    assert_true(there(t, "8-q.tsv.gz"));
    char line[256];
    must_metric(t, prom, "memc_load_removed_files_total{kind=\"loaded\"} 1", 5000);
    must_metric(t, prom, "memc_load_removed_files_total{kind=\"failed\"} 1", 5000);
    must_metric(t, prom, "memc_load_retained_files{kind=\"loaded\"} 4", 5000);
    must_metric(t, prom, "memc_load_retained_files{kind=\"failed\"} 2", 5000);
    snprintf(line, sizeof(line), "memc_load_retained_bytes{kind=\"failed\"} %ld", mid + young);
    must_metric(t, prom, line, 5000);
    long loaded = size_of(t, ".3-rw.tsv.gz") + size_of(t, ".5-new.tsv.gz") +
                  size_of(t, ".8-q.tsv.gz") + size_of(t, ".9-hold.tsv.gz");
    snprintf(line, sizeof(line), "memc_load_retained_bytes{kind=\"loaded\"} %ld", loaded);
    must_metric(t, prom, line, 5000);

    /* The re-warm finishes, 8-q loads (its new .8-q is young): the next
     * sweep takes .3-rw, now free, and nothing else. */
    h_mc_pause(&mc[0], 0);
    must_log(t, "finished: 3 files", 30000);
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/8-q.tsv.gz", t->spool);
    assert_int_equal(h_wait_path(dot, 1, 30000), 0); /* renamed over the old .8-q */
    kill(t->pid, SIGHUP);
    must_log(t, "spool retention: removed 1 files (1 loaded, 0 failed", 10000);
    assert_false(there(t, ".3-rw.tsv.gz"));
    assert_true(there(t, ".5-new.tsv.gz"));
    assert_true(there(t, ".8-q.tsv.gz"));
    assert_true(there(t, ".4-bad-mid.tsv.gz.failed"));
    must_metric(t, prom, "memc_load_removed_files_total{kind=\"loaded\"} 2", 5000);
    must_metric(t, prom, "memc_load_retained_files{kind=\"loaded\"} 3", 5000);
    /* a sweep that removes nothing says nothing */
    kill(t->pid, SIGHUP);
    for (int ms = 0; log_count(t, "configuration reloaded") < 3 && ms < 5000; ms += 50)
        h_sleep_ms(50);
    assert_int_equal(log_count(t, "configuration reloaded"), 3);
    h_sleep_ms(500);
    assert_int_equal(log_count(t, "spool retention: removed"), 2);
    stop_daemon(t);
}

static int oneshot(struct t *t, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text), "metrics_file =\n%s", extra);
    write_conf(t, 0, text);
    const char *argv[] = {MEMC_BIN, "--oneshot", "--config", t->conf, NULL};
    return h_run(argv, t->log, 60);
}

/* retain = 0 with no cap keeps everything, ten years old or not.
 * retain_bytes: the oldest go first until the rest fits, failed files
 * too; the file an earlier run loaded and renamed counts. */
static void test_retention_oneshot(void **state)
{
    struct t *t = *state;
    put(t->spool, ".a.tsv.gz", "idfa", 0, 400, 5 * MIN);
    put(t->spool, ".b.tsv.gz.failed", "idfa", 0, 400, 4 * MIN);
    long c = put(t->spool, ".c.tsv.gz", "idfa", 0, 400, 3 * MIN);
    long d = put(t->spool, "d.tsv.gz", "idfa", 400, 400, 0);
    assert_int_equal(oneshot(t, "retain = 0\n"), 0); /* loads d */
    assert_true(there(t, ".a.tsv.gz") && there(t, ".b.tsv.gz.failed") && there(t, ".c.tsv.gz") &&
                there(t, ".d.tsv.gz"));
    assert_false(log_contains(t, "spool retention"));
    put(t->spool, ".a.tsv.gz", "idfa", 0, 400, 10 * 365 * 86400L); /* ten years old */
    assert_int_equal(oneshot(t, "retain = 0\n"), 0);
    assert_true(there(t, ".a.tsv.gz"));
    assert_false(log_contains(t, "spool retention"));

    char cap[128];
    snprintf(cap, sizeof(cap), "retain = 0\nretain_bytes = %ld\n", c + d + 1);
    assert_int_equal(oneshot(t, cap), 0);
    assert_false(there(t, ".a.tsv.gz"));
    assert_false(there(t, ".b.tsv.gz.failed"));
    assert_true(there(t, ".c.tsv.gz"));
    assert_true(there(t, ".d.tsv.gz"));
    must_log(t, "spool retention: removed 2 files (1 loaded, 1 failed; 2 over retain_bytes)", 1000);
    char want[128];
    snprintf(want, sizeof(want), "MEMC_RETAINED_FILES=2 MEMC_RETAINED_BYTES=%ld", c + d);
    must_log(t, want, 1000);
}

/* --check-config: a warning when retain is shorter than rewarm_max_age
 * (exit 0 still), 78 when retain_failed is shorter than retain. */
static void test_retention_check_config(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "retain = 1h\nrewarm_max_age = 2h\n");
    const char *argv[] = {MEMC_BIN, "--check-config", "--no-probe", "--config", t->conf, NULL};
    assert_int_equal(h_run(argv, t->log, 30), 0);
    must_log(t,
             "warning: retain (1h) is shorter than rewarm_max_age (2h): a re-warm finds no "
             "file older than 1h",
             1000);
    write_conf(t, 0, "retain = 2h\nretain_failed = 90m\n");
    assert_int_equal(h_run(argv, t->log, 30), 78);
    must_log(t, "retain_failed (90m) is shorter than retain (2h)", 1000);
    write_conf(t, 0, "retain = 7d\nretain_bytes = 50G\n");
    assert_int_equal(h_run(argv, t->log, 30), 0);
    assert_false(log_contains(t, "shorter than rewarm_max_age (7d)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retention_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_check_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

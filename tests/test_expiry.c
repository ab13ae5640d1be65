/*
 * test_expiry.c — exptime against real memcached processes: a record's
 * life counts from its file's mtime (set here with utimensat), so `mg <key>
 * t` shows exptime minus the file's age; a type's own exptime and 0
 * (never); beyond 30 days the T flag is a Unix time and memcached still
 * counts the same seconds; a file older than exptime loads nothing and its
 * result says MEMC_EXPIRED; `memc-load verify` counts expired records as
 * expected, not missing; a re-warm of a 30-minute-old file with exptime =
 * 1h sets 30 minutes, and skips a retained file whose records are all gone.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_fixture.h"

#define KEYS 200 /* dev ids 0..KEYS-1 in every file; type = id % 4 */

static const char *const types[4] = {"idfa", "gaid", "adid", "dvid"};

/* File NAME in dir with KEYS records whose values depend on n, its mtime
 * age_s seconds ago; returns that mtime. */
static long write_aged(const char *dir, const char *name, int n, long age_s)
{
    char text[KEYS * 64], path[PATH_MAX * 2];
    size_t len = 0;
    for (int i = 0; i < KEYS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\tdev%06d\t%d.5\t-%d.5\t%d,7\n",
                                types[i % 4], i, n, n, i);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(h_gz_write(path, text, len), 0);
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = time(NULL) - age_s}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    return (long)ts[1].tv_sec;
}

/* What `mg <key> t` says of the key's TTL: the seconds left, -1 for no
 * expiry, -2 when the key is absent. */
static long ttl_of(int port, const char *type, int id)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[96], ans[256];
    int n = snprintf(req, sizeof(req), "mg %s:dev%06d t\r\n", type, id);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    while (got < sizeof(ans) - 1 && !memchr(ans, '\n', got)) {
        ssize_t r = read(fd, ans + got, sizeof(ans) - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fd);
    ans[got] = 0;
    if (strncmp(ans, "EN", 2) == 0)
        return -2;
    const char *t = strstr(ans, " t");
    if (strncmp(ans, "HD", 2) != 0 || !t)
        fail_msg("mg %s:dev%06d t: '%s'", type, id, ans);
    return strtol(t + 2, NULL, 10);
}

/* Every key of a type on its server expires at `expires` (Unix time) as
 * `mg t` shows it, the seconds left: at most `above` more (memcached's clock
 * moves once a second), at most `below` fewer (the time the load took). */
static void ttls_until(int type, long expires, long below, long above)
{
    for (int i = type; i < KEYS; i += 4) {
        long want = expires - (long)time(NULL);
        long ttl = ttl_of(mc[type].port, types[type], i);
        if (ttl > want + above || ttl < want - below)
            fail_msg("%s:dev%06d has TTL %ld, want %ld (-%ld +%ld)", types[type], i, ttl, want,
                     below, above);
    }
}

/* A relative T flag: the seconds left when it was sent, never more. */
static void ttls_near(int type, long expires)
{
    ttls_until(type, expires, 3, 1);
}

/* No expiry: `mg t` says -1. */
static void ttls_never(int type)
{
    for (int i = type; i < KEYS; i += 4)
        assert_int_equal(ttl_of(mc[type].port, types[type], i), -1);
}

static int oneshot(struct t *t)
{
    const char *argv[] = {MEMC_BIN, "--oneshot", "--config", t->conf, NULL};
    return h_run(argv, t->log, 60);
}

/* exptime = 1h for a file 30 minutes old: 30 minutes left (2 s for the
 * load and memcached's clock); idfa's own 2h, dvid's 0 = never; and
 * --check-config says so. */
static void test_ttl_counts_from_file_time(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "exptime = 1h\nidfa_exptime = 2h\ndvid_exptime = 0\n");
    long mtime = write_aged(t->spool, "e-1.tsv.gz", 1, 1800);
    assert_int_equal(oneshot(t), 0);
    assert_true(log_contains(t, "MEMC_EXPIRED=0"));
    ttls_near(0, mtime + 7200); /* 5400 s left */
    ttls_near(1, mtime + 3600); /* 1800 s left */
    ttls_near(2, mtime + 3600);
    ttls_never(3);
    char cmd[PATH_MAX * 4], out[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", t->dir);
    snprintf(cmd, sizeof(cmd), "'%s' --check-config --no-probe --config '%s' > '%s'", MEMC_BIN,
             t->conf, out);
    assert_int_equal(system(cmd), 0);
    char *text = h_read_file(out, NULL);
    assert_non_null(text);
    if (!strstr(text,
                "\nexpiry:   idfa 2h, gaid 1h, adid 1h, dvid never (from each file's mtime)\n"))
        fail_msg("--check-config said:\n%s", text);
    free(text);
}

/* 40 days: beyond memcached's 30, the flag is a Unix time, and memcached
 * counts down the same seconds (its clock is this host's, to the second:
 * memcached's moves once a second, so it may show one or two more). */
static void test_ttl_beyond_30_days(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "exptime = 40d\n");
    long mtime = write_aged(t->spool, "e-1.tsv.gz", 1, 86400);
    assert_int_equal(oneshot(t), 0);
    for (int type = 0; type < 4; type++)
        ttls_until(type, mtime + 40 * 86400L, 3, 2); /* 39 days left */
}

/* A file older than its exptime: nothing sent, the result says so; then
 * verify expects none of it. */
static void test_expired_file_loads_nothing(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "exptime = 1h\n");
    write_aged(t->spool, "e-1.tsv.gz", 1, 7200);
    assert_int_equal(oneshot(t), 0);
    assert_true(log_contains(t, "0 records stored"));
    assert_true(log_contains(t, "200 records expired (file time + exptime), not sent"));
    assert_true(log_contains(t, "MEMC_RECORDS=0 "));
    assert_true(log_contains(t, "MEMC_EXPIRED=200"));
    assert_true(log_contains(t, "MEMC_RESULT=loaded"));
    for (int i = 0; i < 4; i++)
        assert_int_equal(h_mc_stat(mc[i].port, "cmd_set"), 0);
    char cmd[PATH_MAX * 4], out[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", t->dir);
    snprintf(cmd, sizeof(cmd), "'%s' verify --config '%s' --json '%s/.e-1.tsv.gz' > '%s'", MEMC_BIN,
             t->conf, t->spool, out);
    assert_int_equal(system(cmd), 0); /* exit 0: nothing missing */
    char *json = h_read_file(out, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"expired_records\":200,"));
    assert_non_null(strstr(json, "\"total\":{\"sampled\":0,"));
    free(json);
}

/* Records loaded with a short life, then verified once it is over: the
 * read-back expects them gone, not missing (exit 0; before: 1). */
static void test_verify_after_expiry(void **state)
{
    struct t *t = *state;
    write_conf(t, 0, "exptime = 3\n");
    write_aged(t->spool, "e-1.tsv.gz", 1, 0);
    assert_int_equal(oneshot(t), 0);
    assert_true(log_contains(t, "MEMC_RECORDS=200 "));
    h_sleep_ms(4500);
    char cmd[PATH_MAX * 4], out[PATH_MAX + 8];
    snprintf(out, sizeof(out), "%s/out", t->dir);
    snprintf(cmd, sizeof(cmd), "'%s' verify --config '%s' '%s/.e-1.tsv.gz' > '%s'", MEMC_BIN,
             t->conf, t->spool, out);
    assert_int_equal(system(cmd), 0);
    char *text = h_read_file(out, NULL);
    assert_non_null(text);
    if (!strstr(text, "200 expired: not expected in memcached"))
        fail_msg("verify said:\n%s", text);
    free(text);
}

static void restart_memcached(int idx)
{
    int port = mc[idx].port;
    h_mc_kill(&mc[idx]);
    assert_int_equal(h_mc_start_at(&mc[idx], port, NULL), 0);
}

/* The daemon, exptime = 1h: a file 2 hours old loads nothing; one 30
 * minutes old loads with 30 minutes left.  idfa's memcached restarts: the
 * re-warm sets 30 minutes again (not an hour), and skips the old file. */
static void test_rewarm_remaining_ttl(void **state)
{
    struct t *t = *state;
    char text[1024];
    snprintf(text, sizeof(text), "state_dir = %s\nhealth_interval = 1\nexptime = 1h\n", t->dir);
    write_conf(t, 0, text);
    start_daemon(t, NULL);
    write_aged(t->incoming, "r-1.tsv.gz", 1, 7200);
    move_in(t, "r-1.tsv.gz");
    wait_done(t, "r-1.tsv.gz", 10000);
    long mtime = write_aged(t->incoming, "r-2.tsv.gz", 2, 1800);
    move_in(t, "r-2.tsv.gz");
    wait_done(t, "r-2.tsv.gz", 10000);
    must_log(t, "MEMC_EXPIRED=200", 5000);
    ttls_near(0, mtime + 3600); /* 30 minutes left */
    h_sleep_ms(1500);           /* the health probe has seen every server once */
    restart_memcached(0);
    must_log(t,
             "re-warm started from 1 retained files; newer files wait until it is "
             "finished; 1 retained files skipped, every record expired",
             10000);
    must_log(t, "finished: 1 files, 50 records", 20000);
    assert_true(log_contains(t, "MEMC_EXPIRED_FILES=1"));
    ttls_near(0, mtime + 3600); /* the same 30 minutes (less the seconds since), not an hour */
    size_t len;
    char *v = h_mc_get(t->servers[0], "idfa:dev000000", &len);
    assert_non_null(v); /* r-2's value */
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ttl_counts_from_file_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_beyond_30_days, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_file_loads_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_after_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_remaining_ttl, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

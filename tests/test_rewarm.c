/*
 * test_rewarm.c — a restarted memcached is filled again from the retained
 * files, against the real daemon and real memcached processes: the final
 * content equals a load of those files in name order (keys repeat across
 * files with other values), the other servers get no set, a file dropped
 * during the re-warm is not overtaken, a restart while memc-load was down
 * is seen at its start (state_dir), rewarm_max_age limits what is read, and
 * only the restarted member of a ketama cluster gets its share, and a FIFO
 * at a retained name is skipped without blocking the master, and
 * rewarm_max_rate paces a re-warm alone.
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

#define KEYS 800 /* dev ids 0..KEYS-1 over all files; type = id % 4 */

static const char *const types[4] = {"idfa", "gaid", "adid", "dvid"};

/* File r-N.tsv.gz with ids [from, to): values depend on N, so a key in two
 * files has two values and only the later file's may survive. */
static void drop_file(struct t *t, int n, int from, int to, int now)
{
    size_t cap = (size_t)(to - from) * 64 + 1, len = 0;
    char *text = malloc(cap), name[64], path[PATH_MAX * 2];
    for (int i = from; i < to; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\tdev%06d\t%d.%04d\t-%d.5\t%d,%d,7\n",
                                types[i % 4], i, n, i, n, n, i);
    snprintf(name, sizeof(name), "r-%d.tsv.gz", n);
    snprintf(path, sizeof(path), "%s/%s", t->incoming, name);
    assert_int_equal(h_gz_write(path, text, len), 0);
    snprintf(path, sizeof(path), "%s/ref", t->dir); /* the same, for ref_load() */
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/ref/%s", t->dir, name);
    assert_int_equal(h_gz_write(path, text, len), 0);
    free(text);
    if (now) {
        move_in(t, name);
        wait_done(t, name, 10000);
    }
}

static char *get_key(const char *server, int i, size_t *len)
{
    char key[64];
    snprintf(key, sizeof(key), "%s:dev%06d", types[i % 4], i);
    return h_mc_get(server, key, len);
}

/* Every idfa value on server equals the one in want[] (NULL: absent). */
static void same_idfa(const char *server, char **want, size_t *wlen, int *present)
{
    int n = 0;
    for (int i = 0; i < KEYS; i += 4) {
        size_t len;
        char *v = get_key(server, i, &len);
        if (!want[i])
            assert_null(v);
        else if (!v || len != wlen[i] || memcmp(v, want[i], len) != 0)
            fail_msg("idfa:dev%06d differs after the re-warm", i);
        n += v != NULL;
        free(v);
    }
    if (present)
        *present = n;
}

static void snapshot(const char *server, char **v, size_t *len)
{
    for (int i = 0; i < KEYS; i += 4) {
        free(v[i]);
        v[i] = get_key(server, i, &len[i]);
    }
}

static void restart_memcached(int idx)
{
    int port = mc[idx].port;
    h_mc_kill(&mc[idx]);
    assert_int_equal(h_mc_start_at(&mc[idx], port, NULL), 0);
}

static void conf(struct t *t, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text), "state_dir = %s\nhealth_interval = 1\nworkers = 2\n%s", t->dir,
             extra ? extra : "");
    write_conf(t, 0, text);
}

static void test_rewarm_restarted_server(void **state)
{
    struct t *t = *state;
    static char *want[KEYS];
    static size_t wlen[KEYS];
    conf(t, "io_timeout_ms = 20000\n"); /* the held load stays in flight */
    start_daemon(t, NULL);
    drop_file(t, 1, 0, 400, 1);
    drop_file(t, 2, 200, 600, 1); /* 200..399 again, other values */
    drop_file(t, 3, 400, KEYS, 1);
    h_sleep_ms(1500); /* the health probe has seen every server once */
    snapshot(t->servers[0], want, wlen);
    long sets[4];
    for (int i = 1; i < 4; i++)
        sets[i] = h_mc_stat(mc[i].port, "cmd_set");

    restart_memcached(0);
    must_log(t, "re-warm started", 10000);
    must_log(t, "finished: 3 files", 30000);
    int present;
    same_idfa(t->servers[0], want, wlen, &present);
    assert_int_equal(present, KEYS / 4);
    for (int i = 1; i < 4; i++) /* the others got nothing */
        assert_int_equal(h_mc_stat(mc[i].port, "cmd_set"), sets[i]);

    /* Restarted again while a load is held in flight (gaid paused): the
     * re-warm waits for it, and a 4th file dropped meanwhile waits for the
     * re-warm, keeping its own values for the keys it shares. */
    drop_file(t, 5, KEYS, KEYS + 400, 0); /* other ids: its values do not matter */
    h_mc_pause(&mc[1], 1);
    move_in(t, "r-5.tsv.gz");
    must_log(t, "loading r-5.tsv.gz", 5000);
    restart_memcached(0);
    size_t from = t->n.len;
    assert_int_equal(h_notify_wait(&t->n, "waiting for loads in flight", &from, 10000), 0);
    drop_file(t, 4, 100, 300, 0);
    move_in(t, "r-4.tsv.gz");
    h_sleep_ms(500);
    assert_false(log_contains(t, "loading r-4.tsv.gz"));
    h_mc_pause(&mc[1], 0);
    wait_done(t, "r-4.tsv.gz", 30000);
    assert_int_equal(log_count(t, "restarted (its data is gone): re-warm started"), 2);
    /* r-4 is named below r-5, which loaded first: late, so r-5 is replayed */
    must_log(t, "r-4.tsv.gz came after newer files", 10000);
    for (int ms = 0; log_count(t, " finished: ") < 3 && ms < 10000; ms += 50)
        h_sleep_ms(50); /* two restarts' re-warms and the replay */
    assert_int_equal(log_count(t, " finished: "), 3);
    for (int i = 100; i < 300; i += 4) { /* r-4's values, not r-1's or r-2's */
        size_t len;
        char *v = get_key(t->servers[0], i, &len);
        assert_non_null(v);
        want[i] = (free(want[i]), v);
        wlen[i] = len;
    }
    char *spare = strdup(h_endpoint(mc[4].port)); /* the reference: r-1..r-4 in order */
    char cmd[PATH_MAX * 4];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s/ref && for f in 1 2 3 4; do cp %s/.r-$f.tsv.gz %s/ref/r-$f.tsv.gz; done",
             t->dir, t->spool, t->dir);
    assert_int_equal(system(cmd), 0);
    char pattern[PATH_MAX + 32];
    snprintf(pattern, sizeof(pattern), "%s/ref/*.tsv.gz", t->dir);
    const char *argv[] = {MEMC_BIN, "--oneshot",   "--config", "/dev/null",   "--pattern",
                          pattern,  "--idfa",      spare,      "--gaid",      t->servers[1],
                          "--adid", t->servers[2], "--dvid",   t->servers[3], "--workers",
                          "1",      NULL};
    assert_int_equal(h_run(argv, t->log, 60), 0);
    same_idfa(spare, want, wlen, NULL); /* what we read back equals a fresh ordered load */
    snapshot(spare, want, wlen);
    same_idfa(t->servers[0], want, wlen, NULL);
    free(spare);
    for (int i = 0; i < KEYS; i++)
        free(want[i]), want[i] = NULL;
}

/* memcached restarted while memc-load was down: seen at its start.  Files
 * older than rewarm_max_age are not read. */
static void test_rewarm_across_our_restart(void **state)
{
    struct t *t = *state;
    conf(t, "rewarm_max_age = 1h\n");
    start_daemon(t, NULL);
    drop_file(t, 1, 0, 400, 1);
    drop_file(t, 2, 400, KEYS, 1);
    h_sleep_ms(1500); /* identities recorded in state_dir */
    stop_daemon(t);
    char old[PATH_MAX * 2];
    snprintf(old, sizeof(old), "%s/.r-1.tsv.gz", t->spool);
    struct timespec ts[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}}; /* 1970: too old */
    assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
    restart_memcached(0);
    start_daemon(t, NULL);
    must_log(t, "re-warm started from 1 retained files", 10000);
    must_log(t, "finished: 1 files", 30000);
    for (int i = 0; i < KEYS; i += 4) {
        size_t len;
        char *v = get_key(t->servers[0], i, &len);
        if ((i < 400) != (v == NULL)) /* r-1 too old: not back; r-2: back */
            fail_msg("idfa:dev%06d %s", i, v ? "re-warmed from a file too old" : "missing");
        free(v);
    }
}

/* rewarm_max_age = 0: a restart is reported, nothing is read. */
static void test_rewarm_off(void **state)
{
    struct t *t = *state;
    conf(t, "rewarm_max_age = 0\n");
    start_daemon(t, NULL);
    drop_file(t, 1, 0, 200, 1);
    h_sleep_ms(1500);
    restart_memcached(0);
    must_log(t, "re-warming is off", 10000);
    h_sleep_ms(1500);
    assert_false(log_contains(t, "re-warm started"));
    assert_int_equal(h_mc_items(mc[0].port), 0);
}

/* The MEMC_DURATION_MS of the first log line that contains what (-1). */
static long duration_of(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL), *at = log ? strstr(log, what) : NULL;
    char *eol = at ? strchr(at, '\n') : NULL, *ms = at ? strstr(at, "MEMC_DURATION_MS=") : NULL;
    long r = ms && (!eol || ms < eol) ? atol(ms + strlen("MEMC_DURATION_MS=")) : -1;
    free(log);
    return r;
}

/* rewarm_max_rate paces a re-warm, not a load: 6000 idfa records (of
 * 24000) load at full speed, and come back to the restarted server at
 * 2000/s, in about 3 s (a coarse bound: bench/reader-latency checks the
 * rate closely). */
static void test_rewarm_max_rate(void **state)
{
    struct t *t = *state;
    conf(t, "rewarm_max_rate = 2000\n");
    start_daemon(t, NULL);
    drop_file(t, 1, 0, 24000, 1);
    long load = duration_of(t, "r-1.tsv.gz loaded: ");
    h_sleep_ms(1500); /* the health probe has seen every server once */
    restart_memcached(0);
    must_log(t, "finished: 1 files, 6000 records", 30000);
    long rewarm = duration_of(t, "finished: 1 files");
    fprintf(stderr, "24000 records loaded in %ld ms, 6000 re-warmed at 2000/s in %ld ms\n", load,
            rewarm);
    assert_true(load >= 0 && load < 1500);
    assert_true(rewarm >= 2200 && rewarm < 15000);
    assert_int_equal(h_mc_items(mc[0].port), 6000);
}

/* idfa is a ketama cluster of three: only the restarted member's share is
 * sent, the two others get no set. */
static void test_rewarm_one_cluster_member(void **state)
{
    struct t *t = *state;
    struct h_mc extra[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(h_mc_start(&extra[i], NULL), 0);
    char cluster[256];
    snprintf(cluster, sizeof(cluster), "%s,", h_endpoint(mc[0].port));
    snprintf(cluster + strlen(cluster), sizeof(cluster) - strlen(cluster), "%s,",
             h_endpoint(extra[0].port));
    snprintf(cluster + strlen(cluster), sizeof(cluster) - strlen(cluster), "%s",
             h_endpoint(extra[1].port));
    char text[1024];
    snprintf(text, sizeof(text), "state_dir = %s\nhealth_interval = 1\n", t->dir);
    write_conf_addr(t, cluster, text);
    start_daemon(t, NULL);
    drop_file(t, 1, 0, KEYS, 1);
    h_sleep_ms(1500);
    long share = h_mc_items(mc[0].port);
    long sets0 = h_mc_stat(extra[0].port, "cmd_set"), sets1 = h_mc_stat(extra[1].port, "cmd_set");
    assert_true(share > 0 && share < KEYS / 4);
    restart_memcached(0);
    must_log(t, "finished: 1 files", 30000);
    assert_int_equal(h_mc_items(mc[0].port), share);
    assert_int_equal(h_mc_stat(mc[0].port, "cmd_set"), share); /* its keys, and only those */
    assert_int_equal(h_mc_stat(extra[0].port, "cmd_set"), sets0);
    assert_int_equal(h_mc_stat(extra[1].port, "cmd_set"), sets1);
    for (int i = 0; i < KEYS; i += 4) { /* every idfa key is found through the cluster */
        size_t len;
        char *v = get_key(cluster, i, &len);
        assert_non_null(v);
        free(v);
    }
    stop_daemon(t);
    for (int i = 0; i < 2; i++)
        h_mc_stop(&extra[i]);
}

/* Every file dropped so far loaded by a one-shot run, in name order, into
 * the memcached at ref (every type): what the cluster must hold. */
static void ref_load(struct t *t, int ref_port)
{
    char conf[PATH_MAX * 2], text[PATH_MAX * 3], log[PATH_MAX * 2];
    snprintf(conf, sizeof(conf), "%s/ref.conf", t->dir);
    snprintf(log, sizeof(log), "%s/ref.log", t->dir);
    snprintf(text, sizeof(text),
             "pattern = %s/ref/*.tsv.gz\nidfa = %s\ngaid = %s\nadid = %s\ndvid = %s\n"
             "state_dir =\nmetrics_file =\n",
             t->dir, h_endpoint(ref_port), h_endpoint(ref_port), h_endpoint(ref_port),
             h_endpoint(ref_port));
    assert_int_equal(h_write_file(conf, text), 0);
    const char *argv[] = {MEMC_BIN, "--config", conf, "--oneshot", NULL};
    assert_int_equal(h_run(argv, log, 60), 0);
}

/* Every idfa key found through the cluster has the value ref holds. */
static void same_as_ref(const char *cluster, int ref_port)
{
    for (int i = 0; i < KEYS; i += 4) {
        size_t len, rlen;
        char *v = get_key(cluster, i, &len), *r = get_key(h_endpoint(ref_port), i, &rlen);
        assert_non_null(r);
        if (!v || len != rlen || memcmp(v, r, len) != 0)
            fail_msg("idfa:dev%06d: %s through the new ring", i, v ? "another value" : "missing");
        free(v);
        free(r);
    }
}

static void join_endpoints(char *buf, size_t len, const struct h_mc *const *m, int n)
{
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
                 h_endpoint(m[i]->port));
}

/* A reload grows idfa's ketama ring from 2 to 3 servers: the keys that
 * moved are sent to the new one from the retained files, in name order,
 * the two old ones get no set, a file dropped during that re-warm keeps its
 * values; then 3 -> 2 (the first member removed): only the keys it had are
 * sent to the two left.  Each time every key is found through the new ring
 * with the value of a one-shot load of the same files in name order. */
static void test_rewarm_ring_change(void **state)
{
    struct t *t = *state;
    struct h_mc extra[3]; /* two members, the reference */
    for (int i = 0; i < 3; i++)
        assert_int_equal(h_mc_start(&extra[i], NULL), 0);
    const struct h_mc *ring3[3] = {&mc[0], &extra[0], &extra[1]};
    char two[256], three[256], text[1024];
    join_endpoints(two, sizeof(two), ring3, 2);
    join_endpoints(three, sizeof(three), ring3, 3);
    snprintf(text, sizeof(text), "state_dir = %s\nhealth_interval = 1\n", t->dir);
    write_conf_addr(t, two, text);
    start_daemon(t, NULL);
    drop_file(t, 1, 0, KEYS, 1);
    drop_file(t, 2, 200, 600, 1);
    long sets0 = h_mc_stat(mc[0].port, "cmd_set"), sets1 = h_mc_stat(extra[0].port, "cmd_set");

    h_mc_pause(&extra[1], 1); /* the ring re-warm waits on the new member */
    write_conf_addr(t, three, text);
    kill(t->pid, SIGHUP);
    must_log(t, "ring change: idfa 2 \u2192 3 servers (1 added), re-warming", 10000);
    drop_file(t, 3, 0, 300, 0); /* dropped during the ring re-warm: newer than both */
    move_in(t, "r-3.tsv.gz");
    h_mc_pause(&extra[1], 0);
    must_log(t, "finished: 2 files", 30000);
    wait_done(t, "r-3.tsv.gz", 30000);
    ref_load(t, extra[2].port);
    same_as_ref(three, extra[2].port);
    long moved = h_mc_items(extra[1].port); /* the new member: its share, r-3's keys too */
    assert_true(moved > 0 && moved < KEYS / 4);
    /* the old members: r-3's sets only (none from the re-warm) */
    long r3 =
        h_mc_stat(mc[0].port, "cmd_set") - sets0 + h_mc_stat(extra[0].port, "cmd_set") - sets1;
    assert_true(r3 > 0 && r3 <= 300 / 4);
    assert_true(log_contains(t, "MEMC_REASON=ring") || log_contains(t, "ring change"));

    /* 3 -> 2: mc[0] leaves; its keys go to the two left, nothing else */
    const struct h_mc *left[2] = {&extra[0], &extra[1]};
    long had = h_mc_items(mc[0].port);
    sets0 = h_mc_stat(extra[0].port, "cmd_set");
    sets1 = h_mc_stat(extra[1].port, "cmd_set");
    join_endpoints(two, sizeof(two), left, 2);
    write_conf_addr(t, two, text);
    kill(t->pid, SIGHUP);
    must_log(t, "ring change: idfa 3 \u2192 2 servers (1 removed)", 10000);
    must_log(t, "finished: 3 files", 30000);
    same_as_ref(two, extra[2].port);
    long sent =
        h_mc_stat(extra[0].port, "cmd_set") - sets0 + h_mc_stat(extra[1].port, "cmd_set") - sets1;
    /* each file's records of the keys mc[0] had under the 3-ring: at most
     * all it holds (some from the 2-ring era) per file, and some */
    assert_true(sent > 0 && sent <= 3 * had);
    stop_daemon(t);
    for (int i = 0; i < 3; i++)
        h_mc_stop(&extra[i]);
}

/* A FIFO put at a retained name during a re-warm: the master opens it with
 * the spool's opener (O_NONBLOCK, regular files only), skips it with one
 * message and keeps serving; it never blocks inside open(). */
static void test_rewarm_fifo_retained(void **state)
{
    struct t *t = *state;
    conf(t, "io_timeout_ms = 20000\n"); /* held loads stay in flight */
    start_daemon(t, NULL);
    drop_file(t, 1, 0, 400, 1);
    drop_file(t, 2, 400, KEYS, 1);
    drop_file(t, 3, 0, 200, 1);
    h_sleep_ms(1500); /* identities recorded */

    /* The re-warm is planned only when the load in flight (gaid held)
     * ends; idfa is held then too, so the plan is made and its first file
     * waits while .r-3 becomes a FIFO. */
    char path[PATH_MAX * 2], line[64];
    snprintf(path, sizeof(path), "%s/r-5.tsv.gz", t->incoming);
    snprintf(line, sizeof(line), "gaid\tonly1\t1.5\t2.5\t7\n");
    assert_int_equal(h_gz_write(path, line, strlen(line)), 0);
    h_mc_pause(&mc[1], 1);
    move_in(t, "r-5.tsv.gz");
    must_log(t, "loading r-5.tsv.gz", 5000);
    restart_memcached(0);
    size_t from = t->n.len;
    assert_int_equal(h_notify_wait(&t->n, "waiting for loads in flight", &from, 10000), 0);
    h_mc_pause(&mc[0], 1);
    h_mc_pause(&mc[1], 0);
    must_log(t, "re-warm started from 4 retained files", 10000);
    snprintf(path, sizeof(path), "%s/.r-3.tsv.gz", t->spool);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0644), 0);
    h_mc_pause(&mc[0], 0);
    must_log(t, "not a regular file", 30000);
    must_log(t, "re-warm of", 30000);
    must_log(t, "finished: ", 30000);
    assert_int_equal(log_count(t, "not a regular file"), 1);

    from = t->n.len; /* the master still serves: a new file loads, STATUS moves */
    drop_file(t, 4, 0, 100, 1);
    assert_int_equal(h_notify_wait(&t->n, "STATUS=", &from, 5000), 0);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rewarm_restarted_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_across_our_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_one_cluster_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_ring_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_fifo_retained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewarm_max_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_oneshot.c — memc-load --oneshot against real memcached processes:
 * every key read back and compared byte for byte, dry run, unknown device
 * types, the error-rate threshold, rename order, unreachable servers,
 * ketama over several servers, values memcached refuses, broken files,
 * max_rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "files.h"
#include "mc_server.h"
#include "procs.h"

static struct h_mc mc[4];
static const char *servers[4];

/* Per test: fresh memcached contents and a fresh spool directory. */
struct t {
    char *dir;
    char spool[PATH_MAX], pattern[PATH_MAX], log[PATH_MAX], expect[PATH_MAX];
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    t->dir = h_tmpdir();
    snprintf(t->spool, sizeof(t->spool), "%s/spool", t->dir);
    snprintf(t->pattern, sizeof(t->pattern), "%s/*.tsv.gz", t->spool);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    snprintf(t->expect, sizeof(t->expect), "%s/expect.tsv", t->dir);
    mkdir(t->spool, 0755);
    *state = t;
    return h_mc_start_all(mc, 4, servers);
}

static int teardown(void **state)
{
    struct t *t = *state;
    h_mc_stop_all(mc, 4);
    h_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* Run memc-load --oneshot with the four servers plus extra args. */
static int run(struct t *t, ...)
{
    const char *argv[40] = {MEMC_BIN,   "--oneshot", "--config", "/dev/null", "--pattern",
                            t->pattern, "--idfa",    servers[0], "--gaid",    servers[1],
                            "--adid",   servers[2],  "--dvid",   servers[3]};
    int n = 14;
    va_list ap;
    va_start(ap, t);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 39;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return h_run(argv, t->log, 120);
}

static int log_has(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    int r = log && strstr(log, what) != NULL;
    if (!r)
        fprintf(stderr, "log lacks '%s':\n%s\n", what, log ? log : "(none)");
    free(log);
    return r;
}

static int spool_has(struct t *t, const char *name)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", t->spool, name);
    return h_exists(p);
}

static void check_all_keys(struct t *t, long want)
{
    long checked = 0;
    long bad = h_check_expect(t->expect, servers, &checked);
    assert_int_equal(bad, 0);
    if (want >= 0)
        assert_int_equal(checked, want);
    assert_true(checked > 0);
}

static void test_loads_every_key(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n",    "3000", "-f",       "3",       "-s",     "11",
                         "--dup", "0.05", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    assert_int_equal(run(t, NULL), 0);
    for (int i = 0; i < 3; i++) {
        char n[64], d[64];
        snprintf(n, sizeof(n), "appsinstalled-%04d.tsv.gz", i);
        snprintf(d, sizeof(d), ".appsinstalled-%04d.tsv.gz", i);
        assert_false(spool_has(t, n));
        assert_true(spool_has(t, d));
    }
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, servers, &checked), 0);
    assert_true(checked > 8000 && checked < 9000); /* --dup: later lines won */
    assert_true(log_has(t, "loaded: "));
    assert_true(log_has(t, "MEMC_RECORDS=3000"));
}

static void test_line_endings(void **state)
{
    struct t *t = *state;
    const char *crlf[] = {"-n",     "2000",     "-s",      "21",     "-p", "crlf-",
                          "--crlf", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(crlf), 0);
    assert_int_equal(run(t, NULL), 0);
    check_all_keys(t, 2000);
    char cr_expect[PATH_MAX + 8];
    snprintf(cr_expect, sizeof(cr_expect), "%s.cr", t->expect);
    const char *cr[] = {"-n",   "2000",     "-s",      "22",     "-p", "cr-",
                        "--cr", "--expect", cr_expect, t->spool, NULL};
    assert_int_equal(h_gen(cr), 0);
    assert_int_equal(run(t, NULL), 0);
    long checked;
    assert_int_equal(h_check_expect(cr_expect, servers, &checked), 0);
    assert_int_equal(checked, 2000);
    assert_true(log_has(t, "MEMC_LINES=2000"));
}

static void test_dry_run_writes_nothing(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "500", "-f", "2", t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    assert_int_equal(run(t, "--dry", "--log-level", "debug", NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(h_mc_items(mc[i].port), 0);
    assert_true(spool_has(t, "appsinstalled-0000.tsv.gz"));
    assert_true(spool_has(t, "appsinstalled-0001.tsv.gz"));
    assert_false(spool_has(t, ".appsinstalled-0000.tsv.gz"));
    assert_true(log_has(t, "dry run: would set idfa:"));
    /* a corrupt file is reported (exit 1) but keeps its name too */
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/broken.tsv.gz", t->spool);
    h_write_file(p, "this is not gzip\n");
    assert_int_equal(run(t, "--dry", NULL), 1);
    assert_true(spool_has(t, "broken.tsv.gz"));
    assert_false(spool_has(t, ".broken.tsv.gz.failed"));
}

static void test_unknown_type(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "800", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    /* dvid not configured: its quarter of the lines are errors -> failed */
    assert_int_equal(run(t, "--dvid", "", NULL), 1);
    assert_true(log_has(t, "unknown device type"));
    assert_true(spool_has(t, ".appsinstalled-0000.tsv.gz")); /* still done: renamed */
    assert_int_equal(h_mc_items(mc[3].port), 0);
    const char *three[] = {servers[0], servers[1], servers[2], NULL};
    long checked;
    assert_int_equal(h_check_expect(t->expect, three, &checked), 0);
    assert_true(checked > 500 && checked < 700);
}

static void test_error_rate_threshold(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "1000", "-e", "0.05", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    assert_int_equal(run(t, NULL), 1); /* 5 % >= 1 % */
    assert_true(log_has(t, "failed: "));
    assert_true(log_has(t, "MEMC_RESULT=failed"));
    assert_true(spool_has(t, ".appsinstalled-0000.tsv.gz"));
    check_all_keys(t, -1); /* the good records are loaded all the same */
    /* the same file passes with a 10 % threshold */
    char conf[PATH_MAX + 8];
    snprintf(conf, sizeof(conf), "%s/c.conf", t->dir);
    h_write_file(conf, "error_threshold = 0.1\n");
    char again[PATH_MAX * 2], from[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/.appsinstalled-0000.tsv.gz", t->spool);
    snprintf(again, sizeof(again), "%s/appsinstalled-0000.tsv.gz", t->spool);
    assert_int_equal(rename(from, again), 0);
    const char *argv[] = {MEMC_BIN,   "--oneshot", "--config", conf,       "--pattern",
                          t->pattern, "--idfa",    servers[0], "--gaid",   servers[1],
                          "--adid",   servers[2],  "--dvid",   servers[3], NULL};
    assert_int_equal(h_run(argv, t->log, 60), 0);
}

/* Renames happen in name order even when later files finish first. */
static void test_rename_order(void **state)
{
    struct t *t = *state;
    /* the first file is by far the biggest, so it finishes last */
    const char *big[] = {"-n", "60000", "-s", "5", "-p", "a-", t->spool, NULL};
    const char *small[] = {"-n", "50", "-f", "6", "-s", "6", "-p", "b-", t->spool, NULL};
    assert_int_equal(h_gen(big), 0);
    assert_int_equal(h_gen(small), 0);
    int in = inotify_init1(IN_NONBLOCK);
    assert_true(inotify_add_watch(in, t->spool, IN_MOVED_TO) >= 0);
    assert_int_equal(run(t, "--workers", "3", NULL), 0);
    char why[2 * NAME_MAX + 32];
    int count = h_dot_renames(in, NULL, why, sizeof(why));
    if (count < 0)
        fail_msg("%s", why);
    assert_int_equal(count, 7);
    close(in);
}

static void test_memcached_down(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "400", t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    /* a port nobody listens on: start and stop a memcached to find one */
    struct h_mc dead;
    assert_int_equal(h_mc_start(&dead, NULL), 0);
    h_mc_stop(&dead);
    assert_int_equal(run(t, "--idfa", h_endpoint(dead.port), NULL), 75);
    assert_true(spool_has(t, "appsinstalled-0000.tsv.gz"));
    assert_false(spool_has(t, ".appsinstalled-0000.tsv.gz"));
    assert_true(log_has(t, "unreachable"));
    assert_true(log_has(t, "left in place"));
}

static void test_ketama_cluster(void **state)
{
    struct t *t = *state;
    struct h_mc extra;
    assert_int_equal(h_mc_start(&extra, NULL), 0);
    char cluster[64];
    snprintf(cluster, sizeof(cluster), "%s,%s", servers[0], h_endpoint(extra.port));
    const char *gen[] = {"-n", "2000", "-t", "idfa", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    assert_int_equal(run(t, "--idfa", cluster, NULL), 0);
    const char *by_type[4] = {cluster, NULL, NULL, NULL};
    long checked;
    assert_int_equal(h_check_expect(t->expect, by_type, &checked), 0); /* ketama agrees */
    assert_int_equal(checked, 2000);
    long a = h_mc_items(mc[0].port), b = h_mc_items(extra.port);
    assert_int_equal(a + b, 2000);
    assert_true(a > 500 && b > 500);
    h_mc_stop(&extra);
}

static void test_value_too_large(void **state)
{
    struct t *t = *state;
    const char *extra[] = {"-I", "64k", "-o", "slab_chunk_max=32768", NULL};
    struct h_mc small;
    assert_int_equal(h_mc_start(&small, extra), 0);
    /* 200 good lines and one whose value (15000 x 6 bytes) exceeds 64 KiB */
    size_t cap = 1 << 20, off = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 100; i++)
        off += (size_t)snprintf(text + off, cap - off, "idfa\tgood%d\t1.5\t2.5\t%d,2\n", i, i);
    off += (size_t)snprintf(text + off, cap - off, "idfa\thuge\t1\t2\t");
    for (int i = 0; i < 15000; i++)
        off += (size_t)snprintf(text + off, cap - off, "%s4000000000", i ? "," : "");
    text[off++] = '\n';
    for (int i = 100; i < 300; i++)
        off += (size_t)snprintf(text + off, cap - off, "idfa\tgood%d\t1.5\t2.5\t%d,2\n", i, i);
    /* a second one in the same batch: both must be attributed */
    off += (size_t)snprintf(text + off, cap - off, "idfa\thuge2\t1\t2\t");
    for (int i = 0; i < 15000; i++)
        off += (size_t)snprintf(text + off, cap - off, "%s4000000000", i ? "," : "");
    text[off++] = '\n';
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/big.tsv.gz", t->spool);
    assert_int_equal(h_gz_write(path, text, off), 0);
    free(text);
    /* 2/300 is 0.67 %: still below the 1 % threshold */
    assert_int_equal(run(t, "--idfa", h_endpoint(small.port), NULL), 0);
    assert_true(log_has(t, "idfa:huge: SERVER_ERROR object too large"));
    assert_true(log_has(t, "idfa:huge2: SERVER_ERROR object too large"));
    assert_true(log_has(t, "MEMC_ERRORS=2 "));
    assert_int_equal(h_mc_items(small.port), 300);
    size_t len;
    char *v = h_mc_get(h_endpoint(small.port), "idfa:good299", &len);
    assert_non_null(v);
    free(v);
    assert_null(h_mc_get(h_endpoint(small.port), "idfa:huge", &len));
    assert_null(h_mc_get(h_endpoint(small.port), "idfa:huge2", &len));
    h_mc_stop(&small);
}

static void test_broken_and_empty_files(void **state)
{
    struct t *t = *state;
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/a-notgzip.tsv.gz", t->spool);
    h_write_file(p, "idfa\tx\t1\t2\t3\n");
    snprintf(p, sizeof(p), "%s/b-empty.tsv.gz", t->spool);
    h_write_file(p, "");
    const char *gen[] = {"-n", "300", "-p", "c-", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    /* a good file (other keys) cut short: the stream ends inside a line */
    char d_expect[PATH_MAX + 16], p2[PATH_MAX * 2];
    snprintf(d_expect, sizeof(d_expect), "%s/d-expect.tsv", t->dir);
    const char *gen_d[] = {"-n", "3000",     "-s",     "99",   "-p",
                           "d-", "--expect", d_expect, t->dir, NULL};
    assert_int_equal(h_gen(gen_d), 0);
    snprintf(p, sizeof(p), "%s/d-0000.tsv.gz", t->dir);
    size_t len;
    char *data = h_read_file(p, &len);
    snprintf(p2, sizeof(p2), "%s/d-truncated.tsv.gz", t->spool);
    int fd = open(p2, O_WRONLY | O_CREAT, 0644);
    /* a third: for this seed the stream then ends inside an apps list */
    assert_int_equal(write(fd, data, len / 3), (ssize_t)(len / 3));
    close(fd);
    free(data);
    assert_int_equal(run(t, NULL), 1);
    assert_true(spool_has(t, ".a-notgzip.tsv.gz.failed"));
    assert_true(spool_has(t, ".b-empty.tsv.gz")); /* no members, no lines: done */
    assert_true(spool_has(t, ".c-0000.tsv.gz"));
    assert_true(spool_has(t, ".d-truncated.tsv.gz.failed"));
    assert_true(log_has(t, "is corrupt"));
    assert_true(log_has(t, "truncated gzip data"));
    check_all_keys(t, 300);
    /* the whole lines before the damage are stored with the right bytes;
     * the line cut short by it is not stored at all */
    long present = 0;
    assert_int_equal(h_check_stored(d_expect, servers, &present), 0);
    assert_true(present > 50 && present < 3000);
}

/* The last load's MEMC_DURATION_MS in the log (-1 if none). */
static long load_ms(struct t *t)
{
    char *log = h_read_file(t->log, NULL), *last = NULL;
    for (char *at = log; at && (at = strstr(at, "MEMC_DURATION_MS=")); at++)
        last = at;
    long ms = last ? atol(last + strlen("MEMC_DURATION_MS=")) : -1;
    free(log);
    return ms;
}

/* Load 20000 idfa records again (from scratch: fresh memcached contents)
 * with the config text; every key must be right.  The load's ms. */
static long load_at(struct t *t, const char *idfa, const char *text)
{
    char conf[PATH_MAX + 8], cmd[PATH_MAX * 3];
    char conf_text[512];
    snprintf(conf, sizeof(conf), "%s/rate.conf", t->dir);
    snprintf(conf_text, sizeof(conf_text), "settle_time = 0\n%s", text); /* a new file: at once */
    h_write_file(conf, conf_text);
    snprintf(cmd, sizeof(cmd), "rm -f %s/.appsinstalled-*", t->spool);
    assert_int_equal(system(cmd), 0);
    const char *gen[] = {"-n", "20000", "-t", "idfa", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    const char *argv[] = {MEMC_BIN,   "--oneshot", "--config", conf,     "--pattern",
                          t->pattern, "--idfa",    idfa,       "--gaid", "",
                          "--adid",   "",          "--dvid",   "",       NULL};
    assert_int_equal(h_run(argv, t->log, 60), 0);
    const char *by_type[4] = {idfa, NULL, NULL, NULL};
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, by_type, &checked), 0);
    assert_int_equal(checked, 20000);
    return load_ms(t);
}

/* max_rate paces the records to each server: 20000 at 10000/s take about
 * 2 s to one server (a coarse bound here; bench/reader-latency checks
 * ±10 %), about half that to a cluster of two (a bucket per server), and
 * far less without a limit. */
static void test_max_rate(void **state)
{
    struct t *t = *state;
    long free_ms = load_at(t, servers[0], "");
    long one_ms = load_at(t, servers[0], "max_rate = 10000\n");
    struct h_mc extra;
    assert_int_equal(h_mc_start(&extra, NULL), 0);
    char cluster[64];
    snprintf(cluster, sizeof(cluster), "%s,%s", servers[0], h_endpoint(extra.port));
    long two_ms = load_at(t, cluster, "max_rate = 10000\n");
    h_mc_stop(&extra);
    fprintf(stderr, "20000 records: %ld ms unlimited, %ld ms at 10000/s, %ld ms to two servers\n",
            free_ms, one_ms, two_ms);
    assert_true(one_ms >= 1500 && one_ms < 6000);
    assert_true(free_ms >= 0 && free_ms < one_ms / 2);
    assert_true(two_ms >= 500 && two_ms < one_ms * 4 / 5);
}

/* Files written less than settle_time ago are waited for: said once, with
 * how long and how many, and on a terminal on the progress line. */
static void test_settle_said(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "100", "-f", "3", "-s", "5", t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    char conf[PATH_MAX + 16];
    snprintf(conf, sizeof(conf), "%s/settle.conf", t->dir);
    h_write_file(conf, "settle_time = 2\n");
    const char *argv[] = {MEMC_BIN,   "--oneshot", "--config", conf,       "--pattern",
                          t->pattern, "--idfa",    servers[0], "--gaid",   servers[1],
                          "--adid",   servers[2],  "--dvid",   servers[3], NULL};
    assert_int_equal(h_run(argv, t->log, 60), 0);
    assert_true(spool_has(t, ".appsinstalled-0002.tsv.gz"));
    char *log = h_read_file(t->log, NULL);
    assert_non_null(log);
    const char *what = " s for 3 files written less than settle_time ago";
    char *at = strstr(log, what);
    assert_non_null(at);
    assert_null(strstr(at + 1, what)); /* once */
    double secs = 0;
    char *w = at;
    while (w > log && strncmp(w, "waiting ", 8) != 0)
        w--;
    assert_int_equal(sscanf(w, "waiting %lf s", &secs), 1);
    assert_true(secs > 1.0 && secs <= 2.0);
    free(log);
    /* on a terminal: the progress line says it while they settle */
    const char *gen_b[] = {"-n", "100", "-f", "2", "-s", "6", "-p", "b-", t->spool, NULL};
    assert_int_equal(h_gen(gen_b), 0);
    char cmd[PATH_MAX * 4], typescript[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd),
             "%s --oneshot --config %s --pattern '%s' --idfa %s --gaid %s --adid %s --dvid %s",
             MEMC_BIN, conf, t->pattern, servers[0], servers[1], servers[2], servers[3]);
    snprintf(typescript, sizeof(typescript), "%s/typescript", t->dir);
    const char *tty[] = {"script", "-qec", cmd, typescript, NULL};
    assert_int_equal(h_run(tty, t->log, 60), 0);
    char *out = h_read_file(typescript, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, " s for 2 files written less than settle_time ago\033[K"));
    free(out);
    assert_true(spool_has(t, ".b-0001.tsv.gz"));
}

/* A paced load makes progress while a block is still going out: a block
 * of 4 MiB (~13 000 records) at 4000/s takes 3 s, longer than
 * stall_timeout, and the worker is not taken for a hung one. */
static void test_max_rate_is_no_stall(void **state)
{
    struct t *t = *state;
    long ms = load_at(t, servers[0], "max_rate = 4000\nblock_bytes = 4M\nstall_timeout = 1\n");
    char *log = h_read_file(t->log, NULL);
    assert_null(strstr(log, "made no progress"));
    free(log);
    assert_true(ms >= 4000);
}

/* On a terminal: live progress lines, then a summary table; plain log lines
 * otherwise (every other test here runs without a terminal). */
static void test_terminal_progress(void **state)
{
    struct t *t = *state;
    const char *gen[] = {"-n", "20000", "-s", "77", t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    /* a minute old: loaded at once, not after settle_time (a young file
     * would start only once the pause below is over) */
    char file[PATH_MAX + 32];
    snprintf(file, sizeof(file), "%s/appsinstalled-0000.tsv.gz", t->spool);
    struct timespec old[2];
    clock_gettime(CLOCK_REALTIME, &old[0]);
    old[0].tv_sec -= 60;
    old[1] = old[0];
    assert_int_equal(utimensat(AT_FDCWD, file, old, 0), 0);
    char cmd[PATH_MAX * 3], typescript[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd),
             "%s --oneshot --config /dev/null --pattern '%s' --idfa %s --gaid %s --adid %s "
             "--dvid %s",
             MEMC_BIN, t->pattern, servers[0], servers[1], servers[2], servers[3]);
    snprintf(typescript, sizeof(typescript), "%s/typescript", t->dir);
    h_mc_pause(&mc[0], 1); /* hold the load so progress is drawn a few times */
    const char *argv[] = {"script", "-qec", cmd, typescript, NULL};
    pid_t pid = h_spawn(argv, NULL);
    h_sleep_ms(1200);
    h_mc_pause(&mc[0], 0);
    assert_int_equal(h_wait(pid, 60), 0);
    char *out = h_read_file(typescript, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "appsinstalled-0000.tsv.gz"));
    assert_non_null(strstr(out, "records/s"));
    assert_non_null(strstr(out, "ETA"));
    assert_non_null(strstr(out, "\033[K")); /* redrawn in place */
    assert_non_null(strstr(out, "RESULT")); /* the summary table */
    assert_non_null(strstr(out, " loaded "));
    assert_null(strstr(out, "info: ")); /* per-file info lines give way to it */
    free(out);
    /* and without a terminal: plain lines, no escape codes */
    char *log = h_read_file(t->log, NULL);
    assert_true(!log || !strchr(log, '\033'));
    free(log);
}

/* idfa and gaid on memcached listening on UNIX sockets alone (-s PATH -a
 * 0770), spelled /path and unix:/path: the load (every key byte-identical,
 * read back over the sockets by libmemcached), --check-config's probes,
 * verify and get over them. */
static void test_unix_sockets(void **state)
{
    struct t *t = *state;
    struct h_mc u[2];
    char sock[2][PATH_MAX], conf[PATH_MAX + 16], text[PATH_MAX * 4], gaid[PATH_MAX + 8];
    for (int i = 0; i < 2; i++) {
        snprintf(sock[i], sizeof(sock[i]), "%s/mc%d.sock", t->dir, i);
        assert_int_equal(h_mc_start_unix(&u[i], sock[i]), 0);
    }
    snprintf(gaid, sizeof(gaid), "unix:%s", sock[1]);
    snprintf(conf, sizeof(conf), "%s/unix.conf", t->dir);
    snprintf(text, sizeof(text),
             "pattern = %s\nidfa = %s\ngaid = %s\nadid = %s\ndvid = %s\nstate_dir =\n"
             "metrics_file =\n",
             t->pattern, sock[0], gaid, servers[2], servers[3]);
    assert_int_equal(h_write_file(conf, text), 0);
    const char *gen[] = {"-n", "4000", "-s", "31", "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(gen), 0);
    const char *load[] = {MEMC_BIN, "--config", conf, "--oneshot", NULL};
    assert_int_equal(h_run(load, t->log, 60), 0);
    const char *by_type[4] = {sock[0], gaid, servers[2], servers[3]};
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, by_type, &checked), 0);
    assert_int_equal(checked, 4000);
    assert_true(h_mc_items(mc[0].port) == 0 && h_mc_items(mc[1].port) == 0); /* TCP: nothing */

    const char *check[] = {MEMC_BIN, "--config", conf, "--check-config", NULL};
    assert_int_equal(h_run(check, t->log, 30), 0);
    assert_true(log_has(t, sock[0]));
    char dotted[PATH_MAX * 2];
    snprintf(dotted, sizeof(dotted), "%s/.appsinstalled-0000.tsv.gz", t->spool);
    const char *verify[] = {MEMC_BIN, "verify", "--config", conf, dotted, NULL};
    assert_int_equal(h_run(verify, t->log, 60), 0);
    /* one idfa key of the expect listing, fetched with get */
    char *exp = h_read_file(t->expect, NULL), key[128] = "";
    assert_non_null(exp);
    char *k = strstr(exp, "idfa:");
    assert_non_null(k);
    snprintf(key, sizeof(key), "%.*s", (int)strcspn(k, "\t"), k);
    free(exp);
    const char *get[] = {MEMC_BIN, "get", "--config", conf, key, NULL};
    assert_int_equal(h_run(get, t->log, 30), 0);
    assert_true(log_has(t, sock[0]));
    for (int i = 0; i < 2; i++)
        h_mc_stop(&u[i]);
}

/* The seconds left before memc-load:check-config expires ("mg ... t":
 * -1 never), or 0 when it is not there. */
static long probe_ttl(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char buf[256] = "";
    long ttl = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        write(fd, "mg memc-load:check-config t\r\n", 29) == 29 &&
        read(fd, buf, sizeof(buf) - 1) > 0 && strncmp(buf, "HD t", 4) == 0)
        ttl = strtol(buf + 4, NULL, 10);
    if (fd >= 0)
        close(fd);
    return ttl;
}

/* The table, the probe and its TTL, the verdict line, and the quiet check
 * on the journal stream. */
static void test_check_config(void **state)
{
    struct t *t = *state;
    struct h_mc dead;
    assert_int_equal(h_mc_start(&dead, NULL), 0);
    h_mc_stop(&dead);
    char cmd[PATH_MAX * 4], out[PATH_MAX + 16];
    snprintf(out, sizeof(out), "%s/check.out", t->dir);
    snprintf(cmd, sizeof(cmd),
             "%s --check-config --config /dev/null --pattern '%s' --idfa %s --gaid %s --adid %s "
             "--dvid '' > %s",
             MEMC_BIN, t->pattern, servers[0], servers[1], h_endpoint(dead.port), out);
    const char *sh[] = {"sh", "-c", cmd, NULL};
    assert_int_equal(h_run(sh, t->log, 30), 1); /* a target is down */
    char *table = h_read_file(out, NULL);
    assert_non_null(table);
    assert_non_null(strstr(table, "TYPE"));
    char want[PATH_MAX + 128];
    /* the row: memory limit, items and evictions from stats, then the probe */
    snprintf(want, sizeof(want), "idfa   %-32s ", servers[0]);
    assert_non_null(strstr(table, want));
    assert_non_null(strstr(strstr(table, want), " MiB          0          0  ok\n"));
    assert_non_null(strstr(table, "MEMORY      ITEMS  EVICTIONS  STATE"));
    assert_non_null(strstr(table, "Connection refused"));
    assert_non_null(strstr(table, "not configured"));
    free(table);
    snprintf(cmd, sizeof(cmd),
             "%s --check-config --config /dev/null --pattern '%s' --idfa %s --gaid %s "
             "--adid %s --dvid %s > %s",
             MEMC_BIN, t->pattern, servers[0], servers[1], servers[2], servers[3], out);
    assert_int_equal(h_run(sh, t->log, 30), 0); /* all up */
    assert_true(log_has(t, "memc-load: configuration /dev/null: check passed\n"));
    /* the probe key expires: nothing stays behind on the servers */
    long ttl = probe_ttl(mc[0].port);
    assert_true(ttl > 0 && ttl <= 60);
    /* under the journal (ExecReload=): a passing check is its one line */
    snprintf(cmd, sizeof(cmd),
             ": > %s; JOURNAL_STREAM=$(stat -c %%d:%%i %s) %s --check-config --no-probe "
             "--config /dev/null --pattern '%s' --idfa %s --gaid %s --adid %s --dvid %s >> %s 2>&1",
             out, out, MEMC_BIN, t->pattern, servers[0], servers[1], servers[2], servers[3], out);
    assert_int_equal(h_run(sh, t->log, 30), 0);
    table = h_read_file(out, NULL);
    assert_non_null(table);
    assert_string_equal(table, "<6>configuration /dev/null: check passed\n");
    free(table);
    /* a failing one writes its report too, for the context of the error */
    snprintf(cmd, sizeof(cmd),
             ": > %s; JOURNAL_STREAM=$(stat -c %%d:%%i %s) %s --check-config --no-probe "
             "--config /dev/null --pattern '%s/nospool/*.tsv.gz' --idfa %s >> %s 2>&1",
             out, out, MEMC_BIN, t->dir, servers[0], out);
    assert_int_equal(h_run(sh, t->log, 30), 1);
    table = h_read_file(out, NULL);
    assert_non_null(table);
    assert_non_null(strstr(table, "<3>spool directory "));
    assert_non_null(strstr(table, "MEMORY      ITEMS  EVICTIONS  STATE"));
    assert_non_null(strstr(table, "<3>configuration /dev/null: check failed\n"));
    assert_null(strstr(table, "memc-load: "));
    free(table);
    /* every target up, but the spool directory missing: fails, naming it */
    snprintf(cmd, sizeof(cmd),
             "%s --check-config --config /dev/null --pattern '%s/nospool/*.tsv.gz' --idfa %s "
             "--gaid %s --adid %s --dvid %s > %s",
             MEMC_BIN, t->dir, servers[0], servers[1], servers[2], servers[3], out);
    assert_int_equal(h_run(sh, t->log, 30), 1);
    snprintf(want, sizeof(want), "spool directory %s/nospool", t->dir);
    assert_true(log_has(t, want));
    assert_true(log_has(t, "No such file or directory"));
    table = h_read_file(out, NULL);
    assert_non_null(table);
    snprintf(want, sizeof(want), "idfa   %-32s ", servers[0]);
    assert_non_null(strstr(table, want)); /* the targets are still probed */
    assert_non_null(strstr(strstr(table, want), "  ok\n"));
    free(table);
}

static void test_self_test(void **state)
{
    struct t *t = *state;
    const char *argv[] = {MEMC_BIN, "-t", NULL};
    assert_int_equal(h_run(argv, t->log, 10), 0);
    const char *bad[] = {MEMC_BIN, "--workers", "zero", NULL};
    assert_int_equal(h_run(bad, t->log, 10), 64);
    char conf[PATH_MAX + 8];
    snprintf(conf, sizeof(conf), "%s/bad.conf", t->dir);
    h_write_file(conf, "workers = 2\nnope = 1\n");
    const char *badconf[] = {MEMC_BIN, "--config", conf, "--oneshot", NULL};
    assert_int_equal(h_run(badconf, t->log, 10), 78);
    assert_true(log_has(t, "bad.conf:2: nope: unknown key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loads_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_endings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_rate_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ketama_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_and_empty_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminal_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_said, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_sockets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_rate_is_no_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

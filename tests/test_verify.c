/*
 * test_verify.c — `memc-load verify` and the daemon's read-back and
 * eviction warning, against real memcached processes: all equal after a
 * clean load; a flushed server's records all missing while the others stay
 * equal; a value overwritten with other bytes counted as different; an
 * unreachable server (75); --json parses; several files in name order with
 * the later line winning; a memcached too small (-m 1) evicts, the file's
 * result says MEMC_EVICTIONS and the read-back misses, and verify reports
 * the missing share.
 */
#include <arpa/inet.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "files.h"
#include "mc_server.h"
#include "procs.h"

static struct h_mc mc[4];
static const char *servers[4];

struct t {
    char *dir;
    char spool[PATH_MAX], pattern[PATH_MAX], log[PATH_MAX], out[PATH_MAX], expect[PATH_MAX];
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    t->dir = h_tmpdir();
    snprintf(t->spool, sizeof(t->spool), "%s/spool", t->dir);
    snprintf(t->pattern, sizeof(t->pattern), "%s/*.tsv.gz", t->spool);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    snprintf(t->out, sizeof(t->out), "%s/out", t->dir);
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

/* memc-load --oneshot, one worker (files strictly in name order). */
static int load(struct t *t)
{
    const char *argv[] = {MEMC_BIN, "--oneshot", "--config",  "/dev/null", "--pattern", t->pattern,
                          "--idfa", servers[0],  "--gaid",    servers[1],  "--adid",    servers[2],
                          "--dvid", servers[3],  "--workers", "1",         NULL};
    int r = h_run(argv, t->log, 120);
    if (r != 0) { /* what explains the failure */
        char *log = h_read_file(t->log, NULL);
        fprintf(stderr, "memc-load exited %d, its log:\n%s\n", r, log ? log : "");
        free(log);
    }
    return r;
}

/* memc-load verify with the four servers, extra args (NULL-terminated),
 * stdout into t->out. */
static int verify(struct t *t, ...)
{
    char cmd[PATH_MAX * 8];
    int n = snprintf(cmd, sizeof(cmd),
                     "exec %s verify --config /dev/null --idfa %s --gaid %s --adid %s --dvid %s",
                     MEMC_BIN, servers[0], servers[1], servers[2], servers[3]);
    va_list ap;
    va_start(ap, t);
    for (const char *a; (a = va_arg(ap, const char *)) && n < (int)sizeof(cmd);)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", a);
    va_end(ap);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " > '%s'", t->out);
    const char *sh[] = {"sh", "-c", cmd, NULL};
    return h_run(sh, t->log, 120);
}

/* The loaded (dot-named) files of memc-gen's default prefix. */
static const char *dotfile(struct t *t, int i)
{
    static char p[4][PATH_MAX + 64];
    snprintf(p[i], sizeof(p[i]), "%s/.appsinstalled-%04d.tsv.gz", t->spool, i);
    return p[i];
}

/* python3 over verify's --json output: d is the object, s its servers. */
static int json_true(struct t *t, const char *expr)
{
    char prog[2048];
    snprintf(prog, sizeof(prog),
             "import json, sys\n"
             "d = json.load(open(sys.argv[1]))\n"
             "s = d['servers']\n"
             "ok = %s\n"
             "print(json.dumps(d) if not ok else '', file=sys.stderr)\n"
             "sys.exit(0 if ok else 1)\n",
             expr);
    const char *argv[] = {"python3", "-c", prog, t->out, NULL};
    return h_run(argv, NULL, 30) == 0;
}

static int out_has(struct t *t, const char *what)
{
    char *out = h_read_file(t->out, NULL);
    int r = out && strstr(out, what);
    if (!r)
        fprintf(stderr, "output lacks '%s':\n%s\n", what, out ? out : "(none)");
    free(out);
    return r;
}

static int log_has(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    int r = log && strstr(log, what);
    if (!r)
        fprintf(stderr, "log lacks '%s':\n%s\n", what, log ? log : "(none)");
    free(log);
    return r;
}

/* Write one item with the meta protocol, as a stray writer would. */
static void mc_set(int port, const char *key, const char *val)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512], ans[64];
    int n = snprintf(req, sizeof(req), "ms %s %zu\r\n%s\r\n", key, strlen(val), val);
    assert_int_equal(write(fd, req, (size_t)n), n);
    ssize_t r = read(fd, ans, sizeof(ans) - 1);
    assert_true(r >= 2);
    assert_memory_equal(ans, "HD", 2);
    close(fd);
}

static void gen(struct t *t, const char *lines, const char *files, const char *seed)
{
    const char *argv[] = {"-n", lines,      "-f",      files,    "-s",
                          seed, "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(argv), 0);
}

static void test_clean_load_then_flush(void **state)
{
    struct t *t = *state;
    gen(t, "4000", "2", "41");
    assert_int_equal(load(t), 0);
    /* the daemon's own read-back of each file */
    assert_true(log_has(t, "MEMC_VERIFY_SAMPLED=200 MEMC_VERIFY_MISSING=0 "
                           "MEMC_VERIFY_DIFFERENT=0 MEMC_EVICTIONS=0"));
    assert_int_equal(verify(t, "--seed", "5", dotfile(t, 0), dotfile(t, 1), NULL), 0);
    assert_true(out_has(t, "sample:   1000 keys"));
    assert_true(out_has(t, "1000     1000        0         0        0   100.00%"));
    assert_int_equal(verify(t, "--json", "--sample", "400", dotfile(t, 0), dotfile(t, 1), NULL), 0);
    assert_true(json_true(t, "len(s) == 4 and sum(x['sampled'] for x in s) == 400 and "
                             "all(x['equal'] == x['sampled'] and x['missing'] == 0 and "
                             "x['different'] == 0 and x['interval'][1] == 1.0 for x in s) and "
                             "d['status'] == 0"));

    h_mc_flush(mc[1].port); /* gaid loses everything */
    assert_int_equal(verify(t, "--json", dotfile(t, 0), dotfile(t, 1), NULL), 1);
    assert_true(json_true(t, "s[1]['type'] == 'gaid' and s[1]['sampled'] > 100 and "
                             "s[1]['missing'] == s[1]['sampled'] and s[1]['equal'] == 0 and "
                             "s[1]['interval'][0] == 0.0 and s[1]['interval'][1] < 0.05 and "
                             "all(x['equal'] == x['sampled'] > 0 for i, x in enumerate(s) "
                             "if i != 1) and d['status'] == 1"));
    assert_int_equal(verify(t, dotfile(t, 0), dotfile(t, 1), NULL), 1);
    assert_true(out_has(t, "e.g. missing"));
}

/* Every key sampled (--sample above the key count), one overwritten with
 * other bytes: one different, the rest equal. */
static void test_corrupted_value_is_different(void **state)
{
    struct t *t = *state;
    gen(t, "300", "1", "42");
    assert_int_equal(load(t), 0);
    char *ex = h_read_file(t->expect, NULL), key[256];
    assert_non_null(ex);
    assert_int_equal(sscanf(ex, "%255[^\t]", key), 1);
    free(ex);
    int type = strncmp(key, "idfa", 4) == 0   ? 0
               : strncmp(key, "gaid", 4) == 0 ? 1
               : strncmp(key, "adid", 4) == 0 ? 2
                                              : 3;
    mc_set(mc[type].port, key, "not a UserApps value");
    assert_int_equal(verify(t, "--json", "--sample", "5000", dotfile(t, 0), NULL), 1);
    char expr[512];
    snprintf(expr, sizeof(expr),
             "d['total']['sampled'] == 300 and d['total']['different'] == 1 and "
             "d['total']['missing'] == 0 and s[%d]['different'] == 1 and "
             "s[%d]['examples'] == [{'key': '%s', 'state': 'different'}]",
             type, type, key);
    assert_true(json_true(t, expr));
}

static void test_unreachable_server(void **state)
{
    struct t *t = *state;
    gen(t, "2000", "1", "43");
    assert_int_equal(load(t), 0);
    h_mc_stop(&mc[2]);
    assert_int_equal(verify(t, dotfile(t, 0), NULL), 75);
    assert_true(out_has(t, "unreachable: connect: Connection refused"));
    assert_int_equal(verify(t, "--json", dotfile(t, 0), NULL), 75);
    assert_true(json_true(t, "s[2]['reachable'] is False and s[2]['present'] is None and "
                             "d['total']['unreachable'] == 1 and d['status'] == 75"));
    /* usage and missing files */
    assert_int_equal(verify(t, NULL), 64);
    assert_int_equal(verify(t, "--sample", "0", dotfile(t, 0), NULL), 64);
    assert_int_equal(verify(t, "/nonexistent/x.tsv.gz", NULL), 66);
    assert_int_equal(verify(t, "--idfa", "nocolon", dotfile(t, 0), NULL), 64);
}

/* Two files share every key with other values: verify reads them in name
 * order whatever the argument order, so the second file's values are the
 * ones to find; the first file alone is all different. */
static void test_later_file_wins(void **state)
{
    struct t *t = *state;
    char a[PATH_MAX + 16], b[PATH_MAX + 16], text[2][64 * 300];
    size_t len[2] = {0, 0};
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < 200; i++)
            len[f] += (size_t)snprintf(
                text[f] + len[f], sizeof(text[f]) - len[f], "%s\tdev%03d\t%d.5\t-%d.25\t%d,%d\n",
                (const char *[]){"idfa", "gaid", "adid", "dvid"}[i % 4], i, f, i, i + f * 1000, 7);
    snprintf(a, sizeof(a), "%s/a.tsv.gz", t->spool);
    snprintf(b, sizeof(b), "%s/b.tsv.gz", t->spool);
    assert_int_equal(h_gz_write(a, text[0], len[0]), 0);
    assert_int_equal(h_gz_write(b, text[1], len[1]), 0);
    assert_int_equal(load(t), 0);
    snprintf(a, sizeof(a), "%s/.a.tsv.gz", t->spool);
    snprintf(b, sizeof(b), "%s/.b.tsv.gz", t->spool);
    assert_int_equal(verify(t, "--json", "--sample", "1000", b, a, NULL), 0);
    assert_true(json_true(t, "d['total']['sampled'] == 200 and d['total']['equal'] == 200"));
    assert_int_equal(verify(t, "--json", "--sample", "50", a, NULL), 1);
    assert_true(json_true(t, "d['total']['sampled'] == 50 and d['total']['different'] == 50"));
}

/* memcached's smallest memory (-m 1; -I 512k, since the largest item may
 * be at most half of it) for idfa, and ~40 MB of idfa values: it evicts. */
static void test_evictions(void **state)
{
    struct t *t = *state;
    const char *small[] = {"-m", "1", "-I", "512k", NULL};
    h_mc_stop(&mc[0]);
    assert_int_equal(h_mc_start(&mc[0], small), 0);
    free((char *)servers[0]);
    servers[0] = strdup(h_endpoint(mc[0].port));
    const char *argv[] = {"-n", "40000", "-s", "44", "-t", "idfa", t->spool, NULL};
    assert_int_equal(h_gen(argv), 0);
    assert_int_equal(load(t), 0); /* stored, as far as memcached said */
    assert_true(log_has(t, "evicted"));
    assert_true(log_has(t, "memcached -m MEGABYTES"));
    char *log = h_read_file(t->log, NULL), *p = strstr(log, "MEMC_RESULT=loaded");
    assert_non_null(p);
    p = strstr(p, "MEMC_EVICTIONS=");
    assert_non_null(p);
    assert_true(atol(p + strlen("MEMC_EVICTIONS=")) > 1000);
    p = strstr(log, "MEMC_RESULT=loaded MEMC_VERIFY_SAMPLED=200 MEMC_VERIFY_MISSING=");
    assert_non_null(p);
    assert_true(atol(strstr(p, "MISSING=") + 8) > 0);
    free(log);
    assert_true(log_has(t, "read back 200 sampled records right after the load"));
    assert_int_equal(verify(t, "--json", dotfile(t, 0), NULL), 1);
    assert_true(json_true(t, "s[0]['missing'] > 0 and s[0]['sampled'] == 1000 and "
                             "s[0]['interval'][1] < 1.0 and s[1]['sampled'] == 0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_load_then_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_value_is_different, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_file_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evictions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_tls.c — TLS and ASCII authentication against real memcached
 * (Debian's, started with -Z and -Y by tests/lib/tls_server.c, a PKI made
 * at test time by tests/lib/tls-certs):
 *
 *  - a load over TLS with a client certificate: every key byte-identical
 *    (read back by libmemcached on the server's plain listener), `memc-load
 *    verify` over TLS exits 0, one handshake per writer connection however
 *    many batches;
 *  - what must leave the file (exit 75) with the reason in the log, quickly:
 *    no client certificate, a CA that did not sign the server, an expired
 *    server certificate, a name that does not match, TLS against a plain
 *    memcached and plain against a TLS one (within io_timeout_ms);
 *  - -Y: the right password loads, a wrong one or none leaves the file with
 *    memcached's words and at most a few connections (stats
 *    total_connections), --check-config returns at once;
 *  - TLS and auth together, a ketama cluster of two TLS servers, a TLS
 *    memcached killed and restarted in the middle of a file (the daemon
 *    sets up a new session and loads the file again: nothing lost);
 *  - the daemon: a TLS failure is a health warning and server_up 0, and a
 *    reload reads the certificate files again;
 *  - --check-config prints the certificate and warns before it expires;
 *    secret files others can read are refused; $CREDENTIALS_DIRECTORY.
 */
#include <errno.h>
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

#include "files.h"
#include "mc_server.h"
#include "procs.h"
#include "tls_server.h"

static char pki[PATH_MAX];

struct t {
    char *dir;
    char spool[PATH_MAX], conf[PATH_MAX], log[PATH_MAX], expect[PATH_MAX], prom[PATH_MAX];
    struct h_mcs s[2];
    int ns;
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    t->dir = h_tmpdir();
    snprintf(t->spool, sizeof(t->spool), "%s/spool", t->dir);
    snprintf(t->conf, sizeof(t->conf), "%s/memc-load.conf", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    snprintf(t->expect, sizeof(t->expect), "%s/expect.tsv", t->dir);
    snprintf(t->prom, sizeof(t->prom), "%s/memc-load.prom", t->dir);
    mkdir(t->spool, 0755);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    for (int i = 0; i < t->ns; i++)
        h_mcs_stop(&t->s[i]);
    h_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

/* Server i: TLS with cert (NULL: none), -Y with auth (NULL: none). */
static struct h_mcs *server(struct t *t, const char *cert, int verify_client, const char *auth)
{
    struct h_mcs *s = &t->s[t->ns];
    assert_int_equal(h_mcs_start(s, pki, cert, verify_client, auth), 0);
    t->ns++;
    return s;
}

/* The config: idfa on idfa (a "host:port,..." list), no other type, the
 * test's own state and metrics, then the lines of extra; mode 0600 (it may
 * name secret files). */
static void conf(struct t *t, const char *idfa, const char *extra, ...)
    __attribute__((format(printf, 3, 4)));
static void conf(struct t *t, const char *idfa, const char *extra, ...)
{
    char text[8192], more[4096];
    va_list ap;
    va_start(ap, extra);
    vsnprintf(more, sizeof(more), extra, ap);
    va_end(ap);
    snprintf(text, sizeof(text),
             "pattern = %s/*.tsv.gz\nidfa = %s\ngaid =\nadid =\ndvid =\nworkers = 1\n"
             "io_timeout_ms = 1000\nstate_dir =\nmetrics_file = %s\nlog_level = debug\n%s\n",
             t->spool, idfa, t->prom, more);
    assert_int_equal(h_write_file(t->conf, text), 0);
    chmod(t->conf, 0600);
}

/* The client side of the PKI: CA, client certificate and key (a format
 * and its arguments: more lines may follow the format). */
#define CLIENT_TLS_FMT "tls = on\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\n"
#define CLIENT_TLS_ARGS h_pki(pki, "ca.pem"), h_pki(pki, "client.pem"), h_pki(pki, "client.key")
#define CLIENT_TLS CLIENT_TLS_FMT, CLIENT_TLS_ARGS

static void gen(struct t *t, const char *lines, const char *seed)
{
    const char *argv[] = {"-n", lines, "-s",       seed,      "-t",     "idfa",
                          "-f", "1",   "--expect", t->expect, t->spool, NULL};
    assert_int_equal(h_gen(argv), 0);
}

static int run(struct t *t, const char *mode)
{
    const char *argv[] = {MEMC_BIN, "--config", t->conf, mode, NULL};
    return h_run(argv, t->log, 120);
}

/* run, and the log when the exit status is not want */
static void expect_run(struct t *t, const char *mode, int want)
{
    int r = run(t, mode);
    if (r != want) {
        char *log = h_read_file(t->log, NULL);
        fprintf(stderr, "log:\n%s\n", log ? log : "");
        free(log);
        fail_msg("memc-load %s exited with %d, want %d", mode, r, want);
    }
}

static int log_count(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, what)); p += strlen(what))
        n++;
    free(log);
    return n;
}

static int log_has(struct t *t, const char *what)
{
    if (log_count(t, what))
        return 1;
    char *log = h_read_file(t->log, NULL);
    fprintf(stderr, "log lacks '%s':\n%s\n", what, log ? log : "(none)");
    free(log);
    return 0;
}

static int spool_has(struct t *t, const char *name)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", t->spool, name);
    return h_exists(p);
}

#define FILE0 "appsinstalled-0000.tsv.gz"

/* A one-shot load that must leave the file (exit 75) within max_ms, with
 * why in the log. */
static void must_leave(struct t *t, const char *why, long max_ms)
{
    long start = h_now_ms();
    expect_run(t, "--oneshot", 75);
    long took = h_now_ms() - start;
    if (took > max_ms)
        fail_msg("left after %ld ms, want at most %ld", took, max_ms);
    assert_true(spool_has(t, FILE0));
    assert_false(spool_has(t, "." FILE0));
    assert_true(log_has(t, why));
}

/* ---- loads ---------------------------------------------------------------- */

/* Over TLS with a client certificate: every key byte-identical, verify over
 * TLS 0, one TLS session per writer connection for the whole file (batches
 * of 64 KiB: many batches, one handshake). */
static void test_tls_load(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), CLIENT_TLS);
    FILE *f = fopen(t->conf, "a");
    fputs("block_bytes = 64k\n", f);
    fclose(f);
    gen(t, "20000", "31");
    expect_run(t, "--oneshot", 0);
    assert_true(spool_has(t, "." FILE0));
    const char *plain[4] = {h_mcs_plain(s), NULL, NULL, NULL};
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, plain, &checked), 0);
    assert_int_equal(checked, 20000);
    assert_int_equal(log_count(t, "writer: TLS session with"), 1);
    assert_true(log_has(t, "MEMC_VERIFY_SAMPLED=200"));
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/." FILE0, t->spool);
    const char *verify[] = {MEMC_BIN,   "verify", "--config", t->conf,
                            "--sample", "100000", dot,        NULL};
    assert_int_equal(h_run(verify, t->log, 60), 0);
}

/* TLS and -Y on one server: authenticated inside the TLS session. */
static void test_tls_and_auth(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, "loader:s3cret-pass");
    char pw[PATH_MAX];
    snprintf(pw, sizeof(pw), "%s/password", t->dir);
    assert_int_equal(h_write_file(pw, "s3cret-pass\n"), 0);
    chmod(pw, 0600);
    conf(t, h_endpoint(s->mc.port), CLIENT_TLS_FMT "auth_user = loader\nauth_password_file = %s\n",
         CLIENT_TLS_ARGS, pw);
    gen(t, "5000", "32");
    expect_run(t, "--oneshot", 0);
    /* libmemcached has no ASCII auth, so the test cannot read the keys
     * itself (its gets were refused and counted as absent: that check could
     * not fail); the count through an authenticated connection, and the
     * load's own read-back over TLS + auth, byte for byte */
    assert_int_equal(h_mc_stat_auth(s->plain_port, "loader", "s3cret-pass", "curr_items"), 5000);
    assert_true(
        log_has(t, "MEMC_VERIFY_SAMPLED=200 MEMC_VERIFY_MISSING=0 MEMC_VERIFY_DIFFERENT=0"));
}

/* A ketama cluster of two TLS servers: every key on one of them, verify
 * (which routes as the writer does) finds every one. */
static void test_tls_cluster(void **state)
{
    struct t *t = *state;
    struct h_mcs *a = server(t, "server", 1, NULL), *b = server(t, "server", 1, NULL);
    char addr[128];
    snprintf(addr, sizeof(addr), "%s,%s", h_endpoint(a->mc.port), h_endpoint(b->mc.port));
    conf(t, addr, CLIENT_TLS);
    gen(t, "10000", "33");
    expect_run(t, "--oneshot", 0);
    long na = h_mc_items(a->plain_port), nb = h_mc_items(b->plain_port);
    assert_int_equal(na + nb, 10000);
    assert_true(na > 2000 && nb > 2000);
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/." FILE0, t->spool);
    const char *verify[] = {MEMC_BIN,   "verify", "--config", t->conf,
                            "--sample", "100000", dot,        NULL};
    assert_int_equal(h_run(verify, t->log, 60), 0);
    assert_int_equal(log_count(t, "writer: TLS session with"), 2);
}

/* ---- TLS failures: the file is left, quickly, the reason is logged -------- */

static void test_no_client_cert(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), "tls = on\ntls_ca_file = %s\n", h_pki(pki, "ca.pem"));
    gen(t, "2000", "34");
    must_leave(t, "certificate required", 5000);
    assert_true(log_has(t, "is down for TLS"));
    assert_true(log_has(t, "MEMC_DEFERRED=2000"));
    assert_int_equal(h_mc_items(s->plain_port), 0);
}

static void test_untrusted_ca(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), "tls = on\ntls_ca_file = %s\n", h_pki(pki, "other-ca.pem"));
    gen(t, "2000", "35");
    must_leave(t, "certificate verify failed", 5000);
}

static void test_expired_cert(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "expired", 1, NULL);
    conf(t, h_endpoint(s->mc.port), CLIENT_TLS);
    gen(t, "2000", "36");
    must_leave(t, "certificate has expired", 5000);
}

static void test_name_mismatch(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), "tls_server_name = memcached.example\n" CLIENT_TLS);
    gen(t, "2000", "37");
    must_leave(t, "hostname mismatch", 5000);
}

/* TLS against a plain memcached, plain against a TLS one: left within
 * io_timeout_ms (1000) and a little, never a hang. */
static void test_tls_against_plain(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, NULL);
    conf(t, h_endpoint(s->mc.port), CLIENT_TLS);
    gen(t, "2000", "38");
    must_leave(t, "TLS handshake", 3000);
}

static void test_plain_against_tls(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), "%s", "");
    gen(t, "2000", "39");
    must_leave(t, "unreachable", 3000);
    assert_int_equal(h_mc_items(s->plain_port), 0);
}

/* ---- ASCII authentication -------------------------------------------------- */

static void password_file(struct t *t, char *path, size_t len, const char *pw)
{
    snprintf(path, len, "%s/password", t->dir);
    assert_int_equal(h_write_file(path, pw), 0);
    chmod(path, 0600);
}

static void test_auth_right(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, "loader:right");
    char pw[PATH_MAX];
    password_file(t, pw, sizeof(pw), "right\n");
    conf(t, h_endpoint(s->mc.port), "auth_user = loader\nauth_password_file = %s\n", pw);
    gen(t, "5000", "40");
    expect_run(t, "--oneshot", 0);
    assert_true(spool_has(t, "." FILE0));
    assert_int_equal(h_mc_stat_auth(s->mc.port, "loader", "right", "curr_items"), 5000);
    assert_true(log_has(t, "MEMC_VERIFY_MISSING=0"));
}

/* A wrong password: left, memcached's words and the user in the log (never
 * the password), and only a few connections, not a storm. */
static void test_auth_wrong(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, "loader:right");
    char pw[PATH_MAX];
    password_file(t, pw, sizeof(pw), "wrong\n");
    conf(t, h_endpoint(s->mc.port), "auth_user = loader\nauth_password_file = %s\n", pw);
    gen(t, "20000", "41");
    long before = h_mc_stat_auth(s->mc.port, "loader", "right", "total_connections");
    must_leave(t, "CLIENT_ERROR authentication failure", 5000);
    long after = h_mc_stat_auth(s->mc.port, "loader", "right", "total_connections");
    fprintf(stderr, "connections for the load: %ld\n", after - before - 1);
    assert_true(after - before - 1 <= 8);
    assert_true(log_has(t, "user loader"));
    assert_int_equal(log_count(t, "wrong"), 0);
    assert_int_equal(h_mc_stat_auth(s->mc.port, "loader", "right", "curr_items"), 0);
}

/* -Y but no auth configured: every command is "CLIENT_ERROR
 * unauthenticated": the server is down (was: a reconnect storm, the file
 * counted as errors), and --check-config returns at once (it never did). */
static void test_auth_missing(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, "loader:right");
    conf(t, h_endpoint(s->mc.port), "%s", "");
    gen(t, "20000", "42");
    long before = h_mc_stat_auth(s->mc.port, "loader", "right", "total_connections");
    must_leave(t, "CLIENT_ERROR unauthenticated", 5000);
    long after = h_mc_stat_auth(s->mc.port, "loader", "right", "total_connections");
    assert_true(after - before - 1 <= 8);
    assert_true(log_has(t, "auth_user"));
    long start = h_now_ms();
    expect_run(t, "--check-config", 1);
    assert_true(h_now_ms() - start < 5000);
}

/* ---- the daemon ------------------------------------------------------------ */

static pid_t daemon_start(struct t *t)
{
    const char *argv[] = {MEMC_BIN, "--config", t->conf, NULL};
    pid_t pid = h_spawn(argv, t->log);
    assert_true(pid > 0);
    assert_int_equal(h_wait_text(t->log, "ready:", 10000), 0);
    return pid;
}

static void daemon_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    assert_int_equal(h_wait(pid, 30), 0);
}

static void dump_fail(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    fprintf(stderr, "log:\n%s\n", log ? log : "");
    free(log);
    fail_msg("%s", what);
}

static void must_log(struct t *t, const char *what, int ms)
{
    if (h_wait_text(t->log, what, ms) < 0)
        dump_fail(t, what);
}

/* A CA file that did not sign the server: the health probe warns, the
 * metrics say server_up 0, the file waits; the right CA at the same path
 * and a reload (SIGHUP): new workers read it, the file loads. */
static void test_daemon_reload_certs(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    char ca[PATH_MAX];
    snprintf(ca, sizeof(ca), "%s/ca.pem", t->dir);
    char *other = h_read_file(h_pki(pki, "other-ca.pem"), NULL),
         *right = h_read_file(h_pki(pki, "ca.pem"), NULL);
    assert_int_equal(h_write_file(ca, other), 0);
    conf(t, h_endpoint(s->mc.port),
         "tls = on\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\n"
         "retry_interval = 1\nhealth_interval = 1\n",
         ca, h_pki(pki, "client.pem"), h_pki(pki, "client.key"));
    pid_t pid = daemon_start(t);
    must_log(t, "health probe: memcached", 5000);
    assert_true(log_has(t, "refuses TLS"));
    h_sleep_ms(1500);
    char *prom = h_read_file(t->prom, NULL);
    assert_non_null(prom);
    assert_non_null(strstr(prom, "memc_load_server_up{server=\"127.0.0.1"));
    assert_non_null(strstr(prom, "\"} 0"));
    free(prom);
    gen(t, "3000", "43");
    must_log(t, "is down for TLS", 5000);
    assert_true(spool_has(t, FILE0));
    assert_int_equal(h_write_file(ca, right), 0);
    kill(pid, SIGHUP);
    must_log(t, "configuration reloaded", 5000);
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/." FILE0, t->spool);
    assert_int_equal(h_wait_path(dot, 0, 30000), 0);
    daemon_stop(pid);
    const char *plain[4] = {h_mcs_plain(s), NULL, NULL, NULL};
    assert_int_equal(h_check_expect(t->expect, plain, NULL), 0);
    free(other);
    free(right);
}

/* A TLS memcached killed in the middle of a file and started again: the
 * writer sets up a new TLS session, the file is loaded again from the
 * start, nothing is lost.  (Re-warming is off: it is not what this tests,
 * and with nothing retained yet it reaches rewarm.c's qsort(NULL, 0),
 * which UBSan rejects.) */
static void test_daemon_restart_mid_file(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port),
         "retry_interval = 1\nblock_bytes = 16k\nrewarm_max_age = 0\n" CLIENT_TLS);
    pid_t pid = daemon_start(t);
    char incoming[PATH_MAX];
    snprintf(incoming, sizeof(incoming), "%s/in", t->dir);
    mkdir(incoming, 0755);
    const char *g[] = {"-n", "100000", "-s",       "44",      "-t",     "idfa",
                       "-f", "1",      "--expect", t->expect, incoming, NULL};
    assert_int_equal(h_gen(g), 0);
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/" FILE0, incoming);
    snprintf(to, sizeof(to), "%s/" FILE0, t->spool);
    assert_int_equal(rename(from, to), 0);
    /* in the middle: once memcached holds a few batches of the file (so it
     * has answered one: the loader has acks to lose), stop it (nothing more
     * is stored), then kill it */
    long items = 0;
    for (int i = 0; i < 10000 && items < 500; i++) {
        h_sleep_ms(1);
        items = h_mc_items(s->plain_port);
    }
    h_mc_pause(&s->mc, 1);
    if (items < 500 || items >= 100000)
        dump_fail(t, "not in the middle of the file");
    h_mc_kill(&s->mc);
    assert_int_equal(h_mcs_restart(s), 0);
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/." FILE0, t->spool);
    if (h_wait_path(dot, 0, 60000) < 0)
        dump_fail(t, "the file was not loaded after the restart");
    daemon_stop(pid);
    const char *plain[4] = {h_mcs_plain(s), NULL, NULL, NULL};
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, plain, &checked), 0);
    assert_int_equal(checked, 100000);
    assert_true(log_count(t, "writer: TLS session with") >= 2);
    assert_true(log_has(t, "a server failed after storing some"));
}

/* A TLS memcached restarted empty after a file was loaded: the health probe
 * (over TLS) sees the restart and the re-warm sends the retained file to it
 * again over a new TLS session: every key back, byte-identical. */
static void test_daemon_rewarm_tls(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, "server", 1, NULL);
    conf(t, h_endpoint(s->mc.port), "retry_interval = 1\nhealth_interval = 1\n" CLIENT_TLS);
    pid_t pid = daemon_start(t);
    gen(t, "4000", "45");
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/." FILE0, t->spool);
    if (h_wait_path(dot, 0, 30000) < 0)
        dump_fail(t, "the file was not loaded");
    h_sleep_ms(1500); /* a probe over TLS has seen this memcached's start */
    h_mc_kill(&s->mc);
    assert_int_equal(h_mcs_restart(s), 0); /* empty: the re-warm may fill it at once */
    must_log(t, "re-warm started from 1 retained files", 15000);
    must_log(t, "finished: 1 files", 30000);
    daemon_stop(pid);
    const char *plain[4] = {h_mcs_plain(s), NULL, NULL, NULL};
    long checked = 0;
    assert_int_equal(h_check_expect(t->expect, plain, &checked), 0);
    assert_int_equal(checked, 4000);
    assert_true(log_count(t, "writer: TLS session with") >= 2);
}

/* ---- --check-config, secret files, credentials ----------------------------- */

/* The certificate's subject, issuer and expiry; a warning within 14 days. */
static void test_check_config_cert(void **state)
{
    struct t *t = *state;
    struct h_mcs *ok = server(t, "server", 1, NULL), *soon = server(t, "soon", 1, NULL);
    char addr[128];
    snprintf(addr, sizeof(addr), "%s", h_endpoint(ok->mc.port));
    conf(t, addr, "gaid_tls = on\n" CLIENT_TLS);
    /* gaid on the soon-expiring one */
    char *text = h_read_file(t->conf, NULL);
    char *g = strstr(text, "gaid =");
    char fixed[16384];
    snprintf(fixed, sizeof(fixed), "%.*sgaid = %s%s", (int)(g - text), text,
             h_endpoint(soon->mc.port), g + strlen("gaid ="));
    assert_int_equal(h_write_file(t->conf, fixed), 0);
    chmod(t->conf, 0600);
    free(text);
    const char *argv[] = {MEMC_BIN, "--config", t->conf, "--check-config", NULL};
    assert_int_equal(h_run(argv, t->log, 30), 0);
    assert_true(log_has(t, "certificate CN=memcached, issued by CN=memc-load test CA, expires"));
    assert_true(log_has(t, "(29 days)") || log_has(t, "(30 days)"));
    assert_true(log_has(t, "warning: the certificate of"));
    assert_true(log_has(t, "expires in 6 days") || log_has(t, "expires in 7 days"));
}

/* A key or password file others can read is refused at start (78), as is a
 * config naming one that others can read; the message says what to do. */
static void test_secret_modes(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, "loader:right");
    char pw[PATH_MAX];
    password_file(t, pw, sizeof(pw), "right\n");
    chmod(pw, 0644);
    conf(t, h_endpoint(s->mc.port), "auth_user = loader\nauth_password_file = %s\n", pw);
    gen(t, "100", "45");
    expect_run(t, "--oneshot", 78);
    assert_true(log_has(t, "others may read it (mode 0644); chmod o-rwx"));
    chmod(pw, 0600);
    chmod(t->conf, 0644);
    expect_run(t, "--check-config", 78);
    assert_true(log_has(t, "it names the password or key files"));
    chmod(t->conf, 0640);
    expect_run(t, "--oneshot", 0);
}

/* Under systemd the password comes from $CREDENTIALS_DIRECTORY
 * (LoadCredential=memc-load:/etc/memc-load/credentials gives
 * memc-load_password): the path in the config need not even exist. */
static void test_credentials_directory(void **state)
{
    struct t *t = *state;
    struct h_mcs *s = server(t, NULL, 0, "loader:from-credentials");
    char creds[PATH_MAX], pw[PATH_MAX + 32];
    snprintf(creds, sizeof(creds), "%s/creds", t->dir);
    mkdir(creds, 0700);
    snprintf(pw, sizeof(pw), "%s/memc-load_password", creds);
    assert_int_equal(h_write_file(pw, "from-credentials"), 0);
    chmod(pw, 0400);
    conf(t, h_endpoint(s->mc.port),
         "auth_user = loader\nauth_password_file = /etc/memc-load/credentials/password\n");
    gen(t, "1000", "46");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    int r = run(t, "--oneshot");
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(r, 0);
    assert_int_equal(h_mc_stat_auth(s->mc.port, "loader", "from-credentials", "curr_items"), 1000);
}

int main(void)
{
    char *dir = h_tmpdir();
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    if (h_pki_make(pki) < 0) {
        fprintf(stderr, "cannot make the test PKI (openssl)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_client_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_against_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_against_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_right, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_reload_certs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_restart_mid_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_rewarm_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credentials_directory, setup, teardown),
    };
    if (getenv("TEST_FILTER")) /* TEST_FILTER=test_auth_* ./test_tls */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    h_rmrf(dir);
    free(dir);
    return r;
}

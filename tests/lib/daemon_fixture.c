/*
 * daemon_fixture.c — the daemon fixture (see daemon_fixture.h).
 */
#include "daemon_fixture.h"

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

struct h_mc mc[5];

/* Does the config text set key (at the start of a line)? */
static int sets_key(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '='))
            return 1;
    return 0;
}

/* The fixture's defaults, then extra; a key in extra replaces its default
 * (a key given twice is a config error). */
void write_conf_addr(struct t *t, const char *idfa_addr, const char *extra)
{
    /* state_dir and metrics_file: the test's own (never the host's) */
    const char *const defaults[][2] = {{"workers", "2"},        {"io_timeout_ms", "1000"},
                                       {"retry_interval", "1"}, {"stop_timeout", "10"},
                                       {"state_dir", t->dir},   {"metrics_file", ""}};
    char text[4096];
    int off =
        snprintf(text, sizeof(text),
                 "pattern = %s/*.tsv.gz\nidfa = %s\ngaid = %s\nadid = %s\ndvid = %s\n", t->spool,
                 idfa_addr, h_endpoint(mc[1].port), h_endpoint(mc[2].port), h_endpoint(mc[3].port));
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (!extra || !sets_key(extra, defaults[i][0]))
            off += snprintf(text + off, sizeof(text) - (size_t)off, "%s = %s\n", defaults[i][0],
                            defaults[i][1]);
    snprintf(text + off, sizeof(text) - (size_t)off, "%s", extra ? extra : "");
    h_write_file(t->conf, text);
    char *copy = strdup(idfa_addr);
    free((char *)t->servers[0]);
    t->servers[0] = copy;
}

void write_conf(struct t *t, int idfa_index, const char *extra)
{
    write_conf_addr(t, h_endpoint(mc[idfa_index].port), extra);
}

/* Before a failure: the daemon's log is what explains it. */
static void dump_log(struct t *t)
{
    char *log = h_read_file(t->log, NULL);
    fprintf(stderr, "daemon log:\n%s\n", log ? log : "");
    free(log);
}

void must_log(struct t *t, const char *what, int timeout_ms)
{
    if (h_wait_text(t->log, what, timeout_ms) < 0) {
        dump_log(t);
        fail_msg("log lacks '%s'", what);
    }
}

int log_count(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, what)); p += strlen(what))
        n++;
    free(log);
    return n;
}

int log_contains(struct t *t, const char *what)
{
    char *log = h_read_file(t->log, NULL);
    int r = log && strstr(log, what) != NULL;
    free(log);
    return r;
}

int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));
    t->dir = h_tmpdir();
    snprintf(t->spool, sizeof(t->spool), "%s/spool", t->dir);
    snprintf(t->incoming, sizeof(t->incoming), "%s/incoming", t->dir);
    snprintf(t->conf, sizeof(t->conf), "%s/memc-load.conf", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
    snprintf(t->expect, sizeof(t->expect), "%s/expect.tsv", t->dir);
    mkdir(t->spool, 0755);
    mkdir(t->incoming, 0755);
    if (h_mc_start_all(mc, 5, NULL) < 0) /* fresh servers: item counts start at 0 */
        return -1;
    for (int i = 1; i < 4; i++)
        t->servers[i] = strdup(h_endpoint(mc[i].port));
    write_conf(t, 0, NULL);
    if (h_notify_open(&t->n, t->dir) < 0)
        return -1;
    *state = t;
    return 0;
}

void stop_daemon(struct t *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        h_wait(t->pid, 30);
        t->pid = 0;
    }
}

int teardown(void **state)
{
    struct t *t = *state;
    stop_daemon(t);
    h_mc_stop_all(mc, 5);
    h_notify_close(&t->n);
    h_rmrf(t->dir);
    for (int i = 0; i < 4; i++)
        free((char *)t->servers[i]);
    free(t->dir);
    free(t);
    return 0;
}

void start_daemon(struct t *t, const char *watchdog_usec)
{
    setenv("NOTIFY_SOCKET", t->n.path, 1);
    if (watchdog_usec)
        setenv("WATCHDOG_USEC", watchdog_usec, 1);
    const char *argv[] = {MEMC_BIN, "--config", t->conf, NULL};
    t->pid = h_spawn(argv, t->log);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    assert_true(t->pid > 0);
    size_t from = t->n.len;
    if (h_notify_wait(&t->n, "READY=1", &from, 10000) < 0) {
        dump_log(t);
        fail_msg("no READY=1");
    }
}

void gen(struct t *t, const char *lines, const char *files, const char *seed, const char *prefix,
         const char *outdir)
{
    const char *args[] = {"-n", lines,  "-f",       files,     "-s",   seed,
                          "-p", prefix, "--expect", t->expect, outdir, NULL};
    assert_int_equal(h_gen(args), 0);
}

void move_in(struct t *t, const char *name)
{
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    snprintf(from, sizeof(from), "%s/%s", t->incoming, name);
    snprintf(to, sizeof(to), "%s/%s", t->spool, name);
    assert_int_equal(rename(from, to), 0);
}

void move_in_held(struct t *t, const char *name)
{
    char loading[NAME_MAX + 16];
    snprintf(loading, sizeof(loading), "loading %s", name);
    h_mc_pause(&mc[0], 1);
    move_in(t, name);
    must_log(t, loading, 5000);
}

void kill_workers(struct t *t, int sig, int at_least)
{
    pid_t kids[16];
    int n = h_children(t->pid, kids, 16);
    assert_true(n >= at_least);
    for (int i = 0; i < n; i++)
        kill(kids[i], sig);
}

void wait_done(struct t *t, const char *name, int timeout_ms)
{
    char dot[PATH_MAX * 2];
    snprintf(dot, sizeof(dot), "%s/.%s", t->spool, name);
    if (h_wait_path(dot, 0, timeout_ms) < 0) {
        dump_log(t);
        fail_msg("%s was not renamed", name);
    }
}

void check_keys(struct t *t, long want)
{
    long checked;
    long bad = h_check_expect(t->expect, t->servers, &checked);
    if (bad || checked != want) {
        dump_log(t);
        fail_msg("%ld of %ld keys wrong or missing (want %ld)", bad, checked, want);
    }
}

/*
 * daemon_fixture.h — one running daemon for a test: five memcached (idfa
 * gaid adid dvid + a spare), a spool, a config file, a NOTIFY_SOCKET the test
 * reads, and helpers to drop files and check every key.  Shared by
 * test_daemon and test_faults; cmocka asserts inside, so call from tests only.
 */
#ifndef MEMC_TEST_DAEMON_FIXTURE_H
#define MEMC_TEST_DAEMON_FIXTURE_H

#include <limits.h>
#include <sys/types.h>

#include "files.h"
#include "mc_server.h"
#include "notify_sock.h"
#include "procs.h"

extern struct h_mc mc[5]; /* four device types + one spare */

struct t {
    char *dir;
    char spool[PATH_MAX], incoming[PATH_MAX], conf[PATH_MAX], log[PATH_MAX], expect[PATH_MAX];
    struct h_notify n;
    pid_t pid;
    const char *servers[4];
};

/* Config: idfa on mc[idfa_index] (or any "host:port,..." list in idfa_addr
 * when not NULL), the others on mc[1..3], plus extra lines. */
void write_conf(struct t *t, int idfa_index, const char *extra);
void write_conf_addr(struct t *t, const char *idfa_addr, const char *extra);
int setup(void **state);
int teardown(void **state);
void start_daemon(struct t *t, const char *watchdog_usec);
void stop_daemon(struct t *t);
void gen(struct t *t, const char *lines, const char *files, const char *seed, const char *prefix,
         const char *outdir);
void move_in(struct t *t, const char *name);
/* move_in with idfa's memcached (mc[0]) paused, then wait until a worker
 * logs "loading NAME": the load is held mid-file until h_mc_pause(&mc[0], 0). */
void move_in_held(struct t *t, const char *name);
/* Send sig to every worker (children of the daemon); asserts there are at
 * least at_least of them. */
void kill_workers(struct t *t, int sig, int at_least);
void wait_done(struct t *t, const char *name, int timeout_ms);
void check_keys(struct t *t, long want);
/* How many times the daemon's log contains what. */
int log_count(struct t *t, const char *what);
/* 1 if the daemon's log contains what */
int log_contains(struct t *t, const char *what);
/* Wait up to timeout_ms for what in the daemon's log; fail the test (with
 * the log on stderr) if it does not come. */
void must_log(struct t *t, const char *what, int timeout_ms);

#endif

/*
 * health.h — is every memcached still the process we loaded?
 *
 * memcached keeps nothing across a restart, so a restarted server silently
 * lacks its share of every file loaded before.  The master asks each
 * configured server `stats` every health_interval (non-blocking, in its
 * own epoll loop) and takes its identity from the answer: `pid` and its
 * start time (`time - uptime`).  Identities are kept in a small state file
 * (state_dir/servers, written atomically), so a restart that happened while
 * memc-load itself was down is seen at its next start.  A changed identity
 * is reported to the caller, which re-warms that server (rewarm.h).
 */
#ifndef MEMC_HEALTH_H
#define MEMC_HEALTH_H

#include <limits.h>
#include <stdint.h>

#include "config.h"

struct memc_map;

struct health_server {
    int fd;   /* probe connection, -1 between probes */
    int sent; /* "stats" written, reading the answer */
    int up;   /* the last probe was answered */
    size_t len;
    char buf[4096];
    int64_t started_ms, next_ms;
    long pid;        /* identity last seen (0: never) */
    long long start; /* time - uptime */
};

struct health {
    const struct memc_map *map;
    struct health_server s[CFG_MAX_SERVERS];
    int epfd;
    uint64_t tag;
    int interval_ms, timeout_ms;
    char state_file[PATH_MAX]; /* "" = none (one-shot) */
};

/* Probes every interval_ms; sockets go into epfd with data.u64 = tag + i.
 * state_dir "" keeps no state file.  Known identities are read from it. */
void health_init(struct health *h, const struct memc_map *map, int epfd, uint64_t tag,
                 int interval_ms, int timeout_ms, const char *state_dir);
void health_free(struct health *h);
/* Start the probes that are due; give up on those that take too long. */
void health_tick(struct health *h, int64_t now);
/* Server i's socket is ready.  Returns 1 when its answer shows a new
 * identity (restarted since we last saw it), else 0. */
int health_on_event(struct health *h, int i, int64_t now);

#endif

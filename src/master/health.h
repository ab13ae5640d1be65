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
 * is reported to the caller, which re-warms that server (rewarm.h).  A
 * probe connects as every connection does (TLS, authentication: conn.h),
 * each step on an epoll event; a TLS or auth failure is a journal warning
 * once, until the server answers again.
 */
#ifndef MEMC_HEALTH_H
#define MEMC_HEALTH_H

#include <limits.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"

struct memc_map;

struct health_server {
    struct mc_link link; /* the probe's connection (TLS, auth as configured: conn.h) */
    int fd;              /* link.fd, -1 between probes */
    unsigned events;     /* what epoll watches for on it */
    int sent;            /* "stats" written, reading the answer */
    int up;              /* the last probe was answered */
    int down;            /* the last probe failed (not: never probed yet) */
    int said;            /* TLS or auth failure reported (enum mc_link_fail), 0 none */
    size_t len;
    char buf[4096];
    int64_t started_ms, next_ms;
    long pid;              /* identity last seen (0: never) */
    long long start;       /* time - uptime */
    long saved_pid;        /* identity in the state file: the last one memc-load */
    long long saved_start; /* knows it holds the data of (see health_commit) */
};

struct health {
    const struct memc_map *map;
    struct health_server s[CFG_MAX_SERVERS];
    int epfd;
    uint64_t tag;
    int interval_ms, timeout_ms;
    char state_file[PATH_MAX]; /* "" = none (one-shot) */
    int save_failed;           /* the last write failed: tried again each tick */
    int64_t save_at_ms;        /* ... not before this */
};

/* Probes every interval_ms; sockets go into epfd with data.u64 = tag + i.
 * state_dir "" keeps no state file.  Known identities are read from it. */
void health_init(struct health *h, const struct memc_map *map, int epfd, uint64_t tag,
                 int interval_ms, int timeout_ms, const char *state_dir);
void health_free(struct health *h);
/* In a forked child (a worker): drop the probes' connections without
 * touching the master's epoll set or sending anything on them. */
void health_in_child(struct health *h);
/* Servers whose last probe failed (unreachable, hung, refusing): a
 * worker skips their `stats` before a load (ipc.h IPC_LOAD down_mask). */
uint32_t health_down_mask(const struct health *h);
/* Start the probes that are due; give up on those that take too long. */
void health_tick(struct health *h, int64_t now);
/* Server i's socket is ready.  Returns 1 when its answer shows a new
 * identity (restarted since we last saw it), else 0.  A first identity
 * ever seen is saved at once; a new one after a restart only by
 * health_commit, once the server is re-warmed: a re-warm cut short by a
 * stop, a crash or a kill is seen again at the next start. */
int health_on_event(struct health *h, int i, int64_t now);
/* One line of the state file, "name pid start" (name: up to 319 bytes,
 * cap at least 320): 1 and the fields, or 0 for anything else. */
int health_state_line(const char *line, char *name, size_t cap, long *pid, long long *start);

/* The servers in mask are re-warmed: save their new identities. */
void health_commit(struct health *h, uint32_t mask);

#endif

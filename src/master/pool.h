/*
 * pool.h — the worker processes: spawn, hand out files, hear back, reap.
 *
 * The pool is the process table of the master (cf. nginx's ngx_process.c):
 * it forks workers up to `workers`, backs off when they die right after
 * starting, kills a worker that makes no progress, retires workers on a
 * reload and stops them on shutdown.  It knows nothing about what a file's
 * fate is: a finished load and a worker that died while loading go to the
 * master through struct pool_events, and the master tells the spool.
 *
 * Each worker's socket is registered in the master's epoll with data.u64 =
 * tag + slot; the master calls pool_on_readable() for those.
 */
#ifndef MEMC_POOL_H
#define MEMC_POOL_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "ipc.h"
#include "order.h"

#define POOL_MAX_WORKERS 128

struct spool_file;

/* A worker process's entry point (cf. nginx's ngx_spawn_proc_pt): runs in
 * the forked child with the config and its end of the socket, returns the
 * exit status.  The pool never knows what a worker does. */
typedef int (*pool_proc_fn)(const struct cfg *c, int sock);

struct pool_worker {
    pid_t pid; /* 0: free slot */
    int sock;
    int ready;               /* said HELLO */
    int retiring;            /* finish the current file, then quit (reload) */
    unsigned gen;            /* pool.gen when it was started */
    int busy;                /* has a job: a spool file, or a re-warm file */
    struct spool_file *file; /* the spool file it loads (NULL: idle, or a re-warm) */
    char name[NAME_MAX + 1]; /* what it loads, for messages */
    uint32_t job;
    int64_t started_ms, last_change_ms;
    struct pipe_stats progress;
    uint32_t down_mask;
    /* the write order (order.h): name points at `name`; NULL for a re-warm */
    struct order_load ord;
    uint32_t told_granted, told_refused; /* what IPC_GRANT said so far */
};

struct pool_events {
    void *ctx;
    /* A worker finished its job on f (NULL: a re-warm file); it is idle again
     * and its turns are released.  late: servers it was granted below the
     * newest name (order.h).  reloads: how many reloads ago the worker was
     * started (its masks number the servers of that configuration). */
    void (*result)(void *ctx, struct spool_file *f, const struct ipc_msg *msg, uint32_t late,
                   unsigned reloads);
    /* A worker asks for turns (its ord.want grew): decide, then pool_grant. */
    void (*turn)(void *ctx);
    /* Worker pid died (`why`: "killed by signal 9 (Killed)") while loading f
     * (NULL: a re-warm file). */
    void (*died)(void *ctx, struct spool_file *f, pid_t pid, const char *why);
    /* In a new worker, before its entry point: close the master's descriptors. */
    void (*in_child)(void *ctx);
};

struct pool {
    struct pool_worker w[POOL_MAX_WORKERS];
    const struct cfg *cfg; /* the master's, follows reloads */
    int epfd;
    uint64_t tag;
    uint32_t next_job;
    int stopping;
    int64_t respawn_at_ms;
    int fast_deaths;
    uint64_t restarts;  /* workers that died unexpectedly (metrics) */
    unsigned gen;       /* reloads so far (pool_retire_all) */
    uint32_t down_hint; /* servers the health probe finds down, told with each load */
    struct pool_events ev;
    pool_proc_fn proc;
};

void pool_init(struct pool *p, const struct cfg *cfg, int epfd, uint64_t tag,
               const struct pool_events *ev, pool_proc_fn proc);

/* Start workers up to cfg->workers (not while stopping or backing off). */
void pool_fill(struct pool *p, int64_t now);
/* Workers alive, retiring or not. */
int pool_count(const struct pool *p, int retiring);
/* Workers that have a job. */
int pool_count_busy(const struct pool *p);
/* 1 when the pool is full and every worker said HELLO. */
int pool_all_ready(const struct pool *p);
/* A ready, idle, non-retiring worker, or NULL. */
struct pool_worker *pool_idle(struct pool *p);
/* Give w a file open as fd (not closed here): spool file f (only_mask:
 * the servers a retry is for, 0 = all), or with f NULL a re-warm of the
 * servers in only_mask (ring_types: of those types, only the records whose
 * server changed with the ring, ipc.h).  file_time_s: the file's mtime as
 * the master saw it, the start of its records' life (expiry.h).  0 or
 * -errno. */
int pool_load(struct pool *p, struct pool_worker *w, struct spool_file *f, const char *name, int fd,
              uint32_t only_mask, uint32_t ring_types, int64_t file_time_s, int64_t now);
/* Tell w what its ord gained since the last IPC_GRANT (nothing: no message). */
void pool_grant(struct pool *p, struct pool_worker *w);

/* Messages from worker `slot` (its socket polled readable). */
void pool_on_readable(struct pool *p, int slot);
/* SIGCHLD: reap every dead worker. */
void pool_reap(struct pool *p, int64_t now);
/* Kill workers with no progress for stall_timeout. */
void pool_check_stalls(struct pool *p, int64_t now);

/* Reload: every worker finishes its file with the old config, then quits;
 * new ones start as slots free up (idle workers quit at once, a loading
 * one holds its slot until its file is done). */
void pool_retire_all(struct pool *p, int64_t now);
/* Shutdown: loading workers stop at a batch boundary (SIGTERM), idle ones
 * quit (the one-shot end: nobody is loading then). */
void pool_stop(struct pool *p);
void pool_kill_all(struct pool *p);

#endif

/*
 * metrics.h — counters for Prometheus, through node-exporter's textfile
 * collector.
 *
 * The master keeps the counters (so they survive `systemctl reload`) and
 * rewrites metrics_file atomically — a temporary file in the same
 * directory, then rename() — every 5 s and soon after each file result,
 * so the collector never reads half a file.  The file lives as long as the
 * daemon: a clean exit removes it (else node-exporter exports the last
 * values, server_up 1 included, forever); after a crash it stays and its
 * mtime goes stale, which is what the staleness alert watches.  A one-shot
 * run writes only a metrics file chosen for it, once, at exit, with the
 * run's end time.  Names follow Prometheus conventions: memc_load_ prefix,
 * _total counters, base units (bytes, seconds), # HELP and # TYPE for
 * each.  A missing directory is one warning, not an error: the collector
 * may simply not be installed.
 */
#ifndef MEMC_METRICS_H
#define MEMC_METRICS_H

#include <stdint.h>

#include "config.h"
#include "result.h"
#include "retain.h"

struct spool;
struct pool;
struct health;
struct rewarm;
struct memc_map;

/* A file's final result: each file is counted once, under one of these. */
enum metrics_result {
    METRICS_LOADED,
    METRICS_FAILED,     /* error rate at or above the threshold */
    METRICS_CORRUPT,    /* set aside as .NAME.failed (gzip) */
    METRICS_UNREADABLE, /* set aside: cannot be read */
    METRICS_CRASHED,    /* set aside: workers died on it */
    METRICS_LEFT,       /* one-shot: not finished when the run ended, keeps its name */
    METRICS_NRESULTS
};

#define METRICS_NBUCKETS 10 /* load duration buckets, 1 s .. 1 h (then +Inf) */

struct metrics {
    char path[CFG_PATH_LEN]; /* "" = off */
    int oneshot;             /* written once, by metrics_exit() */
    int warned;
    int dirty;
    int64_t written_ms;
    uint64_t files[METRICS_NRESULTS];
    uint64_t retries;                       /* incomplete loads, to be loaded again */
    struct pipe_stats total;                /* every load's counters added up (result.h) */
    uint64_t load_in[METRICS_NBUCKETS + 1]; /* loads per bucket, not cumulative; last: +Inf */
    uint64_t loads;                         /* loads timed */
    int64_t load_ms;                        /* their total duration */
    int64_t last_success_s;                 /* wall clock of the last "loaded" */
    int64_t last_run_s;                     /* one-shot: when the run ended */
    /* spool retention: what the last sweep kept, what sweeps removed */
    uint64_t retained_files[RETAIN_NKINDS], retained_bytes[RETAIN_NKINDS];
    uint64_t removed_files[RETAIN_NKINDS];
};

/* The daemon writes c->metrics_file.  A one-shot run writes only a file
 * named for it, one that is not the built-in default (the service's file,
 * which a run by hand must not overwrite). */
void metrics_init(struct metrics *m, const struct cfg *c);
/* Reload: another path, same counters; the old path's file is removed
 * (nothing would rewrite it).  A one-shot run keeps its path. */
void metrics_set_path(struct metrics *m, const char *path);
/* Every result of a load (also incomplete or thrown away): its counts.
 * load_ms: how long a worker had the spool file (-1: a re-warm), timed
 * in the duration histogram unless the load was stopped. */
void metrics_add(struct metrics *m, const struct pipe_stats *st, int64_t load_ms);
/* A file's final result. */
void metrics_file(struct metrics *m, enum metrics_result r, int64_t wall_s);
/* A load ended incomplete and the file is loaded again later (daemon):
 * not a result, its final result comes then. */
void metrics_retry(struct metrics *m);

/* A retention sweep ran (retain.h): its retained files and bytes, and the
 * files it removed, by kind. */
void metrics_retained(struct metrics *m, const struct retain_sum *sum);

/* Rewrite the file if it is due: 5 s passed, or a result came and 200 ms
 * passed since the last write (bursts of results make one write).  The
 * daemon only. */
void metrics_tick(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t now);
/* The master is done (its loop ended, workers gone).  Daemon: remove the
 * file.  One-shot: the files not finished count as left, and the file is
 * written once, with memc_load_last_run_timestamp_seconds = wall_s. */
void metrics_exit(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t wall_s);

#endif

/*
 * metrics.h — counters for Prometheus, through node-exporter's textfile
 * collector.
 *
 * The master keeps the counters (so they survive `systemctl reload`) and
 * rewrites metrics_file atomically — a temporary file in the same
 * directory, then rename() — every 5 s and soon after each file result,
 * so the collector never reads half a file.  Names follow Prometheus
 * conventions: memc_load_ prefix, _total counters, base units (bytes,
 * seconds), # HELP and # TYPE for each.  A missing directory is one
 * warning, not an error: the collector may simply not be installed.
 */
#ifndef MEMC_METRICS_H
#define MEMC_METRICS_H

#include <stdint.h>

#include "config.h"
#include "result.h"

struct spool;
struct pool;
struct health;
struct rewarm;
struct memc_map;

enum metrics_result {
    METRICS_LOADED,
    METRICS_FAILED,     /* error rate at or above the threshold */
    METRICS_CORRUPT,    /* set aside as .NAME.failed (gzip) */
    METRICS_UNREADABLE, /* set aside: cannot be read */
    METRICS_CRASHED,    /* set aside: workers died on it */
    METRICS_LEFT,       /* incomplete: loaded again later */
    METRICS_NRESULTS
};

struct metrics {
    char path[CFG_PATH_LEN]; /* "" = off */
    int warned;
    int dirty;
    int64_t written_ms;
    uint64_t files[METRICS_NRESULTS];
    uint64_t stored[CFG_MAX_TYPES], errors[CFG_MAX_TYPES + 1], dirty_apps[CFG_MAX_TYPES];
    uint64_t bytes_read, evictions, verify_sampled, verify_missing, verify_different;
    int64_t last_success_s; /* wall clock of the last "loaded" */
};

void metrics_init(struct metrics *m, const char *path);
/* Reload: another path, same counters. */
void metrics_set_path(struct metrics *m, const char *path);
/* Every result of a load (also incomplete or thrown away): its counts. */
void metrics_add(struct metrics *m, const struct pipe_stats *st);
/* A file's final result. */
void metrics_file(struct metrics *m, enum metrics_result r, int64_t wall_s);

/* Rewrite the file if it is due: 5 s passed, or a result came and 200 ms
 * passed since the last write (bursts of results make one write). */
void metrics_tick(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t now);

#endif

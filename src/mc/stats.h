/*
 * stats.h — what memcached's `stats` says about each server: evictions
 * around a load (the worker's warning), memory and items (--check-config).
 */
#ifndef MEMC_STATS_H
#define MEMC_STATS_H

#include <stdint.h>

#include "route.h"

/* What `stats` says about a server. */
struct mc_stats {
    int ok;
    uint64_t evictions, limit_maxbytes, curr_items;
    long long pid, time, uptime; /* its identity: mc_same_instance() */
    char why[128];
};

/* `stats` from the servers in mask (global index bits), all at once;
 * out has map->nservers entries.  0 or -ENOMEM. */
int mc_stats_fetch(const struct memc_map *map, uint32_t mask, int timeout_ms, struct mc_stats *out);

#endif

/*
 * route.h — memcached servers and routing: which server stores a key.
 *
 * Routing uses libmemcached's ketama consistent hashing, as the
 * `distribution` setting says: MEMCACHED_BEHAVIOR_KETAMA (ketama) or
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (ketama_weighted, the libketama
 * continuum), so a client configured the same way with the same server list
 * finds our keys.  The master (health probes, re-warm masks, messages), the
 * workers (the writer) and the commands (verify, check) share this map.
 */
#ifndef MEMC_ROUTE_H
#define MEMC_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct memcached_st;

struct memc_server {
    char host[256];
    char port[8];
    char name[300]; /* "host:port" for messages */
    int type;       /* device type index */
};

/* Device types -> servers.  Built once from the config; routing only reads
 * it, but libmemcached objects are not documented as thread-safe, so each
 * packer thread routes through its own clone (memc_map_clone). */
struct memc_map {
    int nservers;
    struct memc_server servers[CFG_MAX_SERVERS];
    int first[CFG_MAX_TYPES];                   /* first global server index of the type */
    int count[CFG_MAX_TYPES];                   /* 0: type not configured */
    struct memcached_st *ketama[CFG_MAX_TYPES]; /* only for count > 1 */
    int distribution;                           /* enum cfg_distribution */
};

int memc_map_init(struct memc_map *m, const struct cfg *c, char *err, size_t errlen);
int memc_map_clone(struct memc_map *dst, const struct memc_map *src);
void memc_map_free(struct memc_map *m);

/* Global server index for a key of a configured type. */
int memc_map_route(const struct memc_map *m, int type, const char *key, size_t len);

#endif

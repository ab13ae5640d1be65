/*
 * route.h — memcached servers and routing: which server stores a key.
 *
 * A device type's keys are spread over its servers the way the readers'
 * client places them, as the `distribution` setting says (route.c has the
 * details): libmemcached's ketama (ketama), the libketama continuum
 * (ketama_weighted), libmemcached's modula with the `hash` setting
 * (modula), python-memcache's crc modula (python_memcache) or pymemcache's
 * rendezvous hashing (rendezvous).  A client configured the same way with
 * the same server list finds our keys.  The master (health probes, re-warm
 * masks, messages), the workers (the writer) and the commands (verify,
 * get, check) share this map, so they all route alike.
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
    char name[300];  /* "host:port" for messages */
    char node[300];  /* "host:port", numeric port, no [] (rendezvous hashes it) */
    int type;        /* device type index */
    int unix_socket; /* host is a UNIX socket path (port "") */
    int protocol;    /* enum cfg_protocol of its type: CFG_PROTO_META or _CLASSIC */
};

/* Device types -> servers.  Built once from the config; routing only reads
 * it, but libmemcached objects are not documented as thread-safe, so each
 * packer thread routes through its own clone (memc_map_clone). */
struct memc_map {
    int nservers;
    struct memc_server servers[CFG_MAX_SERVERS];
    int first[CFG_MAX_TYPES];               /* first global server index of the type */
    int count[CFG_MAX_TYPES];               /* 0: type not configured */
    struct memcached_st *mc[CFG_MAX_TYPES]; /* libmemcached's routing, count > 1 only */
    int distribution;                       /* enum cfg_distribution */
    int hash;                               /* enum cfg_hash (modula) */
};

int memc_map_init(struct memc_map *m, const struct cfg *c, char *err, size_t errlen);
int memc_map_clone(struct memc_map *dst, const struct memc_map *src);
void memc_map_free(struct memc_map *m);

/* Do a and b place type's keys alike: the same distribution, hash and
 * server list (in order: modula depends on it)?  1 or 0. */
int memc_map_same_ring(const struct memc_map *a, const struct memc_map *b, int type);
/* Global index in m of the server of type named name, or -1. */
int memc_map_find(const struct memc_map *m, int type, const char *name);
/* A mask of servers of from (global index) in to's numbering: a server
 * still there keeps its bit; one gone stands for every server of its type
 * in to (its keys route to them now). */
uint32_t memc_map_carry(const struct memc_map *from, const struct memc_map *to, uint32_t mask);

/* A ring re-warm's test: does key (routed to cur's server g) belong to a
 * server of another name under prev?  1 or 0. */
int memc_map_moved(const struct memc_map *prev, const struct memc_map *cur, int type,
                   const char *key, size_t len, int g);

/* The servers (a mask of global indexes) that are memcached for certain,
 * the ones `stats` is asked of (identity, re-warm, evictions): those of
 * meta-protocol types.  A classic type's may be proxies. */
uint32_t memc_map_stats_mask(const struct memc_map *m);

/* Global server index for a key of a configured type. */
int memc_map_route(const struct memc_map *m, int type, const char *key, size_t len);

/* MurmurHash3 x86_32 with seed 0 (pymemcache's murmur3_32; rendezvous). */
uint32_t memc_murmur3_32(const void *data, size_t len);

#endif

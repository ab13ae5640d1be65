/*
 * verify.h — reading back what was loaded.
 *
 * `memc-load verify [--sample N] [--seed S] [--json] [config options] FILE...`
 * reads the files with the loader's own pipeline (dry: the same line
 * contract, packer and routing), keeps a bounded random sample of their
 * keys with each key's latest value (sample.h: several files in name order,
 * later line wins), reads the sample back from memcached with pipelined
 * meta gets (`mg <key> v`, all servers at once) and compares the bytes.
 * The daemon does the same read-back on verify_sample records of every
 * file it loads (worker.c), and reads each server's `stats` around a load
 * for the eviction warning; --check-config prints the same stats.
 */
#ifndef MEMC_VERIFY_H
#define MEMC_VERIFY_H

#include <stdint.h>

#include "config.h"
#include "memc.h"
#include "parse.h"
#include "sample.h"

#define VFY_EXAMPLES 3

/* One server's share of a read-back. */
struct vfy_server {
    uint32_t sampled, equal, missing, different;
    int unreachable; /* why says why; its records are not counted as anything */
    char why[128];
    int nex;
    struct {
        char key[PARSE_MAX_KEY + 1];
        int missing; /* 1 missing, 0 different */
    } ex[VFY_EXAMPLES];
};

struct vfy_result {
    int nservers;
    struct vfy_server srv[CFG_MAX_SERVERS];
    uint32_t sampled, equal, missing, different; /* over the reachable servers */
    int unreachable;                             /* servers */
};

/* Read every record of the sample back from the server it routes to and
 * compare.  0 (servers that fail are marked unreachable in r), or -ENOMEM. */
int vfy_readback(const struct smp *s, const struct memc_map *map, int timeout_ms,
                 struct vfy_result *r);

/* What `stats` says about a server. */
struct vfy_stats {
    int ok;
    uint64_t evictions, limit_maxbytes, curr_items;
    char why[128];
};

/* `stats` from the servers in mask (global index bits), all at once;
 * out has map->nservers entries.  0 or -ENOMEM. */
int vfy_stats(const struct memc_map *map, uint32_t mask, int timeout_ms, struct vfy_stats *out);

/* The 95 % Wilson score interval of x successes in n trials. */
void vfy_wilson(uint32_t x, uint32_t n, double *lo, double *hi);

/* `memc-load verify ...` (argv[1] is "verify"); returns the exit status:
 * 0 every sampled record equal, 1 some missing or different, 75 a server
 * unreachable, 66 a file that cannot be read, 64 usage, 78 config. */
int verify_main(int argc, char **argv);

#endif

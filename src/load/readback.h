/*
 * readback.h — reading back what was loaded.
 *
 * A bounded random sample of a load's keys with each key's latest value
 * (sample.h) is read back from memcached with pipelined meta gets
 * (`mg <key> v`, all servers at once) and the bytes compared.  The worker
 * does it for verify_sample records of every file; `memc-load verify`
 * (cli/verify.c) for the files it is given.
 */
#ifndef MEMC_READBACK_H
#define MEMC_READBACK_H

#include <stdint.h>

#include "config.h"
#include "result.h"
#include "route.h"
#include "sample.h"

#define VFY_EXAMPLES 3

/* One server's share of a read-back. */
struct vfy_server {
    uint32_t sampled, equal, missing, different;
    uint32_t expired; /* absent, and their life is over (expiry.h): expected so */
    int unreachable;  /* why says why; its records are not counted as anything */
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
    uint32_t sampled, equal, missing, different, expired; /* over the reachable servers */
    int unreachable;                                      /* servers */
};

/* Read every record of the sample back from the server it routes to and
 * compare; one absent whose life is over (or ends within EXP_SLACK_S) is
 * expired, not missing.  0 (servers that fail are marked unreachable in r), or -ENOMEM. */
int vfy_readback(const struct smp *s, const struct memc_map *map, int timeout_ms,
                 struct vfy_result *r);

/* The 95 % Wilson score interval of x successes in n trials. */
void vfy_wilson(uint32_t x, uint32_t n, double *lo, double *hi);

#endif

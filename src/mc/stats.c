/*
 * stats.c — `stats` from several servers at once (stats.h).
 */
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "xchg.h"

static long stats_parse(void *ctx, int g, const char *buf, size_t len, int *done, char *why,
                        size_t whylen)
{
    struct mc_stats *st = &((struct mc_stats *)ctx)[g];
    size_t off = 0;
    long n;
    while ((n = mc_line(buf + off, len - off)) >= 0) {
        const char *l = buf + off;
        off += (size_t)(memchr(l, '\n', len - off) - (const void *)l) + 1;
        if (mc_line_is(l, n, "END")) {
            st->ok = 1;
            *done = 1;
            break;
        }
        if (!mc_line_is(l, n, "STAT")) {
            snprintf(why, whylen, "unexpected answer '%.*s'", (int)(n > 40 ? 40 : n), l);
            return -EPROTO;
        }
        static const char *const names[] = {"STAT evictions ", "STAT limit_maxbytes ",
                                            "STAT curr_items "};
        static const char *const ids[] = {"STAT pid ", "STAT time ", "STAT uptime "};
        uint64_t *dst[] = {&st->evictions, &st->limit_maxbytes, &st->curr_items};
        long long *id[] = {&st->pid, &st->time, &st->uptime};
        for (int i = 0; i < 3; i++) {
            if ((size_t)n > strlen(names[i]) && memcmp(l, names[i], strlen(names[i])) == 0)
                *dst[i] = strtoull(l + strlen(names[i]), NULL, 10);
            if ((size_t)n > strlen(ids[i]) && memcmp(l, ids[i], strlen(ids[i])) == 0)
                *id[i] = strtoll(l + strlen(ids[i]), NULL, 10);
        }
    }
    return (long)off;
}

int mc_stats_fetch(const struct memc_map *map, uint32_t mask, int timeout_ms, struct mc_stats *out)
{
    struct mc_xchg ios[CFG_MAX_SERVERS];
    mc_xchg_init(ios, map);
    memset(out, 0, sizeof(*out) * (size_t)map->nservers);
    int e = 0;
    for (int g = 0; g < map->nservers && !e; g++) {
        if (!(mask & (1u << g)))
            continue;
        ios[g].out = strdup("stats\r\n");
        if (!ios[g].out)
            e = -ENOMEM;
        ios[g].olen = 7;
        ios[g].state = MC_XCHG_RUN;
    }
    if (!e)
        mc_xchg_run(ios, map->nservers, timeout_ms, stats_parse, out);
    for (int g = 0; g < map->nservers; g++)
        if (ios[g].state == MC_XCHG_FAILED) {
            out[g].ok = 0;
            snprintf(out[g].why, sizeof(out[g].why), "%s", ios[g].why);
        }
    mc_xchg_free(ios, map->nservers);
    return e;
}

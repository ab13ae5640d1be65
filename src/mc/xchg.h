/*
 * xchg.h — one exchange (a whole request, its whole answer) with each of
 * several servers at once, over short-lived connections of its own: the
 * read-back, `stats` for the eviction check, verify and --check-config.
 * These never disturb the writer's persistent connections.  Each is set up
 * as every connection is (TLS, authentication: conn.h), inside the same
 * poll loop.
 */
#ifndef MEMC_XCHG_H
#define MEMC_XCHG_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "route.h"

enum { MC_XCHG_OFF, MC_XCHG_RUN, MC_XCHG_DONE, MC_XCHG_FAILED };

struct mc_xchg {
    const struct memc_server *srv;
    int state;
    struct mc_link link; /* connect, TLS, auth as the server's type says (conn.h) */
    int fd;              /* link.fd, -1 when closed */
    char *out;           /* the whole request */
    size_t olen, ooff;
    char *in;
    size_t ilen, icap;
    int answered; /* a byte of answer came */
    int64_t last_ms;
    char why[256];
};

/* Consume complete answers from buf; returns the bytes consumed (0: wait
 * for more), sets *done at the end of the exchange, or -EPROTO with why. */
typedef long (*mc_xchg_parse_fn)(void *ctx, int i, const char *buf, size_t len, int *done,
                                 char *why, size_t whylen);

/* ios[g] for every server of map, off, no request. */
void mc_xchg_init(struct mc_xchg *ios, const struct memc_map *map);
void mc_xchg_free(struct mc_xchg *ios, int n);
/* Run the exchanges of every io in state MC_XCHG_RUN (out/olen set) until
 * each is done or failed; a server that makes no progress for timeout_ms
 * fails, its why says why. */
void mc_xchg_run(struct mc_xchg *ios, int n, int timeout_ms, mc_xchg_parse_fn parse, void *ctx);

#endif

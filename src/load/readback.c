/*
 * readback.c — reading a sample of a load back from memcached (readback.h):
 * pipelined `mg <key> v` ... `mn` (`get <key>` ... for a classic-protocol
 * type) to every server at once over the exchange loop (xchg.h), each value
 * compared with the expected bytes.
 */
#include "readback.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expiry.h"
#include "io.h"
#include "proto.h"
#include "xchg.h"

struct vfy_rb {
    const struct memc_map *map;
    const struct smp_rec **recs; /* grouped by server */
    uint32_t first[CFG_MAX_SERVERS], count[CFG_MAX_SERVERS], next[CFG_MAX_SERVERS];
    struct vfy_result *r;
};

static void vfy_example(struct vfy_server *s, const struct smp_rec *rec, int missing)
{
    if (s->nex >= VFY_EXAMPLES)
        return;
    snprintf(s->ex[s->nex].key, sizeof(s->ex[0].key), "%s", rec->key);
    s->ex[s->nex++].missing = missing;
}

/* Server g's answer for its i-th sampled record: equal, different,
 * missing, or expired (absent when its life is over). */
struct vfy_rb_at {
    struct vfy_rb *rb;
    int g;
};

static int vfy_rb_got(void *ctx, uint32_t i, const struct mc_mg_answer *a, char *why, size_t whylen)
{
    (void)why, (void)whylen;
    const struct vfy_rb_at *at = ctx;
    const struct smp_rec *rec = at->rb->recs[at->rb->first[at->g] + i];
    struct vfy_server *s = &at->rb->r->srv[at->g];
    if (!a->val && exp_gone(rec->expires, io_wall_us() / 1000000, EXP_SLACK_S)) {
        s->expired++; /* its life is over: expected so */
    } else if (!a->val) {
        s->missing++;
        vfy_example(s, rec, 1);
    } else if (a->size == rec->vlen && memcmp(a->val, rec->val, a->size) == 0) {
        s->equal++;
    } else {
        s->different++;
        vfy_example(s, rec, 0);
    }
    return 0;
}

static long vfy_rb_parse(void *ctx, int g, const char *buf, size_t len, int *done, char *why,
                         size_t whylen)
{
    struct vfy_rb *rb = ctx;
    struct vfy_rb_at at = {rb, g};
    return mc_read_answers(rb->map->servers[g].protocol, buf, len, &rb->next[g], rb->count[g],
                           vfy_rb_got, &at, done, why, whylen);
}

/* Group the sample by server and build each server's request. */
static int vfy_rb_requests(struct vfy_rb *rb, const struct smp *s, struct mc_xchg *ios, int n)
{
    uint32_t at = 0;
    for (int g = 0; g < n; g++) {
        rb->first[g] = at;
        for (int i = 0; i < s->n; i++)
            if (s->by_h[i]->server == g)
                rb->recs[at++] = s->by_h[i];
        rb->count[g] = at - rb->first[g];
        rb->r->srv[g].sampled = rb->count[g];
        if (!rb->count[g])
            continue;
        size_t cap = (size_t)rb->count[g] * (PARSE_MAX_KEY + 8) + 8, len = 0;
        char *out = malloc(cap);
        if (!out)
            return -ENOMEM;
        int proto = rb->map->servers[g].protocol;
        for (uint32_t i = 0; i < rb->count[g]; i++) {
            const struct smp_rec *rec = rb->recs[rb->first[g] + i];
            len += mc_read_request(out + len, cap - len, proto, rec->key, strlen(rec->key), "v");
        }
        const char *end = mc_read_end(proto);
        memcpy(out + len, end, strlen(end));
        ios[g].out = out;
        ios[g].olen = len + strlen(end);
        ios[g].state = MC_XCHG_RUN;
    }
    return 0;
}

static void vfy_sum(struct vfy_result *r)
{
    for (int g = 0; g < r->nservers; g++) {
        struct vfy_server *s = &r->srv[g];
        if (s->unreachable) {
            r->unreachable++;
            continue;
        }
        r->sampled += s->sampled;
        r->equal += s->equal;
        r->missing += s->missing;
        r->different += s->different;
        r->expired += s->expired;
    }
}

int vfy_readback(const struct smp *s, const struct memc_map *map, int timeout_ms,
                 struct vfy_result *r)
{
    struct mc_xchg ios[CFG_MAX_SERVERS];
    struct vfy_rb rb;
    memset(r, 0, sizeof(*r));
    memset(&rb, 0, sizeof(rb));
    r->nservers = map->nservers;
    rb.r = r;
    rb.map = map;
    rb.recs = calloc((size_t)s->n + 1, sizeof(*rb.recs));
    if (!rb.recs)
        return -ENOMEM;
    mc_xchg_init(ios, map);
    int e = vfy_rb_requests(&rb, s, ios, map->nservers);
    if (e == 0)
        mc_xchg_run(ios, map->nservers, timeout_ms, vfy_rb_parse, &rb);
    for (int g = 0; e == 0 && g < map->nservers; g++) {
        if (ios[g].state != MC_XCHG_FAILED)
            continue;
        struct vfy_server *v = &r->srv[g];
        v->unreachable = 1;
        v->equal = v->missing = v->different = v->expired = 0;
        v->nex = 0;
        snprintf(v->why, sizeof(v->why), "%s", ios[g].why);
    }
    mc_xchg_free(ios, map->nservers);
    free(rb.recs);
    if (e == 0)
        vfy_sum(r);
    return e;
}

void vfy_wilson(uint32_t x, uint32_t n, double *lo, double *hi)
{
    if (!n) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)x / n, z2n = z * z / n;
    double mid = (p + z2n / 2) / (1 + z2n);
    double half = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    *lo = mid - half < 0 ? 0 : mid - half;
    *hi = mid + half > 1 ? 1 : mid + half;
    if (x == n)
        *hi = 1; /* exact at the ends (rounding) */
    if (x == 0)
        *lo = 0;
}

/*
 * route.c — the device types' servers and which one stores a key
 * (ketama continuum by libmemcached; see route.h).
 */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

/*
 * The libmemcached object that routes a device type's keys.  Both settings
 * put points for each server on a continuum, hashing "host:port-N" (just
 * "host-N" for port 11211, host as written in the config), and a key goes
 * to the first point at or after its hash.  They differ in the hashes:
 *
 *   ketama           MEMCACHED_BEHAVIOR_KETAMA: 100 points per server, points
 *                    and keys hashed with libmemcached's default hash
 *                    (one-at-a-time, not MD5).  Read by libmemcached clients
 *                    with that behaviour (pylibmc ketama=True).
 *   ketama_weighted  MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (sets the key and
 *                    distribution hashes to MD5): 160 points per server (equal
 *                    weights), 4 from each MD5 digest, keys hashed with MD5:
 *                    libketama's continuum (pylibmc ketama_weighted=True,
 *                    twemproxy distribution ketama with hash md5).
 */
static int memc_map_ketama(struct memc_map *m, int t)
{
    memcached_st *mc = memcached_create(NULL);
    if (!mc)
        return -ENOMEM;
    memcached_behavior_t b = m->distribution == CFG_DIST_KETAMA_WEIGHTED
                                 ? MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
                                 : MEMCACHED_BEHAVIOR_KETAMA;
    if (memcached_behavior_set(mc, b, 1) != MEMCACHED_SUCCESS)
        goto err;
    for (int i = m->first[t]; i < m->first[t] + m->count[t]; i++) {
        const struct memc_server *s = &m->servers[i];
        if (memcached_server_add(mc, s->host, (in_port_t)atoi(s->port)) != MEMCACHED_SUCCESS)
            goto err;
    }
    m->ketama[t] = mc;
    return 0;
err:
    memcached_free(mc);
    return -EINVAL;
}

int memc_map_init(struct memc_map *m, const struct cfg *c, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->distribution = c->distribution;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        m->first[t] = m->nservers;
        const char *p = c->addr[t];
        while (*p) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            const char *colon = memrchr(p, ':', n);
            if (!colon || m->nservers == CFG_MAX_SERVERS) {
                snprintf(err, errlen, "%s: bad address list '%s'", cfg_type_name(t), c->addr[t]);
                goto err;
            }
            struct memc_server *s = &m->servers[m->nservers++];
            const char *h = p;
            size_t hl = (size_t)(colon - p);
            if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') /* [v6]:port */
                h++, hl -= 2;
            snprintf(s->host, sizeof(s->host), "%.*s", (int)hl, h);
            snprintf(s->port, sizeof(s->port), "%.*s", (int)(n - (size_t)(colon + 1 - p)),
                     colon + 1);
            snprintf(s->name, sizeof(s->name), "%.*s", (int)n, p);
            s->type = t;
            m->count[t]++;
            p = end ? end + 1 : p + n;
        }
        if (m->count[t] > 1 && memc_map_ketama(m, t) < 0) {
            snprintf(err, errlen, "%s: libmemcached rejected the server list", cfg_type_name(t));
            goto err;
        }
    }
    return 0;
err:
    memc_map_free(m);
    return -EINVAL;
}

/* Each clone builds its own libmemcached objects from the server list:
 * memcached_clone() does not copy the weighted flag (libmemcached 1.1.4), so
 * a clone of a ketama_weighted map would place about half the keys
 * elsewhere. */
int memc_map_clone(struct memc_map *dst, const struct memc_map *src)
{
    *dst = *src;
    for (int t = 0; t < CFG_MAX_TYPES; t++)
        dst->ketama[t] = NULL;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (src->ketama[t] && memc_map_ketama(dst, t) < 0) {
            memc_map_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

void memc_map_free(struct memc_map *m)
{
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (m->ketama[t])
            memcached_free(m->ketama[t]);
        m->ketama[t] = NULL;
    }
}

int memc_map_route(const struct memc_map *m, int type, const char *key, size_t len)
{
    if (m->count[type] == 1)
        return m->first[type]; /* one server: no hashing needed */
    uint32_t i = memcached_generate_hash(m->ketama[type], key, len);
    return m->first[type] + (int)(i % (uint32_t)m->count[type]);
}

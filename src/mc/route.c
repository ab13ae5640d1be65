/*
 * route.c — the device types' servers and which one stores a key (see
 * route.h): libmemcached's routing for ketama, ketama_weighted and modula,
 * our own for the two placements libmemcached has not (python-memcache's
 * and pymemcache's).
 */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

/*
 * Where each distribution puts a key of a type with n servers, and what
 * of the server list counts (so readers must write it the same way):
 *
 *   ketama           MEMCACHED_BEHAVIOR_KETAMA: 100 points per server on a
 *                    continuum, hashing "host:port-N" ("host-N" for port
 *                    11211, host as written in the config) with
 *                    libmemcached's default hash (one-at-a-time, not MD5);
 *                    the key, hashed alike, goes to the first point at or
 *                    after its hash.  pylibmc ketama=True.
 *   ketama_weighted  MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (sets the key and
 *                    distribution hashes to MD5): the same names, 160 points
 *                    per server (equal weights), 4 from each MD5 digest, keys
 *                    hashed with MD5: libketama's continuum (pylibmc
 *                    ketama_weighted=True, twemproxy ketama + md5).
 *   modula           MEMCACHED_BEHAVIOR_DISTRIBUTION = MODULA and
 *                    MEMCACHED_BEHAVIOR_HASH = `hash`: server hash(key) % n,
 *                    in list order.  Names do not count, the order does.
 *                    hash crc is (crc32(key) >> 16) & 0x7fff: Perl's
 *                    Cache::Memcached and Cache::Memcached::Fast (without
 *                    ketama_points); memccat --hash NAME; twemproxy modula.
 *   python_memcache  python-memcache's Client: the same crc hash, but a hash
 *                    of 0 counts as 1 (cmemcache_hash), then % n in list
 *                    order.  One key in 32768 lands elsewhere than modula +
 *                    crc puts it.
 *   rendezvous       pymemcache's HashClient (RendezvousHash): each server
 *                    scores murmur3_32("host:port-key", seed 0), the port
 *                    always written (11211 too), an IPv6 host without its
 *                    brackets; the highest score wins, a tie goes to the
 *                    greater name.  The order does not count.
 */

static int memc_dist_uses_lib(int distribution)
{
    return distribution == CFG_DIST_KETAMA || distribution == CFG_DIST_KETAMA_WEIGHTED ||
           distribution == CFG_DIST_MODULA;
}

static memcached_hash_t memc_hash_of(int hash)
{
    static const memcached_hash_t h[] = {
        [CFG_HASH_DEFAULT] = MEMCACHED_HASH_DEFAULT,   [CFG_HASH_MD5] = MEMCACHED_HASH_MD5,
        [CFG_HASH_CRC] = MEMCACHED_HASH_CRC,           [CFG_HASH_FNV1_64] = MEMCACHED_HASH_FNV1_64,
        [CFG_HASH_FNV1A_64] = MEMCACHED_HASH_FNV1A_64, [CFG_HASH_FNV1_32] = MEMCACHED_HASH_FNV1_32,
        [CFG_HASH_FNV1A_32] = MEMCACHED_HASH_FNV1A_32, [CFG_HASH_MURMUR] = MEMCACHED_HASH_MURMUR,
        [CFG_HASH_JENKINS] = MEMCACHED_HASH_JENKINS,   [CFG_HASH_MURMUR3] = MEMCACHED_HASH_MURMUR3,
    };
    return hash >= 0 && hash < (int)(sizeof(h) / sizeof(h[0])) ? h[hash] : MEMCACHED_HASH_DEFAULT;
}

/* The distribution's behaviours: 0, or -ENOTSUP (this libmemcached lacks
 * the hash). */
static int memc_lib_behaviours(memcached_st *mc, int distribution, int hash)
{
    memcached_return_t r;
    if (distribution == CFG_DIST_KETAMA_WEIGHTED) {
        r = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    } else if (distribution == CFG_DIST_MODULA) {
        r = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
                                   MEMCACHED_DISTRIBUTION_MODULA);
        if (r == MEMCACHED_SUCCESS)
            r = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_HASH, memc_hash_of(hash));
    } else {
        r = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA, 1);
    }
    return r == MEMCACHED_SUCCESS ? 0 : -ENOTSUP;
}

/* The libmemcached object that routes type t's keys: 0, -ENOMEM, -ENOTSUP
 * (behaviour refused) or -EINVAL (a server refused). */
static int memc_map_lib(struct memc_map *m, int t)
{
    memcached_st *mc = memcached_create(NULL);
    if (!mc)
        return -ENOMEM;
    int e = memc_lib_behaviours(mc, m->distribution, m->hash);
    for (int i = m->first[t]; !e && i < m->first[t] + m->count[t]; i++) {
        const struct memc_server *s = &m->servers[i];
        memcached_return_t r = s->unix_socket
                                   ? memcached_server_add_unix_socket(mc, s->host)
                                   : memcached_server_add(mc, s->host, (in_port_t)atoi(s->port));
        if (r != MEMCACHED_SUCCESS)
            e = -EINVAL;
    }
    if (e) {
        memcached_free(mc);
        return e;
    }
    m->mc[t] = mc;
    return 0;
}

/* One server of "host:port[,...]": s[0..n) into *srv; -EINVAL if it has no
 * port. */
static int memc_server_parse(struct memc_server *srv, const char *p, size_t n, int t)
{
    memset(srv, 0, sizeof(*srv));
    srv->type = t;
    snprintf(srv->name, sizeof(srv->name), "%.*s", (int)n, p);
    if (n && (p[0] == '/' || (n > 5 && memcmp(p, "unix:", 5) == 0))) {
        size_t skip = p[0] == '/' ? 0 : 5; /* "unix:/path": python-memcache's spelling */
        snprintf(srv->host, sizeof(srv->host), "%.*s", (int)(n - skip), p + skip);
        snprintf(srv->node, sizeof(srv->node), "%.*s", (int)(n - skip), p + skip);
        srv->unix_socket = 1;
        return 0;
    }
    const char *colon = memrchr(p, ':', n);
    if (!colon)
        return -EINVAL;
    const char *h = p;
    size_t hl = (size_t)(colon - p);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') /* [v6]:port */
        h++, hl -= 2;
    snprintf(srv->host, sizeof(srv->host), "%.*s", (int)hl, h);
    snprintf(srv->port, sizeof(srv->port), "%.*s", (int)(n - (size_t)(colon + 1 - p)), colon + 1);
    snprintf(srv->name, sizeof(srv->name), "%.*s", (int)n, p);
    snprintf(srv->node, sizeof(srv->node), "%.*s:%d", (int)hl, h, atoi(srv->port));
    srv->type = t;
    return 0;
}

static int memc_map_type(struct memc_map *m, const struct cfg *c, int t, char *err, size_t errlen)
{
    m->first[t] = m->nservers;
    for (const char *p = c->addr[t]; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (m->nservers == CFG_MAX_SERVERS ||
            memc_server_parse(&m->servers[m->nservers], p, n, t) < 0) {
            snprintf(err, errlen, "%s: bad address list '%s'", cfg_type_name(t), c->addr[t]);
            return -EINVAL;
        }
        m->servers[m->nservers].protocol = cfg_protocol(c, t);
        m->nservers++;
        m->count[t]++;
        p = end ? end + 1 : p + n;
    }
    int e = m->count[t] > 1 && memc_dist_uses_lib(m->distribution) ? memc_map_lib(m, t) : 0;
    if (e == -ENOTSUP)
        snprintf(err, errlen, "libmemcached refused distribution = %s, hash = %s",
                 cfg_distribution_name(m->distribution), cfg_distribution_hash_name(m->hash));
    else if (e)
        snprintf(err, errlen, "%s: libmemcached rejected the server list", cfg_type_name(t));
    return e;
}

int memc_map_init(struct memc_map *m, const struct cfg *c, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->distribution = c->distribution;
    m->hash = c->hash;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (memc_map_type(m, c, t, err, errlen) < 0) {
            memc_map_free(m);
            return -EINVAL;
        }
    }
    return 0;
}

uint32_t memc_map_stats_mask(const struct memc_map *m)
{
    uint32_t mask = 0;
    for (int g = 0; g < m->nservers; g++)
        if (m->servers[g].protocol != CFG_PROTO_CLASSIC)
            mask |= 1u << g;
    return mask;
}

int memc_map_same_ring(const struct memc_map *a, const struct memc_map *b, int type)
{
    if (a->distribution != b->distribution || a->count[type] != b->count[type] ||
        (a->distribution == CFG_DIST_MODULA && a->hash != b->hash))
        return 0;
    for (int i = 0; i < a->count[type]; i++)
        if (strcmp(a->servers[a->first[type] + i].node, b->servers[b->first[type] + i].node))
            return 0;
    return 1;
}

int memc_map_find(const struct memc_map *m, int type, const char *name)
{
    for (int i = 0; i < m->count[type]; i++)
        if (strcmp(m->servers[m->first[type] + i].name, name) == 0)
            return m->first[type] + i;
    return -1;
}

uint32_t memc_map_carry(const struct memc_map *from, const struct memc_map *to, uint32_t mask)
{
    uint32_t out = 0;
    for (int g = 0; g < from->nservers; g++) {
        if (!((mask >> g) & 1))
            continue;
        int t = from->servers[g].type, n = memc_map_find(to, t, from->servers[g].name);
        if (n >= 0)
            out |= 1u << n;
        else
            for (int i = 0; i < to->count[t]; i++)
                out |= 1u << (to->first[t] + i);
    }
    return out;
}

int memc_map_moved(const struct memc_map *prev, const struct memc_map *cur, int type,
                   const char *key, size_t len, int g)
{
    if (!prev->count[type])
        return 1; /* the type is new: every record has a new server */
    int og = memc_map_route(prev, type, key, len);
    return strcmp(prev->servers[og].name, cur->servers[g].name) != 0;
}

/* Each clone builds its own libmemcached objects from the server list:
 * memcached_clone() does not copy the weighted flag (libmemcached 1.1.4), so
 * a clone of a ketama_weighted map would place about half the keys
 * elsewhere. */
int memc_map_clone(struct memc_map *dst, const struct memc_map *src)
{
    *dst = *src;
    for (int t = 0; t < CFG_MAX_TYPES; t++)
        dst->mc[t] = NULL;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (src->mc[t] && memc_map_lib(dst, t) < 0) {
            memc_map_free(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

void memc_map_free(struct memc_map *m)
{
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (m->mc[t])
            memcached_free(m->mc[t]);
        m->mc[t] = NULL;
    }
}

static uint32_t memc_rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t memc_murmur3_k(uint32_t k)
{
    return memc_rotl32(k * 0xcc9e2d51u, 15) * 0x1b873593u;
}

uint32_t memc_murmur3_32(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t h = 0, k = 0;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
            (uint32_t)p[i + 3] << 24;
        h = memc_rotl32(h ^ memc_murmur3_k(k), 13) * 5 + 0xe6546b64u;
    }
    k = 0;
    for (size_t j = len & 3; j > 0; j--)
        k = k << 8 | p[i + j - 1];
    if (len & 3)
        h ^= memc_murmur3_k(k);
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

/* pymemcache's RendezvousHash.get_node: the server of the highest
 * murmur3_32("node-key"); among equal scores the greatest node name. */
static int memc_route_rendezvous(const struct memc_map *m, int t, const char *key, size_t len)
{
    char buf[sizeof(m->servers[0].node) + 1 + 1024];
    if (len > 1024)
        len = 1024; /* never: memcached keys are at most 250 bytes */
    int win = 0;
    uint32_t best = 0;
    for (int i = 0; i < m->count[t]; i++) {
        const struct memc_server *s = &m->servers[m->first[t] + i];
        size_t nl = strlen(s->node);
        memcpy(buf, s->node, nl);
        buf[nl] = '-';
        memcpy(buf + nl + 1, key, len);
        uint32_t score = memc_murmur3_32(buf, nl + 1 + len);
        if (i == 0 || score > best)
            best = score, win = i;
        else if (score == best && strcmp(s->node, m->servers[m->first[t] + win].node) > 0)
            win = i;
    }
    return win;
}

int memc_map_route(const struct memc_map *m, int type, const char *key, size_t len)
{
    uint32_t n = (uint32_t)m->count[type], i;
    if (n == 1)
        return m->first[type]; /* one server: no hashing needed */
    if (m->distribution == CFG_DIST_RENDEZVOUS) {
        i = (uint32_t)memc_route_rendezvous(m, type, key, len);
    } else if (m->distribution == CFG_DIST_PYTHON_MEMCACHE) {
        uint32_t h = memcached_generate_hash_value(key, len, MEMCACHED_HASH_CRC);
        i = (h ? h : 1) % n; /* cmemcache_hash: "or 1" */
    } else {
        i = memcached_generate_hash(m->mc[type], key, len) % n; /* already an index */
    }
    return m->first[type] + (int)i;
}

/*
 * sample.c — bottom-k sample of keys with their latest values (see
 * sample.h).  The held records are kept sorted by priority in by_h, so the
 * bar is the last one's priority, a key is found by binary search on its
 * priority, and a new one is a memmove of at most k pointers: k is small
 * (hundreds to a few thousand) and after the first k keys of a load only
 * about k*ln(records/k) candidates come at all.
 */
#include "sample.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int smp_init(struct smp *s, int k, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    if (k <= 0)
        return -EINVAL;
    s->recs = calloc((size_t)k, sizeof(*s->recs));
    s->by_h = calloc((size_t)k, sizeof(*s->by_h));
    if (!s->recs || !s->by_h) {
        smp_free(s);
        return -ENOMEM;
    }
    for (int i = 0; i < k; i++)
        s->by_h[i] = &s->recs[i];
    s->cap = k;
    s->seed = seed;
    s->bar = UINT64_MAX;
    return 0;
}

void smp_free(struct smp *s)
{
    for (int i = 0; s->recs && i < s->cap; i++)
        free(s->recs[i].val);
    free(s->recs);
    free(s->by_h);
    memset(s, 0, sizeof(*s));
}

void smp_reset(struct smp *s)
{
    s->n = 0;
    s->offered = 0;
    __atomic_store_n(&s->bar, UINT64_MAX, __ATOMIC_RELAXED);
}

static uint64_t smp_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 8 bytes at a time, multiply-rotate per word, splitmix64's finalizer at
 * the end: every key bit reaches every priority bit, and a 40-byte key
 * costs a handful of multiplications. */
uint64_t smp_hash(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull), w;
    for (; len >= 8; key += 8, len -= 8) {
        memcpy(&w, key, 8);
        h ^= w * 0x87c37b91114253d5ull;
        h = ((h << 31) | (h >> 33)) * 0x4cf5ad432745937full;
    }
    w = 0;
    memcpy(&w, key, len);
    h ^= w * 0x87c37b91114253d5ull;
    return smp_mix(h);
}

/* The first held record with priority >= h. */
static int smp_lower_bound(const struct smp *s, uint64_t h)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->by_h[mid]->h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int smp_set_value(struct smp_rec *r, const uint8_t *val, size_t vlen)
{
    if (vlen > r->vcap) {
        uint8_t *v = realloc(r->val, vlen);
        if (!v)
            return -ENOMEM;
        r->val = v;
        r->vcap = vlen;
    }
    memcpy(r->val, val, vlen);
    r->vlen = vlen;
    return 0;
}

/* by_h[0..n) are held, by priority; by_h[n..cap) are the free records. */
static void smp_set_bar(struct smp *s)
{
    __atomic_store_n(&s->bar, s->n == s->cap ? s->by_h[s->n - 1]->h : UINT64_MAX, __ATOMIC_RELAXED);
}

/* Drop the held record at pos (out of memory for its value). */
static void smp_remove(struct smp *s, int pos)
{
    struct smp_rec *r = s->by_h[pos];
    memmove(&s->by_h[pos], &s->by_h[pos + 1], (size_t)(s->n - 1 - pos) * sizeof(*s->by_h));
    s->by_h[--s->n] = r;
    smp_set_bar(s);
}

/* Take a record into the sample at position pos (by priority); when full,
 * the highest priority leaves. */
static int smp_insert(struct smp *s, int pos, uint64_t h, const char *key, size_t klen, int server,
                      const uint8_t *val, size_t vlen)
{
    if (s->n == s->cap)
        s->n--; /* by_h[cap - 1] becomes the free record we take */
    struct smp_rec *r = s->by_h[s->n];
    memmove(&s->by_h[pos + 1], &s->by_h[pos], (size_t)(s->n - pos) * sizeof(*s->by_h));
    s->by_h[pos] = r;
    s->n++;
    r->h = h;
    r->server = server;
    r->klen = klen;
    memcpy(r->key, key, klen);
    r->key[klen] = 0;
    int e = smp_set_value(r, val, vlen);
    if (e < 0)
        smp_remove(s, pos);
    else
        smp_set_bar(s);
    return e;
}

int smp_offer(struct smp *s, uint64_t h, const char *key, size_t klen, int server,
              const uint8_t *val, size_t vlen, int64_t expires)
{
    if (klen > PARSE_MAX_KEY)
        return -EINVAL;
    s->offered++;
    if (h > s->bar)
        return 0;
    int pos = smp_lower_bound(s, h);
    for (int i = pos; i < s->n && s->by_h[i]->h == h; i++) {
        struct smp_rec *r = s->by_h[i];
        if (r->klen == klen && memcmp(r->key, key, klen) == 0) {
            r->server = server;
            r->expires = expires;
            int e = smp_set_value(r, val, vlen); /* a later line of a held key */
            if (e < 0)
                smp_remove(s, i); /* its old value is no longer the one to expect */
            return e;
        }
    }
    if (s->n == s->cap && h >= s->bar)
        return 0;
    int e = smp_insert(s, pos, h, key, klen, server, val, vlen);
    if (e == 0)
        s->by_h[pos]->expires = expires;
    return e;
}

/*
 * sample.h — a bounded random sample of the keys of one load (or of several
 * files read in name order), each with its latest value: what memcached
 * should hold for it afterwards.  Used by the daemon's per-file read-back
 * (verify_sample) and by `memc-load verify`.
 *
 * Bottom-k sampling, a reservoir over distinct keys: every key gets a
 * priority, a 64-bit hash of the key keyed with a seed, and the sample is
 * the k keys with the smallest priorities seen so far.  That is a uniform
 * random sample of the distinct keys (for a random seed), memory is k
 * records whatever the input, and "later line wins" comes for free: a key
 * has the same priority on every line, so once in the sample every later
 * line of it reaches the sample too (records are offered in file order) and
 * replaces the value; a key that is not in the sample never enters later,
 * since the bar only falls.
 *
 * The packers only hash the key and compare it with the bar
 * (smp_candidate), which is cheap; the few candidates are offered in file
 * order by the pipeline's writer (smp_offer), the only thread that changes
 * the sample during a load.
 */
#ifndef MEMC_SAMPLE_H
#define MEMC_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

struct smp_rec {
    uint64_t h;  /* priority */
    int server;  /* global server index the key routes to */
    size_t klen; /* "type:id" */
    char key[PARSE_MAX_KEY + 1];
    uint8_t *val; /* the packed UserApps value, as memc-load writes it */
    size_t vlen, vcap;
    int64_t expires; /* when memcached lets it go (Unix time; 0: never) */
};

struct smp {
    int cap; /* k */
    int n;   /* records held */
    uint64_t seed;
    uint64_t bar;          /* keys with a priority above it cannot enter */
    uint64_t offered;      /* records offered since the last reset */
    struct smp_rec *recs;  /* cap records */
    struct smp_rec **by_h; /* the n held, by priority ascending */
};

/* 0 or -ENOMEM. */
int smp_init(struct smp *s, int k, uint64_t seed);
void smp_free(struct smp *s);
/* Empty the sample (same k and seed). */
void smp_reset(struct smp *s);

/* The priority of a key under seed. */
uint64_t smp_hash(uint64_t seed, const char *key, size_t len);

/* Whether a key of priority h may enter (any thread, during a load). */
static inline int smp_candidate(const struct smp *s, uint64_t h)
{
    return h <= __atomic_load_n(&s->bar, __ATOMIC_RELAXED);
}

/* Offer one record, in file order, that expires at `expires` (Unix time;
 * 0: never).  0, or -ENOMEM (the record is left out, the sample stays
 * consistent). */
int smp_offer(struct smp *s, uint64_t h, const char *key, size_t klen, int server,
              const uint8_t *val, size_t vlen, int64_t expires);

#endif

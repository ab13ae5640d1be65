/*
 * rate.h — the token bucket that paces a writer's records to one server
 * (max_rate, rewarm_max_rate).
 *
 * One bucket per server connection of a worker: it fills at `rate` tokens
 * (records) a second up to a burst of 1/50 s worth (at least one record),
 * and the writer may send a record for each token it takes.  The small
 * burst is what keeps the limit smooth: a batch of a block's records goes
 * out in slices of at most 20 ms worth instead of all at once and then a
 * pause.  Tokens are counted in millionths so the refill is exact at any
 * rate and wake-up granularity.
 *
 * Pure arithmetic on a clock the caller passes in (µs, monotonic): no I/O,
 * no clock of its own; unit-tested in tests/test_rate.c.
 */
#ifndef MEMC_RATE_H
#define MEMC_RATE_H

#include <stdint.h>

#include "config.h"

#define RATE_BURST_DIV 50 /* the burst is 1/RATE_BURST_DIV s worth of records */

struct rate_bucket {
    uint64_t rate;   /* records a second; 0 = unlimited */
    uint64_t burst;  /* at most this many tokens held */
    uint64_t micro;  /* tokens held, in millionths */
    int64_t last_us; /* when micro was last brought up to date */
};

/* The rate a load runs at: max_rate, and for a re-warm the smaller
 * non-zero of max_rate and rewarm_max_rate (0 = unlimited). */
uint64_t rate_effective(uint64_t max_rate, uint64_t rewarm_max_rate, int rewarm);

/* Set the rate (0 = unlimited); a changed rate starts with a full burst.
 * The same rate again keeps the bucket as it is. */
void rate_set(struct rate_bucket *b, uint64_t rate, int64_t now_us);

/* Take up to want tokens (whole records) that are there at now_us; returns
 * how many were taken.  Unlimited: all of them. */
uint64_t rate_take(struct rate_bucket *b, int64_t now_us, uint64_t want);

/* Microseconds from now_us until n tokens are held (n is capped to the
 * burst); 0 if they are there already or the bucket is unlimited. */
int64_t rate_wait_us(const struct rate_bucket *b, int64_t now_us, uint64_t n);

#endif

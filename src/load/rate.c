/*
 * rate.c — token bucket arithmetic for the writer's pacing (see rate.h).
 *
 * Tokens are held in millionths: a refill over dt µs adds rate * dt of
 * them, exactly, so pacing at 50000 records/s woken every millisecond
 * neither gains nor loses a record over a long load.  A refill over more
 * time than the burst needs to fill is cut short first (no overflow after
 * an idle hour).
 */
#include "rate.h"

#define RATE_MICRO 1000000ull

uint64_t rate_effective(uint64_t max_rate, uint64_t rewarm_max_rate, int rewarm)
{
    if (!rewarm || !rewarm_max_rate)
        return max_rate;
    if (!max_rate || rewarm_max_rate < max_rate)
        return rewarm_max_rate;
    return max_rate;
}

void rate_set(struct rate_bucket *b, uint64_t rate, int64_t now_us)
{
    if (rate > CFG_MAX_RATE)
        rate = CFG_MAX_RATE;
    if (b->rate == rate && rate)
        return;
    b->rate = rate;
    b->burst = rate / RATE_BURST_DIV ? rate / RATE_BURST_DIV : 1;
    b->micro = b->burst * RATE_MICRO;
    b->last_us = now_us;
}

/* Bring the held tokens up to now_us (a clock that went back adds none). */
static void rate_refill(struct rate_bucket *b, int64_t now_us)
{
    uint64_t cap = b->burst * RATE_MICRO;
    if (now_us <= b->last_us || b->micro >= cap) {
        if (now_us > b->last_us)
            b->last_us = now_us;
        return;
    }
    uint64_t dt = (uint64_t)(now_us - b->last_us);
    uint64_t fill_us = (cap - b->micro) / b->rate + 1; /* µs to full */
    b->micro = dt >= fill_us ? cap : b->micro + dt * b->rate;
    if (b->micro > cap)
        b->micro = cap;
    b->last_us = now_us;
}

uint64_t rate_take(struct rate_bucket *b, int64_t now_us, uint64_t want)
{
    if (!b->rate)
        return want;
    rate_refill(b, now_us);
    uint64_t have = b->micro / RATE_MICRO;
    uint64_t n = want < have ? want : have;
    b->micro -= n * RATE_MICRO;
    return n;
}

int64_t rate_wait_us(const struct rate_bucket *b, int64_t now_us, uint64_t n)
{
    if (!b->rate)
        return 0;
    if (n > b->burst)
        n = b->burst;
    struct rate_bucket t = *b;
    rate_refill(&t, now_us);
    uint64_t need = n * RATE_MICRO;
    if (t.micro >= need)
        return 0;
    return (int64_t)((need - t.micro + t.rate - 1) / t.rate);
}

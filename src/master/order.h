/*
 * order.h — write order: which load may write to which memcached server.
 *
 * The promise is that for every key memcached holds the value of the
 * latest file by name.  Files are inflated, parsed and packed in parallel,
 * but a file's records reach server S only after every earlier-named
 * file's records for S are stored or given up on.  The master decides
 * that; a worker asks before it writes to a server it holds no turn for
 * (IPC_TURN) and waits, bounded by its ring, for the answer (IPC_GRANT).
 *
 * The rule, for a load L asking for server S:
 *   - refused when an earlier-named file that is not loading still owes S
 *     records (left for a retry): L defers its S records and owes them
 *     too, so the retries run in name order;
 *   - granted when no other load holds S and no earlier-named load in
 *     flight may still write S (its `may` mask: every server, or the
 *     servers a retry is for);
 *   - otherwise L waits; a turn is held until the load ends.
 * Loads are dispatched in name order (a lower name waits until the loads
 * above it are done), so the earliest load in flight is never waiting for
 * a later one and the turns always move on.
 *
 * A load granted S below the highest name already granted S (a file that
 * came late, or a retry of an older file) is marked `late`: once it is
 * done, the newer retained files are replayed for those servers (the
 * master's re-warm path), so the newest value wins again.
 *
 * Pure logic: no I/O, no clock; unit-tested in tests/test_order.c.
 */
#ifndef MEMC_ORDER_H
#define MEMC_ORDER_H

#include <stdint.h>

#include "config.h"

/* One load in flight, as the ledger sees it. */
struct order_load {
    const char *name; /* the spool file's name (without the leading '.') */
    uint32_t may;     /* servers it may write (its retry mask; all for a first load) */
    uint32_t want;    /* servers it asked for */
    uint32_t granted; /* servers it holds */
    uint32_t refused; /* servers it must not write (it defers them) */
    uint32_t late;    /* granted below the highest name granted before */
};

/* The highest name granted each server so far (in this run, and at start
 * the newest retained file's). */
struct order {
    char hi[CFG_MAX_SERVERS][256];
};

void order_init(struct order *o);
/* At start: every server has seen up to name (the newest retained file). */
void order_seen(struct order *o, uint32_t servers, const char *name);

/* Earlier-named files that are not loading and still owe servers: the
 * servers owed by files named below `name`. */
typedef uint32_t (*order_owed_fn)(void *ctx, const char *name);

/* Decide the pending asks of the n loads in flight (any order, n at most
 * ORDER_MAX): each load's granted, refused and late masks only grow; the
 * caller sends what changed. */
#define ORDER_MAX 128
void order_decide(struct order *o, struct order_load *loads, int n, order_owed_fn owed, void *ctx);

#endif

/*
 * order.c — the write-order ledger (see order.h for the rule and why it
 * cannot deadlock).
 */
#include "order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void order_init(struct order *o)
{
    memset(o, 0, sizeof(*o));
}

void order_seen(struct order *o, uint32_t servers, const char *name)
{
    for (int g = 0; g < CFG_MAX_SERVERS; g++)
        if ((servers >> g & 1) && strcmp(name, o->hi[g]) > 0)
            snprintf(o->hi[g], sizeof(o->hi[g]), "%s", name);
}

static int order_by_name(const void *a, const void *b)
{
    const struct order_load *x = *(struct order_load *const *)a;
    const struct order_load *y = *(struct order_load *const *)b;
    return strcmp(x->name, y->name);
}

/* What load l (the loads before it in `sorted` are named lower) gets now. */
static void order_one(struct order *o, struct order_load *l, uint32_t earlier_may, uint32_t held,
                      uint32_t owed)
{
    uint32_t pending = l->want & ~l->granted & ~l->refused;
    if (!pending)
        return;
    uint32_t no = pending & owed;
    uint32_t yes = pending & ~no & ~held & ~earlier_may;
    l->refused |= no;
    l->granted |= yes;
    for (int g = 0; g < CFG_MAX_SERVERS; g++)
        if (yes >> g & 1) {
            if (strcmp(l->name, o->hi[g]) < 0)
                l->late |= 1u << g;
            else
                snprintf(o->hi[g], sizeof(o->hi[g]), "%s", l->name);
        }
}

void order_decide(struct order *o, struct order_load *loads, int n, order_owed_fn owed, void *ctx)
{
    struct order_load *sorted[ORDER_MAX];
    if (n > ORDER_MAX)
        n = ORDER_MAX;
    uint32_t held = 0;
    for (int i = 0; i < n; i++) {
        sorted[i] = &loads[i];
        held |= loads[i].granted;
    }
    qsort(sorted, (size_t)n, sizeof(*sorted), order_by_name);
    uint32_t earlier_may = 0;
    for (int i = 0; i < n; i++) {
        struct order_load *l = sorted[i];
        uint32_t before = l->granted;
        order_one(o, l, earlier_may, held & ~l->granted, owed ? owed(ctx, l->name) : 0);
        held |= l->granted & ~before;
        earlier_may |= l->may & ~l->refused;
    }
}

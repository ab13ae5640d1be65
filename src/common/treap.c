/*
 * treap.c — the intrusive treap (see treap.h).
 *
 * Priorities come from a per-tree xorshift generator: the tree's shape
 * depends on them, never on the order names arrive in, so a spool filled
 * in sorted order (the usual case) stays as shallow as a random one.
 */
#include "treap.h"

void treap_init(struct treap *t, treap_cmp_fn cmp)
{
    t->root = NULL;
    t->cmp = cmp;
    t->count = 0;
    t->seed = 2463534242u;
}

static uint32_t treap_rand(struct treap *t)
{
    uint32_t x = t->seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return t->seed = x;
}

/* Split t into *l (keys < key) and *r (keys > key). */
static void treap_split(struct treap_node *t, const struct treap_node *key, treap_cmp_fn cmp,
                        struct treap_node **l, struct treap_node **r)
{
    while (t) {
        if (cmp(t, key) < 0) {
            *l = t;
            l = &t->right;
            t = t->right;
        } else {
            *r = t;
            r = &t->left;
            t = t->left;
        }
    }
    *l = *r = NULL;
}

/* Join two treaps where every key of a is below every key of b. */
static struct treap_node *treap_merge(struct treap_node *a, struct treap_node *b)
{
    struct treap_node *root = NULL, **at = &root;
    while (a && b) {
        if (a->prio > b->prio) {
            *at = a;
            at = &a->right;
            a = a->right;
        } else {
            *at = b;
            at = &b->left;
            b = b->left;
        }
    }
    *at = a ? a : b;
    return root;
}

void treap_insert(struct treap *t, struct treap_node *n)
{
    n->prio = treap_rand(t);
    struct treap_node **at = &t->root;
    while (*at && (*at)->prio >= n->prio)
        at = t->cmp(n, *at) < 0 ? &(*at)->left : &(*at)->right;
    treap_split(*at, n, t->cmp, &n->left, &n->right);
    *at = n;
    t->count++;
}

void treap_remove(struct treap *t, struct treap_node *n)
{
    struct treap_node **at = &t->root;
    while (*at && *at != n)
        at = t->cmp(n, *at) < 0 ? &(*at)->left : &(*at)->right;
    if (!*at)
        return;
    *at = treap_merge(n->left, n->right);
    n->left = n->right = NULL;
    t->count--;
}

struct treap_node *treap_first(const struct treap *t)
{
    struct treap_node *n = t->root;
    while (n && n->left)
        n = n->left;
    return n;
}

struct treap_node *treap_next(const struct treap *t, const struct treap_node *n)
{
    struct treap_node *best = NULL, *at = t->root;
    while (at) {
        if (t->cmp(at, n) > 0) {
            best = at;
            at = at->left;
        } else {
            at = at->right;
        }
    }
    return best;
}

struct treap_node *treap_find(const struct treap *t, const void *key, treap_key_fn cmp)
{
    struct treap_node *at = t->root;
    while (at) {
        int c = cmp(key, at);
        if (c == 0)
            return at;
        at = c < 0 ? at->left : at->right;
    }
    return NULL;
}

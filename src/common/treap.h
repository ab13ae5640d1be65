/*
 * treap.h — an intrusive ordered set: insert, remove, first, find, next in
 * O(log N) expected time, no allocation.
 *
 * The spool keeps its files in several orders at once (every name; names
 * still to be renamed; names ready to load; retry timers), and a file must
 * move between them in O(log N) however long the queue is.  A treap is a
 * binary search tree whose nodes also carry a random priority kept in heap
 * order, which makes it balanced in expectation with the shortest code of
 * the balanced trees: every operation is a descent plus a split or a merge,
 * all iterative.  The node lives inside the caller's struct (container_of),
 * so one struct can sit in several trees.
 */
#ifndef MEMC_TREAP_H
#define MEMC_TREAP_H

#include <stddef.h>
#include <stdint.h>

struct treap_node {
    struct treap_node *left, *right;
    uint32_t prio;
};

/* <0, 0, >0 like strcmp.  Keys in one tree must be distinct. */
typedef int (*treap_cmp_fn)(const struct treap_node *a, const struct treap_node *b);
/* Compares a search key with a node, for treap_find(). */
typedef int (*treap_key_fn)(const void *key, const struct treap_node *n);

struct treap {
    struct treap_node *root;
    treap_cmp_fn cmp;
    size_t count;
    uint32_t seed;
};

#define treap_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

void treap_init(struct treap *t, treap_cmp_fn cmp);
/* n must not be in the tree, and no node with an equal key may be. */
void treap_insert(struct treap *t, struct treap_node *n);
/* n must be in the tree (a node not found is left alone). */
void treap_remove(struct treap *t, struct treap_node *n);
struct treap_node *treap_first(const struct treap *t);
/* The smallest node greater than n (n need not be in the tree). */
struct treap_node *treap_next(const struct treap *t, const struct treap_node *n);
struct treap_node *treap_find(const struct treap *t, const void *key, treap_key_fn cmp);

#endif

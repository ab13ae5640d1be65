/*
 * retain.c — the retention policy as a pure function (see retain.h).
 *
 * Ages first: a file older than its kind's limit goes.  Then the cap:
 * while what is left adds up to more than max_bytes, the oldest file not
 * in use goes, whatever its kind (disk is disk).  Files in use are never
 * marked; they still count towards the cap, so a re-warm's plan can make
 * a sweep remove older files than the cap alone would.  Oldest first is
 * also the unlink order, so a sweep cut short leaves the newest files.
 */
#include "retain.h"

#include <stdlib.h>
#include <string.h>

static const char *const retain_kinds[RETAIN_NKINDS] = {
    [RETAIN_LOADED] = "loaded",
    [RETAIN_FAILED] = "failed",
};

const char *retain_kind_name(int kind)
{
    return kind >= 0 && kind < RETAIN_NKINDS ? retain_kinds[kind] : "?";
}

/* Oldest first; the same mtime in name order (the order they came in). */
static int retain_cmp(const void *a, const void *b)
{
    const struct retain_file *x = a, *y = b;
    if (x->mtime_s != y->mtime_s)
        return x->mtime_s < y->mtime_s ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Marks the files past their age; returns the bytes of the rest. */
static uint64_t retain_by_age(struct retain_file *v, size_t n, const struct retain_policy *p,
                              int64_t now_s)
{
    uint64_t left = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t age = now_s > v[i].mtime_s ? now_s - v[i].mtime_s : 0;
        int64_t limit = p->age_s[v[i].kind];
        v[i].remove = !v[i].in_use && limit > 0 && age > limit;
        v[i].over_cap = 0;
        if (!v[i].remove)
            left += v[i].size;
    }
    return left;
}

static void retain_by_size(struct retain_file *v, size_t n, uint64_t left, uint64_t max_bytes)
{
    for (size_t i = 0; max_bytes && left > max_bytes && i < n; i++) {
        if (v[i].remove || v[i].in_use)
            continue;
        v[i].remove = v[i].over_cap = 1;
        left -= v[i].size;
    }
}

size_t retain_decide(struct retain_file *v, size_t n, const struct retain_policy *p, int64_t now_s,
                     struct retain_sum *sum)
{
    if (n) /* qsort(NULL, 0) is undefined */
        qsort(v, n, sizeof(*v), retain_cmp);
    retain_by_size(v, n, retain_by_age(v, n, p, now_s), p->max_bytes);
    struct retain_sum s;
    memset(&s, 0, sizeof(s));
    size_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        int k = v[i].kind;
        if (v[i].remove) {
            removed++;
            s.removed_files[k]++;
            s.removed_bytes[k] += v[i].size;
            s.over_cap += (uint64_t)v[i].over_cap;
        } else {
            s.kept_files[k]++;
            s.kept_bytes[k] += v[i].size;
        }
    }
    if (sum)
        *sum = s;
    return removed;
}

/*
 * retain.h — spool retention: which finished files the master removes.
 *
 * Finished files stay in the spool under a dot name: ".NAME" (loaded, what
 * a re-warm reads again) and ".NAME.failed" (set aside).  Without a limit
 * they fill the disk.  retain and retain_failed are their ages (by mtime,
 * 0 = no limit) and retain_bytes a cap on what they add up to (0 = none):
 * a file older than its limit goes, then, while the rest is larger than
 * the cap, the oldest go first.  A file in use (its NAME queued, loading
 * or settling again, or in the plan of a running re-warm) is never
 * removed; it still counts towards the cap.
 *
 * Two halves.  retain_decide() is the whole policy as a pure function:
 * a list of files and `now` in, the files to remove marked, no clock, no
 * file system (unit-tested with a made-up clock).  retain_sweep() is the
 * glue: it lists the spool's dot files through the spool's directory fd,
 * asks the master which are in use, decides, and unlinks the chosen ones
 * oldest first with unlinkat() on that fd.  The master runs a sweep at
 * start and once a minute (master.c), logs one entry per sweep that
 * removed something and puts the totals into the metrics.
 */
#ifndef MEMC_RETAIN_H
#define MEMC_RETAIN_H

#include <stddef.h>
#include <stdint.h>

/* What a retained file is: the parts of memc_load_retained_* {kind}. */
enum retain_kind { RETAIN_LOADED, RETAIN_FAILED, RETAIN_NKINDS };
const char *retain_kind_name(int kind); /* "loaded", "failed" */

struct retain_file {
    const char *name; /* its name in the spool (".NAME", ".NAME.failed") */
    int64_t mtime_s;  /* Unix time */
    uint64_t size;    /* bytes */
    enum retain_kind kind;
    int in_use;   /* queued, loading, settling or part of a running re-warm */
    int remove;   /* out: 1 = remove it (retain_decide) */
    int over_cap; /* out: removed for retain_bytes, not for its age */
};

struct retain_policy {
    int64_t age_s[RETAIN_NKINDS]; /* older than this goes (0 = no age limit) */
    uint64_t max_bytes;           /* the retained files may add up to this (0 = no cap) */
};

/* What a sweep found and did, by kind. */
struct retain_sum {
    uint64_t kept_files[RETAIN_NKINDS], kept_bytes[RETAIN_NKINDS];
    uint64_t removed_files[RETAIN_NKINDS], removed_bytes[RETAIN_NKINDS];
    uint64_t over_cap; /* of the removed: for retain_bytes */
};

/* Sort v oldest first (mtime, then name), mark the files to remove and
 * return how many; sum (may be NULL) gets the totals as if they were
 * removed.  An mtime in the future is age 0. */
size_t retain_decide(struct retain_file *v, size_t n, const struct retain_policy *p, int64_t now_s,
                     struct retain_sum *sum);

/* Is the finished file of spool name NAME in use?  kind says which dot
 * name was found (".NAME" or ".NAME.failed"). */
typedef int (*retain_in_use_fn)(void *ctx, const char *name, enum retain_kind kind);

/* One sweep of the spool directory dirfd: the regular files ".NAME" and
 * ".NAME.failed" whose NAME matches glob are decided on and the chosen
 * ones unlinked, oldest first.  sum: what is retained now and what went
 * (a file that could not be removed is counted as kept; one that was
 * already gone is in neither).  0, or -errno when the directory cannot be
 * listed; an unlink that fails is said once until one succeeds again
 * (*warned keeps that between sweeps). */
int retain_sweep(int dirfd, const char *glob, const struct retain_policy *p, int64_t now_s,
                 retain_in_use_fn in_use, void *ctx, struct retain_sum *sum, int *warned);

/* The journal entry of a sweep that removed something (nothing else is
 * logged): counts, bytes freed, what is retained. */
void retain_report(const struct retain_sum *sum, const struct retain_policy *p);

#endif

/*
 * expiry.h — when a record expires (exptime), and what its meta set's T
 * flag says about it.
 *
 * A record's life is counted from its file's time: the mtime the master
 * saw when it picked the file up, which travels with the job (ipc.h) and
 * is the same for a retry or a re-warm of that file.  A file loaded late,
 * retried after an outage or re-warmed days later gets what is left of
 * the life, never more; a record with nothing left is not sent.
 *
 * memcached reads an exptime above 30 days as a Unix time of its own
 * host's clock.  The T flag carries the seconds left while they are 30
 * days or less (no clock but the one counting down in memcached itself),
 * and the absolute expiry only beyond (there is no other way to say it):
 * docs/design.md, "Expiry".  Pure arithmetic, for every process: the
 * packers and the writer (the flag), the master (a re-warm skips files
 * whose records are all gone), verify and the read-back.
 */
#ifndef MEMC_EXPIRY_H
#define MEMC_EXPIRY_H

#include <stdint.h>

/* memcached's REALTIME_MAXDELTA: an exptime above it is a Unix time. */
#define EXP_RELATIVE_MAX 2592000
/* memcached's clock moves once a second and its second starts anywhere
 * within ours: a record this close to its expiry may be gone already. */
#define EXP_SLACK_S 2

/* The Unix time the records of a file of time file_s expire with
 * exptime_s; 0 when exptime_s is 0 (never).  A file time in the future
 * (another host's clock) counts as now_s. */
int64_t exp_deadline(int64_t file_s, long exptime_s, int64_t now_s);

enum exp_token {
    EXP_NEVER,    /* no T flag: no expiry */
    EXP_GONE,     /* nothing left: not sent */
    EXP_RELATIVE, /* T<value>, the seconds left (1 .. EXP_RELATIVE_MAX) */
    EXP_ABSOLUTE, /* T<value>, the Unix time (beyond 30 days; at most INT32_MAX) */
};

/* What the T flag of a record expiring at deadline (exp_deadline) says
 * when it is sent at now_s; *value as the kind says (0 for the others). */
enum exp_token exp_token(int64_t deadline, int64_t now_s, int64_t *value);

/* A record expiring at deadline is gone, or may be, at now_s (within
 * slack_s seconds of it: memcached's clock is not ours to the second). */
static inline int exp_gone(int64_t deadline, int64_t now_s, int64_t slack_s)
{
    return deadline && deadline <= now_s + slack_s;
}

#endif

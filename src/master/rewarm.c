/*
 * rewarm.c — the re-warm plan and its progress (see rewarm.h).
 *
 * A file that cannot be read again (deleted meanwhile, corrupt) is skipped
 * with a warning; one whose load comes back incomplete (the server went
 * away again) is tried again after retry_interval: skipping it would leave
 * the server with older values for its keys.
 */
#include "rewarm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expiry.h"
#include "io.h"
#include "log.h"
#include "pool.h"
#include "route.h"
#include "spool.h"

const char *rewarm_reason_name(int reason)
{
    static const char *const names[REWARM_NREASONS] = {"restart", "ring", "late"};
    return reason >= 0 && reason < REWARM_NREASONS ? names[reason] : "?";
}

static int rewarm_reason(const struct rewarm *r)
{
    return r->restarted ? REWARM_RESTART : r->ring_what[0] ? REWARM_RING : REWARM_LATE;
}

void rewarm_init(struct rewarm *r)
{
    memset(r, 0, sizeof(*r));
}

static void rewarm_drop_plan(struct rewarm *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    r->names = NULL;
    r->n = r->next = 0;
}

void rewarm_free(struct rewarm *r)
{
    rewarm_drop_plan(r);
}

/* A new plan is wanted: the idle state is reset, names added. */
/* Add the comma-separated names not listed yet (for messages). */
static void rewarm_add_names(struct rewarm *r, const char *names)
{
    char list[sizeof(r->servers) + 2];
    for (const char *p = names; *p;) {
        size_t n = strcspn(p, ",");
        snprintf(list, sizeof(list), ",%s,", r->servers);
        char one[300];
        snprintf(one, sizeof(one), ",%.*s,", (int)(n < 290 ? n : 290), p);
        size_t l = strlen(r->servers);
        if (n && !strstr(list, one))
            snprintf(r->servers + l, sizeof(r->servers) - l, "%s%.*s", l ? "," : "", (int)n, p);
        p += n + (p[n] == ',');
    }
}

static void rewarm_want(struct rewarm *r, uint32_t mask, const char *names)
{
    if (r->phase == REWARM_IDLE) {
        r->mask = r->restarted = r->ring_types = 0;
        r->servers[0] = r->after[0] = r->late[0] = r->ring_what[0] = 0;
    }
    r->mask |= mask;
    rewarm_add_names(r, names);
    if (r->busy)
        r->stale = 1; /* the file in flight belongs to the old plan */
    rewarm_drop_plan(r);
}

void rewarm_request(struct rewarm *r, uint32_t mask, const char *names)
{
    rewarm_want(r, mask, names);
    r->restarted |= mask;
    r->ring_types = 0; /* every record of mask */
    r->after[0] = 0;   /* every retained file */
    r->phase = REWARM_WAITING;
}

void rewarm_request_ring(struct rewarm *r, uint32_t mask, const char *names, uint32_t types,
                         const char *what)
{
    /* only ring changes so far: the records that moved; else all of mask */
    int pure = r->phase == REWARM_IDLE || (r->ring_types && !r->restarted);
    rewarm_want(r, mask, names);
    r->ring_types = pure ? r->ring_types | types : 0;
    size_t l = strlen(r->ring_what);
    snprintf(r->ring_what + l, sizeof(r->ring_what) - l, "%s%s", l ? ", " : "", what);
    r->after[0] = 0;
    r->phase = REWARM_WAITING;
}

void rewarm_request_replay(struct rewarm *r, uint32_t mask, const char *names, const char *late)
{
    int fresh = r->phase == REWARM_IDLE;
    rewarm_want(r, mask, names);
    r->ring_types = 0; /* every record of mask */
    if (fresh || (!r->restarted && !r->ring_what[0] && strcmp(late, r->after) < 0)) {
        snprintf(r->after, sizeof(r->after), "%s", late);
        snprintf(r->late, sizeof(r->late), "%s", late);
    }
    r->phase = REWARM_WAITING;
}

/* "re-warm started" / "re-warm finished", with their fields. */
static void rewarm_event(struct rewarm *r, const char *msgid, int64_t now)
{
    int done = strcmp(msgid, LOG_MSGID_REWARM_FINISHED) == 0,
        prio = done ? LOG_NOTICE : LOG_WARNING;
    char esc[LOG_NAME_LEN];
    struct log_fields lf = LOG_FIELDS_INIT(prio);
    log_name(r->late, esc, sizeof(esc));
    log_field(&lf, "MEMC_SERVER=%s", r->servers);
    log_field(&lf, "MEMC_FILES=%zu", r->n);
    log_field(&lf, "MEMC_RECORDS=%llu", (unsigned long long)r->records);
    log_field(&lf, "MEMC_DURATION_MS=%lld", (long long)(now - r->started_ms));
    log_field(&lf, "MEMC_REASON=%s", rewarm_reason_name(rewarm_reason(r)));
    log_field(&lf, "MEMC_EXPIRED_FILES=%zu", r->expired_files);
    char gone[96] = "";
    if (r->expired_files)
        snprintf(gone, sizeof(gone), "; %zu retained files skipped, every record expired",
                 r->expired_files);
    if (done)
        log_struct(prio, msgid, &lf,
                   "%s%sre-warm of %s finished: %zu files, %llu records, %.1f s%s", r->ring_what,
                   r->ring_what[0] ? ": " : "", r->servers, r->n, (unsigned long long)r->records,
                   (double)(now - r->started_ms) / 1000.0, gone);
    else if (r->ring_what[0] && !r->restarted)
        log_struct(prio, msgid, &lf,
                   "ring change: %s, re-warming %s from %zu retained files (the records "
                   "whose server changed); newer files wait until it is finished%s",
                   r->ring_what, r->servers, r->n, gone);
    else if (r->restarted)
        log_struct(prio, msgid, &lf,
                   "memcached %s restarted (its data is gone): re-warm started from %zu "
                   "retained files; newer files wait until it is finished%s",
                   r->servers, r->n, gone);
    else
        log_struct(prio, msgid, &lf,
                   "%s came after newer files and overwrote their values on %s: re-warm "
                   "started from the %zu newer files, so the newest value wins again; newer "
                   "files wait until it is finished%s",
                   esc, r->servers, r->n, gone);
}

static void rewarm_finish(struct rewarm *r, int64_t now)
{
    rewarm_event(r, LOG_MSGID_REWARM_FINISHED, now);
    r->finished_by[rewarm_reason(r)]++;
    r->records_total += r->records;
    r->settled |= r->restarted;
    rewarm_drop_plan(r);
    r->phase = REWARM_IDLE;
}

/* Sort by the name the file had when it was dropped (without the dot). */
static int rewarm_cmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x + (*x == '.'), y + (*y == '.'));
}

static int rewarm_push(struct rewarm *r, size_t *cap, const char *name)
{
    if (r->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **nn = realloc(r->names, nc * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        r->names = nn;
        *cap = nc;
    }
    if (!(r->names[r->n] = strdup(name)))
        return -ENOMEM;
    r->n++;
    return 0;
}

/* ".NAME" with NAME matching the glob, a regular file: 1 and its mtime. */
static int rewarm_retained(int dirfd, const char *glob, const char *name, int64_t *mtime)
{
    struct stat st;
    if (name[0] != '.' || name[1] == '.' || name[1] == 0 || fnmatch(glob, name + 1, FNM_PERIOD))
        return 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return 0;
    *mtime = (int64_t)st.st_mtim.tv_sec;
    return 1;
}

/* Every record of a file of that mtime has expired by wall_s. */
static int rewarm_gone(const struct rewarm *r, int64_t mtime, int64_t wall_s)
{
    return exp_gone(exp_deadline(mtime, r->life_s, wall_s), wall_s, 0);
}

void rewarm_newest(int dirfd, const char *glob, char *out, size_t len)
{
    out[0] = 0;
    DIR *d = spool_opendir(dirfd);
    if (!d)
        return;
    struct dirent *de;
    int64_t mtime;
    while ((de = readdir(d)))
        if (rewarm_retained(dirfd, glob, de->d_name, &mtime) && strcmp(de->d_name + 1, out) > 0)
            snprintf(out, len, "%s", de->d_name + 1);
    closedir(d);
}

int rewarm_plan(struct rewarm *r, int dirfd, const char *glob, int64_t max_age_s, int64_t wall_s,
                char *const *extra, size_t nextra, int64_t now)
{
    rewarm_drop_plan(r);
    size_t cap = 0;
    DIR *d = spool_opendir(dirfd);
    if (!d)
        return -errno;
    struct dirent *de;
    int rc = 0;
    int64_t min_mtime = r->restarted || r->ring_types ? wall_s - max_age_s : INT64_MIN, mtime;
    r->expired_files = 0;
    while (!rc && (de = readdir(d))) {
        if (!rewarm_retained(dirfd, glob, de->d_name, &mtime) || mtime < min_mtime ||
            strcmp(de->d_name + 1, r->after) <= 0)
            continue;
        if (rewarm_gone(r, mtime, wall_s))
            r->expired_files++;
        else
            rc = rewarm_push(r, &cap, de->d_name);
    }
    closedir(d);
    for (size_t i = 0; !rc && i < nextra; i++)
        if (strcmp(extra[i], r->after) > 0)
            rc = rewarm_push(r, &cap, extra[i]);
    if (rc < 0)
        return rc;
    if (r->n) /* qsort(NULL, 0) is undefined */
        qsort(r->names, r->n, sizeof(*r->names), rewarm_cmp);
    r->phase = REWARM_RUNNING;
    r->started_ms = now;
    r->records = 0;
    r->attempts = 0;
    r->retry_at_ms = 0;
    rewarm_event(r, LOG_MSGID_REWARM_STARTED, now);
    if (!r->n)
        rewarm_finish(r, now);
    return 0;
}

static void rewarm_advance(struct rewarm *r, int64_t now)
{
    r->next++;
    r->attempts = 0;
    if (r->next >= r->n)
        rewarm_finish(r, now);
}

void rewarm_dispatch(struct rewarm *r, struct pool *p, int dirfd, int64_t now)
{
    struct pool_worker *w;
    while (r->phase == REWARM_RUNNING && !r->busy && now >= r->retry_at_ms && (w = pool_idle(p))) {
        const char *name = r->names[r->next];
        struct stat st;
        int fd = spool_open_at(dirfd, name, &st);
        if (fd < 0) {
            char esc[LOG_NAME_LEN];
            log_printf(LOG_WARNING, "re-warm of %s: cannot open %s (%s); skipping it", r->servers,
                       log_name(name, esc, sizeof(esc)),
                       fd == -EFTYPE_SPOOL ? "not a regular file" : strerror(-fd));
            rewarm_advance(r, now);
            continue;
        }
        if (rewarm_gone(r, st.st_mtim.tv_sec, io_wall_us() / 1000000)) {
            close(fd); /* finished since the plan, or it expired meanwhile */
            r->expired_files++;
            rewarm_advance(r, now);
            continue;
        }
        int rc = pool_load(p, w, NULL, name, fd, r->mask, r->ring_types, st.st_mtim.tv_sec, now);
        close(fd);
        if (rc == 0)
            r->busy = 1;
    }
}

void rewarm_result(struct rewarm *r, const struct pipe_stats *st, int64_t now, int retry_s)
{
    r->busy = 0;
    if (r->stale) {
        r->stale = 0;
        return;
    }
    char esc[LOG_NAME_LEN];
    const char *name = log_name(r->names[r->next], esc, sizeof(esc));
    switch (st->status) {
    case PIPE_DONE:
        r->records += st->stored;
        rewarm_advance(r, now);
        return;
    case PIPE_INCOMPLETE:
    case PIPE_ABORTED:
        log_printf(LOG_WARNING, "re-warm of %s: %s incomplete; trying it again in %d s", r->servers,
                   name, retry_s);
        r->retry_at_ms = now + (int64_t)retry_s * 1000;
        return;
    default:
        log_printf(LOG_WARNING, "re-warm of %s: %s cannot be read again (%s); skipping it",
                   r->servers, name, st->why);
        rewarm_advance(r, now);
    }
}

void rewarm_lost(struct rewarm *r, int64_t now)
{
    r->busy = 0;
    if (r->stale) {
        r->stale = 0;
        return;
    }
    if (++r->attempts >= 3) {
        char esc[LOG_NAME_LEN];
        log_printf(LOG_ERR, "re-warm of %s: workers died on %s 3 times; skipping it", r->servers,
                   log_name(r->names[r->next], esc, sizeof(esc)));
        rewarm_advance(r, now);
    }
    r->retry_at_ms = now + 1000;
}

void rewarm_carry(struct rewarm *r, const struct memc_map *from, const struct memc_map *to)
{
    r->mask = memc_map_carry(from, to, r->mask);
    r->restarted = memc_map_carry(from, to, r->restarted);
    r->settled = memc_map_carry(from, to, r->settled);
}

int rewarm_plans(const struct rewarm *r, const char *name)
{
    size_t lo = 0, hi = r->phase == REWARM_RUNNING ? r->n : 0;
    while (lo < hi) { /* the plan is sorted by NAME (rewarm_cmp) */
        size_t mid = lo + (hi - lo) / 2;
        const char *x = r->names[mid];
        int c = strcmp(x + (*x == '.'), name);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

void rewarm_status(const struct rewarm *r, char *buf, size_t len)
{
    int ring_change = r->ring_what[0] != 0;
    const char *ring = ring_change ? "ring change: " : "", *sep = ring_change ? ", " : "";
    if (r->phase == REWARM_RUNNING)
        snprintf(buf, len, "%s%s%sre-warming %s: %zu/%zu files", ring, r->ring_what, sep,
                 r->servers, r->next, r->n);
    else if (r->phase == REWARM_WAITING)
        snprintf(buf, len, "%s%s%sre-warming %s: waiting for loads in flight", ring, r->ring_what,
                 sep, r->servers);
    else if (len)
        buf[0] = 0;
}

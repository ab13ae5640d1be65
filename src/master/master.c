/*
 * master.c — the wiring of the process systemd starts.
 *
 * One thread, one sleep: epoll_wait() over a signalfd (TERM, INT, HUP,
 * CHLD), the spool's inotify fd, a 100 ms timerfd and one socket per
 * worker.  Each part owns its state and this file only connects them:
 *
 *   watch.c   names that appear in the spool directory   -> spool_add()
 *   spool.c   the files, their states, timers and renames in name order
 *   pool.c    the worker processes; a finished load or a worker that died
 *             comes back here (master_on_result / master_on_died) and the
 *             master tells the spool what became of the file
 *   report.c  journal entries per result, STATUS, the terminal view
 *
 * After each wake-up: dispatch (idle workers get the lowest-named ready
 * file, opened here and passed as an fd), renames, then the periodic
 * checks (stalls, respawns, READY, watchdog, STATUS).  SIGHUP reloads the
 * configuration: new workers take it, files in flight finish with the old.
 */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "io.h"
#include "log.h"
#include "conn.h"
#include "route.h"
#include "metrics.h"
#include "pool.h"
#include "report.h"
#include "retain.h"
#include "rewarm.h"
#include "sd_notify.h"
#include "spool.h"
#include "watch.h"

struct master {
    struct cfg cfg;
    int argc;
    char **argv;
    pool_proc_fn worker; /* the workers' entry point */
    struct memc_map map;
    struct memc_map prev_map; /* the map before the last reload (zeroed: none) */
    uint32_t ring_changed;    /* types whose ring that reload changed */
    struct watch watch;
    struct spool spool;
    struct pool pool;
    struct report report;
    struct health health;
    struct rewarm rewarm;
    struct order order; /* the write order: who may write which server (order.h) */
    struct metrics metrics;
    uint32_t down_seen; /* servers the workers found down at the last check */
    struct notify notify;
    int epfd, sigfd, timerfd;

    int ready_sent;
    int stopping;
    int64_t stop_started_ms;
    int killed_all;
    int exit_code;
    int failed;           /* a file at or above the error threshold, or corrupt in a dry run */
    int64_t spool_try_ms; /* waiting for the spool directory: next look */
    int64_t extended_ms;  /* waiting before READY: last EXTEND_TIMEOUT_USEC */
    int64_t retain_ms;    /* the next spool retention sweep (0: at once) */
    int retain_warned;    /* a sweep's failure was said (until one succeeds) */
};

#define MASTER_RETAIN_EVERY_MS 60000 /* a retention sweep at least this often */

enum { TAG_SIG = 1, TAG_INOTIFY, TAG_TIMER, TAG_PROBE = 50, TAG_WORKER = 100 };

static int master_poll_add(struct master *m, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return log_errno(LOG_ERR, errno, "epoll_ctl(ADD)");
    return 0;
}

static void master_poll_del(struct master *m, int fd)
{
    if (epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT)
        log_errno(LOG_WARNING, errno, "epoll_ctl(DEL)");
}

/* watch.c found a name: the spool decides what it means. */
static void master_on_name(void *ctx, const char *name, enum watch_how how)
{
    struct master *m = ctx;
    spool_add(&m->spool, name, how, io_now_ms(), io_wall_us() / 1000);
}

static void master_rescan(struct master *m)
{
    int r = watch_scan(&m->watch, master_on_name, m);
    if (r < 0)
        log_printf(LOG_ERR, "cannot scan %s: %s", m->watch.dir, strerror(-r));
}

/* ---- what the pool reports ------------------------------------------------ */

/* order.h: servers owed by files named below name (left for a retry). */
static uint32_t master_owed(void *ctx, const char *name)
{
    struct master *m = ctx;
    return spool_owed_below(&m->spool, name);
}

/* Incomplete (memcached unreachable): again after a doubling back-off, or,
 * one-shot, left in place. */
static void master_left(struct master *m, struct spool_file *f, const struct pipe_stats *st,
                        int64_t now)
{
    f->attempts++;
    int shift = f->attempts > 5 ? 5 : (int)f->attempts - 1;
    int64_t delay = (int64_t)m->cfg.retry_interval_s * 1000 << shift;
    if (delay > 300000)
        delay = 300000;
    if (m->cfg.oneshot) {
        spool_set_state(&m->spool, f, SPOOL_LEFT);
        report_left(&m->report, f, st, -1, now);
    } else {
        spool_wait(&m->spool, f, SPOOL_RETRY, now + delay);
        report_left(&m->report, f, st, delay, now);
    }
}

/* Incomplete: the servers it still owes (a retry is for those alone). */
static void master_owes(struct spool_file *f, const struct pipe_stats *st)
{
    uint32_t was = f->owed ? f->owed : ~0u;
    f->owed = (st->deferred_mask | st->lost_mask) & was;
    if (!f->owed)
        f->owed = was; /* incomplete without a server to blame: all of it again */
}

/* Finished: the files held back behind its retry may go now. */
static void master_paid(struct master *m, struct spool_file *f, int64_t now)
{
    if (f->owed)
        spool_wake_owing(&m->spool, f, f->owed, now);
    f->owed = 0;
}

/* A late file wrote over newer values (order.h): replay the newer files
 * for those servers. */
/* Every server of the types in types (bitmap), in map's numbering. */
static uint32_t master_type_servers(const struct memc_map *map, uint32_t types)
{
    uint32_t mask = 0;
    for (int g = 0; g < map->nservers; g++)
        if ((types >> map->servers[g].type) & 1)
            mask |= 1u << g;
    return mask;
}

/* "host:port,host:port" of the servers in mask, for a re-warm's messages. */
static const char *master_names(const struct master *m, uint32_t mask, char *buf, size_t len)
{
    size_t l = 0;
    buf[0] = 0;
    for (int g = 0; g < m->map.nservers; g++)
        if (mask >> g & 1)
            l += (size_t)snprintf(buf + l, l < len ? len - l : 0, "%s%s", l ? "," : "",
                                  m->map.servers[g].name);
    return buf;
}

static void master_replay(struct master *m, const struct spool_file *f, uint32_t mask)
{
    char names[512];
    rewarm_request_replay(&m->rewarm, mask, master_names(m, mask, names, sizeof(names)), f->name);
}

/* A file the master cannot open (EIO, ...): set aside like one a worker
 * could not read, with its result entry and in files_total. */
static void master_on_aside(void *ctx, struct spool_file *f, int err)
{
    struct master *m = ctx;
    struct pipe_stats st;
    memset(&st, 0, sizeof(st));
    st.status = PIPE_IOERR;
    snprintf(st.why, sizeof(st.why), "cannot be opened: %s", strerror(err));
    report_set_aside(&m->report, f, &st, m->cfg.dry, io_now_ms());
    metrics_file(&m->metrics, METRICS_UNREADABLE, io_wall_us() / 1000000);
}

static void master_file_result(struct master *m, struct spool_file *f, const struct ipc_msg *msg)
{
    const struct pipe_stats *st = &msg->st;
    int64_t now = io_now_ms(), wall = io_wall_us() / 1000000;
    metrics_add(&m->metrics, st, f ? now - f->started_ms : -1);
    if (!f) {
        rewarm_result(&m->rewarm, st, now, m->cfg.retry_interval_s);
        return;
    }
    if (st->status != PIPE_INCOMPLETE && st->status != PIPE_ABORTED)
        master_paid(m, f, now);
    m->report.stored_done += st->stored;
    switch (st->status) {
    case PIPE_ABORTED:
        spool_set_state(&m->spool, f, SPOOL_QUEUED);
        report_aborted(f, st);
        return;
    case PIPE_CORRUPT:
    case PIPE_IOERR:
        /* Truncated under the reader looks corrupt: only a file that stayed
         * the same is judged by its bytes. */
        if (spool_requeue_if_changed(&m->spool, f, now))
            return;
        /* Data that ends short may still be written: final only when it is
         * still short after the file stayed unchanged for settle_time. */
        if (st->truncated && spool_hold_truncated(&m->spool, f, now))
            return;
        if (m->cfg.dry)
            m->failed = 1; /* a dry run renames nothing, but says it */
        spool_set_state(&m->spool, f, m->cfg.dry ? SPOOL_KEPT : SPOOL_BAD);
        report_set_aside(&m->report, f, st, m->cfg.dry, now);
        metrics_file(&m->metrics, st->status == PIPE_CORRUPT ? METRICS_CORRUPT : METRICS_UNREADABLE,
                     wall);
        return;
    case PIPE_INCOMPLETE:
        master_owes(f, st);
        master_left(m, f, st, now);
        if (!m->cfg.oneshot) /* one-shot: left, counted at exit */
            metrics_retry(&m->metrics);
        return;
    default:
        break;
    }
    if (spool_requeue_if_changed(&m->spool, f, now))
        return;
    int ok = report_error_rate(st) < m->cfg.error_threshold;
    if (!ok)
        m->failed = 1;
    f->attempts = 0;
    spool_set_state(&m->spool, f, m->cfg.dry ? SPOOL_KEPT : SPOOL_DONE);
    report_loaded(&m->report, f, st, ok, m->cfg.dry, m->cfg.error_threshold, now);
    metrics_file(&m->metrics, ok ? METRICS_LOADED : METRICS_FAILED, wall);
}

/* Decide the turns the workers wait for (order.h) and tell them. */
static void master_turns(struct master *m)
{
    struct order_load loads[POOL_MAX_WORKERS];
    struct pool_worker *who[POOL_MAX_WORKERS];
    int n = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        struct pool_worker *w = &m->pool.w[i];
        if (w->pid <= 0 || !w->busy)
            continue;
        if (!w->ord.name) { /* a re-warm file: it runs alone */
            w->ord.granted |= w->ord.want;
            pool_grant(&m->pool, w);
            continue;
        }
        loads[n] = w->ord;
        who[n++] = w;
    }
    order_decide(&m->order, loads, n, master_owed, m);
    for (int k = 0; k < n; k++) {
        who[k]->ord = loads[k];
        pool_grant(&m->pool, who[k]);
    }
}

static void master_on_turn(void *ctx)
{
    master_turns(ctx);
}

/* A re-warm that finished makes its servers' new identities the ones the
 * state file keeps (health.h). */
static void master_rewarm_settled(struct master *m)
{
    if (m->rewarm.settled)
        health_commit(&m->health, m->rewarm.settled);
    m->rewarm.settled = 0;
}

/* The masks of a result from a worker started before the last reload, in
 * today's numbering (two reloads ago: every server).  Incomplete, it owes
 * too the servers of the types whose ring changed (master_carry_masks). */
static void master_carry_result(struct master *m, struct ipc_msg *msg, uint32_t *late,
                                unsigned reloads)
{
    const struct memc_map *from = reloads == 1 ? &m->prev_map : NULL;
    uint32_t all = master_type_servers(&m->map, ~0u);
    uint32_t *masks[] = {&msg->down_mask, &msg->st.wrote_mask, &msg->st.deferred_mask,
                         &msg->st.lost_mask, late};
    for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++)
        *masks[i] = from ? memc_map_carry(from, &m->map, *masks[i]) : *masks[i] ? all : 0;
    if (msg->st.status == PIPE_INCOMPLETE)
        msg->st.deferred_mask |= from ? master_type_servers(&m->map, m->ring_changed) : all;
}

static void master_on_result(void *ctx, struct spool_file *f, const struct ipc_msg *in,
                             uint32_t late, unsigned reloads)
{
    struct master *m = ctx;
    struct ipc_msg carried;
    const struct ipc_msg *msg = in;
    if (reloads) {
        carried = *in;
        master_carry_result(m, &carried, &late, reloads);
        msg = &carried;
    }
    if (f && (late & msg->st.wrote_mask))
        master_replay(m, f, late & msg->st.wrote_mask);
    master_file_result(m, f, msg);
    master_rewarm_settled(m);
    master_turns(m);
}

static void master_on_died(void *ctx, struct spool_file *f, pid_t pid, const char *why)
{
    struct master *m = ctx;
    master_turns(m);
    if (!f) {
        log_printf(LOG_ERR, "worker %d %s while re-warming; that file is tried again", (int)pid,
                   why);
        rewarm_lost(&m->rewarm, io_now_ms());
        master_rewarm_settled(m);
        return;
    }
    int aside = spool_loader_died(&m->spool, f, m->stopping);
    report_worker_died(f, pid, why, aside, m->stopping);
    if (aside)
        metrics_file(&m->metrics, METRICS_CRASHED, io_wall_us() / 1000000);
}

/* In a new worker: the master's descriptors are not its business. */
static void master_in_child(void *ctx)
{
    struct master *m = ctx;
    close(m->epfd);
    close(m->sigfd);
    close(m->timerfd);
    watch_close(&m->watch);
    notify_close(&m->notify);
}

/* ---- dispatch ------------------------------------------------------------ */

/* Names of files loaded but not renamed yet: re-warmed with the dot files. */
static size_t master_done_names(struct master *m, char ***out)
{
    size_t n = 0, cap = m->spool.count[SPOOL_DONE];
    char **v = cap ? calloc(cap, sizeof(*v)) : NULL;
    for (struct treap_node *t = treap_first(&m->spool.names); v && t && n < cap;
         t = treap_next(&m->spool.names, t)) {
        struct spool_file *f = treap_entry(t, struct spool_file, by_name);
        if (f->state == SPOOL_DONE)
            v[n++] = f->name;
    }
    *out = v;
    return v ? n : 0;
}

/* The longest exptime of the types re-warmed; 0 when some of their
 * records never expire (rewarm.h life_s). */
static int64_t master_rewarm_life(const struct master *m)
{
    int64_t life = 0;
    for (int g = 0; g < m->map.nservers; g++) {
        long e = cfg_exptime_s(&m->cfg, m->map.servers[g].type);
        if (!(m->rewarm.mask >> g & 1))
            continue;
        if (!e)
            return 0;
        life = e > life ? e : life;
    }
    return life;
}

/* A re-warm is wanted: it starts once no load is in flight (their records
 * are newer than the retained files'), then owns the workers until done. */
static void master_rewarm_step(struct master *m, int64_t now)
{
    if (m->rewarm.phase == REWARM_WAITING) {
        if (pool_count_busy(&m->pool) || m->watch.dirfd < 0)
            return;
        m->rewarm.life_s = master_rewarm_life(m);
        char **done;
        size_t n = master_done_names(m, &done);
        int r = rewarm_plan(&m->rewarm, m->watch.dirfd, m->watch.glob, m->cfg.rewarm_max_age_s,
                            io_wall_us() / 1000000, done, n, now);
        free(done);
        if (r < 0) {
            log_printf(LOG_ERR, "re-warm: cannot list %s: %s", m->watch.dir, strerror(-r));
            m->rewarm.phase = REWARM_IDLE;
            return;
        }
    }
    rewarm_dispatch(&m->rewarm, &m->pool, m->watch.dirfd, now);
}

/* Loads start in name order (order.h): a file named below one that is
 * loading (it came late, or its retry is due) waits until that is done,
 * and a file waits for an earlier name that is still settling. */
static int master_behind(const struct master *m, const struct spool_file *f)
{
    const struct spool_file *s = spool_first_settling(&m->spool);
    if (s && strcmp(s->name, f->name) < 0)
        return 1; /* an earlier name is still being written or settling */
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        const struct pool_worker *w = &m->pool.w[i];
        if (w->pid > 0 && w->busy && w->file && strcmp(w->file->name, f->name) > 0)
            return 1;
    }
    return 0;
}

static void master_dispatch(struct master *m)
{
    if (m->stopping)
        return;
    int64_t now = io_now_ms();
    spool_tick(&m->spool, now);
    if (m->rewarm.phase != REWARM_IDLE) {
        master_rewarm_step(m, now);
        if (m->rewarm.phase != REWARM_IDLE)
            return; /* new files wait: they must not be overtaken */
    }
    struct pool_worker *w;
    m->pool.down_hint = m->cfg.oneshot ? 0 : health_down_mask(&m->health);
    while ((w = pool_idle(&m->pool))) {
        struct spool_file *f;
        int fd = -1;
        while ((f = spool_next(&m->spool)) && !master_behind(m, f) &&
               (fd = spool_open(&m->spool, f, now)) < 0)
            ;
        if (!f || fd < 0)
            return;
        int r = pool_load(&m->pool, w, f, f->name, fd, f->owed, 0, f->st.mtime.tv_sec, now);
        close(fd);
        if (r < 0)
            continue; /* the file stays queued; that worker is no longer idle */
        spool_loading(&m->spool, f, now);
        char esc[LOG_NAME_LEN];
        log_printf(LOG_INFO, "loading %s (%lld bytes) in worker %d",
                   log_name(f->name, esc, sizeof(esc)), (long long)f->st.size, (int)w->pid);
    }
}

/* ---- spool retention (retain.h) ------------------------------------------- */

/* A finished file whose NAME is in the spool's states again (dropped
 * again: queued, loading, settling, waiting for its retry or its rename),
 * or in the plan of the re-warm that runs, is left alone. */
static int master_in_use(void *ctx, const char *name, enum retain_kind kind)
{
    struct master *m = ctx;
    const struct spool_file *f = spool_find(&m->spool, name);
    switch (f ? f->state : SPOOL_SKIP) {
    case SPOOL_QUEUED:
    case SPOOL_LOADING:
    case SPOOL_RETRY:
    case SPOOL_SETTLE:
    case SPOOL_DONE:
    case SPOOL_BAD:
        return 1;
    default:
        break;
    }
    return kind == RETAIN_LOADED && rewarm_plans(&m->rewarm, name);
}

/* At start (and when the spool is found, or a reload), then once a minute:
 * remove what retain, retain_failed and retain_bytes say.  A dry run
 * removes nothing, but counts. */
static void master_retain(struct master *m, int64_t now)
{
    if (m->watch.dirfd < 0 || (!m->cfg.oneshot && m->watch.infd < 0) || now < m->retain_ms)
        return;
    m->retain_ms = now + MASTER_RETAIN_EVERY_MS;
    struct retain_policy p = {{cfg_retain_s(&m->cfg), cfg_retain_failed_s(&m->cfg)},
                              m->cfg.retain_bytes};
    if (m->cfg.dry)
        memset(&p, 0, sizeof(p));
    struct retain_sum sum;
    int r = retain_sweep(m->watch.dirfd, m->watch.glob, &p, io_wall_us() / 1000000, master_in_use,
                         m, &sum, &m->retain_warned);
    if (r < 0) {
        if (!m->retain_warned++)
            log_printf(LOG_WARNING,
                       "spool retention: cannot list %s: %s (tried again every minute)",
                       m->watch.dir, strerror(-r));
        return;
    }
    retain_report(&sum, &p);
    metrics_retained(&m->metrics, &sum);
}

/* ---- stopping and the periodic checks ------------------------------------ */

static void master_stop(struct master *m, const char *why)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    m->stop_started_ms = io_now_ms();
    notify_stopping(&m->notify);
    notify_extend_timeout(&m->notify, (uint64_t)(m->cfg.stop_timeout_s + 10) * 1000000);
    log_printf(LOG_INFO, "stopping (%s)", why);
    pool_stop(&m->pool);
}

/* The spool directory was removed or moved away: stop listening, forget
 * what is not loading, and wait for it to come back.  Loads in flight
 * finish against the old directory (its fd stays open until they have). */
static void master_spool_gone(struct master *m)
{
    log_printf(LOG_ERR,
               "spool directory %s was deleted or moved; waiting for it to come back "
               "(files not yet renamed are loaded again then)",
               m->watch.dir);
    master_poll_del(m, m->watch.infd);
    watch_stop_events(&m->watch);
    spool_forget_idle(&m->spool);
    m->spool_try_ms = 0;
}

static int master_open_watch(struct master *m, struct watch *w, int quiet);

/* One memc-load per spool (watch_lock).  With --wait-lock at start (wait
 * = 1) wait for the holder, still answering SIGTERM/SIGINT.  0; -EINTR when
 * stopped while waiting; -EWOULDBLOCK after saying who holds it. */
static int master_lock(struct master *m, const struct watch *w, int wait)
{
    pid_t holder;
    char who[48] = "another memc-load"; /* /proc/locks may be hidden (ProcSubset=pid) */
    int r = watch_lock(w, &holder), said = 0;
    if (holder > 0)
        snprintf(who, sizeof(who), "memc-load pid %d", (int)holder);
    while (r == -EWOULDBLOCK && wait && m->cfg.wait_lock) {
        if (!said++)
            log_printf(LOG_NOTICE, "spool directory %s is locked by %s; waiting", w->dir, who);
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        struct timespec ts = {0, 250000000};
        if (sigtimedwait(&stop, NULL, &ts) > 0)
            return -EINTR;
        r = watch_lock(w, &holder);
    }
    if (r == -EWOULDBLOCK)
        log_printf(LOG_ERR,
                   "spool directory %s is locked by %s: another instance loads it "
                   "(one memc-load per spool; --wait-lock waits for it)",
                   w->dir, who);
    else if (r < 0)
        log_printf(LOG_ERR, "flock(%s): %s", w->dir, strerror(-r));
    return r;
}

/* Not watching: close the old directory once its last load is done, then
 * look for the spool twice a second and start watching when it is there. */
static void master_find_spool(struct master *m, int64_t now)
{
    if (m->watch.dirfd >= 0) {
        if (m->spool.count[SPOOL_LOADING])
            return;
        watch_close(&m->watch);
        m->spool.dirfd = -1;
    }
    if (now < m->spool_try_ms)
        return;
    m->spool_try_ms = now + 500;
    struct watch w;
    if (master_open_watch(m, &w, 1) < 0)
        return;
    if (master_lock(m, &w, 0) < 0 || master_poll_add(m, w.infd, TAG_INOTIFY) < 0) {
        watch_close(&w);
        return;
    }
    m->watch = w;
    m->spool.dirfd = w.dirfd;
    m->retain_ms = 0;
    log_printf(LOG_NOTICE, "spool directory %s is there; watching it", w.dir);
    master_rescan(m);
}

/* Before READY=1 while the spool is missing: keep systemd's start timeout
 * from running out (a spool on a mount that comes later). */
static void master_keep_starting(struct master *m, int64_t now)
{
    if (m->ready_sent || now - m->extended_ms < 1000)
        return;
    m->extended_ms = now;
    notify_extend_timeout(&m->notify, 5 * 1000000ULL);
}

static void master_maybe_ready(struct master *m)
{
    if (m->ready_sent || m->stopping || !pool_all_ready(&m->pool))
        return;
    if (!m->cfg.oneshot && m->watch.infd < 0)
        return; /* READY=1 means watching */
    notify_ready(&m->notify);
    m->ready_sent = 1;
    log_printf(LOG_INFO, "ready: %d workers x %d packer threads, watching %s/%s%s", m->cfg.workers,
               m->cfg.threads, m->watch.dir, m->watch.glob, m->cfg.oneshot ? " (one-shot)" : "");
}

/* One-shot: "waiting 1.8 s for 3 files written less than settle_time ago"
 * while files settle (they are loaded once their stat stayed the same for
 * settle_time, counted from their mtime at start-up), else "". */
static const char *master_settle_note(const struct master *m, char *buf, size_t len, int64_t now)
{
    int64_t wait_ms;
    size_t n = m->cfg.oneshot ? spool_settling(&m->spool, now, &wait_ms) : 0;
    buf[0] = 0;
    if (n)
        snprintf(buf, len, "waiting %.1f s for %zu file%s written less than settle_time ago",
                 (double)wait_ms / 1000.0, n, n == 1 ? "" : "s");
    return buf;
}

/* What STATUS says first: waiting for the spool, re-warming, or nothing. */
static const char *master_note(const struct master *m, char *buf, size_t len)
{
    if (!m->cfg.oneshot && m->watch.infd < 0)
        snprintf(buf, len, "waiting for spool directory %s", m->watch.dir);
    else
        rewarm_status(&m->rewarm, buf, len);
    return buf;
}

/* A memcached restarted (health.c): re-warm it, unless that is off. */
static void master_on_restart(struct master *m, int g)
{
    const struct memc_server *srv = &m->map.servers[g];
    if (!m->cfg.rewarm_max_age_s) {
        log_printf(LOG_WARNING,
                   "memcached %s (%s) restarted: its data is gone, and re-warming is off "
                   "(rewarm_max_age = 0)",
                   srv->name, cfg_type_name(srv->type));
        return;
    }
    rewarm_request(&m->rewarm, 1u << g, srv->name);
}

/* Probe at once a server the workers just found reachable again. */
static void master_watch_health(struct master *m, int64_t now)
{
    uint32_t down = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        if (m->pool.w[i].pid > 0)
            down |= m->pool.w[i].down_mask;
    for (int g = 0; g < m->map.nservers; g++)
        if ((m->down_seen >> g & 1) && !(down >> g & 1))
            m->health.s[g].next_ms = 0;
    m->down_seen = down;
    health_tick(&m->health, now);
}

static void master_checks(struct master *m)
{
    int64_t now = io_now_ms();
    if (!m->stopping && !m->cfg.oneshot) {
        if (m->watch.infd >= 0 && watch_gone(&m->watch))
            master_spool_gone(m);
        if (m->watch.infd < 0) {
            master_find_spool(m, now);
            master_keep_starting(m, now);
        }
        master_watch_health(m, now);
    }
    if (!m->stopping)
        master_retain(m, now);
    pool_check_stalls(&m->pool, now);
    if (!m->stopping) {
        pool_fill(&m->pool, now);
    } else if (!m->killed_all && now - m->stop_started_ms > m->cfg.stop_timeout_s * 1000LL) {
        log_printf(LOG_WARNING, "workers did not stop within %d s; killing them",
                   m->cfg.stop_timeout_s);
        pool_kill_all(&m->pool);
        m->killed_all = 1;
    }
    master_maybe_ready(m);
    notify_flush(&m->notify);
    notify_watchdog(&m->notify);
    metrics_tick(&m->metrics, &m->spool, &m->pool, &m->health, &m->rewarm, &m->map, now);
    char note[600];
    report_status(&m->report, &m->spool, &m->pool, &m->map, master_note(m, note, sizeof(note)),
                  m->stopping, &m->notify, 0);
    if (m->report.tty)
        report_tty_draw(&m->report, &m->pool, master_settle_note(m, note, sizeof(note), now), now);
}

/* ---- reload -------------------------------------------------------------- */

/* quiet: a missing directory is not worth a message (we wait for it). */
static int master_open_watch(struct master *m, struct watch *w, int quiet)
{
    char dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    cfg_split_pattern(m->cfg.pattern, dir, sizeof(dir), glob, sizeof(glob));
    int r = watch_open(w, dir, glob, !m->cfg.oneshot);
    if (r < 0 && !(quiet && (r == -ENOENT || r == -ENOTDIR)))
        log_printf(LOG_ERR, "cannot watch spool directory %s: %s", dir, strerror(-r));
    return r;
}

/* The pattern names another directory: files of the old spool that are not
 * loading are forgotten, the new one is scanned. */
static int master_switch_spool(struct master *m)
{
    struct watch w;
    if (master_open_watch(m, &w, 0) < 0)
        return -1;
    if (master_lock(m, &w, 0) < 0 || (w.infd >= 0 && master_poll_add(m, w.infd, TAG_INOTIFY) < 0)) {
        watch_close(&w);
        return -1;
    }
    spool_forget_idle(&m->spool);
    if (m->watch.infd >= 0)
        master_poll_del(m, m->watch.infd);
    watch_close(&m->watch);
    m->watch = w;
    m->spool.dirfd = w.dirfd;
    master_rescan(m);
    return 0;
}

/* The daemon watches its servers; a one-shot run does not (it exits). */
static void master_health_init(struct master *m)
{
    health_init(&m->health, &m->map, m->epfd, TAG_PROBE, m->cfg.health_interval_s * 1000,
                m->cfg.io_timeout_ms, m->cfg.oneshot ? "" : m->cfg.state_dir);
}

/* The write order starts from what the servers hold: the newest retained
 * file (a file named below it is late, order.h). */
static void master_order_init(struct master *m)
{
    char newest[256];
    order_init(&m->order);
    if (m->watch.dirfd < 0)
        return;
    rewarm_newest(m->watch.dirfd, m->watch.glob, newest, sizeof(newest));
    order_seen(&m->order, ~0u, newest);
}

/* "idfa 2 → 3 servers (1 added)", appended to what. */
static void master_ring_what(const struct memc_map *o, const struct memc_map *n, int t, char *what,
                             size_t len)
{
    int added = 0, removed = 0;
    for (int i = 0; i < n->count[t]; i++)
        added += memc_map_find(o, t, n->servers[n->first[t] + i].name) < 0;
    for (int i = 0; i < o->count[t]; i++)
        removed += memc_map_find(n, t, o->servers[o->first[t] + i].name) < 0;
    char how[64];
    if (added && removed)
        snprintf(how, sizeof(how), "%d added, %d removed", added, removed);
    else if (added || removed)
        snprintf(how, sizeof(how), "%d %s", added + removed, added ? "added" : "removed");
    else
        snprintf(how, sizeof(how), "%s", "reordered or another distribution");
    size_t l = strlen(what);
    snprintf(what + l, len - l, "%s%s %d \u2192 %d servers (%s)", l ? ", " : "", cfg_type_name(t),
             o->count[t], n->count[t], how);
}

/* A reload changed the ring of some types: for each, the ring the servers'
 * data follows (the one before, or, while a ring re-warm is still to
 * finish, the one before that: loads wait for it) goes in n->ring_prev
 * for the new workers.  Returns the types changed, what says them. */
static uint32_t master_ring_changes(struct master *m, const struct memc_map *map, struct cfg *n,
                                    char *what, size_t len)
{
    uint32_t types = 0, pending = m->rewarm.phase != REWARM_IDLE ? m->rewarm.ring_types : 0;
    const struct cfg *o = &m->cfg;
    n->ring_prev_distribution = pending ? o->ring_prev_distribution : o->distribution;
    n->ring_prev_hash = pending ? o->ring_prev_hash : o->hash;
    what[0] = 0;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if ((pending >> t) & 1) {
            snprintf(n->ring_prev[t], sizeof(n->ring_prev[t]), "%s", o->ring_prev[t]);
            types |= 1u << t;
        }
        if (!map->count[t] || memc_map_same_ring(&m->map, map, t))
            continue;
        if (!((pending >> t) & 1))
            snprintf(n->ring_prev[t], sizeof(n->ring_prev[t]), "%s", o->addr[t]);
        types |= 1u << t;
        master_ring_what(&m->map, map, t, what, len);
    }
    return types;
}

/* The ring re-warm of the types changed (after the maps were swapped). */
static void master_ring_rewarm(struct master *m, uint32_t types, const char *what)
{
    uint32_t mask = master_type_servers(&m->map, types);
    char names[512];
    if (!mask || !what[0])
        return;
    if (!m->cfg.rewarm_max_age_s) {
        log_printf(LOG_WARNING,
                   "ring change: %s; readers miss the keys that moved until the next files: "
                   "re-warming is off (rewarm_max_age = 0)",
                   what);
        return;
    }
    rewarm_request_ring(&m->rewarm, mask, master_names(m, mask, names, sizeof(names)), types, what);
}

/* A reload renumbers the servers: the masks held move to the new numbers.
 * A file that owes records wrote the others under the old ring: of the
 * types whose ring changed it owes every server (the ring re-warm is for
 * finished files only). */
static void master_carry_masks(struct master *m, const struct memc_map *to, uint32_t ring)
{
    rewarm_carry(&m->rewarm, &m->map, to);
    for (struct treap_node *t = treap_first(&m->spool.names); t;
         t = treap_next(&m->spool.names, t)) {
        struct spool_file *f = treap_entry(t, struct spool_file, by_name);
        if (f->owed)
            f->owed = memc_map_carry(&m->map, to, f->owed) | master_type_servers(to, ring);
    }
}

static void master_reload(struct master *m)
{
    struct cfg n;
    struct memc_map map;
    char err[512];
    int exit_now;
    notify_reloading(&m->notify);
    int r = cfg_load(&n, m->argc, m->argv, err, sizeof(err), &exit_now);
    if (r || exit_now || memc_map_init(&map, &n, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
        notify_ready(&m->notify);
        return;
    }
    /* certificates and passwords are read again (rotation): new connections,
     * those of the new workers and probes, use them */
    if (mc_link_configure(&n, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
        memc_map_free(&map);
        notify_ready(&m->notify);
        return;
    }
    n.oneshot = m->cfg.oneshot;
    n.dry = m->cfg.dry;
    char ring_what[256];
    uint32_t ring = master_ring_changes(m, &map, &n, ring_what, sizeof(ring_what));
    struct cfg old = m->cfg;
    m->cfg = n;
    if (strcmp(n.pattern, old.pattern) != 0 && master_switch_spool(m) < 0) {
        m->cfg = old;
        memc_map_free(&map);
        notify_ready(&m->notify);
        return;
    }
    health_free(&m->health);
    master_carry_masks(m, &map, ring);
    m->ring_changed = ring;
    memc_map_free(&m->prev_map); /* workers of two reloads ago: see master_carry_result */
    m->prev_map = m->map;
    m->map = map;
    master_ring_rewarm(m, ring, ring_what);
    master_health_init(m); /* the servers may be others now */
    master_order_init(m);
    metrics_set_path(&m->metrics, m->cfg.metrics_file);
    m->retain_ms = 0; /* the new retention (or the new spool's) at once */
    log_set_level(n.log_level);
    pool_retire_all(&m->pool, io_now_ms());
    log_printf(LOG_INFO,
               "configuration reloaded; %d new workers take it, files in flight "
               "finish with the old one",
               n.workers);
    notify_ready(&m->notify);
}

/* ---- events -------------------------------------------------------------- */

static void master_on_signal(struct master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            master_stop(m, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        case SIGHUP:
            if (!m->stopping)
                master_reload(m);
            break;
        case SIGCHLD:
            pool_reap(&m->pool, io_now_ms());
            break;
        }
    }
}

static void master_on_inotify(struct master *m)
{
    int r = watch_read(&m->watch, master_on_name, m);
    if (r == -EOVERFLOW) {
        log_printf(LOG_WARNING, "inotify queue overflowed; rescanning %s", m->watch.dir);
        master_rescan(m);
    } else if (r < 0) {
        master_spool_gone(m);
    }
}

static void master_on_event(struct master *m, uint64_t tag)
{
    if (tag == TAG_SIG) {
        master_on_signal(m);
    } else if (tag == TAG_TIMER) {
        uint64_t ticks;
        if (read(m->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
            log_errno(LOG_WARNING, errno, "read(timerfd)");
    } else if (tag == TAG_INOTIFY) {
        master_on_inotify(m);
    } else if (tag >= TAG_PROBE && tag < TAG_PROBE + CFG_MAX_SERVERS) {
        int g = (int)(tag - TAG_PROBE);
        if (health_on_event(&m->health, g, io_now_ms()))
            master_on_restart(m, g);
    } else if (tag >= TAG_WORKER && tag < TAG_WORKER + POOL_MAX_WORKERS) {
        pool_on_readable(&m->pool, (int)(tag - TAG_WORKER));
    }
}

/* ---- setup, loop, exit ----------------------------------------------------- */

/* 0: run; an exit status (enum memc_exit); -EINTR: stopped before it
 * could start (exit 0). */
static int master_setup(struct master *m)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR ||
        (m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        (m->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (m->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
        log_printf(LOG_ERR, "cannot set up the event loop (signals, epoll, timerfd): %s",
                   strerror(errno));
        return MEMC_EXIT_FAILED; /* said why */
    }
    struct itimerspec its = {{0, 100000000}, {0, 100000000}};
    if (timerfd_settime(m->timerfd, 0, &its, NULL) < 0) {
        log_errno(LOG_ERR, errno, "timerfd_settime");
        return MEMC_EXIT_FAILED; /* said why */
    }
    if (master_poll_add(m, m->sigfd, TAG_SIG) < 0 || master_poll_add(m, m->timerfd, TAG_TIMER) < 0)
        return MEMC_EXIT_FAILED; /* said why */
    int r = master_open_watch(m, &m->watch, 1);
    if ((r == -ENOENT || r == -ENOTDIR) && m->cfg.oneshot) {
        log_printf(LOG_ERR, "spool directory %s does not exist", m->watch.dir);
        return MEMC_EXIT_NOINPUT;
    }
    if (r == -ENOENT || r == -ENOTDIR)
        log_printf(LOG_WARNING, "spool directory %s does not exist (yet); waiting for it",
                   m->watch.dir);
    else if (r < 0)
        return MEMC_EXIT_FAILED; /* said why */
    if (r == 0 && (r = master_lock(m, &m->watch, 1)) < 0)
        return r == -EINTR ? -EINTR : MEMC_EXIT_TEMPFAIL;
    if (m->watch.infd >= 0 && master_poll_add(m, m->watch.infd, TAG_INOTIFY) < 0)
        return MEMC_EXIT_FAILED; /* said why */
    spool_init(&m->spool, m->watch.dirfd, m->watch.dir, m->cfg.settle_ms);
    m->spool.aside_fn = master_on_aside;
    m->spool.aside_ctx = m;
    struct pool_events ev = {m, master_on_result, master_on_turn, master_on_died, master_in_child};
    pool_init(&m->pool, &m->cfg, m->epfd, TAG_WORKER, &ev, m->worker);
    master_health_init(m);
    master_order_init(m);
    metrics_init(&m->metrics, &m->cfg);
    return 0;
}

static void master_loop(struct master *m)
{
    master_rescan(m);
    char note[128]; /* said once: a one-shot run must not wait silently */
    if (master_settle_note(m, note, sizeof(note), io_now_ms())[0])
        log_printf(LOG_INFO, "%s", note);
    pool_fill(&m->pool, io_now_ms());
    for (;;) {
        struct epoll_event evs[32];
        int n = epoll_wait(m->epfd, evs, 32, 1000);
        if (n < 0 && errno != EINTR) {
            log_errno(LOG_ERR, errno, "epoll_wait");
            m->exit_code = 1;
            master_stop(m, "event loop failed");
        }
        for (int i = 0; i < n; i++)
            master_on_event(m, evs[i].data.u64);
        master_dispatch(m);
        spool_renames(&m->spool, io_now_ms());
        master_checks(m);
        if (m->cfg.oneshot && !m->stopping && m->ready_sent && !spool_unfinished(&m->spool)) {
            m->stopping = 1; /* quietly: every worker is idle and told to QUIT */
            m->stop_started_ms = io_now_ms();
            pool_stop(&m->pool);
        }
        if (m->stopping && pool_count(&m->pool, 0) + pool_count(&m->pool, 1) == 0)
            return;
    }
}

static int master_exit_code(struct master *m)
{
    int code = m->exit_code;
    if (m->cfg.oneshot && !code) {
        int failed = m->spool.set_aside || m->failed;
        const size_t *n = m->spool.count; /* not renamed is left too */
        int left = n[SPOOL_LEFT] || spool_unfinished(&m->spool) || n[SPOOL_DONE] || n[SPOOL_BAD] ||
                   n[SPOOL_STUCK];
        code = failed ? MEMC_EXIT_FAILED : left ? MEMC_EXIT_TEMPFAIL : 0;
    }
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    log_printf(LOG_INFO, "exiting with status %d (master peak RSS %ld KiB)", code, self.ru_maxrss);
    return code;
}

static void master_free(struct master *m)
{
    log_set_stderr_hook(NULL, NULL);
    report_free(&m->report);
    if (m->health.map) /* set up: an early exit (no spool, the lock held) has no probes */
        health_free(&m->health);
    rewarm_free(&m->rewarm);
    spool_free(&m->spool);
    memc_map_free(&m->map);
    memc_map_free(&m->prev_map);
    watch_close(&m->watch);
    if (m->epfd >= 0)
        close(m->epfd);
    if (m->sigfd >= 0)
        close(m->sigfd);
    if (m->timerfd >= 0)
        close(m->timerfd);
    notify_close(&m->notify);
    free(m);
}

int master_run(const struct cfg *c, int argc, char **argv, pool_proc_fn worker)
{
    struct master *m = calloc(1, sizeof(*m));
    char err[512];
    int code = 1;
    if (!m)
        return 1;
    m->cfg = *c;
    m->argc = argc;
    m->argv = argv;
    m->worker = worker;
    m->sigfd = m->epfd = m->timerfd = -1;
    m->watch.dirfd = m->watch.infd = -1;
    spool_init(&m->spool, -1, "", c->settle_ms);
    notify_init(&m->notify);
    /* On a terminal the progress lines and the summary table replace the
     * per-file info lines; warnings and errors still show. */
    report_init(&m->report, c->oneshot && isatty(STDERR_FILENO));
    if (m->report.tty) {
        log_set_stderr_hook(report_tty_erase, &m->report);
        if (c->log_level == CFG_LOG_INFO)
            log_set_level(LOG_WARNING);
    }
    /* the servers, then how to reach them (TLS, auth: the workers inherit) */
    if (memc_map_init(&m->map, c, err, sizeof(err)) < 0 ||
        mc_link_configure(c, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "%s", err);
        code = MEMC_EXIT_CONFIG;
    } else if ((code = master_setup(m)) == 0) {
        master_loop(m);
        spool_renames(&m->spool, INT64_MAX); /* a last try, whatever the back-off */
        metrics_exit(&m->metrics, &m->spool, &m->pool, &m->health, &m->rewarm, &m->map,
                     io_wall_us() / 1000000);
        char note[600];
        report_status(&m->report, &m->spool, &m->pool, &m->map, master_note(m, note, sizeof(note)),
                      m->stopping, &m->notify, 1);
        if (m->report.tty)
            report_tty_summary(&m->report);
        code = master_exit_code(m);
    } else {
        code = code == -EINTR ? MEMC_EXIT_OK : code; /* stopped while waiting for the lock */
    }
    master_free(m);
    return code;
}

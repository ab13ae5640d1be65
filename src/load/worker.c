/*
 * worker.c — the worker process loop.
 *
 * The worker's main thread is the pipeline's reader, so it is also the one
 * that talks to the master: between blocks (and every 100 ms while waiting
 * for the writer) the pipeline calls worker_tick(), which sends progress
 * twice a second and turns a SIGTERM into "stop at a batch boundary".  The
 * pipeline's threads are started with every signal blocked, so signals are
 * always delivered to this thread and interrupt its blocking recvmsg().
 *
 * During a load the socket is read by the writer thread alone, and only
 * for the write order: worker_turn() asks the master for servers it holds
 * no turn for (IPC_TURN) and waits for IPC_GRANT.  Between loads the main
 * thread reads it (a late GRANT of a finished job is ignored there).
 */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "ipc.h"
#include "log.h"
#include "write.h"
#include "pipeline.h"
#include "proto.h"
#include "sample.h"
#include "rate.h"
#include "readback.h"
#include "stats.h"

static volatile sig_atomic_t worker_stop;

static void worker_on_term(int sig)
{
    (void)sig;
    worker_stop = 1;
}

struct worker_ctx {
    int sock;
    uint32_t job;
    struct pipe *pipe;
    int64_t last_sent_ms;
    uint32_t down_hint; /* IPC_LOAD: servers the master's probe finds down */
};

static int worker_tick(void *arg, const struct pipe_stats *now)
{
    struct worker_ctx *w = arg;
    int64_t t = io_now_ms();
    if (t - w->last_sent_ms >= 500) {
        struct ipc_msg m;
        memset(&m, 0, sizeof(m));
        m.type = IPC_PROGRESS;
        m.job = w->job;
        m.down_mask = pipe_down_mask(w->pipe);
        m.st = *now;
        ipc_send(w->sock, &m, -1);
        w->last_sent_ms = t;
    }
    return worker_stop;
}

/* The writer needs servers it holds no turn for: ask, and wait for the
 * master's answer (a stop request gives up: the rest is deferred). */
static uint32_t worker_turn(void *arg, uint32_t need, uint32_t *refused)
{
    struct worker_ctx *w = arg;
    struct ipc_msg m;
    memset(&m, 0, sizeof(m));
    m.type = IPC_TURN;
    m.job = w->job;
    m.want_mask = need;
    uint32_t got = 0, no = 0;
    if (ipc_send(w->sock, &m, -1) < 0)
        worker_stop = 1; /* the master is gone */
    while ((need & ~(got | no)) && !worker_stop) {
        struct pollfd pfd = {.fd = w->sock, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = -1;
        int r = ipc_recv(w->sock, &m, &fd, MSG_DONTWAIT);
        if (fd >= 0)
            close(fd);
        if (r == 0)
            worker_stop = 1;
        if (r > 0 && m.type == IPC_GRANT && m.job == w->job) {
            got |= m.grant_mask;
            no |= m.refuse_mask;
        }
    }
    *refused = no | (need & ~(got | no));
    return got;
}

/* ---- after a load: evictions and the read-back ---------------------------- */

/* `stats` of every server that is up, before a load: not those this
 * worker found down, nor those the master's health probe finds down (a
 * hung server would cost every file io_timeout_ms here); not of a
 * classic-protocol type's (a proxy's `stats` counts no evictions of a
 * memcached): those stay !ok, so worker_stats_after skips them too. */
static void worker_stats_before(const struct cfg *c, const struct memc_map *map, struct pipe *pipe,
                                uint32_t down, struct mc_stats *before)
{
    uint32_t all = memc_map_stats_mask(map);
    memset(before, 0, sizeof(*before) * (size_t)map->nservers);
    uint32_t ask = all & ~(pipe_down_mask(pipe) | down);
    for (int g = 0; g < map->nservers; g++)
        if ((all & ~ask) >> g & 1)
            log_printf(LOG_DEBUG, "worker: no stats of %s before this load: it is down",
                       map->servers[g].name);
    if (ask && mc_stats_fetch(map, ask, c->io_timeout_ms, before) < 0)
        memset(before, 0, sizeof(*before) * (size_t)map->nservers);
}

static void worker_evicted(const struct memc_server *srv, const char *esc, uint64_t n,
                           const struct mc_stats *now)
{
    struct log_fields lf = LOG_FIELDS_INIT(LOG_WARNING);
    log_field(&lf, "MEMC_FILE=%s", esc);
    log_field(&lf, "MEMC_SERVER=%s", srv->name);
    log_field(&lf, "MEMC_DEVICE_TYPE=%s", cfg_type_name(srv->type));
    log_field(&lf, "MEMC_EVICTIONS=%llu", (unsigned long long)n);
    log_struct(LOG_WARNING, LOG_MSGID_EVICTIONS, &lf,
               "memcached %s (%s) evicted %llu items while %s was loaded: its memory (%llu MiB, "
               "%llu items) is full, so keys of this file or older ones are gone. Give it more "
               "memory (memcached -m MEGABYTES) or add %s servers, then load the file again "
               "(rename .%s back to %s)",
               srv->name, cfg_type_name(srv->type), (unsigned long long)n, esc,
               (unsigned long long)(now->limit_maxbytes >> 20), (unsigned long long)now->curr_items,
               cfg_type_name(srv->type), esc, esc);
}

/* The servers in bits whose `stats` were read before the load: only
 * those can be compared after it. */
static uint32_t worker_known(const struct memc_map *map, const struct mc_stats *before,
                             uint32_t bits)
{
    uint32_t mask = 0;
    for (int g = 0; g < map->nservers; g++)
        if ((bits >> g & 1) && before[g].ok)
            mask |= 1u << g;
    return mask;
}

/* `stats` again on the servers the file wrote to: a grown eviction count
 * is a warning and goes into st->evictions.  A counter that went down is a
 * restarted server (the load says so on its own). */
static void worker_stats_after(const struct cfg *c, const struct memc_map *map, const char *esc,
                               const struct mc_stats *before, struct pipe_stats *st)
{
    struct mc_stats after[CFG_MAX_SERVERS];
    uint32_t mask = worker_known(map, before, st->wrote_mask);
    if (!mask || mc_stats_fetch(map, mask, c->io_timeout_ms, after) < 0)
        return;
    for (int g = 0; g < map->nservers; g++) {
        if (!(mask >> g & 1) || !after[g].ok || after[g].evictions <= before[g].evictions)
            continue;
        uint64_t n = after[g].evictions - before[g].evictions;
        st->evictions += n;
        worker_evicted(&map->servers[g], esc, n, &after[g]);
    }
}

/*
 * A server that failed after acknowledging records of this load (its
 * connection closed, or an answer came later than io_timeout_ms and the
 * batch went again on a new connection) lost them only if it restarted:
 * memcached keeps its items across connections.  Its `stats` now and
 * before the load say whether it is the same process; if so, nothing
 * it acknowledged is lost and the file does not owe it a reload (under
 * packet loss such files were loaded again and again).  A server with no
 * `stats` before, or none now, still owes it.
 */
static void worker_lost_check(const struct cfg *c, const struct memc_map *map,
                              const struct mc_stats *before, struct pipe_stats *st)
{
    struct mc_stats now[CFG_MAX_SERVERS];
    uint32_t ask = worker_known(map, before, st->lost_mask);
    if (!ask || mc_stats_fetch(map, ask, c->io_timeout_ms, now) < 0)
        return;
    for (int g = 0; g < map->nservers; g++) {
        const struct mc_stats *b = &before[g], *a = &now[g];
        if (!(ask >> g & 1) || !a->ok ||
            !mc_same_instance(b->pid, b->time - b->uptime, a->pid, a->time - a->uptime))
            continue;
        st->lost_mask &= ~(1u << g);
        log_printf(LOG_INFO,
                   "memcached %s (%s) failed during the load but did not restart (pid %lld, "
                   "the same): the records it acknowledged are kept",
                   map->servers[g].name, cfg_type_name(map->servers[g].type), a->pid);
    }
    st->possibly_lost = st->lost_mask != 0;
    if (st->status == PIPE_INCOMPLETE && !st->deferred && !st->possibly_lost)
        st->status = PIPE_DONE;
}

/* "idfa 127.0.0.1:33013: 3 missing, 1 different (e.g. idfa:x missing, ...)" */
static int worker_miss_text(char *buf, size_t len, const struct memc_map *map,
                            const struct vfy_result *r)
{
    int off = 0;
    for (int g = 0; g < r->nservers; g++) {
        const struct vfy_server *s = &r->srv[g];
        if (!s->missing && !s->different)
            continue;
        if (off < (int)len)
            off += snprintf(buf + off, len - (size_t)off, "; %s %s: %u missing, %u different",
                            cfg_type_name(map->servers[g].type), map->servers[g].name, s->missing,
                            s->different);
        for (int i = 0; i < s->nex && off < (int)len; i++) {
            char k[96];
            log_escape(s->ex[i].key, strlen(s->ex[i].key), k, sizeof(k));
            off += snprintf(buf + off, len - (size_t)off, "%s%s %s", i ? ", " : " (e.g. ", k,
                            s->ex[i].missing ? "missing" : "different");
        }
        if (s->nex && off < (int)len)
            off += snprintf(buf + off, len - (size_t)off, ")");
    }
    return off;
}

/* Read the load's sample back; counts into st, a warning for any miss. */
static void worker_verify(const struct cfg *c, const struct memc_map *map, struct pipe *pipe,
                          const char *esc, struct pipe_stats *st)
{
    const struct smp *s = pipe_sample(pipe);
    struct vfy_result *r = s && s->n ? malloc(sizeof(*r)) : NULL;
    if (!r || vfy_readback(s, map, c->io_timeout_ms, r) < 0) {
        free(r);
        return;
    }
    st->verify_sampled = r->sampled - r->expired; /* expired: not expected there */
    st->verify_missing = r->missing;
    st->verify_different = r->different;
    if (r->missing || r->different) {
        char miss[1536] = "";
        struct log_fields lf = LOG_FIELDS_INIT(LOG_WARNING);
        worker_miss_text(miss, sizeof(miss), map, r);
        log_field(&lf, "MEMC_FILE=%s", esc);
        log_field(&lf, "MEMC_VERIFY_SAMPLED=%u", r->sampled);
        log_field(&lf, "MEMC_VERIFY_MISSING=%u", r->missing);
        log_field(&lf, "MEMC_VERIFY_DIFFERENT=%u", r->different);
        log_struct(LOG_WARNING, LOG_MSGID_VERIFY_MISS, &lf,
                   "%s: read back %u sampled records right after the load: %u missing, "
                   "%u different%s",
                   esc, r->sampled, r->missing, r->different, miss);
    }
    free(r);
}

/* One file: stats, the load, then (a complete load, not a dry run) the
 * evictions and the read-back. */
static void worker_load(const struct cfg *c, const struct memc_map *map, struct worker_ctx *w,
                        int fd, const char *name, struct pipe_stats *st)
{
    struct mc_stats before[CFG_MAX_SERVERS];
    char esc[LOG_NAME_LEN];
    int check = !c->dry;
    if (check)
        worker_stats_before(c, map, w->pipe, w->down_hint, before);
    pipe_load(w->pipe, fd, st, worker_tick, w);
    if (check && st->lost_mask)
        worker_lost_check(c, map, before, st);
    if (!check || st->status != PIPE_DONE)
        return;
    log_name(name, esc, sizeof(esc));
    worker_stats_after(c, map, esc, before, st);
    if (c->verify_sample > 0)
        worker_verify(c, map, w->pipe, esc, st);
}

int worker_main(const struct cfg *c, int sock)
{
    struct memc_map map;
    struct pipe *pipe = NULL;
    char err[256];
    sigset_t all, old;
    int code = 1;

    /* If the master dies, so do we: a new master reloads unfinished files. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1;
    struct sigaction sa = {.sa_handler = worker_on_term}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    if (memc_map_init(&map, c, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "worker: %s", err);
        return 1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pipe_create(&pipe, c, &map);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r == 0 && c->verify_sample > 0 && !c->dry) {
        uint64_t seed = (uint64_t)io_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        r = pipe_sample_enable(pipe, c->verify_sample, seed, 0);
    }
    if (r < 0) {
        log_printf(LOG_ERR, "worker: cannot start pipeline: %s", strerror(-r));
        goto out;
    }

    struct worker_ctx w = {.sock = sock, .pipe = pipe};
    pipe_set_turn(pipe, worker_turn, &w);
    struct ipc_msg m;
    memset(&m, 0, sizeof(m));
    m.type = IPC_HELLO;
    if (ipc_send(sock, &m, -1) < 0)
        goto out;
    while (!worker_stop) {
        int fd;
        r = ipc_recv(sock, &m, &fd, 0);
        if (r == -EINTR)
            continue;
        if (r <= 0 || m.type == IPC_QUIT) {
            code = 0; /* master closed or told us to go */
            break;
        }
        if (m.type != IPC_LOAD || fd < 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        pipe_set_rate(pipe, rate_effective((uint64_t)c->max_rate, (uint64_t)c->rewarm_max_rate,
                                           m.rewarm != 0));
        w.job = m.job;
        w.down_hint = m.down_mask;
        w.last_sent_ms = io_now_ms();
        pipe_set_only(pipe, m.only_mask, m.ring_types);
        pipe_set_file_time(pipe, m.file_time_s);
        struct ipc_msg res;
        memset(&res, 0, sizeof(res));
        m.name[sizeof(m.name) - 1] = 0;
        worker_load(c, &map, &w, fd, m.name, &res.st);
        close(fd);
        res.type = IPC_RESULT;
        res.job = m.job;
        res.down_mask = pipe_down_mask(pipe);
        if (ipc_send(sock, &res, -1) < 0)
            break;
    }
    if (worker_stop)
        code = 0;
out:
    pipe_destroy(pipe);
    memc_map_free(&map);
    return code;
}

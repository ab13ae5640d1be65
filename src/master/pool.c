/*
 * pool.c — the worker process table (see pool.h).
 *
 * Every system call is checked where it is made and its message names it;
 * functions return -errno.  The fast-death back-off doubles from 200 ms to
 * 10 s while workers keep dying within 2 s of their start (a bad config, an
 * OOM loop), so a broken worker cannot turn the master into a fork bomb.
 */
#include "pool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "log.h"

void pool_init(struct pool *p, const struct cfg *cfg, int epfd, uint64_t tag,
               const struct pool_events *ev, pool_proc_fn proc)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->epfd = epfd;
    p->tag = tag;
    p->ev = *ev;
    p->proc = proc;
}

int pool_count(const struct pool *p, int retiring)
{
    int n = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        if (p->w[i].pid > 0 && p->w[i].retiring == retiring)
            n++;
    return n;
}

static int pool_count_retiring_busy(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        n += p->w[i].pid > 0 && p->w[i].busy && p->w[i].retiring;
    return n;
}

int pool_count_busy(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        n += p->w[i].pid > 0 && p->w[i].busy;
    return n;
}

int pool_all_ready(const struct pool *p)
{
    if (pool_count(p, 0) < p->cfg->workers)
        return 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        if (p->w[i].pid > 0 && !p->w[i].ready)
            return 0;
    return 1;
}

/* The new process: keep only our end of our socket, then be a worker. */
static void pool_child(struct pool *p, int sock)
{
    p->ev.in_child(p->ev.ctx);
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        if (p->w[i].pid > 0)
            close(p->w[i].sock);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    log_set_stderr_hook(NULL, NULL); /* the progress display is the master's */
    _exit(p->proc(p->cfg, sock));
}

static int pool_spawn(struct pool *p, int64_t now)
{
    int slot = -1;
    for (int i = 0; i < POOL_MAX_WORKERS && slot < 0; i++)
        if (p->w[i].pid == 0)
            slot = i;
    if (slot < 0)
        return -EAGAIN;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return log_errno(LOG_ERR, errno, "cannot start a worker: socketpair");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = p->tag + (uint64_t)slot};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, sv[0], &ev) < 0) {
        int e = log_errno(LOG_ERR, errno, "cannot start a worker: epoll_ctl");
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = log_errno(LOG_ERR, errno, "cannot start a worker: fork");
        close(sv[0]); /* also leaves the epoll set */
        close(sv[1]);
        return e;
    }
    if (pid == 0) {
        close(sv[0]);
        pool_child(p, sv[1]);
    }
    close(sv[1]);
    struct pool_worker *w = &p->w[slot];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->sock = sv[0];
    w->started_ms = now;
    w->gen = p->gen;
    log_printf(LOG_DEBUG, "worker %d started", (int)pid);
    return 0;
}

void pool_fill(struct pool *p, int64_t now)
{
    if (p->stopping || now < p->respawn_at_ms)
        return;
    /* a retiring worker still loading holds its slot: files loading at once
     * never exceed `workers`, whatever the number of reloads */
    while (pool_count(p, 0) + pool_count_retiring_busy(p) < p->cfg->workers)
        if (pool_spawn(p, now) < 0) {
            p->respawn_at_ms = now + 1000;
            return;
        }
}

struct pool_worker *pool_idle(struct pool *p)
{
    if (p->stopping)
        return NULL;
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->pid > 0 && w->ready && !w->busy && !w->retiring)
            return w;
    }
    return NULL;
}

int pool_load(struct pool *p, struct pool_worker *w, struct spool_file *f, const char *name, int fd,
              uint32_t only_mask, uint32_t ring_types, int64_t file_time_s, int64_t now)
{
    struct ipc_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = IPC_LOAD;
    msg.job = ++p->next_job;
    msg.only_mask = only_mask;
    msg.down_mask = p->down_hint;
    msg.ring_types = ring_types;
    msg.rewarm = f == NULL; /* the re-warm path: a restart, a ring change, a late file's replay */
    msg.file_time_s = file_time_s;
    snprintf(msg.name, sizeof(msg.name), "%s", name);
    int r = ipc_send(w->sock, &msg, fd);
    if (r < 0) {
        log_printf(LOG_ERR, "cannot hand a file to worker %d: sendmsg: %s", (int)w->pid,
                   strerror(-r));
        w->ready = 0; /* not idle any more: its death is reaped */
        return r;
    }
    w->busy = 1;
    w->file = f;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->job = msg.job;
    w->last_change_ms = now;
    memset(&w->progress, 0, sizeof(w->progress));
    w->ord = (struct order_load){.name = f ? w->name : NULL, .may = only_mask ? only_mask : ~0u};
    w->told_granted = w->told_refused = 0;
    return 0;
}

void pool_grant(struct pool *p, struct pool_worker *w)
{
    (void)p;
    uint32_t g = w->ord.granted & ~w->told_granted, r = w->ord.refused & ~w->told_refused;
    if (!w->busy || !(g | r))
        return;
    struct ipc_msg msg;
    memset(&msg, 0, sizeof(msg));
    msg.type = IPC_GRANT;
    msg.job = w->job;
    msg.grant_mask = g;
    msg.refuse_mask = r;
    int e = ipc_send(w->sock, &msg, -1);
    if (e < 0) /* it is dying already: SIGCHLD follows */
        log_printf(LOG_DEBUG, "worker %d: sending GRANT: %s", (int)w->pid, strerror(-e));
    w->told_granted |= g;
    w->told_refused |= r;
}

/* Waiting for a turn is not a stall: the master holds it back. */
static int pool_waiting(const struct pool_worker *w)
{
    return (w->ord.want & ~w->ord.granted & ~w->ord.refused) != 0;
}

static void pool_quit(struct pool_worker *w)
{
    struct ipc_msg q;
    memset(&q, 0, sizeof(q));
    q.type = IPC_QUIT;
    int r = ipc_send(w->sock, &q, -1);
    if (r < 0) /* it is dying already: SIGCHLD follows */
        log_printf(LOG_DEBUG, "worker %d: sending QUIT: %s", (int)w->pid, strerror(-r));
}

/* Stop listening to a socket whose peer is gone; SIGCHLD does the rest. */
static void pool_unwatch(struct pool *p, struct pool_worker *w)
{
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->sock, NULL) < 0 && errno != ENOENT)
        log_errno(LOG_WARNING, errno, "worker %d: epoll_ctl(DEL)", (int)w->pid);
}

static int pool_progressed(const struct pipe_stats *a, const struct pipe_stats *b)
{
    return a->bytes_in != b->bytes_in || a->stored != b->stored || a->errors != b->errors ||
           a->deferred != b->deferred || a->lines != b->lines || a->let_go != b->let_go;
}

static void pool_on_message(struct pool *p, struct pool_worker *w, const struct ipc_msg *msg)
{
    struct spool_file *f = w->file;
    switch (msg->type) {
    case IPC_HELLO:
        w->ready = 1;
        break;
    case IPC_PROGRESS:
        if (w->busy && msg->job == w->job) {
            if (pool_progressed(&msg->st, &w->progress))
                w->last_change_ms = io_now_ms();
            w->progress = msg->st;
            w->down_mask = msg->down_mask;
        }
        break;
    case IPC_TURN:
        if (w->busy && msg->job == w->job && (msg->want_mask & ~w->ord.want)) {
            w->ord.want |= msg->want_mask;
            w->last_change_ms = io_now_ms();
            p->ev.turn(p->ev.ctx);
        }
        break;
    case IPC_RESULT: {
        if (!w->busy || msg->job != w->job)
            break;
        uint32_t late = w->ord.late;
        w->busy = 0;
        w->file = NULL;
        w->down_mask = msg->down_mask;
        memset(&w->ord, 0, sizeof(w->ord));
        if (w->retiring || p->stopping)
            pool_quit(w);
        p->ev.result(p->ev.ctx, f, msg, late, p->gen - w->gen);
        break;
    }
    }
}

void pool_on_readable(struct pool *p, int slot)
{
    struct pool_worker *w = &p->w[slot];
    struct ipc_msg msg;
    int fd;
    while (w->pid > 0) {
        int r = ipc_recv(w->sock, &msg, &fd, MSG_DONTWAIT);
        if (fd >= 0)
            close(fd);
        if (r == -EINTR)
            continue;
        if (r == -EAGAIN)
            return;
        if (r <= 0) {
            pool_unwatch(p, w);
            return;
        }
        pool_on_message(p, w, &msg);
    }
}

static void pool_gone(struct pool *p, struct pool_worker *w, int status, const struct rusage *ru,
                      int64_t now)
{
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
    int expected = p->stopping || w->retiring;
    if (w->busy) {
        memset(&w->ord, 0, sizeof(w->ord)); /* its turns are free again */
        p->ev.died(p->ev.ctx, w->file, w->pid, why);
    } else if (!expected) {
        struct log_fields lf = LOG_FIELDS_INIT(LOG_ERR);
        log_field(&lf, "MEMC_WORKER_PID=%d", (int)w->pid);
        log_struct(LOG_ERR, LOG_MSGID_WORKER_DIED, &lf, "worker %d %s while idle", (int)w->pid,
                   why);
    } else {
        log_printf(LOG_INFO, "worker %d %s (peak RSS %ld KiB, CPU %.2f s user %.2f s system)",
                   (int)w->pid, why, ru->ru_maxrss,
                   (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6,
                   (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6);
    }
    if (!expected) {
        p->restarts++;
        /* back off if workers die right after starting (bad config, OOM) */
        if (now - w->started_ms < 2000) {
            p->fast_deaths++;
            int64_t delay = 100LL << (p->fast_deaths > 7 ? 7 : p->fast_deaths);
            p->respawn_at_ms = now + (delay > 10000 ? 10000 : delay);
        } else {
            p->fast_deaths = 0;
        }
    }
    pool_unwatch(p, w);
    close(w->sock);
    memset(w, 0, sizeof(*w));
}

void pool_reap(struct pool *p, int64_t now)
{
    int status;
    pid_t pid;
    struct rusage ru;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        for (int i = 0; i < POOL_MAX_WORKERS; i++)
            if (p->w[i].pid == pid) {
                pool_gone(p, &p->w[i], status, &ru, now);
                break;
            }
    }
}

static void pool_kill(struct pool_worker *w, int sig)
{
    if (kill(w->pid, sig) < 0 && errno != ESRCH)
        log_printf(LOG_ERR, "kill(worker %d, %s): %s", (int)w->pid, strsignal(sig),
                   strerror(errno));
}

void pool_check_stalls(struct pool *p, int64_t now)
{
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->pid <= 0 || !w->busy || now - w->last_change_ms <= p->cfg->stall_timeout_s * 1000LL)
            continue;
        if (pool_waiting(w)) {
            w->last_change_ms = now; /* its stall clock starts when it gets the turn */
            continue;
        }
        char esc[LOG_NAME_LEN];
        log_printf(LOG_ERR, "worker %d made no progress on %s for %d s; killing it", (int)w->pid,
                   log_name(w->name, esc, sizeof(esc)), p->cfg->stall_timeout_s);
        pool_kill(w, SIGKILL);
        w->last_change_ms = now; /* don't repeat until reaped */
    }
}

void pool_retire_all(struct pool *p, int64_t now)
{
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->pid <= 0)
            continue;
        w->retiring = 1;
        if (!w->busy)
            pool_quit(w);
    }
    p->gen++;
    p->fast_deaths = 0;
    p->respawn_at_ms = 0;
    pool_fill(p, now);
}

void pool_stop(struct pool *p)
{
    p->stopping = 1;
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        struct pool_worker *w = &p->w[i];
        if (w->pid <= 0)
            continue;
        if (w->busy)
            pool_kill(w, SIGTERM); /* abort at a batch boundary */
        else
            pool_quit(w);
    }
}

void pool_kill_all(struct pool *p)
{
    for (int i = 0; i < POOL_MAX_WORKERS; i++)
        if (p->w[i].pid > 0)
            pool_kill(&p->w[i], SIGKILL);
}

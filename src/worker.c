/*
 * worker.c — the worker process loop.
 *
 * The worker's main thread is the pipeline's reader, so it is also the one
 * that talks to the master: between blocks (and every 100 ms while waiting
 * for the writer) the pipeline calls worker_tick(), which sends progress
 * twice a second and turns a SIGTERM into "stop at a batch boundary".  The
 * pipeline's threads are started with every signal blocked, so signals are
 * always delivered to this thread and interrupt its blocking recvmsg().
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "io.h"
#include "ipc.h"
#include "log.h"
#include "memc.h"
#include "pipeline.h"

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
    if (r < 0) {
        log_printf(LOG_ERR, "worker: cannot start pipeline: %s", strerror(-r));
        goto out;
    }

    struct worker_ctx w = {.sock = sock, .pipe = pipe};
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
        w.job = m.job;
        w.last_sent_ms = io_now_ms();
        struct ipc_msg res;
        memset(&res, 0, sizeof(res));
        pipe_load(pipe, fd, &res.st, worker_tick, &w);
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

/*
 * xchg.c — one request/answer exchange with many servers at once (xchg.h):
 * a small poll() loop that connects, writes the whole request and feeds
 * the answers to a parser as they come, so neither side can block the
 * other on full buffers.
 */
#include "xchg.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "io.h"

static void xchg_fail(struct mc_xchg *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void xchg_fail(struct mc_xchg *io, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(io->why, sizeof(io->why), fmt, ap);
    va_end(ap);
    io->state = MC_XCHG_FAILED;
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

static void xchg_connect(struct mc_xchg *io)
{
    char why[160];
    int connecting = 0;
    int fd = memc_dial(io->srv, &connecting, why, sizeof(why));
    io->last_ms = io_now_ms();
    if (fd < 0) {
        xchg_fail(io, "%s", why);
        return;
    }
    io->fd = fd;
    io->connecting = connecting;
}

/* Read what the socket has and let the parser eat whole answers. */
static void xchg_read(struct mc_xchg *io, int i, mc_xchg_parse_fn parse, void *ctx)
{
    if (io->ilen == io->icap) {
        size_t cap = io->icap ? io->icap * 2 : 65536;
        char *b = realloc(io->in, cap);
        if (!b) {
            xchg_fail(io, "%s", "out of memory");
            return;
        }
        io->in = b;
        io->icap = cap;
    }
    ssize_t n = recv(io->fd, io->in + io->ilen, io->icap - io->ilen, 0);
    if (n == 0)
        xchg_fail(io, "%s", "connection closed by the server");
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        xchg_fail(io, "read: %s", strerror(errno));
    if (n <= 0)
        return;
    io->ilen += (size_t)n;
    io->last_ms = io_now_ms();
    int done = 0;
    long used = parse(ctx, i, io->in, io->ilen, &done, io->why, sizeof(io->why));
    if (used < 0) {
        io->state = MC_XCHG_FAILED;
        close(io->fd);
        io->fd = -1;
        return;
    }
    memmove(io->in, io->in + used, io->ilen - (size_t)used);
    io->ilen -= (size_t)used;
    if (done) {
        io->state = MC_XCHG_DONE;
        close(io->fd);
        io->fd = -1;
    }
}

/* After poll(): finish a connect, write more, read answers. */
static void xchg_step(struct mc_xchg *io, int i, short rev, mc_xchg_parse_fn parse, void *ctx)
{
    if (io->connecting && (rev & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            xchg_fail(io, "connect: %s", strerror(err));
            return;
        }
        io->connecting = 0;
        io->last_ms = io_now_ms();
    }
    if (!io->connecting && io->ooff < io->olen && (rev & (POLLOUT | POLLERR | POLLHUP))) {
        ssize_t n = send(io->fd, io->out + io->ooff, io->olen - io->ooff, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            xchg_fail(io, "write: %s", strerror(errno));
            return;
        }
        if (n > 0) {
            io->ooff += (size_t)n;
            io->last_ms = io_now_ms();
        }
    }
    if (!io->connecting && (rev & (POLLIN | POLLERR | POLLHUP)))
        xchg_read(io, i, parse, ctx);
}

/* Run the exchanges of every io in state RUN until each is done or failed;
 * a server that makes no progress for timeout_ms fails. */
void mc_xchg_run(struct mc_xchg *ios, int n, int timeout_ms, mc_xchg_parse_fn parse, void *ctx)
{
    for (int i = 0; i < n; i++)
        if (ios[i].state == MC_XCHG_RUN)
            xchg_connect(&ios[i]);
    for (;;) {
        struct pollfd pfd[CFG_MAX_SERVERS];
        int idx[CFG_MAX_SERVERS], k = 0;
        int64_t now = io_now_ms();
        for (int i = 0; i < n; i++) {
            struct mc_xchg *io = &ios[i];
            if (io->state != MC_XCHG_RUN)
                continue;
            if (now - io->last_ms > timeout_ms) {
                xchg_fail(io, "no answer for %d ms", timeout_ms);
                continue;
            }
            int want_out = io->connecting || io->ooff < io->olen;
            pfd[k] = (struct pollfd){io->fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0};
            idx[k++] = i;
        }
        if (!k)
            return;
        if (poll(pfd, (nfds_t)k, 100) < 0 && errno != EINTR)
            return;
        for (int j = 0; j < k; j++)
            if (pfd[j].revents)
                xchg_step(&ios[idx[j]], idx[j], pfd[j].revents, parse, ctx);
    }
}

void mc_xchg_init(struct mc_xchg *ios, const struct memc_map *map)
{
    memset(ios, 0, sizeof(*ios) * (size_t)map->nservers);
    for (int g = 0; g < map->nservers; g++) {
        ios[g].srv = &map->servers[g];
        ios[g].fd = -1;
    }
}

void mc_xchg_free(struct mc_xchg *ios, int n)
{
    for (int i = 0; i < n; i++) {
        if (ios[i].fd >= 0)
            close(ios[i].fd);
        free(ios[i].out);
        free(ios[i].in);
    }
}

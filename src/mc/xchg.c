/*
 * xchg.c — one request/answer exchange with many servers at once (xchg.h):
 * a small poll() loop that connects, writes the whole request and feeds
 * the answers to a parser as they come, so neither side can block the
 * other on full buffers.  A link still in setup (TLS handshake,
 * authentication) is stepped in the same loop.
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
#include "proto.h"
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
    mc_link_close(&io->link);
    io->fd = -1;
}

static void xchg_connect(struct mc_xchg *io, int timeout_ms)
{
    char why[256];
    io->last_ms = io_now_ms();
    if (mc_link_start(&io->link, io->srv, timeout_ms, why, sizeof(why)) < 0) {
        xchg_fail(io, "%s", why);
        return;
    }
    io->fd = io->link.fd;
}

static void xchg_finish(struct mc_xchg *io, int state)
{
    io->state = state;
    mc_link_close(&io->link);
    io->fd = -1;
}

/* Read what the link has (and what TLS holds decrypted) and let the parser
 * eat whole answers. */
static void xchg_read(struct mc_xchg *io, int i, mc_xchg_parse_fn parse, void *ctx)
{
    char why[256];
    do {
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
        ssize_t n =
            mc_link_recv(&io->link, io->in + io->ilen, io->icap - io->ilen, why, sizeof(why));
        if (n == -EAGAIN)
            return;
        if (n == 0 && !io->answered && io->srv->protocol != CFG_PROTO_CLASSIC && io->olen >= 3 &&
            io->out[0] == 'm' && io->out[2] == ' ')
            xchg_fail(io, "%s", mc_meta_closed); /* "mg ..." closed on without a word */
        else if (n == 0)
            xchg_fail(io, "%s", "connection closed by the server");
        if (n < 0)
            xchg_fail(io, "read: %s", why);
        if (n <= 0)
            return;
        io->ilen += (size_t)n;
        io->answered = 1;
        io->last_ms = io_now_ms();
        int done = 0;
        long used = parse(ctx, i, io->in, io->ilen, &done, io->why, sizeof(io->why));
        if (used < 0) {
            xchg_finish(io, MC_XCHG_FAILED);
            return;
        }
        memmove(io->in, io->in + used, io->ilen - (size_t)used);
        io->ilen -= (size_t)used;
        if (done)
            xchg_finish(io, MC_XCHG_DONE);
    } while (io->state == MC_XCHG_RUN && mc_link_pending(&io->link));
}

/* After poll(): get the link ready, write more, read answers. */
static void xchg_step(struct mc_xchg *io, int i, short rev, mc_xchg_parse_fn parse, void *ctx)
{
    char why[256];
    if (!mc_link_ready(&io->link)) {
        int r = mc_link_step(&io->link, rev, why, sizeof(why));
        if (r < 0)
            xchg_fail(io, "%s", why);
        if (r <= 0)
            return;
        io->last_ms = io_now_ms();
        rev |= POLLOUT; /* ready: the request can go at once */
    }
    if (io->ooff < io->olen && mc_link_writable(&io->link, rev)) {
        ssize_t n = mc_link_send_request(&io->link, io->out, io->ooff, io->olen, why, sizeof(why));
        if (n < 0 && n != -EAGAIN) {
            mc_link_salvage(&io->link, why, sizeof(why)); /* a TLS alert says more */
            xchg_fail(io, "%s", why);
            return;
        }
        if (n > 0) {
            io->ooff += (size_t)n;
            io->last_ms = io_now_ms();
        }
    }
    if (mc_link_readable(&io->link, rev) || mc_link_pending(&io->link))
        xchg_read(io, i, parse, ctx);
}

/* No progress for timeout_ms: the link's own reason while in setup. */
static void xchg_timeout(struct mc_xchg *io, int timeout_ms)
{
    char why[256];
    if (!mc_link_ready(&io->link) && mc_link_step(&io->link, 0, why, sizeof(why)) < 0)
        xchg_fail(io, "%s", why);
    else
        xchg_fail(io, "no answer for %d ms", timeout_ms);
}

/* Run the exchanges of every io in state RUN until each is done or failed;
 * a server that makes no progress for timeout_ms fails. */
void mc_xchg_run(struct mc_xchg *ios, int n, int timeout_ms, mc_xchg_parse_fn parse, void *ctx)
{
    for (int i = 0; i < n; i++)
        if (ios[i].state == MC_XCHG_RUN)
            xchg_connect(&ios[i], timeout_ms);
    for (;;) {
        struct pollfd pfd[CFG_MAX_SERVERS];
        int idx[CFG_MAX_SERVERS], k = 0, wait_ms = 100;
        int64_t now = io_now_ms();
        for (int i = 0; i < n; i++) {
            struct mc_xchg *io = &ios[i];
            if (io->state != MC_XCHG_RUN)
                continue;
            if (now - io->last_ms > timeout_ms) {
                xchg_timeout(io, timeout_ms);
                continue;
            }
            if (mc_link_pending(&io->link))
                wait_ms = 0;
            short ev = mc_link_events(&io->link, io->ooff < io->olen);
            pfd[k] = (struct pollfd){io->fd, ev, 0};
            idx[k++] = i;
        }
        if (!k)
            return;
        if (poll(pfd, (nfds_t)k, wait_ms) < 0 && errno != EINTR)
            return;
        for (int j = 0; j < k; j++)
            if (pfd[j].revents || mc_link_pending(&ios[idx[j]].link))
                xchg_step(&ios[idx[j]], idx[j], pfd[j].revents, parse, ctx);
    }
}

void mc_xchg_init(struct mc_xchg *ios, const struct memc_map *map)
{
    memset(ios, 0, sizeof(*ios) * (size_t)map->nservers);
    for (int g = 0; g < map->nservers; g++) {
        ios[g].srv = &map->servers[g];
        mc_link_init(&ios[g].link);
        ios[g].fd = -1;
    }
}

void mc_xchg_free(struct mc_xchg *ios, int n)
{
    for (int i = 0; i < n; i++) {
        mc_link_close(&ios[i].link);
        ios[i].fd = -1;
        free(ios[i].out);
        free(ios[i].in);
    }
}

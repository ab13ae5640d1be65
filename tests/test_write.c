/*
 * test_write.c — the meta-protocol write path (load/write.c) without a
 * memcached server.  memc_send() gets one end of a socketpair as its
 * connection (memc_conn_adopt); a thread plays memcached on the other end
 * from a script: read exactly these request bytes, write these answers,
 * close, or accept the writer's reconnect on a loopback listener that the
 * connection's server names (a reconnect always dials).  Every scenario is
 * run with its answers written whole, split at each byte offset, and one
 * byte at a time, each piece read by the writer before the next is sent:
 * the outcome must not change.
 *
 * Covered: quiet batches; a quiet failure and the resend in reply mode (its
 * bytes checked), refusals and their examples; CLIENT_ERROR resets in both
 * modes; protocol errors (MN before the last record, unexpected lines, a
 * line too long); the peer closing mid-batch; a kept connection that died
 * while idle; a down server, its backoff and its return; the no-answer
 * timeout; several servers in one call; a batch larger than the socket
 * buffers (answers read while the request is still being written).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io.h"
#include "log.h"
#include "proto.h"
#include "write.h"

#define IO_TIMEOUT 1000  /* ms: only reached when something is wrong */
#define SPLIT_BYTES (-1) /* every answer written one byte at a time */
#define SPLIT_MAX 60     /* longer than any answer of the scenarios */

/* ---- the peer: memcached played from a script ---------------------------- */

enum op {
    DONE,        /* end of the script */
    EXPECT,      /* read exactly these request bytes */
    ANSWER,      /* write these answer bytes */
    ANSWER_CUT,  /* the same, but the writer may close before the end (CLIENT_ERROR) */
    EXPECT_EOF,  /* the writer closes the connection, sending nothing more */
    CLOSE,       /* close our end */
    ACCEPT,      /* take the writer's reconnect from the listener; a meta one is
                  * probed first: read "mn", answer "MN" (conn.c) */
    ACCEPT_BARE, /* take it, nothing more (the script plays the probe) */
};

struct step {
    enum op op;
    const char *text;
};

struct peer {
    int fd;      /* our end of the current connection, -1 if none */
    int is_unix; /* fd is the socketpair (not an accepted TCP connection) */
    int lfd;     /* the listener the connection's server names */
    int split;   /* 0: whole answers; k > 0: split at byte k; SPLIT_BYTES */
    int classic; /* the server's protocol is classic: a reconnect is not probed */
    const struct step *steps;
    int done;     /* steps completed */
    int accepted; /* reconnects taken */
    char err[1024];
};

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void esc(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r')
            o += (size_t)snprintf(out + o, cap - o, "\\r");
        else if (ch == '\n')
            o += (size_t)snprintf(out + o, cap - o, "\\n");
        else if (ch < 32 || ch > 126)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = 0;
}

static int peer_fail(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int peer_fail(struct peer *p, const char *fmt, ...)
{
    int o = snprintf(p->err, sizeof(p->err), "peer step %d: ", p->done);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + o, sizeof(p->err) - (size_t)o, fmt, ap);
    va_end(ap);
    return 0;
}

static int peer_wait_in(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 2000) == 1;
}

/* Read exactly the request bytes the script expects and compare. */
static int peer_expect(struct peer *p, const char *want, size_t len)
{
    char *got = malloc(len + 1);
    size_t have = 0;
    char e1[400], e2[400];
    assert_non_null(got);
    while (have < len) {
        ssize_t r = peer_wait_in(p->fd) ? read(p->fd, got + have, len - have) : -2;
        if (r <= 0) {
            esc(got, have, e1, sizeof(e1));
            free(got);
            return peer_fail(p, "%s after %zu of %zu request bytes ('%s')",
                             r == -2  ? "timed out"
                             : r == 0 ? "closed"
                                      : strerror(errno),
                             have, len, e1);
        }
        have += (size_t)r;
    }
    if (memcmp(got, want, len) != 0) {
        esc(got, len, e1, sizeof(e1));
        esc(want, len, e2, sizeof(e2));
        free(got);
        return peer_fail(p, "request '%s', expected '%s'", e1, e2);
    }
    free(got);
    return 1;
}

/* Wait until the writer has read everything written so far: for AF_UNIX,
 * SIOCOUTQ counts the bytes the other end has not consumed; over TCP a
 * short pause has to do.  So each piece of a split answer is a read of its
 * own for memc_send. */
static void peer_drained(struct peer *p)
{
    if (!p->is_unix) {
        nap_us(300);
        return;
    }
    for (int i = 0; i < 20000; i++) {
        int q = 0;
        if (ioctl(p->fd, SIOCOUTQ, &q) < 0 || q == 0)
            return;
        nap_us(50);
    }
}

static int peer_answer(struct peer *p, const char *text, size_t len, int may_cut)
{
    size_t at = 0;
    while (at < len) {
        size_t piece = len - at;
        if (p->split == SPLIT_BYTES)
            piece = 1;
        else if (p->split > 0 && at < (size_t)p->split && (size_t)p->split < len)
            piece = (size_t)p->split - at;
        ssize_t w = send(p->fd, text + at, piece, MSG_NOSIGNAL);
        if (w < 0 && may_cut && (errno == EPIPE || errno == ECONNRESET))
            return 1; /* the writer reset the connection, as it should */
        if (w <= 0)
            return peer_fail(p, "answer: %s", strerror(errno));
        at += (size_t)w;
        if (at < len)
            peer_drained(p);
    }
    return 1;
}

static int peer_eof(struct peer *p)
{
    char b[256], e[400];
    ssize_t r = peer_wait_in(p->fd) ? read(p->fd, b, sizeof(b)) : -2;
    if (r == 0 || (r < 0 && errno == ECONNRESET))
        return 1;
    if (r == -2)
        return peer_fail(p, "the writer did not close the connection");
    if (r < 0)
        return peer_fail(p, "read: %s", strerror(errno));
    esc(b, (size_t)r, e, sizeof(e));
    return peer_fail(p, "request bytes where the writer should have closed: '%s'", e);
}

static int peer_accept(struct peer *p, int bare)
{
    if (!peer_wait_in(p->lfd))
        return peer_fail(p, "no reconnect");
    int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return peer_fail(p, "accept: %s", strerror(errno));
    if (p->fd >= 0)
        close(p->fd);
    p->fd = fd;
    p->is_unix = 0;
    p->accepted++;
    if (bare || p->classic)
        return 1;
    if (!peer_expect(p, "mn\r\nmn\r\n", 8))
        return 0;
    return write(fd, "MN\r\nMN\r\n", 8) == 8 ? 1
                                             : peer_fail(p, "probe answer: %s", strerror(errno));
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    for (const struct step *st = p->steps; st->op != DONE; st++) {
        int ok = 0;
        switch (st->op) {
        case EXPECT:
            ok = peer_expect(p, st->text, strlen(st->text));
            break;
        case ANSWER:
        case ANSWER_CUT:
            ok = peer_answer(p, st->text, strlen(st->text), st->op == ANSWER_CUT);
            break;
        case EXPECT_EOF:
            ok = peer_eof(p);
            break;
        case CLOSE:
            close(p->fd);
            p->fd = -1;
            ok = 1;
            break;
        case ACCEPT:
        case ACCEPT_BARE:
            ok = peer_accept(p, st->op == ACCEPT_BARE);
            break;
        case DONE:
            break;
        }
        if (!ok) {
            if (p->fd >= 0)
                close(p->fd); /* so the writer gives up soon */
            p->fd = -1;
            return NULL;
        }
        p->done++;
    }
    return NULL;
}

/* ---- fixture: one server, one connection, one segment -------------------- */

static int g_split; /* the split being run, for failure messages */

#define EQ(a, b)                                                                                   \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            fail_msg("split %d: %s is %lld, expected %lld", g_split, #a, a_, b_);                  \
    } while (0)
#define STREQ(a, b)                                                                                \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0)                                                                   \
            fail_msg("split %d: %s is '%s', expected '%s'", g_split, #a, a_, b_);                  \
    } while (0)

struct fx {
    struct memc_server srv;
    struct memc_conn c;
    struct memc_seg s;
    int lfd;     /* 127.0.0.1:srv.port: listening, or bound only (connects refused) */
    int pfd;     /* the test's end of the connection */
    int is_unix; /* pfd is the socketpair */
    int accepted;
};

static void fx_init(struct fx *x, int listening)
{
    memset(x, 0, sizeof(*x));
    x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(x->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(x->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(x->lfd, (struct sockaddr *)&a, &al), 0);
    if (listening)
        assert_int_equal(listen(x->lfd, 8), 0);
    snprintf(x->srv.host, sizeof(x->srv.host), "127.0.0.1");
    unsigned port = ntohs(a.sin_port);
    snprintf(x->srv.port, sizeof(x->srv.port), "%u", port);
    snprintf(x->srv.name, sizeof(x->srv.name), "127.0.0.1:%u", port);
    x->srv.type = 0;
    memc_conn_init(&x->c, &x->srv);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    memc_conn_adopt(&x->c, sv[0]);
    x->pfd = sv[1];
    x->is_unix = 1;
    memc_conn_job_begin(&x->c);
}

static void fx_free(struct fx *x)
{
    memc_conn_close(&x->c);
    memc_seg_free(&x->s);
    close(x->lfd);
    if (x->pfd >= 0)
        close(x->pfd);
}

/* Record i: key idfa:<1000+i>, a value whose length varies with i. */
static size_t rec_val(int i, char *v, size_t cap)
{
    return (size_t)snprintf(v, cap, "apps-%d", i * 37);
}

static void fill(struct memc_seg *s, int from, int to)
{
    memc_seg_reset(s);
    for (int i = from; i < to; i++) {
        char id[16], v[32];
        int il = snprintf(id, sizeof(id), "%d", 1000 + i);
        size_t vl = rec_val(i, v, sizeof(v));
        assert_int_equal(memc_seg_add(s, "idfa", 4, id, (size_t)il, (const uint8_t *)v, vl), 0);
    }
    assert_int_equal(memc_seg_finish(s), 0);
}

/* What memcached must read for records [from, to) and the sync point:
 * "ms <key> <len> q" in quiet mode, the 'q' a blank in reply mode. */
static const char *req(char *buf, size_t cap, int from, int to, int reply)
{
    size_t o = 0;
    for (int i = from; i < to; i++) {
        char v[32];
        size_t vl = rec_val(i, v, sizeof(v));
        o += (size_t)snprintf(buf + o, cap - o, "ms idfa:%d %zu %s\r\n%s\r\n", 1000 + i, vl,
                              reply ? " " : "q", v);
    }
    snprintf(buf + o, cap - o, "mn\r\n");
    return buf;
}

/* Run one memc_send against the script, then check the peer did all of it. */
static void play(struct fx *x, const struct step *steps, int split, int io_timeout_ms)
{
    struct peer p = {.fd = x->pfd,
                     .is_unix = x->is_unix,
                     .lfd = x->lfd,
                     .split = split,
                     .classic = x->srv.protocol == CFG_PROTO_CLASSIC,
                     .steps = steps};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &p), 0);
    struct memc_conn *cp = &x->c;
    struct memc_seg *sp = &x->s;
    memc_send(&cp, &sp, 1, io_timeout_ms);
    assert_int_equal(pthread_join(th, NULL), 0);
    x->pfd = p.fd;
    x->is_unix = p.is_unix;
    x->accepted += p.accepted;
    if (p.err[0])
        fail_msg("split %d: %s (writer: %s)", split, p.err, x->c.why);
    int nsteps = 0;
    for (; steps[nsteps].op != DONE; nsteps++)
        if (split == SPLIT_MAX && (steps[nsteps].op == ANSWER || steps[nsteps].op == ANSWER_CUT))
            assert_true(strlen(steps[nsteps].text) <= SPLIT_MAX); /* every offset was split */
    EQ(p.done, nsteps);
}

/* Nothing happened beyond the script: no request bytes the peer did not
 * read (a kept connection stays open, a failed one is closed) and no
 * reconnect it did not take. */
static void nothing_more(struct fx *x)
{
    if (x->pfd >= 0) {
        char b[64];
        ssize_t r = recv(x->pfd, b, sizeof(b), MSG_DONTWAIT);
        if (x->c.fd >= 0) {
            if (!(r < 0 && errno == EAGAIN))
                fail_msg("split %d: %zd more request bytes", g_split, r);
        } else if (!(r == 0 || (r < 0 && errno == ECONNRESET))) {
            fail_msg("split %d: the failed connection is still open (%zd)", g_split, r);
        }
    }
    struct pollfd pl = {.fd = x->lfd, .events = POLLIN};
    if (poll(&pl, 1, 0) != 0)
        fail_msg("split %d: an unexpected reconnect", g_split);
}

/* ---- scenarios, each for one way of splitting the answers ---------------- */

/* A quiet batch answered only MN: every record stored, the connection
 * kept; the next batch goes on the same connection. */
static void sc_quiet(int split)
{
    struct fx x;
    char r1[1024], r2[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 5);
    const struct step st1[] = {{EXPECT, req(r1, sizeof(r1), 0, 5, 0)}, {ANSWER, "MN\r\n"}, {0}};
    play(&x, st1, split, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 5);
    EQ(x.s.refused, 0);
    EQ(x.s.deferred, 0);
    EQ(x.s.reply, 0);
    EQ(x.s.sent, x.s.len);
    EQ(x.c.fd >= 0, 1);
    EQ(x.c.down, 0);
    EQ(x.c.failures, 0);
    EQ(x.c.job_acks, 5);
    EQ(x.c.lost_acks, 0);
    nothing_more(&x);

    fill(&x.s, 5, 7);
    const struct step st2[] = {{EXPECT, req(r2, sizeof(r2), 5, 7, 0)}, {ANSWER, "MN\r\n"}, {0}};
    play(&x, st2, split, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 2);
    EQ(x.c.job_acks, 7);
    EQ(x.accepted, 0); /* the same connection */
    nothing_more(&x);
    fx_free(&x);
}

/* Quiet failures, then the same batch in reply mode: the k-th answer is
 * the k-th record's. */
static void sc_resend(int split)
{
    struct fx x;
    char q[1024], r[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 4);
    const struct step st[] = {
        {EXPECT, req(q, sizeof(q), 0, 4, 0)},
        {ANSWER, "NS\r\nSERVER_ERROR out of memory\r\nMN\r\n"},
        {EXPECT, req(r, sizeof(r), 0, 4, 1)},
        {ANSWER, "HD\r\nNS\r\nSERVER_ERROR object too large for cache\r\nHD\r\nMN\r\n"},
        {0}};
    play(&x, st, split, IO_TIMEOUT);
    EQ(x.s.reply, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 4);
    EQ(x.s.refused, 2);
    EQ(x.s.deferred, 0);
    EQ(x.s.example_rec[0], 1);
    EQ(x.s.example_rec[1], 2);
    STREQ(x.s.example_why[0], "NS");
    STREQ(x.s.example_why[1], "SERVER_ERROR object too large for cache");
    const char *key;
    size_t kl = memc_seg_key(&x.s, x.s.example_rec[1], &key);
    EQ(kl, 9);
    EQ(memcmp(key, "idfa:1002", 9), 0);
    EQ(x.c.fd >= 0, 1);
    EQ(x.c.down, 0);
    EQ(x.c.failures, 0);
    EQ(x.c.job_acks, 4);
    EQ(x.accepted, 0); /* the resend goes on the same connection */
    nothing_more(&x);
    fx_free(&x);
}

/* CLIENT_ERROR to a quiet batch: the stream may be out of step (memcached
 * reads the value as a command: ERROR), so the writer closes the
 * connection and sends the whole batch again, in reply mode, on a new one.
 * No blame: the server is not marked down. */
static void sc_client_error_quiet(int split)
{
    struct fx x;
    char q[1024], r[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 3);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 0, 3, 0)},
                              {ANSWER_CUT, "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
                              {EXPECT_EOF, NULL},
                              {ACCEPT, NULL},
                              {EXPECT, req(r, sizeof(r), 0, 3, 1)},
                              {ANSWER, "HD\r\nHD\r\nHD\r\nMN\r\n"},
                              {0}};
    play(&x, st, split, IO_TIMEOUT);
    EQ(x.accepted, 1);
    EQ(x.s.reply, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 3);
    EQ(x.s.refused, 0);
    EQ(x.s.deferred, 0);
    EQ(x.c.fd >= 0, 1);
    EQ(x.c.down, 0);
    EQ(x.c.failures, 0);
    EQ(x.c.lost_acks, 0);
    nothing_more(&x);
    fx_free(&x);
}

/* CLIENT_ERROR in reply mode: that record is refused with it, the rest
 * after it goes again on a new connection (not the records answered). */
static void sc_client_error_reply(int split)
{
    struct fx x;
    char q[1024], r[1024], rest[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 4);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 0, 4, 0)},
                              {ANSWER, "SERVER_ERROR out of memory\r\nMN\r\n"},
                              {EXPECT, req(r, sizeof(r), 0, 4, 1)},
                              {ANSWER_CUT, "HD\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\n"},
                              {EXPECT_EOF, NULL},
                              {ACCEPT, NULL},
                              {EXPECT, req(rest, sizeof(rest), 2, 4, 1)},
                              {ANSWER, "NS\r\nHD\r\nMN\r\n"},
                              {0}};
    play(&x, st, split, IO_TIMEOUT);
    EQ(x.accepted, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 4);
    EQ(x.s.refused, 2);
    EQ(x.s.deferred, 0);
    EQ(x.s.example_rec[0], 1);
    EQ(x.s.example_rec[1], 2);
    STREQ(x.s.example_why[0], "CLIENT_ERROR bad data chunk");
    STREQ(x.s.example_why[1], "NS");
    EQ(x.c.fd >= 0, 1);
    EQ(x.c.down, 0);
    EQ(x.c.failures, 0);
    EQ(x.c.job_acks, 4);
    nothing_more(&x);
    fx_free(&x);
}

/* Protocol errors in reply mode after the first record was answered: the
 * server fails (marked down, no reconnect), the unanswered records are
 * deferred, and the acks of this load may be lost with it. */
static const struct {
    const char *answer;
    unsigned acked;
    const char *why;
} proto_errors[] = {
    {"HD\r\nHD\r\nMN\r\n", 2, "MN before every record was answered"},
    {"HD\r\nERROR\r\n", 1,
     "unexpected answer 'ERROR' (memcached >= 1.6 with meta commands needed)"},
    {"HD\r\nEN\r\n", 1, "unexpected answer 'EN'"},
    {"HD\r\nHD\r\nHD\r\nHD\r\n", 3, "unexpected answer 'HD'"},
    {"HD\r\nNS\x1b[1m\r\n", 1, "unexpected answer 'NS\\x1b[1m'"},
};

static void sc_protocol_error(int split, int k)
{
    struct fx x;
    char q[1024], r[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 3);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 0, 3, 0)},
                              {ANSWER, "SERVER_ERROR out of memory\r\nMN\r\n"},
                              {EXPECT, req(r, sizeof(r), 0, 3, 1)},
                              {ANSWER_CUT, proto_errors[k].answer},
                              {EXPECT_EOF, NULL},
                              {0}};
    int64_t t0 = io_now_ms();
    play(&x, st, split, IO_TIMEOUT);
    STREQ(x.c.why, proto_errors[k].why);
    EQ(x.s.synced, 0);
    EQ(x.s.acked, proto_errors[k].acked);
    EQ(x.s.deferred, 3 - proto_errors[k].acked);
    EQ(x.c.fd, -1);
    EQ(x.c.down, 1);
    EQ(x.c.failures, 1);
    EQ(x.c.lost_acks, 1);
    EQ(x.c.job_acks, 0);
    EQ(x.c.next_try_ms >= t0 + 50, 1); /* probed again after the first backoff */
    nothing_more(&x);
    fx_free(&x);
}

/* The peer closes in the middle of the reply pass: what was answered
 * counts, the rest is deferred, the server is down. */
static void sc_closed_mid_batch(int split)
{
    struct fx x;
    char q[1024], r[1024];
    fx_init(&x, 1);
    fill(&x.s, 0, 4);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 0, 4, 0)},
                              {ANSWER, "SERVER_ERROR out of memory\r\nMN\r\n"},
                              {EXPECT, req(r, sizeof(r), 0, 4, 1)},
                              {ANSWER, "HD\r\nNS\r\n"},
                              {CLOSE, NULL},
                              {0}};
    play(&x, st, split, IO_TIMEOUT);
    STREQ(x.c.why, "connection closed by server");
    EQ(x.s.synced, 0);
    EQ(x.s.acked, 2);
    EQ(x.s.refused, 1);
    EQ(x.s.deferred, 2);
    EQ(x.c.fd, -1);
    EQ(x.c.down, 1);
    EQ(x.c.failures, 1);
    EQ(x.c.lost_acks, 1);
    nothing_more(&x);
    fx_free(&x);
}

/* A kept connection that memcached closed while it was idle fails before
 * answering anything: reopened at once, nothing deferred, no blame.  If
 * the load had acks on it already, those may be gone (lost_acks). */
static void sc_stale(int split, int earlier_acks)
{
    struct fx x;
    char q[1024];
    fx_init(&x, 1);
    x.c.job_acks = (uint64_t)earlier_acks;
    fill(&x.s, 0, 3);
    close(x.pfd); /* closed while idle, before this batch */
    x.pfd = -1;
    const struct step st[] = {
        {ACCEPT, NULL}, {EXPECT, req(q, sizeof(q), 0, 3, 0)}, {ANSWER, "MN\r\n"}, {0}};
    play(&x, st, split, IO_TIMEOUT);
    EQ(x.accepted, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 3);
    EQ(x.s.deferred, 0);
    EQ(x.c.down, 0);
    EQ(x.c.failures, 0);
    EQ(x.c.lost_acks, earlier_acks ? 1 : 0);
    EQ(x.c.job_acks, 3);
    nothing_more(&x);
    fx_free(&x);
}

/* ---- tests ---------------------------------------------------------------- */

/* Run a scenario with its answers whole, a byte at a time, and split at
 * every offset: the same assertions hold for each. */
static void each_split(void (*sc)(int split))
{
    for (int split = SPLIT_BYTES; split <= SPLIT_MAX; split++) {
        g_split = split;
        sc(split);
    }
}

static void test_quiet_batch(void **state)
{
    (void)state;
    each_split(sc_quiet);
}

static void test_quiet_failure_resent_in_reply_mode(void **state)
{
    (void)state;
    each_split(sc_resend);
}

static void test_client_error_quiet(void **state)
{
    (void)state;
    each_split(sc_client_error_quiet);
}

static void test_client_error_reply(void **state)
{
    (void)state;
    each_split(sc_client_error_reply);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    for (int k = 0; k < (int)(sizeof(proto_errors) / sizeof(proto_errors[0])); k++)
        for (int split = SPLIT_BYTES; split <= SPLIT_MAX; split++) {
            g_split = split;
            sc_protocol_error(split, k);
        }
}

static void test_closed_mid_batch(void **state)
{
    (void)state;
    each_split(sc_closed_mid_batch);
}

static void sc_stale_between_files(int split)
{
    sc_stale(split, 0);
}

static void sc_stale_within_a_load(int split)
{
    sc_stale(split, 7);
}

static void test_stale_connection_reopened(void **state)
{
    (void)state;
    each_split(sc_stale_between_files);
    each_split(sc_stale_within_a_load);
}

/* ---- the classic protocol (a proxy) ---------------------------------------- */

static void cfill(struct fx *x, int from, int to)
{
    x->srv.protocol = CFG_PROTO_CLASSIC;
    x->s.protocol = CFG_PROTO_CLASSIC;
    fill(&x->s, from, to);
}

/* What the proxy must read for records [from, to): classic sets, no
 * sync point. */
static const char *creq(char *buf, size_t cap, int from, int to)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = from; i < to; i++) {
        char v[32];
        size_t vl = rec_val(i, v, sizeof(v));
        o += (size_t)snprintf(buf + o, cap - o, "set idfa:%d 0 0 %zu\r\n%s\r\n", 1000 + i, vl, v);
    }
    return buf;
}

/* Every record answered, in order: STORED stored, NOT_STORED and memcached's
 * own SERVER_ERROR refused, a proxy's SERVER_ERROR not stored but deferred;
 * synced at the last answer (no MN); the next batch on the same connection. */
static void sc_classic(int split)
{
    struct fx x;
    char r1[1024], r2[1024];
    fx_init(&x, 1);
    cfill(&x, 0, 5);
    EQ(x.s.reply, 1);
    const struct step st1[] = {
        {EXPECT, creq(r1, sizeof(r1), 0, 5)},
        {ANSWER, "STORED\r\nNOT_STORED\r\nSERVER_ERROR Connection refused\r\n"},
        {ANSWER, "STORED\r\nSERVER_ERROR out of memory storing object\r\n"},
        {0}};
    play(&x, st1, split, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 5);
    EQ(x.s.refused, 2);
    EQ(x.s.unavail, 1);
    EQ(x.s.deferred, 0);
    EQ(x.s.example_rec[0], 1);
    STREQ(x.s.example_why[0], "NOT_STORED");
    EQ(x.s.example_rec[1], 4);
    STREQ(x.s.example_why[1], "SERVER_ERROR out of memory storing object");
    EQ(x.c.fd >= 0, 1);
    EQ(x.c.down, 0);
    EQ(x.c.job_acks, 5);
    nothing_more(&x);

    cfill(&x, 5, 7);
    const struct step st2[] = {
        {EXPECT, creq(r2, sizeof(r2), 5, 7)}, {ANSWER, "STORED\r\nSTORED\r\n"}, {0}};
    play(&x, st2, split, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 2);
    EQ(x.s.refused, 0);
    EQ(x.accepted, 0);
    nothing_more(&x);
    fx_free(&x);
}

/* CLIENT_ERROR: that record refused, the rest sent again on a new
 * connection (not probed: classic). */
static void sc_classic_client_error(int split)
{
    struct fx x;
    char r1[1024], r2[1024];
    fx_init(&x, 1);
    cfill(&x, 0, 4);
    const struct step st[] = {{EXPECT, creq(r1, sizeof(r1), 0, 4)},
                              {ANSWER_CUT, "STORED\r\nCLIENT_ERROR bad data chunk\r\n"},
                              {ACCEPT, NULL},
                              {EXPECT, creq(r2, sizeof(r2), 2, 4)},
                              {ANSWER, "STORED\r\nSTORED\r\n"},
                              {0}};
    play(&x, st, split, IO_TIMEOUT);
    EQ(x.accepted, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 4);
    EQ(x.s.refused, 1);
    STREQ(x.s.example_why[0], "CLIENT_ERROR bad data chunk");
    EQ(x.c.down, 0);
    nothing_more(&x);
    fx_free(&x);
}

/* A meta answer, or MN, to a classic set is a protocol error: the server
 * fails. */
static void sc_classic_unexpected(int split)
{
    static const char *const answers[] = {"HD\r\n", "MN\r\n", "STORED\r\nERROR\r\n"};
    for (size_t k = 0; k < sizeof(answers) / sizeof(answers[0]); k++) {
        struct fx x;
        char r[1024];
        fx_init(&x, 0);
        cfill(&x, 0, 2);
        const struct step st[] = {
            {EXPECT, creq(r, sizeof(r), 0, 2)}, {ANSWER_CUT, answers[k]}, {0}};
        play(&x, st, split, IO_TIMEOUT);
        EQ(x.c.down, 1);
        EQ(x.s.synced, 0);
        EQ(x.s.acked, k == 2);
        EQ(x.s.deferred, 2 - (k == 2));
        EQ(strncmp(x.c.why, "unexpected answer", 17), 0);
        EQ(strstr(x.c.why, "meta") == NULL, 1); /* no meta hint for classic */
        fx_free(&x);
    }
}

static void test_classic_batch(void **state)
{
    (void)state;
    each_split(sc_classic);
}

static void test_classic_client_error(void **state)
{
    (void)state;
    each_split(sc_classic_client_error);
}

static void test_classic_unexpected(void **state)
{
    (void)state;
    each_split(sc_classic_unexpected);
}

/* A proxy without meta commands closes the connection on them: on the
 * new connection's "mn" probe (conn.c), or on the first batch of one that
 * passed it; either way said as such, not "unreachable" for no reason. */
static void test_meta_closed(void **state)
{
    (void)state;
    for (int on_batch = 0; on_batch < 2; on_batch++) {
        struct fx x;
        char q[1024];
        g_split = on_batch;
        fx_init(&x, 1);
        fill(&x.s, 0, 3);
        close(x.pfd); /* a new connection is dialled */
        x.pfd = -1;
        const struct step probe[] = {
            {ACCEPT_BARE, NULL}, {EXPECT, "mn\r\nmn\r\n"}, {CLOSE, NULL}, {0}};
        const struct step batch[] = {
            {ACCEPT, NULL}, {EXPECT, req(q, sizeof(q), 0, 3, 0)}, {CLOSE, NULL}, {0}};
        play(&x, on_batch ? batch : probe, 0, IO_TIMEOUT);
        STREQ(x.c.why, mc_meta_closed);
        EQ(x.c.down, 1);
        EQ(x.s.deferred, 3);
        EQ(x.s.acked, 0);
        fx_free(&x);
    }
}

/* More refusals than examples: all counted, the first three kept. */
static void test_refusal_examples_capped(void **state)
{
    (void)state;
    struct fx x;
    char q[1024], r[1024];
    g_split = 0;
    fx_init(&x, 1);
    fill(&x.s, 0, 6);
    const struct step st[] = {
        {EXPECT, req(q, sizeof(q), 0, 6, 0)},
        {ANSWER, "NS\r\nMN\r\n"},
        {EXPECT, req(r, sizeof(r), 0, 6, 1)},
        {ANSWER, "NS\r\nSERVER_ERROR out of memory\r\nHD\r\nNS\r\nSERVER_ERROR x\r\nNS\r\nMN\r\n"},
        {0}};
    play(&x, st, 0, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 6);
    EQ(x.s.refused, 5);
    EQ(x.s.example_rec[0], 0);
    EQ(x.s.example_rec[1], 1);
    EQ(x.s.example_rec[2], 3);
    STREQ(x.s.example_why[0], "NS");
    STREQ(x.s.example_why[1], "SERVER_ERROR out of memory");
    STREQ(x.s.example_why[2], "NS");
    nothing_more(&x);
    fx_free(&x);
}

/* A line longer than the read buffer cannot be an answer. */
static void test_answer_line_too_long(void **state)
{
    (void)state;
    struct fx x;
    char q[1024], r[1024];
    static char huge[4 + sizeof(x.c.rbuf) + 1];
    g_split = 0;
    memcpy(huge, "HD\r\n", 4);
    memset(huge + 4, 'x', sizeof(x.c.rbuf));
    fx_init(&x, 1);
    fill(&x.s, 0, 3);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 0, 3, 0)},
                              {ANSWER, "SERVER_ERROR out of memory\r\nMN\r\n"},
                              {EXPECT, req(r, sizeof(r), 0, 3, 1)},
                              {ANSWER_CUT, huge},
                              {EXPECT_EOF, NULL},
                              {0}};
    play(&x, st, 0, IO_TIMEOUT);
    STREQ(x.c.why, "answer line too long");
    EQ(x.s.acked, 1);
    EQ(x.s.deferred, 2);
    EQ(x.c.down, 1);
    nothing_more(&x);
    fx_free(&x);
}

/* Stale, and the reconnect is refused: now the server is down, the batch
 * deferred.  While down, the next batch is deferred at once (no connect
 * attempt); once the backoff has passed it is probed (that batch does not
 * wait for the probe) and comes back for the next. */
static void test_down_backoff_and_back(void **state)
{
    (void)state;
    struct fx x;
    char q[1024];
    g_split = 0;
    fx_init(&x, 0); /* bound, not listening: connects are refused */
    fill(&x.s, 0, 3);
    close(x.pfd);
    x.pfd = -1;
    const struct step none[] = {{0}};
    int64_t t0 = io_now_ms();
    play(&x, none, 0, IO_TIMEOUT);
    int64_t t1 = io_now_ms();
    STREQ(x.c.why, "connect: Connection refused");
    EQ(x.s.acked, 0);
    EQ(x.s.deferred, 3);
    EQ(x.s.synced, 0);
    EQ(x.c.fd, -1);
    EQ(x.c.down, 1);
    EQ(x.c.failures, 1);
    EQ(x.c.backoff_ms, 100);
    EQ(x.c.next_try_ms >= t0 + 50 && x.c.next_try_ms <= t1 + 50, 1);

    x.c.next_try_ms = io_now_ms() + 60000; /* however slow this host is */
    fill(&x.s, 3, 5);
    play(&x, none, 0, IO_TIMEOUT);
    EQ(x.s.acked, 0);
    EQ(x.s.deferred, 2);
    EQ(x.s.sent, 0);
    EQ(x.c.failures, 1); /* not even tried */
    EQ(x.c.down, 1);

    /* the backoff has passed: a probe (the link's "mn"), off the write
     * path: the batch does not wait for its answer */
    assert_int_equal(listen(x.lfd, 8), 0);
    x.c.next_try_ms = 0;
    fill(&x.s, 3, 5);
    const struct step probe[] = {{ACCEPT, NULL}, {0}};
    play(&x, probe, 0, IO_TIMEOUT);
    EQ(x.s.deferred, 2);
    EQ(x.s.sent, 0);
    EQ(x.c.down, 1);
    assert_true(x.c.fd >= 0);
    /* answered: the next batch goes to it */
    fill(&x.s, 5, 7);
    const struct step st[] = {{EXPECT, req(q, sizeof(q), 5, 7, 0)}, {ANSWER, "MN\r\n"}, {0}};
    play(&x, st, 0, IO_TIMEOUT);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, 2);
    EQ(x.c.down, 0);
    EQ(x.c.backoff_ms, 50);
    EQ(x.c.failures, 1);
    nothing_more(&x);
    fx_free(&x);
}

/* No answer for io_timeout_ms: the kept connection might be stale, so it
 * is reopened once; no answer again and the server is down. */
static void test_no_answer_times_out(void **state)
{
    (void)state;
    struct fx x;
    char q[1024];
    g_split = 0;
    fx_init(&x, 1);
    fill(&x.s, 0, 2);
    req(q, sizeof(q), 0, 2, 0);
    const struct step st[] = {{EXPECT, q}, {EXPECT_EOF, NULL}, {ACCEPT, NULL},
                              {EXPECT, q}, {EXPECT_EOF, NULL}, {0}};
    int64_t t0 = io_now_ms();
    play(&x, st, 0, 20);
    int64_t dt = io_now_ms() - t0;
    STREQ(x.c.why, "no answer for 20 ms");
    EQ(x.s.deferred, 2);
    EQ(x.c.down, 1);
    EQ(x.c.failures, 1);
    EQ(dt >= 39 && dt < 1000, 1);
    nothing_more(&x);
    fx_free(&x);
}

/* Several servers in one call: one stores, one goes through a resend, one
 * is down (deferred at once, not waited for), a NULL and an empty segment
 * are skipped. */
static void test_several_servers(void **state)
{
    (void)state;
    struct fx a, b, d, e, f;
    char qa[1024], qb[1024], rb[1024], stray[8];
    g_split = 0;
    fx_init(&a, 1);
    fx_init(&b, 1);
    fx_init(&d, 1);
    fx_init(&e, 1);
    fx_init(&f, 1);
    fill(&a.s, 0, 2);
    fill(&b.s, 2, 5);
    fill(&d.s, 5, 9);
    memc_conn_close(&d.c);
    d.c.down = 1;
    d.c.next_try_ms = io_now_ms() + 60000;
    memc_seg_reset(&f.s); /* empty */
    const struct step sa[] = {{EXPECT, req(qa, sizeof(qa), 0, 2, 0)}, {ANSWER, "MN\r\n"}, {0}};
    const struct step sb[] = {{EXPECT, req(qb, sizeof(qb), 2, 5, 0)},
                              {ANSWER, "SERVER_ERROR out of memory\r\nMN\r\n"},
                              {EXPECT, req(rb, sizeof(rb), 2, 5, 1)},
                              {ANSWER, "HD\r\nHD\r\nSERVER_ERROR out of memory\r\nMN\r\n"},
                              {0}};
    struct peer pa = {.fd = a.pfd, .is_unix = 1, .lfd = a.lfd, .steps = sa};
    struct peer pb = {.fd = b.pfd, .is_unix = 1, .lfd = b.lfd, .split = SPLIT_BYTES, .steps = sb};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, peer_main, &pa), 0);
    assert_int_equal(pthread_create(&tb, NULL, peer_main, &pb), 0);
    struct memc_conn *conns[] = {&a.c, &b.c, &d.c, &e.c, &f.c};
    struct memc_seg *segs[] = {&a.s, &b.s, &d.s, NULL, &f.s};
    memc_send(conns, segs, 5, IO_TIMEOUT);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    if (pa.err[0] || pb.err[0])
        fail_msg("%s %s", pa.err, pb.err);
    EQ(pa.done, 2);
    EQ(pb.done, 4);
    EQ(a.s.synced, 1);
    EQ(a.s.acked, 2);
    EQ(b.s.synced, 1);
    EQ(b.s.acked, 3);
    EQ(b.s.refused, 1);
    EQ(b.s.example_rec[0], 2);
    EQ(d.s.acked, 0);
    EQ(d.s.deferred, 4);
    EQ(d.c.failures, 0);
    EQ(f.s.acked, 0);
    EQ(f.s.deferred, 0);
    /* the servers of the NULL and the empty segment saw nothing */
    EQ(recv(e.pfd, stray, sizeof(stray), MSG_DONTWAIT) < 0 && errno == EAGAIN, 1);
    EQ(recv(f.pfd, stray, sizeof(stray), MSG_DONTWAIT) < 0 && errno == EAGAIN, 1);
    EQ(e.c.fd >= 0 && f.c.fd >= 0, 1);
    fx_free(&a);
    fx_free(&b);
    fx_free(&d);
    fx_free(&e);
    fx_free(&f);
}

/* ---- a batch larger than the socket buffers ------------------------------ */

#define BIG_N 20000
#define BIG_VLEN 40
#define BIG_REC 63 /* "ms idfa:NNNNNN 40 q\r\n" (21) + value + "\r\n" */
#define BIG_Q 18   /* offset of the 'q' in a record */

struct big_peer {
    int fd;
    char err[256];
};

/* Two passes: the quiet one, answered SERVER_ERROR for every record while
 * the request still arrives (more answer bytes than the socket buffers
 * hold: the writer has to read while it writes), then the reply pass,
 * answered HD each. */
static void *big_peer_main(void *arg)
{
    struct big_peer *p = arg;
    static char buf[65536];
    for (int pass = 0; pass < 2; pass++) {
        const char *ans = pass ? "HD\r\n" : "SERVER_ERROR out of memory\r\n";
        size_t total = 0, want = (size_t)BIG_N * BIG_REC + 4, answered = 0;
        while (total < want) {
            ssize_t r = peer_wait_in(p->fd) ? read(p->fd, buf, sizeof(buf)) : -1;
            if (r <= 0) {
                snprintf(p->err, sizeof(p->err), "pass %d: read ended at %zu of %zu", pass, total,
                         want);
                return NULL;
            }
            for (ssize_t i = 0; i < r; i++)
                if ((total + (size_t)i) % BIG_REC == BIG_Q && total + (size_t)i < want - 4 &&
                    buf[i] != (pass ? ' ' : 'q')) {
                    snprintf(p->err, sizeof(p->err), "pass %d: record %zu has flag '%c'", pass,
                             (total + (size_t)i) / BIG_REC, buf[i]);
                    return NULL;
                }
            total += (size_t)r;
            size_t recs = total / BIG_REC > BIG_N ? BIG_N : total / BIG_REC;
            for (; answered < recs; answered++)
                if (send(p->fd, ans, strlen(ans), MSG_NOSIGNAL) < 0) {
                    snprintf(p->err, sizeof(p->err), "pass %d: %s", pass, strerror(errno));
                    return NULL;
                }
        }
        if (send(p->fd, "MN\r\n", 4, MSG_NOSIGNAL) != 4) {
            snprintf(p->err, sizeof(p->err), "pass %d: MN: %s", pass, strerror(errno));
            return NULL;
        }
    }
    return NULL;
}

static void test_big_batch_reads_while_writing(void **state)
{
    (void)state;
    struct fx x;
    g_split = 0;
    fx_init(&x, 1);
    int sz = 65536;
    setsockopt(x.pfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(x.pfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    memc_seg_reset(&x.s);
    uint8_t v[BIG_VLEN];
    for (int i = 0; i < BIG_N; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%06d", i);
        memset(v, 'a' + i % 26, sizeof(v));
        assert_int_equal(memc_seg_add(&x.s, "idfa", 4, id, 6, v, sizeof(v)), 0);
    }
    assert_int_equal(memc_seg_finish(&x.s), 0);
    assert_int_equal(x.s.len, (size_t)BIG_N * BIG_REC + 4);
    struct big_peer p = {.fd = x.pfd};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, big_peer_main, &p), 0);
    struct memc_conn *cp = &x.c;
    struct memc_seg *sp = &x.s;
    memc_send(&cp, &sp, 1, 2000);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (p.err[0])
        fail_msg("%s (writer: %s)", p.err, x.c.why);
    EQ(x.s.reply, 1);
    EQ(x.s.synced, 1);
    EQ(x.s.acked, BIG_N);
    EQ(x.s.refused, 0);
    EQ(x.s.deferred, 0);
    EQ(x.c.down, 0);
    fx_free(&x);
}

/* ---- segments ------------------------------------------------------------- */

/* The request bytes of a segment, and the keys of its records. */
static void test_segment_bytes(void **state)
{
    (void)state;
    struct memc_seg s;
    char want[1024];
    memset(&s, 0, sizeof(s));
    g_split = 0;
    assert_int_equal(memc_seg_finish(&s), 0); /* no records: no sync point */
    EQ(s.len, 0);
    fill(&s, 0, 3);
    req(want, sizeof(want), 0, 3, 0);
    EQ(s.n, 3);
    EQ(s.len, strlen(want));
    EQ(memcmp(s.buf, want, s.len), 0);
    for (uint32_t i = 0; i < s.n; i++) {
        const char *key;
        char k[16];
        size_t kl = memc_seg_key(&s, i, &key);
        snprintf(k, sizeof(k), "idfa:%u", 1000 + i);
        EQ(kl, strlen(k));
        EQ(memcmp(key, k, kl), 0);
    }
    memc_seg_reset(&s);
    EQ(s.n, 0);
    EQ(s.len, 0);
    /* classic: "set <key> 0 <exptime> <len>", no sync point, always reply mode */
    s.protocol = CFG_PROTO_CLASSIC;
    memc_seg_reset(&s);
    EQ(s.reply, 1);
    assert_int_equal(memc_seg_add(&s, "gaid", 4, "ab-1", 4, (const uint8_t *)"v\r\n", 3), 0);
    assert_int_equal(memc_seg_expire(&s, 1000 + 3600, 1000), 0); /* a TTL: its exptime */
    assert_int_equal(memc_seg_add(&s, "gaid", 4, "c", 1, (const uint8_t *)"", 0), 0);
    assert_int_equal(memc_seg_finish(&s), 0);
    static const char cwant[] = "set gaid:ab-1 0 0 3\r\nv\r\n\r\nset gaid:c 0 3600 0\r\n\r\n";
    EQ(s.len, sizeof(cwant) - 1);
    EQ(memcmp(s.buf, cwant, s.len), 0);
    const char *key;
    EQ(memc_seg_key(&s, 0, &key), 9);
    EQ(memcmp(key, "gaid:ab-1", 9), 0);
    EQ(memc_seg_key(&s, 1, &key), 6);
    EQ(memcmp(key, "gaid:c", 6), 0);
    /* held back 1000 s: the exptime is rewritten in place, zero-padded */
    s.n = 1;
    s.off[0] = s.off[1];
    s.off[1] = (uint32_t)s.len;
    assert_int_equal(memc_seg_expire_now(&s, 2000), 0);
    EQ(memcmp(s.buf + s.off[0], "set gaid:c 0 2600 0\r\n", 21), 0);
    assert_int_equal(memc_seg_expire_now(&s, 3595), 0);
    EQ(memcmp(s.buf + s.off[0], "set gaid:c 0 1005 0\r\n", 21), 0);
    memc_seg_free(&s);
}

int main(void)
{
    log_init(LOG_CRIT); /* the "unreachable" messages are expected here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_bytes),
        cmocka_unit_test(test_classic_batch),
        cmocka_unit_test(test_classic_client_error),
        cmocka_unit_test(test_classic_unexpected),
        cmocka_unit_test(test_meta_closed),
        cmocka_unit_test(test_quiet_batch),
        cmocka_unit_test(test_quiet_failure_resent_in_reply_mode),
        cmocka_unit_test(test_refusal_examples_capped),
        cmocka_unit_test(test_client_error_quiet),
        cmocka_unit_test(test_client_error_reply),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_answer_line_too_long),
        cmocka_unit_test(test_closed_mid_batch),
        cmocka_unit_test(test_stale_connection_reopened),
        cmocka_unit_test(test_down_backoff_and_back),
        cmocka_unit_test(test_no_answer_times_out),
        cmocka_unit_test(test_several_servers),
        cmocka_unit_test(test_big_batch_reads_while_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

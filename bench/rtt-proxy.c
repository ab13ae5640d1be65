/*
 * rtt-proxy.c — a TCP proxy that delays every byte by a fixed one-way
 * delay, in both directions: memcached on this host made to look remote
 * (bench/run's "remote" rows; 500 us one way = 1 ms round trip).
 *
 *   memc-rtt-proxy LISTEN_PORT TARGET_PORT DELAY_US [HOLD_MS]
 *
 * SIGUSR1 holds the answers (target to client) of the connections open at
 * that moment for HOLD_MS (default 1500), new connections flow: a slow
 * answer on a reused connection, for tests/test_faults.c.
 *
 * One thread, one epoll_wait, and a timerfd for microsecond wake-ups
 * (epoll_wait's millisecond timeout would round 500 us up to 1 ms).  Every
 * read is stamped (on a 50 us grid, see GRID_US) and queued on its
 * connection; it is written out once its time has come, in order, so the
 * stream keeps its bytes and its order and only gains latency (bandwidth is
 * not limited).  DELAY_US 0 is the same relay with no added delay: the
 * proxy's own cost without the latency, for comparison.  Loopback only: it
 * listens on 127.0.0.1 and connects there.  Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct chunk {
    struct chunk *next;
    int64_t due_us;
    size_t len, off;
    char data[];
};

/* One direction of one proxied connection: bytes read from `from` wait in
 * the queue, then go to `to`. */
struct pipe_dir {
    int from, to;
    struct chunk *head, *tail;
    struct pipe_dir *peer;
    int closed;         /* from reached EOF: shut down to once drained */
    int answers;        /* the target's direction (SIGUSR1 holds it) */
    int64_t held_until; /* nothing goes out before then */
};

static volatile sig_atomic_t hold_asked;

static void on_usr1(int sig)
{
    (void)sig;
    hold_asked = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
        perror("rtt-proxy: listen");
        exit(1);
    }
    return fd;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void chunk_put(struct chunk *c);

static void dir_free(struct pipe_dir *d)
{
    while (d->head) {
        struct chunk *c = d->head;
        d->head = c->next;
        chunk_put(c);
    }
}

/* Close both directions of a connection. */
static void conn_close(int ep, struct pipe_dir *d)
{
    struct pipe_dir *p = d->peer;
    epoll_ctl(ep, EPOLL_CTL_DEL, d->from, NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, p->from, NULL);
    close(d->from);
    close(p->from);
    dir_free(d);
    dir_free(p);
    free(d < p ? d : p); /* both live in one allocation */
}

static void on_accept(int ep, int lfd, int target)
{
    int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;
    if (a < 0)
        return;
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int b = connect_to(target);
    if (b < 0) {
        close(a);
        return;
    }
    struct pipe_dir *d = calloc(2, sizeof(*d));
    d[0] = (struct pipe_dir){.from = a, .to = b, .peer = &d[1]};
    d[1] = (struct pipe_dir){.from = b, .to = a, .peer = &d[0], .answers = 1};
    for (int i = 0; i < 2; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, d[i].from, &ev);
    }
}

/* Due times fall on a 50 us grid, so reads that arrive close together
 * share one chunk and go out in one write: the proxy's own CPU (it shares
 * the cores with what it measures) stays near that of a plain relay.  The
 * delay is then 500-550 us, not 500 exactly. */
#define GRID_US 50
#define CHUNK_CAP (256 * 1024)

/* Chunks are reused: a 256 KiB malloc is an mmap, and one per read would
 * cost the proxy more page faults than copying. */
static struct chunk *spare;

static struct chunk *chunk_get(void)
{
    struct chunk *c = spare;
    if (c)
        spare = c->next;
    else
        c = malloc(sizeof(*c) + CHUNK_CAP);
    return c;
}

static void chunk_put(struct chunk *c)
{
    c->next = spare;
    spare = c;
}

/* Read what came in and queue it, due delay_us from now.  0, or -1 when
 * the connection is to be closed. */
static int on_read(struct pipe_dir *d, int64_t delay_us)
{
    char buf[65536];
    ssize_t n = read(d->from, buf, sizeof(buf));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) {
        d->closed = 1;
        return d->head ? 0 : -1;
    }
    int64_t due = (now_us() + delay_us + GRID_US - 1) / GRID_US * GRID_US;
    struct chunk *t = d->tail;
    if (t && t->due_us == due && t->off == 0 && t->len + (size_t)n <= CHUNK_CAP) {
        memcpy(t->data + t->len, buf, (size_t)n);
        t->len += (size_t)n;
        return 0;
    }
    struct chunk *c = chunk_get();
    if (!c)
        return -1;
    *c = (struct chunk){.due_us = due, .len = (size_t)n};
    memcpy(c->data, buf, (size_t)n);
    if (d->tail)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    return 0;
}

/* Write every chunk whose time has come.  Returns the next due time (or
 * INT64_MAX), -1 when the connection is to be closed. */
static int64_t flush_due(struct pipe_dir *d, int64_t now)
{
    if (now < d->held_until)
        return d->held_until;
    while (d->head && d->head->due_us <= now) {
        struct chunk *c = d->head;
        ssize_t w = write(d->to, c->data + c->off, c->len - c->off);
        if (w < 0)
            return errno == EINTR || errno == EAGAIN ? now + 50 : -1;
        c->off += (size_t)w;
        if (c->off < c->len)
            return now + 50; /* the peer is slow: try again soon */
        d->head = c->next;
        if (!d->head)
            d->tail = NULL;
        chunk_put(c);
    }
    if (!d->head && d->closed)
        return -1;
    return d->head ? d->head->due_us : INT64_MAX;
}

#define MAX_CONNS 4096

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: memc-rtt-proxy LISTEN_PORT TARGET_PORT DELAY_US [HOLD_MS]\n");
        return 64;
    }
    int64_t hold_us = (argc == 5 ? atoll(argv[4]) : 1500) * 1000;
    signal(SIGUSR1, on_usr1);
    int target = atoi(argv[2]);
    int64_t delay = atoll(argv[3]);
    int lfd = listen_on(atoi(argv[1])), ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    static int timer_tag;
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &timer_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    struct pipe_dir *live[MAX_CONNS * 2];
    int nlive = 0;
    for (;;) {
        int64_t now = now_us(), next = INT64_MAX;
        if (hold_asked) {
            hold_asked = 0;
            for (int i = 0; i < nlive; i++)
                if (live[i]->answers)
                    live[i]->held_until = now + hold_us;
        }
        for (int i = 0; i < nlive;) {
            int64_t due = flush_due(live[i], now);
            if (due < 0) {
                struct pipe_dir *d = live[i], *p = d->peer;
                for (int j = 0; j < nlive; j++) /* drop both directions from the list */
                    if (live[j] == d || live[j] == p)
                        live[j--] = live[--nlive];
                conn_close(ep, d);
                i = 0;
                continue;
            }
            next = due < next ? due : next;
            i++;
        }
        struct itimerspec its = {0};
        if (next != INT64_MAX) { /* absolute: the earliest chunk's time */
            its.it_value.tv_sec = next / 1000000;
            its.it_value.tv_nsec = (next % 1000000) * 1000 + 1;
        }
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 1000);
        for (int i = 0; i < n; i++) {
            struct pipe_dir *d = evs[i].data.ptr;
            if ((void *)d == &timer_tag) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof(ticks)) < 0)
                    ticks = 0;
                continue;
            }
            if (!d) {
                if (nlive + 2 <= MAX_CONNS * 2)
                    on_accept(ep, lfd, target);
                continue;
            }
            if (on_read(d, delay) < 0)
                d->closed = 1;
            int known = 0;
            for (int j = 0; j < nlive; j++)
                known |= live[j] == d;
            if (!known) {
                live[nlive++] = d;
                live[nlive++] = d->peer;
            }
        }
    }
}

/*
 * mg-reader.c — a live reader for bench/reader-latency: one connection
 * doing meta-get round trips against one memcached, timing each, so the
 * latency a load costs the readers of the server it writes to can be read
 * off (max_rate, rewarm_max_rate).
 *
 *   memc-mg-reader PORT prime KEYS       set KEYS keys of 300 bytes, exit
 *   memc-mg-reader PORT read KEYS        mg random ones of those keys, one
 *                                        at a time, until SIGTERM/SIGINT;
 *                                        then print "OPS P50 P99 P999 MAX"
 *                                        (microseconds) on stdout
 *
 * The keys are "reader:N", apart from the load's "idfa:..." keys: every
 * read is a hit on a value the load does not touch, so what is measured is
 * memcached's (and the machine's) answer time, not the cache's content.
 * Blocking socket, TCP_NODELAY, CLOCK_MONOTONIC around each request and
 * its whole answer.  Loopback only.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VALUE_LEN 300

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("memc-mg-reader: connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("memc-mg-reader: send");
            exit(1);
        }
        buf += n, len -= (size_t)n;
    }
}

/* Read until buf holds one whole answer: "HD\r\n", "EN\r\n", or "VA <len>
 * ...\r\n" and len + 2 bytes more.  Returns 1 for a value, 0 for none; a
 * SIGTERM in between finishes the answer first. */
static int read_answer(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        char *eol = memchr(buf, '\n', have);
        if (eol) {
            size_t head = (size_t)(eol - buf) + 1;
            if (strncmp(buf, "VA ", 3) != 0)
                return 0;
            size_t want = head + (size_t)atol(buf + 3) + 2;
            if (have >= want)
                return 1;
        }
        ssize_t n = recv(fd, buf + have, cap - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "memc-mg-reader: recv: %s\n", n ? strerror(errno) : "closed");
            exit(1);
        }
        have += (size_t)n;
    }
}

static void prime(int fd, long keys)
{
    char buf[512], val[VALUE_LEN];
    memset(val, 'r', sizeof(val));
    for (long i = 0; i < keys; i++) {
        int n = snprintf(buf, sizeof(buf), "ms reader:%ld %d\r\n", i, VALUE_LEN);
        memcpy(buf + n, val, VALUE_LEN);
        memcpy(buf + n + VALUE_LEN, "\r\n", 2);
        send_all(fd, buf, (size_t)n + VALUE_LEN + 2);
        read_answer(fd, buf, sizeof(buf));
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i] / 1000.0;
}

static int read_loop(int fd, long keys)
{
    size_t n = 0, cap = 1 << 20;
    uint32_t *lat = malloc(cap * sizeof(*lat));
    char req[64], buf[4096];
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)now_ns();
    while (!stop && lat) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        int len = snprintf(req, sizeof(req), "mg reader:%ld v\r\n", (long)(seed % (uint64_t)keys));
        int64_t t0 = now_ns();
        send_all(fd, req, (size_t)len);
        if (!read_answer(fd, buf, sizeof(buf))) {
            fprintf(stderr, "memc-mg-reader: a miss (primed?)\n");
            return 1;
        }
        int64_t dt = now_ns() - t0;
        if (n == cap) {
            uint32_t *more = realloc(lat, (cap *= 2) * sizeof(*lat));
            if (!more)
                break;
            lat = more;
        }
        lat[n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
    }
    if (!lat || !n)
        return 1;
    qsort(lat, n, sizeof(*lat), cmp_u32);
    printf("%zu %.1f %.1f %.1f %.1f\n", n, pct(lat, n, 0.5), pct(lat, n, 0.99), pct(lat, n, 0.999),
           lat[n - 1] / 1000.0);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[2], "prime") && strcmp(argv[2], "read"))) {
        fprintf(stderr, "usage: memc-mg-reader PORT prime|read KEYS\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int fd = dial(atoi(argv[1]));
    long keys = atol(argv[3]);
    if (keys <= 0)
        return 2;
    if (!strcmp(argv[2], "prime")) {
        prime(fd, keys);
        return 0;
    }
    return read_loop(fd, keys);
}

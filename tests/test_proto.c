/*
 * test_proto.c — memcached's answer text as memc-load reads it (mc/proto.c):
 * mc_line (a complete line and its length), mc_line_is (a word alone or
 * followed by a blank), mc_set_answer (a set's answer, meta and classic),
 * the mg and classic get answer walkers, mc_stats_value (one value of a
 * `stats` answer); and
 * the `stats` parse behind mc_stats_fetch, fed a canned answer by a thread
 * on a loopback listener (no memcached): whole, split at every offset and a
 * byte at a time, an unexpected line, a connection closed before END, no
 * answer, a refused connect, a server left out of the mask.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"
#include "stats.h"

/* ---- mc_line --------------------------------------------------------------- */

static long L(const char *s)
{
    return mc_line(s, strlen(s));
}

static void test_line(void **state)
{
    (void)state;
    assert_int_equal(L("HD\r\n"), 2);
    assert_int_equal(L("HD\n"), 2); /* a bare LF ends a line too */
    assert_int_equal(L("\r\n"), 0);
    assert_int_equal(L("\n"), 0);
    assert_int_equal(L("SERVER_ERROR out of memory\r\nMN\r\n"), 26); /* the first line only */
    assert_int_equal(L("VA 3 \r\nabc\r\n"), 5);
    /* not complete yet */
    assert_int_equal(L(""), -1);
    assert_int_equal(L("HD"), -1);
    assert_int_equal(L("HD\r"), -1);
    /* only len bytes count: the line end beyond them is not seen */
    assert_int_equal(mc_line("HD\r\nMN\r\n", 3), -1);
    assert_int_equal(mc_line("HD\r\nMN\r\n", 4), 2);
    /* a CR inside the line stays in it, only the one before LF goes */
    assert_int_equal(L("A\rB\r\n"), 3);
    assert_int_equal(L("AB\r\r\n"), 3);
    /* bytes are bytes: a NUL does not end the line */
    assert_int_equal(mc_line("A\0B\r\n", 5), 3);
}

/* ---- mc_line_is ------------------------------------------------------------ */

static int IS(const char *line, const char *word)
{
    return mc_line_is(line, (long)strlen(line), word);
}

static void test_line_is(void **state)
{
    (void)state;
    assert_true(IS("HD", "HD"));
    assert_true(IS("EN", "EN"));
    assert_true(IS("MN", "MN"));
    assert_true(IS("END", "END"));
    assert_true(IS("VA 3 f", "VA"));
    assert_true(IS("STAT pid 1", "STAT"));
    assert_true(IS("SERVER_ERROR out of memory", "SERVER_ERROR"));
    assert_true(IS("HD ", "HD"));
    /* a longer word is another word */
    assert_false(IS("ENDX", "END"));
    assert_false(IS("END", "EN"));
    assert_false(IS("HDX", "HD"));
    assert_false(IS("STATS x", "STAT"));
    /* a tab or a CR is not the blank */
    assert_false(IS("HD\t", "HD"));
    assert_false(IS("HD\r", "HD"));
    /* shorter, empty, other case */
    assert_false(IS("H", "HD"));
    assert_false(IS("", "HD"));
    assert_false(IS("hd", "HD"));
    assert_false(IS(" HD", "HD"));
    /* n bounds the line: the bytes after it are not looked at */
    assert_true(mc_line_is("ENDX", 3, "END"));
    assert_false(mc_line_is("END", 2, "END"));
    /* what mc_line gives is what mc_line_is takes */
    const char *buf = "EN\r\nVA 2 \r\nxy\r\nMN\r\n";
    long n = mc_line(buf, strlen(buf));
    assert_true(mc_line_is(buf, n, "EN"));
    assert_false(mc_line_is(buf, n, "VA"));
    buf += n + 2;
    n = mc_line(buf, strlen(buf));
    assert_true(mc_line_is(buf, n, "VA"));
}

/* ---- mc_stats_value -------------------------------------------------------- */

static const char stats_answer[] = "STAT pid 4242\r\n"
                                   "STAT uptime 100\r\n"
                                   "STAT time 1700000100\r\n"
                                   "STAT curr_connections 3\r\n"
                                   "STAT rejected_connections 5\r\n"
                                   "STAT connections 9\r\n"
                                   "STAT evictions_extra 99\r\n"
                                   "STAT evictions 7\r\n"
                                   "STAT limit_maxbytes 67108864\r\n"
                                   "STAT curr_items 12345\r\n"
                                   "STAT version 1.6.18\r\n"
                                   "END\r\n";

/* What an mg batch's answers hand over: values, misses, in order. */
struct mg_seen {
    char text[256];
    int fail_at; /* got() refuses request i (-1: none) */
};

static int mg_got(void *ctx, uint32_t i, const struct mc_mg_answer *a, char *why, size_t whylen)
{
    struct mg_seen *s = ctx;
    size_t l = strlen(s->text);
    if ((int)i == s->fail_at) {
        snprintf(why, whylen, "refused %u", i);
        return -EPROTO;
    }
    if (a->val)
        snprintf(s->text + l, sizeof(s->text) - l, "%u=%.*s[%.*s];", i, (int)a->size, a->val,
                 (int)a->n, a->line);
    else
        snprintf(s->text + l, sizeof(s->text) - l, "%u=miss;", i);
    return 0;
}

static void test_mg_answers(void **state)
{
    (void)state;
    const char ans[] = "VA 3 t10\r\nabc\r\nEN\r\nVA 0\r\n\r\nMN\r\n";
    /* whole, and cut at every byte: the same answers, each once */
    for (size_t cut = 0; cut <= sizeof(ans) - 1; cut++) {
        struct mg_seen s = {.fail_at = -1};
        uint32_t next = 0;
        int done = 0;
        char why[128];
        long a = mc_mg_answers(ans, cut, &next, 3, mg_got, &s, &done, why, sizeof(why));
        assert_true(a >= 0 && (size_t)a <= cut);
        long b = mc_mg_answers(ans + a, sizeof(ans) - 1 - (size_t)a, &next, 3, mg_got, &s, &done,
                               why, sizeof(why));
        assert_int_equal((size_t)(a + b), sizeof(ans) - 1);
        assert_true(done);
        assert_int_equal(next, 3);
        assert_string_equal(s.text, "0=abc[VA 3 t10];1=miss;2=[VA 0];");
    }
    struct mg_seen s = {.fail_at = -1};
    uint32_t next = 0;
    int done = 0;
    char why[128];
    /* an MN before the last answer, a stray answer, a bad size, a refusal */
    assert_int_equal(mc_mg_answers("MN\r\n", 4, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    assert_string_equal(why, "unexpected answer 'MN'");
    next = 1;
    assert_int_equal(mc_mg_answers("EN\r\n", 4, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    next = 0;
    assert_int_equal(mc_mg_answers("VA x\r\n", 6, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    assert_string_equal(why, "bad answer 'VA x'");
    s.fail_at = 0;
    assert_int_equal(mc_mg_answers("EN\r\n", 4, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    assert_string_equal(why, "refused 0");
    assert_false(done);
}

/* ---- mc_set_answer -------------------------------------------------------- */

static void test_set_answer(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int meta, classic;
    } cases[] = {
        {"HD", MC_SET_STORED, MC_SET_UNEXPECTED},
        {"HD ", MC_SET_STORED, MC_SET_UNEXPECTED},
        {"STORED", MC_SET_UNEXPECTED, MC_SET_STORED},
        {"NS", MC_SET_REFUSED, MC_SET_UNEXPECTED},
        {"EX", MC_SET_REFUSED, MC_SET_UNEXPECTED},
        {"NF", MC_SET_REFUSED, MC_SET_UNEXPECTED},
        {"NOT_STORED", MC_SET_UNEXPECTED, MC_SET_REFUSED},
        {"EXISTS", MC_SET_UNEXPECTED, MC_SET_REFUSED},
        {"NOT_FOUND", MC_SET_UNEXPECTED, MC_SET_REFUSED},
        /* memcached's own: about the record; a proxy's: its server is away */
        {"SERVER_ERROR out of memory storing object", MC_SET_REFUSED, MC_SET_REFUSED},
        {"SERVER_ERROR object too large for cache", MC_SET_REFUSED, MC_SET_REFUSED},
        {"SERVER_ERROR Connection refused", MC_SET_REFUSED, MC_SET_UNAVAILABLE},
        {"SERVER_ERROR Connection timed out", MC_SET_REFUSED, MC_SET_UNAVAILABLE},
        {"SERVER_ERROR", MC_SET_REFUSED, MC_SET_UNAVAILABLE},
        {"MN", MC_SET_SYNC, MC_SET_UNEXPECTED},
        {"CLIENT_ERROR bad data chunk", MC_SET_CLIENT_ERROR, MC_SET_CLIENT_ERROR},
        {"CLIENT_ERROR", MC_SET_CLIENT_ERROR, MC_SET_CLIENT_ERROR},
        {"ERROR", MC_SET_UNEXPECTED, MC_SET_UNEXPECTED},
        {"STOREDX", MC_SET_UNEXPECTED, MC_SET_UNEXPECTED},
        {"HDX", MC_SET_UNEXPECTED, MC_SET_UNEXPECTED},
        {"", MC_SET_UNEXPECTED, MC_SET_UNEXPECTED},
        {"stored", MC_SET_UNEXPECTED, MC_SET_UNEXPECTED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = (long)strlen(cases[i].line);
        int m = mc_set_answer(cases[i].line, n, CFG_PROTO_META);
        int c = mc_set_answer(cases[i].line, n, CFG_PROTO_CLASSIC);
        if (m != cases[i].meta || c != cases[i].classic)
            fail_msg("'%s': meta %d classic %d, want %d %d", cases[i].line, m, c, cases[i].meta,
                     cases[i].classic);
        /* INHERIT (a server of no type, tests) reads as meta */
        assert_int_equal(mc_set_answer(cases[i].line, n, CFG_PROTO_INHERIT), m);
    }
    /* n bounds the line */
    assert_int_equal(mc_set_answer("STORED\r\n", 6, CFG_PROTO_CLASSIC), MC_SET_STORED);
    assert_int_equal(mc_set_answer("STORED", 5, CFG_PROTO_CLASSIC), MC_SET_UNEXPECTED);
}

/* ---- mc_get_answers -------------------------------------------------------- */

static void test_get_answers(void **state)
{
    (void)state;
    const char ans[] = "VALUE idfa:1 0 3\r\nabc\r\nEND\r\nEND\r\n"
                       "VALUE idfa:3 7 0\r\n\r\nEND\r\nVALUE k 0 5\r\nEND\r\n\r\nEND\r\n";
    /* whole, and cut at every byte: the same answers, each once; a value
     * may hold what looks like END */
    for (size_t cut = 0; cut <= sizeof(ans) - 1; cut++) {
        struct mg_seen s = {.fail_at = -1};
        uint32_t next = 0;
        int done = 0;
        char why[128];
        long a = mc_get_answers(ans, cut, &next, 4, mg_got, &s, &done, why, sizeof(why));
        assert_true(a >= 0 && (size_t)a <= cut);
        assert_int_equal(done, next == 4);
        long b = mc_get_answers(ans + a, sizeof(ans) - 1 - (size_t)a, &next, 4, mg_got, &s, &done,
                                why, sizeof(why));
        assert_int_equal((size_t)(a + b), sizeof(ans) - 1);
        assert_true(done);
        assert_int_equal(next, 4);
        assert_string_equal(s.text, "0=abc[VALUE idfa:1 0 3];1=miss;2=[VALUE idfa:3 7 0];"
                                    "3=END\r\n[VALUE k 0 5];");
    }
    struct mg_seen s = {.fail_at = -1};
    uint32_t next = 0;
    int done = 0;
    char why[128];
    /* a meta answer, a proxy's error, a bad size, no END after the value,
     * a refusal; nothing is read past the last answer */
    assert_int_equal(mc_get_answers("EN\r\n", 4, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    assert_string_equal(why, "unexpected answer 'EN'");
    assert_int_equal(mc_get_answers("SERVER_ERROR Connection refused\r\n", 33, &next, 1, mg_got, &s,
                                    &done, why, 128),
                     -EPROTO);
    assert_string_equal(why, "unexpected answer 'SERVER_ERROR Connection refused'");
    assert_int_equal(mc_get_answers("VALUE k 0 x\r\n", 13, &next, 1, mg_got, &s, &done, why, 128),
                     -EPROTO);
    assert_string_equal(why, "bad answer 'VALUE k 0 x'");
    assert_int_equal(mc_get_answers("VALUE 3\r\n", 9, &next, 1, mg_got, &s, &done, why, 128),
                     -EPROTO);
    assert_int_equal(
        mc_get_answers("VALUE k 0 1\r\nab\r\nEND\r\n", 21, &next, 1, mg_got, &s, &done, why, 128),
        -EPROTO);
    assert_string_equal(why, "a value of 1 bytes not followed by END");
    s.fail_at = 0;
    assert_int_equal(mc_get_answers("END\r\n", 5, &next, 1, mg_got, &s, &done, why, 128), -EPROTO);
    assert_string_equal(why, "refused 0");
    assert_false(done);
    s.fail_at = -1;
    assert_int_equal(mc_get_answers("END\r\nEND\r\n", 10, &next, 1, mg_got, &s, &done, why, 128),
                     5);
    assert_true(done);
    /* the request side: one get per key, no closing command */
    char req[64];
    assert_int_equal(mc_read_request(req, sizeof(req), CFG_PROTO_CLASSIC, "idfa:1x", 6, "v"), 12);
    assert_string_equal(req, "get idfa:1\r\n");
    assert_int_equal(mc_read_request(req, sizeof(req), CFG_PROTO_META, "idfa:1", 6, "v t f"), 17);
    assert_string_equal(req, "mg idfa:1 v t f\r\n");
    assert_string_equal(mc_read_end(CFG_PROTO_CLASSIC), "");
    assert_string_equal(mc_read_end(CFG_PROTO_META), "mn\r\n");
}

static void test_stats_value(void **state)
{
    (void)state;
    assert_int_equal(mc_stats_value(stats_answer, "pid"), 4242);
    /* the server's start time, as health.c computes it */
    assert_int_equal(mc_stats_value(stats_answer, "time") - mc_stats_value(stats_answer, "uptime"),
                     1700000000);
    /* a key that ends another key is not that key */
    assert_int_equal(mc_stats_value(stats_answer, "connections"), 9);
    assert_int_equal(mc_stats_value(stats_answer, "evictions"), 7);
    assert_int_equal(mc_stats_value(stats_answer, "limit_maxbytes"), 67108864);
    /* absent: -1, also for a prefix of a key */
    assert_int_equal(mc_stats_value(stats_answer, "threads"), -1);
    assert_int_equal(mc_stats_value(stats_answer, "curr"), -1);
    assert_int_equal(mc_stats_value(stats_answer, "evictions_"), -1);
    assert_int_equal(mc_stats_value("", "pid"), -1);
    /* the last line without its line end, and a value too big for a long */
    assert_int_equal(mc_stats_value("STAT pid 17", "pid"), 17);
    assert_true(mc_stats_value("STAT bytes 8589934592\r\n", "bytes") == 8589934592LL);
}

/* ---- `stats` through mc_stats_fetch ---------------------------------------- */

#define SPLIT_BYTES (-1)

struct fake {
    int lfd;
    const char *answer; /* NULL: say nothing (the client times out) */
    int split;          /* 0 whole, k > 0 at byte k, SPLIT_BYTES */
    int close_early;    /* close right after the answer instead of waiting for the client */
    char err[256];
};

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static int wait_in(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 2000) == 1;
}

/* memcached for one `stats`: read the request, write the canned answer in
 * pieces, then wait for the client to close (it does after END). */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    if (!wait_in(f->lfd)) {
        snprintf(f->err, sizeof(f->err), "no connection");
        return NULL;
    }
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    char req[16];
    size_t have = 0;
    while (fd >= 0 && have < 7 && wait_in(fd)) {
        ssize_t r = read(fd, req + have, 7 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    if (fd < 0 || have != 7 || memcmp(req, "stats\r\n", 7) != 0) {
        snprintf(f->err, sizeof(f->err), "request '%.*s'", (int)have, req);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    size_t len = f->answer ? strlen(f->answer) : 0;
    for (size_t at = 0; at < len;) {
        size_t piece = len - at;
        if (f->split == SPLIT_BYTES)
            piece = 1;
        else if (f->split > 0 && at < (size_t)f->split && (size_t)f->split < len)
            piece = (size_t)f->split - at;
        ssize_t w = send(fd, f->answer + at, piece, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the client gave up (an unexpected line): fine */
        at += (size_t)w;
        if (at < len)
            nap_us(200); /* most likely a read of its own */
    }
    if (!f->close_early) {
        char b[64];
        if (!wait_in(fd) || read(fd, b, sizeof(b)) != 0)
            snprintf(f->err, sizeof(f->err), "the client did not close");
    }
    close(fd);
    return NULL;
}

struct map_fx {
    struct memc_map map;
    int lfd[2]; /* server 0 listens; server 1 is bound only: refused */
};

static void map_init(struct map_fx *m)
{
    memset(m, 0, sizeof(*m));
    m->map.nservers = 2;
    for (int g = 0; g < 2; g++) {
        m->lfd[g] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(m->lfd[g] >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        assert_int_equal(bind(m->lfd[g], (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(m->lfd[g], (struct sockaddr *)&a, &al), 0);
        struct memc_server *s = &m->map.servers[g];
        snprintf(s->host, sizeof(s->host), "127.0.0.1");
        unsigned port = ntohs(a.sin_port);
        snprintf(s->port, sizeof(s->port), "%u", port);
        snprintf(s->name, sizeof(s->name), "127.0.0.1:%u", port);
        s->type = g;
        m->map.first[g] = g;
        m->map.count[g] = 1;
    }
    assert_int_equal(listen(m->lfd[0], 4), 0);
}

static void map_free(struct map_fx *m)
{
    close(m->lfd[0]);
    close(m->lfd[1]);
}

/* One fetch from server 0 (mask) with the fake saying answer. */
static void fetch(struct map_fx *m, uint32_t mask, struct fake *f, int timeout_ms,
                  struct mc_stats *out)
{
    pthread_t th;
    f->lfd = m->lfd[0];
    if (mask & 1)
        assert_int_equal(pthread_create(&th, NULL, fake_main, f), 0);
    assert_int_equal(mc_stats_fetch(&m->map, mask, timeout_ms, out), 0);
    if (mask & 1) {
        assert_int_equal(pthread_join(th, NULL), 0);
        if (f->err[0])
            fail_msg("split %d: fake server: %s", f->split, f->err);
    }
}

/* The same memcached: the same pid, start times within 2 s; a restart
 * (another pid, or the same pid started later) or no pid is not. */
static void test_same_instance(void **state)
{
    (void)state;
    assert_true(mc_same_instance(42, 1700000000, 42, 1700000000));
    assert_true(mc_same_instance(42, 1700000000, 42, 1700000002));
    assert_false(mc_same_instance(42, 1700000000, 42, 1700000003));
    assert_false(mc_same_instance(42, 1700000000, 43, 1700000000));
    assert_false(mc_same_instance(0, 1700000000, 0, 1700000000));
    assert_false(mc_same_instance(-1, -1, -1, -1));
}

static void test_stats_fetch_splits(void **state)
{
    (void)state;
    struct map_fx m;
    map_init(&m);
    int len = (int)strlen(stats_answer);
    for (int split = SPLIT_BYTES; split <= len; split++) {
        struct fake f = {.answer = stats_answer, .split = split};
        struct mc_stats out[2];
        memset(out, 0xab, sizeof(out));
        fetch(&m, 1, &f, 1000, out);
        if (!out[0].ok)
            fail_msg("split %d: %s", split, out[0].why);
        assert_int_equal(out[0].evictions, 7);
        assert_int_equal(out[0].limit_maxbytes, 67108864);
        assert_int_equal(out[0].curr_items, 12345);
        assert_int_equal(out[0].pid, 4242); /* its identity */
        assert_int_equal(out[0].time - out[0].uptime, 1700000000);
        /* a server not in the mask: nothing asked, nothing known */
        assert_int_equal(out[1].ok, 0);
        assert_int_equal(out[1].evictions, 0);
        assert_string_equal(out[1].why, "");
    }
    map_free(&m);
}

static void test_stats_fetch_failures(void **state)
{
    (void)state;
    struct map_fx m;
    map_init(&m);
    struct mc_stats out[2];

    /* not `stats` text: memcached without it, or something else listening */
    struct fake bad = {.answer = "STAT pid 1\r\nERROR\r\n", .close_early = 1};
    fetch(&m, 1, &bad, 1000, out);
    assert_int_equal(out[0].ok, 0);
    assert_string_equal(out[0].why, "unexpected answer 'ERROR'");

    /* closed before END: the values so far do not count as an answer */
    struct fake cut = {.answer = "STAT evictions 7\r\nSTAT curr_items 1\r\n", .close_early = 1};
    fetch(&m, 1, &cut, 1000, out);
    assert_int_equal(out[0].ok, 0);
    assert_string_equal(out[0].why, "connection closed by the server");

    /* no answer at all */
    struct fake mute = {.answer = NULL};
    fetch(&m, 1, &mute, 30, out);
    assert_int_equal(out[0].ok, 0);
    assert_string_equal(out[0].why, "no answer for 30 ms");

    /* both servers: one answers, one refuses the connection */
    struct fake good = {.answer = "STAT curr_items 2\r\nEND\r\n"};
    fetch(&m, 3, &good, 1000, out);
    assert_int_equal(out[0].ok, 1);
    assert_int_equal(out[0].curr_items, 2);
    assert_int_equal(out[0].evictions, 0);
    assert_int_equal(out[1].ok, 0);
    assert_string_equal(out[1].why, "connect: Connection refused");
    map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_line_is),
        cmocka_unit_test(test_mg_answers),
        cmocka_unit_test(test_set_answer),
        cmocka_unit_test(test_get_answers),
        cmocka_unit_test(test_stats_value),
        cmocka_unit_test(test_same_instance),
        cmocka_unit_test(test_stats_fetch_splits),
        cmocka_unit_test(test_stats_fetch_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

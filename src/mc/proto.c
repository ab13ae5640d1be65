/*
 * proto.c — the text of memcached's protocol as memc-load reads it
 * (proto.h): answer lines to sets and reads, meta and classic, and `stats`
 * values.
 */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One answer line: its length without \r\n, or -1 if it is not complete. */
long mc_line(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return -1;
    long n = (long)(nl - buf);
    return n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
}

int mc_line_is(const char *line, long n, const char *word)
{
    size_t w = strlen(word);
    return (size_t)n >= w && memcmp(line, word, w) == 0 && ((size_t)n == w || line[w] == ' ');
}

long long mc_stats_value(const char *buf, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof(pat), "STAT %s ", key);
    const char *p = strstr(buf, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

int mc_same_instance(long long pid_a, long long start_a, long long pid_b, long long start_b)
{
    return pid_a > 0 && pid_a == pid_b && llabs(start_a - start_b) <= 2;
}

/* One answer at buf (its line n bytes long): the bytes it takes, 0 if its
 * value is not all here, -EPROTO. */
static long mc_mg_one(const char *buf, size_t len, long n, uint32_t i, mc_mg_fn got, void *ctx,
                      char *why, size_t whylen)
{
    size_t hdr = (size_t)((const char *)memchr(buf, '\n', len) - buf) + 1;
    struct mc_mg_answer a = {.line = buf, .n = (size_t)n};
    if (mc_line_is(buf, n, "VA")) {
        char *end;
        unsigned long size = strtoul(buf + 3, &end, 10);
        if (end == buf + 3 || size > (1ul << 30)) {
            snprintf(why, whylen, "bad answer '%.*s'", (int)(n > 40 ? 40 : n), buf);
            return -EPROTO;
        }
        if (len < hdr + size + 2)
            return 0;
        a.val = buf + hdr;
        a.size = size;
        hdr += size + 2;
    }
    return got(ctx, i, &a, why, whylen) < 0 ? -EPROTO : (long)hdr;
}

long mc_mg_answers(const char *buf, size_t len, uint32_t *next, uint32_t count, mc_mg_fn got,
                   void *ctx, int *done, char *why, size_t whylen)
{
    size_t off = 0;
    while (off < len) {
        const char *l = buf + off;
        long n = mc_line(l, len - off);
        if (n < 0)
            break;
        if (mc_line_is(l, n, "MN") && *next == count) {
            *done = 1;
            return (long)(off + (size_t)((const char *)memchr(l, '\n', len - off) - l) + 1);
        }
        if (*next >= count || !(mc_line_is(l, n, "EN") || mc_line_is(l, n, "VA"))) {
            snprintf(why, whylen, "unexpected answer '%.*s'", (int)(n > 40 ? 40 : n), l);
            return -EPROTO;
        }
        long used = mc_mg_one(l, len - off, n, *next, got, ctx, why, whylen);
        if (used <= 0)
            return used < 0 ? used : (long)off;
        ++*next;
        off += (size_t)used;
    }
    return (long)off;
}

const char mc_meta_closed[] = "closed the connection on a meta command: a proxy without meta "
                              "support? set protocol = classic for this type";

/* memcached's own SERVER_ERROR to a set: about the record, not the server. */
static int mc_server_error_own(const char *line, long n)
{
    static const char *const own[] = {"SERVER_ERROR out of memory",
                                      "SERVER_ERROR object too large"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        size_t w = strlen(own[i]);
        if ((size_t)n >= w && memcmp(line, own[i], w) == 0)
            return 1;
    }
    return 0;
}

enum mc_set_answer mc_set_answer(const char *line, long n, int protocol)
{
    if (mc_line_is(line, n, "CLIENT_ERROR"))
        return MC_SET_CLIENT_ERROR;
    if (protocol == CFG_PROTO_CLASSIC) {
        if (mc_line_is(line, n, "STORED"))
            return MC_SET_STORED;
        if (mc_line_is(line, n, "NOT_STORED") || mc_line_is(line, n, "EXISTS") ||
            mc_line_is(line, n, "NOT_FOUND"))
            return MC_SET_REFUSED;
        if (mc_line_is(line, n, "SERVER_ERROR"))
            return mc_server_error_own(line, n) ? MC_SET_REFUSED : MC_SET_UNAVAILABLE;
        return MC_SET_UNEXPECTED;
    }
    if (mc_line_is(line, n, "HD"))
        return MC_SET_STORED;
    if (mc_line_is(line, n, "NS") || mc_line_is(line, n, "EX") || mc_line_is(line, n, "NF") ||
        mc_line_is(line, n, "SERVER_ERROR"))
        return MC_SET_REFUSED;
    if (mc_line_is(line, n, "MN"))
        return MC_SET_SYNC;
    return MC_SET_UNEXPECTED;
}

/* One classic answer at buf (its line n bytes long, hdr with its line
 * end): the bytes it takes through its END, 0 if not all here, -EPROTO. */
static long mc_get_one(const char *buf, size_t len, long n, size_t hdr, uint32_t i, mc_mg_fn got,
                       void *ctx, char *why, size_t whylen)
{
    struct mc_mg_answer a = {.line = buf, .n = (size_t)n};
    if (mc_line_is(buf, n, "VALUE")) {
        /* VALUE <key> <flags> <bytes>: the size is the last word */
        const char *sp = memrchr(buf, ' ', (size_t)n);
        char *end;
        unsigned long size = strtoul(sp + 1, &end, 10);
        if (sp < buf + 6 || end != buf + n || end == sp + 1 || size > (1ul << 30)) {
            snprintf(why, whylen, "bad answer '%.*s'", (int)(n > 40 ? 40 : n), buf);
            return -EPROTO;
        }
        if (len < hdr + size + 2 + 5)
            return 0;
        if (memcmp(buf + hdr + size, "\r\n", 2) != 0 ||
            memcmp(buf + hdr + size + 2, "END\r\n", 5) != 0) {
            snprintf(why, whylen, "a value of %lu bytes not followed by END", size);
            return -EPROTO;
        }
        a.val = buf + hdr;
        a.size = size;
        hdr += size + 2 + 5;
    }
    return got(ctx, i, &a, why, whylen) < 0 ? -EPROTO : (long)hdr;
}

long mc_get_answers(const char *buf, size_t len, uint32_t *next, uint32_t count, mc_mg_fn got,
                    void *ctx, int *done, char *why, size_t whylen)
{
    size_t off = 0;
    while (off < len && *next < count) {
        const char *l = buf + off;
        long n = mc_line(l, len - off);
        if (n < 0)
            break;
        if (!(mc_line_is(l, n, "END") && n == 3) && !mc_line_is(l, n, "VALUE")) {
            snprintf(why, whylen, "unexpected answer '%.*s'", (int)(n > 40 ? 40 : n), l);
            return -EPROTO;
        }
        size_t hdr = (size_t)((const char *)memchr(l, '\n', len - off) - l) + 1;
        long used = mc_get_one(l, len - off, n, hdr, *next, got, ctx, why, whylen);
        if (used <= 0)
            return used < 0 ? used : (long)off;
        ++*next;
        off += (size_t)used;
    }
    if (*next == count)
        *done = 1;
    return (long)off;
}

size_t mc_read_request(char *out, size_t cap, int protocol, const char *key, size_t klen,
                       const char *mg_flags)
{
    int n = protocol == CFG_PROTO_CLASSIC
                ? snprintf(out, cap, "get %.*s\r\n", (int)klen, key)
                : snprintf(out, cap, "mg %.*s %s\r\n", (int)klen, key, mg_flags);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

const char *mc_read_end(int protocol)
{
    return protocol == CFG_PROTO_CLASSIC ? "" : "mn\r\n";
}

long mc_read_answers(int protocol, const char *buf, size_t len, uint32_t *next, uint32_t count,
                     mc_mg_fn got, void *ctx, int *done, char *why, size_t whylen)
{
    return protocol == CFG_PROTO_CLASSIC
               ? mc_get_answers(buf, len, next, count, got, ctx, done, why, whylen)
               : mc_mg_answers(buf, len, next, count, got, ctx, done, why, whylen);
}

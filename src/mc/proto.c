/*
 * proto.c — the text of memcached's protocol as memc-load reads it
 * (proto.h): answer lines, and `stats` values.
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

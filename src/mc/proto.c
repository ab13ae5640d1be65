/*
 * proto.c — the text of memcached's protocol as memc-load reads it
 * (proto.h): answer lines, and `stats` values.
 */
#include "proto.h"

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

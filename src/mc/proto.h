/*
 * proto.h — memcached's protocol text, read in one place: the answer lines
 * of meta commands and `stats`.  Pure functions over byte ranges, unit
 * tested without a server.
 */
#ifndef MEMC_PROTO_H
#define MEMC_PROTO_H

#include <stddef.h>

/* One answer line: its length without \r\n, or -1 if it is not complete. */
long mc_line(const char *buf, size_t len);
/* The line (n bytes, no \r\n) is the word alone or the word and a blank. */
int mc_line_is(const char *line, long n, const char *word);
/* The value of "STAT key value" in a NUL-terminated `stats` answer, -1 if
 * absent. */
long long mc_stats_value(const char *buf, const char *key);

#endif

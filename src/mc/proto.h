/*
 * proto.h — memcached's protocol text, read in one place: the answer lines
 * of meta commands and `stats`.  Pure functions over byte ranges, unit
 * tested without a server.
 */
#ifndef MEMC_PROTO_H
#define MEMC_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* One answer line: its length without \r\n, or -1 if it is not complete. */
long mc_line(const char *buf, size_t len);
/* The line (n bytes, no \r\n) is the word alone or the word and a blank. */
int mc_line_is(const char *line, long n, const char *word);

/* An `mg` answer: a value ("VA <size> <flags>", val its size bytes) or a
 * miss ("EN", val NULL); line is the answer line (n bytes, no \r\n).
 * 0, or -EPROTO (why says it) to end the exchange. */
struct mc_mg_answer {
    const char *line, *val;
    size_t n, size;
};
typedef int (*mc_mg_fn)(void *ctx, uint32_t i, const struct mc_mg_answer *a, char *why,
                        size_t whylen);
/*
 * The answers to a batch of count `mg <key> v ...` requests and a closing
 * `mn`, as they arrive in buf: each of requests *next..count-1 handed to
 * got in order (*next advances), then MN sets *done.  Returns the bytes
 * consumed (an answer not all here waits for more), or -EPROTO with why.
 */
long mc_mg_answers(const char *buf, size_t len, uint32_t *next, uint32_t count, mc_mg_fn got,
                   void *ctx, int *done, char *why, size_t whylen);

/* The value of "STAT key value" in a NUL-terminated `stats` answer, -1 if
 * absent. */
long long mc_stats_value(const char *buf, const char *key);

#endif

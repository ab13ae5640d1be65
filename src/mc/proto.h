/*
 * proto.h — memcached's protocol text, read in one place: the answer lines
 * of meta commands and `stats`.  Pure functions over byte ranges, unit
 * tested without a server.
 */
#ifndef MEMC_PROTO_H
#define MEMC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

/* What one answer line to a set (n bytes, no \r\n) says about its record,
 * for protocol (enum cfg_protocol): meta `ms` answers HD / NS EX NF /
 * SERVER_ERROR, and MN for the batch's `mn`; classic `set` answers STORED /
 * NOT_STORED EXISTS NOT_FOUND / SERVER_ERROR, and has no sync point. */
enum mc_set_answer {
    MC_SET_STORED,       /* HD, STORED */
    MC_SET_REFUSED,      /* not stored, about the record: NS EX NF, NOT_STORED EXISTS
                          * NOT_FOUND, SERVER_ERROR (meta: any; classic: memcached's own,
                          * "out of memory ..." or "object too large ...") */
    MC_SET_UNAVAILABLE,  /* classic: any other SERVER_ERROR, a proxy's word that the server
                          * behind it did not take the record ("Connection refused"): not
                          * stored, to send again later */
    MC_SET_SYNC,         /* meta: MN */
    MC_SET_CLIENT_ERROR, /* CLIENT_ERROR ... */
    MC_SET_UNEXPECTED,   /* anything else (ERROR: the server does not know the command) */
};
enum mc_set_answer mc_set_answer(const char *line, long n, int protocol);

/* The message for a server that closed the connection, without a word,
 * on a meta command (twemproxy does). */
extern const char mc_meta_closed[];

/*
 * The answers to a batch of count classic `get <key>` requests, one key
 * each: "VALUE <key> <flags> <bytes>" with its data then END (a hit, line
 * the VALUE line), or END alone (a miss), handed to got as mc_mg_answers
 * does; *done once all count are answered (classic has no sync point).
 */
long mc_get_answers(const char *buf, size_t len, uint32_t *next, uint32_t count, mc_mg_fn got,
                    void *ctx, int *done, char *why, size_t whylen);

/* Reading keys back, whatever the protocol: the request for one key
 * ("mg <key> <mg_flags>" or "get <key>", with \r\n) written to out (cap
 * bytes: PARSE_MAX_KEY + 16 is enough) and its length; the batch's end
 * ("mn\r\n" or ""); and its answers (mc_mg_answers or mc_get_answers). */
size_t mc_read_request(char *out, size_t cap, int protocol, const char *key, size_t klen,
                       const char *mg_flags);
const char *mc_read_end(int protocol);
long mc_read_answers(int protocol, const char *buf, size_t len, uint32_t *next, uint32_t count,
                     mc_mg_fn got, void *ctx, int *done, char *why, size_t whylen);

/* The value of "STAT key value" in a NUL-terminated `stats` answer, -1 if
 * absent. */
long long mc_stats_value(const char *buf, const char *key);
/* Two `stats` answers (pid, and start time = time - uptime) are from the
 * same memcached process, not a restarted one: the same pid and start
 * times within 2 s (time and uptime are read at one instant; slack all
 * the same).  A pid <= 0 (not a memcached's answer) is never the same. */
int mc_same_instance(long long pid_a, long long start_a, long long pid_b, long long start_b);

#endif

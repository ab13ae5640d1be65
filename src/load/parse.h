/*
 * parse.h — the line contract: one TSV line in, one record (or a reason why
 * not) out.  Pure functions over byte ranges; no allocation, no locale, no
 * NUL-terminated strings (input may contain NUL bytes).
 *
 * Rules (the original memc_load.py, with its bugs fixed):
 *   - the line is stripped of ASCII whitespace; blank lines are PARSE_BLANK;
 *   - exactly 5 TAB-separated fields: dev_type dev_id lat lon apps;
 *   - dev_type and dev_id non-empty, dev_type configured;
 *   - key "dev_type:dev_id" at most 250 bytes, no whitespace/control bytes;
 *   - lat/lon as Python float() reads decimal text, finite;
 *   - apps: comma-separated, each item stripped, kept if it is a decimal
 *     integer <= 4294967295, otherwise dropped (the record is "dirty").
 */
#ifndef MEMC_PARSE_H
#define MEMC_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

/* Device types the parser accepts: names and whether each is configured. */
struct parse_types {
    int count;
    const char *name[8];
    uint8_t name_len[8];
    uint8_t enabled[8];
};

struct parse_rec {
    int type;             /* index into parse_types */
    const char *dev_type; /* points into the line */
    size_t dev_type_len;
    const char *dev_id;
    size_t dev_id_len;
    double lat, lon;
    size_t napps;
    int dirty; /* some app items were dropped */
};

/* Whole line (without terminator).  apps must hold parse_apps_cap(len)
 * entries. */
enum parse_status parse_line(const struct parse_types *types, const char *line, size_t len,
                             struct parse_rec *rec, uint32_t *apps);

/* The most app items a line of len bytes can carry. */
static inline size_t parse_apps_cap(size_t len)
{
    return len / 2 + 1;
}

/* Exact powers of ten representable in a double (10^0 .. 10^22): with a
 * mantissa below 2^53, mant / 10^k is Python's float() in one rounding
 * (parse_float's exact path, and parse_fast's coordinates). */
#define PARSE_POW10_MAX 22
extern const double parse_pow10[PARSE_POW10_MAX + 1];

/* Eight digit values (0..9, one per byte, the first digit in the lowest
 * byte; leading bytes zero for fewer digits) to their number: pairs, quads,
 * then all eight, in three multiply steps (SWAR). */
static inline uint32_t parse_swar8(uint64_t d)
{
    d = d * 10 + (d >> 8);
    d = (((d & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
         (((d >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
        32;
    return (uint32_t)d;
}

/* Python float() on decimal text, surrounding ASCII whitespace allowed.
 * 0 and *out on success, -1 if the text is not a decimal number. */
int parse_float(const char *s, size_t len, double *out);

/* Where to cut text so it holds whole lines (the reader's blocks): just
 * after the last line end before the final byte, so a \r at the very end
 * is not trusted (its \n may come in the next read) and a \r\n pair is
 * never split.  0 if there is no usable line end. */
size_t parse_cut(const char *t, size_t len);

/* Strip ASCII whitespace (space \t \n \v \f \r) from both ends. */
void parse_strip(const char **s, size_t *len);

/* 1 if the key bytes are storable by memcached's text/meta protocol. */
int parse_key_ok(const char *key, size_t len);

#endif

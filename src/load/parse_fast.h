/*
 * parse_fast.h — one pass over a well-formed line: parse and pack at once.
 *
 * Almost every line of a real dump is "type\tid\tlat\tlon\tN,N,...,N" with
 * plain decimal app ids.  parse_fast() takes exactly those lines: it finds
 * the line's end itself (no separate search for \n and \r, no second search
 * for tabs), scans 32 bytes at a time (SSE2, part of every x86-64; plain
 * byte loops elsewhere), converts each app item without waiting for the one
 * before it (the item ends come from a bit mask, not from the previous
 * item's length), and writes the UserApps bytes straight into the value
 * buffer: no apps array, no second pass.
 *
 * It never decides that a line is bad.  Anything unusual (a space, an empty
 * or 9+ digit item, an unknown or disabled type, a byte that does not
 * belong, a line longer than its limit) returns NULL and the plain parser
 * (parse_line + pack_user_apps) takes that line.  So its contract is small
 * and tested differentially (tests/test_parse.c, fuzz_parse): whenever it
 * accepts a line, parse_line() on the same bytes gives PARSE_OK, not dirty,
 * the same fields, and pack_user_apps() the same value bytes.
 */
#ifndef MEMC_PARSE_FAST_H
#define MEMC_PARSE_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* Longest line the fast path takes; longer ones go the plain way. */
#define PARSE_FAST_MAX_LINE 8192
/* Room the value buffer needs: every item is at least one digit and a
 * comma, and packs to at most 5 bytes (8 digits < 2^28). */
#define PARSE_FAST_VAL_CAP ((PARSE_FAST_MAX_LINE / 2 + 1) * 5 + 18)

/*
 * The line that starts at s (the text ends at end; a line ends at \n, \r,
 * \r\n or end) if it is well formed and at most max_len bytes long: fills
 * rec (dirty 0), writes the packed value to val (PARSE_FAST_VAL_CAP bytes)
 * and its length to *vlen, and returns where the next line starts.  NULL:
 * not taken, nothing to trust in rec or val.
 */
const char *parse_fast(const struct parse_types *types, const char *s, const char *end,
                       size_t max_len, struct parse_rec *rec, uint8_t *val, size_t *vlen);

/* The same without SIMD, built only into the tests (PARSE_FAST_SCALAR). */
const char *parse_fast_scalar(const struct parse_types *types, const char *s, const char *end,
                              size_t max_len, struct parse_rec *rec, uint8_t *val, size_t *vlen);

#endif

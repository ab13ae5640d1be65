/*
 * parse_fast_check.h — the differential check of parse_fast (see
 * src/parse_fast.h), shared by tests/test_parse_fast.c and the parse fuzzer.
 *
 * Walks a text the way the packer does: at each line start it asks the fast
 * path; where that takes the line, the plain path (line end found with \n,
 * \r, \r\n, then parse_line + pack_user_apps) must agree on everything: the
 * next line's start, PARSE_OK within max_len, not dirty, type, key, lat,
 * lon (bit for bit), app count and the value bytes.  Returns NULL or what
 * differed; *taken counts the lines the fast path took, *lines all lines.
 */
#ifndef PARSE_FAST_CHECK_H
#define PARSE_FAST_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "pack.h"
#include "parse.h"
#include "parse_fast.h"

typedef const char *(*pf_fn)(const struct parse_types *, const char *, const char *, size_t,
                             struct parse_rec *, uint8_t *, size_t *);

static inline const char *pf_plain_end(const char *s, const char *end, const char **next)
{
    const char *e = s;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    *next = e == end ? end : (*e == '\r' && e + 1 < end && e[1] == '\n') ? e + 2 : e + 1;
    return e;
}

static inline const char *pf_check_line(const struct parse_types *t, const char *s, const char *end,
                                        const char *next, size_t max_len, const struct parse_rec *f,
                                        const uint8_t *fval, size_t fvlen)
{
    const char *pnext;
    size_t len = (size_t)(pf_plain_end(s, end, &pnext) - s);
    struct parse_rec r;
    uint32_t *apps = malloc(parse_apps_cap(len) * sizeof(*apps));
    uint8_t *val = malloc(pack_max_size(parse_apps_cap(len)));
    const char *why = NULL;
    if (!apps || !val)
        why = "out of memory";
    else if (next != pnext)
        why = "next line start differs";
    else if (len > max_len)
        why = "took a line longer than max_len";
    else if (parse_line(t, s, len, &r, apps) != PARSE_OK)
        why = "took a line parse_line refuses";
    else if (r.dirty || f->dirty)
        why = "took a dirty line";
    else if (r.type != f->type || r.dev_type != f->dev_type || r.dev_id != f->dev_id ||
             r.dev_type_len != f->dev_type_len || r.dev_id_len != f->dev_id_len)
        why = "type or key differs";
    else if (memcmp(&r.lat, &f->lat, sizeof(double)) || memcmp(&r.lon, &f->lon, sizeof(double)))
        why = "lat or lon differs";
    else if (r.napps != f->napps)
        why = "app count differs";
    else if (pack_user_apps(apps, r.napps, r.lat, r.lon, val) != fvlen ||
             memcmp(val, fval, fvlen) != 0)
        why = "value bytes differ";
    free(apps);
    free(val);
    return why;
}

static inline const char *pf_check(pf_fn fast, const struct parse_types *t, const char *text,
                                   size_t n, size_t max_len, size_t *taken, size_t *lines,
                                   const char **where)
{
    static uint8_t fval[PARSE_FAST_VAL_CAP];
    const char *s = text, *end = text + n;
    while (s < end) {
        struct parse_rec f;
        size_t fvlen;
        const char *next = fast(t, s, end, max_len, &f, fval, &fvlen), *pnext;
        ++*lines;
        if (!next) {
            pf_plain_end(s, end, &pnext);
            s = pnext;
            continue;
        }
        ++*taken;
        const char *why = pf_check_line(t, s, end, next, max_len, &f, fval, fvlen);
        if (why) {
            *where = s;
            return why;
        }
        s = next;
    }
    return NULL;
}

#endif

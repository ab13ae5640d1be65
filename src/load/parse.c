/*
 * parse.c — the line contract (see parse.h for the rules).
 *
 * Cost: one pass per field plus memchr for the separators; lat/lon take the
 * exact fast path (Clinger) when the decimal has at most 15 significant
 * digits and a small exponent, which is every coordinate "%.12g" writes, and
 * fall back to strtod() otherwise.  Both give the correctly rounded double,
 * which is what Python's float() gives, so the packed bytes match.
 */
#include "parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int parse_is_space(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r'); /* \t \n \v \f \r */
}

void parse_strip(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n && parse_is_space((unsigned char)*p))
        p++, n--;
    while (n && parse_is_space((unsigned char)p[n - 1]))
        n--;
    *s = p;
    *len = n;
}

int parse_key_ok(const char *key, size_t len)
{
    if (len == 0 || len > PARSE_MAX_KEY)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch <= ' ' || ch == 0x7f)
            return 0;
    }
    return 1;
}

const double parse_pow10[PARSE_POW10_MAX + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The exponent part after 'e' or 'E': [sign] digitpart, added to *exp10.
 * Advances *pp past it; -1 if it has no digits.  Huge exponents saturate
 * (the result is then 0 or infinite either way).
 */
static inline int parse_float_exp(const char **pp, const char *end, int *exp10)
{
    const char *p = *pp;
    int eneg = 0, edig = 0;
    long e = 0;
    if (p < end && (*p == '+' || *p == '-'))
        eneg = (*p++ == '-');
    while (p < end) {
        if (*p >= '0' && *p <= '9') {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            edig++;
            p++;
        } else if (*p == '_' && edig && p + 1 < end && p[1] >= '0' && p[1] <= '9') {
            p++;
        } else {
            break;
        }
    }
    if (!edig)
        return -1;
    *exp10 += (int)(eneg ? -e : e);
    *pp = p;
    return 0;
}

/* Slow path: let the C library round correctly.  Copy without underscores;
 * the text (already validated, sign included) is bounded by the line length.
 * -1 if out of memory. */
static int parse_float_strtod(const char *s, size_t len, double *out)
{
    char small[128], *buf = small;
    if (len + 1 > sizeof(small) && !(buf = malloc(len + 1)))
        return -1;
    size_t o = 0;
    for (const char *q = s; q < s + len; q++)
        if (*q != '_')
            buf[o++] = *q;
    buf[o] = 0;
    *out = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return 0;
}

/* The significant digits collected so far: value = mant * 10^exp10. */
struct parse_dec {
    uint64_t mant;
    int ndig;    /* significant digits in mant (at most 19) */
    int dropped; /* a nonzero digit beyond those was dropped */
    int exp10;
};

/*
 * One digitpart (digit (["_"] digit)*) of the integer part (frac 0) or the
 * fraction (frac 1) into *d; advances *pp past it and returns its digit
 * count (0: no digitpart here).  Digits beyond the 19 kept scale the
 * integer part instead.
 */
static inline int parse_float_digits(const char **pp, const char *end, struct parse_dec *d,
                                     int frac)
{
    const char *p = *pp;
    int digits = 0;
    while (p < end) {
        if (*p >= '0' && *p <= '9') {
            if (d->ndig < 19) {
                d->mant = d->mant * 10 + (uint64_t)(*p - '0');
                if (d->mant)
                    d->ndig++;
                d->exp10 -= frac;
            } else {
                d->exp10 += !frac;
                if (*p != '0')
                    d->dropped = 1;
            }
            digits++;
            p++;
        } else if (*p == '_' && digits && p + 1 < end && p[1] >= '0' && p[1] <= '9') {
            p++;
        } else {
            break;
        }
    }
    *pp = p;
    return digits;
}

/*
 * Python's float() grammar for decimal text (PEP 515 underscores included):
 *   [sign] (digitpart ["." [digitpart]] | "." digitpart) [(e|E) [sign] digitpart]
 *   digitpart = digit (["_"] digit)*
 * Validates, and on the way collects up to 19 significant digits for the
 * fast path.
 */
int parse_float(const char *s, size_t len, double *out)
{
    parse_strip(&s, &len);
    const char *p = s, *end = s + len;
    struct parse_dec d = {0, 0, 0, 0};
    int neg = 0;

    if (p < end && (*p == '+' || *p == '-'))
        neg = (*p++ == '-');
    int digits = parse_float_digits(&p, end, &d, 0);
    if (p < end && *p == '.') {
        p++;
        digits += parse_float_digits(&p, end, &d, 1);
    }
    if (!digits)
        return -1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (parse_float_exp(&p, end, &d.exp10) < 0)
            return -1;
    }
    if (p != end)
        return -1;

    double v;
    if (!d.dropped && d.mant < (1ull << 53) && d.exp10 >= -PARSE_POW10_MAX &&
        d.exp10 <= PARSE_POW10_MAX) {
        /* Clinger's fast path: both operands exact, one IEEE rounding. */
        v = d.exp10 < 0 ? (double)d.mant / parse_pow10[-d.exp10]
                        : (double)d.mant * parse_pow10[d.exp10];
    } else if (d.mant == 0 && !d.dropped) {
        v = 0.0;
    } else {
        if (parse_float_strtod(s, len, &v) < 0)
            return -1;
        neg = 0; /* strtod saw the sign */
    }
    if (neg)
        v = -v;
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/*
 * Parse the apps field into apps[]; returns the count, sets *dirty if an
 * item was dropped.  One pass, one byte at a time: items are 1-4 digits
 * typically, so a memchr per comma costs more than it saves.  Each item is
 * [spaces] digits [spaces]; anything else (sign, letters, empty, more than
 * 4294967295) drops the item.
 */
static size_t parse_apps(const char *s, size_t len, uint32_t *apps, int *dirty)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t n = 0;
    int bad = 0;
    for (;;) {
        uint64_t v = 0;
        int digits = 0, ok = 1;
        if (end - p >= 8) {
            /* Fast path: 1..7 digits then ',' or the field end, parsed 8
             * bytes at a time (SWAR).  y holds each byte minus '0'; a byte
             * is a digit iff its y < 10, i.e. the high bit of y | (y + 0x76)
             * is clear.  Carries only move towards later bytes, so the
             * first non-digit is found exactly. */
            uint64_t x, y, m;
            memcpy(&x, p, 8);
            y = x ^ 0x3030303030303030ull;
            m = (y | (y + 0x7676767676767676ull)) & 0x8080808080808080ull;
            int nd = m ? __builtin_ctzll(m) / 8 : 8;
            if (nd > 0 && nd < 8 && (p[nd] == ',' || p + nd == end)) {
                /* the nd digits to the top: leading zero digits below */
                apps[n++] = parse_swar8(y << (8 * (8 - nd)));
                p += nd;
                if (p >= end)
                    break;
                p++;
                continue;
            }
        }
        while (p < end && parse_is_space(*p))
            p++;
        while (p < end) {
            unsigned d = (unsigned)*p - '0';
            if (d > 9)
                break;
            v = v * 10 + d;
            if (v > UINT32_MAX) {
                ok = 0;
                v = UINT32_MAX + 1ull; /* keep it bounded, item is dropped */
            }
            digits = 1;
            p++;
        }
        while (p < end && parse_is_space(*p))
            p++;
        if (p < end && *p != ',') {
            ok = 0; /* garbage in the item: skip to the next comma */
            while (p < end && *p != ',')
                p++;
        }
        if (ok && digits)
            apps[n++] = (uint32_t)v;
        else
            bad = 1;
        if (p >= end)
            break;
        p++; /* the comma */
    }
    *dirty = bad;
    return n;
}

enum parse_status parse_line(const struct parse_types *types, const char *line, size_t len,
                             struct parse_rec *rec, uint32_t *apps)
{
    parse_strip(&line, &len);
    if (!len)
        return PARSE_BLANK;

    const char *f[5];
    size_t fl[5];
    const char *p = line, *end = line + len;
    for (int i = 0; i < 5; i++) {
        const char *tab = i < 4 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
        if (i < 4 && !tab)
            return PARSE_FIELDS;
        f[i] = p;
        fl[i] = i < 4 ? (size_t)(tab - p) : (size_t)(end - p);
        p = i < 4 ? tab + 1 : end;
    }
    if (memchr(f[4], '\t', fl[4]))
        return PARSE_FIELDS;
    if (!fl[0] || !fl[1])
        return PARSE_EMPTY_FIELD;

    int type = -1;
    for (int i = 0; i < types->count; i++)
        if (types->name_len[i] == fl[0] && memcmp(types->name[i], f[0], fl[0]) == 0) {
            type = i;
            break;
        }
    if (type < 0 || !types->enabled[type])
        return PARSE_UNKNOWN_TYPE;
    /* The key is dev_type ':' dev_id; dev_type is a known clean name. */
    if (fl[0] + 1 + fl[1] > PARSE_MAX_KEY || !parse_key_ok(f[1], fl[1]))
        return PARSE_BAD_KEY;
    if (parse_float(f[2], fl[2], &rec->lat) < 0)
        return PARSE_BAD_LAT;
    if (parse_float(f[3], fl[3], &rec->lon) < 0)
        return PARSE_BAD_LON;
    rec->type = type;
    rec->dev_type = f[0];
    rec->dev_type_len = fl[0];
    rec->dev_id = f[1];
    rec->dev_id_len = fl[1];
    rec->napps = parse_apps(f[4], fl[4], apps, &rec->dirty);
    return PARSE_OK;
}

size_t parse_cut(const char *t, size_t len)
{
    if (len < 2)
        return 0;
    for (size_t i = len - 1; i-- > 0;) {
        if (t[i] == '\n')
            return i + 1;
        if (t[i] == '\r')
            return t[i + 1] == '\n' ? i + 2 : i + 1;
    }
    return 0;
}

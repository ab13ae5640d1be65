/*
 * parse_fast.c — the one-pass parse-and-pack of a well-formed line (see
 * parse_fast.h for the contract: take the common line, hand anything else
 * back to parse_line).
 *
 * Where the time goes in the plain path is the apps field: a loop that
 * finds an item's end, converts it, then starts the next item where that
 * one ended is one long chain of dependent instructions (~14 cycles per
 * item).  Here the field is scanned 32 bytes at a time into two bit masks
 * (commas, and bytes that are neither comma nor digit); each item's end is
 * the next set bit, and its value is read as the 8 bytes that end there,
 * so the conversions of neighbouring items overlap in the CPU.
 *
 * Built twice for the tests: with PARSE_FAST_SCALAR the SSE2 code is left
 * out and the name is parse_fast_scalar (the path of non-x86 hosts, tested
 * on x86 against the same inputs).
 */
#include "parse_fast.h"

#include <string.h>

#include "pack.h"

#if defined(PARSE_FAST_SCALAR) /* the tests' scalar build */
#define FAST_SSE2 0
#define FAST_NAME parse_fast_scalar
#elif defined(__SSE2__)
#include <emmintrin.h>
#define FAST_SSE2 1
#define FAST_NAME parse_fast
#else /* other hosts: the byte loops are parse_fast */
#define FAST_SSE2 0
#define FAST_NAME parse_fast
#endif

/* Bytes that end a field: the tab after it, or a line end (then the line
 * has too few fields for us).  For the id, any byte a key may not hold. */
static inline int fast_sep(unsigned char ch)
{
    return ch == '\t' || ch == '\n' || ch == '\r';
}

static inline int fast_not_key(unsigned char ch)
{
    return ch <= ' ' || ch == 0x7f;
}

#if FAST_SSE2
/* The same byte classes, 16 bytes at a time (0xff where true). */
static inline __m128i fast_line_end16(__m128i x)
{
    return _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\n')),
                        _mm_cmpeq_epi8(x, _mm_set1_epi8('\r')));
}

static inline __m128i fast_sep16(__m128i x)
{
    return _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\t')), fast_line_end16(x));
}

static inline __m128i fast_not_key16(__m128i x)
{
    const __m128i sp = _mm_set1_epi8(' '); /* x <= ' ' unsigned: min(x, ' ') == x */
    return _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, sp), x),
                        _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
}
#endif

/* First byte in [p, e) that ends a field (is_key: that a key may not
 * hold), or e. */
static inline const char *fast_field_end(const char *p, const char *e, int is_key)
{
#if FAST_SSE2
    for (; e - p >= 16; p += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned bits = (unsigned)_mm_movemask_epi8(is_key ? fast_not_key16(x) : fast_sep16(x));
        if (bits)
            return p + __builtin_ctz(bits);
    }
#endif
    for (; p < e; p++)
        if (is_key ? fast_not_key((unsigned char)*p) : fast_sep((unsigned char)*p))
            return p;
    return e;
}

/*
 * Masks of the 32 bytes at q (bit i: q[i]): *comma for ',', *stop for
 * anything that is neither a digit nor a comma.  Positions from e on do not
 * count (the first of them is marked as a stop) and bytes from end on are
 * not read (e <= end).
 */
#if FAST_SSE2
static inline void fast_masks16(const char *q, uint32_t *comma, uint32_t *stop)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i dig = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
    uint32_t cm = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(',')));
    *comma = cm;
    *stop = ~(cm | (uint32_t)_mm_movemask_epi8(dig)) & 0xffffu;
}
#endif

static inline void fast_masks(const char *q, const char *e, const char *end, uint32_t *comma,
                              uint32_t *stop)
{
#if FAST_SSE2
    if (end - q >= 32) {
        uint32_t c0, s0, c1, s1;
        fast_masks16(q, &c0, &s0);
        fast_masks16(q + 16, &c1, &s1);
        *comma = c0 | c1 << 16;
        *stop = s0 | s1 << 16;
        if (e - q < 32)
            *stop |= 1u << (e - q);
        return;
    }
#else
    (void)end;
#endif
    uint32_t cm = 0, st = 0;
    int n = e - q < 32 ? (int)(e - q) : 32;
    for (int i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)q[i];
        if (ch == ',')
            cm |= 1u << i;
        else if ((unsigned)(ch - '0') > 9)
            st |= 1u << i;
    }
    if (n < 32)
        st |= 1u << n;
    *comma = cm;
    *stop = st;
}

/*
 * Pack the item that ends at c (exclusive) and is len bytes long, all
 * digits: 0x08 and its varint.  The 8 bytes before c are readable (the
 * fields before the apps are at least 8 bytes).  NULL for an empty item or
 * one of more than 8 digits (the plain parser judges those).
 */
static inline uint8_t *fast_item(uint8_t *o, const char *c, size_t len)
{
    if (len - 1 > 7)
        return NULL;
    uint64_t x;
    memcpy(&x, c - 8, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    /* digits to their values, the bytes before the item to zero (leading
     * zeros) */
    x = (x ^ 0x3030303030303030ull) & (~0ull << (8 * (8 - len)));
    o[0] = 0x08;
    return pack_varint(o + 1, parse_swar8(x));
}

/*
 * The apps field from a: items packed to *out.  Returns the byte that ended
 * it (a line end, or e), or NULL when an item or a byte is not plain.
 */
static const char *fast_apps(const char *a, const char *e, const char *end, uint8_t **out,
                             size_t *napps)
{
    uint8_t *o = *out;
    const char *item = a;
    size_t n = 0;
    for (const char *q = a;; q += 32) {
        uint32_t comma, stop;
        fast_masks(q, e, end, &comma, &stop);
        unsigned at = stop ? (unsigned)__builtin_ctz(stop) : 32;
        comma &= (uint32_t)((1ull << at) - 1);
        while (comma) {
            const char *c = q + __builtin_ctz(comma);
            comma &= comma - 1;
            if (!(o = fast_item(o, c, (size_t)(c - item))))
                return NULL;
            item = c + 1;
            n++;
        }
        if (stop) {
            const char *t = q + at;
            if (!(o = fast_item(o, t, (size_t)(t - item))))
                return NULL;
            *out = o;
            *napps = n + 1;
            return t;
        }
    }
}

/*
 * A coordinate: the plain decimal "[-+]digits[.digits]" of at most 15
 * digits (mant < 2^53, at most 15 fraction digits) the way parse_float's
 * exact path computes it (one IEEE rounding: mant / 10^k); anything else is
 * parse_float's.  Same bits either way (the differential test checks).
 */
static inline int fast_float(const char *f, size_t len, double *out)
{
    const char *p = f, *end = f + len, *dot = NULL;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (end - p > 16 || p == end)
        return parse_float(f, len, out);
    uint64_t mant = 0;
    for (const char *q = p; q < end; q++) {
        unsigned d = (unsigned)(unsigned char)*q - '0';
        if (d <= 9)
            mant = mant * 10 + d;
        else if (*q == '.' && !dot)
            dot = q;
        else
            return parse_float(f, len, out);
    }
    size_t digits = (size_t)(end - p) - (dot != NULL);
    if (!digits || digits > 15)
        return parse_float(f, len, out);
    double v = (double)mant / parse_pow10[dot ? end - dot - 1 : 0];
    *out = neg ? -v : v;
    return 0;
}

/* The configured type the line starts with ("name\t"), or -1.  No early
 * exit: types come in any order, so a loop that stops at the match would
 * mispredict on most lines; the usual 4-byte names are compared as words. */
static inline int fast_type(const struct parse_types *types, const char *s, const char *e)
{
    int type = -1;
    uint32_t w = 0;
    if (e - s >= 5)
        memcpy(&w, s, 4);
    for (int i = 0; i < types->count; i++) {
        size_t n = types->name_len[i];
        if (n == 4) {
            uint32_t nw;
            memcpy(&nw, types->name[i], 4);
            type = e - s >= 5 && w == nw && s[4] == '\t' ? i : type;
        } else if ((size_t)(e - s) > n && s[n] == '\t' && memcmp(s, types->name[i], n) == 0) {
            type = i;
        }
    }
    return type;
}

#if FAST_SSE2
/* Bits of the 64 bytes at q: tabs, line ends, and bytes a key may not hold
 * (tabs and line ends among them). */
static inline void fast_masks64(const char *q, uint64_t *tab, uint64_t *nl, uint64_t *bad)
{
    const __m128i ht = _mm_set1_epi8('\t');
    uint64_t t = 0, n = 0, b = 0;
    for (int i = 0; i < 4; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * i));
        t |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, ht)) << (16 * i);
        n |= (uint64_t)(unsigned)_mm_movemask_epi8(fast_line_end16(x)) << (16 * i);
        b |= (uint64_t)(unsigned)_mm_movemask_epi8(fast_not_key16(x)) << (16 * i);
    }
    *tab = t, *nl = n, *bad = b;
}

/* First set bit at or after from (< 128) in a 128-bit mask, or 128. */
static inline unsigned fast_next_bit(const uint64_t m[2], unsigned from)
{
    if (from < 64) {
        uint64_t w = m[0] & (~0ull << from);
        if (w)
            return (unsigned)__builtin_ctzll(w);
        from = 64;
    }
    uint64_t w = m[1] & (~0ull << (from - 64));
    return w ? 64 + (unsigned)__builtin_ctzll(w) : 128;
}

/*
 * The three tabs after the type from masks of the line's first 128 bytes
 * (the usual line has them within ~70): no loop per field, so no
 * mispredicted loop exit per field.  0, or -1 when they are not all there
 * (the field-by-field way then decides).  at[] are offsets from s.
 */
static inline int fast_tabs(const char *s, const char *e, unsigned from, unsigned at[3])
{
    uint64_t tab[2], nl[2], bad[2];
    fast_masks64(s, &tab[0], &nl[0], &bad[0]);
    fast_masks64(s + 64, &tab[1], &nl[1], &bad[1]);
    at[0] = fast_next_bit(tab, from);
    if (at[0] >= 127 || fast_next_bit(bad, from) != at[0])
        return -1; /* the id holds a byte a key may not, or is too long for us */
    at[1] = fast_next_bit(tab, at[0] + 1);
    if (at[1] >= 127)
        return -1;
    at[2] = fast_next_bit(tab, at[1] + 1);
    if (at[2] >= 128 || (size_t)(e - s) <= at[2] || fast_next_bit(nl, 0) < at[2])
        return -1;
    return 0;
}
#endif

/* The tabs after the id, lat and lon, field by field: any line length. */
static inline int fast_tabs_plain(const char *s, const char *e, unsigned from, unsigned at[3])
{
    const char *t = fast_field_end(s + from, e, 1);
    if (t == e || *t != '\t')
        return -1;
    at[0] = (unsigned)(t - s);
    for (int i = 1; i < 3; i++) {
        t = fast_field_end(t + 1, e, 0);
        if (t == e || *t != '\t')
            return -1;
        at[i] = (unsigned)(t - s);
    }
    return 0;
}

/* Where the fields before the apps end; the apps field's start, or NULL. */
static const char *fast_fields(const struct parse_types *types, const char *s, const char *e,
                               const char *end, struct parse_rec *rec)
{
    int type = fast_type(types, s, e);
    if (type < 0 || !types->enabled[type])
        return NULL;
    unsigned n = types->name_len[type], at[3];
    int r;
#if FAST_SSE2
    if (end - s >= 128)
        r = fast_tabs(s, e, n + 1, at);
    else
#endif
        r = fast_tabs_plain(s, e, n + 1, at);
    (void)end;
    if (r < 0 || at[0] == n + 1 || at[0] > PARSE_MAX_KEY)
        return NULL; /* no id, or the key "type:id" (at[0] bytes) is too long */
    rec->type = type;
    rec->dev_type = s;
    rec->dev_type_len = n;
    rec->dev_id = s + n + 1;
    rec->dev_id_len = at[0] - n - 1;
    if (fast_float(s + at[0] + 1, at[1] - at[0] - 1, &rec->lat) < 0 ||
        fast_float(s + at[1] + 1, at[2] - at[1] - 1, &rec->lon) < 0)
        return NULL;
    return s + at[2] + 1;
}

const char *FAST_NAME(const struct parse_types *types, const char *s, const char *end,
                      size_t max_len, struct parse_rec *rec, uint8_t *val, size_t *vlen)
{
    if (max_len > PARSE_FAST_MAX_LINE)
        max_len = PARSE_FAST_MAX_LINE;
    /* bytes we may look at: the line and the byte that ends it; the end of
     * the text ends a line only if that line is short enough */
    int whole = (size_t)(end - s) <= max_len;
    const char *e = whole ? end : s + max_len + 1;
    const char *a = fast_fields(types, s, e, end, rec);
    if (!a)
        return NULL;
    uint8_t *o = val;
    const char *t = fast_apps(a, e, end, &o, &rec->napps);
    if (!t)
        return NULL;
    if (t == e ? !whole : (*t != '\n' && *t != '\r'))
        return NULL; /* too long for us, or a byte after the last item */
    rec->dirty = 0;
    o = pack_double(o, 0x11, rec->lat);
    o = pack_double(o, 0x19, rec->lon);
    *vlen = (size_t)(o - val);
    if (t == end)
        return end;
    return (*t == '\r' && t + 1 < end && t[1] == '\n') ? t + 2 : t + 1;
}

/*
 * test_parse_fast.c — parse_fast (SSE2) and parse_fast_scalar against the
 * plain parser and packer (tests/parse_fast_check.h): clean generated
 * lines must all be taken and agree; mutated ones (every byte class the
 * contract cares about, every line end, short limits) must agree whenever
 * they are taken.  Texts sit in heap buffers of their exact size, so an
 * over-read is an ASan error in the sanitizer suite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parse_fast_check.h"

static const struct parse_types types = {
    .count = 4,
    .name = {"idfa", "gaid", "adid", "dvid"},
    .name_len = {4, 4, 4, 4},
    .enabled = {1, 1, 1, 0}, /* dvid not configured */
};

static const pf_fn impls[2] = {parse_fast, parse_fast_scalar};
static const char *const impl_names[2] = {"sse2", "scalar"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* app values around every varint size and digit count */
static uint32_t some_app(void)
{
    static const uint32_t edge[] = {0,     1,     9,       10,      127,     128,      999,
                                    16383, 16384, 2097151, 2097152, 9999999, 10000000, 99999999};
    return rnd() % 3 ? (uint32_t)(rnd() % 10000) : edge[rnd() % (sizeof(edge) / sizeof(*edge))];
}

static size_t long_keys;   /* clean lines whose key is over PARSE_MAX_KEY */
static size_t past_window; /* others with the tab after lon past byte 127 */

/* One clean line of an enabled type, with a random line end. */
static int clean_line(char *o, size_t cap, int last)
{
    static const char *const ty[] = {"idfa", "gaid", "adid"};
    static const char *const ends[] = {"\n", "\r\n", "\r"};
    /* ids of the usual length, and around the 128-byte mask window and the
     * 250-byte key limit */
    static const int idlen[] = {20, 32, 36, 100, 110, 115, 120, 125, 240, 244, 245, 246, 250};
    int il = rnd() % 2 ? 32 : idlen[rnd() % (sizeof(idlen) / sizeof(*idlen))];
    char id[256];
    for (int i = 0; i < il; i++)
        id[i] = "0123456789abcdef"[rnd() % 16];
    id[il] = 0;
    long_keys += 4 + 1 + (size_t)il > PARSE_MAX_KEY;
    int n = snprintf(o, cap, "%s\t%s\t%.9f\t%.6g\t", ty[rnd() % 3], id,
                     (double)(rnd() % 1800000) / 10000 - 90, (double)(rnd() % 3600) / 10 - 180);
    past_window += 4 + 1 + (size_t)il <= PARSE_MAX_KEY && n - 1 >= 128;
    int apps = 1 + (int)(rnd() % 120);
    for (int i = 0; i < apps; i++) {
        uint32_t v = some_app(); /* leading zeros, within 8 digits */
        n += snprintf(o + n, cap - (size_t)n, "%s%s%u", i ? "," : "",
                      v < 1000000 && rnd() % 50 == 0 ? "00" : "", v);
    }
    if (!last || rnd() % 2)
        n += snprintf(o + n, cap - (size_t)n, "%s", ends[rnd() % 3]);
    return n;
}

static size_t clean_text(char *o, size_t cap, int nlines)
{
    size_t n = 0;
    for (int i = 0; i < nlines; i++)
        n += (size_t)clean_line(o + n, cap - n, i == nlines - 1);
    return n;
}

/* Check text (copied to a buffer of its exact size) with both paths. */
static void check_text(const char *text, size_t n, size_t max_len, size_t *taken, size_t *lines)
{
    char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, text, n);
    for (int i = 0; i < 2; i++) {
        const char *where = NULL;
        const char *why = pf_check(impls[i], &types, buf, n, max_len, &taken[i], &lines[i], &where);
        if (why)
            fail_msg("%s, max_len %zu: %s at offset %td: '%.*s'", impl_names[i], max_len, why,
                     where - buf, (int)(buf + n - where > 120 ? 120 : buf + n - where), where);
    }
    free(buf);
}

static void test_clean_lines_all_taken(void **state)
{
    (void)state;
    static char text[1 << 16];
    size_t taken[2] = {0, 0}, lines[2] = {0, 0};
    long_keys = past_window = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = clean_text(text, sizeof(text), 1 + (int)(rnd() % 20));
        check_text(text, n, 1 << 20, taken, lines);
    }
    /* every clean line with a key that fits takes the fast path, except
     * that the SIMD one leaves ids past its 128-byte window to the plain way */
    assert_true(lines[0] > 10000);
    assert_true(long_keys > 100);
    assert_int_equal(taken[1], lines[1] - long_keys);
    assert_true(taken[0] >= lines[0] - long_keys - past_window && taken[0] <= taken[1]);
}

static void test_mutated_lines_agree(void **state)
{
    (void)state;
    static const char nasty[] = " \t\r\n\v\f,,,0123456789-+._eExX\x7f\x80\xff";
    static const size_t limits[] = {8, 12, 40, 100, 300, 8191, 8192, 8193, 1 << 20};
    static char text[1 << 16];
    size_t taken[2] = {0, 0}, lines[2] = {0, 0};
    for (int round = 0; round < 30000; round++) {
        size_t n = clean_text(text, sizeof(text) - 64, 1 + (int)(rnd() % 4));
        for (int m = (int)(rnd() % 4) + 1; m > 0; m--) {
            size_t at = rnd() % n;
            char ch = rnd() % 4 ? nasty[rnd() % (sizeof(nasty) - 1)] : (char)rnd();
            switch (rnd() % 3) {
            case 0: /* replace */
                text[at] = ch;
                break;
            case 1: /* insert */
                memmove(text + at + 1, text + at, n - at);
                text[at] = ch, n++;
                break;
            default: /* delete */
                memmove(text + at, text + at + 1, n - at - 1);
                n--;
            }
        }
        check_text(text, n, limits[rnd() % (sizeof(limits) / sizeof(*limits))], taken, lines);
    }
    for (int i = 0; i < 2; i++) /* the mutations leave many lines plain: both ways seen */
        assert_true(taken[i] > lines[i] / 5 && taken[i] < lines[i] * 9 / 10);
}

/* Coordinates: random decimal-ish text around the 15-digit exact path. */
static void test_coordinates_agree(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789012345678901234567890123456789..-+e_ ";
    char line[128], f[2][40];
    size_t taken[2] = {0, 0}, lines[2] = {0, 0};
    for (int round = 0; round < 100000; round++) {
        for (int k = 0; k < 2; k++) {
            int len = 1 + (int)(rnd() % 20);
            for (int i = 0; i < len; i++)
                f[k][i] = rnd() % 4 ? "0123456789"[rnd() % 10] : alphabet[rnd() % 48];
            f[k][len] = 0;
        }
        int n = snprintf(line, sizeof(line), "idfa\tk\t%s\t%s\t1\n", f[0], f[1]);
        check_text(line, (size_t)n, 1000, taken, lines);
    }
    for (int i = 0; i < 2; i++) /* both kinds seen */
        assert_true(taken[i] > lines[i] / 4 && taken[i] < lines[i]);
}

/* Lines the fast path must take (and agree on) and lines it must leave. */
static void test_edges(void **state)
{
    (void)state;
    static const char *const take[] = {
        "idfa\ta\t1\t2\t3",
        "idfa\ta\t1\t2\t3\n",
        "gaid\tk\t-0.0\t1e3\t0,00000001,99999999\r\n",
        "adid\tk\t 1.5 \t2\t128,16384,2097152\r",
        "idfa\t\x80\xff\t1\t2\t1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
    };
    static const char *const leave[] = {
        "dvid\ta\t1\t2\t3\n",         /* disabled type */
        "idfax\ta\t1\t2\t3\n",        /* unknown type */
        " idfa\ta\t1\t2\t3\n",        /* leading space */
        "idfa\ta\t1\t2\t3 \n",        /* trailing space */
        "idfa\ta\t1\t2\t3\t\n",       /* sixth field */
        "idfa\ta\t1\t2\t\n",          /* empty apps */
        "idfa\ta\t1\t2\t1,,2\n",      /* empty item */
        "idfa\ta\t1\t2\t1,2,\n",      /* trailing comma */
        "idfa\ta\t1\t2\t123456789\n", /* nine digits */
        "idfa\ta b\t1\t2\t3\n",       /* space in the key */
        "idfa\ta\tx\t2\t3\n",         /* bad lat */
        "idfa\ta\t1\t2\n3\n",         /* four fields, then a line */
        "idfa\t\ta\t1\t2\t3\n",       /* empty id */
    };
    struct parse_rec r;
    static uint8_t val[PARSE_FAST_VAL_CAP];
    size_t vlen, taken[2] = {0, 0}, lines[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < sizeof(take) / sizeof(*take); k++) {
            const char *s = take[k];
            if (!impls[i](&types, s, s + strlen(s), 1000, &r, val, &vlen))
                fail_msg("%s did not take '%s'", impl_names[i], s);
        }
        for (size_t k = 0; k < sizeof(leave) / sizeof(*leave); k++) {
            const char *s = leave[k];
            if (impls[i](&types, s, s + strlen(s), 1000, &r, val, &vlen))
                fail_msg("%s took '%s'", impl_names[i], s);
        }
        /* the limit: a line of exactly max_len bytes is taken, one more is not */
        const char *s = take[1];
        assert_non_null(impls[i](&types, s, s + strlen(s), strlen(s) - 1, &r, val, &vlen));
        assert_null(impls[i](&types, s, s + strlen(s), strlen(s) - 2, &r, val, &vlen));
        s = take[0]; /* no line end: the text's end ends it, if within the limit */
        assert_non_null(impls[i](&types, s, s + strlen(s), strlen(s), &r, val, &vlen));
        assert_null(impls[i](&types, s, s + strlen(s), strlen(s) - 1, &r, val, &vlen));
    }
    for (size_t k = 0; k < sizeof(take) / sizeof(*take); k++)
        check_text(take[k], strlen(take[k]), 1000, taken, lines);
}

/* A line longer than PARSE_FAST_MAX_LINE goes the plain way, whole. */
static void test_long_line_left(void **state)
{
    (void)state;
    static char line[3 * PARSE_FAST_MAX_LINE];
    int n = snprintf(line, sizeof(line), "gaid\tx\t1\t2\t");
    while (n < PARSE_FAST_MAX_LINE + 10)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s1234", n > 12 ? "," : "");
    struct parse_rec r;
    static uint8_t val[PARSE_FAST_VAL_CAP];
    size_t vlen, taken[2] = {0, 0}, lines[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        assert_null(impls[i](&types, line, line + n, 1 << 20, &r, val, &vlen));
    check_text(line, (size_t)n, 1 << 20, taken, lines);
    assert_int_equal(taken[0], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_lines_all_taken), cmocka_unit_test(test_mutated_lines_agree),
        cmocka_unit_test(test_coordinates_agree),     cmocka_unit_test(test_edges),
        cmocka_unit_test(test_long_line_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

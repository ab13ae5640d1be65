/*
 * test_parse.c — every rule of the line contract (parse.h), one case per
 * rule, plus Python float() grammar corner cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

static struct parse_types types = {
    .count = 4,
    .name = {"idfa", "gaid", "adid", "dvid"},
    .name_len = {4, 4, 4, 4},
    .enabled = {1, 1, 1, 0}, /* dvid not configured */
};

static uint32_t apps[100000];

static enum parse_status P(const char *line, struct parse_rec *r)
{
    return parse_line(&types, line, strlen(line), r, apps);
}

static void test_valid_line(void **state)
{
    (void)state;
    struct parse_rec r;
    assert_int_equal(P("idfa\t1rfw452y52g2gq4g\t55.55\t42.42\t1423,43,567,3,7,23", &r), PARSE_OK);
    assert_int_equal(r.type, 0);
    assert_int_equal(r.dev_id_len, 16);
    assert_memory_equal(r.dev_id, "1rfw452y52g2gq4g", 16);
    assert_true(r.lat == 55.55 && r.lon == 42.42);
    assert_int_equal(r.napps, 6);
    assert_int_equal(apps[0], 1423);
    assert_int_equal(apps[5], 23);
    assert_int_equal(r.dirty, 0);
}

static void test_strip_and_blank(void **state)
{
    (void)state;
    struct parse_rec r;
    assert_int_equal(P("", &r), PARSE_BLANK);
    assert_int_equal(P(" \t\r\n\v\f ", &r), PARSE_BLANK);
    assert_int_equal(P("  gaid\tx\t1\t2\t3  \r\n", &r), PARSE_OK);
    assert_int_equal(r.napps, 1);
    /* stripping first makes a trailing empty apps field disappear: 4 fields */
    assert_int_equal(P("idfa\tx\t1\t2\t", &r), PARSE_FIELDS);
    assert_int_equal(P("idfa\tx\t1\t2\t \t", &r), PARSE_FIELDS);
}

static void test_field_count(void **state)
{
    (void)state;
    struct parse_rec r;
    assert_int_equal(P("idfa\tx\t1\t2", &r), PARSE_FIELDS);
    assert_int_equal(P("idfa", &r), PARSE_FIELDS);
    assert_int_equal(P("idfa\tx\t1\t2\t3\t4", &r), PARSE_FIELDS);
    assert_int_equal(P("idfa\tx\t1\t2\t3\t", &r), PARSE_OK); /* stripped: 5 fields */
    assert_int_equal(P("idfa\tx\t1\t2\t1,2\t\tz", &r), PARSE_FIELDS);
}

static void test_empty_and_unknown(void **state)
{
    (void)state;
    struct parse_rec r;
    assert_int_equal(P("\tx\t1\t2\t3", &r), PARSE_FIELDS); /* stripped away: 4 fields */
    assert_int_equal(P("idfa\t\t1\t2\t3", &r), PARSE_EMPTY_FIELD);
    assert_int_equal(P("x\t\t1\t2\t3", &r), PARSE_EMPTY_FIELD);
    assert_int_equal(P("xxxx\tid\t1\t2\t3", &r), PARSE_UNKNOWN_TYPE);
    assert_int_equal(P("IDFA\tid\t1\t2\t3", &r), PARSE_UNKNOWN_TYPE);
    assert_int_equal(P("dvid\tid\t1\t2\t3", &r), PARSE_UNKNOWN_TYPE); /* not configured */
    assert_int_equal(P("idfa \tid\t1\t2\t3", &r), PARSE_UNKNOWN_TYPE);
}

static void test_key_limits(void **state)
{
    (void)state;
    struct parse_rec r;
    char line[600];
    /* key = "idfa:" + id: 5 + 245 = 250 ok, 246 -> 251 bad */
    char id[300];
    memset(id, 'a', sizeof(id));
    id[245] = 0;
    snprintf(line, sizeof(line), "idfa\t%s\t1\t2\t3", id);
    assert_int_equal(P(line, &r), PARSE_OK);
    id[245] = 'a';
    id[246] = 0;
    snprintf(line, sizeof(line), "idfa\t%s\t1\t2\t3", id);
    assert_int_equal(P(line, &r), PARSE_BAD_KEY);
    assert_int_equal(P("idfa\ta b\t1\t2\t3", &r), PARSE_BAD_KEY);
    assert_int_equal(P("idfa\ta\x01z\t1\t2\t3", &r), PARSE_BAD_KEY);
    assert_int_equal(P("idfa\ta\x7fz\t1\t2\t3", &r), PARSE_BAD_KEY);
    assert_int_equal(P("idfa\ta\vb\t1\t2\t3", &r), PARSE_BAD_KEY);
    /* UTF-8 bytes are fine for memcached */
    assert_int_equal(P("idfa\t\xc3\xa9t\xc3\xa9\t1\t2\t3", &r), PARSE_OK);
    /* invalid UTF-8 too: keys are bytes */
    assert_int_equal(P("idfa\t\xff\xfe\t1\t2\t3", &r), PARSE_OK);
    /* a NUL byte inside the id */
    const char nul[] = "idfa\ta\0b\t1\t2\t3";
    assert_int_equal(parse_line(&types, nul, sizeof(nul) - 1, &r, apps), PARSE_BAD_KEY);
}

static void test_floats(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
        double v;
    } cases[] = {
        {"55.1", 1, 55.1},
        {"-0", 1, -0.0},
        {"+1.5", 1, 1.5},
        {".5", 1, 0.5},
        {"5.", 1, 5.0},
        {"1e3", 1, 1000},
        {"1E-3", 1, 0.001},
        {"1e+3", 1, 1000},
        {" 42.42 ", 1, 42.42},
        {"1_000.5", 1, 1000.5},
        {"0.000_1", 1, 0.0001},
        {"1e1_0", 1, 1e10},
        {"00012", 1, 12},
        {"1e-400", 1, 0.0},
        {"123456789012345678901234567890", 1, 123456789012345678901234567890.0},
        {"0.1234567890123456789012345", 1, 0.1234567890123456789012345},
        {"-179.999999999999", 1, -179.999999999999},
        {"89.1234567891", 1, 89.1234567891},
        {"", 0, 0},
        {" ", 0, 0},
        {".", 0, 0},
        {"e5", 0, 0},
        {"1e", 0, 0},
        {"1e+", 0, 0},
        {"--1", 0, 0},
        {"1..2", 0, 0},
        {"abc", 0, 0},
        {"nan", 0, 0},
        {"NaN", 0, 0},
        {"inf", 0, 0},
        {"-Infinity", 0, 0},
        {"1e999", 0, 0},
        {"-1e400", 0, 0},
        {"0x10", 0, 0},
        {"1_", 0, 0},
        {"_1", 0, 0},
        {"1__0", 0, 0},
        {"1._5", 0, 0},
        {"1,5", 0, 0},
        {"1 5", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = 12345;
        int r = parse_float(cases[i].s, strlen(cases[i].s), &v);
        if ((r == 0) != cases[i].ok)
            fail_msg("parse_float(\"%s\") returned %d", cases[i].s, r);
        if (cases[i].ok && memcmp(&v, &cases[i].v, sizeof(v)) != 0)
            fail_msg("parse_float(\"%s\") = %.17g, want %.17g", cases[i].s, v, cases[i].v);
    }
    struct parse_rec r;
    assert_int_equal(P("idfa\tx\tabc\t2\t3", &r), PARSE_BAD_LAT);
    assert_int_equal(P("idfa\tx\t1\tnan\t3", &r), PARSE_BAD_LON);
    assert_int_equal(P("idfa\tx\t\t2\t3", &r), PARSE_BAD_LAT);
}

static void test_dirty_apps(void **state)
{
    (void)state;
    struct parse_rec r;
    assert_int_equal(P("idfa\tx\t1\t2\t1,a,3", &r), PARSE_OK);
    assert_int_equal(r.napps, 2);
    assert_int_equal(apps[1], 3);
    assert_int_equal(r.dirty, 1);
    assert_int_equal(P("idfa\tx\t1\t2\t1,,2", &r), PARSE_OK);
    assert_int_equal(r.napps, 2);
    assert_int_equal(r.dirty, 1);
    assert_int_equal(P("idfa\tx\t1\t2\t+1,-2,3", &r), PARSE_OK);
    assert_int_equal(r.napps, 1);
    assert_int_equal(apps[0], 3);
    assert_int_equal(P("idfa\tx\t1\t2\t4294967295,4294967296,99999999999", &r), PARSE_OK);
    assert_int_equal(r.napps, 1);
    assert_int_equal(apps[0], 4294967295u);
    assert_int_equal(P("idfa\tx\t1\t2\t 7 , 8,0009,000000000000042", &r), PARSE_OK);
    assert_int_equal(r.napps, 4);
    assert_int_equal(apps[0], 7);
    assert_int_equal(apps[2], 9);
    assert_int_equal(apps[3], 42);
    assert_int_equal(r.dirty, 0);
    assert_int_equal(P("idfa\tx\t1\t2\t,", &r), PARSE_OK);
    assert_int_equal(r.napps, 0);
    assert_int_equal(r.dirty, 1);
    assert_int_equal(P("idfa\tx\t1\t2\t1.5,2e3", &r), PARSE_OK);
    assert_int_equal(r.napps, 0);
    const char nul[] = "idfa\tx\t1\t2\t1,\0,3";
    assert_int_equal(parse_line(&types, nul, sizeof(nul) - 1, &r, apps), PARSE_OK);
    assert_int_equal(r.napps, 2);
    assert_int_equal(r.dirty, 1);
}

static void test_many_apps(void **state)
{
    (void)state;
    static char line[200000];
    int off = snprintf(line, sizeof(line), "gaid\tx\t1\t2\t");
    for (int i = 0; i < 10000; i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%d", i ? "," : "", i);
    struct parse_rec r;
    assert_int_equal(parse_line(&types, line, (size_t)off, &r, apps), PARSE_OK);
    assert_int_equal(r.napps, 10000);
    assert_int_equal(apps[9999], 9999);
    assert_true(parse_apps_cap((size_t)off) >= 10000);
}

/* The obvious implementation of the apps rule, for comparison. */
static size_t ref_apps(const char *s, size_t len, uint32_t *out, int *dirty)
{
    size_t n = 0, i = 0;
    *dirty = 0;
    for (;;) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && strchr(" \t\v\f\r\n", s[a]) && s[a])
            a++;
        while (b > a && strchr(" \t\v\f\r\n", s[b - 1]) && s[b - 1])
            b--;
        int ok = b > a;
        unsigned long long v = 0;
        for (size_t k = a; ok && k < b; k++) {
            if (s[k] < '0' || s[k] > '9')
                ok = 0;
            else if ((v = v * 10 + (unsigned)(s[k] - '0')) > 4294967295ull)
                ok = 0;
        }
        if (ok)
            out[n++] = (uint32_t)v;
        else
            *dirty = 1;
        if (j >= len)
            break;
        i = j + 1;
    }
    return n;
}

/* Random apps fields (digits, commas, spaces, junk) parsed both ways. */
static void test_apps_differential(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789012345678901234567890123456789,,,,,, x+";
    static uint32_t want[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char line[600];
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int len = (int)(x % 80) + 1;
        int off = snprintf(line, sizeof(line), "gaid\tx\t1\t2\t");
        for (int i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            line[off + i] = alphabet[x % (sizeof(alphabet) - 1)];
        }
        /* the line is stripped first: keep the field's ends non-blank */
        if (line[off] == ' ')
            line[off] = '7';
        if (line[off + len - 1] == ' ')
            line[off + len - 1] = '8';
        struct parse_rec r;
        int dirty;
        assert_int_equal(parse_line(&types, line, (size_t)(off + len), &r, apps), PARSE_OK);
        size_t n = ref_apps(line + off, (size_t)len, want, &dirty);
        if (n != r.napps || dirty != r.dirty || memcmp(want, apps, n * sizeof(uint32_t)) != 0)
            fail_msg("apps field '%.*s': got %zu apps dirty %d, want %zu dirty %d", len, line + off,
                     r.napps, r.dirty, n, dirty);
    }
}

/* The reader's block cut (parse_cut): after the last usable line end. */
static void test_cut_lines(void **state)
{
    (void)state;
    struct {
        const char *text;
        size_t want;
    } v[] = {
        {"", 0},         {"a", 0},     {"\n", 0}, /* the final byte is never trusted alone */
        {"ab\ncd", 3},                            /* the partial line is carried */
        {"ab\ncd\n", 3}, /* ... and so is a line whose end is the last byte */
        {"ab\r\ncd", 4}, /* \r\n kept whole */
        {"ab\r\n", 4},   /* a whole \r\n pair at the end is a line end */
        {"ab\rcd", 3},   /* CR-only line ends */
        {"ab\r", 0},     /* a \r at the very end may be half of \r\n */
        {"a\nb\rc", 4},  {"a\n\r", 2}, {"abc", 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (parse_cut(v[i].text, strlen(v[i].text)) != v[i].want)
            fail_msg("parse_cut(\"%s\") = %zu, want %zu", v[i].text,
                     parse_cut(v[i].text, strlen(v[i].text)), v[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_lines),
        cmocka_unit_test(test_valid_line),
        cmocka_unit_test(test_strip_and_blank),
        cmocka_unit_test(test_field_count),
        cmocka_unit_test(test_empty_and_unknown),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_dirty_apps),
        cmocka_unit_test(test_many_apps),
        cmocka_unit_test(test_apps_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_inflate.c — the gzip reader of the configured backend: single and
 * multi-member files, padding, and every way a file can be broken.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "inflate.h"

static char dir[] = "/tmp/memc-infl-XXXXXX";

/* gzip data of text into a malloc'ed buffer */
static unsigned char *gz(const char *text, size_t len, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&zs, len) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)text;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static int file_of(const void *data, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "%s/f", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Inflate the whole fd with reads of step bytes; returns the status of the
 * last call and the data in *out. */
static int slurp_truncated; /* infl_truncated() after the last slurp */

static ssize_t slurp(int fd, size_t step, char **out, size_t *outlen)
{
    struct infl *z;
    assert_int_equal(infl_open(&z, fd), 0);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    for (;;) {
        if (len + step > cap)
            buf = realloc(buf, cap *= 2);
        n = infl_read(z, buf + len, step);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (n < 0)
        assert_true(strlen(infl_error(z)) > 0);
    slurp_truncated = infl_truncated(z);
    infl_free(z);
    *out = buf;
    *outlen = len;
    return n;
}

static char *big_text(size_t *len)
{
    size_t cap = 3 << 20;
    char *t = malloc(cap);
    size_t off = 0;
    for (int i = 0; off + 100 < cap; i++)
        off += (size_t)snprintf(t + off, cap - off, "idfa\t%08x\t%d.5\t-%d.25\t%d,%d,%d\n", i,
                                i % 90, i % 180, i, i * 7, i % 13);
    *len = off;
    return t;
}

static void test_single_member_any_step(void **state)
{
    (void)state;
    size_t tl, gl, ol;
    char *text = big_text(&tl), *out;
    unsigned char *g = gz(text, tl, &gl);
    static const size_t steps[] = {1, 7, 4096, 1 << 20};
    for (size_t s = 0; s < 4; s++) {
        int fd = file_of(g, gl);
        ssize_t r = slurp(fd, steps[s], &out, &ol);
        assert_int_equal(r, 0);
        assert_int_equal(ol, tl);
        assert_memory_equal(out, text, tl);
        free(out);
        close(fd);
    }
    free(g);
    free(text);
}

static void test_multi_member_and_padding(void **state)
{
    (void)state;
    size_t la, lb, ol;
    unsigned char *a = gz("line a\n", 7, &la), *b = gz("line b\n", 7, &lb);
    unsigned char buf[1024];
    size_t n = 0;
    memcpy(buf + n, a, la), n += la;
    memset(buf + n, 0, 16), n += 16; /* zero padding between members */
    memcpy(buf + n, b, lb), n += lb;
    memset(buf + n, 0, 5), n += 5; /* and at the end */
    int fd = file_of(buf, n);
    char *out;
    assert_int_equal(slurp(fd, 3, &out, &ol), 0);
    assert_int_equal(ol, 14);
    assert_memory_equal(out, "line a\nline b\n", 14);
    free(out);
    close(fd);
    free(a);
    free(b);
}

/* truncated: the data ends short (a file may still be growing), as
 * opposed to bytes that are wrong. */
static void expect_bad(const void *data, size_t len, const char *what, int truncated)
{
    int fd = file_of(data, len);
    char *out;
    size_t ol;
    ssize_t r = slurp(fd, 4096, &out, &ol);
    if (r != -EBADMSG)
        fail_msg("%s: got %zd, want -EBADMSG", what, r);
    if (slurp_truncated != truncated)
        fail_msg("%s: infl_truncated() is %d, want %d", what, slurp_truncated, truncated);
    free(out);
    close(fd);
}

static void test_broken_files(void **state)
{
    (void)state;
    size_t tl, gl;
    char *text = big_text(&tl);
    unsigned char *g = gz(text, tl, &gl);
    expect_bad(g, gl / 2, "truncated in the middle", 1);
    expect_bad(g, gl - 4, "truncated trailer", 1);
    expect_bad(g, 5, "truncated header", 1);
    unsigned char *c = malloc(gl);
    memcpy(c, g, gl);
    c[gl - 6] ^= 0xff; /* CRC32 trailer */
    expect_bad(c, gl, "bad CRC", 0);
    memcpy(c, g, gl);
    c[gl / 2] ^= 0x55; /* deflate data */
    expect_bad(c, gl, "corrupt data", 0);
    expect_bad("this is not gzip at all\n", 24, "not gzip", 0);
    unsigned char *t = malloc(gl + 8);
    memcpy(t, g, gl);
    memcpy(t + gl, "garbage!", 8);
    expect_bad(t, gl + 8, "garbage after a member", 0);
    free(t);
    free(c);
    free(g);
    free(text);
}

static void test_empty_file(void **state)
{
    (void)state;
    int fd = file_of("", 0);
    char *out;
    size_t ol;
    assert_int_equal(slurp(fd, 4096, &out, &ol), 0);
    assert_int_equal(ol, 0);
    free(out);
    close(fd);
    /* an empty gzip member: also no data, no error */
    size_t gl;
    unsigned char *g = gz("", 0, &gl);
    fd = file_of(g, gl);
    assert_int_equal(slurp(fd, 4096, &out, &ol), 0);
    assert_int_equal(ol, 0);
    free(out);
    free(g);
    close(fd);
}

static void test_bytes_in(void **state)
{
    (void)state;
    size_t tl, gl;
    char *text = big_text(&tl);
    unsigned char *g = gz(text, tl, &gl);
    int fd = file_of(g, gl);
    struct infl *z;
    assert_int_equal(infl_open(&z, fd), 0);
    char *buf = malloc(1 << 20);
    uint64_t last = 0;
    ssize_t n;
    while ((n = infl_read(z, buf, 1 << 16)) > 0) {
        assert_true(infl_bytes_in(z) >= last);
        last = infl_bytes_in(z);
    }
    assert_int_equal(n, 0);
    assert_int_equal(infl_bytes_in(z), gl);
    infl_free(z);
    free(buf);
    free(g);
    free(text);
    close(fd);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    printf("backend: %s\n", infl_backend());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_member_any_step),
        cmocka_unit_test(test_multi_member_and_padding),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_bytes_in),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    char path[64];
    snprintf(path, sizeof(path), "%s/f", dir);
    unlink(path);
    rmdir(dir);
    return r;
}

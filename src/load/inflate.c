/*
 * inflate.c — the gzip reader of inflate.h, the same for every backend.
 *
 * The file is read through a fixed input buffer; the backend
 * (inflate_backend.h: ISA-L's igzip or zlib) decodes one step at a time
 * straight into the caller's buffer.  The rules live here, once: members
 * follow each other to the end of the file, zero bytes between members are
 * padding, a file that ends inside a member is truncated, and after damage
 * the bytes decoded before it are handed over first and the error (sticky)
 * comes with the next call.
 */
#include "inflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inflate_backend.h"
#include "io.h"

#define INFL_INBUF (256 * 1024)

struct infl {
    int fd;
    struct infl_be *be;
    struct infl_io io; /* io.in, io.in_len: the undecoded rest of in[] */
    int in_member;     /* inside a gzip member (header started, end not yet) */
    int eof;           /* no more file data */
    uint64_t bytes_in;
    char err[160];
    int truncated; /* err is "truncated": the input ended inside a member */
    unsigned char in[INFL_INBUF];
};

int infl_open(struct infl **out, int fd)
{
    struct infl *z = calloc(1, sizeof(*z));
    if (!z)
        return -ENOMEM;
    int r = infl_be_open(&z->be);
    if (r < 0) {
        free(z);
        return r;
    }
    z->fd = fd;
    *out = z;
    return 0;
}

/* Read the next piece of the file once the input is used up. */
static int infl_fill(struct infl *z)
{
    if (z->io.in_len || z->eof)
        return 0;
    ssize_t n = io_read(z->fd, z->in, sizeof(z->in));
    if (n < 0) {
        snprintf(z->err, sizeof(z->err), "read error: %s", strerror((int)-n));
        return (int)n;
    }
    if (n == 0)
        z->eof = 1;
    z->io.in = z->in;
    z->io.in_len = (size_t)n;
    z->bytes_in += (uint64_t)n;
    return 0;
}

/* Between members: skip zero padding; 1 if a member starts here, 0 if the
 * input is used up, -1 (z->err set) if what follows is not a gzip member:
 * wrong bytes are corrupt at once, never "truncated" (which may heal). */
static int infl_member_start(struct infl *z)
{
    while (z->io.in_len && *z->io.in == 0)
        z->io.in++, z->io.in_len--;
    if (!z->io.in_len)
        return 0;
    if (z->io.in[0] != 0x1f || (z->io.in_len > 1 && z->io.in[1] != 0x8b)) {
        snprintf(z->err, sizeof(z->err), "corrupt gzip data: not a gzip member (no 1f 8b magic)");
        return -1;
    }
    infl_be_member(z->be);
    z->in_member = 1;
    return 1;
}

/* One backend step inside a member: 0, or -EBADMSG with z->err set. */
static int infl_step(struct infl *z)
{
    size_t in_before = z->io.in_len, out_before = z->io.out_len;
    const char *why = "inflate error";
    switch (infl_be_step(z->be, &z->io, &why)) {
    case INFL_BE_CORRUPT:
        snprintf(z->err, sizeof(z->err), "corrupt gzip data: %s", why);
        return -EBADMSG;
    case INFL_BE_END:
        z->in_member = 0;
        return 0;
    case INFL_BE_OK:
        break;
    }
    if (z->io.in_len == in_before && z->io.out_len == out_before && z->eof && !z->io.in_len) {
        snprintf(z->err, sizeof(z->err), "truncated gzip data (unexpected end of file)");
        z->truncated = 1;
        return -EBADMSG;
    }
    return 0;
}

ssize_t infl_read(struct infl *z, void *buf, size_t len)
{
    if (z->err[0])
        return -EBADMSG;
    z->io.out = buf;
    z->io.out_len = len > UINT32_MAX ? UINT32_MAX : len;
    while (z->io.out_len) {
        int r = infl_fill(z);
        if (r < 0)
            return r;
        if (!z->in_member) {
            int m = infl_member_start(z);
            if (m < 0)
                break;
            if (m == 0 && z->eof)
                break;
            if (m == 0)
                continue;
        }
        if (infl_step(z) < 0)
            break;
    }
    /* After damage, hand over what was decoded before it (whole lines of it
     * get loaded); z->err is sticky, so the error comes with the next call. */
    size_t n = (size_t)(z->io.out - (unsigned char *)buf);
    return z->err[0] && !n ? -EBADMSG : (ssize_t)n;
}

const char *infl_error(const struct infl *z)
{
    return z->err;
}

int infl_truncated(const struct infl *z)
{
    return z->truncated;
}

uint64_t infl_bytes_in(const struct infl *z)
{
    return z->bytes_in - z->io.in_len;
}

void infl_free(struct infl *z)
{
    if (!z)
        return;
    infl_be_free(z->be);
    free(z);
}

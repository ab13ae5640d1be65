/*
 * inflate_zlib.c — the zlib backend of inflate.h.
 */
#include "inflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "io.h"

#define INFL_INBUF (256 * 1024)

struct infl {
    int fd;
    z_stream zs;
    int in_member; /* inside a gzip member (header seen, end not yet) */
    int eof;       /* no more file data */
    uint64_t bytes_in;
    char err[160];
    unsigned char in[INFL_INBUF];
};

const char *infl_backend(void)
{
    return "zlib";
}

int infl_open(struct infl **out, int fd)
{
    struct infl *z = calloc(1, sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->fd = fd;
    /* 15 + 16: gzip wrapper only (a raw zlib stream is not a .gz file). */
    if (inflateInit2(&z->zs, 15 + 16) != Z_OK) {
        free(z);
        return -ENOMEM;
    }
    *out = z;
    return 0;
}

static int infl_fill(struct infl *z)
{
    if (z->zs.avail_in || z->eof)
        return 0;
    ssize_t n = io_read(z->fd, z->in, sizeof(z->in));
    if (n < 0) {
        snprintf(z->err, sizeof(z->err), "read error: %s", strerror((int)-n));
        return (int)n;
    }
    if (n == 0)
        z->eof = 1;
    z->zs.next_in = z->in;
    z->zs.avail_in = (uInt)n;
    z->bytes_in += (uint64_t)n;
    return 0;
}

ssize_t infl_read(struct infl *z, void *buf, size_t len)
{
    if (z->err[0])
        return -EBADMSG;
    z->zs.next_out = buf;
    z->zs.avail_out = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    while (z->zs.avail_out) {
        int r = infl_fill(z);
        if (r < 0)
            return r;
        if (!z->in_member) {
            /* Between members: skip zero padding, stop at the end. */
            while (z->zs.avail_in && *z->zs.next_in == 0)
                z->zs.next_in++, z->zs.avail_in--;
            if (!z->zs.avail_in) {
                if (z->eof)
                    break;
                continue;
            }
            z->in_member = 1;
        }
        r = inflate(&z->zs, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            z->in_member = 0;
            inflateReset(&z->zs);
        } else if (r == Z_BUF_ERROR) {
            /* no progress possible: needs input (loop refills) or output */
            if (z->zs.avail_in == 0 && z->eof) {
                snprintf(z->err, sizeof(z->err), "truncated gzip data (unexpected end of file)");
                goto damaged;
            }
        } else if (r != Z_OK) {
            snprintf(z->err, sizeof(z->err), "corrupt gzip data: %s",
                     z->zs.msg ? z->zs.msg : "inflate error");
            goto damaged;
        }
    }
    return (ssize_t)(len - z->zs.avail_out);
damaged:
    /* Hand over what was decoded before the damage (whole lines of it get
     * loaded); z->err is sticky, so the error comes with the next call. */
    return len - z->zs.avail_out > 0 ? (ssize_t)(len - z->zs.avail_out) : -EBADMSG;
}

const char *infl_error(const struct infl *z)
{
    return z->err;
}

uint64_t infl_bytes_in(const struct infl *z)
{
    return z->bytes_in - z->zs.avail_in;
}

void infl_free(struct infl *z)
{
    if (!z)
        return;
    inflateEnd(&z->zs);
    free(z);
}

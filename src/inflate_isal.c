/*
 * inflate_isal.c — the ISA-L (igzip) backend of inflate.h, the default.
 *
 * igzip's inflate is several times faster than zlib's on x86-64, and inflate
 * is the largest single cost of a load (see docs/performance.md).  With
 * crc_flag = ISAL_GZIP, isal_inflate() parses each member's gzip header and
 * verifies its CRC32 trailer; a member is complete when block_state reaches
 * ISAL_BLOCK_FINISH, after which the state is reset for the next member.
 * The semantics (multi-member, zero padding, 0-byte files, errors) are the
 * zlib backend's; the same tests run against both.
 */
#include "inflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

#include "io.h"

#define INFL_INBUF (256 * 1024)

struct infl {
    int fd;
    struct inflate_state st;
    int in_member; /* inside a gzip member (header started, end not yet) */
    int eof;       /* no more file data */
    uint64_t bytes_in;
    char err[160];
    unsigned char in[INFL_INBUF];
};

const char *infl_backend(void)
{
    return "isal";
}

static void infl_member_start(struct infl *z)
{
    /* isal_inflate_reset keeps the input pointers; the wrapper flag is set
     * again so every member's header and trailer are checked. */
    isal_inflate_reset(&z->st);
    z->st.crc_flag = ISAL_GZIP;
}

int infl_open(struct infl **out, int fd)
{
    struct infl *z = calloc(1, sizeof(*z));
    if (!z)
        return -ENOMEM;
    z->fd = fd;
    isal_inflate_init(&z->st);
    z->st.crc_flag = ISAL_GZIP;
    *out = z;
    return 0;
}

static int infl_fill(struct infl *z)
{
    if (z->st.avail_in || z->eof)
        return 0;
    ssize_t n = io_read(z->fd, z->in, sizeof(z->in));
    if (n < 0) {
        snprintf(z->err, sizeof(z->err), "read error: %s", strerror((int)-n));
        return (int)n;
    }
    if (n == 0)
        z->eof = 1;
    z->st.next_in = z->in;
    z->st.avail_in = (uint32_t)n;
    z->bytes_in += (uint64_t)n;
    return 0;
}

static const char *infl_isal_error(int r)
{
    switch (r) {
    case ISAL_INVALID_BLOCK:
        return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
        return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
        return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER:
        return "not in gzip format (bad header)";
    case ISAL_UNSUPPORTED_METHOD:
        return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM:
        return "incorrect data check (CRC)";
    case ISAL_NEED_DICT:
        return "needs a preset dictionary";
    default:
        return "inflate error";
    }
}

ssize_t infl_read(struct infl *z, void *buf, size_t len)
{
    if (z->err[0])
        return -EBADMSG;
    z->st.next_out = buf;
    z->st.avail_out = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    while (z->st.avail_out) {
        int r = infl_fill(z);
        if (r < 0)
            return r;
        if (!z->in_member) {
            /* Between members: skip zero padding, stop at the end. */
            while (z->st.avail_in && *z->st.next_in == 0)
                z->st.next_in++, z->st.avail_in--;
            if (!z->st.avail_in) {
                if (z->eof)
                    break;
                continue;
            }
            infl_member_start(z);
            z->in_member = 1;
        }
        uint32_t in_before = z->st.avail_in, out_before = z->st.avail_out;
        r = isal_inflate(&z->st);
        if (r < 0) {
            snprintf(z->err, sizeof(z->err), "corrupt gzip data: %s", infl_isal_error(r));
            goto damaged;
        }
        if (z->st.block_state == ISAL_BLOCK_FINISH) {
            z->in_member = 0;
            continue;
        }
        if (z->st.avail_in == in_before && z->st.avail_out == out_before && z->eof &&
            z->st.avail_in == 0) {
            snprintf(z->err, sizeof(z->err), "truncated gzip data (unexpected end of file)");
            goto damaged;
        }
    }
    return (ssize_t)(len - z->st.avail_out);
damaged:
    /* Hand over what was decoded before the damage (whole lines of it get
     * loaded); z->err is sticky, so the error comes with the next call. */
    return len - z->st.avail_out > 0 ? (ssize_t)(len - z->st.avail_out) : -EBADMSG;
}

const char *infl_error(const struct infl *z)
{
    return z->err;
}

uint64_t infl_bytes_in(const struct infl *z)
{
    return z->bytes_in - z->st.avail_in;
}

void infl_free(struct infl *z)
{
    free(z);
}

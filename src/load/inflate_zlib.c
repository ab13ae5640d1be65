/*
 * inflate_zlib.c — the zlib backend of inflate.c (inflate_backend.h).
 *
 * One step is one inflate(Z_NO_FLUSH) call.  The stream is opened for the
 * gzip wrapper only, so zlib parses each member's header and checks its
 * CRC32 and length trailer; Z_STREAM_END ends a member.  Everything around
 * the decoding (input, members, padding, errors) is inflate.c's.
 */
#include "inflate_backend.h"

#include <errno.h>
#include <stdlib.h>

#include <zlib.h>

#include "inflate.h"

struct infl_be {
    z_stream zs;
};

const char *infl_backend(void)
{
    return "zlib";
}

int infl_be_open(struct infl_be **out)
{
    struct infl_be *be = calloc(1, sizeof(*be));
    if (!be)
        return -ENOMEM;
    /* 15 + 16: gzip wrapper only (a raw zlib stream is not a .gz file). */
    if (inflateInit2(&be->zs, 15 + 16) != Z_OK) {
        free(be);
        return -ENOMEM;
    }
    *out = be;
    return 0;
}

void infl_be_member(struct infl_be *be)
{
    inflateReset(&be->zs);
}

enum infl_be_result infl_be_step(struct infl_be *be, struct infl_io *io, const char **why)
{
    z_stream *zs = &be->zs;
    zs->next_in = (Bytef *)io->in;
    zs->avail_in = (uInt)io->in_len;
    zs->next_out = io->out;
    zs->avail_out = (uInt)io->out_len;
    int r = inflate(zs, Z_NO_FLUSH);
    io->in = zs->next_in;
    io->in_len = zs->avail_in;
    io->out = zs->next_out;
    io->out_len = zs->avail_out;
    if (r == Z_STREAM_END)
        return INFL_BE_END;
    if (r == Z_OK || r == Z_BUF_ERROR) /* Z_BUF_ERROR: no progress possible */
        return INFL_BE_OK;
    if (zs->msg)
        *why = zs->msg;
    return INFL_BE_CORRUPT;
}

void infl_be_free(struct infl_be *be)
{
    if (!be)
        return;
    inflateEnd(&be->zs);
    free(be);
}

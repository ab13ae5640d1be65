/*
 * inflate_isal.c — the ISA-L (igzip) backend of inflate.c
 * (inflate_backend.h), the default.
 *
 * igzip's inflate is several times faster than zlib's on x86-64, and inflate
 * is the largest single cost of a load (see docs/performance.md).  With
 * crc_flag = ISAL_GZIP, isal_inflate() parses each member's gzip header and
 * verifies its CRC32 trailer; a member is complete when block_state reaches
 * ISAL_BLOCK_FINISH, and the state is reset when the next one starts.
 * Everything around the decoding (input, members, padding, errors) is
 * inflate.c's, so the semantics are the zlib backend's; the same tests run
 * against both.
 */
#include "inflate_backend.h"

#include <errno.h>
#include <stdlib.h>

#include <isa-l/igzip_lib.h>

#include "inflate.h"

struct infl_be {
    struct inflate_state st;
};

const char *infl_backend(void)
{
    return "isal";
}

int infl_be_open(struct infl_be **out)
{
    struct infl_be *be = calloc(1, sizeof(*be));
    if (!be)
        return -ENOMEM;
    isal_inflate_init(&be->st);
    be->st.crc_flag = ISAL_GZIP;
    *out = be;
    return 0;
}

void infl_be_member(struct infl_be *be)
{
    /* The wrapper flag is set again so every member's header and trailer
     * are checked. */
    isal_inflate_reset(&be->st);
    be->st.crc_flag = ISAL_GZIP;
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

enum infl_be_result infl_be_step(struct infl_be *be, struct infl_io *io, const char **why)
{
    struct inflate_state *st = &be->st;
    st->next_in = (uint8_t *)io->in;
    st->avail_in = (uint32_t)io->in_len;
    st->next_out = io->out;
    st->avail_out = (uint32_t)io->out_len;
    int r = isal_inflate(st);
    io->in = st->next_in;
    io->in_len = st->avail_in;
    io->out = st->next_out;
    io->out_len = st->avail_out;
    if (r < 0) {
        *why = infl_isal_error(r);
        return INFL_BE_CORRUPT;
    }
    return st->block_state == ISAL_BLOCK_FINISH ? INFL_BE_END : INFL_BE_OK;
}

void infl_be_free(struct infl_be *be)
{
    free(be);
}

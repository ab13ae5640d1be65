/*
 * inflate_backend.h — what inflate.c needs from a gzip backend (internal).
 *
 * inflate.c owns everything a backend would otherwise repeat: the file and
 * its input buffer, the gzip member loop, zero padding between members,
 * truncation, error messages and the hand-over of the bytes decoded before
 * damage.  A backend only decodes: it keeps its decoder state behind an
 * opaque pointer and moves bytes from io->in to io->out in one step.
 * Exactly one backend (inflate_isal.c or inflate_zlib.c) is linked with
 * inflate.c; the calls are direct, one per step (a step fills the output
 * or drains the 256 KiB input), never per byte.
 */
#ifndef MEMC_INFLATE_BACKEND_H
#define MEMC_INFLATE_BACKEND_H

#include <stddef.h>

struct infl_be;

/* Input and output of one step; the backend advances both. */
struct infl_io {
    const unsigned char *in;
    size_t in_len; /* at most 256 KiB */
    unsigned char *out;
    size_t out_len; /* at most UINT32_MAX */
};

enum infl_be_result {
    INFL_BE_OK,      /* progress made, or none possible without more input */
    INFL_BE_END,     /* the member's trailer was read and checked */
    INFL_BE_CORRUPT, /* broken data; *why says what */
};

/* Negative errno on failure. */
int infl_be_open(struct infl_be **out);

/* A gzip member starts at io->in (header and trailer are checked). */
void infl_be_member(struct infl_be *be);

/* Decode as much as fits; *why is set for INFL_BE_CORRUPT only. */
enum infl_be_result infl_be_step(struct infl_be *be, struct infl_io *io, const char **why);

void infl_be_free(struct infl_be *be);

/* The backend also defines infl_backend() of inflate.h. */

#endif

/*
 * inflate.h — streaming gzip decompression of one spool file.
 *
 * Reads the file through a fixed input buffer and hands out inflated bytes;
 * memory is constant whatever the file size.  Multi-member files (cat a.gz
 * b.gz) are read to the end; zero padding after a member is skipped, as
 * Python's gzip module does; anything else after a member is an error.
 * A 0-byte file has no members and no lines, as in Python.
 *
 * Two backends behind one interface: zlib, and ISA-L's igzip (several times
 * faster on x86-64) when built with MEMC_INFLATE=isal.
 */
#ifndef MEMC_INFLATE_H
#define MEMC_INFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct infl;

/* Takes no ownership of fd. */
int infl_open(struct infl **out, int fd);

/* Up to len inflated bytes into buf: > 0 bytes, 0 at the clean end of the
 * file, -EBADMSG for corrupt or truncated data, -EIO etc. for read errors
 * (infl_error() says what).  The bytes decoded before damage are returned
 * first; the -EBADMSG comes with the next call. */
ssize_t infl_read(struct infl *z, void *buf, size_t len);

const char *infl_error(const struct infl *z);
/* 1 when the -EBADMSG was the data ending short (the file may still grow). */
int infl_truncated(const struct infl *z);

/* Compressed bytes consumed so far (for progress). */
uint64_t infl_bytes_in(const struct infl *z);

void infl_free(struct infl *z);

const char *infl_backend(void);

#endif

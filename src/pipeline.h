/*
 * pipeline.h — loading one file inside one process.
 *
 *   reader (caller's thread)      packers (threads)         writer (thread)
 *   inflate, cut at line ends --> parse + pack, route  -->  send batches in
 *   into blocks                   per server segment        block order, match
 *          ^                                                answers, count
 *          '------------------ block freed <----------------------'
 *
 * Blocks live in a fixed ring of 2*threads+2 slots: the reader waits for a
 * free slot, so memory is bounded by the ring whatever the file size, and a
 * slow memcached slows the reader down instead of growing a queue.  Blocks
 * are packed in any order by any packer but written strictly in file order,
 * so two lines with the same key reach memcached in file order (last wins).
 *
 * A pipe is created once per worker process and reused for every file: its
 * threads and memcached connections persist.
 */
#ifndef MEMC_PIPELINE_H
#define MEMC_PIPELINE_H

#include <stdint.h>

#include "config.h"
#include "memc.h"
#include "parse.h"

enum pipe_status {
    PIPE_DONE = 0,   /* every record stored or counted as an error */
    PIPE_INCOMPLETE, /* some records not stored (memcached unreachable) */
    PIPE_CORRUPT,    /* the gzip data is broken (definitive) */
    PIPE_IOERR,      /* the file could not be read */
    PIPE_ABORTED,    /* stopped by request (shutdown) */
};

#define PIPE_EXAMPLES 5

struct pipe_example {
    uint64_t line; /* 1-based line number in the file */
    int status;    /* enum parse_status */
    char text[96]; /* escaped start of the line, or the key and server answer */
};

struct pipe_stats {
    uint64_t lines;    /* non-blank lines */
    uint64_t records;  /* lines that parsed */
    uint64_t stored;   /* records memcached stored (or, dry run, would have) */
    uint64_t errors;   /* error lines + records memcached refused */
    uint64_t deferred; /* records not stored because a server was unreachable */
    uint64_t dirty;    /* records with dropped app items */
    uint64_t err_by[PARSE_STATUS_MAX];
    /* by device type (index as cfg_type_name; errors: [CFG_MAX_TYPES] = no
     * known type at the start of the line) */
    uint64_t stored_by[CFG_MAX_TYPES], errors_by[CFG_MAX_TYPES + 1], dirty_by[CFG_MAX_TYPES];
    uint64_t bytes_in;  /* compressed bytes consumed */
    uint64_t bytes_out; /* inflated bytes */
    int possibly_lost;  /* a server failed after acking records of this file */
    int truncated;      /* PIPE_CORRUPT because the data ends short (may still grow) */
    int status;         /* enum pipe_status */
    char why[192];      /* for PIPE_CORRUPT / PIPE_IOERR */
    int nexamples;
    struct pipe_example ex[PIPE_EXAMPLES];
    /* after the load (worker.c): */
    uint32_t wrote_mask;       /* servers (global index) that stored records of this file */
    uint64_t evictions;        /* items those servers evicted during the load ("stats") */
    uint32_t verify_sampled;   /* records read back (verify_sample; 0 = off) */
    uint32_t verify_missing;   /* ... that memcached did not have */
    uint32_t verify_different; /* ... that it had with other bytes */
};

struct pipe;

/* Called by the reader at least every 100 ms during a load with the
 * current counts; return non-zero to abort the load at a batch boundary. */
typedef int (*pipe_tick_fn)(void *ctx, const struct pipe_stats *now);

int pipe_create(struct pipe **out, const struct cfg *c, const struct memc_map *map);
void pipe_destroy(struct pipe *p);

/* Load one gzip file from fd (not closed).  Fills *st; returns st->status. */
int pipe_load(struct pipe *p, int fd, struct pipe_stats *st, pipe_tick_fn tick, void *ctx);

/* Re-warm: the following loads send only the records that route to these
 * servers (bitmap of global indexes; 0 = every record, the normal load). */
void pipe_set_only(struct pipe *p, uint32_t mask);

/*
 * Keep a sample of k records of each load (sample.h) for a read-back;
 * keep_across_loads: one sample over several files (memc-load verify reads
 * them in name order).  Call before the first load.  0 or -ENOMEM.
 */
struct smp;
int pipe_sample_enable(struct pipe *p, int k, uint64_t seed, int keep_across_loads);
/* The sample of the last load(s), or NULL when off; valid until the next
 * pipe_load. */
const struct smp *pipe_sample(const struct pipe *p);

/* Bitmap of servers (global index) currently considered down. */
uint32_t pipe_down_mask(struct pipe *p);

#endif

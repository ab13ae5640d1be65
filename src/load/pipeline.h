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
#include "write.h"
#include "parse.h"
#include "result.h"

struct pipe;

/* Called by the reader at least every 100 ms during a load with the
 * current counts; return non-zero to abort the load at a batch boundary. */
typedef int (*pipe_tick_fn)(void *ctx, const struct pipe_stats *now);

int pipe_create(struct pipe **out, const struct cfg *c, const struct memc_map *map);
void pipe_destroy(struct pipe *p);

/* Load one gzip file from fd (not closed).  Fills *st; returns st->status. */
int pipe_load(struct pipe *p, int fd, struct pipe_stats *st, pipe_tick_fn tick, void *ctx);

/* Re-warm, retry: the following loads send only the records that route to
 * these servers (bitmap of global indexes; 0 = every record), and of the
 * types in ring_types (bitmap) only those whose server is another than
 * under cfg.ring_prev (a ring re-warm). */
void pipe_set_only(struct pipe *p, uint32_t mask, uint32_t ring_types);
/* The following loads' file time (Unix time; 0: each load's start): the
 * records' exptime counts from it (expiry.h), those expired are not sent
 * (counted: expired) and the others carry the seconds they have left. */
void pipe_set_file_time(struct pipe *p, int64_t file_s);

/*
 * The write order (the master's order.h): before the writer sends records
 * to servers it holds no turn for in this load, it calls turn(ctx, need,
 * &refused), which blocks until the master grants them (returned) or
 * refuses some (*refused: an earlier file must write them first, so those
 * records are deferred).  Meanwhile the reader and packers fill the ring
 * and then wait: memory stays bounded.  No turn function: every server is
 * always granted (verify, --check-config).
 */
typedef uint32_t (*pipe_turn_fn)(void *ctx, uint32_t need, uint32_t *refused);
void pipe_set_turn(struct pipe *p, pipe_turn_fn turn, void *ctx);

/* The following loads send at most rate records a second to each server
 * (rate.h; 0 = unlimited, the default).  Each server has its own bucket,
 * kept across loads of the same rate. */
void pipe_set_rate(struct pipe *p, uint64_t rate);

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

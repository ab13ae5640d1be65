/*
 * write.h — the pipelined write path of a worker.
 *
 * libmemcached routes (route.h); the write path is our own:
 * libmemcached has no multi-set that reports per-key failures without a
 * round trip per key (NOREPLY hides errors, BUFFER_REQUESTS+NOREPLY has been
 * reported to hang).  We speak memcached's meta protocol directly, one batch
 * per server per block, in two modes:
 *
 *   quiet (first):  ms <key> <len> q\r\n<value>\r\n ... mn\r\n
 *                   memcached answers only failures, then MN: one round trip,
 *                   and no per-record reply for memcached to build and send
 *                   (measured: 15-25 % less memcached CPU);
 *   reply (fallback): the same bytes with the 'q' turned into a space, so
 *                   every record gets HD / NS / SERVER_ERROR in order and the
 *                   k-th answer belongs to the k-th record.
 *
 * A quiet batch that reports any failure is sent again in reply mode to learn
 * exactly which records failed (sets are idempotent and the batch is resent
 * before the next one, so order per key holds).
 *
 * A device type with protocol = classic (a proxy: twemproxy, mcrouter) gets
 * pipelined classic sets instead, always answered one by one:
 *
 *   classic:        set <key> 0 <exptime> <len>\r\n<value>\r\n ...
 *                   STORED / NOT_STORED / SERVER_ERROR ... in order; no sync
 *                   point: the batch is synced when every record is answered.
 *
 * What an answer means is mc_set_answer's (proto.h).  See docs/design.md.
 */
#ifndef MEMC_WRITE_H
#define MEMC_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "rate.h"
#include "route.h"

/*
 * One server's share of a batch: the request bytes and where each record
 * starts in them.  Built by a packer, consumed by the writer that owns the
 * server's connection.
 */
#define MEMC_SEG_EXAMPLES 3
struct memc_seg {
    char *buf;
    size_t len, cap;
    uint32_t *off; /* off[i] = start of record i; off[n] = end of records */
    uint32_t n, ncap;
    int protocol; /* enum cfg_protocol of its server, set by the owner before the first
                   * record (memc_seg_reset keeps it): classic is always reply mode */
    int reply;    /* reply mode (see above); quiet when 0 */
    /* written by memc_send */
    uint32_t paced;    /* records the connection's bucket has let go (all when unlimited) */
    uint32_t qfail;    /* failures reported in quiet mode (then resent in reply mode) */
    int synced;        /* the batch's MN arrived: every record is accounted for */
    uint32_t acked;    /* records answered (stored or refused) */
    uint32_t refused;  /* answered with anything but HD (STORED), counted as errors */
    uint32_t unavail;  /* answered MC_SET_UNAVAILABLE (a proxy's SERVER_ERROR): not stored,
                        * counted as deferred */
    uint32_t deferred; /* not stored: server unreachable */
    size_t sent;
    uint32_t example_rec[MEMC_SEG_EXAMPLES]; /* first refused records */
    char example_why[MEMC_SEG_EXAMPLES][64];
    /* expiry (expiry.h): one life for every record of a segment */
    int64_t expires; /* Unix time the records expire (0: never, no T flag) */
    int64_t ttl;     /* the seconds left their T flag says (0: none, or a Unix time) */
    int ttl_width;   /* its digits, zero-padded when it is rewritten */
    int tok_len;     /* tok: " T<n>" in every record's header, before " q" */
    char tok[24];
    uint32_t expired; /* not sent: expired before their turn came */
};

void memc_seg_reset(struct memc_seg *s);
void memc_seg_free(struct memc_seg *s);
/* Append "ms <type>:<id> <vlen>[ T<n>] q\r\n<value>\r\n", or for a classic
 * segment "set <type>:<id> 0 <exptime> <vlen>\r\n<value>\r\n" (exptime: the
 * T flag's number, 0 without one).  -ENOMEM on failure. */
int memc_seg_add(struct memc_seg *s, const char *type, size_t tlen, const char *id, size_t idlen,
                 const uint8_t *val, size_t vlen);
/* The records added to the (empty) segment from now on expire at expires
 * (Unix time, expiry.h exp_deadline; 0: never), as said at now_s: their
 * header gets " T<n>" before the " q" (classic: <n> as its exptime).  0, or -ETIME: gone already,
 * add none. */
int memc_seg_expire(struct memc_seg *s, int64_t expires, int64_t now_s);
/* Just before the segment is sent: the seconds left, rewritten in every
 * record when they changed since it was packed (a batch held back for its
 * turn).  0, or -ETIME: expired meanwhile, do not send it. */
int memc_seg_expire_now(struct memc_seg *s, int64_t now_s);
/* Close a batch: append the "mn" sync point after the last record (a
 * classic batch has none). */
int memc_seg_finish(struct memc_seg *s);
/* The key of record i, for messages. */
size_t memc_seg_key(const struct memc_seg *s, uint32_t i, const char **key);

/* A persistent connection to one server, owned by one thread.  The link
 * (conn.h) connects, and as the device type is configured does the TLS
 * handshake and authenticates, in the same poll loop as the batches. */
struct memc_conn {
    const struct memc_server *srv;
    struct mc_link link;
    int fd;   /* link.fd while a connection is held, -1 when none */
    int down; /* declared unreachable; probed with backoff */
    int backoff_ms;
    int64_t next_try_ms;     /* no connect attempt before this */
    int64_t last_io_ms;      /* last byte in or out (timeouts) */
    uint64_t failures;       /* times the server was found unreachable */
    uint64_t lost_acks;      /* failures after acking records of the current load */
    uint64_t job_acks;       /* records acked for the current load (memc_conn_job_begin) */
    int reused;              /* connected before this memc_send call */
    int answered;            /* answered something in this memc_send call */
    int kind;                /* enum mc_link_fail of the last failure (0: none yet) */
    uint64_t setups;         /* connections made ready (TLS: handshakes) */
    uint32_t lines;          /* answer lines on this connection */
    int cerr_streak;         /* connections in a row whose first answer was CLIENT_ERROR */
    int unavail_said;        /* a proxy's SERVER_ERROR was logged for the current load */
    struct rate_bucket rate; /* records/s to this server (max_rate; zeroed: unlimited) */
    uint64_t let_go;         /* records the bucket let go, ever (atomic: progress for others) */
    char why[256];           /* last failure */
    size_t rlen;
    char rbuf[16384];
};

void memc_conn_init(struct memc_conn *c, const struct memc_server *srv);
void memc_conn_close(struct memc_conn *c);
/*
 * Take fd, an already connected stream socket, as the connection (for the
 * connection layer, and for tests that play the server over a socketpair).
 * A connection already held is closed first; fd is made non-blocking and is
 * closed with the connection.  A later reconnect still dials c->srv.
 */
void memc_conn_adopt(struct memc_conn *c, int fd);

/* A new load starts: acks from here on belong to it. */
static inline void memc_conn_job_begin(struct memc_conn *c)
{
    c->job_acks = 0;
    c->unavail_said = 0;
}

/* Pace this connection's records at rate a second (0 = unlimited) from
 * the next memc_send on; the same rate again keeps the bucket's tokens. */
void memc_conn_set_rate(struct memc_conn *c, uint64_t rate);

/*
 * Send the segments to their connections (conns[i] <-> segs[i]; a NULL or
 * empty segment is skipped) and collect every answer, all servers in
 * parallel with poll().  Returns when every record is acked or deferred.
 *
 * A connection that fails (refused, reset, no progress for io_timeout_ms,
 * a TLS handshake or authentication refused, a server that answers every
 * new connection with CLIENT_ERROR) is closed and its server marked down;
 * its unanswered records are deferred (counted, not stored).  A down server is probed again with
 * exponential backoff (50 ms .. 5 s); until then its segments are deferred
 * at once, so other servers never wait for it.
 *
 * A connection with a rate (memc_conn_set_rate) writes its segment in
 * slices the bucket lets go, and the mn after the last; while it waits
 * for tokens the poll() timeout is the time to the next one, so the other
 * connections keep going, and the wait is not a stall.
 */
void memc_send(struct memc_conn **conns, struct memc_seg **segs, int n, int io_timeout_ms);

#endif

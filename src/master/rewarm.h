/*
 * rewarm.h — loading the retained files again into a restarted memcached.
 *
 * When health.c sees a server come back with a new identity, everything
 * memc-load ever stored there is gone.  The spool still holds the finished
 * files (".NAME"); re-warming reads again, in name order, those whose mtime
 * is within rewarm_max_age, and sends only the records that route to the
 * restarted servers (ketama members included).  Nothing is renamed.
 *
 * Order is the whole point: the result must equal a load of those files in
 * name order (later line wins).  So a re-warm starts only when no file is
 * loading, runs one file at a time, and new files wait in the queue until
 * it is finished.  Another restart meanwhile starts it over, for all the
 * servers concerned.  This module keeps the plan and its progress; the
 * master hands its files to workers like any other load.
 *
 * A reload that changes a type's ring (servers added, removed, another
 * distribution) re-warms too: the records of the retained files whose
 * server differs between the old ring and the new one go to the new one,
 * in name order, after the loads in flight (ring_types, pipeline.h).
 *
 * The same path replays newer files after a late one (order.h): a file
 * older by name than files already loaded wrote its records over newer
 * values, so the retained files named above it are sent again for the
 * servers it wrote, in name order (no age limit: they are the newest
 * values there are).
 */
#ifndef MEMC_REWARM_H
#define MEMC_REWARM_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

struct pool;

/* Why a re-warm runs (MEMC_REASON, rewarms_total{reason}). */
enum rewarm_reason { REWARM_RESTART, REWARM_RING, REWARM_LATE, REWARM_NREASONS };
const char *rewarm_reason_name(int reason);

enum rewarm_phase {
    REWARM_IDLE,    /* nothing to do */
    REWARM_WAITING, /* wanted: waits for the loads in flight to finish */
    REWARM_RUNNING, /* one file at a time, in name order */
};

struct rewarm {
    enum rewarm_phase phase;
    uint32_t mask;  /* servers (global index) being re-warmed */
    char **names;   /* files in the spool, in name order (".NAME", or NAME if not renamed yet) */
    size_t n, next; /* next: index of the file to send next */
    int busy;       /* a worker has names[next] */
    int stale;      /* started over while busy: ignore that result */
    int attempts;   /* of names[next] */
    int64_t retry_at_ms, started_ms;
    uint64_t records;
    uint64_t finished_by[REWARM_NREASONS]; /* re-warms done, by reason (metrics) */
    uint64_t records_total;                /* records they stored (metrics) */
    char servers[512];                     /* their names, for messages */
    uint32_t restarted;                    /* servers in mask that restarted (not only a replay) */
    uint32_t settled;                      /* restarted servers whose re-warm finished: the master
                                            * commits their identities (health_commit) and clears it */
    char after[256];                       /* replay: only files named above this ("" = all) */
    char late[256];                        /* replay: the late file, for messages */
    uint32_t ring_types;  /* ring change only: its types (0: every record of mask) */
    char ring_what[256];  /* "idfa 2 -> 3 servers" ("": no ring change in it) */
    int64_t life_s;       /* the longest exptime of mask's types (0: some records never
                           * expire), set before rewarm_plan: a file older than that
                           * has nothing left to send and is skipped (expiry.h) */
    size_t expired_files; /* skipped so, in this plan */
};

void rewarm_init(struct rewarm *r);
void rewarm_free(struct rewarm *r);

/* Servers in mask restarted: (re)plan a re-warm for them and the ones
 * already being re-warmed. */
void rewarm_request(struct rewarm *r, uint32_t mask, const char *names);
/* The ring of the types in `types` changed (what: "idfa 2 -> 3 servers"):
 * re-warm the servers in mask (the types' servers in the new ring) with
 * the records whose server changed; merged with a restart or a replay,
 * every record of mask is sent. */
void rewarm_request_ring(struct rewarm *r, uint32_t mask, const char *names, uint32_t types,
                         const char *what);
/* Late file `late` wrote the servers in mask (names: theirs, for
 * messages): replay the files named above it for them. */
void rewarm_request_replay(struct rewarm *r, uint32_t mask, const char *names, const char *late);

/* Plan the files: every ".NAME" in dirfd whose NAME matches glob and whose
 * mtime is within max_age_s of wall_s (for a restart; a pure replay takes
 * any age) and within life_s (any plan), plus the names in extra
 * (finished, not renamed yet), sorted by
 * NAME; a replay only the names above its late file.  Then RUNNING, and the journal says so
 * (a plan with no file finishes at once).  0 or -errno. */
int rewarm_plan(struct rewarm *r, int dirfd, const char *glob, int64_t max_age_s, int64_t wall_s,
                char *const *extra, size_t nextra, int64_t now);

/* The highest NAME of the retained ".NAME" files in dirfd matching glob
 * (out "" when there are none): what the servers hold at start (order.h). */
void rewarm_newest(int dirfd, const char *glob, char *out, size_t len);

/* Hand the next file to an idle worker of the pool (one at a time). */
void rewarm_dispatch(struct rewarm *r, struct pool *p, int dirfd, int64_t now);
/* The worker's result for it; the last one logs "re-warm finished". */
void rewarm_result(struct rewarm *r, const struct pipe_stats *st, int64_t now, int retry_s);
/* The worker died with it: try that file again (3 times at most). */
void rewarm_lost(struct rewarm *r, int64_t now);

/* The server bits of a plan made with the old map, in the new map's
 * numbering (a reload: route.h memc_map_carry). */
struct memc_map;
void rewarm_carry(struct rewarm *r, const struct memc_map *from, const struct memc_map *to);

/* Is NAME (".NAME" retained, or NAME not renamed yet) in the plan of the
 * re-warm that runs?  Spool retention leaves those files alone. */
int rewarm_plans(const struct rewarm *r, const char *name);

/* "re-warming 127.0.0.1:33013: 2/5 files" or "" when idle. */
void rewarm_status(const struct rewarm *r, char *buf, size_t len);

#endif

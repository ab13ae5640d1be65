/*
 * result.h — what a load of one file comes to, as every process sees it.
 *
 * The worker fills a struct pipe_stats while it loads, sends it to the
 * master in IPC_PROGRESS and IPC_RESULT messages (ipc.h), and the master
 * turns it into journal entries, STATUS, metrics and the file's fate.  The
 * kinds of bad line (enum parse_status) are part of it: the parser decides
 * them, the report and the metrics name them.  Nothing here depends on how
 * a file is loaded, so the master includes this and never a load header.
 */
#ifndef MEMC_RESULT_H
#define MEMC_RESULT_H

#include <stdint.h>

#include "config.h"

#define PARSE_MAX_KEY 250

enum parse_status {
    PARSE_OK = 0,
    PARSE_BLANK,        /* empty after stripping: skipped, not counted */
    PARSE_FIELDS,       /* not exactly 5 fields */
    PARSE_EMPTY_FIELD,  /* empty dev_type or dev_id */
    PARSE_UNKNOWN_TYPE, /* dev_type not configured */
    PARSE_BAD_LAT,
    PARSE_BAD_LON,
    PARSE_BAD_KEY,    /* too long or contains whitespace/control bytes */
    PARSE_TOO_LONG,   /* longer than max_line_bytes (decided by the reader) */
    PARSE_NOT_STORED, /* memcached refused the value (decided by the writer) */
    PARSE_STATUS_MAX
};

/* The journal's words for a status ("lat is not a finite decimal number"). */
const char *parse_status_text(enum parse_status s);

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

/*
 * The counters of a load, listed once (cf. memcached's THREAD_STATS_FIELDS).
 * Each row makes a uint64_t field of struct pipe_stats, its part of
 * pipe_stats_add() (blocks into a load, loads into the master's metrics),
 * its journal field on a result entry (report.c) and, when it has one, its
 * metric family (metrics.c):
 *   X(field, journal field or NULL, metric family or NULL, help)
 * Per device type: PIPE_TYPE_COUNTERS, arrays of n, "type" label.
 */
#define PIPE_COUNTERS(X)                                                                           \
    X(stored, "MEMC_RECORDS", NULL, "records memcached stored (dry run: would have)")              \
    X(errors, "MEMC_ERRORS", NULL, "error lines and records memcached refused")                    \
    X(lines, "MEMC_LINES", NULL, "non-blank lines")                                                \
    X(dirty, "MEMC_DIRTY_APPS", NULL, "records with dropped app items")                            \
    X(verify_sampled, "MEMC_VERIFY_SAMPLED", NULL, "records read back (verify_sample)")            \
    X(verify_missing, "MEMC_VERIFY_MISSING", NULL, "... that memcached did not have")              \
    X(verify_different, "MEMC_VERIFY_DIFFERENT", NULL, "... that it had with other bytes")         \
    X(evictions, "MEMC_EVICTIONS", "evictions_total",                                              \
      "Items memcached evicted while memc-load loaded into it.")                                   \
    X(deferred, "MEMC_DEFERRED", NULL,                                                             \
      "records not stored: a server unreachable, or not its turn")                                 \
    X(expired, "MEMC_EXPIRED", "expired_records_total",                                            \
      "Records not sent: their exptime had passed (counted from their file's time).")              \
    X(records, NULL, NULL, "lines that parsed")                                                    \
    X(bytes_in, NULL, "read_bytes_total", "Compressed bytes read from spool files.")               \
    X(bytes_out, NULL, NULL, "inflated bytes")
/* X(field, n, metric family, help); errors_by[CFG_MAX_TYPES]: no known type */
#define PIPE_TYPE_COUNTERS(X)                                                                      \
    X(stored_by, CFG_MAX_TYPES, "records_stored_total",                                            \
      "Records memcached stored, by device type.")                                                 \
    X(errors_by, CFG_MAX_TYPES + 1, "error_lines_total",                                           \
      "Error lines and refused records, by device type (unknown: no type).")                       \
    X(dirty_by, CFG_MAX_TYPES, "dirty_apps_records_total",                                         \
      "Records stored with app items dropped, by device type.")

struct pipe_stats {
#define PIPE_FIELD(f, journal, metric, help) uint64_t f;
    PIPE_COUNTERS(PIPE_FIELD)
#undef PIPE_FIELD
#define PIPE_TYPE_FIELD(f, n, metric, help) uint64_t f[n];
    PIPE_TYPE_COUNTERS(PIPE_TYPE_FIELD)
#undef PIPE_TYPE_FIELD
    uint64_t err_by[PARSE_STATUS_MAX]; /* errors by kind */
    int possibly_lost;                 /* a server failed after acking records of this file */
    int truncated; /* PIPE_CORRUPT because the data ends short (may still grow) */
    int status;    /* enum pipe_status */
    char why[192]; /* for PIPE_CORRUPT / PIPE_IOERR */
    int nexamples;
    struct pipe_example ex[PIPE_EXAMPLES];
    uint32_t wrote_mask;    /* servers (global index) that stored records of this file */
    uint32_t deferred_mask; /* servers with deferred records (down, or refused by the order) */
    uint32_t lost_mask;     /* servers that failed after acking records of this file */
    uint64_t let_go; /* progress only: records a rate limit let go so far, all loads of a worker
                      * (a paced block takes long before its records count as stored) */
};

/* A row's journal field or metric family is there (not NULL). */
static inline int pipe_named(const char *name)
{
    return name != 0;
}

/* to += from, every counter (not status, examples or masks). */
void pipe_stats_add(struct pipe_stats *to, const struct pipe_stats *from);

#endif

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
    uint32_t deferred_mask;    /* servers with deferred records (down, or refused by the order) */
    uint32_t lost_mask;        /* servers that failed after acking records of this file */
    uint64_t evictions;        /* items those servers evicted during the load ("stats") */
    uint32_t verify_sampled;   /* records read back (verify_sample; 0 = off) */
    uint32_t verify_missing;   /* ... that memcached did not have */
    uint32_t verify_different; /* ... that it had with other bytes */
};

#endif

/*
 * report.h — what the master tells people: one journal entry per file
 * result (with error examples), the systemd STATUS line, and on a terminal
 * (one-shot) live progress lines and a summary table.
 *
 * It only reads the spool and the pool; it decides nothing.
 */
#ifndef MEMC_REPORT_H
#define MEMC_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "result.h"

struct spool;
struct spool_file;
struct pool;
struct memc_map;
struct notify;

struct report_row {
    char name[64];
    char result[16];
    uint64_t stored, errors;
    double rate, secs;
};

struct report {
    int tty; /* one-shot on a terminal: progress lines + summary */
    int tty_lines;
    int64_t tty_drawn_ms;
    struct report_row *rows;
    size_t nrows;

    uint64_t stored_done; /* records stored by finished loads */
    uint64_t rate_base;
    int64_t rate_ms;
    double rate;
    char last_result[256];
};

void report_init(struct report *r, int tty);
void report_free(struct report *r);

/* errors / good records (loaded, or expired: good lines whose life was
 * over); errors with no good record is 100 %; nothing at all 0. */
double report_error_rate(const struct pipe_stats *st);

/* The result entries (MESSAGE_ID and MEMC_* fields, see the catalog). */
void report_aborted(const struct spool_file *f, const struct pipe_stats *st);
void report_set_aside(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                      int dry, int64_t now);
void report_left(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                 int64_t retry_ms, int64_t now);
/* ok: below the error threshold; dry: nothing was written. */
void report_loaded(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                   int ok, int dry, double threshold, int64_t now);
void report_worker_died(const struct spool_file *f, pid_t pid, const char *why, int set_aside,
                        int stopping);

/* STATUS= for systemd (notify_status sends it at most once a second).
 * note: what the master is busy with ("waiting for spool directory ...",
 * "re-warming ..."), shown first; NULL or "" for none. */
void report_status(struct report *r, const struct spool *s, const struct pool *p,
                   const struct memc_map *map, const char *note, int stopping, struct notify *n,
                   int force);

/* Terminal: erase the progress block (a log stderr hook), redraw it (at
 * most 4 times a second) with note, if any, on a line of its own ("waiting
 * 1.8 s for 3 files ..."), print the summary table at the end. */
void report_tty_erase(void *report);
void report_tty_draw(struct report *r, const struct pool *p, const char *note, int64_t now);
void report_tty_summary(struct report *r);

#endif

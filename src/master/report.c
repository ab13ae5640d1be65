/*
 * report.c — result entries, STATUS and the terminal view (see report.h).
 *
 * Every result entry carries the same MEMC_* fields so one journalctl
 * query (MESSAGE_ID, MEMC_RESULT) finds them all; the texts say what
 * happened and what happens next, for a person reading at 3 a.m.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "io.h"
#include "log.h"
#include "route.h"
#include "sd_notify.h"
#include "pool.h"
#include "spool.h"

void report_init(struct report *r, int tty)
{
    memset(r, 0, sizeof(*r));
    r->tty = tty;
}

void report_free(struct report *r)
{
    free(r->rows);
    r->rows = NULL;
    r->nrows = 0;
}

double report_error_rate(const struct pipe_stats *st)
{
    uint64_t good = st->stored + st->expired; /* a late file is not a worse one */
    if (!good)
        return st->errors ? 1.0 : 0.0;
    return (double)st->errors / (double)good;
}

/* "N error lines/records; bad dev_id: 3; ...; e.g. line 7 (...): '...'" */
static void report_examples(const char *esc, const struct pipe_stats *st)
{
    if (!st->errors && !st->dirty)
        return;
    char buf[1500];
    int off = snprintf(buf, sizeof(buf), "%s: %llu error lines/records", esc,
                       (unsigned long long)st->errors);
    for (int s = 0; s < PARSE_STATUS_MAX; s++)
        if (st->err_by[s] && off < (int)sizeof(buf))
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s %s: %llu", s == 0 ? "" : ";",
                            parse_status_text(s), (unsigned long long)st->err_by[s]);
    if (st->dirty && off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off,
                        "; records with dropped app items: %llu", (unsigned long long)st->dirty);
    for (int i = 0; i < st->nexamples && off < (int)sizeof(buf); i++) {
        const struct pipe_example *e = &st->ex[i];
        if (e->line)
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s line %llu (%s): '%s'",
                            i ? ";" : "; e.g.", (unsigned long long)e->line,
                            parse_status_text(e->status), e->text);
        else
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s %s", i ? ";" : "; e.g.",
                            e->text);
    }
    log_printf(LOG_WARNING, "%s", buf);
}

static void report_row_add(struct report *r, const char *esc, const char *result,
                           const struct pipe_stats *st, double secs)
{
    struct report_row *row = realloc(r->rows, (r->nrows + 1) * sizeof(*row));
    if (!row)
        return;
    r->rows = row;
    row += r->nrows++;
    snprintf(row->name, sizeof(row->name), "%s", esc);
    snprintf(row->result, sizeof(row->result), "%s", result);
    row->stored = st->stored;
    row->errors = st->errors;
    row->rate = report_error_rate(st);
    row->secs = secs;
}

static void report_entry(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                         const char *result, const char *msgid, int prio, const char *msg,
                         int64_t now)
{
    char esc[LOG_NAME_LEN], f_file[LOG_NAME_LEN + 16], f_rate[48], f_pct[48], f_dur[48];
    char f_bytes[48];
    char f_res[48], counts[24][48];
    const char *fields[32];
    int n = 0, k = 0;
    log_name(f->name, esc, sizeof(esc));
    snprintf(f_file, sizeof(f_file), "MEMC_FILE=%s", esc);
    snprintf(f_rate, sizeof(f_rate), "MEMC_ERROR_RATE=%.6f", report_error_rate(st));
    /* the same rate as the message shows it, for the catalog text */
    snprintf(f_pct, sizeof(f_pct), "MEMC_ERROR_PERCENT=%.4f", 100.0 * report_error_rate(st));
    snprintf(f_dur, sizeof(f_dur), "MEMC_DURATION_MS=%lld", (long long)(now - f->started_ms));
    snprintf(f_bytes, sizeof(f_bytes), "MEMC_BYTES=%lld", (long long)f->st.size);
    snprintf(f_res, sizeof(f_res), "MEMC_RESULT=%s", result);
    fields[n++] = f_file;
    /* the counters with a journal field (result.h's table), in its order,
     * the others where they always stood: after MEMC_ERRORS the rate and
     * the duration, after MEMC_DIRTY_APPS the size and the result */
#define REPORT_FIELD(fld, journal, metric, help)                                                   \
    if (pipe_named(journal)) {                                                                     \
        snprintf(counts[k], sizeof(counts[k]), "%s=%llu", journal ? journal : "",                  \
                 (unsigned long long)st->fld);                                                     \
        fields[n++] = counts[k++];                                                                 \
        if (strcmp(journal ? journal : "", "MEMC_ERRORS") == 0)                                    \
            fields[n++] = f_rate, fields[n++] = f_pct, fields[n++] = f_dur;                        \
        if (strcmp(journal ? journal : "", "MEMC_DIRTY_APPS") == 0)                                \
            fields[n++] = f_bytes, fields[n++] = f_res;                                            \
    }
    PIPE_COUNTERS(REPORT_FIELD)
#undef REPORT_FIELD
    fields[n] = NULL;
    log_event(prio, msgid, msg, fields);
    if (st->status == PIPE_CORRUPT || st->status == PIPE_IOERR) /* a rate means nothing */
        snprintf(r->last_result, sizeof(r->last_result), "last %s: %s", esc, result);
    else
        snprintf(r->last_result, sizeof(r->last_result), "last %s: %s, error rate %.2f%%", esc,
                 result, 100.0 * report_error_rate(st));
    if (r->tty)
        report_row_add(r, esc, result, st, (double)(now - f->started_ms) / 1000.0);
}

void report_aborted(const struct spool_file *f, const struct pipe_stats *st)
{
    char esc[LOG_NAME_LEN];
    log_printf(LOG_NOTICE,
               "%s: stopped after %llu records; it keeps its name and is loaded "
               "again from the start next time",
               log_name(f->name, esc, sizeof(esc)), (unsigned long long)st->stored);
}

void report_set_aside(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                      int dry, int64_t now)
{
    char esc[LOG_NAME_LEN], text[1024];
    log_name(f->name, esc, sizeof(esc));
    report_examples(esc, st);
    const char *what = st->status == PIPE_CORRUPT ? "corrupt" : "unreadable";
    snprintf(text, sizeof(text), "%s%s is %s (%s) after %llu records; %s .%s.failed",
             dry ? "dry run: " : "", esc, what, st->why, (unsigned long long)st->stored,
             dry ? "a real run renames it to" : "renaming it to", esc);
    report_entry(r, f, st, what, LOG_MSGID_FILE_CORRUPT, LOG_ERR, text, now);
}

void report_left(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                 int64_t retry_ms, int64_t now)
{
    char esc[LOG_NAME_LEN], text[1024], when[64] = "";
    log_name(f->name, esc, sizeof(esc));
    if (retry_ms > 0)
        snprintf(when, sizeof(when), "; loading it again in %lld s", (long long)(retry_ms / 1000));
    snprintf(text, sizeof(text),
             "%s left in place: %llu records not stored%s (memcached unreachable)%s", esc,
             (unsigned long long)st->deferred,
             st->possibly_lost ? ", and a server failed after storing some" : "", when);
    report_entry(r, f, st, "left", LOG_MSGID_FILE_LEFT, LOG_ERR, text, now);
}

void report_loaded(struct report *r, const struct spool_file *f, const struct pipe_stats *st,
                   int ok, int dry, double threshold, int64_t now)
{
    char esc[LOG_NAME_LEN], text[1024];
    log_name(f->name, esc, sizeof(esc));
    report_examples(esc, st);
    double rate = report_error_rate(st), secs = (double)(now - f->started_ms) / 1000.0;
    snprintf(text, sizeof(text),
             "%s%s %s: %llu records stored, %llu errors, error rate %.4f%% (%s %.2f%%), %.1f s, "
             "%.0f records/s",
             dry ? "dry run: " : "", esc, ok ? "loaded" : "failed", (unsigned long long)st->stored,
             (unsigned long long)st->errors, 100.0 * rate, ok ? "below" : "at or above",
             100.0 * threshold, secs, secs > 0 ? (double)st->stored / secs : 0.0);
    int prio = ok ? LOG_INFO : LOG_ERR;
    if (st->expired) { /* counted from the file's time: a late file loads less */
        size_t l = strlen(text);
        snprintf(text + l, sizeof(text) - l,
                 "; %llu records expired (file time + exptime), not sent",
                 (unsigned long long)st->expired);
        if (ok && !st->stored)
            prio = LOG_WARNING;
    }
    if (ok && !st->records) { /* an empty dump is a producer's fault worth a look */
        size_t l = strlen(text);
        snprintf(text + l, sizeof(text) - l, "; it has no record at all (%llu non-blank lines)",
                 (unsigned long long)st->lines);
        prio = LOG_WARNING;
    }
    report_entry(r, f, st, ok ? "loaded" : "failed",
                 ok ? LOG_MSGID_FILE_LOADED : LOG_MSGID_FILE_FAILED, prio, text, now);
}

void report_worker_died(const struct spool_file *f, pid_t pid, const char *why, int set_aside,
                        int stopping)
{
    char esc[LOG_NAME_LEN];
    int prio = stopping ? LOG_WARNING : LOG_ERR;
    struct log_fields lf = LOG_FIELDS_INIT(prio);
    log_name(f->name, esc, sizeof(esc));
    log_field(&lf, "MEMC_FILE=%s", esc);
    log_field(&lf, "MEMC_WORKER_PID=%d", (int)pid);
    if (set_aside)
        log_struct(prio, LOG_MSGID_WORKER_DIED, &lf,
                   "worker %d %s while loading %s; that is %d times for this file, setting it "
                   "aside as .%s.failed",
                   (int)pid, why, esc, f->crashes, esc);
    else
        log_struct(prio, LOG_MSGID_WORKER_DIED, &lf,
                   "worker %d %s while loading %s; the file will be loaded again from the start",
                   (int)pid, why, esc);
}

/* ---- STATUS ------------------------------------------------------------- */

#define REPORT_ADD(buf, off, ...)                                                                  \
    do {                                                                                           \
        if ((off) < (int)sizeof(buf))                                                              \
            (off) += snprintf((buf) + (off), sizeof(buf) - (size_t)(off), __VA_ARGS__);            \
    } while (0)

/* "loading a.tsv.gz 40%, b.tsv.gz 12%"; returns how many load, adds their
 * stored records to *stored and their down servers to *down. */
static int report_loading(char *buf, size_t len, int *off, const struct pool *p, uint64_t *stored,
                          uint32_t *down)
{
    int loading = 0;
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        const struct pool_worker *w = &p->w[i];
        if (w->pid <= 0)
            continue;
        *down |= w->down_mask;
        if (!w->file)
            continue;
        *stored += w->progress.stored;
        char esc[80];
        double pct =
            w->file->st.size ? 100.0 * (double)w->progress.bytes_in / (double)w->file->st.size : 0;
        if (*off < (int)len)
            *off +=
                snprintf(buf + *off, len - (size_t)*off, "%s%s %.0f%%", loading ? ", " : "loading ",
                         log_escape(w->file->name, strlen(w->file->name), esc, 40), pct);
        loading++;
    }
    return loading;
}

static void report_rate(struct report *r, uint64_t stored, int64_t now)
{
    if (now - r->rate_ms < 1000)
        return;
    if (r->rate_ms)
        r->rate = (double)(stored - r->rate_base) * 1000.0 / (double)(now - r->rate_ms);
    r->rate_base = stored;
    r->rate_ms = now;
}

void report_status(struct report *r, const struct spool *s, const struct pool *p,
                   const struct memc_map *map, const char *note, int stopping, struct notify *n,
                   int force)
{
    char buf[1024];
    int off = 0;
    uint64_t stored = r->stored_done;
    uint32_t down = 0;
    int loading = report_loading(buf, sizeof(buf), &off, p, &stored, &down);
    report_rate(r, stored, io_now_ms());
    if (note && note[0])
        REPORT_ADD(buf, off, "%s%s", loading ? "; " : "", note);
    else if (!loading)
        off = snprintf(buf, sizeof(buf), "%s",
                       s->count[SPOOL_RETRY] ? "waiting to retry" : "idle"); /* not idle then */
    REPORT_ADD(buf, off, "; %zu queued", s->count[SPOOL_QUEUED] + s->count[SPOOL_SETTLE]);
    if (s->count[SPOOL_RETRY])
        REPORT_ADD(buf, off, ", %zu waiting to retry", s->count[SPOOL_RETRY]);
    if (loading)
        REPORT_ADD(buf, off, "; %.0f records/s", r->rate);
    if (r->last_result[0])
        REPORT_ADD(buf, off, "; %s", r->last_result);
    for (int g = 0; g < map->nservers; g++)
        if (down & (1u << g))
            REPORT_ADD(buf, off, "; memcached down: %s %s", cfg_type_name(map->servers[g].type),
                       map->servers[g].name);
    if (stopping)
        REPORT_ADD(buf, off, "; stopping");
    notify_status(n, buf, force);
}

/* ---- terminal (one-shot on a tty) ---------------------------------------- */

void report_tty_erase(void *report)
{
    struct report *r = report;
    if (r->tty_lines)
        fprintf(stderr, "\033[%dF\033[J", r->tty_lines);
    r->tty_lines = 0;
}

/* One line per file in flight: percent of its compressed bytes, records/s,
 * errors, ETA. */
void report_tty_draw(struct report *r, const struct pool *p, const char *note, int64_t now)
{
    if (now - r->tty_drawn_ms < 250)
        return;
    r->tty_drawn_ms = now;
    report_tty_erase(r);
    if (note && note[0]) {
        fprintf(stderr, "  %s\033[K\n", note);
        r->tty_lines++;
    }
    for (int i = 0; i < POOL_MAX_WORKERS; i++) {
        const struct pool_worker *w = &p->w[i];
        if (w->pid <= 0 || !w->file)
            continue;
        const struct spool_file *f = w->file;
        double secs = (double)(now - f->started_ms) / 1000.0;
        double done = f->st.size ? (double)w->progress.bytes_in / (double)f->st.size : 0;
        double rate = secs > 0 ? (double)w->progress.stored / secs : 0;
        char eta[32] = "?";
        if (done > 0.01 && secs > 0)
            snprintf(eta, sizeof(eta), "%.0f s", secs * (1 - done) / done);
        char esc[48];
        fprintf(stderr, "  %-40s %5.1f%%  %9.0f records/s  %8llu errors  ETA %s\033[K\n",
                log_escape(f->name, strlen(f->name), esc, 40), 100 * done, rate,
                (unsigned long long)w->progress.errors, eta);
        r->tty_lines++;
    }
    fflush(stderr);
}

void report_tty_summary(struct report *r)
{
    report_tty_erase(r);
    if (!r->nrows)
        return;
    fprintf(stderr, "\n%-40s %-10s %12s %10s %11s %8s %12s\n", "FILE", "RESULT", "RECORDS",
            "ERRORS", "ERROR RATE", "SECONDS", "RECORDS/S");
    for (size_t i = 0; i < r->nrows; i++) {
        const struct report_row *row = &r->rows[i];
        fprintf(stderr, "%-40s %-10s %12llu %10llu %10.4f%% %8.1f %12.0f\n", row->name, row->result,
                (unsigned long long)row->stored, (unsigned long long)row->errors, 100 * row->rate,
                row->secs, row->secs > 0 ? (double)row->stored / row->secs : 0.0);
    }
}

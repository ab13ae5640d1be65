/*
 * metrics.c — the Prometheus text file (see metrics.h).
 *
 * Exposition format 0.0.4: one "# HELP", one "# TYPE", then the samples
 * of each metric family; label values escaped (\\, \", \n).  Each family
 * is either one total or the parts of one (never both, so sum() over a
 * label adds up): the read-back's parts are memc_load_verify_records_total
 * {outcome}, its size memc_load_verify_sampled_records_total.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "health.h"
#include "io.h"
#include "log.h"
#include "route.h"
#include "pool.h"
#include "rewarm.h"
#include "spool.h"

static const char *const metrics_results[METRICS_NRESULTS] = {
    [METRICS_LOADED] = "loaded",   [METRICS_FAILED] = "failed",
    [METRICS_CORRUPT] = "corrupt", [METRICS_UNREADABLE] = "unreadable",
    [METRICS_CRASHED] = "crashed", [METRICS_LEFT] = "left",
};

/* Upper bounds (le) of the load duration buckets, in seconds. */
static const int metrics_le_s[METRICS_NBUCKETS] = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600};

void metrics_init(struct metrics *m, const struct cfg *c)
{
    memset(m, 0, sizeof(*m));
    const char *path = c->metrics_file;
    if (c->oneshot) {
        struct cfg d;
        cfg_defaults(&d);
        if (strcmp(path, d.metrics_file) == 0)
            path = ""; /* the service's file: not a hand run's to write */
    }
    snprintf(m->path, sizeof(m->path), "%s", path);
    m->oneshot = c->oneshot;
    m->dirty = 1;
}

/* The file is no longer ours to keep up to date. */
static void metrics_remove(struct metrics *m)
{
    if (m->path[0] && unlink(m->path) < 0 && errno != ENOENT)
        log_printf(LOG_WARNING, "cannot remove metrics file %s: %s (it goes stale)", m->path,
                   strerror(errno));
}

void metrics_set_path(struct metrics *m, const char *path)
{
    if (m->oneshot || strcmp(m->path, path) == 0)
        return;
    metrics_remove(m);
    m->warned = 0;
    m->written_ms = 0;
    snprintf(m->path, sizeof(m->path), "%s", path);
}

static void metrics_time_load(struct metrics *m, int64_t ms)
{
    int b = 0;
    while (b < METRICS_NBUCKETS && ms > metrics_le_s[b] * 1000LL)
        b++;
    m->load_in[b]++;
    m->loads++;
    m->load_ms += ms;
}

void metrics_add(struct metrics *m, const struct pipe_stats *st, int64_t load_ms)
{
    pipe_stats_add(&m->total, st);
    if (load_ms >= 0 && st->status != PIPE_ABORTED)
        metrics_time_load(m, load_ms);
    m->dirty = 1;
}

void metrics_file(struct metrics *m, enum metrics_result r, int64_t wall_s)
{
    m->files[r]++;
    if (r == METRICS_LOADED)
        m->last_success_s = wall_s;
    m->dirty = 1;
}

void metrics_retry(struct metrics *m)
{
    m->retries++;
    m->dirty = 1;
}

void metrics_retained(struct metrics *m, const struct retain_sum *sum)
{
    for (int k = 0; k < RETAIN_NKINDS; k++) {
        m->retained_files[k] = sum->kept_files[k];
        m->retained_bytes[k] = sum->kept_bytes[k];
        m->removed_files[k] += sum->removed_files[k];
    }
    m->dirty = 1;
}

static void metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP memc_load_%s %s\n# TYPE memc_load_%s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void metrics_one(FILE *f, const char *name, const char *type, const char *help, long long v)
{
    metrics_head(f, name, type, help);
    fprintf(f, "memc_load_%s %lld\n", name, v);
}

/* A label value: \, " and newline escaped. */
static void metrics_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void metrics_by_type(FILE *f, const char *name, const uint64_t *v, int unknown)
{
    for (int t = 0; t < CFG_MAX_TYPES + unknown; t++)
        fprintf(f, "memc_load_%s{type=\"%s\"} %llu\n", name,
                t < CFG_MAX_TYPES ? cfg_type_name(t) : "unknown", (unsigned long long)v[t]);
}

static void metrics_files(FILE *f, const struct metrics *m)
{
    metrics_head(f, "files_total", "counter",
                 "Spool files by final result, each file once (retries: "
                 "memc_load_file_retries_total).");
    for (int r = 0; r < METRICS_NRESULTS; r++)
        fprintf(f, "memc_load_files_total{result=\"%s\"} %llu\n", metrics_results[r],
                (unsigned long long)m->files[r]);
    metrics_one(f, "file_retries_total", "counter",
                "Loads that ended incomplete (a memcached down or restarted); the file is "
                "loaded again.",
                (long long)m->retries);
    metrics_head(f, "file_load_duration_seconds", "histogram",
                 "Time a worker took to load one spool file, for every load that ran to its end.");
    uint64_t below = 0;
    for (int b = 0; b <= METRICS_NBUCKETS; b++) {
        below += m->load_in[b];
        if (b < METRICS_NBUCKETS)
            fprintf(f, "memc_load_file_load_duration_seconds_bucket{le=\"%d\"} %llu\n",
                    metrics_le_s[b], (unsigned long long)below);
        else
            fprintf(f, "memc_load_file_load_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)below);
    }
    fprintf(f, "memc_load_file_load_duration_seconds_sum %lld.%03lld\n",
            (long long)(m->load_ms / 1000), (long long)(m->load_ms % 1000));
    fprintf(f, "memc_load_file_load_duration_seconds_count %llu\n", (unsigned long long)m->loads);
}

/* The read-back: its parts in one family, its size in another. */
static void metrics_verify(FILE *f, const struct metrics *m)
{
    const struct pipe_stats *s = &m->total;
    uint64_t bad = s->verify_missing + s->verify_different;
    uint64_t equal = s->verify_sampled > bad ? s->verify_sampled - bad : 0;
    metrics_one(f, "verify_sampled_records_total", "counter",
                "Records read back after loads (the sample; memc_load_verify_records_total "
                "splits it).",
                (long long)s->verify_sampled);
    metrics_head(f, "verify_records_total", "counter",
                 "Records read back after a load, by outcome (equal, missing, different).");
    fprintf(f, "memc_load_verify_records_total{outcome=\"equal\"} %llu\n",
            (unsigned long long)equal);
    fprintf(f, "memc_load_verify_records_total{outcome=\"missing\"} %llu\n",
            (unsigned long long)s->verify_missing);
    fprintf(f, "memc_load_verify_records_total{outcome=\"different\"} %llu\n",
            (unsigned long long)s->verify_different);
}

static void metrics_counters(FILE *f, const struct metrics *m)
{
    metrics_files(f, m);
    /* the load counters that have a family (result.h's table) */
#define METRICS_TYPE_FAMILY(fld, n, metric, help)                                                  \
    metrics_head(f, metric, "counter", help);                                                      \
    metrics_by_type(f, metric, m->total.fld, (n) > CFG_MAX_TYPES);
    PIPE_TYPE_COUNTERS(METRICS_TYPE_FAMILY)
#undef METRICS_TYPE_FAMILY
#define METRICS_FAMILY(fld, journal, metric, help)                                                 \
    if (pipe_named(metric))                                                                        \
        metrics_one(f, metric, "counter", help, (long long)m->total.fld);
    PIPE_COUNTERS(METRICS_FAMILY)
#undef METRICS_FAMILY
    metrics_verify(f, m);
    metrics_one(f, "last_success_timestamp_seconds", "gauge",
                "When the last file was loaded successfully (Unix time; 0: never).",
                (long long)m->last_success_s);
    if (m->oneshot)
        metrics_one(f, "last_run_timestamp_seconds", "gauge",
                    "When this one-shot run ended (Unix time).", (long long)m->last_run_s);
}

/* Waiting to be loaded: what memc_load_queue_files counts. */
static int metrics_waiting(enum spool_state st)
{
    return st == SPOOL_QUEUED || st == SPOOL_SETTLE || st == SPOOL_RETRY;
}

/* Seconds since the mtime of the lowest-named file waiting to be loaded,
 * 0 when none.  Names sort in time order (the order the dot files appear
 * in), so that is the oldest, and it is found without a stat of every
 * queued file: the rename order holds only the files not renamed yet, and
 * the first waiting one comes after the few loading or waiting for their
 * rename.  One fstatat(): a moved-in file has not been looked at yet. */
static int64_t metrics_oldest_waiting(const struct spool *s, int64_t wall_s)
{
    if (s->dirfd < 0)
        return 0;
    for (struct treap_node *n = treap_first(&s->order); n; n = treap_next(&s->order, n)) {
        const struct spool_file *f = treap_entry(n, struct spool_file, by_order);
        struct stat st;
        if (!metrics_waiting(f->state) || fstatat(s->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone since: the next one */
        return st.st_mtime < wall_s ? wall_s - (int64_t)st.st_mtime : 0;
    }
    return 0;
}

static void metrics_servers(FILE *f, const struct health *h, const struct memc_map *map)
{
    metrics_head(f, "server_up", "gauge",
                 "1 when the last stats probe of the memcached answered (none for a "
                 "classic-protocol type: not probed).");
    uint32_t probed = memc_map_stats_mask(map);
    for (int g = 0; g < map->nservers; g++) {
        if (!(probed >> g & 1))
            continue;
        fputs("memc_load_server_up{server=\"", f);
        metrics_label(f, map->servers[g].name);
        fprintf(f, "\",type=\"%s\"} %d\n", cfg_type_name(map->servers[g].type), h->s[g].up);
    }
}

static void metrics_state(FILE *f, const struct metrics *m, const struct spool *s,
                          const struct pool *p, const struct health *h, const struct rewarm *rw,
                          const struct memc_map *map)
{
    metrics_one(
        f, "queue_files", "gauge",
        "Spool files waiting to be loaded (queued, settling, waiting to retry).",
        (long long)(s->count[SPOOL_QUEUED] + s->count[SPOOL_SETTLE] + s->count[SPOOL_RETRY]));
    metrics_one(f, "oldest_queued_file_age_seconds", "gauge",
                "Age (from its mtime) of the oldest spool file waiting to be loaded; 0: none.",
                (long long)metrics_oldest_waiting(s, io_wall_us() / 1000000));
    metrics_one(f, "files_in_flight", "gauge", "Files being loaded by workers.",
                pool_count_busy(p));
    metrics_one(f, "worker_restarts_total", "counter", "Workers that died unexpectedly.",
                (long long)p->restarts);
    metrics_head(f, "rewarms_total", "counter",
                 "Re-warms finished, by reason: restart (a memcached lost its data), ring (a "
                 "reload changed a type's servers), late (a late file's newer values replayed).");
    for (int i = 0; i < REWARM_NREASONS; i++)
        fprintf(f, "memc_load_rewarms_total{reason=\"%s\"} %llu\n", rewarm_reason_name(i),
                (unsigned long long)rw->finished_by[i]);
    metrics_one(f, "rewarm_records_total", "counter", "Records stored again by re-warms.",
                (long long)rw->records_total);
    if (!m->oneshot) /* a one-shot run does not probe: it would say 0 */
        metrics_servers(f, h, map);
    metrics_head(f, "build_info", "gauge", "Version and gzip backend of this memc-load.");
    fprintf(f, "memc_load_build_info{version=\"%s\",inflate=\"%s\"} 1\n", MEMC_VERSION,
            MEMC_INFLATE_NAME);
}

/* A family by kind of finished file (loaded: .NAME, failed: .NAME.failed). */
static void metrics_by_kind(FILE *f, const char *name, const char *type, const char *help,
                            const uint64_t *v)
{
    metrics_head(f, name, type, help);
    for (int k = 0; k < RETAIN_NKINDS; k++)
        fprintf(f, "memc_load_%s{kind=\"%s\"} %llu\n", name, retain_kind_name(k),
                (unsigned long long)v[k]);
}

static void metrics_retention(FILE *f, const struct metrics *m)
{
    metrics_by_kind(f, "retained_files", "gauge",
                    "Finished files in the spool at the last retention sweep, by kind (loaded: "
                    ".NAME, failed: .NAME.failed).",
                    m->retained_files);
    metrics_by_kind(f, "retained_bytes", "gauge",
                    "Bytes of the finished files in the spool at the last retention sweep, by "
                    "kind.",
                    m->retained_bytes);
    metrics_by_kind(f, "removed_files_total", "counter",
                    "Finished files removed by spool retention (retain, retain_failed, "
                    "retain_bytes), by kind.",
                    m->removed_files);
}

static void metrics_write(struct metrics *m, const struct spool *s, const struct pool *p,
                          const struct health *h, const struct rewarm *rw,
                          const struct memc_map *map)
{
    char tmp[CFG_PATH_LEN + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        /* no directory: no node-exporter here (the package only Suggests
         * it), which is no fault; anything else is one */
        const char *slash = strrchr(m->path, '/');
        int dirlen = slash ? (int)(slash - m->path) : 1;
        if (!m->warned++ && errno == ENOENT)
            log_printf(LOG_INFO,
                       "no metrics: directory %.*s does not exist (is prometheus-node-exporter "
                       "installed?); they are written once it does",
                       dirlen, slash ? m->path : ".");
        else if (m->warned == 1)
            log_printf(LOG_WARNING, "cannot write metrics to %s: %s (no metrics until it can)", tmp,
                       strerror(errno));
        return;
    }
    metrics_counters(f, m);
    metrics_state(f, m, s, p, h, rw, map);
    metrics_retention(f, m);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, m->path) < 0) {
        if (!m->warned++)
            log_errno(LOG_WARNING, errno, "cannot write metrics to %s", m->path);
        unlink(tmp);
        return;
    }
    m->warned = 0;
}

void metrics_tick(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t now)
{
    if (!m->path[0] || m->oneshot)
        return;
    int due = now - m->written_ms >= 5000 || (m->dirty && now - m->written_ms >= 200);
    if (!due)
        return;
    metrics_write(m, s, p, h, rw, map);
    m->written_ms = now;
    m->dirty = 0;
}

void metrics_exit(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t wall_s)
{
    if (!m->oneshot) {
        metrics_remove(m);
        return;
    }
    if (!m->path[0])
        return;
    const size_t *n = s->count;
    m->files[METRICS_LEFT] +=
        n[SPOOL_LEFT] + n[SPOOL_QUEUED] + n[SPOOL_SETTLE] + n[SPOOL_RETRY] + n[SPOOL_LOADING];
    m->last_run_s = wall_s;
    metrics_write(m, s, p, h, rw, map);
}

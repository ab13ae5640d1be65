/*
 * metrics.c — the Prometheus text file (see metrics.h).
 *
 * Exposition format 0.0.4: one "# HELP", one "# TYPE", then the samples
 * of each metric family; label values escaped (\\, \", \n).
 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
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

void metrics_init(struct metrics *m, const char *path)
{
    memset(m, 0, sizeof(*m));
    metrics_set_path(m, path);
    m->dirty = 1;
}

void metrics_set_path(struct metrics *m, const char *path)
{
    if (strcmp(m->path, path) != 0)
        m->warned = 0;
    snprintf(m->path, sizeof(m->path), "%s", path);
}

void metrics_add(struct metrics *m, const struct pipe_stats *st)
{
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        m->stored[t] += st->stored_by[t];
        m->dirty_apps[t] += st->dirty_by[t];
    }
    for (int t = 0; t <= CFG_MAX_TYPES; t++)
        m->errors[t] += st->errors_by[t];
    m->bytes_read += st->bytes_in;
    m->evictions += st->evictions;
    m->verify_sampled += st->verify_sampled;
    m->verify_missing += st->verify_missing;
    m->verify_different += st->verify_different;
    m->dirty = 1;
}

void metrics_file(struct metrics *m, enum metrics_result r, int64_t wall_s)
{
    m->files[r]++;
    if (r == METRICS_LOADED)
        m->last_success_s = wall_s;
    m->dirty = 1;
}

static void metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP memc_load_%s %s\n# TYPE memc_load_%s %s\n", name, help, name, type);
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

static void metrics_counters(FILE *f, const struct metrics *m)
{
    metrics_head(f, "files_total", "counter", "Spool files by final result.");
    for (int r = 0; r < METRICS_NRESULTS; r++)
        fprintf(f, "memc_load_files_total{result=\"%s\"} %llu\n", metrics_results[r],
                (unsigned long long)m->files[r]);
    metrics_head(f, "records_stored_total", "counter", "Records memcached stored, by device type.");
    metrics_by_type(f, "records_stored_total", m->stored, 0);
    metrics_head(f, "error_lines_total", "counter",
                 "Error lines and refused records, by device type (unknown: no type).");
    metrics_by_type(f, "error_lines_total", m->errors, 1);
    metrics_head(f, "dirty_apps_records_total", "counter",
                 "Records stored with app items dropped, by device type.");
    metrics_by_type(f, "dirty_apps_records_total", m->dirty_apps, 0);
    metrics_head(f, "read_bytes_total", "counter", "Compressed bytes read from spool files.");
    fprintf(f, "memc_load_read_bytes_total %llu\n", (unsigned long long)m->bytes_read);
    metrics_head(f, "evictions_total", "counter",
                 "Items memcached evicted while memc-load loaded into it.");
    fprintf(f, "memc_load_evictions_total %llu\n", (unsigned long long)m->evictions);
    metrics_head(f, "verify_records_total", "counter",
                 "Records read back after a load, by outcome.");
    fprintf(f, "memc_load_verify_records_total{outcome=\"sampled\"} %llu\n",
            (unsigned long long)m->verify_sampled);
    fprintf(f, "memc_load_verify_records_total{outcome=\"missing\"} %llu\n",
            (unsigned long long)m->verify_missing);
    fprintf(f, "memc_load_verify_records_total{outcome=\"different\"} %llu\n",
            (unsigned long long)m->verify_different);
    metrics_head(f, "last_success_timestamp_seconds", "gauge",
                 "When the last file was loaded successfully (Unix time; 0: never).");
    fprintf(f, "memc_load_last_success_timestamp_seconds %lld\n", (long long)m->last_success_s);
}

static void metrics_state(FILE *f, const struct spool *s, const struct pool *p,
                          const struct health *h, const struct rewarm *rw,
                          const struct memc_map *map)
{
    metrics_head(f, "queue_files", "gauge",
                 "Spool files waiting to be loaded (queued, settling, "
                 "waiting to retry).");
    fprintf(f, "memc_load_queue_files %zu\n",
            s->count[SPOOL_QUEUED] + s->count[SPOOL_SETTLE] + s->count[SPOOL_RETRY]);
    metrics_head(f, "files_in_flight", "gauge", "Files being loaded by workers.");
    fprintf(f, "memc_load_files_in_flight %d\n", pool_count_busy(p));
    metrics_head(f, "worker_restarts_total", "counter", "Workers that died unexpectedly.");
    fprintf(f, "memc_load_worker_restarts_total %llu\n", (unsigned long long)p->restarts);
    metrics_head(f, "rewarms_total", "counter", "Re-warms of restarted memcached finished.");
    fprintf(f, "memc_load_rewarms_total %llu\n", (unsigned long long)rw->finished);
    metrics_head(f, "rewarm_records_total", "counter", "Records stored again by re-warms.");
    fprintf(f, "memc_load_rewarm_records_total %llu\n", (unsigned long long)rw->records_total);
    metrics_head(f, "server_up", "gauge", "1 when the last stats probe of the memcached answered.");
    for (int g = 0; g < map->nservers; g++) {
        fputs("memc_load_server_up{server=\"", f);
        metrics_label(f, map->servers[g].name);
        fprintf(f, "\",type=\"%s\"} %d\n", cfg_type_name(map->servers[g].type), h->s[g].up);
    }
    metrics_head(f, "build_info", "gauge", "Version and gzip backend of this memc-load.");
    fprintf(f, "memc_load_build_info{version=\"%s\",inflate=\"%s\"} 1\n", MEMC_VERSION,
            MEMC_INFLATE_NAME);
}

static void metrics_write(struct metrics *m, const struct spool *s, const struct pool *p,
                          const struct health *h, const struct rewarm *rw,
                          const struct memc_map *map)
{
    char tmp[CFG_PATH_LEN + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", m->path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (!m->warned++)
            log_printf(LOG_WARNING, "cannot write metrics to %s: %s (no metrics until it can)", tmp,
                       strerror(errno));
        return;
    }
    metrics_counters(f, m);
    metrics_state(f, s, p, h, rw, map);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, m->path) < 0) {
        if (!m->warned++)
            log_printf(LOG_WARNING, "cannot write metrics to %s: %s", m->path, strerror(errno));
        unlink(tmp);
        return;
    }
    m->warned = 0;
}

void metrics_tick(struct metrics *m, const struct spool *s, const struct pool *p,
                  const struct health *h, const struct rewarm *rw, const struct memc_map *map,
                  int64_t now)
{
    if (!m->path[0])
        return;
    int due = now - m->written_ms >= 5000 || (m->dirty && now - m->written_ms >= 200);
    if (!due)
        return;
    metrics_write(m, s, p, h, rw, map);
    m->written_ms = now;
    m->dirty = 0;
}

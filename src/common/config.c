/*
 * config.c — defaults, the `key = value` config file, and the command line.
 *
 * Every setting goes through one function, cfg_set(), whether it comes from
 * the file or from a command-line option, so a value is validated the same
 * way wherever it is written.  The command line is collected first, the file
 * is read, then the collected options are applied on top: cfg_load() is
 * cfg_read_args(), cfg_check_cli(), cfg_apply_file() and cfg_validate(), in
 * that order.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MEMC_VERSION
#define MEMC_VERSION "0.0.0"
#endif

static const char *const cfg_types[CFG_MAX_TYPES] = {"idfa", "gaid", "adid", "dvid"};

const char *cfg_type_name(int type)
{
    return (type >= 0 && type < CFG_MAX_TYPES) ? cfg_types[type] : "?";
}

static const char *const cfg_distributions[] = {
    [CFG_DIST_KETAMA] = "ketama",
    [CFG_DIST_KETAMA_WEIGHTED] = "ketama_weighted",
};

const char *cfg_distribution_name(int distribution)
{
    return (distribution >= 0 &&
            distribution < (int)(sizeof(cfg_distributions) / sizeof(cfg_distributions[0])))
               ? cfg_distributions[distribution]
               : "?";
}

void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->config_file, sizeof(c->config_file), "%s", CFG_DEFAULT_FILE);
    snprintf(c->pattern, sizeof(c->pattern), "/var/spool/memc-load/*.tsv.gz");
    for (int i = 0; i < CFG_MAX_TYPES; i++)
        snprintf(c->addr[i], sizeof(c->addr[i]), "127.0.0.1:%d", 33013 + i);
    c->workers = 3;
    c->threads = 1;
    c->error_threshold = 0.01;
    c->log_level = CFG_LOG_INFO;
    c->block_bytes = 1024 * 1024;
    c->max_line_bytes = 1024 * 1024;
    c->io_timeout_ms = 2000;
    c->stall_timeout_s = 60;
    c->retry_interval_s = 10;
    c->stop_timeout_s = 20;
    c->settle_ms = 2000;
    c->distribution = CFG_DIST_KETAMA;
    c->verify_sample = 200;
    c->health_interval_s = 5;
    c->rewarm_max_age_s = 7 * 86400;
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/memc-load");
    snprintf(c->metrics_file, sizeof(c->metrics_file),
             "/var/lib/prometheus/node-exporter/memc-load.prom");
}

static void cfg_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int cfg_parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return -EINVAL;
    *out = n;
    return 0;
}

/* Size with an optional k/M suffix (powers of 1024). */
static int cfg_parse_size(const char *v, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *v == '-')
        return -EINVAL;
    if (*end == 'k' || *end == 'K')
        n *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        n *= 1024 * 1024, end++;
    if (*end || n < lo || n > hi)
        return -EINVAL;
    *out = (size_t)n;
    return 0;
}

/* A duration in seconds, fractions allowed, with an optional "s" or "ms"
 * unit: "2", "0.5", "2s", "500ms".  Rounded to whole milliseconds. */
static int cfg_parse_duration_ms(const char *v, long lo_ms, long hi_ms, long *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    /* digits and a point only: no sign, exponent, hex, inf or nan */
    if (errno || end == v || strspn(v, "0123456789.") != (size_t)(end - v))
        return -EINVAL;
    double ms = d * 1000;
    if (strcmp(end, "ms") == 0)
        ms = d;
    else if (*end && strcmp(end, "s") != 0)
        return -EINVAL;
    if (!(ms + 0.5 >= (double)lo_ms && ms + 0.5 < (double)hi_ms + 1))
        return -EINVAL;
    *out = (long)(ms + 0.5);
    return 0;
}

static int cfg_parse_level(const char *v)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"error", CFG_LOG_ERR},
                  {"warning", CFG_LOG_WARNING},
                  {"info", CFG_LOG_INFO},
                  {"debug", CFG_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcasecmp(v, levels[i].name) == 0)
            return levels[i].level;
    return -1;
}

/* An address list "host:port[,host:port...]"; empty disables the type.
 * Hosts are names or IPv4 literals (IPv6 as [addr]:port). */
static int cfg_check_addr(const char *v, char *why, size_t whylen)
{
    if (!*v)
        return 0;
    int count = 0;
    const char *p = v;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memrchr(p, ':', n);
        if (!colon || colon == p) {
            snprintf(why, whylen, "'%.*s' is not host:port", (int)n, p);
            return -EINVAL;
        }
        long port = 0;
        char num[8];
        size_t plen = n - (size_t)(colon + 1 - p);
        if (plen == 0 || plen >= sizeof(num)) {
            snprintf(why, whylen, "'%.*s' has no valid port", (int)n, p);
            return -EINVAL;
        }
        memcpy(num, colon + 1, plen);
        num[plen] = 0;
        if (cfg_parse_long(num, 1, 65535, &port) < 0) {
            snprintf(why, whylen, "'%.*s' has no valid port", (int)n, p);
            return -EINVAL;
        }
        for (const char *q = p; q < colon; q++)
            if (*q == ' ' || *q == '\t') {
                snprintf(why, whylen, "'%.*s' contains blanks", (int)n, p);
                return -EINVAL;
            }
        count++;
        if (!end)
            break;
        p = end + 1;
        if (!*p) {
            snprintf(why, whylen, "trailing comma");
            return -EINVAL;
        }
    }
    return count;
}

/*
 * The setters below each handle some keys: 0 when set, -ENOENT for a key
 * that is not theirs, -EINVAL for a bad value (why says what is wrong).
 */

static int cfg_set_addr(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    for (int i = 0; i < CFG_MAX_TYPES; i++) {
        if (strcmp(key, cfg_types[i]) == 0) {
            if (strlen(v) >= sizeof(c->addr[i])) {
                snprintf(why, whylen, "address list too long");
                return -EINVAL;
            }
            if (cfg_check_addr(v, why, whylen) < 0)
                return -EINVAL;
            snprintf(c->addr[i], sizeof(c->addr[i]), "%s", v);
            return 0;
        }
    }
    return -ENOENT;
}

static int cfg_set_pattern(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    if (strcmp(key, "pattern") != 0)
        return -ENOENT;
    if (!*v || strlen(v) >= sizeof(c->pattern)) {
        snprintf(why, whylen, "must be a non-empty path glob");
        return -EINVAL;
    }
    snprintf(c->pattern, sizeof(c->pattern), "%s", v);
    return 0;
}

static int cfg_set_int(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    struct {
        const char *key;
        int *dst;
        long lo, hi;
    } ints[] = {
        {"workers", &c->workers, 1, 64},
        {"threads", &c->threads, 1, 64},
        {"io_timeout_ms", &c->io_timeout_ms, 10, 600000},
        {"stall_timeout", &c->stall_timeout_s, 1, 86400},
        {"retry_interval", &c->retry_interval_s, 0, 86400},
        {"stop_timeout", &c->stop_timeout_s, 1, 3600},
        {"verify_sample", &c->verify_sample, 0, 1000000},
        {"health_interval", &c->health_interval_s, 1, 3600},
    };
    long n;
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcmp(key, ints[i].key) == 0) {
            if (cfg_parse_long(v, ints[i].lo, ints[i].hi, &n) < 0) {
                snprintf(why, whylen, "'%s' is not a whole number from %ld to %ld", v, ints[i].lo,
                         ints[i].hi);
                return -EINVAL;
            }
            *ints[i].dst = (int)n;
            return 0;
        }
    }
    return -ENOENT;
}

static int cfg_set_size(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    size_t *dst;
    if (strcmp(key, "block_bytes") == 0)
        dst = &c->block_bytes;
    else if (strcmp(key, "max_line_bytes") == 0)
        dst = &c->max_line_bytes;
    else
        return -ENOENT;
    size_t sz;
    if (cfg_parse_size(v, 4096, (size_t)256 << 20, &sz) < 0) {
        snprintf(why, whylen, "'%s' is not a size from 4k to 256M", v);
        return -EINVAL;
    }
    *dst = sz;
    return 0;
}

static int cfg_set_threshold(struct cfg *c, const char *key, const char *v, char *why,
                             size_t whylen)
{
    if (strcmp(key, "error_threshold") != 0)
        return -ENOENT;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 1) {
        snprintf(why, whylen, "'%s' is not a number from 0 to 1", v);
        return -EINVAL;
    }
    c->error_threshold = d;
    return 0;
}

static int cfg_set_duration(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    if (strcmp(key, "settle_time") != 0)
        return -ENOENT;
    long ms;
    if (cfg_parse_duration_ms(v, 0, 3600 * 1000, &ms) < 0) {
        snprintf(why, whylen,
                 "'%s' is not a duration from 0 to 3600 seconds (like 2, 0.5, 2s or 500ms)", v);
        return -EINVAL;
    }
    c->settle_ms = (int)ms;
    return 0;
}

/* rewarm_max_age: whole seconds with an optional unit s, m, h or d. */
static int cfg_set_age(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    if (strcmp(key, "rewarm_max_age") != 0)
        return -ENOENT;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    long unit = !*end               ? 1
                : !strcmp(end, "s") ? 1
                : !strcmp(end, "m") ? 60
                : !strcmp(end, "h") ? 3600
                : !strcmp(end, "d") ? 86400
                                    : 0;
    if (errno || end == v || !isdigit((unsigned char)*v) || !unit || n > 3650L * 86400 / unit) {
        snprintf(why, whylen, "'%s' is not an age like 7d, 12h, 30m or 3600 (0 = off)", v);
        return -EINVAL;
    }
    c->rewarm_max_age_s = n * unit;
    return 0;
}

/* state_dir, metrics_file: an absolute path, or empty for none. */
static int cfg_set_path(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    char *dst = strcmp(key, "state_dir") == 0      ? c->state_dir
                : strcmp(key, "metrics_file") == 0 ? c->metrics_file
                                                   : NULL;
    if (!dst)
        return -ENOENT;
    if (v[0] && v[0] != '/') {
        snprintf(why, whylen, "'%s' is not an absolute path (or empty: none)", v);
        return -EINVAL;
    }
    snprintf(dst, CFG_PATH_LEN, "%s", v);
    return 0;
}

static int cfg_set_distribution(struct cfg *c, const char *key, const char *v, char *why,
                                size_t whylen)
{
    if (strcmp(key, "distribution") != 0)
        return -ENOENT;
    for (size_t i = 0; i < sizeof(cfg_distributions) / sizeof(cfg_distributions[0]); i++) {
        if (strcmp(v, cfg_distributions[i]) == 0) {
            c->distribution = (int)i;
            return 0;
        }
    }
    snprintf(why, whylen, "'%s' is not one of ketama, ketama_weighted", v);
    return -EINVAL;
}

static int cfg_set_level(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    if (strcmp(key, "log_level") != 0)
        return -ENOENT;
    int l = cfg_parse_level(v);
    if (l < 0) {
        snprintf(why, whylen, "'%s' is not one of error, warning, info, debug", v);
        return -EINVAL;
    }
    c->log_level = l;
    return 0;
}

/* Set one key.  Returns 0, -ENOENT for an unknown key, -EINVAL for a bad
 * value (why says what is wrong). */
static int cfg_set(struct cfg *c, const char *key, const char *v, char *why, size_t whylen)
{
    static int (*const setters[])(struct cfg *, const char *, const char *, char *, size_t) = {
        cfg_set_addr,  cfg_set_pattern,  cfg_set_int,          cfg_set_size, cfg_set_threshold,
        cfg_set_level, cfg_set_duration, cfg_set_distribution, cfg_set_age,  cfg_set_path,
    };
    why[0] = 0;
    for (size_t i = 0; i < sizeof(setters) / sizeof(setters[0]); i++) {
        int r = setters[i](c, key, v, why, whylen);
        if (r != -ENOENT)
            return r;
    }
    return -ENOENT;
}

static int cfg_is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* The keys a file has set so far, with their lines: a key given twice is an
 * error (the file would say two things, and only one would count). */
struct cfg_seen {
    struct {
        char key[32];
        int line;
    } keys[64];
    int n;
};

/* The line that already set key, or 0; records key at lineno if new.  Only
 * known keys get here, and every one of them is short. */
static int cfg_seen_before(struct cfg_seen *seen, const char *key, int lineno)
{
    for (int i = 0; i < seen->n; i++)
        if (strcmp(seen->keys[i].key, key) == 0)
            return seen->keys[i].line;
    if (seen->n < (int)(sizeof(seen->keys) / sizeof(seen->keys[0])) &&
        strlen(key) < sizeof(seen->keys[0].key)) {
        snprintf(seen->keys[seen->n].key, sizeof(seen->keys[0].key), "%s", key);
        seen->keys[seen->n++].line = lineno;
    }
    return 0;
}

int cfg_parse_text(struct cfg *c, const char *name, const char *text, size_t len, char *err,
                   size_t errlen)
{
    char line[4096], why[512];
    size_t pos = 0;
    int lineno = 0;
    struct cfg_seen seen;
    seen.n = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof(line)) {
            cfg_errf(err, errlen, "%s:%d: line longer than %zu bytes", name, lineno,
                     sizeof(line) - 1);
            return CFG_EX_CONFIG;
        }
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos += n + (nl ? 1 : 0);
        if (memchr(line, 0, n)) {
            cfg_errf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
            return CFG_EX_CONFIG;
        }
        /* Comments start at '#' anywhere: no value needs a '#'. */
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = line;
        while (cfg_is_blank(*s))
            s++;
        char *e = s + strlen(s);
        while (e > s && cfg_is_blank(e[-1]))
            *--e = 0;
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            cfg_errf(err, errlen, "%s:%d: expected 'key = value', got '%s'", name, lineno, s);
            return CFG_EX_CONFIG;
        }
        char *k_end = eq;
        while (k_end > s && cfg_is_blank(k_end[-1]))
            k_end--;
        *k_end = 0;
        char *v = eq + 1;
        while (cfg_is_blank(*v))
            v++;
        if (!*s) {
            cfg_errf(err, errlen, "%s:%d: missing key before '='", name, lineno);
            return CFG_EX_CONFIG;
        }
        int r = cfg_set(c, s, v, why, sizeof(why));
        if (r == -ENOENT) {
            cfg_errf(err, errlen, "%s:%d: %s: unknown key", name, lineno, s);
            return CFG_EX_CONFIG;
        }
        if (r < 0) {
            cfg_errf(err, errlen, "%s:%d: %s: %s", name, lineno, s, why);
            return CFG_EX_CONFIG;
        }
        int first = cfg_seen_before(&seen, s, lineno);
        if (first) {
            cfg_errf(err, errlen, "%s:%d: %s: already set at line %d (give each key once)", name,
                     lineno, s, first);
            return CFG_EX_CONFIG;
        }
    }
    return 0;
}

int cfg_parse_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        cfg_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return CFG_EX_CONFIG;
    }
    /* Config files are small; 1 MiB is far beyond any real one. */
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int r = CFG_EX_CONFIG;
    if (!buf) {
        cfg_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    len = fread(buf, 1, cap, f);
    if (ferror(f)) {
        cfg_errf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (len == cap) {
        cfg_errf(err, errlen, "%s: larger than 1 MiB", path);
        goto out;
    }
    r = cfg_parse_text(c, path, buf, len, err, errlen);
out:
    free(buf);
    fclose(f);
    return r;
}

int cfg_split_pattern(const char *pattern, char *dir, size_t dirlen, char *glob, size_t globlen)
{
    const char *slash = strrchr(pattern, '/');
    const char *g = slash ? slash + 1 : pattern;
    size_t dlen = slash ? (size_t)(slash - pattern) : 1;
    if (!*g || dlen + 1 > dirlen || strlen(g) + 1 > globlen)
        return -EINVAL;
    if (slash) {
        if (dlen == 0)
            snprintf(dir, dirlen, "/");
        else
            snprintf(dir, dirlen, "%.*s", (int)dlen, pattern);
    } else {
        snprintf(dir, dirlen, ".");
    }
    if (strpbrk(dir, "*?["))
        return -EINVAL; /* globs in the directory part are not supported */
    snprintf(glob, globlen, "%s", g);
    return 0;
}

int cfg_validate(const struct cfg *c, char *err, size_t errlen)
{
    char dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    if (cfg_split_pattern(c->pattern, dir, sizeof(dir), glob, sizeof(glob)) < 0) {
        cfg_errf(err, errlen,
                 "pattern '%s': needs a directory and a file glob, with no glob characters in "
                 "the directory part",
                 c->pattern);
        return CFG_EX_CONFIG;
    }
    int types = 0, servers = 0;
    char why[256];
    for (int i = 0; i < CFG_MAX_TYPES; i++) {
        int n = cfg_check_addr(c->addr[i], why, sizeof(why));
        if (n > 0)
            types++, servers += n;
    }
    if (!types) {
        cfg_errf(err, errlen, "no device type has a memcached address");
        return CFG_EX_CONFIG;
    }
    if (servers > CFG_MAX_SERVERS) {
        cfg_errf(err, errlen, "%d memcached servers configured, at most %d supported", servers,
                 CFG_MAX_SERVERS);
        return CFG_EX_CONFIG;
    }
    if (c->max_line_bytes > c->block_bytes * 64) {
        cfg_errf(err, errlen, "max_line_bytes may be at most 64 x block_bytes");
        return CFG_EX_CONFIG;
    }
    return 0;
}

void cfg_usage(void)
{
    printf("Usage: memc-load [OPTIONS]\n"
           "       memc-load verify [--sample N] [--seed S] [--json] [OPTIONS] FILE...\n"
           "Load gzipped app-install TSV dumps into memcached; verify reads a sample\n"
           "of FILE... back from memcached (memc-load verify --help).\n"
           "\n"
           "  -c, --config FILE     config file (default %s;\n"
           "                        built-in defaults if that file does not exist)\n"
           "  -p, --pattern GLOB    spool files to load (default /var/spool/memc-load/*.tsv.gz)\n"
           "      --idfa ADDRS      memcached for idfa: host:port[,host:port...]\n"
           "      --gaid ADDRS      memcached for gaid\n"
           "      --adid ADDRS      memcached for adid\n"
           "      --dvid ADDRS      memcached for dvid\n"
           "      --distribution D  how keys spread over a type's servers: ketama\n"
           "                        (default) or ketama_weighted (libketama-compatible)\n"
           "  -o, --oneshot         load the files present now, then exit\n"
           "  -n, --dry             parse and pack, write nothing, rename nothing\n"
           "  -t, --test            run the pack/unpack self-test and exit\n"
           "  -w, --workers N       worker processes (default 3)\n"
           "  -j, --threads N       packer threads per worker (default 1)\n"
           "  -l, --log-level L     error, warning, info or debug (default info)\n"
           "      --check-config    validate the configuration, check that the spool\n"
           "                        directory exists and the service user can write it,\n"
           "                        probe every memcached with a test write, and exit\n"
           "      --no-probe        with --check-config: no memcached probes\n"
           "      --metrics-file F  Prometheus textfile (\"\" = none; daemon only)\n"
           "      --wait-lock       another memc-load holds the spool: wait for it\n"
           "                        instead of exiting with 75\n"
           "  -h, --help            this text\n"
           "  -V, --version         print the version\n"
           "\n"
           "Exit status: 0 success; 1 a file failed (error rate, corrupt input);\n"
           "75 a file was left in place (memcached unreachable, stopped);\n"
           "64 bad command line; 78 bad configuration.\n"
           "--check-config: 0 all good; 1 spool missing or not writable by the service\n"
           "user, or a memcached failed its probe; 64 bad command line; 78 bad\n"
           "configuration.\n",
           CFG_DEFAULT_FILE);
}

enum {
    OPT_IDFA = 256,
    OPT_GAID,
    OPT_ADID,
    OPT_DVID,
    OPT_CHECK,
    OPT_DIST,
    OPT_NOPROBE,
    OPT_WAITLOCK,
    OPT_METRICS
};

static const struct option cfg_opts[] = {{"config", required_argument, 0, 'c'},
                                         {"pattern", required_argument, 0, 'p'},
                                         {"idfa", required_argument, 0, OPT_IDFA},
                                         {"gaid", required_argument, 0, OPT_GAID},
                                         {"adid", required_argument, 0, OPT_ADID},
                                         {"dvid", required_argument, 0, OPT_DVID},
                                         {"distribution", required_argument, 0, OPT_DIST},
                                         {"oneshot", no_argument, 0, 'o'},
                                         {"dry", no_argument, 0, 'n'},
                                         {"test", no_argument, 0, 't'},
                                         {"workers", required_argument, 0, 'w'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"check-config", no_argument, 0, OPT_CHECK},
                                         {"no-probe", no_argument, 0, OPT_NOPROBE},
                                         {"wait-lock", no_argument, 0, OPT_WAITLOCK},
                                         {"metrics-file", required_argument, 0, OPT_METRICS},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};

int cfg_option_takes_value(const char *arg)
{
    if (arg[0] != '-' || !arg[1])
        return 0;
    if (arg[1] != '-') /* -c FILE, but not -cFILE or -n */
        return !arg[2] && strchr("cpwjl", arg[1]) != NULL;
    /* getopt_long takes an unambiguous prefix ("--conf") as the option */
    const struct option *hit = NULL;
    size_t n = strlen(arg + 2);
    int hits = 0;
    for (const struct option *o = cfg_opts; o->name; o++) {
        if (strcmp(arg + 2, o->name) == 0)
            return o->has_arg == required_argument;
        if (strncmp(arg + 2, o->name, n) == 0)
            hit = o, hits++;
    }
    return hits == 1 && hit->has_arg == required_argument;
}

/* Options that are settings: the config key each one sets. */
static const struct {
    int opt;
    const char *key;
} cfg_opt_keys[] = {
    {'p', "pattern"},           {OPT_IDFA, "idfa"},
    {OPT_GAID, "gaid"},         {OPT_ADID, "adid"},
    {OPT_DVID, "dvid"},         {'w', "workers"},
    {'j', "threads"},           {'l', "log_level"},
    {OPT_DIST, "distribution"}, {OPT_METRICS, "metrics_file"},
};

/* Options that are settings are kept as key/value pairs and applied after
 * the file, so the command line overrides it. */
struct cfg_cli {
    struct {
        const char *key;
        const char *val;
    } sets[64];
    int nsets;
    int have_config; /* --config given: the file must exist */
};

static const char *cfg_opt_key(int o)
{
    for (size_t i = 0; i < sizeof(cfg_opt_keys) / sizeof(cfg_opt_keys[0]); i++)
        if (cfg_opt_keys[i].opt == o)
            return cfg_opt_keys[i].key;
    return NULL;
}

/* The options that only switch a mode on.  1 if o is one of them. */
static int cfg_opt_flag(struct cfg *c, int o)
{
    switch (o) {
    case 'o':
        c->oneshot = 1;
        return 1;
    case 'n':
        c->dry = 1;
        return 1;
    case 't':
        c->selftest = 1;
        return 1;
    case OPT_CHECK:
        c->check_config = 1;
        return 1;
    case OPT_NOPROBE:
        c->no_probe = 1;
        return 1;
    case OPT_WAITLOCK:
        c->wait_lock = 1;
        return 1;
    default:
        return 0;
    }
}

/* Any other option: --config, --help, --version, or a bad one.  Returns 0
 * (*exit_now set after --help / --version) or CFG_EX_USAGE. */
static int cfg_opt_other(struct cfg *c, int o, char **argv, struct cfg_cli *cli, char *err,
                         size_t errlen, int *exit_now)
{
    switch (o) {
    case 'c':
        if (strlen(optarg) >= sizeof(c->config_file)) {
            cfg_errf(err, errlen, "--config: path too long");
            return CFG_EX_USAGE;
        }
        snprintf(c->config_file, sizeof(c->config_file), "%s", optarg);
        cli->have_config = 1;
        return 0;
    case 'h':
        cfg_usage();
        *exit_now = 1;
        return 0;
    case 'V':
        printf("memc-load %s\n", MEMC_VERSION);
        *exit_now = 1;
        return 0;
    default:
        if (optopt && optopt < 256)
            cfg_errf(err, errlen, "option -%c: unknown or missing its value", optopt);
        else
            cfg_errf(err, errlen, "%s: unknown option or missing value", argv[optind - 1]);
        return CFG_EX_USAGE;
    }
}

/* Walk the command line: mode flags and --config go into *c at once,
 * settings into cli.  Returns 0 (*exit_now set after --help / --version) or
 * CFG_EX_USAGE. */
static int cfg_read_args(struct cfg *c, int argc, char **argv, struct cfg_cli *cli, char *err,
                         size_t errlen, int *exit_now)
{
    optind = 0; /* glibc: full re-initialisation, so tests can call us twice */
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "c:p:ontw:j:l:hV", cfg_opts, NULL);
        if (o == -1)
            break;
        const char *key = cfg_opt_key(o);
        if (key) {
            if (cli->nsets == (int)(sizeof(cli->sets) / sizeof(cli->sets[0]))) {
                cfg_errf(err, errlen, "too many options");
                return CFG_EX_USAGE;
            }
            cli->sets[cli->nsets].key = key;
            cli->sets[cli->nsets].val = optarg;
            cli->nsets++;
        } else if (!cfg_opt_flag(c, o)) {
            int r = cfg_opt_other(c, o, argv, cli, err, errlen, exit_now);
            if (r || *exit_now)
                return r;
        }
    }
    if (optind < argc) {
        cfg_errf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return CFG_EX_USAGE;
    }
    if (c->no_probe && !c->check_config) {
        cfg_errf(err, errlen, "--no-probe: only with --check-config");
        return CFG_EX_USAGE;
    }
    return 0;
}

/* Validate the command-line values on their own first, so a typo there is
 * a usage error (64), not blamed on the config file. */
static int cfg_check_cli(const struct cfg_cli *cli, char *err, size_t errlen)
{
    struct cfg scratch;
    char why[512];
    cfg_defaults(&scratch);
    for (int i = 0; i < cli->nsets; i++) {
        if (cfg_set(&scratch, cli->sets[i].key, cli->sets[i].val, why, sizeof(why)) < 0) {
            cfg_errf(err, errlen, "--%s: %s", cli->sets[i].key, why);
            return CFG_EX_USAGE;
        }
    }
    return 0;
}

/* Read the config file (if --config named one, or the default exists), then
 * apply the command-line settings over it; the mode flags and the file name
 * from the command line survive the file. */
static int cfg_apply_file(struct cfg *c, const struct cfg_cli *cli, char *err, size_t errlen)
{
    int oneshot = c->oneshot, dry = c->dry, selftest = c->selftest, check = c->check_config;
    int no_probe = c->no_probe, wait_lock = c->wait_lock;
    char file[CFG_PATH_LEN], why[512];
    memcpy(file, c->config_file, sizeof(file));
    if (cli->have_config || access(file, F_OK) == 0) {
        int r = cfg_parse_file(c, file, err, errlen);
        if (r)
            return r;
    }
    for (int i = 0; i < cli->nsets; i++)
        cfg_set(c, cli->sets[i].key, cli->sets[i].val, why, sizeof(why));
    memcpy(c->config_file, file, sizeof(file));
    c->oneshot = oneshot, c->dry = dry, c->selftest = selftest, c->check_config = check;
    c->no_probe = no_probe;
    c->wait_lock = wait_lock;
    return 0;
}

int cfg_load(struct cfg *c, int argc, char **argv, char *err, size_t errlen, int *exit_now)
{
    struct cfg_cli cli;
    cli.nsets = 0;
    cli.have_config = 0;
    *exit_now = 0;
    cfg_defaults(c);
    int r = cfg_read_args(c, argc, argv, &cli, err, errlen, exit_now);
    if (r || *exit_now)
        return r;
    r = cfg_check_cli(&cli, err, errlen);
    if (r)
        return r;
    r = cfg_apply_file(c, &cli, err, errlen);
    if (r)
        return r;
    return cfg_validate(c, err, errlen);
}

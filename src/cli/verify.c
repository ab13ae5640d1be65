/*
 * verify.c — read-back of a sample (see verify.h): a small poll() loop that
 * talks to every server at once (vfy_run: connect, write the whole request,
 * read and parse answers as they come, so neither side can block the other
 * on full buffers), the two exchanges that use it (pipelined `mg <key> v`
 * ... `mn`, and `stats`), and the `memc-load verify` command: arguments,
 * reading the files through the loader's pipeline in dry mode, and the
 * report (a table, or one JSON object).
 *
 * These are short-lived connections of their own, not the writer's: a
 * read-back happens once per file and must not disturb the write path.
 */
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "io.h"
#include "log.h"
#include "pipeline.h"
#include "readback.h"
#include "sub.h"

/* ---- memc-load verify ------------------------------------------------------- */

struct vfy_cli {
    int sample, json, have_seed;
    uint64_t seed;
    const char **files;
    int nfiles;
};

static void vfy_usage(void)
{
    printf("Usage: memc-load verify [--sample N] [--seed S] [--json] [CONFIG OPTIONS] FILE...\n"
           "Read a random sample of the records of FILE... (several: in name order, the\n"
           "later line wins) back from memcached and compare the bytes.\n"
           "\n"
           "      --sample N   records to read back (default 1000)\n"
           "      --seed S     which records (default: random; printed, to repeat a run)\n"
           "      --json       one JSON object instead of the table\n"
           "  CONFIG OPTIONS   as for the daemon: -c FILE, --idfa ADDRS, ..., --distribution\n"
           "\n"
           "Exit status: 0 every sampled record equal; 1 some missing or different;\n"
           "75 a memcached unreachable; 66 a file cannot be read; 64 bad command line;\n"
           "78 bad configuration.\n");
}

/* --sample / --seed value: from "--opt=V" or the next argument. */
static const char *vfy_optval(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* One of verify's own options at argv[*i]: 1 taken, 0 not ours, -1 bad. */
static int vfy_own_opt(void *ctx, int argc, char **argv, int *i, char *err, size_t len)
{
    struct vfy_cli *a = ctx;
    const char *arg = argv[*i], *v;
    char *end;
    if (strcmp(arg, "--json") == 0)
        return a->json = 1;
    if (strncmp(arg, "--sample", 8) == 0 && (arg[8] == 0 || arg[8] == '=')) {
        v = vfy_optval(argc, argv, i, "--sample");
        long n = v ? strtol(v, &end, 10) : 0;
        if (!v || *end || end == v || n < 1 || n > 1000000) {
            snprintf(err, len, "--sample: a whole number from 1 to 1000000");
            return -1;
        }
        a->sample = (int)n;
        return 1;
    }
    if (strncmp(arg, "--seed", 6) == 0 && (arg[6] == 0 || arg[6] == '=')) {
        v = vfy_optval(argc, argv, i, "--seed");
        errno = 0;
        a->seed = v ? strtoull(v, &end, 10) : 0;
        if (!v || *end || end == v || errno || *v == '-') {
            snprintf(err, len, "--seed: a whole number from 0 to 18446744073709551615");
            return -1;
        }
        a->have_seed = 1;
        return 1;
    }
    return 0;
}

static const char *vfy_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Name order, as the daemon loads a spool: by file name, then path. */
static int vfy_name_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    int r = strcmp(vfy_base(a), vfy_base(b));
    return r ? r : strcmp(a, b);
}

/* What the files held, for the report. */
struct vfy_read {
    uint64_t lines, records, errors;
    uint64_t expired; /* records whose life is over (exptime): not expected in memcached */
};

/* Every file through the pipeline (dry) into one sample; 0 or 66. */
static int vfy_read_files(struct pipe *p, const struct vfy_cli *a, struct vfy_read *rd)
{
    memset(rd, 0, sizeof(*rd));
    for (int i = 0; i < a->nfiles; i++) {
        int fd = open(a->files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            log_cli(LOG_ERR, "%s: %s", a->files[i], strerror(errno));
            return MEMC_EXIT_NOINPUT;
        }
        struct pipe_stats st;
        struct stat fs;
        pipe_set_file_time(p, fstat(fd, &fs) == 0 ? (int64_t)fs.st_mtim.tv_sec : 0);
        pipe_load(p, fd, &st, NULL, NULL);
        close(fd);
        rd->lines += st.lines;
        rd->records += st.records;
        rd->errors += st.errors;
        rd->expired += st.expired;
        if (st.status == PIPE_IOERR) {
            log_cli(LOG_ERR, "%s: %s", a->files[i], st.why);
            return MEMC_EXIT_NOINPUT;
        }
        if (st.status == PIPE_CORRUPT)
            log_cli(LOG_ERR,
                    "%s: %s; the %llu records before the damage are verified, as the "
                    "loader loads them",
                    a->files[i], st.why, (unsigned long long)st.records);
    }
    return 0;
}

static double vfy_share(uint32_t x, uint32_t n)
{
    return n ? (double)x / n : 0.0;
}

static void vfy_print_row(const char *type, const char *name, const struct vfy_server *s)
{
    if (s->unreachable) {
        printf("%-6s %-24s %8u  unreachable: %s\n", type, name, s->sampled, s->why);
        return;
    }
    double lo, hi;
    uint32_t expected = s->sampled - s->expired;
    vfy_wilson(s->equal, expected, &lo, &hi);
    printf("%-6s %-24s %8u %8u %8u %9u %8u ", type, name, s->sampled, s->equal, s->missing,
           s->different, s->expired);
    if (expected)
        printf("%8.2f%%  %6.2f%% - %6.2f%%\n", 100 * vfy_share(s->equal, expected), 100 * lo,
               100 * hi);
    else
        printf("%9s  %s\n", "-", "-");
}

static void vfy_print_text(const struct memc_map *map, const struct vfy_cli *a,
                           const struct vfy_read *rd, const struct vfy_result *r)
{
    printf("files:    %d, read in name order (the later line of a key wins)\n", a->nfiles);
    printf("records:  %llu (%llu error lines", (unsigned long long)rd->records,
           (unsigned long long)rd->errors);
    if (rd->expired)
        printf(", %llu expired: not expected in memcached", (unsigned long long)rd->expired);
    printf(")\n");
    uint32_t n = 0;
    for (int g = 0; g < r->nservers; g++)
        n += r->srv[g].sampled;
    printf("sample:   %u keys (--sample %d), --seed %llu\n\n", n, a->sample,
           (unsigned long long)a->seed);
    printf("%-6s %-24s %8s %8s %8s %9s %8s %9s  %s\n", "TYPE", "SERVER", "SAMPLED", "EQUAL",
           "MISSING", "DIFFERENT", "EXPIRED", "PRESENT", "95% INTERVAL");
    for (int g = 0; g < map->nservers; g++)
        vfy_print_row(cfg_type_name(map->servers[g].type), map->servers[g].name, &r->srv[g]);
    struct vfy_server all = {.sampled = r->sampled,
                             .equal = r->equal,
                             .missing = r->missing,
                             .different = r->different,
                             .expired = r->expired};
    vfy_print_row("all", r->unreachable ? "(reachable servers)" : "", &all);
    for (int g = 0; g < map->nservers; g++)
        for (int i = 0; i < r->srv[g].nex; i++) {
            char esc[PARSE_MAX_KEY * 4 + 8];
            const char *k = r->srv[g].ex[i].key;
            printf("%s %s on %s: %s\n", i ? "  " : "e.g.",
                   r->srv[g].ex[i].missing ? "missing  " : "different", map->servers[g].name,
                   log_escape(k, strlen(k), esc, sizeof(esc)));
        }
}

/* A JSON string: quotes, backslashes and every byte outside printable
 * ASCII escaped (a key may hold any non-blank bytes). */
static void vfy_json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void vfy_json_counts(const struct vfy_server *s)
{
    double lo, hi;
    uint32_t expected = s->sampled - s->expired;
    vfy_wilson(s->equal, expected, &lo, &hi);
    printf("\"sampled\":%u,\"equal\":%u,\"missing\":%u,\"different\":%u,\"expired\":%u,",
           s->sampled, s->equal, s->missing, s->different, s->expired);
    if (expected && !s->unreachable)
        printf("\"present\":%.6f,\"interval\":[%.6f,%.6f]", vfy_share(s->equal, expected), lo, hi);
    else
        printf("\"present\":null,\"interval\":null");
}

static void vfy_json_server(const struct memc_server *srv, const struct vfy_server *s)
{
    printf("{\"type\":\"%s\",\"server\":", cfg_type_name(srv->type));
    vfy_json_str(srv->name);
    printf(",\"reachable\":%s,", s->unreachable ? "false" : "true");
    vfy_json_counts(s);
    if (s->unreachable) {
        printf(",\"error\":");
        vfy_json_str(s->why);
    }
    printf(",\"examples\":[");
    for (int i = 0; i < s->nex; i++) {
        printf("%s{\"key\":", i ? "," : "");
        vfy_json_str(s->ex[i].key);
        printf(",\"state\":\"%s\"}", s->ex[i].missing ? "missing" : "different");
    }
    printf("]}");
}

static void vfy_print_json(const struct memc_map *map, const struct vfy_cli *a,
                           const struct vfy_read *rd, const struct vfy_result *r, int status)
{
    printf("{\"files\":[");
    for (int i = 0; i < a->nfiles; i++) {
        printf("%s", i ? "," : "");
        vfy_json_str(a->files[i]);
    }
    printf("],\"records\":%llu,\"error_lines\":%llu,\"expired_records\":%llu,\"sample\":%d,"
           "\"seed\":%llu,\"servers\":[",
           (unsigned long long)rd->records, (unsigned long long)rd->errors,
           (unsigned long long)rd->expired, a->sample, (unsigned long long)a->seed);
    for (int g = 0; g < map->nservers; g++) {
        printf("%s", g ? "," : "");
        vfy_json_server(&map->servers[g], &r->srv[g]);
    }
    struct vfy_server all = {.sampled = r->sampled,
                             .equal = r->equal,
                             .missing = r->missing,
                             .different = r->different,
                             .expired = r->expired};
    printf("],\"total\":{");
    vfy_json_counts(&all);
    printf(",\"unreachable\":%d},\"status\":%d}\n", r->unreachable, status);
}

/* Read the files into a sample and read it back; the exit status. */
static int vfy_run_cli(struct cfg *c, struct vfy_cli *a, const struct memc_map *map)
{
    struct pipe *p = NULL;
    struct vfy_read rd;
    struct vfy_result *res = calloc(1, sizeof(*res));
    c->dry = 1; /* the pipeline parses, packs and routes, and writes nothing */
    int st = MEMC_EXIT_SOFTWARE;
    if (!res || pipe_create(&p, c, map) < 0 || pipe_sample_enable(p, a->sample, a->seed, 1) < 0) {
        log_cli(LOG_ERR, "verify: out of memory");
        goto out;
    }
    st = vfy_read_files(p, a, &rd);
    if (st)
        goto out;
    if (vfy_readback(pipe_sample(p), map, c->io_timeout_ms, res) < 0) {
        log_cli(LOG_ERR, "verify: out of memory");
        st = MEMC_EXIT_SOFTWARE;
        goto out;
    }
    st = res->unreachable                   ? MEMC_EXIT_TEMPFAIL
         : (res->missing || res->different) ? MEMC_EXIT_FAILED
                                            : MEMC_EXIT_OK;
    if (a->json)
        vfy_print_json(map, a, &rd, res, st);
    else
        vfy_print_text(map, a, &rd, res);
out:
    pipe_destroy(p);
    free(res);
    return st;
}

int verify_main(int argc, char **argv)
{
    struct vfy_cli a = {.sample = 1000};
    struct cli_sub sub = {
        .name = "verify", .operand = "FILE", .usage = vfy_usage, .own = vfy_own_opt, .ctx = &a};
    struct cfg c;
    struct memc_map map;
    int st = cli_sub_args(&sub, argc, argv);
    a.files = sub.operands;
    a.nfiles = sub.noperands;
    if (!st && (st = cli_sub_setup(&sub, &c, &map)) == 0) {
        if (!a.have_seed && getrandom(&a.seed, sizeof(a.seed), 0) != sizeof(a.seed))
            a.seed = (uint64_t)io_now_ms() ^ ((uint64_t)getpid() << 32);
        qsort(a.files, (size_t)a.nfiles, sizeof(*a.files), vfy_name_cmp);
        st = vfy_run_cli(&c, &a, &map);
        memc_map_free(&map);
    } else if (st == 1) {
        st = MEMC_EXIT_OK; /* --help or --version */
    }
    cli_sub_free(&sub);
    return st;
}

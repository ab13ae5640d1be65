/*
 * gen.c — memc-gen: deterministic, realistic input for memc-load, used by
 * the tests, scripts/demo and bench/run.
 *
 * Lines look like the production dumps: 4 device types in equal shares,
 * 32-hex dev_ids, %.12g coordinates, 1-100 apps in 0..9999 (~314 bytes a
 * line), gzip level 6.  The same arguments always give the same bytes
 * (xoshiro256** seeded from --seed and the file number).
 *
 * --expect writes, for every valid record, "key\thex(value)" where value is
 * the UserApps encoding computed here independently of memc-load's packer
 * (apps as non-packed varints, then lat and lon as doubles parsed back from
 * the printed text), so the tests compare memcached's bytes against it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

struct rng {
    uint64_t s[4];
};

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) { /* splitmix64 */
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        r->s[i] = z ^ (z >> 31);
    }
}

static double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static uint32_t rng_below(struct rng *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

static const char *const all_types[4] = {"idfa", "gaid", "adid", "dvid"};

static void usage(void)
{
    fprintf(stderr,
            "usage: memc-gen [-n LINES] [-f FILES] [-s SEED] [-e ERROR_FRACTION] [-z LEVEL]\n"
            "                [-p PREFIX] [-t idfa,gaid,...] [--crlf|--cr] [--dup FRACTION]\n"
            "                [--expect FILE.tsv [--sample N]] OUTDIR\n");
}

static char *hex_value(const uint32_t *apps, int n, double lat, double lon, char *out)
{
    static const char hx[] = "0123456789abcdef";
    unsigned char b[1024];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        b[k++] = 0x08;
        uint32_t v = apps[i];
        do {
            b[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
    }
    double d[2] = {lat, lon};
    for (int j = 0; j < 2; j++) {
        uint64_t bits;
        memcpy(&bits, &d[j], 8);
        b[k++] = j ? 0x19 : 0x11;
        for (int i = 0; i < 8; i++)
            b[k++] = (unsigned char)(bits >> (8 * i));
    }
    for (size_t i = 0; i < k; i++)
        out[2 * i] = hx[b[i] >> 4], out[2 * i + 1] = hx[b[i] & 15];
    out[2 * k] = 0;
    return out;
}

struct gen_opts {
    long lines, files, level;
    uint64_t seed;
    double err_frac, dup_frac;
    long sample; /* --expect lists every sample-th valid record */
    const char *prefix, *eol, *expect, *dir;
    const char *types[4];
    int ntypes;
    char typebuf[64];
};

/* What the files of one run share: the --expect listing, the count of valid
 * records so far (for --sample), and the dev_ids of earlier valid lines of
 * the current file (for --dup). */
struct gen_run {
    FILE *ex;
    long valid;
    char (*ids)[33];
    int *id_type;
};

/* One record as drawn from the generator, before it is (maybe) damaged. */
struct gen_rec {
    int t, napps;
    char id[33], lat_s[32], lon_s[32];
    uint32_t apps[100];
};

/* The positional OUTDIR, the ranges, the -t list; 0, or 64 after the usage. */
static int check_args(int argc, char **argv, struct gen_opts *g)
{
    if (optind != argc - 1 || g->lines < 0 || g->files < 1 || g->level < 0 || g->level > 9 ||
        g->sample < 1) {
        usage();
        return 64;
    }
    for (char *save = NULL, *tok = strtok_r(g->typebuf, ",", &save); tok && g->ntypes < 4;
         tok = strtok_r(NULL, ",", &save))
        for (int i = 0; i < 4; i++)
            if (strcmp(tok, all_types[i]) == 0)
                g->types[g->ntypes++] = all_types[i];
    if (!g->ntypes) {
        usage();
        return 64;
    }
    g->dir = argv[optind];
    return 0;
}

/* 0, or 64 after printing the usage. */
static int parse_args(int argc, char **argv, struct gen_opts *g)
{
    *g = (struct gen_opts){.lines = 1000,
                           .files = 1,
                           .level = 6,
                           .seed = 1,
                           .sample = 1,
                           .prefix = "appsinstalled-",
                           .eol = "\n",
                           .typebuf = "idfa,gaid,adid,dvid"};
    static const struct option opts[] = {
        {"crlf", no_argument, 0, 'C'},         {"cr", no_argument, 0, 'R'},
        {"dup", required_argument, 0, 'd'},    {"expect", required_argument, 0, 'x'},
        {"sample", required_argument, 0, 'S'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:f:s:e:z:p:t:", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            g->lines = atol(optarg);
            break;
        case 'f':
            g->files = atol(optarg);
            break;
        case 's':
            g->seed = strtoull(optarg, NULL, 10);
            break;
        case 'e':
            g->err_frac = atof(optarg);
            break;
        case 'z':
            g->level = atol(optarg);
            break;
        case 'p':
            g->prefix = optarg;
            break;
        case 't':
            snprintf(g->typebuf, sizeof(g->typebuf), "%s", optarg);
            break;
        case 'C':
            g->eol = "\r\n";
            break;
        case 'R':
            g->eol = "\r";
            break;
        case 'd':
            g->dup_frac = atof(optarg);
            break;
        case 'x':
            g->expect = optarg;
            break;
        case 'S':
            g->sample = atol(optarg);
            break;
        default:
            usage();
            return 64;
        }
    }
    return check_args(argc, argv, g);
}

/* Draw one record: type, dev_id (or a repeat of an earlier one, --dup),
 * coordinates, apps.  nids: how many of run->ids belong to this file. */
static void draw_record(struct rng *r, const struct gen_opts *g, const struct gen_run *run,
                        long nids, struct gen_rec *rec)
{
    rec->t = (int)rng_below(r, (uint32_t)g->ntypes);
    if (g->dup_frac > 0 && nids > 0 && rng_unit(r) < g->dup_frac) {
        long k = (long)rng_below(r, (uint32_t)(nids < 4096 ? nids : 4096));
        memcpy(rec->id, run->ids[k], 33);
        rec->t = run->id_type[k];
    } else {
        for (int k = 0; k < 32; k++)
            rec->id[k] = "0123456789abcdef"[rng_below(r, 16)];
        rec->id[32] = 0;
    }
    double lat = rng_unit(r) * 180 - 90, lon = rng_unit(r) * 360 - 180;
    rec->napps = 1 + (int)rng_below(r, 100);
    for (int k = 0; k < rec->napps; k++)
        rec->apps[k] = rng_below(r, 10000);
    snprintf(rec->lat_s, sizeof(rec->lat_s), "%.12g", lat);
    snprintf(rec->lon_s, sizeof(rec->lon_s), "%.12g", lon);
}

/* The line for rec with damage bad (0 none, 1 no apps column, 2 an extra
 * column, 3 bad lat, 4 unknown type, 5 empty dev_id); returns its length. */
static int format_line(const struct gen_opts *g, const struct gen_rec *rec, int bad, char *line,
                       size_t cap)
{
    int off = 0;
    const char *type = bad == 4 ? "xxxx" : g->types[rec->t];
    off += snprintf(line + off, cap - (size_t)off, "%s\t%s\t%s\t%s", type, bad == 5 ? "" : rec->id,
                    bad == 3 ? "abc" : rec->lat_s, rec->lon_s);
    if (bad != 1) {
        line[off++] = '\t';
        for (int k = 0; k < rec->napps; k++)
            off += snprintf(line + off, cap - (size_t)off, "%s%u", k ? "," : "", rec->apps[k]);
    }
    if (bad == 2)
        off += snprintf(line + off, cap - (size_t)off, "\textra");
    off += snprintf(line + off, cap - (size_t)off, "%s", g->eol);
    return off;
}

/* A valid record: remember its dev_id for --dup, list it for --expect. */
static void note_valid(struct gen_run *run, const struct gen_opts *g, const struct gen_rec *rec,
                       long *nids)
{
    char hex[2048];
    if (*nids < 4096) {
        memcpy(run->ids[*nids], rec->id, 33);
        run->id_type[(*nids)++] = rec->t;
    }
    if (run->ex && run->valid++ % g->sample == 0)
        fprintf(run->ex, "%s:%s\t%s\n", g->types[rec->t], rec->id,
                hex_value(rec->apps, rec->napps, strtod(rec->lat_s, NULL), strtod(rec->lon_s, NULL),
                          hex));
}

/* Write g->lines lines into path (gzip level g->level), seeded from the
 * file number; *raw gets the uncompressed size.  0, or 1 after a message. */
static int write_lines(const struct gen_opts *g, long f, const char *path, struct gen_run *run,
                       unsigned long long *raw)
{
    char mode[8], line[4096];
    snprintf(mode, sizeof(mode), "wb%ld", g->level);
    gzFile gz = gzopen(path, mode);
    if (!gz) {
        perror(path);
        return 1;
    }
    gzbuffer(gz, 1 << 17);
    struct rng r;
    rng_seed(&r, g->seed * 1000003u + (uint64_t)f);
    long nids = 0;
    for (long i = 0; i < g->lines; i++) {
        struct gen_rec rec;
        draw_record(&r, g, run, nids, &rec);
        int bad = g->err_frac > 0 && rng_unit(&r) < g->err_frac ? 1 + (int)rng_below(&r, 5) : 0;
        int off = format_line(g, &rec, bad, line, sizeof(line));
        if (gzwrite(gz, line, (unsigned)off) != off) {
            fprintf(stderr, "%s: write error\n", path);
            return 1;
        }
        *raw += (unsigned long long)off;
        if (!bad)
            note_valid(run, g, &rec, &nids);
    }
    if (gzclose(gz) != Z_OK) {
        fprintf(stderr, "%s: close error\n", path);
        return 1;
    }
    return 0;
}

/* File number f: OUTDIR/PREFIXnnnn.tsv.gz and its summary line on stdout. */
static int gen_file(const struct gen_opts *g, long f, struct gen_run *run)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s%04ld.tsv.gz", g->dir, g->prefix, f);
    unsigned long long raw = 0;
    if (write_lines(g, f, path, run, &raw))
        return 1;
    struct stat st;
    stat(path, &st);
    printf("%s lines=%ld bytes_gz=%lld bytes_raw=%llu\n", path, g->lines, (long long)st.st_size,
           raw);
    return 0;
}

int main(int argc, char **argv)
{
    struct gen_opts g;
    int rc = parse_args(argc, argv, &g);
    if (rc)
        return rc;
    mkdir(g.dir, 0755);
    struct gen_run run = {.ex = g.expect ? fopen(g.expect, "w") : NULL};
    if (g.expect && !run.ex) {
        perror(g.expect);
        return 1;
    }
    run.ids = malloc(sizeof(*run.ids) * 4096);
    run.id_type = malloc(sizeof(int) * 4096);
    for (long f = 0; f < g.files; f++)
        if (gen_file(&g, f, &run))
            return 1;
    free(run.ids);
    free(run.id_type);
    if (run.ex && fclose(run.ex) != 0) {
        perror(g.expect);
        return 1;
    }
    return 0;
}

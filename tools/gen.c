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

int main(int argc, char **argv)
{
    long lines = 1000, files = 1, level = 6;
    uint64_t seed = 1;
    double err_frac = 0, dup_frac = 0;
    long sample = 1, valid = 0; /* --expect lists every sample-th valid record */
    const char *prefix = "appsinstalled-", *eol = "\n", *expect = NULL;
    const char *types[4];
    int ntypes = 0;
    char typebuf[64] = "idfa,gaid,adid,dvid";
    static const struct option opts[] = {
        {"crlf", no_argument, 0, 'C'},         {"cr", no_argument, 0, 'R'},
        {"dup", required_argument, 0, 'd'},    {"expect", required_argument, 0, 'x'},
        {"sample", required_argument, 0, 'S'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:f:s:e:z:p:t:", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            lines = atol(optarg);
            break;
        case 'f':
            files = atol(optarg);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'e':
            err_frac = atof(optarg);
            break;
        case 'z':
            level = atol(optarg);
            break;
        case 'p':
            prefix = optarg;
            break;
        case 't':
            snprintf(typebuf, sizeof(typebuf), "%s", optarg);
            break;
        case 'C':
            eol = "\r\n";
            break;
        case 'R':
            eol = "\r";
            break;
        case 'd':
            dup_frac = atof(optarg);
            break;
        case 'x':
            expect = optarg;
            break;
        case 'S':
            sample = atol(optarg);
            break;
        default:
            usage();
            return 64;
        }
    }
    if (optind != argc - 1 || lines < 0 || files < 1 || level < 0 || level > 9 || sample < 1) {
        usage();
        return 64;
    }
    for (char *save = NULL, *tok = strtok_r(typebuf, ",", &save); tok && ntypes < 4;
         tok = strtok_r(NULL, ",", &save))
        for (int i = 0; i < 4; i++)
            if (strcmp(tok, all_types[i]) == 0)
                types[ntypes++] = all_types[i];
    if (!ntypes) {
        usage();
        return 64;
    }
    const char *dir = argv[optind];
    mkdir(dir, 0755);
    FILE *ex = expect ? fopen(expect, "w") : NULL;
    if (expect && !ex) {
        perror(expect);
        return 1;
    }
    /* dev_ids of earlier valid lines, per file, for --dup */
    char(*ids)[33] = malloc(sizeof(*ids) * 4096);
    int *id_type = malloc(sizeof(int) * 4096);
    char line[4096], hex[2048];
    for (long f = 0; f < files; f++) {
        struct rng r;
        rng_seed(&r, seed * 1000003u + (uint64_t)f);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s%04ld.tsv.gz", dir, prefix, f);
        char mode[8];
        snprintf(mode, sizeof(mode), "wb%ld", level);
        gzFile g = gzopen(path, mode);
        if (!g) {
            perror(path);
            return 1;
        }
        gzbuffer(g, 1 << 17);
        long nids = 0;
        unsigned long long raw = 0;
        for (long i = 0; i < lines; i++) {
            int t = (int)rng_below(&r, (uint32_t)ntypes);
            char id[33];
            if (dup_frac > 0 && nids > 0 && rng_unit(&r) < dup_frac) {
                long k = (long)rng_below(&r, (uint32_t)(nids < 4096 ? nids : 4096));
                memcpy(id, ids[k], 33);
                t = id_type[k];
            } else {
                for (int k = 0; k < 32; k++)
                    id[k] = "0123456789abcdef"[rng_below(&r, 16)];
                id[32] = 0;
            }
            double lat = rng_unit(&r) * 180 - 90, lon = rng_unit(&r) * 360 - 180;
            uint32_t apps[100];
            int napps = 1 + (int)rng_below(&r, 100);
            for (int k = 0; k < napps; k++)
                apps[k] = rng_below(&r, 10000);
            char lat_s[32], lon_s[32];
            snprintf(lat_s, sizeof(lat_s), "%.12g", lat);
            snprintf(lon_s, sizeof(lon_s), "%.12g", lon);
            int bad = err_frac > 0 && rng_unit(&r) < err_frac ? 1 + (int)rng_below(&r, 5) : 0;
            int off = 0;
            const char *type = bad == 4 ? "xxxx" : types[t];
            off += snprintf(line + off, sizeof(line) - (size_t)off, "%s\t%s\t%s\t%s", type,
                            bad == 5 ? "" : id, bad == 3 ? "abc" : lat_s, lon_s);
            if (bad != 1) {
                line[off++] = '\t';
                for (int k = 0; k < napps; k++)
                    off += snprintf(line + off, sizeof(line) - (size_t)off, "%s%u", k ? "," : "",
                                    apps[k]);
            }
            if (bad == 2)
                off += snprintf(line + off, sizeof(line) - (size_t)off, "\textra");
            off += snprintf(line + off, sizeof(line) - (size_t)off, "%s", eol);
            if (gzwrite(g, line, (unsigned)off) != off) {
                fprintf(stderr, "%s: write error\n", path);
                return 1;
            }
            raw += (unsigned long long)off;
            if (bad)
                continue;
            if (nids < 4096) {
                memcpy(ids[nids], id, 33);
                id_type[nids++] = t;
            }
            if (ex && valid++ % sample == 0)
                fprintf(ex, "%s:%s\t%s\n", types[t], id,
                        hex_value(apps, napps, strtod(lat_s, NULL), strtod(lon_s, NULL), hex));
        }
        if (gzclose(g) != Z_OK) {
            fprintf(stderr, "%s: close error\n", path);
            return 1;
        }
        struct stat st;
        stat(path, &st);
        printf("%s lines=%ld bytes_gz=%lld bytes_raw=%llu\n", path, lines, (long long)st.st_size,
               raw);
    }
    free(ids);
    free(id_type);
    if (ex && fclose(ex) != 0) {
        perror(expect);
        return 1;
    }
    return 0;
}

/*
 * retain_dir.c — a retention sweep of the spool directory (see retain.h).
 *
 * Everything goes through the spool's directory fd: the listing (a fresh
 * fd from openat(dirfd, ".")), fstatat(AT_SYMLINK_NOFOLLOW) for mtime and
 * size, unlinkat() for the removal, so a spool directory that was moved
 * or replaced is never swept by path.  Only regular files whose name,
 * without the dot and ".failed", matches the spool's glob are considered:
 * a producer's own dot files (temporary names before its rename) and
 * anything else an operator keeps there are not ours.  The master is the
 * only one that renames into dot names, and it does not rename while a
 * sweep runs (one thread), so what was listed is what is unlinked.
 */
#include "retain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"

#define RETAIN_FAILED_SUFFIX ".failed"

struct retain_list {
    struct retain_file *v;
    size_t n, cap;
};

/* ".NAME" or ".NAME.failed" with NAME matching glob: its kind and NAME
 * (bare, len bytes at most), or -1. */
static int retain_kind_of(const char *d, const char *glob, char *bare, size_t len)
{
    size_t l = strlen(d), sl = strlen(RETAIN_FAILED_SUFFIX);
    if (d[0] != '.' || d[1] == '.' || d[1] == 0 || l > len)
        return -1;
    snprintf(bare, len, "%s", d + 1);
    if (l > sl + 1 && strcmp(d + l - sl, RETAIN_FAILED_SUFFIX) == 0) {
        bare[l - 1 - sl] = 0;
        if (fnmatch(glob, bare, FNM_PERIOD) == 0)
            return RETAIN_FAILED;
        snprintf(bare, len, "%s", d + 1);
    }
    return fnmatch(glob, bare, FNM_PERIOD) == 0 ? RETAIN_LOADED : -1;
}

static int retain_push(struct retain_list *l, const char *name, const struct stat *st, int kind,
                       int in_use)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        struct retain_file *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    struct retain_file *f = &l->v[l->n];
    memset(f, 0, sizeof(*f));
    if (!(f->name = strdup(name)))
        return -ENOMEM;
    f->mtime_s = (int64_t)st->st_mtim.tv_sec;
    f->size = (uint64_t)st->st_size;
    f->kind = (enum retain_kind)kind;
    f->in_use = in_use;
    l->n++;
    return 0;
}

static void retain_list_free(struct retain_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)l->v[i].name);
    free(l->v);
}

/* The dot files of the spool, with their state. */
static int retain_list(int dirfd, const char *glob, retain_in_use_fn in_use, void *ctx,
                       struct retain_list *l)
{
    DIR *d = spool_opendir(dirfd);
    if (!d)
        return -errno;
    struct dirent *de;
    char bare[NAME_MAX + 1];
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        struct stat st;
        int kind = retain_kind_of(de->d_name, glob, bare, sizeof(bare));
        if (kind < 0 || fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        rc = retain_push(l, de->d_name, &st, kind, in_use(ctx, bare, (enum retain_kind)kind));
    }
    closedir(d);
    return rc;
}

/* Unlink one chosen file; the sums say what became of it. */
static void retain_unlink(int dirfd, const struct retain_file *f, struct retain_sum *sum,
                          int *warned)
{
    if (unlinkat(dirfd, f->name, 0) == 0) {
        *warned = 0;
        return;
    }
    int e = errno, k = f->kind;
    sum->removed_files[k]--;
    sum->removed_bytes[k] -= f->size;
    sum->over_cap -= (uint64_t)f->over_cap;
    if (e == ENOENT)
        return; /* gone already: neither removed nor retained */
    sum->kept_files[k]++;
    sum->kept_bytes[k] += f->size;
    if (!*warned) {
        char esc[LOG_NAME_LEN];
        log_printf(LOG_WARNING,
                   "spool retention: cannot remove %s: %s (said once; tried again every minute)",
                   log_name(f->name, esc, sizeof(esc)), strerror(e));
        *warned = 1;
    }
}

int retain_sweep(int dirfd, const char *glob, const struct retain_policy *p, int64_t now_s,
                 retain_in_use_fn in_use, void *ctx, struct retain_sum *sum, int *warned)
{
    struct retain_list l = {0};
    memset(sum, 0, sizeof(*sum));
    int rc = retain_list(dirfd, glob, in_use, ctx, &l);
    if (rc == 0 && retain_decide(l.v, l.n, p, now_s, sum))
        for (size_t i = 0; i < l.n; i++) /* oldest first */
            if (l.v[i].remove)
                retain_unlink(dirfd, &l.v[i], sum, warned);
    retain_list_free(&l);
    return rc;
}

/* "1.5 GiB", "12.0 MiB", "800 bytes". */
static const char *retain_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = -1;
    while (v >= 1024 && u < 3)
        v /= 1024, u++;
    if (u < 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)b);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

void retain_report(const struct retain_sum *s, const struct retain_policy *p)
{
    uint64_t files = s->removed_files[RETAIN_LOADED] + s->removed_files[RETAIN_FAILED];
    uint64_t bytes = s->removed_bytes[RETAIN_LOADED] + s->removed_bytes[RETAIN_FAILED];
    uint64_t kept = s->kept_files[RETAIN_LOADED] + s->kept_files[RETAIN_FAILED];
    uint64_t kept_bytes = s->kept_bytes[RETAIN_LOADED] + s->kept_bytes[RETAIN_FAILED];
    if (!files)
        return;
    char freed[32], left[32];
    struct log_fields lf = LOG_FIELDS_INIT(LOG_INFO);
    log_field(&lf, "MEMC_REMOVED_FILES=%llu", (unsigned long long)files);
    log_field(&lf, "MEMC_REMOVED_LOADED=%llu", (unsigned long long)s->removed_files[RETAIN_LOADED]);
    log_field(&lf, "MEMC_REMOVED_FAILED=%llu", (unsigned long long)s->removed_files[RETAIN_FAILED]);
    log_field(&lf, "MEMC_REMOVED_BYTES=%llu", (unsigned long long)bytes);
    log_field(&lf, "MEMC_REMOVED_OVER_CAP=%llu", (unsigned long long)s->over_cap);
    log_field(&lf, "MEMC_RETAINED_FILES=%llu", (unsigned long long)kept);
    log_field(&lf, "MEMC_RETAINED_BYTES=%llu", (unsigned long long)kept_bytes);
    log_field(&lf, "MEMC_RETAIN_S=%lld", (long long)p->age_s[RETAIN_LOADED]);
    log_field(&lf, "MEMC_RETAIN_FAILED_S=%lld", (long long)p->age_s[RETAIN_FAILED]);
    log_field(&lf, "MEMC_RETAIN_BYTES=%llu", (unsigned long long)p->max_bytes);
    log_struct(LOG_INFO, LOG_MSGID_RETAIN_SWEEP, &lf,
               "spool retention: removed %llu files (%llu loaded, %llu failed; %llu over "
               "retain_bytes), %s freed; %llu files (%s) retained",
               (unsigned long long)files, (unsigned long long)s->removed_files[RETAIN_LOADED],
               (unsigned long long)s->removed_files[RETAIN_FAILED], (unsigned long long)s->over_cap,
               retain_bytes(bytes, freed, sizeof(freed)), (unsigned long long)kept,
               retain_bytes(kept_bytes, left, sizeof(left)));
}

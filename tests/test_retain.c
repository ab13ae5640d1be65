/*
 * test_retain.c — spool retention (src/master/retain.c, retain_dir.c)
 * without a process: retain_decide() with a made-up clock (ages per kind,
 * the boundary, retain = 0, files in use, the retain_bytes cap taking the
 * oldest first across kinds, the order, an mtime in the future, the sums),
 * then retain_sweep() on a temporary directory (which names are ours, what
 * is unlinked, a file already gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "retain.h"

#define DAY 86400
#define NOW 1700000000 /* the made-up clock */

static struct retain_file file(const char *name, int64_t age_s, uint64_t size,
                               enum retain_kind kind)
{
    return (struct retain_file){
        .name = name, .mtime_s = NOW - age_s, .size = size, .kind = kind, .remove = 7};
}

static struct retain_policy policy(int64_t age, int64_t failed_age, uint64_t max_bytes)
{
    return (struct retain_policy){.age_s = {age, failed_age}, .max_bytes = max_bytes};
}

static int removed(const struct retain_file *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return v[i].remove;
    fail_msg("%s is not in the list", name);
    return -1;
}

/* Each kind has its own age; exactly the limit stays, a second more goes. */
static void test_ages(void **state)
{
    (void)state;
    struct retain_file v[] = {
        file(".new", DAY, 10, RETAIN_LOADED),
        file(".old", 8 * DAY, 20, RETAIN_LOADED),
        file(".edge", 7 * DAY, 30, RETAIN_LOADED),
        file(".edge1", 7 * DAY + 1, 40, RETAIN_LOADED),
        file(".bad-new.failed", 8 * DAY, 50, RETAIN_FAILED),
        file(".bad-old.failed", 31 * DAY, 60, RETAIN_FAILED),
    };
    struct retain_policy p = policy(7 * DAY, 30 * DAY, 0);
    struct retain_sum s;
    assert_int_equal(retain_decide(v, 6, &p, NOW, &s), 3);
    assert_false(removed(v, 6, ".new"));
    assert_true(removed(v, 6, ".old"));
    assert_false(removed(v, 6, ".edge"));
    assert_true(removed(v, 6, ".edge1"));
    assert_false(removed(v, 6, ".bad-new.failed")); /* 8 days: young for a failed file */
    assert_true(removed(v, 6, ".bad-old.failed"));
    assert_int_equal(s.removed_files[RETAIN_LOADED], 2);
    assert_int_equal(s.removed_bytes[RETAIN_LOADED], 60);
    assert_int_equal(s.removed_files[RETAIN_FAILED], 1);
    assert_int_equal(s.removed_bytes[RETAIN_FAILED], 60);
    assert_int_equal(s.kept_files[RETAIN_LOADED], 2);
    assert_int_equal(s.kept_bytes[RETAIN_LOADED], 40);
    assert_int_equal(s.kept_files[RETAIN_FAILED], 1);
    assert_int_equal(s.kept_bytes[RETAIN_FAILED], 50);
    assert_int_equal(s.over_cap, 0);
}

/* retain = 0 and retain_failed = 0 with no cap: everything stays. */
static void test_zero_keeps_everything(void **state)
{
    (void)state;
    struct retain_file v[] = {
        file(".a", 3650 * DAY, 1, RETAIN_LOADED),
        file(".b.failed", 3650 * DAY, 1, RETAIN_FAILED),
    };
    struct retain_policy p = policy(0, 0, 0);
    struct retain_sum s;
    assert_int_equal(retain_decide(v, 2, &p, NOW, &s), 0);
    assert_false(v[0].remove);
    assert_false(v[1].remove);
    assert_int_equal(s.kept_files[RETAIN_LOADED] + s.kept_files[RETAIN_FAILED], 2);
    assert_int_equal(retain_decide(NULL, 0, &p, NOW, &s), 0);
    assert_int_equal(s.kept_files[RETAIN_LOADED], 0);
}

/* A file in use (queued again, in a running re-warm's plan) is never
 * removed, however old; it counts towards the cap, so older free files go. */
static void test_in_use(void **state)
{
    (void)state;
    struct retain_file v[] = {
        file(".planned", 30 * DAY, 100, RETAIN_LOADED),
        file(".older", 40 * DAY, 100, RETAIN_LOADED),
        file(".young", 0, 100, RETAIN_LOADED),
    };
    v[0].in_use = 1;
    struct retain_policy p = policy(7 * DAY, 7 * DAY, 0);
    assert_int_equal(retain_decide(v, 3, &p, NOW, NULL), 1);
    assert_false(removed(v, 3, ".planned"));
    assert_true(removed(v, 3, ".older"));
    /* the cap: 200 bytes for 300 retained, the in-use one cannot go */
    struct retain_file w[] = {
        file(".planned", 30 * DAY, 100, RETAIN_LOADED),
        file(".mid", 20 * DAY, 100, RETAIN_LOADED),
        file(".young", 0, 100, RETAIN_LOADED),
    };
    w[0].in_use = 1;
    p = policy(0, 0, 200);
    struct retain_sum s;
    assert_int_equal(retain_decide(w, 3, &p, NOW, &s), 1);
    assert_false(removed(w, 3, ".planned"));
    assert_true(removed(w, 3, ".mid"));
    assert_false(removed(w, 3, ".young"));
    assert_int_equal(s.over_cap, 1);
    assert_int_equal(s.kept_bytes[RETAIN_LOADED], 200);
    /* everything in use: nothing goes, even over the cap */
    w[1].in_use = w[2].in_use = 1;
    assert_int_equal(retain_decide(w, 3, &p, NOW, &s), 0);
    assert_int_equal(s.kept_bytes[RETAIN_LOADED], 300);
}

/* retain_bytes: after the ages, the oldest go first, whatever the kind,
 * until the rest fits; the list comes back oldest first. */
static void test_cap_oldest_first(void **state)
{
    (void)state;
    struct retain_file v[] = {
        file(".d", 1 * DAY, 400, RETAIN_LOADED),       file(".c", 2 * DAY, 300, RETAIN_LOADED),
        file(".x.failed", 3 * DAY, 50, RETAIN_FAILED), file(".b", 4 * DAY, 200, RETAIN_LOADED),
        file(".a", 9 * DAY, 100, RETAIN_LOADED),       file(".b2", 4 * DAY, 10, RETAIN_LOADED),
    };
    struct retain_policy p = policy(7 * DAY, 0, 710);
    struct retain_sum s;
    /* .a by age (960 left), then for the cap .b (4 d, 200) and .b2 (4 d,
     * 10: the same mtime, name order): 750, still over 710, so the failed
     * file (3 d) goes too: 700 left */
    assert_int_equal(retain_decide(v, 6, &p, NOW, &s), 4);
    const char *order[] = {".a", ".b", ".b2", ".x.failed", ".c", ".d"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(v[i].name, order[i]);
    assert_true(v[0].remove && !v[0].over_cap);
    assert_true(v[1].remove && v[1].over_cap);
    assert_true(v[2].remove && v[2].over_cap);
    assert_true(v[3].remove && v[3].over_cap);
    assert_false(v[4].remove);
    assert_false(v[5].remove);
    assert_int_equal(s.over_cap, 3);
    assert_int_equal(s.kept_bytes[RETAIN_LOADED], 700);
    assert_int_equal(s.removed_files[RETAIN_FAILED], 1);
    /* exactly at the cap: nothing more goes */
    struct retain_file w[] = {file(".e", DAY, 300, RETAIN_LOADED),
                              file(".f", 2 * DAY, 400, RETAIN_LOADED)};
    p = policy(0, 0, 700);
    assert_int_equal(retain_decide(w, 2, &p, NOW, NULL), 0);
}

/* An mtime in the future (a producer's clock ahead) is age 0: it stays. */
static void test_future_mtime(void **state)
{
    (void)state;
    struct retain_file v[] = {file(".ahead", -DAY, 1, RETAIN_LOADED)};
    struct retain_policy p = policy(1, 1, 0);
    assert_int_equal(retain_decide(v, 1, &p, NOW, NULL), 0);
}

/* ---- the sweep on a real directory --------------------------------------- */

static void make(int dirfd, const char *name, size_t size, int64_t age_s)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    char buf[64] = {0};
    for (size_t left = size; left;) {
        size_t k = left < sizeof(buf) ? left : sizeof(buf);
        assert_int_equal(write(fd, buf, k), (ssize_t)k);
        left -= k;
    }
    struct timespec ts[2] = {{.tv_sec = NOW - age_s}, {.tv_sec = NOW - age_s}};
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static int exists(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int in_use_queued(void *ctx, const char *name, enum retain_kind kind)
{
    (void)kind;
    return strcmp(name, ctx) == 0;
}

/* Only ".NAME" and ".NAME.failed" regular files with NAME matching the
 * glob are ours; a symlink, a producer's dot temporary and names of other
 * shapes stay whatever their age. */
static void test_sweep_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/memc-retain-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dirfd >= 0);
    make(dirfd, ".a.tsv.gz", 100, 10 * DAY);       /* old: goes */
    make(dirfd, ".b.tsv.gz", 100, 10 * DAY);       /* old, but b.tsv.gz queued again */
    make(dirfd, ".c.tsv.gz", 100, DAY);            /* young */
    make(dirfd, ".d.tsv.gz.failed", 50, 10 * DAY); /* old failed: goes */
    make(dirfd, ".e.tsv.gz.failed", 50, DAY);      /* young failed */
    make(dirfd, "f.tsv.gz", 100, 10 * DAY);        /* not finished: not ours */
    make(dirfd, ".g.tsv.gz.tmp", 100, 10 * DAY);   /* a producer's temporary */
    make(dirfd, ".notes", 100, 10 * DAY);          /* the operator's */
    assert_int_equal(symlinkat(".c.tsv.gz", dirfd, ".h.tsv.gz"), 0);
    struct retain_policy p = policy(7 * DAY, 7 * DAY, 0);
    struct retain_sum s;
    int warned = 0;
    assert_int_equal(
        retain_sweep(dirfd, "*.tsv.gz", &p, NOW, in_use_queued, "b.tsv.gz", &s, &warned), 0);
    assert_false(exists(dirfd, ".a.tsv.gz"));
    assert_true(exists(dirfd, ".b.tsv.gz"));
    assert_true(exists(dirfd, ".c.tsv.gz"));
    assert_false(exists(dirfd, ".d.tsv.gz.failed"));
    assert_true(exists(dirfd, ".e.tsv.gz.failed"));
    assert_true(exists(dirfd, "f.tsv.gz"));
    assert_true(exists(dirfd, ".g.tsv.gz.tmp"));
    assert_true(exists(dirfd, ".notes"));
    assert_true(exists(dirfd, ".h.tsv.gz"));
    assert_int_equal(s.removed_files[RETAIN_LOADED], 1);
    assert_int_equal(s.removed_bytes[RETAIN_LOADED], 100);
    assert_int_equal(s.removed_files[RETAIN_FAILED], 1);
    assert_int_equal(s.removed_bytes[RETAIN_FAILED], 50);
    assert_int_equal(s.kept_files[RETAIN_LOADED], 2); /* .b (in use), .c */
    assert_int_equal(s.kept_bytes[RETAIN_LOADED], 200);
    assert_int_equal(s.kept_files[RETAIN_FAILED], 1);
    assert_int_equal(warned, 0);
    /* the same sweep again: nothing left to remove */
    assert_int_equal(retain_sweep(dirfd, "*.tsv.gz", &p, NOW, in_use_queued, "", &s, &warned), 0);
    assert_false(exists(dirfd, ".b.tsv.gz")); /* no longer in use */
    assert_int_equal(s.removed_files[RETAIN_LOADED], 1);
    assert_int_equal(s.kept_files[RETAIN_LOADED], 1);
    const char *left[] = {".c.tsv.gz",     ".e.tsv.gz.failed", "f.tsv.gz",
                          ".g.tsv.gz.tmp", ".notes",           ".h.tsv.gz"};
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        assert_int_equal(unlinkat(dirfd, left[i], 0), 0);
    close(dirfd);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ages),         cmocka_unit_test(test_zero_keeps_everything),
        cmocka_unit_test(test_in_use),       cmocka_unit_test(test_cap_oldest_first),
        cmocka_unit_test(test_future_mtime), cmocka_unit_test(test_sweep_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

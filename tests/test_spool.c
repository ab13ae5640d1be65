/*
 * test_spool.c — the spool's state machine without fork or epoll: a real
 * temporary directory, a made-up clock.  Renames in name order with loads
 * finishing out of order, retry and settle timers, a rename that fails and
 * then succeeds, skipped files, worker deaths, and the treap under it
 * checked against a sorted array at 100 000 names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "spool.h"

#define SETTLE 2000 /* settle_ms */

struct fx {
    char dir[64];
    int dirfd;
    struct spool s;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    snprintf(x->dir, sizeof(x->dir), "/tmp/memc-spool-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->dirfd = open(x->dir, O_RDONLY | O_DIRECTORY);
    assert_true(x->dirfd >= 0);
    spool_init(&x->s, x->dirfd, x->dir, SETTLE);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    spool_free(&x->s);
    close(x->dirfd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
    assert_int_equal(system(cmd), 0);
    free(x);
    return 0;
}

/* Renamed in by a producer: ready at once. */
static void add(struct fx *x, const char *name)
{
    spool_add(&x->s, name, WATCH_MOVED_IN, 0, 0);
}

static void put(struct fx *x, const char *name, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", x->dir, name);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(struct fx *x, const char *name)
{
    struct stat st;
    return fstatat(x->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Drop a file and hand it out as the next one, as the master does. */
static struct spool_file *dispatch(struct fx *x, int64_t now)
{
    struct spool_file *f;
    int fd = -1;
    spool_tick(&x->s, now);
    while ((f = spool_next(&x->s)) && (fd = spool_open(&x->s, f, now)) < 0)
        ; /* vanished, skipped or set aside: the next one */
    if (!f)
        return NULL;
    close(fd);
    spool_loading(&x->s, f, now);
    return f;
}

static void test_renames_in_name_order(void **state)
{
    struct fx *x = *state;
    const char *names[] = {"c.tsv.gz", "a.tsv.gz", "b.tsv.gz"};
    for (int i = 0; i < 3; i++) {
        put(x, names[i], "x");
        add(x, names[i]);
    }
    struct spool_file *a = dispatch(x, 0), *b = dispatch(x, 0), *c = dispatch(x, 0);
    assert_string_equal(a->name, "a.tsv.gz");
    assert_string_equal(b->name, "b.tsv.gz");
    assert_string_equal(c->name, "c.tsv.gz");
    assert_null(dispatch(x, 0));
    assert_int_equal(x->s.count[SPOOL_LOADING], 3);

    spool_set_state(&x->s, c, SPOOL_DONE); /* last name finishes first */
    spool_renames(&x->s, 0);
    assert_true(exists(x, "c.tsv.gz") && !exists(x, ".c.tsv.gz"));
    spool_set_state(&x->s, b, SPOOL_BAD);
    spool_renames(&x->s, 0);
    assert_true(exists(x, "b.tsv.gz"));
    spool_set_state(&x->s, a, SPOOL_DONE);
    spool_renames(&x->s, 0); /* now all three, in order */
    assert_true(exists(x, ".a.tsv.gz") && exists(x, ".b.tsv.gz.failed") && exists(x, ".c.tsv.gz"));
    assert_null(spool_find(&x->s, "a.tsv.gz"));
    assert_int_equal(x->s.names.count, 0);
    assert_int_equal(x->s.set_aside, 1);
}

static void test_retry_timer(void **state)
{
    struct fx *x = *state;
    put(x, "r.tsv.gz", "x");
    add(x, "r.tsv.gz");
    struct spool_file *f = dispatch(x, 1000);
    spool_wait(&x->s, f, SPOOL_RETRY, 3000);
    assert_null(dispatch(x, 2999));
    assert_int_equal(x->s.count[SPOOL_RETRY], 1);
    assert_ptr_equal(dispatch(x, 3000), f);
    assert_int_equal(f->state, SPOOL_LOADING);
    assert_int_equal(f->started_ms, 3000);
}

static void test_settle_waits_for_a_still_file(void **state)
{
    struct fx *x = *state;
    put(x, "s.tsv.gz", "x");
    add(x, "s.tsv.gz");
    struct spool_file *f = dispatch(x, 0);
    assert_int_equal(spool_requeue_if_changed(&x->s, f, 100), 0); /* unchanged: keep result */
    add(x, "s.tsv.gz"); /* an inotify event while loading */
    assert_int_equal(f->changed, 1);
    assert_int_equal(spool_requeue_if_changed(&x->s, f, 100), 1);
    assert_int_equal(f->state, SPOOL_SETTLE);
    assert_null(dispatch(x, 100 + SETTLE - 1));
    usleep(10000);
    put(x, "s.tsv.gz", "more"); /* still being written */
    assert_null(dispatch(x, 100 + SETTLE));
    assert_int_equal(f->state, SPOOL_SETTLE);
    assert_int_equal(f->due_ms, 100 + 2 * SETTLE);
    assert_ptr_equal(dispatch(x, 100 + 2 * SETTLE), f); /* still now */
    assert_int_equal(f->st.size, 5);
}

static void test_changed_size_and_deleted(void **state)
{
    struct fx *x = *state;
    put(x, "g.tsv.gz", "x");
    put(x, "h.tsv.gz", "x");
    add(x, "g.tsv.gz");
    add(x, "h.tsv.gz");
    struct spool_file *g = dispatch(x, 0), *h = dispatch(x, 0);
    put(x, "g.tsv.gz", "grown");
    assert_int_equal(spool_requeue_if_changed(&x->s, g, 5), 1);
    assert_int_equal(g->state, SPOOL_SETTLE);
    assert_int_equal(unlinkat(x->dirfd, "h.tsv.gz", 0), 0);
    assert_int_equal(spool_requeue_if_changed(&x->s, h, 5), 1);
    assert_null(spool_find(&x->s, "h.tsv.gz"));
    assert_int_equal(x->s.names.count, 1);
}

static int fake_fails; /* how many more renames fail with EACCES */

static int fake_rename(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    if (fake_fails > 0) {
        fake_fails--;
        errno = EACCES;
        return -1;
    }
    return renameat(olddirfd, oldpath, newdirfd, newpath);
}

/* EACCES is the operator's to fix for the whole spool: later files wait,
 * the rename is retried with a growing back-off, and it resumes. */
static void test_rename_blocked_then_resumes(void **state)
{
    struct fx *x = *state;
    x->s.rename_fn = fake_rename;
    fake_fails = 3;
    put(x, "d.tsv.gz", "x");
    put(x, "e.tsv.gz", "x");
    add(x, "d.tsv.gz");
    add(x, "e.tsv.gz");
    struct spool_file *d = dispatch(x, 0), *e = dispatch(x, 0);
    spool_set_state(&x->s, d, SPOOL_DONE);
    spool_set_state(&x->s, e, SPOOL_DONE);
    spool_renames(&x->s, 0); /* fails: blocked, next try at 100 */
    assert_int_equal(x->s.renames_blocked, 1);
    assert_int_equal(fake_fails, 2);
    spool_renames(&x->s, 99); /* backing off: no try */
    assert_int_equal(fake_fails, 2);
    spool_renames(&x->s, 100); /* fails, next at 300 */
    spool_renames(&x->s, 299);
    assert_int_equal(fake_fails, 1);
    assert_true(exists(x, "d.tsv.gz") && exists(x, "e.tsv.gz")); /* later files wait */
    spool_renames(&x->s, 300);                                   /* fails, next at 700 */
    assert_int_equal(fake_fails, 0);
    assert_int_equal(x->s.rename_at, 700);
    spool_renames(&x->s, 700); /* works: both renamed, in order */
    assert_int_equal(x->s.renames_blocked, 0);
    assert_true(exists(x, ".d.tsv.gz") && exists(x, ".e.tsv.gz"));
    assert_int_equal(x->s.names.count, 0);
}

/* A directory where ".d" should go: waiting cannot fix it.  d is STUCK
 * under its name, e is renamed at once; d written again is looked at again. */
static void test_rename_stuck_later_files_go_on(void **state)
{
    struct fx *x = *state;
    put(x, "d.tsv.gz", "x");
    put(x, "e.tsv.gz", "x");
    assert_int_equal(mkdirat(x->dirfd, ".d.tsv.gz", 0755), 0);
    put(x, ".d.tsv.gz/blocker", "x"); /* renaming a file over a directory: EISDIR */
    add(x, "d.tsv.gz");
    add(x, "e.tsv.gz");
    struct spool_file *d = dispatch(x, 0), *e = dispatch(x, 0);
    spool_set_state(&x->s, d, SPOOL_DONE);
    spool_set_state(&x->s, e, SPOOL_DONE);
    spool_renames(&x->s, 0);
    assert_int_equal(d->state, SPOOL_STUCK);
    assert_int_equal(x->s.stuck, 1);
    assert_int_equal(x->s.renames_blocked, 0);
    assert_true(exists(x, "d.tsv.gz") && exists(x, ".e.tsv.gz"));
    assert_null(dispatch(x, 0)); /* not loaded again by itself */
    spool_add(&x->s, "d.tsv.gz", WATCH_WRITTEN, 10, 0);
    assert_int_equal(d->state, SPOOL_SETTLE);
    assert_ptr_equal(dispatch(x, 10 + SETTLE), d);
}

static int fake_denials; /* how many more opens fail with fake_errno */
static int fake_errno = EACCES;
static int fake_open(int dirfd, const char *name, struct stat *st)
{
    if (fake_denials > 0) {
        fake_denials--;
        return -fake_errno;
    }
    return spool_open_at(dirfd, name, st);
}

static int asides, aside_err;
static void on_aside(void *ctx, struct spool_file *f, int err)
{
    (void)ctx;
    assert_int_equal(f->state, SPOOL_BAD);
    asides++;
    aside_err = err;
}

/* A file that cannot be opened for another reason (EIO: a bad disk) is
 * set aside, and the master hears of it (its result entry, files_total):
 * once, with the errno. */
static void test_unopenable_is_reported(void **state)
{
    struct fx *x = *state;
    x->s.open_fn = fake_open;
    x->s.aside_fn = on_aside;
    fake_denials = 1;
    fake_errno = EIO;
    asides = 0;
    put(x, "e.tsv.gz", "x");
    add(x, "e.tsv.gz");
    struct spool_file *f = spool_find(&x->s, "e.tsv.gz");
    assert_null(dispatch(x, 0));
    fake_errno = EACCES;
    assert_int_equal(f->state, SPOOL_BAD);
    assert_int_equal(asides, 1);
    assert_int_equal(aside_err, EIO);
    assert_int_equal(x->s.set_aside, 1);
}

/* A file the service may not read (mode 000 under User=): tried again
 * with a back-off, never set aside; loaded once it can be read. */
static void test_permission_denied_is_retried(void **state)
{
    struct fx *x = *state;
    x->s.open_fn = fake_open;
    fake_denials = 2;
    put(x, "p.tsv.gz", "x");
    add(x, "p.tsv.gz");
    struct spool_file *f = spool_find(&x->s, "p.tsv.gz");
    assert_null(dispatch(x, 0)); /* denied: waits 1 s */
    assert_int_equal(f->state, SPOOL_RETRY);
    assert_null(dispatch(x, 999));
    assert_null(dispatch(x, 1000)); /* denied again: waits 2 s */
    assert_int_equal(f->state, SPOOL_RETRY);
    assert_int_equal(f->due_ms, 3000);
    assert_ptr_equal(dispatch(x, 3000), f); /* readable now */
    assert_int_equal(x->s.set_aside, 0);
    assert_int_equal(f->denied, 0);
}

/* Rename messages escape both names, the target too (a name with control
 * bytes must not write them into the journal or a terminal). */
static void test_rename_messages_escape_names(void **state)
{
    struct fx *x = *state;
    const char *name = "e\x1b[31mvil.tsv.gz";
    put(x, name, "x");
    add(x, name);
    struct spool_file *f = dispatch(x, 0);
    spool_set_state(&x->s, f, SPOOL_DONE);
    x->s.rename_fn = fake_rename;
    fake_fails = 1;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/stderr", x->dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    spool_renames(&x->s, 0); /* "cannot rename NAME to .NAME: ...; will retry" */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    FILE *in = fopen(path, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof(text) - 1, in);
    fclose(in);
    text[n] = 0;
    assert_non_null(strstr(text, "cannot rename"));
    assert_null(strchr(text, 0x1b)); /* neither name raw */
    assert_non_null(strstr(text, " to .e"));
}

/* Written in place or hard-linked in: loaded only once the stat stays
 * still for settle_ms; renamed in: at once. */
static void test_written_and_linked_settle(void **state)
{
    struct fx *x = *state;
    put(x, "w.tsv.gz", "x");
    put(x, ".old.tsv.gz", "x");
    assert_int_equal(linkat(x->dirfd, ".old.tsv.gz", x->dirfd, "l.tsv.gz", 0), 0);
    spool_add(&x->s, "w.tsv.gz", WATCH_WRITTEN, 0, 0);
    spool_add(&x->s, "l.tsv.gz", WATCH_CREATED, 0, 0);
    assert_int_equal(x->s.count[SPOOL_SETTLE], 2);
    assert_null(dispatch(x, SETTLE - 1));
    put(x, "w.tsv.gz", "y"); /* another chunk appended before it settled */
    spool_add(&x->s, "w.tsv.gz", WATCH_WRITTEN, 500, 0);
    struct spool_file *l = dispatch(x, SETTLE);
    assert_string_equal(l->name, "l.tsv.gz");
    assert_null(dispatch(x, SETTLE + 499));
    struct spool_file *w = dispatch(x, SETTLE + 500); /* both chunks, one load */
    assert_string_equal(w->name, "w.tsv.gz");
    assert_int_equal(w->st.size, 2);
}

/* At start-up a file younger than settle_ms may still be written. */
static void test_scan_young_waits_old_goes(void **state)
{
    struct fx *x = *state;
    put(x, "old.tsv.gz", "x");
    put(x, "young.tsv.gz", "x");
    struct timespec t[2] = {{.tv_sec = 1000000}, {.tv_sec = 1000000}};
    assert_int_equal(utimensat(x->dirfd, "old.tsv.gz", t, 0), 0);
    struct stat st;
    assert_int_equal(fstatat(x->dirfd, "young.tsv.gz", &st, 0), 0);
    int64_t wall = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 +
                   500; /* half a second later */
    spool_add(&x->s, "old.tsv.gz", WATCH_SCANNED, 0, wall);
    spool_add(&x->s, "young.tsv.gz", WATCH_SCANNED, 0, wall);
    assert_int_equal(spool_find(&x->s, "old.tsv.gz")->state, SPOOL_QUEUED);
    assert_int_equal(spool_find(&x->s, "young.tsv.gz")->state, SPOOL_SETTLE);
    spool_add(&x->s, "young.tsv.gz", WATCH_SCANNED, 10, wall); /* a rescan: no change */
    assert_int_equal(spool_find(&x->s, "young.tsv.gz")->due_ms, SETTLE - 500);
}

/* Young files found by the start-up scan (in readdir's order, here b before
 * a) settle until their own mtime is settle_ms old: the older one is ready
 * first, so a single worker loads them in the order they were written, and
 * two written together load in name order.  (Settling from the moment each
 * was found let b, found 1 ms earlier, load first: seen in CI as "the
 * earlier file's values won".) */
static void test_scan_young_settle_by_mtime(void **state)
{
    struct fx *x = *state;
    put(x, "a.tsv.gz", "x");
    put(x, "b.tsv.gz", "x");
    struct stat st;
    assert_int_equal(fstatat(x->dirfd, "b.tsv.gz", &st, 0), 0);
    struct timespec ta[2] = {st.st_mtim, st.st_mtim}; /* a: written 100 ms before b */
    for (int i = 0; i < 2; i++) {
        ta[i].tv_nsec -= 100 * 1000000;
        if (ta[i].tv_nsec < 0)
            ta[i].tv_nsec += 1000000000, ta[i].tv_sec--;
    }
    assert_int_equal(utimensat(x->dirfd, "a.tsv.gz", ta, 0), 0);
    int64_t wall = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 + 500;
    spool_add(&x->s, "b.tsv.gz", WATCH_SCANNED, 0, wall);
    spool_add(&x->s, "a.tsv.gz", WATCH_SCANNED, 1, wall + 1);
    assert_int_equal(spool_find(&x->s, "a.tsv.gz")->state, SPOOL_SETTLE);
    assert_int_equal(spool_find(&x->s, "b.tsv.gz")->state, SPOOL_SETTLE);
    int64_t due_b = spool_find(&x->s, "b.tsv.gz")->due_ms;
    assert_int_equal(due_b, SETTLE - 500); /* still for 500 ms already */
    assert_true(spool_find(&x->s, "a.tsv.gz")->due_ms <= due_b);
    struct spool_file *f = dispatch(x, due_b);
    assert_non_null(f);
    assert_string_equal(f->name, "a.tsv.gz");
}

/* ".NAME.failed" must fit in 255 bytes: a longer name is never loaded, and
 * does not hold back the renames of later names. */
static void test_long_name_refused(void **state)
{
    struct fx *x = *state;
    char name[NAME_MAX + 1];
    memset(name, 'a', SPOOL_NAME_MAX + 1 - 7);
    strcpy(name + SPOOL_NAME_MAX + 1 - 7, ".tsv.gz");
    assert_int_equal(strlen(name), SPOOL_NAME_MAX + 1);
    put(x, name, "x");
    put(x, "b.tsv.gz", "x");
    add(x, name);
    add(x, name); /* seen again: still refused, said once */
    add(x, "b.tsv.gz");
    assert_int_equal(spool_find(&x->s, name)->state, SPOOL_REFUSED);
    struct spool_file *b = dispatch(x, 0);
    assert_string_equal(b->name, "b.tsv.gz");
    assert_null(dispatch(x, 0));
    spool_set_state(&x->s, b, SPOOL_DONE);
    spool_renames(&x->s, 0);
    assert_true(exists(x, ".b.tsv.gz") && exists(x, name));
    name[SPOOL_NAME_MAX] = 0; /* the longest name allowed is fine */
    memcpy(name + SPOOL_NAME_MAX - 7, ".tsv.gz", 7);
    add(x, name);
    assert_int_equal(spool_find(&x->s, name)->state, SPOOL_QUEUED);
}

/* Data that ends short is held to settle; short again with the same stat:
 * truly truncated.  Grown in between: another chance. */
static void test_truncated_held_then_final(void **state)
{
    struct fx *x = *state;
    put(x, "t.tsv.gz", "x");
    add(x, "t.tsv.gz");
    struct spool_file *f = dispatch(x, 0);
    assert_int_equal(spool_hold_truncated(&x->s, f, 0), 1);
    assert_int_equal(f->state, SPOOL_SETTLE);
    assert_null(dispatch(x, SETTLE - 1));
    assert_ptr_equal(dispatch(x, SETTLE), f);
    usleep(10000);
    put(x, "t.tsv.gz", "more"); /* the producer wrote more meanwhile */
    int fd = spool_open(&x->s, f, 0);
    close(fd);
    assert_int_equal(spool_hold_truncated(&x->s, f, SETTLE), 1);
    assert_ptr_equal(dispatch(x, 2 * SETTLE), f);
    assert_int_equal(spool_hold_truncated(&x->s, f, 2 * SETTLE), 0); /* still: final */
}

static void test_skipped_and_kept_do_not_hold_renames(void **state)
{
    struct fx *x = *state;
    assert_int_equal(symlinkat("/etc/passwd", x->dirfd, "a.tsv.gz"), 0);
    assert_int_equal(mkfifoat(x->dirfd, "b.tsv.gz", 0600), 0);
    put(x, "c.tsv.gz", "x");
    put(x, "d.tsv.gz", "x");
    const char *names[] = {"a.tsv.gz", "b.tsv.gz", "c.tsv.gz", "d.tsv.gz"};
    for (int i = 0; i < 4; i++)
        add(x, names[i]);
    struct spool_file *c = dispatch(x, 0), *d = dispatch(x, 0);
    assert_string_equal(c->name, "c.tsv.gz"); /* the symlink and the FIFO were skipped */
    assert_int_equal(spool_find(&x->s, "a.tsv.gz")->state, SPOOL_SKIP);
    assert_int_equal(spool_find(&x->s, "b.tsv.gz")->state, SPOOL_SKIP);
    spool_set_state(&x->s, c, SPOOL_KEPT);
    spool_set_state(&x->s, d, SPOOL_DONE);
    spool_renames(&x->s, 0);
    assert_true(exists(x, "c.tsv.gz") && exists(x, ".d.tsv.gz"));
    assert_int_equal(x->s.names.count, 3); /* two skipped, one kept: remembered */
    add(x, "a.tsv.gz");                    /* written again: looked at again */
    assert_int_equal(spool_find(&x->s, "a.tsv.gz")->state, SPOOL_QUEUED);
    assert_int_equal(spool_unfinished(&x->s), 1);
}

static void test_vanished_and_worker_deaths(void **state)
{
    struct fx *x = *state;
    add(x, "gone.tsv.gz"); /* never existed */
    put(x, "p.tsv.gz", "x");
    add(x, "p.tsv.gz");
    struct spool_file *p = dispatch(x, 0);
    assert_string_equal(p->name, "p.tsv.gz");
    assert_null(spool_find(&x->s, "gone.tsv.gz"));
    assert_int_equal(spool_loader_died(&x->s, p, 1), 0); /* stopping: never set aside */
    for (int i = 1; i < SPOOL_MAX_CRASHES; i++) {
        assert_ptr_equal(dispatch(x, 0), p);
        assert_int_equal(spool_loader_died(&x->s, p, 0), i + 1 == SPOOL_MAX_CRASHES);
    }
    assert_int_equal(p->state, SPOOL_BAD);
    spool_renames(&x->s, 0);
    assert_true(exists(x, ".p.tsv.gz.failed"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 100 000 names in random order: dispatch gives them back sorted, every
 * index agrees with the counts, removal of half keeps the order. */
static void test_many_names(void **state)
{
    struct fx *x = *state;
    enum { N = 100000 };
    char **names = malloc(N * sizeof(*names));
    for (int i = 0; i < N; i++) {
        names[i] = malloc(24);
        snprintf(names[i], 24, "f-%07d.tsv.gz", (int)(((uint64_t)i * 7919) % N));
        add(x, names[i]);
        add(x, names[i]); /* a repeat changes nothing */
    }
    qsort(names, N, sizeof(*names), cmp_str);
    assert_int_equal(x->s.names.count, N);
    assert_int_equal(x->s.count[SPOOL_QUEUED], N);
    for (int i = 0; i < N; i += 2) /* every other one starts "loading" */
        spool_loading(&x->s, spool_find(&x->s, names[i]), 0);
    assert_int_equal(x->s.ready.count, N / 2);
    for (int i = 1; i < N; i += 2) {
        struct spool_file *f = spool_next(&x->s);
        assert_string_equal(f->name, names[i]);
        spool_set_state(&x->s, f, SPOOL_KEPT);
    }
    assert_null(spool_next(&x->s));
    assert_int_equal(x->s.order.count, N / 2);
    spool_forget_idle(&x->s); /* the kept ones go, the loading ones stay */
    assert_int_equal(x->s.names.count, N / 2);
    assert_int_equal(x->s.count[SPOOL_KEPT], 0);
    assert_non_null(spool_find(&x->s, names[0]));
    assert_null(spool_find(&x->s, names[1]));
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
}

struct inode {
    struct treap_node n;
    int key;
};

static int cmp_inode(const struct treap_node *a, const struct treap_node *b)
{
    int x = treap_entry(a, struct inode, n)->key, y = treap_entry(b, struct inode, n)->key;
    return (x > y) - (x < y);
}

/* The treap against a membership array: random inserts and removes, then
 * first/next must walk exactly the members in order. */
static void test_treap_random(void **state)
{
    (void)state;
    enum { K = 5000 };
    static struct inode nodes[K];
    static char in[K];
    struct treap t;
    treap_init(&t, cmp_inode);
    uint32_t r = 12345;
    for (int step = 0; step < 200000; step++) {
        r = r * 1103515245u + 12345u;
        int k = (int)((r >> 8) % K);
        nodes[k].key = k;
        if (in[k])
            treap_remove(&t, &nodes[k].n);
        else
            treap_insert(&t, &nodes[k].n);
        in[k] = !in[k];
    }
    size_t members = 0;
    struct treap_node *at = treap_first(&t);
    for (int k = 0; k < K; k++) {
        if (!in[k])
            continue;
        members++;
        assert_non_null(at);
        assert_int_equal(treap_entry(at, struct inode, n)->key, k);
        at = treap_next(&t, at);
    }
    assert_null(at);
    assert_int_equal(t.count, members);
}

int main(void)
{
    log_init(LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_renames_in_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_waits_for_a_still_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_size_and_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_blocked_then_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_stuck_later_files_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_messages_escape_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_written_and_linked_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_young_waits_old_goes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_young_settle_by_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_name_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_held_then_final, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skipped_and_kept_do_not_hold_renames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_and_worker_deaths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_names, setup, teardown),
        cmocka_unit_test(test_treap_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

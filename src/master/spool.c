/*
 * spool.c — the spool's files and their state machine (see spool.h).
 *
 * Four treaps index the same structs: `names` (all files, for lookups),
 * `order` (files still to be renamed, walked from the lowest name),
 * `ready` (QUEUED files, lowest name loads first) and `timers` (RETRY and
 * SETTLE files by due time).  A file is in `ready` or `timers` or neither,
 * so one node serves both.  spool_set_state() is the only function that
 * moves a file between them, so the indexes cannot disagree with the state.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char *const spool_state_names[SPOOL_NSTATES] = {
    [SPOOL_QUEUED] = "queued", [SPOOL_LOADING] = "loading", [SPOOL_RETRY] = "retry",
    [SPOOL_SETTLE] = "settle", [SPOOL_DONE] = "done",       [SPOOL_BAD] = "bad",
    [SPOOL_LEFT] = "left",     [SPOOL_SKIP] = "skip",       [SPOOL_KEPT] = "kept",
    [SPOOL_STUCK] = "stuck",   [SPOOL_REFUSED] = "refused",
};

const char *spool_state_name(enum spool_state st)
{
    return st < SPOOL_NSTATES ? spool_state_names[st] : "?";
}

/* ---- the four orders ----------------------------------------------------- */

static int spool_cmp_name(const struct treap_node *a, const struct treap_node *b)
{
    return strcmp(treap_entry(a, struct spool_file, by_name)->name,
                  treap_entry(b, struct spool_file, by_name)->name);
}

static int spool_cmp_order(const struct treap_node *a, const struct treap_node *b)
{
    return strcmp(treap_entry(a, struct spool_file, by_order)->name,
                  treap_entry(b, struct spool_file, by_order)->name);
}

static int spool_cmp_ready(const struct treap_node *a, const struct treap_node *b)
{
    return strcmp(treap_entry(a, struct spool_file, by_turn)->name,
                  treap_entry(b, struct spool_file, by_turn)->name);
}

static int spool_cmp_due(const struct treap_node *a, const struct treap_node *b)
{
    const struct spool_file *x = treap_entry(a, struct spool_file, by_turn);
    const struct spool_file *y = treap_entry(b, struct spool_file, by_turn);
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int spool_key_name(const void *key, const struct treap_node *n)
{
    return strcmp(key, treap_entry(n, struct spool_file, by_name)->name);
}

static void spool_stat_set(struct spool_stat *d, const struct stat *st)
{
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    d->size = st->st_size;
    d->mtime = st->st_mtim;
}

static int spool_same_stat(const struct spool_stat *a, const struct stat *b)
{
    return a->ino == b->st_ino && a->dev == b->st_dev && a->size == b->st_size &&
           a->mtime.tv_sec == b->st_mtim.tv_sec && a->mtime.tv_nsec == b->st_mtim.tv_nsec;
}

void spool_init(struct spool *s, int dirfd, const char *dir, int64_t settle_ms)
{
    memset(s, 0, sizeof(*s));
    s->dirfd = dirfd;
    s->dir = dir;
    s->settle_ms = settle_ms;
    s->rename_fn = renameat;
    s->open_fn = spool_open_at;
    treap_init(&s->names, spool_cmp_name);
    treap_init(&s->order, spool_cmp_order);
    treap_init(&s->ready, spool_cmp_ready);
    treap_init(&s->timers, spool_cmp_due);
}

/* Still to be renamed (or to finish first): holds back later names. */
static int spool_in_order(enum spool_state st)
{
    return st != SPOOL_SKIP && st != SPOOL_KEPT && st != SPOOL_STUCK && st != SPOOL_REFUSED;
}

static struct treap *spool_turn_tree(struct spool *s, enum spool_state st)
{
    if (st == SPOOL_QUEUED)
        return &s->ready;
    if (st == SPOOL_RETRY || st == SPOOL_SETTLE)
        return &s->timers;
    return NULL;
}

/* Put f into (in = 1) or take it out of (in = 0) the indexes its state
 * asks for, `names` aside. */
static void spool_index(struct spool *s, struct spool_file *f, int in)
{
    struct treap *turn = spool_turn_tree(s, f->state);
    if (in) {
        if (spool_in_order(f->state))
            treap_insert(&s->order, &f->by_order);
        if (turn)
            treap_insert(turn, &f->by_turn);
        s->count[f->state]++;
    } else {
        if (spool_in_order(f->state))
            treap_remove(&s->order, &f->by_order);
        if (turn)
            treap_remove(turn, &f->by_turn);
        s->count[f->state]--;
    }
}

void spool_set_state(struct spool *s, struct spool_file *f, enum spool_state to)
{
    if (f->state == to)
        return;
    if (log_enabled(LOG_DEBUG)) {
        char esc[LOG_NAME_LEN];
        log_printf(LOG_DEBUG, "%s: %s -> %s", log_name(f->name, esc, sizeof(esc)),
                   spool_state_name(f->state), spool_state_name(to));
    }
    spool_index(s, f, 0);
    f->state = to;
    spool_index(s, f, 1);
    if (to == SPOOL_BAD)
        s->set_aside++;
    if (to == SPOOL_STUCK)
        s->stuck++;
}

/* ---- names come and go --------------------------------------------------- */

struct spool_file *spool_find(const struct spool *s, const char *name)
{
    struct treap_node *n = treap_find(&s->names, name, spool_key_name);
    return n ? treap_entry(n, struct spool_file, by_name) : NULL;
}

static struct spool_file *spool_new(struct spool *s, const char *name, size_t len,
                                    enum spool_state st)
{
    struct spool_file *f = calloc(1, sizeof(*f) + len + 1);
    if (!f) {
        log_printf(LOG_ERR, "out of memory queueing a file; it is picked up at the next scan");
        return NULL;
    }
    memcpy(f->name, name, len + 1);
    f->state = st;
    treap_insert(&s->names, &f->by_name);
    spool_index(s, f, 1);
    return f;
}

static void spool_refuse(struct spool *s, const char *name, size_t len)
{
    if (!spool_new(s, name, len, SPOOL_REFUSED))
        return;
    char esc[LOG_NAME_LEN];
    log_printf(LOG_ERR,
               "%s: the name is %zu bytes, too long to rename it to .NAME.failed (at most %d "
               "bytes); it is never loaded: give it a shorter name",
               log_name(name, esc, sizeof(esc)), len, SPOOL_NAME_MAX);
}

/* Look at f's stat now; 0 when it is a regular file (f->st updated). */
static int spool_restat(struct spool *s, struct spool_file *f, struct stat *st)
{
    if (fstatat(s->dirfd, f->name, st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st->st_mode))
        return -1; /* gone or not a file: queued, spool_open decides and says why */
    spool_stat_set(&f->st, st);
    return 0;
}

/* Written in place, linked in or young: wait until its stat stays still. */
static void spool_settle(struct spool *s, struct spool_file *f, int64_t now)
{
    struct stat st;
    if (spool_restat(s, f, &st) < 0)
        spool_set_state(s, f, SPOOL_QUEUED);
    else
        spool_wait(s, f, SPOOL_SETTLE, now + s->settle_ms);
}

/* A name we know appeared again. */
static void spool_again(struct spool *s, struct spool_file *f, enum watch_how how, int64_t now)
{
    if (how == WATCH_SCANNED)
        return; /* a rescan tells nothing new about a name we know */
    switch (f->state) {
    case SPOOL_LOADING:
        f->changed = 1;
        return;
    case SPOOL_DONE:
    case SPOOL_SKIP:
    case SPOOL_BAD:
    case SPOOL_STUCK:
        f->changed = 0;
        f->truncated = 0;
        /* fall through */
    case SPOOL_QUEUED:
    case SPOOL_SETTLE:
        if (how == WATCH_MOVED_IN)
            spool_set_state(s, f, SPOOL_QUEUED);
        else
            spool_settle(s, f, now);
        return;
    default: /* RETRY keeps its timer; LEFT, KEPT, REFUSED stay */
        return;
    }
}

void spool_add(struct spool *s, const char *name, enum watch_how how, int64_t now, int64_t wall_ms)
{
    size_t len = strlen(name);
    if (len > NAME_MAX)
        return;
    struct spool_file *f = spool_find(s, name);
    if (f) {
        spool_again(s, f, how, now);
        return;
    }
    if (len > SPOOL_NAME_MAX) {
        spool_refuse(s, name, len);
        return;
    }
    f = spool_new(s, name, len, SPOOL_QUEUED);
    struct stat st;
    if (!f || how == WATCH_MOVED_IN || spool_restat(s, f, &st) < 0)
        return;
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    int64_t age = wall_ms - mtime_ms;
    if (how != WATCH_SCANNED)
        spool_wait(s, f, SPOOL_SETTLE, now + s->settle_ms);
    else if (age < s->settle_ms) /* still since its mtime: ready settle_ms after it, so
                                  * files written in turn are ready in turn */
        spool_wait(s, f, SPOOL_SETTLE, now + s->settle_ms - (age > 0 ? age : 0));
}

void spool_remove(struct spool *s, struct spool_file *f)
{
    spool_index(s, f, 0);
    treap_remove(&s->names, &f->by_name);
    free(f);
}

void spool_forget_idle(struct spool *s)
{
    struct treap_node *n = treap_first(&s->names), *next;
    for (; n; n = next) {
        next = treap_next(&s->names, n);
        struct spool_file *f = treap_entry(n, struct spool_file, by_name);
        if (f->state != SPOOL_LOADING)
            spool_remove(s, f);
    }
}

void spool_free(struct spool *s)
{
    struct treap_node *n;
    while ((n = treap_first(&s->names)))
        spool_remove(s, treap_entry(n, struct spool_file, by_name));
}

/* ---- timers and dispatch ------------------------------------------------- */

void spool_wait(struct spool *s, struct spool_file *f, enum spool_state st, int64_t due)
{
    int timed = f->state == SPOOL_RETRY || f->state == SPOOL_SETTLE;
    if (timed) /* re-key in place: the timer tree is ordered by due_ms */
        treap_remove(&s->timers, &f->by_turn);
    f->due_ms = due;
    if (timed)
        treap_insert(&s->timers, &f->by_turn);
    spool_set_state(s, f, st);
}

/* A settling file whose stat moved since it was last looked at: a producer
 * still writing in place keeps pushing it back. */
static int spool_still_moving(struct spool *s, struct spool_file *f)
{
    struct stat st;
    if (fstatat(s->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0 || spool_same_stat(&f->st, &st))
        return 0; /* stable, or gone: spool_open decides */
    spool_stat_set(&f->st, &st);
    return 1;
}

void spool_tick(struct spool *s, int64_t now)
{
    struct treap_node *n;
    while ((n = treap_first(&s->timers))) {
        struct spool_file *f = treap_entry(n, struct spool_file, by_turn);
        if (f->due_ms > now)
            return;
        if (f->state == SPOOL_SETTLE && spool_still_moving(s, f))
            spool_wait(s, f, SPOOL_SETTLE, now + s->settle_ms);
        else
            spool_set_state(s, f, SPOOL_QUEUED);
    }
}

size_t spool_settling(const struct spool *s, int64_t now, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (!s->count[SPOOL_SETTLE])
        return 0;
    for (struct treap_node *n = treap_first(&s->timers); n; n = treap_next(&s->timers, n)) {
        const struct spool_file *f = treap_entry(n, struct spool_file, by_turn);
        if (f->state == SPOOL_SETTLE && f->due_ms - now > *wait_ms)
            *wait_ms = f->due_ms - now;
    }
    return s->count[SPOOL_SETTLE];
}

struct spool_file *spool_next(const struct spool *s)
{
    struct treap_node *n = treap_first(&s->ready);
    return n ? treap_entry(n, struct spool_file, by_turn) : NULL;
}

static void spool_open_failed(struct spool *s, struct spool_file *f, int e, int64_t now)
{
    char esc[LOG_NAME_LEN];
    log_name(f->name, esc, sizeof(esc));
    if (e == EACCES || e == EPERM) {
        int shift = f->denied > 8 ? 8 : (int)f->denied;
        int64_t delay = 1000LL << shift;
        delay = delay > 300000 ? 300000 : delay; /* 1 s .. 5 min */
        if (!f->denied++)
            log_printf(LOG_ERR,
                       "%s cannot be read: %s; trying again (1 s, doubling to 5 min) until its "
                       "permissions let the service read it",
                       esc, strerror(e));
        spool_wait(s, f, SPOOL_RETRY, now + delay);
    } else if (e == ENOENT) {
        log_printf(LOG_INFO, "%s vanished before loading", esc);
        spool_remove(s, f);
    } else if (e == ELOOP) {
        log_printf(LOG_WARNING,
                   "%s is a symlink; symlinks in the spool are never followed, skipping it", esc);
        spool_set_state(s, f, SPOOL_SKIP);
    } else {
        spool_set_state(s, f, SPOOL_BAD);
        f->started_ms = now;
        if (s->aside_fn)
            s->aside_fn(s->aside_ctx, f, e);
        else
            log_printf(LOG_ERR, "%s cannot be opened: %s; setting it aside", esc, strerror(e));
    }
}

DIR *spool_opendir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return d;
}

int spool_open_at(int dirfd, const char *name, struct stat *st)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -EFTYPE_SPOOL;
    }
    /* O_NONBLOCK only kept open() from hanging on a FIFO; reads block. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int spool_open(struct spool *s, struct spool_file *f, int64_t now)
{
    struct stat st;
    int fd = s->open_fn(s->dirfd, f->name, &st);
    if (fd == -EFTYPE_SPOOL) {
        char esc[LOG_NAME_LEN];
        log_printf(LOG_WARNING, "%s is not a regular file, skipping it",
                   log_name(f->name, esc, sizeof(esc)));
        spool_set_state(s, f, SPOOL_SKIP);
        return -1;
    }
    if (fd < 0) {
        spool_open_failed(s, f, -fd, now);
        return -1;
    }
    if (f->denied) {
        char esc[LOG_NAME_LEN];
        log_printf(LOG_NOTICE, "%s can be read now", log_name(f->name, esc, sizeof(esc)));
    }
    f->denied = 0;
    spool_stat_set(&f->st, &st);
    return fd;
}

void spool_loading(struct spool *s, struct spool_file *f, int64_t now)
{
    spool_set_state(s, f, SPOOL_LOADING);
    f->changed = 0;
    f->started_ms = now;
}

/* ---- after a load -------------------------------------------------------- */

int spool_requeue_if_changed(struct spool *s, struct spool_file *f, int64_t now)
{
    char esc[LOG_NAME_LEN];
    struct stat st;
    log_name(f->name, esc, sizeof(esc));
    if (fstatat(s->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return 0; /* cannot tell: trust the result */
        log_printf(LOG_WARNING, "%s was deleted while loading; forgetting it", esc);
        spool_remove(s, f);
        return 1;
    }
    if (!f->changed && spool_same_stat(&f->st, &st))
        return 0;
    log_printf(LOG_WARNING,
               "%s changed while loading (replaced, truncated, grown or touched); "
               "loading it again once it is unchanged for %lld ms",
               esc, (long long)s->settle_ms);
    spool_stat_set(&f->st, &st);
    f->changed = 0;
    f->truncated = 0;
    spool_wait(s, f, SPOOL_SETTLE, now + s->settle_ms);
    return 1;
}

int spool_loader_died(struct spool *s, struct spool_file *f, int stopping)
{
    f->crashes++;
    if (!stopping && f->crashes >= SPOOL_MAX_CRASHES) {
        spool_set_state(s, f, SPOOL_BAD);
        return 1;
    }
    spool_set_state(s, f, SPOOL_QUEUED);
    return 0;
}

int spool_hold_truncated(struct spool *s, struct spool_file *f, int64_t now)
{
    int64_t mtime_ns = (int64_t)f->st.mtime.tv_sec * 1000000000 + f->st.mtime.tv_nsec;
    if (f->truncated && f->trunc_size == (int64_t)f->st.size && f->trunc_mtime_ns == mtime_ns)
        return 0; /* settled, unchanged, and short again: it is truncated */
    f->truncated = 1;
    f->trunc_size = (int64_t)f->st.size;
    f->trunc_mtime_ns = mtime_ns;
    char esc[LOG_NAME_LEN];
    log_printf(LOG_WARNING,
               "%s: the gzip data ends short (a producer may still be writing it); loading "
               "it again once it is unchanged for %lld ms",
               log_name(f->name, esc, sizeof(esc)), (long long)s->settle_ms);
    spool_settle(s, f, now);
    return 1;
}

/* Errors that waiting cannot fix: the name or what sits at ".name". */
static int spool_rename_is_final(int e)
{
    switch (e) {
    case ENAMETOOLONG:
    case EISDIR:
    case ENOTEMPTY:
    case EEXIST:
    case ENOTDIR:
    case EINVAL:
    case ELOOP:
    case EMLINK:
    case EXDEV:
    case EBUSY:
        return 1;
    default: /* EACCES, EPERM, EROFS, ENOSPC, EDQUOT, EIO: the operator fixes the spool */
        return 0;
    }
}

/* 0 when renamed (or already gone), else -errno. */
static int spool_rename_one(struct spool *s, struct spool_file *f, char *to, size_t tolen)
{
    struct stat st;
    char esc[LOG_NAME_LEN], esc_to[LOG_NAME_LEN];
    snprintf(to, tolen, ".%s%s", f->name, f->state == SPOOL_BAD ? ".failed" : "");
    if (fstatat(s->dirfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        log_printf(LOG_NOTICE, "%s replaces %s from an earlier load",
                   log_name(f->name, esc, sizeof(esc)), log_name(to, esc_to, sizeof(esc_to)));
    if (s->rename_fn(s->dirfd, f->name, s->dirfd, to) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static void spool_rename_stuck(struct spool *s, struct spool_file *f, const char *to, int e)
{
    char esc[LOG_NAME_LEN], esc_to[LOG_NAME_LEN];
    struct log_fields lf = LOG_FIELDS_INIT(LOG_ERR);
    log_name(f->name, esc, sizeof(esc));
    log_field(&lf, "MEMC_FILE=%s", esc);
    log_field(&lf, "MEMC_ERRNO=%d", e);
    log_struct(LOG_ERR, LOG_MSGID_RENAME_FAILED, &lf,
               "cannot rename %s to %s: %s; waiting will not fix that, so it keeps its name, is "
               "not loaded again until it is written again, and later files are renamed",
               esc, log_name(to, esc_to, sizeof(esc_to)), strerror(e));
    spool_set_state(s, f, SPOOL_STUCK);
}

static void spool_rename_blocked(struct spool *s, struct spool_file *f, const char *to, int e,
                                 int64_t now)
{
    if (!s->renames_blocked) {
        char esc[LOG_NAME_LEN], esc_to[LOG_NAME_LEN];
        log_printf(LOG_ERR, "cannot rename %s to %s: %s; will retry (later files wait)",
                   log_name(f->name, esc, sizeof(esc)), log_name(to, esc_to, sizeof(esc_to)),
                   strerror(e));
        s->renames_blocked = 1;
        s->blocked_since = now;
        s->rename_wait = 100;
    } else if (s->rename_wait < 10000) {
        s->rename_wait *= 2;
    }
    s->rename_at = now + s->rename_wait;
}

void spool_renames(struct spool *s, int64_t now)
{
    struct treap_node *n;
    while ((n = treap_first(&s->order))) {
        struct spool_file *f = treap_entry(n, struct spool_file, by_order);
        if (f->state != SPOOL_DONE && f->state != SPOOL_BAD)
            return;
        if (s->renames_blocked && now < s->rename_at)
            return;
        char to[NAME_MAX + 16];
        int r = spool_rename_one(s, f, to, sizeof(to));
        if (r < 0 && spool_rename_is_final(-r)) {
            spool_rename_stuck(s, f, to, -r);
            continue;
        }
        if (r < 0) {
            spool_rename_blocked(s, f, to, -r, now);
            return;
        }
        if (s->renames_blocked) {
            log_printf(LOG_NOTICE, "renames resumed after %.1f s",
                       (double)(now - s->blocked_since) / 1000.0);
            s->renames_blocked = 0;
        }
        spool_remove(s, f);
    }
}

size_t spool_unfinished(const struct spool *s)
{
    return s->count[SPOOL_QUEUED] + s->count[SPOOL_SETTLE] + s->count[SPOOL_LOADING];
}

uint32_t spool_owed_below(const struct spool *s, const char *name)
{
    uint32_t owed = 0;
    for (struct treap_node *n = treap_first(&s->order); n; n = treap_next(&s->order, n)) {
        const struct spool_file *f = treap_entry(n, struct spool_file, by_order);
        if (strcmp(f->name, name) >= 0)
            break;
        if (f->state != SPOOL_LOADING)
            owed |= f->owed;
    }
    return owed;
}

void spool_wake_owing(struct spool *s, const struct spool_file *f, uint32_t servers, int64_t now)
{
    for (struct treap_node *n = treap_first(&s->order); n; n = treap_next(&s->order, n)) {
        struct spool_file *g = treap_entry(n, struct spool_file, by_order);
        if (g->state == SPOOL_RETRY && (g->owed & servers) && strcmp(g->name, f->name) > 0 &&
            g->due_ms > now)
            spool_wait(s, g, SPOOL_RETRY, now);
    }
}

const struct spool_file *spool_first_settling(const struct spool *s)
{
    for (struct treap_node *n = treap_first(&s->order); n; n = treap_next(&s->order, n)) {
        const struct spool_file *f = treap_entry(n, struct spool_file, by_order);
        if (f->state == SPOOL_SETTLE && !f->attempts && !f->owed)
            return f;
        if (f->state == SPOOL_QUEUED)
            return NULL; /* the lowest waiting file is ready: no settling one below it */
    }
    return NULL;
}

/*
 * spool.h — the files of the spool directory and what happens to each.
 *
 * Every name the watcher reports becomes a struct spool_file with a state:
 *
 *   moved in -> QUEUED --dispatch--> LOADING --result--> DONE | BAD | KEPT | RETRY
 *                ^                       |                  |      |
 *   written,     |                       +-- changed, ----> SETTLE (again once its
 *   linked, -> SETTLE, RETRY --due------->   truncated        stat is still for
 *   young at start-up                                          settle_ms)
 *   DONE -> renamed ".name", BAD -> ".name.failed", strictly in name order;
 *     a rename that cannot succeed -> STUCK (keeps its name, later files go on)
 *   SKIP: symlink, FIFO, directory (never loaded, never renamed)
 *   REFUSED: a name too long to rename (never loaded)
 *   LEFT: one-shot only, not finished, keeps its name
 *
 * The state changes only in spool_set_state(), which keeps four ordered
 * sets in step (every name; names still to rename; names ready to load;
 * timers), so adding, dispatching and renaming a file cost O(log N)
 * whatever the length of the queue.  Nothing here forks, polls or reads a
 * clock: callers pass `now` (milliseconds, monotonic), so the whole state
 * machine is unit-tested with a made-up clock and a temporary directory.
 */
#ifndef MEMC_SPOOL_H
#define MEMC_SPOOL_H

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "treap.h"

#include "watch.h"

#define SPOOL_MAX_CRASHES 3 /* worker deaths on one file before it is set aside */
/* ".NAME.failed" must fit in NAME_MAX: longer names are refused at pick-up. */
#define SPOOL_NAME_MAX (NAME_MAX - 8)

enum spool_state {
    SPOOL_QUEUED,  /* waiting for a worker */
    SPOOL_LOADING, /* a worker has it */
    SPOOL_RETRY,   /* left because memcached was down; queued again at due_ms */
    SPOOL_SETTLE,  /* changed while loading: queued again once unchanged for a while */
    SPOOL_DONE,    /* finished: rename to ".name" when its turn comes */
    SPOOL_BAD,     /* corrupt/unreadable: rename to ".name.failed" */
    SPOOL_LEFT,    /* one-shot: not finished, keeps its name */
    SPOOL_SKIP,    /* not a regular file (symlink, FIFO, directory): ignored */
    SPOOL_KEPT,    /* dry run: finished, keeps its name */
    SPOOL_STUCK,   /* its rename failed for good: keeps its name, not loaded again */
    SPOOL_REFUSED, /* name too long for ".NAME.failed": never loaded */
    SPOOL_NSTATES
};

/* What identifies the bytes we loaded: a change means "load again". */
struct spool_stat {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct spool_file {
    struct treap_node by_name;  /* every file */
    struct treap_node by_order; /* not SKIP/KEPT: the rename walk */
    struct treap_node by_turn;  /* QUEUED: by name; RETRY/SETTLE: by due_ms */
    enum spool_state state;
    uint8_t changed;      /* an inotify event came while loading */
    uint8_t truncated;    /* its gzip data ended short: held once to settle */
    uint16_t crashes;     /* workers that died loading it */
    uint32_t attempts;    /* loads that ended incomplete */
    uint32_t owed;        /* servers it still owes records (left for a retry); 0: none */
    uint32_t denied;      /* opens refused by permissions in a row (back-off) */
    int64_t due_ms;       /* RETRY / SETTLE: when to look again */
    int64_t started_ms;   /* LOADING: when it was handed out */
    struct spool_stat st; /* at open */
    int64_t trunc_size;   /* size and mtime when its data last ended short */
    int64_t trunc_mtime_ns;
    char name[]; /* sized to the name */
};

struct spool {
    int dirfd;       /* the spool directory (not owned) */
    const char *dir; /* its path, for messages */
    struct treap names, order, ready, timers;
    size_t count[SPOOL_NSTATES];
    uint64_t set_aside;  /* files that went BAD (any_failed for one-shot) */
    uint64_t stuck;      /* files whose rename failed for good */
    int64_t settle_ms;   /* how long a file written in place must keep its stat */
    int renames_blocked; /* by an error the operator fixes (EACCES, EROFS, ...) */
    /* spool_open_at; a test puts a failing one here */
    int (*open_fn)(int dirfd, const char *name, struct stat *st);
    /* a file that cannot be opened (not EACCES, ENOENT, ELOOP) was set
     * aside: the master makes its result entry (NULL: none) */
    void (*aside_fn)(void *ctx, struct spool_file *f, int err);
    void *aside_ctx;
    /* renameat(2); a test puts a failing one here */
    int (*rename_fn)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
    int64_t blocked_since, rename_at, rename_wait; /* and its back-off */
};

void spool_init(struct spool *s, int dirfd, const char *dir, int64_t settle_ms);
/* Forget every file. */
void spool_free(struct spool *s);
const char *spool_state_name(enum spool_state st);

/* The only way a file changes state. */
void spool_set_state(struct spool *s, struct spool_file *f, enum spool_state to);

/* A name appeared (scan or inotify).  Moved in: ready now.  Written in
 * place, hard-linked, or found at start-up with an mtime younger than
 * settle_ms: it SETTLEs first.  A file being loaded is marked changed; a
 * finished, skipped or stuck one that appears again is looked at again.
 * now: monotonic ms; wall_ms: real-time ms (to judge an mtime's age). */
void spool_add(struct spool *s, const char *name, enum watch_how how, int64_t now, int64_t wall_ms);
struct spool_file *spool_find(const struct spool *s, const char *name);
void spool_remove(struct spool *s, struct spool_file *f);
/* Reload onto another directory: forget every file not being loaded. */
void spool_forget_idle(struct spool *s);

/* Move due timers on: a RETRY is queued; a SETTLE is queued when its stat
 * has not moved since, else it waits settle time again. */
void spool_tick(struct spool *s, int64_t now);
/* How many files SETTLE (written in place, or young at start-up), and in
 * *wait_ms how long until the last of them is due (0 if none). */
size_t spool_settling(const struct spool *s, int64_t now, int64_t *wait_ms);
/* The lowest-named QUEUED file, or NULL.  Call spool_tick() first. */
struct spool_file *spool_next(const struct spool *s);
/* An open refused by permissions (EACCES, EPERM) is the operator's to fix:
 * the file is tried again after a back-off (1 s doubling to 5 min), said
 * once per file, never set aside. */
/* The one way a spool file is opened, for loads and re-warms alike:
 * O_NOFOLLOW (a symlink fails with -ELOOP), O_NONBLOCK while opening (a
 * FIFO never blocks the master), regular files only (anything else:
 * -EFTYPE_SPOOL, st filled).  An fd with blocking reads, or -errno. */
#define EFTYPE_SPOOL EBADFD
int spool_open_at(int dirfd, const char *name, struct stat *st);
/* The spool's entries (re-warm, retention): a DIR of its own over dirfd
 * (closedir it), or NULL with errno set. */
DIR *spool_opendir(int dirfd);
/* Open f with spool_open_at.  Returns an fd, or -1
 * after deciding the file's fate (vanished: removed; a symlink, FIFO or
 * directory: SKIP; cannot be opened: BAD). */
int spool_open(struct spool *s, struct spool_file *f, int64_t now);
/* Hand f to a loader: LOADING, changed cleared, started_ms = now. */
void spool_loading(struct spool *s, struct spool_file *f, int64_t now);

/* Was f replaced, written, truncated or deleted while it was loaded?  Then
 * the result describes bytes that are no longer the file: a deleted file is
 * forgotten, a changed one waits to SETTLE.  Returns 1 when it handled f. */
int spool_requeue_if_changed(struct spool *s, struct spool_file *f, int64_t now);
/* f is to be looked at again at due (state RETRY or SETTLE). */
void spool_wait(struct spool *s, struct spool_file *f, enum spool_state st, int64_t due);
/* A worker died loading f: queued again, or BAD after SPOOL_MAX_CRASHES
 * (never while stopping).  Returns 1 when it was set aside. */
int spool_loader_died(struct spool *s, struct spool_file *f, int stopping);
/* f's gzip data ended short.  The first time (or after it was written
 * again) it SETTLEs and is loaded again: returns 1.  Unchanged and short
 * again after settling: 0, it is truly truncated. */
int spool_hold_truncated(struct spool *s, struct spool_file *f, int64_t now);

/* Rename finished files, lowest name first, stopping at the first file that
 * is not finished: dot files appear in name (= time) order.  A rename that
 * waiting cannot fix (ENAMETOOLONG, EISDIR, ENOTEMPTY, EEXIST, ...) makes
 * that file STUCK and the walk goes on; one the operator fixes for the
 * whole spool (EACCES, EROFS, ENOSPC, ...) is retried with a back-off while
 * later files wait. */
void spool_renames(struct spool *s, int64_t now);

/* Servers owed (f->owed) by files named below name that are not loading:
 * left for a retry (RETRY, QUEUED again, LEFT).  The write order refuses
 * those servers to later files (order.h). */
uint32_t spool_owed_below(const struct spool *s, const char *name);
/* The lowest-named file that was never loaded and is settling (written in
 * place, found young), or NULL: files named above it wait for it, so a
 * burst whose names arrive out of order still loads in name order. */
const struct spool_file *spool_first_settling(const struct spool *s);
/* f's retry for servers finished: RETRY files named above it that owe any
 * of them are due now (they were held back behind it). */
void spool_wake_owing(struct spool *s, const struct spool_file *f, uint32_t servers, int64_t now);

/* QUEUED + SETTLE + LOADING: work that a one-shot run still waits for. */
size_t spool_unfinished(const struct spool *s);

#endif

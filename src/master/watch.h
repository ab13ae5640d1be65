/*
 * watch.h — the spool directory: which names count, a full scan, and
 * inotify events for new files.
 *
 * Names count when they match the glob and do not start with '.', so our
 * own renames (".name", ".name.failed") and producers' temporary dot files
 * are never picked up.
 */
#ifndef MEMC_WATCH_H
#define MEMC_WATCH_H

#include <limits.h>
#include <sys/types.h>

struct watch {
    int dirfd; /* O_DIRECTORY; spool files are opened relative to it */
    int infd;  /* inotify, -1 when not watching (one-shot) */
    char dir[PATH_MAX];
    char glob[NAME_MAX + 1];
};

/* How a name came to our attention. */
enum watch_how {
    WATCH_SCANNED,  /* found by a directory scan (start-up, overflow, reload) */
    WATCH_MOVED_IN, /* IN_MOVED_TO: renamed in, complete (the producer rule) */
    WATCH_WRITTEN,  /* IN_CLOSE_WRITE: written in place, maybe not for the last time */
    WATCH_CREATED,  /* IN_CREATE: a hard link, symlink, FIFO, directory or new file */
};

typedef void (*watch_fn)(void *ctx, const char *name, enum watch_how how);

int watch_open(struct watch *w, const char *dir, const char *glob, int use_inotify);
void watch_close(struct watch *w);
/* Stop the inotify events (the directory went away); dirfd stays open. */
void watch_stop_events(struct watch *w);

int watch_match(const struct watch *w, const char *name);

/* One memc-load per spool: an exclusive flock() on the directory (released
 * when dirfd is closed; workers never inherit it).  0, or -EWOULDBLOCK with
 * *holder set to the pid holding it (from /proc/locks; 0 if unknown). */
int watch_lock(const struct watch *w, pid_t *holder);

/* Call fn for every matching name now in the directory.  0 or -errno. */
int watch_scan(struct watch *w, watch_fn fn, void *ctx);

/* Drain pending inotify events, calling fn for matching names that were
 * created, closed after writing or moved in.  Returns 0, -EOVERFLOW when
 * events were lost (rescan), -ENOENT when the directory was deleted or
 * moved. */
int watch_read(struct watch *w, watch_fn fn, void *ctx);

/* 1 when the spool directory has been removed.  inotify says IN_DELETE_SELF
 * only once the inode is freed, and our own dirfd keeps it alive, so an
 * rmdir() is only seen this way: the link count of a removed directory is 0.
 * One fstat(); the master calls it on every pass of its loop (at least
 * every 100 ms, its timer tick). */
int watch_gone(const struct watch *w);

#endif

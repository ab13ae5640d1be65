/*
 * watch.c — spool scanning and inotify (see watch.h).
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int watch_open(struct watch *w, const char *dir, const char *glob, int use_inotify)
{
    memset(w, 0, sizeof(*w));
    w->infd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    snprintf(w->glob, sizeof(w->glob), "%s", glob);
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0)
        return -errno;
    if (use_inotify) {
        w->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->infd < 0)
            goto err;
        /* IN_CLOSE_WRITE: written in place; IN_MOVED_TO: renamed in (the
         * producer rule); IN_CREATE: hard links (never written, so never
         * closed after writing), symlinks, FIFOs and directories; *_SELF:
         * the spool itself went away. */
        if (inotify_add_watch(w->infd, dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF |
                                  IN_MOVE_SELF | IN_ONLYDIR) < 0)
            goto err;
    }
    return 0;
err:;
    int e = errno;
    watch_close(w);
    return -e;
}

void watch_close(struct watch *w)
{
    if (w->infd >= 0)
        close(w->infd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    w->infd = w->dirfd = -1;
}

void watch_stop_events(struct watch *w)
{
    if (w->infd >= 0)
        close(w->infd);
    w->infd = -1;
}

/* The pid that holds a flock on the inode of st, from /proc/locks lines
 * like "3: FLOCK  ADVISORY  WRITE 1234 fe:01:5678 0 EOF". */
static pid_t watch_lock_holder(const struct stat *st)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    pid_t pid = 0;
    while (f && !pid && fgets(line, sizeof(line), f)) {
        unsigned maj, min;
        unsigned long ino;
        int p;
        if (strstr(line, "FLOCK") &&
            sscanf(line, "%*s %*s %*s %*s %d %x:%x:%lu", &p, &maj, &min, &ino) == 4 &&
            ino == (unsigned long)st->st_ino && maj == major(st->st_dev) &&
            min == minor(st->st_dev))
            pid = p;
    }
    if (f)
        fclose(f);
    return pid;
}

int watch_lock(const struct watch *w, pid_t *holder)
{
    struct stat st;
    *holder = 0;
    if (flock(w->dirfd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    int e = errno;
    if (e == EWOULDBLOCK && fstat(w->dirfd, &st) == 0)
        *holder = watch_lock_holder(&st);
    return -e;
}

int watch_match(const struct watch *w, const char *name)
{
    return name[0] != '.' && fnmatch(w->glob, name, FNM_PERIOD) == 0;
}

int watch_scan(struct watch *w, watch_fn fn, void *ctx)
{
    int fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (watch_match(w, de->d_name))
            fn(ctx, de->d_name, WATCH_SCANNED);
    closedir(d);
    return 0;
}

static enum watch_how watch_how(uint32_t mask)
{
    if (mask & IN_MOVED_TO)
        return WATCH_MOVED_IN;
    return mask & IN_CLOSE_WRITE ? WATCH_WRITTEN : WATCH_CREATED;
}

int watch_read(struct watch *w, watch_fn fn, void *ctx)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int r = 0;
    for (;;) {
        ssize_t n = read(w->infd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return r;
            return -errno;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW)
                r = -EOVERFLOW;
            else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                return -ENOENT;
            else if (ev->len && watch_match(w, ev->name))
                fn(ctx, ev->name, watch_how(ev->mask));
        }
    }
}

int watch_gone(const struct watch *w)
{
    struct stat st;
    return fstat(w->dirfd, &st) < 0 || st.st_nlink == 0;
}

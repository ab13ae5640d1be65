/*
 * master.c — queue, workers, renames, systemd.
 *
 * One thread, one sleep: epoll_wait() over a signalfd (TERM, INT, HUP,
 * CHLD), the spool's inotify fd, a 100 ms timerfd and one socket per
 * worker.  Everything else is bookkeeping done after each wake-up:
 *
 *   dispatch  idle workers get the lowest-named queued file (opened here,
 *             O_NOFOLLOW, regular files only, passed as an fd);
 *   results   a file is done, failed, corrupt, or left for a retry;
 *   renames   done files become ".name" (corrupt ones ".name.failed")
 *             strictly in name order: a finished file waits for every
 *             earlier-named file to be finished too;
 *   checks    stalled workers, retry timers, respawns, STATUS, watchdog.
 *
 * The file list is a sorted array of pointers; insert and remove are O(N),
 * which for the thousands of files a spool may hold at once is nothing next
 * to loading even one of them.
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "ipc.h"
#include "log.h"
#include "memc.h"
#include "notify.h"
#include "watch.h"
#include "worker.h"

#define MASTER_MAX_WORKERS 128
#define MASTER_MAX_CRASHES 3  /* worker deaths on one file before it is set aside */
#define MASTER_SETTLE_MS 1000 /* a changed file must keep its stat this long */

enum mfile_state {
    F_QUEUED,  /* waiting for a worker */
    F_LOADING, /* a worker has it */
    F_RETRY,   /* left because memcached was down; queued again at retry_at */
    F_SETTLE,  /* changed while loading: queued again once unchanged for a while */
    F_DONE,    /* finished: rename to ".name" when its turn comes */
    F_BAD,     /* corrupt/unreadable: rename to ".name.failed" */
    F_LEFT,    /* one-shot: not finished, keeps its name */
    F_SKIP,    /* not a regular file (symlink, FIFO, directory): ignored */
    F_KEPT,    /* dry run: finished, keeps its name */
};

struct mworker;

struct mfile {
    char name[NAME_MAX + 1];
    int state;
    struct mworker *worker;
    struct stat st; /* at open: a change means "load again" */
    int changed;    /* an inotify event came while loading or done */
    int attempts;   /* loads that ended incomplete */
    int crashes;    /* workers that died loading it */
    int64_t retry_at_ms;
    int64_t started_ms;
    int rename_failed;
};

struct mworker {
    pid_t pid;
    int sock;
    int ready;
    int retiring; /* finish the current file, then quit (reload) */
    struct mfile *file;
    uint32_t job;
    int64_t started_ms, last_change_ms;
    struct pipe_stats progress;
    uint32_t down_mask;
};

struct mresult {
    char name[64];
    char result[16];
    uint64_t stored, errors;
    double rate, secs;
};

struct master {
    struct cfg cfg;
    int argc;
    char **argv;
    struct memc_map map;
    struct watch watch;
    struct notify notify;
    int epfd, sigfd, timerfd;

    struct mfile **files;
    size_t nfiles, cap;
    struct mworker workers[MASTER_MAX_WORKERS];
    uint32_t next_job;

    int ready_sent;
    int stopping;
    int64_t stop_started_ms;
    int killed_all;
    int exit_code;
    int any_failed, any_left;

    int64_t respawn_at_ms;
    int fast_deaths;

    /* one-shot on a terminal: live progress lines and a summary table */
    int tty;
    int tty_lines;
    int64_t tty_drawn_ms;
    struct mresult *results;
    size_t nresults;

    uint64_t stored_done; /* records stored by finished loads */
    uint64_t rate_base;
    int64_t rate_ms;
    double rate;
    char last_result[256];
};

enum { TAG_SIG = 1, TAG_INOTIFY, TAG_TIMER, TAG_WORKER = 100 };

static const char *master_esc(const char *name, char *buf, size_t len)
{
    return log_escape(name, strlen(name), buf, len);
}

/* ---- the file list ------------------------------------------------------- */

static ssize_t master_find(struct master *m, const char *name, int *found)
{
    size_t lo = 0, hi = m->nfiles;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->files[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return (ssize_t)mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return (ssize_t)lo;
}

/* A name appeared (scan or inotify).  New names are queued; a name we are
 * loading or have finished was written again, so it will be loaded again. */
static void master_add(void *arg, const char *name)
{
    struct master *m = arg;
    int found;
    if (strlen(name) > NAME_MAX)
        return;
    size_t i = (size_t)master_find(m, name, &found);
    if (found) {
        struct mfile *f = m->files[i];
        if (f->state == F_LOADING)
            f->changed = 1;
        else if (f->state == F_DONE || f->state == F_SKIP || f->state == F_BAD)
            f->state = F_QUEUED, f->changed = 0;
        return;
    }
    if (m->nfiles == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct mfile **nf = realloc(m->files, cap * sizeof(*nf));
        if (!nf) {
            log_printf(LOG_ERR, "out of memory queueing a file; it is picked up at the next scan");
            return;
        }
        m->files = nf;
        m->cap = cap;
    }
    struct mfile *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->state = F_QUEUED;
    memmove(m->files + i + 1, m->files + i, (m->nfiles - i) * sizeof(*m->files));
    m->files[i] = f;
    m->nfiles++;
}

static void master_remove(struct master *m, size_t i)
{
    free(m->files[i]);
    memmove(m->files + i, m->files + i + 1, (m->nfiles - i - 1) * sizeof(*m->files));
    m->nfiles--;
}

static void master_rescan(struct master *m)
{
    int r = watch_scan(&m->watch, master_add, m);
    if (r < 0)
        log_printf(LOG_ERR, "cannot scan %s: %s", m->watch.dir, strerror(-r));
}

/* ---- workers ------------------------------------------------------------- */

static int master_nworkers(struct master *m, int retiring)
{
    int n = 0;
    for (int i = 0; i < MASTER_MAX_WORKERS; i++)
        if (m->workers[i].pid > 0 && m->workers[i].retiring == retiring)
            n++;
    return n;
}

static int master_spawn(struct master *m)
{
    int slot = -1;
    for (int i = 0; i < MASTER_MAX_WORKERS && slot < 0; i++)
        if (m->workers[i].pid == 0)
            slot = i;
    if (slot < 0)
        return -EAGAIN;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return -e;
    }
    if (pid == 0) {
        /* child: keep only our end of our socket */
        close(sv[0]);
        close(m->epfd);
        close(m->sigfd);
        close(m->timerfd);
        watch_close(&m->watch);
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m->workers[i].pid > 0)
                close(m->workers[i].sock);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        log_set_stderr_hook(NULL, NULL); /* the progress display is the master's */
        _exit(worker_main(&m->cfg, sv[1]));
    }
    close(sv[1]);
    struct mworker *w = &m->workers[slot];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->sock = sv[0];
    w->started_ms = io_now_ms();
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WORKER + (uint64_t)slot};
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, w->sock, &ev);
    log_printf(LOG_DEBUG, "worker %d started", (int)pid);
    return 0;
}

static void master_quit_worker(struct mworker *w)
{
    struct ipc_msg q;
    memset(&q, 0, sizeof(q));
    q.type = IPC_QUIT;
    ipc_send(w->sock, &q, -1);
}

static void master_fill_pool(struct master *m)
{
    if (m->stopping || io_now_ms() < m->respawn_at_ms)
        return;
    while (master_nworkers(m, 0) < m->cfg.workers)
        if (master_spawn(m) < 0) {
            log_printf(LOG_ERR, "cannot start a worker: %s", strerror(errno));
            m->respawn_at_ms = io_now_ms() + 1000;
            return;
        }
}

static void master_worker_gone(struct master *m, struct mworker *w, int status,
                               const struct rusage *ru)
{
    char why[64], esc[NAME_MAX * 4 + 8];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof(why), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
    int64_t now = io_now_ms();
    int expected = m->stopping || w->retiring;
    if (w->file) {
        struct mfile *f = w->file;
        f->worker = NULL;
        f->crashes++;
        master_esc(f->name, esc, sizeof(esc));
        char msg[512], f1[NAME_MAX * 4 + 32], f2[64];
        snprintf(f1, sizeof(f1), "MEMC_FILE=%s", esc);
        snprintf(f2, sizeof(f2), "MEMC_WORKER_PID=%d", (int)w->pid);
        if (!m->stopping && f->crashes >= MASTER_MAX_CRASHES) {
            f->state = F_BAD;
            snprintf(msg, sizeof(msg),
                     "worker %d %s while loading %s; that is %d times for this file, setting it "
                     "aside as .%s.failed",
                     (int)w->pid, why, esc, f->crashes, esc);
            m->any_failed = 1;
        } else {
            f->state = F_QUEUED;
            snprintf(msg, sizeof(msg),
                     "worker %d %s while loading %s; the file will be loaded "
                     "again from the start",
                     (int)w->pid, why, esc);
        }
        log_event(m->stopping ? LOG_WARNING : LOG_ERR, LOG_MSGID_WORKER_DIED, msg,
                  (const char *const[]){f1, f2, NULL});
    } else if (!expected) {
        char msg[160], f2[64];
        snprintf(msg, sizeof(msg), "worker %d %s while idle", (int)w->pid, why);
        snprintf(f2, sizeof(f2), "MEMC_WORKER_PID=%d", (int)w->pid);
        log_event(LOG_ERR, LOG_MSGID_WORKER_DIED, msg, (const char *const[]){f2, NULL});
    } else {
        log_printf(LOG_INFO, "worker %d %s (peak RSS %ld KiB, CPU %.2f s user %.2f s system)",
                   (int)w->pid, why, ru->ru_maxrss,
                   (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6,
                   (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6);
    }
    if (!expected) {
        /* back off if workers die right after starting (bad config, OOM) */
        if (now - w->started_ms < 2000) {
            m->fast_deaths++;
            int64_t delay = 100LL << (m->fast_deaths > 7 ? 7 : m->fast_deaths);
            m->respawn_at_ms = now + (delay > 10000 ? 10000 : delay);
        } else {
            m->fast_deaths = 0;
        }
    }
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->sock, NULL);
    close(w->sock);
    memset(w, 0, sizeof(*w));
}

static void master_reap(struct master *m)
{
    int status;
    pid_t pid;
    struct rusage ru;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m->workers[i].pid == pid) {
                master_worker_gone(m, &m->workers[i], status, &ru);
                break;
            }
    }
}

/* ---- dispatch ------------------------------------------------------------ */

static int master_same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The first file, in name order, that may be loaded now.  A settling file
 * is ready once its stat has not moved for MASTER_SETTLE_MS: a producer
 * still writing in place keeps pushing it back (one fstatat per settling
 * file per pass; there are rarely any). */
static struct mfile *master_next_file(struct master *m, int64_t now)
{
    for (size_t i = 0; i < m->nfiles; i++) {
        struct mfile *f = m->files[i];
        if (f->state == F_QUEUED || (f->state == F_RETRY && now >= f->retry_at_ms))
            return f;
        if (f->state != F_SETTLE || now < f->retry_at_ms)
            continue;
        struct stat st;
        if (fstatat(m->watch.dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !master_same_stat(&st, &f->st)) {
            f->st = st;
            f->retry_at_ms = now + MASTER_SETTLE_MS;
            continue;
        }
        return f; /* stable, or gone: master_open decides */
    }
    return NULL;
}

/* Open a queued file the safe way.  Returns an fd, or -1 after deciding the
 * file's fate (vanished: removed; not a regular file: skipped). */
static int master_open(struct master *m, struct mfile *f)
{
    char esc[NAME_MAX * 4 + 8];
    master_esc(f->name, esc, sizeof(esc));
    int fd =
        openat(m->watch.dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            log_printf(LOG_INFO, "%s vanished before loading", esc);
            int found;
            ssize_t i = master_find(m, f->name, &found);
            if (found)
                master_remove(m, (size_t)i);
        } else if (e == ELOOP) {
            log_printf(LOG_WARNING,
                       "%s is a symlink; symlinks in the spool are never followed, "
                       "skipping it",
                       esc);
            f->state = F_SKIP;
        } else {
            log_printf(LOG_ERR, "%s cannot be opened: %s; setting it aside", esc, strerror(e));
            f->state = F_BAD;
            m->any_failed = 1;
        }
        return -1;
    }
    if (fstat(fd, &f->st) < 0 || !S_ISREG(f->st.st_mode)) {
        log_printf(LOG_WARNING, "%s is not a regular file, skipping it", esc);
        f->state = F_SKIP;
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void master_dispatch(struct master *m)
{
    if (m->stopping)
        return;
    int64_t now = io_now_ms();
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid <= 0 || !w->ready || w->file || w->retiring)
            continue;
        struct mfile *f;
        int fd = -1;
        while ((f = master_next_file(m, now)) && (fd = master_open(m, f)) < 0)
            ;
        if (!f)
            return;
        struct ipc_msg msg;
        memset(&msg, 0, sizeof(msg));
        msg.type = IPC_LOAD;
        msg.job = ++m->next_job;
        snprintf(msg.name, sizeof(msg.name), "%s", f->name);
        int r = ipc_send(w->sock, &msg, fd);
        close(fd);
        if (r < 0) {
            log_printf(LOG_ERR, "cannot hand a file to worker %d: %s", (int)w->pid, strerror(-r));
            continue; /* the file stays queued; the worker's death is reaped */
        }
        f->state = F_LOADING;
        f->worker = w;
        f->changed = 0;
        f->started_ms = now;
        w->file = f;
        w->job = msg.job;
        w->last_change_ms = now;
        memset(&w->progress, 0, sizeof(w->progress));
        char esc[NAME_MAX * 4 + 8];
        log_printf(LOG_INFO, "loading %s (%lld bytes) in worker %d",
                   master_esc(f->name, esc, sizeof(esc)), (long long)f->st.st_size, (int)w->pid);
    }
}

/* ---- results ------------------------------------------------------------- */

/* errors / loaded; errors with nothing loaded is 100 %; nothing at all 0. */
static double master_error_rate(const struct pipe_stats *st)
{
    if (!st->stored)
        return st->errors ? 1.0 : 0.0;
    return (double)st->errors / (double)st->stored;
}

static void master_log_examples(const char *esc, const struct pipe_stats *st)
{
    if (!st->errors && !st->dirty)
        return;
    char buf[1500];
    int off = snprintf(buf, sizeof(buf), "%s: %llu error lines/records", esc,
                       (unsigned long long)st->errors);
    for (int s = 0; s < PARSE_STATUS_MAX; s++)
        if (st->err_by[s] && off < (int)sizeof(buf))
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s %s: %llu", s == 0 ? "" : ";",
                            parse_status_text(s), (unsigned long long)st->err_by[s]);
    if (st->dirty && off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off,
                        "; records with dropped app items: %llu", (unsigned long long)st->dirty);
    for (int i = 0; i < st->nexamples && off < (int)sizeof(buf); i++) {
        const struct pipe_example *e = &st->ex[i];
        if (e->line)
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s line %llu (%s): '%s'",
                            i ? ";" : "; e.g.", (unsigned long long)e->line,
                            parse_status_text(e->status), e->text);
        else
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s %s", i ? ";" : "; e.g.",
                            e->text);
    }
    log_printf(LOG_WARNING, "%s", buf);
}

static void master_log_result(struct master *m, struct mfile *f, const struct pipe_stats *st,
                              const char *result, const char *msgid, int prio, const char *msg)
{
    char esc[NAME_MAX * 4 + 8];
    char f_file[NAME_MAX * 4 + 32], f_rec[48], f_err[48], f_rate[48], f_dur[48], f_lines[48],
        f_dirty[48], f_bytes[48], f_res[48];
    master_esc(f->name, esc, sizeof(esc));
    snprintf(f_file, sizeof(f_file), "MEMC_FILE=%s", esc);
    snprintf(f_rec, sizeof(f_rec), "MEMC_RECORDS=%llu", (unsigned long long)st->stored);
    snprintf(f_err, sizeof(f_err), "MEMC_ERRORS=%llu", (unsigned long long)st->errors);
    snprintf(f_rate, sizeof(f_rate), "MEMC_ERROR_RATE=%.6f", master_error_rate(st));
    snprintf(f_dur, sizeof(f_dur), "MEMC_DURATION_MS=%lld",
             (long long)(io_now_ms() - f->started_ms));
    snprintf(f_lines, sizeof(f_lines), "MEMC_LINES=%llu", (unsigned long long)st->lines);
    snprintf(f_dirty, sizeof(f_dirty), "MEMC_DIRTY_APPS=%llu", (unsigned long long)st->dirty);
    snprintf(f_bytes, sizeof(f_bytes), "MEMC_BYTES=%lld", (long long)f->st.st_size);
    snprintf(f_res, sizeof(f_res), "MEMC_RESULT=%s", result);
    const char *const fields[] = {f_file,  f_rec,   f_err,   f_rate, f_dur,
                                  f_lines, f_dirty, f_bytes, f_res,  NULL};
    log_event(prio, msgid, msg, fields);
    snprintf(m->last_result, sizeof(m->last_result), "last %s: %s, error rate %.2f%%", esc, result,
             100.0 * master_error_rate(st));
    if (m->tty) {
        struct mresult *r = realloc(m->results, (m->nresults + 1) * sizeof(*r));
        if (r) {
            m->results = r;
            r += m->nresults++;
            snprintf(r->name, sizeof(r->name), "%s", esc);
            snprintf(r->result, sizeof(r->result), "%s", result);
            r->stored = st->stored;
            r->errors = st->errors;
            r->rate = master_error_rate(st);
            r->secs = (double)(io_now_ms() - f->started_ms) / 1000.0;
        }
    }
}

/* Has the file been replaced, grown or touched since we opened it? */
/* Was the file replaced, written, truncated or deleted while a worker read
 * it?  Then the worker's result describes bytes that are no longer the file:
 * forget a deleted file, and load a changed one again once it settles.
 * Returns 1 when it handled the file. */
static int master_requeue_if_changed(struct master *m, struct mfile *f, const char *esc)
{
    struct stat now;
    if (fstatat(m->watch.dirfd, f->name, &now, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return 0; /* cannot tell: trust the result */
        log_printf(LOG_WARNING, "%s was deleted while loading; forgetting it", esc);
        int found;
        ssize_t i = master_find(m, f->name, &found);
        if (found)
            master_remove(m, (size_t)i);
        return 1;
    }
    if (!f->changed && master_same_stat(&now, &f->st))
        return 0;
    log_printf(LOG_WARNING,
               "%s changed while loading (replaced, truncated, grown or touched); "
               "loading it again once it is unchanged for %d ms",
               esc, MASTER_SETTLE_MS);
    f->st = now;
    f->changed = 0;
    f->state = F_SETTLE;
    f->retry_at_ms = io_now_ms() + MASTER_SETTLE_MS;
    return 1;
}

static void master_result(struct master *m, struct mworker *w, const struct ipc_msg *msg)
{
    struct mfile *f = w->file;
    if (!f || msg->job != w->job)
        return;
    const struct pipe_stats *st = &msg->st;
    w->file = NULL;
    f->worker = NULL;
    w->down_mask = msg->down_mask;
    m->stored_done += st->stored;
    if (w->retiring || m->stopping)
        master_quit_worker(w);

    char esc[NAME_MAX * 4 + 8], text[1024];
    master_esc(f->name, esc, sizeof(esc));
    double secs = (double)(io_now_ms() - f->started_ms) / 1000.0;
    switch (st->status) {
    case PIPE_ABORTED:
        f->state = F_QUEUED;
        log_printf(LOG_NOTICE,
                   "%s: stopped after %llu records; it keeps its name and is loaded "
                   "again from the start next time",
                   esc, (unsigned long long)st->stored);
        return;
    case PIPE_CORRUPT:
    case PIPE_IOERR:
        /* Truncated under the reader looks corrupt: only a file that stayed
         * the same is judged by its bytes. */
        if (master_requeue_if_changed(m, f, esc))
            return;
        master_log_examples(esc, st);
        f->state = F_BAD;
        m->any_failed = 1;
        snprintf(text, sizeof(text), "%s is %s (%s) after %llu records; renaming it to .%s.failed",
                 esc, st->status == PIPE_CORRUPT ? "corrupt" : "unreadable", st->why,
                 (unsigned long long)st->stored, esc);
        master_log_result(m, f, st, st->status == PIPE_CORRUPT ? "corrupt" : "unreadable",
                          LOG_MSGID_FILE_FAILED, LOG_ERR, text);
        return;
    case PIPE_INCOMPLETE: {
        f->attempts++;
        int shift = f->attempts > 5 ? 5 : f->attempts - 1;
        int64_t delay = (int64_t)m->cfg.retry_interval_s * 1000 << shift;
        if (delay > 300000)
            delay = 300000;
        f->retry_at_ms = io_now_ms() + delay;
        f->state = m->cfg.oneshot ? F_LEFT : F_RETRY;
        if (m->cfg.oneshot)
            m->any_left = 1;
        char when[64] = "";
        if (!m->cfg.oneshot)
            snprintf(when, sizeof(when), "; loading it again in %lld s", (long long)(delay / 1000));
        snprintf(text, sizeof(text),
                 "%s left in place: %llu records not stored%s (memcached unreachable)%s", esc,
                 (unsigned long long)st->deferred,
                 st->possibly_lost ? ", and a server failed after storing some" : "", when);
        master_log_result(m, f, st, "left", LOG_MSGID_FILE_LEFT, LOG_ERR, text);
        return;
    }
    default:
        break;
    }
    if (master_requeue_if_changed(m, f, esc))
        return;
    master_log_examples(esc, st);
    double rate = master_error_rate(st);
    int ok = rate < m->cfg.error_threshold;
    f->state = m->cfg.dry ? F_KEPT : F_DONE;
    f->attempts = 0;
    if (!ok)
        m->any_failed = 1;
    snprintf(text, sizeof(text),
             "%s%s %s: %llu records stored, %llu errors, error rate %.4f%% (%s %.2f%%), %.1f s, "
             "%.0f records/s",
             m->cfg.dry ? "dry run: " : "", esc, ok ? "loaded" : "failed",
             (unsigned long long)st->stored, (unsigned long long)st->errors, 100.0 * rate,
             ok ? "below" : "at or above", 100.0 * m->cfg.error_threshold, secs,
             secs > 0 ? (double)st->stored / secs : 0.0);
    master_log_result(m, f, st, ok ? "loaded" : "failed",
                      ok ? LOG_MSGID_FILE_LOADED : LOG_MSGID_FILE_FAILED, ok ? LOG_INFO : LOG_ERR,
                      text);
}

/* Rename finished files, lowest name first, stopping at the first file that
 * is not finished: dot files then appear in name (= time) order. */
static void master_renames(struct master *m)
{
    for (size_t i = 0; i < m->nfiles;) {
        struct mfile *f = m->files[i];
        if (f->state == F_SKIP || f->state == F_KEPT) {
            i++;
            continue;
        }
        if (f->state != F_DONE && f->state != F_BAD)
            return;
        char to[NAME_MAX + 16], esc[NAME_MAX * 4 + 8];
        snprintf(to, sizeof(to), ".%s%s", f->name, f->state == F_BAD ? ".failed" : "");
        if (renameat(m->watch.dirfd, f->name, m->watch.dirfd, to) < 0 && errno != ENOENT) {
            if (!f->rename_failed)
                log_printf(LOG_ERR, "cannot rename %s to %s: %s; will retry (later files wait)",
                           master_esc(f->name, esc, sizeof(esc)), to, strerror(errno));
            f->rename_failed = 1;
            return;
        }
        master_remove(m, i);
    }
}

/* ---- status -------------------------------------------------------------- */

static void master_status(struct master *m, int force)
{
    char buf[1024];
    int off = 0, queued = 0, waiting = 0, loading = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        int s = m->files[i]->state;
        queued += s == F_QUEUED || s == F_SETTLE;
        waiting += s == F_RETRY;
    }
    uint64_t stored = m->stored_done;
    uint32_t down = 0;
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid <= 0)
            continue;
        down |= w->down_mask;
        if (!w->file)
            continue;
        stored += w->progress.stored;
        char esc[80];
        double pct = w->file->st.st_size
                         ? 100.0 * (double)w->progress.bytes_in / (double)w->file->st.st_size
                         : 0;
        if (off < (int)sizeof(buf))
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "%s%s %.0f%%",
                            loading ? ", " : "loading ",
                            log_escape(w->file->name, strlen(w->file->name), esc, 40), pct);
        loading++;
    }
    int64_t now = io_now_ms();
    if (now - m->rate_ms >= 1000) {
        if (m->rate_ms)
            m->rate = (double)(stored - m->rate_base) * 1000.0 / (double)(now - m->rate_ms);
        m->rate_base = stored;
        m->rate_ms = now;
    }
    if (!loading)
        off = snprintf(buf, sizeof(buf), "idle");
    if (off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "; %d queued", queued);
    if (waiting && off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, ", %d waiting to retry", waiting);
    if (loading && off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "; %.0f records/s", m->rate);
    if (m->last_result[0] && off < (int)sizeof(buf))
        off += snprintf(buf + off, sizeof(buf) - (size_t)off, "; %s", m->last_result);
    for (int g = 0; g < m->map.nservers && off < (int)sizeof(buf); g++)
        if (down & (1u << g))
            off += snprintf(buf + off, sizeof(buf) - (size_t)off, "; memcached down: %s %s",
                            cfg_type_name(m->map.servers[g].type), m->map.servers[g].name);
    if (m->stopping && off < (int)sizeof(buf))
        snprintf(buf + off, sizeof(buf) - (size_t)off, "; stopping");
    notify_status(&m->notify, buf, force);
}

/* ---- terminal progress (one-shot on a tty) -------------------------------- */

/* Erase the progress block (cursor to the start of its first line). */
static void master_tty_erase(void *arg)
{
    struct master *m = arg;
    if (m->tty_lines)
        fprintf(stderr, "\033[%dF\033[J", m->tty_lines);
    m->tty_lines = 0;
}

/* One line per file in flight: percent of its compressed bytes, records/s,
 * errors, ETA.  Redrawn in place at most 4 times a second. */
static void master_tty_draw(struct master *m)
{
    int64_t now = io_now_ms();
    if (now - m->tty_drawn_ms < 250)
        return;
    m->tty_drawn_ms = now;
    master_tty_erase(m);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid <= 0 || !w->file)
            continue;
        struct mfile *f = w->file;
        double secs = (double)(now - f->started_ms) / 1000.0;
        double done = f->st.st_size ? (double)w->progress.bytes_in / (double)f->st.st_size : 0;
        double rate = secs > 0 ? (double)w->progress.stored / secs : 0;
        char eta[32] = "?";
        if (done > 0.01 && secs > 0)
            snprintf(eta, sizeof(eta), "%.0f s", secs * (1 - done) / done);
        char esc[48];
        fprintf(stderr, "  %-40s %5.1f%%  %9.0f records/s  %8llu errors  ETA %s\033[K\n",
                log_escape(f->name, strlen(f->name), esc, 40), 100 * done, rate,
                (unsigned long long)w->progress.errors, eta);
        m->tty_lines++;
    }
    fflush(stderr);
}

static void master_tty_summary(struct master *m)
{
    master_tty_erase(m);
    if (!m->nresults)
        return;
    fprintf(stderr, "\n%-40s %-10s %12s %10s %11s %8s %12s\n", "FILE", "RESULT", "RECORDS",
            "ERRORS", "ERROR RATE", "SECONDS", "RECORDS/S");
    for (size_t i = 0; i < m->nresults; i++) {
        struct mresult *r = &m->results[i];
        fprintf(stderr, "%-40s %-10s %12llu %10llu %10.4f%% %8.1f %12.0f\n", r->name, r->result,
                (unsigned long long)r->stored, (unsigned long long)r->errors, 100 * r->rate,
                r->secs, r->secs > 0 ? (double)r->stored / r->secs : 0.0);
    }
}

/* ---- periodic checks ----------------------------------------------------- */

static int master_progressed(const struct pipe_stats *a, const struct pipe_stats *b)
{
    return a->bytes_in != b->bytes_in || a->stored != b->stored || a->errors != b->errors ||
           a->deferred != b->deferred || a->lines != b->lines;
}

static void master_stop(struct master *m, const char *why)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    m->stop_started_ms = io_now_ms();
    notify_stopping(&m->notify);
    notify_extend_timeout(&m->notify, (uint64_t)(m->cfg.stop_timeout_s + 10) * 1000000);
    log_printf(LOG_INFO, "stopping (%s)", why);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid <= 0)
            continue;
        if (w->file)
            kill(w->pid, SIGTERM); /* abort at a batch boundary */
        else
            master_quit_worker(w);
    }
}

static void master_spool_gone(struct master *m)
{
    log_printf(LOG_ERR, "spool directory %s was deleted or moved; exiting", m->watch.dir);
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->watch.infd, NULL);
    m->exit_code = 1;
    master_stop(m, "spool directory gone");
}

static void master_checks(struct master *m)
{
    int64_t now = io_now_ms();
    if (!m->stopping && m->watch.infd >= 0 && watch_gone(&m->watch))
        master_spool_gone(m);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid > 0 && w->file && now - w->last_change_ms > m->cfg.stall_timeout_s * 1000LL) {
            char esc[NAME_MAX * 4 + 8];
            log_printf(LOG_ERR, "worker %d made no progress on %s for %d s; killing it",
                       (int)w->pid, master_esc(w->file->name, esc, sizeof(esc)),
                       m->cfg.stall_timeout_s);
            kill(w->pid, SIGKILL);
            w->last_change_ms = now; /* don't repeat until reaped */
        }
    }
    if (m->stopping) {
        if (!m->killed_all && now - m->stop_started_ms > m->cfg.stop_timeout_s * 1000LL) {
            log_printf(LOG_WARNING, "workers did not stop within %d s; killing them",
                       m->cfg.stop_timeout_s);
            for (int i = 0; i < MASTER_MAX_WORKERS; i++)
                if (m->workers[i].pid > 0)
                    kill(m->workers[i].pid, SIGKILL);
            m->killed_all = 1;
        }
    } else {
        master_fill_pool(m);
    }
    if (!m->ready_sent && !m->stopping) {
        int all = master_nworkers(m, 0) >= m->cfg.workers;
        for (int i = 0; i < MASTER_MAX_WORKERS; i++)
            if (m->workers[i].pid > 0 && !m->workers[i].ready)
                all = 0;
        if (all) {
            notify_ready(&m->notify);
            m->ready_sent = 1;
            log_printf(LOG_INFO, "ready: %d workers x %d packer threads, watching %s/%s%s",
                       m->cfg.workers, m->cfg.threads, m->watch.dir, m->watch.glob,
                       m->cfg.oneshot ? " (one-shot)" : "");
        }
    }
    notify_watchdog(&m->notify);
    master_status(m, 0);
    if (m->tty)
        master_tty_draw(m);
}

/* One-shot: done when nothing is queued, settling or loading. */
static int master_oneshot_done(struct master *m)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i]->state == F_QUEUED || m->files[i]->state == F_SETTLE ||
            m->files[i]->state == F_LOADING)
            return 0;
    return m->ready_sent;
}

/* ---- reload -------------------------------------------------------------- */

static int master_open_watch(struct master *m, struct watch *w)
{
    char dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    cfg_split_pattern(m->cfg.pattern, dir, sizeof(dir), glob, sizeof(glob));
    int r = watch_open(w, dir, glob, !m->cfg.oneshot);
    if (r < 0)
        log_printf(LOG_ERR, "cannot watch spool directory %s: %s", dir, strerror(-r));
    return r;
}

static void master_reload(struct master *m)
{
    struct cfg n;
    struct memc_map map;
    char err[512];
    int exit_now;
    notify_reloading(&m->notify);
    int r = cfg_load(&n, m->argc, m->argv, err, sizeof(err), &exit_now);
    if (r || exit_now || memc_map_init(&map, &n, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
        notify_ready(&m->notify);
        return;
    }
    n.oneshot = m->cfg.oneshot;
    n.dry = m->cfg.dry;
    int new_spool = strcmp(n.pattern, m->cfg.pattern) != 0;
    struct cfg old = m->cfg;
    m->cfg = n;
    if (new_spool) {
        struct watch w;
        if (master_open_watch(m, &w) < 0) {
            m->cfg = old;
            memc_map_free(&map);
            notify_ready(&m->notify);
            return;
        }
        /* Files of the old spool that are not loading are forgotten. */
        for (size_t i = m->nfiles; i-- > 0;)
            if (m->files[i]->state != F_LOADING)
                master_remove(m, i);
        if (m->watch.infd >= 0)
            epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->watch.infd, NULL);
        watch_close(&m->watch);
        m->watch = w;
        if (w.infd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_INOTIFY};
            epoll_ctl(m->epfd, EPOLL_CTL_ADD, w.infd, &ev);
        }
        master_rescan(m);
    }
    memc_map_free(&m->map);
    m->map = map;
    log_set_level(n.log_level);
    for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct mworker *w = &m->workers[i];
        if (w->pid <= 0)
            continue;
        w->retiring = 1;
        if (!w->file)
            master_quit_worker(w);
    }
    m->fast_deaths = 0;
    m->respawn_at_ms = 0;
    master_fill_pool(m);
    log_printf(LOG_INFO,
               "configuration reloaded; %d new workers take it, files in flight "
               "finish with the old one",
               n.workers);
    notify_ready(&m->notify);
}

/* ---- events -------------------------------------------------------------- */

static void master_on_signal(struct master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            master_stop(m, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        case SIGHUP:
            if (!m->stopping)
                master_reload(m);
            break;
        case SIGCHLD:
            master_reap(m);
            break;
        }
    }
}

static void master_on_worker(struct master *m, struct mworker *w)
{
    struct ipc_msg msg;
    int fd;
    for (;;) {
        int r = ipc_recv(w->sock, &msg, &fd, MSG_DONTWAIT);
        if (fd >= 0)
            close(fd);
        if (r == -EINTR)
            continue;
        if (r == -EAGAIN)
            return;
        if (r <= 0) {
            /* closed or broken: stop listening; SIGCHLD does the rest */
            epoll_ctl(m->epfd, EPOLL_CTL_DEL, w->sock, NULL);
            return;
        }
        switch (msg.type) {
        case IPC_HELLO:
            w->ready = 1;
            break;
        case IPC_PROGRESS:
            if (w->file && msg.job == w->job) {
                if (master_progressed(&msg.st, &w->progress))
                    w->last_change_ms = io_now_ms();
                w->progress = msg.st;
                w->down_mask = msg.down_mask;
            }
            break;
        case IPC_RESULT:
            master_result(m, w, &msg);
            break;
        }
    }
}

static int master_setup(struct master *m)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    m->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (m->sigfd < 0 || m->epfd < 0 || m->timerfd < 0) {
        log_printf(LOG_ERR, "cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    struct itimerspec its = {{0, 100000000}, {0, 100000000}};
    timerfd_settime(m->timerfd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = TAG_SIG;
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev);
    ev.data.u64 = TAG_TIMER;
    epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->timerfd, &ev);
    if (master_open_watch(m, &m->watch) < 0)
        return -1;
    if (m->watch.infd >= 0) {
        ev.data.u64 = TAG_INOTIFY;
        epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->watch.infd, &ev);
    }
    return 0;
}

int master_run(const struct cfg *c, int argc, char **argv)
{
    struct master *m = calloc(1, sizeof(*m));
    char err[512];
    int code = 1;
    if (!m)
        return 1;
    m->cfg = *c;
    m->argc = argc;
    m->argv = argv;
    m->sigfd = m->epfd = m->timerfd = -1;
    m->watch.dirfd = m->watch.infd = -1;
    notify_init(&m->notify);
    /* On a terminal the progress lines and the summary table replace the
     * per-file info lines; warnings and errors still show. */
    m->tty = c->oneshot && isatty(STDERR_FILENO);
    if (m->tty) {
        log_set_stderr_hook(master_tty_erase, m);
        if (c->log_level == CFG_LOG_INFO)
            log_set_level(LOG_WARNING);
    }
    if (memc_map_init(&m->map, c, err, sizeof(err)) < 0) {
        log_printf(LOG_ERR, "%s", err);
        code = CFG_EX_CONFIG;
        goto out;
    }
    if (master_setup(m) < 0)
        goto out;
    master_rescan(m);
    master_fill_pool(m);

    for (;;) {
        struct epoll_event evs[32];
        int n = epoll_wait(m->epfd, evs, 32, 1000);
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_SIG) {
                master_on_signal(m);
            } else if (tag == TAG_TIMER) {
                uint64_t ticks;
                if (read(m->timerfd, &ticks, sizeof(ticks)) < 0)
                    ticks = 0;
            } else if (tag == TAG_INOTIFY) {
                int r = watch_read(&m->watch, master_add, m);
                if (r == -EOVERFLOW) {
                    log_printf(LOG_WARNING, "inotify queue overflowed; rescanning %s",
                               m->watch.dir);
                    master_rescan(m);
                } else if (r < 0) {
                    master_spool_gone(m);
                }
            } else if (tag >= TAG_WORKER && tag < TAG_WORKER + MASTER_MAX_WORKERS) {
                struct mworker *w = &m->workers[tag - TAG_WORKER];
                if (w->pid > 0)
                    master_on_worker(m, w);
            }
        }
        master_dispatch(m);
        master_renames(m);
        master_checks(m);
        if (m->cfg.oneshot && !m->stopping && master_oneshot_done(m)) {
            m->stopping = 1; /* quietly: QUIT every worker */
            m->stop_started_ms = io_now_ms();
            for (int i = 0; i < MASTER_MAX_WORKERS; i++)
                if (m->workers[i].pid > 0)
                    master_quit_worker(&m->workers[i]);
        }
        if (m->stopping && master_nworkers(m, 0) + master_nworkers(m, 1) == 0)
            break;
    }
    master_renames(m);
    master_status(m, 1);
    if (m->tty)
        master_tty_summary(m);
    code = m->exit_code;
    if (m->cfg.oneshot) {
        for (size_t i = 0; i < m->nfiles; i++)
            if (m->files[i]->state == F_QUEUED || m->files[i]->state == F_SETTLE ||
                m->files[i]->state == F_LOADING)
                m->any_left = 1;
        if (!code)
            code = m->any_failed ? MASTER_EX_FAILED : m->any_left ? MASTER_EX_TEMPFAIL : 0;
    }
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    log_printf(LOG_INFO, "exiting with status %d (master peak RSS %ld KiB)", code, self.ru_maxrss);
out:
    log_set_stderr_hook(NULL, NULL);
    free(m->results);
    while (m->nfiles)
        master_remove(m, m->nfiles - 1);
    free(m->files);
    memc_map_free(&m->map);
    watch_close(&m->watch);
    if (m->epfd >= 0)
        close(m->epfd);
    if (m->sigfd >= 0)
        close(m->sigfd);
    if (m->timerfd >= 0)
        close(m->timerfd);
    free(m);
    return code;
}

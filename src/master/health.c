/*
 * health.c — probing memcached identities (see health.h).
 *
 * One short connection per probe: connect (non-blocking), write "stats",
 * read to "END", close.  A server that does not answer within timeout_ms
 * is down until it answers again; when it does, its identity is compared
 * with the last one known (a restart while it was unreachable shows here).
 * A first identity ever seen is only recorded: memc-load cannot know what
 * the server held before it existed.
 */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "conn.h"
#include "proto.h"
#include "route.h"

/* "name pid start" per line; unknown names are ignored. */
static void health_load(struct health *h)
{
    FILE *f = h->state_file[0] ? fopen(h->state_file, "r") : NULL;
    if (!f)
        return;
    char name[320];
    long pid;
    long long start;
    while (fscanf(f, "%319s %ld %lld", name, &pid, &start) == 3)
        for (int i = 0; i < h->map->nservers; i++)
            if (strcmp(h->map->servers[i].name, name) == 0) {
                h->s[i].pid = h->s[i].saved_pid = pid;
                h->s[i].start = h->s[i].saved_start = start;
            }
    fclose(f);
}

/* write + fsync + rename: a crash leaves the old file or the new one.
 * 0 or -errno. */
static int health_write(struct health *h, const char *tmp)
{
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    for (int i = 0; i < h->map->nservers; i++)
        if (h->s[i].saved_pid)
            fprintf(f, "%s %ld %lld\n", h->map->servers[i].name, h->s[i].saved_pid,
                    h->s[i].saved_start);
    int e = fflush(f) != 0 || fsync(fileno(f)) < 0 ? -errno : 0;
    if (fclose(f) != 0 && !e)
        e = -errno;
    if (!e && rename(tmp, h->state_file) < 0)
        e = -errno;
    if (e)
        unlink(tmp);
    return e;
}

/* A failed write is tried again every 5 s (health_tick): the file never
 * stays stale, or a later start would see a restart that did not happen. */
static void health_save(struct health *h, int64_t now)
{
    if (!h->state_file[0])
        return;
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", h->state_file);
    int e = health_write(h, tmp);
    if (e && !h->save_failed)
        log_printf(LOG_WARNING, "cannot write %s: %s; trying again every 5 s", h->state_file,
                   strerror(-e));
    else if (!e && h->save_failed)
        log_printf(LOG_NOTICE, "%s written", h->state_file);
    h->save_failed = e != 0;
    h->save_at_ms = now + 5000;
}

void health_commit(struct health *h, uint32_t mask)
{
    int changed = 0;
    for (int i = 0; i < h->map->nservers; i++)
        if ((mask >> i & 1) && h->s[i].pid &&
            (h->s[i].saved_pid != h->s[i].pid || h->s[i].saved_start != h->s[i].start)) {
            h->s[i].saved_pid = h->s[i].pid;
            h->s[i].saved_start = h->s[i].start;
            changed = 1;
        }
    if (changed)
        health_save(h, io_now_ms());
}

void health_init(struct health *h, const struct memc_map *map, int epfd, uint64_t tag,
                 int interval_ms, int timeout_ms, const char *state_dir)
{
    memset(h, 0, sizeof(*h));
    h->map = map;
    h->epfd = epfd;
    h->tag = tag;
    h->interval_ms = interval_ms;
    h->timeout_ms = timeout_ms;
    for (int i = 0; i < CFG_MAX_SERVERS; i++)
        h->s[i].fd = -1;
    if (state_dir && state_dir[0])
        snprintf(h->state_file, sizeof(h->state_file), "%s/servers", state_dir);
    health_load(h);
}

static void health_close(struct health *h, struct health_server *s)
{
    if (s->fd < 0)
        return;
    if (epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->fd, NULL) < 0 && errno != ENOENT)
        log_printf(LOG_WARNING, "health probe: epoll_ctl(DEL): %s", strerror(errno));
    close(s->fd);
    s->fd = -1;
    s->sent = 0;
    s->len = 0;
}

void health_free(struct health *h)
{
    for (int i = 0; i < CFG_MAX_SERVERS; i++)
        health_close(h, &h->s[i]);
}

/* Non-blocking connect to server i, watched for writability. */
static int health_connect(struct health *h, int i)
{
    char why[128];
    int connecting;
    int fd = memc_dial(&h->map->servers[i], &connecting, why, sizeof(why));
    if (fd < 0)
        return fd;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = h->tag + (uint64_t)i};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        log_printf(LOG_WARNING, "health probe: epoll_ctl(ADD): %s", strerror(e));
        close(fd);
        return -e;
    }
    h->s[i].fd = fd;
    return 0;
}

static void health_down(struct health *h, int i, const char *why)
{
    struct health_server *s = &h->s[i];
    if (s->up)
        log_printf(LOG_DEBUG, "health probe: %s: %s", h->map->servers[i].name, why);
    s->up = 0;
    health_close(h, s);
}

void health_tick(struct health *h, int64_t now)
{
    if (h->save_failed && now >= h->save_at_ms)
        health_save(h, now);
    for (int i = 0; i < h->map->nservers; i++) {
        struct health_server *s = &h->s[i];
        if (s->fd >= 0 && now - s->started_ms > h->timeout_ms)
            health_down(h, i, "no answer to stats");
        if (s->fd >= 0 || now < s->next_ms)
            continue;
        s->started_ms = now;
        s->next_ms = now + h->interval_ms;
        if (health_connect(h, i) < 0)
            health_down(h, i, "cannot connect");
    }
}

/* A whole answer: compare identities.  1 when the server restarted. */
static int health_answer(struct health *h, int i)
{
    struct health_server *s = &h->s[i];
    long pid = (long)mc_stats_value(s->buf, "pid");
    long long start = mc_stats_value(s->buf, "time") - mc_stats_value(s->buf, "uptime");
    health_close(h, s);
    s->up = 1;
    if (pid <= 0)
        return 0;
    /* time and uptime are read at one instant; 2 s of slack all the same */
    int same = s->pid == pid && llabs(s->start - start) <= 2;
    int restarted = s->pid && !same;
    if (!same) {
        s->pid = pid;
        s->start = start;
        if (!restarted) /* the first ever seen: nothing to re-warm */
            health_commit(h, 1u << i);
    }
    return restarted;
}

int health_on_event(struct health *h, int i, int64_t now)
{
    struct health_server *s = &h->s[i];
    (void)now;
    if (s->fd < 0)
        return 0;
    if (!s->sent) {
        int err = 0;
        socklen_t sl = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err ||
            send(s->fd, "stats\r\n", 7, MSG_NOSIGNAL) != 7) {
            health_down(h, i, "connect or send failed");
            return 0;
        }
        s->sent = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = h->tag + (uint64_t)i};
        if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
            health_down(h, i, "epoll_ctl(MOD) failed");
        return 0;
    }
    ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        health_down(h, i, "connection closed");
        return 0;
    }
    s->len += (size_t)n;
    s->buf[s->len] = 0;
    if (strstr(s->buf, "END\r\n"))
        return health_answer(h, i);
    if (s->len == sizeof(s->buf) - 1)
        health_down(h, i, "answer too long");
    return 0;
}

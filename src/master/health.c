/*
 * health.c — probing memcached identities (see health.h).
 *
 * One short connection per probe: connect (non-blocking; TLS and
 * authentication as configured, conn.h), write "stats", read to "END",
 * close.  A server that does not answer within timeout_ms
 * is down until it answers again; when it does, its identity is compared
 * with the last one known (a restart while it was unreachable shows here).
 * A first identity ever seen is only recorded: memc-load cannot know what
 * the server held before it existed.  A classic-protocol type's servers
 * are not probed (memc_map_stats_mask): they may be proxies, whose `stats`
 * is not a memcached's identity, so no restart is seen and no re-warm runs
 * for them.
 */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* "name pid start" per line; unknown names are ignored (health_load). */
int health_state_line(const char *line, char *name, size_t cap, long *pid, long long *start)
{
    char extra;
    int n = sscanf(line, "%319s %ld %lld %c", name, pid, start, &extra);
    return n == 3 && *pid > 0 && strlen(name) < cap;
}

static void health_load(struct health *h)
{
    FILE *f = h->state_file[0] ? fopen(h->state_file, "r") : NULL;
    if (!f)
        return;
    char line[512], name[320];
    long pid;
    long long start;
    while (fgets(line, sizeof(line), f)) {
        if (!health_state_line(line, name, sizeof(name), &pid, &start))
            continue; /* a bad line is skipped, not the rest of the file */
        for (int i = 0; i < h->map->nservers; i++)
            if (strcmp(h->map->servers[i].name, name) == 0) {
                h->s[i].pid = h->s[i].saved_pid = pid;
                h->s[i].start = h->s[i].saved_start = start;
            }
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
    for (int i = 0; i < CFG_MAX_SERVERS; i++) {
        mc_link_init(&h->s[i].link);
        h->s[i].fd = -1;
    }
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
    mc_link_close(&s->link);
    s->fd = -1;
    s->events = 0;
    s->sent = 0;
    s->len = 0;
}

void health_free(struct health *h)
{
    if (!h->map) /* never set up (the master stopped before): nothing open */
        return;
    for (int i = 0; i < CFG_MAX_SERVERS; i++)
        health_close(h, &h->s[i]);
}

void health_in_child(struct health *h)
{
    for (int i = 0; h->map && i < CFG_MAX_SERVERS; i++) {
        mc_link_close(&h->s[i].link);
        h->s[i].fd = -1;
    }
}

/* A probe that failed.  TLS and authentication failures are the
 * operator's to fix: a warning with its MESSAGE_ID, once until the server
 * answers again; anything else is only a debug line (the writer reports
 * a server it cannot load to). */
static void health_down(struct health *h, int i, int kind, const char *why)
{
    struct health_server *s = &h->s[i];
    const struct memc_server *srv = &h->map->servers[i];
    if ((kind == MC_LINK_FAIL_TLS || kind == MC_LINK_FAIL_AUTH) && s->said != kind) {
        char msg[512], f1[320], f2[64];
        snprintf(msg, sizeof(msg), "health probe: memcached %s (%s) %s: %s", srv->name,
                 cfg_type_name(srv->type),
                 kind == MC_LINK_FAIL_TLS ? "refuses TLS" : "refuses authentication", why);
        snprintf(f1, sizeof(f1), "MEMC_SERVER=%s", srv->name);
        snprintf(f2, sizeof(f2), "MEMC_DEVICE_TYPE=%s", cfg_type_name(srv->type));
        log_event(LOG_WARNING, kind == MC_LINK_FAIL_TLS ? LOG_MSGID_MEMC_TLS : LOG_MSGID_MEMC_AUTH,
                  msg, (const char *const[]){f1, f2, NULL});
        s->said = kind;
    } else if (s->up) {
        log_printf(LOG_DEBUG, "health probe: %s: %s", srv->name, why);
    }
    s->up = 0;
    s->down = 1;
    health_close(h, s);
}

uint32_t health_down_mask(const struct health *h)
{
    uint32_t mask = 0;
    for (int g = 0; h->map && g < h->map->nservers; g++)
        mask |= (uint32_t)(h->s[g].down != 0) << g;
    return mask;
}

/* Watch the probe's socket for what its link waits for (add, or modify
 * when that changed). */
static int health_watch(struct health *h, int i, int op)
{
    struct health_server *s = &h->s[i];
    short pev = mc_link_events(&s->link, !s->sent);
    unsigned want = (pev & POLLIN ? EPOLLIN : 0) | (pev & POLLOUT ? EPOLLOUT : 0);
    if (op == EPOLL_CTL_MOD && want == s->events)
        return 0;
    struct epoll_event ev = {.events = want, .data.u64 = h->tag + (uint64_t)i};
    if (epoll_ctl(h->epfd, op, s->fd, &ev) < 0) {
        int e = errno;
        log_printf(LOG_WARNING, "health probe: epoll_ctl: %s", strerror(e));
        return -e;
    }
    s->events = want;
    return 0;
}

/* Start a probe of server i: connect (TLS, auth), watched in epoll. */
static void health_connect(struct health *h, int i)
{
    char why[256];
    struct health_server *s = &h->s[i];
    if (mc_link_start(&s->link, &h->map->servers[i], h->timeout_ms, why, sizeof(why)) < 0) {
        health_down(h, i, s->link.kind, why);
        return;
    }
    s->fd = s->link.fd;
    if (health_watch(h, i, EPOLL_CTL_ADD) < 0) {
        mc_link_close(&s->link); /* never in the epoll set */
        s->fd = -1;
        health_down(h, i, MC_LINK_FAIL_NET, "epoll_ctl(ADD) failed");
    }
}

/* A probe without an answer in time: the link's reason while in setup. */
static void health_timeout(struct health *h, int i)
{
    char why[256];
    struct health_server *s = &h->s[i];
    if (!mc_link_ready(&s->link) && mc_link_step(&s->link, 0, why, sizeof(why)) < 0)
        health_down(h, i, s->link.kind, why);
    else
        health_down(h, i, MC_LINK_FAIL_NET, "no answer to stats");
}

void health_tick(struct health *h, int64_t now)
{
    if (h->save_failed && now >= h->save_at_ms)
        health_save(h, now);
    uint32_t probed = memc_map_stats_mask(h->map);
    for (int i = 0; i < h->map->nservers; i++) {
        struct health_server *s = &h->s[i];
        if (!(probed >> i & 1))
            continue;
        if (s->fd >= 0 && now - s->started_ms > h->timeout_ms)
            health_timeout(h, i);
        if (s->fd >= 0 || now < s->next_ms)
            continue;
        s->started_ms = now;
        s->next_ms = now + h->interval_ms;
        health_connect(h, i);
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
    s->down = 0;
    s->said = 0;
    if (pid <= 0)
        return 0;
    int same = mc_same_instance(s->pid, s->start, pid, start);
    int restarted = s->pid && !same;
    if (!same) {
        s->pid = pid;
        s->start = start;
        if (!restarted) /* the first ever seen: nothing to re-warm */
            health_commit(h, 1u << i);
    }
    return restarted;
}

/* The answer so far: 1 complete, 0 not yet, -1 failed (the probe is
 * closed).  A first line that is not STAT is memcached refusing (its
 * words: CLIENT_ERROR unauthenticated, ERROR, ...). */
static int health_check_answer(struct health *h, int i)
{
    struct health_server *s = &h->s[i];
    long n = mc_line(s->buf, s->len);
    if (n >= 0 && !mc_line_is(s->buf, n, "STAT") && !mc_line_is(s->buf, n, "END")) {
        char esc[64 * 4 + 8], why[320];
        snprintf(why, sizeof(why), "stats answered '%s'",
                 log_escape(s->buf, n > 64 ? 64 : (size_t)n, esc, sizeof(esc)));
        health_down(h, i,
                    mc_line_is(s->buf, n, "CLIENT_ERROR") ? MC_LINK_FAIL_AUTH : MC_LINK_FAIL_NET,
                    why);
        return -1;
    }
    if (strstr(s->buf, "END\r\n"))
        return 1;
    if (s->len == sizeof(s->buf) - 1) {
        health_down(h, i, MC_LINK_FAIL_NET, "answer too long");
        return -1;
    }
    return 0;
}

/* Read what the link has (and what TLS holds decrypted).  1 when the
 * answer is complete, 0 not yet, -1 failed. */
static int health_read(struct health *h, int i)
{
    struct health_server *s = &h->s[i];
    char why[256];
    do {
        ssize_t n =
            mc_link_recv(&s->link, s->buf + s->len, sizeof(s->buf) - 1 - s->len, why, sizeof(why));
        if (n == -EAGAIN)
            return 0;
        if (n <= 0) {
            health_down(h, i, n ? s->link.kind : MC_LINK_FAIL_NET, n ? why : "connection closed");
            return -1;
        }
        s->len += (size_t)n;
        s->buf[s->len] = 0;
        int r = health_check_answer(h, i);
        if (r)
            return r;
    } while (mc_link_pending(&s->link));
    return 0;
}

int health_on_event(struct health *h, int i, int64_t now)
{
    struct health_server *s = &h->s[i];
    char why[256];
    (void)now;
    if (s->fd < 0)
        return 0;
    /* epoll said one of the events asked for happened: a step that is not
     * ready after all just waits again (EAGAIN, SSL_ERROR_WANT_*) */
    short rev = (short)((s->events & EPOLLIN ? POLLIN : 0) | (s->events & EPOLLOUT ? POLLOUT : 0));
    if (!mc_link_ready(&s->link)) {
        int r = mc_link_step(&s->link, rev, why, sizeof(why));
        if (r < 0)
            health_down(h, i, s->link.kind, why);
        else if (r == 0 && health_watch(h, i, EPOLL_CTL_MOD) < 0)
            health_down(h, i, MC_LINK_FAIL_NET, "epoll_ctl(MOD) failed");
        if (r <= 0)
            return 0;
    }
    if (!s->sent) {
        ssize_t n = mc_link_send(&s->link, "stats\r\n", 7, why, sizeof(why));
        if (n != 7 && n != -EAGAIN) {
            health_down(h, i, s->link.kind ? s->link.kind : MC_LINK_FAIL_NET,
                        n < 0 ? why : "short send");
            return 0;
        }
        s->sent = n == 7;
    }
    int r = s->sent ? health_read(h, i) : 0;
    if (r > 0)
        return health_answer(h, i);
    if (r == 0 && health_watch(h, i, EPOLL_CTL_MOD) < 0)
        health_down(h, i, MC_LINK_FAIL_NET, "epoll_ctl(MOD) failed");
    return 0;
}

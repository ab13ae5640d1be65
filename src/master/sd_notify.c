/*
 * sd_notify.c — the notify datagrams to systemd, non-blocking, with rate
 * limiting (see sd_notify.h).
 *
 * The watchdog ping is sent from the master's main loop only, so it stops
 * when that loop stops turning: systemd then restarts us, which is the point.
 */
#include "sd_notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "io.h"

void notify_init(struct notify *n)
{
    memset(n, 0, sizeof(*n));
    n->fd = -1;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        n->watchdog_usec = usec;
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e || (e[0] != '/' && e[0] != '@') || strlen(e) >= sizeof(n->path))
        return;
    snprintf(n->path, sizeof(n->path), "%s", e);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

void notify_close(struct notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

/* One datagram, never blocking: 0, or -1 when the queue is full (or gone). */
static int notify_send(struct notify *n, const char *text)
{
    if (n->fd < 0)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(n->path);
    memcpy(sa.sun_path, n->path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(n->fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
               salen) >= 0)
        return 0;
    n->dropped++;
    return -1;
}

void notify_ready(struct notify *n)
{
    n->ready_pending = notify_send(n, "READY=1") < 0;
}

void notify_flush(struct notify *n)
{
    if (n->ready_pending)
        notify_ready(n);
}

void notify_reloading(struct notify *n)
{
    notify_send(n, "RELOADING=1");
}

void notify_stopping(struct notify *n)
{
    notify_send(n, "STOPPING=1");
}

void notify_status(struct notify *n, const char *text, int force)
{
    int64_t now = io_now_ms();
    if (!force && now - n->last_status_ms < 1000)
        return;
    if (strcmp(text, n->last_status) == 0 && now - n->last_status_ms < 10000)
        return;
    snprintf(n->last_status, sizeof(n->last_status), "%s", text);
    n->last_status_ms = now;
    char msg[1100];
    snprintf(msg, sizeof(msg), "STATUS=%s", text);
    notify_send(n, msg);
}

void notify_watchdog(struct notify *n)
{
    if (!n->watchdog_usec)
        return;
    int64_t now = io_now_ms();
    if ((uint64_t)(now - n->last_watchdog_ms) * 1000 < n->watchdog_usec / 2)
        return;
    if (notify_send(n, "WATCHDOG=1") == 0)
        n->last_watchdog_ms = now;
}

void notify_extend_timeout(struct notify *n, uint64_t usec)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
    notify_send(n, msg);
}

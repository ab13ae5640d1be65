/*
 * sd_notify.c — sd_notify wrappers with rate limiting (see sd_notify.h).
 *
 * The watchdog ping is sent from the master's main loop only, so it stops
 * when that loop stops turning: systemd then restarts us, which is the point.
 */
#include "sd_notify.h"

#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "io.h"

void notify_init(struct notify *n)
{
    memset(n, 0, sizeof(*n));
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        n->watchdog_usec = usec;
}

void notify_ready(struct notify *n)
{
    (void)n;
    sd_notify(0, "READY=1");
}

void notify_reloading(struct notify *n)
{
    (void)n;
    sd_notify(0, "RELOADING=1");
}

void notify_stopping(struct notify *n)
{
    (void)n;
    sd_notify(0, "STOPPING=1");
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
    sd_notifyf(0, "STATUS=%s", text);
}

void notify_watchdog(struct notify *n)
{
    if (!n->watchdog_usec)
        return;
    int64_t now = io_now_ms();
    if ((uint64_t)(now - n->last_watchdog_ms) * 1000 < n->watchdog_usec / 2)
        return;
    n->last_watchdog_ms = now;
    sd_notify(0, "WATCHDOG=1");
}

void notify_extend_timeout(struct notify *n, uint64_t usec)
{
    (void)n;
    sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}

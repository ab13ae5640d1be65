/*
 * sd_notify.h — talking to systemd (sd_notify) from the master.
 *
 * Every call is a no-op outside systemd (no NOTIFY_SOCKET), so the daemon
 * runs the same in a terminal, in tests and under the service manager.
 */
#ifndef MEMC_SD_NOTIFY_H
#define MEMC_SD_NOTIFY_H

#include <stdint.h>

struct notify {
    uint64_t watchdog_usec; /* 0: no watchdog */
    int64_t last_watchdog_ms;
    int64_t last_status_ms;
    char last_status[1024];
};

void notify_init(struct notify *n);
void notify_ready(struct notify *n);
void notify_reloading(struct notify *n);
void notify_stopping(struct notify *n);
/* Sends STATUS= when the text changed, at most once a second (force: now). */
void notify_status(struct notify *n, const char *text, int force);
/* WATCHDOG=1 when half the interval has passed; call from the main loop. */
void notify_watchdog(struct notify *n);
void notify_extend_timeout(struct notify *n, uint64_t usec);

#endif

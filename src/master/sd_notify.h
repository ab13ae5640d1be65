/*
 * sd_notify.h — talking to systemd (sd_notify) from the master.
 *
 * Every call is a no-op outside systemd (no NOTIFY_SOCKET), so the daemon
 * runs the same in a terminal, in tests and under the service manager.
 *
 * The datagrams go out on a non-blocking socket of our own, not through
 * libsystemd's sd_notify(), whose sendmsg() blocks when the receiver's
 * queue is full: a reload storm (each reload sends RELOADING=1 and
 * READY=1) then froze the master's only thread, and the workers behind
 * it.  A READY=1 that finds the queue full is sent again from the next
 * tick; STATUS= and WATCHDOG=1 simply go out again later.
 */
#ifndef MEMC_SD_NOTIFY_H
#define MEMC_SD_NOTIFY_H

#include <stdint.h>

struct notify {
    int fd;                 /* -1: not under systemd */
    char path[108];         /* NOTIFY_SOCKET ('@': abstract) */
    int ready_pending;      /* READY=1 could not be sent yet */
    uint64_t dropped;       /* datagrams the full queue did not take */
    uint64_t watchdog_usec; /* 0: no watchdog */
    int64_t last_watchdog_ms;
    int64_t last_status_ms;
    char last_status[1024];
};

void notify_init(struct notify *n);
/* In a forked worker: the socket is the master's. */
void notify_close(struct notify *n);
/* From the main loop's tick: what a full queue held back. */
void notify_flush(struct notify *n);
void notify_ready(struct notify *n);
void notify_reloading(struct notify *n);
void notify_stopping(struct notify *n);
/* Sends STATUS= when the text changed, at most once a second (force: now). */
void notify_status(struct notify *n, const char *text, int force);
/* WATCHDOG=1 when half the interval has passed; call from the main loop. */
void notify_watchdog(struct notify *n);
void notify_extend_timeout(struct notify *n, uint64_t usec);

#endif

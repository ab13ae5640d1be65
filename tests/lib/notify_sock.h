/*
 * notify_sock.h — a datagram socket standing in for systemd's NOTIFY_SOCKET:
 * the tests read what the daemon tells systemd (READY=1, STATUS=...).
 */
#ifndef MEMC_TEST_NOTIFY_SOCK_H
#define MEMC_TEST_NOTIFY_SOCK_H

#include <stddef.h>

struct h_notify {
    int fd;
    char path[108];
    char *log; /* every message received, one per line */
    size_t len, cap;
};
int h_notify_open(struct h_notify *n, const char *dir);
void h_notify_close(struct h_notify *n);
/* Wait until a message containing what arrives after position *from in the
 * log (from may be NULL: anywhere); returns 0, -1 on timeout. On success
 * *from moves past that message. */
int h_notify_wait(struct h_notify *n, const char *what, size_t *from, int timeout_ms);

#endif

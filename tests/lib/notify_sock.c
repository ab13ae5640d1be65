/*
 * notify_sock.c — the NOTIFY_SOCKET stand-in (see notify_sock.h).
 */
#include "notify_sock.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int h_notify_open(struct h_notify *n, const char *dir)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", n->path);
    if (n->fd < 0 || bind(n->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    n->cap = 1 << 16;
    n->log = calloc(1, n->cap);
    return 0;
}

void h_notify_close(struct h_notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    unlink(n->path);
    free(n->log);
    n->log = NULL;
}

static void h_notify_drain(struct h_notify *n, int timeout_ms)
{
    struct pollfd p = {.fd = n->fd, .events = POLLIN};
    while (poll(&p, 1, timeout_ms) > 0) {
        char buf[4096];
        ssize_t got = recv(n->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (got <= 0)
            break;
        if (n->len + (size_t)got + 2 > n->cap) {
            n->cap = (n->cap + (size_t)got) * 2;
            n->log = realloc(n->log, n->cap);
        }
        memcpy(n->log + n->len, buf, (size_t)got);
        n->len += (size_t)got;
        n->log[n->len++] = '\n';
        n->log[n->len] = 0;
        timeout_ms = 0;
    }
}

int h_notify_wait(struct h_notify *n, const char *what, size_t *from, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        h_notify_drain(n, 20);
        const char *hit = strstr(n->log + (from ? *from : 0), what);
        if (hit) {
            if (from) {
                const char *nl = strchr(hit, '\n');
                *from = (size_t)((nl ? nl : hit) - n->log);
            }
            return 0;
        }
        if (waited >= timeout_ms)
            return -1;
    }
}

/*
 * conn.c — opening a connection to a memcached server (conn.h).
 */
#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Start a non-blocking connect.  Name resolution happens here, on every
 * (re)connect, so a changed DNS entry is picked up after a failure. */
int memc_dial(const struct memc_server *srv, int *connecting, char *why, size_t whylen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    int r = getaddrinfo(srv->host, srv->port, &hints, &res);
    if (r) {
        snprintf(why, whylen, "cannot resolve: %s", gai_strerror(r));
        return -EHOSTUNREACH;
    }
    int err = ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            *connecting = errno == EINPROGRESS;
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(why, whylen, "connect: %s", strerror(err));
    return -err;
}

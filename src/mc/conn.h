/*
 * conn.h — the connection layer: how memc-load reaches a memcached server.
 *
 * Every process that talks to memcached (the writer, the master's health
 * probes, the read-back, verify, --check-config) opens its connections
 * here, so what a connection needs before its first command (today: a
 * non-blocking TCP connect with TCP_NODELAY) is written once.
 */
#ifndef MEMC_CONN_H
#define MEMC_CONN_H

#include <stddef.h>

#include "route.h"

/* A non-blocking TCP connection to srv (TCP_NODELAY): the fd, with
 * *connecting set while connect() is in progress; or -errno, why says it. */
int memc_dial(const struct memc_server *srv, int *connecting, char *why, size_t whylen);

#endif

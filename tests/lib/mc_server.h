/*
 * mc_server.h — real memcached processes for the integration tests, on free
 * loopback ports (started through tests/lib/memcached-start, stopped,
 * killed, paused by PID), and reading values back with libmemcached (an
 * independent client: the bytes we check are the bytes memcached serves).
 */
#ifndef MEMC_TEST_MC_SERVER_H
#define MEMC_TEST_MC_SERVER_H

#include <stddef.h>
#include <sys/types.h>

struct h_mc {
    pid_t pid;
    int port;
};

/* Start memcached with extra args (NULL-terminated, may be NULL). */
int h_mc_start(struct h_mc *mc, const char *const *extra);
int h_mc_start_at(struct h_mc *mc, int port, const char *const *extra);
void h_mc_stop(struct h_mc *mc);
/* n fresh memcached (item counts start at 0: flush_all does not reset
 * curr_items); endpoints, if not NULL, get their "127.0.0.1:port" (malloc'ed,
 * an earlier value freed).  0 or -1. */
int h_mc_start_all(struct h_mc *mc, int n, const char **endpoints);
void h_mc_stop_all(struct h_mc *mc, int n);
void h_mc_kill(struct h_mc *mc); /* SIGKILL */
/* SIGSTOP / SIGCONT. */
void h_mc_pause(struct h_mc *mc, int paused);

/* memcached listening on the UNIX socket path alone (-s path -a 0770). */
int h_mc_start_unix(struct h_mc *mc, const char *path);

/* Fetch a value with libmemcached from the servers "host:port,..." using
 * ketama (as memc-load distributes; a server may be a UNIX socket path or
 * unix:path).  Returns a malloc'ed buffer or NULL. */
char *h_mc_get(const char *servers, const char *key, size_t *len);
/* Number of items memcached holds (stats curr_items). */
long h_mc_items(int port);
/* One number from "stats" (cmd_set, pid, ...); -1 if unreachable. */
long h_mc_stat(int port, const char *name);

/* A loopback port outside the kernel's ephemeral range (as memcached-start
 * picks them: no client connection holds it), not checked for a listener. */
int h_free_port(void);

/* flush_all on one server. */
void h_mc_flush(int port);

/* Build "127.0.0.1:port" in a static rotating buffer. */
const char *h_endpoint(int port);

/* Compare every key of a memc-gen --expect listing with memcached.
 * servers_by_type: addresses for idfa gaid adid dvid (NULL: skip type).
 * Returns the number of mismatches (missing or different), prints the
 * first few; *checked gets the number of keys compared. */
long h_check_expect(const char *expect_path, const char *const servers_by_type[4], long *checked);
/* The same, but a key that is absent is not an error: returns how many of
 * the keys present have the wrong bytes, *present how many are present. */
long h_check_stored(const char *expect_path, const char *const servers_by_type[4], long *present);

#endif

/*
 * harness.h — what the integration tests share: real memcached processes
 * on free loopback ports (started and stopped by PID), gzip files, running
 * memc-load and memc-gen, and reading values back with libmemcached (an
 * independent client: the bytes we check are the bytes memcached serves).
 */
#ifndef MEMC_TEST_HARNESS_H
#define MEMC_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct h_mc {
    pid_t pid;
    int port;
};

/* Start memcached with extra args (NULL-terminated, may be NULL). */
int h_mc_start(struct h_mc *mc, const char *const *extra);
int h_mc_start_at(struct h_mc *mc, int port, const char *const *extra);
void h_mc_stop(struct h_mc *mc);
void h_mc_kill(struct h_mc *mc); /* SIGKILL */
/* SIGSTOP / SIGCONT. */
void h_mc_pause(struct h_mc *mc, int paused);

/* Fetch a value with libmemcached from the servers "host:port,..." using
 * ketama (as memc-load distributes).  Returns a malloc'ed buffer or NULL. */
char *h_mc_get(const char *servers, const char *key, size_t *len);
/* Number of items memcached holds (stats curr_items). */
long h_mc_items(int port);

/* flush_all on one server. */
void h_mc_flush(int port);

/* A datagram socket standing in for systemd's NOTIFY_SOCKET. */
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

/* Wait until path exists (or, gone=1, no longer exists). 0 or -1. */
int h_wait_path(const char *path, int gone, int timeout_ms);
/* Wait until the file's text contains what. 0 or -1. */
int h_wait_text(const char *path, const char *what, int timeout_ms);

/* Drain IN_MOVED_TO events from an inotify fd that watches a spool and
 * count the dot names (our renames; only that name if only != NULL).
 * Returns -1 if they did not come in strictly increasing name order, with
 * the offending pair in why. */
int h_dot_renames(int in, const char *only, char *why, size_t whylen);

/* Child pids of pid (from /proc); returns the count. */
int h_children(pid_t pid, pid_t *out, int max);

void h_sleep_ms(int ms);

/* A fresh temporary directory (removed by h_rmrf). */
char *h_tmpdir(void);
void h_rmrf(const char *dir);

/* gzip text into path (level 6, one member). */
int h_gz_write(const char *path, const void *text, size_t len);

/* Run a program, wait up to timeout_s; returns the exit code, 128+signal
 * when killed, -1 on timeout (the child is killed).  stderr goes to
 * errfile if not NULL. */
int h_run(const char *const *argv, const char *errfile, int timeout_s);

/* Start a program in the background (stderr to errfile); returns its pid. */
pid_t h_spawn(const char *const *argv, const char *errfile);
/* Wait for pid up to timeout_s; exit code as h_run. */
int h_wait(pid_t pid, int timeout_s);

/* Compare every key of a memc-gen --expect listing with memcached.
 * servers_by_type: addresses for idfa gaid adid dvid (NULL: skip type).
 * Returns the number of mismatches (missing or different), prints the
 * first few; *checked gets the number of keys compared. */
long h_check_expect(const char *expect_path, const char *const servers_by_type[4], long *checked);
/* The same, but a key that is absent is not an error: returns how many of
 * the keys present have the wrong bytes, *present how many are present. */
long h_check_stored(const char *expect_path, const char *const servers_by_type[4], long *present);

/* Run memc-gen with args; 0 on success. */
int h_gen(const char *const *args);

/* Read a whole file (NUL-terminated); NULL on error. */
char *h_read_file(const char *path, size_t *len);

/* 1 if path exists. */
int h_exists(const char *path);

/* Build "127.0.0.1:port" in a static rotating buffer. */
const char *h_endpoint(int port);

/* Write a small text file. */
int h_write_file(const char *path, const char *text);

#endif

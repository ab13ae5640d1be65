/*
 * procs.h — child processes for the integration tests: start one in the
 * background, wait for it with a timeout, run one to the end, list a
 * process's children, run memc-gen.
 */
#ifndef MEMC_TEST_PROCS_H
#define MEMC_TEST_PROCS_H

#include <sys/types.h>

void h_sleep_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds. */
long h_now_ms(void);

/* Run a program, wait up to timeout_s; returns the exit code, 128+signal
 * when killed, -1 on timeout (the child is killed).  stderr goes to
 * errfile if not NULL. */
int h_run(const char *const *argv, const char *errfile, int timeout_s);

/* Start a program in the background (stderr to errfile); returns its pid. */
pid_t h_spawn(const char *const *argv, const char *errfile);
/* Wait for pid up to timeout_s; exit code as h_run. */
int h_wait(pid_t pid, int timeout_s);

/* Child pids of pid (from /proc); returns the count. */
int h_children(pid_t pid, pid_t *out, int max);

/* Run memc-gen with args; 0 on success. */
int h_gen(const char *const *args);

#endif

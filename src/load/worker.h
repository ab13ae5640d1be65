/*
 * worker.h — a worker process: one pipeline (threads + memcached
 * connections) serving load requests from the master until told to quit.
 */
#ifndef MEMC_WORKER_H
#define MEMC_WORKER_H

#include "config.h"

/* Runs in the forked child; returns the process exit code. */
int worker_main(const struct cfg *c, int sock);

#endif

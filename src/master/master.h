/*
 * master.h — the process systemd starts: owns the spool queue, the worker
 * pool and every conversation with systemd.  Daemon and --oneshot runs are
 * the same machinery; one-shot just scans once and exits when done.
 */
#ifndef MEMC_MASTER_H
#define MEMC_MASTER_H

#include "config.h"
#include "pool.h"

/* argv is kept for SIGHUP reloads (the command line keeps overriding the
 * config file).  worker is what each forked worker runs (worker_main). */
int master_run(const struct cfg *c, int argc, char **argv, pool_proc_fn worker);

#endif

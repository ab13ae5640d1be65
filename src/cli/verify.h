/*
 * verify.h — reading back what was loaded.
 *
 * `memc-load verify [--sample N] [--seed S] [--json] [config options] FILE...`
 * reads the files with the loader's own pipeline (dry: the same line
 * contract, packer and routing), keeps a bounded random sample of their
 * keys with each key's latest value (sample.h: several files in name order,
 * later line wins), reads the sample back from memcached with pipelined
 * meta gets (`mg <key> v`, all servers at once) and compares the bytes.
 * The read-back itself is load/readback.c, shared with the daemon.
 */
#ifndef MEMC_VERIFY_H
#define MEMC_VERIFY_H

#include <stdint.h>

#include "config.h"

/* `memc-load verify ...` (argv[1] is "verify"); returns the exit status:
 * 0 every sampled record equal, 1 some missing or different, 75 a server
 * unreachable, 66 a file that cannot be read, 64 usage, 78 config. */
int verify_main(int argc, char **argv);

#endif

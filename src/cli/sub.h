/*
 * sub.h — what the subcommands `verify` and `get` share: their command
 * line split into their own options, their operands (files, keys) and the
 * daemon's config options, and the setup from those to a map of servers
 * that TLS and authentication reach, with the messages and exit statuses
 * of any failure on the way.
 */
#ifndef MEMC_SUB_H
#define MEMC_SUB_H

#include <stddef.h>

#include "config.h"
#include "route.h"

struct cli_sub {
    const char *name;    /* "verify", for messages */
    const char *operand; /* "FILE", for "no FILE given" */
    void (*usage)(void); /* --help */
    /* One of its own options at argv[*i] (*i moves past a value): 1 taken,
     * 0 not its own, -1 bad (err says why). */
    int (*own)(void *ctx, int argc, char **argv, int *i, char *err, size_t len);
    void *ctx;
    /* filled by cli_sub_args */
    const char **operands;
    int noperands;
    char **cargv; /* argv[0] and the config options, for cfg_load */
    int cargc;
};

/* Split argv (argv[1] is the subcommand).  0; 1 after --help (printed);
 * 64 with the message said (no operand is an error too). */
int cli_sub_args(struct cli_sub *s, int argc, char **argv);
/* The config as the daemon reads it (its modes refused), the log level,
 * the map and TLS/auth.  0 (free the map), 1 after --help or --version
 * of the config options, or the exit status with the message said. */
int cli_sub_setup(struct cli_sub *s, struct cfg *c, struct memc_map *map);
void cli_sub_free(struct cli_sub *s);

#endif

/*
 * check.h — memc-load --check-config: validate the configuration and try
 * every memcached target, printing a table.
 */
#ifndef MEMC_CHECK_H
#define MEMC_CHECK_H

#include "config.h"

/* Exit status: 0 every target answered (or --no-probe) and the spool
 * directory exists and the service user can write it, 1 otherwise, 78 a
 * server list that does not resolve into a map. */
int check_config(const struct cfg *c);

#endif

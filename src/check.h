/*
 * check.h — memc-load --check-config: validate the configuration and try
 * every memcached target, printing a table.
 */
#ifndef MEMC_CHECK_H
#define MEMC_CHECK_H

#include "config.h"

/* Exit status: 0 every target answered and the spool directory exists,
 * 1 otherwise. */
int check_config(const struct cfg *c);

#endif

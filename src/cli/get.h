/*
 * get.h — `memc-load get [--json] [--raw] [config options] KEY...`: what
 * memcached holds for a few keys, read the way the loader wrote them.
 *
 * Each KEY ("dev_type:dev_id") is routed with the configured distribution
 * by the writer's own route code (mc/route.c), so a found key also proves
 * the route; fetched with `mg <key> v t f` (all servers at once) and its
 * value decoded as UserApps.  Printed per key: device type and id, server,
 * lat, lon, apps, remaining TTL ("never" for none) and the value's size;
 * --json one object per key; --raw the value bytes only.
 */
#ifndef MEMC_GET_H
#define MEMC_GET_H

/* `memc-load get ...` (argv[1] is "get"); returns the exit status: 0 every
 * key found (and a UserApps value), 1 some missing or not UserApps, 75 a
 * server unreachable, 64 usage, 78 config. */
int get_main(int argc, char **argv);

#endif

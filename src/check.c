/*
 * check.c — --check-config.  The spool directory must exist, and every
 * target must take a write.  That reuses the real write path: each target
 * gets a one-record batch setting a probe key, so "ok" means memcached
 * accepted a meta-protocol set, not merely that a TCP port was open.
 */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "memc.h"

int check_config(const struct cfg *c)
{
    struct memc_map map;
    char err[512], dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    if (memc_map_init(&map, c, err, sizeof(err)) < 0) {
        fprintf(stderr, "memc-load: %s\n", err);
        return CFG_EX_CONFIG;
    }
    cfg_split_pattern(c->pattern, dir, sizeof(dir), glob, sizeof(glob));
    /* The daemon would wait for a missing spool (a mount that comes later),
     * but a check says so: most often the pattern is mistyped. */
    struct stat st;
    char spool_why[256] = "";
    if (stat(dir, &st) < 0)
        snprintf(spool_why, sizeof(spool_why), "%s", strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        snprintf(spool_why, sizeof(spool_why), "not a directory");
    printf("config:   %s\n", c->config_file);
    if (spool_why[0])
        printf("spool:    %s (%s)\n", dir, spool_why);
    else
        printf("spool:    %s\n", dir);
    printf("pattern:  %s\nworkers:  %d x %d packer threads\nketama:   distribution = %s\n\n", glob,
           c->workers, c->threads, cfg_distribution_name(c->distribution));
    int bad = 0;
    if (spool_why[0]) {
        fprintf(stderr, "memc-load: spool directory %s (from pattern %s): %s\n", dir, c->pattern,
                spool_why);
        bad = 1;
    }
    printf("%-6s %-32s %s\n", "TYPE", "SERVER", "STATE");
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (!map.count[t])
            printf("%-6s %-32s %s\n", cfg_type_name(t), "-", "not configured (lines are errors)");
        for (int g = map.first[t]; g < map.first[t] + map.count[t]; g++) {
            struct memc_conn conn;
            struct memc_seg seg;
            memset(&seg, 0, sizeof(seg));
            memc_conn_init(&conn, &map.servers[g]);
            static const unsigned char val[] = {0x11, 0, 0, 0, 0, 0, 0, 0, 0,
                                                0x19, 0, 0, 0, 0, 0, 0, 0, 0};
            struct memc_conn *cp = &conn;
            struct memc_seg *sp = &seg;
            int ok =
                memc_seg_add(&seg, "memc-load", 9, "check-config", 12, val, sizeof(val)) == 0 &&
                memc_seg_finish(&seg) == 0;
            if (ok) {
                memc_send(&cp, &sp, 1, c->io_timeout_ms);
                ok = seg.acked == 1 && seg.refused == 0;
            }
            printf("%-6s %-32s %s\n", cfg_type_name(t), map.servers[g].name,
                   ok            ? "ok"
                   : conn.why[0] ? conn.why
                                 : "refused the probe write");
            bad |= !ok;
            memc_conn_close(&conn);
            memc_seg_free(&seg);
        }
    }
    memc_map_free(&map);
    return bad ? 1 : 0;
}

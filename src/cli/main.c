/*
 * main.c — command line to action: `memc-load verify ...` (verify.c),
 * `memc-load get ...` (get.c), self-test, config check, or the master
 * (daemon or --oneshot).
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "pack.h"
#include "check.h"
#include "get.h"
#include "verify.h"
#include "worker.h"

int main(int argc, char **argv)
{
    struct cfg c;
    char err[1024];
    int exit_now = 0;
    if (argc > 1 && strcmp(argv[1], "verify") == 0)
        return verify_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "get") == 0)
        return get_main(argc, argv);
    int r = cfg_load(&c, argc, argv, err, sizeof(err), &exit_now);
    if (exit_now)
        return 0;
    if (r) {
        log_cli(LOG_ERR, "%s", err);
        if (r == MEMC_EXIT_USAGE)
            fprintf(stderr, "Try 'memc-load --help'.\n");
        return r;
    }
    log_init(c.log_level);
    if (c.selftest)
        return pack_selftest() == 0 ? MEMC_EXIT_OK : MEMC_EXIT_FAILED;
    if (c.check_config)
        return check_config(&c);
    return master_run(&c, argc, argv, worker_main);
}

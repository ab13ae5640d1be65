/*
 * sub.c — the subcommands' command line and setup (sub.h).
 */
#include "sub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "exitcode.h"
#include "log.h"

static int cli_sub_usage_error(const struct cli_sub *s, const char *err)
{
    log_cli(LOG_ERR, "%s", err);
    fprintf(stderr, "Try 'memc-load %s --help'.\n", s->name);
    return MEMC_EXIT_USAGE;
}

int cli_sub_args(struct cli_sub *s, int argc, char **argv)
{
    char err[512];
    s->operands = calloc((size_t)argc + 1, sizeof(*s->operands));
    s->cargv = calloc((size_t)argc + 1, sizeof(*s->cargv));
    s->noperands = s->cargc = 0;
    if (!s->operands || !s->cargv)
        return cli_sub_usage_error(s, "out of memory");
    s->cargv[s->cargc++] = argv[0];
    int only_operands = 0;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (only_operands || arg[0] != '-' || !arg[1]) {
            s->operands[s->noperands++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            only_operands = 1;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            s->usage();
            return 1;
        } else {
            int r = s->own(s->ctx, argc, argv, &i, err, sizeof(err));
            if (r < 0)
                return cli_sub_usage_error(s, err);
            if (r)
                continue;
            s->cargv[s->cargc++] = argv[i];
            if (cfg_option_takes_value(arg) && i + 1 < argc)
                s->cargv[s->cargc++] = argv[++i];
        }
    }
    if (s->noperands)
        return 0;
    snprintf(err, sizeof(err), "%s: no %s given", s->name, s->operand);
    return cli_sub_usage_error(s, err);
}

int cli_sub_setup(struct cli_sub *s, struct cfg *c, struct memc_map *map)
{
    char err[1024];
    int exit_now = 0;
    int r = cfg_load(c, s->cargc, s->cargv, err, sizeof(err), &exit_now);
    if (!r && exit_now)
        return 1;
    if (!r && (c->oneshot || c->dry || c->selftest || c->check_config)) {
        snprintf(err, sizeof(err), "%s: --oneshot, --dry, -t and --check-config do not apply",
                 s->name);
        r = MEMC_EXIT_USAGE;
    }
    if (r == MEMC_EXIT_USAGE)
        return cli_sub_usage_error(s, err);
    if (r) {
        log_cli(LOG_ERR, "%s", err);
        return r;
    }
    log_init(c->log_level);
    if (memc_map_init(map, c, err, sizeof(err)) < 0) {
        log_cli(LOG_ERR, "%s", err);
        return MEMC_EXIT_CONFIG;
    }
    if (mc_link_configure(c, err, sizeof(err)) < 0) { /* TLS and auth, conn.h */
        log_cli(LOG_ERR, "%s", err);
        memc_map_free(map);
        return MEMC_EXIT_CONFIG;
    }
    return 0;
}

void cli_sub_free(struct cli_sub *s)
{
    free(s->operands);
    free(s->cargv);
    s->operands = NULL;
    s->cargv = NULL;
}

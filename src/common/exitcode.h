/*
 * exitcode.h — memc-load's exit statuses, the one list.  sysexits.h values
 * where one fits, so scripts and systemd's RestartPreventExitStatus= read
 * them the usual way; the man page's EXIT STATUS and --help follow this.
 */
#ifndef MEMC_EXITCODE_H
#define MEMC_EXITCODE_H

enum memc_exit {
    MEMC_EXIT_OK = 0,
    MEMC_EXIT_FAILED = 1, /* a file failed (error rate, corrupt); verify: records differ */
    MEMC_EXIT_USAGE = 64, /* EX_USAGE: a bad command line */
    MEMC_EXIT_NOINPUT =
        66, /* EX_NOINPUT: no spool directory (one-shot), a file verify cannot read */
    MEMC_EXIT_SOFTWARE = 70, /* EX_SOFTWARE: out of memory, an internal error */
    MEMC_EXIT_TEMPFAIL = 75, /* EX_TEMPFAIL: memcached unreachable, a file left, the spool locked */
    MEMC_EXIT_CONFIG = 78,   /* EX_CONFIG: a bad config file */
};

#endif

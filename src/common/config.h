/*
 * config.h — memc-load settings: built-in defaults, the config file
 * (`key = value`, `#` comments) and the command line, in that order of
 * precedence (command line wins).
 *
 * A struct cfg is a plain value: it owns no pointers, so it can be copied,
 * compared and handed to a forked worker without any fix-ups.  That is also
 * what makes SIGHUP reload simple: parse a new struct cfg, and if it is valid,
 * new workers get the new copy while old ones finish with theirs.
 */
#ifndef MEMC_CONFIG_H
#define MEMC_CONFIG_H

#include "exitcode.h"

#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_TYPES 4    /* idfa gaid adid dvid */
#define CFG_MAX_SERVERS 32 /* all servers of all device types together */
#define CFG_ADDR_LEN 1024  /* a device type's "host:port,host:port" list */
#define CFG_PATH_LEN 1024
#define CFG_MAX_RATE 100000000 /* records/s: the highest max_rate, rewarm_max_rate */

/* The installed config: CMake passes CMAKE_INSTALL_FULL_SYSCONFDIR, so a
 * build for /usr/local reads /usr/local/etc/memc-load/memc-load.conf. */
#ifndef MEMC_SYSCONFDIR
#define MEMC_SYSCONFDIR "/etc"
#endif
#define CFG_DEFAULT_FILE MEMC_SYSCONFDIR "/memc-load/memc-load.conf"

enum cfg_log_level { CFG_LOG_ERR = 3, CFG_LOG_WARNING = 4, CFG_LOG_INFO = 6, CFG_LOG_DEBUG = 7 };

/* How keys are spread over the servers of one device type (see mc/route.c):
 * which readers find them depends on it (README, "Scaling out"). */
enum cfg_distribution {
    CFG_DIST_KETAMA,          /* libmemcached MEMCACHED_BEHAVIOR_KETAMA */
    CFG_DIST_KETAMA_WEIGHTED, /* libketama-compatible: MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED */
    CFG_DIST_MODULA,          /* libmemcached MEMCACHED_DISTRIBUTION_MODULA with `hash` */
    CFG_DIST_PYTHON_MEMCACHE, /* python-memcache: ((crc32 >> 16) & 0x7fff or 1) % servers */
    CFG_DIST_RENDEZVOUS,      /* pymemcache HashClient: highest murmur3("host:port-key") */
};

/* The key hash of distribution = modula: libmemcached's hashes (mc/route.c
 * maps each to its MEMCACHED_HASH_*; hsieh is not built into Debian's). */
enum cfg_hash {
    CFG_HASH_DEFAULT, /* one-at-a-time (Jenkins), libmemcached's default */
    CFG_HASH_MD5,
    CFG_HASH_CRC, /* (crc32 >> 16) & 0x7fff, as Cache::Memcached */
    CFG_HASH_FNV1_64,
    CFG_HASH_FNV1A_64,
    CFG_HASH_FNV1_32,
    CFG_HASH_FNV1A_32,
    CFG_HASH_MURMUR, /* libmemcached's MurmurHash2 */
    CFG_HASH_JENKINS,
    CFG_HASH_MURMUR3, /* libmemcached's MurmurHash3 (seeded by the key length) */
};

/* TLS and ASCII authentication on memcached connections (mc/tls.c): the
 * global settings (tls, tls_ca_file, ..., auth_password_file), and per
 * device type ones (idfa_tls, ...) that lie over them: CFG_TLS_INHERIT and
 * "" take the global value. */
enum cfg_tls_mode { CFG_TLS_INHERIT, CFG_TLS_OFF, CFG_TLS_ON };
struct cfg_secure {
    int tls;                               /* enum cfg_tls_mode */
    char tls_ca_file[CFG_PATH_LEN];        /* CA bundle to verify the server ("" = the system's) */
    char tls_cert_file[CFG_PATH_LEN];      /* client certificate chain ("" = none) */
    char tls_key_file[CFG_PATH_LEN];       /* its private key (a secret file) */
    char tls_server_name[256];             /* name to verify ("" = the host of the address) */
    char auth_user[256];                   /* memcached -Y user ("" = no authentication) */
    char auth_password_file[CFG_PATH_LEN]; /* its password (a secret file) */
};

/* How memc-load talks to a device type's servers (write.c, readback.c,
 * ...): memcached's meta commands, or the classic text protocol that
 * proxies (twemproxy, mcrouter) speak.  idfa_protocol, ... may say
 * "inherit": the global protocol. */
enum cfg_protocol { CFG_PROTO_INHERIT, CFG_PROTO_META, CFG_PROTO_CLASSIC };

struct cfg {
    char config_file[CFG_PATH_LEN];
    char pattern[CFG_PATH_LEN];
    /* Addresses per device type, index = position in cfg_type_names(); an
     * empty string means the type is not configured (its lines are errors). */
    char addr[CFG_MAX_TYPES][CFG_ADDR_LEN];

    int workers;            /* worker processes */
    int threads;            /* packer threads per worker */
    double error_threshold; /* error rate at or above which a file "failed" */
    int log_level;          /* syslog priority, enum cfg_log_level */
    size_t block_bytes;     /* inflated bytes per batch handed to packers */
    size_t max_line_bytes;  /* longer lines are error lines */
    int io_timeout_ms;      /* one memcached read/write/connect making no progress */
    int stall_timeout_s;    /* master kills a worker that reports no progress */
    int retry_interval_s;   /* a file left because memcached was down is retried after */
    int stop_timeout_s;     /* SIGTERM -> SIGKILL escalation for workers at shutdown */
    int settle_ms;          /* a file not renamed in waits until its stat is unchanged this long */
    int distribution;       /* enum cfg_distribution */
    int hash;               /* enum cfg_hash: the key hash of distribution = modula */
    int verify_sample;      /* records of each loaded file read back (0 = off) */
    int health_interval_s;  /* how often every memcached is asked for its identity */
    long rewarm_max_age_s;  /* retained files this young re-warm a restarted server (0 = off) */
    long retain_s;          /* finished .NAME files older than this are removed (0 = kept;
                             * CFG_AGE_SAME: rewarm_max_age; read it with cfg_retain_s) */
    long retain_failed_s;   /* .NAME.failed files (CFG_AGE_SAME: retain; cfg_retain_failed_s) */
    size_t retain_bytes;    /* the finished files may add up to this (0 = no cap) */
    int max_rate;           /* records/s to each server, loads and re-warms (0 = unlimited) */
    int rewarm_max_rate;    /* ... re-warms alone: the smaller non-zero of the two applies */
    long exptime_s;         /* records expire this long after their file's time (0 = never) */
    long type_exptime_s[CFG_MAX_TYPES]; /* ... per device type (CFG_AGE_SAME: exptime;
                                         * read it with cfg_exptime_s) */
    char state_dir[CFG_PATH_LEN];       /* server identities across restarts ("" = none) */
    char metrics_file[CFG_PATH_LEN];    /* Prometheus textfile ("" = none) */
    struct cfg_secure secure;           /* every connection's TLS and auth */
    struct cfg_secure type_secure[CFG_MAX_TYPES]; /* ... per device type, over secure */
    int protocol;                                 /* enum cfg_protocol, not INHERIT */
    int type_protocol[CFG_MAX_TYPES];             /* ... per device type (INHERIT: protocol) */

    int oneshot;
    int dry;
    int selftest;
    int check_config;
    int no_probe;  /* --check-config --no-probe: no memcached writes (ExecReload=) */
    int wait_lock; /* --wait-lock: wait for another instance to release the spool */

    /* Not from the file: set by the master on a reload that changed a
     * type's ring, the server list and distribution the servers' data
     * follows ("" = unchanged); a ring re-warm sends the records whose
     * owner differs between that ring and addr (master.c, pipeline.c). */
    char ring_prev[CFG_MAX_TYPES][CFG_ADDR_LEN];
    int ring_prev_distribution, ring_prev_hash;
};

/* An age key left at its default word ("retain = rewarm_max_age"): it
 * follows that key. */
#define CFG_AGE_SAME (-1L)
/* retain and retain_failed as they apply (CFG_AGE_SAME resolved), seconds;
 * 0 = no age limit. */
long cfg_retain_s(const struct cfg *c);
long cfg_retain_failed_s(const struct cfg *c);
/* The exptime of a device type's records (its own, else exptime), seconds;
 * 0 = they never expire (common/expiry.h). */
long cfg_exptime_s(const struct cfg *c, int type);
/* An age the way the file would write it: "7d", "36h", "90m", "45s", "0". */
const char *cfg_fmt_age(long s, char *buf, size_t len);
/* A size the way the file would write it: "4k", "256M", "50G", "1000". */
const char *cfg_fmt_size(long n, char *buf, size_t len);

/* The protocol of a device type's servers: CFG_PROTO_META or
 * CFG_PROTO_CLASSIC (its own setting, else the global one). */
int cfg_protocol(const struct cfg *c, int type);
/* "meta" or "classic" (the config value). */
const char *cfg_protocol_name(int protocol);

/* Device type names in table order: "idfa", "gaid", "adid", "dvid". */
const char *cfg_type_name(int type);

/* "ketama", "ketama_weighted", "modula", ... (the config value). */
const char *cfg_distribution_name(int distribution);
/* "default", "crc", ... (the config value of `hash`). */
const char *cfg_distribution_hash_name(int hash);

void cfg_defaults(struct cfg *c);

/*
 * Parse the command line into *c (after defaults), find the config file
 * (--config, else the default path if it exists), load it, then apply the
 * command line again so it overrides the file.  Writes a message to err on
 * failure and returns 0, MEMC_EXIT_USAGE or MEMC_EXIT_CONFIG.  Returns 0 with
 * *exit_now set for --help / --version (already printed).
 */
int cfg_load(struct cfg *c, int argc, char **argv, char *err, size_t errlen, int *exit_now);

/* Parse one config file into *c.  0 on success, MEMC_EXIT_CONFIG with a
 * "file:line: key: reason" message otherwise (a key given twice names both
 * lines).  A missing file is an error. */
int cfg_parse_file(struct cfg *c, const char *path, char *err, size_t errlen);

/* Parse config text (used by cfg_parse_file, the fuzzer and the tests);
 * name is used in messages only. */
int cfg_parse_text(struct cfg *c, const char *name, const char *text, size_t len, char *err,
                   size_t errlen);

/* Cross-field checks (at least one device type, a usable pattern, ...). */
int cfg_validate(const struct cfg *c, char *err, size_t errlen);

/* Split the pattern into its directory and file glob parts. */
int cfg_split_pattern(const char *pattern, char *dir, size_t dirlen, char *glob, size_t globlen);

/* 1 if the command-line argument is an option of cfg_load's that takes
 * its value from the next argument ("--idfa", "-c"; not "--idfa=..."):
 * `memc-load verify` passes those through and takes the rest as files. */
int cfg_option_takes_value(const char *arg);

/* Print the --help text to stdout. */
void cfg_usage(void);

/* One row of the settings table that config.c is built on: a config-file
 * key, a command-line option, or both. */
struct cfg_key_info {
    const char *key;    /* config-file key; NULL: a command-line option only */
    const char *option; /* long option without "--"; NULL: a config-file key only */
    char short_option;  /* or 0 */
    const char *def;    /* the default as the file would spell it; NULL: none */
};

/* Row i (0, 1, ...) of the table into *out: 0, or -1 past the end. */
int cfg_key_at(int i, struct cfg_key_info *out);

#endif

/*
 * check.c — --check-config.  The spool directory must exist and the service
 * user must be able to create and rename files in it, and every target must
 * take a write.  That reuses the real write path: each target gets a
 * one-record batch setting a probe key, so "ok" means memcached accepted a
 * meta-protocol set, not merely that a TCP port was open (a classic-protocol
 * type's: a classic set, with the same short exptime).  Each server's `stats` adds
 * its memory limit, item count and evictions: a server that evicts is too
 * small for the data (the eviction warning, worker.c).  A classic-protocol
 * type's servers may be proxies: no `stats` for them, and the row says
 * what that leaves out.
 * --no-probe (the unit's ExecReload=) leaves memcached alone: a reload must
 * not depend on every server answering.  The TLS contexts and credentials
 * are built either way (a missing certificate or a password file others
 * can read fails the check, 78); a probe over TLS prints the server's
 * certificate (subject, issuer, expiry) and warns when it expires within
 * CHECK_CERT_WARN_DAYS.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "io.h"
#include "log.h"
#include "route.h"
#include "write.h"
#include "stats.h"

/* The probe key (memc-load:check-config) expires after this many seconds:
 * a check leaves nothing behind on production servers. */
#define CHECK_PROBE_TTL_S 60

/* Where the report goes: stdout, or a buffer that is dropped when a check
 * under the journal passes (check_config). */
static FILE *check_out;

/* A server certificate that expires sooner than this is a warning. */
#define CHECK_CERT_WARN_DAYS 14

/* The user the unit runs the daemon as (systemd/memc-load.service.in,
 * systemd/memc-load.sysusers). */
#define CHECK_SERVICE_USER "memc-load"

/* Can the service user create and rename files in dir?  Run as that user
 * (ExecReload=, or the operator as memc-load) it is our own access(); run as
 * root, a child switches to the service user and asks the kernel, so groups,
 * ACLs and read-only mounts all count.  who names the user checked; why is
 * empty when writable. */
static void check_spool_writable(const char *dir, char *who, size_t wholen, char *why,
                                 size_t whylen)
{
    why[0] = 0;
    if (geteuid() != 0) {
        struct passwd *me = getpwuid(geteuid());
        if (me)
            snprintf(who, wholen, "%s", me->pw_name);
        else
            snprintf(who, wholen, "uid %d", (int)geteuid());
        if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) < 0)
            snprintf(why, whylen, "%s", strerror(errno));
        return;
    }
    struct passwd *pw = getpwnam(CHECK_SERVICE_USER);
    if (!pw) {
        /* a build-tree run without the service installed: root can write */
        snprintf(who, wholen, "root (no user %s)", CHECK_SERVICE_USER);
        return;
    }
    snprintf(who, wholen, "%s", CHECK_SERVICE_USER);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
            setuid(pw->pw_uid) < 0)
            _exit(255);
        _exit(faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : (errno & 0xff));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st))
        snprintf(why, whylen, "the check as %s crashed", CHECK_SERVICE_USER);
    else if (WEXITSTATUS(st) == 255)
        snprintf(why, whylen, "cannot switch to user %s", CHECK_SERVICE_USER);
    else if (WEXITSTATUS(st))
        snprintf(why, whylen, "%s", strerror(WEXITSTATUS(st)));
}

/* Under a server's row: its TLS session and certificate, and the auth user. */
static void check_secure(const struct memc_map *map, int g, const struct memc_conn *conn)
{
    const struct memc_server *srv = &map->servers[g];
    struct mc_link_peer p;
    const char *user = mc_link_user(srv->type);
    if (mc_link_peer(&conn->link, &p) == 0) {
        fprintf(check_out,
                "       tls:  %s %s; certificate %s, issued by %s, expires %s (%ld days)\n",
                p.protocol, p.cipher, p.subject, p.issuer, p.not_after, p.days_left);
        if (p.days_left < CHECK_CERT_WARN_DAYS) {
            fprintf(check_out, "warning: the certificate of %s (%s) expires in %ld days (%s)\n",
                    srv->name, cfg_type_name(srv->type), p.days_left, p.not_after);
            log_cli(LOG_WARNING, "the TLS certificate of %s expires in %ld days", srv->name,
                    p.days_left);
        }
    }
    if (user[0] && conn->link.authed)
        fprintf(check_out, "       auth: user %s\n", user);
    else if (user[0] && mc_link_ready(&conn->link))
        fprintf(check_out,
                "       auth: none asked for (memcached without -Y): the password of %s was not "
                "sent\n",
                user);
}

/* One server's row: what `stats` says (memory limit, items, evictions) and
 * the probe write.  1 if it took the write (or --no-probe). */
/* How long each configured type's records live in memcached (exptime). */
static void check_expiry(const struct cfg *c)
{
    char line[256] = "", age[32];
    size_t n = 0;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        long e = cfg_exptime_s(c, t);
        if (c->addr[t][0] && n < sizeof(line))
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %s", n ? ", " : "",
                                  cfg_type_name(t), e ? cfg_fmt_age(e, age, sizeof(age)) : "never");
    }
    fprintf(check_out, "expiry:   %s (from each file's mtime)\n", line);
}

/* What spool retention keeps; a warning when it removes files a re-warm
 * would read (retain shorter than rewarm_max_age). */
static void check_retain(const struct cfg *c)
{
    long keep = cfg_retain_s(c), rewarm = c->rewarm_max_age_s;
    char a[32], b[32], cap[32];
    if (c->retain_bytes)
        snprintf(cap, sizeof(cap), "at most %s", cfg_fmt_size((long)c->retain_bytes, b, sizeof(b)));
    fprintf(check_out, "retain:   .NAME %s, .NAME.failed %s, %s\n\n",
            keep ? cfg_fmt_age(keep, a, sizeof(a)) : "forever",
            cfg_retain_failed_s(c) ? cfg_fmt_age(cfg_retain_failed_s(c), b, sizeof(b)) : "forever",
            c->retain_bytes ? cap : "no size cap");
    if (keep && rewarm && keep < rewarm) {
        fprintf(check_out,
                "warning: retain (%s) is shorter than rewarm_max_age (%s): a re-warm finds no "
                "file older than %s\n\n",
                a, cfg_fmt_age(rewarm, b, sizeof(b)), a);
        log_cli(LOG_WARNING,
                "retain (%s) is shorter than rewarm_max_age (%s): a re-warm finds no file older "
                "than %s",
                a, b, a);
    }
}

static int check_server(const struct cfg *c, const struct memc_map *map, int g,
                        const struct mc_stats *st)
{
    const char *type = cfg_type_name(map->servers[g].type), *name = map->servers[g].name;
    char mem[32] = "-", items[32] = "-", ev[32] = "-";
    if (st->ok) {
        snprintf(mem, sizeof(mem), "%llu MiB", (unsigned long long)(st->limit_maxbytes >> 20));
        snprintf(items, sizeof(items), "%llu", (unsigned long long)st->curr_items);
        snprintf(ev, sizeof(ev), "%llu", (unsigned long long)st->evictions);
    }
    if (c->no_probe) {
        fprintf(check_out, "%-6s %-32s %9s %10s %10s  %s\n", type, name, mem, items, ev,
                "not probed");
        return 1;
    }
    struct memc_conn conn;
    struct memc_seg seg;
    int classic = map->servers[g].protocol == CFG_PROTO_CLASSIC;
    memset(&seg, 0, sizeof(seg));
    seg.protocol = map->servers[g].protocol;
    memc_seg_reset(&seg);
    memc_conn_init(&conn, &map->servers[g]);
    static const unsigned char val[] = {0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0x19, 0, 0, 0, 0, 0, 0, 0, 0};
    struct memc_conn *cp = &conn;
    struct memc_seg *sp = &seg;
    int64_t now_s = io_wall_us() / 1000000;
    int ok = memc_seg_expire(&seg, now_s + CHECK_PROBE_TTL_S, now_s) == 0 &&
             memc_seg_add(&seg, "memc-load", 9, "check-config", 12, val, sizeof(val)) == 0 &&
             memc_seg_finish(&seg) == 0;
    if (ok) {
        memc_send(&cp, &sp, 1, c->io_timeout_ms);
        ok = seg.acked == 1 && seg.refused == 0 && seg.unavail == 0;
    }
    fprintf(check_out, "%-6s %-32s %9s %10s %10s  %s\n", type, name, mem, items, ev,
            ok            ? "ok"
            : conn.why[0] ? conn.why
            : seg.unavail ? "the server behind it did not take the probe write"
                          : "refused the probe write");
    if (classic)
        fprintf(check_out,
                "       classic protocol: no stats identity, no re-warm, no eviction counts\n");
    check_secure(map, g, &conn);
    memc_conn_close(&conn);
    memc_seg_free(&seg);
    return ok;
}

static int check_run(const struct cfg *c)
{
    struct memc_map map;
    char err[512], dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    if (memc_map_init(&map, c, err, sizeof(err)) < 0) {
        log_cli(LOG_ERR, "%s", err);
        return MEMC_EXIT_CONFIG;
    }
    if (mc_link_configure(c, err, sizeof(err)) < 0) {
        log_cli(LOG_ERR, "%s", err);
        memc_map_free(&map);
        return MEMC_EXIT_CONFIG;
    }
    cfg_split_pattern(c->pattern, dir, sizeof(dir), glob, sizeof(glob));
    /* The daemon would wait for a missing spool (a mount that comes later),
     * but a check says so: most often the pattern is mistyped. */
    struct stat st;
    char spool_why[256] = "", who[128] = "", write_why[256] = "";
    if (stat(dir, &st) < 0)
        snprintf(spool_why, sizeof(spool_why), "%s", strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        snprintf(spool_why, sizeof(spool_why), "not a directory");
    else
        check_spool_writable(dir, who, sizeof(who), write_why, sizeof(write_why));
    fprintf(check_out, "config:   %s\n", c->config_file);
    if (spool_why[0])
        fprintf(check_out, "spool:    %s (%s)\n", dir, spool_why);
    else if (write_why[0])
        fprintf(check_out, "spool:    %s (not writable by %s: %s)\n", dir, who, write_why);
    else
        fprintf(check_out, "spool:    %s (writable by %s)\n", dir, who);
    fprintf(check_out,
            "pattern:  %s\nworkers:  %d x %d packer threads\nketama:   distribution = %s\n", glob,
            c->workers, c->threads, cfg_distribution_name(c->distribution));
    check_expiry(c);
    check_retain(c);
    int bad = 0;
    if (spool_why[0]) {
        log_cli(LOG_ERR, "spool directory %s (from pattern %s): %s", dir, c->pattern, spool_why);
        bad = 1;
    } else if (write_why[0]) {
        log_cli(LOG_ERR, "spool directory %s: not writable by %s: %s", dir, who, write_why);
        bad = 1;
    }
    struct mc_stats stats[CFG_MAX_SERVERS];
    memset(stats, 0, sizeof(stats));
    if (!c->no_probe &&
        mc_stats_fetch(&map, memc_map_stats_mask(&map), c->io_timeout_ms, stats) < 0)
        memset(stats, 0, sizeof(stats));
    fprintf(check_out, "%-6s %-32s %9s %10s %10s  %s\n", "TYPE", "SERVER", "MEMORY", "ITEMS",
            "EVICTIONS", "STATE");
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        if (!map.count[t])
            fprintf(check_out, "%-6s %-32s %9s %10s %10s  %s\n", cfg_type_name(t), "-", "", "", "",
                    "not configured (lines are errors)");
        for (int g = map.first[t]; g < map.first[t] + map.count[t]; g++)
            bad |= !check_server(c, &map, g, &stats[g]);
    }
    for (int g = 0; g < map.nservers; g++)
        if (stats[g].ok && stats[g].evictions)
            fprintf(check_out,
                    "note: %s (%s) has evicted %llu items since it started: it may be too small "
                    "for the data (memcached -m MEGABYTES)\n",
                    map.servers[g].name, cfg_type_name(map.servers[g].type),
                    (unsigned long long)stats[g].evictions);
    memc_map_free(&map);
    mc_link_unconfigure();
    return bad ? MEMC_EXIT_FAILED : MEMC_EXIT_OK;
}

/*
 * The report, then one line that says how the check ended, as `nginx -t`
 * does.  On the journal stream (ExecReload= runs the check on every
 * `systemctl reload`) a check that passes writes that line alone: its
 * warnings reach the journal by themselves (log_cli); a failing check
 * writes the whole report, the context of its errors.
 */
int check_config(const struct cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    int quiet = log_fd_is_journal(STDOUT_FILENO);
    check_out = quiet ? open_memstream(&buf, &len) : NULL;
    if (!check_out)
        check_out = stdout, quiet = 0;
    int st = check_run(c);
    if (quiet) {
        fclose(check_out);
        if (st != MEMC_EXIT_OK)
            fwrite(buf, 1, len, stdout);
        free(buf);
    }
    check_out = stdout;
    fflush(stdout); /* the report before the verdict, on a terminal too */
    if (st == MEMC_EXIT_OK)
        log_cli(LOG_INFO, "configuration %s: check passed", c->config_file);
    else
        log_cli(LOG_ERR, "configuration %s: check failed", c->config_file);
    return st;
}

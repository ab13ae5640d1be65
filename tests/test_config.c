/*
 * test_config.c — config file and command line: defaults, every key,
 * precedence, the settings table (defaults, --help, duplicates), the
 * file:line: key: messages with exit codes 64 / 78, did-you-mean for keys
 * and options, and server address syntax.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int T(const char *text, struct cfg *c, char *err, size_t errlen)
{
    cfg_defaults(c);
    return cfg_parse_text(c, "test.conf", text, strlen(text), err, errlen);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    cfg_defaults(&c);
    assert_string_equal(c.pattern, "/var/spool/memc-load/*.tsv.gz");
    assert_string_equal(c.addr[0], "127.0.0.1:33013");
    assert_string_equal(c.addr[3], "127.0.0.1:33016");
    assert_int_equal(c.workers, 3);
    assert_true(c.error_threshold == 0.01);
    assert_int_equal(c.settle_ms, 2000);
    assert_int_equal(c.distribution, CFG_DIST_KETAMA);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
}

static void test_every_key(void **state)
{
    (void)state;
    struct cfg c;
    char err[256] = "";
    const char *text = "# comment\n"
                       "  pattern = /srv/spool/*.gz   # trailing comment\n"
                       "idfa = 10.0.0.1:11211,10.0.0.2:11211\n"
                       "gaid=h:1\n"
                       "adid =\n"
                       "dvid = [::1]:11211\n"
                       "workers = 5\n"
                       "threads = 2\n"
                       "error_threshold = 0.05\n"
                       "log_level = debug\n"
                       "block_bytes = 1M\n"
                       "max_line_bytes = 64k\n"
                       "io_timeout_ms = 500\n"
                       "retry_interval = 3\n"
                       "stall_timeout = 9\n"
                       "stop_timeout = 4\n"
                       "settle_time = 1.5\n"
                       "distribution = ketama_weighted\n"
                       "\r\n";
    assert_int_equal(T(text, &c, err, sizeof(err)), 0);
    assert_string_equal(c.pattern, "/srv/spool/*.gz");
    assert_string_equal(c.addr[0], "10.0.0.1:11211,10.0.0.2:11211");
    assert_string_equal(c.addr[1], "h:1");
    assert_string_equal(c.addr[2], "");
    assert_string_equal(c.addr[3], "[::1]:11211");
    assert_int_equal(c.workers, 5);
    assert_int_equal(c.threads, 2);
    assert_true(c.error_threshold == 0.05);
    assert_int_equal(c.log_level, CFG_LOG_DEBUG);
    assert_int_equal(c.block_bytes, 1 << 20);
    assert_int_equal(c.max_line_bytes, 64 << 10);
    assert_int_equal(c.io_timeout_ms, 500);
    assert_int_equal(c.retry_interval_s, 3);
    assert_int_equal(c.stall_timeout_s, 9);
    assert_int_equal(c.stop_timeout_s, 4);
    assert_int_equal(c.settle_ms, 1500);
    assert_int_equal(c.distribution, CFG_DIST_KETAMA_WEIGHTED);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
}

static void test_errors_name_file_line_key(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"workers = 3\nbogus = 1\n", "test.conf:2: bogus: unknown key"},
        {"\n\nworkers = zero\n", "test.conf:3: workers: 'zero' is not a whole number"},
        {"workers = 0\n", "test.conf:1: workers: '0' is not a whole number from 1 to 64"},
        {"threads = -1\n", "test.conf:1: threads:"},
        {"error_threshold = 2\n", "test.conf:1: error_threshold: '2' is not a number from 0"},
        {"error_threshold = nan\n", "test.conf:1: error_threshold:"},
        {"log_level = loud\n", "test.conf:1: log_level: 'loud' is not one of"},
        {"idfa = localhost\n", "test.conf:1: idfa: 'localhost' is not host:port"},
        {"idfa = h:99999\n", "test.conf:1: idfa: 'h:99999' has no valid port"},
        {"idfa = h:1,\n", "test.conf:1: idfa: trailing comma"},
        {"gaid = a b:1\n", "test.conf:1: gaid: 'a b:1' contains blanks"},
        {"block_bytes = 1k\n", "test.conf:1: block_bytes: '1k' is not a size"},
        {"max_line_bytes = lots\n", "test.conf:1: max_line_bytes:"},
        {"just words\n", "test.conf:1: expected 'key = value'"},
        {"= 3\n", "test.conf:1: missing key before '='"},
        {"pattern =\n", "test.conf:1: pattern: must be a non-empty path glob"},
        {"settle_time = soon\n", "test.conf:1: settle_time: 'soon' is not a duration"},
        {"settle_time = -1\n", "test.conf:1: settle_time: '-1' is not a duration from 0 to 3600"},
        {"settle_time = 3601\n", "test.conf:1: settle_time: '3601' is not a duration"},
        {"settle_time = 2 min\n", "test.conf:1: settle_time: '2 min' is not a duration"},
        {"settle_time = 0x10\n", "test.conf:1: settle_time: '0x10' is not a duration"},
        {"settle_time = inf\n", "test.conf:1: settle_time: 'inf' is not a duration"},
        {"settle_time =\n", "test.conf:1: settle_time: '' is not a duration"},
        {"distribution = maglev\n",
         "test.conf:1: distribution: 'maglev' is not one of ketama, ketama_weighted, modula, "
         "python_memcache, rendezvous"},
        {"distribution = KETAMA\n", "test.conf:1: distribution: 'KETAMA' is not one of"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char err[512] = "";
        int r = T(cases[i].text, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strncmp(err, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, cases[i].msg);
    }
}

/* settle_time: seconds, fractions and an s / ms unit; 0 allowed (no wait). */
static void test_settle_time(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int ms;
    } cases[] = {
        {"2", 2000}, {"0", 0},         {"0.25", 250},     {"2s", 2000}, {"500ms", 500},
        {"0ms", 0},  {"1.0006", 1001}, {"3600", 3600000}, {".5", 500},  {"3600000ms", 3600000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char text[64], err[512] = "";
        snprintf(text, sizeof(text), "settle_time = %s\n", cases[i].v);
        int r = T(text, &c, err, sizeof(err));
        if (r != 0 || c.settle_ms != cases[i].ms)
            fail_msg("'%s': got %d %d ms '%s', want %d ms", cases[i].v, r, c.settle_ms, err,
                     cases[i].ms);
    }
}

/* A key given twice is an error naming both lines, whatever the values,
 * spacing or blank lines between; different keys are fine. */
static void test_key_given_twice(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"workers = 2\nthreads = 2\nworkers = 2\n",
         "test.conf:3: workers: already set at line 1 (give each key once)"},
        {"# c\n\n  idfa = h:1   # first\ngaid = h:2\n\nidfa=h:3\n",
         "test.conf:6: idfa: already set at line 3"},
        {"settle_time = 1\nsettle_time = 500ms\n",
         "test.conf:2: settle_time: already set at line 1"},
        {"distribution = ketama\nworkers=1\ndistribution = ketama\n",
         "test.conf:3: distribution: already set at line 1"},
        {"adid =\nadid =\n", "test.conf:2: adid: already set at line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char err[512] = "";
        int r = T(cases[i].text, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strncmp(err, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, cases[i].msg);
    }
    struct cfg c;
    char err[512] = "";
    assert_int_equal(T("idfa = h:1\ngaid = h:1\nworkers = 2\nthreads = 2\n", &c, err, sizeof(err)),
                     0);
    /* the command line may still override a key the file sets (once) */
    char path[] = "/tmp/memc-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "workers = 7\ndistribution = ketama\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *argv[] = {(char *)"memc-load",
                    (char *)"--config",
                    path,
                    (char *)"-w",
                    (char *)"2",
                    (char *)"--distribution",
                    (char *)"ketama_weighted",
                    (char *)"-w",
                    (char *)"3",
                    NULL};
    int exit_now = 0;
    assert_int_equal(cfg_load(&c, 9, argv, err, sizeof(err), &exit_now), 0);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.distribution, CFG_DIST_KETAMA_WEIGHTED);
    /* through cfg_load a duplicate in the file is 78, naming the file */
    FILE *f = fopen(path, "w");
    fputs("workers = 2\nworkers = 3\n", f);
    fclose(f);
    assert_int_equal(cfg_load(&c, 3, argv, err, sizeof(err), &exit_now), MEMC_EXIT_CONFIG);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: workers: already set at line 1", path);
    assert_non_null(strstr(err, want));
    unlink(path);
}

static void test_validate(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    assert_int_equal(T("idfa=\ngaid=\nadid=\ndvid=\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_non_null(strstr(err, "no device type"));
    assert_int_equal(T("pattern = /a*/x/*.gz\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    char dir[64], glob[64];
    assert_int_equal(cfg_split_pattern("/var/spool/x/*.tsv.gz", dir, 64, glob, 64), 0);
    assert_string_equal(dir, "/var/spool/x");
    assert_string_equal(glob, "*.tsv.gz");
    assert_int_equal(cfg_split_pattern("*.gz", dir, 64, glob, 64), 0);
    assert_string_equal(dir, ".");
    assert_int_equal(cfg_split_pattern("/data/", dir, 64, glob, 64), -22);
}

/* Retention: retain follows rewarm_max_age and retain_failed follows
 * retain unless set; retain_failed shorter than retain (0 = forever) is
 * refused; retain_bytes takes G and T. */
static void test_retain(void **state)
{
    (void)state;
    struct cfg c;
    char err[256] = "";
    assert_int_equal(T("", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_retain_s(&c), 7 * 86400);
    assert_int_equal(cfg_retain_failed_s(&c), 7 * 86400);
    assert_int_equal(c.retain_bytes, 0);
    assert_int_equal(T("rewarm_max_age = 30d\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_retain_s(&c), 30 * 86400);
    assert_int_equal(cfg_retain_failed_s(&c), 30 * 86400);
    assert_int_equal(T("retain = 2d\nretain_failed = 36h\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_retain_s(&c), 2 * 86400);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "retain_failed (36h) is shorter than retain (2d): .NAME.failed files "
                             "are kept at least as long as loaded ones");
    assert_int_equal(T("retain = 0\nretain_failed = 30d\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_non_null(strstr(err, "shorter than retain (0, forever)"));
    assert_int_equal(
        T("retain = 1d\nretain_failed = 0\nretain_bytes = 50G\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
    assert_int_equal(cfg_retain_failed_s(&c), 0);
    assert_int_equal(c.retain_bytes, 50ULL << 30);
    assert_int_equal(T("retain = 0\nretain_bytes = 2T\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0); /* both forever */
    assert_int_equal(c.retain_bytes, 2ULL << 40);
    assert_int_equal(T("retain = rewarm_max_age\nretain_failed = retain\n", &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.retain_s, CFG_AGE_SAME);
    assert_int_equal(T("retain = retain\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "test.conf:1: retain: 'retain' is not an age like 7d, 12h, 30m or "
                             "3600 (0 = off), or rewarm_max_age");
    assert_int_equal(T("retain_bytes = 50X\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "test.conf:1: retain_bytes: '50X' is not a size from 0 to 1024T");
    assert_int_equal(T("retain_bytes = 99999999999T\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
}

/* Expiry: exptime with units, 0 = never (the default); a device type's
 * own follows it unless set, 0 there too; a year at most. */
static void test_exptime(void **state)
{
    (void)state;
    struct cfg c;
    char err[256] = "";
    assert_int_equal(T("", &c, err, sizeof(err)), 0);
    for (int type = 0; type < CFG_MAX_TYPES; type++)
        assert_int_equal(cfg_exptime_s(&c, type), 0);
    assert_int_equal(
        T("exptime = 36h\nidfa_exptime = 30m\ndvid_exptime = 0\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_exptime_s(&c, 0), 1800);
    assert_int_equal(cfg_exptime_s(&c, 1), 36 * 3600);
    assert_int_equal(cfg_exptime_s(&c, 2), 36 * 3600);
    assert_int_equal(cfg_exptime_s(&c, 3), 0);
    assert_int_equal(T("exptime = 7d\ngaid_exptime = exptime\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_exptime_s(&c, 1), 7 * 86400);
    assert_int_equal(T("exptime = 365d\n", &c, err, sizeof(err)), 0);
    assert_int_equal(T("exptime = 366d\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "test.conf:1: exptime: '366d' is not an age like 7d, 12h, 30m or "
                             "3600 (0 = off)");
    assert_int_equal(T("adid_exptime = 1w\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "test.conf:1: adid_exptime: '1w' is not an age like 7d, 12h, 30m or "
                             "3600 (0 = off), or exptime");
}

static int L(struct cfg *c, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0, exit_now;
    va_list ap;
    va_start(ap, errlen);
    argv[argc++] = (char *)"memc-load";
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return cfg_load(c, argc, argv, err, errlen, &exit_now);
}

static void test_command_line(void **state)
{
    (void)state;
    char path[] = "/tmp/memc-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "workers = 7\nidfa = file:1\npattern = /from/file/*.gz\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct cfg c;
    char err[512];
    /* file values, then command line overrides */
    assert_int_equal(L(&c, err, sizeof(err), "--config", path, "-w", "2", "--idfa", "cli:2",
                       "--oneshot", "--dry", NULL),
                     0);
    assert_int_equal(c.workers, 2);
    assert_string_equal(c.addr[0], "cli:2");
    assert_string_equal(c.pattern, "/from/file/*.gz");
    assert_true(c.oneshot && c.dry);
    /* bad values on the command line are usage errors (64) */
    assert_int_equal(L(&c, err, sizeof(err), "--config", path, "--workers", "x", NULL),
                     MEMC_EXIT_USAGE);
    assert_non_null(strstr(err, "--workers"));
    assert_int_equal(L(&c, err, sizeof(err), "--no-such-option", NULL), MEMC_EXIT_USAGE);
    assert_int_equal(L(&c, err, sizeof(err), "stray", NULL), MEMC_EXIT_USAGE);
    /* a missing file named with --config is a config error (78) */
    assert_int_equal(L(&c, err, sizeof(err), "--config", "/nonexistent/x.conf", NULL),
                     MEMC_EXIT_CONFIG);
    assert_non_null(strstr(err, "/nonexistent/x.conf"));
    /* a bad file: 78 with file:line */
    FILE *f = fopen(path, "w");
    fputs("workers = 2\nthreads = many\n", f);
    fclose(f);
    assert_int_equal(L(&c, err, sizeof(err), "--config", path, NULL), MEMC_EXIT_CONFIG);
    assert_non_null(strstr(err, ":2: threads:"));
    unlink(path);
}

/* Every option reaches its setting; flags and the file name survive the
 * file; --version stops with 0; more than 64 settings is a usage error. */
static void test_every_option(void **state)
{
    (void)state;
    struct cfg c;
    char err[512];
    assert_int_equal(L(&c, err, sizeof(err), "-c", "/dev/null", "-p", "/a/*.gz", "--gaid", "g:1",
                       "--adid", "a:2", "--dvid", "d:3", "-j", "5", "-l", "debug", "-t",
                       "--check-config", NULL),
                     0);
    assert_string_equal(c.config_file, "/dev/null");
    assert_string_equal(c.pattern, "/a/*.gz");
    assert_string_equal(c.addr[1], "g:1");
    assert_string_equal(c.addr[2], "a:2");
    assert_string_equal(c.addr[3], "d:3");
    assert_int_equal(c.threads, 5);
    assert_int_equal(c.log_level, CFG_LOG_DEBUG);
    assert_true(c.selftest && c.check_config && !c.oneshot && !c.dry);
    assert_int_equal(L(&c, err, sizeof(err), "-c", "/dev/null", "--log-level", "loud", NULL),
                     MEMC_EXIT_USAGE);
    assert_non_null(strstr(err, "'loud' is not one of"));
    assert_int_equal(
        L(&c, err, sizeof(err), "-c", "/dev/null", "--distribution", "ketama_weighted", NULL), 0);
    assert_int_equal(c.distribution, CFG_DIST_KETAMA_WEIGHTED);
    assert_string_equal(cfg_distribution_name(c.distribution), "ketama_weighted");
    assert_int_equal(L(&c, err, sizeof(err), "-c", "/dev/null", "--distribution", "md5", NULL),
                     MEMC_EXIT_USAGE);
    assert_non_null(strstr(err, "--distribution: 'md5' is not one of ketama, ketama_weighted"));

    char *argv[] = {(char *)"memc-load", (char *)"-V", NULL};
    int exit_now = 0;
    assert_int_equal(cfg_load(&c, 2, argv, err, sizeof(err), &exit_now), 0);
    assert_int_equal(exit_now, 1);

    char *many[2 + 2 * 65];
    int n = 0;
    many[n++] = (char *)"memc-load";
    for (int i = 0; i < 65; i++)
        many[n++] = (char *)"-w", many[n++] = (char *)"2";
    many[n] = NULL;
    assert_int_equal(cfg_load(&c, n, many, err, sizeof(err), &exit_now), MEMC_EXIT_USAGE);
    assert_string_equal(err, "too many options");
}

/* The table: every key parses its own default (and that is the built-in
 * default), no key or option is in it twice. */
static void test_table_defaults(void **state)
{
    (void)state;
    struct cfg_key_info k, o;
    int keys = 0;
    for (int i = 0; cfg_key_at(i, &k) == 0; i++) {
        assert_true(k.key || k.option);
        for (int j = 0; j < i; j++) {
            assert_int_equal(cfg_key_at(j, &o), 0);
            if (k.key && o.key && strcmp(k.key, o.key) == 0)
                fail_msg("key %s twice", k.key);
            if (k.option && o.option && strcmp(k.option, o.option) == 0)
                fail_msg("option --%s twice", k.option);
            if (k.short_option && k.short_option == o.short_option)
                fail_msg("option -%c twice", k.short_option);
        }
        if (!k.key)
            continue;
        keys++;
        if (!k.def)
            fail_msg("key %s has no default", k.key);
        struct cfg want, got;
        char text[1200], err[512] = "";
        cfg_defaults(&want);
        snprintf(text, sizeof(text), "%s = %s\n", k.key, k.def);
        if (T(text, &got, err, sizeof(err)) != 0)
            fail_msg("'%s': %s", text, err);
        if (memcmp(&want, &got, sizeof(want)) != 0)
            fail_msg("'%s' is not the built-in default", text);
    }
    assert_true(keys >= 20);
    assert_int_equal(cfg_key_at(-1, &k), -1);
}

/* Every option of the table is in --help, with its short form. */
static void test_help_lists_every_option(void **state)
{
    (void)state;
    char path[] = "/tmp/memc-help-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    assert_true(saved >= 0);
    dup2(fd, 1);
    cfg_usage();
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char help[16384];
    ssize_t n = pread(fd, help, sizeof(help) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0 && n < (ssize_t)sizeof(help) - 1);
    help[n] = 0;
    struct cfg_key_info k;
    int options = 0;
    for (int i = 0; cfg_key_at(i, &k) == 0; i++) {
        if (!k.option)
            continue;
        options++;
        char want[80];
        if (k.short_option)
            snprintf(want, sizeof(want), "  -%c, --%s", k.short_option, k.option);
        else
            snprintf(want, sizeof(want), "      --%s", k.option);
        const char *at = strstr(help, want);
        if (!at || (at[strlen(want)] != ' ' && at[strlen(want)] != '\n'))
            fail_msg("--help has no '%s'", want);
    }
    assert_true(options >= 19);
    assert_non_null(strstr(help, "-w, --workers N       worker processes (default 3)\n"));
}

/* An unknown key near a known one says which; the rest of the message is
 * as before. */
static void test_did_you_mean_key(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"workers = 2\nwokers = 3\n", "test.conf:2: wokers: unknown key; did you mean 'workers'?"},
        {"log-level = debug\n", "test.conf:1: log-level: unknown key; did you mean 'log_level'?"},
        {"thraeds = 2\n", "test.conf:1: thraeds: unknown key; did you mean 'threads'?"},
        {"Workers = 2\n", "test.conf:1: Workers: unknown key; did you mean 'workers'?"},
        {"setle_tme = 1\n", "test.conf:1: setle_tme: unknown key; did you mean 'settle_time'?"},
        {"nope = 1\n", "test.conf:1: nope: unknown key"},
        {"x = 1\n", "test.conf:1: x: unknown key"},
        {"workerz_and_more = 1\n", "test.conf:1: workerz_and_more: unknown key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char err[512] = "";
        int r = T(cases[i].text, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, cases[i].msg);
    }
}

/* An unknown long option near a known one says which; a known option
 * missing its value or an ambiguous prefix gets no guess. */
static void test_did_you_mean_option(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *val;
        const char *msg;
    } cases[] = {
        {"--wokers", "3", "--wokers: unknown option or missing value; did you mean '--workers'?"},
        {"--check-confg", NULL,
         "--check-confg: unknown option or missing value; did you mean '--check-config'?"},
        {"--log_level=debug", NULL,
         "--log_level=debug: unknown option or missing value; did you mean '--log-level'?"},
        {"--no-such-option", NULL, "--no-such-option: unknown option or missing value"},
        {"--d", NULL, "--d: unknown option or missing value"},
        {"--idfa", NULL, "--idfa: unknown option or missing value"},
        {"-x", NULL, "option -x: unknown or missing its value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char err[512] = "";
        int r = L(&c, err, sizeof(err), "-c", "/dev/null", cases[i].arg, cases[i].val, NULL);
        if (r != MEMC_EXIT_USAGE || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, cases[i].msg);
    }
}

/* cfg_load as `--check-config --no-probe --config FILE` runs it. */
static int check_file(const char *text, char *path, struct cfg *c, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return L(c, err, errlen, "--check-config", "--no-probe", "--config", path, NULL);
}

/* Server syntax errors are config errors (78) naming file, line and key. */
static void test_server_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        const char *why;
    } bad[] = {
        {"127.0.0.1:11211;127.0.0.1:11212", "servers are separated by ',', not ';'"},
        {"127.0.0.1:P;127.0.0.1:Q", "servers are separated by ',', not ';'"},
        {"http://127.0.0.1:11211", "is a URL: write host:port, with no scheme"},
        {"memcache://h:1", "is a URL"},
        {"h:P", "has no valid port (a number from 1 to 65535)"},
        {"h:0", "has no valid port"},
        {"h:65536", "has no valid port"},
        {"h:+1", "has no valid port"},
        {"h:", "has no valid port"},
        {"h:1,h:123456", "has no valid port"},
        {":11211", "has an empty host"},
        {"[]:11211", "has an empty host"},
        {"::1:11211", "an IPv6 address goes in brackets, like [::1]:11211"},
        {"h@x:1", "'@' in host 'h@x'"},
        {"h:1,,h:2", "empty server in the list"},
        {"unix:run/x.sock", "a UNIX socket is an absolute path"},
        {"unix:", "a UNIX socket is an absolute path"},
        {"/run/memcached/x y.sock", "contains blanks"},
        {"/run/memcached/"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxx.sock",
         "UNIX socket path longer than 107 bytes"},
    };
    char path[] = "/tmp/memc-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfg c;
        char text[256], want[512], err[1024] = "";
        snprintf(text, sizeof(text), "workers = 2\nidfa = %s\n", bad[i].addr);
        snprintf(want, sizeof(want), "%s:2: idfa: ", path);
        int r = check_file(text, path, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strncmp(err, want, strlen(want)) != 0 ||
            !strstr(err, bad[i].why))
            fail_msg("'%s': got %d '%s', want '%s...%s'", bad[i].addr, r, err, want, bad[i].why);
    }
    struct cfg c;
    char err[1024] = "";
    assert_int_equal(
        check_file("idfa = [::1]:11211,mc-1.example_x:65535,10.0.0.1:1\n", path, &c, err, 1024), 0);
    assert_string_equal(c.addr[0], "[::1]:11211,mc-1.example_x:65535,10.0.0.1:1");
    /* UNIX sockets, both spellings, beside TCP servers */
    assert_int_equal(
        check_file("idfa = /run/memcached/a.sock,unix:/run/b.sock,h:1\n", path, &c, err, 1024), 0);
    /* on the command line the same mistake is a usage error (64) */
    assert_int_equal(L(&c, err, sizeof(err), "-c", "/dev/null", "--gaid", "h:1;h:2", NULL),
                     MEMC_EXIT_USAGE);
    assert_string_equal(err, "--gaid: 'h:1;h:2': servers are separated by ',', not ';'");
    unlink(path);
}

/* Out-of-range values name the range from the table. */
static void test_range_error(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"workers = 65\n", ":1: workers: '65' is not a whole number from 1 to 64"},
        {"\nthreads = 0\n", ":2: threads: '0' is not a whole number from 1 to 64"},
        {"io_timeout_ms = 9\n", ":1: io_timeout_ms: '9' is not a whole number from 10 to 600000"},
        {"verify_sample = 1000001\n", ":1: verify_sample: '1000001' is not a whole number from 0"},
        {"health_interval = 3601\n", ":1: health_interval: '3601' is not a whole number from 1"},
        {"block_bytes = 257M\n", ":1: block_bytes: '257M' is not a size from 4k to 256M"},
        {"max_line_bytes = 4095\n", ":1: max_line_bytes: '4095' is not a size from 4k to 256M"},
        {"error_threshold = 1.5\n", ":1: error_threshold: '1.5' is not a number from 0 to 1"},
        {"settle_time = 3601s\n", ":1: settle_time: '3601s' is not a duration from 0 to 3600"},
        {"rewarm_max_age = 3651d\n", ":1: rewarm_max_age: '3651d' is not an age like 7d"},
    };
    char path[] = "/tmp/memc-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg c;
        char want[512], err[1024] = "";
        snprintf(want, sizeof(want), "%s%s", path, cases[i].msg);
        int r = check_file(cases[i].text, path, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strncmp(err, want, strlen(want)) != 0)
            fail_msg("case %zu: got %d '%s', want '%s'", i, r, err, want);
    }
    unlink(path);
}

/* The table is the list of keys: every one of them is documented in the
 * man page memc-load.conf(5), the commented etc/memc-load.conf and the
 * README (a per-type key as its idfa_ spelling or its global one). */
static int doc_has_key(const char *doc, const char *key)
{
    for (const char *p = doc; (p = strstr(p, key)); p++) {
        char after = p[strlen(key)];
        char before = p == doc ? ' ' : p[-1];
        if (!isalnum((unsigned char)after) && after != '_' && !isalnum((unsigned char)before) &&
            before != '_')
            return 1;
    }
    return 0;
}

static void test_every_key_documented(void **state)
{
    (void)state;
    static const char *const docs[] = {MEMC_SOURCE_DIR "/man/memc-load.conf.5",
                                       MEMC_SOURCE_DIR "/etc/memc-load.conf",
                                       MEMC_SOURCE_DIR "/README.md"};
    for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        FILE *f = fopen(docs[d], "r");
        assert_non_null(f);
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = 0;
        struct cfg_key_info k;
        for (int i = 0; cfg_key_at(i, &k) == 0; i++) {
            if (!k.key)
                continue;
            const char *key = k.key, *global = NULL;
            char idfa[128];
            static const char *const types[] = {"gaid_", "adid_", "dvid_"};
            for (int t = 0; t < 3; t++)
                if (strncmp(key, types[t], 5) == 0) {
                    snprintf(idfa, sizeof(idfa), "idfa_%s", key + 5);
                    key = idfa;
                }
            if (strncmp(key, "idfa_", 5) == 0)
                global = key + 5;
            if (!doc_has_key(text, key) && !(global && doc_has_key(text, global)))
                fail_msg("%s does not document the key '%s'", docs[d], k.key);
        }
    }
}

/* protocol: meta by default; a type's own protocol lies over the global
 * one ("inherit" takes it). */
static void test_protocol(void **state)
{
    (void)state;
    struct cfg c;
    char err[512] = "";
    cfg_defaults(&c);
    for (int t = 0; t < CFG_MAX_TYPES; t++)
        assert_int_equal(cfg_protocol(&c, t), CFG_PROTO_META);
    assert_int_equal(T("protocol = classic\ngaid_protocol = meta\nadid_protocol = inherit\n", &c,
                       err, sizeof(err)),
                     0);
    assert_int_equal(cfg_protocol(&c, 0), CFG_PROTO_CLASSIC);
    assert_int_equal(cfg_protocol(&c, 1), CFG_PROTO_META);
    assert_int_equal(cfg_protocol(&c, 2), CFG_PROTO_CLASSIC);
    assert_string_equal(cfg_protocol_name(cfg_protocol(&c, 0)), "classic");
    assert_int_equal(T("idfa_protocol = Classic\n", &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_protocol(&c, 0), CFG_PROTO_CLASSIC);
    assert_int_equal(cfg_protocol(&c, 3), CFG_PROTO_META);
    assert_int_equal(T("protocol = inherit\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err, "test.conf:1: protocol: 'inherit' is not one of meta, classic");
    assert_int_equal(T("dvid_protocol = ascii\n", &c, err, sizeof(err)), MEMC_EXIT_CONFIG);
    assert_string_equal(err,
                        "test.conf:1: dvid_protocol: 'ascii' is not one of inherit, meta, classic");
}

/* Every key of the table given twice is an error naming both lines. */
static void test_every_key_given_twice(void **state)
{
    (void)state;
    struct cfg_key_info k;
    for (int i = 0; cfg_key_at(i, &k) == 0; i++) {
        if (!k.key)
            continue;
        struct cfg c;
        char text[2400], want[128], err[512] = "";
        snprintf(text, sizeof(text), "%s = %s\n# between\n%s=%s\n", k.key, k.def, k.key, k.def);
        snprintf(want, sizeof(want), "test.conf:3: %s: already set at line 1 (give each key once)",
                 k.key);
        int r = T(text, &c, err, sizeof(err));
        if (r != MEMC_EXIT_CONFIG || strcmp(err, want) != 0)
            fail_msg("%s: got %d '%s', want '%s'", k.key, r, err, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_errors_name_file_line_key),
        cmocka_unit_test(test_settle_time),
        cmocka_unit_test(test_key_given_twice),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_retain),
        cmocka_unit_test(test_exptime),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_every_option),
        cmocka_unit_test(test_table_defaults),
        cmocka_unit_test(test_help_lists_every_option),
        cmocka_unit_test(test_did_you_mean_key),
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_did_you_mean_option),
        cmocka_unit_test(test_server_syntax),
        cmocka_unit_test(test_range_error),
        cmocka_unit_test(test_every_key_given_twice),
        cmocka_unit_test(test_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

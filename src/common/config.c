/*
 * config.c — defaults, the `key = value` config file, and the command line.
 *
 * Every setting is one row of cfg_rows[] (after redis's standardConfig
 * table): its file key, the setter that parses it, where it lives in struct
 * cfg, its range, its default, its command-line option and its --help text.
 * Defaults, the file parser, getopt's option list, --help, the duplicate-key,
 * range and unknown-key messages (with a did-you-mean) all come from that
 * table, so a value is validated the same way wherever it is written.  The
 * command line is collected first, the file is read, then the collected
 * options are applied on top: cfg_load() is cfg_read_args(),
 * cfg_check_cli(), cfg_apply_file() and cfg_validate(), in that order.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MEMC_VERSION
#define MEMC_VERSION "0.0.0"
#endif

#define CFG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const cfg_types[CFG_MAX_TYPES] = {"idfa", "gaid", "adid", "dvid"};

const char *cfg_type_name(int type)
{
    return (type >= 0 && type < CFG_MAX_TYPES) ? cfg_types[type] : "?";
}

/* The words an enum setting accepts, NULL-terminated. */
struct cfg_name {
    const char *name;
    int value;
};

static const struct cfg_name cfg_distributions[] = {
    {"ketama", CFG_DIST_KETAMA},         {"ketama_weighted", CFG_DIST_KETAMA_WEIGHTED},
    {"modula", CFG_DIST_MODULA},         {"python_memcache", CFG_DIST_PYTHON_MEMCACHE},
    {"rendezvous", CFG_DIST_RENDEZVOUS}, {NULL, 0},
};

/* libmemcached's names (memccat --hash, pylibmc's "hash" behaviour). */
static const struct cfg_name cfg_hashes[] = {
    {"default", CFG_HASH_DEFAULT},
    {"md5", CFG_HASH_MD5},
    {"crc", CFG_HASH_CRC},
    {"fnv1_64", CFG_HASH_FNV1_64},
    {"fnv1a_64", CFG_HASH_FNV1A_64},
    {"fnv1_32", CFG_HASH_FNV1_32},
    {"fnv1a_32", CFG_HASH_FNV1A_32},
    {"murmur", CFG_HASH_MURMUR},
    {"jenkins", CFG_HASH_JENKINS},
    {"murmur3", CFG_HASH_MURMUR3},
    {NULL, 0},
};

static const struct cfg_name cfg_levels[] = {
    {"error", CFG_LOG_ERR},
    {"warning", CFG_LOG_WARNING},
    {"info", CFG_LOG_INFO},
    {"debug", CFG_LOG_DEBUG},
    {NULL, 0},
};

/* tls; a device type's own (idfa_tls, ...) may also say "inherit". */
static const struct cfg_name cfg_tls_modes[] = {
    {"off", CFG_TLS_OFF},
    {"on", CFG_TLS_ON},
    {NULL, 0},
};
static const struct cfg_name cfg_tls_type_modes[] = {
    {"inherit", CFG_TLS_INHERIT},
    {"off", CFG_TLS_OFF},
    {"on", CFG_TLS_ON},
    {NULL, 0},
};

/* protocol; a device type's own (idfa_protocol, ...) may also say "inherit". */
static const struct cfg_name cfg_protocols[] = {
    {"meta", CFG_PROTO_META},
    {"classic", CFG_PROTO_CLASSIC},
    {NULL, 0},
};
static const struct cfg_name cfg_type_protocols[] = {
    {"inherit", CFG_PROTO_INHERIT},
    {"meta", CFG_PROTO_META},
    {"classic", CFG_PROTO_CLASSIC},
    {NULL, 0},
};

static const char *cfg_name_of(const struct cfg_name *names, int value)
{
    for (const struct cfg_name *n = names; n->name; n++)
        if (n->value == value)
            return n->name;
    return "?";
}

const char *cfg_distribution_name(int distribution)
{
    return cfg_name_of(cfg_distributions, distribution);
}

const char *cfg_distribution_hash_name(int hash)
{
    return cfg_name_of(cfg_hashes, hash);
}

int cfg_protocol(const struct cfg *c, int type)
{
    int own = type >= 0 && type < CFG_MAX_TYPES ? c->type_protocol[type] : CFG_PROTO_INHERIT;
    return own != CFG_PROTO_INHERIT ? own : c->protocol;
}

const char *cfg_protocol_name(int protocol)
{
    return cfg_name_of(cfg_protocols, protocol);
}

static void cfg_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int cfg_parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return -EINVAL;
    *out = n;
    return 0;
}

/* Size with an optional k/M suffix (powers of 1024). */
static int cfg_parse_size(const char *v, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *v == '-')
        return -EINVAL;
    int shift = 0;
    const char *units = "kKmMgGtT", *u = *end ? strchr(units, *end) : NULL;
    if (u) {
        shift = 10 * (int)((u - units) / 2 + 1);
        end++;
    }
    if (*end || (shift && n > (ULLONG_MAX >> shift)))
        return -EINVAL;
    n <<= shift;
    if (n < lo || n > hi)
        return -EINVAL;
    *out = (size_t)n;
    return 0;
}

const char *cfg_fmt_size(long n, char *buf, size_t len)
{
    if (n && n % (1L << 40) == 0)
        snprintf(buf, len, "%ldT", n >> 40);
    else if (n && n % (1L << 30) == 0)
        snprintf(buf, len, "%ldG", n >> 30);
    else if (n && n % (1024 * 1024) == 0)
        snprintf(buf, len, "%ldM", n / (1024 * 1024));
    else if (n && n % 1024 == 0)
        snprintf(buf, len, "%ldk", n / 1024);
    else
        snprintf(buf, len, "%ld", n);
    return buf;
}

/* A duration in seconds, fractions allowed, with an optional "s" or "ms"
 * unit: "2", "0.5", "2s", "500ms".  Rounded to whole milliseconds. */
static int cfg_parse_duration_ms(const char *v, long lo_ms, long hi_ms, long *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    /* digits and a point only: no sign, exponent, hex, inf or nan */
    if (errno || end == v || strspn(v, "0123456789.") != (size_t)(end - v))
        return -EINVAL;
    double ms = d * 1000;
    if (strcmp(end, "ms") == 0)
        ms = d;
    else if (*end && strcmp(end, "s") != 0)
        return -EINVAL;
    if (!(ms + 0.5 >= (double)lo_ms && ms + 0.5 < (double)hi_ms + 1))
        return -EINVAL;
    *out = (long)(ms + 0.5);
    return 0;
}

/*
 * Server addresses.  A list is "server[,server...]"; empty disables the
 * type.  A server is host:port with a name or IPv4 literal as host, or
 * [v6]:port; the port is a number from 1 to 65535.  The messages name the
 * usual mistakes: ';' between servers, a URL, a bare IPv6 address.
 */

/* A UNIX socket: "/abs/path" or "unix:/abs/path" (python-memcache's
 * spelling), short enough for sun_path, no blanks. */
static int cfg_check_socket(const char *s, size_t n, char *why, size_t whylen)
{
    const char *p = s;
    size_t pl = n;
    if (pl >= 5 && memcmp(p, "unix:", 5) == 0)
        p += 5, pl -= 5;
    const char *err = NULL;
    if (!pl || p[0] != '/')
        err = ": a UNIX socket is an absolute path (/run/memcached/idfa.sock)";
    else if (pl >= 108)
        err = ": UNIX socket path longer than 107 bytes";
    else if (memchr(p, ' ', pl) || memchr(p, '\t', pl) || memchr(p, ';', pl))
        err = " contains blanks or ';'";
    if (err) {
        snprintf(why, whylen, "'%.*s'%s", (int)n, s, err);
        return -EINVAL;
    }
    return 0;
}

static int cfg_is_host_char(char ch, int bracketed)
{
    if (isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_')
        return 1;
    return bracketed && (ch == ':' || ch == '%');
}

/* The host part of a server, brackets removed. */
static int cfg_check_host(const char *s, size_t n, const char *h, size_t hl, int bracketed,
                          char *why, size_t whylen)
{
    if (hl == 0) {
        snprintf(why, whylen, "'%.*s' has an empty host", (int)n, s);
        return -EINVAL;
    }
    if (hl > 255) {
        snprintf(why, whylen, "'%.*s': host longer than 255 characters", (int)n, s);
        return -EINVAL;
    }
    if (!bracketed && memchr(h, ':', hl)) {
        snprintf(why, whylen, "'%.*s': an IPv6 address goes in brackets, like [::1]:11211", (int)n,
                 s);
        return -EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        if (cfg_is_host_char(h[i], bracketed))
            continue;
        if (isprint((unsigned char)h[i]))
            snprintf(why, whylen, "'%.*s': '%c' in host '%.*s'", (int)n, s, h[i], (int)hl, h);
        else
            snprintf(why, whylen, "'%.*s': byte 0x%02x in host", (int)n, s, (unsigned char)h[i]);
        return -EINVAL;
    }
    return 0;
}

/* One server of a list, s[0..n). */
static int cfg_check_server(const char *s, size_t n, char *why, size_t whylen)
{
    if (n && (s[0] == '/' || (n >= 5 && memcmp(s, "unix:", 5) == 0)))
        return cfg_check_socket(s, n, why, whylen);
    if (n == 0) {
        snprintf(why, whylen, "empty server in the list");
        return -EINVAL;
    }
    const char *err = NULL;
    if (memchr(s, ' ', n) || memchr(s, '\t', n))
        err = " contains blanks";
    else if (memchr(s, ';', n))
        err = ": servers are separated by ',', not ';'";
    else if (memmem(s, n, "://", 3))
        err = " is a URL: write host:port, with no scheme";
    else if (!memrchr(s, ':', n))
        err = " is not host:port";
    if (err) {
        snprintf(why, whylen, "'%.*s'%s", (int)n, s, err);
        return -EINVAL;
    }
    const char *colon = memrchr(s, ':', n);
    const char *port = colon + 1;
    size_t plen = n - (size_t)(port - s);
    long num = 0;
    for (size_t i = 0; i < plen && i < 5 && num >= 0; i++)
        num = isdigit((unsigned char)port[i]) ? num * 10 + (port[i] - '0') : -1;
    if (plen == 0 || plen > 5 || num < 1 || num > 65535) {
        snprintf(why, whylen, "'%.*s' has no valid port (a number from 1 to 65535)", (int)n, s);
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - s);
    int bracketed = hl >= 2 && s[0] == '[' && s[hl - 1] == ']';
    return bracketed ? cfg_check_host(s, n, s + 1, hl - 2, 1, why, whylen)
                     : cfg_check_host(s, n, s, hl, 0, why, whylen);
}

/* The number of servers in the list v, or -EINVAL (why says why). */
static int cfg_check_addr(const char *v, char *why, size_t whylen)
{
    if (!*v)
        return 0;
    int count = 0;
    for (const char *p = v;; count++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (cfg_check_server(p, n, why, whylen) < 0)
            return -EINVAL;
        if (end && !end[1]) {
            snprintf(why, whylen, "trailing comma");
            return -EINVAL;
        }
        if (!end)
            return count + 1;
        p = end + 1;
    }
}

/*
 * The settings table.  A setter parses v into the field at dst: 0, -EINVAL
 * with why saying what is wrong, or 1 for --help / --version (printed: the
 * caller exits).
 */
struct cfg_row;
typedef int cfg_setter(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen);

enum {
    CFG_SHOW_DEFAULT = 1, /* --help shows the default */
    CFG_NOCASE = 2,       /* enum words match in any case */
    CFG_NAMES_FILE = 4,   /* --config: the file named must exist */
};

struct cfg_row {
    const char *key;              /* config-file key; NULL: a command-line option only */
    cfg_setter *set;              /* parses and stores a value */
    size_t off;                   /* offsetof(struct cfg, field) */
    long lo, hi;                  /* accepted range (strings: hi is the field's size) */
    const char *def;              /* the default as the file would spell it; NULL: 0 */
    const struct cfg_name *names; /* enum settings: the words */
    char sopt;                    /* short option, or 0 */
    const char *lopt;             /* long option; NULL: a file key only */
    const char *arg;              /* the option's value in --help; NULL: it takes none */
    const char *help;             /* --help text (options only) */
    unsigned flags;
};

static int cfg_set_int(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    long n;
    if (cfg_parse_long(v, r->lo, r->hi, &n) < 0) {
        snprintf(why, whylen, "'%s' is not a whole number from %ld to %ld", v, r->lo, r->hi);
        return -EINVAL;
    }
    *(int *)dst = (int)n;
    return 0;
}

static int cfg_set_size(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    size_t sz;
    if (cfg_parse_size(v, (size_t)r->lo, (size_t)r->hi, &sz) < 0) {
        char lo[32], hi[32];
        snprintf(why, whylen, "'%s' is not a size from %s to %s", v,
                 cfg_fmt_size(r->lo, lo, sizeof(lo)), cfg_fmt_size(r->hi, hi, sizeof(hi)));
        return -EINVAL;
    }
    *(size_t *)dst = sz;
    return 0;
}

static int cfg_set_rate(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < (double)r->lo || d > (double)r->hi) {
        snprintf(why, whylen, "'%s' is not a number from %ld to %ld", v, r->lo, r->hi);
        return -EINVAL;
    }
    *(double *)dst = d;
    return 0;
}

/* A duration (cfg_parse_duration_ms), kept as int milliseconds. */
static int cfg_set_ms(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    long ms;
    if (cfg_parse_duration_ms(v, r->lo, r->hi, &ms) < 0) {
        snprintf(why, whylen,
                 "'%s' is not a duration from %ld to %ld seconds (like 2, 0.5, 2s or 500ms)", v,
                 r->lo / 1000, r->hi / 1000);
        return -EINVAL;
    }
    *(int *)dst = (int)ms;
    return 0;
}

/* An age: whole seconds with an optional unit s, m, h or d, kept as long
 * seconds.  A row whose default is a word (the key it follows) also takes
 * that word: CFG_AGE_SAME. */
static int cfg_set_age(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    int word = r->def && !isdigit((unsigned char)r->def[0]);
    if (word && strcmp(v, r->def) == 0) {
        *(long *)dst = CFG_AGE_SAME;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    long unit = !*end               ? 1
                : !strcmp(end, "s") ? 1
                : !strcmp(end, "m") ? 60
                : !strcmp(end, "h") ? 3600
                : !strcmp(end, "d") ? 86400
                                    : 0;
    if (errno || end == v || !isdigit((unsigned char)*v) || !unit || n > r->hi / unit) {
        snprintf(why, whylen, "'%s' is not an age like 7d, 12h, 30m or 3600 (0 = off)%s%s", v,
                 word ? ", or " : "", word ? r->def : "");
        return -EINVAL;
    }
    *(long *)dst = n * unit;
    return 0;
}

/* One of the row's words, kept as its int value. */
static int cfg_set_choice(const struct cfg_row *r, void *dst, const char *v, char *why,
                          size_t whylen)
{
    for (const struct cfg_name *n = r->names; n->name; n++) {
        if ((r->flags & CFG_NOCASE) ? strcasecmp(v, n->name) == 0 : strcmp(v, n->name) == 0) {
            *(int *)dst = n->value;
            return 0;
        }
    }
    size_t len = (size_t)snprintf(why, whylen, "'%s' is not one of ", v);
    for (const struct cfg_name *n = r->names; n->name && len < whylen; n++)
        len += (size_t)snprintf(why + len, whylen - len, "%s%s", n->name, n[1].name ? ", " : "");
    return -EINVAL;
}

static int cfg_set_addr(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    if (strlen(v) >= (size_t)r->hi) {
        snprintf(why, whylen, "address list too long");
        return -EINVAL;
    }
    if (cfg_check_addr(v, why, whylen) < 0)
        return -EINVAL;
    snprintf(dst, (size_t)r->hi, "%s", v);
    return 0;
}

static int cfg_set_glob(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    if (!*v || strlen(v) >= (size_t)r->hi) {
        snprintf(why, whylen, "must be a non-empty path glob");
        return -EINVAL;
    }
    snprintf(dst, (size_t)r->hi, "%s", v);
    return 0;
}

/* Any path (--config). */
static int cfg_set_file(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    if (strlen(v) >= (size_t)r->hi) {
        snprintf(why, whylen, "path too long");
        return -EINVAL;
    }
    snprintf(dst, (size_t)r->hi, "%s", v);
    return 0;
}

/* An absolute path, or empty for none. */
static int cfg_set_path(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    if (v[0] && v[0] != '/') {
        snprintf(why, whylen, "'%s' is not an absolute path (or empty: none)", v);
        return -EINVAL;
    }
    return cfg_set_file(r, dst, v, why, whylen);
}

/* A name sent to or checked against a server (auth_user, tls_server_name):
 * printable, no blanks; empty for none. */
static int cfg_set_name(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) {
            snprintf(why, whylen, "'%s': a name without blanks or control characters", v);
            return -EINVAL;
        }
    return cfg_set_file(r, dst, v, why, whylen);
}

/* A mode switch: an option without a value. */
static int cfg_set_flag(const struct cfg_row *r, void *dst, const char *v, char *why, size_t whylen)
{
    (void)r, (void)v, (void)why, (void)whylen;
    *(int *)dst = 1;
    return 0;
}

static int cfg_show_help(const struct cfg_row *r, void *dst, const char *v, char *why,
                         size_t whylen)
{
    (void)r, (void)dst, (void)v, (void)why, (void)whylen;
    cfg_usage();
    return 1;
}

static int cfg_show_version(const struct cfg_row *r, void *dst, const char *v, char *why,
                            size_t whylen)
{
    (void)r, (void)dst, (void)v, (void)why, (void)whylen;
    printf("memc-load %s\n", MEMC_VERSION);
    return 1;
}

/*
 * The table.  KEY(key, setter, field, lo, hi, default): a config-file key
 * (NULL: none), parsed by cfg_set_<setter> into that field of struct cfg,
 * within lo..hi.  OPT(short, long, value, help): its command-line option
 * (value NULL: it takes none).  Table order is --help order.
 */
#define CFG_AT(FIELD) offsetof(struct cfg, FIELD)
#define KEY(K, T, FIELD, LO, HI, DEF)                                                              \
    .key = K, .set = cfg_set_##T, .off = CFG_AT(FIELD), .lo = LO, .hi = HI, .def = DEF
#define OPT(S, L, ARG, HELP) .sopt = S, .lopt = L, .arg = ARG, .help = HELP
#define SWITCH(FIELD, S, L, HELP) .set = cfg_set_flag, .off = CFG_AT(FIELD), OPT(S, L, NULL, HELP)
#define ADDR(T, K, DEF)                                                                            \
    KEY(K, addr, addr[T], 0, CFG_ADDR_LEN, DEF),                                                   \
        OPT(0, K, "ADDRS", "memcached for " K ": host:port[,host:port...]")

/* The TLS and auth keys of one struct cfg_secure, named P "tls", ... */
/* clang-format off */
#define SECURE(P, F, MODES, DEF)                                                                   \
    {KEY(P "tls", choice, F.tls, 0, 0, DEF), .names = MODES, .flags = CFG_NOCASE},                 \
        {KEY(P "tls_ca_file", path, F.tls_ca_file, 0, CFG_PATH_LEN, "")},                          \
        {KEY(P "tls_cert_file", path, F.tls_cert_file, 0, CFG_PATH_LEN, "")},                      \
        {KEY(P "tls_key_file", path, F.tls_key_file, 0, CFG_PATH_LEN, "")},                        \
        {KEY(P "tls_server_name", name, F.tls_server_name, 0, 256, "")},                           \
        {KEY(P "auth_user", name, F.auth_user, 0, 256, "")},                                       \
        {KEY(P "auth_password_file", path, F.auth_password_file, 0, CFG_PATH_LEN, "")}
/* clang-format on */

/* A year: beyond 30 days memcached takes a Unix time, a signed 32-bit one. */
#define CFG_EXPTIME_MAX (365L * 86400)

/* The protocol key of a device type, named P "protocol". */
#define PROTOCOL(P, T)                                                                             \
    {                                                                                              \
        KEY(P "protocol", choice, type_protocol[T], 0, 0, "inherit"), .names = cfg_type_protocols, \
                                                                      .flags = CFG_NOCASE          \
    }

/* clang-format off */
static const struct cfg_row cfg_rows[] = {
    {KEY(NULL, file, config_file, 0, CFG_PATH_LEN, CFG_DEFAULT_FILE),
     OPT('c', "config", "FILE", "config file; built-in defaults if it does not exist"),
     .flags = CFG_SHOW_DEFAULT | CFG_NAMES_FILE},
    {KEY("pattern", glob, pattern, 0, CFG_PATH_LEN, "/var/spool/memc-load/*.tsv.gz"),
     OPT('p', "pattern", "GLOB", "spool files to load"), .flags = CFG_SHOW_DEFAULT},
    {ADDR(0, "idfa", "127.0.0.1:33013")},
    {ADDR(1, "gaid", "127.0.0.1:33014")},
    {ADDR(2, "adid", "127.0.0.1:33015")},
    {ADDR(3, "dvid", "127.0.0.1:33016")},
    {KEY("distribution", choice, distribution, 0, 0, "ketama"), .names = cfg_distributions,
     OPT(0, "distribution", "D", "how keys spread over a type's servers, as the readers "
                                 "place them: ketama, ketama_weighted, modula, "
                                 "python_memcache or rendezvous"),
     .flags = CFG_SHOW_DEFAULT},
    {KEY("hash", choice, hash, 0, 0, "default"), .names = cfg_hashes,
     OPT(0, "hash", "H", "the key hash of --distribution modula: default (one-at-a-time), "
                         "md5, crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, murmur, jenkins "
                         "or murmur3"),
     .flags = CFG_SHOW_DEFAULT | CFG_NOCASE},
    {SWITCH(oneshot, 'o', "oneshot", "load the files present now, then exit")},
    {SWITCH(dry, 'n', "dry", "parse and pack, write nothing, rename nothing")},
    {SWITCH(selftest, 't', "test", "run the pack/unpack self-test and exit")},
    {KEY("workers", int, workers, 1, 64, "3"),
     OPT('w', "workers", "N", "worker processes"), .flags = CFG_SHOW_DEFAULT},
    {KEY("threads", int, threads, 1, 64, "1"),
     OPT('j', "threads", "N", "packer threads per worker"), .flags = CFG_SHOW_DEFAULT},
    {KEY("log_level", choice, log_level, 0, 0, "info"), .names = cfg_levels,
     OPT('l', "log-level", "L", "error, warning, info or debug"),
     .flags = CFG_SHOW_DEFAULT | CFG_NOCASE},
    {SWITCH(check_config, 0, "check-config",
            "validate the configuration, check that the spool directory exists and the service "
            "user can write it, probe every memcached with a test write, and exit")},
    {SWITCH(no_probe, 0, "no-probe", "with --check-config: no memcached probes")},
    {KEY("metrics_file", path, metrics_file, 0, CFG_PATH_LEN,
         "/var/lib/prometheus/node-exporter/memc-load.prom"),
     OPT(0, "metrics-file", "F", "Prometheus textfile (\"\" = none; daemon only)")},
    {SWITCH(wait_lock, 0, "wait-lock",
            "another memc-load holds the spool: wait for it instead of exiting with 75")},
    {.set = cfg_show_help, OPT('h', "help", NULL, "this text")},
    {.set = cfg_show_version, OPT('V', "version", NULL, "print the version")},
    /* config-file keys only */
    {KEY("error_threshold", rate, error_threshold, 0, 1, "0.01")},
    {KEY("block_bytes", size, block_bytes, 4096, 256L << 20, "1M")},
    {KEY("max_line_bytes", size, max_line_bytes, 4096, 256L << 20, "1M")},
    {KEY("io_timeout_ms", int, io_timeout_ms, 10, 600000, "2000")},
    {KEY("stall_timeout", int, stall_timeout_s, 1, 86400, "60")},
    {KEY("retry_interval", int, retry_interval_s, 0, 86400, "10")},
    {KEY("stop_timeout", int, stop_timeout_s, 1, 3600, "20")},
    {KEY("settle_time", ms, settle_ms, 0, 3600 * 1000, "2")},
    {KEY("verify_sample", int, verify_sample, 0, 1000000, "200")},
    {KEY("health_interval", int, health_interval_s, 1, 3600, "5")},
    {KEY("rewarm_max_age", age, rewarm_max_age_s, 0, 3650L * 86400, "7d")},
    /* spool retention (master/retain.h): the defaults follow the key named */
    {KEY("retain", age, retain_s, 0, 3650L * 86400, "rewarm_max_age")},
    {KEY("retain_failed", age, retain_failed_s, 0, 3650L * 86400, "retain")},
    {KEY("retain_bytes", size, retain_bytes, 0, 1L << 50, "0")},
    {KEY("max_rate", int, max_rate, 0, CFG_MAX_RATE, "0")},
    {KEY("rewarm_max_rate", int, rewarm_max_rate, 0, CFG_MAX_RATE, "0")},
    /* expiry (common/expiry.h): a device type's own follows exptime */
    {KEY("exptime", age, exptime_s, 0, CFG_EXPTIME_MAX, "0")},
    {KEY("idfa_exptime", age, type_exptime_s[0], 0, CFG_EXPTIME_MAX, "exptime")},
    {KEY("gaid_exptime", age, type_exptime_s[1], 0, CFG_EXPTIME_MAX, "exptime")},
    {KEY("adid_exptime", age, type_exptime_s[2], 0, CFG_EXPTIME_MAX, "exptime")},
    {KEY("dvid_exptime", age, type_exptime_s[3], 0, CFG_EXPTIME_MAX, "exptime")},
    {KEY("state_dir", path, state_dir, 0, CFG_PATH_LEN, "/var/lib/memc-load")},
    /* TLS and authentication: global, then per device type (mc/tls.c) */
    SECURE("", secure, cfg_tls_modes, "off"),
    SECURE("idfa_", type_secure[0], cfg_tls_type_modes, "inherit"),
    SECURE("gaid_", type_secure[1], cfg_tls_type_modes, "inherit"),
    SECURE("adid_", type_secure[2], cfg_tls_type_modes, "inherit"),
    SECURE("dvid_", type_secure[3], cfg_tls_type_modes, "inherit"),
    /* meta commands, or the classic protocol (through a proxy): global, then per type */
    {KEY("protocol", choice, protocol, 0, 0, "meta"), .names = cfg_protocols,
     .flags = CFG_NOCASE},
    PROTOCOL("idfa_", 0),
    PROTOCOL("gaid_", 1),
    PROTOCOL("adid_", 2),
    PROTOCOL("dvid_", 3),
};
/* clang-format on */

#undef KEY
#undef OPT
#undef SWITCH
#undef ADDR
#undef SECURE
#undef PROTOCOL

#define CFG_NROWS ((int)CFG_NELEM(cfg_rows))

static void *cfg_field(struct cfg *c, const struct cfg_row *r)
{
    return (char *)c + r->off;
}

static const struct cfg_row *cfg_row_of_key(const char *key)
{
    for (int i = 0; i < CFG_NROWS; i++)
        if (cfg_rows[i].key && strcmp(cfg_rows[i].key, key) == 0)
            return &cfg_rows[i];
    return NULL;
}

int cfg_key_at(int i, struct cfg_key_info *out)
{
    if (i < 0 || i >= CFG_NROWS)
        return -1;
    out->key = cfg_rows[i].key;
    out->option = cfg_rows[i].lopt;
    out->short_option = cfg_rows[i].sopt;
    out->def = cfg_rows[i].def;
    return 0;
}

void cfg_defaults(struct cfg *c)
{
    char why[256];
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < CFG_NROWS; i++)
        if (cfg_rows[i].def) /* each parses: test_config checks */
            cfg_rows[i].set(&cfg_rows[i], cfg_field(c, &cfg_rows[i]), cfg_rows[i].def, why,
                            sizeof(why));
}

/*
 * Did you mean: the key (or long option) nearest to a word that is none,
 * by optimal string alignment distance (Levenshtein plus transpositions),
 * case folded.  Near enough is at most 2 edits and at most half the word.
 */
static int cfg_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    int d[64][64];
    if (n >= 64 || m >= 64)
        return INT_MAX;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j - 1] + (ai != bj);
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

/* The key (options = 0) or long option (options = 1) nearest to word, or
 * NULL when none is near enough. */
static const char *cfg_nearest(const char *word, int options)
{
    const char *best = NULL;
    int best_d = INT_MAX, len = (int)strlen(word);
    for (int i = 0; i < CFG_NROWS; i++) {
        const char *name = options ? cfg_rows[i].lopt : cfg_rows[i].key;
        if (!name)
            continue;
        int d = cfg_distance(word, name);
        if (d < best_d)
            best = name, best_d = d;
    }
    return best_d <= 2 && 2 * best_d <= len ? best : NULL;
}

static int cfg_is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* The line without its comment ('#' anywhere: no value needs one) and
 * without the blanks around it. */
static char *cfg_trim(char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    char *s = line;
    while (cfg_is_blank(*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && cfg_is_blank(e[-1]))
        *--e = 0;
    return s;
}

static int cfg_unknown_key(const char *name, int lineno, const char *key, char *err, size_t errlen)
{
    const char *near = cfg_nearest(key, 0);
    if (near)
        cfg_errf(err, errlen, "%s:%d: %s: unknown key; did you mean '%s'?", name, lineno, key,
                 near);
    else
        cfg_errf(err, errlen, "%s:%d: %s: unknown key", name, lineno, key);
    return MEMC_EXIT_CONFIG;
}

/* One `key = value` line s (trimmed, not empty).  seen[row] is the line
 * that set the row's key, 0 if none: a key given twice is an error (the
 * file would say two things, and only one would count). */
static int cfg_parse_line(struct cfg *c, const char *name, int lineno, char *s, int *seen,
                          char *err, size_t errlen)
{
    char *eq = strchr(s, '=');
    if (!eq) {
        cfg_errf(err, errlen, "%s:%d: expected 'key = value', got '%s'", name, lineno, s);
        return MEMC_EXIT_CONFIG;
    }
    char *k_end = eq;
    while (k_end > s && cfg_is_blank(k_end[-1]))
        k_end--;
    *k_end = 0;
    char *v = eq + 1;
    while (cfg_is_blank(*v))
        v++;
    if (!*s) {
        cfg_errf(err, errlen, "%s:%d: missing key before '='", name, lineno);
        return MEMC_EXIT_CONFIG;
    }
    const struct cfg_row *r = cfg_row_of_key(s);
    if (!r)
        return cfg_unknown_key(name, lineno, s, err, errlen);
    char why[512] = "";
    if (r->set(r, cfg_field(c, r), v, why, sizeof(why)) < 0) {
        cfg_errf(err, errlen, "%s:%d: %s: %s", name, lineno, s, why);
        return MEMC_EXIT_CONFIG;
    }
    int *first = &seen[r - cfg_rows];
    if (*first) {
        cfg_errf(err, errlen, "%s:%d: %s: already set at line %d (give each key once)", name,
                 lineno, s, *first);
        return MEMC_EXIT_CONFIG;
    }
    *first = lineno;
    return 0;
}

int cfg_parse_text(struct cfg *c, const char *name, const char *text, size_t len, char *err,
                   size_t errlen)
{
    char line[4096];
    int seen[CFG_NROWS] = {0};
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof(line)) {
            cfg_errf(err, errlen, "%s:%d: line longer than %zu bytes", name, lineno,
                     sizeof(line) - 1);
            return MEMC_EXIT_CONFIG;
        }
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos += n + (nl ? 1 : 0);
        if (memchr(line, 0, n)) {
            cfg_errf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
            return MEMC_EXIT_CONFIG;
        }
        char *s = cfg_trim(line);
        if (!*s)
            continue;
        int r = cfg_parse_line(c, name, lineno, s, seen, err, errlen);
        if (r)
            return r;
    }
    return 0;
}

int cfg_parse_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        cfg_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return MEMC_EXIT_CONFIG;
    }
    /* Config files are small; 1 MiB is far beyond any real one. */
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int r = MEMC_EXIT_CONFIG;
    if (!buf) {
        cfg_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    len = fread(buf, 1, cap, f);
    if (ferror(f)) {
        cfg_errf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    if (len == cap) {
        cfg_errf(err, errlen, "%s: larger than 1 MiB", path);
        goto out;
    }
    r = cfg_parse_text(c, path, buf, len, err, errlen);
out:
    free(buf);
    fclose(f);
    return r;
}

int cfg_split_pattern(const char *pattern, char *dir, size_t dirlen, char *glob, size_t globlen)
{
    const char *slash = strrchr(pattern, '/');
    const char *g = slash ? slash + 1 : pattern;
    size_t dlen = slash ? (size_t)(slash - pattern) : 1;
    if (!*g || dlen + 1 > dirlen || strlen(g) + 1 > globlen)
        return -EINVAL;
    if (slash) {
        if (dlen == 0)
            snprintf(dir, dirlen, "/");
        else
            snprintf(dir, dirlen, "%.*s", (int)dlen, pattern);
    } else {
        snprintf(dir, dirlen, ".");
    }
    if (strpbrk(dir, "*?["))
        return -EINVAL; /* globs in the directory part are not supported */
    snprintf(glob, globlen, "%s", g);
    return 0;
}

/* `hash` chooses modula's key hash; each other distribution has its own
 * (the readers' hash), so another value there would be ignored: refused. */
static int cfg_distribution_check(const struct cfg *c, char *err, size_t errlen)
{
    static const char *const own[] = {
        [CFG_DIST_KETAMA] = "one-at-a-time",
        [CFG_DIST_KETAMA_WEIGHTED] = "md5",
        [CFG_DIST_PYTHON_MEMCACHE] = "crc",
        [CFG_DIST_RENDEZVOUS] = "murmur3, seed 0",
    };
    if (c->distribution == CFG_DIST_MODULA || c->hash == CFG_HASH_DEFAULT)
        return 0;
    cfg_errf(err, errlen,
             "hash = %s: only with distribution = modula (distribution = %s hashes keys with %s)",
             cfg_distribution_hash_name(c->hash), cfg_distribution_name(c->distribution),
             own[c->distribution]);
    return MEMC_EXIT_CONFIG;
}

long cfg_retain_s(const struct cfg *c)
{
    return c->retain_s == CFG_AGE_SAME ? c->rewarm_max_age_s : c->retain_s;
}

long cfg_retain_failed_s(const struct cfg *c)
{
    return c->retain_failed_s == CFG_AGE_SAME ? cfg_retain_s(c) : c->retain_failed_s;
}

long cfg_exptime_s(const struct cfg *c, int type)
{
    long own = type >= 0 && type < CFG_MAX_TYPES ? c->type_exptime_s[type] : CFG_AGE_SAME;
    return own == CFG_AGE_SAME ? c->exptime_s : own;
}

const char *cfg_fmt_age(long s, char *buf, size_t len)
{
    static const struct {
        long n;
        char u;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    for (size_t i = 0; s && i < CFG_NELEM(units); i++)
        if (s % units[i].n == 0) {
            snprintf(buf, len, "%ld%c", s / units[i].n, units[i].u);
            return buf;
        }
    snprintf(buf, len, s ? "%lds" : "%ld", s);
    return buf;
}

/* Set-aside files are kept at least as long as loaded ones (0 = forever). */
static int cfg_retain_check(const struct cfg *c, char *err, size_t errlen)
{
    long loaded = cfg_retain_s(c), failed = cfg_retain_failed_s(c);
    if (!failed || (loaded && failed >= loaded))
        return 0;
    char a[32], b[32];
    cfg_errf(err, errlen,
             "retain_failed (%s) is shorter than retain (%s): .NAME.failed files are kept at "
             "least as long as loaded ones",
             cfg_fmt_age(failed, a, sizeof(a)),
             loaded ? cfg_fmt_age(loaded, b, sizeof(b)) : "0, forever");
    return MEMC_EXIT_CONFIG;
}

int cfg_validate(const struct cfg *c, char *err, size_t errlen)
{
    char dir[CFG_PATH_LEN], glob[CFG_PATH_LEN];
    if (cfg_split_pattern(c->pattern, dir, sizeof(dir), glob, sizeof(glob)) < 0) {
        cfg_errf(err, errlen,
                 "pattern '%s': needs a directory and a file glob, with no glob characters in "
                 "the directory part",
                 c->pattern);
        return MEMC_EXIT_CONFIG;
    }
    int types = 0, servers = 0;
    char why[256];
    for (int i = 0; i < CFG_MAX_TYPES; i++) {
        int n = cfg_check_addr(c->addr[i], why, sizeof(why));
        if (n > 0)
            types++, servers += n;
    }
    if (!types) {
        cfg_errf(err, errlen, "no device type has a memcached address");
        return MEMC_EXIT_CONFIG;
    }
    if (servers > CFG_MAX_SERVERS) {
        cfg_errf(err, errlen, "%d memcached servers configured, at most %d supported", servers,
                 CFG_MAX_SERVERS);
        return MEMC_EXIT_CONFIG;
    }
    if (c->max_line_bytes > c->block_bytes * 64) {
        cfg_errf(err, errlen, "max_line_bytes may be at most 64 x block_bytes");
        return MEMC_EXIT_CONFIG;
    }
    if (cfg_retain_check(c, err, errlen))
        return MEMC_EXIT_CONFIG;
    return cfg_distribution_check(c, err, errlen);
}

/* One option's --help entry: "  -w, --workers N" in 24 columns, then its
 * text and default wrapped at 79 ("(default X)" is one word: \001 is a
 * space that does not break). */
static void cfg_usage_row(const struct cfg_row *r)
{
    char head[64], text[512];
    snprintf(head, sizeof(head), "  %c%c%c --%s%s%s", r->sopt ? '-' : ' ', r->sopt ? r->sopt : ' ',
             r->sopt ? ',' : ' ', r->lopt, r->arg ? " " : "", r->arg ? r->arg : "");
    int show = (r->flags & CFG_SHOW_DEFAULT) && r->def && *r->def;
    snprintf(text, sizeof(text), "%s%s%s%s", r->help, show ? " (default\001" : "",
             show ? r->def : "", show ? ")" : "");
    int col = printf("%-22s", head);
    if (col > 22) {
        putchar('\n');
        col = 0;
    }
    col += printf("%*s", 24 - col, "");
    for (const char *p = text; *p;) {
        int w = (int)strcspn(p, " ");
        if (col > 24 && col + 1 + w > 79)
            col = printf("\n%24s", "") - 1;
        else if (col > 24)
            col += printf(" ");
        for (int i = 0; i < w; i++)
            putchar(p[i] == '\001' ? ' ' : p[i]);
        col += w;
        p += w;
        while (*p == ' ')
            p++;
    }
    putchar('\n');
}

void cfg_usage(void)
{
    printf("Usage: memc-load [OPTIONS]\n"
           "       memc-load verify [--sample N] [--seed S] [--json] [OPTIONS] FILE...\n"
           "Load gzipped app-install TSV dumps into memcached; verify reads a sample\n"
           "of FILE... back from memcached (memc-load verify --help).\n"
           "\n");
    for (int i = 0; i < CFG_NROWS; i++)
        if (cfg_rows[i].lopt)
            cfg_usage_row(&cfg_rows[i]);
    printf("\n"
           "The config file takes these settings and more: see memc-load.conf(5).\n"
           "Exit status: 0 success; 1 a file failed (error rate, corrupt input);\n"
           "75 a file was left in place (memcached unreachable, stopped) or the spool\n"
           "is locked by another instance; 66 no spool directory (--oneshot);\n"
           "64 bad command line; 78 bad configuration; 70 internal error (out of memory).\n"
           "--check-config: 0 all good; 1 spool missing or not writable by the service\n"
           "user, or a memcached failed its probe; 64 bad command line; 78 bad\n"
           "configuration.\n");
}

/* getopt_long's view of the table: an option returns its short letter, or
 * 256 + its row when it has none. */
struct cfg_getopt {
    struct option longs[CFG_NROWS + 1];
    char shorts[2 * CFG_NROWS + 1];
};

static void cfg_getopt_init(struct cfg_getopt *g)
{
    int nl = 0, ns = 0;
    for (int i = 0; i < CFG_NROWS; i++) {
        const struct cfg_row *r = &cfg_rows[i];
        if (!r->lopt)
            continue;
        g->longs[nl++] = (struct option){r->lopt, r->arg ? required_argument : no_argument, NULL,
                                         r->sopt ? r->sopt : 256 + i};
        if (r->sopt) {
            g->shorts[ns++] = r->sopt;
            if (r->arg)
                g->shorts[ns++] = ':';
        }
    }
    g->longs[nl] = (struct option){NULL, 0, NULL, 0};
    g->shorts[ns] = 0;
}

static const struct cfg_row *cfg_row_of_opt(int o)
{
    if (o >= 256)
        return o - 256 < CFG_NROWS ? &cfg_rows[o - 256] : NULL;
    for (int i = 0; o > 0 && i < CFG_NROWS; i++)
        if (cfg_rows[i].sopt == o)
            return &cfg_rows[i];
    return NULL;
}

/* The row of "--name" (arg + 2) as getopt_long finds it: the option of that
 * name, else the one option the name is a prefix of.  *prefixes counts the
 * options it could be. */
static const struct cfg_row *cfg_row_of_long(const char *name, size_t n, int *prefixes)
{
    const struct cfg_row *hit = NULL;
    *prefixes = 0;
    for (int i = 0; i < CFG_NROWS; i++) {
        const char *o = cfg_rows[i].lopt;
        if (!o || strncmp(name, o, n) != 0)
            continue;
        if (!o[n]) {
            *prefixes = 1;
            return &cfg_rows[i];
        }
        hit = &cfg_rows[i], ++*prefixes;
    }
    return *prefixes == 1 ? hit : NULL;
}

int cfg_option_takes_value(const char *arg)
{
    if (arg[0] != '-' || !arg[1])
        return 0;
    if (arg[1] != '-') { /* -c FILE, but not -cFILE or -n */
        const struct cfg_row *r = arg[2] ? NULL : cfg_row_of_opt((unsigned char)arg[1]);
        return r && r->arg;
    }
    int prefixes; /* "--idfa=..." carries its value */
    const struct cfg_row *r = cfg_row_of_long(arg + 2, strlen(arg + 2), &prefixes);
    return r && r->arg;
}

/* The option getopt_long refused, argv[optind - 1]: unknown, ambiguous or
 * missing its value.  An unknown long option near a known one gets a
 * did-you-mean. */
static int cfg_bad_option(char **argv, char *err, size_t errlen)
{
    if (optopt && optopt < 256) {
        cfg_errf(err, errlen, "option -%c: unknown or missing its value", optopt);
        return MEMC_EXIT_USAGE;
    }
    const char *arg = argv[optind - 1], *near = NULL;
    if (arg[0] == '-' && arg[1] == '-') {
        char name[64];
        int prefixes;
        size_t n = strcspn(arg + 2, "=");
        snprintf(name, sizeof(name), "%.*s", (int)n, arg + 2);
        if (n < sizeof(name) && !cfg_row_of_long(name, n, &prefixes) && !prefixes)
            near = cfg_nearest(name, 1);
    }
    if (near)
        cfg_errf(err, errlen, "%s: unknown option or missing value; did you mean '--%s'?", arg,
                 near);
    else
        cfg_errf(err, errlen, "%s: unknown option or missing value", arg);
    return MEMC_EXIT_USAGE;
}

/* Options that are settings are kept as row/value pairs and applied after
 * the file, so the command line overrides it. */
struct cfg_cli {
    struct {
        const struct cfg_row *row;
        const char *val;
    } sets[64];
    int nsets;
    int have_config; /* --config given: the file must exist */
};

/* One option: a setting goes into cli, a mode switch or --config into *c at
 * once, --help and --version print and set *exit_now.  0 or MEMC_EXIT_USAGE. */
static int cfg_take_option(struct cfg *c, const struct cfg_row *r, struct cfg_cli *cli, char *err,
                           size_t errlen, int *exit_now)
{
    if (r->key) {
        if (cli->nsets == (int)CFG_NELEM(cli->sets)) {
            cfg_errf(err, errlen, "too many options");
            return MEMC_EXIT_USAGE;
        }
        cli->sets[cli->nsets].row = r;
        cli->sets[cli->nsets].val = optarg;
        cli->nsets++;
        return 0;
    }
    char why[512] = "";
    int x = r->set(r, cfg_field(c, r), optarg ? optarg : "", why, sizeof(why));
    if (x < 0) {
        cfg_errf(err, errlen, "--%s: %s", r->lopt, why);
        return MEMC_EXIT_USAGE;
    }
    if (x > 0)
        *exit_now = 1;
    if (r->flags & CFG_NAMES_FILE)
        cli->have_config = 1;
    return 0;
}

/* Walk the command line: mode flags and --config go into *c at once,
 * settings into cli.  Returns 0 (*exit_now set after --help / --version) or
 * MEMC_EXIT_USAGE. */
static int cfg_read_args(struct cfg *c, int argc, char **argv, struct cfg_cli *cli, char *err,
                         size_t errlen, int *exit_now)
{
    struct cfg_getopt g;
    cfg_getopt_init(&g);
    optind = 0; /* glibc: full re-initialisation, so tests can call us twice */
    opterr = 0;
    for (int o; (o = getopt_long(argc, argv, g.shorts, g.longs, NULL)) != -1;) {
        const struct cfg_row *r = cfg_row_of_opt(o);
        if (!r)
            return cfg_bad_option(argv, err, errlen);
        int ret = cfg_take_option(c, r, cli, err, errlen, exit_now);
        if (ret || *exit_now)
            return ret;
    }
    if (optind < argc) {
        cfg_errf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return MEMC_EXIT_USAGE;
    }
    if (c->no_probe && !c->check_config) {
        cfg_errf(err, errlen, "--no-probe: only with --check-config");
        return MEMC_EXIT_USAGE;
    }
    return 0;
}

/* Validate the command-line values on their own first, so a typo there is
 * a usage error (64), not blamed on the config file. */
static int cfg_check_cli(const struct cfg_cli *cli, char *err, size_t errlen)
{
    struct cfg scratch;
    char why[512] = "";
    cfg_defaults(&scratch);
    for (int i = 0; i < cli->nsets; i++) {
        const struct cfg_row *r = cli->sets[i].row;
        if (r->set(r, cfg_field(&scratch, r), cli->sets[i].val, why, sizeof(why)) < 0) {
            cfg_errf(err, errlen, "--%s: %s", r->lopt, why);
            return MEMC_EXIT_USAGE;
        }
    }
    return 0;
}

/* Read the config file (if --config named one, or the default exists), then
 * apply the command-line settings over it (cfg_check_cli has checked them).
 * The file sets keys only, so the mode flags and the file name stay as the
 * command line made them. */
static int cfg_apply_file(struct cfg *c, const struct cfg_cli *cli, char *err, size_t errlen)
{
    char why[512];
    if (cli->have_config || access(c->config_file, F_OK) == 0) {
        int r = cfg_parse_file(c, c->config_file, err, errlen);
        if (r)
            return r;
    }
    for (int i = 0; i < cli->nsets; i++) {
        const struct cfg_row *r = cli->sets[i].row;
        r->set(r, cfg_field(c, r), cli->sets[i].val, why, sizeof(why));
    }
    return 0;
}

int cfg_load(struct cfg *c, int argc, char **argv, char *err, size_t errlen, int *exit_now)
{
    struct cfg_cli cli;
    cli.nsets = 0;
    cli.have_config = 0;
    *exit_now = 0;
    cfg_defaults(c);
    int r = cfg_read_args(c, argc, argv, &cli, err, errlen, exit_now);
    if (r || *exit_now)
        return r;
    r = cfg_check_cli(&cli, err, errlen);
    if (r)
        return r;
    r = cfg_apply_file(c, &cli, err, errlen);
    if (r)
        return r;
    return cfg_validate(c, err, errlen);
}

/*
 * get.c — `memc-load get` (see get.h): the arguments, each key checked and
 * routed (memc_map_route, as the writer routes), one pipelined request per
 * server (`mg <key> v t f` ... `mn`; `get <key>` ... for a classic-protocol
 * type, whose answers carry no TTL) over the exchange loop (xchg.h), the
 * answers parsed in order, the values decoded with protobuf-c's UserApps,
 * and the report: a block of lines per key, one JSON object per key, or
 * the raw value bytes.
 */
#include "get.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appsinstalled.pb-c.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "parse.h"
#include "proto.h"
#include "route.h"
#include "sub.h"
#include "xchg.h"

enum { GET_PENDING, GET_FOUND, GET_MISSING, GET_UNREACHABLE };
#define GET_TTL_UNKNOWN (-2LL)

struct get_key {
    const char *key;
    size_t len;
    int type, server;
    int state;
    char *val; /* GET_FOUND: the value, vlen bytes */
    size_t vlen;
    long long ttl; /* remaining seconds, -1: never expires, GET_TTL_UNKNOWN (classic get) */
    char why[128]; /* GET_UNREACHABLE: the server's failure */
};

struct get_cli {
    int json, raw;
    struct get_key *keys;
    int nkeys;
};

/* The keys grouped by server, and how far each server's answers are. */
struct get_run {
    const struct memc_map *map;
    struct get_key *keys;
    int *order;
    int first[CFG_MAX_SERVERS];
    uint32_t count[CFG_MAX_SERVERS], next[CFG_MAX_SERVERS];
};

static void get_usage(void)
{
    printf("Usage: memc-load get [--json] [--raw] [CONFIG OPTIONS] KEY...\n"
           "Read KEY... (dev_type:dev_id) from the memcached server each one routes to\n"
           "with the configured distribution, and print the UserApps value: type and\n"
           "id, server, lat, lon, apps, remaining TTL and size.\n"
           "\n"
           "      --json       one JSON object per key, one a line\n"
           "      --raw        the value bytes only (not decoded), one after another\n"
           "  CONFIG OPTIONS   as for the daemon: -c FILE, --idfa ADDRS, ..., --distribution,\n"
           "                   --hash\n"
           "\n"
           "Exit status: 0 every key found; 1 some missing or not a UserApps value;\n"
           "75 a memcached unreachable; 64 bad command line; 78 bad configuration.\n");
}

/* One of get's own options at argv[*i] (sub.h). */
static int get_own_opt(void *ctx, int argc, char **argv, int *i, char *err, size_t len)
{
    (void)argc, (void)err, (void)len;
    struct get_cli *a = ctx;
    if (strcmp(argv[*i], "--json") == 0)
        return a->json = 1;
    if (strcmp(argv[*i], "--raw") == 0)
        return a->raw = 1;
    return 0;
}

/* A key as the loader writes them: "dev_type:dev_id" of a configured type,
 * storable by memcached.  Its type and server into k; 0, 64 or 78. */
static int get_key_route(struct get_key *k, const struct memc_map *map)
{
    char esc[PARSE_MAX_KEY * 4 + 8];
    const char *colon = memchr(k->key, ':', k->len);
    k->type = -1;
    for (int t = 0; colon && t < CFG_MAX_TYPES; t++) {
        const char *name = cfg_type_name(t);
        if (strlen(name) == (size_t)(colon - k->key) && memcmp(name, k->key, strlen(name)) == 0)
            k->type = t;
    }
    log_escape(k->key, k->len, esc, sizeof(esc));
    if (!colon || colon == k->key || k->len == (size_t)(colon - k->key) + 1) {
        log_cli(LOG_ERR, "get: '%s' is not dev_type:dev_id", esc);
        return MEMC_EXIT_USAGE;
    }
    if (k->len > PARSE_MAX_KEY || !parse_key_ok(k->key, k->len)) {
        log_cli(LOG_ERR,
                "get: '%s': not a memcached key (at most %d bytes, no blanks "
                "or control bytes)",
                esc, PARSE_MAX_KEY);
        return MEMC_EXIT_USAGE;
    }
    if (k->type < 0) {
        log_cli(LOG_ERR,
                "get: '%s': unknown device type '%.*s' (idfa, gaid, adid or "
                "dvid)",
                esc, (int)(colon - k->key), k->key);
        return MEMC_EXIT_USAGE;
    }
    if (!map->count[k->type]) {
        log_cli(LOG_ERR, "get: '%s': %s has no memcached configured", esc, cfg_type_name(k->type));
        return MEMC_EXIT_CONFIG;
    }
    k->server = memc_map_route(map, k->type, k->key, k->len);
    return 0;
}

/* Group the keys by server and build each server's request. */
static int get_requests(struct get_run *run, int nkeys, struct mc_xchg *ios, int nservers)
{
    int at = 0;
    for (int g = 0; g < nservers; g++) {
        run->first[g] = at;
        size_t cap = 8;
        for (int i = 0; i < nkeys; i++)
            if (run->keys[i].server == g)
                run->order[at++] = i, cap += run->keys[i].len + 16;
        int proto = run->map->servers[g].protocol;
        run->count[g] = at - run->first[g];
        if (!run->count[g])
            continue;
        char *out = malloc(cap);
        if (!out)
            return -ENOMEM;
        size_t len = 0;
        for (int j = run->first[g]; j < at; j++) {
            const struct get_key *k = &run->keys[run->order[j]];
            len += mc_read_request(out + len, cap - len, proto, k->key, k->len, "v t f");
        }
        const char *end = mc_read_end(proto);
        memcpy(out + len, end, strlen(end));
        ios[g].out = out;
        ios[g].olen = len + strlen(end);
        ios[g].state = MC_XCHG_RUN;
    }
    return 0;
}

/* Server g's answer for its i-th key: its value (and TTL), or missing. */
struct get_at {
    struct get_run *run;
    int g;
};

static int get_got(void *ctx, uint32_t i, const struct mc_mg_answer *a, char *why, size_t whylen)
{
    const struct get_at *at = ctx;
    struct get_key *k = &at->run->keys[at->run->order[at->run->first[at->g] + (int)i]];
    if (!a->val) {
        k->state = GET_MISSING;
        return 0;
    }
    k->ttl = at->run->map->servers[at->g].protocol == CFG_PROTO_CLASSIC ? GET_TTL_UNKNOWN : -1;
    for (const char *p = a->line + 3; k->ttl == -1 && p < a->line + a->n; p++)
        if (*p == ' ' && p[1] == 't')
            k->ttl = strtoll(p + 2, NULL, 10);
    k->val = malloc(a->size ? a->size : 1);
    if (!k->val) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    memcpy(k->val, a->val, a->size);
    k->vlen = a->size;
    k->state = GET_FOUND;
    return 0;
}

static long get_parse(void *ctx, int g, const char *buf, size_t len, int *done, char *why,
                      size_t whylen)
{
    struct get_run *run = ctx;
    struct get_at at = {run, g};
    return mc_read_answers(run->map->servers[g].protocol, buf, len, &run->next[g], run->count[g],
                           get_got, &at, done, why, whylen);
}

/* Fetch every key from its server; a server that fails leaves its keys
 * GET_UNREACHABLE with its reason.  0 or -ENOMEM. */
static int get_fetch(struct get_cli *a, const struct memc_map *map, int timeout_ms)
{
    struct mc_xchg ios[CFG_MAX_SERVERS];
    struct get_run run;
    memset(&run, 0, sizeof(run));
    run.map = map;
    run.keys = a->keys;
    run.order = calloc((size_t)a->nkeys, sizeof(*run.order));
    if (!run.order)
        return -ENOMEM;
    mc_xchg_init(ios, map);
    int e = get_requests(&run, a->nkeys, ios, map->nservers);
    if (e == 0)
        mc_xchg_run(ios, map->nservers, timeout_ms, get_parse, &run);
    for (int i = 0; e == 0 && i < a->nkeys; i++) {
        struct get_key *k = &a->keys[i];
        if (ios[k->server].state != MC_XCHG_FAILED)
            continue;
        free(k->val);
        k->val = NULL;
        k->state = GET_UNREACHABLE;
        snprintf(k->why, sizeof(k->why), "%s", ios[k->server].why);
    }
    mc_xchg_free(ios, map->nservers);
    free(run.order);
    return e;
}

/* The value as UserApps, or NULL with why: it must parse, hold no other
 * fields, and have lat and lon (the loader always writes both). */
static UserApps *get_decode(const struct get_key *k, char *why, size_t whylen)
{
    UserApps *ua = user_apps__unpack(NULL, k->vlen, (const uint8_t *)k->val);
    if (!ua)
        snprintf(why, whylen, "not a UserApps value (protobuf cannot parse it)");
    else if (ua->base.n_unknown_fields)
        snprintf(why, whylen, "not a UserApps value (fields other than apps, lat and lon)");
    else if (!ua->has_lat || !ua->has_lon)
        snprintf(why, whylen, "not a UserApps value (no %s)", ua->has_lat ? "lon" : "lat");
    else
        return ua;
    if (ua)
        user_apps__free_unpacked(ua, NULL);
    return NULL;
}

/* The shortest text that reads back as d (like Python's repr). */
static const char *get_fmt_double(double d, char *buf, size_t len)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return buf;
}

static void get_print_ttl(long long ttl, int json)
{
    if (ttl == GET_TTL_UNKNOWN)
        printf(json ? "\"unknown\"" : "unknown (protocol = classic: get says none)");
    else if (ttl < 0)
        printf(json ? "null" : "never");
    else
        printf("%lld%s", ttl, json ? "" : " s");
}

/* One key as a block of lines; 0, or 1 when it is missing or not UserApps. */
static int get_print_text(const struct get_key *k, const struct memc_map *map)
{
    char esc[PARSE_MAX_KEY * 4 + 8], why[128], num[32];
    const char *colon = memchr(k->key, ':', k->len);
    printf("key     %s\n", log_escape(k->key, k->len, esc, sizeof(esc)));
    printf("server  %s\n", map->servers[k->server].name);
    printf("type    %s\n", cfg_type_name(k->type));
    printf("id      %s\n",
           log_escape(colon + 1, k->len - (size_t)(colon + 1 - k->key), esc, sizeof(esc)));
    if (k->state == GET_UNREACHABLE || k->state == GET_MISSING) {
        printf("error   %s%s\n\n", k->state == GET_MISSING ? "not found" : "unreachable: ",
               k->state == GET_MISSING ? "" : k->why);
        return 1;
    }
    UserApps *ua = get_decode(k, why, sizeof(why));
    if (ua) {
        printf("lat     %s\n", get_fmt_double(ua->lat, num, sizeof(num)));
        printf("lon     %s\n", get_fmt_double(ua->lon, num, sizeof(num)));
        printf("apps    ");
        for (size_t i = 0; i < ua->n_apps; i++)
            printf("%s%u", i ? " " : "", ua->apps[i]);
        printf("%s(%zu)\n", ua->n_apps ? "  " : "", ua->n_apps);
    } else {
        printf("error   %s\n", why);
        printf("value   %s\n", log_escape(k->val, k->vlen, esc, 200));
    }
    printf("ttl     ");
    get_print_ttl(k->ttl, 0);
    printf("\nsize    %zu bytes\n\n", k->vlen);
    if (ua)
        user_apps__free_unpacked(ua, NULL);
    return ua ? 0 : 1;
}

/* A JSON string of n bytes: quotes, backslashes and every byte outside
 * printable ASCII escaped. */
static void get_json_str(const char *s, size_t n)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + n; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void get_json_num(const char *name, double d)
{
    char num[32];
    printf(",\"%s\":%s", name, isfinite(d) ? get_fmt_double(d, num, sizeof(num)) : "null");
}

/* The found value's part of a key's JSON object. */
static int get_json_value(const struct get_key *k)
{
    char why[128];
    UserApps *ua = get_decode(k, why, sizeof(why));
    printf(",\"found\":true");
    if (ua) {
        get_json_num("lat", ua->lat);
        get_json_num("lon", ua->lon);
        printf(",\"apps\":[");
        for (size_t i = 0; i < ua->n_apps; i++)
            printf("%s%u", i ? "," : "", ua->apps[i]);
        printf("]");
        user_apps__free_unpacked(ua, NULL);
    } else {
        printf(",\"error\":");
        get_json_str(why, strlen(why));
    }
    printf(",\"ttl\":");
    get_print_ttl(k->ttl, 1);
    printf(",\"size\":%zu", k->vlen);
    return ua ? 0 : 1;
}

/* One key as one JSON object on a line; 0, or 1 when it is missing or not
 * UserApps. */
static int get_print_json(const struct get_key *k, const struct memc_map *map)
{
    const char *colon = memchr(k->key, ':', k->len);
    printf("{\"key\":");
    get_json_str(k->key, k->len);
    printf(",\"server\":");
    get_json_str(map->servers[k->server].name, strlen(map->servers[k->server].name));
    printf(",\"type\":\"%s\",\"id\":", cfg_type_name(k->type));
    get_json_str(colon + 1, k->len - (size_t)(colon + 1 - k->key));
    int bad = 1;
    if (k->state == GET_FOUND) {
        bad = get_json_value(k);
    } else if (k->state == GET_MISSING) {
        printf(",\"found\":false");
    } else {
        printf(",\"found\":null,\"error\":");
        get_json_str(k->why, strlen(k->why));
    }
    printf("}\n");
    return bad;
}

/* --raw: the found values' bytes on stdout, the others named on stderr. */
static int get_print_raw(const struct get_key *k, const struct memc_map *map)
{
    char esc[PARSE_MAX_KEY * 4 + 8];
    if (k->state == GET_FOUND) {
        fwrite(k->val, 1, k->vlen, stdout);
        return 0;
    }
    log_cli(LOG_ERR, "get: %s on %s: %s%s", log_escape(k->key, k->len, esc, sizeof(esc)),
            map->servers[k->server].name, k->state == GET_MISSING ? "not found" : "unreachable: ",
            k->state == GET_MISSING ? "" : k->why);
    return 1;
}

/* Route, fetch and print every key; the exit status. */
static int get_run_cli(struct get_cli *a, const struct memc_map *map, int timeout_ms)
{
    for (int i = 0; i < a->nkeys; i++) {
        int st = get_key_route(&a->keys[i], map);
        if (st)
            return st;
    }
    if (get_fetch(a, map, timeout_ms) < 0) {
        log_cli(LOG_ERR, "get: out of memory");
        return MEMC_EXIT_SOFTWARE;
    }
    int bad = 0, unreachable = 0;
    for (int i = 0; i < a->nkeys; i++) {
        const struct get_key *k = &a->keys[i];
        unreachable |= k->state == GET_UNREACHABLE;
        if (a->raw)
            bad |= get_print_raw(k, map);
        else if (a->json)
            bad |= get_print_json(k, map);
        else
            bad |= get_print_text(k, map);
    }
    fflush(stdout);
    return unreachable ? MEMC_EXIT_TEMPFAIL : bad ? MEMC_EXIT_FAILED : MEMC_EXIT_OK;
}

int get_main(int argc, char **argv)
{
    struct get_cli a = {0};
    struct cli_sub sub = {
        .name = "get", .operand = "KEY", .usage = get_usage, .own = get_own_opt, .ctx = &a};
    struct cfg c;
    struct memc_map map;
    int st = cli_sub_args(&sub, argc, argv);
    if (!st && a.json && a.raw) {
        log_cli(LOG_ERR, "get: --json and --raw do not go together");
        fprintf(stderr, "Try 'memc-load get --help'.\n");
        st = MEMC_EXIT_USAGE;
    }
    if (!st && !(a.keys = calloc((size_t)sub.noperands, sizeof(*a.keys))))
        st = MEMC_EXIT_SOFTWARE;
    for (int i = 0; !st && i < sub.noperands; i++) {
        a.keys[a.nkeys].key = sub.operands[i];
        a.keys[a.nkeys++].len = strlen(sub.operands[i]);
    }
    if (!st && (st = cli_sub_setup(&sub, &c, &map)) == 0) {
        st = get_run_cli(&a, &map, c.io_timeout_ms);
        memc_map_free(&map);
    } else if (st == 1) {
        st = MEMC_EXIT_OK; /* --help or --version */
    }
    for (int i = 0; i < a.nkeys; i++)
        free(a.keys[i].val);
    free(a.keys);
    cli_sub_free(&sub);
    return st;
}

/*
 * mc_server.c — memcached processes and reads for the tests (see mc_server.h).
 */
#include "mc_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmemcached/memcached.h>

#include "files.h"
#include "procs.h"

/* Run tests/lib/memcached-start, which prints the port and then execs
 * memcached: the child's pid is memcached's.  *port gets the port (0 if it
 * printed none). */
static pid_t h_mc_exec(int want_port, const char *const *extra, int *port)
{
    char pbuf[16];
    snprintf(pbuf, sizeof(pbuf), "%d", want_port);
    const char *argv[32] = {MEMCACHED_START, "--port", pbuf, "-U", "0",   "-m",
                            "256",           "-t",     "1",  "-c", "1024"};
    int n = 11, out[2];
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    *port = 0;
    if (pipe2(out, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(out[1], 1);
        dup2(dn, 2);
        execv(MEMCACHED_START, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    char buf[32];
    size_t len = 0;
    ssize_t got;
    while (pid > 0 && len < sizeof(buf) - 1 &&
           (got = read(out[0], buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)got;
        if (memchr(buf, '\n', len))
            break;
    }
    close(out[0]);
    buf[len] = 0;
    *port = atoi(buf);
    return pid;
}

/* Start memcached on port (0: a free one, retried if taken meanwhile). */
int h_mc_start_at(struct h_mc *mc, int want_port, const char *const *extra)
{
    for (int attempt = 0; attempt < (want_port ? 50 : 5); attempt++) {
        int port;
        pid_t pid = h_mc_exec(want_port, extra, &port);
        if (pid < 0)
            return -1;
        char pidbuf[16], portbuf[16];
        snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        /* until it listens (0), or it died: port taken (TIME_WAIT, or by another) */
        const char *wait[] = {MEMCACHED_START, "--wait", pidbuf, portbuf, "2", NULL};
        if (port > 0 && h_run(wait, NULL, 30) == 0) {
            mc->pid = pid;
            mc->port = port;
            return 0;
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (want_port)
            h_sleep_ms(100);
    }
    return -1;
}

int h_mc_start_unix(struct h_mc *mc, const char *path)
{
    const char *argv[] = {"memcached", "-s", path, "-a", "0770", "-u", "root", NULL};
    if (geteuid() != 0)
        argv[5] = NULL;
    unlink(path);
    pid_t pid = h_spawn(argv, "/dev/null");
    if (pid < 0)
        return -1;
    for (int i = 0; i < 500; i++) { /* until the socket answers */
        memcached_st *m = memcached_create(NULL);
        memcached_server_add_unix_socket(m, path);
        memcached_return_t rc = memcached_version(m);
        memcached_free(m);
        if (rc == MEMCACHED_SUCCESS) {
            mc->pid = pid;
            mc->port = 0;
            return 0;
        }
        h_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int h_mc_start(struct h_mc *mc, const char *const *extra)
{
    return h_mc_start_at(mc, 0, extra);
}

void h_mc_kill(struct h_mc *mc)
{
    if (mc->pid > 0) {
        kill(mc->pid, SIGKILL);
        waitpid(mc->pid, NULL, 0);
    }
    mc->pid = 0;
}

void h_mc_stop(struct h_mc *mc)
{
    if (mc->pid > 0) {
        kill(mc->pid, SIGCONT);
        kill(mc->pid, SIGTERM);
        waitpid(mc->pid, NULL, 0);
    }
    mc->pid = 0;
}

void h_mc_pause(struct h_mc *mc, int paused)
{
    kill(mc->pid, paused ? SIGSTOP : SIGCONT);
}

static memcached_st *h_mc_client(const char *servers)
{
    memcached_st *m = memcached_create(NULL);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA, 1);
    char *copy = strdup(servers), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "unix:", 5) == 0)
            tok += 5;
        if (tok[0] == '/') { /* a UNIX socket */
            memcached_server_add_unix_socket(m, tok);
            continue;
        }
        char *colon = strrchr(tok, ':');
        *colon = 0;
        memcached_server_add(m, tok, (in_port_t)atoi(colon + 1));
    }
    free(copy);
    return m;
}

/* Clients kept per server list: a test that reads thousands of keys
 * opens one connection, not one per key (each left in TIME_WAIT, they
 * slowed every later memcached start that scans the socket table). */
static struct {
    char *servers;
    memcached_st *m;
} h_clients[8];
static unsigned h_clients_next;

static memcached_st *h_mc_kept(const char *servers, int fresh)
{
    unsigned i;
    for (i = 0; i < 8; i++)
        if (h_clients[i].servers && strcmp(h_clients[i].servers, servers) == 0)
            break;
    if (i < 8 && !fresh)
        return h_clients[i].m;
    if (i == 8)
        i = h_clients_next++ % 8;
    if (h_clients[i].m)
        memcached_free(h_clients[i].m);
    free(h_clients[i].servers);
    h_clients[i].servers = strdup(servers);
    h_clients[i].m = h_mc_client(servers);
    return h_clients[i].m;
}

char *h_mc_get(const char *servers, const char *key, size_t *len)
{
    uint32_t flags;
    memcached_return_t rc = MEMCACHED_FAILURE;
    char *v = NULL;
    /* a kept connection to a memcached that restarted fails: once more on
     * a new one */
    for (int fresh = 0; fresh < 2 && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND; fresh++) {
        free(v);
        v = memcached_get(h_mc_kept(servers, fresh), key, strlen(key), len, &flags, &rc);
    }
    return rc == MEMCACHED_SUCCESS ? v : (free(v), NULL);
}

long h_mc_items(int port)
{
    return h_mc_stat(port, "curr_items");
}

long h_mc_stat(int port, const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *cmd = "stats\r\n";
    if (write(fd, cmd, strlen(cmd)) < 0) {
        close(fd);
        return -1;
    }
    char buf[8192];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "END\r\n"))
            break;
    }
    close(fd);
    buf[len] = 0;
    char pat[64];
    snprintf(pat, sizeof(pat), "STAT %s ", name);
    char *p = strstr(buf, pat);
    return p ? atol(p + strlen(pat)) : -1;
}

static int h_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

struct h_exp {
    char *key, *hex;
    long order;
};

static int h_exp_cmp(const void *a, const void *b)
{
    const struct h_exp *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Keys are read back H_BATCH at a time, with one mget: a check of 600 000
 * keys one get each took a minute. */
#define H_BATCH 512

struct h_batch {
    struct h_exp *e[H_BATCH]; /* in key order (the expectations are sorted) */
    char *val[H_BATCH];
    size_t vlen[H_BATCH];
    int n;
};

struct h_tally {
    int missing_ok;
    long bad, n;
};

static int h_batch_find(const struct h_batch *b, const char *key, size_t len)
{
    int lo = 0, hi = b->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strncmp(b->e[mid]->key, key, len);
        if (!c && b->e[mid]->key[len])
            c = 1;
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* One value against its expected hex; a message for the first few wrong. */
static void h_check_one(memcached_st *m, const struct h_exp *e, const char *v, size_t vl,
                        memcached_return_t rc, struct h_tally *tl)
{
    const char *hex = e->hex;
    size_t hl = strlen(hex);
    if (tl->missing_ok && rc == MEMCACHED_NOTFOUND)
        return;
    int ok = rc == MEMCACHED_SUCCESS && vl * 2 == hl;
    for (size_t j = 0; ok && j < vl; j++)
        ok = ((h_hexval(hex[2 * j]) << 4) | h_hexval(hex[2 * j + 1])) == (unsigned char)v[j];
    if (!ok && tl->bad < 5)
        fprintf(stderr, "  mismatch for %s: %s (got %zu bytes, want %zu)\n", e->key,
                rc == MEMCACHED_SUCCESS ? "different bytes" : memcached_strerror(m, rc), vl,
                hl / 2);
    tl->bad += !ok;
    tl->n++;
}

static void h_check_batch(memcached_st *m, struct h_batch *b, struct h_tally *tl)
{
    const char *keys[H_BATCH];
    size_t lens[H_BATCH];
    for (int j = 0; j < b->n; j++) {
        keys[j] = b->e[j]->key;
        lens[j] = strlen(keys[j]);
        b->val[j] = NULL;
    }
    memcached_return_t rc = memcached_mget(m, keys, lens, (size_t)b->n);
    memcached_result_st *r;
    while (rc == MEMCACHED_SUCCESS && (r = memcached_fetch_result(m, NULL, &rc))) {
        int j = h_batch_find(b, memcached_result_key_value(r), memcached_result_key_length(r));
        if (j >= 0 && !b->val[j]) {
            b->vlen[j] = memcached_result_length(r);
            b->val[j] = malloc(b->vlen[j] + 1);
            memcpy(b->val[j], memcached_result_value(r), b->vlen[j]);
        }
        memcached_result_free(r);
    }
    /* not returned: absent, or the reason the fetch ended early */
    memcached_return_t none =
        rc == MEMCACHED_END || rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND
            ? MEMCACHED_NOTFOUND
            : rc;
    for (int j = 0; j < b->n; j++) {
        h_check_one(m, b->e[j], b->val[j], b->val[j] ? b->vlen[j] : 0,
                    b->val[j] ? MEMCACHED_SUCCESS : none, tl);
        free(b->val[j]);
    }
    b->n = 0;
}

/* Keys listed more than once are checked against their last value: the
 * later line wins. */
static long h_check(const char *expect_path, const char *const servers_by_type[4], long *checked,
                    int missing_ok)
{
    static const char *const types[4] = {"idfa", "gaid", "adid", "dvid"};
    FILE *f = fopen(expect_path, "r");
    long bad = 0, n = 0, count = 0, cap = 1024;
    memcached_st *cl[4] = {0};
    if (!f)
        return -1;
    struct h_exp *e = malloc((size_t)cap * sizeof(*e));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        if (count == cap)
            e = realloc(e, (size_t)(cap *= 2) * sizeof(*e));
        e[count].key = strdup(line);
        e[count].hex = strdup(tab + 1);
        e[count].order = count;
        count++;
    }
    free(line);
    fclose(f);
    qsort(e, (size_t)count, sizeof(*e), h_exp_cmp);
    for (int t = 0; t < 4; t++)
        if (servers_by_type[t])
            cl[t] = h_mc_client(servers_by_type[t]);
    struct h_batch *b = calloc(4, sizeof(*b));
    struct h_tally tally = {.missing_ok = missing_ok};
    for (long i = 0; i < count; i++) {
        if (i + 1 < count && strcmp(e[i].key, e[i + 1].key) == 0)
            continue; /* a later line has the same key */
        int t = -1;
        for (int k = 0; k < 4; k++)
            if (strncmp(e[i].key, types[k], 4) == 0 && e[i].key[4] == ':')
                t = k;
        if (t < 0 || !cl[t])
            continue;
        b[t].e[b[t].n++] = &e[i];
        if (b[t].n == H_BATCH)
            h_check_batch(cl[t], &b[t], &tally);
    }
    for (int t = 0; t < 4; t++)
        if (b[t].n)
            h_check_batch(cl[t], &b[t], &tally);
    free(b);
    bad = tally.bad;
    n = tally.n;
    for (long i = 0; i < count; i++)
        free(e[i].key), free(e[i].hex);
    free(e);
    for (int t = 0; t < 4; t++)
        if (cl[t])
            memcached_free(cl[t]);
    if (checked)
        *checked = n;
    return bad;
}

long h_check_expect(const char *expect_path, const char *const servers_by_type[4], long *checked)
{
    return h_check(expect_path, servers_by_type, checked, 0);
}

long h_check_stored(const char *expect_path, const char *const servers_by_type[4], long *present)
{
    return h_check(expect_path, servers_by_type, present, 1);
}

int h_free_port(void)
{
    int lo = 32768, hi = 60999;
    char *r = h_read_file("/proc/sys/net/ipv4/ip_local_port_range", NULL);
    if (r)
        sscanf(r, "%d %d", &lo, &hi);
    free(r);
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 8;
    if (lo > 12000)
        return 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 10000));
    return hi + 1 + (int)(rand_r(&seed) % (unsigned)(65536 - hi - 1));
}

const char *h_endpoint(int port)
{
    static char bufs[8][32];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 32, "127.0.0.1:%d", port);
    return b;
}

void h_mc_flush(int port)
{
    memcached_st *m = h_mc_client(h_endpoint(port));
    memcached_flush(m, 0);
    memcached_free(m);
}

int h_mc_start_all(struct h_mc *mc, int n, const char **endpoints)
{
    for (int i = 0; i < n; i++) {
        if (h_mc_start(&mc[i], NULL) < 0)
            return -1;
        if (endpoints) {
            free((char *)endpoints[i]);
            endpoints[i] = strdup(h_endpoint(mc[i].port));
        }
    }
    return 0;
}

void h_mc_stop_all(struct h_mc *mc, int n)
{
    for (int i = 0; i < n; i++)
        h_mc_stop(&mc[i]);
}

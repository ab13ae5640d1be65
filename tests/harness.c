/*
 * harness.c — test helpers (see harness.h).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/inotify.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmemcached/memcached.h>
#include <zlib.h>

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int h_can_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Start memcached on port (0: a free one, retried if taken meanwhile). */
int h_mc_start_at(struct h_mc *mc, int want_port, const char *const *extra)
{
    for (int attempt = 0; attempt < (want_port ? 50 : 5); attempt++) {
        int port = want_port ? want_port : h_free_port();
        char pbuf[16];
        snprintf(pbuf, sizeof(pbuf), "%d", port);
        const char *argv[32] = {"memcached", "-p",  pbuf, "-l", "127.0.0.1", "-U",  "0",
                                "-m",        "256", "-t", "1",  "-c",        "1024"};
        int n = 13;
        if (getuid() == 0)
            argv[n++] = "-u", argv[n++] = "root";
        for (int i = 0; extra && extra[i] && n < 31; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        pid_t pid = fork();
        if (pid == 0) {
            int dn = open("/dev/null", O_RDWR);
            dup2(dn, 1);
            dup2(dn, 2);
            execvp("memcached", (char *const *)argv);
            _exit(127);
        }
        for (int i = 0; i < 200; i++) {
            if (h_can_connect(port)) {
                mc->pid = pid;
                mc->port = port;
                return 0;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break; /* died: port taken (TIME_WAIT, or by another) */
            h_sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (want_port)
            h_sleep_ms(100);
    }
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
        char *colon = strrchr(tok, ':');
        *colon = 0;
        memcached_server_add(m, tok, (in_port_t)atoi(colon + 1));
    }
    free(copy);
    return m;
}

char *h_mc_get(const char *servers, const char *key, size_t *len)
{
    memcached_st *m = h_mc_client(servers);
    uint32_t flags;
    memcached_return_t rc;
    char *v = memcached_get(m, key, strlen(key), len, &flags, &rc);
    memcached_free(m);
    return rc == MEMCACHED_SUCCESS ? v : (free(v), NULL);
}

long h_mc_items(int port)
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
    char *p = strstr(buf, "STAT curr_items ");
    return p ? atol(p + 16) : -1;
}

char *h_tmpdir(void)
{
    char *t = strdup("/tmp/memc-test-XXXXXX");
    return mkdtemp(t);
}

void h_rmrf(const char *dir)
{
    const char *argv[] = {"rm", "-rf", dir, NULL};
    h_run(argv, NULL, 30);
}

int h_gz_write(const char *path, const void *text, size_t len)
{
    gzFile g = gzopen(path, "wb6");
    if (!g)
        return -1;
    int ok = len == 0 || gzwrite(g, text, (unsigned)len) == (int)len;
    return gzclose(g) == Z_OK && ok ? 0 : -1;
}

pid_t h_spawn(const char *const *argv, const char *errfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* stdout goes with stderr: a test's own output stays readable. */
        int dn = open("/dev/null", O_RDWR);
        int fd = errfile ? open(errfile, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
        dup2(dn, 0);
        dup2(fd >= 0 ? fd : dn, 1);
        dup2(fd >= 0 ? fd : dn, 2);
        if (fd > 2)
            close(fd);
        if (dn > 2)
            close(dn);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int h_wait(pid_t pid, int timeout_s)
{
    int status;
    for (int i = 0; i < timeout_s * 100; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        h_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int h_run(const char *const *argv, const char *errfile, int timeout_s)
{
    pid_t pid = h_spawn(argv, errfile);
    return pid < 0 ? -1 : h_wait(pid, timeout_s);
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
    for (long i = 0; i < count; i++) {
        if (i + 1 < count && strcmp(e[i].key, e[i + 1].key) == 0)
            continue; /* a later line has the same key */
        int t = -1;
        for (int k = 0; k < 4; k++)
            if (strncmp(e[i].key, types[k], 4) == 0 && e[i].key[4] == ':')
                t = k;
        if (t < 0 || !cl[t])
            continue;
        const char *hex = e[i].hex;
        size_t hl = strlen(hex), vl = 0;
        uint32_t flags;
        memcached_return_t rc;
        char *v = memcached_get(cl[t], e[i].key, strlen(e[i].key), &vl, &flags, &rc);
        if (missing_ok && rc == MEMCACHED_NOTFOUND)
            continue;
        int ok = rc == MEMCACHED_SUCCESS && vl * 2 == hl;
        for (size_t j = 0; ok && j < vl; j++)
            ok = ((h_hexval(hex[2 * j]) << 4) | h_hexval(hex[2 * j + 1])) == (unsigned char)v[j];
        if (!ok && bad < 5)
            fprintf(stderr, "  mismatch for %s: %s (got %zu bytes, want %zu)\n", e[i].key,
                    rc == MEMCACHED_SUCCESS ? "different bytes" : memcached_strerror(cl[t], rc), vl,
                    hl / 2);
        bad += !ok;
        n++;
        free(v);
    }
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

int h_gen(const char *const *args)
{
    const char *argv[64] = {MEMC_GEN};
    int n = 1;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return h_run(argv, NULL, 120) == 0 ? 0 : -1;
}

char *h_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int h_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

const char *h_endpoint(int port)
{
    static char bufs[8][32];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 32, "127.0.0.1:%d", port);
    return b;
}

int h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

void h_mc_flush(int port)
{
    memcached_st *m = h_mc_client(h_endpoint(port));
    memcached_flush(m, 0);
    memcached_free(m);
}

int h_notify_open(struct h_notify *n, const char *dir)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", n->path);
    if (n->fd < 0 || bind(n->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    n->cap = 1 << 16;
    n->log = calloc(1, n->cap);
    return 0;
}

void h_notify_close(struct h_notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    unlink(n->path);
    free(n->log);
    n->log = NULL;
}

static void h_notify_drain(struct h_notify *n, int timeout_ms)
{
    struct pollfd p = {.fd = n->fd, .events = POLLIN};
    while (poll(&p, 1, timeout_ms) > 0) {
        char buf[4096];
        ssize_t got = recv(n->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (got <= 0)
            break;
        if (n->len + (size_t)got + 2 > n->cap) {
            n->cap = (n->cap + (size_t)got) * 2;
            n->log = realloc(n->log, n->cap);
        }
        memcpy(n->log + n->len, buf, (size_t)got);
        n->len += (size_t)got;
        n->log[n->len++] = '\n';
        n->log[n->len] = 0;
        timeout_ms = 0;
    }
}

int h_notify_wait(struct h_notify *n, const char *what, size_t *from, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        h_notify_drain(n, 20);
        const char *hit = strstr(n->log + (from ? *from : 0), what);
        if (hit) {
            if (from) {
                const char *nl = strchr(hit, '\n');
                *from = (size_t)((nl ? nl : hit) - n->log);
            }
            return 0;
        }
        if (waited >= timeout_ms)
            return -1;
    }
}

int h_wait_path(const char *path, int gone, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (h_exists(path) != gone)
            return 0;
        h_sleep_ms(20);
    }
    return -1;
}

int h_wait_text(const char *path, const char *what, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        char *t = h_read_file(path, NULL);
        int hit = t && strstr(t, what);
        free(t);
        if (hit)
            return 0;
        h_sleep_ms(20);
    }
    return -1;
}

int h_children(pid_t pid, pid_t *out, int max)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    char *t = h_read_file(p, NULL);
    int n = 0;
    for (char *s = t, *e; s && n < max; s = e) {
        long v = strtol(s, &e, 10);
        if (e == s)
            break;
        out[n++] = (pid_t)v;
    }
    free(t);
    return n;
}

int h_dot_renames(int in, const char *only, char *why, size_t whylen)
{
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    char last[NAME_MAX + 1] = "";
    int dots = 0, ordered = 1;
    ssize_t got;
    while ((got = read(in, buf, sizeof(buf))) > 0)
        for (char *p = buf; p < buf + got;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (!ev->len || ev->name[0] != '.' || (only && strcmp(ev->name, only) != 0))
                continue;
            if (ordered && strcmp(last, ev->name) >= 0) {
                snprintf(why, whylen, "renamed %s after %s", ev->name, last);
                ordered = 0;
            }
            snprintf(last, sizeof(last), "%s", ev->name);
            dots++;
        }
    return ordered ? dots : -1;
}

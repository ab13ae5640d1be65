/*
 * tls_server.c — memcached with TLS and ASCII auth for the tests
 * (tls_server.h).
 */
#include "tls_server.h"

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

#include "files.h"
#include "procs.h"

int h_pki_make(const char *dir)
{
    const char *argv[] = {MEMC_TLS_CERTS, dir, NULL};
    return h_run(argv, NULL, 60) == 0 ? 0 : -1;
}

const char *h_pki(const char *dir, const char *name)
{
    static char bufs[16][PATH_MAX];
    static int k;
    char *b = bufs[k++ % 16];
    snprintf(b, PATH_MAX, "%s/%s", dir, name);
    return b;
}

/* Does pid listen on port (memcached-start --wait)?  memcached binds every
 * listener before it serves, and exits if one bind fails: once its first
 * port listens, the second one does or the process is gone soon.  A slow
 * machine must not make this give up on a memcached that runs (a restarted
 * one may already hold data). */
static int h_listens(pid_t pid, int port)
{
    char p[16], q[16];
    snprintf(p, sizeof(p), "%d", (int)pid);
    snprintf(q, sizeof(q), "%d", port);
    const char *argv[] = {MEMCACHED_START, "--wait", p, q, "20", NULL};
    return h_run(argv, NULL, 30) == 0;
}

static int h_mcs_launch(struct h_mcs *s, int port)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        if (s->plain_port)
            snprintf(s->listen, sizeof(s->listen), "notls:127.0.0.1:%d", s->plain_port);
        if (h_mc_start_at(&s->mc, port, s->args) < 0)
            return -1;
        if (!s->plain_port || h_listens(s->mc.pid, s->plain_port))
            return 0;
        h_mc_kill(&s->mc); /* the plain port was taken: another one */
        if (!port)
            s->plain_port = h_free_port();
        else
            h_sleep_ms(100); /* a restart: the same ports, once free */
    }
    return -1;
}

int h_mcs_start(struct h_mcs *s, const char *pki, const char *cert, int verify_client,
                const char *auth)
{
    int n = 0;
    memset(s, 0, sizeof(*s));
    if (cert) {
        snprintf(s->opts, sizeof(s->opts),
                 "ssl_chain_cert=%s/%s.pem,ssl_key=%s/%s.key,ssl_ca_cert=%s/ca.pem,"
                 "ssl_verify_mode=%d",
                 pki, cert, pki, cert, pki, verify_client ? 2 : 0);
        s->plain_port = h_free_port();
        s->args[n++] = "-Z";
        s->args[n++] = "-o";
        s->args[n++] = s->opts;
        s->args[n++] = "-l";
        s->args[n++] = s->listen;
    }
    if (auth) {
        static int k;
        snprintf(s->authfile, sizeof(s->authfile), "%s/auth-%d-%d", pki, (int)getpid(), k++);
        char line[512];
        snprintf(line, sizeof(line), "%s\n", auth);
        if (h_write_file(s->authfile, line) < 0)
            return -1;
        s->args[n++] = "-Y";
        s->args[n++] = s->authfile;
    }
    s->args[n] = NULL;
    return h_mcs_launch(s, 0);
}

int h_mcs_restart(struct h_mcs *s)
{
    return h_mcs_launch(s, s->mc.port);
}

void h_mcs_stop(struct h_mcs *s)
{
    h_mc_stop(&s->mc);
    if (s->authfile[0])
        unlink(s->authfile);
}

const char *h_mcs_plain(const struct h_mcs *s)
{
    return h_endpoint(s->plain_port ? s->plain_port : s->mc.port);
}

/* Read until the answer ends with end (or the buffer is full). */
static size_t h_read_until(int fd, char *buf, size_t cap, const char *end)
{
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, end))
            break;
    }
    buf[len] = 0;
    return len;
}

long h_mc_stat_auth(int port, const char *user, const char *pass, const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {2, 0};
    char buf[8192];
    long v = -1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (user) {
        int n = snprintf(buf, sizeof(buf), "set auth 0 0 %zu\r\n%s %s\r\n",
                         strlen(user) + 1 + strlen(pass), user, pass);
        if (write(fd, buf, (size_t)n) != n)
            goto out;
        h_read_until(fd, buf, sizeof(buf), "\r\n");
        if (strncmp(buf, "STORED", 6) != 0)
            goto out;
    }
    if (write(fd, "stats\r\n", 7) != 7)
        goto out;
    h_read_until(fd, buf, sizeof(buf), "END\r\n");
    char pat[64];
    snprintf(pat, sizeof(pat), "STAT %s ", name);
    char *p = strstr(buf, pat);
    v = p ? atol(p + strlen(pat)) : -1;
out:
    if (fd >= 0)
        close(fd);
    return v;
}

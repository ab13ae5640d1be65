/*
 * conn.c — opening a connection to a memcached server and getting it ready
 * (conn.h): TCP connect, TLS handshake, ASCII authentication, each step
 * non-blocking, the whole setup within the link's timeout.
 *
 * Authentication asks first: "mn" answered MN means the server wants none
 * (it was started without -Y), and the password is not sent at all — a
 * memcached without -Y would store the auth "set" as an ordinary value,
 * readable by anyone.  Answered "CLIENT_ERROR unauthenticated", the auth
 * "set" follows, and only STORED makes the link ready.
 *
 * A meta link that does not authenticate asks the same "mn" when its owner
 * wants it (meta_probe: the writer), so that a server which closes the
 * connection on a meta command (twemproxy) does so on 4 bytes: a clean
 * close, said as such (mc_meta_closed), where a close with a batch still
 * unread would have been a reset.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "io.h"
#include "log.h"
#include "proto.h"
#include "tls.h"

const char mc_tls_only_reset[] =
    " (a memcached with TLS only resets plain connections: tls = on for it?)";

/* Start a non-blocking connect.  Name resolution happens here, on every
 * (re)connect, so a changed DNS entry is picked up after a failure. */
static int memc_dial_unix(const struct memc_server *srv, int *connecting, char *why, size_t whylen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv->host);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
        int err = errno;
        snprintf(why, whylen, "connect: %s", strerror(err));
        if (fd >= 0)
            close(fd);
        return -err;
    }
    *connecting = 0; /* a UNIX stream connects at once (or fails: EAGAIN, backlog full) */
    return fd;
}

int memc_dial(const struct memc_server *srv, int *connecting, char *why, size_t whylen)
{
    if (srv->unix_socket)
        return memc_dial_unix(srv, connecting, why, whylen);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    int r = getaddrinfo(srv->host, srv->port, &hints, &res);
    if (r) {
        snprintf(why, whylen, "cannot resolve: %s", gai_strerror(r));
        return -EHOSTUNREACH;
    }
    int err = ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            *connecting = errno == EINPROGRESS;
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(why, whylen, "connect: %s", strerror(err));
    return -err;
}

/* ---- the link ------------------------------------------------------------ */

void mc_link_init(struct mc_link *l)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

void mc_link_close(struct mc_link *l)
{
    if (l->ssl)
        SSL_free(l->ssl);
    if (l->fd >= 0)
        close(l->fd);
    mc_sec_put(l->sec);
    int kind = l->kind;
    unsigned char probe = l->meta_probe;
    const struct memc_server *srv = l->srv;
    mc_link_init(l);
    l->kind = kind;
    l->srv = srv;
    l->meta_probe = probe;
}

static int link_fail(struct mc_link *l, int kind, int err, char *why, size_t whylen,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int link_fail(struct mc_link *l, int kind, int err, char *why, size_t whylen,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    l->state = MC_LINK_FAILED; /* the owner closes it: it may have to leave epoll first */
    l->kind = kind;
    return err;
}

void mc_link_adopt(struct mc_link *l, int fd)
{
    mc_link_close(l);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    l->fd = fd;
    l->state = MC_LINK_READY;
    l->kind = 0;
}

int mc_link_start(struct mc_link *l, const struct memc_server *srv, int timeout_ms, char *why,
                  size_t whylen)
{
    mc_link_close(l);
    l->srv = srv;
    l->kind = 0;
    l->timeout_ms = timeout_ms;
    l->deadline_ms = io_now_ms() + timeout_ms;
    int connecting = 0;
    int fd = memc_dial(srv, &connecting, why, whylen);
    if (fd < 0) {
        l->kind = MC_LINK_FAIL_NET;
        return fd;
    }
    l->fd = fd;
    l->sec = mc_sec_get(srv->type);
    l->state = MC_LINK_CONNECTING;
    l->want = POLLOUT; /* connected or not, the first step comes after a poll */
    return 0;
}

/* ---- bytes --------------------------------------------------------------- */

/* What an SSL_read / SSL_write that returned ret means: -EAGAIN (and
 * which direction it waits for), 0 the server closed, or a failure. */
static ssize_t link_tls_io_error(struct mc_link *l, int ret, int writing, char *why, size_t whylen)
{
    int e = SSL_get_error(l->ssl, ret), err = errno;
    char reason[256];
    switch (e) {
    case SSL_ERROR_WANT_READ:
        l->wr_in = (unsigned char)writing;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        l->rd_out = (unsigned char)!writing;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        if (!writing)
            return 0;
        snprintf(why, whylen, "send: connection closed by the server");
        l->kind = MC_LINK_FAIL_NET;
        return -EPIPE;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!err && !writing)
            return 0;
        snprintf(why, whylen, "%s: %s", writing ? "send" : "read",
                 err ? strerror(err) : "connection closed by the server");
        l->kind = MC_LINK_FAIL_NET;
        return err ? -err : -EPIPE;
    default:
        mc_tls_reason(l->ssl, reason, sizeof(reason));
        snprintf(why, whylen, "TLS: %s%s", reason[0] ? reason : "protocol error",
                 strstr(reason, "certificate required")
                     ? " (the server wants a client certificate: tls_cert_file, tls_key_file)"
                     : "");
        l->kind = MC_LINK_FAIL_TLS;
        return -EPROTO;
    }
}

ssize_t mc_link_send(struct mc_link *l, const void *buf, size_t len, char *why, size_t whylen)
{
    if (!l->ssl) {
        ssize_t n = send(l->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR)
            return -EAGAIN;
        int e = errno;
        snprintf(why, whylen, "send: %s", strerror(e));
        l->kind = MC_LINK_FAIL_NET;
        return -e;
    }
    ERR_clear_error();
    l->wr_in = 0;
    int n = SSL_write(l->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return n > 0 ? n : link_tls_io_error(l, n, 1, why, whylen);
}

ssize_t mc_link_recv(struct mc_link *l, void *buf, size_t len, char *why, size_t whylen)
{
    if (!l->ssl) {
        ssize_t n = recv(l->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR)
            return -EAGAIN;
        int e = errno;
        snprintf(why, whylen, "%s", strerror(e));
        l->kind = MC_LINK_FAIL_NET;
        return -e;
    }
    ERR_clear_error();
    l->rd_out = 0;
    int n = SSL_read(l->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return n > 0 ? n : link_tls_io_error(l, n, 0, why, whylen);
}

ssize_t mc_link_send_request(struct mc_link *l, const char *buf, size_t sent, size_t len, char *why,
                             size_t whylen)
{
    size_t end = len;
    if (l->ssl && len >= 2) {
        size_t k = len - 1; /* the start of the last line */
        while (k > 0 && buf[k - 1] != '\n')
            k--;
        if (sent < k)
            end = k;
    }
    return mc_link_send(l, buf + sent, end - sent, why, whylen);
}

void mc_link_salvage(struct mc_link *l, char *why, size_t whylen)
{
    char buf[256], alert[256];
    if (!l->ssl || l->kind != MC_LINK_FAIL_NET)
        return;
    ssize_t n = mc_link_recv(l, buf, sizeof(buf), alert, sizeof(alert));
    if (n < 0 && n != -EAGAIN && l->kind == MC_LINK_FAIL_TLS)
        snprintf(why, whylen, "%s", alert);
    else
        l->kind = MC_LINK_FAIL_NET;
}

int mc_link_pending(const struct mc_link *l)
{
    return l->ssl && l->state == MC_LINK_READY && SSL_pending(l->ssl) > 0;
}

short mc_link_events(const struct mc_link *l, int want_write)
{
    if (l->state != MC_LINK_READY)
        return l->want;
    short ev = POLLIN;
    if (l->ssl && l->rd_out)
        ev |= POLLOUT;
    if (want_write)
        ev |= l->ssl && l->wr_in ? POLLIN : POLLOUT;
    return ev;
}

int mc_link_readable(const struct mc_link *l, short revents)
{
    return (revents & (POLLIN | POLLERR | POLLHUP)) || (l->rd_out && (revents & POLLOUT));
}

int mc_link_writable(const struct mc_link *l, short revents)
{
    return (revents & POLLOUT) || (l->wr_in && (revents & (POLLIN | POLLERR | POLLHUP)));
}

/* ---- setup --------------------------------------------------------------- */

static int link_auth_io(struct mc_link *l, char *why, size_t whylen);

/* TLS (and the handshake, if any) done: authenticate or be ready. */
static int link_secured(struct mc_link *l, char *why, size_t whylen)
{
    int auth = l->sec && l->sec->auth;
    if (!auth && !(l->meta_probe && l->srv->protocol != CFG_PROTO_CLASSIC)) {
        l->state = MC_LINK_READY;
        return 1;
    }
    l->state = auth ? MC_LINK_AUTH_PROBE : MC_LINK_META_PROBE;
    /* the meta probe: two, so that a TLS-only memcached (which reads a
     * 5-byte record header) resets at once instead of waiting for more */
    l->out = auth ? "mn\r\n" : "mn\r\nmn\r\n";
    l->olen = auth ? 4 : 8;
    l->ooff = l->ilen = 0;
    return link_auth_io(l, why, whylen);
}

/* Names OpenSSL gives a TLS client talking to a plain server. */
static const char *link_tls_hint(const char *reason)
{
    static const char *const plain[] = {"wrong version number", "packet length too long",
                                        "record layer failure", "unexpected eof"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strstr(reason, plain[i]))
            return " (is it a memcached without TLS? then tls = off for it)";
    return "";
}

static int link_handshake(struct mc_link *l, char *why, size_t whylen)
{
    char reason[256];
    ERR_clear_error();
    int r = SSL_do_handshake(l->ssl);
    if (r == 1)
        return link_secured(l, why, whylen);
    int e = SSL_get_error(l->ssl, r), err = errno;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        l->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        snprintf(reason, sizeof(reason), "%s",
                 err && e == SSL_ERROR_SYSCALL ? strerror(err) : "connection closed by the server");
    } else {
        mc_tls_reason(l->ssl, reason, sizeof(reason));
    }
    return link_fail(l, MC_LINK_FAIL_TLS, -EPROTO, why, whylen, "TLS handshake failed: %s%s",
                     reason, link_tls_hint(reason));
}

/* Verify the server as the name to verify says: an address literal
 * against the certificate's IP SANs, a name against its DNS names (and
 * sent as SNI). */
static int link_tls_begin(struct mc_link *l, char *why, size_t whylen)
{
    char reason[256];
    const char *name = l->sec->server_name[0] ? l->sec->server_name : l->srv->host;
    unsigned char ip[16];
    if (l->srv->unix_socket && !l->sec->server_name[0])
        return link_fail(l, MC_LINK_FAIL_TLS, -EPROTO, why, whylen,
                         "a UNIX socket has no host name to verify: set tls_server_name");
    SSL *s = SSL_new(l->sec->ctx);
    int ok = s && SSL_set_fd(s, l->fd) == 1;
    if (ok && (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), name) == 1;
    } else if (ok) {
        SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(s, name) == 1 && SSL_set_tlsext_host_name(s, name) == 1;
    }
    if (!ok) {
        mc_tls_reason(s, reason, sizeof(reason));
        SSL_free(s);
        return link_fail(l, MC_LINK_FAIL_TLS, -EPROTO, why, whylen, "cannot start TLS for %s: %s",
                         name, reason);
    }
    SSL_set_connect_state(s);
    l->ssl = s;
    l->state = MC_LINK_HANDSHAKE;
    return link_handshake(l, why, whylen);
}

static int link_connect_step(struct mc_link *l, short revents, char *why, size_t whylen)
{
    if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
        return 0;
    int err = 0;
    socklen_t sl = sizeof(err);
    if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
        err = errno;
    if (err)
        return link_fail(l, MC_LINK_FAIL_NET, -err, why, whylen, "connect: %s", strerror(err));
    if (l->sec && l->sec->ctx)
        return link_tls_begin(l, why, whylen);
    return link_secured(l, why, whylen);
}

/* The server answers "mn" with MN: it asks for no authentication. */
static int link_auth_open(struct mc_link *l)
{
    if (!l->sec->open_warned)
        log_printf(LOG_WARNING,
                   "memcached %s (%s) asks for no authentication (started without -Y?): the "
                   "password of %s is not sent to it",
                   l->srv->name, cfg_type_name(l->srv->type), l->sec->user);
    l->sec->open_warned = 1;
    l->state = MC_LINK_READY;
    return 1;
}

/* One whole answer line to the setup request in l->in. */
static int link_auth_answer(struct mc_link *l, char *why, size_t whylen)
{
    long n = mc_line(l->in, l->ilen);
    char esc[64 * 4 + 8];
    log_escape(l->in, n > 64 ? 64 : (size_t)n, esc, sizeof(esc));
    if (l->state == MC_LINK_META_PROBE && mc_line_is(l->in, n, "MN")) {
        const char *second = memchr(l->in, '\n', l->ilen) + 1;
        long n2 = mc_line(second, l->ilen - (size_t)(second - l->in));
        if (n2 < 0)
            return 0; /* the second MN is on its way */
        if (mc_line_is(second, n2, "MN")) {
            l->state = MC_LINK_READY;
            return 1;
        }
    }
    if (l->state == MC_LINK_META_PROBE && mc_line_is(l->in, n, "CLIENT_ERROR"))
        return link_fail(l, MC_LINK_FAIL_AUTH, -EACCES, why, whylen,
                         "authentication wanted: %s (memcached -Y: set auth_user and "
                         "auth_password_file)",
                         esc);
    if (l->state == MC_LINK_META_PROBE)
        return link_fail(l, MC_LINK_FAIL_NET, -EPROTO, why, whylen,
                         "answered '%s' to mn (memcached >= 1.6 with meta commands needed; "
                         "a proxy: protocol = classic for this type)",
                         esc);
    if (l->state == MC_LINK_AUTH_PROBE && mc_line_is(l->in, n, "MN"))
        return link_auth_open(l);
    if (l->state == MC_LINK_AUTH_PROBE && mc_line_is(l->in, n, "CLIENT_ERROR")) {
        l->state = MC_LINK_AUTH;
        l->out = l->sec->auth;
        l->olen = l->sec->auth_len;
        l->ooff = l->ilen = 0;
        return link_auth_io(l, why, whylen);
    }
    if (l->state == MC_LINK_AUTH && mc_line_is(l->in, n, "STORED")) {
        l->state = MC_LINK_READY;
        l->authed = 1;
        return 1;
    }
    return link_fail(l, MC_LINK_FAIL_AUTH, -EACCES, why, whylen, "authentication refused: %s", esc);
}

/* The connection failed while authenticating or probing (why says how);
 * closed without a word on the probe's "mn": mc_meta_closed. */
static int link_setup_lost(struct mc_link *l, int err, char *why, size_t whylen)
{
    char sub[256];
    mc_link_salvage(l, why, whylen); /* a TLS alert says more */
    snprintf(sub, sizeof(sub), "%s", why);
    int kind = l->kind == MC_LINK_FAIL_TLS ? MC_LINK_FAIL_TLS : MC_LINK_FAIL_NET;
    int probe = l->state == MC_LINK_META_PROBE;
    if (kind == MC_LINK_FAIL_NET && err == -EPIPE && l->state != MC_LINK_AUTH && !l->ilen)
        return link_fail(l, kind, err, why, whylen, "%s", mc_meta_closed);
    return link_fail(l, kind, err, why, whylen, "%s: %s%s", probe ? "mn" : "authentication", sub,
                     err == -ECONNRESET && !l->ssl && !l->ilen ? mc_tls_only_reset : "");
}

/* Send the setup request, then read its one-line answer. */
static int link_auth_io(struct mc_link *l, char *why, size_t whylen)
{
    while (l->ooff < l->olen) {
        ssize_t n = mc_link_send(l, l->out + l->ooff, l->olen - l->ooff, why, whylen);
        if (n == -EAGAIN) {
            l->want = l->wr_in ? POLLIN : POLLOUT;
            return 0;
        }
        if (n < 0)
            return link_setup_lost(l, (int)n, why, whylen);
        l->ooff += (size_t)n;
    }
    for (;;) {
        ssize_t n = mc_link_recv(l, l->in + l->ilen, sizeof(l->in) - 1 - l->ilen, why, whylen);
        if (n == -EAGAIN) {
            l->want = l->rd_out ? POLLOUT : POLLIN;
            return 0;
        }
        if (n == 0)
            snprintf(why, whylen, "connection closed by the server");
        if (n <= 0)
            return link_setup_lost(l, n ? (int)n : -EPIPE, why, whylen);
        l->ilen += (size_t)n;
        l->in[l->ilen] = 0;
        if (memchr(l->in, '\n', l->ilen)) {
            int r = link_auth_answer(l, why, whylen);
            if (r != 0)
                return r; /* else the meta probe waits for its second MN */
        }
        if (l->ilen == sizeof(l->in) - 1)
            return link_fail(l, MC_LINK_FAIL_AUTH, -EPROTO, why, whylen,
                             "authentication: answer line too long");
    }
}

static int link_timeout(struct mc_link *l, char *why, size_t whylen)
{
    int ms = l->timeout_ms;
    switch (l->state) {
    case MC_LINK_CONNECTING:
        return link_fail(l, MC_LINK_FAIL_NET, -ETIMEDOUT, why, whylen,
                         "connect: timed out after %d ms", ms);
    case MC_LINK_HANDSHAKE:
        return link_fail(l, MC_LINK_FAIL_TLS, -ETIMEDOUT, why, whylen,
                         "TLS handshake: no answer within %d ms (is it a memcached without TLS? "
                         "then tls = off for it)",
                         ms);
    case MC_LINK_META_PROBE:
        return link_fail(l, MC_LINK_FAIL_NET, -ETIMEDOUT, why, whylen,
                         "no answer to mn within %d ms%s", ms,
                         l->ssl ? ""
                                : " (a memcached with TLS only waits for a handshake: tls = "
                                  "on for it?)");
    default:
        return link_fail(l, MC_LINK_FAIL_AUTH, -ETIMEDOUT, why, whylen,
                         "authentication: no answer within %d ms", ms);
    }
}

int mc_link_step(struct mc_link *l, short revents, char *why, size_t whylen)
{
    int r;
    switch (l->state) {
    case MC_LINK_READY:
        return 1;
    case MC_LINK_CONNECTING:
        r = link_connect_step(l, revents, why, whylen);
        break;
    case MC_LINK_HANDSHAKE:
        r = revents ? link_handshake(l, why, whylen) : 0;
        break;
    case MC_LINK_AUTH_PROBE:
    case MC_LINK_AUTH:
    case MC_LINK_META_PROBE:
        r = revents ? link_auth_io(l, why, whylen) : 0;
        break;
    default:
        snprintf(why, whylen, "not connected");
        return -ENOTCONN;
    }
    if (r != 0)
        return r;
    return io_now_ms() >= l->deadline_ms ? link_timeout(l, why, whylen) : 0;
}

/* ---- the server's certificate -------------------------------------------- */

static void link_name(X509_NAME *n, char *out, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = 0;
    if (!b)
        return;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
    int got = BIO_read(b, out, (int)len - 1);
    out[got > 0 ? got : 0] = 0;
    BIO_free(b);
}

int mc_link_peer(const struct mc_link *l, struct mc_link_peer *out)
{
    memset(out, 0, sizeof(*out));
    X509 *c = l->ssl ? SSL_get1_peer_certificate(l->ssl) : NULL;
    if (!c)
        return -ENOTCONN;
    link_name(X509_get_subject_name(c), out->subject, sizeof(out->subject));
    link_name(X509_get_issuer_name(c), out->issuer, sizeof(out->issuer));
    struct tm tm;
    const ASN1_TIME *na = X509_get0_notAfter(c);
    if (ASN1_TIME_to_tm(na, &tm) == 1)
        strftime(out->not_after, sizeof(out->not_after), "%Y-%m-%d %H:%M:%S UTC", &tm);
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, na) == 1)
        out->days_left = days;
    snprintf(out->protocol, sizeof(out->protocol), "%s", SSL_get_version(l->ssl));
    snprintf(out->cipher, sizeof(out->cipher), "%s", SSL_get_cipher_name(l->ssl));
    X509_free(c);
    return 0;
}

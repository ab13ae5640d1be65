/*
 * conn.h — the connection layer: how memc-load reaches a memcached server.
 *
 * Every process that talks to memcached (the writer, the master's health
 * probes, the read-back, verify, --check-config, re-warm) opens its
 * connections here, so what a connection needs before its first command is
 * written once: a non-blocking TCP connect (TCP_NODELAY), then, as the
 * server's device type is configured (mc_link_configure, tls.c), a TLS
 * handshake and memcached's ASCII authentication.  A struct mc_link walks
 * those steps without blocking: the caller polls for mc_link_events() and
 * calls mc_link_step() until it says ready, so one server's handshake never
 * holds up the others in the same poll loop.  Once ready, mc_link_send /
 * mc_link_recv move bytes (SSL_write / SSL_read, or send / recv).
 */
#ifndef MEMC_CONN_H
#define MEMC_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "route.h"

/* A non-blocking TCP connection to srv (TCP_NODELAY): the fd, with
 * *connecting set while connect() is in progress; or -errno, why says it. */
int memc_dial(const struct memc_server *srv, int *connecting, char *why, size_t whylen);

/*
 * The TLS contexts and credentials of every device type, from the config:
 * CA bundle, client certificate and key, the name to verify, the ASCII
 * auth user and password (secret files from $CREDENTIALS_DIRECTORY first,
 * refused when others may read them).  Built whole, then swapped in:
 * links started from then on use them, links already open keep theirs; on
 * failure nothing changes.  Call before threads start (the master at start
 * and on reload, --check-config, verify); forked workers inherit them.
 * 0, or -errno with err (a configuration error: exit 78).
 */
int mc_link_configure(const struct cfg *c, char *err, size_t errlen);
/* Back to plain connections without authentication (tests). */
void mc_link_unconfigure(void);
/* Type t's connections: TLS? the auth user ("" none)? */
int mc_link_tls(int type);
const char *mc_link_user(int type);

/* Said after a plain connection's reset before any answer. */
extern const char mc_tls_only_reset[];

/* Why a link failed; the journal entry says it differently (log.h). */
enum mc_link_fail {
    MC_LINK_FAIL_NET = 1, /* connect, reset, closed, timed out */
    MC_LINK_FAIL_TLS,     /* handshake, certificate, TLS alert */
    MC_LINK_FAIL_AUTH,    /* authentication refused or required */
};

enum mc_link_state {
    MC_LINK_CLOSED,
    MC_LINK_CONNECTING, /* TCP connect in progress */
    MC_LINK_HANDSHAKE,  /* TLS handshake */
    MC_LINK_AUTH_PROBE, /* "mn": does the server ask for authentication? */
    MC_LINK_AUTH,       /* the auth "set", waiting for STORED */
    MC_LINK_META_PROBE, /* "mn" on a meta link that does not authenticate (meta_probe) */
    MC_LINK_READY,
    MC_LINK_FAILED, /* setup failed: close it */
};

struct mc_sec;
struct ssl_st;

struct mc_link {
    int fd;                        /* -1: closed */
    int state;                     /* enum mc_link_state */
    int kind;                      /* enum mc_link_fail of the last failure; 0 none */
    short want;                    /* in setup: the poll events the next step waits for */
    unsigned char rd_out, wr_in;   /* TLS: a read waits to write, a write waits to read */
    unsigned char authed;          /* authenticated (0: no user, or the server asked for none) */
    unsigned char meta_probe;      /* the owner wants a meta link's setup to end with "mn"
                                    * answered MN (the writer: a proxy without meta commands
                                    * closes on it before a batch is sent; kept across
                                    * mc_link_close) */
    struct ssl_st *ssl;            /* NULL: plain */
    struct mc_sec *sec;            /* the type's settings (a reference); NULL: plain, no auth */
    const struct memc_server *srv; /* for messages */
    int64_t deadline_ms;           /* setup must be done by then */
    int timeout_ms;                /* ... this long after mc_link_start */
    const char *out;               /* setup request being sent */
    size_t olen, ooff;
    size_t ilen; /* setup answer so far */
    char in[256];
};

void mc_link_init(struct mc_link *l);
/* Start a link to srv: TCP connect, then as srv's type is configured the
 * TLS handshake and authentication, all within timeout_ms.  0 (then step
 * it until ready) or -errno (why says why, l->kind what kind). */
int mc_link_start(struct mc_link *l, const struct memc_server *srv, int timeout_ms, char *why,
                  size_t whylen);
/* A ready plain link over fd, an already connected socket (made
 * non-blocking; closed with the link). */
void mc_link_adopt(struct mc_link *l, int fd);
/* Move a link in setup on after poll() (revents 0: the poll timed out).
 * 1 ready, 0 not yet (poll for mc_link_events), -errno failed: why says
 * why, l->kind what kind, and the caller closes it (mc_link_close; the
 * socket stays open until then, so it can leave an epoll set first). */
int mc_link_step(struct mc_link *l, short revents, char *why, size_t whylen);
static inline int mc_link_ready(const struct mc_link *l)
{
    return l->state == MC_LINK_READY;
}
/* poll() events: in setup, what the step waits for; ready, reading and,
 * with want_write, writing (TLS may need the other direction for either). */
short mc_link_events(const struct mc_link *l, int want_write);
/* After poll() said revents: may a recv / a send make progress now? */
int mc_link_readable(const struct mc_link *l, short revents);
int mc_link_writable(const struct mc_link *l, short revents);
/* A ready link's bytes: the count, 0 (recv: the server closed), -EAGAIN,
 * or -errno with why (TLS: OpenSSL's reason; l->kind says which kind). */
ssize_t mc_link_send(struct mc_link *l, const void *buf, size_t len, char *why, size_t whylen);
ssize_t mc_link_recv(struct mc_link *l, void *buf, size_t len, char *why, size_t whylen);
/* More of a whole request buf[0..len), from byte sent on: the count sent,
 * -EAGAIN or -errno as mc_link_send.  Over TLS the request's last line goes
 * in a TLS record of its own: memcached before 1.6.39 (Debian 12 has
 * 1.6.18) can go to sleep on bytes OpenSSL has read ahead while it reads a
 * set's value (its commit 96e05b75, "tls: fix potential hang when
 * pipelining sets"); a last record with nothing after its line always
 * arrives on the socket after them, and wakes it. */
ssize_t mc_link_send_request(struct mc_link *l, const char *buf, size_t sent, size_t len, char *why,
                             size_t whylen);
/* A TLS link whose send failed on the network side (reset, broken pipe):
 * a server that refuses us sends a TLS alert and closes, and the alert may
 * still be unread.  If so, its reason replaces why and l->kind becomes
 * MC_LINK_FAIL_TLS. */
void mc_link_salvage(struct mc_link *l, char *why, size_t whylen);
/* Bytes TLS has decrypted and holds: recv them without waiting for poll. */
int mc_link_pending(const struct mc_link *l);
void mc_link_close(struct mc_link *l);

/* The server's certificate on a ready TLS link (--check-config). */
struct mc_link_peer {
    char subject[256], issuer[256], not_after[64];
    char protocol[32], cipher[64];
    long days_left; /* whole days until it expires (negative: expired) */
};
/* 0, or -ENOTCONN when the link has no TLS session. */
int mc_link_peer(const struct mc_link *l, struct mc_link_peer *out);

#endif

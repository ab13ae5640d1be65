/*
 * tls_server.h — memcached with TLS (-Z) and ASCII authentication (-Y) for
 * the integration tests: a throw-away PKI made at test time
 * (tests/lib/tls-certs), memcached started through tests/lib/memcached-start
 * with the extra arguments that turn TLS or auth on, a second plain
 * listener (-l notls:...) so an independent client (libmemcached, which
 * speaks no TLS) can read back what was stored, and `stats` through an
 * authenticated connection.
 */
#ifndef MEMC_TEST_TLS_SERVER_H
#define MEMC_TEST_TLS_SERVER_H

#include <limits.h>

#include "mc_server.h"

/* Make the PKI in dir (ca, server, soon, expired, client, other-ca: see
 * tests/lib/tls-certs).  0 or -1. */
int h_pki_make(const char *dir);
/* "dir/name" in a static rotating buffer. */
const char *h_pki(const char *dir, const char *name);

struct h_mcs {
    struct h_mc mc; /* mc.port: the TLS (or, without TLS, the only) port */
    int plain_port; /* -l notls:127.0.0.1:plain_port when TLS is on; 0 otherwise */
    char opts[PATH_MAX * 4];
    char listen[64];
    char authfile[PATH_MAX];
    const char *args[16];
};

/*
 * Start memcached: with TLS when cert is not NULL (pki's cert.pem and
 * cert.key, its CA to check clients; verify_client 1: a client certificate
 * is required, ssl_verify_mode=2), with -Y when auth is not NULL ("user:pass",
 * written to an auth file in pki).  0 or -1.
 */
int h_mcs_start(struct h_mcs *s, const char *pki, const char *cert, int verify_client,
                const char *auth);
/* The same memcached again on the same ports (after h_mc_kill). 0 or -1. */
int h_mcs_restart(struct h_mcs *s);
void h_mcs_stop(struct h_mcs *s);
/* "127.0.0.1:port" of the plain listener (or the only port). */
const char *h_mcs_plain(const struct h_mcs *s);

/* One number from `stats` on port, authenticating first when user is not
 * NULL; -1 if unreachable or refused. */
long h_mc_stat_auth(int port, const char *user, const char *pass, const char *name);

#endif

/*
 * tls.c — what each device type's connections need beyond TCP (conn.h:
 * mc_link_configure): one OpenSSL client context per type that has TLS on
 * (its CA bundle, optional client certificate and key, TLS 1.2 at least,
 * the server's certificate always verified), and the ASCII auth command
 * with the user and the password read from its file.  Per-type settings
 * (`idfa_tls_ca_file`, ...) lie over the global ones (`tls_ca_file`, ...);
 * an empty per-type value takes the global one.  A new set is built whole
 * before it replaces the one in use, so a reload with a bad file changes
 * nothing; links hold a reference to the set they started with (tls.h).
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conn.h"

static struct mc_sec *tls_cur[CFG_MAX_TYPES];

struct mc_sec *mc_sec_get(int type)
{
    struct mc_sec *s = type >= 0 && type < CFG_MAX_TYPES ? tls_cur[type] : NULL;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void mc_sec_put(struct mc_sec *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(s->ctx);
    mc_secret_free(s->auth, s->auth_len);
    free(s);
}

int mc_link_tls(int type)
{
    return type >= 0 && type < CFG_MAX_TYPES && tls_cur[type] && tls_cur[type]->ctx;
}

const char *mc_link_user(int type)
{
    return type >= 0 && type < CFG_MAX_TYPES && tls_cur[type] ? tls_cur[type]->user : "";
}

void mc_tls_reason(struct ssl_st *ssl, char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    buf[0] = 0;
    if (e && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
        snprintf(buf, len, "%s (%s)", r ? r : "certificate verify failed",
                 X509_verify_cert_error_string(v));
    else if (r)
        snprintf(buf, len, "%s", r);
    else if (e)
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* One type's settings: the per-type key where it is set, else the global
 * one; key names the key the value came from, for messages. */
struct tls_want {
    int tls;
    const char *ca, *cert, *key, *name, *user, *pw;
    char ca_k[40], cert_k[40], key_k[40], user_k[40], pw_k[40];
};

#define TLS_PICK(W, O, G, FIELD, DST, KEYBUF, KEY)                                                 \
    do {                                                                                           \
        int own_ = (O)->FIELD[0] != 0;                                                             \
        (W)->DST = own_ ? (O)->FIELD : (G)->FIELD;                                                 \
        snprintf((W)->KEYBUF, sizeof((W)->KEYBUF), "%s%s%s", own_ ? tname : "", own_ ? "_" : "",   \
                 KEY);                                                                             \
    } while (0)

static void tls_resolve(const struct cfg *c, int t, struct tls_want *w)
{
    const struct cfg_secure *g = &c->secure, *o = &c->type_secure[t];
    const char *tname = cfg_type_name(t);
    w->tls = (o->tls != CFG_TLS_INHERIT ? o->tls : g->tls) == CFG_TLS_ON;
    TLS_PICK(w, o, g, tls_ca_file, ca, ca_k, "tls_ca_file");
    TLS_PICK(w, o, g, tls_cert_file, cert, cert_k, "tls_cert_file");
    TLS_PICK(w, o, g, tls_key_file, key, key_k, "tls_key_file");
    w->name = o->tls_server_name[0] ? o->tls_server_name : g->tls_server_name;
    TLS_PICK(w, o, g, auth_user, user, user_k, "auth_user");
    TLS_PICK(w, o, g, auth_password_file, pw, pw_k, "auth_password_file");
}

static int tls_no_passphrase(char *buf, int size, int rw, void *u)
{
    (void)buf, (void)size, (void)rw, (void)u;
    return 0;
}

/* The client key, read as a secret (credentials first), into ctx. */
static int tls_use_key(SSL_CTX *ctx, const struct tls_want *w, char *err, size_t errlen)
{
    char *pem = NULL, from[PATH_MAX], why[256];
    size_t n = 0;
    int r = mc_secret_read(w->key_k, w->key, &pem, &n, from, sizeof(from), err, errlen);
    if (r < 0)
        return r;
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, tls_no_passphrase, NULL) : NULL;
    BIO_free(b);
    mc_secret_free(pem, n);
    if (!k || SSL_CTX_use_PrivateKey(ctx, k) != 1) {
        mc_tls_reason(NULL, why, sizeof(why));
        snprintf(err, errlen,
                 "%s %s: not a usable PEM private key (%s; an encrypted key must be "
                 "decrypted first)",
                 w->key_k, from, why);
        EVP_PKEY_free(k);
        return -EINVAL;
    }
    EVP_PKEY_free(k);
    return 0;
}

/* A file the context reads must be there: OpenSSL's own message for a
 * missing one is "system lib". */
static int tls_file_ok(const char *key, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
        return -errno;
    }
    return 0;
}

/* The files of the context: CA bundle (else the system's), client
 * certificate chain and key. */
static int tls_ctx_files(SSL_CTX *ctx, const struct tls_want *w, char *err, size_t errlen)
{
    char why[256];
    if (w->ca[0] && tls_file_ok(w->ca_k, w->ca, err, errlen) < 0)
        return -ENOENT;
    if (w->ca[0] ? SSL_CTX_load_verify_locations(ctx, w->ca, NULL) != 1
                 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        mc_tls_reason(NULL, why, sizeof(why));
        snprintf(err, errlen, "%s %s: %s", w->ca_k, w->ca[0] ? w->ca : "(the system's)", why);
        return -EINVAL;
    }
    if (!w->cert[0] != !w->key[0]) {
        snprintf(err, errlen, "%s without %s: a client certificate needs both",
                 w->cert[0] ? w->cert_k : w->key_k, w->cert[0] ? w->key_k : w->cert_k);
        return -EINVAL;
    }
    if (!w->cert[0])
        return 0;
    if (tls_file_ok(w->cert_k, w->cert, err, errlen) < 0)
        return -ENOENT;
    if (SSL_CTX_use_certificate_chain_file(ctx, w->cert) != 1) {
        mc_tls_reason(NULL, why, sizeof(why));
        snprintf(err, errlen, "%s %s: %s", w->cert_k, w->cert, why);
        return -EINVAL;
    }
    int r = tls_use_key(ctx, w, err, errlen);
    if (r == 0 && SSL_CTX_check_private_key(ctx) != 1) {
        mc_tls_reason(NULL, why, sizeof(why));
        snprintf(err, errlen, "%s %s does not belong to %s %s (%s)", w->key_k, w->key, w->cert_k,
                 w->cert, why);
        r = -EINVAL;
    }
    return r;
}

static SSL_CTX *tls_ctx_new(const struct tls_want *w, const char *tname, char *err, size_t errlen)
{
    char why[256], sub[400];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        mc_tls_reason(NULL, why, sizeof(why));
        snprintf(err, errlen, "%s: cannot make a TLS context: %s", tname, why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* a server that closes without close_notify is a closed connection, as
     * in plain text (memcached's framing says where answers end) */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (tls_ctx_files(ctx, w, sub, sizeof(sub)) < 0) {
        snprintf(err, errlen, "%s", sub);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The auth command: "set memc-load-auth 0 0 N\r\n<user> <password>\r\n",
 * the password from its file without its line end. */
static int tls_auth(struct mc_sec *s, const struct tls_want *w, char *err, size_t errlen)
{
    char *pw = NULL, from[PATH_MAX];
    size_t n = 0;
    if (!w->pw[0]) {
        snprintf(err, errlen, "%s is set but no auth_password_file", w->user_k);
        return -EINVAL;
    }
    int r = mc_secret_read(w->pw_k, w->pw, &pw, &n, from, sizeof(from), err, errlen);
    if (r < 0)
        return r;
    size_t len = n;
    if (len && pw[len - 1] == '\n')
        len--;
    if (len && pw[len - 1] == '\r')
        len--;
    /* memcached reads "user password" as two blank-separated tokens */
    for (size_t i = 0; i < len && r == 0; i++)
        if ((unsigned char)pw[i] <= 0x20 || pw[i] == 0x7f)
            r = -EINVAL;
    if (r < 0 || !len) {
        snprintf(err, errlen, "%s %s: %s", w->pw_k, from,
                 len ? "blanks or control characters in the password (memcached takes "
                       "\"user password\" as two words)"
                     : "empty");
        mc_secret_free(pw, n);
        return -EINVAL;
    }
    size_t body = strlen(w->user) + 1 + len, cap = body + 64;
    s->auth = malloc(cap);
    if (s->auth)
        s->auth_len = (size_t)snprintf(s->auth, cap, "set memc-load-auth 0 0 %zu\r\n%s %.*s\r\n",
                                       body, w->user, (int)len, pw);
    mc_secret_free(pw, n);
    return s->auth ? 0 : -ENOMEM;
}

/* Type t's settings, or *out NULL when it needs neither TLS nor auth. */
static int tls_build(const struct cfg *c, int t, struct mc_sec **out, char *err, size_t errlen)
{
    struct tls_want w;
    char sub[600];
    tls_resolve(c, t, &w);
    *out = NULL;
    if (!w.tls && !w.user[0]) {
        if (w.pw[0]) {
            snprintf(err, errlen, "%s: %s is set but no auth_user", cfg_type_name(t), w.pw_k);
            return -EINVAL;
        }
        return 0;
    }
    struct mc_sec *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->refs = 1;
    s->type = t;
    snprintf(s->server_name, sizeof(s->server_name), "%s", w.name);
    snprintf(s->user, sizeof(s->user), "%s", w.user);
    int r = 0;
    if (w.tls && !(s->ctx = tls_ctx_new(&w, cfg_type_name(t), sub, sizeof(sub))))
        r = -EINVAL;
    if (r == 0 && w.user[0])
        r = tls_auth(s, &w, sub, sizeof(sub));
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", cfg_type_name(t), sub);
        mc_sec_put(s);
        return r;
    }
    *out = s;
    return 0;
}

/* A config that names a password or key file is guarded like one. */
static int tls_check_config_file(const struct cfg *c, char *err, size_t errlen)
{
    int secrets = c->secure.tls_key_file[0] || c->secure.auth_password_file[0];
    for (int t = 0; t < CFG_MAX_TYPES; t++)
        secrets |= c->type_secure[t].tls_key_file[0] || c->type_secure[t].auth_password_file[0];
    struct stat st;
    if (!secrets || !c->config_file[0] || stat(c->config_file, &st) < 0)
        return 0;
    char sub[600];
    if (mc_file_private("config file", c->config_file, &st, sub, sizeof(sub)) == 0)
        return 0;
    snprintf(err, errlen, "%s (it names the password or key files)", sub);
    return -EACCES;
}

int mc_link_configure(const struct cfg *c, char *err, size_t errlen)
{
    struct mc_sec *next[CFG_MAX_TYPES] = {0};
    int r = tls_check_config_file(c, err, errlen), tls = 0;
    for (int t = 0; t < CFG_MAX_TYPES && r == 0; t++)
        if (c->addr[t][0])
            r = tls_build(c, t, &next[t], err, errlen);
    if (r < 0) {
        for (int t = 0; t < CFG_MAX_TYPES; t++)
            mc_sec_put(next[t]);
        return r;
    }
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        mc_sec_put(tls_cur[t]);
        tls_cur[t] = next[t];
        tls |= next[t] && next[t]->ctx;
    }
    /* OpenSSL writes with write(): a server gone must not kill us */
    struct sigaction sa;
    if (tls && sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    return 0;
}

void mc_link_unconfigure(void)
{
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        mc_sec_put(tls_cur[t]);
        tls_cur[t] = NULL;
    }
}

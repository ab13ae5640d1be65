/*
 * tls.h — inside the connection layer (mc/): what a device type's
 * connections need beyond TCP, as mc_link_configure built it (tls.c), and
 * the secret files it reads (secret.c).  conn.c takes a reference to its
 * type's struct mc_sec when a link starts, so a reload that builds new
 * ones never pulls the settings from under a link in setup.
 */
#ifndef MEMC_TLS_H
#define MEMC_TLS_H

#include <stddef.h>
#include <sys/stat.h>

struct ssl_ctx_st;
struct ssl_st;

struct mc_sec {
    int refs; /* atomic: links of several threads hold it */
    int type;
    struct ssl_ctx_st *ctx; /* TLS context; NULL: plain */
    char server_name[256];  /* the name to verify; "" the host of the address */
    char user[256];         /* ASCII auth; "" none */
    char *auth;             /* "set memc-load-auth 0 0 N\r\n<user> <password>\r\n" */
    size_t auth_len;
    int open_warned; /* a server that asks for no auth was reported */
};

/* Type t's settings, a reference (mc_sec_put it), or NULL: plain, no auth. */
struct mc_sec *mc_sec_get(int type);
void mc_sec_put(struct mc_sec *s);

/* OpenSSL's reason for the error in its queue (then cleared) into buf, as
 * "certificate verify failed (unable to get local issuer certificate)"
 * when ssl's verification says more; "" if the queue is empty. */
void mc_tls_reason(struct ssl_st *ssl, char *buf, size_t len);

/*
 * A secret file (a password, a private key): $CREDENTIALS_DIRECTORY/NAME
 * or $CREDENTIALS_DIRECTORY/memc-load_NAME when systemd passed one (NAME:
 * the file name of path; LoadCredential=), else path itself.  Refused
 * unless private (mc_file_private).  *data is malloc'ed and NUL-terminated
 * (wipe it with mc_secret_free); *from names the file read.  0 or -errno
 * with err.
 */
int mc_secret_read(const char *what, const char *path, char **data, size_t *len, char *from,
                   size_t fromlen, char *err, size_t errlen);
void mc_secret_free(char *data, size_t len);
/* A file with secrets, or leading to them, may be read and written only by
 * its owner (root, us or the service user) and a group of root's, ours or
 * the service's: as ssh refuses a key others can read.  0 or -EACCES
 * with err ("what PATH: ...; chmod ..."). */
int mc_file_private(const char *what, const char *path, const struct stat *st, char *err,
                    size_t errlen);

#endif

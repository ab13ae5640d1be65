/*
 * secret.c — reading the secret files of the connection layer (tls.h):
 * the auth password and the TLS private key.  Under systemd they come from
 * $CREDENTIALS_DIRECTORY (LoadCredential=, so the files themselves can stay
 * root's alone); either way a file others may read is refused, with the
 * command that fixes it, as ssh refuses such a key.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The unit's User= and Group= (systemd/memc-load.service.in). */
#define MC_SERVICE_USER "memc-load"

/* Secrets are small: a password, a PEM key. */
#define MC_SECRET_MAX (64 * 1024)

int mc_file_private(const char *what, const char *path, const struct stat *st, char *err,
                    size_t errlen)
{
    struct passwd *pw = getpwnam(MC_SERVICE_USER);
    struct group *gr = getgrnam(MC_SERVICE_USER);
    uid_t suid = pw ? pw->pw_uid : 0;
    gid_t sgid = gr ? gr->gr_gid : 0;
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s %s: not a regular file", what, path);
        return -EINVAL;
    }
    if (st->st_uid != 0 && st->st_uid != geteuid() && st->st_uid != suid) {
        snprintf(err, errlen, "%s %s: owned by uid %u, not by root or %s; chown root %s", what,
                 path, (unsigned)st->st_uid, MC_SERVICE_USER, path);
        return -EACCES;
    }
    if (mode & S_IRWXO) {
        snprintf(err, errlen, "%s %s: others may read it (mode %04o); chmod o-rwx %s", what, path,
                 mode, path);
        return -EACCES;
    }
    if ((mode & S_IRWXG) && st->st_gid != 0 && st->st_gid != getegid() && st->st_gid != sgid) {
        snprintf(err, errlen,
                 "%s %s: group %u may read it (mode %04o); chgrp %s %s or chmod g-rwx %s", what,
                 path, (unsigned)st->st_gid, mode, MC_SERVICE_USER, path, path);
        return -EACCES;
    }
    return 0;
}

/* The file systemd passed for path, if any: its name, or memc-load_ and
 * its name (LoadCredential=memc-load:/etc/memc-load/credentials loads each
 * file of that directory as memc-load_FILE). */
static int secret_credential(const char *path, char *out, size_t outlen)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!dir || !*dir || !*base)
        return 0;
    static const char *const prefix[] = {"", "memc-load_"};
    for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++) {
        snprintf(out, outlen, "%s/%s%s", dir, prefix[i], base);
        if (access(out, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* The whole of an open file, at most MC_SECRET_MAX bytes. */
static int secret_slurp(int fd, const char *what, const char *from, char **data, size_t *len,
                        char *err, size_t errlen)
{
    char *buf = malloc(MC_SECRET_MAX + 1);
    size_t n = 0;
    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t r = read(fd, buf + n, MC_SECRET_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            snprintf(err, errlen, "%s %s: %s", what, from, strerror(e));
            mc_secret_free(buf, n);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > MC_SECRET_MAX) {
            snprintf(err, errlen, "%s %s: larger than %d bytes", what, from, MC_SECRET_MAX);
            mc_secret_free(buf, n);
            return -EFBIG;
        }
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int mc_secret_read(const char *what, const char *path, char **data, size_t *len, char *from,
                   size_t fromlen, char *err, size_t errlen)
{
    if (!secret_credential(path, from, fromlen))
        snprintf(from, fromlen, "%s", path);
    int fd = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: %s", what, from, strerror(e));
        return -e;
    }
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r < 0)
        snprintf(err, errlen, "%s %s: %s", what, from, strerror(-r));
    if (r == 0)
        r = mc_file_private(what, from, &st, err, errlen);
    if (r == 0)
        r = secret_slurp(fd, what, from, data, len, err, errlen);
    close(fd);
    return r;
}

void mc_secret_free(char *data, size_t len)
{
    if (!data)
        return;
    explicit_bzero(data, len);
    free(data);
}

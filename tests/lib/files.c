/*
 * files.c — files for the tests (see files.h).
 */
#include "files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "procs.h"

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

int h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
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

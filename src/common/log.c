/*
 * log.c — journal or stderr output for every process of memc-load.
 *
 * Why check JOURNAL_STREAM instead of just "are we under systemd": a unit
 * may redirect stderr to a file or a pipe; only when stderr really is the
 * journal stream do native journal entries (with fields) beat text lines.
 * On a terminal a line is the sentence alone; elsewhere the MEMC_* fields
 * follow it as " KEY=value".
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static int log_max = LOG_INFO;
static int log_journal;
static int log_tty; /* stderr is a terminal: a person reads it, fields go */
static void (*log_hook)(void *ctx);
static void *log_hook_ctx;

void log_set_stderr_hook(void (*fn)(void *ctx), void *ctx)
{
    log_hook = fn;
    log_hook_ctx = ctx;
}

int log_fd_is_journal(int fd)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(fd, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int log_stderr_is_journal(void)
{
    return log_fd_is_journal(STDERR_FILENO);
}

void log_init(int level)
{
    log_max = level;
    log_journal = log_stderr_is_journal();
    log_tty = !log_journal && isatty(STDERR_FILENO);
}

void log_set_level(int level)
{
    log_max = level;
}

int log_level(void)
{
    return log_max;
}

int log_enabled(int prio)
{
    return prio <= log_max;
}

static const char *log_prio_name(int prio)
{
    switch (prio) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void log_event(int prio, const char *msgid, const char *message, const char *const *fields)
{
    if (!log_enabled(prio))
        return;
    if (log_journal) {
        /* sd_journal_sendv takes iovecs; fields are few (at most ~16). */
        struct iovec iov[24];
        char pbuf[32], mbuf[64];
        char *msg = NULL;
        int n = 0;
        if (asprintf(&msg, "MESSAGE=%s", message) < 0)
            return;
        iov[n++] = (struct iovec){msg, strlen(msg)};
        snprintf(pbuf, sizeof(pbuf), "PRIORITY=%d", prio);
        iov[n++] = (struct iovec){pbuf, strlen(pbuf)};
        if (msgid) {
            snprintf(mbuf, sizeof(mbuf), "MESSAGE_ID=%s", msgid);
            iov[n++] = (struct iovec){mbuf, strlen(mbuf)};
        }
        for (int i = 0; fields && fields[i] && n < 24; i++)
            iov[n++] = (struct iovec){(void *)fields[i], strlen(fields[i])};
        sd_journal_sendv(iov, n);
        free(msg);
        return;
    }
    /* One fprintf per line: stdio locks the stream, so lines from threads
     * do not interleave. */
    char line[4096];
    int off = snprintf(line, sizeof(line), "memc-load[%d]: %s: %s", (int)getpid(),
                       log_prio_name(prio), message);
    /* Not a terminal (a file, a pipe, a test): the fields follow the sentence
     * as " KEY=value", so a script can still pick them out. */
    for (int i = 0; !log_tty && fields && fields[i] && off > 0 && (size_t)off < sizeof(line); i++)
        off += snprintf(line + off, sizeof(line) - (size_t)off, " %s", fields[i]);
    if (log_hook)
        log_hook(log_hook_ctx);
    fprintf(stderr, "%s\n", line);
}

/* The message formatted (the level is checked by the callers), then sent. */
static void log_vstruct(int prio, const char *msgid, const struct log_fields *f, const char *fmt,
                        va_list ap) __attribute__((format(printf, 4, 0)));
static void log_vstruct(int prio, const char *msgid, const struct log_fields *f, const char *fmt,
                        va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    log_event(prio, msgid, buf, f && f->n ? f->v : NULL);
}

void log_printf(int prio, const char *fmt, ...)
{
    if (!log_enabled(prio))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vstruct(prio, NULL, NULL, fmt, ap);
    va_end(ap);
}

void log_field(struct log_fields *f, const char *fmt, ...)
{
    if (!log_enabled(f->prio) || f->n >= LOG_MAX_FIELDS || f->used >= sizeof(f->buf))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->buf + f->used, sizeof(f->buf) - f->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(f->buf) - f->used)
        return; /* no room: the field is left out whole, never cut */
    f->v[f->n++] = f->buf + f->used;
    f->v[f->n] = NULL;
    f->used += (size_t)n + 1;
}

void log_struct(int prio, const char *msgid, const struct log_fields *f, const char *fmt, ...)
{
    if (!log_enabled(prio))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vstruct(prio, msgid, f, fmt, ap);
    va_end(ap);
}

void log_cli(int prio, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (log_stderr_is_journal())
        fprintf(stderr, "<%d>%s\n", prio, buf);
    else
        fprintf(stderr, "memc-load: %s%s\n", prio == LOG_WARNING ? "warning: " : "", buf);
}

int log_errno(int prio, int err, const char *fmt, ...)
{
    if (log_enabled(prio)) {
        char buf[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_printf(prio, "%s: %s", buf, strerror(err));
    }
    return -err;
}

const char *log_escape(const char *s, size_t len, char *buf, size_t buflen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (buflen < 8) {
        if (buflen)
            buf[0] = 0;
        return buf;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o + 8 > buflen) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            buf[o++] = (char)ch;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

const char *log_name(const char *name, char *buf, size_t buflen)
{
    return log_escape(name, strlen(name), buf, buflen);
}

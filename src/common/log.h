/*
 * log.h — one place that decides where messages go.
 *
 * Under systemd (stderr is the journal stream, see JOURNAL_STREAM) messages
 * are sent with sd_journal_send() so they carry structured fields such as
 * MEMC_FILE= and a fixed MESSAGE_ID=; otherwise they are plain lines on
 * stderr ("memc-load[pid]: level: message key=value ...").
 *
 * The logger state is private to this file and set once per process before
 * threads start; after that it is only read, so logging is thread-safe.
 */
#ifndef MEMC_LOG_H
#define MEMC_LOG_H

#include <limits.h>
#include <stddef.h>
#include <syslog.h>

/* MESSAGE_IDs (128-bit, fixed forever; documented in the journal catalog). */
#define LOG_MSGID_FILE_LOADED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e01"
/* too many bad lines (error_threshold); a broken or unreadable file is
 * set aside (its own entry: what happened and what to do differ) */
#define LOG_MSGID_FILE_FAILED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e02"
#define LOG_MSGID_FILE_CORRUPT "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0e"
#define LOG_MSGID_WORKER_DIED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e03"
#define LOG_MSGID_MEMC_DOWN "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e04"
#define LOG_MSGID_FILE_LEFT "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e05"
#define LOG_MSGID_RENAME_FAILED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e06"
#define LOG_MSGID_REWARM_STARTED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e07"
#define LOG_MSGID_REWARM_FINISHED "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e08"
#define LOG_MSGID_EVICTIONS "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e09"
#define LOG_MSGID_VERIFY_MISS "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0a"
/* a memcached refuses TLS (handshake, certificate) or our credentials */
#define LOG_MSGID_MEMC_TLS "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0b"
#define LOG_MSGID_MEMC_AUTH "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0c"
/* a retention sweep removed finished files (retain.h) */
#define LOG_MSGID_RETAIN_SWEEP "4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0d"

void log_init(int level);
void log_set_level(int level);
int log_level(void);
int log_enabled(int prio);

void log_printf(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A structured event: message plus "KEY=value" fields (NULL-terminated
 * array).  msgid may be NULL.
 */
void log_event(int prio, const char *msgid, const char *message, const char *const *fields);

/*
 * Structured entries in one call (cf. systemd's log_struct()): the fields
 * are built into a struct log_fields, then
 *
 *     struct log_fields f = LOG_FIELDS_INIT(LOG_ERR);
 *     log_field(&f, "MEMC_FILE=%s", esc);
 *     log_struct(LOG_ERR, LOG_MSGID_X, &f, "%s cannot be renamed: %s", esc, why);
 *
 * Nothing is formatted when the level is off (log_field and log_struct
 * check it first).  f may be NULL: no fields.
 */
#define LOG_MAX_FIELDS 24
struct log_fields {
    int prio, n;
    size_t used;
    const char *v[LOG_MAX_FIELDS + 1];
    char buf[3072];
};
#define LOG_FIELDS_INIT(p)                                                                         \
    {                                                                                              \
        .prio = (p)                                                                                \
    }
void log_field(struct log_fields *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_struct(int prio, const char *msgid, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "message: strerror(err)" at prio; returns -err, so a failure is logged and
 * returned in one line (systemd's `return log_error_errno(r, ...)`). */
int log_errno(int prio, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * A message of a command (config errors, --check-config, verify, get), one
 * line on stderr.  Elsewhere it names the program, as coreutils do
 * ("memc-load: warning: ..."); on the journal stream (JOURNAL_STREAM, as
 * under ExecReload=) the journal names it already ("memc-load[292]:"), so
 * the line is the message alone, its priority as journald's "<N>" prefix.
 * Works before log_init (a command-line error).
 */
void log_cli(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fd is the journal stream (JOURNAL_STREAM names its device and inode). */
int log_fd_is_journal(int fd);

/* Called before a line goes to stderr (not to the journal), e.g. so a
 * terminal progress display can get out of the way.  NULL to remove. */
void log_set_stderr_hook(void (*fn)(void *ctx), void *ctx);

/* Escape a file name (or any bytes) for a log line: printable ASCII stays,
 * everything else becomes \xNN.  Always NUL-terminates; truncates with "...". */
const char *log_escape(const char *s, size_t len, char *buf, size_t buflen);

/* A whole file name escaped: buf of LOG_NAME_LEN bytes never truncates one. */
#define LOG_NAME_LEN (NAME_MAX * 4 + 8)
const char *log_name(const char *name, char *buf, size_t buflen);

#endif

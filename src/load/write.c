/*
 * write.c — request segments and the pipelined meta-protocol write path
 * (see write.h for the why).
 *
 * The send loop is a small poll() state machine over at most
 * CFG_MAX_SERVERS sockets: write what the socket takes, read what it gives,
 * match answers to records in order.  Reading while writing matters: with a
 * large batch memcached answers before it has read everything, and if we
 * did not drain its answers both sides would block on full buffers.
 * memc_arm() gets each connection ready for a poll() round, memc_step()
 * moves it on after, and memc_parse() says what the answers mean for the
 * batch (enum memc_answer).  A new connection's TLS handshake and
 * authentication (conn.h) are steps of the same loop: one server's
 * handshake never holds up the others' batches.  So is a rate limit
 * (rate.h): a connection writes only the records its bucket let go, and
 * one that waits for tokens only lowers the poll() timeout.
 */
#include "write.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "expiry.h"
#include "io.h"
#include "log.h"
#include "proto.h"

#define MEMC_BACKOFF_MIN_MS 50
#define MEMC_BACKOFF_MAX_MS 5000
/* ---- segments ------------------------------------------------------------ */

void memc_seg_reset(struct memc_seg *s)
{
    s->len = 0;
    s->n = 0;
    s->acked = s->refused = s->unavail = s->deferred = s->qfail = 0;
    s->sent = 0;
    s->paced = 0;
    s->reply = s->protocol == CFG_PROTO_CLASSIC;
    s->synced = 0;
    s->expires = s->ttl = 0;
    s->tok_len = 0;
    s->expired = 0;
    if (s->off)
        s->off[0] = 0;
}

void memc_seg_free(struct memc_seg *s)
{
    free(s->buf);
    free(s->off);
    memset(s, 0, sizeof(*s));
}

static int memc_seg_reserve(struct memc_seg *s, size_t more)
{
    if (s->len + more > s->cap) {
        size_t cap = s->cap ? s->cap : 64 * 1024;
        while (cap < s->len + more)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    if (s->n + 2 > s->ncap) {
        uint32_t ncap = s->ncap ? s->ncap * 2 : 1024;
        uint32_t *o = realloc(s->off, ncap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        s->off = o;
        s->ncap = ncap;
    }
    return 0;
}

static char *memc_utoa(char *p, size_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* "set <key> 0 <exptime> <vlen>\r\n" at p (room reserved): exptime is the
 * T flag's number (s->tok, " T<n>"), 0 without one. */
static char *memc_classic_header(const struct memc_seg *s, char *p, const char *type, size_t tlen,
                                 const char *id, size_t idlen, size_t vlen)
{
    memcpy(p, "set ", 4), p += 4;
    memcpy(p, type, tlen), p += tlen;
    *p++ = ':';
    memcpy(p, id, idlen), p += idlen;
    memcpy(p, " 0 ", 3), p += 3;
    if (s->tok_len > 2)
        memcpy(p, s->tok + 2, (size_t)s->tok_len - 2), p += s->tok_len - 2;
    else
        *p++ = '0';
    *p++ = ' ';
    p = memc_utoa(p, vlen);
    *p++ = '\r', *p++ = '\n';
    return p;
}

int memc_seg_add(struct memc_seg *s, const char *type, size_t tlen, const char *id, size_t idlen,
                 const uint8_t *val, size_t vlen)
{
    /* "ms " key " " len [" T" n] " q\r\n" value "\r\n", and room for "mn\r\n";
     * "set " key " 0 " exptime " " len "\r\n" value "\r\n" */
    if (memc_seg_reserve(s, 4 + tlen + 1 + idlen + 3 + 1 + 20 + (size_t)s->tok_len + 4 + vlen + 2 +
                                4) < 0)
        return -ENOMEM;
    char *p = s->buf + s->len;
    if (s->protocol == CFG_PROTO_CLASSIC) {
        p = memc_classic_header(s, p, type, tlen, id, idlen, vlen);
    } else {
        memcpy(p, "ms ", 3), p += 3;
        memcpy(p, type, tlen), p += tlen;
        *p++ = ':';
        memcpy(p, id, idlen), p += idlen;
        *p++ = ' ';
        p = memc_utoa(p, vlen);
        memcpy(p, s->tok, (size_t)s->tok_len), p += s->tok_len;
        *p++ = ' ', *p++ = 'q';
        *p++ = '\r', *p++ = '\n';
    }
    memcpy(p, val, vlen), p += vlen;
    *p++ = '\r', *p++ = '\n';
    s->off[s->n] = (uint32_t)s->len;
    s->len = (size_t)(p - s->buf);
    s->n++;
    s->off[s->n] = (uint32_t)s->len;
    return 0;
}

int memc_seg_finish(struct memc_seg *s)
{
    if (!s->n || s->protocol == CFG_PROTO_CLASSIC)
        return 0;
    if (memc_seg_reserve(s, 4) < 0)
        return -ENOMEM;
    memcpy(s->buf + s->len, "mn\r\n", 4);
    s->len += 4;
    return 0;
}

int memc_seg_expire(struct memc_seg *s, int64_t expires, int64_t now_s)
{
    int64_t v;
    enum exp_token k = exp_token(expires, now_s, &v);
    s->expires = expires;
    s->ttl = k == EXP_RELATIVE ? v : 0;
    s->tok_len = 0;
    if (k == EXP_GONE)
        return -ETIME;
    if (k != EXP_NEVER)
        s->tok_len = snprintf(s->tok, sizeof(s->tok), " T%lld", (long long)v);
    s->ttl_width = s->tok_len - 2;
    return 0;
}

/* Where record i's exptime digits start: the T flag's end 2 bytes before
 * the header's \r (" q", or "  " in reply mode); a classic header's follow
 * "set <key> 0 ".  NULL if not found. */
static char *memc_seg_ttl_at(struct memc_seg *s, uint32_t i)
{
    char *h = s->buf + s->off[i];
    size_t n = s->off[i + 1] - s->off[i];
    if (s->protocol == CFG_PROTO_CLASSIC) {
        char *sp = n > 4 ? memchr(h + 4, ' ', n - 4) : NULL;
        return sp ? sp + 3 : NULL;
    }
    char *cr = memchr(h, '\r', n);
    return cr ? cr - 2 - s->ttl_width : NULL;
}

/* The T flag's digits end 2 bytes before the header's \r (" q", or "  " in
 * reply mode); the new value has no more digits than the old (it only
 * falls), so it fits, zero-padded. */
int memc_seg_expire_now(struct memc_seg *s, int64_t now_s)
{
    int64_t left = s->expires - now_s;
    if (!s->ttl || left >= s->ttl) /* none, a Unix time, or the same second */
        return 0;
    if (left <= 0)
        return -ETIME;
    char d[24];
    snprintf(d, sizeof(d), "%0*lld", s->ttl_width, (long long)left);
    for (uint32_t i = 0; i < s->n; i++) {
        char *at = memc_seg_ttl_at(s, i);
        if (at)
            memcpy(at, d, (size_t)s->ttl_width);
    }
    s->ttl = left;
    return 0;
}

/* Quiet -> reply mode: every record's " q" becomes "  " (memcached accepts
 * the trailing blank), so each one is answered.  O(records). */
static void memc_seg_to_reply(struct memc_seg *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        char *h = s->buf + s->off[i];
        char *cr = memchr(h, '\r', s->off[i + 1] - s->off[i]);
        if (cr && cr[-1] == 'q')
            cr[-1] = ' ';
    }
    s->reply = 1;
    s->acked = s->refused = s->unavail = s->qfail = 0;
    s->sent = 0;
}

size_t memc_seg_key(const struct memc_seg *s, uint32_t i, const char **key)
{
    /* after the command word, "ms " or "set " */
    size_t skip = s->protocol == CFG_PROTO_CLASSIC ? 4 : 3;
    const char *p = s->buf + s->off[i] + skip;
    const char *sp = memchr(p, ' ', s->off[i + 1] - s->off[i] - skip);
    *key = p;
    return sp ? (size_t)(sp - p) : 0;
}

/* ---- connections --------------------------------------------------------- */

void memc_conn_init(struct memc_conn *c, const struct memc_server *srv)
{
    memset(c, 0, sizeof(*c));
    c->srv = srv;
    mc_link_init(&c->link);
    c->fd = -1;
    c->backoff_ms = MEMC_BACKOFF_MIN_MS;
    c->link.meta_probe = 1; /* see conn.c: a proxy without meta closes on the probe */
}

void memc_conn_close(struct memc_conn *c)
{
    mc_link_close(&c->link);
    c->fd = -1;
    c->rlen = 0;
}

void memc_conn_adopt(struct memc_conn *c, int fd)
{
    memc_conn_close(c);
    mc_link_adopt(&c->link, fd);
    c->fd = fd;
    c->lines = 0;
    c->last_io_ms = io_now_ms();
}

void memc_conn_set_rate(struct memc_conn *c, uint64_t rate)
{
    rate_set(&c->rate, rate, io_now_us());
}

static int memc_connect(struct memc_conn *c, int64_t now, int io_timeout_ms)
{
    int r = mc_link_start(&c->link, c->srv, io_timeout_ms, c->why, sizeof(c->why));
    if (r < 0) {
        c->kind = c->link.kind;
        return r;
    }
    c->fd = c->link.fd;
    c->last_io_ms = now;
    c->rlen = 0;
    c->lines = 0;
    return 0;
}

/* The journal entry for a server found down: unreachable, refusing TLS,
 * or refusing our credentials, each with its own MESSAGE_ID. */
static void memc_conn_report(const struct memc_conn *c)
{
    char msg[512], f1[320], f2[64], f3[300];
    const char *type = cfg_type_name(c->srv->type), *user = mc_link_user(c->srv->type);
    const char *id = LOG_MSGID_MEMC_DOWN;
    if (c->kind == MC_LINK_FAIL_TLS) {
        id = LOG_MSGID_MEMC_TLS;
        snprintf(msg, sizeof(msg), "memcached %s (%s) is down for TLS: %s", c->srv->name, type,
                 c->why);
    } else if (c->kind == MC_LINK_FAIL_AUTH) {
        id = LOG_MSGID_MEMC_AUTH;
        snprintf(msg, sizeof(msg), "memcached %s (%s), %s%s: %s", c->srv->name, type,
                 user[0] ? "user " : "no auth_user", user, c->why);
    } else {
        snprintf(msg, sizeof(msg), "memcached %s (%s) unreachable: %s", c->srv->name, type, c->why);
    }
    snprintf(f1, sizeof(f1), "MEMC_SERVER=%s", c->srv->name);
    snprintf(f2, sizeof(f2), "MEMC_DEVICE_TYPE=%s", type);
    snprintf(f3, sizeof(f3), "MEMC_AUTH_USER=%s", user);
    log_event(LOG_ERR, id, msg, (const char *const[]){f1, f2, user[0] ? f3 : NULL, NULL});
}

/*
 * A connection failed.  Three cases:
 *  - a connection kept from an earlier batch that failed before answering
 *    anything in this call (memcached restarted or closed it while we were
 *    idle, or its answer is slow): reconnect at once and send again,
 *    nothing is deferred (a probe of a server that is down is never
 *    stale: that would reconnect without a backoff);
 *  - otherwise the server is marked down, probed again after a backoff, and
 *    the segment's unanswered records are deferred;
 *  - if the connection had acknowledged records of the current load, those
 *    may have died with the server (memcached keeps nothing on restart):
 *    lost_acks counts that, and the load is incomplete (see pipeline.c).
 */
static void memc_conn_fail(struct memc_conn *c, struct memc_seg *s, int64_t now)
{
    int stale = c->reused && !c->answered && c->kind == MC_LINK_FAIL_NET && !c->down;
    memc_conn_close(c);
    if (c->job_acks)
        c->lost_acks++;
    c->job_acks = 0;
    if (stale) {
        c->reused = 0;
        return;
    }
    c->failures++;
    if (!c->down)
        memc_conn_report(c);
    c->down = 1;
    c->next_try_ms = now + c->backoff_ms;
    c->backoff_ms =
        c->backoff_ms * 2 > MEMC_BACKOFF_MAX_MS ? MEMC_BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (s)
        s->deferred = s->n - s->acked;
}

static void memc_conn_up(struct memc_conn *c)
{
    if (c->down)
        log_printf(LOG_NOTICE, "memcached %s (%s) reachable again", c->srv->name,
                   cfg_type_name(c->srv->type));
    c->down = 0;
    c->backoff_ms = MEMC_BACKOFF_MIN_MS;
}

static void memc_refuse(struct memc_seg *s, const char *line, size_t len)
{
    if (s->refused < MEMC_SEG_EXAMPLES) {
        s->example_rec[s->refused] = s->acked;
        while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
            len--;
        snprintf(s->example_why[s->refused], sizeof(s->example_why[0]), "%.*s", (int)len, line);
    }
    s->refused++;
}

static int memc_is(const char *line, size_t len, const char *code)
{
    size_t n = strlen(code);
    return len >= n + 2 && memcmp(line, code, n) == 0 &&
           (line[n] == ' ' || line[n] == '\r' || line[n] == '\n');
}

/* What memc_parse made of the answers read so far. */
enum memc_answer {
    MEMC_ANSWER_OK,     /* every complete line matched a record (or the MN) */
    MEMC_ANSWER_RESET,  /* CLIENT_ERROR: the stream may be out of step; reconnect,
                         * without blame, and resend what is unanswered */
    MEMC_ANSWER_RESEND, /* a quiet batch reported failures: it goes again in reply
                         * mode, on the same connection */
    MEMC_ANSWER_BROKEN, /* protocol error (c->why says which): the server fails */
};

/* The batch's MN sync point arrived. */
static enum memc_answer memc_answer_mn(struct memc_conn *c, struct memc_seg *s)
{
    if (!s->reply) {
        if (s->qfail) {
            memc_seg_to_reply(s);
            return MEMC_ANSWER_RESEND;
        }
        s->acked = s->n; /* the whole quiet batch is stored */
        s->synced = 1;
    } else if (s->acked < s->n) {
        snprintf(c->why, sizeof(c->why), "MN before every record was answered");
        return MEMC_ANSWER_BROKEN;
    } else {
        s->synced = 1;
    }
    return MEMC_ANSWER_OK;
}

/* The server's line (len with its '\n'), escaped for a message (any peer
 * may answer: no raw control bytes in the journal), without the line end. */
static const char *memc_quote(const char *line, size_t len, char *esc, size_t esclen)
{
    size_t n = len - 1;
    if (n && line[n - 1] == '\r')
        n--;
    return log_escape(line, n > 60 ? 60 : n, esc, esclen);
}

/*
 * A CLIENT_ERROR that is about the server, not a record: memcached wants
 * authentication (-Y) or refused ours; it answers the batch's mn (every
 * record was answered); or it is the first answer of a second new
 * connection in a row.  Resetting without blame would reconnect at once,
 * forever: the server fails instead (down, backoff).  1 if so.
 */
static int memc_client_error_fatal(struct memc_conn *c, struct memc_seg *s, const char *line,
                                   size_t len)
{
    char esc[64 * 4 + 8];
    const char *q = memc_quote(line, len, esc, sizeof(esc));
    if (c->lines == 1)
        c->cerr_streak++;
    if (memc_is(line, len, "CLIENT_ERROR unauthenticated") ||
        memc_is(line, len, "CLIENT_ERROR authentication failure")) {
        c->kind = MC_LINK_FAIL_AUTH;
        snprintf(c->why, sizeof(c->why), "authentication wanted: %s%s", q,
                 mc_link_user(c->srv->type)[0] ? ""
                                               : " (memcached -Y: set auth_user and "
                                                 "auth_password_file)");
        return 1;
    }
    if (s->reply && s->acked == s->n && s->protocol != CFG_PROTO_CLASSIC) {
        snprintf(c->why, sizeof(c->why), "'%s' to the batch's mn", q);
        return 1;
    }
    if (c->cerr_streak >= 2) {
        snprintf(c->why, sizeof(c->why), "every new connection is answered '%s'", q);
        return 1;
    }
    return 0;
}

/* A proxy's SERVER_ERROR (MC_SET_UNAVAILABLE) for the next record: not
 * stored, deferred with the file; said once per load. */
static void memc_unavailable(struct memc_conn *c, struct memc_seg *s, const char *line, size_t len)
{
    char esc[64 * 4 + 8];
    if (!c->unavail_said)
        log_printf(LOG_WARNING,
                   "memcached %s (%s) answered '%s' to a set: the server behind a proxy did not "
                   "take it; the file's records for it are not stored and are sent again",
                   c->srv->name, cfg_type_name(c->srv->type),
                   memc_quote(line, len, esc, sizeof(esc)));
    c->unavail_said = 1;
    s->unavail++;
}

/* An answer that is none of a set's (c->why says it). */
static enum memc_answer memc_unexpected(struct memc_conn *c, const struct memc_seg *s,
                                        const char *line, size_t len)
{
    char esc[64 * 4 + 8];
    size_t n = len - 1;
    if (n && line[n - 1] == '\r')
        n--;
    int meta = s->protocol != CFG_PROTO_CLASSIC;
    snprintf(c->why, sizeof(c->why), "unexpected answer '%s'%s",
             log_escape(line, n > 40 ? 40 : n, esc, sizeof(esc)),
             meta && memc_is(line, len, "ERROR") ? " (memcached >= 1.6 with meta commands needed)"
                                                 : "");
    return MEMC_ANSWER_BROKEN;
}

/* One answer line (with its '\n') against the next record; what it says
 * is mc_set_answer's. */
static enum memc_answer memc_answer_line(struct memc_conn *c, struct memc_seg *s, const char *line,
                                         size_t len)
{
    long n = (long)len - 1;
    if (n && line[n - 1] == '\r')
        n--;
    enum mc_set_answer a = mc_set_answer(line, n, s->protocol);
    c->lines++;
    if (a == MC_SET_CLIENT_ERROR) {
        if (memc_client_error_fatal(c, s, line, len))
            return MEMC_ANSWER_BROKEN;
        if (s->reply && s->acked < s->n) {
            memc_refuse(s, line, len);
            s->acked++;
        } else if (!s->reply) {
            memc_seg_to_reply(s); /* learn which record, on a new connection */
        }
        return MEMC_ANSWER_RESET;
    }
    if (c->lines == 1)
        c->cerr_streak = 0;
    if (a == MC_SET_SYNC)
        return memc_answer_mn(c, s);
    if (!s->reply && (a == MC_SET_REFUSED || a == MC_SET_UNAVAILABLE))
        s->qfail++;
    else if (!s->reply || s->acked >= s->n || a == MC_SET_UNEXPECTED)
        return memc_unexpected(c, s, line, len);
    else if (a == MC_SET_REFUSED)
        memc_refuse(s, line, len);
    else if (a == MC_SET_UNAVAILABLE)
        memc_unavailable(c, s, line, len);
    if (s->reply)
        s->acked++;
    if (s->protocol == CFG_PROTO_CLASSIC && s->acked == s->n)
        s->synced = 1; /* classic: no MN, every record answered */
    return MEMC_ANSWER_OK;
}

/* Match the complete answer lines in c->rbuf to records, up to the first
 * that is not MEMC_ANSWER_OK; keep an incomplete last line for later. */
static enum memc_answer memc_parse(struct memc_conn *c, struct memc_seg *s)
{
    size_t pos = 0;
    enum memc_answer r = MEMC_ANSWER_OK;
    while (pos < c->rlen && r == MEMC_ANSWER_OK) {
        char *line = c->rbuf + pos;
        char *nl = memchr(line, '\n', c->rlen - pos);
        if (!nl)
            break;
        size_t len = (size_t)(nl - line) + 1;
        pos += len;
        r = memc_answer_line(c, s, line, len);
    }
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
    if (r == MEMC_ANSWER_OK && c->rlen == sizeof(c->rbuf)) {
        snprintf(c->why, sizeof(c->why), "answer line too long");
        r = MEMC_ANSWER_BROKEN;
    }
    return r;
}

/* Done when the batch's MN arrived (so no answer of it can be mistaken for
 * the next batch's) or the rest of it was given up (its connection closed). */
static int memc_seg_done(const struct memc_seg *s)
{
    return !s || !s->n || s->synced || s->deferred;
}

/* The bytes the bucket lets the connection write: up to the first record
 * it has not let go, the whole request (with its mn) once all are. */
static size_t memc_seg_allowed(const struct memc_seg *s)
{
    return s->paced >= s->n ? s->len : s->off[s->paced];
}

/* Everything the bucket let go is written, and it holds back the rest. */
static int memc_seg_waits(const struct memc_seg *s)
{
    return s->paced < s->n && s->sent >= memc_seg_allowed(s);
}

/*
 * Once everything let go is written, let more records go: as many as the
 * bucket holds tokens for (at most its burst, 1/50 s worth).  If none, the
 * connection waits: *timeout is lowered to the next token, and the wait is
 * no stall (last_io_ms moves on: nothing is owed by the server that the
 * rest of the request would not bring, and a server that stopped reading
 * fills the socket, which is a stall again).
 */
static void memc_pace(struct memc_conn *c, struct memc_seg *s, int64_t now_us, int *timeout)
{
    if (!memc_seg_waits(s))
        return;
    uint32_t n = (uint32_t)rate_take(&c->rate, now_us, s->n - s->paced);
    s->paced += n;
    __atomic_fetch_add(&c->let_go, n, __ATOMIC_RELAXED);
    if (!memc_seg_waits(s))
        return;
    int64_t wait_ms = (rate_wait_us(&c->rate, now_us, 1) + 999) / 1000;
    if (wait_ms < *timeout)
        *timeout = (int)wait_ms;
    c->last_io_ms = now_us / 1000;
}

/* A link in setup (connect, TLS handshake, authentication): 1 once it is
 * ready to carry the batch, 0 while it is not (or it failed). */
static int memc_step_setup(struct memc_conn *c, struct memc_seg *s, short ev, int64_t now)
{
    int r = mc_link_step(&c->link, ev, c->why, sizeof(c->why));
    if (r < 0) {
        c->kind = c->link.kind;
        memc_conn_fail(c, s, now);
        return 0;
    }
    if (r == 0)
        return 0;
    c->setups++;
    c->last_io_ms = now;
    struct mc_link_peer p;
    if (log_enabled(LOG_DEBUG) && mc_link_peer(&c->link, &p) == 0)
        log_printf(LOG_DEBUG, "writer: TLS session with %s (%s): %s %s", c->srv->name,
                   cfg_type_name(c->srv->type), p.protocol, p.cipher);
    return 1;
}

enum { MEMC_ARM_NONE, MEMC_ARM_LIVE, MEMC_ARM_PROBE };

/* A probe in flight: if its answer is here, the server is up (and the
 * batch can go to it now). */
static void memc_probe_look(struct memc_conn *c, struct memc_seg *s, int64_t now)
{
    struct pollfd p = {.fd = c->fd, .events = mc_link_events(&c->link, 0)};
    if (poll(&p, 1, 0) < 0)
        p.revents = 0;
    if (memc_step_setup(c, s, p.revents, now))
        memc_conn_up(c);
}

/*
 * A server that is down is probed off the write path: after its backoff a
 * new link is set up (connect, TLS, authentication, and the "mn" a meta
 * link answers before it is ready), while every batch's records for it
 * are deferred at once.  The probe lives across memc_send calls and takes
 * part in a poll() only beside live segments (MEMC_ARM_PROBE): a hung
 * server never holds a batch for io_timeout_ms.  Once the link is ready
 * the server is up and the next batch uses it.
 */
static int memc_arm_probe(struct memc_conn *c, struct memc_seg *s, struct pollfd *pfd, int64_t now,
                          int io_timeout_ms, int *timeout)
{
    if (!memc_seg_done(s))
        s->deferred = s->n - s->acked; /* don't wait: others keep loading */
    if (c->fd < 0) {
        if (now < c->next_try_ms)
            return MEMC_ARM_NONE;
        if (memc_connect(c, now, io_timeout_ms) < 0) {
            memc_conn_fail(c, NULL, now);
            return MEMC_ARM_NONE;
        }
    }
    pfd->fd = c->fd;
    pfd->events = mc_link_events(&c->link, 0);
    pfd->revents = 0;
    int64_t left = c->link.deadline_ms - now;
    if (left < *timeout)
        *timeout = left < 0 ? 0 : (int)left;
    return MEMC_ARM_PROBE;
}

/*
 * Get one connection ready for this round's poll(): (re)connect if it has
 * none, let the bucket release records, then fill *pfd and lower *timeout
 * to its deadline (the link's setup, no progress for io_timeout_ms, or the
 * bucket's next token).  Returns MEMC_ARM_LIVE if it takes part in the
 * poll, MEMC_ARM_NONE if not (its segment is done, or deferred because
 * the server is down), MEMC_ARM_PROBE for a down server's probe.
 */
static int memc_arm(struct memc_conn *c, struct memc_seg *s, struct pollfd *pfd, int64_t now_us,
                    int io_timeout_ms, int *timeout)
{
    int64_t now = now_us / 1000;
    if (c->down && c->fd >= 0)
        memc_probe_look(c, s, now);
    if (c->down)
        return memc_arm_probe(c, s, pfd, now, io_timeout_ms, timeout);
    if (memc_seg_done(s))
        return 0;
    if (c->fd < 0) {
        if (memc_connect(c, now, io_timeout_ms) < 0) {
            memc_conn_fail(c, s, now);
            return MEMC_ARM_NONE;
        }
        /* a new connection: everything not answered goes again */
        s->sent = s->reply ? s->off[s->acked] : 0;
    }
    int ready = mc_link_ready(&c->link);
    if (ready)
        memc_pace(c, s, now_us, timeout);
    pfd->fd = c->fd;
    pfd->events = mc_link_events(&c->link, s->sent < memc_seg_allowed(s));
    pfd->revents = 0;
    int64_t left = ready ? c->last_io_ms + io_timeout_ms - now : c->link.deadline_ms - now;
    if (mc_link_pending(&c->link))
        left = 0;
    if (left < *timeout)
        *timeout = left < 0 ? 0 : (int)left;
    return MEMC_ARM_LIVE;
}

/* Read what the link gives (and what TLS holds decrypted) and match it to
 * records.  The connection is closed on return (c->fd < 0) if it failed or
 * must be reset. */
static void memc_step_read(struct memc_conn *c, struct memc_seg *s, int64_t now)
{
    do {
        ssize_t got = mc_link_recv(&c->link, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, c->why,
                                   sizeof(c->why));
        if (got == -EAGAIN)
            return;
        if (got <= 0) {
            c->kind = got == 0 ? MC_LINK_FAIL_NET : c->link.kind;
            if (got == 0 && !c->lines && !c->reused && s->protocol != CFG_PROTO_CLASSIC)
                snprintf(c->why, sizeof(c->why), "%s", mc_meta_closed);
            else if (got == 0)
                snprintf(c->why, sizeof(c->why), "connection closed by server");
            else if (got == -ECONNRESET && !c->link.ssl && !c->lines && !c->reused)
                snprintf(c->why, sizeof(c->why), "%s%s", strerror(ECONNRESET), mc_tls_only_reset);
            memc_conn_fail(c, s, now);
            return;
        }
        c->rlen += (size_t)got;
        c->last_io_ms = now;
        uint32_t before = s->acked;
        enum memc_answer r = memc_parse(c, s);
        if (s->acked > before) {
            c->answered = 1;
            c->job_acks += s->acked - before;
            memc_conn_up(c);
        }
        if (r == MEMC_ANSWER_RESET)
            memc_conn_close(c); /* resend the rest on a new connection */
        else if (r == MEMC_ANSWER_BROKEN)
            memc_conn_fail(c, s, now);
        /* MEMC_ANSWER_RESEND: same connection, the batch goes again from byte 0 */
    } while (c->fd >= 0 && mc_link_pending(&c->link) && !memc_seg_done(s));
}

/* Write what the link takes.  The connection is closed on return
 * (c->fd < 0) if it failed. */
static void memc_step_write(struct memc_conn *c, struct memc_seg *s, int64_t now)
{
    ssize_t w = mc_link_send_request(&c->link, s->buf, s->sent, memc_seg_allowed(s), c->why,
                                     sizeof(c->why));
    if (w > 0) {
        s->sent += (size_t)w;
        c->last_io_ms = now;
    } else if (w < 0 && w != -EAGAIN) {
        mc_link_salvage(&c->link, c->why, sizeof(c->why)); /* a TLS alert says more */
        c->kind = c->link.kind;
        memc_conn_fail(c, s, now);
    }
}

/* One connection after poll(): get its link ready, or read, write and
 * check for a stall.  Anything that closes the connection ends the step. */
static void memc_step(struct memc_conn *c, struct memc_seg *s, short ev, int64_t now,
                      int io_timeout_ms)
{
    if (!mc_link_ready(&c->link)) {
        if (!memc_step_setup(c, s, ev, now))
            return;
        if (c->down) { /* a probe answered: up, for the next batch */
            memc_conn_up(c);
            return;
        }
        ev |= POLLOUT; /* ready: the batch can go at once */
    }
    if (mc_link_readable(&c->link, ev) || mc_link_pending(&c->link)) {
        memc_step_read(c, s, now);
        if (c->fd < 0)
            return;
    }
    if (mc_link_writable(&c->link, ev) && s->sent < memc_seg_allowed(s)) {
        memc_step_write(c, s, now);
        if (c->fd < 0)
            return;
    }
    if (!memc_seg_done(s) && !memc_seg_waits(s) && now - c->last_io_ms >= io_timeout_ms) {
        snprintf(c->why, sizeof(c->why), "no answer for %d ms", io_timeout_ms);
        c->kind = MC_LINK_FAIL_NET;
        memc_conn_fail(c, s, now);
    }
}

void memc_send(struct memc_conn **conns, struct memc_seg **segs, int n, int io_timeout_ms)
{
    struct pollfd pfd[CFG_MAX_SERVERS];
    int which[CFG_MAX_SERVERS];

    for (int i = 0; i < n; i++) {
        conns[i]->reused = conns[i]->fd >= 0;
        conns[i]->answered = 0;
    }

    for (int live = 1; live;) {
        int64_t now_us = io_now_us();
        int np = 0, timeout = io_timeout_ms;
        live = 0;
        for (int i = 0; i < n; i++) {
            int a = memc_arm(conns[i], segs[i], &pfd[np], now_us, io_timeout_ms, &timeout);
            live += a == MEMC_ARM_LIVE;
            if (a != MEMC_ARM_NONE)
                which[np++] = i;
        }
        if (!np)
            return;
        /* An error other than EINTR is treated like a timeout (revents stay
         * 0): the per-connection checks decide.  Probes alone: one look,
         * no wait (they go on at the next call). */
        (void)poll(pfd, (nfds_t)np, live ? timeout : 0);
        int64_t now = io_now_ms();
        for (int k = 0; k < np; k++)
            memc_step(conns[which[k]], segs[which[k]], pfd[k].revents, now, io_timeout_ms);
    }
}

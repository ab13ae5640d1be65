/*
 * pipeline.c — reader, packers and writer over a ring of blocks (see
 * pipeline.h for the picture).
 *
 * Synchronisation is one mutex and three condition variables over the
 * ring; every hand-off is per block (~256 KiB, ~800 lines), so the lock is
 * taken a few thousand times a second at most and never contended in a way
 * that shows in a profile.  Nothing is allocated per record: blocks, their
 * segments and the packers' scratch buffers are reused.
 */
#include "pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expiry.h"
#include "inflate.h"
#include "io.h"
#include "log.h"
#include "pack.h"
#include "parse_fast.h"
#include "sample.h"

enum { BLK_FREE, BLK_FILLED, BLK_PACKING, BLK_PACKED, BLK_WRITING };

/* A record that may enter the sample: its key and value are read back from
 * its segment by the writer (smp_offer), so the packer copies nothing. */
struct pipe_cand {
    uint64_t h;
    uint32_t server, rec;
};

struct pipe_block {
    int state;
    uint64_t seq;
    char *text;
    size_t len, cap;
    uint32_t pre_long;  /* overlong lines discarded just before this text */
    char long_head[72]; /* the first one's start and length, for the example */
    size_t long_len;
    /* packer results */
    uint64_t nlines_total; /* lines incl. blank, for numbering */
    struct pipe_stats st;  /* lines, records, errors, err_by, dirty, examples */
    struct memc_seg seg[CFG_MAX_SERVERS];
    struct pipe_cand *cand; /* sample candidates, in line order */
    uint32_t ncand, cand_cap;
};

struct pipe_packer {
    struct pipe *p;
    pthread_t tid;
    struct memc_map map;  /* own clone: libmemcached is not shared */
    struct memc_map prev; /* the same of p->prev (zeroed: none) */
    uint32_t *apps;
    size_t apps_cap;
    uint8_t *val;
    size_t val_cap;
    uint32_t gone; /* servers whose records in this block have expired */
};

struct pipe {
    struct cfg cfg;
    const struct memc_map *map;
    struct parse_types types;

    pthread_mutex_t mu;
    pthread_cond_t cv_free, cv_filled, cv_packed;
    int shutdown;

    int nblocks;
    struct pipe_block *blocks;
    uint64_t next_fill;  /* seq the reader fills next */
    uint64_t next_write; /* seq the writer writes next */

    /* current load, guarded by mu */
    int abort;
    uint64_t line_base;
    struct pipe_stats job;
    uint32_t down_mask;
    uint32_t only_mask;  /* re-warm, retry: only these servers' records are sent (0: all) */
    uint32_t ring_types; /* ring re-warm: of these types only records whose server changed */
    int has_prev;        /* prev: the ring before a reload (cfg.ring_prev) */
    int64_t file_s;      /* the file's time (pipe_set_file_time; 0: the load's start) */
    int64_t expires[CFG_MAX_TYPES]; /* when each type's records expire (0: never) */
    struct memc_map prev;
    /* the write order, this load's turns (writer thread only) */
    pipe_turn_fn turn;
    void *turn_ctx;
    uint32_t granted, refused;
    uint64_t rate; /* records/s to each server, this load (0: unlimited), guarded by mu */

    struct smp *sample; /* NULL: no sample kept */
    int sample_keep;    /* one sample across loads */

    int npackers;
    struct pipe_packer *packers;
    pthread_t writer;
    struct memc_conn conns[CFG_MAX_SERVERS];
    struct memc_conn *conn_ptrs[CFG_MAX_SERVERS];
};

/* ---- packing ------------------------------------------------------------- */

static void pipe_example_add(struct pipe_stats *st, uint64_t line, int status, const char *text,
                             size_t len)
{
    if (st->nexamples >= PIPE_EXAMPLES)
        return;
    struct pipe_example *e = &st->ex[st->nexamples++];
    e->line = line;
    e->status = status;
    log_escape(text, len > 60 ? 60 : len, e->text, sizeof(e->text));
}

static int pipe_scratch(struct pipe_packer *k, size_t len)
{
    size_t need = parse_apps_cap(len);
    if (need > k->apps_cap) {
        uint32_t *a = realloc(k->apps, need * sizeof(*a));
        if (!a)
            return -ENOMEM;
        k->apps = a;
        k->apps_cap = need;
    }
    if (pack_max_size(need) > k->val_cap) {
        uint8_t *v = realloc(k->val, pack_max_size(need));
        if (!v)
            return -ENOMEM;
        k->val = v;
        k->val_cap = pack_max_size(need);
    }
    return 0;
}

/* The record just added to segment g may enter the sample: note it. */
static void pipe_cand_note(struct pipe *p, struct pipe_block *b, int g, const char *key,
                           size_t klen)
{
    uint64_t h = smp_hash(p->sample->seed, key, klen);
    if (!smp_candidate(p->sample, h))
        return;
    if (b->ncand == b->cand_cap) {
        uint32_t cap = b->cand_cap ? b->cand_cap * 2 : 256;
        struct pipe_cand *c = realloc(b->cand, cap * sizeof(*c));
        if (!c)
            return; /* left out of the sample: it stays a sample, a smaller one */
        b->cand = c;
        b->cand_cap = cap;
    }
    b->cand[b->ncand++] = (struct pipe_cand){h, (uint32_t)g, b->seg[g].n - 1};
}

/* The device type an error line starts with, or CFG_MAX_TYPES if none. */
static int pipe_line_type(const struct parse_types *t, const char *line, size_t len)
{
    const char *tab = memchr(line, '\t', len);
    size_t n = tab ? (size_t)(tab - line) : len;
    for (int i = 0; i < t->count && i < CFG_MAX_TYPES; i++)
        if (n == t->name_len[i] && memcmp(line, t->name[i], n) == 0)
            return i;
    return CFG_MAX_TYPES;
}

/* A line that is not a record (or a record that cannot be sent). */
static void pipe_error_line(struct pipe_stats *st, uint64_t lineno, enum parse_status ps, int type,
                            const char *line, size_t len)
{
    st->errors++;
    st->err_by[ps]++;
    st->errors_by[type]++;
    pipe_example_add(st, lineno, ps, line, len);
}

/* Route a parsed record by its full key "type:id" (the key readers look
 * up) and append it, with its value packed in k->val, to that server's
 * segment. */
static void pipe_store_record(struct pipe_packer *k, struct pipe_block *b,
                              const struct parse_rec *rec, uint64_t lineno, size_t vlen)
{
    struct pipe *p = k->p;
    struct pipe_stats *st = &b->st;
    st->records++;
    st->dirty += rec->dirty != 0;
    st->dirty_by[rec->type] += rec->dirty != 0;
    char key[PARSE_MAX_KEY + 1];
    size_t klen = rec->dev_type_len + 1 + rec->dev_id_len;
    memcpy(key, rec->dev_type, rec->dev_type_len);
    key[rec->dev_type_len] = ':';
    memcpy(key + rec->dev_type_len + 1, rec->dev_id, rec->dev_id_len);
    int g = memc_map_route(&k->map, rec->type, key, klen);
    if (p->only_mask && !((p->only_mask >> g) & 1))
        return; /* re-warm of other servers: not this one's record */
    if (((p->ring_types >> rec->type) & 1) && p->has_prev &&
        !memc_map_moved(&k->prev, &k->map, rec->type, key, klen, g))
        return; /* ring re-warm: its server is the one it had */
    if ((k->gone >> g) & 1) {
        st->expired++; /* its life is over: not sent */
        return;
    }
    if (memc_seg_add(&b->seg[g], rec->dev_type, rec->dev_type_len, rec->dev_id, rec->dev_id_len,
                     k->val, vlen) < 0) {
        st->records--;
        pipe_error_line(st, lineno, PARSE_NOT_STORED, rec->type, "out of memory", 13);
    } else if (p->sample) {
        pipe_cand_note(p, b, g, key, klen);
    }
}

/* Segments closed with their sync point; one with no room for it cannot
 * be sent: its records become errors. */
static void pipe_finish_segments(struct pipe *p, struct pipe_block *b)
{
    struct pipe_stats *st = &b->st;
    for (int g = 0; g < p->map->nservers; g++)
        if (memc_seg_finish(&b->seg[g]) < 0) {
            st->records -= b->seg[g].n;
            st->errors += b->seg[g].n;
            st->errors_by[p->map->servers[g].type] += b->seg[g].n;
            st->err_by[PARSE_NOT_STORED] += b->seg[g].n;
            memc_seg_reset(&b->seg[g]);
        }
}

/* A line parse_fast did not take: the plain parser judges it. */
static void pipe_pack_line(struct pipe_packer *k, struct pipe_block *b, const char *line,
                           size_t len, uint64_t lineno)
{
    struct pipe *p = k->p;
    struct parse_rec rec;
    enum parse_status ps;
    if (len > p->cfg.max_line_bytes)
        ps = PARSE_TOO_LONG;
    else if (pipe_scratch(k, len) < 0)
        ps = PARSE_TOO_LONG; /* out of memory for this line: count, don't crash */
    else
        ps = parse_line(&p->types, line, len, &rec, k->apps);
    if (ps == PARSE_BLANK)
        return;
    b->st.lines++;
    if (ps != PARSE_OK)
        pipe_error_line(&b->st, lineno, ps, pipe_line_type(&p->types, line, len), line, len);
    else
        pipe_store_record(k, b, &rec, lineno,
                          pack_user_apps(k->apps, rec.napps, rec.lat, rec.lon, k->val));
}

/*
 * Parse every line of a block and append each record to its server's
 * segment.  parse_fast takes the common line in one pass; the rest go
 * through pipe_pack_line.  Line ends are \n, \r\n or \r: cached positions
 * of the next \n and \r keep the plain path O(block) for any mix (a
 * CR-only file would otherwise rescan for \n on every line).
 */
static void pipe_pack_block(struct pipe_packer *k, struct pipe_block *b)
{
    struct pipe *p = k->p;
    struct pipe_stats *st = &b->st;
    const char *s = b->text, *end = b->text + b->len;
    const char *nl = NULL, *cr = NULL;
    uint64_t lineno = 0;

    memset(st, 0, sizeof(*st));
    b->ncand = 0;
    int64_t now_s = io_wall_us() / 1000000;
    k->gone = 0;
    for (int i = 0; i < p->map->nservers; i++) {
        b->seg[i].protocol = p->map->servers[i].protocol;
        memc_seg_reset(&b->seg[i]);
        if (memc_seg_expire(&b->seg[i], p->expires[p->map->servers[i].type], now_s) < 0)
            k->gone |= 1u << i;
    }
    for (uint32_t i = 0; i < b->pre_long; i++) {
        st->lines++;
        pipe_error_line(st, ++lineno, PARSE_TOO_LONG,
                        pipe_line_type(&p->types, b->long_head, b->long_len), i ? "" : b->long_head,
                        i ? 0 : b->long_len);
    }
    while (s < end) {
        struct parse_rec rec;
        size_t vlen;
        const char *next =
            parse_fast(&p->types, s, end, p->cfg.max_line_bytes, &rec, k->val, &vlen);
        if (next) { /* the common line: parsed and packed in one pass */
            s = next;
            st->lines++;
            pipe_store_record(k, b, &rec, ++lineno, vlen);
            continue;
        }
        if (!nl || nl < s)
            nl = memchr(s, '\n', (size_t)(end - s)), nl = nl ? nl : end;
        if (!cr || cr < s)
            cr = memchr(s, '\r', (size_t)(end - s)), cr = cr ? cr : end;
        const char *e = nl < cr ? nl : cr;
        next = e + 1;
        if (e == cr && e + 1 < end && e[1] == '\n')
            next = e + 2; /* \r\n is one line end */
        pipe_pack_line(k, b, s, (size_t)(e - s), ++lineno);
        s = next > end ? end : next;
    }
    pipe_finish_segments(p, b);
    b->nlines_total = lineno;
}

static void *pipe_packer_main(void *arg)
{
    struct pipe_packer *k = arg;
    struct pipe *p = k->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct pipe_block *b = NULL;
        while (!p->shutdown) {
            /* lowest-seq filled block first: keeps the writer fed in order */
            for (int i = 0; i < p->nblocks; i++) {
                struct pipe_block *c = &p->blocks[i];
                if (c->state == BLK_FILLED && (!b || c->seq < b->seq))
                    b = c;
            }
            if (b)
                break;
            pthread_cond_wait(&p->cv_filled, &p->mu);
        }
        if (p->shutdown)
            break;
        b->state = BLK_PACKING;
        pthread_mutex_unlock(&p->mu);
        pipe_pack_block(k, b);
        pthread_mutex_lock(&p->mu);
        b->state = BLK_PACKED;
        pthread_cond_broadcast(&p->cv_packed);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- writing ------------------------------------------------------------- */

static void pipe_log_dry(struct pipe *p, struct pipe_block *b)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    for (int g = 0; g < p->map->nservers; g++) {
        struct memc_seg *s = &b->seg[g];
        for (uint32_t i = 0; i < s->n; i++) {
            const char *key;
            size_t kl = memc_seg_key(s, i, &key);
            char esc[300];
            log_printf(LOG_DEBUG, "dry run: would set %s on %s (%u bytes of request)",
                       log_escape(key, kl, esc, sizeof(esc)), p->map->servers[g].name,
                       s->off[i + 1] - s->off[i]);
        }
    }
}

/* The block's candidates into the sample, in line order (writer thread,
 * blocks in file order: a later line of a key comes later). */
static void pipe_offer(struct pipe *p, struct pipe_block *b)
{
    for (uint32_t i = 0; i < b->ncand; i++) {
        const struct pipe_cand *c = &b->cand[i];
        const struct memc_seg *sg = &b->seg[c->server];
        if (c->rec >= sg->n)
            continue; /* the segment was dropped (no room for its sync point) */
        const char *key;
        size_t klen = memc_seg_key(sg, c->rec, &key);
        /* "ms <key> <len> q\r\n<value>\r\n" (or "set <key> 0 <exptime> <len>"):
         * the value ends 2 bytes before the next record and starts after the
         * header's line end */
        const char *end = sg->buf + sg->off[c->rec + 1] - 2;
        const char *v = memchr(key + klen, '\n', (size_t)(end - (key + klen)));
        if (v)
            smp_offer(p->sample, c->h, key, klen, (int)c->server, (const uint8_t *)v + 1,
                      (size_t)(end - (v + 1)), sg->expires);
    }
}

/* Fold a written block into the load's totals (called with mu held, in
 * block order, so line numbers can be made absolute here). */
static void pipe_merge(struct pipe *p, struct pipe_block *b)
{
    struct pipe_stats *j = &p->job, *s = &b->st;
    pipe_stats_add(j, s); /* the packer's counts; the writer's follow */
    for (int i = 0; i < s->nexamples && j->nexamples < PIPE_EXAMPLES; i++) {
        j->ex[j->nexamples] = s->ex[i];
        j->ex[j->nexamples++].line += p->line_base;
    }
    for (int g = 0; g < p->map->nservers; g++) {
        struct memc_seg *sg = &b->seg[g];
        uint32_t stored = sg->acked - sg->refused - sg->unavail;
        if (stored)
            j->wrote_mask |= 1u << g;
        int type = p->map->servers[g].type;
        j->stored += stored;
        j->stored_by[type] += stored;
        j->errors += sg->refused;
        j->errors_by[type] += sg->refused;
        j->err_by[PARSE_NOT_STORED] += sg->refused;
        j->deferred += sg->deferred + sg->unavail;
        j->expired += sg->expired;
        if (sg->deferred || sg->unavail)
            j->deferred_mask |= 1u << g;
        for (uint32_t i = 0; i < sg->refused && i < MEMC_SEG_EXAMPLES; i++) {
            if (j->nexamples >= PIPE_EXAMPLES)
                break;
            const char *key;
            size_t kl = memc_seg_key(sg, sg->example_rec[i], &key);
            char k[48];
            log_escape(key, kl > 40 ? 40 : kl, k, sizeof(k));
            struct pipe_example *e = &j->ex[j->nexamples++];
            e->line = 0; /* the key identifies it; line numbers are not kept per record */
            e->status = PARSE_NOT_STORED;
            snprintf(e->text, sizeof(e->text), "%.47s: %.46s", k, sg->example_why[i]);
        }
    }
    p->line_base += b->nlines_total;
}

/* Turns for every server this block writes to (see pipeline.h); the
 * segments of refused servers are deferred and left out (NULL). */
static void pipe_take_turns(struct pipe *p, struct memc_seg **segs)
{
    uint32_t need = 0;
    for (int g = 0; g < p->map->nservers; g++)
        if (segs[g]->n)
            need |= 1u << g;
    uint32_t missing = need & ~p->granted & ~p->refused;
    if (missing && p->turn) {
        uint32_t refused = 0;
        p->granted |= p->turn(p->turn_ctx, missing, &refused) & missing;
        p->refused |= refused & missing & ~p->granted;
    } else if (missing) {
        p->granted |= missing;
    }
    for (int g = 0; g < p->map->nservers; g++)
        if (p->refused >> g & 1 && segs[g]->n) {
            segs[g]->deferred = segs[g]->n;
            segs[g] = NULL;
        }
}

/* Just before the block goes: the seconds left in each segment's T flags,
 * and a segment that expired while it waited is not sent. */
static void pipe_expire_now(struct pipe *p, struct memc_seg **segs)
{
    int64_t now_s = io_wall_us() / 1000000;
    for (int g = 0; g < p->map->nservers; g++)
        if (segs[g] && segs[g]->n && memc_seg_expire_now(segs[g], now_s) < 0) {
            segs[g]->expired = segs[g]->n;
            segs[g] = NULL;
        }
}

static void *pipe_writer_main(void *arg)
{
    struct pipe *p = arg;
    struct memc_seg *segs[CFG_MAX_SERVERS];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct pipe_block *b;
        for (;;) {
            b = &p->blocks[p->next_write % (uint64_t)p->nblocks];
            if (p->shutdown || (b->state == BLK_PACKED && b->seq == p->next_write))
                break;
            pthread_cond_wait(&p->cv_packed, &p->mu);
        }
        if (p->shutdown)
            break;
        b->state = BLK_WRITING;
        int abort = p->abort;
        uint64_t rate = p->rate;
        pthread_mutex_unlock(&p->mu);

        for (int g = 0; g < p->map->nservers; g++)
            segs[g] = &b->seg[g];
        if (abort) {
            for (int g = 0; g < p->map->nservers; g++)
                segs[g]->deferred = segs[g]->n;
        } else if (p->cfg.dry) {
            pipe_log_dry(p, b);
            for (int g = 0; g < p->map->nservers; g++)
                segs[g]->acked = segs[g]->n;
        } else {
            pipe_take_turns(p, segs);
            for (int g = 0; g < p->map->nservers; g++)
                memc_conn_set_rate(&p->conns[g], rate);
            pipe_expire_now(p, segs);
            memc_send(p->conn_ptrs, segs, p->map->nservers, p->cfg.io_timeout_ms);
            for (int g = 0; g < p->map->nservers; g++)
                segs[g] = &b->seg[g];
        }
        if (p->sample && !abort)
            pipe_offer(p, b);
        uint32_t mask = 0;
        for (int g = 0; g < p->map->nservers; g++)
            if (p->conns[g].down)
                mask |= 1u << g;

        pthread_mutex_lock(&p->mu);
        pipe_merge(p, b);
        p->down_mask = mask;
        b->state = BLK_FREE;
        p->next_write++;
        pthread_cond_broadcast(&p->cv_free);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- reading ------------------------------------------------------------- */

/*
 * The reader's side of one load (the caller's thread).  Each block starts
 * with the partial line carried over from the previous one; a line longer
 * than max_line_bytes is counted and dropped up to its line end (skipping),
 * even across blocks.  The first failure (I/O, corrupt gzip, out of memory)
 * sets status and why and ends the reading; the whole lines read before it
 * are still loaded.
 */
struct pipe_reader {
    struct pipe *p;
    struct infl *z;
    pipe_tick_fn tick;
    void *ctx;
    char *carry; /* start of the line cut off at the end of the last block */
    size_t carry_len;
    size_t max_cap; /* largest block: a longest line plus \r\n */
    int eof;        /* no more input: end of file, or a failure */
    int skipping;   /* dropping the rest of an overlong line */
    int status;     /* enum pipe_status */
    int truncated;  /* PIPE_CORRUPT because the data ends short */
    char why[192];  /* for PIPE_CORRUPT / PIPE_IOERR */
    uint64_t bytes_out;
    uint64_t lost_before[CFG_MAX_SERVERS]; /* acks lost before this load (possibly_lost) */
    int64_t last_tick;
};

static void pipe_read_fail(struct pipe_reader *r, int status, const char *why)
{
    r->status = status;
    snprintf(r->why, sizeof(r->why), "%s", why);
}

/* With mu held (released around the callback): the one place the caller
 * gets the current counts, and may ask to stop. */
static void pipe_progress(struct pipe_reader *r)
{
    struct pipe *p = r->p;
    if (!r->tick)
        return;
    p->job.bytes_in = r->z ? infl_bytes_in(r->z) : 0;
    p->job.bytes_out = r->bytes_out;
    struct pipe_stats now = p->job;
    for (int g = 0; g < p->map->nservers; g++)
        now.let_go += __atomic_load_n(&p->conns[g].let_go, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->mu);
    int stop = r->tick(r->ctx, &now);
    pthread_mutex_lock(&p->mu);
    if (stop)
        p->abort = 1;
}

/* With mu held: wait up to 100 ms for a block to be freed, then report
 * progress (and take a stop request) while the writer is busy. */
static void pipe_wait_free(struct pipe_reader *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cv_free waits on it: a clock step cannot stall us */
    ts.tv_nsec += 100 * 1000000;
    if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&r->p->cv_free, &r->p->mu, &ts);
    pipe_progress(r);
}

/* The next block to fill, once it is free; NULL if the load was aborted. */
static struct pipe_block *pipe_acquire(struct pipe_reader *r)
{
    struct pipe *p = r->p;
    struct pipe_block *b = &p->blocks[p->next_fill % (uint64_t)p->nblocks];
    pthread_mutex_lock(&p->mu);
    while (b->state != BLK_FREE)
        pipe_wait_free(r);
    int abort = p->abort;
    pthread_mutex_unlock(&p->mu);
    return abort ? NULL : b;
}

static void pipe_submit(struct pipe *p, struct pipe_block *b)
{
    pthread_mutex_lock(&p->mu);
    b->seq = p->next_fill++;
    b->state = BLK_FILLED;
    pthread_cond_signal(&p->cv_filled);
    pthread_mutex_unlock(&p->mu);
}

/* Reset the load's totals and open the file; 0, or -1 with the failure in
 * r (pipe_read_end still finishes the load). */
static int pipe_read_begin(struct pipe_reader *r, struct pipe *p, int fd, pipe_tick_fn tick,
                           void *ctx)
{
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->tick = tick;
    r->ctx = ctx;
    r->status = PIPE_DONE;
    r->max_cap = p->cfg.max_line_bytes + 2;
    if (r->max_cap < p->cfg.block_bytes)
        r->max_cap = p->cfg.block_bytes;

    pthread_mutex_lock(&p->mu);
    memset(&p->job, 0, sizeof(p->job));
    p->abort = 0;
    p->line_base = 0;
    for (int g = 0; g < p->map->nservers; g++)
        memc_conn_job_begin(&p->conns[g]);
    for (int g = 0; g < p->map->nservers; g++)
        r->lost_before[g] = p->conns[g].lost_acks;
    p->granted = p->refused = 0;
    int64_t now_s = io_wall_us() / 1000000;
    for (int t = 0; t < CFG_MAX_TYPES; t++)
        p->expires[t] =
            exp_deadline(p->file_s ? p->file_s : now_s, cfg_exptime_s(&p->cfg, t), now_s);
    if (p->sample && !p->sample_keep)
        smp_reset(p->sample); /* the writer is idle: nothing of this load is written yet */
    pthread_mutex_unlock(&p->mu);

    int e = infl_open(&r->z, fd);
    if (e < 0) {
        r->status = PIPE_IOERR;
        snprintf(r->why, sizeof(r->why), "cannot start inflate: %s", strerror(-e));
        return -1;
    }
    r->carry = malloc(r->max_cap);
    if (!r->carry) {
        pipe_read_fail(r, PIPE_IOERR, "out of memory");
        return -1;
    }
    r->last_tick = io_now_ms();
    return 0;
}

/* Start b with the carried-over partial line; -1 if out of memory. */
static int pipe_block_start(struct pipe_reader *r, struct pipe_block *b)
{
    size_t cap = r->p->cfg.block_bytes;
    if (r->carry_len > cap)
        cap = r->max_cap; /* the start of a long line, left by a block that grew */
    b->pre_long = 0;
    if (b->cap < cap) {
        char *t = realloc(b->text, cap);
        if (!t) {
            pipe_read_fail(r, PIPE_IOERR, "out of memory");
            return -1;
        }
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text, r->carry, r->carry_len);
    b->len = r->carry_len;
    r->carry_len = 0;
    return 0;
}

/* While skipping: the n bytes just inflated at b->text + b->len belong to
 * the overlong line up to its line end; keep only what follows it. */
static void pipe_read_skip(struct pipe_reader *r, struct pipe_block *b, size_t n)
{
    const char *t = b->text + b->len;
    size_t i = 0;
    while (i < n && t[i] != '\n' && t[i] != '\r')
        i++;
    if (i == n)
        return; /* all of it is the long line: drop */
    r->skipping = 0;
    i += (t[i] == '\r' && i + 1 < n && t[i + 1] == '\n') ? 2 : 1;
    memmove(b->text + b->len, t + i, n - i);
    b->len += n - i;
}

/* One inflate call into the free end of b. */
static void pipe_read_some(struct pipe_reader *r, struct pipe_block *b)
{
    ssize_t n = infl_read(r->z, b->text + b->len, b->cap - b->len);
    if (n < 0) {
        pipe_read_fail(r, n == -EBADMSG ? PIPE_CORRUPT : PIPE_IOERR, infl_error(r->z));
        r->truncated = n == -EBADMSG && infl_truncated(r->z);
        r->eof = 1; /* load the whole lines read so far, then stop */
        return;
    }
    if (n == 0)
        r->eof = 1;
    r->bytes_out += (size_t)n;
    if (!r->skipping)
        b->len += (size_t)n;
    else if (n > 0)
        pipe_read_skip(r, b, (size_t)n);
}

/* The example of an overlong line: its start (the key is there) and the
 * length seen when it was dropped. */
static void pipe_long_example(struct pipe_block *b)
{
    int n =
        snprintf(b->long_head, sizeof(b->long_head), "%.40s... (over %zu bytes)", b->text, b->len);
    b->long_len = n < 0                              ? 0
                  : (size_t)n < sizeof(b->long_head) ? (size_t)n
                                                     : sizeof(b->long_head) - 1;
}

/* While dropping an overlong line nothing is submitted: progress is told
 * all the same (bytes read move on), so the stall check does not fire. */
static void pipe_tick_skipping(struct pipe_reader *r)
{
    int64_t now = io_now_ms();
    if (!r->skipping || !r->tick || now - r->last_tick < 100)
        return;
    r->last_tick = now;
    pthread_mutex_lock(&r->p->mu);
    pipe_progress(r);
    pthread_mutex_unlock(&r->p->mu);
}

/* Fill b until it holds a line end or the input ends.  A line that does not
 * fit grows the block up to max_cap; one longer than max_line_bytes is
 * counted (pre_long) and skipped. */
static void pipe_block_fill(struct pipe_reader *r, struct pipe_block *b)
{
    for (;;) {
        while (b->len < b->cap && !r->eof) {
            pipe_read_some(r, b);
            pipe_tick_skipping(r);
        }
        if (r->eof || parse_cut(b->text, b->len))
            return;
        /* no line end in the whole block */
        if (b->len > r->p->cfg.max_line_bytes) {
            if (!b->pre_long++) /* counted as one error line by the packer */
                pipe_long_example(b);
            b->len = 0;
            r->skipping = 1;
            continue;
        }
        size_t ncap = b->cap * 2 > r->max_cap ? r->max_cap : b->cap * 2;
        char *t = realloc(b->text, ncap);
        if (!t) {
            r->status = PIPE_IOERR;
            snprintf(r->why, sizeof(r->why), "out of memory for a %zu-byte line", b->len);
            r->eof = 1;
            return;
        }
        b->text = t;
        b->cap = ncap;
    }
}

/* End b after its last whole line; the rest is carried to the next block. */
static void pipe_block_cut(struct pipe_reader *r, struct pipe_block *b)
{
    if (!r->eof) {
        size_t cut = parse_cut(b->text, b->len);
        r->carry_len = b->len - cut;
        memcpy(r->carry, b->text + cut, r->carry_len);
        b->len = cut;
    } else if (r->skipping) {
        r->skipping = 0; /* the file ended inside the overlong line */
    } else if (r->status != PIPE_DONE) {
        /* The damage cut the last line short: its final field may be a
         * prefix of the real one (a shorter apps list, a shorter lon).
         * Only whole lines are loaded from a damaged file. */
        if (b->len && b->text[b->len - 1] != '\n' && b->text[b->len - 1] != '\r')
            b->len = parse_cut(b->text, b->len);
    }
}

/* Read one block of whole lines and hand it to the packers; -1 when the
 * load stops before the end of the input (aborted, out of memory). */
static int pipe_read_block(struct pipe_reader *r)
{
    struct pipe_block *b = pipe_acquire(r);
    if (!b) {
        r->status = PIPE_ABORTED;
        return -1;
    }
    if (pipe_block_start(r, b) < 0)
        return -1;
    pipe_block_fill(r, b);
    pipe_block_cut(r, b);
    pipe_submit(r->p, b);

    int64_t now = io_now_ms();
    if (r->tick && now - r->last_tick >= 100) {
        r->last_tick = now;
        pthread_mutex_lock(&r->p->mu);
        pipe_progress(r);
        pthread_mutex_unlock(&r->p->mu);
    }
    return 0;
}

/* Wait until everything submitted has been written, then fill *st. */
static int pipe_read_end(struct pipe_reader *r, struct pipe_stats *st)
{
    struct pipe *p = r->p;
    pthread_mutex_lock(&p->mu);
    while (p->next_write != p->next_fill)
        pipe_wait_free(r);
    if (p->abort && r->status == PIPE_DONE)
        r->status = PIPE_ABORTED;
    *st = p->job;
    for (int g = 0; g < p->map->nservers; g++)
        if (p->conns[g].lost_acks != r->lost_before[g])
            st->lost_mask |= 1u << g;
    pthread_mutex_unlock(&p->mu);

    st->bytes_in = r->z ? infl_bytes_in(r->z) : 0;
    st->bytes_out = r->bytes_out;
    st->possibly_lost = st->lost_mask != 0;
    if (r->status == PIPE_DONE && (st->deferred || st->possibly_lost))
        r->status = PIPE_INCOMPLETE;
    st->status = r->status;
    st->truncated = r->truncated;
    snprintf(st->why, sizeof(st->why), "%s", r->why);
    infl_free(r->z);
    free(r->carry);
    return r->status;
}

int pipe_load(struct pipe *p, int fd, struct pipe_stats *st, pipe_tick_fn tick, void *ctx)
{
    struct pipe_reader r;
    if (pipe_read_begin(&r, p, fd, tick, ctx) == 0)
        while (!r.eof && pipe_read_block(&r) == 0)
            ;
    return pipe_read_end(&r, st);
}

/* ---- life cycle ---------------------------------------------------------- */

void pipe_set_only(struct pipe *p, uint32_t mask, uint32_t ring_types)
{
    pthread_mutex_lock(&p->mu);
    p->only_mask = mask;
    p->ring_types = ring_types;
    pthread_mutex_unlock(&p->mu);
}

void pipe_set_file_time(struct pipe *p, int64_t file_s)
{
    pthread_mutex_lock(&p->mu);
    p->file_s = file_s;
    pthread_mutex_unlock(&p->mu);
}

/* The ring the servers' data follows after a reload that changed one
 * (cfg.ring_prev): without it a ring re-warm sends every record of its
 * servers, more than needed but nothing lost. */
static void pipe_ring_prev(struct pipe *p, const struct cfg *c)
{
    struct cfg *pc = malloc(sizeof(*pc));
    int any = 0;
    if (!pc)
        return;
    *pc = *c;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        any |= c->ring_prev[t][0] != 0;
        snprintf(pc->addr[t], sizeof(pc->addr[t]), "%s", c->ring_prev[t]);
    }
    pc->distribution = c->ring_prev_distribution;
    pc->hash = c->ring_prev_hash;
    char err[256];
    p->has_prev = any && memc_map_init(&p->prev, pc, err, sizeof(err)) == 0;
    if (any && !p->has_prev)
        log_printf(LOG_WARNING, "worker: the ring before the reload: %s", err);
    free(pc);
}

void pipe_set_turn(struct pipe *p, pipe_turn_fn turn, void *ctx)
{
    p->turn = turn;
    p->turn_ctx = ctx;
}

void pipe_set_rate(struct pipe *p, uint64_t rate)
{
    pthread_mutex_lock(&p->mu);
    p->rate = rate;
    pthread_mutex_unlock(&p->mu);
}

int pipe_sample_enable(struct pipe *p, int k, uint64_t seed, int keep_across_loads)
{
    struct smp *s = malloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    int e = smp_init(s, k, seed);
    if (e < 0) {
        free(s);
        return e;
    }
    p->sample = s;
    p->sample_keep = keep_across_loads;
    return 0;
}

const struct smp *pipe_sample(const struct pipe *p)
{
    return p->sample;
}

uint32_t pipe_down_mask(struct pipe *p)
{
    pthread_mutex_lock(&p->mu);
    uint32_t m = p->down_mask;
    pthread_mutex_unlock(&p->mu);
    return m;
}

int pipe_create(struct pipe **out, const struct cfg *c, const struct memc_map *map)
{
    struct pipe *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->cfg = *c;
    p->map = map;
    p->types.count = CFG_MAX_TYPES;
    for (int t = 0; t < CFG_MAX_TYPES; t++) {
        p->types.name[t] = cfg_type_name(t);
        p->types.name_len[t] = (uint8_t)strlen(cfg_type_name(t));
        p->types.enabled[t] = map->count[t] > 0;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv_free, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&p->cv_filled, NULL);
    pthread_cond_init(&p->cv_packed, NULL);
    for (int g = 0; g < map->nservers; g++) {
        memc_conn_init(&p->conns[g], &map->servers[g]);
        p->conn_ptrs[g] = &p->conns[g];
    }
    pipe_ring_prev(p, c);
    p->npackers = c->threads;
    p->nblocks = 2 * c->threads + 2;
    p->blocks = calloc((size_t)p->nblocks, sizeof(*p->blocks));
    p->packers = calloc((size_t)p->npackers, sizeof(*p->packers));
    if (!p->blocks || !p->packers)
        goto err;
    int started = 0;
    for (int i = 0; i < p->npackers; i++) {
        p->packers[i].p = p;
        /* parse_fast packs into val: room for its longest line up front */
        p->packers[i].val = malloc(PARSE_FAST_VAL_CAP);
        p->packers[i].val_cap = PARSE_FAST_VAL_CAP;
        if (!p->packers[i].val || memc_map_clone(&p->packers[i].map, map) < 0)
            goto err_threads;
        if ((p->has_prev && memc_map_clone(&p->packers[i].prev, &p->prev) < 0) ||
            pthread_create(&p->packers[i].tid, NULL, pipe_packer_main, &p->packers[i])) {
            memc_map_free(&p->packers[i].map);
            memc_map_free(&p->packers[i].prev);
            goto err_threads;
        }
        started++;
    }
    if (pthread_create(&p->writer, NULL, pipe_writer_main, p))
        goto err_threads;
    *out = p;
    return 0;

err_threads:
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->cv_filled);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) {
        pthread_join(p->packers[i].tid, NULL);
        memc_map_free(&p->packers[i].map);
        memc_map_free(&p->packers[i].prev);
    }
    for (int i = 0; i < p->npackers; i++)
        free(p->packers[i].val);
err:
    memc_map_free(&p->prev);
    free(p->blocks);
    free(p->packers);
    free(p);
    return -ENOMEM;
}

void pipe_destroy(struct pipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->cv_filled);
    pthread_cond_broadcast(&p->cv_packed);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->npackers; i++) {
        pthread_join(p->packers[i].tid, NULL);
        memc_map_free(&p->packers[i].map);
        memc_map_free(&p->packers[i].prev);
        free(p->packers[i].apps);
        free(p->packers[i].val);
    }
    pthread_join(p->writer, NULL);
    for (int g = 0; g < p->map->nservers; g++)
        memc_conn_close(&p->conns[g]);
    for (int i = 0; i < p->nblocks; i++) {
        free(p->blocks[i].text);
        for (int g = 0; g < CFG_MAX_SERVERS; g++)
            memc_seg_free(&p->blocks[i].seg[g]);
        free(p->blocks[i].cand);
    }
    if (p->sample) {
        smp_free(p->sample);
        free(p->sample);
    }
    memc_map_free(&p->prev);
    free(p->blocks);
    free(p->packers);
    pthread_cond_destroy(&p->cv_free);
    pthread_cond_destroy(&p->cv_filled);
    pthread_cond_destroy(&p->cv_packed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

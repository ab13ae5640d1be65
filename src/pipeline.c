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

#include "inflate.h"
#include "io.h"
#include "log.h"
#include "pack.h"

enum { BLK_FREE, BLK_FILLED, BLK_PACKING, BLK_PACKED, BLK_WRITING };

struct pipe_block {
    int state;
    uint64_t seq;
    char *text;
    size_t len, cap;
    uint32_t pre_long; /* overlong lines discarded just before this text */
    /* packer results */
    uint64_t nlines_total; /* lines incl. blank, for numbering */
    struct pipe_stats st;  /* lines, records, errors, err_by, dirty, examples */
    struct memc_seg seg[CFG_MAX_SERVERS];
};

struct pipe_packer {
    struct pipe *p;
    pthread_t tid;
    struct memc_map map; /* own clone: libmemcached is not shared */
    uint32_t *apps;
    size_t apps_cap;
    uint8_t *val;
    size_t val_cap;
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

/*
 * Parse every line of a block and append each record to its server's
 * segment.  Line ends are \n, \r\n or \r: cached positions of the next \n
 * and \r keep this O(block) for any mix (a CR-only file would otherwise
 * rescan for \n on every line).
 */
static void pipe_pack_block(struct pipe_packer *k, struct pipe_block *b)
{
    struct pipe *p = k->p;
    struct pipe_stats *st = &b->st;
    const char *s = b->text, *end = b->text + b->len;
    const char *nl = NULL, *cr = NULL;
    uint64_t lineno = 0;

    memset(st, 0, sizeof(*st));
    for (int i = 0; i < p->map->nservers; i++)
        memc_seg_reset(&b->seg[i]);
    for (uint32_t i = 0; i < b->pre_long; i++) {
        lineno++;
        st->lines++;
        st->errors++;
        st->err_by[PARSE_TOO_LONG]++;
        pipe_example_add(st, lineno, PARSE_TOO_LONG, "", 0);
    }
    while (s < end) {
        if (!nl || nl < s)
            nl = memchr(s, '\n', (size_t)(end - s)), nl = nl ? nl : end;
        if (!cr || cr < s)
            cr = memchr(s, '\r', (size_t)(end - s)), cr = cr ? cr : end;
        const char *e = nl < cr ? nl : cr;
        const char *next = e + 1;
        if (e == cr && e + 1 < end && e[1] == '\n')
            next = e + 2; /* \r\n is one line end */
        size_t len = (size_t)(e - s);
        const char *line = s;
        s = next > end ? end : next;
        lineno++;

        struct parse_rec rec;
        enum parse_status ps;
        if (len > p->cfg.max_line_bytes)
            ps = PARSE_TOO_LONG;
        else if (pipe_scratch(k, len) < 0)
            ps = PARSE_TOO_LONG; /* out of memory for this line: count, don't crash */
        else
            ps = parse_line(&p->types, line, len, &rec, k->apps);
        if (ps == PARSE_BLANK)
            continue;
        st->lines++;
        if (ps != PARSE_OK) {
            st->errors++;
            st->err_by[ps]++;
            pipe_example_add(st, lineno, ps, line, len);
            continue;
        }
        st->records++;
        st->dirty += rec.dirty != 0;
        size_t vlen = pack_user_apps(k->apps, rec.napps, rec.lat, rec.lon, k->val);
        /* Route by the full key "type:id": the key readers look up. */
        char key[PARSE_MAX_KEY + 1];
        memcpy(key, rec.dev_type, rec.dev_type_len);
        key[rec.dev_type_len] = ':';
        memcpy(key + rec.dev_type_len + 1, rec.dev_id, rec.dev_id_len);
        int g = memc_map_route(&k->map, rec.type, key, rec.dev_type_len + 1 + rec.dev_id_len);
        if (memc_seg_add(&b->seg[g], rec.dev_type, rec.dev_type_len, rec.dev_id, rec.dev_id_len,
                         k->val, vlen) < 0) {
            st->records--;
            st->errors++;
            st->err_by[PARSE_NOT_STORED]++;
            pipe_example_add(st, lineno, PARSE_NOT_STORED, "out of memory", 13);
        }
    }
    for (int g = 0; g < p->map->nservers; g++)
        if (memc_seg_finish(&b->seg[g]) < 0) {
            /* no room for the sync point: these records cannot be sent */
            st->records -= b->seg[g].n;
            st->errors += b->seg[g].n;
            st->err_by[PARSE_NOT_STORED] += b->seg[g].n;
            memc_seg_reset(&b->seg[g]);
        }
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

/* Fold a written block into the load's totals (called with mu held, in
 * block order, so line numbers can be made absolute here). */
static void pipe_merge(struct pipe *p, struct pipe_block *b)
{
    struct pipe_stats *j = &p->job, *s = &b->st;
    j->lines += s->lines;
    j->records += s->records;
    j->errors += s->errors;
    j->dirty += s->dirty;
    for (int i = 0; i < PARSE_STATUS_MAX; i++)
        j->err_by[i] += s->err_by[i];
    for (int i = 0; i < s->nexamples && j->nexamples < PIPE_EXAMPLES; i++) {
        j->ex[j->nexamples] = s->ex[i];
        j->ex[j->nexamples++].line += p->line_base;
    }
    for (int g = 0; g < p->map->nservers; g++) {
        struct memc_seg *sg = &b->seg[g];
        j->stored += sg->acked - sg->refused;
        j->errors += sg->refused;
        j->err_by[PARSE_NOT_STORED] += sg->refused;
        j->deferred += sg->deferred;
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
            memc_send(p->conn_ptrs, segs, p->map->nservers, p->cfg.io_timeout_ms);
        }
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

/* Where to cut a block so it holds whole lines: just after the last line
 * end, where a \r at the very end is not trusted (its \n may follow in the
 * next read) and a \r\n pair is never split.  Returns 0 if there is no
 * usable line end. */
static size_t pipe_cut(const char *t, size_t len)
{
    if (len < 2)
        return 0;
    for (size_t i = len - 1; i-- > 0;) {
        if (t[i] == '\n')
            return i + 1;
        if (t[i] == '\r')
            return t[i + 1] == '\n' ? i + 2 : i + 1;
    }
    return 0;
}

/* With mu held: wait up to 100 ms for a block to be freed, then let the
 * caller report progress (and ask to stop) while the writer is busy. */
static void pipe_wait_free(struct pipe *p, pipe_tick_fn tick, void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000;
    if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&p->cv_free, &p->mu, &ts);
    if (tick) {
        struct pipe_stats now = p->job;
        pthread_mutex_unlock(&p->mu);
        int stop = tick(ctx, &now);
        pthread_mutex_lock(&p->mu);
        if (stop)
            p->abort = 1;
    }
}

static struct pipe_block *pipe_acquire(struct pipe *p, pipe_tick_fn tick, void *ctx)
{
    struct pipe_block *b = &p->blocks[p->next_fill % (uint64_t)p->nblocks];
    pthread_mutex_lock(&p->mu);
    while (b->state != BLK_FREE)
        pipe_wait_free(p, tick, ctx);
    pthread_mutex_unlock(&p->mu);
    return b;
}

static void pipe_submit(struct pipe *p, struct pipe_block *b)
{
    pthread_mutex_lock(&p->mu);
    b->seq = p->next_fill++;
    b->state = BLK_FILLED;
    pthread_cond_signal(&p->cv_filled);
    pthread_mutex_unlock(&p->mu);
}

int pipe_load(struct pipe *p, int fd, struct pipe_stats *st, pipe_tick_fn tick, void *ctx)
{
    struct infl *z = NULL;
    char *carry = NULL;
    size_t carry_len = 0;
    size_t max_cap = p->cfg.max_line_bytes + 2; /* a longest line plus \r\n */
    if (max_cap < p->cfg.block_bytes)
        max_cap = p->cfg.block_bytes;
    int eof = 0, skipping = 0, status = PIPE_DONE;
    uint64_t bytes_out = 0;
    char why[192] = "";

    pthread_mutex_lock(&p->mu);
    memset(&p->job, 0, sizeof(p->job));
    p->abort = 0;
    p->line_base = 0;
    for (int g = 0; g < p->map->nservers; g++)
        memc_conn_job_begin(&p->conns[g]);
    uint64_t lost_before = 0;
    for (int g = 0; g < p->map->nservers; g++)
        lost_before += p->conns[g].lost_acks;
    pthread_mutex_unlock(&p->mu);

    int r = infl_open(&z, fd);
    if (r < 0) {
        snprintf(why, sizeof(why), "cannot start inflate: %s", strerror(-r));
        status = PIPE_IOERR;
        goto out;
    }
    carry = malloc(max_cap);
    if (!carry) {
        snprintf(why, sizeof(why), "out of memory");
        status = PIPE_IOERR;
        goto out;
    }

    int64_t last_tick = io_now_ms();
    while (!eof) {
        struct pipe_block *b = pipe_acquire(p, tick, ctx);
        pthread_mutex_lock(&p->mu);
        int abort = p->abort;
        pthread_mutex_unlock(&p->mu);
        if (abort) {
            status = PIPE_ABORTED;
            break;
        }
        b->pre_long = 0;
        if (b->cap < p->cfg.block_bytes) {
            char *t = realloc(b->text, p->cfg.block_bytes);
            if (!t) {
                snprintf(why, sizeof(why), "out of memory");
                status = PIPE_IOERR;
                break;
            }
            b->text = t;
            b->cap = p->cfg.block_bytes;
        }
        memcpy(b->text, carry, carry_len);
        b->len = carry_len;
        carry_len = 0;
        for (;;) {
            while (b->len < b->cap && !eof) {
                ssize_t n = infl_read(z, b->text + b->len, b->cap - b->len);
                if (n < 0) {
                    snprintf(why, sizeof(why), "%s", infl_error(z));
                    status = n == -EBADMSG ? PIPE_CORRUPT : PIPE_IOERR;
                    eof = 1; /* load the whole lines read so far, then stop */
                    break;
                }
                if (n == 0)
                    eof = 1;
                bytes_out += (size_t)n;
                if (skipping && n > 0) {
                    /* dropping an overlong line: find its end */
                    size_t start = b->len;
                    const char *t = b->text + start;
                    size_t i = 0;
                    while (i < (size_t)n && t[i] != '\n' && t[i] != '\r')
                        i++;
                    if (i == (size_t)n) {
                        continue; /* all of it is the long line: drop */
                    }
                    skipping = 0;
                    i += (t[i] == '\r' && i + 1 < (size_t)n && t[i + 1] == '\n') ? 2 : 1;
                    memmove(b->text + start, t + i, (size_t)n - i);
                    b->len = start + (size_t)n - i;
                    continue;
                }
                if (!skipping)
                    b->len += (size_t)n;
            }
            if (eof || pipe_cut(b->text, b->len))
                break;
            /* no line end in the whole block */
            if (b->len > p->cfg.max_line_bytes) {
                b->pre_long++; /* counted as one error line by the packer */
                b->len = 0;
                skipping = 1;
                continue;
            }
            size_t ncap = b->cap * 2 > max_cap ? max_cap : b->cap * 2;
            char *t = realloc(b->text, ncap);
            if (!t) {
                snprintf(why, sizeof(why), "out of memory for a %zu-byte line", b->len);
                status = PIPE_IOERR;
                eof = 1;
                break;
            }
            b->text = t;
            b->cap = ncap;
        }
        if (!eof) {
            size_t cut = pipe_cut(b->text, b->len);
            carry_len = b->len - cut;
            memcpy(carry, b->text + cut, carry_len);
            b->len = cut;
        } else if (skipping) {
            skipping = 0; /* the file ended inside the overlong line */
        } else if (status != PIPE_DONE) {
            /* The damage cut the last line short: its final field may be a
             * prefix of the real one (a shorter apps list, a shorter lon).
             * Only whole lines are loaded from a damaged file. */
            if (b->len && b->text[b->len - 1] != '\n' && b->text[b->len - 1] != '\r')
                b->len = pipe_cut(b->text, b->len);
        }
        pipe_submit(p, b);

        int64_t now = io_now_ms();
        if (tick && now - last_tick >= 100) {
            last_tick = now;
            pthread_mutex_lock(&p->mu);
            p->job.bytes_in = infl_bytes_in(z);
            p->job.bytes_out = bytes_out;
            struct pipe_stats snap = p->job;
            pthread_mutex_unlock(&p->mu);
            if (tick(ctx, &snap)) {
                pthread_mutex_lock(&p->mu);
                p->abort = 1;
                pthread_mutex_unlock(&p->mu);
            }
        }
    }

out:
    /* wait until everything submitted has been written */
    pthread_mutex_lock(&p->mu);
    while (p->next_write != p->next_fill)
        pipe_wait_free(p, tick, ctx);
    if (p->abort && status == PIPE_DONE)
        status = PIPE_ABORTED;
    *st = p->job;
    uint64_t lost_after = 0;
    for (int g = 0; g < p->map->nservers; g++)
        lost_after += p->conns[g].lost_acks;
    pthread_mutex_unlock(&p->mu);

    st->bytes_in = z ? infl_bytes_in(z) : 0;
    st->bytes_out = bytes_out;
    st->possibly_lost = lost_after != lost_before;
    if (status == PIPE_DONE && (st->deferred || st->possibly_lost))
        status = PIPE_INCOMPLETE;
    st->status = status;
    snprintf(st->why, sizeof(st->why), "%s", why);
    infl_free(z);
    free(carry);
    return status;
}

/* ---- life cycle ---------------------------------------------------------- */

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
    pthread_cond_init(&p->cv_free, NULL);
    pthread_cond_init(&p->cv_filled, NULL);
    pthread_cond_init(&p->cv_packed, NULL);
    for (int g = 0; g < map->nservers; g++) {
        memc_conn_init(&p->conns[g], &map->servers[g]);
        p->conn_ptrs[g] = &p->conns[g];
    }
    p->npackers = c->threads;
    p->nblocks = 2 * c->threads + 2;
    p->blocks = calloc((size_t)p->nblocks, sizeof(*p->blocks));
    p->packers = calloc((size_t)p->npackers, sizeof(*p->packers));
    if (!p->blocks || !p->packers)
        goto err;
    int started = 0;
    for (int i = 0; i < p->npackers; i++) {
        p->packers[i].p = p;
        if (memc_map_clone(&p->packers[i].map, map) < 0)
            goto err_threads;
        if (pthread_create(&p->packers[i].tid, NULL, pipe_packer_main, &p->packers[i])) {
            memc_map_free(&p->packers[i].map);
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
    }
err:
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
    }
    free(p->blocks);
    free(p->packers);
    pthread_cond_destroy(&p->cv_free);
    pthread_cond_destroy(&p->cv_filled);
    pthread_cond_destroy(&p->cv_packed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

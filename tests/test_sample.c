/*
 * test_sample.c — the read-back sample (load/sample.c): a bottom-k sample
 * of distinct keys with each key's latest value.  Checked against a plain
 * reference (sort every distinct key's priority, take the k smallest, the
 * last line of each): fewer keys than k, far more keys than k, repeated
 * keys (the later line wins, whatever the order of the repeats), several
 * files in name order kept in one sample or reset between them, the same
 * sample for the same seed and another for another seed, ties of priority,
 * the bar at its edge, over-long keys, value buffers reused; and the same
 * through the pipeline (dry run, real gzip files) with keep_across_loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "log.h"
#include "pack.h"
#include "pipeline.h"
#include "route.h"
#include "sample.h"

#define SEED 0x5eed1234abcdull

/* ---- a reference: last value per key, bottom-k of the distinct keys ------- */

#define REF_MAX 20000

struct ref {
    int n;
    char key[REF_MAX][24];
    uint64_t h[REF_MAX];
    char val[REF_MAX][32]; /* the key's last value */
    int server[REF_MAX];
};

static struct ref R;

/* key -> index in R, open addressing (FNV-1a) */
#define REF_SLOTS 65536
static int slot[REF_SLOTS]; /* index + 1; 0: empty */

static void ref_reset(void)
{
    R.n = 0;
    memset(slot, 0, sizeof(slot));
}

static uint32_t ref_slot(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    uint32_t i = h % REF_SLOTS;
    while (slot[i] && strcmp(R.key[slot[i] - 1], key) != 0)
        i = (i + 1) % REF_SLOTS;
    return i;
}

static int ref_find(const char *key)
{
    return slot[ref_slot(key)] - 1;
}

static int ref_add(const char *key, uint64_t h)
{
    uint32_t i = ref_slot(key);
    if (slot[i])
        return slot[i] - 1;
    assert_true(R.n < REF_MAX);
    snprintf(R.key[R.n], sizeof(R.key[R.n]), "%s", key);
    R.h[R.n] = h;
    slot[i] = ++R.n;
    return R.n - 1;
}

/* One line: into the reference and into the sample (same order). */
static void line(struct smp *s, const char *key, const char *val, int server)
{
    size_t kl = strlen(key);
    uint64_t h = smp_hash(s->seed, key, kl);
    int i = ref_add(key, h);
    snprintf(R.val[i], sizeof(R.val[i]), "%s", val);
    R.server[i] = server;
    assert_int_equal(smp_offer(s, h, key, kl, server, (const uint8_t *)val, strlen(val), 0), 0);
}

static int cmp_idx_by_h(const void *a, const void *b)
{
    uint64_t x = R.h[*(const int *)a], y = R.h[*(const int *)b];
    return x < y ? -1 : x > y;
}

/* The sample is exactly the k smallest priorities of the reference's keys,
 * in order, each with the key's last value and server. */
static void expect_bottom_k(const struct smp *s)
{
    static int idx[REF_MAX];
    for (int i = 0; i < R.n; i++)
        idx[i] = i;
    qsort(idx, (size_t)R.n, sizeof(idx[0]), cmp_idx_by_h);
    int want = R.n < s->cap ? R.n : s->cap;
    assert_int_equal(s->n, want);
    for (int j = 0; j < want; j++) {
        const struct smp_rec *r = s->by_h[j];
        int i = idx[j];
        if (strcmp(r->key, R.key[i]) != 0)
            fail_msg("sample[%d] is %s, expected %s", j, r->key, R.key[i]);
        assert_true(r->h == R.h[i]);
        assert_int_equal(r->klen, strlen(R.key[i]));
        if (r->vlen != strlen(R.val[i]) || memcmp(r->val, R.val[i], r->vlen) != 0)
            fail_msg("%s holds '%.*s', its last line said '%s'", r->key, (int)r->vlen, r->val,
                     R.val[i]);
        assert_int_equal(r->server, R.server[i]);
    }
    /* the bar: what is held can come again, nothing above the k-th */
    if (s->n < s->cap) {
        assert_true(s->bar == UINT64_MAX);
    } else {
        assert_true(s->bar == s->by_h[s->n - 1]->h);
        assert_true(smp_candidate(s, s->bar));
        if (want < R.n && R.h[idx[want]] > s->bar)
            assert_false(smp_candidate(s, R.h[idx[want]]));
    }
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* ---- smp ------------------------------------------------------------------- */

static void test_init(void **state)
{
    (void)state;
    struct smp s;
    assert_int_equal(smp_init(&s, 0, SEED), -EINVAL);
    smp_free(&s);
    assert_int_equal(smp_init(&s, -5, SEED), -EINVAL);
    smp_free(&s);
    assert_int_equal(smp_init(&s, 7, SEED), 0);
    assert_int_equal(s.cap, 7);
    assert_int_equal(s.n, 0);
    assert_true(s.bar == UINT64_MAX);
    assert_true(s.seed == SEED);
    smp_free(&s);
}

/* k larger than the number of keys: every key, each with its last line. */
static void test_fewer_keys_than_k(void **state)
{
    (void)state;
    struct smp s;
    char key[24], val[32];
    assert_int_equal(smp_init(&s, 100, SEED), 0);
    ref_reset();
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "idfa:%d", i % 10);
        snprintf(val, sizeof(val), "line-%d", i);
        line(&s, key, val, i % 4);
    }
    assert_int_equal(s.n, 10);
    assert_int_equal(s.offered, 30);
    assert_true(s.bar == UINT64_MAX);
    expect_bottom_k(&s);
    assert_string_equal(R.val[ref_find("idfa:3")], "line-23");
    smp_free(&s);
}

/* Far more keys than k: memory is k records, and they are the k smallest
 * priorities whatever the order the keys came in. */
static void test_bounded_bottom_k(void **state)
{
    (void)state;
    struct smp s;
    char key[24];
    assert_int_equal(smp_init(&s, 50, SEED), 0);
    ref_reset();
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "gaid:%d", i);
        line(&s, key, key, 1);
    }
    expect_bottom_k(&s);
    assert_int_equal(s.n, 50);

    /* the same keys backwards: the same sample */
    struct smp t;
    assert_int_equal(smp_init(&t, 50, SEED), 0);
    for (int i = 4999; i >= 0; i--) {
        snprintf(key, sizeof(key), "gaid:%d", i);
        assert_int_equal(smp_offer(&t, smp_hash(SEED, key, strlen(key)), key, strlen(key), 1,
                                   (const uint8_t *)key, strlen(key), 0),
                         0);
    }
    for (int j = 0; j < 50; j++)
        assert_string_equal(t.by_h[j]->key, s.by_h[j]->key);
    smp_free(&t);
    smp_free(&s);
}

/* Keys repeated at random: each held key has its last line's value and
 * server, and repeats do not change which keys are held. */
static void test_later_line_wins(void **state)
{
    (void)state;
    struct smp s;
    char key[24], val[32];
    assert_int_equal(smp_init(&s, 64, SEED), 0);
    ref_reset();
    for (int i = 0; i < 30000; i++) {
        snprintf(key, sizeof(key), "adid:%u", rnd(3000));
        snprintf(val, sizeof(val), "v%d", i);
        line(&s, key, val, (int)rnd(8));
    }
    assert_int_equal(s.offered, 30000);
    expect_bottom_k(&s);
    smp_free(&s);
}

/* Files in name order: one sample across them (memc-load verify) holds
 * the bottom k of all their keys with the last file's value; reset between
 * loads (the per-file read-back) it is the last file's alone. */
static void feed_file(struct smp *s, int file, int from, int to)
{
    char key[24], val[32];
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof(key), "idfa:%d", i);
        snprintf(val, sizeof(val), "file%d-line%d", file, i - from);
        line(s, key, val, 0);
    }
}

static void test_files_in_name_order(void **state)
{
    (void)state;
    struct smp s;
    assert_int_equal(smp_init(&s, 40, SEED), 0);
    ref_reset();
    feed_file(&s, 1, 0, 600);
    feed_file(&s, 2, 300, 900);
    feed_file(&s, 3, 850, 1000);
    feed_file(&s, 3, 0, 50);
    assert_int_equal(R.n, 1000);
    expect_bottom_k(&s);
    /* the held keys of [300, 600) were last written by file 2, and so on */
    int from_file[4] = {0};
    for (int j = 0; j < s.n; j++)
        from_file[s.by_h[j]->val[4] - '0']++;
    assert_true(from_file[1] > 0 && from_file[2] > 0 && from_file[3] > 0);

    /* reset between files: only the last file's keys */
    smp_reset(&s);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.offered, 0);
    assert_true(s.bar == UINT64_MAX);
    ref_reset();
    feed_file(&s, 3, 850, 1000);
    assert_int_equal(s.offered, 150);
    expect_bottom_k(&s);
    for (int j = 0; j < s.n; j++)
        assert_int_equal(memcmp(s.by_h[j]->val, "file3-", 6), 0);
    smp_free(&s);
}

/* The same seed, the same sample; another seed, another sample. */
static void test_deterministic_for_seed(void **state)
{
    (void)state;
    struct smp a, b, c;
    char key[24];
    assert_int_equal(smp_init(&a, 20, SEED), 0);
    assert_int_equal(smp_init(&b, 20, SEED), 0);
    assert_int_equal(smp_init(&c, 20, SEED + 1), 0);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "dvid:%d", i);
        size_t kl = strlen(key);
        struct smp *all[] = {&a, &b, &c};
        for (int k = 0; k < 3; k++)
            assert_int_equal(smp_offer(all[k], smp_hash(all[k]->seed, key, kl), key, kl, 3,
                                       (const uint8_t *)"x", 1, 0),
                             0);
    }
    int same_as_c = 0;
    for (int j = 0; j < 20; j++) {
        assert_string_equal(a.by_h[j]->key, b.by_h[j]->key);
        assert_true(a.by_h[j]->h == b.by_h[j]->h);
        for (int m = 0; m < 20; m++)
            same_as_c += strcmp(a.by_h[j]->key, c.by_h[m]->key) == 0;
    }
    assert_true(same_as_c < 5); /* about 20 * 20 / 2000 = 0.2 expected */
    /* the priority: a function of seed and bytes, length included */
    assert_true(smp_hash(SEED, "idfa:1", 6) == smp_hash(SEED, "idfa:1", 6));
    assert_true(smp_hash(SEED, "idfa:1", 6) != smp_hash(SEED + 1, "idfa:1", 6));
    assert_true(smp_hash(SEED, "idfa:1", 6) != smp_hash(SEED, "idfa:2", 6));
    assert_true(smp_hash(SEED, "ab", 2) != smp_hash(SEED, "ab\0", 3));
    assert_true(smp_hash(SEED, "0123456789abcdefX", 17) != smp_hash(SEED, "0123456789abcdefY", 17));
    smp_free(&a);
    smp_free(&b);
    smp_free(&c);
}

/* A rough check of uniformity: a sample of 1000 of 100 000 keys takes
 * about half from each half of the key space. */
static void test_uniform(void **state)
{
    (void)state;
    struct smp s;
    char key[24];
    assert_int_equal(smp_init(&s, 1000, SEED), 0);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "idfa:%d", i);
        assert_int_equal(smp_offer(&s, smp_hash(SEED, key, strlen(key)), key, strlen(key), 0,
                                   (const uint8_t *)"x", 1, 0),
                         0);
    }
    int low = 0;
    for (int j = 0; j < s.n; j++)
        low += atoi(s.by_h[j]->key + 5) < 50000;
    assert_int_equal(s.n, 1000);
    assert_true(low > 430 && low < 570);
    smp_free(&s);
}

static void offer(struct smp *s, const char *key, uint64_t h, const char *val)
{
    assert_int_equal(smp_offer(s, h, key, strlen(key), 0, (const uint8_t *)val, strlen(val), 0), 0);
}

static const struct smp_rec *held(const struct smp *s, const char *key)
{
    for (int j = 0; j < s->n; j++)
        if (strcmp(s->by_h[j]->key, key) == 0)
            return s->by_h[j];
    return NULL;
}

static void expect_held(const struct smp *s, const char *key, const char *val)
{
    const struct smp_rec *r = held(s, key);
    if (!r)
        fail_msg("%s is not in the sample", key);
    if (r->vlen != strlen(val) || memcmp(r->val, val, r->vlen) != 0)
        fail_msg("%s holds '%.*s', expected '%s'", key, (int)r->vlen, r->val, val);
}

/* Priorities chosen by hand: ties, the bar's edge, a key that left. */
static void test_ties_and_the_bar(void **state)
{
    (void)state;
    struct smp s;
    assert_int_equal(smp_init(&s, 3, SEED), 0);
    offer(&s, "a", 5, "a1");
    offer(&s, "b", 5, "b1"); /* the same priority, another key: both held */
    assert_int_equal(s.n, 2);
    offer(&s, "a", 5, "a2"); /* a later line of a, not of b */
    assert_int_equal(s.n, 2);
    expect_held(&s, "a", "a2");
    expect_held(&s, "b", "b1");
    offer(&s, "c", 9, "c1");
    assert_int_equal(s.n, 3);
    assert_true(s.bar == 9);
    offer(&s, "d", 9, "d1"); /* full, at the bar: a new key does not enter */
    assert_null(held(&s, "d"));
    offer(&s, "c", 9, "c2"); /* ... but a held key at the bar still gets its later line */
    expect_held(&s, "c", "c2");
    offer(&s, "e", 10, "e1"); /* above the bar */
    assert_null(held(&s, "e"));
    offer(&s, "f", 1, "f1"); /* below: enters, the highest (c) leaves */
    assert_int_equal(s.n, 3);
    assert_null(held(&s, "c"));
    assert_true(s.bar == 5);
    assert_false(smp_candidate(&s, 9));
    offer(&s, "c", 9, "c3"); /* gone for good: the bar only falls */
    assert_null(held(&s, "c"));
    offer(&s, "b", 5, "b2");
    expect_held(&s, "a", "a2");
    expect_held(&s, "b", "b2");
    expect_held(&s, "f", "f1");
    /* by priority: f (1), then a and b (5) */
    assert_string_equal(s.by_h[0]->key, "f");
    assert_int_equal(s.offered, 10);
    smp_free(&s);
}

/* A key longer than memcached allows is refused and not counted. */
static void test_key_length(void **state)
{
    (void)state;
    struct smp s;
    char key[PARSE_MAX_KEY + 2];
    memset(key, 'k', sizeof(key));
    assert_int_equal(smp_init(&s, 4, SEED), 0);
    assert_int_equal(smp_offer(&s, 1, key, PARSE_MAX_KEY + 1, 0, (const uint8_t *)"v", 1, 0),
                     -EINVAL);
    assert_int_equal(s.offered, 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(smp_offer(&s, 1, key, PARSE_MAX_KEY, 0, (const uint8_t *)"v", 1, 0), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.by_h[0]->klen, PARSE_MAX_KEY);
    assert_int_equal(strlen(s.by_h[0]->key), PARSE_MAX_KEY);
    smp_free(&s);
}

/* Values that grow and shrink, in records that leave and are reused. */
static void test_value_buffers(void **state)
{
    (void)state;
    struct smp s;
    static char big[5000];
    memset(big, 'B', sizeof(big));
    assert_int_equal(smp_init(&s, 2, SEED), 0);
    assert_int_equal(smp_offer(&s, 10, "x", 1, 0, (const uint8_t *)big, sizeof(big), 0), 0);
    assert_int_equal(s.by_h[0]->vlen, sizeof(big));
    offer(&s, "x", 10, "small"); /* shrinks in place */
    expect_held(&s, "x", "small");
    offer(&s, "y", 20, "yy");
    offer(&s, "z", 5, "zzz"); /* y leaves; its record is reused */
    assert_null(held(&s, "y"));
    offer(&s, "w", 1, "w"); /* x leaves, its 5000-byte buffer reused for 1 byte */
    expect_held(&s, "w", "w");
    expect_held(&s, "z", "zzz");
    assert_int_equal(held(&s, "w")->vlen, 1);
    assert_int_equal(s.n, 2);
    /* a reset keeps k and seed, and the records work again */
    smp_reset(&s);
    offer(&s, "v", 3, "again");
    expect_held(&s, "v", "again");
    assert_int_equal(s.n, 1);
    assert_true(s.bar == UINT64_MAX);
    smp_free(&s);
}

/* ---- through the pipeline: real gzip files, dry run ------------------------ */

struct pfx {
    char dir[64];
    struct cfg cfg;
    struct memc_map map;
};

static void write_gz(const char *dir, const char *name, int file, int from, int to,
                     const char *type)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    for (int i = from; i < to; i++)
        assert_true(gzprintf(gz, "%s\t%d\t55.5\t37.25\t%d\n", type, i, file) > 0);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void load(struct pipe *p, const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct pipe_stats st;
    assert_int_equal(pipe_load(p, fd, &st, NULL, NULL), PIPE_DONE);
    assert_int_equal(st.errors, 0);
    close(fd);
}

/* The value memc-load writes for apps = {file} at the files' coordinates. */
static size_t value_of(int file, uint8_t *out)
{
    uint32_t app = (uint32_t)file;
    return pack_user_apps(&app, 1, 55.5, 37.25, out);
}

static void pipe_files(struct pfx *x, int keep, int k, struct pipe **out)
{
    struct pipe *p;
    assert_int_equal(pipe_create(&p, &x->cfg, &x->map), 0);
    assert_int_equal(pipe_sample_enable(p, k, SEED, keep), 0);
    /* name order: a, b, c */
    load(p, x->dir, "a.tsv.gz");
    load(p, x->dir, "b.tsv.gz");
    load(p, x->dir, "c.tsv.gz");
    *out = p;
}

static void test_pipeline_keep_across_loads(void **state)
{
    (void)state;
    struct pfx x;
    char err[256];
    snprintf(x.dir, sizeof(x.dir), "/tmp/memc-sample-XXXXXX");
    assert_non_null(mkdtemp(x.dir));
    cfg_defaults(&x.cfg);
    x.cfg.dry = 1;
    x.cfg.threads = 2;
    x.cfg.block_bytes = 4096; /* several blocks per file, packed by two threads */
    assert_int_equal(memc_map_init(&x.map, &x.cfg, err, sizeof(err)), 0);
    write_gz(x.dir, "a.tsv.gz", 1, 0, 600, "idfa");
    write_gz(x.dir, "b.tsv.gz", 2, 300, 900, "idfa");
    write_gz(x.dir, "c.tsv.gz", 3, 850, 1000, "idfa");
    uint8_t v[3][64];
    size_t vl[3];
    for (int f = 0; f < 3; f++)
        vl[f] = value_of(f + 1, v[f]);

    /* one sample over the three files: the last file of each key wins */
    struct pipe *p;
    pipe_files(&x, 1, 60, &p);
    const struct smp *s = pipe_sample(p);
    assert_non_null(s);
    ref_reset();
    for (int i = 0; i < 1000; i++) {
        char key[24];
        snprintf(key, sizeof(key), "idfa:%d", i);
        int r = ref_add(key, smp_hash(SEED, key, strlen(key)));
        R.server[r] = memc_map_route(&x.map, 0, key, strlen(key));
    }
    static int idx[REF_MAX];
    for (int i = 0; i < R.n; i++)
        idx[i] = i;
    qsort(idx, (size_t)R.n, sizeof(idx[0]), cmp_idx_by_h);
    assert_int_equal(s->n, 60);
    assert_int_equal(s->offered > 0, 1);
    int seen[4] = {0};
    for (int j = 0; j < s->n; j++) {
        const struct smp_rec *r = s->by_h[j];
        assert_string_equal(r->key, R.key[idx[j]]);
        int id = atoi(r->key + 5);
        int last = id >= 850 ? 3 : id >= 300 ? 2 : 1;
        seen[last]++;
        if (r->vlen != vl[last - 1] || memcmp(r->val, v[last - 1], r->vlen) != 0)
            fail_msg("%s holds the value of another file than %d", r->key, last);
        assert_int_equal(r->server, R.server[idx[j]]);
    }
    assert_true(seen[1] && seen[2] && seen[3]);
    pipe_destroy(p);

    /* reset per load (the daemon's read-back): only c's keys, c's values */
    pipe_files(&x, 0, 60, &p);
    s = pipe_sample(p);
    assert_int_equal(s->n, 60);
    for (int j = 0; j < s->n; j++) {
        int id = atoi(s->by_h[j]->key + 5);
        assert_true(id >= 850 && id < 1000);
        assert_int_equal(memcmp(s->by_h[j]->val, v[2], vl[2]), 0);
    }
    pipe_destroy(p);

    memc_map_free(&x.map);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x.dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    log_init(LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_fewer_keys_than_k),
        cmocka_unit_test(test_bounded_bottom_k),
        cmocka_unit_test(test_later_line_wins),
        cmocka_unit_test(test_files_in_name_order),
        cmocka_unit_test(test_deterministic_for_seed),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_ties_and_the_bar),
        cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_value_buffers),
        cmocka_unit_test(test_pipeline_keep_across_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

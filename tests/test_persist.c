/* .kvz files: round trip, metadata, and refusal of damaged files (every byte flipped, every truncation). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "testutil.h"

enum { L = 2, H = 3, D = 64 };

/* A compacted cache with a few appended tokens on top, like a KVzip cache after a turn. */
static kvz_cache *sample(tu_rng *r, kvz_dtype dt, size_t n, size_t layers, size_t heads, size_t d)
{
    kvz_cache_config cfg = {sizeof cfg, layers, heads, d, dt, 0, NULL};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float *k = tu_malloc(n * heads * d * 4), *v = tu_malloc(n * heads * d * 4);
    for (size_t i = 0; i < n * heads * d; i++)
        k[i] = tu_uniform(r, -1, 1), v[i] = tu_uniform(r, -1, 1);
    for (size_t l = 0; l < layers; l++)
        assert_int_equal(kvz_cache_append(c, l, n, k, v, (ptrdiff_t)(heads * d), (ptrdiff_t)d), KVZ_OK);
    uint8_t **keep = tu_malloc(layers * heads * sizeof *keep);
    for (size_t i = 0; i < layers * heads; i++) {
        keep[i] = tu_malloc(n);
        for (size_t j = 0; j < n; j++)
            keep[i][j] = tu_uniform(r, 0, 1) < 0.2f + 0.1f * (float)i;
    }
    assert_int_equal(kvz_cache_compact(c, (const uint8_t *const *)keep), KVZ_OK);
    for (size_t l = 0; l < layers; l++)
        assert_int_equal(kvz_cache_append(c, l, 2, k, v, (ptrdiff_t)(heads * d), (ptrdiff_t)d), KVZ_OK);
    for (size_t i = 0; i < layers * heads; i++)
        free(keep[i]);
    free(keep), free(k), free(v);
    return c;
}

static void assert_same_cache(const kvz_cache *a, const kvz_cache *b, size_t layers, size_t heads, size_t rb)
{
    for (size_t l = 0; l < layers; l++) {
        int64_t pa, pb;
        assert_int_equal(kvz_cache_next_position(a, l, &pa), KVZ_OK);
        assert_int_equal(kvz_cache_next_position(b, l, &pb), KVZ_OK);
        assert_int_equal(pa, pb);
        for (size_t h = 0; h < heads; h++) {
            size_t la, lb;
            const void *ka, *va, *kb, *vb;
            const int64_t *qa, *qb;
            assert_int_equal(kvz_cache_length(a, l, h, &la), KVZ_OK);
            assert_int_equal(kvz_cache_length(b, l, h, &lb), KVZ_OK);
            assert_int_equal(la, lb);
            kvz_cache_rows(a, l, h, &ka, &va), kvz_cache_rows(b, l, h, &kb, &vb);
            kvz_cache_positions(a, l, h, &qa), kvz_cache_positions(b, l, h, &qb);
            if (la) {
                assert_memory_equal(ka, kb, la * rb);
                assert_memory_equal(va, vb, la * rb);
                assert_memory_equal(qa, qb, la * 8);
            }
        }
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 60);
    char path[128];
    tu_tmp_path(path, sizeof path, "a.kvz");
    for (int dt = 0; dt < 3; dt++) {
        kvz_cache *c = sample(&r, (kvz_dtype)dt, 120, L, H, D);
        kvz_cache_meta meta = {sizeof meta, {0}, "kvzip-pair", 0.3};
        for (int i = 0; i < 32; i++)
            meta.model_fingerprint[i] = (uint8_t)(i * 7 + dt);
        assert_int_equal(kvz_cache_save(c, path, &meta), KVZ_OK);
        kvz_cache *b = NULL;
        kvz_cache_meta got = {.struct_size = sizeof got};
        assert_int_equal(kvz_cache_load(path, meta.model_fingerprint, &b, &got), KVZ_OK);
        assert_same_cache(c, b, L, H, D * tu_dtype_size((kvz_dtype)dt));
        assert_memory_equal(got.model_fingerprint, meta.model_fingerprint, 32);
        assert_string_equal(got.policy, "kvzip-pair");
        assert_true(got.ratio == 0.3);
        kvz_cache_stats s1 = {.struct_size = sizeof s1}, s2 = {.struct_size = sizeof s2};
        kvz_cache_get_stats(c, &s1), kvz_cache_get_stats(b, &s2);
        assert_int_equal(s1.rows, s2.rows);
        assert_int_equal(s1.full_rows, s2.full_rows);
        /* another model's fingerprint is refused, and nothing is handed out */
        uint8_t other[32] = {1};
        kvz_cache *x = (kvz_cache *)1;
        assert_int_equal(kvz_cache_load(path, other, &x, NULL), KVZ_ERR_MISMATCH);
        assert_null(x);
        kvz_cache_destroy(b);
        kvz_cache_destroy(c);
    }
    /* an empty cache and NULL meta */
    kvz_cache_config cfg = {sizeof cfg, 1, 1, 8, KVZ_DTYPE_F32, 0, NULL};
    kvz_cache *e, *b;
    assert_int_equal(kvz_cache_create(&cfg, &e), KVZ_OK);
    assert_int_equal(kvz_cache_save(e, path, NULL), KVZ_OK);
    assert_int_equal(kvz_cache_load(path, NULL, &b, NULL), KVZ_OK);
    assert_same_cache(e, b, 1, 1, 32);
    kvz_cache_destroy(e), kvz_cache_destroy(b);
}

/* Every byte flipped, every truncation: refused with a specific status, nothing handed out. */
static void test_damage(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 61);
    char path[128], bad[128];
    tu_tmp_path(path, sizeof path, "small.kvz");
    tu_tmp_path(bad, sizeof bad, "bad.kvz");
    kvz_cache *c = sample(&r, KVZ_DTYPE_BF16, 6, 1, 2, 8);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    kvz_cache_destroy(c);
    size_t n;
    unsigned char *good = tu_slurp(path, &n), *buf = tu_malloc(n + 8);
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit += tu_quick() ? 7 : 3) {
            memcpy(buf, good, n);
            buf[i] ^= (unsigned char)(1u << bit);
            tu_spit(bad, buf, n);
            kvz_cache *x = (kvz_cache *)1;
            const kvz_status st = kvz_cache_load(bad, NULL, &x, NULL);
            if (!(st == KVZ_ERR_FORMAT || st == KVZ_ERR_VERSION || st == KVZ_ERR_CORRUPT ||
                  st == KVZ_ERR_TRUNCATED))
                fail_msg("byte %zu bit %d flipped: status %d (%s)", i, bit, (int)st, kvz_last_error());
            assert_null(x);
            if (i < 8)
                assert_int_equal(st, KVZ_ERR_FORMAT);
        }
    for (size_t len = 0; len < n; len++) {
        tu_spit(bad, good, len);
        kvz_cache *x = (kvz_cache *)1;
        const kvz_status st = kvz_cache_load(bad, NULL, &x, NULL);
        if (st != KVZ_ERR_TRUNCATED)
            fail_msg("truncated at %zu of %zu: status %d (%s)", len, n, (int)st, kvz_last_error());
        assert_null(x);
    }
    /* trailing bytes */
    memcpy(buf, good, n);
    memcpy(buf + n, "garbage", 7);
    tu_spit(bad, buf, n + 7);
    kvz_cache *x;
    assert_int_equal(kvz_cache_load(bad, NULL, &x, NULL), KVZ_ERR_CORRUPT);
    /* a later version, whatever its header checksum, is a version error */
    memcpy(buf, good, n);
    buf[8] = 3;
    tu_spit(bad, buf, n);
    assert_int_equal(kvz_cache_load(bad, NULL, &x, NULL), KVZ_ERR_VERSION);
    /* not a cache file at all */
    tu_spit(bad, (const unsigned char *)"GGUF\3\0\0\0 something else entirely", 30);
    assert_int_equal(kvz_cache_load(bad, NULL, &x, NULL), KVZ_ERR_FORMAT);
    free(good), free(buf);
}

static void test_atomic_write(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 62);
    char path[128];
    tu_tmp_path(path, sizeof path, "atomic.kvz");
    kvz_cache *a = sample(&r, KVZ_DTYPE_F16, 30, 1, 2, 16), *b = sample(&r, KVZ_DTYPE_F16, 50, 1, 2, 16), *x;
    assert_int_equal(kvz_cache_save(a, path, NULL), KVZ_OK);
    assert_int_equal(kvz_cache_save(b, path, NULL), KVZ_OK); /* replaces */
    assert_int_equal(kvz_cache_load(path, NULL, &x, NULL), KVZ_OK);
    assert_same_cache(b, x, 1, 2, 32);
    kvz_cache_destroy(x);
    /* a directory that does not exist: an I/O error, nothing created */
    assert_int_equal(kvz_cache_save(a, "/nonexistent-kvz-dir/x.kvz", NULL), KVZ_ERR_IO);
    assert_true(strstr(kvz_last_error(), "temporary") != NULL);
    /* no temporary file is left next to the target */
    DIR *dh = opendir(tu_tmpdir());
    assert_non_null(dh);
    for (struct dirent *e; (e = readdir(dh));)
        assert_null(strstr(e->d_name, ".tmp."));
    closedir(dh);
    assert_int_equal(kvz_cache_load("/nonexistent-kvz-dir/x.kvz", NULL, &x, NULL), KVZ_ERR_IO);
    assert_int_equal(kvz_cache_save(NULL, path, NULL), KVZ_ERR_NULL);
    assert_int_equal(kvz_cache_load(path, NULL, NULL, NULL), KVZ_ERR_NULL);
    kvz_cache_destroy(a), kvz_cache_destroy(b);
}

/* CRC32C at every level: the standard check value, and random data in random pieces
 * against a bit-at-a-time reference. */
static uint32_t crc_bitwise(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static void test_crc32c(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 63);
    kvz_isa lv[8];
    const size_t nl = tu_isa_levels(lv), n = 5000;
    unsigned char *buf = tu_malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)tu_next(&r);
    const uint32_t want = crc_bitwise(buf, n);
    for (size_t l = 0; l < nl; l++) {
        tu_force(lv[l]);
        assert_int_equal(kvz_crc32c(0, "123456789", 9), 0xE3069283u);
        assert_int_equal(kvz_crc32c(0, buf, n), want);
        uint32_t c = 0; /* continued over pieces of every odd size */
        for (size_t off = 0, step = 1; off < n; off += step, step = step % 37 + 1)
            c = kvz_crc32c(c, buf + off, off + step <= n ? step : n - off);
        assert_int_equal(c, want);
    }
    free(buf);
}

/* ---- sliding-window layers ------------------------------------------------------------------ */

/* Where a file's LENS payload starts: after the header and the section's own 16 bytes. */
enum { LENS_AT = 128 + 16 };

/* A cache whose layer 0 has a window of w and layer 1 none, after n tokens in chunks of 37 at
 * positions 0, gap, 2 x gap, ... (gap 1: consecutive; more: as FastKV's propagated tokens). */
static kvz_cache *windowed_sample(tu_rng *r, size_t w, size_t n, size_t gap, kvz_dtype dt)
{
    const size_t win[L] = {w, 0};
    kvz_cache_config cfg = {sizeof cfg, L, H, D, dt, 0, win};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float *k = tu_malloc(37 * H * D * 4), *v = tu_malloc(37 * H * D * 4);
    for (size_t done = 0; done < n;) {
        const size_t m = n - done < 37 ? n - done : 37;
        for (size_t i = 0; i < m * H * D; i++)
            k[i] = tu_uniform(r, -1, 1), v[i] = tu_uniform(r, -1, 1);
        int64_t pos[37];
        for (size_t i = 0; i < m; i++)
            pos[i] = (int64_t)((done + i) * gap);
        for (size_t l = 0; l < L; l++)
            assert_int_equal(kvz_cache_append_at(c, l, m, k, v, H * D, D, pos), KVZ_OK);
        done += m;
    }
    free(k), free(v);
    return c;
}

/*
 * A windowed layer round trip: the window comes back, the file holds only the layer's last
 * `window` rows (fewer tokens than the window: all of them), the global layer whole, and the
 * loaded cache attends to a new token as the original does, and takes it back. Also with
 * positions that have gaps, whose window counts tokens.
 */
static void test_window_round_trip(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 64);
    char path[128];
    tu_tmp_path(path, sizeof path, "win.kvz");
    static const size_t shapes[][3] = {{16, 300, 1}, {16, 10, 1},  {64, 100, 1},
                                       {1, 50, 1},   {16, 300, 3}, {16, 10, 5}};
    for (size_t t = 0; t < 6; t++) {
        const size_t w = shapes[t][0], n = shapes[t][1], rb = D * 2;
        kvz_cache *c = windowed_sample(&r, w, n, shapes[t][2], KVZ_DTYPE_BF16), *b = NULL;
        assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
        assert_int_equal(kvz_cache_load(path, NULL, &b, NULL), KVZ_OK);
        size_t wb;
        assert_int_equal(kvz_cache_layer_window(b, 0, &wb), KVZ_OK);
        assert_int_equal(wb, w);
        assert_int_equal(kvz_cache_layer_window(b, 1, &wb), KVZ_OK);
        assert_int_equal(wb, 0);
        const size_t keep = n < w ? n : w;
        for (size_t h = 0; h < H; h++) {
            size_t la, lb, lg;
            const void *ka, *va, *kb, *vb;
            const int64_t *pa, *pb;
            kvz_cache_length(c, 0, h, &la), kvz_cache_length(b, 0, h, &lb);
            assert_int_equal(lb, keep);
            kvz_cache_rows(c, 0, h, &ka, &va), kvz_cache_rows(b, 0, h, &kb, &vb);
            kvz_cache_positions(c, 0, h, &pa), kvz_cache_positions(b, 0, h, &pb);
            assert_memory_equal((const char *)ka + (la - keep) * rb, kb, keep * rb);
            assert_memory_equal((const char *)va + (la - keep) * rb, vb, keep * rb);
            assert_memory_equal(pa + (la - keep), pb, keep * 8);
            kvz_cache_length(b, 1, h, &lg);
            assert_int_equal(lg, n);
        }
        /* the same next token on both: the same attention on both layers */
        float *k = tu_malloc(H * D * 4), *v = tu_malloc(H * D * 4), *q = tu_malloc(H * 2 * D * 4);
        float *oa = tu_malloc(H * 2 * D * 4), *ob = tu_malloc(H * 2 * D * 4);
        for (size_t i = 0; i < H * D; i++)
            k[i] = tu_uniform(&r, -1, 1), v[i] = tu_uniform(&r, -1, 1);
        for (size_t i = 0; i < H * 2 * D; i++)
            q[i] = tu_uniform(&r, -1, 1);
        for (size_t l = 0; l < L; l++) {
            assert_int_equal(kvz_cache_append(c, l, 1, k, v, H * D, D), KVZ_OK);
            assert_int_equal(kvz_cache_append(b, l, 1, k, v, H * D, D), KVZ_OK);
            kvz_attend_args a = {.struct_size = sizeof a,
                                 .group = 2,
                                 .n_q = 1,
                                 .q = q,
                                 .q_token_stride = H * 2 * D,
                                 .q_head_stride = D,
                                 .out = oa,
                                 .out_token_stride = H * 2 * D,
                                 .out_head_stride = D};
            assert_int_equal(kvz_cache_attend(c, l, &a), KVZ_OK);
            a.out = ob;
            assert_int_equal(kvz_cache_attend(b, l, &a), KVZ_OK);
            double *want = tu_malloc(H * 2 * D * 8);
            for (size_t i = 0; i < H * 2 * D; i++)
                want[i] = oa[i];
            tu_assert_close(ob, want, H * 2 * D, 1e-5, 1e-5, "loaded windowed cache");
            free(want);
        }
        assert_int_equal(kvz_cache_truncate(b, 1), KVZ_OK); /* the layer kept what its window needs */
        free(k), free(v), free(q), free(oa), free(ob);
        kvz_cache_destroy(b), kvz_cache_destroy(c);
    }
}

/* A damaged window field: a flipped bit fails the LENS checksum; a window rewritten with a
 * valid checksum that disagrees with the rows is refused too; a window beyond INT64_MAX. */
static void test_window_damage(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 65);
    char path[128], bad[128];
    tu_tmp_path(path, sizeof path, "wd.kvz");
    tu_tmp_path(bad, sizeof bad, "wd-bad.kvz");
    kvz_cache *c = windowed_sample(&r, 16, 100, 1, KVZ_DTYPE_F32);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    kvz_cache_destroy(c);
    size_t n;
    unsigned char *good = tu_slurp(path, &n), *buf = tu_malloc(n);
    const size_t lens_bytes = 8 * (2 * L + L * H), at_w = LENS_AT + 8 * L; /* layer 0's window */
    uint64_t w0;
    memcpy(&w0, good + at_w, 8);
    assert_int_equal(w0, 16);
    for (int bit = 0; bit < 64; bit += 5) {
        memcpy(buf, good, n);
        buf[at_w + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        tu_spit(bad, buf, n);
        kvz_cache *x = (kvz_cache *)1;
        assert_int_equal(kvz_cache_load(bad, NULL, &x, NULL), KVZ_ERR_CORRUPT);
        assert_null(x);
    }
    static const uint64_t rewritten[] = {8, 32, 17, (uint64_t)1 << 63};
    for (size_t i = 0; i < 4; i++) {
        memcpy(buf, good, n);
        memcpy(buf + at_w, &rewritten[i], 8);
        const uint32_t crc = kvz_crc32c(0, buf + LENS_AT, lens_bytes);
        memcpy(buf + LENS_AT - 12, &crc, 4);
        tu_spit(bad, buf, n);
        kvz_cache *x = (kvz_cache *)1;
        const kvz_status st = kvz_cache_load(bad, NULL, &x, NULL);
        if (st != KVZ_ERR_CORRUPT)
            fail_msg("window rewritten to %llu: status %d, not KVZ_ERR_CORRUPT",
                     (unsigned long long)rewritten[i], (int)st);
        assert_null(x);
    }
    free(good), free(buf);
}

/* Next positions past KVZ_POSITION_LIMIT: a file claiming one is refused (INT64_MAX once loaded
 * and the next append overflowed int64_t), and appends that would pass it are refused. */
static void test_next_position_limit(void **state)
{
    (void)state;
    char path[128], bad[128];
    tu_tmp_path(path, sizeof path, "np.kvz");
    tu_tmp_path(bad, sizeof bad, "np-bad.kvz");
    const kvz_cache_config cfg = {sizeof cfg, L, H, D, KVZ_DTYPE_F32, 0, NULL};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    size_t n;
    unsigned char *good = tu_slurp(path, &n), *buf = tu_malloc(n);
    const size_t lens_bytes = 8 * (2 * L + L * H);
    float *kv = tu_malloc(2 * H * D * 4);
    for (size_t i = 0; i < 2 * H * D; i++)
        kv[i] = 0.5f;
    static const uint64_t next[] = {(uint64_t)INT64_MAX, ((uint64_t)1 << 62) + 1, UINT64_MAX,
                                    (uint64_t)1 << 62};
    for (size_t i = 0; i < 4; i++) {
        memcpy(buf, good, n);
        memcpy(buf + LENS_AT, &next[i], 8); /* layer 0 */
        const uint32_t crc = kvz_crc32c(0, buf + LENS_AT, lens_bytes);
        memcpy(buf + LENS_AT - 12, &crc, 4);
        tu_spit(bad, buf, n);
        kvz_cache *x = (kvz_cache *)1;
        const kvz_status st = kvz_cache_load(bad, NULL, &x, NULL);
        if (next[i] > (uint64_t)KVZ_POSITION_LIMIT) {
            if (st != KVZ_ERR_CORRUPT)
                fail_msg("next position %llu: status %d, not KVZ_ERR_CORRUPT", (unsigned long long)next[i],
                         (int)st);
            assert_null(x);
            continue;
        }
        /* the limit itself loads, and nothing more can be appended to that layer */
        assert_int_equal(st, KVZ_OK);
        assert_int_equal(kvz_cache_append(x, 0, 1, kv, kv + H * D, 0, D), KVZ_ERR_INVALID_ARG);
        const int64_t at = KVZ_POSITION_LIMIT;
        assert_int_equal(kvz_cache_append_at(x, 1, 1, kv, kv + H * D, 0, D, &at), KVZ_ERR_INVALID_ARG);
        assert_int_equal(kvz_cache_append(x, 1, 1, kv, kv + H * D, 0, D), KVZ_OK); /* layer 1 is at 0 */
        kvz_query *q;
        assert_int_equal(kvz_query_create(x, &q), KVZ_OK);
        assert_int_equal(kvz_query_append(q, 0, 1, kv, kv + H * D, 0, D), KVZ_ERR_INVALID_ARG);
        assert_int_equal(kvz_query_append(q, 1, 1, kv, kv + H * D, 0, D), KVZ_OK);
        int64_t p;
        assert_int_equal(kvz_query_next_position(q, 0, &p), KVZ_OK);
        assert_true(p == KVZ_POSITION_LIMIT);
        kvz_query_destroy(q);
        kvz_cache_destroy(x);
    }
    /* in memory: a position just below the limit is the last one a layer takes */
    const int64_t last = KVZ_POSITION_LIMIT - 1;
    assert_int_equal(kvz_cache_append_at(c, 0, 1, kv, kv + H * D, 0, D, &last), KVZ_OK);
    assert_int_equal(kvz_cache_append(c, 0, 1, kv, kv + H * D, 0, D), KVZ_ERR_INVALID_ARG);
    assert_int_equal(kvz_cache_append(c, 1, SIZE_MAX, kv, kv + H * D, 0, D), KVZ_ERR_INVALID_ARG);
    kvz_cache_destroy(c);
    free(good), free(buf), free(kv);
    unlink(path), unlink(bad);
}

/* A version 1 file (no windows in LENS) loads with every layer global. */
static void test_version1(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 66);
    char path[128], old[128];
    tu_tmp_path(path, sizeof path, "v2.kvz");
    tu_tmp_path(old, sizeof old, "v1.kvz");
    kvz_cache *c = sample(&r, KVZ_DTYPE_BF16, 40, L, H, D);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    size_t n;
    unsigned char *v2 = tu_slurp(path, &n), *v1 = tu_malloc(n);
    /* the header with version 1, then LENS without its L windows */
    const uint32_t one = 1;
    memcpy(v1, v2, 128);
    memcpy(v1 + 8, &one, 4);
    const uint32_t hcrc = kvz_crc32c(0, v1, 124);
    memcpy(v1 + 124, &hcrc, 4);
    const size_t lens1 = 8 * (L + L * H);
    memcpy(v1 + 128, v2 + 128, 4); /* tag */
    const uint64_t bytes = lens1;
    memcpy(v1 + 136, &bytes, 8);
    memcpy(v1 + LENS_AT, v2 + LENS_AT, 8 * L);                      /* next positions */
    memcpy(v1 + LENS_AT + 8 * L, v2 + LENS_AT + 16 * L, 8 * L * H); /* segment lengths */
    const uint32_t lcrc = kvz_crc32c(0, v1 + LENS_AT, lens1);
    memcpy(v1 + 132, &lcrc, 4);
    const size_t rest = n - (LENS_AT + 8 * (2 * L + L * H));
    memcpy(v1 + LENS_AT + lens1, v2 + LENS_AT + 8 * (2 * L + L * H), rest);
    tu_spit(old, v1, LENS_AT + lens1 + rest);
    kvz_cache *b = NULL;
    assert_int_equal(kvz_cache_load(old, NULL, &b, NULL), KVZ_OK);
    assert_same_cache(c, b, L, H, D * 2);
    for (size_t l = 0; l < L; l++) {
        size_t w = 1;
        assert_int_equal(kvz_cache_layer_window(b, l, &w), KVZ_OK);
        assert_int_equal(w, 0);
    }
    kvz_cache_destroy(b), kvz_cache_destroy(c);
    free(v1), free(v2);
}

/* A cache without rows (created, nothing appended) saves and loads: its segments have no storage, which
 * the writer must not offset from (UBSan in fuzz/fuzz_kvz found it; tests/data/fuzz/kvz holds the input). */
static void test_empty(void **state)
{
    (void)state;
    char path[128];
    tu_tmp_path(path, sizeof path, "empty.kvz");
    const size_t window[L] = {0, 4};
    kvz_cache_config cfg = {sizeof cfg, L, H, D, KVZ_DTYPE_F32, 0, window};
    kvz_cache *c, *b = NULL;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    assert_int_equal(kvz_cache_save(c, path, NULL), KVZ_OK);
    assert_int_equal(kvz_cache_load(path, NULL, &b, NULL), KVZ_OK);
    kvz_cache_stats st = {.struct_size = sizeof st};
    assert_int_equal(kvz_cache_get_stats(b, &st), KVZ_OK);
    assert_int_equal(st.rows, 0);
    assert_int_equal(st.full_rows, 0);
    kvz_cache_destroy(b), kvz_cache_destroy(c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_window_round_trip),
        cmocka_unit_test(test_window_damage),
        cmocka_unit_test(test_version1),
        cmocka_unit_test(test_next_position_limit),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}

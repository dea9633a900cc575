/* .kvz files: round trip, metadata, and refusal of damaged files (every byte flipped, every truncation). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "testutil.h"

enum { L = 2, H = 3, D = 64 };

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kvz-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

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
    path_of(path, sizeof path, "a.kvz");
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
    path_of(path, sizeof path, "small.kvz");
    path_of(bad, sizeof bad, "bad.kvz");
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
    /* another version, with a valid header checksum, is a version error */
    memcpy(buf, good, n);
    buf[8] = 2;
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
    path_of(path, sizeof path, "atomic.kvz");
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
    DIR *dh = opendir(dir);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_crc32c),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

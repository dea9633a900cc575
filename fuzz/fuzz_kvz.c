/* libFuzzer harness for kvz_cache_load: the loaded cache is then read (shape, stats, rows), attended by a
 * query on every layer, and saved and loaded again, so that sizes the loader let through inconsistently
 * show up as out-of-bounds accesses or a refused round trip. */
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "fuzz_util.h"
#include "kvz.h"

#define HEADER       128
#define MAX_LAYERS   64 /* layers attended per input: enough to reach every kind of layer */
#define MAX_SEGMENTS 4096

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Rewrites the header's and every section's CRC32C: a mutated file would otherwise stop at the
 * first checksum, and the checks behind it (shapes, lengths, positions) would never run. The
 * checksum refusals themselves are covered by tests/test_persist.c. */
static void fix_checksums(uint8_t *b, size_t n)
{
    if (n < HEADER || memcmp(b, "KVZCACHE", 8) != 0)
        return;
    put32(b + 124, kvz_crc32c(0, b, 124));
    for (size_t off = HEADER; n - off >= 16;) {
        const uint64_t len = get64(b + off + 8);
        const size_t have = len < n - off - 16 ? (size_t)len : n - off - 16;
        put32(b + off + 4, kvz_crc32c(0, b + off + 16, have));
        off += 16 + have;
    }
}

static void use(const kvz_cache *c)
{
    size_t L, H, d;
    kvz_dtype dt;
    kvz_cache_stats s = {.struct_size = sizeof s};
    if (kvz_cache_shape(c, &L, &H, &d, &dt) != KVZ_OK || kvz_cache_get_stats(c, &s) != KVZ_OK)
        fuzz_fail("a loaded cache has no shape or stats: %s", kvz_last_error());
    const size_t row_bytes = d * (dt == KVZ_DTYPE_F32 ? 4 : 2);
    size_t rows = 0;
    for (size_t i = 0; i < L * H && i < MAX_SEGMENTS; i++) {
        size_t len, bytes;
        const int64_t *pos;
        const void *k, *v;
        const size_t l = i / H, h = i % H;
        if (kvz_cache_length(c, l, h, &len) != KVZ_OK || kvz_cache_positions(c, l, h, &pos) != KVZ_OK ||
            kvz_cache_rows(c, l, h, &k, &v) != KVZ_OK || kvz_cache_segment_bytes(c, l, h, &bytes) != KVZ_OK)
            fuzz_fail("segment %zu of a loaded cache cannot be read: %s", i, kvz_last_error());
        for (size_t j = 1; j < len; j++)
            if (pos[j] <= pos[j - 1])
                fuzz_fail("segment %zu has positions out of order", i);
        if (len) /* every byte of the rows read: ASan sees storage shorter than the length */
            (void)kvz_crc32c(kvz_crc32c(0, k, len * row_bytes), v, len * row_bytes);
        rows += len;
    }
    if (L * H <= MAX_SEGMENTS && rows != s.rows)
        fuzz_fail("the segments hold %zu rows, the stats say %zu", rows, s.rows);
    kvz_query *q;
    float *x = calloc(H * d, sizeof *x), *out = malloc(H * d * sizeof *out);
    if (!x || !out || kvz_query_create(c, &q) != KVZ_OK) {
        free(x), free(out);
        return; /* no memory: nothing the loader did */
    }
    for (size_t i = 0; i < H * d; i++)
        x[i] = (float)(i % 7) * 0.25f - 0.75f;
    for (size_t l = 0; l < L && l < MAX_LAYERS; l++) {
        const kvz_attend_args a = {.struct_size = sizeof a,
                                   .group = 1,
                                   .n_q = 1,
                                   .q = x,
                                   .q_token_stride = (ptrdiff_t)(H * d),
                                   .q_head_stride = (ptrdiff_t)d,
                                   .out = out,
                                   .out_token_stride = (ptrdiff_t)(H * d),
                                   .out_head_stride = (ptrdiff_t)d};
        int64_t next;
        if (kvz_cache_next_position(c, l, &next) != KVZ_OK)
            fuzz_fail("layer %zu of a loaded cache has no next position", l);
        if (next >= KVZ_POSITION_LIMIT)
            continue; /* a layer full up to the limit takes no more tokens, as kvz_cache_append says */
        kvz_status st = kvz_query_append(q, l, 1, x, x, (ptrdiff_t)(H * d), (ptrdiff_t)d);
        if (st == KVZ_OK)
            st = kvz_query_attend(q, l, &a);
        if (st != KVZ_OK && st != KVZ_ERR_NOMEM)
            fuzz_fail("a query on layer %zu of a loaded cache failed: %s", l, kvz_last_error());
    }
    kvz_query_destroy(q);
    free(x), free(out);
}

/* What was loaded saves, and the saved file loads back with the same rows. */
static void round_trip(const kvz_cache *c)
{
    const char *path = fuzz_path("again.kvz");
    kvz_cache *back;
    kvz_cache_stats a = {.struct_size = sizeof a}, b = {.struct_size = sizeof b};
    if (kvz_cache_save(c, path, NULL) != KVZ_OK)
        fuzz_fail("a loaded cache does not save: %s", kvz_last_error());
    if (kvz_cache_load(path, NULL, &back, NULL) != KVZ_OK)
        fuzz_fail("a saved cache does not load: %s", kvz_last_error());
    kvz_cache_get_stats(c, &a), kvz_cache_get_stats(back, &b);
    if (a.rows != b.rows || a.full_rows != b.full_rows)
        fuzz_fail("a round trip changed the rows (%zu of %zu, then %zu of %zu)", a.rows, a.full_rows, b.rows,
                  b.full_rows);
    kvz_cache_destroy(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kvz_set_num_threads(1);
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    fix_checksums(b, size);
    const char *path = fuzz_write("in.kvz", b, size);
    free(b);
    kvz_cache *c;
    kvz_cache_meta meta = {.struct_size = sizeof meta};
    if (kvz_cache_load(path, NULL, &c, &meta) != KVZ_OK)
        return 0;
    if (!memchr(meta.policy, 0, sizeof meta.policy))
        fuzz_fail("the policy name is not terminated");
    use(c);
    round_trip(c);
    kvz_cache_destroy(c);
    return 0;
}

/*
 * .kvz cache files (doc/kvz-format.md): a checksummed header and four checksummed sections,
 * written to a temporary file that is synced and renamed into place, and read back with
 * every size checked against the file before anything is allocated or handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/cache_internal.h"
#include "core/crc32c.h"
#include "core/internal.h"

#define KVZ_FILE_MAGIC   "KVZCACHE"
#define KVZ_FILE_VERSION 2u /* 2: per-layer sliding windows in LENS; 1 is read as all global */
#define HEADER_BYTES     128u

enum {
    TAG_LENS = 0x534e454c,
    TAG_POSN = 0x4e534f50,
    TAG_KEYS = 0x5359454b,
    TAG_VALS = 0x534c4156
}; /* ASCII, LE */

/* ---- little-endian fields --------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The file stores rows, positions and lengths in the host's order; the format says
 * little-endian, so a big-endian host would have to convert (none is supported). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".kvz I/O assumes a little-endian host");

static size_t n_segments(const kvz_cache *c) { return c->cfg.n_layers * c->cfg.n_kv_heads; }

/* ---- writing -------------------------------------------------------------------------- */

/* Every write goes through the atomic file, which remembers the first failure. */
static void wr(kvz_atomic_file *w, const void *p, size_t n) { kvz_atomic_file_write(w, p, n); }

static void section_header(kvz_atomic_file *w, uint32_t tag, uint32_t crc, uint64_t bytes)
{
    unsigned char h[16];
    put32(h, tag), put32(h + 4, crc), put64(h + 8, bytes);
    wr(w, h, sizeof h);
}

/* The rows of a segment the file keeps: a sliding-window layer's last `window` only, the
 * rows later tokens can still see (it may hold up to twice that between its drops). */
static size_t saved_rows(const kvz_segment *s, size_t window)
{
    return window && s->len > window ? window : s->len;
}

/* The K or V rows (which = 0/1) or the positions (which = 2) a segment saves. */
static void segment_data(const kvz_segment *s, size_t window, int which, size_t rb, const void **p, size_t *n)
{
    const size_t keep = saved_rows(s, window), first = s->len - keep;
    if (!keep) { /* a segment without rows may have no storage: no offset from a NULL pointer */
        *p = NULL, *n = 0;
        return;
    }
    *p = which == 0   ? (const char *)s->k + first * rb
         : which == 1 ? (const char *)s->v + first * rb
                      : (const void *)(s->pos + first);
    *n = keep * (which == 2 ? sizeof(int64_t) : rb);
}

static kvz_status write_all(const kvz_cache *c, const kvz_cache_meta *meta, kvz_atomic_file *w)
{
    const size_t L = c->cfg.n_layers, S = n_segments(c), rb = c->cfg.head_dim * kvz_dtype_bytes(c->cfg.dtype);
    unsigned char h[HEADER_BYTES];
    memset(h, 0, sizeof h);
    memcpy(h, KVZ_FILE_MAGIC, 8);
    put32(h + 8, KVZ_FILE_VERSION), put32(h + 12, HEADER_BYTES);
    put64(h + 16, L), put64(h + 24, c->cfg.n_kv_heads), put64(h + 32, c->cfg.head_dim);
    put32(h + 40, (uint32_t)c->cfg.dtype), put32(h + 44, 4);
    if (meta) {
        memcpy(h + 48, meta->model_fingerprint, 32);
        memcpy(h + 80, meta->policy, 31); /* byte 111 stays NUL */
        uint64_t bits;
        memcpy(&bits, &meta->ratio, 8);
        put64(h + 112, bits);
    }
    put32(h + 124, kvz_crc32c(0, h, 124));
    wr(w, h, sizeof h);

    /* LENS: next position per layer, window per layer, then every segment's saved rows */
    const size_t H = c->cfg.n_kv_heads, nl = 2 * L + S;
    unsigned char *lens = malloc(8 * nl);
    if (!lens)
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_cache_save: no memory");
    for (size_t l = 0; l < L; l++)
        put64(lens + 8 * l, (uint64_t)c->next_pos[l]), put64(lens + 8 * (L + l), c->window[l]);
    for (size_t i = 0; i < S; i++)
        put64(lens + 8 * (2 * L + i), saved_rows(&c->seg[i], c->window[i / H]));
    section_header(w, TAG_LENS, kvz_crc32c(0, lens, 8 * nl), 8 * nl);
    wr(w, lens, 8 * nl);
    free(lens);

    static const uint32_t tags[3] = {TAG_KEYS, TAG_VALS, TAG_POSN};
    static const int order[3] = {2, 0, 1}; /* POSN, KEYS, VALS */
    for (int o = 0; o < 3; o++) {
        const int which = order[o];
        uint32_t crc = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < S; i++) {
            const void *p;
            size_t n;
            segment_data(&c->seg[i], c->window[i / H], which, rb, &p, &n);
            crc = kvz_crc32c(crc, p, n);
            bytes += n;
        }
        section_header(w, tags[which], crc, bytes);
        for (size_t i = 0; i < S; i++) {
            const void *p;
            size_t n;
            segment_data(&c->seg[i], c->window[i / H], which, rb, &p, &n);
            wr(w, p, n);
        }
    }
    return KVZ_OK; /* write errors are the atomic file's to report */
}

/* kvz_cache_meta in the first release */
#define META_SIZE_0_1 KVZ_SIZE_0_1(kvz_cache_meta, ratio)

kvz_status kvz_cache_save(const kvz_cache *c, const char *path, const kvz_cache_meta *given)
{
    if (!c || !path)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_save: cache and path must not be NULL");
    kvz_cache_meta m;
    const kvz_cache_meta *meta = NULL;
    if (given) {
        const kvz_status sa =
            kvz_struct_in("kvz_cache_save", "kvz_cache_meta", given, META_SIZE_0_1, &m, sizeof m);
        if (sa != KVZ_OK)
            return sa;
        meta = &m;
    }
    kvz_atomic_file af;
    kvz_status st = kvz_atomic_file_open(&af, path, "kvz_cache_save");
    if (st == KVZ_OK)
        st = kvz_atomic_file_close(&af, write_all(c, meta, &af));
    return st;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct reader {
    int fd;
    uint64_t off, size;
    const char *path;
} reader;

/* Reads exactly n bytes; a short file is KVZ_ERR_TRUNCATED. */
static kvz_status rd(reader *r, void *p, size_t n)
{
    if (n > r->size - r->off)
        return kvz_fail(
            KVZ_ERR_TRUNCATED, "kvz_cache_load: %s ends at byte %llu, %zu bytes short of the data at %llu",
            r->path, (unsigned long long)r->size, (size_t)(r->off + n - r->size), (unsigned long long)r->off);
    size_t done = 0;
    while (done < n) {
        const ssize_t k = pread(r->fd, (char *)p + done, n - done, (off_t)(r->off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return kvz_fail(KVZ_ERR_IO, "kvz_cache_load: read %s: %s", r->path,
                            k ? strerror(errno) : "end of file");
        done += (size_t)k;
    }
    r->off += n;
    return KVZ_OK;
}

/* A section header with the expected tag and byte count, and room for it in the file. */
static kvz_status section(reader *r, uint32_t tag, uint64_t bytes, uint32_t *crc)
{
    unsigned char h[16];
    kvz_status st = rd(r, h, sizeof h);
    if (st != KVZ_OK)
        return st;
    if (get32(h) != tag || get64(h + 8) != bytes)
        return kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: section at byte %llu is not the expected one",
                        r->path, (unsigned long long)(r->off - 16));
    if (bytes > r->size - r->off)
        return kvz_fail(KVZ_ERR_TRUNCATED,
                        "kvz_cache_load: %s: section at byte %llu needs %llu bytes, %llu remain", r->path,
                        (unsigned long long)(r->off - 16), (unsigned long long)bytes,
                        (unsigned long long)(r->size - r->off));
    *crc = get32(h + 4);
    return KVZ_OK;
}

static kvz_status load_body(reader *r, const unsigned char *h, kvz_cache **out)
{
    const int v2 = get32(h + 8) >= 2; /* version 1 has no windows: every layer is global */
    const uint64_t L = get64(h + 16), H = get64(h + 24), d = get64(h + 32);
    const uint32_t dt = get32(h + 40);
    if (!L || !H || !d || d > KVZ_KMAX_HEAD_DIM || dt > KVZ_DTYPE_F16 || get32(h + 44) != 4 || L > (1u << 20) ||
        H > (1u << 20))
        return kvz_fail(KVZ_ERR_CORRUPT,
                        "kvz_cache_load: %s: impossible shape (%llu layers, %llu heads, head_dim "
                        "%llu, dtype %u)",
                        r->path, (unsigned long long)L, (unsigned long long)H, (unsigned long long)d, dt);
    const size_t S = (size_t)(L * H), rb = (size_t)d * kvz_dtype_bytes((kvz_dtype)dt);
    const size_t first_len = v2 ? 2 * L : L, nl = first_len + S; /* where the segment lengths start */
    uint32_t crc;
    kvz_status st = section(r, TAG_LENS, 8 * nl, &crc);
    if (st != KVZ_OK)
        return st;
    unsigned char *lens = malloc(8 * nl);
    size_t *window = calloc(L, sizeof *window);
    if (!lens || !window) {
        free(lens), free(window);
        return kvz_fail(KVZ_ERR_NOMEM, "kvz_cache_load: no memory");
    }
    if ((st = rd(r, lens, 8 * nl)) == KVZ_OK && kvz_crc32c(0, lens, 8 * nl) != crc)
        st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: segment lengths fail their checksum", r->path);
    for (size_t l = 0; st == KVZ_OK && v2 && l < L; l++) {
        const uint64_t w = get64(lens + 8 * (L + l));
        if (w > (uint64_t)INT64_MAX)
            st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: layer %zu claims a window of %llu", r->path, l,
                          (unsigned long long)w);
        window[l] = (size_t)w;
    }
    /* the lengths decide every later size: check them against the file before allocating */
    uint64_t rows = 0, *seg_rows = NULL; /* seg_rows: the NUMA placement balances the loaded sizes */
    if (st == KVZ_OK && !(seg_rows = malloc(S * sizeof *seg_rows)))
        st = kvz_fail(KVZ_ERR_NOMEM, "kvz_cache_load: no memory");
    for (size_t i = 0; st == KVZ_OK && i < S; i++) {
        const uint64_t len = seg_rows[i] = get64(lens + 8 * (first_len + i)), next = get64(lens + 8 * (i / H));
        if (len > next || next > (uint64_t)INT64_MAX || len > r->size)
            st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: segment %zu claims %llu rows", r->path, i,
                          (unsigned long long)len);
        rows += len;
        if (st == KVZ_OK && rows > r->size) /* every row takes at least 8 bytes: no overflow below */
            st = kvz_fail(KVZ_ERR_TRUNCATED, "kvz_cache_load: %s: more rows than the file can hold", r->path);
    }
    if (st == KVZ_OK && rows > (r->size - r->off) / (8 + 2 * rb))
        st = kvz_fail(KVZ_ERR_TRUNCATED, "kvz_cache_load: %s: %llu rows need more bytes than the file has",
                      r->path, (unsigned long long)rows);
    kvz_cache *c = NULL;
    if (st == KVZ_OK) {
        kvz_cache_config cfg = {sizeof cfg, (size_t)L, (size_t)H, (size_t)d, (kvz_dtype)dt, 0, window};
        st = kvz_cache_create_placed(&cfg, seg_rows, &c);
    }
    free(seg_rows), free(window);
    /* a next position past the bound would let the next append overflow int64_t */
    for (size_t l = 0; st == KVZ_OK && l < L; l++)
        if (get64(lens + 8 * l) > (uint64_t)KVZ_POSITION_LIMIT)
            st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: layer %zu has next position %llu, above 2^62",
                          r->path, l, (unsigned long long)get64(lens + 8 * l));
        else
            c->next_pos[l] = (int64_t)get64(lens + 8 * l);
    for (size_t i = 0; st == KVZ_OK && i < S; i++)
        st = kvz_segment_reserve(&c->seg[i], get64(lens + 8 * (first_len + i)), (size_t)d, (kvz_dtype)dt);
    /* POSN, KEYS, VALS, read straight into the segments, each checked as a whole */
    static const uint32_t tags[3] = {TAG_POSN, TAG_KEYS, TAG_VALS};
    for (int which = 0; st == KVZ_OK && which < 3; which++) {
        const size_t unit = which == 0 ? 8 : rb;
        if ((st = section(r, tags[which], rows * unit, &crc)) != KVZ_OK)
            break;
        uint32_t got = 0;
        for (size_t i = 0; st == KVZ_OK && i < S; i++) {
            const size_t n = (size_t)get64(lens + 8 * (first_len + i)) * unit;
            void *dst = which == 0 ? (void *)c->seg[i].pos : which == 1 ? c->seg[i].k : c->seg[i].v;
            if ((st = rd(r, dst, n)) == KVZ_OK)
                got = kvz_crc32c(got, dst, n);
        }
        if (st == KVZ_OK && got != crc)
            st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: the %s section fails its checksum", r->path,
                          which == 0   ? "positions"
                          : which == 1 ? "keys"
                                       : "values");
    }
    /* positions: strictly increasing inside a segment and below the layer's next position; a
       sliding-window layer holds its last min(window, tokens appended) rows: the last
       min(window, next position) positions, unless its positions have gaps (FastKV's
       propagated tokens), when it may hold fewer than the window only if it ever had fewer */
    for (size_t i = 0; st == KVZ_OK && i < S; i++) {
        const kvz_segment *sg = &c->seg[i];
        const size_t len = (size_t)get64(lens + 8 * (first_len + i)), w = c->window[i / H];
        const uint64_t next = (uint64_t)c->next_pos[i / H];
        int gaps = 0;
        for (size_t j = 0; st == KVZ_OK && j < len; j++) {
            if (sg->pos[j] < (j ? sg->pos[j - 1] + 1 : 0) || sg->pos[j] >= c->next_pos[i / H])
                st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: segment %zu has position %lld at row %zu",
                              r->path, i, (long long)sg->pos[j], j);
            gaps |= (uint64_t)sg->pos[j] != next - len + j;
        }
        const uint64_t full = next < w ? next : w;
        if (st == KVZ_OK && w && (len > w || (len < full && !gaps)))
            st = kvz_fail(
                KVZ_ERR_CORRUPT,
                "kvz_cache_load: %s: segment %zu of a layer with a sliding window of %zu holds %zu rows "
                "after %llu tokens",
                r->path, i, w, len, (unsigned long long)next);
        c->seg[i].len = len;
        if (w) /* a layer that dropped rows keeps its whole window: fewer rows means none were */
            c->dropped[i / H] = len < w ? 0 : (size_t)(next - len); /* the same for every head */
    }
    free(lens);
    if (st != KVZ_OK) {
        kvz_cache_destroy(c);
        return st;
    }
    *out = c;
    return KVZ_OK;
}

kvz_status kvz_cache_load(const char *path, const uint8_t *expect_fingerprint, kvz_cache **out,
                          kvz_cache_meta *meta)
{
    if (!path || !out)
        return kvz_fail(KVZ_ERR_NULL, "kvz_cache_load: path and cache must not be NULL");
    *out = NULL;
    if (meta) {
        const kvz_status sa = kvz_struct_out_check("kvz_cache_load", "kvz_cache_meta", meta, META_SIZE_0_1);
        if (sa != KVZ_OK)
            return sa;
    }
    reader r = {open(path, O_RDONLY | O_CLOEXEC), 0, 0, path};
    if (r.fd < 0)
        return kvz_fail(KVZ_ERR_IO, "kvz_cache_load: open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(r.fd, &sb) != 0) {
        const int e = errno;
        close(r.fd);
        return kvz_fail(KVZ_ERR_IO, "kvz_cache_load: stat %s: %s", path, strerror(e));
    }
    r.size = (uint64_t)sb.st_size;
    unsigned char h[HEADER_BYTES];
    kvz_status st = KVZ_OK;
    const size_t have = r.size < sizeof h ? (size_t)r.size : sizeof h;
    if ((st = rd(&r, h, have)) == KVZ_OK) {
        if (memcmp(h, KVZ_FILE_MAGIC, have < 8 ? have : 8) != 0)
            st = kvz_fail(KVZ_ERR_FORMAT, "kvz_cache_load: %s is not a .kvz cache file", path);
        else if (have < sizeof h)
            st = kvz_fail(KVZ_ERR_TRUNCATED, "kvz_cache_load: %s ends inside its header (%zu bytes)", path,
                          have);
        else if (get32(h + 8) < 1 || get32(h + 8) > KVZ_FILE_VERSION)
            st = kvz_fail(KVZ_ERR_VERSION,
                          "kvz_cache_load: %s has format version %u; this library reads 1 to %u", path,
                          get32(h + 8), KVZ_FILE_VERSION);
        else if (get32(h + 12) != HEADER_BYTES || kvz_crc32c(0, h, 124) != get32(h + 124))
            st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s: header fails its checksum", path);
        else if (expect_fingerprint && memcmp(expect_fingerprint, h + 48, 32) != 0)
            st = kvz_fail(KVZ_ERR_MISMATCH, "kvz_cache_load: %s was made with another model", path);
    }
    kvz_cache *c = NULL;
    if (st == KVZ_OK)
        st = load_body(&r, h, &c);
    if (st == KVZ_OK && r.off != r.size) {
        kvz_cache_destroy(c);
        st = kvz_fail(KVZ_ERR_CORRUPT, "kvz_cache_load: %s has %llu unexpected bytes after the data", path,
                      (unsigned long long)(r.size - r.off));
    }
    close(r.fd);
    if (st != KVZ_OK)
        return st;
    if (meta) {
        kvz_cache_meta m = {.struct_size = sizeof m};
        memcpy(m.model_fingerprint, h + 48, 32);
        memcpy(m.policy, h + 80, 32);
        m.policy[31] = '\0';
        const uint64_t bits = get64(h + 112);
        memcpy(&m.ratio, &bits, 8);
        kvz_struct_out(meta, &m, sizeof m);
    }
    *out = c;
    return KVZ_OK;
}

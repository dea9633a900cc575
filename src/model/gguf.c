/* A validating GGUF v3 reader: the file is mapped read-only and every count, length, type,
 * dimension, offset and size is checked (with overflow checks) before anything points into it. */
#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

typedef struct cur {
    const uint8_t *p, *end;
    const char *path;
} cur;

static kvz_status need(cur *c, uint64_t n, const char *what)
{
    if (n > (uint64_t)(c->end - c->p))
        return kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s ends inside %s", c->path, what);
    return KVZ_OK;
}

static kvz_status rd32(cur *c, uint32_t *v, const char *what)
{
    kvz_status st = need(c, 4, what);
    if (st == KVZ_OK)
        memcpy(v, c->p, 4), c->p += 4;
    return st;
}

static kvz_status rd64(cur *c, uint64_t *v, const char *what)
{
    kvz_status st = need(c, 8, what);
    if (st == KVZ_OK)
        memcpy(v, c->p, 8), c->p += 8;
    return st;
}

static kvz_status rdstr(cur *c, kvz_gguf_str *s, const char *what)
{
    uint64_t n;
    kvz_status st = rd64(c, &n, what);
    if (st == KVZ_OK && (st = need(c, n, what)) == KVZ_OK) {
        s->p = (const char *)c->p, s->n = (size_t)n;
        c->p += n;
    }
    return st;
}

static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case KVZ_GGUF_U8:
    case KVZ_GGUF_I8:
    case KVZ_GGUF_BOOL: return 1;
    case KVZ_GGUF_U16:
    case KVZ_GGUF_I16: return 2;
    case KVZ_GGUF_U32:
    case KVZ_GGUF_I32:
    case KVZ_GGUF_F32: return 4;
    case KVZ_GGUF_U64:
    case KVZ_GGUF_I64:
    case KVZ_GGUF_F64: return 8;
    }
    return 0;
}

static const kvz_ggml_type types[] = {
    [KVZ_GGML_F32] = {"F32", 1, 4},     [KVZ_GGML_F16] = {"F16", 1, 2},      [KVZ_GGML_Q4_0] = {"Q4_0", 32, 18},
    [KVZ_GGML_Q4_1] = {"Q4_1", 32, 20}, [KVZ_GGML_Q5_0] = {"Q5_0", 32, 22},  [KVZ_GGML_Q5_1] = {"Q5_1", 32, 24},
    [KVZ_GGML_Q8_0] = {"Q8_0", 32, 34}, [KVZ_GGML_Q2_K] = {"Q2_K", 256, 84}, [KVZ_GGML_Q3_K] = {"Q3_K", 256, 110},
    [KVZ_GGML_Q4_K] = {"Q4_K", 256, 144}, [KVZ_GGML_Q5_K] = {"Q5_K", 256, 176},
    [KVZ_GGML_Q6_K] = {"Q6_K", 256, 210}, [KVZ_GGML_BF16] = {"BF16", 1, 2},
};

const kvz_ggml_type *kvz_ggml_type_of(uint32_t type)
{
    return type < sizeof types / sizeof *types && types[type].name ? &types[type] : NULL;
}

/* The names of ggml's other tensor types, for the message that refuses them. */
static const char *ggml_type_name(uint32_t type)
{
    static const char *const names[] = {
        [9] = "Q8_1",     [15] = "Q8_K",   [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S",
        [20] = "IQ4_NL",  [21] = "IQ3_S",  [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",      [25] = "I16",
        [26] = "I32",     [27] = "I64",    [28] = "F64",     [29] = "IQ1_M",  [34] = "TQ1_0",   [35] = "TQ2_0",
        [39] = "MXFP4",
    };
    return type < sizeof names / sizeof *names ? names[type] : NULL;
}

/* Skips one value of type t (not an array), checking it lies in the file. */
static kvz_status skip_value(cur *c, uint32_t t, const char *what)
{
    if (t == KVZ_GGUF_STRING) {
        kvz_gguf_str s;
        return rdstr(c, &s, what);
    }
    const size_t n = scalar_size(t);
    if (!n)
        return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: %s has unknown value type %u", c->path, what, t);
    kvz_status st = need(c, n, what);
    if (st == KVZ_OK)
        c->p += n;
    return st;
}

static kvz_status parse(kvz_gguf *g, const char *path)
{
    cur c = {g->map, (const uint8_t *)g->map + g->size, path};
    kvz_status st;
    if (g->size < 4 || memcmp(g->map, "GGUF", 4) != 0)
        return g->size < 4 && memcmp(g->map, "GGUF", g->size) == 0
                   ? kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s ends inside its magic", path)
                   : kvz_fail(KVZ_ERR_FORMAT, "gguf: %s is not a GGUF file", path);
    c.p += 4;
    if ((st = rd32(&c, &g->version, "the header")) != KVZ_OK)
        return st;
    if (g->version != 3)
        return kvz_fail(KVZ_ERR_VERSION, "gguf: %s is GGUF version %u; version 3 is supported", path,
                        g->version);
    if ((st = rd64(&c, &g->n_tensors, "the header")) != KVZ_OK ||
        (st = rd64(&c, &g->n_kv, "the header")) != KVZ_OK)
        return st;
    /* every KV takes >= 12 bytes and every tensor >= 24: counts beyond the file are lies */
    if (g->n_kv > g->size / 12 || g->n_tensors > g->size / 24)
        return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s claims %llu metadata pairs and %llu tensors", path,
                        (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return kvz_fail(KVZ_ERR_NOMEM, "gguf: no memory for the directory of %s", path);
    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        kvz_gguf_kv *kv = &g->kv[i];
        if ((st = rdstr(&c, &kv->key, "a metadata key")) != KVZ_OK ||
            (st = rd32(&c, &kv->type, "a metadata type")) != KVZ_OK)
            return st;
        if (kv->type == KVZ_GGUF_ARRAY) {
            if ((st = rd32(&c, &kv->elem_type, "an array type")) != KVZ_OK ||
                (st = rd64(&c, &kv->count, "an array length")) != KVZ_OK)
                return st;
            if (kv->elem_type == KVZ_GGUF_ARRAY)
                return kvz_fail(KVZ_ERR_UNSUPPORTED, "gguf: %s: nested arrays (key %.*s)", path, (int)kv->key.n,
                                kv->key.p);
            kv->data = c.p;
            if (kv->elem_type != KVZ_GGUF_STRING) {
                const size_t es = scalar_size(kv->elem_type);
                if (!es)
                    return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: array of unknown type %u", path, kv->elem_type);
                if (kv->count > (uint64_t)(c.end - c.p) / es)
                    return kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s ends inside array %.*s", path, (int)kv->key.n,
                                    kv->key.p);
                c.p += kv->count * es;
            } else {
                if (kv->count > (uint64_t)(c.end - c.p) / 8)
                    return kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s ends inside array %.*s", path, (int)kv->key.n,
                                    kv->key.p);
                for (uint64_t k = 0; k < kv->count; k++)
                    if ((st = skip_value(&c, KVZ_GGUF_STRING, "a string array")) != KVZ_OK)
                        return st;
            }
        } else {
            kv->data = c.p;
            if ((st = skip_value(&c, kv->type, "a metadata value")) != KVZ_OK)
                return st;
        }
        if (kv->key.n == 17 && !memcmp(kv->key.p, "general.alignment", 17)) {
            uint32_t a;
            if (kv->type != KVZ_GGUF_U32)
                return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: general.alignment is not a u32", path);
            memcpy(&a, kv->data, 4);
            if (a == 0 || (a & (a - 1)) || a > 65536)
                return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: alignment %u is not a power of two <= 65536", path,
                                a);
            g->alignment = a;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        kvz_gguf_tensor *t = &g->tensors[i];
        uint64_t off;
        if ((st = rdstr(&c, &t->name, "a tensor name")) != KVZ_OK ||
            (st = rd32(&c, &t->n_dims, "a tensor's dimensions")) != KVZ_OK)
            return st;
        if (t->n_dims == 0 || t->n_dims > 4)
            return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: tensor %.*s has %u dimensions", path, (int)t->name.n,
                            t->name.p, t->n_dims);
        t->n_elements = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if ((st = rd64(&c, &t->dims[d], "a tensor's dimensions")) != KVZ_OK)
                return st;
            if (t->dims[d] == 0 || __builtin_mul_overflow(t->n_elements, t->dims[d], &t->n_elements))
                return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: tensor %.*s has a bad dimension", path,
                                (int)t->name.n, t->name.p);
        }
        for (uint32_t d = t->n_dims; d < 4; d++)
            t->dims[d] = 1;
        if ((st = rd32(&c, &t->type, "a tensor type")) != KVZ_OK ||
            (st = rd64(&c, &off, "a tensor offset")) != KVZ_OK)
            return st;
        const kvz_ggml_type *ty = kvz_ggml_type_of(t->type);
        if (!ty) {
            const char *known = ggml_type_name(t->type);
            return kvz_fail(KVZ_ERR_UNSUPPORTED,
                            "gguf: %s: tensor %.*s has type %s (%u), which is not read (F32, F16, BF16, Q4_0, Q4_1, "
                            "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K are)",
                            path, (int)t->name.n, t->name.p, known ? known : "unknown", t->type);
        }
        if (t->dims[0] % ty->block)
            return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: %s tensor %.*s has rows of %llu (not blocks of %u)", path,
                            ty->name, (int)t->name.n, t->name.p, (unsigned long long)t->dims[0], ty->block);
        if (t->n_elements / ty->block > UINT64_MAX / 4 / ty->bytes)
            return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: tensor %.*s is too large", path, (int)t->name.n,
                            t->name.p);
        const uint64_t bytes = t->n_elements / ty->block * ty->bytes;
        t->n_bytes = bytes;
        t->data = (const void *)(uintptr_t)off; /* relative until the data offset is known */
    }
    const uint64_t head = (uint64_t)(c.p - (const uint8_t *)g->map);
    g->data_offset = (head + g->alignment - 1) / g->alignment * g->alignment;
    if (g->data_offset > g->size)
        return kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s ends before its tensor data", path);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        kvz_gguf_tensor *t = &g->tensors[i];
        const uint64_t off = (uint64_t)(uintptr_t)t->data;
        if (off % g->alignment)
            return kvz_fail(KVZ_ERR_CORRUPT, "gguf: %s: tensor %.*s is not aligned", path, (int)t->name.n,
                            t->name.p);
        if (off > g->size - g->data_offset || t->n_bytes > g->size - g->data_offset - off)
            return kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s: tensor %.*s lies beyond the end of the file", path,
                            (int)t->name.n, t->name.p);
        t->data = (const uint8_t *)g->map + g->data_offset + off;
    }
    return KVZ_OK;
}

kvz_status kvz_gguf_open(const char *path, kvz_gguf **out)
{
    if (!path || !out)
        return kvz_fail(KVZ_ERR_NULL, "gguf: path and out must not be NULL");
    *out = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kvz_fail(KVZ_ERR_IO, "gguf: open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0) {
        const int e = errno;
        close(fd);
        return sb.st_size == 0 ? kvz_fail(KVZ_ERR_TRUNCATED, "gguf: %s is empty", path)
                               : kvz_fail(KVZ_ERR_IO, "gguf: stat %s: %s", path, strerror(e));
    }
    kvz_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return kvz_fail(KVZ_ERR_NOMEM, "gguf: no memory");
    }
    g->size = (size_t)sb.st_size;
    g->map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (g->map == MAP_FAILED) {
        const int e = errno;
        free(g);
        /* ENOMEM: no address space left for the mapping (a ulimit -v, say): memory, not I/O */
        return kvz_fail(e == ENOMEM ? KVZ_ERR_NOMEM : KVZ_ERR_IO, "gguf: mmap %s: %s", path, strerror(e));
    }
    const kvz_status st = parse(g, path);
    if (st != KVZ_OK) {
        kvz_gguf_close(g);
        return st;
    }
    *out = g;
    return KVZ_OK;
}

void kvz_gguf_close(kvz_gguf *g)
{
    if (!g)
        return;
    if (g->map && g->map != MAP_FAILED)
        munmap(g->map, g->size);
    free(g->kv), free(g->tensors), free(g);
}

static int str_is(kvz_gguf_str s, const char *z) { return strlen(z) == s.n && !memcmp(s.p, z, s.n); }

const kvz_gguf_kv *kvz_gguf_find(const kvz_gguf *g, const char *key)
{
    for (uint64_t i = 0; g && key && i < g->n_kv; i++)
        if (str_is(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const kvz_gguf_tensor *kvz_gguf_tensor_find(const kvz_gguf *g, const char *name)
{
    for (uint64_t i = 0; g && name && i < g->n_tensors; i++)
        if (str_is(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

int kvz_gguf_kv_int(const kvz_gguf_kv *kv, int64_t *v)
{
    switch (kv->type) {
    case KVZ_GGUF_U8:
    case KVZ_GGUF_BOOL: *v = kv->data[0]; return 1;
    case KVZ_GGUF_I8: *v = (int8_t)kv->data[0]; return 1;
    case KVZ_GGUF_U16: {
        uint16_t x;
        memcpy(&x, kv->data, 2);
        *v = x;
        return 1;
    }
    case KVZ_GGUF_I16: {
        int16_t x;
        memcpy(&x, kv->data, 2);
        *v = x;
        return 1;
    }
    case KVZ_GGUF_U32: {
        uint32_t x;
        memcpy(&x, kv->data, 4);
        *v = x;
        return 1;
    }
    case KVZ_GGUF_I32: {
        int32_t x;
        memcpy(&x, kv->data, 4);
        *v = x;
        return 1;
    }
    case KVZ_GGUF_U64: {
        uint64_t x;
        memcpy(&x, kv->data, 8);
        *v = x > INT64_MAX ? -1 : (int64_t)x;
        return 1;
    }
    case KVZ_GGUF_I64: memcpy(v, kv->data, 8); return 1;
    }
    return 0;
}

kvz_status kvz_gguf_get_u64(const kvz_gguf *g, const char *key, uint64_t *v)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    if (!kv)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "gguf: no metadata key %s", key ? key : "(null)");
    if (kv->type == KVZ_GGUF_U64) { /* the whole unsigned range, which int64 cannot carry */
        memcpy(v, kv->data, 8);
        return KVZ_OK;
    }
    /* 8- and 16-bit signed types and booleans are no sizes or counts */
    const int sized = kv->type == KVZ_GGUF_U8 || kv->type == KVZ_GGUF_U16 || kv->type == KVZ_GGUF_U32 ||
                      kv->type == KVZ_GGUF_I32 || kv->type == KVZ_GGUF_I64;
    int64_t x;
    if (sized && kvz_gguf_kv_int(kv, &x) && x >= 0) {
        *v = (uint64_t)x;
        return KVZ_OK;
    }
    return kvz_fail(KVZ_ERR_MISMATCH, "gguf: %s is not a non-negative integer", key);
}

kvz_status kvz_gguf_get_f32(const kvz_gguf *g, const char *key, float *v)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    if (!kv)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "gguf: no metadata key %s", key ? key : "(null)");
    if (kv->type == KVZ_GGUF_F32) {
        memcpy(v, kv->data, 4);
        return KVZ_OK;
    }
    if (kv->type == KVZ_GGUF_F64) {
        double d;
        memcpy(&d, kv->data, 8);
        *v = (float)d;
        return KVZ_OK;
    }
    return kvz_fail(KVZ_ERR_MISMATCH, "gguf: %s is not a float", key);
}

kvz_status kvz_gguf_get_str(const kvz_gguf *g, const char *key, kvz_gguf_str *v)
{
    const kvz_gguf_kv *kv = kvz_gguf_find(g, key);
    if (!kv)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "gguf: no metadata key %s", key ? key : "(null)");
    if (kv->type != KVZ_GGUF_STRING)
        return kvz_fail(KVZ_ERR_MISMATCH, "gguf: %s is not a string", key);
    uint64_t n;
    memcpy(&n, kv->data, 8); /* validated by parse */
    v->p = (const char *)kv->data + 8, v->n = (size_t)n;
    return KVZ_OK;
}

kvz_status kvz_gguf_array_strings(const kvz_gguf_kv *kv, kvz_gguf_str *out)
{
    if (!kv || kv->type != KVZ_GGUF_ARRAY || kv->elem_type != KVZ_GGUF_STRING)
        return kvz_fail(KVZ_ERR_MISMATCH, "gguf: not a string array");
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->count; i++) { /* lengths and bounds were checked by parse */
        uint64_t n;
        memcpy(&n, p, 8);
        out[i].p = (const char *)p + 8, out[i].n = (size_t)n;
        p += 8 + n;
    }
    return KVZ_OK;
}

/* NumPy .npy v1.0 for float32 arrays: magic, header length, a Python-dict header padded to
 * 64 bytes, then the data (numpy.lib.format). */
#include "cli/npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/internal.h"

kvz_status kvz_npy_write_f32(const char *path, const float *data, const size_t *shape, size_t ndim)
{
    if (!path || !shape || (!data && ndim))
        return kvz_fail(KVZ_ERR_NULL, "npy: NULL argument");
    if (ndim < 1 || ndim > 4)
        return kvz_fail(KVZ_ERR_INVALID_ARG, "npy: %zu dimensions (1..4)", ndim);
    char dims[128] = "";
    size_t count = 1, k = 0, bytes = 0;
    for (size_t i = 0; i < ndim; i++) {
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%zu,%s", shape[i], i + 1 < ndim ? " " : "");
        if (!kvz_mul_ok(count, shape[i], &count))
            return kvz_fail(KVZ_ERR_INVALID_ARG, "npy: the shape of %s has more than SIZE_MAX elements", path);
    }
    if (!kvz_mul_ok(count, sizeof *data, &bytes))
        return kvz_fail(KVZ_ERR_INVALID_ARG, "npy: the shape of %s has more than SIZE_MAX bytes", path);
    if (ndim > 1) /* a 1-tuple keeps its comma, longer tuples drop the trailing one */
        dims[k - 1] = '\0';
    char header[256];
    int hl = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)hl + 1;
    const size_t pad = (64 - total % 64) % 64;
    memset(header + hl, ' ', pad);
    header[hl + (int)pad] = '\n';
    hl += (int)pad + 1;
    const unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    kvz_atomic_file af;
    const kvz_status st = kvz_atomic_file_open(&af, path, "npy");
    if (st != KVZ_OK)
        return st;
    kvz_atomic_file_write(&af, pre, sizeof pre);
    kvz_atomic_file_write(&af, header, (size_t)hl);
    kvz_atomic_file_write(&af, data, bytes);
    return kvz_atomic_file_close(&af, KVZ_OK);
}

kvz_status kvz_npy_read_f32(const char *path, float **data, size_t shape[4], size_t *ndim)
{
    if (!path || !data || !shape || !ndim)
        return kvz_fail(KVZ_ERR_NULL, "npy: NULL argument");
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return kvz_fail(KVZ_ERR_IO, "npy: cannot open %s: %s", path, strerror(errno));
    unsigned char pre[10];
    char header[4096];
    kvz_status st = KVZ_OK;
    size_t hl = 0;
    if (fread(pre, 1, 10, f) != 10)
        st = kvz_fail(KVZ_ERR_TRUNCATED, "npy: %s is too short", path);
    else if (memcmp(pre, "\x93NUMPY", 6) || pre[6] != 1)
        st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s is not a version-1 .npy file", path);
    else if ((hl = (size_t)pre[8] | (size_t)pre[9] << 8) >= sizeof header)
        st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s has a header of %zu bytes", path, hl);
    else if (fread(header, 1, hl, f) != hl)
        st = kvz_fail(KVZ_ERR_TRUNCATED, "npy: %s ends inside its header", path);
    if (st == KVZ_OK) {
        header[hl] = '\0';
        const char *shp = strstr(header, "'shape': (");
        if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False") || !shp)
            st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s is not a C-order little-endian float32 array", path);
        size_t n = 0, count = 1;
        for (const char *p = shp ? shp + 10 : NULL; st == KVZ_OK && *p != ')';) {
            char *end;
            errno = 0;
            /* strtoull alone would take "-1" (or " -1") for ULLONG_MAX, so a digit must come first */
            const unsigned long long v = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : (end = (char *)p, 0);
            if (end == p || errno || v > SIZE_MAX || n == 4 || !kvz_mul_ok(count, (size_t)v, &count)) {
                st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s has a malformed or too large shape", path);
                break;
            }
            shape[n++] = (size_t)v;
            p = end;
            while (*p == ',' || *p == ' ')
                p++;
        }
        if (st == KVZ_OK && n == 0)
            st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s holds a scalar, not an array", path);
        /* the shape is checked against what the file holds before anything is allocated for it:
         * the bytes must not wrap and the file must have them (the caller may ask for a 2^62
         * element shape in a 100-byte file) */
        size_t bytes = 0;
        struct stat sb;
        const long at = st == KVZ_OK ? ftell(f) : -1;
        if (st == KVZ_OK && !kvz_mul_ok(count, sizeof(float), &bytes))
            st = kvz_fail(KVZ_ERR_FORMAT, "npy: %s has a shape of more than SIZE_MAX bytes", path);
        else if (st == KVZ_OK && (at < 0 || fstat(fileno(f), &sb) != 0))
            st = kvz_fail(KVZ_ERR_IO, "npy: cannot stat %s: %s", path, strerror(errno));
        else if (st == KVZ_OK && (sb.st_size < at || (uint64_t)(sb.st_size - at) < bytes))
            st = kvz_fail(KVZ_ERR_TRUNCATED, "npy: %s holds fewer than %zu values", path, count);
        if (st == KVZ_OK) {
            *ndim = n;
            float *d = malloc(count ? bytes : 1);
            if (!d)
                st = kvz_fail(KVZ_ERR_NOMEM, "npy: no memory for %zu values", count);
            else if (fread(d, sizeof *d, count, f) != count) {
                free(d);
                st = kvz_fail(KVZ_ERR_TRUNCATED, "npy: %s holds fewer than %zu values", path, count);
            } else {
                *data = d;
            }
        }
    }
    fclose(f);
    return st;
}

kvz_status kvz_npy_max_f32(const char *list, size_t rows, size_t cols, float **out)
{
    if (!list || !out)
        return kvz_fail(KVZ_ERR_NULL, "npy: NULL argument");
    *out = NULL;
    float *acc = malloc((rows && cols ? rows * cols : 1) * sizeof *acc);
    char *copy = strdup(list);
    kvz_status st = acc && copy ? KVZ_OK : kvz_fail(KVZ_ERR_NOMEM, "npy: no memory");
    int first = 1;
    for (char *save = NULL, *f = copy ? strtok_r(copy, ",", &save) : NULL; f && st == KVZ_OK;
         f = strtok_r(NULL, ",", &save), first = 0) {
        float *d = NULL;
        size_t shape[4], nd;
        st = kvz_npy_read_f32(f, &d, shape, &nd);
        if (st == KVZ_OK && (nd != 2 || shape[0] != rows || shape[1] != cols))
            st = kvz_fail(KVZ_ERR_MISMATCH, "npy: %s must be a [%zu, %zu] array", f, rows, cols);
        for (size_t i = 0; st == KVZ_OK && i < rows * cols; i++)
            acc[i] = first || d[i] > acc[i] ? d[i] : acc[i];
        free(d);
    }
    if (st == KVZ_OK && first)
        st = kvz_fail(KVZ_ERR_INVALID_ARG, "npy: no file named in '%s'", list);
    free(copy);
    if (st != KVZ_OK)
        free(acc);
    else
        *out = acc;
    return st;
}

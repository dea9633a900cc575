/* The struct_size rule of the public argument and result structs: any size from the first release's up. */
#include <string.h>

#include "core/internal.h"

/* The caller's struct_size: the first member of every such struct. */
static size_t size_of(const void *s)
{
    size_t n;
    memcpy(&n, s, sizeof n);
    return n;
}

kvz_status kvz_struct_in(const char *fn, const char *type, const void *given, size_t first_size, void *local,
                         size_t size)
{
    const size_t n = size_of(given);
    if (n < first_size)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: %s.struct_size is %zu, below %zu (its size in libkvz 0.1): set it to sizeof(%s)",
                        fn, type, n, first_size, type);
    /* fields of a later release that this library does not know: it cannot honour them */
    for (size_t i = size; i < n; i++)
        if (((const unsigned char *)given)[i])
            return kvz_fail(KVZ_ERR_UNSUPPORTED,
                            "%s: %s is %zu bytes with fields set past the %zu this libkvz %s knows (byte %zu)",
                            fn, type, n, size, kvz_version().string, i);
    memset(local, 0, size);
    memcpy(local, given, n < size ? n : size);
    return KVZ_OK;
}

kvz_status kvz_struct_out_check(const char *fn, const char *type, const void *given, size_t first_size)
{
    const size_t n = size_of(given);
    if (n < first_size)
        return kvz_fail(KVZ_ERR_INVALID_ARG,
                        "%s: %s.struct_size is %zu, below %zu (its size in libkvz 0.1): set it to sizeof(%s)",
                        fn, type, n, first_size, type);
    return KVZ_OK;
}

void kvz_struct_out(void *given, const void *local, size_t size)
{
    const size_t n = size_of(given);
    memcpy((char *)given + sizeof n, (const char *)local + sizeof n, (n < size ? n : size) - sizeof n);
    if (n > size) /* fields of a later release: their zero */
        memset((char *)given + size, 0, n - size);
}

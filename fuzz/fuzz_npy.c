/* libFuzzer harness for the .npy reader: an accepted array is read in full, written back and read
 * again unchanged, so that a shape the reader let through without its data shows. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "cli/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *a, *b;
    size_t shape[4], shape2[4], nd, nd2;
    if (kvz_npy_read_f32(fuzz_write("in.npy", data, size), &a, shape, &nd) != KVZ_OK)
        return 0;
    if (nd < 1 || nd > 4)
        fuzz_fail("an array of %zu dimensions was accepted", nd);
    size_t count = 1;
    for (size_t i = 0; i < nd; i++)
        count *= shape[i]; /* the reader checked the product against the file */
    const char *again = fuzz_path("again.npy");
    if (kvz_npy_write_f32(again, a, shape, nd) != KVZ_OK)
        fuzz_fail("an array that was read cannot be written: %s", kvz_last_error());
    if (kvz_npy_read_f32(again, &b, shape2, &nd2) != KVZ_OK)
        fuzz_fail("an array that was written cannot be read: %s", kvz_last_error());
    /* the comparison reads every value: ASan sees an allocation shorter than the shape */
    if (nd2 != nd || memcmp(shape, shape2, nd * sizeof *shape) || memcmp(a, b, count * sizeof *a))
        fuzz_fail("a write and a read changed the array");
    free(a), free(b);
    return 0;
}

/* One source of the selection primitive (radix histogram of score keys) for every level. */
#include "kernels.h"

static void key_histogram_impl(const float *x, size_t n, uint32_t prefix, unsigned shift, uint64_t hist[256])
{
    /* keys whose bits above shift+8 match the prefix of the bytes already chosen */
    const uint32_t hi_mask = shift + 8 >= 32 ? 0u : ~((1u << (shift + 8)) - 1u);
    const uint32_t want = prefix & hi_mask;
    uint32_t local[4][256];
    memset(local, 0, sizeof local);
    size_t i = 0;
    /* four interleaved histograms break the store-to-load dependency on repeated bytes */
    for (; i + 4 <= n; i += 4)
        for (int t = 0; t < 4; t++) {
            const uint32_t k = kvz_score_key(x[i + t]);
            if ((k & hi_mask) == want)
                local[t][(k >> shift) & 0xffu]++;
            if (t == 3 && (i & 0x3fffffu) == 0x3ffffcu) { /* flush before 32-bit overflow */
                for (int u = 0; u < 4; u++)
                    for (int b = 0; b < 256; b++) {
                        hist[b] += local[u][b];
                        local[u][b] = 0;
                    }
            }
        }
    for (; i < n; i++) {
        const uint32_t k = kvz_score_key(x[i]);
        if ((k & hi_mask) == want)
            local[0][(k >> shift) & 0xffu]++;
    }
    for (int u = 0; u < 4; u++)
        for (int b = 0; b < 256; b++)
            hist[b] += local[u][b];
}

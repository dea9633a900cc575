/* A program outside the build tree: compiled against the installed kvz.h and `pkg-config kvz`. */
#include <kvz.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    kvz_version_info v = kvz_version();
    if (v.major != KVZ_VERSION_MAJOR || v.minor != KVZ_VERSION_MINOR) {
        fprintf(stderr, "header %d.%d, library %s\n", KVZ_VERSION_MAJOR, KVZ_VERSION_MINOR, v.string);
        return 1;
    }
    /* One decode step over a two-row head: the output is the softmax-weighted V. */
    const float q[2] = {1.0f, 0.0f};
    const float k[4] = {1.0f, 0.0f, 0.0f, 0.0f}, vv[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const int32_t cu[2] = {0, 2};
    float out[2] = {0, 0};
    kvz_varlen_args a;
    memset(&a, 0, sizeof a);
    a.struct_size = sizeof a;
    a.n_kv_heads = 1, a.group = 1, a.head_dim = 2, a.q_len = 1, a.scale = 1.0f;
    a.q = q, a.k = k, a.v = vv, a.kv_dtype = KVZ_DTYPE_F32, a.kv_row_stride = 2, a.cu_len = cu, a.out = out;
    kvz_status st = kvz_attn_decode_varlen(&a);
    if (st != KVZ_OK) {
        fprintf(stderr, "decode: %s (%s)\n", kvz_strerror(st), kvz_last_error());
        return 1;
    }
    const double w = exp(1.0) / (exp(1.0) + 1.0);
    if (fabs(out[0] - (w * 1 + (1 - w) * 3)) > 1e-5 || fabs(out[1] - (w * 2 + (1 - w) * 4)) > 1e-5) {
        fprintf(stderr, "decode gave %g %g\n", out[0], out[1]);
        return 1;
    }
    if (kvz_attn_decode_varlen(NULL) != KVZ_ERR_NULL)
        return 1;
    printf("consumer: libkvz %s, isa %s: ok\n", v.string, kvz_isa_name(kvz_isa_active()));
    return 0;
}

/* kvzip-head's head scores: read from files, or calibrated once per model and kept under its
 * fingerprint (spec/kvzip.md §2.5). */
#include "cli/head_calib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/npy.h"

/* FNV-1a over the bytes of n ids, continuing from h. */
static uint64_t fnv_ids(uint64_t h, const int32_t *ids, size_t n)
{
    const unsigned char *b = (const unsigned char *)ids;
    for (size_t i = 0; i < n * sizeof *ids; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* mkdir -p of the directory part of path; 0 or -1 with errno. */
static int make_dirs(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        const int r = mkdir(path, 0755);
        *s = '/';
        if (r && errno != EEXIST)
            return -1;
    }
    return 0;
}

static void heads_path(const uint8_t fingerprint[32], uint64_t hash, char *buf, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char fp[65];
    for (int i = 0; i < 32; i++)
        snprintf(fp + 2 * i, 3, "%02x", fingerprint[i]);
    if (xdg && *xdg)
        snprintf(buf, size, "%s/kvz/heads/%s-%016llx.npy", xdg, fp, (unsigned long long)hash);
    else
        snprintf(buf, size, "%s/.cache/kvz/heads/%s-%016llx.npy", home ? home : ".", fp, (unsigned long long)hash);
}

void kvz_cli_head_scores(const float *scores, size_t n_rows, size_t n, float *out)
{
    for (size_t r = 0; r < n_rows; r++) {
        out[r] = scores[r * n];
        for (size_t j = 1; j < n; j++)
            out[r] = scores[r * n + j] > out[r] ? scores[r * n + j] : out[r];
    }
}

int kvz_cli_calibrate_heads(kvz_lm *lm, const kvz_lm_compress_opts *o, const char *calib_path,
                            size_t max_tokens, float **out, char *path_out, size_t path_size)
{
    kvz_lm_info mi = {.struct_size = sizeof mi};
    kvz_lm_get_info(lm, &mi);
    const kvz_lm_pieces *pc = o->pieces;
    const size_t L = mi.n_layers, H = mi.n_kv_heads, n_sys = pc->n[KVZ_PIECE_SYSTEM];
    char *text = NULL, path[4096];
    size_t len = 0, n_c = 0;
    int32_t *ctx = NULL;
    if (kvz_cli_read_file(calib_path, &text, &len))
        return kvz_cli_error("kvzip-head calibrates its head scores on %s (run from the checkout's root, or "
                             "give --calibration FILE or --head-scores F.npy)",
                             calib_path);
    int rc = kvz_cli_lm_tokenize(lm, text, 0, &ctx, &n_c);
    free(text);
    const size_t room = mi.n_ctx_train > n_sys + 64 ? mi.n_ctx_train - n_sys - 64 : n_c;
    if (n_c > max_tokens)
        n_c = max_tokens;
    if (mi.n_ctx_train && n_c > room)
        n_c = room;
    if (!rc && n_c < 64)
        rc = kvz_cli_error("%s: a calibration text needs at least 64 tokens", calib_path);
    /* the file names what the scores depend on: the model, the ids, the prompts, the chunking */
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv_ids(h, ctx, rc ? 0 : n_c);
    for (int k = 0; k < 4; k++)
        h = fnv_ids(h, pc->ids[k], pc->n[k]);
    const kvz_dtype kv = o->kv == KVZ_KV_AUTO   ? mi.kv_dtype
                         : o->kv == KVZ_KV_F32  ? KVZ_DTYPE_F32
                         : o->kv == KVZ_KV_BF16 ? KVZ_DTYPE_BF16
                                                : KVZ_DTYPE_F16;
    const int32_t knobs[3] = {(int32_t)(o->chunk ? o->chunk : KVZ_KVZIP_CHUNK),
                              (int32_t)(pc->prev_tokens ? pc->prev_tokens : 8), (int32_t)kv};
    h = fnv_ids(h, knobs, 3);
    heads_path(mi.model_fingerprint, h, path, sizeof path);
    if (path_out)
        snprintf(path_out, path_size, "%s", path);
    float *hs = NULL;
    FILE *probe = rc ? NULL : fopen(path, "rb");
    if (probe) { /* calibrated before */
        fclose(probe);
        const kvz_status st = kvz_npy_max_f32(path, L, H, &hs);
        if (st != KVZ_OK)
            rc = kvz_cli_error("%s (%s)", kvz_last_error(), kvz_strerror(st));
    } else if (!rc) {
        kvz_cache *c = NULL;
        float *scores = malloc(L * H * n_c * sizeof *scores);
        hs = malloc(L * H * sizeof *hs);
        kvz_status st = scores && hs ? KVZ_OK : KVZ_ERR_NOMEM;
        if (st == KVZ_OK)
            st = kvz_lm_score_ids(lm, ctx, n_c, KVZ_SCORES_KVZIP, o, &c, scores, NULL);
        kvz_cache_destroy(c);
        if (st != KVZ_OK)
            rc = kvz_cli_error("head calibration on %s: %s (%s)", calib_path, kvz_last_error(), kvz_strerror(st));
        if (!rc) {
            kvz_cli_head_scores(scores, L * H, n_c, hs);
            const size_t shape[2] = {L, H};
            const int dir_ok = make_dirs(path) == 0;
            const char *why = dir_ok ? NULL : strerror(errno);
            if (!dir_ok || kvz_npy_write_f32(path, hs, shape, 2) != KVZ_OK)
                fprintf(stderr, "kvz: note: cannot keep the head scores in %s (%s); they are used anyway\n", path,
                        why ? why : kvz_last_error());
        }
        free(scores);
    }
    free(ctx);
    if (rc) {
        free(hs);
        return 1;
    }
    *out = hs;
    return 0;
}

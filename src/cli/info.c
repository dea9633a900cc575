/* kvz info: what library this is and what it runs on, with --model what a GGUF model is, and with
 * --cache what a saved .kvz cache holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_lm.h"
#include "cli/json.h"

/* The architecture, shape, tensor types and parameter count of a model file. */
static int model_info(const char *path, const char *weights, int json)
{
    kvz_lm *lm = NULL;
    if (kvz_cli_open_lm(path, weights ? weights : "auto", 0, 0, &lm))
        return 1;
    kvz_lm_info i = {.struct_size = sizeof i};
    kvz_lm_get_info(lm, &i);
    char types[256] = "";
    const char *name;
    size_t count, n_types = 0;
    for (size_t t = 0; kvz_lm_tensor_type(lm, t, &name, &count, &n_types) == KVZ_OK; t++) {
        const size_t n = strlen(types);
        snprintf(types + n, sizeof types - n, json ? "%s\"%s\":%zu" : "%s%s %zu", n ? (json ? "," : ", ") : "",
                 name, count);
    }
    const char *wt = kvz_cli_dtype_name(i.weights);
    if (json)
        printf("{\"model\":\"%s\",\"architecture\":\"%s\",\"layers\":%zu,\"local_layers\":%zu,\"window\":%zu,"
               "\"embedding\":%zu,\"ffn\":%zu,\"heads\":%zu,\"kv_heads\":%zu,\"head_dim\":%zu,\"vocab\":%zu,"
               "\"context\":%zu,\"parameters\":%zu,\"tensor_types\":{%s},\"weights\":\"%s\","
               "\"weights_as_stored\":%s,\"weight_bytes\":%zu}\n",
               path, i.arch, i.n_layers, i.n_window_layers, i.window, i.n_embd, i.n_ff, i.n_heads, i.n_kv_heads,
               i.head_dim, i.n_vocab, i.n_ctx_train, i.n_params, types, wt,
               i.weights_as_stored ? "true" : "false", i.weight_bytes);
    else {
        printf("model:         %s\narchitecture:  %s\nlayers:        %zu", path, i.arch, i.n_layers);
        if (i.n_window_layers)
            printf(" (%zu local with a window of %zu tokens, %zu global)", i.n_window_layers, i.window,
                   i.n_layers - i.n_window_layers);
        printf("\nembedding:     %zu, feed-forward %zu\nheads:         %zu query, %zu KV, head size %zu\n"
               "vocabulary:    %zu\ncontext:       %zu (trained)\nparameters:    %.1f M\ntensor types:  %s "
               "(tensors of each type)\n"
               "weights:       %s, %.1f MB of matrices in memory\n",
               i.n_embd, i.n_ff, i.n_heads, i.n_kv_heads, i.head_dim, i.n_vocab, i.n_ctx_train,
               (double)i.n_params / 1e6, types, kvz_cli_weights_name(&i), (double)i.weight_bytes / 1e6);
    }
    kvz_lm_close(lm);
    return 0;
}

/* The format version in a .kvz header (doc/kvz-format.md: bytes 8..11, little-endian), or 0 when
 * it cannot be read: the library validates the file but does not hand out its version. */
static unsigned kvz_file_version(const char *path)
{
    unsigned char h[12];
    FILE *f = fopen(path, "rb");
    const int ok = f && fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, "KVZCACHE", 8);
    if (f)
        fclose(f);
    return ok ? (unsigned)h[8] | (unsigned)h[9] << 8 | (unsigned)h[10] << 16 | (unsigned)h[11] << 24 : 0;
}

/* The fewest digits that read back as v: 0.3, not 0.29999999999999999. */
static void shortest_double(char *buf, size_t size, double v)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* JSON array of n numbers, v[i*stride] each. */
static void json_sizes(const char *key, const size_t *v, size_t n, size_t stride)
{
    printf(",\"%s\":[", key);
    for (size_t i = 0; i < n; i++)
        printf("%s%zu", i ? "," : "", v[i * stride]);
    printf("]");
}

/* Where a saved cache came from (its metadata), its shape, storage and windows, its bytes, and the
 * rows (kept tokens) of every (layer, KV head), read through the public API as any host would. */
static int cache_info(const char *path, int json)
{
    kvz_cache *c = NULL;
    kvz_cache_meta meta = {.struct_size = sizeof meta};
    const kvz_status st = kvz_cache_load(path, NULL, &c, &meta);
    if (st != KVZ_OK)
        return kvz_cli_error("cannot read %s: %s (%s)", path, kvz_last_error(), kvz_strerror(st));
    struct stat sb;
    const long long file_bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    size_t L = 0, H = 0, d = 0;
    kvz_dtype dt = KVZ_DTYPE_F32;
    kvz_cache_shape(c, &L, &H, &d, &dt);
    kvz_cache_stats cs = {.struct_size = sizeof cs};
    kvz_cache_get_stats(c, &cs);
    /* per layer: window, next position, rows; per (layer, head): rows */
    size_t *window = calloc(L, sizeof *window), *layer_rows = calloc(L, sizeof *layer_rows);
    size_t *rows = calloc(L * H, sizeof *rows);
    size_t *next = calloc(L, sizeof *next);
    if (!window || !layer_rows || !rows || !next) {
        free(window), free(layer_rows), free(rows), free(next);
        kvz_cache_destroy(c);
        return kvz_cli_error("out of memory");
    }
    size_t n_windowed = 0;
    for (size_t l = 0; l < L; l++) {
        int64_t pos = 0;
        kvz_cache_layer_window(c, l, &window[l]);
        kvz_cache_next_position(c, l, &pos);
        next[l] = (size_t)pos;
        n_windowed += window[l] != 0;
        for (size_t h = 0; h < H; h++) {
            kvz_cache_length(c, l, h, &rows[l * H + h]);
            layer_rows[l] += rows[l * H + h];
        }
    }
    const unsigned version = kvz_file_version(path);
    char fp[65];
    int fp_zero = 1;
    for (int i = 0; i < 32; i++) {
        snprintf(fp + 2 * i, 3, "%02x", meta.model_fingerprint[i]);
        fp_zero &= !meta.model_fingerprint[i];
    }
    if (json) {
        printf("{\"cache\":");
        kvz_json_write_string(stdout, path);
        printf(version ? ",\"format_version\":%u" : ",\"format_version\":null", version);
        printf(",\"model_fingerprint\":\"%s\",\"policy\":", fp);
        kvz_json_write_string(stdout, meta.policy);
        char ratio[32];
        shortest_double(ratio, sizeof ratio, meta.ratio);
        printf(",\"ratio\":%s,\"dtype\":\"%s\",\"layers\":%zu,\"kv_heads\":%zu,\"head_dim\":%zu,"
               "\"file_bytes\":%lld,\"kv_bytes\":%zu,\"kv_bytes_reserved\":%zu,\"rows\":%zu,\"full_rows\":%zu,"
               "\"kept_ratio\":%.6f",
               ratio, kvz_cli_dtype_name(dt), L, H, d, file_bytes, cs.bytes_used, cs.bytes_reserved, cs.rows,
               cs.full_rows, cs.kept_ratio);
        json_sizes("windows", window, L, 1);
        json_sizes("next_positions", next, L, 1);
        json_sizes("rows_per_layer", layer_rows, L, 1);
        printf(",\"rows_per_head\":[");
        for (size_t l = 0; l < L; l++) {
            printf("%s[", l ? "," : "");
            for (size_t h = 0; h < H; h++)
                printf("%s%zu", h ? "," : "", rows[l * H + h]);
            printf("]");
        }
        printf("]}\n");
    } else {
        printf("cache:         %s\n", path);
        if (version)
            printf("format:        .kvz version %u\n", version);
        printf("model:         fingerprint %s\n", fp_zero ? "none (all zero)" : fp);
        if (!strcmp(meta.policy, "full")) /* a full cache's stored ratio means nothing */
            printf("policy:        full (every key/value pair kept)\n");
        else
            printf("policy:        %s, requested kept ratio %g\n", meta.policy[0] ? meta.policy : "(none)",
                   meta.ratio);
        printf("storage:       %s keys and values\nshape:         %zu layers, %zu KV head%s, head size %zu\n",
               kvz_cli_dtype_name(dt), L, H, H == 1 ? "" : "s", d);
        if (n_windowed)
            printf("windows:       %zu sliding-window layers, %zu global\n", n_windowed, L - n_windowed);
        else
            printf("windows:       none (every layer global)\n");
        printf("bytes:         %lld in the file, %zu of keys, values and positions in memory\n", file_bytes,
               cs.bytes_used);
        /* the uncompressed count includes the system prompt, which every policy keeps */
        printf("rows:          %zu of the %zu an uncompressed cache would hold (%.4f)\n\n", cs.rows,
               cs.full_rows, cs.kept_ratio);
        printf("layer  window  next position    rows  rows of each KV head (kept tokens)\n");
        for (size_t l = 0; l < L; l++) {
            char w[32] = "-"; /* a global layer */
            if (window[l])
                snprintf(w, sizeof w, "%zu", window[l]);
            printf("%5zu  %6s  %13zu  %6zu ", l, w, next[l], layer_rows[l]);
            for (size_t h = 0; h < H; h++)
                printf(" %zu", rows[l * H + h]);
            printf("\n");
        }
    }
    free(window), free(layer_rows), free(rows), free(next);
    kvz_cache_destroy(c);
    return 0;
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: kvz info [--json]\n"
            "       kvz info --model M [--weights auto|f32|bf16] [--json]\n"
            "       kvz info --cache F.kvz [--json]\n"
            "  alone: the library's version, the kernel level (ISA) in use and those this CPU runs,\n"
            "  the read plan of the bf16 decode kernel (KVZ_READ_PLAN), threads and NUMA nodes\n"
            "  --model M      the model's architecture, shape, tensor types and size\n"
            "  --cache F.kvz  a cache saved by kvz compress: its model fingerprint, policy and requested\n"
            "                 ratio, storage type, format version, shape, sliding windows, bytes, and the\n"
            "                 rows (kept tokens) and next position of every layer, with each KV head's rows\n"
            "  --json         one JSON object (with --cache: rows_per_head, an array per layer)\n");
    return f == stdout ? 0 : 2;
}

int kvz_cmd_info(int argc, char **argv)
{
    int json = 0;
    const char *model = NULL, *weights = NULL, *cache = NULL;
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
            cache = argv[++i];
        else {
            fprintf(stderr, "kvz info: %s '%s'\n",
                    strcmp(argv[i], "--model") && strcmp(argv[i], "--weights") && strcmp(argv[i], "--cache")
                        ? "unknown option"
                        : "no value after",
                    argv[i]);
            return usage(stderr);
        }
    }
    if (model && cache)
        return kvz_cli_usage_error("info", "--model and --cache describe one thing at a time");
    if (cache)
        return cache_info(cache, json);
    if (model)
        return model_info(model, weights, json);
    char avail[64];
    kvz_cli_isa_available(avail, sizeof avail, json);
    const kvz_version_info v = kvz_version();
    if (json)
        printf(
            "{\"version\":\"%s\",\"isa\":\"%s\",\"isa_available\":[%s],\"avx512_bf16\":%s,\"read_plan\":\"%s\","
            "\"threads\":%d,\"numa_nodes\":%d}\n",
            v.string, kvz_isa_name(kvz_isa_active()), avail, kvz_cpu_has_avx512_bf16() ? "true" : "false",
            kvz_read_plan_name(kvz_read_plan_active()), kvz_num_threads(), kvz_numa_nodes());
    else
        printf("libkvz %s\nisa:           %s\nisa available: %s\navx512_bf16:   %s\nread plan:     %s\n"
               "threads:       %d\nnuma nodes:    %d\n",
               v.string, kvz_isa_name(kvz_isa_active()), avail, kvz_cpu_has_avx512_bf16() ? "yes" : "no",
               kvz_read_plan_name(kvz_read_plan_active()), kvz_num_threads(), kvz_numa_nodes());
    return 0;
}

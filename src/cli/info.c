/* kvz info: what library this is and what it runs on, and with --model what a GGUF model is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_model.h"
#include "kvz.h"

void kvz_cli_isa_available(char *buf, size_t size, int json)
{
    static const kvz_isa isas[] = {KVZ_ISA_GENERIC,     KVZ_ISA_AVX2, KVZ_ISA_AVX512,
                                   KVZ_ISA_AVX512_BF16, KVZ_ISA_AMX,  KVZ_ISA_NEON};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (kvz_isa_supported(isas[i])) {
            const size_t n = strlen(buf);
            snprintf(buf + n, size - n, json ? "%s\"%s\"" : "%s%s", n ? (json ? "," : " ") : "",
                     kvz_isa_name(isas[i]));
        }
}

/* The architecture, shape, tensor types and parameter count of a model file. */
static int model_info(const char *path, const char *weights, int json)
{
    kvz_model *m;
    if (kvz_cli_open_model(path, weights, &m, NULL))
        return 1;
    const kvz_hparams *hp = &m->hp;
    size_t local = 0, per_type[64] = {0};
    for (size_t l = 0; l < hp->n_layers; l++)
        local += kvz_hparams_window(hp, l) != 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const kvz_gguf_tensor *t = &m->gguf->tensors[i];
        per_type[t->type < 64 ? t->type : 63]++;
    }
    char types[256] = "";
    for (uint32_t ty = 0; ty < 64; ty++)
        if (per_type[ty]) {
            const size_t n = strlen(types);
            snprintf(types + n, sizeof types - n, json ? "%s\"%s\":%zu" : "%s%s %zu",
                     n ? (json ? "," : ", ") : "", kvz_ggml_type_of(ty)->name, per_type[ty]);
        }
    const char *wt = m->layers[0].q.wtype == KVZ_DTYPE_BF16 ? "bf16" : "f32";
    if (json)
        printf("{\"model\":\"%s\",\"architecture\":\"%s\",\"layers\":%zu,\"local_layers\":%zu,\"window\":%zu,"
               "\"embedding\":%zu,\"ffn\":%zu,\"heads\":%zu,\"kv_heads\":%zu,\"head_dim\":%zu,\"vocab\":%zu,"
               "\"context\":%zu,\"parameters\":%zu,\"tensor_types\":{%s},\"weights\":\"%s\"}\n",
               path, hp->arch, hp->n_layers, local, hp->swa_window, hp->n_embd, hp->n_ff, hp->n_head,
               hp->n_head_kv, hp->head_dim, hp->n_vocab, hp->n_ctx_train, kvz_cli_model_params(m), types, wt);
    else {
        printf("model:         %s\narchitecture:  %s\nlayers:        %zu", path, hp->arch, hp->n_layers);
        if (local)
            printf(" (%zu local with a window of %zu tokens, %zu global)", local, hp->swa_window,
                   hp->n_layers - local);
        printf("\nembedding:     %zu, feed-forward %zu\nheads:         %zu query, %zu KV, head size %zu\n"
               "vocabulary:    %zu\ncontext:       %zu (trained)\nparameters:    %.1f M\ntensor types:  %s "
               "(tensors of each type)\n"
               "weights:       %s in memory\n",
               hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_vocab, hp->n_ctx_train,
               (double)kvz_cli_model_params(m) / 1e6, types, wt);
    }
    kvz_model_free(m);
    return 0;
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: kvz info [--json]\n"
            "       kvz info --model M [--weights auto|f32|bf16] [--json]\n"
            "  without --model: the library's version, the kernel level (ISA) in use and those this CPU runs,\n"
            "  threads and NUMA nodes; with it: the model's architecture, shape, tensor types and size\n");
    return f == stdout ? 0 : 2;
}

int kvz_cmd_info(int argc, char **argv)
{
    int json = 0;
    const char *model = NULL, *weights = NULL;
    if (kvz_cli_wants_help(argc, argv))
        return usage(stdout);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else {
            fprintf(stderr, "kvz info: %s '%s'\n",
                    strcmp(argv[i], "--model") && strcmp(argv[i], "--weights") ? "unknown option"
                                                                               : "no value after",
                    argv[i]);
            return usage(stderr);
        }
    }
    if (model)
        return model_info(model, weights, json);
    char avail[64];
    kvz_cli_isa_available(avail, sizeof avail, json);
    const kvz_version_info v = kvz_version();
    if (json)
        printf("{\"version\":\"%s\",\"isa\":\"%s\",\"isa_available\":[%s],\"avx512_bf16\":%s,\"threads\":%d,"
               "\"numa_nodes\":%d}\n",
               v.string, kvz_isa_name(kvz_isa_active()), avail, kvz_cpu_has_avx512_bf16() ? "true" : "false",
               kvz_num_threads(), kvz_numa_nodes());
    else
        printf("libkvz %s\nisa:           %s\nisa available: %s\navx512_bf16:   %s\nthreads:       %d\n"
               "numa nodes:    %d\n",
               v.string, kvz_isa_name(kvz_isa_active()), avail, kvz_cpu_has_avx512_bf16() ? "yes" : "no",
               kvz_num_threads(), kvz_numa_nodes());
    return 0;
}

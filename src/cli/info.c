/* kvz info: what library this is and what it runs on. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
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

int kvz_cmd_info(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "kvz info: unknown option '%s'\nusage: kvz info [--json]\n", argv[i]);
            return 2;
        }
    }
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

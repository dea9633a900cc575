/* Option values, id lists and files of the kvz commands, their messages and --threads, and how they report
 * speed: with kvz.h alone (kvz and kvz-bench both). */
#include "cli/cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int kvz_cli_parse_ids(const char *s, const char *what, int32_t **ids, size_t *n)
{
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v)
        return kvz_cli_error("out of memory");
    const char *p = s;
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        const long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return kvz_cli_error("%s: '%.20s' is not a token id", what, p);
        }
        if (k == cap) {
            int32_t *w = realloc(v, 2 * cap * sizeof *v);
            if (!w) {
                free(v);
                return kvz_cli_error("out of memory");
            }
            v = w, cap *= 2;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v, *n = k;
    return 0;
}

int kvz_cli_read_file(const char *path, char **text, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kvz_cli_error("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, k = 0;
    char *b = malloc(cap + 1);
    for (size_t got; b && (got = fread(b + k, 1, cap - k, f)) > 0;) {
        k += got;
        if (k == cap) {
            char *w = realloc(b, 2 * cap + 1);
            if (!w)
                free(b);
            b = w, cap *= 2;
        }
    }
    const int err = ferror(f);
    fclose(f);
    if (!b || err) {
        free(b);
        return kvz_cli_error("cannot read %s", path);
    }
    b[k] = '\0';
    *text = b, *n = k;
    return 0;
}

int kvz_cli_parse_size(const char *s, const char *what, size_t *v)
{
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(s, &end, 10);
    if (end == s || *end || errno || *s == '-')
        return kvz_cli_error("%s must be a non-negative integer, not '%s'", what, s);
    *v = (size_t)x;
    return 0;
}

int kvz_cli_parse_count(const char *s, const char *what, size_t *v)
{
    size_t x;
    if (kvz_cli_parse_size(s, what, &x))
        return 1;
    if (!x)
        return kvz_cli_error("%s must be at least 1", what);
    *v = x;
    return 0;
}

int kvz_cli_parse_double(const char *s, const char *what, double *v)
{
    char *end;
    errno = 0;
    const double x = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(x))
        return kvz_cli_error("%s must be a number, not '%s'", what, s);
    *v = x;
    return 0;
}

int kvz_cli_parse_ratio(const char *s, const char *what, double *v)
{
    char *end;
    errno = 0;
    const double x = strtod(s, &end);
    /* a percentage such as 30 would keep everything: say what the scale is */
    if (end == s || *end || errno || !(x > 0 && x <= 1))
        return kvz_cli_error("%s must be in (0, 1], e.g. 0.3 for 30 %%, not '%s'", what, s);
    *v = x;
    return 0;
}

int kvz_cli_parse_dtype(const char *s, kvz_dtype *dt)
{
    if (!strcmp(s, "f32"))
        *dt = KVZ_DTYPE_F32;
    else if (!strcmp(s, "bf16"))
        *dt = KVZ_DTYPE_BF16;
    else if (!strcmp(s, "f16"))
        *dt = KVZ_DTYPE_F16;
    else if (!strcmp(s, "auto"))
        *dt = KVZ_CLI_KV_DTYPE_AUTO;
    else
        return kvz_cli_error("--kv-dtype must be auto, f32, bf16 or f16, not '%s'", s);
    return 0;
}

const char *kvz_cli_dtype_name(kvz_dtype dt)
{
    switch (dt) {
    case KVZ_DTYPE_F32: return "f32";
    case KVZ_DTYPE_BF16: return "bf16";
    case KVZ_DTYPE_F16: return "f16";
    default: return dt == KVZ_CLI_KV_DTYPE_AUTO ? "auto" : "unknown";
    }
}

int kvz_cli_parse_policy(const char *s, kvz_policy *p)
{
    if (!strcmp(s, "kvzip")) /* the names people use */
        s = "kvzip-pair";
    else if (!strcmp(s, "streamingllm"))
        s = "streaming";
    for (int i = 0; i <= KVZ_POLICY_RANDOM; i++)
        if (!strcmp(s, kvz_policy_name((kvz_policy)i))) {
            *p = (kvz_policy)i;
            return 0;
        }
    fprintf(stderr, "kvz: unknown policy '%s'; one of:", s);
    for (int i = 0; i <= KVZ_POLICY_RANDOM; i++)
        fprintf(stderr, " %s", kvz_policy_name((kvz_policy)i));
    fputc('\n', stderr);
    return 1;
}

void kvz_cli_print_speed(const char *cmd, size_t n_prefill, double prefill_s, size_t n_out, double decode_s)
{
    const size_t steps = n_out ? n_out - 1 : 0;
    fprintf(stderr, "kvz %s: prefill %zu token%s in %.3f s (%.1f tokens/s)", cmd, n_prefill,
            n_prefill == 1 ? "" : "s", prefill_s, prefill_s > 0 ? (double)n_prefill / prefill_s : 0.0);
    if (steps)
        fprintf(stderr, ", decode %zu token%s in %.3f s (%.1f tokens/s)\n", steps, steps == 1 ? "" : "s",
                decode_s, decode_s > 0 ? (double)steps / decode_s : 0.0);
    else
        fprintf(stderr, ", no decode step (%zu token%s generated from the prefill's logits)\n", n_out,
                n_out == 1 ? "" : "s");
}

int kvz_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

const char *kvz_cli_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int kvz_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvz %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (kvz %s --help lists the options)\n", cmd);
    va_end(ap);
    return 2;
}

int kvz_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

/* Takes `--threads N` (or `--threads=N`) out of argv, wherever it stands, and sets the
 * library's thread count. Returns 0, or 2 after a message when N is not a count. */
int kvz_cli_take_threads(int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        int used = 0;
        if (!strcmp(argv[i], "--threads"))
            v = i + 1 < *argc ? argv[i + 1] : "", used = 2;
        else if (!strncmp(argv[i], "--threads=", 10))
            v = argv[i] + 10, used = 1;
        if (!used)
            continue;
        char *end;
        const long n = strtol(v, &end, 10);
        if (!*v || *end || n < 1 || n > 1024 || kvz_set_num_threads((int)n) != KVZ_OK) {
            kvz_cli_error("--threads takes a whole number of threads from 1 to 1024 (got '%s')", v);
            return 2;
        }
        memmove(&argv[i], &argv[i + used], (size_t)(*argc - i - used + 1) * sizeof *argv);
        *argc -= used;
        i--;
    }
    return 0;
}

void kvz_cli_isa_available(char *buf, size_t size, int json)
{
    buf[0] = '\0';
    /* kvz_isa's values rise with the preference among the levels one CPU family runs; unknown ends them */
    for (int i = 0; strcmp(kvz_isa_name((kvz_isa)i), "unknown"); i++)
        if (kvz_isa_supported((kvz_isa)i)) {
            const size_t n = strlen(buf);
            snprintf(buf + n, size - n, json ? "%s\"%s\"" : "%s%s", n ? (json ? "," : " ") : "",
                     kvz_isa_name((kvz_isa)i));
        }
}

/* Runs a harness without libFuzzer over the files of its directories (FUZZ_DIRS, colon-separated): its
 * seed corpus and the inputs that once crashed it, as a regression test of make check in any build. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0) {
        const long size = ftell(f);
        if (size >= 0 && (b = malloc((size_t)size + 1)) != NULL) {
            rewind(f);
            *n = fread(b, 1, (size_t)size, f);
            if (*n != (size_t)size)
                free(b), b = NULL;
        }
    }
    if (f)
        fclose(f);
    return b;
}

/* Replays every regular file of dir in name order (so that a failure is reproducible); -1 when one
 * cannot be read. */
static long replay_dir(const char *dir)
{
    struct dirent **ents;
    const int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return 0; /* a harness without regression inputs has no directory under tests/data/fuzz */
    long done = 0;
    for (int i = 0; i < n; i++) {
        char path[2048];
        size_t size;
        if (ents[i]->d_name[0] != '.' && done >= 0) {
            snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
            unsigned char *b = slurp(path, &size);
            if (!b) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                done = -1;
            } else {
                printf("replay: %s\n", path);
                fflush(stdout);
                LLVMFuzzerTestOneInput(b, size);
                free(b);
                done++;
            }
        }
        free(ents[i]);
    }
    free(ents);
    return done;
}

int main(void)
{
    char dirs[] = FUZZ_DIRS;
    long total = 0;
    for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        const long k = replay_dir(d);
        if (k < 0)
            return 1;
        total += k;
    }
    printf("replay: %ld inputs\n", total);
    return total ? 0 : 1; /* the seed corpus is always there: nothing replayed is a broken setup */
}

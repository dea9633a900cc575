/* The harnesses' scratch files and failure report (fuzz_util.h). */
#define _GNU_SOURCE /* mkdtemp */
#include "fuzz_util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAMES 8

static char dir[512];
static const char *names[MAX_NAMES]; /* the files made, removed with the directory at exit */
static size_t n_names;

static void remove_scratch(void)
{
    char p[600];
    for (size_t i = 0; i < n_names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

const char *fuzz_path(const char *name)
{
    static char path[600];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/kvz-fuzz-XXXXXX", tmp);
        if (!mkdtemp(dir))
            fuzz_fail("cannot make a scratch directory in %s", tmp);
        atexit(remove_scratch);
    }
    size_t i = 0;
    while (i < n_names && strcmp(names[i], name) != 0)
        i++;
    if (i == n_names) {
        if (n_names == MAX_NAMES)
            fuzz_fail("more than %d scratch file names", MAX_NAMES);
        names[n_names++] = name;
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < size) {
        const ssize_t k = write(fd, data + done, size - done);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    if (fd < 0 || close(fd) != 0 || done != size)
        fuzz_fail("cannot write %s", path);
    return path;
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

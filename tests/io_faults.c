/*
 * The wrappers behind tests/io_faults.h. A test linked with -Wl,--wrap=NAME for each function
 * below has every reference to NAME in its own objects and in the library's objects (linked
 * statically from the convenience libraries) bound to __wrap_NAME here, which counts, fails
 * when armed, or calls __real_NAME (the C library's). Calls made inside shared libraries,
 * glibc's own included, are not wrapped: the faults hit our code only.
 */
#define _GNU_SOURCE /* O_DIRECTORY */
#include "io_faults.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

int __real_open(const char *path, int flags, ...);
int __real_mkstemp(char *templ);
FILE *__real_fdopen(int fd, const char *mode);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fflush(FILE *f);
int __real_fsync(int fd);
int __real_fclose(FILE *f);
int __real_rename(const char *from, const char *to);

int __wrap_open(const char *path, int flags, ...);
int __wrap_mkstemp(char *templ);
FILE *__wrap_fdopen(int fd, const char *mode);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __wrap_fflush(FILE *f);
int __wrap_fsync(int fd);
int __wrap_fclose(FILE *f);
int __wrap_rename(const char *from, const char *to);

/* The functions whose calls are counted; the two fwrite kinds share FN_FWRITE. */
enum { FN_OPEN, FN_MKSTEMP, FN_FDOPEN, FN_FWRITE, FN_FFLUSH, FN_FSYNC, FN_FCLOSE, FN_RENAME, FNS };

static const struct {
    const char *name;
    int fn, err;
} kinds[IOF_KINDS] = {
    [IOF_OPEN] = {"open", FN_OPEN, EACCES},
    [IOF_MKSTEMP] = {"mkstemp", FN_MKSTEMP, EACCES},
    [IOF_FDOPEN] = {"fdopen", FN_FDOPEN, EMFILE},
    [IOF_FWRITE_SHORT] = {"fwrite (short)", FN_FWRITE, EIO},
    [IOF_FWRITE_ENOSPC] = {"fwrite (ENOSPC)", FN_FWRITE, ENOSPC},
    [IOF_FFLUSH] = {"fflush", FN_FFLUSH, ENOSPC},
    [IOF_FSYNC] = {"fsync", FN_FSYNC, EIO},
    [IOF_FCLOSE] = {"fclose", FN_FCLOSE, EDQUOT},
    [IOF_RENAME] = {"rename", FN_RENAME, EXDEV},
};

/* The tests are single-threaded while armed: plain variables suffice. */
static int active, fired, fired_after_rename, fired_on_directory, renamed;
static iof_kind armed_kind;
static unsigned armed_nth, calls[FNS];

const char *iof_name(iof_kind kind) { return kinds[kind].name; }
int iof_errno(iof_kind kind) { return kinds[kind].err; }

void iof_arm(iof_kind kind, unsigned nth)
{
    for (int i = 0; i < FNS; i++)
        calls[i] = 0;
    armed_kind = kind, armed_nth = nth;
    fired = fired_after_rename = fired_on_directory = renamed = 0;
    active = 1;
}

void iof_disarm(void) { active = 0; }
unsigned iof_calls(iof_kind kind) { return calls[kinds[kind].fn]; }
int iof_fired(void) { return fired; }
int iof_fired_after_rename(void) { return fired_after_rename; }
int iof_fired_on_directory(void) { return fired_on_directory; }

/* Counts a call of fn; non-zero when it must fail as `kind` (one of fn's kinds). */
static int must_fail(int fn, iof_kind *kind)
{
    if (!active)
        return 0;
    calls[fn]++;
    if (!armed_nth || kinds[armed_kind].fn != fn || calls[fn] != armed_nth)
        return 0;
    fired = 1, fired_after_rename = renamed;
    *kind = armed_kind;
    return 1;
}

int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int); /* mode_t is promoted through the ... */
        va_end(ap);
    }
    iof_kind k;
    if (must_fail(FN_OPEN, &k)) {
        fired_on_directory = (flags & O_DIRECTORY) != 0;
        errno = kinds[k].err;
        return -1;
    }
    return __real_open(path, flags, mode);
}

int __wrap_mkstemp(char *templ)
{
    iof_kind k;
    if (must_fail(FN_MKSTEMP, &k)) {
        errno = kinds[k].err;
        return -1;
    }
    return __real_mkstemp(templ);
}

FILE *__wrap_fdopen(int fd, const char *mode)
{
    iof_kind k;
    if (must_fail(FN_FDOPEN, &k)) {
        errno = kinds[k].err;
        return NULL;
    }
    return __real_fdopen(fd, mode);
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    iof_kind k;
    if (!must_fail(FN_FWRITE, &k))
        return __real_fwrite(p, size, n, f);
    /* a disk that fills up part way: some elements land, then the error */
    const size_t done = k == IOF_FWRITE_SHORT && n / 2 ? __real_fwrite(p, size, n / 2, f) : 0;
    errno = kinds[k].err;
    return done;
}

int __wrap_fflush(FILE *f)
{
    iof_kind k;
    if (must_fail(FN_FFLUSH, &k)) {
        errno = kinds[k].err;
        return EOF;
    }
    return __real_fflush(f);
}

int __wrap_fsync(int fd)
{
    iof_kind k;
    if (must_fail(FN_FSYNC, &k)) {
        errno = kinds[k].err;
        return -1;
    }
    return __real_fsync(fd);
}

int __wrap_fclose(FILE *f)
{
    iof_kind k;
    if (must_fail(FN_FCLOSE, &k)) {
        (void)__real_fclose(f); /* fclose releases the stream even when it reports an error */
        errno = kinds[k].err;
        return EOF;
    }
    return __real_fclose(f);
}

int __wrap_rename(const char *from, const char *to)
{
    iof_kind k;
    if (must_fail(FN_RENAME, &k)) {
        errno = kinds[k].err;
        return -1;
    }
    const int rc = __real_rename(from, to);
    if (rc == 0 && active)
        renamed = 1;
    return rc;
}

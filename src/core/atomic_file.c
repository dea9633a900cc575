/* Files replaced atomically (.kvz caches, .npy arrays, reports): a temporary file beside the
 * target, written, synced and renamed over it, so that a reader sees the old file or the new
 * one, never a part, and a failure leaves the old file and no temporary file. */
#define _GNU_SOURCE /* O_CLOEXEC, O_DIRECTORY */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

/* Six characters for "PATH.tmp.XXXXXX", different for every call of the process and, through
 * the clock and the process id, unlikely to collide with another process. */
static void fill_suffix(char *x)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static uint64_t calls;
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40;
    z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser spreads every input bit */
    z = (z ^ z >> 27) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (int i = 0; i < 6; i++, z /= 62)
        x[i] = alphabet[z % 62];
}

/* A failed file call is an I/O error, unless stdio or the kernel ran out of memory for it. */
static kvz_status io_status(int e)
{
    return e == ENOMEM ? KVZ_ERR_NOMEM : KVZ_ERR_IO;
}

kvz_status kvz_atomic_file_open(kvz_atomic_file *af, const char *path, const char *who)
{
    memset(af, 0, sizeof *af);
    af->path = path, af->who = who;
    const size_t plen = strlen(path);
    if (!(af->tmp = malloc(plen + sizeof ".tmp.XXXXXX")))
        return kvz_fail(KVZ_ERR_NOMEM, "%s: no memory", who);
    memcpy(af->tmp, path, plen);
    memcpy(af->tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    /* open with O_EXCL and mode 0666 rather than mkstemp: mkstemp makes the file 0600, and
       widening that needs the umask, which a library can only read by setting it (umask(2)),
       a race with every other thread creating files; open applies the umask itself */
    int fd = -1, e = EEXIST;
    for (int attempt = 0; fd < 0 && e == EEXIST && attempt < 100; attempt++) {
        fill_suffix(af->tmp + plen + 5);
        fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        e = fd < 0 ? errno : 0;
    }
    if (fd < 0) {
        free(af->tmp), af->tmp = NULL;
        return kvz_fail(KVZ_ERR_IO, "%s: cannot create a temporary file beside %s: %s", who, path, strerror(e));
    }
    if (!(af->f = fdopen(fd, "wb"))) {
        e = errno;
        close(fd);
        unlink(af->tmp);
        free(af->tmp), af->tmp = NULL;
        return kvz_fail(io_status(e), "%s: cannot open a stream on the temporary file beside %s: %s", who, path,
                        strerror(e));
    }
    return KVZ_OK;
}

void kvz_atomic_file_write(kvz_atomic_file *af, const void *p, size_t n)
{
    if (af->err || !n)
        return;
    errno = 0; /* a short fwrite that leaves errno alone must not report a stale one */
    if (fwrite(p, 1, n, af->f) != n)
        af->err = errno ? errno : EIO;
}

/* Syncs the directory that holds path, so that the rename survives a crash. A directory this
 * process cannot open (write and search permission without read) cannot be synced and is
 * skipped, as is a file system that cannot sync directories (EINVAL): neither is a failure of
 * the save, whose data is in place and synced. Returns 0 or the errno of a failed sync. */
static int sync_directory(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (slash) {
        const size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
        if (!(dir = malloc(n + 1)))
            return 0; /* the data is in place: no memory only costs the directory's sync */
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    const int fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return 0;
    const int e = fsync(fd) != 0 && errno != EINVAL ? errno : 0;
    close(fd);
    return e;
}

kvz_status kvz_atomic_file_close(kvz_atomic_file *af, kvz_status st)
{
    const char *step = "write";
    int e = af->err;
    if (st == KVZ_OK && !e && fflush(af->f) != 0)
        step = "flush", e = errno ? errno : EIO;
    if (st == KVZ_OK && !e && fsync(fileno(af->f)) != 0)
        step = "sync", e = errno;
    /* fclose releases the stream even when it fails; a failure here is the last flush or the
       file system's deferred error (NFS reports quota on close) */
    if (fclose(af->f) != 0 && st == KVZ_OK && !e)
        step = "close", e = errno ? errno : EIO;
    af->f = NULL;
    if (st == KVZ_OK && e)
        st = kvz_fail(io_status(e), "%s: cannot %s %s: %s (the previous file, if any, is unchanged)", af->who,
                      step, af->path, strerror(e));
    if (st == KVZ_OK && rename(af->tmp, af->path) != 0) {
        e = errno;
        st =
            kvz_fail(KVZ_ERR_IO,
                     "%s: cannot rename the temporary file to %s: %s (the previous file, if any, is unchanged)",
                     af->who, af->path, strerror(e));
    }
    if (st != KVZ_OK)
        (void)unlink(af->tmp); /* the caller's message says why; a failed unlink adds nothing to it */
    else if ((e = sync_directory(af->path)) != 0)
        st = kvz_fail(KVZ_ERR_IO,
                      "%s: %s is written, but syncing its directory failed: %s (a crash may lose it)", af->who,
                      af->path, strerror(e));
    free(af->tmp), af->tmp = NULL;
    return st;
}

/* Files replaced atomically: written beside their path, synced, then renamed into place. */
#ifndef KVZ_CORE_ATOMIC_FILE_H
#define KVZ_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/internal.h"

/*
 * A file being written. Between kvz_atomic_file_open and kvz_atomic_file_close the old
 * file at path (if any) is untouched; a failure anywhere leaves it as it was and removes
 * the temporary file.
 */
typedef struct kvz_atomic_file {
    FILE *f;          /* write through kvz_atomic_file_write (or stdio, then check ferror) */
    char *tmp;        /* "PATH.tmp.XXXXXX", in the same directory so that rename is atomic */
    const char *path; /* the caller's, kept for messages */
    const char *who;  /* the public function the messages name */
    int err;          /* the first errno of a failed write, 0 while all went well */
} kvz_atomic_file;

/*
 * Creates the temporary file beside path with the mode a plain fopen would give it (0666
 * less the umask), and opens it for writing. who names the caller in messages
 * ("kvz_cache_save"). KVZ_OK, or KVZ_ERR_IO / KVZ_ERR_NOMEM with a message; on failure
 * nothing is left behind and kvz_atomic_file_close must not be called.
 */
KVZ_PRIVATE_API kvz_status kvz_atomic_file_open(kvz_atomic_file *af, const char *path, const char *who);

/* fwrite of n bytes; the first failure is remembered and makes every later write a no-op. */
KVZ_PRIVATE_API void kvz_atomic_file_write(kvz_atomic_file *af, const void *p, size_t n);

/*
 * Finishes the file. When st is KVZ_OK and every write succeeded, the file is flushed,
 * synced, closed, renamed to path and its directory synced; the result is KVZ_OK or
 * KVZ_ERR_IO naming the step that failed (KVZ_ERR_NOMEM when that step ran out of memory).
 * Otherwise (st not KVZ_OK: the caller's own error, whose message stays) the file is closed
 * and removed and st is returned. Either way af's resources are released.
 */
KVZ_PRIVATE_API kvz_status kvz_atomic_file_close(kvz_atomic_file *af, kvz_status st);

#endif

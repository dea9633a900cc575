/* What the libFuzzer harnesses share: the readers take paths, so each input becomes a file in a
 * per-process directory (on tmpfs when the caller points TMPDIR there: kvz_cache_save fsyncs). */
#ifndef KVZ_FUZZ_UTIL_H
#define KVZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point, declared here so that -Wmissing-prototypes accepts each harness's. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of `name` inside this process's scratch directory, made on the first call (in $TMPDIR,
 * else /dev/shm, else /tmp) and removed with the files made through here at a normal exit (a crash
 * leaves them to look at). */
const char *fuzz_path(const char *name);

/* Writes size bytes to fuzz_path(name), replacing what was there, and returns that path;
 * aborts when the file cannot be written (a harness that reads nothing finds nothing). */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);

/* Reports a broken invariant of a reader and aborts, so that libFuzzer keeps the input. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

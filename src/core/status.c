/* Status texts and the per-thread message of the last failure. */
#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"

static _Thread_local char last_error[sizeof(((kvz_error_saved *)0)->msg)];

const char *kvz_strerror(kvz_status status)
{
    switch (status) {
    case KVZ_OK: return "success";
    case KVZ_ERR_NULL: return "a required pointer is NULL";
    case KVZ_ERR_INVALID_ARG: return "invalid argument";
    case KVZ_ERR_NOMEM: return "out of memory";
    case KVZ_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case KVZ_ERR_ISA_UNAVAILABLE: return "instruction set not available on this CPU";
    case KVZ_ERR_IO: return "I/O error";
    case KVZ_ERR_FORMAT: return "not a file of the expected format";
    case KVZ_ERR_CORRUPT: return "file is corrupt";
    case KVZ_ERR_VERSION: return "unsupported file format version";
    case KVZ_ERR_MISMATCH: return "file or object does not match";
    case KVZ_ERR_TRUNCATED: return "file is truncated";
    case KVZ_ERR_STATE: return "object is in the wrong state for this call";
    }
    return "unknown status";
}

const char *kvz_last_error(void) { return last_error; }

kvz_status kvz_fail(kvz_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void kvz_error_save(kvz_error_saved *e) { snprintf(e->msg, sizeof e->msg, "%s", last_error); }

void kvz_error_restore(const kvz_error_saved *e) { snprintf(last_error, sizeof last_error, "%s", e->msg); }

void kvz_clear_error(void) { last_error[0] = '\0'; }

/* Where the real models are kept: the directory .ci/fetch-models downloads them into, which the kvz tool
 * and the tests look in. */
#ifndef KVZ_CLI_MODEL_DIR_H
#define KVZ_CLI_MODEL_DIR_H

#include <stddef.h>

/* The path of `file` there: $KVZ_MODEL_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/kvz/models (truncated
 * to size). */
void kvz_model_cache_path(const char *file, char *buf, size_t size);

#endif

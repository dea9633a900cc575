/* Where the real models are kept (model_dir.h). */
#include "cli/model_dir.h"

#include <stdio.h>
#include <stdlib.h>

void kvz_model_cache_path(const char *file, char *buf, size_t size)
{
    const char *dir = getenv("KVZ_MODEL_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (dir && *dir)
        snprintf(buf, size, "%s/%s", dir, file);
    else if (xdg && *xdg)
        snprintf(buf, size, "%s/kvz/models/%s", xdg, file);
    else
        snprintf(buf, size, "%s/.cache/kvz/models/%s", home ? home : ".", file);
}

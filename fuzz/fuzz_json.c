/* libFuzzer harness for the tool's JSON reader: a task line parsed, read as `kvz eval` reads it (the
 * accessors and integer arrays), and every string and key written back through the escaper. */
#include <stdlib.h>
#include <string.h>

#include "cli/json.h"
#include "fuzz_util.h"

static FILE *sink; /* the escaper's output, thrown away: only its reads of the strings matter */

static void walk(const kvz_json *j)
{
    if (j->type == KVZ_JSON_STRING)
        kvz_json_write_string(sink, j->string);
    for (size_t i = 0; (j->type == KVZ_JSON_ARRAY || j->type == KVZ_JSON_OBJECT) && i < j->n_items; i++) {
        if (j->type == KVZ_JSON_OBJECT) {
            kvz_json_write_string(sink, j->items[i].key);
            if (kvz_json_get(j, j->items[i].key) == NULL)
                fuzz_fail("member %zu cannot be found by its own key", i);
        }
        walk(&j->items[i]);
    }
}

static void int_array(const kvz_json *j)
{
    int32_t *ids;
    size_t n;
    if (kvz_json_int_array(j, &ids, &n) != 0)
        return;
    if (j->type != KVZ_JSON_ARRAY || n != j->n_items)
        fuzz_fail("an int array of %zu ids from a value of %zu items", n, j->n_items);
    kvz_json_write_ids(sink, ids, n);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sink && !(sink = fopen("/dev/null", "w")))
        fuzz_fail("cannot open /dev/null");
    char err[128] = "";
    kvz_json *j = kvz_json_parse((const char *)data, size, err, sizeof err);
    if (!j) {
        if (!err[0] || !memchr(err, 0, sizeof err))
            fuzz_fail("malformed input without a message");
        return 0;
    }
    walk(j);
    int_array(kvz_json_get(j, "context_ids"));
    const kvz_json *qs = kvz_json_get(j, "queries");
    for (size_t i = 0; qs && qs->type == KVZ_JSON_ARRAY && i < qs->n_items; i++) {
        int_array(kvz_json_get(&qs->items[i], "prompt_ids"));
        int_array(kvz_json_get(&qs->items[i], "answer_ids"));
    }
    kvz_json_free(j);
    return 0;
}

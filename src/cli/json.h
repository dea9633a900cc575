/* A small JSON reader (objects, arrays, numbers, strings, literals) for the tool's task and
 * option files, and a string escaper for its JSON output. */
#ifndef KVZ_CLI_JSON_H
#define KVZ_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { KVZ_JSON_NULL, KVZ_JSON_BOOL, KVZ_JSON_NUMBER, KVZ_JSON_STRING, KVZ_JSON_ARRAY, KVZ_JSON_OBJECT } kvz_json_type;

typedef struct kvz_json {
    kvz_json_type type;
    double number;         /* NUMBER, BOOL (0/1) */
    char *string;          /* STRING (NUL-terminated, unescaped); for object members: the key */
    struct kvz_json *items; /* ARRAY elements / OBJECT members (each with its key in `key`) */
    size_t n_items;
    char *key;
} kvz_json;

/* Parses text[0..len); NULL on malformed input, with a message (position and reason) in err. */
kvz_json *kvz_json_parse(const char *text, size_t len, char *err, size_t err_size);
void kvz_json_free(kvz_json *j);

/* A member of an object, or NULL. */
const kvz_json *kvz_json_get(const kvz_json *obj, const char *key);

/* An array of integers that fit int32 into a malloc'ed array; -1 when j is not such an array. */
int kvz_json_int_array(const kvz_json *j, int32_t **out, size_t *n);

/* Writes ids as a JSON array of numbers: [1, 2, 3]. */
void kvz_json_write_ids(FILE *f, const int32_t *ids, size_t n);

/* Writes s as a JSON string literal, quotes included. */
void kvz_json_write_string(FILE *f, const char *s);

#endif

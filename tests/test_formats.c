/* The tool's file formats: .npy float32 arrays (round trip, header layout, damaged files) and
 * the JSON reader (values, escapes, malformed input). */
#define _GNU_SOURCE /* memmem, fmemopen */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/json.h"
#include "cli/npy.h"
#include "testutil.h"

static char dir[64];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void test_npy_round_trip(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "a.npy");
    const size_t shapes[3][4] = {{7}, {3, 5}, {2, 3, 4}};
    for (size_t s = 0; s < 3; s++) {
        const size_t nd = s + 1;
        size_t count = 1;
        for (size_t i = 0; i < nd; i++)
            count *= shapes[s][i];
        float *d = tu_malloc(count * 4);
        for (size_t i = 0; i < count; i++)
            d[i] = (float)i * 0.25f - 1.0f;
        assert_int_equal(kvz_npy_write_f32(p, d, shapes[s], nd), KVZ_OK);
        size_t n;
        unsigned char *raw = tu_slurp(p, &n);
        /* numpy's layout: magic, v1.0, header length, header ending in '\n' at a 64-byte boundary */
        assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
        const size_t hl = raw[8] | (size_t)raw[9] << 8;
        assert_int_equal((10 + hl) % 64, 0);
        assert_int_equal(raw[10 + hl - 1], '\n');
        assert_int_equal(n, 10 + hl + count * 4);
        char want[64];
        if (nd == 1)
            snprintf(want, sizeof want, "'shape': (7,)");
        else if (nd == 2)
            snprintf(want, sizeof want, "'shape': (3, 5)");
        else
            snprintf(want, sizeof want, "'shape': (2, 3, 4)");
        assert_non_null(memmem(raw, 10 + hl, want, strlen(want)));
        float *back = NULL;
        size_t shape[4], got_nd;
        assert_int_equal(kvz_npy_read_f32(p, &back, shape, &got_nd), KVZ_OK);
        assert_int_equal(got_nd, nd);
        assert_memory_equal(shape, shapes[s], nd * sizeof(size_t));
        assert_memory_equal(back, d, count * 4);
        free(back);
        /* truncated data, and a float64 header, are refused */
        tu_spit(p, raw, n - 1);
        assert_int_equal(kvz_npy_read_f32(p, &back, shape, &got_nd), KVZ_ERR_TRUNCATED);
        unsigned char *f8 = memmem(raw, 10 + hl, "<f4", 3);
        f8[2] = '8';
        tu_spit(p, raw, n);
        assert_int_equal(kvz_npy_read_f32(p, &back, shape, &got_nd), KVZ_ERR_FORMAT);
        tu_spit(p, (const unsigned char *)"hello", 5);
        assert_int_equal(kvz_npy_read_f32(p, &back, shape, &got_nd), KVZ_ERR_TRUNCATED);
        free(raw), free(d), free(back);
    }
    /* a failed write leaves nothing behind */
    const size_t one = 1;
    const float x = 1;
    assert_int_equal(kvz_npy_write_f32("/nonexistent-dir/x.npy", &x, &one, 1), KVZ_ERR_IO);
    assert_int_equal(kvz_npy_write_f32(p, &x, &one, 0), KVZ_ERR_INVALID_ARG);
    unlink(p);
}

/* Writes a .npy file whose header claims shape_text, followed by n_data bytes of data. */
static void craft_npy(const char *p, const char *shape_text, size_t n_data)
{
    char header[256];
    int hl =
        snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape_text);
    while ((10 + hl + 1) % 64)
        header[hl++] = ' ';
    header[hl++] = '\n';
    unsigned char *raw = tu_malloc(10 + (size_t)hl + n_data);
    memcpy(raw, "\x93NUMPY\x01\x00", 8);
    raw[8] = (unsigned char)hl, raw[9] = (unsigned char)(hl >> 8);
    memcpy(raw + 10, header, (size_t)hl);
    memset(raw + 10 + hl, 0, n_data);
    tu_spit(p, raw, 10 + (size_t)hl + n_data);
    free(raw);
}

/* Shapes that do not fit the file are refused before anything is allocated for them. */
static void test_npy_bad_shape(void **state)
{
    (void)state;
    char p[128];
    path_in(p, sizeof p, "s.npy");
    float *back = NULL;
    size_t shape[4], nd;
    /* 2^62 + 1 values of 4 bytes wrap to 4 bytes; this once returned success with one float */
    craft_npy(p, "(4611686018427387905,)", 4);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_ERR_FORMAT);
    assert_null(back);
    craft_npy(p, "(2, 2305843009213693953)", 16);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_ERR_FORMAT);
    /* strtoull reads "-1" as ULLONG_MAX */
    craft_npy(p, "(-1,)", 4);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_ERR_FORMAT);
    craft_npy(p, "(1, -1)", 4);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_ERR_FORMAT);
    /* a shape the file cannot hold: refused as truncated, not allocated */
    craft_npy(p, "(100000000000,)", 8);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_ERR_TRUNCATED);
    assert_null(back);
    /* the same shape writer, with the data there, reads back */
    craft_npy(p, "(2, 3)", 24);
    assert_int_equal(kvz_npy_read_f32(p, &back, shape, &nd), KVZ_OK);
    assert_int_equal(nd, 2), assert_int_equal(shape[0], 2), assert_int_equal(shape[1], 3);
    free(back);
    unlink(p);
}

static void test_json(void **state)
{
    (void)state;
    const char *doc = " {\"a\": [1, -2, 3e2], \"s\": \"x\\\"y\\\\z\\n\\u00e9\\ud83d\\ude00\", \"o\": {\"t\": true, \"n\": null},"
                      " \"e\": [], \"f\": 0.5 } ";
    char err[128];
    kvz_json *j = kvz_json_parse(doc, strlen(doc), err, sizeof err);
    assert_non_null(j);
    int32_t *ids;
    size_t n;
    assert_int_equal(kvz_json_int_array(kvz_json_get(j, "a"), &ids, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1), assert_int_equal(ids[1], -2), assert_int_equal(ids[2], 300);
    free(ids);
    assert_string_equal(kvz_json_get(j, "s")->string, "x\"y\\z\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(kvz_json_get(kvz_json_get(j, "o"), "t")->type, KVZ_JSON_BOOL);
    assert_int_equal(kvz_json_get(kvz_json_get(j, "o"), "n")->type, KVZ_JSON_NULL);
    assert_int_equal(kvz_json_get(j, "e")->n_items, 0);
    assert_int_equal(kvz_json_int_array(kvz_json_get(j, "f"), &ids, &n), -1); /* not an array */
    assert_null(kvz_json_get(j, "missing"));
    kvz_json_free(j);
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "[1 2]", "{\"a\":1}x", "[\"\\q\"]", "nul", "[1e999]",
                         "\"\\u12\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_null(kvz_json_parse(bad[i], strlen(bad[i]), err, sizeof err));
        assert_true(strlen(err) > 0);
    }
    /* a \u escape holds 4 hex digits: "\udf"}" once took the closing quote and '}' for digits
     * and wrote on past the buffer the first scan had sized; every reader stops at len */
    const char *bad_u[] = {"\"\\udf\"}\"", "[\"\\u00g0\"]", "\"\\ud83d\\udeX0\"", "\"\\u\\\"\"\""};
    for (size_t i = 0; i < sizeof bad_u / sizeof *bad_u; i++) {
        err[0] = '\0';
        assert_null(kvz_json_parse(bad_u[i], strlen(bad_u[i]), err, sizeof err));
        assert_non_null(strstr(err, "escape"));
    }
    /* bytes after len are never read: a quote there does not end the string */
    const char cut[] = "\"ab\\\"";
    assert_null(kvz_json_parse(cut, 4, err, sizeof err)); /* "ab\ with the next quote beyond len */
    assert_null(kvz_json_parse(cut, 5, err, sizeof err));
    char *heap = tu_malloc(7); /* exactly the text, so ASan sees a read past it */
    memcpy(heap, "\"\\udf\"}", 7);
    assert_null(kvz_json_parse(heap, 7, err, sizeof err));
    free(heap);
    char deep[200];
    memset(deep, '[', 100), memset(deep + 100, ']', 100);
    assert_null(kvz_json_parse(deep, 200, err, sizeof err)); /* nesting limit, not a stack overflow */
    assert_non_null(strstr(err, "nesting"));
    /* non-integer ids are refused */
    j = kvz_json_parse("[1, 2.5]", 8, err, sizeof err);
    assert_int_equal(kvz_json_int_array(j, &ids, &n), -1);
    kvz_json_free(j);
    /* the writer escapes what JSON needs */
    char buf[128] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    kvz_json_write_string(f, "a\"b\\c\n\x01");
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\u0001\"");
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kvz_formats_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_npy_round_trip),
                                       cmocka_unit_test(test_npy_bad_shape), cmocka_unit_test(test_json)};
    return cmocka_run_group_tests(tests, setup, teardown);
}

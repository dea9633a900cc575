/*
 * Saves under injected I/O failures (tests/io_faults.c): every file call of kvz_cache_save and
 * kvz_npy_write_f32 fails in turn, and each time the save reports KVZ_ERR_IO with the failure's
 * own errno text, the file already at the path keeps every byte, no temporary file or
 * descriptor is left, and the next save succeeds. Saved files get 0666 less the umask.
 */
#define _GNU_SOURCE /* O_DIRECTORY in io_faults.h's users */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "io_faults.h"
#include "cli/npy.h"
#include "testutil.h"

/* ---- the two writers, each saving version 0 (the old file) or 1 (the new one) ------------ */

typedef struct writer {
    const char *name, *file;
    kvz_status (*save)(const struct writer *w, const char *path, int version);
    int (*loads)(const char *path); /* non-zero when the file reads back */
    void *data[2];
} writer;

static kvz_cache *sample_cache(tu_rng *r, size_t n)
{
    enum { LL = 2, HH = 2, DD = 32 };
    kvz_cache_config cfg = {sizeof cfg, LL, HH, DD, KVZ_DTYPE_BF16, 0, NULL};
    kvz_cache *c;
    assert_int_equal(kvz_cache_create(&cfg, &c), KVZ_OK);
    float *k = tu_malloc(n * HH * DD * 4), *v = tu_malloc(n * HH * DD * 4);
    for (size_t i = 0; i < n * HH * DD; i++)
        k[i] = tu_uniform(r, -1, 1), v[i] = tu_uniform(r, -1, 1);
    for (size_t l = 0; l < LL; l++)
        assert_int_equal(kvz_cache_append(c, l, n, k, v, (ptrdiff_t)(HH * DD), (ptrdiff_t)DD), KVZ_OK);
    free(k), free(v);
    return c;
}

static kvz_status save_cache(const writer *w, const char *path, int version)
{
    const kvz_cache_meta meta = {sizeof meta, {(uint8_t)version}, "snapkv", 0.5};
    return kvz_cache_save(w->data[version], path, &meta);
}

static int cache_loads(const char *path)
{
    kvz_cache *c = NULL;
    const kvz_status st = kvz_cache_load(path, NULL, &c, NULL);
    kvz_cache_destroy(c);
    return st == KVZ_OK;
}

enum { NPY_ROWS = 40, NPY_COLS = 33 };

static kvz_status save_npy(const writer *w, const char *path, int version)
{
    const size_t shape[2] = {NPY_ROWS - 10 * (size_t)version, NPY_COLS};
    return kvz_npy_write_f32(path, w->data[version], shape, 2);
}

static int npy_loads(const char *path)
{
    float *d = NULL;
    size_t shape[4], nd = 0;
    const kvz_status st = kvz_npy_read_f32(path, &d, shape, &nd);
    free(d);
    return st == KVZ_OK && nd == 2 && shape[1] == NPY_COLS;
}

/* ---- checks ------------------------------------------------------------------------------ */

static int same_file(const char *path, const unsigned char *want, size_t n)
{
    size_t got_n;
    unsigned char *got = tu_slurp(path, &got_n);
    const int same = got_n == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

/* Only the target and the reference copy are in the directory: no temporary file. */
static void assert_no_leftovers(const char *target, const char *reference)
{
    DIR *dh = opendir(tu_tmpdir());
    assert_non_null(dh);
    for (struct dirent *e; (e = readdir(dh));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, target) &&
            strcmp(e->d_name, reference)) {
            print_message("left behind in %s: %s\n", tu_tmpdir(), e->d_name);
            fail();
        }
    closedir(dh);
}

/* The lowest free descriptor: a save that leaks one makes it higher afterwards. */
static int lowest_free_fd(void)
{
    const int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

/*
 * Every fault at every call of a clean save, one per save over an old file. Before the rename
 * a fault leaves the old file; after it (the directory's sync) the new file is in place and a
 * failed sync is still an error, while a directory that cannot be opened is skipped.
 * Returns the number of faults injected.
 */
static unsigned run_faults(const writer *w)
{
    char target[128], reference[128], name[32];
    snprintf(name, sizeof name, "ref%s", w->file);
    tu_tmp_path(target, sizeof target, w->file), tu_tmp_path(reference, sizeof reference, name);
    /* the new file's bytes, and the calls of one clean save */
    iof_arm(IOF_OPEN, 0);
    assert_int_equal(w->save(w, reference, 1), KVZ_OK);
    iof_disarm();
    unsigned calls[IOF_KINDS], injected = 0;
    for (int k = 0; k < IOF_KINDS; k++)
        calls[k] = iof_calls((iof_kind)k);
    assert_true(calls[IOF_FWRITE_SHORT] >= 1 && calls[IOF_FSYNC] >= 1 && calls[IOF_RENAME] == 1);
    size_t new_n, old_n;
    unsigned char *new_bytes = tu_slurp(reference, &new_n);
    assert_int_equal(w->save(w, target, 0), KVZ_OK);
    unsigned char *old_bytes = tu_slurp(target, &old_n);
    assert_true(old_n != new_n || memcmp(old_bytes, new_bytes, old_n) != 0);
    const int fd_before = lowest_free_fd();
    for (int k = 0; k < IOF_KINDS; k++)
        for (unsigned nth = 1; nth <= calls[k]; nth++) {
            kvz_clear_error();
            iof_arm((iof_kind)k, nth);
            const kvz_status st = w->save(w, target, 1);
            iof_disarm();
            const char *msg = kvz_last_error(), *why = strerror(iof_errno((iof_kind)k));
            if (!iof_fired()) { /* a save must make the same calls every time */
                print_message("%s: %s call %u of %u was never made\n", w->name, iof_name((iof_kind)k), nth,
                              calls[k]);
                fail();
            }
            injected++;
            const int after = iof_fired_after_rename(), skipped = after && iof_fired_on_directory();
            if ((skipped ? st != KVZ_OK : st != KVZ_ERR_IO) ||
                (!skipped && (!strstr(msg, target) || !strstr(msg, why)))) {
                print_message("%s: %s at call %u: status %d, message \"%s\" (want %s naming %s and \"%s\")\n",
                              w->name, iof_name((iof_kind)k), nth, st, msg, skipped ? "success" : "KVZ_ERR_IO",
                              target, why);
                fail();
            }
            if (after ? !same_file(target, new_bytes, new_n) : !same_file(target, old_bytes, old_n)) {
                print_message("%s: %s at call %u: %s does not hold the %s file\n", w->name,
                              iof_name((iof_kind)k), nth, target, after ? "new" : "old");
                fail();
            }
            assert_no_leftovers(w->file, name);
            assert_int_equal(lowest_free_fd(), fd_before);
            if (after) /* the old file back for the next fault */
                assert_int_equal(w->save(w, target, 0), KVZ_OK);
        }
    /* and a clean save still works */
    assert_int_equal(w->save(w, target, 1), KVZ_OK);
    assert_true(same_file(target, new_bytes, new_n));
    assert_true(w->loads(target));
    assert_no_leftovers(w->file, name);
    char counts[256] = "";
    for (int k = 0, used = 0; k < IOF_KINDS; k++)
        if (calls[k])
            used += snprintf(counts + used, sizeof counts - (size_t)used, "%s%s %u", used ? ", " : "",
                             iof_name((iof_kind)k), calls[k]);
    print_message("%s: %u I/O faults injected (%s)\n", w->name, injected, counts);
    free(new_bytes), free(old_bytes);
    return injected;
}

/* Removes the writer's files, so that the next test's directory holds only its own. */
static void remove_files(const writer *w)
{
    char path[128], name[32];
    snprintf(name, sizeof name, "ref%s", w->file);
    tu_tmp_path(path, sizeof path, w->file);
    unlink(path);
    tu_tmp_path(path, sizeof path, name);
    unlink(path);
}

/* A saved file has the mode fopen would give it: 0666 less the umask, not mkstemp's 0600. */
static void check_mode(const writer *w)
{
    char target[128];
    tu_tmp_path(target, sizeof target, w->file);
    static const mode_t masks[3] = {022, 027, 0};
    for (int i = 0; i < 3; i++) {
        const mode_t was = umask(masks[i]);
        unlink(target);
        const kvz_status st = w->save(w, target, 0);
        umask(was);
        assert_int_equal(st, KVZ_OK);
        struct stat sb;
        assert_int_equal(stat(target, &sb), 0);
        if ((sb.st_mode & 0777) != (0666 & ~masks[i])) {
            print_message("%s: mode %03o under umask %03o\n", w->name, (unsigned)(sb.st_mode & 0777),
                          (unsigned)masks[i]);
            fail();
        }
    }
}

static void test_cache_save(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 90);
    writer w = {
        "kvz_cache_save", "cache.kvz", save_cache, cache_loads, {sample_cache(&r, 20), sample_cache(&r, 45)}};
    assert_true(run_faults(&w) > 0);
    check_mode(&w);
    remove_files(&w);
    kvz_cache_destroy(w.data[0]), kvz_cache_destroy(w.data[1]);
}

static void test_npy_write(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_init(&r, tu_seed() + 91);
    writer w = {"kvz_npy_write_f32", "scores.npy", save_npy, npy_loads, {NULL, NULL}};
    for (int v = 0; v < 2; v++) {
        float *d = tu_malloc(NPY_ROWS * NPY_COLS * sizeof *d);
        for (size_t i = 0; i < NPY_ROWS * NPY_COLS; i++)
            d[i] = tu_uniform(&r, -1, 1);
        w.data[v] = d;
    }
    assert_true(run_faults(&w) > 0);
    check_mode(&w);
    remove_files(&w);
    free(w.data[0]), free(w.data[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_save),
        cmocka_unit_test(test_npy_write),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}

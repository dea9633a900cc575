/* Declarations shared inside src/core: error helpers, dispatch, aligned scratch. */
#ifndef KVZ_CORE_INTERNAL_H
#define KVZ_CORE_INTERNAL_H

#include <stddef.h>

#include "kernels.h"
#include "kvz.h"

/* What libkvz.so exports besides kvz.h, under the version node KVZ_PRIVATE (src/libkvz.map), for
 * libkvz-model of the same release: not part of the ABI, no promise across releases. */
#define KVZ_PRIVATE_API __attribute__((visibility("default")))

/* Records a formatted message for kvz_last_error() and returns st. */
KVZ_PRIVATE_API kvz_status kvz_fail(kvz_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A copy of this thread's message, for a step whose failure the call recovers from: restoring
 * it keeps the message of the caller's previous failure, as if the step had not failed. */
typedef struct kvz_error_saved {
    char msg[512];
} kvz_error_saved;
void kvz_error_save(kvz_error_saved *e);
void kvz_error_restore(const kvz_error_saved *e);
/* Empties this thread's message (the tests and fuzz harnesses start a check from nothing). */
void kvz_clear_error(void);

/* The kernel table in use (chosen once per process on first call). Never NULL. */
KVZ_PRIVATE_API const kvz_kernel_table *kvz_kernels(void);
/* The table of a level, or NULL when this build or CPU cannot run it. */
const kvz_kernel_table *kvz_kernels_for(kvz_isa isa);

/* g[i] = silu(g[i]) * u[i] for i < n (the kernel table's swiglu, over the OpenMP threads). */
KVZ_PRIVATE_API void kvz_swiglu(float *g, const float *u, size_t n);
/* g[i] = gelu_tanh(g[i]) * u[i] for i < n (the kernel table's geglu, over the OpenMP threads). */
KVZ_PRIVATE_API void kvz_geglu(float *g, const float *u, size_t n);

/*
 * The pure part of the choice: given the KVZ_ISA value (NULL when unset) and which levels
 * this build and CPU support (bit i for kvz_isa i), the level to use. When the value is
 * unknown or names an unsupported level, the best level is returned and msg (msg_size
 * bytes) explains why; otherwise msg is set to "".
 */
kvz_isa kvz_isa_choose(const char *env, unsigned supported_mask, char *msg, size_t msg_size);

/* The pure part of the read plan's choice: given the KVZ_READ_PLAN value (NULL when unset)
 * and the CPU's vendor (KVZ_VENDOR_*), the plan to use; msg as kvz_isa_choose's. */
kvz_read_plan kvz_read_plan_choose(const char *env, int vendor, char *msg, size_t msg_size);

/* Runs one attention job per KV head (work and slicing are filled in): query slices for
 * many rows, key slices merged by log-sum-exp for few rows (attn_runner.c). */
kvz_status kvz_attn_run(const kvz_attn_job *heads, size_t n_heads);
/* kvz_attn_run with the NUMA node of each head's K/V (node_of[h], -1: unknown): when the
 * heads sit on two or more nodes, a decode's key slices run on threads bound to the node of
 * their head, each node's threads taking its slices first and then helping the others. */
kvz_status kvz_attn_run_placed(const kvz_attn_job *heads, const int *node_of, size_t n_heads);

/* kvz_select_global with the kept count k given directly (k >= N keeps all). */
kvz_status kvz_select_global_k(const float *const *rows, const size_t *lens, size_t n_rows, uint64_t k,
                               kvz_select_mode mode, uint8_t *const *keep, size_t *n_kept, float *threshold);

/* floor(n * ratio) as Python's int(n * ratio) computes it (double product, truncated). */
uint64_t kvz_count_of(uint64_t n, double ratio);

/* 64-byte aligned allocation (NULL on failure) and its release. */
KVZ_PRIVATE_API void *kvz_aligned_alloc(size_t bytes);
KVZ_PRIVATE_API void kvz_aligned_free(void *p);

/* This thread's kernel scratch of at least `floats` floats, 64-byte aligned, reused
 * across calls (NULL when memory runs out). Valid until the thread's next call. */
KVZ_PRIVATE_API float *kvz_thread_scratch(size_t floats);

/*
 * Public structs start with struct_size and only ever grow at the end; a call accepts any
 * struct_size from the struct's size in the first release (KVZ_SIZE_0_1: up to the end of
 * its last 0.1 field) up.
 * kvz_struct_in copies the caller's struct into `local` (`size` bytes, this library's
 * struct): fields the caller's header lacks are zero, their documented defaults; a larger
 * struct must have zeros past ours (else KVZ_ERR_UNSUPPORTED: a field we cannot honour).
 * For results, kvz_struct_out_check checks the size and kvz_struct_out writes our fields up
 * to the caller's struct_size (leaving struct_size itself) and zeros past ours.
 */
#define KVZ_SIZE_0_1(type, last_field) (offsetof(type, last_field) + sizeof(((type *)0)->last_field))
KVZ_PRIVATE_API kvz_status kvz_struct_in(const char *fn, const char *type, const void *given, size_t first_size,
                                         void *local, size_t size);
KVZ_PRIVATE_API kvz_status kvz_struct_out_check(const char *fn, const char *type, const void *given,
                                                size_t first_size);
KVZ_PRIVATE_API void kvz_struct_out(void *given, const void *local, size_t size);

/* Overflow-checked size arithmetic: returns 0 on overflow. */
static inline int kvz_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

#endif

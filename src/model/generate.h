/* Sampling and the generation loop of the model runner. */
#ifndef KVZ_MODEL_GENERATE_H
#define KVZ_MODEL_GENERATE_H

#include "model/model.h"

/* The next token: argmax (first of equal maxima) when temperature <= 0, else a draw from
 * softmax(logits / temperature) advancing *rng. */
int32_t kvz_sample(const float *logits, size_t n, float temperature, uint64_t *rng);

/* One token at the target's next position through every layer; logits[n_vocab]. */
kvz_status kvz_model_step(kvz_model *m, kvz_kv_target kv, int32_t id, float *logits);

typedef struct kvz_gen_opts {
    size_t max_tokens;
    float temperature; /* <= 0: greedy */
    uint64_t seed;
    int (*is_stop)(void *ctx, int32_t id); /* optional: stop after this token (it is returned) */
    void *stop_ctx;
} kvz_gen_opts;

/* Samples up to max_tokens tokens into out (room for max_tokens), starting from the logits
 * that followed the prompt; each sampled token but the last is fed back through the target. */
kvz_status kvz_model_generate(kvz_model *m, kvz_kv_target kv, const float *first_logits, const kvz_gen_opts *o,
                              int32_t *out, size_t *n_out);

#endif

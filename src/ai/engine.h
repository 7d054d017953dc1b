/*
 * engine.h: the inference engine's private structures, shared by model.c
 * (loading), forward_llama.c (the transformer), sample.c (sampling),
 * generate.c (the generation loop) and chat.c (templates).
 */
#ifndef KITH_AI_ENGINE_H
#define KITH_AI_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ai/gguf.h"
#include "ai/pool.h"

struct tokenizer;
#include "kith/ai.h"

/* A weight matrix W[m][k] (m rows of k elements), borrowed from the mmap. */
struct ai_weight {
    uint32_t type;
    int k, m;
    size_t row_bytes;
    const uint8_t *data;
};

struct ai_layer {
    struct ai_weight wq, wk, wv, wo;         /* wq [n_head*hd][dim], wk/wv [n_kv*hd][dim] */
    struct ai_weight w_gate, w_up, w_down;   /* gate/up [ff][dim], down [dim][ff] */
    const float *attn_norm, *ffn_norm;       /* [dim] */
    const float *bq, *bk, *bv;               /* qwen2 biases or NULL */
};

enum ai_arch { AI_ARCH_LLAMA, AI_ARCH_QWEN2 };

enum ai_tmpl {
    AI_TMPL_NONE,
    AI_TMPL_CHATML,
    AI_TMPL_LLAMA3,
    AI_TMPL_LLAMA2,  /* [INST] ... [/INST], also Mistral */
    AI_TMPL_MISTRAL, /* [INST] without the <<SYS>> block */
    AI_TMPL_GEMMA,
    AI_TMPL_PHI3,
    AI_TMPL_ZEPHYR,
};

struct kith_model {
    gguf_file *gguf;
    enum ai_arch arch;
    char arch_name[16];
    char name[128];
    int n_vocab, dim, n_layer, n_head, n_head_kv, head_dim, ff, n_ctx_train;
    int rope_dim;            /* rotated dimensions per head (<= head_dim) */
    int rope_neox;           /* 1: rotate pairs (i, i+d/2); 0: adjacent pairs */
    float rms_eps, rope_base, rope_scale; /* rope_scale multiplies positions */
    const float *rope_freqs; /* Llama 3 per-frequency divisors [rope_dim/2] or NULL */
    struct ai_weight tok_embd, output;
    const float *output_norm;
    struct ai_layer *layers;
    uint64_t n_params;
    uint32_t ftype;
    enum ai_tmpl tmpl;
    struct tokenizer *tok;   /* owned */
    int bos, eos, add_bos;
    float **owned;           /* norm vectors converted to f32 */
    size_t n_owned;
};

struct kith_ctx {
    kith_model *m;
    ai_pool *pool;
    int n_ctx, n_batch, n_threads;
    int n_past;
    atomic_int cancel;
    /* KV cache, f16 as llama.cpp keeps it: [n_layer][n_ctx][n_kv*hd] */
    uint16_t *k_cache, *v_cache;
    /* activations for up to n_batch tokens */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2;
    float *scores;           /* [n_threads][n_ctx] */
    void *qact;              /* activation row(s) in the weights' dot type */
    size_t qact_row_max;     /* bytes of the largest quantized activation row */
    void *tact;              /* activation rows prepared for the tile kernels */
    size_t tact_k_max;       /* the longest row @tact has room for */
    float *logits;           /* [n_batch][n_vocab] */
    int n_logits;            /* rows of @logits valid after the last eval */
    int logits_all;
    float *rope_cos, *rope_sin; /* [n_ctx][rope_dim/2] */
    int rope_rows;           /* positions of rope_cos/sin filled so far (ai_rope_table) */
    float *embd_acc;         /* [dim] for kith_embed */
    uint64_t kv_bytes, mem_bytes; /* what kith_ctx_new allocated (kith_ctx_mem_bytes) */
};

/* forward_llama.c: runs @n tokens (n <= n_batch) at positions n_past.. and
 * leaves the final normed hidden state in c->x and, unless @no_logits,
 * logits in c->logits (all rows or the last). */
int ai_forward(kith_ctx *c, const int32_t *tokens, int n, int all_logits, int no_logits);
/* context.c: fills the RoPE rows of positions below @n_pos not yet filled. */
void ai_rope_table(kith_ctx *c, int n_pos);
/* y[n][w->m] = x[n][w->k] . W^T, over the pool. */
void ai_matmul(kith_ctx *c, const struct ai_weight *w, const float *x, int n, float *y);

/* sample.c */
struct ai_sampler;
struct ai_sample_params {
    float temperature, top_p, min_p, repeat_penalty;
    int top_k, repeat_last_n;
    uint64_t seed;
};
int ai_sampler_new(int n_vocab, const struct ai_sample_params *p, struct ai_sampler **out);
void ai_sampler_free(struct ai_sampler *s);
/* Picks a token from @logits (modified in place), given the @n_hist previous tokens. */
int ai_sample(struct ai_sampler *s, float *logits, const int32_t *hist, int n_hist);

/* random_model.c: a random-weight model GGUF of a given shape, written to
 * @path, or (path NULL) to a new buffer *mem (*len bytes, kith_free). Every
 * matrix (embeddings included) is @type; norms and biases are F32. */
struct ai_random_shape {
    const char *arch; /* "llama" (default) or "qwen2" (adds Q/K/V biases) */
    int dim, n_layer, n_head, n_head_kv, ff, vocab, ctx;
    uint32_t type;
    uint64_t seed;
    int tied;         /* no output.weight: the embeddings are reused */
};
int ai_random_model_write(const struct ai_random_shape *s, const char *path, void **mem,
                          size_t *len);

/* chat.c */
enum ai_tmpl ai_chat_detect(const char *tmpl, size_t len);
const char *ai_chat_name(enum ai_tmpl t);

#endif

/*
 * random_model.c: writes a llama/qwen2 GGUF with random weights of any shape
 * and type, for tests (forward-pass invariants) and benchmarks (speed does
 * not depend on the values). Tensor bytes are produced by the writer's fill
 * callback row by row, so a 220M-parameter file never sits in memory.
 * The vocabulary is SentencePiece-style: <unk> <s> </s>, 256 byte tokens,
 * then filler words.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "util/util_int.h"

enum { T_MAT, T_NORM, T_BIAS };

struct rspec {
    char name[64];
    uint32_t type;
    int kind, k, m;
};

struct rmodel {
    const struct ai_random_shape *s;
    struct rspec *t;
    size_t n;
    float *row;
};

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), a pure function of (seed, tensor, index). */
static float urand(uint64_t seed, size_t tensor, uint64_t i)
{
    uint64_t z = mix(seed * 0x9e3779b97f4a7c15ull + tensor * 0x632be59bd9b4e019ull + i);
    return (float)(z >> 40) / (float)(1u << 23) - 1.0f;
}

static int fill(void *ud, size_t idx, void *dst, size_t nbytes)
{
    struct rmodel *r = ud;
    const struct rspec *t = &r->t[idx];
    /* uniform with variance 1/k keeps activations near unit scale */
    float a = sqrtf(3.0f / (float)t->k);
    size_t rb = quant_row_bytes(t->type, (size_t)t->k);
    if (rb * (size_t)t->m != nbytes)
        return KITH_EINVAL;
    for (int row = 0; row < t->m; row++) {
        for (int e = 0; e < t->k; e++) {
            float u = urand(r->s->seed, idx, (uint64_t)row * (uint64_t)t->k + (uint64_t)e);
            r->row[e] = t->kind == T_NORM ? 1.0f + 0.1f * u : t->kind == T_BIAS ? 0.1f * u : a * u;
        }
        quant_quantize_row(t->type, r->row, (uint8_t *)dst + (size_t)row * rb, (size_t)t->k);
    }
    return 0;
}

static int add(struct rmodel *r, const char *name, uint32_t type, int kind, int k, int m)
{
    struct rspec *t = &r->t[r->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->kind = kind;
    t->k = k;
    t->m = m;
    return 0;
}

int ai_random_model_write(const struct ai_random_shape *s, const char *path, void **mem,
                          size_t *len)
{
    const char *arch = s->arch ? s->arch : "llama";
    int qwen = !strcmp(arch, "qwen2");
    int hd = s->dim / s->n_head, kvd = s->n_head_kv * hd;
    if (s->dim % s->n_head || s->n_head % s->n_head_kv || s->vocab < 260 ||
        !quant_can_quantize(s->type) || s->dim % (int)quant_blck(s->type) ||
        s->ff % (int)quant_blck(s->type))
        return KITH_EINVAL;
    gguf_writer *w = NULL;
    struct rmodel r = {.s = s};
    char **toks = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char key[96];
    int rc = KITH_ENOMEM;
    r.t = kith_calloc((size_t)s->n_layer * 12 + 4, sizeof *r.t);
    r.row = kith_malloc((size_t)(s->dim > s->ff ? s->dim : s->ff) * sizeof(float));
    toks = kith_calloc((size_t)s->vocab, sizeof *toks);
    scores = kith_malloc((size_t)s->vocab * sizeof *scores);
    types = kith_malloc((size_t)s->vocab * sizeof *types);
    if (!r.t || !r.row || !toks || !scores || !types || gguf_writer_new(&w))
        goto out;

    for (int i = 0; i < s->vocab; i++) {
        char buf[32];
        if (i < 3)
            snprintf(buf, sizeof buf, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else
            snprintf(buf, sizeof buf, "\xe2\x96\x81w%d", i - 259); /* "▁w<n>" */
        if (!(toks[i] = kith_strndup(buf, strlen(buf))))
            goto out;
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
#define KV(fn, k, ...)                                                                   \
    if ((rc = fn(w, k, __VA_ARGS__)))                                                    \
        goto out;
#define AKV(fn, k, ...)                                                                  \
    snprintf(key, sizeof key, "%s.%s", arch, k);                                         \
    KV(fn, key, __VA_ARGS__)
    KV(gguf_writer_add_str, "general.architecture", arch)
    KV(gguf_writer_add_str, "general.name", "random")
    AKV(gguf_writer_add_u32, "context_length", (uint32_t)s->ctx)
    AKV(gguf_writer_add_u32, "embedding_length", (uint32_t)s->dim)
    AKV(gguf_writer_add_u32, "block_count", (uint32_t)s->n_layer)
    AKV(gguf_writer_add_u32, "feed_forward_length", (uint32_t)s->ff)
    AKV(gguf_writer_add_u32, "attention.head_count", (uint32_t)s->n_head)
    AKV(gguf_writer_add_u32, "attention.head_count_kv", (uint32_t)s->n_head_kv)
    AKV(gguf_writer_add_f32, "attention.layer_norm_rms_epsilon", 1e-5f)
    AKV(gguf_writer_add_f32, "rope.freq_base", qwen ? 1000000.f : 10000.f)
    KV(gguf_writer_add_str, "tokenizer.ggml.model", "llama")
    KV(gguf_writer_add_arr_str, "tokenizer.ggml.tokens", (const char *const *)toks, NULL,
       (size_t)s->vocab)
    KV(gguf_writer_add_arr, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (size_t)s->vocab)
    KV(gguf_writer_add_arr, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (size_t)s->vocab)
    KV(gguf_writer_add_u32, "tokenizer.ggml.bos_token_id", 1)
    KV(gguf_writer_add_u32, "tokenizer.ggml.eos_token_id", 2)
#undef KV
#undef AKV

    add(&r, "token_embd.weight", s->type, T_MAT, s->dim, s->vocab);
    add(&r, "output_norm.weight", GGML_TYPE_F32, T_NORM, s->dim, 1);
    if (!s->tied)
        add(&r, "output.weight", s->type, T_MAT, s->dim, s->vocab);
    for (int l = 0; l < s->n_layer; l++) {
        char n[64];
#define T(suffix, type, kind, k, m)                                                      \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                       \
    add(&r, n, type, kind, k, m);
        T("attn_norm.weight", GGML_TYPE_F32, T_NORM, s->dim, 1)
        T("attn_q.weight", s->type, T_MAT, s->dim, s->dim)
        T("attn_k.weight", s->type, T_MAT, s->dim, kvd)
        T("attn_v.weight", s->type, T_MAT, s->dim, kvd)
        if (qwen) {
            T("attn_q.bias", GGML_TYPE_F32, T_BIAS, s->dim, 1)
            T("attn_k.bias", GGML_TYPE_F32, T_BIAS, kvd, 1)
            T("attn_v.bias", GGML_TYPE_F32, T_BIAS, kvd, 1)
        }
        T("attn_output.weight", s->type, T_MAT, s->dim, s->dim)
        T("ffn_norm.weight", GGML_TYPE_F32, T_NORM, s->dim, 1)
        T("ffn_gate.weight", s->type, T_MAT, s->dim, s->ff)
        T("ffn_up.weight", s->type, T_MAT, s->dim, s->ff)
        T("ffn_down.weight", s->type, T_MAT, s->ff, s->dim)
#undef T
    }
    for (size_t i = 0; i < r.n; i++) {
        uint64_t ne[2] = {(uint64_t)r.t[i].k, (uint64_t)r.t[i].m};
        if ((rc = gguf_writer_add_tensor(w, r.t[i].name, r.t[i].type, r.t[i].m == 1 ? 1 : 2, ne,
                                         NULL)))
            goto out;
    }
    char err[200];
    if (path)
        rc = gguf_writer_write(w, path, fill, &r, err, sizeof err);
    else
        rc = gguf_writer_write_mem(w, fill, &r, mem, len);
out:
    if (toks)
        for (int i = 0; i < s->vocab; i++)
            kith_free(toks[i]);
    kith_free(toks);
    kith_free(scores);
    kith_free(types);
    kith_free(r.t);
    kith_free(r.row);
    gguf_writer_free(w);
    return rc;
}

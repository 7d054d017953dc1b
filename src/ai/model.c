/*
 * model.c: turns a GGUF file into a kith_model. Every hyper-parameter comes
 * from the metadata ({arch}.embedding_length, .block_count, ...); every
 * tensor's type and shape is checked against them before the forward pass
 * may touch it, so a hostile file is an error here, never a wild read later.
 * Weights stay in the read-only mapping (the weights are never copied); only
 * norm vectors stored as F16/BF16 are converted into small f32 copies.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "ai/tokenizer.h"
#include "util/util_int.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__))

static int meta_u32(const gguf_file *f, const char *arch, const char *key, int *out,
                    int required, char *err, size_t errlen)
{
    char full[128];
    uint32_t v;
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = gguf_get_u32(f, full, &v);
    if (rc == KITH_ENOTFOUND && !required)
        return 0;
    if (rc != 0) {
        ERR("metadata '%s': %s", full, rc == KITH_ENOTFOUND ? "missing" : kith_strerror(rc));
        return rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc;
    }
    if (v > (1u << 30)) {
        ERR("metadata '%s': %u is out of range", full, v);
        return KITH_ECORRUPT;
    }
    *out = (int)v;
    return 0;
}

static int meta_f32(const gguf_file *f, const char *arch, const char *key, float *out)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = gguf_get_f32(f, full, out);
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

/* Finds tensor @name with shape [k][m] (ne0 = k) and a supported type. */
static int get_weight(const gguf_file *f, const char *name, int k, int m, int required,
                      struct ai_weight *w, char *err, size_t errlen)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    memset(w, 0, sizeof *w);
    if (!t) {
        if (!required)
            return 0;
        ERR("tensor '%s' is missing", name);
        return KITH_ECORRUPT;
    }
    if (!quant_supported(t->type)) {
        const char *tn = gguf_ggml_type_name(t->type);
        ERR("tensor '%s': type %s is not supported", name, tn ? tn : "?");
        return KITH_EUNSUPPORTED;
    }
    if (t->ne[0] != (uint64_t)k || t->ne[1] != (uint64_t)m || t->ne[2] != 1 || t->ne[3] != 1) {
        ERR("tensor '%s': shape [%llu, %llu] where [%d, %d] was expected", name,
            (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], k, m);
        return KITH_ECORRUPT;
    }
    if (k % (int)quant_blck(t->type) != 0) {
        ERR("tensor '%s': row of %d is not a multiple of the %s block", name, k,
            gguf_ggml_type_name(t->type));
        return KITH_ECORRUPT;
    }
    w->type = t->type;
    w->k = k;
    w->m = m;
    w->row_bytes = quant_row_bytes(t->type, (size_t)k);
    w->data = t->data;
    if (w->row_bytes * (size_t)m > t->nbytes) {
        ERR("tensor '%s': data is shorter than its shape", name);
        return KITH_ECORRUPT;
    }
    return 0;
}

/* A 1-D f32 vector of @n; converted (and owned by @m) if stored otherwise. */
static int get_vec(kith_model *m, const char *name, int n, int required, const float **out,
                   char *err, size_t errlen)
{
    struct ai_weight w;
    *out = NULL;
    int rc = get_weight(m->gguf, name, n, 1, required, &w, err, errlen);
    if (rc || !w.data)
        return rc;
    if (w.type == GGML_TYPE_F32 && ((uintptr_t)w.data & 3) == 0) {
        *out = (const float *)w.data;
        return 0;
    }
    float **owned = kith_realloc(m->owned, (m->n_owned + 1) * sizeof *owned);
    if (!owned)
        return KITH_ENOMEM;
    m->owned = owned;
    float *v = kith_malloc((size_t)n * sizeof(float));
    if (!v)
        return KITH_ENOMEM;
    m->owned[m->n_owned++] = v;
    quant_dequant_row(w.type, w.data, v, (size_t)n);
    *out = v;
    return 0;
}

static int load_layers(kith_model *m, char *err, size_t errlen)
{
    int rc = 0, dim = m->dim, qd = m->n_head * m->head_dim, kvd = m->n_head_kv * m->head_dim;
    char name[96];
    for (int l = 0; l < m->n_layer && rc == 0; l++) {
        struct ai_layer *L = &m->layers[l];
#define W(field, suffix, k, mm)                                                          \
    if (rc == 0) {                                                                       \
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);                      \
        rc = get_weight(m->gguf, name, k, mm, 1, &L->field, err, errlen);                \
    }
#define V(field, suffix, n, req, kind)                                                   \
    if (rc == 0) {                                                                       \
        snprintf(name, sizeof name, "blk.%d.%s.%s", l, suffix, kind);                    \
        rc = get_vec(m, name, n, req, &L->field, err, errlen);                           \
    }
        W(wq, "attn_q", dim, qd)
        W(wk, "attn_k", dim, kvd)
        W(wv, "attn_v", dim, kvd)
        W(wo, "attn_output", qd, dim)
        W(w_gate, "ffn_gate", dim, m->ff)
        W(w_up, "ffn_up", dim, m->ff)
        W(w_down, "ffn_down", m->ff, dim)
        V(attn_norm, "attn_norm", dim, 1, "weight")
        V(ffn_norm, "ffn_norm", dim, 1, "weight")
        int need_bias = m->arch == AI_ARCH_QWEN2;
        V(bq, "attn_q", qd, need_bias, "bias")
        V(bk, "attn_k", kvd, need_bias, "bias")
        V(bv, "attn_v", kvd, need_bias, "bias")
#undef W
#undef V
    }
    return rc;
}

static uint64_t weight_params(const struct ai_weight *w)
{
    return (uint64_t)w->k * (uint64_t)w->m;
}

int kith_model_load(const char *path, kith_model **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    if (!path)
        return KITH_EINVAL;
    kith_model *m = kith_calloc(1, sizeof *m);
    if (!m)
        return KITH_ENOMEM;
    int rc = gguf_open(path, &m->gguf, err, errlen);
    if (rc)
        goto fail;
    const gguf_file *f = m->gguf;

    const char *s;
    size_t len;
    if (gguf_get_str(f, "general.architecture", &s, &len) != 0) {
        ERR("metadata 'general.architecture' is missing");
        rc = KITH_ECORRUPT;
        goto fail;
    }
    if (len == 5 && !memcmp(s, "llama", 5)) {
        m->arch = AI_ARCH_LLAMA;
    } else if (len == 5 && !memcmp(s, "qwen2", 5)) {
        m->arch = AI_ARCH_QWEN2;
    } else {
        ERR("architecture '%.*s' is not supported (llama, qwen2 are)", (int)(len > 40 ? 40 : len), s);
        rc = KITH_EUNSUPPORTED;
        goto fail;
    }
    memcpy(m->arch_name, s, len);
    if (gguf_get_str(f, "general.name", &s, &len) == 0) {
        if (len >= sizeof m->name)
            len = sizeof m->name - 1;
        memcpy(m->name, s, len);
    }

    const char *a = m->arch_name;
    m->n_ctx_train = 2048;
    if ((rc = meta_u32(f, a, "embedding_length", &m->dim, 1, err, errlen)) ||
        (rc = meta_u32(f, a, "block_count", &m->n_layer, 1, err, errlen)) ||
        (rc = meta_u32(f, a, "feed_forward_length", &m->ff, 1, err, errlen)) ||
        (rc = meta_u32(f, a, "attention.head_count", &m->n_head, 1, err, errlen)) ||
        (rc = meta_u32(f, a, "context_length", &m->n_ctx_train, 0, err, errlen)))
        goto fail;
    m->n_head_kv = m->n_head;
    if ((rc = meta_u32(f, a, "attention.head_count_kv", &m->n_head_kv, 0, err, errlen)))
        goto fail;
    if (m->dim <= 0 || m->n_layer <= 0 || m->ff <= 0 || m->n_head <= 0 || m->n_head_kv <= 0 ||
        m->n_head % m->n_head_kv != 0 || m->dim % m->n_head != 0 || m->n_layer > 4096) {
        ERR("inconsistent hyper-parameters (dim %d, layers %d, heads %d/%d)", m->dim, m->n_layer,
            m->n_head, m->n_head_kv);
        rc = KITH_ECORRUPT;
        goto fail;
    }
    m->head_dim = m->dim / m->n_head;
    if ((rc = meta_u32(f, a, "attention.key_length", &m->head_dim, 0, err, errlen)))
        goto fail;
    m->rope_dim = m->head_dim;
    if ((rc = meta_u32(f, a, "rope.dimension_count", &m->rope_dim, 0, err, errlen)))
        goto fail;
    if (m->head_dim <= 0 || m->head_dim > 1024 || (m->head_dim & 1) || m->rope_dim <= 0 ||
        m->rope_dim > m->head_dim || (m->rope_dim & 1)) {
        ERR("inconsistent head size %d / rope dimensions %d", m->head_dim, m->rope_dim);
        rc = KITH_ECORRUPT;
        goto fail;
    }
    m->rms_eps = 1e-5f;
    m->rope_base = 10000.f;
    m->rope_scale = 1.f;
    float factor = 0;
    if ((rc = meta_f32(f, a, "attention.layer_norm_rms_epsilon", &m->rms_eps)) ||
        (rc = meta_f32(f, a, "rope.freq_base", &m->rope_base)) ||
        (rc = meta_f32(f, a, "rope.scaling.factor", &factor))) {
        ERR("metadata: bad rms epsilon, rope base or scaling factor");
        goto fail;
    }
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    if (gguf_get_str(f, key, &s, &len) == 0) {
        /* linear: positions are divided by the factor. "llama3" scaling comes
         * as the rope_freqs tensor; yarn is not implemented. */
        if (len == 6 && !memcmp(s, "linear", 6) && factor > 0)
            m->rope_scale = 1.f / factor;
        else if (len == 4 && !memcmp(s, "yarn", 4)) {
            ERR("rope scaling 'yarn' is not supported");
            rc = KITH_EUNSUPPORTED;
            goto fail;
        }
    }
    if (!(m->rope_base > 0) || !(m->rms_eps > 0) || !isfinite(m->rope_base)) {
        ERR("metadata: rope base and rms epsilon must be positive");
        rc = KITH_ECORRUPT;
        goto fail;
    }
    m->rope_neox = m->arch == AI_ARCH_QWEN2;

    const struct gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te || te->n_dims != 2 || te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        ERR("tensor 'token_embd.weight' is missing or malformed");
        rc = KITH_ECORRUPT;
        goto fail;
    }
    m->n_vocab = (int)te->ne[1];
    if ((rc = get_weight(f, "token_embd.weight", m->dim, m->n_vocab, 1, &m->tok_embd, err,
                         errlen)) ||
        (rc = get_weight(f, "output.weight", m->dim, m->n_vocab, 0, &m->output, err, errlen)) ||
        (rc = get_vec(m, "output_norm.weight", m->dim, 1, &m->output_norm, err, errlen)) ||
        (rc = get_vec(m, "rope_freqs.weight", m->rope_dim / 2, 0, &m->rope_freqs, err, errlen)))
        goto fail;
    if (!m->output.data)
        m->output = m->tok_embd; /* tied embeddings */

    m->layers = kith_calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) {
        rc = KITH_ENOMEM;
        goto fail;
    }
    if ((rc = load_layers(m, err, errlen)))
        goto fail;

    /* parameter count and the dominant matrix type */
    uint64_t by_type[GGML_TYPE_COUNT] = {0};
    m->n_params = weight_params(&m->tok_embd) + (uint64_t)m->dim;
    if (m->output.data != m->tok_embd.data)
        m->n_params += weight_params(&m->output);
    for (int l = 0; l < m->n_layer; l++) {
        const struct ai_weight *ws[] = {&m->layers[l].wq,     &m->layers[l].wk,
                                        &m->layers[l].wv,     &m->layers[l].wo,
                                        &m->layers[l].w_gate, &m->layers[l].w_up,
                                        &m->layers[l].w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            m->n_params += weight_params(ws[i]);
            by_type[ws[i]->type] += weight_params(ws[i]);
        }
        m->n_params += 2 * (uint64_t)m->dim;
    }
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++)
        if (by_type[t] > by_type[m->ftype])
            m->ftype = t;

    /* tokenizer and chat template */
    char terr[160];
    rc = tokenizer_load(f, &m->tok, terr, sizeof terr);
    if (rc) {
        ERR("tokenizer: %s", terr);
        goto fail;
    }
    if (tokenizer_n_vocab(m->tok) != (size_t)m->n_vocab)
        kith_log(KITH_LOG_WARN, "tokenizer has %zu tokens, the model %d",
                 tokenizer_n_vocab(m->tok), m->n_vocab);
    m->bos = tokenizer_bos(m->tok);
    m->eos = tokenizer_eos(m->tok);
    m->add_bos = tokenizer_add_bos(m->tok);
    if (gguf_get_str(f, "tokenizer.chat_template", &s, &len) == 0)
        m->tmpl = ai_chat_detect(s, len);
    else
        m->tmpl = AI_TMPL_NONE;
    *out = m;
    return 0;
fail:
    if (!err[0])
        ERR("%s", kith_strerror(rc));
    kith_model_free(m);
    return rc;
}

void kith_model_free(kith_model *m)
{
    if (!m)
        return;
    if (m->tok)
        tokenizer_free(m->tok);
    for (size_t i = 0; i < m->n_owned; i++)
        kith_free(m->owned[i]);
    kith_free(m->owned);
    kith_free(m->layers);
    gguf_close(m->gguf);
    kith_free(m);
}

int kith_gguf_check(const char *path, char *err, size_t errlen)
{
    gguf_file *f = NULL;
    if (!path)
        return KITH_EINVAL;
    /* gguf_open validates every offset, size and tensor extent against the
     * file; nothing more is needed to know the reader will accept it. */
    int rc = gguf_open(path, &f, err, errlen);
    gguf_close(f);
    return rc;
}

int kith_model_info(const kith_model *m, struct kith_model_info *info)
{
    if (!m || !info || info->size < sizeof *info)
        return KITH_EINVAL;
    size_t size = info->size;
    memset(info, 0, size);
    info->size = size;
    info->arch = m->arch_name;
    info->name = m->name;
    const char *tn = gguf_ggml_type_name(m->ftype);
    info->ftype = tn ? tn : "?";
    const char *s;
    size_t len;
    info->tokenizer = "?";
    if (gguf_get_str(m->gguf, "tokenizer.ggml.model", &s, &len) == 0)
        info->tokenizer = (len == 5 && !memcmp(s, "llama", 5)) ? "llama"
                          : (len == 4 && !memcmp(s, "gpt2", 4)) ? "gpt2"
                                                                 : "other";
    info->chat_template = ai_chat_name(m->tmpl);
    info->n_params = m->n_params;
    info->file_bytes = gguf_size(m->gguf);
    info->n_vocab = m->n_vocab;
    info->n_embd = m->dim;
    info->n_layer = m->n_layer;
    info->n_head = m->n_head;
    info->n_head_kv = m->n_head_kv;
    info->n_ff = m->ff;
    info->n_ctx_train = m->n_ctx_train;
    info->rope_base = m->rope_base;
    return 0;
}

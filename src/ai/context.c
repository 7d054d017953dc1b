/*
 * context.c: a kith_ctx owns everything one conversation needs, allocated
 * once here: the f16 KV cache, the activation buffers for a batch, the RoPE
 * table and the thread pool. Nothing is allocated per token afterwards.
 */
#include <math.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "util/util_int.h"

/* Below this many parameters a context runs on one thread by default. */
#define AI_TINY_PARAMS 2000000

void kith_ctx_params_init(struct kith_ctx_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
}

/* cos/sin of every (position, frequency) pair for positions up to @n_pos,
 * computed the way ggml's rope cache does: theta = pos * base^(-2i/n_dims),
 * by repeated multiplication in float, divided by the Llama 3 frequency
 * factor, times the linear scale. Rows are filled as positions are first
 * used rather than all in kith_ctx_new: a 4096-position table of a real
 * model is a quarter of a million cosf/sinf calls, milliseconds that would
 * delay the first token. */
void ai_rope_table(kith_ctx *c, int n_pos)
{
    const kith_model *m = c->m;
    int half = m->rope_dim / 2;
    float theta_scale = powf(m->rope_base, -2.0f / (float)m->rope_dim);
    for (int p = c->rope_rows; p < n_pos; p++) {
        float theta = (float)p;
        for (int i = 0; i < half; i++) {
            float t = theta;
            if (m->rope_freqs)
                t /= m->rope_freqs[i];
            t *= m->rope_scale;
            c->rope_cos[(size_t)p * half + i] = cosf(t);
            c->rope_sin[(size_t)p * half + i] = sinf(t);
            theta *= theta_scale;
        }
    }
    if (n_pos > c->rope_rows)
        c->rope_rows = n_pos;
}

static size_t act_row(const struct ai_weight *w)
{
    return quant_row_bytes(quant_dot_type(w->type), (size_t)w->k);
}

/* The largest activation row, in its dot type, over every matrix. */
static size_t max_act_row(const kith_model *m)
{
    size_t best = act_row(&m->output);
    for (int l = 0; l < m->n_layer; l++) {
        const struct ai_layer *L = &m->layers[l];
        const struct ai_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
                                        &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            best = act_row(ws[i]) > best ? act_row(ws[i]) : best;
    }
    return best;
}

static size_t max_k(const kith_model *m)
{
    size_t best = (size_t)m->output.k;
    for (int l = 0; l < m->n_layer; l++) {
        const struct ai_layer *L = &m->layers[l];
        const struct ai_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
                                        &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            best = (size_t)ws[i]->k > best ? (size_t)ws[i]->k : best;
    }
    return best;
}

static int check_act_blocks(const kith_model *m)
{
    /* activations quantized in blocks need k to be a multiple of that block */
    for (int l = 0; l < m->n_layer; l++) {
        const struct ai_layer *L = &m->layers[l];
        const struct ai_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
                                        &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->k % (int)quant_blck(quant_dot_type(ws[i]->type)))
                return KITH_ECORRUPT;
    }
    if (m->output.k % (int)quant_blck(quant_dot_type(m->output.type)))
        return KITH_ECORRUPT;
    return 0;
}

int kith_ctx_new(kith_model *m, const struct kith_ctx_params *p, kith_ctx **out)
{
    struct kith_ctx_params def;
    *out = NULL;
    if (!m)
        return KITH_EINVAL;
    if (!p) {
        kith_ctx_params_init(&def);
        p = &def;
    }
    if (p->size < sizeof(size_t) + 3 * sizeof(int))
        return KITH_EINVAL;
    int rc = check_act_blocks(m);
    if (rc)
        return rc;
    kith_ctx *c = kith_calloc(1, sizeof *c);
    if (!c)
        return KITH_ENOMEM;
    c->m = m;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : (m->n_ctx_train < 4096 ? m->n_ctx_train : 4096);
    if (c->n_ctx < 1)
        c->n_ctx = 1;
    c->n_batch = p->n_batch > 0 ? p->n_batch : 256;
    if (c->n_batch > c->n_ctx)
        c->n_batch = c->n_ctx;
    /* Default: one thread per physical core, except for tiny models (the
     * bundled stories260K), whose matmuls take microseconds: there, handing
     * work to a second thread and waiting for it costs more than it saves,
     * and starting the pool (and reading the CPU topology from sysfs) is a
     * visible part of the time to first token. */
    if (p->n_threads > 0)
        c->n_threads = p->n_threads;
    else
        c->n_threads = m->n_params < AI_TINY_PARAMS ? 1 : ai_physical_cores();
    if (c->n_threads > 256)
        c->n_threads = 256;
    atomic_init(&c->cancel, 0);

    size_t B = (size_t)c->n_batch, d = (size_t)m->dim, hd = (size_t)m->head_dim;
    size_t qd = (size_t)m->n_head * hd, kvd = (size_t)m->n_head_kv * hd, ff = (size_t)m->ff;
    size_t kv = (size_t)m->n_layer * (size_t)c->n_ctx * kvd;
    size_t half = (size_t)m->rope_dim / 2;
    c->qact_row_max = max_act_row(m);
    c->tact_k_max = max_k(m);
    /* sizes named once: they are allocated below and added up for kith_ctx_mem_bytes */
    size_t kv_b = kv * sizeof(uint16_t), d_b = B * d * sizeof(float), q_b = B * qd * sizeof(float);
    size_t kvd_b = B * kvd * sizeof(float), ff_b = B * ff * sizeof(float);
    size_t scores_b = (size_t)c->n_threads * ((size_t)c->n_ctx + hd) * sizeof(float);
    size_t qact_b = B * c->qact_row_max + 64, tact_b = B * QUANT_TILE_BYTES(c->tact_k_max) + 64;
    size_t logits_b = B * (size_t)m->n_vocab * sizeof(float);
    size_t rope_b = (size_t)c->n_ctx * half * sizeof(float), embd_b = d * sizeof(double) * 2;
    /* The KV cache is not cleared: a position is written before anything
     * reads it, and untouched pages of a large cache cost neither time (a
     * 4096-position cache of a 1B model is hundreds of MB) nor memory. */
    if (!(c->k_cache = kith_malloc(kv_b)) || !(c->v_cache = kith_malloc(kv_b)) ||
        !(c->x = kith_malloc(d_b)) || !(c->xb = kith_malloc(d_b)) ||
        !(c->xb2 = kith_malloc(d_b)) || !(c->q = kith_malloc(q_b)) ||
        !(c->k = kith_malloc(kvd_b)) || !(c->v = kith_malloc(kvd_b)) ||
        !(c->att = kith_malloc(q_b)) || !(c->hb = kith_malloc(ff_b)) ||
        !(c->hb2 = kith_malloc(ff_b)) || !(c->scores = kith_malloc(scores_b)) ||
        !(c->qact = kith_malloc(qact_b)) || !(c->tact = kith_malloc(tact_b)) ||
        !(c->logits = kith_malloc(logits_b)) || !(c->rope_cos = kith_malloc(rope_b)) ||
        !(c->rope_sin = kith_malloc(rope_b)) || !(c->embd_acc = kith_malloc(embd_b))) {
        rc = KITH_ENOMEM;
        goto fail;
    }
    c->kv_bytes = 2 * (uint64_t)kv_b;
    c->mem_bytes = c->kv_bytes + 3 * (uint64_t)d_b + 2 * (uint64_t)q_b + 2 * (uint64_t)kvd_b +
                   2 * (uint64_t)ff_b + scores_b + qact_b + tact_b + logits_b +
                   2 * (uint64_t)rope_b + embd_b;
    rc = ai_pool_new(c->n_threads, &c->pool);
    if (rc)
        goto fail;
    *out = c;
    return 0;
fail:
    kith_ctx_free(c);
    return rc;
}

void kith_ctx_free(kith_ctx *c)
{
    if (!c)
        return;
    ai_pool_free(c->pool);
    void *bufs[] = {c->k_cache, c->v_cache, c->x,      c->xb,       c->xb2,      c->q,
                    c->k,       c->v,       c->att,    c->hb,       c->hb2,      c->scores,
                    c->qact,    c->tact,    c->logits,  c->rope_cos, c->rope_sin, c->embd_acc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        kith_free(bufs[i]);
    kith_free(c);
}

int kith_ctx_n_ctx(const kith_ctx *c)
{
    return c->n_ctx;
}

int kith_ctx_threads(const kith_ctx *c)
{
    return c ? c->n_threads : 0;
}

uint64_t kith_ctx_kv_bytes(const kith_ctx *c)
{
    return c ? c->kv_bytes : 0;
}

uint64_t kith_ctx_mem_bytes(const kith_ctx *c)
{
    return c ? c->mem_bytes : 0;
}

int kith_ctx_n_past(const kith_ctx *c)
{
    return c->n_past;
}

void kith_ctx_truncate(kith_ctx *c, int n_past)
{
    if (n_past < 0)
        n_past = 0;
    if (n_past < c->n_past)
        c->n_past = n_past;
}

void kith_ctx_cancel(kith_ctx *c)
{
    if (c)
        atomic_store(&c->cancel, 1);
}

int kith_eval(kith_ctx *c, const int32_t *tokens, size_t n, int all_logits)
{
    if (!c || (!tokens && n))
        return KITH_EINVAL;
    if (n == 0)
        return 0;
    if ((size_t)c->n_past + n > (size_t)c->n_ctx)
        return KITH_ERANGE;
    if (all_logits && n > (size_t)c->n_batch)
        return KITH_ETOOBIG; /* the logits of one batch are what is kept */
    for (size_t i = 0; i < n; i += (size_t)c->n_batch) {
        size_t nb = n - i < (size_t)c->n_batch ? n - i : (size_t)c->n_batch;
        int last = i + nb == n;
        int rc = ai_forward(c, tokens + i, (int)nb, all_logits, !last);
        if (rc)
            return rc;
    }
    return 0;
}

const float *kith_logits(kith_ctx *c, int i)
{
    if (!c || c->n_logits == 0)
        return NULL;
    if (i < 0)
        i = c->n_logits - 1;
    if (i >= c->n_logits)
        return NULL;
    return c->logits + (size_t)i * c->m->n_vocab;
}

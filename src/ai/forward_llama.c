/*
 * forward_llama.c: the transformer of the llama family (llama, qwen2), for a
 * batch of n tokens at once so that prompt processing is matrix x matrix.
 * One readable forward() in the manner of llama2.c's run.c; shapes are noted
 * as [rows][cols] with n = tokens in the batch, d = model dim, hd = head dim.
 *
 * Numerics follow llama.cpp's CPU path where it matters for reproducing its
 * greedy outputs: activations are rounded to the weights' dot type before
 * each matmul (quant.h), the KV cache is f16, queries are rounded to f16
 * before the q.k products, and the RMS-norm and softmax sums run in double.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"

/* ---- matmul: y[n][m] = x[n][k] . W[m][k]^T ---- */

struct mm_task {
    const struct ai_weight *w;
    const uint8_t *a;  /* activation rows in the dot type */
    size_t a_stride;   /* bytes between activation rows */
    int n;
    float *y;
    quant_dot_fn dot;
    quant_dot_multi_fn dot4;
    int chunk;
    atomic_int next;
};

static void mm_worker(void *arg, int ith, int nth)
{
    struct mm_task *t = arg;
    const struct ai_weight *w = t->w;
    for (;;) {
        int r0 = atomic_fetch_add_explicit(&t->next, t->chunk, memory_order_relaxed);
        if (r0 >= w->m)
            break;
        int r1 = r0 + t->chunk < w->m ? r0 + t->chunk : w->m;
        for (int r = r0; r < r1; r++) {
            const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
            int j = 0;
            if (t->dot4) {
                for (; j + 4 <= t->n; j += 4) {
                    float o[4];
                    t->dot4((size_t)w->k, wr, t->a + (size_t)j * t->a_stride, t->a_stride, 4, o);
                    for (int i = 0; i < 4; i++)
                        t->y[(size_t)(j + i) * w->m + r] = o[i];
                }
            }
            for (; j < t->n; j++)
                t->y[(size_t)j * w->m + r] =
                    t->dot((size_t)w->k, wr, t->a + (size_t)j * t->a_stride);
        }
    }
}

struct act_task {
    quant_quantize_fn fn;
    quant_tile_prep_fn prep;
    const float *x;
    int k, n;
    uint8_t *dst;
    size_t stride;
    uint8_t *tdst;
    size_t tstride;
};

static void act_worker(void *arg, int ith, int nth)
{
    struct act_task *t = arg;
    for (int j = ith; j < t->n; j += nth) {
        uint8_t *q = t->dst + (size_t)j * t->stride;
        t->fn(t->x + (size_t)j * t->k, q, (size_t)t->k);
        if (t->prep)
            t->prep(q, t->tdst + (size_t)j * t->tstride, (size_t)t->k);
    }
}

/* Tiled matmul: rows in contiguous chunks (a multiple of 4) handed out by an
 * atomic counter; inside a chunk, columns in blocks of TILE_COLS so that the
 * chunk's weights and the block's prepared activations stay in L2, and 4x4
 * tiles within. Rows past the last multiple of 4 use the plain dot. */
#define TILE_COLS 64

struct tile_task {
    const struct ai_weight *w;
    const uint8_t *a, *ta; /* plain dot-type rows, prepared rows */
    size_t a_stride, ta_stride;
    int n, chunk;
    float *y;
    quant_tile_fn tile;
    quant_dot_fn dot;
    atomic_int next;
};

static void tile_worker(void *arg, int ith, int nth)
{
    struct tile_task *t = arg;
    const struct ai_weight *w = t->w;
    int m4 = w->m & ~3;
    (void)ith;
    (void)nth;
    for (;;) {
        int r0 = atomic_fetch_add_explicit(&t->next, t->chunk, memory_order_relaxed);
        if (r0 >= w->m)
            break;
        int r1 = r0 + t->chunk < w->m ? r0 + t->chunk : w->m;
        int t1 = r1 < m4 ? r1 : m4;
        for (int c0 = 0; c0 < t->n; c0 += TILE_COLS) {
            int c1 = c0 + TILE_COLS < t->n ? c0 + TILE_COLS : t->n;
            for (int r = r0; r < t1; r += 4) {
                const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
                for (int c = c0; c < c1; c += 4)
                    t->tile((size_t)w->k, wr, w->row_bytes, t->ta + (size_t)c * t->ta_stride,
                            t->ta_stride, c1 - c < 4 ? c1 - c : 4, t->y + (size_t)c * w->m + r,
                            (size_t)w->m);
            }
            for (int r = t1 > r0 ? t1 : r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    t->y[(size_t)c * w->m + r] = t->dot((size_t)w->k, w->data + (size_t)r * w->row_bytes,
                                                        t->a + (size_t)c * t->a_stride);
        }
    }
}

static int mm_chunk(int m, int nth, int align)
{
    /* ~16 chunks per thread: when a neighbour takes a core, the threads
     * still running pick up the chunks a descheduled one has not reached */
    int chunk = m / (nth * 16);
    if (chunk < 16)
        chunk = 16;
    chunk = (chunk + align - 1) / align * align;
    return chunk < align ? align : chunk;
}

void ai_matmul(kith_ctx *c, const struct ai_weight *w, const float *x, int n, float *y)
{
    const struct quant_kernels *K = quant_kernels();
    uint32_t dt = quant_dot_type(w->type);
    int nth = ai_pool_threads(c->pool);
    /* tile kernels without a tile_prep read the plain dot-type rows */
    quant_tile_prep_fn prep = K->tile_prep[w->type];
    /* the quantized tiles work in 64-element blocks; the F32 tile masks its tail */
    int tiled = K->tile4[w->type] && (w->k % 64 == 0 || w->type == GGML_TYPE_F32) && w->m >= 4 &&
                (!prep || (size_t)w->k <= c->tact_k_max);
    struct mm_task t = {.w = w, .n = n, .y = y, .dot = K->dot[w->type], .dot4 = K->dot4[w->type]};
    if (dt == GGML_TYPE_F32) {
        t.a = (const uint8_t *)x;
        t.a_stride = (size_t)w->k * sizeof(float);
    } else {
        struct act_task at = {K->act[dt], tiled ? prep : NULL, x, w->k, n,
                              c->qact, quant_row_bytes(dt, (size_t)w->k), c->tact,
                              QUANT_TILE_BYTES((size_t)w->k)};
        if (n >= 4)
            ai_pool_run(c->pool, act_worker, &at);
        else
            act_worker(&at, 0, 1);
        t.a = c->qact;
        t.a_stride = at.stride;
    }
    int small = nth == 1 || (size_t)w->m * (size_t)w->k * (size_t)n < 32768;
    if (tiled) {
        struct tile_task tt = {.w = w, .a = t.a, .ta = prep ? c->tact : t.a,
                               .a_stride = t.a_stride,
                               .ta_stride = prep ? QUANT_TILE_BYTES((size_t)w->k) : t.a_stride,
                               .n = n,
                               .chunk = mm_chunk(w->m, nth, 4), .y = y,
                               .tile = K->tile4[w->type], .dot = K->dot[w->type]};
        atomic_init(&tt.next, 0);
        if (small)
            tile_worker(&tt, 0, 1);
        else
            ai_pool_run(c->pool, tile_worker, &tt);
        return;
    }
    t.chunk = mm_chunk(w->m, nth, 1);
    atomic_init(&t.next, 0);
    if (small)
        mm_worker(&t, 0, 1);
    else
        ai_pool_run(c->pool, mm_worker, &t);
}

/* ---- small row operations ---- */

/* out = x / rms(x) * w over each of n rows of d. */
static void rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps)
{
    for (int j = 0; j < n; j++, x += d, out += d) {
        double ss = 0;
        for (int i = 0; i < d; i++)
            ss += (double)(x[i] * x[i]);
        float scale = 1.0f / sqrtf((float)(ss / d) + eps);
        for (int i = 0; i < d; i++)
            out[i] = (x[i] * scale) * w[i];
    }
}

/* Rotates each head of a row [n_heads][hd] for position @pos. */
static void rope(const kith_model *m, const kith_ctx *c, float *row, int n_heads, int pos)
{
    int half = m->rope_dim / 2;
    const float *cs = c->rope_cos + (size_t)pos * half, *sn = c->rope_sin + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = row + (size_t)h * m->head_dim;
        for (int i = 0; i < half; i++) {
            /* norm: adjacent pairs (llama's converter permutes q/k for this);
             * neox: element i pairs with i + rope_dim/2 */
            int i0 = m->rope_neox ? i : 2 * i, i1 = m->rope_neox ? i + half : 2 * i + 1;
            float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * cs[i] - x1 * sn[i];
            v[i1] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* ---- attention ---- */

struct att_task {
    kith_ctx *c;
    int layer, n;
    atomic_int next;
};

/* One (token, head) pair per step: scores over positions 0..pos, softmax,
 * weighted sum of V. K and V come from the cache, which already holds this
 * batch's entries. */
static void att_worker(void *arg, int ith, int nth)
{
    struct att_task *t = arg;
    kith_ctx *c = t->c;
    const kith_model *m = c->m;
    const struct quant_kernels *K = quant_kernels();
    int hd = m->head_dim, qd = m->n_head * hd, kvd = m->n_head_kv * hd;
    int group = m->n_head / m->n_head_kv;
    float *sc = c->scores + (size_t)ith * (size_t)(c->n_ctx + hd);
    uint16_t *q16 = (uint16_t *)(sc + c->n_ctx);
    const uint16_t *kc = c->k_cache + (size_t)t->layer * c->n_ctx * kvd;
    const uint16_t *vc = c->v_cache + (size_t)t->layer * c->n_ctx * kvd;
    float scale = 1.0f / sqrtf((float)hd);
    int small = K->att_small && hd % 8 == 0 && hd <= 32;
    for (;;) {
        int job = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (job >= t->n * m->n_head)
            break;
        int i = job / m->n_head, h = job % m->n_head, pos = c->n_past + i;
        int kvh = h / group;
        const float *q = c->q + (size_t)i * qd + (size_t)h * hd;
        K->act[GGML_TYPE_F16](q, q16, (size_t)hd);
        float *out = c->att + (size_t)i * qd + (size_t)h * hd;
        if (small) { /* the same sums in one call (quant_att_fn) */
            K->att_small((size_t)hd, q16, kc + (size_t)kvh * hd, vc + (size_t)kvh * hd,
                         (size_t)kvd, pos + 1, scale, sc, out);
            continue;
        }
        // sc[p] = q . k[p] * scale   for p in 0..pos
        float mx = -INFINITY;
        for (int p = 0; p <= pos; p++) {
            sc[p] = K->dot[GGML_TYPE_F16]((size_t)hd, kc + (size_t)p * kvd + (size_t)kvh * hd, q16) *
                    scale;
            mx = sc[p] > mx ? sc[p] : mx;
        }
        double sum = 0;
        for (int p = 0; p <= pos; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = (float)(1.0 / sum);
        // out[hd] = sum_p sc[p] * v[p]
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int p = 0; p <= pos; p++) {
            const uint16_t *v = vc + (size_t)p * kvd + (size_t)kvh * hd;
            K->axpy_f16((size_t)hd, sc[p] * inv, v, out);
        }
    }
}

/* ---- the forward pass ---- */

static void add_bias(float *y, const float *b, int n, int d)
{
    if (!b)
        return;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < d; i++)
            y[(size_t)j * d + i] += b[i];
}

int ai_forward(kith_ctx *c, const int32_t *tokens, int n, int all_logits, int no_logits)
{
    const kith_model *m = c->m;
    int d = m->dim, hd = m->head_dim, qd = m->n_head * hd, kvd = m->n_head_kv * hd, ff = m->ff;
    quant_quantize_fn to_f16 = quant_kernels()->act[GGML_TYPE_F16];
    if (n <= 0 || n > c->n_batch)
        return KITH_EINVAL;
    if (c->n_past + n > c->n_ctx)
        return KITH_ERANGE;
    if (c->n_past + n > c->rope_rows)
        ai_rope_table(c, c->n_past + n);

    // x[n][d] = embedding rows
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            return KITH_EINVAL;
        quant_dequant_row(m->tok_embd.type,
                          m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes,
                          c->x + (size_t)i * d, (size_t)d);
    }

    for (int l = 0; l < m->n_layer; l++) {
        const struct ai_layer *L = &m->layers[l];
        if (atomic_load_explicit(&c->cancel, memory_order_relaxed))
            return KITH_ECANCELED;

        // attention: q[n][qd], k,v[n][kvd]
        rmsnorm(c->xb, c->x, L->attn_norm, n, d, m->rms_eps);
        ai_matmul(c, &L->wq, c->xb, n, c->q);
        ai_matmul(c, &L->wk, c->xb, n, c->k);
        ai_matmul(c, &L->wv, c->xb, n, c->v);
        add_bias(c->q, L->bq, n, qd);
        add_bias(c->k, L->bk, n, kvd);
        add_bias(c->v, L->bv, n, kvd);
        for (int i = 0; i < n; i++) {
            int pos = c->n_past + i;
            rope(m, c, c->q + (size_t)i * qd, m->n_head, pos);
            rope(m, c, c->k + (size_t)i * kvd, m->n_head_kv, pos);
            uint16_t *kc = c->k_cache + ((size_t)l * c->n_ctx + pos) * kvd;
            uint16_t *vc = c->v_cache + ((size_t)l * c->n_ctx + pos) * kvd;
            /* the F16 activation kernel rounds as quant_f32_to_f16 does, 8 at a time */
            to_f16(c->k + (size_t)i * kvd, kc, (size_t)kvd);
            to_f16(c->v + (size_t)i * kvd, vc, (size_t)kvd);
        }
        struct att_task at = {.c = c, .layer = l, .n = n};
        atomic_init(&at.next, 0);
        if (n * m->n_head * (c->n_past + n) < 4096)
            att_worker(&at, 0, 1);
        else
            ai_pool_run(c->pool, att_worker, &at);

        // x += att[n][qd] . Wo^T
        ai_matmul(c, &L->wo, c->att, n, c->xb2);
        for (size_t e = 0; e < (size_t)n * d; e++)
            c->x[e] += c->xb2[e];

        // ffn: x += (silu(xb Wg^T) * (xb Wu^T)) Wd^T
        rmsnorm(c->xb, c->x, L->ffn_norm, n, d, m->rms_eps);
        ai_matmul(c, &L->w_gate, c->xb, n, c->hb);
        ai_matmul(c, &L->w_up, c->xb, n, c->hb2);
        for (size_t e = 0; e < (size_t)n * ff; e++) {
            float g = c->hb[e];
            c->hb[e] = g / (1.0f + expf(-g)) * c->hb2[e];
        }
        ai_matmul(c, &L->w_down, c->hb, n, c->xb2);
        for (size_t e = 0; e < (size_t)n * d; e++)
            c->x[e] += c->xb2[e];
    }

    // final norm, in place: c->x holds the hidden states embeddings read
    rmsnorm(c->x, c->x, m->output_norm, n, d, m->rms_eps);
    c->n_past += n;
    if (no_logits) {
        c->n_logits = 0;
        return 0;
    }
    if (all_logits) {
        ai_matmul(c, &m->output, c->x, n, c->logits);
        c->n_logits = n;
    } else {
        ai_matmul(c, &m->output, c->x + (size_t)(n - 1) * d, 1, c->logits);
        c->n_logits = 1;
    }
    c->logits_all = all_logits;
    return 0;
}

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

/* ---- matmul: y[n][m] = x[n][k] . W[m][k]^T ----
 *
 * One pool job computes up to three matrices that read the same input (Q, K
 * and V; gate and up), so a layer needs fewer round trips through the pool:
 * the job's chunks of rows are numbered across the matrices and handed out
 * by one atomic counter. With @glu (gate and up), a chunk computes the same
 * rows of both and leaves silu(gate) * up in the gate's output. The inputs
 * are rounded to the dot type once, by a job of their own when the batch is
 * large enough to share, and laid out for the kernels that read them:
 * panels of 16 tokens for batches of 16 or more (gemm16), the tile layout
 * otherwise (tile4, also for one token), plain dot products as the last
 * resort. */

#define MM_PARTS 3

struct mm_part {
    const struct ai_weight *w;
    float *y;
    int chunk, n_chunks;
};

struct mm_task {
    struct mm_part p[MM_PARTS];
    int np, glu, n, total;
    const uint8_t *a;  /* activation rows in the dot type */
    size_t a_stride;   /* bytes between activation rows */
    const uint8_t *ta; /* tile layout (or = a) */
    size_t ta_stride;
    const uint8_t *pa; /* panels of 16 tokens */
    size_t pa_stride;
    int mode; /* MM_PANEL, MM_TILE, MM_DOT */
    const struct quant_kernels *K;
    atomic_int next;
};

enum { MM_DOT, MM_TILE, MM_PANEL };

/* Tiled: columns in blocks of TILE_COLS so that the chunk's weights and the
 * block's prepared activations stay in L2, and 4x4 tiles within. Rows past
 * the last multiple of 4 use the plain dot. */
#define TILE_COLS 64

/* Weight rows per gemm16 call for @type. */
static int panel_rows(const struct quant_kernels *K, uint32_t type)
{
    return K->gemm_rows[type] ? K->gemm_rows[type] : 4;
}

static void mm_rows(const struct mm_task *t, const struct mm_part *p, int r0, int r1)
{
    const struct ai_weight *w = p->w;
    const struct quant_kernels *K = t->K;
    uint32_t ty = w->type;
    size_t k = (size_t)w->k, rb = w->row_bytes, m = (size_t)w->m;
    float *y = p->y;
    if (t->mode == MM_PANEL) {
        /* a 16-row (AMX) kernel takes all the panels in one call */
        int step = panel_rows(K, ty), cols = step == 16 ? t->n : 16;
        for (int r = r0; r < r1; r += step) {
            const uint8_t *wr = w->data + (size_t)r * rb;
            int nr = r1 - r < step ? r1 - r : step;
            for (int c = 0; c < t->n; c += cols)
                K->gemm16[ty](k, wr, rb, nr, t->pa + (size_t)(c / 16) * t->pa_stride,
                              t->n - c < cols ? t->n - c : cols, y + (size_t)c * m + r, m);
        }
        return;
    }
    if (t->mode == MM_TILE) {
        int m4 = w->m & ~3, t1 = r1 < m4 ? r1 : m4;
        for (int c0 = 0; c0 < t->n; c0 += TILE_COLS) {
            int c1 = c0 + TILE_COLS < t->n ? c0 + TILE_COLS : t->n;
            for (int r = r0; r < t1; r += 4) {
                const uint8_t *wr = w->data + (size_t)r * rb;
                for (int c = c0; c < c1; c += 4)
                    K->tile4[ty](k, wr, rb, t->ta + (size_t)c * t->ta_stride, t->ta_stride,
                                 c1 - c < 4 ? c1 - c : 4, y + (size_t)c * m + r, m);
            }
            for (int r = t1 > r0 ? t1 : r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    y[(size_t)c * m + r] =
                        K->dot[ty](k, w->data + (size_t)r * rb, t->a + (size_t)c * t->a_stride);
        }
        return;
    }
    for (int r = r0; r < r1; r++) {
        const uint8_t *wr = w->data + (size_t)r * rb;
        int j = 0;
        if (K->dot4[ty]) {
            for (; j + 4 <= t->n; j += 4) {
                float o[4];
                K->dot4[ty](k, wr, t->a + (size_t)j * t->a_stride, t->a_stride, 4, o);
                for (int i = 0; i < 4; i++)
                    y[(size_t)(j + i) * m + r] = o[i];
            }
        }
        for (; j < t->n; j++)
            y[(size_t)j * m + r] = K->dot[ty](k, wr, t->a + (size_t)j * t->a_stride);
    }
}

static void mm_worker(void *arg, int ith, int nth)
{
    struct mm_task *t = arg;
    (void)ith;
    (void)nth;
    for (;;) {
        int i = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (i >= t->total)
            break;
        int pi = 0;
        while (i >= t->p[pi].n_chunks)
            i -= t->p[pi++].n_chunks;
        const struct mm_part *p = &t->p[pi];
        int r0 = i * p->chunk, r1 = r0 + p->chunk < p->w->m ? r0 + p->chunk : p->w->m;
        mm_rows(t, p, r0, r1);
        if (t->glu) { /* rows r0..r1 of up too, then gate = silu(gate) * up */
            mm_rows(t, &t->p[1], r0, r1);
            size_t m = (size_t)p->w->m;
            for (int c = 0; c < t->n; c++) {
                float *g = p->y + (size_t)c * m, *u = t->p[1].y + (size_t)c * m;
                for (int r = r0; r < r1; r++)
                    g[r] = g[r] / (1.0f + expf(-g[r])) * u[r];
            }
        }
    }
}

struct act_task {
    quant_quantize_fn fn;
    quant_tile_prep_fn prep;
    quant_panel_prep_fn panel;
    const float *x;
    int k, n;
    uint8_t *dst;
    size_t stride;
    uint8_t *tdst;
    size_t tstride;
};

/* Rounds the rows to the dot type and lays them out: by groups of 16 rows
 * (one panel each) or row by row (tiles). */
static void act_worker(void *arg, int ith, int nth)
{
    struct act_task *t = arg;
    if (t->panel) {
        for (int g = ith; g * 16 < t->n; g += nth) {
            int nt = t->n - g * 16 < 16 ? t->n - g * 16 : 16;
            uint8_t *q = t->dst + (size_t)g * 16 * t->stride;
            for (int j = 0; j < nt; j++)
                t->fn(t->x + (size_t)(g * 16 + j) * t->k, q + (size_t)j * t->stride, (size_t)t->k);
            t->panel(q, t->stride, nt, t->tdst + (size_t)g * t->tstride, (size_t)t->k);
        }
        return;
    }
    for (int j = ith; j < t->n; j += nth) {
        uint8_t *q = t->dst + (size_t)j * t->stride;
        t->fn(t->x + (size_t)j * t->k, q, (size_t)t->k);
        if (t->prep)
            t->prep(q, t->tdst + (size_t)j * t->tstride, (size_t)t->k);
    }
}

static int mm_chunk(int m, int nth, int align)
{
    /* ~8 chunks per thread: when a neighbour takes a core, the threads
     * still running pick up the chunks a descheduled one has not reached */
    int chunk = m / (nth * 8);
    if (chunk < 16)
        chunk = 16;
    chunk = (chunk + align - 1) / align * align;
    return chunk < align ? align : chunk;
}

/* y_i[n][m_i] = x[n][k] . W_i^T for the @np weights (same k, same dot type
 * and layout); with @glu, np is 2 and y_0 becomes silu(y_0) * y_1. */
static void matmul_multi(kith_ctx *c, const struct ai_weight *const *ws, float *const *ys, int np,
                         int glu, const float *x, int n)
{
    const struct quant_kernels *K = quant_kernels();
    const struct ai_weight *w = ws[0];
    uint32_t dt = quant_dot_type(w->type);
    int nth = ai_pool_threads(c->pool);
    struct mm_task t = {.np = np, .glu = glu, .n = n, .K = K, .mode = MM_DOT};
    /* the quantized tiles work in 64-element blocks; the F32 tile masks its tail */
    quant_tile_prep_fn prep = K->tile_prep[w->type];
    int tiled = K->tile4[w->type] && (w->k % 64 == 0 || w->type == GGML_TYPE_F32) &&
                (!prep || (size_t)w->k <= c->tact_k_max);
    /* panels: 16 or more tokens; ceil(n/16)*16 rows of panel fit in tact */
    int panel = n >= 16 && K->gemm16[w->type] && (size_t)w->k <= c->tact_k_max;
    for (int i = 0; i < np; i++) {
        if (ws[i]->m < 4)
            tiled = 0;
        if (!K->gemm16[ws[i]->type] || K->panel_prep[ws[i]->type] != K->panel_prep[w->type])
            panel = 0;
    }
    if (panel) {
        t.mode = MM_PANEL;
    } else if (tiled) {
        t.mode = MM_TILE;
        prep = K->tile_prep[w->type];
    }
    if (dt == GGML_TYPE_F32) {
        t.a = t.ta = (const uint8_t *)x;
        t.a_stride = t.ta_stride = (size_t)w->k * sizeof(float);
    } else {
        struct act_task at = {.fn = K->act[dt],
                              .x = x,
                              .k = w->k,
                              .n = n,
                              .dst = c->qact,
                              .stride = quant_row_bytes(dt, (size_t)w->k),
                              .tdst = c->tact};
        if (t.mode == MM_PANEL) {
            at.panel = K->panel_prep[w->type];
            at.tstride = QUANT_PANEL_BYTES((size_t)w->k);
        } else if (t.mode == MM_TILE && prep) {
            at.prep = prep;
            at.tstride = QUANT_TILE_BYTES((size_t)w->k);
        }
        if (n >= 4)
            ai_pool_run(c->pool, act_worker, &at);
        else
            act_worker(&at, 0, 1);
        t.a = c->qact;
        t.a_stride = at.stride;
        t.ta = at.prep ? c->tact : t.a;
        t.ta_stride = at.prep ? at.tstride : t.a_stride;
        t.pa = c->tact;
        t.pa_stride = at.tstride;
    }
    /* chunks of whole kernel calls (16 rows for AMX panels); with glu the
     * gate's chunks are the up's too, so the largest of the parts' */
    int align = 4;
    for (int i = 0; t.mode == MM_PANEL && i < np; i++)
        if (panel_rows(K, ws[i]->type) > align)
            align = panel_rows(K, ws[i]->type);
    size_t work = 0;
    for (int i = 0; i < np; i++) {
        struct mm_part *p = &t.p[i];
        p->w = ws[i];
        p->y = ys[i];
        p->chunk = mm_chunk(ws[i]->m, nth, align);
        p->n_chunks = (ws[i]->m + p->chunk - 1) / p->chunk;
        work += (size_t)ws[i]->m * (size_t)ws[i]->k * (size_t)n;
    }
    if (glu) {
        t.p[1].chunk = t.p[0].chunk;
        t.total = t.p[0].n_chunks;
    } else {
        for (int i = 0; i < np; i++)
            t.total += t.p[i].n_chunks;
    }
    atomic_init(&t.next, 0);
    if (nth == 1 || work < 32768)
        mm_worker(&t, 0, 1);
    else
        ai_pool_run(c->pool, mm_worker, &t);
}

/* Whether @a and @b can share one matmul_multi job. */
static int mm_same(const struct ai_weight *a, const struct ai_weight *b)
{
    const struct quant_kernels *K = quant_kernels();
    return a->k == b->k && quant_dot_type(a->type) == quant_dot_type(b->type) &&
           K->tile_prep[a->type] == K->tile_prep[b->type] &&
           !K->tile4[a->type] == !K->tile4[b->type] &&
           K->panel_prep[a->type] == K->panel_prep[b->type] &&
           !K->gemm16[a->type] == !K->gemm16[b->type];
}

void ai_matmul(kith_ctx *c, const struct ai_weight *w, const float *x, int n, float *y)
{
    matmul_multi(c, &w, &y, 1, 0, x, n);
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
    quant_att_fn fused = small                                    ? K->att_small
                         : K->att_wide && (hd == 64 || hd == 128) ? K->att_wide
                                                                  : NULL;
    for (;;) {
        int job = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (job >= t->n * m->n_head)
            break;
        int i = job / m->n_head, h = job % m->n_head, pos = c->n_past + i;
        int kvh = h / group;
        const float *q = c->q + (size_t)i * qd + (size_t)h * hd;
        K->act[GGML_TYPE_F16](q, q16, (size_t)hd);
        float *out = c->att + (size_t)i * qd + (size_t)h * hd;
        if (fused) { /* the same sums in one call (quant_att_fn) */
            fused((size_t)hd, q16, kc + (size_t)kvh * hd, vc + (size_t)kvh * hd, (size_t)kvd,
                  pos + 1, scale, sc, out);
            continue;
        }
        // sc[p] = q . k[p] * scale   for p in 0..pos
        float mx = -INFINITY;
        for (int p = 0; p <= pos; p++) {
            sc[p] =
                K->dot[GGML_TYPE_F16]((size_t)hd, kc + (size_t)p * kvd + (size_t)kvh * hd, q16) *
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
        {
            /* Q, K and V in as few jobs as their formats allow */
            const struct ai_weight *ws[3] = {&L->wq, &L->wk, &L->wv};
            float *ys[3] = {c->q, c->k, c->v};
            for (int i = 0; i < 3;) {
                int j = i + 1;
                while (j < 3 && mm_same(ws[i], ws[j]))
                    j++;
                matmul_multi(c, ws + i, ys + i, j - i, 0, c->xb, n);
                i = j;
            }
        }
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
        /* a head over a few dozen positions is already worth a second thread */
        if (n * m->n_head * (c->n_past + n) < 512)
            att_worker(&at, 0, 1);
        else
            ai_pool_run(c->pool, att_worker, &at);

        // x += att[n][qd] . Wo^T
        ai_matmul(c, &L->wo, c->att, n, c->xb2);
        for (size_t e = 0; e < (size_t)n * d; e++)
            c->x[e] += c->xb2[e];

        // ffn: x += (silu(xb Wg^T) * (xb Wu^T)) Wd^T
        rmsnorm(c->xb, c->x, L->ffn_norm, n, d, m->rms_eps);
        if (mm_same(&L->w_gate, &L->w_up)) {
            const struct ai_weight *ws[2] = {&L->w_gate, &L->w_up};
            float *ys[2] = {c->hb, c->hb2};
            matmul_multi(c, ws, ys, 2, 1, c->xb, n);
        } else {
            ai_matmul(c, &L->w_gate, c->xb, n, c->hb);
            ai_matmul(c, &L->w_up, c->xb, n, c->hb2);
            for (size_t e = 0; e < (size_t)n * ff; e++) {
                float g = c->hb[e];
                c->hb[e] = g / (1.0f + expf(-g)) * c->hb2[e];
            }
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

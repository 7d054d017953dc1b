/*
 * quant_ref.c: the scalar oracle for every tensor format the engine reads.
 * Plain loops, one block at a time, written to be checked against ggml's
 * layouts rather than to be fast; the SIMD kernels in arch/ are tested
 * against these functions. The activation roundings (Q8_0, Q8_K) follow
 * ggml's reference code exactly so that outputs match llama.cpp's.
 */
#include <assert.h>
#include <math.h>

#include "ai/quant.h"

static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");
static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
static_assert(sizeof(blk_q5_0) == 22, "q5_0 block");
static_assert(sizeof(blk_q4_K) == 144, "q4_K block");
static_assert(sizeof(blk_q5_K) == 176, "q5_K block");
static_assert(sizeof(blk_q6_K) == 210, "q6_K block");
static_assert(sizeof(blk_q8_K) == 292, "q8_K block");

/* ---- traits ---- */

struct traits {
    size_t blck, size;
    uint32_t dot_type;
    int can_quantize;
};

static struct traits traits_of(uint32_t type)
{
    switch (type) {
    case GGML_TYPE_F32: return (struct traits){1, 4, GGML_TYPE_F32, 1};
    case GGML_TYPE_F16: return (struct traits){1, 2, GGML_TYPE_F16, 1};
    case GGML_TYPE_BF16: return (struct traits){1, 2, GGML_TYPE_BF16, 1};
    case GGML_TYPE_Q8_0: return (struct traits){QK, sizeof(blk_q8_0), GGML_TYPE_Q8_0, 1};
    case GGML_TYPE_Q4_0: return (struct traits){QK, sizeof(blk_q4_0), GGML_TYPE_Q8_0, 1};
    case GGML_TYPE_Q5_0: return (struct traits){QK, sizeof(blk_q5_0), GGML_TYPE_Q8_0, 0};
    case GGML_TYPE_Q4_K: return (struct traits){QK_K, sizeof(blk_q4_K), GGML_TYPE_Q8_K, 1};
    case GGML_TYPE_Q5_K: return (struct traits){QK_K, sizeof(blk_q5_K), GGML_TYPE_Q8_K, 1};
    case GGML_TYPE_Q6_K: return (struct traits){QK_K, sizeof(blk_q6_K), GGML_TYPE_Q8_K, 1};
    case GGML_TYPE_Q8_K: return (struct traits){QK_K, sizeof(blk_q8_K), GGML_TYPE_Q8_K, 1};
    default: return (struct traits){0, 0, 0, 0};
    }
}

int quant_supported(uint32_t type)
{
    return traits_of(type).blck != 0 && type != GGML_TYPE_Q8_K;
}

size_t quant_blck(uint32_t type)
{
    return traits_of(type).blck;
}

size_t quant_type_size(uint32_t type)
{
    return traits_of(type).size;
}

size_t quant_row_bytes(uint32_t type, size_t n)
{
    struct traits t = traits_of(type);
    return t.blck ? n / t.blck * t.size : 0;
}

uint32_t quant_dot_type(uint32_t type)
{
    return traits_of(type).dot_type;
}

int quant_can_quantize(uint32_t type)
{
    return traits_of(type).can_quantize;
}

/* ---- K-quant scale packing: 8 (scale, min) pairs of 6 bits in 12 bytes ---- */

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void put_scale_min_k4(int j, uint8_t *q, uint8_t sc, uint8_t m)
{
    if (j < 4) {
        q[j] = (uint8_t)((q[j] & 0xC0) | sc);
        q[j + 4] = (uint8_t)((q[j + 4] & 0xC0) | m);
    } else {
        q[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
        q[j - 4] = (uint8_t)((q[j - 4] & 0x3F) | ((sc >> 4) << 6));
        q[j] = (uint8_t)((q[j] & 0x3F) | ((m >> 4) << 6));
    }
}

/* ---- dequantize ---- */

static void dq_q8_0(const blk_q8_0 *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++) {
        float d = quant_f16_to_f32(x[i].d);
        for (int j = 0; j < QK; j++)
            y[i * QK + j] = d * x[i].qs[j];
    }
}

static void dq_q4_0(const blk_q4_0 *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++) {
        float d = quant_f16_to_f32(x[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[i * QK + j] = d * ((x[i].qs[j] & 0xF) - 8);
            y[i * QK + j + QK / 2] = d * ((x[i].qs[j] >> 4) - 8);
        }
    }
}

static void dq_q5_0(const blk_q5_0 *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++) {
        float d = quant_f16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[i * QK + j] = d * (((x[i].qs[j] & 0xF) | (h0 << 4)) - 16);
            y[i * QK + j + QK / 2] = d * (((x[i].qs[j] >> 4) | (h1 << 4)) - 16);
        }
    }
}

static void dq_q4_K(const blk_q4_K *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = quant_f16_to_f32(x[i].d), dmin = quant_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        /* 4 chunks of 64: low nibbles are sub-block 2c, high nibbles 2c+1 */
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc0, m0, sc1, m1;
            get_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d0 * (q[l] & 0xF) - mm0;
                y[64 * c + 32 + l] = d1 * (q[l] >> 4) - mm1;
            }
        }
    }
}

static void dq_q5_K(const blk_q5_K *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = quant_f16_to_f32(x[i].d), dmin = quant_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc0, m0, sc1, m1;
            get_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            float d0 = d * sc0, mm0 = dmin * m0, d1 = d * sc1, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++) {
                int h0 = (x[i].qh[l] >> (2 * c)) & 1, h1 = (x[i].qh[l] >> (2 * c + 1)) & 1;
                y[64 * c + l] = d0 * ((q[l] & 0xF) | (h0 << 4)) - mm0;
                y[64 * c + 32 + l] = d1 * ((q[l] >> 4) | (h1 << 4)) - mm1;
            }
        }
    }
}

/* Element e of a Q6_K super-block: 6-bit value (0..63) and its scale index. */
static int q6_K_get(const blk_q6_K *x, int e)
{
    int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = x->ql + 64 * h, *qh = x->qh + 32 * h;
    int lo = (quarter & 1) ? ql[l + 32] : ql[l];
    lo = (quarter & 2) ? lo >> 4 : lo & 0xF;
    int hi = (qh[l] >> (2 * quarter)) & 3;
    return lo | (hi << 4);
}

static void dq_q6_K(const blk_q6_K *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = quant_f16_to_f32(x[i].d);
        for (int e = 0; e < QK_K; e++)
            y[e] = d * x[i].scales[e / 16] * (q6_K_get(&x[i], e) - 32);
    }
}

static void dq_q8_K(const blk_q8_K *x, float *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

void quant_ref_dequant_row(uint32_t type, const void *src, float *dst, size_t n)
{
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = quant_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case GGML_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = quant_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case GGML_TYPE_Q8_0: dq_q8_0(src, dst, n); break;
    case GGML_TYPE_Q4_0: dq_q4_0(src, dst, n); break;
    case GGML_TYPE_Q5_0: dq_q5_0(src, dst, n); break;
    case GGML_TYPE_Q4_K: dq_q4_K(src, dst, n); break;
    case GGML_TYPE_Q5_K: dq_q5_K(src, dst, n); break;
    case GGML_TYPE_Q6_K: dq_q6_K(src, dst, n); break;
    case GGML_TYPE_Q8_K: dq_q8_K(src, dst, n); break;
    default: memset(dst, 0, n * sizeof(float)); break;
    }
}

/* ---- quantize ---- */

/* ggml's quantize_row_q8_0_ref: the scale is rounded to f16 after computing
 * the inverse from the unrounded value; ties round away from zero (roundf). */
static void q_q8_0(const float *x, blk_q8_0 *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* Activation rounding for the Q8_0 dot products: ggml's x86 path (what
 * llama.cpp runs on this kind of machine): id = 127/amax, ties to even. The
 * SIMD versions produce the same bytes. */
static void act_q8_0(const float *x, blk_q8_0 *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK; j++)
            y[i].qs[j] = (int8_t)lrintf(x[j] * id);
    }
}

void quant_ref_act_q8_0(const float *src, void *dst, size_t n)
{
    act_q8_0(src, dst, n);
}

/* ggml's quantize_row_q4_0_ref: the element of largest magnitude maps to -8. */
static void q_q4_0(const float *x, blk_q4_0 *y, size_t n)
{
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            int a = (int)(int8_t)(x[j] * id + 8.5f), b = (int)(int8_t)(x[j + QK / 2] * id + 8.5f);
            a = a > 15 ? 15 : a;
            b = b > 15 ? 15 : b;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* ggml's quantize_row_q8_K_ref (round half to even, as its nearest_int). */
static void q_q8_K(const float *x, blk_q8_K *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            long v = lrintf(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1.f / iscale;
    }
}

static int clampi(long v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int)v;
}

/* Q4_K / Q5_K weights: each 32-element sub-block gets an affine range
 * [min, max] (min clamped to <= 0 as ggml does, so zero stays exact-ish);
 * the 8 scales and mins are then coded in 6 bits against the super-block's
 * d and dmin, and the elements re-quantized against the coded values.
 * Simpler than ggml's iterative search, within the same error bound. */
static void q_kquant_affine(const float *x, uint16_t *pd, uint16_t *pdmin, uint8_t *scales,
                            uint8_t *qv, int nmax)
{
    float sc[8], mn[8], max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        float lo = 0, hi = -INFINITY;
        for (int l = 0; l < 32; l++) {
            lo = fminf(lo, x[32 * j + l]);
            hi = fmaxf(hi, x[32 * j + l]);
        }
        sc[j] = (hi - lo) / nmax;
        mn[j] = -lo;
        max_sc = fmaxf(max_sc, sc[j]);
        max_mn = fmaxf(max_mn, mn[j]);
    }
    float d = max_sc / 63.f, dmin = max_mn / 63.f;
    *pd = quant_f32_to_f16(d);
    *pdmin = quant_f32_to_f16(dmin);
    float dr = quant_f16_to_f32(*pd), dminr = quant_f16_to_f32(*pdmin);
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        int ls = dr > 0 ? clampi(lrintf(sc[j] / dr), 0, 63) : 0;
        int lm = dminr > 0 ? clampi(lrintf(mn[j] / dminr), 0, 63) : 0;
        put_scale_min_k4(j, scales, (uint8_t)ls, (uint8_t)lm);
        float ds = dr * ls, m = dminr * lm;
        for (int l = 0; l < 32; l++)
            qv[32 * j + l] = (uint8_t)(ds > 0 ? clampi(lrintf((x[32 * j + l] + m) / ds), 0, nmax) : 0);
    }
}

static void q_q4_K(const float *x, blk_q4_K *y, size_t n)
{
    uint8_t qv[QK_K];
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        q_kquant_affine(x, &y[i].d, &y[i].dmin, y[i].scales, qv, 15);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(qv[64 * c + l] | (qv[64 * c + 32 + l] << 4));
    }
}

static void q_q5_K(const float *x, blk_q5_K *y, size_t n)
{
    uint8_t qv[QK_K];
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        q_kquant_affine(x, &y[i].d, &y[i].dmin, y[i].scales, qv, 31);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = qv[64 * c + l], b = qv[64 * c + 32 + l];
                y[i].qs[32 * c + l] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
                y[i].qh[l] |= (uint8_t)(((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1)));
            }
    }
}

/* Q6_K: symmetric, a signed 8-bit scale per 16 elements against the f16 d. */
static void q_q6_K(const float *x, blk_q6_K *y, size_t n)
{
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float sc[16], max_sc = 0;
        for (int s = 0; s < 16; s++) {
            float amax = 0;
            for (int l = 0; l < 16; l++)
                amax = fmaxf(amax, fabsf(x[16 * s + l]));
            sc[s] = amax / 31.f;
            max_sc = fmaxf(max_sc, sc[s]);
        }
        float d = max_sc / 127.f;
        y[i].d = quant_f32_to_f16(d);
        float dr = quant_f16_to_f32(y[i].d);
        int q[QK_K];
        for (int s = 0; s < 16; s++) {
            int ls = dr > 0 ? clampi(lrintf(sc[s] / dr), 0, 127) : 0;
            y[i].scales[s] = (int8_t)ls;
            float ds = dr * ls;
            for (int l = 0; l < 16; l++)
                q[16 * s + l] = ds > 0 ? clampi(lrintf(x[16 * s + l] / ds), -32, 31) + 32 : 32;
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int *b = q + 128 * h;
                int q1 = b[l], q2 = b[l + 32], q3 = b[l + 64], q4 = b[l + 96];
                y[i].ql[64 * h + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                y[i].ql[64 * h + l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                y[i].qh[32 * h + l] =
                    (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
    }
}

void quant_ref_quantize_row(uint32_t type, const float *src, void *dst, size_t n)
{
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = quant_f32_to_f16(src[i]);
        break;
    case GGML_TYPE_BF16:
        for (size_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = quant_f32_to_bf16(src[i]);
        break;
    case GGML_TYPE_Q8_0: q_q8_0(src, dst, n); break;
    case GGML_TYPE_Q4_0: q_q4_0(src, dst, n); break;
    case GGML_TYPE_Q4_K: q_q4_K(src, dst, n); break;
    case GGML_TYPE_Q5_K: q_q5_K(src, dst, n); break;
    case GGML_TYPE_Q6_K: q_q6_K(src, dst, n); break;
    case GGML_TYPE_Q8_K: q_q8_K(src, dst, n); break;
    default: break;
    }
}

/* ---- dot products: weight row (type) . activation row (dot type) ---- */

static float dot_f32(size_t n, const float *w, const float *a)
{
    double s = 0; /* as ggml's scalar code: the oracle should be the accurate one */
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * a[i];
    return (float)s;
}

static float dot_f16(size_t n, const uint16_t *w, const uint16_t *a)
{
    double s = 0; /* as ggml's scalar code: the oracle should be the accurate one */
    for (size_t i = 0; i < n; i++)
        s += (double)quant_f16_to_f32(w[i]) * quant_f16_to_f32(a[i]);
    return (float)s;
}

static float dot_bf16(size_t n, const uint16_t *w, const uint16_t *a)
{
    double s = 0; /* as ggml's scalar code: the oracle should be the accurate one */
    for (size_t i = 0; i < n; i++)
        s += (double)quant_bf16_to_f32(w[i]) * quant_bf16_to_f32(a[i]);
    return (float)s;
}

static float dot_q8_0(size_t n, const blk_q8_0 *x, const blk_q8_0 *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK; j++)
            sumi += x[i].qs[j] * y[i].qs[j];
        s += sumi * (quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d));
    }
    return s;
}

static float dot_q4_0(size_t n, const blk_q4_0 *x, const blk_q8_0 *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] +
                    ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK / 2];
        s += sumi * (quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d));
    }
    return s;
}

static float dot_q5_0(size_t n, const blk_q5_0 *x, const blk_q8_0 *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            sumi += (((x[i].qs[j] & 0xF) | (h0 << 4)) - 16) * y[i].qs[j] +
                    (((x[i].qs[j] >> 4) | (h1 << 4)) - 16) * y[i].qs[j + QK / 2];
        }
        s += sumi * (quant_f16_to_f32(x[i].d) * quant_f16_to_f32(y[i].d));
    }
    return s;
}

/* Q4_K/Q5_K: sum_j d*sc_j*(q.a)_j - dmin*m_j*(sum a)_j, the second term from
 * the Q8_K block sums. */
static float dot_q4_K(size_t n, const blk_q4_K *x, const blk_q8_K *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        for (int c = 0; c < 4; c++, q += 32, a += 64) {
            uint8_t sc0, m0, sc1, m1;
            get_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0xF) * a[l];
                s1 += (q[l] >> 4) * a[32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * c] + y[i].bsums[4 * c + 1]) +
                    m1 * (y[i].bsums[4 * c + 2] + y[i].bsums[4 * c + 3]);
        }
        s += y[i].d * quant_f16_to_f32(x[i].d) * sumi -
             y[i].d * quant_f16_to_f32(x[i].dmin) * summ;
    }
    return s;
}

static float dot_q5_K(size_t n, const blk_q5_K *x, const blk_q8_K *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        const uint8_t *q = x[i].qs;
        const int8_t *a = y[i].qs;
        for (int c = 0; c < 4; c++, q += 32, a += 64) {
            uint8_t sc0, m0, sc1, m1;
            get_scale_min_k4(2 * c, x[i].scales, &sc0, &m0);
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                int h0 = (x[i].qh[l] >> (2 * c)) & 1, h1 = (x[i].qh[l] >> (2 * c + 1)) & 1;
                s0 += ((q[l] & 0xF) | (h0 << 4)) * a[l];
                s1 += ((q[l] >> 4) | (h1 << 4)) * a[32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * c] + y[i].bsums[4 * c + 1]) +
                    m1 * (y[i].bsums[4 * c + 2] + y[i].bsums[4 * c + 3]);
        }
        s += y[i].d * quant_f16_to_f32(x[i].d) * sumi -
             y[i].d * quant_f16_to_f32(x[i].dmin) * summ;
    }
    return s;
}

static float dot_q6_K(size_t n, const blk_q6_K *x, const blk_q8_K *y)
{
    float s = 0;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int sb = 0; sb < 16; sb++) {
            int si = 0;
            for (int l = 0; l < 16; l++)
                si += (q6_K_get(&x[i], 16 * sb + l) - 32) * y[i].qs[16 * sb + l];
            sumi += x[i].scales[sb] * si;
        }
        s += quant_f16_to_f32(x[i].d) * y[i].d * sumi;
    }
    return s;
}

float quant_ref_dot(uint32_t type, size_t n, const void *w, const void *a)
{
    switch (type) {
    case GGML_TYPE_F32: return dot_f32(n, w, a);
    case GGML_TYPE_F16: return dot_f16(n, w, a);
    case GGML_TYPE_BF16: return dot_bf16(n, w, a);
    case GGML_TYPE_Q8_0: return dot_q8_0(n, w, a);
    case GGML_TYPE_Q4_0: return dot_q4_0(n, w, a);
    case GGML_TYPE_Q5_0: return dot_q5_0(n, w, a);
    case GGML_TYPE_Q4_K: return dot_q4_K(n, w, a);
    case GGML_TYPE_Q5_K: return dot_q5_K(n, w, a);
    case GGML_TYPE_Q6_K: return dot_q6_K(n, w, a);
    default: return 0;
    }
}

/* ---- the scalar kernel table ---- */

#define REF_DOT(T)                                                                    \
    static float ref_dot_##T(size_t n, const void *w, const void *a)                  \
    {                                                                                 \
        return quant_ref_dot(GGML_TYPE_##T, n, w, a);                                 \
    }
#define REF_ACT(T)                                                                    \
    static void ref_act_##T(const float *src, void *dst, size_t n)                    \
    {                                                                                 \
        quant_ref_quantize_row(GGML_TYPE_##T, src, dst, n);                           \
    }
REF_DOT(F32)
REF_DOT(F16)
REF_DOT(BF16)
REF_DOT(Q8_0)
REF_DOT(Q4_0)
REF_DOT(Q5_0)
REF_DOT(Q4_K)
REF_DOT(Q5_K)
REF_DOT(Q6_K)
REF_ACT(F32)
REF_ACT(F16)
REF_ACT(BF16)
REF_ACT(Q8_K)

void quant_ref_axpy_f16(size_t n, float s, const uint16_t *v, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] += s * quant_f16_to_f32(v[i]);
}

void quant_kernels_init_ref(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "scalar";
    k->dot[GGML_TYPE_F32] = ref_dot_F32;
    k->dot[GGML_TYPE_F16] = ref_dot_F16;
    k->dot[GGML_TYPE_BF16] = ref_dot_BF16;
    k->dot[GGML_TYPE_Q8_0] = ref_dot_Q8_0;
    k->dot[GGML_TYPE_Q4_0] = ref_dot_Q4_0;
    k->dot[GGML_TYPE_Q5_0] = ref_dot_Q5_0;
    k->dot[GGML_TYPE_Q4_K] = ref_dot_Q4_K;
    k->dot[GGML_TYPE_Q5_K] = ref_dot_Q5_K;
    k->dot[GGML_TYPE_Q6_K] = ref_dot_Q6_K;
    k->act[GGML_TYPE_F32] = ref_act_F32;
    k->act[GGML_TYPE_F16] = ref_act_F16;
    k->act[GGML_TYPE_BF16] = ref_act_BF16;
    k->act[GGML_TYPE_Q8_0] = quant_ref_act_q8_0;
    k->act[GGML_TYPE_Q8_K] = ref_act_Q8_K;
    k->axpy_f16 = quant_ref_axpy_f16;
}

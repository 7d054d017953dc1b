/*
 * quant_neon.c: AArch64 NEON kernels: the set quant_avx2.c provides (a dot
 * product per weight type, the activation roundings) for every type the
 * oracle knows, plus axpy_f16, 4-row dot products and small-head attention.
 *
 * NEON is part of the AArch64 base, so the "neon" level needs no check. The
 * int8 dot product instruction (SDOT, the Armv8.2 dotprod extension) is used
 * only by the "neon-dotprod" level, which quant.c picks when the kernel
 * reports HWCAP_ASIMDDP. The integer kernels (quant_neon_int.h) are built
 * twice from one text: plain, and under the dotprod target with SDOT.
 *
 * Integer block sums are exact in both, so the K-quant dots give the
 * oracle's bits; the 32-blocks and F32/F16/BF16 differ from it only in the
 * order of the float sums. The activation roundings give the oracle's bytes.
 * The 4-row versions keep each row's order, so they give the 1-row kernels'
 * bits, and att_small gives those of the dot_f16/axpy_f16 loop it replaces.
 */
#include "ai/quant.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float f16(uint16_t h)
{
    __fp16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x;
}

INLINE int8x16_t lo_nibbles(uint8x16_t b)
{
    return vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0xF)));
}

INLINE int8x16_t hi_nibbles(uint8x16_t b)
{
    return vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
}

/* ---- float rows ---- */

/* dot_f32's sums for NR rows (a + r*stride): 16 elements per step in four
 * accumulators, then 4 at a time into the first, then the scalar tail. Each
 * row is summed in the same order whatever NR is. */
INLINE void f32_body(size_t n, const float *w, const uint8_t *a, size_t stride, int NR, float *out)
{
    float32x4_t s[4][4];
    const float *ar[4];
    for (int r = 0; r < NR; r++) {
        ar[r] = (const float *)(a + (size_t)r * stride);
        for (int j = 0; j < 4; j++)
            s[r][j] = vdupq_n_f32(0);
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float32x4_t w0 = vld1q_f32(w + i), w1 = vld1q_f32(w + i + 4);
        float32x4_t w2 = vld1q_f32(w + i + 8), w3 = vld1q_f32(w + i + 12);
        for (int r = 0; r < NR; r++) {
            s[r][0] = vfmaq_f32(s[r][0], w0, vld1q_f32(ar[r] + i));
            s[r][1] = vfmaq_f32(s[r][1], w1, vld1q_f32(ar[r] + i + 4));
            s[r][2] = vfmaq_f32(s[r][2], w2, vld1q_f32(ar[r] + i + 8));
            s[r][3] = vfmaq_f32(s[r][3], w3, vld1q_f32(ar[r] + i + 12));
        }
    }
    for (; i + 4 <= n; i += 4) {
        float32x4_t w0 = vld1q_f32(w + i);
        for (int r = 0; r < NR; r++)
            s[r][0] = vfmaq_f32(s[r][0], w0, vld1q_f32(ar[r] + i));
    }
    for (int r = 0; r < NR; r++) {
        float t = vaddvq_f32(vaddq_f32(vaddq_f32(s[r][0], s[r][1]), vaddq_f32(s[r][2], s[r][3])));
        for (size_t j = i; j < n; j++)
            t += w[j] * ar[r][j];
        out[r] = t;
    }
}

static float dot_f32(size_t n, const void *w, const void *a)
{
    float o;
    f32_body(n, w, a, 0, 1, &o);
    return o;
}

static void dot4_f32(size_t n, const void *w, const void *a, size_t stride, int nr, float *out)
{
    if (nr == 4) {
        f32_body(n, w, a, stride, 4, out);
        return;
    }
    for (int r = 0; r < nr; r++)
        f32_body(n, w, (const uint8_t *)a + (size_t)r * stride, 0, 1, out + r);
}

INLINE float32x4_t ld_f16(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

INLINE float32x4_t ld_bf16(const uint16_t *p)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* 8 elements per step: lanes 0..3 into s0, 4..7 into s1 (att_small repeats
 * this order). */
static float dot_f16(size_t n, const void *wv, const void *av)
{
    const uint16_t *w = wv, *a = av;
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, ld_f16(w + i), ld_f16(a + i));
        s1 = vfmaq_f32(s1, ld_f16(w + i + 4), ld_f16(a + i + 4));
        s2 = vfmaq_f32(s2, ld_f16(w + i + 8), ld_f16(a + i + 8));
        s3 = vfmaq_f32(s3, ld_f16(w + i + 12), ld_f16(a + i + 12));
    }
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, ld_f16(w + i), ld_f16(a + i));
        s1 = vfmaq_f32(s1, ld_f16(w + i + 4), ld_f16(a + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s2), vaddq_f32(s1, s3)));
    for (; i < n; i++)
        s += f16(w[i]) * f16(a[i]);
    return s;
}

static float dot_bf16(size_t n, const void *wv, const void *av)
{
    const uint16_t *w = wv, *a = av;
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, ld_bf16(w + i), ld_bf16(a + i));
        s1 = vfmaq_f32(s1, ld_bf16(w + i + 4), ld_bf16(a + i + 4));
        s2 = vfmaq_f32(s2, ld_bf16(w + i + 8), ld_bf16(a + i + 8));
        s3 = vfmaq_f32(s3, ld_bf16(w + i + 12), ld_bf16(a + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, ld_bf16(w + i), ld_bf16(a + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s2), vaddq_f32(s1, s3)));
    for (; i < n; i++)
        s += quant_bf16_to_f32(w[i]) * quant_bf16_to_f32(a[i]);
    return s;
}

/* out += s * v, multiply and add rounded apart as the scalar loop does. */
static void axpy_f16(size_t n, float s, const uint16_t *v, float *out)
{
    float32x4_t sv = vdupq_n_f32(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t o0 = vaddq_f32(vld1q_f32(out + i), vmulq_f32(sv, ld_f16(v + i)));
        float32x4_t o1 = vaddq_f32(vld1q_f32(out + i + 4), vmulq_f32(sv, ld_f16(v + i + 4)));
        vst1q_f32(out + i, o0);
        vst1q_f32(out + i + 4, o1);
    }
    for (; i < n; i++)
        out[i] += s * f16(v[i]);
}

/* Attention of one head of NC*8 values (quant_att_fn): dot_f16's sums for a
 * row of 8..32 (s0 gets lanes 0..3 of each 8, s1 lanes 4..7, reduced as
 * (s0 + 0) + (s1 + 0)) and axpy_f16's per V row, with q and the output in
 * registers. The same bits as the per-position loop. */
INLINE void att_small_body(int NC, const uint16_t *q16, const uint16_t *k, const uint16_t *v,
                           size_t stride, int n_pos, float scale, float *sc, float *out)
{
    float32x4_t q[8], o[8];
    const float32x4_t z = vdupq_n_f32(0);
    for (int c = 0; c < 2 * NC; c++) {
        q[c] = ld_f16(q16 + 4 * c);
        o[c] = z;
    }
    float mx = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *kr = k + (size_t)p * stride;
        float32x4_t s0 = z, s1 = z;
        if (NC >= 2) { /* dot_f16's 16-wide steps, then one 8-wide */
            float32x4_t s2 = z, s3 = z;
            for (int c = 0; c + 2 <= NC; c += 2) {
                s0 = vfmaq_f32(s0, ld_f16(kr + 8 * c), q[2 * c]);
                s1 = vfmaq_f32(s1, ld_f16(kr + 8 * c + 4), q[2 * c + 1]);
                s2 = vfmaq_f32(s2, ld_f16(kr + 8 * c + 8), q[2 * c + 2]);
                s3 = vfmaq_f32(s3, ld_f16(kr + 8 * c + 12), q[2 * c + 3]);
            }
            if (NC & 1) {
                s0 = vfmaq_f32(s0, ld_f16(kr + 8 * (NC - 1)), q[2 * (NC - 1)]);
                s1 = vfmaq_f32(s1, ld_f16(kr + 8 * (NC - 1) + 4), q[2 * (NC - 1) + 1]);
            }
            sc[p] = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s2), vaddq_f32(s1, s3))) * scale;
        } else {
            s0 = vfmaq_f32(s0, ld_f16(kr), q[0]);
            s1 = vfmaq_f32(s1, ld_f16(kr + 4), q[1]);
            sc[p] = vaddvq_f32(vaddq_f32(vaddq_f32(s0, z), vaddq_f32(s1, z))) * scale;
        }
        mx = sc[p] > mx ? sc[p] : mx;
    }
    double sum = 0;
    for (int p = 0; p < n_pos; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = (float)(1.0 / sum);
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *vr = v + (size_t)p * stride;
        float32x4_t s = vdupq_n_f32(sc[p] * inv);
        for (int c = 0; c < 2 * NC; c++)
            o[c] = vaddq_f32(o[c], vmulq_f32(s, ld_f16(vr + 4 * c)));
    }
    for (int c = 0; c < 2 * NC; c++)
        vst1q_f32(out + 4 * c, o[c]);
}

static void att_small(size_t hd, const uint16_t *q16, const uint16_t *k, const uint16_t *v,
                      size_t stride, int n_pos, float scale, float *sc, float *out)
{
    switch (hd) {
    case 8:
        att_small_body(1, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    case 16:
        att_small_body(2, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    case 24:
        att_small_body(3, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    case 32:
        att_small_body(4, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    default:
        break; /* the caller only passes these */
    }
}

/* ---- integer kernels ---- */

/* Weight block @b of @type (Q8_0, Q4_0 or Q5_0) as 32 signed values:
 * elements 0..15 in @lo, 16..31 in @hi. */
INLINE void w32(uint32_t type, const uint8_t *b, int8x16_t *lo, int8x16_t *hi)
{
    if (type == GGML_TYPE_Q8_0) {
        const blk_q8_0 *x = (const blk_q8_0 *)b;
        *lo = vld1q_s8(x->qs);
        *hi = vld1q_s8(x->qs + 16);
    } else if (type == GGML_TYPE_Q4_0) {
        uint8x16_t q = vld1q_u8(((const blk_q4_0 *)b)->qs);
        *lo = vsubq_s8(lo_nibbles(q), vdupq_n_s8(8));
        *hi = vsubq_s8(hi_nibbles(q), vdupq_n_s8(8));
    } else { /* Q5_0: bit j of qh is element j's 5th bit */
        static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
        const blk_q5_0 *x = (const blk_q5_0 *)b;
        uint32_t qh;
        memcpy(&qh, x->qh, 4);
        uint8x16_t q = vld1q_u8(x->qs), bits = vld1q_u8(bit), b5 = vdupq_n_u8(0x10);
        uint8x16_t h0 = vcombine_u8(vdup_n_u8((uint8_t)qh), vdup_n_u8((uint8_t)(qh >> 8)));
        uint8x16_t h1 = vcombine_u8(vdup_n_u8((uint8_t)(qh >> 16)), vdup_n_u8((uint8_t)(qh >> 24)));
        h0 = vandq_u8(vtstq_u8(h0, bits), b5);
        h1 = vandq_u8(vtstq_u8(h1, bits), b5);
        *lo = vsubq_s8(vorrq_s8(lo_nibbles(q), vreinterpretq_s8_u8(h0)), vdupq_n_s8(16));
        *hi = vsubq_s8(vorrq_s8(hi_nibbles(q), vreinterpretq_s8_u8(h1)), vdupq_n_s8(16));
    }
}

/* 0x10 in the lanes whose byte of @qh has bit @bit set (Q5_K's 5th bits) */
INLINE int8x16_t bit5(uint8x16_t qh, int bit)
{
    uint8x16_t t = vtstq_u8(qh, vdupq_n_u8((uint8_t)(1u << bit)));
    return vreinterpretq_s8_u8(vandq_u8(t, vdupq_n_u8(0x10)));
}

/* The 8 (scale, min) pairs of a Q4_K/Q5_K super-block. */
INLINE void k4_scales(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (uint8_t)((q[j + 8] & 0xF) | ((q[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

/* 16 lanes l of each quarter k of a Q6_K half (elements 32k + l), q - 32:
 * low 4 bits from @ql (quarters 1 and 3 from ql + 32, 2 and 3 the high
 * nibbles), high 2 bits from @qh bits 2k, 2k+1. */
INLINE void q6_K_unpack(const uint8_t *ql, const uint8_t *qh, int8x16_t q[4])
{
    const uint8x16_t m4 = vdupq_n_u8(0xF), m3 = vdupq_n_u8(3);
    uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 32), hb = vld1q_u8(qh);
    uint8x16_t u[4];
    u[0] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4));
    u[1] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4));
    u[2] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4));
    u[3] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
    for (int k = 0; k < 4; k++)
        q[k] = vsubq_s8(vreinterpretq_s8_u8(u[k]), vdupq_n_s8(32));
}

#define CAT_(a, b) a##b
#define CAT(a, b)  CAT_(a, b)
#define FN(name)   CAT(name, SFX)

#define DP 0
#define SFX
#include "ai/arch/quant_neon_int.h"
#undef DP
#undef SFX

/* The dotprod copy: only this part is built for a target with dotprod, so
 * the compiler cannot put SDOT into the plain level's code (unless -march
 * already has it). gcc's vdotq_s32 wants Armv8.2 or later: added to an
 * older -march, just +dotprod to Armv8.3 and later (JCVT) or SVE ones, as
 * the inlined helpers' target must stay a subset of this one. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#if defined(__ARM_FEATURE_DOTPROD) || defined(__ARM_FEATURE_JCVT) || defined(__ARM_FEATURE_SVE)
#pragma GCC target("+dotprod")
#else
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#endif
#define DP  1
#define SFX _dp
#include "ai/arch/quant_neon_int.h"
#undef DP
#undef SFX
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

/* ---- activation roundings: the oracle's bytes ---- */

/* max |x| over @n (a multiple of 4) floats; a NaN is skipped, as fmaxf does */
INLINE float amax_f32(const float *x, int n)
{
    float32x4_t m = vdupq_n_f32(0);
    for (int j = 0; j < n; j += 4)
        m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    return vmaxnmvq_f32(m);
}

/* 16 floats times @s, rounded to nearest even (lrintf), at most @hi, to bytes */
INLINE int8x16_t round16(const float *x, float32x4_t s, int32x4_t hi)
{
    int32x4_t i0 = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x), s)), hi);
    int32x4_t i1 = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 4), s)), hi);
    int32x4_t i2 = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 8), s)), hi);
    int32x4_t i3 = vminq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 12), s)), hi);
    int16x8_t h0 = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
    int16x8_t h1 = vcombine_s16(vqmovn_s32(i2), vqmovn_s32(i3));
    return vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
}

static void act_q8_0(const float *x, void *dst, size_t n)
{
    blk_q8_0 *y = dst;
    const int32x4_t hi = vdupq_n_s32(127);
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float amax = amax_f32(x, QK);
        float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = quant_f32_to_f16(d);
        float32x4_t idv = vdupq_n_f32(id);
        vst1q_s8(y[i].qs, round16(x, idv, hi));
        vst1q_s8(y[i].qs + 16, round16(x + 16, idv, hi));
    }
}

static void act_q8_K(const float *x, void *dst, size_t n)
{
    blk_q8_K *y = dst;
    const int32x4_t hi = vdupq_n_s32(127);
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = amax_f32(x, QK_K);
        if (amax == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int j = 0; /* the first element of the largest magnitude, with its sign */
        while (fabsf(x[j]) != amax)
            j++;
        float iscale = -127.f / x[j];
        float32x4_t s = vdupq_n_f32(iscale);
        for (int b = 0; b < QK_K / 16; b++) {
            int8x16_t q = round16(x + 16 * b, s, hi);
            vst1q_s8(y[i].qs + 16 * b, q);
            y[i].bsums[b] = (int16_t)vaddlvq_s8(q);
        }
        y[i].d = 1.f / iscale;
    }
}

static void act_f16(const float *x, void *dst, size_t n)
{
    uint16_t *y = dst;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) /* FCVT rounds to nearest even, as the oracle */
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

static void act_bf16(const float *x, void *dst, size_t n)
{
    uint16_t *y = dst;
    size_t i = 0;
    const uint32x4_t one = vdupq_n_u32(1), bias = vdupq_n_u32(0x7fff);
    const uint32x4_t abs = vdupq_n_u32(0x7fffffff), inf = vdupq_n_u32(0x7f800000);
    for (; i + 4 <= n; i += 4) { /* quant_f32_to_bf16, 4 lanes */
        uint32x4_t v = vreinterpretq_u32_f32(vld1q_f32(x + i));
        uint32x4_t r =
            vshrq_n_u32(vaddq_u32(v, vaddq_u32(bias, vandq_u32(vshrq_n_u32(v, 16), one))), 16);
        uint32x4_t nan = vcgtq_u32(vandq_u32(v, abs), inf);
        r = vbslq_u32(nan, vorrq_u32(vshrq_n_u32(v, 16), vdupq_n_u32(64)), r);
        vst1_u16(y + i, vmovn_u32(r));
    }
    for (; i < n; i++)
        y[i] = quant_f32_to_bf16(x[i]);
}

void quant_kernels_init_neon(struct quant_kernels *k, int dotprod)
{
    memset(k, 0, sizeof *k);
    k->name = dotprod ? "neon-dotprod" : "neon";
    k->dot[GGML_TYPE_F32] = dot_f32;
    k->dot4[GGML_TYPE_F32] = dot4_f32;
    k->dot[GGML_TYPE_F16] = dot_f16;
    k->dot[GGML_TYPE_BF16] = dot_bf16;
    if (dotprod)
        set_int_dp(k);
    else
        set_int(k);
    k->act[GGML_TYPE_Q8_0] = act_q8_0;
    k->act[GGML_TYPE_Q8_K] = act_q8_K;
    k->act[GGML_TYPE_F16] = act_f16;
    k->act[GGML_TYPE_BF16] = act_bf16;
    k->axpy_f16 = axpy_f16;
    k->att_small = att_small;
}

#else
void quant_kernels_init_neon(struct quant_kernels *k, int dotprod)
{
    memset(k, 0, sizeof *k);
    k->name = dotprod ? "neon-dotprod" : "neon";
}
#endif

/*
 * quant_avx2.c: AVX2 + FMA + F16C kernels. Each function carries its own
 * target attribute, so this file builds without global -mavx2 flags and the
 * library still runs on older CPUs (quant.c only calls these after checking
 * the CPU). Integer block sums are exact, so they match the scalar oracle;
 * float sums differ only in association order.
 */
#include "ai/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* 32 signed bytes . 32 signed bytes -> 8 int32 partial sums as floats.
 * maddubs wants unsigned x signed, so move x's sign onto y. */
TGT static inline __m256 dot32_i8(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x), sy = _mm256_sign_epi8(y, x);
    __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 packed nibbles -> 32 bytes in element order (lows then highs), 0..15. */
TGT static inline __m256i unpack_nibbles(const uint8_t *q)
{
    __m128i b = _mm_loadu_si128((const __m128i *)q);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0xF));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0xF));
    return _mm256_set_m128i(hi, lo);
}

TGT static float dot_f32(size_t n, const void *wv, const void *av)
{
    const float *w = wv, *a = av;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(a + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(a + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += w[i] * a[i];
    return s;
}

TGT static float dot_f16(size_t n, const void *wv, const void *av)
{
    const uint16_t *w = wv, *a = av;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
#define LD(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(LD(w + i), LD(a + i), s0);
        s1 = _mm256_fmadd_ps(LD(w + i + 8), LD(a + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(LD(w + i), LD(a + i), s0);
#undef LD
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += f16(w[i]) * f16(a[i]);
    return s;
}

TGT static float dot_q8_0(size_t n, const void *wv, const void *av)
{
    const blk_q8_0 *x = wv, *y = av;
    size_t nb = n / QK, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; i + 2 <= nb; i += 2) {
        __m256 p0 = dot32_i8(_mm256_loadu_si256((const __m256i *)x[i].qs),
                             _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256 p1 = dot32_i8(_mm256_loadu_si256((const __m256i *)x[i + 1].qs),
                             _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i + 1].d) * f16(y[i + 1].d)), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256 p0 = dot32_i8(_mm256_loadu_si256((const __m256i *)x[i].qs),
                             _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), p0, acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

TGT static float dot_q4_0(size_t n, const void *wv, const void *av)
{
    const blk_q4_0 *x = wv;
    const blk_q8_0 *y = av;
    size_t nb = n / QK, i = 0;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; i + 2 <= nb; i += 2) {
        __m256i q0 = _mm256_sub_epi8(unpack_nibbles(x[i].qs), eight);
        __m256i q1 = _mm256_sub_epi8(unpack_nibbles(x[i + 1].qs), eight);
        __m256 p0 = dot32_i8(q0, _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256 p1 = dot32_i8(q1, _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i + 1].d) * f16(y[i + 1].d)), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256i q0 = _mm256_sub_epi8(unpack_nibbles(x[i].qs), eight);
        __m256 p0 = dot32_i8(q0, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * f16(y[i].d)), p0, acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* Q4_K . Q8_K: per 64-element chunk, low nibbles x a[0..32) and high nibbles
 * x a[32..64) with their 6-bit scales; the mins term uses the Q8_K bsums. */
TGT static float dot_q4_K(size_t n, const void *wv, const void *av)
{
    const blk_q4_K *x = wv;
    const blk_q8_K *y = av;
    const __m256i m4 = _mm256_set1_epi8(0xF), ones = _mm256_set1_epi16(1);
    float s = 0;
    for (size_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        const uint8_t *q = x[i].scales;
        for (int j = 0; j < 4; j++) {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
            sc[j + 4] = (uint8_t)((q[j + 8] & 0xF) | ((q[j] >> 6) << 4));
            mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
        }
        int summ = 0;
        for (int j = 0; j < 8; j++)
            summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i acc = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            __m256i a0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c));
            __m256i a1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), ones);
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), ones);
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p0, _mm256_set1_epi32(sc[2 * c])));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(p1, _mm256_set1_epi32(sc[2 * c + 1])));
        }
        __m128i a4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0x4E));
        a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0xB1));
        int sumi = _mm_cvtsi128_si32(a4);
        s += y[i].d * f16(x[i].d) * sumi - y[i].d * f16(x[i].dmin) * summ;
    }
    return s;
}

/* Q6_K . Q8_K: rebuild the 6-bit values 32 at a time (q - 32, signed), then
 * products per 16 elements times the signed 8-bit scales. */
TGT static float dot_q6_K(size_t n, const void *wv, const void *av)
{
    const blk_q6_K *x = wv;
    const blk_q8_K *y = av;
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
    const __m256i c32 = _mm256_set1_epi8(32);
    float s = 0;
    for (size_t i = 0; i < n / QK_K; i++) {
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h, *a = y[i].qs + 128 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                __m256i av8 = _mm256_loadu_si256((const __m256i *)(a + 32 * k));
                /* (q - 32) . a = q . a - 32 * sum(a): q is unsigned 0..63 */
                __m256i p = _mm256_maddubs_epi16(q[k], av8);
                __m256i corr = _mm256_maddubs_epi16(c32, av8);
                p = _mm256_sub_epi16(p, corr); /* 16 int16, pairs of elements */
                /* scales: elements 0..15 -> sc[2k], 16..31 -> sc[2k+1] */
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]),
                                               _mm_set1_epi16(sc[2 * k]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, scv));
            }
        }
        __m128i a4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0x4E));
        a4 = _mm_add_epi32(a4, _mm_shuffle_epi32(a4, 0xB1));
        s += f16(x[i].d) * y[i].d * _mm_cvtsi128_si32(a4);
    }
    return s;
}

/* The exact bytes of quant_ref_act_q8_0: max |x| is exact in any order,
 * x * id is the same product, and cvtps rounds ties to even like lrintf. */
TGT static void act_q8_0(const float *x, void *dst, size_t n)
{
    blk_q8_0 *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                  _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float amax = _mm_cvtss_f32(m);
        float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = quant_f32_to_f16(d);
        __m256 idv = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, idv));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, idv));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv));
        /* pack 32-bit -> 16 -> 8 and undo the lane interleave of packs */
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[i].qs, p);
    }
}

TGT static void act_f16(const float *x, void *dst, size_t n)
{
    uint16_t *y = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

void quant_kernels_init_avx2(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx2";
    k->dot[GGML_TYPE_F32] = dot_f32;
    k->dot[GGML_TYPE_F16] = dot_f16;
    k->dot[GGML_TYPE_Q8_0] = dot_q8_0;
    k->dot[GGML_TYPE_Q4_0] = dot_q4_0;
    k->dot[GGML_TYPE_Q4_K] = dot_q4_K;
    k->dot[GGML_TYPE_Q6_K] = dot_q6_K;
    k->act[GGML_TYPE_Q8_0] = act_q8_0;
    k->act[GGML_TYPE_F16] = act_f16;
}

#else
void quant_kernels_init_avx2(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx2";
}
#endif

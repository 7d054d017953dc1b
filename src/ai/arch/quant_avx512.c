/*
 * quant_avx512.c: kernels for CPUs with AVX-512 BW/VL and VNNI (Ice Lake,
 * Sapphire Rapids, Zen 4). The int8 block products use vpdpbusd (u8 x s8 ->
 * s32, one instruction for what AVX2 does in two), with x's sign moved onto
 * y as in the AVX2 file; the f16 block scales come from a 64K-entry table
 * rather than a convert per scale. dot4 variants reuse each weight block for
 * four activation rows (prompt processing). Per-function target attributes
 * keep the rest of the library free of AVX-512 code.
 */
#include "ai/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

static float f16_lut[65536];

TGT static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* x . y over 32 signed bytes -> 8 int32 lanes (lane j: elements 4j..4j+3). */
TGT static inline __m256i dot32(__m256i x, __m256i y)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
}

TGT static inline __m256i q4_0_bytes(const uint8_t *q)
{
    __m128i b = _mm_loadu_si128((const __m128i *)q);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0xF));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0xF));
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

#define LDY(p) _mm256_loadu_si256((const __m256i *)(p))

TGT static float dot_q8_0(size_t n, const void *wv, const void *av)
{
    const blk_q8_0 *x = wv, *y = av;
    size_t nb = n / QK, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; i + 2 <= nb; i += 2) {
        /* the hardware prefetcher stops at 4 KiB pages: run ahead of it */
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);
        __m256 p0 = _mm256_cvtepi32_ps(dot32(LDY(x[i].qs), LDY(y[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot32(LDY(x[i + 1].qs), LDY(y[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i].d] * f16_lut[y[i].d]), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i + 1].d] * f16_lut[y[i + 1].d]), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256 p0 = _mm256_cvtepi32_ps(dot32(LDY(x[i].qs), LDY(y[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i].d] * f16_lut[y[i].d]), p0, acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

TGT static float dot_q4_0(size_t n, const void *wv, const void *av)
{
    const blk_q4_0 *x = wv;
    const blk_q8_0 *y = av;
    size_t nb = n / QK, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; i + 2 <= nb; i += 2) {
        _mm_prefetch((const char *)(x + i) + 1024, _MM_HINT_T0);
        __m256 p0 = _mm256_cvtepi32_ps(dot32(q4_0_bytes(x[i].qs), LDY(y[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot32(q4_0_bytes(x[i + 1].qs), LDY(y[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i].d] * f16_lut[y[i].d]), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i + 1].d] * f16_lut[y[i + 1].d]), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256 p0 = _mm256_cvtepi32_ps(dot32(q4_0_bytes(x[i].qs), LDY(y[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_lut[x[i].d] * f16_lut[y[i].d]), p0, acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* One weight row against @nr (<= 4) activation rows: the weight block is
 * loaded, unpacked and made absolute once for all rows. Each row's sum runs
 * in the same order as dot_q8_0 so that batched and single-token results
 * agree bit for bit. */
#define DOT4_BODY(WBYTES)                                                                 \
    const blk_q8_0 *ys[4];                                                                \
    for (int r = 0; r < 4; r++)                                                           \
        ys[r] = (const blk_q8_0 *)((const uint8_t *)av + (size_t)(r < nr ? r : 0) * stride); \
    size_t nb = n / QK, i = 0;                                                            \
    __m256 acc[4][2];                                                                     \
    for (int r = 0; r < 4; r++)                                                           \
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();                                      \
    for (; i < nb; i++) {                                                                 \
        __m256i w = WBYTES;                                                               \
        __m256i aw = _mm256_abs_epi8(w);                                                  \
        float dw = f16_lut[x[i].d];                                                       \
        for (int r = 0; r < 4; r++) {                                                     \
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw,                   \
                                            _mm256_sign_epi8(LDY(ys[r][i].qs), w));       \
            acc[r][i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(dw * f16_lut[ys[r][i].d]),      \
                                            _mm256_cvtepi32_ps(p), acc[r][i & 1]);        \
        }                                                                                 \
    }                                                                                     \
    for (int r = 0; r < nr; r++)                                                          \
        out[r] = hsum8(_mm256_add_ps(acc[r][0], acc[r][1]));

TGT static void dot4_q8_0(size_t n, const void *wv, const void *av, size_t stride, int nr,
                          float *out)
{
    const blk_q8_0 *x = wv;
    DOT4_BODY(LDY(x[i].qs))
}

TGT static void dot4_q4_0(size_t n, const void *wv, const void *av, size_t stride, int nr,
                          float *out)
{
    const blk_q4_0 *x = wv;
    DOT4_BODY(q4_0_bytes(x[i].qs))
}

TGT static float dot_f32(size_t n, const void *wv, const void *av)
{
    const float *w = wv, *a = av;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(a + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(a + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(a + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(a + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(a + i), s0);
    if (i < n) { /* masked tail */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, a + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TGT static float dot_f16(size_t n, const void *wv, const void *av)
{
    const uint16_t *w = wv, *a = av;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
#define LD16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(LD16(w + i), LD16(a + i), s0);
        s1 = _mm512_fmadd_ps(LD16(w + i + 16), LD16(a + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16)
        s0 = _mm512_fmadd_ps(LD16(w + i), LD16(a + i), s0);
#undef LD16
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

void quant_kernels_init_avx512(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx512";
    for (uint32_t h = 0; h < 65536; h++)
        f16_lut[h] = quant_f16_to_f32((uint16_t)h);
    k->dot[GGML_TYPE_Q8_0] = dot_q8_0;
    k->dot[GGML_TYPE_Q4_0] = dot_q4_0;
    k->dot4[GGML_TYPE_Q8_0] = dot4_q8_0;
    k->dot4[GGML_TYPE_Q4_0] = dot4_q4_0;
    k->dot[GGML_TYPE_F32] = dot_f32;
    k->dot[GGML_TYPE_F16] = dot_f16;
}

#else
void quant_kernels_init_avx512(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx512";
}
#endif
